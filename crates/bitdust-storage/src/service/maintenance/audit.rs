//! Audits and sweeps: proofs of storage asked from suppliers (a Bao slice of a random range of a random
//! fragment, checked against the shard hash in the catalog), and the listing of everything a supplier holds when
//! an audit found a fragment missing.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};
use bitdust_core::PeerId;

use crate::proto::catalog::BlockSet;
use crate::proto::maintenance::{AuditOutcome, BlockRef};
use crate::proto::pipeline::VersionKeys;
use crate::proto::wire::{ErrorCode, Request, Response, MAX_LIST};
use crate::service::Storage;

/// Pages of a supplier's fragment list accepted beyond what the catalog says it should hold (it may hold
/// fragments of versions we no longer list).
const SWEEP_EXTRA_PAGES: usize = 4;

impl Storage {
    /// Audits the supplier at `position`: a Bao proof of a random slice of a random fragment it should hold (and
    /// is not queued for rebuilding). What a missing fragment means is the maintenance state's decision.
    pub async fn audit_one(&self, position: u16, peer: PeerId) -> AuditOutcome {
        let Ok(catalog) = self.catalog() else { return AuditOutcome::Nothing };
        let queue: HashSet<([u8; 16], u64)> = self
            .rebuild_queue()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.positions.contains(&position))
            .map(|i| (i.version_id, i.block))
            .collect();
        let candidates: Vec<(BlockSet<'_>, usize)> = catalog
            .block_sets()
            .filter(|v| position < v.layout.n)
            .flat_map(|v| (0..v.blocks.len()).map(move |i| (v, i)))
            .filter(|(v, i)| !queue.contains(&(v.id, *i as u64)))
            .collect();
        if candidates.is_empty() {
            return AuditOutcome::Nothing;
        }
        let seed: u64 = rand::random();
        let (version, block) = candidates[(seed % candidates.len() as u64) as usize];
        let meta = &version.blocks[block];
        let vkeys = VersionKeys::derive(self.node.keys().master(), version.id);
        let id = vkeys.fragment_id(&meta.block_id, position);
        let (start, len) = crate::proto::audit::challenge(rand::random(), meta.shard_len);
        let request = Request::Audit { owner: self.node.peer_id().to_bytes(), id, start, len };
        let outcome = match self.request(peer, request).await {
            Ok(Response::AuditProof(slice)) => match meta.shard_hashes.get(position as usize) {
                Some(hash) => match crate::proto::audit::verify(hash, start, len, &slice) {
                    Ok(()) => AuditOutcome::Passed,
                    Err(e) => AuditOutcome::Wrong(e.to_string()),
                },
                None => AuditOutcome::Nothing,
            },
            Ok(Response::Error(ErrorCode::NotFound, _)) => {
                AuditOutcome::Missing(BlockRef { version_id: version.id, block: block as u64 })
            }
            // anything but a valid proof from a supplier we reached is a failed audit (a store that cannot be
            // read answers errors forever while its heartbeats say alive)
            Ok(Response::Error(code, msg)) => AuditOutcome::Failed(format!("{code:?}: {msg}")),
            Ok(other) => AuditOutcome::Wrong(format!("unexpected answer {other:?}")),
            Err(e @ bitdust_net::NetError::Unreachable { .. }) => AuditOutcome::Unreachable(e.to_string()),
            // a request that failed on a connection that is gone now (the supplier stopped or restarted) is an
            // outage, which heartbeats judge; one that failed while the supplier stays connected is a dodge
            Err(e) => {
                let connected = self.node.network().connected_peers().await.unwrap_or_default();
                if connected.contains(&peer) {
                    AuditOutcome::Failed(e.to_string())
                } else {
                    AuditOutcome::Unreachable(e.to_string())
                }
            }
        };
        tracing::debug!(position, ?outcome, "audit");
        outcome
    }

    /// Lists what the supplier at `position` holds and queues every fragment it should hold but does not.
    ///
    /// The listing is the supplier's word, so it is bounded: only the ids we expect are kept (memory is the
    /// catalog's size, whatever it sends), pages must rise strictly, and a listing that does not end within a
    /// few pages more than we expect is an error.
    ///
    /// # Errors
    /// If the supplier does not answer or its listing misbehaves.
    pub async fn sweep(&self, position: u16, peer: PeerId) -> Result<usize> {
        let catalog = self.catalog()?;
        let mut expected: HashMap<[u8; 32], ([u8; 16], u64)> = HashMap::new();
        for v in catalog.block_sets().filter(|v| position < v.layout.n) {
            let vkeys = VersionKeys::derive(self.node.keys().master(), v.id);
            for (i, b) in v.blocks.iter().enumerate() {
                expected.insert(vkeys.fragment_id(&b.block_id, position), (v.id, i as u64));
            }
        }
        let max_pages = expected.len() / MAX_LIST as usize + SWEEP_EXTRA_PAGES;
        let mut held: HashSet<[u8; 32]> = HashSet::new();
        let mut after: Option<[u8; 32]> = None;
        for page in 0.. {
            if page >= max_pages {
                bail!("the supplier's fragment list does not end after {page} pages");
            }
            let ids = match self.request(peer, Request::ListFragments { after, limit: MAX_LIST }).await? {
                Response::FragmentList(ids) => ids,
                other => bail!("unexpected answer {other:?}"),
            };
            let n = ids.len();
            let Some(last) = ids.last().copied() else { break };
            if after.is_some_and(|a| last <= a) {
                bail!("the supplier's fragment list does not move forward");
            }
            held.extend(ids.into_iter().filter(|id| expected.contains_key(id)));
            if n < MAX_LIST as usize {
                break;
            }
            after = Some(last);
        }
        let missing: Vec<([u8; 16], u64, u16)> =
            expected.iter().filter(|(id, _)| !held.contains(*id)).map(|(_, (v, b))| (*v, *b, position)).collect();
        let n = missing.len();
        self.enqueue_rebuild(missing)?;
        tracing::info!(position, missing = n, "sweep done");
        Ok(n)
    }
}
