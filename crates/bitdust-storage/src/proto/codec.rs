//! The `/bitdust/storage/1` messages on the wire: each message is one postcard encoding, which the network
//! layer carries behind a 4-byte little-endian length (`bitdust_net::frame`); the length is checked against
//! [`crate::proto::wire::MAX_MESSAGE_BYTES`] before anything is read.
//!
//! Messages that end in a fragment (`PutFragment`, `Fragment`) are not copied through postcard: by
//! postcard's wire format (postcard 1.0 specification: an enum is its variant index as a varint, then its
//! fields in order; `[u8; N]` is N raw bytes; a byte string is its length as a varint, then the bytes) such
//! a message is a short *head* (variant index, fixed fields, payload length) followed by the payload. The
//! encoder returns the head and the payload's reference-counted buffer as two chunks the network writes one
//! after the other; the decoder parses the head and keeps the payload as a slice of the received buffer. The
//! bytes on the wire are exactly postcard's. Pure: no I/O here.

use std::io;
use std::sync::LazyLock;

use bytes::Bytes;

use crate::proto::wire::{Request, Response};

/// An encoded message: chunks to write one after the other (the head, then a fragment's payload when there is
/// one), without copying the payload.
pub type Chunks = Vec<Bytes>;

fn malformed(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("malformed message: {e}"))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes).map_err(malformed)
}

fn encode<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

/// The head of a message ending in a byte-string payload of `payload_len` bytes, from the postcard encoding
/// of the same message with an empty payload (which ends in the varint 0, one zero byte).
fn bulk_head(empty_encoding: Vec<u8>, payload_len: usize) -> io::Result<Vec<u8>> {
    let mut head = empty_encoding;
    if head.pop() != Some(0) {
        return Err(io::Error::other("a bulk message must end in its payload"));
    }
    let mut varint = [0u8; 10];
    head.extend_from_slice(postcard::to_slice(&(payload_len as u64), &mut varint).map_err(io::Error::other)?);
    Ok(head)
}

/// The variant index of a message, as postcard writes it (a varint, parsed as `u32`); `None` if it cannot be
/// encoded (it always can: the messages are plain data).
fn variant_of<T: serde::Serialize>(empty: &T) -> Option<u32> {
    Some(postcard::take_from_bytes::<u32>(&encode(empty).ok()?).ok()?.0)
}

/// Variant indexes of the bulk messages, computed once from the message types (not hard-coded: reordering the
/// enums keeps them right).
static PUT_FRAGMENT: LazyLock<Option<u32>> =
    LazyLock::new(|| variant_of(&Request::PutFragment { id: [0; 32], data: Bytes::new() }));
static FRAGMENT: LazyLock<Option<u32>> = LazyLock::new(|| variant_of(&Response::Fragment(Bytes::new())));

/// If `buf` holds variant `variant` of a bulk message, its fixed fields (`fixed` bytes after the variant
/// index) and its payload, sliced from `buf` without a copy. `None` for any other variant.
fn split_bulk(buf: &Bytes, variant: Option<u32>, fixed: usize) -> io::Result<Option<(Bytes, Bytes)>> {
    let (found, rest) = postcard::take_from_bytes::<u32>(buf).map_err(malformed)?;
    if Some(found) != variant {
        return Ok(None);
    }
    if rest.len() < fixed {
        return Err(malformed("message truncated"));
    }
    let (fields, rest) = rest.split_at(fixed);
    let (len, payload) = postcard::take_from_bytes::<u64>(rest).map_err(malformed)?;
    if len != payload.len() as u64 {
        return Err(malformed("payload length does not match the message"));
    }
    Ok(Some((buf.slice_ref(fields), buf.slice_ref(payload))))
}

