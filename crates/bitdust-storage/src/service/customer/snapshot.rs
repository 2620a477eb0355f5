//! Restoring and listing incremental versions (catalog format 2).
//!
//! A restore walks the version's trees from the root (or from `--path`) into the entry list a format-1 restore
//! writes from, and the chunks of its files in order; consecutive chunks of one pack make one *visit*; visits are
//! fetched `blocks_in_flight` at a time, in order, the chunks opened on a blocking thread and their bytes written
//! through [`crate::service::archive::TreeWriter`] (temp names, no path outside the target). Only the packs the
//! chosen path needs are fetched.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use bitdust_node::Progress;
use futures::stream::StreamExt;

use super::chunks::{BlockKey, ChunkReader, Located};
use super::RestoreReport;
use crate::proto::catalog::{Catalog, Entry, EntryKind, Snapshot};
use crate::proto::chunk::{self, ChunkRef};
use crate::proto::tree::{Node, NodeKind};
use crate::service::Storage;

/// A version's tree (or a part of it) as a restore writes it.
pub(crate) struct Flat {
    /// Entries in archive order (a folder before what is in it), paths relative to the restored root.
    pub entries: Vec<Entry>,
    /// The chunks of the files' contents, in the order of the entries.
    pub chunks: Vec<ChunkRef>,
    /// Bytes of file contents.
    pub total: u64,
}

/// Consecutive chunks of one block (`None`: chunks no pack set holds), each with its place.
type Visit = (Option<BlockKey>, Vec<(ChunkRef, Option<Located>)>);

/// The entry a tree node becomes at `path`.
pub(super) fn entry(path: Vec<u8>, node: &Node, offset: u64) -> Entry {
    let kind = match &node.kind {
        NodeKind::Dir { .. } => EntryKind::Dir,
        NodeKind::File { size, .. } => EntryKind::File { size: *size, offset },
        NodeKind::Symlink { target } => EntryKind::Symlink { target: target.clone() },
    };
    Entry { path, kind, mode: node.mode, mtime_secs: node.mtime.0, mtime_nanos: node.mtime.1 }
}

pub(super) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    [dir, b"/", name].concat()
}

/// The node at `path` (components joined by `/`) under the root, with the tree it is in.
async fn find(reader: &ChunkReader, snapshot: &Snapshot, path: &[u8]) -> Result<Option<Node>> {
    let mut tree = snapshot.root;
    let comps: Vec<&[u8]> = path.split(|b| *b == b'/').filter(|c| !c.is_empty()).collect();
    let mut found = None;
    for (i, c) in comps.iter().enumerate() {
        let listing = reader.tree(&tree).await?;
        let Some(node) = listing.nodes.into_iter().find(|n| n.name == *c) else { return Ok(None) };
        if i + 1 < comps.len() {
            match node.kind {
                NodeKind::Dir { tree: t } => tree = t,
                _ => return Ok(None),
            }
        }
        found = Some(node);
    }
    Ok(found)
}

