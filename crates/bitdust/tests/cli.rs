//! The real binary as a black box: multi-process devnets, the demo, restore from key, and error messages.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The lines a child prints, through a channel (so a test can wait for one with a timeout).
/// A `bitdust chat` running with its input and output piped.
struct Chat {
    run: Running,
    lines: std::sync::mpsc::Receiver<String>,
    stdin: Option<std::process::ChildStdin>,
}

impl Chat {
    fn start(home: &std::path::Path, with: &str) -> Self {
        let mut run = Running(
            bitdust()
                .args(["--home", s(home), "chat", with])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let out = run.0.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::sync_channel(1024);
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(out)).map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stdin = run.0.stdin.take();
        Self { run, lines, stdin }
    }

    /// The next line printed that contains `what` (those before it are skipped).
    fn next_with(&self, what: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("chat never printed {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    }

    fn type_line(&mut self, text: &str) {
        std::io::Write::write_all(self.stdin.as_mut().unwrap(), format!("{text}\n").as_bytes()).unwrap();
    }

    /// Ends the input (Ctrl-D): the chat must exit, successfully.
    fn end(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.run.0.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "chat did not end at end of input");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(self.run.0.try_wait().unwrap().is_some_and(|s| s.success()));
    }
}

#[test]
fn demo_restores_usr_share_doc_with_n_minus_k_suppliers_stopped() {
    let report = json(&["demo", "/usr/share/doc"]);
    assert_eq!(report["identical"], Value::Bool(true), "{report}");
    assert_eq!(report["suppliers_stopped"].as_array().unwrap().len(), 2, "{report}");
    assert!(report["files"].as_u64().unwrap() > 1000, "{report}");
    assert!(report["symlinks"].as_u64().unwrap() > 0, "{report}");
}

#[test]
fn devnet_backup_restore_and_restore_from_key_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let mut devnet = devnet(&["--dir", s(&dir), "--suppliers", "4"]);
    let alice = dir.join("alice");
    let src = tmp.path().join("src");
    make_tree(&src);

