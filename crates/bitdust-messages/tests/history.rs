//! History from the key (issue 15, test 4), through the real protocol: the address book and a conversation are
//! put in the vault (the storage wing's pipeline, on the user's suppliers); a new device holding only the key
//! recovers the catalog and restores them, equal to the old device's, and the conversation goes on from it.

mod common;

use bitdust_messages::service::conversations::State;
use bitdust_messages::service::history::{COMPACT_AFTER, LOG_PREFIX};
use bitdust_node::{Config, StartOptions};
use bitdust_storage::Storage;
use bitdust_testkit::{home, loopback, restart, start, within};
use common::{contains, customer_config, full_node, messages, storage_and_messages, CANARY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_restores_contacts_and_every_conversation_from_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let boot = full_node(home(dir.path(), "bootstrap", &plain, None), &[], None).await;
    let b = [boot.node().addresses()[0].clone()];
    let mut suppliers = Vec::new();
    for i in 0..3 {
        suppliers.push(full_node(home(dir.path(), &format!("supplier-{i}"), &plain, None), &b, Some(1 << 30)).await);
    }
    let config = customer_config(2, 1 << 20);
    let alice_home = home(dir.path(), "alice", &config, None);
    let alice = full_node(alice_home.clone(), &b, None).await;
    within("alice hires", alice.service::<Storage>().unwrap().ensure_suppliers()).await.unwrap();
    let bob = full_node(home(dir.path(), "bob", &plain, None), &b, None).await;
    let _carol = full_node(home(dir.path(), "carol", &plain, None), &b, None).await;
    let (a, bm) = (messages(&alice), messages(&bob));
    a.add_contact("bob", None).await.unwrap();
    a.add_contact("carol", Some("cara")).await.unwrap();
    a.verify_contact("cara", true).await.unwrap();
    bm.add_contact("alice", None).await.unwrap();

    // nothing to put before anything happened? the address book changed: one segment
    for i in 0..20 {
        let text = if i == 7 { format!("the canary is {CANARY}") } else { format!("alice #{i}") };
        assert_eq!(within("alice sends", a.send_text("bob", &text)).await.unwrap().state, State::Delivered);
        assert_eq!(
            within("bob sends", bm.send_text("alice", &format!("bob #{i}"))).await.unwrap().state,
            State::Delivered
        );
    }
    assert!(within("first segment", a.sync_history()).await.unwrap());
    assert!(!within("nothing new", a.sync_history()).await.unwrap(), "an unchanged history puts nothing");
    for i in 20..25 {
        within("bob sends", bm.send_text("alice", &format!("bob #{i}"))).await.unwrap();
    }
    a.remove_contact("cara").await.unwrap();
    a.add_contact("carol", Some("carol")).await.unwrap();
    assert!(within("second segment", a.sync_history()).await.unwrap());
    let old_vault = alice.node().vault().expect("the storage wing provides the vault");
    assert_eq!(old_vault.list(LOG_PREFIX).unwrap().len(), 2, "an append-only log of two segments");
    // small appends batched, one segment per sync; after COMPACT_AFTER segments one base replaces them all
    for i in 0..COMPACT_AFTER - 2 {
        within("bob sends", bm.send_text("alice", &format!("later #{i}"))).await.unwrap();
        assert!(within("a segment", a.sync_history()).await.unwrap());
    }
    assert_eq!(old_vault.list(LOG_PREFIX).unwrap().len() as u64, COMPACT_AFTER);
    within("bob sends", bm.send_text("alice", "in the base")).await.unwrap();
    assert!(within("the base", a.sync_history()).await.unwrap());
    within("bob sends", bm.send_text("alice", "after the base")).await.unwrap();
    assert!(within("a segment after the base", a.sync_history()).await.unwrap());
    let log = old_vault.list(LOG_PREFIX).unwrap();
    assert_eq!(log.len(), 2, "the base and one segment: {log:?}");
    assert!(log[0].ends_with("-base"), "{log:?}");
    drop(old_vault);
    let old_contacts = a.contacts().unwrap();
    let old_history = a.history("bob", 10_000).unwrap();
    let total = 45 + COMPACT_AFTER as usize;
    assert_eq!(old_history.len(), total);

    // issue 15, test 3: the history on the suppliers is ciphertext (the canary is only in the two ends' homes)
    for (i, s) in suppliers.iter().enumerate() {
        assert!(!contains(s.node().home().root(), CANARY.as_bytes()), "supplier-{i}'s home holds the text");
    }
    assert!(contains(alice_home.root(), CANARY.as_bytes()), "the check can find it where it is");

    // the device is lost; a new one holds only the key (what `init --from-key` does, in process)
    let keys = alice_home.keys().unwrap();
    alice.shutdown().await;
    drop((alice, a));
    let new_home = home(dir.path(), "alice-new", &config, Some(keys));
    let quiet = StartOptions { quiet: true, ..loopback(&b) };
    let device = start(new_home.clone(), quiet, storage_and_messages(None)).await;
    let storage = device.service::<Storage>().unwrap();
    let vault = device.node().vault().unwrap();
    assert!(vault.list(LOG_PREFIX).unwrap().is_empty(), "nothing before the catalog is recovered");
    within("the catalog is recovered", async {
        while storage.recover_catalog().await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    if let Ok(found) = device.node().lookup_identity(device.node().peer_id()).await {
        device.node().adopt_identity(&found).unwrap();
    }
    let nm = messages(&device);
    assert!(nm.history("bob", 10).is_err(), "a new device knows nobody before it restores");
    let restored = within("restore", nm.restore_history()).await.unwrap();
    assert_eq!((restored.segments, restored.contacts, restored.conversations, restored.messages), (2, 2, 1, total));
    assert_eq!(nm.contacts().unwrap(), old_contacts);
    assert_eq!(nm.history("bob", 10_000).unwrap(), old_history);
    assert!(!within("restored is synced", nm.sync_history()).await.unwrap(), "the restored log is not put again");
    device.shutdown().await;
    drop((device, nm, storage, vault));

    // the conversation goes on from the new device, both ways (bob's old session is refused and renewed)
    let device = restart(&new_home, loopback(&b), storage_and_messages(None)).await;
    within("announced", device.node().wait_announced()).await;
    let nm = messages(&device);
    let back = within("bob writes to the new device", bm.send_text("alice", "welcome back")).await.unwrap();
    assert_eq!(back.state, State::Delivered);
    let out = within("the new device writes", nm.send_text("bob", "thanks")).await.unwrap();
    assert_eq!(out.state, State::Delivered);
    let now = nm.history("bob", 10_000).unwrap();
    assert_eq!(now.len(), total + 2);
    assert_eq!(&now[..total], &old_history[..]);
    assert_eq!((now[total].text.as_str(), now[total + 1].text.as_str()), ("welcome back", "thanks"));
    assert!(now[total + 1].seq > old_history.iter().filter(|e| e.outgoing).map(|e| e.seq).max().unwrap());
}
