//! `bitdust-lab churn`: the event-driven tier of the durability study (issue 19, part 2). A population of nodes
//! comes and goes (sessions, permanent departures, disk losses, correlated departures); customers store their
//! data on n of them and keep it whole with the project's real maintenance state
//! ([`bitdust_storage::proto::maintenance::Maintenance`], fed and answered as the service's actor does, only
//! sparsely: see below). What it measures, per layout and policy: how often a position loses its data, the time
//! from that loss to full redundancy again (E\[R\], customer offline time included), the repair traffic, the
//! false firings, and the losses themselves where they are frequent enough to count. The chain of
//! [`crate::durability`] then takes the measured rates down to 1e-9 and below; runs at inflated churn, where
//! losses happen often, check the two tiers against each other.
//!
//! The driver wakes a customer only when its state needs time ([`Maintenance::deadlines`]: silences of suppliers
//! that are down, cool-downs, rebuild retries, and audits while a supplier silently lacks data) or when one of its
//! actions completes. At each wake every supplier's heartbeat is answered at once ([`Input::Heard`]): a supplier
//! that is up answers now, one that went down since the last wake is said to have answered until it went down.
//! Between wakes nothing changes for a supplier that stays up (its heartbeats would all be answered), so the
//! transitions are those of a customer that ticks every second (the unit test
//! `waking_at_the_deadlines_is_ticking_every_moment` checks this equivalence on the state itself).
//!
//! The world, simplified where the study allows:
//! - a customer's data is `units` equal parts (a unit stands for many 4 MiB blocks); every position holds a prefix
//!   of them: the original suppliers all of it, a replacement what the rebuild put there so far (units are rebuilt
//!   in order, every position missing a unit at once, as `plan_block` does). Data is lost when fewer than k
//!   positions hold the last unit: fewer than k whole positions on suppliers that still exist (offline suppliers
//!   still hold their data);
//! - a rebuild run regenerates one unit: k sources upload their fragments (each node's uplink is a FIFO, so
//!   rebuilds after a correlated failure queue behind each other), the customer downloads them and uploads the
//!   regenerated fragments through its own uplink;
//! - a hire takes `hire_secs` and picks a random node that is up and not already one of the customer's suppliers;
//! - a customer's own offline periods stop its maintenance (state dropped, silences saved and carried, as the
//!   service does); customers do not leave for good.
//!
//! Session and churn figures are per scenario ([`Scenario`]); their sources are in docs/architecture.md
//! ("Durability").

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use anyhow::{bail, Result};
use bitdust_core::PeerId;
use bitdust_storage::proto::automata::supplier_connection::Timings;
use bitdust_storage::proto::maintenance::{
    Action, AuditOutcome, BlockRef, Heard, HeartbeatAnswer, Input, Maintenance, Policy, RebuildStats,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use serde::Serialize;

const HOUR_MS: f64 = 3_600_000.0;
const YEAR_MS: f64 = 365.25 * 24.0 * HOUR_MS;

/// Up and down periods of one class of node, lognormal (hours; sigma of the log).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sessions {
    /// Median up period, hours.
    pub up_median_h: f64,
    /// Sigma of ln(up period).
    pub up_sigma: f64,
    /// Median down period, hours.
    pub down_median_h: f64,
    /// Sigma of ln(down period).
    pub down_sigma: f64,
}

/// How the population behaves.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Its name.
    pub name: String,
    /// Permanent departures per node per year (the node and its data leave for good).
    pub departures_per_year: f64,
    /// Disk losses per node per year (the node stays, its stored data is gone).
    pub disk_losses_per_year: f64,
    /// Share of nodes that are always on (servers, NAS); the others are desktops.
    pub always_on_share: f64,
    /// Share of customers that are always on; the others are desktops or laptops, whose maintenance stops while
    /// they are off.
    pub customer_always_on_share: f64,
    /// Sessions of always-on nodes.
    pub always_on: Sessions,
    /// Sessions of desktops.
    pub desktop: Sessions,
    /// Correlated departures per year, each taking `shock_share` of all nodes at once for good.
    pub shocks_per_year: f64,
    /// Share of nodes a correlated departure takes.
    pub shock_share: f64,
    /// Median upload speed, Mbit/s (lognormal across nodes, sigma 0.7); download is 4 times that.
    pub upload_mbit: f64,
    /// Seconds to hire a replacement (the lab's measured hiring time is about this on a 1,000-node network).
    pub hire_secs: f64,
    /// Customers hire only always-on nodes (as a selection by observed uptime would): what the policy could do.
    pub hire_always_on: bool,
}

