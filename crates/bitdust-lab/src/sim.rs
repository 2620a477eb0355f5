//! `bitdust-lab sim`: an in-process network of N full bitdust nodes over libp2p's memory transport, to measure
//! how the DHT and hiring scale.
//!
//! Every node is a real [`Node`] (keys, signed identity, node database, fragment store, supplier service,
//! announce loop, maintenance and relay automata) whose swarm runs the same protocols as on TCP/QUIC (Noise,
//! Yamux, Kademlia `/bitdust/kad/1.0.0`, identify, ping, AutoNAT, relay client) over `/memory/<port>`
//! addresses. Each node joins through the first four nodes, publishes its identity record and announces its
//! nickname and the supplier service. Then, with N nodes running, the run measures:
//! - **lookups** of identity records (`get_record`) and of nickname claims (`get_nickname`)
//!   between random pairs: wall latency, Kademlia requests sent (libp2p's `QueryStats`), and *hops*;
//! - **hops**, by replaying the lookup over a snapshot of every node's real routing table with the iterative
//!   algorithm of Maymounkov & Mazières, "Kademlia" (IPTPS 2002), section 2.3: `ALPHA` = 3 parallel requests per
//!   round and the `K` = 20 closest candidates kept; the hop count is the round in which the first node holding
//!   the record is asked (holders: the `K` nodes closest to the key, where a converged put stores it, and the
//!   publisher itself);
//! - **memory per idle node**: growth of the process's resident set (`VmRSS`) from before the first node started
//!   to after the lookups, divided by N;
//! - **time to hire n suppliers** for a new customer node that joins the running network.
//!
//! `bitdust-lab sim --nodes 100,300,1000` runs each size in its own child process (so each memory figure is its
//! own) and prints one row per size; `--json` gives every figure.

use bitdust::out;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bitdust_core::keys::NodeKeys;
use bitdust_core::record::{self, RecordKind};
use bitdust_node::{Config, Daemon, Home, Node, StartOptions};
use bitdust_storage::config::{CustomerConfig, MaintenanceConfig, StorageConfig, SupplierConfig};
use bitdust_storage::{Overrides, Storage, StorageService};
use futures::StreamExt;
use libp2p::kad::KBucketKey;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Kademlia replication factor (libp2p's default `K_VALUE`, the paper's k).
const K: usize = 20;
/// Kademlia parallelism (libp2p's default `ALPHA_VALUE`, the paper's α).
const ALPHA: usize = 3;
/// Nodes every new node is given as bootstrap nodes.
pub(crate) const BOOTSTRAP_NODES: usize = 4;
/// Space each simulated supplier donates (a quota; nothing is stored).
const DONATED_BYTES: u64 = 1 << 30;
/// A replayed lookup that has not reached a holder after this many rounds counts as failed.
const MAX_ROUNDS: u32 = 64;
/// Nodes joining at once: each new node waits until fewer than this many are still announcing (a network
/// grows a few nodes at a time; a thousand simultaneous joins would measure the two CPUs, not the DHT).
pub(crate) const JOIN_WINDOW: usize = 8;
/// Seconds between a simulated node's own announcements (600 on a real node). The simulation runs the
/// announcement rounds itself (on joining, then once more with everybody up). A thousand nodes announcing every
/// 10 minutes would be almost two announcements a second, each a bootstrap and three DHT lookups, on the two
/// cores every node shares here; a real network spreads that over a thousand machines.
const SIM_ANNOUNCE_INTERVAL_SECS: u64 = 24 * 3600;
/// Attempts at the second announcement of each node (a real node retries a failed one, with back-off).
const ANNOUNCE_ATTEMPTS: u32 = 3;
/// What each simulated network does besides forming (see `bitdust-lab sim --help`).
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Identity lookups and nickname lookups, random pairs.
    pub lookups: usize,
    /// Supplier counts a new customer hires, one customer each.
    pub hire: Vec<u16>,
    /// Seconds an unused connection stays open (120 on a real node; shorter so that the idle state, where only
    /// the connections something still uses are open, is reached within the run), and over which the idle
    /// network's CPU is measured. At least 1.
    pub idle_secs: u64,
    /// Where the nodes' homes go (default /dev/shm, else the system temp folder).
    pub dir: Option<PathBuf>,
    /// Keyword searches of public shares to time (0: none; otherwise [`SEARCH_PUBLISHERS`] customers publish a
    /// share each and [`SEARCHERS`] new nodes search).
    pub search: usize,
    /// Customers that each lose one supplier for good (0: none; see [`RepairFigures`]).
    pub repair: usize,
}

