#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What lb says and does at start: without privilege it refuses with a
# message naming the capability; with ip_forward off it warns with the fix;
# a table left by a crashed run is replaced, other tables are never touched;
# a taken intercept port is named.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root setpriv
lab_need_lb
lab_up
lab_nginx_start
cfg=$(lab_config)
chmod 644 "$cfg"

# --- no privilege: exit 1, message names CAP_NET_ADMIN, nothing installed ---
out=$(in_gw setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \
	--bounding-set=-all "$LB_BIN" -c "$cfg" 2>&1)
rc=$?
[[ $rc -eq 1 ]] || lab_fail "unprivileged lb exited $rc, want 1; output: $out"
grep -q 'CAP_NET_ADMIN' <<<"$out" || lab_fail "unprivileged lb did not name CAP_NET_ADMIN: $out"
lab_log "ok: unprivileged lb refuses: $(grep -o 'missing privilege.*' <<<"$out" | head -c 120)"
in_gw nft list table inet lb >/dev/null 2>&1 && lab_fail "unprivileged lb left table inet lb"

# --- leftover table from a crashed run, and a table lb does not own ---
in_gw nft -f - <<'NFT' || lab_fail "cannot create the leftover tables"
table inet lb {
	chain stale { type filter hook input priority 0; policy accept; }
}
table inet other {
	chain keep { type filter hook forward priority 0; policy accept; counter; }
}
NFT
in_gw sysctl -qw net.ipv4.ip_forward=0
lab_lb_start "$cfg"
grep -q 'ip_forward is 0.*sysctl -w net.ipv4.ip_forward=1' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "no ip_forward warning with its fix"; }
lab_log "ok: ip_forward=0 is reported with its fix"
in_gw sysctl -qw net.ipv4.ip_forward=1
ruleset=$(in_gw nft list table inet lb)
grep -q 'chain stale' <<<"$ruleset" && lab_fail "the leftover chain survived lb's start"
grep -q 'chain prerouting' <<<"$ruleset" || lab_fail "lb's chain is missing: $ruleset"
lab_log "ok: a leftover table inet lb is replaced at start"
body=$(lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/") || lab_fail "request after replacing the leftover table failed"
[[ $body == *"client=${LAB_CLI_IP4[0]}"* ]] || lab_fail "unexpected answer: $body"
lab_log "ok: serving after the replacement"

# --- a second lb on the same intercept port is refused with the reason ---
out=$(in_gw timeout 10 "$LB_BIN" -c "$cfg" 2>&1)
rc=$?
[[ $rc -eq 1 ]] || lab_fail "second lb exited $rc, want 1; output: $out"
grep -q 'listener 127.0.0.1:50080.*intercept.port' <<<"$out" ||
	lab_fail "second lb did not explain the taken port: $out"
lab_log "ok: a taken intercept port is named: $(grep -o 'listener.*' <<<"$out" | head -c 140)"
in_gw nft list table inet lb >/dev/null 2>&1 || lab_fail "the failed second lb removed the first one's table"
lab_curl "${LAB_CLI_IP4[1]}" "http://$LAB_VIP4/" >/dev/null || lab_fail "first lb stopped serving"
lab_log "ok: the first lb keeps serving"

lab_lb_stop TERM || lab_fail "lb exited non-zero on SIGTERM"
in_gw nft list table inet other >/dev/null 2>&1 || lab_fail "lb removed a table it does not own"
grep -q counter <<<"$(in_gw nft list table inet other)" || lab_fail "table inet other was changed"
lab_log "ok: table inet other untouched after lb's start and stop"
lab_log PASS
