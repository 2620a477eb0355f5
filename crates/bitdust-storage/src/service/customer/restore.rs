//! Restore: per block, the k data fragments first (no decoding needed), falling back to parity fragments when one
//! is missing, unreachable, slow or fails its hash; decoding on a blocking thread; the stream written in order
//! through [`crate::service::archive::TreeWriter`].

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use bitdust_core::PeerId;
use bitdust_node::Progress;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::mpsc;

use super::{prepare_target, RestoreReport};
use crate::proto::erasure::Layout;
use crate::proto::pipeline::{BlockDecoder, BlockMeta, VersionKeys};
use crate::service::archive::TreeWriter;
use crate::service::Storage;

/// A block fetch that has received no fragment for this long asks more positions (hedged requests, as in
/// Dean & Barroso, "The Tail at Scale", CACM 2013): a supplier that is down costs a dial timeout of several
/// seconds, and one that is slow should not hold the block up. The positions still pending are then tried last
/// for the rest of the restore.
const HEDGE_AFTER: Duration = Duration::from_secs(2);

impl Storage {
    /// Restores `name` (version `version`, default the latest) into `target`.
    ///
    /// # Errors
    /// If the backup or version does not exist, the target is not empty (without `force`), or blocks are
    /// lost (the report of what was restored is in the error message).
    pub async fn restore(
        self: &Arc<Self>,
        name: &str,
        version: Option<u32>,
        target: &Path,
        force: bool,
        progress: Progress,
    ) -> Result<RestoreReport> {
        self.restore_path(name, version, None, target, force, progress).await
    }

    /// Restores `name` (version `version`, default the latest) into `target`: only `path` (a file or folder in
    /// the version, relative to its root) if given, fetching only the blocks it needs.
    ///
    /// # Errors
    /// As [`Storage::restore`]; a `path` not in the version; a `path` in a version made before incremental
    /// backups (those restore whole).
    pub async fn restore_path(
        self: &Arc<Self>,
        name: &str,
        version: Option<u32>,
        path: Option<&str>,
        target: &Path,
        force: bool,
        progress: Progress,
    ) -> Result<RestoreReport> {
        // a prune waits until this restore has read what it needs (and this restore for a prune running)
        let _packs = self.packs_lock.read().await;
        let catalog = self.catalog()?;
        let backup = catalog.backup(name).ok_or_else(|| {
            let names: Vec<&str> = catalog.backups.iter().map(|b| b.name.as_str()).collect();
            anyhow!(
                "no backup named {name:?} (backups: {})",
                if names.is_empty() { "none".into() } else { names.join(", ") }
            )
        })?;
        let v = match version {
            Some(n) => backup.versions.iter().find(|v| v.number == n).ok_or_else(|| {
                let nums: Vec<String> = backup.versions.iter().map(|v| v.number.to_string()).collect();
                anyhow!("backup {name:?} has no version {n} (versions: {})", nums.join(", "))
            })?,
            None => backup.versions.last().ok_or_else(|| anyhow!("backup {name:?} has no versions"))?,
        }
        .clone();
        let path = path.map(|p| p.trim_matches('/')).unwrap_or_default();
        if let Some(snapshot) = catalog.snapshot(&v) {
            // the path is checked before the target is touched
            self.sync_chunk_index(&catalog).await?;
            let reader = Arc::new(super::chunks::ChunkReader::new(self, &catalog));
            if !path.is_empty() {
                self.flatten_check(&reader, snapshot, path.as_bytes()).await?;
            }
            prepare_target(target, force)?;
            let (single, bytes) = (backup.single_file, path.as_bytes());
            return self.restore_snapshot(reader, name, v.number, snapshot, single, bytes, target, progress).await;
        }
        if !path.is_empty() {
            bail!(
                "version {} of {name:?} was made before incremental backups: it restores whole (no --path)",
                v.number
            );
        }
        prepare_target(target, force)?;
        // Per position, the current supplier first, then the one at backup time.
        let peers: Vec<Vec<PeerId>> = (0..v.layout.n).map(|p| self.peers_for(&v.suppliers, p)).collect();
        let vkeys = VersionKeys::derive(self.node.keys().master(), v.id);
        self.restore_version(name, v, vkeys, peers, Via::Own, target, progress).await
    }

