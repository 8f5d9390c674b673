#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Stuck peers must not pin the gateway's memory once lb gives up on them.
# 100 clients upload 1 GiB each to a backend that accepts and never reads
# (peer sink -N): the backend's window closes, lb's upstream send buffers
# and its client-side receive buffers fill, and everything stalls.
#  idle:  client/server_idle_timeout_ms 4000 ends them. Within 1 s of lb
#         closing them, the gateway namespace holds no orphan socket (ss:
#         FIN-WAIT-1/2, CLOSING, LAST-ACK) and no socket memory beyond its
#         baseline (ss -m), and the host's TCP memory (sockstat "mem",
#         shared with whatever else runs, as is sockstat's orphan count) is
#         back near its baseline: lb reset the sockets that still had
#         unsent data instead of leaving them as FIN-WAIT-1 orphans.
#  drain: the same stall ended by a reload's drain_timeout_ms (1500).
#  cap:   with "socket_buffer_bytes": 65536 the same stall holds at most a
#         quarter of the gateway memory it held without, and lb's sockets
#         show the capped buffers (ss: rb/tb 131072, the kernel's double).
#  close: an idle connection whose peers took every byte still ends with
#         FINs both ways (the backend sees eof, not a reset).
# Without the fix the idle and drain parts fail: 100 orphans stay in
# FIN-WAIT-1 with their buffers for minutes.
# Run parts alone with: orphans.sh [idle] [drain] [cap] [close]
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss
lab_need_lb peer
parts=${*:-idle drain cap close}
want() { [[ " $parts " == *" $1 "* ]]; }

N=100
BE=${LAB_BE_IP4[0]}
CLI=${LAB_CLI_IP4[0]}
lab_up
lab_peer_start "$LAB_BE" "$LAB_DIR/sink.log" sink -N -v "$BE:9600" "$BE:9601" "$BE:9602"
lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo -v "$BE:9603"

svc() { # NAME PORT EXTRA_KEYS
	printf '{"name": "%s", "vips": ["%s:%s"], "backends": [{"address": "%s:%s"}]%s}' \
		"$1" "$LAB_VIP4" "$2" "$BE" "$2" "${3:+, $3}"
}
svcs="$(svc idle 9600 '"idle_timeout_ms": 4000'),
	$(svc drain 9602 '"idle_timeout_ms": 60000'),
	$(svc close 9603 '"idle_timeout_ms": 1000')"
# An lb without the option refuses the whole config: add it only when asked.
want cap && svcs+=",
	$(svc cap 9601 '"idle_timeout_ms": 4000, "socket_buffer_bytes": 65536')"
cfg=$(lab_config "$svcs")
sed -i 's/"workers": 2,/"workers": 2, "drain_timeout_ms": 1500, "access_log": true,/' "$cfg"
grep -q '"drain_timeout_ms": 1500' "$cfg" || lab_fail "could not set drain_timeout_ms"
lab_lb_start "$cfg"

