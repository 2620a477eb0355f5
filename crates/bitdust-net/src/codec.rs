//! The `/bitdust/storage/1` codec: one postcard message behind a 4-byte little-endian length per stream
//! direction. The length is checked against [`MAX_MESSAGE_BYTES`] before reading, and the buffer grows only
//! as bytes arrive, so a peer announcing a huge message makes us allocate nothing.
//!
//! Messages that end in a fragment (`PutFragment`, `Fragment`) are not copied through postcard: by
//! postcard's wire format (postcard 1.0 specification: an enum is its variant index as a varint, then its
//! fields in order; `[u8; N]` is N raw bytes; a byte string is its length as a varint, then the bytes) such
//! a message is a short *head* (variant index, fixed fields, payload length) followed by the payload. The
//! writer sends the head, then the payload from its reference-counted buffer; the reader parses the head and
//! keeps the payload as a slice of the received buffer. The bytes on the wire are exactly postcard's.

use std::io;
use std::sync::LazyLock;

use async_trait::async_trait;
use bitdust_core::wire::{Request, Response, MAX_MESSAGE_BYTES};
use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// Bytes of a message buffer filled (zeroed, then read into) at a time.
const READ_CHUNK: usize = 1 << 20;

/// The codec (stateless).
#[derive(Debug, Clone, Default)]
pub struct StorageCodec;

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"),
        ));
    }
    // Capacity for a whole fragment at once (no reallocation), filled one chunk at a time as bytes arrive.
    // (`read_to_end` zero-filled the whole capacity, then at the end doubled it and zero-filled the new half
    // before it saw the end of the stream: about 6% of all CPU in a devnet upload.)
    let mut buf = Vec::with_capacity(len.min(4 * 1024 * 1024 + 4096));
    while buf.len() < len {
        let start = buf.len();
        buf.resize(start + (len - start).min(READ_CHUNK), 0);
        io.read_exact(&mut buf[start..]).await.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::UnexpectedEof, "message truncated"),
            _ => e,
        })?;
    }
    Ok(buf)
}

/// Writes one message: `head`, then `payload` (empty for messages without one), behind their total length.
async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, head: &[u8], payload: &[u8]) -> io::Result<()> {
    let len = head.len() + payload.len();
    if len > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "message too large"));
    }
    io.write_all(&(len as u32).to_le_bytes()).await?;
    io.write_all(head).await?;
    io.write_all(payload).await?;
    io.flush().await
}

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

fn decode_request(buf: Vec<u8>) -> io::Result<Request> {
    let buf = Bytes::from(buf);
    if let Some((id, data)) = split_bulk(&buf, *PUT_FRAGMENT, 32)? {
        let id = <[u8; 32]>::try_from(id.as_ref()).map_err(malformed)?;
        return Ok(Request::PutFragment { id, data });
    }
    decode(&buf)
}

fn decode_response(buf: Vec<u8>) -> io::Result<Response> {
    let buf = Bytes::from(buf);
    if let Some((_, data)) = split_bulk(&buf, *FRAGMENT, 0)? {
        return Ok(Response::Fragment(data));
    }
    decode(&buf)
}

