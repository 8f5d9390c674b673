// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * quicpeer: a UDP test peer that speaks just enough QUIC framing to test
 * QUIC-aware load balancing, since no Debian QUIC server encodes QUIC-LB
 * server IDs. No crypto, no handshake: only headers, connection IDs and
 * byte-exact echoes.
 *
 *   quicpeer server -i SERVER_ID -c CONF [-N NAME] [-v] ADDR:PORT...
 *   quicpeer client [-c CONF] [-b SRCIP]... [-n N] [-r] [-m] [-s SIZE] [-t MS] [-T TRIES]
 *                   [-V VERSION] [-W FILE] [-u dropped|answered [-k CR]] [-x VERSION] [-v]
 *                   ADDR:PORT...
 *   quicpeer relay [-d DIR] LISTEN_ADDR:PORT TARGET_ADDR:PORT
 *
 * CONF is a QUIC-LB plaintext configuration CONFIG_ID:SERVER_ID_LEN:NONCE_LEN
 * (e.g. 0:2:6), with the length self-encoded in the first octet unless
 * ":nolen" follows. SERVER_ID is hex, SERVER_ID_LEN octets. VERSION is hex
 * (0x1a2a3a4a).
 *
 * server answers every long-header packet (any version) with a long-header
 * packet of the same version and first byte: DCID = the packet's SCID, SCID
 * = a new QUIC-LB CID carrying its server ID, then an empty token, a
 * 2-byte Length and the reply payload. It answers a short-header packet
 * (DCID of the configuration's CID length, payload "QPS1", client CID
 * length, client CID, ...) with a short-header packet 0x40, DCID = that
 * client CID, then the reply payload. The reply payload is
 *
 *   "QPEER", flags (1: the DCID is a CID this server issued), server ID
 *   length, server ID, name length, name, then the whole datagram received
 *
 * so the client checks every byte that crossed. Flags 2 says a spare CID
 * follows the name (length, CID): a fresh QUIC-LB CID of this server, as a
 * real server hands out in encrypted NEW_CONNECTION_ID frames, which a
 * load balancer never sees. It counts packets per
 * source and prints, at SIGTERM/SIGINT and on SIGUSR1:
 *   quicpeer: server SID (NAME): L long, S short (U unknown dcid), B bad from N sources
 *   quicpeer: source ADDR: L long, S short
 * With -v it prints a line per packet.
 *
 * client sends a v1 (or -V) Initial of 1200 bytes with a random 8-byte DCID
 * and its own 8-byte CID as SCID, takes the server CID from the answer's
 * SCID (checking with -c that it decodes to the server ID the answer
 * names), then sends N (default 10) short-header packets of SIZE (default
 * 100) bytes with that DCID, each from a new socket (a new source port,
 * and the next -b address) with -r, to the targets in turn. It prints
 *   quicpeer: initial from SRC to DST: server SID (NAME) cid CID
 *   quicpeer: short I from SRC to DST: server SID (NAME) known|unknown cid
 *   quicpeer: N/N short packets answered by server SID from P source ports
 * Each packet is resent every -t MS (500) up to -T TRIES (4) times until a
 * well-formed answer echoing it comes back. With -m (migration) each short
 * packet goes to the spare CID of the answer before it instead, so no
 * DCID is ever one a load balancer saw in a long header: only QUIC-LB
 * decoding routes them. With -W the client waits after the Initial until
 * FILE exists (a test reloads lb meanwhile). -u sends, from a new socket, a
 * short-header packet with a DCID no server issued (random, with config
 * rotation bits -k CR, default 7: 0b111, the unroutable codepoint; a CR no
 * configuration uses is unroutable too) and expects it dropped (no answer)
 * or answered; -x sends, from a new socket,
 * a long-header packet of an unknown VERSION and expects an answer. Exit 0
 * when the Initial and every short packet were answered by the same server,
 * which knew the CID, and -u/-x went as expected; 1 otherwise; 2 on usage.
 *
 * relay forwards datagrams between the one client that last wrote to
 * LISTEN and TARGET, printing each one's parsed header and, with -d, saving
 * it as DIR/NNNN-c2s.bin or NNNN-s2c.bin (to capture real QUIC traffic).
 * The short-header CID length it parses with is the one each side last
 * announced in a long header's SCID, as a load balancer learns it.
 */
#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "lb/addr.h"
#include "lb/quic.h"

#define BUF_LEN 2048
#define INITIAL_SIZE 1200
#define CLIENT_CID_LEN 8
#define MAX_SOCKS 16
#define MAX_SOURCES 4096
#define MAX_ISSUED 4096
#define NAME_MAX_LEN 32
#define MARKER "QPEER"
#define MARKER_LEN 5
#define SHORT_MAGIC "QPS1"
#define SHORT_MAGIC_LEN 4
#define FLAG_KNOWN 1
#define FLAG_SPARE_CID 2

