#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Configs that can never work are refused, suspicious ones are warned
# about, each naming the JSON path, by lb -t, at start and on reload:
#  - lb -t exits 1 for a backend equal to one of lb's VIPs, to the
#    intercept listener or to the gateway's own address (the last found
#    only on the host: it is g1's address in the gateway namespace), and
#    for a VIP 0.0.0.0; it exits 0 and prints a warning for a service whose
#    weights are all 0;
#  - lb started with the gateway's own address as a backend exits 1 with
#    the message and installs nothing;
#  - under a request loop, reloads with the gateway's own address and with
#    a VIP as a backend are refused ("reload failed", the message in the
#    log and in status), the generation stays, no request fails; a reload
#    with all weights 0 in a second service applies and logs the warning.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root jq
lab_need_lb
lab_up
lab_nginx_start

good=$(lab_config)
# variant FILE SED_EXPR [EXTRA_SERVICE]: a copy of the lab config, edited.
variant() {
	local f=$LAB_DIR/$1.json
	lab_config "${3:-}" >"$LAB_DIR/path.tmp"
	sed -e "$2" "$(cat "$LAB_DIR/path.tmp")" >"$f"
	echo "$f"
}
own=$(variant own 's/"198.18.2.3:80"/"198.18.2.1:80"/')
vipbe=$(variant vipbe 's/"198.18.2.3:80"/"198.18.100.1:80"/')
intercept=$(variant intercept 's/"198.18.2.3:80"/"127.0.0.1:50080"/')
vip0=$(variant vip0 's/"198.18.100.1:80"/"0.0.0.0:80"/')
zero=$(variant zero '' '{"name": "zero", "vips": ["198.18.100.2:80"], "backends": [{"address": "198.18.2.2:80", "weight": 0}, {"address": "198.18.2.3:80", "weight": 0}]}')

# test_t FILE WANT_RC ERE: lb -t in the gateway namespace.
test_t() {
	local out rc
	out=$(in_gw "$LB_BIN" -t -c "$1" 2>&1 >/dev/null)
	rc=$?
	((rc == $2)) || lab_fail "lb -t $(basename "$1"): exit $rc, want $2: $out"
	grep -Eq -- "$3" <<<"$out" || lab_fail "lb -t $(basename "$1") does not say /$3/: $out"
	lab_log "ok: lb -t $(basename "$1"): exit $rc: $(grep -E -- "$3" <<<"$out" | head -n1)"
}
test_t "$vipbe" 1 'services\[0\]\.backends\[1\]\.address: 198\.18\.100\.1:80 is a VIP of service "web" \(services\[0\]\.vips\[0\]\)'
test_t "$intercept" 1 'services\[0\]\.backends\[1\]\.address: 127\.0\.0\.1:50080 is lb.s own intercept listener'
test_t "$own" 1 'services\[0\]\.backends\[1\]\.address: 198\.18\.2\.1:80 is an address of this gateway \(interface g1\)'
test_t "$vip0" 1 'services\[0\]\.vips\[0\]: 0\.0\.0\.0:80 is the unspecified address'
test_t "$zero" 0 'warning: services\[1\]\.backends: every backend has weight 0'
test_t "$good" 0 'configuration ok'
out=$(in_gw "$LB_BIN" -t -c "$good" 2>&1 >/dev/null)
grep -q 'warning' <<<"$out" && lab_fail "lb -t warns about the lab config: $out"

# --- lb refuses to start with what lb -t refuses ---
out=$(in_gw timeout 10 "$LB_BIN" -c "$own" 2>&1)
rc=$?
((rc == 1)) || lab_fail "lb with the gateway's own address as a backend exited $rc, want 1: $out"
grep -q 'services\[0\]\.backends\[1\]\.address: 198\.18\.2\.1:80 is an address of this gateway' <<<"$out" ||
	lab_fail "lb's start did not name the backend: $out"
