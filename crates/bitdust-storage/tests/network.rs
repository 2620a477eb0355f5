//! In-process networks: backup, restore, security and DHT behaviour.

mod common;

use std::time::Duration;

use bitdust_core::keys::NodeKeys;
use bitdust_core::record::{RecordKind, SignedRecord};
use bitdust_node::Progress;
use bitdust_storage::config::CustomerConfig;
use bitdust_storage::proto::pipeline::VersionKeys;
use bitdust_storage::proto::wire::{ErrorCode, Request, Response};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_restore_byte_for_byte_with_n_minus_k_suppliers_stopped() {
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer("alice", 4, 256 << 20).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 1);
    let r1 = within("backup 1", alice.backup(&src, Progress::new())).await.unwrap();
    assert_eq!((r1.version, r1.files, r1.symlinks), (1, 4, 2));
    // a second version of the same path, with changed contents
    std::fs::remove_dir_all(&src).unwrap();
    make_tree(&src, 2);
    let r2 = within("backup 2", alice.backup(&src, Progress::new())).await.unwrap();
    assert_eq!((r2.name.as_str(), r2.version), (r1.name.as_str(), 2));
    assert!(alice.catalog().unwrap().revision >= 2);

    // stop the suppliers at positions 0 and 1: every block must be rebuilt from parity
    let stopped = [net.supplier_of(&alice, 0), net.supplier_of(&alice, 1)];
    for s in &stopped {
        s.shutdown().await;
    }
    // once their connections are gone, the restore asks the connected suppliers first: nothing fails
    within("connections to the stopped suppliers closed", async {
        loop {
            let connected = alice.network().connected_peers().await.unwrap();
            if !stopped.iter().any(|s| connected.contains(&s.peer_id())) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let out1 = net.dir.path().join("out1");
    let rep = within("restore 1", alice.restore(&r1.name, Some(1), &out1, false, Progress::new())).await.unwrap();
    assert_eq!(rep.fragments_failed, 0, "a stopped supplier was asked before the connected ones");
    let expect1 = net.dir.path().join("expect1");
    make_tree(&expect1, 1);
    assert_same(&expect1, &out1);
    let out2 = net.dir.path().join("out2");
    within("restore 2", alice.restore(&r1.name, None, &out2, false, Progress::new())).await.unwrap();
    assert_same(&src, &out2);
    // a non-empty target is refused unless forced
    let err = alice.restore(&r1.name, None, &out2, false, Progress::new()).await.unwrap_err();
    assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    let err = alice.restore("nope", None, &net.dir.path().join("x"), false, Progress::new()).await.unwrap_err();
    assert!(format!("{err:#}").contains("no backup named"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_and_deleted_fragments_are_detected_and_routed_around() {
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer("alice", 4, 256 << 20).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 3);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    // position 0: flip one byte in every fragment; position 2: delete every fragment
    let corrupt = fragment_files(&net.supplier_of(&alice, 0));
    assert_eq!(corrupt.len(), r.blocks);
    for f in &corrupt {
        let mut b = std::fs::read(f).unwrap();
        let i = b.len() / 2;
        b[i] ^= 0x40;
        std::fs::write(f, b).unwrap();
    }
    for f in fragment_files(&net.supplier_of(&alice, 2)) {
        std::fs::remove_file(f).unwrap();
    }
    let out = net.dir.path().join("out");
    let rep = within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert!(rep.fragments_failed >= r.blocks as u64, "{rep:?}");
    assert_same(&src, &out);

    // one more loss is beyond n-k: the restore says which files are lost
    for f in fragment_files(&net.supplier_of(&alice, 1)) {
        std::fs::remove_file(f).unwrap();
    }
    let out = net.dir.path().join("out-lost");
    let err = within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(msg.contains("could not be restored") && msg.contains("big.bin"), "{msg}");
    assert!(!out.join("big.bin").exists(), "a lost file must not appear under its real name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_read_or_delete_another_customers_fragments() {
    let net = Net::new(2, 1 << 30).await;
    let alice = net.customer("alice", 2, 64 << 20).await;
    let src = net.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("secret.txt"), b"alice's secret").unwrap();
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let mallory = net.customer("mallory", 2, 64 << 20).await;
    within("mallory hires", mallory.ensure_suppliers()).await.unwrap();

    // the id of alice's first fragment at position 0
    let catalog = alice.catalog().unwrap();
    let version = &catalog.backup(&r.name).unwrap().versions[0];
    let alice_keys = alice.home().keys().unwrap();
    let vkeys = VersionKeys::derive(alice_keys.master(), version.id);
    let id = vkeys.fragment_id(&version.blocks[0].block_id, 0);
    let supplier = net.supplier_of(&alice, 0);

    let read = mallory
        .request(supplier.peer_id(), Request::GetFragment { owner: alice.peer_id().to_bytes(), id })
        .await
        .unwrap();
    assert!(matches!(read, Response::Error(ErrorCode::Denied, _)), "{read:?}");
    let get_cat =
        mallory.request(supplier.peer_id(), Request::GetCatalog { owner: alice.peer_id().to_bytes() }).await.unwrap();
    assert!(matches!(get_cat, Response::Error(ErrorCode::Denied, _)), "{get_cat:?}");
    // a delete can only name the sender's own fragments: alice's stays
    let del = mallory.request(supplier.peer_id(), Request::DeleteFragment { id }).await.unwrap();
    assert!(matches!(del, Response::Deleted));
    let own = alice
        .request(supplier.peer_id(), Request::GetFragment { owner: alice.peer_id().to_bytes(), id })
        .await
        .unwrap();
    assert!(matches!(own, Response::Fragment(_)), "{own:?}");
    // a node without a contract cannot store at all
    let eve = net.customer("eve", 2, 64 << 20).await;
    let put = eve.request(supplier.peer_id(), Request::PutFragment { id, data: vec![0; 100].into() }).await.unwrap();
    assert!(matches!(put, Response::Error(ErrorCode::Malformed | ErrorCode::NoContract, _)), "{put:?}");

    let out = net.dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_eq!(std::fs::read(out.join("secret.txt")).unwrap(), b"alice's secret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_from_key_on_a_new_device() {
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer("alice", 4, 256 << 20).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 4);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let key_text = alice.home().keys().unwrap().export_text();
    alice.shutdown().await;
    drop(alice);

    // a new device: only the key text
    let keys = NodeKeys::import_text(&key_text).unwrap();
    let fresh = start(
        net.dir.path(),
        "alice-new-device",
        std::slice::from_ref(&net.boot_addr),
        None,
        CustomerConfig::default(),
        Some(keys),
    )
    .await;
    let catalog = recover(&fresh).await;
    assert_eq!(catalog.backups.len(), 1);
    let out = net.dir.path().join("out");
    within("restore", fresh.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_quota_and_too_few_suppliers_are_clear_errors() {
    let net = Net::new(2, 1 << 30).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 5);
    // asks each supplier for 1 MiB: the 9 MB file does not fit
    let small = net.customer("small", 2, 1 << 20).await;
    let err = within("backup", small.backup(&src, Progress::new())).await.unwrap_err();
    assert!(format!("{err:#}").contains("QuotaExceeded"), "{err:#}");
    assert_eq!(small.catalog().unwrap().backups.len(), 0, "a failed backup must not enter the catalog");
    // wants 4 suppliers, only 2 exist
    let greedy = net.customer("greedy", 4, 1 << 20).await;
    let err = within("backup", greedy.backup(&src, Progress::new())).await.unwrap_err();
    assert!(format!("{err:#}").contains("too few suppliers online: hired 2 of 4"), "{err:#}");
    // asks for more than anyone donates, or than a supplier gives one customer
    let huge = net.customer("huge", 2, 2 << 30).await;
    let err = within("hire", huge.ensure_suppliers()).await.unwrap_err();
    assert!(format!("{err:#}").contains("more than one customer's share"), "{err:#}");
    // a missing path
    let err = small.backup(&net.dir.path().join("missing"), Progress::new()).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot back up"), "{err:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dht_refuses_stale_and_forged_records() {
    let net = Net::new(3, 1 << 30).await;
    let alice_keys = NodeKeys::generate();
    let alice = start(
        net.dir.path(),
        "alice",
        std::slice::from_ref(&net.boot_addr),
        None,
        CustomerConfig::default(),
        Some(alice_keys.clone()),
    )
    .await;
    within("alice announced", alice.wait_announced()).await;
    let reader = &net.suppliers[0];

    let new = SignedRecord::sign(&alice_keys, RecordKind::Suppliers, 10, 1, b"new".to_vec());
    within("put", alice.network().put_record(new)).await.unwrap();
    let old = SignedRecord::sign(&alice_keys, RecordKind::Suppliers, 5, 1, b"old".to_vec());
    let _ = within("put stale", alice.network().put_record(old)).await;
    let got = within("get", reader.network().get_record(RecordKind::Suppliers, alice.peer_id())).await.unwrap();
    assert_eq!((got.revision, got.payload.as_slice()), (10, &b"new"[..]));

    // mallory signs a record claiming alice as publisher, with a higher revision
    let mallory_keys = NodeKeys::generate();
    let mallory = start(
        net.dir.path(),
        "mallory",
        std::slice::from_ref(&net.boot_addr),
        None,
        CustomerConfig::default(),
        Some(mallory_keys.clone()),
    )
    .await;
    within("mallory announced", mallory.wait_announced()).await;
    let mut forged = SignedRecord::sign(&mallory_keys, RecordKind::Suppliers, 99, 1, b"forged".to_vec());
    forged.publisher = alice.peer_id().to_bytes();
    let _ = within("put forged", mallory.network().put_record(forged)).await;
    let got = within("get", reader.network().get_record(RecordKind::Suppliers, alice.peer_id())).await.unwrap();
    assert_eq!((got.revision, got.payload.as_slice()), (10, &b"new"[..]));

    // identities are found and verified
    let id = within("identity", reader.lookup_identity(alice.peer_id())).await.unwrap();
    assert_eq!(id.identity.nickname, "alice");
}

/// A stranger speaking the storage protocol with a fresh key pair (its own libp2p node, no storage wing).
struct Stranger {
    keys: NodeKeys,
    net: bitdust_net::Network,
}

impl Stranger {
    async fn new(supplier: &str) -> Self {
        let keys = NodeKeys::generate();
        let config = bitdust_net::NetConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
            bootstrap: vec![supplier.parse().unwrap()],
            protocols: vec![bitdust_storage::service::protocol_spec()],
            ..bitdust_net::NetConfig::default()
        };
        let (net, _inbounds) = bitdust_net::Network::start(keys.keypair(), config).await.unwrap();
        Self { keys, net }
    }

    async fn ask(&self, to: bitdust_core::PeerId, request: Request) -> Response {
        use bitdust_storage::proto::codec;
        let frame = bitdust_net::Frame(codec::encode_request(&request).unwrap());
        let name = bitdust_storage::service::protocol_spec().name;
        codec::decode_response(self.net.request(to, name, frame).await.unwrap()).unwrap()
    }

    /// Proposes a contract of `needed` bytes for `secs` seconds; the refusal's text if refused.
    async fn contract(&self, to: bitdust_core::PeerId, needed: u64, secs: u64) -> Result<(), String> {
        use bitdust_storage::proto::wire::{Contract, SignedContract};
        let contract = Contract {
            customer: self.keys.peer_id().to_bytes(),
            supplier: to.to_bytes(),
            position: 0,
            needed_bytes: needed,
            start_unix: bitdust_node::home::unix_now(),
            duration_secs: secs,
            nonce: rand::random(),
        };
        match self.ask(to, Request::Contract(SignedContract::propose(&self.keys, contract))).await {
            Response::ContractAccepted(_) => Ok(()),
            Response::Error(ErrorCode::Refused, why) => Err(why),
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

/// Issue 14, item 4, through the real protocol: a stranger with throwaway identities cannot take more than each
/// identity's share, cannot store past its contracts (catalogs and held records count), and must renew or lose the
/// space; a customer hired before the flood keeps storing, renews its contracts, and gets the space back for others
/// once the strangers' contracts end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_end_and_strangers_with_throwaway_identities_cannot_fill_a_supplier() {
    use bitdust_storage::config::{StorageConfig, SupplierConfig};
    use bitdust_storage::proto::catalog::{Catalog, SealedCatalog};
    let dir = tempfile::tempdir().unwrap();
    let boot = start(dir.path(), "bootstrap", &[], None, CustomerConfig::default(), None).await;
    let boot_addr = boot.addresses()[0].clone();
    // suppliers of 64 MiB, a quarter each at most, contracts from 1 s, 2 s of grace
    let mut suppliers = Vec::new();
    for i in 0..2 {
        let supplier = SupplierConfig {
            enabled: true,
            donated_bytes: 64 << 20,
            min_contract_secs: 1,
            grace_secs: 2,
            ..SupplierConfig::default()
        };
        let mut config = bitdust_node::Config::default();
        StorageConfig { supplier, ..StorageConfig::default() }.write_into(&mut config).unwrap();
        let name = format!("supplier-{i}");
        let s =
            start_with(dir.path(), &name, std::slice::from_ref(&boot_addr), None, config, None, "/ip4/127.0.0.1/tcp/0")
                .await;
        within("supplier announced", s.wait_announced()).await;
        suppliers.push(s);
    }
    // alice hires both before the flood, with contracts of 4 s that she renews every 2 s
    let customer =
        CustomerConfig { suppliers: 2, needed_bytes: 16 << 20, contract_secs: 4, ..CustomerConfig::default() };
    let alice = start(dir.path(), "alice", std::slice::from_ref(&boot_addr), None, customer, None).await;
    within("alice announced", alice.wait_announced()).await;
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), vec![1u8; 100_000]).unwrap();
    within("backup 1", alice.backup(&src, Progress::new())).await.unwrap();
    let first_start = alice.suppliers().unwrap()[0].contract.as_ref().unwrap().contract.start_unix;

    let victim = &suppliers[0];
    let target = victim.peer_id();
    let addr = victim.addresses()[0].clone();
    let strangers = futures::future::join_all((0..5).map(|_| Stranger::new(&addr))).await;
    // all the space, nothing, or for ten years: refused
    let s0 = &strangers[0];
    assert!(s0.contract(target, 64 << 20, 3).await.unwrap_err().contains("share"));
    assert!(s0.contract(target, 0, 3).await.unwrap_err().contains("below"));
    assert!(s0.contract(target, 1 << 20, 10 * 365 * 86_400).await.unwrap_err().contains("takes"));
    // a quarter each: three identities fill what alice left; the next is refused
    for s in &strangers[..3] {
        s.contract(target, 16 << 20, 3).await.unwrap();
    }
    assert!(strangers[3].contract(target, 16 << 20, 3).await.unwrap_err().contains("not enough donated space"));
    // what a stranger stores counts, its catalog included, and past its contract nothing is taken
    let sealed = SealedCatalog::seal(&s0.keys, &Catalog::default()).encode();
    assert!(matches!(s0.ask(target, Request::PutCatalog(sealed.clone())).await, Response::Stored));
    let store = victim.store().unwrap().clone();
    let used = store.usage_of(&s0.keys.peer_id()).unwrap().0;
    assert_eq!(used, sealed.len() as u64, "the catalog counts");
    // one cancels: it takes nothing more
    assert!(matches!(strangers[1].ask(target, Request::EndContract).await, Response::Deleted));
    assert!(matches!(strangers[1].ask(target, Request::Heartbeat).await, Response::Error(ErrorCode::NoContract, _)));
    assert!(matches!(
        strangers[1]
            .ask(target, Request::PutCatalog(SealedCatalog::seal(&strangers[1].keys, &Catalog::default()).encode()))
            .await,
        Response::Error(ErrorCode::NoContract, _)
    ));

    // alice, hired before, is never pushed out: she renews and keeps backing up past her first contract's term
    within("alice renewed", async {
        while alice.suppliers().unwrap().iter().any(|s| s.contract.as_ref().unwrap().contract.start_unix <= first_start)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    within("alice's first contracts' term passed", async {
        while bitdust_node::home::unix_now() <= first_start + 4 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    std::fs::write(src.join("b"), vec![2u8; 100_000]).unwrap();
    within("backup 2", alice.backup(&src, Progress::new())).await.unwrap();
    // the strangers never renew: their space is freed after their term and the grace period
    within("the strangers' space freed", async {
        loop {
            let customers: Vec<String> = store.usage().unwrap().into_iter().map(|u| u.customer).collect();
            if customers == [alice.peer_id().to_string()] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    strangers[3].contract(target, 16 << 20, 3).await.expect("the freed space goes to the next customer");
    let out = dir.path().join("out");
    within("restore", alice.restore("src", None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

/// forget with restic's meaning through the real protocol: a dry run changes nothing; then the versions the policy
/// does not keep leave the catalog and their fragments leave the suppliers (the bytes they hold for alice drop by
/// what the report says it freed), the kept version still restores byte for byte and a removed one is gone; no
/// rule and an unknown name are refused and change nothing. (Only the owner can delete its fragments: the
/// stranger's attempt is `a_stranger_cannot_read_or_delete_another_customers_fragments`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_removes_what_the_policy_does_not_keep_and_frees_the_suppliers() {
    use bitdust_storage::proto::policy::KeepPolicy;
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer("alice", 4, 256 << 20).await;
    let src = net.dir.path().join("src");
    let mut name = String::new();
    for round in 1..=3u8 {
        if round > 1 {
            std::fs::remove_dir_all(&src).unwrap();
        }
        make_tree(&src, round);
        name = within("backup", alice.backup(&src, Progress::new())).await.unwrap().name;
    }
    let held = || -> u64 {
        net.suppliers.iter().map(|s| s.store().map_or(0, |st| st.usage_of(&alice.peer_id()).unwrap().0)).sum()
    };
    let before = held();
    let versions =
        || -> Vec<u32> { alice.catalog().unwrap().backup(&name).unwrap().versions.iter().map(|v| v.number).collect() };
    let keep_one = KeepPolicy { last: Some(1), ..Default::default() };

    let dry = alice.forget(&name, &keep_one, true).await.unwrap();
    assert_eq!(dry.removed, vec![2, 1]);
    assert_eq!((dry.kept.len(), dry.kept[0].version, dry.kept[0].reasons.clone()), (1, 3, vec!["last".to_string()]));
    assert!(dry.dry_run && dry.freed_bytes > 0 && dry.fragments_deleted == 0);
    assert_eq!(versions(), vec![1, 2, 3], "a dry run changes nothing");
    assert_eq!(held(), before);

    let empty = alice.forget(&name, &KeepPolicy::default(), false).await.unwrap_err();
    assert!(format!("{empty:#}").contains("at least one"), "{empty:#}");
    let zeros = KeepPolicy { last: Some(0), daily: Some(0), ..Default::default() };
    let zeros = alice.forget(&name, &zeros, false).await.unwrap_err();
    assert!(format!("{zeros:#}").contains("above 0"), "all-zero counts keep nothing: refused, {zeros:#}");
    let unknown = alice.forget("nope", &keep_one, false).await.unwrap_err();
    assert!(format!("{unknown:#}").contains("no backup named"), "{unknown:#}");
    assert_eq!(versions(), vec![1, 2, 3]);

    let done = within("forget", alice.forget(&name, &keep_one, false)).await.unwrap();
    assert_eq!(done.removed, vec![2, 1]);
    assert!(done.fragments_deleted > 0);
    assert_eq!(versions(), vec![3]);
    let after = held();
    assert!(after < before, "{after} < {before}");
    // the fragments the report counts, and a little more: the catalog each supplier holds is smaller now
    let freed = before - after;
    assert!(freed >= done.freed_bytes && freed - done.freed_bytes < 64 * 1024, "{freed} vs {}", done.freed_bytes);
    let out = net.dir.path().join("out3");
    within("restore 3", alice.restore(&name, Some(3), &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
    let gone = alice.restore(&name, Some(1), &net.dir.path().join("out1"), false, Progress::new()).await.unwrap_err();
    assert!(format!("{gone:#}").contains("has no version 1"), "{gone:#}");
    // the catalog the suppliers hold says so too: what a new device would fetch
    let from_suppliers = within("catalog from the suppliers", alice.recover_catalog()).await.unwrap();
    let numbers: Vec<u32> = from_suppliers.backup(&name).unwrap().versions.iter().map(|v| v.number).collect();
    assert_eq!(numbers, vec![3]);
}

/// Excludes end to end: what `--exclude`, a `.bitdustignore` and a `CACHEDIR.TAG` leave out is not stored (the
/// restore lacks it, the report counts it), a `!pattern` takes a path back, and everything else restores byte for
/// byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn excluded_paths_are_not_stored_and_the_rest_restores() {
    use bitdust_storage::service::archive::Excludes;
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer("alice", 4, 256 << 20).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 1);
    let w = |rel: &str, data: &[u8]| {
        let p = src.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    w("big.iso", &[7u8; 100_000]);
    w("target/debug/junk", b"junk");
    w("keep/.bitdustignore", b"*.log\n!important.log\n");
    w("keep/a.log", b"noise");
    w("keep/important.log", b"keep me");
    w("keep/data", b"data");
    w("cache/CACHEDIR.TAG", b"Signature: 8a477f597d28d172789f06886806bc55\n");
    w("cache/entry", &[1u8; 50_000]);
    let ex = Excludes { patterns: vec!["*.iso".into(), "/target".into()], caches: true, one_file_system: true };
    let report = within("backup", alice.backup_with(&src, &ex)).await.unwrap();
    assert_eq!(report.excluded, 4, "big.iso, target, keep/a.log, cache/entry");
    let out = net.dir.path().join("out");
    within("restore", alice.restore(&report.name, None, &out, false, Progress::new())).await.unwrap();
    for gone in ["big.iso", "target", "keep/a.log", "cache/entry"] {
        assert!(std::fs::symlink_metadata(out.join(gone)).is_err(), "{gone} was left out");
    }
    // remove what was left out from the source: the rest is identical
    for gone in ["big.iso", "keep/a.log", "cache/entry"] {
        std::fs::remove_file(src.join(gone)).unwrap();
    }
    std::fs::remove_dir_all(src.join("target")).unwrap();
    // (removing them changed the mtimes of their folders, and only those)
    let diffs = bitdust_storage::service::archive::compare_trees(&src, &out).unwrap();
    assert_eq!(diffs, vec!["mtime differs: ", "mtime differs: cache", "mtime differs: keep"]);
    assert_eq!(std::fs::read(out.join("keep/important.log")).unwrap(), b"keep me");
    let bad = alice.backup_with(&src, &Excludes { patterns: vec!["a[".into()], ..Default::default() }).await;
    assert!(format!("{:#}", bad.unwrap_err()).contains("bad exclude pattern"));
}
