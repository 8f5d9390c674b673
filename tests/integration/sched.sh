#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Schedulers, with 2 workers:
#  - roundrobin honours weights 1 and 3: 80 new connections split 20/60
#    within 10% (smooth weighted round robin per worker is near exact);
#  - leastconn counts connections over all workers: held connections opened
#    one at a time alternate; then with B loaded by connections of one
#    worker only, every new connection goes to the empty A, also those the
#    other worker accepts (per-worker counts or round robin would send one
#    of its two to B); a roundrobin control service shows that rotation
#    alternates regardless;
#  - maglev (hash address): 20 connections from each of 4 clients, spread
#    by the kernel over both workers, all reach one backend per client, and
#    the 4 clients do not all share one backend (4 backends);
#  - random2 spreads 40 requests over both backends.
# Where a connection landed is read on the backend side (ss by local
# address), which worker took it on the gateway (ss -p).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root ss
lab_need_lb peer
lab_up

A=${LAB_BE_IP4[0]}
B=${LAB_BE_IP4[1]}
MG=("$A" "$B" 198.18.2.4 198.18.2.5)
CLI=${LAB_CLI_IP4[0]}
P_RR=81 P_LC=82 P_LCRR=83 P_MG=84 P_R2=85
LC=9200 MGP=9300

lab_be_addrs_add "${MG[@]:2}"
lab_nginx_start
lab_peer_start "$LAB_BE" "$LAB_DIR/echo.log" echo "$A:$LC" "$B:$LC" "${MG[@]/%/:$MGP}"

two() { # NAME PORT SCHED BACKEND_PORT [WEIGHT_A WEIGHT_B]
	printf '{"name": "%s", "vips": ["%s:%s"], "scheduler": "%s", "backends": [
		{"address": "%s:%s", "weight": %s}, {"address": "%s:%s", "weight": %s}]}' \
		"$1" "$LAB_VIP4" "$2" "$3" "$A" "$4" "${5:-1}" "$B" "$4" "${6:-1}"
}
cfg=$(lab_config_with '"workers": 2' - <<JSON
	$(two rr $P_RR roundrobin 80 1 3),
	$(two lc $P_LC leastconn $LC),
	$(two lcrr $P_LCRR roundrobin $LC),
	{"name": "mg", "vips": ["$LAB_VIP4:$P_MG"], "scheduler": "maglev", "hash": "address",
	 "backends": [{"address": "${MG[0]}:$MGP"}, {"address": "${MG[1]}:$MGP"},
		      {"address": "${MG[2]}:$MGP"}, {"address": "${MG[3]}:$MGP"}]},
	$(two r2 $P_R2 random2 80)
JSON
)
lab_lb_start "$cfg"

# split PORT N: N requests from CLI to VIP:PORT in one curl, each on a new
# connection (Connection: close); prints "A_COUNT B_COUNT".
split() {
	local port=$1 n=$2 i out na nb
	local -a urls=()
	for ((i = 0; i < n; i++)); do
		urls+=("http://$LAB_VIP4:$port/")
	done
	out=$(in_cli curl -gsS --fail --max-time 20 -H 'Connection: close' --interface "$CLI" "${urls[@]}") ||
		{ lab_lb_log; lab_fail "requests to port $port failed"; }
	na=$(grep -c "^backend=$A " <<<"$out")
	nb=$(grep -c "^backend=$B " <<<"$out")
	((na + nb == n)) || lab_fail "port $port: $((na + nb)) of $n answers from $A or $B: $(head -n3 <<<"$out")"
	echo "$na $nb"
}

# --- roundrobin, weights 1 and 3 ---
lab_log "checking: roundrobin, weights 1:3, 80 new connections"
read -r na nb <<<"$(split $P_RR 80)"
# Each worker's smooth WRR cycle is b a b b, so over both workers A gets 20
# or 21; 10% of each share is 18..22 for A, 54..66 for B.
((na >= 18 && na <= 22 && nb >= 54 && nb <= 66)) ||
	{ lab_lb_log; lab_fail "roundrobin 1:3: $A got $na, $B got $nb of 80; want 20 +-2 and 60 +-6"; }
lab_log "ok: roundrobin 1:3: $A (weight 1) $na, $B (weight 3) $nb of 80"

# --- helpers for held connections ---
# Per held connection, by client port: its hold pid, backend and worker.
declare -A H_PID=() H_BE=() H_WK=()

