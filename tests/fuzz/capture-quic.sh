#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Captures real QUIC datagrams for the fuzz_quic seed corpus: ngtcp2's
# gtlsclient downloads a file from gtlsserver (v1, ngtcp2's v2 draft, after
# Version Negotiation from an unknown version, with a migration, with a NAT
# rebinding), and quicpeer's client talks to its server, each through
# "quicpeer relay", which saves every datagram and prints its parsed header.
# Fails when a download's checksum differs or the parser rejects a datagram
# a real peer sent. Everything runs on the loopback of a namespace of its own.
#
#   tests/fuzz/capture-quic.sh [OUTDIR]     (default tests/fuzz/corpus/quic)
#
# Needs root, gtlsserver and gtlsclient (ngtcp2-server, ngtcp2-client),
# openssl, and a built tests/tools/quicpeer (QUICPEER overrides). Writes
# the first and last datagrams of each direction of each run as
# RUN-NNNNN-c2s.bin / RUN-NNNNN-s2c.bin, duplicates left out, and leaves
# the full relay logs in OUTDIR.logs/ when KEEP_LOGS is set.
set -euo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$top/tests/fuzz/corpus/quic}
QUICPEER=${QUICPEER:-$top/tests/tools/quicpeer}
for t in gtlsserver gtlsclient openssl ip sha256sum; do
	command -v "$t" >/dev/null || { echo "capture-quic: missing $t (scripts/deps)" >&2; exit 1; }
done
[[ -x $QUICPEER ]] || { echo "capture-quic: build $QUICPEER first (make check)" >&2; exit 1; }
[[ $EUID -eq 0 ]] || { echo "capture-quic: needs root (a network namespace)" >&2; exit 1; }

ns=lbcap-$$-$RANDOM
work=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	ip netns del "$ns" 2>/dev/null || true
	[[ -n ${KEEP_WORK:-} ]] && echo "capture-quic: work dir $work" || rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
inns() { ip netns exec "$ns" "$@"; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=lb-test \
	-keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
mkdir -p "$work/htdocs" "$work/dl"
head -c 200000 /dev/urandom >"$work/htdocs/blob"
want=$(sha256sum <"$work/htdocs/blob")

ip netns exec "$ns" gtlsserver -q -d "$work/htdocs" 127.0.0.1 4433 "$work/key.pem" "$work/cert.pem" >"$work/server.log" 2>&1 &
pids+=($!)
ip netns exec "$ns" "$QUICPEER" server -i 0a01 -c 1:2:6 -N capture 127.0.0.1:4443 >"$work/quicpeer.log" 2>&1 &
pids+=($!)
sleep 0.5

# relay NAME TARGET_PORT: start a relay on 127.0.0.1:4434 saving to $work/NAME.
relay() {
	mkdir -p "$work/$1"
	ip netns exec "$ns" "$QUICPEER" relay -d "$work/$1" 127.0.0.1:4434 "127.0.0.1:$2" >"$work/$1.log" 2>&1 &
	relay_pid=$!
	pids+=("$relay_pid")
	sleep 0.3
}

relay_stop() {
	kill "$relay_pid"
	wait "$relay_pid" || true
}

# download NAME ARGS...: gtlsclient through the relay; checks the file.
download() {
	local name=$1
	shift
	relay "$name" 4433
	rm -f "$work/dl/blob"
	timeout 30 ip netns exec "$ns" gtlsclient -q --exit-on-all-streams-close --download="$work/dl" "$@" \
		127.0.0.1 4434 https://127.0.0.1:4434/blob >"$work/$name.client.log" 2>&1 ||
		{ cat "$work/$name.client.log" >&2; echo "capture-quic: $name: gtlsclient failed" >&2; exit 1; }
	relay_stop
	[[ $(sha256sum <"$work/dl/blob") == "$want" ]] ||
		{ echo "capture-quic: $name: downloaded file differs" >&2; exit 1; }
	echo "capture-quic: $name: download verified, $(ls "$work/$name" | wc -l) datagrams"
}

download v1
download v2draft -v v2draft
download vneg -v 0x1a2a3a4a --preferred-versions v1
download migrate --change-local-addr=1s --delay-stream=2s
download rebind --change-local-addr=1s --delay-stream=2s --nat-rebinding

relay quicpeer 4443
inns "$QUICPEER" client -c 1:2:6 -n 4 -r -u answered -x 0x1a2a3a4a 127.0.0.1:4434 >"$work/qp.client.log"
relay_stop
echo "capture-quic: quicpeer: $(ls "$work/quicpeer" | wc -l) datagrams"

if grep -h ': Bad message$' "$work"/*.log; then
	echo "capture-quic: the parser rejected datagrams above" >&2
	exit 1
fi
grep -q 'long v=0x00000000 version-negotiation' "$work/vneg.log" ||
	{ echo "capture-quic: no Version Negotiation seen" >&2; exit 1; }

mkdir -p "$out"
for run in v1 v2draft vneg migrate rebind quicpeer; do
	for dir in c2s s2c; do
		mapfile -t files < <(ls "$work/$run" | grep -- "-$dir.bin$")
		n=${#files[@]}
		for ((i = 0; i < n; i++)); do
			((i < 6 || i >= n - 2)) || continue
			f=$work/$run/${files[i]}
			if ! find "$out" -type f -size "$(stat -c %s "$f")c" -exec cmp -s "$f" {} \; -print | grep -q .; then
				cp "$f" "$out/$run-${files[i]}"
			fi
		done
	done
done
if [[ -n ${KEEP_LOGS:-} ]]; then
	mkdir -p "$out.logs"
	cp "$work"/*.log "$out.logs/"
fi
echo "capture-quic: $(ls "$out" | wc -l) seeds in $out"
