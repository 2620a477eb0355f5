//! Transport preference: TCP before QUIC.
//!
//! A node listens on TCP and QUIC, and libp2p dials every known address of a peer at once and keeps the
//! connection whose handshake finishes first. QUIC's handshake is shorter, so it usually wins, even on
//! loopback, and then carries every fragment: on the devnet a QUIC connection costs ~45% more CPU per byte
//! than TCP (user-space packetisation, encryption and a UDP system call per datagram batch; TCP's segmentation
//! and acknowledgements stay in the kernel). [`DelayedDial`] gives TCP a head start instead: a QUIC dial waits
//! [`QUIC_DIAL_DELAY`] before it sends its first packet, like the "Connection Attempt Delay" between address
//! families in Happy Eyeballs (RFC 8305, section 5; 250 ms recommended) and Syncthing's rule of preferring TCP
//! over QUIC. A peer reachable over TCP is connected over TCP; one reachable only over QUIC (a hole-punched
//! NAT, a blocked port) is connected 250 ms later than before. A dial in the listener role (the answering half
//! of a DCUtR hole punch, which must start at the agreed moment) is never delayed, and the dialing half of a
//! hole punch still meets it: the listener keeps sending punch packets until its handshake timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::{Endpoint, Transport};
use libp2p::Multiaddr;

/// How long a QUIC dial waits before it starts: RFC 8305's recommended Connection Attempt Delay.
pub const QUIC_DIAL_DELAY: Duration = Duration::from_millis(250);

/// A transport whose outbound dials (in the dialer role) start `delay` after they are asked for; listening
/// and inbound connections are unchanged. Wraps the QUIC transport so that a TCP dial started at the same
/// time wins when both work (see the module docs).
#[derive(Debug)]
pub struct DelayedDial<T> {
    inner: T,
    delay: Duration,
}

impl<T> DelayedDial<T> {
    /// Wraps `inner`, delaying its dials by `delay`.
    pub fn new(inner: T, delay: Duration) -> Self {
        Self { inner, delay }
    }
}

impl<T> Transport for DelayedDial<T>
where
    T: Transport + Unpin,
    T::Dial: Send + 'static,
    T::Output: 'static,
    T::Error: 'static,
{
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = Pin<Box<dyn Future<Output = Result<T::Output, T::Error>> + Send>>;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        // The inner dial future does nothing until polled (libp2p-quic connects inside it), so holding it back
        // holds back the first packet.
        let dial = self.inner.dial(addr, opts)?;
        if opts.role == Endpoint::Listener || self.delay.is_zero() {
            return Ok(Box::pin(dial));
        }
        let delay = self.delay;
        Ok(Box::pin(async move {
            tokio::time::sleep(delay).await;
            dial.await
        }))
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
    }
}