static volatile sig_atomic_t stop, report;

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fputs("usage: quicpeer server -i SERVER_ID -c CONF [-N NAME] [-v] ADDR:PORT...\n"
	      "       quicpeer client [-c CONF] [-b SRCIP]... [-n N] [-r] [-m] [-s SIZE] [-t MS]\n"
	      "                       [-T TRIES] [-V VERSION] [-W FILE] [-u dropped|answered [-k CR]]\n"
	      "                       [-x VERSION] [-v]\n"
	      "                       ADDR:PORT...\n"
	      "       quicpeer relay [-d DIR] LISTEN_ADDR:PORT TARGET_ADDR:PORT\n"
	      "CONF: CONFIG_ID:SERVER_ID_LEN:NONCE_LEN[:nolen], e.g. 0:2:6\n", stderr);
	exit(2);
}

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		report = 1;
	else
		stop = 1;
}

/* No SA_RESTART: a signal interrupts poll(), and the loop looks at the flags. */
static void setup_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	int sigs[] = { SIGTERM, SIGINT, SIGUSR1 };

	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_bytes(uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = getrandom(p, n, 0);

		if (r == -1) {
			if (errno == EINTR)
				continue;
			err(1, "getrandom");
		}
		p += r;
		n -= (size_t)r;
	}
}

static unsigned long parse_num(const char *s, unsigned long min, unsigned long max, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v < min || v > max)
		errx(1, "%s: \"%s\" is not a number in %lu..%lu", what, s, min, max);
	return v;
}

static void parse_conf(const char *s, struct lb_quic_lb_conf *c)
{
	unsigned int id, sl, nl;
	int used = 0;
	const char *why;

	if (sscanf(s, "%u:%u:%u%n", &id, &sl, &nl, &used) != 3 || id > 255 || sl > 255 || nl > 255 ||
	    (s[used] && strcmp(s + used, ":nolen")))
		errx(1, "-c: \"%s\" is not CONFIG_ID:SERVER_ID_LEN:NONCE_LEN[:nolen]", s);
	*c = (struct lb_quic_lb_conf){
		.config_id = (uint8_t)id, .server_id_len = (uint8_t)sl, .nonce_len = (uint8_t)nl,
		.encode_len = !s[used],
	};
	if (lb_quic_lb_conf_check(c, &why) < 0)
		errx(1, "-c %s: %s", s, why);
}

static void parse_addr(const char *s, union lb_sockaddr *a)
{
	const char *why = NULL;

	if (lb_addr_parse(s, a, &why) < 0)
		errx(1, "%s: %s", s, why);
}

/* A source address without port, either family. */
static void parse_ip(const char *s, union lb_sockaddr *a)
{
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->in.sin_addr) == 1)
		a->in.sin_family = AF_INET;
	else if (inet_pton(AF_INET6, s, &a->in6.sin6_addr) == 1)
		a->in6.sin6_family = AF_INET6;
	else
		errx(1, "-b: \"%s\" is not an IP address", s);
}

static const char *fmt_addr(const union lb_sockaddr *a, char *buf)
{
	return lb_addr_format(a, buf, LB_ADDR_STRLEN);
}

static const char *hex(const uint8_t *p, size_t n, char *buf)
{
	return lb_quic_hex_format(p, n, buf, LB_QUIC_HEX_MAX);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16 & 0xff;
	p[2] = v >> 8 & 0xff;
	p[3] = v & 0xff;
}

