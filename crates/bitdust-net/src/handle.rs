//! The handle to the running swarm: every operation is a command on a bounded channel into the swarm task,
//! answered on a oneshot.

use std::collections::HashSet;

use bitdust_core::record::{RecordKind, SignedRecord};
use bytes::Bytes;
use libp2p::request_response::ResponseChannel;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

use crate::frame::Frame;
use libp2p::identity::Keypair;

use crate::{Inbounds, LookupStats, NetConfig, NetError, NetStatus, Responder};

/// Where a command's answer goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, NetError>>;

pub(crate) enum Command {
    Request { peer: PeerId, protocol: StreamProtocol, request: Frame, reply: Reply<Bytes> },
    Respond { slot: usize, channel: ResponseChannel<Frame>, response: Frame },
    SetAddresses { peer: PeerId, addrs: Vec<Multiaddr> },
    PutRecord { record: SignedRecord, reply: Reply<()> },
    GetRecord { key: Vec<u8>, reply: Reply<(SignedRecord, LookupStats)> },
    StartProviding { key: Vec<u8>, reply: Reply<()> },
    GetProviders { key: Vec<u8>, enough: Enough, reply: Reply<(HashSet<PeerId>, LookupStats)> },
    RoutingTable { reply: oneshot::Sender<Vec<PeerId>> },
    Connected { reply: oneshot::Sender<HashSet<PeerId>> },
    Bootstrap { reply: Reply<()> },
    Status { reply: oneshot::Sender<NetStatus> },
    UseRelay { addr: Multiaddr },
    SetPriority { tag: &'static str, peers: HashSet<PeerId> },
    StoredRecord { key: Vec<u8>, reply: oneshot::Sender<Option<SignedRecord>> },
    Shutdown,
}

/// A handle to the running swarm. Clone it freely.
#[derive(Clone)]
pub struct Network {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) local_peer_id: PeerId,
    pub(crate) addresses: tokio::sync::watch::Receiver<Vec<Multiaddr>>,
    pub(crate) reachability: tokio::sync::watch::Receiver<String>,
    pub(crate) relays: tokio::sync::watch::Receiver<Vec<PeerId>>,
}

impl Network {
    /// Builds the swarm (one builder for every transport: TCP + QUIC, or memory for `/memory/` listen addresses),
    /// starts listening, dials the bootstrap nodes and relays, and spawns the swarm task. Returns once every
    /// listen address is bound, with the inbound queue of each registered protocol.
    ///
    /// # Errors
    /// [`NetError::Transport`] (also for more than [`crate::MAX_PROTOCOLS`] protocols) or [`NetError::Listen`].
    pub async fn start(keypair: Keypair, config: NetConfig) -> Result<(Self, Inbounds), NetError> {
        crate::driver::spawn(keypair, config).await
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    pub(crate) async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Sends a request on a registered `protocol` and waits for the response (one message, within the
    /// protocol's response limit).
    ///
    /// # Errors
    /// [`NetError::Unreachable`] if no address of `peer` can be dialed; [`NetError::Request`] if it fails on
    /// the way (timeout, connection closed, protocol not supported by the peer); [`NetError::Stopped`].
    pub async fn request(&self, peer: PeerId, protocol: StreamProtocol, request: Frame) -> Result<Bytes, NetError> {
        self.call(|reply| Command::Request { peer, protocol, request, reply }).await?
    }

    /// Sets the peers this node has contracts with, for one reason (`tag`, e.g. `"customers"`; the set replaces
    /// the previous one of that tag): their DHT records are stored here whatever the store's pressure
    /// ([`crate::DhtLimits`]).
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn set_priority_peers(&self, tag: &'static str, peers: HashSet<PeerId>) -> Result<(), NetError> {
        self.commands.send(Command::SetPriority { tag, peers }).await.map_err(|_| NetError::Stopped)
    }

    /// The valid record this node's own DHT store holds under `key`, if any (no network lookup).
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn stored_record(&self, key: Vec<u8>) -> Result<Option<SignedRecord>, NetError> {
        self.call(|reply| Command::StoredRecord { key, reply }).await
    }

    /// Answers an inbound request.
    ///
    /// # Errors
    /// [`NetError::Stopped`].
    pub async fn respond(&self, responder: Responder, response: Frame) -> Result<(), NetError> {
        let Responder { slot, channel } = responder;
        self.commands.send(Command::Respond { slot, channel, response }).await.map_err(|_| NetError::Stopped)
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
        let key = bitdust_core::record::record_key(kind, &publisher);
        self.call(|reply| Command::GetRecord { key, reply }).await?
    }

    /// Finds the claim of `nickname` ([`bitdust_core::record::RecordKind::Nickname`]): among the valid copies, the
    /// publisher most agree on ([`bitdust_core::record::pick`]). Returns the claim and its owner.
    ///
    /// # Errors
    /// [`NetError::Dht`] if no valid claim is found.
    pub async fn get_nickname(&self, nickname: &str) -> Result<(SignedRecord, PeerId), NetError> {
        let (claim, owner, _) = self.get_nickname_with_stats(nickname).await?;
        Ok((claim, owner))
    }

    /// [`Network::get_nickname`], with what the lookup cost.
    ///
    /// # Errors
    /// [`NetError::Dht`] if no valid claim is found.
    pub async fn get_nickname_with_stats(
        &self,
        nickname: &str,
    ) -> Result<(SignedRecord, PeerId, LookupStats), NetError> {
        let key = bitdust_core::record::nickname_key(nickname);
        let (claim, stats) = self.call(|reply| Command::GetRecord { key, reply }).await??;
        let owner = bitdust_core::keys::peer_id_from_bytes(&claim.publisher)
            .map_err(|e| NetError::Dht { what: "get", reason: e.to_string() })?;
        Ok((claim, owner, stats))
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

    /// Whether the swarm task has stopped ([`Network::shutdown`], or it ended): every command fails then.
    pub fn is_stopped(&self) -> bool {
        self.commands.is_closed()
    }

    /// Stops the swarm task.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}

/// When a provider lookup may end early: once `count` providers outside `unwanted` are known.
#[derive(Debug)]
pub(crate) struct Enough {
    count: usize,
    unwanted: HashSet<PeerId>,
}

impl Enough {
    /// Never early: the whole query.
    pub(crate) fn all() -> Self {
        Self { count: usize::MAX, unwanted: HashSet::new() }
    }

    pub(crate) fn met_by(&self, found: &HashSet<PeerId>) -> bool {
        found.difference(&self.unwanted).count() >= self.count
    }
}
