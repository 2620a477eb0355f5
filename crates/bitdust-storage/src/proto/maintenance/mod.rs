//! The customer's maintenance as one pure state machine: what keeps a customer's data at full redundancy with
//! no user action, composed of the storage automata (a [`SupplierConnection`] per position, [`HireFire`],
//! [`Rebuild`]) and the glue between them: which answers become which automaton events, when each supplier is
//! audited, which positions are down, what is queued for rebuilding. Time comes in with every input, so a
//! simulator drives it exactly as the service's actor does (the model is iroh-gossip's `proto/state.rs`, which
//! composes HyParView and Plumtree the same way).
//!
//! ```text
//!            Input (+ now_ms)                                   Action
//! actor ───► Suppliers / Queued / Tick ──► Maintenance ──► Heartbeat / Audit / Sweep ──► actor runs it and
//!            HeartbeatDone / AuditDone ...      │           Enqueue / Replace / Rebuild    feeds the result back
//!                                               └──► views: connections, hire/fire, rebuild, down positions
//! ```
//! The executor (the service's actor) persists the rebuild queue, hires and fires, and regenerates fragments;
//! it reports the queue length back ([`Input::Queued`]). A replacement queues every block of its position
//! itself, in the same step that saves the new supplier (so a crash between them loses nothing).
//! `sim` (a test module) drives this state with seeded random faults and checks its invariants after every step.

#[cfg(test)]
mod sim;

use std::collections::BTreeMap;

use bitdust_core::PeerId;

use crate::proto::automata::hire_fire::{self, HireFire};
use crate::proto::automata::rebuild::{self as rebuild_fsm, Rebuild};
use crate::proto::automata::supplier_connection::{self as conn_fsm, SupplierConnection, Timings};

/// Longest pause between attempts at one queued block: a block that cannot be rebuilt is still tried hourly.
pub const MAX_BACKOFF_MS: u64 = 3_600_000;

/// Pause before the next attempt at a queued block after `attempts` failures: `base_ms` (the policy's
/// `rebuild_retry_ms`) doubled each time, at most [`MAX_BACKOFF_MS`]. A block that keeps failing (its data lost
/// beyond repair, its sources down) moves back, so the others are not starved behind it.
pub fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    base_ms.max(1).saturating_mul(1u64 << attempts.saturating_sub(1).min(30)).min(MAX_BACKOFF_MS)
}

/// The maintenance policy: every delay of the composed automata, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Supplier connection timings (heartbeat period, suspect / offline / fire delays).
    pub timings: Timings,
    /// Pause after each replacement (against firing storms).
    pub cool_down_ms: u64,
    /// Time between audits of one connected supplier.
    pub audit_interval_ms: u64,
    /// Audits failed in a row (anything but a valid proof from a supplier we reach) that fire a supplier. A
    /// wrong proof fires at once; a missing fragment or an error answer may be honest damage that a sweep and a
    /// rebuild repair, so it takes this many in a row.
    pub audit_failures_to_fire: u32,
    /// Delay before blocked rebuild work is retried.
    pub rebuild_retry_ms: u64,
}

/// A fragment of the customer's data: a block of a version (its position is said beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockRef {
    /// Version id.
    pub version_id: [u8; 16],
    /// Block index in the version.
    pub block: u64,
}

/// A supplier's answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeartbeatAnswer {
    /// It holds our contract and this much of our data.
    Alive {
        /// Bytes it holds for us.
        used_bytes: u64,
        /// Fragments it holds for us.
        fragments: u64,
    },
    /// It refused service (no contract any more, no space).
    Refused(String),
    /// No usable answer (unreachable, timed out, another error).
    Failed(String),
}

/// The result of one audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    /// The proof verified.
    Passed,
    /// The supplier does not have the fragment of this block at its position.
    Missing(BlockRef),
    /// The supplier answered with bytes that do not prove the fragment.
    Wrong(String),
    /// The supplier answered with an error other than "not found" (its store cannot be read, it is busy), or
    /// the request to it failed after it was reached (a timeout, a closed stream): a failed audit.
    Failed(String),
    /// The supplier could not be reached at all (no connection): heartbeats judge its silence, not audits.
    Unreachable(String),
    /// Nothing to audit (no data at that position yet, or all of it queued).
    Nothing,
}

/// What a rebuild run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RebuildStats {
    /// Fragments regenerated and stored.
    pub fragments: u64,
    /// Bytes of regenerated fragments sent.
    pub bytes_sent: u64,
    /// Bytes of source fragments fetched.
    pub bytes_fetched: u64,
}

