//! Sharing a backup through the real protocol (issue 16, test 2): alice shares a backup with bob and with carol; bob
//! lists and restores it byte for byte from alice's suppliers; alice revokes bob's share and her suppliers refuse
//! his next fetch at once, with the grant he holds, while carol's share still works; a version made after holds
//! keys bob never gets.

mod common;

use bitdust_node::{Config, Progress};
use bitdust_storage::Storage;
use bitdust_testkit::{home, until, within};
use common::{customer_config, full_node, messages, supplier_network};

fn tree(root: &std::path::Path, round: u8) {
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("a.txt"), format!("alice's notes, round {round}")).unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(31) as u8) ^ round).collect();
    std::fs::write(root.join("sub/big.bin"), big).unwrap();
}

fn same_tree(a: &std::path::Path, b: &std::path::Path) -> bool {
    ["a.txt", "sub/big.bin"].iter().all(|f| std::fs::read(a.join(f)).ok() == std::fs::read(b.join(f)).ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_restores_byte_for_byte_and_a_revoked_grantee_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let (_network, b) = supplier_network(dir.path(), 3).await;
    let alice = full_node(home(dir.path(), "alice", &customer_config(3, 64 << 20), None), &b, None).await;
    let storage = alice.service::<Storage>().unwrap();
    within("alice hires", storage.ensure_suppliers()).await.unwrap();
    let bob = full_node(home(dir.path(), "bob", &plain, None), &b, None).await;
    let carol = full_node(home(dir.path(), "carol", &plain, None), &b, None).await;
    let (a, bm, c) = (messages(&alice), messages(&bob), messages(&carol));
    a.add_contact("bob", None).await.unwrap();
    a.add_contact("carol", None).await.unwrap();
    bm.add_contact("alice", None).await.unwrap();

    let src = dir.path().join("docs");
    tree(&src, 1);
    let v1 = within("backup", storage.backup(&src, Progress::new())).await.unwrap();
    assert!(a.share("nothing-here", None, "bob", false).await.is_err(), "no such backup");
    let started = std::time::Instant::now();
    let to_bob = within("share with bob", a.share(&v1.name, None, "bob", false)).await.unwrap();
    assert!(to_bob.grantees[0].delivered, "bob is online: the key went directly");
    until("bob holds it", || bm.shared().is_ok_and(|s| s.len() == 1)).await;
    eprintln!("shared in {:.3} s (manifest on the suppliers, the key in bob's hands)", started.elapsed().as_secs_f64());
    let to_carol = within("share with carol", a.share(&v1.name, Some(1), "carol", false)).await.unwrap();
    until("bob and carol hold the shares", || {
        bm.shared().is_ok_and(|s| s.len() == 1) && c.shared().is_ok_and(|s| s.len() == 1)
    })
    .await;
    let shared = bm.shared().unwrap();
    assert_eq!(
        (shared[0].backup.as_str(), shared[0].owner_name.as_deref(), shared[0].revoked),
        (v1.name.as_str(), Some("alice"), false)
    );
    assert_eq!(a.shares().unwrap().len(), 2);

    // bob lists it (the owner's name as a contact) and restores it byte for byte
    let listing = within("bob lists", bm.shared_listing("alice", &v1.name, None)).await.unwrap();
    assert_eq!(listing.versions.len(), 1);
    let mut paths: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, vec!["", "a.txt", "sub", "sub/big.bin"]);
    let out = dir.path().join("bob-restore");
    let report = within("bob restores", bm.restore_shared("alice", &v1.name, None, &out, false)).await.unwrap();
    assert_eq!(report.files, 2);
    assert!(same_tree(&src, &out), "byte for byte");

    // alice revokes bob's share: every supplier confirms, and refuses his next fetch with the grant he holds
    let started = std::time::Instant::now();
    let (after, revoked, confirmed, asked) = within("revoke", a.revoke(&to_bob.id, None)).await.unwrap();
    let revoke_secs = started.elapsed().as_secs_f64();
    assert_eq!((revoked, confirmed, asked), (1, 3, 3), "{after:?}");
    assert!(after.grantees.iter().all(|g| g.revoked));
    assert!(a.revoke(&to_bob.id, None).await.is_err(), "revoked already");
    let again = dir.path().join("bob-again");
    let refused = within("bob tries again", bm.restore_shared("alice", &v1.name, None, &again, false)).await;
    let error = format!("{:#}", refused.expect_err("the suppliers refuse a revoked grant"));
    assert!(error.contains("revoked the grant"), "refused for the revocation: {error}");
    until("bob learns it", || bm.shared().is_ok_and(|s| s[0].revoked)).await;
    eprintln!("revoked in {revoke_secs:.3} s (until every supplier confirmed)");

    // carol's share is another grant: it still works
    let carol_out = dir.path().join("carol-restore");
    within("carol restores", c.restore_shared(&alice.node().peer_id().to_string(), &v1.name, None, &carol_out, false))
        .await
        .unwrap();
    assert!(same_tree(&src, &carol_out));

    // a new version: new keys; bob's share never names it, and carol's names only version 1
    tree(&src, 2);
    let v2 = within("backup 2", storage.backup(&src, Progress::new())).await.unwrap();
    assert_eq!(v2.version, 2);
    let err = bm.restore_shared("alice", &v1.name, Some(2), &dir.path().join("bob-v2"), false).await;
    assert!(err.is_err(), "bob holds no key of version 2");
    let alice_id = alice.node().peer_id().to_string();
    let err = c.restore_shared(&alice_id, &v1.name, Some(2), &dir.path().join("carol-v2"), false).await;
    let err = format!("{:#}", err.unwrap_err());
    assert!(err.contains("not shared"), "carol was given version 1 only: {err}");
    assert_eq!(to_carol.version, Some(1));
    assert_eq!((a.refused(), bm.refused(), c.refused()), (0, 0, 0));
}