/// A supplier lost for good, measured on the network and predicted by `churn` (issue 19: the durability
/// simulator's check on a short horizon). Each of `customers` new customers (devnet maintenance timings, RS(2, 4),
/// 256 KiB of data) hires, backs up, and loses one supplier (its node stopped); the figures are seconds from the
/// stop. `churn` runs the real maintenance state with the same policy and the median hiring time measured here.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RepairFigures {
    /// Customers measured.
    pub customers: usize,
    /// The policy's fire-after, seconds.
    pub fire_after_secs: f64,
    /// Hiring 4 suppliers, seconds.
    pub hire_secs: Spread,
    /// From the stop to the replacement's contract.
    pub replaced_after_secs: Spread,
    /// From the stop to every block whole again.
    pub full_after_secs: Spread,
    /// `churn`'s median of the first, seconds.
    pub predicted_replaced_secs: f64,
    /// `churn`'s median of the second, seconds.
    pub predicted_full_secs: f64,
}

/// Customers that publish a public share when searches are measured.
pub const SEARCH_PUBLISHERS: usize = 3;
/// New nodes that run the searches (with the messages wing).
pub const SEARCHERS: usize = 10;

/// Keyword searches of public shares.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchFigures {
    /// Customers that published a share under the searched keyword.
    pub publishers: usize,
    /// Searches made, each from a random node.
    pub searches: usize,
    /// Searches that found every publisher's share.
    pub found_all: usize,
    /// Wall time per search (providers of the word in the DHT, then every provider's signed listing), ms.
    pub latency_ms: Spread,
    /// Seconds to publish one share (manifest stored on its suppliers, keywords announced).
    pub publish_secs: Spread,
}

/// Percentiles of one measured quantity.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Spread {
    /// Samples.
    pub count: usize,
    /// Median (nearest rank).
    pub median: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

impl Spread {
    /// The spread of `samples` (zeros if none).
    pub(crate) fn of(mut samples: Vec<f64>) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_by(f64::total_cmp);
        let rank = |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
        Self { count: samples.len(), median: rank(0.5), p99: rank(0.99), max: samples[samples.len() - 1] }
    }
}

/// Figures of one kind of lookup.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LookupFigures {
    /// Lookups that did not return the right answer.
    pub failures: usize,
    /// Wall time per lookup, in milliseconds.
    pub latency_ms: Spread,
    /// Kademlia requests sent per lookup (libp2p's query statistics).
    pub requests: Spread,
    /// Hops (sequential request rounds) per lookup, replayed over the real routing tables.
    pub hops: Spread,
}

/// One hire measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HireFigure {
    /// Suppliers hired.
    pub suppliers: u16,
    /// Seconds from the start of hiring to n signed contracts.
    pub secs: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimReport {
    /// Nodes in the network.
    pub nodes: usize,
    /// The hop bound the issue sets: ceil(log2(nodes)).
    pub hop_bound: u32,
    /// Seconds until every node had started and announced itself.
    pub start_secs: f64,
    /// Second announcements that had to be retried (a failed DHT put or provide; a sign of overload).
    pub announce_retries: usize,
    /// Mean routing-table size.
    pub routing_table_mean: f64,
    /// Nodes by AutoNAT verdict (`public`, `private`, `unknown`) after the lookups.
    pub reachability: BTreeMap<String, usize>,
    /// Mean open connections per node just after the lookups.
    pub connections_busy_mean: f64,
    /// Mean open connections per node once idle connections have closed.
    pub connections_idle_mean: f64,
    /// Resident memory of the process before the first node, MiB.
    pub rss_base_mib: f64,
    /// Resident memory just after the lookups (every connection they opened still open), MiB.
    pub rss_busy_mib: f64,
    /// Resident memory with every node up and idle, MiB.
    pub rss_idle_mib: f64,
    /// (idle - base) / nodes, MiB.
    pub mib_per_node: f64,
    /// CPU time the whole idle network uses, as a percentage of one core.
    pub idle_cpu_percent: f64,
    /// Identity record lookups.
    pub identity: LookupFigures,
    /// Nickname lookups.
    pub nickname: LookupFigures,
    /// New customers hiring n suppliers.
    pub hire: Vec<HireFigure>,
    /// Keyword searches (when asked for).
    pub search: Option<SearchFigures>,
    /// Suppliers lost and replaced (when asked for).
    #[serde(default)]
    pub repair: Option<RepairFigures>,
}

