//! `check` (restic's check): is what the catalog promises really there?
//!
//! - The catalog: every supplier's sealed copy is fetched, verified, opened and compared with the local revision.
//! - The indexes: every index object of every pack set is read back from the suppliers (not from this device's
//!   cache); each entry must point into a block of its set and inside that block, and agree with the local chunk
//!   index.
//! - The trees: every incremental version is walked (a tree seen once is not read again); every chunk a version
//!   uses must be placed by the index.
//! - `--read-data PERCENT`: that share of all blocks (format 1 and packs; a random sample), every one of the n
//!   fragments fetched and checked against the hash the catalog holds, so that a supplier that lost or damaged a
//!   fragment is found even where k others would have hidden it from a restore.
//!
//! It holds the customer lock (a backup or prune waits), changes nothing, and reports; `ok` is false if anything
//! is wrong.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
pub use bitdust_api::CheckReport;
use bitdust_core::PeerId;
use futures::stream::StreamExt;

use super::chunks::{block_places, ChunkReader, IndexObject};
use crate::proto::catalog::SealedCatalog;
use crate::proto::pipeline::VersionKeys;
use crate::proto::wire::{Request, Response};
use crate::service::Storage;

/// Lines kept per problem list.
const MAX_PROBLEMS: usize = 100;

fn note(list: &mut Vec<String>, line: String) {
    if list.len() < MAX_PROBLEMS {
        list.push(line);
    }
}

