//! `bitdust backup PATH`: a new version of a file or folder.

use std::path::Path;

use anyhow::{Context, Result};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print;
use bitdust::client::Client;

/// Runs the command.
///
/// # Errors
/// If the path is unreadable, the daemon does not answer, or the backup fails.
pub fn run(home: &Home, path: &Path, json: bool) -> Result<()> {
    let abs = std::path::absolute(path).with_context(|| format!("cannot back up {}", path.display()))?;
    std::fs::symlink_metadata(&abs).with_context(|| format!("cannot back up {}", path.display()))?;
    let r = Client::for_home(home)?.backup(&abs, json)?;
    print(json, &r, |r| {
        let mut s = format!(
            "backed up {} as {}@{}: {} files, {} in {:.2} s ({:.1} MB/s); {} stored with {}",
            abs.display(),
            r.name,
            r.version,
            r.files,
            human_bytes(r.bytes),
            r.seconds,
            r.bytes as f64 / 1e6 / r.seconds.max(1e-9),
            human_bytes(r.stored_bytes),
            r.layout
        );
        for p in &r.skipped {
            s += &format!("\n  skipped (special file): {p}");
        }
        for p in &r.changed {
            s += &format!("\n  changed during backup: {p}");
        }
        s
    });
    Ok(())
}
