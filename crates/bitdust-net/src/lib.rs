//! # bitdust-net
//!
//! The libp2p swarm of a bitdust node, run as an actor: TCP + Noise + Yamux, identify, ping, Kademlia
//! (protocol `/bitdust/kad/1.0.0`, server mode, every stored record validated) and the
//! `/bitdust/storage/1` request-response protocol ([`codec`]).
//!
//! [`Network::start`] spawns the swarm task and returns a cheap-to-clone [`Network`] handle plus a bounded
//! receiver of [`Inbound`] requests. Every command goes through a bounded channel and gets its reply on a
//! oneshot, matched by the libp2p request or query id.
//!
//! DHT records are [`bitdust_core::record::SignedRecord`]s. With `StoreInserts::FilterBoth`, an inbound
//! `PutRecord` reaches us instead of the store: we verify its signature and key and refuse a lower revision
//! than the one held before storing it. Records read from the DHT are verified the same way and the highest
//! valid revision wins.

pub mod codec;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bitdust_core::record::{self, RecordKind, SignedRecord};
use bitdust_core::wire::{Request, Response, STORAGE_PROTOCOL};
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::core::Transport as _;
use libp2p::kad::store::RecordStore;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    autonat, dcutr, identify, identity::Keypair, kad, noise, ping, relay, request_response, tcp, yamux, Multiaddr,
    PeerId, StreamProtocol,
};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

pub use libp2p::request_response::ResponseChannel;

/// Kademlia protocol name (a private DHT: bitdust nodes only).
pub const KAD_PROTOCOL: &str = "/bitdust/kad/1.0.0";
/// Capacity of the command channel into the swarm task.
const COMMAND_CAPACITY: usize = 1024;
/// Capacity of the inbound-request channel out of the swarm task; beyond it, requests are answered
/// "busy" rather than queued without bound.
const INBOUND_CAPACITY: usize = 256;
/// Request timeout: a 4 MiB fragment on a slow link plus the supplier's fsync.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// A record lookup ends once this many valid copies were found (the newest revision among them wins), or when
/// the query ends.
const GET_COPIES: usize = 4;
/// Connections idle this long are closed, unless [`NetConfig::idle_timeout`] says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);

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

/// An inbound storage request, to answer with [`Network::respond`].
#[derive(Debug)]
pub struct Inbound {
    /// The authenticated sender.
    pub peer: PeerId,
    /// The request.
    pub request: Request,
    /// Where the answer goes.
    pub channel: ResponseChannel<Response>,
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
    /// `public`, `private` or `unknown`, from AutoNAT.
    pub reachability: String,
    /// Relays holding a reservation for us.
    pub relays: Vec<String>,
    /// Open connections, direct or relayed.
    pub connections: Vec<ConnectionInfo>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    kad: kad::Behaviour<kad::store::MemoryStore>,
    storage: request_response::Behaviour<codec::StorageCodec>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    relay_client: relay::client::Behaviour,
    relay_server: Toggle<relay::Behaviour>,
    autonat: autonat::Behaviour,
    dcutr: dcutr::Behaviour,
}

/// Where a command's answer goes.
type Reply<T> = oneshot::Sender<Result<T, NetError>>;

enum Command {
    Request { peer: PeerId, request: Request, reply: Reply<Response> },
    Respond { channel: ResponseChannel<Response>, response: Response },
    SetAddresses { peer: PeerId, addrs: Vec<Multiaddr> },
    PutRecord { record: SignedRecord, reply: Reply<()> },
    GetRecord { kind: RecordKind, publisher: PeerId, reply: Reply<(SignedRecord, LookupStats)> },
    StartProviding { key: Vec<u8>, reply: Reply<()> },
    GetProviders { key: Vec<u8>, enough: Enough, reply: Reply<(HashSet<PeerId>, LookupStats)> },
    RoutingTable { reply: oneshot::Sender<Vec<PeerId>> },
    Connected { reply: oneshot::Sender<HashSet<PeerId>> },
    Bootstrap { reply: Reply<()> },
    Status { reply: oneshot::Sender<NetStatus> },
    UseRelay { addr: Multiaddr },
    Shutdown,
}

