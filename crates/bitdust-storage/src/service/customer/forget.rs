//! `forget`: remove the versions of a backup that a keep policy does not keep ([`crate::proto::policy`], restic's
//! meaning), and free their space on the suppliers. A version of catalog format 1 owns its blocks alone, so its
//! fragments are deleted at once (restic's `forget --prune` in one step); what a supplier does not confirm goes
//! when its contract ends.

use std::sync::Arc;

use anyhow::Result;
use bitdust_api::{ForgetReport, KeptVersion};

use crate::proto::policy::{self, KeepPolicy};
use crate::service::Storage;

/// Why `forget` refuses.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    /// No such backup (hidden ones included: they are not the user's to forget).
    #[error("no backup named {0:?}")]
    Unknown(String),
    /// No rule that keeps anything (none, or all 0): it would remove every version.
    #[error("give at least one --keep-* rule above 0: without one, forget would remove every version")]
    NoPolicy,
}

impl Storage {
    /// Applies `keep` to backup `name`'s versions; unless `dry_run`, removes the others from the catalog (stored
    /// on the suppliers) and deletes their fragments. A backup running meanwhile is not touched (its version is
    /// not in the decision); a restore of a removed version fails (noted for the format-2 work: versions in use).
    ///
    /// # Errors
    /// [`ForgetError`], the database, or no supplier took the new catalog.
    pub async fn forget(self: &Arc<Self>, name: &str, keep: &KeepPolicy, dry_run: bool) -> Result<ForgetReport> {
        let catalog = self.catalog()?;
        let backup = catalog
            .backup(name)
            .filter(|b| !crate::service::vault::is_vault_backup(&b.name))
            .ok_or_else(|| ForgetError::Unknown(name.to_string()))?;
        if keep.is_empty() {
            return Err(ForgetError::NoPolicy.into());
        }
        let versions: Vec<(u32, u64)> = backup.versions.iter().map(|v| (v.number, v.created_unix)).collect();
        let decision = policy::apply(keep, &versions);
        let created = |n: u32| backup.versions.iter().find(|v| v.number == n).map_or(0, |v| v.created_unix);
        let freed_bytes = backup
            .versions
            .iter()
            .filter(|v| decision.remove.contains(&v.number))
            .map(crate::proto::catalog::Version::stored_bytes)
            .sum();
        let kept = decision
            .keep
            .iter()
            .map(|(n, rules)| KeptVersion {
                version: *n,
                created_unix: created(*n),
                reasons: rules.iter().map(|r| r.name().to_string()).collect(),
            })
            .collect();
        let mut fragments_deleted = 0;
        if !dry_run && !decision.remove.is_empty() {
            (_, fragments_deleted) = self.forget_versions(name, &decision.remove).await?;
        }
        Ok(ForgetReport {
            backup: name.to_string(),
            kept,
            removed: decision.remove,
            freed_bytes,
            fragments_deleted,
            dry_run,
        })
    }
}
