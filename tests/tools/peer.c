// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * peer: byte-exact TCP test peer for lb's integration tests.
 *
 *   peer serve [-F] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer client [-b SRCIP] [-n CONNS] [-p PARALLEL] [-s MAXSIZE | -u UP -d DOWN]
 *               [-S SEED] [-t SECONDS] [-r RATE [-R SECONDS]] [-P] ADDR:PORT
 *   peer echo [-F] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer rst [-i] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer early [-F] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer hold [-b SRCIP] [-n CONNS] [-p PARALLEL] [-e] [-R] ADDR:PORT
 *   peer sink [-A] [-N] [-l BACKLOG] [-v] ADDR:PORT [ADDR:PORT...]
 *   peer ping [-b SRCIP] [-n CONNS] [-i MS] [-T MS] [-t SECONDS] ADDR:PORT
 *   peer churn [-b SRCIP]... [-n CONNS] [-p PARALLEL | -r RATE] [-e | -a] [-T MS] [-L]
 *              [-t SECONDS] ADDR:PORT
 *   peer flood [-b SRCIP]... [-p PARALLEL] [-T MS] [-t SECONDS] [-e] ADDR:PORT
 *   peer latency [-b SRCIP] [-n CONNS] [-i MS] [-T MS] [-o FILE] ADDR:PORT
 *
 * Protocol, per connection: the client sends a 32-byte header (magic, upload
 * size, download size, seed; big endian), then the upload bytes, then
 * half-closes. The server checks every upload byte against the same
 * deterministic stream and waits for the client's FIN, then sends one status
 * byte ('K' upload verified, 'F' not) and the download bytes, then closes. The
 * client checks the status, every download byte and that EOF comes exactly
 * after them. The server answering only after the FIN makes half-close
 * propagation part of what is tested.
 *
 * client -r RATE reads at most RATE bytes per second (in 10 ms ticks), for the
 * first -R SECONDS only if given, to make a slow reader; -P prints the bytes
 * moved so far to stderr every 0.5 s.
 *
 * echo sends back what it reads and closes after the client's FIN. rst
 * accepts and closes with a reset (SO_LINGER 0) as soon as the first bytes
 * arrive, or at once with -i. With -v, servers print how each connection
 * ended ("eof", "reset", "error ...").
 * With -F, serve, echo and early listen with TCP_FASTOPEN (a queue of 256),
 * so that a SYN may bring data when the namespace's net.ipv4.tcp_fastopen
 * allows it (0x202: without a cookie).
 *
 * early sends "early\n" and its FIN at once, then counts what the client still
 * sends and prints "early: ADDR: N bytes after our FIN, then EOF" at EOF.
 *
 * hold opens CONNS connections and keeps them open until SIGTERM/SIGINT, then
 * closes them (with a reset when -R). With -e it sends one byte on each and
 * waits for it to come back (run it against an echo server), which proves the
 * connection is relayed end to end and not just sitting in a listen queue.
 * At most PARALLEL (default 256) handshakes are under way at once. It
 * prints a status line to stdout whenever the counts change (at most every
 * 100 ms) and on exit:
 *   hold: N conns: C connected, A answered, E eof, X reset, F failed
 *
 * sink accepts and reads everything but never writes (a backend that never
 * answers); with -A it listens with backlog BACKLOG (default 1) and never
 * accepts, so its accept queue fills and later SYNs go unanswered. With -N
 * it accepts but never reads (a stuck backend: its receive window closes),
 * and closes a connection only when the peer ends it (FIN or reset).
 *
 * ping opens CONNS connections to an echo server and, on each, sends an
 * 8-byte sequence number every -i MS (default 50) and waits for it to come
 * back. Once all are connected it prints "ping: conn I port P" for each and
 * "ping: ready"; a connection that ends prints at once
 *   ping: conn I port P: END at T s after R round trips
 * (END: eof, reset, error ..., stalled: no echo for -T MS, default 2000).
 * After -t SECONDS (default 10) or SIGTERM it prints one line per connection
 *   ping: conn I port P: R round trips, max gap G ms, END
 * (END "ok" for connections still alive that had a round trip answered) and a
 * total line; exit 0 when every connection is ok.
 *
 * churn opens CONNS connections, PARALLEL at a time, and closes each with a
 * reset (SO_LINGER 0) as soon as it is established; with -e each first sends
 * one byte and waits for it to come back (against an echo server), with -a
 * every second one does. Several -b rotate source addresses. With -r it
 * starts RATE connections a second instead, however many are under way (a
 * probe of new connections while something changes); -T MS fails a
 * connection not done MS after it started; -L prints every failure as
 *   churn: fail WALL_MS I: WHAT: REASON
 * (WALL_MS: when conn I started, in ms since the epoch). It prints
 *   churn: N conns: C connected, E echoed, F failed in S s
 * and exits 0 when none failed.
 *
 * flood is an abusive client: as many connections as it can for -t SECONDS
 * (5), PARALLEL (256) under way, a connect not answered within -T MS (100)
 * abandoned for a new one (see flood.c). latency is a well-behaved one: a
 * request (connect, one echoed byte, reset) every -i MS (10), reporting
 * latency percentiles (see latency.c).
 *
 * Sizes take K, M or G suffixes (powers of 1024). Addresses are
 * 198.18.0.1:80 or [2001:db8::1]:80. Exit status: 0 when every connection
 * checked out, 1 otherwise, 2 on usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "server.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const struct server_mode *server;
} commands[] = {
	{ "serve", NULL, &serve_mode },
	{ "client", cmd_client, NULL },
	{ "echo", NULL, &echo_mode },
	{ "rst", NULL, &rst_mode },
	{ "early", NULL, &early_mode },
	{ "hold", cmd_hold, NULL },
	{ "sink", NULL, &sink_mode },
	{ "ping", cmd_ping, NULL },
	{ "churn", cmd_churn, NULL },
	{ "flood", cmd_flood, NULL },
	{ "latency", cmd_latency, NULL },
};

void usage(void)
{
	fprintf(stderr,
		"usage: peer serve [-F] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer client [-b SRCIP] [-n CONNS] [-p PARALLEL] [-s MAXSIZE | -u UP -d DOWN]\n"
		"                   [-S SEED] [-t SECONDS] [-r RATE [-R SECONDS]] [-P] ADDR:PORT\n"
		"       peer echo [-F] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer rst [-i] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer early [-F] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer hold [-b SRCIP] [-n CONNS] [-p PARALLEL] [-e] [-R] ADDR:PORT\n"
		"       peer sink [-A] [-N] [-l BACKLOG] [-v] ADDR:PORT [ADDR:PORT...]\n"
		"       peer ping [-b SRCIP] [-n CONNS] [-i MS] [-T MS] [-t SECONDS] ADDR:PORT\n"
		"       peer churn [-b SRCIP]... [-n CONNS] [-p PARALLEL | -r RATE] [-e | -a] [-T MS]\n"
		"                  [-L] [-t SECONDS] ADDR:PORT\n"
		"       peer flood [-b SRCIP]... [-p PARALLEL] [-T MS] [-t SECONDS] [-e] ADDR:PORT\n"
		"       peer latency [-b SRCIP] [-n CONNS] [-i MS] [-T MS] [-o FILE] ADDR:PORT\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (commands[i].server)
			return server_run(commands[i].server, argc - 1, argv + 1);
		return commands[i].run(argc - 1, argv + 1);
	}
	usage();
}
