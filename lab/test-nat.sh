#!/usr/bin/env bash
# The NAT lab's tests (root; iproute2, nftables, iptables). One lab (lab/nat-lab.sh), five daemons:
#   pub   public, bootstrap node and relay          pub2  public, a second relay
#   h1    customer behind an endpoint-independent NAT
#   h2    supplier behind another endpoint-independent NAT
#   h3    supplier behind a symmetric NAT
# Checks, in order:
#   1. the customer backs up to both suppliers and restores byte for byte;
#   2. h1-h2 becomes a direct connection (hole punching, DCUtR); h1-h3 stays relayed;
#   3. h2's internet link is cut for CUT_SECS mid-upload and restored: the backup completes, restores exactly,
#      and no half-written fragment is left on the supplier;
#   3b. h1 and h3 (symmetric NAT: relayed) chat, and h1 sends h3 a 100 MiB file; h3's link is cut for CUT_SECS
#      mid-transfer; the download resumes where it stopped and the file arrives byte for byte;
#   4. 5% loss both ways and 100 ms latency on the customer's link: backup and restore complete;
#   5. the relay in use is stopped: every private node moves to pub2, and backup/restore work again.
#   6. no packet leaves the lab: no lab interface in the machine's namespace, no route out of a lab host.
# Prints the timings of each transfer. Tears the lab down on exit, also after a failure.
# usage: lab/test-nat.sh [DIR WITH bitdust AND lab-delay]
# env: LAB_MIB (default 8), LOSSY_MIB (default 2: the size sent under loss and latency), CUT_SECS (default 8),
#      KEEP_LOGS (keep the daemons' logs)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug}")
B=$BIN/bitdust
L=$(realpath lab/nat-lab.sh)
MIB=${LAB_MIB:-8}
W=$(mktemp -d /tmp/bitdust-nat-lab.XXXXXX)
source lab/common.sh
# the daemons' logs also carry the messages wing's (3b checks that a download resumed)
export BITDUST_LOG=${BITDUST_LOG:-warn,bitdust=info,bitdust_messages=info}
trap stop_all EXIT
"$L" up
step() { echo "--- $*"; }

start_public pub 198.51.100.10 --relay
PUB=$(json pub "[a for a in s['listen_addrs'] if '/tcp/' in a][0]")
PUBQ=$(json pub "[a for a in s['listen_addrs'] if '/quic-v1' in a][0]")
PUB_ID=$(json pub "s['peer_id']")
start_public pub2 198.51.100.11 --bootstrap "$PUB" --relay
wait_for 30 check pub2 "s['announced']"
PUB2_ID=$(json pub2 "s['peer_id']")
bd h1 init --nickname lab-h1 >/dev/null
sed -i 's/^suppliers = .*/suppliers = 2/; s/^needed_bytes = .*/needed_bytes = 4294967296/' "$W/h1/config.toml"
for h in h2 h3; do start_private "$h" --supplier --donate 20G; done
start_private h1
for h in h1 h2 h3; do wait_for 60 check "$h" "s['relays'] and s['announced']"; done
H2_ID=$(json h2 "s['peer_id']")
H3_ID=$(json h3 "s['peer_id']")
head -c $((MIB << 20)) /dev/urandom >"$W/data.bin"
head -c $((96 << 20)) /dev/urandom >"$W/big.bin"
backup_restore() { # backup_restore LABEL: backs up data.bin, restores it, compares
    rm -rf "$W/out"
    timed "$1: backup $MIB MiB" bd h1 backup "$W/data.bin"
    timed "$1: restore $MIB MiB" bd h1 restore data.bin --to "$W/out"
    cmp "$W/data.bin" "$W/out/data.bin"
}

step "1. customer behind NAT, suppliers behind other NATs"
backup_restore "across NATs"

step "2. hole punching: direct between EIM NATs, relayed with the symmetric NAT"
wait_for 30 check h1 "any(c['peer_id'] == '$H2_ID' and not c['relayed'] for c in s['connections'])"
assert h1 "any(c['peer_id'] == '$H3_ID' for c in s['connections'])"
assert h1 "not any(c['peer_id'] == '$H3_ID' and not c['relayed'] for c in s['connections'])"
bd h1 status | sed -n '/^nat/,$p'

step "3. 96 MiB backup, h2's link cut for ${CUT_SECS:-8} s mid-upload"
used() { du -sb "$W/h2/store/fragments" 2>/dev/null | cut -f1; }
before=$(used)
bd h1 backup "$W/big.bin" >"$W/cut-backup.log" 2>&1 &
backup=$!
grew() { [ "$(used)" -gt "$before" ]; }
wait_for 60 grew
"$L" cut bd-r2
t0=$SECONDS
sleep "${CUT_SECS:-8}" # the outage itself (the one fixed wait in this script)
"$L" restore bd-r2
wait "$backup" || { cat "$W/cut-backup.log"; exit 1; }
echo "backup survived the cut ($((SECONDS - t0)) s from cut to completion): $(tail -1 "$W/cut-backup.log")"
if find "$W/h2/store" -name '.*.tmp-*' | grep -q .; then echo "half-written fragment left" >&2; exit 1; fi
rm -rf "$W/out"
bd h1 restore big.bin --to "$W/out" >/dev/null
cmp "$W/big.bin" "$W/out/big.bin"

