//! The storage wing's background upkeep, beside answering requests ([`super::supplier`]): the scrub that finds bit
//! rot in the supplier's store, the republishing of the records it holds for its customers, and telling the
//! network which peers this node has contracts with.

use std::sync::Weak;
use std::time::Duration;

use bitdust_node::Node;

use crate::service::store::FragmentStore;
use crate::service::Storage;

/// How often the network is told again which peers this node has contracts with.
const PRIORITY_REFRESH: Duration = Duration::from_secs(30);

/// Tells the network, at start and every [`PRIORITY_REFRESH`], which peers this node has contracts with (its
/// suppliers, and its customers when it is a supplier), so that its DHT store keeps their records whatever
/// strangers put there ([`bitdust_net::DhtLimits`]).
pub(crate) async fn priority_peers(storage: Weak<Storage>) {
    loop {
        let Some(s) = storage.upgrade() else { return };
        if s.node.network().is_stopped() {
            return;
        }
        let mut peers = std::collections::HashSet::new();
        if let Ok(slots) = s.suppliers() {
            peers.extend(slots.iter().filter_map(|slot| libp2p::PeerId::from_bytes(&slot.peer_id).ok()));
        }
        if let Some(store) = s.store.clone() {
            if let Ok(Ok(usage)) = tokio::task::spawn_blocking(move || store.usage()).await {
                peers.extend(usage.iter().filter_map(|u| u.customer.parse::<libp2p::PeerId>().ok()));
            }
        }
        let _ = s.node.network().set_priority_peers("storage", peers).await;
        drop(s);
        tokio::time::sleep(PRIORITY_REFRESH).await;
    }
}

/// Scrubs the store in the background: every fragment re-read and checked against its header's hash once per
/// `period` (the pass spread evenly over it, one fragment at a time, so the disk load is bounded: a 1 TB store on
/// a 7-day period reads about 1.7 MB/s). Damaged fragments are dropped, which the owners' audits and sweeps then
/// find and rebuild (see [`FragmentStore::scrub`]).
///
/// Holds the store only while it works on it (a weak handle in between), so that a stopped node's store is closed
/// at once and can be opened again by a restart in the same process.
pub(crate) async fn scrub(node: Weak<Node>, store: Weak<FragmentStore>, period: Duration) {
    let period = period.max(Duration::from_secs(1));
    loop {
        if node.upgrade().is_none_or(|n| n.network().is_stopped()) {
            return;
        }
        let Some(s) = store.upgrade() else { return };
        let all = match tokio::task::spawn_blocking(move || s.all_fragments()).await {
            Ok(Ok(all)) => all,
            _ => Vec::new(),
        };
        if all.is_empty() {
            tokio::time::sleep(period.min(Duration::from_secs(10))).await;
            continue;
        }
        let pause = period / u32::try_from(all.len()).unwrap_or(u32::MAX);
        let (mut damaged, started) = (0usize, std::time::Instant::now());
        for (owner, id) in all {
            if node.upgrade().is_none_or(|n| n.network().is_stopped()) {
                return;
            }
            let Some(s) = store.upgrade() else { return };
            match tokio::task::spawn_blocking(move || s.scrub(&owner, &id)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => damaged += 1,
                Ok(Err(e)) => tracing::warn!(%owner, error = %e, "scrub cannot read a fragment"),
                Err(_) => {}
            }
            tokio::time::sleep(pause).await;
        }
        tracing::info!(damaged, seconds = started.elapsed().as_secs(), "scrub pass done");
    }
}

/// Frees the space of contracts that ended (expired unrenewed, or cancelled by their customer) more than `grace`
/// ago ([`FragmentStore::free_ended`]), checking every quarter of the grace period (at least every second, at most
/// every 10 minutes).
pub(crate) async fn free_ended(node: Weak<Node>, store: Weak<FragmentStore>, grace: Duration) {
    let every = (grace / 4).clamp(Duration::from_secs(1), Duration::from_secs(600));
    loop {
        if node.upgrade().is_none_or(|n| n.network().is_stopped()) {
            return;
        }
        let Some(s) = store.upgrade() else { return };
        let now = bitdust_node::home::unix_now();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.free_ended(now)).await {
            tracing::warn!(error = %e, "cannot free the space of ended contracts");
        }
        tokio::time::sleep(every).await;
    }
}

/// Publishes the records held for customers ([`FragmentStore::hold_record`]) to the DHT once the node has announced
/// itself, then again every half record lifetime (at most every `announce_interval_secs`): a customer's identity
/// and supplier list stay findable after the whole network restarted or while the customer stays away past
/// the records' lifetime (Kademlia stores keep records in memory and expire them).
pub(crate) async fn republish(node: Weak<Node>, store: Weak<FragmentStore>) {
    loop {
        let Some(n) = node.upgrade() else { return };
        if n.network().is_stopped() {
            return;
        }
        let config = n.config();
        let every = Duration::from_secs((config.record_ttl_secs / 2).clamp(1, config.announce_interval_secs.max(1)));
        if !n.is_announced() {
            drop(n);
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        let Some(s) = store.upgrade() else { return };
        let records = tokio::task::spawn_blocking(move || s.held_records()).await;
        match records {
            Ok(Ok(records)) => {
                let mut published = 0;
                for r in records {
                    match n.network().put_record(r).await {
                        Ok(()) => published += 1,
                        Err(e) => tracing::debug!(error = %e, "could not republish a customer's record"),
                    }
                }
                if published > 0 {
                    tracing::debug!(published, "republished customers' records");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the held records"),
            Err(e) => tracing::warn!(error = %e, "cannot read the held records"),
        }
        drop(n);
        tokio::time::sleep(every).await;
    }
}