    let text = ok(&["--home", s(&alice), "backup", s(&src)]);
    assert!(text.contains("backed up") && text.contains("src@1"), "{text}");
    // on a terminal the CLI follows its job through the event log and draws a bar (util-linux `script` gives the
    // command a pseudo-terminal; skipped where there is none)
    if std::process::Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let cmd = format!("{} --home {} backup {}", env!("CARGO_BIN_EXE_bitdust"), s(&alice), s(&src));
        let out = std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("src@2"), "{text}");
    }
    let ls = json(&["--home", s(&alice), "ls"]);
    assert_eq!(ls["backups"][0]["name"], "src");
    assert!(ok(&["--home", s(&alice), "status"]).contains("4 of 4 suppliers hired"));
    let sup = json(&["--home", s(&alice), "suppliers"]);
    assert_eq!(sup["suppliers"].as_array().unwrap().len(), 4);

    // the address book (issue 15): a node found by its nickname claim, its safety number the same on both sides
    assert!(ok(&["--home", s(&alice), "contacts"]).contains("no contacts yet"));
    let added = json(&["--home", s(&alice), "contacts", "add", "supplier-2"]);
    assert_eq!(added["name"], "supplier-2", "{added}");
    assert!(fails(&["--home", s(&alice), "contacts", "add", "supplier-2"]).contains("already"));
    assert!(fails(&["--home", s(&alice), "contacts", "add", "nobody-at-all"]).contains("nobody found"));
    assert!(fails(&["--home", s(&alice), "contacts", "add", "alice"]).contains("is you"));
    let theirs = json(&["--home", s(&dir.join("supplier-2")), "contacts", "add", "alice", "--name", "Alice A."]);
    assert_eq!(theirs["nickname"], "alice");
    let mine = json(&["--home", s(&alice), "contacts", "verify", "supplier-2"]);
    let other = json(&["--home", s(&dir.join("supplier-2")), "contacts", "verify", "Alice A."]);
    assert_eq!(mine["safety_number"], other["safety_number"]);
    assert!(ok(&["--home", s(&alice), "contacts", "verify", "supplier-2", "--confirm"]).contains("verified"));
    assert!(ok(&["--home", s(&alice), "contacts"]).contains("supplier-2"));
    // a private message, end-to-end encrypted, and the conversation on both sides
    assert!(ok(&["--home", s(&alice), "msg", "send", "supplier-2", "héllo, are you there?"]).contains("delivered"));
    let reply = json(&["--home", s(&dir.join("supplier-2")), "msg", "send", "Alice A.", "yes"]);
    assert_eq!(reply["state"], "delivered", "{reply}");
    let history = ok(&["--home", s(&alice), "msg", "history", "supplier-2"]);
    assert!(
        history.contains("me: héllo, are you there?  [delivered]") && history.contains("supplier-2: yes"),
        "{history}"
    );
    assert!(fails(&["--home", s(&alice), "msg", "send", "nobody", "x"]).contains("no contact named"));
    let inbox = ok(&["--home", s(&alice), "msg", "inbox"]);
    assert!(inbox.contains("supplier-2 (2 messages): yes"), "{inbox}");
    let inbox = json(&["--home", s(&alice), "msg", "inbox"]);
    assert_eq!(inbox["conversations"][0]["messages"], 2, "{inbox}");
    // supplier-2 shows the conversation: alice's message becomes read
    assert!(ok(&["--home", s(&dir.join("supplier-2")), "msg", "history", "Alice A."]).contains("Alice A.: héllo"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok(&["--home", s(&alice), "msg", "history", "supplier-2"]).contains("me: héllo, are you there?  [read]") {
        assert!(Instant::now() < deadline, "the read receipt never came");
        std::thread::sleep(Duration::from_millis(100));
    }
    // the terminal chat: a line typed is delivered, a message from the other side appears live, Ctrl-D ends it
    let mut chat = Chat::start(&alice, "supplier-2");
    assert!(chat.next_with("supplier-2: yes").starts_with("supplier-2: yes"), "the backlog first");
    chat.next_with("-- chatting with supplier-2");
    chat.type_line("typed in the chat");
    chat.next_with("me: typed in the chat  [delivered]");
    ok(&["--home", s(&dir.join("supplier-2")), "msg", "send", "Alice A.", "seen live"]);
    chat.next_with("supplier-2: seen live");
    chat.end();
    // a group (issue 16): alice creates it and adds supplier-2; both write; only the admin adds; a group chat
    let s2 = dir.join("supplier-2");
    assert!(ok(&["--home", s(&alice), "group", "create", "team"]).contains("group team created"));
    assert!(ok(&["--home", s(&alice), "group", "add", "team", "supplier-2"]).contains("supplier-2 added to team"));
    let wait_for = |home: &std::path::Path, args: &[&str], what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = ok(&[&["--home", s(home)][..], args].concat());
            if text.contains(what) {
                return;
            }
            assert!(Instant::now() < deadline, "{args:?} never showed {what:?}: {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(&s2, &["group", "members", "team"], "(revision 2)");
    let sent = json(&["--home", s(&alice), "group", "send", "team", "hello team"]);
    assert_eq!(sent["delivered"], 1, "{sent}");
    wait_for(&s2, &["group", "history", "team"], "Alice A.: hello team");
    ok(&["--home", s(&s2), "group", "send", "team", "hi alice"]);
    wait_for(&alice, &["group", "history", "team"], "supplier-2: hi alice");
    assert!(fails(&["--home", s(&s2), "group", "add", "team", "Alice A."]).contains("only the group's admin"));
    assert!(fails(&["--home", s(&alice), "group", "send", "nogroup", "x"]).contains("no group named"));
    let list = json(&["--home", s(&alice), "group", "list"]);
    assert_eq!(list["groups"][0]["members"].as_array().map(Vec::len), Some(2), "{list}");
    let mut chat = Chat::start(&alice, "group:team");
    chat.next_with("-- chatting in team (2 members)");
    chat.type_line("typed in the group");
    chat.next_with("me: typed in the group  [delivered 1");
    ok(&["--home", s(&s2), "group", "send", "team", "group live"]);
    chat.next_with("supplier-2: group live");
    chat.end();
    // a file: offered in a message, fetched by the contact from alice's node, byte for byte
    let file = tmp.path().join("photo.jpg");
    std::fs::write(&file, (0..3_000_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
    assert!(fails(&["--home", s(&alice), "msg", "send", "supplier-2", "--file", s(&tmp.path().join("gone"))])
        .contains("cannot send"));
    let sent = json(&["--home", s(&alice), "msg", "send", "supplier-2", "--file", s(&file)]);
    assert_eq!(
        (sent["state"].as_str(), sent["file"]["name"].as_str()),
        (Some("delivered"), Some("photo.jpg")),
        "{sent}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let path = loop {
        let h = json(&["--home", s(&dir.join("supplier-2")), "msg", "history", "Alice A."]);
        let last = &h["messages"].as_array().unwrap().last().unwrap()["file"];
        if last["state"] == "received" {
            break last["path"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline && last["state"] != "failed", "{h}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(&file).unwrap());
    assert!(ok(&["--home", s(&dir.join("supplier-2")), "msg", "history", "Alice A."]).contains("[received: "));
    // sharing (issue 16): alice shares src@1 with supplier-2, who lists and restores it from alice's suppliers;
    // alice revokes, and her suppliers refuse it from then on
    assert!(fails(&["--home", s(&alice), "share", "nothing", "--with", "supplier-2"]).contains("no backup named"));
    let started = Instant::now();
    let shared = json(&["--home", s(&alice), "share", "src@1", "--with", "supplier-2"]);
    eprintln!("share: {:.3} s (the CLI's whole run)", started.elapsed().as_secs_f64());
    let id = shared["id"].as_str().unwrap().to_string();
    assert!(ok(&["--home", s(&alice), "shares"]).contains(&format!("{id}  src@1")), "{shared}");
    wait_for(&s2, &["shared"], "Alice A.:src@1");
    let listed = ok(&["--home", s(&s2), "ls", "Alice A.:src"]);
    assert!(listed.contains("data.bin") && listed.contains("dir with spaces/ünïcödé/file.txt"), "{listed}");
    let got = tmp.path().join("shared-out");
    assert!(ok(&["--home", s(&s2), "restore", "Alice A.:src", "--to", s(&got)]).contains("restored Alice A.:src@1"));
    assert_same(&src, &got);
    let started = Instant::now();
    let revoked = json(&["--home", s(&alice), "revoke", &id]);
    eprintln!("revoke: {:.3} s (the CLI's whole run, until every supplier confirmed)", started.elapsed().as_secs_f64());
    assert_eq!(revoked["suppliers_confirmed"], revoked["suppliers"], "{revoked}");
    let again = fails(&["--home", s(&s2), "restore", "Alice A.:src", "--to", s(&tmp.path().join("again"))]);
    assert!(again.contains("revoked the grant"), "{again}");
    wait_for(&s2, &["shared"], "(revoked)");
    // a folder inside the backup (NAME@VERSION:PATH): a copy holding only it
    assert!(fails(&["--home", s(&alice), "share", "src@1:no/such", "--with", "supplier-2"]).contains("has no no/such"));
    ok(&["--home", s(&alice), "share", "src@1:dir with spaces", "--with", "supplier-2"]);
    wait_for(&s2, &["shared"], "Alice A.:src/dir with spaces@1");
    let listed = ok(&["--home", s(&s2), "ls", "Alice A.:src/dir with spaces"]);
    assert!(listed.contains("ünïcödé/file.txt") && !listed.contains("data.bin"), "{listed}");
    ok(&["--home", s(&alice), "contacts", "remove", "supplier-2"]);
    assert!(fails(&["--home", s(&alice), "contacts", "remove", "supplier-2"]).contains("no contact named"));
    // the conversation goes to alice's suppliers (through the storage pipeline) for a new device to restore
    assert!(ok(&["--home", s(&alice), "msg", "sync"]).contains("stored on your suppliers"));
    assert!(ok(&["--home", s(&alice), "msg", "sync"]).contains("have everything"));
    assert!(!ok(&["--home", s(&alice), "ls"]).contains("vault"), "the log is not one of the user's backups");

    let key = tmp.path().join("alice.key");
    // a key file is protected by a passphrase unless asked otherwise; without a terminal it must come from a file
    let err = fails(&["--home", s(&alice), "key", "export", s(&key)]);
    assert!(err.contains("--passphrase-file") && !key.exists(), "{err}");
    let pass = tmp.path().join("pass");
    std::fs::write(&pass, "correct horse battery\n").unwrap();
    ok(&["--home", s(&alice), "key", "export", s(&key), "--passphrase-file", s(&pass)]);
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.starts_with("bitdust-encrypted-key-v1:argon2id:") && !text.contains("bitdust-secret-key"), "{text}");
    assert!(
        fails(&["--home", s(&alice), "key", "export", s(&key), "--no-passphrase"]).contains("refusing to overwrite")
    );

    // stop two suppliers by hand, as a user would, with their pid files
    for name in ["supplier-1", "supplier-3"] {
        stop_daemon(&dir.join(name));
    }
    let out = tmp.path().join("out");
    let text = ok(&["--home", s(&alice), "restore", "src@1", "--to", s(&out)]);
    assert!(text.contains("restored src@1"), "{text}");
    assert_same(&src, &out);
    assert!(fails(&["--home", s(&alice), "restore", "src", "--to", s(&out)]).contains("not empty"));
    // links planted where a restore --force writes are replaced, never followed (issue 14, item 9)
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    let planted = tmp.path().join("planted");
    std::fs::create_dir_all(&planted).unwrap();
    for name in ["data.bin", ".data.bin.bitdust-partial", "dir with spaces", "a link", "empty file"] {
        let to = if name == "dir with spaces" { outside.clone() } else { outside.join("victim") };
        std::os::unix::fs::symlink(to, planted.join(name)).unwrap();
    }
    ok(&["--home", s(&alice), "restore", "src", "--to", s(&planted), "--force"]);
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1, "nothing created outside the target");
    assert_same(&src, &planted);
    assert!(
        fails(&["--home", s(&alice), "restore", "src@7", "--to", s(&tmp.path().join("o7"))]).contains("no version 7")
    );

    // a new device with only the key
    let boot = json(&["--home", s(&dir.join("bootstrap")), "status"]);
    let boot_addr = boot["listen_addrs"][0].as_str().unwrap().to_string();
    let fresh = tmp.path().join("new-device");
    let all = tmp.path().join("all");
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "wrong horse\n").unwrap();
    let err = fails(&[
        "--home",
        s(&fresh),
        "init",
        "--from-key",
        s(&key),
        "--bootstrap",
        &boot_addr,
        "--passphrase-file",
        s(&wrong),
    ]);
    assert!(err.contains("wrong passphrase"), "{err}");
    assert!(
        fails(&["--home", s(&fresh), "init", "--from-key", s(&key), "--bootstrap", &boot_addr]).contains("no terminal")
    );
    let rec = json(&[
        "--home",
        s(&fresh),
        "init",
        "--from-key",
        s(&key),
        "--bootstrap",
        &boot_addr,
        "--restore-to",
        s(&all),
        "--passphrase-file",
        s(&pass),
    ]);
    assert_eq!(rec["backups"], serde_json::json!(["src"]), "{rec}");
    assert!(rec["global_id"].as_str().unwrap().starts_with("alice@"), "{rec}");
    assert_eq!(
        rec["history"],
        serde_json::json!({"contacts": 0, "conversations": 1, "messages": 5, "groups": 1, "group_messages": 4}),
        "{rec}"
    );
    assert_same(&src, &all.join("src"));

    terminate(&mut devnet.0);
    for n in ["bootstrap", "supplier-2", "supplier-4", "alice"] {
        assert!(!dir.join(n).join("daemon.pid").exists(), "{n} still running after the devnet stopped");
    }
}

#[test]
fn devnet_heals_a_stopped_supplier_and_shows_its_state_machines() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let mut devnet = devnet(&["--dir", s(&dir), "--suppliers", "4", "--spares", "2"]);
    let alice = dir.join("alice");
    let src = tmp.path().join("src");
    make_tree(&src);
    ok(&["--home", s(&alice), "backup", s(&src)]);

    let diagram = ok(&["automata", "--diagram", "supplier_connection"]);
    assert!(diagram.contains("stateDiagram-v2") && diagram.contains("suspect --> offline"), "{diagram}");
    assert!(ok(&["automata", "--diagram", "hire_fire", "--dot"]).contains("digraph"));

    let before = supplier_peers(&alice);
    // stop the supplier at position 1 for good, by hand
    let name = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("daemon.log")).is_ok_and(|log| log.contains(&before[1]))
                && p.join("daemon.pid").exists()
        })
        .expect("the supplier's home");
    stop_daemon(&name);
    let started = Instant::now();
    wait_until_long("replacement and rebuild", Duration::from_secs(120), || {
        let now = supplier_peers(&alice);
        let health = json(&["--home", s(&alice), "health"]);
        now[1] != before[1]
            && health["rebuild_queue_blocks"] == 0
            && health["versions"][0]["full"] == health["versions"][0]["blocks"]
    });
    eprintln!("healed in {:.1} s", started.elapsed().as_secs_f64());
    let automata = ok(&["--home", s(&alice), "automata"]);
    assert!(
        automata.contains("supplier_connection/1") && automata.contains("hire_fire") && automata.contains("rebuild"),
        "{automata}"
    );
    assert!(ok(&["--home", s(&alice), "health"]).contains("src@1"));

    // replace another by hand
    ok(&["--home", s(&alice), "supplier", "replace", "0"]);
    wait_until_long("replacement by hand", Duration::from_secs(60), || {
        let health = json(&["--home", s(&alice), "health"]);
        supplier_peers(&alice)[0] != before[0] && health["rebuild_queue_blocks"] == 0
    });
    assert!(fails(&["--home", s(&alice), "supplier", "replace", "9"]).contains("no supplier at position 9"));
    terminate(&mut devnet.0);
}

