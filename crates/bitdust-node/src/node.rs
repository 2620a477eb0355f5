//! A running node: the network, the supplier service, the customer service and the jobs the API watches.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bitdust_core::identity::SignedIdentity;
use bitdust_core::keys::NodeKeys;
use bitdust_core::record::{self, RecordKind, SignedRecord};
use bitdust_core::wire::{ErrorCode, Request, Response};
use bitdust_core::{catalog::SealedCatalog, PeerId};
use bitdust_net::{Inbound, NetConfig, Network};
use bitdust_store::{FragmentStore, NodeDb};
use libp2p::Multiaddr;
use serde::Serialize;
use tokio::sync::Mutex as AsyncMutex;

use crate::home::{unix_now, Config, Home};

/// Retry delay of an announcement that failed with the DHT empty (a node starting alone; costs nothing on the
/// network). A failure with peers (none stored the record) doubles the delay each time up to
/// [`ANNOUNCE_RETRY_MAX`], so that an overloaded network is not asked again and again. Once an announcement
/// succeeds, the next comes after `Config::announce_interval_secs`.
const ANNOUNCE_RETRY: Duration = Duration::from_millis(500);
/// Longest retry delay of a failed announcement.
const ANNOUNCE_RETRY_MAX: Duration = Duration::from_secs(60);
/// Most inbound requests handled at once (bounds memory: each may hold a 4 MiB fragment).
const INBOUND_CONCURRENCY: usize = 32;

/// How long a peer found unreachable is not dialed again by [`Node::request`].
pub const UNREACHABLE_FOR: Duration = Duration::from_secs(5);

/// Overrides given on the command line to `bitdust daemon`.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Replace the configured listen addresses.
    pub listen: Vec<String>,
    /// Add bootstrap nodes.
    pub bootstrap: Vec<String>,
    /// Turn the supplier role on with this donated space.
    pub donate_bytes: Option<u64>,
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

/// A long-running operation the API reports on.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Id.
    pub id: u64,
    /// `backup` or `restore`.
    pub kind: String,
    /// What it works on.
    pub target: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Bytes processed so far.
    pub done_bytes: u64,
    /// Bytes in total (0 until known).
    pub total_bytes: u64,
    /// Result when done.
    pub result: Option<serde_json::Value>,
    /// Error when failed.
    pub error: Option<String>,
}

