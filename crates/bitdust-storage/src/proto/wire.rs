//! Wire messages of `/bitdust/storage/1`, the customer ↔ supplier protocol, carried over libp2p
//! request-response on Noise-encrypted, authenticated connections: the remote peer id is the sender.
//!
//! ```text
//! customer                                   supplier
//!   Contract(customer-signed contract)  -->   checks signature, freshness, donated space
//!                                       <--   ContractAccepted(contract signed by both)
//!   PutFragment{id, bytes}              -->   owner = sender; checks contract, quota, fragment format
//!                                       <--   Stored
//!   GetFragment{owner, id}              -->   honoured only if sender == owner
//!                                       <--   Fragment(bytes) | Error(NotFound | Denied)
//!   DeleteFragment{id}                  -->   deletes sender's own fragment only
//!   PutCatalog(sealed)                  -->   checks owner signature == sender, revision not lower
//!   GetCatalog{owner}                   -->   sender == owner
//!   HoldRecords(signed DHT records)     -->   the sender's own identity and supplier list, under contract;
//!                                       <--   Stored          the supplier republishes them while the sender is away
//! ```
//! Messages are postcard-encoded behind a 4-byte little-endian length; see `bitdust-net` for the limits.

use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};

use bitdust_core::keys::{self, NodeKeys, SignatureError};

/// Protocol name.
pub const STORAGE_PROTOCOL: &str = "/bitdust/storage/1";
/// The largest request or response accepted, in bytes: a sealed catalog at its limit plus framing.
pub const MAX_MESSAGE_BYTES: usize = crate::proto::catalog::MAX_SEALED_CATALOG_BYTES + 4096;
/// A contract's start time may differ from the supplier's clock by at most this much (replay window).
pub const CONTRACT_CLOCK_SKEW_SECS: u64 = 600;
const CONTRACT_PURPOSE: &[u8] = b"bitdust/contract/v1\0";

/// The agreement between a customer and a supplier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    /// Customer peer id bytes.
    #[serde(with = "serde_bytes")]
    pub customer: Vec<u8>,
    /// Supplier peer id bytes.
    #[serde(with = "serde_bytes")]
    pub supplier: Vec<u8>,
    /// The supplier's position (shard index) in the customer's layout.
    pub position: u16,
    /// Needed space: the most bytes the customer may store there.
    pub needed_bytes: u64,
    /// Unix seconds when the contract starts.
    pub start_unix: u64,
    /// Length in seconds.
    pub duration_secs: u64,
    /// Random, so two contracts never sign the same bytes.
    pub nonce: [u8; 16],
}

/// A contract with the customer's and (once accepted) the supplier's signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedContract {
    /// The terms.
    pub contract: Contract,
    /// Customer's Ed25519 signature over the terms.
    #[serde(with = "serde_bytes")]
    pub customer_signature: Vec<u8>,
    /// Supplier's Ed25519 signature over the terms, once accepted.
    pub supplier_signature: Option<Vec<u8>>,
}

impl SignedContract {
    /// Signs `contract` as its customer.
    pub fn propose(keys: &NodeKeys, contract: Contract) -> Self {
        let customer_signature = keys.sign(&contract_bytes(&contract));
        Self { contract, customer_signature, supplier_signature: None }
    }

    /// Adds the supplier's signature.
    pub fn accept(mut self, keys: &NodeKeys) -> Self {
        self.supplier_signature = Some(keys.sign(&contract_bytes(&self.contract)));
        self
    }

    /// Verifies the customer's signature and, if present, the supplier's. Returns (customer, supplier).
    ///
    /// # Errors
    /// [`SignatureError`] on any failure.
    pub fn verify(&self) -> Result<(PeerId, PeerId), SignatureError> {
        let customer = keys::peer_id_from_bytes(&self.contract.customer)?;
        let supplier = keys::peer_id_from_bytes(&self.contract.supplier)?;
        let bytes = contract_bytes(&self.contract);
        keys::verify(&customer, &bytes, &self.customer_signature)?;
        if let Some(sig) = &self.supplier_signature {
            keys::verify(&supplier, &bytes, sig)?;
        }
        Ok((customer, supplier))
    }
}

