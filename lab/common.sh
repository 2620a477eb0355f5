# Helpers shared by the lab scripts (sourced, bash). The caller sets B (the bitdust binary), L (nat-lab.sh) and
# W (a work folder); each node NAME has its home in $W/NAME and runs in namespace bd-NAME.

# wait_for SECONDS CMD...: retries CMD every 0.2 s until it succeeds
wait_for() {
    local deadline=$((SECONDS + $1)); shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { echo "timed out: $*" >&2; return 1; }
        sleep 0.2
    done
}
# bd NAME ARGS...: runs the CLI against node NAME, in its namespace
bd() { local h=$1; shift; "$L" exec "bd-$h" "$B" --home "$W/$h" "$@"; }
# json NAME EXPR / check NAME EXPR / assert NAME EXPR: a Python expression over `s`, NAME's status as JSON
json() { bd "$1" --json status | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
check() { bd "$1" --json status | python3 -c "import json,sys; s=json.load(sys.stdin); sys.exit(0 if $2 else 1)"; }
assert() { check "$@" || { echo "failed on $1: $2" >&2; bd "$1" status >&2; exit 1; }; }
# timed LABEL CMD...: runs CMD quietly and prints its wall time
timed() {
    local label=$1 t0=$EPOCHREALTIME; shift
    "$@" >/dev/null
    python3 -c "print(f'{\"$label\":<46} {$EPOCHREALTIME - $t0:7.2f} s')"
}
# start_public NAME IP ARGS...: a public daemon listening on IP:4001 (TCP and QUIC)
start_public() {
    local h=$1 ip=$2; shift 2
    bd "$h" init --nickname "lab-$h" >/dev/null
    "$L" exec "bd-$h" "$B" --home "$W/$h" daemon --listen "/ip4/$ip/tcp/4001" --listen "/ip4/$ip/udp/4001/quic-v1" \
        "$@" >"$W/$h.log" 2>&1 &
    wait_for 30 bd "$h" status
}
# start_private NAME ARGS...: a daemon behind its NAT, bootstrapped by $PUB and $PUBQ (only $PUB if TCP_ONLY is
# set: then relayed connections ride TCP), reserving a slot on $PUB
start_private() {
    local h=$1; shift
    local boot=(--bootstrap "$PUB" --bootstrap "$PUBQ")
    [ "${TCP_ONLY:-}" ] && boot=(--bootstrap "$PUB")
    [ -d "$W/$h" ] || bd "$h" init --nickname "lab-$h" >/dev/null
    "$L" exec "bd-$h" "$B" --home "$W/$h" daemon --listen /ip4/0.0.0.0/tcp/4001 --listen /ip4/0.0.0.0/udp/4001/quic-v1 \
        "${boot[@]}" --use-relay "$PUB" "$@" >"$W/$h.log" 2>&1 &
}
# stop_all: stops every daemon of $W, tears the lab down, removes $W unless KEEP_LOGS is set
stop_all() {
    for pid in "$W"/*/daemon.pid; do [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true; done
    sleep 0.5
    "$L" down
    if [ "${KEEP_LOGS:-}" ]; then echo "logs kept in $W"; else rm -rf "$W"; fi
}
