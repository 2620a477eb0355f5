//! Node keys: one Ed25519 key pair (the libp2p key, so peer id = identity key), an X25519 encryption key
//! and a master secret, all derived from one 32-byte seed so that the seed alone restores everything.
//!
//! Derivations use BLAKE3 `derive_key` (the BLAKE3 paper, section 6.2) with distinct context strings:
//! - X25519 secret = `derive_key("bitdust 2026-11 x25519 encryption key v1", seed)`
//! - master secret = `derive_key("bitdust 2026-11 master secret v1", seed)`
//! - sub-keys of the master secret: `derive_key(context, master || input)`.

use libp2p_identity::{ed25519, Keypair, PeerId, PublicKey};
use rand::RngCore;
use zeroize::{Zeroize, Zeroizing};

/// Prefix of the exported key file text (`bitdust key export --no-passphrase`).
const EXPORT_PREFIX: &str = "bitdust-secret-key-v1:";
/// Prefix of a passphrase-protected key file (`bitdust key export`).
const ENCRYPTED_PREFIX: &str = "bitdust-encrypted-key-v1:";
/// Argon2id cost of a protected key file: 64 MiB, 3 passes, 1 lane (RFC 9106, section 4, second recommended
/// option, for memory-constrained machines); about a quarter of a second here.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;

/// Errors from loading or using keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key text is not `bitdust-secret-key-v1:<64 hex digits>`.
    #[error("not a bitdust secret key (expected `{EXPORT_PREFIX}` followed by 64 hex digits)")]
    BadKeyText,
    /// The seed bytes are not a valid Ed25519 secret key.
    #[error("invalid Ed25519 secret key: {0}")]
    BadSeed(String),
    /// The key file is protected and no passphrase was given.
    #[error("this key file is protected by a passphrase")]
    NeedsPassphrase,
    /// The passphrase does not open the key file (or the file was altered).
    #[error("wrong passphrase, or the key file was altered")]
    WrongPassphrase,
    /// The key derivation failed (bad parameters in the file).
    #[error("key derivation: {0}")]
    Kdf(String),
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
    /// Wiped from memory when dropped (as the Ed25519 and X25519 secrets are by their crates).
    seed: Zeroizing<[u8; 32]>,
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
        let seed = Zeroizing::new(seed);
        let mut copy = Zeroizing::new(*seed);
        let secret = ed25519::SecretKey::try_from_bytes(&mut *copy).map_err(|e| KeyError::BadSeed(e.to_string()))?;
        let keypair = ed25519::Keypair::from(secret);
        let mut x = blake3::derive_key("bitdust 2026-11 x25519 encryption key v1", &*seed);
        let encryption_secret = x25519_dalek::StaticSecret::from(x);
        x.zeroize();
        let master = MasterSecret(blake3::derive_key("bitdust 2026-11 master secret v1", &*seed));
        Ok(Self { seed, keypair, encryption_secret, master })
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

    /// The seed as text for `bitdust key export --no-passphrase` and the home's `identity.key`:
    /// `bitdust-secret-key-v1:<64 hex digits>\n` (wiped from memory when dropped).
    pub fn export_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{EXPORT_PREFIX}{}\n", hex::encode(*self.seed)))
    }

    /// The seed sealed under `passphrase`, for `bitdust key export`:
    /// `bitdust-encrypted-key-v1:argon2id:<memory KiB>:<passes>:<salt hex>:<nonce hex>:<ciphertext hex>\n`.
    /// The key is Argon2id (RFC 9106; the `argon2` crate) of the passphrase with a random 16-byte salt; the seed is
    /// sealed with AES-256-GCM (`ring`) under a random 12-byte nonce, the header before the ciphertext as
    /// associated data, so that no parameter can be changed unnoticed.
    ///
    /// # Errors
    /// [`KeyError::Kdf`] if the key derivation fails.
    pub fn export_encrypted(&self, passphrase: &str) -> Result<String, KeyError> {
        let salt: [u8; 16] = rand::random();
        let nonce: [u8; 12] = rand::random();
        let header = format!(
            "{ENCRYPTED_PREFIX}argon2id:{ARGON2_MEMORY_KIB}:{ARGON2_PASSES}:{}:{}",
            hex::encode(salt),
            hex::encode(nonce)
        );
        let key = passphrase_key(passphrase, &salt, ARGON2_MEMORY_KIB, ARGON2_PASSES)?;
        let mut sealed = Zeroizing::new(self.seed.to_vec());
        key.seal_in_place_append_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::from(header.as_bytes()),
            &mut *sealed,
        )
        .map_err(|_| KeyError::Kdf("sealing failed".into()))?;
        Ok(format!("{header}:{}\n", hex::encode(&*sealed)))
    }

    /// Whether `text` is a passphrase-protected key file ([`NodeKeys::export_encrypted`]).
    pub fn is_encrypted_text(text: &str) -> bool {
        text.trim_start().starts_with(ENCRYPTED_PREFIX)
    }

    /// Parses a key file: the plain text of [`NodeKeys::export_text`] (surrounding whitespace is ignored), or,
    /// with `passphrase`, the protected text of [`NodeKeys::export_encrypted`].
    ///
    /// # Errors
    /// [`KeyError::BadKeyText`] if the text is in neither format; [`KeyError::NeedsPassphrase`] for a protected
    /// file without a passphrase; [`KeyError::WrongPassphrase`] if it does not open; [`KeyError::Kdf`] for
    /// parameters out of range.
    pub fn import_text_with(text: &str, passphrase: Option<&str>) -> Result<Self, KeyError> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix(ENCRYPTED_PREFIX) else {
            return Self::import_text(text);
        };
        let passphrase = passphrase.ok_or(KeyError::NeedsPassphrase)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let [alg, memory, passes, salt, nonce, sealed] = parts[..] else { return Err(KeyError::BadKeyText) };
        if alg != "argon2id" {
            return Err(KeyError::BadKeyText);
        }
        let memory: u32 = memory.parse().map_err(|_| KeyError::BadKeyText)?;
        let passes: u32 = passes.parse().map_err(|_| KeyError::BadKeyText)?;
        // a file from a stranger must not make us allocate gigabytes or spin for hours
        if !(8..=4 * 1024 * 1024).contains(&memory) || !(1..=64).contains(&passes) {
            return Err(KeyError::Kdf(format!("Argon2 cost out of range: {memory} KiB, {passes} passes")));
        }
        let salt = hex::decode(salt).map_err(|_| KeyError::BadKeyText)?;
        let nonce: [u8; 12] = hex::decode(nonce).ok().and_then(|n| n.try_into().ok()).ok_or(KeyError::BadKeyText)?;
        let mut sealed = Zeroizing::new(hex::decode(sealed).map_err(|_| KeyError::BadKeyText)?);
        let header_len = text.len() - text.rsplit(':').next().map(str::len).unwrap_or(0) - 1;
        let header = &text[..header_len];
        let key = passphrase_key(passphrase, &salt, memory, passes)?;
        let seed = key
            .open_in_place(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::from(header.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| KeyError::WrongPassphrase)?;
        let seed: [u8; 32] = (&*seed).try_into().map_err(|_| KeyError::BadKeyText)?;
        Self::from_seed(seed)
    }

    /// Parses the text written by [`NodeKeys::export_text`] (surrounding whitespace is ignored).
    ///
    /// # Errors
    /// [`KeyError::BadKeyText`] if the text is not in that format.
    pub fn import_text(text: &str) -> Result<Self, KeyError> {
        let hex_part = text.trim().strip_prefix(EXPORT_PREFIX).ok_or(KeyError::BadKeyText)?;
        let bytes = Zeroizing::new(hex::decode(hex_part).map_err(|_| KeyError::BadKeyText)?);
        let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::BadKeyText)?;
        Self::from_seed(seed)
    }
}

