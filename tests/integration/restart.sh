#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A SIGKILLed worker is replaced by a new one (new pid, same master) within
# a few seconds, and requests keep succeeding meanwhile and afterwards.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root pgrep
lab_need_lb
lab_up
lab_nginx_start
lab_lb_start "$(lab_config)"
master=$LAB_LB_PID
want=2 # "workers" in lab_config

workers() { pgrep -P "$master" | sort -n | paste -sd " " -; }

# requests N: N requests over each family, all must succeed.
requests() {
	local i url src
	for ((i = 0; i < $1; i++)); do
		for url in "http://$LAB_VIP4/" "http://[$LAB_VIP6]/"; do
			if [[ $url == *\[* ]]; then src=${LAB_CLI_IP6[i % 3]}; else src=${LAB_CLI_IP4[i % 3]}; fi
			lab_curl "$src" "$url" >/dev/null ||
				{ lab_lb_log; lab_fail "$2: request $i from $src to $url failed"; }
		done
	done
	lab_log "ok: $2: $(($1 * 2)) requests succeeded"
}

# wait_workers SECONDS: until $want workers run; prints them.
wait_workers() {
	local i w
	for ((i = 0; i < $1 * 10; i++)); do
		w=$(workers)
		[[ $(wc -w <<<"$w") -eq $want ]] && { echo "$w"; return 0; }
		sleep 0.1
	done
	echo "$w"
	return 1
}

before=$(wait_workers 5) || lab_fail "want $want workers under master $master, have: $before"
lab_log "ok: master $master has workers: $before"
requests 5 "before any kill"

for round in 1 2; do
	read -r -a old <<<"$before"
	victim=${old[round - 1]}
	lab_log "checking: SIGKILL worker $victim (round $round)"
	kill -KILL "$victim" || lab_fail "cannot kill worker $victim"
	requests 5 "right after killing $victim"
	after=$(wait_workers 5) || { lab_lb_log; lab_fail "no replacement worker within 5 s (workers: $after)"; }
	[[ " $after " != *" $victim "* ]] || lab_fail "killed worker $victim still listed: $after"
	survivor=${old[2 - round]}
	[[ " $after " == *" $survivor "* ]] || lab_fail "surviving worker $survivor disappeared: $after"
	kill -0 "$master" 2>/dev/null || { lab_lb_log; lab_fail "master $master died"; }
	lab_log "ok: worker $victim replaced; workers now: $after (master $master unchanged)"
	requests 10 "after restart round $round"
	before=$after
done

lab_lb_stop TERM
rc=$?
[[ $rc -eq 0 ]] || { lab_lb_log; lab_fail "lb exited $rc after SIGTERM, want 0"; }
lab_log "ok: lb still exits 0 on SIGTERM after worker restarts"
lab_log "PASS"
