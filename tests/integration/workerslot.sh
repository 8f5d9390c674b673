#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A worker that cannot start (the master's socketpair() fails, as when its
# descriptors run out) keeps its shared-memory slot from the next one: with
# 2 workers and the first start of worker 0 failing (tests/tools/failcall.so
# preloaded), worker 1 starts, then worker 0 on its retry; status then lists
# both, each with its own pid, both running, and they are lb's workers.
# Without the slot claimed at once, worker 1 took worker 0's slot too: one
# worker listed, the other's heartbeat and counters written over it.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq
lab_need_lb
SHIM=${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/failcall.so
[[ -f $SHIM ]] || lab_skip "failcall.so not built: make check builds it ($SHIM)"
lab_up

cfg=$(lab_config_with '"workers": 2' '{"name": "web", "vips": ["'"$LAB_VIP4"':80"],
	"backends": [{"address": "'"${LAB_BE_IP4[0]}"':80"}]}')
w=$LAB_DIR/lb-failcall
printf '#!/bin/sh\nexec env LD_PRELOAD=%s LB_FAIL_SOCKETPAIR=1 %s "$@"\n' "$SHIM" "$LB_BIN" >"$w"
chmod 755 "$w"
real=$LB_BIN
LB_BIN=$w lab_lb_start "$cfg"
LB_BIN=$real
lab_check "worker 0's first start failed (the shim works)" \
	grep -q 'worker 0 of generation 1: cannot start: Too many open files' "$LAB_LB_LOG"
lab_wait_grep "$LAB_LB_LOG" 'worker 0 of generation 1 started' 10 >/dev/null ||
	{ lab_lb_log; lab_fail "worker 0 did not start on its retry"; }
sleep 0.5
listed=$(lab_ctl_call '{"cmd": "status"}' | jq -r '[.data.workers[] | select(.state == "running") | .pid] | sort | join(" ")')
children=$(pgrep -P "$LAB_LB_PID" | sort -n | paste -sd' ')
[[ $listed == "$children" && $(wc -w <<<"$listed") == 2 ]] ||
	{ lab_lb_log; lab_fail "status lists running workers [$listed], lb's workers are [$children]"; }
lab_log "ok: both workers listed, each in its own slot: $listed"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