impl Storage {
    /// Checks the catalog, the indexes and the trees, and reads back `read_data_percent` of the blocks (see the
    /// module's notes).
    ///
    /// # Errors
    /// A percent outside 0..=100; the database. What is wrong on the suppliers is in the report, not an error.
    pub async fn check(self: &Arc<Self>, read_data_percent: Option<f64>) -> Result<CheckReport> {
        if let Some(p) = read_data_percent {
            if !(0.0..=100.0).contains(&p) {
                bail!("--read-data takes a percent from 0 to 100, not {p}");
            }
        }
        let started = Instant::now();
        let _g = self.customer_lock.lock().await;
        let _packs = self.packs_lock.read().await;
        let catalog = self.catalog()?;
        let mut report = CheckReport {
            revision: catalog.revision,
            catalog_copies_ok: 0,
            catalog_problems: Vec::new(),
            index_objects: 0,
            index_entries: 0,
            index_problems: Vec::new(),
            versions: catalog.snapshots.len(),
            trees: 0,
            chunks_used: 0,
            missing_chunks: Vec::new(),
            blocks: catalog.block_sets().map(|s| s.blocks.len()).sum(),
            blocks_read: 0,
            fragments_read: 0,
            fragments_bad: Vec::new(),
            ok: false,
            seconds: 0.0,
        };

        // the catalog on every supplier
        let me = self.node.peer_id().to_bytes();
        let peers: Vec<PeerId> = self.suppliers()?.iter().filter_map(|s| s.peer().ok()).collect();
        let copies = futures::future::join_all(
            peers.iter().map(|p| self.request(*p, Request::GetCatalog { owner: me.clone() })),
        )
        .await;
        for (peer, answer) in peers.iter().zip(copies) {
            let opened = match answer {
                Ok(Response::Catalog(bytes)) => {
                    SealedCatalog::decode(&bytes).and_then(|s| s.open(self.node.keys())).map_err(|e| e.to_string())
                }
                Ok(other) => Err(format!("{other:?}")),
                Err(e) => Err(e.to_string()),
            };
            match opened {
                Ok(c) if c.revision == catalog.revision => report.catalog_copies_ok += 1,
                Ok(c) => note(
                    &mut report.catalog_problems,
                    format!("{peer}: revision {} (ours {})", c.revision, catalog.revision),
                ),
                Err(e) => note(&mut report.catalog_problems, format!("{peer}: {e}")),
            }
        }

        // the index objects, read back from the suppliers
        let reader = ChunkReader::new(self, &catalog);
        for set in &catalog.packs {
            let places = block_places(set);
            for r in &set.index {
                let object = match reader.read_at(set, &places, r).await.and_then(|b| IndexObject::decode(&b)) {
                    Ok(o) => o,
                    Err(e) => {
                        note(
                            &mut report.index_problems,
                            format!("pack set {}: an index object: {e:#}", hex::encode(set.id)),
                        );
                        continue;
                    }
                };
                report.index_objects += 1;
                for e in &object.entries {
                    report.index_entries += 1;
                    // entries of blocks prune removed since are stale, not wrong
                    let Some(i) = places.get(&e.block) else { continue };
                    let inside = set
                        .blocks
                        .get(*i as usize)
                        .is_some_and(|b| u64::from(e.offset) + u64::from(e.len) <= u64::from(b.cipher_len));
                    if !inside {
                        note(
                            &mut report.index_problems,
                            format!("chunk {}: past the end of its block", hex::encode(&e.chunk[..8])),
                        );
                        continue;
                    }
                    match self.locate_chunk(reader.set_ids(), &e.chunk)? {
                        Some(l) if l.set == set.id && l.block == e.block && (l.offset, l.len) != (e.offset, e.len) => {
                            note(
                                &mut report.index_problems,
                                format!(
                                    "chunk {}: this device's index places it elsewhere in its block",
                                    hex::encode(&e.chunk[..8])
                                ),
                            )
                        }
                        None => note(
                            &mut report.index_problems,
                            format!("chunk {}: missing from this device's index", hex::encode(&e.chunk[..8])),
                        ),
                        _ => {}
                    }
                }
            }
        }

        // the trees
        let used = match reader.used_chunks(&catalog.snapshots).await {
            Ok(u) => {
                report.trees = u.trees;
                u.ids
            }
            Err(e) => {
                note(&mut report.missing_chunks, format!("{e:#}"));
                HashSet::new()
            }
        };
        report.chunks_used = used.len() as u64;
        for id in &used {
            if self.locate_chunk(reader.set_ids(), id)?.is_none() {
                note(&mut report.missing_chunks, format!("chunk {} is in no pack set", hex::encode(&id[..8])));
            }
        }

        // read the data back
        if let Some(percent) = read_data_percent.filter(|p| *p > 0.0) {
            let master = self.node.keys().master();
            let mut all = Vec::new();
            for set in catalog.block_sets() {
                let vkeys = VersionKeys::derive(master, set.id);
                let by_position: Vec<Vec<PeerId>> =
                    (0..set.layout.n).map(|p| self.peers_for(set.suppliers, p)).collect();
                for meta in set.blocks {
                    all.push((set.layout, vkeys.clone(), by_position.clone(), meta.clone()));
                }
            }
            let want = ((all.len() as f64 * percent / 100.0).ceil() as usize).min(all.len());
            let sample: Vec<_> = {
                use rand::seq::SliceRandom;
                all.shuffle(&mut rand::thread_rng());
                all.into_iter().take(want).collect()
            };
            report.blocks_read = sample.len();
            let limit = self.config.customer.blocks_in_flight.max(1);
            let mut reads = futures::stream::iter(sample.into_iter().flat_map(|(layout, vkeys, peers, meta)| {
                (0..layout.n).map(move |p| {
                    (layout, vkeys.fragment_id(&meta.block_id, p), peers[p as usize].clone(), meta.clone(), p)
                })
            }))
            .map(|(layout, id, peers, meta, p)| async move {
                let r = self.fetch_fragment(&peers, p, id).await.and_then(|bytes| {
                    crate::proto::rebuild::check_source(layout, &meta, p, &bytes)
                        .map(|_| ())
                        .map_err(anyhow::Error::from)
                });
                (meta.block_id, p, r)
            })
            .buffer_unordered(limit * 4);
            while let Some((block, p, r)) = reads.next().await {
                report.fragments_read += 1;
                if let Err(e) = r {
                    note(&mut report.fragments_bad, format!("block {} position {p}: {e:#}", hex::encode(&block[..8])));
                }
            }
        }
        report.ok = report.catalog_problems.is_empty()
            && report.index_problems.is_empty()
            && report.missing_chunks.is_empty()
            && report.fragments_bad.is_empty();
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}
