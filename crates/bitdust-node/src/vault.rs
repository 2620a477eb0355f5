//! The user's own objects on its suppliers, for wings other than the one that stores them.
//!
//! A wing that keeps state a new device must get back from the private key alone (the messages wing's
//! contacts and history) puts it in the [`Vault`] as named objects. The storage wing provides the vault: each
//! object goes through the storage pipeline (compressed, encrypted under keys derived from the master secret,
//! erasure-coded onto the user's suppliers) and is listed in the sealed catalog, which `init --from-key` recovers.
//! Wings do not import each other: the storage wing registers itself here ([`crate::Node::set_vault`]) and the
//! others find it through [`crate::Node::vault`].

use anyhow::Result;
use async_trait::async_trait;
use bitdust_core::PeerId;

/// The largest object a vault takes, in bytes.
pub const MAX_OBJECT_BYTES: usize = 64 * 1024 * 1024;

/// Named objects kept encrypted on the user's suppliers.
///
/// Names are `/`-separated paths of `a-z 0-9 _ - .` (a wing's objects start with its name: `messages/log/…`), at
/// most 200 bytes.
#[async_trait]
pub trait Vault: Send + Sync {
    /// Stores `data` (at most [`MAX_OBJECT_BYTES`]) as object `name`, replacing what it held; returns when the
    /// catalog that lists it is on the suppliers.
    ///
    /// # Errors
    /// A bad name, data over the limit, too few suppliers online, or an upload failure (the old object is then
    /// kept).
    async fn put(&self, name: &str, data: Vec<u8>) -> Result<()>;

    /// Object `name`, or `None` if there is none.
    ///
    /// # Errors
    /// If it is listed but cannot be fetched (too many of its fragments lost or unreachable).
    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// The names of the objects that start with `prefix`, sorted.
    ///
    /// # Errors
    /// The local database.
    fn list(&self, prefix: &str) -> Result<Vec<String>>;

    /// Deletes objects `names` (from the catalog first, then their fragments from the suppliers, best effort).
    ///
    /// # Errors
    /// If the new catalog cannot be stored on any supplier.
    async fn delete(&self, names: &[String]) -> Result<()>;

    /// Stores the file at `path` on the user's suppliers for `grantee` ("send through storage"): returns a
    /// capability (opaque bytes, at most [`MAX_CAPABILITY_BYTES`]) with which `grantee`, and only it, fetches the file
    /// from them until `expires_unix`, while the user is offline. The upload is kept like a backup under `name`
    /// until [`Vault::unshare`].
    ///
    /// # Errors
    /// An unreadable file, too few suppliers, or a file too large for a capability.
    async fn share_file(
        &self,
        name: &str,
        path: &std::path::Path,
        grantee: PeerId,
        expires_unix: u64,
    ) -> Result<Vec<u8>>;

    /// Forgets what [`Vault::share_file`] stored under `name` (its fragments are deleted).
    ///
    /// # Errors
    /// If the new catalog cannot be stored on any supplier.
    async fn unshare(&self, name: &str) -> Result<()>;

    /// Fetches the file of `capability` (from [`Vault::share_file`] of `owner`) from `owner`'s suppliers into the
    /// folder `target` (created, empty); returns the file's path.
    ///
    /// # Errors
    /// A malformed capability, or too many fragments unreachable or refused.
    async fn fetch_shared(
        &self,
        owner: PeerId,
        capability: &[u8],
        target: &std::path::Path,
    ) -> Result<std::path::PathBuf>;

