#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# max_conns 1 on the only backend of a service, queue_timeout_ms 1500,
# 2 workers (so the slot may be freed in the other worker):
#  - while one connection is held, a second is accepted but not connected
#    to the backend: its byte is not echoed, it is not reset, the backend
#    has one connection;
#  - once the first closes, the second is served promptly (within 0.5 s,
#    before its queue timeout);
#  - while that one is held, a third is reset after about queue_timeout_ms
#    (1.2..3 s), and lb logs and counts it as a queue timeout;
#  - 4 workers, max_conns 2, 80 clients at once, each echoed then closed:
#    all are served, none is reset as "no backend" (a worker that loses the
#    race for a freed slot to another must keep waiting, issue 13 item 4),
#    and the backend never holds more than 2 connections; each client that
#    queued is counted once in the queue-time histogram.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss jq
lab_need_lb peer
lab_up

BE=${LAB_BE_IP4[0]}
PORT=9500
QUEUE_MS=1500
VIP=$LAB_VIP4:$PORT

lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo -v "$BE:$PORT"

cfg=$(lab_config_with '"workers": 2' '{
	"name": "one",
	"vips": ["'"$VIP"'"],
	"backends": [{"address": "'"$BE:$PORT"'", "max_conns": 1}],
	"queue_timeout_ms": '"$QUEUE_MS"'
}')
lab_lb_start "$cfg"

be_conns() { in_be ss -Htn state established "sport = :$PORT" | wc -l; }

# hold SRC LOG: one connection from SRC that sends one byte and waits for
# its echo; sets HPID.
hold() {
	lab_bg "$LAB_CLI" "$2" "$PEER" hold -b "$1" -n 1 -e "$VIP"
	HPID=$LAB_BG_PID
}

lab_log "checking: the first connection is served"
hold "${LAB_CLI_IP4[0]}" "$LAB_DIR/h1.log"
H1=$HPID
lab_wait_grep "$LAB_DIR/h1.log" ' 1 answered' 3 >/dev/null ||
	{ cat "$LAB_DIR/h1.log" >&2; lab_lb_log; lab_fail "first connection not echoed"; }
lab_log "ok: first connection echoed"

lab_log "checking: a second connection waits, unanswered and not reset, while the first is held"
t0=$(lab_now_ms)
hold "${LAB_CLI_IP4[1]}" "$LAB_DIR/h2.log"
H2=$HPID
lab_wait_grep "$LAB_DIR/h2.log" ' 1 connected' 1 >/dev/null ||
	{ cat "$LAB_DIR/h2.log" >&2; lab_fail "second connection not even accepted"; }
sleep 0.7
st=$(tail -n1 "$LAB_DIR/h2.log")
[[ $st == *' 1 connected, 0 answered, 0 eof, 0 reset, 0 failed' ]] ||
	{ lab_lb_log; lab_fail "second connection after 0.7 s: '$st', want connected and waiting"; }
n=$(be_conns)
((n == 1)) || lab_fail "the backend has $n connections while max_conns is 1"
lab_log "ok: after 0.7 s the second is waiting ($st); the backend has 1 connection"

lab_log "checking: the second is served promptly once the first closes"
t1=$(lab_now_ms)
lab_stop "$H1"
lab_wait_grep "$LAB_DIR/h2.log" ' 1 answered' 0.5 >/dev/null ||
	{ cat "$LAB_DIR/h2.log" >&2; lab_lb_log; lab_fail "second connection not served within 0.5 s of the first closing"; }
t2=$(lab_now_ms)
grep -q ' [1-9][0-9]* reset' "$LAB_DIR/h2.log" && lab_fail "second connection was reset: $(cat "$LAB_DIR/h2.log")"
((t2 - t0 < QUEUE_MS)) || lab_fail "second connection served $((t2 - t0)) ms after it came, past queue_timeout_ms $QUEUE_MS"
lab_log "ok: second served $((t2 - t1)) ms after the first closed ($((t2 - t0)) ms after it came)"

