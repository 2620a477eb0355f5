//! # bitdust-testkit
//!
//! What every wing's tests need to run real nodes in one process, each with its own home in a temp folder on
//! 127.0.0.1 (the model is rust-libp2p's `swarm-test` and iroh's `test_utils`):
//! - [`within`] and [`until`]: every wait has a timeout ([`WAIT`]) and names what it waits for;
//! - [`home`]: a home with an identity (seeded keys when given) and a config;
//! - [`start`] and [`restart`]: a node and its wings ([`bitdust_node::Daemon`]); a restart waits until the
//!   previous instance has released its database.
//!
//! ```no_run
//! # async fn demo(dir: &std::path::Path) {
//! use bitdust_testkit::{home, loopback, start, within};
//!
//! let h = home(dir, "alice", &bitdust_node::Config::default(), None);
//! let node = start(h, loopback(&[]), Vec::new).await;
//! within("announced", node.node().wait_announced()).await;
//! # }
//! ```

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use bitdust_core::keys::NodeKeys;
use bitdust_node::{Config, Daemon, Home, Service, StartOptions};

/// Longest wait of any test step: a step that takes longer fails with its name.
pub const WAIT: Duration = Duration::from_secs(60);
/// How often [`until`] checks its condition.
const POLL: Duration = Duration::from_millis(50);

/// Runs `f`, failing the test (naming `what`) if it takes longer than [`WAIT`].
///
/// # Panics
/// On the timeout: that is the test failing.
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f).await.unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

/// Waits until `check` holds, checking every 50 ms, for at most [`WAIT`].
///
/// # Panics
/// On the timeout.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(POLL).await;
        }
    })
    .await
}

/// The home `dir/name`, created with an identity (from `keys`, or new ones) and `config` if it has none.
///
/// # Panics
/// If the home cannot be written.
pub fn home(dir: &Path, name: &str, config: &Config, keys: Option<NodeKeys>) -> Home {
    let home = Home::new(dir.join(name));
    if !home.is_initialized() {
        home.init(&keys.unwrap_or_else(NodeKeys::generate), name, config)
            .unwrap_or_else(|e| panic!("creating the home of {name}: {e:#}"));
    }
    home
}

/// Start options for a test node: listen on a free loopback TCP port, bootstrap from `bootstrap`.
pub fn loopback(bootstrap: &[String]) -> StartOptions {
    StartOptions {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        bootstrap: bootstrap.to_vec(),
        ..StartOptions::default()
    }
}

/// Starts the node of `home` with the wings `wings` makes.
///
/// # Panics
/// If it cannot start.
pub async fn start(home: Home, options: StartOptions, wings: impl Fn() -> Vec<Box<dyn Service>>) -> Daemon {
    let name = home.root().display().to_string();
    Daemon::start(home, options, wings()).await.unwrap_or_else(|e| panic!("starting {name}: {e:#}"))
}

/// Starts the node of `home` again once the previous instance has released its database (it is dropped
/// asynchronously after its network stops), for at most [`WAIT`].
///
/// # Panics
/// On the timeout.
pub async fn restart(home: &Home, options: StartOptions, wings: impl Fn() -> Vec<Box<dyn Service>>) -> Daemon {
    within("restart", async {
        loop {
            match Daemon::start(Home::new(home.root()), options.clone(), wings()).await {
                Ok(d) => break d,
                Err(_) => tokio::time::sleep(POLL).await,
            }
        }
    })
    .await
}
