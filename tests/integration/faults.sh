#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Faults lb must survive, one lb for the first two and another for the rest:
#  storm:   under wrk load (keep-alive, 32 connections), a random worker is
#           SIGKILLed every 200 ms for 10 s (4 workers, one spared, see
#           below). Only connections of killed workers fail: wrk's socket
#           errors stay within what the victims held, a spared worker's
#           pinned connections never miss a round trip, fresh connections
#           all succeed (with retries), every kill is counted as a restart,
#           and afterwards the master's and the workers' fds are back to
#           baseline.
#  master:  SIGKILL of the master takes its workers down within 1 s
#           (PR_SET_PDEATHSIG); the rules it left behind are replaced by the
#           next lb, which serves again.
#  backend: a backend killed in the middle of a 1 GiB response: the client
#           sees the end within 2 s and the worker's fds are back to baseline.
#  mute:    a backend that accepts and never answers: server_idle_timeout_ms
#           (1000) closes the connection (the client sees EOF after ~1 s).
#  stuck:   a backend whose accept queue is full (backlog 1, filled, never
#           accepts): connect_timeout_ms moves clients to the other backend;
#           with no other backend the client is reset.
#  vanish:  a client that disappears (its packets dropped in its own
#           namespace, then killed): client_idle_timeout_ms reclaims its
#           connections in lb.
# Every part checks the worker's fds; the end checks that lb leaves no
# process, nft table, rule, route or listener behind.
# Run parts alone with: faults.sh [storm] [master] [backend] [mute] [stuck] [vanish]
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root wrk ss pgrep jq socat
lab_need_lb peer
parts=${*:-storm master backend mute stuck vanish}
want() { [[ " $parts " == *" $1 "* ]]; }

lab_up
lab_nginx_start

be1=198.18.2.2 be2=198.18.2.3
# One service per fault; the timeouts are the point of each.
svcs='{"name": "echo", "vips": ["198.18.100.1:9400"], "backends": [{"address": "198.18.2.2:9400"}],
		"client_idle_timeout_ms": 1500, "server_idle_timeout_ms": 60000},
	{"name": "big", "vips": ["198.18.100.1:9401"], "backends": [{"address": "198.18.2.2:9401"}]},
	{"name": "mute", "vips": ["198.18.100.1:9402"], "backends": [{"address": "198.18.2.2:9402"}],
		"server_idle_timeout_ms": 1000, "client_idle_timeout_ms": 60000},
	{"name": "stuck", "vips": ["198.18.100.1:9403"], "connect_timeout_ms": 500, "retries": 1,
		"backends": [{"address": "198.18.2.2:9403"}, {"address": "198.18.2.3:9403"}]},
	{"name": "stuckonly", "vips": ["198.18.100.1:9404"], "connect_timeout_ms": 500,
		"backends": [{"address": "198.18.2.2:9403"}]}'
cfg4=$(lab_config "$svcs")
sed -i 's/"workers": 2/"workers": 4/' "$cfg4"
cfg1=$(lab_config "$svcs")
sed -i 's/"workers": 2/"workers": 1/' "$cfg1"
grep -q '"workers": 4' "$cfg4" && grep -q '"workers": 1' "$cfg1" || lab_fail "could not set workers"

