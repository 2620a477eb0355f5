//! A deterministic simulator of a customer's maintenance (the model is iroh-gossip's `proto/sim.rs`): the pure
//! [`Maintenance`] state is driven by a seeded random world of suppliers that die, restart, flap, answer
//! slowly, lose fragments, refuse service or lie in audits, while the customer itself restarts now and then.
//! Everything runs on a virtual clock, so a scenario of many simulated minutes takes microseconds and the same
//! seed replays the same run. The invariants are checked after every step:
//!
//! 1. no position is left with a dead or refusing supplier longer than the policy allows;
//! 2. nobody is fired during a short outage (a restart, a flapping link);
//! 3. a supplier that answers audits with wrong data, or whose store fails every audit with an error while its
//!    heartbeats say alive, is fired in bounded time;
//! 4. no block is reported full while one of its fragments is known to be missing;
//! 5. at the end, every fragment known to be missing is back where its block can be rebuilt.
//!
//! `cargo test -p bitdust-storage maintenance::sim` runs [`SCENARIOS`] seeds (`BITDUST_SIM_SCENARIOS=N` runs N, for
//! a soak); a failing seed is printed with the end of its trace, and `BITDUST_SIM_SEED=N` replays that one seed
//! with its whole trace.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use bitdust_core::keys::NodeKeys;
use bitdust_core::PeerId;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{backoff_ms, Action, AuditOutcome, BlockRef, HeartbeatAnswer, Input, Maintenance, Policy, RebuildStats};
use crate::proto::automata::supplier_connection::Timings;
use crate::proto::erasure::Layout;
use crate::proto::rebuild::{assess, unavailable_positions, BlockHealth};

/// Scenarios `cargo test` runs.
const SCENARIOS: u64 = 600;
/// More steps than a scenario can take unless something loops without time passing.
const MAX_STEPS: usize = 400_000;
/// Simulated time per scenario: every fault that is not a short outage comes before [`FAULTS_UNTIL_MS`], and
/// the rest is long enough for the worst replacement bound (10 positions, failed hires) to pass after the last.
const DURATION_MS: u64 = 400_000;
/// The last time a supplier is lost, starts lying or refusing, or loses fragments.
const FAULTS_UNTIL_MS: u64 = 160_000;
/// How long a position must have been stable (its supplier up, not replaced, the customer not restarting) for
/// the end-of-run check to expect its known-missing fragments back.
const SETTLE_MS: u64 = 20_000;
/// The actor's tick (as the service's: half a heartbeat period, at least 100 ms).
const TICK_MS: u64 = 500;
/// Longest time a request to a dead supplier takes to fail (the service's heartbeat timeout for these timings).
const TIMEOUT_MS: u64 = 1_000;
/// Slowest answer of a live supplier.
const MAX_LATENCY_MS: u64 = 1_500;
/// Longest time a hire takes (DHT lookup, contract).
const MAX_HIRE_MS: u64 = 3_000;
/// A hire fails at most this many times in a row (the DHT finds no candidate); then one succeeds.
const MAX_HIRE_FAILURES: u32 = 2;
/// Blocks a rebuild run takes from the queue (the service's `blocks_in_flight`).
const BLOCKS_PER_RUN: usize = 4;
/// The devnet's policy, which the suite of faults below is sized for.
const POLICY: Policy = Policy {
    timings: Timings { heartbeat_ms: 1_000, suspect_after_ms: 3_000, offline_after_ms: 6_000, fire_after_ms: 15_000 },
    cool_down_ms: 2_000,
    audit_interval_ms: 5_000,
    audit_failures_to_fire: 3,
    rebuild_retry_ms: 2_000,
};
/// The longest short outage: silence is measured from the last answer, which can be a heartbeat period plus an
/// answer's latency before the outage starts, and the first answer after it can take a period, a timeout of
/// the heartbeat in flight and a latency; all of that stays below `fire_after` with a tick to spare.
const SHORT_OUTAGE_MAX_MS: u64 = POLICY.timings.fire_after_ms
    - 2 * POLICY.timings.heartbeat_ms
    - TIMEOUT_MS
    - 2 * MAX_LATENCY_MS
    - 2 * TICK_MS
    - 500;

/// One supplier of the simulated world.
#[derive(Debug, Clone)]
struct Supplier {
    peer: PeerId,
    /// Down since (ms); `None` while up.
    down_since: Option<u64>,
    /// Lost for good (a later `Up` of an earlier short outage does not revive it).
    dead: bool,
    /// When it first gives a reason to be fired (lost, lying, refusing); before that, every outage was short.
    bad_from: Option<u64>,
    /// Answers audits with wrong bytes from this time on.
    lies_from: Option<u64>,
    /// Refuses service from this time on (lost our contract).
    refuses_from: Option<u64>,
    /// Its store cannot be read from this time on: every audit gets an error, heartbeats still say alive.
    broken_from: Option<u64>,
    latency_ms: u64,
    /// Blocks of the position it holds.
    fragments: BTreeSet<u64>,
    /// Fired by a replacement the user asked for (allowed whatever its outages).
    replaced_by_hand: bool,
    /// Up since (ms).
    up_since: u64,
}

