//! Signed DHT records.
//!
//! Every value bitdust puts into the Kademlia DHT is a [`SignedRecord`]: the publisher's peer id, a kind, a
//! revision, a timestamp and a payload, signed with the publisher's Ed25519 key over
//! `RECORD_PURPOSE || postcard(unsigned fields)`. The DHT key is derived from the kind and the publisher
//! ([`record_key`]), so nobody can write under another node's key. Every node that stores or reads a record
//! verifies it, and refuses one whose revision is lower than the one it holds ([`accept`]).
//!
//! One kind is keyed by its content instead: a **nickname claim** ([`RecordKind::Nickname`]) lives under
//! [`nickname_key`] of the nickname it claims. Claims are first come: a node holding a live claim (signed less than
//! [`NICKNAME_CLAIM_SECS`] ago; the owner signs it again at every announcement) refuses another publisher's claim
//! for the same nickname, and refuses claims dated in the future. A reader that finds several claims takes the
//! publisher most copies agree on ([`pick`]).

use libp2p_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::keys::{self, NodeKeys, SignatureError};

const RECORD_PURPOSE: &[u8] = b"bitdust/dht-record/v1\0";
/// The largest record value accepted from a peer, in bytes.
pub const MAX_RECORD_BYTES: usize = 16 * 1024;

/// What a record holds; part of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecordKind {
    /// The publisher's [`crate::identity::SignedIdentity`].
    Identity,
    /// The publisher's current suppliers (the storage wing's `SupplierList`), so a new device finds them from the
    /// key alone.
    Suppliers,
    /// A claim of the nickname in the payload (UTF-8, see [`crate::identity::validate_nickname`]), keyed by the
    /// nickname ([`nickname_key`]).
    Nickname,
    /// The publisher's signed prekey for starting an end-to-end encrypted session while it is offline (the
    /// messages wing's `Prekey`, postcard).
    Prekey,
}

impl RecordKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Suppliers => "suppliers",
            Self::Nickname => "nickname",
            Self::Prekey => "prekey",
        }
    }
}

/// Payload of a [`RecordKind::Suppliers`] record: who holds which position of the publisher's storage. Shared by
/// the wings: storage publishes it; messages uses it to find a user's mailboxes (its suppliers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SupplierList {
    /// `(position, supplier peer id bytes)` pairs.
    pub suppliers: Vec<(u16, Vec<u8>)>,
}

impl SupplierList {
    /// Decodes a record's payload.
    ///
    /// # Errors
    /// [`RecordError::Malformed`].
    pub fn decode(payload: &[u8]) -> Result<Self, RecordError> {
        postcard::from_bytes(payload).map_err(|e| RecordError::Malformed(e.to_string()))
    }

    /// The suppliers' peer ids (entries that are not peer ids skipped).
    pub fn peers(&self) -> Vec<PeerId> {
        self.suppliers.iter().filter_map(|(_, p)| PeerId::from_bytes(p).ok()).collect()
    }
}

/// Seconds a nickname claim stays alive after it was signed: another identity cannot take the nickname before.
/// The owner signs its claim again at every announcement (every 10 minutes by default).
pub const NICKNAME_CLAIM_SECS: u64 = 7 * 24 * 3600;
/// Seconds a record's timestamp may be ahead of the clock of the node judging it.
pub const CLOCK_SKEW_SECS: u64 = 600;

/// The DHT key of the record of `kind` published by `publisher`: `/bitdust/<kind>/<peer id bytes>`.
pub fn record_key(kind: RecordKind, publisher: &PeerId) -> Vec<u8> {
    let mut key = format!("/bitdust/{}/", kind.tag()).into_bytes();
    key.extend(publisher.to_bytes());
    key
}

/// The DHT key of the claim of `nickname` (`/bitdust/nickname/<nickname>`).
pub fn nickname_key(nickname: &str) -> Vec<u8> {
    format!("/bitdust/nickname/{nickname}").into_bytes()
}

/// Whether `key` is the key of a nickname claim.
pub fn is_nickname_key(key: &[u8]) -> bool {
    key.starts_with(b"/bitdust/nickname/")
}

/// The DHT key under which relay servers ("proxy routers") announce themselves as providers.
pub const RELAYS_SERVICE_KEY: &[u8] = b"/bitdust/service/relay/v1";