/// `bitdust-lab sim`: runs each size in `nodes` in a child process and prints the reports.
///
/// # Errors
/// If a child fails or prints no report.
pub fn run(nodes: &[usize], options: &SimOptions, json: bool) -> Result<()> {
    let SimOptions { lookups, hire, idle_secs, dir, search, repair } = options;
    let exe = std::env::current_exe().context("locating the bitdust executable")?;
    let mut reports = Vec::new();
    for &n in nodes {
        if !json {
            eprintln!("simulating {n} nodes ...");
        }
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["sim", "--child", "--json", "--nodes", &n.to_string(), "--lookups", &lookups.to_string()]);
        if !hire.is_empty() {
            let list: Vec<String> = hire.iter().map(u16::to_string).collect();
            cmd.args(["--hire", &list.join(",")]);
        }
        cmd.args(["--idle-secs", &idle_secs.to_string(), "--search", &search.to_string()]);
        cmd.args(["--repair", &repair.to_string()]);
        if let Some(d) = dir {
            cmd.arg("--dir").arg(d);
        }
        let out = cmd.stderr(std::process::Stdio::inherit()).output().context("running a simulation")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!("the {n}-node simulation failed: {}", text.trim());
        }
        let report: SimReport =
            serde_json::from_str(&text).with_context(|| format!("the {n}-node simulation printed {text:?}"))?;
        if !json {
            print_row(&report);
        }
        reports.push(report);
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

fn print_row(r: &SimReport) {
    let lookups = |kind: &str, f: &LookupFigures| {
        format!(
            "  {kind} lookup: hops median {} p99 {}, {:.1} / {:.1} ms, {} / {} requests, {} failed",
            f.hops.median,
            f.hops.p99,
            f.latency_ms.median,
            f.latency_ms.p99,
            f.requests.median,
            f.requests.p99,
            f.failures
        )
    };
    let hire: Vec<String> = r.hire.iter().map(|h| format!("{}: {:.2} s", h.suppliers, h.secs)).collect();
    let search = r.search.as_ref().map_or_else(String::new, |s| {
        format!(
            "\n  search: {} of {} found all {} publishers, {:.1} / {:.1} ms (median / p99); publishing {:.2} s",
            s.found_all, s.searches, s.publishers, s.latency_ms.median, s.latency_ms.p99, s.publish_secs.median
        )
    });
    let repair = r.repair.as_ref().map_or_else(String::new, |x| {
        format!(
            "\n  a supplier lost (fire-after {:.0} s, {} customers): replaced after {:.1} s (churn predicts {:.1}), \
             whole after {:.1} s (churn {:.1}); hiring {:.1} s",
            x.fire_after_secs,
            x.customers,
            x.replaced_after_secs.median,
            x.predicted_replaced_secs,
            x.full_after_secs.median,
            x.predicted_full_secs,
            x.hire_secs.median
        )
    });
    out!(
        "{} nodes (hop bound {}): started in {:.1} s ({} announcements retried), {:.2} MiB per idle node \
         ({:.1} connections; {:.1} after lookups), idle CPU {:.1}% of a core, routing table {:.0} peers, \
         AutoNAT {:?}\n{}\n{}\n  hire: {}{}{}",
        r.nodes,
        r.hop_bound,
        r.start_secs,
        r.announce_retries,
        r.mib_per_node,
        r.connections_idle_mean,
        r.connections_busy_mean,
        r.idle_cpu_percent,
        r.routing_table_mean,
        r.reachability,
        lookups("identity", &r.identity),
        lookups("nickname", &r.nickname),
        if hire.is_empty() { "-".to_string() } else { hire.join(", ") },
        search,
        repair,
    );
}

