// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Active health checks, run by the master in its own loop. Every backend
 * has one slot: an interval timer that starts a check, a timeout timer
 * that ends it, and at most one non-blocking socket. A check is a connect
 * (tcp) or a connect, one HTTP/1.0 request and its status line (http).
 * Services without a health block only get tcp probes while their backend
 * is down in shm (workers put it there after `fall` failed connects), so
 * that it comes back once it answers again.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lb/health.h"
#include "lb/log.h"
#include "lb/reach.h"

#define HC_READ_MAX 1024		/* a status line longer than this is not HTTP */
#define HC_MSG_MAX 96			/* = sizeof(lb_shm_backend.last_check_msg) */

enum hc_phase {
	HC_IDLE,
	HC_CONNECTING,
	HC_SENDING,
	HC_READING,
};

struct hc_backend {
	struct lb_health *h;
	size_t svc, idx;
	const struct lb_health_conf *conf;	/* effective: defaults filled in */
	union lb_sockaddr addr;		/* backend address with the check port */
	struct lb_event ev;		/* fd -1 between checks */
	struct lb_timer next;		/* starts the next check */
	struct lb_timer deadline;	/* ends the running one */
	enum hc_phase phase;
	uint64_t started;		/* loop clock when the check began */
	unsigned int successes, failures;	/* consecutive, in the state of seen_down */
	bool seen_down;			/* shm state the counters were counted for */
	char *req;			/* http request, built once */
	size_t req_len, sent, got;
	char buf[HC_READ_MAX];
};

struct lb_health {
	struct lb_loop *loop;
	const struct lb_config *cfg;
	struct lb_shm *shm;
	struct lb_health_conf *confs;	/* one per service */
	struct hc_backend *b;
	size_t n;
};

static void hc_start(struct hc_backend *b);

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The parser may leave fields of an absent (or older) health block at 0;
 * the documented defaults apply then, also to passive probing, whose fall
 * the workers use with the same default.
 */
static void conf_effective(struct lb_health_conf *out, const struct lb_health_conf *in)
{
	*out = *in;
	if (!out->interval_ms)
		out->interval_ms = 2000;
	if (!out->timeout_ms)
		out->timeout_ms = 1000;
	if (!out->rise)
		out->rise = 2;
	if (!out->fall)
		out->fall = 3;
	if (!out->path)
		out->path = (char *)"/";
	if (!out->expect_min && !out->expect_max) {
		out->expect_min = 200;
		out->expect_max = 399;
	}
}

static bool shm_down(const struct hc_backend *b)
{
	const struct lb_shm_backend *sb = lb_shm_backend(b->h->shm, b->svc, b->idx);

	return atomic_load_explicit(&sb->health, memory_order_relaxed) == LB_HEALTH_DOWN;
}

/* Closes the socket, if any; del first: a worker forked meanwhile shares it. */
static void hc_close(struct hc_backend *b)
{
	if (b->ev.fd != -1) {
		lb_loop_del(b->h->loop, &b->ev);
		close(b->ev.fd);
		b->ev.fd = -1;
	}
	lb_loop_timer_cancel(b->h->loop, &b->deadline);
	b->phase = HC_IDLE;
}

/* Next check one interval after this one began, not after it ended. */
static void hc_schedule(struct hc_backend *b)
{
	uint64_t now = lb_loop_now(b->h->loop), at = b->started + b->conf->interval_ms;

	if (lb_loop_timer_set(b->h->loop, &b->next, at > now ? at : now) < 0)
		lb_err("health: no memory for a timer; checks of service %s stopped",
		       b->h->cfg->services[b->svc].name);
}

static void record(struct hc_backend *b, bool ok, const char *msg)
{
	struct lb_shm_backend *sb = lb_shm_backend(b->h->shm, b->svc, b->idx);

	sb->last_check_ms = wall_ms();
	sb->last_check_ok = ok;
	snprintf(sb->last_check_msg, sizeof(sb->last_check_msg), "%s", msg);
}

