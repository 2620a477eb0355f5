//! The `/bitdust/storage/1` codec: one postcard message behind a 4-byte little-endian length per stream
//! direction. The length is checked against [`MAX_MESSAGE_BYTES`] before reading, and the buffer grows only
//! as bytes arrive, so a peer announcing a huge message makes us allocate nothing.

use std::io;

use async_trait::async_trait;
use bitdust_core::wire::{Request, Response, MAX_MESSAGE_BYTES};
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

async fn write_frame<T: AsyncWrite + Unpin + Send>(io: &mut T, bytes: &[u8]) -> io::Result<()> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "message too large"));
    }
    io.write_all(&(bytes.len() as u32).to_le_bytes()).await?;
    io.write_all(bytes).await?;
    io.flush().await
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    postcard::from_bytes(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("malformed message: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
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
        decode(&read_frame(io).await?)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        decode(&read_frame(io).await?)
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Request) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode(&req)?).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, res: Response) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &encode(&res)?).await
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