/* A UDP socket bound to src (NULL: any), connected to dst when given. */
static int udp_socket(const union lb_sockaddr *src, const union lb_sockaddr *dst)
{
	char buf[LB_ADDR_STRLEN];
	const union lb_sockaddr *fam = src ? src : dst;
	int fd;

	if (!fam)
		errx(1, "a socket needs a source or a destination");
	fd = socket(fam->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		err(1, "socket");
	if (src && bind(fd, &src->sa, lb_addr_len(src)) == -1)
		err(1, "bind %s", fmt_addr(src, buf));
	if (dst && connect(fd, &dst->sa, lb_addr_len(dst)) == -1)
		err(1, "connect %s", fmt_addr(dst, buf));
	return fd;
}

/*
 * Writes a long header with an empty token and a 2-byte Length for
 * payload_len bytes (our test layout for every version); returns its length.
 */
static size_t put_long(uint8_t *p, uint8_t b0, uint32_t version, const uint8_t *dcid, size_t dcid_len,
		       const uint8_t *scid, size_t scid_len, size_t payload_len)
{
	size_t off = 0;

	p[off++] = b0 | 0xc0;
	put_be32(p + off, version);
	off += 4;
	p[off++] = (uint8_t)dcid_len;
	memcpy(p + off, dcid, dcid_len);
	off += dcid_len;
	p[off++] = (uint8_t)scid_len;
	memcpy(p + off, scid, scid_len);
	off += scid_len;
	p[off++] = 0;
	p[off++] = (uint8_t)(0x40 | payload_len >> 8);
	p[off++] = payload_len & 0xff;
	return off;
}

/* Where our layout's payload starts after a parsed long header, or 0 if it is not ours. */
static size_t long_payload(const uint8_t *p, size_t len, const struct lb_quic_hdr *h)
{
	size_t off = 7 + h->dcid_len + h->scid_len;

	if (len < off + 3 || p[off] != 0 || (p[off + 1] & 0xc0) != 0x40 ||
	    (size_t)((p[off + 1] & 0x3f) << 8 | p[off + 2]) != len - off - 3)
		return 0;
	return off + 3;
}

/* ---- server ---- */

struct source {
	union lb_sockaddr addr;
	unsigned long n_long, n_short;
};

static struct server {
	struct lb_quic_lb_conf conf;
	uint8_t sid[LB_QUIC_LB_SID_MAX];
	char sid_hex[2 * LB_QUIC_LB_SID_MAX + 1];
	const char *name;
	bool verbose;
	struct lb_quic_cid issued[MAX_ISSUED];
	size_t n_issued;
	uint32_t counter;
	struct source sources[MAX_SOURCES];
	size_t n_sources;
	unsigned long n_long, n_short, n_unknown, n_bad, n_other_sources;
} srv;

static struct source *source_of(const union lb_sockaddr *a)
{
	for (size_t i = 0; i < srv.n_sources; i++)
		if (lb_addr_equal(&srv.sources[i].addr, a))
			return &srv.sources[i];
	if (srv.n_sources == MAX_SOURCES) {
		srv.n_other_sources++;
		return NULL;
	}
	srv.sources[srv.n_sources].addr = *a;
	return &srv.sources[srv.n_sources++];
}

static void server_report(void)
{
	char buf[LB_ADDR_STRLEN];

	printf("quicpeer: server %s (%s): %lu long, %lu short (%lu unknown dcid), %lu bad from %zu sources\n",
	       srv.sid_hex, srv.name, srv.n_long, srv.n_short, srv.n_unknown, srv.n_bad,
	       srv.n_sources + srv.n_other_sources);
	for (size_t i = 0; i < srv.n_sources; i++)
		printf("quicpeer: source %s: %lu long, %lu short\n", fmt_addr(&srv.sources[i].addr, buf),
		       srv.sources[i].n_long, srv.sources[i].n_short);
}

/* A fresh CID: the nonce starts with a counter, so no two are equal. */
static size_t issue_cid(uint8_t *cid)
{
	uint8_t nonce[LB_QUIC_LB_NONCE_MAX], spare;
	int n;

	random_bytes(nonce, sizeof(nonce));
	random_bytes(&spare, 1);
	put_be32(nonce, srv.counter++);
	n = lb_quic_lb_encode(&srv.conf, srv.sid, nonce, spare, cid);
	if (n < 0)
		errx(1, "encode: %s", strerror(-n));
	lb_quic_cid_set(&srv.issued[srv.n_issued++ % MAX_ISSUED], cid, (size_t)n);
	return (size_t)n;
}

static bool issued(const uint8_t *cid, size_t len)
{
	struct lb_quic_cid c;
	size_t n = srv.n_issued < MAX_ISSUED ? srv.n_issued : MAX_ISSUED;

	if (lb_quic_cid_set(&c, cid, len) < 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lb_quic_cid_equal(&srv.issued[i], &c))
			return true;
	return false;
}

/* The reply payload: marker, flags, server ID, name, spare CID, then the datagram received. */
static size_t put_answer(uint8_t *p, uint8_t flags, const uint8_t *rx, size_t rx_len)
{
	size_t off = 0, name_len = strlen(srv.name);

	memcpy(p, MARKER, MARKER_LEN);
	off += MARKER_LEN;
	p[off++] = flags | FLAG_SPARE_CID;
	p[off++] = srv.conf.server_id_len;
	memcpy(p + off, srv.sid, srv.conf.server_id_len);
	off += srv.conf.server_id_len;
	p[off++] = (uint8_t)name_len;
	memcpy(p + off, srv.name, name_len);
	off += name_len;
	p[off] = (uint8_t)issue_cid(p + off + 1);
	off += 1 + p[off];
	memcpy(p + off, rx, rx_len);
	return off + rx_len;
}

/* Room the reply needs beyond the datagram it echoes. */
#define ANSWER_OVERHEAD (MARKER_LEN + 4 + LB_QUIC_LB_SID_MAX + NAME_MAX_LEN + LB_QUIC_CID_MAX)

static size_t answer_len(size_t rx_len)
{
	return MARKER_LEN + 4 + srv.conf.server_id_len + strlen(srv.name) +
	       lb_quic_lb_cid_len(&srv.conf) + rx_len;
}

static void server_packet(int fd, const uint8_t *rx, size_t len, const union lb_sockaddr *from)
{
	static uint8_t tx[BUF_LEN + 64 + ANSWER_OVERHEAD];
	char a[LB_ADDR_STRLEN], h1[LB_QUIC_HEX_MAX], h2[LB_QUIC_HEX_MAX], h3[LB_QUIC_HEX_MAX];
	struct source *s = source_of(from);
	struct lb_quic_hdr h;
	uint8_t cid[LB_QUIC_CID_MAX];
	size_t off, cid_len;

	if (lb_quic_parse(rx, len, lb_quic_lb_cid_len(&srv.conf), &h) < 0 ||
	    h.type == LB_QUIC_TYPE_VERSION_NEGOTIATION || h.scid_len > LB_QUIC_CID_MAX) {
		srv.n_bad++;
		if (srv.verbose)
			printf("quicpeer: %s: %zu bytes: not a packet we answer\n", fmt_addr(from, a), len);
		return;
	}
	if (h.long_header) {
		cid_len = issue_cid(cid);
		off = put_long(tx, rx[0], h.version, h.scid, h.scid_len, cid, cid_len, answer_len(len));
		off += put_answer(tx + off, 0, rx, len);
		srv.n_long++;
		if (s)
			s->n_long++;
		if (srv.verbose)
			printf("quicpeer: %s: long v=0x%08" PRIx32 " %s dcid=%s scid=%s: issued %s\n",
			       fmt_addr(from, a), h.version, lb_quic_type_name(h.type),
			       hex(h.dcid, h.dcid_len, h1), hex(h.scid, h.scid_len, h2), hex(cid, cid_len, h3));
	} else {
		const uint8_t *p = rx + 1 + h.dcid_len;
		size_t rest = len - 1 - h.dcid_len, ccid_len;
		bool known = issued(h.dcid, h.dcid_len);

		if (rest < SHORT_MAGIC_LEN + 1 || memcmp(p, SHORT_MAGIC, SHORT_MAGIC_LEN) ||
		    (ccid_len = p[SHORT_MAGIC_LEN]) > LB_QUIC_CID_MAX || rest < SHORT_MAGIC_LEN + 1 + ccid_len) {
			srv.n_bad++;
			return;
		}
		tx[0] = 0x40;
		memcpy(tx + 1, p + SHORT_MAGIC_LEN + 1, ccid_len);
		off = 1 + ccid_len;
		off += put_answer(tx + off, known ? FLAG_KNOWN : 0, rx, len);
		srv.n_short++;
		srv.n_unknown += !known;
		if (s)
			s->n_short++;
		if (srv.verbose)
			printf("quicpeer: %s: short dcid=%s %s\n", fmt_addr(from, a), hex(h.dcid, h.dcid_len, h1),
			       known ? "known" : "unknown");
	}
	if (sendto(fd, tx, off, 0, &from->sa, lb_addr_len(from)) == -1)
		fprintf(stderr, "quicpeer: sendto %s: %s\n", fmt_addr(from, a), strerror(errno));
}

static int run_server(int argc, char **argv)
{
	struct pollfd pfd[MAX_SOCKS];
	const char *sid = NULL, *why = NULL;
	bool have_conf = false;
	size_t n = 0;
	int c;

	srv.name = "quicpeer";
	while ((c = getopt(argc, argv, "i:c:N:v")) != -1) {
		switch (c) {
		case 'i':
			sid = optarg;
			break;
		case 'c':
			parse_conf(optarg, &srv.conf);
			have_conf = true;
			break;
		case 'N':
			srv.name = optarg;
			break;
		case 'v':
			srv.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (!sid || !have_conf || optind >= argc || argc - optind > MAX_SOCKS)
		usage();
	if (strlen(srv.name) > NAME_MAX_LEN)
		errx(1, "-N: a name of at most %d characters", NAME_MAX_LEN);
	if (lb_quic_hex_parse(sid, srv.sid, srv.conf.server_id_len, &why) < 0)
		errx(1, "-i %s: %s (want %u octets in hex)", sid, why, srv.conf.server_id_len);
	hex(srv.sid, srv.conf.server_id_len, srv.sid_hex);
	for (int i = optind; i < argc; i++) {
		union lb_sockaddr a;

		parse_addr(argv[i], &a);
		pfd[n].fd = udp_socket(&a, NULL);
		pfd[n++].events = POLLIN;
	}
	setup_signals();
	printf("quicpeer: server %s (%s) ready\n", srv.sid_hex, srv.name);
	while (!stop) {
		if (report) {
			report = 0;
			server_report();
		}
		if (poll(pfd, n, -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		for (size_t i = 0; i < n; i++) {
			uint8_t rx[BUF_LEN];
			union lb_sockaddr from;
			socklen_t fl = sizeof(from);
			ssize_t r;

			if (!(pfd[i].revents & POLLIN))
				continue;
			while ((r = recvfrom(pfd[i].fd, rx, sizeof(rx), 0, &from.sa, &fl)) >= 0) {
				server_packet(pfd[i].fd, rx, (size_t)r, &from);
				fl = sizeof(from);
			}
		}
	}
	server_report();
	return 0;
}

/* ---- client ---- */

static struct client {
	struct lb_quic_lb_conf conf;
	bool have_conf, rotate, migrate, verbose;
	const char *wait_file;
	union lb_sockaddr src[MAX_SOCKS], dst[MAX_SOCKS];
	size_t n_src, n_dst, next_src;
	unsigned long count, size, timeout_ms, tries;
	uint32_t version;
	uint8_t cid[CLIENT_CID_LEN];		/* ours: the servers' DCID for us */
	uint8_t server_cid[LB_QUIC_CID_MAX];
	size_t server_cid_len;
} cl;

/* What a well-formed answer said. */
struct answer {
	uint8_t sid[LB_QUIC_LB_SID_MAX];
	size_t sid_len;
	char name[NAME_MAX_LEN + 1];
	bool known;
	char sid_hex[2 * LB_QUIC_LB_SID_MAX + 1];
	uint8_t spare[LB_QUIC_CID_MAX];		/* a CID the server issued, not yet used */
	size_t spare_len;
};

/* Reads the reply payload at p; true when well formed and echoing sent exactly. */
static bool read_answer(const uint8_t *p, size_t len, const uint8_t *sent, size_t sent_len,
			struct answer *ans)
{
	size_t off = MARKER_LEN + 2, name_len;

	if (len < off + 1 || memcmp(p, MARKER, MARKER_LEN) || p[MARKER_LEN + 1] > LB_QUIC_LB_SID_MAX)
		return false;
	ans->known = p[MARKER_LEN] & FLAG_KNOWN;
	ans->sid_len = p[MARKER_LEN + 1];
	if (len < off + ans->sid_len + 1)
		return false;
	memcpy(ans->sid, p + off, ans->sid_len);
	off += ans->sid_len;
	name_len = p[off++];
	if (name_len > NAME_MAX_LEN || len < off + name_len)
		return false;
	memcpy(ans->name, p + off, name_len);
	ans->name[name_len] = '\0';
	off += name_len;
	ans->spare_len = 0;
	if (p[MARKER_LEN] & FLAG_SPARE_CID) {
		if (len < off + 1 || p[off] > LB_QUIC_CID_MAX || len < off + 1 + p[off])
			return false;
		ans->spare_len = p[off];
		memcpy(ans->spare, p + off + 1, ans->spare_len);
		off += 1 + ans->spare_len;
	}
	hex(ans->sid, ans->sid_len, ans->sid_hex);
	return len - off == sent_len && memcmp(p + off, sent, sent_len) == 0;
}

/*
 * Checks a reply to a long-header packet: same version, DCID = our CID, the
 * answer; with -c the SCID must decode to the server ID the answer names.
 * Takes the SCID as the server CID.
 */
static bool long_reply(const uint8_t *rx, size_t len, const uint8_t *sent, size_t sent_len,
		       uint32_t version, struct answer *ans)
{
	struct lb_quic_hdr h;
	uint8_t sid[LB_QUIC_LB_SID_MAX];
	size_t off;

	if (lb_quic_parse(rx, len, 0, &h) < 0 || !h.long_header || h.version != version ||
	    h.dcid_len != CLIENT_CID_LEN || memcmp(h.dcid, cl.cid, CLIENT_CID_LEN) || !h.scid_len ||
	    h.scid_len > LB_QUIC_CID_MAX || !(off = long_payload(rx, len, &h)) ||
	    !read_answer(rx + off, len - off, sent, sent_len, ans))
		return false;
	if (cl.have_conf && (lb_quic_lb_decode(&cl.conf, h.scid, h.scid_len, sid) != LB_QUIC_LB_ROUTABLE ||
			     ans->sid_len != cl.conf.server_id_len || memcmp(sid, ans->sid, ans->sid_len))) {
		fprintf(stderr, "quicpeer: the server's CID does not encode the server ID it names\n");
		return false;
	}
	memcpy(cl.server_cid, h.scid, h.scid_len);
	cl.server_cid_len = h.scid_len;
	return true;
}

static bool short_reply(const uint8_t *rx, size_t len, const uint8_t *sent, size_t sent_len,
			struct answer *ans)
{
	if (len < 1 + CLIENT_CID_LEN || (rx[0] & 0x80) || memcmp(rx + 1, cl.cid, CLIENT_CID_LEN))
		return false;
	return read_answer(rx + 1 + CLIENT_CID_LEN, len - 1 - CLIENT_CID_LEN, sent, sent_len, ans);
}

/*
 * Sends pkt on fd (connected) every timeout until a reply passes its check,
 * at most tries times. Replies that do not (late answers to an earlier
 * packet, anything malformed) are skipped. Returns true when answered.
 */
static bool exchange(int fd, const uint8_t *pkt, size_t len, bool is_long, struct answer *ans)
{
	uint8_t rx[BUF_LEN + 256];

	for (unsigned long t = 0; t < cl.tries && !stop; t++) {
		int64_t deadline = now_ms() + (int64_t)cl.timeout_ms, left;

		if (send(fd, pkt, len, 0) == -1 && errno != ECONNREFUSED)
			fprintf(stderr, "quicpeer: send: %s\n", strerror(errno));
		while ((left = deadline - now_ms()) > 0 && !stop) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			ssize_t r;

			if (poll(&p, 1, (int)left) <= 0)
				continue;
			while ((r = recv(fd, rx, sizeof(rx), 0)) >= 0) {
				bool ok = is_long ? long_reply(rx, (size_t)r, pkt, len, cl.version, ans) :
						    short_reply(rx, (size_t)r, pkt, len, ans);

				if (ok)
					return true;
				if (cl.verbose)
					fprintf(stderr, "quicpeer: skipped a %zd-byte datagram that is no answer\n", r);
			}
		}
	}
	return false;
}

/* The next socket: the next -b address in turn, a new port. */
static int client_socket(size_t i)
{
	return udp_socket(cl.n_src ? &cl.src[cl.next_src++ % cl.n_src] : NULL, &cl.dst[i % cl.n_dst]);
}

static const char *local_name(int fd, char *buf)
{
	union lb_sockaddr a;
	socklen_t l = sizeof(a);

	if (getsockname(fd, &a.sa, &l) == -1)
		return "?";
	return fmt_addr(&a, buf);
}

/* A long header of version with our CIDs and a filler payload, size bytes in all. */
static size_t build_initial(uint8_t *p, uint32_t version, size_t size)
{
	uint8_t dcid[8];
	size_t off;

	random_bytes(dcid, sizeof(dcid));
	off = put_long(p, version == LB_QUIC_V2 ? 0xd0 : 0xc0, version, dcid, sizeof(dcid), cl.cid,
		       CLIENT_CID_LEN, size - 7 - 8 - CLIENT_CID_LEN - 3);
	for (size_t i = off; i < size; i++)
		p[i] = (uint8_t)(i * 7 + version);
	return size;
}

/* A short header to dcid carrying our CID (for the answer) and seq, size bytes in all. */
static size_t build_short(uint8_t *p, const uint8_t *dcid, size_t dcid_len, uint32_t seq, size_t size)
{
	size_t off = 0;

	p[off++] = 0x40;
	memcpy(p + off, dcid, dcid_len);
	off += dcid_len;
	memcpy(p + off, SHORT_MAGIC, SHORT_MAGIC_LEN);
	off += SHORT_MAGIC_LEN;
	p[off++] = CLIENT_CID_LEN;
	memcpy(p + off, cl.cid, CLIENT_CID_LEN);
	off += CLIENT_CID_LEN;
	put_be32(p + off, seq);
	off += 4;
	for (; off < size; off++)
		p[off] = (uint8_t)(seq * 31 + off);
	return size;
}

/* Sends one probe from a new socket; prints and returns whether it was answered. */
static bool probe(const char *what, const uint8_t *pkt, size_t len, bool is_long)
{
	char l[LB_ADDR_STRLEN];
	struct answer ans;
	int fd = client_socket(0);
	bool ok = exchange(fd, pkt, len, is_long, &ans);

	if (ok)
		printf("quicpeer: %s from %s: answered by server %s (%s)\n", what, local_name(fd, l),
		       ans.sid_hex, ans.name);
	else
		printf("quicpeer: %s from %s: no answer\n", what, local_name(fd, l));
	close(fd);
	return ok;
}

static int run_client(int argc, char **argv)
{
	static uint8_t pkt[BUF_LEN];
	char l[LB_ADDR_STRLEN], d[LB_ADDR_STRLEN], h[LB_QUIC_HEX_MAX];
	const char *unroutable = NULL;
	char what[64 + LB_QUIC_HEX_MAX];
	unsigned int unroutable_cr = LB_QUIC_LB_CONFIG_UNROUTABLE;
	struct answer first, ans;
	unsigned long answered = 0, ports = 0;
	uint32_t unknown_version = 0;
	bool have_unknown = false, ok = true;
	size_t len;
	int c, fd;

	cl.count = 10;
	cl.size = 100;
	cl.timeout_ms = 500;
	cl.tries = 4;
	cl.version = LB_QUIC_V1;
	while ((c = getopt(argc, argv, "c:b:n:rms:t:T:V:W:u:k:x:v")) != -1) {
		switch (c) {
		case 'c':
			parse_conf(optarg, &cl.conf);
			cl.have_conf = true;
			break;
		case 'b':
			if (cl.n_src == MAX_SOCKS)
				errx(1, "-b: at most %d addresses", MAX_SOCKS);
			parse_ip(optarg, &cl.src[cl.n_src++]);
			break;
		case 'n':
			cl.count = parse_num(optarg, 0, 1000000, "-n");
			break;
		case 'r':
			cl.rotate = true;
			break;
		case 'm':
			cl.migrate = true;
			break;
		case 'W':
			cl.wait_file = optarg;
			break;
		case 's':
			cl.size = parse_num(optarg, 64, INITIAL_SIZE, "-s");
			break;
		case 't':
			cl.timeout_ms = parse_num(optarg, 1, 60000, "-t");
			break;
		case 'T':
			cl.tries = parse_num(optarg, 1, 100, "-T");
			break;
		case 'V':
			cl.version = (uint32_t)parse_num(optarg, 1, UINT32_MAX, "-V");
			break;
		case 'u':
			if (strcmp(optarg, "dropped") && strcmp(optarg, "answered"))
				usage();
			unroutable = optarg;
			break;
		case 'k':
			unroutable_cr = (unsigned int)parse_num(optarg, 0, 7, "-k");
			break;
		case 'x':
			unknown_version = (uint32_t)parse_num(optarg, 1, UINT32_MAX, "-x");
			have_unknown = true;
			break;
		case 'v':
			cl.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (optind >= argc || argc - optind > MAX_SOCKS)
		usage();
	for (int i = optind; i < argc; i++)
		parse_addr(argv[i], &cl.dst[cl.n_dst++]);
	setup_signals();
	random_bytes(cl.cid, sizeof(cl.cid));

	fd = client_socket(0);
	len = build_initial(pkt, cl.version, INITIAL_SIZE);
	if (!exchange(fd, pkt, len, true, &first)) {
		printf("quicpeer: initial from %s to %s: no answer\n", local_name(fd, l),
		       fmt_addr(&cl.dst[0], d));
		return 1;
	}
	printf("quicpeer: initial from %s to %s: server %s (%s) cid %s\n", local_name(fd, l),
	       fmt_addr(&cl.dst[0], d), first.sid_hex, first.name, hex(cl.server_cid, cl.server_cid_len, h));
	if (cl.wait_file) {
		while (access(cl.wait_file, F_OK) == -1 && !stop)
			usleep(20000);
		printf("quicpeer: %s exists: going on\n", cl.wait_file);
	}
	ans = first;

	for (unsigned long i = 0; i < cl.count && !stop; i++) {
		if (cl.rotate) {
			close(fd);
			fd = client_socket(i);
			ports++;
		} else if (cl.n_dst > 1) {
			/* One socket, connected anew to each target in turn. */
			if (connect(fd, &cl.dst[i % cl.n_dst].sa, lb_addr_len(&cl.dst[i % cl.n_dst])) == -1)
				err(1, "connect");
		}
		/* Migrating: the CID the last answer handed out, never seen in a long header. */
		if (cl.migrate && ans.spare_len) {
			memcpy(cl.server_cid, ans.spare, ans.spare_len);
			cl.server_cid_len = ans.spare_len;
		}
		len = build_short(pkt, cl.server_cid, cl.server_cid_len, (uint32_t)i, cl.size);
		if (!exchange(fd, pkt, len, false, &ans)) {
			printf("quicpeer: short %lu from %s to %s: no answer\n", i, local_name(fd, l),
			       fmt_addr(&cl.dst[i % cl.n_dst], d));
			ok = false;
			continue;
		}
		printf("quicpeer: short %lu from %s to %s: server %s (%s) %s cid%s%s\n", i,
		       local_name(fd, l), fmt_addr(&cl.dst[i % cl.n_dst], d), ans.sid_hex, ans.name,
		       ans.known ? "known" : "unknown", cl.migrate ? " " : "",
		       cl.migrate ? hex(cl.server_cid, cl.server_cid_len, h) : "");
		if (strcmp(ans.sid_hex, first.sid_hex) || !ans.known)
			ok = false;
		else
			answered++;
	}
	close(fd);
	printf("quicpeer: %lu/%lu short packets answered by server %s from %lu source ports\n", answered,
	       cl.count, first.sid_hex, cl.rotate ? ports : (unsigned long)(cl.count > 0));

	if (unroutable) {
		uint8_t dcid[LB_QUIC_CID_MAX];
		bool got;

		random_bytes(dcid, cl.server_cid_len);
		dcid[0] = (uint8_t)(unroutable_cr << 5 | (dcid[0] & 0x1f));
		len = build_short(pkt, dcid, cl.server_cid_len, 0xffffffffu, cl.size);
		snprintf(what, sizeof(what), "unroutable short dcid=%s", hex(dcid, cl.server_cid_len, h));
		got = probe(what, pkt, len, false);
		if (got != !strcmp(unroutable, "answered")) {
			printf("quicpeer: unroutable short: expected %s\n", unroutable);
			ok = false;
		}
	}
	if (have_unknown) {
		snprintf(what, sizeof(what), "version 0x%08" PRIx32, unknown_version);
		cl.version = unknown_version;
		len = build_initial(pkt, unknown_version, INITIAL_SIZE);
		if (!probe(what, pkt, len, true))
			ok = false;
	}
	return ok ? 0 : 1;
}

/* ---- relay ---- */

static void relay_log(const char *dir, unsigned long n, const uint8_t *p, size_t len, size_t cid_len,
		      const char *save_dir)
{
	char h1[LB_QUIC_HEX_MAX], h2[LB_QUIC_HEX_MAX];
	struct lb_quic_hdr h;
	int r = lb_quic_parse(p, len, cid_len, &h);

	if (r < 0)
		printf("quicpeer: relay %05lu %s %zu bytes: %s\n", n, dir, len, strerror(-r));
	else if (h.long_header)
		printf("quicpeer: relay %05lu %s %zu bytes: long v=0x%08" PRIx32 " %s dcid=%s scid=%s len=%zu\n",
		       n, dir, len, h.version, lb_quic_type_name(h.type), hex(h.dcid, h.dcid_len, h1),
		       hex(h.scid, h.scid_len, h2), h.packet_len);
	else
		printf("quicpeer: relay %05lu %s %zu bytes: short dcid=%s\n", n, dir, len,
		       hex(h.dcid, h.dcid_len, h1));
	if (save_dir) {
		char path[4096];
		FILE *f;

		snprintf(path, sizeof(path), "%s/%05lu-%s.bin", save_dir, n, dir);
		f = fopen(path, "wb");
		if (!f || fwrite(p, 1, len, f) != len || fclose(f))
			err(1, "%s", path);
	}
}

static int run_relay(int argc, char **argv)
{
	const char *save_dir = NULL;
	union lb_sockaddr listen_a, target, client = { 0 };
	struct pollfd pfd[2];
	size_t cid_len[2] = { 0, 0 };	/* for c2s: the server's SCID length; for s2c: the client's */
	unsigned long n = 0;
	int c;

	while ((c = getopt(argc, argv, "d:")) != -1) {
		if (c != 'd')
			usage();
		save_dir = optarg;
	}
	if (argc - optind != 2)
		usage();
	parse_addr(argv[optind], &listen_a);
	parse_addr(argv[optind + 1], &target);
	pfd[0] = (struct pollfd){ .fd = udp_socket(&listen_a, NULL), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = udp_socket(NULL, &target), .events = POLLIN };
	setup_signals();
	printf("quicpeer: relay ready\n");
	while (!stop) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		for (int i = 0; i < 2; i++) {
			uint8_t buf[65536];
			union lb_sockaddr from;
			socklen_t fl = sizeof(from);
			struct lb_quic_hdr h;
			ssize_t r;

			if (!(pfd[i].revents & POLLIN))
				continue;
			while ((r = recvfrom(pfd[i].fd, buf, sizeof(buf), 0, &from.sa, &fl)) >= 0) {
				fl = sizeof(from);
				if (i == 0)
					client = from;
				else if (!client.sa.sa_family)
					continue;
				relay_log(i ? "s2c" : "c2s", n++, buf, (size_t)r, cid_len[i], save_dir);
				/* Learn each side's CID length from its long headers' SCID. */
				if (lb_quic_parse(buf, (size_t)r, 0, &h) == 0 && h.long_header &&
				    h.scid_len <= LB_QUIC_CID_MAX && h.type != LB_QUIC_TYPE_VERSION_NEGOTIATION)
					cid_len[!i] = h.scid_len;
				if ((i ? sendto(pfd[0].fd, buf, (size_t)r, 0, &client.sa, lb_addr_len(&client)) :
					 send(pfd[1].fd, buf, (size_t)r, 0)) == -1)
					fprintf(stderr, "quicpeer: relay: send: %s\n", strerror(errno));
			}
		}
	}
	printf("quicpeer: relay: %lu datagrams\n", n);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode;

	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* getopt then sees the mode as argv[0]. */
	mode = argv[1];
	argc--;
	argv++;
	if (!strcmp(mode, "server"))
		return run_server(argc, argv);
	if (!strcmp(mode, "client"))
		return run_client(argc, argv);
	if (!strcmp(mode, "relay"))
		return run_relay(argc, argv);
	usage();
}