/// Errors from validating a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("record too large ({0} bytes)")]
    TooLarge(usize),
    /// Could not be decoded.
    #[error("malformed record: {0}")]
    Malformed(String),
    /// Stored under a key that does not belong to its kind and publisher.
    #[error("record stored under a key that is not its publisher's")]
    WrongKey,
    /// A nickname claimed, and alive, by another identity.
    #[error("nickname {nickname:?} is claimed by {owner}")]
    NicknameTaken {
        /// The nickname.
        nickname: String,
        /// The peer id holding it.
        owner: String,
    },
    /// Signed later than the clock allows.
    #[error("record dated {0} s in the future")]
    FromTheFuture(u64),
    /// The signature does not verify.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A lower revision than the one held.
    #[error("stale record: revision {offered} is lower than the {held} already held")]
    Stale {
        /// Revision offered.
        offered: u64,
        /// Revision held.
        held: u64,
    },
}

#[derive(Serialize)]
struct Unsigned<'a> {
    kind: RecordKind,
    publisher: &'a [u8],
    revision: u64,
    timestamp_unix: u64,
    payload: &'a [u8],
}

/// A signed DHT record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRecord {
    /// What the payload is.
    pub kind: RecordKind,
    /// Publisher peer id bytes.
    #[serde(with = "serde_bytes")]
    pub publisher: Vec<u8>,
    /// Strictly increases with each new content.
    pub revision: u64,
    /// Unix seconds at signing.
    pub timestamp_unix: u64,
    /// The content (postcard of the kind's type).
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Ed25519 signature, 64 bytes.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl SignedRecord {
    /// Signs a new record.
    pub fn sign(keys: &NodeKeys, kind: RecordKind, revision: u64, timestamp_unix: u64, payload: Vec<u8>) -> Self {
        let publisher = keys.peer_id().to_bytes();
        let signature = keys.sign(&signed_bytes(kind, &publisher, revision, timestamp_unix, &payload));
        Self { kind, publisher, revision, timestamp_unix, payload, signature }
    }

    /// Signs a claim of `nickname` (a [`RecordKind::Nickname`] record).
    ///
    /// # Errors
    /// [`RecordError::Malformed`] for an invalid nickname.
    pub fn nickname_claim(
        keys: &NodeKeys,
        nickname: &str,
        revision: u64,
        timestamp_unix: u64,
    ) -> Result<Self, RecordError> {
        crate::identity::validate_nickname(nickname).map_err(|e| RecordError::Malformed(e.to_string()))?;
        Ok(Self::sign(keys, RecordKind::Nickname, revision, timestamp_unix, nickname.as_bytes().to_vec()))
    }

    /// The nickname a [`RecordKind::Nickname`] record claims, if it is one and the nickname is valid.
    pub fn claimed_nickname(&self) -> Option<&str> {
        let nickname = std::str::from_utf8(&self.payload).ok()?;
        (self.kind == RecordKind::Nickname && crate::identity::validate_nickname(nickname).is_ok()).then_some(nickname)
    }

    /// The DHT key this record belongs under: [`record_key`] of its kind and publisher, or for a nickname claim
    /// [`nickname_key`] of the nickname.
    ///
    /// # Errors
    /// [`RecordError::Signature`] if the publisher bytes are not a peer id; [`RecordError::Malformed`] for a
    /// nickname claim of an invalid nickname.
    pub fn key(&self) -> Result<Vec<u8>, RecordError> {
        let publisher = keys::peer_id_from_bytes(&self.publisher)?;
        match self.kind {
            RecordKind::Nickname => self
                .claimed_nickname()
                .map(nickname_key)
                .ok_or_else(|| RecordError::Malformed("a nickname claim of an invalid nickname".into())),
            kind => Ok(record_key(kind, &publisher)),
        }
    }

    /// Encodes to bytes (postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("record serializes")
    }

    /// Decodes `value` found under `key` and verifies size, key and signature. Returns the record and
    /// its publisher.
    ///
    /// # Errors
    /// [`RecordError`] for any failed check.
    pub fn decode_verified(key: &[u8], value: &[u8]) -> Result<(Self, PeerId), RecordError> {
        if value.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge(value.len()));
        }
        let record: Self = postcard::from_bytes(value).map_err(|e| RecordError::Malformed(e.to_string()))?;
        let publisher = keys::peer_id_from_bytes(&record.publisher)?;
        if record.key()? != key {
            return Err(RecordError::WrongKey);
        }
        keys::verify(
            &publisher,
            &signed_bytes(record.kind, &record.publisher, record.revision, record.timestamp_unix, &record.payload),
            &record.signature,
        )?;
        Ok((record, publisher))
    }
}

