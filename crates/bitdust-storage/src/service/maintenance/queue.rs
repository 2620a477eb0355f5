//! The durable rebuild queue: one record per block to rebuild (the positions to regenerate, attempts, the last
//! error, when to try next), in the node database, so a restarted customer resumes where it stopped. The model
//! is garage's `block/resync.rs`: a record table keyed by the block, and a second table keyed by the time of the
//! next attempt (then the block), so the executor takes the due items in order without scanning the queue.
//! Failed items back off exponentially ([`backoff_ms`]); new work for a block makes it due at once.

use anyhow::{anyhow, Result};
use bitdust_store::{NodeDb, NodeDbError, Txn, Versioned};
use serde::{Deserialize, Serialize};

/// Record table: block key → [`QueueRecord`].
const QUEUE: &str = "rebuild_queue";
/// Index table: next attempt (ms, big-endian) ‖ block key → `()`.
const DUE: &str = "rebuild_due";
/// The legacy queue: one value holding the whole list (homes of earlier builds).
const LEGACY_QUEUE: &str = "rebuild_queue";

/// A block to rebuild, as the API and health reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueItem {
    /// Version id.
    pub version_id: [u8; 16],
    /// Block index.
    pub block: u64,
    /// Positions to regenerate.
    pub positions: Vec<u16>,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix milliseconds of the next attempt.
    pub next_attempt_unix_ms: u64,
}

/// The persisted record of one queued block (format 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct QueueRecord {
    positions: Vec<u16>,
    attempts: u32,
    last_error: Option<String>,
    next_attempt_unix_ms: u64,
}

impl Versioned for QueueRecord {
    const FORMAT: u16 = 1;
}

#[derive(Serialize, Deserialize)]
struct Unit;

impl Versioned for Unit {
    const FORMAT: u16 = 1;
}

/// The queue as earlier builds kept it: one list, rewritten whole at each change.
#[derive(Deserialize)]
struct LegacyItem {
    version_id: [u8; 16],
    block: u64,
    positions: Vec<u16>,
    attempts: u32,
}

fn key(version_id: &[u8; 16], block: u64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(version_id);
    k[16..].copy_from_slice(&block.to_be_bytes());
    k
}

fn split(k: &[u8]) -> Option<([u8; 16], u64)> {
    let v: [u8; 16] = k.get(..16)?.try_into().ok()?;
    let b: [u8; 8] = k.get(16..24)?.try_into().ok()?;
    Some((v, u64::from_be_bytes(b)))
}

fn due_key(at_ms: u64, block_key: &[u8]) -> Vec<u8> {
    let mut k = at_ms.to_be_bytes().to_vec();
    k.extend_from_slice(block_key);
    k
}

pub use crate::proto::maintenance::backoff_ms;

fn item(k: &[u8], r: QueueRecord) -> Option<QueueItem> {
    let (version_id, block) = split(k)?;
    Some(QueueItem {
        version_id,
        block,
        positions: r.positions,
        attempts: r.attempts,
        last_error: r.last_error,
        next_attempt_unix_ms: r.next_attempt_unix_ms,
    })
}

/// [`Queue::add`] inside a transaction the caller also writes other things in (a replacement saves the new
/// supplier and queues its blocks together).
///
/// # Errors
/// On database failure.
pub(crate) fn add_in(tx: &Txn<'_>, items: &[([u8; 16], u64, u16)], now_ms: u64) -> Result<usize, NodeDbError> {
    let mut queue = tx.table(QUEUE)?;
    let mut due = tx.table(DUE)?;
    let mut added = 0;
    for &(v, b, p) in items {
        let k = key(&v, b);
        let mut r = queue.get::<QueueRecord>(&k)?.unwrap_or(QueueRecord {
            positions: Vec::new(),
            attempts: 0,
            last_error: None,
            next_attempt_unix_ms: u64::MAX,
        });
        if !r.positions.contains(&p) {
            r.positions.push(p);
            added += 1;
        }
        if r.next_attempt_unix_ms != now_ms {
            if r.next_attempt_unix_ms != u64::MAX {
                due.remove(&due_key(r.next_attempt_unix_ms, &k))?;
            }
            due.put(&due_key(now_ms, &k), &Unit)?;
            r.next_attempt_unix_ms = now_ms;
        }
        queue.put(&k, &r)?;
    }
    Ok(added)
}

/// How an attempt at a block ended ([`Queue::finish`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every position done, or the rest of them left for a later attempt without a failure.
    Done,
    /// It could not run because its targets are down: retried after the base delay, not counted as a failure
    /// (the replacement queues it again, due at once).
    Waiting(String),
    /// It failed: counted, backing off.
    Failed(String),
}

