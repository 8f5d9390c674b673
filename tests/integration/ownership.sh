#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Gateway ownership (issue 19, docs/scale-out.md): three lb gateways behind
# a BIRD router doing hash-threshold ECMP (tests/lab_scaleout.sh). The same
# events run twice in one lab, first without an "ownership" block, then
# with it; each counts the long-lived connections (one echo a second) lost
# per gateway, with new connections arriving meanwhile:
#  - enable (with ownership only): the tier runs without, and each gateway
#    reloads into a config with it;
#  - drain: gateway 2 drained (lbctl drain-gateway --stop); the long-lived
#    connections end on their own 3 s later, then lb stops by itself;
#  - add: gateway 2 starts again, and gateway 1 reloads at the same time;
#  - stall: gateway 2's master stops (SIGSTOP) for 1.5 s, past dead_ms: the
#    others find it dead, yet its connections must keep their second chance;
#  - kill: gateway 3's lb is SIGKILLed, and gateway 2 reloads meanwhile;
#  - restart: gateway 3 starts again over what its killed lb left behind.
# A reload with a new rule priority, then one without IPv6, keeps each
# peer's forwarding route in the families the new config has.
# Before the events, 64 UDP flows (an echo service on be2) must all be
# answered and 600 IPv6 connections echo, and with ownership most of their
# packets be forwarded.
# With ownership: 0 lost on every gateway in enable, drain, add, stall and restart, 0 on the
# survivors in kill (the killed gateway's own are lost with it), and the
# forwarding counters moved. Without: the router's remapping loses
# connections (asserted: at least one over the run, so the count can tell).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=ownership
. "$LB_SRCDIR/tests/lab.sh"
. "$LB_SRCDIR/tests/lab_scaleout.sh"
so_skip_unless_ready
T0=$(lab_now_ms)
SO_DRAIN_MS=6000
SO_PING_MS=1000
PINGS=${OWN_PINGS:-60}
UP=${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/udppeer
[[ -x $UP ]] || lab_skip "udppeer not built: $UP"
# A UDP echo service besides the lab's: its flows take the same chains. On be2
# only: its replies find their gateway by conntrack mark, which a UDP socket's
# answers carry (be1 marks what arrives, which only TCP's accepted sockets keep).
SO_EXTRA_SERVICE='{"name": "uecho", "protocol": "udp", "vips": ["'$SO_VIP4':5353"],
		 "backends": [{"address": "'${SO_BE4[1]}':5353"}]}'
so_up
so_backends_start
lab_bg "$(so_be 2)" "$LAB_DIR/uecho-be2.log" "$UP" echo "${SO_BE4[1]}:5353"
so_bird_router
for n in 1 2 3; do
	so_bird_gateway "$n"
done
sessions() { so_birdc rt show protocols 2>/dev/null | grep -c Established; }
for ((i = 0; i < 150; i++)); do
	[[ $(sessions) -ge 6 ]] && break
	sleep 0.1
done
lab_check "six BGP sessions up ($(sessions))" test "$(sessions)" -ge 6

start_all() {
	local n
	for n in 1 2 3; do
		so_lb_start "$n"
	done
	so_wait_nexthops $SO_VIP4 3 10 >/dev/null || lab_fail "$SO_VIP4 not through 3 gateways"
	so_wait_nexthops $SO_VIP6 3 10 >/dev/null || lab_fail "$SO_VIP6 not through 3 gateways"
	# One request per path first: fresh IPv6 neighbours may cost a SYN.
	for ((i = 0; i < 4; i++)); do
		in_cli curl -gsS -o /dev/null --max-time 5 --interface "${SO_CLI4[i]}" "http://$SO_VIP4/"
		in_cli curl -gsS -o /dev/null --max-time 5 --interface "${SO_CLI6[i]}" \
			"http://[$SO_VIP6]/"
	done
}

