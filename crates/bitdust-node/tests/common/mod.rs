//! The in-process test kit: a bootstrap node, suppliers and customers in one process on 127.0.0.1, each
//! with its own home in a temp folder. Every wait has a timeout.
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bitdust_core::keys::NodeKeys;
use bitdust_node::home::{Config, CustomerConfig, MaintenanceConfig};
use bitdust_node::{archive, Home, Node, StartOptions};
use filetime::FileTime;

pub const WAIT: Duration = Duration::from_secs(60);

pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

pub struct Net {
    pub dir: tempfile::TempDir,
    pub _boot: Arc<Node>,
    pub boot_addr: String,
    pub suppliers: Vec<Arc<Node>>,
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
    }
}

/// Polls `check` every 50 ms until it is true; panics after [`WAIT`].
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

pub async fn start(
    dir: &Path,
    name: &str,
    bootstrap: &[String],
    donate: Option<u64>,
    customer: CustomerConfig,
    keys: Option<NodeKeys>,
) -> Arc<Node> {
    let config = Config { customer, ..Config::default() };
    start_with(dir, name, bootstrap, donate, config, keys, "/ip4/127.0.0.1/tcp/0").await
}

/// Restarts the node of `home` once the previous instance has released its database (it is dropped
/// asynchronously after `shutdown`).
pub async fn restart(home: &Home, opts: StartOptions) -> Arc<Node> {
    within("restart", async {
        loop {
            match Node::start(Home::new(home.root()), opts.clone()).await {
                Ok(n) => break n,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
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
) -> Arc<Node> {
    let home = Home::new(dir.join(name));
    if !home.is_initialized() {
        home.init(&keys.unwrap_or_else(NodeKeys::generate), name, &config).unwrap();
    }
    let opts = StartOptions {
        listen: vec![listen.into()],
        bootstrap: bootstrap.to_vec(),
        donate_bytes: donate,
        ..StartOptions::default()
    };
    Node::start(home, opts).await.unwrap()
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

    pub async fn customer(&self, name: &str, suppliers: u16, needed: u64) -> Arc<Node> {
        let c = start(
            self.dir.path(),
            name,
            std::slice::from_ref(&self.boot_addr),
            None,
            CustomerConfig { suppliers, data_shards: 0, needed_bytes: needed, blocks_in_flight: 4 },
            None,
        )
        .await;
        within("customer announced", c.wait_announced()).await;
        c
    }

    pub fn supplier_of(&self, customer: &Node, position: u16) -> Arc<Node> {
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

pub fn fragment_files(supplier: &Node) -> Vec<std::path::PathBuf> {
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