    /// Shares backup `backup` (version `version`, or every version it has now; `NAME/PATH` names a file or folder
    /// inside backup `NAME`, shared as a copy of that version, the latest if `None`) with `grantee` (anyone if `None`)
    /// until `expires_unix`, under access grant id `grant_id`: returns a share key (opaque bytes, at most
    /// [`MAX_CAPABILITY_BYTES`]) with which the grantee lists and restores it from the user's suppliers. The key
    /// names a small manifest stored on the suppliers (the versions, their keys and the grants); the grantee
    /// fetches it, and the data, under grants bound to it, which [`Vault::revoke_grants`] revokes.
    ///
    /// # Errors
    /// No such backup, version or path, too few suppliers to store the manifest.
    async fn share_backup(
        &self,
        backup: &str,
        version: Option<u32>,
        grantee: Option<PeerId>,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>>;

    /// Backs up the file or folder at `path` as a hidden backup of its own and shares it with `grantee` (a write to
    /// `grantee`'s shared backup: see [`Vault::ingest_share`]); returns the share key.
    ///
    /// # Errors
    /// An unreadable path, too few suppliers.
    async fn share_path(
        &self,
        path: &std::path::Path,
        grantee: PeerId,
        grant_id: [u8; 16],
        expires_unix: u64,
    ) -> Result<Vec<u8>>;

    /// Takes a writer's contribution (its share key `key`, from [`Vault::share_path`] of `writer`) into backup
    /// `backup` as a new version: fetched from the writer's suppliers, then backed up like any version. Returns the
    /// version number.
    ///
    /// # Errors
    /// No such backup, the contribution cannot be fetched, too few suppliers.
    async fn ingest_share(&self, writer: PeerId, key: &[u8], backup: &str) -> Result<u32>;

    /// Revokes access grants `grants` (id, expiry in Unix seconds) on every supplier, and forgets their manifests:
    /// returns (suppliers that confirmed, suppliers asked). Suppliers hired later are told too.
    ///
    /// # Errors
    /// The local database.
    async fn revoke_grants(&self, grants: &[([u8; 16], u64)]) -> Result<(usize, usize)>;

    /// Lists what share key `key` of `owner` gives: the backup, its versions, and the entries of `version` (the
    /// latest if `None`), fetched from `owner`'s suppliers.
    ///
    /// # Errors
    /// A malformed key, a manifest the suppliers refuse (a revoked grant) or cannot give, no such version.
    async fn open_share(&self, owner: PeerId, key: &[u8], version: Option<u32>) -> Result<bitdust_api::SharedListing>;

    /// Restores `version` (the latest if `None`) of what share key `key` of `owner` gives into `target` (empty,
    /// unless `force`).
    ///
    /// # Errors
    /// As [`Vault::open_share`], a bad target, too many fragments refused or unreachable.
    async fn restore_share(
        &self,
        owner: PeerId,
        key: &[u8],
        version: Option<u32>,
        target: &std::path::Path,
        force: bool,
    ) -> Result<bitdust_api::RestoreReport>;
}

/// Why a share operation of the [`Vault`] was refused, when it is the request's fault or the owner's suppliers'
/// (the API answers 404, 400 or 503; any other error is a failure of this node).
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// No such backup, version or share.
    #[error("{0}")]
    NotFound(String),
    /// A bad target or argument.
    #[error("{0}")]
    BadRequest(String),
    /// The owner's suppliers refused (a revoked share) or could not give what is shared.
    #[error("{0}")]
    Unavailable(String),
}

/// The largest capability [`Vault::share_file`] returns, in bytes (it travels inside a message).
pub use bitdust_core::MAX_CAPABILITY_BYTES;

/// Checks an object name (see [`Vault`]).
///
/// # Errors
/// A message saying what is wrong with it.
pub fn check_name(name: &str) -> Result<()> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.');
    if name.is_empty() || name.len() > 200 {
        anyhow::bail!("vault object name {name:?} must be 1 to 200 bytes");
    }
    if name.split('/').any(|part| part.is_empty() || part == "." || part == ".." || !part.chars().all(ok_char)) {
        anyhow::bail!("vault object name {name:?} must be /-separated parts of a-z 0-9 _ - .");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["messages/log/00000001", "a", "x.y/z-w_1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "/a", "a/", "a//b", "../a", "A", "a b", "a@1", &"x".repeat(201)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
