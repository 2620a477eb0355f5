//! Backup: a path to blocks to fragments on every supplier, then a new catalog revision on all of them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::PeerId;
use bitdust_node::home::unix_now;
use bitdust_node::Progress;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::{BackupReport, SupplierSlot};
use crate::proto::catalog::{Backup, Catalog, SealedCatalog, Version};
use crate::proto::pipeline::{BlockEncoder, BlockMeta, EncodedBlock, VersionKeys, BLOCK_SIZE};
use crate::proto::wire::{Request, Response};
use crate::service::archive::{self, StreamReader};
use crate::service::Storage;

/// Attempts per fragment upload before the backup fails.
const UPLOAD_ATTEMPTS: usize = 7;
/// Pause before the second attempt to store a fragment; doubled before each later one (1 + 2 + ... + 32 = 63 s
/// in all: time for a supplier that moved to another relay to publish its new address, about 10-40 s in the lab).
const UPLOAD_BACKOFF: Duration = Duration::from_secs(1);

impl Storage {
    /// Backs up `source` (a folder or a file) as a new version.
    ///
    /// # Errors
    /// If the path is unreadable, too few suppliers are online, or an upload fails.
    pub async fn backup(self: &Arc<Self>, source: &Path, progress: Progress) -> Result<BackupReport> {
        self.backup_with(source, &archive::Excludes::default(), progress).await
    }

    /// Backs up `source` as a new version, leaving out what `excludes` says (and what `.bitdustignore` files say).
    ///
    /// # Errors
    /// As [`Storage::backup`]; a bad pattern.
    pub async fn backup_with(
        self: &Arc<Self>,
        source: &Path,
        excludes: &archive::Excludes,
        progress: Progress,
    ) -> Result<BackupReport> {
        if self.config.customer.incremental {
            return self.backup_incremental(source, excludes, progress).await;
        }
        self.backup_as(source, None, excludes, progress).await
    }

