//! The customer's maintenance actor: keeps the data at full redundancy with no user action.
//!
//! It drives the automata of `bitdust_core::automata`:
//! - a [`SupplierConnection`] per position, fed by heartbeats (`Heartbeat` → `Alive`);
//! - the [`HireFire`] automaton, which replaces a supplier (fire, hire from the DHT, store the catalog)
//!   when a connection asks for it, or when the user does (`bitdust supplier replace`);
//! - the [`Rebuild`] automaton over the durable rebuild queue (in the node database, so a restarted
//!   customer resumes): each item is a block and the positions whose fragments must be regenerated.
//!   Regeneration works on encrypted fragments only ([`bitdust_core::rebuild::regenerate`]);
//! - audits: each connected supplier is regularly asked for a Bao proof of a random slice of a random
//!   fragment. A missing fragment starts a sweep of that supplier (list its fragments, queue what is
//!   missing); a wrong proof gets the supplier fired.
//!
//! Every automaton instance is published in the node's [`Registry`] for `bitdust automata` and the API.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, Weak};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::automata::hire_fire::{self, HireFire};
use bitdust_core::automata::rebuild::{self as rebuild_fsm, Rebuild};
use bitdust_core::automata::supplier_connection::{self as conn_fsm, SupplierConnection};
use bitdust_core::catalog::{Catalog, EntryKind, SealedCatalog, Version};
use bitdust_core::erasure::Coder;
use bitdust_core::pipeline::VersionKeys;
use bitdust_core::rebuild::{assess, plan_block, regenerate, BlockHealth};
use bitdust_core::wire::{ErrorCode, Request, Response, MAX_LIST};
use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::node::Node;

/// Capacity of the maintenance actor's inbox and of its internal completion channel.
pub(crate) const INBOX_CAPACITY: usize = 64;

/// One automaton instance as the API and `bitdust automata` show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutomatonInfo {
    /// Instance name, e.g. `supplier_connection/2`.
    pub name: String,
    /// Kind (its diagram: `bitdust automata --diagram KIND`).
    pub kind: String,
    /// Current state.
    pub state: String,
    /// Unix milliseconds when the state was entered.
    pub since_unix_ms: u64,
    /// Kind-specific details.
    pub details: serde_json::Value,
}

/// All automata of a node.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<BTreeMap<String, AutomatonInfo>>,
}

impl Registry {
    pub(crate) fn set(&self, info: AutomatonInfo) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(info.name.clone(), info);
        }
    }

    fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut m) = self.inner.lock() {
            m.retain(|k, _| keep(k));
        }
    }

    /// Every instance, by name.
    pub fn list(&self) -> Vec<AutomatonInfo> {
        self.inner.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
}

/// A block to rebuild: which positions must be regenerated. Persisted in the node database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Version id.
    pub version_id: [u8; 16],
    /// Block index.
    pub block: u64,
    /// Positions to regenerate.
    pub positions: Vec<u16>,
    /// Attempts so far.
    pub attempts: u32,
}

const QUEUE_KEY: &str = "rebuild_queue";
const FIRED_KEY: &str = "fired_suppliers";

/// Commands to the maintenance actor.
#[derive(Debug)]
pub enum Command {
    /// Replace the supplier at `position` (by hand).
    Replace(u16),
}

enum Done {
    Heartbeat { position: u16, peer: PeerId, result: Result<Response, String> },
    Replaced { position: u16, result: Result<PeerId, String> },
    Rebuilt(Result<Option<(u64, u64, u64)>, String>),
    Audited { position: u16, peer: PeerId, outcome: AuditOutcome },
    Swept,
}

/// The result of one audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The proof verified.
    Passed,
    /// The supplier does not have the fragment.
    Missing,
    /// The supplier answered with bytes that do not prove the fragment.
    Wrong(String),
    /// No answer.
    Unreachable(String),
    /// Nothing to audit.
    Nothing,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Conn {
    peer: PeerId,
    fsm: SupplierConnection,
    heartbeat_in_flight: bool,
    audit_in_flight: bool,
    last_audit_ms: u64,
    audits_passed: u64,
    audits_failed: u64,
    /// (bytes, fragments) the supplier last said it holds for us.
    holds: Option<(u64, u64)>,
}

