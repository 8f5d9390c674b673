#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A real Prometheus (Debian's) scrapes lb's /metrics every second, in the
# gateway namespace over loopback, and the test asks Prometheus's HTTP API:
#  - the target is up and its samples parse (Prometheus rejects a bad
#    exposition: the scrape would be "down");
#  - rate() of the backend's connection counter over 8 s matches the load
#    the test generated in that same window (counted by the client), ±10%;
#  - the backend's connect-time histogram gives a p50 through
#    histogram_quantile() (the buckets are usable as Prometheus buckets);
#  - after lbctl drain, the backend's admin state series changes: it was 1
#    for state="up" and becomes 1 for state="drain".
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root curl jq prometheus
lab_need_lb
lab_up
lab_nginx_start

LBCTL=${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl
BE=${LAB_BE_IP4[0]}:80
WINDOW=8
cfg=$(lab_config_with '"workers": 2, "http": {"listen": "127.0.0.1:9180"}' '{
		"name": "web",
		"vips": ["198.18.100.1:80"],
		"backends": [{"address": "'"$BE"'"}]
	}')
lab_lb_start "$cfg"

mkdir -p "$LAB_DIR/prom"
cat >"$LAB_DIR/prom/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: lb
    static_configs:
      - targets: ['127.0.0.1:9180']
EOF
lab_bg "$LAB_GW" "$LAB_DIR/prom/log" prometheus --config.file="$LAB_DIR/prom/prometheus.yml" \
	--storage.tsdb.path="$LAB_DIR/prom/data" --web.listen-address=127.0.0.1:9090 \
	--web.enable-lifecycle
PROM=$LAB_BG_PID

# q QUERY [TIME]: the result vector of an instant query, as JSON.
q() {
	in_gw curl -gsS --max-time 5 http://127.0.0.1:9090/api/v1/query --data-urlencode "query=$1" \
		${2:+--data-urlencode "time=$2"} | jq -c '.data.result'
}
# value QUERY [TIME]: the first sample's value, or empty.
value() { q "$@" | jq -r '.[0].value[1] // empty'; }

for ((i = 0; i < 300; i++)); do
	[[ $(value 'up{job="lb"}' 2>/dev/null) == 1 ]] && break
	kill -0 "$PROM" 2>/dev/null || { cat "$LAB_DIR/prom/log" >&2; lab_fail "prometheus exited"; }
	sleep 0.1
done
((i < 300)) || { tail -20 "$LAB_DIR/prom/log" >&2; q 'up' >&2; lab_fail "prometheus did not find lb's /metrics up within 30 s"; }
lab_log "ok: prometheus scrapes lb (up 1 after $((i / 10)) s)"

lab_log "checking: rate() over ${WINDOW} s matches the generated load ±10%"
LAB_LOAD_TIMEOUT=2 lab_load_start http://198.18.100.1/
sleep $((WINDOW + 4))
t_end=$(($(lab_now_ms) - 1500))
sleep 2.5
lab_load_stop
lab_load_report >/dev/null || lab_fail "the load failed: $(lab_load_report)"
# What the client made in (t_end - WINDOW, t_end]: each request is one connection to the one backend.
made=$(awk -v a=$((t_end - WINDOW * 1000)) -v b="$t_end" '$2 == "ok" && $1 > a && $1 <= b { n++ } END { print n + 0 }' "$LAB_LOAD_LOG")
want=$(awk -v n="$made" -v w="$WINDOW" 'BEGIN { printf "%.2f", n / w }')
got=$(value "rate(lb_backend_connections_total{backend=\"$BE\"}[${WINDOW}s])" "$(awk -v t="$t_end" 'BEGIN { printf "%.3f", t / 1000 }')")
[[ -n $got ]] || lab_fail "no rate() from prometheus"
awk -v g="$got" -v w="$want" 'BEGIN { exit !(w > 5 && g >= w * 0.9 && g <= w * 1.1) }' ||
	lab_fail "rate() $got/s, the client made $made connections in ${WINDOW} s ($want/s); want within 10%"
lab_log "ok: rate() $(printf '%.2f' "$got")/s, generated $want/s ($made connections in ${WINDOW} s)"
p50=$(value "histogram_quantile(0.5, rate(lb_backend_connect_seconds_bucket{backend=\"$BE\"}[${WINDOW}s]))")
awk -v p="$p50" 'BEGIN { exit !(p > 0 && p < 1) }' || lab_fail "connect time p50 from histogram_quantile: '$p50'"
lab_log "ok: connect time p50 from histogram_quantile(): $p50 s"

lab_log "checking: a drained backend's state series changes"
sel="backend=\"$BE\""
[[ $(value "lb_backend_admin_state{$sel,state=\"up\"}") == 1 && $(value "lb_backend_admin_state{$sel,state=\"drain\"}") == 0 ]] ||
	lab_fail "before drain: $(q "lb_backend_admin_state{$sel}")"
"$LBCTL" -s "$LAB_DIR/lb.sock" drain web "$BE" >/dev/null || lab_fail "lbctl drain"
for ((i = 0; i < 50; i++)); do
	[[ $(value "lb_backend_admin_state{$sel,state=\"drain\"}") == 1 ]] && break
	sleep 0.1
done
((i < 50)) || lab_fail "prometheus does not see the drain after 5 s: $(q "lb_backend_admin_state{$sel}")"
[[ $(value "lb_backend_admin_state{$sel,state=\"up\"}") == 0 && $(value "lb_backend_usable{$sel}") == 0 ]] ||
	lab_fail "after drain: $(q "lb_backend_admin_state{$sel}") usable $(q "lb_backend_usable{$sel}")"
changes=$(value "changes(lb_backend_admin_state{$sel,state=\"drain\"}[1m])")
[[ $changes == 1 ]] || lab_fail "changes() of the drain series: '$changes', want 1"
lab_log "ok: state=\"drain\" went 0 -> 1 in prometheus $((i / 10)).$((i % 10)) s after lbctl drain (changes() = 1)"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
