//! # bitdust-net
//!
//! The libp2p swarm of a bitdust node, run as an actor: TCP + Noise + Yamux and QUIC, identify, ping,
//! Kademlia (protocol `/bitdust/kad/1.0.0`, server mode, every stored record validated), relay client and
//! server, AutoNAT, DCUtR, and the request-response protocols feature wings register ([`ProtocolSpec`]; the
//! storage wing's `/bitdust/storage/1`).
//!
//! [`Network::start`] spawns the swarm task and returns a cheap-to-clone [`Network`] handle plus the bounded
//! inbound queue of each registered protocol ([`Inbounds`]). Every command goes through a bounded channel and
//! gets its reply on a oneshot, matched by the libp2p request or query id.
//!
//! DHT records are [`bitdust_core::record::SignedRecord`]s. With `StoreInserts::FilterBoth`, an inbound
//! `PutRecord` reaches us instead of the store: we verify its signature and key and refuse a lower revision
//! than the one held before storing it. Records read from the DHT are verified the same way and the highest
//! valid revision wins.
//!
//! ```text
//! lib.rs        public types: config, errors, status, inbound requests
//! handle.rs     Network: the commands
//! swarm.rs      one swarm builder for every transport; the behaviour
//! addresses.rs  which addresses to advertise; what an address says
//! frame.rs      request-response framing: per-protocol and per-kind size limits, the inbound budget
//! store.rs      the DHT store: Kademlia's memory store behind per-source, per-provider and pressure limits
//! driver/       the swarm task: mod.rs (commands, events), dht.rs, rpc.rs, nat.rs
//! ```
//!
//! ```no_run
//! # async fn run() -> Result<(), bitdust_net::NetError> {
//! use bitdust_net::{Frame, NetConfig, Network, ProtocolSpec};
//! use libp2p::StreamProtocol;
//!
//! let echo = StreamProtocol::new("/example/echo/1");
//! let spec = ProtocolSpec::new(echo.clone(), 1024, 1024, 16, Frame::one(&b"busy"[..]));
//! let config = NetConfig {
//!     listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
//!     protocols: vec![spec],
//!     ..NetConfig::default()
//! };
//! let (net, mut inbounds) = Network::start(libp2p::identity::Keypair::generate_ed25519(), config).await?;
//! let mut requests = inbounds.take(&echo).expect("registered");
//! tokio::spawn(async move {
//!     while let Some(req) = requests.recv().await {
//!         let _ = net.respond(req.channel, Frame::one(req.request)).await;
//!     }
//! });
//! # Ok(())
//! # }
//! ```

mod addresses;
mod driver;
pub mod frame;
mod handle;
mod security;
mod store;
mod swarm;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use libp2p::request_response::ResponseChannel;
use libp2p::{kad, Multiaddr, PeerId, StreamProtocol};
use tokio::sync::mpsc;

pub use addresses::{advertised, is_memory, is_relayed, peer_of};
pub use frame::KindLimit;
pub use frame::{Frame, ProtocolSpec};
pub use handle::Network;
pub use swarm::MAX_PROTOCOLS;

/// Kademlia protocol name (a private DHT: bitdust nodes only).
pub const KAD_PROTOCOL: &str = "/bitdust/kad/1.0.0";
/// Connections idle this long are closed, unless [`NetConfig::idle_timeout`] says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// DHT records expire this long after they were last published, unless [`NetConfig::record_ttl`] says otherwise
/// (libp2p's default: 48 hours).
pub const DEFAULT_RECORD_TTL: Duration = Duration::from_secs(48 * 3600);

/// Errors of network operations.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The swarm task has stopped.
    #[error("network stopped")]
    Stopped,
    /// No known address of the peer could be dialed (its addresses may have changed: look them up again).
    #[error("cannot reach {peer}: {reason}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A request failed (timeout, connection closed, protocol unsupported).
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A DHT query failed or found nothing valid.
    #[error("DHT {what}: {reason}")]
    Dht {
        /// The operation.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// Listening failed.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// Building the transport failed.
    #[error("transport: {0}")]
    Transport(String),
}

