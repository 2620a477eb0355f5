//! The rebuild executor: takes the due blocks of the durable queue and regenerates their missing fragments from
//! `k` others, on encrypted data only ([`crate::proto::rebuild::regenerate`]), storing each on the current
//! supplier of its position.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use bitdust_core::PeerId;
use bitdust_node::automata::now_ms;

use crate::proto::erasure::Coder;
use crate::proto::maintenance::RebuildStats;
use crate::proto::pipeline::VersionKeys;
use crate::proto::rebuild::{plan_block, regenerate};
use crate::proto::wire::{Request, Response};
use crate::service::maintenance::queue::{Outcome, Queue, QueueItem};
use crate::service::Storage;

impl Storage {
    /// Runs the first due items of the rebuild queue (`customer.blocks_in_flight` blocks concurrently). `down`
    /// are the unreachable suppliers and their positions.
    /// Returns what was done, or `None` if the queue is empty.
    ///
    /// # Errors
    /// If no block could be rebuilt now (too few sources, target unreachable, or every queued block waits for
    /// its next attempt); they stay queued, backing off.
    pub async fn rebuild_next(&self, down: &[(u16, PeerId)]) -> Result<Option<RebuildStats>> {
        // a position is down only while the down supplier still holds it (a replacement may have landed since
        // the list was made)
        let current: HashMap<u16, PeerId> =
            self.suppliers()?.iter().filter_map(|s| Some((s.position, s.peer().ok()?))).collect();
        let down: Vec<u16> = down.iter().filter(|(p, peer)| current.get(p) == Some(peer)).map(|(p, _)| *p).collect();
        let down = down.as_slice();
        let queue = Queue::new(self.node.db());
        let batch = queue.due(now_ms(), self.config.customer.blocks_in_flight.max(1))?;
        if batch.is_empty() {
            let waiting = queue.len()?;
            if waiting == 0 {
                return Ok(None);
            }
            bail!("{waiting} queued blocks wait for their next attempt");
        }
        let results = futures::future::join_all(batch.into_iter().map(|item| self.rebuild_item(item, down))).await;
        let mut total = (0, 0, 0);
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((f, s, g)) => total = (total.0 + f, total.1 + s, total.2 + g),
                Err(e) => errors.push(format!("{e:#}")),
            }
        }
        if total.0 == 0 && !errors.is_empty() {
            bail!("{}", errors.join("; "));
        }
        Ok(Some(RebuildStats { fragments: total.0, bytes_sent: total.1, bytes_fetched: total.2 }))
    }

    /// Rebuilds one queued block. Returns `(fragments stored, bytes sent, bytes fetched)`.
    async fn rebuild_item(&self, item: QueueItem, down: &[u16]) -> Result<(u64, u64, u64)> {
        let catalog = self.catalog()?;
        let Some(version) = catalog.block_set(&item.version_id) else {
            self.finish_item(&item, &item.positions, Outcome::Done)?;
            return Ok((0, 0, 0));
        };
        let Some(meta) = version.blocks.get(item.block as usize) else {
            self.finish_item(&item, &item.positions, Outcome::Done)?;
            return Ok((0, 0, 0));
        };
        let layout = version.layout;
        // targets whose supplier is down wait for its replacement
        let targets: Vec<u16> = item.positions.iter().copied().filter(|p| !down.contains(p)).collect();
        if targets.is_empty() {
            let e = format!("block {} waits for the replacement of position(s) {:?}", item.block, item.positions);
            self.finish_item(&item, &[], Outcome::Waiting(e.clone()))?;
            bail!(e);
        }
        let mut unavailable: Vec<u16> = down.to_vec();
        unavailable.extend(&item.positions);
        let plan = plan_block(layout, &targets, &unavailable)
            .ok_or_else(|| anyhow!("block {}: fewer than {} sources reachable", item.block, layout.k));
        let plan = match plan {
            Ok(p) => p,
            Err(e) => {
                self.finish_item(&item, &[], Outcome::Waiting(format!("{e:#}")))?;
                return Err(e);
            }
        };
        let vkeys = VersionKeys::derive(self.node.keys().master(), version.id);
        let mut sources: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut newly_missing = Vec::new();
        for &p in &plan.sources {
            if sources.len() == layout.k as usize {
                break;
            }
            let id = vkeys.fragment_id(&meta.block_id, p);
            match self.fetch_fragment(&self.peers_for(version.suppliers, p), p, id).await {
                Ok(bytes) if crate::proto::rebuild::check_source(layout, meta, p, &bytes).is_ok() => {
                    sources.push((p, bytes))
                }
                Ok(_) => newly_missing.push(p),
                Err(e) if e.to_string().contains("NotFound") => newly_missing.push(p),
                Err(_) => {}
            }
        }
        if !newly_missing.is_empty() {
            self.enqueue_rebuild(newly_missing.iter().map(|p| (version.id, item.block, *p)))?;
        }
        if sources.len() < layout.k as usize {
            let e = format!("block {}: only {} of {} sources answered", item.block, sources.len(), layout.k);
            self.finish_item(&item, &[], Outcome::Failed(e.clone()))?;
            bail!(e);
        }
        let bytes_fetched: u64 = sources.iter().map(|(_, b)| b.len() as u64).sum();
        let meta_c = meta.clone();
        let targets_c = plan.targets.clone();
        let regenerated = tokio::task::spawn_blocking(move || {
            let refs: Vec<(u16, &[u8])> = sources.iter().map(|(p, b)| (*p, b.as_slice())).collect();
            regenerate(&mut Coder::new(), layout, &meta_c, &refs, &targets_c)
        })
        .await??;
        let mut stored = Vec::new();
        let mut bytes_sent = 0u64;
        let mut errors = Vec::new();
        let current: HashMap<u16, PeerId> =
            self.suppliers()?.iter().filter_map(|s| Some((s.position, s.peer().ok()?))).collect();
        for (p, frag) in regenerated {
            let Some(&peer) = current.get(&p) else {
                errors.push(format!("no supplier at position {p}"));
                continue;
            };
            let id = vkeys.fragment_id(&meta.block_id, p);
            let len = frag.len() as u64;
            match self.request(peer, Request::PutFragment { id, data: frag.into() }).await {
                Ok(Response::Stored) => {
                    stored.push(p);
                    bytes_sent += len;
                }
                Ok(other) => errors.push(format!("position {p}: {other:?}")),
                Err(e) => errors.push(format!("position {p}: {e}")),
            }
        }
        if errors.is_empty() {
            self.finish_item(&item, &stored, Outcome::Done)?;
        } else {
            let e = format!("block {}: {}", item.block, errors.join("; "));
            self.finish_item(&item, &stored, Outcome::Failed(e.clone()))?;
            bail!(e);
        }
        Ok((stored.len() as u64, bytes_sent, bytes_fetched))
    }

    /// Records the end of an attempt at `item` (see [`Queue::finish`]).
    fn finish_item(&self, item: &QueueItem, done: &[u16], outcome: Outcome) -> Result<()> {
        let retry = self.config.maintenance.rebuild_retry_ms;
        Queue::new(self.node.db()).finish(&item.version_id, item.block, done, outcome, now_ms(), retry)
    }
}
