//! `bitdust prune [--dry-run]`: delete from the suppliers every block no kept incremental version uses (restic's
//! prune; run it after `forget`).

use anyhow::Result;
use bitdust::client::Client;
use bitdust_api::{PruneReport, PruneRequest};
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
