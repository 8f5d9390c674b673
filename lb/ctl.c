// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control socket server. It runs in the master's loop, which must never
 * block: every client socket is non-blocking with its own input and output
 * buffer, EPOLLOUT is asked for only while output is pending, and a client
 * that stops reading its replies is no longer read from (backpressure)
 * until it does, then dropped when it idles too long. Requests are
 * answered in order by lb_ctl_handle_line() (ctl_cmd.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lb/ctl.h"
#include "lb/log.h"

#define CTL_MAX_CLIENTS 1024
#define CTL_READ_CHUNK 16384
#define CTL_OUT_HIGH (1u << 20)		/* stop answering while this much is unread */
#define CTL_OUT_MAX (64u << 20)		/* one client's unread output: dropped beyond */
#define CTL_IDLE_MS 300000		/* no byte read or written for this long: dropped */
#define CTL_ACCEPT_BATCH 64
#define CTL_ACCEPT_PAUSE_MS 100		/* out of fds: stop accepting for a moment */

/* ---- line splitter ---- */

int lb_ctl_input_append(struct lb_ctl_input *in, const char *data, size_t len)
{
	size_t held;

	if (in->discarding) {
		const char *nl = memchr(data, '\n', len);

		if (!nl)
			return 0;
		in->discarding = false;
		len -= nl + 1 - data;
		data = nl + 1;
	}
	if (!len)
		return 0;
	held = in->len - in->start;
	if (in->start && in->len + len > in->cap) {
		memmove(in->buf, in->buf + in->start, held);
		in->scan -= in->start;
		in->len = held;
		in->start = 0;
	}
	if (in->len + len > in->cap) {
		size_t cap = in->cap ? in->cap : 4096;
		char *buf;

		while (cap < in->len + len)
			cap *= 2;
		buf = realloc(in->buf, cap);
		if (!buf)
			return -ENOMEM;
		in->buf = buf;
		in->cap = cap;
	}
	memcpy(in->buf + in->len, data, len);
	in->len += len;
	return 0;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

enum lb_ctl_next lb_ctl_input_next(struct lb_ctl_input *in, const char **line, size_t *len,
				   bool eof)
{
	if (!in->buf)
		return LB_CTL_NONE;
	for (;;) {
		char *p = in->buf + in->start, *nl;
		size_t held = in->len - in->start;

		if (in->scan < in->start)
			in->scan = in->start;
		nl = held ? memchr(in->buf + in->scan, '\n', in->len - in->scan) : NULL;
		if (!nl) {
			in->scan = in->len;
			if (held > LB_CTL_LINE_MAX) {
				/* Answered now, in order: every earlier line is consumed. */
				in->start = in->scan = in->len = 0;
				in->discarding = true;
				return LB_CTL_TOO_LONG;
			}
			if (!eof || !held)
				return LB_CTL_NONE;
			in->start = in->scan = in->len = 0;
			if (blank(p, held))
				return LB_CTL_NONE;
			*line = p;
			*len = held;
			return LB_CTL_LINE;
		}
		in->start = in->scan = nl + 1 - in->buf;
		if ((size_t)(nl - p) > LB_CTL_LINE_MAX) {
			/* Arrived whole in one append: too long all the same. */
			return LB_CTL_TOO_LONG;
		}
		if (blank(p, nl - p))
			continue;
		*line = p;
		*len = nl - p;
		return LB_CTL_LINE;
	}
}

size_t lb_ctl_input_pending(const struct lb_ctl_input *in)
{
	return in->len - in->start;
}

void lb_ctl_input_fini(struct lb_ctl_input *in)
{
	free(in->buf);
	memset(in, 0, sizeof(*in));
}

/* ---- server ---- */

struct client {
	struct lb_event ev;
	struct lb_ctl *ctl;
	struct client *prev, *next;
	struct lb_ctl_input in;
	char *out;
	size_t out_off, out_len, out_cap;
	struct ucred peer;
	struct lb_timer idle;
	uint32_t events;		/* registered with the loop */
	bool eof;			/* the client will send nothing more */
	bool dead;			/* closed; freed by the reaper after this batch */
};

struct lb_ctl {
	struct lb_loop *loop;
	struct lb_ctl_state *st;
	struct lb_event listen;
	char *path;
	dev_t dev;
	ino_t ino;			/* of our socket file: only that one is unlinked */
	struct client *clients, *graveyard;
	unsigned int n_clients;
	struct lb_timer reaper, accept_pause;
	uint64_t emfile_log_ms;
};

unsigned int lb_ctl_clients(const struct lb_ctl *ctl)
{
	return ctl ? ctl->n_clients : 0;
}

static void client_free(struct client *c)
{
	lb_ctl_input_fini(&c->in);
	free(c->out);
	free(c);
}

/*
 * Other events of the current batch may still name c, so it is only
 * marked dead here and freed by the reaper, a timer due at once, which the
 * loop runs after the batch's events.
 */
static void client_close(struct client *c, const char *why)
{
	struct lb_ctl *ctl = c->ctl;

	if (c->dead)
		return;
	if (why)
		lb_debug("control: uid %u pid %d: %s", (unsigned int)c->peer.uid,
			 (int)c->peer.pid, why);
	c->dead = true;
	lb_loop_del(ctl->loop, &c->ev);
	close(c->ev.fd);
	c->ev.fd = -1;
	lb_loop_timer_cancel(ctl->loop, &c->idle);
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	ctl->n_clients--;
	c->next = ctl->graveyard;
	ctl->graveyard = c;
	lb_loop_timer_set(ctl->loop, &ctl->reaper, lb_loop_now(ctl->loop));
}

static void reap(struct lb_timer *t)
{
	struct lb_ctl *ctl = lb_container_of(t, struct lb_ctl, reaper);

	while (ctl->graveyard) {
		struct client *c = ctl->graveyard;

		ctl->graveyard = c->next;
		client_free(c);
	}
}

static void idle_expired(struct lb_timer *t)
{
	client_close(lb_container_of(t, struct client, idle), "idle: dropped");
}

static void touch(struct client *c)
{
	lb_loop_timer_set(c->ctl->loop, &c->idle, lb_loop_now(c->ctl->loop) + CTL_IDLE_MS);
}

static int out_append(struct client *c, const char *s, size_t n)
{
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len - c->out_off + n > CTL_OUT_MAX)
		return -ENOBUFS;
	if (c->out_len + n > c->out_cap && c->out_off) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	if (c->out_len + n > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		while (cap < c->out_len + n)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, n);
	c->out_len += n;
	return 0;
}

static size_t out_pending(const struct client *c)
{
	return c->out_len - c->out_off;
}

/* Writes what the socket takes now; false when the client was closed. */
static bool client_flush(struct client *c)
{
	while (out_pending(c)) {
		ssize_t n = send(c->ev.fd, c->out + c->out_off, out_pending(c),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			client_close(c, "write failed: dropped");
			return false;
		}
		c->out_off += n;
		touch(c);
	}
	return true;
}

/* Answers buffered requests while the client keeps up with the replies. */
static bool client_answer(struct client *c)
{
	static const char oom[] =
		"{\"ok\":false,\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}\n";
	const char *line;
	size_t len;

	while (out_pending(c) < CTL_OUT_HIGH) {
		enum lb_ctl_next r = lb_ctl_input_next(&c->in, &line, &len, c->eof);
		char *reply;
		int rc;

		if (r == LB_CTL_NONE)
			break;
		if (r == LB_CTL_LINE)
			reply = lb_ctl_handle_line(c->ctl->st, line, len, &c->peer);
		else
			reply = lb_ctl_error_line("line_too_long", "request line longer than "
						  "65536 bytes: skipped up to its newline");
		rc = reply ? out_append(c, reply, strlen(reply)) : out_append(c, oom, sizeof(oom) - 1);
		free(reply);
		if (rc < 0) {
			client_close(c, "reply backlog too large: dropped");
			return false;
		}
	}
	return client_flush(c);
}

/* Registers the events c waits for now; closes it when it is done. */
static void client_update(struct client *c)
{
	bool backlog = out_pending(c) >= CTL_OUT_HIGH;
	uint32_t want = 0;

	if (!c->eof && !backlog)
		want |= EPOLLIN;
	if (out_pending(c))
		want |= EPOLLOUT;
	if (c->eof && !out_pending(c)) {
		client_close(c, NULL);
		return;
	}
	if (want != c->events) {
		if (lb_loop_mod(c->ctl->loop, &c->ev, want) < 0) {
			client_close(c, "epoll_ctl failed: dropped");
			return;
		}
		c->events = want;
	}
}

static void client_event(struct lb_event *ev, uint32_t events)
{
	struct client *c = lb_container_of(ev, struct client, ev);
	char buf[CTL_READ_CHUNK];

	if (c->dead)
		return;
	if (events & EPOLLERR) {
		client_close(c, "socket error: dropped");
		return;
	}
	if ((events & EPOLLOUT) && !client_flush(c))
		return;
	if ((events & (EPOLLIN | EPOLLHUP)) && !c->eof && out_pending(c) < CTL_OUT_HIGH) {
		/* One read per event: level-triggered, so a busy client cannot starve others. */
		ssize_t n = read(c->ev.fd, buf, sizeof(buf));

		if (n > 0) {
			touch(c);
			if (lb_ctl_input_append(&c->in, buf, n) < 0) {
				client_close(c, "out of memory: dropped");
				return;
			}
		} else if (n == 0) {
			c->eof = true;
		} else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			client_close(c, "read failed: dropped");
			return;
		}
	} else if ((events & EPOLLHUP) && out_pending(c)) {
		client_close(c, "hung up with replies unread: dropped");
		return;
	}
	if (!client_answer(c))
		return;
	client_update(c);
}

