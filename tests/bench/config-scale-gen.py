#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Configs for tests/bench/config-scale: one service layout, for lb and HAProxy.

    config-scale-gen.py lb VIPS OUT [--health] [--add-one] [--shift] [--workers N]
                                    [--control PATH]
    config-scale-gen.py haproxy VIPS DIR [--add-one] [--shift] [--port PORT] [--check]

VIP i (1..VIPS) is 198.19.(i % 65536 / 256).(i % 256), port 80 for the first
65,535 and 443 past them; services = min(VIPS, 10000), VIP i belongs to
service (i - 1) % services; each service has three backends, port 80 on
198.18.128.0/17 (backend k = 198.18.128.0 + k, k = 1..30000), which the
bench's backend namespace answers on every address. --add-one adds VIP
VIPS + 1 to service 0; --shift moves every VIP one port up (81, 444): a
reload that changes all. --health gives every service a tcp check every 2 s
on port 81 of its backends (the bench answers it with echod, which costs
less per connection than the web server on port 80).
HAProxy gets the idiomatic equivalent: one transparent frontend that picks
a backend section by destination address in two maps (one per port), and a
section per service with three servers, "source 0.0.0.0 usesrc clientip" and,
with --check, "check port 81 inter 2s".
"""
import argparse
import os


def vip(i, shift):
    a = i % 65536
    port = (80 if i < 65536 else 443) + (1 if shift else 0)
    return "198.19.%d.%d" % (a // 256, a % 256), port


def backend(k):
    return "198.18.%d.%d" % (128 + k // 256, k % 256)


def layout(n_vips, add_one):
    services = min(n_vips, 10000)
    vips = [[] for _ in range(services)]
    for i in range(1, n_vips + 1):
        vips[(i - 1) % services].append(i)
    if add_one:
        vips[0].append(n_vips + 1)
    return vips


def lb(a):
    vips = layout(a.vips, a.add_one)
    health = ', "health": {"type": "tcp", "interval_ms": 2000, "port": 81}' if a.health else ""
    out = ['{\n\t"workers": %d,\n\t"control": {"path": "%s"},\n'
           '\t"intercept": {"port": 50080, "mark": 1, "table": "lb", "route_table": 100},\n'
           '\t"services": [\n' % (a.workers, a.control)]
    for s, vs in enumerate(vips):
        v = ", ".join('"%s:%d"' % vip(i, a.shift) for i in vs)
        b = ", ".join('{"address": "%s:80"}' % backend(s * 3 + j + 1) for j in range(3))
        out.append('\t\t{"name": "s%d", "vips": [%s], "backends": [%s]%s}%s\n'
                   % (s, v, b, health, "," if s + 1 < len(vips) else ""))
    out.append("\t]\n}\n")
    with open(a.out, "w") as f:
        f.write("".join(out))


def haproxy(a):
    vips = layout(a.vips, a.add_one)
    maps = {}
    for s, vs in enumerate(vips):
        for i in vs:
            addr, port = vip(i, a.shift)
            maps.setdefault(port, []).append("%s s%d\n" % (addr, s))
    cfg = ["global\n\tmaxconn 4000\n\tlog stderr format short local0 err\n",
           "defaults\n\tmode tcp\n\tlog global\n\ttimeout connect 3s\n"
           "\ttimeout client 300s\n\ttimeout server 300s\n",
           "frontend vips\n\tbind 127.0.0.1:%d transparent\n" % a.port]
    for port in sorted(maps):
        path = os.path.join(a.out, "vips-%d.map" % port)
        with open(path, "w") as f:
            f.write("".join(maps[port]))
        cfg.append("\tuse_backend %%[dst,map_ip(%s)] if { dst_port %d }\n" % (path, port))
    for s in range(len(vips)):
        cfg.append("backend s%d\n" % s)
        for j in range(3):
            cfg.append("\tserver b%d %s:80%s source 0.0.0.0 usesrc clientip\n"
                       % (j, backend(s * 3 + j + 1), " check port 81 inter 2s" if a.check else ""))
    with open(os.path.join(a.out, "haproxy.cfg"), "w") as f:
        f.write("".join(cfg))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kind", choices=["lb", "haproxy"])
    p.add_argument("vips", type=int)
    p.add_argument("out")
    p.add_argument("--health", action="store_true")
    p.add_argument("--add-one", action="store_true")
    p.add_argument("--shift", action="store_true")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--control", default="/run/lb/lb.sock")
    p.add_argument("--port", type=int, default=50081)
    p.add_argument("--check", action="store_true")
    a = p.parse_args()
    if not 1 <= a.vips <= 131070:
        p.error("VIPS must be 1..131070")
    (lb if a.kind == "lb" else haproxy)(a)


if __name__ == "__main__":
    main()
