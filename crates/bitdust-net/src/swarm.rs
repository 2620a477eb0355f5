//! Swarm construction: one builder for every transport, and the behaviour every bitdust swarm runs.
//!
//! The transport is TCP + Noise + Yamux with QUIC beside it (RFC 9000; libp2p's TLS 1.3 handshake), or, for
//! in-process networks (the scale simulation), libp2p's memory transport with the same Noise and Yamux. Either
//! way the relay client transport is composed on top, so every node can listen through a relay.

use std::time::Duration;

use bitdust_core::record;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::upgrade::Version;
use libp2p::core::Transport as _;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    autonat, connection_limits, dcutr, identify, identity::Keypair, kad, memory_connection_limits, noise, ping, quic,
    relay, request_response, tcp, tls, yamux, PeerId, StreamProtocol,
};

use crate::frame::{Budget, FrameCodec, ProtocolSpec};
use crate::security::SelectSecurity;
use crate::store::DhtStore;
use crate::{NetError, NetLimits, RelayLimits, KAD_PROTOCOL};

/// Request timeout: a 4 MiB fragment on a slow link plus the supplier's fsync.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Request-response streams open at once per connection (libp2p's default is 100): enough for
/// `blocks_in_flight` blocks of fragments in both directions.
const MAX_CONCURRENT_STREAMS: usize = 128;

/// Feature protocols one swarm carries at most (storage, and room for messages, sharing and scrubbing). Each
/// gets a request-response behaviour of its own, because libp2p's request-response offers every protocol of a
/// behaviour on each request and lets the remote pick: a storage request could be negotiated as another
/// feature's protocol. Raising the limit is adding a slot to `Rpc` (swarm.rs).
pub const MAX_PROTOCOLS: usize = 4;

/// One request-response behaviour.
pub(crate) type RequestResponse = request_response::Behaviour<FrameCodec>;

/// The feature protocols, one per slot (in [`crate::NetConfig::protocols`] order); unused slots are off.
#[derive(NetworkBehaviour)]
pub(crate) struct Rpc {
    p0: Toggle<RequestResponse>,
    p1: Toggle<RequestResponse>,
    p2: Toggle<RequestResponse>,
    p3: Toggle<RequestResponse>,
}

impl Rpc {
    fn new(protocols: &[ProtocolSpec], budget: &Budget) -> Self {
        let mut slots = protocols.iter().map(|spec| {
            Some(request_response::Behaviour::with_codec(
                FrameCodec::new(std::slice::from_ref(spec), budget.clone()),
                [(spec.name.clone(), request_response::ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(MAX_CONCURRENT_STREAMS),
            ))
        });
        let mut next = || Toggle::from(slots.next().flatten());
        Self { p0: next(), p1: next(), p2: next(), p3: next() }
    }

    /// The behaviour of slot `i`, if that slot is in use.
    pub(crate) fn slot(&mut self, i: usize) -> Option<&mut RequestResponse> {
        match i {
            0 => self.p0.as_mut(),
            1 => self.p1.as_mut(),
            2 => self.p2.as_mut(),
            3 => self.p3.as_mut(),
            _ => None,
        }
    }
}

impl RpcEvent {
    /// The slot the event comes from, and the event.
    pub(crate) fn into_slot(self) -> (usize, request_response::Event<crate::Frame, crate::Frame>) {
        match self {
            Self::P0(e) => (0, e),
            Self::P1(e) => (1, e),
            Self::P2(e) => (2, e),
            Self::P3(e) => (3, e),
        }
    }
}

/// The behaviour of every bitdust swarm.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Connection counts ([`NetLimits`]); first, so a connection over a limit is denied before any other
    /// behaviour sets up for it.
    pub(crate) limits: connection_limits::Behaviour,
    /// No new connections while the process uses too much memory.
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) kad: kad::Behaviour<DhtStore>,
    /// The feature protocols registered in [`crate::NetConfig::protocols`].
    pub(crate) rpc: Rpc,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay_server: Toggle<relay::Behaviour>,
    pub(crate) autonat: autonat::Behaviour,
    pub(crate) dcutr: dcutr::Behaviour,
}

