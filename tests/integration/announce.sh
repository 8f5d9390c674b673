#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# lb's announcements on one gateway, without a routing daemon: the routes
# lb keeps in announce.table through its TUN device.
#  - lb -t prints the routes it would announce;
#  - once ready, one route per VIP address (IPv4 and IPv6) or prefix (its
#    own length), protocol and table as configured, through device
#    lb-announce;
#  - a VIP whose service loses its last usable backend of the family
#    (lbctl disable) is withdrawn within 500 ms (a few on an idle box), the
#    other family stays;
#    enabling one again announces it again;
#  - a reload with the same announce block changes no route (no delete, no
#    add: a routing daemon would flap it); one with another table moves
#    them; one without the block removes device and routes; one with it
#    again brings them back;
#  - drain-gateway withdraws everything and status says so, on the control
#    socket and on the HTTP listener (a process forked before the drain:
#    the state it shows is shared, not a copy); resume-gateway announces
#    again;
#  - SIGKILL of the master: device and routes are gone within a second;
#  - SIGTERM: lb withdraws, exits 0, leaves nothing;
#  - clear errors, and no start: another lb holding the device, a
#    persistent device of that name, no /dev/net/tun.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=announce
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq unshare
lab_need_lb
[[ -c /dev/net/tun ]] || lab_skip "no /dev/net/tun"
LBCTL=${LBCTL:-${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl}
[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
lab_up
lab_nginx_start

not() { ! "$@"; }
# leftovers [TABLE]: lb's routes in TABLE (200) and its device, once they had up to a second
# to go (the kernel unregisters a device after its last user is gone).
leftovers() {
	local i out
	for ((i = 0; i < 20; i++)); do
		out=$(routes -4 "${1:-200}"; routes -6 "${1:-200}"; in_gw ip -o link | grep lb-announce)
		[[ -z $out ]] && break
		sleep 0.05
	done
	printf '%s' "$out"
}
ctl() { "$LBCTL" -s "$LAB_DIR/lb.sock" "$@"; }
routes() { in_gw ip "$1" route show table "${2:-200}" proto 250 2>/dev/null; }
# wait_routes FAMILY COUNT [TABLE]: until that many; prints ms taken, 1 on a 3 s timeout.
wait_routes() {
	local t0 i
	t0=$(lab_now_ms)
	for ((i = 0; i < 600; i++)); do
		if [[ $(routes "$1" "${3:-200}" | grep -c .) == "$2" ]]; then
			echo $(($(lab_now_ms) - t0))
			return 0
		fi
		sleep 0.005
	done
	return 1
}
config() {
	lab_config_with '"workers": 1'"${1:+, $1}" '{
		"name": "web",
		"vips": ["198.18.100.1:80", "[2001:db8:100::1]:80", "198.18.100.1:81",
			"198.18.101.0/28:80"],
		"backends": [
			{"address": "198.18.2.2:80"}, {"address": "198.18.2.3:80"},
			{"address": "[2001:db8:2::2]:80"}
		]
	}'
}
block='"announce": {"table": 200, "protocol": 250, "settle_ms": 100}'
announce=$block', "http": {"listen": "127.0.0.1:9180"}'
http_get() { in_gw curl -sS --max-time 5 "http://127.0.0.1:9180$1"; }
cfg=$(config "$announce")

lab_check "lb -t prints the routes it would announce" grep -qx \
	"ip route replace 198.18.101.0/28 dev lb-announce table 200 proto 250" \
	<<<"$("$LB_BIN" -t -c "$cfg" 2>/dev/null)"
lab_bg "$LAB_GW" "$LAB_DIR/monitor.log" ip -ts monitor route
MON=$LAB_BG_PID
lab_lb_start "$cfg"
wait_routes -4 2 >/dev/null && wait_routes -6 1 >/dev/null || {
	lab_lb_log
	lab_fail "no VIP routes after ready"
}
lab_check "one IPv4 route for two VIPs on one address, through lb-announce" \
	grep -q "^198.18.100.1 dev lb-announce scope link" <<<"$(routes -4)"
lab_check "one IPv6 route" grep -q "^2001:db8:100::1 dev lb-announce " <<<"$(routes -6)"
lab_check "a prefix VIP's route is the prefix" \
	grep -q "^198.18.101.0/28 dev lb-announce scope link" <<<"$(routes -4)"
lab_check "lb announced only once ready" awk '
	/ready:/ && !r { r = NR } / announced"/ && !a { a = NR }
	END { exit !(r && a && r < a) }' "$LAB_LB_LOG"

ctl disable web 198.18.2.2:80 >/dev/null
ctl disable web 198.18.2.3:80 >/dev/null
ms=$(wait_routes -4 0) || lab_fail "IPv4 VIP still announced without an IPv4 backend"
lab_check "IPv4 VIP withdrawn ${ms} ms after its last backend went (within 500)" test "$ms" -le 500
lab_check "the IPv6 VIP stays" test "$(routes -6 | grep -c .)" = 1
lab_check "status says why" grep -q "198.18.100.1 not announced: no usable backend" \
	<<<"$(ctl status)"
ctl enable web 198.18.2.3:80 >/dev/null
ms=$(wait_routes -4 2) || lab_fail "IPv4 VIP not announced again"
lab_check "announced again ${ms} ms after a backend came back (within 500)" test "$ms" -le 500

# A reload with the same block: no route touched.
sleep 0.2
mark=$(wc -l <"$LAB_DIR/monitor.log")
ctl reload >/dev/null || lab_fail "reload"
sleep 0.3
lab_check "a reload leaves the routes alone" \
	test -z "$(tail -n +$((mark + 1)) "$LAB_DIR/monitor.log" | grep 'proto 250')"

cp "$(config '"announce": {"table": 201, "protocol": 250}')" "$cfg"
ctl reload >/dev/null || lab_fail "reload to table 201"
lab_check "a reload to table 201 moves the routes" \
	test "$(wait_routes -4 2 201)" -a "$(wait_routes -6 1 201)" -a "$(wait_routes -4 0 200)"
cp "$(config)" "$cfg"
ctl reload >/dev/null || lab_fail "reload without announce"
lab_check "a reload without the block removes device and routes" test -z "$(leftovers 201)"
cp "$(config "$announce")" "$cfg"
ctl reload >/dev/null || lab_fail "reload with announce again"
lab_check "a reload with the block again announces" test "$(wait_routes -6 1)"

out=$(ctl drain-gateway 30) || lab_fail "drain-gateway: $out"
lab_check "drain-gateway withdraws everything" test "$(wait_routes -4 0)" -a "$(wait_routes -6 0)"
# settle_ms is 100 and no connection is open: the drain may have ended already.
lab_check "status shows the drain" grep -Eq "^gateway: *drain(ing|ed) since" <<<"$(ctl status)"
lab_check "so does the HTTP listener's status" grep -Eqx "drain(ing|ed)" \
	<<<"$(http_get /status.json | jq -r .status.gateway.state)"
lab_check "and its metrics" grep -qx "lb_gateway_draining 1" <<<"$(http_get /metrics)"
lab_check "a second drain-gateway is fine" grep -q "then lb stops" <<<"$(ctl drain-gateway --stop 30)"
out=$(ctl resume-gateway) || lab_fail "resume-gateway: $out"
lab_check "resume-gateway announces again" test "$(wait_routes -4 2)" -a "$(wait_routes -6 1)"
lab_check "status: serving" grep -q "^gateway: *serving" <<<"$(ctl status)"
lab_check "HTTP status: serving, 2 routes" test "$(http_get /status.json |
	jq -r '.status.gateway | "\(.state) \(.announce.routes)"')" = "serving 3"
