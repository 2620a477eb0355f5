//! # bitdust-store
//!
//! Disk primitives every layer and wing uses, knowing nothing of what they store:
//! - [`NodeDb`]: the node's local database (redb): named values and the wings' typed, versioned tables;
//! - [`write_atomic`] and [`StagedFile`]: writes that a crash never leaves half done (temp file, fsync,
//!   rename);
//! - [`read_cold`] and [`Writeback`]: reading and writing data the machine should not keep in its page cache.
//!
//! The supplier's fragment store is the storage wing's (`bitdust_storage::service::store`).

mod nodedb;

pub use nodedb::{decode, encode, NodeDb, NodeDbError, SyncTicket, TableWriter, Txn, Versioned};

/// Creates `path` and its missing parents with mode 0700 (less what the umask takes away) from the start: the
/// node's folders hold keys, catalogs and customers' fragments, which nobody else on the machine should list.
///
/// # Errors
/// The I/O error of creating a folder.
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsynced, then renamed over `path`.
/// The file is readable by its owner only (mode 0600) from its first byte: what bitdust writes (keys, tokens,
/// identities, catalogs, fragments) is nobody else's business.
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
    drop_cached(&f, 0, None);
    Ok(bytes)
}

/// Streams a large file to disk without piling it up in the page cache. After every [`Writeback::WINDOW`] bytes
/// it starts writing that window back (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), then waits for the window
/// before it to reach the disk and drops that window's pages (`posix_fadvise(POSIX_FADV_DONTNEED)`): see
/// sync_file_range(2) and posix_fadvise(2). The page cache holds at most about two windows of the file, the
/// caller's final fsync has at most two windows left to write, and a restore of many gigabytes does not evict
/// the rest of the machine's cache (nor, on a VM that backs memory lazily, pay for fresh pages all the way).
///
/// Linux only (a no-op elsewhere), best effort: a failing call only leaves pages cached; durability still
/// comes from the caller's fsync. The file must be written sequentially from offset 0.
#[derive(Debug, Default)]
pub struct Writeback {
    /// Bytes written so far.
    written: u64,
    /// End of the last window whose writeback was started.
    started: u64,
}

impl Writeback {
    /// Window size in bytes (32 MiB).
    pub const WINDOW: u64 = 32 << 20;

    /// Call after appending `n` bytes to `file`.
    pub fn wrote(&mut self, file: &std::fs::File, n: u64) {
        self.written += n;
        while self.written - self.started >= Self::WINDOW {
            let start = self.started;
            #[cfg(any(target_os = "linux", target_os = "android"))]
            {
                use std::os::fd::AsRawFd;
                let fd = file.as_raw_fd();
                let len = Self::WINDOW as libc::off64_t;
                // SAFETY: plain system calls on an open descriptor; no memory is passed.
                unsafe {
                    libc::sync_file_range(fd, start as libc::off64_t, len, libc::SYNC_FILE_RANGE_WRITE);
                }
                if let Some(previous) = start.checked_sub(Self::WINDOW) {
                    let all = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER;
                    // SAFETY: as above.
                    unsafe {
                        libc::sync_file_range(fd, previous as libc::off64_t, len, all);
                    }
                    drop_cached(file, previous, std::num::NonZeroU64::new(Self::WINDOW));
                }
            }
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let _ = file;
            self.started = start + Self::WINDOW;
        }
    }
}

/// Asks the kernel to drop `f`'s clean pages in `[offset, offset + len)` (`len` `None`: to the end of the file)
/// from the page cache (`posix_fadvise(DONTNEED)`; Linux only, best effort: a failure only leaves them cached).
fn drop_cached(f: &std::fs::File, offset: u64, len: Option<std::num::NonZeroU64>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let _ = rustix::fs::fadvise(f, offset, len, rustix::fs::Advice::DontNeed);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = (f, offset, len);
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
        create_private_dir(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp-{:016x}",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
            rand::random::<u64>()
        ));
        // Removes the temp file on any error below.
        let staged = Self { tmp, path: path.to_path_buf(), committed: false };
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&staged.tmp)?
        };
        f.write_all(bytes)?;
        f.sync_data()?;
        if cold {
            drop_cached(&f, 0, None); // after the fsync, when every page is clean and can go
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

    /// Pages of `file` in `[0, len)` that are in the page cache (mincore(2) over a read-only mapping).
    #[cfg(target_os = "linux")]
    fn resident_pages(file: &std::fs::File, len: usize) -> usize {
        use std::os::fd::AsRawFd;
        let page = 4096;
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: a read-only shared mapping of an open file, unmapped before returning; `vec` has one byte per
        // page of the mapping, as mincore requires.
        unsafe {
            let addr = libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0);
            assert_ne!(addr, libc::MAP_FAILED, "mmap");
            assert_eq!(libc::mincore(addr, len, vec.as_mut_ptr()), 0, "mincore");
            libc::munmap(addr, len);
        }
        vec.iter().filter(|b| **b & 1 == 1).count()
    }

    #[test]
    fn writeback_keeps_the_bytes_and_drops_all_but_the_last_windows_from_the_cache() {
        use std::io::{Read, Write};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        let mut file = std::fs::File::create(&path).unwrap();
        let window = Writeback::WINDOW as usize;
        let total = 4 * window + 12345;
        let chunk: Vec<u8> = (0..(3 << 20) + 7).map(|i: u32| (i % 251) as u8).collect();
        let mut writeback = Writeback::default();
        let mut written = 0;
        while written < total {
            let n = chunk.len().min(total - written);
            file.write_all(&chunk[..n]).unwrap();
            writeback.wrote(&file, n as u64);
            written += n;
        }
        #[cfg(target_os = "linux")]
        {
            // tmpfs pages are the file itself: they cannot be dropped
            let tmpfs = rustix::fs::fstatfs(&file).map(|s| s.f_type == libc::TMPFS_MAGIC).unwrap_or(true);
            if !tmpfs {
                let reader = std::fs::File::open(&path).unwrap();
                assert_eq!(resident_pages(&reader, window), 0, "the first window is still cached");
                assert!(resident_pages(&reader, total) > 0, "the last window is not cached any more");
            }
        }
        file.sync_all().unwrap();
        let mut back = Vec::new();
        std::fs::File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), total);
        assert!(back.chunks(chunk.len()).all(|c| c == &chunk[..c.len()]), "bytes changed");
    }

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
