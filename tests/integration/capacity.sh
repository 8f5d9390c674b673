#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Connection capacity of one worker ("workers": 1):
#  (a) lb with an open-file limit of 20,000 (capacity (20000 - 2*128 - 64) / 2
#      = 9840) gets 15,000 idle connections from three client processes on
#      three source addresses (5,000 each; a process has at most 20,000 fds).
#      Each sends one byte the backend echoes, so "answered" means relayed end
#      to end. Exactly 9840 are answered, the other 5160 wait in the kernel's
#      listen queue (the gateway's somaxconn is raised so they all fit) and
#      none is reset or closed; the worker does not crash (same pid). Closing
#      holders lets the waiting ones in, and lb answers HTTP afterwards.
#  (b) with an open-file limit of 800 the capacity is (800 - 320) / 2 = 240:
#      240 held connections fill it; a 241st is accepted by the kernel but not
#      served (no echo, no reset, no close; it sits in the listen queue) until
#      one held connection closes, then it is served at once; the 239 others
#      are undisturbed.
#  (c) same capacity, 200 held: a burst of 400 connections to a service whose
#      backend has no route from the gateway (connect() fails at once, each is
#      reset inside the accept loop) must not crash the worker: slots of
#      connections that ended in the batch are not on the free list yet.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root prlimit pgrep ss
lab_need_lb peer
lab_up
lab_nginx_start