impl Scenario {
    /// A named scenario: `storj` (always-on nodes, departures of about 1% a month), `whitepaper` (the Storj v3
    /// whitepaper's 10% a month), `home` (the whitepaper's departures, half the nodes desktops that sleep at night
    /// and some weekends), `home-picky` (the same, customers hiring only always-on nodes).
    ///
    /// # Errors
    /// An unknown name.
    pub fn named(name: &str) -> Result<Self> {
        // always on: a reboot or an outage about monthly, a median hour down (a long tail past a day)
        let always_on = Sessions { up_median_h: 24.0 * 20.0, up_sigma: 1.0, down_median_h: 1.0, down_sigma: 1.5 };
        // desktops: on for the day, off for the night, some off for a weekend or a holiday
        let desktop = Sessions { up_median_h: 8.0, up_sigma: 0.8, down_median_h: 12.0, down_sigma: 0.8 };
        let base = Self {
            name: name.to_string(),
            departures_per_year: 0.12,
            disk_losses_per_year: 0.0157,
            always_on_share: 1.0,
            customer_always_on_share: 0.5,
            always_on,
            desktop,
            shocks_per_year: 0.0,
            shock_share: 0.1,
            upload_mbit: 20.0,
            hire_secs: 30.0,
            hire_always_on: false,
        };
        Ok(match name {
            "storj" => base,
            "whitepaper" => Self { departures_per_year: 1.2, ..base },
            "home" => Self { departures_per_year: 1.2, always_on_share: 0.5, customer_always_on_share: 0.2, ..base },
            "home-picky" => Self { hire_always_on: true, ..Self::named("home")? },
            _ => bail!("unknown scenario {name:?}: storj, whitepaper, home or home-picky"),
        })
    }
}

/// One run's settings.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Nodes in the population (suppliers are drawn from them).
    pub nodes: usize,
    /// Customers simulated.
    pub customers: usize,
    /// Simulated years.
    pub years: f64,
    /// Data shards.
    pub k: u16,
    /// Total shards.
    pub n: u16,
    /// Plain data per customer, bytes.
    pub data_bytes: u64,
    /// Parts a customer's data is cut into for the rebuild (each stands for many blocks).
    pub units: u32,
    /// Fire a supplier silent this long, hours.
    pub fire_after_h: f64,
    /// Audit interval, hours.
    pub audit_interval_h: f64,
    /// Seed.
    pub seed: u64,
    /// The whole maintenance policy, instead of the internet defaults with `fire_after_h` and `audit_interval_h`
    /// (the check against the in-process network runs the devnet's).
    #[serde(skip)]
    pub policy: Option<Policy>,
    /// Each customer's supplier at position 0 leaves for good at this time (ms), besides the scenario's churn.
    pub scripted_departure_ms: Option<u64>,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Layout, "RS(k, n)".
    pub layout: String,
    /// Stored bytes per byte of data.
    pub overhead: f64,
    /// Fire-after, hours.
    pub fire_after_h: f64,
    /// Audit interval, hours.
    pub audit_interval_h: f64,
    /// Customer-years simulated.
    pub customer_years: f64,
    /// Customers that lost data (each then starts again with its data whole on new suppliers).
    pub losses: u64,
    /// Losses per customer-year.
    pub loss_rate: f64,
    /// Positions that lost their data per position-year, correlated departures left out: the chain's λ.
    pub position_losses_per_year: f64,
    /// Of those, per position-year, the suppliers fired while they still held the data (silent past fire-after, or
    /// failing audits).
    pub false_firings_per_year: f64,
    /// Mean hours from a position losing its data to holding all of it again (the chain's E\[R\]).
    pub repair_mean_h: f64,
    /// Median of the same, hours.
    pub repair_p50_h: f64,
    /// 99th percentile, hours.
    pub repair_p99_h: f64,
    /// Median hours from a supplier leaving for good to its replacement (detection, hysteresis, hiring).
    pub replaced_p50_h: f64,
    /// Repair bytes moved (fetched + sent) per customer per day, MB (every node a customer: per node per day).
    pub repair_mb_per_day: f64,
    /// The chain's yearly loss probability from the measured λ and E\[R\] (and the scenario's correlated failures),
    /// every missing position repaired at once.
    pub chain_loss_per_year: f64,
    /// The same with one position repaired at a time (hire/fire replaces one at a time): the pessimistic bound.
    pub chain_serial_loss_per_year: f64,
    /// The same computed from the measured loss rate (1 - e^-rate); meaningful only with losses counted.
    pub measured_loss_per_year: f64,
    /// Calls of the maintenance state's `handle`.
    pub handle_calls: u64,
    /// Wall seconds.
    pub wall_secs: f64,
}

#[derive(Debug)]
enum Ev {
    NodeUp(u32, u32),
    NodeDown(u32, u32),
    Depart(u32, u32),
    DiskLoss(u32, u32),
    Shock,
    CustomerUp(u32),
    CustomerDown(u32),
    Wake(u32),
    ReplaceDone { c: u32, epoch: u32, position: u16, old: Option<PeerId> },
    RebuildDone { c: u32, epoch: u32, unit: u32, targets: Vec<(u16, u32, u32, u32)>, stats: RebuildStats },
}

struct Node {
    peer: PeerId,
    epoch: u32,
    disk: u32,
    up: bool,
    always_on: bool,
    /// Upload, bytes per ms.
    upload: f64,
    busy_until: f64,
    /// (customer, position) it supplies.
    supplies: Vec<(u32, u16)>,
}

#[derive(Clone)]
struct Slot {
    node: u32,
    peer: PeerId,
    epoch: u32,
    disk: u32,
    /// Units held (a prefix).
    have: u32,
    queued: bool,
    /// The supplier left for good.
    gone: bool,
    /// Since when its supplier is down (it answered until then), while down.
    down_since: Option<u64>,
    /// Since when the position lacks data.
    lacking_since: Option<u64>,
}

struct Customer {
    up: bool,
    always_on: bool,
    epoch: u32,
    upload: f64,
    download: f64,
    busy_until: f64,
    slots: Vec<Slot>,
    state: Option<Maintenance>,
    saved_silence: Vec<(u16, PeerId, u64)>,
    last_wake: u64,
    next_wake: u64,
    /// The queue length the state was last told.
    told_queued: usize,
}