impl Supplier {
    fn up(&self) -> bool {
        self.down_since.is_none()
    }
    fn lies(&self, now: u64) -> bool {
        self.lies_from.is_some_and(|t| now >= t)
    }
    fn refuses(&self, now: u64) -> bool {
        self.refuses_from.is_some_and(|t| now >= t)
    }
    fn broken(&self, now: u64) -> bool {
        self.broken_from.is_some_and(|t| now >= t)
    }
}

/// What happened in the scenarios (so the note can say what the simulator exercised).
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    replacements: usize,
    failed_hires: usize,
    liars_fired: usize,
    refusers_fired: usize,
    broken_fired: usize,
    dead_fired: usize,
    fragments_rebuilt: u64,
    missing_found: usize,
    restarts: usize,
    short_outages: usize,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.replacements += o.replacements;
        self.failed_hires += o.failed_hires;
        self.liars_fired += o.liars_fired;
        self.refusers_fired += o.refusers_fired;
        self.broken_fired += o.broken_fired;
        self.dead_fired += o.dead_fired;
        self.fragments_rebuilt += o.fragments_rebuilt;
        self.missing_found += o.missing_found;
        self.restarts += o.restarts;
        self.short_outages += o.short_outages;
    }
}

/// Something that happens at a time.
#[derive(Debug, Clone)]
enum Event {
    Tick,
    /// A completion for the state of `epoch` (completions of a state lost in a restart are dropped).
    Deliver {
        epoch: u32,
        input: Input,
    },
    /// A rebuild run starts with the state's list of down suppliers (as the service's executor does).
    RunRebuild {
        epoch: u32,
        down: Vec<(u16, PeerId)>,
    },
    /// A sweep's listing arrives: what the supplier lacks is queued, then `SweepDone` is delivered.
    Swept {
        epoch: u32,
        position: u16,
        peer: PeerId,
    },
    /// A replacement ends (its effects happen now, then `ReplaceDone` is delivered).
    Hired {
        epoch: u32,
        position: u16,
        old: Option<PeerId>,
    },
    /// Supplier `i` goes down (for `for_ms`, or for good).
    Down {
        i: usize,
        for_ms: Option<u64>,
    },
    Up {
        i: usize,
    },
    /// Supplier `i` loses some of its fragments (honest disk damage).
    LoseFragments {
        i: usize,
        blocks: Vec<u64>,
    },
    /// The user replaces the supplier at `position`.
    ReplaceByHand {
        position: u16,
    },
    /// The customer's node restarts: its maintenance state starts afresh; the database (suppliers, queue) stays.
    CustomerRestart,
}

struct World {
    seed: u64,
    rng: StdRng,
    layout: Layout,
    blocks: u64,
    now: u64,
    seq: u64,
    events: BinaryHeap<Reverse<(u64, u64, usize)>>,
    payloads: Vec<Option<Event>>,
    suppliers: Vec<Supplier>,
    /// The customer's database: position → supplier index; fired suppliers; the durable rebuild queue.
    slots: BTreeMap<u16, usize>,
    fired: BTreeSet<usize>,
    /// When each fired supplier was fired.
    fired_at: BTreeMap<usize, u64>,
    queue: BTreeMap<u64, BTreeSet<u16>>,
    /// Per queued block: (next attempt, failed attempts), as the service's durable queue keeps them.
    due: BTreeMap<u64, (u64, u32)>,
    state: Maintenance,
    /// The policy the state runs with (the invariants' bounds are POLICY's).
    policy: Policy,
    epoch: u32,
    last_restart: u64,
    /// Consecutive failed hires.
    hire_failures: u32,
    /// When each position got its current supplier.
    assigned_at: BTreeMap<u16, u64>,
    /// Fragments the state has learned are missing, (block, position), until they are back.
    known_missing: BTreeSet<(u64, u16)>,
    /// Per position, since when some of its blocks are not queued (so its supplier can be audited).
    auditable_since: BTreeMap<u16, u64>,
    /// A broken executor that drops the state's `Enqueue` actions (to show invariant 4 can fail).
    drop_enqueue: bool,
    stats: Stats,
    trace: Vec<String>,
}

const VERSION: [u8; 16] = [1; 16];

impl World {
    fn new(seed: u64) -> Self {
        Self::with_policy(seed, POLICY)
    }

