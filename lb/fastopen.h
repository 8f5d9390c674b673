/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_FASTOPEN_H
#define LB_FASTOPEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lb/addr.h"
#include "lb/shm.h"

/*
 * TCP Fast Open to backends, for services with "fastopen": the client's
 * first bytes go to the backend in the SYN. Cookie-less
 * (TCP_FASTOPEN_NO_COOKIE on each upstream socket): lb connects from every
 * client's own address, and TFO cookies are kept per address pair, so a
 * cookie would almost never be at hand. The backend must accept data in a
 * SYN without a cookie (net.ipv4.tcp_fastopen 0x202 and a fastopen
 * listener there, docs/deploy.md), which is safe only between a gateway
 * and backends that trust each other: hence per service, off by default.
 */

/*
 * Bytes peeked from the client for the SYN. A SYN carries about an MSS
 * less the options (1420 bytes on a 1500-byte path); whatever does not fit
 * stays in the client's socket and is relayed once the connect completes.
 */
#define LB_FASTOPEN_PEEK 4096

/* Copies up to len bytes waiting on fd without consuming them. Returns the
 * count, 0 at EOF, -EAGAIN when nothing came yet, or -errno. */
ssize_t lb_fastopen_peek(int fd, void *buf, size_t len);

/*
 * Opens a socket from client's address and connects it to backend, as
 * lb_sock_connect_from() does. With len > 0 the connect's SYN carries data
 * (lb_sock_fastopen_from()) and *sent says how many bytes went (0: none,
 * send them later); otherwise, or when the gateway allows no Fast Open
 * (net.ipv4.tcp_fastopen without the client bit 1: logged once, then not
 * tried again in this process), a plain connect, *sent 0. Returns the fd or
 * -errno, *local as lb_sock_connect_from() sets it.
 */
int lb_fastopen_connect(const union lb_sockaddr *client, const union lb_sockaddr *backend,
			unsigned int bufbytes, const void *data, size_t len, size_t *sent,
			bool *local);

/* False once lb_fastopen_connect() found Fast Open unavailable here. */
bool lb_fastopen_available(void);

/*
 * The connect of srv, whose SYN carried sent bytes peeked from cli,
 * completed: drops those bytes from cli (they stayed there until now, for
 * a retry elsewhere), and counts in b whether the backend took them with
 * the SYN or did not (no TFO there, its TFO queue full: the kernel sent
 * them again after the handshake). Refusals pause b; the first pause is
 * logged, naming service. Returns 0, or -errno (-EIO: fewer bytes in cli).
 */
int lb_fastopen_settle(int cli, int srv, size_t sent, struct lb_shm_backend *b,
		       const char *service, uint64_t now_ms);

/*
 * After this many refusals in a row a backend is paused: connects to it
 * go without data for LB_FASTOPEN_PAUSE_MS, then one SYN with data probes
 * it again (a refusal pauses it again, an acknowledgement ends it):
 * lb_shm_fastopen_paused().
 */
#define LB_FASTOPEN_REFUSALS 8
#define LB_FASTOPEN_PAUSE_MS 10000

#endif
