//! What the messages wing's tests share: nodes in one process on 127.0.0.1 and their wings' handles.
#![allow(dead_code)]

use std::sync::Arc;

use bitdust_messages::{Messages, MessagesService};
use bitdust_node::{Daemon, Home, Service};
use bitdust_testkit::{loopback, start, within};

/// The storage wing (a supplier donating `donate` bytes, if given) and the messages wing.
pub fn storage_and_messages(donate: Option<u64>) -> impl Fn() -> Vec<Box<dyn Service>> {
    move || {
        vec![
            bitdust_storage::StorageService::new(bitdust_storage::Overrides { donate_bytes: donate })
                as Box<dyn Service>,
            MessagesService::new(),
        ]
    }
}

/// A node of `home` running [`storage_and_messages`], announced (see [`node`]).
pub async fn full_node(home: Home, bootstrap: &[String], donate: Option<u64>) -> Daemon {
    node(home, bootstrap, storage_and_messages(donate)).await
}

/// A bootstrap node and `n` suppliers (each donating 1 GiB) under `dir`: the daemons (the bootstrap first, kept
/// for the test's length) and the address others join through.
pub async fn supplier_network(dir: &std::path::Path, n: usize) -> (Vec<Daemon>, [String; 1]) {
    let plain = bitdust_node::Config::default();
    let boot = full_node(bitdust_testkit::home(dir, "bootstrap", &plain, None), &[], None).await;
    let b = [boot.node().addresses()[0].clone()];
    let mut nodes = vec![boot];
    for i in 0..n {
        let home = bitdust_testkit::home(dir, &format!("supplier-{i}"), &plain, None);
        nodes.push(full_node(home, &b, Some(1 << 30)).await);
    }
    (nodes, b)
}

/// A customer's config hiring `suppliers` suppliers for `needed_bytes`.
pub fn customer_config(suppliers: u16, needed_bytes: u64) -> bitdust_node::Config {
    let mut config = bitdust_node::Config::default();
    let customer = bitdust_storage::config::CustomerConfig { suppliers, needed_bytes, ..Default::default() };
    bitdust_storage::config::StorageConfig { customer, ..Default::default() }.write_into(&mut config).unwrap();
    config
}

/// The messages wing alone.
pub fn messages_wing() -> Vec<Box<dyn Service>> {
    vec![MessagesService::new()]
}

/// Starts the node of `home` with `wings`, bootstrapping from `bootstrap`, and waits until it is announced (the
/// first node of a network, with no bootstrap, announces once another joins: not waited for).
pub async fn node(home: Home, bootstrap: &[String], wings: impl Fn() -> Vec<Box<dyn Service>>) -> Daemon {
    let d = start(home, loopback(bootstrap), wings).await;
    if !bootstrap.is_empty() {
        within("announced", d.node().wait_announced()).await;
    }
    d
}

/// The node's messages wing.
pub fn messages(d: &Daemon) -> Arc<Messages> {
    d.service::<Messages>().expect("the messages wing runs")
}

/// A string that appears nowhere else.
pub const CANARY: &str = "canary-5f1c9e2a-7b3d-4e8f-a06c-2d9b8e7f4a31";

/// Whether any file under `dir` contains `needle`.
pub fn contains(dir: &std::path::Path, needle: &[u8]) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else { return false };
    entries.flatten().any(|e| {
        let p = e.path();
        if p.is_dir() {
            contains(&p, needle)
        } else {
            std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        }
    })
}
