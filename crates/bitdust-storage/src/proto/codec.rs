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

/// Decodes a request from one received message (a fragment's payload stays a slice of `buf`).
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a malformed or truncated message.
pub fn decode_request(buf: Bytes) -> io::Result<Request> {
    if let Some((id, data)) = split_bulk(&buf, *PUT_FRAGMENT, 32)? {
        let id = <[u8; 32]>::try_from(id.as_ref()).map_err(malformed)?;
        return Ok(Request::PutFragment { id, data });
    }
    decode(&buf)
}

/// Decodes a response from one received message (a fragment's payload stays a slice of `buf`).
///
/// # Errors
/// [`io::ErrorKind::InvalidData`] for a malformed or truncated message.
pub fn decode_response(buf: Bytes) -> io::Result<Response> {
    if let Some((_, data)) = split_bulk(&buf, *FRAGMENT, 0)? {
        return Ok(Response::Fragment(data));
    }
    decode(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

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
