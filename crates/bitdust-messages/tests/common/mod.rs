//! What the messages wing's tests share: nodes in one process on 127.0.0.1 and their wings' handles.
#![allow(dead_code)]

use std::sync::Arc;

use bitdust_messages::{Messages, MessagesService};
use bitdust_node::{Daemon, Home, Service};
use bitdust_testkit::{loopback, start, within};

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
