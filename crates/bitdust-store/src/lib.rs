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

/// Reads a whole file of cold data (see [`StagedFile::write_cold`]) and drops its pages from the page cache
/// afterwards (Linux; best effort), so that serving a restore does not fill the supplier's cache with
/// fragments it will not read again soon.
///
/// # Errors
/// The I/O error of opening or reading `path`.
pub fn read_cold(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.read_to_end(&mut bytes)?;
    drop_cached(&f);
    Ok(bytes)
}

/// Asks the kernel to drop `f`'s clean pages from the page cache (`posix_fadvise(DONTNEED)`; Linux only, best
/// effort: a failure only leaves them cached).
fn drop_cached(f: &std::fs::File) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::fs::fadvise(f, 0, None, rustix::fs::Advice::DontNeed);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = f;
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
        Self::write_with(path, bytes, false)
    }

    /// [`StagedFile::write`] for data this node will rarely read again (fragments it keeps for customers):
    /// once the bytes are on disk, their pages are dropped from the page cache (`posix_fadvise(DONTNEED)`,
    /// Linux only) so that a supplier's cold fragments do not crowd out its owner's cache, and the freed pages
    /// are reused by the next write. In a devnet upload of 1 GiB at RS(3,10) (3.3 GB written), copying into
    /// ever new page-cache pages was the largest single cost on this VM, whose free pages go back to the host.
    ///
    /// # Errors
    /// Any I/O error of the write or fsync; nothing is left behind. The advice itself is best effort.
    pub fn write_cold(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<Self> {
        Self::write_with(path, bytes, true)
    }

    fn write_with(path: &std::path::Path, bytes: &[u8], cold: bool) -> std::io::Result<Self> {
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
        if cold {
            drop_cached(&f); // after the fsync, when every page is clean and can go
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_writes_and_reads_keep_the_bytes_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("fragment");
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let staged = StagedFile::write_cold(&path, &bytes).unwrap();
        assert!(!path.exists(), "visible before commit");
        staged.commit().unwrap();
        assert_eq!(read_cold(&path).unwrap(), bytes);
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        let missing = read_cold(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn an_uncommitted_staged_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        drop(StagedFile::write_cold(&path, b"abc").unwrap());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