/// A 32-byte secret from which the node's symmetric keys derive. Wiped from memory when dropped.
#[derive(Clone)]
pub struct MasterSecret([u8; 32]);

impl Drop for MasterSecret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// The AES-256-GCM key of a protected key file: Argon2id (version 0x13, 1 lane) of `passphrase` and `salt`.
fn passphrase_key(
    passphrase: &str,
    salt: &[u8],
    memory_kib: u32,
    passes: u32,
) -> Result<ring::aead::LessSafeKey, KeyError> {
    let params = argon2::Params::new(memory_kib, passes, 1, Some(32)).map_err(|e| KeyError::Kdf(e.to_string()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(passphrase.as_bytes(), salt, &mut *key).map_err(|e| KeyError::Kdf(e.to_string()))?;
    let unbound =
        ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &*key).map_err(|_| KeyError::Kdf("key".into()))?;
    Ok(ring::aead::LessSafeKey::new(unbound))
}

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

    /// A protected key file opens with its passphrase only, holds no trace of the seed, and any change to it
    /// (costs, salt, nonce, ciphertext) is refused.
    #[test]
    fn protected_key_file_needs_its_passphrase_and_resists_tampering() {
        let keys = NodeKeys::generate();
        let text = keys.export_encrypted("correct horse").unwrap();
        assert!(NodeKeys::is_encrypted_text(&text));
        assert!(!text.contains(&hex::encode(keys.seed())));
        let back = NodeKeys::import_text_with(&text, Some("correct horse")).unwrap();
        assert_eq!(back.peer_id(), keys.peer_id());
        assert!(matches!(NodeKeys::import_text_with(&text, None), Err(KeyError::NeedsPassphrase)));
        assert!(matches!(NodeKeys::import_text_with(&text, Some("wrong")), Err(KeyError::WrongPassphrase)));
        let cheaper = text.replacen(":65536:3:", ":65536:2:", 1);
        assert!(matches!(NodeKeys::import_text_with(&cheaper, Some("correct horse")), Err(KeyError::WrongPassphrase)));
        let huge = text.replacen(":65536:", ":999999999:", 1);
        assert!(matches!(NodeKeys::import_text_with(&huge, Some("correct horse")), Err(KeyError::Kdf(_))));
        let mut flipped = text.trim_end().to_string();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert!(NodeKeys::import_text_with(&flipped, Some("correct horse")).is_err());
        // the plain format still imports, with or without a passphrase given
        assert_eq!(NodeKeys::import_text_with(&keys.export_text(), Some("x")).unwrap().peer_id(), keys.peer_id());
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