/// A share with a group follows its roster: every member gets it, a member added later too, a member removed is
/// revoked on the suppliers at once (its next fetch refused) while the others read on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_share_follows_the_roster() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let (_network, b) = supplier_network(dir.path(), 2).await;
    let alice = full_node(home(dir.path(), "alice", &customer_config(2, 64 << 20), None), &b, None).await;
    let storage = alice.service::<Storage>().unwrap();
    within("alice hires", storage.ensure_suppliers()).await.unwrap();
    let mut members = Vec::new();
    for name in ["bob", "carol", "dave"] {
        members.push(full_node(home(dir.path(), name, &plain, None), &b, None).await);
    }
    let a = messages(&alice);
    let [bm, c, d] = [0, 1, 2].map(|i| messages(&members[i]));
    for name in ["bob", "carol", "dave"] {
        a.add_contact(name, None).await.unwrap();
    }
    a.group_create("team").await.unwrap();
    a.group_add("team", "bob", false).await.unwrap();
    a.group_add("team", "carol", false).await.unwrap();
    let src = dir.path().join("docs");
    tree(&src, 1);
    let v1 = within("backup", storage.backup(&src, Progress::new())).await.unwrap();
    assert!(a.share(&v1.name, None, "group:nobody", false).await.is_err(), "no such group");
    let share = within("share with the group", a.share(&v1.name, None, "group:team", false)).await.unwrap();
    assert_eq!(share.grantees.len(), 2, "{share:?}");
    let alice_id = alice.node().peer_id().to_string();
    for (m, who) in [(&bm, "bob"), (&c, "carol")] {
        until("the member holds the share", || m.shared().is_ok_and(|s| s.len() == 1)).await;
        let out = dir.path().join(format!("{who}-out"));
        within("a member restores", m.restore_shared(&alice_id, &v1.name, None, &out, false)).await.unwrap();
        assert!(same_tree(&src, &out), "{who}");
    }

    // dave joins: he gets it; carol is removed: her grant is revoked on alice's suppliers
    a.group_add("team", "dave", false).await.unwrap();
    until("dave holds the share", || d.shared().is_ok_and(|s| s.len() == 1)).await;
    within("dave restores", d.restore_shared(&alice_id, &v1.name, None, &dir.path().join("dave-out"), false))
        .await
        .unwrap();
    a.group_remove("team", "carol").await.unwrap();
    let info = a.shares().unwrap().remove(0);
    let carol_id = members[1].node().peer_id().to_string();
    assert!(info.grantees.iter().any(|g| g.peer == carol_id && g.revoked), "{info:?}");
    assert_eq!(info.grantees.iter().filter(|g| !g.revoked).count(), 2, "bob and dave: {info:?}");
    let refused = c.restore_shared(&alice_id, &v1.name, None, &dir.path().join("carol-again"), false).await;
    assert!(format!("{:#}", refused.unwrap_err()).contains("revoked the grant"));
    within("bob reads on", bm.restore_shared(&alice_id, &v1.name, None, &dir.path().join("bob-again"), false))
        .await
        .unwrap();
    // revoked from everyone: a member added afterwards does not get it
    a.revoke(&share.id, None).await.unwrap();
    a.group_add("team", "carol", false).await.unwrap();
    let info = a.shares().unwrap().remove(0);
    assert!(info.grantees.iter().all(|g| g.revoked), "{info:?}");
}

