#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Backends see the client's own address (v4 and v6, several source IPs), and
# round robin spreads each family's requests over both of its backends.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_up
lab_nginx_start
lab_lb_start "$(lab_config)"

# ask SRCIP URL: one request; prints "BACKEND CLIENT" as the backend saw it.
ask() {
	local body
	body=$(lab_curl "$1" "$2") || return 1
	[[ $body =~ ^backend=([^ ]+)\ client=([^ ]+)$ ]] || {
		lab_log "unexpected answer: $body"
		return 1
	}
	printf '%s %s\n' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
}

# check_family VIP_URL BACKEND... -- SRCIP...
check_family() {
	local url=$1 src out be seen_be cl
	shift
	local -a backends=()
	while [[ $1 != -- ]]; do
		backends+=("$1")
		shift
	done
	shift
	for src in "$@"; do
		out=$(ask "$src" "$url") || { lab_lb_log; lab_fail "request from $src to $url failed"; }
		read -r be cl <<<"$out"
		[[ $cl == "$src" ]] ||
			lab_fail "from $src to $url: backend $be saw client $cl, want $src"
		[[ " ${backends[*]} " == *" $be "* ]] ||
			lab_fail "from $src to $url: answered by $be, not one of ${backends[*]}"
		lab_log "ok: $src -> $url: backend $be saw client $cl"
	done

	# Round robin: 10 requests from one source reach both backends.
	declare -A count=()
	for ((i = 0; i < 10; i++)); do
		out=$(ask "$1" "$url") || { lab_lb_log; lab_fail "request $i from $1 to $url failed"; }
		read -r be cl <<<"$out"
		[[ $cl == "$1" ]] || lab_fail "request $i from $1: backend $be saw client $cl"
		count[$be]=$((${count[$be]:-0} + 1))
	done
	seen_be=
	for be in "${backends[@]}"; do
		[[ ${count[$be]:-0} -gt 0 ]] ||
			lab_fail "round robin: 10 requests to $url never reached $be (saw: $(declare -p count))"
		seen_be+=" $be=${count[$be]}"
	done
	lab_log "ok: 10 requests to $url spread over both backends:$seen_be"
}

check_family "http://$LAB_VIP4/" "${LAB_BE_IP4[@]}" -- "${LAB_CLI_IP4[@]:0:3}"
check_family "http://[$LAB_VIP6]/" "${LAB_BE_IP6[@]}" -- "${LAB_CLI_IP6[@]:0:3}"
lab_log "PASS"