#[test]
fn bad_input_gets_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("h");
    assert!(fails(&["--home", s(&home), "status"]).contains("no identity"));
    assert!(fails(&["--home", s(&home), "init", "--nickname", "Bad Name"]).contains("invalid nickname"));
    // forget without a rule is refused before anything is asked (it would remove every version)
    assert!(fails(&["--home", s(&home), "forget", "docs"]).contains("at least one of --keep-last"));
    // output into a pipe nobody reads (`bitdust ... | head` after head exits): done, no panic
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = bitdust()
        .args(["--home", s(&tmp.path().join("h2")), "init", "--nickname", "piped", "--api-port", "0"])
        .stdout(writer)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("panicked"), "{err}");
    assert!(tmp.path().join("h2").join("config.toml").exists());
    // files 0600 and folders 0700 from the first byte, whatever the umask (issue 14, item 7)
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            &format!(
                "umask 000; exec {} --home {} init --nickname solo --api-port 0",
                env!("CARGO_BIN_EXE_bitdust"),
                s(&home)
            ),
        ])
        .env_remove("BITDUST_HOME")
        .status()
        .unwrap();
    assert!(status.success());
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    for f in ["identity.key", "api.token", "identity.bin", "config.toml"] {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    assert!(fails(&["--home", s(&home), "init", "--nickname", "solo"]).contains("refusing to overwrite"));
    let err = fails(&["--home", s(&home), "status"]);
    assert!(err.contains("daemon is not running"), "{err}");
    let out = run(&["--home", s(&home), "--json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("not running"));

    let token_at_init = std::fs::read_to_string(home.join("api.token")).unwrap();
    let mut daemon = Running(
        bitdust()
            .args(["--home", s(&home), "daemon", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("daemon API", || run(&["--home", s(&home), "status"]).status.success());
    let port = std::fs::read_to_string(home.join("api.port")).unwrap();
    assert_eq!(mode(&home.join("node.redb")), 0o600, "the local database (plaintext catalog)");
    assert_ne!(std::fs::read_to_string(home.join("api.token")).unwrap(), token_at_init, "a new token at every start");
    assert!(fails(&["--home", s(&home), "backup", s(&tmp.path().join("missing"))]).contains("cannot back up"));
    let err = fails(&["--home", s(&home), "backup", s(tmp.path())]);
    assert!(err.contains("too few suppliers online"), "{err}");
    let token = std::fs::read_to_string(home.join("api.token")).unwrap();
    std::fs::write(home.join("api.token"), "wrong").unwrap();
    assert!(fails(&["--home", s(&home), "status"]).contains("API token"));
    std::fs::write(home.join("api.token"), &token).unwrap();
    terminate(&mut daemon.0);
    assert!(!home.join("daemon.pid").exists());

    // The daemon is stopped and another program holds its port (a stale api.port, as after a crash): the CLI asks
    // it to prove it knows the token, it cannot, and the token is never sent.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port.trim().parse::<u16>().unwrap())).unwrap();
    std::fs::write(home.join("api.port"), port.trim()).unwrap();
    let heard = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut all = Vec::new();
        listener.set_nonblocking(false).unwrap();
        for stream in listener.incoming().take(1) {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            all.extend_from_slice(&buf[..n]);
            let body = r#"{"proof":"00"}"#;
            let answer = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = stream.write_all(answer.as_bytes());
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let err = fails(&["--home", s(&home), "status"]);
    assert!(err.contains("is not the daemon of"), "{err}");
    let request = heard.join().unwrap();
    assert!(request.starts_with("GET /api/v1/proof?nonce="), "{request}");
    assert!(!request.contains(token.trim()) && !request.to_ascii_lowercase().contains("authorization"), "{request}");
}

/// Key-only recovery must not depend on the customer's own node (issue 14, item 1): the customer's suppliers hold
/// its signed identity and supplier list and publish them again. (b) With records living 3 s, the customer stays
/// away for several lifetimes, and a new device recovers from the key; (a) then every node is stopped and started
/// again without the customer (DHT stores are in memory: nothing survives), and another new device recovers.
#[test]
fn key_only_recovery_survives_expired_records_and_a_network_restart() {
    const TTL_SECS: u64 = 3;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let ttl = TTL_SECS.to_string();
    let mut net = devnet(&["--dir", s(&dir), "--suppliers", "4", "--spares", "0", "--record-ttl-secs", &ttl]);
    let alice = dir.join("alice");
    let src = tmp.path().join("src");
    make_tree(&src);
    ok(&["--home", s(&alice), "backup", s(&src)]);
    let key = tmp.path().join("alice.key");
    ok(&["--home", s(&alice), "key", "export", s(&key), "--no-passphrase"]);
    let boot = json(&["--home", s(&dir.join("bootstrap")), "status"]);
    let boot_addr = boot["listen_addrs"][0].as_str().unwrap().to_string();

    // (b) the device is lost: alice stops and stays away for four record lifetimes
    stop_daemon(&alice);
    // the scenario is the passage of time itself: every record alice published has expired after this
    std::thread::sleep(Duration::from_secs(4 * TTL_SECS));
    let recover = |name: &str| {
        let fresh = tmp.path().join(name);
        let all = tmp.path().join(format!("{name}-restored"));
        let started = Instant::now();
        let rec = json(&[
            "--home",
            s(&fresh),
            "init",
            "--from-key",
            s(&key),
            "--bootstrap",
            &boot_addr,
            "--restore-to",
            s(&all),
        ]);
        eprintln!("{name}: key-only recovery and restore took {:.1} s", started.elapsed().as_secs_f64());
        assert_eq!(rec["backups"][0], "src", "{rec}");
        assert!(rec["global_id"].as_str().unwrap().starts_with("alice@"), "{rec}");
        assert_same(&src, &all.join("src"));
    };
    recover("device-2");

    // (a) the whole network restarts, without alice
    terminate(&mut net.0);
    let mut net = devnet(&["--dir", s(&dir), "--suppliers", "4", "--spares", "0", "--no-customer"]);
    assert!(!alice.join("daemon.pid").exists(), "the customer stays stopped");
    recover("device-3");
    terminate(&mut net.0);
}

/// The home of the running devnet node whose peer id is `peer`.
fn home_of(dir: &std::path::Path, peer: &str) -> std::path::PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let out = run(&["--json", "--home", s(p), "status"]);
            out.status.success() && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["peer_id"] == peer)
        })
        .expect("the supplier's home")
}

/// Audits cannot be dodged (issue 14, item 2): a supplier whose fragment folder for the customer became unreadable
/// (replaced by a file: even root cannot read through it) answers every audit with an error while its heartbeats
/// say alive. It is fired and its fragments rebuilt elsewhere; then n-k other original suppliers stop and the
/// restore is still identical. On main before this change it stayed hired, audited every 5 s, for minutes.
#[test]
fn a_supplier_that_answers_audits_with_errors_is_fired_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let mut net = devnet(&["--dir", s(&dir), "--suppliers", "4", "--spares", "2"]);
    let alice = dir.join("alice");
    let src = tmp.path().join("src");
    make_tree(&src);
    ok(&["--home", s(&alice), "backup", s(&src)]);
    let me = json(&["--home", s(&alice), "status"])["peer_id"].as_str().unwrap().to_string();
    let before = supplier_peers(&alice);
    let broken = home_of(&dir, &before[0]);
    let folder = broken.join("store").join("fragments").join(&me);
    assert!(folder.is_dir(), "{}", folder.display());
    std::fs::rename(&folder, broken.join("store").join("moved-away")).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();

    let started = Instant::now();
    wait_until_long("the broken supplier replaced and its fragments rebuilt", Duration::from_secs(150), || {
        let health = json(&["--home", s(&alice), "health"]);
        supplier_peers(&alice)[0] != before[0]
            && health["rebuild_queue_blocks"] == 0
            && health["versions"][0]["full"] == health["versions"][0]["blocks"]
    });
    eprintln!("fired and rebuilt in {:.1} s", started.elapsed().as_secs_f64());
    // the replacement was for failed audits: the old supplier still runs and answers heartbeats
    assert!(json(&["--home", s(&broken), "status"])["peer_id"] == before[0]);
    for p in &before[1..3] {
        let home = home_of(&dir, p);
        stop_daemon(&home);
    }
    let out = tmp.path().join("out");
    ok(&["--home", s(&alice), "restore", "src", "--to", s(&out)]);
    assert_same(&src, &out);
    terminate(&mut net.0);
}

/// Every fragment file under `store`'s folder for `owner`.
fn fragment_files_of(store: &std::path::Path, owner: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![store.join("fragments").join(owner)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !p.file_name().unwrap().to_string_lossy().starts_with('.') {
                out.push(p);
            }
        }
    }
    out
}

