//! The storage wing's test network on `bitdust-testkit`: a bootstrap node, suppliers and customers in one
//! process on 127.0.0.1, each with its own home in a temp folder; trees with the awkward cases, and checks.
#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::sync::Arc;

use bitdust_core::keys::NodeKeys;
use bitdust_node::{Config, Daemon, Home, Node, StartOptions};
use bitdust_storage::config::{CustomerConfig, MaintenanceConfig, StorageConfig};
use bitdust_storage::service::archive;
use bitdust_storage::{Overrides, Storage, StorageService};
use filetime::FileTime;

/// A node of the test network with the storage wing: derefs to its [`Storage`]; [`Peer::node`] is the runtime.
pub struct Peer {
    pub daemon: Daemon,
    pub storage: Arc<Storage>,
}

impl std::ops::Deref for Peer {
    type Target = Storage;
    fn deref(&self) -> &Storage {
        &self.storage
    }
}

impl Peer {
    pub async fn start(home: Home, opts: StartOptions, donate: Option<u64>) -> Arc<Self> {
        Self::wrap(bitdust_testkit::start(home, opts, wings(donate)).await)
    }
    fn wrap(daemon: Daemon) -> Arc<Self> {
        let storage = daemon.service::<Storage>().expect("the storage wing runs");
        Arc::new(Self { daemon, storage })
    }
    pub fn peer_id(&self) -> bitdust_core::PeerId {
        self.node().peer_id()
    }
    pub fn network(&self) -> &bitdust_net::Network {
        self.node().network()
    }
    pub fn home(&self) -> &Home {
        self.node().home()
    }
    pub fn addresses(&self) -> Vec<String> {
        self.node().addresses()
    }
    pub async fn shutdown(&self) {
        self.node().shutdown().await
    }
    pub async fn wait_announced(&self) {
        self.node().wait_announced().await
    }
    pub async fn lookup_identity(
        &self,
        peer: bitdust_core::PeerId,
    ) -> anyhow::Result<bitdust_core::identity::SignedIdentity> {
        self.node().lookup_identity(peer).await
    }
    pub fn runtime(&self) -> &Arc<Node> {
        self.node()
    }
    pub async fn backup(
        &self,
        source: &Path,
        progress: bitdust_node::Progress,
    ) -> anyhow::Result<bitdust_storage::service::customer::BackupReport> {
        self.storage.backup(source, progress).await
    }
    pub async fn restore(
        &self,
        name: &str,
        version: Option<u32>,
        target: &Path,
        force: bool,
        progress: bitdust_node::Progress,
    ) -> anyhow::Result<bitdust_storage::service::customer::RestoreReport> {
        self.storage.restore(name, version, target, force, progress).await
    }
    pub async fn backup_with(
        &self,
        source: &Path,
        excludes: &bitdust_storage::service::archive::Excludes,
    ) -> anyhow::Result<bitdust_storage::service::customer::BackupReport> {
        self.storage.backup_with(source, excludes, bitdust_node::Progress::new()).await
    }
    pub async fn forget(
        &self,
        name: &str,
        keep: &bitdust_storage::proto::policy::KeepPolicy,
        dry_run: bool,
    ) -> anyhow::Result<bitdust_api::ForgetReport> {
        self.storage.forget(name, keep, dry_run).await
    }
}

pub use bitdust_testkit::{until, within};

/// The catalog a new device gets from the suppliers with the key alone, retried while the DHT does not know the
/// supplier list yet.
pub async fn recover(fresh: &Peer) -> bitdust_storage::proto::catalog::Catalog {
    within("recover", async {
        loop {
            match fresh.recover_catalog().await {
                Ok(c) => break c,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            }
        }
    })
    .await
}

/// The wings of a test node: storage, supplying `donate` bytes if given.
pub fn wings(donate: Option<u64>) -> impl Fn() -> Vec<Box<dyn bitdust_node::Service>> {
    move || vec![StorageService::new(Overrides { donate_bytes: donate }) as Box<dyn bitdust_node::Service>]
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub _boot: Arc<Peer>,
    pub boot_addr: String,
    pub suppliers: Vec<Arc<Peer>>,
}

/// Maintenance timings for tests: a silent supplier is fired after 3 s, audits every 300 ms.
pub fn fast_maintenance() -> MaintenanceConfig {
    MaintenanceConfig {
        heartbeat_ms: 200,
        suspect_after_ms: 600,
        offline_after_ms: 1_200,
        fire_after_ms: 3_000,
        cool_down_ms: 200,
        audit_interval_ms: 300,
        rebuild_retry_ms: 300,
        audit_failures_to_fire: 3,
    }
}

/// A config with these storage settings.
pub fn config_with(customer: CustomerConfig, maintenance: MaintenanceConfig) -> Config {
    let mut config = Config::default();
    StorageConfig { customer, maintenance, ..StorageConfig::default() }.write_into(&mut config).unwrap();
    config
}

pub async fn start(
    dir: &Path,
    name: &str,
    bootstrap: &[String],
    donate: Option<u64>,
    customer: CustomerConfig,
    keys: Option<NodeKeys>,
) -> Arc<Peer> {
    let config = config_with(customer, MaintenanceConfig::default());
    start_with(dir, name, bootstrap, donate, config, keys, "/ip4/127.0.0.1/tcp/0").await
}