    /// Backs up `source` as a new version of backup `as_named` (name, source recorded in the catalog) if given,
    /// otherwise of the backup of that path (a new name from its file name if it has none).
    pub(crate) async fn backup_as(
        self: &Arc<Self>,
        source: &Path,
        as_named: Option<(String, Vec<u8>)>,
        excludes: &archive::Excludes,
        progress: Progress,
    ) -> Result<BackupReport> {
        let started = Instant::now();
        let _g = self.customer_lock.lock().await;
        let Prepared { source, scan, layout, peers } = self.prepare_backup(source, excludes, &progress).await?;
        let version_id: [u8; 16] = rand::random();
        let vkeys = VersionKeys::derive(self.node.keys().master(), version_id);

        // Encoder on a blocking thread, feeding a bounded queue.
        let (tx, rx) = mpsc::channel::<Result<EncodedBlock>>(2);
        let encoder_keys = vkeys.clone();
        let src = source.clone();
        let entries_for_reader = archive::Scan {
            entries: scan.entries.clone(),
            total_bytes: scan.total_bytes,
            skipped: vec![],
            excluded: 0,
        };
        let encoder = tokio::task::spawn_blocking(move || -> Vec<String> {
            let mut reader = StreamReader::new(&src, &entries_for_reader);
            let mut enc = match BlockEncoder::new(layout, encoder_keys) {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e.into()));
                    return vec![];
                }
            };
            let mut buf = Vec::with_capacity(BLOCK_SIZE);
            let mut index = 0u64;
            loop {
                if let Err(e) = reader.next_block(&mut buf, BLOCK_SIZE) {
                    let _ = tx.blocking_send(Err(e.into()));
                    break;
                }
                if buf.is_empty() {
                    break;
                }
                let r = enc.encode(index, &buf).map_err(anyhow::Error::from);
                if tx.blocking_send(r).is_err() {
                    break;
                }
                index += 1;
            }
            reader.changed
        });

        let Uploaded { metas, sent, failure } = self.upload_all(rx, &peers, &vkeys, Some(&progress)).await;
        let changed = encoder.await.unwrap_or_default();
        if let Some(e) = failure {
            self.delete_fragments(&peers, &vkeys, &sent).await;
            return Err(e.context("backup failed; the catalog is unchanged and what it stored is deleted"));
        }

        let mut catalog = self.catalog()?;
        let base = name_base(&source);
        let (name, src_bytes) = match as_named {
            Some(named) => named,
            None => {
                let src_bytes = source.as_os_str().as_encoded_bytes().to_vec();
                (catalog.name_for(&src_bytes, &base), src_bytes)
            }
        };
        let single_file =
            scan.entries.first().is_some_and(|e| matches!(e.kind, crate::proto::catalog::EntryKind::File { .. }));
        let version = Version {
            number: catalog.backup(&name).and_then(|b| b.versions.last()).map(|v| v.number + 1).unwrap_or(1),
            id: version_id,
            created_unix: unix_now(),
            layout,
            suppliers: peers.iter().map(|p| p.to_bytes()).collect(),
            total_bytes: scan.total_bytes,
            entries: scan.entries,
            blocks: metas,
        };
        let report = BackupReport {
            name: name.clone(),
            version: version.number,
            files: version.file_count(),
            folders: version.entries.iter().filter(|e| matches!(e.kind, crate::proto::catalog::EntryKind::Dir)).count(),
            symlinks: version
                .entries
                .iter()
                .filter(|e| matches!(e.kind, crate::proto::catalog::EntryKind::Symlink { .. }))
                .count(),
            bytes: version.total_bytes,
            stored_bytes: version.stored_bytes(),
            blocks: version.blocks.len(),
            layout: layout.to_string(),
            seconds: 0.0,
            skipped: scan.skipped,
            changed,
            excluded: scan.excluded,
            new_bytes: scan.total_bytes,
            unchanged_files: 0,
        };
        match catalog.backups.iter_mut().find(|b| b.name == name) {
            Some(b) => b.versions.push(version),
            None => catalog.backups.push(Backup { name, source: src_bytes, single_file, versions: vec![version] }),
        }
        catalog.revision += 1;
        self.save_catalog(&catalog)?;
        self.push_catalog(&catalog, &peers).await?;
        Ok(BackupReport { seconds: started.elapsed().as_secs_f64(), ..report })
    }

    /// What every backup does first, under the customer lock: the path made absolute, scanned with `excludes`
    /// (its size set as `progress`'s total), and the suppliers hired (or found) with their layout.
    ///
    /// # Errors
    /// A path that cannot be read or a bad pattern; too few suppliers.
    pub(super) async fn prepare_backup(
        &self,
        source: &Path,
        excludes: &archive::Excludes,
        progress: &Progress,
    ) -> Result<Prepared> {
        let source = std::fs::canonicalize(source).with_context(|| format!("cannot back up {}", source.display()))?;
        let scan = {
            let s = source.clone();
            let excludes = excludes.clone();
            tokio::task::spawn_blocking(move || archive::scan_with(&s, &excludes)).await??
        };
        progress.set_total(scan.total_bytes);
        let slots = self.ensure_suppliers_locked().await?;
        let layout = self.config.customer.layout(slots.len() as u16)?;
        let peers: Vec<PeerId> = slots.iter().map(SupplierSlot::peer).collect::<Result<_>>()?;
        Ok(Prepared { source, scan, layout, peers })
    }

    /// Uploads the blocks `rx` yields to `peers` (position by position), `blocks_in_flight` at once, counting each
    /// block's plaintext into `progress` if given. Stops taking blocks at the first failure (its producer then
    /// finds the queue closed); returns what was stored and the failure, for the caller to delete or record.
    pub(super) async fn upload_all(
        self: &Arc<Self>,
        mut rx: mpsc::Receiver<Result<EncodedBlock>>,
        peers: &[PeerId],
        vkeys: &VersionKeys,
        progress: Option<&Progress>,
    ) -> Uploaded {
        let mut done = Uploaded { metas: Vec::new(), sent: Vec::new(), failure: None };
        let mut uploads = FuturesUnordered::new();
        let limit = self.config.customer.blocks_in_flight.max(1);
        while let Some(block) = rx.recv().await {
            let block = match block {
                Ok(b) => b,
                Err(e) => {
                    done.failure = Some(e);
                    break;
                }
            };
            while uploads.len() >= limit {
                match uploads.next().await {
                    Some(Ok(meta)) => done.metas.push(meta),
                    Some(Err(e)) => {
                        done.failure = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            if done.failure.is_some() {
                break;
            }
            done.sent.push(block.meta.block_id);
            uploads.push(upload_block(self.clone(), peers.to_vec(), vkeys.clone(), block, progress.cloned()));
        }
        drop(rx);
        while let Some(r) = uploads.next().await {
            match r {
                Ok(meta) => done.metas.push(meta),
                Err(e) => done.failure = done.failure.or(Some(e)),
            }
        }
        done.metas.sort_by_key(|m| m.index);
        done
    }

    /// Deletes the fragments of `blocks` from the suppliers (a failed backup's: no catalog refers to them, and they
    /// would count against our needed space for nothing). Best effort, a few at a time, each given 10 s; what is
    /// left is freed when the contract ends.
    pub(super) async fn delete_fragments(&self, peers: &[PeerId], vkeys: &VersionKeys, blocks: &[[u8; 32]]) {
        let by_position: Vec<Vec<PeerId>> = peers.iter().map(|p| vec![*p]).collect();
        let deleted = self.delete_fragments_of(&by_position, vkeys, blocks).await;
        tracing::info!(deleted, "fragments of the failed backup deleted");
    }

    /// Deletes the fragments of `blocks` from `peers` (per position, each peer that may hold it); returns how many
    /// were deleted. Best effort, 16 at a time, each given 10 s; what is left is freed when the contract ends.
    pub(crate) async fn delete_fragments_of(
        &self,
        peers: &[Vec<PeerId>],
        vkeys: &VersionKeys,
        blocks: &[[u8; 32]],
    ) -> usize {
        let work: Vec<(PeerId, [u8; 32])> = blocks
            .iter()
            .flat_map(|block| {
                peers.iter().enumerate().flat_map(move |(position, peers)| {
                    peers.iter().map(move |peer| (*peer, vkeys.fragment_id(block, position as u16)))
                })
            })
            .collect();
        let mut results = Vec::with_capacity(work.len());
        for chunk in work.chunks(16) {
            let mut asked = FuturesUnordered::new();
            for (peer, id) in chunk.iter().copied() {
                asked.push(tokio::time::timeout(
                    Duration::from_secs(10),
                    self.request(peer, Request::DeleteFragment { id }),
                ));
            }
            while let Some(answer) = asked.next().await {
                results.push(matches!(answer, Ok(Ok(Response::Deleted))));
            }
        }
        results.iter().filter(|d| **d).count()
    }

    /// Stores the sealed catalog on every supplier; succeeds if at least one took it.
    pub(crate) async fn push_catalog(&self, catalog: &Catalog, peers: &[PeerId]) -> Result<()> {
        let sealed = SealedCatalog::seal(self.node.keys(), catalog).encode();
        let mut ok = 0;
        let mut errors = Vec::new();
        let results =
            futures::future::join_all(peers.iter().map(|p| self.request(*p, Request::PutCatalog(sealed.clone()))))
                .await;
        for (p, r) in peers.iter().zip(results) {
            match r {
                Ok(Response::Stored) => ok += 1,
                Ok(other) => errors.push(format!("{p}: {other:?}")),
                Err(e) => errors.push(format!("{p}: {e}")),
            }
        }
        if ok == 0 {
            bail!("no supplier stored the catalog: {}", errors.join("; "));
        }
        if !errors.is_empty() {
            tracing::warn!(stored = ok, errors = %errors.join("; "), "catalog not stored everywhere");
        }
        Ok(())
    }
}

/// A backup's path, scan, layout and suppliers ([`Storage::prepare_backup`]).
pub(super) struct Prepared {
    /// The canonical path.
    pub source: std::path::PathBuf,
    /// What is under it.
    pub scan: archive::Scan,
    /// RS(k, n) for the hired suppliers.
    pub layout: crate::proto::erasure::Layout,
    /// The suppliers by position.
    pub peers: Vec<PeerId>,
}

/// What [`Storage::upload_all`] did.
pub(super) struct Uploaded {
    /// The blocks stored, by index.
    pub metas: Vec<BlockMeta>,
    /// Every block sent, stored or not (what a failed backup deletes).
    pub sent: Vec<[u8; 32]>,
    /// The first failure, of a block or of its upload.
    pub failure: Option<anyhow::Error>,
}

/// The name a new backup of `source` starts from: its file name (`root` for `/`), with `@`, `/` and control
/// characters replaced (they would not parse in `NAME@VERSION`).
pub(super) fn name_base(source: &Path) -> String {
    let base = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
    base.chars().map(|c| if c == '@' || c == '/' || c.is_control() { '_' } else { c }).collect()
}

/// Stores `block`'s fragments on `peers` (position by position), retrying with backoff; adds the block's plaintext
/// to `progress` if given (an incremental backup counts bytes as it reads them instead).
pub(super) async fn upload_block(
    node: Arc<Storage>,
    peers: Vec<PeerId>,
    vkeys: VersionKeys,
    block: EncodedBlock,
    progress: Option<Progress>,
) -> Result<BlockMeta> {
    let EncodedBlock { meta, fragments } = block;
    let puts = fragments.into_iter().enumerate().map(|(position, data)| {
        let data = bytes::Bytes::from(data);
        let node = node.clone();
        let peer = peers[position];
        let id = vkeys.fragment_id(&meta.block_id, position as u16);
        async move {
            let mut last = String::new();
            for attempt in 1..=UPLOAD_ATTEMPTS {
                if attempt > 1 {
                    tokio::time::sleep(UPLOAD_BACKOFF * 2u32.pow(attempt as u32 - 2)).await;
                }
                match node.request(peer, Request::PutFragment { id, data: data.clone() }).await {
                    Ok(Response::Stored) => return Ok(()),
                    Ok(Response::Error(code, msg)) => {
                        last = format!("{code:?}: {msg}");
                        if !matches!(code, crate::proto::wire::ErrorCode::Internal) {
                            break;
                        }
                    }
                    Ok(other) => last = format!("unexpected answer {other:?}"),
                    Err(e) => last = e.to_string(),
                }
            }
            Err(anyhow!("supplier at position {position} ({peer}) did not store block {}: {last}", meta.index))
        }
    });
    futures::future::try_join_all(puts).await?;
    if let Some(progress) = progress {
        progress.add(meta.plain_len as u64);
        progress.add_new(meta.plain_len as u64);
    }
    Ok(meta)
}
