//! `bitdust share|shares|revoke|shared`, and `ls` / `restore` of `OWNER:NAME[@VERSION]`: sharing backups.

use std::path::Path;

use anyhow::{bail, Result};
use bitdust_api::{
    RestoreReport, RevokeReport, RevokeRequest, SearchResults, ShareInfo, ShareRequest, SharedList, SharedListing,
    SharedRestoreRequest, SharedWriteReport, SharedWriteRequest, Shares,
};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::contacts::encode;
use super::print;
use super::restore::split_version;
use bitdust::client::Client;

/// `OWNER:NAME[@VERSION]`: the owner (a contact's name or a peer id), the backup's name and the version; `None` if
/// `spec` names none of the user's own (no `:`).
///
/// # Errors
/// An empty owner or name, a version that is not a number.
pub fn split_owner(spec: &str) -> Result<Option<(String, String, Option<u32>)>> {
    let Some((owner, rest)) = spec.split_once(':') else { return Ok(None) };
    let (name, version) = split_version(rest)?;
    if owner.is_empty() || name.is_empty() {
        bail!("expected OWNER:NAME[@VERSION], got {spec:?}");
    }
    Ok(Some((owner.to_string(), name, version)))
}

fn share_line(s: &ShareInfo) -> String {
    let grantees: Vec<String> = s
        .grantees
        .iter()
        .map(|g| {
            let name = g.name.clone().unwrap_or_else(|| g.peer.chars().take(16).collect());
            match (g.revoked, g.delivered) {
                (true, _) => format!("{name} (revoked)"),
                (false, false) => format!("{name} (not reached yet)"),
                (false, true) => name,
            }
        })
        .collect();
    let what = match (s.version, s.write) {
        (Some(v), _) => format!("{}@{v}", s.backup),
        (None, true) => format!("{} (read-write)", s.backup),
        (None, false) => s.backup.clone(),
    };
    format!("{}  {what:<24} with {}", s.id, grantees.join(", "))
}

/// What a public share says of itself.
pub struct Described {
    /// Title.
    pub title: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Keywords, separated by spaces or commas.
    pub keywords: Option<String>,
    /// The grantees may add versions.
    pub write: bool,
}

/// `bitdust share NAME[@VERSION] --with CONTACT|group:G|public [--title T --description D --keywords K]`.
///
/// # Errors
/// An unknown backup, version, contact or group, too few suppliers, or the daemon.
pub fn share(home: &Home, spec: &str, with: &str, described: Described, json: bool) -> Result<()> {
    // NAME[@VERSION][:PATH]
    let (spec, path) = match spec.split_once(':') {
        Some((spec, path)) => (spec, Some(path.to_string())),
        None => (spec, None),
    };
    let (backup, version) = split_version(spec)?;
    let Described { title, description, keywords, write } = described;
    if with != "public" && (title.is_some() || description.is_some() || keywords.is_some()) {
        bail!("--title, --description and --keywords describe a public share (--with public)");
    }
    let body = ShareRequest { backup, version, with: with.to_string(), title, description, keywords, write, path };
    let s: ShareInfo = Client::for_home(home)?.post("/shares", &body)?;
    print(json, &s, |s| format!("shared: {}", share_line(s)));
    Ok(())
}

/// `bitdust shares`: what I share, with whom.
///
/// # Errors
/// The daemon.
pub fn shares(home: &Home, json: bool) -> Result<()> {
    let v: Shares = Client::for_home(home)?.get("/shares")?;
    print(json, &v, |v| {
        if v.shares.is_empty() {
            return "you share nothing".into();
        }
        v.shares.iter().map(share_line).collect::<Vec<_>>().join("\n")
    });
    Ok(())
}

/// `bitdust revoke SHARE_ID [--from CONTACT]`.
///
/// # Errors
/// An unknown share or grantee, or the daemon.
pub fn revoke(home: &Home, id: &str, from: Option<String>, json: bool) -> Result<()> {
    let r: RevokeReport =
        Client::for_home(home)?.post(&format!("/shares/{}/revoke", encode(id)), &RevokeRequest { from })?;
    print(json, &r, |r| {
        format!(
            "revoked {} grantee(s) of {}: {} of {} suppliers refuse them from now on ({:.2} s)",
            r.revoked, r.share.backup, r.suppliers_confirmed, r.suppliers, r.seconds
        )
    });
    Ok(())
}