    /// Restores version `v` (named `name` in reports) with `vkeys` from `peers` (per position, in turn) through
    /// `via` into `target` (prepared).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn restore_version(
        self: &Arc<Self>,
        name: &str,
        v: crate::proto::catalog::Version,
        vkeys: VersionKeys,
        peers: Vec<Vec<PeerId>>,
        via: Via,
        target: &Path,
        progress: Progress,
    ) -> Result<RestoreReport> {
        let started = Instant::now();
        progress.set_total(v.total_bytes);
        // Learn suppliers' addresses in the background while fetching starts (a request that finds no address
        // looks the peer up itself): with suppliers down, a lookup can wait out their dial timeouts.
        let all: HashSet<PeerId> = peers.iter().flatten().copied().collect();
        let node = self.clone();
        tokio::spawn(async move {
            futures::future::join_all(all.iter().map(|p| node.node().lookup_identity(*p))).await;
        });

        // Suppliers we are connected to answer without a dial: ask them first. A supplier that just went away
        // has lost its connections, and dialing it would cost the hedge delay (or a dial timeout) per block.
        let connected = self.node.network().connected_peers().await.unwrap_or_default();
        let unconnected = (0..peers.len()).filter(|p| !peers[*p].iter().any(|peer| connected.contains(peer))).collect();
        let shared = Arc::new(BlockFetch {
            layout: v.layout,
            peers,
            vkeys,
            unconnected,
            bad: Mutex::new(HashSet::new()),
            failed: std::sync::atomic::AtomicU64::new(0),
            via,
            packed: false,
        });
        let limit = self.config.customer.blocks_in_flight.max(1);
        let fetches = futures::stream::iter(v.blocks.clone().into_iter().map(|meta| {
            let node = self.clone();
            let shared = shared.clone();
            async move {
                let r = fetch_block(&node, &shared, &meta).await;
                (meta, r)
            }
        }))
        .buffered(limit);
        let written =
            write_tree(target, v.entries.clone(), fetches.map(|(meta, r)| (u64::from(meta.plain_len), r)), &progress)
                .await?;
        let (files, bytes, lost, first_error) = (written.files, written.bytes, written.lost, written.first_error);
        let report = RestoreReport {
            name: name.to_string(),
            version: v.number,
            target: target.display().to_string(),
            files,
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            fragments_failed: shared.failed.load(std::sync::atomic::Ordering::Relaxed),
            lost_files: lost,
        };
        if !report.lost_files.is_empty() {
            bail!(
                "restored {} files, but {} could not be restored (more than {} suppliers' fragments lost): {} (the \
                 first block's error: {})",
                report.files,
                report.lost_files.len(),
                v.layout.parity(),
                report.lost_files.join(", "),
                first_error.unwrap_or_default()
            );
        }
        Ok(report)
    }
}

/// What [`write_tree`] wrote.
pub(crate) struct Written {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files that could not be restored (parts of them were lost).
    pub lost: Vec<String>,
    /// The first lost part's error.
    pub first_error: Option<String>,
}

/// Writes `entries` under `target` (prepared) through [`TreeWriter`] on a blocking thread, from `parts`: the
/// archive stream in order, each part its length and its bytes or why they are lost (the files they belong to
/// are then skipped and named). Each part's length goes into `progress` once it arrived.
///
/// # Errors
/// If the target cannot be written.
pub(crate) async fn write_tree(
    target: &Path,
    entries: Vec<crate::proto::catalog::Entry>,
    parts: impl futures::Stream<Item = (u64, Result<Vec<u8>>)>,
    progress: &Progress,
) -> Result<Written> {
    let (tx, mut rx) = mpsc::channel::<(u64, Result<Vec<u8>>)>(2);
    let target_buf = target.to_path_buf();
    let writer = tokio::task::spawn_blocking(move || -> Result<(u64, u64, Vec<String>)> {
        let mut w = TreeWriter::new(&target_buf, entries);
        let mut lost = Vec::new();
        while let Some((len, data)) = rx.blocking_recv() {
            match data {
                Ok(d) => w.write(&d)?,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "part of the stream lost");
                    lost.extend(w.skip(len)?);
                }
            }
        }
        let (files, bytes) = w.finish()?;
        Ok((files, bytes, lost))
    });
    let mut first_error: Option<String> = None;
    futures::pin_mut!(parts);
    while let Some((len, r)) = parts.next().await {
        match &r {
            Ok(_) => progress.add(len),
            Err(e) if first_error.is_none() => first_error = Some(format!("{e:#}")),
            Err(_) => {}
        }
        if tx.send((len, r)).await.is_err() {
            break;
        }
    }
    drop(tx);
    let (files, bytes, lost) = writer.await??;
    Ok(Written { files, bytes, lost, first_error })
}

/// What the block fetches of one restore share.
pub(crate) struct BlockFetch {
    pub(crate) layout: Layout,
    /// Per position, the suppliers to ask in turn.
    pub(crate) peers: Vec<Vec<PeerId>>,
    pub(crate) vkeys: VersionKeys,
    /// Positions none of whose suppliers we were connected to when the restore began: asked after the others.
    pub(crate) unconnected: HashSet<usize>,
    /// Positions that failed or were slow during this restore: asked last.
    pub(crate) bad: Mutex<HashSet<usize>>,
    /// Fragments that were missing, unreachable or corrupt.
    pub(crate) failed: std::sync::atomic::AtomicU64,
    /// Whose fragments, and how they are asked for.
    pub(crate) via: Via,
    /// Whether the blocks are packs (format 2: [`crate::proto::pipeline::PackCoder`], no block encryption).
    pub(crate) packed: bool,
}