impl Storage {
    /// Walks `snapshot` (of a backup of a single file if `single_file`) from `path` (empty: the whole version)
    /// into entries and chunks.
    ///
    /// # Errors
    /// If `path` is not in the version, or a tree cannot be read.
    pub(crate) async fn flatten(
        &self,
        reader: &ChunkReader,
        snapshot: &Snapshot,
        single_file: bool,
        path: &[u8],
    ) -> Result<Flat> {
        let mut flat = Flat { entries: Vec::new(), chunks: Vec::new(), total: 0 };
        let start = if path.is_empty() {
            None
        } else {
            Some(
                find(reader, snapshot, path)
                    .await?
                    .ok_or_else(|| anyhow!("{:?} is not in this version", String::from_utf8_lossy(path)))?,
            )
        };
        let root_tree = match &start {
            None if single_file => {
                let tree = reader.tree(&snapshot.root).await?;
                let node = tree.nodes.into_iter().next().ok_or_else(|| anyhow!("the version holds no file"))?;
                self.add_file(reader, &mut flat, node.name.clone(), &node).await?;
                return Ok(flat);
            }
            None => {
                flat.entries.push(Entry {
                    path: Vec::new(),
                    kind: EntryKind::Dir,
                    mode: snapshot.root_mode,
                    mtime_secs: snapshot.root_mtime.0,
                    mtime_nanos: snapshot.root_mtime.1,
                });
                snapshot.root
            }
            Some(node) => match &node.kind {
                NodeKind::Dir { tree } => {
                    flat.entries.push(entry(Vec::new(), node, 0));
                    *tree
                }
                NodeKind::File { .. } => {
                    self.add_file(reader, &mut flat, node.name.clone(), node).await?;
                    return Ok(flat);
                }
                NodeKind::Symlink { .. } => {
                    bail!("{:?} is a symbolic link, not a file or folder", String::from_utf8_lossy(path))
                }
            },
        };
        let mut stack: Vec<(Vec<u8>, VecDeque<Node>)> = vec![(Vec::new(), reader.tree(&root_tree).await?.nodes.into())];
        while let Some((dir, nodes)) = stack.last_mut() {
            let Some(node) = nodes.pop_front() else {
                stack.pop();
                continue;
            };
            let path = join(dir, &node.name);
            match &node.kind {
                NodeKind::Dir { tree } => {
                    flat.entries.push(entry(path.clone(), &node, 0));
                    let listing = reader.tree(tree).await?;
                    stack.push((path, listing.nodes.into()));
                }
                NodeKind::File { .. } => self.add_file(reader, &mut flat, path, &node).await?,
                NodeKind::Symlink { .. } => flat.entries.push(entry(path, &node, 0)),
            }
        }
        Ok(flat)
    }

    /// Checks that `path` is in version `version` (default the latest) of `backup`, before a restore of it is
    /// started.
    ///
    /// # Errors
    /// If the version is not incremental, `path` is not in it, or its trees cannot be read.
    pub(crate) async fn check_restore_path(
        self: &Arc<Self>,
        catalog: &Catalog,
        backup: &crate::proto::catalog::Backup,
        version: Option<u32>,
        path: &str,
    ) -> Result<()> {
        let v = match version {
            Some(n) => backup.versions.iter().find(|v| v.number == n),
            None => backup.versions.last(),
        }
        .ok_or_else(|| anyhow!("backup {:?} has no such version", backup.name))?;
        let snapshot = catalog.snapshot(v).ok_or_else(|| {
            anyhow!("version {} of {:?} was made before incremental backups: it restores whole", v.number, backup.name)
        })?;
        self.sync_chunk_index(catalog).await?;
        let reader = ChunkReader::new(self, catalog);
        self.flatten_check(&reader, snapshot, path.trim_matches('/').as_bytes()).await
    }

    /// The node at `path` (components joined by `/`) in `snapshot`, or `None` if it is not in it.
    ///
    /// # Errors
    /// If a tree cannot be read.
    pub(crate) async fn snapshot_node(
        &self,
        reader: &ChunkReader,
        snapshot: &Snapshot,
        path: &[u8],
    ) -> Result<Option<Node>> {
        find(reader, snapshot, path).await
    }

    /// Checks that `path` is in `snapshot`.
    ///
    /// # Errors
    /// If it is not, or a tree cannot be read.
    pub(crate) async fn flatten_check(&self, reader: &ChunkReader, snapshot: &Snapshot, path: &[u8]) -> Result<()> {
        match find(reader, snapshot, path).await? {
            Some(_) => Ok(()),
            None => bail!("{:?} is not in this version", String::from_utf8_lossy(path)),
        }
    }

    async fn add_file(&self, reader: &ChunkReader, flat: &mut Flat, path: Vec<u8>, node: &Node) -> Result<()> {
        let NodeKind::File { size, chunks, more, .. } = &node.kind else { return Ok(()) };
        let list = reader.file_chunks(*size, chunks, *more).await?;
        flat.entries.push(entry(path, node, flat.total));
        flat.chunks.extend(list);
        flat.total += size;
        Ok(())
    }

