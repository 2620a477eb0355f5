//! Running the real binary in tests: commands, waits with timeouts, daemons stopped on drop.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn bitdust() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bitdust"));
    c.env_remove("BITDUST_HOME").env("BITDUST_LOG", "warn");
    c
}

pub fn run(args: &[&str]) -> Output {
    bitdust().args(args).output().expect("bitdust runs")
}

pub fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "bitdust {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn fails(args: &[&str]) -> String {
    let out = run(args);
    assert!(!out.status.success(), "bitdust {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `bitdust --json ARGS` and parses its output: a backup's or restore's is JSON lines (status lines, then the
/// summary), whose last line is returned.
pub fn json(args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    if args.iter().any(|a| *a == "backup" || *a == "restore") {
        return json_lines(args).pop().expect("a summary line");
    }
    serde_json::from_str(&ok(&a)).expect("JSON output")
}

/// Runs `bitdust --json ARGS` for a backup or restore: its JSON lines, checked to be status lines then one summary.
pub fn json_lines(args: &[&str]) -> Vec<Value> {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = ok(&a);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(lines.last().is_some_and(|l| l["message_type"] == "summary"), "{out}");
    assert!(lines[..lines.len() - 1].iter().all(|l| l["message_type"] == "status"), "{out}");
    lines
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Polls `check` until true; panics after 60 s.
pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `check` until true; panics after `limit`.
pub fn wait_until_long(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "process did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops a child process when dropped, also when a test fails half-way.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            terminate(&mut self.0);
        }
    }
}

pub fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("dir with spaces/ünïcödé/empty")).unwrap();
    std::fs::write(root.join("dir with spaces/ünïcödé/file.txt"), b"caf\xc3\xa9\n".repeat(5000)).unwrap();
    std::fs::write(root.join("empty file"), b"").unwrap();
    let data: Vec<u8> = (0..6_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(root.join("data.bin"), data).unwrap();
    std::os::unix::fs::symlink("dir with spaces", root.join("a link")).unwrap();
}

pub fn assert_same(a: &Path, b: &Path) {
    let diffs = bitdust_storage::service::archive::compare_trees(a, b).unwrap();
    assert!(diffs.is_empty(), "trees differ: {diffs:?}");
}

/// Stops the daemon of `home` by hand, as a user would (SIGTERM to the pid in its pid file), and waits until it
/// has removed the pid file.
pub fn stop_daemon(home: &Path) {
    let pid: i32 = std::fs::read_to_string(home.join("daemon.pid")).unwrap().trim().parse().unwrap();
    // SAFETY: kill(2) on a pid read from a daemon's pid file; no memory is involved.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    wait_until("the daemon stopped", || !home.join("daemon.pid").exists());
}

/// The peer ids of the customer's suppliers by position, from `bitdust suppliers --json`.
pub fn supplier_peers(customer: &Path) -> Vec<String> {
    json(&["--home", s(customer), "suppliers"])["suppliers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["peer_id"].as_str().unwrap().to_string())
        .collect()
}

/// Starts `bitdust devnet` with `args` and waits until it is up.
pub fn devnet(args: &[&str]) -> Running {
    let mut devnet = Running(
        bitdust()
            .arg("devnet")
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(devnet.0.stdout.take().unwrap()));
    while !lines.next().expect("devnet output").unwrap().contains("press Ctrl-C") {}
    devnet
}