/// Encodes a request into chunks (see the module docs).
///
/// # Errors
/// If postcard cannot encode it (it always can: the messages are plain data).
pub fn encode_request(req: &Request) -> io::Result<Chunks> {
    match req {
        Request::PutFragment { id, data } => {
            let head = bulk_head(encode(&Request::PutFragment { id: *id, data: Bytes::new() })?, data.len())?;
            Ok(vec![Bytes::from(head), data.clone()])
        }
        _ => Ok(vec![Bytes::from(encode(req)?)]),
    }
}

/// Encodes a response into chunks (see the module docs).
///
/// # Errors
/// If postcard cannot encode it.
pub fn encode_response(res: &Response) -> io::Result<Chunks> {
    match res {
        Response::Fragment(data) => {
            let head = bulk_head(encode(&Response::Fragment(Bytes::new()))?, data.len())?;
            Ok(vec![Bytes::from(head), data.clone()])
        }
        _ => Ok(vec![Bytes::from(encode(res)?)]),
    }
}

/// Refuses a message longer than its kind's limit (the network checks it on arrival too; a decoder used on its own,
/// e.g. on stored bytes, must not accept what the wire refuses: an owner field of any length, say).
fn within_kind(buf: &[u8], limit: fn(&[u8]) -> usize) -> io::Result<()> {
    let most = limit(&buf[..buf.len().min(16)]);
    if buf.len() > most {
        return Err(malformed(format!("{} bytes, more than its kind's {most}", buf.len())));
    }
    Ok(())
}

/// Decodes a request from one received message (a fragment's payload stays a slice of `buf`).
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a malformed or truncated message, or one longer than its kind's limit
/// ([`request_limit`]).
pub fn decode_request(buf: Bytes) -> io::Result<Request> {
    within_kind(&buf, request_limit)?;
    if let Some((id, data)) = split_bulk(&buf, *PUT_FRAGMENT, 32)? {
        let id = <[u8; 32]>::try_from(id.as_ref()).map_err(malformed)?;
        return Ok(Request::PutFragment { id, data });
    }
    decode(&buf)
}

/// Decodes a response from one received message (a fragment's payload stays a slice of `buf`).
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a malformed or truncated message, or one longer than its kind's limit
/// ([`response_limit`]).
pub fn decode_response(buf: Bytes) -> io::Result<Response> {
    within_kind(&buf, response_limit)?;
    if let Some((_, data)) = split_bulk(&buf, *FRAGMENT, 0)? {
        return Ok(Response::Fragment(data));
    }
    decode(&buf)
}

/// The largest encoding of a small message (heartbeats, reads, audits, deletes, short answers), in bytes.
pub const SMALL_MESSAGE_BYTES: usize = 1024;
/// The largest encoding of a signed contract, in bytes (two peer ids, terms, two Ed25519 signatures).
pub const CONTRACT_MESSAGE_BYTES: usize = 4096;

/// The variant index of the message whose encoding starts with `head` (postcard: a varint).
fn variant(head: &[u8]) -> Option<u32> {
    postcard::take_from_bytes::<u32>(head).ok().map(|(v, _)| v)
}

/// Whether the message `bytes` is a contract proposal (the one request a peer without a contract may make).
pub fn is_contract(bytes: &[u8]) -> bool {
    variant(&bytes[..bytes.len().min(16)]) == Some(0)
}

