#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# UDP through TPROXY with real peers (issue 16): the backend sees the
# client's own ip:port, with no header.
#  - DNS: kdig (knot-dnsutils) from a fixed source ip:port against two
#    dnsmasq backends through a VIP, IPv4 and IPv6; dnsmasq's
#    --log-queries=extra shows the client's address and port, and the test
#    asserts them. udp_responses 1 ends each flow with its answer.
#  - HTTP/3: gtlsclient -> gtlsserver (ngtcp2) through VIP:443, one VIP:port
#    carrying TCP (nginx) for one service and UDP (QUIC) for another; the
#    downloaded file's checksum must match (gtlsclient exits 0 even on a
#    handshake timeout), and the server's log shows the client's address.
#  - iperf3 -u through a tcp+udp service with roundrobin over two
#    servers: its TCP control connection and UDP stream must meet on one
#    (affinity), five runs in a row.
#  - the control socket and metrics count flows and datagrams.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root kdig dnsmasq gtlsclient gtlsserver iperf3 openssl jq
lab_need_lb
lab_up
lab_nginx_start

BE4=("${LAB_BE_IP4[@]}") BE6=("${LAB_BE_IP6[@]}")

# DNS: one dnsmasq per backend address (both families), answering with its own address.
for i in 0 1; do
	lab_bg "$LAB_BE" "$LAB_DIR/dns$i.log" dnsmasq --no-daemon --log-queries=extra \
		--log-facility=- --no-resolv --no-hosts --bind-interfaces --user=root \
		--pid-file="$LAB_DIR/dns$i.pid" \
		--listen-address="${BE4[i]}" --listen-address="${BE6[i]}" --port=53 \
		--address="/test.lb/198.18.9.$((i + 1))"
done
# HTTP/3: one gtlsserver per IPv4 backend on 4433, serving a 1 MiB file.
mkdir -p "$LAB_DIR/htdocs" "$LAB_DIR/dl"
head -c 1048576 /dev/urandom >"$LAB_DIR/htdocs/blob"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=lb-test \
	-keyout "$LAB_DIR/key.pem" -out "$LAB_DIR/cert.pem" 2>/dev/null || lab_fail "openssl req"
for i in 0 1; do
	lab_bg "$LAB_BE" "$LAB_DIR/h3-$i.log" gtlsserver --no-quic-dump --no-http-dump \
		-d "$LAB_DIR/htdocs" "${BE4[i]}" 4433 "$LAB_DIR/key.pem" "$LAB_DIR/cert.pem"
done
# iperf3: one server per IPv4 backend.
for i in 0 1; do
	lab_bg "$LAB_BE" "$LAB_DIR/iperf$i.log" iperf3 -s -B "${BE4[i]}" -p 5201
done
for i in 0 1; do
	lab_wait_port "$LAB_BE" "${BE4[i]}" 53 || lab_fail "dnsmasq not up on ${BE4[i]}"
	lab_wait_port "$LAB_BE" "${BE4[i]}" 5201 || lab_fail "iperf3 not up on ${BE4[i]}"
done

cfg=$(lab_config_with '"workers": 2' '{
	"name": "web", "vips": ["'"$LAB_VIP4"':443"],
	"backends": [{"address": "'"${BE4[0]}"':80"}]
}, {
	"name": "dns", "protocol": "udp", "udp_responses": 1,
	"vips": ["'"$LAB_VIP4"':53", "['"$LAB_VIP6"']:53"],
	"backends": [{"address": "'"${BE4[0]}"':53"}, {"address": "'"${BE4[1]}"':53"},
		     {"address": "['"${BE6[0]}"']:53"}, {"address": "['"${BE6[1]}"']:53"}]
}, {
	"name": "h3", "protocol": "udp", "vips": ["'"$LAB_VIP4"':443"],
	"backends": [{"address": "'"${BE4[0]}"':4433"}, {"address": "'"${BE4[1]}"':4433"}]
}, {
	"name": "iperf", "protocol": "tcp+udp", "vips": ["'"$LAB_VIP4"':5201"],
	"backends": [{"address": "'"${BE4[0]}"':5201"}, {"address": "'"${BE4[1]}"':5201"}]
}')
lab_lb_start "$cfg"
stats() { lab_ctl_call '{"cmd": "services"}' | jq -c ".data[] | select(.name == \"$1\") | .udp"; }

lab_log "checking: DNS through the VIP, the backend sees the client's ip:port (IPv4 and IPv6)"
dns_query() {	# SRC PORT VIP: one query from SRC:PORT, prints the answer
	in_cli kdig +short +timeout=2 +retry=0 -b "$1#$2" @"$3" test.lb A
}
seen=0
for i in 0 1 2 3; do
	src=${LAB_CLI_IP4[i]} port=$((41000 + i))
	ans=$(dns_query "$src" "$port" "$LAB_VIP4") || lab_fail "kdig from $src:$port failed"
	[[ $ans == 198.18.9.[12] ]] || lab_fail "DNS answer '$ans' from $src:$port"
	grep -hq " $src/$port query\[A\] test.lb from $src\$" "$LAB_DIR"/dns[01].log ||
		{ cat "$LAB_DIR"/dns[01].log >&2; lab_fail "no dnsmasq saw the query from $src/$port"; }
	seen=$((seen + 1))
