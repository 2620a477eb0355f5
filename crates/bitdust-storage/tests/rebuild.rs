//! Automatic rebuilding over in-process networks with short timings: replacement of a lost supplier,
//! audits that find lost and damaged fragments, hysteresis, losses beyond n-k, a restart mid-rebuild, and
//! a supplier that answers audits wrongly.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bitdust_node::{Progress, StartOptions};
use bitdust_storage::config::{CustomerConfig, MaintenanceConfig};
use bitdust_storage::proto::fragment;
use bitdust_storage::proto::pipeline::VersionKeys;
use common::*;

async fn healing_customer(net: &Net, name: &str, n: u16) -> Arc<Peer> {
    net.healing_customer(name, n, false).await
}

fn fully_redundant(node: &Peer) -> bool {
    node.rebuild_queue().unwrap().is_empty() && node.health().unwrap().iter().all(|h| h.full == h.blocks)
}

fn held_fragments(supplier: &Peer) -> usize {
    fragment_files(supplier)
        .iter()
        .filter(|f| std::fs::read(f).map(|b| fragment::parse(&b).is_ok()).unwrap_or(false))
        .count()
}

fn peer_at(node: &Peer, position: u16) -> bitdust_core::PeerId {
    node.suppliers().unwrap().into_iter().find(|s| s.position == position).unwrap().peer().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_supplier_is_replaced_and_its_fragments_rebuilt_for_real() {
    let net = Net::new(6, 1 << 30).await;
    let alice = healing_customer(&net, "alice", 4).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 7);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let original: Vec<_> = (0..4).map(|p| peer_at(&alice, p)).collect();
    net.supplier_of(&alice, 1).shutdown().await;

    until("replacement hired and rebuilt", || {
        let now = peer_at(&alice, 1);
        now != original[1]
            && net.suppliers.iter().find(|s| s.peer_id() == now).is_some_and(|s| held_fragments(s) == r.blocks)
            && fully_redundant(&alice)
    })
    .await;
    let automata = alice.automata();
    let hf = automata.iter().find(|a| a.kind == "hire_fire").unwrap();
    assert!(hf.details["last"].as_str().unwrap().contains("replaced"), "{hf:?}");
    assert!(automata
        .iter()
        .any(|a| a.kind == "rebuild" && a.details["fragments_rebuilt"].as_u64() == Some(r.blocks as u64)));

    // now lose n-k other original suppliers: only the rebuilt position and one original remain
    for p in [0, 2] {
        net.suppliers.iter().find(|s| s.peer_id() == original[p]).unwrap().shutdown().await;
    }
    let out = net.dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

/// The durability study's finding (issue 19): every run of a customer started a supplier's fire-after clock again,
/// so a customer never up for fire-after at a stretch never replaced a dead supplier. The silence is saved and
/// carried over: a customer that saw 8 s of a supplier's silence (fire-after 12 s), restarted, replaces it about
/// 4 s into its next run, not 12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_does_not_start_the_fire_clock_again() {
    let net = Net::new(6, 1 << 30).await;
    let customer = CustomerConfig { suppliers: 4, needed_bytes: 64 << 20, blocks_in_flight: 4, ..Default::default() };
    let config = config_with(customer, MaintenanceConfig { fire_after_ms: 12_000, ..fast_maintenance() });
    let boot = std::slice::from_ref(&net.boot_addr);
    let tcp = "/ip4/127.0.0.1/tcp/0";
    let alice = start_with(net.dir.path(), "alice", boot, None, config, None, tcp).await;
    within("announced", alice.wait_announced()).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 3);
    within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let lost = peer_at(&alice, 1);
    net.supplier_of(&alice, 1).shutdown().await;
    // the customer runs through 8 s of the supplier's silence, then stops
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(peer_at(&alice, 1), lost, "not fired before fire-after");
    let home = alice.home().clone();
    alice.shutdown().await;
    drop(alice);

    let alice = restart(&home, bitdust_testkit::loopback(boot), None).await;
    let restarted = std::time::Instant::now();
    until("the silent supplier is replaced", || peer_at(&alice, 1) != lost).await;
    let took = restarted.elapsed();
    assert!(took < Duration::from_secs(10), "replaced {took:?} into the new run: the clock started again");
    eprintln!("replaced {:.1} s after the restart (fire-after 12 s, 8 s carried)", took.as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audits_find_deleted_and_damaged_fragments_and_the_rebuild_repairs_them() {
    let net = Net::new(4, 1 << 30).await;
    let alice = healing_customer(&net, "alice", 4).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 8);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let (deleted, damaged) = (net.supplier_of(&alice, 0), net.supplier_of(&alice, 3));
    for f in fragment_files(&deleted) {
        std::fs::remove_file(f).unwrap();
    }
    for f in fragment_files(&damaged) {
        let mut b = std::fs::read(&f).unwrap();
        let i = b.len() - 7;
        b[i] ^= 0x55;
        std::fs::write(&f, b).unwrap();
    }
    assert_eq!((held_fragments(&deleted), held_fragments(&damaged)), (0, 0));
    until("audits and rebuild repair both suppliers", || {
        held_fragments(&deleted) == r.blocks && held_fragments(&damaged) == r.blocks && fully_redundant(&alice)
    })
    .await;
    // the repaired fragments are real: restore without the two untouched suppliers
    net.supplier_of(&alice, 1).shutdown().await;
    net.supplier_of(&alice, 2).shutdown().await;
    let out = net.dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_outage_fires_nobody() {
    let mut net = Net::new(5, 1 << 30).await;
    let alice = healing_customer(&net, "alice", 4).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 9);
    within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let before = alice.suppliers().unwrap();
    let victim = net.supplier_of(&alice, 2);
    let (home, addr) = (victim.home().clone(), victim.addresses()[0].clone());
    let listen = addr.split("/p2p/").next().unwrap().to_string();
    let index = net.suppliers.iter().position(|s| s.peer_id() == victim.peer_id()).unwrap();
    victim.shutdown().await;
    drop(victim);
    net.suppliers.remove(index);
    let state = |node: &Peer| node.automata().into_iter().find(|a| a.name == "supplier_connection/2").map(|a| a.state);
    until("the customer notices", || matches!(state(&alice).as_deref(), Some("suspect" | "offline"))).await;
    // restart on the same address (its database is free once the old node is gone)
    let opts = StartOptions { listen: vec![listen], bootstrap: vec![net.boot_addr.clone()], ..StartOptions::default() };
    let restarted = restart(&home, opts, Some(1 << 30)).await;
    until("connected again", || state(&alice).as_deref() == Some("connected")).await;
    // Absence of an event: wait past the firing delay and check nobody was replaced.
    tokio::time::sleep(Duration::from_millis(fast_maintenance().fire_after_ms + 1_000)).await;
    assert_eq!(alice.suppliers().unwrap(), before, "a restart must not cause a firing");
    assert_eq!(state(&alice).as_deref(), Some("connected"));
    drop(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losses_beyond_n_minus_k_name_exactly_the_files_lost() {
    let net = Net::new(4, 1 << 30).await;
    let alice = healing_customer(&net, "alice", 4).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 10);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    // block 0 holds only the start of big.bin (entries are sorted; big.bin is 9 MB)
    let catalog = alice.catalog().unwrap();
    let version = catalog.backup(&r.name).unwrap().versions[0].clone();
    let vkeys = VersionKeys::derive(alice.home().keys().unwrap().master(), version.id);
    let third = net.supplier_of(&alice, 2);
    let id = vkeys.fragment_id(&version.blocks[0].block_id, 2);
    std::fs::remove_file(third.store().unwrap().fragment_file(&alice.peer_id(), &id)).unwrap();
    net.supplier_of(&alice, 0).shutdown().await;
    net.supplier_of(&alice, 1).shutdown().await;
    until("health reports the lost block", || {
        alice.health().unwrap().iter().any(|h| h.lost == 1 && h.lost_files == vec!["big.bin".to_string()])
    })
    .await;
    let h = alice.health().unwrap().remove(0);
    assert_eq!((h.lost, h.degraded, h.can_still_lose), (1, r.blocks - 1, 0), "{h:?}");
    let out = net.dir.path().join("out");
    let err = within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("1 could not be restored") && msg.contains("big.bin"), "{msg}");
    // everything else is there, byte for byte
    assert!(!out.join("big.bin").exists());
    for f in ["docs/read me.txt", "docs/empty", "naïve café/日本語/ファイル.bin"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(src.join(f)).unwrap(), "{f}");
    }
    assert!(
        out.join("docs/empty folder").is_dir() && out.join("link to readme").symlink_metadata().unwrap().is_symlink()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_restarted_mid_rebuild_resumes_and_finishes() {
    let net = Net::new(4, 1 << 30).await;
    let alice = healing_customer(&net, "alice", 4).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 11);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let version = alice.catalog().unwrap().backups[0].versions[0].clone();
    let supplier = net.supplier_of(&alice, 0);
    for f in fragment_files(&supplier) {
        std::fs::remove_file(f).unwrap();
    }
    // queue the work and stop the customer at once
    alice.enqueue_rebuild((0..r.blocks as u64).map(|b| (version.id, b, 0u16))).unwrap();
    alice.shutdown().await;
    let home = alice.home().clone();
    let queued = alice.rebuild_queue().unwrap().len();
    assert!(queued >= 1, "nothing left to resume");
    drop(alice);
    let opts = StartOptions {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap: vec![net.boot_addr.clone()],
        ..StartOptions::default()
    };
    let alice = restart(&home, opts, None).await;
    until("the rebuild resumes and finishes", || held_fragments(&supplier) == r.blocks && fully_redundant(&alice))
        .await;
    net.supplier_of(&alice, 1).shutdown().await;
    net.supplier_of(&alice, 2).shutdown().await;
    let out = net.dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_answering_audits_wrongly_is_fired() {
    let net = Net::new(5, 1 << 30).await;
    let alice = healing_customer(&net, "alice", 4).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 12);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let cheat = net.supplier_of(&alice, 3);
    let cheat_id = cheat.peer_id();
    // the cheat keeps well-formed fragments of the right size, but not our bytes
    for f in fragment_files(&cheat) {
        let bytes = std::fs::read(&f).unwrap();
        let (h, shard) = fragment::parse(&bytes).unwrap();
        let garbage = vec![0xA5u8; shard.len()];
        std::fs::write(&f, fragment::build_tagged(h.shard_index, h.layout, h.block_tag, &garbage).0).unwrap();
    }
    until("the cheat is fired and replaced", || {
        let now = peer_at(&alice, 3);
        now != cheat_id
            && net.suppliers.iter().find(|s| s.peer_id() == now).is_some_and(|s| held_fragments(s) == r.blocks)
            && fully_redundant(&alice)
    })
    .await;
    let c = alice.automata().into_iter().find(|a| a.name == "supplier_connection/3").unwrap();
    assert!(c.details["audits_failed"].as_u64().unwrap_or(0) == 0, "a fresh connection for the replacement: {c:?}");
}
