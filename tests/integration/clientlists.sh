#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A service's clients.allow and clients.deny lists, in nftables before
# tproxy (issue 20), for IPv4 and IPv6:
#  - lb -t prints the per-client rules exactly as nft lists them;
#  - an allowed client is served; a denied one (in deny, or outside allow)
#    never reaches a worker: the workers' accept counter stays flat while
#    its connects time out (deny_action drop);
#  - the kernel's counter of what the lists refused reaches lbctl clients
#    and the metrics;
#  - after a reload to deny_action reset, a denied client is refused at
#    once (connection refused, well under a second) and still never
#    reaches a worker; allowed clients are still served;
#  - the same for a UDP service: a denied client's datagram opens no flow
#    and gets no answer (dropped), then an ICMP port unreachable (reset).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=clientlists
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq python3
lab_need_lb
UDPPEER=${UDPPEER:-${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/udppeer}
[[ -x $UDPPEER ]] || lab_skip "udppeer not built: $UDPPEER"
lab_up
lab_nginx_start
UBE=${LAB_BE_IP4[0]}:9600
lab_bg "$LAB_BE" "$LAB_DIR/uecho.log" "$UDPPEER" echo "$UBE"

OUT4=198.18.0.50		# in the clients' /24, outside the allow list
OUT6=2001:db8::1:50
lab_cli_addrs_add "$OUT4" "$OUT6"
DENIED4=${LAB_CLI_IP4[1]}
DENIED6=${LAB_CLI_IP6[1]}
OK4=${LAB_CLI_IP4[0]}
OK6=${LAB_CLI_IP6[0]}

# config ACTION: the lab's web service with lists; prints the path.
config() {
	lab_config_with '"workers": 2' '{
		"name": "web",
		"vips": ["198.18.100.1:80", "[2001:db8:100::1]:80"],
		"backends": [{"address": "198.18.2.2:80"}, {"address": "[2001:db8:2::2]:80"}],
		"clients": {
			"allow": ["198.18.0.0/28", "2001:db8::/120"],
			"deny": ["'"$DENIED4"'", "'"$DENIED6"'/128"],
			"deny_action": "'"$1"'"
		}
	}, {
		"name": "dns",
		"protocol": "udp",
		"vips": ["198.18.100.1:9600"],
		"backends": [{"address": "'"$UBE"'"}],
		"clients": {"deny": ["'"$DENIED4"'"], "deny_action": "'"$1"'"}
	}'
}

# udp SRC: one datagram from SRC to the UDP VIP; prints answered, refused
# (an ICMP port unreachable came back) or silent.
udp() {
	in_cli python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 0))
s.connect(("198.18.100.1", 9600))
s.settimeout(1)
s.send(b"hello")
try:
    s.recv(64)
    print("answered")
except ConnectionRefusedError:
    print("refused")
except socket.timeout:
    print("silent")' "$1"
}
udp_flows() { lab_ctl_call '{"cmd": "services"}' | jq '.data[] | select(.name == "dns") | .udp.flows_total'; }

# udp_check ACTION WANT: an allowed client is answered, the denied one gets WANT and opens no flow.
udp_check() {
	local f0 f1 got
	got=$(udp "$OK4")
	[[ $got == answered ]] || { lab_lb_log; lab_fail "UDP from $OK4: $got"; }
	f0=$(udp_flows)
	got=$(udp "$DENIED4")
	f1=$(udp_flows)
	[[ $got == "$2" ]] || lab_fail "UDP from the denied $DENIED4 ($1): $got, want $2"
	((f1 == f0)) || lab_fail "UDP from the denied $DENIED4 opened $((f1 - f0)) flows"
	lab_log "ok: UDP ($1): $OK4 answered, the denied $DENIED4 $got and opened no flow"
}

accepted() { lab_ctl_call '{"cmd": "stats"}' | jq -e '.data.totals.accepted'; }
refused() { lab_ctl_call '{"cmd": "clients", "service": "web"}' | jq -e '.data[0].refused.deny'; }

