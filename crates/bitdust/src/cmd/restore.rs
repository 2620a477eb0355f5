//! `bitdust restore NAME[@VERSION] --to DIR`.

use std::path::Path;

use anyhow::{Context, Result};
use bitdust_api::RestoreRequest;
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print_summary;
use bitdust::client::{Client, Follow};

/// `NAME@VERSION` or `NAME`.
///
/// # Errors
/// If the version is not a number.
pub fn split_version(spec: &str) -> Result<(String, Option<u32>)> {
    match spec.rsplit_once('@') {
        Some((name, v)) => {
            let v: u32 = v.parse().with_context(|| format!("invalid version in {spec:?}: expected NAME@NUMBER"))?;
            Ok((name.to_string(), Some(v)))
        }
        None => Ok((spec.to_string(), None)),
    }
}

/// Runs the command.
///
/// # Errors
/// Unknown backup or version, a target that is not empty (without `force`), a failed restore.
pub fn run(home: &Home, spec: &str, path: Option<String>, to: &Path, force: bool, json: bool) -> Result<()> {
    let (name, version) = split_version(spec)?;
    let to = std::path::absolute(to)?;
    let request = RestoreRequest { name, version, to: to.to_string_lossy().into_owned(), force, path };
    let r = Client::for_home(home)?.restore(&request, if json { Follow::JsonLines } else { Follow::Bar })?;
    print_summary(json, &r, |r| {
        format!(
            "restored {}@{} into {}: {} files, {} in {:.2} s ({:.1} MB/s){}",
            r.name,
            r.version,
            r.target,
            r.files,
            human_bytes(r.bytes),
            r.seconds,
            r.bytes as f64 / 1e6 / r.seconds.max(1e-9),
            match r.fragments_failed {
                0 => String::new(),
                n => format!("; {n} fragments were missing or bad and were replaced by others"),
            }
        )
    });
    Ok(())
}
