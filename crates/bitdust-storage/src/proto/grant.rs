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
pub const SKEW_SECS: u64 = 600;

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

const ACCESS_GRANT_PURPOSE: &[u8] = b"bitdust/access-grant/v1\0";
/// Revoked grant ids one owner may have a supplier remember at once (each until its grant expires).
pub const MAX_REVOKED_PER_OWNER: u64 = 65_536;
/// Grant ids one [`crate::proto::wire::Request::Revoke`] names at most.
pub const MAX_REVOKE: usize = 256;

/// A share's access grant (the sharing issue): like [`Grant`], with an id the owner can revoke on its suppliers
/// before it expires, and optionally no grantee (a public share: anyone may fetch). One share gives one grant id per
/// grantee; its fragments are cut into several signed grants of at most [`MAX_GRANT_FRAGMENTS`] each, all with
/// that id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessGrant {
    /// What revocation names (random, per share and grantee).
    pub id: [u8; 16],
    /// The owner's peer id bytes.
    #[serde(with = "serde_bytes")]
    pub owner: Vec<u8>,
    /// The grantee's peer id bytes, or `None`: anyone (a public share).
    pub grantee: Option<serde_bytes::ByteBuf>,
    /// The fragment ids it covers (at most [`MAX_GRANT_FRAGMENTS`]).
    pub fragments: Vec<[u8; 32]>,
    /// Until when, Unix seconds.
    pub expires_unix: u64,
}

/// An [`AccessGrant`] and the owner's Ed25519 signature over `ACCESS_GRANT_PURPOSE || postcard(grant)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedAccessGrant {
    /// The grant.
    pub grant: AccessGrant,
    /// The owner's signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

fn access_signed_bytes(grant: &AccessGrant) -> Vec<u8> {
    let mut out = ACCESS_GRANT_PURPOSE.to_vec();
    out.extend(postcard::to_stdvec(grant).unwrap_or_default());
    out
}

impl SignedAccessGrant {
    /// The owner (`keys`) grants `grantee` (anyone if `None`) the fragments `fragments` until `expires_unix`, under
    /// grant id `id`.
    ///
    /// # Errors
    /// [`GrantError::Malformed`] for more than [`MAX_GRANT_FRAGMENTS`].
    pub fn sign(
        keys: &NodeKeys,
        id: [u8; 16],
        grantee: Option<&PeerId>,
        fragments: Vec<[u8; 32]>,
        expires_unix: u64,
    ) -> Result<Self, GrantError> {
        if fragments.len() > MAX_GRANT_FRAGMENTS {
            return Err(GrantError::Malformed(format!("{} fragments", fragments.len())));
        }
        let grant = AccessGrant {
            id,
            owner: keys.peer_id().to_bytes(),
            grantee: grantee.map(|g| serde_bytes::ByteBuf::from(g.to_bytes())),
            fragments,
            expires_unix,
        };
        let signature = keys.sign(&access_signed_bytes(&grant));
        Ok(Self { grant, signature })
    }

    /// Checks that this grant lets `requester` fetch `owner`'s fragment `id` at `now_unix` (what a supplier does;
    /// it then checks that the owner has not revoked the grant's id).
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
        keys::verify(owner, &access_signed_bytes(g), &self.signature)?;
        if g.grantee.as_ref().is_some_and(|p| p.as_slice() != requester.to_bytes()) {
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
    fn an_access_grant_serves_its_grantee_or_anyone_and_cannot_be_widened() {
        let (owner, grantee, other) = (NodeKeys::generate(), NodeKeys::generate(), NodeKeys::generate());
        let (o, g, x) = (owner.peer_id(), grantee.peer_id(), other.peer_id());
        let grant = SignedAccessGrant::sign(&owner, [7; 16], Some(&g), vec![[1; 32], [2; 32]], 1000).unwrap();
        assert_eq!(grant.allows(&g, &o, &[2; 32], 999), Ok(()));
        assert_eq!(grant.allows(&x, &o, &[2; 32], 999), Err(GrantError::NotGrantee));
        assert_eq!(grant.allows(&g, &o, &[3; 32], 999), Err(GrantError::NotCovered));
        assert_eq!(grant.allows(&g, &x, &[2; 32], 999), Err(GrantError::NotCovered));
        assert_eq!(grant.allows(&g, &o, &[2; 32], 1000 + SKEW_SECS + 1), Err(GrantError::Expired));
        // the grantee makes it public, or renames it to escape a revocation: the signature no longer holds
        let mut public = grant.clone();
        public.grant.grantee = None;
        assert_eq!(public.allows(&x, &o, &[2; 32], 999), Err(GrantError::Signature));
        let mut renamed = grant.clone();
        renamed.grant.id = [8; 16];
        assert_eq!(renamed.allows(&g, &o, &[2; 32], 999), Err(GrantError::Signature));
        // a public grant serves anyone
        let anyone = SignedAccessGrant::sign(&owner, [9; 16], None, vec![[1; 32]], 1000).unwrap();
        assert_eq!(anyone.allows(&x, &o, &[1; 32], 999), Ok(()));
        // a file-transfer grant's signature does not pass for an access grant (distinct purposes)
        let old = SignedGrant::sign(&owner, &g, vec![[1; 32]], 1000).unwrap();
        let mut mixed = grant.clone();
        mixed.signature = old.signature;
        assert_eq!(mixed.allows(&g, &o, &[1; 32], 999), Err(GrantError::Signature));
    }

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