/// The largest request of the kind `head` starts with, in bytes, for the network's per-kind limit
/// ([`bitdust_net::frame::KindLimit`]): a fragment at most [`crate::proto::fragment::MAX_FRAGMENT_LEN`] and its
/// head, a catalog at most [`crate::proto::catalog::MAX_SEALED_CATALOG_BYTES`], held records at most
/// [`crate::proto::wire::MAX_HELD_RECORDS`] DHT records, a contract [`CONTRACT_MESSAGE_BYTES`], anything else
/// [`SMALL_MESSAGE_BYTES`]; 0 for an unknown kind. Indexes follow the declaration order of [`Request`]
/// (checked by a test that encodes every kind).
pub fn request_limit(head: &[u8]) -> usize {
    use crate::proto::{catalog::MAX_SEALED_CATALOG_BYTES, fragment::MAX_FRAGMENT_LEN, wire::MAX_HELD_RECORDS};
    match variant(head) {
        Some(0) => CONTRACT_MESSAGE_BYTES,
        Some(1) => MAX_FRAGMENT_LEN + 64,
        Some(2 | 3 | 5..=8 | 10) => SMALL_MESSAGE_BYTES,
        Some(4) => MAX_SEALED_CATALOG_BYTES + 16,
        Some(9) => MAX_HELD_RECORDS * (bitdust_core::record::MAX_RECORD_BYTES + 8) + 8,
        Some(11 | 12) => crate::proto::grant::MAX_GRANT_FRAGMENTS * 32 + 1024,
        Some(13) => crate::proto::grant::MAX_REVOKE * 32 + 16,
        _ => 0,
    }
}

/// Whether a request's bytes are a `GetGranted` or a `GetShared` (served to peers without a contract: grantees).
pub fn is_granted(bytes: &[u8]) -> bool {
    matches!(variant(&bytes[..bytes.len().min(16)]), Some(11 | 12))
}

