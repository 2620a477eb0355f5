//! prune (catalog format 2): deletes from the suppliers every pack no kept incremental version uses (restic's
//! prune, mark and sweep).
//!
//! Mark: every tree of every snapshot in the catalog is walked (a tree seen once is not walked again: unchanged
//! folders are shared between versions), collecting the ids of the tree parts, chunk lists and file chunks they
//! use. Sweep: the chunk index gives each block's chunks; a block none of whose chunks is used goes, except one
//! holding an index object of a pack set that keeps other blocks (the set's index must stay readable); a set left
//! with nothing else goes whole. The new catalog is stored first, then the fragments are deleted (a crash between
//! leaves fragments no catalog refers to, freed when their contracts end). Any read that fails stops prune before
//! it changes anything: nothing is deleted on a guess. It holds the customer lock: a backup waits for it, and it
//! for a backup.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
pub use bitdust_api::PruneReport;
use bitdust_core::PeerId;

use super::chunks::{BlockKey, ChunkReader, Located, CHUNK_INDEX, INDEXED_SETS};
use crate::proto::chunk::{ChunkId, ChunkRef};
use crate::proto::pipeline::VersionKeys;
use crate::proto::tree::{ChunkList, NodeKind, Tree};
use crate::service::Storage;

/// Rows of the chunk index read per page.
const PAGE: usize = 10_000;

/// What one block holds, from the chunk index.
#[derive(Default)]
struct BlockUse {
    /// Sealed bytes of its chunks.
    total: u64,
    /// Sealed bytes of the chunks a kept version uses.
    used: u64,
    /// Whether it holds an index object of its set.
    index: bool,
    /// Its chunks.
    rows: Vec<ChunkId>,
}

impl Storage {
    /// Deletes from the suppliers every block no kept incremental version uses (see the module's notes).
    ///
    /// # Errors
    /// If a tree or the index cannot be read (nothing is changed then), the database fails, or no supplier takes
    /// the new catalog.
    pub async fn prune(self: &Arc<Self>, dry_run: bool) -> Result<PruneReport> {
        let started = Instant::now();
        let _g = self.customer_lock.lock().await;
        let mut catalog = self.catalog()?;
        self.sync_chunk_index(&catalog).await.context("the chunk index could not be read")?;
        let reader = ChunkReader::new(self, &catalog);

        // mark
        let mut used: HashSet<ChunkId> = HashSet::new();
        let mut walked: HashSet<ChunkId> = HashSet::new();
        for snap in &catalog.snapshots {
            let mut trees: Vec<ChunkRef> = vec![snap.root];
            while let Some(first) = trees.pop() {
                if !walked.insert(first.id) {
                    continue;
                }
                let mut part = Some(first);
                while let Some(p) = part {
                    used.insert(p.id);
                    let tree = Tree::decode(&reader.read(&p).await.context("reading a tree")?)?;
                    for node in &tree.nodes {
                        match &node.kind {
                            NodeKind::Dir { tree } => trees.push(*tree),
                            NodeKind::File { chunks, more, .. } => {
                                used.extend(chunks.iter().map(|c| c.id));
                                let mut next = *more;
                                while let Some(l) = next {
                                    if !used.insert(l.id) {
                                        break;
                                    }
                                    let list =
                                        ChunkList::decode(&reader.read(&l).await.context("reading a chunk list")?)?;
                                    used.extend(list.chunks.iter().map(|c| c.id));
                                    next = list.more;
                                }
                            }
                            NodeKind::Symlink { .. } => {}
                        }
                    }
                    part = tree.next;
                }
            }
        }

        // sweep: each block's chunks from the index
        let sets: HashSet<[u8; 16]> = catalog.packs.iter().map(|s| s.id).collect();
        let index_objects: HashSet<ChunkId> =
            catalog.packs.iter().flat_map(|s| s.index.iter().map(|r| r.chunk.id)).collect();
        let mut blocks: HashMap<BlockKey, BlockUse> = HashMap::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.node.db().records::<Located>(CHUNK_INDEX, after.as_deref(), PAGE)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (key, l) in page {
                let Ok(id) = <ChunkId>::try_from(key.as_slice()) else { continue };
                if !sets.contains(&l.set) {
                    continue;
                }
                let b = blocks.entry((l.set, l.block)).or_default();
                b.total += u64::from(l.len);
                if used.contains(&id) {
                    b.used += u64::from(l.len);
                }
                b.index |= index_objects.contains(&id);
                b.rows.push(id);
            }
        }
        let mut gone: Vec<([u8; 16], [u8; 32])> = Vec::new();
        let mut unused_kept = 0u64;
        for set in &catalog.packs {
            let info = |b: &[u8; 32]| blocks.get(&(set.id, *b));
            // a block with no rows is kept: nothing is deleted that cannot be accounted for
            let dead = |b: &[u8; 32]| info(b).is_some_and(|u| u.used == 0 && !u.index);
            // the set's index objects stay while it keeps a block with a used chunk (or one not accounted for)
            let keeps_data = set.blocks.iter().any(|b| info(&b.block_id).is_none_or(|u| u.used > 0));
            for b in &set.blocks {
                if !keeps_data || dead(&b.block_id) {
                    gone.push((set.id, b.block_id));
                } else if let Some(u) = info(&b.block_id) {
                    unused_kept += u.total - u.used;
                }
            }
        }
        let gone_set: HashSet<([u8; 16], [u8; 32])> = gone.iter().copied().collect();
        let mut freed = 0u64;
        let mut kept = 0usize;
        for set in &catalog.packs {
            for b in &set.blocks {
                if gone_set.contains(&(set.id, b.block_id)) {
                    freed +=
                        (u64::from(b.shard_len) + crate::proto::fragment::HEADER_LEN as u64) * u64::from(set.layout.n);
                } else {
                    kept += 1;
                }
            }
        }
        let mut report = PruneReport {
            versions: catalog.snapshots.len(),
            used_chunks: used.len() as u64,
            blocks_deleted: gone.len(),
            blocks_kept: kept,
            freed_bytes: freed,
            unused_bytes_kept: unused_kept,
            fragments_deleted: 0,
            seconds: 0.0,
            dry_run,
        };
        if dry_run || gone.is_empty() {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }

