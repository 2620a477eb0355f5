//! What a share's owner tells a grantee, inside its Olm session (`Body::Share`, `Body::Unshare`): the share key
//! (opaque to this wing: the storage wing's manifest key, the storage wing's `Vault::share_backup`) and, when the
//! owner revokes, that it did (the suppliers' refusal is what cuts access; this only updates the grantee's list).

use bitdust_core::keys::{self, NodeKeys};
use bitdust_core::PeerId;
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
/// the owner, signed by its author's identity key (so the owner can show who wrote each version). The owner takes
/// it only from a grantee its share lets write, and only when the signature is the sender's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The share's id.
    pub share: [u8; 16],
    /// The share key of the contributed tree (at most [`bitdust_core::MAX_CAPABILITY_BYTES`]).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// The author's Ed25519 signature over [`CONTRIBUTION_PURPOSE`] ‖ share ‖ BLAKE3(key).
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// The domain separation of a contribution's signature.
pub const CONTRIBUTION_PURPOSE: &[u8] = b"bitdust/share-contribution/v1\0";

fn contribution_bytes(share: &[u8; 16], key: &[u8]) -> Vec<u8> {
    [CONTRIBUTION_PURPOSE, share.as_slice(), blake3::hash(key).as_bytes()].concat()
}

impl Contribution {
    /// The contribution of `key` to share `share`, signed by `author`.
    pub fn sign(author: &NodeKeys, share: [u8; 16], key: Vec<u8>) -> Self {
        let signature = author.sign(&contribution_bytes(&share, &key));
        Self { share, key, signature }
    }

    /// Checks the sizes and that `author` signed it.
    ///
    /// # Errors
    /// A key over [`bitdust_core::MAX_CAPABILITY_BYTES`], a signature that is not `author`'s.
    pub fn check(&self, author: &PeerId) -> Result<(), String> {
        if self.key.len() > bitdust_core::MAX_CAPABILITY_BYTES {
            return Err(format!("a contribution key of {} bytes", self.key.len()));
        }
        keys::verify(author, &contribution_bytes(&self.share, &self.key), &self.signature)
            .map_err(|_| "a contribution not signed by its sender".to_string())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contribution_holds_only_with_its_authors_signature() {
        let bob = NodeKeys::generate();
        let mallory = NodeKeys::generate();
        let c = Contribution::sign(&bob, [1; 16], vec![7; 100]);
        assert!(c.check(&bob.peer_id()).is_ok());
        assert!(c.check(&mallory.peer_id()).is_err(), "sent by another");
        let mut other = c.clone();
        other.key[0] ^= 1;
        assert!(other.check(&bob.peer_id()).is_err(), "another key");
        let mut moved = c.clone();
        moved.share = [2; 16];
        assert!(moved.check(&bob.peer_id()).is_err(), "another share");
        let big = Contribution::sign(&bob, [1; 16], vec![0; bitdust_core::MAX_CAPABILITY_BYTES + 1]);
        assert!(big.check(&bob.peer_id()).is_err(), "over the size limit");
    }
}
