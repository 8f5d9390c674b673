#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Byte-exact bulk transfer through lb, both directions, IPv4 and IPv6: a
# 64 MiB upload, a 64 MiB download, then 200 concurrent connections of random
# sizes. Every byte is checked against a deterministic stream by tests/tools/peer
# on both ends; the backend answers only after the client's FIN reached it,
# so half-close is exercised too.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb peer
lab_up

cfg=$(lab_config "$(lab_svc bulk 9000)")
serve_log=$LAB_DIR/peer-serve.log
lab_peer_start "$LAB_BE" "$serve_log" serve 198.18.2.2:9000 '[2001:db8:2::2]:9000'
lab_lb_start "$cfg"

# Each transfer is one peer client run, verified byte for byte, within 120 s.
lab_peer_run "64 MiB upload over IPv4" 198.18.0.10 "$LAB_VIP4:9000" -t 120 -u 64M -d 0
lab_peer_run "64 MiB download over IPv4" 198.18.0.11 "$LAB_VIP4:9000" -t 120 -u 0 -d 64M
lab_peer_run "64 MiB upload over IPv6" 2001:db8::10 "[$LAB_VIP6]:9000" -t 120 -u 64M -d 0
lab_peer_run "64 MiB download over IPv6" 2001:db8::11 "[$LAB_VIP6]:9000" -t 120 -u 0 -d 64M
lab_peer_run "64 MiB each way at once over IPv4" 198.18.0.12 "$LAB_VIP4:9000" -t 120 -u 64M -d 64M
lab_peer_run "200 concurrent connections, random sizes, IPv4" 198.18.0.13 "$LAB_VIP4:9000" -t 120 -n 200 -s 256K
lab_peer_run "200 concurrent connections, random sizes, IPv6" 2001:db8::13 "[$LAB_VIP6]:9000" -t 120 -n 200 -s 256K

if grep -Eq 'mismatch|short upload|longer than|bad header' "$serve_log"; then
	sed 's/^/  serve| /' "$serve_log" >&2
	lab_fail "the backend saw corrupted uploads"
fi
lab_log "ok: backend saw no corrupted upload"
lab_log "PASS"
