#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Three lb gateways behind a BIRD router doing ECMP (tests/lab_scaleout.sh,
# dist/bird/, dist/return-path/), as docs/scale-out.md deploys them:
#  - nothing is announced before lb runs; once the three are ready, the
#    router has one route per VIP address (IPv4 and IPv6) through all three;
#  - 3,000 IPv4 and 1,500 IPv6 new connections spread over the gateways
#    within +-20% of an even share;
#  - backends see the real client address through every gateway, on both
#    return-path recipes (marks on be1, conntrack marks on be2), and Maglev
#    sends a client to the same backend whichever gateway it came through;
#  - a service losing its only backend is withdrawn (by every gateway)
#    within its health checks' fall time plus a second, and comes back;
#  - lbctl drain-gateway takes a gateway off the router within a second
#    while new connections keep succeeding; status shows the drain, and
#    with --stop lb stops by itself at the drain timeout;
#  - a gateway that starts again is back on the router within 2 s;
#  - SIGKILL of a gateway's lb takes it off the router within 1 s (its
#    TUN device dies with it), and new connections all succeed again
#    within 3 s (tens of ms when the box is not busy);
#  - a gateway cut off the uplink (switch port down: only BFD can tell)
#    is off the router within 2 s, new connections all succeed again
#    within 4 s (~300 ms), and it is back once the link is;
#  - at the end every lb stops cleanly, withdrawing first.
# Long-lived connections during the events are counted, not asserted:
# hash-threshold ECMP remaps flows of surviving gateways (issue 19).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=scale-out
. "$LB_SRCDIR/tests/lab.sh"
. "$LB_SRCDIR/tests/lab_scaleout.sh"
so_skip_unless_ready
# Stops (drains) in a second: connections the router moved away linger in lb until then.
SO_DRAIN_MS=1000
T0=$(lab_now_ms)
not() { ! "$@"; }
so_up
so_backends_start

so_bird_router
for n in 1 2 3; do
	so_bird_gateway "$n"
done
sessions() { so_birdc rt show protocols 2>/dev/null | grep -c Established; }
for ((i = 0; i < 150; i++)); do
	[[ $(sessions) -ge 6 ]] && break
	sleep 0.1
done
lab_check "six BGP sessions (IPv4 and IPv6 to three gateways) up ($(sessions))" \
	test "$(sessions)" -ge 6
lab_check "no VIP route while no lb runs" \
	test "$(so_nexthops $SO_VIP4)" = 0 -a "$(so_nexthops $SO_VIP6)" = 0

for n in 1 2 3; do
	so_lb_start "$n"
done
for vip in $SO_VIP4 $SO_VIP6 $SO_SOLO4; do
	ms=$(so_wait_nexthops "$vip" 3 10) || {
		in_rt ip route; in_rt ip -6 route
		lab_fail "the router has no route to $vip through the three gateways"
	}
	lab_log "ok: $vip through 3 gateways ($ms ms after the last lb was ready)"
done
lab_check "lb announced only once ready" awk '
	/ready:/ && !r { r = NR } / announced"/ && !a { a = NR }
	END { exit !(r && a && r < a) }' "${SO_LB_LOG[1]}"
routes=$(in_so_gw 1 ip -4 route show table $SO_TABLE)
lab_check "the VIP routes are lb's: table $SO_TABLE, protocol $SO_PROTO, device lb-announce" \
	grep -q "^$SO_VIP4 dev lb-announce proto $SO_PROTO" <<<"$routes"

# One request per path first: fresh IPv6 neighbours may cost a SYN.
for ((i = 0; i < 4; i++)); do
	in_cli curl -gsS -o /dev/null --max-time 5 --interface "${SO_CLI4[i]}" "http://$SO_VIP4/"
	in_cli curl -gsS -o /dev/null --max-time 5 --interface "${SO_CLI6[i]}" "http://[$SO_VIP6]/"
done

