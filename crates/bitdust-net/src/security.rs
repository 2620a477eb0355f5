//! Two security upgrades offered on one transport, the first preferred: the dialer proposes the first's protocols,
//! then the second's (multistream-select), and a peer that speaks only the second still connects. libp2p's
//! `SwarmBuilder` does the same for its own TCP transport, but its type is private; ours is built by hand so that
//! writes below the security layer are coalesced ([`coalesced`]).

use std::fmt;

use futures::future::{BoxFuture, Either};
use futures::{FutureExt, TryFutureExt};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::PeerId;

/// Bytes buffered below the security layer before a write reaches the socket (a flush sends them at once).
pub(crate) const COALESCE_BYTES: usize = 64 * 1024;

/// `stream` with its small writes gathered into writes of up to [`COALESCE_BYTES`]: rustls (TLS) writes each record
/// of at most 16 KiB to the socket as soon as it is sealed, so without this a bulk transfer made a system call per
/// 7 KB on average, where Noise gathers 64 KiB frames itself. Reads pass through; a flush writes what is buffered.
pub(crate) fn coalesced<S>(stream: S) -> futures::io::BufWriter<S>
where
    S: futures::AsyncWrite,
{
    futures::io::BufWriter::with_capacity(COALESCE_BYTES, stream)
}

/// Offers `A`'s protocols, then `B`'s.
#[derive(Debug, Clone)]
pub(crate) struct SelectSecurity<A, B>(pub A, pub B);

/// A protocol of `A` or of `B`.
#[derive(Debug, Clone)]
pub(crate) enum Proto<A, B> {
    /// Of the preferred upgrade.
    First(A),
    /// Of the other.
    Second(B),
}

impl<A: AsRef<str>, B: AsRef<str>> AsRef<str> for Proto<A, B> {
    fn as_ref(&self) -> &str {
        match self {
            Self::First(a) => a.as_ref(),
            Self::Second(b) => b.as_ref(),
        }
    }
}

/// The error of whichever upgrade was negotiated.
#[derive(Debug)]
pub(crate) enum SecurityError<A, B> {
    /// The preferred upgrade's.
    First(A),
    /// The other's.
    Second(B),
}

impl<A: fmt::Display, B: fmt::Display> fmt::Display for SecurityError<A, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::First(a) => a.fmt(f),
            Self::Second(b) => b.fmt(f),
        }
    }
}

impl<A: std::error::Error + 'static, B: std::error::Error + 'static> std::error::Error for SecurityError<A, B> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::First(a) => Some(a),
            Self::Second(b) => Some(b),
        }
    }
}

/// A security upgrade under way: the remote peer and the stream of the negotiated side.
type Upgrading<TA, TB, EA, EB> = BoxFuture<'static, Result<(PeerId, Either<TA, TB>), SecurityError<EA, EB>>>;

/// The negotiated side's upgrade, boxed, its stream and error tagged with the side.
fn tagged<FA, FB, TA, TB, EA, EB>(side: Either<FA, FB>) -> Upgrading<TA, TB, EA, EB>
where
    FA: std::future::Future<Output = Result<(PeerId, TA), EA>> + Send + 'static,
    FB: std::future::Future<Output = Result<(PeerId, TB), EB>> + Send + 'static,
    TA: 'static,
    TB: 'static,
    EA: 'static,
    EB: 'static,
{
    match side {
        Either::Left(a) => a.map_ok(|(peer, s)| (peer, Either::Left(s))).map_err(SecurityError::First).boxed(),
        Either::Right(b) => b.map_ok(|(peer, s)| (peer, Either::Right(s))).map_err(SecurityError::Second).boxed(),
    }
}

impl<A: UpgradeInfo, B: UpgradeInfo> UpgradeInfo for SelectSecurity<A, B> {
    type Info = Proto<A::Info, B::Info>;
    type InfoIter = std::vec::IntoIter<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        let first = self.0.protocol_info().into_iter().map(Proto::First);
        let second = self.1.protocol_info().into_iter().map(Proto::Second);
        first.chain(second).collect::<Vec<_>>().into_iter()
    }
}

impl<C, A, B, TA, TB> InboundConnectionUpgrade<C> for SelectSecurity<A, B>
where
    A: InboundConnectionUpgrade<C, Output = (PeerId, TA)>,
    B: InboundConnectionUpgrade<C, Output = (PeerId, TB)>,
    A::Future: Send + 'static,
    B::Future: Send + 'static,
    A::Error: Send + 'static,
    B::Error: Send + 'static,
    TA: Send + 'static,
    TB: Send + 'static,
{
    type Output = (PeerId, Either<TA, TB>);
    type Error = SecurityError<A::Error, B::Error>;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, socket: C, info: Self::Info) -> Self::Future {
        tagged(match info {
            Proto::First(i) => Either::Left(self.0.upgrade_inbound(socket, i)),
            Proto::Second(i) => Either::Right(self.1.upgrade_inbound(socket, i)),
        })
    }
}

impl<C, A, B, TA, TB> OutboundConnectionUpgrade<C> for SelectSecurity<A, B>
where
    A: OutboundConnectionUpgrade<C, Output = (PeerId, TA)>,
    B: OutboundConnectionUpgrade<C, Output = (PeerId, TB)>,
    A::Future: Send + 'static,
    B::Future: Send + 'static,
    A::Error: Send + 'static,
    B::Error: Send + 'static,
    TA: Send + 'static,
    TB: Send + 'static,
{
    type Output = (PeerId, Either<TA, TB>);
    type Error = SecurityError<A::Error, B::Error>;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, socket: C, info: Self::Info) -> Self::Future {
        tagged(match info {
            Proto::First(i) => Either::Left(self.0.upgrade_outbound(socket, i)),
            Proto::Second(i) => Either::Right(self.1.upgrade_outbound(socket, i)),
        })
    }
}
