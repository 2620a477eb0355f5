//! The node context: keys, identity, the network handle, the database, what the node knows of its peers'
//! reachability, the automata registry, jobs and the event log. Feature wings get an `Arc<Node>` when they
//! start ([`crate::Service`]) and reach everything through its methods; none of its fields are theirs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bitdust_api::{Connection, NodeStatus, Reachability};
use bitdust_core::identity::SignedIdentity;
use bitdust_core::keys::NodeKeys;
use bitdust_core::record::{self, RecordKind, SignedRecord};
use bitdust_core::PeerId;
use bitdust_net::{Frame, Inbounds, NetConfig, Network, ProtocolSpec};
use bitdust_store::NodeDb;
use bytes::Bytes;
use libp2p::{Multiaddr, StreamProtocol};

use crate::automata::Registry;
use crate::events::Events;
use crate::home::{unix_now, Config, Home};
use crate::jobs::Jobs;

/// Retry delay of an announcement that failed with the DHT empty (a node starting alone; costs nothing on the
/// network). A failure with peers (none stored the record) doubles the delay each time up to
/// [`ANNOUNCE_RETRY_MAX`], so that an overloaded network is not asked again and again. Once an announcement
/// succeeds, the next comes after `Config::announce_interval_secs`.
const ANNOUNCE_RETRY: Duration = Duration::from_millis(500);
/// Longest retry delay of a failed announcement.
const ANNOUNCE_RETRY_MAX: Duration = Duration::from_secs(60);
/// How long a peer found unreachable is not dialed again by [`Node::request`].
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// Overrides given on the command line to `bitdust daemon`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Replace the configured listen addresses.
    pub listen: Vec<String>,
    /// Add bootstrap nodes.
    pub bootstrap: Vec<String>,
    /// Replace the API port.
    pub api_port: Option<u16>,
    /// Add relays to reserve a slot on.
    pub relays: Vec<String>,
    /// Serve as a relay.
    pub relay_server: bool,
    /// Do not publish anything in the DHT (used while recovering an identity on a new device, so that the
    /// placeholder identity never competes with the real one).
    pub quiet: bool,
}

/// The node context.
pub struct Node {
    /// Whether to publish records (off while recovering an identity on a new device).
    publish: bool,
    keys: NodeKeys,
    home: Home,
    config: Config,
    net: Network,
    db: NodeDb,
    identity: Mutex<SignedIdentity>,
    announced: tokio::sync::watch::Sender<bool>,
    /// DHT keys announced as provided by this node with each announcement (nickname, services).
    provided: Mutex<Vec<Vec<u8>>>,
    /// Every automaton instance, for the API.
    registry: Registry,
    /// Long-running operations.
    jobs: Jobs,
    /// The event log.
    events: Events,
    /// The addresses each peer's identity gave at its last lookup (to tell a peer that moved from one that is down).
    looked_up: Mutex<HashMap<PeerId, Vec<String>>>,
    /// Peers found unreachable (after a fresh lookup), and when: not dialed again for [`UNREACHABLE_FOR`].
    unreachable: Mutex<HashMap<PeerId, std::time::Instant>>,
    /// The vault, once the wing that provides it has started (weak: that wing holds the node).
    vault: Mutex<Option<std::sync::Weak<dyn crate::Vault>>>,
}

