//! prune (catalog format 2): deletes from the suppliers every pack no kept incremental version uses (restic's
//! prune, mark and sweep).
//!
//! Mark: every tree of every snapshot in the catalog is walked (a tree seen once is not walked again: unchanged
//! folders are shared between versions), collecting the ids of the tree parts, chunk lists and file chunks they
//! use. Sweep: the chunk index gives each block's chunks; a block none of whose chunks is used goes, except one
//! holding an index object of a pack set that keeps other blocks (the set's index must stay readable); a set left
//! with nothing else goes whole. A block a live share of an incremental version was granted is not repacked (the
//! grantee's manifest says where its chunks are) until the share is revoked or expires. The new catalog is stored first, then the fragments are deleted (a crash between
//! leaves fragments no catalog refers to, freed when their contracts end). Any read that fails stops prune before
//! it changes anything: nothing is deleted on a guess. It holds the customer lock (a backup waits for it, and it
//! for a backup) and the packs lock (it waits for the restores and checks running, and they for it).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
pub use bitdust_api::PruneReport;
use bitdust_core::PeerId;

use super::chunks::{BlockKey, ChunkReader, IndexObject, Located, CHUNK_INDEX, INDEXED_SETS};
use crate::proto::catalog::{IndexRef, PackSet};
use crate::proto::chunk::{self, ChunkId, ChunkKeys, ChunkRef};
use crate::proto::pack::{self, IndexEntry, Pack, PackWriter};
use crate::proto::pipeline::{PackCoder, VersionKeys, BLOCK_SIZE};
use crate::service::Storage;

/// Rows of the chunk index read per page.
const PAGE: usize = 10_000;

/// Repack a kept block when more than this share of its sealed bytes is unused (restic's default `--max-unused`).
const REPACK_UNUSED: f64 = 0.05;

/// What one block holds, from the chunk index.
#[derive(Default)]
struct BlockUse {
    /// Sealed bytes of its chunks.
    total: u64,
    /// Sealed bytes of the chunks a kept version uses.
    used: u64,
    /// Whether it holds an index object of its set.
    index: bool,
    /// Its chunks and where each is.
    rows: Vec<(ChunkId, Located)>,
    /// The used ones.
    used_ids: Vec<ChunkId>,
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
        let _packs = self.packs_lock.write().await;
        let mut catalog = self.catalog()?;
        self.sync_chunk_index(&catalog).await.context("the chunk index could not be read")?;
        let reader = ChunkReader::new(self, &catalog);

