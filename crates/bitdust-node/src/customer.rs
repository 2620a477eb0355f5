//! The customer service: hiring suppliers, backing up, restoring, and recovering the catalog on a new device.
//!
//! Backup data flow (bounded memory: at most `blocks_in_flight` encoded blocks plus a 2-block queue):
//! ```text
//! scan(path) ─► StreamReader ─4 MiB─► BlockEncoder (blocking thread) ─► queue(2) ─► upload: n PutFragment
//!   in parallel per block, `blocks_in_flight` blocks at once ─► BlockMeta list ─► catalog revision + 1
//!   ─► sealed catalog to every supplier
//! ```
//! Restore: per block, fetch the k data fragments first (no decoding needed), falling back to parity
//! fragments when one is missing, unreachable or fails its hash; decode on a blocking thread; write the
//! stream in order through [`crate::archive::TreeWriter`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::catalog::{Backup, Catalog, SealedCatalog, Version, CATALOG_FORMAT};
use bitdust_core::erasure::Layout;
use bitdust_core::pipeline::{BlockDecoder, BlockEncoder, BlockMeta, EncodedBlock, VersionKeys, BLOCK_SIZE};
use bitdust_core::record::{RecordKind, SignedRecord, SupplierList, SUPPLIERS_SERVICE_KEY};
use bitdust_core::wire::{Contract, Request, Response, SignedContract};
use bitdust_core::PeerId;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::archive::{self, StreamReader, TreeWriter};
use crate::home::unix_now;
use crate::node::{Node, Progress};

/// Attempts per fragment upload before the backup fails.
const UPLOAD_ATTEMPTS: usize = 7;
/// Pause before the second attempt to store a fragment; doubled before each later one (1 + 2 + ... + 32 = 63 s
/// in all: time for a supplier that moved to another relay to publish its new address, about 10-40 s in the lab).
const UPLOAD_BACKOFF: Duration = Duration::from_secs(1);
/// Contract length: one year; renewal comes with the rebuild work.
const CONTRACT_SECS: u64 = 365 * 24 * 3600;
/// A block fetch that has received no fragment for this long asks more positions (hedged requests, as in
/// Dean & Barroso, "The Tail at Scale", CACM 2013): a supplier that is down costs a dial timeout of several
/// seconds, and one that is slow should not hold the block up. The positions still pending are then tried last
/// for the rest of the restore.
const HEDGE_AFTER: Duration = Duration::from_secs(2);

/// A hired supplier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SupplierSlot {
    /// Position (shard index).
    pub position: u16,
    /// Peer id bytes.
    pub peer_id: Vec<u8>,
    /// The contract both signed (absent when recovered from the DHT on a new device).
    pub contract: Option<SignedContract>,
    /// When hired, Unix seconds.
    pub hired_unix: u64,
}

impl SupplierSlot {
    /// The supplier's peer id.
    ///
    /// # Errors
    /// If the stored bytes are not a peer id.
    pub fn peer(&self) -> Result<PeerId> {
        PeerId::from_bytes(&self.peer_id).map_err(|_| anyhow!("corrupt supplier peer id at position {}", self.position))
    }
}

/// What a backup did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupReport {
    /// Backup name.
    pub name: String,
    /// Version number made.
    pub version: u32,
    /// Files.
    pub files: usize,
    /// Folders.
    pub folders: usize,
    /// Symlinks.
    pub symlinks: usize,
    /// Bytes of file content.
    pub bytes: u64,
    /// Bytes stored on suppliers (all fragments).
    pub stored_bytes: u64,
    /// Blocks.
    pub blocks: usize,
    /// Layout.
    pub layout: String,
    /// Wall time.
    pub seconds: f64,
    /// Special files skipped.
    pub skipped: Vec<String>,
    /// Files that changed size during the backup.
    pub changed: Vec<String>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    /// Backup name.
    pub name: String,
    /// Version restored.
    pub version: u32,
    /// Target folder.
    pub target: String,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// Fragments that were missing, unreachable or corrupt and were replaced by others.
    pub fragments_failed: u64,
    /// Files that could not be restored (blocks with fewer than k good fragments).
    pub lost_files: Vec<String>,
}

impl Node {
    /// The local catalog (empty if none yet).
    ///
    /// # Errors
    /// On database failure.
    pub fn catalog(&self) -> Result<Catalog> {
        Ok(self.db.get::<Catalog>("catalog")?.unwrap_or(Catalog {
            format: CATALOG_FORMAT,
            revision: 0,
            backups: vec![],
        }))
    }