impl Node {
    /// Starts a node from its home: the network (carrying `protocols`, the feature wings'), identity address
    /// updates and the relay connection. Returns the node and the inbound queue of each protocol. Wings are
    /// started on it by [`crate::Daemon::start`], which then calls [`Node::start_announcing`] (so that the first
    /// announcement already carries the wings' provider keys).
    ///
    /// # Errors
    /// If the home is not initialised, the config is invalid, or the network cannot start.
    pub async fn start(
        home: Home,
        options: StartOptions,
        protocols: Vec<ProtocolSpec>,
    ) -> Result<(Arc<Self>, Inbounds)> {
        let keys = home.keys()?;
        let mut config = home.config()?;
        if !options.listen.is_empty() {
            config.listen = options.listen.clone();
        }
        config.bootstrap.extend(options.bootstrap.iter().cloned());
        if let Some(p) = options.api_port {
            config.api_port = p;
        }
        config.nat.relays.extend(options.relays.iter().cloned());
        config.nat.relay_server |= options.relay_server;
        let parse = |list: &[String], what: &str| -> Result<Vec<Multiaddr>> {
            list.iter()
                .map(|a| a.parse::<Multiaddr>().with_context(|| format!("invalid {what} address {a:?}")))
                .collect()
        };
        let listen = parse(&config.listen, "listen")?;
        let bootstrap = parse(&config.bootstrap, "bootstrap")?;
        for b in &bootstrap {
            if bitdust_net::peer_of(b).is_none() {
                anyhow::bail!("bootstrap address {b} must end with /p2p/<peer id>");
            }
        }
        let db = NodeDb::open(&home.path("node.redb"))?;
        let relays = parse(&config.nat.relays, "relay")?;
        let net_config = NetConfig {
            listen,
            bootstrap,
            relay_server: config.nat.relay_server.then_some(config.nat.relay_limits),
            relays,
            idle_timeout: Some(Duration::from_secs(config.idle_timeout_secs)),
            protocols,
            record_ttl: Some(Duration::from_secs(config.record_ttl_secs.max(1))),
            limits: config.limits,
        };
        let (net, inbounds) = Network::start(keys.keypair(), net_config).await?;
        let addrs = identity_addresses(&net.addresses().borrow(), &keys.peer_id());
        let mut identity = home.identity()?;
        if identity.identity.addresses != addrs {
            identity = identity.with_addresses(&keys, addrs, unix_now());
            home.save_identity(&identity)?;
        }
        let mut provided = Vec::new();
        if config.nat.relay_server {
            provided.push(record::RELAYS_SERVICE_KEY.to_vec());
        }
        let events = Events::default();
        let node = Arc::new(Self {
            publish: !options.quiet,
            keys,
            home,
            config,
            net,
            db,
            identity: Mutex::new(identity),
            announced: tokio::sync::watch::Sender::new(false),
            provided: Mutex::new(provided),
            registry: Registry::new(events.clone()),
            jobs: Jobs::new(events.clone()),
            events,
            looked_up: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
            vault: Mutex::new(None),
        });
        tokio::spawn(follow_addresses(Arc::downgrade(&node), !options.quiet));
        tokio::spawn(crate::relay::run(Arc::downgrade(&node)));
        Ok((node, inbounds))
    }

    /// Makes `vault` this node's [`crate::Vault`] (the storage wing does, when it starts).
    pub fn set_vault(&self, vault: std::sync::Weak<dyn crate::Vault>) {
        if let Ok(mut v) = self.vault.lock() {
            *v = Some(vault);
        }
    }

    /// The vault, if a wing provides one and it runs.
    pub fn vault(&self) -> Option<Arc<dyn crate::Vault>> {
        self.vault.lock().ok().and_then(|v| v.as_ref().and_then(std::sync::Weak::upgrade))
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.keys.peer_id()
    }

    /// The effective config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The home.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The network handle.
    pub fn network(&self) -> &Network {
        &self.net
    }

    /// Starts the announce loop: a DHT bootstrap, then the identity record and every provider key (see
    /// [`Node::provide`]) at once and every `announce_interval_secs`. Called once the wings have started.
    pub fn start_announcing(self: &Arc<Self>) {
        tokio::spawn(announce_loop(Arc::downgrade(self), self.publish));
    }

    /// The node's keys.
    pub fn keys(&self) -> &NodeKeys {
        &self.keys
    }

    /// The node database (each wing keeps its own values and tables in it).
    pub fn db(&self) -> &NodeDb {
        &self.db
    }

    /// The automata registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The jobs.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// The event log.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Adds a DHT key this node announces itself as a provider of (a wing's service), from the next
    /// announcement on (the announce loop runs at start and every `announce_interval_secs`).
    pub fn provide(&self, key: Vec<u8>) {
        if let Ok(mut p) = self.provided.lock() {
            if !p.contains(&key) {
                p.push(key);
            }
        }
    }

    /// Replaces our identity with `found` (our own, read from the DHT on a new device) at a higher
    /// revision, keeping the current addresses, and saves it.
    ///
    /// # Errors
    /// If `found` is not ours or cannot be saved.
    pub fn adopt_identity(&self, found: &SignedIdentity) -> Result<SignedIdentity> {
        if found.verify()? != self.peer_id() {
            anyhow::bail!("that identity belongs to another peer");
        }
        let current = self.identity();
        let mut ident = found.identity.clone();
        ident.revision = ident.revision.max(current.identity.revision) + 1;
        ident.addresses = current.identity.addresses.clone();
        ident.updated_unix = unix_now();
        let signed = SignedIdentity::sign(&self.keys, ident);
        self.home.save_identity(&signed)?;
        if let Ok(mut id) = self.identity.lock() {
            *id = signed.clone();
        }
        Ok(signed)
    }

