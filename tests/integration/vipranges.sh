#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Prefix and port-range VIPs, and reloads that send only what changed
# (issue 21):
#  - 198.18.128.0/20:80 and [2001:db8:100::/48]:80 are intercepted for every
#    address inside (first, last, one in the middle), and an address just
#    outside each is routed to the host that has it, not proxied;
#  - 198.18.100.1:8000-8099 is intercepted for its first and last port, not
#    for 8100; a UDP range (198.18.100.2:5300-5309) carries datagrams;
#  - `lb -t` prints the interval sets as `nft list table` shows them;
#  - a config of 10,000 VIPs: a reload that adds one VIP sends one element
#    (lb logs "1 VIP element added, 0 removed"), the table is not
#    replaced, and a connection open across it keeps echoing; a second
#    reload that swaps one VIP for another diffs against what the first
#    one installed (one added, one removed);
#  - 1,000 services: a reload that adds a VIP to one copies the other 999
#    from the running config (lb logs "999 of 1000 services unchanged"); an
#    error that involves a copied service (its name taken by a new one) is
#    the one `lb -t` gives; open connections survive all three reloads;
#  - 100,000 VIPs: lb's watch does not take its own install's notifications
#    for lost ones, and a one-VIP reload sends one element.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq
lab_need_lb peer
lab_up
lab_nginx_start
UP=${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/udppeer

# Hosts just outside the prefixes, behind the backend link, each with a web server.
OUT4=198.18.144.1 OUT6=2001:db8:101::1
lab_be_addrs_add "$OUT4" "$OUT6"
in_gw ip route add 198.18.144.0/24 via "${LAB_BE_IP4[0]}"
in_gw ip -6 route add 2001:db8:101::/64 via "${LAB_BE_IP6[0]}"
lab_nginx_one "$OUT4" 80
lab_nginx_one "$OUT6" 80
lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$UP" echo "${LAB_BE_IP4[0]}:5300"

cfg=$(lab_config_with '"workers": 2' '{
	"name": "pfx", "vips": ["198.18.128.0/20:80", "[2001:db8:100::/48]:80"],
	"backends": [{"address": "'"${LAB_BE_IP4[0]}"':80"}, {"address": "['"${LAB_BE_IP6[0]}"']:80"}]
}, {
	"name": "rng", "vips": ["198.18.100.1:8000-8099"],
	"backends": [{"address": "'"${LAB_BE_IP4[1]}"':80"}]
}, {
	"name": "urng", "protocol": "udp", "vips": ["198.18.100.2:5300-5309"],
	"backends": [{"address": "'"${LAB_BE_IP4[0]}"':5300"}]
}')
lab_lb_start "$cfg"

# via URL BACKEND: the request is answered by BACKEND and (proxied) shows the client's address.
via() {
	local body
	body=$(in_cli curl -gsS --max-time 3 --interface "${2:-${LAB_CLI_IP4[0]}}" "$1") ||
		lab_fail "$1: request failed"
	echo "$body"
}
check() {	# URL SRC WANT_BACKEND WHAT
	local body
	body=$(via "$1" "$2")
	[[ $body == "backend=$3 client=$2" ]] || { lab_lb_log; lab_fail "$4: $1 answered '$body', want backend=$3 client=$2"; }
	lab_log "ok: $4: $1 -> $body"
}
c4=${LAB_CLI_IP4[0]} c6=${LAB_CLI_IP6[0]}
for a in 198.18.128.0 198.18.135.77 198.18.143.255; do
	check "http://$a/" "$c4" "${LAB_BE_IP4[0]}" "inside 198.18.128.0/20"
done
check "http://$OUT4/" "$c4" "$OUT4" "just outside 198.18.128.0/20: routed"
for a in 2001:db8:100:: 2001:db8:100:ffff:ffff:ffff:ffff:ffff; do
	check "http://[$a]/" "$c6" "${LAB_BE_IP6[0]}" "inside 2001:db8:100::/48"
done
check "http://[$OUT6]/" "$c6" "$OUT6" "just outside 2001:db8:100::/48: routed"
for p in 8000 8042 8099; do
	check "http://198.18.100.1:$p/" "$c4" "${LAB_BE_IP4[1]}" "inside port range 8000-8099"
done
in_cli curl -gsS --max-time 2 "http://198.18.100.1:8100/" >/dev/null 2>&1 &&
	lab_fail "port 8100, outside 8000-8099, was answered"
lab_log "ok: port 8100 is not intercepted"
for p in 5300 5309; do
	line=$(in_cli "$UP" gen -b "$c4" -f 2 -r 100 -t 0.5 "198.18.100.2:$p")
	[[ $line == *" lost 0 (0.000%), bad 0"* ]] || lab_fail "UDP to 198.18.100.2:$p: $line"
done
lab_log "ok: UDP port range 5300-5309 carries datagrams"

# lb -t and the kernel agree on the interval sets.
want=$(in_gw "$LB_BIN" -t -c "$cfg" 2>/dev/null | sed -n '/^table inet lb {/,/^}/p')
got=$(in_gw nft list table inet lb)
[[ "$want" == "$got" ]] || { diff <(echo "$want") <(echo "$got") >&2; lab_fail "lb -t differs from nft list table"; }
lab_log "ok: lb -t prints the interval sets as nft lists them"
lab_lb_stop || lab_fail "lb exited with status $?"

lab_log "checking: a one-VIP reload on a 10,000-VIP config sends one element"
lab_bg "$LAB_BE" "$LAB_DIR/techo.log" "$PEER" echo "${LAB_BE_IP4[1]}:9700"
lab_wait_port "$LAB_BE" "${LAB_BE_IP4[1]}" 9700 || lab_fail "echo peer not up"
vips() {	# N: 198.18.64.0 onwards, port 9700
	local i
	for ((i = 0; i < $1; i++)); do
		printf '"198.18.%d.%d:9700",' $((64 + i / 256)) $((i % 256))
	done
}
big() {	# N
	local v
	v=$(vips "$1")
	lab_config_with '"workers": 2' '{"name": "many", "vips": ['"${v%,}"'],
		"backends": [{"address": "'"${LAB_BE_IP4[1]}"':9700"}]}'
}
cfg=$(big 10000)
t0=$(lab_now_ms)
lab_lb_start "$cfg"
lab_log "10,000 VIPs: ready $(($(lab_now_ms) - t0)) ms after start"
lab_bg "$LAB_CLI" "$LAB_DIR/ping.log" "$PEER" ping -b "$c4" -n 2 -i 50 -T 2000 -t 60 "198.18.100.200:9700"
PING=$LAB_BG_PID
lab_wait_grep "$LAB_DIR/ping.log" 'ping: ready' 5 >/dev/null || lab_fail "ping not connected"
cp "$(big 10001)" "$cfg"
t0=$(lab_now_ms)
lab_ctl_call '{"cmd": "reload"}' | jq -e .ok >/dev/null || { lab_lb_log; lab_fail "reload failed"; }
lab_log "reload adding one VIP answered in $(($(lab_now_ms) - t0)) ms"
line=$(lab_wait_grep "$LAB_LB_LOG" 'table inet lb kept: 1 VIP element added, 0 removed' 3) ||
	{ lab_lb_log | tail -n 20; lab_fail "the reload did not send a one-element diff"; }
