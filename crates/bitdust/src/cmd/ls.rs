//! `bitdust ls [NAME[@VERSION] [PATH]]`: backups and their versions, or one folder of a version; `bitdust diff
//! NAME@A NAME@B`; `bitdust find PATTERN`.

use anyhow::{bail, Result};
use bitdust_api::{Backups, FindResult, SharedEntry, VersionDiff, VersionFiles};
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

/// `s` as one URL component.
fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn line(e: &SharedEntry) -> String {
    match e.kind.as_str() {
        "dir" => format!("{:>11}  {}/", "", e.path),
        "symlink" => format!("{:>11}  {} (link)", "", e.path),
        _ => format!("{:>11}  {}", human_bytes(e.size), e.path),
    }
}

/// `ls NAME[@VERSION] [PATH]`: one folder of a version.
///
/// # Errors
/// An unknown backup, version or folder, or the daemon does not answer.
pub fn folder(home: &Home, spec: &str, path: &str, json: bool) -> Result<()> {
    let (name, version) = super::restore::split_version(spec)?;
    let mut q = format!("/backups/{}/files?dir={}", percent(&name), percent(path));
    if let Some(v) = version {
        q += &format!("&version={v}");
    }
    let f: VersionFiles = Client::for_home(home)?.get(&q)?;
    print(json, &f, |f| {
        let mut s = format!("{}@{} /{}", f.backup, f.version, f.dir);
        for e in &f.entries {
            s += &format!("\n{}", line(e));
        }
        if f.more > 0 {
            s += &format!("\n... and {} more", f.more);
        }
        s
    });
    Ok(())
}

/// `diff NAME@A NAME@B`.
///
/// # Errors
/// Versions not given, of two backups, unknown; or the daemon does not answer.
pub fn diff(home: &Home, from: &str, to: &str, json: bool) -> Result<()> {
    let (a, va) = super::restore::split_version(from)?;
    let (b, vb) = super::restore::split_version(to)?;
    let (Some(va), Some(vb)) = (va, vb) else { bail!("give two versions: bitdust diff NAME@A NAME@B") };
    if a != b {
        bail!("{a:?} and {b:?} are two backups: diff compares two versions of one");
    }
    let d: VersionDiff = Client::for_home(home)?.get(&format!("/backups/{}/diff?from={va}&to={vb}", percent(&a)))?;
    print(json, &d, |d| {
        let mut s = format!("{}@{} -> {}@{}", d.backup, d.from, d.backup, d.to);
        for (sign, list) in [("+", &d.added), ("-", &d.removed), ("M", &d.changed)] {
            for e in list {
                s += &format!("\n{sign} {}{}", e.path, if e.kind == "dir" { "/" } else { "" });
            }
        }
        s += &format!(
            "\n{} added, {} removed, {} changed{}",
            d.added.len(),
            d.removed.len(),
            d.changed.len(),
            if d.more > 0 { format!(" (and {} more not listed)", d.more) } else { String::new() }
        );
        s
    });
    Ok(())
}

/// `find PATTERN`.
///
/// # Errors
/// A bad pattern, or the daemon does not answer.
pub fn find(home: &Home, pattern: &str, json: bool) -> Result<()> {
    let r: FindResult = Client::for_home(home)?.get(&format!("/find?pattern={}", percent(pattern)))?;
    print(json, &r, |r| {
        if r.matches.is_empty() {
            return format!("nothing matches {:?}", r.pattern);
        }
        let mut s = String::new();
        for m in &r.matches {
            s += &format!("{}@{}  {}\n", m.backup, m.version, line(&m.entry).trim_start());
        }
        if r.more > 0 {
            s += &format!("... and {} more\n", r.more);
        }
        s.trim_end().to_string()
    });
    Ok(())
}
