#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# UDP faults (issue 16):
#  - ICMP port unreachable from a backend counts as a failed connect: after
#    `fall` of them the backend is marked down (passive), and new flows all
#    go to the one that answers;
#  - udp_idle_timeout_ms reclaims flows: open flows and their sockets are
#    gone soon after the traffic stops;
#  - a full flow table (a worker's fd budget) drops new flows, counts them
#    (flows_full) and logs it at most once a second, while the flows it
#    holds go on without loss; a flow that cannot open (no usable backend)
#    loses no free slot of the table;
#  - a SIGKILLed worker loses only its own flows: every flow the other
#    worker held goes on without a lost datagram, the master releases the
#    killed worker's keys in the shared keyset and its flows from the
#    service's open-flow gauge, and its flows come back (a new flow) once
#    its replacement runs.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq ss
lab_need_lb
lab_up
UP=${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/udppeer
[[ -x $UP ]] || lab_skip "udppeer not built: $UP"

A=${LAB_BE_IP4[0]} B=${LAB_BE_IP4[1]}
# B answers on 6000; nothing listens on A:6000, so A's kernel answers port unreachable.
lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$UP" echo "$B:6000" "$A:6001" "$B:6001"
sleep 0.3
svc() {	# NAME PORT BACKENDS_JSON [EXTRA]
	echo '{"name": "'"$1"'", "protocol": "udp", "vips": ["'"$LAB_VIP4:$2"'"], "backends": '"$3"'
	       '"${4:+, $4}"'}'
}
# No health block: passive checks only, fall 3.
cfg=$(lab_config_with '"workers": 2' "$(svc icmp 6000 '[{"address": "'"$A"':6000"}, {"address": "'"$B"':6000"}]'),
	$(svc idle 6001 '[{"address": "'"$A"':6001"}, {"address": "'"$B"':6001"}]' '"udp_idle_timeout_ms": 1000')")
lab_lb_start "$cfg"
health() {
	lab_ctl_call '{"cmd": "backends", "service": "icmp"}' | jq -r ".data[] | select(.address == \"$1\") | .health"
}
svc_udp() { lab_ctl_call '{"cmd": "services"}' | jq -c ".data[] | select(.name == \"$1\") | .udp"; }

lab_log "checking: port unreachable from a backend takes it down (passive health)"
line=$(in_cli "$UP" gen -b "${LAB_CLI_IP4[0]}" -f 12 -r 120 -t 1 -w 300 "$LAB_VIP4:6000")
[[ $(health "$A:6000") == down ]] || { lab_lb_log; lab_fail "backend $A:6000 (port unreachable) is $(health "$A:6000"): $line"; }
[[ $(health "$B:6000") == up ]] || lab_fail "the answering backend went down"
fails=$(lab_ctl_call '{"cmd": "backends", "service": "icmp"}' | jq ".data[] | select(.address == \"$A:6000\") | .connect_failures")
((fails >= 3)) || lab_fail "connect_failures of $A:6000 is $fails, want 3 or more"
grep -q "service icmp backend $A:6000: health up -> down (passive: 3 consecutive connect failures, last: Connection refused)" "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "no log line for the passive down"; }
line=$(in_cli "$UP" gen -b "${LAB_CLI_IP4[1]}" -f 8 -r 200 -t 1 "$LAB_VIP4:6000")
[[ $line == *" lost 0 (0.000%), bad 0"* ]] || lab_fail "after A went down, flows still lose datagrams: $line"
lab_log "ok: $A:6000 down after $fails refused flows; new flows all answered by $B: $line"

lab_log "checking: idle flows are reclaimed after udp_idle_timeout_ms (1 s)"
in_cli "$UP" gen -b "${LAB_CLI_IP4[2]}" -f 20 -r 400 -t 1 "$LAB_VIP4:6001" >/dev/null
n=$(svc_udp idle | jq .flows)
((n == 20)) || lab_fail "idle service holds $n flows right after 20 ran, want 20"
socks=$(in_gw ss -Huan state connected "( sport = :6001 or dport = :6001 )" | wc -l)
((socks == 40)) || lab_fail "$socks connected UDP sockets for 20 flows, want 40"
for ((i = 0; i < 40; i++)); do
	[[ $(svc_udp idle | jq .flows) == 0 ]] && break
	sleep 0.1
done
n=$(svc_udp idle | jq .flows)
socks=$(in_gw ss -Huan state connected "( sport = :6001 or dport = :6001 )" | wc -l)
((n == 0 && socks == 0)) || lab_fail "4 s after the traffic stopped: $n flows, $socks sockets"
lab_log "ok: 20 flows and their 40 sockets gone within $((i * 100 + 1000)) ms of the last datagram"

lab_log "checking: a SIGKILLed worker loses only its own flows"
lab_bg "$LAB_CLI" "$LAB_DIR/gen-kill.log" "$UP" gen -v -b "${LAB_CLI_IP4[3]}" -f 40 -r 800 -t 5 -w 1000 "$LAB_VIP4:6001"
GEN=$LAB_BG_PID
sleep 1.5
read -r victim held < <(lab_ctl_call '{"cmd": "status"}' |
	jq -r '.data.workers[] | select(.state == "running") | "\(.pid) \(.udp_flows)"' | head -n1)
kill -STOP "$victim"
held=$(lab_ctl_call '{"cmd": "status"}' | jq ".data.workers[] | select(.pid == $victim) | .udp_flows")
kill -KILL "$victim"
wait "$GEN" || { cat "$LAB_DIR/gen-kill.log" >&2; lab_fail "udppeer gen failed (bad datagrams)"; }
lossy=$(awk '/^gen: flow/ { split($0, a, "sent "); split(a[2], b, ", received "); if (b[1] + 0 != b[2] + 0) n++ } END { print n + 0 }' "$LAB_DIR/gen-kill.log")
dead=$(grep -c 'received 0$' "$LAB_DIR/gen-kill.log")
((held > 0 && held < 40)) || lab_fail "the killed worker held $held of 40 flows"
((lossy <= held)) || { cat "$LAB_DIR/gen-kill.log" >&2; lab_fail "$lossy flows lost datagrams, but the killed worker held only $held"; }
((dead == 0)) || lab_fail "$dead flows got no answer at all"
# Its flows' (client, backend) pairs are released for other workers' flows.
lab_wait_grep "$LAB_LB_LOG" "$held udp flow keys of dead workers released" 3 >/dev/null ||
	{ lab_lb_log; lab_fail "the master did not release the $held flow keys of the killed worker"; }
late=$(in_cli "$UP" gen -b "${LAB_CLI_IP4[3]}" -f 40 -r 800 -t 1 "$LAB_VIP4:6001")
[[ $late == *" lost 0 (0.000%)"* ]] || lab_fail "after the restart: $late"
lab_log "ok: the killed worker held $held flows; $lossy flows lost datagrams, the other $((40 - lossy)) none; afterwards $late"
# The service's open-flow gauge lost the killed worker's flows with it: once
# every flow idled out, it reads 0 again.
lab_wait_grep "$LAB_LB_LOG" "held $held udp flows: no longer counted" 3 >/dev/null ||
	{ lab_lb_log; lab_fail "the master did not take the killed worker's $held flows off the gauge"; }
for ((i = 0; i < 40; i++)); do
	n=$(svc_udp idle | jq .flows)
	((n == 0)) && break
	sleep 0.1
done
((n == 0)) || lab_fail "the service still counts $n open flows 4 s after the last datagram (the killed worker held $held)"
lab_log "ok: the service's open-flow gauge back to 0 once the flows idled out"

lab_lb_stop || lab_fail "lb exited with status $?"

lab_log "checking: a full flow table drops new flows, counts them, and spares the flows it holds"
# 300 fds: 37 pipes, and (300 - 74 - 64) / 2 = 81 slots, all for flows (UDP only).
cfg=$(lab_config_with '"workers": 1' "$(svc idle 6001 '[{"address": "'"$B"':6001"}]' '"udp_idle_timeout_ms": 30000')")
lab_lb_start_nofile 300 "$cfg"
cap=$(lab_ctl_call '{"cmd": "limits"}' | jq .data.per_worker.udp_flows)
((cap > 20 && cap < 200)) || lab_fail "flow capacity $cap with 300 fds"
lab_bg "$LAB_CLI" "$LAB_DIR/gen-held.log" "$UP" gen -b "${LAB_CLI_IP4[0]}" -f 20 -r 200 -t 4 "$LAB_VIP4:6001"
HELD=$LAB_BG_PID
sleep 1
line=$(in_cli "$UP" gen -b "${LAB_CLI_IP4[1]}" -f $((cap + 40)) -r 2000 -t 1 "$LAB_VIP4:6001")
wait "$HELD" || lab_fail "the held flows' generator failed"
held_line=$(tail -n1 "$LAB_DIR/gen-held.log")
[[ $held_line == *" lost 0 (0.000%)"* ]] || lab_fail "flows held before the table filled lost datagrams: $held_line"
full=$(svc_udp idle | jq .dropped.flows_full)
((full > 0)) || lab_fail "no datagram counted as dropped for a full table: $(svc_udp idle)"
answered=$(grep -c 'no answer' <<<"$line")
((answered >= 40 - 20)) || lab_fail "want at least 20 flows unanswered beyond capacity $cap: $line"
n=$(grep -c 'udp: flow table full' "$LAB_LB_LOG")
((n >= 1 && n <= 3)) || lab_fail "$n log lines for the full table in ~1 s, want 1..3"
lab_log "ok: capacity $cap flows: $full datagrams dropped as flows_full, logged $n times; the 20 held flows lost nothing"
lab_lb_stop || lab_fail "lb exited with status $?"

lab_log "checking: a flow that cannot open (no usable backend) loses no free slot"
# The table's every slot used once and freed (idle), then an open that
# fails, then the whole table again: every slot must still be there.
cfg=$(lab_config_with '"workers": 1' "$(svc idle 6001 '[{"address": "'"$B"':6001"}]' '"udp_idle_timeout_ms": 500')")
lab_lb_start_nofile 300 "$cfg"
cap=$(lab_ctl_call '{"cmd": "limits"}' | jq .data.per_worker.udp_flows)
n=$((cap - 4))
all() { # SRC: n flows at once; prints how many got no answer
	in_cli "$UP" gen -b "$1" -f $n -r $((n * 10)) -t 1 "$LAB_VIP4:6001" | grep -c 'no answer'
}
[[ $(all "${LAB_CLI_IP4[0]}") == 0 ]] || lab_fail "$n flows of a $cap-flow table: not all answered at first"
sleep 1.5
[[ $(svc_udp idle | jq .flows) == 0 ]] || lab_fail "flows not reclaimed after 1.5 s idle: $(svc_udp idle)"
state() { lab_ctl_call '{"cmd": "set-state", "service": "idle", "backend": "'"$B:6001"'", "state": "'"$1"'"}' |
	jq -e .ok >/dev/null || lab_fail "set-state $1 failed"; }
state disabled
in_cli "$UP" gen -b "${LAB_CLI_IP4[1]}" -f 1 -r 10 -t 0.3 "$LAB_VIP4:6001" >/dev/null
nb=$(svc_udp idle | jq .dropped.no_backend)
((nb > 0)) || lab_fail "no datagram dropped for no usable backend: $(svc_udp idle)"
state up
unanswered=$(all "${LAB_CLI_IP4[2]}")
((unanswered == 0)) ||
	lab_fail "after one failed open, $unanswered of $n flows got no answer: free slots were lost ($(svc_udp idle))"
lab_log "ok: $n of $cap flows, freed, one failed open ($nb datagrams without a backend), then $n flows again: all answered"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