/// Runs until the node is dropped or the inbox closes.
pub(crate) async fn run(node: Weak<Node>, mut commands: mpsc::Receiver<Command>) {
    let Some(cfg) = node.upgrade().map(|n| n.config.maintenance.clone()) else { return };
    let timings = cfg.timings();
    let start = now_ms();
    let mut conns: BTreeMap<u16, Conn> = BTreeMap::new();
    let mut hf = HireFire::new(cfg.cool_down_ms, start);
    let mut rb = Rebuild::new(cfg.rebuild_retry_ms, start);
    let mut rebuild_running = false;
    let mut sweeps: HashSet<u16> = HashSet::new();
    let (done_tx, mut done_rx) = mpsc::channel::<Done>(INBOX_CAPACITY);
    let mut tick = tokio::time::interval(Duration::from_millis((cfg.heartbeat_ms / 2).clamp(100, 1000)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut hf_events: Vec<hire_fire::Event> = Vec::new();
        let mut rb_events: Vec<rebuild_fsm::Event> = Vec::new();
        tokio::select! {
            _ = tick.tick() => {}
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Replace(position)) => {
                    hf_events.push(hire_fire::Event::FireRequested { position, reason: "replaced by hand".into() });
                }
            },
            Some(done) = done_rx.recv() => match done {
                Done::Heartbeat { position, peer, result } => {
                    if let Some(c) = conns.get_mut(&position).filter(|c| c.peer == peer) {
                        c.heartbeat_in_flight = false;
                        if let Ok(Response::Alive { used_bytes, fragments }) = &result {
                            c.holds = Some((*used_bytes, *fragments));
                        }
                        let event = match result {
                            Ok(Response::Alive { .. }) => conn_fsm::Event::HeartbeatOk,
                            Ok(Response::Error(ErrorCode::NoContract | ErrorCode::Refused, msg)) => conn_fsm::Event::Refused(msg),
                            _ => conn_fsm::Event::HeartbeatFailed,
                        };
                        for a in c.fsm.handle(event, now_ms()) {
                            if let conn_fsm::Action::RequestFiring(reason) = a {
                                hf_events.push(hire_fire::Event::FireRequested { position, reason });
                            }
                        }
                    }
                }
                Done::Replaced { position, result } => match result {
                    Ok(_) => hf_events.push(hire_fire::Event::Hired(position)),
                    Err(e) => hf_events.push(hire_fire::Event::HireFailed(position, e)),
                },
                Done::Rebuilt(result) => {
                    rebuild_running = false;
                    match result {
                        Ok(Some((fragments, bytes_sent, bytes_fetched))) => {
                            rb_events.push(rebuild_fsm::Event::Done { fragments, bytes_sent, bytes_fetched })
                        }
                        Ok(None) => {}
                        Err(e) => rb_events.push(rebuild_fsm::Event::Blocked(e)),
                    }
                }
                Done::Audited { position, peer, outcome } => {
                    if let Some(c) = conns.get_mut(&position).filter(|c| c.peer == peer) {
                        c.audit_in_flight = false;
                        match &outcome {
                            AuditOutcome::Passed => c.audits_passed += 1,
                            AuditOutcome::Missing => c.audits_failed += 1,
                            AuditOutcome::Wrong(_) => {
                                c.audits_failed += 1;
                                for a in c.fsm.handle(conn_fsm::Event::AuditWrong, now_ms()) {
                                    if let conn_fsm::Action::RequestFiring(reason) = a {
                                        hf_events.push(hire_fire::Event::FireRequested { position, reason });
                                    }
                                }
                            }
                            _ => {}
                        }
                        if outcome == AuditOutcome::Missing && sweeps.insert(position) {
                            let tx = done_tx.clone();
                            let n = node.clone();
                            tokio::spawn(async move {
                                if let Some(n) = n.upgrade() {
                                    if let Err(e) = n.sweep(position, peer).await {
                                        tracing::warn!(position, error = %format!("{e:#}"), "sweep failed");
                                    }
                                }
                                let _ = tx.send(Done::Swept).await;
                            });
                        }
                    }
                }
                Done::Swept => sweeps.clear(),
            },
        }
        let Some(node) = node.upgrade() else { return };
        let now = now_ms();
        // follow the hired suppliers
        let slots = node.suppliers().unwrap_or_default();
        let current: HashMap<u16, PeerId> = slots.iter().filter_map(|s| Some((s.position, s.peer().ok()?))).collect();
        conns.retain(|p, _| current.contains_key(p));
        for (p, peer) in &current {
            if conns.get(p).is_none_or(|c| c.peer != *peer) {
                conns.insert(
                    *p,
                    Conn {
                        peer: *peer,
                        fsm: SupplierConnection::new(timings, now),
                        heartbeat_in_flight: false,
                        audit_in_flight: false,
                        last_audit_ms: now,
                        audits_passed: 0,
                        audits_failed: 0,
                        holds: None,
                    },
                );
            }
        }
        // supplier connections
        for (position, c) in conns.iter_mut() {
            for a in c.fsm.handle(conn_fsm::Event::Tick, now) {
                match a {
                    conn_fsm::Action::SendHeartbeat if !c.heartbeat_in_flight => {
                        c.heartbeat_in_flight = true;
                        let (tx, n, peer, position) = (done_tx.clone(), node.clone(), c.peer, *position);
                        let limit = Duration::from_millis(cfg.heartbeat_ms.clamp(1_000, 10_000));
                        tokio::spawn(async move {
                            let beat =
                                || async { tokio::time::timeout(limit, n.probe(peer, Request::Heartbeat)).await };
                            let mut r = beat().await;
                            if !matches!(r, Ok(Ok(_))) {
                                // it may have restarted elsewhere: read its identity again, then retry once
                                if tokio::time::timeout(limit, n.lookup_identity(peer)).await.is_ok_and(|r| r.is_ok()) {
                                    r = beat().await;
                                }
                            }
                            let result = match r {
                                Ok(Ok(resp)) => Ok(resp),
                                Ok(Err(e)) => Err(e.to_string()),
                                Err(_) => Err("timed out".into()),
                            };
                            let _ = tx.send(Done::Heartbeat { position, peer, result }).await;
                        });
                    }
                    conn_fsm::Action::SendHeartbeat => {}
                    conn_fsm::Action::RequestFiring(reason) => {
                        hf_events.push(hire_fire::Event::FireRequested { position: *position, reason })
                    }
                }
            }
            // audits of connected suppliers
            if c.fsm.state == conn_fsm::State::Connected
                && !c.audit_in_flight
                && now.saturating_sub(c.last_audit_ms) >= cfg.audit_interval_ms
            {
                c.audit_in_flight = true;
                c.last_audit_ms = now;
                let (tx, n, peer, position) = (done_tx.clone(), node.clone(), c.peer, *position);
                tokio::spawn(async move {
                    let outcome = n.audit_one(position, peer).await;
                    let _ = tx.send(Done::Audited { position, peer, outcome }).await;
                });
            }
        }
        // hire and fire
        hf_events.push(hire_fire::Event::Tick);
        for e in hf_events {
            for a in hf.handle(e, now) {
                let hire_fire::Action::Replace { position, reason } = a;
                tracing::info!(position, %reason, "replacing supplier");
                let old = current.get(&position).copied();
                let (tx, n) = (done_tx.clone(), node.clone());
                tokio::spawn(async move {
                    let result = n.replace_supplier(position, old).await.map_err(|e| format!("{e:#}"));
                    let _ = tx.send(Done::Replaced { position, result }).await;
                });
            }
        }
        // rebuild
        let queued = node.rebuild_queue().map(|q| q.len()).unwrap_or(0);
        rb_events.push(rebuild_fsm::Event::Queued(queued));
        rb_events.push(rebuild_fsm::Event::Tick);
        let down: Vec<u16> = conns
            .iter()
            .filter(|(_, c)| {
                matches!(c.fsm.state, conn_fsm::State::Offline | conn_fsm::State::Refused(_) | conn_fsm::State::Fired)
            })
            .map(|(p, _)| *p)
            .collect();
        if let Ok(mut d) = node.down_positions.lock() {
            *d = down.clone();
        }
        for e in rb_events {
            for a in rb.handle(e, now) {
                let rebuild_fsm::Action::RunNext = a;
                if !rebuild_running {
                    rebuild_running = true;
                    let (tx, n, down) = (done_tx.clone(), node.clone(), down.clone());
                    tokio::spawn(async move {
                        let r = n.rebuild_next(&down).await.map_err(|e| format!("{e:#}"));
                        let _ = tx.send(Done::Rebuilt(r)).await;
                    });
                }
            }
        }
        // publish
        for (p, c) in &conns {
            node.registry.set(AutomatonInfo {
                name: format!("{}/{p}", conn_fsm::NAME),
                kind: conn_fsm::NAME.into(),
                state: c.fsm.state.name().into(),
                since_unix_ms: c.fsm.since_ms,
                details: serde_json::json!({
                    "position": p,
                    "peer_id": c.peer.to_string(),
                    "last_seen_unix_ms": c.fsm.last_seen_ms,
                    "reason": match &c.fsm.state { conn_fsm::State::Refused(r) => Some(r.clone()), _ => None },
                    "held_bytes": c.holds.map(|h| h.0),
                    "held_fragments": c.holds.map(|h| h.1),
                    "audits_passed": c.audits_passed,
                    "audits_failed": c.audits_failed,
                }),
            });
        }
        let live: HashSet<String> = conns.keys().map(|p| format!("{}/{p}", conn_fsm::NAME)).collect();
        node.registry.retain(|k| !k.starts_with(conn_fsm::NAME) || live.contains(k));
        node.registry.set(AutomatonInfo {
            name: hire_fire::NAME.into(),
            kind: hire_fire::NAME.into(),
            state: hf.state.name().into(),
            since_unix_ms: hf.since_ms,
            details: serde_json::json!({
                "replacing": match hf.state { hire_fire::State::Replacing(p) => Some(p), _ => None },
                "pending": hf.pending.iter().map(|(p, r)| serde_json::json!({"position": p, "reason": r})).collect::<Vec<_>>(),
                "last": hf.last,
            }),
        });
        node.registry.set(AutomatonInfo {
            name: rebuild_fsm::NAME.into(),
            kind: rebuild_fsm::NAME.into(),
            state: rb.state.name().into(),
            since_unix_ms: rb.since_ms,
            details: serde_json::json!({
                "queued_blocks": rb.queued,
                "fragments_rebuilt": rb.fragments_rebuilt,
                "bytes_sent": rb.bytes_sent,
                "bytes_fetched": rb.bytes_fetched,
                "blocked": rb.blocked,
            }),
        });
    }
}

