# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034  # variables are for the sourcing script
#
# The scale-out lab: a tier of lb gateways behind a BIRD router doing ECMP,
# for tests/integration/scale-out.sh and tests/bench/scale-out. Source it
# after tests/lab.sh:
#
#	. "$LB_SRCDIR/tests/lab.sh"
#	. "$LB_SRCDIR/tests/lab_scaleout.sh"
#	so_up; so_backends_start; so_bird_router; so_gateway_start 1 ...
#
# Namespaces (per-run names, deleted by lab_down):
#
#   cli   c0: 198.18.0.10-25/24, 2001:db8::10-25/64, default via the router
#    |
#   rt    r0: 198.18.0.1, 2001:db8::1          BIRD: eBGP + BFD to every gateway,
#         r1: 198.18.1.1, 2001:db8:1::1        merge paths into one ECMP route
#    |          (layer-4 multipath hash)
#   sw    bridge brup (uplink segment, 198.18.1.0/24, 2001:db8:1::/64) and
#    |    bridge brbe (backend segment, 198.18.2.0/24, 2001:db8:2::/64)
#   gwN   up0: 198.18.1.1N, 2001:db8:1::1N    lb + BIRD (N = 1, 2, 3)
#         dn0: 198.18.2.N, 2001:db8:2::N
#    |
#   beN   b0: 198.18.2.10N, 2001:db8:2::10N   nginx :80, peer echo :9000;
#         be1 also answers :8080 ("solo"). Replies find their gateway
#         with dist/return-path/lb-return-path: be1 marks every packet,
#         be2 uses the conntrack mark.
#
# The router's uplink stays up when a gateway's link is cut in sw (its
# switch port), so only BFD tells the router: the way a dead gateway
# behind a switch looks.

SO_GWS=${SO_GWS:-3}
SO_VIP4=198.18.100.1
SO_VIP6=2001:db8:100::1
SO_SOLO4=198.18.100.2		# one service, one backend: for health-driven withdrawal
SO_CLI4=() SO_CLI6=()
for ((i = 10; i < 26; i++)); do
	SO_CLI4+=("198.18.0.$i")
	SO_CLI6+=("2001:db8::$i")
done
SO_BE4=(198.18.2.101 198.18.2.102)
SO_BE6=(2001:db8:2::101 2001:db8:2::102)
SO_TABLE=200			# lb's announce.table
SO_PROTO=250			# lb's announce.protocol
SO_AS_ROUTER=65000
SO_AS_TIER=65001
SO_RT=$LAB_ID-rt
SO_SW=$LAB_ID-sw
SO_ECHO_PID=()
SO_LB_PID=()
SO_LB_LOG=()
declare -A SO_BIRD_PID=()

so_gw() { echo "$LAB_ID-gw$1"; }
so_be() { echo "$LAB_ID-be$1"; }
in_rt() { ip netns exec "$SO_RT" "$@"; }
in_so_gw() {
	local n=$1
	shift
	ip netns exec "$(so_gw "$n")" "$@"
}

