#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Passive checks of a service without a health block (defaults: fall 3,
# rise 2, interval 2000 ms), 2 workers, backends A and B:
#  - B refuses connections: every request still succeeds (retried on A);
#    after 3 refused connects lb logs B "health up -> down (passive: 3
#    consecutive connect failures", and no client connect goes to B after
#    that (lb logs every failed connect at debug);
#  - once B listens again, the tcp probe brings it "down -> up" within 2
#    intervals (+1 s) and it gets requests again;
#  - with both A and B refusing, clients are reset promptly (< 1 s, far
#    below connect_timeout_ms 3000; peer hold sees ECONNRESET) once both
#    are down, no connect is tried, and "no usable backend" is logged at
#    most once a second.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb peer
lab_up

PORT=9400
A=${LAB_BE_IP4[0]}
B=${LAB_BE_IP4[1]}
CLI=${LAB_CLI_IP4[0]}
URL=http://$LAB_VIP4/
UP_WITHIN=5	# 2 probes 2000 ms apart, the first up to 2000 ms away, + 1 s

lab_nginx_one "$A" $PORT
PID_A=$LAB_NGINX_PID

cfg=$(lab_config_with '"workers": 2, "log_level": "debug"' - <<JSON
	{
		"name": "p",
		"vips": ["$LAB_VIP4:80"],
		"backends": [{"address": "$A:$PORT"}, {"address": "$B:$PORT"}],
		"connect_timeout_ms": 3000
	}
JSON
)
lab_lb_start "$cfg"

fails_of() { grep -c "service p: connect to $1:$PORT failed" "$LAB_LB_LOG"; }
down_re() { echo "service p backend $1:$PORT: health up -> down \\(passive: 3 consecutive connect failures"; }

# ask: one request that must succeed; prints the backend that answered.
ask() {
	local body
	body=$(lab_curl "$CLI" "$URL") || { lab_lb_log; lab_fail "request failed: $1"; }
	[[ $body =~ ^backend=([^ ]+)\ client=$CLI$ ]] || lab_fail "unexpected answer: $body"
	echo "${BASH_REMATCH[1]}"
}

# --- B refuses: requests succeed, B goes down after 3 failures ---
lab_log "checking: $B refuses connections; requests are retried on $A until $B is marked down"
for ((i = 1; i <= 12; i++)); do
	be=$(ask "request $i, $B refusing")
	[[ $be == "$A" ]] || lab_fail "request $i answered by $be"
	grep -Eq "$(down_re "$B")" "$LAB_LB_LOG" && break
done
line=$(grep -E "$(down_re "$B")" "$LAB_LB_LOG") ||
	{ lab_lb_log; lab_fail "$B not marked down after 12 requests ($(fails_of "$B") connects to it failed)"; }
n=$(fails_of "$B")
((n == 3)) || { lab_lb_log; lab_fail "$n connects to $B failed before it went down, want 3"; }
lab_log "ok: all $i requests answered by $A; $B down after $n failed connects: ${line#*: }"

lab_log "checking: no client connect goes to $B while it is down"
for ((i = 1; i <= 20; i++)); do
	be=$(ask "request $i, $B down")
	[[ $be == "$A" ]] || lab_fail "request $i with $B down answered by $be"
done
n=$(fails_of "$B")
((n == 3)) || { lab_lb_log; lab_fail "$((n - 3)) more connects to $B after it was marked down"; }
lab_log "ok: 20 requests answered by $A, no further connect to $B"

# --- B listens again: the probe brings it back ---
lab_log "checking: once $B listens, the tcp probe brings it up within $UP_WITHIN s"
t0=$(lab_now_ms)
lab_nginx_one "$B" $PORT
PID_B=$LAB_NGINX_PID
line=$(lab_wait_grep "$LAB_LB_LOG" "service p backend $B:$PORT: health down -> up \\(2 consecutive successful checks" $UP_WITHIN) ||
	{ lab_lb_log; lab_fail "$B not marked up within $UP_WITHIN s of listening again"; }
lab_log "ok: $B up after $(($(lab_now_ms) - t0)) ms: ${line#*: }"
declare -A count=()
for ((i = 1; i <= 10; i++)); do
	be=$(ask "request $i, $B back")
	count[$be]=$((${count[$be]:-0} + 1))
done
[[ ${count[$A]:-0} -gt 0 && ${count[$B]:-0} -gt 0 ]] ||
	{ lab_lb_log; lab_fail "$B back: 10 requests went ${count[$A]:-0} to $A, ${count[$B]:-0} to $B"; }
lab_log "ok: $B back: ${count[$A]} to $A, ${count[$B]} to $B"

# --- nothing usable: prompt resets, rate-limited log ---
lab_log "checking: with $A and $B refusing, clients are reset promptly"
lab_nginx_stop "$PID_A" "$A" $PORT
lab_nginx_stop "$PID_B" "$B" $PORT
# try: one request that must fail fast; prints "RC MS CONNECT_MS", the
# last from curl's own connect time. What lb answers for starts once the
# handshake is done (the kernel completes it); a SYN the lab lost costs a
# 1 s retransmit before that.
try() {
	local t rc c
	t=$(lab_now_ms)
	c=$(in_cli curl -gsS --max-time 5 --interface "$CLI" -w '%{time_connect}' -o /dev/null \
		"$URL" 2>"$LAB_DIR/curl.err")
	rc=$?
	echo "$rc $(($(lab_now_ms) - t)) $(awk -v s="${c:-0}" 'BEGIN { printf "%d", s * 1000 }')"
}
for ((i = 1; i <= 6; i++)); do
	read -r rc ms _ <<<"$(try)"
	((rc != 0)) || lab_fail "request $i succeeded with no backend listening"
	((ms < 1000)) || { lab_lb_log; lab_fail "request $i took $ms ms to fail (curl exit $rc)"; }
	grep -Eq "$(down_re "$A")" "$LAB_LB_LOG" && break
