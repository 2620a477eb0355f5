//! NAT traversal pieces that run without network namespaces: a supplier reachable only through a relay.

mod common;

use bitdust_core::keys::NodeKeys;
use bitdust_node::{Config, Home, Progress, StartOptions};
use bitdust_storage::config::{CustomerConfig, MaintenanceConfig};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_reachable_only_through_a_relay_serves_backup_and_restore() {
    let dir = tempfile::tempdir().unwrap();
    let start_node = |name: &str, opts: StartOptions, donate: Option<u64>| {
        let home = Home::new(dir.path().join(name));
        // the config's listen list is what an empty `opts.listen` keeps: make it empty too
        home.init(&NodeKeys::generate(), name, &Config { listen: vec![], ..Config::default() }).unwrap();
        Peer::start(home, opts, donate)
    };
    // a public node that bootstraps the DHT and relays
    let relay = start_node(
        "relay",
        StartOptions { listen: vec!["/ip4/127.0.0.1/tcp/0".into()], relay_server: true, ..StartOptions::default() },
        None,
    )
    .await;
    let relay_addr = relay.addresses()[0].clone();
    let direct = start_node(
        "direct",
        StartOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap: vec![relay_addr.clone()],
            ..StartOptions::default()
        },
        Some(1 << 30),
    )
    .await;
    // listens nowhere: only a reservation on the relay makes it reachable
    let hidden = start_node(
        "hidden",
        StartOptions {
            listen: vec![],
            bootstrap: vec![relay_addr.clone()],
            relays: vec![relay_addr.clone()],
            ..StartOptions::default()
        },
        Some(1 << 30),
    )
    .await;
    until("the hidden supplier advertises a relayed address", || {
        !hidden.addresses().is_empty() && hidden.addresses().iter().all(|a| a.contains("/p2p-circuit/"))
    })
    .await;
    within("suppliers announced", async {
        direct.wait_announced().await;
        hidden.wait_announced().await;
    })
    .await;
    let alice_home = Home::new(dir.path().join("alice"));
    let config = config_with(
        CustomerConfig {
            suppliers: 2,
            data_shards: 0,
            needed_bytes: 256 << 20,
            blocks_in_flight: 4,
            ..CustomerConfig::default()
        },
        MaintenanceConfig::default(),
    );
    alice_home.init(&NodeKeys::generate(), "alice", &config).unwrap();
    let alice = Peer::start(
        alice_home,
        StartOptions {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            bootstrap: vec![relay_addr],
            ..StartOptions::default()
        },
        None,
    )
    .await;
    within("alice announced", alice.wait_announced()).await;
    within("alice sees both suppliers in the DHT", async {
        while alice
            .network()
            .get_providers(bitdust_storage::proto::records::SUPPLIERS_SERVICE_KEY.to_vec())
            .await
            .unwrap_or_default()
            .len()
            < 2
        {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;

    let src = dir.path().join("src");
    make_tree(&src, 13);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let status = alice.runtime().status().await.unwrap();
    let to_hidden: Vec<_> = status.connections.iter().filter(|c| c.peer_id == hidden.peer_id().to_string()).collect();
    assert!(!to_hidden.is_empty() && to_hidden.iter().all(|c| c.relayed), "{:?}", status.connections);
    assert!(status.connections.iter().any(|c| c.peer_id == direct.peer_id().to_string() && !c.relayed));
    let hidden_status = hidden.runtime().status().await.unwrap();
    assert_eq!(hidden_status.relays, vec![relay.peer_id().to_string()]);
    assert!(relay.runtime().status().await.unwrap().relay_server);

    // restore from the relayed supplier alone plus one parity from the direct one is not needed: stop the
    // direct supplier, so every block comes through the relay
    direct.shutdown().await;
    let out = dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}
