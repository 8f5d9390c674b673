// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lb/clients.c: counting each client's connections per service, the cap,
 * freeing entries, the top clients, settling a dead worker's ledger, a
 * full window, and threads racing for a client's last slot, which must
 * never both get it.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/clients.h"
#include "tests/unit.h"

static struct lb_clients *table_new(uint32_t n)
{
	size_t size = lb_clients_size(n);
	struct lb_clients *t = calloc(1, size);

	ck_assert_ptr_nonnull(t);
	lb_clients_init(t, size);
	return t;
}

static union lb_sockaddr addr(const char *ip, uint16_t port)
{
	union lb_sockaddr a;
	const char *why;
	char text[64];

	snprintf(text, sizeof(text), strchr(ip, ':') ? "[%s]:%u" : "%s:%u", ip, port);
	ck_assert_int_eq(lb_addr_parse(text, &a, &why), 0);
	return a;
}

START_TEST(test_take_put)
{
	struct lb_clients *t = table_new(100);
	union lb_sockaddr a = addr("198.18.0.10", 1000), b = addr("198.18.0.10", 2000);
	union lb_sockaddr c = addr("2001:db8::10", 1000);
	uint32_t held[8], web = lb_clients_service_key("web"), api = lb_clients_service_key("api");

	ck_assert_uint_eq(t->mask + 1, 256);
	ck_assert_uint_ne(web, api);
	/* The port does not matter: one client, whatever port it connects from. */
	ck_assert_int_eq(lb_clients_take(t, web, &a, 3, &held[0]), 0);
	ck_assert_int_eq(lb_clients_take(t, web, &b, 3, &held[1]), 0);
	ck_assert_int_eq(lb_clients_take(t, web, &a, 3, &held[2]), 0);
	ck_assert_uint_eq(lb_clients_count(t, web, &b), 3);
	ck_assert_uint_eq(held[0], held[2]);
	/* At the cap: refused, nothing held, the count unchanged. */
	ck_assert_int_eq(lb_clients_take(t, web, &a, 3, &held[3]), -EDQUOT);
	ck_assert_uint_eq(held[3], 0);
	ck_assert_uint_eq(lb_clients_count(t, web, &a), 3);
	/* Another service and another family are other clients; 0 is no cap. */
	ck_assert_int_eq(lb_clients_take(t, api, &a, 1, &held[4]), 0);
	ck_assert_int_eq(lb_clients_take(t, web, &c, 0, &held[5]), 0);
	ck_assert_uint_eq(lb_clients_count(t, api, &a), 1);
	ck_assert_uint_eq(lb_clients_count(t, web, &c), 1);
	lb_clients_put(t, &held[1]);
	ck_assert_uint_eq(held[1], 0);
	ck_assert_int_eq(lb_clients_take(t, web, &a, 3, &held[1]), 0);
	/* Putting twice (a cleared claim) does nothing. */
	lb_clients_put(t, &held[3]);
	for (int i = 0; i < 6; i++)
		lb_clients_put(t, &held[i]);
	ck_assert_uint_eq(lb_clients_count(t, web, &a), 0);
	ck_assert_uint_eq(lb_clients_count(t, api, &a), 0);
	/* The last put freed the entries. */
	for (uint32_t s = 0; s <= t->mask; s++)
		ck_assert_uint_eq(atomic_load(&t->e[s].word), 0);
	free(t);
}
END_TEST

START_TEST(test_top)
{
	struct lb_clients *t = table_new(1000);
	uint32_t web = lb_clients_service_key("web"), api = lb_clients_service_key("api");
	struct lb_clients_top top[3];
	uint32_t held[100];
	char ip[32], buf[LB_ADDR_STRLEN];
	int k = 0;

	/* Client .i holds i connections to web, and one to api each. */
	for (int i = 1; i <= 10; i++) {
		union lb_sockaddr a;

		snprintf(ip, sizeof(ip), "198.18.0.%d", i);
		a = addr(ip, 4000);
		for (int j = 0; j < i && k < 90; j++)
			ck_assert_int_eq(lb_clients_take(t, web, &a, 0, &held[k++]), 0);
		ck_assert_int_eq(lb_clients_take(t, api, &a, 0, &held[90 + i - 1]), 0);
	}
	ck_assert_uint_eq(lb_clients_top(t, web, top, 3), 3);
	ck_assert_str_eq(lb_addr_format_ip(&top[0].addr, buf, sizeof(buf)), "198.18.0.10");
	ck_assert_uint_eq(top[0].conns, 10);
	ck_assert_str_eq(lb_addr_format_ip(&top[1].addr, buf, sizeof(buf)), "198.18.0.9");
	ck_assert_uint_eq(top[1].conns, 9);
	ck_assert_uint_eq(top[2].conns, 8);
	ck_assert_uint_eq(lb_clients_top(t, api, top, 3), 3);
	ck_assert_uint_eq(top[0].conns, 1);
	ck_assert_uint_eq(lb_clients_top(t, lb_clients_service_key("none"), top, 3), 0);
	free(t);
}
END_TEST

