//! Sharing a backup (the sharing issue's storage half): manifests, share keys, access grants and their revocation.
//!
//! ```text
//! share key (sent to the grantee, sealed in its Olm session; at most MAX_CAPABILITY_BYTES)
//!   manifest version (one small file kept like a backup, `shared/share-<grant id>`), its keys, its grants
//! manifest (fetched from the owner's suppliers with the share key)
//!   owner, backup name, the versions shared (layout, suppliers, entries, blocks) with their keys, and the access
//!   grants that cover every fragment of them
//! ```
//! Every grant of one share and grantee carries the same grant id and is bound to the grantee's peer id (or to
//! nobody, for a public share), so a supplier serves the manifest and the data only to it, and from the moment the
//! owner revokes that id ([`Request::Revoke`]), to nobody. Revocations are kept (`storage/revoked`) until their
//! grants expire and sent again to every supplier hired later. What a grantee fetched before stays with it; a later
//! version is encrypted under keys derived from a new random version id, which no manifest it can still fetch holds.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::PeerId;
use bitdust_node::vault::{ShareError, MAX_CAPABILITY_BYTES};
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use crate::proto::catalog::{Catalog, EntryKind, PackSet, Snapshot, Version};
use crate::proto::chunk::ChunkId;
use crate::proto::erasure::Layout;
use crate::proto::grant::{SignedAccessGrant, MAX_GRANT_FRAGMENTS, MAX_REVOKE};
use crate::proto::pipeline::VersionKeys;
use crate::proto::wire::{Request, Response};
use crate::service::customer::chunks::{BlockKey, ChunkReader, Located};
use crate::service::customer::restore::Via;
use crate::service::vault::SHARED_PREFIX;
use crate::service::Storage;

/// Revocations this node made: grant id -> expiry, Unix seconds.
const REVOKED: &str = "storage/revoked";
/// Manifests fetched as a grantee: BLAKE3(owner ‖ share key) -> the manifest's bytes (fetched once; the data is
/// still fetched under its grants, which the owner's suppliers check each time).
const MANIFESTS: &str = "storage/manifests";
/// The largest manifest kept in [`MANIFESTS`], bytes.
const MAX_CACHED_MANIFEST: usize = 4 << 20;
/// The largest manifest a grantee takes, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;
/// Most versions one manifest lists.
pub const MAX_SHARED_VERSIONS: usize = 10_000;

/// One version shared, with its keys.
#[derive(Serialize, Deserialize)]
struct SharedVersion {
    version: Version,
    secrets: ([u8; 32], [u8; 32]),
}

/// What a share gives: fetched by the grantee from the owner's suppliers.
#[derive(Serialize, Deserialize)]
struct Manifest {
    /// The owner's peer id bytes.
    owner: Vec<u8>,
    /// The backup's name.
    backup: String,
    /// The versions shared, oldest first (an incremental one with no entries, no blocks and no keys: its
    /// snapshot is in `packs`).
    versions: Vec<SharedVersion>,
    /// The grants covering every fragment of them.
    grants: Vec<SignedAccessGrant>,
    /// The incremental versions' part, if one is shared.
    packs: Option<SharedPacks>,
}

/// A manifest made before incremental versions could be shared (no `packs`).
#[derive(Deserialize)]
struct ManifestV1 {
    owner: Vec<u8>,
    backup: String,
    versions: Vec<SharedVersion>,
    grants: Vec<SignedAccessGrant>,
}

impl Manifest {
    /// Decodes a manifest of either form.
    fn decode(bytes: &[u8]) -> Result<Self> {
        if let Ok(m) = postcard::from_bytes::<Manifest>(bytes) {
            return Ok(m);
        }
        let m: ManifestV1 = postcard::from_bytes(bytes).context("malformed manifest")?;
        Ok(Self { owner: m.owner, backup: m.backup, versions: m.versions, grants: m.grants, packs: None })
    }
}

/// What opens shared incremental versions (catalog format 2). The root tree refs open exactly those versions'
/// trees, and through them their files' chunks: the blocks granted hold other chunks of the owner too, sealed
/// under keys the grantee never gets. Pack sets come with their fragment-id key only (packs have no block key).
#[derive(Serialize, Deserialize)]
struct SharedPacks {
    /// Whether the backup is of a single file.
    single_file: bool,
    /// Per shared version number, its snapshot.
    snapshots: Vec<(u32, Snapshot)>,
    /// The pack sets holding their chunks, with only the blocks that do, and no index refs.
    sets: Vec<SharedSet>,
    /// Where each chunk the snapshots use is.
    chunks: Vec<(ChunkId, Located)>,
}

