#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The HTTP management listener (docs/monitoring.md), on the gateway's
# 198.18.0.1:9180, allowing 198.18.0.10/31 only, timeout_ms 2000:
#  - it runs in its own process, a child of the master, as the workers'
#    user with no capability at all;
#  - /status.json carries what lbctl --json status and backends return
#    (master pid, generation, every backend with its state), /metrics the
#    same families as lbctl metrics; the latency histograms count every
#    connection (duration count = connections total once all closed, a
#    connect observed for each backend connection);
#  - errors are clear: 403 naming the client outside the allow-list, 405
#    with Allow for POST, 404 naming the path, 400 for a malformed header,
#    505 for an unknown HTTP version, 431 for oversized headers;
#  - abuse, while curl loops through the VIP: 1,000 clients at once all get
#    /metrics; 300 slowloris connections are cut after about timeout_ms and
#    a fresh request is answered meanwhile; 200 clients with 64 KiB of
#    headers each are refused; traffic never fails, the master keeps its
#    pid and answers lbctl, and its CPU time barely moves;
#  - the process is restarted when it dies (killed), replaced on reload
#    (status shows generation 2), and exits when the master is killed.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root curl jq python3
lab_need_lb
lab_up
lab_nginx_start

ABUSE=$LB_SRCDIR/tests/tools/httpabuse
LBCTL=${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl
HTTP=198.18.0.1:9180
SRC=${LAB_CLI_IP4[0]}
cfg=$(lab_config_with '"workers": 2, "http": {"listen": "'"$HTTP"'", "allow": ["198.18.0.10/31"],
	"timeout_ms": 2000, "max_clients": 1100}' '{
		"name": "web",
		"vips": ["198.18.100.1:80"],
		"backends": [{"address": "198.18.2.2:80"}, {"address": "198.18.2.3:80"}]
	}')
lab_lb_start "$cfg"

get() { in_cli curl -gsS --max-time 5 --interface "$SRC" "$@"; }
http_pid() { pgrep -P "$LAB_LB_PID" | while read -r p; do
	[[ $(lab_ctl_call '{"cmd": "status"}' | jq "[.data.workers[].pid] | index($p)") == null ]] && echo "$p"
done; }
wait_http() {
	local i
	for ((i = 0; i < 50; i++)); do
		get -o /dev/null --fail "http://$HTTP/status.json" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

wait_http || { lab_lb_log; lab_fail "no answer on http://$HTTP/status.json"; }
HP=$(http_pid)
[[ $HP =~ ^[0-9]+$ ]] || lab_fail "expected one http process besides the workers, found '$HP'"
read -r uid caps < <(awk '/^Uid:/ { u = $3 } /^CapEff:/ { c = $2 } END { print u, c }' "/proc/$HP/status")
[[ $uid == "$(id -u nobody)" && $caps == 0000000000000000 ]] ||
	lab_fail "http process $HP runs as uid $uid with CapEff $caps, want nobody and none"
lab_log "ok: http process $HP, child of master $LAB_LB_PID, uid $uid, no capability"

lab_log "checking: /status.json and /metrics report what lbctl does"
for _ in 1 2 3 4 5 6; do lab_curl "$SRC" http://198.18.100.1/ >/dev/null || lab_fail "traffic through the VIP"; done
st=$(get --fail "http://$HTTP/status.json") || lab_fail "GET /status.json"
[[ $(jq .status.pid <<<"$st") == "$LAB_LB_PID" ]] || lab_fail "status.pid is not the master's: $st"
want=$(lab_ctl_call '{"cmd": "backends"}' | jq -c '[.data[] | {address, admin, health}]')
got=$(jq -c '[.backends[] | {address, admin, health}]' <<<"$st")
[[ $got == "$want" ]] || lab_fail "backends: http $got, lbctl $want"
tot=$(jq '[.backends[].total] | add' <<<"$st")
[[ $tot == 6 ]] || lab_fail "backends' total $tot after 6 requests"
m=$(get --fail "http://$HTTP/metrics") || lab_fail "GET /metrics"
fam_http=$(grep '^# TYPE' <<<"$m" | sort)
fam_ctl=$("$LBCTL" -s "$LAB_DIR/lb.sock" metrics | grep '^# TYPE' | sort)
[[ $fam_http == "$fam_ctl" ]] || lab_fail "metric families differ: $(diff <(echo "$fam_http") <(echo "$fam_ctl"))"
dur=$(awk '/^lb_service_connection_duration_seconds_count/ { print $2 }' <<<"$m")
conns=$(awk '/^lb_service_connections_total/ { print $2 }' <<<"$m")
connects=$(awk '/^lb_backend_connect_seconds_count/ { s += $2 } END { print s }' <<<"$m")
[[ $dur == 6 && $conns == 6 && $connects == 6 ]] ||
	lab_fail "histograms: duration count $dur, connect count $connects, connections $conns (want 6)"
lab_log "ok: same backends and states as lbctl, $(wc -l <<<"$fam_http") metric families as lbctl; histograms counted 6 of 6"

lab_log "checking: clear errors"
expect() { # expect WANT_STATUS WANT_BODY_ERE CURL_ARGS...
	local want=$1 re=$2 out
	shift 2
	out=$(in_cli curl -gsS --max-time 5 -w '\n%{http_code}' "$@") || true
	[[ ${out##*$'\n'} == "$want" && $out =~ $re ]] || lab_fail "curl $*: want $want /$re/, got: $out"
}
expect 403 "client ${LAB_CLI_IP4[2]} is not in http.allow" --interface "${LAB_CLI_IP4[2]}" "http://$HTTP/metrics"
expect 405 'POST .*read-only' --interface "$SRC" -X POST "http://$HTTP/status.json"
expect 404 'not found: /nope' --interface "$SRC" "http://$HTTP/nope"
in_cli curl -gsSi --max-time 5 --interface "$SRC" -X DELETE "http://$HTTP/" | grep -qi '^Allow: GET, HEAD' ||
	lab_fail "405 without an Allow header"
bad=$(printf 'GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n' | in_cli socat -t 3 - "TCP:$HTTP,bind=$SRC" | head -n1)
[[ $bad == *" 400 "* ]] || lab_fail "malformed header: '$bad', want 400"
bad=$(printf 'GET / HTTP/9.9\r\n\r\n' | in_cli socat -t 3 - "TCP:$HTTP,bind=$SRC" | head -n1)
[[ $bad == *" 505 "* ]] || lab_fail "HTTP/9.9: '$bad', want 505"
lab_log "ok: 403 names the client, 405 with Allow, 404 names the path, 400, 505"

lab_log "checking: abuse while traffic flows through lb"
# 3 s a request: a request through lb must not fail while the abuse runs,
# but 1 s (the default) is one SYN retransmit, or one stall of this 2-CPU
# box busy with 1,500 abusive clients.
LAB_LOAD_TIMEOUT=3 lab_load_start http://198.18.100.1/ "${LAB_CLI_IP4[1]}"
m0=$(cpu_ticks "$LAB_LB_PID")
lab_bg "$LAB_CLI" "$LAB_DIR/slow.log" python3 "$ABUSE" slow 300 198.18.0.1 9180 8 "$SRC"
SLOW=$LAB_BG_PID
sleep 1
t0=$(lab_now_ms)
get --fail -o /dev/null "http://$HTTP/status.json" || lab_fail "a request failed while 300 slowloris clients are connected"
ms=$(($(lab_now_ms) - t0))
lab_log "ok: answered in $ms ms with 300 slowloris connections open"
many=$(ulimit -n 4096 && in_cli python3 "$ABUSE" many 1000 198.18.0.1 9180 /metrics "$SRC") ||
	lab_fail "1000 concurrent clients: $many"
lab_log "ok: $many"
big=$(in_cli python3 "$ABUSE" big 200 198.18.0.1 9180 65536 "$SRC")
# Refused with 431 (some of them at least), or reset when the refusal
# overtook headers still being sent.
[[ $big =~ \{(\'431\':\ ([0-9]+))?(,\ )?(\'reset\':\ ([0-9]+))?\} ]] &&
	((${BASH_REMATCH[2]:-0} + ${BASH_REMATCH[5]:-0} == 200 && ${BASH_REMATCH[2]:-0} > 0)) ||
	lab_fail "200 clients with 64 KiB headers, want all refused: $big"
lab_log "ok: $big"
wait "$SLOW"
slow=$(cat "$LAB_DIR/slow.log")
[[ $slow =~ 300\ closed\ by\ the\ server\ after\ median\ ([0-9.]+)\ s,\ max\ ([0-9.]+)\ s ]] ||
	lab_fail "slowloris connections not all cut: $slow"
awk -v med="${BASH_REMATCH[1]}" -v max="${BASH_REMATCH[2]}" 'BEGIN { exit !(med >= 1.5 && max <= 6) }' ||
	lab_fail "slowloris connections cut after median ${BASH_REMATCH[1]} s, max ${BASH_REMATCH[2]} s; want 1.5..6 s (timeout_ms 2000)"
lab_log "ok: $slow"
lab_load_stop
load=$(lab_load_report) || lab_fail "traffic through lb failed during the abuse: $load"
m1=$(cpu_ticks "$LAB_LB_PID")
t0=$(lab_now_ms)
lab_ctl_call '{"cmd": "status"}' | jq -e .ok >/dev/null || lab_fail "master does not answer lbctl"
ms=$(($(lab_now_ms) - t0))
kill -0 "$LAB_LB_PID" || lab_fail "master gone"
# The master's CPU: it never sees an HTTP request (clock ticks, 100 a second).
((m1 - m0 < 100)) || lab_fail "master used $((m1 - m0)) ticks of CPU during the abuse"
lab_log "ok: traffic $load; master answered lbctl in $ms ms, used $((m1 - m0)) CPU ticks meanwhile"

lab_log "checking: restarted when killed, replaced on reload"
kill -KILL "$HP"
sleep 0.3
wait_http || { lab_lb_log; lab_fail "http not back after its process was killed"; }
HP2=$(http_pid)
[[ $HP2 =~ ^[0-9]+$ && $HP2 != "$HP" ]] || lab_fail "http process after the kill: '$HP2' (was $HP)"
lab_wait_grep "$LAB_LB_LOG" "http: process $HP killed by signal 9; restarting" 1 >/dev/null ||
	lab_fail "no log line for the killed http process"
kill -HUP "$LAB_LB_PID"
for ((i = 0; i < 50; i++)); do
	[[ $(get "http://$HTTP/status.json" 2>/dev/null | jq .status.generation 2>/dev/null) == 2 ]] && break
	sleep 0.1
done
((i < 50)) || lab_fail "status.json does not show generation 2 after a reload"
HP3=$(http_pid)
[[ $HP3 != "$HP2" ]] || lab_fail "the http process was not replaced on reload"
lab_log "ok: restarted ($HP -> $HP2), replaced on reload ($HP2 -> $HP3, generation 2)"

lab_log "checking: exits when the master is killed"
kill -KILL "$LAB_LB_PID"
wait "$LAB_LB_PID" 2>/dev/null
LAB_LB_PID=
for ((i = 0; i < 30; i++)); do
	kill -0 "$HP3" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$HP3" 2>/dev/null && lab_fail "http process $HP3 outlived the master"
lab_log "ok: http process gone with the master"
lab_log "PASS"
