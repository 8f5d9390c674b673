# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034  # variables are for the sourcing test
#
# Namespace lab for lb integration tests, demos and benchmarks. Source it:
#
#	. "$LB_SRCDIR/tests/lab.sh"
#	lab_skip_unless_root
#	lab_up
#	lab_nginx_start
#	lab_lb_start "$(lab_config)"
#	in_cli curl ...
#
# Topology (three network namespaces with per-run names, joined by veths
# created directly inside them, so the root namespace never sees a link,
# address, route, rule or sysctl change):
#
#   cli  c0 198.18.0.10-13/24 2001:db8::10-13/64, default via .0.1 / ::1
#    |
#   gw   g0 198.18.0.1/24 2001:db8::1/64       (forwarding on, rp_filter off;
#        g1 198.18.2.1/24 2001:db8:2::1/64      lb runs here)
#    |
#   be   b0 198.18.2.2-3/24 2001:db8:2::2-3/64, default via .2.1 / 2:1
#
# The VIPs 198.18.100.1 and 2001:db8:100::1 are configured nowhere: the
# client routes them to the gateway by default route and lb's tproxy rules
# pick them up there. Everything is torn down by lab_down, which lab_up
# installs as an EXIT/INT/TERM trap.
#
# The functions come in sections, by topic: logging and verdicts, what a
# test needs, the namespaces, processes, backends (nginx, the test peer),
# lb (config, process, control socket), then clients, load and
# measurements.

LAB_VIP4=198.18.100.1
LAB_VIP6=2001:db8:100::1
LAB_CLI_IP4=(198.18.0.10 198.18.0.11 198.18.0.12 198.18.0.13)
LAB_CLI_IP6=(2001:db8::10 2001:db8::11 2001:db8::12 2001:db8::13)
LAB_GW_IP4=198.18.0.1
LAB_GW_IP6=2001:db8::1
LAB_BE_IP4=(198.18.2.2 198.18.2.3)
LAB_BE_IP6=(2001:db8:2::2 2001:db8:2::3)

# What lab_log lines start with: the test's file name without ".sh".
LAB_NAME=${LAB_NAME:-$(basename "$0" .sh)}
LAB_ID=${LAB_ID:-lb-$$-$RANDOM}
LAB_CLI=$LAB_ID-cli
LAB_GW=$LAB_ID-gw
LAB_BE=$LAB_ID-be
LAB_DIR=
LAB_NS=()
LAB_PIDS=()
LAB_PEER_LOGS=()
LAB_PEER_OUT=
LAB_LB_PID=
LAB_LB_LOG=
LAB_LB_LOG_SHOW=	# the log lab_lb_log asked lab_down to show
LAB_DOWN_DONE=
# Commands lab_down evals once our processes are gone (for what a test
# made outside the namespaces, such as a cgroup).
LAB_ON_DOWN=()

# ==== Logging and verdicts ====

lab_log() {
	printf '%s: %s\n' "$LAB_NAME" "$*" >&2
}

lab_fail() {
	lab_log "FAIL: $*"
	exit 1
}

lab_skip() {
	lab_log "SKIP: $*"
	exit 77
}

# lab_check DESCRIPTION CMD...: run CMD, print "ok"/"FAIL" with the
# description, and exit 1 on failure.
lab_check() {
	local what=$1
	shift
	if "$@"; then
		lab_log "ok: $what"
	else
		lab_fail "$what"
	fi
}

# lab_now_ms: the wall clock in milliseconds, for timing what a test waits on.
lab_now_ms() { date +%s%3N; }

# ==== What a test needs ====

# lab_skip_unless_root [TOOL...]: exit 77 unless we are root, the tools the
# lab needs (plus any named) exist, and network namespaces can be created.
lab_skip_unless_root() {
	local t
	[[ $EUID -eq 0 ]] || lab_skip "needs root (network namespaces, nftables)"
	for t in ip nft curl jq /usr/sbin/nginx "$@"; do
		command -v "$t" >/dev/null 2>&1 || lab_skip "missing tool: $t"
	done
	local probe=$LAB_ID-probe
	ip netns add "$probe" 2>/dev/null ||
		lab_skip "cannot create network namespaces (no CAP_SYS_ADMIN?)"
	ip netns del "$probe"
}