    fn with_policy(seed: u64, policy: Policy) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let n: u16 = [4u16, 5, 6, 7, 10][rng.gen_range(0..5)];
        let k: u16 = rng.gen_range(2..n);
        let layout = Layout::new(k, n).unwrap_or_else(|_| unreachable!("2 <= k < n <= 10"));
        let blocks = rng.gen_range(1..12u64);
        let spares = rng.gen_range(10..14usize);
        let suppliers = (0..n as usize + spares)
            .map(|i| {
                let mut key = [0u8; 32];
                key[..8].copy_from_slice(&seed.to_le_bytes());
                key[8..16].copy_from_slice(&(i as u64).to_le_bytes());
                let peer = NodeKeys::from_seed(key).map(|k| k.peer_id()).unwrap_or_else(|_| unreachable!("any seed"));
                Supplier {
                    peer,
                    down_since: None,
                    dead: false,
                    bad_from: None,
                    lies_from: None,
                    refuses_from: None,
                    broken_from: None,
                    latency_ms: rng.gen_range(5..200),
                    fragments: BTreeSet::new(),
                    replaced_by_hand: false,
                    up_since: 0,
                }
            })
            .collect::<Vec<_>>();
        let mut w = Self {
            seed,
            rng,
            layout,
            blocks,
            now: 0,
            seq: 0,
            events: BinaryHeap::new(),
            payloads: Vec::new(),
            suppliers,
            slots: BTreeMap::new(),
            fired: BTreeSet::new(),
            fired_at: BTreeMap::new(),
            queue: BTreeMap::new(),
            due: BTreeMap::new(),
            state: Maintenance::new(policy, 0),
            policy,
            epoch: 0,
            last_restart: 0,
            hire_failures: 0,
            assigned_at: BTreeMap::new(),
            known_missing: BTreeSet::new(),
            auditable_since: BTreeMap::new(),
            drop_enqueue: false,
            stats: Stats::default(),
            trace: Vec::new(),
        };
        // the backup: position p on supplier p, every fragment stored
        for p in 0..n {
            w.slots.insert(p, p as usize);
            w.assigned_at.insert(p, 0);
            w.suppliers[p as usize].fragments = (0..blocks).collect();
            w.auditable_since.insert(p, 0);
        }
        w.schedule_faults(spares);
        w.at(0, Event::Tick);
        w
    }

    /// The fault schedule: a few of each kind, at random times, never more permanent losses than spares
    /// (so a replacement can always be found).
    fn schedule_faults(&mut self, spares: usize) {
        let total = self.suppliers.len();
        let horizon = FAULTS_UNTIL_MS;
        let kills = self.rng.gen_range(0..spares.min(4));
        for _ in 0..kills {
            let i = self.rng.gen_range(0..total);
            let t = self.rng.gen_range(1_000..horizon);
            self.mark_bad(i, t);
            self.at(t, Event::Down { i, for_ms: None });
        }
        for _ in 0..self.rng.gen_range(0..5) {
            let i = self.rng.gen_range(0..total);
            let t = self.rng.gen_range(1_000..DURATION_MS);
            let d = self.rng.gen_range(500..SHORT_OUTAGE_MAX_MS);
            self.at(t, Event::Down { i, for_ms: Some(d) });
        }
        // flapping links: many short outages in a row
        for _ in 0..self.rng.gen_range(0..3) {
            let i = self.rng.gen_range(0..total);
            let mut t = self.rng.gen_range(1_000..horizon);
            for _ in 0..self.rng.gen_range(2..8) {
                let d = self.rng.gen_range(200..4_000);
                self.at(t, Event::Down { i, for_ms: Some(d) });
                t += d + self.rng.gen_range(3_000..10_000);
            }
        }
        for _ in 0..self.rng.gen_range(0..3) {
            let i = self.rng.gen_range(0..total);
            self.suppliers[i].latency_ms = self.rng.gen_range(500..MAX_LATENCY_MS);
        }
        if self.rng.gen_bool(0.4) {
            let i = self.rng.gen_range(0..total);
            let t = self.rng.gen_range(0..horizon);
            self.suppliers[i].lies_from = Some(t);
            self.mark_bad(i, t);
        }
        if self.rng.gen_bool(0.3) {
            let i = self.rng.gen_range(0..total);
            let t = self.rng.gen_range(1_000..horizon);
            self.suppliers[i].refuses_from = Some(t);
            self.mark_bad(i, t);
        }
        for _ in 0..self.rng.gen_range(0..3) {
            let i = self.rng.gen_range(0..total);
            let lost: Vec<u64> = (0..self.blocks).filter(|_| self.rng.gen_bool(0.5)).collect();
            let t = self.rng.gen_range(1_000..horizon);
            self.at(t, Event::LoseFragments { i, blocks: lost });
        }
        if self.rng.gen_bool(0.2) {
            let position = self.rng.gen_range(0..self.layout.n);
            let t = self.rng.gen_range(1_000..horizon);
            self.at(t, Event::ReplaceByHand { position });
        }
        if self.rng.gen_bool(0.3) {
            let i = self.rng.gen_range(0..total);
            let t = self.rng.gen_range(1_000..horizon);
            self.suppliers[i].broken_from = Some(t);
            self.mark_bad(i, t);
        }
        for _ in 0..self.rng.gen_range(0..3) {
            let t = self.rng.gen_range(1_000..DURATION_MS);
            self.at(t, Event::CustomerRestart);
        }
    }

    fn mark_bad(&mut self, i: usize, t: u64) {
        let s = &mut self.suppliers[i];
        s.bad_from = Some(s.bad_from.map_or(t, |b| b.min(t)));
    }

    fn at(&mut self, time: u64, event: Event) {
        self.seq += 1;
        self.payloads.push(Some(event));
        self.events.push(Reverse((time, self.seq, self.payloads.len() - 1)));
    }

    fn log(&mut self, line: String) {
        self.trace.push(format!("{:>7} ms  {line}", self.now));
    }

    fn slot_list(&self) -> Vec<(u16, PeerId)> {
        self.slots.iter().map(|(p, i)| (*p, self.suppliers[*i].peer)).collect()
    }

    fn index_of(&self, peer: PeerId) -> Option<usize> {
        self.suppliers.iter().position(|s| s.peer == peer)
    }

    fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Queues `(b, p)`: the block is due at once (as `Queue::add`).
    fn enqueue(&mut self, b: u64, p: u16) {
        self.queue.entry(b).or_default().insert(p);
        let attempts = self.due.get(&b).map_or(0, |d| d.1);
        self.due.insert(b, (self.now, attempts));
    }

    /// Feeds the state one input and carries out its actions.
    fn feed(&mut self, input: Input) {
        let actions = self.state.handle(input, self.now);
        for a in actions {
            self.act(a);
        }
    }

    /// The executor: what the service's actor does for each action, with the world's answers and delays.
    fn act(&mut self, action: Action) {
        let epoch = self.epoch;
        match action {
            Action::Heartbeat { position, peer } => {
                let Some(i) = self.index_of(peer) else { return };
                let s = &self.suppliers[i];
                let (delay, answer) = if !s.up() {
                    (TIMEOUT_MS, HeartbeatAnswer::Failed("timed out".into()))
                } else if s.refuses(self.now) {
                    (s.latency_ms, HeartbeatAnswer::Refused("no contract".into()))
                } else {
                    let n = s.fragments.len() as u64;
                    (s.latency_ms, HeartbeatAnswer::Alive { used_bytes: n * 1000, fragments: n })
                };
                self.at(
                    self.now + delay,
                    Event::Deliver { epoch, input: Input::HeartbeatDone { position, peer, answer } },
                );
            }
            Action::Audit { position, peer } => {
                let Some(i) = self.index_of(peer) else { return };
                let queued: BTreeSet<u64> =
                    self.queue.iter().filter(|(_, ps)| ps.contains(&position)).map(|(b, _)| *b).collect();
                let candidates: Vec<u64> = (0..self.blocks).filter(|b| !queued.contains(b)).collect();
                let s = &self.suppliers[i];
                let (delay, outcome) = if candidates.is_empty() {
                    (0, AuditOutcome::Nothing)
                } else if !s.up() {
                    (TIMEOUT_MS, AuditOutcome::Unreachable("timed out".into()))
                } else {
                    let block = candidates[self.rng.gen_range(0..candidates.len())];
                    let outcome = if s.lies(self.now) {
                        AuditOutcome::Wrong("proof does not verify".into())
                    } else if s.broken(self.now) {
                        AuditOutcome::Failed("Internal: store I/O: not a directory".into())
                    } else if !s.fragments.contains(&block) {
                        AuditOutcome::Missing(BlockRef { version_id: VERSION, block })
                    } else {
                        AuditOutcome::Passed
                    };
                    (s.latency_ms, outcome)
                };
                self.at(
                    self.now + delay,
                    Event::Deliver { epoch, input: Input::AuditDone { position, peer, outcome } },
                );
            }
            Action::Enqueue { block, position } => {
                if !self.drop_enqueue {
                    self.enqueue(block.block, position);
                }
            }
            Action::Sweep { position, peer } => {
                // listing a supplier's fragments takes a round trip: the queueing happens when it ends
                let delay = self.index_of(peer).map_or(0, |i| self.suppliers[i].latency_ms) + 100;
                self.at(self.now + delay, Event::Swept { epoch, position, peer });
            }
            Action::Replace { position, old, reason } => {
                let old_i = old.and_then(|o| self.index_of(o));
                self.log(format!("replace position {position}, supplier {old_i:?} ({reason})"));
                let delay = self.rng.gen_range(100..MAX_HIRE_MS);
                self.at(self.now + delay, Event::Hired { epoch, position, old });
            }
            Action::Rebuild { down } => {
                // the run starts a moment later (the list of down suppliers may be stale by then)
                let delay = self.rng.gen_range(0..300);
                self.at(self.now + delay, Event::RunRebuild { epoch, down });
            }
        }
    }

    /// The rebuild executor: the first queued blocks, each regenerated onto its current suppliers from k others
    /// that are up, honest and hold their fragment (a liar's fragment fails its hash and is queued in turn).
    fn rebuild(&mut self, down: &[u16]) -> Result<Option<RebuildStats>, String> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        // the due blocks, earliest first (the service's `rebuild_due` index)
        let mut due: Vec<(u64, u64)> =
            self.queue.keys().filter_map(|b| self.due.get(b).filter(|d| d.0 <= self.now).map(|d| (d.0, *b))).collect();
        due.sort_unstable();
        let batch: Vec<u64> = due.into_iter().take(BLOCKS_PER_RUN).map(|(_, b)| b).collect();
        if batch.is_empty() {
            return Err(format!("{} queued blocks wait for their next attempt", self.queue.len()));
        }
        let mut stats = RebuildStats::default();
        let mut errors = Vec::new();
        for b in batch {
            let positions = self.queue.get(&b).cloned().unwrap_or_default();
            let targets: Vec<u16> = positions.iter().copied().filter(|p| !down.contains(p)).collect();
            if targets.is_empty() {
                errors.push(format!("block {b} waits for replacements"));
                self.retry(b, false);
                continue;
            }
            let mut sources = 0u16;
            let mut newly_missing = Vec::new();
            for p in (0..self.layout.n).filter(|p| !positions.contains(p) && !down.contains(p)) {
                let Some(&i) = self.slots.get(&p) else { continue };
                let s = &self.suppliers[i];
                if !s.up() {
                    continue;
                }
                if s.lies(self.now) || !s.fragments.contains(&b) {
                    newly_missing.push(p);
                    continue;
                }
                sources += 1;
            }
            for p in newly_missing {
                self.enqueue(b, p);
                self.known_missing.insert((b, p));
            }
            if sources < self.layout.k {
                errors.push(format!("block {b}: {sources} of {} sources", self.layout.k));
                self.retry(b, true);
                continue;
            }
            let mut failed = false;
            for p in targets {
                let Some(&i) = self.slots.get(&p) else { continue };
                if self.suppliers[i].up() && !self.suppliers[i].refuses(self.now) {
                    self.suppliers[i].fragments.insert(b);
                    stats.fragments += 1;
                    self.stats.fragments_rebuilt += 1;
                    if let Some(ps) = self.queue.get_mut(&b) {
                        ps.remove(&p);
                    }
                    self.known_missing.remove(&(b, p));
                } else {
                    errors.push(format!("block {b}: position {p} unreachable"));
                    failed = true;
                }
            }
            if self.queue.get(&b).is_some_and(BTreeSet::is_empty) {
                self.queue.remove(&b);
                self.due.remove(&b);
            } else if failed {
                self.retry(b, true);
            }
        }
        if stats.fragments == 0 && !errors.is_empty() {
            return Err(errors.join("; "));
        }
        Ok(Some(stats))
    }

    /// A queued block's attempt did not finish it: a failure backs off, waiting for a target retries after the
    /// base delay (as `Queue::finish`).
    fn retry(&mut self, b: u64, failure: bool) {
        let (_, attempts) = self.due.get(&b).copied().unwrap_or((self.now, 0));
        let next = if failure {
            (self.now + backoff_ms(self.policy.rebuild_retry_ms, attempts + 1), attempts + 1)
        } else {
            (self.now + self.policy.rebuild_retry_ms, attempts)
        };
        self.due.insert(b, next);
    }

    /// A replacement ends: fire the old supplier, hire a candidate (up, holding no position, never fired),
    /// queue every block of the position, or fail.
    fn hired(&mut self, position: u16, old: Option<PeerId>) -> Result<PeerId, String> {
        // compare-and-swap, as the service's `replace_supplier`: the accused is already gone
        let current = self.slots.get(&position).copied();
        if let (Some(o), Some(c)) = (old, current) {
            if self.suppliers[c].peer != o {
                return Ok(self.suppliers[c].peer);
            }
        }
        let fail = self.hire_failures < MAX_HIRE_FAILURES && self.rng.gen_bool(0.25);
        let holding: BTreeSet<usize> = self.slots.values().copied().collect();
        // a supplier that refuses service refuses the contract too
        let candidates: Vec<usize> = (0..self.suppliers.len())
            .filter(|i| !holding.contains(i) && !self.fired.contains(i))
            .filter(|i| self.suppliers[*i].up() && !self.suppliers[*i].refuses(self.now))
            .collect();
        if fail || candidates.is_empty() {
            self.hire_failures += 1;
            self.stats.failed_hires += 1;
            return Err("no candidate in the DHT".into());
        }
        self.hire_failures = 0;
        self.stats.replacements += 1;
        let new = candidates[self.rng.gen_range(0..candidates.len())];
        if let Some(o) = old.and_then(|o| self.index_of(o)) {
            self.fired.insert(o);
            self.fired_at.insert(o, self.now);
            let s = &self.suppliers[o];
            if s.lies(self.now) {
                self.stats.liars_fired += 1;
            } else if s.refuses(self.now) {
                self.stats.refusers_fired += 1;
            } else if s.broken(self.now) {
                self.stats.broken_fired += 1;
            } else if !s.up() {
                self.stats.dead_fired += 1;
            }
        }
        self.slots.insert(position, new);
        self.assigned_at.insert(position, self.now);
        self.suppliers[new].fragments.clear();
        for b in 0..self.blocks {
            self.enqueue(b, position);
            self.known_missing.insert((b, position));
        }
        Ok(self.suppliers[new].peer)
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((time, _, idx))) = self.events.pop() else { return false };
        // every input runs the automata's timers, so answers keep coming: the scenario ends at its duration
        if time > DURATION_MS {
            return false;
        }
        let Some(event) = self.payloads[idx].take() else { return true };
        self.now = time;
        match event {
            Event::Tick => {
                // the actor reads the database before each step, as the service's does
                let slots = self.slot_list();
                self.feed(Input::Suppliers(slots));
                let queued = self.queue_len();
                self.feed(Input::Queued(queued));
                self.feed(Input::Tick);
                if self.now + TICK_MS <= DURATION_MS {
                    self.at(self.now + TICK_MS, Event::Tick);
                }
            }
            Event::Deliver { epoch, input } => {
                if epoch == self.epoch {
                    if let Input::AuditDone { position, peer, outcome: outcome @ AuditOutcome::Wrong(_) } = &input {
                        let i = self.index_of(*peer);
                        self.log(format!("audit of supplier {i:?} at position {position}: {outcome:?}"));
                    }
                    // the state now knows of the missing fragment (if the supplier still holds the position)
                    if let Input::AuditDone { position, peer, outcome: AuditOutcome::Missing(b) } = &input {
                        let holder = self.slots.get(position).copied();
                        if holder.is_some() && holder == self.index_of(*peer) {
                            self.known_missing.insert((b.block, *position));
                            self.stats.missing_found += 1;
                        }
                    }
                    self.feed(input);
                }
            }
            Event::RunRebuild { epoch, down } => {
                if epoch == self.epoch {
                    // a position is down only while the down supplier still holds it
                    let down: Vec<u16> = down
                        .iter()
                        .filter(|(p, peer)| self.slots.get(p).is_some_and(|&i| self.suppliers[i].peer == *peer))
                        .map(|(p, _)| *p)
                        .collect();
                    let result = self.rebuild(&down);
                    let delay = self.rng.gen_range(50..1_000);
                    self.at(self.now + delay, Event::Deliver { epoch, input: Input::RebuildDone(result) });
                }
            }
            Event::Swept { epoch, position, peer } => {
                if epoch == self.epoch {
                    if let Some(i) = self.index_of(peer).filter(|i| self.suppliers[*i].up()) {
                        if self.slots.get(&position) == Some(&i) {
                            let lacking: Vec<u64> =
                                (0..self.blocks).filter(|b| !self.suppliers[i].fragments.contains(b)).collect();
                            for b in lacking {
                                self.enqueue(b, position);
                                self.known_missing.insert((b, position));
                            }
                        }
                    }
                    self.feed(Input::SweepDone { position });
                }
            }
            Event::Hired { epoch, position, old } => {
                if epoch == self.epoch {
                    let result = self.hired(position, old);
                    let new_i = self.slots.get(&position).copied();
                    self.log(format!("hire at {position}: {result:?} (now supplier {new_i:?})"));
                    self.feed(Input::ReplaceDone { position, result });
                }
            }
            Event::Down { i, for_ms } => {
                if for_ms.is_none() {
                    // lost for good, even in the middle of a short outage
                    self.suppliers[i].dead = true;
                    self.log(format!("supplier {i} lost"));
                }
                if self.suppliers[i].up() {
                    self.suppliers[i].down_since = Some(self.now);
                    self.log(format!("supplier {i} down for {for_ms:?}"));
                    self.stats.short_outages += usize::from(for_ms.is_some());
                    if let Some(d) = for_ms {
                        self.at(self.now + d, Event::Up { i });
                    }
                }
            }
            Event::Up { i } if self.suppliers[i].dead => {}
            Event::Up { i } => {
                self.suppliers[i].down_since = None;
                self.suppliers[i].up_since = self.now;
                self.log(format!("supplier {i} up"));
            }
            Event::LoseFragments { i, blocks } => {
                for b in &blocks {
                    self.suppliers[i].fragments.remove(b);
                }
                self.log(format!("supplier {i} lost blocks {blocks:?}"));
            }
            Event::ReplaceByHand { position } => {
                if let Some(&i) = self.slots.get(&position) {
                    self.suppliers[i].replaced_by_hand = true;
                }
                self.log(format!("user replaces position {position}"));
                self.feed(Input::ReplaceRequested { position, reason: "replaced by hand".into() });
            }
            Event::CustomerRestart => {
                self.log("customer restarts".into());
                self.stats.restarts += 1;
                self.epoch += 1;
                self.last_restart = self.now;
                self.state = Maintenance::new(self.policy, self.now);
            }
        }
        for p in 0..self.layout.n {
            let fully_queued = self.queue.values().filter(|ps| ps.contains(&p)).count() as u64 == self.blocks;
            match (fully_queued, self.auditable_since.contains_key(&p)) {
                (true, true) => {
                    self.auditable_since.remove(&p);
                }
                (false, false) => {
                    self.auditable_since.insert(p, self.now);
                }
                _ => {}
            }
        }
        true
    }

    /// Longest time a position may wait for its replacement once the replacement is due: a tick to notice,
    /// then, in the worst case, every other position's replacement and the failed hires before it, each a hire
    /// and a cool-down.
    fn replacement_bound(&self) -> u64 {
        let per = MAX_HIRE_MS + POLICY.cool_down_ms + 2 * TICK_MS;
        2 * TICK_MS + (u64::from(self.layout.n) * u64::from(MAX_HIRE_FAILURES + 1) + 1) * per
    }

    fn check(&self) -> Result<(), String> {
        let bound = self.replacement_bound();
        for (&p, &i) in &self.slots {
            let s = &self.suppliers[i];
            let since = self.assigned_at.get(&p).copied().unwrap_or(0).max(self.last_restart);
            // 1. a dead supplier is replaced in time
            if let Some(down) = s.down_since.filter(|_| s.dead) {
                let due = down.max(since) + POLICY.timings.fire_after_ms + POLICY.timings.heartbeat_ms;
                if self.now > due + bound {
                    return Err(format!("position {p}: supplier {i} down since {down} ms is still hired"));
                }
            }
            // ... and so is one that refuses service
            if let Some(r) = s.refuses_from.filter(|t| *t <= self.now && s.up()) {
                let due = r.max(since).max(s.up_since) + POLICY.timings.heartbeat_ms + MAX_LATENCY_MS + TIMEOUT_MS;
                if self.now > due + bound {
                    return Err(format!("position {p}: supplier {i} refuses service since {r} ms and is still hired"));
                }
            }
            // 3. a liar is fired once it can be audited (up, connected, holding data that is not all queued)
            if let (Some(l), Some(&auditable)) = (s.lies_from.filter(|t| *t <= self.now), self.auditable_since.get(&p))
            {
                let start = l.max(since).max(s.up_since).max(auditable);
                let due = start + POLICY.timings.heartbeat_ms + 2 * MAX_LATENCY_MS + POLICY.audit_interval_ms;
                if s.up() && self.now > due + bound {
                    return Err(format!("position {p}: supplier {i} lies in audits since {l} ms and is still hired"));
                }
            }
            // ... and so is one whose audits all fail with errors (once it can be audited), after the policy's
            // failures in a row
            if let (Some(b), Some(&auditable)) =
                (s.broken_from.filter(|t| *t <= self.now), self.auditable_since.get(&p))
            {
                let start = b.max(since).max(s.up_since).max(auditable);
                let audits = u64::from(POLICY.audit_failures_to_fire);
                let due = start
                    + POLICY.timings.heartbeat_ms
                    + (audits + 1) * (POLICY.audit_interval_ms + MAX_LATENCY_MS + TICK_MS);
                if s.up() && self.now > due + bound {
                    return Err(format!(
                        "position {p}: supplier {i} fails every audit since {b} ms and is still hired"
                    ));
                }
            }
        }
        // 2. nobody fired before it gave a reason (its outages until then were all short)
        for (&i, &at) in &self.fired_at {
            let s = &self.suppliers[i];
            if !s.replaced_by_hand && s.bad_from.is_none_or(|b| at < b) {
                return Err(format!(
                    "supplier {i} was fired at {at} ms although its outages until then were all short"
                ));
            }
        }
        // 4. no block reported full while a fragment of it is known missing
        let down = self.state.down_positions();
        let held: Vec<u16> = self.slots.keys().copied().collect();
        for &(b, p) in &self.known_missing {
            let queued: Vec<u16> = self.queue.get(&b).map(|s| s.iter().copied().collect()).unwrap_or_default();
            let unavailable = unavailable_positions(self.layout, &down, &held, &queued);
            if assess(self.layout, &unavailable) == BlockHealth::Full {
                return Err(format!("block {b} reported full while its fragment at position {p} is known missing"));
            }
        }
        Ok(())
    }

    /// Invariant 5, at the end, long after the last fault: every fragment the state learned was missing is back,
    /// where its block can be rebuilt (k good fragments left) and its position has been stable for a while.
    fn check_end(&self) -> Result<(), String> {
        let good = |b: u64, p: u16| {
            self.slots.get(&p).is_some_and(|&i| {
                let s = &self.suppliers[i];
                s.up() && !s.lies(self.now) && !s.refuses(self.now) && s.fragments.contains(&b)
            })
        };
        for &(b, p) in &self.known_missing {
            let Some(&i) = self.slots.get(&p) else { continue };
            let s = &self.suppliers[i];
            let stable = self.now.saturating_sub(s.up_since.max(self.assigned_at.get(&p).copied().unwrap_or(0)))
                > SETTLE_MS
                && self.now.saturating_sub(self.last_restart) > SETTLE_MS;
            let rebuildable = (0..self.layout.n).filter(|q| good(b, *q)).count() >= usize::from(self.layout.k);
            if s.up() && !s.lies(self.now) && !s.refuses(self.now) && stable && rebuildable && !good(b, p) {
                return Err(format!(
                    "block {b} at position {p} is still missing at the end (queued: {:?}; rebuild {:?}, {:?}; down {:?})",
                    self.queue.get(&b),
                    self.state.rebuild().state,
                    self.state.rebuild().blocked,
                    self.state.down_positions()
                ));
            }
        }
        Ok(())
    }

    fn run(mut self) -> Result<(usize, Stats), (String, Vec<String>)> {
        let mut steps = 0;
        while self.step() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err((format!("seed {}: runaway: {steps} steps by {} ms", self.seed, self.now), self.trace));
            }
            if let Err(e) = self.check() {
                return Err((format!("seed {}: {e}", self.seed), self.trace));
            }
        }
        if let Err(e) = self.check_end() {
            return Err((format!("seed {}: {e}", self.seed), self.trace));
        }
        Ok((steps, self.stats))
    }
}

