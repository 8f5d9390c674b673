// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Active health checks, run by the master in its own loop. A probe is an
 * interval timer that starts a check, a timeout timer that ends it, and at
 * most one non-blocking socket. A check is a connect (tcp) or a connect,
 * one HTTP/1.0 request and its status line (http). A backend that several
 * services share with the same check (address, port, kind, path, interval
 * and timeout) is probed once for all of them: each service's member of
 * the probe counts the results towards its own rise and fall. Probes are
 * spread evenly over their interval, with a little jitter each round, so
 * 30,000 backends make a steady trickle of checks, never a burst.
 * Services without a health block only get tcp probes while their backend
 * is down in shm (workers put it there after `fall` failed connects), so
 * that it comes back once it answers again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lb/bigmem.h"
#include "lb/hash.h"
#include "lb/health.h"
#include "lb/log.h"
#include "lb/reach.h"

#define HC_READ_MAX 1024		/* a status line longer than this is not HTTP */
#define HC_MSG_MAX 96			/* = sizeof(lb_shm_backend.last_check_msg) */

/* Why a probe's next timer fires. */
enum hc_wake {
	HC_WAKE_DUE,		/* its check is due */
	HC_WAKE_PACED,		/* it waited for the pacer, which lets it start now */
	HC_WAKE_RESERVED,	/* it waited for a socket, and a check that ended kept it one */
};

enum hc_phase {
	HC_IDLE,
	HC_CONNECTING,
	HC_SENDING,
	HC_READING,
};

/* A backend of one service, as the checks of its probe judge it. */
struct hc_member {
	size_t svc, idx;
	uint64_t key;			/* equal for members one probe serves (member_key) */
	unsigned int successes, failures;	/* consecutive, in the state of seen_down */
	bool seen_down;			/* shm state the counters were counted for */
};

struct hc_probe {
	struct lb_health *h;
	const struct lb_health_conf *conf;	/* effective: defaults filled in */
	union lb_sockaddr addr;		/* backend address with the check port */
	struct lb_event ev;		/* fd -1 between checks */
	struct lb_timer next;		/* starts the next check */
	struct lb_timer deadline;	/* ends the running one */
	enum hc_phase phase;
	uint64_t started;		/* loop clock when the check began */
	struct hc_member *m;		/* its members, in h->members */
	size_t n_m;
	struct hc_probe *queue_next;	/* in the pacer's queue, or in the one for sockets */
	enum hc_wake wake;
	char *req;			/* http request, built once */
	size_t req_len, sent, got;
	char *buf;			/* http: HC_READ_MAX bytes for the status line */
};

#define HC_PACE_MS		100
#define HC_PACE_HEADROOM	1.5
#define HC_PACE_BURST_MS	4	/* the most milliseconds of starts one loop turn takes */

struct lb_health {
	struct lb_loop *loop;
	const struct lb_config *cfg;
	struct lb_shm *shm;
	struct lb_health_conf *confs;	/* one per service */
	struct hc_member *members;	/* one per backend of every service */
	struct hc_probe *p;
	size_t n, n_probes;
	uint64_t rng;			/* jitter */
	/*
	 * Sockets of checks under way, at most max_open: checks that fall due
	 * beyond it wait, in order, for one to end, so that backends that time
	 * out by the thousand never take the master's last file descriptors
	 * (a reload reads the config, the control socket accepts).
	 */
	size_t open, max_open;
	struct hc_probe *wait_head, *wait_tail;
	uint64_t waited, waited_logged_ms;
	/*
	 * The pacer: in any HC_PACE_MS of the loop clock at most pace_max
	 * checks start, 1.5 times what all probes' intervals ask for, so that
	 * checks a stalled loop (a long reload, a stopped master) left overdue
	 * resume at that pace, in order, instead of all at once. starts[]
	 * counts the starts of each of the last HC_PACE_MS milliseconds (by
	 * ms % HC_PACE_MS, up to pace_at); those over the budget wait in the
	 * pace queue for pace_timer. Within the window starts also take
	 * tokens, pace_ms_max (the same rate) a millisecond, at most
	 * HC_PACE_BURST_MS milliseconds' worth at once: a window's budget spent
	 * at once would come back at once a window later, and again while
	 * checks wait, a burst every HC_PACE_MS that held the control socket
	 * for tens of ms. Tokens, not a cap per millisecond: a loop turn that
	 * takes 2 ms must start 2 ms of checks, or the queue never drains.
	 */
	uint32_t starts[HC_PACE_MS];
	uint64_t pace_at;
	size_t pace_sum, pace_max, pace_ms_max, pace_tokens;
	struct hc_probe *pace_head, *pace_tail;
	struct lb_timer pace_timer;
	struct lb_health *next_retired;	/* lb_health_retire() */
};

