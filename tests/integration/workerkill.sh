#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A worker SIGKILLed while it holds connections to a max_conns backend
# leaves no count behind (issue 13, item 1): 1 worker, max_conns 2, two
# connections held, the worker killed.
#  - after the master restarts it, the backend's "active" (lbctl backends)
#    matches the connections the backend really has (0);
#  - two new clients are served at once: none is queued behind counts of
#    connections that are gone, none is reset after queue_timeout_ms.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss jq
lab_need_lb peer
lab_up

BE=${LAB_BE_IP4[0]}
PORT=9510
VIP=$LAB_VIP4:$PORT

lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo "$BE:$PORT"

cfg=$(lab_config_with '"workers": 1' '{
	"name": "one",
	"vips": ["'"$VIP"'"],
	"scheduler": "leastconn",
	"backends": [{"address": "'"$BE:$PORT"'", "max_conns": 2}],
	"queue_timeout_ms": 1500
}')
lab_lb_start "$cfg"

be_conns() { in_be ss -Htn state established "sport = :$PORT" | wc -l; }
active() { lab_ctl_call '{"cmd": "backends", "service": "one"}' | jq -r '.data[0].active'; }
worker_pid() {
	lab_ctl_call '{"cmd": "status"}' | jq -r '.data.workers[] | select(.state == "running") | .pid'
}

# hold SRC N LOG: N connections from SRC, each echoing one byte; sets HPID.
hold() {
	lab_bg "$LAB_CLI" "$3" "$PEER" hold -b "$1" -n "$2" -e "$VIP"
	HPID=$LAB_BG_PID
}

hold "${LAB_CLI_IP4[0]}" 2 "$LAB_DIR/h1.log"
H1=$HPID
lab_wait_grep "$LAB_DIR/h1.log" ' 2 answered' 3 >/dev/null ||
	{ cat "$LAB_DIR/h1.log" >&2; lab_lb_log; lab_fail "two held connections not echoed"; }
a=$(active)
[[ $a == 2 ]] || lab_fail "active is $a with two connections held, want 2"
lab_log "ok: two connections held, active $a"

W=$(worker_pid)
[[ -n $W ]] || lab_fail "no running worker"
kill -KILL "$W"
lab_wait_grep "$LAB_LB_LOG" "worker 0 \\(pid $W\\) killed by signal 9" 3 >/dev/null ||
	{ lab_lb_log; lab_fail "the master did not notice the killed worker $W"; }
# The killed worker's sockets are gone: the client and backend see their ends closed.
lab_wait_grep "$LAB_DIR/h1.log" ' 2 (eof|reset)|1 eof, 1 reset' 3 >/dev/null ||
	{ cat "$LAB_DIR/h1.log" >&2; lab_fail "held connections did not end with their worker"; }
for ((i = 0; i < 50; i++)); do
	[[ $(be_conns) == 0 ]] && break
	sleep 0.1
done
n=$(be_conns)
((n == 0)) || lab_fail "the backend still has $n established connections"
lab_wait_grep "$LAB_LB_LOG" 'worker 0 of generation 1 started' 3 >/dev/null || lab_fail "no restart"
for ((i = 0; i < 30; i++)); do
	[[ $(worker_pid) =~ ^[0-9]+$ && $(worker_pid) != "$W" ]] && break
	sleep 0.1
done
a=$(active)
[[ $a == "$n" ]] || { lab_lb_log; lab_fail "after the worker was killed, active is $a while the backend has $n connections"; }
lab_log "ok: after the kill and restart, active $a matches the backend's $n connections"
line=$(grep -E 'held 2 backend connections' "$LAB_LB_LOG") ||
	{ lab_lb_log; lab_fail "the master did not log the claims it gave back"; }
lab_log "ok: logged: ${line#*msg=}"
lab_stop "$H1"

t0=$(lab_now_ms)
hold "${LAB_CLI_IP4[1]}" 2 "$LAB_DIR/h2.log"
H2=$HPID
lab_wait_grep "$LAB_DIR/h2.log" ' 2 answered' 1 >/dev/null ||
	{ cat "$LAB_DIR/h2.log" >&2; lab_lb_log; lab_fail "two new clients not served within 1 s of connecting (queued behind stale counts?)"; }
lab_log "ok: two new clients served in $(($(lab_now_ms) - t0)) ms"
a=$(active)
[[ $a == 2 && $(be_conns) == 2 ]] || lab_fail "active $a, backend $(be_conns) connections, want 2 and 2"
lab_log "ok: active 2 matches the backend's 2 connections"
grep -q 'queue_timeout' "$LAB_LB_LOG" && lab_fail "a client hit the queue timeout"
lab_stop "$H2"

lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