/// Inputs, each with the time it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Time passes (the actor ticks about twice per heartbeat period).
    Tick,
    /// The hired suppliers, by position, as the customer's database holds them now.
    Suppliers(Vec<(u16, PeerId)>),
    /// The durable rebuild queue holds this many blocks.
    Queued(usize),
    /// Silence observed in earlier runs, per position and supplier, in milliseconds ([`Maintenance::silences`] as
    /// last saved): fed once after the first [`Input::Suppliers`] of a run, so a restart does not start the
    /// fire-after clock again (see [`conn_fsm::SupplierConnection::carry_silence`]).
    Silence(Vec<(u16, PeerId, u64)>),
    /// The user asks to replace the supplier at `position`.
    ReplaceRequested {
        /// Position.
        position: u16,
        /// Why.
        reason: String,
    },
    /// A heartbeat to the supplier at `position` ended.
    HeartbeatDone {
        /// Position.
        position: u16,
        /// The supplier asked (its answer is ignored if it no longer holds the position).
        peer: PeerId,
        /// Its answer.
        answer: HeartbeatAnswer,
    },
    /// Heartbeat answers, each as it came at its own time (at most the `now_ms` given with the input, in any
    /// order): the same as one [`Input::HeartbeatDone`] at each of those times, without the timers running in
    /// between. A driver that wakes only at deadlines (the durability simulator) answers every supplier at once
    /// this way, and says until when a supplier that went down since its last wake was heard.
    Heard(Vec<Heard>),
    /// An audit of the supplier at `position` ended.
    AuditDone {
        /// Position.
        position: u16,
        /// The supplier audited.
        peer: PeerId,
        /// The outcome.
        outcome: AuditOutcome,
    },
    /// A sweep of the supplier at `position` ended (what it lacked is queued).
    SweepDone {
        /// Position.
        position: u16,
    },
    /// A replacement at `position` ended: the new supplier, or why none was hired.
    ReplaceDone {
        /// Position.
        position: u16,
        /// The new supplier or the error.
        result: Result<PeerId, String>,
    },
    /// A rebuild run ended: what it did (`None`: the queue was empty), or why nothing could be rebuilt.
    RebuildDone(Result<Option<RebuildStats>, String>),
}

/// One heartbeat answer of [`Input::Heard`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// Position.
    pub position: u16,
    /// The supplier that answered (ignored if it no longer holds the position).
    pub peer: PeerId,
    /// Its answer.
    pub answer: HeartbeatAnswer,
    /// When it came (ms).
    pub at_ms: u64,
}

/// What the executor must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a heartbeat to the supplier at `position`; answer with [`Input::HeartbeatDone`].
    Heartbeat {
        /// Position.
        position: u16,
        /// Supplier.
        peer: PeerId,
    },
    /// Audit a random fragment the supplier at `position` should hold; answer with [`Input::AuditDone`].
    Audit {
        /// Position.
        position: u16,
        /// Supplier.
        peer: PeerId,
    },
    /// Queue the fragment at `position` of `block` for regeneration (persisted).
    Enqueue {
        /// The block.
        block: BlockRef,
        /// The position to regenerate.
        position: u16,
    },
    /// List what the supplier at `position` holds and queue what it lacks; answer with [`Input::SweepDone`].
    Sweep {
        /// Position.
        position: u16,
        /// Supplier.
        peer: PeerId,
    },
    /// Fire `old` and hire another supplier at `position`, queueing every block of that position; answer with
    /// [`Input::ReplaceDone`]. A compare-and-swap: if `old` no longer holds the position (it was replaced since the
    /// request), nothing changes and the current supplier is the answer.
    Replace {
        /// Position.
        position: u16,
        /// The supplier to fire.
        old: Option<PeerId>,
        /// Why.
        reason: String,
    },
    /// Run the next blocks of the rebuild queue, never regenerating onto or reading from a down supplier;
    /// answer with [`Input::RebuildDone`].
    Rebuild {
        /// The suppliers that are offline, refused or fired, with their positions. A position counts as down only
        /// while that supplier still holds it: a replacement that lands while the run starts makes its position
        /// usable at once (a stale list would otherwise put its blocks off).
        down: Vec<(u16, PeerId)>,
    },
}

/// One position's supplier as maintenance sees it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The supplier.
    pub peer: PeerId,
    /// Its connection automaton.
    pub fsm: SupplierConnection,
    /// (bytes, fragments) it last said it holds for us.
    pub holds: Option<(u64, u64)>,
    /// Audits it passed.
    pub audits_passed: u64,
    /// Audits it failed (missing or wrong fragment, error answers).
    pub audits_failed: u64,
    /// Audits failed since its last pass.
    pub failing_audits: u32,
    /// When it last passed an audit (ms).
    pub last_audit_passed_ms: Option<u64>,
    /// Why its last audit failed, while it fails.
    pub last_audit_error: Option<String>,
    heartbeat_in_flight: bool,
    audit_in_flight: bool,
    sweep_in_flight: bool,
    last_audit_ms: u64,
}

impl Connection {
    fn new(peer: PeerId, timings: Timings, now_ms: u64) -> Self {
        Self {
            peer,
            fsm: SupplierConnection::new(timings, now_ms),
            holds: None,
            audits_passed: 0,
            audits_failed: 0,
            failing_audits: 0,
            last_audit_passed_ms: None,
            last_audit_error: None,
            heartbeat_in_flight: false,
            audit_in_flight: false,
            sweep_in_flight: false,
            // the first audit comes one interval after hiring (its data is still arriving)
            last_audit_ms: now_ms,
        }
    }

    /// Whether its position counts as down: offline, refused or fired.
    pub fn is_down(&self) -> bool {
        matches!(self.fsm.state, conn_fsm::State::Offline | conn_fsm::State::Refused(_) | conn_fsm::State::Fired)
    }
}