/// Write access (issue 16, test 4): bob, who may write, adds a version; alice's node takes it (its author recorded)
/// and gives the share again; alice and carol restore it byte for byte; carol, who may only read, sends a version
/// anyway through the real protocol: alice's node refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_adds_a_version_everyone_restores_and_a_reader_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let (_network, b) = supplier_network(dir.path(), 3).await;
    let config = customer_config(2, 64 << 20);
    let alice = full_node(home(dir.path(), "alice", &config, None), &b, None).await;
    let bob = full_node(home(dir.path(), "bob", &config, None), &b, None).await;
    let carol = full_node(home(dir.path(), "carol", &config, None), &b, None).await;
    let storage = alice.service::<Storage>().unwrap();
    for d in [&alice, &bob, &carol] {
        within("hires", d.service::<Storage>().unwrap().ensure_suppliers()).await.unwrap();
    }
    let (a, bm, c) = (messages(&alice), messages(&bob), messages(&carol));
    a.add_contact("bob", None).await.unwrap();
    a.add_contact("carol", None).await.unwrap();
    let src = dir.path().join("project");
    tree(&src, 1);
    let v1 = within("backup", storage.backup(&src, Progress::new())).await.unwrap();
    assert!(a.share(&v1.name, Some(1), "bob", true).await.is_err(), "a share others write to has every version");
    let rw = within("share read-write with bob", a.share(&v1.name, None, "bob", true)).await.unwrap();
    assert!(rw.write);
    within("share read-only with carol", a.share(&v1.name, None, "carol", false)).await.unwrap();
    let alice_id = alice.node().peer_id().to_string();
    until("both hold their shares", || {
        bm.shared().is_ok_and(|s| s.len() == 1 && s[0].write) && c.shared().is_ok_and(|s| s.len() == 1 && !s[0].write)
    })
    .await;
    assert!(!c.may_write(&alice_id, &v1.name).unwrap(), "carol's says read-only");

    // bob writes a new tree
    let bobs = dir.path().join("bobs-version");
    tree(&bobs, 2);
    std::fs::write(bobs.join("from-bob.txt"), "bob was here").unwrap();
    within("bob writes", bm.contribute(&alice_id, &v1.name, &bobs)).await.unwrap();
    // the version enters the catalog first, then the share records its author: wait on the record
    until("alice took version 2 and recorded its author", || {
        a.shares().is_ok_and(|s| s.iter().any(|s| s.id == rw.id && !s.contributions.is_empty()))
    })
    .await;
    assert_eq!(storage.catalog().unwrap().backup(&v1.name).unwrap().versions.len(), 2);
    let info = a.shares().unwrap().into_iter().find(|s| s.id == rw.id).unwrap();
    assert_eq!(info.contributions.len(), 1);
    assert_eq!((info.contributions[0].version, info.contributions[0].author_name.as_deref()), (2, Some("bob")));
    let mine = dir.path().join("alice-v2");
    within("alice restores it", storage.restore(&v1.name, Some(2), &mine, false, Progress::new())).await.unwrap();
    assert!(same_tree(&bobs, &mine) && std::fs::read(mine.join("from-bob.txt")).unwrap() == b"bob was here");
    // carol gets the share again with version 2, and restores it byte for byte
    within("carol's share names version 2", async {
        while !c.shared_listing(&alice_id, &v1.name, None).await.is_ok_and(|l| l.versions.len() == 2) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    })
    .await;
    let carols = dir.path().join("carol-v2");
    within("carol restores v2", c.restore_shared(&alice_id, &v1.name, Some(2), &carols, false)).await.unwrap();
    assert!(same_tree(&bobs, &carols) && carols.join("from-bob.txt").exists());

    // carol writes anyway (past her own node's check): alice's node refuses it, nothing is added
    let hers = dir.path().join("carols-version");
    tree(&hers, 3);
    let refused = within("carol tries to write", c.contribute(&alice_id, &v1.name, &hers)).await;
    let error = format!("{:#}", refused.expect_err("a reader's version is refused"));
    assert!(error.contains("may not write"), "{error}");
    assert_eq!(storage.catalog().unwrap().backup(&v1.name).unwrap().versions.len(), 2);
    // revoked, bob cannot write either
    a.revoke(&rw.id, None).await.unwrap();
    let refused = within("bob after the revoke", bm.contribute(&alice_id, &v1.name, &hers)).await;
    assert!(refused.is_err());
}

