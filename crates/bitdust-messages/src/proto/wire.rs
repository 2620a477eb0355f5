//! The `/bitdust/messages/1` protocol (libp2p request-response; the sender is the authenticated peer) and the
//! plaintext inside an envelope. Every message is postcard.

use serde::{Deserialize, Serialize};

use crate::proto::e2e::{Envelope, Prekey, BUCKETS};
use crate::proto::files::{FileOffer, MAX_SLICE_BYTES};

/// Protocol name.
pub const MESSAGES_PROTOCOL: &str = "/bitdust/messages/1";
/// The longest text of one message, in bytes (UTF-8).
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// The largest request or response, in bytes: an envelope of the largest padded plaintext and its overheads.
pub const MAX_MESSAGE_BYTES: usize = BUCKETS[BUCKETS.len() - 1] + 4096;

/// A request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Give me a prekey to start a session with you.
    Prekey,
    /// Take this encrypted message.
    Deliver(Envelope),
    /// Are you online? Answered to contacts only (presence is never published).
    Presence,
    /// Keep this envelope for `recipient` (one of whose suppliers you are) until it collects it.
    Deposit {
        /// The recipient's peer id bytes.
        recipient: Vec<u8>,
        /// The envelope, encrypted to the recipient.
        envelope: Envelope,
        /// Proof of work for this deposit ([`crate::proto::pow`]).
        pow: u64,
    },
    /// Give me (the recipient) the envelopes kept for me, after index `after`, at most `limit` (≤ [`MAX_COLLECT`]).
    Collect {
        /// Start after this index (0: from the first).
        after: u64,
        /// Most items.
        limit: u32,
    },
    /// I (the recipient) have these: delete them.
    Ack(Vec<u64>),
    /// I (the recipient) keep these contacts: their deposits are not strangers' ([`crate::proto::pow::contact_tag`]
    /// of each, at most [`MAX_MAILBOX_CONTACTS`]).
    MailboxContacts(Vec<[u8; 32]>),
    /// Give me (the recipient of the offer) the Bao slice of `len` bytes at `offset` of file transfer `transfer`.
    FileGet {
        /// The offer's transfer id.
        transfer: [u8; 16],
        /// Start, in bytes.
        offset: u64,
        /// Length, at most [`crate::proto::files::CHUNK_BYTES`].
        len: u64,
    },
    /// Take these encrypted messages, in this order (several sent at about the same time travel together: one
    /// request and one disk flush for all). At most [`MAX_BATCH`], together at most [`MAX_MESSAGE_BYTES`].
    DeliverMany(Vec<Envelope>),
    /// Your public shares matching these words (normalized, at most
    /// [`crate::proto::public::MAX_QUERY_WORDS`]): the search index's second step.
    Listing(Vec<String>),
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A prekey (signed by the recipient's identity).
    Prekey(Prekey),
    /// The message was decrypted and stored.
    Delivered,
    /// Refused, and why.
    Error(String),
    /// Online (the answer to `Presence`, to a contact).
    Present,
    /// Kept in the mailbox.
    Stored,
    /// Envelopes kept for the asker, in the order they came.
    Mail(Vec<MailItem>),
    /// Deleted.
    Acked,
    /// No session here decrypts that (a normal message): this node lost the sender's session (a new device
    /// restored from the key); start a new one with a prekey and send again.
    NoSession,
    /// The Bao slice asked for ([`crate::proto::files::verify`] checks it).
    FileSlice(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The answer to each envelope of a `DeliverMany`, in its order: `Delivered`, `NoSession` or `Error` (whose
    /// text is cut to [`MAX_BATCH_ERROR`] bytes).
    DeliveredMany(Vec<Response>),
    /// The answerer's own public shares matching a `Listing`, best first (at most
    /// [`crate::proto::public::MAX_LISTING`] and [`crate::proto::public::MAX_LISTING_BYTES`]).
    Listing(Vec<crate::proto::public::SignedPublicEntry>),
}

/// Most envelopes one `DeliverMany` carries.
pub const MAX_BATCH: usize = 64;
/// Longest error text, in bytes, of one answer in a `DeliveredMany`.
pub const MAX_BATCH_ERROR: usize = 200;

/// An envelope kept in a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailItem {
    /// Its index in the mailbox (rising).
    pub index: u64,
    /// The sender's peer id bytes (authenticated when it was deposited).
    pub from: Vec<u8>,
    /// When it was deposited, Unix seconds.
    pub at_unix: u64,
    /// The envelope.
    pub envelope: Envelope,
}

/// Most contacts a `MailboxContacts` names.
pub const MAX_MAILBOX_CONTACTS: usize = 4096;

/// Most envelopes one `Collect` returns.
pub const MAX_COLLECT: u32 = 16;

/// What a message says, inside the envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Text, at most [`MAX_TEXT_BYTES`].
    Text(String),
    /// A file to fetch from the sender ([`crate::proto::files`]).
    File(FileOffer),
    /// Read receipts: the recipient has shown these of the sender's messages (at most [`MAX_RECEIPT_IDS`]).
    Read(Vec<[u8; 16]>),
    /// The recipient has fetched the file of this transfer from the sender's suppliers: the sender may forget it.
    Fetched([u8; 16]),
    /// About a group: a roster, a sender key, a leave ([`crate::proto::groups`]).
    Group(crate::proto::groups::GroupControl),
    /// A share of one of the sender's backups ([`crate::proto::shares`]).
    Share(crate::proto::shares::ShareOffer),
    /// The sender revoked its share of this id.
    Unshare([u8; 16]),
    /// The sender, a grantee with write access, adds a version to the recipient's share.
    Contribute(crate::proto::shares::Contribution),
}

