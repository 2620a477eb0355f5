#!/usr/bin/env bash
# Fuzzes what peers and disks hand a node (issue 14, item 12): storage protocol messages, fragments, a lying
# supplier's fragments through the block decoder, sealed catalogs, identities and DHT records. Not part of CI (the
# property tests are): run it by hand, e.g. before a release.
#
#   bash lab/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     # default 60 s each, every target
#
# Uses cargo-fuzz (libFuzzer, coverage-guided), installed from crates.io if missing. cargo-fuzz wants a nightly
# compiler for its -Z flags; with only a stable toolchain, RUSTC_BOOTSTRAP=1 lets stable rustc take them, and no
# sanitizer is used (ASan needs nightly's runtime): Rust code is memory-safe, so the fuzzer looks for panics,
# aborts, hangs, and broken properties (asserts in the targets). Prints per target the executions run, the corpus
# size, and what it found; crashes are kept under fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(wire fragment block catalog identity record)
fi

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

export RUSTC_BOOTSTRAP=1
report=()
status=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t/last-run.log"
    echo "== $t: ${secs} s" >&2
    if cargo fuzz run --sanitizer none --release "$t" -- \
        -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1; then
        found="nothing"
    else
        found="FOUND: $(grep -m1 -E 'panicked|ERROR|deadly signal|timeout' "$log" || echo 'see log') (artifact in fuzz/artifacts/$t)"
        status=1
    fi
    execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    report+=("$(printf '%-9s %12s executions  %6s corpus inputs  %s' "$t" "${execs:-?}" "$corpus" "$found")")
done
printf '%s\n' "${report[@]}"
exit $status
