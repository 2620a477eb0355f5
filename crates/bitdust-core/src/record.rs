//! Signed DHT records.
//!
//! Every value bitdust puts into the Kademlia DHT is a [`SignedRecord`]: the publisher's peer id, a kind, a
//! revision, a timestamp and a payload, signed with the publisher's Ed25519 key over
//! `RECORD_PURPOSE || postcard(unsigned fields)`. The DHT key is derived from the kind and the publisher
//! ([`record_key`]), so nobody can write under another node's key. Every node that stores or reads a record
//! verifies it, and refuses one whose revision is lower than the one it holds ([`accept`]).

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
}

impl RecordKind {
    fn tag(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Suppliers => "suppliers",
        }
    }
}

/// The DHT key of the record of `kind` published by `publisher`: `/bitdust/<kind>/<peer id bytes>`.
pub fn record_key(kind: RecordKind, publisher: &PeerId) -> Vec<u8> {
    let mut key = format!("/bitdust/{}/", kind.tag()).into_bytes();
    key.extend(publisher.to_bytes());
    key
}

/// The DHT key under which nodes with `nickname` announce themselves as providers.
pub fn nickname_key(nickname: &str) -> Vec<u8> {
    format!("/bitdust/nickname/{nickname}").into_bytes()
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

    /// The DHT key this record belongs under.
    ///
    /// # Errors
    /// [`RecordError::Signature`] if the publisher bytes are not a peer id.
    pub fn key(&self) -> Result<Vec<u8>, RecordError> {
        Ok(record_key(self.kind, &keys::peer_id_from_bytes(&self.publisher)?))
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
        if record_key(record.kind, &publisher) != key {
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

/// Decides whether a verified `offered` record may replace `held`: refuses a lower revision, and the
/// same revision with a different payload.
///
/// # Errors
/// [`RecordError::Stale`] if `offered.revision < held.revision`, or equal with another payload.
pub fn accept(held: Option<&SignedRecord>, offered: &SignedRecord) -> Result<(), RecordError> {
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
