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
    StagedFile::write(path, bytes)?.commit()
}

/// The first half of [`write_atomic`]: `bytes` written and fsynced under a temporary name in `path`'s folder,
/// not yet visible at `path`. [`StagedFile::commit`] renames it into place; dropping it uncommitted removes it.
/// This lets the slow part of an atomic write (writing, fsync) run outside a lock and only the rename inside.
#[derive(Debug)]
pub struct StagedFile {
    tmp: std::path::PathBuf,
    path: std::path::PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Creates `path`'s folder if needed and writes `bytes` to a fresh temp file beside `path`, fsynced.
    ///
    /// # Errors
    /// Any I/O error; nothing is left behind.
    pub fn write(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<Self> {
        use std::io::Write;
        let dir = path.parent().ok_or_else(|| std::io::Error::other("path has no parent folder"))?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp-{:016x}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
            rand::random::<u64>()
        ));
        // Removes the temp file on any error below.
        let staged = Self { tmp, path: path.to_path_buf(), committed: false };
        let mut f = std::fs::File::create(&staged.tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        Ok(staged)
    }

    /// Renames the temp file over the final path (atomic on POSIX file systems).
    ///
    /// # Errors
    /// The rename's I/O error; the temp file is then removed and the final path untouched.
    pub fn commit(mut self) -> std::io::Result<()> {
        std::fs::rename(&self.tmp, &self.path)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}
