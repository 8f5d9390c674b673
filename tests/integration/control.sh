#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The control socket and lbctl against a running lb:
#  - the socket file has mode 0600 and is removed when lb stops;
#  - drain stops new connections to a backend while one it already has keeps
#    relaying (an echo round trip after the drain);
#  - weight shifts the round robin distribution (9:1, then 0 takes no more);
#  - metrics pass a strict text-format check (and promtool when installed);
#  - 200 concurrent lbctl clients are all answered, also while another client
#    sits on half a request line;
#  - bad requests get error replies and the connection stays usable;
#  - a reload puts the config's weights back and keeps admin states (a drained
#    backend stays drained when someone reloads);
#  - lbctl's errors are one line on stderr with exit status 1 (lb said no) or
#    2 (no lb there).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LB_BUILDDIR=${LB_BUILDDIR:-$LB_SRCDIR}
. "$LB_SRCDIR/tests/lab.sh"
LBCTL=${LBCTL:-$LB_BUILDDIR/lb/lbctl}
lab_skip_unless_root socat timeout stat
lab_need_lb peer
[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
lab_up
lab_nginx_start

cfg=$(lab_config '{"name": "echo", "vips": ["198.18.100.1:7"],
	"backends": [{"address": "198.18.2.2:7"}, {"address": "198.18.2.3:7"}]}')
lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo 198.18.2.2:7 198.18.2.3:7
lab_lb_start "$cfg"
SOCK=$LAB_DIR/lb.sock
export LB_SOCKET=$SOCK

for ((i = 0; i < 50; i++)); do
	[[ -S $SOCK ]] && break
	sleep 0.1
done
[[ -S $SOCK ]] || lab_skip "lb does not serve a control socket at $SOCK (not wired in yet?)"

ctl() { "$LBCTL" "$@" 2>"$LAB_DIR/lbctl.err"; }
ctl_fail() { # WHAT: show what lbctl said, then fail
	sed 's/^/  lbctl| /' "$LAB_DIR/lbctl.err" >&2
	lab_lb_log
	lab_fail "$1"
}

# metric NAME{LABELS}: its value in a fresh scrape.
metric() {
	ctl metrics | awk -v k="$1" 'index($0, k " ") == 1 { print $2; found = 1 }
		END { exit !found }'
}

lab_check "socket file has mode 0600" test "$(stat -c %a "$SOCK")" = 600
ctl status >"$LAB_DIR/status.out" || ctl_fail "lbctl status"
grep -q '^config: .*(generation 1)' "$LAB_DIR/status.out" || {
	cat "$LAB_DIR/status.out" >&2
	lab_fail "status does not show the config and generation"
}
grep -Eq '^memory: +shm [0-9.]+[KMG]?B \(pool [0-9.]+[KMG]?B\), master rss [0-9.]+[KMG]?B$' "$LAB_DIR/status.out" || {
	cat "$LAB_DIR/status.out" >&2
	lab_fail "status does not show shm and the master's RSS"
}
# Sizes the reply gives in bytes: shm as mapped, each process's RSS from /proc.
mem=$(lab_ctl_call '{"cmd": "status"}' | jq -r '[.data.memory.shm_bytes, .data.memory.shm_pool_bytes,
	.data.memory.master.rss_bytes, ([.data.workers[].rss_bytes] | min),
	([.data.workers[].rss_anon_bytes] | min)] | @tsv')
read -r shm pool mrss wrss wanon <<<"$mem"
((shm > 0 && pool > 0 && mrss > 1048576 && wrss > 1048576 && wanon > 0)) ||
	lab_fail "status memory: shm $shm, pool $pool, master rss $mrss, worker rss min $wrss, anon $wanon"
lab_log "ok: lbctl status (shm $shm B, pool $pool B, master RSS $mrss B, smallest worker RSS $wrss B)"

# ---- drain: no new connections, the open one goes on ----

# A connection held open from the client: each line written to the coprocess
# goes through lb to the echo backend; the echo comes back out.
coproc HOLD { in_cli bash -c "exec 3<>/dev/tcp/$LAB_VIP4/7 || exit 1
	while IFS= read -r l; do
		printf '%s\n' \"\$l\" >&3
		IFS= read -r -t 5 r <&3 || exit 1
		printf '%s\n' \"\$r\"
	done"; }
LAB_PIDS+=("$HOLD_PID")
hold_ping() { # WORD: one echo round trip on the held connection
	local r
	printf '%s\n' "$1" >&"${HOLD[1]}"
	IFS= read -r -t 5 r <&"${HOLD[0]}" && [[ $r == "$1" ]]
}
lab_check "held connection echoes before the drain" hold_ping one

held=
for b in 198.18.2.2:7 198.18.2.3:7; do
	if [[ $(metric "lb_backend_active_connections{service=\"echo\",backend=\"$b\"}") == 1 ]]; then
		held=$b
	fi
done
[[ -n $held ]] || { ctl backends echo >&2; lab_fail "no echo backend shows the held connection"; }
other=198.18.2.2:7
[[ $held == "$other" ]] && other=198.18.2.3:7
lab_log "held connection is on $held"

ctl drain echo "$held" >"$LAB_DIR/drain.out" || ctl_fail "lbctl drain echo $held"
grep -q "echo $held: up -> drain" "$LAB_DIR/drain.out" || lab_fail "drain said: $(cat "$LAB_DIR/drain.out")"
ctl backends echo | grep -q "^echo  *$held  *drain " || lab_fail "backends does not show $held drained"

before_held=$(metric "lb_backend_connections_total{service=\"echo\",backend=\"$held\"}")
before_other=$(metric "lb_backend_connections_total{service=\"echo\",backend=\"$other\"}")
for ((i = 0; i < 10; i++)); do
	in_cli bash -c "exec 3<>/dev/tcp/$LAB_VIP4/7 && echo hi$i >&3 && read -r -t 5 r <&3 &&
		[[ \$r == hi$i ]]" || { lab_lb_log; lab_fail "new connection $i during the drain failed"; }
done
after_held=$(metric "lb_backend_connections_total{service=\"echo\",backend=\"$held\"}")
after_other=$(metric "lb_backend_connections_total{service=\"echo\",backend=\"$other\"}")
[[ $after_held == "$before_held" ]] ||
	lab_fail "drained $held got new connections ($before_held -> $after_held)"
[[ $after_other -ge $((before_other + 10)) ]] ||
	lab_fail "$other did not take the 10 new connections ($before_other -> $after_other)"
lab_log "ok: 10 new connections all went to $other while $held drains"
lab_check "held connection still echoes after the drain" hold_ping two
[[ $(metric "lb_backend_active_connections{service=\"echo\",backend=\"$held\"}") == 1 ]] ||
	lab_fail "the held connection is no longer counted on $held"
eval "exec ${HOLD[1]}>&-"
wait "$HOLD_PID" 2>/dev/null
ctl enable echo "$held" >/dev/null || ctl_fail "lbctl enable echo $held"
ctl backends echo | grep -q "^echo  *$held  *up " || lab_fail "enable did not bring $held up"
lab_log "ok: enable brings $held back"

# ---- weight shifts the distribution ----

count_backends() { # N: N requests to the v4 VIP; prints "COUNT BACKEND" lines
	local i body
	for ((i = 0; i < $1; i++)); do
		body=$(lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/") || return 1
		[[ $body =~ ^backend=([^ ]+) ]] && printf '%s\n' "${BASH_REMATCH[1]}"
	done | sort | uniq -c
}
ctl weight web 198.18.2.2:80 9 >/dev/null || ctl_fail "lbctl weight web 198.18.2.2:80 9"
ctl weight web 198.18.2.3:80 1 >/dev/null || ctl_fail "lbctl weight web 198.18.2.3:80 1"
counts=$(count_backends 100) || { lab_lb_log; lab_fail "requests after set-weight failed"; }
n2=$(awk '$2 == "198.18.2.2" { print $1 }' <<<"$counts")
n3=$(awk '$2 == "198.18.2.3" { print $1 }' <<<"$counts")
n2=${n2:-0} n3=${n3:-0}
# 9:1 over 100 requests and two workers: allow for the split between workers.
[[ $n2 -ge 75 && $n3 -ge 1 && $n3 -le 25 ]] ||
	lab_fail "weights 9:1 gave 198.18.2.2=$n2 198.18.2.3=$n3"
lab_log "ok: weights 9:1 gave 198.18.2.2=$n2 198.18.2.3=$n3"
ctl weight web 198.18.2.3:80 0 >/dev/null || ctl_fail "lbctl weight web 198.18.2.3:80 0"
counts=$(count_backends 20) || { lab_lb_log; lab_fail "requests after weight 0 failed"; }
n3=$(awk '$2 == "198.18.2.3" { print $1 }' <<<"$counts")
[[ -z $n3 ]] || lab_fail "198.18.2.3 with weight 0 still got $n3 of 20 requests"
lab_log "ok: weight 0 takes no new connections"
ctl backends web | grep -q "^web  *198.18.2.3:80  *up  *up  *0 (1) " ||
	lab_fail "backends does not show the runtime weight beside the config's"

# ---- metrics ----

ctl metrics >"$LAB_DIR/metrics.txt" || ctl_fail "lbctl metrics"
# A strict check of the text exposition format: names, labels and escapes,
# numeric values, TYPE before a family's samples, families contiguous, no
# series twice.
check_metrics() {
	awk '
	function bad(why) { printf "line %d: %s: %s\n", NR, why, $0; err = 1; exit 1 }
	BEGIN {
		name = "[a-zA-Z_:][a-zA-Z0-9_:]*"
		lval = "\"([^\"\\\\]|\\\\[\\\\\"n])*\""
		label = "[a-zA-Z_][a-zA-Z0-9_]*=" lval
		num = "([-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?|[-+]Inf|NaN)"
		sample_re = "^" name "([{](" label "(," label ")*)?[}])? " num "( -?[0-9]+)?$"
	}
	/^# HELP / {
		if ($3 !~ "^" name "$") bad("bad name in HELP")
		if ($3 in sampled) bad("HELP after samples")
		next
	}
	/^# TYPE / {
		if ($3 !~ "^" name "$" || NF != 4) bad("bad TYPE line")
		if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("unknown type")
		if ($3 in type) bad("second TYPE")
		type[$3] = $4
		next
	}
	/^#/ { next }
	{
		if ($0 !~ sample_re) bad("malformed sample")
		n = $0; sub(/[{ ].*/, "", n)
		# A histogram family NAME has samples NAME_bucket, NAME_sum, NAME_count.
		if (!(n in type)) {
			h = n
			if (sub(/_(bucket|sum|count)$/, "", h) && type[h] == "histogram")
				n = h
		}
		if (!(n in type)) bad("sample without TYPE")
		if (type[n] == "counter" && n !~ /_total$/) bad("counter without _total")
		if (n != last && (n in sampled)) bad("family not contiguous")
		series = $1
		if ($0 ~ /^[^ {]*[{]/) { series = $0; sub(/[}][^}]*$/, "}", series) }
		if (series in seen) bad("series repeated")
		seen[series] = 1; sampled[n] = 1; last = n; samples++
	}
	END { if (!err && samples < 10) { print "only " samples " samples"; exit 1 } }
	' "$1"
}
lab_check "metrics pass the strict format check" check_metrics "$LAB_DIR/metrics.txt"
if command -v promtool >/dev/null 2>&1; then
	lab_check "promtool check metrics" sh -c "promtool check metrics <'$LAB_DIR/metrics.txt'"
fi
for k in 'lb_backend_active_connections{service="web",backend="198.18.2.2:80"}' \
	'lb_backend_connections_total{service="web",backend="198.18.2.2:80"}' \
	'lb_backend_bytes_in_total{service="web",backend="198.18.2.2:80"}' \
	'lb_backend_bytes_out_total{service="web",backend="198.18.2.2:80"}' \
	'lb_backend_connect_failures_total{service="web",backend="198.18.2.2:80"}' \
	'lb_backend_up{service="web",backend="198.18.2.2:80"}' \
	'lb_backend_admin_state{service="web",backend="198.18.2.2:80",state="up"}' \
	'lb_service_no_backend_total{service="web"}' \
	'lb_uptime_seconds'; do
	grep -qF "$k " "$LAB_DIR/metrics.txt" || lab_fail "metrics lack $k"
done
[[ $(metric 'lb_backend_weight{service="web",backend="198.18.2.2:80"}') == 9 ]] ||
	lab_fail "lb_backend_weight does not show the runtime weight"
lab_log "ok: metrics have the expected series"

# ---- many clients, a stalled one, bad requests ----

# Half a request line, then silence for 30 s.
(printf '{"cmd": "sta'; sleep 30) | socat - "UNIX-CONNECT:$SOCK" >/dev/null 2>&1 &
stall_pid=$!
LAB_PIDS+=("$stall_pid")
sleep 0.2
start=$(date +%s%N)
pids=()
for ((i = 0; i < 200; i++)); do
	"$LBCTL" -t 10 status >"$LAB_DIR/many.$i" 2>&1 &
	pids+=($!)
done
failed=0
for ((i = 0; i < 200; i++)); do
	wait "${pids[$i]}" || failed=$((failed + 1))
done
ms=$((($(date +%s%N) - start) / 1000000))
[[ $failed -eq 0 ]] || { cat "$LAB_DIR"/many.* | sort | uniq -c >&2; lab_fail "$failed of 200 concurrent clients failed"; }
lab_log "ok: 200 concurrent clients answered in $ms ms while another stalls mid-line"
timeout 5 "$LBCTL" -t 3 version >/dev/null || lab_fail "a client stalled mid-line delays others"
kill "$stall_pid" 2>/dev/null

replies=$(printf '{bad\n[1]\n{"cmd": "frob"}\n{"cmd": "backends", "service": 5}\n%s\n{"cmd": "version"}\n' \
	'{"cmd": "set-state", "service": "web", "backend": "198.18.2.9:80", "state": "up"}' |
	socat -t 5 - "UNIX-CONNECT:$SOCK")
mapfile -t lines <<<"$replies"
want=(bad_json bad_request unknown_command bad_argument unknown_backend)
[[ ${#lines[@]} -eq 6 ]] || lab_fail "6 requests got ${#lines[@]} replies: $replies"
for ((i = 0; i < 5; i++)); do
	[[ ${lines[$i]} == '{"ok":false,"error":{"code":"'"${want[$i]}"'"'* ]] ||
		lab_fail "reply $i is not ${want[$i]}: ${lines[$i]}"
done
[[ ${lines[5]} == '{"ok":true,"data":{"version":'* ]] ||
	lab_fail "after the bad requests, version got: ${lines[5]}"
lab_log "ok: bad requests get error replies and the connection goes on"

# ---- lbctl's errors and exit status ----

"$LBCTL" drain web 198.18.2.9:80 >/dev/null 2>"$LAB_DIR/err.txt"
rc=$?
[[ $rc -eq 1 ]] || lab_fail "lbctl on an unknown backend exited $rc, want 1"
[[ $(cat "$LAB_DIR/err.txt") == "lbctl: unknown_backend: service web has no backend 198.18.2.9:80" ]] ||
	lab_fail "lbctl said: $(cat "$LAB_DIR/err.txt")"
"$LBCTL" -s "$LAB_DIR/nothing.sock" status >/dev/null 2>&1
rc=$?
[[ $rc -eq 2 ]] || lab_fail "lbctl without an lb exited $rc, want 2"
"$LBCTL" weight web 198.18.2.2:80 >/dev/null 2>&1
rc=$?
[[ $rc -eq 2 ]] || lab_fail "lbctl with a missing argument exited $rc, want 2"
lab_log "ok: lbctl exit status 1 for lb's errors, 2 for usage and no lb"

# ---- a reload: the file's weights come back, admin states stay ----

web_total() { ctl -j services | jq -e '.data[] | select(.name == "web") | .total'; }
total_before=$(web_total) || ctl_fail "lbctl -j services"
((total_before > 0)) || lab_fail "service web counted no connection before the reload"
ctl drain web 198.18.2.2:80 >/dev/null || ctl_fail "lbctl drain web 198.18.2.2:80"
ctl weight web 198.18.2.3:80 7 >/dev/null || ctl_fail "lbctl weight web 198.18.2.3:80 7"
ctl reload >"$LAB_DIR/reload.out" || ctl_fail "lbctl reload"
total_after=$(web_total) || ctl_fail "lbctl -j services"
((total_after >= total_before)) ||
	lab_fail "service web's total went from $total_before to $total_after over a reload"
lab_log "ok: service counters carry over a reload ($total_before -> $total_after)"
grep -q '^reloaded: ' "$LAB_DIR/reload.out" || lab_fail "reload said: $(cat "$LAB_DIR/reload.out")"
ctl status | grep -q '^config: .*(generation 2)' || lab_fail "status does not show generation 2"
ctl backends web >"$LAB_DIR/after-reload.out" || ctl_fail "lbctl backends web"
if ! grep -q '^web  *198.18.2.2:80  *drain  *up  *1 ' "$LAB_DIR/after-reload.out" ||
	! grep -q '^web  *198.18.2.3:80  *up  *up  *1 ' "$LAB_DIR/after-reload.out"; then
	cat "$LAB_DIR/after-reload.out" >&2
	lab_fail "after a reload: want 198.18.2.2:80 still drained and 198.18.2.3:80 back at the file's weight 1"
fi
lab_log "ok: reload keeps the drain and puts the file's weight back"
ctl enable web 198.18.2.2:80 >/dev/null || ctl_fail "lbctl enable web 198.18.2.2:80"

# ---- the socket goes with lb ----

lab_lb_stop TERM || lab_fail "lb did not stop cleanly"
[[ ! -e $SOCK ]] || lab_fail "socket file $SOCK left behind after lb stopped"
lab_log "ok: socket file removed when lb stopped"
lab_log "PASS"
