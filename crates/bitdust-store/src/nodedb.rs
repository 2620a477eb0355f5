//! The node's local database: small values by name (catalog, suppliers, job records), in redb.

use std::path::Path;

use redb::{Database, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};

const VALUES: TableDefinition<&str, &[u8]> = TableDefinition::new("values");

/// Errors from the node database.
#[derive(Debug, thiserror::Error)]
pub enum NodeDbError {
    /// Disk or database failure.
    #[error("node database: {0}")]
    Io(String),
    /// A stored value could not be decoded (written by an incompatible version?).
    #[error("node database value {0:?} is corrupt: {1}")]
    Corrupt(String, String),
}

/// A redb database of named postcard values. Every write is one atomic transaction.
pub struct NodeDb {
    db: Database,
}

impl NodeDb {
    /// Opens or creates the database file.
    ///
    /// # Errors
    /// [`NodeDbError::Io`].
    pub fn open(path: &Path) -> Result<Self, NodeDbError> {
        let db = Database::create(path).map_err(|e| NodeDbError::Io(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| NodeDbError::Io(e.to_string()))?;
        txn.open_table(VALUES).map_err(|e| NodeDbError::Io(e.to_string()))?;
        txn.commit().map_err(|e| NodeDbError::Io(e.to_string()))?;
        Ok(Self { db })
    }

    /// Reads value `name`.
    ///
    /// # Errors
    /// [`NodeDbError`] on failure or a corrupt value.
    pub fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, NodeDbError> {
        let txn = self.db.begin_read().map_err(|e| NodeDbError::Io(e.to_string()))?;
        let t = txn.open_table(VALUES).map_err(|e| NodeDbError::Io(e.to_string()))?;
        let Some(v) = t.get(name).map_err(|e| NodeDbError::Io(e.to_string()))? else {
            return Ok(None);
        };
        postcard::from_bytes(v.value()).map(Some).map_err(|e| NodeDbError::Corrupt(name.into(), e.to_string()))
    }

    /// Writes value `name` atomically.
    ///
    /// # Errors
    /// [`NodeDbError::Io`].
    pub fn put<T: Serialize>(&self, name: &str, value: &T) -> Result<(), NodeDbError> {
        let bytes = postcard::to_stdvec(value).map_err(|e| NodeDbError::Io(e.to_string()))?;
        let txn = self.db.begin_write().map_err(|e| NodeDbError::Io(e.to_string()))?;
        {
            let mut t = txn.open_table(VALUES).map_err(|e| NodeDbError::Io(e.to_string()))?;
            t.insert(name, bytes.as_slice()).map_err(|e| NodeDbError::Io(e.to_string()))?;
        }
        txn.commit().map_err(|e| NodeDbError::Io(e.to_string()))
    }

    /// Names of all stored values.
    ///
    /// # Errors
    /// [`NodeDbError::Io`].
    pub fn names(&self) -> Result<Vec<String>, NodeDbError> {
        let txn = self.db.begin_read().map_err(|e| NodeDbError::Io(e.to_string()))?;
        let t = txn.open_table(VALUES).map_err(|e| NodeDbError::Io(e.to_string()))?;
        let mut out = Vec::new();
        for row in t.iter().map_err(|e| NodeDbError::Io(e.to_string()))? {
            out.push(row.map_err(|e| NodeDbError::Io(e.to_string()))?.0.value().to_string());
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_persist_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.redb");
        {
            let db = NodeDb::open(&p).unwrap();
            db.put("a", &vec![1u32, 2, 3]).unwrap();
        }
        let db = NodeDb::open(&p).unwrap();
        assert_eq!(db.get::<Vec<u32>>("a").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(db.get::<Vec<u32>>("b").unwrap(), None);
        assert_eq!(db.names().unwrap(), vec!["a".to_string()]);
    }
}
