//! # bitdust-store
//!
//! Disk state of a node:
//! - [`FragmentStore`]: the supplier's store of customers' fragments. Fragments are files under
//!   `<home>/store/fragments/<owner>/<id[0..2]>/<id>` (written to a temp file, fsynced, renamed); contracts,
//!   the fragment index and per-customer usage live in redb. Only the owner (the authenticated peer id that
//!   stored a fragment) may read, overwrite or delete it; stores beyond the contract's needed space are
//!   refused.
//! - [`NodeDb`]: the node's local database (catalog, suppliers, contracts it signed as a customer).

mod fragments;
mod nodedb;

pub use fragments::{FragmentStore, StoreError, Usage};
pub use nodedb::{NodeDb, NodeDbError};

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsynced, then renamed over `path`.
///
/// # Errors
/// Any I/O error; `path` is then untouched.
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().ok_or_else(|| std::io::Error::other("path has no parent folder"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{:016x}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
