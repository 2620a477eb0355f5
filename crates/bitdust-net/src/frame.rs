//! Request-response framing shared by every feature protocol: one message per stream direction, a 4-byte
//! little-endian length, then the message bytes. What the bytes mean is the feature's business (the storage
//! wing encodes postcard messages); the network enforces each protocol's limits before it holds a peer's bytes:
//!
//! - the announced length against the protocol's limit, before anything is allocated;
//! - the announced length against the limit of the message's *kind*, which the feature reads from the first
//!   [`KIND_HEAD_BYTES`] bytes ([`KindLimit`]: a heartbeat is tiny, a fragment at most a block and its header);
//! - the buffer grows only as bytes arrive ([`READ_STEP`] at a time), so a peer announcing a large message and
//!   stalling makes us hold nothing;
//! - every inbound request's buffer is charged to one budget shared by all connections and protocols
//!   ([`crate::NetLimits::inbound_buffer_bytes`]) until the feature drops the request: when it is spent, further
//!   requests are refused (the stream fails) rather than buffered, so strangers cannot grow the node without
//!   bound. Responses are not charged: they answer our own requests, whose number we choose.
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
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of a message buffer filled (zeroed, then read into) at a time: what a stalled peer can make us hold
/// beyond the bytes it really sent.
pub const READ_STEP: usize = 64 * 1024;
/// Bytes of a message given to its protocol's [`KindLimit`] (fewer when the message is shorter).
pub const KIND_HEAD_BYTES: usize = 16;

/// The largest size, in bytes, of a message whose first bytes are `head` (at most [`KIND_HEAD_BYTES`]; the
/// whole message when it is shorter). 0 refuses the message (an unknown kind). The protocol's own limit applies
/// as well.
pub type KindLimit = fn(head: &[u8]) -> usize;

/// A [`KindLimit`] that leaves only the protocol's own limit.
pub fn any_kind(_head: &[u8]) -> usize {
    usize::MAX
}

/// The budget, in bytes, that inbound request buffers are charged to (a counting semaphore of bytes).
#[derive(Debug, Clone)]
pub(crate) struct Budget(Arc<Semaphore>);

impl Budget {
    pub(crate) fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Bytes not charged to any buffer now.
    #[cfg(test)]
    pub(crate) fn available(&self) -> usize {
        self.0.available_permits()
    }

    /// Charges `bytes` more to `held`, or fails at once when the budget is spent.
    fn charge(&self, held: &mut Option<OwnedSemaphorePermit>, bytes: usize) -> io::Result<()> {
        if bytes == 0 {
            return Ok(());
        }
        let more = u32::try_from(bytes)
            .ok()
            .and_then(|n| Arc::clone(&self.0).try_acquire_many_owned(n).ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::OutOfMemory, "inbound buffer budget spent, retry later"))?;
        match held {
            Some(h) => h.merge(more),
            None => *held = Some(more),
        }
        Ok(())
    }
}

/// A received message's buffer and the budget it is charged to, released when the last [`Bytes`] of it drops.
struct Charged {
    buf: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Charged {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

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
    /// The limit of each request kind, read from its first bytes ([`any_kind`]: the protocol's limit only).
    pub request_kinds: KindLimit,
    /// The limit of each response kind.
    pub response_kinds: KindLimit,
}

impl ProtocolSpec {
    /// A protocol with these limits in bytes and no per-kind limits (set [`ProtocolSpec::request_kinds`] and
    /// [`ProtocolSpec::response_kinds`] for those).
    pub fn new(
        name: StreamProtocol,
        max_request_bytes: usize,
        max_response_bytes: usize,
        inbound_capacity: usize,
        busy: Frame,
    ) -> Self {
        Self {
            name,
            max_request_bytes,
            max_response_bytes,
            inbound_capacity,
            busy,
            request_kinds: any_kind,
            response_kinds: any_kind,
        }
    }
}

/// The limits of one direction of a protocol.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest message, in bytes.
    pub(crate) max: usize,
    /// Largest message of each kind.
    pub(crate) kinds: KindLimit,
}

/// The libp2p codec for every registered protocol: framing, size limits and the inbound budget.
#[derive(Debug, Clone)]
pub(crate) struct FrameCodec {
    /// Per protocol: (request limits, response limits).
    limits: Arc<HashMap<StreamProtocol, (Limits, Limits)>>,
    /// What inbound requests are charged to.
    budget: Budget,
}

