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
    for name in ["alice", "bob", "carol", "dave"] {
        daemons.push(node(dir.path(), name, &b).await);
    }
    let [a, bm, c, d]: [Arc<Messages>; 4] = [0, 1, 2, 3].map(|i| messages(&daemons[i]));
    for who in ["bob", "carol", "dave"] {
        a.add_contact(who, None).await.unwrap();
    }
    bm.add_contact("alice", None).await.unwrap();

    // alice creates the group and adds bob and carol (revision 3)
    let roster = a.group_create("friends").await.unwrap();
    assert_eq!((roster.revision, roster.members.len()), (1, 1));
    assert!(a.group_create("friends").await.is_err(), "one current group of a name");
    a.group_add("friends", "bob").await.unwrap();
    a.group_add("friends", "carol").await.unwrap();
    until("bob and carol hold the roster", || at_revision(&bm, "friends", 3) && at_revision(&c, "friends", 3)).await;
    // only the admin changes the roster
    assert!(bm.group_add("friends", "alice").await.is_err());
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
    a.group_add("friends", "dave").await.unwrap();
    until("dave holds the roster", || at_revision(&d, "friends", 5)).await;
    for (m, text) in [(&a, "welcome dave"), (&bm, "hi dave")] {
        m.group_send("friends", text).await.unwrap();
    }
    until("dave reads what follows his join", || has(&d, "friends", "welcome dave") && has(&d, "friends", "hi dave"))
        .await;
    assert!(!texts(&d, "friends").iter().any(|t| t.starts_with("hello") || t.contains("after carol")));
    let members = a.group("friends").unwrap().roster.roster.members.len();
    assert_eq!(members, 3, "alice, bob, dave");

    // bob leaves: the admin removes him (revision 6), and he no longer sends
    bm.group_leave("friends").await.unwrap();
    until("alice removed bob", || at_revision(&a, "friends", 6)).await;
    assert!(!a.group("friends").unwrap().roster.roster.is_member(&daemons[1].node().peer_id()));
    assert!(bm.group_send("friends", "gone").await.is_err());
    assert_eq!((a.refused(), bm.refused(), d.refused()), (0, 0, 0));
}