/// When a [`Maintenance`] state next needs time (ms since the same origin as `now_ms`), by kind; `None`: nothing
/// of that kind is pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    /// The next timer that changes a state by itself: a supplier turning suspect, offline or fired for silence, the
    /// end of a cool-down, the retry of blocked rebuild work.
    pub timers: Option<u64>,
    /// The next audit due.
    pub audit: Option<u64>,
    /// The next heartbeat due. A simulator that answers every heartbeat at each wake may skip these: between
    /// wakes nothing changes for a supplier that is up, and a supplier going down is an event of its own.
    pub heartbeat: Option<u64>,
}

impl Deadlines {
    /// The earliest of all three.
    pub fn earliest(&self) -> Option<u64> {
        [self.timers, self.audit, self.heartbeat].into_iter().flatten().min()
    }
}

/// The composed maintenance state of one customer.
#[derive(Debug, Clone)]
pub struct Maintenance {
    policy: Policy,
    connections: BTreeMap<u16, Connection>,
    hire_fire: HireFire,
    rebuild: Rebuild,
    rebuild_running: bool,
    queued: usize,
    /// Per position, the supplier a pending firing request is about.
    accused: BTreeMap<u16, PeerId>,
}

impl Maintenance {
    /// A new state at `now_ms`, with no suppliers known yet.
    pub fn new(policy: Policy, now_ms: u64) -> Self {
        Self {
            policy,
            connections: BTreeMap::new(),
            hire_fire: HireFire::new(policy.cool_down_ms, now_ms),
            rebuild: Rebuild::new(policy.rebuild_retry_ms, now_ms),
            rebuild_running: false,
            queued: 0,
            accused: BTreeMap::new(),
        }
    }

    /// The connections, by position.
    pub fn connections(&self) -> &BTreeMap<u16, Connection> {
        &self.connections
    }

    /// The hire/fire automaton.
    pub fn hire_fire(&self) -> &HireFire {
        &self.hire_fire
    }

    /// The rebuild automaton.
    pub fn rebuild(&self) -> &Rebuild {
        &self.rebuild
    }

    /// Positions whose supplier is offline, refused or fired: not read from, not written to, and counted as
    /// unavailable in health reports.
    pub fn down_positions(&self) -> Vec<u16> {
        self.connections.iter().filter(|(_, c)| c.is_down()).map(|(p, _)| *p).collect()
    }

    /// Positions that cannot count as holding their fragments: down, or failing audits. Health reports use these
    /// (a position whose audits fail is never reported full), while rebuilds still write to a position that only
    /// fails audits (its missing fragments are being put back).
    pub fn unhealthy_positions(&self) -> Vec<u16> {
        self.connections.iter().filter(|(_, c)| c.is_down() || c.failing_audits > 0).map(|(p, _)| *p).collect()
    }

    /// The down suppliers with their positions (see [`Action::Rebuild`]).
    pub fn down_suppliers(&self) -> Vec<(u16, PeerId)> {
        self.connections.iter().filter(|(_, c)| c.is_down()).map(|(p, c)| (*p, c.peer)).collect()
    }

    /// When the state next needs time, by kind, so that a driver can sleep (or a simulator jump) between them
    /// instead of ticking: feeding [`Input::Tick`] at each of these times, and answering what it asks, gives the
    /// same transitions as ticking every moment.
    pub fn deadlines(&self) -> Deadlines {
        let live = || self.connections.values().filter(|c| c.fsm.state != conn_fsm::State::Fired);
        let audit_interval = self.policy.audit_interval_ms;
        Deadlines {
            timers: live()
                .filter_map(|c| c.fsm.next_deadline())
                .chain(self.hire_fire.next_deadline())
                .chain(self.rebuild.next_deadline())
                .min(),
            audit: live()
                .filter(|c| c.fsm.state == conn_fsm::State::Connected && !c.audit_in_flight)
                .map(|c| c.last_audit_ms.saturating_add(audit_interval))
                .min(),
            heartbeat: live().filter(|c| !c.heartbeat_in_flight).filter_map(|c| c.fsm.next_heartbeat_ms()).min(),
        }
    }

