#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The capacity report: `lbctl limits` (through the control socket) and
# `lb -t` name each worker's open-file limit and connections, the total,
# the host sysctls, the bound a non-transparent proxy would hit per
# service, and the limit that binds first; lb warns at start when a limit
# is below what its config needs.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root prlimit
lab_need_lb
LBCTL=${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl
[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
lab_up
lab_nginx_start
cfg=$(lab_config)
# A small, known open-file limit (4000): the report must derive capacity from it.
in_gw sysctl -qw net.core.somaxconn=128

expect() {
	grep -Eq -- "$2" <<<"$3" || { printf '%s\n' "$3" | sed 's/^/  | /' >&2; lab_fail "$1: no /$2/"; }
	lab_log "ok: $1"
}

out=$(in_gw prlimit --nofile=4000:4000 "$LB_BIN" -t -c "$cfg" 2>/dev/null) || lab_fail "lb -t failed"
expect "lb -t: per-worker capacity from the open-file limit" '^# capacity: 1840 connections per worker \(open-file limit 4000\), 2 workers: 3680 connections$' "$out"
expect "lb -t: the non-transparent bound per service" 'would stop at 4 x [0-9]+ = [0-9]+ .*lb connects from the client.s address and does not' "$out"
expect "lb -t: the binding limit" '^#   binding limit: open-file limit, 3680 connections$' "$out"
expect "lb -t: somaxconn warning" '^# warning: net.core.somaxconn 128 is below a worker.s capacity 1840' "$out"


lab_bg "$LAB_GW" "$LAB_DIR/lb.log" prlimit --nofile=4000:4000 "$LB_BIN" -c "$cfg"
LAB_LB_PID=$LAB_BG_PID
LAB_LB_LOG=$LAB_DIR/lb.log
lab_wait_grep "$LAB_LB_LOG" 'ready' 10 >/dev/null || { lab_lb_log; lab_fail "lb did not start"; }
grep -q 'level=warning .*limits: net.core.somaxconn 128 is below' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "no start-up warning for somaxconn"; }
lab_log "ok: lb warns at start: $(grep -o 'limits: net.core.somaxconn[^"]*' "$LAB_LB_LOG" | head -c 100)..."
out=$(in_gw "$LBCTL" -s "$LAB_DIR/lb.sock" limits) || lab_fail "lbctl limits failed: $out"
expect "lbctl limits: per worker" '^capacity: 1840 connections per worker \(open-file limit 4000\), 2 workers: 3680 connections$' "$out"
expect "lbctl limits: sysctls" 'fs.file-max [0-9]+.*fs.nr_open [0-9]+' "$out"
# tcp_mem is global: a network namespace other than the first does not show it.
expect "lbctl limits: tcp_mem" 'net.ipv4.tcp_mem ([0-9]+ [0-9]+ [0-9]+ pages|unknown)' "$out"
expect "lbctl limits: binding limit" '^  binding limit: open-file limit, 3680 connections$' "$out"
json=$(in_gw "$LBCTL" -s "$LAB_DIR/lb.sock" --json limits) || lab_fail "lbctl --json limits failed"
expect "lbctl --json limits: numbers" '"per_worker": ?\{"nofile": ?4000, ?"connections": ?1840' "$json"
expect "lbctl --json limits: binding" '"binding": ?\{"limit": ?"open-file limit", ?"connections": ?3680\}' "$json"
lab_lb_stop TERM || lab_fail "lb exited non-zero"
lab_log PASS