echo_log=$LAB_DIR/echo.log
lab_peer_start "$LAB_BE" "$echo_log" echo -v "$be1:9400" "$be2:9403"
lab_peer_start "$LAB_BE" "$LAB_DIR/mute.log" sink -v "$be1:9402"
lab_peer_start "$LAB_BE" "$LAB_DIR/stuck.log" sink -A -l 1 "$be1:9403"

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
status() { lab_ctl_call '{"cmd": "status"}'; }
# running_workers: "PID ACTIVE" of each running worker, from the control socket.
running_workers() {
	status | jq -r '.data.workers[] | select(.state == "running") | "\(.pid) \(.active)"'
}
# wait_running N SECONDS: until N workers run.
wait_running() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		[[ $(running_workers | wc -l) -eq $1 ]] && return 0
		sleep 0.1
	done
	return 1
}
# fds_idle PID BASE_SOCKETS BASE_OTHER SECONDS: until PID holds exactly its
# idle sockets and other fds, and no more pipes than the pool keeps (32
# idle pipes, 64 fds; the pool is sized from the open-file limit, 128 pipes
# of which a quarter are kept). Prints the last "TOTAL SOCKETS PIPES OTHER".
fds_idle() {
	local i t s p o
	for ((i = 0; i <= $4 * 10; i++)); do
		read -r t s p o < <(lab_fd_counts "$1") || { echo "gone"; return 1; }
		((s == $2 && o == $3 && p <= 64)) && { echo "$t $s $p $o"; return 0; }
		sleep 0.1
	done
	echo "$t $s $p $o"
	return 1
}
# The single worker of the lb started with cfg1, and its idle fd counts.
worker1() {
	wait_running 1 5 || { lab_lb_log; lab_fail "no running worker"; }
	W=$(running_workers | awk '{ print $1 }')
	read -r _ W_SOCK W_PIPE W_OTHER < <(lab_fd_counts "$W")
	lab_log "worker $W idle: $W_SOCK sockets, $W_PIPE pipes, $W_OTHER other fds"
}
# check_fds WHAT: the worker of cfg1 is back to its idle fds within 3 s.
check_fds() {
	local got
	got=$(fds_idle "$W" "$W_SOCK" "$W_OTHER" 3) ||
		{ ls -l "/proc/$W/fd" >&2; lab_lb_log; lab_fail "$1: worker $W fds (total sockets pipes other) $got, want $W_SOCK sockets and $W_OTHER other"; }
	lab_log "ok: $1: worker $W fds back to idle ($got)"
}
start_lb1() {
	lab_lb_start "$cfg1"
	worker1
}