/// The child: one network of `nodes` nodes in this process; prints a [`SimReport`] as JSON.
///
/// # Errors
/// If a node cannot start or the network does not form.
pub fn run_child(nodes: usize, options: &SimOptions) -> Result<()> {
    if nodes < BOOTSTRAP_NODES + 1 {
        bail!("--nodes must be at least {}", BOOTSTRAP_NODES + 1);
    }
    if options.idle_secs == 0 {
        bail!("--idle-secs must be at least 1");
    }
    let base = options.dir.clone().unwrap_or_else(default_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let tmp = tempfile::Builder::new().prefix("bitdust-sim-").tempdir_in(&base)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(simulate(tmp.path(), nodes, options))?;
    out!("{}", serde_json::to_string(&report)?);
    // Dropping a thousand swarms takes a while and measures nothing, so exit without it; `exit` skips
    // destructors, so remove the nodes' folders first (in /dev/shm they hold memory until removed).
    let _ = std::fs::remove_dir_all(tmp.path());
    std::process::exit(0);
}

/// Where the nodes' homes go by default: /dev/shm, else the system temp folder.
pub(crate) fn default_dir() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// A simulated node's config: memory transport, a supplier donating [`DONATED_BYTES`] if `supplier`, hiring `hire`
/// suppliers (at least 2) when asked.
pub(crate) fn node_config(supplier: bool, hire: u16, idle_secs: u64) -> Result<Config> {
    node_config_with(supplier, hire, idle_secs, MaintenanceConfig::default())
}

/// [`node_config`] with the maintenance settings given.
fn node_config_with(supplier: bool, hire: u16, idle_secs: u64, maintenance: MaintenanceConfig) -> Result<Config> {
    let mut config = Config {
        listen: vec!["/memory/0".into()],
        idle_timeout_secs: idle_secs,
        announce_interval_secs: SIM_ANNOUNCE_INTERVAL_SECS,
        ..Config::default()
    };
    StorageConfig {
        supplier: SupplierConfig {
            enabled: supplier,
            donated_bytes: if supplier { DONATED_BYTES } else { 0 },
            ..SupplierConfig::default()
        },
        customer: CustomerConfig { suppliers: hire.max(2), needed_bytes: 1 << 20, ..CustomerConfig::default() },
        maintenance,
    }
    .write_into(&mut config)?;
    Ok(config)
}

/// Starts a full node (runtime and storage wing; the messages wing too if `messages`).
async fn start_node(dir: &Path, name: &str, config: &Config, bootstrap: &[String], messages: bool) -> Result<Daemon> {
    let home = Home::new(dir.join(name));
    home.init(&NodeKeys::generate(), name, config)?;
    let options = StartOptions { bootstrap: bootstrap.to_vec(), ..StartOptions::default() };
    let mut wings: Vec<Box<dyn bitdust_node::Service>> = vec![StorageService::new(Overrides::default())];
    if messages {
        wings.push(bitdust_messages::MessagesService::new());
    }
    Daemon::start(home, options, wings).await.with_context(|| format!("starting {name}"))
}

async fn simulate(dir: &Path, n: usize, options: &SimOptions) -> Result<SimReport> {
    let (lookups, hire, idle_secs) = (options.lookups, options.hire.as_slice(), options.idle_secs);
    let rss_base = rss_mib();
    let started = Instant::now();
    let supplier = node_config(true, 0, idle_secs)?;
    let mut nodes: Vec<Arc<Node>> = Vec::with_capacity(n);
    // The daemons hold the wings: kept until the end of the simulation.
    let mut daemons: Vec<Daemon> = Vec::with_capacity(n);
    let mut bootstrap: Vec<String> = Vec::new();
    for i in 0..n {
        // Wait for the oldest node still announcing once JOIN_WINDOW are (announcements end in order, roughly).
        if i >= JOIN_WINDOW {
            nodes[i - JOIN_WINDOW].wait_announced().await;
        }
        let daemon = start_node(dir, &format!("node-{i}"), &supplier, &bootstrap, false).await?;
        let node = daemon.node().clone();
        daemons.push(daemon);
        if i % 100 == 99 {
            tracing::info!(nodes = i + 1, secs = started.elapsed().as_secs_f64(), "simulation: nodes started");
        }
        if i < BOOTSTRAP_NODES {
            let addr = node.addresses().into_iter().next().context("a node without an address")?;
            bootstrap.push(addr);
        }
        nodes.push(node);
    }
    futures::future::join_all(nodes.iter().map(|n| n.wait_announced())).await;
    let start_secs = started.elapsed().as_secs_f64();
    // The early nodes announced into a network of a few nodes: announce once more, as the 10-minute announce
    // loop would, so records sit at the K closest nodes of the whole network (its steady state).
    let announce_again = |node: &Arc<Node>| {
        let node = node.clone();
        async move {
            let mut retries = 0;
            loop {
                match node.announce().await {
                    Ok(()) => return Ok(retries),
                    Err(e) if retries + 1 >= ANNOUNCE_ATTEMPTS => return Err(e),
                    Err(_) => {
                        retries += 1;
                        tokio::time::sleep(std::time::Duration::from_secs(1 << retries)).await;
                    }
                }
            }
        }
    };
    let results: Vec<Result<u32>> =
        futures::stream::iter(nodes.iter().map(announce_again)).buffer_unordered(JOIN_WINDOW).collect().await;
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        let refused = results.iter().filter(|r| r.is_err()).count();
        bail!("{refused} of {n} nodes could not announce again ({ANNOUNCE_ATTEMPTS} attempts); the first: {e:#}");
    }
    let announce_retries = results.iter().map(|r| r.as_ref().map_or(0, |n| *n as usize)).sum();
    tracing::info!(secs = started.elapsed().as_secs_f64(), "simulation: every node announced again");

    // Every routing table, as the lookups will find it.
    let mut tables: HashMap<PeerId, Vec<PeerId>> = HashMap::new();
    for node in &nodes {
        tables.insert(node.peer_id(), node.network().routing_table().await?);
    }
    let routing_table_mean = tables.values().map(Vec::len).sum::<usize>() as f64 / n as f64;
    let everyone: Vec<PeerId> = nodes.iter().map(|n| n.peer_id()).collect();

    let mut rng = rand::thread_rng();
    let mut pairs = Vec::with_capacity(lookups);
    while pairs.len() < lookups {
        let (a, b) = (rand::Rng::gen_range(&mut rng, 0..n), rand::Rng::gen_range(&mut rng, 0..n));
        if a != b {
            pairs.push((a, b));
        }
    }
    let mut identity = Samples::default();
    let mut nickname = Samples::default();
    for &(a, b) in &pairs {
        let (source, target) = (&nodes[a], nodes[b].peer_id());
        let key = record::record_key(RecordKind::Identity, &target);
        let t = Instant::now();
        let found = source.network().get_record_with_stats(RecordKind::Identity, target).await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let ok = matches!(&found, Ok((r, _)) if r.publisher == target.to_bytes());
        let requests = found.map(|(_, s)| s.requests).unwrap_or(0);
        let hops = replay_hops(&tables, &everyone, source.peer_id(), &key, &[target]);
        identity.add(ok, ms, requests, hops);

        let key = record::nickname_key(&format!("node-{b}"));
        let t = Instant::now();
        let found = source.network().get_nickname_with_stats(&format!("node-{b}")).await;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let ok = matches!(&found, Ok((_, owner, _)) if *owner == target);
        let requests = found.map(|(_, _, s)| s.requests).unwrap_or(0);
        let hops = replay_hops(&tables, &everyone, source.peer_id(), &key, &[target]);
        nickname.add(ok, ms, requests, hops);
    }
    let rss_busy = rss_mib();
    tracing::info!(secs = started.elapsed().as_secs_f64(), "simulation: lookups done");
    let mut reachability: BTreeMap<String, usize> = BTreeMap::new();
    for node in &nodes {
        *reachability.entry(node.network().reachability().borrow().clone()).or_default() += 1;
    }
    let connections_busy_mean = mean_connections(&nodes).await;
    // Idle: wait until the connections nothing uses have closed (none left, or no fewer for longer than the idle
    // timeout), then measure.
    let mut connections_idle_mean = connections_busy_mean;
    let mut since_fall = Instant::now();
    while connections_idle_mean > 0.0 && since_fall.elapsed().as_secs() <= idle_secs {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = mean_connections(&nodes).await;
        if now < connections_idle_mean * 0.95 {
            since_fall = Instant::now();
        }
        connections_idle_mean = now;
    }
    trim_heap();
    let rss_idle = rss_mib();
    let cpu_before = cpu_secs();
    tokio::time::sleep(std::time::Duration::from_secs(idle_secs)).await;
    let idle_cpu_percent = (cpu_secs() - cpu_before) / idle_secs as f64 * 100.0;

    let mut hires = Vec::new();
    for (i, &count) in hire.iter().enumerate() {
        if count as usize >= n {
            continue;
        }
        let config = node_config(false, count, idle_secs)?;
        let customer = start_node(dir, &format!("customer-{i}"), &config, &bootstrap, false).await?;
        customer.node().wait_announced().await;
        let storage = customer.service::<Storage>().context("the storage wing runs")?;
        let t = Instant::now();
        let slots = storage.ensure_suppliers().await.with_context(|| format!("hiring {count} suppliers"))?;
        hires.push(HireFigure { suppliers: slots.len() as u16, secs: t.elapsed().as_secs_f64() });
    }
    let search = match options.search {
        0 => None,
        count => Some(measure_search(dir, &bootstrap, count, idle_secs).await?),
    };
    let repair = match options.repair {
        0 => None,
        count => Some(measure_repair(dir, &bootstrap, &daemons, count, idle_secs).await?),
    };
    let (base, idle) = (rss_base.unwrap_or(0.0), rss_idle.unwrap_or(0.0));
    Ok(SimReport {
        nodes: n,
        hop_bound: (n as f64).log2().ceil() as u32,
        start_secs,
        announce_retries,
        routing_table_mean,
        reachability,
        connections_busy_mean,
        connections_idle_mean,
        rss_base_mib: base,
        rss_busy_mib: rss_busy.unwrap_or(0.0),
        rss_idle_mib: idle,
        mib_per_node: (idle - base) / n as f64,
        idle_cpu_percent,
        identity: identity.figures(),
        nickname: nickname.figures(),
        hire: hires,
        search,
        repair,
    })
}