# ipv6 MODE: 600 new IPv6 connections (16 client addresses) all echo a byte; with
# ownership, two in three of them are forwarded to their owner over IPv6.
ipv6() {
	local srcs=() a out f0 f1
	for a in "${SO_CLI6[@]}"; do srcs+=(-b "$a"); done
	f0=$(fwd_all to_owner)
	out=$(in_cli "$PEER" churn "${srcs[@]}" -n 600 -p 16 -e "[$SO_VIP6]:9000" 2>&1 | tail -n 1)
	lab_log "$1 ipv6: $out"
	lab_check "$1: 600 IPv6 connections through the tier" grep -q ' 600 echoed, 0 failed' <<<"$out"
	[[ $1 == on ]] || return 0
	sleep 1.2
	f1=$(fwd_all to_owner)
	lab_check "on: IPv6 packets forwarded to their owners ($((f1 - f0)))" test $((f1 - f0)) -ge 600
}

stop_all() {
	local n
	for n in 1 2 3; do
		[[ -n ${SO_LB_PID[n]:-} ]] && kill -TERM "${SO_LB_PID[n]}" 2>/dev/null
	done
	for n in 1 2 3; do
		[[ -n ${SO_LB_PID[n]:-} ]] && wait "${SO_LB_PID[n]}" 2>/dev/null
		SO_LB_PID[n]=
	done
}

running() { kill -0 "$1" 2>/dev/null; }

# event MODE NAME ACTION...: long-lived connections and new ones across
# ACTION; LOST[MODE.NAME] gets "lost/held" per gateway.
declare -A LOST=() PROBES=()
event() {
	local mode=$1 name=$2
	shift 2
	so_ping_start $SO_VIP4 9000 "$PINGS"
	# Every connection mapped to its gateway before the event (a busy box is slow to list).
	for ((i = 0; i < 100; i++)); do
		[[ $(wc -l <"$SO_PING_LOG.map") -ge $PINGS ]] && break
		sleep 0.05
		so_conn_gateways $SO_VIP4 9000 >"$SO_PING_LOG.map"
	done
	so_probe_start $SO_VIP4 9000 5 50
	sleep 1
	EVENT_MS=$(lab_now_ms)
	"$@"
	so_ping_stop
	so_probe_wait
	LOST[$mode.$name]=$(so_ping_lost)
	PROBES[$mode.$name]=$(so_probe_report "$EVENT_MS")
	lab_log "$mode $name: long-lived connections lost/held per gateway: ${LOST[$mode.$name]}"
	lab_log "$mode $name: new connections: ${PROBES[$mode.$name]}"
}