# ---------------------------------------------------------------------------
storm() {
	local master w pid a i kills=0 sum_active=0 ticks=50 t0 next victim
	local -a cand
	local -A killed=() pin_of=() per=()
	lab_log "checking: storm: SIGKILL a worker every 200 ms for 10 s under load"
	lab_lb_start "$cfg4"
	master=$LAB_LB_PID
	wait_running 4 5 || { lab_lb_log; lab_fail "storm: 4 workers did not start"; }
	read -r m_total _ < <(lab_fd_counts "$master")
	read -r pid _ < <(running_workers | head -n1)
	read -r _ b_sock _ b_other < <(lab_fd_counts "$pid")
	lab_log "idle: master $master has $m_total fds; worker $pid has $b_sock sockets, $b_other other fds"

	# Pinned connections: 64 echo connections doing a round trip every 50
	# ms. The gateway's socket table says which worker holds each, so the
	# test knows which must survive. One worker (the one with the most of
	# them) is spared from the kills: its connections must see every round
	# trip answered with no gap over 1 s, which is the proof that killing
	# one worker leaves connections of the others alone (a kill storm over
	# all workers would, within 50 kills, end every connection and prove
	# nothing). Pinned connections on the other workers must end once
	# their worker is killed, and only then.
	local ping_log=$LAB_DIR/ping.log
	lab_bg "$LAB_CLI" "$ping_log" "$PEER" ping -b 198.18.0.12 -n 64 -i 50 -T 3000 -t 60 "$LAB_VIP4:9400"
	local ping_pid=$LAB_BG_PID
	lab_wait_grep "$ping_log" '^ping: ready' 5 >/dev/null || { cat "$ping_log" >&2; lab_lb_log; lab_fail "storm: pinned connections not ready"; }
	# (ss -p scans every process on the host and takes seconds; the socket
	# inodes in the workers' /proc/PID/fd are enough.)
	local -A owner=()
	while read -r pid _; do
		while read -r a; do
			owner[$a]=$pid
		done < <(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
			sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p')
	done < <(running_workers)
	in_gw ss -Htne state established "( sport = :9400 )" >"$LAB_DIR/pinned.ss" 2>/dev/null
	while read -r port a; do
		[[ -n ${owner[$a]:-} ]] && pin_of[$port]=${owner[$a]}
	done < <(sed -nE 's/.* 198\.18\.0\.12:([0-9]+) .*ino:([0-9]+) .*/\1 \2/p' "$LAB_DIR/pinned.ss")
	local port
	while read -r _ _ _ _ port; do
		pid=${pin_of[$port]:-}
		[[ -n $pid ]] || lab_fail "storm: no worker holds the pinned connection from port $port"
		per[$pid]=$((${per[$pid]:-0} + 1))
	done < <(grep -E '^ping: conn [0-9]+ port [0-9]+$' "$ping_log")
	local spared='' best=0
	for pid in "${!per[@]}"; do
		((per[$pid] > best)) && best=${per[$pid]} spared=$pid
	done
	((best >= 4 && best < 64)) || lab_fail "storm: pinned connections per worker: $(for p in "${!per[@]}"; do printf '%s:%s ' "$p" "${per[$p]}"; done)"
	lab_log "pinned: $(for p in "${!per[@]}"; do printf '%s:%s ' "$p" "${per[$p]}"; done)(worker $spared is spared)"

	# Load: wrk on keep-alive connections (each lives on one worker), and a
	# loop of fresh connections, each request retried up to 5 times: a
	# fresh connection dies only if its worker is killed during its few
	# milliseconds, so every request must get through.
	local wrk_log=$LAB_DIR/wrk.log fresh_log=$LAB_DIR/fresh.log
	lab_bg "$LAB_CLI" "$wrk_log" wrk -t 2 -c 32 -d 12s --timeout 5s "http://$LAB_VIP4/"
	local wrk_pid=$LAB_BG_PID
	# shellcheck disable=SC2016 # expanded by the inner shell
	lab_bg "$LAB_CLI" "$fresh_log" bash -c 'end=$((SECONDS + 11)) n=0
		while ((SECONDS < end)); do
			for a in 1 2 3 4 5; do
				if curl -sS --fail --max-time 3 --interface 198.18.0.11 -o /dev/null "http://$1/" 2>>"$2"; then
					echo "ok $n $a"; break
				fi
				[[ $a == 5 ]] && echo "FAIL $n"
			done
			n=$((n + 1))
		done' _ "$LAB_VIP4" "$LAB_DIR/fresh.err"
	local fresh_pid=$LAB_BG_PID
	sleep 0.5

	t0=$(date +%s%N)
	for ((i = 0; i < ticks; i++)); do
		next=$((t0 + (i + 1) * 200000000))
		cand=()
		while read -r pid _; do
			[[ $pid == "$spared" || -n ${killed[$pid]:-} ]] || cand+=("$pid")
		done < <(running_workers)
		if ((${#cand[@]})); then
			victim=${cand[RANDOM % ${#cand[@]}]}
			# Stopped first, so what it holds (its active count in shared
			# memory) cannot change between reading it and the kill.
			kill -STOP "$victim" 2>/dev/null || continue
			for ((a = 0; a < 100; a++)); do
				[[ $(awk '{ print $3 }' "/proc/$victim/stat" 2>/dev/null) == T ]] && break
				sleep 0.001
			done
			a=$(status | jq -r --argjson p "$victim" '.data.workers[] | select(.pid == $p) | .active')
			kill -KILL "$victim"
			[[ $a =~ ^[0-9]+$ ]] || lab_fail "storm: no active count for worker $victim from the control socket: '$a'"
			echo "$(ms_since "$t0") $victim $a" >>"$LAB_DIR/kills.log"
			killed[$victim]=1
			kills=$((kills + 1))
			sum_active=$((sum_active + ${a:-0}))
		fi
		a=$(((next - $(date +%s%N)) / 1000000))
		((a > 0)) && sleep "$(printf '0.%03d' "$a")"
	done
	lab_log "storm: $kills kills in $(ms_since "$t0") ms; the victims held $sum_active connections"
	# Every slot restarts 1 s after a kill when its worker was younger than
	# 1 s, so with 3 slots in play about 3 kills a second are possible.
	((kills >= 15)) || lab_fail "storm: only $kills kills"
	((sum_active > 0)) || lab_fail "storm: the victims held no connections: the storm proved nothing"

	wait "$wrk_pid"
	wait "$fresh_pid"
	lab_stop "$ping_pid"
	grep -q '^ping: 64 conns:' "$ping_log" || { tail "$ping_log" >&2; lab_fail "storm: no summary from the pinned connections"; }
	kill -0 "$master" 2>/dev/null || { lab_lb_log; lab_fail "storm: master died"; }
	kill -0 "$spared" 2>/dev/null || lab_fail "storm: the spared worker $spared died"

	# wrk: "N requests in", "Socket errors: connect C, read R, write W, timeout T".
	local reqs errs
	reqs=$(awk '/requests in/ { print $1 }' "$wrk_log")
	errs=$(sed -nE 's/.*Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+).*/\1 \2 \3 \4/p' "$wrk_log" |
		awk '{ print $1 + $2 + $3 + $4 }')
	errs=${errs:-0}
	[[ -n $reqs ]] || { cat "$wrk_log" >&2; lab_fail "storm: no wrk result"; }
	! grep -q 'Non-2xx' "$wrk_log" || { cat "$wrk_log" >&2; lab_fail "storm: wrk saw non-2xx answers"; }
	# Pinned connections: the spared worker's are all ok; every other one
	# ended, and its worker was killed.
	local end spared_ok=0 ended=0 line
	while read -r line; do
		[[ $line =~ ^ping:\ conn\ ([0-9]+)\ port\ ([0-9]+):\ ([0-9]+)\ round\ trips,\ max\ gap\ ([0-9]+)\ ms,\ (.*)$ ]] || continue
		port=${BASH_REMATCH[2]} a=${BASH_REMATCH[4]} end=${BASH_REMATCH[5]}
		pid=${pin_of[$port]}
		if [[ $pid == "$spared" ]]; then
			[[ $end == ok && $a -lt 1000 ]] || lab_fail "storm: pinned connection $line of the spared worker $spared was disturbed"
			spared_ok=$((spared_ok + 1))
		elif [[ $end == ok ]]; then
			[[ -z ${killed[$pid]:-} ]] || lab_fail "storm: pinned connection of killed worker $pid still alive: $line"
		else
			[[ -n ${killed[$pid]:-} ]] || lab_fail "storm: pinned connection of worker $pid, never killed, failed: $line"
			ended=$((ended + 1))
		fi
	done < <(grep -E '^ping: conn [0-9]+ port [0-9]+: ' "$ping_log")
	((spared_ok == best)) || lab_fail "storm: $spared_ok of the spared worker's $best pinned connections reported ok"
	lab_log "ok: storm: all $best pinned connections of the spared worker kept answering (max gap < 1 s); $ended of killed workers ended"

	# A victim's connections fail once each (wrk then reconnects), and
	# connections waiting in its listener's queue are kept for its
	# successor, so the errors are bounded by what the victims held when
	# killed (all their connections, pinned and fresh ones included).
	# The victims' pinned connections are in that count but not wrk's.
	((errs <= sum_active - ended)) ||
		{ cat "$wrk_log" >&2; lab_fail "storm: wrk saw $errs socket errors, more than the $((sum_active - ended)) connections besides pinned ones the $kills victims held"; }
	lab_log "ok: storm: wrk: $reqs requests, $errs socket errors (bound: $((sum_active - ended)) held by the victims besides pinned ones)"

	local fails fresh_n retried
	fails=$(grep -c '^FAIL' "$fresh_log")
	fresh_n=$(grep -c '^ok' "$fresh_log")
	retried=$(awk '$1 == "ok" && $3 > 1' "$fresh_log" | wc -l)
	((fails == 0)) || { tail "$LAB_DIR/fresh.err" >&2; lab_fail "storm: $fails fresh requests failed 5 times in a row"; }
	((fresh_n >= 20)) || lab_fail "storm: only $fresh_n fresh requests in 11 s"
	lab_log "ok: storm: $fresh_n fresh requests all succeeded ($retried needed a retry)"

	# Restarts: one per kill, counted by the master, each with a new pid.
	wait_running 4 5 || { lab_lb_log; lab_fail "storm: 4 workers not running again after the storm"; }
	local restarts logged pids
	restarts=$(status | jq '[.data.workers[].restarts] | add')
	logged=$(grep -c 'killed by signal 9; restarting' "$LAB_LB_LOG")
	pids=$(sed -nE 's/.*worker [0-9]+ of generation [0-9]+ started: pid ([0-9]+).*/\1/p' "$LAB_LB_LOG" | sort -u | wc -l)
	((restarts >= kills && logged == kills && pids == 4 + kills)) ||
		lab_fail "storm: $kills kills but restarts $restarts (status), $logged 'restarting' lines, $pids distinct worker pids (want $((4 + kills)))"
	lab_log "ok: storm: $restarts restarts in status, $logged in the log, $pids distinct worker pids"
	local zombies
	zombies=$(pgrep -c -r Z -P "$master")
	((zombies == 0)) || lab_fail "storm: $zombies zombie workers"

	# fds: the master lost nothing to 2 x kills socketpairs; every worker
	# (the spared one carried load the whole time) is idle again.
	local got
	read -r got _ < <(lab_fd_counts "$master")
	((got == m_total)) || { ls -l "/proc/$master/fd" >&2; lab_fail "storm: master has $got fds, had $m_total"; }
	while read -r pid _; do
		got=$(fds_idle "$pid" "$b_sock" "$b_other" 5) ||
			{ ls -l "/proc/$pid/fd" >&2; lab_fail "storm: worker $pid fds (total sockets pipes other) $got, want $b_sock sockets, $b_other other"; }
	done < <(running_workers)
	lab_log "ok: storm: master back to $m_total fds, every worker back to $b_sock sockets and $b_other other fds"
	lab_curl 198.18.0.13 "http://$LAB_VIP4/" >/dev/null || lab_fail "storm: lb does not answer after the storm"
}

# ---------------------------------------------------------------------------
master_kill() {
	local master pids i t0 ms
	lab_log "checking: master: SIGKILL of the master"
	[[ -n $LAB_LB_PID ]] || lab_lb_start "$cfg4"
	master=$LAB_LB_PID
	wait_running 4 5 || lab_fail "master: 4 workers not running"
	pids=$(running_workers | awk '{ print $1 }' | paste -sd ' ')
	t0=$(date +%s%N)
	disown "$master" # no "Killed" notice from bash
	kill -KILL "$master"
	for ((i = 0; i < 100; i++)); do
		[[ -z $(ip netns pids "$LAB_GW") ]] && break
		sleep 0.01
	done
	ms=$(ms_since "$t0")
	[[ -z $(ip netns pids "$LAB_GW") ]] || lab_fail "master: processes left in the gateway 1 s after SIGKILL of the master: $(ip netns pids "$LAB_GW" | paste -sd ' ') (workers were $pids)"
	LAB_LB_PID=
	lab_log "ok: master: its workers ($pids) exited within $ms ms"
	in_gw nft list table inet lb >/dev/null 2>&1 ||
		lab_fail "master: no table inet lb left behind: the test proves nothing"
	lab_log "master: left behind: $(lab_gw_leftovers | cut -d: -f1 | sort | uniq -c | paste -sd ',')"

	start_lb1
	local tables rules4 rules6
	tables=$(in_gw nft list tables | grep -c .)
	rules4=$(in_gw ip -4 rule show | grep -c fwmark)
	rules6=$(in_gw ip -6 rule show | grep -c fwmark)
	((tables == 1 && rules4 == 1 && rules6 == 1)) ||
		lab_fail "master: after restart: $tables nft tables, $rules4 + $rules6 fwmark rules, want 1 and 1 + 1: $(in_gw nft list tables; in_gw ip rule; in_gw ip -6 rule)"
	lab_curl 198.18.0.13 "http://$LAB_VIP4/" >/dev/null || { lab_lb_log; lab_fail "master: the new lb does not answer on IPv4"; }
	lab_curl 2001:db8::13 "http://[$LAB_VIP6]/" >/dev/null || { lab_lb_log; lab_fail "master: the new lb does not answer on IPv6"; }
	lab_log "ok: master: a new lb replaced the rules (1 table, 1 rule per family) and serves"
}

# ---------------------------------------------------------------------------
backend_kill() {
	local srv_pid cpid log=$LAB_DIR/big.log t0 ms rc i
	lab_log "checking: backend: a backend killed in the middle of a 1 GiB response"
	[[ -n $LAB_LB_PID ]] || start_lb1
	lab_peer_start "$LAB_BE" "$LAB_DIR/serve.log" serve "$be1:9401"
	srv_pid=$LAB_BG_PID
	# Read at 100 MB/s so the 1 GiB takes ~10 s and the kill lands mid-way.
	lab_bg "$LAB_CLI" "$log" "$PEER" client -b 198.18.0.13 -u 0 -d 1G -r 100M -P -t 30 "$LAB_VIP4:9401"
	cpid=$LAB_BG_PID
	lab_wait_grep "$log" 'progress: .* down [0-9]{8,} bytes' 5 >/dev/null ||
		{ cat "$log" >&2; lab_lb_log; lab_fail "backend: the download did not get going"; }
	read -r _ i _ < <(lab_fd_counts "$W")
	((i == W_SOCK + 2)) || lab_fail "backend: worker holds $i sockets during the download, want $((W_SOCK + 2))"
	t0=$(date +%s%N)
	disown "$srv_pid"
	kill -KILL "$srv_pid"
	for ((i = 0; i < 50; i++)); do
		kill -0 "$cpid" 2>/dev/null || break
		sleep 0.05
	done
	ms=$(ms_since "$t0")
	kill -0 "$cpid" 2>/dev/null && { tail -n3 "$log" >&2; lab_lb_log; lab_fail "backend: client still running 2.5 s after the backend was killed"; }
	wait "$cpid"
	rc=$?
	[[ $rc == 1 ]] && grep -Eq 'short download|reset by peer' "$log" ||
		{ cat "$log" >&2; lab_fail "backend: client exited $rc, want 1 with a short download or a reset"; }
	((ms <= 2000)) || lab_fail "backend: the client saw the end after $ms ms, want <= 2000"
	lab_log "ok: backend: client saw '$(grep -Eo 'short download.*|read: .*' "$log" | head -n1)' $ms ms after the kill"
	check_fds backend
}

# ---------------------------------------------------------------------------
mute() {
	local log=$LAB_DIR/hold-mute.log pid t0 ms
	lab_log "checking: mute: a backend that never answers, server_idle_timeout_ms 1000"
	[[ -n $LAB_LB_PID ]] || start_lb1
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b 198.18.0.13 -n 1 -e "$LAB_VIP4:9402"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' 1 connected' 2 >/dev/null || { cat "$log" >&2; lab_fail "mute: not connected"; }
	t0=$(date +%s%N)
	lab_wait_grep "$log" ' 1 eof' 3 >/dev/null || { cat "$log" >&2; lab_lb_log; lab_fail "mute: the client saw no close within 3 s"; }
	ms=$(ms_since "$t0")
	lab_stop "$pid"
	((ms >= 800 && ms <= 2000)) || lab_fail "mute: closed after $ms ms, want about 1000 (the server idle timeout)"
	grep -Eq 'sink: 198\.18\.0\.13:[0-9]+: eof' "$LAB_DIR/mute.log" ||
		lab_fail "mute: the backend did not see its connection closed"
	lab_log "ok: mute: lb closed both sides $ms ms after the client's byte (server_idle_timeout_ms 1000)"
	check_fds mute
}

# ---------------------------------------------------------------------------
stuck() {
	local fill_log=$LAB_DIR/fill.log fill_pid log t0 ms i slow=0 fast=0 pid
	lab_log "checking: stuck: a backend with a full accept queue, connect_timeout_ms 500"
	[[ -n $LAB_LB_PID ]] || start_lb1
	# Backlog 1 holds two finished handshakes, made one at a time (-p 1) so
	# none is left half-open; after that the kernel drops SYNs.
	lab_bg "$LAB_BE" "$fill_log" "$PEER" hold -n 2 -p 1 "$be1:9403"
	fill_pid=$LAB_BG_PID
	lab_wait_grep "$fill_log" ' 2 connected' 3 >/dev/null || { cat "$fill_log" >&2; lab_fail "stuck: could not fill the accept queue"; }
	i=$(in_be ss -Hltn "( sport = :9403 )" | awk -v a="$be1:9403" '$4 == a { print $2 }')
	[[ $i == 2 ]] || lab_fail "stuck: accept queue of $be1:9403 holds '$i', want 2"

	# Alone: the client is reset after one connect timeout.
	log=$LAB_DIR/hold-stuckonly.log
	t0=$(date +%s%N)
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b 198.18.0.13 -n 1 -e "$LAB_VIP4:9404"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' (1 reset|1 eof)' 3 >/dev/null || { cat "$log" >&2; lab_lb_log; lab_fail "stuck: a client of the stuck backend alone was not reset within 3 s"; }
	ms=$(ms_since "$t0")
	lab_stop "$pid"
	((ms >= 400 && ms <= 1500)) || lab_fail "stuck: the client was reset after $ms ms, want about 500 (one connect timeout)"
	lab_log "ok: stuck: with no other backend the client is reset after $ms ms ($(tail -n1 "$log"))"
	check_fds stuckonly

	# With a live second backend: every client is served, some after one
	# connect timeout (round robin sends every second one to the stuck
	# backend, until passive checks take it down after 3 timeouts).
	for ((i = 0; i < 8; i++)); do
		log=$LAB_DIR/hold-stuck$i.log
		t0=$(date +%s%N)
		lab_bg "$LAB_CLI" "$log" "$PEER" hold -b 198.18.0.13 -n 1 -e "$LAB_VIP4:9403"
		pid=$LAB_BG_PID
		lab_wait_grep "$log" ' 1 answered' 3 >/dev/null ||
			{ cat "$log" >&2; lab_lb_log; lab_fail "stuck: client $i not served within 3 s although $be2 is alive"; }
		ms=$(ms_since "$t0")
		lab_stop "$pid"
		if ((ms < 400)); then fast=$((fast + 1))
		elif ((ms < 1400)); then slow=$((slow + 1))
		else lab_fail "stuck: client $i took $ms ms"; fi
	done
	((slow > 0)) || lab_fail "stuck: no client tried the stuck backend: the test proved nothing"
	lab_log "ok: stuck: 8 clients served by $be2: $fast directly, $slow after one connect timeout"
	lab_stop "$fill_pid"
	check_fds stuck
}

# ---------------------------------------------------------------------------
vanish() {
	local log=$LAB_DIR/hold-vanish.log pid t0 ms eofs i s
	lab_log "checking: vanish: 4 clients vanish, client_idle_timeout_ms 1500"
	[[ -n $LAB_LB_PID ]] || start_lb1
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b 198.18.0.13 -n 4 -e "$LAB_VIP4:9400"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' 4 answered' 3 >/dev/null || { cat "$log" >&2; lab_fail "vanish: 4 connections not relayed"; }
	read -r _ s _ < <(lab_fd_counts "$W")
	((s == W_SOCK + 8)) || lab_fail "vanish: worker holds $s sockets, want $((W_SOCK + 8))"
	eofs=$(grep -c ' 198\.18\.0\.13:[0-9]*: eof' "$echo_log")
	# The client's packets vanish in its own namespace, then the client
	# dies: lb hears neither its FIN nor a reset.
	in_cli nft -f - <<-'EOF' || lab_fail "vanish: cannot install the drop rules in the client namespace"
		table inet vanish {
			chain out { type filter hook output priority filter; ip saddr 198.18.0.13 tcp dport 9400 drop; }
			chain in { type filter hook input priority filter; ip daddr 198.18.0.13 tcp sport 9400 drop; }
		}
	EOF
	t0=$(date +%s%N)
	disown "$pid"
	kill -KILL "$pid"
	for ((i = 0; i < 40; i++)); do
		read -r _ s _ < <(lab_fd_counts "$W")
		((s == W_SOCK)) && break
		sleep 0.1
	done
	ms=$(ms_since "$t0")
	((s == W_SOCK)) || { lab_lb_log; lab_fail "vanish: worker still holds $((s - W_SOCK)) sockets 4 s after the client vanished"; }
	((ms >= 500)) || lab_fail "vanish: connections ended $ms ms after the client vanished: before the idle timeout, so something leaked through"
	for ((i = 0; i < 20; i++)); do
		(($(grep -c ' 198\.18\.0\.13:[0-9]*: eof' "$echo_log") - eofs >= 4)) && break
		sleep 0.1
	done
	(($(grep -c ' 198\.18\.0\.13:[0-9]*: eof' "$echo_log") - eofs == 4)) ||
		lab_fail "vanish: the backend did not see the 4 connections closed"
	in_cli nft delete table inet vanish
	lab_log "ok: vanish: lb reclaimed the 4 connections $ms ms after the client vanished and closed the backend side"
	check_fds vanish
}

want storm && storm
want master && master_kill
want backend && backend_kill
want mute && mute
want stuck && stuck
want vanish && vanish

if [[ -n $LAB_LB_PID ]]; then
	lab_lb_stop TERM
	rc=$?
	[[ $rc == 0 ]] || { lab_lb_log; lab_fail "lb exited $rc on SIGTERM, want 0"; }
fi
left=$(lab_gw_leftovers) || lab_fail "lb left behind: $left"
lab_log "ok: lb left no process, nft table, rule, route or listener behind"
lab_log "PASS"
