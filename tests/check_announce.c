// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Announcements without root: the route requests nft/announce.c sends,
 * built and read back; and lb/announce.c's decisions, which VIP addresses
 * it wants announced and why not, driven through shm states. Without a
 * device (no root) no route is made, so a decision shows as a VIP's why:
 * NULL for "announce it".
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/rtnetlink.h>

#include <libmnl/libmnl.h>

#include "lb/announce.h"
#include "lb/config.h"
#include "lb/log.h"
#include "lb/shm.h"
#include "nft/announce.h"

/* ---- route requests ---- */

struct parsed {
	const struct nlattr *tb[RTA_MAX + 1];
};

static int attr_cb(const struct nlattr *attr, void *data)
{
	struct parsed *p = data;

	if (mnl_attr_type_valid(attr, RTA_MAX) > 0)
		p->tb[mnl_attr_get_type(attr)] = attr;
	return MNL_CB_OK;
}

static const struct rtmsg *parse(const struct nlmsghdr *nlh, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	ck_assert_int_eq(mnl_attr_parse(nlh, sizeof(struct rtmsg), attr_cb, p), MNL_CB_OK);
	return mnl_nlmsg_get_payload(nlh);
}

START_TEST(test_build_v4)
{
	static _Alignas(struct nlmsghdr) char buf[LB_NFT_ANNOUNCE_MSG_MAX];
	const struct lb_nft_announce_spec spec = { .table = 200, .protocol = 250 };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	const struct nlmsghdr *nlh;
	const struct rtmsg *rtm;
	struct parsed p;

	inet_pton(AF_INET, "198.18.100.1", &sin.sin_addr);
	nlh = lb_nft_announce_build(buf, true, &spec, 7, (struct sockaddr *)&sin, 32);
	ck_assert_ptr_nonnull(nlh);
	ck_assert_uint_eq(nlh->nlmsg_type, RTM_NEWROUTE);
	/* Replace: a route somebody left for the VIP becomes lb's, never a duplicate. */
	ck_assert_uint_eq(nlh->nlmsg_flags, NLM_F_CREATE | NLM_F_REPLACE);
	rtm = parse(nlh, &p);
	ck_assert_uint_eq(rtm->rtm_family, AF_INET);
	ck_assert_uint_eq(rtm->rtm_dst_len, 32);
	ck_assert_uint_eq(rtm->rtm_table, 200);
	ck_assert_uint_eq(rtm->rtm_protocol, 250);
	ck_assert_uint_eq(rtm->rtm_type, RTN_UNICAST);
	ck_assert_uint_eq(rtm->rtm_scope, RT_SCOPE_LINK);
	ck_assert_ptr_nonnull(p.tb[RTA_DST]);
	ck_assert_uint_eq(mnl_attr_get_payload_len(p.tb[RTA_DST]), 4);
	ck_assert_mem_eq(mnl_attr_get_payload(p.tb[RTA_DST]), &sin.sin_addr, 4);
	ck_assert_uint_eq(mnl_attr_get_u32(p.tb[RTA_TABLE]), 200);
	ck_assert_uint_eq(mnl_attr_get_u32(p.tb[RTA_OIF]), 7);

	nlh = lb_nft_announce_build(buf, false, &spec, 7, (struct sockaddr *)&sin, 32);
	ck_assert_uint_eq(nlh->nlmsg_type, RTM_DELROUTE);
	ck_assert_uint_eq(nlh->nlmsg_flags, 0);
	rtm = parse(nlh, &p);
	/* The protocol is matched on delete: only lb's own route goes. */
	ck_assert_uint_eq(rtm->rtm_protocol, 250);
	ck_assert_uint_eq(rtm->rtm_scope, RT_SCOPE_NOWHERE);
	ck_assert_uint_eq(mnl_attr_get_u32(p.tb[RTA_OIF]), 7);
}
END_TEST

