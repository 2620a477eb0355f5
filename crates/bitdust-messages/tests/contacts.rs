//! Contacts through the real protocol (in-process nodes on 127.0.0.1): nicknames found through their signed
//! claims, a second identity unable to take a claimed nickname, and a contact's changed key flagged.

mod common;

use bitdust_core::identity::SignedIdentity;
use bitdust_core::keys::{short_peer_id, NodeKeys};
use bitdust_core::record::{nickname_key, RecordKind, SignedRecord};
use bitdust_messages::proto::contacts::{ContactError, KeyChange};
use bitdust_node::{Config, Daemon};
use bitdust_testkit::{home, within};
use common::{messages, messages_wing};

async fn node(dir: &std::path::Path, name: &str, bootstrap: &[String], keys: Option<NodeKeys>) -> Daemon {
    common::node(home(dir, name, &Config::default(), keys), bootstrap, messages_wing).await
}

fn now() -> u64 {
    bitdust_node::home::unix_now()
}

fn contact_error(e: &anyhow::Error) -> &ContactError {
    e.downcast_ref::<ContactError>().unwrap_or_else(|| panic!("not an address book error: {e:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_are_found_by_their_nickname_claims_and_a_changed_key_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let boot = node(dir.path(), "bootstrap", &[], None).await;
    let boot_addr = boot.node().addresses()[0].clone();
    let b = std::slice::from_ref(&boot_addr);
    let bob_keys = NodeKeys::generate();
    let mallory_keys = NodeKeys::generate();
    let (alice, bob) =
        (node(dir.path(), "alice", b, None).await, node(dir.path(), "bob", b, Some(bob_keys.clone())).await);
    let mallory = node(dir.path(), "mallory", b, Some(mallory_keys.clone())).await;
    let (a, bob_id) = (messages(&alice), bob.node().peer_id());

    // by nickname, then refused twice (same identity, same name); by global id and peer id under other names
    let c = within("add bob", a.add_contact("bob", None)).await.unwrap();
    assert_eq!((c.name.as_str(), c.peer().unwrap()), ("bob", bob_id));
    let e = a.add_contact("bob", None).await.unwrap_err();
    assert!(matches!(contact_error(&e), ContactError::AlreadyContact { .. }), "{e:#}");
    let carol = node(dir.path(), "carol", b, None).await;
    let global = format!("carol@{}", short_peer_id(&carol.node().peer_id()));
    a.add_contact(&global, Some("Carol at work")).await.unwrap();
    // a global id whose short id does not match the claim's owner, nobody, ourselves, nonsense: clear errors
    let e = a.add_contact("carol@abcdefgh", None).await.unwrap_err();
    assert!(matches!(contact_error(&e), ContactError::OtherIdentity { .. }), "{e:#}");
    let e = a.add_contact("nobody-here", None).await.unwrap_err();
    assert!(matches!(contact_error(&e), ContactError::NotFound(_)), "{e:#}");
    let e = a.add_contact("alice", None).await.unwrap_err();
    assert!(matches!(contact_error(&e), ContactError::Yourself(_)), "{e:#}");
    let e = a.add_contact("Not A Nick!", None).await.unwrap_err();
    assert!(matches!(contact_error(&e), ContactError::BadAddress(_)), "{e:#}");
    assert_eq!(a.contacts().unwrap().contacts.len(), 2);

    // a second identity cannot take bob's live nickname: the nodes holding bob's claim refuse mallory's, and a
    // lookup still finds bob
    let theft = SignedRecord::nickname_claim(&mallory_keys, "bob", 1000, now()).unwrap();
    let refused = boot.node().network().status().await.unwrap().dht_refused;
    mallory.node().network().put_record(theft).await.unwrap();
    within("the bootstrap node refused the theft", async {
        while boot.node().network().status().await.unwrap().dht_refused == refused {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let held = boot.node().network().stored_record(nickname_key("bob")).await.unwrap().expect("boot holds bob's claim");
    assert_eq!(held.publisher, bob_id.to_bytes(), "the bootstrap node kept bob's claim");
    let (_, owner) = alice.node().network().get_nickname("bob").await.unwrap();
    assert_eq!(owner, bob_id);
    let checked = a.check_contact("bob").await.unwrap();
    assert_eq!(checked.key_change, None, "nothing changed for alice");

    // bob's identity now carries another encryption key (a reinstall, or a stolen signing key): flagged, unverified,
    // not accepted until alice compares safety numbers
    let mut changed = bob.node().identity().identity.clone();
    changed.encryption_key = NodeKeys::generate().encryption_public_key();
    changed.revision += 10;
    let doc = SignedIdentity::sign(&bob_keys, changed.clone());
    let rec = SignedRecord::sign(&bob_keys, RecordKind::Identity, changed.revision, now(), doc.encode());
    bob.node().network().put_record(rec).await.unwrap();
    let (flagged, number) = a.verify_contact("bob", false).await.unwrap();
    assert_eq!(flagged.key_change, Some(KeyChange::EncryptionKey { now: changed.encryption_key }));
    assert!(!flagged.verified);
    assert_ne!(flagged.encryption_key, changed.encryption_key, "the pinned key stays until accepted");
    // bob computes the same safety number; alice confirms, and only then is the new key taken
    let (_, bobs_number) = {
        let bm = messages(&bob);
        bm.add_contact("alice", None).await.unwrap();
        bm.verify_contact("alice", false).await.unwrap()
    };
    assert_eq!(number, bobs_number);
    let (accepted, _) = a.verify_contact("bob", true).await.unwrap();
    assert!(accepted.verified && accepted.key_change.is_none());
    assert_eq!(accepted.encryption_key, changed.encryption_key);
    a.remove_contact("bob").await.unwrap();
    let e = a.remove_contact("bob").await.unwrap_err();
    assert!(matches!(contact_error(&e), ContactError::Unknown(_)), "{e:#}");
}