static void hc_start(struct hc_probe *b);

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

static bool shm_down(const struct lb_health *h, const struct hc_member *m)
{
	const struct lb_shm_backend *sb = lb_shm_backend(h->shm, m->svc, m->idx);

	return atomic_load_explicit(&sb->health, memory_order_relaxed) == LB_HEALTH_DOWN;
}

/*
 * Closes b's socket, registered with the loop or not, and lets the first
 * waiting check start: on a timer due now, not from here, where b's own
 * check is still being ended.
 */
static void hc_release(struct hc_probe *b, bool registered)
{
	struct lb_health *h = b->h;
	struct hc_probe *w = h->wait_head;

	if (b->ev.fd == -1)
		return;
	/* del first: a worker forked meanwhile shares the socket. */
	if (registered)
		lb_loop_del(h->loop, &b->ev);
	close(b->ev.fd);
	b->ev.fd = -1;
	h->open--;
	if (w) {
		h->wait_head = w->queue_next;
		if (!h->wait_head)
			h->wait_tail = NULL;
		w->queue_next = NULL;
		w->wake = HC_WAKE_RESERVED;
		h->open++;	/* its slot, so that no new check takes it first */
		if (lb_loop_timer_set(h->loop, &w->next, lb_loop_now(h->loop)) < 0) {
			h->open--;
			w->wake = HC_WAKE_DUE;
			lb_err("health: no memory for a timer; checks of service %s stopped",
			       h->cfg->services[w->m[0].svc].name);
		}
	}
}

static void hc_close(struct hc_probe *b)
{
	hc_release(b, true);
	lb_loop_timer_cancel(b->h->loop, &b->deadline);
	b->phase = HC_IDLE;
}

/*
 * Whether b may open a socket now; if not, queues it behind the others
 * that wait and logs, at most every 10 s, that checks are running late.
 */
static bool hc_may_open(struct hc_probe *b)
{
	struct lb_health *h = b->h;
	uint64_t now = lb_loop_now(h->loop);

	if (h->open < h->max_open && !h->wait_head) {
		h->open++;
		return true;
	}
	if (h->wait_tail)
		h->wait_tail->queue_next = b;
	else
		h->wait_head = b;
	h->wait_tail = b;
	h->waited++;
	if (!h->waited_logged_ms || now - h->waited_logged_ms >= 10000) {
		lb_warn("health: %zu checks under way, the most the master runs at once (half its "
			"open-file limit): later checks wait for one to end and run late "
			"(%" PRIu64 " so far)", h->open, h->waited);
		h->waited_logged_ms = now;
	}
	return false;
}

/*
 * Next check one interval after this one began, not after it ended, give
 * or take a jitter of up to 1/20 of the interval, so that probes that met
 * by chance drift apart again.
 */
static void hc_schedule(struct hc_probe *b)
{
	struct lb_health *h = b->h;
	uint64_t now = lb_loop_now(h->loop), at = b->started + b->conf->interval_ms;
	uint64_t span = b->conf->interval_ms / 10;

	h->rng = h->rng * 6364136223846793005ull + 1442695040888963407ull;
	if (span)
		at = at + (h->rng >> 33) % span - span / 2;
	if (lb_loop_timer_set(h->loop, &b->next, at > now ? at : now) < 0)
		lb_err("health: no memory for a timer; checks of service %s stopped",
		       h->cfg->services[b->m[0].svc].name);
}

