//! `bitdust key export FILE`: the secret key, which alone restores everything.

use std::path::Path;

use anyhow::{bail, Result};
use bitdust_node::Home;
use serde::Serialize;

/// What `key export` wrote.
#[derive(Debug, Serialize)]
struct Exported {
    file: String,
    peer_id: String,
}

use super::print;

/// Runs the command.
///
/// # Errors
/// If the home has no key or `file` exists.
pub fn export(home: &Home, file: &Path, json: bool) -> Result<()> {
    let keys = home.keys()?;
    if file.exists() {
        bail!("{} exists; refusing to overwrite it", file.display());
    }
    bitdust_node::home::write_secret(file, keys.export_text().as_bytes())?;
    let v = Exported { file: file.display().to_string(), peer_id: keys.peer_id().to_string() };
    print(json, &v, |_| {
        format!(
            "secret key of {} written to {} (mode 0600).\nKeep it safe and offline: it alone restores your identity and all your data.",
            keys.peer_id(),
            file.display()
        )
    });
    Ok(())
}
