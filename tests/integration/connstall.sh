#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A worker that the scheduler leaves out for longer than connect_timeout_ms
# must not blame the backend for its own stall. Seen in the 1,000,000
# connection benchmark: a starved worker came back with its connect timers
# due and at most one batch (256) of events read; the connects behind that
# batch had completed long before, yet they counted as timeouts, three of
# them marked the only backend down for every worker, and 87,000 clients
# were reset. Here:
#  - 600 connections through 1 worker to an echo backend whose SYNs are
#    dropped at first, so every connect is under way;
#  - the worker is stopped (SIGSTOP), the backend let through: the kernel
#    completes the connects at the SYN's retransmission (~1 s) while the
#    worker is stopped; it is resumed after connect_timeout_ms (2 s) passed;
#  - every connection is answered, the backend counts no failed connect and
#    stays up.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=connstall
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq nft
lab_need_lb
lab_need_peer
lab_up

BE=${LAB_BE_IP4[0]}
PORT=9600
VIP=$LAB_VIP4:$PORT
N=600

lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$PEER" echo "$BE:$PORT"
lab_wait_port "$LAB_BE" "$BE" $PORT || lab_fail "peer echo not listening on $BE:$PORT"
cfg=$(lab_config_with '"workers": 1, "watchdog_ms": 20000' '{
	"name": "stall",
	"vips": ["'"$VIP"'"],
	"connect_timeout_ms": 2000,
	"retries": 0,
	"backends": [{"address": "'"$BE:$PORT"'"}]
}')
lab_lb_start "$cfg"
worker=$(lab_ctl_call '{"cmd": "status"}' | jq -r '.data.workers[] | select(.state == "running") | .pid')
[[ $worker =~ ^[0-9]+$ ]] || lab_fail "no running worker: $worker"
backend() { lab_ctl_call '{"cmd": "backends"}' | jq -c '.data[0] | {health, connect_failures, total}'; }

# The backend drops SYNs until told otherwise; nft here is the test's own
# table in the backend's namespace, not lb's rules.
ip netns exec "$LAB_BE" nft -f - <<EOF || lab_fail "nft in $LAB_BE"
table inet connstall {
	chain in {
		type filter hook input priority 0;
		tcp dport $PORT tcp flags syn counter drop
	}
}
EOF

lab_bg "$LAB_CLI" "$LAB_DIR/hold.log" "$PEER" hold -b "${LAB_CLI_IP4[1]}" -n $N -p $N -e "$VIP"
# Every connect under way: the worker accepted all N and sent their SYNs,
# N upstream sockets in SYN-SENT from the client's address. (Not the drop
# rule's packet count: a slow box retransmits the first SYNs, after 1 s,
# before the worker has sent the last ones.)
for _ in $(seq 100); do
	syns=$(in_gw ss -Htn state syn-sent "( dport = :$PORT and src ${LAB_CLI_IP4[1]} )" | wc -l)
	((syns >= N)) && break
	sleep 0.05
done
((syns >= N)) || lab_fail "only $syns of $N connects to the backend under way"
kill -STOP "$worker"
t0=$(lab_now_ms)
ip netns exec "$LAB_BE" nft delete table inet connstall
# The kernel completes the connects at the SYN's retransmission, about 1 s
# after the first; the worker wakes up past its 2 s connect timeout.
sleep 3
open=$(ip netns exec "$LAB_BE" ss -Htn state established "( sport = :$PORT )" | wc -l)
kill -CONT "$worker"
lab_log "worker $worker stopped for $(($(lab_now_ms) - t0)) ms; the backend had $open of $N connections meanwhile"
((open == N)) || lab_fail "the backend accepted $open of $N connections while the worker was stopped"

line=$(lab_wait_grep "$LAB_DIR/hold.log" " $N answered, 0 eof, 0 reset, 0 failed" 10) || {
	tail -n 3 "$LAB_DIR/hold.log" >&2
	lab_lb_log
	lab_fail "not every connection was answered after the stall; backend: $(backend)"
}
lab_log "ok: $line"
b=$(backend)
[[ $(jq -r .connect_failures <<<"$b") == 0 && $(jq -r .health <<<"$b") == up ]] ||
	lab_fail "the backend was blamed for the worker's stall: $b"
! grep -q 'up -> down' "$LAB_LB_LOG" || lab_fail "logged: $(grep 'up -> down' "$LAB_LB_LOG")"
lab_log "ok: backend $b, no passive down"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