/// See [`RepairFigures`]. The supplier lost is never one of the bootstrap nodes (later customers join through them).
async fn measure_repair(
    dir: &Path,
    bootstrap: &[String],
    daemons: &[Daemon],
    count: usize,
    idle_secs: u64,
) -> Result<RepairFigures> {
    const DATA_BYTES: usize = 256 << 10;
    let maintenance = MaintenanceConfig::devnet();
    let policy = maintenance.policy();
    let (mut hire, mut replaced, mut full) = (Vec::new(), Vec::new(), Vec::new());
    let mut customers = Vec::new();
    for i in 0..count {
        let config = node_config_with(false, 4, idle_secs, maintenance.clone())?;
        let c = start_node(dir, &format!("repair-{i}"), &config, bootstrap, false).await?;
        c.node().wait_announced().await;
        let storage = c.service::<Storage>().context("the storage wing runs")?;
        let t = Instant::now();
        storage.ensure_suppliers().await.context("a repair customer hiring")?;
        hire.push(t.elapsed().as_secs_f64());
        let data = dir.join(format!("repair-{i}-data"));
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("data.bin"), (0..DATA_BYTES).map(|_| rand::random::<u8>()).collect::<Vec<u8>>())?;
        storage.backup(&data, bitdust_node::Progress::new()).await?;
        // the first position whose supplier is not a bootstrap node
        let slots = storage.suppliers()?;
        let (position, lost, daemon) = slots
            .iter()
            .find_map(|s| {
                let peer = PeerId::from_bytes(&s.peer_id).ok()?;
                let d = daemons.iter().skip(BOOTSTRAP_NODES).find(|d| d.node().peer_id() == peer)?;
                Some((s.position, s.peer_id.clone(), d))
            })
            .context("every supplier is a bootstrap node")?;
        daemon.shutdown().await;
        let t = Instant::now();
        let mut replaced_after = None;
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if replaced_after.is_none()
                && storage.suppliers()?.iter().any(|s| s.position == position && s.peer_id != lost)
            {
                replaced_after = Some(t.elapsed().as_secs_f64());
            }
            let whole = storage.health()?.iter().all(|v| v.full == v.blocks) && storage.rebuild_queue()?.is_empty();
            if let (Some(r), true) = (replaced_after, whole) {
                replaced.push(r);
                full.push(t.elapsed().as_secs_f64());
                break;
            }
            if t.elapsed().as_secs() > 300 {
                bail!("customer {i}: no full redundancy 300 s after losing a supplier");
            }
        }
        customers.push(c);
    }
    let hire_secs = Spread::of(hire);
    // churn with the same policy: nodes that never go down, one scripted departure per customer, links far faster
    // than 256 KiB needs (the memory transport)
    let forever = crate::churn::Sessions { up_median_h: 1e9, up_sigma: 0.0, down_median_h: 1.0, down_sigma: 0.0 };
    let scenario = crate::churn::Scenario {
        departures_per_year: 0.0,
        disk_losses_per_year: 0.0,
        always_on_share: 1.0,
        customer_always_on_share: 1.0,
        always_on: forever,
        desktop: forever,
        upload_mbit: 1000.0,
        hire_secs: hire_secs.median,
        ..crate::churn::Scenario::named("storj")?
    };
    let o = crate::churn::Options {
        nodes: daemons.len().max(5),
        customers: 100,
        years: 1.0 / (365.25 * 24.0),
        k: 2,
        n: 4,
        data_bytes: DATA_BYTES as u64,
        units: 16,
        fire_after_h: 1.0,
        audit_interval_h: 1.0,
        seed: 1,
        policy: Some(policy),
        scripted_departure_ms: Some(60_000),
    };
    let predicted = crate::churn::run(&o, &scenario)?;
    drop(customers);
    Ok(RepairFigures {
        customers: count,
        fire_after_secs: policy.timings.fire_after_ms as f64 / 1000.0,
        hire_secs,
        replaced_after_secs: Spread::of(replaced),
        full_after_secs: Spread::of(full),
        predicted_replaced_secs: predicted.replaced_p50_h * 3600.0,
        predicted_full_secs: predicted.repair_p50_h * 3600.0,
    })
}