done
grep -Eq "$(down_re "$A")" "$LAB_LB_LOG" || { lab_lb_log; lab_fail "$A not marked down after 6 refused requests"; }
lab_wait_grep "$LAB_LB_LOG" "$(down_re "$B")" 0.5 >/dev/null ||
	{ lab_lb_log; lab_fail "$B not marked down again after 3 more refused connects"; }
lab_log "ok: both marked down after $i requests, each failed in under 1 s"

mark=$(wc -l <"$LAB_LB_LOG")
fails_before=$(($(fails_of "$A") + $(fails_of "$B")))
slow=0 syn_retries=0 codes=
t_start=$(lab_now_ms)
for ((i = 1; i <= 25; i++)); do
	read -r rc ms cms <<<"$(try)"
	((rc != 0)) || lab_fail "request $i succeeded with no backend usable"
	((rc != 28)) || lab_fail "request $i timed out instead of being reset"
	((ms - cms < 1000)) || slow=$((slow + 1))
	((cms < 1000)) || { syn_retries=$((syn_retries + 1)); lab_log "request $i: connect took $cms ms (SYN retransmitted)"; }
	[[ " $codes " == *" $rc "* ]] || codes+=" $rc"
	cat "$LAB_DIR/curl.err" >>"$LAB_DIR/curl.all"
	sleep 0.1
done
elapsed=$(($(lab_now_ms) - t_start))
((slow == 0)) || { lab_lb_log; lab_fail "$slow of 25 requests with no usable backend took 1 s or more to be reset after connecting"; }
((syn_retries <= 2)) || { lab_lb_log; lab_fail "$syn_retries of 25 connects needed a SYN retransmit"; }
# 56 receive failure, 55 send failure, 52 empty reply: reset or closed
# after the request; 7: the reset came so soon after the handshake that
# curl saw it when it checked the connect.
[[ $codes =~ ^(\ (7|52|55|56))+$ ]] ||
	{ sort "$LAB_DIR/curl.all" | uniq -c >&2; lab_fail "curl exit codes$codes; want 7/52/55/56 (reset or closed)"; }
lab_log "ok: 25 requests over $elapsed ms, all failed in under 1 s; curl said:"
sed -E 's/after [0-9]+ ms/after N ms/' "$LAB_DIR/curl.all" | sort | uniq -c | sed 's/^ */  | /' >&2
# curl's 7 does not tell a reset from a refused SYN; peer hold does: a
# reset (ECONNRESET) counts as "reset", a refusal as "failed".
for ((i = 1; i <= 3; i++)); do
	log=$LAB_DIR/hold-nb$i.log
	t=$(lab_now_ms)
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b "$CLI" -n 1 "$LAB_VIP4:80"
	lab_wait_grep "$log" ' 1 (reset|eof|failed)' 1 >/dev/null ||
		{ cat "$log" >&2; lab_fail "held connection $i with no usable backend not ended within 1 s"; }
	ms=$(($(lab_now_ms) - t))
	grep -q ' 1 reset' "$log" || { cat "$log" >&2; lab_fail "held connection $i was not reset: $(tail -n1 "$log")"; }
	lab_stop "$LAB_BG_PID"
done
lab_log "ok: 3 held connections with no usable backend were reset (ECONNRESET), the last after $ms ms"
elapsed=$(($(lab_now_ms) - t_start))
fails_after=$(($(fails_of "$A") + $(fails_of "$B")))
((fails_after == fails_before)) ||
	lab_fail "$((fails_after - fails_before)) connects to down backends while nothing was usable"

lab_log "checking: 'no usable backend' is logged at most once a second"
tail -n +"$((mark + 1))" "$LAB_LB_LOG" | grep 'service p: no usable backend for client' >"$LAB_DIR/nb.log"
n=$(wc -l <"$LAB_DIR/nb.log")
max=$((elapsed / 1000 + 1))
((n >= 1 && n <= max)) || { sed 's/^/  | /' "$LAB_DIR/nb.log" >&2; lab_fail "$n 'no usable backend' lines in $elapsed ms, want 1..$max"; }
# Successive lines at least ~1 s apart (loop clock vs wall clock: 50 ms slack).
gaps=$(awk '{ sub(/^time=/, "", $1); split(substr($1, 12, 12), t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3];
	if (NR > 1) printf "%d ", (s - p) * 1000; p = s }' "$LAB_DIR/nb.log")
for g in $gaps; do
	((g >= 950)) || { sed 's/^/  | /' "$LAB_DIR/nb.log" >&2; lab_fail "'no usable backend' lines only $g ms apart"; }
done
lab_log "ok: $n 'no usable backend' lines in $elapsed ms (gaps ms: ${gaps:-none}): $(head -n1 "$LAB_DIR/nb.log" | cut -d' ' -f4-)"

lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
