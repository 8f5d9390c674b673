/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sends lb's ruleset to the kernel in one nf_tables transaction and turns
 * the kernel's answer into one line naming the object it rejected.
 */
#include "nft/netlink.h"
#include "nft/nft.h"
#include "nft/nft_priv.h"
#include "nft/watch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/chain.h>
#include <libnftnl/expr.h>
#include <libnftnl/object.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>

/* Upper bounds used to size a first batch; build reports -EMSGSIZE if they
 * are ever too small and the batch is retried twice as large. */
#define LB_NFT_MSG_MAX		1024
#define LB_NFT_FIXED_MSGS	32
#define LB_NFT_ELEM_COST	64

/* Cost of one queued ack in the receive buffer (skb truesize, not bytes). */
#define LB_NFT_ACK_COST		1024

#define LB_NFT_MSG_TYPE(t)	((NFNL_SUBSYS_NFTABLES << 8) | (t))

struct batch {
	char *buf;
	struct mnl_nlmsg_batch *b;
	uint32_t first_seq;	/* of the batch-begin message */
	uint32_t n_acked;	/* messages that ask for an ack */
	size_t added, removed;	/* a diff's element changes */
	char job[NFT_TABLE_MAXNAMELEN + 48];	/* what the batch does, for messages */
};

static void batch_free(struct batch *nb)
{
	if (nb->b)
		mnl_nlmsg_batch_stop(nb->b);
	free(nb->buf);
	nb->b = NULL;
	nb->buf = NULL;
}

/* Elements in spec's VIP sets and ownership maps. */
static size_t spec_elems(const struct lb_nft_spec *spec)
{
	if (!spec)
		return 0;
	return spec->n_vips + spec->n_udp_vips + spec->n_ranges + spec->n_udp_ranges +
	       (spec->owner ? 2 * (size_t)spec->owner->buckets : 0);
}

/* What a batch carries besides its begin and end. */
enum batch_kind {
	BATCH_RULESET,		/* the whole table */
	BATCH_DIFF,		/* VIP element changes */
	BATCH_OWNER,		/* ownership map changes */
	BATCH_DELETE,		/* the table's deletion */
};

/*
 * Builds begin + (kind: the ruleset; the VIP element changes from old to
 * spec; the ownership map changes; a lone DELTABLE of table) + end into
 * nb. Returns 0 or -errno.
 */
static int batch_make(struct batch *nb, enum batch_kind kind, const struct lb_nft_spec *spec,
		      const struct lb_nft_spec *old, const char *table)
{
	/* Elements go many to a message: about 64 bytes each, with the headers. */
	size_t limit = LB_NFT_FIXED_MSGS * LB_NFT_MSG_MAX +
		       (spec_elems(spec) + spec_elems(old)) * LB_NFT_ELEM_COST +
		       (spec ? (lb_nft_clients_msgs(spec) + lb_nft_owner_msgs(spec)) *
				LB_NFT_MSG_MAX : 0);
	uint32_t seq;
	int ret;

	for (;;) {
		/* libmnl lets the last message run past limit: room for it. */
		nb->buf = malloc(limit + LB_NFT_MSG_MAX * 4);
		if (!nb->buf)
			return -ENOMEM;
		nb->b = mnl_nlmsg_batch_start(nb->buf, limit);
		if (!nb->b) {
			ret = -ENOMEM;
			goto cleanup;
		}
		seq = nb->first_seq = (uint32_t)time(NULL);
		nftnl_batch_begin(mnl_nlmsg_batch_current(nb->b), seq++);
		mnl_nlmsg_batch_next(nb->b);
		if (kind == BATCH_DIFF) {
			ret = lb_nft_ruleset_diff_build(old, spec, nb->b, &seq, &nb->added,
							&nb->removed);
		} else if (kind == BATCH_OWNER) {
			ret = lb_nft_ruleset_owner_diff_build(old, spec, nb->b, &seq, &nb->added);
		} else if (kind == BATCH_RULESET) {
			ret = lb_nft_ruleset_build(spec, nb->b, &seq);
		} else {
			struct nftnl_table *t = nftnl_table_alloc();

			if (!t) {
				ret = -ENOMEM;
				goto cleanup;
			}
			nftnl_table_set_str(t, NFTNL_TABLE_NAME, table);
			nftnl_table_nlmsg_build_payload(
				nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(nb->b),
						      NFT_MSG_DELTABLE, NFPROTO_INET,
						      NLM_F_ACK, seq++), t);
			nftnl_table_free(t);
			ret = mnl_nlmsg_batch_next(nb->b) ? 0 : -EMSGSIZE;
		}
		if (ret == 0) {
			nb->n_acked = seq - nb->first_seq - 1;
			nftnl_batch_end(mnl_nlmsg_batch_current(nb->b), seq++);
			ret = mnl_nlmsg_batch_next(nb->b) ? 0 : -EMSGSIZE;
		}
		if (ret != -EMSGSIZE)
			break;
		batch_free(nb);
		limit *= 2;
	}
