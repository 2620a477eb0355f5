//! What a share's owner tells a grantee, inside its Olm session (`Body::Share`, `Body::Unshare`): the share key
//! (opaque to this wing: the storage wing's manifest key, the storage wing's `Vault::share_backup`) and, when the
//! owner revokes, that it did (the suppliers' refusal is what cuts access; this only updates the grantee's list).

use serde::{Deserialize, Serialize};

/// Most bytes of a backup name in an offer.
pub const MAX_BACKUP_NAME_BYTES: usize = 256;

/// A share given to the recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareOffer {
    /// The share's id (the owner's `shares` and `revoke` name it).
    pub id: [u8; 16],
    /// The backup's name, as the owner calls it (at most [`MAX_BACKUP_NAME_BYTES`]).
    pub backup: String,
    /// The version shared, or every version the backup had.
    pub version: Option<u32>,
    /// The share key (at most [`bitdust_core::MAX_CAPABILITY_BYTES`]).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// Whether the recipient may add versions ([`Contribution`]).
    pub write: bool,
}

/// A version a grantee with write access adds to a share: the key of the tree it stored on its own suppliers for
/// the owner. The owner takes it only from a grantee its share lets write; the sender is its author (the Olm session
/// authenticates it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The share's id.
    pub share: [u8; 16],
    /// The share key of the contributed tree (at most [`bitdust_core::MAX_CAPABILITY_BYTES`]).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

/// Checks an offer's sizes (what a peer controls).
///
/// # Errors
/// A message naming the field over its limit.
pub fn check_offer(offer: &ShareOffer) -> Result<(), String> {
    if offer.backup.is_empty() || offer.backup.len() > MAX_BACKUP_NAME_BYTES {
        return Err(format!("a share of a backup named with {} bytes", offer.backup.len()));
    }
    if offer.key.len() > bitdust_core::MAX_CAPABILITY_BYTES {
        return Err(format!("a share key of {} bytes", offer.key.len()));
    }
    Ok(())
}