        // mark
        let used = reader.used_chunks(&catalog.snapshots).await?.ids;

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
                    b.used_ids.push(id);
                }
                b.index |= index_objects.contains(&id);
                b.rows.push((id, l));
            }
        }
        // blocks to delete (no used chunk) and to repack (kept, but more than REPACK_UNUSED of them unused, and not
        // pinned by a live share: its grantee's manifest says where its chunks are)
        let pinned = crate::service::share::pinned_blocks(self)?;
        let mut gone: Vec<BlockKey> = Vec::new();
        let mut repack: Vec<BlockKey> = Vec::new();
        let mut unused_kept = 0u64;
        for set in &catalog.packs {
            let info = |b: &[u8; 32]| blocks.get(&(set.id, *b));
            // a block with no rows is kept: nothing is deleted that cannot be accounted for
            let dead = |b: &[u8; 32]| info(b).is_some_and(|u| u.used == 0 && !u.index);
            let to_repack = |b: &[u8; 32]| {
                !pinned.contains(&(set.id, *b))
                    && info(b).is_some_and(|u| {
                        !u.index && u.used > 0 && (u.total - u.used) as f64 > u.total as f64 * REPACK_UNUSED
                    })
            };
            // the set's index objects stay while it keeps, unmoved, a block with a used chunk (or one not accounted
            // for)
            let keeps_data =
                set.blocks.iter().any(|b| info(&b.block_id).is_none_or(|u| u.used > 0) && !to_repack(&b.block_id));
            for b in &set.blocks {
                if to_repack(&b.block_id) {
                    repack.push((set.id, b.block_id));
                } else if !keeps_data || dead(&b.block_id) {
                    gone.push((set.id, b.block_id));
                } else if let Some(u) = info(&b.block_id) {
                    unused_kept += u.total - u.used;
                }
            }
        }
        let stored = |set: &crate::proto::catalog::PackSet, b: &crate::proto::pipeline::BlockMeta| {
            (u64::from(b.shard_len) + crate::proto::fragment::HEADER_LEN as u64) * u64::from(set.layout.n)
        };
        let removed: HashSet<BlockKey> = gone.iter().chain(&repack).copied().collect();
        let mut freed = 0u64;
        let mut kept = 0usize;
        for set in &catalog.packs {
            for b in &set.blocks {
                if removed.contains(&(set.id, b.block_id)) {
                    freed += stored(set, b);
                } else {
                    kept += 1;
                }
            }
        }
        let moved_bytes: u64 = repack.iter().filter_map(|k| blocks.get(k)).map(|u| u.used).sum();
        let mut report = PruneReport {
            versions: catalog.snapshots.len(),
            used_chunks: used.len() as u64,
            blocks_deleted: gone.len(),
            blocks_repacked: repack.len(),
            repacked_bytes: moved_bytes,
            blocks_kept: kept,
            freed_bytes: freed,
            unused_bytes_kept: unused_kept,
            fragments_deleted: 0,
            seconds: 0.0,
            dry_run,
        };
        if dry_run || removed.is_empty() {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }

        // the used chunks of the blocks to repack move, sealed as they are, into a new pack set
        let new_set = if repack.is_empty() {
            None
        } else {
            let set = self.repack(&reader, &repack, &blocks).await.context("repacking")?;
            report.freed_bytes =
                report.freed_bytes.saturating_sub(set.0.blocks.iter().map(|b| stored(&set.0, b)).sum());
            Some(set)
        };

        // the catalog without them first, then the fragments
        let before = catalog.packs.clone();
        for set in &mut catalog.packs {
            set.blocks.retain(|b| !removed.contains(&(set.id, b.block_id)));
        }
        let emptied: Vec<[u8; 16]> = catalog.packs.iter().filter(|s| s.blocks.is_empty()).map(|s| s.id).collect();
        catalog.packs.retain(|s| !s.blocks.is_empty());
        let mut moved_rows = Vec::new();
        if let Some((set, rows)) = new_set {
            catalog.packs.push(set);
            moved_rows = rows;
        }
        catalog.revision += 1;
        let rows: Vec<ChunkId> =
            removed.iter().filter_map(|k| blocks.get(k)).flat_map(|u| u.rows.iter().map(|(id, _)| *id)).collect();
        let new_id = catalog.packs.last().map(|s| s.id).filter(|_| !moved_rows.is_empty());
        self.node.db().write(|tx| {
            tx.put_value(super::CATALOG_KEY, &catalog)?;
            let mut t = tx.table(CHUNK_INDEX)?;
            for id in &rows {
                t.remove(id)?;
            }
            for (id, l) in &moved_rows {
                t.put(id, l)?;
            }
            let mut s = tx.table(INDEXED_SETS)?;
            for id in &emptied {
                s.remove(id)?;
            }
            if let Some(id) = new_id {
                s.put(&id, &super::chunks::Indexed)?;
            }
            Ok(())
        })?;
        let peers: Vec<PeerId> = self.suppliers()?.iter().filter_map(|s| s.peer().ok()).collect();
        self.push_catalog(&catalog, &peers).await?;
        for set in &before {
            let ids: Vec<[u8; 32]> =
                set.blocks.iter().map(|b| b.block_id).filter(|b| removed.contains(&(set.id, *b))).collect();
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

    /// Moves the used chunks of `keys` (sealed as they are: no key is needed) into new packs on the current
    /// suppliers, with an index object; returns the new pack set and the chunk index rows of the moved chunks.
    /// What it stored is deleted again if it fails.
    async fn repack(
        self: &Arc<Self>,
        reader: &ChunkReader,
        keys: &[BlockKey],
        blocks: &HashMap<BlockKey, BlockUse>,
    ) -> Result<(PackSet, Vec<(ChunkId, Located)>)> {
        let slots = self.ensure_suppliers_locked().await?;
        let layout = self.config.customer.layout(slots.len() as u16)?;
        let peers: Vec<PeerId> = slots.iter().map(super::SupplierSlot::peer).collect::<Result<_>>()?;
        let set_id: [u8; 16] = rand::random();
        let vkeys = VersionKeys::derive(self.node.keys().master(), set_id);
        let mut job = Repack {
            storage: self.clone(),
            peers: peers.clone(),
            vkeys: vkeys.clone(),
            coder: PackCoder::new(layout),
            metas: Vec::new(),
            entries: Vec::new(),
            sent: Vec::new(),
        };
        let mut writer = PackWriter::new(BLOCK_SIZE);
        let result: Result<ChunkRef> = async {
            for key in keys {
                let Some(u) = blocks.get(key) else { continue };
                let bytes = reader.block(&key.0, &key.1).await?;
                let used: HashSet<&ChunkId> = u.used_ids.iter().collect();
                for (id, l) in u.rows.iter().filter(|(id, _)| used.contains(id)) {
                    let e = IndexEntry { chunk: *id, block: l.block, offset: l.offset, len: l.len };
                    let sealed = pack::slice(&bytes, &e).map_err(|e| anyhow!(e))?;
                    if let Some(p) = writer.push_sealed(*id, sealed) {
                        job.upload(p).await?;
                    }
                }
            }
            let mut all = job.entries.clone();
            all.extend_from_slice(writer.open_entries());
            let object = postcard::to_allocvec(&IndexObject { format: 1, entries: all })?;
            let keys = ChunkKeys::derive(self.node.keys().master());
            let sealed = keys.seal(&object, &mut chunk::compressor()?);
            if let Some(p) = writer.push(&sealed) {
                job.upload(p).await?;
            }
            if let Some(p) = writer.finish() {
                job.upload(p).await?;
            }
            Ok(sealed.chunk)
        }
        .await;
        let index = match result {
            Ok(r) => r,
            Err(e) => {
                let by_position: Vec<Vec<PeerId>> = peers.iter().map(|p| vec![*p]).collect();
                self.delete_fragments_of(&by_position, &vkeys, &job.sent).await;
                return Err(e);
            }
        };
        let at = job
            .entries
            .iter()
            .find(|e| e.chunk == index.id)
            .copied()
            .ok_or_else(|| anyhow!("the index object was not stored"))?;
        let mut metas = job.metas;
        metas.sort_by_key(|m| m.index);
        let set = PackSet {
            id: set_id,
            created_unix: bitdust_node::home::unix_now(),
            layout,
            suppliers: peers.iter().map(|p| p.to_bytes()).collect(),
            blocks: metas,
            index: vec![IndexRef { chunk: index, at }],
        };
        let places = super::chunks::block_places(&set);
        let rows =
            job.entries.iter().filter_map(|e| super::chunks::located(&set, &places, e).map(|l| (e.chunk, l))).collect();
        Ok((set, rows))
    }
}

/// A repack's uploads.
struct Repack {
    storage: Arc<Storage>,
    peers: Vec<PeerId>,
    vkeys: VersionKeys,
    coder: PackCoder,
    metas: Vec<crate::proto::pipeline::BlockMeta>,
    entries: Vec<IndexEntry>,
    sent: Vec<[u8; 32]>,
}

impl Repack {
    async fn upload(&mut self, p: Pack) -> Result<()> {
        let block = self.coder.encode(self.metas.len() as u64, p.block_id, &p.bytes)?;
        self.sent.push(p.block_id);
        self.entries.extend(p.entries);
        let meta =
            super::backup::upload_block(self.storage.clone(), self.peers.clone(), self.vkeys.clone(), block, None)
                .await?;
        self.metas.push(meta);
        Ok(())
    }
}
