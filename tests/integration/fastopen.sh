#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# TCP Fast Open to backends ("fastopen": true), with the backend namespace
# set up as docs/deploy.md says (net.ipv4.tcp_fastopen=0x202, listeners
# with fastopen) and the gateway's namespace at the kernel's default (1):
#  - nginx behind a fastopen service gets every request in the SYN, IPv4
#    and IPv6: the backend's TcpExtTCPFastOpenPassive grows by one per
#    request and lb counts each as acked; the answers are exact;
#  - peer's byte-exact protocol (uploads and downloads up to 256 KiB, so
#    most uploads are larger than what a SYN carries) through a fastopen
#    service: every byte checked both ways, every SYN with data;
#  - a protocol where the server speaks first (an SMTP-like dialog: banner,
#    HELO, QUIT) works through a fastopen service: lb waits at most
#    fastopen_wait_ms for client bytes that never come, then connects
#    without data, and the banner arrives;
#  - a backend without TFO (nginx without fastopen): every request succeeds;
#    lb counts 8 refusals, then logs once and connects to it without data
#    (plain) for the rest;
#  - the counts show in lb_backend_fastopen_connects_total{result};
#  - with net.ipv4.tcp_fastopen=0 on the gateway, lb warns at start with the
#    fix, every request still succeeds, without Fast Open.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=fastopen
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq python3
lab_need_lb
lab_need_peer
lab_up

BE=${LAB_BE_IP4[0]}
BE6=${LAB_BE_IP6[0]}
NOTFO=${LAB_BE_IP4[1]}
VIP=$LAB_VIP4
VIP6=$LAB_VIP6
VIP2=198.18.100.2

# tcpext NS FIELD: a TcpExt counter of namespace NS.
tcpext() {
	ip netns exec "$1" awk -v f="${2#TcpExt}" '$1 == "TcpExt:" {
		if (!h) { for (i = 2; i <= NF; i++) col[$i] = i; h = 1 } else print $(col[f]) }' /proc/net/netstat
}
# fo SERVICE BACKEND RESULT: lb's fastopen counter of a backend.
fo() {
	lab_ctl_call "{\"cmd\": \"backends\", \"service\": \"$1\"}" |
		jq -r --arg a "$2" --arg r "$3" '.data[] | select(.address == $a) | .fastopen[$r]'
}

in_be sysctl -qw net.ipv4.tcp_fastopen=0x202 || lab_fail "backend sysctl"
[[ $(in_gw sysctl -n net.ipv4.tcp_fastopen) == 1 ]] || lab_fail "gateway tcp_fastopen is not the default 1"

# nginx with fastopen on BE (v4, v6), and one without on NOTFO.
d=$LAB_DIR/nginx
lab_nginx_conf "$d" 1 1024 "		listen $BE:80 fastopen=256;
		listen [$BE6]:80 fastopen=256;
		listen $NOTFO:80;"
lab_bg "$LAB_BE" "$d/logs/stderr.log" /usr/sbin/nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf"
for a in "$BE" "[$BE6]" "$NOTFO"; do
	lab_wait_port "$LAB_BE" "$a" 80 || { cat "$d/logs/error.log" >&2; lab_fail "nginx not on $a:80"; }
done
lab_bg "$LAB_BE" "$LAB_DIR/serve.log" "$PEER" serve -F "$BE:9000"
lab_wait_port "$LAB_BE" "$BE" 9000 || lab_fail "peer serve not listening"
# An SMTP-like server: it speaks first, then answers each line.
lab_bg "$LAB_BE" "$LAB_DIR/smtp.log" python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 256)
s.bind((sys.argv[1], 2525)); s.listen(64)
while True:
    c, peer = s.accept()
    f = c.makefile("rwb", buffering=0)
    f.write(b"220 lab ESMTP\r\n")
    for line in f:
        if line.startswith(b"HELO "):
            f.write(b"250 hello " + peer[0].encode() + b"\r\n")
        elif line.startswith(b"QUIT"):
            f.write(b"221 bye\r\n"); break
        else:
            f.write(b"500 what\r\n")
    f.close(); c.close()
    print("smtp: served", peer[0], flush=True)' "$BE"
lab_wait_port "$LAB_BE" "$BE" 2525 || lab_fail "smtp server not listening"

