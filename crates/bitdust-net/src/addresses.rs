//! Address helpers: which of our addresses to give to peers, and what an address says about itself.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// The addresses worth giving to other peers: without loopback ones when there is anything else (a node that
/// listens on all interfaces also listens on 127.0.0.1, and a remote peer dialing that reaches itself, which
/// makes libp2p abandon the whole dial with "unexpected peer id"). Nodes that have only loopback addresses (a
/// devnet on one machine) keep them. Unspecified addresses (0.0.0.0, ::) are never dialable.
pub fn advertised(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    let ip = |a: &Multiaddr| {
        a.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        })
    };
    let loopback = |a: &Multiaddr| ip(a).is_some_and(|ip| ip.is_loopback());
    let usable: Vec<Multiaddr> =
        addrs.iter().filter(|a| !ip(a).is_some_and(|ip| ip.is_unspecified())).cloned().collect();
    if usable.iter().all(&loopback) {
        return usable;
    }
    usable.into_iter().filter(|a| !loopback(a)).collect()
}

/// Whether an address goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// Whether `addr` is a libp2p memory-transport address (`/memory/<port>`), used by in-process networks.
pub fn is_memory(addr: &Multiaddr) -> bool {
    matches!(addr.iter().next(), Some(Protocol::Memory(_)))
}

/// The peer id at the end of a multiaddr (`.../p2p/<id>`).
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().expect("test address")).collect()
    }

    #[test]
    fn loopback_is_advertised_only_when_there_is_nothing_else() {
        let all = addrs(&[
            "/ip4/127.0.0.1/udp/4001/quic-v1",
            "/ip4/10.1.0.10/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip4/198.51.100.10/tcp/4001/p2p/12D3KooWEx9UhvHT9RhTPppGKfySRibbLGTrfTytDom5rLhJxVUs/p2p-circuit",
            "/ip4/0.0.0.0/tcp/4001",
        ]);
        assert_eq!(advertised(&all), vec![all[1].clone(), all[3].clone()]);
        let devnet = addrs(&["/ip4/127.0.0.1/tcp/4001", "/ip4/0.0.0.0/tcp/4002"]);
        assert_eq!(advertised(&devnet), vec![devnet[0].clone()]);
        assert!(advertised(&[]).is_empty());
    }
}