# hold_one PORT: one connection from CLI to VIP:PORT, held open after one
# echoed byte (so lb has connected it to a backend); sets HP to its client
# port and records its backend (from the backend's side) and worker.
hold_one() {
	local vport=$1 log pid
	log=$(mktemp "$LAB_DIR/hold.XXXXXX")
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b "$CLI" -n 1 -e "$LAB_VIP4:$vport"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' 1 answered' 3 >/dev/null ||
		{ cat "$log" >&2; lab_lb_log; lab_fail "a held connection to port $vport was not echoed"; }
	HP=$(in_cli ss -Htnp state established "dst $LAB_VIP4:$vport" |
		awk -v p="pid=$pid," 'index($0, p) { n = split($3, a, ":"); print a[n] }')
	[[ $HP =~ ^[0-9]+$ ]] || lab_fail "cannot find the client port of hold pid $pid"
	H_PID[$HP]=$pid
	H_BE[$HP]=$(in_be ss -Htn state established "dst $CLI:$HP" |
		awk '{ n = split($3, a, ":"); print a[1] }')
	H_WK[$HP]=$(in_gw ss -Htnp state established "src $LAB_VIP4:$vport" "dst $CLI:$HP" |
		grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u)
	[[ ${H_BE[$HP]} == "$A" || ${H_BE[$HP]} == "$B" ]] ||
		lab_fail "port $vport, client port $HP: backend side shows '${H_BE[$HP]}' (was the client port kept?)"
	[[ ${H_WK[$HP]} =~ ^[0-9]+$ ]] ||
		lab_fail "port $vport, client port $HP: no single worker owns it on the gateway: '${H_WK[$HP]}'"
}

# drop PORT...: close held connections and wait until lb has ended them
# (neither of its sockets for the client port is still open), so the
# backends' active counts are down again.
drop() {
	local p i
	for p in "$@"; do
		lab_stop "${H_PID[$p]}"
	done
	for p in "$@"; do
		for ((i = 0; i < 60; i++)); do
			[[ -z $(in_gw ss -Htn state established state close-wait "dst $CLI:$p") &&
				-z $(in_gw ss -Htn state established state close-wait "src $CLI:$p") ]] && break
			sleep 0.05
		done
		((i < 60)) || lab_fail "lb still holds the connection from client port $p 3 s after it closed"
		unset "H_PID[$p]" "H_BE[$p]" "H_WK[$p]"
	done
}

# --- leastconn ---
lab_log "checking: leastconn: 10 held connections opened one at a time alternate"
na=0 nb=0
declare -a lc_ports=()
for ((i = 0; i < 10; i++)); do
	hold_one $P_LC
	be=${H_BE[$HP]}
	if { ((na < nb)) && [[ $be != "$A" ]]; } || { ((nb < na)) && [[ $be != "$B" ]]; }; then
		lab_lb_log
		lab_fail "leastconn: with $na on $A and $nb on $B, connection $i (worker ${H_WK[$HP]}) went to $be"
	fi
	[[ $be == "$A" ]] && na=$((na + 1)) || nb=$((nb + 1))
	lc_ports+=("$HP")
done
((na == 5 && nb == 5)) || lab_fail "leastconn: 10 held connections went $na to $A, $nb to $B"
declare -A on_b_by_wk=()
workers=
for p in "${lc_ports[@]}"; do
	workers+=" ${H_WK[$p]}"
	[[ ${H_BE[$p]} == "$B" ]] && on_b_by_wk[${H_WK[$p]}]+=" $p"
done
lab_log "ok: leastconn: 10 held connections, 5 on $A and 5 on $B (by worker:$(tr ' ' '\n' <<<"$workers" | sed '/^$/d' | sort | uniq -c | awk '{ printf " %s x%s", $2, $1 }'))"