fn contract_bytes(c: &Contract) -> Vec<u8> {
    let mut out = CONTRACT_PURPOSE.to_vec();
    out.extend(postcard::to_stdvec(c).expect("contract serializes"));
    out
}

/// A request on `/bitdust/storage/1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Ask for service under a customer-signed contract.
    Contract(SignedContract),
    /// Store a fragment under the sender's namespace.
    PutFragment {
        /// Keyed fragment id.
        id: [u8; 32],
        /// Fragment bytes, header included (reference-counted: retries and concurrent sends share them).
        data: bytes::Bytes,
    },
    /// Read a fragment of `owner` (must be the sender).
    GetFragment {
        /// Owner peer id bytes.
        #[serde(with = "serde_bytes")]
        owner: Vec<u8>,
        /// Keyed fragment id.
        id: [u8; 32],
    },
    /// Delete one of the sender's fragments.
    DeleteFragment {
        /// Keyed fragment id.
        id: [u8; 32],
    },
    /// Store the sender's sealed catalog.
    PutCatalog(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Read `owner`'s sealed catalog (must be the sender).
    GetCatalog {
        /// Owner peer id bytes.
        #[serde(with = "serde_bytes")]
        owner: Vec<u8>,
    },
    /// Are you there, and do you still hold our contract?
    Heartbeat,
    /// Proof of storage: the BLAKE3 verified-streaming (Bao) slice `[start, start + len)` of the shard of
    /// fragment `id` of `owner` (must be the sender). The customer checks it against the shard hash it
    /// recorded, so only the real bytes pass.
    Audit {
        /// Owner peer id bytes.
        #[serde(with = "serde_bytes")]
        owner: Vec<u8>,
        /// Keyed fragment id.
        id: [u8; 32],
        /// First byte of the slice within the shard.
        start: u64,
        /// Slice length, at most [`MAX_AUDIT_SLICE`].
        len: u32,
    },
    /// List the ids of the sender's fragments, in order, after `after`, at most `limit`
    /// (≤ [`MAX_LIST`]).
    ListFragments {
        /// Start after this id.
        after: Option<[u8; 32]>,
        /// Most ids to return.
        limit: u32,
    },
    /// Keep the sender's signed DHT records (encoded [`bitdust_core::record::SignedRecord`]s: its identity and its
    /// supplier list, at most [`MAX_HELD_RECORDS`]) and publish them to the DHT again while the sender is away, so
    /// that a new device finds its suppliers from the key alone after any outage.
    HoldRecords(Vec<serde_bytes::ByteBuf>),
    /// End the sender's contract now (a customer that fired this supplier, or needs it no longer): the supplier
    /// takes no new data from it and frees what it holds after its grace period. Answered with `Deleted`.
    EndContract,
    /// Read a fragment of `owner` (another peer) that `grant` lets the sender fetch
    /// ([`crate::proto::grant::SignedGrant::allows`]). Answered like `GetFragment`.
    GetGranted {
        /// Owner peer id bytes.
        #[serde(with = "serde_bytes")]
        owner: Vec<u8>,
        /// Keyed fragment id.
        id: [u8; 32],
        /// The owner's grant.
        grant: crate::proto::grant::SignedGrant,
    },
    /// Read a fragment of `owner` (another peer) that a share's `grant` lets the sender fetch
    /// ([`crate::proto::grant::SignedAccessGrant::allows`]) and that the owner has not revoked. Answered like
    /// `GetFragment`.
    GetShared {
        /// Owner peer id bytes.
        #[serde(with = "serde_bytes")]
        owner: Vec<u8>,
        /// Keyed fragment id.
        id: [u8; 32],
        /// The owner's grant.
        grant: crate::proto::grant::SignedAccessGrant,
    },
    /// The sender revokes its access grants `grants` (id, and when the grant expires: the supplier remembers the
    /// revocation until then), at most [`crate::proto::grant::MAX_REVOKE`]: from now on the supplier refuses them.
    /// Answered with `Revoked`.
    Revoke {
        /// Grant ids and their expiry, Unix seconds.
        grants: Vec<([u8; 16], u64)>,
    },
}