/// Health of one version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionHealth {
    /// Backup name.
    pub name: String,
    /// Version number.
    pub version: u32,
    /// Blocks in all.
    pub blocks: usize,
    /// Blocks with all n fragments.
    pub full: usize,
    /// Blocks missing some fragments but restorable.
    pub degraded: usize,
    /// The fewest further losses any degraded block can take.
    pub can_still_lose: u16,
    /// Blocks that cannot be restored.
    pub lost: usize,
    /// Files that can no longer be restored.
    pub lost_files: Vec<String>,
}

fn find_version<'a>(catalog: &'a Catalog, id: &[u8; 16]) -> Option<&'a Version> {
    catalog.backups.iter().flat_map(|b| b.versions.iter()).find(|v| &v.id == id)
}

impl Node {
    /// The durable rebuild queue.
    ///
    /// # Errors
    /// On database failure.
    pub fn rebuild_queue(&self) -> Result<Vec<QueueItem>> {
        Ok(self.db.get::<Vec<QueueItem>>(QUEUE_KEY)?.unwrap_or_default())
    }

    /// Adds blocks to the rebuild queue, merging positions of blocks already queued.
    ///
    /// # Errors
    /// On database failure.
    pub fn enqueue_rebuild(&self, items: impl IntoIterator<Item = ([u8; 16], u64, u16)>) -> Result<usize> {
        let _g = self.queue_lock.lock().map_err(|_| anyhow!("queue lock poisoned"))?;
        let mut q = self.rebuild_queue()?;
        let mut index: HashMap<([u8; 16], u64), usize> =
            q.iter().enumerate().map(|(i, it)| ((it.version_id, it.block), i)).collect();
        let mut added = 0;
        for (v, b, p) in items {
            match index.get(&(v, b)) {
                Some(&i) => {
                    if !q[i].positions.contains(&p) {
                        q[i].positions.push(p);
                        added += 1;
                    }
                }
                None => {
                    index.insert((v, b), q.len());
                    q.push(QueueItem { version_id: v, block: b, positions: vec![p], attempts: 0 });
                    added += 1;
                }
            }
        }
        self.db.put(QUEUE_KEY, &q)?;
        Ok(added)
    }

