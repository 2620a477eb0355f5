//! `bitdust prune [--dry-run]`: delete from the suppliers every block no kept incremental version uses (restic's
//! prune; run it after `forget`). `bitdust check [--read-data [PERCENT]]`: is everything there?

use anyhow::Result;
use bitdust::client::Client;
use bitdust_api::{CheckReport, CheckRequest, PruneReport, PruneRequest};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print;

/// Runs the command.
///
/// # Errors
/// A tree or the index could not be read (nothing changed), or the daemon does not answer.
pub fn run(home: &Home, dry_run: bool, json: bool) -> Result<()> {
    let report: PruneReport = Client::for_home(home)?.post("/prune", &PruneRequest { dry_run: Some(dry_run) })?;
    print(json, &report, text);
    Ok(())
}

fn text(r: &PruneReport) -> String {
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    let verb2 = if r.dry_run { "repack" } else { "repacked" };
    format!(
        "{} versions use {} chunks; {verb} {} blocks and {verb2} {} ({} moved): {} freed on the suppliers{}, \
         kept {} blocks ({} in them unused){}",
        r.versions,
        r.used_chunks,
        r.blocks_deleted,
        r.blocks_repacked,
        human_bytes(r.repacked_bytes),
        human_bytes(r.freed_bytes),
        if r.dry_run { String::new() } else { format!(", {} fragments confirmed deleted", r.fragments_deleted) },
        r.blocks_kept,
        human_bytes(r.unused_bytes_kept),
        if r.dry_run { " (dry run: nothing changed)".to_string() } else { format!(" in {:.1} s", r.seconds) },
    )
}

/// `check`: prints the report; fails (exit status 1) if anything is wrong.
///
/// # Errors
/// Problems found, a percent out of range, or the daemon does not answer.
pub fn check(home: &Home, read_data: Option<f64>, json: bool) -> Result<()> {
    let r: CheckReport = Client::for_home(home)?.post("/check", &CheckRequest { read_data_percent: read_data })?;
    print(json, &r, |r| {
        let mut s = format!(
            "catalog revision {}: {} supplier copies up to date\n{} index objects ({} entries)\n{} versions: {} trees, {} \
             chunks used",
            r.revision, r.catalog_copies_ok, r.index_objects, r.index_entries, r.versions, r.trees, r.chunks_used
        );
        if r.blocks_read > 0 {
            s += &format!("\nread back {} of {} blocks: {} fragments", r.blocks_read, r.blocks, r.fragments_read);
        }
        for (what, list) in [
            ("catalog", &r.catalog_problems),
            ("index", &r.index_problems),
            ("missing", &r.missing_chunks),
            ("fragment", &r.fragments_bad),
        ] {
            for line in list {
                s += &format!("\n  {what}: {line}");
            }
        }
        s += if r.ok { "\nno problems found" } else { "\nPROBLEMS FOUND" };
        s
    });
    if !r.ok {
        anyhow::bail!("check found problems");
    }
    Ok(())
}
