//! `bitdust forget NAME --keep-... [--dry-run]`: remove the versions a keep policy does not keep (restic's meaning),
//! and free their space on the suppliers.

use anyhow::Result;
use bitdust::client::Client;
use bitdust_api::{ForgetReport, ForgetRequest};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print;

/// Runs the command.
///
/// # Errors
/// No rule given, an unknown backup, or the daemon does not answer.
pub fn run(home: &Home, name: &str, request: ForgetRequest, json: bool) -> Result<()> {
    let none = [
        request.keep_last,
        request.keep_hourly,
        request.keep_daily,
        request.keep_weekly,
        request.keep_monthly,
        request.keep_yearly,
    ]
    .iter()
    .all(|n| n.unwrap_or(0) == 0);
    if none {
        anyhow::bail!(
            "give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, \
             --keep-yearly above 0: without one, forget would remove every version"
        );
    }
    let path = format!("/backups/{}/forget", percent(name));
    let report: ForgetReport = Client::for_home(home)?.post(&path, &request)?;
    print(json, &report, text);
    Ok(())
}

/// `name` as one URL path segment.
fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text(r: &ForgetReport) -> String {
    let mut s = String::new();
    for k in &r.kept {
        s += &format!("keep    {}@{}  ({})\n", r.backup, k.version, k.reasons.join(", "));
    }
    for v in &r.removed {
        s += &format!("{} {}@{v}\n", if r.dry_run { "would remove" } else { "remove " }, r.backup);
    }
    if r.dry_run {
        s += &format!(
            "dry run: {} versions would be removed, {} freed on the suppliers",
            r.removed.len(),
            human_bytes(r.freed_bytes)
        );
    } else {
        s += &format!(
            "{} versions removed, {} freed on the suppliers ({} fragments deleted)",
            r.removed.len(),
            human_bytes(r.freed_bytes),
            r.fragments_deleted
        );
    }
    s
}
