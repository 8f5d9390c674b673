// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The master's listening-socket plan (lb/listener.c), without root: which
 * sockets a new generation takes over from the running set, what a failed
 * plan gives back, and what it closes. Taken sockets are stand-ins (any
 * fd); a socket the plan must open fails, as root or not, because a
 * plain listener of the test holds the port.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lb/listener.h"
#include "lb/log.h"
#include "tests/unit.h"

static int busy = -1, group = -1;
static uint16_t busy_port;		/* busy listens there, without SO_REUSEPORT */
static uint16_t group_port;		/* group listens there, with SO_REUSEPORT */

/* A listener on 127.0.0.1 at a port of the kernel's choice. */
static int listener(bool reuseport, uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	ck_assert_int_ge(fd, 0);
	if (reuseport)
		ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	ck_assert_int_eq(listen(fd, 1), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void setup(void)
{
	lb_log_init(LB_LOG_WARN, "test");
	busy = listener(false, &busy_port);
	group = listener(true, &group_port);
}

static void teardown(void)
{
	close(busy);
	close(group);
}

/* A config intercepting on port with IPv4 VIPs, and IPv6 ones too with v6. */
static struct lb_config *config(uint16_t port, bool v6)
{
	char json[640], *errors = NULL;
	struct lb_config *cfg;

	snprintf(json, sizeof(json),
		 "{\"intercept\": {\"port\": %u}, \"services\": [{\"name\": \"web\", "
		 "\"vips\": [\"198.18.100.1:80\"%s], \"backends\": [{\"address\": "
		 "\"198.18.2.2:80\"}%s]}]}", port, v6 ? ", \"[2001:db8:100::1]:80\"" : "",
		 v6 ? ", {\"address\": \"[2001:db8:2::2]:80\"}" : "");
	cfg = lb_config_parse(json, &errors);
	if (!cfg)
		ck_abort_msg("config: %s", errors);
	return cfg;
}

static int stand_in(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* Kinds, as lb/listener.c orders them. */
enum { TCP4, TCP6, UDP4, UDP6 };

/*
 * A running set of n positions on port, each with a stand-in per kind it
 * wants: TCP over IPv4, and IPv6 with v6, and UDP too with udp.
 */
static void running_kinds(struct lb_listener_set *s, uint16_t port, unsigned int n, bool v6,
			  bool udp)
{
	*s = (struct lb_listener_set){ .n = n, .port = port,
				       .wanted = { true, v6, udp, udp && v6 } };
	s->pos = calloc(n, sizeof(*s->pos));
	ck_assert_ptr_nonnull(s->pos);
	for (unsigned int i = 0; i < n; i++)
		for (size_t k = 0; k < LB_LISTENER_KINDS; k++)
			s->pos[i].fd[k] = s->wanted[k] ? stand_in() : -1;
}

static void running(struct lb_listener_set *s, uint16_t port, unsigned int n, bool v6)
{
	running_kinds(s, port, n, v6, false);
}

/* Same port, fewer workers: positions are taken over one for one; the rest stay behind. */
START_TEST(test_plan_takes_over)
{
	struct lb_config *cfg = config(busy_port, true);
	struct lb_listener_set old, plan;
	int fds[LB_LISTENER_FAMILIES], before[3][2];

	running(&old, busy_port, 3, true);
	for (unsigned int i = 0; i < 3; i++)
		for (size_t f = 0; f < 2; f++)
			before[i][f] = old.pos[i].fd[f];
	ck_assert_int_eq(lb_listener_set_plan(&plan, cfg, 2, &old), 0);
	ck_assert_uint_eq(plan.n, 2);
	ck_assert_uint_eq(plan.port, busy_port);
	for (unsigned int i = 0; i < 2; i++) {
		ck_assert_uint_eq(lb_listener_set_fds(&plan, i, LB_PROTO_TCP, fds), 2);
		ck_assert_int_eq(fds[0], before[i][0]);
		ck_assert_int_eq(fds[1], before[i][1]);
		ck_assert_int_eq(old.pos[i].fd[0], -1);
		ck_assert_int_eq(old.pos[i].fd[1], -1);
	}
	/* Position 2 is no longer wanted: the caller closes it with the old set. */
	ck_assert_int_eq(old.pos[2].fd[0], before[2][0]);
	ck_assert_int_eq(old.pos[2].fd[1], before[2][1]);
	lb_listener_set_free(&old);
	ck_assert(!is_open(before[2][0]));
	ck_assert(is_open(before[0][0]));
	ck_assert_ptr_null(old.pos);
	ck_assert_uint_eq(old.n, 0);
	lb_listener_set_free(&plan);
	ck_assert(!is_open(before[0][0]));
	ck_assert(!is_open(before[1][1]));
	lb_config_free(cfg);
}
END_TEST

/*
 * A socket the plan must open cannot be (the port is held): what it took
 * goes back to the running set, position by position, and nothing leaks.
 */
START_TEST(test_plan_fails_gives_back)
{
	struct lb_config *cfg = config(busy_port, false);
	struct lb_listener_set old, plan = { .n = 99 };
	int fd0;

	running(&old, busy_port, 1, false);
	fd0 = old.pos[0].fd[0];
	ck_assert_int_lt(lb_listener_set_plan(&plan, cfg, 2, &old), 0);
	ck_assert_ptr_null(plan.pos);
	ck_assert_uint_eq(plan.n, 0);
	ck_assert_uint_eq(old.n, 1);
	ck_assert_int_eq(old.pos[0].fd[0], fd0);
	ck_assert(is_open(fd0));
	lb_listener_set_free(&old);
	lb_config_free(cfg);
}
END_TEST

/*
 * On a new port, a group that is not lb's own is refused before anything
 * is opened (root could join it, and would take half its connections).
 */
START_TEST(test_plan_probes_new_port)
{
	struct lb_config *cfg = config(group_port, false);
	struct lb_listener_set old, plan;
	int fd0;

	running(&old, (uint16_t)(group_port + 1), 1, false);
	fd0 = old.pos[0].fd[0];
	ck_assert_int_eq(lb_listener_set_plan(&plan, cfg, 1, &old), -EADDRINUSE);
	ck_assert_int_eq(old.pos[0].fd[0], fd0);
	ck_assert(is_open(fd0));
	/* No running set at all (the first start) probes too. */
	ck_assert_int_eq(lb_listener_set_plan(&plan, cfg, 1, NULL), -EADDRINUSE);
	lb_listener_set_free(&old);
	lb_config_free(cfg);
}
END_TEST

/*
 * Giving back: a socket returns to a gap of the running set only where that
 * set serves the family and the port is the same; anything else the plan
 * opened is closed.
 */
START_TEST(test_giveback)
{
	struct lb_listener_set old, plan;
	int taken, opened6, extra, other;

	running(&old, 8080, 2, false);
	taken = old.pos[0].fd[0];
	old.pos[0].fd[0] = -1;
	running(&plan, 8080, 3, true);
	close(plan.pos[0].fd[0]);
	plan.pos[0].fd[0] = taken;
	opened6 = plan.pos[0].fd[1];
	extra = plan.pos[2].fd[0];
	other = plan.pos[1].fd[0];
	lb_listener_set_giveback(&plan, &old);
	ck_assert_ptr_null(plan.pos);
	ck_assert_int_eq(old.pos[0].fd[0], taken);
	ck_assert(is_open(taken));
	/* The running set has no IPv6, position 2 no counterpart, position 1 no gap. */
	ck_assert_int_eq(old.pos[0].fd[1], -1);
	ck_assert(!is_open(opened6));
	ck_assert(!is_open(extra));
	ck_assert_int_ne(old.pos[1].fd[0], other);
	ck_assert(!is_open(other));

	/* Another port: nothing goes back. */
	running(&plan, 8081, 1, false);
	taken = plan.pos[0].fd[0];
	lb_listener_set_close(&old, 0);
	ck_assert(is_open(taken));
	lb_listener_set_giveback(&plan, &old);
	ck_assert_int_eq(old.pos[0].fd[0], -1);
	ck_assert(!is_open(taken));
	lb_listener_set_free(&old);
}
END_TEST

/*
 * UDP sockets are a kind of their own: handed out apart from the TCP ones,
 * and left behind when the new config has no UDP service any more.
 */
START_TEST(test_udp_kinds)
{
	struct lb_config *cfg = config(busy_port, false);
	struct lb_listener_set old, plan;
	int fds[LB_LISTENER_FAMILIES], tcp4, udp4;

	running_kinds(&old, busy_port, 1, false, true);
	tcp4 = old.pos[0].fd[TCP4];
	udp4 = old.pos[0].fd[UDP4];
	ck_assert_uint_eq(lb_listener_set_fds(&old, 0, LB_PROTO_UDP, fds), 1);
	ck_assert_int_eq(fds[0], udp4);
	ck_assert_uint_eq(lb_listener_set_fds(&old, 0, LB_PROTO_TCP, fds), 1);
	ck_assert_int_eq(fds[0], tcp4);
	ck_assert_int_eq(lb_listener_set_plan(&plan, cfg, 1, &old), 0);
	ck_assert(!plan.wanted[UDP4] && !plan.wanted[UDP6] && !plan.wanted[TCP6]);
	ck_assert_int_eq(plan.pos[0].fd[TCP4], tcp4);
	ck_assert_int_eq(plan.pos[0].fd[UDP4], -1);
	ck_assert_int_eq(old.pos[0].fd[UDP4], udp4);
	ck_assert_uint_eq(lb_listener_set_fds(&plan, 0, LB_PROTO_UDP, fds), 0);
	/* Given back, the TCP socket returns to its gap; the UDP one never left. */
	lb_listener_set_giveback(&plan, &old);
	ck_assert_int_eq(old.pos[0].fd[TCP4], tcp4);
	ck_assert(is_open(tcp4) && is_open(udp4));
	lb_listener_set_free(&old);
	ck_assert(!is_open(udp4));
	lb_config_free(cfg);
}
END_TEST

/* A position whose worker could not start lets go of its sockets. */
START_TEST(test_close_position)
{
	struct lb_listener_set s;
	int fds[LB_LISTENER_FAMILIES], fd;

	running(&s, 8080, 2, true);
	fd = s.pos[1].fd[1];
	lb_listener_set_close(&s, 1);
	ck_assert(!is_open(fd));
	ck_assert_uint_eq(lb_listener_set_fds(&s, 1, LB_PROTO_TCP, fds), 0);
	ck_assert_uint_eq(lb_listener_set_fds(&s, 0, LB_PROTO_TCP, fds), 2);
	/* Out of range is nothing. */
	lb_listener_set_close(&s, 5);
	ck_assert_uint_eq(lb_listener_set_fds(&s, 5, LB_PROTO_TCP, fds), 0);
	lb_listener_set_free(&s);
}
END_TEST

int main(void)
{
	return lb_test_main("listener", setup, teardown, 0,
			    LB_TESTS(test_plan_takes_over, test_plan_fails_gives_back,
				     test_plan_probes_new_port, test_giveback, test_udp_kinds,
				     test_close_position));
}