/// A pack set as shared.
#[derive(Serialize, Deserialize)]
struct SharedSet {
    set: PackSet,
    /// Derives its fragment ids ([`VersionKeys`]).
    id_key: [u8; 32],
}

impl SharedPacks {
    fn snapshot(&self, number: u32) -> Option<&Snapshot> {
        self.snapshots.iter().find(|(n, _)| *n == number).map(|(_, s)| s)
    }

    /// The fragment id of every block, at every position.
    fn fragment_ids(&self) -> Vec<[u8; 32]> {
        let mut out = Vec::new();
        for s in &self.sets {
            let vkeys = VersionKeys::from_secrets(s.set.id, ([0; 32], s.id_key));
            for b in &s.set.blocks {
                out.extend((0..s.set.layout.n).map(|p| vkeys.fragment_id(&b.block_id, p)));
            }
        }
        out
    }
}

/// The blocks a live share of incremental versions was granted: prune does not repack them (the grantee's
/// manifest says where its chunks are) until the share is revoked or expires.
#[derive(Serialize, Deserialize)]
struct Pin {
    expires_unix: u64,
    blocks: Vec<BlockKey>,
}

impl Versioned for Pin {
    const FORMAT: u16 = 1;
}

/// Table: grant id -> [`Pin`].
const PINS: &str = "storage/share_pins";

/// The blocks live shares pin (see [`Pin`]).
///
/// # Errors
/// On database failure.
pub(crate) fn pinned_blocks(storage: &Storage) -> Result<std::collections::HashSet<BlockKey>> {
    let now = unix_now();
    Ok(storage
        .node()
        .db()
        .records::<Pin>(PINS, None, usize::MAX)?
        .into_iter()
        .filter(|(_, p)| p.expires_unix.saturating_add(crate::proto::grant::SKEW_SECS) >= now)
        .flat_map(|(_, p)| p.blocks)
        .collect())
}

/// What the grantee holds: how to fetch the manifest.
#[derive(Serialize, Deserialize)]
struct ShareKey {
    manifest: Version,
    secrets: ([u8; 32], [u8; 32]),
    grants: Vec<SignedAccessGrant>,
}

