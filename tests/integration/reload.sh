#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# SIGHUP reloads drop nothing: under wrk load (keep-alive, then
# Connection: close) 50 reloads 100 ms apart alternate configs that add and
# remove a backend, change weights, the scheduler and the worker count
# (1 <-> 3); wrk sees no socket error (no request over 5 s) and no non-2xx,
# a stream opened before the reloads ends byte-exact, and afterwards only
# the master and the last generation's workers remain. An invalid config
# leaves the running one in place and shows in status; a storm of 20
# SIGHUPs ends with the newest file applied and no leaked process, fd or
# nft object.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root wrk
lab_need_lb peer
LBCTL=${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl
[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
lab_up
lab_nginx_start
lab_peer_start "$LAB_BE" "$LAB_DIR/peer.log" serve 198.18.2.2:9000

# variant WORKERS SCHEDULER BACKENDS_JSON [EXTRA_SERVICE]: print a config.
variant() {
	cat <<EOC
{
	"workers": $1,
	"control": {"path": "$LAB_DIR/lb.sock"},
	"drain_timeout_ms": 60000,
	"services": [
		{"name": "web", "vips": ["198.18.100.1:80"], "scheduler": "$2",
		 "backends": $3},
		{"name": "stream", "vips": ["198.18.100.1:9000"],
		 "backends": [{"address": "198.18.2.2:9000"}]}${4:+,
		$4}
	]
}
EOC
}
B2='{"address": "198.18.2.2:80"}'
B3='{"address": "198.18.2.3:80"}'
variant 1 roundrobin "[$B2]" >"$LAB_DIR/v0.json"
variant 3 roundrobin "[$B2, $B3]" >"$LAB_DIR/v1.json"
variant 3 roundrobin '[{"address": "198.18.2.2:80", "weight": 1}, {"address": "198.18.2.3:80", "weight": 4}]' >"$LAB_DIR/v2.json"
variant 1 leastconn "[$B2, $B3]" >"$LAB_DIR/v3.json"
variant 2 maglev "[$B3]" >"$LAB_DIR/v4.json"
cfg=$LAB_DIR/lb.json
cp "$LAB_DIR/v1.json" "$cfg"
lab_lb_start "$cfg"
master=$LAB_LB_PID

# apply FILE: make FILE the config atomically (a reader never sees half a file).
apply() {
	cp "$1" "$cfg.tmp" && mv -f "$cfg.tmp" "$cfg"
}

workers_of() { grep -o '"workers": [0-9]*' "$1" | grep -o '[0-9]*$'; }

# wait_settled N: old generations drained: exactly N workers under the master.
wait_settled() {
	local i n
	for ((i = 0; i < 200; i++)); do
		n=$(pgrep -P "$master" | wc -l)
		[[ $n -eq $1 ]] && return 0
		sleep 0.1
	done
	lab_log "process tree: $(ps -o pid,args --ppid "$master" | tr '\n' ';')"
	return 1
}

# storm_under_load LABEL WRK_HEADER...: 50 reloads during a wrk run.
storm_under_load() {
	local label=$1 out i last
	shift
	# The stream outlives the reloads: 24 MiB read at 4 MiB/s.
	in_cli "$PEER" client -b 198.18.0.13 -u 1048576 -d 25165824 -r 4194304 \
		198.18.100.1:9000 >"$LAB_DIR/stream.out" 2>&1 &
	local stream=$!
	# A request that takes over 5 s counts as a socket error (wrk's default,
	# 2 s, is a stall of the box, not a dropped request); the run lasts 12 s,
	# so one that hangs during the storm (over by about 7 s) is counted.
	in_cli wrk -t2 -c16 -d12s --timeout 5s --latency "$@" http://198.18.100.1/ >"$LAB_DIR/wrk.out" 2>&1 &
	local load=$!
	sleep 1
	for ((i = 0; i < 50; i++)); do
		last=$LAB_DIR/v$((i % 5)).json
		apply "$last"
		kill -HUP "$master"
		sleep 0.1
	done
	wait "$load"
	out=$(cat "$LAB_DIR/wrk.out")
	grep -q 'Requests/sec' <<<"$out" || lab_fail "$label: wrk did not run: $out"
	if grep -Eq 'Socket errors|Non-2xx' <<<"$out"; then
		lab_lb_log
		lab_fail "$label: wrk saw errors: $(grep -E 'requests in|Socket errors|Non-2xx' <<<"$out" | tr '\n' ' ')"
	fi
	lab_log "ok: $label: 50 reloads under load, no socket error, no non-2xx: $(grep 'requests in' <<<"$out" | sed 's/^ *//')"
	wait "$stream" || lab_fail "$label: the stream opened before the reloads broke: $(cat "$LAB_DIR/stream.out")"
	lab_log "ok: $label: stream through the reloads ended byte-exact: $(tail -n1 "$LAB_DIR/stream.out")"
	grep -q 'reload failed' "$LAB_LB_LOG" && { lab_lb_log; lab_fail "$label: a reload failed"; }
	wait_settled "$(workers_of "$last")" ||
		lab_fail "$label: old generations did not drain to $(workers_of "$last") workers"
	lab_log "ok: $label: only the master and the $(workers_of "$last") workers of the last generation remain"
}

storm_under_load keep-alive
storm_under_load close -H 'Connection: close'

# --- an invalid config keeps the running one and shows in status ---
gen_before=$("$LBCTL" -s "$LAB_DIR/lb.sock" --json status | grep -o '"generation": *[0-9]*' | head -n1 | grep -o '[0-9]*$')
sed 's/198\.18\.2\.3:80/198.18.2.3:99999/' "$LAB_DIR/v1.json" >"$LAB_DIR/bad.json"
apply "$LAB_DIR/bad.json"
kill -HUP "$master"
lab_wait_grep "$LAB_LB_LOG" 'reload failed' 5 >/dev/null || lab_fail "no 'reload failed' after an invalid config"
grep -q 'services\[0\]\.backends\[1\]\.address: port 99999 out of range' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "the reload error does not name the JSON path"; }
lab_curl 198.18.0.10 http://198.18.100.1/ >/dev/null || lab_fail "service stopped after an invalid config"
st=$("$LBCTL" -s "$LAB_DIR/lb.sock" --json status)
grep -q 'port 99999 out of range' <<<"$st" || lab_fail "status does not show the failed reload: $st"
lab_log "ok: invalid config: running config kept, error with its JSON path in the log and in status"
out=$("$LBCTL" -s "$LAB_DIR/lb.sock" reload 2>&1)
rc=$?
[[ $rc -eq 1 && $out == *"port 99999 out of range"* ]] ||
	lab_fail "lbctl reload of an invalid config: exit $rc (want 1), output: $out"
lab_log "ok: lbctl reload exits 1 with the message: $out"
apply "$LAB_DIR/v1.json"
"$LBCTL" -s "$LAB_DIR/lb.sock" reload >/dev/null || lab_fail "lbctl reload of a valid config failed"
gen_after=$("$LBCTL" -s "$LAB_DIR/lb.sock" --json status | grep -o '"generation": *[0-9]*' | head -n1 | grep -o '[0-9]*$')
[[ $gen_after -gt $gen_before ]] || lab_fail "generation did not move after a valid reload ($gen_before -> $gen_after)"
lab_log "ok: a later valid config applies (generation $gen_before -> $gen_after)"
wait_settled 3 || lab_fail "did not settle after the valid reload"

# --- SIGHUP storm: newest file wins, nothing leaks ---
fds_before=$(ls "/proc/$master/fd" | wc -l)
nft_before=$(in_gw nft list table inet lb)
variant 3 roundrobin "[$B2, $B3]" '{"name": "new", "vips": ["198.18.100.2:80"], "backends": [{"address": "198.18.2.3:80"}]}' >"$LAB_DIR/newest.json"
for ((i = 0; i < 20; i++)); do
	if ((i == 19)); then apply "$LAB_DIR/newest.json"; else apply "$LAB_DIR/v$((i % 5)).json"; fi
	kill -HUP "$master"
	sleep 0.05
done
for ((i = 0; i < 50; i++)); do
	in_gw nft list set inet lb vips4 2>/dev/null | grep -q '198.18.100.2 . 80' && break
	sleep 0.1
done
in_gw nft list set inet lb vips4 | grep -q '198.18.100.2 . 80' || lab_fail "the newest config's VIP is not intercepted"
body=$(lab_curl 198.18.0.11 http://198.18.100.2/) || lab_fail "the newest config's service does not answer"
[[ $body == *"backend=198.18.2.3 client=198.18.0.11"* ]] || lab_fail "unexpected answer from the new service: $body"
lab_log "ok: after 20 SIGHUPs in 1 s the newest file is in force"
apply "$LAB_DIR/v1.json"
kill -HUP "$master"
wait_settled 3 || lab_fail "storm: old generations did not drain"
sleep 0.5
for ((i = 0; i < 30; i++)); do
	[[ $(in_gw nft list table inet lb) == "$nft_before" ]] && break
	sleep 0.1
done
[[ $(in_gw nft list table inet lb) == "$nft_before" ]] || lab_fail "nft table differs after the storm"
fds_after=$(ls "/proc/$master/fd" | wc -l)
[[ $fds_after -eq $fds_before ]] || lab_fail "master fds: $fds_before before the storm, $fds_after after: $(ls -l /proc/$master/fd)"
lab_log "ok: storm: same nft table, master fds $fds_before -> $fds_after, master + 3 workers"
lab_lb_stop TERM || lab_fail "lb exited non-zero on SIGTERM"
lab_log PASS