# served SRC URL: one request is answered by a backend.
served() {
	local body
	body=$(in_cli curl -gsS --max-time 3 --interface "$1" "$2" 2>&1) &&
		[[ $body == backend=* ]] || { lab_lb_log; lab_fail "$1 -> $2 not served: $body"; }
}

# refused SRC URL WANT_RC MAX_MS: curl from SRC fails with WANT_RC
# (28: timed out, 7: refused) within MAX_MS, and no worker accepted it.
refused_by_lists() {
	local src=$1 url=$2 want=$3 max=$4 before after t0 ms rc
	before=$(accepted) || lab_fail "stats"
	t0=$(lab_now_ms)
	in_cli curl -gsS -o /dev/null --connect-timeout 1 --max-time 2 --interface "$src" "$url" 2>/dev/null
	rc=$?
	ms=$(($(lab_now_ms) - t0))
	after=$(accepted)
	((rc == want)) || { lab_lb_log; lab_fail "$src -> $url: curl exit $rc, want $want"; }
	((ms <= max)) || lab_fail "$src -> $url: refused after $ms ms, want at most $max"
	((after == before)) || lab_fail "$src -> $url: the workers accepted $((after - before)) connections"
	lab_log "ok: $src -> $url refused (curl exit $rc after $ms ms), accepted stays $after"
}

cfg=$(config drop)

# --- lb -t is what nft lists ---
lab_lb_start "$cfg"
t=$(in_gw nft list table inet lb) || lab_fail "nft list table inet lb"
diff <(grep -v '^$' <<<"$t") \
	<(in_gw "$LB_BIN" -t -c "$cfg" 2>/dev/null | sed -n '/^table/,/^}/p' | grep -v '^$') >&2 ||
	lab_fail "lb -t and nft list table inet lb differ"
grep -q 'ip saddr != @allow4_0 counter name "deny_0" drop' <<<"$t" || lab_fail "no allow rule in: $t"
lab_log "ok: lb -t prints the clients rules as nft lists them"

# --- drop ---
V4=http://$LAB_VIP4/
V6=http://[$LAB_VIP6]/
served "$OK4" "$V4"
served "$OK6" "$V6"
lab_log "ok: allowed clients $OK4 and $OK6 are served"
refused_by_lists "$DENIED4" "$V4" 28 2500
refused_by_lists "$DENIED6" "$V6" 28 2500
refused_by_lists "$OUT4" "$V4" 28 2500
refused_by_lists "$OUT6" "$V6" 28 2500
n=$(in_gw nft list counter inet lb deny_0 | awk '/packets/ { print $2 }')
((n >= 4)) || lab_fail "nft counter deny_0 is $n after 4 refused clients"
r=$(refused)
((r == n)) || lab_fail "lbctl clients says $r refused by the lists, nft counter deny_0 $n"
m=$(lab_ctl_call '{"cmd": "metrics"}' | jq -r .data |
	awk '/^lb_service_clients_refused_total\{service="web",reason="deny"\}/ { print $2 }')
((m >= n)) || lab_fail "metrics say $m refused by the lists, nft counter $n"
lab_log "ok: the lists refused $n SYNs (nft counter deny_0), lbctl clients $r, metrics $m"
udp_check drop silent

# --- reset, after a reload ---
cp "$(config reset)" "$cfg"
kill -HUP "$LAB_LB_PID"
lab_wait_grep "$LAB_LB_LOG" 'reload: generation 2' 5 >/dev/null || { lab_lb_log; lab_fail "reload"; }
grep -q 'reject with tcp reset' <(in_gw nft list table inet lb) || lab_fail "no reset rule after reload"
refused_by_lists "$DENIED4" "$V4" 7 900
refused_by_lists "$DENIED6" "$V6" 7 900
refused_by_lists "$OUT4" "$V4" 7 900
refused_by_lists "$OUT6" "$V6" 7 900
served "$OK4" "$V4"
served "$OK6" "$V6"
lab_log "ok: after the reload denied clients get a reset, allowed ones are served"
udp_check reset refused
r2=$(refused)
((r2 >= r + 4)) || lab_fail "refused count went from $r to $r2 over the reload, want at least +4"
lab_log "ok: the refused count carried over the reload: $r -> $r2"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