        // the catalog without them first, then the fragments
        let before = catalog.packs.clone();
        for set in &mut catalog.packs {
            set.blocks.retain(|b| !gone_set.contains(&(set.id, b.block_id)));
        }
        let emptied: Vec<[u8; 16]> = catalog.packs.iter().filter(|s| s.blocks.is_empty()).map(|s| s.id).collect();
        catalog.packs.retain(|s| !s.blocks.is_empty());
        catalog.revision += 1;
        let rows: Vec<ChunkId> =
            gone.iter().filter_map(|k| blocks.get(k)).flat_map(|u| u.rows.iter().copied()).collect();
        self.node.db().write(|tx| {
            tx.put_value(super::CATALOG_KEY, &catalog)?;
            let mut t = tx.table(CHUNK_INDEX)?;
            for id in &rows {
                t.remove(id)?;
            }
            let mut s = tx.table(INDEXED_SETS)?;
            for id in &emptied {
                s.remove(id)?;
            }
            Ok(())
        })?;
        let peers: Vec<PeerId> = self.suppliers()?.iter().filter_map(|s| s.peer().ok()).collect();
        self.push_catalog(&catalog, &peers).await?;
        for set in &before {
            let ids: Vec<[u8; 32]> =
                set.blocks.iter().map(|b| b.block_id).filter(|b| gone_set.contains(&(set.id, *b))).collect();
            if ids.is_empty() {
                continue;
            }
            let by_position: Vec<Vec<PeerId>> = (0..set.layout.n).map(|p| self.peers_for(&set.suppliers, p)).collect();
            let vkeys = VersionKeys::derive(self.node.keys().master(), set.id);
            report.fragments_deleted += self.delete_fragments_of(&by_position, &vkeys, &ids).await;
        }
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(deleted = report.blocks_deleted, freed = report.freed_bytes, "pruned");
        Ok(report)
    }
}