/// What a swarm is built from.
pub(crate) struct SwarmSpec<'a> {
    pub(crate) keypair: Keypair,
    /// Memory transport instead of TCP + QUIC.
    pub(crate) memory: bool,
    pub(crate) relay_limits: Option<RelayLimits>,
    pub(crate) protocols: &'a [ProtocolSpec],
    pub(crate) idle_timeout: Duration,
    pub(crate) record_ttl: Duration,
    pub(crate) limits: NetLimits,
}

/// Builds the swarm (one builder whatever the transport).
///
/// # Errors
/// [`NetError::Transport`] if a transport or Noise cannot be set up.
/// [`NetError::Transport`] also if more than [`MAX_PROTOCOLS`] protocols, or one twice, are registered.
pub(crate) fn build(spec: SwarmSpec<'_>) -> Result<libp2p::Swarm<Behaviour>, NetError> {
    let build_error = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
    let SwarmSpec { keypair, memory, relay_limits, protocols, idle_timeout, record_ttl, limits } = spec;
    if protocols.len() > MAX_PROTOCOLS {
        return Err(NetError::Transport(format!("{} protocols registered, at most {MAX_PROTOCOLS}", protocols.len())));
    }
    let mut names: Vec<&str> = protocols.iter().map(|p| p.name.as_ref()).collect();
    names.sort_unstable();
    names.dedup();
    if names.len() != protocols.len() {
        return Err(NetError::Transport("a protocol is registered twice".into()));
    }
    let builder = libp2p::SwarmBuilder::with_existing_identity(keypair).with_tokio();
    let behaviour =
        |key: &Keypair, relay_client| behaviour(key, relay_client, relay_limits, protocols, record_ttl, limits);
    if memory {
        return Ok(builder
            .with_other_transport(memory_transport)
            .map_err(|e| build_error(&e))?
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| build_error(&e))?
            .with_behaviour(behaviour)
            .map_err(|e| build_error(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
            .build());
    }
    Ok(builder
        .with_other_transport(network_transport)
        .map_err(|e| build_error(&e))?
        .with_relay_client((tls::Config::new, noise::Config::new), yamux::Config::default)
        .map_err(|e| build_error(&e))?
        .with_behaviour(behaviour)
        .map_err(|e| build_error(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle_timeout))
        .build())
}

/// TCP or QUIC, whichever the address asks for. TCP offers TLS 1.3 (AES-GCM first on CPUs with AES instructions:
/// vendor/libp2p-tls) before Noise, which peers that speak only Noise (js-libp2p's defaults) still get, with writes
/// coalesced below it ([`crate::security::coalesced`]); then Yamux, upgraded as libp2p's own `with_tcp` does
/// (V1Lazy). QUIC is TLS 1.3 too.
fn network_transport(
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    let security = SelectSecurity(tls::Config::new(key)?, noise::Config::new(key)?);
    let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
        .map(|stream, _| crate::security::coalesced(stream))
        .upgrade(Version::V1Lazy)
        .authenticate(security)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)));
    let quic = quic::tokio::Transport::new(quic::Config::new(key))
        .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)));
    Ok(tcp.or_transport(quic).map(|either, _| either.into_inner()).boxed())
}

/// The in-process transport of simulations: memory, Noise, Yamux.
fn memory_transport(
    key: &Keypair,
) -> Result<Boxed<(PeerId, StreamMuxerBox)>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(libp2p::core::transport::MemoryTransport::default()
        .upgrade(Version::V1)
        .authenticate(noise::Config::new(key)?)
        .multiplex(yamux::Config::default())
        .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
        .boxed())
}