static void record(struct lb_health *h, const struct hc_member *m, bool ok, const char *msg)
{
	struct lb_shm_backend *sb = lb_shm_backend(h->shm, m->svc, m->idx);

	sb->last_check_ms = wall_ms();
	sb->last_check_ok = ok;
	snprintf(sb->last_check_msg, sizeof(sb->last_check_msg), "%s", msg);
}

static void set_health(struct lb_health *h, struct hc_member *m, enum lb_health_state health,
		       const char *reason)
{
	/* The master's tick rebuilds Maglev tables: a burst of changes costs one rebuild. */
	lb_shm_set_health(h->shm, h->cfg, m->svc, m->idx, health, reason);
	m->seen_down = health == LB_HEALTH_DOWN;
	m->successes = m->failures = 0;
}

/*
 * Applies a check's result to one member: records it and applies rise and
 * fall. Counters only count in the shm state they were counted for, so a
 * backend that workers took down needs rise fresh successes, whatever came
 * before.
 */
static void judge(struct lb_health *h, struct hc_member *m, bool ok, const char *msg)
{
	const struct lb_health_conf *c = &h->confs[m->svc];
	bool down = shm_down(h, m);
	char reason[HC_MSG_MAX + 48];

	record(h, m, ok, msg);
	if (down != m->seen_down) {
		m->seen_down = down;
		m->successes = m->failures = 0;
	}
	if (ok) {
		m->failures = 0;
		if (++m->successes >= c->rise && down) {
			snprintf(reason, sizeof(reason), "%u consecutive successful check%s: %s",
				 m->successes, m->successes == 1 ? "" : "s", msg);
			set_health(h, m, LB_HEALTH_UP, reason);
		}
	} else {
		m->successes = 0;
		if (++m->failures >= c->fall && !down) {
			snprintf(reason, sizeof(reason), "%u consecutive failed check%s: %s",
				 m->failures, m->failures == 1 ? "" : "s", msg);
			set_health(h, m, LB_HEALTH_DOWN, reason);
		}
	}
}

/* Ends a check: every member judges its result. */
static void hc_done(struct hc_probe *b, bool ok, const char *msg)
{
	char addr[LB_ADDR_STRLEN];

	hc_close(b);
	lb_debug("health: backend %s (%zu service%s): %s",
		 lb_addr_format(&b->addr, addr, sizeof(addr)), b->n_m, b->n_m == 1 ? "" : "s", msg);
	for (size_t i = 0; i < b->n_m; i++)
		judge(b->h, &b->m[i], ok, msg);
	hc_schedule(b);
}

/*
 * A failure of the gateway itself (fds, memory, no route or link down
 * towards the backend): no verdict on the backend, so a link flap on the
 * gateway never takes its backends down, and they count as up again as
 * soon as it is over. Logged when it first happens, not at every interval.
 */
static void hc_local_error(struct hc_probe *b, const char *what, int err)
{
	const struct lb_shm_backend *sb = lb_shm_backend(b->h->shm, b->m[0].svc, b->m[0].idx);
	char msg[HC_MSG_MAX], addr[LB_ADDR_STRLEN];

	snprintf(msg, sizeof(msg), "not checked: %s: %s", what, strerror(err));
	hc_close(b);
	if (strcmp(sb->last_check_msg, msg))
		lb_warn("health: service %s backend %s: %s", b->h->cfg->services[b->m[0].svc].name,
			lb_addr_format(&b->addr, addr, sizeof(addr)), msg);
	for (size_t i = 0; i < b->n_m; i++)
		record(b->h, &b->m[i], false, msg);
	hc_schedule(b);
}

static void hc_fail_errno(struct hc_probe *b, const char *what, int err)
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
static void http_judge(struct hc_probe *b, size_t len)
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