/// The queue over the node database.
pub(crate) struct Queue<'a> {
    db: &'a NodeDb,
}

impl<'a> Queue<'a> {
    pub(crate) fn new(db: &'a NodeDb) -> Self {
        Self { db }
    }

    /// Moves a queue written by an earlier build (one list value) into the record tables, once.
    ///
    /// # Errors
    /// On database failure or an unreadable legacy list.
    pub(crate) fn migrate_legacy(&self, now_ms: u64) -> Result<usize> {
        let Some(bytes) = self.db.legacy_bytes(LEGACY_QUEUE)? else { return Ok(0) };
        let items: Vec<LegacyItem> =
            postcard::from_bytes(&bytes).map_err(|e| anyhow!("the rebuild queue of an earlier build: {e}"))?;
        let n = items.len();
        // one transaction: the records and the removal of the old list land together
        self.db.write(|tx| {
            let flat: Vec<([u8; 16], u64, u16)> =
                items.iter().flat_map(|it| it.positions.iter().map(move |p| (it.version_id, it.block, *p))).collect();
            add_in(tx, &flat, now_ms)?;
            let mut queue = tx.table(QUEUE)?;
            for it in items.iter().filter(|it| it.attempts > 0) {
                let k = key(&it.version_id, it.block);
                if let Some(mut r) = queue.get::<QueueRecord>(&k)? {
                    r.attempts = it.attempts;
                    queue.put(&k, &r)?;
                }
            }
            drop(queue);
            tx.remove_legacy(LEGACY_QUEUE)
        })?;
        Ok(n)
    }

    fn record(&self, k: &[u8]) -> Result<Option<QueueRecord>, NodeDbError> {
        self.db.record(QUEUE, k)
    }

