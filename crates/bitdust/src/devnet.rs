//! `bitdust devnet`: a whole local network on 127.0.0.1, each node its own `bitdust daemon` process with
//! its home under the devnet folder: one bootstrap node, N suppliers and one customer, `alice`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitdust_core::keys::NodeKeys;
use bitdust_node::home::{Config, NatConfig};
use bitdust_node::Home;
use bitdust_storage::config::{CustomerConfig, MaintenanceConfig, StorageConfig, SupplierConfig};

use crate::client::Client;
use crate::out;

/// Space each devnet supplier donates (a quota, not a reservation).
const DEVNET_DONATED_BYTES: u64 = 256 << 30;
/// Space alice asks each supplier for: room for the 4 GiB benchmark file at 2x.
const DEVNET_NEEDED_BYTES: u64 = 32 << 30;
/// A devnet supplier checks every fragment it holds within this many seconds.
const DEVNET_SCRUB_PERIOD_SECS: u64 = 30;
/// How long to wait for the network to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// One devnet node.
pub struct DevNode {
    /// Nickname and folder name.
    pub name: String,
    /// Its home.
    pub home: Home,
    /// Its peer id.
    pub peer_id: String,
    child: Option<Child>,
}

/// A running devnet. Dropping it stops every node it started.
pub struct Devnet {
    /// The folder holding every node's home.
    pub dir: PathBuf,
    /// The nodes: bootstrap, supplier-1..N, alice.
    pub nodes: Vec<DevNode>,
}

/// Free loopback ports for the nodes' configurations. Each socket stays bound until every port is chosen, so the
/// kernel cannot hand out one port twice (it did: one node's API port became another's libp2p port).
#[derive(Default)]
struct PortPicker {
    tcp: Vec<std::net::TcpListener>,
    udp: Vec<std::net::UdpSocket>,
}

impl PortPicker {
    fn tcp(&mut self) -> Result<u16> {
        let socket = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = socket.local_addr()?.port();
        self.tcp.push(socket);
        Ok(port)
    }

    fn udp(&mut self) -> Result<u16> {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = socket.local_addr()?.port();
        self.udp.push(socket);
        Ok(port)
    }
}

/// Which transports devnet nodes listen on. With both, libp2p dials every address of a peer at once and keeps
/// whichever connects first (QUIC usually, its handshake takes fewer round trips); on loopback, TCP + Noise
/// costs about a third less CPU per byte than QUIC (see `bench/cpu-split.sh`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Transports {
    /// TCP and QUIC, as a default node.
    #[default]
    Both,
    /// TCP (Noise, Yamux) only.
    Tcp,
    /// QUIC only.
    Quic,
}

/// How to build a devnet (see [`Devnet::start_with`]).
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Suppliers the customer hires, 2..=64.
    pub suppliers: u16,
    /// Data shards k of the customer's layout RS(k, suppliers); 0: ceil(suppliers / 2).
    pub data_shards: u16,
    /// Spare suppliers beyond those, at most 16.
    pub spares: u16,
    /// Transports the nodes listen on.
    pub transports: Transports,
    /// Every node's maintenance timings (default [`MaintenanceConfig::devnet`]).
    pub maintenance: MaintenanceConfig,
    /// Start the customer (alice) too; without it, its homes stay as they are and its suppliers keep its records.
    pub customer: bool,
    /// Seconds DHT records live in new homes (`None`: the default, 48 hours).
    pub record_ttl_secs: Option<u64>,
    /// Every node backs up incrementally (`customer.incremental`).
    pub incremental: bool,
}

impl DevnetOptions {
    /// `suppliers` to hire and `spares`, everything else as `bitdust devnet` sets it.
    pub fn new(suppliers: u16, spares: u16) -> Self {
        Self {
            suppliers,
            data_shards: 0,
            spares,
            transports: Transports::Both,
            maintenance: MaintenanceConfig::devnet(),
            customer: true,
            record_ttl_secs: None,
            incremental: true,
        }
    }
}