/// Most records in one [`Request::HoldRecords`] (one per record kind).
pub const MAX_HELD_RECORDS: usize = 4;

/// Largest audited slice in bytes.
pub const MAX_AUDIT_SLICE: u32 = 64 * 1024;
/// Most ids in one [`Response::FragmentList`].
pub const MAX_LIST: u32 = 100_000;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The supplier does not accept this customer (no space, not a supplier, bad terms).
    Refused,
    /// No contract with the sender.
    NoContract,
    /// Storing would exceed the contract's needed space.
    QuotaExceeded,
    /// No such fragment or catalog.
    NotFound,
    /// The sender is not the owner.
    Denied,
    /// The request is malformed (bad fragment, bad signature).
    Malformed,
    /// A catalog revision lower than the one held.
    Stale,
    /// The supplier failed internally (disk error).
    Internal,
}

/// A response on `/bitdust/storage/1`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// The contract, now signed by the supplier too.
    ContractAccepted(SignedContract),
    /// A fragment or catalog was stored.
    Stored,
    /// The requested fragment.
    Fragment(bytes::Bytes),
    /// The fragment was deleted (or did not exist).
    Deleted,
    /// The requested sealed catalog.
    Catalog(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Answer to a heartbeat: the contract holds; usage.
    Alive {
        /// Bytes of the sender's fragments stored.
        used_bytes: u64,
        /// Number of the sender's fragments.
        fragments: u64,
    },
    /// The Bao slice answering an audit.
    AuditProof(bytes::Bytes),
    /// Fragment ids, ascending.
    FragmentList(Vec<[u8; 32]>),
    /// Refused, with a code and a human message.
    Error(ErrorCode, String),
    /// The grants named are refused from now on.
    Revoked,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn contract(customer: &NodeKeys, supplier: &NodeKeys) -> Contract {
        Contract {
            customer: customer.peer_id().to_bytes(),
            supplier: supplier.peer_id().to_bytes(),
            position: 2,
            needed_bytes: 1 << 30,
            start_unix: 1_700_000_000,
            duration_secs: 86_400,
            nonce: [4u8; 16],
        }
    }

    #[test]
    fn contract_signatures_verify_and_bind_terms() {
        let (c, s) = (NodeKeys::from_seed([1; 32]).unwrap(), NodeKeys::from_seed([2; 32]).unwrap());
        let signed = SignedContract::propose(&c, contract(&c, &s)).accept(&s);
        assert_eq!(signed.verify().unwrap(), (c.peer_id(), s.peer_id()));
        let mut changed = signed.clone();
        changed.contract.needed_bytes += 1;
        assert!(changed.verify().is_err());
        let forged = SignedContract::propose(&s, contract(&c, &s));
        assert!(forged.verify().is_err());
    }

    proptest! {
        /// Every wire message round-trips through postcard.
        #[test]
        fn requests_round_trip(id in any::<[u8; 32]>(), data in prop::collection::vec(any::<u8>(), 0..512)) {
            for req in [
                Request::PutFragment { id, data: data.clone().into() },
                Request::GetFragment { owner: data.clone(), id },
                Request::DeleteFragment { id },
                Request::PutCatalog(data.clone()),
                Request::GetCatalog { owner: data.clone() },
            ] {
                let bytes = postcard::to_stdvec(&req).unwrap();
                let back: Request = postcard::from_bytes(&bytes).unwrap();
                prop_assert_eq!(format!("{back:?}"), format!("{req:?}"));
            }
            for resp in [Response::Stored, Response::Fragment(data.clone().into()), Response::Deleted, Response::Catalog(data.clone()), Response::Error(ErrorCode::Denied, "x".into())] {
                let bytes = postcard::to_stdvec(&resp).unwrap();
                let back: Response = postcard::from_bytes(&bytes).unwrap();
                prop_assert_eq!(format!("{back:?}"), format!("{resp:?}"));
            }
        }

        /// Arbitrary bytes never panic the decoder.
        #[test]
        fn garbage_does_not_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = postcard::from_bytes::<Request>(&bytes);
            let _ = postcard::from_bytes::<Response>(&bytes);
        }
    }
}