struct World {
    o: Options,
    sc: Scenario,
    policy: Policy,
    rng: StdRng,
    now: u64,
    seq: u64,
    heap: BinaryHeap<Reverse<(u64, u64)>>,
    events: HashMap<u64, Ev>,
    nodes: Vec<Node>,
    customers: Vec<Customer>,
    // measures
    losses: u64,
    position_losses: u64,
    false_firings: u64,
    repairs_h: Vec<f64>,
    replaced_h: Vec<f64>,
    repair_bytes: f64,
    handle_calls: u64,
}

fn lognormal_ms(rng: &mut StdRng, median_h: f64, sigma: f64) -> u64 {
    let d = LogNormal::new(median_h.max(1e-6).ln(), sigma.max(0.0)).map(|d| d.sample(rng)).unwrap_or(median_h);
    (d * HOUR_MS).max(1.0) as u64
}

fn exp_ms(rng: &mut StdRng, per_year: f64) -> Option<u64> {
    let e = Exp::new(per_year).ok()?;
    let t = e.sample(rng) * YEAR_MS;
    (t.is_finite() && t < 1e15).then_some(t as u64)
}

impl World {
    fn new(o: Options, sc: Scenario) -> Result<Self> {
        if o.k == 0 || o.k >= o.n || usize::from(o.n) + 1 > o.nodes || o.units == 0 || o.customers == 0 {
            bail!("need 1 <= k < n < nodes, units >= 1 and customers >= 1");
        }
        let timings = Timings {
            heartbeat_ms: 60_000,
            suspect_after_ms: 180_000,
            offline_after_ms: 600_000,
            fire_after_ms: (o.fire_after_h * HOUR_MS) as u64,
        };
        if timings.fire_after_ms <= timings.offline_after_ms {
            bail!("fire-after must be longer than offline-after (10 minutes)");
        }
        let policy = o.policy.unwrap_or(Policy {
            timings,
            cool_down_ms: 600_000,
            audit_interval_ms: ((o.audit_interval_h * HOUR_MS) as u64).max(60_000),
            audit_failures_to_fire: 3,
            rebuild_retry_ms: 60_000,
        });
        let rng = StdRng::seed_from_u64(o.seed);
        let mut w = Self {
            o,
            sc,
            policy,
            rng,
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            events: HashMap::new(),
            nodes: Vec::new(),
            customers: Vec::new(),
            losses: 0,
            position_losses: 0,
            false_firings: 0,
            repairs_h: Vec::new(),
            replaced_h: Vec::new(),
            repair_bytes: 0.0,
            handle_calls: 0,
        };
        for i in 0..w.o.nodes {
            let node = w.fresh_node(0);
            w.nodes.push(node);
            w.start_node(i as u32);
        }
        for c in 0..w.o.customers {
            let always_on = w.rng.gen_bool(w.sc.customer_always_on_share.clamp(0.0, 1.0));
            let upload = w.upload();
            let mut customer = Customer {
                up: true,
                always_on,
                epoch: 0,
                upload,
                download: upload * 4.0,
                busy_until: 0.0,
                slots: Vec::new(),
                state: None,
                saved_silence: Vec::new(),
                last_wake: 0,
                next_wake: u64::MAX,
                told_queued: 0,
            };
            for _ in 0..w.o.n {
                if let Some(s) = w.pick(&customer.slots, c as u32, true) {
                    customer.slots.push(s);
                }
            }
            w.customers.push(customer);
            w.attach(c as u32);
            w.customer_up(c as u32);
        }
        if let Some(t) = exp_ms(&mut w.rng, w.sc.shocks_per_year) {
            w.at(t, Ev::Shock);
        }
        if let Some(t) = w.o.scripted_departure_ms {
            let first: Vec<(u32, u32)> =
                w.customers.iter().filter_map(|c| c.slots.first()).map(|s| (s.node, s.epoch)).collect();
            for (node, epoch) in first {
                w.at(t, Ev::Depart(node, epoch));
            }
        }
        Ok(w)
    }

    /// Runs every event up to `end_ms`.
    fn run_until(&mut self, end_ms: u64) {
        while let Some(Reverse((t, seq))) = self.heap.pop() {
            if t > end_ms {
                break;
            }
            self.now = t;
            if let Some(ev) = self.events.remove(&seq) {
                self.step(ev);
            }
        }
    }

    fn upload(&mut self) -> f64 {
        let mbit = LogNormal::new(self.sc.upload_mbit.max(0.01).ln(), 0.7).map(|d| d.sample(&mut self.rng));
        mbit.unwrap_or(self.sc.upload_mbit) * 1e6 / 8.0 / 1000.0
    }

    fn fresh_node(&mut self, epoch: u32) -> Node {
        let always_on = self.rng.gen_bool(self.sc.always_on_share.clamp(0.0, 1.0));
        let upload = self.upload();
        Node {
            peer: PeerId::random(),
            epoch,
            disk: 0,
            up: true,
            always_on,
            upload,
            busy_until: 0.0,
            supplies: Vec::new(),
        }
    }

    fn sessions(&self, always_on: bool) -> Sessions {
        if always_on {
            self.sc.always_on
        } else {
            self.sc.desktop
        }
    }