static void refuse(int fd)
{
	static const char busy[] = "{\"ok\":false,\"error\":{\"code\":\"too_many_clients\","
		"\"message\":\"too many control clients\"}}\n";
	ssize_t n = send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);

	(void)n;
	close(fd);
}

static void accept_resume(struct lb_timer *t)
{
	struct lb_ctl *ctl = lb_container_of(t, struct lb_ctl, accept_pause);

	lb_loop_mod(ctl->loop, &ctl->listen, EPOLLIN);
}

static void listen_event(struct lb_event *ev, uint32_t events)
{
	struct lb_ctl *ctl = lb_container_of(ev, struct lb_ctl, listen);

	for (int i = 0; i < CTL_ACCEPT_BATCH; i++) {
		socklen_t sl = sizeof(struct ucred);
		struct client *c;
		int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd == -1) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				uint64_t now = lb_loop_now(ctl->loop);

				if (now - ctl->emfile_log_ms >= 10000 || !ctl->emfile_log_ms) {
					lb_warn("control: accept: %s; pausing", strerror(errno));
					ctl->emfile_log_ms = now;
				}
				lb_loop_mod(ctl->loop, &ctl->listen, 0);
				lb_loop_timer_set(ctl->loop, &ctl->accept_pause,
						  now + CTL_ACCEPT_PAUSE_MS);
			}
			return;
		}
		if (ctl->n_clients >= CTL_MAX_CLIENTS) {
			refuse(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ctl = ctl;
		c->ev.fd = fd;
		c->ev.cb = client_event;
		c->idle.cb = idle_expired;
		c->peer.pid = 0;
		c->peer.uid = c->peer.gid = (uid_t)-1;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->peer, &sl) == -1)
			c->peer.uid = (uid_t)-1;
		c->events = EPOLLIN;
		if (lb_loop_add(ctl->loop, &c->ev, c->events) < 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = ctl->clients;
		if (c->next)
			c->next->prev = c;
		ctl->clients = c;
		ctl->n_clients++;
		touch(c);
	}
}