/// Decides whether a verified `offered` record may replace `held`, by the clock now (see [`accept_at`]).
///
/// # Errors
/// As [`accept_at`].
pub fn accept(held: Option<&SignedRecord>, offered: &SignedRecord) -> Result<(), RecordError> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    accept_at(held, offered, now)
}

/// Decides at `now_unix` whether a verified `offered` record may replace `held` (both under the same key): refuses
/// a lower revision, the same revision with a different payload, a record dated more than [`CLOCK_SKEW_SECS`]
/// ahead, and another publisher's claim of a nickname whose held claim is alive.
///
/// # Errors
/// [`RecordError::Stale`], [`RecordError::FromTheFuture`], [`RecordError::NicknameTaken`].
pub fn accept_at(held: Option<&SignedRecord>, offered: &SignedRecord, now_unix: u64) -> Result<(), RecordError> {
    if offered.timestamp_unix > now_unix.saturating_add(CLOCK_SKEW_SECS) {
        return Err(RecordError::FromTheFuture(offered.timestamp_unix - now_unix));
    }
    if let Some(h) = held.filter(|h| h.publisher != offered.publisher) {
        // only a nickname claim can be held under the same key by another publisher (other keys are the publisher's)
        if now_unix < h.timestamp_unix.saturating_add(NICKNAME_CLAIM_SECS) {
            let owner = keys::peer_id_from_bytes(&h.publisher).map(|p| p.to_string()).unwrap_or_default();
            let nickname = h.claimed_nickname().unwrap_or_default().to_string();
            return Err(RecordError::NicknameTaken { nickname, owner });
        }
        return Ok(());
    }
    match held {
        // a lower revision, or the same revision with other content (revisions increase on every change)
        Some(h)
            if offered.revision < h.revision || (offered.revision == h.revision && offered.payload != h.payload) =>
        {
            Err(RecordError::Stale { offered: offered.revision, held: h.revision })
        }
        _ => Ok(()),
    }
}

/// The record to believe among valid `copies` found under one key: the highest revision; for nickname claims from
/// several publishers, first the publisher most copies agree on (ties: the earliest timestamp), so a claim planted
/// on one node that lacked the real one does not win a lookup.
pub fn pick(copies: &[SignedRecord]) -> Option<&SignedRecord> {
    let mut by_publisher: Vec<(&[u8], usize, u64)> = Vec::new();
    for c in copies {
        match by_publisher.iter_mut().find(|(p, ..)| *p == c.publisher.as_slice()) {
            Some((_, n, first)) => {
                *n += 1;
                *first = (*first).min(c.timestamp_unix);
            }
            None => by_publisher.push((&c.publisher, 1, c.timestamp_unix)),
        }
    }
    let (publisher, ..) = by_publisher.into_iter().max_by(|a, b| a.1.cmp(&b.1).then(b.2.cmp(&a.2)))?;
    copies.iter().filter(|c| c.publisher == publisher).max_by_key(|c| (c.revision, c.timestamp_unix))
}

