//! `bitdust demo`: a first look. Starts a devnet, backs up a folder, stops n-k suppliers, restores,
//! verifies byte for byte and reports sizes, times and speeds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bitdust_api::{RestoreRequest, Suppliers};
use bitdust_core::human_bytes;
use serde::Serialize;

use crate::client::{Client, Follow};
use crate::devnet::Devnet;
use crate::out;

/// A folder present on every Debian machine.
pub const DEFAULT_DEMO_PATH: &str = "/usr/share/doc";

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// What the demo did (`bitdust --json demo` prints it).
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// What was backed up.
    pub path: String,
    /// Suppliers hired.
    pub suppliers: u16,
    /// The ecc layout.
    pub layout: String,
    /// Files, folders, symlinks backed up.
    pub files: usize,
    /// Folders.
    pub folders: usize,
    /// Symlinks.
    pub symlinks: usize,
    /// Bytes of file contents.
    pub bytes: u64,
    /// Bytes stored on suppliers.
    pub stored_bytes: u64,
    /// Seconds to start the local network.
    pub network_start_seconds: f64,
    /// Seconds of the backup.
    pub backup_seconds: f64,
    /// Backup speed.
    pub backup_mb_per_s: f64,
    /// The suppliers stopped before the restore.
    pub suppliers_stopped: Vec<String>,
    /// Seconds of the restore.
    pub restore_seconds: f64,
    /// Restore speed.
    pub restore_mb_per_s: f64,
    /// Fragments that were missing or bad and replaced by others.
    pub fragments_failed_over: u64,
    /// Whether the restored tree is identical to the original.
    pub identical: bool,
    /// The first differences, if any.
    pub differences: Vec<String>,
}

/// Runs the demo on `path` with `suppliers` suppliers.
///
/// # Errors
/// If the network cannot start, or the backup or restore fails (a restored tree that differs is reported, not an
/// error).
pub fn run(path: Option<PathBuf>, suppliers: u16, json_out: bool) -> Result<DemoReport> {
    let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_DEMO_PATH));
    let path = std::fs::canonicalize(&path).with_context(|| format!("cannot back up {}", path.display()))?;
    let tmp = tempfile::Builder::new().prefix("bitdust-demo-").tempdir()?;
    let say = |s: String| {
        if !json_out {
            eprintln!("{s}");
        }
    };
    say(format!(
        "1. starting a local network: 1 bootstrap node, {suppliers} suppliers, customer alice ({})",
        tmp.path().display()
    ));
    let t = Instant::now();
    let mut net = Devnet::start(&tmp.path().join("net"), suppliers, 0)?;
    let startup = t.elapsed().as_secs_f64();
    let alice = Client::for_home(&net.node("alice").context("alice")?.home)?;

    say(format!("2. backing up {}", path.display()));
    let t = Instant::now();
    let backup = alice.backup(&path, if json_out { Follow::Quiet } else { Follow::Bar })?;
    let backup_secs = t.elapsed().as_secs_f64();
    let (bytes, stored) = (backup.bytes, backup.stored_bytes);

    let sup: Suppliers = alice.get("/suppliers")?;
    let n = sup.suppliers.len() as u16;
    let k = n.div_ceil(2);
    let mut stopped = Vec::new();
    for s in sup.suppliers.iter().take((n - k) as usize) {
        if let Some(node) = net.nodes.iter().find(|x| x.peer_id == s.peer_id).map(|x| x.name.clone()) {
            stopped.push(format!("{node} (position {})", s.position));
            net.stop(&node)?;
        }
    }
    say(format!("3. stopped {} of {n} suppliers: {}", stopped.len(), stopped.join(", ")));

    let target = tmp.path().join("restored");
    say(format!("4. restoring into {}", target.display()));
    let t = Instant::now();
    let request = RestoreRequest {
        name: backup.name.clone(),
        version: None,
        to: target.to_string_lossy().into_owned(),
        force: false,
        path: None,
    };
    let restore = alice.restore(&request, if json_out { Follow::Quiet } else { Follow::Bar })?;
    let restore_secs = t.elapsed().as_secs_f64();

    say("5. verifying the restored tree against the original".into());
    let restored_root = if path.is_dir() { target.clone() } else { target.join(path.file_name().unwrap_or_default()) };
    let diffs = bitdust_storage::service::archive::compare_trees(&path, &restored_root)?;
    net.stop_all();

    let report = DemoReport {
        path: path.display().to_string(),
        suppliers: n,
        layout: backup.layout.clone(),
        files: backup.files,
        folders: backup.folders,
        symlinks: backup.symlinks,
        bytes,
        stored_bytes: stored,
        network_start_seconds: startup,
        backup_seconds: backup_secs,
        backup_mb_per_s: mbps(bytes, backup_secs),
        suppliers_stopped: stopped.clone(),
        restore_seconds: restore_secs,
        restore_mb_per_s: mbps(bytes, restore_secs),
        fragments_failed_over: restore.fragments_failed,
        identical: diffs.is_empty(),
        differences: diffs.iter().take(20).cloned().collect(),
    };
    if !json_out {
        out!();
        out!("bitdust demo report");
        out!(
            "  data         {} : {} files, {} folders, {} symlinks, {}",
            path.display(),
            backup.files,
            backup.folders,
            backup.symlinks,
            human_bytes(bytes)
        );
        out!("  layout       {} on {n} suppliers: any {k} rebuild the data", backup.layout);
        out!(
            "  stored       {} on suppliers ({:.2}x the data, compressed then erasure-coded)",
            human_bytes(stored),
            stored as f64 / bytes.max(1) as f64
        );
        out!("  backup       {backup_secs:.2} s, {:.1} MB/s", mbps(bytes, backup_secs));
        out!("  stopped      {}", stopped.join(", "));
        out!(
            "  restore      {restore_secs:.2} s, {:.1} MB/s from the {} suppliers left ({} fragment requests failed over)",
            mbps(bytes, restore_secs),
            usize::from(n).saturating_sub(stopped.len()),
            restore.fragments_failed
        );
        if diffs.is_empty() {
            out!("  verified     restored tree identical to the original (contents, names, modes, mtimes, links)");
        } else {
            out!(
                "  verified     {} DIFFERENCES, first: {}",
                diffs.len(),
                diffs.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            );
        }
    }
    if !diffs.is_empty() {
        bail!("the restored tree differs from the original ({} differences)", diffs.len());
    }
    Ok(report)
}