/// Progress reporting handle for a job.
#[derive(Clone)]
pub struct Progress {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl Progress {
    /// A detached progress counter (for in-process use).
    pub fn new() -> Self {
        Self { done: Arc::new(AtomicU64::new(0)), total: Arc::new(AtomicU64::new(0)) }
    }
    /// Sets the total.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    /// Adds processed bytes.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
    /// (done, total).
    pub fn get(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// What `status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Peer id.
    pub peer_id: String,
    /// `nickname@short`.
    pub global_id: String,
    /// Nickname.
    pub nickname: String,
    /// Identity revision.
    pub identity_revision: u64,
    /// Listen addresses (with `/p2p/`).
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub connected_peers: usize,
    /// Routing table size.
    pub routing_table_size: usize,
    /// Whether the identity record is in the DHT.
    pub announced: bool,
    /// Supplier role on.
    pub supplier: bool,
    /// Donated bytes.
    pub donated_bytes: u64,
    /// Bytes stored for customers.
    pub stored_bytes: u64,
    /// Customers served.
    pub customers: usize,
    /// Suppliers hired / wanted.
    pub suppliers_hired: usize,
    /// Suppliers wanted (n).
    pub suppliers_wanted: u16,
    /// Backups in the catalog.
    pub backups: usize,
    /// Catalog revision.
    pub catalog_revision: u64,
    /// `public`, `private` or `unknown` (AutoNAT).
    pub reachability: String,
    /// Relays holding a reservation for us.
    pub relays: Vec<String>,
    /// Whether this node serves as a relay.
    pub relay_server: bool,
    /// Open connections, direct or relayed.
    pub connections: Vec<bitdust_net::ConnectionInfo>,
}

/// The node.
pub struct Node {
    pub(crate) keys: NodeKeys,
    pub(crate) home: Home,
    pub(crate) config: Config,
    pub(crate) net: Network,
    pub(crate) db: NodeDb,
    pub(crate) store: Option<Arc<FragmentStore>>,
    identity: Mutex<SignedIdentity>,
    announced: tokio::sync::watch::Sender<bool>,
    jobs: Mutex<BTreeMap<u64, (Job, Progress)>>,
    /// Bumped each time a job ends (what [`Node::wait_job`] waits on).
    jobs_ended: tokio::sync::watch::Sender<u64>,
    next_job: AtomicU64,
    /// Serialises catalog changes and supplier changes.
    pub(crate) customer_lock: AsyncMutex<()>,
    /// Serialises rebuild-queue read-modify-writes.
    pub(crate) queue_lock: Mutex<()>,
    /// Every automaton instance, for the API.
    pub(crate) registry: crate::maintenance::Registry,
    /// Positions whose supplier is offline, refused or fired (maintained by the maintenance actor).
    pub(crate) down_positions: Mutex<Vec<u16>>,
    /// The addresses each peer's identity gave at its last lookup (to tell a peer that moved from one that is down).
    looked_up: Mutex<HashMap<PeerId, Vec<String>>>,
    /// Peers found unreachable (after a fresh lookup), and when: not dialed again for [`UNREACHABLE_FOR`].
    unreachable: Mutex<HashMap<PeerId, std::time::Instant>>,
    /// Inbox of the maintenance actor.
    pub(crate) maintenance: tokio::sync::mpsc::Sender<crate::maintenance::Command>,
}

impl Node {
    /// Starts a node from its home: network, supplier service (if enabled) and DHT announcements.
    ///
    /// # Errors
    /// If the home is not initialised, the config is invalid, or the network cannot start.
    pub async fn start(home: Home, options: StartOptions) -> Result<Arc<Self>> {
        let keys = home.keys()?;
        let mut config = home.config()?;
        if !options.listen.is_empty() {
            config.listen = options.listen.clone();
        }
        config.bootstrap.extend(options.bootstrap.iter().cloned());
        if let Some(d) = options.donate_bytes {
            config.supplier.enabled = true;
            config.supplier.donated_bytes = d;
        }
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
        let store = if config.supplier.enabled {
            let path = home.path("store");
            let donated = config.supplier.donated_bytes;
            Some(Arc::new(tokio::task::spawn_blocking(move || FragmentStore::open(&path, donated)).await??))
        } else {
            None
        };
        let db = NodeDb::open(&home.path("node.redb"))?;
        let relays = parse(&config.nat.relays, "relay")?;
        let net_config = NetConfig {
            listen,
            bootstrap,
            relay_server: config.nat.relay_server.then_some(config.nat.relay_limits),
            relays,
            idle_timeout: Some(Duration::from_secs(config.idle_timeout_secs)),
        };
        let (net, inbound) = Network::start(keys.keypair(), net_config).await?;
        let addrs = identity_addresses(&net.addresses().borrow(), &keys.peer_id());
        let mut identity = home.identity()?;
        if identity.identity.addresses != addrs {
            identity = identity.with_addresses(&keys, addrs, unix_now());
            home.save_identity(&identity)?;
        }
        let (maintenance_tx, maintenance_rx) = tokio::sync::mpsc::channel(crate::maintenance::INBOX_CAPACITY);
        let node = Arc::new(Self {
            keys,
            home,
            config,
            net,
            db,
            store,
            identity: Mutex::new(identity),
            announced: tokio::sync::watch::Sender::new(false),
            jobs: Mutex::new(BTreeMap::new()),
            jobs_ended: tokio::sync::watch::Sender::new(0),
            next_job: AtomicU64::new(1),
            customer_lock: AsyncMutex::new(()),
            queue_lock: Mutex::new(()),
            registry: crate::maintenance::Registry::default(),
            down_positions: Mutex::new(Vec::new()),
            looked_up: Mutex::new(HashMap::new()),
            unreachable: Mutex::new(HashMap::new()),
            maintenance: maintenance_tx,
        });
        tokio::spawn(serve_inbound(node.clone(), inbound));
        tokio::spawn(announce_loop(Arc::downgrade(&node), !options.quiet));
        tokio::spawn(crate::maintenance::run(Arc::downgrade(&node), maintenance_rx));
        tokio::spawn(follow_addresses(Arc::downgrade(&node), !options.quiet));
        tokio::spawn(crate::relay::run(Arc::downgrade(&node)));
        Ok(node)
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

    /// The supplier store, if the supplier role is on.
    pub fn store(&self) -> Option<&Arc<FragmentStore>> {
        self.store.as_ref()
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

    /// Stops the network.
    pub async fn shutdown(&self) {
        self.net.shutdown().await;
    }

    /// A status report.
    ///
    /// # Errors
    /// If the network has stopped or the database fails.
    pub async fn status(&self) -> Result<Status> {
        let net = self.net.status().await?;
        let id = self.identity();
        let usage = match &self.store {
            Some(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.usage()).await??
            }
            None => Vec::new(),
        };
        let catalog = self.catalog()?;
        Ok(Status {
            peer_id: net.peer_id,
            global_id: id.identity.global_id(),
            nickname: id.identity.nickname.clone(),
            identity_revision: id.identity.revision,
            listen_addrs: id.identity.addresses.clone(),
            connected_peers: net.connected_peers.len(),
            routing_table_size: net.routing_table_size,
            announced: self.is_announced(),
            supplier: self.store.is_some(),
            donated_bytes: self.store.as_ref().map(|s| s.donated_bytes()).unwrap_or(0),
            stored_bytes: usage.iter().map(|u| u.used_bytes).sum(),
            customers: usage.len(),
            suppliers_hired: self.suppliers()?.len(),
            suppliers_wanted: self.config.customer.suppliers,
            backups: catalog.backups.len(),
            catalog_revision: catalog.revision,
            reachability: net.reachability,
            relays: net.relays,
            relay_server: self.config.nat.relay_server,
            connections: net.connections,
        })
    }

    /// Starts a job; `work` gets its progress handle.
    pub fn spawn_job<F, Fut>(self: &Arc<Self>, kind: &str, target: String, work: F) -> u64
    where
        F: FnOnce(Arc<Self>, Progress) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<serde_json::Value>> + Send + 'static,
    {
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let progress = Progress::new();
        let job = Job {
            id,
            kind: kind.into(),
            target,
            state: "running".into(),
            done_bytes: 0,
            total_bytes: 0,
            result: None,
            error: None,
        };
        if let Ok(mut jobs) = self.jobs.lock() {
            // keep the last 100 jobs
            while jobs.len() >= 100 {
                let Some(first) = jobs.keys().next().copied() else {
                    break;
                };
                jobs.remove(&first);
            }
            jobs.insert(id, (job, progress.clone()));
        }
        let node = self.clone();
        tokio::spawn(async move {
            let result = work(node.clone(), progress).await;
            if let Ok(mut jobs) = node.jobs.lock() {
                if let Some((job, _)) = jobs.get_mut(&id) {
                    match result {
                        Ok(v) => {
                            job.state = "done".into();
                            job.result = Some(v);
                        }
                        Err(e) => {
                            job.state = "failed".into();
                            job.error = Some(format!("{e:#}"));
                        }
                    }
                }
            }
            node.jobs_ended.send_modify(|n| *n = n.wrapping_add(1));
        });
        id
    }

    /// Job `id` once it has ended, or its state after `timeout` if it is still running (a long poll: clients
    /// learn of the end at once instead of on their next poll).
    pub async fn wait_job(&self, id: u64, timeout: Duration) -> Option<Job> {
        let mut ended = self.jobs_ended.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.job(id)?;
            if job.state != "running" {
                return Some(job);
            }
            match tokio::time::timeout_at(deadline, ended.changed()).await {
                Ok(Ok(())) => continue,
                _ => return self.job(id),
            }
        }
    }