/* A worker that died: the master gives back what its ledger held. */
START_TEST(test_settle)
{
	struct lb_clients *t = table_new(100);
	uint32_t web = lb_clients_service_key("web"), ledger[10] = { 0 };
	union lb_sockaddr a = addr("198.18.0.10", 1);

	for (int i = 0; i < 10; i += 2)
		ck_assert_int_eq(lb_clients_take(t, web, &a, 5, &ledger[i]), 0);
	ck_assert_int_eq(lb_clients_take(t, web, &a, 5, &ledger[1]), -EDQUOT);
	ck_assert_uint_eq(lb_clients_settle(t, ledger, 10), 5);
	ck_assert_uint_eq(lb_clients_count(t, web, &a), 0);
	for (int i = 0; i < 10; i++)
		ck_assert_uint_eq(ledger[i], 0);
	ck_assert_uint_eq(lb_clients_settle(t, ledger, 10), 0);
	free(t);
}
END_TEST

/* The smallest table is one window: the 17th client has no room and is not counted. */
START_TEST(test_window_full)
{
	struct lb_clients *t = table_new(1);
	uint32_t web = lb_clients_service_key("web"), held[17];
	char ip[32];

	ck_assert_uint_eq(t->mask + 1, LB_CLIENTS_WINDOW);
	for (int i = 0; i < 17; i++) {
		union lb_sockaddr a;

		snprintf(ip, sizeof(ip), "198.18.1.%d", i);
		a = addr(ip, 1);
		ck_assert_int_eq(lb_clients_take(t, web, &a, 1, &held[i]), i < 16 ? 0 : -ENOSPC);
	}
	ck_assert_uint_eq(held[16], 0);
	lb_clients_put(t, &held[3]);
	{
		union lb_sockaddr a = addr("198.18.1.16", 1);

		ck_assert_int_eq(lb_clients_take(t, web, &a, 1, &held[16]), 0);
	}
	free(t);
}
END_TEST

#define THREADS 4
#define ROUNDS 20000
#define CAP 3

struct race {
	struct lb_clients *t;
	uint32_t service;
	union lb_sockaddr client;
	atomic_int open;		/* connections held right now, over all threads */
	atomic_int worst;		/* the most ever held at once */
	atomic_int refused;
};

/*
 * Each thread is a worker: takes a connection for the client when it can,
 * holds it a moment, gives it back. Whatever the interleaving, no more than
 * CAP may be held at once.
 */
static void *racer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < ROUNDS; i++) {
		uint32_t held;
		int n, w;

		if (lb_clients_take(r->t, r->service, &r->client, CAP, &held) < 0) {
			atomic_fetch_add(&r->refused, 1);
			continue;
		}
		n = atomic_fetch_add(&r->open, 1) + 1;
		w = atomic_load(&r->worst);
		while (n > w && !atomic_compare_exchange_weak(&r->worst, &w, n))
			;
		atomic_fetch_sub(&r->open, 1);
		lb_clients_put(r->t, &held);
	}
	return NULL;
}

START_TEST(test_race)
{
	struct race r = { .t = table_new(64), .service = lb_clients_service_key("web"),
			  .client = addr("198.18.0.10", 1) };
	pthread_t th[THREADS];

	for (int i = 0; i < THREADS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, racer, &r), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_le(atomic_load(&r.worst), CAP);
	ck_assert_uint_eq(lb_clients_count(r.t, r.service, &r.client), 0);
	free(r.t);
}
END_TEST

int main(void)
{
	return lb_test_main("clients", NULL, NULL, 30,
			    LB_TESTS(test_take_put, test_top, test_settle, test_window_full, test_race));
}
