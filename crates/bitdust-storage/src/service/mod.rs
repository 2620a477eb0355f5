//! The service half of the storage wing: it runs on the node runtime (`bitdust-node`) and does the I/O the
//! pure protocol ([`crate::proto`]) plans.
//!
//! ```text
//! service/
//!   mod.rs          Storage (the wing's handle) and StorageService (how the runtime starts it)
//!   supplier.rs     the supplier: answers /bitdust/storage/1 out of the fragment store
//!   upkeep.rs       the supplier's background work: scrubbing its store, republishing customers' records
//!   store.rs        the supplier's fragment store (files + redb index, quotas, contracts)
//!   customer/       the customer: hiring suppliers, backup, restore, recovery from the key
//!   maintenance/    the customer's maintenance actor (executing the pure state's actions), the durable rebuild
//!                   queue, the rebuild executor, audits and sweeps, health
//!   archive.rs      trees of files to and from the archive byte stream
//!   routes.rs       the wing's API routes
//!   vault.rs        the node's Vault (other wings' objects, kept like backups)
//! ```

pub mod archive;
pub mod customer;
pub mod maintenance;
mod routes;
pub(crate) mod share;
pub mod store;
mod supplier;
mod upkeep;
pub mod vault;

use std::sync::{Arc, Mutex};

use anyhow::Result;
use async_trait::async_trait;
use bitdust_core::automata::Kind;
use bitdust_core::PeerId;
use bitdust_net::{Frame, Inbounds, NetError, ProtocolSpec};
use bitdust_node::http::StatusSection;
use bitdust_node::{Node, Service, Started};
use libp2p::StreamProtocol;
use tokio::sync::{mpsc, Mutex as AsyncMutex};

use crate::config::StorageConfig;
use crate::proto::codec;
use crate::proto::wire::{ErrorCode, Request, Response, MAX_MESSAGE_BYTES, STORAGE_PROTOCOL};
use crate::service::store::FragmentStore;

/// Requests of `/bitdust/storage/1` queued for the supplier at most; beyond it they are answered "busy" at once.
const INBOUND_CAPACITY: usize = 256;

/// The storage wing's handle: the customer (suppliers, backup, restore, recovery), its maintenance, and the
/// supplier's store. Cheap to share (`Arc`).
pub struct Storage {
    /// This handle (for the vault, whose methods take `&self`).
    this: std::sync::Weak<Storage>,
    node: Arc<Node>,
    config: StorageConfig,
    protocol: StreamProtocol,
    store: Option<Arc<FragmentStore>>,
    /// Serialises catalog changes and supplier changes.
    customer_lock: AsyncMutex<()>,
    /// Restores and checks of incremental versions read (shared), prune writes: a restore never sees the packs it
    /// reads deleted or moved under it, and prune waits for the restores running.
    packs_lock: tokio::sync::RwLock<()>,
    /// Positions whose supplier is offline, refused or fired, or fails its audits (maintained by the maintenance
    /// actor; [`crate::proto::maintenance::Maintenance::unhealthy_positions`]).
    unhealthy_positions: Mutex<Vec<u16>>,
    /// What maintenance knows of each position's supplier (maintained by the maintenance actor), for the API.
    connections: Mutex<std::collections::BTreeMap<u16, ConnectionView>>,
    /// Inbox of the maintenance actor.
    maintenance: mpsc::Sender<maintenance::Command>,
    /// Backup sets whose run is going on.
    running_sets: customer::schedule::Running,
    /// Wakes the backup-set runner when a set is added, removed or ends a run.
    schedules_changed: Arc<tokio::sync::Notify>,
}

/// What maintenance knows of one position's supplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionView {
    /// The supplier.
    pub peer: PeerId,
    /// Its supplier connection automaton's state.
    pub state: String,
    /// (bytes, fragments) it last said it holds for us.
    pub holds: Option<(u64, u64)>,
    /// Audits it passed.
    pub audits_passed: u64,
    /// Audits failed since its last pass.
    pub failing_audits: u32,
    /// When it last passed an audit (Unix ms).
    pub last_audit_passed_ms: Option<u64>,
    /// Why its last audit failed, while it fails.
    pub last_audit_error: Option<String>,
    /// Whether its position counts as down (offline, refused, fired).
    pub down: bool,
}