/// [`SEARCH_PUBLISHERS`] new customers hire suppliers, back up a small file and publish it under the keyword
/// `simdata`; then [`SEARCHERS`] new nodes join and `count` searches for it run from random ones of them. Only
/// these run the messages wing (the others route the DHT and hold its provider records, which is all a search
/// asks of them): with the wing on every one of 1,000 nodes in one process, joining became superlinear (300 nodes
/// took 340 s against 16 s for 100), the wings' periodic work adding up on the two cores they share.
async fn measure_search(dir: &Path, bootstrap: &[String], count: usize, idle_secs: u64) -> Result<SearchFigures> {
    use bitdust_messages::Messages;
    let mut publishers = Vec::new();
    let mut publish_secs = Vec::new();
    for i in 0..SEARCH_PUBLISHERS {
        let config = node_config(false, 2, idle_secs)?;
        let p = start_node(dir, &format!("publisher-{i}"), &config, bootstrap, true).await?;
        p.node().wait_announced().await;
        let storage = p.service::<Storage>().context("the storage wing runs")?;
        storage.ensure_suppliers().await.context("a publisher hiring")?;
        let data = dir.join(format!("publisher-{i}-data"));
        std::fs::create_dir_all(&data)?;
        std::fs::write(data.join("readme.txt"), format!("public data number {i}\n").repeat(100))?;
        let report = storage.backup(&data, bitdust_node::Progress::new()).await?;
        let m = p.service::<Messages>().context("the messages wing runs")?;
        let t = Instant::now();
        m.share_public(&report.name, None, &format!("Simulated data {i}"), "", &format!("simdata set{i}")).await?;
        publish_secs.push(t.elapsed().as_secs_f64());
        publishers.push(p);
    }
    let plain = node_config(false, 0, idle_secs)?;
    let mut searchers = Vec::new();
    for i in 0..SEARCHERS {
        let s = start_node(dir, &format!("searcher-{i}"), &plain, bootstrap, true).await?;
        s.node().wait_announced().await;
        searchers.push(s);
    }
    let mut latency = Vec::new();
    let mut found_all = 0;
    for _ in 0..count {
        let who = rand::Rng::gen_range(&mut rand::thread_rng(), 0..searchers.len());
        let m = searchers[who].service::<Messages>().context("the messages wing runs")?;
        let t = Instant::now();
        let r = m.search("simdata").await?;
        latency.push(t.elapsed().as_secs_f64() * 1e3);
        if r.hits.len() == SEARCH_PUBLISHERS {
            found_all += 1;
        }
    }
    drop(publishers);
    Ok(SearchFigures {
        publishers: SEARCH_PUBLISHERS,
        searches: count,
        found_all,
        latency_ms: Spread::of(latency),
        publish_secs: Spread::of(publish_secs),
    })
}