# gw_mem: bytes of socket buffers held in the gateway namespace (ss -m:
# r receive queue + w write queue, every TCP socket, orphans included).
gw_mem() {
	in_gw ss -Htanm 2>/dev/null |
		awk '{ if (match($0, /skmem:\(r[0-9]+/)) r += substr($0, RSTART + 8, RLENGTH - 8)
		       if (match($0, /,w[0-9]+/)) w += substr($0, RSTART + 2, RLENGTH - 2) }
		     END { print r + w + 0 }'
}
# orphans: sockets of the gateway namespace closed by lb but still alive
# (sockstat's own orphan count is the whole host's).
orphans() {
	in_gw ss -Htan state fin-wait-1 state fin-wait-2 state closing state last-ack | wc -l
}
host_pages() { lab_sockstat "$LAB_GW" mem; }
# conns PORT: established TCP sockets of the service on PORT in the gateway.
conns() { in_gw ss -Htn state established "( sport = :$1 or dport = :$1 )" | wc -l; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# stall PORT: start the uploads and wait until they have filled what they
# can (gateway memory flat for 0.6 s); sets UPLOAD_PID and PEAK (bytes).
stall() {
	local port=$1 i m prev=0 flat=0
	lab_bg "$LAB_CLI" "$LAB_DIR/upload$port.log" "$PEER" client -b "$CLI" -n $N -p $N \
		-u 1G -d 0 -t 60 "$LAB_VIP4:$port"
	UPLOAD_PID=$LAB_BG_PID PEAK=0
	for ((i = 0; i < 100; i++)); do
		sleep 0.2
		m=$(gw_mem)
		[[ -n ${LB_DEBUG:-} ]] && lab_log "stall: $i: $(mib "$m") MiB, $(conns "$port") sockets"
		((m > PEAK)) && PEAK=$m
		if ((m > 0 && m - prev < prev / 50 && $(conns "$port") == 2 * N)); then
			((++flat >= 3)) && return 0
		else
			flat=0
		fi
		prev=$m
	done
	lab_lb_log
	lab_fail "uploads to :$port did not stall: $(conns "$port") sockets, $(mib "$m") MiB"
}

# reclaimed NAME PORT BASE_ORPHANS BASE_GW BASE_PAGES: wait for lb to close
# the stalled connections, then give it 1 s: the gateway must be back to
# its baseline.
reclaimed() {
	local name=$1 port=$2 o0=$3 m0=$4 p0=$5 i o m p slack
	for ((i = 0; i < 200; i++)); do
		(($(conns "$port") == 0)) && break
		sleep 0.05
	done
	(($(conns "$port") == 0)) || { lab_lb_log; lab_fail "$name: lb did not close the stalled connections"; }
	sleep 1
	o=$(orphans) m=$(gw_mem) p=$(host_pages)
	lab_log "$name: 1 s after lb closed them: orphans $o (baseline $o0), gateway socket memory $(mib "$m") MiB (baseline $(mib "$m0"), stalled $(mib "$PEAK")), host TCP pages $p (baseline $p0); sockstat: $(lab_sockstat "$LAB_GW")"
	if ((o > o0 || m > m0 + 1048576)); then
		in_gw ss -Htanmo state fin-wait-1 | head -n 4 | sed 's/^/  | /' >&2
		lab_fail "$name: the gateway still holds $((o - o0)) orphans and $(mib $((m - m0))) MiB 1 s after the timeout"
	fi
	# Host-wide: others may use TCP memory meanwhile, so allow 10% of what
	# the stall took (at least 10 MiB).
	slack=$(((PEAK / 4096) / 10))
	((slack < 2560)) && slack=2560
	((p <= p0 + slack)) || lab_fail "$name: host TCP memory $p pages, baseline $p0 (+$slack allowed)"
	lab_log "ok: $name: orphans and memory back to baseline within 1 s"
	lab_stop "$UPLOAD_PID"
}

baseline() { B_ORPH=$(orphans) B_MEM=$(gw_mem) B_PAGES=$(host_pages); }

# ---------------------------------------------------------------------------
idle() {
	lab_log "checking: idle: $N stalled uploads ended by the idle timeout (4000 ms)"
	baseline
	stall 9600
	IDLE_PEAK=$PEAK
	lab_log "idle: $N uploads stalled; the gateway holds $(mib "$PEAK") MiB of socket buffers, host TCP pages $(host_pages)"
	reclaimed idle 9600 "$B_ORPH" "$B_MEM" "$B_PAGES"
	grep -q 'service=idle .* end=idle' "$LAB_LB_LOG" || lab_fail "idle: no access log line with end=idle"
}

drain() {
	local gen_pids
	lab_log "checking: drain: $N stalled uploads ended by a reload's drain timeout (1500 ms)"
	baseline
	stall 9602
	lab_log "drain: $N uploads stalled; the gateway holds $(mib "$PEAK") MiB"
	gen_pids=$(pgrep -P "$LAB_LB_PID" | paste -sd ' ')
	kill -HUP "$LAB_LB_PID"
	lab_wait_grep "$LAB_LB_LOG" 'drain timeout: closing' 5 >/dev/null ||
		{ lab_lb_log; lab_fail "drain: no drain timeout in the old generation ($gen_pids)"; }
	reclaimed drain 9602 "$B_ORPH" "$B_MEM" "$B_PAGES"
}

cap() {
	local bufs
	lab_log "checking: cap: the same stall with socket_buffer_bytes 65536"
	[[ -n ${IDLE_PEAK:-} ]] || { baseline; stall 9600; IDLE_PEAK=$PEAK; reclaimed idle 9600 "$B_ORPH" "$B_MEM" "$B_PAGES"; }
	baseline
	stall 9601
	# lb's sockets: the accepted ones (sport 9601) and the upstream ones (dport 9601).
	bufs=$(in_gw ss -Htnm state established "( sport = :9601 or dport = :9601 )" |
		grep -o 'rb[0-9]*,t[0-9]*,tb[0-9]*' | sed -E 's/rb([0-9]+),t[0-9]+,tb([0-9]+)/\1 \2/' | sort -u | paste -sd ',')
	[[ $bufs == "131072 131072" ]] || lab_fail "cap: lb's sockets have buffers (rb tb) '$bufs', want '131072 131072'"
	lab_log "cap: $N uploads stalled; the gateway holds $(mib "$PEAK") MiB (without the cap: $(mib "$IDLE_PEAK") MiB)"
	((PEAK * 4 <= IDLE_PEAK)) || lab_fail "cap: $(mib "$PEAK") MiB with the cap is more than a quarter of $(mib "$IDLE_PEAK") MiB without"
	lab_log "ok: cap: socket_buffer_bytes 65536 holds $(mib "$PEAK") MiB instead of $(mib "$IDLE_PEAK") MiB; lb's sockets: rb/tb 131072"
	reclaimed cap 9601 "$B_ORPH" "$B_MEM" "$B_PAGES"
}

close_idle() {
	local pid
	lab_log "checking: close: an idle connection whose bytes were all taken ends with FINs"
	lab_bg "$LAB_CLI" "$LAB_DIR/hold-close.log" "$PEER" hold -b "$CLI" -n 1 -e "$LAB_VIP4:9603"
	pid=$LAB_BG_PID
	lab_wait_grep "$LAB_DIR/hold-close.log" ' 1 answered' 3 >/dev/null || lab_fail "close: not echoed"
	lab_wait_grep "$LAB_DIR/hold-close.log" ' 1 eof' 3 >/dev/null ||
		{ cat "$LAB_DIR/hold-close.log" >&2; lab_lb_log; lab_fail "close: the client saw no FIN after the idle timeout"; }
	lab_wait_grep "$LAB_DIR/echo.log" "echo: $CLI:[0-9]+: eof" 2 >/dev/null ||
		{ cat "$LAB_DIR/echo.log" >&2; lab_fail "close: the backend did not see a FIN"; }
	lab_stop "$pid"
	lab_log "ok: close: client and backend both saw a FIN ($(tail -n1 "$LAB_DIR/hold-close.log"))"
}

want idle && idle
want drain && drain
want cap && cap
want close && close_idle
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
