/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the test tools (peer, and tests/bench's connhold and echod) share:
 * addresses, sizes, clocks, sockets, an epoll loop, signals and worker
 * processes.
 */
#ifndef LB_TESTS_TOOLS_COMMON_H
#define LB_TESTS_TOOLS_COMMON_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MAX_EVENTS 256
/* Room for "[ipv6]:port". */
#define ADDR_STRLEN 56

/* Prefixes die() and the tools' messages; each main() sets it. */
extern const char *prog;

void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* calloc() that exits when out of memory. */
void *xcalloc(size_t n, size_t size);

/* ---- addresses and numbers ---- */

struct addr {
	struct sockaddr_storage ss;
	socklen_t len;			/* 0: none given */
};

/* "198.18.0.1:80" or "[2001:db8::1]:80"; returns 0 or -EINVAL. */
int addr_parse(struct addr *a, const char *s);
/* A bare address, "198.18.0.10", "2001:db8::10" or "[2001:db8::10]", with
 * the given port; returns 0 or -EINVAL. */
int addr_parse_ip(struct addr *a, const char *s, uint16_t port);
/* "198.18.0.1:80", "[2001:db8::1]:80", or "?" for another family. */
const char *addr_fmt(const struct sockaddr_storage *ss, char *buf, size_t len);

/* "1234", "64K", "64M", "1G" (powers of 1024); returns 0 or -EINVAL. */
int size_parse(const char *s, uint64_t *out);

/* Seconds on the monotonic clock. */
double now_s(void);

/* ---- sockets ---- */

/*
 * Opens a non-blocking TCP socket in *fd and starts connecting it to dst,
 * from src when src->len is set (NULL: the route's source). Returns 0 when
 * the connect is under way (or done), or -errno with *what naming the call
 * that failed: *fd is then -1 if that was socket(), else still open for
 * the caller to close.
 */
int sock_connect(int *fd, const struct addr *dst, const struct addr *src, const char **what);
/* sock_connect(), then adds the socket to ep for EPOLLOUT with ptr; exits
 * when socket() fails, as then nothing else would work either. */
int sock_connect_ep(int *fd, const struct addr *dst, const struct addr *src, int ep, void *ptr,
		    const char **what);
/* After the first epoll event on a connecting socket (watched for EPOLLOUT
 * only, so that any event ends the connect): 0 when connected, or -errno. */
int sock_connected(int fd);
/* On a connected socket: sends byte unless NULL, then has ep report what
 * comes (EPOLLIN | EPOLLRDHUP, with ptr). Returns 0, or -errno of send(). */
int sock_await(int fd, const char *byte, int ep, void *ptr);
/* A non-blocking listening socket on a (IPv6 only for an IPv6 address),
 * with SO_REUSEPORT when asked. Returns the socket, or -errno with *what
 * naming the call that failed. */
int sock_listen(const struct addr *a, int backlog, bool reuseport, const char **what);
/* Closes fd with a reset (SO_LINGER 0) rather than a FIN. */
void sock_close_rst(int fd);

/* The highest fd the open-file limit allows (1 << 20 when unlimited), or -errno. */
int fd_limit(void);
/* Raises the soft open-file limit to the hard one. */
void nofile_raise(void);

/* ---- the event loop ---- */

/* Set by SIGINT/SIGTERM once loop_setup() has run: loop_run() ends. */
extern volatile sig_atomic_t signalled;

#define LOOP_END (-2)

struct loop {
	int ep;
	/* Before each wait: the timeout in ms (-1: none), or LOOP_END. */
	int (*before)(void *ctx);
	void (*event)(void *ctx, epoll_data_t data, uint32_t events);
	void *ctx;
	bool masked;			/* wait with sigmask (loop_setup) */
	sigset_t sigmask;
};

/* Creates l's epoll set; returns 0 or -errno. */
int loop_init(struct loop *l, int (*before)(void *ctx),
	      void (*event)(void *ctx, epoll_data_t data, uint32_t events), void *ctx);
/* loop_init() for peer's modes: raises the open-file limit, ignores SIGPIPE
 * and has SIGINT/SIGTERM set `signalled`; exits on failure. */
void loop_setup(struct loop *l, int (*before)(void *ctx),
		void (*event)(void *ctx, epoll_data_t data, uint32_t events), void *ctx);
/* Waits at most timeout_ms (-1: no limit) and hands every event to l->event. */
void loop_once(struct loop *l, int timeout_ms);
/* Runs until l->before returns LOOP_END or `signalled` is set. */
void loop_run(struct loop *l);
void loop_close(struct loop *l);
/* epoll_ctl() with data.ptr = ptr; exits on failure. */
void ep_set(int ep, int op, int fd, uint32_t events, void *ptr);

/* ---- worker processes (connhold, echod) ---- */

/* Zeroed memory shared with the processes forked later, or NULL. */
void *shared_alloc(size_t len);
/* Blocks SIGUSR1, SIGINT, SIGTERM and SIGCHLD into *set, for signal_wait(),
 * and ignores SIGPIPE. */
void signals_block(sigset_t *set);
/* Waits up to ms for a signal of set; returns it, or 0. */
int signal_wait(const sigset_t *set, long ms);
/*
 * Forks n processes; process i, killed when its parent dies, unblocks set
 * and _exits with run(i, ctx). Returns 0, or -errno when a fork failed,
 * after killing the ones started.
 */
int procs_fork(pid_t *pids, unsigned int n, const sigset_t *set,
	       int (*run)(unsigned int i, void *ctx), void *ctx);
/* Waits for the n processes, killing them first when asked. */
void procs_reap(const pid_t *pids, unsigned int n, bool kill_them);

#endif
