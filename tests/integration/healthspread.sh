#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Health checks at scale (issue 21):
#  - 1,000 services of three backends each, 3,000 backends on 3,000 ports of
#    one backend address, tcp checks every 2 s: over three intervals the
#    checks are spread, no 100 ms window holds more than twice the mean;
#  - ten services that list the same backend with the same check make one
#    probe, not ten: one connect per interval on its port, while a service
#    checking it at another interval gets a probe of its own;
#  - the control socket answers `status` promptly meanwhile (p99 of 100
#    calls under 100 ms here; tests/bench/config-scale measures it at size).
LB_SRCDIR=${LB_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
LAB_NAME=hcspread
. "$LB_SRCDIR/tests/lab.sh"
lab_skip_unless_root python3
lab_need_lb
lab_up

BE=${LAB_BE_IP4[0]}
NSVC=1000 PER=3 BASE=20000 SHARED=24000
N=$((NSVC * PER))

# A listener on every port that logs "port monotonic_ms" per connect.
cat >"$LAB_DIR/listen.py" <<'EOF'
import selectors, socket, sys, time
addr, ports, out = sys.argv[1], [int(p) for p in sys.argv[2:-1]], sys.argv[-1]
sel = selectors.DefaultSelector()
for p in ports:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, p)); s.listen(64); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, p)
f = open(out, "w", buffering=1)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        while True:
            try:
                c, _ = key.fileobj.accept()
            except BlockingIOError:
                break
            f.write("%d %d\n" % (key.data, time.monotonic_ns() // 1000000))
            c.close()
EOF
ports=$(seq $BASE $((BASE + N - 1)); echo $SHARED)
# shellcheck disable=SC2086
lab_bg "$LAB_BE" "$LAB_DIR/listen.out" python3 "$LAB_DIR/listen.py" "$BE" $ports "$LAB_DIR/accepts"
lab_wait_grep "$LAB_DIR/listen.out" listening 20 || lab_fail "the listener did not start"

svcs=$(python3 - "$BE" $NSVC $PER $BASE $SHARED <<'EOF'
import sys
be, nsvc, per, base, shared = sys.argv[1], *map(int, sys.argv[2:])
out = []
for i in range(nsvc):
    out.append('{"name": "s%d", "vips": ["198.18.100.1:%d"], "backends": [%s],'
               ' "health": {"type": "tcp", "interval_ms": 2000}}' % (i, 1000 + i,
               ", ".join('{"address": "%s:%d"}' % (be, base + i * per + j) for j in range(per))))
for i in range(10):
    out.append('{"name": "shared%d", "vips": ["198.18.100.2:%d"], "backends": [{"address": "%s:%d"}],'
               ' "health": {"type": "tcp", "interval_ms": 2000}}' % (i, 1000 + i, be, shared))
out.append('{"name": "other", "vips": ["198.18.100.3:1000"], "backends": [{"address": "%s:%d"}],'
           ' "health": {"type": "tcp", "interval_ms": 1000}}' % (be, shared))
print(",\n".join(out))
EOF
)
cfg=$(lab_config_with '"workers": 1' "$svcs")
lab_lb_start "$cfg"
t0=$(in_be python3 -c 'import time; print(time.monotonic_ns() // 1000000)')

# Control responsiveness while the checks run.
lat=$(python3 - "$LAB_DIR/lb.sock" <<'EOF'
import socket, sys, time
ts = []
for _ in range(100):
    t = time.monotonic()
    s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
    s.sendall(b'{"cmd": "status"}\n'); b = b""
    while not b.endswith(b"\n"):
        d = s.recv(65536)
        if not d: break
        b += d
    s.close()
    assert b'"ok": true' in b or b'"ok":true' in b, b[:200]
    ts.append((time.monotonic() - t) * 1000)
    time.sleep(0.05)
ts.sort()
print("%.1f %.1f" % (ts[49], ts[98]))
EOF
) || lab_fail "status calls failed"
read -r p50 p99 <<<"$lat"
lab_log "control status during checks: p50 ${p50} ms, p99 ${p99} ms"
awk -v p="$p99" 'BEGIN { exit !(p < 100) }' || lab_fail "status p99 ${p99} ms >= 100 ms"

now=$(in_be python3 -c 'import time; print(time.monotonic_ns() // 1000000)')
((now < t0 + 8500)) && sleep "$(awk -v d=$((t0 + 8500 - now)) 'BEGIN { print d / 1000 }')"
cp "$LAB_DIR/accepts" "$LAB_DIR/accepts.snap"
# Windows from the end of the first interval (the start is spread too, but
# lb's startup sits in it) over three intervals: 60 windows of 100 ms.
read -r total nwin mean maxw maxat shared < <(awk -v t0="$t0" -v base=$BASE -v n=$N \
	-v sh=$SHARED '
	$1 >= base && $1 < base + n && $2 >= t0 + 2000 && $2 < t0 + 8000 {
		w = int(($2 - t0 - 2000) / 100); c[w]++; total++ }
	$1 == sh && $2 >= t0 + 2000 && $2 < t0 + 8000 { shared++ }
	END { max = 0; for (w = 0; w < 60; w++) if (c[w] > max) { max = c[w]; at = w }
	      printf "%d 60 %.1f %d %d %d\n", total, total / 60, max, at, shared + 0 }' \
	"$LAB_DIR/accepts.snap")
lab_log "checks in 6 s: $total (want about $((N * 3))), 100 ms windows: mean $mean, busiest $maxw (window $maxat)"
((total >= N * 3 * 9 / 10)) || lab_fail "only $total checks of $N backends in three 2 s intervals"
awk -v m="$mean" -v x="$maxw" 'BEGIN { exit !(x <= 2 * m) }' ||
	lab_fail "a 100 ms window holds $maxw checks, more than twice the mean $mean"
lab_log "shared backend (10 services at 2 s, one at 1 s): $shared connects in 6 s"
((shared >= 7 && shared <= 11)) ||
	lab_fail "the backend ten services check at 2 s and one at 1 s was checked $shared times in 6 s, want 3 + 6 (two probes)"
lab_lb_stop || lab_fail "lb exited with status $?"
lab_log "PASS"
