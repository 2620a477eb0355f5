#!/usr/bin/env bash
# NAT lab benchmark (root): the time to back up and restore a file through relays and over direct (hole-punched)
# connections, with the customer's link impaired by packet loss and latency (lab/nat-lab.sh loss and delay).
#   direct:  customer h1 (EIM NAT), suppliers h2 and h4 behind EIM NATs: DCUtR makes both connections direct
#   relayed: customer h1 (EIM NAT), suppliers h3 and h5 behind symmetric NATs: both stay relayed through pub
# RS(1, 2): each supplier receives the whole file, so each transfer crosses the impaired link twice on upload.
# messages: h1 (EIM NAT) talks with h2 (EIM NAT: hole-punched, direct) and h3 (symmetric NAT: relayed): message
#   latency p50/p99 through the API (lab/msg-latency.py) and a MIB file's transfer time, each way of connecting.
# usage: lab/bench-nat.sh [direct|relayed|both|messages] [BIN DIR]
# env: MIB (default 100), LOSS (percent, default 5), DELAY_MS (default 100), BLOCKS (blocks in flight, default 4:
#      on a slow relayed path use 1, or a 4 MiB fragment sharing the path with 7 others outlasts the 120 s
#      request timeout), TCP_ONLY (bootstrap over TCP only, so relayed connections ride TCP rather than QUIC)
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-both}
BIN=$(realpath "${2:-target/release}")
B=$BIN/bitdust
L=$(realpath lab/nat-lab.sh)
MIB=${MIB:-100}
source lab/common.sh

run() { # run direct|relayed
    local suppliers
    if [ "$1" = direct ]; then suppliers=(h2 h4); else suppliers=(h3 h5); fi
    W=$(mktemp -d /tmp/bitdust-nat-bench.XXXXXX)
    trap stop_all EXIT
    "$L" up
    start_public pub 198.51.100.10 --relay
    PUB=$(json pub "[a for a in s['listen_addrs'] if '/tcp/' in a][0]")
    PUBQ=$(json pub "[a for a in s['listen_addrs'] if '/quic-v1' in a][0]")
    bd h1 init --nickname lab-h1 >/dev/null
    sed -i "s/^suppliers = .*/suppliers = 2/; s/^needed_bytes = .*/needed_bytes = 4294967296/;
        s/^blocks_in_flight = .*/blocks_in_flight = ${BLOCKS:-4}/" "$W/h1/config.toml"
    grep -q "^blocks_in_flight = ${BLOCKS:-4}$" "$W/h1/config.toml"
    for h in "${suppliers[@]}"; do start_private "$h" --supplier --donate 20G; done
    start_private h1
    for h in h1 "${suppliers[@]}"; do wait_for 60 check "$h" "s['relays'] and s['announced']"; done
    head -c $((MIB << 20)) /dev/urandom >"$W/data.bin"
    # a first small backup hires the suppliers and opens the connections (and lets DCUtR upgrade them)
    head -c 1024 /dev/urandom >"$W/warm.bin"
    bd h1 backup "$W/warm.bin" >/dev/null
    for h in "${suppliers[@]}"; do
        local id; id=$(json "$h" "s['peer_id']")
        if [ "$1" = direct ]; then
            wait_for 30 check h1 "any(c['peer_id'] == '$id' and not c['relayed'] for c in s['connections'])"
        else
            assert h1 "not any(c['peer_id'] == '$id' and not c['relayed'] for c in s['connections'])"
        fi
    done
    "$L" loss bd-r1 "${LOSS:-5}"
    "$L" delay bd-r1 "${DELAY_MS:-100}" "$BIN/lab-delay"
    timed "$1, ${LOSS:-5}% loss + ${DELAY_MS:-100} ms: backup $MIB MiB" bd h1 backup "$W/data.bin"
    timed "$1, ${LOSS:-5}% loss + ${DELAY_MS:-100} ms: restore $MIB MiB" bd h1 restore data.bin --to "$W/out"
    cmp "$W/data.bin" "$W/out/data.bin"
    "$L" restore bd-r1
    stop_all
    trap - EXIT
}

messages() {
    W=$(mktemp -d /tmp/bitdust-nat-bench.XXXXXX)
    trap stop_all EXIT
    "$L" up
    start_public pub 198.51.100.10 --relay
    PUB=$(json pub "[a for a in s['listen_addrs'] if '/tcp/' in a][0]")
    PUBQ=$(json pub "[a for a in s['listen_addrs'] if '/quic-v1' in a][0]")
    for h in h1 h2 h3; do start_private "$h"; done
    for h in h1 h2 h3; do wait_for 60 check "$h" "s['relays'] and s['announced']"; done
    head -c $((MIB << 20)) /dev/urandom >"$W/file.bin"
    for peer in h2 h3; do
        bd h1 contacts add "lab-$peer" --name "$peer" >/dev/null
        bd "$peer" contacts add lab-h1 --name h1 >/dev/null
        bd h1 msg send "$peer" hello >/dev/null
        local id; id=$(json "$peer" "s['peer_id']")
        local how=relayed
        if [ "$peer" = h2 ]; then
            how=direct
            wait_for 30 check h1 "any(c['peer_id'] == '$id' and not c['relayed'] for c in s['connections'])"
        fi
        echo "h1 -> $peer ($how): $("$L" exec bd-h1 python3 lab/msg-latency.py "$W/h1" "$peer" 200)"
        local t0=$EPOCHREALTIME
        bd h1 msg send "$peer" --file "$W/file.bin" >/dev/null
        received() { bd "$peer" --json msg history h1 --limit 3 | python3 -c "import json,sys; m=json.load(sys.stdin)['messages'][-1]; sys.exit(0 if m.get('file', {}).get('state') == 'received' else 1)"; }
        wait_for 600 received
        python3 -c "d = $EPOCHREALTIME - $t0; print(f'h1 -> $peer ($how): a $MIB MiB file in {d:.2f} s ({$MIB * 1.048576 / d:.0f} MB/s)')"
        cmp "$W/file.bin" "$W/$peer/received/file.bin"
    done
    stop_all
    trap - EXIT
}

case "$MODE" in
    direct | relayed) run "$MODE" ;;
    messages) messages ;;
    both) run direct; run relayed ;;
    *) echo "usage: $0 [direct|relayed|both|messages] [BIN DIR]" >&2; exit 2 ;;
esac
