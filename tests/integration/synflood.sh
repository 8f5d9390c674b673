#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A spoofed-source SYN flood at a VIP (issue 20): SYNs from a /16 of
# random sources, as fast as tests/tools/synflood can send them from the
# client namespace (its SYN-ACKs go back there and are dropped, as they
# would be lost on the way to addresses that sent nothing). Meanwhile:
#  - syncookies engage (TcpExtSyncookiesSent grows in the gateway);
#  - a legitimate client completes at least 99% of 1,000 requests;
#  - the workers accept exactly the legitimate client's connections: none
#    of the half-open junk reaches them;
#  - lb's memory (RSS over master and workers) and open files stay flat;
#  - lb warns at start when tcp_syncookies is 0 (checked on a second start).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=synflood
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq nstat
lab_need_lb
lab_need_peer
SYNFLOOD=${SYNFLOOD:-${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/synflood}
[[ -x $SYNFLOOD ]] || lab_skip "synflood not built: $SYNFLOOD"
lab_up

BE=${LAB_BE_IP4[0]}
PORT=9500
VIP=$LAB_VIP4:$PORT
GOOD=${LAB_CLI_IP4[1]}
SPOOF=198.19.0.0/16
REQUESTS=1000
FLOOD_MAX_S=60

# The spoofed sources live behind the client: the gateway sends their
# SYN-ACKs there, where nobody owns them and they are dropped quietly.
ip -n "$LAB_GW" route add "$SPOOF" via "${LAB_CLI_IP4[0]}" || lab_fail "route $SPOOF"
in_cli nft -f - <<EOF || lab_fail "client namespace drop rule"
table inet synflood {
	chain pre {
		type filter hook prerouting priority 0; policy accept;
		ip daddr $SPOOF counter drop
	}
}
EOF

lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$PEER" echo "$BE:$PORT"
ECHO=$LAB_BG_PID
lab_wait_port "$LAB_BE" "$BE" $PORT || lab_fail "peer echo not listening on $BE:$PORT"
cfg=$(lab_config_with '"workers": 2' '{
	"name": "one",
	"vips": ["'"$VIP"'"],
	"backends": [{"address": "'"$BE:$PORT"'"}]
}')
lab_lb_start "$cfg"
grep -q 'tcp_syncookies' "$LAB_LB_LOG" && lab_fail "lb warned about tcp_syncookies 1: $(grep syncookies "$LAB_LB_LOG")"

accepted() { lab_ctl_call '{"cmd": "stats"}' | jq -e '.data.totals.accepted'; }
cookies() { in_gw nstat -az TcpExtSyncookiesSent | awk '/TcpExtSyncookiesSent/ { print $2 }'; }
mapfile -t PIDS < <(lab_lb_pids)
# usage: "RSS_KiB FDS" over lb's master and workers.
usage() {
	local rss fds=0 p
	read -r rss _ < <(lab_mem_kib "${PIDS[@]}")
	for p in "${PIDS[@]}"; do
		fds=$((fds + $(lab_fd_counts "$p" | awk '{ print $1 }')))
	done
	echo "$rss $fds"
}

# Settle the path, then take what lb uses at rest.
in_cli "$PEER" latency -b "$GOOD" -n 50 -i 2 "$VIP" >/dev/null || lab_fail "lab not settled"
read -r rss0 fds0 < <(usage)
a0=$(accepted)
c0=$(cookies)
lab_log "at rest: lb RSS $rss0 KiB, $fds0 open files; $c0 SYN cookies sent so far"

lab_bg "$LAB_CLI" "$LAB_DIR/flood.log" "$SYNFLOOD" -s "$SPOOF" -t $FLOOD_MAX_S "$VIP"
FLOOD=$LAB_BG_PID
# Cookies start once a listener's SYN queue (65,535 in the lab) is full.
t0=$(lab_now_ms)
for ((i = 0; i < 100; i++)); do
	c1=$(cookies)
	((c1 > c0)) && break
	sleep 0.1
done
((c1 > c0)) || { cat "$LAB_DIR/flood.log" >&2; lab_fail "10 s into the flood the gateway sent no SYN cookies"; }
lab_log "ok: syncookies engaged $(($(lab_now_ms) - t0)) ms into the flood"

lab_bg "$LAB_CLI" "$LAB_DIR/good.log" "$PEER" latency -b "$GOOD" -n $REQUESTS -i 5 -T 5000 "$VIP"
GOODPID=$LAB_BG_PID
max_rss=$rss0 max_fds=$fds0
while kill -0 "$GOODPID" 2>/dev/null; do
	read -r rss fds < <(usage)
	((rss > max_rss)) && max_rss=$rss
	((fds > max_fds)) && max_fds=$fds
	sleep 0.5
done
wait "$GOODPID"
c2=$(cookies)
a1=$(accepted)
lab_stop "$FLOOD"
flood=$(grep '^synflood:' "$LAB_DIR/flood.log")
[[ -n $flood ]] || { cat "$LAB_DIR/flood.log" >&2; lab_fail "no report from synflood"; }
lab_log "flood: $flood"
lab_log "gateway: $((c2 - c0)) SYN cookies sent; $(in_gw nstat -az TcpExtListenDrops TcpExtListenOverflows TcpExtSyncookiesRecv | awk 'NR > 1 && $1 ~ /^Tcp/ { printf "%s %s ", $1, $2 }')"

line=$(tail -n1 "$LAB_DIR/good.log")
lab_log "legitimate client: $line"
ok=$(sed -n 's/.* requests: \([0-9]*\) ok.*/\1/p' <<<"$line")
((ok * 100 >= REQUESTS * 99)) || { lab_lb_log; lab_fail "the legitimate client completed $ok of $REQUESTS requests, want 99% or more"; }
lab_log "ok: the legitimate client completed $ok of $REQUESTS requests"
((a1 - a0 == ok)) ||
	lab_fail "the workers accepted $((a1 - a0)) connections for $ok completed requests: half-open junk got through"
lab_log "ok: the workers accepted $((a1 - a0)) connections, the legitimate client's $ok"
((max_rss - rss0 <= 2048)) || lab_fail "lb's RSS grew from $rss0 to $max_rss KiB during the flood"
((max_fds - fds0 <= 8)) || lab_fail "lb's open files grew from $fds0 to $max_fds during the flood"
read -r rss fds < <(usage)
lab_log "ok: lb stayed flat: RSS $rss0 KiB at rest, at most $max_rss during the flood ($rss after); open files $fds0, at most $max_fds ($fds after)"
lab_lb_stop || lab_fail "lb exited with status $?"

lab_log "checking: lb warns at start when tcp_syncookies is 0"
in_gw sysctl -qw net.ipv4.tcp_syncookies=0
lab_lb_start "$cfg"
line=$(lab_wait_grep "$LAB_LB_LOG" 'net.ipv4.tcp_syncookies is 0' 1) || { lab_lb_log; lab_fail "no warning"; }
lab_log "ok: warned: ${line##*msg=}"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_stop_drained "$ECHO" "$LAB_BE" $PORT
lab_log "PASS"