cleanup:
	if (ret)
		batch_free(nb);
	return ret;
}

static const struct nlmsghdr *batch_find(const struct batch *nb, uint32_t seq, int *rule_no)
{
	const struct nlmsghdr *nlh = mnl_nlmsg_batch_head(nb->b);
	int len = (int)mnl_nlmsg_batch_size(nb->b);

	*rule_no = 0;
	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (nlh->nlmsg_type == LB_NFT_MSG_TYPE(NFT_MSG_NEWRULE))
			(*rule_no)++;
		if (nlh->nlmsg_seq == seq)
			return nlh;
	}
	return NULL;
}

/* "198.18.100.1:80" / "[2001:db8::1]:80" from a vips4/vips6 set key, "ICMP
 * type 3" from one of the anonymous sets of ICMP error types. */
static void key_format(const uint8_t *key, uint32_t len, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;

	if (len == 8 || len == 20) {
		memcpy(&port, key + len - 4, sizeof(port));
		inet_ntop(len == 8 ? AF_INET : AF_INET6, key, ip, sizeof(ip));
		snprintf(buf, size, len == 8 ? "%s:%u" : "[%s]:%u", ip, ntohs(port));
	} else if (len == 4) {
		uint32_t bucket;

		memcpy(&bucket, key, sizeof(bucket));
		snprintf(buf, size, "bucket %u", bucket);
	} else if (len == 1) {
		snprintf(buf, size, "ICMP type %u", key[0]);
	} else {
		snprintf(buf, size, "of %u bytes", len);
	}
}

static void describe_elem(const struct nlmsghdr *nlh, const char *table, char *what, size_t size)
{
	char key_text[INET6_ADDRSTRLEN + 16] = "?";
	struct nftnl_set_elems_iter *it = NULL;
	const char *set_name = "?";
	struct nftnl_set_elem *e;
	struct nftnl_set *s;
	const void *key;
	uint32_t len;

	s = nftnl_set_alloc();
	if (s && nftnl_set_elems_nlmsg_parse(nlh, s) >= 0) {
		if (nftnl_set_is_set(s, NFTNL_SET_NAME))
			set_name = nftnl_set_get_str(s, NFTNL_SET_NAME);
		it = nftnl_set_elems_iter_create(s);
		e = it ? nftnl_set_elems_iter_next(it) : NULL;
		key = e ? nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len) : NULL;
		if (key)
			key_format(key, len, key_text, sizeof(key_text));
	}
	snprintf(what, size, "creating element %s of set %s in table inet %s",
		 key_text, set_name, table);
	if (it)
		nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(s);
}