    /// A job's current state.
    pub fn job(&self, id: u64) -> Option<Job> {
        let jobs = self.jobs.lock().ok()?;
        let (job, progress) = jobs.get(&id)?;
        let mut job = job.clone();
        (job.done_bytes, job.total_bytes) = progress.get();
        Some(job)
    }

    /// Publishes the identity record and the provider records (nickname; supplier and relay services when
    /// offered) to the DHT once. The announce loop does this every `announce_interval_secs` (10 minutes), so
    /// records reach the nodes that joined since (the closest nodes to a key change as the network grows).
    ///
    /// # Errors
    /// If no peer stored a record.
    pub async fn announce(&self) -> Result<()> {
        let id = self.identity();
        let rec = SignedRecord::sign(&self.keys, RecordKind::Identity, id.identity.revision, unix_now(), id.encode());
        self.net.put_record(rec).await?;
        self.net.start_providing(record::nickname_key(&id.identity.nickname)).await?;
        if self.store.is_some() {
            self.net.start_providing(record::SUPPLIERS_SERVICE_KEY.to_vec()).await?;
        }
        if self.config.nat.relay_server {
            self.net.start_providing(record::RELAYS_SERVICE_KEY.to_vec()).await?;
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

    /// Sends a storage request to `peer`. If no known address of `peer` answers, looks its signed identity up
    /// in the DHT and, if it gives other addresses than last time (the peer moved, or now listens through another
    /// relay), tries once more; a peer that is simply down is not dialed twice.
    ///
    /// # Errors
    /// The network's error for the last attempt.
    /// A peer that stays unreachable after that is not dialed again for [`UNREACHABLE_FOR`] (a dead peer costs
    /// a dial timeout; a restore would otherwise pay it for every block).
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, bitdust_net::NetError> {
        self.request_with(peer, request, true).await
    }

    /// [`Node::request`] that dials even a peer found unreachable a moment ago: heartbeats, which decide when a
    /// supplier is back.
    ///
    /// # Errors
    /// The network's error for the last attempt.
    pub async fn probe(&self, peer: PeerId, request: Request) -> Result<Response, bitdust_net::NetError> {
        self.request_with(peer, request, false).await
    }

    async fn request_with(
        &self,
        peer: PeerId,
        request: Request,
        skip_if_down: bool,
    ) -> Result<Response, bitdust_net::NetError> {
        let recently_down = self.unreachable.lock().ok().and_then(|m| m.get(&peer).copied());
        if skip_if_down && recently_down.is_some_and(|t| t.elapsed() < UNREACHABLE_FOR) {
            return Err(bitdust_net::NetError::Unreachable { peer, reason: "unreachable a moment ago".into() });
        }
        let result = match self.net.request(peer, request.clone()).await {
            Err(e @ bitdust_net::NetError::Unreachable { .. }) => {
                let before = self.looked_up.lock().ok().and_then(|m| m.get(&peer).cloned());
                match self.lookup_identity(peer).await {
                    Ok(id) if before.as_ref() != Some(&id.identity.addresses) => self.net.request(peer, request).await,
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
                Duration::from_secs(n.config.announce_interval_secs.max(1))
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

async fn serve_inbound(node: Arc<Node>, mut inbound: tokio::sync::mpsc::Receiver<Inbound>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(INBOUND_CONCURRENCY));
    while let Some(req) = inbound.recv().await {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let node = node.clone();
        tokio::spawn(async move {
            let response = node.handle_request(req.peer, req.request).await;
            let _ = node.net.respond(req.channel, response).await;
            drop(permit);
        });
    }
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error(code, message.into())
}

impl Node {
    /// Answers one storage request from the authenticated `peer` (the supplier service).
    async fn handle_request(&self, peer: PeerId, request: Request) -> Response {
        let Some(store) = self.store.clone() else {
            return refuse(ErrorCode::Refused, "this node is not a supplier");
        };
        let me = self.peer_id();
        let keys = self.keys.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<Response, bitdust_store::StoreError> {
            Ok(match request {
                Request::Contract(proposed) => {
                    Response::ContractAccepted(
                        store.accept_contract(&peer, &me, &proposed, unix_now(), |c| c.accept(&keys))?,
                    )
                }
                Request::PutFragment { id, data } => {
                    store.put_fragment(&peer, &id, &data)?;
                    Response::Stored
                }
                Request::GetFragment { owner, id } => {
                    let owner =
                        PeerId::from_bytes(&owner).map_err(|_| bitdust_store::StoreError::Malformed("owner".into()))?;
                    Response::Fragment(store.get_fragment(&peer, &owner, &id)?.into())
                }
                Request::DeleteFragment { id } => {
                    store.delete_fragment(&peer, &id)?;
                    Response::Deleted
                }
                Request::PutCatalog(bytes) => {
                    let sealed = SealedCatalog::decode(&bytes)
                        .map_err(|e| bitdust_store::StoreError::Malformed(e.to_string()))?;
                    let owner = sealed.verify().map_err(|e| bitdust_store::StoreError::Malformed(e.to_string()))?;
                    if owner != peer {
                        return Err(bitdust_store::StoreError::Denied {
                            requester: peer.to_string(),
                            owner: owner.to_string(),
                        });
                    }
                    store.put_catalog(&peer, sealed.revision, &bytes)?;
                    Response::Stored
                }
                Request::Heartbeat => {
                    if store.contract(&peer)?.is_none() {
                        return Err(bitdust_store::StoreError::NoContract(peer.to_string()));
                    }
                    let (used_bytes, fragments) = store.usage_of(&peer)?;
                    Response::Alive { used_bytes, fragments }
                }
                Request::Audit { owner, id, start, len } => {
                    let owner =
                        PeerId::from_bytes(&owner).map_err(|_| bitdust_store::StoreError::Malformed("owner".into()))?;
                    let bytes = store.get_fragment(&peer, &owner, &id)?;
                    let (_, shard) = bitdust_core::fragment::parse(&bytes)
                        .map_err(|e| bitdust_store::StoreError::Malformed(e.to_string()))?;
                    let proof = bitdust_core::audit::prove(shard, start, len)
                        .map_err(|e| bitdust_store::StoreError::Malformed(e.to_string()))?;
                    Response::AuditProof(proof.into())
                }
                Request::ListFragments { after, limit } => {
                    let limit = limit.min(bitdust_core::wire::MAX_LIST) as usize;
                    Response::FragmentList(store.list_fragments(&peer, after, limit)?)
                }
                Request::GetCatalog { owner } => {
                    let owner =
                        PeerId::from_bytes(&owner).map_err(|_| bitdust_store::StoreError::Malformed("owner".into()))?;
                    Response::Catalog(store.get_catalog(&peer, &owner)?)
                }
            })
        })
        .await;
        match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "request refused");
                refuse(e.code(), e.to_string())
            }
            Err(e) => refuse(ErrorCode::Internal, e.to_string()),
        }
    }
}

/// A pid file written by the daemon and removed when it exits.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes the current pid to `path`.
    ///
    /// # Errors
    /// On write failure.
    pub fn create(path: PathBuf) -> Result<Self> {
        bitdust_store::write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
