//! `bitdust-lab messages`: private message latency and throughput between two daemons of a local devnet, through
//! their local APIs as the CLI and web UI use them (issue 15's figures: direct latency p50 and p99, messages per
//! second between one pair).
//!
//! Alice and a supplier add each other as contacts; alice sends `count` messages one after the other (each call
//! returns once the recipient has decrypted and stored it: that wall time is the latency), then both send
//! `count` at once from two threads (throughput for the pair, both directions). Then alice offers a file of
//! `file_mib` MiB to the supplier (time from the request until the recipient has it all, verified: MB/s), and
//! finally alice stops, the supplier writes to her (the messages wait in her suppliers' mailboxes) and she starts
//! again: the time from her daemon's start until every message is in her history is the offline delivery time.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bitdust::client::Client;
use bitdust::devnet::{Devnet, DevnetOptions};
use bitdust_api::{AddContact, ContactInfo, Conversation, MessageInfo, SendMessage};
use serde_json::{json, Value};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn send(client: &Client, to: &str, text: String) -> Result<()> {
    let m: MessageInfo =
        client.post("/messages", &SendMessage { to: to.to_string(), text, file: None, via_storage: false })?;
    anyhow::ensure!(m.state == "delivered", "message {} to {to} was {}", m.seq, m.state);
    Ok(())
}

/// Runs the benchmark with `count` messages per measurement and `senders` clients sending at once on each side in
/// the throughput measurement; prints text unless `json_out`, returns the figures.
///
/// # Errors
/// If the devnet does not start or a message is not delivered.
pub fn run(count: usize, file_mib: u64, senders: usize, json_out: bool) -> Result<Value> {
    let tmp = tempfile::Builder::new().prefix("bitdust-messages-").tempdir()?;
    let options = DevnetOptions { spares: 0, ..DevnetOptions::new(2, 1) };
    let mut net = Devnet::start_with(&tmp.path().join("net"), &options)?;
    let alice = Client::for_home(&net.node("alice").context("alice")?.home)?;
    let bob = Client::for_home(&net.node("supplier-1").context("supplier-1")?.home)?;
    let _: ContactInfo = alice.post("/contacts", &AddContact { who: "supplier-1".into(), name: Some("bob".into()) })?;
    let _: ContactInfo = bob.post("/contacts", &AddContact { who: "alice".into(), name: None })?;
    // the first message opens the session (a prekey round trip): not counted
    send(&alice, "bob", "hello".into())?;
    send(&bob, "alice", "hello".into())?;

    let mut latencies = Vec::with_capacity(count);
    for i in 0..count {
        let t = Instant::now();
        send(&alice, "bob", format!("latency {i}"))?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    // both ways at once, `senders` clients per side (as a UI with several chats open)
    let senders = senders.max(1);
    let t = Instant::now();
    let mut threads = Vec::new();
    for (home, to) in [("alice", "bob"), ("supplier-1", "alice")] {
        for s in 0..senders {
            let client = Client::for_home(&net.node(home).context("node")?.home)?;
            threads.push(std::thread::spawn(move || -> Result<()> {
                for i in (s..count).step_by(senders) {
                    send(&client, to, format!("both ways {i}"))?;
                }
                Ok(())
            }));
        }
    }
    for th in threads {
        th.join().map_err(|_| anyhow::anyhow!("a sending thread panicked"))??;
    }
    let per_second = 2.0 * count as f64 / t.elapsed().as_secs_f64();

    // a file, direct
    let file = tmp.path().join("file.bin");
    crate::bench::write_random(&file, file_mib << 20)?;
    let t = Instant::now();
    let body = SendMessage {
        to: "bob".into(),
        text: String::new(),
        file: Some(file.display().to_string()),
        via_storage: false,
    };
    let offer: MessageInfo = alice.post("/messages", &body)?;
    let offer_seconds = t.elapsed().as_secs_f64();
    let file_seconds = loop {
        let c: Conversation = bob.get("/messages/alice?limit=5")?;
        let state = c.messages.iter().find(|m| m.id == offer.id).and_then(|m| m.file.clone()).map(|f| f.state);
        match state.as_deref() {
            Some("received") => break t.elapsed().as_secs_f64(),
            Some("failed") => anyhow::bail!("the file transfer failed"),
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let file_mb_per_s = (file_mib << 20) as f64 / 1e6 / file_seconds;

    // offline: alice hires her suppliers (her mailboxes), stops; bob writes; alice starts again
    let _: Value = alice.post("/suppliers/hire", &json!({}))?;
    net.stop("alice")?;
    const AWAY: usize = 10;
    for i in 0..AWAY {
        let m: MessageInfo = bob.post(
            "/messages",
            &SendMessage { to: "alice".into(), text: format!("while away {i}"), file: None, via_storage: false },
        )?;
        if m.state != "stored" {
            let log = std::fs::read_to_string(net.node("supplier-1").context("bob")?.home.path("daemon.log"))?;
            let why: Vec<&str> = log.lines().filter(|l| l.contains("mailbox")).collect();
            anyhow::bail!("a message to the stopped alice was {}: {}", m.state, why.join("\n"));
        }
    }
    let t = Instant::now();
    net.start_again("alice")?;
    let alice = Client::for_home(&net.node("alice").context("alice")?.home)?;
    let offline_seconds = loop {
        let c: Conversation = alice.get("/messages/bob?limit=20")?;
        if c.messages.iter().filter(|m| m.text.starts_with("while away")).count() == AWAY {
            break t.elapsed().as_secs_f64();
        }
        anyhow::ensure!(t.elapsed() < Duration::from_secs(120), "alice did not collect her mail");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(net);
    let report = json!({
        "messages": count,
        "direct_latency_ms": { "p50": p50, "p99": p99, "max": latencies.last().copied().unwrap_or(0.0) },
        "pair_messages_per_second": per_second,
        "senders_per_side": senders,
        "file_mib": file_mib,
        "file_seconds": file_seconds,
        "file_mb_per_s": file_mb_per_s,
        "file_offer_seconds": offer_seconds,
        "offline_messages": AWAY,
        "offline_delivery_seconds": offline_seconds,
    });
    if !json_out {
        eprintln!(
            "direct: {count} messages one after the other, latency p50 {p50:.2} ms, p99 {p99:.2} ms; both ways at once \
             ({senders} senders a side): {per_second:.0} messages per second\nfile: {file_mib} MiB in {file_seconds:.2} s ({file_mb_per_s:.0} MB/s, \
             offer to verified copy; the offer, hashing included, took {offer_seconds:.2} s)\noffline: {AWAY} messages in the mailboxes, all in the history {offline_seconds:.2} s \
             after the recipient's daemon was started"
        );
    }
    Ok(report)
}
