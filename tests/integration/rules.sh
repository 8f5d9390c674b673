#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# lb installs its nftables table, policy rules and routes while running and
# removes all of them on SIGTERM and SIGINT; lb -t prints the ruleset for a
# good config, exactly as nft lists the installed one, and names the JSON
# path of an error in a bad one; a reload that renames the table swaps it in
# one transaction.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_up
cfg=$(lab_config)

# expect WHAT REGEX TEXT: TEXT must match the extended regex.
expect() {
	if grep -Eq -- "$2" <<<"$3"; then
		lab_log "ok: $1"
	else
		lab_log "FAIL: $1: no match for /$2/ in:"
		sed 's/^/  | /' <<<"$3" >&2
		exit 1
	fi
}

# reject WHAT REGEX TEXT: TEXT must not match.
reject() {
	if grep -Eq -- "$2" <<<"$3"; then
		lab_log "FAIL: $1: unexpected /$2/ in:"
		sed 's/^/  | /' <<<"$3" >&2
		exit 1
	fi
	lab_log "ok: $1"
}

# --- lb -t ---
out=$(in_gw "$LB_BIN" -t -c "$cfg" 2>"$LAB_DIR/t.err")
rc=$?
[[ $rc -eq 0 ]] || { cat "$LAB_DIR/t.err" >&2; lab_fail "lb -t on a valid config exited $rc, want 0"; }
lab_log "ok: lb -t -c lab.json exits 0"
expect "lb -t prints table inet lb" '^table inet lb \{' "$out"
expect "lb -t prints the vips4 element" '198\.18\.100\.1 \. 80' "$out"
expect "lb -t prints the vips6 element" '2001:db8:100::1 \. 80' "$out"
expect "lb -t prints the v4 tproxy rule" 'tproxy ip to 127\.0\.0\.1:50080' "$out"
expect "lb -t prints the v6 tproxy rule" 'tproxy ip6 to \[::1\]:50080' "$out"
expect "lb -t prints the socket rule" 'socket transparent 1' "$out"
expect "lb -t prints the ICMP rule" '^	+icmp type \{ destination-unreachable, time-exceeded, parameter-problem \} socket transparent 1' "$out"
expect "lb -t prints the ICMPv6 rule" '^	+icmpv6 type \{ destination-unreachable, packet-too-big, time-exceeded, parameter-problem \} socket transparent 1' "$out"
expect "lb -t prints the policy rule" 'fwmark 0x1 lookup 100' "$out"
reject "lb -t changed nothing in the gateway" 'inet lb' "$(in_gw nft list tables)"

bad=$LAB_DIR/bad.json
sed 's/198\.18\.2\.3:80/198.18.2.3:99999/' "$cfg" >"$bad"
grep -q 99999 "$bad" || lab_fail "could not build the invalid config"
in_gw "$LB_BIN" -t -c "$bad" >/dev/null 2>"$LAB_DIR/bad.err"
rc=$?
err=$(cat "$LAB_DIR/bad.err")
[[ $rc -eq 1 ]] || { printf '%s\n' "$err" >&2; lab_fail "lb -t on a config with port 99999 exited $rc, want 1"; }
lab_log "ok: lb -t with backend port 99999 exits 1"
expect "the error names the JSON path" 'services\[0\]\.backends\[1\]\.address' "$err"

in_gw "$LB_BIN" -t -c "$LAB_DIR/missing.json" >/dev/null 2>"$LAB_DIR/missing.err"
rc=$?
[[ $rc -eq 1 ]] || lab_fail "lb -t on a missing file exited $rc, want 1"
expect "a missing config file is named" 'missing\.json' "$(cat "$LAB_DIR/missing.err")"

