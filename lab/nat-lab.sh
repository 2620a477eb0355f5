#!/usr/bin/env bash
# The NAT lab: network namespaces with veth links, as root.
#
#   bd-inet  the "internet": a bridge, 198.51.100.0/24 (TEST-NET-2, never routed outside)
#   bd-pub   a public host: 198.51.100.10 (bootstrap node and relay)
#   bd-r1    NAT router, endpoint-independent (port-preserving SNAT): 198.51.100.21 / 10.1.0.1
#   bd-h1    behind bd-r1: 10.1.0.10
#   bd-r2    NAT router, endpoint-independent: 198.51.100.22 / 10.2.0.1
#   bd-h2    behind bd-r2: 10.2.0.10
#   bd-r3    NAT router, symmetric (random source port per connection): 198.51.100.23 / 10.3.0.1
#   bd-h3    behind bd-r3: 10.3.0.10
#   bd-r4    NAT router, endpoint-independent: 198.51.100.24 / 10.4.0.1;  bd-h4 behind it: 10.4.0.10
#   bd-r5    NAT router, symmetric: 198.51.100.25 / 10.5.0.1;              bd-h5 behind it: 10.5.0.10
#
# Private hosts reach the internet only through their router; nothing is routed to the machine's own
# network: the namespaces have no link to the root namespace.
#
#   bd-pub2  a second public host: 198.51.100.11 (a second relay)
#
# Faults, on a NAT router's internet link:
#   loss NS PERCENT      drops PERCENT% of the packets crossing router NS, both ways (nftables numgen)
#   delay NS MS [BIN]    delays every packet coming in from the internet by MS milliseconds (user space:
#                        BIN, default target/debug/lab-delay, on an NFQUEUE; the kernel has no netem)
#   cut NS / restore NS  takes the router's internet link down / brings it back and clears loss and delay
#
# usage: nat-lab.sh up | down | exec NS CMD... | loss NS PERCENT | delay NS MS [BIN] | cut NS | restore NS
set -euo pipefail

NSS=(bd-inet bd-pub bd-pub2 bd-r1 bd-h1 bd-r2 bd-h2 bd-r3 bd-h3 bd-r4 bd-h4 bd-r5 bd-h5)
RUN=/run/bitdust-lab

undelay() { # undelay NS
    if [ -f "$RUN/delay-$1.pid" ]; then kill "$(cat "$RUN/delay-$1.pid")" 2>/dev/null || true; rm -f "$RUN/delay-$1.pid"; fi
    ip netns exec "$1" iptables -t mangle -F PREROUTING 2>/dev/null || true
}

down() {
    for ns in "${NSS[@]}"; do
        [[ $ns == bd-r* ]] && undelay "$ns"
        ip netns del "$ns" 2>/dev/null || true
    done
}

delay() { # delay NS MS [BIN]
    local bin=${3:-$(dirname "$0")/../target/debug/lab-delay}
    undelay "$1"
    mkdir -p "$RUN"
    ip netns exec "$1" "$bin" 0 "$2" &
    echo $! >"$RUN/delay-$1.pid"
    ip netns exec "$1" iptables -t mangle -A PREROUTING -i wan -j NFQUEUE --queue-num 0 --queue-bypass
}

link() { # link NS_A IF_A NS_B IF_B
    ip link add "$2" netns "$1" type veth peer name "$4" netns "$3"
    ip -n "$1" link set "$2" up
    ip -n "$3" link set "$4" up
}

router() { # router N PUBLIC_IP MODE
    local n=$1 pub=$2 mode=$3
    link "bd-r$n" wan bd-inet "r$n"
    ip -n bd-inet link set "r$n" master br0
    ip -n "bd-r$n" addr add "$pub/24" dev wan
    link "bd-r$n" lan "bd-h$n" eth0
    ip -n "bd-r$n" addr add "10.$n.0.1/24" dev lan
    ip -n "bd-h$n" addr add "10.$n.0.10/24" dev eth0
    ip -n "bd-h$n" route add default via "10.$n.0.1"
    ip netns exec "bd-r$n" sysctl -qw net.ipv4.ip_forward=1
    local snat="snat to $pub"
    [ "$mode" = symmetric ] && snat="snat to $pub random"
    ip netns exec "bd-r$n" nft -f - <<NFT
table ip nat {
    chain postrouting { type nat hook postrouting priority srcnat; oifname "wan" $snat; }
}
table ip filter {
    # Like a home router: unsolicited packets from the internet are dropped, not answered with a TCP reset or
    # ICMP port unreachable (an answer would also leave a conntrack entry that steals the mapped port).
    chain input {
        type filter hook input priority filter; policy drop;
        iifname != "wan" accept
        ct state established,related accept
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        iifname "lan" accept
        ct state established,related accept
    }
    chain faults { type filter hook prerouting priority -300; }
}
NFT
}

up() {
    down
    for ns in "${NSS[@]}"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
    ip -n bd-inet link add br0 type bridge
    ip -n bd-inet link set br0 up
    link bd-pub eth0 bd-inet pub
    ip -n bd-inet link set pub master br0
    ip -n bd-pub addr add 198.51.100.10/24 dev eth0
    link bd-pub2 eth0 bd-inet pub2
    ip -n bd-inet link set pub2 master br0
    ip -n bd-pub2 addr add 198.51.100.11/24 dev eth0
    router 1 198.51.100.21 eim
    router 2 198.51.100.22 eim
    router 3 198.51.100.23 symmetric
    router 4 198.51.100.24 eim
    router 5 198.51.100.25 symmetric
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    exec) shift; ns=$1; shift; exec ip netns exec "$ns" "$@" ;;
    loss) ip netns exec "$2" nft add rule ip filter faults numgen random mod 100 \< "$3" drop ;;
    delay) delay "$2" "$3" "${4:-}" ;;
    cut) ip -n "$2" link set wan down ;;
    restore) ip -n "$2" link set wan up; ip netns exec "$2" nft flush chain ip filter faults; undelay "$2" ;;
    *) echo "usage: $0 up|down|exec NS CMD...|loss NS PERCENT|delay NS MS [BIN]|cut NS|restore NS" >&2; exit 2 ;;
esac
