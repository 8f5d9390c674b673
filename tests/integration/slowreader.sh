#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A slow reader does not make lb buffer: the backend offers 1 GiB, the client
# reads 64 KiB every 10 ms (6.25 MiB/s) for 10 s, then at full speed. Every
# 0.5 s of the slow phase we sample the RSS of all lb processes, the bytes the
# client has read, and the backend socket's Send-Q and bytes_acked (what the
# gateway's kernel took from it). Checks:
#  - lb's total RSS stays flat (max - min < 2 MiB) while tens of MiB pass;
#  - backpressure reaches the backend: its Send-Q stays non-empty (its send
#    blocks) and what it got rid of exceeds what the client read by a bounded,
#    non-growing amount (the socket buffers on the way, autotuned, < 64 MiB
#    with the sampling's lag on a loaded box: 36 MiB was seen), instead of
#    running ahead towards 1 GiB;
#  - after the slow phase the whole GiB arrives byte-exact.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss
lab_need_lb peer
lab_up

cfg=$(lab_config '{"name": "bulk", "vips": ["198.18.100.1:9000"], "backends": [{"address": "198.18.2.2:9000"}]}')
serve_log=$LAB_DIR/serve.log
lab_peer_start "$LAB_BE" "$serve_log" serve 198.18.2.2:9000
lab_lb_start "$cfg"

slow_s=10
cli_log=$LAB_DIR/client.log
lab_log "checking: 1 GiB download, client reading 64 KiB per 10 ms for ${slow_s} s"
lab_bg "$LAB_CLI" "$cli_log" "$PEER" client -t 50 -b 198.18.0.10 -u 0 -d 1G -r 6400K -R "$slow_s" -P "$LAB_VIP4:9000"
cpid=$LAB_BG_PID

rss_total() { # kB, summed over lb's master and workers
	local p s=0 v
	for p in $(lab_lb_pids); do
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
be_sendq() { in_be ss -Htn '( sport = :9000 )' | awk '{ s += $3 } END { print s + 0 }'; }
be_acked() { in_be ss -Htni '( sport = :9000 )' | grep -o 'bytes_acked:[0-9]*' | cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'; }
cli_read() { grep -o 'down [0-9]* bytes' "$cli_log" | tail -n1 | awk '{ print $2 + 0 }'; }

MiB=1048576
t0=$(date +%s%N)
rss_min=0 rss_max=0 n=0 n_late=0 blocked=0 inflight_max=0 inflight_early='' inflight_late=0
while :; do
	sleep 0.5
	el=$((($(date +%s%N) - t0) / 1000000))
	((el < slow_s * 1000 - 500)) || break
	kill -0 "$cpid" 2>/dev/null || break
	rss=$(rss_total) q=$(be_sendq) acked=$(be_acked) rd=$(cli_read)
	inflight=$((acked - rd))
	((n == 0)) && rss_min=$rss
	((rss < rss_min)) && rss_min=$rss
	((rss > rss_max)) && rss_max=$rss
	((inflight > inflight_max)) && inflight_max=$inflight
	if ((el >= 2000)); then
		((q > 0)) && blocked=$((blocked + 1))
		[[ -z $inflight_early ]] && inflight_early=$inflight
		inflight_late=$inflight
		n_late=$((n_late + 1))
	fi
	n=$((n + 1))
	printf '%s: sample %2d at %5d ms: lb rss %6d kB, client read %4d MiB, backend acked %4d MiB, backend Send-Q %5d KiB\n' \
		"$LAB_NAME" "$n" "$el" "$rss" $((rd / MiB)) $((acked / MiB)) $((q / 1024)) >&2
done
kill -0 "$cpid" 2>/dev/null || { cat "$cli_log" >&2; lab_fail "client ended during the slow phase"; }
((n >= 5)) || lab_fail "only $n samples taken (box too busy?)"

((rd >= 30 * MiB)) || lab_fail "client read only $((rd / MiB)) MiB in the slow phase, want >= 30"
lab_log "ok: $((rd / MiB)) MiB passed through lb during the slow phase"
((rss_max - rss_min < 2048)) || lab_fail "lb's RSS grew from $rss_min to $rss_max kB while the client read slowly"
lab_log "ok: lb's RSS stayed flat: $rss_min..$rss_max kB over $n samples"
((blocked == n_late)) || lab_fail "backend Send-Q was empty in $((n_late - blocked)) of $n_late samples: nothing held it back"
lab_log "ok: backend's Send-Q never drained after 2 s ($blocked samples): its send is blocked"
((inflight_max < 64 * MiB)) ||
	lab_fail "backend got $((inflight_max / MiB)) MiB ahead of the client, want < 64 MiB"
((inflight_late - inflight_early < 8 * MiB)) ||
	lab_fail "the gap between backend and client grew from $((inflight_early / MiB)) to $((inflight_late / MiB)) MiB"
lab_log "ok: backend at most $((inflight_max / MiB)) MiB ahead of the client (socket buffers), not growing ($((inflight_early / MiB)) -> $((inflight_late / MiB)) MiB)"

if ! wait "$cpid"; then
	cat "$cli_log" "$serve_log" >&2
	lab_lb_log
	lab_fail "the 1 GiB download did not complete byte-exact"
fi
lab_log "ok: $(grep '^peer client:' "$cli_log")"
lab_log "PASS"