# lab_need_lb [peer]: exit 77 when LB_BIN is unset or not built; with
# "peer", also without the test peer (tests/tools/peer, built by make
# check), which it sets as $PEER unless PEER is set.
lab_need_lb() {
	[[ -n ${LB_BIN:-} ]] || lab_skip "LB_BIN is not set"
	[[ -x $LB_BIN ]] || lab_skip "lb binary not found: $LB_BIN"
	[[ ${1:-} == peer ]] || return 0
	PEER=${PEER:-${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/peer}
	[[ -x $PEER ]] || lab_skip "peer not built: $PEER"
}

# lab_need_peer: lab_need_lb peer, under the name tests written before it use.
lab_need_peer() { lab_need_lb peer; }

# ==== Namespaces: the lab itself ====

in_cli() { ip netns exec "$LAB_CLI" "$@"; }

in_gw() { ip netns exec "$LAB_GW" "$@"; }

in_be() { ip netns exec "$LAB_BE" "$@"; }

lab_ns_add() {
	ip netns add "$1" || lab_fail "ip netns add $1"
	LAB_NS+=("$1")
	ip -n "$1" link set lo up
	# Before any link exists, so the veths inherit it: no DAD, addresses are
	# usable (bindable) at once.
	ip netns exec "$1" sysctl -qw net.ipv6.conf.default.accept_dad=0 \
		net.ipv6.conf.all.accept_dad=0
}

# lab_begin: install lab_down as trap and make LAB_DIR. lab_up starts with
# it; a test that wires its own namespaces (lab_ns_add) calls it first.
lab_begin() {
	trap lab_down EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/$LAB_ID.XXXXXX") || lab_fail "mktemp"
	chmod 755 "$LAB_DIR"
}

# lab_up: create and wire the three namespaces. Installs lab_down as trap.
lab_up() {
	lab_begin

	lab_ns_add "$LAB_CLI"
	lab_ns_add "$LAB_GW"
	lab_ns_add "$LAB_BE"

	ip -n "$LAB_CLI" link add c0 type veth peer name g0 netns "$LAB_GW" ||
		lab_fail "veth cli-gw"
	ip -n "$LAB_BE" link add b0 type veth peer name g1 netns "$LAB_GW" ||
		lab_fail "veth be-gw"

	local a
	for a in "${LAB_CLI_IP4[@]}"; do
		ip -n "$LAB_CLI" addr add "$a/24" dev c0
	done
	for a in "${LAB_CLI_IP6[@]}"; do
		ip -n "$LAB_CLI" addr add "$a/64" dev c0 nodad
	done
	ip -n "$LAB_GW" addr add 198.18.0.1/24 dev g0
	ip -n "$LAB_GW" addr add 2001:db8::1/64 dev g0 nodad
	ip -n "$LAB_GW" addr add 198.18.2.1/24 dev g1
	ip -n "$LAB_GW" addr add 2001:db8:2::1/64 dev g1 nodad
	for a in "${LAB_BE_IP4[@]}"; do
		ip -n "$LAB_BE" addr add "$a/24" dev b0
	done
	for a in "${LAB_BE_IP6[@]}"; do
		ip -n "$LAB_BE" addr add "$a/64" dev b0 nodad
	done
	ip -n "$LAB_CLI" link set c0 up
	ip -n "$LAB_GW" link set g0 up
	ip -n "$LAB_GW" link set g1 up
	ip -n "$LAB_BE" link set b0 up

	ip -n "$LAB_CLI" route add default via 198.18.0.1
	ip -n "$LAB_CLI" -6 route add default via 2001:db8::1
	ip -n "$LAB_BE" route add default via 198.18.2.1
	ip -n "$LAB_BE" -6 route add default via 2001:db8:2::1

	# Only the gateway forwards. Queues as long as a worker holds, and
	# IPv6 addresses kept over a link flap, as docs/deploy.md tunes them.
	# rp_filter off: replies for transparent upstream sockets arrive on g1
	# with the client's address as destination and must not be judged by
	# the g0 route.
	in_gw sysctl -qw net.ipv4.ip_forward=1 \
		net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.rp_filter=0 \
		net.ipv4.conf.default.rp_filter=0 \
		net.ipv4.conf.g0.rp_filter=0 \
		net.ipv4.conf.g1.rp_filter=0 \
		net.core.somaxconn=65535 \
		net.ipv4.tcp_max_syn_backlog=65535 \
		net.ipv6.conf.all.keep_addr_on_down=1 || lab_fail "gateway sysctls"

	lab_wait_links || lab_fail "lab links did not come up"
	lab_log "lab up: $LAB_CLI $LAB_GW $LAB_BE (dir $LAB_DIR)"
}

# Until all four veth ends report carrier (it comes up asynchronously).
lab_wait_links() {
	local i
	for ((i = 0; i < 50; i++)); do
		if ip -n "$LAB_CLI" -o link show c0 up | grep -q LOWER_UP &&
			ip -n "$LAB_GW" -o link show g0 up | grep -q LOWER_UP &&
			ip -n "$LAB_GW" -o link show g1 up | grep -q LOWER_UP &&
			ip -n "$LAB_BE" -o link show b0 up | grep -q LOWER_UP; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# lab_cli_addrs_add ADDR...: more addresses on the client namespace's c0
# (IPv4 in 198.18.0.0/24, IPv6 in 2001:db8::/64), for load that needs more
# source addresses than LAB_CLI_IP4/LAB_CLI_IP6. They go with the namespace.
lab_cli_addrs_add() { lab_addrs_add "$LAB_CLI" c0 "$@"; }

# lab_be_addrs_add ADDR...: more addresses on the backend namespace's b0
# (IPv4 in 198.18.2.0/24, IPv6 in 2001:db8:2::/64), for tests that need
# more backends than LAB_BE_IP4/LAB_BE_IP6. They go with the namespace.
lab_be_addrs_add() { lab_addrs_add "$LAB_BE" b0 "$@"; }

# lab_addrs_add NS DEV ADDR...: the addresses on DEV in NS, IPv4 as /24 and
# IPv6 as /64 (without duplicate address detection).
lab_addrs_add() {
	local ns=$1 dev=$2 a
	shift 2
	for a in "$@"; do
		if [[ $a == *:* ]]; then
			ip -n "$ns" addr add "$a/64" dev "$dev" nodad || lab_fail "add $a to $dev"
		else
			ip -n "$ns" addr add "$a/24" dev "$dev" || lab_fail "add $a to $dev"
		fi
	done
}

# lab_down: kill what we started, delete our namespaces and temp dir.
# Idempotent; runs from the EXIT trap.
lab_down() {
	local rc=$? p ns pids i
	set +e
	[[ -n $LAB_DOWN_DONE ]] && return "$rc"
	LAB_DOWN_DONE=1
	trap - EXIT INT TERM
	for p in "${LAB_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${LAB_PIDS[@]}"; do
		for ((i = 0; i < 30; i++)); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# Anything still inside our namespaces (workers, children) was
	# started by this run.
	for ns in "${LAB_NS[@]}"; do
		pids=$(ip netns pids "$ns" 2>/dev/null)
		# shellcheck disable=SC2086 # one pid per word
		[[ -n $pids ]] && kill -KILL $pids 2>/dev/null
	done
	for ns in "${LAB_NS[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	LAB_NS=()
	for p in "${LAB_ON_DOWN[@]}"; do
		eval "$p"
	done
	lab_lb_log_show
	if [[ -n $LAB_DIR && -d $LAB_DIR && -z ${LAB_KEEP:-} ]]; then
		rm -rf "$LAB_DIR"
	fi
	return "$rc"
}

# ==== Processes ====

# lab_bg NS LOG CMD...: run CMD in namespace NS in the background with output
# to LOG; remembers the pid (ip netns exec execs CMD, so it is CMD's pid) in
# LAB_BG_PID and for lab_down.
lab_bg() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" "$@" >"$log" 2>&1 </dev/null &
	LAB_BG_PID=$!
	LAB_PIDS+=("$LAB_BG_PID")
}

# lab_stop PID: SIGTERM a process started with lab_bg and reap it.
lab_stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# lab_wait_port NS ADDR PORT: wait up to 5 s for a TCP listener.
lab_wait_port() {
	local ns=$1 addr=$2 port=$3 i
	for ((i = 0; i < 50; i++)); do
		if ip netns exec "$ns" ss -Hltn "src $addr:$port" 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# lab_wait_grep FILE ERE SECONDS: wait until a line of FILE matches ERE;
# prints the last matching line. Returns 1 after SECONDS (fractions allowed).
lab_wait_grep() {
	local file=$1 re=$2 i n
	n=$(awk -v s="$3" 'BEGIN { printf "%d", s * 20 }')
	for ((i = 0; i <= n; i++)); do
		if grep -Eq -- "$re" "$file" 2>/dev/null; then
			grep -E -- "$re" "$file" | tail -n1
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# ==== Backends: nginx and the test peer ====

# lab_nginx_conf DIR WORKERS CONNECTIONS LISTEN_LINES: write DIR/nginx.conf
# for an nginx answering "backend=<server addr> client=<peer addr>" on the
# listen directives given (one per line, e.g. "listen 198.18.2.2:80;").
lab_nginx_conf() {
	local d=$1 workers=$2 conns=$3 listen=$4
	mkdir -p "$d/tmp" "$d/logs"
	cat >"$d/nginx.conf" <<EOF
# Generated by tests/lab.sh.
daemon off;
master_process on;
worker_processes $workers;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
events { worker_connections $conns; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	keepalive_timeout 5;
	server {
$listen
		default_type text/plain;
		location / {
			return 200 "backend=\$server_addr client=\$remote_addr\n";
		}
	}
}
EOF
}

# lab_nginx_start: nginx in the backend namespace on the four backend
# addresses, port 80, answering "backend=<server addr> client=<peer addr>".
lab_nginx_start() {
	local d=$LAB_DIR/nginx a listen=
	for a in "${LAB_BE_IP4[@]}"; do
		listen+="		listen $a:80;"$'\n'
	done
	for a in "${LAB_BE_IP6[@]}"; do
		listen+="		listen [$a]:80;"$'\n'
	done
	lab_nginx_conf "$d" 2 4096 "${listen%$'\n'}"
	lab_bg "$LAB_BE" "$d/logs/stderr.log" /usr/sbin/nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf"
	for a in "${LAB_BE_IP4[@]}" "[${LAB_BE_IP6[0]}]" "[${LAB_BE_IP6[1]}]"; do
		if ! lab_wait_port "$LAB_BE" "$a" 80; then
			cat "$d/logs/stderr.log" "$d/logs/error.log" >&2 2>/dev/null
			lab_fail "nginx did not listen on $a:80"
		fi
	done
	lab_log "nginx up in $LAB_BE"
}

# lab_nginx_one ADDR PORT: a separate nginx in the backend namespace on
# ADDR:PORT alone (ADDR without brackets), answering like lab_nginx_start,
# so a test can stop and restart one backend. Sets LAB_NGINX_PID; stop it
# with lab_nginx_stop. Restarting on the same ADDR PORT reuses its dir.
lab_nginx_one() {
	local addr=$1 port=$2 d listen
	d=$LAB_DIR/nginx-$addr-$port
	listen=$addr:$port
	[[ $addr == *:* ]] && listen=[$addr]:$port
	lab_nginx_conf "$d" 1 1024 "		listen $listen;"
	lab_bg "$LAB_BE" "$d/logs/stderr.log" /usr/sbin/nginx -p "$d" -e "$d/logs/error.log" -c "$d/nginx.conf"
	LAB_NGINX_PID=$LAB_BG_PID
	if ! lab_wait_port "$LAB_BE" "${listen%:*}" "$port"; then
		cat "$d/logs/stderr.log" "$d/logs/error.log" >&2 2>/dev/null
		lab_fail "nginx did not listen on $listen"
	fi
	lab_log "nginx up on $listen (pid $LAB_NGINX_PID)"
}

# lab_nginx_stop PID ADDR PORT: stop an nginx from lab_nginx_one and wait
# up to 5 s until nothing listens on ADDR:PORT any more.
lab_nginx_stop() {
	local pid=$1 addr=$2 port=$3 i
	[[ $addr == *:* ]] && addr=[$addr]
	lab_stop "$pid"
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$LAB_BE" ss -Hltn "src $addr:$port" 2>/dev/null | grep -q . ||
			return 0
		sleep 0.1
	done
	lab_fail "nginx on $addr:$port did not stop"
}

# lab_peer_start NS LOG MODE [ARG...] ADDR:PORT...: the test peer in MODE
# (echo, serve, sink, rst, early...) in namespace NS, output to LOG, as
# lab_bg starts it (LAB_BG_PID); waits until it listens on each ADDR:PORT
# among its last arguments (IPv6 in brackets), or fails the test with its
# log. The log is kept in LAB_PEER_LOGS for lab_peer_run.
lab_peer_start() {
	local ns=$1 log=$2 mode=$3 pid a i
	lab_bg "$ns" "$log" "$PEER" "${@:3}"
	pid=$LAB_BG_PID
	LAB_PEER_LOGS+=("$log")
	for ((i = $#; i > 3; i--)); do
		a=${!i}
		[[ $a =~ ^(\[[0-9a-f:]+\]|[0-9.]+):[0-9]+$ ]] || break
		lab_wait_port "$ns" "${a%:*}" "${a##*:}" && continue
		sed 's/^/  peer| /' "$log" >&2
		lab_fail "peer $mode did not listen on $a"
	done
	LAB_BG_PID=$pid
}

# lab_peer_run WHAT SRC DST [ARG...]: one run of "peer client -b SRC ARG...
# DST" from the client namespace; logs "checking: WHAT", then "ok: WHAT:"
# with the client's summary, which it leaves in LAB_PEER_OUT. When the
# client fails it shows its errors, the backends' peer logs and lb's log,
# and fails the test.
lab_peer_run() {
	local what=$1 src=$2 dst=$3 l
	shift 3
	lab_log "checking: $what ($src -> $dst${*:+, $*})"
	if LAB_PEER_OUT=$(in_cli "$PEER" client -b "$src" "$@" "$dst" 2>"$LAB_DIR/client.err"); then
		lab_log "ok: $what: $LAB_PEER_OUT"
		return 0
	fi
	lab_log "FAIL: $what: $LAB_PEER_OUT"
	sed 's/^/  client| /' "$LAB_DIR/client.err" >&2
	for l in "${LAB_PEER_LOGS[@]}"; do
		sed 's/^/  peer| /' "$l" >&2
	done
	lab_lb_log
	exit 1
}

# ==== lb: its config, process and control socket ====

# lab_svc NAME PORT: a service NAME on port PORT of both VIPs, with the first
# IPv4 and the first IPv6 backend on PORT, as JSON for lab_config.
lab_svc() {
	printf '{"name": "%s", "vips": ["%s:%s", "[%s]:%s"],
		"backends": [{"address": "%s:%s"}, {"address": "[%s]:%s"}]}' \
		"$1" "$LAB_VIP4" "$2" "$LAB_VIP6" "$2" \
		"${LAB_BE_IP4[0]}" "$2" "${LAB_BE_IP6[0]}" "$2"
}

# lab_config_with TOP SERVICES: write an lb config with the lab's control
# socket (in the lab dir) and intercept blocks, the top-level members TOP
# (e.g. '"workers": 1', may be empty) and the members SERVICES of the
# services array ("-": read from stdin, e.g. a here-document); print its
# path.
lab_config_with() {
	local f services=$2
	[[ $services == - ]] && services=$(cat)
	f=$(mktemp "$LAB_DIR/lb.XXXXXX.json")
	cat >"$f" <<EOF
{
	${1:+$1,}
	"control": {"path": "$LAB_DIR/lb.sock"},
	"intercept": {"port": 50080, "mark": 1, "table": "lb", "route_table": 100},
	"services": [
		$services
	]
}
EOF
	printf '%s\n' "$f"
}

# lab_config [EXTRA_SERVICES_JSON]: write an lb config and print its path:
# docs/examples/lab.json (what the lab runs is what the example shows) with
# the control socket in the lab dir, the lab's intercept block, and its
# service's connect timeout written out (3000 ms, the default). Keys come
# out as '"workers": 2' and '"connect_timeout_ms": 3000', for a test to
# sed. EXTRA_SERVICES_JSON, if given, is appended to the services array,
# e.g. '{"name": "x", ...}'.
lab_config() {
	local example=$LB_SRCDIR/docs/examples/lab.json top services
	top=$(jq -r 'del(.control, .services) | to_entries |
		map("\"\(.key)\": \(.value | tojson)") | join(", ")' "$example") ||
		lab_fail "cannot read $example"
	services=$(jq --tab '.services | map(.connect_timeout_ms = 3000)' "$example" | sed '1d;$d')
	lab_config_with "$top" "$services${1:+,
		$1}"
}

# lab_lb_start CONFIG [ARGS...]: run $LB_BIN -c CONFIG in the gateway
# namespace; wait up to LAB_LB_TIMEOUT (10) s for its "ready" line. Sets
# LAB_LB_PID and LAB_LB_LOG.
lab_lb_start() {
	local cfg=$1 i limit
	shift
	lab_need_lb
	LAB_LB_LOG=$(mktemp "$LAB_DIR/lb.XXXXXX.log")
	lab_bg "$LAB_GW" "$LAB_LB_LOG" "$LB_BIN" -c "$cfg" "$@"
	LAB_LB_PID=$LAB_BG_PID
	limit=$((${LAB_LB_TIMEOUT:-10} * 10))
	for ((i = 0; i < limit; i++)); do
		if grep -qw ready "$LAB_LB_LOG"; then
			lab_log "lb ready (pid $LAB_LB_PID)"
			return 0
		fi
		if ! kill -0 "$LAB_LB_PID" 2>/dev/null; then
			wait "$LAB_LB_PID"
			lab_log "lb exited with status $? before ready; its log:"
			sed 's/^/  | /' "$LAB_LB_LOG" >&2
			LAB_LB_PID=
			lab_fail "lb did not start"
		fi
		sleep 0.1
	done
	lab_log "lb not ready after ${LAB_LB_TIMEOUT:-10} s; its log:"
	sed 's/^/  | /' "$LAB_LB_LOG" >&2
	lab_fail "lb did not become ready"
}

# lab_lb_start_nofile N CONFIG [ARGS...]: lab_lb_start with lb's open-file
# limit set to N:N (prlimit execs, so LAB_LB_PID is lb's own pid).
lab_lb_start_nofile() {
	local n=$1 w real=${LB_BIN:-}
	shift
	lab_need_lb
	w=$LAB_DIR/lb-nofile-$n
	printf '#!/bin/sh\nexec prlimit --nofile=%s:%s %s "$@"\n' "$n" "$n" "$real" >"$w"
	chmod 755 "$w"
	LB_BIN=$w lab_lb_start "$@"
	LB_BIN=$real
}

# lab_lb_stop [SIGNAL]: signal lb (TERM) and wait up to 10 s for it to exit;
# returns its exit status (124 when it did not exit, then it is KILLed).
lab_lb_stop() {
	local sig=${1:-TERM} pid=$LAB_LB_PID i rc
	[[ -n $pid ]] || return 0
	kill "-$sig" "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		LAB_LB_PID=
		return 124
	fi
	wait "$pid"
	rc=$?
	LAB_LB_PID=
	return $rc
}

# lab_lb_log: show lb's log, indented (for failure diagnostics). It is
# shown when the lab goes down, after the verdict: a reader of a truncated
# test log (CI keeps its head) sees why the test failed before the log.
lab_lb_log() {
	[[ -n $LAB_LB_LOG && -f $LAB_LB_LOG ]] || return 0
	LAB_LB_LOG_SHOW=$LAB_LB_LOG
	[[ -z $LAB_DOWN_DONE ]] || lab_lb_log_show
	return 0
}

# lab_lb_log_show: the log lab_lb_log asked for, if any, indented.
lab_lb_log_show() {
	[[ -n $LAB_LB_LOG_SHOW && -f $LAB_LB_LOG_SHOW ]] || return 0
	lab_log "lb's log ($LAB_LB_LOG_SHOW):"
	sed 's/^/  | /' "$LAB_LB_LOG_SHOW" >&2
	LAB_LB_LOG_SHOW=
}

# lab_lb_pids: lb's master and its workers, one pid per line.
lab_lb_pids() {
	[[ -n $LAB_LB_PID ]] || return 1
	echo "$LAB_LB_PID"
	pgrep -P "$LAB_LB_PID"
}

# lab_epoll_stale_once PID...: the epoll registrations of the processes whose
# file descriptor is closed, or open on another file: a registration that
# outlived close() (the file stays open elsewhere, say in another process)
# and still wakes the process. One line each: "PID EPFD TFD INODE".
lab_epoll_stale_once() {
	local pid fd tfd ino have
	for pid in "$@"; do
		for fd in /proc/"$pid"/fd/*; do
			[[ $(readlink "$fd" 2>/dev/null) == "anon_inode:[eventpoll]" ]] || continue
			while read -r tfd ino; do
				have=$(stat -L -c %i "/proc/$pid/fd/$tfd" 2>/dev/null)
				[[ $have == "$((16#$ino))" ]] || echo "$pid ${fd##*/} $tfd $((16#$ino))"
			done < <(awk '$1 == "tfd:" { for (i = 3; i <= NF; i++) if ($i ~ /^ino:/) print $2, substr($i, 5) }' \
				"/proc/$pid/fdinfo/${fd##*/}" 2>/dev/null)
		done
	done
}

# lab_epoll_stale PID...: the stale registrations (lab_epoll_stale_once) seen
# in two looks 0.2 s apart: a descriptor closed between reading the
# registrations and looking at it is not one.
lab_epoll_stale() {
	local first
	first=$(lab_epoll_stale_once "$@" | sort)
	[[ -n $first ]] || return 0
	sleep 0.2
	comm -12 <(echo "$first") <(lab_epoll_stale_once "$@" | sort)
}

# lab_ctl_call REQUEST_JSON: one request on lb's control socket
# ($LAB_DIR/lb.sock, as lab_config sets it); prints the reply line
# ({"ok": true, "data": ...}). Speaks the line protocol directly (socat, else
# python3), so it works whether or not lbctl is built.
lab_ctl_call() {
	local sock=${LAB_CTL_SOCK:-$LAB_DIR/lb.sock}
	if command -v socat >/dev/null 2>&1; then
		printf '%s\n' "$1" | socat -t 2 - "UNIX-CONNECT:$sock"
	else
		python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n"); b = b""
while not b.endswith(b"\n"):
    d = s.recv(65536)
    if not d: break
    b += d
sys.stdout.write(b.decode())' "$sock" "$1"
	fi
}

# lab_gw_leftovers: prints what lb may have left in the gateway namespace
# (processes, nft tables, fwmark rules, routes in table 100, listeners on
# the intercept port), one line each; returns 0 when there is nothing.
lab_gw_leftovers() {
	local out
	out=$(
		ip netns pids "$LAB_GW" 2>/dev/null | while read -r p; do
			printf 'process %s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
		done
		in_gw nft list tables 2>/dev/null | sed 's/^/nft: /'
		in_gw ip -4 rule show 2>/dev/null | grep fwmark | sed 's/^/ip rule: /'
		in_gw ip -6 rule show 2>/dev/null | grep fwmark | sed 's/^/ip -6 rule: /'
		in_gw ip -4 route show table 100 2>/dev/null | sed 's/^/route table 100: /'
		in_gw ip -6 route show table 100 2>/dev/null | sed 's/^/route -6 table 100: /'
		in_gw ss -Htln 'sport = :50080' 2>/dev/null | sed 's/^/listener: /'
	)
	[[ -z $out ]] && return 0
	printf '%s\n' "$out"
	return 1
}

# ==== Clients, load and measurements ====

# lab_curl SRCIP URL: one HTTP request from the client namespace, bound to
# SRCIP, printing the body.
lab_curl() {
	in_cli curl -gsS --fail --max-time 5 --interface "$1" "$2"
}

# lab_load_start URL [SRCIP]: a loop of one-request connections (curl,
# LAB_LOAD_TIMEOUT s timeout each, 1) from the client namespace to URL,
# logging "START_MS ok|fail DURATION_MS" per request to LAB_LOAD_LOG;
# LAB_LOAD_PID is the loop. lab_load_stop ends it; lab_load_report prints
# "N ok, F failed, longest outage O ms, slowest S ms" (O: from the first
# failure of a run of failures to the next success) and returns 1 when any
# request failed.
lab_load_start() {
	local url=$1 src=${2:-${LAB_CLI_IP4[0]}}
	LAB_LOAD_LOG=$(mktemp "$LAB_DIR/load.XXXXXX.log")
	lab_bg "$LAB_CLI" "$LAB_LOAD_LOG" bash -c '
		trap "exit 0" TERM
		while :; do
			t=$(date +%s%3N)
			if curl -gsS -o /dev/null --fail --max-time "$3" --interface "$1" "$2" 2>/dev/null; then
				r=ok
			else
				r=fail
			fi
			echo "$t $r $(($(date +%s%3N) - t))"
		done' load "$src" "$url" "${LAB_LOAD_TIMEOUT:-1}"
	LAB_LOAD_PID=$LAB_BG_PID
}

lab_load_stop() {
	[[ -n ${LAB_LOAD_PID:-} ]] && lab_stop "$LAB_LOAD_PID"
	LAB_LOAD_PID=
}

# lab_load_report [FROM_MS]: counts of LAB_LOAD_LOG (lines at or after FROM_MS).
lab_load_report() {
	awk -v from="${1:-0}" '$1 >= from && NF == 3 {
		if ($2 == "ok") { ok++; if (start) { d = $1 - start; if (d > worst) worst = d; start = 0 } }
		else { bad++; if (!start) start = $1 }
		if ($3 > slow) slow = $3
		last = $1
	} END {
		if (start) { d = last - start; if (d > worst) worst = d }
		printf "%d ok, %d failed, longest outage %d ms, slowest %d ms\n", ok, bad, worst, slow
		exit bad > 0
	}' "$LAB_LOAD_LOG"
}

# lab_mem_kib PID...: "RSS PSS" in KiB summed over the PIDs (from
# /proc/PID/smaps_rollup; PSS charges each shared page to its sharers, so
# summing it over a process tree counts shared pages once). Gone PIDs count 0.
lab_mem_kib() {
	local p rss=0 pss=0 r s
	for p in "$@"; do
		read -r r s < <(awk '/^Rss:/ { r = $2 } /^Pss:/ { s = $2 } END { print r + 0, s + 0 }' \
			"/proc/$p/smaps_rollup" 2>/dev/null) || continue
		rss=$((rss + ${r:-0})) pss=$((pss + ${s:-0}))
	done
	echo "$rss $pss"
}

# lab_sockstat NS [FIELD]: the TCP line of NS's /proc/net/sockstat
# ("inuse N orphan N tw N alloc N mem N"), or one FIELD of it. inuse and tw
# count NS's sockets; orphan, alloc and mem (pages of socket buffers) are
# the host's totals (the kernel keeps those counters for all namespaces).
lab_sockstat() {
	local line
	line=$(ip netns exec "$1" awk '$1 == "TCP:" { $1 = ""; sub(/^ /, ""); print }' /proc/net/sockstat)
	if [[ -n ${2:-} ]]; then
		awk -v f="$2" '{ for (i = 1; i < NF; i += 2) if ($i == f) print $(i + 1) }' <<<"$line"
	else
		echo "$line"
	fi
}

# lab_fd_counts PID: "TOTAL SOCKETS PIPES OTHER" open files of PID (from
# /proc/PID/fd). A worker's sockets are its listeners, its socketpair to the
# master and two per connection; its pipes are the relay pool (idle pipes
# are kept, up to a quarter of the pool); OTHER is stdio, epoll, signalfd.
# Prints nothing and returns 1 when PID is gone.
lab_fd_counts() {
	local l t=0 s=0 p=0 o=0
	[[ -d /proc/$1/fd ]] || return 1
	while read -r l; do
		t=$((t + 1))
		case $l in
		socket:*) s=$((s + 1)) ;;
		pipe:*) p=$((p + 1)) ;;
		*) o=$((o + 1)) ;;
		esac
	done < <(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null)
	echo "$t $s $p $o"
}

# lab_stop_drained PID NS PORT: stop a server started with lab_bg once no
# connection to its PORT in NS is left (up to 5 s): a peer server that exits
# with connections open leaves them to exit(), which a sanitizer build's
# leak check reports.
lab_stop_drained() {
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -z $(ip netns exec "$2" ss -Htn state established "sport = :$3" 2>/dev/null) ]] && break
		sleep 0.1
	done
	lab_stop "$1"
}