cfg=$(lab_config_with '"workers": 2' '{
	"name": "web", "vips": ["'"$VIP"':80", "['"$VIP6"']:80"],
	"backends": [{"address": "'"$BE"':80"}, {"address": "['"$BE6"']:80"}],
	"fastopen": true, "fastopen_wait_ms": 1000
}, {
	"name": "bytes", "vips": ["'"$VIP"':9000"], "backends": [{"address": "'"$BE"':9000"}],
	"fastopen": true, "fastopen_wait_ms": 1000
}, {
	"name": "smtp", "vips": ["'"$VIP"':2525"], "backends": [{"address": "'"$BE"':2525"}],
	"fastopen": true
}, {
	"name": "notfo", "vips": ["'"$VIP2"':80"], "backends": [{"address": "'"$NOTFO"':80"}],
	"fastopen": true, "fastopen_wait_ms": 1000
}')
lab_lb_start "$cfg"
grep -q 'tcp_fastopen' "$LAB_LB_LOG" && { lab_lb_log; lab_fail "lb warned about tcp_fastopen with the gateway at 1"; }

lab_log "checking: nginx gets each request in the SYN (IPv4 and IPv6), answers exact"
p0=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
for i in 0 1 2 3 4 5 6 7 8 9; do
	src=${LAB_CLI_IP4[i % 4]}
	body=$(lab_curl "$src" "http://$VIP/") || { lab_lb_log; lab_fail "request $i failed"; }
	[[ $body == "backend=$BE client=$src" ]] || lab_fail "request $i: '$body'"
	src=${LAB_CLI_IP6[i % 4]}
	body=$(lab_curl "$src" "http://[$VIP6]/") || { lab_lb_log; lab_fail "IPv6 request $i failed"; }
	[[ $body == "backend=$BE6 client=$src" ]] || lab_fail "IPv6 request $i: '$body'"
done
p1=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
a4=$(fo web "$BE:80" acked) a6=$(fo web "[$BE6]:80" acked)
r=$(($(fo web "$BE:80" refused) + $(fo web "[$BE6]:80" refused)))
pl=$(($(fo web "$BE:80" plain) + $(fo web "[$BE6]:80" plain)))
((p1 - p0 == 20 && a4 == 10 && a6 == 10 && r == 0 && pl == 0)) ||
	lab_fail "20 requests: TcpExtTCPFastOpenPassive +$((p1 - p0)), lb acked $a4 + $a6, refused $r, plain $pl"
lab_log "ok: 20 requests, 20 in the SYN (TcpExtTCPFastOpenPassive +$((p1 - p0)), lb acked $a4 + $a6)"

lab_log "checking: byte-exact uploads and downloads through a fastopen service"
p0=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
out=$(in_cli "$PEER" client -b "${LAB_CLI_IP4[1]}" -n 200 -p 20 -s 256K -S 24 -t 60 "$VIP:9000" 2>&1) ||
	{ echo "$out" >&2; lab_lb_log; lab_fail "peer client failed"; }
p1=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
a=$(fo bytes "$BE:9000" acked)
((p1 - p0 == 200 && a == 200)) ||
	lab_fail "200 connections: TcpExtTCPFastOpenPassive +$((p1 - p0)), lb acked $a"
lab_log "ok: $(tail -n1 <<<"$out"); 200 SYNs with data"

