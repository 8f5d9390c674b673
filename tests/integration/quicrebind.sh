#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# QUIC connections that survive a NAT rebinding (issue 17), with real QUIC
# peers: ngtcp2's gtlsclient downloads a 1 MiB file through a VIP with
# three gtlsserver backends (roundrobin, which on its own sends each new
# client port to another backend), and changes its local port 1 s after
# the handshake, before it asks for the file (--nat-rebinding: same
# connection ID, new port).
#  - QUIC routing on ("quic": {"server_cid_len": 18}, two workers): the lb
#    learned the server's CID from its long-header packets, so the client's
#    packets from the new port, whichever worker gets them, reach the same
#    server: the download is byte-exact, one server's log shows both of
#    the client's ports and the others show none of them; counted as
#    routed by a learned CID. Once more in ngtcp2's QUIC v2 draft
#    (0x709a50c4), a version lb does not know: it passes, and its long
#    headers' SCIDs are learned all the same (RFC 8999 fixes where they are).
#  - QUIC routing off (the same service without "quic", one worker): the
#    new port is a new flow, which roundrobin sends to another server; that
#    server does not know the connection, and the download fails.
#  - Migration (--change-local-addr without --nat-rebinding): the client
#    moves to a connection ID the server gave it in an encrypted
#    NEW_CONNECTION_ID frame, which lb never sees: its packets from the new
#    port are dropped and counted (no Debian QUIC server encodes QUIC-LB
#    server IDs; quiclb.sh shows QUIC-LB following such a move).
# LB_QUICREBIND_RUNS (2) downloads are made each way; LB_QUICREBIND_OFF_WORKERS
# (1) sets the workers without QUIC routing (with 2, a rebound flow may land
# on a worker whose roundrobin happens to pick the same server). With
# LB_QUICREBIND_RATES set, the failures without QUIC routing are only
# counted, not required (for docs/performance figures).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=quicrebind
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root gtlsclient gtlsserver openssl jq sha256sum
lab_need_lb
lab_up

RUNS=${LB_QUICREBIND_RUNS:-2}
OFF_WORKERS=${LB_QUICREBIND_OFF_WORKERS:-1}
CLI=${LAB_CLI_IP4[0]}	# gtlsclient has no source address option: c0's first one
SERVERS=("${LAB_BE_IP4[0]} 4433" "${LAB_BE_IP4[1]} 4433" "${LAB_BE_IP4[0]} 4434")

mkdir -p "$LAB_DIR/htdocs" "$LAB_DIR/dl"
head -c 1048576 /dev/urandom >"$LAB_DIR/htdocs/blob"
WANT=$(sha256sum <"$LAB_DIR/htdocs/blob" | cut -d' ' -f1)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=lb-test \
	-keyout "$LAB_DIR/key.pem" -out "$LAB_DIR/cert.pem" 2>/dev/null || lab_fail "openssl req"
for i in 0 1 2; do
	read -r addr port <<<"${SERVERS[i]}"
	lab_bg "$LAB_BE" "$LAB_DIR/h3-$i.log" gtlsserver --no-quic-dump --no-http-dump \
		-d "$LAB_DIR/htdocs" "$addr" "$port" "$LAB_DIR/key.pem" "$LAB_DIR/cert.pem"
done
for i in 0 1 2; do
	read -r addr port <<<"${SERVERS[i]}"
	for ((t = 0; t < 50; t++)); do
		ip netns exec "$LAB_BE" ss -Hlun "src $addr:$port" | grep -q . && break
		sleep 0.1
	done
	((t < 50)) || lab_fail "gtlsserver not up on $addr:$port"
done

# config WORKERS QUIC: the h3 service over the three servers; QUIC its "quic" member or empty.
config() {
	lab_config_with "\"workers\": $1" '{
		"name": "h3", "protocol": "udp", "vips": ["'"$LAB_VIP4"':443"], '"$2"'
		"backends": [{"address": "'"${LAB_BE_IP4[0]}"':4433"}, {"address": "'"${LAB_BE_IP4[1]}"':4433"},
			     {"address": "'"${LAB_BE_IP4[0]}"':4434"}]
	}'
}
quic() { lab_ctl_call '{"cmd": "services"}' | jq -c '.data[] | select(.name == "h3") | .udp.quic'; }

