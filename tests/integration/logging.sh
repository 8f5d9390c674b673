#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Log lines are key=value with a level; no line per connection by default;
# access_log adds one per connection with client, VIP, backend, bytes and
# duration; log_level warning leaves out info lines.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_up
lab_nginx_start

with_keys() { sed "s|\"workers\": 2,|\"workers\": 2, $1|" "$(lab_config)"; }

# --- default: key=value lines, no per-connection line ---
cfg=$LAB_DIR/default.json
with_keys '' >"$cfg"
lab_lb_start "$cfg"
for ip in "${LAB_CLI_IP4[@]}"; do lab_curl "$ip" "http://$LAB_VIP4/" >/dev/null || lab_fail "request from $ip failed"; done
lab_lb_stop TERM || lab_fail "lb exited non-zero"
bad=$(grep -Ev '^time=[0-9T:.-]+Z level=(error|warning|info|debug) proc=(master|worker\[[0-9]+\]) pid=[0-9]+ msg="([^"\\]|\\.)*"$' "$LAB_LB_LOG")
[[ -z $bad ]] || lab_fail "lines not in key=value form: $bad"
lab_log "ok: all $(wc -l <"$LAB_LB_LOG") log lines are key=value with a level"
grep -q 'event=access' "$LAB_LB_LOG" && lab_fail "access lines without access_log"
lab_log "ok: no line per connection by default"

# --- access_log ---
cfg=$LAB_DIR/access.json
with_keys '"access_log": true,' >"$cfg"
lab_lb_start "$cfg"
lab_curl "${LAB_CLI_IP4[1]}" "http://$LAB_VIP4/" >/dev/null || lab_fail "request failed"
in_cli curl -gsS --max-time 5 --interface "${LAB_CLI_IP6[2]}" "http://[$LAB_VIP6]/" >/dev/null || lab_fail "v6 request failed"
line=$(lab_wait_grep "$LAB_LB_LOG" "event=access .*client=${LAB_CLI_IP4[1]}:" 3) || lab_fail "no access line for ${LAB_CLI_IP4[1]}"
re="^time=[^ ]+ level=info proc=worker\[[0-9]+\] pid=[0-9]+ event=access service=web client=${LAB_CLI_IP4[1]}:[0-9]+ vip=$LAB_VIP4:80 backend=198\.18\.2\.[23]:80 bytes_in=[1-9][0-9]* bytes_out=[1-9][0-9]* duration_ms=[0-9]+ end=close$"
[[ $line =~ $re ]] || lab_fail "access line not as documented: $line"
lab_log "ok: access line: ${line#*event=}"
line=$(lab_wait_grep "$LAB_LB_LOG" "event=access .*client=\[${LAB_CLI_IP6[2]}\]:" 3) || lab_fail "no v6 access line"
[[ $line == *"vip=[$LAB_VIP6]:80 backend=[2001:db8:2::"* ]] || lab_fail "v6 access line: $line"
lab_log "ok: v6 access line: ${line#*event=}"
lab_lb_stop TERM || lab_fail "lb exited non-zero"

# --- log_level warning ---
cfg=$LAB_DIR/quiet.json
with_keys '"log_level": "warning",' >"$cfg"

in_gw sysctl -qw net.ipv4.ip_forward=0
lab_bg "$LAB_GW" "$LAB_DIR/quiet.log" "$LB_BIN" -c "$cfg"
pid=$LAB_BG_PID
for ((i = 0; i < 30; i++)); do
	lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/" >/dev/null 2>&1 && break
	sleep 0.1
done
lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/" >/dev/null || lab_fail "quiet lb does not serve"
kill -TERM "$pid"; wait "$pid"
in_gw sysctl -qw net.ipv4.ip_forward=1
grep -q 'level=info' "$LAB_DIR/quiet.log" && lab_fail "info lines with log_level warning: $(cat "$LAB_DIR/quiet.log")"
grep -q 'level=warning.*ip_forward' "$LAB_DIR/quiet.log" || lab_fail "warning missing with log_level warning"
lab_log "ok: log_level warning keeps warnings and drops info lines"
lab_log PASS