/// A handle to the running swarm. Clone it freely.
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    addresses: tokio::sync::watch::Receiver<Vec<Multiaddr>>,
    reachability: tokio::sync::watch::Receiver<String>,
    relays: tokio::sync::watch::Receiver<Vec<PeerId>>,
}

impl Network {
    /// Builds the swarm, starts listening, dials the bootstrap nodes and spawns the swarm task.
    /// Returns once every listen address is bound.
    ///
    /// # Errors
    /// [`NetError::Transport`] or [`NetError::Listen`].
    pub async fn start(keypair: Keypair, config: NetConfig) -> Result<(Self, mpsc::Receiver<Inbound>), NetError> {
        let local_peer_id = keypair.public().to_peer_id();
        let relay_limits = config.relay_server;
        let memory = !config.listen.is_empty() && config.listen.iter().all(is_memory);
        let build_error = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
        let idle_timeout = config.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT);
        let swarm_config = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(idle_timeout);
        let mut swarm = if memory {
            // In-process networks (the scale simulation): the same protocols over libp2p's memory transport.
            libp2p::SwarmBuilder::with_existing_identity(keypair)
                .with_tokio()
                .with_other_transport(|key| {
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                        libp2p::core::transport::MemoryTransport::default()
                            .upgrade(libp2p::core::upgrade::Version::V1)
                            .authenticate(noise::Config::new(key)?)
                            .multiplex(yamux::Config::default()),
                    )
                })
                .map_err(|e| build_error(&e))?
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|e| build_error(&e))?
                .with_behaviour(|key, relay_client| behaviour(key, relay_client, relay_limits))
                .map_err(|e| build_error(&e))?
                .with_swarm_config(swarm_config)
                .build()
        } else {
            libp2p::SwarmBuilder::with_existing_identity(keypair)
                .with_tokio()
                .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
                .map_err(|e| build_error(&e))?
                .with_quic()
                .with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|e| build_error(&e))?
                .with_behaviour(|key, relay_client| behaviour(key, relay_client, relay_limits))
                .map_err(|e| build_error(&e))?
                .with_swarm_config(swarm_config)
                .build()
        };

        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen { addr: addr.clone(), reason: e.to_string() })?;
        }
        // Wait until each listener reports its address (port 0 becomes a real port).
        let mut listening = Vec::new();
        while listening.len() < config.listen.len() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => listening.push(address),
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(NetError::Listen { addr: config.listen[0].clone(), reason: error.to_string() })
                }
                SwarmEvent::ListenerClosed { addresses, reason, .. } => {
                    return Err(NetError::Listen {
                        addr: addresses.first().cloned().unwrap_or_else(|| config.listen[0].clone()),
                        reason: format!("{reason:?}"),
                    })
                }
                _ => {}
            }
        }
        // One dial per bootstrap peer over all its addresses, so that one connection (the first transport to
        // finish) is made rather than one per address.
        let mut bootstrap: Vec<(PeerId, Vec<Multiaddr>)> = Vec::new();
        for addr in &config.bootstrap {
            if let Some(peer) = peer_of(addr).filter(|p| *p != local_peer_id) {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                match bootstrap.iter_mut().find(|(p, _)| *p == peer) {
                    Some((_, addrs)) => addrs.push(addr.clone()),
                    None => bootstrap.push((peer, vec![addr.clone()])),
                }
            }
        }
        for (peer, addrs) in bootstrap {
            let _ = swarm.dial(libp2p::swarm::dial_opts::DialOpts::peer_id(peer).addresses(addrs).build());
        }
        // Listening through a relay needs a connection to it first: dial now, listen once it identified.
        let mut pending_relays = HashMap::new();
        for relay in &config.relays {
            if let Some(peer) = peer_of(relay) {
                let _ = swarm.dial(relay.clone());
                pending_relays.insert(peer, relay.clone());
            }
        }
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let (addresses_tx, addresses) = tokio::sync::watch::channel(listening);
        let (reachability_tx, reachability) = tokio::sync::watch::channel("unknown".to_string());
        let (relays_tx, relays) = tokio::sync::watch::channel(Vec::new());
        let mut driver = Driver {
            swarm,
            inbound: inbound_tx,
            requests: HashMap::new(),
            queries: HashMap::new(),
            connections: HashMap::new(),
            relays: HashSet::new(),
            relays_watch: relays_tx,
            relay_listeners: HashMap::new(),
            pending_relays,
            addresses: addresses_tx,
            own_external: HashSet::new(),
            reachability: reachability_tx,
        };
        driver.publish_addresses();
        // The span is attached to the task (entering it inside would leak it into other tasks at each await).
        tokio::spawn(driver.run(command_rx).instrument(tracing::info_span!("swarm", peer = %local_peer_id)));
        Ok((Self { commands, local_peer_id, addresses, reachability, relays }, inbound_rx))
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Sends a storage request and waits for the response.
    ///
    /// # Errors
    /// [`NetError::Request`] if it fails on the way; [`NetError::Stopped`].
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        self.call(|reply| Command::Request { peer, request, reply }).await?
    }

    /// Answers an inbound request.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn respond(&self, channel: ResponseChannel<Response>, response: Response) -> Result<(), NetError> {
        self.commands.send(Command::Respond { channel, response }).await.map_err(|_| NetError::Stopped)
    }

    /// Replaces the addresses the swarm dials `peer` at (from its verified identity): stale ones, such as a
    /// circuit through a relay that has gone, are forgotten.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn set_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<(), NetError> {
        self.commands.send(Command::SetAddresses { peer, addrs }).await.map_err(|_| NetError::Stopped)
    }

    /// Publishes a signed record to the DHT (and the local store).
    ///
    /// # Errors
    /// [`NetError::Dht`] if no peer stored it.
    pub async fn put_record(&self, record: SignedRecord) -> Result<(), NetError> {
        self.call(|reply| Command::PutRecord { record, reply }).await?
    }

    /// Finds the highest-revision valid record of `kind` published by `publisher`.
    ///
    /// # Errors
    /// [`NetError::Dht`] if none is found.
    pub async fn get_record(&self, kind: RecordKind, publisher: PeerId) -> Result<SignedRecord, NetError> {
        Ok(self.get_record_with_stats(kind, publisher).await?.0)
    }

    /// [`Network::get_record`], with what the lookup cost.
    ///
    /// # Errors
    /// [`NetError::Dht`] if none is found.
    pub async fn get_record_with_stats(
        &self,
        kind: RecordKind,
        publisher: PeerId,
    ) -> Result<(SignedRecord, LookupStats), NetError> {
        self.call(|reply| Command::GetRecord { kind, publisher, reply }).await?
    }

    /// Announces this node as a provider of `key` (supplier service, nickname).
    ///
    /// # Errors
    /// [`NetError::Dht`].
    pub async fn start_providing(&self, key: Vec<u8>) -> Result<(), NetError> {
        self.call(|reply| Command::StartProviding { key, reply }).await?
    }

    /// Finds providers of `key`.
    ///
    /// # Errors
    /// [`NetError::Dht`].
    pub async fn get_providers(&self, key: Vec<u8>) -> Result<HashSet<PeerId>, NetError> {
        Ok(self.get_providers_with_stats(key).await?.0)
    }

    /// [`Network::get_providers`] that ends the lookup as soon as `enough` distinct providers outside
    /// `unwanted` are known (usually with the first answer: each of the closest peers holds the whole provider
    /// set), instead of waiting for every closest peer to answer, where a dead one costs a whole dial timeout.
    /// Returns every provider found, `unwanted` ones included.
    ///
    /// # Errors
    /// [`NetError::Dht`].
    pub async fn get_some_providers(
        &self,
        key: Vec<u8>,
        unwanted: HashSet<PeerId>,
        enough: usize,
    ) -> Result<HashSet<PeerId>, NetError> {
        let enough = Enough { count: enough, unwanted };
        Ok(self.call(|reply| Command::GetProviders { key, enough, reply }).await??.0)
    }

    /// [`Network::get_providers`], with what the lookup cost.
    ///
    /// # Errors
    /// [`NetError::Dht`].
    pub async fn get_providers_with_stats(&self, key: Vec<u8>) -> Result<(HashSet<PeerId>, LookupStats), NetError> {
        self.call(|reply| Command::GetProviders { key, enough: Enough::all(), reply }).await?
    }

    /// The peers in our Kademlia routing table (every k-bucket), for measurements.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn routing_table(&self) -> Result<Vec<PeerId>, NetError> {
        self.call(|reply| Command::RoutingTable { reply }).await
    }

    /// The peers we hold at least one open connection to (direct or relayed), right now.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn connected_peers(&self) -> Result<HashSet<PeerId>, NetError> {
        self.call(|reply| Command::Connected { reply }).await
    }

    /// Runs a Kademlia bootstrap (fills the routing table).
    ///
    /// # Errors
    /// [`NetError::Dht`] if there is no known peer.
    pub async fn bootstrap(&self) -> Result<(), NetError> {
        self.call(|reply| Command::Bootstrap { reply }).await?
    }

    /// Current network status.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn status(&self) -> Result<NetStatus, NetError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// Reserves a slot on the relay at `addr` (ending in `/p2p/<relay peer id>`) and listens through it.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn use_relay(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.commands.send(Command::UseRelay { addr }).await.map_err(|_| NetError::Stopped)
    }

    /// The addresses we can be reached at (listen addresses, relayed ones included); changes are signalled.
    pub fn addresses(&self) -> tokio::sync::watch::Receiver<Vec<Multiaddr>> {
        self.addresses.clone()
    }

    /// AutoNAT's verdict: `public`, `private` or `unknown`; changes are signalled.
    pub fn reachability(&self) -> tokio::sync::watch::Receiver<String> {
        self.reachability.clone()
    }

    /// The relays holding a reservation for us (sorted); changes (accepted, lost) are signalled.
    pub fn relays(&self) -> tokio::sync::watch::Receiver<Vec<PeerId>> {
        self.relays.clone()
    }

    /// Stops the swarm task.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}