impl Storage {
    /// The node it runs on.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Its settings (the home's `[supplier]`, `[customer]` and `[maintenance]`, with command-line overrides).
    pub fn config(&self) -> &StorageConfig {
        &self.config
    }

    /// What maintenance knows of each position's supplier now.
    pub fn connections(&self) -> std::collections::BTreeMap<u16, ConnectionView> {
        self.connections.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// The supplier's fragment store, if the supplier role is on.
    pub fn store(&self) -> Option<&Arc<FragmentStore>> {
        self.store.as_ref()
    }

    /// Sends a storage request to `peer` through the runtime ([`Node::request`]: an unreachable peer's identity is
    /// looked up again once).
    ///
    /// # Errors
    /// The network's error, or [`NetError::Request`] if the answer is not a storage response.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        let frame = encode(peer, &request)?;
        decode(peer, self.node.request(peer, &self.protocol, frame).await?)
    }

    /// [`Storage::request`] that dials even a peer found unreachable a moment ago (heartbeats).
    ///
    /// # Errors
    /// As [`Storage::request`].
    pub async fn probe(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        let frame = encode(peer, &request)?;
        decode(peer, self.node.probe(peer, &self.protocol, frame).await?)
    }
}

fn encode(peer: PeerId, request: &Request) -> Result<Frame, NetError> {
    codec::encode_request(request).map(Frame).map_err(|e| NetError::Request { peer, reason: e.to_string() })
}

fn decode(peer: PeerId, bytes: bytes::Bytes) -> Result<Response, NetError> {
    codec::decode_response(bytes).map_err(|e| NetError::Request { peer, reason: format!("bad answer: {e}") })
}

/// The `/bitdust/storage/1` protocol as registered with the network.
pub fn protocol_spec() -> ProtocolSpec {
    let busy = Response::Error(ErrorCode::Internal, "node busy, retry".into());
    let mut spec = ProtocolSpec::new(
        StreamProtocol::new(STORAGE_PROTOCOL),
        MAX_MESSAGE_BYTES,
        MAX_MESSAGE_BYTES,
        INBOUND_CAPACITY,
        Frame(codec::encode_response(&busy).unwrap_or_default()),
    );
    spec.request_kinds = codec::request_limit;
    spec.response_kinds = codec::response_limit;
    spec
}

/// How the runtime starts the storage wing ([`bitdust_node::Daemon::start`]).
pub struct StorageService {
    overrides: Overrides,
}

/// Command-line overrides of the storage settings (`bitdust daemon --supplier --donate SIZE`).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Turn the supplier role on with this donated space, in bytes.
    pub donate_bytes: Option<u64>,
}

impl StorageService {
    /// The storage wing with `overrides` on top of the home's settings.
    pub fn new(overrides: Overrides) -> Box<Self> {
        Box::new(Self { overrides })
    }
}

