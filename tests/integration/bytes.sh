#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Byte-exact relaying under load: 200 concurrent connections per family, each
# with its own random upload and download size between 0 and 16 MiB (the
# first four are 0/0, 16M/0, 0/16M and 16M/16M), every byte of both
# directions checked against a deterministic stream by tests/tools/peer. 400
# directions in flight at once can outnumber the workers' pipe pools (128
# pipes each), so the copying fallback may carry some of them too.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb peer
lab_up

cfg=$(lab_config '{
			"name": "bytes",
			"vips": ["198.18.100.1:9000", "[2001:db8:100::1]:9000"],
			"backends": [
				{"address": "198.18.2.2:9000"},
				{"address": "198.18.2.3:9000"},
				{"address": "[2001:db8:2::2]:9000"},
				{"address": "[2001:db8:2::3]:9000"}
			]
		}')
serve_log=$LAB_DIR/peer-serve.log
lab_peer_start "$LAB_BE" "$serve_log" serve 198.18.2.2:9000 198.18.2.3:9000 \
	'[2001:db8:2::2]:9000' '[2001:db8:2::3]:9000'
lab_lb_start "$cfg"

# bytes WHAT SRCIP VIP:PORT: 200 connections, random sizes up to 16 MiB, each verified.
bytes() {
	lab_peer_run "$1" "$2" "$3" -t 50 -n 200 -s 16M
	[[ $LAB_PEER_OUT == *" 200 ok, 0 failed"* ]] ||
		lab_fail "$1: not all 200 connections verified: $LAB_PEER_OUT"
}

bytes "IPv4: 200 concurrent connections, 0..16 MiB both ways, byte-exact" 198.18.0.10 "$LAB_VIP4:9000"
bytes "IPv6: 200 concurrent connections, 0..16 MiB both ways, byte-exact" 2001:db8::10 "[$LAB_VIP6]:9000"

if grep -Eq 'mismatch|short upload|longer than|bad header' "$serve_log"; then
	sed 's/^/  serve| /' "$serve_log" >&2
	lab_fail "the backends saw corrupted uploads"
fi
lab_log "ok: backends saw no corrupted or short upload"
kill -0 "$LAB_LB_PID" 2>/dev/null || lab_fail "lb died"
lab_log "ok: lb still running"
lab_log "PASS"