    /// One folder of an incremental version: its entries (paths from the version's root), or `None` if `dir` is
    /// not a folder in it.
    ///
    /// # Errors
    /// If a tree cannot be read.
    pub(crate) async fn list_snapshot_dir(
        self: &Arc<Self>,
        catalog: &Catalog,
        snapshot: &Snapshot,
        dir: &[u8],
    ) -> Result<Option<Vec<Entry>>> {
        self.sync_chunk_index(catalog).await?;
        let reader = ChunkReader::new(self, catalog);
        let tree = if dir.is_empty() {
            snapshot.root
        } else {
            match find(&reader, snapshot, dir).await?.map(|n| n.kind) {
                Some(NodeKind::Dir { tree }) => tree,
                _ => return Ok(None),
            }
        };
        let listing = reader.tree(&tree).await?;
        Ok(Some(listing.nodes.iter().map(|n| entry(join(dir, &n.name), n, 0)).collect()))
    }

    /// Restores version `number` (of backup `name`, for the report) whose snapshot is `snapshot` (of a backup of a
    /// single file if `single_file`) through `reader` (only `path` under it if not empty) into `target` (prepared).
    ///
    /// # Errors
    /// If `path` is not in the version, a tree cannot be read, or chunks are lost (the files they belong to are
    /// named).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn restore_snapshot(
        self: &Arc<Self>,
        reader: Arc<ChunkReader>,
        name: &str,
        number: u32,
        snapshot: &Snapshot,
        single_file: bool,
        path: &[u8],
        target: &Path,
        progress: Progress,
    ) -> Result<RestoreReport> {
        let started = Instant::now();
        let flat = self.flatten(&reader, snapshot, single_file, path).await?;
        progress.set_total(flat.total);

        // consecutive chunks of one block make one visit; a chunk no pack set holds is lost
        let mut visits: Vec<Visit> = Vec::new();
        for c in &flat.chunks {
            let at = reader.locate(&c.id)?;
            let key = at.map(|l| (l.set, l.block));
            match visits.last_mut() {
                Some((k, parts)) if *k == key && key.is_some() => parts.push((*c, at)),
                _ => visits.push((key, vec![(*c, at)])),
            }
        }

        let limit = self.config.customer.blocks_in_flight.max(1);
        let fetches = futures::stream::iter(visits.into_iter().map(|(key, parts)| {
            let reader = reader.clone();
            async move {
                let len: u64 = parts.iter().map(|(c, _)| u64::from(c.len)).sum();
                let r = async {
                    let Some((set, block)) = key else {
                        bail!("{} chunks are in no pack set of the catalog", parts.len());
                    };
                    let bytes = reader.block(&set, &block).await?;
                    tokio::task::spawn_blocking(move || -> Result<Vec<u8>> {
                        let mut out = Vec::with_capacity(len as usize);
                        for (c, at) in &parts {
                            let at = at.ok_or_else(|| anyhow!("a chunk with no place"))?;
                            let e = crate::proto::pack::IndexEntry {
                                chunk: c.id,
                                block: [0; 32],
                                offset: at.offset,
                                len: at.len,
                            };
                            let sealed = crate::proto::pack::slice(&bytes, &e).map_err(|e| anyhow!(e))?;
                            out.extend(chunk::open(c, sealed)?);
                        }
                        Ok(out)
                    })
                    .await?
                }
                .await;
                (len, r)
            }
        }))
        .buffered(limit);
        let written = super::restore::write_tree(target, flat.entries, fetches, &progress).await?;
        let (files, bytes, lost, first_error) = (written.files, written.bytes, written.lost, written.first_error);
        let report = RestoreReport {
            name: name.to_string(),
            version: number,
            target: target.display().to_string(),
            files,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            fragments_failed: reader.failed_fragments(),
            lost_files: lost,
        };
        if !report.lost_files.is_empty() {
            bail!(
                "restored {} files, but {} could not be restored: {} (the first error: {})",
                report.files,
                report.lost_files.len(),
                report.lost_files.join(", "),
                first_error.unwrap_or_default()
            );
        }
        Ok(report)
    }
}
