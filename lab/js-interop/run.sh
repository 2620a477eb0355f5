#!/usr/bin/env bash
# js-libp2p interop: a bitdust devnet on 127.0.0.1, then a js-libp2p node (a second, independent libp2p
# implementation) dials its bootstrap node over TCP + Noise + Yamux, runs identify and ping, and fetches alice's
# signed identity record through the bitdust Kademlia protocol. Needs node and npm (installs into node_modules).
# Known: js-libp2p 3 wants Node 22; on Node 20 (polyfilled) its ping fails on the js side ("Cannot write to a
# stream that is closed"), so ping is reported, not required.
# usage: lab/js-interop/run.sh [path/to/bitdust]
set -euo pipefail
cd "$(dirname "$0")"
B=$(realpath "${1:-../../target/debug/bitdust}")
[ -d node_modules ] || npm install --no-audit --no-fund --loglevel=error
D=$(mktemp -d /tmp/bitdust-js-interop.XXXXXX)
"$B" devnet --dir "$D/net" --suppliers 2 >"$D/devnet.log" 2>&1 &
DEVNET=$!
trap 'kill $DEVNET 2>/dev/null; wait $DEVNET 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 300); do grep -q "press Ctrl-C" "$D/devnet.log" && break; sleep 0.2; done
status() { "$B" --home "$D/net/$1" --json status | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
BOOT=$(status bootstrap "[a for a in s['listen_addrs'] if '/tcp/' in a][0]")
ALICE=$(status alice "s['peer_id']")
OUT=$(node interop.mjs "$BOOT" "$ALICE")
echo "$OUT"
echo "$OUT" | python3 -c "
import json, sys
r = json.load(sys.stdin)
assert '/bitdust/kad/1.0.0' in r['protocols'] and '/bitdust/storage/1' in r['protocols'], r['protocols']
assert r['record_bytes'] > 0 and 'alice' in r['record_text'], 'no identity record for alice'
print('js-libp2p interop: Noise + Yamux, identify and DHT record fetch OK; ping:',
      f\"{r['ping_ms']} ms\" if r['ping_ms'] is not None else 'failed on the js side (see above)')"
