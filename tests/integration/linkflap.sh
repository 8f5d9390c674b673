#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A short flap of the gateway's backend-side link (g1) must not become a
# long outage. lb runs a passive-only service (no health block: fall 3,
# probes every 2 s with rise 2 once a backend is down) over the lab's IPv4
# and IPv6 backends while a loop sends a request every 50 ms, alternating
# IPv4 and IPv6:
#  warn:    with net.ipv6.conf.g1.keep_addr_on_down=0 the gateway's IPv6
#           address on g1 would vanish at the first flap (and with it the
#           route to the IPv6 backends): lb -t and lb's start log warn about
#           g1 and name the fix; with it set to 1 they say nothing of g1.
#  admin:   g1 set down for 0.2 s, then for 2 s. While it is down connect()
#           fails at once with ENETUNREACH (no route).
#  carrier: the backend end of the veth (b0) set down for 4 s: g1 loses its
#           carrier, its routes stay, and connects wait on neighbour
#           resolution until connect_timeout_ms (700 ms, service "short")
#           ends them, or they fail with EHOSTUNREACH.
# After each flap, every request of either family started 1 s or more after
# the link came back succeeds (and there are some), lb has logged that the
# gateway had no path (at most once a second per worker), and at the end no
# backend was marked down (no "health up -> down" line; status says up).
# Without the fix, the failed connects during the flap take every backend
# down and they come back only when two probes rise, 2 to 5 s later.
#  dead:    what is not the gateway's fault still counts: a backend address
#           on g1's network where no host answers (neighbour never
#           resolved, link up) is marked down after 3 connect timeouts
#           (service "dead", connect_timeout_ms 700), while its live
#           partner serves every request. And a backend the gateway has no
#           route to (198.18.5.5) is skipped at no cost: with retries 0
#           every client of service "noroute" is served by the other one.
# Run parts alone with: linkflap.sh [warn] [admin] [carrier] [dead]
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq
lab_need_lb
parts=${*:-warn admin carrier dead}
want() { [[ " $parts " == *" $1 "* ]]; }

lab_up
lab_nginx_start
# "short": the same backends with connect_timeout_ms 700, so that connects
# stuck on neighbour resolution time out while the carrier is gone.
cfg=$(lab_config '{"name": "short", "vips": ["198.18.100.1:81", "[2001:db8:100::1]:81"],
	"backends": [{"address": "198.18.2.2:80"}, {"address": "198.18.2.3:80"},
		{"address": "[2001:db8:2::2]:80"}, {"address": "[2001:db8:2::3]:80"}],
	"connect_timeout_ms": 700},
	{"name": "dead", "vips": ["198.18.100.1:82"],
	"backends": [{"address": "198.18.2.9:80"}, {"address": "198.18.2.2:80"}],
	"connect_timeout_ms": 700},
	{"name": "noroute", "vips": ["198.18.100.1:83"], "retries": 0,
	"backends": [{"address": "198.18.5.5:80"}, {"address": "198.18.2.2:80"}]}')
CLI4=${LAB_CLI_IP4[0]} CLI6=${LAB_CLI_IP6[0]}

keep_addr() {
	in_gw sysctl -qw "net.ipv6.conf.$1.keep_addr_on_down=$2" || lab_fail "cannot set keep_addr_on_down on $1"
}

# ---------------------------------------------------------------------------
warn() {
	local out rc
	lab_log "checking: warn: keep_addr_on_down=0 on g1 is reported by lb -t and at start"
	# The lab keeps addresses everywhere ("all"); take that back.
	keep_addr all 0
	keep_addr g0 1
	keep_addr g1 0
	out=$(in_gw "$LB_BIN" -t -c "$cfg" 2>&1 >/dev/null)
	rc=$?
	((rc == 0)) || lab_fail "warn: lb -t exited $rc: $out"
	grep -q 'interface g1: .*keep_addr_on_down.*sysctl -w net.ipv6.conf.g1.keep_addr_on_down=1' <<<"$out" ||
		lab_fail "warn: lb -t did not warn about g1's keep_addr_on_down: $out"
	grep -q 'interface g0:' <<<"$out" && lab_fail "warn: lb -t warned about g0, which keeps its addresses: $out"
	lab_log "ok: warn: lb -t says: $(grep 'interface g1:' <<<"$out" | head -n1)"
	lab_lb_start "$cfg"
	grep -q 'interface g1: .*keep_addr_on_down' "$LAB_LB_LOG" ||
		{ lab_lb_log; lab_fail "warn: no keep_addr_on_down warning about g1 at start"; }
	lab_lb_stop || lab_fail "warn: lb exited with status $?"
	keep_addr g1 1
	out=$(in_gw "$LB_BIN" -t -c "$cfg" 2>&1 >/dev/null)
	grep -q 'keep_addr_on_down' <<<"$out" && lab_fail "warn: lb -t still warns with keep_addr_on_down=1 on g0 and g1: $out"
	keep_addr all 1
	lab_log "ok: warn: lb warns at start too, and says nothing once g0 and g1 keep their addresses"
}