/// Bit rot is found by the supplier's own scrub, not by chance (issue 14, item 11): 8 bytes overwritten in every
/// fragment one supplier holds for a 24 MiB backup. Random-range audits rarely cover them (main noticed nothing
/// in a minute); the supplier's scrub (a full pass every 30 s on a devnet) drops them, the customer's audit finds
/// them missing and its sweep queues them, and they are rebuilt. Then two other suppliers stop and the restore is
/// identical.
#[test]
fn bit_rot_is_found_by_the_suppliers_scrub_and_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let mut net = devnet(&["--dir", s(&dir), "--suppliers", "4", "--spares", "0"]);
    let alice = dir.join("alice");
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let mut x = 0x2545f4914f6cdd1du64;
    let data: Vec<u8> = (0..24 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(src.join("big.bin"), data).unwrap();
    ok(&["--home", s(&alice), "backup", s(&src)]);
    let me = json(&["--home", s(&alice), "status"])["peer_id"].as_str().unwrap().to_string();
    let suppliers = supplier_peers(&alice);
    let rotten = home_of(&dir, &suppliers[0]).join("store");
    let files = fragment_files_of(&rotten, &me);
    assert!(files.len() >= 6, "{files:?}");
    for f in &files {
        let mut bytes = std::fs::read(f).unwrap();
        let at = bytes.len() / 2;
        bytes[at..at + 8].copy_from_slice(b"BITROT!!");
        std::fs::write(f, bytes).unwrap();
    }
    // every rotten fragment is back, whole (other fragments of alice's may come meanwhile: her messages log)
    let intact =
        || files.iter().all(|f| std::fs::read(f).is_ok_and(|b| bitdust_storage::proto::fragment::parse(&b).is_ok()));
    assert!(!intact());
    let started = Instant::now();
    wait_until_long("the rotten fragments rebuilt", Duration::from_secs(150), || {
        intact() && json(&["--home", s(&alice), "health"])["rebuild_queue_blocks"] == 0
    });
    eprintln!("scrubbed and rebuilt in {:.1} s", started.elapsed().as_secs_f64());
    for p in &suppliers[1..3] {
        let home = home_of(&dir, p);
        stop_daemon(&home);
    }
    let out = tmp.path().join("out");
    ok(&["--home", s(&alice), "restore", "src", "--to", s(&out)]);
    assert_same(&src, &out);
    terminate(&mut net.0);
}

