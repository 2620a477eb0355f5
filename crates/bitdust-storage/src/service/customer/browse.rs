//! Browsing versions without restoring them: `diff` between two versions of a backup and `find` across all.
//!
//! Incremental versions are compared tree by tree: a folder whose tree id is the same in both is the same folder,
//! so it is skipped without being read (restic's diff), and a file whose chunk list is the same has the same
//! contents. Format-1 versions are compared entry by entry from the catalog (size and mtime stand for contents).
//! `find` walks every version once, reading each distinct tree once. Both stop listing at
//! [`bitdust_api::MAX_LISTED_ENTRIES`] and count the rest.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use bitdust_api::{FindResult, Found, SharedEntry, VersionDiff, MAX_LISTED_ENTRIES};

use super::chunks::ChunkReader;
use super::snapshot::{entry, join};
use crate::proto::catalog::{Catalog, Entry, EntryKind, Version};
use crate::proto::chunk::{ChunkId, ChunkRef};
use crate::proto::tree::{Node, NodeKind};
use crate::service::share::api_entry;
use crate::service::Storage;

/// A bounded list of results.
struct Listing<T> {
    items: Vec<T>,
    more: usize,
}

impl<T> Listing<T> {
    fn new() -> Self {
        Self { items: Vec::new(), more: 0 }
    }
    fn push(&mut self, total: usize, item: T) {
        if total < MAX_LISTED_ENTRIES {
            self.items.push(item);
        } else {
            self.more += 1;
        }
    }
}

fn same_contents(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (
            NodeKind::File { size: s1, chunks: c1, more: m1, .. },
            NodeKind::File { size: s2, chunks: c2, more: m2, .. },
        ) => s1 == s2 && m1.map(|m| m.id) == m2.map(|m| m.id) && c1.iter().map(|c| c.id).eq(c2.iter().map(|c| c.id)),
        (NodeKind::Symlink { target: t1 }, NodeKind::Symlink { target: t2 }) => t1 == t2,
        (NodeKind::Dir { .. }, NodeKind::Dir { .. }) => true,
        _ => false,
    }
}

fn find_version<'a>(catalog: &'a Catalog, name: &str, number: u32) -> Result<&'a Version> {
    let b = catalog.backup(name).ok_or_else(|| anyhow!("no backup named {name:?}"))?;
    b.versions.iter().find(|v| v.number == number).ok_or_else(|| anyhow!("backup {name:?} has no version {number}"))
}

impl Storage {
    /// What changed from version `from` to version `to` of backup `name`.
    ///
    /// # Errors
    /// An unknown backup or version (the message says which), versions of different formats, or a tree that
    /// cannot be read.
    pub async fn diff(self: &Arc<Self>, name: &str, from: u32, to: u32) -> Result<VersionDiff> {
        let catalog = self.catalog()?;
        let (a, b) = (find_version(&catalog, name, from)?, find_version(&catalog, name, to)?);
        let mut added = Listing::new();
        let mut removed = Listing::new();
        let mut changed = Listing::new();
        let count = |a: &Listing<SharedEntry>, r: &Listing<SharedEntry>, c: &Listing<SharedEntry>| {
            a.items.len() + r.items.len() + c.items.len()
        };
        match (catalog.snapshot(a), catalog.snapshot(b)) {
            (Some(sa), Some(sb)) => {
                self.sync_chunk_index(&catalog).await?;
                let reader = ChunkReader::new(self, &catalog);
                let mut pairs: Vec<(Vec<u8>, ChunkRef, ChunkRef)> = vec![(Vec::new(), sa.root, sb.root)];
                while let Some((dir, ta, tb)) = pairs.pop() {
                    if ta.id == tb.id {
                        continue;
                    }
                    let (la, lb) = (reader.tree(&ta).await?.nodes, reader.tree(&tb).await?.nodes);
                    let mut old: BTreeMap<Vec<u8>, Node> = la.into_iter().map(|n| (n.name.clone(), n)).collect();
                    for n in lb {
                        let path = join(&dir, &n.name);
                        match old.remove(&n.name) {
                            None => added.push(count(&added, &removed, &changed), api_entry(&entry(path, &n, 0))),
                            Some(o) => match (&o.kind, &n.kind) {
                                (NodeKind::Dir { tree: t1 }, NodeKind::Dir { tree: t2 }) => {
                                    if o.mode != n.mode {
                                        changed.push(
                                            count(&added, &removed, &changed),
                                            api_entry(&entry(path.clone(), &n, 0)),
                                        );
                                    }
                                    pairs.push((path, *t1, *t2));
                                }
                                _ if !same_contents(&o, &n) || o.mode != n.mode => {
                                    changed.push(count(&added, &removed, &changed), api_entry(&entry(path, &n, 0)))
                                }
                                _ => {}
                            },
                        }
                    }
                    for (name, o) in old {
                        removed.push(count(&added, &removed, &changed), api_entry(&entry(join(&dir, &name), &o, 0)));
                    }
                }
            }
            (None, None) => {
                let mut old: BTreeMap<&[u8], &Entry> = a.entries.iter().map(|e| (e.path.as_slice(), e)).collect();
                for e in &b.entries {
                    match old.remove(e.path.as_slice()) {
                        None => added.push(count(&added, &removed, &changed), api_entry(e)),
                        Some(o) => {
                            let differs = match (&o.kind, &e.kind) {
                                (EntryKind::File { size: s1, .. }, EntryKind::File { size: s2, .. }) => {
                                    s1 != s2 || (o.mtime_secs, o.mtime_nanos) != (e.mtime_secs, e.mtime_nanos)
                                }
                                (k1, k2) => std::mem::discriminant(k1) != std::mem::discriminant(k2) || k1 != k2,
                            };
                            if differs || o.mode != e.mode {
                                changed.push(count(&added, &removed, &changed), api_entry(e));
                            }
                        }
                    }
                }
                for e in old.into_values() {
                    removed.push(count(&added, &removed, &changed), api_entry(e));
                }
            }
            _ => bail!(
                "versions {from} and {to} of {name:?} are of different formats (one made before incremental backups)"
            ),
        }
        let more = added.more + removed.more + changed.more;
        Ok(VersionDiff {
            backup: name.into(),
            from,
            to,
            added: added.items,
            removed: removed.items,
            changed: changed.items,
            more,
        })
    }