    fn start_node(&mut self, i: u32) {
        let (epoch, s) = {
            let n = &self.nodes[i as usize];
            (n.epoch, self.sessions(n.always_on))
        };
        let up = lognormal_ms(&mut self.rng, s.up_median_h, s.up_sigma);
        self.at(self.now + up, Ev::NodeDown(i, epoch));
        if let Some(t) = exp_ms(&mut self.rng, self.sc.departures_per_year) {
            self.at(self.now + t, Ev::Depart(i, epoch));
        }
        if let Some(t) = exp_ms(&mut self.rng, self.sc.disk_losses_per_year) {
            self.at(self.now + t, Ev::DiskLoss(i, epoch));
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, ev);
    }

    /// A random node that is up and not among `taken` nor already supplying customer `c`, as a whole slot.
    fn pick(&mut self, taken: &[Slot], c: u32, whole: bool) -> Option<Slot> {
        for _ in 0..1000 {
            let i = self.rng.gen_range(0..self.nodes.len()) as u32;
            let n = &self.nodes[i as usize];
            if !n.up
                || (self.sc.hire_always_on && !n.always_on)
                || taken.iter().any(|s| s.node == i && s.epoch == n.epoch)
                || n.supplies.iter().any(|(x, _)| *x == c)
            {
                continue;
            }
            return Some(Slot {
                node: i,
                peer: n.peer,
                epoch: n.epoch,
                disk: n.disk,
                have: if whole { self.o.units } else { 0 },
                queued: !whole,
                gone: false,
                down_since: None,
                lacking_since: None,
            });
        }
        None
    }

    fn attach(&mut self, c: u32) {
        let slots: Vec<(u16, u32, u32)> =
            self.customers[c as usize].slots.iter().enumerate().map(|(p, s)| (p as u16, s.node, s.epoch)).collect();
        for (p, node, epoch) in slots {
            let n = &mut self.nodes[node as usize];
            if n.epoch == epoch {
                n.supplies.push((c, p));
            }
        }
    }

    fn slot_up(&self, s: &Slot) -> bool {
        let n = &self.nodes[s.node as usize];
        !s.gone && n.epoch == s.epoch && n.up
    }

    fn queued(&self, c: u32) -> usize {
        let u = self.o.units;
        self.customers[c as usize].slots.iter().filter(|s| s.queued && !s.gone).map(|s| (u - s.have) as usize).sum()
    }

    fn handle(&mut self, c: u32, input: Input) -> Vec<Action> {
        self.handle_calls += 1;
        let now = self.now;
        match self.customers[c as usize].state.as_mut() {
            Some(m) => m.handle(input, now),
            None => Vec::new(),
        }
    }

    fn customer_up(&mut self, c: u32) {
        self.start(c);
        let s = self.sessions(self.customers[c as usize].always_on);
        let up = lognormal_ms(&mut self.rng, s.up_median_h, s.up_sigma);
        self.at(self.now + up, Ev::CustomerDown(c));
    }

    /// Starts customer `c`'s maintenance, as the service does at start: a new state, the suppliers, the silences
    /// saved by the last run, the queue.
    fn start(&mut self, c: u32) {
        let cu = &mut self.customers[c as usize];
        cu.up = true;
        cu.epoch += 1;
        cu.last_wake = self.now;
        cu.state = Some(Maintenance::new(self.policy, self.now));
        let slots: Vec<(u16, PeerId)> = cu.slots.iter().enumerate().map(|(p, s)| (p as u16, s.peer)).collect();
        let carried = std::mem::take(&mut cu.saved_silence);
        let mut actions = self.handle(c, Input::Suppliers(slots));
        actions.extend(self.handle(c, Input::Silence(carried)));
        self.customers[c as usize].told_queued = usize::MAX;
        actions.extend(self.tell_queued(c));
        self.run(c, actions);
        self.wake(c);
    }

    fn customer_down(&mut self, c: u32) {
        self.wake(c);
        let now = self.now;
        let cu = &mut self.customers[c as usize];
        if let Some(m) = cu.state.take() {
            cu.saved_silence = m.silences(now);
        }
        cu.up = false;
        cu.epoch += 1;
        cu.next_wake = u64::MAX;
        let always_on = cu.always_on;
        let s = self.sessions(always_on);
        let down = lognormal_ms(&mut self.rng, s.down_median_h, s.down_sigma);
        self.at(self.now + down, Ev::CustomerUp(c));
    }

    /// Answers every supplier's heartbeat, lets the state take the time, runs what it asks, and plans the next wake.
    fn wake(&mut self, c: u32) {
        if !self.customers[c as usize].up {
            return;
        }
        let last = self.customers[c as usize].last_wake;
        let heard: Vec<Heard> = self.customers[c as usize]
            .slots
            .iter()
            .enumerate()
            .filter_map(|(p, s)| {
                let at_ms = if self.slot_up(s) { self.now } else { s.down_since.filter(|t| *t > last)? };
                Some(Heard { position: p as u16, peer: s.peer, answer: alive(s), at_ms })
            })
            .collect();
        let mut actions = self.handle(c, Input::Heard(heard));
        actions.extend(self.tell_queued(c));
        self.run(c, actions);
        self.customers[c as usize].last_wake = self.now;
        self.plan(c);
    }