/// Runs one seed; on failure, the error and the trace.
fn run_seed(seed: u64) -> Result<(usize, Stats), (String, Vec<String>)> {
    World::new(seed).run()
}

#[test]
fn maintenance_holds_its_invariants_in_seeded_scenarios() {
    if let Some(seed) = std::env::var("BITDUST_SIM_SEED").ok().and_then(|s| s.parse::<u64>().ok()) {
        match run_seed(seed) {
            Ok((steps, stats)) => println!("seed {seed}: {steps} steps, every invariant held; {stats:?}"),
            Err((e, trace)) => panic!("{e}\n{}", trace.join("\n")),
        }
        return;
    }
    // a soak run: BITDUST_SIM_SCENARIOS=100000 (seeds from 0)
    let scenarios =
        std::env::var("BITDUST_SIM_SCENARIOS").ok().and_then(|s| s.parse::<u64>().ok()).unwrap_or(SCENARIOS);
    let started = std::time::Instant::now();
    let mut steps = 0;
    let mut total = Stats::default();
    for seed in 0..scenarios {
        match run_seed(seed) {
            Ok((n, stats)) => {
                steps += n;
                total.add(&stats);
            }
            Err((e, trace)) => {
                let tail = trace.len().saturating_sub(40);
                panic!(
                    "{e}\nreplay: BITDUST_SIM_SEED={seed} cargo test -p bitdust-storage maintenance_holds\n...\n{}",
                    trace[tail..].join("\n")
                );
            }
        }
    }
    println!("{scenarios} scenarios, {steps} steps in {:.2} s; {total:?}", started.elapsed().as_secs_f64());
    // the scenarios exercise what the invariants are about
    assert!(
        total.dead_fired > 0 && total.liars_fired > 0 && total.refusers_fired > 0 && total.broken_fired > 0,
        "{total:?}"
    );
    assert!(total.failed_hires > 0 && total.missing_found > 0 && total.restarts > 0 && total.short_outages > 0);
}

