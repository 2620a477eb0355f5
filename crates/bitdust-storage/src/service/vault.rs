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
use bitdust_node::vault::{check_name, MAX_OBJECT_BYTES};
use bitdust_node::{Progress, Vault};

use crate::proto::catalog::Version;
use crate::proto::pipeline::VersionKeys;
use crate::service::Storage;

/// The catalog name prefix of vault objects.
pub const VAULT_PREFIX: &str = "vault/";

/// Whether catalog backup `name` is a vault object (not one of the user's backups).
pub fn is_vault_backup(name: &str) -> bool {
    name.starts_with(VAULT_PREFIX)
}

/// A scratch folder under the home's `tmp/`, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(storage: &Storage) -> Result<Self> {
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
    /// versions removed.
    ///
    /// # Errors
    /// The database, or no supplier took the new catalog.
    pub(crate) async fn forget_versions(&self, name: &str, numbers: &[u32]) -> Result<usize> {
        let removed: Vec<Version> = {
            let _g = self.customer_lock.lock().await;
            let mut catalog = self.catalog()?;
            let Some(backup) = catalog.backups.iter_mut().find(|b| b.name == name) else { return Ok(0) };
            let (gone, kept): (Vec<Version>, Vec<Version>) =
                backup.versions.drain(..).partition(|v| numbers.contains(&v.number));
            backup.versions = kept;
            if gone.is_empty() {
                return Ok(0);
            }
            catalog.backups.retain(|b| !b.versions.is_empty());
            catalog.revision += 1;
            self.save_catalog(&catalog)?;
            let peers: Vec<PeerId> = self.suppliers()?.iter().filter_map(|s| s.peer().ok()).collect();
            self.push_catalog(&catalog, &peers).await?;
            gone
        };
        for v in &removed {
            let peers: Vec<Vec<PeerId>> = (0..v.layout.n).map(|p| self.peers_for(v, p)).collect();
            let vkeys = VersionKeys::derive(self.node().keys().master(), v.id);
            let blocks: Vec<[u8; 32]> = v.blocks.iter().map(|b| b.block_id).collect();
            let deleted = self.delete_fragments_of(&peers, &vkeys, &blocks).await;
            tracing::debug!(backup = name, version = v.number, deleted, "forgotten version's fragments deleted");
        }
        Ok(removed.len())
    }
}

#[async_trait]
impl Vault for Storage {
    async fn put(&self, name: &str, data: Vec<u8>) -> Result<()> {
        check_name(name)?;
        if data.len() > MAX_OBJECT_BYTES {
            bail!("vault object {name} of {} bytes is over the {MAX_OBJECT_BYTES}-byte limit", data.len());
        }
        let this = self.arc()?;
        let scratch = Scratch::new(self)?;
        let file = scratch.0.join("object");
        std::fs::write(&file, &data).with_context(|| format!("writing {}", file.display()))?;
        let backup = format!("{VAULT_PREFIX}{name}");
        let named = (backup.clone(), format!("vault:{name}").into_bytes());
        let report = this.backup_as(&file, Some(named), Progress::new()).await?;
        drop(scratch);
        let older: Vec<u32> = self
            .catalog()?
            .backup(&backup)
            .map(|b| b.versions.iter().map(|v| v.number).filter(|n| *n != report.version).collect())
            .unwrap_or_default();
        if !older.is_empty() {
            if let Err(e) = self.forget_versions(&backup, &older).await {
                tracing::warn!(object = name, error = %format!("{e:#}"), "older versions not forgotten yet");
            }
        }
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

    async fn delete(&self, names: &[String]) -> Result<()> {
        for name in names {
            check_name(name)?;
            let backup = format!("{VAULT_PREFIX}{name}");
            let numbers: Vec<u32> = self
                .catalog()?
                .backup(&backup)
                .map(|b| b.versions.iter().map(|v| v.number).collect())
                .unwrap_or_default();
            self.forget_versions(&backup, &numbers).await?;
        }
        Ok(())
    }
}