lab_log "checking: with the second held, a third is reset after about queue_timeout_ms ($QUEUE_MS ms)"
t0=$(lab_now_ms)
hold "${LAB_CLI_IP4[2]}" "$LAB_DIR/h3.log"
line=$(lab_wait_grep "$LAB_DIR/h3.log" ' 1 (reset|eof|failed)|1 answered' 4) ||
	{ cat "$LAB_DIR/h3.log" >&2; lab_lb_log; lab_fail "third connection neither served nor ended within 4 s"; }
ms=$(($(lab_now_ms) - t0))
[[ $line == *' 0 answered, 0 eof, 1 reset, 0 failed' ]] ||
	{ lab_lb_log; lab_fail "third connection: '$line' after $ms ms, want reset"; }
((ms >= 1200 && ms <= 3000)) ||
	{ lab_lb_log; lab_fail "third connection reset after $ms ms, want 1200..3000"; }
lab_log "ok: third reset after $ms ms ($line)"
line=$(lab_wait_grep "$LAB_LB_LOG" 'service one: every backend at max_conns for queue_timeout_ms for client '"${LAB_CLI_IP4[2]}"'.*queue_timeouts 1\)' 1) ||
	{ lab_lb_log; lab_fail "no log line for the queue timeout"; }
lab_log "ok: logged: ${line#*: }"
st=$(tail -n1 "$LAB_DIR/h2.log")
[[ $st == *' 1 answered, 0 eof, 0 reset, 0 failed' ]] || lab_fail "the held second connection ended: $st"
lab_log "ok: the second connection is still held"

lab_stop "$H2"
lab_lb_stop || lab_fail "lb exited with status $?"

lab_log "checking: 80 clients queued on max_conns 2 over 4 workers are all served"
sed -i -e 's/"workers": 2/"workers": 4/' -e 's/"max_conns": 1/"max_conns": 2/' \
	-e "s/\"queue_timeout_ms\": $QUEUE_MS/\"queue_timeout_ms\": 20000/" "$cfg"
lab_lb_start "$cfg"
peak=0
lab_bg "$LAB_CLI" "$LAB_DIR/churn.log" "$PEER" churn -b "${LAB_CLI_IP4[3]}" -n 80 -p 80 -e -t 30 "$VIP"
CH=$LAB_BG_PID
while kill -0 "$CH" 2>/dev/null; do
	n=$(be_conns)
	((n > peak)) && peak=$n
	sleep 0.05
done
wait "$CH"
rc=$?
line=$(grep 'churn:' "$LAB_DIR/churn.log" | tail -n1)
((rc == 0)) && [[ $line == *' 80 echoed, 0 failed'* ]] ||
	{ cat "$LAB_DIR/churn.log" >&2; lab_lb_log; lab_fail "queued clients: $line"; }
((peak <= 2)) || lab_fail "the backend held $peak connections at once, max_conns is 2"
nb=$(lab_ctl_call '{"cmd": "stats"}' | jq '.data.totals.no_backend')
[[ $nb == 0 ]] || { lab_lb_log; lab_fail "no_backend is $nb for a healthy backend"; }
lab_log "ok: $line; the backend held at most $peak at once; no_backend $nb"
# Every client that queued was timed once as it left the queue (the
# lb_service_queue_seconds histogram), and waited at least a little.
m=$(lab_ctl_call '{"cmd": "metrics"}' | jq -r .data)
queued=$(awk '/^lb_service_queued_total/ { print $2 }' <<<"$m")
timed=$(awk '/^lb_service_queue_seconds_count/ { print $2 }' <<<"$m")
waited=$(awk '/^lb_service_queue_seconds_sum/ { print $2 }' <<<"$m")
((queued > 0 && timed == queued)) && awk -v s="$waited" 'BEGIN { exit !(s > 0) }' ||
	lab_fail "queue histogram: $timed timed, $queued queued, $waited s in all"
lab_log "ok: $timed queued clients timed, $waited s waited in all"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