static void set_health(struct hc_backend *b, enum lb_health_state health, const char *reason)
{
	struct lb_health *h = b->h;

	/* The master's tick rebuilds Maglev tables: a burst of changes costs one rebuild. */
	lb_shm_set_health(h->shm, h->cfg, b->svc, b->idx, health, reason);
	b->seen_down = health == LB_HEALTH_DOWN;
	b->successes = b->failures = 0;
}

/*
 * Ends a check: records it and applies rise/fall. Counters only count in
 * the shm state they were counted for, so a backend that workers took
 * down needs rise fresh successes, whatever came before.
 */
static void hc_done(struct hc_backend *b, bool ok, const char *msg)
{
	const struct lb_health_conf *c = b->conf;
	bool down = shm_down(b);
	char reason[HC_MSG_MAX + 48], addr[LB_ADDR_STRLEN];

	hc_close(b);
	record(b, ok, msg);
	lb_debug("health: service %s backend %s: %s", b->h->cfg->services[b->svc].name,
		 lb_addr_format(&b->addr, addr, sizeof(addr)), msg);
	if (down != b->seen_down) {
		b->seen_down = down;
		b->successes = b->failures = 0;
	}
	if (ok) {
		b->failures = 0;
		if (++b->successes >= c->rise && down) {
			snprintf(reason, sizeof(reason), "%u consecutive successful check%s: %s",
				 b->successes, b->successes == 1 ? "" : "s", msg);
			set_health(b, LB_HEALTH_UP, reason);
		}
	} else {
		b->successes = 0;
		if (++b->failures >= c->fall && !down) {
			snprintf(reason, sizeof(reason), "%u consecutive failed check%s: %s",
				 b->failures, b->failures == 1 ? "" : "s", msg);
			set_health(b, LB_HEALTH_DOWN, reason);
		}
	}
	hc_schedule(b);
}

/*
 * A failure of the gateway itself (fds, memory, no route or link down
 * towards the backend): no verdict on the backend, so a link flap on the
 * gateway never takes its backends down, and they count as up again as
 * soon as it is over. Logged when it first happens, not at every interval.
 */
static void hc_local_error(struct hc_backend *b, const char *what, int err)
{
	const struct lb_shm_backend *sb = lb_shm_backend(b->h->shm, b->svc, b->idx);
	char msg[HC_MSG_MAX], addr[LB_ADDR_STRLEN];

	snprintf(msg, sizeof(msg), "not checked: %s: %s", what, strerror(err));
	hc_close(b);
	if (strcmp(sb->last_check_msg, msg))
		lb_warn("health: service %s backend %s: %s", b->h->cfg->services[b->svc].name,
			lb_addr_format(&b->addr, addr, sizeof(addr)), msg);
	record(b, false, msg);
	hc_schedule(b);
}

static void hc_fail_errno(struct hc_backend *b, const char *what, int err)
{
	char msg[HC_MSG_MAX];

	snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
	hc_done(b, false, msg);
}

/* Copies s[0..n) up to its line end into out, non-printables as '?'. */
static void printable(char *out, size_t size, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < size && s[i] != '\r' && s[i] != '\n'; i++)
		out[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	out[i] = '\0';
}

/*
 * Judges b->buf[0..len): the status line, "HTTP/1.x NNN[ reason]", with or
 * without its line end (the peer may close right after it).
 */
static void http_judge(struct hc_backend *b, size_t len)
{
	const char *s = b->buf;
	const struct lb_health_conf *c = b->conf;
	char msg[HC_MSG_MAX], line[40];
	unsigned int code;

	if (len < 12 || memcmp(s, "HTTP/1.", 7) || s[7] < '0' || s[7] > '9' || s[8] != ' ' ||
	    s[9] < '0' || s[9] > '9' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
	    s[11] > '9' || (len > 12 && s[12] != ' ' && s[12] != '\r' && s[12] != '\n')) {
		printable(line, sizeof(line), s, len);
		snprintf(msg, sizeof(msg), "http: bad status line \"%s\"", line);
		hc_done(b, false, msg);
		return;
	}
	code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (code < c->expect_min || code > c->expect_max) {
		snprintf(msg, sizeof(msg), "http status %u not in %u-%u", code, c->expect_min,
			 c->expect_max);
		hc_done(b, false, msg);
		return;
	}
	snprintf(msg, sizeof(msg), "ok: http %u", code);
	hc_done(b, true, msg);
}

