// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * synflood: a spoofed-source TCP SYN flood, for lb's SYN flood test.
 *
 *   synflood [-s PREFIX] [-t SECONDS] [-r RATE] DST:PORT
 *
 * Sends SYNs to DST:PORT (IPv4) from random addresses of PREFIX
 * (198.19.0.0/16) and random ports, through a raw socket (IP_HDRINCL), in
 * batches (sendmmsg), for SECONDS (10) or until SIGINT/SIGTERM, at RATE
 * packets a second (0, the default: as fast as it can). Each SYN carries
 * the options a Linux client sends (MSS, SACK permitted, timestamps,
 * window scale), so the listener treats it as it would a real one. Prints
 *   synflood: N SYNs in S s: R/s from PREFIX
 * Needs CAP_NET_RAW. Only for namespaces a test made: it lies about its
 * source addresses.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sendmmsg */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define OPT_LEN 20			/* MSS 4, SACK_PERM 2, TS 10, NOP 1, WS 3 */
#define PKT_LEN (sizeof(struct iphdr) + sizeof(struct tcphdr) + OPT_LEN)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "synflood: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* xorshift64*: fast, and good enough to spread addresses and ports. */
static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dull;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/* Fills pkt with a SYN from src:sport to dst; the kernel completes the IP header. */
static void syn_build(uint8_t *pkt, uint32_t src, uint16_t sport, const struct sockaddr_in *dst,
		      uint32_t seq, uint32_t ts)
{
	struct iphdr *ip = (struct iphdr *)pkt;
	struct tcphdr *th = (struct tcphdr *)(pkt + sizeof(*ip));
	uint8_t *opt = (uint8_t *)(th + 1);
	uint32_t sum;
	struct {
		uint32_t src, dst;
		uint8_t zero, proto;
		uint16_t len;
	} __attribute__((packed)) pseudo;

	memset(pkt, 0, PKT_LEN);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(PKT_LEN);
	ip->saddr = src;
	ip->daddr = dst->sin_addr.s_addr;
	th->source = sport;
	th->dest = dst->sin_port;
	th->seq = htonl(seq);
	th->doff = (sizeof(*th) + OPT_LEN) / 4;
	th->syn = 1;
	th->window = htons(64240);
	opt[0] = TCPOPT_MAXSEG, opt[1] = 4, opt[2] = 1460 >> 8, opt[3] = 1460 & 0xff;
	opt[4] = TCPOPT_SACK_PERMITTED, opt[5] = 2;
	opt[6] = TCPOPT_TIMESTAMP, opt[7] = 10;
	ts = htonl(ts);
	memcpy(&opt[8], &ts, 4);
	opt[16] = TCPOPT_NOP;
	opt[17] = TCPOPT_WINDOW, opt[18] = 3, opt[19] = 7;
	pseudo = (typeof(pseudo)){ .src = ip->saddr, .dst = ip->daddr, .proto = IPPROTO_TCP,
				   .len = htons(sizeof(*th) + OPT_LEN) };
	sum = csum_add(0, &pseudo, sizeof(pseudo));
	sum = csum_add(sum, th, sizeof(*th) + OPT_LEN);
	th->check = htons(csum_fold(sum));
}

int main(int argc, char **argv)
{
	const char *prefix = "198.19.0.0/16";
	double seconds = 10, rate = 0, t0, t;
	struct sockaddr_in dst = { .sin_family = AF_INET };
	static uint8_t pkts[BATCH][PKT_LEN];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	unsigned long long sent = 0;
	uint32_t base, mask;
	uint64_t seed;
	char addr[64], *colon, *slash;
	int opt, fd, len;

	while ((opt = getopt(argc, argv, "s:t:r:")) != -1) {
		switch (opt) {
		case 's':
			prefix = optarg;
			break;
		case 't':
			seconds = strtod(optarg, NULL);
			break;
		case 'r':
			rate = strtod(optarg, NULL);
			break;
		default:
			die("usage: synflood [-s PREFIX] [-t SECONDS] [-r RATE] DST:PORT");
		}
	}
	if (optind + 1 != argc || seconds <= 0 || rate < 0)
		die("usage: synflood [-s PREFIX] [-t SECONDS] [-r RATE] DST:PORT");
	snprintf(addr, sizeof(addr), "%s", argv[optind]);
	colon = strrchr(addr, ':');
	if (!colon)
		die("bad destination '%s' (want a.b.c.d:port)", argv[optind]);
	*colon = '\0';
	if (inet_pton(AF_INET, addr, &dst.sin_addr) != 1 || atoi(colon + 1) <= 0 ||
	    atoi(colon + 1) > 65535)
		die("bad destination '%s' (want a.b.c.d:port)", argv[optind]);
	dst.sin_port = htons((uint16_t)atoi(colon + 1));
	snprintf(addr, sizeof(addr), "%s", prefix);
	slash = strchr(addr, '/');
	len = slash ? atoi(slash + 1) : 32;
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, addr, &base) != 1 || len < 1 || len > 32)
		die("bad prefix '%s'", prefix);
	mask = len == 32 ? 0 : 0xffffffffu >> len;
	base = ntohl(base) & ~mask;

	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd == -1)
		die("raw socket: %s (needs CAP_NET_RAW)", strerror(errno));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, NULL, _IOLBF, 0);
	seed = (uint64_t)getpid() << 32 ^ (uint64_t)(now_s() * 1e9) ^ 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ .iov_base = pkts[i], .iov_len = PKT_LEN };
		msgs[i] = (struct mmsghdr){ .msg_hdr = {
			.msg_name = &dst, .msg_namelen = sizeof(dst),
			.msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	t0 = t = now_s();
	while (!stop && (t = now_s()) - t0 < seconds) {
		int n = BATCH, m;

		if (rate > 0) {
			double owed = (t - t0) * rate - (double)sent;

			if (owed < 1) {
				usleep(1000);
				continue;
			}
			n = owed < BATCH ? (int)owed : BATCH;
		}
		for (int i = 0; i < n; i++) {
			uint64_t r = rnd(&seed);

			syn_build(pkts[i], htonl(base | ((uint32_t)r & mask)),
				  htons((uint16_t)(1024 + (r >> 32) % 64512)), &dst,
				  (uint32_t)(r >> 16), (uint32_t)(t * 1000));
		}
		m = sendmmsg(fd, msgs, n, 0);
		if (m > 0)
			sent += m;
		else if (m == -1 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			die("sendmmsg: %s", strerror(errno));
	}
	t = now_s() - t0;
	printf("synflood: %llu SYNs in %.2f s: %.0f/s from %s\n", sent, t, t > 0 ? sent / t : 0,
	       prefix);
	close(fd);
	return 0;
}
