//! End-to-end encryption of private messages: the Olm double ratchet (Signal's design as Matrix specifies it,
//! "Olm: A Cryptographic Ratchet", matrix.org; the `vodozemac` crate) between two devices, with forward secrecy.
//!
//! - Each node has an Olm account ([`Device`]): a Curve25519 identity key and one-time keys. Its identity key is
//!   bound to the node's Ed25519 identity by a signature ([`DeviceKey`]), so a peer knows whose device it talks to.
//! - To start, the sender gets a [`Prekey`] from the recipient (its bound identity key and a fresh one-time key,
//!   signed), creates an outbound session and sends pre-key messages until the recipient answers.
//! - Every plaintext is padded to a size bucket ([`pad`], [`BUCKETS`]) before encryption, so a relay or supplier
//!   sees only one of a few sizes.
//! - Sessions are kept per peer, newest first, at most [`MAX_SESSIONS`] (two sides starting at once make two);
//!   a message is decrypted with whichever matches.
//!
//! Pure: no tokio, no sockets, no disk (accounts and sessions are pickled, encrypted, by the caller).

use bitdust_core::keys::{self, NodeKeys};
use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};
use vodozemac::olm::{Account, OlmMessage, PreKeyMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

/// Purpose prefix of the signature binding a device key to an identity.
const DEVICE_KEY_PURPOSE: &[u8] = b"bitdust/olm-device-key/v1\0";
/// Purpose prefix of the signature over a one-time key.
const PREKEY_PURPOSE: &[u8] = b"bitdust/olm-prekey/v1\0";
/// Sessions kept per peer.
pub const MAX_SESSIONS: usize = 4;
/// Plaintext sizes, in bytes, every message is padded to (the smallest that fits).
pub const BUCKETS: [usize; 5] = [256, 1024, 4096, 16384, 65536];

/// Errors of the end-to-end layer.
#[derive(Debug, thiserror::Error)]
pub enum E2eError {
    /// A signature or key binding that does not verify.
    #[error("bad signature on a device key or prekey of {0}")]
    BadSignature(String),
    /// Keys that cannot start a session (a low-order point, a malformed key).
    #[error("cannot start a session: {0}")]
    Session(String),
    /// Ciphertext that no session decrypts.
    #[error("cannot decrypt: {0}")]
    Decrypt(String),
    /// Malformed bytes.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A plaintext over the largest bucket.
    #[error("message of {0} bytes is over the {max}-byte limit", max = BUCKETS[BUCKETS.len() - 1] - 4)]
    TooLarge(usize),
}

/// A device's Curve25519 identity key bound to its owner's Ed25519 identity (peer id) by the owner's signature.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DeviceKey {
    /// The owner's peer id bytes.
    pub owner: Vec<u8>,
    /// The Olm identity key.
    pub curve25519: [u8; 32],
    /// Ed25519 signature of the owner over `DEVICE_KEY_PURPOSE || owner || curve25519`.
    pub signature: Vec<u8>,
}

impl DeviceKey {
    fn signed_bytes(owner: &[u8], curve25519: &[u8; 32]) -> Vec<u8> {
        [DEVICE_KEY_PURPOSE, owner, curve25519].concat()
    }

    /// Checks the binding and that it is `peer`'s.
    ///
    /// # Errors
    /// [`E2eError::BadSignature`].
    pub fn verify(&self, peer: &PeerId) -> Result<Curve25519PublicKey, E2eError> {
        let bad = || E2eError::BadSignature(peer.to_string());
        if self.owner != peer.to_bytes() {
            return Err(bad());
        }
        keys::verify(peer, &Self::signed_bytes(&self.owner, &self.curve25519), &self.signature).map_err(|_| bad())?;
        Ok(Curve25519PublicKey::from_bytes(self.curve25519))
    }
}

/// What a peer needs to start a session with us: our bound device key and a fresh one-time key, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prekey {
    /// Our device key.
    pub device: DeviceKey,
    /// A one-time key, used once.
    pub one_time_key: [u8; 32],
    /// Ed25519 signature of the owner over `PREKEY_PURPOSE || curve25519 || one_time_key`.
    pub signature: Vec<u8>,
}