/// The largest response of the kind `head` starts with, in bytes, as [`request_limit`] for [`Response`]: a
/// fragment or a catalog as in requests, an audit proof (a Bao slice of at most
/// [`crate::proto::wire::MAX_AUDIT_SLICE`] bytes with its hashes) twice the slice, a fragment list
/// [`crate::proto::wire::MAX_LIST`] ids, an error [`SMALL_MESSAGE_BYTES`] times 16.
pub fn response_limit(head: &[u8]) -> usize {
    use crate::proto::wire::{MAX_AUDIT_SLICE, MAX_LIST};
    use crate::proto::{catalog::MAX_SEALED_CATALOG_BYTES, fragment::MAX_FRAGMENT_LEN};
    match variant(head) {
        Some(0) => CONTRACT_MESSAGE_BYTES,
        Some(1 | 3 | 5 | 9) => SMALL_MESSAGE_BYTES,
        Some(2) => MAX_FRAGMENT_LEN + 64,
        Some(4) => MAX_SEALED_CATALOG_BYTES + 16,
        Some(6) => 2 * MAX_AUDIT_SLICE as usize + 4096,
        Some(7) => MAX_LIST as usize * 32 + 16,
        Some(8) => 16 * SMALL_MESSAGE_BYTES,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{Contract, ErrorCode, SignedContract, MAX_AUDIT_SLICE, MAX_HELD_RECORDS, MAX_LIST};
    use bitdust_core::keys::NodeKeys;

    /// Every kind at the largest size it legitimately has passes its kind's limit; the small kinds are small; an
    /// unknown kind is refused. (This pins the variant indexes the limits are written with.)
    #[test]
    fn every_kind_at_its_largest_fits_its_limit_and_small_kinds_stay_small() {
        let (c, s) = (NodeKeys::from_seed([1; 32]).unwrap(), NodeKeys::from_seed([2; 32]).unwrap());
        let contract = Contract {
            customer: c.peer_id().to_bytes(),
            supplier: s.peer_id().to_bytes(),
            position: u16::MAX,
            needed_bytes: u64::MAX,
            start_unix: u64::MAX,
            duration_secs: u64::MAX,
            nonce: [0xff; 16],
        };
        let signed = SignedContract::propose(&c, contract).accept(&s);
        let owner = c.peer_id().to_bytes();
        let big = |n: usize| Bytes::from(vec![0xa5u8; n]);
        let requests = [
            (Request::Contract(signed.clone()), CONTRACT_MESSAGE_BYTES),
            (Request::PutFragment { id: [0xff; 32], data: big(crate::proto::fragment::MAX_FRAGMENT_LEN) }, usize::MAX),
            (Request::GetFragment { owner: owner.clone(), id: [0xff; 32] }, SMALL_MESSAGE_BYTES),
            (Request::DeleteFragment { id: [0xff; 32] }, SMALL_MESSAGE_BYTES),
            (Request::PutCatalog(vec![7; crate::proto::catalog::MAX_SEALED_CATALOG_BYTES]), usize::MAX),
            (Request::GetCatalog { owner: owner.clone() }, SMALL_MESSAGE_BYTES),
            (Request::Heartbeat, SMALL_MESSAGE_BYTES),
            (Request::Audit { owner, id: [0xff; 32], start: u64::MAX, len: u32::MAX }, SMALL_MESSAGE_BYTES),
            (Request::ListFragments { after: Some([0xff; 32]), limit: u32::MAX }, SMALL_MESSAGE_BYTES),
            (
                Request::HoldRecords(vec![
                    serde_bytes::ByteBuf::from(vec![1u8; bitdust_core::record::MAX_RECORD_BYTES]);
                    MAX_HELD_RECORDS
                ]),
                usize::MAX,
            ),
            (Request::EndContract, SMALL_MESSAGE_BYTES),
            (
                Request::GetGranted {
                    owner: c.peer_id().to_bytes(),
                    id: [0xff; 32],
                    grant: crate::proto::grant::SignedGrant::sign(
                        &c,
                        &s.peer_id(),
                        vec![[0xff; 32]; crate::proto::grant::MAX_GRANT_FRAGMENTS],
                        u64::MAX,
                    )
                    .unwrap(),
                },
                usize::MAX,
            ),
            (
                Request::GetShared {
                    owner: c.peer_id().to_bytes(),
                    id: [0xff; 32],
                    grant: crate::proto::grant::SignedAccessGrant::sign(
                        &c,
                        [0xff; 16],
                        Some(&s.peer_id()),
                        vec![[0xff; 32]; crate::proto::grant::MAX_GRANT_FRAGMENTS],
                        u64::MAX,
                    )
                    .unwrap(),
                },
                usize::MAX,
            ),
            (Request::Revoke { grants: vec![([0xff; 16], u64::MAX); crate::proto::grant::MAX_REVOKE] }, usize::MAX),
        ];
        for (req, most) in &requests {
            let wire = join(&encode_request(req).unwrap());
            assert_eq!(is_contract(&wire), matches!(req, Request::Contract(_)), "{req:?}");
            let granted = matches!(req, Request::GetGranted { .. } | Request::GetShared { .. });
            assert_eq!(is_granted(&wire), granted, "{req:?}");
            let limit = request_limit(&wire[..wire.len().min(16)]);
            assert!(wire.len() <= limit && limit <= *most, "{req:?}: {} bytes, limit {limit}", wire.len());
        }
        let responses = [
            (Response::ContractAccepted(signed), CONTRACT_MESSAGE_BYTES),
            (Response::Stored, SMALL_MESSAGE_BYTES),
            (Response::Fragment(big(crate::proto::fragment::MAX_FRAGMENT_LEN)), usize::MAX),
            (Response::Deleted, SMALL_MESSAGE_BYTES),
            (Response::Catalog(vec![7; crate::proto::catalog::MAX_SEALED_CATALOG_BYTES]), usize::MAX),
            (Response::Alive { used_bytes: u64::MAX, fragments: u64::MAX }, SMALL_MESSAGE_BYTES),
            (Response::AuditProof(big(MAX_AUDIT_SLICE as usize + 2048)), usize::MAX),
            (Response::FragmentList(vec![[0xff; 32]; MAX_LIST as usize]), usize::MAX),
            (Response::Error(ErrorCode::Internal, "x".repeat(4000)), usize::MAX),
            (Response::Revoked, SMALL_MESSAGE_BYTES),
        ];
        for (res, most) in &responses {
            let wire = join(&encode_response(res).unwrap());
            let limit = response_limit(&wire[..wire.len().min(16)]);
            assert!(wire.len() <= limit && limit <= *most, "{res:?}: {} bytes, limit {limit}", wire.len());
        }
        assert_eq!(request_limit(&[14]), 0);
        // the decoder applies the same limits (found by lab/fuzz.sh: an owner field of any length decoded)
        let long_owner = Request::GetFragment { owner: vec![7; 2000], id: [1; 32] };
        assert!(decode_request(join(&encode_request(&long_owner).unwrap())).is_err());
        let long_error = Response::Error(ErrorCode::Internal, "x".repeat(20_000));
        assert!(decode_response(join(&encode_response(&long_error).unwrap())).is_err());
        assert_eq!(request_limit(&[]), 0);
        assert_eq!(response_limit(&[0xff, 0xff, 0xff, 0xff, 0x0f]), 0);
    }

    fn join(chunks: &Chunks) -> Bytes {
        Bytes::from(chunks.iter().flat_map(|c| c.iter().copied()).collect::<Vec<u8>>())
    }

    #[test]
    fn request_round_trips() {
        let wire = join(&encode_request(&Request::DeleteFragment { id: [3; 32] }).unwrap());
        let back = decode_request(wire).unwrap();
        assert!(matches!(back, Request::DeleteFragment { id } if id == [3; 32]));
    }

    /// The bulk path writes postcard's own bytes and reads them back to the same message, at payload lengths
    /// around the varint boundaries, with the payload as a slice of the received buffer.
    #[test]
    fn bulk_messages_are_postcards_own_bytes() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 300_000] {
            let data = Bytes::from((0..len).map(|i| (i % 247) as u8).collect::<Vec<u8>>());
            let req = Request::PutFragment { id: [9; 32], data: data.clone() };
            let chunks = encode_request(&req).unwrap();
            assert_eq!(chunks.len(), 2, "head and payload");
            assert_eq!(chunks[1].as_ptr(), data.as_ptr(), "the payload is not copied");
            let wire = join(&chunks);
            assert_eq!(wire[..], postcard::to_stdvec(&req).unwrap()[..], "request, payload {len}");
            let back = decode_request(wire.clone()).unwrap();
            match back {
                Request::PutFragment { id, data: d } => {
                    assert_eq!((id, &d), ([9; 32], &data));
                    if len > 0 {
                        assert_eq!(d.as_ptr(), wire[wire.len() - len..].as_ptr(), "payload sliced, not copied");
                    }
                }
                other => panic!("decoded {other:?}"),
            }

            let res = Response::Fragment(data.clone());
            let wire = join(&encode_response(&res).unwrap());
            assert_eq!(wire[..], postcard::to_stdvec(&res).unwrap()[..], "response, payload {len}");
            assert!(matches!(decode_response(wire).unwrap(), Response::Fragment(d) if d == data));
        }
        // other messages still take the plain path
        let res = Response::Alive { used_bytes: 5, fragments: 1 };
        let chunks = encode_response(&res).unwrap();
        assert_eq!(chunks.len(), 1);
        assert!(matches!(decode_response(join(&chunks)).unwrap(), Response::Alive { used_bytes: 5, fragments: 1 }));
    }

    #[test]
    fn a_bulk_message_with_a_wrong_payload_length_is_refused() {
        let req = Request::PutFragment { id: [1; 32], data: Bytes::from_static(&[5; 200]) };
        let mut body = postcard::to_stdvec(&req).unwrap();
        for cut in [1usize, 150] {
            let short = Bytes::copy_from_slice(&body[..body.len() - cut]);
            let err = decode_request(short).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut {cut}");
        }
        body.push(0); // one byte too many
        assert!(decode_request(Bytes::from(body)).is_err());
    }

    #[test]
    fn malformed_and_truncated_messages_are_errors() {
        assert!(decode_request(Bytes::from_static(&[0xff, 0xff, 0xff])).is_err());
        // a variant index past the last variant
        assert!(decode_request(Bytes::from_static(&[0x7f])).is_err());
        assert!(decode_response(Bytes::new()).is_err());
    }
}