done
lab_log "ok: $seen IPv4 queries answered; dnsmasq logged each client's own address and port"
src6=${LAB_CLI_IP6[1]}
ans=$(dns_query "$src6" 41234 "$LAB_VIP6") || lab_fail "kdig over IPv6 failed"
[[ $ans == 198.18.9.[12] ]] || lab_fail "IPv6 DNS answer '$ans'"
grep -hq " $src6/41234 query\[A\] test.lb from $src6\$" "$LAB_DIR"/dns[01].log ||
	{ cat "$LAB_DIR"/dns[01].log >&2; lab_fail "no dnsmasq saw the IPv6 query from $src6/41234"; }
lab_log "ok: IPv6 query answered, dnsmasq saw $src6/41234"
# udp_responses 1: each flow ended with its answer.
sleep 0.2
s=$(stats dns)
[[ $(jq .flows <<<"$s") == 0 && $(jq .flows_total <<<"$s") == 5 ]] ||
	lab_fail "dns flows after 5 answered queries: $s (want 0 open, 5 in all)"
[[ $(jq .datagrams_in <<<"$s") == 5 && $(jq .datagrams_out <<<"$s") == 5 ]] ||
	lab_fail "dns datagrams: $s"
lab_log "ok: every flow ended with its one response: $s"

lab_log "checking: HTTP/3 (QUIC) download through VIP:443/udp while VIP:443/tcp goes to nginx"
body=$(lab_curl "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4:443/") || lab_fail "TCP to VIP:443 failed"
[[ $body == *"backend=${BE4[0]} client=${LAB_CLI_IP4[0]}"* ]] || lab_fail "TCP 443 answer: $body"
want=$(sha256sum <"$LAB_DIR/htdocs/blob" | cut -d' ' -f1)
# gtlsclient has no source address option: it connects from c0's first one.
src=${LAB_CLI_IP4[0]}
for i in 0 1 2; do
	rm -f "$LAB_DIR/dl/blob"
	in_cli timeout 20 gtlsclient -q --exit-on-all-streams-close --download="$LAB_DIR/dl" \
		--timeout=10s "$LAB_VIP4" 443 "https://$LAB_VIP4:443/blob" >"$LAB_DIR/h3c-$i.log" 2>&1
	got=$(sha256sum <"$LAB_DIR/dl/blob" 2>/dev/null | cut -d' ' -f1)
	[[ $got == "$want" ]] || { tail -n 20 "$LAB_DIR/h3c-$i.log" >&2; lab_lb_log; lab_fail "HTTP/3 download $i: checksum '$got', want $want"; }
	grep -hqE "remote=\\[?$src\\]?:[0-9]+" "$LAB_DIR"/h3-[01].log ||
		lab_fail "no gtlsserver logged remote=$src"
done
lab_log "ok: three 1 MiB HTTP/3 downloads byte-exact; the servers saw the clients' addresses"
s=$(stats h3)
(($(jq .datagrams_in <<<"$s") > 0 && $(jq .datagrams_out <<<"$s") > 700)) || lab_fail "h3 counters: $s"
lab_log "ok: h3 counters $s"

lab_log "checking: iperf3 -u, TCP control and UDP stream on one server (tcp+udp, roundrobin)"
for run in 1 2 3 4 5; do
	src=${LAB_CLI_IP4[run % 4]}
	in_cli timeout 15 iperf3 -c "$LAB_VIP4" -p 5201 -B "$src" -u -b 2M -t 1 -l 1000 \
		>"$LAB_DIR/iperf-run$run.log" 2>&1 ||
		{ cat "$LAB_DIR/iperf-run$run.log" >&2; lab_lb_log; lab_fail "iperf3 -u run $run from $src failed"; }
done
n=$(grep -h "Accepted connection from" "$LAB_DIR"/iperf[01].log | wc -l)
((n >= 5)) || lab_fail "iperf3 servers accepted $n control connections, want 5"
lab_log "ok: five iperf3 -u runs completed ($n control connections over both servers)"
m=$(lab_ctl_call '{"cmd": "metrics"}' | jq -r .data)
grep -q '^lb_service_udp_flows_total{service="iperf"} [1-9]' <<<"$m" || lab_fail "no udp flows metric for iperf"
grep -q '^lb_service_udp_datagrams_total{service="dns",direction="out"} 5$' <<<"$m" ||
	lab_fail "metrics: dns datagrams out"
lab_log "ok: metrics carry the UDP series"

lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