/// A path inside a backup (`share NAME:PATH`): bob gets a copy of that folder of the version and nothing else (the
/// listing and the restore hold only its files; the grants cover only the copy's fragments); a path that is not in
/// the backup is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_path_holds_only_that_path() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let (_network, b) = supplier_network(dir.path(), 3).await;
    let alice = full_node(home(dir.path(), "alice", &customer_config(3, 64 << 20), None), &b, None).await;
    let storage = alice.service::<Storage>().unwrap();
    within("alice hires", storage.ensure_suppliers()).await.unwrap();
    let bob = full_node(home(dir.path(), "bob", &plain, None), &b, None).await;
    let (a, bm) = (messages(&alice), messages(&bob));
    a.add_contact("bob", None).await.unwrap();
    let src = dir.path().join("docs");
    tree(&src, 1);
    let v1 = within("backup", storage.backup(&src, Progress::new())).await.unwrap();
    tree(&src, 2);
    let v2 = within("backup again", storage.backup(&src, Progress::new())).await.unwrap();
    assert_eq!((v2.name.as_str(), v2.version), (v1.name.as_str(), 2));
    for missing in ["nothing", "sub/none.bin", "..", "sub/../a.txt"] {
        let refused = a.share(&format!("{}/{missing}", v1.name), None, "bob", false).await;
        assert!(refused.is_err(), "{missing}");
    }
    let shared = format!("{}/sub", v1.name);
    within("share the path", a.share(&shared, None, "bob", false)).await.unwrap();
    assert!(a.share(&shared, None, "bob", true).await.is_err(), "a path is shared read-only");
    let alice_id = alice.node().peer_id().to_string();
    until("bob holds it", || bm.shared().is_ok_and(|s| s.len() == 1 && s[0].backup == shared)).await;
    let listing = within("bob lists it", bm.shared_listing(&alice_id, &shared, None)).await.unwrap();
    let names: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
    assert!(names.contains(&"big.bin") && !names.iter().any(|n| n.contains("a.txt")), "{names:?}");
    let numbers: Vec<u32> = listing.versions.iter().map(|v| v.version).collect();
    assert_eq!((listing.version, numbers), (2, vec![2]), "the latest version's path, under its own number");
    let out = dir.path().join("bob-out");
    within("bob restores it", bm.restore_shared(&alice_id, &shared, None, &out, false)).await.unwrap();
    assert_eq!(std::fs::read(out.join("big.bin")).unwrap(), std::fs::read(src.join("sub/big.bin")).unwrap());
    assert!(!out.join("a.txt").exists() && !out.join("sub").exists());
    // the copy is a hidden backup: alice's own list is unchanged
    let catalog = storage.catalog().unwrap();
    assert_eq!(catalog.backups.iter().filter(|b| !b.name.starts_with("shared/")).count(), 1);
}