/* Names a rule by what it needs from the kernel; *module is the one to load. */
static void describe_rule(const struct nlmsghdr *nlh, const char *table, int rule_no,
			  char *what, size_t size, const char **module)
{
	struct nftnl_expr_iter *it = NULL;
	const char *kind = "?";
	struct nftnl_expr *e;
	struct nftnl_rule *r;
	int icmp = 0;

	r = nftnl_rule_alloc();
	if (r && nftnl_rule_nlmsg_parse(nlh, r) >= 0)
		it = nftnl_expr_iter_create(r);
	while (it && (e = nftnl_expr_iter_next(it))) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);

		if (strcmp(name, "tproxy") == 0) {
			int v6 = nftnl_expr_get_u32(e, NFTNL_EXPR_TPROXY_FAMILY) == NFPROTO_IPV6;

			kind = v6 ? "tproxy ipv6" : "tproxy ipv4";
			*module = v6 ? "kernel lacks IPv6 tproxy support "
				       "(load modules nft_tproxy and nf_tproxy_ipv6)"
				     : "kernel lacks tproxy support (load module nft_tproxy)";
		} else if (strcmp(name, "socket") == 0) {
			kind = icmp ? "ICMP errors, socket transparent" : "socket transparent";
			*module = "kernel lacks socket matching (load module nft_socket)";
		} else if (strcmp(name, "reject") == 0) {
			kind = "clients, reject";
			*module = "kernel lacks reject support (load module nft_reject_inet)";
		} else if (strcmp(name, "dynset") == 0) {
			kind = "clients, rate meter";
			*module = "kernel lacks limit support (load module nft_limit)";
		} else if (strcmp(name, "objref") == 0 && strcmp(kind, "?") == 0) {
			kind = "clients, counter";
			*module = "kernel lacks named counters (load module nft_objref)";
		} else if (strcmp(name, "lookup") == 0) {
			/* Only the ICMP rules look up an anonymous set (their types). */
			icmp = strncmp(nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET), "__set", 5) == 0;
		}
	}
	snprintf(what, size, "creating rule %d (%s) in table inet %s", rule_no, kind, table);
	if (it)
		nftnl_expr_iter_destroy(it);
	nftnl_rule_free(r);
}

/*
 * Writes "nft: WHAT: [HINT: ]strerror" for error -ret on message seq.
 */
