//! The durable rebuild queue: one record per block to rebuild (the positions to regenerate, attempts, the last
//! error, when to try next), in the node database, so a restarted customer resumes where it stopped. The model
//! is garage's `block/resync.rs`: a record table keyed by the block, and a second table keyed by the time of the
//! next attempt (then the block), so the executor takes the due items in order without scanning the queue.
//! Failed items back off exponentially ([`backoff_ms`]); new work for a block makes it due at once.

use anyhow::{anyhow, Result};
use bitdust_store::{NodeDb, NodeDbError, Versioned};
use serde::{Deserialize, Serialize};

/// Record table: block key → [`QueueRecord`].
const QUEUE: &str = "rebuild_queue";
/// Index table: next attempt (ms, big-endian) ‖ block key → `()`.
const DUE: &str = "rebuild_due";
/// The legacy queue: one value holding the whole list (homes of earlier builds).
const LEGACY_QUEUE: &str = "rebuild_queue";
/// Longest pause between attempts of one block: a block that cannot be rebuilt is still tried hourly.
const MAX_BACKOFF_MS: u64 = 3_600_000;

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

/// Pause before the next attempt after `attempts` failures: `base_ms` doubled each time, at most an hour.
pub fn backoff_ms(base_ms: u64, attempts: u32) -> u64 {
    base_ms.max(1).saturating_mul(1u64 << attempts.saturating_sub(1).min(30)).min(MAX_BACKOFF_MS)
}

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
        for it in items {
            self.add(it.positions.iter().map(|p| (it.version_id, it.block, *p)), now_ms)?;
            if it.attempts > 0 {
                self.set_attempts(&it.version_id, it.block, it.attempts)?;
            }
        }
        self.db.remove_legacy(LEGACY_QUEUE)?;
        Ok(n)
    }

    fn set_attempts(&self, version_id: &[u8; 16], block: u64, attempts: u32) -> Result<(), NodeDbError> {
        let k = key(version_id, block);
        self.db.write(|tx| {
            let mut w = tx.table(QUEUE)?;
            if let Some(mut r) = w.get::<QueueRecord>(&k)? {
                r.attempts = attempts;
                w.put(&k, &r)?;
            }
            Ok(())
        })
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

    /// Queues `(version, block, position)` items, merging positions of blocks already queued; a block that gets
    /// new positions is due at once. Returns how many positions were new.
    ///
    /// # Errors
    /// On database failure (nothing is queued then).
    pub(crate) fn add(&self, items: impl IntoIterator<Item = ([u8; 16], u64, u16)>, now_ms: u64) -> Result<usize> {
        let items: Vec<_> = items.into_iter().collect();
        Ok(self.db.write(|tx| {
            let mut queue = tx.table(QUEUE)?;
            let mut due = tx.table(DUE)?;
            let mut added = 0;
            for (v, b, p) in items {
                let k = key(&v, b);
                let mut r = queue.get::<QueueRecord>(&k)?.unwrap_or(QueueRecord {
                    positions: Vec::new(),
                    attempts: 0,
                    last_error: None,
                    next_attempt_unix_ms: u64::MAX,
                });
                if r.positions.contains(&p) {
                    continue;
                }
                r.positions.push(p);
                added += 1;
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
        })?)
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
    /// none is left); if `error`, the attempt counts as failed and the block backs off by [`backoff_ms`].
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn finish(
        &self,
        version_id: &[u8; 16],
        block: u64,
        done: &[u16],
        error: Option<String>,
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
            if let Some(e) = error {
                r.attempts += 1;
                r.last_error = Some(e);
                r.next_attempt_unix_ms = now_ms.saturating_add(backoff_ms(retry_base_ms, r.attempts));
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
        q.finish(&v, 0, &[1], Some("position 2 unreachable".into()), 2_000, 300).unwrap();
        let due = q.due(2_000, 10).unwrap();
        assert_eq!(due.iter().map(|i| i.block).collect::<Vec<_>>(), vec![1], "block 0 waits for its backoff");
        let all = q.all().unwrap();
        let b0 = all.iter().find(|i| i.block == 0).unwrap();
        assert_eq!((b0.positions.clone(), b0.attempts, b0.next_attempt_unix_ms), (vec![2], 1, 2_300));
        assert_eq!(b0.last_error.as_deref(), Some("position 2 unreachable"));
        q.finish(&v, 0, &[], Some("again".into()), 2_300, 300).unwrap();
        assert_eq!(q.all().unwrap().iter().find(|i| i.block == 0).unwrap().next_attempt_unix_ms, 2_900);
        // new work makes it due at once
        q.add([(v, 0, 3)], 2_400).unwrap();
        assert!(q.due(2_400, 10).unwrap().iter().any(|i| i.block == 0 && i.positions == vec![2, 3]));
        q.finish(&v, 0, &[2, 3], None, 2_500, 300).unwrap();
        q.finish(&v, 1, &[1], None, 2_500, 300).unwrap();
        assert_eq!(q.len().unwrap(), 0);
        assert!(q.due(u64::MAX, 10).unwrap().is_empty(), "the index is empty too");
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(300, 1), 300);
        assert_eq!(backoff_ms(300, 2), 600);
        assert_eq!(backoff_ms(300, 5), 4_800);
        assert_eq!(backoff_ms(60_000, 40), MAX_BACKOFF_MS);
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
