#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Connection churn leaks nothing: 100,000 connections opened and reset by
# the client (SO_LINGER 0), 200 at a time from four source addresses; every
# second one first has a byte echoed end to end (so it was relayed), the
# others are reset as soon as the handshake is done (often while lb is still
# connecting upstream). Afterwards each worker's RSS and open fds are within
# 5% of what they were before, the gateway holds no TCP socket but lb's
# listeners (none orphaned, none in TIME_WAIT: a client's reset is passed on
# as a reset), and every connection was counted.
#
# The baseline is taken after a warm-up of 5,000 such connections, not at
# start: the first connections grow things that are then reused, not
# leaked: malloc's arenas, the timer heap (it doubles to the peak number of
# connections and stays), the touched part of the connection slab (calloc'ed
# at start, resident only once used), and the pipe pool's kept idle pipes.
# Against a fresh worker those would look like growth.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq socat
lab_need_lb peer
N=${CHURN_N:-100000}
WARM=${CHURN_WARM:-5000}
lab_up

cfg=$(lab_config '{"name": "churn", "vips": ["198.18.100.1:9500"], "backends": [{"address": "198.18.2.2:9500"}]}')
lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo 198.18.2.2:9500
lab_lb_start "$cfg"

workers() {
	lab_ctl_call '{"cmd": "status"}' | jq -r '.data.workers[] | select(.state == "running") | .pid'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# idle PID SOCKETS SECONDS: until PID holds only SOCKETS sockets (listeners
# and its socketpair: no connection left).
idle() {
	local i s
	for ((i = 0; i < $3 * 10; i++)); do
		read -r _ s _ < <(lab_fd_counts "$1")
		((s == $2)) && return 0
		sleep 0.1
	done
	return 1
}
# churn N: N connections; checks that all were made.
churn() {
	local log=$LAB_DIR/churn-$1.log
	in_cli "$PEER" churn -n "$1" -p 200 -a -t 120 -b 198.18.0.10 -b 198.18.0.11 -b 198.18.0.12 \
		-b 198.18.0.13 "$LAB_VIP4:9500" >"$log" 2>&1 ||
		{ cat "$log" >&2; lab_lb_log; lab_fail "churn of $1 connections failed"; }
	grep -q "^churn: $1 conns: $1 connected, $(($1 / 2)) echoed, 0 failed" "$log" ||
		{ cat "$log" >&2; lab_fail "churn of $1: unexpected result"; }
	lab_log "ok: $(cat "$log")"
}

read -r -a W < <(workers | paste -sd ' ')
((${#W[@]} == 2)) || lab_fail "want 2 workers, have: ${W[*]}"
read -r _ idle_sock _ < <(lab_fd_counts "${W[0]}")
accepted0=$(lab_ctl_call '{"cmd": "status"}' | jq '[.data.workers[].accepted] | add')

churn "$WARM"
for w in "${W[@]}"; do
	idle "$w" "$idle_sock" 5 || lab_fail "worker $w still holds connections after the warm-up"
done
declare -A rss0 fds0
for w in "${W[@]}"; do
	rss0[$w]=$(rss_kib "$w")
	fds0[$w]=$(lab_fd_counts "$w")
	lab_log "baseline after $WARM: worker $w: RSS ${rss0[$w]} KiB, fds (total sockets pipes other) ${fds0[$w]}"
done

churn "$N"
for w in "${W[@]}"; do
	kill -0 "$w" 2>/dev/null || lab_fail "worker $w died during the churn"
	idle "$w" "$idle_sock" 5 || { lab_lb_log; lab_fail "worker $w still holds $(lab_fd_counts "$w") (total sockets pipes other) 5 s after the churn"; }
done

fail=0
for w in "${W[@]}"; do
	rss=$(rss_kib "$w")
	read -r t s p o < <(lab_fd_counts "$w")
	read -r t0 s0 p0 o0 <<<"${fds0[$w]}"
	lab_log "after $N: worker $w: RSS $rss KiB (baseline ${rss0[$w]}), fds $t $s $p $o (baseline $t0 $s0 $p0 $o0)"
	if ((rss * 100 > rss0[$w] * 105)); then
		lab_log "FAIL: worker $w RSS grew more than 5%: ${rss0[$w]} -> $rss KiB"
		fail=1
	fi
	# Sockets and other fds must match exactly: any difference is a leak.
	# Pipes are the relay pool's kept idle pipes, at most 32 (64 fds),
	# which may fill up further with more concurrency: they count against
	# the 5% only beyond what the pool may keep.
	if ((s != s0 || o != o0 || p > 64 || (t * 100 > t0 * 105 && p <= p0))); then
		lab_log "FAIL: worker $w fds changed: $t0 $s0 $p0 $o0 -> $t $s $p $o (total sockets pipes other)"
		fail=1
	fi
done
((fail == 0)) || { lab_lb_log; lab_fail "resources not back to baseline after $N connections"; }
lab_log "ok: every worker's RSS and fds are back within 5% of the baseline"

# The gateway's TCP sockets: lb's listeners only; no orphans left to finish
# a close and no TIME_WAIT (lb answers a client's reset with resets). ss,
# not /proc/net/sockstat, whose orphan count is the host's.
others() { in_gw ss -Htan | grep -vc '^LISTEN'; }
for ((i = 0; i < 50; i++)); do
	(($(others) == 0)) && break
	sleep 0.1
done
(($(others) == 0)) ||
	{ in_gw ss -Htan | awk '{ print $1 }' | sort | uniq -c >&2; lab_fail "the gateway still has $(others) TCP sockets besides lb's listeners 5 s after the churn"; }
lab_log "ok: the gateway has no TCP socket left but lb's listeners (none orphaned, none in TIME_WAIT)"

accepted=$(lab_ctl_call '{"cmd": "status"}' | jq '[.data.workers[].accepted] | add')
((accepted - accepted0 == N + WARM)) || lab_fail "workers accepted $((accepted - accepted0)), want $((N + WARM))"
lab_log "ok: the workers counted all $((N + WARM)) connections"
lab_lb_stop TERM || { lab_lb_log; lab_fail "lb did not exit 0 on SIGTERM"; }
left=$(lab_gw_leftovers) || lab_fail "lb left behind: $left"
lab_log "PASS"
