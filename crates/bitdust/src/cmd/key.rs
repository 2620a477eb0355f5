//! `bitdust key export FILE`: the secret key, which alone restores everything, protected by a passphrase unless
//! `--no-passphrase` says otherwise.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bitdust_node::Home;
use serde::Serialize;
use zeroize::Zeroizing;

use super::print;

/// What `key export` wrote.
#[derive(Debug, Serialize)]
struct Exported {
    file: String,
    peer_id: String,
    protected: bool,
}

/// How the exported key is protected.
#[derive(Debug, Clone)]
pub enum Protection {
    /// Not at all (`--no-passphrase`).
    None,
    /// By the passphrase on the first line of this file (`--passphrase-file`).
    File(PathBuf),
    /// By a passphrase asked twice on the terminal.
    Ask,
}

/// The passphrase on the first line of `file` (wiped from memory when dropped).
///
/// # Errors
/// If the file cannot be read or its first line is empty.
pub fn passphrase_from_file(file: &Path) -> Result<Zeroizing<String>> {
    let text = Zeroizing::new(std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?);
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
    if line.is_empty() {
        bail!("{} holds no passphrase on its first line", file.display());
    }
    Ok(line)
}

/// Asks for a passphrase on the terminal (not echoed); twice when `confirm`.
///
/// # Errors
/// Without a terminal (say how to give one instead), on an empty passphrase, or when the two differ.
pub fn ask_passphrase(prompt: &str, confirm: bool) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!("a passphrase is needed and there is no terminal to ask it on: give --passphrase-file FILE (or, for key export, --no-passphrase)");
    }
    let first = Zeroizing::new(rpassword::prompt_password(prompt).context("reading the passphrase")?);
    if first.is_empty() {
        bail!("an empty passphrase protects nothing (use --no-passphrase to mean it)");
    }
    if confirm {
        let again = Zeroizing::new(rpassword::prompt_password("again: ").context("reading the passphrase")?);
        if *again != *first {
            bail!("the two passphrases differ");
        }
    }
    Ok(first)
}

/// Runs the command.
///
/// # Errors
/// If the home has no key, `file` exists, or no passphrase can be had.
pub fn export(home: &Home, file: &Path, protection: Protection, json: bool) -> Result<()> {
    let keys = home.keys()?;
    if file.exists() {
        bail!("{} exists; refusing to overwrite it", file.display());
    }
    let passphrase = match &protection {
        Protection::None => None,
        Protection::File(f) => Some(passphrase_from_file(f)?),
        Protection::Ask => Some(ask_passphrase("passphrase for the key file: ", true)?),
    };
    let text = match &passphrase {
        Some(p) => Zeroizing::new(keys.export_encrypted(p)?),
        None => keys.export_text(),
    };
    bitdust_node::home::write_secret(file, text.as_bytes())?;
    let v = Exported {
        file: file.display().to_string(),
        peer_id: keys.peer_id().to_string(),
        protected: passphrase.is_some(),
    };
    print(json, &v, |v| {
        format!(
            "secret key of {} written to {} (mode 0600{}).\nKeep it safe and offline: it alone restores your identity and all your data.",
            keys.peer_id(),
            file.display(),
            if v.protected { ", protected by your passphrase" } else { ", NOT protected by a passphrase" }
        )
    });
    Ok(())
}