/// An encrypted message as it travels: the sender's device key (so the recipient can check the Olm identity
/// against the sender's Ed25519 identity) and the Olm message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's device key.
    pub device: DeviceKey,
    /// Olm message type: 0 pre-key, 1 normal.
    pub message_type: u8,
    /// The Olm message bytes.
    pub ciphertext: Vec<u8>,
}

/// Device keys of peers checked already (each signature is verified once, not with every message).
const VERIFIED_CAPACITY: usize = 1024;

/// This node's Olm account.
pub struct Device {
    account: Account,
    /// Our bound device key, signed once.
    own: std::sync::OnceLock<DeviceKey>,
    /// Peers' device keys whose binding verified (at most [`VERIFIED_CAPACITY`]; emptied when full).
    verified: std::collections::HashSet<DeviceKey>,
}

impl Default for Device {
    fn default() -> Self {
        Self::new()
    }
}

impl Device {
    /// A new account (random keys).
    pub fn new() -> Self {
        Self::with(Account::new())
    }

    fn with(account: Account) -> Self {
        Self { account, own: std::sync::OnceLock::new(), verified: std::collections::HashSet::new() }
    }

    /// The account, pickled and encrypted under `key` (a secret derived from the user's master secret).
    pub fn pickle(&self, key: &[u8; 32]) -> String {
        self.account.pickle().encrypt(key)
    }

    /// An account from [`Device::pickle`].
    ///
    /// # Errors
    /// [`E2eError::Malformed`] for a wrong key or damaged pickle.
    pub fn unpickle(pickle: &str, key: &[u8; 32]) -> Result<Self, E2eError> {
        let p = vodozemac::olm::AccountPickle::from_encrypted(pickle, key)
            .map_err(|e| E2eError::Malformed(e.to_string()))?;
        Ok(Self::with(Account::from_pickle(p)))
    }

    /// Our device key, bound to `keys`' identity (signed on the first call; `keys` must be the same on every call).
    pub fn device_key(&self, keys: &NodeKeys) -> DeviceKey {
        self.own
            .get_or_init(|| {
                let owner = keys.peer_id().to_bytes();
                let curve25519 = self.account.curve25519_key().to_bytes();
                let signature = keys.sign(&DeviceKey::signed_bytes(&owner, &curve25519));
                DeviceKey { owner, curve25519, signature }
            })
            .clone()
    }

    /// [`DeviceKey::verify`], remembering keys that verified.
    fn verify_device(&mut self, device: &DeviceKey, peer: &PeerId) -> Result<Curve25519PublicKey, E2eError> {
        if device.owner != peer.to_bytes() {
            return Err(E2eError::BadSignature(peer.to_string()));
        }
        if !self.verified.contains(device) {
            device.verify(peer)?;
            if self.verified.len() >= VERIFIED_CAPACITY {
                self.verified.clear();
            }
            self.verified.insert(device.clone());
        }
        Ok(Curve25519PublicKey::from_bytes(device.curve25519))
    }

    /// A prekey for a peer starting a session with us: a fresh one-time key (the account keeps its secret until a
    /// pre-key message uses it; the oldest are dropped past vodozemac's limit of 100).
    pub fn prekey(&mut self, keys: &NodeKeys) -> Prekey {
        let generated = self.account.generate_one_time_keys(1);
        self.account.mark_keys_as_published();
        let one_time_key = generated.created.first().map(|k| k.to_bytes()).unwrap_or_default();
        let device = self.device_key(keys);
        let signature = keys.sign(&[PREKEY_PURPOSE, &device.curve25519, &one_time_key].concat());
        Prekey { device, one_time_key, signature }
    }

    /// A prekey to publish in the DHT (for senders while we are offline): a new fallback key, which unlike a
    /// one-time key may start several sessions (Olm's fallback keys, as Matrix uses them when one-time keys run
    /// out). The account keeps the previous fallback key's secret too, so a message made with the prekey it
    /// replaces still opens.
    pub fn fallback_prekey(&mut self, keys: &NodeKeys) -> Prekey {
        self.account.generate_fallback_key();
        let key = self.account.fallback_key().into_values().next().map(|k| k.to_bytes()).unwrap_or_default();
        self.account.mark_keys_as_published();
        let device = self.device_key(keys);
        let signature = keys.sign(&[PREKEY_PURPOSE, &device.curve25519, &key].concat());
        Prekey { device, one_time_key: key, signature }
    }

