//! The storage wing's [`Vault`]: other wings' objects kept like backups, through the same pipeline.
//!
//! Object `name` is the single-file backup `vault/<name>` of the catalog (a name no user backup can have: those
//! come from file names, in which `/` is replaced), one version at a time: a put stores a new version, then
//! forgets the old ones and deletes their fragments. So an object is compressed, encrypted under keys derived
//! from the master secret, erasure-coded over the suppliers, rebuilt by maintenance like any backup, and
//! recovered with the catalog by `init --from-key`. Listings of backups leave vault objects out
//! ([`is_vault_backup`]).
//!
//! The bytes pass through a scratch folder of the home (`tmp/`, owner-only like the rest of it), removed when the
//! put or get ends and at the next start if a crash left it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use bitdust_core::PeerId;
use bitdust_node::vault::{check_name, MAX_CAPABILITY_BYTES, MAX_OBJECT_BYTES};
use bitdust_node::{Progress, Vault};

use crate::proto::catalog::Version;
use crate::proto::grant::SignedGrant;
use crate::proto::pipeline::VersionKeys;
use crate::service::customer::restore::Via;
use crate::service::Storage;

/// The catalog name prefix of vault objects.
pub const VAULT_PREFIX: &str = "vault/";
/// The catalog name prefix of files shared through storage.
pub const SHARED_PREFIX: &str = "shared/";

/// Whether catalog backup `name` is a vault object or a shared file (not one of the user's backups).
pub fn is_vault_backup(name: &str) -> bool {
    name.starts_with(VAULT_PREFIX) || name.starts_with(SHARED_PREFIX)
}

/// What a grantee needs to fetch a shared file: the version (layout, suppliers, blocks), its keys, the grant.
#[derive(serde::Serialize, serde::Deserialize)]
struct Capability {
    version: Version,
    secrets: ([u8; 32], [u8; 32]),
    grant: SignedGrant,
}