static void http_read(struct hc_probe *b)
{
	const char *nl;

	for (;;) {
		ssize_t n = read(b->ev.fd, b->buf + b->got, HC_READ_MAX - b->got);

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
		if (b->got == HC_READ_MAX) {
			hc_done(b, false, "http: no status line in the first 1024 bytes");
			return;
		}
	}
}

/* Sends what is left of the request; then waits for the answer. */
static void http_send(struct hc_probe *b)
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

static void hc_connected(struct hc_probe *b)
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
	struct hc_probe *b = lb_container_of(ev, struct hc_probe, ev);
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
	struct hc_probe *b = lb_container_of(t, struct hc_probe, deadline);
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

/* Whether the pacer's budget allows one more start at now; takes it if so. */
static bool pace_take(struct lb_health *h, uint64_t now)
{
	size_t burst = h->pace_ms_max * HC_PACE_BURST_MS;

	if (now - h->pace_at >= HC_PACE_MS) {
		memset(h->starts, 0, sizeof(h->starts));
		h->pace_sum = 0;
		h->pace_tokens = burst;
	} else {
		for (uint64_t t = h->pace_at + 1; t <= now; t++) {
			h->pace_sum -= h->starts[t % HC_PACE_MS];
			h->starts[t % HC_PACE_MS] = 0;
		}
		h->pace_tokens += (size_t)(now - h->pace_at) * h->pace_ms_max;
		if (h->pace_tokens > burst)
			h->pace_tokens = burst;
	}
	h->pace_at = now;
	if (h->pace_sum >= h->pace_max || !h->pace_tokens)
		return false;
	h->starts[now % HC_PACE_MS]++;
	h->pace_sum++;
	h->pace_tokens--;
	return true;
}

/* Starts the checks that wait for the pacer, as many as its budget allows. */
static void pace_drain(struct lb_timer *t)
{
	struct lb_health *h = lb_container_of(t, struct lb_health, pace_timer);
	uint64_t now = lb_loop_now(h->loop);

	while (h->pace_head && pace_take(h, now)) {
		struct hc_probe *b = h->pace_head;

		h->pace_head = b->queue_next;
		if (!h->pace_head)
			h->pace_tail = NULL;
		b->queue_next = NULL;
		b->wake = HC_WAKE_PACED;
		hc_start(b);
	}
	if (h->pace_head && lb_loop_timer_set(h->loop, &h->pace_timer, now + 1) < 0)
		lb_err("health: no memory for a timer; waiting checks stopped");
}

/* Queues b behind the checks that wait for the pacer. */
static void pace_wait(struct hc_probe *b)
{
	struct lb_health *h = b->h;

	if (h->pace_tail)
		h->pace_tail->queue_next = b;
	else
		h->pace_head = b;
	h->pace_tail = b;
	/* Armed already, for now + 1 at the latest: moving it there is harmless. */
	if (lb_loop_timer_set(h->loop, &h->pace_timer, lb_loop_now(h->loop) + 1) < 0)
		lb_err("health: no memory for a timer; waiting checks stopped");
}

/*
 * Begins one check: a plain socket from the gateway's own address (no
 * bind, not transparent), so the backend answers it like any host.
 */
