//! `bitdust-lab groups`: group message latency with N members (issue 16's figures for 10 and 100 members).
//!
//! N full nodes run in this process over libp2p's memory transport (as `bitdust-lab sim`), each with the messages
//! wing. Node 0 creates a group and adds the others one at a time, as a user would (each add is a new roster to
//! every member, and a sender key from every member to the newcomer, all over pairwise Olm sessions started from
//! prekeys in the DHT): the time until every member holds the last roster is the *formation* time. Then random
//! members send `messages` messages one after the other; a send returns once every other member reached directly
//! has decrypted and stored it (`Deliver` is answered after that), so its wall time is the time until the whole
//! group has the message: the *latency*, reported as median, p99 and max. The first message of each sender also
//! gives its sender key to the members (counted apart, as *first* messages).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitdust::out;
use bitdust_core::keys::NodeKeys;
use bitdust_messages::{Messages, MessagesService};
use bitdust_node::{Daemon, Home, StartOptions};
use serde::{Deserialize, Serialize};

use crate::sim::{default_dir, node_config, Spread, BOOTSTRAP_NODES, JOIN_WINDOW};

/// What one group size measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupReport {
    /// Members (the admin included).
    pub members: usize,
    /// Seconds until every node had started and announced itself.
    pub start_secs: f64,
    /// Seconds from the first add until every member held the final roster.
    pub formation_secs: f64,
    /// Milliseconds until every other member has a message: a sender's first message (it gives its key first).
    pub first_ms: Spread,
    /// Milliseconds until every other member has a message: every later one.
    pub latency_ms: Spread,
    /// Deliveries that went neither directly nor to a mailbox (should be 0).
    pub missed: usize,
}

/// Runs one group of each size in `members` (each at least 2), `messages` messages each; prints a row per size
/// (or JSON).
///
/// # Errors
/// A node that cannot start, a group that does not form, a message not delivered to every member.
pub fn run(members: &[usize], messages: usize, dir: Option<&Path>, json: bool) -> Result<()> {
    let base = dir.map(Path::to_path_buf).unwrap_or_else(default_dir);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut reports = Vec::new();
    for &n in members {
        if n < 2 {
            bail!("a group has at least 2 members");
        }
        if !json {
            eprintln!("a group of {n} members ...");
        }
        let tmp = tempfile::Builder::new().prefix("bitdust-groups-").tempdir_in(&base)?;
        let report = rt.block_on(measure(tmp.path(), n, messages))?;
        if !json {
            out!(
                "{} members: formed in {:.1} s (nodes up in {:.1} s); latency until every member has it: \
                 median {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} messages (first of a sender: median {:.1} ms); \
                 {} missed",
                report.members,
                report.formation_secs,
                report.start_secs,
                report.latency_ms.median,
                report.latency_ms.p99,
                report.latency_ms.max,
                report.latency_ms.count,
                report.first_ms.median,
                report.missed
            );
        }
        reports.push(report);
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(())
}

async fn start(dir: &Path, name: &str, bootstrap: &[String]) -> Result<Daemon> {
    let home = Home::new(dir.join(name));
    home.init(&NodeKeys::generate(), name, &node_config(false, 0, 120)?)?;
    let options = StartOptions { bootstrap: bootstrap.to_vec(), ..StartOptions::default() };
    let wings: Vec<Box<dyn bitdust_node::Service>> = vec![MessagesService::new()];
    Daemon::start(home, options, wings).await.with_context(|| format!("starting {name}"))
}

async fn measure(dir: &Path, n: usize, messages: usize) -> Result<GroupReport> {
    let started = Instant::now();
    let mut daemons: Vec<Daemon> = Vec::with_capacity(n + 1);
    let mut bootstrap: Vec<String> = Vec::new();
    // a few plain nodes first, so that a small group's DHT has the bootstrap nodes a real network has
    let total = n.max(BOOTSTRAP_NODES + 1);
    for i in 0..total {
        if i >= JOIN_WINDOW {
            daemons[i - JOIN_WINDOW].node().wait_announced().await;
        }
        let d = start(dir, &format!("node-{i}"), &bootstrap).await?;
        if i < BOOTSTRAP_NODES {
            bootstrap.push(d.node().addresses().into_iter().next().context("a node without an address")?);
        }
        daemons.push(d);
    }
    futures::future::join_all(daemons.iter().map(|d| d.node().wait_announced())).await;
    let start_secs = started.elapsed().as_secs_f64();
    let wings: Vec<Arc<Messages>> =
        daemons.iter().map(|d| d.service::<Messages>().context("the messages wing runs")).collect::<Result<_>>()?;
    let members = &wings[..n];
    let admin = &members[0];
    let formed = Instant::now();
    admin.group_create("bench").await?;
    for (i, d) in daemons.iter().enumerate().take(n).skip(1) {
        let name = format!("member-{i}");
        admin.add_contact(&d.node().peer_id().to_string(), Some(&name)).await?;
        admin.group_add("bench", &name, false).await?;
    }
    let revision = admin.group("bench")?.roster.roster.revision;
    let deadline = Instant::now() + Duration::from_secs(600);
    while !members.iter().all(|m| m.group("bench").is_ok_and(|g| g.roster.roster.revision == revision)) {
        if Instant::now() > deadline {
            bail!("the group of {n} did not form in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let formation_secs = formed.elapsed().as_secs_f64();
    let (mut first, mut later, mut missed) = (Vec::new(), Vec::new(), 0);
    let mut has_sent = vec![false; n];
    for k in 0..messages {
        let who = rand::Rng::gen_range(&mut rand::thread_rng(), 0..n);
        let t = Instant::now();
        let sent = members[who].group_send("bench", &format!("message {k} from member {who}")).await?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        missed += sent.missed;
        if sent.delivered != n - 1 {
            tracing::warn!(?sent, "a group message not delivered directly to every member");
        }
        if std::mem::replace(&mut has_sent[who], true) {
            later.push(ms);
        } else {
            first.push(ms);
        }
    }
    for d in daemons {
        d.shutdown().await;
    }
    Ok(GroupReport {
        members: n,
        start_secs,
        formation_secs,
        first_ms: Spread::of(first),
        latency_ms: Spread::of(later),
        missed,
    })
}