fn behaviour(
    key: &Keypair,
    relay_client: relay::client::Behaviour,
    relay_limits: Option<RelayLimits>,
    protocols: &[ProtocolSpec],
    record_ttl: Duration,
    limits: NetLimits,
) -> Behaviour {
    let peer = key.public().to_peer_id();
    let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
    kad_config.set_query_timeout(Duration::from_secs(30));
    // The node's announce loop bootstraps every `announce_interval_secs` (10 minutes; `Network::bootstrap`);
    // libp2p's own periodic bootstrap every 5 minutes on top of it doubled the background lookups for nothing.
    kad_config.set_periodic_bootstrap_interval(None);
    // Records expire unless published again; what we published ourselves goes out again at half the lifetime, and
    // what we hold for others is replicated to the closest nodes as often (libp2p: 1 hour), never less often.
    let record_ttl = record_ttl.max(Duration::from_secs(1));
    kad_config.set_record_ttl(Some(record_ttl));
    kad_config.set_publication_interval(Some(record_ttl / 2));
    kad_config.set_replication_interval(Some((record_ttl / 2).min(Duration::from_secs(3600))));
    let store = DhtStore::new(peer, limits.dht, record::MAX_RECORD_BYTES);
    let mut kad = kad::Behaviour::with_config(peer, store, kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    let rpc = Rpc::new(protocols, &Budget::new(limits.inbound_buffer_bytes));
    let connection_limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(limits.max_connections))
        .with_max_established_per_peer(Some(limits.max_connections_per_peer))
        .with_max_pending_incoming(Some(limits.max_pending_incoming));
    let memory = match limits.max_memory_bytes {
        Some(bytes) => memory_connection_limits::Behaviour::with_max_bytes(bytes),
        None => memory_connection_limits::Behaviour::with_max_percentage(0.8),
    };
    // No address cache in identify: a peer's listen addresses go through `advertised` into Kademlia instead (the
    // cache would dial them unfiltered, loopback included).
    let identify =
        identify::Behaviour::new(identify::Config::new("/bitdust/id/1".into(), key.public()).with_cache_size(0));
    let relay_server = relay_limits.map(|l| {
        relay::Behaviour::new(
            peer,
            relay::Config {
                max_reservations: l.max_reservations,
                max_circuits: l.max_circuits,
                max_circuit_bytes: l.max_circuit_bytes,
                max_circuit_duration: Duration::from_secs(l.max_circuit_secs),
                reservation_duration: Duration::from_secs(l.reservation_secs),
                ..relay::Config::default()
            },
        )
    });
    // Private address ranges count: the lab and home networks use them.
    let autonat = autonat::Behaviour::new(
        peer,
        autonat::Config { only_global_ips: false, boot_delay: Duration::from_secs(2), ..autonat::Config::default() },
    );
    Behaviour {
        limits: connection_limits::Behaviour::new(connection_limits),
        memory,
        kad,
        rpc,
        identify,
        ping: ping::Behaviour::default(),
        relay_client,
        relay_server: Toggle::from(relay_server),
        autonat,
        dcutr: dcutr::Behaviour::new(peer),
    }
}

/// Whether a peer that identified itself to us goes into the routing table: yes if it is there already or its
/// k-bucket has room.
///
/// Into a full bucket, Kademlia (Maymounkov & Mazières 2002, 2.2) and libp2p insert a new peer only after
/// checking that the least-recently-seen one is gone, and libp2p checks by dialing it. For a peer that
/// connected to *us* that dial cascades: the dialed peer sees an unknown peer (us) reach it, finds that bucket
/// full too and dials its own oldest entry, and so on. In `bitdust sim` at 300 nodes, 72% of all connections
/// were such chains, and the share grows with the network (routing tables hold a smaller part of it). So a
/// peer that reached us fills free room only, as in go-libp2p-kbucket, which never dials on insert; peers our
/// own queries find still get the liveness check (libp2p's Kademlia does that itself).
pub(crate) fn has_room_for(kad: &mut kad::Behaviour<DhtStore>, peer: &PeerId) -> bool {
    kad.kbucket(*peer).is_some_and(|bucket| {
        bucket.num_entries() < kad::K_VALUE.get() || bucket.iter().any(|e| e.node.key.preimage() == peer)
    })
}