    /// A new outbound session with `peer` from its `prekey`.
    ///
    /// # Errors
    /// [`E2eError::BadSignature`] if the prekey is not `peer`'s; [`E2eError::Session`] for unusable keys.
    pub fn outbound(&self, peer: &PeerId, prekey: &Prekey) -> Result<Session, E2eError> {
        let identity = prekey.device.verify(peer)?;
        let signed = [PREKEY_PURPOSE, &prekey.device.curve25519, &prekey.one_time_key].concat();
        keys::verify(peer, &signed, &prekey.signature).map_err(|_| E2eError::BadSignature(peer.to_string()))?;
        self.account
            .create_outbound_session(
                SessionConfig::version_1(),
                identity,
                Curve25519PublicKey::from_bytes(prekey.one_time_key),
            )
            .map_err(|e| E2eError::Session(e.to_string()))
    }

    /// Decrypts `envelope` from `peer` (the authenticated sender) with one of `sessions` (newest first), or, for a
    /// pre-key message no session matches, with a new inbound session added at the front. Returns the padded
    /// plaintext.
    ///
    /// # Errors
    /// [`E2eError::BadSignature`] if the envelope's device key is not `peer`'s; [`E2eError::Decrypt`] if nothing
    /// decrypts it; [`E2eError::Malformed`].
    pub fn decrypt(
        &mut self,
        peer: &PeerId,
        sessions: &mut Vec<Session>,
        envelope: &Envelope,
    ) -> Result<Vec<u8>, E2eError> {
        let identity = self.verify_device(&envelope.device, peer)?;
        let message = OlmMessage::from_parts(usize::from(envelope.message_type), &envelope.ciphertext)
            .map_err(|e| E2eError::Malformed(e.to_string()))?;
        for i in 0..sessions.len() {
            if let OlmMessage::PreKey(m) = &message {
                if sessions[i].session_keys() != m.session_keys() {
                    continue;
                }
            }
            if let Ok(plain) = sessions[i].decrypt(&message) {
                let used = sessions.remove(i);
                sessions.insert(0, used);
                return Ok(plain);
            }
        }
        let OlmMessage::PreKey(m) = message else {
            return Err(E2eError::Decrypt("no session with this peer decrypts it".into()));
        };
        self.inbound(identity, sessions, &m)
    }

    fn inbound(
        &mut self,
        identity: Curve25519PublicKey,
        sessions: &mut Vec<Session>,
        message: &PreKeyMessage,
    ) -> Result<Vec<u8>, E2eError> {
        let created = self
            .account
            .create_inbound_session(SessionConfig::version_1(), identity, message)
            .map_err(|e| E2eError::Decrypt(e.to_string()))?;
        sessions.insert(0, created.session);
        sessions.truncate(MAX_SESSIONS);
        Ok(created.plaintext)
    }
}

/// Encrypts padded `plain` for the peer of `session`, as an envelope from `device`.
///
/// # Errors
/// [`E2eError::Session`] if the session cannot encrypt.
pub fn encrypt(session: &mut Session, device: &DeviceKey, padded: &[u8]) -> Result<Envelope, E2eError> {
    let (message_type, ciphertext) = session.encrypt(padded).map_err(|e| E2eError::Session(e.to_string()))?.to_parts();
    Ok(Envelope { device: device.clone(), message_type: message_type as u8, ciphertext })
}

/// Pads `plain` to the smallest [`BUCKETS`] size it fits in with its 4-byte length.
///
/// # Errors
/// [`E2eError::TooLarge`].
pub fn pad(plain: &[u8]) -> Result<Vec<u8>, E2eError> {
    let bucket = BUCKETS.iter().find(|b| plain.len() + 4 <= **b).ok_or(E2eError::TooLarge(plain.len()))?;
    let mut out = Vec::with_capacity(*bucket);
    out.extend((plain.len() as u32).to_le_bytes());
    out.extend(plain);
    out.resize(*bucket, 0);
    Ok(out)
}

