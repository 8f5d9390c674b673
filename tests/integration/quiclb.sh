#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# QUIC-aware routing (issue 17) with the QUIC-LB test peer
# (tests/tools/quicpeer): three servers (server IDs 0a01, 0a02, 0a03)
# behind two lb workers and a roundrobin scheduler, which on its own sends
# each new client port to another server.
#  - QUIC-LB: a client that changes its source port and address on every
#    packet reaches the one server whose ID its CID carries, IPv4 and IPv6;
#    an unroutable short header (config rotation 0b111) is dropped and
#    counted; a long header of an unknown version is answered.
#  - Migration: a client that moves to a new CID with each new port (CIDs
#    handed out inside the payload, as NEW_CONNECTION_ID frames are, so lb
#    never saw them) stays on its server by QUIC-LB, and is dropped and
#    counted by a service that only learns CIDs.
#  - Learned CIDs, no QUIC-LB: the server's SCID from its long header routes
#    the client's later packets from any port to that server, whichever
#    worker gets them; and still after a reload that reorders the
#    backends, as the table lives in the pool every generation shares. The
#    reload carries the services' UDP and QUIC counters over.
#  - A worker killed under a client: the client's next packets, from the
#    same port, open a new flow on a new worker, which the learned CID
#    sends to the same server.
#  - Without "quic" the same rotating client is spread over the servers and
#    fails: what the routing above prevents.
#  - Counters in lbctl services and the metrics; the drop logged; access
#    lines say how each flow was routed (qlb's flows end 2 s after their
#    last datagram, and so log theirs before the workers are killed).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=quiclb
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq
lab_need_lb
QUICPEER=${QUICPEER:-${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/quicpeer}
[[ -x $QUICPEER ]] || lab_skip "quicpeer not built: $QUICPEER"
LBCTL=${LBCTL:-${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl}
lab_up

CONF=1:2:6
BE4=("${LAB_BE_IP4[@]}") BE6=("${LAB_BE_IP6[@]}")
# name sid ipv4-port ipv6-port: alpha and gamma share an address, on two ports.
SERVERS=("alpha 0a01 ${BE4[0]}:4433 [${BE6[0]}]:4433" "beta 0a02 ${BE4[1]}:4433 [${BE6[1]}]:4433"
	"gamma 0a03 ${BE4[0]}:4434 [${BE6[0]}]:4434")
for s in "${SERVERS[@]}"; do
	read -r name sid a4 a6 <<<"$s"
	lab_bg "$LAB_BE" "$LAB_DIR/$name.log" "$QUICPEER" server -i "$sid" -c $CONF -N "$name" "$a4" "$a6"
done
for s in "${SERVERS[@]}"; do
	read -r name _ <<<"$s"
	lab_wait_grep "$LAB_DIR/$name.log" ' ready$' 5 >/dev/null || lab_fail "$name not ready"
done

# backends FIRST...: the three servers (IPv4 and IPv6) as a backends array,
# in the order given (indexes into SERVERS), with their server IDs when
# WITH_SID is set.
backends() {
	local i out='' sep='' name sid a4 a6 id
	for i in "$@"; do
		read -r name sid a4 a6 <<<"${SERVERS[i]}"
		id=
		[[ -n ${WITH_SID:-} ]] && id=', "quic_server_id": "'$sid'"'
		out+="$sep"'{"address": "'$a4'"'"$id"'}, {"address": "'$a6'"'"$id"'}'
		sep=', '
	done
	echo "[$out]"
}
# config ORDER...: the three services, backends in that order.
config() {
	cat <<EOF
{
	"workers": 2, "access_log": true,
	"control": {"path": "$LAB_DIR/lb.sock"},
	"intercept": {"port": 50080, "mark": 1, "table": "lb", "route_table": 100},
	"services": [{
		"name": "qlb", "protocol": "udp", "vips": ["$LAB_VIP4:443", "[$LAB_VIP6]:443"],
		"udp_idle_timeout_ms": 2000,
		"quic": {"lb": {"config_id": 1, "server_id_len": 2, "nonce_len": 6}},
		"backends": $(WITH_SID=1 backends "$@")
	}, {
		"name": "qlearn", "protocol": "udp", "vips": ["$LAB_VIP4:4443"],
		"quic": {"server_cid_len": 9},
		"backends": $(backends "$@")
	}, {
		"name": "plain", "protocol": "udp", "vips": ["$LAB_VIP4:8443"],
		"backends": $(backends "$@")
	}]
}
EOF
}
CFG=$LAB_DIR/lb.json
config 0 1 2 >"$CFG"
lab_lb_start "$CFG"

# client LOG ARGS...: the quicpeer client in the client namespace; its status in RC.
client() {
	local log=$1
	shift
	RC=0
	in_cli "$QUICPEER" client "$@" >"$LAB_DIR/$log" 2>&1 || RC=$?
}
show() { sed 's/^/  | /' "$LAB_DIR/$1" >&2; }
quic() { lab_ctl_call '{"cmd": "services"}' | jq -c ".data[] | select(.name == \"$1\") | .udp.quic"; }
# counter SERVICE KEY: one of a service's QUIC counters.
counter() { quic "$1" | jq ".$2"; }
ROTATE=(-r -b "${LAB_CLI_IP4[0]}" -b "${LAB_CLI_IP4[1]}" -b "${LAB_CLI_IP4[2]}" -b "${LAB_CLI_IP4[3]}")

lab_log "checking: QUIC-LB, 20 packets from 20 ports on 4 addresses reach one server; unroutable dropped; unknown version passes"
client qlb.log -c $CONF "${ROTATE[@]}" -n 20 -u dropped -x 0x1a2a3a4a "$LAB_VIP4:443"
[[ $RC -eq 0 ]] || { show qlb.log; lab_lb_log; lab_fail "QUIC-LB client exited $RC"; }
grep -qE '^quicpeer: 20/20 short packets answered by server 0a0[123] from 20 source ports$' "$LAB_DIR/qlb.log" ||
	{ show qlb.log; lab_fail "not all 20 answered by one server"; }
grep -q '^quicpeer: unroutable short dcid=[ef].* no answer$' "$LAB_DIR/qlb.log" ||
	{ show qlb.log; lab_fail "the unroutable packet was answered"; }
grep -q '^quicpeer: version 0x1a2a3a4a from .*: answered by server' "$LAB_DIR/qlb.log" ||
	{ show qlb.log; lab_fail "the unknown version was not answered"; }
q=$(quic qlb)
(($(jq .routed_cid <<<"$q") >= 20 && $(jq .dropped <<<"$q") >= 1 && $(jq .fallback <<<"$q") >= 2)) ||
	lab_fail "qlb counters after the rotating client: $q (want routed_cid >= 20, dropped >= 1, fallback >= 2)"
lab_wait_grep "$LAB_LB_LOG" 'service qlb: udp: unroutable connection ID .* for client' 3 >/dev/null ||
	{ lab_lb_log; lab_fail "the drop was not logged"; }
lab_log "ok: $(grep 'short packets answered' "$LAB_DIR/qlb.log" | cut -c11-); counters $q"

lab_log "checking: QUIC-LB over IPv6"
client qlb6.log -c $CONF -r -n 5 "[$LAB_VIP6]:443"
[[ $RC -eq 0 ]] && grep -qE '^quicpeer: 5/5 short packets answered by server 0a0[123] from 5 source ports$' \
	"$LAB_DIR/qlb6.log" || { show qlb6.log; lab_fail "IPv6 QUIC-LB client ($RC)"; }
lab_log "ok: IPv6, 5 ports, one server"

lab_log "checking: migration, a new CID never seen by lb on every new port: QUIC-LB follows it"
before=$(counter qlb routed_cid)
client migrate.log -c $CONF "${ROTATE[@]}" -m -n 20 "$LAB_VIP4:443"
[[ $RC -eq 0 ]] && grep -qE '^quicpeer: 20/20 short packets answered by server 0a0[123] from 20 source ports$' \
	"$LAB_DIR/migrate.log" || { show migrate.log; lab_fail "migrating client through QUIC-LB ($RC)"; }
n=$(grep -E '^quicpeer: short [0-9]+ from ' "$LAB_DIR/migrate.log" | awk '{ print $NF }' | sort -u | wc -l)
((n == 20)) || { show migrate.log; lab_fail "the client used $n CIDs, not 20"; }
after=$(counter qlb routed_cid)
((after - before >= 20)) || lab_fail "routed_cid moved by $((after - before)), want >= 20"
lab_log "ok: 20 new CIDs from 20 ports, one server; routed_cid +$((after - before))"

lab_log "checking: learned CIDs (no QUIC-LB): the server's SCID routes 20 rotating ports to it"
before=$(counter qlearn routed_learned_cid)
client learn.log -c $CONF "${ROTATE[@]}" -n 20 "$LAB_VIP4:4443"
[[ $RC -eq 0 ]] && grep -qE '^quicpeer: 20/20 short packets answered by server 0a0[123] from 20 source ports$' \
	"$LAB_DIR/learn.log" || { show learn.log; lab_lb_log; lab_fail "rotating client through learned CIDs ($RC)"; }
after=$(counter qlearn routed_learned_cid)
((after - before >= 20)) || lab_fail "routed_learned_cid moved by $((after - before)), want >= 20"
(($(counter qlearn cids_learned) >= 1)) || lab_fail "qlearn learned no CID: $(quic qlearn)"
# The 20 ports' flows are still open: both workers hold some (the reuseport
# hash spreads them), so the CID learned by one routed for the other.
w=$(lab_ctl_call '{"cmd": "status"}' | jq '[.data.workers[] | select(.udp_flows > 0)] | length')
((w == 2)) || lab_fail "$w workers hold UDP flows, want 2: $(lab_ctl_call '{"cmd": "status"}' | jq -c .data.workers)"
lab_log "ok: learned CID, 20 ports, one server; routed_learned_cid +$((after - before)): $(quic qlearn)"

lab_log "checking: migration without QUIC-LB: new CIDs are unknown to lb, dropped and counted"
before=$(counter qlearn dropped)
client migrate-learn.log -c $CONF -r -m -n 2 -t 200 -T 2 "$LAB_VIP4:4443"
[[ $RC -eq 1 ]] && grep -q '^quicpeer: short 0 from .*: no answer$' "$LAB_DIR/migrate-learn.log" ||
	{ show migrate-learn.log; lab_fail "a migrating client without QUIC-LB was answered ($RC)"; }
after=$(counter qlearn dropped)
((after - before >= 2)) || lab_fail "qlearn dropped moved by $((after - before)), want >= 2"
lab_log "ok: no answer, dropped +$((after - before))"

lab_log "checking: without quic the rotating client is spread over the servers"
client plain.log -c $CONF "${ROTATE[@]}" -n 20 -t 500 -T 2 "$LAB_VIP4:8443"
n=$(grep -cE '^quicpeer: short [0-9]+ from .* unknown cid$' "$LAB_DIR/plain.log")
[[ $RC -eq 1 ]] && ((n > 0)) || { show plain.log; lab_fail "plain UDP client: exit $RC, $n misrouted"; }
lab_log "ok: $n of 20 packets reached a server that did not know the CID"

# held LOG ARGS...: a client in the background that waits after its Initial
# until $LAB_DIR/go exists; returns once the Initial was answered.
held() {
	local log=$1
	shift
	rm -f "$LAB_DIR/go"
	lab_bg "$LAB_CLI" "$LAB_DIR/$log" "$QUICPEER" client -c $CONF -W "$LAB_DIR/go" "$@"
	HELD_PID=$LAB_BG_PID
	lab_wait_grep "$LAB_DIR/$log" '^quicpeer: initial from ' 5 >/dev/null ||
		{ show "$log"; lab_fail "$log: no answer to the Initial"; }
}
# release LOG N PORTS: lets the held client go on; its N short packets must
# all be answered by one server, from PORTS source ports.
release() {
	touch "$LAB_DIR/go"
	wait "$HELD_PID" || { show "$1"; lab_lb_log; lab_fail "$1: the client failed"; }
	grep -qE "^quicpeer: $2/$2 short packets answered by server 0a0[123] from $3 source ports\$" \
		"$LAB_DIR/$1" || { show "$1"; lab_fail "$1: not all $2 answered by one server"; }
}

lab_log "checking: a reload that reorders the backends keeps the learned CIDs"
gen=$(lab_ctl_call '{"cmd": "status"}' | jq .data.generation)
held reload-client.log "${ROTATE[@]}" -n 10 "$LAB_VIP4:4443"
# Every UDP and QUIC counter of the services, as "name value" lines.
counters() {
	lab_ctl_call '{"cmd": "services"}' | jq -r '.data[] | .name as $s | .udp | del(.flows) |
		paths(numbers) as $p | "\($s).\($p | join(".")) \(getpath($p))"' | sort
}
counters >"$LAB_DIR/counters-before"
config 2 1 0 >"$CFG"
kill -HUP "$LAB_LB_PID"
for ((i = 0; i < 100; i++)); do
	st=$(lab_ctl_call '{"cmd": "status"}')
	[[ $(jq .data.generation <<<"$st") -gt $gen ]] &&
		[[ $(jq "[.data.workers[] | select(.generation > $gen and .state == \"running\")] | length" <<<"$st") -eq 2 ]] &&
		break
	sleep 0.1
done
((i < 100)) || { lab_lb_log; lab_fail "the reload did not bring up generation $((gen + 1))"; }
release reload-client.log 10 10
lab_log "ok: after the reload to generation $((gen + 1)), 10 new ports reached the server of the CID learned before"
# Counters are monotonic: the new generation starts from the old one's.
counters >"$LAB_DIR/counters-after"
join "$LAB_DIR/counters-before" "$LAB_DIR/counters-after" | awk '$3 < $2 { print; bad = 1 } END { exit bad }' >&2 ||
	lab_fail "counters went back across the reload"
lab_log "ok: $(wc -l <"$LAB_DIR/counters-before") UDP and QUIC counters carried across the reload"

lab_log "checking: the workers killed under a client: its next packets reach the same server"
before=$(counter qlearn routed_learned_cid)
held kill-client.log -n 5 "$LAB_VIP4:4443"
old=$(pgrep -P "$LAB_LB_PID" | sort)
# shellcheck disable=SC2086 # one pid per word
kill -KILL $old
for ((i = 0; i < 100; i++)); do
	st=$(lab_ctl_call '{"cmd": "status"}')
	running=$(jq -r '.data.workers[] | select(.state == "running") | .pid' <<<"$st" | sort)
	[[ $(wc -w <<<"$running") -eq 2 ]] && [[ -z $(comm -12 <(echo "$old") <(echo "$running")) ]] && break
	sleep 0.1
done
((i < 100)) || { lab_lb_log; lab_fail "the workers were not replaced"; }
release kill-client.log 5 1
after=$(counter qlearn routed_learned_cid)
((after > before)) || lab_fail "the new flow was not routed by the learned CID: $(quic qlearn)"
lab_log "ok: the client's port came back through a new worker to the same server"

lab_log "checking: lbctl and metrics"
out=$("$LBCTL" -s "$LAB_DIR/lb.sock" services)
grep -qE '^qlb +udp .* [0-9]+/[0-9]+/[0-9]+/[1-9][0-9]* ' <<<"$out" || { echo "$out" >&2; lab_fail "lbctl services: qlb's QUIC column"; }
grep -qE '^plain +udp .* - ' <<<"$out" || { echo "$out" >&2; lab_fail "lbctl services: plain has no QUIC column"; }
m=$(lab_ctl_call '{"cmd": "metrics"}' | jq -r .data)
for re in 'lb_service_quic_routed_total\{service="qlb",by="cid"\} [1-9]' \
	'lb_service_quic_routed_total\{service="qlearn",by="learned_cid"\} [1-9]' \
	'lb_service_quic_dropped_total\{service="qlb"\} [1-9]' \
	'lb_service_quic_cids_learned_total\{service="qlearn"\} [1-9]'; do
	grep -qE "^$re" <<<"$m" || lab_fail "metrics: no line matching $re"
done
grep -q 'service="plain"' <<<"$(grep '^lb_service_quic' <<<"$m")" && lab_fail "metrics: plain has QUIC series"
if command -v promtool >/dev/null 2>&1; then
	promtool check metrics <<<"$m" >&2 || lab_fail "promtool check metrics"
fi
lab_log "ok: lbctl services and the metrics show the QUIC counters"

lab_lb_stop || lab_fail "lb exited with status $?"
for r in cid learned scheduler; do
	grep -qE "event=access proto=udp service=q(lb|learn) .* end=[a-z]+ route=$r$" "$LAB_LB_LOG" ||
		{ lab_lb_log; lab_fail "no access line with route=$r"; }
done
grep -qE 'event=access proto=udp service=plain .* route=' "$LAB_LB_LOG" && lab_fail "plain flows have a route"
lab_log "ok: access lines end with route=cid, learned and scheduler"
lab_log "PASS"