/* mkdir -p for path's directory; new directories get 0755. */
static int make_parent(const char *path, char *err, size_t errlen)
{
	char *dir = strdup(path), *p;
	int rc = 0;

	if (!dir)
		return -ENOMEM;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		goto cleanup;
	*p = '\0';
	for (p = dir + 1;; p++) {
		if (*p != '/' && *p)
			continue;
		char saved = *p;

		*p = '\0';
		if (mkdir(dir, 0755) == 0) {
			/* Whatever the umask: lbctl users must be able to reach the socket. */
			chmod(dir, 0755);
		} else if (errno != EEXIST) {
			rc = -errno;
			snprintf(err, errlen, "control socket %s: mkdir %s: %s", path, dir,
				 strerror(errno));
			goto cleanup;
		}
		*p = saved;
		if (!saved)
			break;
	}
cleanup:
	free(dir);
	return rc;
}

/*
 * Is someone accepting on the socket file at path? -ECONNREFUSED: nobody
 * (a stale file), 0: somebody, other -errno: cannot tell.
 */
static int probe(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc = 0;

	if (fd == -1)
		return -errno;
	/* Non-blocking: a full backlog (EAGAIN) still means a live listener. */
	if (connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == -1 && errno != EAGAIN)
		rc = -errno;
	close(fd);
	return rc;
}