/// How to start the network.
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// Addresses to listen on (`/ip4/127.0.0.1/tcp/0` picks a free port; `/udp/0/quic-v1` for QUIC).
    pub listen: Vec<Multiaddr>,
    /// Bootstrap nodes, each ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Serve as a relay for nodes behind NAT, with these limits (`None`: not a relay).
    pub relay_server: Option<RelayLimits>,
    /// Relays to reserve a slot on at once (each ending in `/p2p/<relay peer id>`), whatever AutoNAT says.
    pub relays: Vec<Multiaddr>,
    /// How long an unused connection stays open (`None`: [`DEFAULT_IDLE_TIMEOUT`]).
    pub idle_timeout: Option<Duration>,
    /// The feature protocols to carry (at most [`MAX_PROTOCOLS`]), each with its inbound queue.
    pub protocols: Vec<ProtocolSpec>,
    /// How long a DHT record lives in other nodes' stores unless published again (`None`:
    /// [`DEFAULT_RECORD_TTL`]). Records this node published are republished at half this period.
    pub record_ttl: Option<Duration>,
    /// Bounds on what peers can make this node hold: connections, inbound buffers, DHT records.
    pub limits: NetLimits,
}

/// Bounds on what peers, strangers included, can make a node hold (the `[limits]` section of a node's config).
/// The defaults suit a home node; a test lowers them to reach them.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct NetLimits {
    /// Established connections at once, inbound and outbound together (libp2p connection-limits).
    pub max_connections: u32,
    /// Established connections to one peer (TCP, QUIC and relayed ones together).
    pub max_connections_per_peer: u32,
    /// Inbound connections still in their handshake.
    pub max_pending_incoming: u32,
    /// No new connection is accepted while the process's resident memory is above this many bytes (libp2p
    /// memory-connection-limits; `None`: 80% of the machine's memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_memory_bytes: Option<usize>,
    /// Bytes that the buffers of inbound requests may hold in total, across all peers and protocols, until the
    /// feature handling them drops them (see [`frame`]). Requests beyond it are refused, not queued.
    pub inbound_buffer_bytes: usize,
    /// The DHT store's limits.
    pub dht: DhtLimits,
}

impl Default for NetLimits {
    /// 1024 connections, 8 per peer, 128 pending; new connections refused above 80% of memory; 256 MiB of inbound
    /// buffers (64 fragments of a 4 MiB block being received at once).
    fn default() -> Self {
        Self {
            max_connections: 1024,
            max_connections_per_peer: 8,
            max_pending_incoming: 128,
            max_memory_bytes: None,
            inbound_buffer_bytes: 256 << 20,
            dht: DhtLimits::default(),
        }
    }
}

/// Bounds on the DHT records and provider records a node stores for others (Kademlia's `STORE`: every node
/// stores what its neighbours ask it to, so without them anyone can fill it with records signed by throwaway
/// keys). Records of *priority* peers ([`Network::set_priority_peers`]: the peers this node has contracts with)
/// are accepted whatever the pressure, evicting a stranger's record when the store is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DhtLimits {
    /// Records held in total.
    pub max_records: usize,
    /// Records one peer may have put into our store that it did not sign itself (one publisher has at most one
    /// record per [`bitdust_core::record::RecordKind`]: keys are derived from the publisher): what a
    /// neighbour can replicate to us, and all that a stranger with throwaway keys can put through one peer id.
    pub max_records_per_source: usize,
    /// Once this many records are held, only priority peers' records and updates of held records are accepted.
    pub pressure_records: usize,
    /// Keys with provider records, in total.
    pub max_provided_keys: usize,
    /// Keys one peer may be a provider of in our store.
    pub max_keys_per_provider: usize,
    /// Providers of one key.
    pub max_providers_per_key: usize,
}