    fn plan(&mut self, c: u32) {
        let cu = &self.customers[c as usize];
        let Some(m) = cu.state.as_ref() else { return };
        let mut next = u64::MAX;
        for (p, conn) in m.connections() {
            let Some(s) = cu.slots.get(usize::from(*p)) else { continue };
            if !self.slot_up(s) {
                next = next.min(conn.fsm.next_deadline().unwrap_or(u64::MAX));
            }
        }
        next = next.min(m.hire_fire().next_deadline().unwrap_or(u64::MAX));
        next = next.min(m.rebuild().next_deadline().unwrap_or(u64::MAX));
        let lacking = cu.slots.iter().any(|s| !s.queued && s.have < self.o.units && self.slot_up(s));
        if lacking {
            next = next.min(m.deadlines().audit.unwrap_or(u64::MAX));
        }
        self.wake_at(c, next);
    }

    fn wake_at(&mut self, c: u32, t: u64) {
        let t = t.max(self.now + 1);
        let cu = &mut self.customers[c as usize];
        if t < cu.next_wake || cu.next_wake <= self.now {
            cu.next_wake = t;
            self.at(t, Ev::Wake(c));
        }
    }

    /// Runs actions until none are left (answers come at once, hires and rebuilds later).
    fn run(&mut self, c: u32, actions: Vec<Action>) {
        let mut todo = actions;
        let mut steps = 0;
        while let Some(a) = todo.pop() {
            steps += 1;
            if steps > 10_000 {
                tracing::warn!(c, "a wake asked for more than 10,000 actions");
                break;
            }
            let more = match a {
                Action::Heartbeat { position, peer } => {
                    let s = &self.customers[c as usize].slots[usize::from(position)];
                    let answer = if s.peer == peer && self.slot_up(s) { alive(s) } else { failed() };
                    self.handle(c, Input::HeartbeatDone { position, peer, answer })
                }
                Action::Audit { position, peer } => {
                    let units = self.o.units;
                    let s = &self.customers[c as usize].slots[usize::from(position)];
                    let outcome = if s.peer != peer || !self.slot_up(s) {
                        AuditOutcome::Unreachable("down".into())
                    } else if s.have == units {
                        AuditOutcome::Passed
                    } else if !s.queued {
                        AuditOutcome::Missing(BlockRef { version_id: [0; 16], block: u64::from(s.have) })
                    } else if s.have > 0 {
                        AuditOutcome::Passed
                    } else {
                        AuditOutcome::Nothing
                    };
                    self.handle(c, Input::AuditDone { position, peer, outcome })
                }
                Action::Enqueue { position, .. } => {
                    self.mark_queued(c, position);
                    Vec::new()
                }
                Action::Sweep { position, .. } => {
                    self.mark_queued(c, position);
                    self.handle(c, Input::SweepDone { position })
                }
                Action::Replace { position, old, .. } => {
                    let epoch = self.customers[c as usize].epoch;
                    let t = self.now + (self.sc.hire_secs * 1000.0) as u64;
                    self.at(t, Ev::ReplaceDone { c, epoch, position, old });
                    Vec::new()
                }
                Action::Rebuild { down } => self.rebuild(c, &down),
            };
            todo.extend(more);
            todo.extend(self.tell_queued(c));
        }
    }

    /// Tells the state the queue's length if it changed since it was last told (the service tells it at every
    /// input; the world changes it between wakes too: a supplier that leaves takes its position's work along).
    fn tell_queued(&mut self, c: u32) -> Vec<Action> {
        let q = self.queued(c);
        if q == self.customers[c as usize].told_queued {
            return Vec::new();
        }
        self.customers[c as usize].told_queued = q;
        self.handle(c, Input::Queued(q))
    }

    fn mark_queued(&mut self, c: u32, position: u16) {
        let units = self.o.units;
        if let Some(s) = self.customers[c as usize].slots.get_mut(usize::from(position)) {
            if s.have < units {
                s.queued = true;
            }
        }
    }

    /// Starts a rebuild run of one unit; returns what the state says at once if nothing can run.
    fn rebuild(&mut self, c: u32, down: &[(u16, PeerId)]) -> Vec<Action> {
        let (k, units) = (usize::from(self.o.k), self.o.units);
        let usable = |w: &World, p: usize, s: &Slot| w.slot_up(s) && !down.iter().any(|(d, _)| usize::from(*d) == p);
        let cu = &self.customers[c as usize];
        let candidates: Vec<usize> =
            cu.slots.iter().enumerate().filter(|(p, s)| s.queued && usable(self, *p, s)).map(|(p, _)| p).collect();
        let Some(unit) = candidates.iter().map(|p| cu.slots[*p].have).min() else {
            let none = if self.queued(c) == 0 { Ok(None) } else { Err("every position to rebuild is down".into()) };
            return self.handle(c, Input::RebuildDone(none));
        };
        let targets: Vec<usize> = candidates.into_iter().filter(|p| cu.slots[*p].have == unit).collect();
        let sources: Vec<u32> = cu
            .slots
            .iter()
            .enumerate()
            .filter(|(p, s)| s.have > unit && usable(self, *p, s))
            .map(|(_, s)| s.node)
            .take(k)
            .collect();
        if sources.len() < k {
            return self.handle(c, Input::RebuildDone(Err(format!("{} sources of {k}", sources.len()))));
        }
        let fragment = self.o.data_bytes as f64 / f64::from(units) / k as f64;
        let mut fetched_at = self.now as f64;
        for s in &sources {
            let n = &mut self.nodes[*s as usize];
            let start = n.busy_until.max(self.now as f64);
            n.busy_until = start + fragment / n.upload.max(1e-9);
            fetched_at = fetched_at.max(n.busy_until);
        }
        let cu = &mut self.customers[c as usize];
        let fetched = fragment * k as f64;
        let sent = fragment * targets.len() as f64;
        fetched_at = fetched_at.max(self.now as f64 + fetched / cu.download.max(1e-9));
        let start = cu.busy_until.max(fetched_at);
        cu.busy_until = start + sent / cu.upload.max(1e-9);
        let done = cu.busy_until.ceil() as u64;
        let targets = targets
            .into_iter()
            .map(|p| {
                let s = &cu.slots[p];
                (p as u16, s.node, s.epoch, s.disk)
            })
            .collect();
        let stats = RebuildStats { fragments: 0, bytes_sent: sent as u64, bytes_fetched: fetched as u64 };
        let epoch = cu.epoch;
        self.at(done.max(self.now + 1), Ev::RebuildDone { c, epoch, unit, targets, stats });
        Vec::new()
    }

