// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The HTTP management listener (http.h). Two halves: the master's, which
 * owns the listening socket and keeps one process running on it; and the
 * process's, a single-threaded libmicrohttpd server that answers from the
 * shared memory. libmicrohttpd parses HTTP and bounds each connection's
 * memory (oversized headers get 431) and their number; what it lacks is a
 * deadline for a whole request, so a client trickling header bytes would
 * hold its slot forever (slowloris). This file adds one: a connection that
 * has not completed a request within http.timeout_ms of connecting, or of
 * its previous response, is shut down, whatever it sent meanwhile
 * (libmicrohttpd's own timeout restarts with every byte received).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <microhttpd.h>

#include "lb/http.h"
#include "lb/http_page.h"
#include "lb/log.h"
#include "lb/priv.h"

#define RESTART_MIN_LIFE_MS 1000
#define SWEEP_MS 250
#define BACKLOG 1024
/* Per connection: request line, headers and our response headers. Larger requests get 431. */
#define CONN_MEMORY 16384

/* ---- the master's half ---- */

struct lb_http {
	struct lb_loop *loop;
	const struct lb_ctl_state *st;
	int fd;				/* listening socket; -1: off */
	union lb_sockaddr addr;		/* what fd listens on */
	pid_t pid;
	uint64_t started;
	struct lb_timer start;
	/*
	 * A pipe whose write end only the master holds, for life: end of file
	 * at the read end tells the process the master is gone, even if the
	 * parent-death signal was lost to its credential change.
	 */
	int life[2];
};

static void http_child(struct lb_http *h);

static void start_due(struct lb_timer *t)
{
	struct lb_http *h = lb_container_of(t, struct lb_http, start);
	pid_t pid;

	if (h->fd < 0 || h->pid > 0)
		return;
	if (h->life[0] < 0 && pipe2(h->life, O_CLOEXEC) == -1)
		h->life[0] = h->life[1] = -1;
	pid = h->life[0] < 0 ? -1 : fork();
	if (pid == -1) {
		lb_err("http: cannot start its process: %s; retrying in 1 s", strerror(errno));
		lb_loop_timer_set(h->loop, &h->start, lb_loop_now(h->loop) + 1000);
		return;
	}
	if (pid == 0)
		http_child(h);
	h->pid = pid;
	h->started = lb_clock_ms();
	lb_info("http: process started: pid %d", (int)pid);
}

static void stop_child(struct lb_http *h)
{
	if (h->pid <= 0)
		return;
	kill(h->pid, SIGTERM);
	/* SIGTERM ends it at once (it has nothing to flush); reaping here keeps pids unambiguous. */
	waitpid(h->pid, NULL, 0);
	h->pid = 0;
}

struct lb_http *lb_http_alloc(struct lb_loop *loop, const struct lb_ctl_state *st)
{
	struct lb_http *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->loop = loop;
	h->st = st;
	h->fd = -1;
	h->life[0] = h->life[1] = -1;
	h->start.cb = start_due;
	return h;
}

static int listen_open(const union lb_sockaddr *a)
{
	int fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, rc;

	if (fd == -1)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->sa.sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, &a->sa, lb_addr_len(a)) == -1 || listen(fd, BACKLOG) == -1) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int lb_http_apply(struct lb_http *h, char *err, size_t errlen)
{
	const struct lb_config *cfg = h->st->cfg;
	char buf[LB_ADDR_STRLEN];
	int fd;

	stop_child(h);
	lb_loop_timer_cancel(h->loop, &h->start);
	if (h->fd >= 0 && (!cfg->http.enabled || !lb_addr_equal(&h->addr, &cfg->http.listen))) {
		close(h->fd);
		h->fd = -1;
		lb_info("http: stopped listening on %s", lb_addr_format(&h->addr, buf, sizeof(buf)));
	}
	if (!cfg->http.enabled)
		return 0;
	if (h->fd < 0) {
		fd = listen_open(&cfg->http.listen);
		if (fd < 0) {
			snprintf(err, errlen, "http.listen %s: %s%s",
				 lb_addr_format(&cfg->http.listen, buf, sizeof(buf)), strerror(-fd),
				 fd == -EADDRINUSE ? " (another program listens there)" :
				 fd == -EACCES ? " (a port below 1024 needs lb to start as root)" : "");
			return fd;
		}
		h->fd = fd;
		h->addr = cfg->http.listen;
		lb_info("http: listening on %s", lb_addr_format(&h->addr, buf, sizeof(buf)));
	}
	lb_loop_timer_set(h->loop, &h->start, lb_loop_now(h->loop));
	return 0;
}

