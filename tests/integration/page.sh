#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The status page in a real browser: Debian's headless Chromium, driven over
# its DevTools protocol (tests/tools/browser), loads / from lb's HTTP
# listener. On the DOM the page's script rendered, not the HTML source:
#  - the backends table lists all four backends, each with its state (up);
#  - a screenshot is not blank: enough pixels unlike the background, and
#    several colours (the state badges);
#  - after lbctl drain, the page shows "drain" for that backend within 3 s,
#    in the same document (a marker set on the window survives): the live
#    refresh from /status.json, not a reload.
# LB_SCREENSHOTS=DIR keeps the screenshots (desktop and phone) there.
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root chromium python3
lab_need_lb
lab_up
lab_nginx_start

LBCTL=${LB_BUILDDIR:-$LB_SRCDIR}/lb/lbctl
cfg=$(lab_config_with '"workers": 2, "http": {"listen": "127.0.0.1:9180"}' '{
		"name": "web",
		"vips": ["198.18.100.1:80", "[2001:db8:100::1]:80"],
		"backends": [
			{"address": "198.18.2.2:80"}, {"address": "198.18.2.3:80", "weight": 2},
			{"address": "[2001:db8:2::2]:80"}, {"address": "[2001:db8:2::3]:80"}
		],
		"health": {"type": "http", "interval_ms": 1000}
	}')
lab_lb_start "$cfg"
for _ in $(seq 20); do lab_curl "${LAB_CLI_IP4[0]}" http://198.18.100.1/ >/dev/null || lab_fail "traffic"; done

out=$(in_gw python3 "$LB_SRCDIR/tests/tools/browser" http://127.0.0.1:9180/ "$LAB_DIR/page.png" 4 198.18.2.3:80 \
	--phone "$LAB_DIR/page-phone.png" -- "$LBCTL" -s "$LAB_DIR/lb.sock" drain web 198.18.2.3:80 2>&1) ||
	{ echo "$out" >&2; lab_lb_log; lab_fail "browser run failed"; }
echo "$out" | sed 's/^/  | /'
for be in 198.18.2.2:80 198.18.2.3:80 '[2001:db8:2::2]:80' '[2001:db8:2::3]:80'; do
	grep -qxF "row web $be up" <<<"$out" || lab_fail "backend $be not listed as up on the page"
done
lab_log "ok: all 4 backends rendered with state up"
[[ $out =~ screenshot\ ([0-9]+)\ x\ ([0-9]+):\ ([0-9.]+)%\ of\ pixels\ not\ background,\ ([0-9]+)\ colours ]] ||
	lab_fail "no screenshot line"
awk -v f="${BASH_REMATCH[3]}" -v c="${BASH_REMATCH[4]}" 'BEGIN { exit !(f >= 3 && c >= 8) }' ||
	lab_fail "screenshot looks blank: ${BASH_REMATCH[0]}"
lab_log "ok: ${BASH_REMATCH[0]}"
[[ $out =~ drain\ shown\ after\ ([0-9]+)\ ms,\ same\ document ]] || lab_fail "drain not shown live"
((BASH_REMATCH[1] <= 3000)) || lab_fail "drain shown after ${BASH_REMATCH[1]} ms, want at most 3000"
lab_log "ok: ${BASH_REMATCH[0]}"
if [[ -n ${LB_SCREENSHOTS:-} ]]; then
	cp "$LAB_DIR/page.png" "$LAB_DIR/page-phone.png" "$LB_SCREENSHOTS/"
fi
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
