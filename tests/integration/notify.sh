#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# systemd Type=notify: lb sends READY=1 once its rules are in place and its
# workers accept, RELOADING=1 then READY=1 around a reload, STOPPING=1 on
# SIGTERM, to the datagram socket named by NOTIFY_SOCKET.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root socat
lab_need_lb
lab_up
lab_nginx_start
cfg=$(lab_config)
sock=$LAB_DIR/notify.sock
lab_bg "$LAB_GW" "$LAB_DIR/notify.log" socat -u "UNIX-RECV:$sock" STDOUT
for ((i = 0; i < 50; i++)); do [[ -S $sock ]] && break; sleep 0.1; done
[[ -S $sock ]] || lab_fail "socat did not create $sock"

export NOTIFY_SOCKET=$sock
lab_lb_start "$cfg"
unset NOTIFY_SOCKET
lab_wait_grep "$LAB_DIR/notify.log" '^READY=1' 5 >/dev/null || lab_fail "no READY=1: $(cat "$LAB_DIR/notify.log")"
# READY must mean serving.
lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/" >/dev/null || lab_fail "READY=1 sent but the VIP does not answer"
lab_log "ok: READY=1 after start, and the VIP answers"

kill -HUP "$LAB_LB_PID"
lab_wait_grep "$LAB_DIR/notify.log" '^STATUS=generation 2' 5 >/dev/null ||
	lab_fail "no READY after the reload: $(cat "$LAB_DIR/notify.log")"
seq=$(grep -E '^(READY|RELOADING|STOPPING)=1' "$LAB_DIR/notify.log" | tr '\n' ' ')
[[ $seq == "READY=1 RELOADING=1 READY=1 " ]] || lab_fail "unexpected sequence after reload: $seq; log: $(tr "\n" "|" <"$LAB_DIR/notify.log")"
grep -q '^MONOTONIC_USEC=[0-9]\+$' "$LAB_DIR/notify.log" || lab_fail "RELOADING=1 without MONOTONIC_USEC"
lab_log "ok: reload: RELOADING=1 (with MONOTONIC_USEC), then READY=1"

lab_lb_stop TERM || lab_fail "lb exited non-zero on SIGTERM"
seq=$(grep -E '^(READY|RELOADING|STOPPING)=1' "$LAB_DIR/notify.log" | tr '\n' ' ')
[[ $seq == "READY=1 RELOADING=1 READY=1 STOPPING=1 " ]] || lab_fail "unexpected sequence after stop: $seq"
lab_log "ok: STOPPING=1 on SIGTERM"
lab_log PASS