/// Incremental backups through the real binary (issue 18): a second backup of an unchanged tree stores nothing new,
/// `ls NAME@V PATH`, `diff`, `find`, `restore --path`, `forget` then `prune`, and their errors.
#[test]
fn incremental_backups_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let _devnet = devnet(&["--dir", s(&dir), "--suppliers", "4"]);
    let alice = dir.join("alice");
    let a = |args: &[&str]| -> Vec<String> {
        let mut v = vec!["--home".to_string(), s(&alice).to_string()];
        v.extend(args.iter().map(|x| x.to_string()));
        v
    };
    let run_ok = |args: &[&str]| ok(&a(args).iter().map(String::as_str).collect::<Vec<_>>());
    let run_json = |args: &[&str]| json(&a(args).iter().map(String::as_str).collect::<Vec<_>>());
    let run_fails = |args: &[&str]| fails(&a(args).iter().map(String::as_str).collect::<Vec<_>>());
    let src = tmp.path().join("src");
    make_tree(&src);

    // --json: status lines (the job's progress, new and deduplicated bytes apart), then the summary
    let mut lines = json_lines(&a(&["backup", s(&src)]).iter().map(String::as_str).collect::<Vec<_>>());
    let first = lines.pop().unwrap();
    assert!(first["new_bytes"].as_u64().unwrap() >= 6_000_000, "{first}");
    let last = lines.last().unwrap_or_else(|| panic!("no status line before {first}"));
    // every file byte is new the first time (the summary also counts the trees it stored)
    assert_eq!((&last["bytes_done"], &last["new_bytes"]), (&first["bytes"], &first["bytes"]), "{last} {first}");
    let mut lines = json_lines(&a(&["backup", s(&src)]).iter().map(String::as_str).collect::<Vec<_>>());
    let second = lines.pop().unwrap();
    assert_eq!((second["new_bytes"].as_u64(), second["unchanged_files"].as_u64()), (Some(0), Some(3)), "{second}");
    let last = lines.last().unwrap_or_else(|| panic!("no status line before {second}"));
    assert_eq!((&last["new_bytes"], &last["deduplicated_bytes"]), (&0.into(), &second["bytes"]), "{last}");
    std::fs::write(src.join("new.txt"), b"a new file\n").unwrap();
    std::fs::remove_file(src.join("empty file")).unwrap();
    let third = run_json(&["backup", s(&src)]);
    assert_eq!(third["version"], 3);

    let listing = run_ok(&["ls", "src@3", "dir with spaces/ünïcödé"]);
    assert!(listing.contains("file.txt") && listing.contains("empty/"), "{listing}");
    let diff = run_ok(&["diff", "src@2", "src@3"]);
    assert!(
        diff.contains("+ new.txt") && diff.contains("- empty file") && diff.contains("1 added, 1 removed"),
        "{diff}"
    );
    let found = run_ok(&["find", "*.txt"]);
    assert!(found.contains("src@1") && found.contains("src@3  ") && found.contains("new.txt"), "{found}");
    assert!(run_fails(&["find", "a[b"]).contains("bad pattern"));
    assert!(run_fails(&["diff", "src@1", "src@9"]).contains("no version 9"));
    assert!(run_fails(&["ls", "src@3", "nope"]).contains("no folder"));

    let part = tmp.path().join("part");
    let r = run_json(&["restore", "src@3", "--path", "dir with spaces", "--to", s(&part)]);
    assert_eq!(r["files"], 1, "{r}");
    assert_same(&src.join("dir with spaces"), &part);
    let nowhere = tmp.path().join("nowhere");
    assert!(run_fails(&["restore", "src", "--path", "no/such", "--to", s(&nowhere)]).contains("not in this version"));
    assert!(!nowhere.exists(), "a refused restore makes no folder");

    let checked = run_ok(&["check", "--read-data"]);
    assert!(checked.contains("no problems found") && checked.contains("read back"), "{checked}");
    assert!(run_fails(&["check", "--read-data", "150"]).contains("0 to 100"));
    run_ok(&["forget", "src", "--keep-last", "1"]);
    let pruned = run_json(&["prune"]);
    assert_eq!(pruned["versions"], 1, "{pruned}");
    assert!(run_ok(&["prune", "--dry-run"]).contains("would delete 0 blocks"));
    let out = tmp.path().join("out");
    run_ok(&["restore", "src", "--to", s(&out)]);
    assert_same(&src, &out);

    // a backup set the daemon runs: its first run now, then listed with its result and next run, in status too
    let set = run_json(&["schedule", "add", s(&src), "--every", "1h", "--keep-last", "2"]);
    let id = set["id"].as_u64().unwrap().to_string();
    wait_until("the set's first run", || run_json(&["schedule", "list"])["sets"][0]["last_run_unix"].is_u64());
    let listed = run_ok(&["schedule", "list"]);
    assert!(listed.contains("every 1h") && listed.contains("last: src@4") && listed.contains("next in"), "{listed}");
    assert!(run_ok(&["status"]).contains("backup set"));
    assert!(run_fails(&["schedule", "add", s(&src), "--every", "10s"]).contains("shortest interval"));
    assert!(run_fails(&["schedule", "add", s(&src), "--every", "1y"]).contains("unknown unit"));
    assert!(run_fails(&["schedule", "remove", "99"]).contains("no backup set 99"));
    assert!(run_ok(&["schedule", "remove", &id]).contains("removed"));
    assert!(run_ok(&["schedule", "list"]).contains("no backup sets"));
}