    fn finish_item(&self, version_id: [u8; 16], block: u64, done: &[u16], failed: bool) -> Result<()> {
        let _g = self.queue_lock.lock().map_err(|_| anyhow!("queue lock poisoned"))?;
        let mut q = self.rebuild_queue()?;
        if let Some(i) = q.iter().position(|it| it.version_id == version_id && it.block == block) {
            q[i].positions.retain(|p| !done.contains(p));
            if q[i].positions.is_empty() {
                q.remove(i);
            } else if failed {
                let mut it = q.remove(i);
                it.attempts += 1;
                q.push(it); // to the back: others first
            }
        }
        self.db.put(QUEUE_KEY, &q)?;
        Ok(())
    }

    /// Peers that may hold `version`'s fragment at `position`: the current supplier first, then the one
    /// at backup time.
    pub(crate) fn peers_for(&self, version: &Version, position: u16) -> Vec<PeerId> {
        let mut out = Vec::new();
        if let Some(p) = self
            .suppliers()
            .ok()
            .and_then(|s| s.into_iter().find(|s| s.position == position))
            .and_then(|s| s.peer().ok())
        {
            out.push(p);
        }
        if let Some(p) = version.suppliers.get(position as usize).and_then(|b| PeerId::from_bytes(b).ok()) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// Fetches our fragment `id` (for `position`) from the first of `peers` that has it (see
    /// [`Node::peers_for`]).
    ///
    /// # Errors
    /// If none of them returns it; the message has each peer's answer.
    pub(crate) async fn fetch_fragment(&self, peers: &[PeerId], position: u16, id: [u8; 32]) -> Result<Vec<u8>> {
        let mut errors = Vec::new();
        for peer in peers {
            match self.request(*peer, Request::GetFragment { owner: self.peer_id().to_bytes(), id }).await {
                Ok(Response::Fragment(bytes)) => return Ok(Vec::from(bytes)),
                Ok(Response::Error(code, msg)) => errors.push(format!("{code:?}: {msg}")),
                Ok(other) => errors.push(format!("unexpected {other:?}")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        bail!("position {position}: {}", if errors.is_empty() { "no supplier".into() } else { errors.join("; ") })
    }

    /// Runs the first items of the rebuild queue (`customer.blocks_in_flight` blocks concurrently). `down`
    /// are positions whose supplier is unreachable.
    /// Returns `(fragments stored, bytes sent, bytes fetched)`, or `None` if the queue is empty.
    ///
    /// # Errors
    /// If no block could be rebuilt now (too few sources, target unreachable); they stay queued.
    pub async fn rebuild_next(&self, down: &[u16]) -> Result<Option<(u64, u64, u64)>> {
        let batch: Vec<QueueItem> =
            self.rebuild_queue()?.into_iter().take(self.config.customer.blocks_in_flight.max(1)).collect();
        if batch.is_empty() {
            return Ok(None);
        }
        let results = futures::future::join_all(batch.into_iter().map(|item| self.rebuild_item(item, down))).await;
        let mut total = (0, 0, 0);
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((f, s, g)) => total = (total.0 + f, total.1 + s, total.2 + g),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if total.0 == 0 && !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(Some(total))
    }

    /// Rebuilds one queued block. Returns `(fragments stored, bytes sent, bytes fetched)`.
    async fn rebuild_item(&self, item: QueueItem, down: &[u16]) -> Result<(u64, u64, u64)> {
        let catalog = self.catalog()?;
        let Some(version) = find_version(&catalog, &item.version_id) else {
            self.finish_item(item.version_id, item.block, &item.positions, false)?;
            return Ok((0, 0, 0));
        };
        let Some(meta) = version.blocks.get(item.block as usize) else {
            self.finish_item(item.version_id, item.block, &item.positions, false)?;
            return Ok((0, 0, 0));
        };
        let layout = version.layout;
        // targets whose supplier is down wait for its replacement
        let targets: Vec<u16> = item.positions.iter().copied().filter(|p| !down.contains(p)).collect();
        if targets.is_empty() {
            self.finish_item(item.version_id, item.block, &[], true)?;
            bail!("block {} waits for the replacement of position(s) {:?}", item.block, item.positions);
        }
        let mut unavailable: Vec<u16> = down.to_vec();
        unavailable.extend(&item.positions);
        let plan = plan_block(layout, &targets, &unavailable)
            .ok_or_else(|| anyhow!("block {}: fewer than {} sources reachable", item.block, layout.k));
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                self.finish_item(item.version_id, item.block, &[], true)?;
                return Err(e);
            }
        };
        let vkeys = VersionKeys::derive(self.keys.master(), version.id);
        let mut sources: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut newly_missing = Vec::new();
        for &p in &plan.sources {
            if sources.len() == layout.k as usize {
                break;
            }
            let id = vkeys.fragment_id(&meta.block_id, p);
            match self.fetch_fragment(&self.peers_for(version, p), p, id).await {
                Ok(bytes) if bitdust_core::rebuild::check_source(layout, meta, p, &bytes).is_ok() => {
                    sources.push((p, bytes))
                }
                Ok(_) => newly_missing.push(p),
                Err(e) if e.to_string().contains("NotFound") => newly_missing.push(p),
                Err(_) => {}
            }
        }
        if !newly_missing.is_empty() {
            self.enqueue_rebuild(newly_missing.iter().map(|p| (version.id, item.block, *p)))?;
        }
        if sources.len() < layout.k as usize {
            self.finish_item(item.version_id, item.block, &[], true)?;
            bail!("block {}: only {} of {} sources answered", item.block, sources.len(), layout.k);
        }
        let bytes_fetched: u64 = sources.iter().map(|(_, b)| b.len() as u64).sum();
        let meta_c = meta.clone();
        let targets_c = plan.targets.clone();
        let regenerated = tokio::task::spawn_blocking(move || {
            let refs: Vec<(u16, &[u8])> = sources.iter().map(|(p, b)| (*p, b.as_slice())).collect();
            regenerate(&mut Coder::new(), layout, &meta_c, &refs, &targets_c)
        })
        .await??;
        let mut stored = Vec::new();
        let mut bytes_sent = 0u64;
        let mut errors = Vec::new();
        let current: HashMap<u16, PeerId> =
            self.suppliers()?.iter().filter_map(|s| Some((s.position, s.peer().ok()?))).collect();
        for (p, frag) in regenerated {
            let Some(&peer) = current.get(&p) else {
                errors.push(format!("no supplier at position {p}"));
                continue;
            };
            let id = vkeys.fragment_id(&meta.block_id, p);
            let len = frag.len() as u64;
            match self.request(peer, Request::PutFragment { id, data: frag.into() }).await {
                Ok(Response::Stored) => {
                    stored.push(p);
                    bytes_sent += len;
                }
                Ok(other) => errors.push(format!("position {p}: {other:?}")),
                Err(e) => errors.push(format!("position {p}: {e}")),
            }
        }
        self.finish_item(item.version_id, item.block, &stored, !errors.is_empty())?;
        if !errors.is_empty() {
            bail!("block {}: {}", item.block, errors.join("; "));
        }
        Ok((stored.len() as u64, bytes_sent, bytes_fetched))
    }

    /// Fires the supplier at `position` (if `old` is still there) and hires another, never one already
    /// holding a position, a supplier fired before, or ourselves. Queues every block of every version for
    /// regeneration at that position and stores the catalog on the new supplier.
    ///
    /// # Errors
    /// If no replacement can be hired.
    pub async fn replace_supplier(&self, position: u16, old: Option<PeerId>) -> Result<PeerId> {
        let new = {
            let _g = self.customer_lock.lock().await;
            let mut fired: Vec<Vec<u8>> = self.db.get(FIRED_KEY)?.unwrap_or_default();
            if let Some(o) = old {
                if !fired.contains(&o.to_bytes()) {
                    fired.push(o.to_bytes());
                }
                self.db.put(FIRED_KEY, &fired)?;
            }
            // The old supplier keeps its slot until a replacement signs: a failed hire changes nothing.
            let slot = self.hire_position(position, &fired).await?;
            let peer = slot.peer()?;
            let mut slots = self.suppliers()?;
            slots.retain(|s| s.position != position);
            slots.push(slot);
            slots.sort_by_key(|s| s.position);
            self.db.put("suppliers", &slots)?;
            self.publish_suppliers(&slots).await;
            peer
        };
        let catalog = self.catalog()?;
        let items: Vec<([u8; 16], u64, u16)> = catalog
            .backups
            .iter()
            .flat_map(|b| b.versions.iter())
            .filter(|v| position < v.layout.n)
            .flat_map(|v| (0..v.blocks.len() as u64).map(move |i| (v.id, i, position)))
            .collect();
        self.enqueue_rebuild(items)?;
        let sealed = SealedCatalog::seal(&self.keys, &catalog).encode();
        if catalog.revision > 0 {
            let _ = self.request(new, Request::PutCatalog(sealed)).await;
        }
        Ok(new)
    }

    /// Audits the supplier at `position`: a Bao proof of a random slice of a random fragment it should hold.
    pub async fn audit_one(&self, position: u16, peer: PeerId) -> AuditOutcome {
        let Ok(catalog) = self.catalog() else { return AuditOutcome::Nothing };
        let queue: HashSet<([u8; 16], u64)> = self
            .rebuild_queue()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.positions.contains(&position))
            .map(|i| (i.version_id, i.block))
            .collect();
        let candidates: Vec<(&Version, usize)> = catalog
            .backups
            .iter()
            .flat_map(|b| b.versions.iter())
            .filter(|v| position < v.layout.n)
            .flat_map(|v| (0..v.blocks.len()).map(move |i| (v, i)))
            .filter(|(v, i)| !queue.contains(&(v.id, *i as u64)))
            .collect();
        if candidates.is_empty() {
            return AuditOutcome::Nothing;
        }
        let seed: u64 = rand::random();
        let (version, block) = candidates[(seed % candidates.len() as u64) as usize];
        let meta = &version.blocks[block];
        let vkeys = VersionKeys::derive(self.keys.master(), version.id);
        let id = vkeys.fragment_id(&meta.block_id, position);
        let (start, len) = bitdust_core::audit::challenge(rand::random(), meta.shard_len);
        let request = Request::Audit { owner: self.peer_id().to_bytes(), id, start, len };
        let outcome = match self.request(peer, request).await {
            Ok(Response::AuditProof(slice)) => match meta.shard_hashes.get(position as usize) {
                Some(hash) => match bitdust_core::audit::verify(hash, start, len, &slice) {
                    Ok(()) => AuditOutcome::Passed,
                    Err(e) => AuditOutcome::Wrong(e.to_string()),
                },
                None => AuditOutcome::Nothing,
            },
            Ok(Response::Error(ErrorCode::NotFound, _)) => AuditOutcome::Missing,
            Ok(Response::Error(code, msg)) => AuditOutcome::Unreachable(format!("{code:?}: {msg}")),
            Ok(other) => AuditOutcome::Wrong(format!("unexpected answer {other:?}")),
            Err(e) => AuditOutcome::Unreachable(e.to_string()),
        };
        if outcome == AuditOutcome::Missing {
            let _ = self.enqueue_rebuild([(version.id, block as u64, position)]);
        }
        tracing::debug!(position, ?outcome, "audit");
        outcome
    }

    /// Lists what the supplier at `position` holds and queues every fragment it should hold but does not.
    ///
    /// # Errors
    /// If the supplier does not answer.
    pub async fn sweep(&self, position: u16, peer: PeerId) -> Result<usize> {
        let mut held: HashSet<[u8; 32]> = HashSet::new();
        let mut after = None;
        loop {
            match self.request(peer, Request::ListFragments { after, limit: MAX_LIST }).await? {
                Response::FragmentList(ids) => {
                    let last = ids.last().copied();
                    let n = ids.len();
                    held.extend(ids);
                    if n < MAX_LIST as usize || last.is_none() {
                        break;
                    }
                    after = last;
                }
                other => bail!("unexpected answer {other:?}"),
            }
        }
        let catalog = self.catalog()?;
        let mut missing = Vec::new();
        for v in catalog.backups.iter().flat_map(|b| b.versions.iter()).filter(|v| position < v.layout.n) {
            let vkeys = VersionKeys::derive(self.keys.master(), v.id);
            for (i, b) in v.blocks.iter().enumerate() {
                if !held.contains(&vkeys.fragment_id(&b.block_id, position)) {
                    missing.push((v.id, i as u64, position));
                }
            }
        }
        let n = missing.len();
        self.enqueue_rebuild(missing)?;
        tracing::info!(position, missing = n, "sweep done");
        Ok(n)
    }

    /// Health of every version: blocks at full redundancy, degraded or lost, and the files lost.
    ///
    /// # Errors
    /// On database failure.
    pub fn health(&self) -> Result<Vec<VersionHealth>> {
        let catalog = self.catalog()?;
        let mut down: Vec<u16> = self.down_positions.lock().map(|d| d.clone()).unwrap_or_default();
        let held: HashSet<u16> = self.suppliers()?.iter().map(|s| s.position).collect();
        let mut queued: HashMap<([u8; 16], u64), Vec<u16>> = HashMap::new();
        for it in self.rebuild_queue()? {
            queued.insert((it.version_id, it.block), it.positions);
        }
        let mut out = Vec::new();
        for b in &catalog.backups {
            for v in &b.versions {
                let mut h = VersionHealth {
                    name: b.name.clone(),
                    version: v.number,
                    blocks: v.blocks.len(),
                    full: 0,
                    degraded: 0,
                    can_still_lose: v.layout.parity(),
                    lost: 0,
                    lost_files: Vec::new(),
                };
                let mut offset = 0u64;
                let mut lost_ranges = Vec::new();
                for p in 0..v.layout.n {
                    if !held.contains(&p) && !down.contains(&p) {
                        down.push(p);
                    }
                }
                for (i, m) in v.blocks.iter().enumerate() {
                    let mut unavailable = down.clone();
                    if let Some(q) = queued.get(&(v.id, i as u64)) {
                        unavailable.extend(q);
                    }
                    match assess(v.layout, &unavailable) {
                        BlockHealth::Full => h.full += 1,
                        BlockHealth::Degraded { can_still_lose, .. } => {
                            h.degraded += 1;
                            h.can_still_lose = h.can_still_lose.min(can_still_lose);
                        }
                        BlockHealth::Lost { .. } => {
                            h.lost += 1;
                            lost_ranges.push((offset, offset + m.plain_len as u64));
                        }
                    }
                    offset += m.plain_len as u64;
                }
                if h.degraded == 0 && h.lost == 0 {
                    h.can_still_lose = v.layout.parity();
                }
                for e in &v.entries {
                    if let EntryKind::File { size, offset } = e.kind {
                        if size > 0 && lost_ranges.iter().any(|(a, b)| offset < *b && offset + size > *a) {
                            h.lost_files.push(String::from_utf8_lossy(&e.path).into_owned());
                        }
                    }
                }
                out.push(h);
            }
        }
        Ok(out)
    }

    /// Asks the maintenance actor to replace the supplier at `position`.
    ///
    /// # Errors
    /// If there is no such position or the actor has stopped.
    pub async fn request_replacement(&self, position: u16) -> Result<()> {
        if !self.suppliers()?.iter().any(|s| s.position == position) {
            bail!("no supplier at position {position}");
        }
        self.maintenance.send(Command::Replace(position)).await.context("maintenance stopped")
    }

    /// Every automaton instance.
    pub fn automata(&self) -> Vec<AutomatonInfo> {
        self.registry.list()
    }
}