    /// The current signed identity.
    pub fn identity(&self) -> SignedIdentity {
        self.identity.lock().map(|i| i.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Listen addresses with `/p2p/<peer id>`.
    pub fn addresses(&self) -> Vec<String> {
        self.identity().identity.addresses
    }

    /// Whether the identity has been published to the DHT.
    pub fn is_announced(&self) -> bool {
        *self.announced.borrow()
    }

    /// Waits until the identity has been published to the DHT.
    pub async fn wait_announced(&self) {
        let mut rx = self.announced.subscribe();
        let _ = rx.wait_for(|a| *a).await;
    }

    /// Stops the network, and ends the event log's waiters (long polls, WebSockets).
    pub async fn shutdown(&self) {
        self.events.close();
        self.net.shutdown().await;
    }

    /// The runtime's status report.
    ///
    /// # Errors
    /// If the network has stopped.
    pub async fn status(&self) -> Result<NodeStatus> {
        let net = self.net.status().await?;
        let id = self.identity();
        let reachability = match net.reachability.as_str() {
            "public" => Reachability::Public,
            "private" => Reachability::Private,
            _ => Reachability::Unknown,
        };
        Ok(NodeStatus {
            peer_id: net.peer_id,
            global_id: id.identity.global_id(),
            nickname: id.identity.nickname.clone(),
            identity_revision: id.identity.revision,
            listen_addrs: id.identity.addresses.clone(),
            connected_peers: net.connected_peers.len(),
            routing_table_size: net.routing_table_size,
            announced: self.is_announced(),
            reachability,
            relays: net.relays,
            relay_server: self.config.nat.relay_server,
            connections: net
                .connections
                .into_iter()
                .map(|c| Connection { peer_id: c.peer_id, address: c.address, relayed: c.relayed })
                .collect(),
        })
    }

    /// Publishes the identity record, the claim of our nickname (signed again with the time, so it stays alive:
    /// [`record::NICKNAME_CLAIM_SECS`]) and the provider records (the services wings and the relay role added with
    /// [`Node::provide`]) to the DHT once. The announce loop does this every `announce_interval_secs` (10 minutes),
    /// so records reach the nodes that joined since (the closest nodes to a key change as the network grows).
    ///
    /// # Errors
    /// If no peer stored a record. A nickname claimed by another identity is logged, not an error (the node keeps
    /// working under its global id).
    pub async fn announce(&self) -> Result<()> {
        let id = self.identity();
        let now = unix_now();
        let rec = SignedRecord::sign(&self.keys, RecordKind::Identity, id.identity.revision, now, id.encode());
        self.net.put_record(rec).await?;
        let claim = SignedRecord::nickname_claim(&self.keys, &id.identity.nickname, id.identity.revision, now)?;
        if let Err(e) = self.net.put_record(claim).await {
            tracing::warn!(nickname = %id.identity.nickname, error = %e, "nickname not claimed");
        }
        let provided = self.provided.lock().map(|p| p.clone()).unwrap_or_default();
        for key in provided {
            self.net.start_providing(key).await?;
        }
        Ok(())
    }

    /// Re-signs the identity with `addresses` (next revision) if they changed, saves and publishes it.
    async fn update_addresses(&self, addresses: Vec<String>, publish: bool) -> Result<()> {
        let current = self.identity();
        if current.identity.addresses == addresses {
            return Ok(());
        }
        let next = current.with_addresses(&self.keys, addresses, unix_now());
        self.home.save_identity(&next)?;
        if let Ok(mut id) = self.identity.lock() {
            *id = next.clone();
        }
        if publish {
            let rec =
                SignedRecord::sign(&self.keys, RecordKind::Identity, next.identity.revision, unix_now(), next.encode());
            self.net.put_record(rec).await?;
            tracing::info!(revision = next.identity.revision, addresses = ?next.identity.addresses, "identity published");
        }
        Ok(())
    }

    /// Sends a request on a wing's `protocol` to `peer`. If no known address of `peer` answers, looks its signed identity up
    /// in the DHT and, if it gives other addresses than last time (the peer moved, or now listens through another
    /// relay), tries once more; a peer that is simply down is not dialed twice.
    ///
    /// # Errors
    /// The network's error for the last attempt.
    /// A peer that stays unreachable after that is not dialed again for [`UNREACHABLE_FOR`] (a dead peer costs
    /// a dial timeout; a restore would otherwise pay it for every block).
    pub async fn request(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        request: Frame,
    ) -> Result<Bytes, bitdust_net::NetError> {
        self.request_with(peer, protocol, request, true).await
    }

    /// [`Node::request`] that dials even a peer found unreachable a moment ago: heartbeats, which decide when a
    /// supplier is back.
    ///
    /// # Errors
    /// The network's error for the last attempt.
    pub async fn probe(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        request: Frame,
    ) -> Result<Bytes, bitdust_net::NetError> {
        self.request_with(peer, protocol, request, false).await
    }

    async fn request_with(
        &self,
        peer: PeerId,
        protocol: &StreamProtocol,
        request: Frame,
        skip_if_down: bool,
    ) -> Result<Bytes, bitdust_net::NetError> {
        let recently_down = self.unreachable.lock().ok().and_then(|m| m.get(&peer).copied());
        if skip_if_down && recently_down.is_some_and(|t| t.elapsed() < UNREACHABLE_FOR) {
            return Err(bitdust_net::NetError::Unreachable { peer, reason: "unreachable a moment ago".into() });
        }
        let result = match self.net.request(peer, protocol.clone(), request.clone()).await {
            Err(e @ bitdust_net::NetError::Unreachable { .. }) => {
                let before = self.looked_up.lock().ok().and_then(|m| m.get(&peer).cloned());
                match self.lookup_identity(peer).await {
                    Ok(id) if before.as_ref() != Some(&id.identity.addresses) => {
                        self.net.request(peer, protocol.clone(), request).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        };
        if let Ok(mut m) = self.unreachable.lock() {
            m.retain(|_, t| t.elapsed() < UNREACHABLE_FOR);
            if matches!(result, Err(bitdust_net::NetError::Unreachable { .. })) {
                m.insert(peer, std::time::Instant::now());
            } else {
                m.remove(&peer);
            }
        }
        result
    }

    /// Looks up a peer's identity in the DHT, verifies it and teaches the swarm its addresses.
    ///
    /// # Errors
    /// If no valid identity record is found.
    pub async fn lookup_identity(&self, peer: PeerId) -> Result<SignedIdentity> {
        let rec =
            self.net.get_record(RecordKind::Identity, peer).await.with_context(|| format!("identity of {peer}"))?;
        let id = SignedIdentity::decode_verified(&rec.payload).with_context(|| format!("identity of {peer}"))?;
        if id.identity.peer()? != peer {
            anyhow::bail!("identity record of {peer} names another peer");
        }
        tracing::debug!(%peer, revision = id.identity.revision, addresses = ?id.identity.addresses, "identity looked up");
        let addrs: Vec<Multiaddr> = id.identity.addresses.iter().filter_map(|a| a.parse().ok()).collect();
        self.net.set_addresses(peer, bitdust_net::advertised(&addrs)).await?;
        if let Ok(mut m) = self.looked_up.lock() {
            m.insert(peer, id.identity.addresses.clone());
        }
        Ok(id)
    }
}

async fn announce_loop(node: std::sync::Weak<Node>, publish: bool) {
    let mut retry = ANNOUNCE_RETRY;
    loop {
        let Some(n) = node.upgrade() else { return };
        let bootstrapped = n.net.bootstrap().await.is_ok();
        let result = if publish {
            n.announce().await
        } else if bootstrapped {
            Ok(())
        } else {
            Err(anyhow::anyhow!("no peers"))
        };
        let pause = match result {
            Ok(()) => {
                n.announced.send_replace(true);
                retry = ANNOUNCE_RETRY;
                // published again before the records expire in other nodes' stores
                Duration::from_secs(n.config.announce_interval_secs.min(n.config.record_ttl_secs / 2).max(1))
            }
            Err(e) if !bootstrapped => {
                tracing::debug!(error = %format!("{e:#}"), "announce failed (no peers yet), will retry");
                ANNOUNCE_RETRY
            }
            Err(e) => {
                let retry_secs = retry.as_secs_f64();
                tracing::debug!(error = %format!("{e:#}"), retry_secs, "announce failed, will retry");
                let pause = retry;
                retry = (retry * 2).min(ANNOUNCE_RETRY_MAX);
                pause
            }
        };
        drop(n);
        tokio::time::sleep(pause).await;
    }
}

/// The addresses our identity advertises for the swarm's listen addresses: [`bitdust_net::advertised`], each
/// ending in `/p2p/<me>`.
fn identity_addresses(listening: &[Multiaddr], me: &PeerId) -> Vec<String> {
    bitdust_net::advertised(listening).iter().map(|a| with_peer(&a.to_string(), me)).collect()
}

/// `addr` ending in `/p2p/<me>` (relayed listen addresses already do).
fn with_peer(addr: &str, me: &PeerId) -> String {
    let suffix = format!("/p2p/{me}");
    if addr.ends_with(&suffix) {
        addr.to_string()
    } else {
        format!("{addr}{suffix}")
    }
}

/// Keeps the identity's addresses equal to what the swarm listens on (relayed addresses included).
async fn follow_addresses(node: std::sync::Weak<Node>, publish: bool) {
    let Some(mut rx) = node.upgrade().map(|n| n.net.addresses()) else { return };
    while rx.changed().await.is_ok() {
        let Some(n) = node.upgrade() else { return };
        let addrs = identity_addresses(&rx.borrow_and_update(), &n.peer_id());
        if let Err(e) = n.update_addresses(addrs, publish).await {
            tracing::debug!(error = %format!("{e:#}"), "identity address update not published yet");
        }
    }
}