# ---------------------------------------------------------------------------
# The request loops, one per family, each a request every ~30 ms (a fast
# rate makes the 0.2 s flap matter): "START_MS FAMILY ok|fail" per request.
loop_start() {
	local f src url port=$1
	LOOP_LOG=$LAB_DIR/loop$port.log LOOP_PIDS=()
	: >"$LOOP_LOG"
	for f in 4 6; do
		if [[ $f == 4 ]]; then src=$CLI4 url=http://$LAB_VIP4:$port/; else src=$CLI6 url=http://[$LAB_VIP6]:$port/; fi
		# shellcheck disable=SC2016 # expanded by the inner shell
		lab_bg "$LAB_CLI" "$LAB_DIR/loop$f.err" bash -c '
			while :; do
				t=$(date +%s%3N)
				if curl -gsS --fail --max-time 3 --interface "$2" -o /dev/null "$3" 2>/dev/null; then
					echo "$t $1 ok"
				else
					echo "$t $1 fail"
				fi >>"$4"
				sleep 0.02
			done' _ "$f" "$src" "$url" "$LOOP_LOG"
		LOOP_PIDS+=("$LAB_BG_PID")
	done
	sleep 1
}

loop_stop() {
	local p
	for p in "${LOOP_PIDS[@]}"; do
		lab_stop "$p"
	done
}

# flap NAME SECONDS DOWN_CMD UP_CMD ERE: run DOWN_CMD, wait, UP_CMD, then
# judge the requests that started after the link came back; lb must have
# said that the gateway had no path, with an error matching ERE.
flap() {
	local name=$1 secs=$2 down=$3 up=$4 re=$5 t_down t_up f first bad n failed_during mark
	lab_log "checking: $name: link down for $secs s under the request loop"
	mark=$(wc -l <"$LAB_LB_LOG")
	t_down=$(lab_now_ms)
	$down || lab_fail "$name: cannot take the link down"
	sleep "$secs"
	$up || lab_fail "$name: cannot bring the link up"
	t_up=$(lab_now_ms)
	lab_wait_links || lab_fail "$name: links not up again"
	sleep 3
	failed_during=$(sort -n "$LOOP_LOG" | awk -v a="$t_down" -v b="$t_up" '$1 >= a && $1 < b && $3 == "fail"' | wc -l)
	for f in 4 6; do
		# The first success after the link came back, and any failure that
		# started a second or more after it.
		first=$(sort -n "$LOOP_LOG" | awk -v t="$t_up" -v f="$f" '$1 >= t && $2 == f && $3 == "ok" { print $1 - t; exit }')
		bad=$(awk -v t="$((t_up + 1000))" -v f="$f" '$1 >= t && $2 == f && $3 == "fail" { print $1 - t + 1000 }' "$LOOP_LOG" | paste -sd ' ')
		n=$(awk -v t="$((t_up + 1000))" -v f="$f" '$1 >= t && $2 == f' "$LOOP_LOG" | wc -l)
		if [[ -z $first || -n $bad ]] || ((n < 5)); then
			sort -n "$LOOP_LOG" | awk -v a="$((t_down - 500))" '$1 >= a { $1 = $1 - a; print }' | paste -sd ' ' | fold -w 150 | sed 's/^/  | /' >&2
			grep -E 'health|no route|down' "$LAB_LB_LOG" | sed 's/^/  | /' >&2
			lab_fail "$name: IPv$f after the link came back: first success at ${first:-never} ms; failures at [${bad}] ms (want none from 1000 ms on), $n requests from 1000 ms on"
		fi
		lab_log "ok: $name: IPv$f served again $first ms after the link came back; all $n requests from 1 s on succeeded"
	done
	lab_log "$name: $failed_during requests failed while the link was down"
	tail -n +"$((mark + 1))" "$LAB_LB_LOG" | grep -E "no path from this gateway to backend .*: ($re); not held against" |
		head -n1 | grep -o 'service.*' | sed 's/"$//' >"$LAB_DIR/path.line" ||
		{ lab_lb_log; lab_fail "$name: lb did not log that the gateway had no path ($re)"; }
	lab_log "ok: $name: lb said: $(cat "$LAB_DIR/path.line")"
}