    /// Hired suppliers, by position.
    ///
    /// # Errors
    /// On database failure.
    pub fn suppliers(&self) -> Result<Vec<SupplierSlot>> {
        let mut s = self.db.get::<Vec<SupplierSlot>>("suppliers")?.unwrap_or_default();
        s.sort_by_key(|s| s.position);
        Ok(s)
    }

    /// Hires suppliers until `customer.suppliers` positions are filled.
    ///
    /// # Errors
    /// "too few suppliers online" if the DHT does not offer enough.
    pub async fn ensure_suppliers(&self) -> Result<Vec<SupplierSlot>> {
        let _g = self.customer_lock.lock().await;
        self.ensure_suppliers_locked().await
    }

    async fn ensure_suppliers_locked(&self) -> Result<Vec<SupplierSlot>> {
        let n = self.config.customer.suppliers;
        self.config.customer.layout(n).context("customer.suppliers and customer.data_shards in the config")?;
        let mut slots = self.suppliers()?;
        if slots.len() >= n as usize {
            return Ok(slots);
        }
        let fired: Vec<Vec<u8>> = self.db.get("fired_suppliers")?.unwrap_or_default();
        let mut candidates = self.candidates(&fired, n as usize - slots.len()).await?;
        let found = candidates.len();
        let mut errors = Vec::new();
        for position in 0..n {
            if slots.iter().any(|s| s.position == position) {
                continue;
            }
            while let Some(peer) = candidates.pop() {
                match self.hire(peer, position).await {
                    Ok(slot) => {
                        slots.push(slot);
                        break;
                    }
                    Err(e) => errors.push(format!("{peer}: {e:#}")),
                }
            }
        }
        slots.sort_by_key(|s| s.position);
        self.db.put("suppliers", &slots)?;
        if slots.len() < n as usize {
            bail!(
                "too few suppliers online: hired {} of {n} ({found} candidates found in the DHT{}{})",
                slots.len(),
                if errors.is_empty() { "" } else { "; refusals: " },
                errors.join("; ")
            );
        }
        self.publish_suppliers(&slots).await;
        Ok(slots)
    }