#[async_trait]
impl Service for StorageService {
    fn name(&self) -> &'static str {
        "storage"
    }

    fn protocols(&self) -> Vec<ProtocolSpec> {
        vec![protocol_spec()]
    }

    fn automata(&self) -> &'static [Kind] {
        crate::proto::automata::KINDS
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        routes::openapi()
    }

    fn config_check(&self) -> Option<bitdust_node::settings::ConfigCheck> {
        Some(|config| {
            let storage = StorageConfig::from_config(config)?;
            storage.customer.layout(storage.customer.suppliers)?;
            Ok(())
        })
    }

    async fn start(self: Box<Self>, node: &Arc<Node>, inbounds: &mut Inbounds) -> Result<Started> {
        let mut config = StorageConfig::from_config(node.config())?;
        if let Some(d) = self.overrides.donate_bytes {
            config.supplier.enabled = true;
            config.supplier.donated_bytes = d;
        }
        let store = if config.supplier.enabled {
            let path = node.home().path("store");
            let (donated, policy) = (config.supplier.donated_bytes, config.supplier.policy());
            Some(Arc::new(
                tokio::task::spawn_blocking(move || FragmentStore::open_with(&path, donated, policy)).await??,
            ))
        } else {
            None
        };
        let spec = protocol_spec();
        let inbound =
            inbounds.take(&spec.name).ok_or_else(|| anyhow::anyhow!("{STORAGE_PROTOCOL} was not registered"))?;
        if store.is_some() {
            node.provide(crate::proto::records::SUPPLIERS_SERVICE_KEY.to_vec());
        }
        let (maintenance_tx, maintenance_rx) = mpsc::channel(maintenance::INBOX_CAPACITY);
        let storage = Arc::new_cyclic(|this| Storage {
            this: this.clone(),
            node: node.clone(),
            config,
            protocol: spec.name,
            store: store.clone(),
            customer_lock: AsyncMutex::new(()),
            packs_lock: tokio::sync::RwLock::new(()),
            unhealthy_positions: Mutex::new(Vec::new()),
            connections: Mutex::new(std::collections::BTreeMap::new()),
            maintenance: maintenance_tx,
            running_sets: std::sync::Mutex::new(std::collections::HashSet::new()),
            schedules_changed: Arc::new(tokio::sync::Notify::new()),
        });
        vault::clean_scratch(&storage);
        let as_vault: std::sync::Weak<dyn bitdust_node::Vault> = Arc::downgrade(&storage) as _;
        node.set_vault(as_vault);
        if let Some(store) = &store {
            tokio::spawn(upkeep::republish(Arc::downgrade(node), Arc::downgrade(store)));
            let period = std::time::Duration::from_secs(storage.config.supplier.scrub_period_secs);
            tokio::spawn(upkeep::scrub(Arc::downgrade(node), Arc::downgrade(store), period));
            let grace = std::time::Duration::from_secs(storage.config.supplier.grace_secs);
            tokio::spawn(upkeep::free_ended(Arc::downgrade(node), Arc::downgrade(store), grace));
        }
        tokio::spawn(supplier::serve(node.clone(), store, inbound));
        tokio::spawn(maintenance::run(Arc::downgrade(&storage), maintenance_rx));
        tokio::spawn(customer::hire::publish_on_start(Arc::downgrade(&storage)));
        tokio::spawn(upkeep::priority_peers(Arc::downgrade(&storage)));
        tokio::spawn(customer::hire::renew_contracts(Arc::downgrade(&storage)));
        tokio::spawn(customer::schedule::run(Arc::downgrade(&storage)));
        Ok(Started {
            handle: storage.clone(),
            routes: routes::router(storage.clone()),
            status: Some(storage as Arc<dyn StatusSection>),
        })
    }
}

#[async_trait]
impl StatusSection for Storage {
    async fn fill(&self, status: &mut bitdust_api::Status) -> Result<()> {
        let usage = match &self.store {
            Some(s) => {
                let s = s.clone();
                tokio::task::spawn_blocking(move || s.usage()).await??
            }
            None => Vec::new(),
        };
        let catalog = self.catalog()?;
        status.storage = Some(bitdust_api::StorageStatus {
            supplier: self.store.is_some(),
            donated_bytes: self.store.as_ref().map(|s| s.donated_bytes()).unwrap_or(0),
            stored_bytes: usage.iter().map(|u| u.used_bytes).sum::<u64>(),
            customers: usage.len(),
            suppliers_hired: self.suppliers()?.len(),
            suppliers_wanted: self.config.customer.suppliers,
            backups: catalog.backups.iter().filter(|b| !vault::is_vault_backup(&b.name)).count(),
            catalog_revision: catalog.revision,
            backup_sets: self.backup_sets()?,
        });
        Ok(())
    }
}