lab_log "ok: ${line#*msg=}"
n=$(in_gw nft list set inet lb vips4 | grep -o '9700' | wc -l)
((n == 10001)) || lab_fail "vips4 holds $n elements after the reload, want 10001"
in_cli "$PEER" ping -b "${LAB_CLI_IP4[1]}" -n 1 -i 50 -t 1 "198.18.103.16:9700" >/dev/null ||
	lab_fail "the added VIP 198.18.103.16:9700 is not served"
lab_stop "$PING"
grep -q 'ping: conn 0 port [0-9]*: [0-9]* round trips, max gap [0-9]* ms, ok' "$LAB_DIR/ping.log" &&
	grep -q 'ping: conn 1 port [0-9]*: [0-9]* round trips, max gap [0-9]* ms, ok' "$LAB_DIR/ping.log" ||
	{ cat "$LAB_DIR/ping.log" >&2; lab_fail "connections open across the reload did not survive"; }
lab_log "ok: the added VIP is served and both open connections kept echoing"
# The next diff starts from the keys the last one installed (lb keeps them):
# 198.18.103.16 goes, 198.18.103.17 comes.
sed 's/"198\.18\.103\.16:9700",//' "$(big 10002)" >"$cfg"
lab_ctl_call '{"cmd": "reload"}' | jq -e .ok >/dev/null || { lab_lb_log; lab_fail "second reload failed"; }
line=$(lab_wait_grep "$LAB_LB_LOG" 'table inet lb kept: 1 VIP element added, 1 removed' 3) ||
	{ lab_lb_log | tail -n 20; lab_fail "the second reload did not send a one-for-one diff"; }