/// `bitdust shared`: what others share with me.
///
/// # Errors
/// The daemon.
pub fn shared(home: &Home, json: bool) -> Result<()> {
    let v: SharedList = Client::for_home(home)?.get("/shared")?;
    print(json, &v, |v| {
        if v.shared.is_empty() {
            return "nothing is shared with you".into();
        }
        let mut s = String::from("OWNER:NAME                        SHARE ID");
        for x in &v.shared {
            let owner = x.owner_name.clone().unwrap_or_else(|| x.owner.clone());
            let what = match x.version {
                Some(v) => format!("{owner}:{}@{v}", x.backup),
                None => format!("{owner}:{}", x.backup),
            };
            s += &format!("\n{what:<33} {}{}", x.id, if x.revoked { "  (revoked)" } else { "" });
        }
        s
    });
    Ok(())
}

/// `bitdust ls OWNER:NAME[@VERSION]`: a shared backup's versions and files.
///
/// # Errors
/// Nothing shared under that name, the owner's suppliers refuse (revoked) or cannot answer, or the daemon.
pub fn ls(home: &Home, owner: &str, name: &str, version: Option<u32>, json: bool) -> Result<()> {
    let mut path = format!("/shared/{}/{}", encode(owner), encode(name));
    if let Some(v) = version {
        path += &format!("?version={v}");
    }
    let l: SharedListing = Client::for_home(home)?.get(&path)?;
    print(json, &l, |l| {
        let versions: Vec<String> = l.versions.iter().map(|v| v.version.to_string()).collect();
        let mut s = format!("{owner}:{}@{} (versions shared: {})", l.backup, l.version, versions.join(", "));
        for e in &l.entries {
            match e.kind.as_str() {
                "file" => s += &format!("\n{:>11}  {}", human_bytes(e.size), e.path),
                "dir" if e.path.is_empty() => {}
                "dir" => s += &format!("\n{:>11}  {}/", "", e.path),
                _ => s += &format!("\n{:>11}  {} ({})", "", e.path, e.kind),
            }
        }
        s
    });
    Ok(())
}

/// `bitdust restore OWNER:NAME[@VERSION] --to DIR`.
///
/// # Errors
/// As [`ls`], a target that is not empty (without `force`), a failed restore.
pub fn restore(
    home: &Home,
    owner: &str,
    name: &str,
    version: Option<u32>,
    to: &Path,
    force: bool,
    json: bool,
) -> Result<()> {
    let to = std::path::absolute(to)?;
    let body = SharedRestoreRequest {
        owner: owner.to_string(),
        backup: name.to_string(),
        version,
        to: to.to_string_lossy().into_owned(),
        force,
    };
    let r: RestoreReport = Client::for_home(home)?.post("/shared/restore", &body)?;
    print(json, &r, |r| {
        format!(
            "restored {owner}:{}@{} into {}: {} files, {} in {:.2} s",
            r.name,
            r.version,
            r.target,
            r.files,
            human_bytes(r.bytes),
            r.seconds
        )
    });
    Ok(())
}

/// `bitdust search WORDS...`: public shares across the network.
///
/// # Errors
/// No usable word, or the daemon.
pub fn search(home: &Home, words: &[String], json: bool) -> Result<()> {
    let q = words.join(" ");
    let r: SearchResults = Client::for_home(home)?.get(&format!("/search?q={}", encode(&q)))?;
    print(json, &r, |r| {
        if r.words.is_empty() {
            return "nothing to search for: give words of 2 to 32 letters or digits".into();
        }
        let mut s = format!(
            "{} found for {} ({} publishers asked, {:.2} s{})",
            r.hits.len(),
            r.words.join(" "),
            r.providers,
            r.seconds,
            if r.refused > 0 { format!(", {} forged entries refused", r.refused) } else { String::new() }
        );
        for h in &r.hits {
            let owner = h.owner_name.clone().unwrap_or_else(|| h.owner.clone());
            let what = match h.version {
                Some(v) => format!("{owner}:{}@{v}", h.backup),
                None => format!("{owner}:{}", h.backup),
            };
            s += &format!("\n{what}\n    {} [{}]", h.title, h.keywords.join(", "));
            if !h.description.is_empty() {
                s += &format!("\n    {}", h.description);
            }
        }
        s
    });
    Ok(())
}

/// `bitdust backup PATH --to OWNER:NAME`: a new version of a share that lets you write.
///
/// # Errors
/// Nothing shared under that name, a read-only share, an unreadable path, the owner refused, or the daemon.
pub fn write(home: &Home, owner: &str, name: &str, path: &Path, json: bool) -> Result<()> {
    let path = std::path::absolute(path)?;
    let body = SharedWriteRequest {
        owner: owner.to_string(),
        backup: name.to_string(),
        path: path.to_string_lossy().into_owned(),
    };
    let r: SharedWriteReport = Client::for_home(home)?.post("/shared/write", &body)?;
    print(json, &r, |r| {
        format!(
            "{} sent to {owner}:{} as a new version ({:.2} s); the owner adds it and shares it again",
            path.display(),
            r.backup,
            r.seconds
        )
    });
    Ok(())
}
