//! The customer's maintenance actor: keeps the data at full redundancy with no user action.
//!
//! Every decision is the pure [`Maintenance`] state's (`crate::proto::maintenance`, with its simulator); this
//! actor only executes its actions and feeds the results back: heartbeats ([`Storage::probe`]), audits and
//! sweeps (`audit.rs`), replacements (`Storage::replace_supplier`), the durable rebuild queue ([`queue`]) and its
//! executor (`rebuild.rs`). Before each step it tells the state which suppliers are hired and how long the queue
//! is (read from the node database), and after each step it publishes every automaton in the node's registry
//! and the positions that are down (for restores and health reports, `health.rs`).

mod audit;
mod health;
pub mod queue;
mod rebuild;

use std::sync::Weak;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitdust_api::EventKind;
use bitdust_core::PeerId;
use bitdust_node::automata::{now_ms, AutomatonInfo};
use tokio::sync::mpsc;

pub use self::health::VersionHealth;
pub use self::queue::QueueItem;
use crate::proto::automata::{hire_fire, rebuild as rebuild_fsm, supplier_connection as conn_fsm};
use crate::proto::maintenance::{Action, HeartbeatAnswer, Input, Maintenance};
use crate::proto::wire::{ErrorCode, Request, Response};
use crate::service::Storage;

/// Capacity of the maintenance actor's inbox and of its internal completion channel.
pub(crate) const INBOX_CAPACITY: usize = 64;

/// Commands to the maintenance actor.
#[derive(Debug)]
pub enum Command {
    /// Replace the supplier at `position` (by hand).
    Replace(u16),
}

/// Runs until the storage wing is dropped or the inbox closes.
pub(crate) async fn run(storage: Weak<Storage>, mut commands: mpsc::Receiver<Command>) {
    let Some(cfg) = storage.upgrade().map(|s| s.config.maintenance.clone()) else { return };
    let mut state = Maintenance::new(cfg.policy(), now_ms());
    if let Some(s) = storage.upgrade() {
        let migrated =
            tokio::task::spawn_blocking(move || queue::Queue::new(s.node.db()).migrate_legacy(now_ms())).await;
        match migrated {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => {
                tracing::info!(blocks = n, "rebuild queue of an earlier build moved into the database's records")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot read the rebuild queue of an earlier build")
            }
            Err(e) => tracing::warn!(error = %e, "rebuild queue migration stopped"),
        }
    }
    // silence saved by earlier runs, fed once the suppliers are known (a restart does not restart the fire clock)
    let mut carried = storage.upgrade().map(|s| load_silence(&s)).filter(|c| !c.is_empty());
    let mut silence_saved_ms = now_ms();
    let save_silence_every = cfg.heartbeat_ms.saturating_mul(5).clamp(1_000, SAVE_SILENCE_MS);
    let (done_tx, mut done_rx) = mpsc::channel::<Input>(INBOX_CAPACITY);
    // what the last health event said: (queued blocks, down positions)
    let mut last_health: Option<(u64, Vec<u16>)> = None;
    let mut tick = tokio::time::interval(Duration::from_millis((cfg.heartbeat_ms / 2).clamp(100, 1000)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let input = tokio::select! {
            _ = tick.tick() => Input::Tick,
            cmd = commands.recv() => match cmd {
                None => return,
                Some(Command::Replace(position)) => Input::ReplaceRequested { position, reason: "replaced by hand".into() },
            },
            Some(done) = done_rx.recv() => done,
        };
        let Some(s) = storage.upgrade() else { return };
        // a stopped node maintains nothing (its heartbeats would all fail and fire every supplier)
        if s.node.network().is_stopped() {
            return;
        }
        let now = now_ms();
        let mut actions = Vec::new();
        let slots: Vec<(u16, PeerId)> =
            s.suppliers().unwrap_or_default().iter().filter_map(|x| Some((x.position, x.peer().ok()?))).collect();
        actions.extend(state.handle(Input::Suppliers(slots), now));
        if let Some(c) = carried.take() {
            actions.extend(state.handle(Input::Silence(c), now));
        }
        if now.saturating_sub(silence_saved_ms) >= save_silence_every {
            silence_saved_ms = now;
            if let Err(e) = save_silence(&s, &state.silences(now)) {
                tracing::warn!(error = %format!("{e:#}"), "suppliers' silence not saved");
            }
        }
        let queued = queue::Queue::new(s.node.db()).len().unwrap_or(0);
        actions.extend(state.handle(Input::Queued(queued as usize), now));
        actions.extend(state.handle(input, now));
        for action in actions {
            execute(&s, action, &done_tx);
        }
        let down = state.unhealthy_positions();
        if let Ok(mut d) = s.unhealthy_positions.lock() {
            d.clone_from(&down);
        }
        let health = (queued, down);
        if last_health.as_ref() != Some(&health) {
            s.node
                .events()
                .push(EventKind::HealthChanged { queued_blocks: health.0, down_positions: health.1.clone() });
            last_health = Some(health);
        }
        publish(&s, &state);
    }
}

/// Table: position (big-endian) -> [`Silent`]: each supplier's silence as last saved.
const SILENCE: &str = "maintenance/silence";
/// How often the suppliers' silence is saved at most, in milliseconds (what a crash can lose of it); five
/// heartbeat periods if that is less, but not under a second.
const SAVE_SILENCE_MS: u64 = 60_000;

/// A supplier's silence, saved so that a restart carries it over ([`Input::Silence`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct Silent {
    /// Its peer id bytes.
    peer: Vec<u8>,
    /// Milliseconds without an answer while this customer ran.
    silent_ms: u64,
}