# Spread: new connections from many source ports and addresses.
spread() {
	local vip=$1 n=$2 before after srcs=() a i d min max
	if [[ $vip == *:* ]]; then
		for a in "${SO_CLI6[@]}"; do srcs+=(-b "$a"); done
	else
		for a in "${SO_CLI4[@]}"; do srcs+=(-b "$a"); done
	fi
	read -ra before <<<"$(so_gw_counts echo)"
	in_cli "$PEER" churn "${srcs[@]}" -n "$n" -p 32 -e "$(so_addr "$vip" 9000)" >/dev/null ||
		lab_fail "$n connections to $vip:9000 did not all succeed"
	read -ra after <<<"$(so_gw_counts echo)"
	d=() min=$n max=0
	for i in 0 1 2; do
		d[i]=$((after[i] - before[i]))
		((d[i] < min)) && min=${d[i]}
		((d[i] > max)) && max=${d[i]}
	done
	lab_log "$vip: $n connections over the gateways: ${d[*]}"
	# Within +-20% of n/3: 15 * d between 4n and 6n.
	lab_check "$vip: every gateway within 20% of an even share" \
		test $((15 * min)) -ge $((4 * n)) -a $((15 * max)) -le $((6 * n))
}
spread $SO_VIP4 3000
spread $SO_VIP6 1500

# Real client addresses through every gateway, and Maglev's same backend
# whichever gateway a client's connection took.
: >"$LAB_DIR/web.out"
for a in "${SO_CLI4[@]:0:8}" "${SO_CLI6[@]:0:4}"; do
	url=http://$SO_VIP4/
	[[ $a == *:* ]] && url=http://[$SO_VIP6]/
	for ((i = 0; i < 6; i++)); do
		printf '%s ' "$a" >>"$LAB_DIR/web.out"
		in_cli curl -gsS --max-time 5 --interface "$a" "$url" >>"$LAB_DIR/web.out" ||
			lab_fail "request from $a to $url"
	done
done
lab_check "every reply names the client's own address" awk '
	{ c = $3; sub(/^client=/, "", c); if (c != $1) bad++ }
	END { exit !(NR == 72 && !bad) }' "$LAB_DIR/web.out"
lab_check "Maglev: each client got one backend" awk '
	{ b[$1] = b[$1] == "" || b[$1] == $2 ? $2 : "mixed" }
	END { for (c in b) if (b[c] == "mixed") exit 1 }' "$LAB_DIR/web.out"
sleep 0.5
for n in 1 2 3; do
	grep 'event=access service=web ' "${SO_LB_LOG[n]}" |
		sed -n "s/.* client=\(.*\):[0-9]* vip=.* backend=\([^ ]*\).*/\1 \2 $n/p"
done | tr -d '[]' >"$LAB_DIR/web.access"
for n in 1 2 3; do
	lab_check "gateway $n served clients by their own addresses" \
		grep -Eq "^(198\.18\.0\.|2001:db8::)[0-9]+ .* $n\$" "$LAB_DIR/web.access"
done
multi=$(awk '{ g[$1] = g[$1] " " $3 } END {
	for (c in g) { split(g[c], a, " "); delete s; k = 0
		for (i in a) if (!(a[i] in s)) { s[a[i]] = 1; k++ }
		if (k > 1) m++ }
	print m + 0 }' "$LAB_DIR/web.access")
lab_check "clients whose connections took several gateways: $multi of 12 (same backend each)" \
	test "$multi" -ge 8

# Health: the solo service's only backend goes away and comes back.
so_solo_stop
t0=$(lab_now_ms)
ms=$(so_wait_nexthops $SO_SOLO4 0 5) || lab_fail "$SO_SOLO4 still routed 5 s after its backend went"
# fall 2 x interval 300 ms (+ timeout 250 ms) is when the checks can tell.
lab_check "$SO_SOLO4 withdrawn $ms ms after its only backend stopped (checks take 850)" \
	test "$ms" -le 1850
lab_check "status says why" grep -q "$SO_SOLO4 not announced: no usable backend" \
	<<<"$(so_lbctl 2 status)"
lab_check "$SO_VIP4 stays on all three" test "$(so_nexthops $SO_VIP4)" = 3
so_solo_start
ms=$(so_wait_nexthops $SO_SOLO4 3 5) || lab_fail "$SO_SOLO4 not back 5 s after its backend"
lab_log "ok: $SO_SOLO4 announced again $ms ms after its backend came back"

# event NAME ACTION...: long-lived connections and a probe of new ones
# across ACTION, which sets EVENT_MS; reports losses per gateway.
event() {
	local name=$1
	shift
	so_ping_start $SO_VIP4 9000 90
	so_probe_start $SO_VIP4 9000 4 100
	sleep 0.5
	"$@"
	sleep 2
	so_ping_stop
	so_probe_wait
	lab_log "$name: long-lived connections lost/held per gateway: $(so_ping_lost)"
	PROBE=$(so_probe_report "$EVENT_MS")
	lab_log "$name: new connections: $PROBE"
}

