//! The customer service: hiring suppliers, backing up, restoring, and recovering the catalog on a new device.
//!
//! Backup data flow (bounded memory: at most `blocks_in_flight` encoded blocks plus a 2-block queue):
//! ```text
//! scan(path) ─► StreamReader ─4 MiB─► BlockEncoder (blocking thread) ─► queue(2) ─► upload: n PutFragment
//!   in parallel per block, `blocks_in_flight` blocks at once ─► BlockMeta list ─► catalog revision + 1
//!   ─► sealed catalog to every supplier
//! ```
//! Restore: per block, fetch the k data fragments first (no decoding needed), falling back to parity
//! fragments when one is missing, unreachable or fails its hash; decode on a blocking thread; write the
//! stream in order through [`crate::service::archive::TreeWriter`].
//!
//! ```text
//! customer/
//!   mod.rs       the customer's records: catalog, hired suppliers, fired suppliers; reports
//!   hire.rs      hiring from the DHT, contracts, replacing a supplier, the published supplier list
//!   backup.rs    a path to blocks to fragments on every supplier, and the catalog after them
//!   restore.rs   fragments back to blocks to files, hedged across positions
//!   fetch.rs     who may hold a fragment, and getting it from them (restore and rebuild)
//!   recovery.rs  the catalog back from the suppliers, with the key alone
//! ```

mod backup;
mod browse;
pub mod check;
pub(crate) mod chunks;
mod fetch;
pub mod forget;
pub(crate) mod hire;
mod incremental;
pub mod prune;
mod recovery;
pub(crate) mod restore;
pub mod schedule;
mod snapshot;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
pub use bitdust_api::{BackupReport, RestoreReport};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use crate::proto::catalog::Catalog;
use crate::proto::wire::SignedContract;
use crate::service::Storage;

/// Database value: the local catalog.
const CATALOG_KEY: &str = "catalog";
/// Database value: the hired suppliers.
const SUPPLIERS_KEY: &str = "suppliers";
/// Database value: suppliers fired before (never hired again).
const FIRED_KEY: &str = "fired_suppliers";

impl Versioned for Catalog {
    // 2: catalog format 2 (pack sets and snapshots); records 0 and 1 hold a format-1 catalog
    const FORMAT: u16 = 2;
    fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
        match format {
            0 | 1 => Catalog::decode(bytes),
            _ => Err(format!("unknown catalog record format {format}")),
        }
    }
}

/// The hired suppliers as stored (format 1; format 0 was the same list without a format tag).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SupplierSlots(Vec<SupplierSlot>);

impl Versioned for SupplierSlots {
    const FORMAT: u16 = 1;
    fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
        match format {
            0 => postcard::from_bytes(bytes).map(SupplierSlots).map_err(|e| e.to_string()),
            _ => Err(format!("unknown supplier list format {format}")),
        }
    }
}

/// Suppliers fired before, as peer id bytes (format 1; format 0 was the same list without a format tag).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FiredSuppliers(Vec<Vec<u8>>);

impl Versioned for FiredSuppliers {
    const FORMAT: u16 = 1;
    fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
        match format {
            0 => postcard::from_bytes(bytes).map(FiredSuppliers).map_err(|e| e.to_string()),
            _ => Err(format!("unknown fired-supplier list format {format}")),
        }
    }
}

/// A hired supplier.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SupplierSlot {
    /// Position (shard index).
    pub position: u16,
    /// Peer id bytes.
    pub peer_id: Vec<u8>,
    /// The contract both signed (absent when recovered from the DHT on a new device).
    pub contract: Option<SignedContract>,
    /// When hired, Unix seconds.
    pub hired_unix: u64,
}

impl SupplierSlot {
    /// The supplier's peer id.
    ///
    /// # Errors
    /// If the stored bytes are not a peer id.
    pub fn peer(&self) -> Result<PeerId> {
        PeerId::from_bytes(&self.peer_id).map_err(|_| anyhow!("corrupt supplier peer id at position {}", self.position))
    }
}

impl Storage {
    /// The local catalog (empty if none yet).
    ///
    /// # Errors
    /// On database failure.
    pub fn catalog(&self) -> Result<Catalog> {
        Ok(self.node.db().get::<Catalog>(CATALOG_KEY)?.unwrap_or_else(Catalog::new))
    }

    /// Hired suppliers, by position.
    ///
    /// # Errors
    /// On database failure.
    pub fn suppliers(&self) -> Result<Vec<SupplierSlot>> {
        let mut s = self.node.db().get::<SupplierSlots>(SUPPLIERS_KEY)?.map(|s| s.0).unwrap_or_default();
        s.sort_by_key(|s| s.position);
        Ok(s)
    }

    pub(crate) fn save_catalog(&self, catalog: &Catalog) -> Result<()> {
        Ok(self.node.db().put(CATALOG_KEY, catalog)?)
    }

    fn save_suppliers(&self, slots: &[SupplierSlot]) -> Result<()> {
        Ok(self.node.db().put(SUPPLIERS_KEY, &SupplierSlots(slots.to_vec()))?)
    }

    /// Suppliers fired before, as peer id bytes.
    fn fired(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self.node.db().get::<FiredSuppliers>(FIRED_KEY)?.map(|f| f.0).unwrap_or_default())
    }
}

/// Checks a restore target: created if missing; must be an empty folder unless `force`.
///
/// # Errors
/// If it is a file, or a non-empty folder without `force`.
pub fn prepare_target(target: &Path, force: bool) -> Result<()> {
    match std::fs::metadata(target) {
        Ok(m) if !m.is_dir() => bail!("restore target {} is not a folder", target.display()),
        Ok(_) => {
            let non_empty = std::fs::read_dir(target)?.next().is_some();
            if non_empty && !force {
                bail!("restore target {} is not empty (use --force to restore into it anyway)", target.display());
            }
            Ok(())
        }
        Err(_) => std::fs::create_dir_all(target).with_context(|| format!("creating {}", target.display())),
    }
}

/// The path a restore of everything puts backup `name` under.
pub fn restore_all_path(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}