impl bitdust_store::Versioned for Silent {
    const FORMAT: u16 = 1;
}

/// The silence saved by earlier runs (rows that do not decode are skipped).
fn load_silence(s: &Storage) -> Vec<(u16, PeerId, u64)> {
    let rows = s.node.db().records::<Silent>(SILENCE, None, usize::MAX).unwrap_or_default();
    rows.into_iter()
        .filter_map(|(k, v)| {
            let position = u16::from_be_bytes(<[u8; 2]>::try_from(k.as_slice()).ok()?);
            Some((position, PeerId::from_bytes(&v.peer).ok()?, v.silent_ms))
        })
        .collect()
}

/// Saves `silences` (replacing what was saved).
fn save_silence(s: &Storage, silences: &[(u16, PeerId, u64)]) -> Result<()> {
    let old = s.node.db().records::<Silent>(SILENCE, None, usize::MAX)?;
    s.node.db().write(|tx| {
        let mut t = tx.table(SILENCE)?;
        for (k, _) in &old {
            t.remove(k)?;
        }
        for (position, peer, silent_ms) in silences {
            t.put(&position.to_be_bytes(), &Silent { peer: peer.to_bytes(), silent_ms: *silent_ms })?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Carries out one action; its result comes back on `done` as an input.
fn execute(storage: &std::sync::Arc<Storage>, action: Action, done: &mpsc::Sender<Input>) {
    let (tx, s) = (done.clone(), storage.clone());
    match action {
        Action::Heartbeat { position, peer } => {
            let limit = Duration::from_millis(s.config.maintenance.heartbeat_ms.clamp(1_000, 10_000));
            tokio::spawn(async move {
                let beat = || async { tokio::time::timeout(limit, s.probe(peer, Request::Heartbeat)).await };
                let mut r = beat().await;
                if !matches!(r, Ok(Ok(_))) {
                    // it may have restarted elsewhere: read its identity again, then retry once
                    if tokio::time::timeout(limit, s.node.lookup_identity(peer)).await.is_ok_and(|r| r.is_ok()) {
                        r = beat().await;
                    }
                }
                let answer = match r {
                    Ok(Ok(Response::Alive { used_bytes, fragments })) => {
                        HeartbeatAnswer::Alive { used_bytes, fragments }
                    }
                    Ok(Ok(Response::Error(ErrorCode::NoContract | ErrorCode::Refused, msg))) => {
                        HeartbeatAnswer::Refused(msg)
                    }
                    Ok(Ok(other)) => HeartbeatAnswer::Failed(format!("unexpected answer {other:?}")),
                    Ok(Err(e)) => HeartbeatAnswer::Failed(e.to_string()),
                    Err(_) => HeartbeatAnswer::Failed("timed out".into()),
                };
                let _ = tx.send(Input::HeartbeatDone { position, peer, answer }).await;
            });
        }
        Action::Audit { position, peer } => {
            tokio::spawn(async move {
                let outcome = s.audit_one(position, peer).await;
                let _ = tx.send(Input::AuditDone { position, peer, outcome }).await;
            });
        }
        Action::Enqueue { block, position } => {
            if let Err(e) = s.enqueue_rebuild([(block.version_id, block.block, position)]) {
                tracing::warn!(position, error = %format!("{e:#}"), "cannot queue a missing fragment");
            }
        }
        Action::Sweep { position, peer } => {
            tokio::spawn(async move {
                if let Err(e) = s.sweep(position, peer).await {
                    tracing::warn!(position, error = %format!("{e:#}"), "sweep failed");
                }
                let _ = tx.send(Input::SweepDone { position }).await;
            });
        }
        Action::Replace { position, old, reason } => {
            tracing::info!(position, %reason, "replacing supplier");
            tokio::spawn(async move {
                let result = s.replace_supplier(position, old).await.map_err(|e| format!("{e:#}"));
                let _ = tx.send(Input::ReplaceDone { position, result }).await;
            });
        }
        Action::Rebuild { down } => {
            tokio::spawn(async move {
                let r = s.rebuild_next(&down).await.map_err(|e| format!("{e:#}"));
                let _ = tx.send(Input::RebuildDone(r)).await;
            });
        }
    }
}

/// Publishes every automaton of the state in the node's registry, and the connections for the API.
fn publish(s: &Storage, state: &Maintenance) {
    if let Ok(mut views) = s.connections.lock() {
        *views = state
            .connections()
            .iter()
            .map(|(p, c)| {
                (
                    *p,
                    super::ConnectionView {
                        peer: c.peer,
                        state: c.fsm.state.name().into(),
                        holds: c.holds,
                        audits_passed: c.audits_passed,
                        failing_audits: c.failing_audits,
                        last_audit_passed_ms: c.last_audit_passed_ms,
                        last_audit_error: c.last_audit_error.clone(),
                        down: c.is_down(),
                    },
                )
            })
            .collect();
    }
    let registry = s.node.registry();
    for (p, c) in state.connections() {
        registry.set(AutomatonInfo {
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
                "failing_audits": c.failing_audits,
                "last_audit_passed_unix_ms": c.last_audit_passed_ms,
            }),
        });
    }
    let live: Vec<String> = state.connections().keys().map(|p| format!("{}/{p}", conn_fsm::NAME)).collect();
    registry.retain(|k| !k.starts_with(conn_fsm::NAME) || live.iter().any(|l| l == k));
    let hf = state.hire_fire();
    registry.set(AutomatonInfo {
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
    let rb = state.rebuild();
    registry.set(AutomatonInfo {
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

impl Storage {
    /// The durable rebuild queue, in block order.
    ///
    /// # Errors
    /// On database failure.
    pub fn rebuild_queue(&self) -> Result<Vec<QueueItem>> {
        queue::Queue::new(self.node.db()).all()
    }

    /// Adds `(version, block, position)` items to the rebuild queue, merging positions of blocks already
    /// queued (a block with new positions is due at once). Returns how many positions were new.
    ///
    /// # Errors
    /// On database failure.
    pub fn enqueue_rebuild(&self, items: impl IntoIterator<Item = ([u8; 16], u64, u16)>) -> Result<usize> {
        queue::Queue::new(self.node.db()).add(items, now_ms())
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

    /// Every automaton instance of the node.
    pub fn automata(&self) -> Vec<AutomatonInfo> {
        self.node.registry().list()
    }
}
