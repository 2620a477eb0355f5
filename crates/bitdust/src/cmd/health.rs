//! `bitdust health`: per version, blocks at full redundancy, degraded (and how many more losses they take), lost.

use anyhow::Result;
use bitdust_api::Health;
use bitdust_node::Home;

use super::print;
use bitdust::client::Client;

/// Runs the command.
///
/// # Errors
/// If the daemon does not answer.
pub fn run(home: &Home, json: bool) -> Result<()> {
    let v: Health = Client::for_home(home)?.get("/health")?;
    print(json, &v, |v| {
        if v.versions.is_empty() {
            return "no backups yet".into();
        }
        let mut s = String::from("NAME@VERSION          BLOCKS    FULL  DEGRADED  CAN STILL LOSE  LOST");
        for x in &v.versions {
            s += &format!(
                "\n{:<20} {:>7} {:>7} {:>9} {:>15} {:>5}",
                format!("{}@{}", x.name, x.version),
                x.blocks,
                x.full,
                x.degraded,
                x.can_still_lose,
                x.lost
            );
            for f in &x.lost_files {
                s += &format!("\n  cannot be restored: {f}");
            }
        }
        s += &format!("\nrebuild queue: {} blocks, {} fragments", v.rebuild_queue_blocks, v.rebuild_queue_fragments);
        if !v.positions.is_empty() {
            s += "\nPOSITION  SUPPLIER                                              STATE       LAST AUDIT PASSED";
            let now = bitdust_node::automata::now_ms();
            for p in &v.positions {
                let passed = match p.last_audit_passed_unix_ms {
                    Some(t) => format!("{} s ago", now.saturating_sub(t) / 1000),
                    None => "not yet".into(),
                };
                s += &format!("\n{:>8}  {:<52}  {:<10}  {passed}", p.position, p.peer_id, p.state);
                if let Some(e) = &p.last_audit_error {
                    s += &format!("\n          failing {} audits in a row: {e}", p.failing_audits);
                }
            }
        }
        s
    });
    Ok(())
}