#[async_trait]
impl libp2p::request_response::Codec for StorageCodec {
    type Protocol = StreamProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_request(read_frame(io).await?)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode_response(read_frame(io).await?)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Request) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match &req {
            Request::PutFragment { id, data } => {
                let head = bulk_head(encode(&Request::PutFragment { id: *id, data: Bytes::new() })?, data.len())?;
                write_frame(io, &head, data).await
            }
            _ => write_frame(io, &encode(&req)?, &[]).await,
        }
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match &res {
            Response::Fragment(data) => {
                let head = bulk_head(encode(&Response::Fragment(Bytes::new()))?, data.len())?;
                write_frame(io, &head, data).await
            }
            _ => write_frame(io, &encode(&res)?, &[]).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    fn proto() -> StreamProtocol {
        StreamProtocol::new(bitdust_core::wire::STORAGE_PROTOCOL)
    }

    #[tokio::test]
    async fn request_round_trips() {
        let mut buf = Vec::new();
        StorageCodec
            .write_request(&proto(), &mut Cursor::new(&mut buf), Request::DeleteFragment { id: [3; 32] })
            .await
            .unwrap();
        let back = StorageCodec.read_request(&proto(), &mut Cursor::new(buf)).await.unwrap();
        assert!(matches!(back, Request::DeleteFragment { id } if id == [3; 32]));
    }

    #[tokio::test]
    async fn a_message_of_several_read_chunks_round_trips() {
        let data: Vec<u8> = (0..READ_CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut buf = Vec::new();
        let req = Request::PutFragment { id: [7; 32], data: data.clone().into() };
        StorageCodec.write_request(&proto(), &mut Cursor::new(&mut buf), req).await.unwrap();
        let back = StorageCodec.read_request(&proto(), &mut Cursor::new(buf.clone())).await.unwrap();
        assert!(matches!(back, Request::PutFragment { id, data: d } if id == [7; 32] && d == data));
        // cut inside the last chunk: an error, not a short message
        buf.truncate(buf.len() - 10);
        let err = StorageCodec.read_request(&proto(), &mut Cursor::new(buf)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// The bulk path writes postcard's own bytes and reads them back to the same message, at payload lengths
    /// around the varint boundaries.
    #[tokio::test]
    async fn bulk_messages_are_postcards_own_bytes() {
        for len in [0usize, 1, 127, 128, 16_383, 16_384, 300_000] {
            let data = Bytes::from((0..len).map(|i| (i % 247) as u8).collect::<Vec<u8>>());
            let req = Request::PutFragment { id: [9; 32], data: data.clone() };
            let mut wire = Vec::new();
            StorageCodec.write_request(&proto(), &mut Cursor::new(&mut wire), req.clone()).await.unwrap();
            let expected = postcard::to_stdvec(&req).unwrap();
            assert_eq!(wire[..4], (expected.len() as u32).to_le_bytes(), "length {len}");
            assert_eq!(wire[4..], expected[..], "request, payload {len}");
            let back = StorageCodec.read_request(&proto(), &mut Cursor::new(wire)).await.unwrap();
            assert!(matches!(back, Request::PutFragment { id, data: d } if id == [9; 32] && d == data));

            let res = Response::Fragment(data.clone());
            let mut wire = Vec::new();
            StorageCodec.write_response(&proto(), &mut Cursor::new(&mut wire), res.clone()).await.unwrap();
            assert_eq!(wire[4..], postcard::to_stdvec(&res).unwrap()[..], "response, payload {len}");
            let back = StorageCodec.read_response(&proto(), &mut Cursor::new(wire)).await.unwrap();
            assert!(matches!(back, Response::Fragment(d) if d == data));
        }
        // other messages still take the plain path
        let mut wire = Vec::new();
        let res = Response::Alive { used_bytes: 5, fragments: 1 };
        StorageCodec.write_response(&proto(), &mut Cursor::new(&mut wire), res).await.unwrap();
        let back = StorageCodec.read_response(&proto(), &mut Cursor::new(wire)).await.unwrap();
        assert!(matches!(back, Response::Alive { used_bytes: 5, fragments: 1 }));
    }

    #[tokio::test]
    async fn a_bulk_message_with_a_wrong_payload_length_is_refused() {
        let req = Request::PutFragment { id: [1; 32], data: Bytes::from_static(&[5; 200]) };
        let mut body = postcard::to_stdvec(&req).unwrap();
        for cut in [1usize, 150] {
            let short = &body[..body.len() - cut];
            let mut wire = (short.len() as u32).to_le_bytes().to_vec();
            wire.extend_from_slice(short);
            let err = StorageCodec.read_request(&proto(), &mut Cursor::new(wire)).await.unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "cut {cut}");
        }
        body.push(0); // one byte too many
        let mut wire = (body.len() as u32).to_le_bytes().to_vec();
        wire.extend_from_slice(&body);
        assert!(StorageCodec.read_request(&proto(), &mut Cursor::new(wire)).await.is_err());
    }

    #[tokio::test]
    async fn oversized_length_is_refused_before_allocation() {
        let mut buf = ((MAX_MESSAGE_BYTES + 1) as u32).to_le_bytes().to_vec();
        buf.extend([0u8; 16]);
        let err = StorageCodec.read_request(&proto(), &mut Cursor::new(buf)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn malformed_and_truncated_messages_are_errors() {
        let mut buf = 3u32.to_le_bytes().to_vec();
        buf.extend([0xff, 0xff, 0xff]);
        assert!(StorageCodec.read_request(&proto(), &mut Cursor::new(buf)).await.is_err());
        let mut buf = 100u32.to_le_bytes().to_vec();
        buf.extend([0u8; 10]);
        assert!(StorageCodec.read_request(&proto(), &mut Cursor::new(buf)).await.is_err());
    }
}