/// Sharing an incremental version (issue 18) against a grantee who would read more: alice backs up a folder with a
/// secret file, deletes the secret and backs up again, and shares only version 2 with bob. The blocks bob is
/// granted hold the secret's chunk (version 1's pack), but no tree he can open names it: his listing and restore
/// are version 2 exactly, version 1 is refused, and nothing he keeps holds the secret. While the share lives,
/// forget + prune leave his blocks where his manifest says (his restore still works); once revoked, prune repacks
/// them and alice's own restore is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_share_opens_only_its_version_and_survives_prune() {
    let dir = tempfile::tempdir().unwrap();
    let (_network, b) = supplier_network(dir.path(), 3).await;
    let alice = full_node(home(dir.path(), "alice", &customer_config(3, 64 << 20), None), &b, None).await;
    let storage = alice.service::<Storage>().unwrap();
    within("alice hires", storage.ensure_suppliers()).await.unwrap();
    let bob = full_node(home(dir.path(), "bob", &Config::default(), None), &b, None).await;
    let (a, bm) = (messages(&alice), messages(&bob));
    a.add_contact("bob", None).await.unwrap();
    bm.add_contact("alice", None).await.unwrap();

    let src = dir.path().join("docs");
    tree(&src, 1);
    let canary = format!("CANARY-{:032x}", rand_u128());
    std::fs::write(src.join("secret.txt"), canary.repeat(100)).unwrap();
    let v1 = within("backup 1", storage.backup(&src, Progress::new())).await.unwrap();
    std::fs::remove_file(src.join("secret.txt")).unwrap();
    std::fs::write(src.join("a.txt"), "alice's notes, round 2").unwrap();
    let v2 = within("backup 2", storage.backup(&src, Progress::new())).await.unwrap();
    assert_eq!((v2.version, v2.unchanged_files), (2, 1), "big.bin was taken from version 1 unread");

    let to_bob = within("share version 2", a.share(&v1.name, Some(2), "bob", false)).await.unwrap();
    until("bob holds it", || bm.shared().is_ok_and(|s| s.len() == 1)).await;
    let listing = within("bob lists", bm.shared_listing("alice", &v1.name, None)).await.unwrap();
    let mut paths: Vec<&str> = listing.entries.iter().map(|e| e.path.as_str()).collect();
    paths.sort();
    assert_eq!(paths, vec!["", "a.txt", "sub", "sub/big.bin"], "version 2's tree, no secret");
    assert_eq!((listing.version, listing.versions.len(), listing.versions[0].files), (2, 1, 2));
    let out = dir.path().join("bob-restore");
    let report = within("bob restores", bm.restore_shared("alice", &v1.name, None, &out, false)).await.unwrap();
    assert_eq!(report.files, 2);
    assert!(same_tree(&src, &out) && !out.join("secret.txt").exists(), "version 2, byte for byte");
    let err = bm.restore_shared("alice", &v1.name, Some(1), &dir.path().join("bob-v1"), false).await;
    assert!(format!("{:#}", err.unwrap_err()).contains("not shared"), "version 1 is not his");
    let leaked: Vec<_> = walk(&dir.path().join("bob"))
        .into_iter()
        .chain(walk(&out))
        .filter(|p| std::fs::read(p).is_ok_and(|b| b.windows(canary.len()).any(|w| w == canary.as_bytes())))
        .collect();
    assert!(leaked.is_empty(), "the secret is in bob's files: {leaked:?}");

    // version 1 goes; its pack (big.bin's chunk beside the secret's) is mostly unused, but bob's grant pins it
    let keep = bitdust_storage::proto::policy::KeepPolicy { last: Some(1), ..Default::default() };
    within("forget 1", storage.forget(&v1.name, &keep, false)).await.unwrap();
    let pruned = within("prune while shared", storage.prune(false)).await.unwrap();
    assert_eq!(pruned.blocks_repacked, 0, "a shared block stays where the manifest says: {pruned:?}");
    let again = dir.path().join("bob-again");
    within("bob restores after prune", bm.restore_shared("alice", &v1.name, None, &again, false)).await.unwrap();
    assert!(same_tree(&src, &again));

    // revoked: prune is free to move them, and alice's own restore is whole
    within("revoke", a.revoke(&to_bob.id, None)).await.unwrap();
    let pruned = within("prune after revoke", storage.prune(false)).await.unwrap();
    assert!(pruned.blocks_repacked >= 1 && pruned.freed_bytes > 0, "{pruned:?}");
    let mine = dir.path().join("alice-restore");
    within("alice restores", storage.restore(&v1.name, None, &mine, false, Progress::new())).await.unwrap();
    assert!(same_tree(&src, &mine) && !mine.join("secret.txt").exists());
    assert_eq!((a.refused(), bm.refused()), (0, 0));
}

fn rand_u128() -> u128 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    t.as_nanos() ^ u128::from(std::process::id())
}

/// Every file under `root`.
fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
