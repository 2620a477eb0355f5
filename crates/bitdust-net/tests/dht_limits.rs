//! The DHT store's limits, attacked through the real Kademlia protocol over TCP: strangers with throwaway keys
//! trying to fill a node's store, and the peers it has contracts with still getting in.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bitdust_core::keys::NodeKeys;
use bitdust_core::record::{record_key, RecordKind, SignedRecord};
use bitdust_net::{DhtLimits, NetConfig, NetLimits, NetStatus, Network};
use libp2p::Multiaddr;

async fn start(keys: &NodeKeys, bootstrap: Option<&Network>, limits: NetLimits) -> Network {
    let bootstrap = bootstrap
        .map(|b| {
            let addr = b.addresses().borrow()[0].clone();
            vec![addr.with(libp2p::multiaddr::Protocol::P2p(b.local_peer_id()))]
        })
        .unwrap_or_default();
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()],
        bootstrap,
        limits,
        ..NetConfig::default()
    };
    let (net, _inbounds) = Network::start(keys.keypair(), config).await.unwrap();
    net
}

/// Starts a peer of `victim` and waits until the victim is in its routing table (so the DHT sends it puts).
async fn peer_of(victim: &Network, keys: &NodeKeys) -> Network {
    let net = start(keys, Some(victim), NetLimits::default()).await;
    until("the victim is in the peer's routing table", || async {
        net.routing_table().await.unwrap().contains(&victim.local_peer_id())
    })
    .await;
    net
}

async fn until<F: std::future::Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the victim has decided on `decided` records or provider records since start, and returns its
/// status.
async fn decided(victim: &Network, decided: u64, of: fn(&NetStatus) -> u64) -> NetStatus {
    until("the victim decided on every put", || async { of(&victim.status().await.unwrap()) >= decided }).await;
    victim.status().await.unwrap()
}

fn record(keys: &NodeKeys) -> SignedRecord {
    SignedRecord::sign(keys, RecordKind::Identity, 1, 1_700_000_000, vec![7; 100])
}

fn limits() -> NetLimits {
    NetLimits {
        dht: DhtLimits {
            max_records: 24,
            max_records_per_source: 8,
            pressure_records: 20,
            max_provided_keys: 64,
            max_keys_per_provider: 4,
            max_providers_per_key: 8,
        },
        ..NetLimits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_with_throwaway_keys_cannot_fill_a_store_and_contracted_peers_still_get_in() {
    let victim = start(&NodeKeys::generate(), None, limits()).await;
    let records_decided = |s: &NetStatus| s.dht_records as u64 + s.dht_refused;

    // three strangers, each putting twelve records signed by throwaway keys through the DHT
    let mut attackers = Vec::new();
    for i in 0..3u64 {
        let attacker = peer_of(&victim, &NodeKeys::generate()).await;
        for _ in 0..12 {
            attacker.put_record(record(&NodeKeys::generate())).await.unwrap();
        }
        let status = decided(&victim, 12 * (i + 1), records_decided).await;
        // each source gets its share (8), until the store is under pressure (20)
        assert_eq!(status.dht_records, [8, 16, 20][i as usize], "{status:?}");
        attackers.push(attacker);
    }
    // a stranger putting its own record is refused under pressure
    let stranger_keys = NodeKeys::generate();
    let stranger = peer_of(&victim, &stranger_keys).await;
    stranger.put_record(record(&stranger_keys)).await.unwrap();
    let status = decided(&victim, 37, records_decided).await;
    assert_eq!((status.dht_records, status.dht_refused), (20, 17), "{status:?}");
    assert!(victim.stored_record(record_key(RecordKind::Identity, &stranger_keys.peer_id())).await.unwrap().is_none());

    // the peers the victim has contracts with get in whatever the pressure, and past the store's size a stranger's
    // record makes room for them
    let friends: Vec<NodeKeys> = (0..5).map(|_| NodeKeys::generate()).collect();
    let ids: HashSet<_> = friends.iter().map(NodeKeys::peer_id).collect();
    victim.set_priority_peers("test", ids).await.unwrap();
    for (i, keys) in friends.iter().enumerate() {
        let friend = peer_of(&victim, keys).await;
        friend.put_record(record(keys)).await.unwrap();
        until("the friend's record is stored", || async {
            victim.stored_record(record_key(RecordKind::Identity, &keys.peer_id())).await.unwrap().is_some()
        })
        .await;
        assert_eq!(victim.status().await.unwrap().dht_records, (21 + i).min(24));
    }
    for keys in &friends {
        let held = victim.stored_record(record_key(RecordKind::Identity, &keys.peer_id())).await.unwrap();
        assert_eq!(held.map(|r| r.payload), Some(vec![7; 100]), "every friend's record is held");
    }

    // provider records: a peer provides at most its share of keys
    let provider = &attackers[0];
    let before = victim.status().await.unwrap();
    for k in 0..10u8 {
        provider.start_providing(vec![b'k', k]).await.unwrap();
    }
    let provided_decided = |s: &NetStatus| s.dht_provided_keys as u64 + s.dht_refused;
    let status = decided(&victim, before.dht_provided_keys as u64 + before.dht_refused + 10, provided_decided).await;
    assert_eq!(status.dht_provided_keys - before.dht_provided_keys, 4, "{status:?}");
}