impl Default for DhtLimits {
    /// 65,536 records (at most 1 GiB of 16 KiB records), 4,096 per source, pressure at 90%; 1,024 provided keys,
    /// 16 per provider, 256 providers per key.
    fn default() -> Self {
        Self {
            max_records: 65_536,
            max_records_per_source: 4096,
            pressure_records: 65_536 / 10 * 9,
            max_provided_keys: 1024,
            max_keys_per_provider: 16,
            max_providers_per_key: 256,
        }
    }
}

/// Limits of a relay server (libp2p circuit relay v2), so a public node helping others stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RelayLimits {
    /// Reservations held at once.
    pub max_reservations: usize,
    /// Circuits relayed at once.
    pub max_circuits: usize,
    /// Bytes per circuit (each direction) before it is closed.
    pub max_circuit_bytes: u64,
    /// Seconds a circuit may last.
    pub max_circuit_secs: u64,
    /// Seconds a reservation lasts before renewal.
    pub reservation_secs: u64,
}

impl Default for RelayLimits {
    /// 128 reservations, 32 circuits, 4 GiB and 2 hours per circuit (enough for a backup through a relay
    /// while direct connections are attempted), reservations renewed hourly.
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_circuits: 32,
            max_circuit_bytes: 4 << 30,
            max_circuit_secs: 2 * 3600,
            reservation_secs: 3600,
        }
    }
}

/// What one DHT lookup cost, from libp2p's query statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LookupStats {
    /// Kademlia requests sent.
    pub requests: u32,
    /// Of which answered.
    pub successes: u32,
    /// Of which failed or timed out.
    pub failures: u32,
    /// Wall time from start to result, in microseconds.
    pub micros: u64,
}

impl From<&kad::QueryStats> for LookupStats {
    fn from(s: &kad::QueryStats) -> Self {
        Self {
            requests: s.num_requests(),
            successes: s.num_successes(),
            failures: s.num_failures(),
            micros: s.duration().map_or(0, |d| d.as_micros() as u64),
        }
    }
}

/// One open connection, for status.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConnectionInfo {
    /// Remote peer id.
    pub peer_id: String,
    /// Remote address.
    pub address: String,
    /// Whether it goes through a relay (`/p2p-circuit`) rather than directly.
    pub relayed: bool,
}

/// An inbound request on a feature protocol, to answer with [`Network::respond`].
#[derive(Debug)]
pub struct Inbound {
    /// The authenticated sender.
    pub peer: PeerId,
    /// The request: one message, within the protocol's request limit.
    pub request: Bytes,
    /// Where the answer goes.
    pub channel: Responder,
}

/// Where the answer to an [`Inbound`] request goes (give it to [`Network::respond`]).
#[derive(Debug)]
pub struct Responder {
    pub(crate) slot: usize,
    pub(crate) channel: ResponseChannel<Frame>,
}

/// The inbound queue of each registered protocol, returned by [`Network::start`].
#[derive(Debug, Default)]
pub struct Inbounds(pub(crate) HashMap<StreamProtocol, mpsc::Receiver<Inbound>>);

impl Inbounds {
    /// Takes the queue of `protocol` (once), for the feature that answers it.
    pub fn take(&mut self, protocol: &StreamProtocol) -> Option<mpsc::Receiver<Inbound>> {
        self.0.remove(protocol)
    }
}

/// What the network looks like now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NetStatus {
    /// Our peer id.
    pub peer_id: String,
    /// Addresses we listen on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub connected_peers: Vec<String>,
    /// Peers in the Kademlia routing table.
    pub routing_table_size: usize,
    /// DHT records held in our store (ours and others').
    pub dht_records: usize,
    /// Keys with provider records in our store.
    pub dht_provided_keys: usize,
    /// Records and provider records from peers refused since start: invalid, stale, a nickname taken, or over the
    /// store's limits ([`DhtLimits`]).
    pub dht_refused: u64,
    /// `public`, `private` or `unknown`, from AutoNAT.
    pub reachability: String,
    /// Relays holding a reservation for us.
    pub relays: Vec<String>,
    /// Open connections, direct or relayed.
    pub connections: Vec<ConnectionInfo>,
}
