//! Public shares and keyword search through the real protocol (issue 16, test 5): in a network of 100 in-process
//! nodes, alice publishes a share; a node that never met her finds it by keyword (DHT providers, then alice's signed
//! listing) and restores it byte for byte; mallory, a raw node that provides the same keyword, answers with a forged
//! entry in alice's name and with a replay of alice's genuine entry: both refused. Revoked, the share is no longer
//! listed and its grant is refused.

mod common;

use bitdust_messages::proto::public::{keyword_key, SignedPublicEntry};
use bitdust_messages::proto::wire::{self, Request, Response};
use bitdust_messages::service::conversations::protocol_spec;
use bitdust_node::{Config, Progress};
use bitdust_storage::Storage;
use bitdust_testkit::{home, within};
use common::{customer_config, full_node, messages, messages_wing};

/// Nodes in the network, all told.
const NODES: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_public_share_across_100_nodes_and_refuses_forged_entries() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let boot = full_node(home(dir.path(), "bootstrap", &plain, None), &[], None).await;
    let b = [boot.node().addresses()[0].clone()];
    let mut nodes = Vec::new();
    for i in 0..2 {
        nodes.push(full_node(home(dir.path(), &format!("supplier-{i}"), &plain, None), &b, Some(1 << 30)).await);
    }
    let alice = full_node(home(dir.path(), "alice", &customer_config(2, 64 << 20), None), &b, None).await;
    let storage = alice.service::<Storage>().unwrap();
    within("alice hires", storage.ensure_suppliers()).await.unwrap();
    let searcher = full_node(home(dir.path(), "searcher", &plain, None), &b, None).await;
    // the rest of the 100, eight joining at a time
    let others: Vec<String> = (0..NODES - 5).map(|i| format!("node-{i}")).collect();
    let mut crowd = Vec::new();
    for names in others.chunks(8) {
        let starts = names.iter().map(|n| common::node(home(dir.path(), n, &plain, None), &b, messages_wing));
        crowd.extend(futures::future::join_all(starts).await);
    }
    assert_eq!(3 + 1 + 1 + crowd.len(), NODES);

    // alice publishes a folder to anyone
    let src = dir.path().join("lakes");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("map.txt"), "the lakes of the Alps".repeat(1000)).unwrap();
    let v1 = within("backup", storage.backup(&src, Progress::new())).await.unwrap();
    let a = messages(&alice);
    let started = std::time::Instant::now();
    let share = within(
        "publish",
        a.share_public(&v1.name, None, "Alpine lakes", "Maps of the lakes of the Alps", "maps, lakes alps"),
    )
    .await
    .unwrap();
    eprintln!("public share made and announced in {:.3} s", started.elapsed().as_secs_f64());
    assert_eq!(share.grantees[0].name.as_deref(), Some("anyone"));

    // mallory provides the same keyword and lists a forged entry in alice's name, and a replay of alice's own
    let mallory = bitdust_core::keys::NodeKeys::generate();
    let config = bitdust_net::NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: vec![b[0].parse().unwrap()],
        protocols: vec![protocol_spec()],
        ..bitdust_net::NetConfig::default()
    };
    let (net, mut inbounds) = bitdust_net::Network::start(mallory.keypair(), config).await.unwrap();
    let name = protocol_spec().name;
    within("mallory joins", net.bootstrap()).await.unwrap();
    let ask = Request::Listing(vec!["lakes".into()]);
    let bytes = within("mallory reads alice's listing", async {
        net.request(alice.node().peer_id(), name.clone(), bitdust_net::Frame::one(wire::encode(&ask))).await
    })
    .await
    .unwrap();
    let Response::Listing(genuine) = wire::decode::<Response>(&bytes).unwrap() else { panic!("alice lists") };
    assert_eq!(genuine.len(), 1, "alice lists her share to anyone");
    let mut forged: SignedPublicEntry = genuine[0].clone();
    forged.entry.title = "Alpine lakes (better copy)".into();
    let listing = Response::Listing(vec![forged, genuine[0].clone()]);
    let mut queue = inbounds.take(&name).unwrap();
    let responder = net.clone();
    tokio::spawn(async move {
        while let Some(req) = queue.recv().await {
            let _ = responder.respond(req.channel, bitdust_net::Frame::one(wire::encode(&listing))).await;
        }
    });
    within("mallory provides the keyword", net.start_providing(keyword_key("lakes"))).await.unwrap();

    // a node that never met alice searches: alice's entry once, mallory's two refused
    let s = messages(&searcher);
    let found = within("search", s.search("alps lakes")).await.unwrap();
    eprintln!("search over {NODES} nodes: {:.3} s, {} publishers asked", found.seconds, found.providers);
    assert_eq!(found.hits.len(), 1, "{found:?}");
    assert_eq!(found.refused, 2, "a forged entry and a replayed one: {found:?}");
    let hit = &found.hits[0];
    assert_eq!((hit.title.as_str(), hit.owner.as_str()), ("Alpine lakes", alice.node().peer_id().to_string().as_str()));
    assert_eq!(hit.score, 2, "lakes and alps");
    assert!(s.search("!! a").await.unwrap().words.is_empty(), "no usable word: nothing looked for");
    assert!(within("nothing matches", s.search("volcanoes")).await.unwrap().hits.is_empty());
    let out = dir.path().join("found");
    let owner = hit.owner.clone();
    within("restore what was found", s.restore_shared(&owner, &v1.name, None, &out, false)).await.unwrap();
    assert_eq!(std::fs::read(out.join("map.txt")).unwrap(), std::fs::read(src.join("map.txt")).unwrap());

    // revoked: listed no more, and the grant the searcher holds is refused by alice's suppliers
    within("revoke", a.revoke(&share.id, None)).await.unwrap();
    let again = within("search again", s.search("lakes")).await.unwrap();
    assert!(again.hits.is_empty(), "{again:?}");
    let refused = s.restore_shared(&owner, &v1.name, None, &dir.path().join("again"), false).await;
    assert!(format!("{:#}", refused.unwrap_err()).contains("revoked the grant"));
    drop(crowd);
}