static void hc_start(struct hc_probe *b)
{
	struct lb_loop *loop = b->h->loop;
	enum hc_wake wake = b->wake;
	bool connected;
	int fd, rc;

	b->wake = HC_WAKE_DUE;
	b->started = lb_loop_now(loop);
	/* A passive-only probe has its one member (such probes are never shared). */
	if (b->conf->type == LB_CHECK_NONE && !shm_down(b->h, &b->m[0])) {
		/* Passive only: nothing to do while the workers find it up. */
		b->m[0].seen_down = false;
		b->m[0].successes = b->m[0].failures = 0;
		if (wake == HC_WAKE_RESERVED)
			b->h->open--;
		hc_schedule(b);
		return;
	}
	/* In order: behind those that already wait for the pacer. */
	if (wake == HC_WAKE_DUE && (b->h->pace_head || !pace_take(b->h, b->started))) {
		pace_wait(b);
		return;
	}
	/* A slot hc_release kept for it, or one now, or it waits for one. */
	if (wake != HC_WAKE_RESERVED && !hc_may_open(b))
		return;
	fd = socket(b->addr.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		b->h->open--;
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
	connected = connect(fd, &b->addr.sa, lb_addr_len(&b->addr)) == 0;
	if (!connected && errno != EINPROGRESS) {
		if (lb_reach_local(&b->addr, errno, true))
			hc_local_error(b, "connect", errno);
		else
			hc_fail_errno(b, "connect", errno);
		return;
	}
	rc = lb_loop_add(loop, &b->ev, EPOLLOUT);
	if (rc < 0) {
		hc_release(b, false);	/* not registered: not deleted either */
		hc_local_error(b, "epoll", -rc);
		return;
	}
	/* Connected at once (loopback): on to the http exchange. */
	if (connected)
		hc_connected(b);
}

static void hc_next(struct lb_timer *t)
{
	hc_start(lb_container_of(t, struct hc_probe, next));
}

static int build_request(struct hc_probe *b)
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
	/* Only http checks read: 30,000 tcp probes need no buffer each. */
	b->buf = malloc(HC_READ_MAX);
	return b->buf ? 0 : -ENOMEM;
}

/* Orders members so that those one probe can serve are next to each other. */
static const struct lb_health *sort_h;

static int member_cmp(const void *x, const void *y)
{
	const struct hc_member *a = x, *b = y;
	const struct lb_service_conf *sa = &sort_h->cfg->services[a->svc];
	const struct lb_service_conf *sb = &sort_h->cfg->services[b->svc];
	const struct lb_health_conf *ca = &sort_h->confs[a->svc], *cb = &sort_h->confs[b->svc];
	union lb_sockaddr aa, ab;
	int c;

	/* Different keys are different probes: 30,000 members sort in a few ms. */
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	aa = sa->backends[a->idx].addr;
	ab = sb->backends[b->idx].addr;
	if (ca->port)
		lb_addr_set_port(&aa, ca->port);
	if (cb->port)
		lb_addr_set_port(&ab, cb->port);
	if ((c = memcmp(&aa, &ab, sizeof(aa))))
		return c;
	if (ca->type != cb->type)
		return ca->type < cb->type ? -1 : 1;
	/* Passive-only probes go by the state of their one service: never shared. */
	if (ca->type == LB_CHECK_NONE)
		return a->svc < b->svc ? -1 : a->svc > b->svc;
	if (ca->interval_ms != cb->interval_ms)
		return ca->interval_ms < cb->interval_ms ? -1 : 1;
	if (ca->timeout_ms != cb->timeout_ms)
		return ca->timeout_ms < cb->timeout_ms ? -1 : 1;
	if (ca->type == LB_CHECK_HTTP) {
		if ((c = strcmp(ca->path, cb->path)))
			return c;
		if ((c = strcmp(ca->host ? ca->host : "", cb->host ? cb->host : "")))
			return c;
		if (ca->expect_min != cb->expect_min || ca->expect_max != cb->expect_max)
			return ca->expect_min != cb->expect_min ?
			       (ca->expect_min < cb->expect_min ? -1 : 1) :
			       (ca->expect_max < cb->expect_max ? -1 : 1);
	}
	return 0;
}

/*
 * A hash of what member_cmp compares but the http strings: members it
 * finds equal have equal keys.
 */