/// Restarts the node of `home` once the previous instance has released its database (it is dropped
/// asynchronously after `shutdown`).
pub async fn restart(home: &Home, opts: StartOptions, donate: Option<u64>) -> Arc<Peer> {
    Peer::wrap(bitdust_testkit::restart(home, opts, wings(donate)).await)
}

/// Starts (or restarts) node `name` with a full config and a listen address.
pub async fn start_with(
    dir: &Path,
    name: &str,
    bootstrap: &[String],
    donate: Option<u64>,
    config: Config,
    keys: Option<NodeKeys>,
    listen: &str,
) -> Arc<Peer> {
    let home = bitdust_testkit::home(dir, name, &config, keys);
    let opts = StartOptions { listen: vec![listen.into()], bootstrap: bootstrap.to_vec(), ..StartOptions::default() };
    Peer::start(home, opts, donate).await
}

impl Net {
    pub async fn new(suppliers: usize, donate: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let boot = start(dir.path(), "bootstrap", &[], None, CustomerConfig::default(), None).await;
        let boot_addr = boot.addresses()[0].clone();
        let mut list = Vec::new();
        for i in 0..suppliers {
            list.push(
                start(
                    dir.path(),
                    &format!("supplier-{i}"),
                    std::slice::from_ref(&boot_addr),
                    Some(donate),
                    CustomerConfig::default(),
                    None,
                )
                .await,
            );
        }
        for s in &list {
            within("supplier announced", s.wait_announced()).await;
        }
        Self { dir, _boot: boot, boot_addr, suppliers: list }
    }

    pub async fn customer(&self, name: &str, suppliers: u16, needed: u64) -> Arc<Peer> {
        self.customer_with(name, suppliers, needed, false).await
    }

    /// A customer that backs up incrementally (catalog format 2) if `incremental`.
    pub async fn customer_with(&self, name: &str, suppliers: u16, needed: u64, incremental: bool) -> Arc<Peer> {
        let c = start(
            self.dir.path(),
            name,
            std::slice::from_ref(&self.boot_addr),
            None,
            CustomerConfig {
                suppliers,
                data_shards: 0,
                needed_bytes: needed,
                blocks_in_flight: 4,
                incremental,
                ..CustomerConfig::default()
            },
            None,
        )
        .await;
        within("customer announced", c.wait_announced()).await;
        c
    }

    /// A customer with `n` suppliers and the short maintenance timings ([`fast_maintenance`]), so that a lost
    /// supplier is replaced within seconds; incremental backups if `incremental`.
    pub async fn healing_customer(&self, name: &str, n: u16, incremental: bool) -> Arc<Peer> {
        let config = config_with(
            CustomerConfig {
                suppliers: n,
                data_shards: 0,
                needed_bytes: 256 << 20,
                blocks_in_flight: 4,
                incremental,
                ..CustomerConfig::default()
            },
            fast_maintenance(),
        );
        let c = start_with(
            self.dir.path(),
            name,
            std::slice::from_ref(&self.boot_addr),
            None,
            config,
            None,
            "/ip4/127.0.0.1/tcp/0",
        )
        .await;
        within("customer announced", c.wait_announced()).await;
        c
    }

    pub fn supplier_of(&self, customer: &Peer, position: u16) -> Arc<Peer> {
        let slots = customer.suppliers().unwrap();
        let peer = slots.iter().find(|s| s.position == position).unwrap().peer().unwrap();
        self.suppliers.iter().find(|s| s.peer_id() == peer).unwrap().clone()
    }
}

/// A tree with the awkward cases: non-ASCII names and spaces, empty files and folders, symlinks, modes,
/// fixed mtimes, a multi-block file. The same `seed` gives the same tree.
pub fn make_tree(root: &Path, seed: u8) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("docs/empty folder")).unwrap();
    std::fs::create_dir_all(root.join("naïve café/日本語")).unwrap();
    std::fs::write(root.join("docs/read me.txt"), format!("hello {seed}\n").repeat(1000)).unwrap();
    std::fs::write(root.join("docs/empty"), b"").unwrap();
    std::fs::write(root.join("naïve café/日本語/ファイル.bin"), vec![seed; 3000]).unwrap();
    let mut x = 0x9e3779b97f4a7c15u64 ^ seed as u64;
    let big: Vec<u8> = (0..9_000_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(root.join("big.bin"), big).unwrap();
    std::os::unix::fs::symlink("docs/read me.txt", root.join("link to readme")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", root.join("dangling")).unwrap();
    std::fs::set_permissions(root.join("docs/read me.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(root.join("naïve café"), std::fs::Permissions::from_mode(0o750)).unwrap();
    for p in [
        "docs/read me.txt",
        "docs/empty",
        "big.bin",
        "naïve café/日本語/ファイル.bin",
        "docs/empty folder",
        "naïve café/日本語",
        "naïve café",
        "docs",
        "",
    ] {
        let t = FileTime::from_unix_time(1_600_000_000 + p.len() as i64, 123_456_789);
        filetime::set_file_times(root.join(p), t, t).unwrap();
    }
}

pub fn assert_same(a: &Path, b: &Path) {
    let diffs = archive::compare_trees(a, b).unwrap();
    assert!(diffs.is_empty(), "trees differ: {diffs:?}");
}

pub fn fragment_files(supplier: &Peer) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![supplier.home().path("store/fragments")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
