//! `bitdust ls`: backups and their versions.

use anyhow::Result;
use bitdust_api::Backups;
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print;
use bitdust::client::Client;

/// Runs the command.
///
/// # Errors
/// If the daemon does not answer.
pub fn run(home: &Home, json: bool) -> Result<()> {
    let v: Backups = Client::for_home(home)?.get("/backups")?;
    print(json, &v, |v| {
        if v.backups.is_empty() {
            return "no backups yet".into();
        }
        let mut s =
            String::from("NAME@VERSION          FILES        SIZE      STORED  LAYOUT     CREATED (unix)  SOURCE");
        for b in &v.backups {
            for ver in &b.versions {
                s += &format!(
                    "\n{:<20} {:>6} {:>11} {:>11}  {:<10} {:<15} {}",
                    format!("{}@{}", b.name, ver.version),
                    ver.files,
                    human_bytes(ver.bytes),
                    human_bytes(ver.stored_bytes),
                    ver.layout,
                    ver.created_unix,
                    b.source
                );
            }
        }
        s
    });
    Ok(())
}
