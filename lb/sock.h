/* SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef LB_SOCK_H
#define LB_SOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "lb/addr.h"

/*
 * The socket options and closes of what lb proxies through: listeners,
 * both sockets of a TCP connection, and UDP flows.
 */

/* Makes fd transparent for its family (IP_TRANSPARENT / IPV6_TRANSPARENT). Returns 0 or -errno. */
int lb_sock_transparent(int fd, int family);

/* Passes bytes on as they come (TCP_NODELAY): the peers did their own coalescing. */
void lb_sock_nodelay(int fd);

/*
 * Caps fd's send and receive buffers at bytes (SO_SNDBUF, SO_RCVBUF; 0
 * leaves them to autotuning), so a peer that stops reading pins that much,
 * not what autotuning grew to. The kernel doubles the value for its own
 * bookkeeping and clamps it to net.core.wmem_max/rmem_max.
 */
void lb_sock_set_buffers(int fd, unsigned int bytes);

/*
 * Opens a non-blocking TCP socket from client's address to backend,
 * buffers capped at bufbytes (lb_sock_set_buffers()). Keeping the client's
 * port makes the backend's view exact; when that port is taken here, it
 * binds the address alone and lets connect() pick the port
 * (IP_BIND_ADDRESS_NO_PORT defers the choice to connect time, so bind does
 * not search the port space). Returns the fd (connect in progress or done)
 * or -errno, with *local telling a shortage here (fds, memory, ports) from
 * a backend that refused: only the latter counts against the backend.
 */
int lb_sock_connect_from(const union lb_sockaddr *client, const union lb_sockaddr *backend,
			 unsigned int bufbytes, bool *local);

/*
 * lb_sock_connect_from() whose SYN carries data (len > 0): TCP Fast Open,
 * cookie-less (TCP_FASTOPEN_NO_COOKIE, sendto with MSG_FASTOPEN). *sent is
 * how many bytes the SYN took (0: none, the caller sends them once
 * connected). -EOPNOTSUPP when this kernel or the namespace's
 * net.ipv4.tcp_fastopen (client bit 1 clear) allows no Fast Open.
 */
int lb_sock_fastopen_from(const union lb_sockaddr *client, const union lb_sockaddr *backend,
			  unsigned int bufbytes, const void *data, size_t len, size_t *sent,
			  bool *local);

/* Closes fd with a reset (SO_LINGER 0) instead of a FIN; fd -1 is ignored. */
void lb_sock_close_rst(int fd);

/*
 * Closes a socket of a connection lb gives up on (a timeout); fd -1 is
 * ignored. Bytes the peer has not acknowledged (SIOCOUTQ), or that lb still
 * holds for it (held), would keep the socket alive after close() as an
 * orphan that retries into a peer taking nothing, with its buffers, for
 * minutes: it is reset instead. With nothing outstanding the FIN goes out
 * as usual.
 */
void lb_sock_close_abandoned(int fd, bool held);

#endif