static void http_read(struct hc_backend *b)
{
	const char *nl;

	for (;;) {
		ssize_t n = read(b->ev.fd, b->buf + b->got, sizeof(b->buf) - b->got);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				hc_fail_errno(b, "read", errno);
			return;
		}
		if (n == 0) {
			if (b->got)
				http_judge(b, b->got);
			else
				hc_done(b, false, "http: connection closed before status line");
			return;
		}
		/* Only the status line matters: judge as soon as it is complete. */
		nl = memchr(b->buf + b->got, '\n', n);
		b->got += n;
		if (nl) {
			http_judge(b, nl - b->buf);
			return;
		}
		if (b->got == sizeof(b->buf)) {
			hc_done(b, false, "http: no status line in the first 1024 bytes");
			return;
		}
	}
}

/* Sends what is left of the request; then waits for the answer. */
static void http_send(struct hc_backend *b)
{
	int rc;

	while (b->sent < b->req_len) {
		ssize_t n = send(b->ev.fd, b->req + b->sent, b->req_len - b->sent, MSG_NOSIGNAL);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;		/* EPOLLOUT again */
			hc_fail_errno(b, "send", errno);
			return;
		}
		b->sent += n;
	}
	b->phase = HC_READING;
	rc = lb_loop_mod(b->h->loop, &b->ev, EPOLLIN);
	if (rc < 0)
		hc_local_error(b, "epoll", -rc);
}

static void hc_connected(struct hc_backend *b)
{
	if (b->conf->type != LB_CHECK_HTTP) {
		hc_done(b, true, "ok: tcp connect");
		return;
	}
	b->phase = HC_SENDING;
	http_send(b);
}

static void hc_event(struct lb_event *ev, uint32_t events)
{
	struct hc_backend *b = lb_container_of(ev, struct hc_backend, ev);
	int err = 0;
	socklen_t len = sizeof(err);

	switch (b->phase) {
	case HC_CONNECTING:
		if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
			err = errno;
		if (err && lb_reach_local(&b->addr, err, false)) {
			hc_local_error(b, "connect", err);
			return;
		}
		if (err) {
			hc_fail_errno(b, "connect", err);
			return;
		}
		if (events & (EPOLLERR | EPOLLHUP)) {
			hc_done(b, false, "connect: connection closed");
			return;
		}
		hc_connected(b);
		break;
	case HC_SENDING:
		http_send(b);
		break;
	case HC_READING:
		http_read(b);
		break;
	case HC_IDLE:
		break;
	}
}

static void hc_timeout(struct lb_timer *t)
{
	struct hc_backend *b = lb_container_of(t, struct hc_backend, deadline);
	char msg[HC_MSG_MAX];

	if (b->phase == HC_CONNECTING && lb_reach_local(&b->addr, ETIMEDOUT, false)) {
		hc_local_error(b, "connect", ETIMEDOUT);
		return;
	}
	snprintf(msg, sizeof(msg), "timeout after %u ms %s", b->conf->timeout_ms,
		 b->phase == HC_CONNECTING ? "connecting" :
		 b->phase == HC_SENDING ? "sending the request" : "waiting for the status line");
	hc_done(b, false, msg);
}

/*
 * Begins one check: a plain socket from the gateway's own address (no
 * bind, not transparent), so the backend answers it like any host.
 */
