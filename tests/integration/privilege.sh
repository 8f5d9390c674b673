#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Least privilege (docs/security.md), read from /proc/PID/status: the master
# stays uid 0 with CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_NET_ADMIN and
# CAP_NET_RAW only; every worker runs as nobody:nogroup without
# supplementary groups, with CAP_NET_RAW only, no_new_privs and not
# dumpable. It still proxies transparently, a restarted worker and a new
# generation after SIGHUP (new port, one more worker: listeners and rules
# made by the reduced master) are dropped the same way, and SIGTERM still
# removes the table, the routes, the control socket and restores
# tcp_migrate_req. A non-root lb that cannot switch users says so and exits.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root pgrep getent setpriv
lab_need_lb

# CAP_KILL 5, CAP_SETGID 6, CAP_SETUID 7, CAP_NET_BIND_SERVICE 10, CAP_NET_ADMIN 12,
# CAP_NET_RAW 13.
MASTER_CAPS=00000000000034e0
WORKER_CAPS=0000000000002000
NONE=0000000000000000
W_UID=$(getent passwd nobody | cut -d: -f3) || lab_skip "no user nobody"
W_GID=$(getent group nogroup | cut -d: -f3) || lab_skip "no group nogroup"

lab_up
lab_nginx_start

# field PID NAME: the value of NAME: in /proc/PID/status, whitespace squeezed.
field() {
	awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "/proc/$1/status"
}

# expect PID WHO NAME VALUE
expect() {
	local got
	got=$(field "$1" "$3")
	[[ $got == "$4" ]] || { lab_lb_log; lab_fail "$2 (pid $1): $3 is '$got', want '$4'"; }
}

check_master() {
	local p=$1
	expect "$p" master Uid "0 0 0 0"
	expect "$p" master Gid "0 0 0 0"
	expect "$p" master CapEff "$MASTER_CAPS"
	expect "$p" master CapPrm "$MASTER_CAPS"
	expect "$p" master CapInh "$NONE"
	expect "$p" master CapBnd "$NONE"
	expect "$p" master CapAmb "$NONE"
	expect "$p" master NoNewPrivs 1
	lab_log "ok: master $p: uid 0, CapEff=CapPrm=$MASTER_CAPS, no inheritable/bounding/ambient, no_new_privs"
}

check_worker() {
	local p=$1 owner
	expect "$p" worker Uid "$W_UID $W_UID $W_UID $W_UID"
	expect "$p" worker Gid "$W_GID $W_GID $W_GID $W_GID"
	expect "$p" worker Groups ""
	expect "$p" worker CapEff "$WORKER_CAPS"
	expect "$p" worker CapPrm "$WORKER_CAPS"
	expect "$p" worker CapInh "$NONE"
	expect "$p" worker CapBnd "$NONE"
	expect "$p" worker CapAmb "$NONE"
	expect "$p" worker NoNewPrivs 1
	# Files of a process that is not dumpable belong to root (the
	# directory itself keeps the process's uid).
	owner=$(stat -c %u "/proc/$p/status")
	[[ $owner == 0 ]] || lab_fail "worker $p: /proc/$p/status owned by uid $owner: still dumpable"
	lab_log "ok: worker $p: uid $W_UID gid $W_GID, no groups, CapEff=CapPrm=$WORKER_CAPS, no_new_privs, not dumpable"
}

workers() { pgrep -P "$master" | sort -n | paste -sd " " -; }

# wait_workers N SECONDS [EXCLUDED_PID...]: until N workers run (none of
# them excluded); prints them.
wait_workers() {
	local n=$1 t=$2 i w p ok
	shift 2
	for ((i = 0; i < t * 10; i++)); do
		w=$(workers)
		ok=1
		[[ $(wc -w <<<"$w") -eq $n ]] || ok=
		for p in "$@"; do
			[[ " $w " == *" $p "* ]] && ok=
		done
		[[ -n $ok ]] && { echo "$w"; return 0; }
		sleep 0.1
	done
	echo "$w"
	return 1
}

check_all() {
	local p
	check_master "$master"
	for p in $1; do
		check_worker "$p"
	done
}

# proxies WHAT: both families, the backend sees the client's own address.
proxies() {
	local src url body
	for url in "http://$LAB_VIP4/" "http://[$LAB_VIP6]/"; do
		src=${LAB_CLI_IP4[1]}
		[[ $url == *\[* ]] && src=${LAB_CLI_IP6[1]}
		for _ in 1 2 3 4; do
			body=$(lab_curl "$src" "$url") || { lab_lb_log; lab_fail "$1: request from $src to $url failed"; }
			[[ $body == *" client=$src" ]] || lab_fail "$1: backend saw '$body', want client=$src"
		done
	done
	lab_log "ok: $1: requests over both families, backends see the client's address"
}

migrate0=$(in_gw sysctl -n net.ipv4.tcp_migrate_req)
cfg=$(lab_config)
lab_lb_start "$cfg"
master=$LAB_LB_PID
grep -q 'privileges: master keeps uid 0 with kill, setgid, setuid, net_bind_service, net_admin, net_raw' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "no log line naming the master's capabilities"; }
[[ $(in_gw sysctl -n net.ipv4.tcp_migrate_req) == 1 ]] || lab_fail "tcp_migrate_req not set"