lab_check "resume-gateway when not drained is an error" not ctl resume-gateway

# SIGKILL: nothing of lb's runs the device's file any more.
workers=$(pgrep -P "$LAB_LB_PID")
t0=$(lab_now_ms)
kill -KILL "$LAB_LB_PID"
wait "$LAB_LB_PID" 2>/dev/null
LAB_LB_PID=
ms=$(wait_routes -4 0) && wait_routes -6 0 >/dev/null || lab_fail "routes outlived a killed lb"
lab_check "routes gone $(($(lab_now_ms) - t0)) ms after SIGKILL (within 1000)" \
	test $(($(lab_now_ms) - t0)) -le 1000
lab_check "the device went with it" test -z "$(leftovers)"
for w in $workers; do
	for ((i = 0; i < 20; i++)); do
		kill -0 "$w" 2>/dev/null || break
		sleep 0.05
	done
done
# lb left its nft table and rules behind (it was killed); a new lb replaces them.
lab_lb_start "$cfg"
wait_routes -4 2 >/dev/null || lab_fail "no routes after a restart"
lab_lb_stop TERM
lab_check "SIGTERM: lb exits 0" test $? = 0
lab_check "... withdrawing first" grep -q "withdrawn: lb is stopping" "$LAB_LB_LOG"
lab_check "... and leaves no route or device" test -z "$(leftovers)"

# Errors.
start_fails() {
	local log=$LAB_DIR/fail.log
	"$@" >"$log" 2>&1
	local rc=$?
	cat "$log" >>"$LAB_DIR/fails.log"
	[[ $rc != 0 ]] && grep -q -- "$EXPECT" "$log"
}
in_gw ip tuntap add mode tun name lb-announce
EXPECT="TUN device lb-announce exists and is persistent" lab_check \
	"a persistent device of that name: refused" start_fails in_gw "$LB_BIN" -c "$cfg"
lab_check "... and left as it was" in_gw ip link show lb-announce
in_gw ip link del lb-announce
lab_lb_start "$cfg"
other=$LAB_DIR/other.json
cat >"$other" <<EOF
{
	"workers": 1,
	"control": {"path": "$LAB_DIR/other.sock"},
	"intercept": {"port": 50081, "mark": 2, "table": "other", "route_table": 101,
		"rule_priority": 101},
	$block,
	"services": [{"name": "x", "vips": ["198.18.100.9:80"],
		"backends": [{"address": "198.18.2.2:80"}]}]
}
EOF
EXPECT="another process holds it" lab_check "a second lb on the same device: refused" \
	start_fails in_gw "$LB_BIN" -c "$other"
lab_check "the first one still announces" test "$(routes -4 | grep -c .)" = 2
lab_lb_stop TERM
EXPECT="/dev/net/tun.*No such file" lab_check "no /dev/net/tun: refused, saying so" \
	start_fails in_gw unshare -m sh -c 'mount -t tmpfs none /dev/net && exec "$0" -c "$1"' \
	"$LB_BIN" "$cfg"
lab_stop "$MON"
lab_check "nothing left behind" lab_gw_leftovers