lab_log "checking: a server-first protocol (SMTP-like) through a fastopen service"
p0=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
out=$(in_cli python3 -c '
import socket, sys, time
t0 = time.monotonic()
c = socket.create_connection((sys.argv[1], 2525), timeout=5, source_address=(sys.argv[2], 0))
t1 = time.monotonic()
f = c.makefile("rwb", buffering=0)
banner = f.readline()
t2 = time.monotonic()
f.write(b"HELO lab\r\n"); helo = f.readline()
f.write(b"QUIT\r\n"); bye = f.readline(); rest = f.read()
print(repr(banner), repr(helo), repr(bye), repr(rest), int((t2 - t1) * 1000), sep="|")' "$VIP" "${LAB_CLI_IP4[2]}" 2>&1) ||
	{ echo "$out" >&2; cat "$LAB_DIR/smtp.log" >&2; lab_lb_log; lab_fail "smtp client failed"; }
IFS='|' read -r banner helo bye rest ms <<<"$out"
[[ $banner == "b'220 lab ESMTP\r\n'" && $helo == "b'250 hello ${LAB_CLI_IP4[2]}\r\n'" &&
	$bye == "b'221 bye\r\n'" && $rest == "b''" ]] || lab_fail "smtp dialog: $out"
((ms < 1000)) || lab_fail "the banner took $ms ms"
p1=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
pl=$(fo smtp "$BE:2525" plain)
((p1 == p0 && pl == 1)) || lab_fail "smtp: TcpExtTCPFastOpenPassive +$((p1 - p0)), lb plain $pl (want +0, 1)"
lab_log "ok: banner after $ms ms, dialog complete, connected without data (plain $pl)"

lab_log "checking: a backend without TFO: lb falls back, every request succeeds"
p0=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
for ((i = 0; i < 30; i++)); do
	src=${LAB_CLI_IP4[i % 4]}
	body=$(lab_curl "$src" "http://$VIP2/") || { lab_lb_log; lab_fail "request $i to the TFO-less backend failed"; }
	[[ $body == "backend=$NOTFO client=$src" ]] || lab_fail "request $i: '$body'"
done
p1=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
a=$(fo notfo "$NOTFO:80" acked) r=$(fo notfo "$NOTFO:80" refused) pl=$(fo notfo "$NOTFO:80" plain)
((p1 == p0 && a == 0 && r == 8 && pl == 22)) ||
	{ lab_lb_log; lab_fail "30 requests: TcpExtTCPFastOpenPassive +$((p1 - p0)), lb acked $a refused $r plain $pl (want 0 8 22)"; }
n=$(grep -c "backend $NOTFO:80 refused TCP Fast Open data 8 times in a row" "$LAB_LB_LOG")
((n == 1)) || { lab_lb_log; lab_fail "the fallback was logged $n times, want once"; }
paused=$(lab_ctl_call '{"cmd": "backends", "service": "notfo"}' | jq '.data[0].fastopen.paused')
[[ $paused == true ]] || lab_fail "the TFO-less backend is not shown paused: $paused"
lab_log "ok: 30 requests answered; refused $r, then plain $pl; logged once: $(grep -o 'backend .*refused.*row' "$LAB_LB_LOG")"

lab_log "checking: the counters in the metrics"
lab_ctl_call '{"cmd": "metrics"}' | jq -r .data >"$LAB_DIR/metrics.txt" || lab_fail "no metrics"
for k in "service=\"web\",backend=\"$BE:80\",result=\"acked\"} 10" \
	"service=\"web\",backend=\"[$BE6]:80\",result=\"acked\"} 10" \
	"service=\"bytes\",backend=\"$BE:9000\",result=\"acked\"} 200" \
	"service=\"smtp\",backend=\"$BE:2525\",result=\"plain\"} 1" \
	"service=\"notfo\",backend=\"$NOTFO:80\",result=\"refused\"} 8" \
	"service=\"notfo\",backend=\"$NOTFO:80\",result=\"plain\"} 22"; do
	grep -qxF "lb_backend_fastopen_connects_total{$k" "$LAB_DIR/metrics.txt" ||
		{ grep fastopen "$LAB_DIR/metrics.txt" >&2; lab_fail "no metric lb_backend_fastopen_connects_total{$k"; }
done
if command -v promtool >/dev/null 2>&1; then
	lab_check "promtool check metrics" sh -c "promtool check metrics <'$LAB_DIR/metrics.txt'"
fi
lab_log "ok: lb_backend_fastopen_connects_total by result"
lab_lb_stop || lab_fail "lb exited with status $?"

lab_log "checking: the start-up warning when the gateway's net.ipv4.tcp_fastopen lacks the client bit"
in_gw sysctl -qw net.ipv4.tcp_fastopen=0 || lab_fail "gateway sysctl"
lab_lb_start "$cfg"
want='services[0].fastopen: net.ipv4.tcp_fastopen is 0, without the client bit (1): lb connects to this service'"'"'s backends without TCP Fast Open; fix: sysctl -w net.ipv4.tcp_fastopen=1'
grep -qF "$want" "$LAB_LB_LOG" || { lab_lb_log; lab_fail "no start-up warning: $want"; }
n=$(grep -c 'net.ipv4.tcp_fastopen is 0' "$LAB_LB_LOG")
((n == 4)) || { lab_lb_log; lab_fail "$n warnings at start, want one per fastopen service (4)"; }
p0=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
for ((i = 0; i < 10; i++)); do
	body=$(lab_curl "${LAB_CLI_IP4[0]}" "http://$VIP/") || { lab_lb_log; lab_fail "request $i failed with TFO off"; }
	[[ $body == "backend=$BE client=${LAB_CLI_IP4[0]}" ]] || lab_fail "request $i: '$body'"
done
p1=$(tcpext "$LAB_BE" TcpExtTCPFastOpenPassive)
pl=$(fo web "$BE:80" plain)
((p1 == p0 && pl >= 10)) || lab_fail "TFO off: TcpExtTCPFastOpenPassive +$((p1 - p0)), plain $pl"
lab_log "ok: warned ($want); 10 requests answered without Fast Open"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