static uint64_t member_key(const struct lb_health *h, const struct hc_member *m)
{
	const struct lb_health_conf *c = &h->confs[m->svc];
	union lb_sockaddr a = h->cfg->services[m->svc].backends[m->idx].addr;
	const unsigned char *p = (const unsigned char *)&a;
	uint64_t k = 0;

	if (c->port)
		lb_addr_set_port(&a, c->port);
	for (size_t i = 0; i < sizeof(a); i += 8) {
		uint64_t w = 0;

		memcpy(&w, p + i, sizeof(a) - i < 8 ? sizeof(a) - i : 8);
		k = lb_hash_mix64(k ^ w);
	}
	k = lb_hash_mix64(k ^ (uint64_t)c->type ^ (uint64_t)c->interval_ms << 8 ^
			  (uint64_t)c->timeout_ms << 36);
	return c->type == LB_CHECK_NONE ? lb_hash_mix64(k ^ m->svc) : k;
}

/* A member's key and where it is, for sort_members(). */
struct member_ref {
	uint64_t key;
	size_t i;
};

/*
 * Sorts h->members as qsort(member_cmp) would group them: by key, in four
 * passes of a radix sort (qsort's 450,000 calls of member_cmp took 5 ms
 * of a reload at 30,000 backends), then each run of equal keys, rare and
 * short, by member_cmp itself.
 */
static int sort_members(struct lb_health *h)
{
	struct member_ref *a = lb_bigmem_alloc(2 * h->n * sizeof(*a), true), *b, *t;
	uint32_t *count = malloc((UINT16_MAX + 2) * sizeof(*count));
	struct hc_member *sorted = lb_bigmem_alloc(h->n * sizeof(*sorted), true);
	size_t i, run;

	if (!a || !count || !sorted) {
		lb_bigmem_free(a, 2 * h->n * sizeof(*a));
		free(count);
		lb_bigmem_free(sorted, h->n * sizeof(*sorted));
		return -ENOMEM;
	}
	b = a + h->n;
	for (i = 0; i < h->n; i++)
		a[i] = (struct member_ref){ .key = h->members[i].key, .i = i };
	for (unsigned int shift = 0; shift < 64; shift += 16) {
		memset(count, 0, (UINT16_MAX + 2) * sizeof(*count));
		for (i = 0; i < h->n; i++)
			count[(a[i].key >> shift & UINT16_MAX) + 1]++;
		for (i = 1; i <= UINT16_MAX; i++)
			count[i] += count[i - 1];
		for (i = 0; i < h->n; i++)
			b[count[a[i].key >> shift & UINT16_MAX]++] = a[i];
		t = a;
		a = b;
		b = t;
	}
	/* Four passes: a is where it started, the first half. */
	for (i = 0; i < h->n; i++)
		sorted[i] = h->members[a[i].i];
	lb_bigmem_free(a, 2 * h->n * sizeof(*a));
	free(count);
	lb_bigmem_free(h->members, h->n * sizeof(*h->members));
	h->members = sorted;
	sort_h = h;
	for (i = 0; i < h->n; i = run) {
		for (run = i + 1; run < h->n && sorted[run].key == sorted[i].key; run++)
			;
		if (run - i > 1)
			qsort(&sorted[i], run - i, sizeof(*sorted), member_cmp);
	}
	return 0;
}

/* Sets up probe b for its n_m members (b->m set) and schedules its first check at first. */
static int probe_init(struct lb_health *h, struct hc_probe *b, uint64_t first)
{
	const struct hc_member *m = &b->m[0];
	int rc;

	b->h = h;
	b->conf = &h->confs[m->svc];
	b->addr = h->cfg->services[m->svc].backends[m->idx].addr;
	if (b->conf->port)
		lb_addr_set_port(&b->addr, b->conf->port);
	b->ev.fd = -1;
	b->ev.cb = hc_event;
	b->next.cb = hc_next;
	b->deadline.cb = hc_timeout;
	for (size_t i = 0; i < b->n_m; i++)
		b->m[i].seen_down = shm_down(h, &b->m[i]);
	if (b->conf->type == LB_CHECK_HTTP) {
		rc = build_request(b);
		if (rc < 0)
			return rc;
	}
	return lb_loop_timer_set(h->loop, &b->next, first);
}