    /// Every queued block, in block order (for health reports and the API).
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn all(&self) -> Result<Vec<QueueItem>> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.db.records::<QueueRecord>(QUEUE, after.as_deref(), 4096)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let full = page.len() == 4096;
            out.extend(page.into_iter().filter_map(|(k, r)| item(&k, r)));
            if !full {
                break;
            }
        }
        Ok(out)
    }

    /// Blocks queued.
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn len(&self) -> Result<u64> {
        Ok(self.db.count(QUEUE)?)
    }

    /// Queues `(version, block, position)` items, merging positions of blocks already queued; every block named
    /// is due at once (new work, or a position queued again because its supplier was just replaced). Returns how
    /// many positions were new.
    ///
    /// # Errors
    /// On database failure (nothing is queued then).
    pub(crate) fn add(&self, items: impl IntoIterator<Item = ([u8; 16], u64, u16)>, now_ms: u64) -> Result<usize> {
        let items: Vec<_> = items.into_iter().collect();
        Ok(self.db.write(|tx| add_in(tx, &items, now_ms))?)
    }

    /// Up to `limit` blocks due by `now_ms`, earliest first.
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn due(&self, now_ms: u64, limit: usize) -> Result<Vec<QueueItem>> {
        let upto = (now_ms.saturating_add(1)).to_be_bytes();
        let keys: Vec<Vec<u8>> = self
            .db
            .records::<Unit>(DUE, None, limit)?
            .into_iter()
            .map(|(k, _)| k)
            .take_while(|k| k.as_slice() < upto.as_slice())
            .collect();
        let mut out = Vec::new();
        for dk in keys {
            let k = &dk[8..];
            if let Some(r) = self.record(k)? {
                out.extend(item(k, r));
            }
        }
        Ok(out)
    }

    /// Records the end of an attempt at a block: `done` positions leave it (the block leaves the queue when
    /// none is left); a failure counts and backs off by [`backoff_ms`]; waiting for down targets is retried after
    /// `retry_base_ms`.
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn finish(
        &self,
        version_id: &[u8; 16],
        block: u64,
        done: &[u16],
        outcome: Outcome,
        now_ms: u64,
        retry_base_ms: u64,
    ) -> Result<()> {
        let k = key(version_id, block);
        self.db.write(|tx| {
            let mut queue = tx.table(QUEUE)?;
            let mut due = tx.table(DUE)?;
            let Some(mut r) = queue.get::<QueueRecord>(&k)? else { return Ok(()) };
            due.remove(&due_key(r.next_attempt_unix_ms, &k))?;
            r.positions.retain(|p| !done.contains(p));
            if r.positions.is_empty() {
                return queue.remove(&k);
            }
            match outcome {
                Outcome::Done => {}
                Outcome::Waiting(e) => {
                    r.last_error = Some(e);
                    r.next_attempt_unix_ms = now_ms.saturating_add(retry_base_ms.max(1));
                }
                Outcome::Failed(e) => {
                    r.attempts += 1;
                    r.last_error = Some(e);
                    r.next_attempt_unix_ms = now_ms.saturating_add(backoff_ms(retry_base_ms, r.attempts));
                }
            }
            due.put(&due_key(r.next_attempt_unix_ms, &k), &Unit)?;
            queue.put(&k, &r)
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_merge_back_off_on_failure_and_leave_when_done() {
        let dir = tempfile::tempdir().unwrap();
        let db = NodeDb::open(&dir.path().join("node.redb")).unwrap();
        let q = Queue::new(&db);
        let v = [3u8; 16];
        assert_eq!(q.add([(v, 0, 1), (v, 0, 2), (v, 1, 1)], 1_000).unwrap(), 3);
        assert_eq!(q.add([(v, 0, 1)], 1_000).unwrap(), 0, "a position already queued is not added twice");
        assert_eq!(q.len().unwrap(), 2);
        let due = q.due(1_000, 10).unwrap();
        assert_eq!(
            due.iter().map(|i| (i.block, i.positions.clone())).collect::<Vec<_>>(),
            vec![(0, vec![1, 2]), (1, vec![1])]
        );
        // block 0: position 1 done, 2 failed: it backs off
        q.finish(&v, 0, &[1], Outcome::Failed("position 2 unreachable".into()), 2_000, 300).unwrap();
        let due = q.due(2_000, 10).unwrap();
        assert_eq!(due.iter().map(|i| i.block).collect::<Vec<_>>(), vec![1], "block 0 waits for its backoff");
        let all = q.all().unwrap();
        let b0 = all.iter().find(|i| i.block == 0).unwrap();
        assert_eq!((b0.positions.clone(), b0.attempts, b0.next_attempt_unix_ms), (vec![2], 1, 2_300));
        assert_eq!(b0.last_error.as_deref(), Some("position 2 unreachable"));
        q.finish(&v, 0, &[], Outcome::Failed("again".into()), 2_300, 300).unwrap();
        assert_eq!(q.all().unwrap().iter().find(|i| i.block == 0).unwrap().next_attempt_unix_ms, 2_900);
        // new work makes it due at once
        q.add([(v, 0, 3)], 2_400).unwrap();
        assert!(q.due(2_400, 10).unwrap().iter().any(|i| i.block == 0 && i.positions == vec![2, 3]));
        // waiting for a down target: retried after the base delay, not counted
        q.finish(&v, 0, &[], Outcome::Waiting("position 2 is down".into()), 2_450, 300).unwrap();
        let b0 = q.all().unwrap().into_iter().find(|i| i.block == 0).unwrap();
        assert_eq!((b0.attempts, b0.next_attempt_unix_ms), (2, 2_750));
        // a position queued again (its supplier was replaced) makes the block due at once, even mid-backoff
        assert_eq!(q.add([(v, 0, 2)], 2_460).unwrap(), 0);
        assert!(q.due(2_460, 10).unwrap().iter().any(|i| i.block == 0));
        q.finish(&v, 0, &[2, 3], Outcome::Done, 2_500, 300).unwrap();
        q.finish(&v, 1, &[1], Outcome::Done, 2_500, 300).unwrap();
        assert_eq!(q.len().unwrap(), 0);
        assert!(q.due(u64::MAX, 10).unwrap().is_empty(), "the index is empty too");
    }

    /// A home written by an earlier build keeps its queue: the one-list value becomes records.
    #[test]
    fn the_legacy_list_moves_into_records() {
        #[derive(Serialize)]
        struct Old {
            version_id: [u8; 16],
            block: u64,
            positions: Vec<u16>,
            attempts: u32,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.redb");
        {
            let db = redb::Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let def: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("values");
                let mut t = txn.open_table(def).unwrap();
                let old = vec![
                    Old { version_id: [1; 16], block: 4, positions: vec![0, 2], attempts: 3 },
                    Old { version_id: [1; 16], block: 5, positions: vec![1], attempts: 0 },
                ];
                t.insert(LEGACY_QUEUE, postcard::to_stdvec(&old).unwrap().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let db = NodeDb::open(&path).unwrap();
        let q = Queue::new(&db);
        assert_eq!(q.migrate_legacy(10).unwrap(), 2);
        assert_eq!(q.migrate_legacy(10).unwrap(), 0, "once");
        let all = q.all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].block, all[0].positions.clone(), all[0].attempts), (4, vec![0, 2], 3));
        assert_eq!(q.due(10, 10).unwrap().len(), 2);
    }
}
