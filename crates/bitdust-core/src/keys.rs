//! Node keys: one Ed25519 key pair (the libp2p key, so peer id = identity key), an X25519 encryption key
//! and a master secret, all derived from one 32-byte seed so that the seed alone restores everything.
//!
//! Derivations use BLAKE3 `derive_key` (the BLAKE3 paper, section 6.2) with distinct context strings:
//! - X25519 secret = `derive_key("bitdust 2026-11 x25519 encryption key v1", seed)`
//! - master secret = `derive_key("bitdust 2026-11 master secret v1", seed)`
//! - sub-keys of the master secret: `derive_key(context, master || input)`.

use libp2p_identity::{ed25519, Keypair, PeerId, PublicKey};
use rand::RngCore;

/// Prefix of the exported key file text (`bitdust key export`).
const EXPORT_PREFIX: &str = "bitdust-secret-key-v1:";

/// Errors from loading or using keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key text is not `bitdust-secret-key-v1:<64 hex digits>`.
    #[error("not a bitdust secret key (expected `{EXPORT_PREFIX}` followed by 64 hex digits)")]
    BadKeyText,
    /// The seed bytes are not a valid Ed25519 secret key.
    #[error("invalid Ed25519 secret key: {0}")]
    BadSeed(String),
}

/// Errors from verifying a signature made by a peer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The peer id does not embed an Ed25519 public key (bitdust peer ids always do).
    #[error("peer id {0} does not embed an Ed25519 public key")]
    NoPublicKey(String),
    /// The bytes are not a valid peer id.
    #[error("malformed peer id")]
    BadPeerId,
    /// The signature does not verify.
    #[error("bad signature by {0}")]
    BadSignature(String),
}

/// The secret keys of one node. Cheap to clone.
#[derive(Clone)]
pub struct NodeKeys {
    seed: [u8; 32],
    keypair: ed25519::Keypair,
    encryption_secret: x25519_dalek::StaticSecret,
    master: MasterSecret,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKeys").field("peer_id", &self.peer_id()).finish_non_exhaustive()
    }
}

impl NodeKeys {
    /// Generates a new key set from the operating system's random number generator.
    pub fn generate() -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::from_seed(seed).expect("any 32 bytes are a valid Ed25519 seed")
    }

    /// Rebuilds the key set from its 32-byte seed.
    ///
    /// # Errors
    /// [`KeyError::BadSeed`] if the seed is rejected by the Ed25519 implementation.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, KeyError> {
        let mut copy = seed;
        let secret = ed25519::SecretKey::try_from_bytes(&mut copy).map_err(|e| KeyError::BadSeed(e.to_string()))?;
        let keypair = ed25519::Keypair::from(secret);
        let x = blake3::derive_key("bitdust 2026-11 x25519 encryption key v1", &seed);
        let master = MasterSecret(blake3::derive_key("bitdust 2026-11 master secret v1", &seed));
        Ok(Self { seed, keypair, encryption_secret: x25519_dalek::StaticSecret::from(x), master })
    }

    /// The 32-byte seed every other key derives from. Secret.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The libp2p key pair (Ed25519).
    pub fn keypair(&self) -> Keypair {
        Keypair::from(self.keypair.clone())
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(&PublicKey::from(self.keypair.public()))
    }

    /// Signs `message` with the Ed25519 key; the signature is 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.keypair.sign(message)
    }

    /// The X25519 public key other users encrypt to (32 bytes).
    pub fn encryption_public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.encryption_secret).to_bytes()
    }

    /// The master secret that data, catalog and fragment-id keys derive from.
    pub fn master(&self) -> &MasterSecret {
        &self.master
    }

    /// The seed as text for `bitdust key export`: `bitdust-secret-key-v1:<64 hex digits>\n`.
    pub fn export_text(&self) -> String {
        format!("{EXPORT_PREFIX}{}\n", hex::encode(self.seed))
    }

    /// Parses the text written by [`NodeKeys::export_text`] (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`KeyError::BadKeyText`] if the text is not in that format.
    pub fn import_text(text: &str) -> Result<Self, KeyError> {
        let hex_part = text.trim().strip_prefix(EXPORT_PREFIX).ok_or(KeyError::BadKeyText)?;
        let bytes = hex::decode(hex_part).map_err(|_| KeyError::BadKeyText)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadKeyText)?;
        Self::from_seed(seed)
    }
}

/// A 32-byte secret from which the node's symmetric keys derive.
#[derive(Clone)]
pub struct MasterSecret([u8; 32]);

impl MasterSecret {
    /// Derives a 32-byte sub-key: BLAKE3 `derive_key(context, master || input)`.
    pub fn derive(&self, context: &str, input: &[u8]) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(context);
        hasher.update(&self.0);
        hasher.update(input);
        *hasher.finalize().as_bytes()
    }
}

/// The Ed25519 public key a peer id embeds.
///
/// # Errors
/// [`SignatureError::NoPublicKey`] for a peer id that hashes its key instead of embedding it.
pub fn public_key_of(peer: &PeerId) -> Result<ed25519::PublicKey, SignatureError> {
    let mh = peer.as_ref();
    if mh.code() != 0 {
        return Err(SignatureError::NoPublicKey(peer.to_string()));
    }
    let key = PublicKey::try_decode_protobuf(mh.digest()).map_err(|_| SignatureError::NoPublicKey(peer.to_string()))?;
    key.try_into_ed25519().map_err(|_| SignatureError::NoPublicKey(peer.to_string()))
}

/// Verifies that `signature` over `message` was made by `peer`'s key.
///
/// # Errors
/// [`SignatureError`] if the peer id embeds no Ed25519 key or the signature does not verify.
pub fn verify(peer: &PeerId, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    let key = public_key_of(peer)?;
    if key.verify(message, signature) {
        Ok(())
    } else {
        Err(SignatureError::BadSignature(peer.to_string()))
    }
}

/// Parses peer id bytes.
///
/// # Errors
/// [`SignatureError::BadPeerId`] if the bytes are not a peer id.
pub fn peer_id_from_bytes(bytes: &[u8]) -> Result<PeerId, SignatureError> {
    PeerId::from_bytes(bytes).map_err(|_| SignatureError::BadPeerId)
}

/// The short form of a peer id used in global ids (`nickname@<short>`): its last 8 characters.
pub fn short_peer_id(peer: &PeerId) -> String {
    let s = peer.to_string();
    s[s.len().saturating_sub(8)..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_round_trips_through_export_text() {
        let keys = NodeKeys::generate();
        let back = NodeKeys::import_text(&keys.export_text()).unwrap();
        assert_eq!(keys.peer_id(), back.peer_id());
        assert_eq!(keys.encryption_public_key(), back.encryption_public_key());
        assert_eq!(keys.master().derive("t", b"x"), back.master().derive("t", b"x"));
    }

    #[test]
    fn bad_key_text_is_refused() {
        assert!(NodeKeys::import_text("hello").is_err());
        assert!(NodeKeys::import_text("bitdust-secret-key-v1:abcd").is_err());
    }

    #[test]
    fn signature_verifies_from_peer_id_alone() {
        let keys = NodeKeys::generate();
        let sig = keys.sign(b"message");
        verify(&keys.peer_id(), b"message", &sig).unwrap();
        assert!(verify(&keys.peer_id(), b"messagf", &sig).is_err());
        let other = NodeKeys::generate();
        assert!(verify(&other.peer_id(), b"message", &sig).is_err());
    }
}