# download NAME ARGS...: one gtlsclient download through the VIP with ARGS.
# Sets OK (1: the file is byte-exact) and SEEN: for each server, the
# client ports its log shows in this run ("-" for none), e.g. "41000,52011 - -".
download() {
	local name=$1 i got ports
	shift
	local -a lines
	for i in 0 1 2; do
		lines[i]=$(wc -l <"$LAB_DIR/h3-$i.log")
	done
	rm -f "$LAB_DIR/dl/blob"
	in_cli timeout 30 gtlsclient -q --exit-on-all-streams-close --download="$LAB_DIR/dl" \
		--timeout=5s "$@" "$LAB_VIP4" 443 "https://$LAB_VIP4:443/blob" >"$LAB_DIR/$name.log" 2>&1
	got=$(sha256sum <"$LAB_DIR/dl/blob" 2>/dev/null | cut -d' ' -f1)
	OK=0
	[[ $got == "$WANT" ]] && OK=1
	SEEN=
	for i in 0 1 2; do
		ports=$(tail -n +"$((lines[i] + 1))" "$LAB_DIR/h3-$i.log" |
			grep -oE "^Received packet: .* remote=\\[$CLI\\]:[0-9]+" | sed 's/.*://' | sort -un |
			paste -sd, -)
		SEEN+="${SEEN:+ }${ports:--}"
	done
}
REBIND=(--change-local-addr=1s --delay-stream=2s --nat-rebinding)

lab_lb_start "$(config 2 '"quic": {"server_cid_len": 18},')"
lab_log "checking: with QUIC routing, $RUNS downloads with a NAT rebinding each"
# check_one NAME: the last download was byte-exact, served by one server that saw two ports.
check_one() {
	local i served=() ports='' seen
	read -r -a seen <<<"$SEEN"
	for i in 0 1 2; do
		[[ ${seen[i]} != - ]] && served+=("$i") && ports=${seen[i]}
	done
	((OK)) || { tail -n 20 "$LAB_DIR/$1.log" >&2; lab_lb_log; lab_fail "$1: the download failed"; }
	((${#served[@]} == 1)) || lab_fail "$1: ${#served[@]} servers saw the client ($SEEN), want 1"
	[[ $ports == *,* ]] || lab_fail "$1: the server saw one client port ($ports): no rebinding happened"
}
for ((r = 0; r < RUNS; r++)); do
	before=$(quic | jq .routed_learned_cid)
	download on-$r "${REBIND[@]}"
	after=$(quic | jq .routed_learned_cid)
	lab_log "run $r: byte-exact $OK, client ports seen per server: $SEEN; routed_learned_cid +$((after - before))"
	check_one on-$r
	((after > before)) || lab_fail "run $r: nothing routed by a learned CID: $(quic)"
done
lab_log "ok: $RUNS of $RUNS downloads byte-exact across a rebinding, each served by one server that saw both ports"

lab_log "checking: the same in QUIC v2 draft (0x709a50c4), a version lb does not know"
before=$(quic | jq .routed_learned_cid)
download v2draft -v v2draft "${REBIND[@]}"
after=$(quic | jq .routed_learned_cid)
lab_log "v2draft: byte-exact $OK, client ports seen per server: $SEEN; routed_learned_cid +$((after - before))"
check_one v2draft
((after > before)) || lab_fail "v2draft: nothing routed by a learned CID: $(quic)"
lab_log "ok: an unknown version passes, and its CIDs are learned"

lab_log "checking: with QUIC routing, migration to a new connection ID is dropped and counted"
# Once more if nothing was dropped: a busy box (the sanitizer stage) once
# delayed the handshake past the move, whose packets then still had long
# headers and were scheduled as a new flow. An lb that never drops fails both.
for attempt in 1 2; do
	before=$(quic | jq .dropped)
	download migrate --change-local-addr=1s --delay-stream=2s
	after=$(quic | jq .dropped)
	lab_log "migration (attempt $attempt): byte-exact $OK, client ports seen per server: $SEEN; dropped +$((after - before))"
	((OK == 0 && after > before)) && break
done
((OK == 0)) || lab_fail "the migrated download completed: lb cannot know the new connection ID"
((after > before)) || lab_fail "nothing dropped: $(quic)"
grep -q 'service h3: udp: short header with an unknown connection ID for client' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "the drop was not logged"; }
lab_log "ok: the migrated connection's packets were dropped and counted"
lab_lb_stop || lab_fail "lb exited with status $?"

lab_lb_start "$(config "$OFF_WORKERS" '')"
lab_log "checking: without QUIC routing ($OFF_WORKERS worker(s)), $RUNS downloads with a NAT rebinding each"
failed=0
for ((r = 0; r < RUNS; r++)); do
	download off-$r "${REBIND[@]}"
	lab_log "run $r: byte-exact $OK, client ports seen per server: $SEEN"
	((OK)) || failed=$((failed + 1))
done
lab_log "without QUIC routing: $failed of $RUNS downloads failed"
if [[ -z ${LB_QUICREBIND_RATES:-} ]]; then
	((failed == RUNS)) || lab_fail "$((RUNS - failed)) of $RUNS downloads survived the rebinding without QUIC routing"
fi
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