bool lb_http_reaped(struct lb_http *h, pid_t pid, int status, bool restart)
{
	uint64_t lived;

	if (!h || pid != h->pid)
		return false;
	h->pid = 0;
	if (!restart)
		return true;
	lived = lb_clock_ms() - h->started;
	if (WIFSIGNALED(status))
		lb_warn("http: process %d killed by signal %d; restarting", (int)pid, WTERMSIG(status));
	else
		lb_warn("http: process %d exited with status %d; restarting", (int)pid,
			WEXITSTATUS(status));
	/* One that dies at once would otherwise be forked in a tight loop. */
	lb_loop_timer_set(h->loop, &h->start,
			  lb_loop_now(h->loop) + (lived < RESTART_MIN_LIFE_MS ? 1000 : 0));
	return true;
}

pid_t lb_http_pid(const struct lb_http *h)
{
	return h ? h->pid : 0;
}

void lb_http_free(struct lb_http *h)
{
	if (!h)
		return;
	stop_child(h);
	lb_loop_timer_cancel(h->loop, &h->start);
	if (h->fd >= 0)
		close(h->fd);
	if (h->life[0] >= 0) {
		close(h->life[0]);
		close(h->life[1]);
	}
	free(h);
}

/* ---- the process's half ---- */

/* A connection, from accept to close: when it last began waiting for a request. */
struct hconn {
	struct hconn *prev, *next;
	int fd;
	uint64_t since_ms;
	bool busy;			/* a request is being answered */
	bool cut;			/* shut down by the sweep */
};

struct server {
	struct lb_ctl_state st;		/* a copy: the master's view when this process started */
	const struct lb_config *cfg;
	struct hconn conns;		/* list head */
	unsigned int n_conns;
	uint64_t cuts;
};

static struct server srv;

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\n")] = '\0';
	lb_debug("http: %s", msg);
}

static void notify_conn(void *cls, struct MHD_Connection *c, void **ctx,
			enum MHD_ConnectionNotificationCode code)
{
	struct hconn *hc = *ctx;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fi =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		hc = calloc(1, sizeof(*hc));
		if (!hc)
			return;
		hc->fd = fi ? fi->connect_fd : -1;
		hc->since_ms = lb_clock_ms();
		hc->next = srv.conns.next;
		hc->prev = &srv.conns;
		srv.conns.next->prev = hc;
		srv.conns.next = hc;
		srv.n_conns++;
		*ctx = hc;
		return;
	}
	/* Closed: called before libmicrohttpd closes the fd, so the sweep never shuts a reused one. */
	if (!hc)
		return;
	hc->prev->next = hc->next;
	hc->next->prev = hc->prev;
	srv.n_conns--;
	free(hc);
	*ctx = NULL;
}

static struct hconn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return i ? i->socket_context : NULL;
}

/* A response is sent: a kept-alive connection now waits for its next request. */
static void request_done(void *cls, struct MHD_Connection *c, void **req_ctx,
			 enum MHD_RequestTerminationCode toe)
{
	struct hconn *hc = conn_of(c);

	if (hc) {
		hc->busy = false;
		hc->since_ms = lb_clock_ms();
	}
}

/*
 * Shuts down connections that spent more than http.timeout_ms without completing
 * a request. libmicrohttpd then sees end of file and closes them itself.
 */
static void sweep(void)
{
	uint64_t now = lb_clock_ms(), limit = srv.cfg->http.timeout_ms;

	for (struct hconn *hc = srv.conns.next; hc != &srv.conns; hc = hc->next) {
		if (hc->busy || hc->cut || hc->fd < 0 || now - hc->since_ms < limit)
			continue;
		shutdown(hc->fd, SHUT_RDWR);
		hc->cut = true;
		srv.cuts++;
	}
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
			     char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ok;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	/* The page carries its own style and script and loads nothing else. */
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; connect-src 'self'; img-src 'self' data:; "
				"style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
				"frame-ancestors 'none'");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

