//! Relay listeners (listening through a relay once connected to it, forgetting a relay that is gone) and the
//! addresses we publish.

use std::collections::HashSet;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::Driver;
use crate::addresses::{advertised, peer_of};

impl Driver {
    pub(super) fn listen_via(&mut self, relay: Multiaddr) {
        match self.swarm.listen_on(relay.clone().with(Protocol::P2pCircuit)) {
            Ok(id) => {
                if let Some(old) = peer_of(&relay).and_then(|p| self.relay_listeners.insert(p, id)) {
                    self.swarm.remove_listener(old);
                }
            }
            Err(e) => tracing::warn!(%relay, error = %e, "cannot listen through relay"),
        }
    }

    /// Forgets a relay whose reservation is gone, and the listener through it.
    pub(super) fn relay_lost(&mut self, relay: PeerId) {
        if let Some(id) = self.relay_listeners.remove(&relay) {
            self.swarm.remove_listener(id);
        }
        if self.relays.remove(&relay) {
            tracing::info!(%relay, "relay reservation lost");
            self.publish_relays();
        }
    }

    /// Publishes the listen addresses (the watch behind [`Network::addresses`]) and keeps the swarm's external
    /// addresses equal to the advertised ones. Kademlia puts our external addresses into the provider records
    /// we announce; a provider record without addresses is only handed out by a holder that has us in its
    /// routing table, so without this most nickname and service lookups in a large network came back empty.
    /// External addresses confirmed by someone else (AutoNAT) are left alone.
    pub(super) fn publish_addresses(&mut self) {
        let listening: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        let wanted: HashSet<Multiaddr> = advertised(&listening).into_iter().collect();
        for gone in self.own_external.difference(&wanted).cloned().collect::<Vec<_>>() {
            self.swarm.remove_external_address(&gone);
            self.own_external.remove(&gone);
        }
        for addr in wanted {
            if self.own_external.insert(addr.clone()) {
                self.swarm.add_external_address(addr);
            }
        }
        self.addresses.send_replace(listening);
    }

    pub(super) fn publish_relays(&self) {
        let mut relays: Vec<PeerId> = self.relays.iter().copied().collect();
        relays.sort();
        self.relays_watch.send_replace(relays);
    }
}