cfg=$(lab_config '{"name": "hold", "vips": ["198.18.100.1:9100"], "backends": [{"address": "198.18.2.2:9100"}]},
		{"name": "nowhere", "vips": ["198.18.100.1:9101"], "backends": [{"address": "198.18.5.5:9101"}]}')
sed -i 's/"workers": 2/"workers": 1/' "$cfg"
grep -q '"workers": 1' "$cfg" || lab_fail "could not set workers to 1 in $cfg"
prlimit --nofile=20000:20000 true 2>/dev/null || lab_skip "cannot set an open-file limit of 20000"
# The 5160 connections above capacity must fit the listen queue.
in_gw sysctl -qw net.core.somaxconn=16384 || lab_fail "cannot raise somaxconn in the gateway namespace"
echo_log=$LAB_DIR/echo.log
lab_bg "$LAB_BE" "$echo_log" prlimit --nofile=20000:20000 "$PEER" echo 198.18.2.2:9100
lab_wait_port "$LAB_BE" 198.18.2.2 9100 || { cat "$echo_log" >&2; lab_fail "peer echo did not listen"; }


# lb_start NOFILE: lb with its open-file limit set to NOFILE.
lb_start() { lab_lb_start_nofile "$1" "$cfg"; }
worker_pid() { pgrep -P "$LAB_LB_PID"; }
http_ok() { # WHAT
	local body
	if ! body=$(lab_curl 198.18.0.13 "http://$LAB_VIP4/") || [[ $body != backend=* ]]; then
		lab_lb_log
		lab_fail "$1: HTTP request through lb failed"
	fi
	lab_log "ok: $1: lb answers HTTP ($body)"
}
# hold NAME SRC N: start a holder; sets HOLD_PID, HOLD_LOG.
hold() {
	HOLD_LOG=$LAB_DIR/hold-$1.log
	lab_bg "$LAB_CLI" "$HOLD_LOG" "$PEER" hold -b "$2" -n "$3" -e "$LAB_VIP4:9100"
	HOLD_PID=$LAB_BG_PID
}
last_status() { tail -n1 "$1"; }
# field LOG NAME: the number before NAME ("connected", "answered", ...) in the
# holder's last status line.
field() {
	local v
	v=$(last_status "$1" 2>/dev/null | grep -o "[0-9]* $2" | cut -d' ' -f1)
	echo "${v:-0}"
}
# totals LOG...: "connected answered eof reset failed", summed.
totals() {
	local l c=0 a=0 e=0 r=0 f=0
	for l in "$@"; do
		c=$((c + $(field "$l" connected))) a=$((a + $(field "$l" answered)))
		e=$((e + $(field "$l" eof))) r=$((r + $(field "$l" reset))) f=$((f + $(field "$l" failed)))
	done
	echo "$c $a $e $r $f"
}
# wait_totals SECONDS WANT LOG...: until totals LOG... prints WANT.
wait_totals() {
	local end=$((SECONDS + $1)) want=$2
	shift 2
	while ((SECONDS < end)); do
		[[ $(totals "$@") == "$want" ]] && return 0
		sleep 0.2
	done
	[[ $(totals "$@") == "$want" ]]
}

# ---- (a) 15,000 connections on one worker of capacity 9840 ----
lb_start 20000
grep -q 'capacity 9840 connections' "$LAB_LB_LOG" || { lab_lb_log; lab_fail "(a) worker capacity is not 9840"; }
w0=$(worker_pid)
lab_log "checking: (a) 15000 idle connections to one worker (pid $w0, capacity 9840)"
pids=() logs=()
for i in 0 1 2; do
	hold "a$i" "${LAB_CLI_IP4[i]}" 5000
	pids+=("$HOLD_PID") logs+=("$HOLD_LOG")
done
# "connected answered eof reset failed"
if ! wait_totals 40 "15000 9840 0 0 0" "${logs[@]}"; then
	kill -0 "$LAB_LB_PID" 2>/dev/null || lab_log "lb master is gone"
	lab_lb_log
	lab_fail "(a) after 40 s: connected/answered/eof/reset/failed = $(totals "${logs[@]}"), want 15000 9840 0 0 0"
fi
lab_log "ok: (a) 15000 connected, 9840 (the capacity) relayed and echoed, 5160 waiting, none reset or closed"
n=$(in_be ss -Htn state established '( sport = :9100 )' | wc -l)
((n == 9840)) || lab_fail "(a) backend holds $n connections, want 9840"
lab_log "ok: (a) the backend holds 9840 established connections"
q=$(in_gw ss -Hltn 'sport = :50080' | awk '$4 ~ /^127\.0\.0\.1:/ { print $2 }')
((q == 5160)) || lab_fail "(a) lb's listen queue holds '$q', want 5160"
lab_log "ok: (a) lb's listen queue holds the other $q"
sleep 1
[[ $(totals "${logs[@]}") == "15000 9840 0 0 0" ]] || lab_fail "(a) counts moved: $(totals "${logs[@]}")"
[[ $(worker_pid) == "$w0" ]] || { lab_lb_log; lab_fail "(a) worker $w0 was replaced by $(worker_pid)"; }
lab_log "ok: (a) worker $w0 alive and not restarted, counts stable"

lab_log "checking: (a) closing 5000 lets 5000 waiting ones in"
lab_stop "${pids[0]}"
wait_totals 20 "10000 9840 0 0 0" "${logs[@]:1}" ||
	{ lab_lb_log; lab_fail "(a) after closing 5000: $(totals "${logs[@]:1}"), want 10000 9840 0 0 0"; }
lab_log "ok: (a) the worker is full again: 9840 of the remaining 10000 relayed"
lab_stop "${pids[1]}"
wait_totals 20 "5000 5000 0 0 0" "${logs[2]}" ||
	{ lab_lb_log; lab_fail "(a) after closing 10000: $(totals "${logs[2]}"), want 5000 5000 0 0 0"; }
lab_log "ok: (a) with 5000 left, all of them relayed"
[[ $(worker_pid) == "$w0" ]] || { lab_lb_log; lab_fail "(a) worker $w0 died"; }
http_ok "(a) with 5000 held"
lab_stop "${pids[2]}"
for ((i = 0; i < 100; i++)); do
	n=$(in_be ss -Htn '( sport = :9100 )' | wc -l)
	((n == 0)) && break
	sleep 0.1
done
((n == 0)) || lab_fail "(a) $n backend connections left 10 s after the clients closed"
lab_log "ok: (a) all closed on both sides"
[[ $(worker_pid) == "$w0" ]] || { lab_lb_log; lab_fail "(a) worker $w0 died after the connections closed"; }
http_ok "(a) after all closed"
lab_lb_stop TERM || { lab_lb_log; lab_fail "(a) lb did not exit 0 on SIGTERM"; }

# ---- (b) at capacity, the next connection waits in the kernel queue ----
lb_start 800
grep -q 'capacity 240 connections' "$LAB_LB_LOG" || { lab_lb_log; lab_fail "(b) worker capacity is not 240"; }
lab_log "checking: (b) capacity 240: fill it with 239 + 1 held connections"
hold many 198.18.0.10 239
many_pid=$HOLD_PID many_log=$HOLD_LOG
hold one 198.18.0.11 1
one_pid=$HOLD_PID one_log=$HOLD_LOG
wait_totals 10 "240 240 0 0 0" "$many_log" "$one_log" ||
	{ lab_lb_log; lab_fail "(b) 240 connections not relayed: $(totals "$many_log" "$one_log")"; }
lab_log "ok: (b) 240 connections relayed"

lab_log "checking: (b) connection 241 is accepted by the kernel but not served, and not reset"
hold extra 198.18.0.12 1
extra_pid=$HOLD_PID extra_log=$HOLD_LOG
sleep 2
st=$(last_status "$extra_log")
[[ $st == *" 1 connected, 0 answered, 0 eof, 0 reset, 0 failed" ]] ||
	{ lab_lb_log; lab_fail "(b) connection 241 after 2 s: '$st', want connected but unanswered"; }
q=$(in_gw ss -Hltn 'sport = :50080' | awk '$4 ~ /^127\.0\.0\.1:/ { print $2 }')
((q >= 1)) || lab_fail "(b) lb's listen queue holds '$q' connections, want 1"
lab_log "ok: (b) connection 241: '$st'; lb's listen queue holds $q"

lab_log "checking: (b) closing one held connection lets connection 241 in"
lab_stop "$one_pid"
if ! st=$(lab_wait_grep "$extra_log" ' 1 answered' 3); then
	lab_lb_log
	lab_fail "(b) connection 241 not served within 3 s of a slot freeing: $(last_status "$extra_log")"
fi
lab_log "ok: (b) connection 241 served: $st"
st=$(last_status "$many_log")
[[ $st == *" 239 answered, 0 eof, 0 reset, 0 failed" ]] || lab_fail "(b) the other held connections were disturbed: $st"
lab_log "ok: (b) the 239 others undisturbed"
lab_stop "$extra_pid"
lab_stop "$many_pid"
kill -0 "$LAB_LB_PID" 2>/dev/null || lab_fail "(b) lb died"

# ---- (c) a burst of connections that fail at once, near capacity ----
w0=$(worker_pid)
lab_log "checking: (c) 200 held, then 400 connections that are reset at once (no route to their backend)"
hold base 198.18.0.10 200
base_pid=$HOLD_PID base_log=$HOLD_LOG
wait_totals 10 "200 200 0 0 0" "$base_log" || { lab_lb_log; lab_fail "(c) 200 connections not relayed: $(totals "$base_log")"; }
burst_log=$LAB_DIR/hold-burst.log
lab_bg "$LAB_CLI" "$burst_log" "$PEER" hold -b 198.18.0.11 -n 400 -p 400 "$LAB_VIP4:9101"
burst_pid=$LAB_BG_PID
end=$((SECONDS + 10))
while ((SECONDS < end)); do
	read -r _ _ e r f <<<"$(totals "$burst_log")"
	((e + r + f == 400)) && break
	sleep 0.2
done
lab_stop "$burst_pid"
sleep 0.5
[[ $(worker_pid) == "$w0" ]] || { lab_lb_log; lab_fail "(c) worker $w0 died during the burst (now: $(worker_pid))"; }
st=$(last_status "$burst_log")
[[ $st == *" 0 answered, 0 eof, 400 reset, 0 failed" ]] || { lab_lb_log; lab_fail "(c) the burst: '$st', want 400 reset"; }
st=$(last_status "$base_log")
[[ $st == *" 200 answered, 0 eof, 0 reset, 0 failed" ]] || lab_fail "(c) held connections disturbed: $st"
lab_log "ok: (c) all 400 reset, worker $w0 alive, the 200 held undisturbed"
lab_stop "$base_pid"
lab_log "PASS"