static int bind_socket(struct lb_ctl *ctl, const struct lb_config *cfg, char *err,
		       size_t errlen)
{
	const char *path = ctl->path;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	mode_t mode = cfg->control_mode, old_mask;
	struct stat sb;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "control socket %s: path longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	rc = make_parent(path, err, errlen);
	if (rc < 0)
		return rc;
	if (lstat(path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode)) {
			snprintf(err, errlen, "control socket %s: exists and is not a socket", path);
			return -EEXIST;
		}
		rc = probe(&sun);
		if (rc == 0) {
			snprintf(err, errlen, "control socket %s: in use: another lb is running "
				 "with this control path", path);
			return -EADDRINUSE;
		}
		if (rc != -ECONNREFUSED) {
			snprintf(err, errlen, "control socket %s: cannot tell whether it is in "
				 "use: %s", path, strerror(-rc));
			return rc;
		}
		/* Left behind by an lb that did not exit cleanly. */
		if (unlink(path) == -1 && errno != ENOENT) {
			rc = -errno;
			snprintf(err, errlen, "control socket %s: removing the stale socket: %s",
				 path, strerror(errno));
			return rc;
		}
		lb_info("control socket %s: replaced a stale socket file", path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		rc = -errno;
		snprintf(err, errlen, "control socket: socket: %s", strerror(errno));
		return rc;
	}
	/*
	 * Never reachable with a wider mode than asked, not even briefly: bind
	 * creates it with the owner bits only, the group is set, then the mode.
	 */
	old_mask = umask(0777 & ~(mode & 0700));
	rc = bind(fd, (const struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (rc == -1) {
		rc = -errno;
		snprintf(err, errlen, "control socket %s: bind: %s", path, strerror(errno));
		goto fail;
	}
	if (cfg->control_group) {
		struct group *gr;

		errno = 0;
		gr = getgrnam(cfg->control_group);
		if (!gr) {
			rc = errno ? -errno : -ENOENT;
			snprintf(err, errlen, "control socket %s: group %s: %s", path,
				 cfg->control_group, errno ? strerror(errno) : "no such group");
			goto fail_unlink;
		}
		if (chown(path, (uid_t)-1, gr->gr_gid) == -1) {
			rc = -errno;
			snprintf(err, errlen, "control socket %s: chown to group %s: %s", path,
				 cfg->control_group, strerror(errno));
			goto fail_unlink;
		}
	}
	if (chmod(path, mode) == -1) {
		rc = -errno;
		snprintf(err, errlen, "control socket %s: chmod %04o: %s", path, (unsigned int)mode,
			 strerror(errno));
		goto fail_unlink;
	}
	if (stat(path, &sb) == 0) {
		ctl->dev = sb.st_dev;
		ctl->ino = sb.st_ino;
	}
	if (listen(fd, SOMAXCONN) == -1) {
		rc = -errno;
		snprintf(err, errlen, "control socket %s: listen: %s", path, strerror(errno));
		goto fail_unlink;
	}
	return fd;
fail_unlink:
	unlink(path);
fail:
	close(fd);
	return rc;
}

struct lb_ctl *lb_ctl_open(struct lb_loop *loop, const struct lb_config *cfg,
			   struct lb_ctl_state *st, char *err, size_t errlen)
{
	struct lb_ctl *ctl = calloc(1, sizeof(*ctl));
	int rc;

	if (!ctl || !(ctl->path = strdup(cfg->control_path))) {
		snprintf(err, errlen, "control socket: out of memory");
		free(ctl);
		errno = ENOMEM;
		return NULL;
	}
	ctl->loop = loop;
	ctl->st = st;
	ctl->reaper.cb = reap;
	ctl->accept_pause.cb = accept_resume;
	ctl->listen.cb = listen_event;
	rc = bind_socket(ctl, cfg, err, errlen);
	if (rc < 0)
		goto fail;
	ctl->listen.fd = rc;
	rc = lb_loop_add(loop, &ctl->listen, EPOLLIN);
	if (rc < 0) {
		snprintf(err, errlen, "control socket %s: epoll: %s", ctl->path, strerror(-rc));
		close(ctl->listen.fd);
		unlink(ctl->path);
		goto fail;
	}
	lb_info("control socket %s (mode %04o%s%s)", ctl->path, cfg->control_mode,
		cfg->control_group ? ", group " : "", cfg->control_group ? cfg->control_group : "");
	return ctl;
fail:
	free(ctl->path);
	free(ctl);
	errno = -rc;
	return NULL;
}

void lb_ctl_close(struct lb_ctl *ctl)
{
	struct stat sb;

	if (!ctl)
		return;
	while (ctl->clients)
		client_close(ctl->clients, NULL);
	lb_loop_timer_cancel(ctl->loop, &ctl->reaper);
	lb_loop_timer_cancel(ctl->loop, &ctl->accept_pause);
	reap(&ctl->reaper);
	lb_loop_del(ctl->loop, &ctl->listen);
	close(ctl->listen.fd);
	/* Another lb may have replaced a file we thought was ours: leave its. */
	if (lstat(ctl->path, &sb) == 0 && sb.st_dev == ctl->dev && sb.st_ino == ctl->ino)
		unlink(ctl->path);
	free(ctl->path);
	free(ctl);
}