/// A manifest's bytes, as fetched.
#[derive(Serialize, Deserialize)]
struct Cached(#[serde(with = "serde_bytes")] Vec<u8>);

impl Versioned for Cached {
    const FORMAT: u16 = 1;
}

/// A revocation's expiry, Unix seconds.
#[derive(Serialize, Deserialize)]
struct Expiry(u64);

impl Versioned for Expiry {
    const FORMAT: u16 = 1;
}

fn unix_now() -> u64 {
    bitdust_node::home::unix_now()
}

/// The catalog name of the manifest of grant `id`.
fn manifest_name(id: &[u8; 16]) -> String {
    format!("{SHARED_PREFIX}share-{}", hex::encode(id))
}

/// Every fragment id of `version` (keys `vkeys`), cut into signed grants of at most [`MAX_GRANT_FRAGMENTS`].
fn grants_for(
    keys: &bitdust_core::keys::NodeKeys,
    version: &Version,
    vkeys: &VersionKeys,
    id: [u8; 16],
    grantee: Option<&PeerId>,
    expires_unix: u64,
) -> Result<Vec<SignedAccessGrant>> {
    let ids: Vec<[u8; 32]> =
        version.blocks.iter().flat_map(|b| (0..version.layout.n).map(|p| vkeys.fragment_id(&b.block_id, p))).collect();
    sign_grants(keys, &ids, id, grantee, expires_unix)
}

/// Fragment ids `ids` cut into signed grants of at most [`MAX_GRANT_FRAGMENTS`].
fn sign_grants(
    keys: &bitdust_core::keys::NodeKeys,
    ids: &[[u8; 32]],
    id: [u8; 16],
    grantee: Option<&PeerId>,
    expires_unix: u64,
) -> Result<Vec<SignedAccessGrant>> {
    ids.chunks(MAX_GRANT_FRAGMENTS)
        .map(|chunk| Ok(SignedAccessGrant::sign(keys, id, grantee, chunk.to_vec(), expires_unix)?))
        .collect()
}

/// Per position of `n`, who may hold an owner's fragments: its supplier there in `list` (its signed supplier list),
/// then the one in `then` (at backup time).
fn peers_by_position(list: &[(u16, Vec<u8>)], n: u16, then: &[Vec<u8>]) -> Vec<Vec<PeerId>> {
    (0..n)
        .map(|p| {
            let mut out: Vec<PeerId> = list
                .iter()
                .filter(|(pos, _)| *pos == p)
                .filter_map(|(_, peer)| PeerId::from_bytes(peer).ok())
                .collect();
            if let Some(at) = then.get(p as usize).and_then(|b| PeerId::from_bytes(b).ok()) {
                if !out.contains(&at) {
                    out.push(at);
                }
            }
            out
        })
        .collect()
}

/// An entry as the API lists it.
pub(crate) fn api_entry(e: &crate::proto::catalog::Entry) -> bitdust_api::SharedEntry {
    let (kind, size) = match &e.kind {
        EntryKind::Dir => ("dir", 0),
        EntryKind::File { size, .. } => ("file", *size),
        EntryKind::Symlink { .. } => ("symlink", 0),
    };
    bitdust_api::SharedEntry { path: String::from_utf8_lossy(&e.path).into_owned(), kind: kind.into(), size }
}

/// Version `v` as the API lists it; `snapshot` if it is an incremental one (then its stored bytes are what its run
/// stored: its other chunks are shared with older versions).
pub(crate) fn version_info(v: &Version, snapshot: Option<&Snapshot>) -> bitdust_api::VersionInfo {
    let (files, entries, stored_bytes, blocks) = match snapshot {
        Some(s) => (s.files as usize, (s.files + s.dirs + s.symlinks) as usize, s.stored_bytes, 0),
        None => (v.file_count(), v.entries.len(), v.stored_bytes(), v.blocks.len()),
    };
    bitdust_api::VersionInfo {
        version: v.number,
        created_unix: v.created_unix,
        files,
        entries,
        bytes: v.total_bytes,
        stored_bytes,
        blocks,
        layout: v.layout.to_string(),
    }
}

impl Storage {
    /// See [`bitdust_node::Vault::share_backup`].
    pub(crate) async fn share_backup(
        self: &Arc<Self>,
        backup: &str,
        version: Option<u32>,
        grantee: Option<PeerId>,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>> {
        if crate::service::vault::is_vault_backup(backup) {
            return Err(ShareError::NotFound(format!("no backup named {backup}")).into());
        }
        match backup.split_once('/') {
            None => self.share_named(backup, version, None, grantee, grant_id, expires_unix).await,
            Some((name, path)) => {
                let (copy, number, original) = self.path_copy(name, version, path).await?;
                let shown = Some((backup, original));
                self.share_named(&copy, Some(number), shown, grantee, grant_id, expires_unix).await
            }
        }
    }

    /// A hidden backup holding only `path` of version `version` (the latest if `None`) of backup `name`, made once
    /// per version and path: the version is restored to a scratch folder and the path stored again (new keys, and
    /// blocks that hold nothing else, so a grantee of the path reads nothing outside it). Returns its name, its
    /// version, and the number of the version it was copied from.
    ///
    /// # Errors
    /// No such backup, version or path (a path with empty, `.` or `..` parts is none; all as
    /// [`ShareError::NotFound`]), the restore or the backup.
    async fn path_copy(self: &Arc<Self>, name: &str, version: Option<u32>, path: &str) -> Result<(String, u32, u32)> {
        let not_found = |what: String| anyhow::Error::new(ShareError::NotFound(what));
        let path = path.trim_matches('/');
        if path.is_empty() || path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
            return Err(not_found(format!("{path:?} is not a path inside backup {name}")));
        }
        let catalog = self.catalog()?;
        let b = catalog.backup(name).ok_or_else(|| not_found(format!("no backup named {name}")))?;
        let v = match version {
            Some(n) => b.versions.iter().find(|v| v.number == n),
            None => b.versions.iter().max_by_key(|v| v.number),
        }
        .ok_or_else(|| not_found(format!("backup {name} has no version {}", version.unwrap_or_default())))?;
        // an incremental version: the path is found in its trees (a folder or a file; None: not in it)
        let incremental_dir = match catalog.snapshot(v) {
            Some(snapshot) if !b.single_file => {
                self.sync_chunk_index(&catalog).await?;
                let reader = ChunkReader::new(self, &catalog);
                match self.snapshot_node(&reader, snapshot, path.as_bytes()).await?.map(|n| n.kind) {
                    Some(crate::proto::tree::NodeKind::Dir { .. }) => Some(true),
                    Some(crate::proto::tree::NodeKind::File { .. }) => Some(false),
                    _ => return Err(not_found(format!("{name}@{} has no {path}", v.number))),
                }
            }
            _ => {
                let inside = |e: &crate::proto::catalog::Entry| {
                    e.path == path.as_bytes() || e.path.starts_with(format!("{path}/").as_bytes())
                };
                if b.single_file || !v.entries.iter().any(inside) {
                    return Err(not_found(format!("{name}@{} has no {path}", v.number)));
                }
                None
            }
        };
        let id = blake3::hash(&[name.as_bytes(), &[0], &v.id, path.as_bytes()].concat());
        let copy = format!("{SHARED_PREFIX}path-{}", hex::encode(&id.as_bytes()[..16]));
        let number = v.number;
        if let Some(done) = catalog.backup(&copy).and_then(|c| c.versions.iter().map(|v| v.number).max()) {
            return Ok((copy, done, number));
        }
        drop(catalog);
        let scratch = crate::service::vault::Scratch::new(self)?;
        let tree = scratch.path().join("tree");
        let source = match incremental_dir {
            // only the path is fetched: a folder restores as the target, a file into it
            Some(dir) => {
                let p = bitdust_node::Progress::new();
                self.restore_path(name, Some(number), Some(path), &tree, false, p).await?;
                if dir {
                    tree
                } else {
                    tree.join(path.rsplit('/').next().unwrap_or(path))
                }
            }
            None => {
                self.restore(name, Some(number), &tree, false, bitdust_node::Progress::new()).await?;
                tree.join(path)
            }
        };
        let named = (copy.clone(), format!("{name}@{number}/{path}").into_bytes());
        let report = self
            .backup_as(
                &source,
                Some(named),
                &crate::service::archive::Excludes::default(),
                bitdust_node::Progress::new(),
            )
            .await?;
        Ok((copy, report.version, number))
    }

    /// See [`bitdust_node::Vault::share_path`].
    pub(crate) async fn share_path(
        self: &Arc<Self>,
        path: &Path,
        grantee: PeerId,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>> {
        let name = format!("{SHARED_PREFIX}contrib-{}", hex::encode(grant_id));
        let source = std::fs::canonicalize(path)
            .map_err(|e| ShareError::BadRequest(format!("cannot read {}: {e}", path.display())))?;
        let named = (name.clone(), source.as_os_str().as_encoded_bytes().to_vec());
        let report = self
            .backup_as(
                &source,
                Some(named),
                &crate::service::archive::Excludes::default(),
                bitdust_node::Progress::new(),
            )
            .await?;
        self.share_named(&name, Some(report.version), None, Some(grantee), grant_id, expires_unix).await
    }

    /// See [`bitdust_node::Vault::ingest_share`].
    pub(crate) async fn ingest_share(self: &Arc<Self>, writer: PeerId, key: &[u8], backup: &str) -> Result<u32> {
        let b = self
            .catalog()?
            .backup(backup)
            .cloned()
            .ok_or_else(|| ShareError::NotFound(format!("no backup named {backup}")))?;
        let scratch = crate::service::vault::Scratch::new(self)?;
        let tree = scratch.path().join("tree");
        self.restore_share(writer, key, None, &tree, false).await?;
        let source = if b.single_file {
            std::fs::read_dir(&tree)?
                .flatten()
                .map(|e| e.path())
                .find(|p| p.is_file())
                .ok_or_else(|| anyhow!("the contribution to {backup} holds no file"))?
        } else {
            tree
        };
        let report = self
            .backup_as(
                &source,
                Some((backup.to_string(), b.source)),
                &crate::service::archive::Excludes::default(),
                bitdust_node::Progress::new(),
            )
            .await?;
        Ok(report.version)
    }

    /// Shares catalog backup `backup` (any, hidden ones too): see [`Storage::share_backup`]. With `shown` (a name
    /// and a version number), the grantee sees the one version shared under that name and number (a path's copy).
    async fn share_named(
        self: &Arc<Self>,
        backup: &str,
        version: Option<u32>,
        shown: Option<(&str, u32)>,
        grantee: Option<PeerId>,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>> {
        let not_found = |what: String| anyhow::Error::new(ShareError::NotFound(what));
        let catalog = self.catalog()?;
        let b = catalog.backup(backup).ok_or_else(|| not_found(format!("no backup named {backup}")))?;
        let chosen: Vec<&Version> = match version {
            Some(n) => vec![b
                .versions
                .iter()
                .find(|v| v.number == n)
                .ok_or_else(|| not_found(format!("backup {backup} has no version {n}")))?],
            None => b.versions.iter().collect(),
        };
        if chosen.is_empty() || chosen.len() > MAX_SHARED_VERSIONS {
            bail!("backup {backup} has {} versions to share", chosen.len());
        }
        // no prune moves the shared chunks between reading where they are and pinning them
        let packs_guard = self.packs_lock.read().await;
        let keys = self.node().keys();
        let mut versions = Vec::with_capacity(chosen.len());
        let mut grants = Vec::new();
        let mut snapshots = Vec::new();
        for v in chosen {
            let mut version = v.clone();
            if let Some((_, number)) = shown {
                version.number = number;
            }
            if let Some(snapshot) = catalog.snapshot(v) {
                // its trees and chunks are opened by its snapshot's refs, listed once for all in `packs`
                snapshots.push((version.number, snapshot.clone()));
                versions.push(SharedVersion { version, secrets: ([0; 32], [0; 32]) });
                continue;
            }
            let vkeys = VersionKeys::derive(keys.master(), v.id);
            grants.extend(grants_for(keys, v, &vkeys, grant_id, grantee.as_ref(), expires_unix)?);
            versions.push(SharedVersion { version, secrets: vkeys.secrets() });
        }
        let packs = if snapshots.is_empty() {
            None
        } else {
            let packs = self.shared_packs(&catalog, b.single_file, snapshots).await?;
            grants.extend(sign_grants(keys, &packs.fragment_ids(), grant_id, grantee.as_ref(), expires_unix)?);
            Some(packs)
        };
        let pin = packs.as_ref().map(|p| Pin {
            expires_unix,
            blocks: p.sets.iter().flat_map(|s| s.set.blocks.iter().map(|b| (s.set.id, b.block_id))).collect(),
        });
        let manifest = Manifest {
            owner: self.node().peer_id().to_bytes(),
            backup: shown.map_or(backup, |(name, _)| name).to_string(),
            versions,
            grants,
            packs,
        };
        let bytes = postcard::to_stdvec(&manifest)?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            bail!("backup {backup} is too large to share in one manifest ({} bytes)", bytes.len());
        }
        // the manifest is stored like a backup of one file, on our suppliers; a share given again (new versions)
        // replaces it
        let name = manifest_name(&grant_id);
        if let Some(pin) = &pin {
            // before the manifest is stored: a prune from now on leaves these blocks where the manifest says
            self.node().db().write(|tx| tx.table(PINS)?.put(&grant_id, pin))?;
        }
        // (storing takes the customer lock, which a prune waiting for this guard holds)
        drop(packs_guard);
        let stored = self.store_one_file(&name, "manifest", b"manifest".to_vec(), &bytes).await?;
        let manifest_version = self
            .catalog()?
            .backup(&name)
            .and_then(|b| b.versions.iter().find(|v| v.number == stored).cloned())
            .ok_or_else(|| anyhow!("the share's manifest is not in the catalog"))?;
        let mkeys = VersionKeys::derive(keys.master(), manifest_version.id);
        let key = ShareKey {
            grants: grants_for(keys, &manifest_version, &mkeys, grant_id, grantee.as_ref(), expires_unix)?,
            manifest: manifest_version,
            secrets: mkeys.secrets(),
        };
        let out = postcard::to_stdvec(&key)?;
        if out.len() > MAX_CAPABILITY_BYTES {
            let _ = self.forget_versions(&name, &[stored]).await;
            bail!("the share key is over {MAX_CAPABILITY_BYTES} bytes");
        }
        Ok(out)
    }

    /// See [`bitdust_node::Vault::revoke_grants`].
    pub(crate) async fn revoke_grants(&self, grants: &[([u8; 16], u64)]) -> Result<(usize, usize)> {
        self.node().db().write(|tx| {
            let mut t = tx.table(REVOKED)?;
            for (id, expires) in grants {
                t.put(id, &Expiry(*expires))?;
            }
            let mut pins = tx.table(PINS)?;
            for (id, _) in grants {
                pins.remove(id)?;
            }
            Ok(())
        })?;
        let peers: Vec<PeerId> = self.suppliers()?.iter().filter_map(|s| s.peer().ok()).collect();
        let confirmed = self.send_revocations(&peers, grants).await;
        for (id, _) in grants {
            let name = manifest_name(id);
            let numbers: Vec<u32> = self
                .catalog()?
                .backup(&name)
                .map(|b| b.versions.iter().map(|v| v.number).collect())
                .unwrap_or_default();
            if let Err(e) = self.forget_versions(&name, &numbers).await {
                tracing::info!(error = %format!("{e:#}"), "a revoked share's manifest is not forgotten yet");
            }
        }
        Ok((confirmed, peers.len()))
    }

    /// Sends `grants` to `peers` as revocations (in runs of [`MAX_REVOKE`]); returns how many confirmed them all.
    async fn send_revocations(&self, peers: &[PeerId], grants: &[([u8; 16], u64)]) -> usize {
        let one = |peer: PeerId| async move {
            for run in grants.chunks(MAX_REVOKE) {
                match self.request(peer, Request::Revoke { grants: run.to_vec() }).await {
                    Ok(Response::Revoked) => {}
                    other => {
                        tracing::info!(%peer, answer = ?other.map(|_| ()), "a supplier did not take a revocation");
                        return false;
                    }
                }
            }
            true
        };
        futures::future::join_all(peers.iter().map(|p| one(*p))).await.into_iter().filter(|ok| *ok).count()
    }

    /// Sends every revocation still in force to `peers` (suppliers just hired: they never had them).
    pub(crate) async fn push_revocations(&self, peers: &[PeerId]) {
        let now = unix_now();
        let Ok(rows) = self.node().db().records::<Expiry>(REVOKED, None, usize::MAX) else { return };
        let (live, expired): (Vec<_>, Vec<_>) = rows
            .into_iter()
            .filter_map(|(k, e)| Some((<[u8; 16]>::try_from(k.as_slice()).ok()?, e.0)))
            .partition(|(_, e)| e.saturating_add(crate::proto::grant::SKEW_SECS) >= now);
        if !expired.is_empty() {
            let _ = self.node().db().write(|tx| {
                let mut t = tx.table(REVOKED)?;
                for (id, _) in &expired {
                    t.remove(id)?;
                }
                Ok(())
            });
        }
        if !live.is_empty() {
            self.send_revocations(peers, &live).await;
        }
    }

    /// The manifest of share key `key` of `owner`, fetched from `owner`'s suppliers.
    async fn manifest(self: &Arc<Self>, owner: PeerId, key: &[u8]) -> Result<Manifest> {
        if key.len() > MAX_CAPABILITY_BYTES {
            bail!("share key of {} bytes is over the limit", key.len());
        }
        let cache_key = *blake3::hash(&[owner.to_bytes().as_slice(), key].concat()).as_bytes();
        let bytes = match self.node().db().record::<Cached>(MANIFESTS, &cache_key)? {
            Some(c) => c.0,
            None => {
                let bytes = self.fetch_manifest(owner, key).await?;
                if bytes.len() <= MAX_CACHED_MANIFEST {
                    let cached = Cached(bytes);
                    self.node().db().write(|tx| tx.table(MANIFESTS)?.put(&cache_key, &cached))?;
                    cached.0
                } else {
                    bytes
                }
            }
        };
        let manifest = Manifest::decode(&bytes)?;
        if manifest.owner != owner.to_bytes() {
            bail!("the share's manifest names another owner");
        }
        if manifest.versions.len() > MAX_SHARED_VERSIONS {
            bail!("the share's manifest lists too many versions");
        }
        Ok(manifest)
    }

    /// The bytes of the manifest of share key `key` of `owner`, fetched from `owner`'s suppliers.
    async fn fetch_manifest(self: &Arc<Self>, owner: PeerId, key: &[u8]) -> Result<Vec<u8>> {
        let key: ShareKey = postcard::from_bytes(key).context("malformed share key")?;
        let m = &key.manifest;
        let single = m.entries.len() == 1 && matches!(m.entries[0].kind, EntryKind::File { .. });
        if !single || m.layout.n as usize != m.suppliers.len() || m.total_bytes > MAX_MANIFEST_BYTES as u64 {
            bail!("the share key does not describe a manifest");
        }
        let scratch = crate::service::vault::Scratch::new(self)?;
        let peers = self.peers_of_owner(owner, m).await;
        let vkeys = VersionKeys::from_secrets(m.id, key.secrets);
        let via = Via::Shared { owner, grants: Arc::new(key.grants) };
        self.restore_version(
            "manifest",
            key.manifest.clone(),
            vkeys,
            peers,
            via,
            scratch.path(),
            bitdust_node::Progress::new(),
        )
        .await
        .context("fetching the share's manifest (a revoked share is refused)")?;
        let file = std::fs::read_dir(scratch.path())?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("the share's manifest restored no file"))?;
        let bytes = std::fs::read(&file)?;
        if bytes.len() > MAX_MANIFEST_BYTES {
            bail!("the share's manifest is over the size limit");
        }
        Ok(bytes)
    }

    /// `owner`'s signed supplier list in the DHT (position, peer id bytes); empty if it cannot be found.
    async fn owner_suppliers(&self, owner: PeerId) -> Vec<(u16, Vec<u8>)> {
        use bitdust_core::record::{RecordKind, SupplierList};
        match self.node().network().get_record(RecordKind::Suppliers, owner).await {
            Ok(rec) => SupplierList::decode(&rec.payload).map(|l| l.suppliers).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Per position, who may hold `owner`'s fragments of `v`: its current supplier there (its signed supplier list
    /// in the DHT), then the one at backup time.
    async fn peers_of_owner(&self, owner: PeerId, v: &Version) -> Vec<Vec<PeerId>> {
        peers_by_position(&self.owner_suppliers(owner).await, v.layout.n, &v.suppliers)
    }

    /// The pack sets, chunk places and snapshots that open the incremental versions `snapshots` (numbered as
    /// shared) of a backup (of a single file if `single_file`): every tree, chunk list and file chunk they use is
    /// located, and each set keeps only the blocks holding one.
    ///
    /// # Errors
    /// If a tree cannot be read or a chunk is in no pack set.
    async fn shared_packs(
        self: &Arc<Self>,
        catalog: &Catalog,
        single_file: bool,
        snapshots: Vec<(u32, Snapshot)>,
    ) -> Result<SharedPacks> {
        self.sync_chunk_index(catalog).await?;
        let reader = ChunkReader::new(self, catalog);
        let snaps: Vec<Snapshot> = snapshots.iter().map(|(_, s)| s.clone()).collect();
        let used = reader.used_chunks(&snaps).await.context("reading the shared versions' trees")?;
        let mut chunks = Vec::with_capacity(used.ids.len());
        let mut blocks: std::collections::HashSet<BlockKey> = std::collections::HashSet::new();
        for id in used.ids {
            let at = reader
                .locate(&id)?
                .ok_or_else(|| anyhow!("chunk {} of a shared version is in no pack set", hex::encode(&id[..8])))?;
            blocks.insert((at.set, at.block));
            chunks.push((id, at));
        }
        chunks.sort_unstable_by_key(|(id, _)| *id);
        let master = self.node().keys().master();
        let sets = catalog
            .packs
            .iter()
            .filter(|set| set.blocks.iter().any(|b| blocks.contains(&(set.id, b.block_id))))
            .map(|set| {
                let mut set = set.clone();
                set.blocks.retain(|b| blocks.contains(&(set.id, b.block_id)));
                set.index.clear();
                SharedSet { id_key: VersionKeys::derive(master, set.id).secrets().1, set }
            })
            .collect();
        Ok(SharedPacks { single_file, snapshots, sets, chunks })
    }

    /// A reader of `owner`'s shared pack sets `packs` through `grants`.
    ///
    /// # Errors
    /// If a set's layout is not a valid one or does not match its suppliers.
    async fn shared_reader(
        self: &Arc<Self>,
        owner: PeerId,
        packs: &SharedPacks,
        grants: Vec<SignedAccessGrant>,
    ) -> Result<ChunkReader> {
        let list = self.owner_suppliers(owner).await;
        let mut sets = Vec::with_capacity(packs.sets.len());
        for s in &packs.sets {
            let l = s.set.layout;
            if Layout::new(l.k, l.n).is_err() || l.n as usize != s.set.suppliers.len() {
                bail!("a shared pack set's layout {l} does not match its {} suppliers", s.set.suppliers.len());
            }
            let peers = peers_by_position(&list, l.n, &s.set.suppliers);
            sets.push((s.set.clone(), VersionKeys::from_secrets(s.set.id, ([0; 32], s.id_key)), peers));
        }
        let via = Via::Shared { owner, grants: Arc::new(grants) };
        Ok(ChunkReader::shared(self, sets, via, packs.chunks.iter().copied().collect()))
    }

    /// See [`bitdust_node::Vault::open_share`].
    pub(crate) async fn open_share(
        self: &Arc<Self>,
        owner: PeerId,
        key: &[u8],
        version: Option<u32>,
    ) -> Result<bitdust_api::SharedListing> {
        let mut manifest = self.manifest(owner, key).await.map_err(unavailable)?;
        let number = pick(&manifest, version)?.version.number;
        let entries = match manifest.packs.as_ref().and_then(|p| p.snapshot(number).map(|s| (p, s))) {
            Some((packs, snapshot)) => {
                let grants = std::mem::take(&mut manifest.grants);
                let reader = self.shared_reader(owner, packs, grants).await?;
                let flat = self.flatten(&reader, snapshot, packs.single_file, b"").await.map_err(unavailable)?;
                flat.entries.iter().map(api_entry).collect()
            }
            None => pick(&manifest, version)?.version.entries.iter().map(api_entry).collect(),
        };
        let snapshot = |n: u32| manifest.packs.as_ref().and_then(|p| p.snapshot(n));
        Ok(bitdust_api::SharedListing {
            owner: owner.to_string(),
            backup: manifest.backup.clone(),
            versions: manifest.versions.iter().map(|s| version_info(&s.version, snapshot(s.version.number))).collect(),
            version: number,
            entries,
        })
    }

    /// See [`bitdust_node::Vault::restore_share`].
    pub(crate) async fn restore_share(
        self: &Arc<Self>,
        owner: PeerId,
        key: &[u8],
        version: Option<u32>,
        target: &Path,
        force: bool,
    ) -> Result<bitdust_api::RestoreReport> {
        let mut manifest = self.manifest(owner, key).await.map_err(unavailable)?;
        let number = pick(&manifest, version)?.version.number;
        let index = manifest.versions.iter().position(|s| s.version.number == number).unwrap_or_default();
        let chosen = manifest.versions.swap_remove(index);
        let v = chosen.version;
        if let Some(packs) = manifest.packs.take().filter(|p| p.snapshot(number).is_some()) {
            crate::service::customer::prepare_target(target, force)
                .map_err(|e| ShareError::BadRequest(format!("{e:#}")))?;
            let reader = self.shared_reader(owner, &packs, std::mem::take(&mut manifest.grants)).await?;
            let snapshot = packs.snapshot(number).cloned().ok_or_else(|| anyhow!("the shared version is gone"))?;
            return self
                .restore_snapshot(
                    Arc::new(reader),
                    &manifest.backup,
                    number,
                    &snapshot,
                    packs.single_file,
                    b"",
                    target,
                    bitdust_node::Progress::new(),
                )
                .await
                .map_err(unavailable);
        }
        if v.layout.n as usize != v.suppliers.len() {
            bail!("the shared version's layout does not match its suppliers");
        }
        crate::service::customer::prepare_target(target, force)
            .map_err(|e| ShareError::BadRequest(format!("{e:#}")))?;
        let peers = self.peers_of_owner(owner, &v).await;
        let vkeys = VersionKeys::from_secrets(v.id, chosen.secrets);
        let via = Via::Shared { owner, grants: Arc::new(std::mem::take(&mut manifest.grants)) };
        let name = manifest.backup.clone();
        self.restore_version(&name, v, vkeys, peers, via, target, bitdust_node::Progress::new())
            .await
            .map_err(unavailable)
    }
}

/// Version `version` of `manifest` (the latest if `None`).
fn pick(manifest: &Manifest, version: Option<u32>) -> Result<&SharedVersion, ShareError> {
    match version {
        Some(n) => manifest
            .versions
            .iter()
            .find(|s| s.version.number == n)
            .ok_or_else(|| ShareError::NotFound(format!("version {n} of {} is not shared", manifest.backup))),
        None => manifest
            .versions
            .iter()
            .max_by_key(|s| s.version.number)
            .ok_or_else(|| ShareError::NotFound(format!("{} shares no version", manifest.backup))),
    }
}

/// A failure to get what is shared from the owner's suppliers, as [`ShareError::Unavailable`].
fn unavailable(e: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(ShareError::Unavailable(format!("{e:#}")))
}