    /// Feeds one input at `now_ms`; returns what to do. After the input itself, every automaton gets the
    /// time (heartbeats and audits that are due, cool-downs and retries that are over).
    pub fn handle(&mut self, input: Input, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        // firing requests, each about the supplier that held the position when it was made
        let mut firing: Vec<(u16, Option<PeerId>, String)> = Vec::new();
        match input {
            Input::Tick => {}
            Input::Suppliers(slots) => self.follow(&slots, now_ms),
            Input::Queued(n) => self.queued = n,
            Input::Silence(carried) => {
                for (position, peer, silent_ms) in carried {
                    if let Some(c) = self.connection_of(position, peer) {
                        c.fsm.carry_silence(silent_ms, now_ms);
                    }
                }
            }
            Input::ReplaceRequested { position, reason } => {
                let peer = self.connections.get(&position).map(|c| c.peer);
                firing.push((position, peer, reason));
            }
            Input::HeartbeatDone { position, peer, answer } => {
                firing.extend(self.heard(Heard { position, peer, answer, at_ms: now_ms }));
            }
            Input::Heard(mut answers) => {
                answers.sort_by_key(|h| h.at_ms);
                for h in answers {
                    let at_ms = h.at_ms.min(now_ms);
                    firing.extend(self.heard(Heard { at_ms, ..h }));
                }
            }
            Input::AuditDone { position, peer, outcome } => {
                let failures_to_fire = self.policy.audit_failures_to_fire.max(1);
                if let Some(c) = self.connection_of(position, peer) {
                    c.audit_in_flight = false;
                    let failed = match outcome {
                        AuditOutcome::Passed => {
                            c.audits_passed += 1;
                            c.failing_audits = 0;
                            c.last_audit_passed_ms = Some(now_ms);
                            c.last_audit_error = None;
                            None
                        }
                        AuditOutcome::Missing(block) => {
                            // Honest disk damage is repaired: queue it and look for more. A supplier that keeps
                            // losing what it is given is fired below.
                            out.push(Action::Enqueue { block, position });
                            if !c.sweep_in_flight {
                                c.sweep_in_flight = true;
                                out.push(Action::Sweep { position, peer });
                            }
                            Some("a fragment it should hold is missing".to_string())
                        }
                        AuditOutcome::Wrong(e) => {
                            let actions = c.fsm.handle(conn_fsm::Event::AuditWrong, now_ms);
                            firing.extend(Self::requests(actions, position, peer));
                            Some(format!("wrong proof: {e}"))
                        }
                        // while heartbeats find it silent, its silence is judged by them (a restart is not a dodge)
                        AuditOutcome::Failed(e) if c.fsm.state == conn_fsm::State::Connected => Some(e),
                        AuditOutcome::Failed(_) => None,
                        AuditOutcome::Unreachable(_) | AuditOutcome::Nothing => None,
                    };
                    if let Some(reason) = failed {
                        c.audits_failed += 1;
                        c.failing_audits = c.failing_audits.saturating_add(1);
                        if c.failing_audits == failures_to_fire {
                            firing.push((
                                position,
                                Some(peer),
                                format!("failed {} audits in a row ({reason})", c.failing_audits),
                            ));
                        }
                        c.last_audit_error = Some(reason);
                    }
                }
            }
            Input::SweepDone { position } => {
                if let Some(c) = self.connections.get_mut(&position) {
                    c.sweep_in_flight = false;
                }
            }
            Input::ReplaceDone { position, result } => {
                let event = match result {
                    Ok(_) => {
                        self.accused.remove(&position);
                        hire_fire::Event::Hired(position)
                    }
                    Err(e) => hire_fire::Event::HireFailed(position, e),
                };
                out.extend(self.hire_fire_actions(event, now_ms));
            }
            Input::RebuildDone(result) => {
                self.rebuild_running = false;
                let event = match result {
                    Ok(Some(s)) => Some(rebuild_fsm::Event::Done {
                        fragments: s.fragments,
                        bytes_sent: s.bytes_sent,
                        bytes_fetched: s.bytes_fetched,
                    }),
                    Ok(None) => None,
                    Err(e) => Some(rebuild_fsm::Event::Blocked(e)),
                };
                if let Some(e) = event {
                    out.extend(self.rebuild_actions(e, now_ms));
                }
            }
        }
        // time: connections (heartbeats, silences, audits)
        let audit_interval = self.policy.audit_interval_ms;
        for (position, c) in self.connections.iter_mut() {
            for a in c.fsm.handle(conn_fsm::Event::Tick, now_ms) {
                match a {
                    conn_fsm::Action::SendHeartbeat if !c.heartbeat_in_flight => {
                        c.heartbeat_in_flight = true;
                        out.push(Action::Heartbeat { position: *position, peer: c.peer });
                    }
                    conn_fsm::Action::SendHeartbeat => {}
                    conn_fsm::Action::RequestFiring(reason) => firing.push((*position, Some(c.peer), reason)),
                }
            }
            if c.fsm.state == conn_fsm::State::Connected
                && !c.audit_in_flight
                && now_ms.saturating_sub(c.last_audit_ms) >= audit_interval
            {
                c.audit_in_flight = true;
                c.last_audit_ms = now_ms;
                out.push(Action::Audit { position: *position, peer: c.peer });
            }
        }
        // hire and fire: the replacement of a position is about the supplier of its latest request (a request
        // about a supplier that was replaced since comes before its successor's own, never after: answers of a
        // replaced supplier are dropped once the state knows of its successor)
        for (position, peer, reason) in firing {
            if let Some(p) = peer {
                self.accused.insert(position, p);
            }
            out.extend(self.hire_fire_actions(hire_fire::Event::FireRequested { position, reason }, now_ms));
        }
        out.extend(self.hire_fire_actions(hire_fire::Event::Tick, now_ms));
        // rebuild
        out.extend(self.rebuild_actions(rebuild_fsm::Event::Queued(self.queued), now_ms));
        out.extend(self.rebuild_actions(rebuild_fsm::Event::Tick, now_ms));
        out
    }

    /// Follows the hired suppliers: a new supplier at a position gets a new connection.
    /// Each supplier's silence at `now_ms` (milliseconds since its last answer, or since this run started following
    /// it): what a customer saves to feed [`Input::Silence`] after a restart.
    pub fn silences(&self, now_ms: u64) -> Vec<(u16, PeerId, u64)> {
        self.connections.iter().map(|(p, c)| (*p, c.peer, c.fsm.silent_ms(now_ms))).collect()
    }