# leaves WHAT LIMIT_MS ACTION...: ACTION (from EVENT_MS on) must take one
# gateway off the router's route within LIMIT_MS.
leaves() {
	local what=$1 limit=$2 ms
	shift 2
	EVENT_MS=$(lab_now_ms)
	"$@" >/dev/null
	ms=$(so_wait_nexthops $SO_VIP4 2 5) || lab_fail "$what gateway still routed 5 s later"
	lab_check "$what gateway off the router within $limit ms ($ms ms)" test "$ms" -le "$limit"
}

# recovered LIMIT_MS WHAT: the last event's new connections all succeeded again within LIMIT_MS.
recovered() {
	local rec=${PROBE##* recovered }
	rec=${rec%% *}
	((rec <= $1)) || awk -v ev="$EVENT_MS" '/^churn: fail/ {
		$3 = "+" ($3 - ev) " ms"; print "  | " $0 }' "$SO_PROBE_LOG" >&2
	lab_check "new connections all succeed again within $1 ms of the $2 ($rec ms)" \
		test "$rec" -le "$1"
}

drain() {
	leaves drained 1000 so_lbctl 2 drain-gateway --stop 4
	lab_check "status shows the drain" grep -q "^gateway: *draining since" \
		<<<"$(so_lbctl 2 status)"
	lab_check "metrics show the drain" grep -qx "lb_gateway_draining 1" \
		<<<"$(so_lbctl 2 metrics)"
}
event drain drain
# A drain withdraws gracefully: lb keeps accepting what still comes its way.
fails=${PROBE%% *}
lab_check "new connections through the drain: $fails failed (at most 1%)" test "$fails" -le 4
running() { kill -0 "$1" 2>/dev/null; }
for ((i = 0; i < 80; i++)); do
	running "${SO_LB_PID[2]}" || break
	sleep 0.1
done
lab_check "lb on gateway 2 stopped by itself at the drain's end" not running "${SO_LB_PID[2]}"
wait "${SO_LB_PID[2]}"
lab_check "... with status 0" test $? = 0
lab_check "... after the drain timeout, with connections still open" \
	grep -q "gateway drain: timeout with [0-9]* connections open" "${SO_LB_LOG[2]}"
lab_check "... and its device and routes went" \
	test -z "$(in_so_gw 2 ip -4 route show table $SO_TABLE 2>&1; in_so_gw 2 ip -o link 2>&1 | grep lb-announce)"

readd() {
	EVENT_MS=$(lab_now_ms)
	so_lb_start 2
	so_wait_nexthops $SO_VIP4 3 5 >/dev/null || lab_fail "gateway 2 not back 5 s after it started"
	lab_check "restarted gateway on the router within 2 s of starting ($(($(lab_now_ms) - EVENT_MS)) ms)" \
		test $(($(lab_now_ms) - EVENT_MS)) -le 2000
}
event added readd

event killed leaves killed 1000 so_lb_kill 3
recovered 3000 kill
so_lb_start 3
so_wait_nexthops $SO_VIP4 3 5 >/dev/null || lab_fail "gateway 3 not back after its restart"

# Only BFD can tell: the router's own link stays up.
event cut leaves cut-off 2000 so_link 1 down
recovered 4000 cut
so_link 1 up
ms=$(so_wait_nexthops $SO_VIP4 3 20) || lab_fail "gateway 1 not back 20 s after its link"
lab_log "ok: gateway 1 back on the router $ms ms after its link"

# lb closes what it still holds for clients long gone, so that no backend
# process is left with connections to leak at its end (sanitizer builds).
for n in 1 2 3; do
	kill -TERM "${SO_LB_PID[n]}" 2>/dev/null
done
for n in 1 2 3; do
	wait "${SO_LB_PID[n]}"
	lab_check "lb on gateway $n stopped cleanly" test $? = 0
done
lab_check "and withdrew first" grep -q "withdrawn: lb is stopping" "${SO_LB_LOG[1]}"
sleep 0.3
lab_log "scale-out: done in $((($(lab_now_ms) - T0) / 1000)) s"