# Keep on B only the connections of the worker W that has most of them
# (at least 3 of 5), close everything else: A has 0, B has m >= 3, all in W.
W="" m=0
for wk in "${!on_b_by_wk[@]}"; do
	read -ra ps <<<"${on_b_by_wk[$wk]}"
	((${#ps[@]} > m)) && W=$wk m=${#ps[@]}
done
drop_ports=()
for p in "${lc_ports[@]}"; do
	[[ ${H_BE[$p]} == "$B" && ${H_WK[$p]} == "$W" ]] || drop_ports+=("$p")
done
drop "${drop_ports[@]}"
lab_log "checking: leastconn: $A empty, $B holds $m connections all of worker $W; new connections go to $A whichever worker takes them"
# Connections the other worker takes are kept: a second one there still
# goes to A only if that worker sees W's connections on B. Those W takes
# go to A too and are closed again, so A stays below m.
k=0
for ((i = 0; i < 24 && k < 2; i++)); do
	hold_one $P_LC
	[[ ${H_BE[$HP]} == "$A" ]] || {
		lab_lb_log
		lab_fail "leastconn: $A held $k, $B held $m (all of worker $W), yet worker ${H_WK[$HP]} sent a new connection to $B"
	}
	if [[ ${H_WK[$HP]} == "$W" ]]; then
		drop "$HP"
	else
		k=$((k + 1))
	fi
done
((k == 2)) || lab_fail "leastconn: 24 new connections and the kernel gave worker $W all but $k (cannot test)"
lab_log "ok: leastconn: both connections the other worker took went to $A (counts shared over workers)"
drop "${!H_PID[@]}"

# Control: round robin alternates within a worker whatever the load, so the
# assertion above would fail with it.
lab_log "checking: control: roundrobin sends two connections of one worker to both backends"
declare -A rr_first=()
done_rr=
for ((i = 0; i < 10; i++)); do
	hold_one $P_LCRR
	wk=${H_WK[$HP]}
	if [[ -n ${rr_first[$wk]:-} ]]; then
		[[ ${rr_first[$wk]} != "${H_BE[$HP]}" ]] ||
			lab_fail "control: roundrobin worker $wk sent two consecutive connections to ${H_BE[$HP]}"
		done_rr=1
		break
	fi
	rr_first[$wk]=${H_BE[$HP]}
done
[[ -n $done_rr ]] || lab_fail "control: no worker took two of 10 connections"
lab_log "ok: control: roundrobin worker $wk: ${rr_first[$wk]} then ${H_BE[$HP]}"
drop "${!H_PID[@]}"

# --- maglev ---
lab_log "checking: maglev (hash address): 20 connections from each of 4 clients stay on one backend"
declare -A mg_of=()
for src in "${LAB_CLI_IP4[@]}"; do
	log=$LAB_DIR/mg-$src.log
	lab_bg "$LAB_CLI" "$log" "$PEER" hold -b "$src" -n 20 -e "$LAB_VIP4:$P_MG"
	pid=$LAB_BG_PID
	lab_wait_grep "$log" ' 20 answered' 5 >/dev/null ||
		{ cat "$log" >&2; lab_lb_log; lab_fail "maglev: 20 held connections from $src not all echoed"; }
	bes=$(in_be ss -Htn state established "sport = :$MGP" "dst $src" |
		awk '{ n = split($3, a, ":"); print a[1] }' | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
	wks=$(in_gw ss -Htnp state established "src $LAB_VIP4:$P_MG" "dst $src" |
		grep -o 'pid=[0-9]*' | cut -d= -f2 | sort | uniq -c | awk '{ printf "%s x%s ", $2, $1 }')
	read -ra bl <<<"$bes"
	((${#bl[@]} == 1)) && [[ ${bl[0]} == *=20 ]] ||
		{ lab_lb_log; lab_fail "maglev: client $src's 20 connections reached: $bes"; }
	(($(wc -w <<<"$wks") == 4)) ||
		lab_fail "maglev: client $src's 20 connections were taken by workers: $wks (want both)"
	mg_of[$src]=${bl[0]%=*}
	lab_log "ok: maglev: $src -> ${mg_of[$src]} (20 of 20), accepted by workers ${wks% }"
	lab_stop "$pid"
done
distinct=$(printf '%s\n' "${mg_of[@]}" | sort -u | wc -l)
((distinct > 1)) || lab_fail "maglev: all 4 clients map to ${mg_of[$CLI]}"
lab_log "ok: maglev: the 4 clients map to $distinct different backends"

# --- random2 ---
lab_log "checking: random2 spreads 40 requests over both backends"
read -r na nb <<<"$(split $P_R2 40)"
# Short requests leave both at 0 active, so each pick is a fair coin:
# fewer than 8 of 40 on one side has a chance of about 1e-5.
((na >= 8 && nb >= 8)) || { lab_lb_log; lab_fail "random2: 40 requests went $na to $A, $nb to $B"; }
lab_log "ok: random2: $na to $A, $nb to $B"

lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
