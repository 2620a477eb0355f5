//! "Send through storage" (issue 15): alice stores a file on her suppliers for bob and goes offline at once; bob
//! fetches it from her suppliers with the capability in her message (a grant naming him), byte for byte; a third
//! peer with the same capability is refused by the suppliers; when alice is back, bob's "fetched" (left in her
//! mailboxes) makes her forget the upload.

mod common;

use bitdust_messages::service::conversations::State;
use bitdust_messages::service::files::FileState;
use bitdust_node::Config;
use bitdust_storage::Storage;
use bitdust_testkit::{home, loopback, restart, until, within};
use common::{contains, customer_config, full_node, messages, storage_and_messages, CANARY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_sent_through_storage_is_fetched_from_the_senders_suppliers_while_it_is_offline() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let boot = full_node(home(dir.path(), "bootstrap", &plain, None), &[], None).await;
    let b = [boot.node().addresses()[0].clone()];
    let mut suppliers = Vec::new();
    for i in 0..3 {
        suppliers.push(full_node(home(dir.path(), &format!("supplier-{i}"), &plain, None), &b, Some(1 << 30)).await);
    }
    let config = customer_config(3, 64 << 20);
    let alice_home = home(dir.path(), "alice", &config, None);
    let alice = full_node(alice_home.clone(), &b, None).await;
    within("alice hires", alice.service::<Storage>().unwrap().ensure_suppliers()).await.unwrap();
    let bob = full_node(home(dir.path(), "bob", &plain, None), &b, None).await;
    let (a, bm) = (messages(&alice), messages(&bob));
    a.add_contact("bob", None).await.unwrap();
    bm.add_contact("alice", None).await.unwrap();
    assert_eq!(a.send_text("bob", "a file follows").await.unwrap().state, State::Delivered);

    // a file of 9 MiB and a bit, with a canary inside
    let path = dir.path().join("report.bin");
    let mut data: Vec<u8> =
        (0..9 * 1024 * 1024 + 4321).map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    data[4096..4096 + CANARY.len()].copy_from_slice(CANARY.as_bytes());
    std::fs::write(&path, &data).unwrap();
    // bob is told at once; before he can fetch from alice, she is gone: he must get it from her suppliers
    let offer = within("offer through storage", a.send_file("bob", &path, true)).await.unwrap();
    assert_eq!(offer.state, State::Delivered);
    let record = a.file(&offer.id).unwrap().unwrap();
    assert!(!record.stored.is_empty(), "a capability went with the offer");
    let alice_id = alice.node().peer_id();
    alice.shutdown().await;
    drop((alice, a));
    until("bob has the file", || {
        bm.file(&offer.id).unwrap().is_some_and(|f| matches!(f.state, FileState::Received | FileState::Failed(_)))
    })
    .await;
    let got = bm.file(&offer.id).unwrap().unwrap();
    assert_eq!(got.state, FileState::Received, "{got:?}");
    assert_eq!(std::fs::read(&got.path).unwrap(), data, "byte for byte");
    for (i, s) in suppliers.iter().enumerate() {
        assert!(!contains(s.node().home().root(), CANARY.as_bytes()), "supplier-{i} holds the plaintext");
    }

    // a third peer holding the same capability is refused by alice's suppliers (the grant names bob)
    let carol = full_node(home(dir.path(), "carol", &plain, None), &b, None).await;
    let vault = carol.node().vault().unwrap();
    let stolen = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        vault.fetch_shared(alice_id, &record.stored, &dir.path().join("carol-got")),
    )
    .await
    .expect("refused in time, not hung");
    assert!(stolen.is_err(), "a capability is bound to its grantee");
    assert!(!dir.path().join("carol-got").join("report.bin").exists());

    // alice is back: bob's "fetched" waited in her mailboxes; she forgets the upload
    let alice = restart(&alice_home, loopback(&b), storage_and_messages(None)).await;
    let storage = alice.service::<Storage>().unwrap();
    until("the upload is forgotten", || {
        storage.catalog().unwrap().backups.iter().all(|b| !b.name.starts_with("shared/"))
    })
    .await;
}