#[derive(Default)]
struct Samples {
    failures: usize,
    latency_ms: Vec<f64>,
    requests: Vec<f64>,
    hops: Vec<f64>,
}

impl Samples {
    fn add(&mut self, ok: bool, ms: f64, requests: u32, hops: Option<u32>) {
        if ok {
            self.latency_ms.push(ms);
            self.requests.push(f64::from(requests));
        } else {
            self.failures += 1;
        }
        // A replay that never reaches a holder counts as the worst case.
        self.hops.push(f64::from(hops.unwrap_or(MAX_ROUNDS)));
    }

    fn figures(self) -> LookupFigures {
        LookupFigures {
            failures: self.failures,
            latency_ms: Spread::of(self.latency_ms),
            requests: Spread::of(self.requests),
            hops: Spread::of(self.hops),
        }
    }
}

/// Replays an iterative Kademlia lookup for `key` from `source` over the routing tables in `tables` and returns
/// its hop count: the round (1-based; 0 if `source` holds the record) in which the first holder is asked. Each
/// round asks the `ALPHA` closest not-yet-asked candidates among the `K` closest known; an asked node answers
/// with the `K` closest entries of its routing table. Holders are the `K` nodes of `everyone` closest to the key
/// and `publishers` (who keep their own records). `None` if the candidates run out or `MAX_ROUNDS` pass.
pub fn replay_hops(
    tables: &HashMap<PeerId, Vec<PeerId>>,
    everyone: &[PeerId],
    source: PeerId,
    key: &[u8],
    publishers: &[PeerId],
) -> Option<u32> {
    let target = KBucketKey::new(key.to_vec());
    let distance = |p: &PeerId| KBucketKey::from(*p).distance(&target);
    let mut by_distance: Vec<&PeerId> = everyone.iter().collect();
    by_distance.sort_by_key(|p| distance(p));
    let holders: HashSet<PeerId> = by_distance.into_iter().take(K).copied().chain(publishers.iter().copied()).collect();
    if holders.contains(&source) {
        return Some(0);
    }
    let mut known: BTreeMap<_, PeerId> = BTreeMap::new();
    let mut asked: HashSet<PeerId> = HashSet::from([source]);
    let learn = |known: &mut BTreeMap<_, PeerId>, from: &PeerId| {
        let mut entries: Vec<PeerId> = tables.get(from).cloned().unwrap_or_default();
        entries.sort_by_key(|p| distance(p));
        for p in entries.into_iter().take(K) {
            known.insert(distance(&p), p);
        }
    };
    learn(&mut known, &source);
    for round in 1..=MAX_ROUNDS {
        let next: Vec<PeerId> = known.values().take(K).filter(|p| !asked.contains(*p)).take(ALPHA).copied().collect();
        if next.is_empty() {
            return None;
        }
        if next.iter().any(|p| holders.contains(p)) {
            return Some(round);
        }
        for p in &next {
            asked.insert(*p);
            learn(&mut known, p);
        }
    }
    None
}