static void explain(const struct batch *nb, const char *table, uint32_t seq,
		    int ret, const char *extack, char *err, size_t errlen)
{
	const char *hint = NULL, *module = NULL;
	const struct nlmsghdr *nlh;
	char what[3 * NFT_NAME_MAXLEN];
	uint16_t type = 0;
	int rule_no;

	nlh = batch_find(nb, seq, &rule_no);
	if (nlh)
		type = nlh->nlmsg_type;
	switch (type) {
	case LB_NFT_MSG_TYPE(NFT_MSG_NEWTABLE):
	case LB_NFT_MSG_TYPE(NFT_MSG_DELTABLE): {
		/* The table the message names: lb's, or one it retires. */
		struct nftnl_table *t = nftnl_table_alloc();
		const char *name = table;

		if (t && nftnl_table_nlmsg_parse(nlh, t) >= 0 &&
		    nftnl_table_is_set(t, NFTNL_TABLE_NAME))
			name = nftnl_table_get_str(t, NFTNL_TABLE_NAME);
		snprintf(what, sizeof(what), "%s table inet %s",
			 type == LB_NFT_MSG_TYPE(NFT_MSG_NEWTABLE) ? "creating" : "deleting",
			 name);
		nftnl_table_free(t);
		/* Capability failures are reported on the batch header; EPERM
		 * on the table itself means another process owns it. */
		if (ret == -EPERM)
			hint = "table is owned by another process";
		break;
	}
	case LB_NFT_MSG_TYPE(NFT_MSG_NEWSET): {
		struct nftnl_set *s = nftnl_set_alloc();
		const char *name = "?";

		if (s && nftnl_set_nlmsg_parse(nlh, s) >= 0 && nftnl_set_is_set(s, NFTNL_SET_NAME))
			name = nftnl_set_get_str(s, NFTNL_SET_NAME);
		snprintf(what, sizeof(what), "creating set %s in table inet %s", name, table);
		nftnl_set_free(s);
		break;
	}
	case LB_NFT_MSG_TYPE(NFT_MSG_NEWSETELEM):
		describe_elem(nlh, table, what, sizeof(what));
		break;
	case LB_NFT_MSG_TYPE(NFT_MSG_NEWCHAIN): {
		struct nftnl_chain *c = nftnl_chain_alloc();
		const char *name = "prerouting";

		if (c && nftnl_chain_nlmsg_parse(nlh, c) >= 0 &&
		    nftnl_chain_is_set(c, NFTNL_CHAIN_NAME))
			name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
		snprintf(what, sizeof(what), "creating chain %s in table inet %s", name, table);
		nftnl_chain_free(c);
		break;
	}
	case LB_NFT_MSG_TYPE(NFT_MSG_NEWOBJ): {
		struct nftnl_obj *o = nftnl_obj_alloc();
		const char *name = "?";

		if (o && nftnl_obj_nlmsg_parse(nlh, o) >= 0 && nftnl_obj_is_set(o, NFTNL_OBJ_NAME))
			name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
		snprintf(what, sizeof(what), "creating counter %s in table inet %s", name, table);
		nftnl_obj_free(o);
		if (ret == -ENOENT || ret == -EOPNOTSUPP)
			hint = "kernel lacks named counters (load module nft_counter)";
		break;
	}
	case LB_NFT_MSG_TYPE(NFT_MSG_NEWRULE):
		describe_rule(nlh, table, rule_no, what, sizeof(what), &module);
		/* Unknown expression: ENOENT after the module request failed;
		 * EOPNOTSUPP when the expression lacks this family or hook. */
		if (ret == -ENOENT || ret == -EOPNOTSUPP)
			hint = module;
		break;
	default:	/* batch begin, or a seq we never sent */
		snprintf(what, sizeof(what), "%s", nb->job);
		if (ret == -EOPNOTSUPP)
			hint = "kernel lacks nf_tables (load module nf_tables)";
		break;
	}
	if (ret == -EPERM && !hint)
		hint = "no privilege: lb needs CAP_NET_ADMIN (run as root)";
	snprintf(err, errlen, "nft: %s: %s%s%s%s%s", what, hint ? hint : "", hint ? ": " : "",
		 extack ? extack : "", extack ? ": " : "", strerror(-ret));
}

/*
 * Sends nb and waits for one answer per message asking for an ack, or for
 * an error on the batch itself. Returns 0 or the first error as -errno,
 * explained in err.
 */
static int talk(const struct batch *nb, const char *table, char *err, size_t errlen)
{
	char rbuf[MNL_SOCKET_BUFFER_SIZE];
	size_t size = mnl_nlmsg_batch_size(nb->b);
	struct mnl_socket *nl;
	uint32_t acked = 0;
	unsigned int portid;
	int fd, ret;

	ret = lb_nft_netlink_request(&nl, NETLINK_NETFILTER, "nft", "netfilter netlink socket", err,
				     errlen);
	if (ret)
		return ret;
	portid = mnl_socket_get_portid(nl);
	/* What this transaction changes is lb's doing: the watch must not restore it. */
	lb_nft_watch_own(NETLINK_NETFILTER, portid);
	fd = mnl_socket_get_fd(nl);
	/* The whole transaction must travel in one sendmsg(). */
	lb_nft_netlink_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, size + 4096);
	lb_nft_netlink_sockbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF,
			       (size_t)nb->n_acked * LB_NFT_ACK_COST);

	if (mnl_socket_sendto(nl, mnl_nlmsg_batch_head(nb->b), size) == -1) {
		ret = -errno;
		snprintf(err, errlen, "nft: %s: sending %zu bytes: %s", nb->job, size,
			 strerror(-ret));
		goto cleanup;
	}
	ret = 0;
	while (acked < nb->n_acked) {
		const struct nlmsghdr *nlh;
		ssize_t n;
		int len;

		n = mnl_socket_recvfrom(nl, rbuf, sizeof(rbuf));
		if (n == -1) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			snprintf(err, errlen, "nft: %s: reading the kernel's answer: %s", nb->job,
				 strerror(-ret));
			goto cleanup;
		}
		len = (int)n;
		for (nlh = (const struct nlmsghdr *)rbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct nlmsgerr *e;

			if (nlh->nlmsg_pid != portid || nlh->nlmsg_type != NLMSG_ERROR)
				continue;
			if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*e)))
				continue;
			e = mnl_nlmsg_get_payload(nlh);
			if (e->error) {
				ret = e->error;
				explain(nb, table, nlh->nlmsg_seq, ret, lb_nft_netlink_extack(nlh),
					err, errlen);
				goto cleanup;
			}
			acked++;
		}
	}