fn signed_bytes(kind: RecordKind, publisher: &[u8], revision: u64, timestamp_unix: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = RECORD_PURPOSE.to_vec();
    out.extend(
        postcard::to_stdvec(&Unsigned { kind, publisher, revision, timestamp_unix, payload })
            .expect("record serializes"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> (NodeKeys, SignedRecord) {
        let keys = NodeKeys::from_seed([3u8; 32]).unwrap();
        let rec = SignedRecord::sign(&keys, RecordKind::Suppliers, 5, 1_700_000_000, b"payload".to_vec());
        (keys, rec)
    }

    #[test]
    fn record_round_trips() {
        let (keys, rec) = sample();
        let key = record_key(RecordKind::Suppliers, &keys.peer_id());
        let (back, publisher) = SignedRecord::decode_verified(&key, &rec.encode()).unwrap();
        assert_eq!(back, rec);
        assert_eq!(publisher, keys.peer_id());
    }

    #[test]
    fn record_under_someone_elses_key_is_refused() {
        let (_, rec) = sample();
        let other = NodeKeys::from_seed([4u8; 32]).unwrap();
        let key = record_key(RecordKind::Suppliers, &other.peer_id());
        assert_eq!(SignedRecord::decode_verified(&key, &rec.encode()).unwrap_err(), RecordError::WrongKey);
    }

    #[test]
    fn lower_revision_is_refused() {
        let (keys, rec) = sample();
        let older = SignedRecord::sign(&keys, RecordKind::Suppliers, 4, 1_700_000_000, b"old".to_vec());
        assert!(matches!(accept(Some(&rec), &older), Err(RecordError::Stale { offered: 4, held: 5 })));
        assert!(accept(Some(&older), &rec).is_ok());
        assert!(accept(None, &older).is_ok());
        let same_revision = SignedRecord::sign(&keys, RecordKind::Suppliers, 5, 1_700_000_001, b"other".to_vec());
        assert!(accept(Some(&rec), &same_revision).is_err());
        assert!(accept(Some(&rec), &rec).is_ok());
    }

    #[test]
    fn unsigned_record_is_refused() {
        let (keys, mut rec) = sample();
        rec.signature.clear();
        let key = record_key(RecordKind::Suppliers, &keys.peer_id());
        assert!(SignedRecord::decode_verified(&key, &rec.encode()).is_err());
    }

    /// Issue 15: first come, held by the owner's signature; refreshed by the owner; free again once dead.
    #[test]
    fn a_live_nickname_claim_cannot_be_taken_by_another_identity() {
        let (alice, mallory) = (NodeKeys::from_seed([1; 32]).unwrap(), NodeKeys::from_seed([2; 32]).unwrap());
        let now = 1_800_000_000;
        let claim = SignedRecord::nickname_claim(&alice, "alice", 1, now).unwrap();
        let key = nickname_key("alice");
        assert_eq!(SignedRecord::decode_verified(&key, &claim.encode()).unwrap().1, alice.peer_id());
        assert_eq!(
            SignedRecord::decode_verified(&nickname_key("bob"), &claim.encode()).unwrap_err(),
            RecordError::WrongKey
        );
        let theft = SignedRecord::nickname_claim(&mallory, "alice", 99, now + 5).unwrap();
        assert!(matches!(accept_at(Some(&claim), &theft, now + 10), Err(RecordError::NicknameTaken { .. })));
        // the owner refreshes its claim (same revision, same nickname, a later timestamp)
        let refreshed = SignedRecord::nickname_claim(&alice, "alice", 1, now + 600).unwrap();
        assert!(accept_at(Some(&claim), &refreshed, now + 600).is_ok());
        // a claim dated in the future is refused (it would stay alive for ever)
        let future = SignedRecord::nickname_claim(&mallory, "mallory", 1, now + 3600).unwrap();
        assert!(matches!(accept_at(None, &future, now), Err(RecordError::FromTheFuture(3600))));
        // once dead (not refreshed for the claim's lifetime) the nickname is free
        assert!(accept_at(Some(&claim), &theft, now + NICKNAME_CLAIM_SECS).is_ok());
        assert!(SignedRecord::nickname_claim(&alice, "Not Valid", 1, now).is_err());
        // a reader believes the publisher most copies agree on
        let copies = [theft.clone(), claim.clone(), refreshed.clone()];
        assert_eq!(pick(&copies), Some(&refreshed));
        assert_eq!(pick(std::slice::from_ref(&theft)), Some(&theft));
        assert_eq!(pick(&[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any single bit flipped in an encoded record is detected.
        #[test]
        fn any_bit_flip_in_record_is_detected(bit in 0usize..10_000) {
            let (keys, rec) = sample();
            let key = record_key(RecordKind::Suppliers, &keys.peer_id());
            let mut bytes = rec.encode();
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(SignedRecord::decode_verified(&key, &bytes).is_err());
        }
    }
}
