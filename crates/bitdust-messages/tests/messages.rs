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
/// stranger's forged envelope is refused.
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
    // the inbox has one conversation; the event log names every message (not its text)
    let conversations = a.conversations().unwrap();
    assert_eq!(conversations.len(), 1);
    assert_eq!((conversations[0].0, conversations[0].1), (bob.node().peer_id(), 2 * N as u64));
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
    assert_eq!(bm.mark_read("alice").await.unwrap(), N);
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
    assert_eq!(a.history("bob", 10 * N).unwrap().len(), 2 * N, "a receipt adds nothing to the conversation");

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
    assert!(matches!(ask(Request::Deliver(forged)).await, Response::Error(_)));
    assert_eq!(bm.refused(), 1);
    assert_eq!(bm.history("alice", 10 * N).unwrap().len(), 2 * N);
    assert!(matches!(ask(Request::Presence).await, Response::Error(_)), "presence is for contacts only");

    // bob goes away: alice sees him offline, last seen before
    bob.shutdown().await;
    a.refresh_presence().await;
    let p = a.presence_of(&bob.node().peer_id()).unwrap();
    assert!(!p.online && p.last_seen_unix > 0, "{p:?}");
}