cleanup:
	mnl_socket_close(nl);
	return ret;
}

int lb_nft_apply(const struct lb_nft_spec *spec, char *err, size_t errlen)
{
	struct batch nb = { 0 };
	int ret;

	ret = batch_make(&nb, BATCH_RULESET, spec, NULL, NULL);
	if (ret) {
		snprintf(err, errlen, "nft: building ruleset for table inet %s: %s",
			 spec && spec->table ? spec->table : "(none)",
			 ret == -EINVAL ? "invalid table name, port or address" : strerror(-ret));
		return ret;
	}
	snprintf(nb.job, sizeof(nb.job), "applying ruleset to table inet %s", spec->table);
	ret = talk(&nb, spec->table, err, errlen);
	batch_free(&nb);
	return ret;
}

int lb_nft_apply_diff(const struct lb_nft_spec *old, const struct lb_nft_spec *spec, char *err,
		      size_t errlen, size_t *added, size_t *removed)
{
	struct batch nb = { 0 };
	int ret;

	ret = batch_make(&nb, BATCH_DIFF, spec, old, NULL);
	if (ret) {
		snprintf(err, errlen, "nft: building the VIP changes for table inet %s: %s",
			 spec && spec->table ? spec->table : "(none)",
			 ret == -EINVAL ? "invalid table name, port or address" : strerror(-ret));
		return ret;
	}
	*added = nb.added;
	*removed = nb.removed;
	snprintf(nb.job, sizeof(nb.job), "changing VIPs in table inet %s", spec->table);
	/* Nothing changed: an empty transaction is not worth a round trip. */
	ret = nb.added || nb.removed ? talk(&nb, spec->table, err, errlen) : 0;
	batch_free(&nb);
	return ret;
}

int lb_nft_apply_owner(const struct lb_nft_spec *old, const struct lb_nft_spec *spec, char *err,
		       size_t errlen, size_t *changed)
{
	struct batch nb = { 0 };
	int ret;

	*changed = 0;
	ret = batch_make(&nb, BATCH_OWNER, spec, old, NULL);
	if (ret) {
		snprintf(err, errlen, "nft: building the ownership changes for table inet %s: %s",
			 spec && spec->table ? spec->table : "(none)",
			 ret == -EINVAL ? "invalid bucket table" : strerror(-ret));
		return ret;
	}
	*changed = nb.added;
	snprintf(nb.job, sizeof(nb.job), "changing bucket owners in table inet %s", spec->table);
	ret = nb.added ? talk(&nb, spec->table, err, errlen) : 0;
	batch_free(&nb);
	return ret;
}

int lb_nft_remove(const char *table, char *err, size_t errlen)
{
	struct batch nb = { 0 };
	int ret;

	if (!table || !*table || strlen(table) >= NFT_TABLE_MAXNAMELEN) {
		snprintf(err, errlen, "nft: deleting table: invalid table name");
		return -EINVAL;
	}
	ret = batch_make(&nb, BATCH_DELETE, NULL, NULL, table);
	if (ret) {
		snprintf(err, errlen, "nft: deleting table inet %s: %s", table, strerror(-ret));
		return ret;
	}
	snprintf(nb.job, sizeof(nb.job), "deleting table inet %s", table);
	ret = talk(&nb, table, err, errlen);
	batch_free(&nb);
	if (ret == -ENOENT) {
		ret = 0;
		if (errlen)
			err[0] = '\0';
	}
	return ret;
}
