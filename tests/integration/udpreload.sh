#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Reloads lose no datagram of an existing UDP flow (issue 16): a flow's
# sockets stay with the generation that opened it, new flows go to the new
# one.
#  - iperf3 -u at 8 Mbit/s (1,000 datagrams/s) through a tcp+udp service for
#    10 s while lb reloads 20 times; its loss must be no higher than the same
#    run routed straight to the backend, in the same test, not counting what
#    the backend's kernel dropped because iperf3 (starved of CPU on a busy
#    box) did not read its queue in time, nor what lb's own full queues
#    dropped for the same reason, as long as that stays under 2% (a worker
#    that stopped reading a flow at a reload would drop most of it);
#  - a loop of DNS queries (kdig, no retries) across the same reloads gets
#    every answer;
#  - the draining workers no longer watch the listeners they closed (their
#    epoll registrations outlived close(): the sockets stay open in the
#    master, and every datagram woke the old worker to read a closed fd).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root kdig dnsmasq iperf3 jq
lab_need_lb
lab_up

BE=${LAB_BE_IP4[0]}
lab_bg "$LAB_BE" "$LAB_DIR/iperf.log" iperf3 -s -B "$BE" -p 5201
lab_bg "$LAB_BE" "$LAB_DIR/dns.log" dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
	--user=root --pid-file="$LAB_DIR/dns.pid" --listen-address="$BE" --port=53 \
	--address=/test.lb/198.18.9.1
lab_wait_port "$LAB_BE" "$BE" 5201 || lab_fail "iperf3 not up"
lab_wait_port "$LAB_BE" "$BE" 53 || lab_fail "dnsmasq not up"

cfg=$(lab_config_with '"workers": 2, "drain_timeout_ms": 60000' '{
	"name": "iperf", "protocol": "tcp+udp", "udp_idle_timeout_ms": 2000,
	"vips": ["'"$LAB_VIP4"':5201"],
	"backends": [{"address": "'"$BE"':5201"}]
}, {
	"name": "dns", "protocol": "udp", "udp_responses": 1, "vips": ["'"$LAB_VIP4"':53"],
	"backends": [{"address": "'"$BE"':53"}]
}')
lab_lb_start "$cfg"

# iperf3 -u for SECONDS to TARGET from SRC; prints "LOST TOTAL" of the receiver.
iperf_udp() {
	local log=$LAB_DIR/iperf-$1.log
	in_cli timeout 30 iperf3 -c "$2" -p 5201 -B "$3" -u -b 8M -l 1000 -t "$4" -J >"$log" 2>&1 ||
		{ cat "$log" >&2; lab_fail "iperf3 -u to $2 failed"; }
	jq -r '.end.sum | "\(.lost_packets) \(.packets)"' "$log"
}

# Datagrams the backend's kernel dropped because iperf3 did not read them in
# time (its socket queue full): lost after the path, whoever carried them.
be_drops() { in_be awk '/^Udp: [0-9]/ { print $6 }' /proc/net/snmp; }
d0=$(be_drops)
read -r r_lost r_total < <(iperf_udp routed "$BE" "${LAB_CLI_IP4[1]}" 10)
r_late=$(($(be_drops) - d0))
lab_log "routed straight to $BE: $r_lost of $r_total datagrams lost ($r_late dropped by the backend's full socket queue)"

# DNS queries in a loop during the reloads: one line per query, "ok" or "fail".
lab_bg "$LAB_CLI" "$LAB_DIR/dnsloop.log" bash -c '
	trap "exit 0" TERM
	while :; do
		if [[ $(kdig +short +timeout=2 +retry=0 -b "$1" @"$2" test.lb A) == 198.18.9.1 ]]; then
			echo ok
		else
			echo fail
		fi
	done' dnsloop "${LAB_CLI_IP4[2]}" "$LAB_VIP4"
DNS=$LAB_BG_PID
# Datagrams the gateway's kernel dropped because a socket queue was full:
# lb's flow sockets hold about 100 ms of this load, so a worker starved of
# CPU for longer (a box busy with other work) loses some.
gw_drops() { in_gw awk '/^Udp: [0-9]/ { print $6 }' /proc/net/snmp; }
g0=$(gw_drops) d0=$(be_drops)
( iperf_udp lb "$LAB_VIP4" "${LAB_CLI_IP4[0]}" 10 >"$LAB_DIR/lb-result" ) &
IPERF=$!
sleep 0.5
for ((i = 0; i < 20; i++)); do
	kill -HUP "$LAB_LB_PID"
	sleep 0.4
done
# The old workers carrying the iperf3 flow no longer watch the listeners
# they closed (the new generation's workers read them now).
# shellcheck disable=SC2046
stale=$(lab_epoll_stale $(lab_lb_pids))
[[ -z $stale ]] || lab_fail "epoll registrations that outlived their descriptor (pid epfd fd inode): $stale"
wait "$IPERF" || lab_fail "iperf3 through lb failed"
read -r l_lost l_total <"$LAB_DIR/lb-result"
l_late=$(($(be_drops) - d0)) l_starved=$(($(gw_drops) - g0))
lab_stop "$DNS"
gen=$(lab_ctl_call '{"cmd": "status"}' | jq .data.generation)
((gen == 21)) || lab_fail "generation $gen after 20 reloads, want 21"
ok=$(grep -c '^ok$' "$LAB_DIR/dnsloop.log") fail=$(grep -c '^fail$' "$LAB_DIR/dnsloop.log")
lab_log "through lb across 20 reloads: $l_lost of $l_total datagrams lost ($l_late dropped by the backend's full socket queue); DNS: $ok answered, $fail not"
lab_log "the gateway's full socket queues dropped $l_starved; lb's own drops: $(lab_ctl_call '{"cmd": "services"}' | jq -c '[.data[] | {(.name): .udp.dropped}] | add')"
((l_total > 5000)) || lab_fail "iperf3 through lb sent only $l_total datagrams"
# On the path: what the backend's own socket queue dropped is no path's
# doing; what lb's queues dropped while the box starved its workers is
# forgiven up to 2% (a worker that stopped reading a flow at a reload would
# drop most of it there).
((l_starved * 50 <= l_total)) ||
	lab_fail "lb's socket queues dropped $l_starved of $l_total datagrams: a worker stopped reading its flow"
((l_lost - l_late - l_starved <= r_lost - r_late)) ||
	lab_fail "lb lost $((l_lost - l_late - l_starved)) datagrams on the path across reloads (besides $l_starved in full queues), routing lost $((r_lost - r_late))"
((ok > 20 && fail == 0)) || lab_fail "DNS across reloads: $ok answered, $fail not"
lab_log "ok: no more loss on the path than routing ($((l_lost - l_late - l_starved)) <= $((r_lost - r_late)), and $l_starved in full queues), every DNS query answered"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