lab_log "ok: ${line#*msg=}"
set4=$(in_gw nft list set inet lb vips4)
n=$(grep -o '9700' <<<"$set4" | wc -l)
((n == 10001)) || lab_fail "vips4 holds $n elements after the second reload, want 10001"
grep -q '198\.18\.103\.16 \. 9700' <<<"$set4" && lab_fail "198.18.103.16:9700 is still in vips4"
in_cli "$PEER" ping -b "${LAB_CLI_IP4[1]}" -n 1 -i 50 -t 1 "198.18.103.17:9700" >/dev/null ||
	lab_fail "the VIP 198.18.103.17:9700 that came in is not served"
lab_lb_stop || lab_fail "lb exited with status $?"

# 1,000 services of one VIP each: a reload reads again only the service
# whose text changed and copies the rest from the running config; an error
# that involves a copied service reads as a whole read gives it.
lab_log "checking: a reload of 1,000 services reads again only the one that changed"
many() {	# N [VIP added to s0]: services s0..s(N-1), one VIP each from 198.18.64.0
	local i s=
	for ((i = 0; i < $1; i++)); do
		s+='{"name": "s'$i'", "vips": ["198.18.'$((64 + i / 256))'.'$((i % 256))':9700"'
		((i == 0)) && [[ -n ${2:-} ]] && s+=', "'$2'"'
		s+='], "backends": [{"address": "'"${LAB_BE_IP4[1]}"':9700"}]},'
	done
	lab_config_with '"workers": 2' "${s%,}"
}
cfg=$(many 1000)
lab_lb_start "$cfg"
lab_bg "$LAB_CLI" "$LAB_DIR/ping2.log" "$PEER" ping -b "$c4" -n 2 -i 50 -T 2000 -t 60 "198.18.65.244:9700"
PING=$LAB_BG_PID
lab_wait_grep "$LAB_DIR/ping2.log" 'ping: ready' 5 >/dev/null || lab_fail "ping not connected"
cp "$(many 1000 198.18.103.16:9700)" "$cfg"
lab_ctl_call '{"cmd": "reload"}' | jq -e .ok >/dev/null || { lab_lb_log; lab_fail "reload failed"; }
line=$(lab_wait_grep "$LAB_LB_LOG" 'reload: 999 of 1000 services unchanged, copied from the running config' 3) ||
	{ lab_lb_log | tail -n 20; lab_fail "the reload did not copy the 999 unchanged services"; }
lab_log "ok: ${line#*msg=}"
lab_wait_grep "$LAB_LB_LOG" 'table inet lb kept: 1 VIP element added, 0 removed' 3 >/dev/null ||
	{ lab_lb_log | tail -n 20; lab_fail "the reload did not send a one-element diff"; }
for v in 198.18.103.16:9700 198.18.64.0:9700 198.18.67.231:9700; do
	in_cli "$PEER" ping -b "${LAB_CLI_IP4[1]}" -n 1 -i 50 -t 1 "$v" >/dev/null ||
		lab_fail "$v is not served after the reload"
