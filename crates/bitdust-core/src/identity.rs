//! The identity document: a self-signed, revisioned description of a user (nickname, peer id, encryption
//! public key, addresses). Encoded canonically with postcard and signed with Ed25519 over
//! `IDENTITY_PURPOSE || postcard(identity)`; anyone holding the document can verify it from the peer id it
//! names, because bitdust peer ids embed their Ed25519 public key.

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::keys::{self, NodeKeys, SignatureError};

/// Domain separation for identity signatures.
const IDENTITY_PURPOSE: &[u8] = b"bitdust/identity/v1\0";
/// Current identity format.
pub const IDENTITY_FORMAT: u8 = 1;
/// The largest identity document accepted from a peer, in bytes (a few addresses fit easily).
pub const MAX_IDENTITY_BYTES: usize = 8 * 1024;
/// At most this many addresses are listed.
pub const MAX_ADDRESSES: usize = 16;

/// Errors from validating an identity document.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IdentityError {
    /// The nickname does not match `[a-z0-9_-]{3,32}`.
    #[error("invalid nickname {0:?}: use 3 to 32 of a-z, 0-9, '_' and '-'")]
    BadNickname(String),
    /// The document could not be decoded.
    #[error("malformed identity document: {0}")]
    Malformed(String),
    /// The signature or peer id does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// Unknown format version.
    #[error("unsupported identity format {0}")]
    Format(u8),
    /// Too many addresses or too large.
    #[error("identity document too large")]
    TooLarge,
}

/// Checks a nickname against `[a-z0-9_-]{3,32}`.
///
/// # Errors
/// [`IdentityError::BadNickname`] otherwise.
pub fn validate_nickname(nickname: &str) -> Result<(), IdentityError> {
    let ok = (3..=32).contains(&nickname.len())
        && nickname.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(IdentityError::BadNickname(nickname.to_string()))
    }
}

/// The unsigned content of an identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Format version ([`IDENTITY_FORMAT`]).
    pub format: u8,
    /// The user's nickname, `[a-z0-9_-]{3,32}`.
    pub nickname: String,
    /// The peer id bytes (multihash embedding the Ed25519 public key).
    #[serde(with = "serde_bytes")]
    pub peer_id: Vec<u8>,
    /// X25519 public key others encrypt to.
    pub encryption_key: [u8; 32],
    /// Multiaddrs this node can be reached at, as strings.
    pub addresses: Vec<String>,
    /// Strictly increases on every change.
    pub revision: u64,
    /// Unix seconds when this revision was made.
    pub updated_unix: u64,
}

impl Identity {
    /// The peer id this identity belongs to.
    ///
    /// # Errors
    /// [`IdentityError::Signature`] if the bytes are not a peer id.
    pub fn peer(&self) -> Result<PeerId, IdentityError> {
        Ok(keys::peer_id_from_bytes(&self.peer_id)?)
    }

    /// The global id `nickname@<short peer id>`.
    pub fn global_id(&self) -> String {
        match self.peer() {
            Ok(p) => format!("{}@{}", self.nickname, keys::short_peer_id(&p)),
            Err(_) => format!("{}@?", self.nickname),
        }
    }
}

