#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A worker out of file descriptors (EMFILE) keeps what it has and recovers.
# lb runs with an open-file limit of 512 (capacity (512 - 2*128 - 64) / 2 =
# 96, so capacity alone never lets it run out); then the running worker's
# limit is lowered below what it uses with prlimit --pid, which the kernel
# allows: open fds stay, new ones fail. Limits bind fd numbers, not counts,
# so the limit is set at the worker's lowest free fd number (none free below
# it) or at its second lowest (exactly one free).
#  (a) no fd at all: accept() fails. An established connection keeps
#      echoing (round trips every 50 ms, never a gap over 1 s); the accept
#      error is logged at most once a second; new clients wait in the
#      kernel's queue, neither served nor reset; once the limit is raised
#      back they are served within 1 s, and so are new ones.
#  (b) one fd: accept() succeeds and the upstream socket() fails. The
#      client is reset (lb cannot serve it), but the backend is not to blame:
#      it must stay up (no passive-check failure counted against it), so
#      once the limit is raised back a new client is served at once.
# ENFILE (fs.file-max) is host-wide and ENOMEM cannot be provoked safely;
# both take the same paths in lb (see docs/reliability.md).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root prlimit setpriv jq socat
lab_need_lb peer
NOFILE=512
lab_up

cfg=$(lab_config '{"name": "echo", "vips": ["198.18.100.1:9600"], "backends": [{"address": "198.18.2.2:9600"}]}')
sed -i 's/"workers": 2/"workers": 1/' "$cfg"
grep -q '"workers": 1' "$cfg" || lab_fail "could not set workers to 1 in $cfg"
lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo -v 198.18.2.2:9600
lab_lb_start_nofile "$NOFILE" "$cfg"
grep -q "open-file limit $NOFILE)" "$LAB_LB_LOG" || { lab_lb_log; lab_fail "lb does not report an open-file limit of $NOFILE"; }

W=$(lab_ctl_call '{"cmd": "status"}' | jq -r '.data.workers[] | select(.state == "running") | .pid')
[[ $W =~ ^[0-9]+$ ]] || lab_fail "no running worker: '$W'"
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# free_fd PID K: the K-th lowest fd number PID has free (K from 1).
free_fd() {
	local used i=0 k=0
	used=" $(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null)"
	while :; do
		[[ $used == *" $i "* ]] || { k=$((k + 1)); ((k == $2)) && { echo "$i"; return; }; }
		i=$((i + 1))
	done
}
# set_limit N: the worker's soft open-file limit to N, its hard one left at
# NOFILE. Setting another process's limits takes CAP_SYS_RESOURCE or the
# target's own uids and gids; workers run as an unprivileged user and the
# test may lack the capability (containers), so prlimit runs as the worker's
# user. Raising the soft limit back up to the hard one needs no privilege.
set_limit() {
	local uid gid
	uid=$(awk '/^Uid:/ { print $2 }' "/proc/$W/status") gid=$(awk '/^Gid:/ { print $2 }' "/proc/$W/status")
	setpriv --reuid="$uid" --regid="$gid" --clear-groups prlimit --pid "$W" --nofile="$1:$NOFILE" ||
		lab_fail "prlimit --pid $W --nofile=$1:$NOFILE as uid $uid gid $gid"
}
backend_health() {
	lab_ctl_call '{"cmd": "backends", "service": "echo"}' 2>/dev/null |
		jq -r '.data[0].health'
}
accept_lines() { grep -c 'accept: Too many open files' "$LAB_LB_LOG"; }

# An established connection, echoing every 50 ms for the whole test.
ping_log=$LAB_DIR/ping.log
lab_bg "$LAB_CLI" "$ping_log" "$PEER" ping -b 198.18.0.10 -n 1 -i 50 -T 1000 -t 600 "$LAB_VIP4:9600"
ping_pid=$LAB_BG_PID
lab_wait_grep "$ping_log" '^ping: ready' 3 >/dev/null || { cat "$ping_log" >&2; lab_fail "echo connection not established"; }
sleep 0.3
read -r t s p o < <(lab_fd_counts "$W")
lab_log "worker $W: $t fds ($s sockets, $p pipes, $o other) with one connection"