START_TEST(test_build_v6_big_table)
{
	static _Alignas(struct nlmsghdr) char buf[LB_NFT_ANNOUNCE_MSG_MAX];
	const struct lb_nft_announce_spec spec = { .table = 100000, .protocol = 5 };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_un_like { sa_family_t family; char path[20]; } other = { AF_UNIX, "x" };
	const struct nlmsghdr *nlh;
	const struct rtmsg *rtm;
	struct parsed p;

	inet_pton(AF_INET6, "2001:db8:100::1", &sin6.sin6_addr);
	nlh = lb_nft_announce_build(buf, true, &spec, 3, (struct sockaddr *)&sin6, 128);
	rtm = parse(nlh, &p);
	ck_assert_uint_eq(rtm->rtm_family, AF_INET6);
	ck_assert_uint_eq(rtm->rtm_dst_len, 128);
	/* The 8-bit field cannot hold it; RTA_TABLE does. */
	ck_assert_uint_eq(rtm->rtm_table, RT_TABLE_UNSPEC);
	ck_assert_uint_eq(mnl_attr_get_u32(p.tb[RTA_TABLE]), 100000);
	ck_assert_uint_eq(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
	ck_assert_uint_eq(mnl_attr_get_payload_len(p.tb[RTA_DST]), 16);
	ck_assert_mem_eq(mnl_attr_get_payload(p.tb[RTA_DST]), &sin6.sin6_addr, 16);
	ck_assert_ptr_null(lb_nft_announce_build(buf, true, &spec, 3, (struct sockaddr *)&other, 32));
	/* A prefix VIP: its own length; none longer than the family has. */
	inet_pton(AF_INET6, "2001:db8:100::", &sin6.sin6_addr);
	nlh = lb_nft_announce_build(buf, false, &spec, 3, (struct sockaddr *)&sin6, 120);
	ck_assert_uint_eq(parse(nlh, &p)->rtm_dst_len, 120);
	ck_assert_ptr_null(lb_nft_announce_build(buf, true, &spec, 3, (struct sockaddr *)&sin6, 129));
}
END_TEST

/* ---- decisions ---- */

/*
 * "web" (checked) and "plain" (not) share 198.18.100.1; "six" is IPv6 alone;
 * "sites" takes a prefix and a port range of 198.18.100.3 (one route for
 * it). web has one backend of each family.
 */
static const char *const config =
	"{\"services\": ["
	" {\"name\": \"web\", \"vips\": [\"198.18.100.1:80\", \"[2001:db8:100::1]:80\"],"
	"  \"backends\": [{\"address\": \"198.18.2.2:80\"}, {\"address\": \"[2001:db8:2::2]:80\"}],"
	"  \"health\": {\"type\": \"tcp\"}},"
	" {\"name\": \"plain\", \"vips\": [\"198.18.100.1:443\", \"198.18.100.1:8443\"],"
	"  \"backends\": [{\"address\": \"198.18.2.3:443\"}]},"
	" {\"name\": \"six\", \"vips\": [\"[2001:db8:100::2]:53\"],"
	"  \"backends\": [{\"address\": \"[2001:db8:2::3]:53\"}]},"
	" {\"name\": \"sites\", \"vips\": [\"198.18.128.0/20:80\", \"198.18.100.3:8000-8009\"],"
	"  \"backends\": [{\"address\": \"198.18.2.4:80\"}]}]}";

static struct lb_config *cfg;
static struct lb_shm *shm;
static struct lb_announce *ann;
static uint64_t now;

/* The why of VIP address or prefix text (NULL: wanted); the VIP must be there. */
static const char *why(const char *text)
{
	const struct lb_announce_state *st = lb_announce_state(ann);
	char buf[LB_ADDR_STRLEN], name[LB_ADDR_STRLEN + 8];

	for (size_t i = 0; i < st->n_shown; i++) {
		snprintf(name, sizeof(name), "%s%s",
			 lb_addr_format_ip(&st->vips[i].addr, buf, sizeof(buf)),
			 lb_announce_plen_suffix(&st->vips[i]));
		if (!strcmp(name, text))
			return st->vips[i].why;
	}
	ck_abort_msg("no VIP %s", text);
	return NULL;
}

static void set_health(size_t svc, size_t be, enum lb_health_state h)
{
	lb_shm_set_health(shm, cfg, svc, be, h, "test");
}

/* A check result of the master's health checker (it bumps no epoch). */
static void checked(size_t svc, size_t be, bool ok)
{
	struct lb_shm_backend *b = lb_shm_backend(shm, svc, be);

	b->last_check_ms = 1;
	b->last_check_ok = ok;
}

static void sync_now(void)
{
	lb_announce_sync(ann, now += 10);
}

static void setup(void)
{
	char *errors = NULL, err[256];

	lb_log_init(LB_LOG_ERR, "test");
	cfg = lb_config_parse(config, &errors);
	ck_assert_msg(cfg, "%s", errors ? errors : "");
	shm = lb_shm_create(cfg, 1, 16);
	ck_assert_ptr_nonnull(shm);
	ann = lb_announce_alloc();
	ck_assert_ptr_nonnull(ann);
	/* A block but no device (lb_announce_open not called): no root needed. */
	cfg->announce.enabled = true;
	cfg->announce.table = 200;
	cfg->announce.protocol = 250;
	cfg->announce.settle_ms = 2000;
	ck_assert_int_eq(lb_announce_prepare(ann, cfg, err, sizeof(err)), 0);
	lb_announce_use(ann, cfg, shm);
	now = 1000;
}

static void teardown(void)
{
	lb_announce_free(ann);
	lb_shm_destroy(shm);
	lb_config_free(cfg);
}

START_TEST(test_layout)
{
	const struct lb_announce_state *st = lb_announce_state(ann);

	/* Four addresses and a prefix, each once, whatever the ports and services on them. */
	sync_now();
	ck_assert_uint_eq(st->n_vips, 5);
	ck_assert_ptr_nonnull(lb_announce_state(ann));
	ck_assert_str_eq(why("198.18.128.0/20"), "lb is starting");
	ck_assert(st->configured);
	ck_assert_uint_eq(st->table, 200);
	ck_assert_uint_eq(st->protocol, 250);
}
END_TEST

START_TEST(test_starting)
{
	/* Nothing before lb is ready, whatever the backends. */
	checked(0, 0, true);
	sync_now();
	ck_assert_str_eq(why("198.18.100.1"), "lb is starting");
	ck_assert_str_eq(why("2001:db8:100::2"), "lb is starting");
	lb_announce_ready(ann, now);
	ck_assert_ptr_null(why("198.18.100.1"));
	ck_assert_ptr_null(why("2001:db8:100::2"));
}
END_TEST

START_TEST(test_health_confirms)
{
	lb_announce_ready(ann, now);
	/* web's IPv6 backend is up in shm but never passed a check: not yet. */
	ck_assert_str_eq(why("2001:db8:100::1"), "no usable backend");
	checked(0, 1, false);
	sync_now();
	ck_assert_str_eq(why("2001:db8:100::1"), "no usable backend");
	/* The first passed check is seen at the next sync, though no epoch moved. */
	checked(0, 1, true);
	sync_now();
	ck_assert_ptr_null(why("2001:db8:100::1"));
	/* Confirmed once: a later failed check alone (before fall) changes nothing. */
	checked(0, 1, false);
	sync_now();
	ck_assert_ptr_null(why("2001:db8:100::1"));
}
END_TEST

START_TEST(test_family)
{
	lb_announce_ready(ann, now);
	checked(0, 0, true);
	checked(0, 1, true);
	sync_now();
	ck_assert_ptr_null(why("2001:db8:100::1"));
	/* web's IPv4 backend going down does not take its IPv6 VIP... */
	set_health(0, 0, LB_HEALTH_DOWN);
	sync_now();
	ck_assert_ptr_null(why("2001:db8:100::1"));
	/* ... and 198.18.100.1 stays: "plain" still serves on it. */
	ck_assert_ptr_null(why("198.18.100.1"));
	set_health(0, 1, LB_HEALTH_DOWN);
	sync_now();
	ck_assert_str_eq(why("2001:db8:100::1"), "no usable backend");
}
END_TEST

START_TEST(test_shared_address)
{
	lb_announce_ready(ann, now);
	/* web is not confirmed, plain is usable: the address is served. */
	sync_now();
	ck_assert_ptr_null(why("198.18.100.1"));
	lb_shm_set_admin(shm, cfg, 1, 0, LB_ADMIN_DRAIN, "test");
	sync_now();
	ck_assert_str_eq(why("198.18.100.1"), "no usable backend");
	checked(0, 0, true);
	sync_now();
	ck_assert_ptr_null(why("198.18.100.1"));
	lb_shm_set_weight(shm, cfg, 0, 0, 0, "test");
	sync_now();
	ck_assert_str_eq(why("198.18.100.1"), "no usable backend");
	lb_shm_set_admin(shm, cfg, 1, 0, LB_ADMIN_UP, "test");
	sync_now();
	ck_assert_ptr_null(why("198.18.100.1"));
}
END_TEST

START_TEST(test_prefix)
{
	lb_announce_ready(ann, now);
	ck_assert_ptr_null(why("198.18.128.0/20"));
	lb_shm_set_health(shm, cfg, 3, 0, LB_HEALTH_DOWN, "test");
	sync_now();
	ck_assert_str_eq(why("198.18.128.0/20"), "no usable backend");
	ck_assert_str_eq(why("198.18.100.3"), "no usable backend");
	ck_assert_ptr_null(why("198.18.100.1"));
}
END_TEST

START_TEST(test_drain)
{
	char msg[256];

	/* Not while starting. */
	ck_assert_int_eq(lb_announce_drain(ann, true, 5000, now, msg, sizeof(msg)), -EAGAIN);
	lb_announce_ready(ann, now);
	ck_assert_int_eq(lb_announce_resume(ann, now, msg, sizeof(msg)), -EALREADY);
	ck_assert_int_eq(lb_announce_drain(ann, false, 5000, now, msg, sizeof(msg)), 0);
	ck_assert_int_eq(lb_announce_state(ann)->gateway, LB_GATEWAY_DRAINING);
	ck_assert_str_eq(why("2001:db8:100::2"), "gateway draining");
	/* Connections open, or empty but within settle_ms (2000): still draining. */
	ck_assert(!lb_announce_drain_check(ann, 3, now + 100));
	ck_assert(!lb_announce_drain_check(ann, 0, now + 1999));
	ck_assert_int_eq(lb_announce_state(ann)->gateway, LB_GATEWAY_DRAINING);
	/* Empty and settled: drained, and no stop was asked. */
	ck_assert(!lb_announce_drain_check(ann, 0, now + 2000));
	ck_assert_int_eq(lb_announce_state(ann)->gateway, LB_GATEWAY_DRAINED);
	ck_assert(!lb_announce_state(ann)->drain_timed_out);
	sync_now();
	ck_assert_str_eq(why("2001:db8:100::2"), "gateway drained");
	ck_assert_int_eq(lb_announce_resume(ann, now, msg, sizeof(msg)), 0);
	ck_assert_ptr_null(why("2001:db8:100::2"));

	/* With stop: the timeout ends it with connections open, and lb stops. */
	ck_assert_int_eq(lb_announce_drain(ann, true, 5000, now, msg, sizeof(msg)), 0);
	ck_assert(!lb_announce_drain_check(ann, 7, now + 4999));
	ck_assert(lb_announce_drain_check(ann, 7, now + 5000));
	ck_assert(lb_announce_state(ann)->drain_timed_out);
	ck_assert_int_eq(lb_announce_state(ann)->drain_active, 7);
	/* Once only. */
	ck_assert(!lb_announce_drain_check(ann, 7, now + 6000));
	lb_announce_stop(ann, now);
	ck_assert_str_eq(why("198.18.100.1"), "lb is stopping");
	ck_assert_int_eq(lb_announce_drain(ann, false, 0, now, msg, sizeof(msg)), -EAGAIN);
	ck_assert_int_eq(lb_announce_resume(ann, now, msg, sizeof(msg)), -EALREADY);
}
END_TEST

/* A reload keeps health confirmation by service name and re-lays the VIPs. */
START_TEST(test_reload)
{
	struct lb_config *cfg2;
	struct lb_shm *shm2;
	char *errors = NULL, err[256];

	lb_announce_ready(ann, now);
	checked(0, 1, true);
	sync_now();
	ck_assert_ptr_null(why("2001:db8:100::1"));
	cfg2 = lb_config_parse("{\"services\": ["
			       " {\"name\": \"web\", \"vips\": [\"[2001:db8:100::1]:80\"],"
			       "  \"backends\": [{\"address\": \"[2001:db8:2::2]:80\"}],"
			       "  \"health\": {\"type\": \"tcp\"}}]}", &errors);
	ck_assert_ptr_nonnull(cfg2);
	shm2 = lb_shm_create_next(shm, cfg, cfg2);
	ck_assert_ptr_nonnull(shm2);
	cfg2->announce = cfg->announce;
	cfg2->announce.device = NULL;
	ck_assert_int_eq(lb_announce_prepare(ann, cfg2, err, sizeof(err)), 0);
	lb_announce_use(ann, cfg2, shm2);
	sync_now();
	ck_assert_uint_eq(lb_announce_state(ann)->n_vips, 1);
	ck_assert_ptr_null(why("2001:db8:100::1"));
	lb_announce_free(ann);
	ann = NULL;
	lb_shm_destroy(shm2);
	lb_config_free(cfg2);
}
END_TEST

/*
 * A reload without the block lays nothing out (and shows nothing); one
 * that brings the block back lays every VIP out again.
 */
START_TEST(test_reload_unconfigured)
{
	const struct lb_announce_state *st = lb_announce_state(ann);
	char err[256];

	sync_now();
	ck_assert_uint_eq(st->n_vips, 5);
	cfg->announce.enabled = false;
	ck_assert_int_eq(lb_announce_prepare(ann, cfg, err, sizeof(err)), 0);
	lb_announce_use(ann, cfg, shm);
	sync_now();
	ck_assert(!st->configured);
	ck_assert_uint_eq(st->n_vips, 0);
	cfg->announce.enabled = true;
	ck_assert_int_eq(lb_announce_prepare(ann, cfg, err, sizeof(err)), 0);
	lb_announce_use(ann, cfg, shm);
	sync_now();
	ck_assert(st->configured);
	ck_assert_uint_eq(st->n_vips, 5);
	ck_assert_str_eq(why("198.18.128.0/20"), "lb is starting");
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("announce");
	TCase *tc = tcase_create("build");

	tcase_add_test(tc, test_build_v4);
	tcase_add_test(tc, test_build_v6_big_table);
	suite_add_tcase(s, tc);
	tc = tcase_create("decide");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_layout);
	tcase_add_test(tc, test_starting);
	tcase_add_test(tc, test_health_confirms);
	tcase_add_test(tc, test_family);
	tcase_add_test(tc, test_shared_address);
	tcase_add_test(tc, test_prefix);
	tcase_add_test(tc, test_drain);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_reload_unconfigured);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
