#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Resets cross lb:
#  - a backend that resets the connection after the client's first bytes:
#    curl and peer client see a reset or a close within 2 s (not a hang);
#  - a backend that resets right after accepting, while the client sends
#    nothing and only waits: the client is reset or closed within 2 s;
#  - a client that resets 20 relayed connections (SO_LINGER 0): within 2 s the
#    backend has none of them left in any state, and it saw each end with a
#    reset, not a FIN.
# IPv4 and IPv6.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss
lab_need_lb peer
lab_up

cfg=$(lab_config "$(lab_svc rstlate 9010), $(lab_svc rstnow 9011), $(lab_svc echo 9012)")
be4=198.18.2.2 be6='[2001:db8:2::2]'
lab_peer_start "$LAB_BE" "$LAB_DIR/rstlate.log" rst -v "$be4:9010" "$be6:9010"
lab_peer_start "$LAB_BE" "$LAB_DIR/rstnow.log" rst -i -v "$be4:9011" "$be6:9011"
echo_log=$LAB_DIR/echo.log
lab_peer_start "$LAB_BE" "$echo_log" echo -v "$be4:9012" "$be6:9012"
lab_lb_start "$cfg"

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# --- backend resets after the first bytes ---
for fam in 4 6; do
	if [[ $fam == 4 ]]; then src=198.18.0.10 vip=$LAB_VIP4 url=http://$LAB_VIP4:9010/
	else src=2001:db8::10 vip=[$LAB_VIP6] url=http://[$LAB_VIP6]:9010/; fi

	lab_log "checking: IPv$fam: curl to a backend that resets after the request"
	t0=$(date +%s%N)
	in_cli curl -gsS --max-time 10 --interface "$src" "$url" >/dev/null 2>"$LAB_DIR/curl.err"
	rc=$? ms=$(ms_since "$t0")
	# 52: empty reply (closed), 56: receive failure (reset).
	[[ $rc == 52 || $rc == 56 ]] || { cat "$LAB_DIR/curl.err" >&2; lab_lb_log; lab_fail "IPv$fam: curl exited $rc, want 52 (closed) or 56 (reset)"; }
	((ms < 2000)) || lab_fail "IPv$fam: curl took $ms ms to see the reset, want < 2000"
	lab_log "ok: IPv$fam: curl saw '$(head -c 80 "$LAB_DIR/curl.err")' (exit $rc) after $ms ms"

	lab_log "checking: IPv$fam: peer client to a backend that resets after the header"
	t0=$(date +%s%N)
	in_cli "$PEER" client -t 10 -b "$src" -u 64K -d 64K "$vip:9010" >/dev/null 2>"$LAB_DIR/peer.err"
	rc=$? ms=$(ms_since "$t0")
	if [[ $rc != 1 ]] || ! grep -Eq 'reset by peer|EOF before status' "$LAB_DIR/peer.err"; then
		cat "$LAB_DIR/peer.err" >&2
		lab_fail "IPv$fam: peer client exited $rc, want 1 with a reset or EOF"
	fi
	((ms < 2000)) || lab_fail "IPv$fam: peer client took $ms ms to see the reset, want < 2000"
	lab_log "ok: IPv$fam: peer client: $(grep -Eo 'read: .*|EOF before.*' "$LAB_DIR/peer.err" | head -n1) after $ms ms"
done
grep -q 'reset sent after the first bytes' "$LAB_DIR/rstlate.log" ||
	lab_fail "the rst backend never saw a connection: $(cat "$LAB_DIR/rstlate.log")"

# --- backend resets at accept; the client sends nothing ---
for fam in 4 6; do
	if [[ $fam == 4 ]]; then src=198.18.0.11 vip=$LAB_VIP4; else src=2001:db8::11 vip=[$LAB_VIP6]; fi
	lab_log "checking: IPv$fam: a silent client of a backend that resets at accept is reset or closed"
	log=$LAB_DIR/hold-now$fam.log
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b "$src" -n 1 "$vip:9011"
	pid=$LAB_BG_PID
	if ! line=$(lab_wait_grep "$log" ' (1 eof|1 reset)' 2); then
		cat "$log" >&2
		lab_lb_log
		lab_fail "IPv$fam: client not reset or closed within 2 s of the backend's reset"
	fi
	lab_stop "$pid"
	lab_log "ok: IPv$fam: $line"
done

# --- client resets: the backend's side goes away, with a reset ---
for fam in 4 6; do
	if [[ $fam == 4 ]]; then src=198.18.0.12 vip=$LAB_VIP4 pat=" $src:"
	else src=2001:db8::12 vip=[$LAB_VIP6] pat=" [$src]:"; fi
	log=$LAB_DIR/hold-cli$fam.log
	lab_log "checking: IPv$fam: 20 relayed connections, then the client resets them"
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b "$src" -n 20 -e -R "$vip:9012"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' 20 answered' 5 >/dev/null ||
		{ cat "$log" >&2; lab_lb_log; lab_fail "IPv$fam: 20 connections not relayed"; }
	n=$(in_be ss -Htn state established "( sport = :9012 )" | grep -cF "$pat")
	[[ $n == 20 ]] || lab_fail "IPv$fam: backend has $n established connections from $src, want 20"
	lab_log "ok: IPv$fam: 20 connections relayed; the backend holds 20 from $src"
	before=$(grep -c ': reset$' "$echo_log")
	t0=$(date +%s%N)
	lab_stop "$pid"
	left=20
	while ((left > 0 && $(ms_since "$t0") < 2000)); do
		left=$(in_be ss -Htan "( sport = :9012 )" | grep -v LISTEN | grep -cF "$pat")
		((left > 0)) && sleep 0.05
	done
	ms=$(ms_since "$t0")
	((left == 0)) || { in_be ss -tan "( sport = :9012 )" >&2; lab_lb_log; lab_fail "IPv$fam: $left backend connections from $src left 2 s after the client's reset"; }
	lab_log "ok: IPv$fam: all 20 backend connections gone $ms ms after the client's reset"
	for ((i = 0; i < 20; i++)); do
		after=$(grep -c ': reset$' "$echo_log")
		((after - before >= 20)) && break
		sleep 0.05
	done
	((after - before == 20)) ||
		{ tail -n 25 "$echo_log" >&2; lab_fail "IPv$fam: backend saw $((after - before)) of 20 connections end with a reset (the rest with a FIN?)"; }
	lab_log "ok: IPv$fam: the backend saw all 20 end with a reset"
done
kill -0 "$LAB_LB_PID" 2>/dev/null || lab_fail "lb died"
lab_log "PASS"