struct lb_health *lb_health_start(struct lb_loop *loop, const struct lb_config *cfg,
				  struct lb_shm *shm)
{
	struct lb_health *h = calloc(1, sizeof(*h));
	uint64_t now = lb_loop_now(loop);
	struct rlimit rl;
	double rate = 0;	/* checks per ms that the intervals ask for */
	size_t k = 0;
	int rc = -ENOMEM;

	if (!h)
		return NULL;
	h->loop = loop;
	h->cfg = cfg;
	h->shm = shm;
	h->n = shm->n_backends;
	h->rng = now | 1;
	/* Half the open-file limit, which the master raised to its hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		h->max_open = rl.rlim_cur == RLIM_INFINITY ? 16384 : rl.rlim_cur / 2;
	if (h->max_open < 16)
		h->max_open = 16;
	h->confs = calloc(cfg->n_services, sizeof(*h->confs));
	/* The master's alone, and 8 MB at 30,000 backends. */
	h->members = lb_bigmem_alloc(h->n * sizeof(*h->members), true);
	h->p = lb_bigmem_alloc(h->n * sizeof(*h->p), true);
	if ((cfg->n_services && !h->confs) || (h->n && (!h->members || !h->p)))
		goto fail;
	for (size_t i = 0; i < cfg->n_services; i++) {
		conf_effective(&h->confs[i], &cfg->services[i].health);
		for (size_t j = 0; j < cfg->services[i].n_backends; j++, k++)
			h->members[k] = (struct hc_member){ .svc = i, .idx = j };
	}
	for (size_t i = 0; i < h->n; i++)
		h->members[i].key = member_key(h, &h->members[i]);
	if (h->n && sort_members(h) < 0)
		goto fail;
	for (size_t i = 0; i < h->n; i++) {
		struct hc_probe *b = &h->p[h->n_probes];

		if (h->n_probes && !member_cmp(&b[-1].m[0], &h->members[i])) {
			b[-1].n_m++;
			continue;
		}
		b->m = &h->members[i];
		b->n_m = 1;
		h->n_probes++;
	}
	for (size_t i = 0; i < h->n_probes; i++)
		rate += 1.0 / h->confs[h->p[i].m[0].svc].interval_ms;
	h->pace_max = (size_t)(HC_PACE_HEADROOM * rate * HC_PACE_MS) + 1;
	h->pace_ms_max = (size_t)(HC_PACE_HEADROOM * rate) + 1;
	h->pace_tokens = h->pace_ms_max;
	h->pace_at = now;
	h->pace_timer.cb = pace_drain;
	/*
	 * The first checks evenly over each probe's interval, in an order that
	 * mixes services, so no two fall on the same millisecond by design.
	 */
	for (size_t i = 0; i < h->n_probes; i++) {
		struct hc_probe *b = &h->p[i];
		uint64_t slot = (i * 2654435761u) % h->n_probes;

		rc = probe_init(h, b, now + h->confs[b->m[0].svc].interval_ms * slot / h->n_probes);
		if (rc < 0)
			goto fail;
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
	/* Nothing waits any more: closing a socket must not arm another's timer. */
	h->wait_head = h->wait_tail = NULL;
	h->pace_head = h->pace_tail = NULL;
	lb_loop_timer_cancel(h->loop, &h->pace_timer);
	for (size_t i = 0; h->p && i < h->n_probes; i++) {
		struct hc_probe *b = &h->p[i];

		if (!b->h)
			continue;	/* never set up (failed start) */
		hc_close(b);
		lb_loop_timer_cancel(h->loop, &b->next);
		free(b->req);
		free(b->buf);
	}
	lb_bigmem_free(h->p, h->n * sizeof(*h->p));
	lb_bigmem_free(h->members, h->n * sizeof(*h->members));
	free(h->confs);
	free(h);
}

void lb_health_retire(struct lb_health **list, struct lb_health *h)
{
	if (!h)
		return;
	h->next_retired = *list;
	*list = h;
}

void lb_health_stop_list(struct lb_health **list)
{
	while (*list) {
		struct lb_health *h = *list;

		*list = h->next_retired;
		lb_health_stop(h);
	}
}
