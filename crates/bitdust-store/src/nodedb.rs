//! The node's local database (redb): small named values and record tables, every value tagged with its format
//! version, every write one atomic transaction.
//!
//! Encoding of every value: the format version (2 bytes, little-endian), then the postcard encoding of that
//! format. A type says which format it writes and how to read older ones ([`Versioned`], after garage's
//! `util/migrate.rs`); values written before formats were recorded (homes of earlier builds: postcard alone, in
//! the `values` table) are read as format 0 and rewritten in the current format on their next write.

use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

/// Named values written before format versions (read only, as format 0).
const LEGACY_VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values");
/// Named values, each tagged with its format.
const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values_v1");

/// Errors from the node database.
#[derive(Debug, thiserror::Error)]
pub enum NodeDbError {
    /// Disk or database failure.
    #[error("node database: {0}")]
    Io(String),
    /// A stored value could not be decoded.
    #[error("node database value {name:?} is corrupt or of an unknown format: {reason}")]
    Corrupt {
        /// The value's name or table and key.
        name: String,
        /// Why.
        reason: String,
    },
}

fn io(e: impl std::fmt::Display) -> NodeDbError {
    NodeDbError::Io(e.to_string())
}

/// A value the database keeps: the format it writes and how to read older formats.
pub trait Versioned: Serialize + DeserializeOwned {
    /// The format version written now (1 or more; 0 is "written before formats were recorded").
    const FORMAT: u16;

    /// Decodes `bytes` written in an older `format`.
    ///
    /// # Errors
    /// A message if the format is unknown or the bytes do not decode. The default knows no older format.
    fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
        let _ = bytes;
        Err(format!("unknown format {format} (current {})", Self::FORMAT))
    }
}

/// Encodes a value in its current format.
///
/// # Errors
/// [`NodeDbError::Io`] if postcard cannot encode it.
pub fn encode<T: Versioned>(value: &T) -> Result<Vec<u8>, NodeDbError> {
    let mut out = T::FORMAT.to_le_bytes().to_vec();
    out.extend(postcard::to_stdvec(value).map_err(io)?);
    Ok(out)
}

/// Decodes a value of any format `T` knows.
///
/// # Errors
/// [`NodeDbError::Corrupt`] naming `name`.
pub fn decode<T: Versioned>(name: &str, bytes: &[u8]) -> Result<T, NodeDbError> {
    let corrupt = |reason: String| NodeDbError::Corrupt { name: name.into(), reason };
    let (format, body) = match bytes {
        [a, b, body @ ..] => (u16::from_le_bytes([*a, *b]), body),
        _ => return Err(corrupt("shorter than its format tag".into())),
    };
    if format == T::FORMAT {
        postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))
    } else {
        T::migrate(format, body).map_err(corrupt)
    }
}

/// The node database.
pub struct NodeDb {
    db: Database,
    /// Deferred writes committed so far ([`NodeDb::write_deferred`]): a write's ticket is this count after it.
    deferred: std::sync::atomic::AtomicU64,
    /// Tickets known durable; held while a group commit runs.
    durable: std::sync::Mutex<u64>,
}

/// What [`NodeDb::sync`] waits for: a deferred write's place in the commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[must_use = "a deferred write is not durable until synced"]
pub struct SyncTicket(u64);

impl std::fmt::Debug for NodeDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDb").finish_non_exhaustive()
    }
}

/// A write transaction over record tables ([`NodeDb::write`]): open each table once.
pub struct Txn<'t> {
    txn: &'t redb::WriteTransaction,
}

impl<'t> Txn<'t> {
    /// Writes named value `name` (as [`NodeDb::put`] does) in this transaction.
    ///
    /// # Errors
    /// On failure.
    pub fn put_value<T: Versioned>(&self, name: &str, value: &T) -> Result<(), NodeDbError> {
        let bytes = encode(value)?;
        self.txn.open_table(VALUES).map_err(io)?.insert(name, bytes.as_slice()).map_err(io)?;
        self.txn.open_table(LEGACY_VALUES).map_err(io)?.remove(name).map_err(io)?;
        Ok(())
    }

    /// Removes legacy (format 0) value `name` in this transaction, after its contents moved elsewhere.
    ///
    /// # Errors
    /// On failure.
    pub fn remove_legacy(&self, name: &str) -> Result<(), NodeDbError> {
        self.txn.open_table(LEGACY_VALUES).map_err(io)?.remove(name).map_err(io)?;
        Ok(())
    }

    /// Opens record table `name` in this transaction.
    ///
    /// # Errors
    /// On failure (also if it is already open in this transaction).
    pub fn table(&self, name: &str) -> Result<TableWriter<'t>, NodeDbError> {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(name);
        Ok(TableWriter { table: self.txn.open_table(def).map_err(io)?, name: name.to_string() })
    }
}

