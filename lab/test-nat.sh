#!/usr/bin/env bash
# Lab test (root, iproute2, nftables): a customer behind an endpoint-independent NAT backs up to two
# suppliers, one behind another endpoint-independent NAT and one behind a symmetric NAT, through the relay
# on the public bootstrap node, and restores byte for byte. Tears the lab down on exit, also after a failure.
# usage: lab/test-nat.sh [path/to/bitdust]
set -euo pipefail
cd "$(dirname "$0")/.."
B=$(realpath "${1:-target/debug/bitdust}")
L=$(realpath lab/nat-lab.sh)
W=$(mktemp -d /tmp/bitdust-nat-lab.XXXXXX)
cleanup() {
    for h in pub h1 h2 h3; do [ -f "$W/$h/daemon.pid" ] && kill "$(cat "$W/$h/daemon.pid")" 2>/dev/null || true; done
    sleep 0.5
    "$L" down
    rm -rf "$W"
}
trap cleanup EXIT
"$L" up
wait_for() { # wait_for SECONDS CMD...: retries CMD until it succeeds
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "timed out: $*" >&2; return 1; }
        sleep 0.2
    done
}
for h in pub h1 h2 h3; do "$B" --home "$W/$h" init --nickname "lab-$h" >/dev/null; done
sed -i 's/^suppliers = .*/suppliers = 2/; s/^needed_bytes = .*/needed_bytes = 1073741824/' "$W/h1/config.toml"
"$L" exec bd-pub "$B" --home "$W/pub" daemon --listen /ip4/198.51.100.10/tcp/4001 \
    --listen /ip4/198.51.100.10/udp/4001/quic-v1 --relay >"$W/pub.log" 2>&1 &
wait_for 30 "$L" exec bd-pub "$B" --home "$W/pub" status
PUB=$("$L" exec bd-pub "$B" --home "$W/pub" --json status |
    python3 -c "import json,sys; print([a for a in json.load(sys.stdin)['listen_addrs'] if '/tcp/' in a][0])")
for h in h2 h3; do
    "$L" exec "bd-$h" "$B" --home "$W/$h" daemon --listen /ip4/0.0.0.0/tcp/4001 --listen /ip4/0.0.0.0/udp/4001/quic-v1 \
        --bootstrap "$PUB" --use-relay "$PUB" --supplier --donate 10G >"$W/$h.log" 2>&1 &
done
"$L" exec bd-h1 "$B" --home "$W/h1" daemon --listen /ip4/0.0.0.0/tcp/4001 --listen /ip4/0.0.0.0/udp/4001/quic-v1 \
    --bootstrap "$PUB" --use-relay "$PUB" >"$W/h1.log" 2>&1 &
relayed() { "$L" exec "bd-$1" "$B" --home "$W/$1" --json status | python3 -c "
import json,sys; s=json.load(sys.stdin); sys.exit(0 if s['relays'] and s['announced'] else 1)"; }
for h in h1 h2 h3; do wait_for 60 relayed "$h"; done
head -c 20000000 /dev/urandom >"$W/data.bin"
"$L" exec bd-h1 "$B" --home "$W/h1" backup "$W/data.bin"
"$L" exec bd-h1 "$B" --home "$W/h1" restore data.bin --to "$W/out"
cmp "$W/data.bin" "$W/out/data.bin"
"$L" exec bd-h1 "$B" --home "$W/h1" status | sed -n '/^nat/,$p'
echo "nat lab: backup and restore across NATs through the relay: OK"
