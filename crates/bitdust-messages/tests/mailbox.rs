//! Offline delivery through the recipient's suppliers (issue 15, test 2), through the real protocol: nodes in one
//! process running the storage wing (the recipient hires suppliers) and the messages wing.

mod common;

use bitdust_messages::proto::e2e::Envelope;
use bitdust_messages::proto::pow;
use bitdust_messages::proto::wire::{self, Request, Response};
use bitdust_messages::service::conversations::State;
use bitdust_messages::service::mailbox::STRANGER_ITEMS;
use bitdust_node::{Config, Daemon};
use bitdust_storage::Storage;
use bitdust_testkit::{home, loopback, restart, until, within};
use common::{contains, customer_config, full_node, messages, storage_and_messages, CANARY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_while_the_recipient_is_away_wait_on_its_suppliers_and_arrive_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let boot = full_node(home(dir.path(), "bootstrap", &plain, None), &[], None).await;
    let b = [boot.node().addresses()[0].clone()];
    let mut suppliers = Vec::new();
    for i in 0..3 {
        suppliers.push(full_node(home(dir.path(), &format!("supplier-{i}"), &plain, None), &b, Some(1 << 30)).await);
    }
    // bob hires two suppliers: they are his mailboxes
    let config = customer_config(2, 1 << 20);
    let bob_home = home(dir.path(), "bob", &config, None);
    let bob = full_node(bob_home.clone(), &b, None).await;
    let hired = within("bob hires", bob.service::<Storage>().unwrap().ensure_suppliers()).await.unwrap();
    let mailboxes: Vec<_> = hired.iter().map(|s| s.peer().unwrap()).collect();
    let alice = full_node(home(dir.path(), "alice", &plain, None), &b, None).await;
    let a = messages(&alice);
    a.add_contact("bob", None).await.unwrap();
    messages(&bob).add_contact("alice", None).await.unwrap();
    assert_eq!(a.send_text("bob", "are you there?").await.unwrap().state, State::Delivered);

    // carol has never talked with bob: she will start while he is away, from the prekey he published in the DHT
    let carol = full_node(home(dir.path(), "carol", &plain, None), &b, None).await;
    let c = messages(&carol);
    within("bob publishes his prekey", messages(&bob).publish_prekey()).await.unwrap();
    // bob tells his mailboxes who his contacts are (alice): her deposits are not a stranger's
    assert_eq!(within("bob's contacts", messages(&bob).push_mailbox_contacts(true)).await, 2);

    // bob goes away; alice writes on, more than a stranger's share: each message waits in both of bob's mailboxes
    let bob_id = bob.node().peer_id();
    bob.shutdown().await;
    drop(bob);
    const AWAY: u64 = STRANGER_ITEMS + 6;
    for i in 0..AWAY {
        let e = within("send while bob is away", a.send_text("bob", &format!("while you were away #{i} {CANARY}")))
            .await
            .unwrap();
        assert_eq!((e.state, e.mailboxes), (State::Stored, 2), "message {i}");
    }
    c.add_contact("bob", None).await.unwrap();
    let first = within("carol's first message", c.send_text("bob", "hello bob, we never met")).await.unwrap();
    assert_eq!((first.state, first.mailboxes), (State::Stored, 2), "a first message to someone offline");
    let holders: Vec<&Daemon> = suppliers.iter().filter(|s| mailboxes.contains(&s.node().peer_id())).collect();
    assert_eq!(holders.len(), 2);
    for h in &holders {
        assert_eq!(messages(h).mailbox_items(&bob_id).unwrap(), AWAY + 1);
    }
    // a contact needs no proof of work (alice's identity, a deposit without one: kept)
    let junk = Envelope {
        device: bitdust_messages::proto::e2e::Device::new().device_key(alice.node().keys()),
        message_type: 1,
        ciphertext: vec![9; 300],
    };
    let req = Request::Deposit { recipient: bob_id.to_bytes(), envelope: junk, pow: 0 };
    let name = bitdust_messages::service::conversations::protocol_spec().name;
    let to = holders[1].node().peer_id();
    let answer = alice.node().network().request(to, name, bitdust_net::Frame::one(wire::encode(&req))).await.unwrap();
    assert_eq!(wire::decode::<Response>(&answer).unwrap(), Response::Stored);
    // issue 15, test 6: a stranger cannot leave anything without a proof of work, nor more than its share
    let stranger = bitdust_core::keys::NodeKeys::generate();
    let config = bitdust_net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![holders[1].node().addresses()[0].parse().unwrap()],
        protocols: vec![bitdust_messages::service::conversations::protocol_spec()],
        ..bitdust_net::NetConfig::default()
    };
    let (net, _inbounds) = bitdust_net::Network::start(stranger.keypair(), config).await.unwrap();
    let device = bitdust_messages::proto::e2e::Device::new().device_key(&stranger);
    let target = holders[1].node().peer_id();
    let deposit = |i: u32, with_work: bool| {
        let (net, device) = (net.clone(), device.clone());
        let (recipient, sender) = (bob_id.to_bytes(), stranger.peer_id().to_bytes());
        async move {
            let envelope = Envelope { device, message_type: 1, ciphertext: i.to_le_bytes().repeat(64) };
            let pow =
                if with_work { pow::solve(&recipient, &sender, &envelope.ciphertext, pow::DEPOSIT_BITS) } else { 0 };
            let req = Request::Deposit { recipient, envelope, pow };
            let name = bitdust_messages::service::conversations::protocol_spec().name;
            let bytes = net.request(target, name, bitdust_net::Frame::one(wire::encode(&req))).await.unwrap();
            wire::decode::<Response>(&bytes).unwrap()
        }
    };
    assert!(matches!(deposit(0, false).await, Response::Error(e) if e.contains("proof of work")));
    let mut kept = 0;
    loop {
        match deposit(kept, true).await {
            Response::Stored => kept += 1,
            Response::Error(e) => {
                assert!(e.contains("full"), "{e}");
                break;
            }
            other => panic!("{other:?}"),
        }
        assert!(u64::from(kept) <= STRANGER_ITEMS, "past its share");
    }
    assert_eq!(u64::from(kept), STRANGER_ITEMS);
    assert_eq!(messages(holders[1]).mailbox_items(&bob_id).unwrap(), AWAY + 2 + STRANGER_ITEMS);

    // one mailbox goes away too; bob starts again and collects from the other
    holders[0].shutdown().await;
    let bob = restart(&bob_home, loopback(&b), storage_and_messages(None)).await;
    let bm = messages(&bob);
    until("bob has collected his mail", || {
        bm.history("alice", 1000)
            .map(|h| h.iter().filter(|e| !e.outgoing).count() == AWAY as usize + 1)
            .unwrap_or(false)
    })
    .await;
    let texts: Vec<String> =
        bm.history("alice", 1000).unwrap().into_iter().filter(|e| !e.outgoing).map(|e| e.text).collect();
    let expected: Vec<String> = std::iter::once("are you there?".to_string())
        .chain((0..AWAY).map(|i| format!("while you were away #{i} {CANARY}")))
        .collect();
    assert_eq!(texts, expected, "each once, in order");
    // carol's first message opened with the published prekey (bob has not added her: it waits as a stranger's)
    let carol_id = carol.node().peer_id();
    until("bob has carol's message", || bm.history_of(&carol_id, 10).map(|h| h.len() == 1).unwrap_or(false)).await;
    assert_eq!(bm.history_of(&carol_id, 10).unwrap()[0].text, "hello bob, we never met");
    // acknowledged: gone from the mailbox that answered
    until("the mailbox is empty", || messages(holders[1]).mailbox_items(&bob_id).unwrap() == 0).await;
    // the stranger's junk and alice's did not decrypt: refused, counted and deleted with the rest
    assert_eq!(bm.refused(), STRANGER_ITEMS + 1);

    // issue 15, test 3: the text never reached any file of a supplier or the bootstrap node (only the two ends')
    for name in ["bootstrap", "supplier-0", "supplier-1", "supplier-2"] {
        assert!(!contains(&dir.path().join(name), CANARY.as_bytes()), "{name}'s home holds the text");
    }
    assert!(contains(&dir.path().join("bob"), CANARY.as_bytes()), "the check can find it where it is");
}
