#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Active http health checks: a backend whose server stops is taken out
# within interval * fall + timeout, with no client request needed to find
# out, so every request goes to the other; once it serves again it is put
# back after rise checks and gets requests again.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_up

INTERVAL=300 TIMEOUT=300 RISE=2 FALL=2
PORT=8080
A=${LAB_BE_IP4[0]}
B=${LAB_BE_IP4[1]}
# Detection bounds plus 1 s of slack for scheduling and process start-up.
DOWN_WITHIN=$(awk -v i=$INTERVAL -v f=$FALL -v t=$TIMEOUT 'BEGIN { print (i * f + t + 1000) / 1000 }')
UP_WITHIN=$(awk -v i=$INTERVAL -v r=$RISE -v t=$TIMEOUT 'BEGIN { print (i * r + t + 1000) / 1000 }')

# One nginx per backend, so B can be stopped alone.
lab_nginx_one "$A" $PORT
lab_nginx_one "$B" $PORT
PID_B=$LAB_NGINX_PID

cfg=$(lab_config_with '"workers": 2' - <<JSON
	{
		"name": "web",
		"vips": ["$LAB_VIP4:80"],
		"backends": [
			{"address": "$A:$PORT"},
			{"address": "$B:$PORT"}
		],
		"connect_timeout_ms": 1000,
		"health": {"type": "http", "path": "/", "interval_ms": $INTERVAL,
			   "timeout_ms": $TIMEOUT, "rise": $RISE, "fall": $FALL,
			   "expect": "200-399"}
	}
JSON
)
lab_lb_start "$cfg"

# count N: N requests from one client address; prints "A_COUNT B_COUNT".
count() {
	local i body na=0 nb=0
	for ((i = 0; i < $1; i++)); do
		body=$(lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/") ||
			{ lab_lb_log; lab_fail "request $i failed"; }
		case $body in
		"backend=$A "*) na=$((na + 1)) ;;
		"backend=$B "*) nb=$((nb + 1)) ;;
		*) lab_fail "unexpected answer: $body" ;;
		esac
	done
	echo "$na $nb"
}

read -r na nb <<<"$(count 20)"
[[ $na -gt 0 && $nb -gt 0 ]] || { lab_lb_log; lab_fail "both up: 20 requests went $na to $A, $nb to $B"; }
lab_log "ok: both backends up: $na to $A, $nb to $B"

# No request is sent while B is stopped until lb reports it down: only the
# active checks can have noticed.
lab_nginx_stop "$PID_B" "$B" $PORT
line=$(lab_wait_grep "$LAB_LB_LOG" "backend $B:$PORT: health up -> down \\($FALL consecutive failed checks: connect: " "$DOWN_WITHIN") ||
	{ lab_lb_log; lab_fail "$B not marked down within $DOWN_WITHIN s of stopping its server"; }
lab_log "ok: marked down: ${line#*: }"
read -r na nb <<<"$(count 20)"
[[ $na -eq 20 && $nb -eq 0 ]] || { lab_lb_log; lab_fail "B down: 20 requests went $na to $A, $nb to $B"; }
lab_log "ok: B down: all 20 requests answered by $A"
grep -Eq "backend $B:$PORT: health up -> down \\(passive" "$LAB_LB_LOG" &&
	{ lab_lb_log; lab_fail "B was taken down by failed client connects, not by health checks"; }

lab_nginx_one "$B" $PORT
line=$(lab_wait_grep "$LAB_LB_LOG" "backend $B:$PORT: health down -> up \\($RISE consecutive successful checks" "$UP_WITHIN") ||
	{ lab_lb_log; lab_fail "$B not marked up within $UP_WITHIN s of restarting its server"; }
lab_log "ok: marked up: ${line#*: }"
read -r na nb <<<"$(count 20)"
[[ $na -gt 0 && $nb -gt 0 ]] || { lab_lb_log; lab_fail "B back: 20 requests went $na to $A, $nb to $B"; }
lab_log "ok: B back: $na to $A, $nb to $B"

lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