/// The `bitdust` executable the devnet's daemons run: this program (whatever it is called), except from the lab's
/// `bitdust-lab`, which runs the `bitdust` beside it (both are built into the same folder: `cargo build -p bitdust
/// -p bitdust-lab`).
///
/// # Errors
/// If this program is the lab's and there is no `bitdust` beside it.
pub fn bitdust_exe() -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating this program")?;
    if !me.file_stem().is_some_and(|s| s.to_string_lossy().starts_with("bitdust-lab")) {
        return Ok(me);
    }
    let sibling = me.with_file_name("bitdust");
    if !sibling.exists() {
        bail!("{} is missing: build it first (cargo build --release -p bitdust)", sibling.display());
    }
    Ok(sibling)
}

impl Devnet {
    /// Creates (or reuses) the homes under `dir` and starts every node, waiting until each has announced
    /// itself in the DHT.
    pub fn start(dir: &Path, suppliers: u16, spares: u16) -> Result<Self> {
        Self::start_with(dir, &DevnetOptions::new(suppliers, spares))
    }

    /// [`Devnet::start`] with every option.
    ///
    /// # Errors
    /// Options out of range; as [`Devnet::start`].
    pub fn start_with(dir: &Path, options: &DevnetOptions) -> Result<Self> {
        let DevnetOptions { suppliers, data_shards, spares, transports, .. } = *options;
        if !(2..=64).contains(&suppliers) || spares > 16 {
            bail!("--suppliers must be between 2 and 64, --spares at most 16");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = std::fs::canonicalize(dir)?;
        let mut names = vec!["bootstrap".to_string()];
        names.extend((1..=suppliers + spares).map(|i| format!("supplier-{i}")));
        if options.customer {
            names.push("alice".to_string());
        }
        let mut net = Devnet { dir: dir.clone(), nodes: Vec::new() };
        let mut ports = PortPicker::default();
        for name in &names {
            let home = Home::new(dir.join(name));
            if !home.is_initialized() {
                let is_supplier = name.starts_with("supplier-");
                let mut config = Config {
                    api_port: ports.tcp()?,
                    listen: {
                        let mut listen = Vec::new();
                        if transports != Transports::Quic {
                            listen.push(format!("/ip4/127.0.0.1/tcp/{}", ports.tcp()?));
                        }
                        if transports != Transports::Tcp {
                            listen.push(format!("/ip4/127.0.0.1/udp/{}/quic-v1", ports.udp()?));
                        }
                        listen
                    },
                    bootstrap: Vec::new(),
                    // the bootstrap node is public: it also relays for nodes behind NAT
                    nat: NatConfig { relay_server: name == "bootstrap", ..NatConfig::default() },
                    ..Config::default()
                };
                if let Some(ttl) = options.record_ttl_secs {
                    config.record_ttl_secs = ttl.max(1);
                }
                let storage = StorageConfig {
                    supplier: SupplierConfig {
                        enabled: is_supplier,
                        donated_bytes: if is_supplier { DEVNET_DONATED_BYTES } else { 0 },
                        scrub_period_secs: DEVNET_SCRUB_PERIOD_SECS,
                        ..SupplierConfig::default()
                    },
                    customer: CustomerConfig {
                        suppliers,
                        data_shards,
                        needed_bytes: DEVNET_NEEDED_BYTES,
                        incremental: options.incremental,
                        ..CustomerConfig::default()
                    },
                    maintenance: options.maintenance.clone(),
                };
                storage.write_into(&mut config)?;
                home.init(&NodeKeys::generate(), name, &config)?;
            }
            let peer_id = home.keys()?.peer_id().to_string();
            net.nodes.push(DevNode { name: name.clone(), home, peer_id, child: None });
        }
        drop(ports);
        // bootstrap first, then everybody else pointing at it
        net.spawn(0, &[])?;
        let boot = Client::for_home(&net.nodes[0].home)?;
        let addrs = wait_for(
            || {
                let st: bitdust_api::Status = boot.get("/status")?;
                let addrs = st.node.listen_addrs;
                if addrs.is_empty() {
                    bail!("no address yet")
                }
                Ok(addrs)
            },
            "the bootstrap node",
            &net.nodes[0].home,
        )?;
        for i in 1..net.nodes.len() {
            net.spawn(i, &addrs)?;
        }
        for node in &net.nodes {
            wait_announced(node)?;
        }
        Ok(net)
    }

    fn spawn(&mut self, i: usize, bootstrap: &[String]) -> Result<()> {
        let exe = bitdust_exe()?;
        let node = &mut self.nodes[i];
        let _ = std::fs::remove_file(node.home.path("api.port"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.home.path("daemon.log"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("--home").arg(node.home.root()).arg("daemon");
        for b in bootstrap {
            cmd.arg("--bootstrap").arg(b);
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        node.child = Some(cmd.spawn().with_context(|| format!("starting {}", node.name))?);
        Ok(())
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&DevNode> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Stops node `name` (SIGTERM, then SIGKILL after 5 s), as a user would with `kill`.
    pub fn stop(&mut self, name: &str) -> Result<()> {
        let node = self.nodes.iter_mut().find(|n| n.name == name).with_context(|| format!("no node {name}"))?;
        if let Some(child) = node.child.take() {
            terminate(child);
        }
        Ok(())
    }

    /// Starts node `name` again (after [`Devnet::stop`]) and waits until it is announced.
    ///
    /// # Errors
    /// An unknown node, or it did not start.
    pub fn start_again(&mut self, name: &str) -> Result<()> {
        let i = self.nodes.iter().position(|n| n.name == name).with_context(|| format!("no node {name}"))?;
        let boot = Client::for_home(&self.nodes[0].home)?;
        let st: bitdust_api::Status = boot.get("/status")?;
        self.spawn(i, &st.node.listen_addrs)?;
        wait_announced(&self.nodes[i])
    }

    /// Stops every node.
    pub fn stop_all(&mut self) {
        for node in self.nodes.iter_mut().rev() {
            if let Some(child) = node.child.take() {
                terminate(child);
            }
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn terminate(mut child: Child) {
    // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped); no memory is involved.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Waits until `node`'s daemon says it is announced.
fn wait_announced(node: &DevNode) -> Result<()> {
    let c = Client::for_home(&node.home)?;
    wait_for(
        || {
            let st: bitdust_api::Status = c.get("/status")?;
            if st.node.announced {
                Ok(())
            } else {
                bail!("not announced yet")
            }
        },
        &node.name,
        &node.home,
    )
}

/// Polls `check` until it succeeds or [`READY_TIMEOUT`] passes.
fn wait_for<T>(mut check: impl FnMut() -> Result<T>, what: &str, home: &Home) -> Result<T> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(e) if Instant::now() > deadline => {
                bail!("{what} did not become ready: {e:#} (see {})", home.path("daemon.log").display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// `bitdust devnet`: starts the network, prints what to type next, waits for Ctrl-C, stops everything.
pub fn run(dir: &Path, options: &DevnetOptions) -> Result<()> {
    eprintln!("starting a local bitdust network in {} ...", dir.display());
    let mut net = Devnet::start_with(dir, options)?;
    let (suppliers, spares) = (options.suppliers, options.spares);
    let alice = net.dir.join("alice").display().to_string();
    out!(
        "devnet running: 1 bootstrap node, {} suppliers ({suppliers} to hire, {spares} spare), customer home {alice}",
        suppliers + spares
    );
    for n in &net.nodes {
        out!("  {:<12} {}  (pid file {})", n.name, n.peer_id, n.home.path("daemon.pid").display());
    }
    out!();
    out!("try:");
    out!("  bitdust --home {alice} backup /usr/share/doc");
    out!("  bitdust --home {alice} ls");
    out!("  bitdust --home {alice} suppliers");
    out!("  kill $(cat {}/supplier-1/daemon.pid)    # stop a supplier: it is replaced and its data rebuilt within about a minute", net.dir.display());
    out!("  bitdust --home {alice} automata                # watch the state machines");
    out!("  bitdust --home {alice} health");
    out!("  bitdust --home {alice} restore doc --to /tmp/restored");
    out!();
    out!("press Ctrl-C to stop every node");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    eprintln!("stopping every node ...");
    net.stop_all();
    Ok(())
}
