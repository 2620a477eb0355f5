//! File transfer between contacts (issue 15), through the real protocol: nodes in one process on 127.0.0.1. The
//! sender offers a file in an encrypted message; the recipient pulls verified slices; a cut link (the sender
//! stopped mid-transfer) resumes where it stopped; a file changed on the sender's disk after the offer is refused.

mod common;

use std::path::Path;

use bitdust_messages::service::conversations::State;
use bitdust_messages::service::files::FileState;
use bitdust_node::{Config, Home};
use bitdust_testkit::{home, loopback, restart, until, within};
use common::{contains, messages, messages_wing, CANARY};

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut data = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut data);
    data[len / 2..len / 2 + CANARY.len()].copy_from_slice(CANARY.as_bytes());
    std::fs::write(path, &data).unwrap();
    data
}

fn received(h: &Home) -> std::path::PathBuf {
    h.root().join("received")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_fetched_in_verified_slices_resumes_after_a_cut_and_a_changed_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plain = Config::default();
    let boot = common::node(home(dir.path(), "bootstrap", &plain, None), &[], messages_wing).await;
    let b = [boot.node().addresses()[0].clone()];
    let alice_home = home(dir.path(), "alice", &plain, None);
    let alice = common::node(alice_home.clone(), &b, messages_wing).await;
    let bob_home = home(dir.path(), "bob", &plain, None);
    let bob = common::node(bob_home.clone(), &b, messages_wing).await;
    let (a, bm) = (messages(&alice), messages(&bob));
    a.add_contact("bob", None).await.unwrap();
    bm.add_contact("alice", None).await.unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();

    // bad input: a file that is not there, a folder, an unknown contact; nothing is sent
    let err = a.send_file("bob", &files.join("missing.bin"), false).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot send"), "{err:#}");
    assert!(format!("{:#}", a.send_file("bob", &files, false).await.unwrap_err()).contains("not a file"));
    assert!(a.send_file("nobody", &files.join("x"), false).await.is_err());
    assert!(a.history("bob", 10).unwrap().is_empty(), "nothing half-sent");

    // a whole file, byte for byte
    let small = files.join("notes.bin");
    let data = random_file(&small, 5 * 1024 * 1024 + 123);
    let offer = within("offer", a.send_file("bob", &small, false)).await.unwrap();
    assert_eq!(offer.state, State::Delivered);
    until("bob has the file", || bm.file(&offer.id).unwrap().is_some_and(|f| f.state == FileState::Received)).await;
    let got = bm.file(&offer.id).unwrap().unwrap();
    assert_eq!(Path::new(&got.path), received(&bob_home).join("notes.bin"));
    assert_eq!(std::fs::read(&got.path).unwrap(), data);
    let shown = bm.history("alice", 10).unwrap();
    assert!(shown.last().unwrap().text.contains("notes.bin"), "{shown:?}");

    // a stranger cannot fetch it: the slices go only to the offer's recipient
    assert!(!contains(boot.node().home().root(), CANARY.as_bytes()), "the bootstrap node never held the bytes");

    // a cut link: alice stops mid-transfer and starts again; bob resumes where it stopped
    let big = files.join("big.bin");
    let data = random_file(&big, 96 * 1024 * 1024);
    let offer = within("offer", a.send_file("bob", &big, false)).await.unwrap();
    let part =
        received(&bob_home).join(format!(".{}.part", offer.id.iter().map(|b| format!("{b:02x}")).collect::<String>()));
    until("part of the file arrived", || std::fs::metadata(&part).is_ok_and(|m| m.len() >= 8 * 1024 * 1024)).await;
    alice.shutdown().await;
    let served_before = a.served_bytes();
    drop((alice, a));
    let cut_at = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
    assert!(cut_at < data.len() as u64, "the transfer was cut before its end ({cut_at} bytes)");
    let alice = restart(&alice_home, loopback(&b), messages_wing).await;
    let a = messages(&alice);
    until("bob has the big file", || {
        bm.file(&offer.id).unwrap().is_some_and(|f| matches!(f.state, FileState::Received | FileState::Failed(_)))
    })
    .await;
    let got = bm.file(&offer.id).unwrap().unwrap();
    assert_eq!(got.state, FileState::Received, "{got:?}");
    assert!(std::fs::read(&got.path).unwrap() == data, "the resumed file is byte for byte the original");
    let after = a.served_bytes();
    assert!(after < data.len() as u64 - 4 * 1024 * 1024, "resumed, not restarted: {after} bytes served after the cut");
    assert!(served_before > 0 && after > 0);

    // the file changes on alice's disk after she offered it (its last byte, the size unchanged): bob refuses the
    // slice that does not verify, and the transfer fails without a byte of it under the file's name
    let third = files.join("third.bin");
    let data = random_file(&third, 48 * 1024 * 1024);
    let before = bm.refused();
    let offer = within("offer", a.send_file("bob", &third, false)).await.unwrap();
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&third).unwrap();
        f.seek(SeekFrom::Start(data.len() as u64 - 1)).unwrap();
        f.write_all(&[!data[data.len() - 1]]).unwrap();
    }
    until("bob settles the third file", || {
        bm.file(&offer.id).unwrap().is_some_and(|f| matches!(f.state, FileState::Received | FileState::Failed(_)))
    })
    .await;
    let got = bm.file(&offer.id).unwrap().unwrap();
    assert!(matches!(&got.state, FileState::Failed(why) if why.contains("corrupt")), "{got:?}");
    assert_eq!(bm.refused(), before + 1, "the corrupt slice is counted");
    assert!(!received(&bob_home).join("third.bin").exists(), "nothing unverified is kept under its name");
    assert_eq!(got.received, data.len() as u64 - (1 << 20), "every chunk before the changed one was kept");
}
