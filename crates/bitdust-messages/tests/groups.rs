//! Group conversations through the real protocol (in-process nodes on 127.0.0.1): rosters signed by the admin,
//! Megolm sender keys given over Olm, rotation on removal, late joiners (issue 16, test 3).

mod common;

use std::sync::Arc;

use bitdust_messages::Messages;
use bitdust_node::{Config, Daemon};
use bitdust_testkit::{home, until};
use common::{messages, messages_wing};

async fn node(dir: &std::path::Path, name: &str, bootstrap: &[String]) -> Daemon {
    common::node(home(dir, name, &Config::default(), None), bootstrap, messages_wing).await
}

fn texts(m: &Messages, group: &str) -> Vec<String> {
    m.group_history(group, 1000).map(|h| h.into_iter().map(|e| e.text).collect()).unwrap_or_default()
}

fn has(m: &Messages, group: &str, text: &str) -> bool {
    texts(m, group).iter().any(|t| t == text)
}

/// Whether `m` holds the roster of `group` at `revision`.
fn at_revision(m: &Messages, group: &str, revision: u64) -> bool {
    m.group(group).is_ok_and(|g| g.roster.roster.revision == revision)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_talk_a_removed_member_is_cut_off_and_a_late_joiner_reads_from_its_join() {
    let dir = tempfile::tempdir().unwrap();
    let boot = node(dir.path(), "bootstrap", &[]).await;
    let b = [boot.node().addresses()[0].clone()];
    let mut daemons = Vec::new();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        daemons.push(node(dir.path(), name, &b).await);
    }
    let [a, bm, c, d, e]: [Arc<Messages>; 5] = [0, 1, 2, 3, 4].map(|i| messages(&daemons[i]));
    for who in ["bob", "carol", "dave", "erin"] {
        a.add_contact(who, None).await.unwrap();
    }
    bm.add_contact("alice", None).await.unwrap();

    // alice creates the group and adds bob and carol (revision 3)
    let roster = a.group_create("friends").await.unwrap();
    assert_eq!((roster.revision, roster.members.len()), (1, 1));
    assert!(a.group_create("friends").await.is_err(), "one current group of a name");
    a.group_add("friends", "bob", false).await.unwrap();
    a.group_add("friends", "carol", false).await.unwrap();
    until("bob and carol hold the roster", || at_revision(&bm, "friends", 3) && at_revision(&c, "friends", 3)).await;
    // only the admin changes the roster
    assert!(bm.group_add("friends", "alice", false).await.is_err());
    assert!(bm.group_remove("friends", "alice").await.is_err());

    // everyone writes; everyone else reads (sender keys are given as members take the roster)
    for (m, text) in [(&a, "hello from alice"), (&bm, "hello from bob"), (&c, "hello from carol")] {
        let sent = m.group_send("friends", text).await.unwrap();
        assert_eq!(sent.delivered + sent.stored, 2, "{text}: {sent:?}");
    }
    until("every member has the three messages", || {
        [&a, &bm, &c]
            .iter()
            .all(|m| ["hello from alice", "hello from bob", "hello from carol"].iter().all(|t| has(m, "friends", t)))
    })
    .await;
    assert_eq!(texts(&bm, "friends").len(), 3, "each once");

    // alice removes carol: carol learns it, and what follows does not reach her
    a.group_remove("friends", "carol").await.unwrap();
    until("carol is out", || c.group("friends").is_ok_and(|g| !g.active && g.roster.roster.revision == 4)).await;
    until("bob holds revision 4", || at_revision(&bm, "friends", 4)).await;
    assert!(c.group_send("friends", "still here?").await.is_err(), "a removed member cannot send");
    let sent = a.group_send("friends", "after carol").await.unwrap();
    assert_eq!(sent.delivered + sent.stored + sent.missed, 1, "sent to bob only: {sent:?}");
    bm.group_send("friends", "bob after carol").await.unwrap();
    until("alice and bob read on", || has(&bm, "friends", "after carol") && has(&a, "friends", "bob after carol"))
        .await;
    assert!(!has(&c, "friends", "after carol") && !has(&c, "friends", "bob after carol"));

    // dave joins late: he reads from his join, not before
    a.group_add("friends", "dave", false).await.unwrap();
    until("dave holds the roster", || at_revision(&d, "friends", 5)).await;
    for (m, text) in [(&a, "welcome dave"), (&bm, "hi dave")] {
        m.group_send("friends", text).await.unwrap();
    }
    until("dave reads what follows his join", || has(&d, "friends", "welcome dave") && has(&d, "friends", "hi dave"))
        .await;
    assert!(!texts(&d, "friends").iter().any(|t| t.starts_with("hello") || t.contains("after carol")));
    let members = a.group("friends").unwrap().roster.roster.members.len();
    assert_eq!(members, 3, "alice, bob, dave");

    // erin is added with the history: she gets what alice holds, in alice's order, each once, then reads on
    let held = texts(&a, "friends");
    a.group_add("friends", "erin", true).await.unwrap();
    until("erin has the earlier messages", || texts(&e, "friends").len() >= held.len()).await;
    assert_eq!(texts(&e, "friends")[..held.len()], held[..], "the earlier history, as alice holds it");
    bm.group_send("friends", "hi erin").await.unwrap();
    until("erin reads on", || has(&e, "friends", "hi erin")).await;
    assert_eq!(texts(&e, "friends").len(), held.len() + 1);

    // bob leaves: the admin removes him (revision 7), and he no longer sends
    bm.group_leave("friends").await.unwrap();
    until("alice removed bob", || at_revision(&a, "friends", 7)).await;
    assert!(!a.group("friends").unwrap().roster.roster.is_member(&daemons[1].node().peer_id()));
    assert!(bm.group_send("friends", "gone").await.is_err());
    assert_eq!((a.refused(), bm.refused(), d.refused()), (0, 0, 0));
}

