//! `bitdust backup PATH`: a new version of a file or folder.

use std::path::Path;

use anyhow::{Context, Result};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print_summary;
use bitdust_api::BackupRequest;

/// What the command line leaves out: `--exclude`, `--exclude-file`, `--exclude-caches`, `--one-file-system`.
#[derive(Debug, Default)]
pub struct Excludes {
    /// Patterns (gitignore syntax).
    pub patterns: Vec<String>,
    /// Files of patterns, one per line.
    pub files: Vec<std::path::PathBuf>,
    /// CACHEDIR.TAG folders' contents.
    pub caches: bool,
    /// Stay on the folder's file system.
    pub one_file_system: bool,
}
use bitdust::client::{Client, Follow};

/// Runs the command.
///
/// # Errors
/// If the path is unreadable, the daemon does not answer, or the backup fails.
pub fn run(home: &Home, path: &Path, excludes: Excludes, json: bool) -> Result<()> {
    let abs = std::path::absolute(path).with_context(|| format!("cannot back up {}", path.display()))?;
    std::fs::symlink_metadata(&abs).with_context(|| format!("cannot back up {}", path.display()))?;
    let mut exclude = excludes.patterns;
    for file in &excludes.files {
        let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        exclude.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    let request = BackupRequest {
        path: abs.to_string_lossy().into_owned(),
        exclude,
        exclude_caches: excludes.caches,
        one_file_system: excludes.one_file_system,
    };
    let r = Client::for_home(home)?.backup_with(request, if json { Follow::JsonLines } else { Follow::Bar })?;
    print_summary(json, &r, |r| {
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
        if r.new_bytes < r.bytes {
            s += &format!(
                "\n  {} new, {} already stored (deduplicated); {} files unchanged since the last version, not read",
                human_bytes(r.new_bytes),
                human_bytes(r.bytes - r.new_bytes),
                r.unchanged_files
            );
        }
        for p in &r.skipped {
            s += &format!("\n  skipped (special file): {p}");
        }
        for p in &r.changed {
            s += &format!("\n  changed during backup: {p}");
        }
        if r.excluded > 0 {
            s += &format!("\n  {} paths left out by the excludes", r.excluded);
        }
        s
    });
    Ok(())
}
