//! `bitdust-lab messages`: private message latency and throughput between two daemons of a local devnet, through
//! their local APIs as the CLI and web UI use them (issue 15's figures: direct latency p50 and p99, messages per
//! second between one pair).
//!
//! Alice and a supplier add each other as contacts; alice sends `count` messages one after the other (each call
//! returns once the recipient has decrypted and stored it: that wall time is the latency), then both send
//! `count` at once from two threads (throughput for the pair, both directions).

use std::time::Instant;

use anyhow::{Context, Result};
use bitdust::client::Client;
use bitdust::devnet::{Devnet, DevnetOptions};
use bitdust_api::{AddContact, ContactInfo, MessageInfo, SendMessage};
use serde_json::{json, Value};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn send(client: &Client, to: &str, text: String) -> Result<()> {
    let m: MessageInfo = client.post("/messages", &SendMessage { to: to.to_string(), text, file: None })?;
    anyhow::ensure!(m.state == "delivered", "message {} to {to} was {}", m.seq, m.state);
    Ok(())
}

/// Runs the benchmark with `count` messages per measurement; prints text unless `json_out`, returns the figures.
///
/// # Errors
/// If the devnet does not start or a message is not delivered.
pub fn run(count: usize, json_out: bool) -> Result<Value> {
    let tmp = tempfile::Builder::new().prefix("bitdust-messages-").tempdir()?;
    let options = DevnetOptions { spares: 0, ..DevnetOptions::new(2, 1) };
    let net = Devnet::start_with(&tmp.path().join("net"), &options)?;
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

    let t = Instant::now();
    let other = std::thread::spawn({
        let bob = Client::for_home(&net.node("supplier-1").context("supplier-1")?.home)?;
        move || -> Result<()> {
            for i in 0..count {
                send(&bob, "alice", format!("both ways {i}"))?;
            }
            Ok(())
        }
    });
    for i in 0..count {
        send(&alice, "bob", format!("both ways {i}"))?;
    }
    other.join().map_err(|_| anyhow::anyhow!("the sending thread panicked"))??;
    let per_second = 2.0 * count as f64 / t.elapsed().as_secs_f64();
    drop(net);
    let report = json!({
        "messages": count,
        "direct_latency_ms": { "p50": p50, "p99": p99, "max": latencies.last().copied().unwrap_or(0.0) },
        "pair_messages_per_second": per_second,
    });
    if !json_out {
        eprintln!(
            "direct: {count} messages one after the other, latency p50 {p50:.2} ms, p99 {p99:.2} ms; both ways at once: \
             {per_second:.0} messages per second"
        );
    }
    Ok(report)
}
