//! The relay keeper: drives the `relay_connection` automaton of `bitdust_core::automata`.
//!
//! It feeds the automaton what the swarm reports (AutoNAT reachability, reservations accepted and lost) and a
//! tick each second, and performs its actions: collect candidate relays (configured ones first, then providers
//! of the relay service in the DHT, each reached at a direct address from its signed identity) and ask one
//! for a reservation. The automaton is published in the node's registry as `relay_connection`.

use std::collections::VecDeque;
use std::sync::Weak;
use std::time::Duration;

use bitdust_core::automata::relay_connection::{self as fsm, Action, Candidate, Event, RelayConnection};
use bitdust_core::record;
use libp2p::{Multiaddr, PeerId};

use crate::automata::{now_ms, AutomatonInfo};
use crate::node::Node;

/// How often the automaton's timers are checked.
const TICK: Duration = Duration::from_secs(1);
/// At most this many DHT relay providers are looked up per search.
const MAX_DHT_CANDIDATES: usize = 8;

/// Runs until the node is dropped.
pub(crate) async fn run(node: Weak<Node>) {
    let Some(n) = node.upgrade() else { return };
    let mut reachability = n.network().reachability();
    let mut relays = n.network().relays();
    let configured: Vec<Candidate> = n
        .config()
        .nat
        .relays
        .iter()
        .filter_map(|a| {
            let addr: Multiaddr = a.parse().ok()?;
            Some(Candidate { peer: bitdust_net::peer_of(&addr)?.to_string(), addr: a.clone() })
        })
        .collect();
    let mut automaton = RelayConnection::new(fsm::Timings::DEFAULT, now_ms());
    let mut held: Vec<PeerId> = Vec::new();
    drop(n);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            r = reachability.changed() => if r.is_err() { return },
            r = relays.changed() => if r.is_err() { return },
            _ = tick.tick() => {}
        }
        let Some(n) = node.upgrade() else { return };
        let mut events = VecDeque::new();
        let now: Vec<PeerId> = relays.borrow_and_update().clone();
        events.extend(now.iter().filter(|p| !held.contains(p)).map(|p| Event::Accepted(p.to_string())));
        events.extend(held.iter().filter(|p| !now.contains(p)).map(|p| Event::Lost(p.to_string())));
        held = now;
        let private = reachability.borrow_and_update().as_str() == "private";
        events.push_back(Event::Needed(!configured.is_empty() || private));
        events.push_back(Event::Tick);
        while let Some(event) = events.pop_front() {
            for action in automaton.handle(event, now_ms()) {
                match action {
                    Action::Find => events.push_back(Event::Candidates(candidates(&n, &configured).await)),
                    Action::Reserve(c) => match c.addr.parse::<Multiaddr>() {
                        Ok(addr) => {
                            tracing::info!(relay = %c.peer, %addr, "asking relay for a reservation");
                            if n.network().use_relay(addr).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(addr = %c.addr, error = %e, "bad relay address"),
                    },
                }
            }
        }
        let relay = match &automaton.state {
            fsm::State::Reserving(p) | fsm::State::Reserved(p) => Some(p.clone()),
            _ => None,
        };
        n.registry().set(AutomatonInfo {
            name: fsm::NAME.into(),
            kind: fsm::NAME.into(),
            state: automaton.state.name().into(),
            since_unix_ms: automaton.since_ms,
            details: serde_json::json!({
                "relay": relay,
                "needed": automaton.needed,
                "skipped": automaton.skipped.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                "last": automaton.last,
            }),
        });
    }
}

/// Configured relays, then relay service providers from the DHT (at most [`MAX_DHT_CANDIDATES`]), each with a
/// direct (not relayed) address.
async fn candidates(node: &Node, configured: &[Candidate]) -> Vec<Candidate> {
    let mut out = configured.to_vec();
    let me = node.peer_id();
    let providers = node.network().get_providers(record::RELAYS_SERVICE_KEY.to_vec()).await.unwrap_or_default();
    tracing::debug!(providers = providers.len(), "relay providers in the DHT");
    for relay in providers.into_iter().filter(|p| *p != me).take(MAX_DHT_CANDIDATES) {
        if out.iter().any(|c| c.peer == relay.to_string()) {
            continue;
        }
        let Ok(id) = node.lookup_identity(relay).await else { continue };
        let direct = id
            .identity
            .addresses
            .iter()
            .filter_map(|a| a.parse::<Multiaddr>().ok())
            .find(|a| !bitdust_net::is_relayed(a));
        if let Some(addr) = direct {
            out.push(Candidate { peer: relay.to_string(), addr: addr.to_string() });
        }
    }
    tracing::debug!(candidates = ?out.iter().map(|c| &c.addr).collect::<Vec<_>>(), "relay candidates");
    out
}
