#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A reload that changes a service's clients lists and limits (issue 20)
# applies them to new connections, atomically with the rest of the
# ruleset, and drops no established one:
#  - a client with connections open (each echoing every 50 ms throughout)
#    is put on the deny list and under a max_conns below what it holds: its
#    connections go on untouched; its new ones are refused;
#  - a client denied before the reload is served after it;
#  - the new rate and max_conns hold for new connections;
#  - reloading back lifts them again; the held connections never stalled.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=clientreload
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq
lab_need_lb
lab_need_peer
lab_up

BE=${LAB_BE_IP4[0]}
PORT=9500
VIP=$LAB_VIP4:$PORT
HOLDER=${LAB_CLI_IP4[1]}
WAS_DENIED=${LAB_CLI_IP4[2]}
OTHER=${LAB_CLI_IP4[3]}

lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$PEER" echo "$BE:$PORT"
ECHO=$LAB_BG_PID
lab_wait_port "$LAB_BE" "$BE" $PORT || lab_fail "peer echo not listening on $BE:$PORT"

# config CLIENTS: the service with that clients object; prints the path.
# The old generation drains for drain_timeout_ms after each reload, then
# closes what it still holds: longer than the test.
config() {
	lab_config_with '"workers": 2, "drain_timeout_ms": 60000' '{
		"name": "one",
		"vips": ["'"$VIP"'"],
		"backends": [{"address": "'"$BE:$PORT"'"}],
		"clients": '"$1"'
	}'
}
before='{"deny": ["'"$WAS_DENIED"'"]}'
after='{"deny": ["'"$HOLDER"'"], "deny_action": "reset", "max_conns": 2,
	"rate": {"per_second": 5, "burst": 5}}'
cfg=$(config "$before")
lab_lb_start "$cfg"

# reload GEN CLIENTS: rewrite the config and reload; wait for generation GEN.
reload() {
	cp "$(config "$2")" "$cfg"
	kill -HUP "$LAB_LB_PID"
	lab_wait_grep "$LAB_LB_LOG" "reload: generation $1" 5 >/dev/null || { lab_lb_log; lab_fail "reload $1"; }
}

# attempt SRC: one connection with an echoed byte; prints how it went.
attempt() {
	lab_bg "$LAB_CLI" "$LAB_DIR/attempt.log" "$PEER" hold -b "$1" -n 1 -e "$VIP"
	lab_wait_grep "$LAB_DIR/attempt.log" ' 1 (answered|reset|failed)' 1.2 >/dev/null
	lab_stop "$LAB_BG_PID"
	tail -n1 "$LAB_DIR/attempt.log"
}

lab_log "before: $HOLDER holds 4 connections that echo every 50 ms"
lab_bg "$LAB_CLI" "$LAB_DIR/ping.log" "$PEER" ping -b "$HOLDER" -n 4 -i 50 -T 1000 -t 12 "$VIP"
PING=$LAB_BG_PID
lab_wait_grep "$LAB_DIR/ping.log" 'ping: ready' 3 >/dev/null || { cat "$LAB_DIR/ping.log" >&2; lab_fail "ping not ready"; }
line=$(attempt "$WAS_DENIED")
[[ $line == *' 0 connected'* || $line == *' 0 answered'* ]] || lab_fail "$WAS_DENIED is denied, yet: $line"
lab_log "ok: $WAS_DENIED is denied: $line"

lab_log "reload: deny $HOLDER (reset), max_conns 2, rate 5/s burst 5"
t0=$(in_gw nft list table inet lb | grep -c .)
reload 2 "$after"
grep -q 'limit rate over 5/second' <(in_gw nft list table inet lb) || lab_fail "no new rate rule after the reload"
line=$(attempt "$HOLDER")
[[ $line == *' 1 failed'* ]] && grep -q 'Connection refused' "$LAB_DIR/attempt.log" ||
	lab_fail "$HOLDER's new connection after the reload: $line, want refused with a reset"
lab_log "ok: $HOLDER's new connection is refused: $line"
line=$(attempt "$WAS_DENIED")
[[ $line == *' 1 answered'* ]] || lab_fail "$WAS_DENIED after the reload: $line, want served"
lab_log "ok: $WAS_DENIED is served now: $line"
lab_bg "$LAB_CLI" "$LAB_DIR/cap.log" "$PEER" hold -b "$OTHER" -n 4 -p 4 -e "$VIP"
CAP=$LAB_BG_PID
line=$(lab_wait_grep "$LAB_DIR/cap.log" ' 2 answered, 0 eof, 2 reset' 3) ||
	{ cat "$LAB_DIR/cap.log" >&2; lab_fail "max_conns 2 after the reload"; }
lab_log "ok: max_conns 2 holds for $OTHER: $line"
lab_stop "$CAP"
sleep 1.2	# its bucket refills
in_cli "$PEER" flood -b "$OTHER" -p 32 -T 100 -t 1 "$VIP" >"$LAB_DIR/flood.log" 2>&1
line=$(tail -n1 "$LAB_DIR/flood.log")
# Through the meter: connected, or reset by lb for max_conns 2 (flood runs 32 at once).
n=$(awk '{ print $4 + $8 }' <<<"$line")
((n >= 7 && n <= 13)) || lab_fail "rate 5/s burst 5 over 1 s let $n through: $line"
lab_log "ok: rate 5/s burst 5 over 1 s: $line"
st=$(lab_ctl_call '{"cmd": "status"}' | jq '[.data.workers[] | select(.generation == 1)] | length')
lab_log "ok: generation 1 still has $st workers draining $HOLDER's connections"

lab_log "reload back: the lists and limits of before"
reload 3 "$before"
line=$(attempt "$OTHER")
[[ $line == *' 1 answered'* ]] || lab_fail "$OTHER after reloading back: $line"
line=$(attempt "$WAS_DENIED")
[[ $line == *' 0 answered'* ]] || lab_fail "$WAS_DENIED is denied again, yet: $line"
lab_log "ok: the old lists are back"
wait "$PING"
rc=$?
grep -E 'ping: (conn|total)' "$LAB_DIR/ping.log" | tail -n 5 | sed 's/^/  /' >&2
((rc == 0)) || { lab_lb_log; lab_fail "$HOLDER's held connections did not all survive both reloads"; }
lab_log "ok: $HOLDER's 4 connections echoed throughout both reloads"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_stop_drained "$ECHO" "$LAB_BE" $PORT
lab_log "PASS"