# so_skip_unless_ready: SKIP (77) without root, BIRD, nginx or the tools.
so_skip_unless_ready() {
	lab_skip_unless_root bird birdc jq
	lab_need_lb
	lab_need_peer
	LBCTL=${LBCTL:-${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl}
	[[ -x $LBCTL ]] || lab_skip "lbctl not built: $LBCTL"
	[[ -c /dev/net/tun ]] || lab_skip "no /dev/net/tun (lb holds its announcements on a TUN device)"
}

# so_veth NS1 DEV1 NS2 DEV2: a veth pair between two namespaces.
so_veth() {
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" ||
		lab_fail "veth $1/$2 - $3/$4"
}

so_forwarding() {
	ip netns exec "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 ||
		lab_fail "sysctls in $1"
}

# so_up: make and wire every namespace. Installs lab_down as trap.
so_up() {
	local n a
	lab_begin
	for n in "$LAB_ID-cli" "$SO_RT" "$SO_SW"; do
		lab_ns_add "$n"
	done
	LAB_CLI=$LAB_ID-cli
	for ((n = 1; n <= SO_GWS; n++)); do
		lab_ns_add "$(so_gw "$n")"
	done
	for n in 1 2; do
		lab_ns_add "$(so_be "$n")"
	done
	ip netns exec "$SO_SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	for a in brup brbe; do
		ip -n "$SO_SW" link add "$a" type bridge mcast_snooping 0 || lab_fail "bridge $a"
		ip -n "$SO_SW" link set "$a" up
	done

	so_veth "$LAB_CLI" c0 "$SO_RT" r0
	so_veth "$SO_RT" r1 "$SO_SW" rt
	ip -n "$SO_SW" link set rt master brup up
	for ((n = 1; n <= SO_GWS; n++)); do
		so_gateway_wire "$n"
	done
	for n in 1 2; do
		so_veth "$(so_be "$n")" b0 "$SO_SW" "be$n"
		ip -n "$SO_SW" link set "be$n" master brbe up
		ip -n "$(so_be "$n")" addr add "${SO_BE4[n - 1]}/24" dev b0
		ip -n "$(so_be "$n")" addr add "${SO_BE6[n - 1]}/64" dev b0 nodad
		ip -n "$(so_be "$n")" link set b0 up
		# Anything unmarked (the backend's own traffic) goes by gateway 1.
		ip -n "$(so_be "$n")" route add default via 198.18.2.1
		ip -n "$(so_be "$n")" -6 route add default via 2001:db8:2::1
		ip netns exec "$(so_be "$n")" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
			net.ipv4.conf.default.rp_filter=0
	done

	for a in "${SO_CLI4[@]}"; do
		ip -n "$LAB_CLI" addr add "$a/24" dev c0
	done
	for a in "${SO_CLI6[@]}"; do
		ip -n "$LAB_CLI" addr add "$a/64" dev c0 nodad
	done
	ip -n "$LAB_CLI" link set c0 up
	ip -n "$LAB_CLI" route add default via 198.18.0.1
	ip -n "$LAB_CLI" -6 route add default via 2001:db8::1
	# Client ports from a range of their own, so the load never runs out.
	ip netns exec "$LAB_CLI" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" \
		net.ipv4.tcp_tw_reuse=1

	ip -n "$SO_RT" addr add 198.18.0.1/24 dev r0
	ip -n "$SO_RT" addr add 2001:db8::1/64 dev r0 nodad
	ip -n "$SO_RT" addr add 198.18.1.1/24 dev r1
	ip -n "$SO_RT" addr add 2001:db8:1::1/64 dev r1 nodad
	ip -n "$SO_RT" link set r0 up
	ip -n "$SO_RT" link set r1 up
	so_forwarding "$SO_RT"
	# Layer 4: the connections of one client spread over the gateways.
	in_rt sysctl -qw net.ipv4.fib_multipath_hash_policy=1 \
		net.ipv6.fib_multipath_hash_policy=1 || lab_fail "multipath hash policy"

	so_wait_carrier || lab_fail "lab links did not come up"
	so_return_paths
	lab_log "scale-out lab up: $SO_GWS gateways, dir $LAB_DIR"
}

# so_gateway_wire N: gateway N's namespace links (uplink and backend side).
so_gateway_wire() {
	local n=$1 g
	g=$(so_gw "$n")
	so_veth "$g" up0 "$SO_SW" "u$n"
	so_veth "$g" dn0 "$SO_SW" "d$n"
	ip -n "$SO_SW" link set "u$n" master brup up
	ip -n "$SO_SW" link set "d$n" master brbe up
	ip -n "$g" addr add "198.18.1.1$n/24" dev up0
	ip -n "$g" addr add "2001:db8:1::1$n/64" dev up0 nodad
	ip -n "$g" addr add "198.18.2.$n/24" dev dn0
	ip -n "$g" addr add "2001:db8:2::$n/64" dev dn0 nodad
	ip -n "$g" link set up0 up
	ip -n "$g" link set dn0 up
	ip -n "$g" route add default via 198.18.1.1
	ip -n "$g" -6 route add default via 2001:db8:1::1
	so_forwarding "$g"
	ip netns exec "$g" sysctl -qw net.ipv4.conf.up0.rp_filter=0 net.ipv4.conf.dn0.rp_filter=0 \
		net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096
}

so_wait_carrier() {
	local i l n ok
	for ((i = 0; i < 50; i++)); do
		ok=1
		while read -r n l; do
			ip -n "$n" -o link show "$l" up 2>/dev/null | grep -q LOWER_UP || ok=
		done < <(
			echo "$LAB_CLI c0"
			echo "$SO_RT r0"
			echo "$SO_RT r1"
			for ((n = 1; n <= SO_GWS; n++)); do
				echo "$(so_gw "$n") up0"
				echo "$(so_gw "$n") dn0"
			done
			echo "$(so_be 1) b0"
			echo "$(so_be 2) b0"
		)
		[[ -n $ok ]] && return 0
		sleep 0.1
	done
	return 1
}

so_mac() {
	ip -n "$1" -j link show "$2" | jq -r '.[0].address'
}

# so_return_paths: the tested recipe on both backends (be1 marks, be2 connmarks).
so_return_paths() {
	local n gws=() mode
	for ((n = 1; n <= SO_GWS; n++)); do
		gws+=("$(so_mac "$(so_gw "$n")" dn0),198.18.2.$n,2001:db8:2::$n")
	done
	for n in 1 2; do
		mode=()
		[[ $n == 2 ]] && mode=(--connmark)
		ip netns exec "$(so_be "$n")" "$LB_SRCDIR/dist/return-path/lb-return-path" \
			"${mode[@]}" "${gws[@]}" || lab_fail "return path on $(so_be "$n")"
	done
}

# so_backends_start: nginx on :80 and peer echo on :9000 on both backends;
# be1 also runs the "solo" service's backend (peer echo on :8080).
so_backends_start() {
	local n d
	for n in 1 2; do
		d=$LAB_DIR/nginx-be$n
		lab_nginx_conf "$d" 1 4096 "		listen ${SO_BE4[n - 1]}:80;
		listen [${SO_BE6[n - 1]}]:80;"
		lab_bg "$(so_be "$n")" "$d/logs/stderr.log" /usr/sbin/nginx -p "$d" \
			-e "$d/logs/error.log" -c "$d/nginx.conf"
		lab_bg "$(so_be "$n")" "$LAB_DIR/echo-be$n.log" "$PEER" echo \
			"${SO_BE4[n - 1]}:9000" "[${SO_BE6[n - 1]}]:9000"
		SO_ECHO_PID[n]=$LAB_BG_PID
		lab_wait_port "$(so_be "$n")" "${SO_BE4[n - 1]}" 80 || lab_fail "nginx on be$n"
		lab_wait_port "$(so_be "$n")" "${SO_BE4[n - 1]}" 9000 || lab_fail "echo on be$n"
	done
	so_solo_start
}

so_solo_start() {
	lab_bg "$(so_be 1)" "$LAB_DIR/solo.log" "$PEER" echo "${SO_BE4[0]}:8080"
	SO_SOLO_PID=$LAB_BG_PID
	lab_wait_port "$(so_be 1)" "${SO_BE4[0]}" 8080 || lab_fail "solo backend"
}

so_solo_stop() {
	lab_stop "$SO_SOLO_PID"
}

# so_template FILE KEY=VALUE...: FILE with every @KEY@ replaced.
so_template() {
	local f=$1 kv args=()
	shift
	for kv in "$@"; do
		args+=(-e "s|@${kv%%=*}@|${kv#*=}|g")
	done
	sed "${args[@]}" "$f"
}

# so_bird NS NAME CONF: BIRD in NS with CONF, its socket and log in the lab
# dir. At a real-time priority, as docs/scale-out.md advises: BFD's 300 ms
# must hold on a loaded box (this one runs three lbs, a load and the test).
so_bird() {
	local ns=$1 name=$2 conf=$3
	bird -p -c "$conf" || lab_fail "BIRD config $conf"
	lab_bg "$ns" "$LAB_DIR/bird-$name.log" chrt -f 10 bird -f -c "$conf" \
		-s "$LAB_DIR/bird-$name.ctl" -P "$LAB_DIR/bird-$name.pid"
	SO_BIRD_PID[$name]=$LAB_BG_PID
}

# so_bird_router [KERNEL_TABLE]: the router's BIRD, routes into main (254) or KERNEL_TABLE.
so_bird_router() {
	local conf=$LAB_DIR/bird-rt.conf
	so_template "$LB_SRCDIR/dist/bird/router.conf" ROUTER_ID=198.18.1.1 UPLINK=r1 \
		ROUTER4=198.18.1.1 ROUTER6=2001:db8:1::1 TIER4=198.18.1.0/24 TIER6=2001:db8:1::/64 \
		LOCAL_AS=$SO_AS_ROUTER TIER_AS=$SO_AS_TIER KERNEL_TABLE="${1:-254}" >"$conf"
	so_bird "$SO_RT" rt "$conf"
}

so_bird_gateway() {
	local n=$1 conf=$LAB_DIR/bird-gw$1.conf
	so_template "$LB_SRCDIR/dist/bird/gateway.conf" ROUTER_ID="198.18.1.1$n" UPLINK=up0 \
		LOCAL4="198.18.1.1$n" LOCAL6="2001:db8:1::1$n" ROUTER4=198.18.1.1 \
		ROUTER6=2001:db8:1::1 LOCAL_AS=$SO_AS_TIER ROUTER_AS=$SO_AS_ROUTER \
		LB_TABLE=$SO_TABLE LB_PROTOCOL=$SO_PROTO >"$conf"
	so_bird "$(so_gw "$n")" "gw$n" "$conf"
}

# so_lb_config N: gateway N's lb config (the same services on every gateway).
so_lb_config() {
	local n=$1 f=$LAB_DIR/lb-gw$1.json
	local hc='"health": {"type": "tcp", "interval_ms": 300, "timeout_ms": 250, "rise": 2, "fall": 2}'
	cat >"$f" <<EOF
{
	"workers": 1,
	"access_log": true,
	"drain_timeout_ms": ${SO_DRAIN_MS:-10000},
	"control": {"path": "$LAB_DIR/lb-gw$n.sock"},
	"intercept": {"port": 50080, "mark": 1, "table": "lb", "route_table": 100},
	"announce": {"table": $SO_TABLE, "protocol": $SO_PROTO, "settle_ms": 500},
$(so_ownership_block "$n")
	"services": [
		{"name": "web", "scheduler": "maglev",
		 "vips": ["$SO_VIP4:80", "[$SO_VIP6]:80"],
		 "backends": [{"address": "${SO_BE4[0]}:80"}, {"address": "${SO_BE4[1]}:80"},
			{"address": "[${SO_BE6[0]}]:80"}, {"address": "[${SO_BE6[1]}]:80"}],
		 $hc},
		{"name": "echo",
		 "vips": ["$SO_VIP4:9000", "[$SO_VIP6]:9000"],
		 "backends": [{"address": "${SO_BE4[0]}:9000"}, {"address": "${SO_BE4[1]}:9000"},
			{"address": "[${SO_BE6[0]}]:9000"}, {"address": "[${SO_BE6[1]}]:9000"}],
		 "client_idle_timeout_ms": 600000, $hc},
		{"name": "solo", "vips": ["$SO_SOLO4:8080"],
		 "backends": [{"address": "${SO_BE4[0]}:8080"}], $hc}${SO_EXTRA_SERVICE:+,
		$SO_EXTRA_SERVICE}
	]
}
EOF
	echo "$f"
}

# so_ownership_block N: with SO_OWNERSHIP=1, gateway N's "ownership" block
# (docs/scale-out.md): the three gateways on the uplink segment, N itself.
so_ownership_block() {
	local k peers=()
	[[ ${SO_OWNERSHIP:-0} == 1 ]] || return 0
	for ((k = 1; k <= SO_GWS; k++)); do
		peers+=("{\"name\": \"gw$k\", \"addresses\": [\"198.18.1.1$k\", \"2001:db8:1::1$k\"]}")
	done
	local IFS=,
	echo "	\"ownership\": {\"self\": \"gw$1\", \"peers\": [${peers[*]}]},"
}

# so_lb_start N: lb on gateway N; waits for its "ready" line.
so_lb_start() {
	local n=$1 cfg i
	cfg=$(so_lb_config "$n")
	SO_LB_LOG[n]=$LAB_DIR/lb-gw$n.log
	: >>"${SO_LB_LOG[n]}"
	echo "---- start $(date +%T.%3N)" >>"${SO_LB_LOG[n]}"
	ip netns exec "$(so_gw "$n")" "$LB_BIN" -c "$cfg" >>"${SO_LB_LOG[n]}" 2>&1 </dev/null &
	SO_LB_PID[n]=$!
	LAB_PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do
		tail -n 30 "${SO_LB_LOG[n]}" | grep -qw ready && return 0
		kill -0 "${SO_LB_PID[n]}" 2>/dev/null || break
		sleep 0.1
	done
	sed 's/^/  | /' "${SO_LB_LOG[n]}" >&2
	lab_fail "lb on gateway $n did not become ready"
}

# so_lb_kill N [SIGNAL]: signal gateway N's lb (KILL) and reap it.
so_lb_kill() {
	kill "-${2:-KILL}" "${SO_LB_PID[$1]}" 2>/dev/null
	wait "${SO_LB_PID[$1]}" 2>/dev/null
	SO_LB_PID[$1]=
}

so_lbctl() {
	local n=$1
	shift
	"$LBCTL" -s "$LAB_DIR/lb-gw$n.sock" "$@"
}

# so_nexthops ADDR: how many gateways the router's route to ADDR goes through (0: none).
# (A route through a nexthop group, as dist/bird/resilient-ecmp makes, counts its members.)
so_nexthops() {
	local f=-4 r
	[[ $1 == *:* ]] && f=-6
	r=$(in_rt ip "$f" -j route show "$1" 2>/dev/null | jq -r '
		if length == 0 then 0
		elif .[0].nexthops then (.[0].nexthops | length)
		elif .[0].nhid then "nhid \(.[0].nhid)"
		else 1 end' 2>/dev/null)
	if [[ $r == nhid* ]]; then
		r=$(in_rt ip -j nexthop show id "${r#nhid }" 2>/dev/null | jq '.[0].group | length')
	fi
	echo "${r:-0}"
}

# so_wait_nexthops ADDR N SECONDS: wait until the router's route to ADDR
# has N nexthops; prints how long that took (ms); 1 on timeout.
so_wait_nexthops() {
	local t0 i n
	t0=$(lab_now_ms)
	n=$(awk -v s="$3" 'BEGIN { printf "%d", s * 50 }')
	for ((i = 0; i <= n; i++)); do
		if [[ $(so_nexthops "$1") == "$2" ]]; then
			echo $(($(lab_now_ms) - t0))
			return 0
		fi
		sleep 0.02
	done
	return 1
}

# so_birdc NAME CMD...: birdc on BIRD instance NAME (rt, gw1, ...).
so_birdc() {
	local name=$1
	shift
	birdc -s "$LAB_DIR/bird-$name.ctl" "$@"
}

# so_link N down|up: cut gateway N off the router (its switch port, so the
# router's own link stays up and only BFD can tell), or reconnect it.
so_link() {
	ip -n "$SO_SW" link set "u$1" "$2"
}

# so_gw_counts SERVICE: connections each gateway's lb took for SERVICE, space
# separated (0 for one whose lb is not running).
so_gw_counts() {
	local n out=()
	for ((n = 1; n <= SO_GWS; n++)); do
		out+=("$(so_lbctl "$n" -j stats 2>/dev/null | jq --arg s "$1" \
			'[.data.services[] | select(.name == $s) | .total] | add // 0' 2>/dev/null)")
		out[n - 1]=${out[n - 1]:-0}
	done
	echo "${out[*]}"
}

# so_conn_gateways VIP PORT: "CLIENTPORT GATEWAY" for every connection to
# VIP:PORT the gateways' lbs hold (ss in each gateway namespace).
so_conn_gateways() {
	local n
	for ((n = 1; n <= SO_GWS; n++)); do
		[[ -n ${SO_LB_PID[n]:-} ]] || continue
		ip netns exec "$(so_gw "$n")" ss -Htn state established "( sport = :$2 )" 2>/dev/null |
			awk -v vip="$1" -v g="$n" '{
				l = $3; r = $4
				if (sub(/^\[/, "", l)) sub(/\]:[0-9]+$/, "", l); else sub(/:[0-9]+$/, "", l)
				if (l != vip) next
				p = r; sub(/.*:/, "", p); print p, g
			}'
	done
}

# so_addr VIP PORT: VIP:PORT, bracketed for IPv6.
so_addr() {
	if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi
}

# so_ping_start VIP PORT N: N long-lived connections (peer ping, one echo
# every SO_PING_MS, 300) from the client; once all are up, records which gateway
# holds each (by client port) in $SO_PING_LOG.map.
so_ping_start() {
	local i
	SO_PING_LOG=$(mktemp "$LAB_DIR/ping.XXXXXX")
	lab_bg "$LAB_CLI" "$SO_PING_LOG" "$PEER" ping -n "$3" -i "${SO_PING_MS:-300}" -T 2000 -t 3600 \
		"$(so_addr "$1" "$2")"
	SO_PING_PID=$LAB_BG_PID
	for ((i = 0; i < 200; i++)); do
		grep -q '^ping: ready' "$SO_PING_LOG" && break
		kill -0 "$SO_PING_PID" 2>/dev/null || break
		sleep 0.05
	done
	grep -q '^ping: ready' "$SO_PING_LOG" || {
		cat "$SO_PING_LOG" >&2
		lab_fail "long-lived connections did not come up"
	}
	# A connection is in ss once lb accepted it; give the last ones a moment.
	for ((i = 0; i < 40; i++)); do
		so_conn_gateways "$1" "$2" >"$SO_PING_LOG.map"
		[[ $(wc -l <"$SO_PING_LOG.map") -ge $3 ]] && break
		sleep 0.05
	done
}

so_ping_stop() {
	lab_stop "$SO_PING_PID"
}

# so_ping_lost: after so_ping_stop, per gateway "LOST/HELD" (space
# separated, gateways 1..SO_GWS): of the connections it held when they
# started, how many ended.
so_ping_lost() {
	awk -v gws="$SO_GWS" '
		FNR == NR { gw[$1] = $2; next }
		/^ping: conn [0-9]+ port [0-9]+: [0-9]+ round trips/ {
			p = $5; sub(/:$/, "", p)
			g = (p in gw) ? gw[p] : 0
			held[g]++
			if ($NF != "ok") lost[g]++
		}
		END {
			for (g = 1; g <= gws; g++) printf "%s%d/%d", (g > 1 ? " " : ""), lost[g], held[g]
			if (held[0]) printf " unmapped:%d/%d", lost[0], held[0]
			print ""
		}' "$SO_PING_LOG.map" "$SO_PING_LOG"
}

# so_probe_start VIP PORT SECONDS [RATE]: new connections at RATE (100) a
# second from all client addresses, each echoing one byte within 1 s;
# failures are logged with their start time.
so_probe_start() {
	local rate=${4:-100} srcs=() a
	if [[ $1 == *:* ]]; then
		for a in "${SO_CLI6[@]}"; do srcs+=(-b "$a"); done
	else
		for a in "${SO_CLI4[@]}"; do srcs+=(-b "$a"); done
	fi
	SO_PROBE_LOG=$(mktemp "$LAB_DIR/probe.XXXXXX")
	SO_PROBE_RATE=$rate
	lab_bg "$LAB_CLI" "$SO_PROBE_LOG" "$PEER" churn "${srcs[@]}" -e -L -T 1000 -r "$rate" \
		-n $(($3 * rate)) -t $(($3 + 5)) "$(so_addr "$1" "$2")"
	SO_PROBE_PID=$LAB_BG_PID
}

so_probe_wait() {
	wait "$SO_PROBE_PID" 2>/dev/null
	return 0
}

# so_probe_report EVENT_MS: "F failed of N, recovered R ms after the event"
# (R: from the event to the start of the last failed connection, plus the
# probe's resolution; 0 without failures).
so_probe_report() {
	awk -v ev="$1" -v res=$((1000 / SO_PROBE_RATE)) '
		/^churn: fail / { f++; if ($3 > last) last = $3 }
		/^churn: [0-9]+ conns:/ { n = $2 }
		END {
			r = f ? last - ev + res : 0
			if (r < 0) r = 0
			printf "%d failed of %d, recovered %d ms after the event\n", f, n, r
		}' "$SO_PROBE_LOG"
}

# so_router_watch: records the router's route and nexthop changes, with
# their times, for so_router_changed.
so_router_watch() {
	SO_RT_MON=$LAB_DIR/router-monitor.log
	lab_bg "$SO_RT" "$SO_RT_MON" ip -ts monitor route nexthop
}

# so_router_mark: where the router's change log stands now, and which
# nexthop group (if any: dist/bird/resilient-ecmp) the route to SO_VIP4 uses.
so_router_mark() {
	SO_RT_MARK=$(wc -l <"$SO_RT_MON")
	SO_RT_GROUP=$(in_rt ip -j route show "$SO_VIP4" 2>/dev/null | jq -r '.[0].nhid // empty' 2>/dev/null)
}

# so_router_changed SINCE_MS: ms from SINCE_MS to the router's first change
# of its route to SO_VIP4 (or of that route's nexthop group) logged after
# so_router_mark; -1: none.
so_router_changed() {
	local line ts re="\\] (Deleted )?${SO_VIP4//./\\.} "
	[[ -n $SO_RT_GROUP ]] && re+="|\\] id $SO_RT_GROUP group "
	# Routes in other tables (BIRD's table for resilient-ecmp) forward nothing.
	line=$(tail -n +$((SO_RT_MARK + 1)) "$SO_RT_MON" | grep -v " table " | grep -m1 -E "$re")
	ts=${line#[}
	ts=${ts%%]*}
	[[ -n $line && -n $ts ]] || { echo -1; return; }
	echo $(($(date -d "${ts/T/ }" +%s%3N) - $1))
}
