#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Half-close is passed on, not turned into a close, in both directions:
#  - the client shuts down writing and still receives the whole response,
#    which the backend only starts sending after it saw that FIN and, for the
#    socat case, waited a second more (peer over IPv4 and IPv6, and socat);
#  - the backend shuts down writing first, the client sees that FIN, and the
#    backend still receives what the client sends 1.5 s later (peer early as
#    the backend, socat as the client).
# An lb that closed the connection on the first FIN would cut off the
# response (peer: "EOF before status byte", socat: empty answer), or reset the
# client's late upload, so each check fails then.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root socat timeout
lab_need_lb peer
lab_up

cfg=$(lab_config "$(lab_svc peer 9000), $(lab_svc clifin 9001), $(lab_svc srvfin 9002)")

serve_log=$LAB_DIR/serve.log
lab_peer_start "$LAB_BE" "$serve_log" serve 198.18.2.2:9000 '[2001:db8:2::2]:9000'
# Reads the request to EOF (the client's FIN), waits 1 s, then answers.
# shellcheck disable=SC2016 # expanded by the shell socat starts
lab_bg "$LAB_BE" "$LAB_DIR/socat1.log" socat -t 10 \
	TCP-LISTEN:9001,bind=198.18.2.2,reuseaddr,fork \
	SYSTEM:'n=$(wc -c); sleep 1; echo "got $n bytes"'
# Sends "early" and its FIN at once, then logs how much the client still sends.
early_log=$LAB_DIR/early.log
lab_peer_start "$LAB_BE" "$early_log" early 198.18.2.2:9002
lab_wait_port "$LAB_BE" 198.18.2.2 9001 || lab_fail "socat did not listen on 198.18.2.2:9001"
lab_lb_start "$cfg"

# peer: the server answers only after the client's FIN.
lab_peer_run "IPv4: client FIN right after the header, then a 4 MiB response" \
	198.18.0.10 "$LAB_VIP4:9000" -t 20 -u 0 -d 4M
lab_peer_run "IPv4: 1 MiB upload, client FIN, then a 4 MiB response" \
	198.18.0.10 "$LAB_VIP4:9000" -t 20 -u 1M -d 4M
lab_peer_run "IPv6: 1 MiB upload, client FIN, then a 4 MiB response" \
	2001:db8::10 "[$LAB_VIP6]:9000" -t 20 -u 1M -d 4M
lab_peer_run "IPv4: 50 connections at once, each half-closing, random sizes" \
	198.18.0.11 "$LAB_VIP4:9000" -t 20 -n 50 -s 1M

lab_log "checking: socat: client sends 100000 bytes and shuts down writing; backend answers 1 s after that FIN"
out=$(head -c 100000 /dev/zero | in_cli timeout 15 socat -t 10 - TCP:$LAB_VIP4:9001,bind=198.18.0.12 2>"$LAB_DIR/c1.err")
[[ $out == "got 100000 bytes" ]] || {
	cat "$LAB_DIR/c1.err" "$LAB_DIR/socat1.log" >&2
	lab_lb_log
	lab_fail "socat client got '$out' after its half-close, want 'got 100000 bytes'"
}
lab_log "ok: socat client got '$out' after its own FIN"

lab_log "checking: backend answers and shuts down writing first; socat client sends 1.5 s later"
out=$({ sleep 1.5; printf late-data; } |
	in_cli timeout 15 socat -d -d -t 10 - TCP:$LAB_VIP4:9002,bind=198.18.0.13 2>"$LAB_DIR/c2.err")
[[ $out == early ]] || { cat "$LAB_DIR/c2.err" >&2; lab_fail "socat client got '$out', want 'early'"; }
# socat logs "socket 2 (fd N) is at EOF" for the TCP side, "socket 1" for stdin.
order=$(grep -o 'socket [12] (fd [0-9]*) is at EOF' "$LAB_DIR/c2.err" | cut -d' ' -f2 | paste -sd' ' -)
[[ $order == "2 1" ]] || {
	cat "$LAB_DIR/c2.err" >&2
	lab_fail "client did not see the backend's FIN before it finished sending (EOF order: '$order', want '2 1')"
}
lab_log "ok: client got 'early' and the backend's FIN before its own data went out"
got=
for ((i = 0; i < 50; i++)); do
	got=$(grep -o '[0-9]* bytes after our FIN, then EOF' "$early_log")
	[[ -n $got ]] && break
	sleep 0.1
done
[[ $got == "9 bytes after our FIN, then EOF" ]] || {
	cat "$LAB_DIR/c2.err" "$early_log" >&2
	lab_lb_log
	lab_fail "backend after its own FIN: '${got:-nothing}', want 9 bytes ('late-data') then EOF"
}
lab_log "ok: backend still received the client's 9 bytes sent after its own FIN, then the client's FIN"

grep -Eq 'mismatch|short upload|longer than|bad header' "$serve_log" &&
	{ sed 's/^/  serve| /' "$serve_log" >&2; lab_fail "the backend saw corrupted uploads"; }
lab_log "PASS"
