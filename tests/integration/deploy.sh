#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Follows docs/deploy.md in namespaces: every block marked
# "<!-- step: NAME -->" there is extracted and run as written, with lb and
# lbctl from this build first in PATH and /etc, /run/lb and /var/lib paths
# moved into the lab directory. Then checks what the guide promises: clients
# reach the VIPs (v4 and v6), the backends see the clients' addresses, one
# backend answers through policy routing while its default route points
# elsewhere, a drop-by-default input firewall lets lb's traffic through and
# nothing else, the firewall reloads without touching lb's table, lb's
# reload restores a flushed ruleset, and the lbctl and metrics steps work.
#
#   cli  eth0 198.18.0.10/24 2001:db8::10/64, default via the gateway
#    |
#   gw   eth0 198.18.0.1/24 2001:db8::1/64    (steps gw-*)
#        eth1 198.18.2.1/24 2001:db8:2::1/64
#    |
#   sw   bridge br0
#    |                                  \
#   be1  eth0 198.18.2.2 2001:db8:2::2   be2  eth0 198.18.2.3 2001:db8:2::3
#        default via 198.18.2.254 (a       step backend-default-route
#        router that is not there),
#        step backend-policy-routing
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root socat
lab_need_lb
LBCTL=${LBCTL_BIN:-$(dirname "$LB_BIN")/lbctl}
[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
GUIDE=$LB_SRCDIR/docs/deploy.md
[[ -r $GUIDE ]] || lab_fail "missing $GUIDE"

CLI=$LAB_ID-cli
GWNS=$LAB_ID-gw
SW=$LAB_ID-sw
BE1=$LAB_ID-be1
BE2=$LAB_ID-be2
LAB_CLI=$CLI

deploy_up() {
	local n
	trap lab_down EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$LAB_ID.XXXXXX") || lab_fail "mktemp"
	chmod 755 "$LAB_DIR"
	ROOT=$LAB_DIR/root
	mkdir -p "$ROOT/etc/sysctl.d" "$LAB_DIR/bin"
	ln -s "$LB_BIN" "$LAB_DIR/bin/lb"
	ln -s "$LBCTL" "$LAB_DIR/bin/lbctl"
	for n in "$CLI" "$GWNS" "$SW" "$BE1" "$BE2"; do
		lab_ns_add "$n"
	done
	ip -n "$CLI" link add eth0 type veth peer name eth0 netns "$GWNS" || lab_fail "veth cli-gw"
	ip -n "$SW" link add br0 type bridge || lab_fail "bridge"
	ip -n "$SW" link set br0 up
	ip -n "$GWNS" link add eth1 type veth peer name p0 netns "$SW" || lab_fail "veth gw-sw"
	ip -n "$BE1" link add eth0 type veth peer name p1 netns "$SW" || lab_fail "veth be1-sw"
	ip -n "$BE2" link add eth0 type veth peer name p2 netns "$SW" || lab_fail "veth be2-sw"
	for n in p0 p1 p2; do
		ip -n "$SW" link set "$n" master br0 up
	done

	# The client, and the backends' own addresses: not part of the guide.
	ip -n "$CLI" link set eth0 up
	ip -n "$CLI" addr add 198.18.0.10/24 dev eth0
	ip -n "$CLI" addr add 198.18.0.11/24 dev eth0
	ip -n "$CLI" addr add 2001:db8::10/64 dev eth0 nodad
	ip -n "$CLI" route add default via 198.18.0.1
	ip -n "$CLI" -6 route add default via 2001:db8::1
	ip -n "$BE1" link set eth0 up
	ip -n "$BE1" addr add 198.18.2.2/24 dev eth0
	ip -n "$BE1" addr add 2001:db8:2::2/64 dev eth0 nodad
	ip -n "$BE1" route add default via 198.18.2.254
	ip -n "$BE1" -6 route add default via 2001:db8:2::fe
	ip -n "$BE2" link set eth0 up
	ip -n "$BE2" addr add 198.18.2.3/24 dev eth0
	ip -n "$BE2" addr add 2001:db8:2::3/64 dev eth0 nodad
	lab_log "lab up: $CLI $GWNS $SW $BE1 $BE2 (dir $LAB_DIR)"
}

# step_script NAME: the commands of the guide's step NAME, with paths moved
# into the lab.
step_script() {
	local s
	s=$(awk -v m="<!-- step: $1 -->" '
		$0 == m { f = 1; next }
		f == 1 { if ($0 == "```sh") { f = 2; next } exit 1 }
		f == 2 && $0 == "```" { exit }
		f == 2 { print }' "$GUIDE") || lab_fail "deploy.md: step $1 is not followed by a sh block"
	[[ -n $s ]] || lab_fail "deploy.md has no step $1"
	sed -e "s#/etc/#$ROOT/etc/#g" -e "s#/run/lb/#$ROOT/run/lb/#g" \
		-e "s#/var/lib/#$ROOT/var/lib/#g" <<<"$s"
}

# step NAME NS: run the guide's step NAME in namespace NS, stopping at the
# first failing command.
step() {
	local name=$1 ns=$2 log=$LAB_DIR/step-$1.log
	lab_log "step $name (in ${ns##*-})"
	if ! ip netns exec "$ns" env PATH="$LAB_DIR/bin:$PATH" LB_SOCKET="$ROOT/run/lb/lb.sock" \
		bash -euo pipefail -c "$(step_script "$name")" >"$log" 2>&1; then
		sed 's/^/  | /' "$log" >&2
		lab_fail "step $name failed"
	fi
}

# ask SRC URL: one request; prints "BACKEND CLIENT" as the backend saw them.
ask() {
	local body
	body=$(lab_curl "$1" "$2") || return 1
	[[ $body =~ ^backend=([^ ]+)\ client=([^ ]+)$ ]] || return 1
	printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

# check_vip URL SRC BACKEND...: 8 requests from SRC all succeed, the
# backend saw SRC, and every BACKEND answered at least once.
check_vip() {
	local url=$1 src=$2 i out be cl
	shift 2
	declare -A seen=()
	for ((i = 0; i < 8; i++)); do
		out=$(ask "$src" "$url") || { lab_lb_log; lab_fail "request $i from $src to $url failed"; }
		read -r be cl <<<"$out"
		[[ $cl == "$src" ]] || lab_fail "$url: backend $be saw client $cl, want $src"
		seen[$be]=1
	done
	for be in "$@"; do
		[[ -n ${seen[$be]:-} ]] || lab_fail "$url: $be never answered (saw ${!seen[*]})"
	done
	lab_log "ok: $src -> $url reaches $*, which see the client's own address"
}

# gw_port_open: 0 when the client can open a connection to the gateway's
# own address on port 8080 (a listener lb has nothing to do with).
gw_port_open() {
	in_cli timeout 3 bash -c 'exec 3<>/dev/tcp/198.18.0.1/8080' 2>/dev/null
}

deploy_up

# 1, 2: interfaces and kernel settings.
step gw-interfaces "$GWNS"
step gw-sysctl "$GWNS"
[[ $(ip netns exec "$GWNS" sysctl -n net.ipv4.ip_forward) == 1 ]] || lab_fail "ip_forward not set"
[[ $(ip netns exec "$GWNS" sysctl -n net.ipv4.conf.all.rp_filter) == 2 ]] || lab_fail "rp_filter not 2"
for i in $(seq 50); do
	ip -n "$GWNS" -o link show eth1 | grep -q LOWER_UP &&
		ip -n "$CLI" -o link show eth0 | grep -q LOWER_UP && break
	sleep 0.1
done

# 4: backends' return path; be1 first shows that without the step its
# replies would leave by its other router.
step backend-default-route "$BE2"
route_via() {
	ip -n "$BE1" route get 198.18.0.10 from 198.18.2.2 ipproto tcp sport 80 |
		grep -o 'via [^ ]*'
}
[[ $(route_via) == "via 198.18.2.254" ]] || lab_fail "be1 before policy routing: $(route_via)"
step backend-policy-routing "$BE1"
[[ $(route_via) == "via 198.18.2.1" ]] || lab_fail "be1 after policy routing: $(route_via)"
[[ $(ip -n "$BE1" route get 198.18.0.10 | grep -o 'via [^ ]*') == "via 198.18.2.254" ]] ||
	lab_fail "be1's other traffic should still use its own default route"
lab_log "ok: be1 sends port-80 replies via the gateway, the rest via 198.18.2.254"

LAB_BE=$BE1
lab_nginx_one 198.18.2.2 80
lab_nginx_one 2001:db8:2::2 80
LAB_BE=$BE2
lab_nginx_one 198.18.2.3 80
lab_nginx_one 2001:db8:2::3 80

# 3: config, lb -t, and lb in the foreground (here: in the background).
step gw-config "$GWNS"
grep -q 'table inet lb' "$LAB_DIR/step-gw-config.log" || lab_fail "lb -t printed no ruleset"
LAB_LB_LOG=$LAB_DIR/lb.log
lab_bg "$GWNS" "$LAB_LB_LOG" env PATH="$LAB_DIR/bin:$PATH" bash -c "$(step_script gw-run)"
LAB_LB_PID=$LAB_BG_PID
lab_wait_grep "$LAB_LB_LOG" 'ready' 10 >/dev/null || { lab_lb_log; lab_fail "lb did not become ready"; }
if grep -E 'level=(warning|error)' "$LAB_LB_LOG"; then
	lab_fail "lb warned about the gateway the guide set up"
fi
lab_log "ok: lb ready, no warnings about forwarding or rp_filter"

check_vip "http://198.18.100.1/" 198.18.0.10 198.18.2.2 198.18.2.3
check_vip "http://[2001:db8:100::1]/" 2001:db8::10 2001:db8:2::2 2001:db8:2::3

# 5: the firewall. Before it, the gateway's port 8080 is open; after it,
# only lb's traffic (and what the firewall accepts) gets in.
lab_bg "$GWNS" "$LAB_DIR/socat.log" socat TCP-LISTEN:8080,bind=198.18.0.1,reuseaddr,fork SYSTEM:true
lab_wait_port "$GWNS" 198.18.0.1 8080 || lab_fail "listener on 8080"
gw_port_open || lab_fail "port 8080 should be open before the firewall"
step gw-firewall "$GWNS"
ip netns exec "$GWNS" nft list chain inet filter input | grep -q 'policy drop' ||
	lab_fail "firewall not loaded"
if gw_port_open; then lab_fail "the firewall let a connection to port 8080 through"; fi
lab_log "ok: the firewall drops a connection to the gateway's port 8080"
check_vip "http://198.18.100.1/" 198.18.0.10 198.18.2.2 198.18.2.3
check_vip "http://[2001:db8:100::1]/" 2001:db8::10 2001:db8:2::2 2001:db8:2::3
check_vip "http://198.18.100.1/" 198.18.0.11 198.18.2.2 198.18.2.3
lab_log "ok: behind the input firewall, lb's traffic gets through"

# Without its "meta mark" rule the same firewall drops the clients' SYNs to
# the VIPs: that rule is what lets lb's traffic in.
h=$(ip netns exec "$GWNS" nft -a list chain inet filter input |
	awk '/meta mark 0x00000001 accept/ { print $NF }')
[[ -n $h ]] || lab_fail "no meta mark rule in the firewall"
ip netns exec "$GWNS" nft delete rule inet filter input handle "$h"
if lab_curl 198.18.0.10 http://198.18.100.1/ >/dev/null 2>&1; then
	lab_fail "the VIP answered through the firewall without its meta mark rule"
fi
lab_log "ok: without the meta mark rule, the firewall drops VIP traffic"

# Loading the firewall file again replaces its table and leaves lb's alone.
step gw-firewall "$GWNS"
ip netns exec "$GWNS" nft list table inet lb >/dev/null || lab_fail "firewall reload removed lb's table"
[[ $(ip netns exec "$GWNS" nft list tables | grep -c 'inet filter') == 1 ]] ||
	lab_fail "firewall reload left two filter tables"
check_vip "http://198.18.100.1/" 198.18.0.10 198.18.2.2 198.18.2.3
lab_log "ok: reloading the firewall keeps lb's table and traffic"

# "flush ruleset" deletes lb's table; lb's reload (SIGHUP, what
# "systemctl reload lb" sends) installs it again.
ip netns exec "$GWNS" nft flush ruleset
if lab_curl 198.18.0.10 http://198.18.100.1/ >/dev/null 2>&1; then
	lab_fail "VIP still answered after flush ruleset"
fi
kill -HUP "$LAB_LB_PID"
lab_wait_grep "$LAB_LB_LOG" 'reload|generation 2' 10 >/dev/null || { lab_lb_log; lab_fail "no reload"; }
for i in $(seq 50); do
	ip netns exec "$GWNS" nft list table inet lb >/dev/null 2>&1 && break
	sleep 0.1
done
check_vip "http://198.18.100.1/" 198.18.0.10 198.18.2.2 198.18.2.3
step gw-firewall "$GWNS"
check_vip "http://198.18.100.1/" 198.18.0.10 198.18.2.2 198.18.2.3
lab_log "ok: after flush ruleset, lb's reload restores interception"

# 8, 9: the control socket and metrics.
step gw-lbctl "$GWNS"
grep -q '198.18.2.2:80' "$LAB_DIR/step-gw-lbctl.log" || lab_fail "lbctl backends shows no backend"
step gw-metrics "$GWNS"
prom=$ROOT/var/lib/prometheus/node-exporter/lb.prom
[[ -s $prom && ! -e $prom.tmp ]] || lab_fail "no $prom"
n=$(awk '$1 ~ /^lb_service_connections_total\{service="web"/ { print $2 }' "$prom")
[[ ${n:-0} -ge 16 ]] || lab_fail "metrics: lb_service_connections_total for web is '${n:-}', want >= 16 (the requests since the reload)"
grep -q '^lb_service_usable_backends{service="web"} 4$' "$prom" ||
	lab_fail "metrics: want 4 usable backends: $(grep usable_backends "$prom")"
lab_log "ok: lbctl works and the textfile holds lb's metrics ($n connections)"

lab_lb_stop TERM || lab_fail "lb exited with status $?"
if ip netns exec "$GWNS" nft list table inet lb >/dev/null 2>&1; then
	lab_fail "lb left its table behind"
fi
ip netns exec "$GWNS" nft list table inet filter >/dev/null || lab_fail "lb's exit removed the firewall"
lab_log "ok: lb stopped, removing its table and leaving the firewall"
lab_log "PASS"