/// Issue 16 (groups): a member away catches up from its mailboxes; the admin's group history and keys come back on
/// a new device from the key alone, and the group goes on from it; a removed member who is also one of a member's
/// suppliers (a lying supplier) captured a group envelope from its mailbox and replays it: refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_away_catch_up_history_restores_from_the_key_and_a_removed_member_cannot_replay() {
    use bitdust_messages::proto::groups::GROUP_MESSAGE_TYPE;
    use bitdust_messages::proto::wire::{self, MailItem, Request, Response};
    use bitdust_node::StartOptions;
    use bitdust_storage::Storage;
    use bitdust_testkit::{loopback, restart, start, within};
    use common::{customer_config, full_node, storage_and_messages};

    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let boot = full_node(home(dir.path(), "bootstrap", &plain, None), &[], None).await;
    let b = [boot.node().addresses()[0].clone()];
    // two nodes donate space: supplier-0 and carol; bob and alice each hire both
    let _supplier = full_node(home(dir.path(), "supplier-0", &plain, None), &b, Some(1 << 30)).await;
    let carol = full_node(home(dir.path(), "carol", &plain, None), &b, Some(1 << 30)).await;
    let config = customer_config(2, 1 << 20);
    let bob_home = home(dir.path(), "bob", &config, None);
    let bob = full_node(bob_home.clone(), &b, None).await;
    let hired = within("bob hires", bob.service::<Storage>().unwrap().ensure_suppliers()).await.unwrap();
    let carol_id = carol.node().peer_id();
    assert!(hired.iter().any(|s| s.peer().ok() == Some(carol_id)), "carol holds one of bob's mailboxes");
    let alice_home = home(dir.path(), "alice", &config, None);
    let alice = full_node(alice_home.clone(), &b, None).await;
    within("alice hires", alice.service::<Storage>().unwrap().ensure_suppliers()).await.unwrap();
    let (a, bm, c) = (messages(&alice), messages(&bob), messages(&carol));
    for (m, others) in [(&a, ["bob", "carol"]), (&bm, ["alice", "carol"]), (&c, ["alice", "bob"])] {
        for o in others {
            m.add_contact(o, None).await.unwrap();
        }
    }
    within("bob publishes his prekey", bm.publish_prekey()).await.unwrap();
    assert_eq!(within("bob's contacts", bm.push_mailbox_contacts(true)).await, 2);
    a.group_create("team").await.unwrap();
    a.group_add("team", "bob", false).await.unwrap();
    a.group_add("team", "carol", false).await.unwrap();
    until("bob and carol hold the roster", || at_revision(&bm, "team", 3) && at_revision(&c, "team", 3)).await;
    for (m, text) in [(&a, "alice here"), (&bm, "bob here"), (&c, "carol here")] {
        m.group_send("team", text).await.unwrap();
    }
    until("everyone has the three", || [&a, &bm, &c].iter().all(|m| texts(m, "team").len() == 3)).await;

    // bob goes away: what alice and carol write waits in his mailboxes
    bob.shutdown().await;
    drop((bob, bm));
    for i in 0..3 {
        let sent = within("alice sends", a.group_send("team", &format!("while bob is away #{i}"))).await.unwrap();
        assert_eq!((sent.delivered, sent.stored, sent.missed), (1, 1, 0), "carol directly, bob's mailboxes: {sent:?}");
    }
    c.group_send("team", "carol while bob is away").await.unwrap();
    // carol, one of bob's suppliers, keeps a copy of an envelope alice left for him
    let mailbox = carol.node().db().records::<MailItem>("messages/mailbox", None, 1000).unwrap();
    let captured = mailbox
        .into_iter()
        .map(|(_, item)| item)
        .find(|item| item.from == alice.node().peer_id().to_bytes() && item.envelope.message_type == GROUP_MESSAGE_TYPE)
        .expect("alice's group envelope waits in carol's mailbox for bob")
        .envelope;
    let bob = restart(&bob_home, loopback(&b), storage_and_messages(None)).await;
    let bm = messages(&bob);
    until("bob catches up from his mailboxes", || texts(&bm, "team").len() == 7).await;
    let bob_texts = texts(&bm, "team");
    for t in ["while bob is away #0", "while bob is away #1", "while bob is away #2", "carol while bob is away"] {
        assert_eq!(bob_texts.iter().filter(|x| *x == t).count(), 1, "{t} once: {bob_texts:?}");
    }

    // carol is removed; she replays the envelope she captured, straight to bob: refused, nothing added
    a.group_remove("team", "carol").await.unwrap();
    until("bob holds revision 4", || at_revision(&bm, "team", 4)).await;
    let name = bitdust_messages::service::conversations::protocol_spec().name;
    let ask = |req: Request| {
        let net = carol.node().network().clone();
        let (to, name) = (bob.node().peer_id(), name.clone());
        async move {
            wire::decode::<Response>(&net.request(to, name, bitdust_net::Frame::one(wire::encode(&req))).await.unwrap())
                .unwrap()
        }
    };
    assert!(matches!(ask(Request::Deliver(captured.clone())).await, Response::Error(_)), "a replay from carol");
    let Response::DeliveredMany(answers) = ask(Request::DeliverMany(vec![captured])).await else {
        panic!("a batch is answered per envelope")
    };
    assert!(matches!(answers[..], [Response::Error(_)]), "refused inside a batch too: {answers:?}");
    assert_eq!(texts(&bm, "team").len(), 7, "nothing added");
    a.group_send("team", "after carol").await.unwrap();
    until("bob reads on", || has(&bm, "team", "after carol")).await;
    assert!(!has(&c, "team", "after carol"), "carol cannot read what follows her removal");

    // alice's history goes to her suppliers; her device is lost; a new one restores the group from the key
    assert!(within("alice syncs", a.sync_history()).await.unwrap());
    let old_history = a.group_history("team", 1000).unwrap();
    let old_roster = a.group("team").unwrap().roster;
    let keys = alice_home.keys().unwrap();
    alice.shutdown().await;
    drop((alice, a));
    let new_home = home(dir.path(), "alice-new", &config, Some(keys));
    let quiet = StartOptions { quiet: true, ..loopback(&b) };
    let device = start(new_home.clone(), quiet, storage_and_messages(None)).await;
    let storage = device.service::<Storage>().unwrap();
    within("the catalog is recovered", async {
        while storage.recover_catalog().await.is_err() {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    let na = messages(&device);
    assert!(na.group("team").is_err(), "a new device knows no group before it restores");
    let restored = within("restore", na.restore_history()).await.unwrap();
    assert_eq!((restored.groups, restored.group_messages), (1, old_history.len()));
    assert_eq!(na.group_history("team", 1000).unwrap(), old_history);
    assert_eq!(na.group("team").unwrap().roster, old_roster);
    device.shutdown().await;
    drop((device, na, storage));

    // the group goes on from the new device, both ways (a new sender key: no Megolm index is used twice)
    let device = restart(&new_home, loopback(&b), storage_and_messages(None)).await;
    within("announced", device.node().wait_announced()).await;
    let na = messages(&device);
    na.group_send("team", "alice on her new device").await.unwrap();
    until("bob reads the new device", || has(&bm, "team", "alice on her new device")).await;
    bm.group_send("team", "welcome back").await.unwrap();
    until("the new device reads bob", || has(&na, "team", "welcome back")).await;
    assert!(!has(&c, "team", "alice on her new device") && !has(&c, "team", "welcome back"));
}