/// How a restore asks for fragments.
#[derive(Clone)]
pub(crate) enum Via {
    /// Our own (`GetFragment`).
    Own,
    /// Another owner's, with its grant (`GetGranted`).
    Granted {
        /// The owner.
        owner: PeerId,
        /// Its grant to us.
        grant: crate::proto::grant::SignedGrant,
    },
    /// Another owner's, shared with us (`GetShared`).
    Shared {
        /// The owner.
        owner: PeerId,
        /// The share's grants to us.
        grants: Arc<Vec<crate::proto::grant::SignedAccessGrant>>,
    },
}

/// Fetches k fragments of one block (hedging to other positions after [`HEDGE_AFTER`] without an answer), checks
/// each against its hash and decodes the block on a blocking thread.
pub(crate) async fn fetch_block(node: &Arc<Storage>, shared: &BlockFetch, meta: &BlockMeta) -> Result<Vec<u8>> {
    let BlockFetch { layout, peers, vkeys, unconnected, bad, failed, via, packed } = shared;
    let packed = *packed;
    let layout = *layout;
    let k = layout.k as usize;
    let n = layout.n as usize;
    let known_bad = bad.lock().map(|b| b.clone()).unwrap_or_default();
    // Data shards first (no decoding needed), positions known to be failing last, unconnected ones just before.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|p| (known_bad.contains(p), unconnected.contains(p), *p >= k, *p));
    let mut order = order.into_iter();
    let mut pending = FuturesUnordered::new();
    let fetch = |position: usize| {
        let node = node.clone();
        let candidates = peers.get(position).cloned().unwrap_or_default();
        let id = vkeys.fragment_id(&meta.block_id, position as u16);
        let via = via.clone();
        async move {
            let r = match via {
                Via::Own => node.fetch_fragment(&candidates, position as u16, id).await,
                Via::Granted { owner, grant } => {
                    node.fetch_granted(&candidates, position as u16, owner, id, grant).await
                }
                Via::Shared { owner, grants } => {
                    node.fetch_shared(&candidates, position as u16, owner, id, &grants).await
                }
            };
            (position, r)
        }
    };
    let mut in_flight: HashSet<usize> = HashSet::new();
    for p in order.by_ref().take(k) {
        in_flight.insert(p);
        pending.push(fetch(p));
    }
    let decoder_check = BlockDecoder::new(layout, vkeys)?;
    let mut good: Vec<(usize, Vec<u8>)> = Vec::with_capacity(k);
    let mut errors = Vec::new();
    let hedge = tokio::time::sleep(HEDGE_AFTER);
    tokio::pin!(hedge);
    while good.len() < k {
        tokio::select! {
            next = pending.next() => {
                let Some((position, r)) = next else { break };
                in_flight.remove(&position);
                let r = r.and_then(|bytes| {
                    decoder_check.check_fragment(meta, position, &bytes)?;
                    Ok(bytes)
                });
                match r {
                    Ok(bytes) => good.push((position, bytes)),
                    Err(e) => {
                        failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if let Ok(mut b) = bad.lock() {
                            b.insert(position);
                        }
                        errors.push(format!("{e:#}"));
                        if let Some(next) = order.next() {
                            in_flight.insert(next);
                            pending.push(fetch(next));
                        }
                    }
                }
                hedge.as_mut().reset(tokio::time::Instant::now() + HEDGE_AFTER);
            }
            () = &mut hedge => {
                if let Ok(mut b) = bad.lock() {
                    b.extend(in_flight.iter().copied());
                }
                for next in order.by_ref().take(k - good.len()) {
                    in_flight.insert(next);
                    pending.push(fetch(next));
                }
                hedge.as_mut().reset(tokio::time::Instant::now() + HEDGE_AFTER);
            }
        }
    }
    if good.len() < k {
        bail!(
            "block {}: only {} of the {k} fragments needed are available ({})",
            meta.index,
            good.len(),
            errors.join("; ")
        );
    }
    let meta = meta.clone();
    let vkeys = vkeys.clone();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<(usize, &[u8])> = good.iter().map(|(p, b)| (*p, b.as_slice())).collect();
        if packed {
            return Ok(crate::proto::pipeline::PackCoder::new(layout).decode(&meta, &refs)?);
        }
        let mut dec = BlockDecoder::new(layout, &vkeys)?;
        Ok(dec.decode(&meta, &refs)?)
    })
    .await?
}