/// An identity with its signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIdentity {
    /// The signed content.
    pub identity: Identity,
    /// Ed25519 signature (64 bytes) over `IDENTITY_PURPOSE || postcard(identity)`.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl SignedIdentity {
    /// Builds and signs a new identity for `keys`.
    ///
    /// # Errors
    /// [`IdentityError::BadNickname`] for an invalid nickname.
    pub fn create(
        keys: &NodeKeys,
        nickname: &str,
        addresses: Vec<String>,
        revision: u64,
        now_unix: u64,
    ) -> Result<Self, IdentityError> {
        validate_nickname(nickname)?;
        let identity = Identity {
            format: IDENTITY_FORMAT,
            nickname: nickname.to_string(),
            peer_id: keys.peer_id().to_bytes(),
            encryption_key: keys.encryption_public_key(),
            addresses: addresses.into_iter().take(MAX_ADDRESSES).collect(),
            revision,
            updated_unix: now_unix,
        };
        Ok(Self::sign(keys, identity))
    }

    /// Signs `identity` (whose peer id must be `keys`' own).
    pub fn sign(keys: &NodeKeys, identity: Identity) -> Self {
        let signature = keys.sign(&signed_bytes(&identity));
        Self { identity, signature }
    }

    /// The next revision with new addresses, signed.
    pub fn with_addresses(&self, keys: &NodeKeys, addresses: Vec<String>, now_unix: u64) -> Self {
        let mut identity = self.identity.clone();
        identity.addresses = addresses.into_iter().take(MAX_ADDRESSES).collect();
        identity.revision += 1;
        identity.updated_unix = now_unix;
        Self::sign(keys, identity)
    }

    /// Verifies format, nickname and signature; returns the owner's peer id.
    ///
    /// # Errors
    /// [`IdentityError`] for any failed check.
    pub fn verify(&self) -> Result<PeerId, IdentityError> {
        if self.identity.format != IDENTITY_FORMAT {
            return Err(IdentityError::Format(self.identity.format));
        }
        if self.identity.addresses.len() > MAX_ADDRESSES {
            return Err(IdentityError::TooLarge);
        }
        validate_nickname(&self.identity.nickname)?;
        let peer = self.identity.peer()?;
        keys::verify(&peer, &signed_bytes(&self.identity), &self.signature)?;
        Ok(peer)
    }

    /// Canonical binary encoding (postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("identity serializes")
    }

    /// Decodes and verifies a document received from anywhere.
    ///
    /// # Errors
    /// [`IdentityError`] if it is too large, malformed or badly signed.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, IdentityError> {
        if bytes.len() > MAX_IDENTITY_BYTES {
            return Err(IdentityError::TooLarge);
        }
        let doc: Self = postcard::from_bytes(bytes).map_err(|e| IdentityError::Malformed(e.to_string()))?;
        doc.verify()?;
        Ok(doc)
    }
}

fn signed_bytes(identity: &Identity) -> Vec<u8> {
    let mut out = IDENTITY_PURPOSE.to_vec();
    out.extend(postcard::to_stdvec(identity).expect("identity serializes"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> (NodeKeys, SignedIdentity) {
        let keys = NodeKeys::from_seed([7u8; 32]).unwrap();
        let id =
            SignedIdentity::create(&keys, "alice", vec!["/ip4/127.0.0.1/tcp/4001".into()], 1, 1_700_000_000).unwrap();
        (keys, id)
    }

    #[test]
    fn nickname_rules() {
        assert!(validate_nickname("alice_01-x").is_ok());
        for bad in ["al", "Alice", "a b c", "ééé", &"a".repeat(33)] {
            assert!(validate_nickname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identity_round_trips_and_verifies() {
        let (keys, id) = sample();
        let back = SignedIdentity::decode_verified(&id.encode()).unwrap();
        assert_eq!(back, id);
        assert_eq!(back.verify().unwrap(), keys.peer_id());
        let next = id.with_addresses(&keys, vec![], 1_700_000_001);
        assert_eq!(next.identity.revision, 2);
        next.verify().unwrap();
    }

    #[test]
    fn identity_signed_by_another_key_is_refused() {
        let (_, id) = sample();
        let mallory = NodeKeys::from_seed([9u8; 32]).unwrap();
        let forged = SignedIdentity::sign(&mallory, id.identity.clone());
        assert!(forged.verify().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any single bit flipped in an encoded identity is detected (decode fails or verify fails).
        #[test]
        fn any_bit_flip_in_identity_is_detected(bit in 0usize..10_000) {
            let (_, id) = sample();
            let mut bytes = id.encode();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(SignedIdentity::decode_verified(&bytes).is_err());
        }
    }
}