    fn rebuild_done(&mut self, c: u32, unit: u32, targets: Vec<(u16, u32, u32, u32)>, mut stats: RebuildStats) {
        let units = self.o.units;
        self.repair_bytes += (stats.bytes_sent + stats.bytes_fetched) as f64;
        let now = self.now;
        let mut done = 0;
        for (p, node, epoch, disk) in targets {
            let Some(s) = self.customers[c as usize].slots.get_mut(usize::from(p)) else { continue };
            if s.node != node || s.epoch != epoch || s.disk != disk || s.have != unit || s.gone {
                continue;
            }
            s.have += 1;
            done += 1;
            if s.have == units {
                s.queued = false;
                if let Some(since) = s.lacking_since.take() {
                    self.repairs_h.push((now - since) as f64 / HOUR_MS);
                }
            }
        }
        stats.fragments = done;
        let mut actions = self.handle(c, Input::RebuildDone(Ok(Some(stats))));
        self.customers[c as usize].told_queued = usize::MAX;
        actions.extend(self.tell_queued(c));
        self.run(c, actions);
        self.plan(c);
    }

    fn replace_done(&mut self, c: u32, position: u16, old: Option<PeerId>) {
        let p = usize::from(position);
        let current = self.customers[c as usize].slots[p].clone();
        let result = if old.is_some_and(|o| o != current.peer) {
            Ok(current.peer)
        } else {
            let taken = self.customers[c as usize].slots.clone();
            match self.pick(&taken, c, false) {
                None => Err("no node to hire".to_string()),
                Some(mut new) => {
                    // the old supplier is let go: its data too (a false firing if it still held it)
                    let node = &mut self.nodes[current.node as usize];
                    if node.epoch == current.epoch {
                        node.supplies.retain(|x| *x != (c, position));
                    }
                    if !current.gone && current.have == self.o.units {
                        self.false_firings += 1;
                        self.position_losses += 1;
                    }
                    if let (true, Some(left)) = (current.gone, current.down_since) {
                        self.replaced_h.push((self.now - left) as f64 / HOUR_MS);
                    }
                    new.lacking_since = current.lacking_since.or(Some(self.now));
                    self.nodes[new.node as usize].supplies.push((c, position));
                    let peer = new.peer;
                    self.customers[c as usize].slots[p] = new;
                    Ok(peer)
                }
            }
        };
        if self.check_loss(c) {
            return;
        }
        let slots: Vec<(u16, PeerId)> =
            self.customers[c as usize].slots.iter().enumerate().map(|(p, s)| (p as u16, s.peer)).collect();
        let mut actions = self.handle(c, Input::Suppliers(slots));
        actions.extend(self.handle(c, Input::ReplaceDone { position, result }));
        self.customers[c as usize].told_queued = usize::MAX;
        actions.extend(self.tell_queued(c));
        self.run(c, actions);
        self.wake(c);
    }

    /// Whether customer `c` lost data; if so it is counted and starts again, whole, on new suppliers.
    fn check_loss(&mut self, c: u32) -> bool {
        let (k, units) = (usize::from(self.o.k), self.o.units);
        let whole = self.customers[c as usize].slots.iter().filter(|s| !s.gone && s.have == units).count();
        if whole >= k {
            return false;
        }
        self.losses += 1;
        if tracing::enabled!(tracing::Level::DEBUG) {
            let cu = &self.customers[c as usize];
            let slots: Vec<String> = cu
                .slots
                .iter()
                .map(|s| {
                    let state = if s.gone {
                        "gone"
                    } else if self.slot_up(s) {
                        "up"
                    } else {
                        "down"
                    };
                    let since = s.lacking_since.map(|t| (self.now - t) as f64 / HOUR_MS);
                    format!("{state} have {}/{units} queued {} lacking {since:.1?} h", s.have, s.queued)
                })
                .collect();
            let m = cu.state.as_ref().map(|m| (m.hire_fire().state.clone(), m.rebuild().state.clone()));
            tracing::debug!(c, up = cu.up, always_on = cu.always_on, ?m, ?slots, "a customer lost data");
        }
        let old = std::mem::take(&mut self.customers[c as usize].slots);
        for (p, s) in old.iter().enumerate() {
            let node = &mut self.nodes[s.node as usize];
            if node.epoch == s.epoch {
                node.supplies.retain(|x| *x != (c, p as u16));
            }
        }
        let mut slots = Vec::new();
        for _ in 0..self.o.n {
            if let Some(s) = self.pick(&slots, c, true) {
                slots.push(s);
            }
        }
        let cu = &mut self.customers[c as usize];
        cu.slots = slots;
        cu.saved_silence.clear();
        self.attach(c);
        if self.customers[c as usize].up {
            self.customers[c as usize].next_wake = u64::MAX;
            self.start(c);
        }
        true
    }

