// SPDX-License-Identifier: GPL-2.0-or-later
/* The listening side of peer's server modes; see server.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4 */
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"
#include "server.h"

#define DEFAULT_BACKLOG 4096
/* -F: SYNs with data (TCP Fast Open) not yet accepted, at most. */
#define FASTOPEN_QLEN 256

struct listener {
	const struct server_mode *none;	/* NULL: tells it from a struct sconn */
	int fd;
	const struct server_mode *mode;	/* of what it accepts */
};

static bool verbose;

void sconn_log_end(const struct sconn *c, const char *how, int err)
{
	char a[ADDR_STRLEN];

	if (!verbose)
		return;
	if (err == ECONNRESET)
		how = "reset";
	fprintf(stderr, "%s: %s: %s: %s%s%s\n", prog, c->mode->name,
		addr_fmt(&c->peer, a, sizeof(a)), how, err && err != ECONNRESET ? ": " : "",
		err && err != ECONNRESET ? strerror(err) : "");
}

void sconn_close(struct sconn *c, bool rst)
{
	if (rst)
		sock_close_rst(c->fd);
	else
		close(c->fd);
	free(c);
}

void sconn_want(int ep, struct sconn *c, uint32_t events)
{
	if (events != c->events) {
		ep_set(ep, EPOLL_CTL_MOD, c->fd, events, c);
		c->events = events;
	}
}

static int listen_on(const char *spec, int backlog, bool fastopen)
{
	int qlen = FASTOPEN_QLEN;
	char a[ADDR_STRLEN];
	const char *what;
	struct addr ad;
	int fd;

	if (addr_parse(&ad, spec) < 0)
		die("bad address '%s' (want 198.18.0.1:80 or [2001:db8::1]:80)", spec);
	fd = sock_listen(&ad, backlog, false, &what);
	if (fd < 0)
		die("%s %s: %s", what, addr_fmt(&ad.ss, a, sizeof(a)), strerror(-fd));
	if (fastopen && setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof(qlen)) == -1)
		die("TCP_FASTOPEN %s: %s", addr_fmt(&ad.ss, a, sizeof(a)), strerror(errno));
	fprintf(stderr, "%s: listening on %s\n", prog, addr_fmt(&ad.ss, a, sizeof(a)));
	return fd;
}

static void accept_all(int ep, struct listener *l)
{
	for (;;) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct sconn *c;

		if (fd == -1) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				fprintf(stderr, "%s: accept: %s\n", prog, strerror(errno));
			return;
		}
		c = xcalloc(1, sizeof(*c));
		c->mode = l->mode;
		c->fd = fd;
		c->peer = ss;
		c->events = EPOLLIN;
		if (c->mode->accepted && !c->mode->accepted(c))
			continue;
		ep_set(ep, EPOLL_CTL_ADD, fd, c->events, c);
	}
}

static void server_event(void *ctx, epoll_data_t data, uint32_t events)
{
	const struct server_mode *const *mode = data.ptr;
	int ep = ((struct loop *)ctx)->ep;

	if (!*mode)
		accept_all(ep, data.ptr);
	else
		(*mode)->event(ep, data.ptr, events);
}

int server_run(const struct server_mode *mode, int argc, char **argv)
{
	struct server_conf conf = { .backlog = -1 };
	struct listener *ls;
	struct loop loop;
	int opt;

	optind = 1;
	while ((opt = getopt(argc, argv, mode->optstring)) != -1) {
		if (opt == 'v')
			verbose = true;
		else if (opt == 'F')
			conf.fastopen = true;
		else if (opt == '?' || !mode->option || mode->option(&conf, opt, optarg) < 0)
			usage();
	}
	if (conf.backlog < 0)
		conf.backlog = conf.no_accept ? 1 : DEFAULT_BACKLOG;
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage();
	ls = xcalloc((size_t)argc, sizeof(*ls));
	loop_setup(&loop, NULL, server_event, &loop);
	for (int i = 0; i < argc; i++) {
		ls[i].mode = mode;
		ls[i].fd = listen_on(argv[i], conf.backlog, conf.fastopen);
		/* sink -A: never accept, so the queue fills and stays full. */
		if (!conf.no_accept)
			ep_set(loop.ep, EPOLL_CTL_ADD, ls[i].fd, EPOLLIN, &ls[i]);
	}
	loop_run(&loop);
	/* Open connections are left to exit(); listeners are freed so leak
	 * checkers stay quiet about the common case. */
	for (int i = 0; i < argc; i++)
		close(ls[i].fd);
	free(ls);
	loop_close(&loop);
	return mode->done ? mode->done() : 0;
}