gen1=$(wait_workers 2 5) || { lab_lb_log; lab_fail "want 2 workers, have: $gen1"; }
check_all "$gen1"
proxies "generation 1"

# A client port below 1024 cannot be bound by an unprivileged worker: the
# upstream side keeps the client's address and takes another port.
body=$(in_cli curl -gsS --max-time 5 --interface "${LAB_CLI_IP4[2]}" --local-port 900 "http://$LAB_VIP4/") ||
	{ lab_lb_log; lab_fail "a client on source port 900 is not proxied"; }
[[ $body == *" client=${LAB_CLI_IP4[2]}" ]] || lab_fail "source port 900: backend saw '$body'"
lab_log "ok: a client on source port 900 is proxied from its own address"

read -r -a w <<<"$gen1"
lab_log "checking: SIGKILL worker ${w[0]}"
kill -KILL "${w[0]}"
now=$(wait_workers 2 5 "${w[0]}") || { lab_lb_log; lab_fail "worker ${w[0]} not replaced: $now"; }
check_all "$now"
proxies "after a worker restart"

lab_log "checking: SIGHUP with 3 workers on intercept port 50081"
sed -i -e 's/"workers": 2/"workers": 3/' -e 's/"port": 50080/"port": 50081/' "$cfg"
kill -HUP "$master"
lab_wait_grep "$LAB_LB_LOG" 'reload: generation 2' 5 >/dev/null ||
	{ lab_lb_log; lab_fail "reload did not complete"; }
# shellcheck disable=SC2086 # one pid per word
gen2=$(wait_workers 3 15 $now) || { lab_lb_log; lab_fail "want 3 new workers, have: $gen2"; }
in_gw nft list table inet lb | grep -q 'tproxy.*:50081' ||
	lab_fail "rules do not point at the new port: $(in_gw nft list table inet lb)"
check_all "$gen2"
proxies "generation 2"

lab_lb_stop TERM
rc=$?
[[ $rc -eq 0 ]] || { lab_lb_log; lab_fail "lb exited $rc after SIGTERM, want 0"; }
# The one warning expected is the worker killed above.
! grep -E 'level=(error|warning)' "$LAB_LB_LOG" | grep -qv 'killed by signal 9; restarting' ||
	{ lab_lb_log; lab_fail "errors or warnings in the log"; }
! in_gw nft list table inet lb >/dev/null 2>&1 || lab_fail "table inet lb still there after exit"
[[ -z $(in_gw ip -4 rule show fwmark 1; in_gw ip -6 rule show fwmark 1) ]] ||
	lab_fail "fwmark rules left: $(in_gw ip rule; in_gw ip -6 rule)"
[[ ! -e $LAB_DIR/lb.sock ]] || lab_fail "control socket $LAB_DIR/lb.sock not removed"
[[ $(in_gw sysctl -n net.ipv4.tcp_migrate_req) == "$migrate0" ]] ||
	lab_fail "tcp_migrate_req not restored to $migrate0"
lab_log "ok: SIGTERM: exit 0; table, rules, control socket gone; tcp_migrate_req back to $migrate0"

# Not root, with the capabilities preflight wants but none to change ids,
# and told to run workers as someone else: one clear error, exit 1.
lab_log "checking: lb as nobody with ambient CAP_NET_ADMIN,CAP_NET_RAW and \"user\": \"daemon\""
mkdir -m 0777 "$LAB_DIR/nonroot"
cfg2=$(lab_config)
chmod 0644 "$cfg2"
sed -i -e "s|\"path\": \"$LAB_DIR/lb.sock\"|\"path\": \"$LAB_DIR/nonroot/lb.sock\"|" \
	-e 's|^{|{ "user": "daemon", "group": "daemon",|' "$cfg2"
log2=$LAB_DIR/nonroot.log
in_gw setpriv --reuid="$W_UID" --regid="$W_GID" --clear-groups \
	--inh-caps=+net_admin,+net_raw --ambient-caps=+net_admin,+net_raw \
	"$LB_BIN" -c "$cfg2" >"$log2" 2>&1 </dev/null &
pid2=$!
LAB_PIDS+=("$pid2")
wait "$pid2"
rc=$?
want="cannot drop privileges to daemon:daemon: lb runs as uid $W_UID gid $W_GID without CAP_SETUID and CAP_SETGID"
[[ $rc -eq 1 ]] || { sed 's/^/  | /' "$log2" >&2; lab_fail "non-root lb exited $rc, want 1"; }
grep -qF "$want" "$log2" || { sed 's/^/  | /' "$log2" >&2; lab_fail "no '$want' in its log"; }
! in_gw nft list table inet lb >/dev/null 2>&1 || lab_fail "non-root lb left its table behind"
lab_log "ok: non-root lb refused to start: $want"
lab_log "PASS"
