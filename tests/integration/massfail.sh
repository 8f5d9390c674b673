#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Mass backend failure does not freeze the master (issue 14, item 4): a
# maglev service of 1,000 backends (one echo peer on 1,000 ports), tcp
# health checks every 1 s with fall 2; the peer is killed, so every backend
# fails at once.
#  - all 1,000 are marked down within fall x interval + 1 s (3 s);
#  - the control socket answers throughout: a request every 50 ms, none
#    fails, p95 latency under 50 ms (p99 of some 80 samples is the
#    second slowest: two stalls of a shared VM would fail it);
#  - when the peer comes back, all return within rise x interval + 1 s.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root socat jq
lab_need_lb peer
lab_up

BE=${LAB_BE_IP4[0]}
N=1000
FIRST=20000
addrs=() backends=
for ((p = FIRST; p < FIRST + N; p++)); do
	addrs+=("$BE:$p")
	backends+="${backends:+, }{\"address\": \"$BE:$p\"}"
done
start_peer() {
	lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$PEER" echo "${addrs[@]}"
	PEER_PID=$LAB_BG_PID
	lab_wait_port "$LAB_BE" "$BE" $((FIRST + N - 1)) || lab_fail "echo peer not listening"
}
start_peer

cfg=$(lab_config_with '"workers": 2' '{
	"name": "mass",
	"vips": ["'"$LAB_VIP4"':80"],
	"scheduler": "maglev",
	"maglev_table_size": 100003,
	"backends": ['"$backends"'],
	"health": {"type": "tcp", "interval_ms": 1000, "timeout_ms": 500, "fall": 2, "rise": 2}
}')
lab_lb_start "$cfg"
usable() { lab_ctl_call '{"cmd": "services"}' | jq -r '.data[0].usable'; }
# wait_usable N SECONDS: until usable == N; prints the ms it took.
wait_usable() {
	local want=$1 t0 i u
	t0=$(lab_now_ms)
	for ((i = 0; i < $2 * 20; i++)); do
		u=$(usable)
		[[ $u == "$want" ]] && { echo $(($(lab_now_ms) - t0)); return 0; }
		sleep 0.05
	done
	lab_log "usable is still $u after $2 s, want $want"
	return 1
}
wait_usable $N 5 >/dev/null || lab_fail "not all backends up at start"
lab_log "ok: $N backends up"

# The control socket, asked every 50 ms on one connection (no process is
# started per request, so the figure is lb's): "ms" per answer, "fail"
# when none came within 2 s.
lat=$LAB_DIR/latency.log
lab_bg "$LAB_GW" /dev/null bash -c '
	trap "exit 0" TERM
	coproc CTL { socat - "UNIX-CONNECT:$1"; }
	while :; do
		t0=${EPOCHREALTIME/./}
		printf "%s\n" "{\"cmd\": \"stats\"}" >&"${CTL[1]}"
		if read -r -t 2 reply <&"${CTL[0]}" && [[ $reply == "{\"ok\":true"* ]]; then
			echo $(((${EPOCHREALTIME/./} - t0) / 1000))
		else
			echo fail
		fi
		sleep 0.05
	done >"$2"' probe "$LAB_DIR/lb.sock" "$lat"
PROBE=$LAB_BG_PID
sleep 1

lab_stop "$PEER_PID"
ms=$(wait_usable 0 10) || { lab_lb_log | tail -n 20; lab_fail "backends not all marked down within 10 s"; }
((ms <= 3000)) || lab_fail "all $N backends marked down after $ms ms, want within fall x interval + 1 s = 3000 ms"
lab_log "ok: all $N backends marked down $ms ms after the peer died"
sleep 1
lab_stop "$PROBE"
fails=$(grep -c fail "$lat")
read -r n p95 max < <(grep -v fail "$lat" | sort -n | awk '{ v[NR] = $1 } END {
	i = int(NR * 0.95); if (i < 1) i = 1; print NR, v[i], v[NR] }')
((fails == 0)) || lab_fail "$fails of $((n + fails)) control requests got no answer"
((n >= 20)) || lab_fail "only $n control requests were made"
((p95 < 50)) || lab_fail "control socket p95 $p95 ms (max $max ms) over $n requests, want under 50 ms"
lab_log "ok: control socket answered $n requests during the failure: p95 $p95 ms, max $max ms"

start_peer
ms=$(wait_usable $N 10) || lab_fail "backends not all back within 10 s"
((ms <= 3000)) || lab_fail "all $N backends back after $ms ms, want within rise x interval + 1 s = 3000 ms"
lab_log "ok: all $N backends back $ms ms after the peer returned"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