    /// Node `i`'s supplied positions lose their data (it left, or its disk died).
    fn lose_data(&mut self, i: u32, gone: bool) {
        let supplies = std::mem::take(&mut self.nodes[i as usize].supplies);
        let now = self.now;
        for (c, p) in &supplies {
            let s = &mut self.customers[*c as usize].slots[usize::from(*p)];
            if s.have > 0 || !s.queued {
                self.position_losses += 1;
            }
            s.have = 0;
            if gone {
                s.gone = true;
                if s.down_since.is_none() {
                    s.down_since = Some(now);
                }
            } else {
                s.disk += 1;
            }
            s.lacking_since.get_or_insert(now);
        }
        if !gone {
            self.nodes[i as usize].supplies = supplies.clone();
        }
        for (c, _) in supplies {
            if !self.check_loss(c) && self.customers[c as usize].up {
                let t = self.now + self.policy.timings.suspect_after_ms;
                self.wake_at(c, t);
            }
        }
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::NodeDown(i, epoch) | Ev::NodeUp(i, epoch) if self.nodes[i as usize].epoch != epoch => {}
            Ev::NodeDown(i, epoch) => {
                let s = self.sessions(self.nodes[i as usize].always_on);
                self.nodes[i as usize].up = false;
                let now = self.now;
                for (c, p) in self.nodes[i as usize].supplies.clone() {
                    self.customers[c as usize].slots[usize::from(p)].down_since = Some(now);
                    if self.customers[c as usize].up {
                        self.wake_at(c, now + self.policy.timings.suspect_after_ms);
                    }
                }
                let down = lognormal_ms(&mut self.rng, s.down_median_h, s.down_sigma);
                self.at(self.now + down, Ev::NodeUp(i, epoch));
            }
            Ev::NodeUp(i, epoch) => {
                let s = self.sessions(self.nodes[i as usize].always_on);
                self.nodes[i as usize].up = true;
                for (c, p) in self.nodes[i as usize].supplies.clone() {
                    self.customers[c as usize].slots[usize::from(p)].down_since = None;
                }
                let up = lognormal_ms(&mut self.rng, s.up_median_h, s.up_sigma);
                self.at(self.now + up, Ev::NodeDown(i, epoch));
            }
            Ev::Depart(i, epoch) | Ev::DiskLoss(i, epoch) if self.nodes[i as usize].epoch != epoch => {}
            Ev::Depart(i, epoch) => self.depart(i, epoch),
            Ev::DiskLoss(i, _) => {
                self.nodes[i as usize].disk += 1;
                self.lose_data(i, false);
            }
            Ev::Shock => {
                let taken = ((self.nodes.len() as f64) * self.sc.shock_share) as usize;
                let before = self.position_losses;
                for _ in 0..taken {
                    let i = self.rng.gen_range(0..self.nodes.len()) as u32;
                    let epoch = self.nodes[i as usize].epoch;
                    self.depart(i, epoch);
                }
                // correlated departures are the chain's shocks, not its λ
                self.position_losses = before;
                if let Some(t) = exp_ms(&mut self.rng, self.sc.shocks_per_year) {
                    self.at(self.now + t, Ev::Shock);
                }
            }
            Ev::CustomerUp(c) => self.customer_up(c),
            Ev::CustomerDown(c) => self.customer_down(c),
            Ev::Wake(c) => {
                if self.customers[c as usize].next_wake == self.now {
                    self.customers[c as usize].next_wake = u64::MAX;
                    self.wake(c);
                }
            }
            Ev::ReplaceDone { c, epoch, position, old } => {
                if self.customers[c as usize].epoch == epoch {
                    self.replace_done(c, position, old);
                }
            }
            Ev::RebuildDone { c, epoch, unit, targets, stats } => {
                if self.customers[c as usize].epoch == epoch {
                    self.rebuild_done(c, unit, targets, stats);
                }
            }
        }
    }

    fn depart(&mut self, i: u32, epoch: u32) {
        if self.nodes[i as usize].epoch != epoch {
            return;
        }
        self.nodes[i as usize].up = false;
        self.lose_data(i, true);
        // the population stays the same size: a newcomer takes the place
        let node = self.fresh_node(epoch + 1);
        self.nodes[i as usize] = node;
        self.start_node(i);
    }
}

fn alive(s: &Slot) -> HeartbeatAnswer {
    HeartbeatAnswer::Alive { used_bytes: u64::from(s.have), fragments: u64::from(s.have) }
}

