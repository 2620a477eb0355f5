//! Incremental backups (catalog format 2) over an in-process network: deduplication across versions, the parent
//! snapshot, partial restores, and a new device that has only the key.

mod common;

use std::time::Duration;

use bitdust_core::keys::NodeKeys;
use bitdust_node::Progress;
use bitdust_storage::config::CustomerConfig;
use common::*;

/// Bytes the suppliers hold for `customer` (fragments and catalogs).
fn held(net: &Net, customer: &Peer) -> u64 {
    net.suppliers.iter().map(|s| s.store().map_or(0, |st| st.usage_of(&customer.peer_id()).unwrap().0)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_share_their_chunks_and_restore_whole_or_in_part() {
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer_with("alice", 4, 256 << 20, true).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 1);
    let r1 = within("backup 1", alice.backup(&src, Progress::new())).await.unwrap();
    assert_eq!((r1.version, r1.files, r1.symlinks, r1.folders), (1, 4, 2, 5));
    assert!(r1.new_bytes >= 9_000_000 && r1.blocks >= 3, "{r1:?}");
    let catalog = alice.catalog().unwrap();
    assert_eq!((catalog.packs.len(), catalog.snapshots.len()), (1, 1));
    let after_first = held(&net, &alice);

    // nothing changed: nothing read, nothing stored but the catalog
    let r2 = within("backup 2", alice.backup(&src, Progress::new())).await.unwrap();
    assert_eq!((r2.version, r2.new_bytes, r2.blocks, r2.unchanged_files), (2, 0, 0, 4), "{r2:?}");
    let grew = held(&net, &alice) - after_first;
    assert!(grew < 64 * 1024, "an unchanged tree stored {grew} bytes");

    // one byte changed in the middle of the 9 MB file (size and mtime kept: the ctime tells)
    let big = src.join("big.bin");
    let mtime = filetime::FileTime::from_last_modification_time(&std::fs::metadata(&big).unwrap());
    let mut bytes = std::fs::read(&big).unwrap();
    bytes[4_500_000] ^= 0xff;
    std::fs::write(&big, &bytes).unwrap();
    filetime::set_file_mtime(&big, mtime).unwrap();
    let r3 = within("backup 3", alice.backup(&src, Progress::new())).await.unwrap();
    assert!(r3.new_bytes > 0 && r3.new_bytes <= (8 << 20) + 64 * 1024, "one chunk or two and the trees: {r3:?}");
    assert_eq!(r3.unchanged_files, 3, "{r3:?}");
    eprintln!(
        "first: {} new bytes in {} blocks; unchanged: {grew} bytes more; one byte changed: {} new bytes",
        r1.new_bytes, r1.blocks, r3.new_bytes
    );

    // diff: the unchanged version differs in nothing, the third in the one file
    let same = alice.storage.diff(&r1.name, 1, 2).await.unwrap();
    assert!(same.added.is_empty() && same.removed.is_empty() && same.changed.is_empty(), "{same:?}");
    let d = alice.storage.diff(&r1.name, 2, 3).await.unwrap();
    let changed: Vec<&str> = d.changed.iter().map(|e| e.path.as_str()).collect();
    assert_eq!((changed, d.added.len(), d.removed.len()), (vec!["big.bin"], 0, 0), "{d:?}");
    let err = alice.storage.diff(&r1.name, 1, 9).await.unwrap_err();
    assert!(format!("{err:#}").contains("no version 9"), "{err:#}");
    // find: by name in every version, and by path
    let f = alice.storage.find("*.txt").await.unwrap();
    let hits: Vec<(u32, &str)> = f.matches.iter().map(|m| (m.version, m.entry.path.as_str())).collect();
    assert_eq!(hits, vec![(1, "docs/read me.txt"), (2, "docs/read me.txt"), (3, "docs/read me.txt")]);
    let f = alice.storage.find("naïve café/**/*.bin").await.unwrap();
    assert_eq!(f.matches.len(), 3, "{f:?}");
    assert!(alice.storage.find("[").await.is_err());

    let out3 = net.dir.path().join("out3");
    within("restore 3", alice.restore(&r3.name, None, &out3, false, Progress::new())).await.unwrap();
    assert_same(&src, &out3);
    let out1 = net.dir.path().join("out1");
    let back = within("restore 1", alice.restore(&r1.name, Some(1), &out1, false, Progress::new())).await.unwrap();
    assert_eq!(back.files, 4);
    let mut was = bytes.clone();
    was[4_500_000] ^= 0xff;
    assert_eq!(std::fs::read(out1.join("big.bin")).unwrap(), was, "version 1 holds the old byte");

    // check: all in order, every fragment read back
    let c = within("check", alice.storage.check(Some(100.0))).await.unwrap();
    assert!(c.ok && c.catalog_copies_ok == 4 && c.index_objects == 2 && c.versions == 3, "{c:?}");
    assert_eq!((c.blocks_read, c.fragments_read), (c.blocks, 4 * c.blocks as u64), "{c:?}");
    assert!(alice.storage.check(Some(101.0)).await.is_err());

    // a lying supplier: every fragment the supplier at position 0 holds is damaged on its disk (it would serve
    // them as they are); the restore checks each against its hash, takes other positions and still comes out whole
    let liar = net.supplier_of(&alice, 0);
    let damaged = fragment_files(&liar);
    assert!(!damaged.is_empty());
    for f in &damaged {
        let mut b = std::fs::read(f).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x55;
        std::fs::write(f, b).unwrap();
    }
    let out_liar = net.dir.path().join("out-liar");
    let r = within("restore past a lying supplier", alice.restore(&r3.name, None, &out_liar, false, Progress::new()))
        .await
        .unwrap();
    assert!(r.fragments_failed > 0, "{r:?}");
    assert_same(&src, &out_liar);
    // check --read-data finds every damaged fragment, which a restore (k of n) passed over
    let c = within("check after the damage", alice.storage.check(Some(100.0))).await.unwrap();
    assert!(
        !c.ok && c.fragments_bad.len() == c.blocks && c.fragments_bad.iter().all(|l| l.contains("position 0")),
        "{c:?}"
    );

    // one folder of a version, and one file
    let part = net.dir.path().join("part");
    let r = within(
        "restore a folder",
        alice.storage.restore_path(&r3.name, Some(3), Some("naïve café"), &part, false, Progress::new()),
    )
    .await
    .unwrap();
    assert_eq!(r.files, 1);
    assert_same(&src.join("naïve café"), &part);
    let one = net.dir.path().join("one");
    within(
        "restore a file",
        alice.storage.restore_path(&r3.name, None, Some("docs/read me.txt"), &one, false, Progress::new()),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(one.join("read me.txt")).unwrap(), std::fs::read(src.join("docs/read me.txt")).unwrap());
    // a path not in the version: a clear error, and the target is not even made
    let none = net.dir.path().join("none");
    let err =
        alice.storage.restore_path(&r3.name, None, Some("docs/nope"), &none, false, Progress::new()).await.unwrap_err();
    assert!(format!("{err:#}").contains("is not in this version"), "{err:#}");
    assert!(!none.exists());

    // a new device with only the key: the catalog, then the chunk index from the index objects, then the files
    let key_text = alice.home().keys().unwrap().export_text();
    alice.shutdown().await;
    drop(alice);
    let keys = NodeKeys::import_text(&key_text).unwrap();
    let fresh = start(
        net.dir.path(),
        "alice-new-device",
        std::slice::from_ref(&net.boot_addr),
        None,
        CustomerConfig { incremental: true, ..CustomerConfig::default() },
        Some(keys),
    )
    .await;
    let catalog = recover(&fresh).await;
    assert_eq!((catalog.packs.len(), catalog.snapshots.len()), (2, 3));
    let out = net.dir.path().join("out-new-device");
    within("restore on the new device", fresh.restore(&r3.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

/// forget then prune: the packs only a forgotten version used leave the suppliers (their held bytes drop by what
/// the report says), packs a kept version still uses stay, and the kept version restores byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_deletes_what_no_kept_version_uses() {
    use bitdust_storage::proto::policy::KeepPolicy;
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer_with("alice", 4, 256 << 20, true).await;
    let src = net.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let random = |seed: u64, len: usize| -> Vec<u8> {
        let mut x = 0x9e3779b97f4a7c15u64 ^ seed;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    std::fs::write(src.join("kept.bin"), random(1, 3 << 20)).unwrap();
    std::fs::write(src.join("old.bin"), random(2, 6 << 20)).unwrap();
    let r1 = within("backup 1", alice.backup(&src, Progress::new())).await.unwrap();
    std::fs::remove_file(src.join("old.bin")).unwrap();
    std::fs::write(src.join("new.bin"), random(3, 5 << 20)).unwrap();
    let r2 = within("backup 2", alice.backup(&src, Progress::new())).await.unwrap();
    assert!(r2.new_bytes >= 5 << 20 && r2.new_bytes < (5 << 20) + 64 * 1024, "{r2:?}");

    // both versions kept: nothing to delete
    let dry = within("prune, nothing forgotten", alice.storage.prune(true)).await.unwrap();
    assert_eq!((dry.versions, dry.blocks_deleted, dry.freed_bytes), (2, 0, 0), "{dry:?}");

    within("forget", alice.forget(&r1.name, &KeepPolicy { last: Some(1), ..Default::default() }, false)).await.unwrap();
    let before = held(&net, &alice);
    let dry = within("prune --dry-run", alice.storage.prune(true)).await.unwrap();
    assert!(dry.blocks_deleted > 0 && dry.freed_bytes > 0, "{dry:?}");
    assert_eq!(held(&net, &alice), before, "a dry run deletes nothing");
    // kept.bin shared a pack with the start of old.bin: that pack is repacked, old.bin's others deleted
    assert!(dry.blocks_repacked >= 1 && dry.repacked_bytes >= 3 << 20, "{dry:?}");
    let done = within("prune", alice.storage.prune(false)).await.unwrap();
    assert_eq!((done.blocks_deleted, done.blocks_repacked), (dry.blocks_deleted, dry.blocks_repacked));
    assert!(done.fragments_deleted > 0 && done.blocks_kept > 0 && done.freed_bytes > 0, "{done:?}");
    let freed = before - held(&net, &alice);
    assert!(freed + 64 * 1024 >= done.freed_bytes && freed <= done.freed_bytes + 64 * 1024, "{freed} vs {done:?}");
    // about old.bin's 6 MiB times n/k = 2 is gone
    assert!(freed > 10 << 20, "{freed}");
    // what is left is what version 2 uses, nearly all of it used
    let again = within("prune again", alice.storage.prune(false)).await.unwrap();
    assert_eq!((again.blocks_deleted, again.blocks_repacked), (0, 0), "{again:?}");
    let out = net.dir.path().join("out");
    within("restore 2", alice.restore(&r2.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

/// A restore running while its version is forgotten and pruned: prune waits for it (the packs lock), so the restore
/// is whole, and then frees the version's packs. Without the lock, prune deletes packs the restore has yet to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_waits_for_a_restore_of_what_it_deletes() {
    use bitdust_storage::proto::policy::KeepPolicy;
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer_with("alice", 4, 256 << 20, true).await;
    let src = net.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut x = 0x2545f4914f6cdd1du64;
    let old: Vec<u8> = (0..48 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("old.bin"), &old).unwrap();
    let r1 = within("backup 1", alice.backup(&src, Progress::new())).await.unwrap();
    std::fs::remove_file(src.join("old.bin")).unwrap();
    std::fs::write(src.join("new.txt"), b"what is left").unwrap();
    within("backup 2", alice.backup(&src, Progress::new())).await.unwrap();

    // version 1's restore starts (12 packs, 4 in flight)...
    let out = net.dir.path().join("out");
    let progress = Progress::new();
    let restore = tokio::spawn({
        let (alice, out, progress) = (alice.clone(), out.clone(), progress.clone());
        let name = r1.name.clone();
        async move { alice.restore(&name, Some(1), &out, false, progress).await }
    });
    until("the restore is under way", || progress.get().0 > 0).await;
    // ...and version 1 is forgotten and pruned meanwhile
    within("forget 1", alice.forget(&r1.name, &KeepPolicy { last: Some(1), ..Default::default() }, false))
        .await
        .unwrap();
    let pruned = within("prune", alice.storage.prune(false)).await.unwrap();
    assert!(restore.is_finished(), "prune ran before the restore ended");
    let restored = restore.await.unwrap();
    assert!(restored.is_ok(), "the restore lost packs under it: {:#}", restored.unwrap_err());
    assert_eq!(std::fs::read(out.join("old.bin")).unwrap(), old, "byte for byte");
    assert!(pruned.blocks_deleted >= 10 && pruned.freed_bytes > 48 << 20, "then its packs went: {pruned:?}");
}

/// Pack sets are maintained as format-1 versions are: a lost supplier is replaced and every pack's fragment at its
/// position rebuilt (keyless), so that the version restores after n-k more originals stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_supplier_is_replaced_and_its_packs_rebuilt() {
    let net = Net::new(6, 1 << 30).await;
    let alice = net.healing_customer("alice", 4, true).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 3);
    let r = within("backup", alice.backup(&src, Progress::new())).await.unwrap();
    let peer_at = |p: u16| alice.suppliers().unwrap().into_iter().find(|s| s.position == p).unwrap().peer().unwrap();
    let original: Vec<_> = (0..4).map(peer_at).collect();
    net.supplier_of(&alice, 1).shutdown().await;
    until("replacement hired and its packs rebuilt", || {
        let health = alice.health().unwrap();
        peer_at(1) != original[1]
            && alice.rebuild_queue().unwrap().is_empty()
            && health.iter().all(|h| h.blocks == r.blocks && h.full == h.blocks)
    })
    .await;
    // n - k = 2 more originals go: the rebuilt position and one original must do
    for p in [0u16, 2] {
        net.suppliers.iter().find(|s| s.peer_id() == original[p as usize]).unwrap().shutdown().await;
    }
    let out = net.dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_same(&src, &out);
}

/// Backup sets: bad requests are refused and change nothing; a set runs at once as a job, records its result and its
/// next run one interval later, applies its keep policy; removing it stops it and leaves its versions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_sets_run_record_and_keep() {
    use bitdust_api::{KeepRules, ScheduleRequest};
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer_with("alice", 4, 256 << 20, true).await;
    let src = net.dir.path().join("src");
    make_tree(&src, 1);
    let request = |path: &std::path::Path, every: u64| ScheduleRequest {
        path: path.to_string_lossy().into_owned(),
        every_secs: every,
        exclude: vec!["*.bin".into()],
        exclude_caches: false,
        one_file_system: false,
        keep: KeepRules { last: Some(1), ..Default::default() },
    };
    for (bad, why) in [
        (request(std::path::Path::new("relative"), 3600), "absolute"),
        (request(&net.dir.path().join("missing"), 3600), "cannot back up"),
        (request(&src, 30), "shortest interval"),
        (ScheduleRequest { exclude: vec!["a/**/b[".into()], ..request(&src, 3600) }, "pattern"),
    ] {
        let err = alice.storage.add_backup_set(bad).unwrap_err();
        assert!(format!("{err:#}").contains(why), "{err:#}");
    }
    assert!(alice.storage.backup_sets().unwrap().is_empty());

    // a version made by hand first: the set's keep-last 1 forgets it after its own run
    within("backup by hand", alice.backup(&src, Progress::new())).await.unwrap();
    let set = alice.storage.add_backup_set(request(&src, 3600)).unwrap();
    let done = within("the set's first run", async {
        loop {
            let s = alice.storage.backup_sets().unwrap().into_iter().find(|s| s.id == set.id).unwrap();
            if s.last_run_unix.is_some() && !s.running {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(!done.last_failed, "{done:?}");
    assert!(done.last_result.as_deref().unwrap().starts_with("src@2, forgot 1 versions"), "{done:?}");
    assert_eq!(done.next_run_unix, done.last_run_unix.unwrap() + 3600);
    let catalog = alice.catalog().unwrap();
    let versions: Vec<u32> = catalog.backup("src").unwrap().versions.iter().map(|v| v.number).collect();
    assert_eq!(versions, vec![2], "the set kept its last version only");
    // its excludes applied: no .bin file in it
    let found = alice.storage.find("*.bin").await.unwrap();
    assert!(found.matches.is_empty(), "{found:?}");
    // the job is in the log, as a backup of the set
    assert!((1..16)
        .filter_map(|id| alice.node().jobs().get(id))
        .any(|j| j.kind == "backup" && j.target.starts_with("set 1:")));

    let gone = alice.storage.remove_backup_set(set.id).unwrap();
    assert_eq!(gone.id, set.id);
    assert!(alice.storage.remove_backup_set(set.id).is_err(), "a set removed twice");
    assert!(alice.storage.backup_sets().unwrap().is_empty());
    assert_eq!(alice.catalog().unwrap().backup("src").unwrap().versions.len(), 1, "its versions stay");
}

/// Honest snapshots: a file rewritten without pause while it is backed up is read twice, then named in the report
/// (and the version's summary) as changed while read; the other files are stored as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_keeps_changing_while_read_is_reported() {
    let net = Net::new(4, 1 << 30).await;
    let alice = net.customer_with("alice", 4, 256 << 20, true).await;
    let src = net.dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("calm.txt"), b"nothing happens here\n").unwrap();
    let busy = src.join("busy.log");
    std::fs::write(&busy, vec![0u8; 8 << 20]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, busy) = (stop.clone(), busy.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // rewritten in place, growing: size, mtime and ctime move all the time
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().append(true).open(&busy).unwrap();
                f.write_all(&i.to_le_bytes()).unwrap();
                i += 1;
            }
        })
    };
    let r = within("backup", alice.backup(&src, Progress::new())).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    let r = r.unwrap();
    assert_eq!(r.changed.len(), 1, "{r:?}");
    assert!(r.changed[0].ends_with("busy.log"), "{r:?}");
    let catalog = alice.catalog().unwrap();
    assert_eq!(catalog.snapshots[0].changed, r.changed, "the version's summary names it too");
    let out = net.dir.path().join("out");
    within("restore", alice.restore(&r.name, None, &out, false, Progress::new())).await.unwrap();
    assert_eq!(std::fs::read(out.join("calm.txt")).unwrap(), b"nothing happens here\n");
    assert!(std::fs::metadata(out.join("busy.log")).unwrap().len() >= 8 << 20, "stored as last read");
}