step "3b. chat and a 100 MiB file between h1 and h3 (symmetric NAT: relayed), h3's link cut mid-transfer"
bd h1 contacts add lab-h3 --name h3 >/dev/null
bd h3 contacts add lab-h1 --name h1 >/dev/null
bd h1 msg send h3 "hello through two NATs" | grep -q delivered
bd h3 msg send h1 "hello back" | grep -q delivered
t0=$EPOCHREALTIME
for i in $(seq 1 20); do bd h1 msg send h3 "relayed $i" | grep -q delivered; done
python3 -c "print(f'{\"20 messages h1 -> h3, one after the other\":<46} {($EPOCHREALTIME - $t0) / 20 * 1000:7.1f} ms each (CLI start included)')"
bd h3 msg history h1 --limit 30 | grep -q "h1: relayed 20"
CANARY=canary-3e1f7a9c-5b2d-4c8e-9f60-a1b2c3d4e5f6
{ head -c $((50 << 20)) /dev/urandom; printf %s "$CANARY"; head -c $((50 << 20)) /dev/urandom; } >"$W/file100.bin"
file_state() { bd h3 --json msg history h1 --limit 5 | python3 -c "import json,sys; m=[x for x in json.load(sys.stdin)['messages'] if x.get('file')]; print(m[-1]['file']['state'] if m else 'none')"; }
received_bytes() { bd h3 --json msg history h1 --limit 5 | python3 -c "import json,sys; m=[x for x in json.load(sys.stdin)['messages'] if x.get('file')]; print(m[-1]['file']['received_bytes'] if m else 0)"; }
part_grew() { [ "$(cat "$W"/h3/received/.*.part 2>/dev/null | wc -c)" -gt $((8 << 20)) ]; }
t0=$EPOCHREALTIME
bd h1 msg send h3 --file "$W/file100.bin" | grep -q offered
# (seen once in CI: no byte arrived in 120 s; what both sides said is printed if it happens again)
wait_for 120 part_grew || {
    echo "the download did not start: h3 says the file is $(file_state)" >&2
    tail -30 "$W/h3.log" >&2; tail -30 "$W/h1.log" >&2; exit 1
}
"$L" cut bd-r3
cut_at=$(cat "$W"/h3/received/.*.part | wc -c)
sleep "${CUT_SECS:-8}" # the outage itself
"$L" restore bd-r3
is_received() { [ "$(file_state)" = received ]; }
wait_for 300 is_received || { file_state; tail -20 "$W/h3.log"; exit 1; }
cmp "$W/file100.bin" "$W/h3/received/file100.bin"
python3 -c "print(f'{\"100 MiB file h1 -> h3 (relayed), cut at $((cut_at >> 20)) MiB\":<46} {$EPOCHREALTIME - $t0:7.2f} s with the ${CUT_SECS:-8} s outage')"
# either a request failed and the download went on from where it stopped, or its requests waited out the cut
if grep -Eq "download resumed after the link came back|resuming a download" "$W/h3.log"; then
    echo "the download resumed where it stopped after the link came back"
else
    echo "the download's requests waited out the cut"
fi
# the relay never held the file's bytes in a file (and the connection through it is end-to-end encrypted); the
# check finds the canary where it is
if grep -rqF "$CANARY" "$W/pub" "$W/pub2" "$W/h2" 2>/dev/null; then echo "a relay or another node holds the file's bytes" >&2; exit 1; fi
grep -qF "$CANARY" "$W/h3/received/file100.bin"

step "4. 5% loss and 100 ms latency on the customer's link"
"$L" loss bd-r1 5
"$L" delay bd-r1 100 "$BIN/lab-delay"
MIB=${LOSSY_MIB:-2}
head -c $((MIB << 20)) /dev/urandom >"$W/data.bin"
backup_restore "5% loss + 100 ms"
"$L" restore bd-r1

step "5. the relay in use stops: nodes move to the other relay"
kill "$(cat "$W/pub/daemon.pid")"
for h in h1 h2 h3; do wait_for 90 check "$h" "s['relays'] == ['$PUB2_ID']"; done
assert h1 "'$PUB_ID' not in s['relays']"
backup_restore "through the second relay"
bd h1 automata | grep relay_connection

step "6. nothing leaves the lab"
# The lab's namespaces have no link to this machine's own network: the root namespace has none of the lab's
# interfaces, and a lab host has no route to anything outside the lab's addresses.
if ip -o link show | grep -E ': (br0|pub2?|r[1-5])[@:]' ; then echo "a lab interface is in the root namespace" >&2; exit 1; fi
for ns in bd-h1 bd-r1 bd-pub; do
    "$L" exec "$ns" python3 -c "
import socket, sys
for dst in ['192.0.2.1', '8.8.8.8', '10.0.2.2']:
    try:
        socket.create_connection((dst, 80), timeout=2)
    except OSError as e:
        if 'unreachable' not in str(e).lower() and not isinstance(e, TimeoutError): sys.exit(f'{dst}: {e}')
    else:
        sys.exit(f'$ns reached {dst} outside the lab')
"
done

echo "nat lab: all checks passed"