async fn mean_connections(nodes: &[Arc<Node>]) -> f64 {
    let mut total = 0usize;
    for node in nodes {
        total += node.network().status().await.map(|s| s.connections.len()).unwrap_or(0);
    }
    total as f64 / nodes.len().max(1) as f64
}

/// Returns freed heap pages to the system, so the resident set counts live memory only (glibc keeps freed
/// chunks of closed connections otherwise).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only releases free memory at the top of each arena.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// CPU seconds (user + system) this process has used.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and reads nothing else.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// This process's resident memory in MiB (`VmRSS` of `/proc/self/status`; `None` elsewhere than Linux).
fn rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n).map(|_| PeerId::random()).collect()
    }

    #[test]
    fn full_routing_tables_reach_a_holder_in_one_hop() {
        let all = peers(200);
        let tables: HashMap<PeerId, Vec<PeerId>> = all.iter().map(|p| (*p, all.clone())).collect();
        let key = b"/bitdust/nickname/x".to_vec();
        let source = all.iter().find(|p| replay_hops(&tables, &all, **p, &key, &[]) != Some(0)).copied().unwrap();
        assert_eq!(replay_hops(&tables, &all, source, &key, &[]), Some(1));
    }

    #[test]
    fn a_chain_takes_one_hop_per_link_and_a_dead_end_fails() {
        // Each node knows only the next one: from the first, a holder is reached only by walking the chain.
        let all = peers(30);
        let key = b"k".to_vec();
        let target = KBucketKey::new(key.clone());
        let mut sorted = all.clone();
        sorted.sort_by_key(|p| std::cmp::Reverse(KBucketKey::from(*p).distance(&target)));
        // farthest first; the last K are the holders
        let tables: HashMap<PeerId, Vec<PeerId>> =
            sorted.windows(2).map(|w| (w[0], vec![w[1]])).chain([(sorted[29], vec![])]).collect();
        let hops = replay_hops(&tables, &all, sorted[0], &key, &[]);
        assert_eq!(hops, Some((sorted.len() - K) as u32), "one hop per link until the first of the K closest");
        let mut cut = tables.clone();
        cut.insert(sorted[3], vec![]);
        assert_eq!(replay_hops(&cut, &all, sorted[0], &key, &[]), None);
    }

    #[test]
    fn spread_uses_nearest_rank() {
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!((s.count, s.median, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        assert_eq!(Spread::of(vec![]).count, 0);
    }
}