/// Message ids one read receipt names at most.
pub const MAX_RECEIPT_IDS: usize = 512;

/// The plaintext of a message (padded before encryption).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plain {
    /// Random id: the replay guard and the delivery receipts name it.
    pub id: [u8; 16],
    /// The sender's sequence number in this conversation (1, 2, ...): the order the sender wrote them.
    pub seq: u64,
    /// When the sender wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// The content.
    pub body: Body,
}

/// The largest request of the kind `head` starts with (postcard variant index first), for the network's per-kind
/// limit: a prekey request is a byte, a delivery at most [`MAX_MESSAGE_BYTES`].
pub fn request_limit(head: &[u8]) -> usize {
    match head.first() {
        Some(0) => 16,
        Some(1) => MAX_MESSAGE_BYTES,
        Some(2) => 16,
        Some(3) => MAX_MESSAGE_BYTES + 128,
        Some(4) => 32,
        Some(5) => 16 + 10 * MAX_COLLECT as usize,
        Some(6) => 8 + 32 * MAX_MAILBOX_CONTACTS,
        Some(7) => 64,
        Some(8) => MAX_MESSAGE_BYTES + 16,
        Some(9) => 1024,
        _ => 0,
    }
}

/// The largest response of the kind `head` starts with.
pub fn response_limit(head: &[u8]) -> usize {
    match head.first() {
        Some(0) => 1024,
        Some(1) => 16,
        Some(2) => 4096,
        Some(3 | 4 | 6 | 7) => 16,
        Some(5) => MAX_MAIL_BYTES,
        Some(8) => MAX_SLICE_BYTES + 16,
        Some(9) => MAX_BATCH * (MAX_BATCH_ERROR + 8) + 16,
        Some(10) => crate::proto::public::MAX_LISTING_BYTES + 64 * 1024,
        _ => 0,
    }
}

/// The largest `Mail` response.
pub const MAX_MAIL_BYTES: usize = MAX_COLLECT as usize * (MAX_MESSAGE_BYTES + 128) + 16;
/// The largest response of any kind.
pub const MAX_RESPONSE_BYTES: usize =
    if MAX_MAIL_BYTES > MAX_SLICE_BYTES + 16 { MAX_MAIL_BYTES } else { MAX_SLICE_BYTES + 16 };

/// An upper bound of the encoded size of a `DeliverMany` of `envelopes`, in bytes (the variant and the count
/// take at most 8).
pub fn batch_bytes<'a>(envelopes: impl IntoIterator<Item = &'a Envelope>) -> usize {
    envelopes
        .into_iter()
        .map(|e| postcard::experimental::serialized_size(e).unwrap_or(usize::MAX))
        .fold(8, usize::saturating_add)
}