    /// Supplier candidates from the DHT, sorted so that `pop` tries them in a fixed order: never ourselves,
    /// a node already holding one of our positions, or one in `excluded` (fired before). A young network may
    /// not have spread every provider record yet, so the DHT is asked up to three times until `wanted`
    /// candidates are known.
    async fn candidates(&self, excluded: &[Vec<u8>], wanted: usize) -> Result<Vec<PeerId>> {
        let slots = self.suppliers()?;
        let taken = slots.iter().map(|s| &s.peer_id);
        let unwanted: HashSet<PeerId> = std::iter::once(self.peer_id())
            .chain(taken.chain(excluded).filter_map(|b| PeerId::from_bytes(b).ok()))
            .collect();
        let mut candidates: HashSet<PeerId> = HashSet::new();
        for attempt in 0..3 {
            // The lookup ends once `wanted` usable providers are known (it need not hear from every closest peer).
            let found = self
                .net
                .get_some_providers(SUPPLIERS_SERVICE_KEY.to_vec(), unwanted.clone(), wanted)
                .await
                .unwrap_or_default();
            candidates.extend(found.into_iter().filter(|p| !unwanted.contains(p)));
            if candidates.len() >= wanted || attempt == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut candidates: Vec<PeerId> = candidates.into_iter().collect();
        candidates.sort_by_key(|p| p.to_bytes());
        Ok(candidates)
    }

    /// Hires a supplier for `position` among [`Node::candidates`]. The caller holds the customer lock and
    /// saves the slots.
    pub(crate) async fn hire_position(&self, position: u16, excluded: &[Vec<u8>]) -> Result<SupplierSlot> {
        let mut candidates = self.candidates(excluded, 1).await?;
        let found = candidates.len();
        let mut errors = Vec::new();
        while let Some(peer) = candidates.pop() {
            match self.hire(peer, position).await {
                Ok(slot) => return Ok(slot),
                Err(e) => errors.push(format!("{peer}: {e:#}")),
            }
        }
        bail!(
            "no replacement for position {position}: {found} new candidates in the DHT{}{}",
            if errors.is_empty() { "" } else { "; " },
            errors.join("; ")
        )
    }

    async fn hire(&self, peer: PeerId, position: u16) -> Result<SupplierSlot> {
        self.lookup_identity(peer).await?;
        let contract = Contract {
            customer: self.peer_id().to_bytes(),
            supplier: peer.to_bytes(),
            position,
            needed_bytes: self.config.customer.needed_bytes,
            start_unix: unix_now(),
            duration_secs: CONTRACT_SECS,
            nonce: rand::random(),
        };
        let proposed = SignedContract::propose(&self.keys, contract.clone());
        match self.request(peer, Request::Contract(proposed)).await? {
            Response::ContractAccepted(signed) => {
                let (_, supplier) = signed.verify().context("supplier's contract signature")?;
                if signed.contract != contract || supplier != peer || signed.supplier_signature.is_none() {
                    bail!("supplier returned a different or unsigned contract");
                }
                Ok(SupplierSlot { position, peer_id: peer.to_bytes(), contract: Some(signed), hired_unix: unix_now() })
            }
            Response::Error(code, msg) => bail!("refused ({code:?}): {msg}"),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// Publishes the signed supplier list record, so a new device finds our suppliers from the key alone.
    pub(crate) async fn publish_suppliers(&self, slots: &[SupplierSlot]) {
        let list = SupplierList { suppliers: slots.iter().map(|s| (s.position, s.peer_id.clone())).collect() };
        let payload = postcard::to_stdvec(&list).unwrap_or_default();
        let revision = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let rec = SignedRecord::sign(&self.keys, RecordKind::Suppliers, revision, unix_now(), payload);
        if let Err(e) = self.net.put_record(rec).await {
            tracing::warn!(error = %e, "could not publish the supplier list");
        }
    }

    /// Backs up `source` (a folder or a file) as a new version.
    ///
    /// # Errors
    /// If the path is unreadable, too few suppliers are online, or an upload fails.
    pub async fn backup(self: &Arc<Self>, source: &Path, progress: Progress) -> Result<BackupReport> {
        let started = Instant::now();
        let _g = self.customer_lock.lock().await;
        let source = std::fs::canonicalize(source).with_context(|| format!("cannot back up {}", source.display()))?;
        let scan = {
            let s = source.clone();
            tokio::task::spawn_blocking(move || archive::scan(&s)).await??
        };
        progress.set_total(scan.total_bytes);
        let slots = self.ensure_suppliers_locked().await?;
        let layout = self.config.customer.layout(slots.len() as u16)?;
        let peers: Vec<PeerId> = slots.iter().map(SupplierSlot::peer).collect::<Result<_>>()?;
        let version_id: [u8; 16] = rand::random();
        let vkeys = VersionKeys::derive(self.keys.master(), version_id);

        // Encoder on a blocking thread, feeding a bounded queue.
        let (tx, mut rx) = mpsc::channel::<Result<EncodedBlock>>(2);
        let encoder_keys = vkeys.clone();
        let src = source.clone();
        let entries_for_reader =
            archive::Scan { entries: scan.entries.clone(), total_bytes: scan.total_bytes, skipped: vec![] };
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

        let mut metas: Vec<BlockMeta> = Vec::new();
        let mut uploads = FuturesUnordered::new();
        let limit = self.config.customer.blocks_in_flight.max(1);
        let mut failure = None;
        while let Some(block) = rx.recv().await {
            let block = match block {
                Ok(b) => b,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
            while uploads.len() >= limit {
                match uploads.next().await {
                    Some(Ok(meta)) => metas.push(meta),
                    Some(Err(e)) => {
                        failure = Some(e);
                        break;
                    }
                    None => break,
                }
            }
            if failure.is_some() {
                break;
            }
            uploads.push(upload_block(self.clone(), peers.clone(), vkeys.clone(), block, progress.clone()));
        }
        drop(rx);
        while let Some(r) = uploads.next().await {
            match r {
                Ok(meta) => metas.push(meta),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        let changed = encoder.await.unwrap_or_default();
        if let Some(e) = failure {
            return Err(e.context("backup failed; the catalog is unchanged"));
        }
        metas.sort_by_key(|m| m.index);

        let mut catalog = self.catalog()?;
        let base = source.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "root".into());
        let base: String = base.chars().map(|c| if c == '@' || c == '/' || c.is_control() { '_' } else { c }).collect();
        let src_bytes = source.as_os_str().as_encoded_bytes().to_vec();
        let name = catalog.name_for(&src_bytes, &base);
        let single_file =
            scan.entries.first().is_some_and(|e| matches!(e.kind, bitdust_core::catalog::EntryKind::File { .. }));
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
            folders: version.entries.iter().filter(|e| matches!(e.kind, bitdust_core::catalog::EntryKind::Dir)).count(),
            symlinks: version
                .entries
                .iter()
                .filter(|e| matches!(e.kind, bitdust_core::catalog::EntryKind::Symlink { .. }))
                .count(),
            bytes: version.total_bytes,
            stored_bytes: version.stored_bytes(),
            blocks: version.blocks.len(),
            layout: layout.to_string(),
            seconds: 0.0,
            skipped: scan.skipped,
            changed,
        };
        match catalog.backups.iter_mut().find(|b| b.name == name) {
            Some(b) => b.versions.push(version),
            None => catalog.backups.push(Backup { name, source: src_bytes, single_file, versions: vec![version] }),
        }
        catalog.revision += 1;
        self.db.put("catalog", &catalog)?;
        self.push_catalog(&catalog, &peers).await?;
        Ok(BackupReport { seconds: started.elapsed().as_secs_f64(), ..report })
    }

    /// Stores the sealed catalog on every supplier; succeeds if at least one took it.
    async fn push_catalog(&self, catalog: &Catalog, peers: &[PeerId]) -> Result<()> {
        let sealed = SealedCatalog::seal(&self.keys, catalog).encode();
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
        let started = Instant::now();
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
        prepare_target(target, force)?;
        progress.set_total(v.total_bytes);
        // Per position, the current supplier first, then the one at backup time.
        let peers: Vec<Vec<PeerId>> = (0..v.layout.n).map(|p| self.peers_for(&v, p)).collect();
        // Learn suppliers' addresses in the background while fetching starts (a request that finds no address
        // looks the peer up itself): with suppliers down, a lookup can wait out their dial timeouts.
        let all: HashSet<PeerId> = peers.iter().flatten().copied().collect();
        let node = self.clone();
        tokio::spawn(async move {
            futures::future::join_all(all.iter().map(|p| node.lookup_identity(*p))).await;
        });

        let vkeys = VersionKeys::derive(self.keys.master(), v.id);
        let (tx, mut rx) = mpsc::channel::<(BlockMeta, Result<Vec<u8>>)>(2);
        let target_buf = target.to_path_buf();
        let entries = v.entries.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<(u64, u64, Vec<String>)> {
            let mut w = TreeWriter::new(&target_buf, entries);
            let mut lost = Vec::new();
            while let Some((meta, data)) = rx.blocking_recv() {
                match data {
                    Ok(d) => w.write(&d)?,
                    Err(e) => {
                        tracing::warn!(block = meta.index, error = %format!("{e:#}"), "block lost");
                        lost.extend(w.skip(meta.plain_len as u64)?);
                    }
                }
            }
            let (files, bytes) = w.finish()?;
            Ok((files, bytes, lost))
        });

        // Suppliers we are connected to answer without a dial: ask them first. A supplier that just went away
        // has lost its connections, and dialing it would cost the hedge delay (or a dial timeout) per block.
        let connected = self.net.connected_peers().await.unwrap_or_default();
        let unconnected = (0..peers.len()).filter(|p| !peers[*p].iter().any(|peer| connected.contains(peer))).collect();
        let shared = Arc::new(BlockFetch {
            layout: v.layout,
            peers,
            vkeys,
            unconnected,
            bad: Mutex::new(HashSet::new()),
            failed: std::sync::atomic::AtomicU64::new(0),
        });
        let limit = self.config.customer.blocks_in_flight.max(1);
        let mut fetches = futures::stream::iter(v.blocks.clone().into_iter().map(|meta| {
            let node = self.clone();
            let shared = shared.clone();
            async move {
                let r = fetch_block(&node, &shared, &meta).await;
                (meta, r)
            }
        }))
        .buffered(limit);
        while let Some((meta, r)) = fetches.next().await {
            if r.is_ok() {
                progress.add(meta.plain_len as u64);
            }
            if tx.send((meta, r)).await.is_err() {
                break;
            }
        }
        drop(tx);
        let (files, bytes, lost) = writer.await??;
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
                "restored {} files, but {} could not be restored (more than {} suppliers' fragments lost): {}",
                report.files,
                report.lost_files.len(),
                v.layout.parity(),
                report.lost_files.join(", ")
            );
        }
        Ok(report)
    }

    /// Recovers the catalog on a new device: finds the supplier list in the DHT, fetches the sealed catalog
    /// from the suppliers and keeps the highest revision that opens with our keys.
    ///
    /// # Errors
    /// If no supplier list or no valid catalog is found.
    pub async fn recover_catalog(&self) -> Result<Catalog> {
        let _g = self.customer_lock.lock().await;
        let me = self.peer_id();
        let rec = self.net.get_record(RecordKind::Suppliers, me).await.context("finding our suppliers in the DHT")?;
        let list: SupplierList = postcard::from_bytes(&rec.payload).context("supplier list record")?;
        let mut best: Option<Catalog> = None;
        let mut errors = Vec::new();
        // All suppliers at once: one that is down costs a dial timeout, not one per supplier before it.
        let peers: Vec<PeerId> = list.suppliers.iter().filter_map(|(_, p)| PeerId::from_bytes(p).ok()).collect();
        let answers = futures::future::join_all(peers.iter().map(|&peer| async move {
            self.lookup_identity(peer).await?;
            match self.request(peer, Request::GetCatalog { owner: me.to_bytes() }).await? {
                Response::Catalog(bytes) => Ok(SealedCatalog::decode(&bytes)?.open(&self.keys)?),
                other => bail!("{other:?}"),
            }
        }))
        .await;
        for (peer, r) in peers.iter().zip(answers) {
            match r {
                Ok(c) => {
                    if best.as_ref().is_none_or(|b| c.revision > b.revision) {
                        best = Some(c);
                    }
                }
                Err(e) => errors.push(format!("{peer}: {e:#}")),
            }
        }
        let catalog = best.ok_or_else(|| anyhow!("no supplier returned our catalog: {}", errors.join("; ")))?;
        let slots: Vec<SupplierSlot> = list
            .suppliers
            .iter()
            .map(|(pos, p)| SupplierSlot { position: *pos, peer_id: p.clone(), contract: None, hired_unix: unix_now() })
            .collect();
        self.db.put("catalog", &catalog)?;
        self.db.put("suppliers", &slots)?;
        Ok(catalog)
    }
}

async fn upload_block(
    node: Arc<Node>,
    peers: Vec<PeerId>,
    vkeys: VersionKeys,
    block: EncodedBlock,
    progress: Progress,
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
                        if !matches!(code, bitdust_core::wire::ErrorCode::Internal) {
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
    progress.add(meta.plain_len as u64);
    Ok(meta)
}

/// What the block fetches of one restore share.
struct BlockFetch {
    layout: Layout,
    /// Per position, the suppliers to ask in turn.
    peers: Vec<Vec<PeerId>>,
    vkeys: VersionKeys,
    /// Positions none of whose suppliers we were connected to when the restore began: asked after the others.
    unconnected: HashSet<usize>,
    /// Positions that failed or were slow during this restore: asked last.
    bad: Mutex<HashSet<usize>>,
    /// Fragments that were missing, unreachable or corrupt.
    failed: std::sync::atomic::AtomicU64,
}

/// Fetches k fragments of one block (hedging to other positions after [`HEDGE_AFTER`] without an answer), checks
/// each against its hash and decodes the block on a blocking thread.
async fn fetch_block(node: &Arc<Node>, shared: &BlockFetch, meta: &BlockMeta) -> Result<Vec<u8>> {
    let BlockFetch { layout, peers, vkeys, unconnected, bad, failed } = shared;
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
        async move {
            let r = node.fetch_fragment(&candidates, position as u16, id).await;
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
        let mut dec = BlockDecoder::new(layout, &vkeys)?;
        let refs: Vec<(usize, &[u8])> = good.iter().map(|(p, b)| (*p, b.as_slice())).collect();
        Ok(dec.decode(&meta, &refs)?)
    })
    .await?
}

/// Checks a restore target: created if missing; must be an empty folder unless `force`.
///
/// # Errors
/// If it is a file, or a non-empty folder without `force`.
pub fn prepare_target(target: &Path, force: bool) -> Result<()> {
    match std::fs::metadata(target) {
        Ok(m) if !m.is_dir() => bail!("restore target {} is not a folder", target.display()),
        Ok(_) => {
            let non_empty = std::fs::read_dir(target)?.next().is_some();
            if non_empty && !force {
                bail!("restore target {} is not empty (use --force to restore into it anyway)", target.display());
            }
            Ok(())
        }
        Err(_) => std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display())),
    }
}

/// The path a restore of everything puts backup `name` under.
pub fn restore_all_path(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}
