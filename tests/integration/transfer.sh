#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Byte-exact bulk transfer through lb, both directions, IPv4 and IPv6: a
# 64 MiB upload, a 64 MiB download, then 200 concurrent connections of random
# sizes. Every byte is checked against a deterministic stream by tests/tools/peer
# on both ends; the backend answers only after the client's FIN reached it,
# so half-close is exercised too.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=transfer
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
lab_need_peer
lab_up

cfg=$(lab_config '{
			"name": "bulk",
			"vips": ["198.18.100.1:9000", "[2001:db8:100::1]:9000"],
			"backends": [
				{"address": "198.18.2.2:9000"},
				{"address": "[2001:db8:2::2]:9000"}
			],
			"connect_timeout_ms": 3000
		}')
serve_log=$LAB_DIR/peer-serve.log
lab_bg "$LAB_BE" "$serve_log" "$PEER" serve 198.18.2.2:9000 '[2001:db8:2::2]:9000'
if ! lab_wait_port "$LAB_BE" 198.18.2.2 9000 || ! lab_wait_port "$LAB_BE" '[2001:db8:2::2]' 9000; then
	cat "$serve_log" >&2
	lab_fail "peer serve did not listen"
fi
lab_lb_start "$cfg"

# run WHAT SRCIP VIP:PORT PEER-ARGS...
run() {
	local what=$1 src=$2 dst=$3 out
	shift 3
	lab_log "checking: $what ($src -> $dst, $*)"
	if out=$(in_cli "$PEER" client -t 120 -b "$src" "$@" "$dst" 2>"$LAB_DIR/client.err"); then
		lab_log "ok: $what: $out"
	else
		lab_log "FAIL: $what: $out"
		sed 's/^/  client| /' "$LAB_DIR/client.err" >&2
		sed 's/^/  serve| /' "$serve_log" >&2
		lab_lb_log
		exit 1
	fi
}

run "64 MiB upload over IPv4" 198.18.0.10 "$LAB_VIP4:9000" -u 64M -d 0
run "64 MiB download over IPv4" 198.18.0.11 "$LAB_VIP4:9000" -u 0 -d 64M
run "64 MiB upload over IPv6" 2001:db8::10 "[$LAB_VIP6]:9000" -u 64M -d 0
run "64 MiB download over IPv6" 2001:db8::11 "[$LAB_VIP6]:9000" -u 0 -d 64M
run "64 MiB each way at once over IPv4" 198.18.0.12 "$LAB_VIP4:9000" -u 64M -d 64M
run "200 concurrent connections, random sizes, IPv4" 198.18.0.13 "$LAB_VIP4:9000" -n 200 -s 256K
run "200 concurrent connections, random sizes, IPv6" 2001:db8::13 "[$LAB_VIP6]:9000" -n 200 -s 256K

if grep -Eq 'mismatch|short upload|longer than|bad header' "$serve_log"; then
	sed 's/^/  serve| /' "$serve_log" >&2
	lab_fail "the backend saw corrupted uploads"
fi
lab_log "ok: backend saw no corrupted upload"
lab_log "PASS"