/* A plain-text error: status, and one line saying what was wrong. */
static enum MHD_Result fail(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static enum MHD_Result fail(struct MHD_Connection *c, unsigned int status, const char *fmt, ...)
{
	char *msg = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return MHD_NO;
	return reply(c, status, "text/plain; charset=utf-8", msg, n, MHD_RESPMEM_MUST_FREE);
}

static bool allowed(const struct sockaddr *sa)
{
	union lb_sockaddr a = { 0 };

	if (!sa || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return false;
	memcpy(&a, sa, sa->sa_family == AF_INET ? sizeof(a.in) : sizeof(a.in6));
	for (size_t i = 0; i < srv.cfg->http.n_allow; i++)
		if (lb_prefix_match(&srv.cfg->http.allow[i], &a))
			return true;
	return false;
}

/* Quoted for a one-line message: printable ASCII kept, the rest as \xNN, cut at 64 bytes. */
static const char *printable(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; *s && n + 8 < len && n < 64; s++) {
		unsigned char ch = *s;

		if (ch >= 0x20 && ch < 0x7f && ch != '\\')
			buf[n++] = ch;
		else
			n += snprintf(buf + n, len - n, "\\x%02x", ch);
	}
	snprintf(buf + n, len - n, "%s", *s ? "..." : "");
	return buf;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **req_ctx)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct hconn *hc = conn_of(c);
	char q[300], *body;

	if (hc)
		hc->busy = true;
	if (!ci || !allowed(ci->client_addr)) {
		union lb_sockaddr a = { 0 };
		char who[LB_ADDR_STRLEN] = "unknown";

		if (ci && ci->client_addr) {
			memcpy(&a, ci->client_addr, ci->client_addr->sa_family == AF_INET6 ?
			       sizeof(a.in6) : sizeof(a.in));
			lb_addr_unmap(&a);
			lb_addr_format_ip(&a, who, sizeof(who));
		}
		return fail(c, MHD_HTTP_FORBIDDEN, "403 forbidden: client %s is not in http.allow\n",
			    who);
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return fail(c, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed: %s (this "
			    "listener is read-only: GET and HEAD only)\n", printable(method, q, sizeof(q)));
	/* A body on a GET is not read: the connection closes after the reply. */
	if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", (char *)http_page,
			     sizeof(http_page) - 1, MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/metrics")) {
		body = lb_ctl_metrics(&srv.st);
		if (!body)
			return fail(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n");
		return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
			     strlen(body), MHD_RESPMEM_MUST_FREE);
	}
	if (!strcmp(url, "/status.json")) {
		body = lb_ctl_status_json(&srv.st);
		if (!body)
			return fail(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n");
		return reply(c, MHD_HTTP_OK, "application/json", body, strlen(body),
			     MHD_RESPMEM_MUST_FREE);
	}
	return fail(c, MHD_HTTP_NOT_FOUND, "404 not found: %s (try /, /metrics or /status.json)\n",
		    printable(url, q, sizeof(q)));
}

/* Ends when the master goes (its end of the pipe closes) or on SIGTERM. */
static int serve(int listen_fd, int master_fd)
{
	const struct lb_config *cfg = srv.cfg;
	struct MHD_Daemon *d;
	unsigned int timeout_s = (cfg->http.timeout_ms + 999) / 1000;

	srv.conns.next = srv.conns.prev = &srv.conns;
	/* No internal thread: everything below runs on this one, so the sweep needs no lock. */
	d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, NULL,
			     MHD_OPTION_LISTEN_SOCKET, listen_fd,
			     MHD_OPTION_CONNECTION_LIMIT, cfg->http.max_clients,
			     MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
			     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
			     MHD_OPTION_NOTIFY_CONNECTION, notify_conn, NULL,
			     MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_END);
	if (!d) {
		lb_err("http: libmicrohttpd would not start on the listening socket");
		return 1;
	}
	lb_info("http: serving, %u clients at most, %u s to send a request", cfg->http.max_clients,
		timeout_s);
	for (;;) {
		struct pollfd pfd = { .fd = master_fd, .events = POLLIN };

		if (MHD_run_wait(d, SWEEP_MS) != MHD_YES) {
			lb_err("http: libmicrohttpd failed; exiting to be restarted");
			break;
		}
		sweep();
		if (poll(&pfd, 1, 0) > 0)
			break;
	}
	MHD_stop_daemon(d);
	return 1;
}

static void http_child(struct lb_http *h)
{
	int keep[2] = { h->fd, h->life[0] };
	sigset_t all;

	/* Die with the master even if it is killed outright. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	lb_log_init(h->st->cfg->log_level, "http");
	lb_log_use_syslog(h->st->cfg->log_syslog);
	srv.st = *h->st;
	srv.cfg = srv.st.cfg;
	srv.st.pid = getppid();
	/* This process acts on nothing: it only reads. The rules' state lives in shared memory. */
	srv.st.reload = NULL;
	lb_priv_close_fds(keep, 2);
	/* The master blocks these for its signalfd; here their default actions are right. */
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (lb_priv_drop_http(srv.cfg) < 0)
		_exit(1);
	_exit(serve(h->fd, h->life[0]));
}