impl FrameCodec {
    pub(crate) fn new(specs: &[ProtocolSpec], budget: Budget) -> Self {
        let limits = specs
            .iter()
            .map(|s| {
                let req = Limits { max: s.max_request_bytes, kinds: s.request_kinds };
                let res = Limits { max: s.max_response_bytes, kinds: s.response_kinds };
                (s.name.clone(), (req, res))
            })
            .collect();
        Self { limits: Arc::new(limits), budget }
    }

    fn limits(&self, protocol: &StreamProtocol, response: bool) -> io::Result<Limits> {
        let (req, res) = self.limits.get(protocol).copied().ok_or_else(|| {
            io::Error::new(io::ErrorKind::Unsupported, format!("protocol {protocol} is not registered"))
        })?;
        Ok(if response { res } else { req })
    }
}

fn too_large(len: usize, limit: usize, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("message of {len} bytes exceeds the {limit}-byte limit{what}"))
}

/// Reads one message within `limits`, charging its buffer to `budget` when one is given (inbound requests).
///
/// # Errors
/// `InvalidData` for a length over the protocol's or the kind's limit, `OutOfMemory` when the budget is spent,
/// `UnexpectedEof` for a cut message, or the stream's error.
pub(crate) async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limits: Limits,
    budget: Option<&Budget>,
) -> io::Result<Bytes> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limits.max {
        return Err(too_large(len, limits.max, ""));
    }
    let mut held = None;
    let mut buf = Vec::new();
    while buf.len() < len {
        let start = buf.len();
        // the kind's head first, then steps; the capacity doubles as bytes arrive (at most the message length)
        let step = if start == 0 { KIND_HEAD_BYTES } else { READ_STEP }.min(len - start);
        if buf.capacity() < start + step {
            let capacity = (start + step).max(buf.capacity() * 2).min(len);
            if let Some(b) = budget {
                b.charge(&mut held, capacity - buf.capacity())?;
            }
            buf.reserve_exact(capacity - start);
        }
        buf.resize(start + step, 0);
        io.read_exact(&mut buf[start..]).await.map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::new(io::ErrorKind::UnexpectedEof, "message truncated"),
            _ => e,
        })?;
        if start == 0 {
            let kind_limit = (limits.kinds)(&buf);
            if len > kind_limit {
                return Err(too_large(len, kind_limit, " of its kind"));
            }
        }
    }
    Ok(match held {
        Some(permit) => Bytes::from_owner(Charged { buf, _permit: permit }),
        None => Bytes::from(buf),
    })
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
        Ok(Frame::one(read_frame(io, self.limits(protocol, false)?, Some(&self.budget)).await?))
    }

    async fn read_response<T>(&mut self, protocol: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        Ok(Frame::one(read_frame(io, self.limits(protocol, true)?, None).await?))
    }

    async fn write_request<T>(&mut self, protocol: &StreamProtocol, io: &mut T, req: Frame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req, self.limits(protocol, false)?.max).await
    }

    async fn write_response<T>(&mut self, protocol: &StreamProtocol, io: &mut T, res: Frame) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &res, self.limits(protocol, true)?.max).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use libp2p::request_response::Codec;

    const LIMIT: usize = 8 * 1024 * 1024;

    /// A budget of 32 MiB (more than any test message).
    const BUDGET: usize = 32 * 1024 * 1024;

    /// Kinds for the tests: a message starting with 1 may be 100 bytes, with 2 any size, anything else is refused.
    fn kinds(head: &[u8]) -> usize {
        match head.first() {
            Some(1) => 100,
            Some(2) => usize::MAX,
            _ => 0,
        }
    }

    fn codec_with(budget: &Budget) -> (FrameCodec, StreamProtocol) {
        let name = StreamProtocol::new("/test/1");
        let mut spec = ProtocolSpec::new(name.clone(), LIMIT, 16, 1, Frame::default());
        spec.request_kinds = kinds;
        (FrameCodec::new(&[spec], budget.clone()), name)
    }

    fn codec() -> (FrameCodec, StreamProtocol) {
        codec_with(&Budget::new(BUDGET))
    }

    fn wire_of(data: &[u8]) -> Vec<u8> {
        (data.len() as u32).to_le_bytes().iter().copied().chain(data.iter().copied()).collect()
    }

    #[tokio::test]
    async fn chunks_are_written_behind_one_length_and_read_back_as_one() {
        let (mut c, p) = codec();
        let frame = Frame(vec![Bytes::from_static(b"\x02head"), Bytes::from_static(b"payload")]);
        let mut wire = Vec::new();
        c.write_request(&p, &mut Cursor::new(&mut wire), frame.clone()).await.unwrap();
        assert_eq!(wire[..4], 12u32.to_le_bytes());
        assert_eq!(&wire[4..], b"\x02headpayload");
        let back = c.read_request(&p, &mut Cursor::new(wire)).await.unwrap();
        assert_eq!(back.into_bytes(), frame.into_bytes());
    }

    #[tokio::test]
    async fn a_message_of_several_read_chunks_round_trips_and_a_cut_one_is_an_error() {
        let (mut c, p) = codec();
        let data: Vec<u8> = (0..READ_STEP * 5 / 2).map(|i| (i % 251 + 2) as u8).collect();
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
        assert!(c.read_request(&other, &mut Cursor::new(wire_of(&[2]))).await.is_err());
    }

    #[tokio::test]
    async fn each_kind_has_its_own_limit_checked_on_the_first_bytes() {
        let (mut c, p) = codec();
        let mut small = vec![1u8; 100];
        assert_eq!(c.read_request(&p, &mut Cursor::new(wire_of(&small))).await.unwrap().len(), 100);
        small.push(1);
        let err = c.read_request(&p, &mut Cursor::new(wire_of(&small))).await.unwrap_err();
        assert!(err.kind() == io::ErrorKind::InvalidData && err.to_string().contains("of its kind"), "{err}");
        // an unknown kind is refused whatever its size; a short message is judged on all it has
        assert!(c.read_request(&p, &mut Cursor::new(wire_of(&[9u8; 3]))).await.is_err());
        assert_eq!(c.read_request(&p, &mut Cursor::new(wire_of(&[1]))).await.unwrap().len(), 1);
        // responses use their own kinds (none here)
        assert_eq!(c.read_response(&p, &mut Cursor::new(wire_of(&[9u8; 16]))).await.unwrap().len(), 16);
    }

    /// Yields its bytes, then never anything more: a peer that announced a message and stalled.
    struct Stalled(Cursor<Vec<u8>>);

    impl AsyncRead for Stalled {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut [u8],
        ) -> std::task::Poll<io::Result<usize>> {
            match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
                std::task::Poll::Ready(Ok(0)) => std::task::Poll::Pending,
                other => other,
            }
        }
    }

    #[tokio::test]
    async fn a_stalled_message_holds_only_what_arrived_and_a_request_holds_the_budget_until_dropped() {
        let budget = Budget::new(BUDGET);
        let (mut c, p) = codec_with(&budget);
        // announces 8 MiB, sends 1000 bytes, stalls
        let mut wire = (LIMIT as u32).to_le_bytes().to_vec();
        wire.extend([2u8; 1000]);
        let mut stalled = Stalled(Cursor::new(wire));
        {
            let mut read = std::pin::pin!(c.read_request(&p, &mut stalled));
            assert!(futures::poll!(read.as_mut()).is_pending());
            let charged = BUDGET - budget.available();
            assert!((1000..=KIND_HEAD_BYTES + READ_STEP).contains(&charged), "{charged} bytes charged");
        }
        assert_eq!(budget.available(), BUDGET, "a failed read releases its charge");

        // a received request stays charged while any part of it is alive
        let data = vec![2u8; 3 * 1024 * 1024];
        let (mut c, p) = codec_with(&budget);
        let got = c.read_request(&p, &mut Cursor::new(wire_of(&data))).await.unwrap().into_bytes();
        assert!(BUDGET - budget.available() >= data.len());
        let tail = got.slice(10..20);
        drop(got);
        assert!(BUDGET - budget.available() >= data.len());
        drop(tail);
        assert_eq!(budget.available(), BUDGET);
        // responses are not charged
        let (mut c, p) = codec_with(&budget);
        let _kept = c.read_response(&p, &mut Cursor::new(wire_of(&[2u8; 16]))).await.unwrap();
        assert_eq!(budget.available(), BUDGET);
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_requests_until_buffers_are_released() {
        let budget = Budget::new(1024 * 1024);
        let (mut c, p) = codec_with(&budget);
        let held = c.read_request(&p, &mut Cursor::new(wire_of(&[2u8; 700 * 1024]))).await.unwrap();
        let err = c.read_request(&p, &mut Cursor::new(wire_of(&[2u8; 700 * 1024]))).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::OutOfMemory, "{err}");
        drop(held);
        assert!(c.read_request(&p, &mut Cursor::new(wire_of(&[2u8; 700 * 1024]))).await.is_ok());
    }
}