# lost_on MODE.NAME GATEWAYS...: connections lost on those gateways, and
# those lost that no gateway was seen to hold (they count against any).
lost_on() {
	local key=$1 g sum=0 f u
	shift
	read -ra f <<<"${LOST[$key]}"
	for g in "$@"; do
		sum=$((sum + ${f[g - 1]%%/*}))
	done
	if [[ ${f[3]:-} == unmapped:* ]]; then
		u=${f[3]#unmapped:}
		sum=$((sum + ${u%%/*}))
	fi
	echo "$sum"
}

drain() {
	so_lbctl 2 drain-gateway --stop >/dev/null || lab_fail "drain-gateway on gateway 2"
	so_wait_nexthops $SO_VIP4 2 5 >/dev/null || lab_fail "drained gateway still routed"
	sleep 3
}

add() {
	so_lb_start 2
	kill -HUP "${SO_LB_PID[1]}"
	so_wait_nexthops $SO_VIP4 3 5 >/dev/null || lab_fail "gateway 2 not back"
	sleep 3
}

# dead_ms PEER GW: ms until gateway GW's lb sees PEER dead (polled; 9999: not in 5 s).
dead_ms() {
	local t0 i
	t0=$(lab_now_ms)
	for ((i = 0; i < 250; i++)); do
		so_lbctl "$2" -j status 2>/dev/null |
			jq -e --arg p "$1" '.data.ownership.peers[] | select(.name == $p and .state == "dead")' \
				>/dev/null && { echo $(($(lab_now_ms) - t0)); return; }
		sleep 0.02
	done
	echo 9999
}

killed() {
	so_lb_kill 3
	[[ $SO_OWNERSHIP == 1 ]] && DEAD_MS=$(dead_ms gw3 1)
	sleep 0.3
	kill -HUP "${SO_LB_PID[2]}"
	so_wait_nexthops $SO_VIP4 2 5 >/dev/null || lab_fail "killed gateway still routed"
	sleep 3
}

# enable_all: every gateway reloads into a config with ownership; waits
# until gateway 1 has heard the tier and sees all three serving.
enable_all() {
	local n i
	for n in 1 2 3; do
		so_lb_config "$n" >/dev/null
		kill -HUP "${SO_LB_PID[n]}"
	done
	for ((i = 0; i < 100; i++)); do
		so_lbctl 1 -j status 2>/dev/null | jq -e '.data.ownership.settled and
			([.data.ownership.peers[] | select(.state == "serving")] | length == 3)' \
			>/dev/null && break
		sleep 0.05
	done
	sleep 2
}

# gateway 2's master stops for 1.5 s (SIGSTOP: its workers go on): longer
# than dead_ms, so the others find it dead and take its buckets, though its
# connections are alive. The router still sends it its share.
stalled() {
	kill -STOP "${SO_LB_PID[2]}"
	sleep 1.5
	kill -CONT "${SO_LB_PID[2]}"
	sleep 3
}

# gateway 3, SIGKILLed before (its nft table and peer routes left behind), starts again.
restarted() {
	so_lb_start 3
	so_wait_nexthops $SO_VIP4 3 5 >/dev/null || lab_fail "gateway 3 not back"
	sleep 3
}

# udp MODE: 64 UDP flows from the 16 client addresses, 2 s at 2,000 datagrams a
# second: every flow answered, at most 1% lost (a busy box drops a few).
udp() {
	local srcs=() a out f0 f1
	for a in "${SO_CLI4[@]}"; do srcs+=(-b "$a"); done
	f0=$(fwd_all to_owner)
	out=$(in_cli "$UP" gen "${srcs[@]}" -f 64 -r 2000 -t 2 "$SO_VIP4:5353" 2>&1)
	UDP[$1]=$(grep -m1 '^gen: 64 flows' <<<"$out")
	lab_log "$1 udp: ${UDP[$1]}"
	lab_check "$1: every UDP flow answered" not grep -q 'no answer' <<<"$out"
	lab_check "$1: UDP datagrams lost at most 1%" awk '/^gen: 64 flows/ {
		s = $5; l = $9; gsub(/,/, "", s); gsub(/,/, "", l); exit !(l * 100 <= s) }' <<<"$out"
	[[ $1 == on ]] || return 0
	sleep 1.2	# the masters read the kernel's counters once a second
	f1=$(fwd_all to_owner)
	# Two flows in three reach a gateway that does not own them: ~2,600 of 4,000 datagrams.
	lab_check "on: UDP datagrams forwarded to their owners ($((f1 - f0)) packets)" \
		test $((f1 - f0)) -ge 1000
}

# fwd_all REASON: packets the running gateways forwarded for REASON so far.
fwd_all() {
	local n sum=0 v
	for n in 1 2 3; do
		v=$(so_lbctl "$n" metrics 2>/dev/null | awk -v r="$1" \
			'$1 == "lb_ownership_forwarded_packets_total{reason=\"" r "\"}" { print $2 }')
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
declare -A UDP=()

# flush_rules: lb's policy rules on gateway 1 removed by hand, its own and the
# peers' (as "ip rule flush" would): lb puts them all back.
flush_rules() {
	local i
	in_so_gw 1 ip rule del fwmark 0x101 lookup 301 pref 100
	in_so_gw 1 ip rule del fwmark 0x1 lookup 100 pref 100
	for ((i = 0; i < 100; i++)); do
		in_so_gw 1 ip rule | grep -q 'fwmark 0x101 lookup 301' &&
			in_so_gw 1 ip rule | grep -q 'fwmark 0x1 lookup 100' && break
		sleep 0.05
	done
	lab_check "on: lb restored its policy rules, the peers' too" \
		sh -c "ip netns exec $(so_gw 1) ip rule | grep -q 'fwmark 0x101 lookup 301'"
}

# The whole run of events in MODE (off or on).
run() {
	local mode=$1
	if [[ $mode == on ]]; then
		# The tier starts without, and a reload of each gateway turns ownership on.
		SO_OWNERSHIP=0 start_all
		event on enable enable_all
	else
		start_all
	fi
	udp "$mode"
	ipv6 "$mode"
	event "$mode" drain drain
	for ((i = 0; i < 60; i++)); do
		running "${SO_LB_PID[2]}" || break
		sleep 0.1
	done
	lab_check "$mode: drained gateway 2 stopped by itself" not running "${SO_LB_PID[2]}"
	wait "${SO_LB_PID[2]}" 2>/dev/null
	SO_LB_PID[2]=
	event "$mode" add add
	event "$mode" stall stalled
	event "$mode" kill killed
	if [[ $mode == on ]]; then
		so_lbctl 1 status >"$LAB_DIR/status-on" 2>&1
		so_lbctl 1 metrics >"$LAB_DIR/metrics-on" 2>&1
	fi
	event "$mode" restart restarted
	[[ $mode == on ]] && flush_rules
	stop_all
}
not() { ! "$@"; }

SO_OWNERSHIP=0
run off
off_lost=0
for k in drain add stall kill restart; do
	off_lost=$((off_lost + $(lost_on "off.$k" 1 2 3)))
done
lab_check "without ownership, the tier's changes cost connections ($off_lost lost)" \
	test "$off_lost" -gt 0

SO_OWNERSHIP=1
so_lb_start 1
has_maps() { in_so_gw 1 nft list map inet lb bucket_owner >/dev/null; }
lab_check "with ownership, lb installs the bucket maps" has_maps
# A reload with a bad ownership block is refused, by JSON path, and changes nothing.
cfg1=$LAB_DIR/lb-gw1.json
jq '.ownership.self = "gw9"' "$cfg1" >"$cfg1.bad" && cp "$cfg1" "$cfg1.good" && mv "$cfg1.bad" "$cfg1"
out=$(so_lbctl 1 reload 2>&1)
lab_check "a bad ownership block on reload is refused: $out" grep -q 'ownership.self: no peer named "gw9"' <<<"$out"
lab_check "... and the bucket maps stay" has_maps
# A reload with a new rule priority, or without its IPv6 VIPs, keeps the
# forwarding to the peers that the new config still uses: each peer's table
# keeps its default route (it went with the old rule, or with the old IPv6
# one), and the rules move to the new priority.
peer_routes() { # FAMILY: the default routes in gateway 1's tables of peers gw2 and gw3
	in_so_gw 1 ip "$1" route show table 301 2>/dev/null
	in_so_gw 1 ip "$1" route show table 302 2>/dev/null
}
# n_rules PRIORITY: gateway 1's rules forwarding to peer gw2 at that priority, both families.
n_rules() { { in_so_gw 1 ip -4 rule show; in_so_gw 1 ip -6 rule show; } 2>/dev/null |
	grep -c "^$1:.*fwmark 0x101 lookup 301"; }
reload1() { # WHAT JQ: gateway 1 reloads into its good config changed by JQ
	jq "$2" "$cfg1.good" >"$cfg1"
	out=$(so_lbctl 1 reload 2>&1)
	lab_check "$1 on reload: $out" grep -q '^reloaded' <<<"$out"
}
[[ $(peer_routes -4 | grep -c '^default via') == 2 && $(peer_routes -6 | grep -c '^default via') == 2 ]] ||
	lab_fail "gateway 1 has not both families' routes to both peers: $(peer_routes -4; peer_routes -6)"
reload1 "a new rule priority" '.intercept.rule_priority = 150'
lab_check "... the peers' tables keep both families' routes" \
	test "$(peer_routes -4 | grep -c '^default via') $(peer_routes -6 | grep -c '^default via')" = "2 2"
lab_check "... the rules to gw2 moved from priority 100 to 150" test "$(n_rules 100) $(n_rules 150)" = "0 2"
lab_check "... the intercept table keeps its local route" \
	sh -c "ip netns exec $(so_gw 1) ip route show table 100 | grep -q '^local default'"
reload1 "IPv4 VIPs and backends only" \
	'.services |= map(.vips |= map(select(startswith("[") | not)) | .backends |= map(select(.address | startswith("[") | not)))'
lab_check "... the peers' tables keep their IPv4 routes" test "$(peer_routes -4 | grep -c '^default via')" = 2
lab_check "... and lose their IPv6 ones" test -z "$(peer_routes -6)"
lab_check "... one rule to gw2 (IPv4) at priority 100, none at 150" test "$(n_rules 100) $(n_rules 150)" = "1 0"
mv "$cfg1.good" "$cfg1"
stop_all
run on
# A stopped lb leaves nothing behind (gateway 3's killed lb's leftovers included).
leftovers() {
	local n
	for n in 1 2 3; do
		in_so_gw "$n" ip rule | grep -E 'fwmark 0x10[0-2] '
		in_so_gw "$n" ip -6 rule | grep -E 'fwmark 0x10[0-2] '
		# (A table that was never filled, or was emptied, does not exist: no output.)
		in_so_gw "$n" ip route show table 300 2>/dev/null
		in_so_gw "$n" ip route show table 301 2>/dev/null
		in_so_gw "$n" ip route show table 302 2>/dev/null
		in_so_gw "$n" ip -6 route show table 301 2>/dev/null
		in_so_gw "$n" nft list tables | grep -w lb
	done
	return 0
}
LEFT=$(leftovers)
[[ -z $LEFT ]] || sed 's/^/  | /' <<<"$LEFT" >&2
lab_check "stopped gateways left no peer rule, route or table" test -z "$LEFT"
lab_check "on enable (each gateway reloads into ownership): 0 lost (${LOST[on.enable]})" \
	test "$(lost_on on.enable 1 2 3)" = 0
lab_check "on drain: 0 lost on every gateway (${LOST[on.drain]})" \
	test "$(lost_on on.drain 1 2 3)" = 0
lab_check "on add (and a reload of gateway 1): 0 lost (${LOST[on.add]})" \
	test "$(lost_on on.add 1 2 3)" = 0
lab_check "on stall of gateway 2's master: the others found it dead" \
	grep -q "peer gw2 serving -> dead" "${SO_LB_LOG[1]}"
lab_check "on stall of gateway 2's master: 0 lost (${LOST[on.stall]})" \
	test "$(lost_on on.stall 1 2 3)" = 0
lab_check "on kill (and a reload of gateway 2): 0 lost on the survivors (${LOST[on.kill]})" \
	test "$(lost_on on.kill 1 2)" = 0

lab_check "on restart of the killed gateway: 0 lost (${LOST[on.restart]})" \
	test "$(lost_on on.restart 1 2 3)" = 0
# About 600 ms here on a quiet box (dead_ms 500, heartbeats every 100 ms, polled
# through lbctl); the bound leaves room for a loaded one.
lab_check "a SIGKILLed peer leaves the table within 3 s (dead_ms 500; $DEAD_MS ms)" \
	test "$DEAD_MS" -le 3000
fwd() {
	awk -v r="$1" '$1 == "lb_ownership_forwarded_packets_total{reason=\"" r "\"}" { print $2 }' \
		"$LAB_DIR/metrics-on"
}
lab_log "gateway 1 forwarded: to owner $(fwd to_owner), second chance $(fwd second_chance), dropped $(fwd dropped)"
if command -v promtool >/dev/null; then
	lab_check "ownership metrics pass promtool's lint" \
		promtool check metrics <"$LAB_DIR/metrics-on"
fi
lab_check "metrics count packets forwarded to their owner" test "$(fwd to_owner)" -gt 0
lab_check "... and second chances (the drained gateway's and the rejoined one's)" \
	test "$(fwd second_chance)" -gt 0
lab_check "status shows the table: gw1 and gw2 own buckets, gw3 none" \
	awk '/peer gw1 .* serving .*owns +[1-9]/ { a++ } /peer gw2 .* serving .*owns +[1-9]/ { b++ }
		/peer gw3 .* dead .*owns +0,/ { c++ } END { exit !(a && b && c) }' "$LAB_DIR/status-on"
sed 's/^/  | /' "$LAB_DIR/status-on" | grep -A4 ownership: >&2
printf '%-8s %-26s %-26s\n' event "off: lost/held gw1 gw2 gw3" "on: lost/held gw1 gw2 gw3" |
	tee -a "$LAB_DIR/table" >&2
for k in enable drain add stall kill restart; do
	printf '%-8s %-26s %-26s\n' "$k" "${LOST[off.$k]:--}" "${LOST[on.$k]}" | tee -a "$LAB_DIR/table" >&2
done
lab_log "ownership: done in $((($(lab_now_ms) - T0) / 1000)) s"
