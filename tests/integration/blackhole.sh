#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A backend that silently drops packets (an nft drop rule in the backend
# namespace for 198.18.2.3:80 and [2001:db8:2::3]:80, so SYNs vanish) costs a
# request one connect timeout, not the request: with connect_timeout_ms 800
# every request still succeeds, answered by the other backend, and takes
# either well under the timeout (the live backend was picked first) or about
# the timeout (the dead one was tried first). At least one request must have
# tried the dead backend. IPv4 and IPv6.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_up
lab_nginx_start
timeout_ms=800
fast_ms=$((timeout_ms / 2)) # a request that did not wait for a connect timeout
cfg=$(lab_config)
sed -i "s/\"connect_timeout_ms\": 3000/\"connect_timeout_ms\": $timeout_ms/" "$cfg"
grep -q "\"connect_timeout_ms\": $timeout_ms" "$cfg" || lab_fail "could not set connect_timeout_ms in $cfg"
lab_lb_start "$cfg"

# ask SRC URL: one request; prints "BACKEND MS".
ask() {
	local out
	out=$(in_cli curl -gsS --fail --max-time 5 --interface "$1" -w ' %{time_total}' "$2") || return 1
	local re='^backend=([^ ]+) client=[^ ]+ ([0-9.]+)$'
	[[ $out =~ $re ]] || { lab_log "unexpected answer: $out"; return 1; }
	printf '%s %s\n' "${BASH_REMATCH[1]}" "$(awk -v t="${BASH_REMATCH[2]}" 'BEGIN { printf "%d", t * 1000 }')"
}

lab_log "checking: with both backends alive, requests are fast"
for url in "http://$LAB_VIP4/" "http://[$LAB_VIP6]/"; do
	if [[ $url == *\[* ]]; then src=${LAB_CLI_IP6[0]}; else src=${LAB_CLI_IP4[0]}; fi
	for i in 1 2 3 4; do
		read -r be ms < <(ask "$src" "$url") || lab_fail "request to $url failed with both backends alive"
		((ms < fast_ms)) || lab_fail "request to $url took $ms ms with both backends alive"
	done
done
lab_log "ok: 8 requests, all under $fast_ms ms"

in_be nft -f - <<'EOF' || lab_fail "cannot install the drop rule in the backend namespace"
table inet blackhole {
	chain input {
		type filter hook input priority filter; policy accept;
		ip daddr 198.18.2.3 tcp dport 80 counter drop
		ip6 daddr 2001:db8:2::3 tcp dport 80 counter drop
	}
}
EOF
lab_log "backend namespace now drops tcp to 198.18.2.3:80 and [2001:db8:2::3]:80"

# family VIP_URL LIVE_BACKEND SRC...
family() {
	local url=$1 live=$2 src be ms fast=0 slow=0 i=0
	shift 2
	lab_log "checking: 12 requests to $url, connect timeout $timeout_ms ms, one dead backend"
	for ((i = 0; i < 12; i++)); do
		src=${*:i % $# + 1:1}
		if ! read -r be ms < <(ask "$src" "$url"); then
			lab_lb_log
			lab_fail "request $i from $src to $url failed although $live is alive"
		fi
		[[ $be == "$live" ]] || lab_fail "request $i answered by $be, want $live (the other one drops everything)"
		if ((ms < fast_ms)); then
			fast=$((fast + 1))
		elif ((ms >= timeout_ms * 9 / 10 && ms < timeout_ms + 1000)); then
			slow=$((slow + 1))
		else
			lab_fail "request $i from $src took $ms ms: neither direct (< $fast_ms) nor one connect timeout ($timeout_ms ms)"
		fi
	done
	((slow > 0)) || lab_fail "no request to $url tried the dead backend (all $fast fast): the test proved nothing"
	lab_log "ok: all 12 succeeded via $live: $fast direct (< $fast_ms ms), $slow after one connect timeout (~$timeout_ms ms)"
}
family "http://$LAB_VIP4/" 198.18.2.2 "${LAB_CLI_IP4[@]}"
family "http://[$LAB_VIP6]/" 2001:db8:2::2 "${LAB_CLI_IP6[@]}"

dropped=$(in_be nft list table inet blackhole | grep -o 'packets [0-9]*' | awk '{ s += $2 } END { print s + 0 }')
((dropped > 0)) || lab_fail "the drop rule never matched"
lab_log "ok: the drop rule matched $dropped packets (SYNs to the dead backend)"
lab_log "PASS"