    /// Every entry of every version of every backup whose name or whole path matches `pattern` (a glob).
    ///
    /// # Errors
    /// A bad pattern, or a tree that cannot be read.
    pub async fn find(self: &Arc<Self>, pattern: &str) -> Result<FindResult> {
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| anyhow!("bad pattern {pattern:?}: {e}"))?
            .compile_matcher();
        let matches = |path: &[u8]| {
            let p = String::from_utf8_lossy(path);
            let name = p.rsplit('/').next().unwrap_or(&p);
            glob.is_match(p.as_ref()) || glob.is_match(name)
        };
        let catalog = self.catalog()?;
        let mut found = Listing::new();
        let mut reader = None;
        // listings by tree id: a folder shared by many versions is read once
        let mut trees: HashMap<ChunkId, Arc<Vec<Node>>> = HashMap::new();
        for b in catalog.backups.iter().filter(|b| !crate::service::vault::is_vault_backup(&b.name)) {
            for v in &b.versions {
                let hit = |path: &[u8], e: Entry, found: &mut Listing<Found>| {
                    if !path.is_empty() && matches(path) {
                        let n = found.items.len();
                        found.push(n, Found { backup: b.name.clone(), version: v.number, entry: api_entry(&e) });
                    }
                };
                let Some(snap) = catalog.snapshot(v) else {
                    for e in &v.entries {
                        hit(&e.path, e.clone(), &mut found);
                    }
                    continue;
                };
                if reader.is_none() {
                    self.sync_chunk_index(&catalog).await?;
                    reader = Some(ChunkReader::new(self, &catalog));
                }
                let Some(reader) = reader.as_ref() else { continue };
                let mut stack: Vec<(Vec<u8>, ChunkRef)> = vec![(Vec::new(), snap.root)];
                while let Some((dir, tree)) = stack.pop() {
                    let nodes = match trees.get(&tree.id) {
                        Some(n) => n.clone(),
                        None => {
                            let n = Arc::new(reader.tree(&tree).await?.nodes);
                            trees.insert(tree.id, n.clone());
                            n
                        }
                    };
                    for n in nodes.iter() {
                        let path = join(&dir, &n.name);
                        hit(&path, entry(path.clone(), n, 0), &mut found);
                        if let NodeKind::Dir { tree } = &n.kind {
                            stack.push((path, *tree));
                        }
                    }
                }
            }
        }
        Ok(FindResult { pattern: pattern.into(), matches: found.items, more: found.more })
    }
}