in_gw nft list table inet lb >/dev/null 2>&1 && lab_fail "a refused start left table inet lb"
lab_log "ok: start refused: $(grep -o 'services\[0\].backends\[1\].address: .*' <<<"$out" | head -c 120)"

# --- reloads: refused ones keep the running config and traffic ---
cfg=$LAB_DIR/lb.json
cp "$good" "$cfg"
lab_lb_start "$cfg"
master=$LAB_LB_PID
generation() { lab_ctl_call '{"cmd": "status"}' | jq -r .data.generation; }
apply() { cp "$1" "$cfg.tmp" && mv -f "$cfg.tmp" "$cfg"; }
loop=$LAB_DIR/loop.log
# shellcheck disable=SC2016 # expanded by the inner shell
lab_bg "$LAB_CLI" "$LAB_DIR/loop.err" bash -c 'while :; do
		curl -sS --fail --max-time 2 --interface "$1" -o /dev/null "$2" && echo ok || echo fail
		sleep 0.05
	done >>"$3"' _ "${LAB_CLI_IP4[0]}" "http://$LAB_VIP4/" "$loop"
loop_pid=$LAB_BG_PID
sleep 0.5
gen=$(generation)
[[ $gen == 1 ]] || lab_fail "generation $gen at start"

# reload_refused FILE ERE: SIGHUP with FILE must fail, naming /ERE/.
reload_refused() {
	local n st
	n=$(grep -c 'reload failed' "$LAB_LB_LOG")
	apply "$1"
	kill -HUP "$master"
	for ((i = 0; i < 50; i++)); do
		(($(grep -c 'reload failed' "$LAB_LB_LOG") > n)) && break
		sleep 0.1
	done
	(($(grep -c 'reload failed' "$LAB_LB_LOG") > n)) || { lab_lb_log; lab_fail "reload with $(basename "$1") was not refused"; }
	grep 'reload failed' "$LAB_LB_LOG" | tail -n1 | grep -Eq -- "$2" ||
		{ lab_lb_log; lab_fail "the refused reload of $(basename "$1") does not say /$2/"; }
	st=$(lab_ctl_call '{"cmd": "status"}')
	[[ $(jq -r .data.generation <<<"$st") == 1 ]] || lab_fail "generation moved after a refused reload: $st"
	jq -r .data.last_reload.message <<<"$st" | grep -Eq -- "$2" ||
		lab_fail "status does not show why the reload failed: $st"
	lab_curl "${LAB_CLI_IP4[1]}" "http://$LAB_VIP4/" >/dev/null || lab_fail "no answer after the refused reload of $(basename "$1")"
	lab_log "ok: reload of $(basename "$1") refused, generation 1 kept: $(grep 'reload failed' "$LAB_LB_LOG" | tail -n1 | grep -o 'services\[.*' | head -c 110)"
}
reload_refused "$own" 'services\[0\]\.backends\[1\]\.address: 198\.18\.2\.1:80 is an address of this gateway'
reload_refused "$vipbe" 'services\[0\]\.backends\[1\]\.address: 198\.18\.100\.1:80 is a VIP of service .?"web'

# A warning does not stop a reload; it is logged.
apply "$zero"
kill -HUP "$master"
for ((i = 0; i < 50; i++)); do
	[[ $(generation) == 2 ]] && break
	sleep 0.1
done
[[ $(generation) == 2 ]] || { lab_lb_log; lab_fail "the reload with all weights 0 in service zero did not apply"; }
grep -q 'reload: config: services\[1\]\.backends: every backend has weight 0' "$LAB_LB_LOG" ||
	{ lab_lb_log; lab_fail "the reload did not log the weight warning"; }
lab_log "ok: reload with a warning applied (generation 2) and logged it"

sleep 0.3
lab_stop "$loop_pid"
n=$(grep -c . "$loop")
fails=$(grep -c fail "$loop")
((n >= 10 && fails == 0)) || lab_fail "request loop: $fails of $n requests failed around the reloads"
lab_log "ok: all $n requests of the loop succeeded across the refused and applied reloads"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