# --- (a) accept() fails ---
lim=$(free_fd "$W" 1)
lab_log "checking: (a) open-file limit of worker $W lowered to $lim (its lowest free fd)"
set_limit "$lim"
before=$(accept_lines)
hold_log=$LAB_DIR/hold-a.log
lab_bg "$LAB_CLI" "$hold_log" "$PEER" hold -b 198.18.0.11 -n 3 -e "$LAB_VIP4:9600"
hold_pid=$LAB_BG_PID
t0=$(date +%s%N)
sleep 3.5
window=$(ms_since "$t0")
n=$(($(accept_lines) - before))
((n >= 1)) || { lab_lb_log; lab_fail "(a) no accept error logged in $window ms: did the worker run out of fds?"; }
# At most once a second: over W ms, at most W/1000 + 1 lines.
((n <= window / 1000 + 1)) || { lab_lb_log; lab_fail "(a) $n accept error lines in $window ms, want at most one a second"; }
lab_log "ok: (a) $n accept error lines in $window ms: $(grep 'accept: Too many open files' "$LAB_LB_LOG" | tail -n1 | sed 's/.*msg=//')"
line=$(tail -n1 "$hold_log")
[[ $line == *" 3 connected, 0 answered, 0 eof, 0 reset, 0 failed" ]] ||
	lab_fail "(a) new clients while out of fds: '$line', want 3 connected (queued), none answered, reset or closed"
lab_log "ok: (a) 3 new clients wait in the queue: $line"
grep -q '^ping: conn 0 port [0-9]*: ' "$ping_log" && { cat "$ping_log" >&2; lab_fail "(a) the established connection ended while the worker was out of fds"; }
kill -0 "$W" 2>/dev/null || lab_fail "(a) worker $W died"
lab_log "ok: (a) the established connection kept echoing"

set_limit "$NOFILE"
t0=$(date +%s%N)
lab_wait_grep "$hold_log" ' 3 answered' 1 >/dev/null ||
	{ tail -n1 "$hold_log" >&2; lab_lb_log; lab_fail "(a) the queued clients were not served within 1 s of the limit being raised"; }
lab_log "ok: (a) limit back at $NOFILE: the 3 queued clients served after $(ms_since "$t0") ms"
lab_stop "$hold_pid"
hold_log=$LAB_DIR/hold-a2.log
lab_bg "$LAB_CLI" "$hold_log" "$PEER" hold -b 198.18.0.12 -n 20 -e "$LAB_VIP4:9600"
hold_pid=$LAB_BG_PID
lab_wait_grep "$hold_log" ' 20 answered' 2 >/dev/null || { tail -n1 "$hold_log" >&2; lab_fail "(a) 20 new clients not served after recovery"; }
lab_stop "$hold_pid"
lab_log "ok: (a) 20 new clients served after recovery"

# --- (b) the upstream socket() fails ---
lim=$(free_fd "$W" 2)
lab_log "checking: (b) open-file limit of worker $W lowered to $lim (one fd free below it)"
health0=$(backend_health)
set_limit "$lim"
for i in 1 2 3 4; do
	log=$LAB_DIR/hold-b$i.log
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b 198.18.0.13 -n 1 -e "$LAB_VIP4:9600"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' 1 (reset|eof)' 2 >/dev/null ||
		{ tail -n1 "$log" >&2; lab_lb_log; lab_fail "(b) client $i neither served nor reset within 2 s: $(tail -n1 "$log")"; }
	lab_stop "$pid"
done
lab_log "ok: (b) 4 clients reset while the worker could not open upstream sockets"
grep -q '^ping: conn 0 port [0-9]*: ' "$ping_log" && { cat "$ping_log" >&2; lab_fail "(b) the established connection ended"; }
set_limit "$NOFILE"
health=$(backend_health)
log=$LAB_DIR/hold-b-after.log
lab_bg "$LAB_CLI" "$log" "$PEER" hold -b 198.18.0.13 -n 1 -e "$LAB_VIP4:9600"
pid=$LAB_BG_PID
if ! lab_wait_grep "$log" ' 1 answered' 1 >/dev/null; then
	lab_lb_log
	lab_fail "(b) with fds back, a new client is not served (backend health '$health0' before, '$health' after the EMFILEs): lb blamed the backend for its own lack of fds"
fi
lab_stop "$pid"
[[ -z $health || $health == up ]] || lab_fail "(b) the backend's health is '$health' after the worker's EMFILEs, want up"
lab_log "ok: (b) the backend stayed up and a new client is served at once"

# --- the echo connection saw it all through ---
lab_stop "$ping_pid"
line=$(grep '^ping: conn 0 port' "$ping_log" | tail -n1)
[[ $line =~ max\ gap\ ([0-9]+)\ ms,\ ok$ ]] && ((BASH_REMATCH[1] < 1000)) ||
	{ cat "$ping_log" >&2; lab_fail "the established connection was disturbed: $line"; }
lab_log "ok: the established connection echoed throughout: $line"
lab_lb_stop TERM || { lab_lb_log; lab_fail "lb did not exit 0 on SIGTERM"; }
left=$(lab_gw_leftovers) || lab_fail "lb left behind: $left"
lab_log "PASS"
