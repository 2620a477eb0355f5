//! Access grants: the owner of some fragments lets one other peer (the grantee) fetch them from its suppliers,
//! until a time. A supplier serves a fragment of an owner to a peer that is not the owner only against a grant
//! signed by the owner, naming that peer (the authenticated requester) and that fragment, not expired. The model is
//! Peergos's block access tokens (signed capabilities bound to the reader), narrowed to a fixed list of fragments.
//!
//! Used by "send through storage" (a file sent to a contact while its sender goes offline); the sharing issue
//! extends it (revocation, groups).

use bitdust_core::keys::{self, NodeKeys, SignatureError};
use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};

const GRANT_PURPOSE: &[u8] = b"bitdust/fragment-grant/v1\0";
/// Fragments one grant names at most.
pub const MAX_GRANT_FRAGMENTS: usize = 2048;
/// Clock difference tolerated on expiry, in seconds.
const SKEW_SECS: u64 = 600;

/// Why a grant does not let a peer fetch a fragment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    /// Not the owner's signature.
    #[error("the grant is not signed by its owner")]
    Signature,
    /// Another peer is named.
    #[error("the grant is for another peer")]
    NotGrantee,
    /// The fragment is not in it, or it is for another owner.
    #[error("the grant does not cover that fragment")]
    NotCovered,
    /// Past its time.
    #[error("the grant expired")]
    Expired,
    /// Too many fragments, or bad peer ids.
    #[error("malformed grant: {0}")]
    Malformed(String),
}

impl From<SignatureError> for GrantError {
    fn from(_: SignatureError) -> Self {
        Self::Signature
    }
}

/// What the owner grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The owner's peer id bytes.
    #[serde(with = "serde_bytes")]
    pub owner: Vec<u8>,
    /// The grantee's peer id bytes.
    #[serde(with = "serde_bytes")]
    pub grantee: Vec<u8>,
    /// The fragment ids it may fetch (at most [`MAX_GRANT_FRAGMENTS`]).
    pub fragments: Vec<[u8; 32]>,
    /// Until when, Unix seconds.
    pub expires_unix: u64,
}

/// A grant and the owner's Ed25519 signature over it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    /// The grant.
    pub grant: Grant,
    /// The owner's signature over `GRANT_PURPOSE || postcard(grant)`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

fn signed_bytes(grant: &Grant) -> Vec<u8> {
    let mut out = GRANT_PURPOSE.to_vec();
    out.extend(postcard::to_stdvec(grant).unwrap_or_default());
    out
}

impl SignedGrant {
    /// The owner (`keys`) grants `grantee` the fragments `fragments` until `expires_unix`.
    ///
    /// # Errors
    /// [`GrantError::Malformed`] for more than [`MAX_GRANT_FRAGMENTS`].
    pub fn sign(
        keys: &NodeKeys,
        grantee: &PeerId,
        fragments: Vec<[u8; 32]>,
        expires_unix: u64,
    ) -> Result<Self, GrantError> {
        if fragments.len() > MAX_GRANT_FRAGMENTS {
            return Err(GrantError::Malformed(format!("{} fragments", fragments.len())));
        }
        let grant = Grant { owner: keys.peer_id().to_bytes(), grantee: grantee.to_bytes(), fragments, expires_unix };
        let signature = keys.sign(&signed_bytes(&grant));
        Ok(Self { grant, signature })
    }

    /// Checks that this grant lets `requester` fetch `owner`'s fragment `id` at `now_unix` (what a supplier does).
    ///
    /// # Errors
    /// The [`GrantError`] saying why not.
    pub fn allows(&self, requester: &PeerId, owner: &PeerId, id: &[u8; 32], now_unix: u64) -> Result<(), GrantError> {
        let g = &self.grant;
        if g.fragments.len() > MAX_GRANT_FRAGMENTS {
            return Err(GrantError::Malformed(format!("{} fragments", g.fragments.len())));
        }
        if g.owner != owner.to_bytes() {
            return Err(GrantError::NotCovered);
        }
        keys::verify(owner, &signed_bytes(g), &self.signature)?;
        if g.grantee != requester.to_bytes() {
            return Err(GrantError::NotGrantee);
        }
        if now_unix > g.expires_unix.saturating_add(SKEW_SECS) {
            return Err(GrantError::Expired);
        }
        if !g.fragments.contains(id) {
            return Err(GrantError::NotCovered);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_serves_its_grantee_its_fragments_until_it_expires() {
        let (owner, grantee, other) = (NodeKeys::generate(), NodeKeys::generate(), NodeKeys::generate());
        let (o, g, x) = (owner.peer_id(), grantee.peer_id(), other.peer_id());
        let grant = SignedGrant::sign(&owner, &g, vec![[1; 32], [2; 32]], 1000).unwrap();
        assert_eq!(grant.allows(&g, &o, &[2; 32], 999), Ok(()));
        assert_eq!(grant.allows(&x, &o, &[2; 32], 999), Err(GrantError::NotGrantee), "another peer");
        assert_eq!(grant.allows(&g, &o, &[3; 32], 999), Err(GrantError::NotCovered), "another fragment");
        assert_eq!(grant.allows(&g, &x, &[2; 32], 999), Err(GrantError::NotCovered), "another owner's");
        assert_eq!(grant.allows(&g, &o, &[2; 32], 1000 + SKEW_SECS + 1), Err(GrantError::Expired));
        // the grantee widens it, or signs one itself: refused
        let mut wider = grant.clone();
        wider.grant.fragments.push([3; 32]);
        assert_eq!(wider.allows(&g, &o, &[3; 32], 999), Err(GrantError::Signature));
        let mut forged = SignedGrant::sign(&grantee, &g, vec![[3; 32]], 1000).unwrap();
        forged.grant.owner = o.to_bytes();
        assert_eq!(forged.allows(&g, &o, &[3; 32], 999), Err(GrantError::Signature));
        assert!(SignedGrant::sign(&owner, &g, vec![[0; 32]; MAX_GRANT_FRAGMENTS + 1], 1).is_err());
    }
}
