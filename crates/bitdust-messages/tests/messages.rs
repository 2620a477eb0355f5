//! Private messages through the real protocol (in-process nodes on 127.0.0.1).

mod common;

use std::sync::Arc;
use std::time::Instant;

use bitdust_messages::proto::e2e::Envelope;
use bitdust_messages::proto::wire::{self, Request, Response};
use bitdust_messages::service::conversations::State;
use bitdust_messages::Messages;
use bitdust_node::{Config, Daemon};
use bitdust_testkit::{home, until, within};
use common::{messages, messages_wing};

async fn node(dir: &std::path::Path, name: &str, bootstrap: &[String]) -> Daemon {
    common::node(home(dir, name, &Config::default(), None), bootstrap, messages_wing).await
}

/// Issue 15, test 1: 1,000 messages each way at once, each delivered exactly once, in the order of its sender; a
/// burst from many tasks travels in batches, each message once and in its task's order; a stranger's forged
/// envelopes are refused, alone or in a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_exchange_a_thousand_messages_each_way_exactly_once_in_order() {
    const N: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let boot = node(dir.path(), "bootstrap", &[]).await;
    let b = [boot.node().addresses()[0].clone()];
    let (alice, bob) = (node(dir.path(), "alice", &b).await, node(dir.path(), "bob", &b).await);
    let (a, bm) = (messages(&alice), messages(&bob));
    let first_event = alice.node().events().last_id();
    a.add_contact("bob", None).await.unwrap();
    bm.add_contact("alice", None).await.unwrap();

    let started = Instant::now();
    let send = |m: Arc<Messages>, to: &'static str, from: &'static str| {
        tokio::spawn(async move {
            for i in 0..N {
                let e = m.send_text(to, &format!("{from} #{i}")).await.unwrap();
                assert_eq!(e.state, State::Delivered, "message {i} to {to}");
            }
        })
    };
    let (x, y) = (send(a.clone(), "bob", "alice"), send(bm.clone(), "alice", "bob"));
    within("alice's messages", x).await.unwrap();
    within("bob's messages", y).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!("{} messages in {secs:.2} s: {:.0} per second", 2 * N, 2.0 * N as f64 / secs);

    for (m, peer, from) in [(&a, "bob", "bob"), (&bm, "alice", "alice")] {
        let history = m.history(peer, 10 * N).unwrap();
        assert_eq!(history.len(), 2 * N, "both directions are in the conversation");
        let incoming: Vec<_> = history.iter().filter(|e| !e.outgoing).collect();
        assert_eq!(incoming.len(), N, "each delivered exactly once");
        for (i, e) in incoming.iter().enumerate() {
            assert_eq!(
                (e.seq, e.text.as_str(), e.state),
                (i as u64 + 1, format!("{from} #{i}").as_str(), State::Received)
            );
        }
        assert!(history.iter().filter(|e| e.outgoing).all(|e| e.state == State::Delivered));
    }
    assert_eq!((a.refused(), bm.refused()), (0, 0));

    // a burst from 16 tasks at once travels in batches (DeliverMany): still each once, each task's in its order
    const TASKS: usize = 16;
    const EACH: usize = 25;
    let batches = bm.batches();
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let a = a.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let e = a.send_text("bob", &format!("burst {t} {i}")).await.unwrap();
                    assert_eq!(e.state, State::Delivered);
                }
            })
        })
        .collect();
    for t in tasks {
        within("a burst", t).await.unwrap();
    }
    assert!(bm.batches() > batches, "some messages travelled together");
    let burst: Vec<String> = bm
        .history("alice", 10 * N)
        .unwrap()
        .into_iter()
        .filter(|e| e.text.starts_with("burst "))
        .map(|e| e.text)
        .collect();
    assert_eq!(burst.len(), TASKS * EACH, "each delivered exactly once");
    for t in 0..TASKS {
        let mine: Vec<&String> = burst.iter().filter(|x| x.starts_with(&format!("burst {t} "))).collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("burst {t} {i}")).collect();
        assert_eq!(mine, expected.iter().collect::<Vec<_>>(), "task {t}'s messages in its order");
    }
    let total = 2 * N + TASKS * EACH;
    // the inbox has one conversation; the event log names every message (not its text)
    let conversations = a.conversations().unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!((conversations[0].0, conversations[0].1), (bob.node().peer_id(), total as u64));
    let events = alice.node().events().since(first_event);
    let received = events
        .iter()
        .filter(
            |e| matches!(&e.kind, bitdust_api::EventKind::Message { outgoing: false, contact, .. } if contact == "bob"),
        )
        .count();
    assert!(received > 0, "message events in the log");
    // the last 10 only
    assert_eq!(a.history("bob", 10).unwrap().len(), 10);

    // read receipts: bob shows the conversation; alice's messages become read, bob's copies of hers too
    assert_eq!(bm.mark_read("alice").await.unwrap(), N + TASKS * EACH);
    assert_eq!(bm.mark_read("alice").await.unwrap(), 0, "each once");
    assert!(bm.history("alice", 10 * N).unwrap().iter().filter(|e| !e.outgoing).all(|e| e.state == State::Read));
    until("alice's messages are read", || {
        a.history("bob", 10 * N).unwrap().iter().filter(|e| e.outgoing).all(|e| e.state == State::Read)
    })
    .await;
    assert!(
        a.history("bob", 10 * N).unwrap().iter().filter(|e| !e.outgoing).all(|e| e.state == State::Received),
        "alice has not shown bob's yet"
    );
    assert_eq!(a.history("bob", 10 * N).unwrap().len(), total, "a receipt adds nothing to the conversation");

    // presence: each sees the other online; a stranger is not told
    a.refresh_presence().await;
    assert!(a.presence_of(&bob.node().peer_id()).is_some_and(|p| p.online));

    // a stranger forwarding alice's device key as its own is refused, and nothing is stored
    let mallory = bitdust_core::keys::NodeKeys::generate();
    let config = bitdust_net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![bob.node().addresses()[0].parse().unwrap()],
        protocols: vec![bitdust_messages::service::conversations::protocol_spec()],
        ..bitdust_net::NetConfig::default()
    };
    let (net, _inbounds) = bitdust_net::Network::start(mallory.keypair(), config).await.unwrap();
    let ask = |req: Request| {
        let net = net.clone();
        let to = bob.node().peer_id();
        async move {
            let name = bitdust_messages::service::conversations::protocol_spec().name;
            let bytes = net.request(to, name, bitdust_net::Frame::one(wire::encode(&req))).await.unwrap();
            wire::decode::<Response>(&bytes).unwrap()
        }
    };
    let Response::Prekey(prekey) = ask(Request::Prekey).await else { panic!("bob gives prekeys to anyone") };
    let forged = Envelope { device: prekey.device.clone(), message_type: 0, ciphertext: vec![3; 300] };
    assert!(matches!(ask(Request::Deliver(forged.clone())).await, Response::Error(_)));
    assert_eq!(bm.refused(), 1);
    // in a batch: each refused on its own; a batch over the limit is refused whole, nothing of it taken
    let Response::DeliveredMany(answers) = ask(Request::DeliverMany(vec![forged.clone(); 3])).await else {
        panic!("a batch is answered envelope by envelope")
    };
    assert!(answers.len() == 3 && answers.iter().all(|a| matches!(a, Response::Error(_))), "{answers:?}");
    assert_eq!(bm.refused(), 4);
    let over = ask(Request::DeliverMany(vec![forged; wire::MAX_BATCH + 1])).await;
    assert!(matches!(over, Response::Error(ref e) if e.contains("at once")), "{over:?}");
    assert_eq!(bm.refused(), 4);
    assert_eq!(bm.history("alice", 10 * N).unwrap().len(), total);
    assert!(matches!(ask(Request::Presence).await, Response::Error(_)), "presence is for contacts only");

    // bob goes away: alice sees him offline, last seen before
    bob.shutdown().await;
    a.refresh_presence().await;
    let p = a.presence_of(&bob.node().peer_id()).unwrap();
    assert!(!p.online && p.last_seen_unix > 0, "{p:?}");
}
