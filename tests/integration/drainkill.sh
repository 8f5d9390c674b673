#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A worker that cannot drain (stopped with SIGSTOP) is killed by the master
# once its own generation's drain_timeout_ms (plus the grace) has passed,
# even while later reloads keep retiring newer generations: their deadlines
# do not postpone an older one's. (The watchdog, which would also kill a
# stopped worker, is off: watchdog.sh tests it.)
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_up
lab_nginx_start

DRAIN_MS=1000
GRACE_MS=2000		# STOP_GRACE_MS in lb/master.c
cfg=$(lab_config)
sed -i "s/\"workers\": 2,/\"workers\": 1, \"drain_timeout_ms\": $DRAIN_MS, \"watchdog_ms\": 0,/" "$cfg"
grep -q "\"drain_timeout_ms\": $DRAIN_MS" "$cfg" || lab_fail "could not set drain_timeout_ms"
lab_lb_start "$cfg"
master=$LAB_LB_PID
stuck=$(pgrep -P "$master")
[[ $stuck =~ ^[0-9]+$ ]] || lab_fail "want one worker, found: $stuck"

kill -STOP "$stuck"
t0=$(lab_now_ms)
kill -HUP "$master"
lab_wait_grep "$LAB_LB_LOG" 'reload: generation 2' 5 >/dev/null ||
	{ lab_lb_log; lab_fail "first reload did not complete"; }
lab_log "worker $stuck of generation 1 stopped; reloading every 0.5 s from now on"

# Keep reloading past generation 1's deadline: each reload retires the
# previous generation with a fresh DRAIN_MS + GRACE_MS ahead of it.
deadline=$((DRAIN_MS + GRACE_MS))
killed_ms=
for ((i = 0; i < 14; i++)); do
	sleep 0.5
	kill -HUP "$master"
	if [[ -z $killed_ms ]] && ! kill -0 "$stuck" 2>/dev/null; then
		killed_ms=$(($(lab_now_ms) - t0))
	fi
done
[[ -n $killed_ms ]] || {
	lab_lb_log
	lab_fail "stopped worker $stuck still alive $(($(lab_now_ms) - t0)) ms after its generation was retired (deadline $deadline ms)"
}
((killed_ms <= deadline + 1000)) ||
	lab_fail "stopped worker killed after $killed_ms ms, want about $deadline ms"
grep -Eq "worker 0 \\(pid $stuck\\) of generation 1 still running after its drain: killing it" \
	"$LAB_LB_LOG" || { lab_lb_log; lab_fail "no log line for killing worker $stuck"; }
lab_log "ok: stopped worker of generation 1 killed after $killed_ms ms (deadline $deadline ms) while reloads went on"

body=$(lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/") || { lab_lb_log; lab_fail "service does not answer after the reloads"; }
[[ $body == *"client=${LAB_CLI_IP4[0]}"* ]] || lab_fail "unexpected answer: $body"
lab_log "ok: the service still answers"
lab_lb_stop TERM || lab_fail "lb exited non-zero on SIGTERM"
lab_log PASS