done
# A new first service takes the name of s3, which is unchanged: the error
# names s3 at its new place, as a whole read of the file does.
{ sed 's/"services": \[/"services": [{"name": "s3", "vips": ["198.18.103.17:9700"], "backends": [{"address": "'"${LAB_BE_IP4[1]}"':9700"}]},/' "$cfg"; } >"$cfg.new"
mv "$cfg.new" "$cfg"
want='services[4].name: duplicate service name \"s3\" (also services[0])'
reply=$(lab_ctl_call '{"cmd": "reload"}')
jq -e '.ok == false' <<<"$reply" >/dev/null || lab_fail "a duplicate name was accepted: $reply"
grep -qF "$want" <<<"$reply" || lab_fail "the reload's error is not the whole read's: $reply"
err=$("$LB_BIN" -t -c "$cfg" 2>&1) && lab_fail "lb -t accepted the duplicate name"
grep -qF 'services[4].name: duplicate service name "s3" (also services[0])' <<<"$err" ||
	lab_fail "lb -t says otherwise: $err"
lab_log "ok: the duplicate is refused as lb -t refuses it, and the running config stays"
in_cli "$PEER" ping -b "${LAB_CLI_IP4[1]}" -n 1 -i 50 -t 1 198.18.103.16:9700 >/dev/null ||
	lab_fail "the running config is not served after the refused reload"
cp "$(many 1000)" "$cfg"
lab_ctl_call '{"cmd": "reload"}' | jq -e .ok >/dev/null || { lab_lb_log; lab_fail "reload back failed"; }
lab_wait_grep "$LAB_LB_LOG" 'table inet lb kept: 0 VIP elements added, 1 removed' 3 >/dev/null ||
	{ lab_lb_log | tail -n 20; lab_fail "the reload back did not remove one element"; }
lab_stop "$PING"
grep -q 'ping: conn 0 port [0-9]*: [0-9]* round trips, max gap [0-9]* ms, ok' "$LAB_DIR/ping2.log" &&
	grep -q 'ping: conn 1 port [0-9]*: [0-9]* round trips, max gap [0-9]* ms, ok' "$LAB_DIR/ping2.log" ||
	{ cat "$LAB_DIR/ping2.log" >&2; lab_fail "connections open across the reloads did not survive"; }
lab_log "ok: both open connections kept echoing across the three reloads"
lab_lb_stop || lab_fail "lb exited with status $?"

# 100,000 VIPs (198.19.0.0/16, ports 9700 and 9701): lb's own install
# makes as many notifications, which its watch must not take for lost ones
# (it would restore the whole table, and the next reload would replace it
# whole instead of sending one element).
lab_log "checking: 100,000 VIPs start, and a one-VIP reload on them sends one element"
python3 - "$LAB_DIR/v100k.json" "$LAB_DIR/lb.sock" "${LAB_BE_IP4[1]}" 100000 <<'EOF'
import sys
out, sock, be, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
v = ",".join('"198.19.%d.%d:%d"' % (i % 65536 // 256, i % 256, 9700 + i // 65536) for i in range(n))
open(out, "w").write('{"workers": 2, "control": {"path": "%s"}, "intercept": {"port": 50080, '
                     '"mark": 1, "table": "lb", "route_table": 100}, "services": [{"name": "many", '
                     '"vips": [%s], "backends": [{"address": "%s:9700"}]}]}' % (sock, v, be))
EOF
t0=$(lab_now_ms)
LAB_LB_TIMEOUT=30 lab_lb_start "$LAB_DIR/v100k.json"
lab_log "100,000 VIPs: ready $(($(lab_now_ms) - t0)) ms after start"
sleep 0.5
! grep -q 'notifications lost' "$LAB_LB_LOG" ||
	{ lab_lb_log | tail -n 5; lab_fail "lb lost notifications of its own install"; }
sed -i 's/"198.19.0.0:9700",/"198.19.0.0:9700","198.19.255.255:9701",/' "$LAB_DIR/v100k.json"
t0=$(lab_now_ms)
lab_ctl_call '{"cmd": "reload"}' | jq -e .ok >/dev/null || { lab_lb_log; lab_fail "reload failed"; }
lab_log "reload adding one VIP to 100,000 answered in $(($(lab_now_ms) - t0)) ms"
line=$(lab_wait_grep "$LAB_LB_LOG" 'table inet lb kept: 1 VIP element added, 0 removed' 3) ||
	{ lab_lb_log | tail -n 20; lab_fail "the reload on 100,000 VIPs did not send a one-element diff"; }
lab_log "ok: ${line#*msg=}"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