# --- running: rules in place; stopped: all gone ---
check_installed() {
	local t
	t=$(in_gw nft list table inet lb 2>&1) || { lab_lb_log; lab_fail "nft list table inet lb: $t"; }
	expect "chain hooks prerouting at mangle priority" 'type filter hook prerouting priority (mangle|-150)' "$t"
	expect "set vips4 exists" 'set vips4 \{' "$t"
	expect "set vips6 exists" 'set vips6 \{' "$t"
	expect "vips4 element" '198\.18\.100\.1 \. 80' "$t"
	expect "vips6 element" '2001:db8:100::1 \. 80' "$t"
	expect "socket rule marks lb's own connections" 'meta l4proto tcp socket transparent 1 meta mark set 0x0*1 accept' "$t"
	expect "v4 tproxy rule" 'ip daddr \. tcp dport @vips4 tproxy ip to 127\.0\.0\.1:50080 meta mark set 0x0*1 accept' "$t"
	expect "v6 tproxy rule" 'ip6 daddr \. tcp dport @vips6 tproxy ip6 to \[::1\]:50080 meta mark set 0x0*1 accept' "$t"
	expect "ICMP errors about lb's sockets are marked" 'icmp type \{ destination-unreachable, time-exceeded, parameter-problem \} socket transparent 1 meta mark set 0x0*1 accept' "$t"
	expect "ICMPv6 errors about lb's sockets are marked" 'icmpv6 type \{ destination-unreachable, packet-too-big, time-exceeded, parameter-problem \} socket transparent 1 meta mark set 0x0*1 accept' "$t"
	# lb -t prints what nft lists (one element per set here, so the order
	# of elements, a hash's, cannot differ).
	diff <(grep -v '^$' <<<"$t") \
		<(in_gw "$LB_BIN" -t -c "$cfg" 2>/dev/null | sed -n '/^table/,/^}/p' | grep -v '^$') >&2 ||
		lab_fail "lb -t and nft list table inet lb differ"
	lab_log "ok: lb -t prints the ruleset as nft lists it"
	expect "ip rule fwmark 0x1 lookup 100" 'fwmark 0x1 lookup 100' "$(in_gw ip rule show)"
	expect "ip -6 rule fwmark 0x1 lookup 100" 'fwmark 0x1 lookup 100' "$(in_gw ip -6 rule show)"
	expect "table 100 has local default dev lo" '^local default dev lo' "$(in_gw ip route show table 100)"
	expect "v6 table 100 has local default dev lo" '^local default dev lo' "$(in_gw ip -6 route show table 100)"
}

check_removed() {
	local how=$1
	reject "$how: table inet lb removed" 'inet lb' "$(in_gw nft list tables)"
	reject "$how: ip rule removed" 'fwmark 0x1' "$(in_gw ip rule show)"
	reject "$how: ip -6 rule removed" 'fwmark 0x1' "$(in_gw ip -6 rule show)"
	reject "$how: table 100 route removed" 'local' "$(in_gw ip route show table 100 2>/dev/null)"
	reject "$how: v6 table 100 route removed" 'local' "$(in_gw ip -6 route show table 100 2>/dev/null)"
	reject "$how: no lb process left" '.' "$(ip netns pids "$LAB_GW")"
}

for sig in TERM INT; do
	lab_lb_start "$cfg"
	check_installed
	lab_lb_stop "$sig"
	rc=$?
	[[ $rc -eq 0 ]] || { lab_lb_log; lab_fail "lb exited $rc after SIG$sig, want 0"; }
	lab_log "ok: lb exits 0 on SIG$sig"
	check_removed "after SIG$sig"
done

# --- a renamed intercept.table is swapped in one transaction ---
# nft monitor ends each transaction with a "# new generation" line: the old
# table's deletion and the new one's creation must come in the same one, so
# no packet meets both tables or neither.
lab_nginx_start
lab_lb_start "$cfg"
mon=$LAB_DIR/monitor.txt
lab_bg "$LAB_GW" "$mon" nft monitor
mon_pid=$LAB_BG_PID
sleep 0.5
renamed=$LAB_DIR/renamed.json
sed 's/"table": "lb"/"table": "lb2"/' "$cfg" >"$renamed"
grep -q '"table": "lb2"' "$renamed" || lab_fail "could not build the renamed config"
cp "$renamed" "$cfg"
kill -HUP "$LAB_LB_PID"
lab_wait_grep "$LAB_LB_LOG" 'reload: generation 2' 5 >/dev/null ||
	{ lab_lb_log; lab_fail "the reload to table lb2 did not complete"; }
sleep 0.3
kill "$mon_pid"
awk '/^# new generation/ { if (del && add) ok = 1; del = add = 0; next }
	/^delete table inet lb$/ { del = 1 } /^add table inet lb2$/ { add = 1 }
	END { exit !ok }' "$mon" ||
	{ sed 's/^/  monitor| /' "$mon" >&2; lab_fail "table lb was not replaced by lb2 in one transaction"; }
lab_log "ok: the table rename is one transaction: $(grep -c '^# new generation' "$mon") generation(s) seen"
tables=$(in_gw nft list tables)
expect "table inet lb2 is in place" 'inet lb2$' "$tables"
reject "table inet lb is gone" 'inet lb$' "$tables"
lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/" >/dev/null ||
	{ lab_lb_log; lab_fail "no answer through table lb2"; }
lab_log "ok: requests are intercepted through table lb2"
lab_lb_stop TERM || lab_fail "lb did not stop after the rename"
reject "after the rename and SIGTERM: table inet lb2 removed" 'inet lb2' "$(in_gw nft list tables)"
lab_log "PASS"
