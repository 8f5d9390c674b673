#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Two lb gateways with keepalived (docs/ha.md, dist/keepalived/keepalived.conf):
# a client-side and a backend-side virtual gateway address move together (a
# VRRP sync group) to the gateway whose lb answers "lbctl status". Kills lb
# on the active gateway, then takes one of its links down, and after each
# checks that new connections succeed through the standby within 3 s,
# counts the connections that failed meanwhile (a client opens one every
# ~0.1 s), checks that an established connection through the dead gateway
# is lost (its sockets lived there) and that failback to gw1 works. Maglev
# sends each client to the same backend through either gateway.
#
#   cli c0 198.18.0.10-13/24, default via 198.18.0.1 (virtual)
#    |
#   br  bridge brc ---- gw1 eth0 198.18.0.2/24   gw2 eth0 198.18.0.3/24
#       bridge brb ---- gw1 eth1 198.18.2.11/24  gw2 eth1 198.18.2.12/24
#    |
#   be  b0 198.18.2.2-3/24, default via 198.18.2.1 (virtual)
#
# Measured times come from polling (50 ms) and the client's probes; they are
# printed, and only the 3 s bound is asserted.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root keepalived socat
lab_need_lb
LBCTL=${LBCTL_BIN:-$(dirname "$LB_BIN")/lbctl}
[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
KA_CONF=$LB_SRCDIR/dist/keepalived/keepalived.conf
[[ -r $KA_CONF ]] || lab_fail "missing $KA_CONF"

CLI=$LAB_ID-cli
BR=$LAB_ID-br
GW=([1]=$LAB_ID-gw1 [2]=$LAB_ID-gw2)
BE=$LAB_ID-be
# For lab.sh's helpers (lab_curl, lab_nginx_start).
LAB_CLI=$CLI
LAB_BE=$BE
VIP=198.18.100.1
CLIENTS=(198.18.0.10 198.18.0.11 198.18.0.12 198.18.0.13 198.18.0.14 198.18.0.15 198.18.0.16 198.18.0.17)
LB_PID=()
FAILOVER_MAX_MS=3000

now_ms() { date +%s%3N; }

# link NS DEV BRIDGE: a veth from NS (named DEV there) to a port of BRIDGE.
link() {
	local ns=$1 dev=$2 br=$3 port=$4
	ip -n "$ns" link add "$dev" type veth peer name "$port" netns "$BR" ||
		lab_fail "veth $ns/$dev"
	ip -n "$BR" link set "$port" master "$br" up
	ip -n "$ns" link set "$dev" up
}

ha_up() {
	local n a
	trap lab_down EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$LAB_ID.XXXXXX") || lab_fail "mktemp"
	chmod 755 "$LAB_DIR"
	for n in "$CLI" "$BR" "${GW[1]}" "${GW[2]}" "$BE"; do
		lab_ns_add "$n"
	done
	# STP off (the default): ports forward at once. No multicast snooping,
	# so VRRP adverts reach every port without an IGMP querier.
	for n in brc brb; do
		ip -n "$BR" link add "$n" type bridge mcast_snooping 0 || lab_fail "bridge $n"
		ip -n "$BR" link set "$n" up
	done
	link "$CLI" c0 brc pc
	link "${GW[1]}" eth0 brc p1c
	link "${GW[2]}" eth0 brc p2c
	link "${GW[1]}" eth1 brb p1b
	link "${GW[2]}" eth1 brb p2b
	link "$BE" b0 brb pb

	for a in "${CLIENTS[@]}"; do
		ip -n "$CLI" addr add "$a/24" dev c0
	done
	ip -n "$CLI" route add default via 198.18.0.1
	for n in 1 2; do
		ip -n "${GW[n]}" addr add "198.18.0.$((n + 1))/24" dev eth0
		ip -n "${GW[n]}" addr add "198.18.2.$((n + 10))/24" dev eth1
		# docs/deploy.md, step "sysctl".
		ip netns exec "${GW[n]}" sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.default.rp_filter=2 \
			net.ipv4.conf.eth0.rp_filter=2 net.ipv4.conf.eth1.rp_filter=2 \
			net.ipv4.conf.all.src_valid_mark=0 || lab_fail "gateway sysctls"
	done
	for a in "${LAB_BE_IP4[@]}"; do
		ip -n "$BE" addr add "$a/24" dev b0
	done
	# Unused here, but lab_nginx_start listens on them.
	for a in "${LAB_BE_IP6[@]}"; do
		ip -n "$BE" addr add "$a/64" dev b0 nodad
	done
	ip -n "$BE" route add default via 198.18.2.1

	local i ok
	for ((i = 0; i < 50; i++)); do
		ok=1
		for a in "$CLI c0" "${GW[1]} eth0" "${GW[1]} eth1" "${GW[2]} eth0" \
			"${GW[2]} eth1" "$BE b0"; do
			ip -n "${a% *}" -o link show "${a#* }" | grep -q LOWER_UP || ok=
		done
		[[ -n $ok ]] && break
		sleep 0.1
	done
	[[ -n $ok ]] || lab_fail "lab links did not come up"
	lab_log "lab up: $CLI $BR ${GW[1]} ${GW[2]} $BE (dir $LAB_DIR)"
}

# The same lb config on both gateways; only the control socket differs,
# because the two namespaces share one file system.
lb_config() {
	local d=$LAB_DIR/gw$1
	mkdir -p "$d"
	cat >"$d/lb.json" <<EOF
{
	"workers": 2,
	"drain_timeout_ms": 1000,
	"control": {"path": "$d/lb.sock"},
	"services": [
		{
			"name": "web",
			"vips": ["$VIP:80"],
			"scheduler": "maglev",
			"backends": [{"address": "198.18.2.2:80"}, {"address": "198.18.2.3:80"}],
			"connect_timeout_ms": 1000,
			"health": {"type": "tcp", "interval_ms": 1000, "timeout_ms": 500}
		},
		{
			"name": "echo",
			"vips": ["$VIP:7"],
			"backends": [{"address": "198.18.2.2:7"}]
		}
	]
}
EOF
}

# lb_start N: lb in gateway N; waits for its "ready" line.
lb_start() {
	local n=$1 i log
	log=$(mktemp "$LAB_DIR/gw$n/lb.XXXXXX.log")
	lab_bg "${GW[n]}" "$log" "$LB_BIN" -c "$LAB_DIR/gw$n/lb.json"
	LB_PID[n]=$LAB_BG_PID
	for ((i = 0; i < 100; i++)); do
		grep -qw ready "$log" && return 0
		kill -0 "${LB_PID[n]}" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/  | /' "$log" >&2
	lab_fail "lb in gw$n did not become ready"
}

lbctl() {
	local n=$1
	shift
	ip netns exec "${GW[n]}" "$LBCTL" -s "$LAB_DIR/gw$n/lb.sock" "$@"
}

# The dist file as it is, but with this build's lbctl, this gateway's
# socket, and without enable_script_security: that refuses scripts under
# any directory a non-root user may write, which a build tree may be.
ka_start() {
	local n=$1 d=$LAB_DIR/gw$1
	sed -e "s#/usr/bin/lbctl#$LBCTL#" -e "s#/run/lb/lb.sock#$d/lb.sock#" \
		-e '/enable_script_security/d' "$KA_CONF" >"$d/keepalived.conf"
	lab_bg "${GW[n]}" "$d/keepalived.log" keepalived -n -l -D -G -P -i "gw$n" \
		-f "$d/keepalived.conf" -p "$d/keepalived.pid" -r "$d/vrrp.pid" \
		-c "$d/checkers.pid"
}

# holds N: 0 when gateway N has both virtual addresses.
holds() {
	ip -n "${GW[$1]}" -o addr show dev eth0 | grep -q ' 198\.18\.0\.1/' &&
		ip -n "${GW[$1]}" -o addr show dev eth1 | grep -q ' 198\.18\.2\.1/'
}

# holds_none N: 0 when gateway N has neither.
holds_none() {
	! ip -n "${GW[$1]}" -o addr show dev eth0 | grep -q ' 198\.18\.0\.1/' &&
		! ip -n "${GW[$1]}" -o addr show dev eth1 | grep -q ' 198\.18\.2\.1/'
}

# wait_master N SECONDS: until gateway N holds both addresses and the other
# neither; prints the time (ms) it happened.
wait_master() {
	local n=$1 other=$((3 - $1)) i limit=$(($2 * 20))
	for ((i = 0; i < limit; i++)); do
		if holds "$n" && holds_none "$other"; then
			now_ms
			return 0
		fi
		sleep 0.05
	done
	return 1
}

ka_logs() {
	local n
	for n in 1 2; do
		lab_log "gw$n keepalived log (tail):"
		tail -n 30 "$LAB_DIR/gw$n/keepalived.log" | sed 's/^/  | /' >&2
	done
}

# Sum of a service's connections_total over its families, from lbctl metrics.
conns() {
	lbctl "$1" metrics | awk -v s="$2" '
		$1 ~ "^lb_service_connections_total\\{" && index($1, "service=\"" s "\"") { n += $2 }
		END { print n + 0 }'
}

# The client's probe: a new connection (an HTTP request) every 0.1 s, each
# on its own so that a slow one does not hold up the next, with a real
# client's patience (SYN retransmits after 1 and 3 s). One line per
# attempt: START_MS END_MS CURL_STATUS BODY_OR_ERROR.
probe_start() {
	cat >"$LAB_DIR/probe.sh" <<'EOF'
dir=$1 vip=$2
probe() {
	local s out rc
	s=$(date +%s%3N)
	if out=$(curl -sS --fail --connect-timeout 4 --max-time 5 --interface 198.18.0.10 \
		"http://$vip/" 2>&1); then rc=0; else rc=$?; fi
	echo "$s $(date +%s%3N) $rc ${out//$'\n'/ }" >>"$dir/probe.log"
}
while [[ ! -e $dir/probe.stop ]]; do
	probe &
	sleep 0.1
done
wait
EOF
	: >"$LAB_DIR/probe.log"
	lab_bg "$CLI" "$LAB_DIR/probe.err" bash "$LAB_DIR/probe.sh" "$LAB_DIR" "$VIP"
	PROBE_PID=$LAB_BG_PID
}

probe_stop() {
	touch "$LAB_DIR/probe.stop"
	wait "$PROBE_PID" 2>/dev/null
}

# probe_report WHAT T0: waits for the probes under way to end, then reports
# on those that started after T0 - 5 s and were not over by T0: how many
# failed, how many succeeded only after a SYN retransmit (over 500 ms), and
# when (relative to T0) the first probe started after which every probe
# succeeded at once: the outage for new connections. Sets PROBE_TOTAL,
# PROBE_FAILED, PROBE_SLOW, PROBE_RECOVERED_MS.
probe_report() {
	local what=$1 t0=$2 t1 out
	t1=$(now_ms)
	sleep 5.5
	out=$(sort -n "$LAB_DIR/probe.log" | awk -v t0="$t0" -v t1="$t1" '
		$1 >= t0 - 5000 && $1 <= t1 && $2 >= t0 {
			total++
			if ($3 != 0) { failed++; bad = 1; if (!err) err = $0 }
			else if ($2 - $1 > 500) { slow++; bad = 1 }
			else bad = 0
			if (bad) { anybad = 1; okfrom = 0 }
			else if (!okfrom) okfrom = $1
		}
		END {
			rec = !anybad ? 0 : okfrom ? okfrom - t0 : -1
			if (anybad && okfrom && rec < 0) rec = 0
			printf "%d %d %d %d\n", total, failed + 0, slow + 0, rec
			if (err) print "first failure: " err > "/dev/stderr"
		}') || lab_fail "probe_report"
	read -r PROBE_TOTAL PROBE_FAILED PROBE_SLOW PROBE_RECOVERED_MS <<<"$out"
	lab_log "$what: of $PROBE_TOTAL new connections, $PROBE_FAILED failed and $PROBE_SLOW" \
		"needed a SYN retransmit; all succeed at once from +$PROBE_RECOVERED_MS ms"
	[[ $PROBE_RECOVERED_MS -ge 0 ]] || lab_fail "$what: no successful connection after the failure"
	[[ $PROBE_RECOVERED_MS -le $FAILOVER_MAX_MS ]] ||
		lab_fail "$what: new connections failed for $PROBE_RECOVERED_MS ms (limit $FAILOVER_MAX_MS)"
}

# hold_start: one established connection to the echo service, through the
# current master; hold_check prints "lost" or "alive" after sending again.
hold_start() {
	rm -f "$LAB_DIR/hold.go" "$LAB_DIR/hold.state"
	cat >"$LAB_DIR/hold.sh" <<'EOF'
dir=$1 vip=$2
trap '' PIPE
exec 3<>"/dev/tcp/$vip/7" || { echo "connect-failed" >"$dir/hold.state"; exit 1; }
echo ping1 >&3
read -r -t 2 line <&3
echo "before:$line" >"$dir/hold.state"
while [[ ! -e $dir/hold.go ]]; do sleep 0.05; done
if echo ping2 >&3 2>/dev/null && read -r -t 3 line <&3 && [[ $line == ping2 ]]; then
	echo "alive" >"$dir/hold.state"
else
	echo "lost" >"$dir/hold.state"
fi
EOF
	lab_bg "$CLI" "$LAB_DIR/hold.err" bash "$LAB_DIR/hold.sh" "$LAB_DIR" "$VIP"
	lab_wait_grep "$LAB_DIR/hold.state" '^(before:|connect-failed)' 5 >/dev/null
	[[ $(cat "$LAB_DIR/hold.state") == before:ping1 ]] ||
		lab_fail "echo connection through the VIP: $(cat "$LAB_DIR/hold.state" 2>&1)"
}

hold_check() {
	touch "$LAB_DIR/hold.go"
	lab_wait_grep "$LAB_DIR/hold.state" '^(alive|lost)$' 8 || cat "$LAB_DIR/hold.state"
}

# mapping: "client=backend ..." for every client address, checking that the
# backend saw the client's own address.
mapping() {
	local src body map=
	for src in "${CLIENTS[@]}"; do
		body=$(lab_curl "$src" "http://$VIP/") || return 1
		[[ $body =~ ^backend=([^ ]+)\ client=([^ ]+)$ ]] || return 1
		[[ ${BASH_REMATCH[2]} == "$src" ]] ||
			lab_fail "backend ${BASH_REMATCH[1]} saw client ${BASH_REMATCH[2]}, want $src"
		map+="$src=${BASH_REMATCH[1]} "
	done
	printf '%s\n' "${map% }"
}

ha_up
lab_nginx_start
lab_bg "$BE" "$LAB_DIR/echo.log" socat TCP-LISTEN:7,bind=198.18.2.2,reuseaddr,fork PIPE
lab_wait_port "$BE" 198.18.2.2 7 || lab_fail "echo server did not listen"
for n in 1 2; do
	lb_config "$n"
	lb_start "$n"
	lbctl "$n" status >/dev/null || lab_fail "lbctl status in gw$n"
done
ka_start 1
ka_start 2
t=$(wait_master 1 10) || { ka_logs; lab_fail "gw1 did not become master"; }
lab_log "ok: gw1 holds 198.18.0.1 and 198.18.2.1, gw2 neither"

map1=$(mapping) || { lab_lb_log; lab_fail "requests through gw1 failed"; }
lab_log "ok: through gw1, backends see the client addresses: $map1"
c1=$(conns 1 web)
c2=$(conns 2 web)
[[ $c1 -ge ${#CLIENTS[@]} && $c2 -eq 0 ]] || lab_fail "gw1 should have handled all ${#CLIENTS[@]} ($c1), gw2 none ($c2)"

# ---- 1: lb on the active gateway dies ----
# SIGKILL, as in a crash: no draining, its rules stay behind. keepalived's
# check (every 1 s) fails, the sync group goes to FAULT and gives up both
# addresses; gw2 takes them with gratuitous ARP.
hold_start
probe_start
sleep 1
t_fail=$(now_ms)
kill -KILL "${LB_PID[1]}"
wait "${LB_PID[1]}" 2>/dev/null
t_vrrp=$(wait_master 2 5) || { ka_logs; lab_fail "gw2 did not take over within 5 s of lb dying in gw1"; }
kill_vrrp=$((t_vrrp - t_fail))
lab_log "lb killed in gw1: gw2 holds both addresses after $kill_vrrp ms"
state=$(hold_check)
[[ $state == lost ]] || lab_fail "the connection established through gw1 should be lost, is $state"
lab_log "ok: the echo connection established through gw1 is lost (its sockets were in gw1's lb)"
sleep 1
probe_report "lb killed" "$t_fail"
kill_res="$PROBE_FAILED failed, $PROBE_SLOW retransmitted, of $PROBE_TOTAL; ok from +$PROBE_RECOVERED_MS ms"
map2=$(mapping) || lab_fail "requests through gw2 failed"
[[ $map2 == "$map1" ]] || lab_fail "maglev: through gw2 $map2, through gw1 $map1"
lab_log "ok: through gw2, every client reaches the same backend as through gw1"
[[ $(conns 2 web) -gt 0 ]] || lab_fail "gw2's lb counted no connections"

# ---- failback: lb restarts in gw1, which takes the addresses back ----
t_back=$(now_ms)
lb_start 1
t_ready=$(now_ms)
t_vrrp=$(wait_master 1 15) || { ka_logs; lab_fail "gw1 did not take the addresses back"; }
lab_log "failback: lb ready in gw1 after $((t_ready - t_back)) ms, gw1 master" \
	"$((t_vrrp - t_ready)) ms later (rise: 2 checks, then preempt_delay 5 s)"
t_switch=$t_vrrp
sleep 1
probe_report "failback" "$t_switch"
back_res="$PROBE_FAILED failed, $PROBE_SLOW retransmitted, of $PROBE_TOTAL"
c1=$(conns 1 web)
mapping >/dev/null || lab_fail "requests after failback failed"
[[ $(conns 1 web) -ge $((c1 + ${#CLIENTS[@]})) ]] || lab_fail "gw1's lb did not take the requests after failback"
lab_log "ok: after failback gw1's lb takes the new connections"

# ---- 2: a link of the active gateway goes down ----
# Only eth1 (backend side) fails: the sync group must move the client-side
# address too, or clients would keep sending to a gateway that cannot reach
# the backends.
hold_start
sleep 1
t_fail=$(now_ms)
ip -n "${GW[1]}" link set eth1 down
t_vrrp=$(wait_master 2 5) || { ka_logs; lab_fail "gw2 did not take over after gw1's eth1 went down"; }
link_vrrp=$((t_vrrp - t_fail))
lab_log "gw1 eth1 down: gw2 holds both addresses after $link_vrrp ms"
state=$(hold_check)
[[ $state == lost ]] || lab_fail "the connection through gw1 should be lost after its link went down, is $state"
lab_log "ok: the echo connection established through gw1 is lost"
sleep 1
probe_report "link down" "$t_fail"
link_res="$PROBE_FAILED failed, $PROBE_SLOW retransmitted, of $PROBE_TOTAL; ok from +$PROBE_RECOVERED_MS ms"

ip -n "${GW[1]}" link set eth1 up
t_up=$(now_ms)
t_vrrp=$(wait_master 1 15) || { ka_logs; lab_fail "gw1 did not take the addresses back after eth1 came up"; }
lab_log "link up: gw1 master again after $((t_vrrp - t_up)) ms"
sleep 1
probe_report "link back" "$t_vrrp"
up_res="$PROBE_FAILED failed, $PROBE_SLOW retransmitted, of $PROBE_TOTAL; ok from +$PROBE_RECOVERED_MS ms"
probe_stop
mapping >/dev/null || lab_fail "requests after the link came back failed"

lab_log "summary: lb killed: takeover $kill_vrrp ms, probes: $kill_res" \
	"| failback: $back_res | link down: takeover $link_vrrp ms, $link_res | link back: $up_res"
lab_log "PASS"
