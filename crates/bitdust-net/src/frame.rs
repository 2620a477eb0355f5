//! Request-response framing shared by every feature protocol: one message per stream direction, a 4-byte
//! little-endian length, then the message bytes. What the bytes mean is the feature's business (the storage
//! wing encodes postcard messages); the network only enforces each protocol's size limits, checked before
//! anything is allocated, and grows the buffer only as bytes arrive, so a peer announcing a huge message makes
//! us allocate nothing.
//!
//! A feature registers its protocol with a [`ProtocolSpec`] (name, size limits, and the answer given when its
//! inbound queue is full) in [`crate::NetConfig::protocols`]; requests for it arrive on its own bounded
//! receiver ([`crate::Inbounds`]).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// Bytes of a message buffer filled (zeroed, then read into) at a time.
const READ_CHUNK: usize = 1 << 20;
/// The largest capacity reserved up front for a message (a 4 MiB fragment and its head): longer messages grow
/// as they arrive.
const RESERVE_UP_TO: usize = 4 * 1024 * 1024 + 4096;

/// An outgoing message: chunks written one after the other behind one length (so a feature can send a
/// reference-counted payload after a short head without copying it). An incoming message is one chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame(pub Vec<Bytes>);

impl Frame {
    /// A message of one chunk.
    pub fn one(bytes: impl Into<Bytes>) -> Self {
        Self(vec![bytes.into()])
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.iter().map(Bytes::len).sum()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The message as one buffer (no copy when it is one chunk, as every received message is).
    pub fn into_bytes(self) -> Bytes {
        match <[Bytes; 1]>::try_from(self.0) {
            Ok([one]) => one,
            Err(chunks) => Bytes::from(chunks.iter().flat_map(|c| c.iter().copied()).collect::<Vec<u8>>()),
        }
    }
}

/// A request-response protocol a feature wing registers with the network.
#[derive(Debug, Clone)]
pub struct ProtocolSpec {
    /// Protocol name, e.g. `/bitdust/storage/1`.
    pub name: StreamProtocol,
    /// Largest request accepted, in bytes.
    pub max_request_bytes: usize,
    /// Largest response accepted, in bytes.
    pub max_response_bytes: usize,
    /// Capacity of the protocol's inbound queue; beyond it requests get [`ProtocolSpec::busy`] at once
    /// rather than being queued without bound.
    pub inbound_capacity: usize,
    /// The response sent when the inbound queue is full (in the protocol's own encoding).
    pub busy: Frame,
}

/// The libp2p codec for every registered protocol: framing and size limits only.
#[derive(Debug, Clone)]
pub(crate) struct FrameCodec {
    /// Per protocol: (request limit, response limit) in bytes.
    limits: Arc<HashMap<StreamProtocol, (usize, usize)>>,
}

impl FrameCodec {
    pub(crate) fn new(specs: &[ProtocolSpec]) -> Self {
        let limits = specs.iter().map(|s| (s.name.clone(), (s.max_request_bytes, s.max_response_bytes))).collect();
        Self { limits: Arc::new(limits) }
    }

    fn limit(&self, protocol: &StreamProtocol, response: bool) -> io::Result<usize> {
        let (req, res) = self.limits.get(protocol).copied().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, format!("protocol {protocol} is not registered"))
        })?;
        Ok(if response { res } else { req })
    }
}

/// Reads one message of at most `limit` bytes.
pub(crate) async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T, limit: usize) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes exceeds the {limit}-byte limit"),
        ));
    }
    // Capacity for a whole fragment at once (no reallocation), filled one chunk at a time as bytes arrive.
    // (`read_to_end` zero-filled the whole capacity, then at the end doubled it and zero-filled the new half
    // before it saw the end of the stream: about 6% of all CPU in a devnet upload.)
    let mut buf = Vec::with_capacity(len.min(RESERVE_UP_TO));
    while buf.len() < len {
        let start = buf.len();
        buf.resize(start + (len - start).min(READ_CHUNK), 0);
        io.read_exact(&mut buf[start..]).await.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::UnexpectedEof, "message truncated"),
            _ => e,
        })?;
    }
    Ok(Bytes::from(buf))
}

