#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# lbctl top under a pseudo-terminal (script(1)) while curl loops through
# the VIP to one backend:
#  - run for about 3 s, then q: it exits 0 having drawn at least 2 frames;
#    the backend's CONN/S in the last frame is within a factor of 2 of the
#    rate lb's own counter moved at over the run, and above 0; the other,
#    drained backend shows "drain" and 0.0 conn/s; bytes/s are above 0;
#  - the terminal is as before: cursor shown again, and stty run after it
#    in the same terminal reports icanon and echo;
#  - Ctrl-C (sent through the terminal, so it arrives as SIGINT from the
#    line discipline) ends it the same clean way.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root script jq
lab_need_lb
lab_up
lab_nginx_start

LBCTL=${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl
SOCK=$LAB_DIR/lb.sock
cfg=$(lab_config_with '"workers": 2' '{
		"name": "web",
		"vips": ["198.18.100.1:80"],
		"backends": [{"address": "198.18.2.2:80"}, {"address": "198.18.2.3:80"}]
	}')
lab_lb_start "$cfg"
"$LBCTL" -s "$SOCK" drain web 198.18.2.3:80 >/dev/null || lab_fail "lbctl drain"
total() { lab_ctl_call '{"cmd": "backends"}' | jq '.data[] | select(.address == "198.18.2.2:80") | .total'; }

# run_top KEYS_AFTER_S KEY: lbctl top in a pty with 100 columns, then stty -a in it;
# KEY typed after KEYS_AFTER_S seconds. The typescript goes to $LAB_DIR/top.out.
# script(1) runs the line with $SHELL; Ctrl-C signals the whole foreground group,
# shell included, and dash (CI's /bin/sh) dies of it where bash waits for its
# child, so the shell is named here rather than taken from the caller.
run_top() {
	{ sleep "$1"; printf '%b' "$2"; sleep 1; } |
		SHELL=/bin/bash TERM=xterm COLUMNS=100 LINES=30 script -qfec \
			"stty cols 100 rows 30; $LBCTL -s $SOCK top; echo \"top-exit=\$?\"; stty -a" \
			"$LAB_DIR/top.out" >/dev/null
}

lab_load_start http://198.18.100.1/
sleep 1
t0=$(lab_now_ms)
c0=$(total)
run_top 3.2 q
c1=$(total)
t1=$(lab_now_ms)
lab_load_stop
out=$(sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$LAB_DIR/top.out" | tr -d '\r')
grep -q 'top-exit=0' <<<"$out" || { cat "$LAB_DIR/top.out" >&2; lab_fail "lbctl top did not exit 0 on q"; }
frames=$(grep -c '^lb top ' <<<"$out")
((frames >= 2)) || lab_fail "$frames frames in 3 s"
row=$(grep -E '^web +198\.18\.2\.2:80 ' <<<"$out" | tail -n1)
read -r _ _ state active rate in out_ _ <<<"$row"
real=$(awk -v c="$((c1 - c0))" -v ms="$((t1 - t0))" 'BEGIN { printf "%.1f", c * 1000 / ms }')
[[ $state == up ]] || lab_fail "backend state '$state': $row"
awk -v r="$rate" -v x="$real" 'BEGIN { exit !(r > 0 && r >= x / 2 && r <= x * 2) }' ||
	lab_fail "top shows $rate conn/s, lb's counter moved at $real/s: $row"
[[ $in != - && $in != 0 && $out_ != - && $out_ != 0 ]] || lab_fail "bytes/s: $row"
drained=$(grep -E '^web +198\.18\.2\.3:80 ' <<<"$out" | tail -n1)
[[ $drained =~ ^web\ +198\.18\.2\.3:80\ +drain\ +0\ +0\.0\  ]] || lab_fail "drained backend: $drained"
lab_log "ok: $frames frames; last: $row (lb counted $real/s over the run); $drained"
grep -q $'\x1b\[?25h' "$LAB_DIR/top.out" || lab_fail "cursor not shown again"
grep -qE '(^|[ ;])icanon' <<<"$out" && grep -qE '(^|[ ;])echo([ ;]|$)' <<<"$out" ||
	lab_fail "terminal not restored: $(grep -E 'icanon|echo' <<<"$out")"
lab_log "ok: exit 0 on q, cursor shown, icanon and echo back"

run_top 1.5 '\003'
out=$(sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$LAB_DIR/top.out" | tr -d '\r')
grep -q 'top-exit=0' <<<"$out" || { cat "$LAB_DIR/top.out" >&2; lab_fail "lbctl top did not exit 0 on Ctrl-C"; }
grep -qE '(^|[ ;])icanon' <<<"$out" && grep -qE '(^|[ ;])echo([ ;]|$)' <<<"$out" ||
	lab_fail "terminal not restored after Ctrl-C"
lab_log "ok: Ctrl-C: exit 0, icanon and echo back"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