    fn follow(&mut self, slots: &[(u16, PeerId)], now_ms: u64) {
        self.connections.retain(|p, _| slots.iter().any(|(q, _)| q == p));
        for (position, peer) in slots {
            if self.connections.get(position).is_none_or(|c| c.peer != *peer) {
                self.connections.insert(*position, Connection::new(*peer, self.policy.timings, now_ms));
            }
        }
    }

    /// Takes one heartbeat answer; returns the firing requests it makes.
    fn heard(&mut self, h: Heard) -> Vec<(u16, Option<PeerId>, String)> {
        let Some(c) = self.connection_of(h.position, h.peer) else { return Vec::new() };
        c.heartbeat_in_flight = false;
        let event = match h.answer {
            HeartbeatAnswer::Alive { used_bytes, fragments } => {
                c.holds = Some((used_bytes, fragments));
                conn_fsm::Event::HeartbeatOk
            }
            HeartbeatAnswer::Refused(reason) => conn_fsm::Event::Refused(reason),
            HeartbeatAnswer::Failed(_) => conn_fsm::Event::HeartbeatFailed,
        };
        Self::requests(c.fsm.handle(event, h.at_ms), h.position, h.peer).collect()
    }

    /// The connection at `position` if `peer` still holds it (answers from a replaced supplier are dropped).
    fn connection_of(&mut self, position: u16, peer: PeerId) -> Option<&mut Connection> {
        self.connections.get_mut(&position).filter(|c| c.peer == peer)
    }

    fn requests(
        actions: Vec<conn_fsm::Action>,
        position: u16,
        peer: PeerId,
    ) -> impl Iterator<Item = (u16, Option<PeerId>, String)> {
        actions.into_iter().filter_map(move |a| match a {
            conn_fsm::Action::RequestFiring(reason) => Some((position, Some(peer), reason)),
            conn_fsm::Action::SendHeartbeat => None,
        })
    }

    fn hire_fire_actions(&mut self, event: hire_fire::Event, now_ms: u64) -> Vec<Action> {
        self.hire_fire
            .handle(event, now_ms)
            .into_iter()
            .map(|hire_fire::Action::Replace { position, reason }| {
                // the supplier the request was about, not whoever holds the position now (it may have been
                // replaced since, and the new one has done nothing wrong)
                let old =
                    self.accused.get(&position).copied().or_else(|| self.connections.get(&position).map(|c| c.peer));
                Action::Replace { position, old, reason }
            })
            .collect()
    }