/// Encodes a message.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decodes a message.
///
/// # Errors
/// A message for people if the bytes are not a `T`.
pub fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("malformed message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::e2e::{pad, Device};
    use bitdust_core::keys::NodeKeys;

    #[test]
    fn every_kind_fits_its_limit() {
        let keys = NodeKeys::generate();
        let mut device = Device::new();
        let prekey = device.prekey(&keys);
        let other = NodeKeys::generate();
        let mut session = Device::new().outbound(&keys.peer_id(), &prekey).unwrap();
        let padded = pad(&vec![1; BUCKETS[BUCKETS.len() - 1] - 4]).unwrap();
        let envelope = crate::proto::e2e::encrypt(&mut session, &Device::new().device_key(&other), &padded).unwrap();
        for (req, ok) in
            [(Request::Prekey, true), (Request::Deliver(envelope.clone()), true), (Request::Presence, true)]
        {
            let b = encode(&req);
            assert_eq!(b.len() <= request_limit(&b), ok, "{} bytes", b.len());
        }
        for res in [
            Response::Prekey(prekey),
            Response::Delivered,
            Response::Error("x".repeat(1000)),
            Response::Present,
            Response::NoSession,
        ] {
            let b = encode(&res);
            assert!(b.len() <= response_limit(&b), "{} bytes", b.len());
        }
        assert_eq!(request_limit(&[10]), 0);
        let words = encode(&Request::Listing(vec!["é".repeat(32); crate::proto::public::MAX_QUERY_WORDS]));
        assert!(words.len() <= request_limit(&words), "{} bytes", words.len());
        // a listing as full as an answerer makes it: entries up to MAX_LISTING_BYTES, each encoded
        let entry = crate::proto::public::SignedPublicEntry {
            entry: crate::proto::public::PublicEntry {
                owner: vec![0xff; 64],
                id: [0xff; 16],
                backup: "b".repeat(256),
                version: Some(u32::MAX),
                title: "t".repeat(crate::proto::public::MAX_TITLE_BYTES),
                description: "d".repeat(crate::proto::public::MAX_DESCRIPTION_BYTES),
                keywords: vec!["é".repeat(32); crate::proto::public::MAX_KEYWORDS],
                key: vec![0xff; bitdust_core::MAX_CAPABILITY_BYTES],
                published_unix: u64::MAX,
            },
            signature: vec![0xff; 64],
        };
        let one = encode(&entry).len() + 8;
        let fit = (crate::proto::public::MAX_LISTING_BYTES / one).min(crate::proto::public::MAX_LISTING);
        let listing = encode(&Response::Listing(vec![entry; fit]));
        assert!(listing.len() <= response_limit(&listing) && listing.len() <= MAX_RESPONSE_BYTES);
        // a batch as full as a sender makes it: MAX_BATCH envelopes, together at most MAX_MESSAGE_BYTES
        let small =
            crate::proto::e2e::encrypt(&mut session, &Device::new().device_key(&other), &pad(b"hi").unwrap()).unwrap();
        let many = encode(&Request::DeliverMany(vec![small; MAX_BATCH]));
        assert!(many.len() <= request_limit(&many), "{} bytes", many.len());
        assert!(batch_bytes([&envelope]) <= MAX_MESSAGE_BYTES);
        assert!(batch_bytes(&vec![envelope.clone(); 2]) > MAX_MESSAGE_BYTES);
        let answers = encode(&Response::DeliveredMany(vec![Response::Error("x".repeat(MAX_BATCH_ERROR)); MAX_BATCH]));
        assert!(answers.len() <= response_limit(&answers) && answers.len() <= MAX_RESPONSE_BYTES);
        let contacts = encode(&Request::MailboxContacts(vec![[0xff; 32]; MAX_MAILBOX_CONTACTS]));
        assert!(contacts.len() <= request_limit(&contacts));
        let get = encode(&Request::FileGet { transfer: [0xff; 16], offset: u64::MAX, len: u64::MAX });
        assert!(get.len() <= request_limit(&get));
        let slice = encode(&Response::FileSlice(vec![0xff; MAX_SLICE_BYTES]));
        assert!(slice.len() <= response_limit(&slice) && slice.len() <= MAX_RESPONSE_BYTES);
        let item = MailItem { index: u64::MAX, from: vec![0xff; 64], at_unix: u64::MAX, envelope: envelope.clone() };
        let mail = encode(&Response::Mail(vec![item; MAX_COLLECT as usize]));
        assert!(mail.len() <= response_limit(&mail) && mail.len() <= MAX_RESPONSE_BYTES, "{} bytes", mail.len());
    }
}
