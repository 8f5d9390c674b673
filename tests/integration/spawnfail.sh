#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A reload whose workers cannot start never leaves the service unserved
# (issue 13, item 2). The master is put in a pids cgroup that allows it no
# child, as a pids limit reached while an old generation drains would, and
# lb is reloaded from 1 worker to 2:
#  - both new slots fail to start and lb logs that it retries them;
#  - requests keep succeeding throughout: the old worker keeps accepting at
#    its position, and the new position's listener is given up so nothing
#    queues on it unaccepted;
#  - once the limit is lifted both slots start (with backoff, within 6 s),
#    the old worker hands over and drains, and requests never stopped.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss jq
lab_need_lb

# A pids cgroup of our own: v1 hierarchy, or v2 with the pids controller.
if [[ -w /sys/fs/cgroup/pids/cgroup.procs ]]; then
	CG=/sys/fs/cgroup/pids/$LAB_ID
	CG_PARENT=/sys/fs/cgroup/pids
elif grep -qw pids /sys/fs/cgroup/cgroup.controllers 2>/dev/null &&
	grep -qw pids /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
	CG=/sys/fs/cgroup/$LAB_ID
	CG_PARENT=/sys/fs/cgroup
else
	lab_skip "no writable pids cgroup controller to make fork fail"
fi

lab_up
mkdir "$CG" || lab_fail "mkdir $CG"
# When the test ends, whatever is left goes back to the parent; then the group goes.
LAB_ON_DOWN+=('for p in $(cat "$CG/cgroup.procs" 2>/dev/null); do echo "$p" >"$CG_PARENT/cgroup.procs"; done; rmdir "$CG" 2>/dev/null')

lab_nginx_start
cfg=$(lab_config)
sed -i 's/"workers": 2/"workers": 1/' "$cfg"
lab_lb_start "$cfg"
workers() {
	lab_ctl_call '{"cmd": "status"}' |
		jq -r '[.data.workers[] | select(.state == "running") | "\(.generation)/\(.id)"] | sort | join(" ")'
}
[[ $(workers) == "1/0" ]] || lab_fail "want one running worker of generation 1, have: $(workers)"

lab_load_start "http://$LAB_VIP4/"
sleep 0.5
echo "$LAB_LB_PID" >"$CG/cgroup.procs" || lab_fail "cannot move lb's master into $CG"
echo 1 >"$CG/pids.max" || lab_fail "cannot set $CG/pids.max"
lab_log "master $LAB_LB_PID in $CG, pids.max 1: it can fork no worker"

sed -i 's/"workers": 1/"workers": 2/' "$cfg"
t_reload=$(lab_now_ms)
kill -HUP "$LAB_LB_PID"
sleep 3
report=$(lab_load_report "$t_reload") ||
	{ lab_lb_log; lab_fail "requests failed while the new workers could not start: $report"; }
lab_log "ok: 3 s after the reload, the old worker still serves: $report"
[[ $(workers) == "1/0" ]] || lab_fail "while no new worker can start, want generation 1's worker still running, have: $(workers)"
grep -q 'worker 1 of generation 2: cannot start: .*retrying in' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "no log line for the slot that cannot start"; }
grep -q 'reload: generation 2 started 0 of 2 workers' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "the reload did not report its short generation"; }
lab_log "ok: both new slots fail to start and are retried"

echo max >"$CG/pids.max"
t_lift=$(lab_now_ms)
for ((i = 0; i < 60; i++)); do
	[[ $(workers) == "2/0 2/1" ]] && break
	sleep 0.1
done
[[ $(workers) == "2/0 2/1" ]] || { lab_lb_log; lab_fail "6 s after the limit was lifted, running: $(workers), want 2/0 2/1"; }
lab_log "ok: both slots of generation 2 started $(($(lab_now_ms) - t_lift)) ms after the limit was lifted"
lab_wait_grep "$LAB_LB_LOG" 'generation 1 drained' 5 >/dev/null ||
	{ lab_lb_log; lab_fail "the old generation did not hand over and drain"; }
lab_log "ok: generation 1 handed over and drained"
sleep 0.5
lab_load_stop
report=$(lab_load_report "$t_reload") || { lab_lb_log; lab_fail "requests failed: $report"; }
lab_log "ok: from the reload to the end: $report"

lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