/// Writes one message of at most `limit` bytes: its chunks behind their total length.
pub(crate) async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    frame: &Frame,
    limit: usize,
) -> io::Result<()> {
    let len = frame.len();
    if len > limit || u32::try_from(len).is_err() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("message of {len} bytes is too large")));
    }
    io.write_all(&(len as u32).to_le_bytes()).await?;
    for chunk in &frame.0 {
        io.write_all(chunk).await?;
    }
    io.flush().await
}

#[async_trait]
impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Frame;

    async fn read_request<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(Frame::one(read_frame(io, self.limit(protocol, false)?).await?))
    }

    async fn read_response<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(Frame::one(read_frame(io, self.limit(protocol, true)?).await?))
    }

    async fn write_request<T>(&mut self, protocol: &StreamProtocol, io: &mut T, req: Frame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.limit(protocol, false)?).await
    }

    async fn write_response<T>(&mut self, protocol: &StreamProtocol, io: &mut T, res: Frame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.limit(protocol, true)?).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    const LIMIT: usize = 8 * 1024 * 1024;

    fn codec() -> (FrameCodec, StreamProtocol) {
        let name = StreamProtocol::new("/test/1");
        let spec = ProtocolSpec {
            name: name.clone(),
            max_request_bytes: LIMIT,
            max_response_bytes: 16,
            inbound_capacity: 1,
            busy: Frame::default(),
        };
        (FrameCodec::new(&[spec]), name)
    }

    #[tokio::test]
    async fn chunks_are_written_behind_one_length_and_read_back_as_one() {
        let (mut c, p) = codec();
        let frame = Frame(vec![Bytes::from_static(b"head"), Bytes::from_static(b"payload")]);
        let mut wire = Vec::new();
        c.write_request(&p, &mut Cursor::new(&mut wire), frame.clone()).await.unwrap();
        assert_eq!(wire[..4], 11u32.to_le_bytes());
        assert_eq!(&wire[4..], b"headpayload");
        let back = c.read_request(&p, &mut Cursor::new(wire)).await.unwrap();
        assert_eq!(back.into_bytes(), frame.into_bytes());
    }

    #[tokio::test]
    async fn a_message_of_several_read_chunks_round_trips_and_a_cut_one_is_an_error() {
        let (mut c, p) = codec();
        let data: Vec<u8> = (0..READ_CHUNK * 5 / 2).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        c.write_request(&p, &mut Cursor::new(&mut wire), Frame::one(data.clone())).await.unwrap();
        let back = c.read_request(&p, &mut Cursor::new(wire.clone())).await.unwrap();
        assert_eq!(back.into_bytes(), Bytes::from(data));
        wire.truncate(wire.len() - 10);
        let err = c.read_request(&p, &mut Cursor::new(wire)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn an_oversized_length_is_refused_before_allocation() {
        let (mut c, p) = codec();
        let mut wire = ((LIMIT + 1) as u32).to_le_bytes().to_vec();
        wire.extend([0u8; 16]);
        let err = c.read_request(&p, &mut Cursor::new(wire)).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // responses have their own limit
        let mut wire = 17u32.to_le_bytes().to_vec();
        wire.extend([0u8; 17]);
        assert_eq!(c.read_response(&p, &mut Cursor::new(wire)).await.unwrap_err().kind(), io::ErrorKind::InvalidData);
        let big = Frame::one(vec![0u8; 17]);
        assert!(c.write_response(&p, &mut Cursor::new(&mut Vec::new()), big).await.is_err());
    }

    #[tokio::test]
    async fn an_unregistered_protocol_is_refused() {
        let (mut c, _) = codec();
        let other = StreamProtocol::new("/other/1");
        let wire = 1u32.to_le_bytes().iter().copied().chain([7u8]).collect::<Vec<u8>>();
        assert!(c.read_request(&other, &mut Cursor::new(wire)).await.is_err());
    }
}