fn failed() -> HeartbeatAnswer {
    HeartbeatAnswer::Failed("no answer".into())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs one simulation.
///
/// # Errors
/// Settings that make no sense (k ≥ n, more positions than nodes).
pub fn run(o: &Options, sc: &Scenario) -> Result<Outcome> {
    let started = std::time::Instant::now();
    let mut w = World::new(o.clone(), sc.clone())?;
    w.run_until((o.years * YEAR_MS) as u64);
    let customer_years = o.customers as f64 * o.years;
    let position_years = customer_years * f64::from(o.n);
    let mut repairs = std::mem::take(&mut w.repairs_h);
    repairs.sort_by(f64::total_cmp);
    let repair_mean_h = if repairs.is_empty() { 0.0 } else { repairs.iter().sum::<f64>() / repairs.len() as f64 };
    let lambda = w.position_losses as f64 / position_years;
    let chain = crate::durability::Model {
        k: o.k,
        n: o.n,
        lambda,
        repair_years: (repair_mean_h / (365.25 * 24.0)).max(1e-9),
        repair: crate::durability::Repair::Parallel,
        shock_rate: sc.shocks_per_year,
        shock_share: sc.shock_share,
    };
    let loss_rate = w.losses as f64 / customer_years;
    Ok(Outcome {
        layout: format!("RS({}, {})", o.k, o.n),
        overhead: f64::from(o.n) / f64::from(o.k),
        fire_after_h: o.fire_after_h,
        audit_interval_h: o.audit_interval_h,
        customer_years,
        losses: w.losses,
        loss_rate,
        position_losses_per_year: lambda,
        false_firings_per_year: w.false_firings as f64 / position_years,
        repair_mean_h,
        repair_p50_h: percentile(&repairs, 0.5),
        replaced_p50_h: {
            let mut r = std::mem::take(&mut w.replaced_h);
            r.sort_by(f64::total_cmp);
            percentile(&r, 0.5)
        },
        repair_p99_h: percentile(&repairs, 0.99),
        repair_mb_per_day: w.repair_bytes / 1e6 / (customer_years * 365.25),
        chain_loss_per_year: chain.loss_probability(1.0),
        chain_serial_loss_per_year: crate::durability::Model { repair: crate::durability::Repair::Serial, ..chain }
            .loss_probability(1.0),
        measured_loss_per_year: -f64::exp_m1(-loss_rate),
        handle_calls: w.handle_calls,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(k: u16, n: u16, customers: usize, nodes: usize) -> Options {
        Options {
            nodes,
            customers,
            years: 1.0,
            k,
            n,
            data_bytes: 1 << 30,
            units: 16,
            fire_after_h: 24.0,
            audit_interval_h: 1.0,
            seed: 7,
            policy: None,
            scripted_departure_ms: None,
        }
    }

    /// Nodes that never go down: only departures.
    fn steady(departures: f64) -> Scenario {
        let forever = Sessions { up_median_h: 1e9, up_sigma: 0.0, down_median_h: 1.0, down_sigma: 0.0 };
        Scenario {
            departures_per_year: departures,
            disk_losses_per_year: 0.0,
            always_on: forever,
            desktop: forever,
            ..Scenario::named("storj").unwrap()
        }
    }

    /// A supplier that leaves is fired fire-after past its last answer, replaced (hiring takes 30 s) and rebuilt
    /// (1 GiB over links of about 20 Mbit/s up): full redundancy a little over 24 h after the loss.
    #[test]
    fn a_departed_supplier_is_fired_after_fire_after_and_rebuilt() {
        let r = run(&options(2, 4, 200, 2_000), &steady(1.0)).unwrap();
        assert!(r.position_losses_per_year > 0.7 && r.position_losses_per_year < 1.3, "{r:?}");
        assert_eq!(r.false_firings_per_year, 0.0, "nobody that answers is fired");
        assert!(r.repair_p50_h > 24.0 && r.repair_p50_h < 25.0, "{r:?}");
        assert!(r.repair_mb_per_day > 0.0);
    }

    /// Customers on for 8 hours and off for 12 (shorter than fire-after at every stretch) still replace a supplier
    /// that left: the silence they saw is carried over their restarts. Without it, they never would.
    #[test]
    fn customers_never_up_for_fire_after_still_repair() {
        let desktop = Sessions { up_median_h: 8.0, up_sigma: 0.3, down_median_h: 12.0, down_sigma: 0.3 };
        let sc = Scenario { customer_always_on_share: 0.0, desktop, ..steady(2.0) };
        let mut w = World::new(options(2, 4, 100, 1_000), sc).unwrap();
        w.run_until(YEAR_MS as u64 / 4);
        assert!(w.customers.iter().all(|c| !c.always_on));
        let repaired = w.repairs_h.len();
        assert!(repaired > 20, "only {repaired} positions repaired of ~{} lost", w.position_losses);
        // fire-after counts only the customer's own time online: about 24 h online, so well over 24 h in all
        let mean = w.repairs_h.iter().sum::<f64>() / repaired as f64;
        assert!(mean > 30.0 && mean < 24.0 * 10.0, "mean repair {mean} h");
    }

    /// At inflated churn, where losses are frequent enough to count, the driver's count lies where the chain
    /// (fed the driver's measured λ and E\[R\]) puts it: between a little under its parallel-repair figure and its
    /// serial-repair figure.
    #[test]
    fn the_chain_predicts_the_losses_the_driver_counts() {
        let r = run(&options(2, 4, 1_000, 5_000), &steady(10.0)).unwrap();
        assert!(r.losses > 30, "{r:?}");
        let measured = r.measured_loss_per_year;
        assert!(
            measured > 0.7 * r.chain_loss_per_year && measured < 1.5 * r.chain_serial_loss_per_year,
            "measured {measured} vs chain {} .. {}",
            r.chain_loss_per_year,
            r.chain_serial_loss_per_year
        );
    }
}