/// A scratch folder under the home's `tmp/`, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// Its path.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }

    pub(crate) fn new(storage: &Storage) -> Result<Self> {
        let dir = storage.node().home().path("tmp").join(format!("vault-{:032x}", rand::random::<u128>()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes scratch folders a crash left in the home's `tmp/`.
pub(crate) fn clean_scratch(storage: &Storage) {
    let tmp = storage.node().home().path("tmp");
    let Ok(dir) = std::fs::read_dir(&tmp) else { return };
    for entry in dir.flatten() {
        if entry.file_name().to_string_lossy().starts_with("vault-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Storage {
    fn arc(&self) -> Result<Arc<Storage>> {
        self.this.upgrade().ok_or_else(|| anyhow!("the storage wing is stopping"))
    }

    /// Removes versions `numbers` of backup `name` from the catalog (the backup too if none is left), stores the
    /// new catalog on the suppliers, then deletes those versions' fragments (best effort). Returns the number of
    /// versions removed and of fragments the suppliers confirmed deleted.
    ///
    /// # Errors
    /// The database, or no supplier took the new catalog.
    pub(crate) async fn forget_versions(&self, name: &str, numbers: &[u32]) -> Result<(usize, usize)> {
        let removed: Vec<Version> = {
            let _g = self.customer_lock.lock().await;
            let mut catalog = self.catalog()?;
            let Some(backup) = catalog.backups.iter_mut().find(|b| b.name == name) else { return Ok((0, 0)) };
            let (gone, kept): (Vec<Version>, Vec<Version>) =
                backup.versions.drain(..).partition(|v| numbers.contains(&v.number));
            backup.versions = kept;
            if gone.is_empty() {
                return Ok((0, 0));
            }
            // an incremental version's chunks stay in their packs until prune finds no kept version uses them
            catalog.snapshots.retain(|s| !gone.iter().any(|v| v.id == s.version_id));
            catalog.backups.retain(|b| !b.versions.is_empty());
            catalog.revision += 1;
            self.save_catalog(&catalog)?;
            let peers: Vec<PeerId> = self.suppliers()?.iter().filter_map(|s| s.peer().ok()).collect();
            self.push_catalog(&catalog, &peers).await?;
            gone
        };
        let mut total = 0;
        for v in &removed {
            let peers: Vec<Vec<PeerId>> = (0..v.layout.n).map(|p| self.peers_for(&v.suppliers, p)).collect();
            let vkeys = VersionKeys::derive(self.node().keys().master(), v.id);
            let blocks: Vec<[u8; 32]> = v.blocks.iter().map(|b| b.block_id).collect();
            let deleted = self.delete_fragments_of(&peers, &vkeys, &blocks).await;
            total += deleted;
            tracing::debug!(backup = name, version = v.number, deleted, "forgotten version's fragments deleted");
        }
        Ok((removed.len(), total))
    }
}

impl Storage {
    /// Stores `data` as the one file (`file_name`, its source `source`) of hidden backup `backup`, then forgets
    /// the backup's older versions (a failure to forget them is logged: they go with the next store). Returns the
    /// new version's number.
    ///
    /// # Errors
    /// The scratch folder, too few suppliers.
    pub(crate) async fn store_one_file(
        self: &Arc<Self>,
        backup: &str,
        file_name: &str,
        source: Vec<u8>,
        data: &[u8],
    ) -> Result<u32> {
        let scratch = Scratch::new(self)?;
        let file = scratch.0.join(file_name);
        std::fs::write(&file, data).with_context(|| format!("writing {}", file.display()))?;
        let report = self
            .backup_as(
                &file,
                Some((backup.to_string(), source)),
                &crate::service::archive::Excludes::default(),
                Progress::new(),
            )
            .await?;
        drop(scratch);
        let older: Vec<u32> = self
            .catalog()?
            .backup(backup)
            .map(|b| b.versions.iter().map(|v| v.number).filter(|n| *n != report.version).collect())
            .unwrap_or_default();
        if !older.is_empty() {
            if let Err(e) = self.forget_versions(backup, &older).await {
                tracing::warn!(backup, error = %format!("{e:#}"), "older versions not forgotten yet");
            }
        }
        Ok(report.version)
    }

    /// Forgets every version of backup `name` ([`Storage::forget_versions`]); nothing if there is none.
    async fn forget_backup(&self, name: &str) -> Result<()> {
        let numbers: Vec<u32> =
            self.catalog()?.backup(name).map(|b| b.versions.iter().map(|v| v.number).collect()).unwrap_or_default();
        self.forget_versions(name, &numbers).await?;
        Ok(())
    }
}

#[async_trait]
impl Vault for Storage {
    async fn put(&self, name: &str, data: Vec<u8>) -> Result<()> {
        check_name(name)?;
        if data.len() > MAX_OBJECT_BYTES {
            bail!("vault object {name} of {} bytes is over the {MAX_OBJECT_BYTES}-byte limit", data.len());
        }
        let backup = format!("{VAULT_PREFIX}{name}");
        self.arc()?.store_one_file(&backup, "object", format!("vault:{name}").into_bytes(), &data).await?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>> {
        check_name(name)?;
        let backup = format!("{VAULT_PREFIX}{name}");
        if self.catalog()?.backup(&backup).is_none() {
            return Ok(None);
        }
        let this = self.arc()?;
        let scratch = Scratch::new(self)?;
        this.restore(&backup, None, &scratch.0, false, Progress::new())
            .await
            .with_context(|| format!("fetching vault object {name}"))?;
        let file = std::fs::read_dir(&scratch.0)?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow!("vault object {name} restored no file"))?;
        let data = std::fs::read(&file)?;
        if data.len() > MAX_OBJECT_BYTES {
            bail!("vault object {name} is over the size limit");
        }
        Ok(Some(data))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let full = format!("{VAULT_PREFIX}{prefix}");
        let mut names: Vec<String> = self
            .catalog()?
            .backups
            .iter()
            .filter(|b| b.name.starts_with(&full))
            .map(|b| b.name[VAULT_PREFIX.len()..].to_string())
            .collect();
        names.sort();
        Ok(names)
    }

    async fn share_file(
        &self,
        name: &str,
        path: &std::path::Path,
        grantee: PeerId,
        expires_unix: u64,
    ) -> Result<Vec<u8>> {
        check_name(name)?;
        let this = self.arc()?;
        let backup = format!("{SHARED_PREFIX}{name}");
        let meta = std::fs::metadata(path).with_context(|| format!("cannot send {}", path.display()))?;
        if !meta.is_file() {
            bail!("cannot send {}: not a file", path.display());
        }
        let named = (backup.clone(), format!("shared:{name}").into_bytes());
        let report =
            this.backup_as(path, Some(named), &crate::service::archive::Excludes::default(), Progress::new()).await?;
        let version = self
            .catalog()?
            .backup(&backup)
            .and_then(|b| b.versions.iter().find(|v| v.number == report.version).cloned())
            .ok_or_else(|| anyhow!("the shared file's version is not in the catalog"))?;
        let vkeys = VersionKeys::derive(self.node().keys().master(), version.id);
        let fragments: Vec<[u8; 32]> = version
            .blocks
            .iter()
            .flat_map(|b| (0..version.layout.n).map(|p| vkeys.fragment_id(&b.block_id, p)).collect::<Vec<_>>())
            .collect();
        let capability = SignedGrant::sign(self.node().keys(), &grantee, fragments, expires_unix)
            .map_err(anyhow::Error::from)
            .and_then(|grant| {
                let c = Capability { version, secrets: vkeys.secrets(), grant };
                Ok(postcard::to_stdvec(&c)?)
            })
            .and_then(|bytes| {
                if bytes.len() > MAX_CAPABILITY_BYTES {
                    bail!("{} is too large to send through storage with this layout", path.display());
                }
                Ok(bytes)
            });
        if capability.is_err() {
            let _ = self.forget_versions(&backup, &[report.version]).await;
        }
        capability
    }

    async fn unshare(&self, name: &str) -> Result<()> {
        check_name(name)?;
        self.forget_backup(&format!("{SHARED_PREFIX}{name}")).await
    }

    async fn fetch_shared(&self, owner: PeerId, capability: &[u8], target: &std::path::Path) -> Result<PathBuf> {
        if capability.len() > MAX_CAPABILITY_BYTES {
            bail!("capability of {} bytes is over the limit", capability.len());
        }
        let c: Capability = postcard::from_bytes(capability).context("malformed capability")?;
        let v = c.version;
        let single = v.entries.len() == 1 && matches!(v.entries[0].kind, crate::proto::catalog::EntryKind::File { .. });
        if !single
            || v.layout.n as usize != v.suppliers.len()
            || v.blocks.len() > crate::proto::grant::MAX_GRANT_FRAGMENTS
        {
            bail!("the capability does not describe one file");
        }
        let name = String::from_utf8_lossy(&v.entries[0].path).into_owned();
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            bail!("the capability names no usable file");
        }
        let this = self.arc()?;
        crate::service::customer::prepare_target(target, false)?;
        let peers: Vec<Vec<PeerId>> =
            v.suppliers.iter().map(|b| PeerId::from_bytes(b).map(|p| vec![p]).unwrap_or_default()).collect();
        let vkeys = VersionKeys::from_secrets(v.id, c.secrets);
        let via = Via::Granted { owner, grant: c.grant };
        this.restore_version(&name, v, vkeys, peers, via, target, Progress::new()).await?;
        Ok(target.join(name))
    }

    async fn share_backup(
        &self,
        backup: &str,
        version: Option<u32>,
        grantee: Option<PeerId>,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>> {
        self.arc()?.share_backup(backup, version, grantee, grant_id, expires_unix).await
    }

    async fn share_path(
        &self,
        path: &std::path::Path,
        grantee: PeerId,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>> {
        self.arc()?.share_path(path, grantee, grant_id, expires_unix).await
    }

    async fn ingest_share(&self, writer: PeerId, key: &[u8], backup: &str) -> Result<u32> {
        self.arc()?.ingest_share(writer, key, backup).await
    }

    async fn revoke_grants(&self, grants: &[([u8; 16], u64)]) -> Result<(usize, usize)> {
        Storage::revoke_grants(self, grants).await
    }

    async fn open_share(&self, owner: PeerId, key: &[u8], version: Option<u32>) -> Result<bitdust_api::SharedListing> {
        self.arc()?.open_share(owner, key, version).await
    }

    async fn restore_share(
        &self,
        owner: PeerId,
        key: &[u8],
        version: Option<u32>,
        target: &std::path::Path,
        force: bool,
    ) -> Result<bitdust_api::RestoreReport> {
        self.arc()?.restore_share(owner, key, version, target, force).await
    }

    async fn delete(&self, names: &[String]) -> Result<()> {
        for name in names {
            check_name(name)?;
            self.forget_backup(&format!("{VAULT_PREFIX}{name}")).await?;
        }
        Ok(())
    }
}