/// The simulator itself can fail: a maintenance that never fires anyone breaks invariant 1 for some seed with a
/// permanent loss.
#[test]
fn the_simulator_catches_a_maintenance_that_never_fires() {
    let never = Policy { timings: Timings { fire_after_ms: u64::MAX / 4, ..POLICY.timings }, ..POLICY };
    let caught = (0..50).filter(|seed| World::with_policy(*seed, never).run().is_err()).count();
    assert!(caught > 0, "no seed of 50 noticed that nobody is ever replaced");
}

/// ... a maintenance that fires after a short silence breaks invariant 2 ...
#[test]
fn the_simulator_catches_firing_during_short_outages() {
    let hasty =
        Policy { timings: Timings { offline_after_ms: 1_500, fire_after_ms: 2_000, ..POLICY.timings }, ..POLICY };
    let caught = (0..50)
        .filter_map(|seed| World::with_policy(seed, hasty).run().err())
        .filter(|(e, _)| e.contains("were all short"))
        .count();
    assert!(caught > 0, "no seed of 50 noticed firings during short outages");
}

/// ... one that never audits lets liars stay (invariant 3) ...
#[test]
fn the_simulator_catches_a_maintenance_that_never_audits() {
    let blind = Policy { audit_interval_ms: u64::MAX / 4, ..POLICY };
    let caught = (0..100)
        .filter_map(|seed| World::with_policy(seed, blind).run().err())
        .filter(|(e, _)| e.contains("lies in audits"))
        .count();
    assert!(caught > 0, "no seed of 100 noticed a liar that is never audited");
}

/// ... and an executor that loses the state's queue entries reports blocks full that are not (invariant 4).
#[test]
fn the_simulator_catches_missing_fragments_reported_full() {
    let caught = (0..100)
        .filter_map(|seed| {
            let mut w = World::new(seed);
            w.drop_enqueue = true;
            w.run().err()
        })
        .filter(|(e, _)| e.contains("known missing"))
        .count();
    assert!(caught > 0, "no seed of 100 noticed a lost queue entry");
}
