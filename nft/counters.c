// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Reads back the named counters the per-client rules count their drops in
 * (nft/clients.c): one dump of the table's counter objects.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/time.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/object.h>

#include "nft/nft.h"

#define RECV_TIMEOUT_S 5

struct reader {
	void (*cb)(void *arg, uint32_t id, const char *what, uint64_t packets);
	void *arg;
};

/* "deny_3" -> ("deny", 3); false for a name lb does not make. */
static bool parse_name(const char *name, char *what, size_t len, uint32_t *id)
{
	const char *us = strrchr(name, '_');
	unsigned long n;
	char *end;

	if (!us || us == name || (size_t)(us - name) >= len || us[1] < '0' || us[1] > '9')
		return false;
	n = strtoul(us + 1, &end, 10);
	if (*end || n > UINT32_MAX)
		return false;
	memcpy(what, name, us - name);
	what[us - name] = '\0';
	*id = (uint32_t)n;
	return !strcmp(what, "deny") || !strcmp(what, "rate");
}

/* One of gateway ownership's counters (nft/owner.c): they have no service id. */
static bool owner_name(const char *name)
{
	for (int i = 0; i < LB_NFT_OWNER_COUNTERS; i++)
		if (!strcmp(name, lb_nft_owner_counters[i]))
			return true;
	return false;
}

static int on_obj(const struct nlmsghdr *nlh, void *data)
{
	struct reader *rd = data;
	struct nftnl_obj *o = nftnl_obj_alloc();
	const char *name;
	char what[8];
	uint32_t id;

	if (!o)
		return MNL_CB_ERROR;
	if (nftnl_obj_nlmsg_parse(nlh, o) == 0 &&
	    nftnl_obj_get_u32(o, NFTNL_OBJ_TYPE) == NFT_OBJECT_COUNTER) {
		name = nftnl_obj_get_str(o, NFTNL_OBJ_NAME);
		if (parse_name(name, what, sizeof(what), &id))
			rd->cb(rd->arg, id, what, nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS));
		else if (owner_name(name))
			rd->cb(rd->arg, LB_NFT_COUNTER_OWNER, name,
			       nftnl_obj_get_u64(o, NFTNL_OBJ_CTR_PKTS));
	}
	nftnl_obj_free(o);
	return MNL_CB_OK;
}

int lb_nft_counters_read(const char *table,
			 void (*cb)(void *arg, uint32_t id, const char *what, uint64_t packets),
			 void *arg, char *err, size_t errlen)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct timeval tv = { .tv_sec = RECV_TIMEOUT_S };
	struct reader rd = { .cb = cb, .arg = arg };
	struct mnl_socket *nl;
	struct nftnl_obj *o;
	struct nlmsghdr *nlh;
	unsigned int portid;
	uint32_t seq = (uint32_t)time(NULL);
	int ret;
	ssize_t n;

	o = nftnl_obj_alloc();
	if (!o)
		return -ENOMEM;
	nftnl_obj_set_str(o, NFTNL_OBJ_TABLE, table);
	nftnl_obj_set_u32(o, NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETOBJ, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
	nftnl_obj_nlmsg_build_payload(nlh, o);
	nftnl_obj_free(o);
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl) {
		ret = -errno;
		snprintf(err, errlen, "nft: reading counters: netlink socket: %s", strerror(-ret));
		return ret;
	}
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) == -1) {
		ret = -errno;
		snprintf(err, errlen, "nft: reading counters: binding netlink socket: %s",
			 strerror(-ret));
		goto cleanup;
	}
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	portid = mnl_socket_get_portid(nl);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) == -1) {
		ret = -errno;
		snprintf(err, errlen, "nft: reading counters of table inet %s: %s", table,
			 strerror(-ret));
		goto cleanup;
	}
	ret = MNL_CB_OK;
	while (ret > MNL_CB_STOP) {
		n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n == -1) {
			ret = -errno;
			break;
		}
		ret = mnl_cb_run(buf, (size_t)n, seq, portid, on_obj, &rd);
		if (ret == -1)
			ret = -errno;
	}
	if (ret == -ENOENT)
		ret = 0;	/* no table (yet, or removed): nothing to count */
	if (ret < 0)
		snprintf(err, errlen, "nft: reading counters of table inet %s: %s", table,
			 strerror(-ret));
	else
		ret = 0;
cleanup:
	mnl_socket_close(nl);
	return ret;
}
