//! The swarm task: one actor owning the swarm, with a bounded command inbox, answering each command on its
//! oneshot when libp2p reports the matching request or query id. Its parts: [`dht`] (Kademlia queries and
//! inbound records), [`rpc`] (feature protocols), [`nat`] (relay listeners, our addresses).

mod dht;
mod nat;
mod rpc;

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::kad::store::RecordStore as _;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{
    autonat, identify, identity::Keypair, kad, ping, relay, request_response, Multiaddr, PeerId, StreamProtocol,
};
use tokio::sync::mpsc;
use tracing::Instrument;

use self::dht::Query;
use crate::addresses::{advertised, is_memory, peer_of};
use crate::frame::Frame;
use crate::handle::{Command, Reply};
use crate::swarm::{self, has_room_for, Behaviour, BehaviourEvent, SwarmSpec};
use crate::{
    ConnectionInfo, Inbound, Inbounds, NetConfig, NetError, NetStatus, Network, DEFAULT_IDLE_TIMEOUT, KAD_PROTOCOL,
};

/// Capacity of the command channel into the swarm task.
const COMMAND_CAPACITY: usize = 1024;

/// Builds the swarm, starts listening, dials the bootstrap nodes and spawns the swarm task (see
/// [`Network::start`]).
pub(crate) async fn spawn(keypair: Keypair, config: NetConfig) -> Result<(Network, Inbounds), NetError> {
    let local_peer_id = keypair.public().to_peer_id();
    let memory = !config.listen.is_empty() && config.listen.iter().all(is_memory);
    let mut swarm = swarm::build(SwarmSpec {
        keypair,
        memory,
        relay_limits: config.relay_server,
        protocols: &config.protocols,
        idle_timeout: config.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT),
        record_ttl: config.record_ttl.unwrap_or(crate::DEFAULT_RECORD_TTL),
        limits: config.limits,
    })?;
    for addr in &config.listen {
        swarm.listen_on(addr.clone()).map_err(|e| NetError::Listen { addr: addr.clone(), reason: e.to_string() })?;
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
    let mut protocols = Vec::new();
    let mut receivers = HashMap::new();
    for spec in &config.protocols {
        let (tx, rx) = mpsc::channel(spec.inbound_capacity.max(1));
        protocols.push((spec.name.clone(), tx, spec.busy.clone()));
        receivers.insert(spec.name.clone(), rx);
    }
    let (addresses_tx, addresses) = tokio::sync::watch::channel(listening);
    let (reachability_tx, reachability) = tokio::sync::watch::channel("unknown".to_string());
    let (relays_tx, relays) = tokio::sync::watch::channel(Vec::new());
    let mut driver = Driver {
        swarm,
        protocols,
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
        priority: HashMap::new(),
    };
    driver.publish_addresses();
    // The span is attached to the task (entering it inside would leak it into other tasks at each await).
    tokio::spawn(driver.run(command_rx).instrument(tracing::info_span!("swarm", peer = %local_peer_id)));
    Ok((Network { commands, local_peer_id, addresses, reachability, relays }, Inbounds(receivers)))
}

pub(crate) struct Driver {
    swarm: libp2p::Swarm<Behaviour>,
    /// Per registered protocol (by slot, see [`crate::swarm::Rpc`]): its name, where its inbound requests go,
    /// and the answer when that queue is full.
    protocols: Vec<(StreamProtocol, mpsc::Sender<Inbound>, Frame)>,
    /// Requests in flight, by protocol slot and request id.
    requests: HashMap<(usize, request_response::OutboundRequestId), (PeerId, Reply<Bytes>)>,
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
    /// Priority peers of the DHT store, by the reason given to [`Network::set_priority_peers`].
    priority: HashMap<&'static str, HashSet<PeerId>>,
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
            Command::Request { peer, protocol, request, reply } => {
                let slot = self.protocols.iter().position(|(name, ..)| *name == protocol);
                match slot.and_then(|i| Some((i, b.rpc.slot(i)?))) {
                    Some((i, rpc)) => {
                        let id = rpc.send_request(&peer, request);
                        self.requests.insert((i, id), (peer, reply));
                    }
                    None => {
                        let reason = format!("protocol {protocol} is not registered");
                        let _ = reply.send(Err(NetError::Request { peer, reason }));
                    }
                }
            }
            Command::Respond { slot, channel, response } => {
                if let Some(rpc) = b.rpc.slot(slot) {
                    let _ = rpc.send_response(channel, response);
                }
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
                // Never roll back what this node holds (a supplier republishing a customer's older record).
                let rkey = kad::RecordKey::new(&key);
                let held = b.kad.store_mut().get(&rkey).and_then(|r| {
                    bitdust_core::record::SignedRecord::decode_verified(&key, &r.value).ok().map(|(r, _)| r)
                });
                if let Err(e) = bitdust_core::record::accept(held.as_ref(), &record) {
                    let _ = reply.send(Err(NetError::Dht { what: "put", reason: e.to_string() }));
                    return;
                }
                let kad_record = kad::Record::new(rkey, record.encode());
                match b.kad.put_record(kad_record, kad::Quorum::One) {
                    Ok(id) => {
                        self.queries.insert(id, Query::Put(reply));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NetError::Dht { what: "put", reason: e.to_string() }));
                    }
                }
            }
            Command::GetRecord { key, reply } => {
                let id = b.kad.get_record(kad::RecordKey::new(&key));
                self.queries.insert(id, Query::Get { key, copies: Vec::new(), reply });
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
                let store = b.kad.store_mut();
                let (dht_records, dht_provided_keys, dht_refused) =
                    (store.len(), store.provided_keys(), store.refused());
                let _ = reply.send(NetStatus {
                    peer_id: self.swarm.local_peer_id().to_string(),
                    listen_addrs: self.swarm.listeners().map(|a| a.to_string()).collect(),
                    connected_peers: self.swarm.connected_peers().map(|p| p.to_string()).collect(),
                    routing_table_size,
                    dht_records,
                    dht_provided_keys,
                    dht_refused,
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
            Command::SetPriority { tag, peers } => {
                self.priority.insert(tag, peers);
                let all = self.priority.values().flatten().copied().collect();
                self.swarm.behaviour_mut().kad.store_mut().set_priority(all);
            }
            Command::StoredRecord { key, reply } => {
                let held = b.kad.store_mut().get(&kad::RecordKey::new(&key)).and_then(|r| {
                    bitdust_core::record::SignedRecord::decode_verified(&key, &r.value).ok().map(|(r, _)| r)
                });
                let _ = reply.send(held);
            }
            Command::Shutdown => {}
        }
    }

    fn event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        if let SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, .. })) = &event {
            if let Some(addr) = self.pending_relays.remove(peer_id) {
                self.listen_via(addr);
            }
        }

        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Rpc(e)) => {
                let (slot, e) = e.into_slot();
                self.rpc_event(slot, e)
            }
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
}