/// The behaviour of every bitdust swarm (the transports differ; see [`Network::start`]).
fn behaviour(key: &Keypair, relay_client: relay::client::Behaviour, relay_limits: Option<RelayLimits>) -> Behaviour {
    let peer = key.public().to_peer_id();
    let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
    kad_config.set_query_timeout(Duration::from_secs(30));
    // The node's announce loop bootstraps every `announce_interval_secs` (10 minutes; `Network::bootstrap`);
    // libp2p's own periodic bootstrap every 5 minutes on top of it doubled the background lookups for nothing.
    kad_config.set_periodic_bootstrap_interval(None);
    let store_config = kad::store::MemoryStoreConfig {
        max_records: 65_536,
        max_value_bytes: record::MAX_RECORD_BYTES,
        max_provided_keys: 1024,
        max_providers_per_key: 256,
    };
    let store = kad::store::MemoryStore::with_config(peer, store_config);
    let mut kad = kad::Behaviour::with_config(peer, store, kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    let storage = request_response::Behaviour::with_codec(
        codec::StorageCodec,
        [(StreamProtocol::new(STORAGE_PROTOCOL), request_response::ProtocolSupport::Full)],
        request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT).with_max_concurrent_streams(128),
    );
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
        kad,
        storage,
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
fn has_room_for(kad: &mut kad::Behaviour<kad::store::MemoryStore>, peer: &PeerId) -> bool {
    kad.kbucket(*peer).is_some_and(|bucket| {
        bucket.num_entries() < kad::K_VALUE.get() || bucket.iter().any(|e| e.node.key.preimage() == peer)
    })
}

/// Whether `addr` is a libp2p memory-transport address (`/memory/<port>`), used by in-process networks.
pub fn is_memory(addr: &Multiaddr) -> bool {
    matches!(addr.iter().next(), Some(Protocol::Memory(_)))
}

/// The peer id at the end of a multiaddr (`.../p2p/<id>`).
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// When a provider lookup may end early: once `count` providers outside `unwanted` are known.
#[derive(Debug)]
struct Enough {
    count: usize,
    unwanted: HashSet<PeerId>,
}

impl Enough {
    /// Never early: the whole query.
    fn all() -> Self {
        Self { count: usize::MAX, unwanted: HashSet::new() }
    }

    fn met_by(&self, found: &HashSet<PeerId>) -> bool {
        found.difference(&self.unwanted).count() >= self.count
    }
}

enum Query {
    Put(Reply<()>),
    Get {
        key: Vec<u8>,
        best: Option<SignedRecord>,
        /// Valid copies seen so far.
        copies: usize,
        reply: Reply<(SignedRecord, LookupStats)>,
    },
    Provide(Reply<()>),
    Providers {
        found: HashSet<PeerId>,
        enough: Enough,
        reply: Reply<(HashSet<PeerId>, LookupStats)>,
    },
    Bootstrap(Reply<()>),
}

struct Driver {
    swarm: libp2p::Swarm<Behaviour>,
    inbound: mpsc::Sender<Inbound>,
    requests: HashMap<request_response::OutboundRequestId, (PeerId, Reply<Response>)>,
    queries: HashMap<kad::QueryId, Query>,
    /// Open connections: peer, remote address (for an inbound relayed one, the relayed listen address), relayed.
    connections: HashMap<ConnectionId, (PeerId, Multiaddr, bool)>,
    relays: HashSet<PeerId>,
    relays_watch: tokio::sync::watch::Sender<Vec<PeerId>>,
    /// The listener through each relay.
    relay_listeners: HashMap<PeerId, ListenerId>,
    /// Relays to listen through once connected and identified.
    pending_relays: HashMap<PeerId, Multiaddr>,
    addresses: tokio::sync::watch::Sender<Vec<Multiaddr>>,
    /// The external addresses we added ourselves (see `publish_addresses`).
    own_external: HashSet<Multiaddr>,
    reachability: tokio::sync::watch::Sender<String>,
}

/// The addresses worth giving to other peers: without loopback ones when there is anything else (a node that
/// listens on all interfaces also listens on 127.0.0.1, and a remote peer dialing that reaches itself, which
/// makes libp2p abandon the whole dial with "unexpected peer id"). Nodes that have only loopback addresses (a
/// devnet on one machine) keep them. Unspecified addresses (0.0.0.0, ::) are never dialable.
pub fn advertised(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    let ip = |a: &Multiaddr| {
        a.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
            _ => None,
        })
    };
    let loopback = |a: &Multiaddr| ip(a).is_some_and(|ip| ip.is_loopback());
    let usable: Vec<Multiaddr> =
        addrs.iter().filter(|a| !ip(a).is_some_and(|ip| ip.is_unspecified())).cloned().collect();
    if usable.iter().all(&loopback) {
        return usable;
    }
    usable.into_iter().filter(|a| !loopback(a)).collect()
}