/// The plaintext inside [`pad`]'s output.
///
/// # Errors
/// [`E2eError::Malformed`] for a length beyond the bytes, or padding that is not a bucket size or not zeros.
pub fn unpad(padded: &[u8]) -> Result<&[u8], E2eError> {
    let bad = |why: &str| E2eError::Malformed(format!("padding: {why}"));
    if !BUCKETS.contains(&padded.len()) {
        return Err(bad("not a bucket size"));
    }
    let len = u32::from_le_bytes(padded[..4].try_into().map_err(|_| bad("short"))?) as usize;
    let end = 4usize.checked_add(len).filter(|e| *e <= padded.len()).ok_or_else(|| bad("length"))?;
    if padded[end..].iter().any(|b| *b != 0) {
        return Err(bad("not zeros"));
    }
    Ok(&padded[4..end])
}

/// Pickles `session` encrypted under `key`.
pub fn pickle_session(session: &Session, key: &[u8; 32]) -> String {
    session.pickle().encrypt(key)
}

/// A session from [`pickle_session`].
///
/// # Errors
/// [`E2eError::Malformed`].
pub fn unpickle_session(pickle: &str, key: &[u8; 32]) -> Result<Session, E2eError> {
    let p =
        vodozemac::olm::SessionPickle::from_encrypted(pickle, key).map_err(|e| E2eError::Malformed(e.to_string()))?;
    Ok(Session::from_pickle(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Side {
        keys: NodeKeys,
        device: Device,
        sessions: Vec<Session>,
    }

    fn side() -> Side {
        Side { keys: NodeKeys::generate(), device: Device::new(), sessions: Vec::new() }
    }

    fn send(from: &mut Side, to: &mut Side, text: &[u8]) -> Envelope {
        if from.sessions.is_empty() {
            let prekey = to.device.prekey(&to.keys);
            from.sessions.push(from.device.outbound(&to.keys.peer_id(), &prekey).unwrap());
        }
        let device = from.device.device_key(&from.keys);
        encrypt(&mut from.sessions[0], &device, &pad(text).unwrap()).unwrap()
    }

    fn receive(to: &mut Side, from: &PeerId, envelope: &Envelope) -> Result<Vec<u8>, E2eError> {
        let padded = to.device.decrypt(from, &mut to.sessions, envelope)?;
        Ok(unpad(&padded)?.to_vec())
    }

    #[test]
    fn a_published_fallback_prekey_starts_sessions_for_several_senders_and_survives_one_rotation() {
        let mut bob = side();
        let published = bob.device.fallback_prekey(&bob.keys);
        let bp = bob.keys.peer_id();
        let mut senders: Vec<Side> = (0..3).map(|_| side()).collect();
        for (i, s) in senders.iter_mut().enumerate() {
            s.sessions.push(s.device.outbound(&bp, &published).unwrap());
            let e = encrypt(&mut s.sessions[0], &s.device.device_key(&s.keys), &pad(&[i as u8; 4]).unwrap()).unwrap();
            let mut sessions = Vec::new();
            let padded = bob.device.decrypt(&s.keys.peer_id(), &mut sessions, &e).unwrap();
            assert_eq!(unpad(&padded).unwrap(), &[i as u8; 4], "sender {i}");
        }
        // rotated: a message made with the previous prekey still opens; the one before that does not
        let mut late = side();
        late.sessions.push(late.device.outbound(&bp, &published).unwrap());
        let e = encrypt(&mut late.sessions[0], &late.device.device_key(&late.keys), &pad(b"late").unwrap()).unwrap();
        let second = bob.device.fallback_prekey(&bob.keys);
        assert_ne!(second.one_time_key, published.one_time_key);
        assert!(bob.device.decrypt(&late.keys.peer_id(), &mut Vec::new(), &e).is_ok());
        bob.device.fallback_prekey(&bob.keys);
        let mut later = side();
        later.sessions.push(later.device.outbound(&bp, &published).unwrap());
        let e = encrypt(&mut later.sessions[0], &later.device.device_key(&later.keys), &pad(b"x").unwrap()).unwrap();
        assert!(bob.device.decrypt(&later.keys.peer_id(), &mut Vec::new(), &e).is_err());
        // a prekey signed by someone else is refused
        let mallory = NodeKeys::generate();
        assert!(matches!(late.device.outbound(&mallory.peer_id(), &second), Err(E2eError::BadSignature(_))));
    }

    #[test]
    fn two_devices_talk_both_ways_and_replays_and_forgeries_fail() {
        let (mut a, mut b) = (side(), side());
        let (ap, bp) = (a.keys.peer_id(), b.keys.peer_id());
        for i in 0..5u8 {
            let e = send(&mut a, &mut b, &[i; 10]);
            assert_eq!(e.message_type, 0, "pre-key messages until bob answers");
            assert_eq!(receive(&mut b, &ap, &e).unwrap(), vec![i; 10]);
        }
        let reply = send(&mut b, &mut a, b"hello alice");
        assert_eq!(reply.message_type, 1);
        assert_eq!(receive(&mut a, &bp, &reply).unwrap(), b"hello alice");
        let e = send(&mut a, &mut b, b"normal now");
        assert_eq!(e.message_type, 1);
        assert_eq!(receive(&mut b, &ap, &e).unwrap(), b"normal now");
        // the same message twice: the ratchet has moved on
        assert!(receive(&mut b, &ap, &e).is_err());
        // an envelope claiming to be from someone else than the authenticated sender
        let e = send(&mut a, &mut b, b"x");
        let mallory = NodeKeys::generate().peer_id();
        assert!(matches!(receive(&mut b, &mallory, &e), Err(E2eError::BadSignature(_))));
        // a flipped ciphertext bit
        let mut e = send(&mut a, &mut b, b"y");
        let n = e.ciphertext.len();
        e.ciphertext[n / 2] ^= 1;
        assert!(receive(&mut b, &ap, &e).is_err());
        // sizes are buckets only
        assert_eq!(send(&mut a, &mut b, b"").ciphertext.len(), send(&mut a, &mut b, &[7; 200]).ciphertext.len());
    }

    #[test]
    fn both_sides_starting_at_once_still_talk_and_pickles_round_trip() {
        let (mut a, mut b) = (side(), side());
        let (ap, bp) = (a.keys.peer_id(), b.keys.peer_id());
        let ea = send(&mut a, &mut b, b"from a");
        let eb = send(&mut b, &mut a, b"from b");
        assert_eq!(receive(&mut b, &ap, &ea).unwrap(), b"from a");
        assert_eq!(receive(&mut a, &bp, &eb).unwrap(), b"from b");
        let key = [9u8; 32];
        let device = Device::unpickle(&a.device.pickle(&key), &key).unwrap();
        assert_eq!(device.device_key(&a.keys), a.device.device_key(&a.keys));
        assert!(Device::unpickle(&a.device.pickle(&key), &[8; 32]).is_err());
        a.sessions = a.sessions.iter().map(|s| unpickle_session(&pickle_session(s, &key), &key).unwrap()).collect();
        let e = send(&mut a, &mut b, b"after a restart");
        assert_eq!(receive(&mut b, &ap, &e).unwrap(), b"after a restart");
    }

    #[test]
    fn a_prekey_from_someone_else_is_refused() {
        let (a, mut b) = (side(), side());
        let mut prekey = b.device.prekey(&b.keys);
        let other = NodeKeys::generate();
        assert!(matches!(a.device.outbound(&other.peer_id(), &prekey), Err(E2eError::BadSignature(_))));
        prekey.one_time_key[0] ^= 1;
        assert!(matches!(a.device.outbound(&b.keys.peer_id(), &prekey), Err(E2eError::BadSignature(_))));
    }

    #[test]
    fn padding_hides_sizes_and_refuses_garbage() {
        for n in [0usize, 1, 252, 253, 5000, 65532] {
            let p = pad(&vec![1; n]).unwrap();
            assert!(BUCKETS.contains(&p.len()));
            assert_eq!(unpad(&p).unwrap().len(), n);
        }
        assert!(matches!(pad(&vec![0; 65533]), Err(E2eError::TooLarge(_))));
        let mut p = pad(b"abc").unwrap();
        p[100] = 1;
        assert!(unpad(&p).is_err());
        assert!(unpad(&[0; 100]).is_err());
        let mut p = pad(b"abc").unwrap();
        p[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(unpad(&p).is_err());
    }
}