    fn rebuild_actions(&mut self, event: rebuild_fsm::Event, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        for rebuild_fsm::Action::RunNext in self.rebuild.handle(event, now_ms) {
            if !self.rebuild_running {
                self.rebuild_running = true;
                out.push(Action::Rebuild { down: self.down_suppliers() });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(300, 1), 300);
        assert_eq!(backoff_ms(300, 2), 600);
        assert_eq!(backoff_ms(300, 5), 4_800);
        assert_eq!(backoff_ms(60_000, 40), MAX_BACKOFF_MS);
    }

    const POLICY: Policy = Policy {
        timings: Timings {
            heartbeat_ms: 1_000,
            suspect_after_ms: 3_000,
            offline_after_ms: 6_000,
            fire_after_ms: 15_000,
        },
        cool_down_ms: 2_000,
        audit_interval_ms: 5_000,
        audit_failures_to_fire: 3,
        rebuild_retry_ms: 2_000,
    };

    fn peer() -> PeerId {
        bitdust_core::keys::NodeKeys::generate().peer_id()
    }

    #[test]
    fn a_new_supplier_gets_heartbeats_then_audits_and_answers_from_a_replaced_one_are_dropped() {
        let mut m = Maintenance::new(POLICY, 0);
        let (a, b) = (peer(), peer());
        let out = m.handle(Input::Suppliers(vec![(0, a)]), 0);
        assert_eq!(out, vec![Action::Heartbeat { position: 0, peer: a }]);
        // a heartbeat in flight is not sent again
        assert!(m.handle(Input::Tick, 1_500).is_empty());
        let alive = HeartbeatAnswer::Alive { used_bytes: 10, fragments: 1 };
        m.handle(Input::HeartbeatDone { position: 0, peer: a, answer: alive.clone() }, 2_500);
        assert_eq!(m.connections()[&0].fsm.state, conn_fsm::State::Connected);
        // one audit interval after hiring, a connected supplier is audited
        let out = m.handle(Input::Tick, 5_000);
        assert!(out.contains(&Action::Audit { position: 0, peer: a }), "{out:?}");
        // the position gets another supplier: the old one's answers change nothing
        m.handle(Input::Suppliers(vec![(0, b)]), 5_100);
        m.handle(Input::HeartbeatDone { position: 0, peer: a, answer: alive }, 5_200);
        assert_eq!(m.connections()[&0].fsm.state, conn_fsm::State::Connecting);
        assert_eq!(m.connections()[&0].peer, b);
    }

    /// The durability simulator's finding (issue 19): a customer restarted before fire-after never fired a dead
    /// supplier, since every run started its clock again. Silence carried over counts; never fired sooner than
    /// offline-after into a run; a supplier that answers is not fired.
    #[test]
    fn silence_carried_over_a_restart_counts_toward_firing() {
        let fired = |out: &[Action]| out.iter().any(|a| matches!(a, Action::Replace { position: 0, .. }));
        let (a, b) = (peer(), peer());
        // a first run: 4 s of silence (fire-after is 15 s), then the customer stops
        let mut m = Maintenance::new(POLICY, 0);
        m.handle(Input::Suppliers(vec![(0, a)]), 0);
        assert!(!fired(&m.handle(Input::Tick, 4_000)));
        let saved = m.silences(4_000);
        assert_eq!(saved, vec![(0, a, 4_000)]);
        // the next run starts at 100 s: without the carried silence it would wait 15 s
        let mut m = Maintenance::new(POLICY, 100_000);
        m.handle(Input::Suppliers(vec![(0, a)]), 100_000);
        m.handle(Input::Silence(saved.clone()), 100_000);
        assert!(!fired(&m.handle(Input::Tick, 110_900)));
        assert!(fired(&m.handle(Input::Tick, 111_100)), "4 s carried + 11 s = fire-after");
        // carried silence past fire-after still leaves offline-after (6 s) for heartbeats
        let mut m = Maintenance::new(POLICY, 100_000);
        m.handle(Input::Suppliers(vec![(0, a)]), 100_000);
        m.handle(Input::Silence(vec![(0, a, 3_600_000)]), 100_000);
        assert!(!fired(&m.handle(Input::Tick, 105_000)));
        assert!(fired(&m.handle(Input::Tick, 106_100)));
        // silence saved for another supplier of the position, or a supplier that answers: nothing carried
        let mut m = Maintenance::new(POLICY, 100_000);
        m.handle(Input::Suppliers(vec![(0, a)]), 100_000);
        m.handle(Input::Silence(vec![(0, b, 3_600_000)]), 100_000);
        assert!(!fired(&m.handle(Input::Tick, 106_100)));
        let mut m = Maintenance::new(POLICY, 100_000);
        m.handle(Input::Suppliers(vec![(0, a)]), 100_000);
        let alive = HeartbeatAnswer::Alive { used_bytes: 1, fragments: 1 };
        m.handle(Input::HeartbeatDone { position: 0, peer: a, answer: alive }, 100_010);
        m.handle(Input::Silence(vec![(0, a, 3_600_000)]), 100_020);
        assert!(!fired(&m.handle(Input::Tick, 106_100)), "it answered in this run");
    }

    #[test]
    fn a_missing_fragment_is_queued_and_swept_once_a_wrong_proof_fires() {
        let mut m = Maintenance::new(POLICY, 0);
        let a = peer();
        m.handle(Input::Suppliers(vec![(1, a)]), 0);
        let block = BlockRef { version_id: [7; 16], block: 3 };
        let out = m.handle(Input::AuditDone { position: 1, peer: a, outcome: AuditOutcome::Missing(block) }, 100);
        assert!(out.contains(&Action::Enqueue { block, position: 1 }));
        assert!(out.contains(&Action::Sweep { position: 1, peer: a }));
        let again = m.handle(Input::AuditDone { position: 1, peer: a, outcome: AuditOutcome::Missing(block) }, 200);
        assert!(!again.iter().any(|x| matches!(x, Action::Sweep { .. })), "one sweep at a time: {again:?}");
        assert!(!again.iter().any(|x| matches!(x, Action::Replace { .. })), "missing data is not a firing");
        let out = m.handle(Input::AuditDone { position: 1, peer: a, outcome: AuditOutcome::Wrong("bad".into()) }, 300);
        assert!(
            out.iter().any(|x| matches!(x, Action::Replace { position: 1, old: Some(p), .. } if *p == a)),
            "{out:?}"
        );
    }

    /// Item 2 of issue 14: a supplier whose store cannot be read answers audits with errors while its heartbeats
    /// say alive. It is not counted as holding its fragments from the first failure, and the policy's failures
    /// in a row fire it; a pass in between starts the count again.
    #[test]
    fn audits_answered_with_errors_fail_and_fire_after_the_policys_count() {
        let mut m = Maintenance::new(POLICY, 0);
        let a = peer();
        m.handle(Input::Suppliers(vec![(0, a)]), 0);
        let failed = || AuditOutcome::Failed("Internal: store I/O".into());
        // before its heartbeats say it is connected, a failed request is an outage, not a failed audit
        m.handle(Input::AuditDone { position: 0, peer: a, outcome: failed() }, 10);
        assert_eq!(m.connections()[&0].failing_audits, 0);
        let alive = HeartbeatAnswer::Alive { used_bytes: 1, fragments: 1 };
        m.handle(Input::HeartbeatDone { position: 0, peer: a, answer: alive }, 50);
        let fires = |out: &[Action]| out.iter().any(|x| matches!(x, Action::Replace { position: 0, .. }));
        assert!(!fires(&m.handle(Input::AuditDone { position: 0, peer: a, outcome: failed() }, 100)));
        assert_eq!(m.unhealthy_positions(), vec![0]);
        assert!(m.down_positions().is_empty(), "still a rebuild target");
        m.handle(Input::AuditDone { position: 0, peer: a, outcome: AuditOutcome::Passed }, 200);
        assert!(m.unhealthy_positions().is_empty());
        assert_eq!(m.connections()[&0].last_audit_passed_ms, Some(200));
        for t in 1..POLICY.audit_failures_to_fire {
            let out = m.handle(Input::AuditDone { position: 0, peer: a, outcome: failed() }, 200 + u64::from(t));
            assert!(!fires(&out), "{out:?}");
        }
        // not reaching it at all is the heartbeats' business, not a failed audit
        let unreachable = AuditOutcome::Unreachable("no connection".into());
        assert!(!fires(&m.handle(Input::AuditDone { position: 0, peer: a, outcome: unreachable }, 300)));
        let out = m.handle(Input::AuditDone { position: 0, peer: a, outcome: failed() }, 400);
        assert!(fires(&out), "{out:?}");
        assert_eq!(m.connections()[&0].failing_audits, POLICY.audit_failures_to_fire);
    }

    /// Regression (found by the simulator, seed 3477 of a 20,000-seed soak): a stale request about a replaced
    /// supplier and its successor's own refusal were merged into one (hire/fire keeps one request per position),
    /// and the merged request named the old supplier: the replacement was dropped as moot and the refusing
    /// successor stayed hired for good.
    #[test]
    fn a_successor_that_refuses_is_replaced_even_after_a_stale_request_about_its_predecessor() {
        let mut m = Maintenance::new(POLICY, 0);
        let (liar, refuser, good) = (peer(), peer(), peer());
        m.handle(Input::Suppliers(vec![(0, liar)]), 0);
        let wrong = || AuditOutcome::Wrong("proof does not verify".into());
        m.handle(Input::AuditDone { position: 0, peer: liar, outcome: wrong() }, 100);
        m.handle(
            Input::HeartbeatDone {
                position: 0,
                peer: liar,
                answer: HeartbeatAnswer::Alive { used_bytes: 0, fragments: 0 },
            },
            150,
        );
        m.handle(Input::ReplaceDone { position: 0, result: Ok(refuser) }, 200);
        // stale: the liar's answer before the state reads the new list
        m.handle(Input::AuditDone { position: 0, peer: liar, outcome: wrong() }, 250);
        m.handle(Input::Suppliers(vec![(0, refuser)]), 300);
        let mut out = Vec::new();
        out.extend(m.handle(
            Input::HeartbeatDone { position: 0, peer: refuser, answer: HeartbeatAnswer::Refused("no contract".into()) },
            400,
        ));
        for t in (500..20_000).step_by(500) {
            out.extend(m.handle(Input::Tick, t));
            // the executor's compare-and-swap: a replacement about the liar is moot, the refuser is the answer
            let replaces: Vec<Action> = out.drain(..).filter(|a| matches!(a, Action::Replace { .. })).collect();
            for a in replaces {
                let Action::Replace { old, .. } = a else { continue };
                if old == Some(refuser) {
                    return;
                }
                m.handle(Input::ReplaceDone { position: 0, result: Ok(refuser) }, t);
            }
        }
        let _ = good;
        panic!("the refusing successor was never replaced");
    }

    /// Regression (found by the simulator, seed 2139): an audit answer of a supplier that was just replaced arrived
    /// before the state learned of its replacement; the firing request it caused was later carried out against the
    /// new, honest supplier at that position. A request now names the supplier it is about.
    #[test]
    fn a_late_wrong_audit_of_a_replaced_supplier_does_not_fire_its_successor() {
        let mut m = Maintenance::new(POLICY, 0);
        let (liar, honest) = (peer(), peer());
        m.handle(Input::Suppliers(vec![(0, liar)]), 0);
        let wrong = || AuditOutcome::Wrong("proof does not verify".into());
        let out = m.handle(Input::AuditDone { position: 0, peer: liar, outcome: wrong() }, 100);
        assert!(out.contains(&Action::Replace {
            position: 0,
            old: Some(liar),
            reason: "answered an audit with wrong data".into()
        }));
        // the liar keeps answering heartbeats (which lets its connection ask again) ...
        m.handle(
            Input::HeartbeatDone {
                position: 0,
                peer: liar,
                answer: HeartbeatAnswer::Alive { used_bytes: 0, fragments: 0 },
            },
            200,
        );
        // ... the replacement is hired ...
        m.handle(Input::ReplaceDone { position: 0, result: Ok(honest) }, 300);
        // ... and one more wrong answer of the liar arrives before the state has read the new supplier list
        let out = m.handle(Input::AuditDone { position: 0, peer: liar, outcome: wrong() }, 350);
        m.handle(Input::Suppliers(vec![(0, honest)]), 400);
        let mut later = out;
        for t in (500..10_000).step_by(500) {
            later.extend(m.handle(Input::Tick, t));
        }
        for a in &later {
            if let Action::Replace { old, .. } = a {
                assert_ne!(*old, Some(honest), "the honest successor is never the one fired: {later:?}");
            }
        }
    }

    #[test]
    fn queued_work_runs_one_rebuild_at_a_time_avoiding_down_positions() {
        let mut m = Maintenance::new(POLICY, 0);
        let (a, b) = (peer(), peer());
        m.handle(Input::Suppliers(vec![(0, a), (1, b)]), 0);
        // b never answers: offline after 6 s
        m.handle(
            Input::HeartbeatDone {
                position: 0,
                peer: a,
                answer: HeartbeatAnswer::Alive { used_bytes: 0, fragments: 0 },
            },
            10,
        );
        for t in (500..=6_500).step_by(500) {
            m.handle(Input::HeartbeatDone { position: 1, peer: b, answer: HeartbeatAnswer::Failed("down".into()) }, t);
            m.handle(
                Input::HeartbeatDone {
                    position: 0,
                    peer: a,
                    answer: HeartbeatAnswer::Alive { used_bytes: 0, fragments: 0 },
                },
                t,
            );
        }
        assert_eq!(m.down_positions(), vec![1]);
        let out = m.handle(Input::Queued(3), 7_000);
        assert_eq!(out.iter().filter(|x| matches!(x, Action::Rebuild { .. })).count(), 1);
        assert!(out.contains(&Action::Rebuild { down: vec![(1, b)] }), "{out:?}");
        assert!(!m.handle(Input::Tick, 7_100).iter().any(|x| matches!(x, Action::Rebuild { .. })), "one at a time");
        let out = m.handle(Input::RebuildDone(Ok(Some(RebuildStats { fragments: 2, ..Default::default() }))), 7_200);
        assert!(out.iter().any(|x| matches!(x, Action::Rebuild { .. })), "more queued: next run {out:?}");
    }

    /// A driver that wakes only at the deadlines (what the durability simulator does) sees the same firing, at the
    /// same moment, as one that ticks every 100 ms; one that skips heartbeat wakes too.
    #[test]
    fn waking_at_the_deadlines_is_ticking_every_moment() {
        let (a, b) = (peer(), peer());
        // a answers until 4 s and never again; b always answers; the customer wakes as `next` says, to 40 s
        let run = |next: &dyn Fn(&Maintenance, u64) -> u64| {
            let mut m = Maintenance::new(POLICY, 0);
            let mut fired = Vec::new();
            let mut audits = 0;
            let mut now = 0;
            let mut input = Input::Suppliers(vec![(0, a), (1, b)]);
            while now <= 40_000 {
                let mut todo = m.handle(input, now);
                while let Some(action) = todo.pop() {
                    let answer = match action {
                        Action::Heartbeat { position, peer } => {
                            let up = peer == b || now <= 4_000;
                            let answer = if up {
                                HeartbeatAnswer::Alive { used_bytes: 1, fragments: 1 }
                            } else {
                                HeartbeatAnswer::Failed("down".into())
                            };
                            Input::HeartbeatDone { position, peer, answer }
                        }
                        Action::Audit { position, peer } => {
                            audits += 1;
                            Input::AuditDone { position, peer, outcome: AuditOutcome::Passed }
                        }
                        Action::Replace { position, old, .. } => {
                            fired.push((now, position, old));
                            continue;
                        }
                        _ => continue,
                    };
                    todo.extend(m.handle(answer, now));
                }
                now = next(&m, now).max(now + 1);
                input = Input::Tick;
            }
            (fired, audits)
        };
        let ticking = run(&|_, now| now + 100);
        assert_eq!(ticking.0, vec![(19_000, 0, Some(a))], "fired fire-after past its last answer");
        let waking = run(&|m, _| m.deadlines().earliest().unwrap_or(u64::MAX));
        assert_eq!(waking, ticking);
        // without heartbeat wakes (a simulator's driver): a's last answer is at the wake before it went down, here 0
        // s, so the down event itself must be a wake: 4 s is one
        let sparse = run(&|m, now| {
            let d = m.deadlines();
            [d.timers, d.audit, (now < 4_000).then_some(4_000)].into_iter().flatten().min().unwrap_or(u64::MAX)
        });
        assert_eq!(sparse.0, ticking.0);
        assert!(sparse.1 > 0, "audits still run");
    }

    /// Answers heard together, each at its own time: a supplier heard until 2 s is fired fire-after past 2 s, not
    /// past the moment the batch came in; the timers do not run between the answers (a supplier silent since 0
    /// and heard at 30 s in the same batch is not fired).
    #[test]
    fn answers_heard_together_count_at_their_own_times() {
        let (a, b) = (peer(), peer());
        let mut m = Maintenance::new(POLICY, 0);
        m.handle(Input::Suppliers(vec![(0, a), (1, b)]), 0);
        let alive = HeartbeatAnswer::Alive { used_bytes: 1, fragments: 1 };
        let heard = |position, peer, at_ms| Heard { position, peer, answer: alive.clone(), at_ms };
        let out = m.handle(Input::Heard(vec![heard(1, b, 30_000), heard(0, a, 2_000)]), 30_000);
        assert!(!out.iter().any(|x| matches!(x, Action::Replace { .. })), "{out:?}");
        // the timers ran once, after the batch: a, silent since 2 s, is suspect; its next deadline is offline-after
        assert_eq!(m.connections()[&0].fsm.last_seen_ms, Some(2_000));
        assert_eq!(m.connections()[&0].fsm.state, conn_fsm::State::Suspect);
        assert_eq!(m.connections()[&0].fsm.next_deadline(), Some(2_000 + POLICY.timings.offline_after_ms));
        assert_eq!(m.connections()[&1].fsm.state, conn_fsm::State::Connected);
        let out = m.handle(Input::Heard(vec![heard(1, b, 30_001)]), 30_001);
        assert_eq!(m.connections()[&0].fsm.state, conn_fsm::State::Offline);
        assert!(out.iter().any(|x| matches!(x, Action::Replace { position: 0, .. })), "silent 28 s > 15 s: {out:?}");
    }
}
