#!/usr/bin/env bash
# Where the CPU of one upload and one restore goes: the customer daemon against its suppliers.
#
#   bash bench/cpu-split.sh [SIZE_MIB=1024] [SUPPLIERS=10] [DATA_SHARDS=3] [TRANSPORTS=both|tcp|quic]
#                           [FORMAT=incremental|whole]
#
# FORMAT: the default incremental backups (catalog format 2) or whole-tree ones (format 1, devnet --no-incremental).
# Starts `bitdust devnet` (one process per node on 127.0.0.1), backs up SIZE_MIB of random bytes, restores them,
# checks the bytes, and prints wall time and the user / system CPU seconds of the customer (alice) and of all
# suppliers together, read from /proc/<pid>/stat around each step.
set -euo pipefail
MIB=${1:-1024}; SUPPLIERS=${2:-10}; K=${3:-3}; TRANSPORTS=${4:-both}; FORMAT=${5:-incremental}
case "$FORMAT" in incremental) FLAG=() ;; whole) FLAG=(--no-incremental) ;; *) echo "FORMAT: incremental or whole" >&2; exit 2 ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --locked -p bitdust --manifest-path "$ROOT/Cargo.toml" >&2
BIN="$ROOT/target/release/bitdust"
WORK=$(mktemp -d /tmp/bitdust-cpu-split-XXXXXX)
trap 'kill "$DEVNET" 2>/dev/null; wait "$DEVNET" 2>/dev/null; rm -rf "$WORK"' EXIT
head -c "${MIB}M" /dev/urandom > "$WORK/data.bin"
"$BIN" devnet --dir "$WORK/net" --suppliers "$SUPPLIERS" --data-shards "$K" --spares 0 --transports "$TRANSPORTS" "${FLAG[@]}" > "$WORK/devnet.out" 2> "$WORK/devnet.log" &
DEVNET=$!
until grep -q "press Ctrl-C" "$WORK/devnet.out"; do
    kill -0 "$DEVNET" 2>/dev/null || { tail -3 "$WORK/devnet.log" >&2; exit 1; }
    sleep 0.2
done
cpu() {  # name user_s system_s, per daemon
    for d in "$WORK"/net/*/; do
        awk -v n="$(basename "$d")" '{print n, $14 / 100, $15 / 100}' "/proc/$(cat "$d/daemon.pid")/stat"
    done
}
cpu > "$WORK/c0"; t0=$(date +%s.%N)
"$BIN" --home "$WORK/net/alice" backup "$WORK/data.bin" > /dev/null
t1=$(date +%s.%N); cpu > "$WORK/c1"
"$BIN" --home "$WORK/net/alice" restore data.bin --to "$WORK/out" > /dev/null
t2=$(date +%s.%N); cpu > "$WORK/c2"
cmp "$WORK/data.bin" "$WORK/out/data.bin"
python3 - "$WORK" "$MIB" "$t0" "$t1" "$t2" <<'PY'
import sys
work, mib, t0, t1, t2 = sys.argv[1], int(sys.argv[2]), *map(float, sys.argv[3:])
load = lambda f: {l.split()[0]: tuple(map(float, l.split()[1:])) for l in open(f"{work}/{f}")}
c = [load("c0"), load("c1"), load("c2")]
for step, (a, b, wall) in (("upload", (c[0], c[1], t1 - t0)), ("restore", (c[1], c[2], t2 - t1))):
    d = lambda who, i: sum(b[k][i] - a[k][i] for k in b if who(k))
    cu, cs = d(lambda k: k == "alice", 0), d(lambda k: k == "alice", 1)
    su, ss = d(lambda k: k.startswith("supplier"), 0), d(lambda k: k.startswith("supplier"), 1)
    print(f"{step}: {wall:.2f} s ({mib * 1.048576 / wall:.0f} MB/s); CPU s customer {cu:.2f} user + {cs:.2f} system, "
          f"suppliers {su:.2f} user + {ss:.2f} system; {(cu + cs + su + ss) / wall:.2f} cores busy")
PY
