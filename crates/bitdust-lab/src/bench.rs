//! `bitdust-lab bench`: end-to-end throughput and customer memory over a local devnet.
//!
//! Writes a file of random bytes, starts a devnet (one process per node), backs the file up, restores it
//! with every supplier up, stops one supplier for good and times the return to full redundancy (with the
//! bytes the rebuild moved), restores again with n-k suppliers stopped, checks the restored bytes (BLAKE3),
//! and reports MB/s and the customer daemon's peak resident memory (`VmHWM` in `/proc/<pid>/status`).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use bitdust_api::{Automata, Health, RestoreRequest, Suppliers};
use bitdust_core::human_bytes;
use bitdust_storage::config::MaintenanceConfig;
use serde_json::{json, Value};

use bitdust::client::{Client, Follow};
use bitdust::devnet::{Devnet, DevnetOptions};
use bitdust::out;

/// Writes `bytes` pseudo-random bytes (incompressible, cheap to make) to `path`.
pub(crate) fn write_random(path: &Path, bytes: u64) -> Result<()> {
    let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut x: u64 = rand::random::<u64>() | 1;
    let mut buf = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    Ok(())
}

fn peak_rss_bytes(home: &Path) -> Option<u64> {
    let pid = std::fs::read_to_string(home.join("daemon.pid")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs the benchmark with a file of `size` bytes on `suppliers` suppliers, in `dir` (a temp folder if
/// `None`). A supplier silent for `fire_after_secs` is replaced (suspect after a fifth of that, offline after
/// two fifths, at least 2 and 3 s).
pub fn run(size: u64, suppliers: u16, fire_after_secs: u64, dir: Option<&Path>, json_out: bool) -> Result<Value> {
    anyhow::ensure!((4..=3600).contains(&fire_after_secs), "--fire-after-secs must be between 4 and 3600");
    let tmp = tempfile::Builder::new().prefix("bitdust-bench-").tempdir_in(dir.unwrap_or(&std::env::temp_dir()))?;
    let say = |s: String| {
        if !json_out {
            eprintln!("{s}");
        }
    };
    let src = tmp.path().join("random.bin");
    say(format!("writing {} of random bytes to {}", human_bytes(size), src.display()));
    write_random(&src, size)?;
    let src_hash = bitdust_storage::service::archive::hash_file(&src)?;
    let fire_after_ms = fire_after_secs * 1000;
    let suspect_after_ms = (fire_after_ms / 5).max(2_000);
    let maintenance = MaintenanceConfig {
        suspect_after_ms,
        offline_after_ms: (fire_after_ms * 2 / 5).max(suspect_after_ms + 1_000),
        fire_after_ms,
        ..MaintenanceConfig::devnet()
    };
    let options = DevnetOptions { maintenance, ..DevnetOptions::new(suppliers, 1) };
    let mut net = Devnet::start_with(&tmp.path().join("net"), &options)?;
    let alice_home = net.node("alice").context("alice")?.home.root().to_path_buf();
    let alice = Client::for_home(&net.node("alice").context("alice")?.home)?;

    say("backing up".into());
    let t = Instant::now();
    let backup = alice.backup(&src, if json_out { Follow::Quiet } else { Follow::Bar })?;
    let up = t.elapsed().as_secs_f64();

    let restore = |to: &Path| -> Result<f64> {
        let t = Instant::now();
        let request = RestoreRequest {
            name: backup.name.clone(),
            version: None,
            to: to.to_string_lossy().into_owned(),
            force: false,
            path: None,
        };
        alice.restore(&request, if json_out { Follow::Quiet } else { Follow::Bar })?;
        let secs = t.elapsed().as_secs_f64();
        let got = bitdust_storage::service::archive::hash_file(&to.join("random.bin"))?;
        anyhow::ensure!(got == src_hash, "restored bytes differ from the original");
        std::fs::remove_dir_all(to)?;
        Ok(secs)
    };
    say("restoring with every supplier up".into());
    let down_all = restore(&tmp.path().join("out-all"))?;

    // Lose one supplier for good: time until it is replaced (detection + hysteresis + hiring) and until
    // every block is back at full redundancy, and the bytes the rebuild moved.
    let peers = |v: &Suppliers| -> Vec<String> { v.suppliers.iter().map(|x| x.peer_id.clone()).collect() };
    let before = peers(&alice.get("/suppliers")?);
    let lost = before.first().cloned().context("no suppliers")?;
    let lost_name = net.nodes.iter().find(|x| x.peer_id == lost).map(|x| x.name.clone()).context("lost supplier")?;
    say(format!("stopping {lost_name} (position 0) for good; waiting for the replacement and the rebuild"));
    let t = Instant::now();
    net.stop(&lost_name)?;
    let mut replaced_after = None;
    let rebuilt_after = loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if replaced_after.is_none() && peers(&alice.get("/suppliers")?).first() != Some(&lost) {
            replaced_after = Some(t.elapsed().as_secs_f64());
        }
        let h: Health = alice.get("/health")?;
        if replaced_after.is_some() && h.rebuild_queue_blocks == 0 && h.versions.iter().all(|v| v.full == v.blocks) {
            break t.elapsed().as_secs_f64();
        }
        anyhow::ensure!(t.elapsed().as_secs() < 900, "no full redundancy after 15 minutes");
    };
    // The rebuild automaton's counters are published on the maintenance tick after the health turned full.
    let rebuild = || -> Result<Value> {
        let automata: Automata = alice.get("/automata")?;
        Ok(automata
            .automata
            .into_iter()
            .find(|x| x.kind == "rebuild")
            .map(|x| json!({ "details": x.details }))
            .unwrap_or(Value::Null))
    };
    let waited = Instant::now();
    let mut rb = rebuild()?;
    while rb["details"]["fragments_rebuilt"].as_u64().unwrap_or(0) == 0 && waited.elapsed().as_secs() < 10 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        rb = rebuild()?;
    }
    let (sent, fetched) =
        (rb["details"]["bytes_sent"].as_u64().unwrap_or(0), rb["details"]["bytes_fetched"].as_u64().unwrap_or(0));
    let replaced_after = replaced_after.unwrap_or(rebuilt_after);

    let sup: Suppliers = alice.get("/suppliers")?;
    let n = sup.suppliers.len() as u16;
    let k = n.div_ceil(2);
    for s in sup.suppliers.iter().take((n - k) as usize) {
        if let Some(name) = net.nodes.iter().find(|x| x.peer_id == s.peer_id).map(|x| x.name.clone()) {
            net.stop(&name)?;
        }
    }
    say(format!("restoring with {} of {n} suppliers stopped", n - k));
    let down_degraded = restore(&tmp.path().join("out-degraded"))?;
    let peak = peak_rss_bytes(&alice_home);
    net.stop_all();
    std::fs::remove_file(&src)?;
    let mb = size as f64 / 1e6;
    let report = json!({
        "bytes": size,
        "suppliers": n,
        "layout": backup.layout,
        "stored_bytes": backup.stored_bytes,
        "upload_seconds": up,
        "upload_mb_per_s": mb / up,
        "restore_seconds": down_all,
        "restore_mb_per_s": mb / down_all,
        "degraded_restore_seconds": down_degraded,
        "degraded_restore_mb_per_s": mb / down_degraded,
        "customer_peak_rss_bytes": peak,
        "fire_after_seconds": fire_after_secs,
        "lost_supplier_replaced_after_seconds": replaced_after,
        "full_redundancy_after_seconds": rebuilt_after,
        "rebuild_seconds": rebuilt_after - replaced_after,
        "rebuild_bytes_fetched": fetched,
        "rebuild_bytes_sent": sent,
    });
    if !json_out {
        out!(
            "bitdust-lab bench: {} random file, {} on {n} suppliers (one process each, 127.0.0.1)",
            human_bytes(size),
            backup.layout
        );
        out!("  upload             {up:8.2} s {:8.1} MB/s", mb / up);
        out!("  restore            {down_all:8.2} s {:8.1} MB/s", mb / down_all);
        out!("  restore, {} down    {down_degraded:8.2} s {:8.1} MB/s", n - k, mb / down_degraded);
        out!("  stored             {}", human_bytes(backup.stored_bytes));
        out!("  customer peak RSS  {}", peak.map(human_bytes).unwrap_or_else(|| "unknown".into()));
        out!(
            "  lost 1 supplier    replaced after {replaced_after:.1} s ({fire_after_secs} s hysteresis), full redundancy after {rebuilt_after:.1} s"
        );
        out!(
            "  rebuild            {:.1} s, fetched {}, sent {}",
            rebuilt_after - replaced_after,
            human_bytes(fetched),
            human_bytes(sent)
        );
    }
    Ok(report)
}