static void hc_start(struct hc_backend *b)
{
	struct lb_loop *loop = b->h->loop;
	int fd, rc;

	b->started = lb_loop_now(loop);
	if (b->conf->type == LB_CHECK_NONE && !shm_down(b)) {
		/* Passive only: nothing to do while the workers find it up. */
		b->seen_down = false;
		b->successes = b->failures = 0;
		hc_schedule(b);
		return;
	}
	fd = socket(b->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		hc_local_error(b, "socket", errno);
		return;
	}
	b->ev.fd = fd;
	b->sent = b->got = 0;
	b->phase = HC_CONNECTING;
	rc = lb_loop_timer_set(loop, &b->deadline, b->started + b->conf->timeout_ms);
	if (rc < 0) {
		hc_local_error(b, "timer", -rc);
		return;
	}
	if (connect(fd, &b->addr.sa, lb_addr_len(&b->addr)) == -1) {
		if (errno != EINPROGRESS) {
			if (lb_reach_local(&b->addr, errno, true))
				hc_local_error(b, "connect", errno);
			else
				hc_fail_errno(b, "connect", errno);
			return;
		}
		rc = lb_loop_add(loop, &b->ev, EPOLLOUT);
		if (rc < 0) {
			/* Not registered: keep hc_close from deleting it. */
			close(fd);
			b->ev.fd = -1;
			hc_local_error(b, "epoll", -rc);
		}
		return;
	}
	/* Connected at once (loopback): register for the http exchange. */
	rc = lb_loop_add(loop, &b->ev, EPOLLOUT);
	if (rc < 0) {
		close(fd);
		b->ev.fd = -1;
		hc_local_error(b, "epoll", -rc);
		return;
	}
	hc_connected(b);
}

static void hc_next(struct lb_timer *t)
{
	hc_start(lb_container_of(t, struct hc_backend, next));
}

static int build_request(struct hc_backend *b)
{
	const struct lb_health_conf *c = b->conf;
	char host[LB_ADDR_STRLEN];
	const char *hostp = c->host ? c->host : lb_addr_format(&b->addr, host, sizeof(host));
	int n;

	n = asprintf(&b->req,
		     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: lb-health\r\n"
		     "Connection: close\r\n\r\n", c->path, hostp);
	if (n < 0) {
		b->req = NULL;
		return -ENOMEM;
	}
	b->req_len = n;
	return 0;
}

struct lb_health *lb_health_start(struct lb_loop *loop, const struct lb_config *cfg,
					  struct lb_shm *shm)
{
	struct lb_health *h = calloc(1, sizeof(*h));
	uint64_t now = lb_loop_now(loop);
	size_t k = 0;
	int rc = -ENOMEM;

	if (!h)
		return NULL;
	h->loop = loop;
	h->cfg = cfg;
	h->shm = shm;
	h->n = shm->n_backends;
	h->confs = calloc(cfg->n_services, sizeof(*h->confs));
	h->b = calloc(h->n, sizeof(*h->b));
	if ((cfg->n_services && !h->confs) || (h->n && !h->b))
		goto fail;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct lb_service_conf *svc = &cfg->services[i];
		const struct lb_health_conf *c = &h->confs[i];

		conf_effective(&h->confs[i], &svc->health);
		for (size_t j = 0; j < svc->n_backends; j++, k++) {
			struct hc_backend *b = &h->b[k];

			b->h = h;
			b->svc = i;
			b->idx = j;
			b->conf = c;
			b->addr = svc->backends[j].addr;
			if (c->port)
				lb_addr_set_port(&b->addr, c->port);
			b->ev.fd = -1;
			b->ev.cb = hc_event;
			b->next.cb = hc_next;
			b->deadline.cb = hc_timeout;
			b->seen_down = shm_down(b);
			if (c->type == LB_CHECK_HTTP) {
				rc = build_request(b);
				if (rc < 0)
					goto fail;
			}
			/* Spread the first checks of a service over its interval. */
			rc = lb_loop_timer_set(loop, &b->next,
					       now + (uint64_t)c->interval_ms * j / svc->n_backends);
			if (rc < 0)
				goto fail;
		}
	}
	return h;
fail:
	lb_health_stop(h);
	errno = -rc;
	return NULL;
}

/*
 * Call it after lb_loop_run() returns or from the loop's after hook: an
 * event of the current batch may still name a check socket.
 */
void lb_health_stop(struct lb_health *h)
{
	if (!h)
		return;
	for (size_t i = 0; h->b && i < h->n; i++) {
		struct hc_backend *b = &h->b[i];

		if (!b->h)
			continue;	/* never set up (failed start) */
		hc_close(b);
		lb_loop_timer_cancel(h->loop, &b->next);
		free(b->req);
	}
	free(h->b);
	free(h->confs);
	free(h);
}
