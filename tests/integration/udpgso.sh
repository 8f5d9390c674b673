#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# UDP segmentation offload on lb's sends (issue 16, CPU per datagram):
#  - runs of equal datagrams go to the kernel as one send each (UDP_SEGMENT),
#    which cuts them at the old boundaries: a mix of full and shorter
#    datagrams (udppeer gen -S) comes back byte for byte, over IPv4 and
#    IPv6, and the gateway's UDP OutDatagrams counter (one per send)
#    grows by clearly less than the datagrams lb forwarded;
#  - datagrams longer than the path MTU, which the kernel will not segment
#    (EMSGSIZE), still go through, fragmented, one send each.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root
lab_need_lb
UP=${LB_BUILDDIR:-$LB_SRCDIR}/tests/tools/udppeer
[[ -x $UP ]] || lab_skip "udppeer not built: $UP"
lab_up

BE4=${LAB_BE_IP4[0]} BE6=${LAB_BE_IP6[0]}
lab_bg "$LAB_BE" "$LAB_DIR/echo.log" "$UP" echo "$BE4:5300" "[$BE6]:5300"
sleep 0.3
cfg=$(lab_config_with '"workers": 1' '{"name": "u", "protocol": "udp",
	"vips": ["'"$LAB_VIP4"':5300", "['"$LAB_VIP6"']:5300"],
	"backends": [{"address": "'"$BE4"':5300"}, {"address": "['"$BE6"']:5300"}]}')
lab_lb_start "$cfg"

out_datagrams() { in_gw awk '/^Udp: [0-9]/ { print $5 }' /proc/net/snmp; }
# gen SRC VIP SIZE MAX RATE: runs udppeer gen for 1 s; sets got, lost and bad.
gen() {
	local line
	line=$(in_cli "$UP" gen -b "$1" -f 4 -s "$3" -S "$4" -r "$5" -t 1 -w 500 "$2") ||
		{ echo "$line" >&2; lab_fail "udppeer gen to $2 got bad datagrams"; }
	lab_log "$line"
	read -r got lost bad < <(awk '{ gsub(",", ""); print $7, $9, $12 }' <<<"$line")
}

# Settle neighbour discovery on both families.
in_cli "$UP" gen -b "${LAB_CLI_IP4[0]}" -f 1 -r 100 -t 0.2 "$LAB_VIP4:5300" >/dev/null
in_cli "$UP" gen -b "${LAB_CLI_IP6[0]}" -f 1 -r 100 -t 0.2 "[$LAB_VIP6]:5300" >/dev/null

o0=$(out_datagrams)
gen "${LAB_CLI_IP4[0]}" "$LAB_VIP4:5300" 64 1400 10000
o1=$(out_datagrams)
((bad == 0)) || lab_fail "IPv4: $bad datagrams came back cut or changed"
# Loss is the box's business (a starved process, 13% seen on a loaded box);
# what lb gets wrong it gets wrong for every datagram of a kind: a quarter
# lost is a failure.
((lost * 4 <= (got + lost))) || lab_fail "IPv4: $lost of $((got + lost)) lost"
# Each echoed datagram crossed lb twice (to the backend, to the client).
sends=$((o1 - o0)) forwarded=$((2 * got))
lab_log "IPv4: $got echoed with sizes 64..1400, $forwarded forwarded in $sends sends"
((sends * 10 < forwarded * 9)) ||
	lab_fail "lb made $sends sends for $forwarded datagrams: runs were not sent segmented"

gen "${LAB_CLI_IP6[0]}" "[$LAB_VIP6]:5300" 64 1400 10000
((bad == 0)) || lab_fail "IPv6: $bad datagrams came back cut or changed"
((lost * 4 <= (got + lost))) || lab_fail "IPv6: $lost of $((got + lost)) lost"
lab_log "ok: IPv6: $got echoed byte for byte"

gen "${LAB_CLI_IP4[1]}" "$LAB_VIP4:5300" 1600 3000 3000
((bad == 0 && lost * 4 <= (got + lost))) ||
	lab_fail "datagrams past the MTU: $lost lost, $bad bad of $((got + lost))"
lab_log "ok: $got datagrams of 1600..3000 bytes (past the MTU) echoed, fragmented"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