/// Writes to one record table inside a transaction ([`Txn::table`]).
pub struct TableWriter<'t> {
    table: redb::Table<'t, &'static [u8], &'static [u8]>,
    name: String,
}

impl TableWriter<'_> {
    /// Record `key`, if any.
    ///
    /// # Errors
    /// On failure or a corrupt value.
    pub fn get<V: Versioned>(&self, key: &[u8]) -> Result<Option<V>, NodeDbError> {
        match self.table.get(key).map_err(io)? {
            Some(v) => decode(&format!("{}/{}", self.name, hex(key)), v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Writes record `key`.
    ///
    /// # Errors
    /// On failure.
    pub fn put<V: Versioned>(&mut self, key: &[u8], value: &V) -> Result<(), NodeDbError> {
        let bytes = encode(value)?;
        self.table.insert(key, bytes.as_slice()).map_err(io)?;
        Ok(())
    }

    /// Removes record `key`.
    ///
    /// # Errors
    /// On failure.
    pub fn remove(&mut self, key: &[u8]) -> Result<(), NodeDbError> {
        self.table.remove(key).map_err(io)?;
        Ok(())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl NodeDb {
    /// Opens or creates the database file.
    ///
    /// # Errors
    /// [`NodeDbError::Io`].
    pub fn open(path: &Path) -> Result<Self, NodeDbError> {
        // readable by the owner only from the first byte (it holds the plaintext catalog: names, source paths)
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(io)?;
            f.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        let db = Database::create(path).map_err(io)?;
        let txn = db.begin_write().map_err(io)?;
        txn.open_table(LEGACY_VALUES).map_err(io)?;
        txn.open_table(VALUES).map_err(io)?;
        txn.commit().map_err(io)?;
        Ok(Self { db, deferred: std::sync::atomic::AtomicU64::new(0), durable: std::sync::Mutex::new(0) })
    }

    /// Reads value `name` (one written before format versions is read as format 0).
    ///
    /// # Errors
    /// [`NodeDbError`] on failure or a corrupt value.
    pub fn get<T: Versioned>(&self, name: &str) -> Result<Option<T>, NodeDbError> {
        let txn = self.db.begin_read().map_err(io)?;
        if let Some(v) = txn.open_table(VALUES).map_err(io)?.get(name).map_err(io)? {
            return decode(name, v.value()).map(Some);
        }
        let Some(v) = txn.open_table(LEGACY_VALUES).map_err(io)?.get(name).map_err(io)? else {
            return Ok(None);
        };
        T::migrate(0, v.value()).map(Some).map_err(|reason| NodeDbError::Corrupt { name: name.into(), reason })
    }

    /// Writes value `name` in its current format (replacing a legacy value of that name) atomically.
    ///
    /// # Errors
    /// [`NodeDbError::Io`].
    pub fn put<T: Versioned>(&self, name: &str, value: &T) -> Result<(), NodeDbError> {
        let bytes = encode(value)?;
        let txn = self.db.begin_write().map_err(io)?;
        {
            txn.open_table(VALUES).map_err(io)?.insert(name, bytes.as_slice()).map_err(io)?;
            txn.open_table(LEGACY_VALUES).map_err(io)?.remove(name).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    /// Names of all stored values.
    ///
    /// # Errors
    /// [`NodeDbError::Io`].
    pub fn names(&self) -> Result<Vec<String>, NodeDbError> {
        let txn = self.db.begin_read().map_err(io)?;
        let mut out = Vec::new();
        for table in [VALUES, LEGACY_VALUES] {
            for row in txn.open_table(table).map_err(io)?.iter().map_err(io)? {
                out.push(row.map_err(io)?.0.value().to_string());
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Runs `f` in one write transaction over any record tables it opens ([`Txn::table`]): everything it
    /// writes lands together or not at all.
    ///
    /// # Errors
    /// `f`'s error (nothing is written), or a database failure.
    pub fn write<R>(&self, f: impl FnOnce(&Txn<'_>) -> Result<R, NodeDbError>) -> Result<R, NodeDbError> {
        let txn = self.db.begin_write().map_err(io)?;
        let r = f(&Txn { txn: &txn })?;
        txn.commit().map_err(io)?;
        Ok(r)
    }

    /// [`NodeDb::write`] without waiting for the disk (redb's `Durability::None`; its `Eventual` still flushes on
    /// Linux): atomic like any write, and on disk with the next ordinary write; a crash before that loses it (never
    /// half of it). For marks that may be
    /// lost (a message's delivery state), never for state whose loss does harm (keys, ratchets, contracts).
    ///
    /// # Errors
    /// As [`NodeDb::write`].
    pub fn write_lazy<R>(&self, f: impl FnOnce(&Txn<'_>) -> Result<R, NodeDbError>) -> Result<R, NodeDbError> {
        let mut txn = self.db.begin_write().map_err(io)?;
        txn.set_durability(redb::Durability::None);
        let r = f(&Txn { txn: &txn })?;
        txn.commit().map_err(io)?;
        Ok(r)
    }

    /// [`NodeDb::write`] whose wait for the disk is deferred to [`NodeDb::sync`] with the returned ticket: atomic
    /// and visible to every later read at once, durable once synced. Writers that sync at about the same time share
    /// one disk flush (group commit), so the cost of a flush is spread over every write it covers.
    ///
    /// # Errors
    /// As [`NodeDb::write`].
    pub fn write_deferred<R>(
        &self,
        f: impl FnOnce(&Txn<'_>) -> Result<R, NodeDbError>,
    ) -> Result<(R, SyncTicket), NodeDbError> {
        let r = self.write_lazy(f)?;
        // counted after the commit: a flush that starts later covers it
        let ticket = self.deferred.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok((r, SyncTicket(ticket)))
    }

    /// Returns once the deferred write of `ticket` (and every one before it) is on disk: at once if a flush since
    /// covered it, otherwise after one flush that covers every deferred write committed until it starts. Blocks
    /// the thread (call it where blocking is allowed).
    ///
    /// # Errors
    /// A database failure.
    pub fn sync(&self, ticket: SyncTicket) -> Result<(), NodeDbError> {
        let mut durable = self.durable.lock().map_err(|_| io("the sync lock is poisoned"))?;
        if *durable >= ticket.0 {
            return Ok(());
        }
        let upto = self.deferred.load(std::sync::atomic::Ordering::SeqCst);
        // an empty commit with the default (immediate) durability makes every earlier eventual commit durable
        self.db.begin_write().map_err(io)?.commit().map_err(io)?;
        *durable = upto;
        Ok(())
    }

    /// Up to `limit` records of `table` in key order, after `after` (exclusive) or from the start.
    ///
    /// # Errors
    /// On failure or a corrupt value.
    pub fn records<V: Versioned>(
        &self,
        table: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, V)>, NodeDbError> {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(table);
        let txn = self.db.begin_read().map_err(io)?;
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(io(e)),
        };
        let range = match after {
            Some(a) => t.range::<&[u8]>((Bound::Excluded(a), Bound::Unbounded)),
            None => t.range::<&[u8]>(..),
        }
        .map_err(io)?;
        let mut out = Vec::new();
        for row in range.take(limit) {
            let (k, v) = row.map_err(io)?;
            let key = k.value().to_vec();
            let value = decode(&format!("{table}/{}", hex(&key)), v.value())?;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Record `key` of `table`, if any (a read transaction).
    ///
    /// # Errors
    /// On failure or a corrupt value.
    pub fn record<V: Versioned>(&self, table: &str, key: &[u8]) -> Result<Option<V>, NodeDbError> {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(table);
        let txn = self.db.begin_read().map_err(io)?;
        let t = match txn.open_table(def) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        match t.get(key).map_err(io)? {
            Some(v) => decode(&format!("{table}/{}", hex(key)), v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Number of records in `table`.
    ///
    /// # Errors
    /// On failure.
    pub fn count(&self, table: &str) -> Result<u64, NodeDbError> {
        let def: TableDefinition<&[u8], &[u8]> = TableDefinition::new(table);
        let txn = self.db.begin_read().map_err(io)?;
        match txn.open_table(def) {
            Ok(t) => t.len().map_err(io),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(io(e)),
        }
    }

    /// Reads legacy (format 0) value `name` as raw bytes, for a migration that moves it elsewhere.
    ///
    /// # Errors
    /// On failure.
    pub fn legacy_bytes(&self, name: &str) -> Result<Option<Vec<u8>>, NodeDbError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(LEGACY_VALUES).map_err(io)?;
        Ok(t.get(name).map_err(io)?.map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Numbers(Vec<u32>);

    impl Versioned for Numbers {
        const FORMAT: u16 = 2;
        fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
            match format {
                // format 0 (and 1) was a list of u16s
                0 | 1 => postcard::from_bytes::<Vec<u16>>(bytes)
                    .map(|v| Numbers(v.into_iter().map(u32::from).collect()))
                    .map_err(|e| e.to_string()),
                _ => Err(format!("unknown format {format}")),
            }
        }
    }

    #[test]
    fn deferred_writes_are_visible_at_once_and_one_sync_covers_the_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.redb");
        let db = NodeDb::open(&path).unwrap();
        let ((), first) = db.write_deferred(|tx| tx.put_value("a", &Numbers(vec![1]))).unwrap();
        let ((), second) = db.write_deferred(|tx| tx.put_value("b", &Numbers(vec![2]))).unwrap();
        assert!(first < second);
        assert_eq!(db.get::<Numbers>("a").unwrap(), Some(Numbers(vec![1])), "visible before the sync");
        db.sync(second).unwrap();
        assert!(*db.durable.lock().unwrap() >= second.0, "the later ticket's flush covers the earlier write");
        db.sync(first).unwrap();
        drop(db);
        let db = NodeDb::open(&path).unwrap();
        assert_eq!(db.get::<Numbers>("b").unwrap(), Some(Numbers(vec![2])));
    }

    #[test]
    fn values_persist_across_reopen_with_their_format() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.redb");
        {
            let db = NodeDb::open(&p).unwrap();
            db.put("a", &Numbers(vec![1, 2, 3])).unwrap();
        }
        let db = NodeDb::open(&p).unwrap();
        assert_eq!(db.get::<Numbers>("a").unwrap(), Some(Numbers(vec![1, 2, 3])));
        assert_eq!(db.get::<Numbers>("b").unwrap(), None);
        assert_eq!(db.names().unwrap(), vec!["a".to_string()]);
    }

    /// A value written by an earlier build (postcard alone, in the legacy table) is read through the type's
    /// migration and rewritten in the current format; an unknown format is an error naming the value.
    #[test]
    fn legacy_values_migrate_and_unknown_formats_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.redb");
        {
            let db = Database::create(&p).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(LEGACY_VALUES).unwrap();
                t.insert("old", postcard::to_stdvec(&vec![7u16, 8]).unwrap().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let db = NodeDb::open(&p).unwrap();
        assert_eq!(db.get::<Numbers>("old").unwrap(), Some(Numbers(vec![7, 8])));
        db.put("old", &Numbers(vec![9])).unwrap();
        assert!(db.legacy_bytes("old").unwrap().is_none(), "the legacy value is gone once rewritten");
        assert_eq!(db.get::<Numbers>("old").unwrap(), Some(Numbers(vec![9])));
        let future = 9u16.to_le_bytes().iter().copied().chain([1, 2]).collect::<Vec<u8>>();
        let err = decode::<Numbers>("x", &future).unwrap_err();
        assert!(err.to_string().contains("\"x\"") && err.to_string().contains("unknown format 9"), "{err}");
        assert!(decode::<Numbers>("y", &[1]).is_err(), "too short for a format tag");
    }

    #[test]
    fn record_tables_write_atomically_and_list_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = NodeDb::open(&dir.path().join("node.redb")).unwrap();
        assert_eq!(db.count("t").unwrap(), 0);
        assert!(db.records::<Numbers>("t", None, 10).unwrap().is_empty());
        db.write(|tx| {
            let mut w = tx.table("t")?;
            w.put(b"b", &Numbers(vec![2]))?;
            w.put(b"a", &Numbers(vec![1]))?;
            w.put(b"c", &Numbers(vec![3]))
        })
        .unwrap();
        // a failing transaction writes nothing, in any of its tables
        let failed = db.write(|tx| {
            tx.table("t")?.remove(b"a")?;
            tx.table("u")?.put(b"x", &Numbers(vec![]))?;
            Err::<(), _>(NodeDbError::Io("stop".into()))
        });
        assert!(failed.is_err());
        let all = db.records::<Numbers>("t", None, 10).unwrap();
        assert_eq!(
            all.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        let after_a = db.records::<Numbers>("t", Some(b"a"), 1).unwrap();
        assert_eq!(after_a, vec![(b"b".to_vec(), Numbers(vec![2]))]);
        assert_eq!(db.count("t").unwrap(), 3);
        assert_eq!(db.count("u").unwrap(), 0);
        // a named value and records land together, or (on error) neither
        let failed = db.write(|tx| {
            tx.put_value("v", &Numbers(vec![5]))?;
            tx.table("u")?.put(b"y", &Numbers(vec![6]))?;
            Err::<(), _>(NodeDbError::Io("stop".into()))
        });
        assert!(failed.is_err());
        assert_eq!((db.get::<Numbers>("v").unwrap(), db.count("u").unwrap()), (None, 0));
        db.write(|tx| {
            tx.put_value("v", &Numbers(vec![5]))?;
            tx.table("u")?.put(b"y", &Numbers(vec![6]))
        })
        .unwrap();
        assert_eq!((db.get::<Numbers>("v").unwrap(), db.count("u").unwrap()), (Some(Numbers(vec![5])), 1));
        db.write(|tx| {
            let mut w = tx.table("t")?;
            assert_eq!(w.get::<Numbers>(b"c")?, Some(Numbers(vec![3])));
            w.remove(b"b")
        })
        .unwrap();
        assert_eq!(db.count("t").unwrap(), 2);
    }
}
