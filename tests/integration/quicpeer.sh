#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The QUIC-LB test peer (tests/tools/quicpeer) against itself, without lb:
# the client reaches two servers (server IDs 0a01 and 0a02) routed through
# the lab's gateway. This shows what the QUIC routing tests will rely on:
#  - a client that changes source port and address on every packet is
#    answered, byte for byte, by the server whose CID it carries, which
#    sees the client's real addresses; IPv4 and IPv6;
#  - an unknown version's long header is answered; with nothing dropping
#    it, an unroutable short header is answered too;
#  - and that the client notices what a broken balancer would do: packets
#    that reach the other server (which does not know the CID), a CID that
#    does not encode the server's ID, an unroutable packet answered when it
#    should have been dropped, no answer at all.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
QUICPEER=${QUICPEER:-${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/quicpeer}
[[ -x $QUICPEER ]] || lab_skip "quicpeer not built: $QUICPEER"
lab_up

PORT=4433
CONF=1:2:6
A4=${LAB_BE_IP4[0]}:$PORT
B4=${LAB_BE_IP4[1]}:$PORT
B6=[${LAB_BE_IP6[1]}]:$PORT

lab_bg "$LAB_BE" "$LAB_DIR/alpha.log" "$QUICPEER" server -i 0a01 -c $CONF -N alpha "$A4" "[${LAB_BE_IP6[0]}]:$PORT"
ALPHA=$LAB_BG_PID
lab_bg "$LAB_BE" "$LAB_DIR/beta.log" "$QUICPEER" server -i 0a02 -c $CONF -N beta "$B4" "$B6"
for s in alpha beta; do
	lab_wait_grep "$LAB_DIR/$s.log" ' ready$' 5 >/dev/null || { cat "$LAB_DIR/$s.log" >&2; lab_fail "$s not ready"; }
done

# client LOG ARGS...: run the client in the client namespace; its status in RC.
client() {
	local log=$1
	shift
	RC=0
	in_cli "$QUICPEER" client "$@" >"$LAB_DIR/$log" 2>&1 || RC=$?
}

show() {
	sed 's/^/  | /' "$LAB_DIR/$1" >&2
}

lab_log "checking: 20 packets, each from a new port and the next of 4 addresses, reach one server"
client rotate.log -c $CONF -r -n 20 -b "${LAB_CLI_IP4[0]}" -b "${LAB_CLI_IP4[1]}" -b "${LAB_CLI_IP4[2]}" \
	-b "${LAB_CLI_IP4[3]}" -x 0x1a2a3a4a -u answered "$A4"
[[ $RC -eq 0 ]] || { show rotate.log; lab_fail "rotating client exited $RC"; }
grep -q '^quicpeer: 20/20 short packets answered by server 0a01 from 20 source ports$' "$LAB_DIR/rotate.log" ||
	{ show rotate.log; lab_fail "not all 20 answered by 0a01"; }
n=$(grep -E '^quicpeer: short [0-9]+ from ' "$LAB_DIR/rotate.log" | grep -c ' server 0a01 (alpha) known cid$')
[[ $n -eq 20 ]] || { show rotate.log; lab_fail "$n of 20 short packets answered as known by alpha"; }
n=$(grep -oE '^quicpeer: short [0-9]+ from [0-9.]+:' "$LAB_DIR/rotate.log" | awk '{ print $5 }' | sort -u | wc -l)
[[ $n -eq 4 ]] || { show rotate.log; lab_fail "short packets came from $n addresses, not 4"; }
grep -q '^quicpeer: version 0x1a2a3a4a from .*: answered by server 0a01 (alpha)$' "$LAB_DIR/rotate.log" ||
	{ show rotate.log; lab_fail "unknown version not answered"; }
lab_log "ok: one server, known CID, 20 ports on 4 addresses; unknown version answered"

lab_log "checking: the server saw the client's own addresses and counted per source"
kill -USR1 "$ALPHA"
lab_wait_grep "$LAB_DIR/alpha.log" '^quicpeer: server 0a01 \(alpha\): 2 long, 21 short \(1 unknown dcid\), 0 bad from 23 sources$' 3 \
	>/dev/null || { show alpha.log; lab_fail "alpha's counts"; }
for a in "${LAB_CLI_IP4[@]}"; do
	grep -q "^quicpeer: source $a:[0-9]*: 0 long, 1 short$" "$LAB_DIR/alpha.log" ||
		{ show alpha.log; lab_fail "alpha saw no packet from $a"; }
done
lab_log "ok: counts per source, real client addresses"

lab_log "checking: IPv6; an unroutable DCID of another configuration (3)"
client v6.log -c $CONF -r -n 5 -u answered -k 3 "$B6"
[[ $RC -eq 0 ]] && grep -q '^quicpeer: 5/5 short packets answered by server 0a02 from 5 source ports$' "$LAB_DIR/v6.log" &&
	grep -q '^quicpeer: unroutable short dcid=[67][0-9a-f]\{17\} from \[.*: answered by server 0a02 (beta)$' \
		"$LAB_DIR/v6.log" || { show v6.log; lab_fail "IPv6 client ($RC)"; }
lab_log "ok: IPv6"

lab_log "checking: the client fails when packets reach the other server"
client split.log -c $CONF -n 4 "$A4" "$B4"
[[ $RC -eq 1 ]] || { show split.log; lab_fail "split client exited $RC, not 1"; }
grep -q '^quicpeer: short 1 from .*: server 0a02 (beta) unknown cid$' "$LAB_DIR/split.log" &&
	grep -q '^quicpeer: 2/4 short packets answered by server 0a01 ' "$LAB_DIR/split.log" ||
	{ show split.log; lab_fail "split client's report"; }
lab_log "ok: misrouted packets reported"

lab_log "checking: the client fails on an answered unroutable packet, a foreign CID, no answer"
client unroutable.log -c $CONF -n 1 -u dropped -t 200 -T 2 "$A4"
[[ $RC -eq 1 ]] && grep -q '^quicpeer: unroutable short: expected dropped$' "$LAB_DIR/unroutable.log" ||
	{ show unroutable.log; lab_fail "unroutable expected dropped ($RC)"; }
client conf.log -c 2:2:6 -n 1 -t 200 -T 2 "$A4"
[[ $RC -eq 1 ]] && grep -q "does not encode the server ID it names" "$LAB_DIR/conf.log" ||
	{ show conf.log; lab_fail "foreign configuration ($RC)"; }
client silent.log -n 1 -t 100 -T 2 "${LAB_BE_IP4[0]}:4499"
[[ $RC -eq 1 ]] && grep -q '^quicpeer: initial from .*: no answer$' "$LAB_DIR/silent.log" ||
	{ show silent.log; lab_fail "no server ($RC)"; }
lab_log "ok: each reported as a failure"
lab_log "PASS"