admin_down() { ip -n "$LAB_GW" link set g1 down; }
admin_up() { ip -n "$LAB_GW" link set g1 up; }
carrier_down() { ip -n "$LAB_BE" link set b0 down; }
# The backend host's static default routes go with its link: put them back,
# as its network manager would.
carrier_up() {
	ip -n "$LAB_BE" link set b0 up &&
		ip -n "$LAB_BE" route replace default via 198.18.2.1 &&
		ip -n "$LAB_BE" -6 route replace default via 2001:db8:2::1
}

no_backend_down() {
	local st
	if grep 'health up -> down' "$LAB_LB_LOG" | grep -v 'service dead ' | grep -q .; then
		grep 'health up -> down' "$LAB_LB_LOG" | sed 's/^/  | /' >&2
		lab_fail "a backend was marked down by the flaps"
	fi
	st=$(lab_ctl_call '{"cmd": "backends"}' | jq -r '[.data[] | select(.health != "up" and .service != "dead") | "\(.service) \(.address)"] | join(", ")') ||
		lab_fail "no answer from the control socket"
	[[ -z $st ]] || lab_fail "backends not up in status: $st"
	lab_log "ok: no backend was marked down (log and status)"
}

want warn && warn
# ---------------------------------------------------------------------------
dead() {
	local i line
	lab_log "checking: dead: a backend with no host behind its address is still marked down"
	for ((i = 1; i <= 8; i++)); do
		lab_curl "$CLI4" "http://$LAB_VIP4:82/" >/dev/null || { lab_lb_log; lab_fail "dead: request $i failed"; }
		grep -q 'service dead backend 198.18.2.9:80: health up -> down' "$LAB_LB_LOG" && break
	done
	line=$(grep 'service dead backend 198.18.2.9:80: health up -> down' "$LAB_LB_LOG") ||
		{ lab_lb_log; lab_fail "dead: 198.18.2.9 not marked down after $i requests"; }
	grep -q 'no path from this gateway to backend 198.18.2.9:80' "$LAB_LB_LOG" &&
		lab_fail "dead: a silent host was taken for the gateway's own failure"
	lab_log "ok: dead: all $i requests served by 198.18.2.2; ${line#*msg=}"
	for ((i = 1; i <= 6; i++)); do
		lab_curl "$CLI4" "http://$LAB_VIP4:83/" >/dev/null ||
			{ lab_lb_log; lab_fail "noroute: request $i failed with retries 0"; }
	done
	grep -q 'service noroute: no path from this gateway to backend 198.18.5.5:80: Network is unreachable' "$LAB_LB_LOG" ||
		{ lab_lb_log; lab_fail "noroute: 198.18.5.5 was never tried, the check proved nothing"; }
	lab_log "ok: noroute: 6 requests with retries 0 all served; 198.18.5.5 (no route) skipped and kept up"
}

if want admin || want carrier || want dead; then
	ip netns exec "$LAB_BE" sysctl -qw net.ipv6.conf.b0.keep_addr_on_down=1 ||
		lab_fail "cannot set keep_addr_on_down on b0"
	lab_lb_start "$cfg"
	# Settle the lab: one request per path, so neighbours are known.
	lab_curl "$CLI4" "http://$LAB_VIP4/" >/dev/null || lab_fail "no IPv4 answer before the flaps"
	lab_curl "$CLI6" "http://[$LAB_VIP6]/" >/dev/null || lab_fail "no IPv6 answer before the flaps"
fi
if want admin; then
	loop_start 80
	flap "admin 0.2 s" 0.2 admin_down admin_up 'Network is unreachable'
	flap "admin 2 s" 2 admin_down admin_up 'Network is unreachable'

	loop_stop
fi
if want carrier; then
	loop_start 81
	flap "carrier 4 s" 4 carrier_down carrier_up 'Connection timed out|No route to host'

	loop_stop
fi
want dead && dead
if want admin || want carrier || want dead; then
	no_backend_down
	lab_lb_stop || lab_fail "lb exited with status $?"
fi
lab_log "PASS"