/// Whether an address goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.command(cmd),
                },
                event = self.swarm.select_next_some() => self.event(event),
            }
        }
        tracing::debug!("swarm task stopped");
    }

    fn command(&mut self, cmd: Command) {
        let b = self.swarm.behaviour_mut();
        match cmd {
            Command::Request { peer, request, reply } => {
                let id = b.storage.send_request(&peer, request);
                self.requests.insert(id, (peer, reply));
            }
            Command::Respond { channel, response } => {
                let _ = b.storage.send_response(channel, response);
            }
            Command::SetAddresses { peer, addrs } => {
                if !addrs.is_empty() {
                    b.kad.remove_peer(&peer);
                }
                for addr in addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                    self.swarm.add_peer_address(peer, addr);
                }
            }
            Command::PutRecord { record, reply } => {
                let key = match record.key() {
                    Ok(k) => k,
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dht { what: "put", reason: e.to_string() }));
                        return;
                    }
                };
                let kad_record = kad::Record::new(kad::RecordKey::new(&key), record.encode());
                match b.kad.put_record(kad_record, kad::Quorum::One) {
                    Ok(id) => {
                        self.queries.insert(id, Query::Put(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dht { what: "put", reason: e.to_string() }));
                    }
                }
            }
            Command::GetRecord { kind, publisher, reply } => {
                let key = record::record_key(kind, &publisher);
                let id = b.kad.get_record(kad::RecordKey::new(&key));
                self.queries.insert(id, Query::Get { key, best: None, copies: 0, reply });
            }
            Command::StartProviding { key, reply } => match b.kad.start_providing(kad::RecordKey::new(&key)) {
                Ok(id) => {
                    self.queries.insert(id, Query::Provide(reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Dht { what: "provide", reason: e.to_string() }));
                }
            },
            Command::GetProviders { key, enough, reply } => {
                let id = b.kad.get_providers(kad::RecordKey::new(&key));
                self.queries.insert(id, Query::Providers { found: HashSet::new(), enough, reply });
            }
            Command::Bootstrap { reply } => match b.kad.bootstrap() {
                Ok(id) => {
                    self.queries.insert(id, Query::Bootstrap(reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(NetError::Dht { what: "bootstrap", reason: e.to_string() }));
                }
            },
            Command::RoutingTable { reply } => {
                let peers = b.kad.kbuckets().flat_map(|k| k.iter().map(|e| *e.node.key.preimage()).collect::<Vec<_>>());
                let _ = reply.send(peers.collect());
            }
            Command::Connected { reply } => {
                let _ = reply.send(self.swarm.connected_peers().copied().collect());
            }
            Command::Status { reply } => {
                let routing_table_size = b.kad.kbuckets().map(|k| k.num_entries()).sum();
                let _ = reply.send(NetStatus {
                    peer_id: self.swarm.local_peer_id().to_string(),
                    listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
                    connected_peers: self.swarm.connected_peers().map(|p| p.to_string()).collect(),
                    routing_table_size,
                    reachability: self.reachability.borrow().clone(),
                    relays: self.relays.iter().map(|p| p.to_string()).collect(),
                    connections: self
                        .connections
                        .values()
                        .map(|(p, a, relayed)| ConnectionInfo {
                            peer_id: p.to_string(),
                            address: a.to_string(),
                            relayed: *relayed,
                        })
                        .collect(),
                });
            }
            Command::UseRelay { addr } => {
                // A listener through this relay is already there: its reservation is held or on its way.
                if let Some(relay) = peer_of(&addr).filter(|p| !self.relay_listeners.contains_key(p)) {
                    self.swarm.behaviour_mut().kad.add_address(&relay, addr.clone());
                    if self.swarm.is_connected(&relay) {
                        self.listen_via(addr);
                    } else {
                        let _ = self.swarm.dial(addr.clone());
                        self.pending_relays.insert(relay, addr);
                    }
                }
            }
            Command::Shutdown => {}
        }
    }

    fn listen_via(&mut self, relay: Multiaddr) {
        match self.swarm.listen_on(relay.clone().with(Protocol::P2pCircuit)) {
            Ok(id) => {
                if let Some(old) = peer_of(&relay).and_then(|p| self.relay_listeners.insert(p, id)) {
                    self.swarm.remove_listener(old);
                }
            }
            Err(e) => tracing::warn!(%relay, error = %e, "cannot listen through relay"),
        }
    }

    /// Forgets a relay whose reservation is gone, and the listener through it.
    fn relay_lost(&mut self, relay: PeerId) {
        if let Some(id) = self.relay_listeners.remove(&relay) {
            self.swarm.remove_listener(id);
        }
        if self.relays.remove(&relay) {
            tracing::info!(%relay, "relay reservation lost");
            self.publish_relays();
        }
    }

    /// Publishes the listen addresses (the watch behind [`Network::addresses`]) and keeps the swarm's external
    /// addresses equal to the advertised ones. Kademlia puts our external addresses into the provider records
    /// we announce; a provider record without addresses is only handed out by a holder that has us in its
    /// routing table, so without this most nickname and service lookups in a large network came back empty.
    /// External addresses confirmed by someone else (AutoNAT) are left alone.
    fn publish_addresses(&mut self) {
        let listening: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
        let wanted: HashSet<Multiaddr> = advertised(&listening).into_iter().collect();
        for gone in self.own_external.difference(&wanted).cloned().collect::<Vec<_>>() {
            self.swarm.remove_external_address(&gone);
            self.own_external.remove(&gone);
        }
        for addr in wanted {
            if self.own_external.insert(addr.clone()) {
                self.swarm.add_external_address(addr);
            }
        }
        self.addresses.send_replace(listening);
    }

    fn publish_relays(&self) {
        let mut relays: Vec<PeerId> = self.relays.iter().copied().collect();
        relays.sort();
        self.relays_watch.send_replace(relays);
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, .. })) = &event {
            if let Some(addr) = self.pending_relays.remove(peer_id) {
                self.listen_via(addr);
            }
        }

        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Storage(e)) => self.storage_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.kad_event(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }))
                if info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL) =>
            {
                let kad = &mut self.swarm.behaviour_mut().kad;
                if has_room_for(kad, &peer_id) {
                    for addr in advertised(&info.listen_addrs).into_iter().take(16) {
                        kad.add_address(&peer_id, addr);
                    }
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, connection_id, .. } => {
                tracing::debug!(%peer_id, addr = %endpoint.get_remote_address(), "connected");
                // An inbound circuit's remote address is only `/p2p/<peer>`: it is relayed if our listen address is.
                let relayed = endpoint.is_relayed();
                let addr = match &endpoint {
                    libp2p::core::ConnectedPoint::Listener { local_addr, .. } if relayed => local_addr.clone(),
                    e => e.get_remote_address().clone(),
                };
                self.connections.insert(connection_id, (peer_id, addr, relayed));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "dial failed");
            }
            SwarmEvent::ConnectionClosed { connection_id, peer_id, num_established, .. } => {
                self.connections.remove(&connection_id);
                if num_established == 0
                    && (self.relays.contains(&peer_id) || self.relay_listeners.contains_key(&peer_id))
                {
                    self.relay_lost(peer_id);
                }
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. }
                if self.relay_listeners.values().any(|id| *id == listener_id) =>
            {
                tracing::info!(?reason, "listener through relay closed");
                let relays: Vec<PeerId> =
                    self.relay_listeners.iter().filter(|(_, id)| **id == listener_id).map(|(p, _)| *p).collect();
                for relay in relays {
                    self.relay_lost(relay);
                }
                self.publish_addresses();
            }
            SwarmEvent::NewListenAddr { .. }
            | SwarmEvent::ExpiredListenAddr { .. }
            | SwarmEvent::ListenerClosed { .. } => self.publish_addresses(),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            })) => {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
                if self.relays.insert(relay_peer_id) {
                    self.publish_relays();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(autonat::Event::StatusChanged { new, .. })) => {
                let r = match new {
                    autonat::NatStatus::Public(_) => "public",
                    autonat::NatStatus::Private => "private",
                    autonat::NatStatus::Unknown => "unknown",
                };
                tracing::info!(reachability = r, "AutoNAT");
                self.reachability.send_replace(r.to_string());
            }
            // A relay that stops answering pings is gone (libp2p keeps a connection open after ping failures).
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(e) }))
                if self.relays.contains(&peer) =>
            {
                tracing::info!(relay = %peer, error = %e, "relay stopped answering pings");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(e)) => {
                tracing::info!(peer = %e.remote_peer_id, result = ?e.result.as_ref().map(|_| ()), "hole punching");
            }
            _ => {}
        }
    }

    fn storage_event(&mut self, event: request_response::Event<Request, Response>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    if let Err(e) = self.inbound.try_send(Inbound { peer, request, channel }) {
                        let inbound = match e {
                            mpsc::error::TrySendError::Full(i) | mpsc::error::TrySendError::Closed(i) => i,
                        };
                        let busy = Response::Error(bitdust_core::wire::ErrorCode::Internal, "node busy, retry".into());
                        let _ = self.swarm.behaviour_mut().storage.send_response(inbound.channel, busy);
                    }
                }
                request_response::Message::Response { request_id, response } => {
                    if let Some((_, reply)) = self.requests.remove(&request_id) {
                        let _ = reply.send(Ok(response));
                    }
                }
            },
            request_response::Event::OutboundFailure { request_id, error, peer, .. } => {
                if let Some((_, reply)) = self.requests.remove(&request_id) {
                    let reason = error.to_string();
                    let _ = reply.send(Err(match error {
                        request_response::OutboundFailure::DialFailure => NetError::Unreachable { peer, reason },
                        _ => NetError::Request { peer, reason },
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest { request } => match request {
                kad::InboundRequest::PutRecord { source, record: Some(record), .. } => {
                    self.inbound_record(source, record)
                }
                kad::InboundRequest::AddProvider { record: Some(provider) } => {
                    let _ = self.swarm.behaviour_mut().kad.store_mut().add_provider(provider);
                }
                _ => {}
            },
            kad::Event::OutboundQueryProgressed { id, result, step, stats } => {
                self.query_progressed(id, result, step.last, LookupStats::from(&stats))
            }
            _ => {}
        }
    }

    /// Validates a record a peer asks us to store: signature, key, size, and no rollback.
    fn inbound_record(&mut self, source: PeerId, record: kad::Record) {
        let key = record.key.to_vec();
        let offered = match SignedRecord::decode_verified(&key, &record.value) {
            Ok((r, _)) => r,
            Err(e) => {
                tracing::info!(%source, error = %e, "refused DHT record");
                return;
            }
        };
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let held =
            store.get(&record.key).and_then(|r| SignedRecord::decode_verified(&key, &r.value).ok().map(|(r, _)| r));
        if let Err(e) = record::accept(held.as_ref(), &offered) {
            tracing::info!(%source, error = %e, "refused DHT record");
            return;
        }
        let _ = store.put(record);
    }

    fn query_progressed(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool, stats: LookupStats) {
        let Some(mut query) = self.queries.remove(&id) else {
            return;
        };
        let mut done = last;
        match (&mut query, result) {
            (
                Query::Get { key, best, copies, .. },
                kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found))),
            ) => {
                match SignedRecord::decode_verified(key, &found.record.value) {
                    Ok((r, _)) => {
                        if best.as_ref().is_none_or(|b| r.revision > b.revision) {
                            *best = Some(r);
                        }
                        // Enough copies to pick the newest: do not wait for the slowest peers (a dead peer
                        // costs a whole dial timeout).
                        *copies += 1;
                        if *copies >= GET_COPIES {
                            if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                                q.finish();
                            }
                            done = true;
                        }
                    }
                    Err(e) => tracing::info!(error = %e, "ignored invalid DHT record"),
                }
            }
            (Query::Get { .. }, kad::QueryResult::GetRecord(_)) => done = true,
            (Query::Put(_), kad::QueryResult::PutRecord(r)) => {
                if let Query::Put(reply) = query {
                    let _ = reply.send(r.map(|_| ()).map_err(|e| NetError::Dht { what: "put", reason: e.to_string() }));
                }
                return;
            }
            (Query::Provide(_), kad::QueryResult::StartProviding(r)) => {
                if let Query::Provide(reply) = query {
                    let _ =
                        reply.send(r.map(|_| ()).map_err(|e| NetError::Dht { what: "provide", reason: e.to_string() }));
                }
                return;
            }
            (Query::Providers { found, enough, .. }, kad::QueryResult::GetProviders(r)) => match r {
                Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                    found.extend(providers);
                    if enough.met_by(found) {
                        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            q.finish();
                        }
                        done = true;
                    }
                }
                Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => done = true,
                Err(_) => done = true,
            },
            (Query::Bootstrap(_), kad::QueryResult::Bootstrap(r)) => {
                if !last && r.is_ok() {
                    self.queries.insert(id, query);
                    return;
                }
                if let Query::Bootstrap(reply) = query {
                    let _ = reply
                        .send(r.map(|_| ()).map_err(|e| NetError::Dht { what: "bootstrap", reason: e.to_string() }));
                }
                return;
            }
            _ => {}
        }
        if !done {
            self.queries.insert(id, query);
            return;
        }
        match query {
            Query::Get { best, reply, .. } => {
                let found = best.ok_or(NetError::Dht { what: "get", reason: "no valid record found".into() });
                let _ = reply.send(found.map(|r| (r, stats)));
            }
            Query::Providers { found, reply, .. } => {
                let _ = reply.send(Ok((found, stats)));
            }
            Query::Put(reply) | Query::Provide(reply) | Query::Bootstrap(reply) => {
                let _ = reply.send(Err(NetError::Dht { what: "query", reason: "ended without result".into() }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().expect("test address")).collect()
    }

    #[test]
    fn loopback_is_advertised_only_when_there_is_nothing_else() {
        let all = addrs(&[
            "/ip4/127.0.0.1/udp/4001/quic-v1",
            "/ip4/10.1.0.10/tcp/4001",
            "/ip6/::1/tcp/4001",
            "/ip4/198.51.100.10/tcp/4001/p2p/12D3KooWEx9UhvHT9RhTPppGKfySRibbLGTrfTytDom5rLhJxVUs/p2p-circuit",
            "/ip4/0.0.0.0/tcp/4001",
        ]);
        assert_eq!(advertised(&all), vec![all[1].clone(), all[3].clone()]);
        let devnet = addrs(&["/ip4/127.0.0.1/tcp/4001", "/ip4/0.0.0.0/tcp/4002"]);
        assert_eq!(advertised(&devnet), vec![devnet[0].clone()]);
        assert!(advertised(&[]).is_empty());
    }
}
