//! The archive layout: how a file tree becomes one byte stream and back.
//!
//! [`scan`] walks a path (never following symlinks, children sorted by name) into catalog [`Entry`]s: the
//! root, folders, files (with their size and their offset in the stream), symlinks, and each one's mode and
//! mtime. The *archive stream* is the concatenation of the regular files' contents in entry order;
//! [`StreamReader`] produces it block by block with bounded memory. [`TreeWriter`] consumes the stream and
//! recreates the tree, relative to open folder handles and never following a link: every file is written to a
//! temp name next to its destination and renamed into place when complete, so a crash of the process never leaves a half-written file under a real name. Folder modes
//! and mtimes are applied last, deepest first, so writing children does not disturb them; then one `syncfs`
//! makes the whole restore durable before it reports success (an fsync per file made restoring /usr/share,
//! 43,000 files, several times slower; `cp` and `tahoe get` do not sync at all). A power loss during a restore
//! can leave some files empty: the restore had not reported success, and is run again with `--force`.
//!
//! Special files (sockets, FIFOs, devices) are skipped and reported.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
#[cfg(test)]
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs as fs_at;

use crate::proto::catalog::{Entry, EntryKind};

/// Errors from scanning, reading or writing a tree.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A catalog entry that would write outside the target.
    #[error("unsafe path in catalog: {0:?}")]
    UnsafePath(String),
    /// The stream ended before every file was complete.
    #[error("archive stream ended early")]
    Truncated,
    /// An exclude pattern that is not gitignore syntax.
    #[error("bad exclude pattern: {0}")]
    BadPattern(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_path_buf(), source }
}

/// The result of [`scan`].
#[derive(Debug, Default)]
pub struct Scan {
    /// The entries in archive order.
    pub entries: Vec<Entry>,
    /// Total bytes of file contents (= archive stream length).
    pub total_bytes: u64,
    /// Paths skipped (special files), for the report.
    pub skipped: Vec<String>,
    /// Paths left out by the excludes (a folder counts once, with everything in it).
    pub excluded: u64,
}

fn entry_for(meta: &fs::Metadata, path: Vec<u8>, kind: EntryKind) -> Entry {
    Entry {
        path,
        kind,
        mode: meta.mode() & 0o7777,
        mtime_secs: meta.mtime(),
        mtime_nanos: meta.mtime_nsec().clamp(0, 999_999_999) as u32,
    }
}

/// What a backup leaves out (restic's and borg's options, gitignore syntax from the `ignore` crate).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Excludes {
    /// Patterns in gitignore syntax, relative to the backed-up folder (`--exclude`, and the lines of
    /// `--exclude-file`); a `!pattern` takes a path back in.
    pub patterns: Vec<String>,
    /// Leave out the contents of folders holding a valid `CACHEDIR.TAG` (<https://bford.info/cachedir/>); the folder
    /// and its tag are kept.
    pub caches: bool,
    /// Do not descend into folders on another file system (mount points are kept, empty).
    pub one_file_system: bool,
}

/// Checks exclude patterns (gitignore syntax) before a backup is started.
///
/// # Errors
/// The first pattern that is not valid, with the reason.
pub fn check_patterns(root: &Path, patterns: &[String]) -> Result<(), ArchiveError> {
    let mut check = ignore::gitignore::GitignoreBuilder::new(root);
    for p in patterns {
        check.add_line(None, p).map_err(|e| ArchiveError::BadPattern(format!("{p:?}: {e}")))?;
    }
    Ok(())
}

/// The file whose lines (gitignore syntax) exclude paths in its folder and below.
pub const IGNORE_FILE: &str = ".bitdustignore";
/// The first bytes of a valid `CACHEDIR.TAG`.
const CACHEDIR_SIGNATURE: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";

/// The exclusion rules in force in one folder: the command line's at the root, then each `.bitdustignore` on the
/// way down (deeper ones decide first, as in git).
struct Rules {
    stack: Vec<ignore::gitignore::Gitignore>,
    caches: bool,
    device: Option<u64>,
}

impl Rules {
    /// Whether `path` (a directory if `is_dir`) is excluded: the command line's rules first (a file in the data
    /// cannot take back what the user left out), then the deepest `.bitdustignore` rule that matches.
    fn excluded(&self, path: &Path, is_dir: bool) -> bool {
        let (cli, files) = match self.stack.split_first() {
            Some((c, f)) => (Some(c), f),
            None => (None, &self.stack[..]),
        };
        if let Some(c) = cli {
            match c.matched(path, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        for g in files.iter().rev() {
            match g.matched(path, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        false
    }
}

/// Walks `source` (a folder or a single file).
///
/// # Errors
/// [`ArchiveError::Io`] if `source` or anything under it cannot be read.
pub fn scan(source: &Path) -> Result<Scan, ArchiveError> {
    scan_with(source, &Excludes::default())
}

/// Walks `source` (a folder or a single file), leaving out what `excludes` and the `.bitdustignore` files say; the
/// count of paths left out is in [`Scan::excluded`].
///
/// # Errors
/// [`ArchiveError::Io`] if `source` or anything under it cannot be read, [`ArchiveError::BadPattern`] for a pattern
/// that is not valid gitignore syntax.
pub fn scan_with(source: &Path, excludes: &Excludes) -> Result<Scan, ArchiveError> {
    let meta = fs::symlink_metadata(source).map_err(io_err(source))?;
    let mut scan = Scan::default();
    if meta.is_file() {
        let name = source.file_name().map(|n| n.as_bytes().to_vec()).unwrap_or_else(|| b"file".to_vec());
        scan.entries.push(entry_for(&meta, name, EntryKind::File { size: meta.len(), offset: 0 }));
        scan.total_bytes = meta.len();
        return Ok(scan);
    }
    if !meta.is_dir() {
        return Err(ArchiveError::Io {
            path: source.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file or folder"),
        });
    }
    scan.entries.push(entry_for(&meta, Vec::new(), EntryKind::Dir));
    let mut root = ignore::gitignore::GitignoreBuilder::new(source);
    for p in &excludes.patterns {
        root.add_line(None, p).map_err(|e| ArchiveError::BadPattern(format!("{p:?}: {e}")))?;
    }
    let root = root.build().map_err(|e| ArchiveError::BadPattern(e.to_string()))?;
    let mut rules =
        Rules { stack: vec![root], caches: excludes.caches, device: excludes.one_file_system.then(|| meta.dev()) };
    walk(source, Vec::new(), &mut scan, &mut rules)?;
    Ok(scan)
}

/// Whether `dir` holds a valid `CACHEDIR.TAG`.
fn is_cache_dir(dir: &Path) -> bool {
    let mut head = [0u8; CACHEDIR_SIGNATURE.len()];
    File::open(dir.join("CACHEDIR.TAG")).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == CACHEDIR_SIGNATURE
}

fn walk(dir: &Path, rel: Vec<u8>, scan: &mut Scan, rules: &mut Rules) -> Result<(), ArchiveError> {
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(io_err(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io_err(dir))?;
    children.sort();
    if rules.caches && is_cache_dir(dir) {
        // the folder and its tag stay, so a restore shows what was left out
        scan.excluded += children.iter().filter(|n| n.as_bytes() != b"CACHEDIR.TAG").count() as u64;
        children.retain(|n| n.as_bytes() == b"CACHEDIR.TAG");
    }
    let ignore_file = dir.join(IGNORE_FILE);
    let pushed = if ignore_file.is_file() {
        // as git does: a bad line (or an unreadable file) is skipped and said, the other lines still apply
        let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
        if let Some(e) = b.add(&ignore_file) {
            tracing::warn!(file = %ignore_file.display(), error = %e, "part of this ignore file was skipped");
        }
        match b.build() {
            Ok(g) => {
                rules.stack.push(g);
                true
            }
            Err(e) => {
                tracing::warn!(file = %ignore_file.display(), error = %e, "ignore file skipped");
                false
            }
        }
    } else {
        false
    };
    let result = walk_children(dir, &rel, children, scan, rules);
    if pushed {
        rules.stack.pop();
    }
    result
}

fn walk_children(
    dir: &Path,
    rel: &[u8],
    children: Vec<OsString>,
    scan: &mut Scan,
    rules: &mut Rules,
) -> Result<(), ArchiveError> {
    for name in children {
        let path = dir.join(&name);
        let mut child_rel = rel.to_vec();
        if !child_rel.is_empty() {
            child_rel.push(b'/');
        }
        child_rel.extend_from_slice(name.as_bytes());
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        let ft = meta.file_type();
        if rules.excluded(&path, ft.is_dir()) {
            scan.excluded += 1;
            continue;
        }
        if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            scan.entries.push(entry_for(
                &meta,
                child_rel,
                EntryKind::Symlink { target: target.into_os_string().into_vec() },
            ));
        } else if ft.is_dir() {
            scan.entries.push(entry_for(&meta, child_rel.clone(), EntryKind::Dir));
            if rules.device.is_some_and(|d| d != meta.dev()) {
                // another file system: the mount point stays, empty
                scan.excluded += 1;
                continue;
            }
            walk(&path, child_rel, scan, rules)?;
        } else if ft.is_file() {
            let size = meta.len();
            scan.entries.push(entry_for(&meta, child_rel, EntryKind::File { size, offset: scan.total_bytes }));
            scan.total_bytes += size;
        } else {
            scan.skipped.push(path.display().to_string());
        }
    }
    Ok(())
}

/// Reads the archive stream of a scanned tree in blocks.
pub struct StreamReader {
    root: PathBuf,
    single_file: bool,
    files: Vec<(Vec<u8>, u64)>,
    next: usize,
    /// The file being read (`None` once it turned out shorter than scanned: the rest reads as zeros)
    /// and the bytes left to produce for it.
    current: Option<(Option<File>, u64)>,
    /// Files that changed size during the backup (the stream keeps the scanned size: a shrunk file is
    /// padded with zeros, a grown one cut).
    pub changed: Vec<String>,
}

impl StreamReader {
    /// A reader over the files of `scan` (taken from `source`).
    pub fn new(source: &Path, scan: &Scan) -> Self {
        let single_file = scan.entries.first().is_some_and(|e| matches!(e.kind, EntryKind::File { .. }));
        let files = scan
            .entries
            .iter()
            .filter_map(|e| match e.kind {
                EntryKind::File { size, .. } => Some((e.path.clone(), size)),
                _ => None,
            })
            .collect();
        Self { root: source.to_path_buf(), single_file, files, next: 0, current: None, changed: Vec::new() }
    }

    fn path_of(&self, rel: &[u8]) -> PathBuf {
        if self.single_file {
            self.root.clone()
        } else {
            self.root.join(std::ffi::OsStr::from_bytes(rel))
        }
    }

    /// Fills `buf` (cleared first) with up to `max` bytes of the stream; an empty `buf` means the end.
    ///
    /// # Errors
    /// [`ArchiveError::Io`] if a file cannot be opened or read.
    pub fn next_block(&mut self, buf: &mut Vec<u8>, max: usize) -> Result<(), ArchiveError> {
        buf.clear();
        while buf.len() < max {
            if self.current.is_none() {
                let Some((rel, size)) = self.files.get(self.next).cloned() else {
                    break;
                };
                self.next += 1;
                let path = self.path_of(&rel);
                let f = File::open(&path).map_err(io_err(&path))?;
                self.current = Some((Some(f), size));
            }
            let Some((file, remaining)) = self.current.as_mut() else {
                break;
            };
            let want = (max - buf.len()).min(*remaining as usize);
            let start = buf.len();
            buf.resize(start + want, 0);
            let mut got = 0;
            let mut shrank = false;
            if let Some(f) = file.as_mut() {
                while got < want {
                    let n = match f.read(&mut buf[start + got..start + want]) {
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let path = self.path_of(&self.files[self.next - 1].0);
                            return Err(ArchiveError::Io { path, source: e });
                        }
                    };
                    if n == 0 {
                        shrank = true;
                        break;
                    }
                    got += n;
                }
            }
            if shrank {
                // The file shrank since the scan: keep the stream aligned with the catalog by padding with
                // zeros (`buf` is already zero past `got`); the rest of the file reads as zeros too.
                *file = None;
                let path = self.path_of(&self.files[self.next - 1].0);
                self.changed.push(path.display().to_string());
            }
            if let Some((_, remaining)) = self.current.as_mut() {
                *remaining -= want as u64;
                if *remaining == 0 {
                    self.current = None;
                }
            }
        }
        Ok(())
    }
}

/// Recreates a tree from its entries and its archive stream.
///
/// Every file, link and folder is created relative to an open folder handle, one path component at a time, never
/// following a symbolic link (`openat` with `O_NOFOLLOW`, `mkdirat`, `symlinkat`, `renameat`, `fchmod`): a link
/// planted anywhere in the target (a restore `--force` into a folder others can write to) is replaced, never
/// followed, so nothing outside the target is written, created or chmodded. Only the target folder itself is
/// opened by path.
pub struct TreeWriter {
    target: PathBuf,
    /// The target folder, opened once `advance` first needs it.
    root: Option<Arc<OwnedFd>>,
    /// The open folders from the target down to the last entry's parent: `(name, handle)`.
    stack: Vec<(OsString, Arc<OwnedFd>)>,
    entries: Vec<Entry>,
    next: usize,
    current: Option<OpenFile>,
    /// Folders to give their mode and mtime at the end: (components under the target, mode, secs, nanos).
    dirs: Vec<(Vec<OsString>, u32, i64, u32)>,
    /// Files written.
    pub files_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

struct OpenFile {
    file: File,
    /// The folder it is created in, its temp name and its real name there.
    parent: Arc<OwnedFd>,
    tmp: OsString,
    name: OsString,
    /// For messages.
    dest: PathBuf,
    remaining: u64,
    entry: usize,
    /// Some of its bytes were lost: the rest is consumed, then the temp file is removed, never renamed.
    lost: bool,
    /// Large files go to disk window by window rather than piling up in the page cache.
    writeback: bitdust_store::Writeback,
}

/// Checks a catalog path: relative, `/`-separated, no `.`, `..` or empty components.
fn safe_relative(path: &[u8]) -> Result<PathBuf, ArchiveError> {
    let mut out = PathBuf::new();
    if path.is_empty() {
        return Ok(out);
    }
    for comp in path.split(|b| *b == b'/') {
        if comp.is_empty() || comp == b"." || comp == b".." || comp.contains(&0) {
            return Err(ArchiveError::UnsafePath(String::from_utf8_lossy(path).into_owned()));
        }
        out.push(std::ffi::OsStr::from_bytes(comp));
    }
    Ok(out)
}

fn components(rel: &Path) -> Vec<OsString> {
    rel.iter().map(|c| c.to_os_string()).collect()
}

fn timestamps(secs: i64, nanos: u32) -> fs_at::Timestamps {
    let t = fs_at::Timespec { tv_sec: secs, tv_nsec: nanos.min(999_999_999).into() };
    fs_at::Timestamps { last_access: t, last_modification: t }
}

fn errno(path: &Path) -> impl FnOnce(rustix::io::Errno) -> ArchiveError + '_ {
    move |e| ArchiveError::Io { path: path.to_path_buf(), source: e.into() }
}

/// Opens folder `name` in `parent` without following a link, creating it if missing; whatever else is there (a
/// planted link, a file) is removed first (itself, never what a link points to).
fn open_or_create_dir(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<OwnedFd, ArchiveError> {
    let flags = fs_at::OFlags::RDONLY | fs_at::OFlags::DIRECTORY | fs_at::OFlags::NOFOLLOW | fs_at::OFlags::CLOEXEC;
    match fs_at::openat(parent, name, flags, fs_at::Mode::empty()) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::NOENT) => {}
        // a link (ELOOP) or something that is not a folder (ENOTDIR): replace it
        Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) => {
            fs_at::unlinkat(parent, name, fs_at::AtFlags::empty()).map_err(errno(path))?;
        }
        Err(e) => return Err(errno(path)(e)),
    }
    match fs_at::mkdirat(parent, name, fs_at::Mode::from_raw_mode(0o700)) {
        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
        Err(e) => return Err(errno(path)(e)),
    }
    fs_at::openat(parent, name, flags, fs_at::Mode::empty()).map_err(errno(path))
}

/// Removes `name` in `parent` (a stale temp file or a planted link: itself, not its target), if there.
fn remove_if_there(parent: &OwnedFd, name: &OsStr, path: &Path) -> Result<(), ArchiveError> {
    match fs_at::unlinkat(parent, name, fs_at::AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(errno(path)(e)),
    }
}

impl TreeWriter {
    /// A writer that recreates `entries` under `target` (which must exist).
    pub fn new(target: &Path, entries: Vec<Entry>) -> Self {
        Self {
            target: target.to_path_buf(),
            root: None,
            stack: Vec::new(),
            entries,
            next: 0,
            current: None,
            dirs: Vec::new(),
            files_written: 0,
            bytes_written: 0,
        }
    }

    fn root(&mut self) -> Result<Arc<OwnedFd>, ArchiveError> {
        if let Some(r) = &self.root {
            return Ok(r.clone());
        }
        let flags = fs_at::OFlags::RDONLY | fs_at::OFlags::DIRECTORY | fs_at::OFlags::CLOEXEC;
        let fd = Arc::new(fs_at::open(&self.target, flags, fs_at::Mode::empty()).map_err(errno(&self.target))?);
        self.root = Some(fd.clone());
        Ok(fd)
    }

    /// The open folder `dirs` (components under the target), created where missing, reusing the folders
    /// opened for the previous entry (entries come folder by folder).
    fn dir(&mut self, dirs: &[OsString]) -> Result<Arc<OwnedFd>, ArchiveError> {
        let root = self.root()?;
        let common = self.stack.iter().zip(dirs).take_while(|((have, _), want)| have == *want).count();
        self.stack.truncate(common);
        for (i, name) in dirs.iter().enumerate().skip(common) {
            let parent = self.stack.last().map(|(_, fd)| fd.clone()).unwrap_or_else(|| root.clone());
            let path: PathBuf =
                std::iter::once(self.target.as_os_str()).chain(dirs[..=i].iter().map(|c| c.as_os_str())).collect();
            let fd = open_or_create_dir(&parent, name, &path)?;
            self.stack.push((name.clone(), Arc::new(fd)));
        }
        Ok(self.stack.last().map(|(_, fd)| fd.clone()).unwrap_or(root))
    }

    /// Creates entries up to the next file with content, so that stream bytes can go into it.
    fn advance(&mut self) -> Result<(), ArchiveError> {
        while self.current.is_none() && self.next < self.entries.len() {
            let i = self.next;
            self.next += 1;
            let e = self.entries[i].clone();
            let rel = safe_relative(&e.path)?;
            let dest = self.target.join(&rel);
            let mut comps = components(&rel);
            match &e.kind {
                EntryKind::Dir => {
                    self.dir(&comps)?;
                    self.dirs.push((comps, e.mode, e.mtime_secs, e.mtime_nanos));
                }
                EntryKind::Symlink { target } => {
                    let Some(name) = comps.pop() else {
                        return Err(ArchiveError::UnsafePath("a link at the root".into()));
                    };
                    let parent = self.dir(&comps)?;
                    let tmp = temp_name(&name);
                    remove_if_there(&parent, &tmp, &dest)?;
                    fs_at::symlinkat(std::ffi::OsStr::from_bytes(target), &parent, &tmp).map_err(errno(&dest))?;
                    let times = timestamps(e.mtime_secs, e.mtime_nanos);
                    let _ = fs_at::utimensat(&parent, &tmp, &times, fs_at::AtFlags::SYMLINK_NOFOLLOW);
                    fs_at::renameat(&parent, &tmp, &parent, &name).map_err(errno(&dest))?;
                }
                EntryKind::File { size, .. } => {
                    let Some(name) = comps.pop() else {
                        return Err(ArchiveError::UnsafePath("a file at the root".into()));
                    };
                    let parent = self.dir(&comps)?;
                    let tmp = temp_name(&name);
                    remove_if_there(&parent, &tmp, &dest)?;
                    let flags = fs_at::OFlags::WRONLY
                        | fs_at::OFlags::CREATE
                        | fs_at::OFlags::EXCL
                        | fs_at::OFlags::NOFOLLOW
                        | fs_at::OFlags::CLOEXEC;
                    let fd =
                        fs_at::openat(&parent, &tmp, flags, fs_at::Mode::from_raw_mode(0o600)).map_err(errno(&dest))?;
                    self.current = Some(OpenFile {
                        file: File::from(fd),
                        parent,
                        tmp,
                        name,
                        dest,
                        remaining: *size,
                        entry: i,
                        lost: false,
                        writeback: bitdust_store::Writeback::default(),
                    });
                    self.finish_if_complete()?;
                }
            }
        }
        Ok(())
    }

    fn finish_if_complete(&mut self) -> Result<(), ArchiveError> {
        if self.current.as_ref().is_some_and(|c| c.remaining == 0) {
            let Some(open) = self.current.take() else {
                return Ok(());
            };
            if open.lost {
                drop(open.file);
                return remove_if_there(&open.parent, &open.tmp, &open.dest);
            }
            let e = &self.entries[open.entry];
            fs_at::fchmod(&open.file, fs_at::Mode::from_raw_mode(e.mode & 0o7777)).map_err(errno(&open.dest))?;
            fs_at::futimens(&open.file, &timestamps(e.mtime_secs, e.mtime_nanos)).map_err(errno(&open.dest))?;
            drop(open.file);
            fs_at::renameat(&open.parent, &open.tmp, &open.parent, &open.name).map_err(errno(&open.dest))?;
            self.files_written += 1;
        }
        Ok(())
    }

    /// Writes the next bytes of the archive stream.
    ///
    /// # Errors
    /// [`ArchiveError`] on I/O failure, an unsafe path, or more bytes than the entries describe.
    pub fn write(&mut self, mut data: &[u8]) -> Result<(), ArchiveError> {
        while !data.is_empty() {
            self.advance()?;
            let Some(open) = self.current.as_mut() else {
                return Err(ArchiveError::UnsafePath("archive stream longer than its entries".into()));
            };
            let n = (open.remaining.min(data.len() as u64)) as usize;
            if !open.lost {
                open.file.write_all(&data[..n]).map_err(io_err(&open.dest))?;
                open.writeback.wrote(&open.file, n as u64);
            }
            open.remaining -= n as u64;
            self.bytes_written += n as u64;
            data = &data[n..];
            self.finish_if_complete()?;
        }
        Ok(())
    }

    /// Creates what remains (folders, links, empty files) and applies folder modes and mtimes.
    ///
    /// # Errors
    /// [`ArchiveError::Truncated`] if a file is still waiting for bytes; I/O errors.
    pub fn finish(mut self) -> Result<(u64, u64), ArchiveError> {
        self.advance()?;
        if self.current.is_some() || self.next < self.entries.len() {
            if let Some(open) = self.current.take() {
                drop(open.file);
                let _ = remove_if_there(&open.parent, &open.tmp, &open.dest);
            }
            return Err(ArchiveError::Truncated);
        }
        self.stack.clear();
        let dirs = std::mem::take(&mut self.dirs);
        for (comps, mode, secs, nanos) in dirs.iter().rev() {
            let fd = self.dir(comps)?;
            let path: PathBuf =
                std::iter::once(self.target.as_os_str()).chain(comps.iter().map(|c| c.as_os_str())).collect();
            fs_at::fchmod(&*fd, fs_at::Mode::from_raw_mode(mode & 0o7777)).map_err(errno(&path))?;
            fs_at::futimens(&*fd, &timestamps(*secs, *nanos)).map_err(errno(&path))?;
        }
        // Everything written above, durable at once (the target's file system).
        let root = self.root()?;
        #[cfg(target_os = "linux")]
        rustix::fs::syncfs(&*root).map_err(errno(&self.target))?;
        #[cfg(not(target_os = "linux"))]
        rustix::fs::fsync(&*root).map_err(errno(&self.target))?;
        Ok((self.files_written, self.bytes_written))
    }

    /// Skips `len` bytes of the stream that cannot be restored (a lost block): the files they belong to are
    /// not written. Returns their paths.
    ///
    /// # Errors
    /// [`ArchiveError`] on I/O failure.
    pub fn skip(&mut self, mut len: u64) -> Result<Vec<String>, ArchiveError> {
        let mut lost = Vec::new();
        while len > 0 {
            self.advance()?;
            let Some(open) = self.current.as_mut() else {
                break;
            };
            let n = open.remaining.min(len);
            open.remaining -= n;
            len -= n;
            open.lost = true;
            let path = open.dest.display().to_string();
            if !lost.contains(&path) {
                lost.push(path);
            }
            self.finish_if_complete()?;
        }
        Ok(lost)
    }
}

/// `.NAME.bitdust-partial`: where a file or link is written before it is renamed into place.
fn temp_name(name: &OsStr) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(".bitdust-partial");
    tmp
}

/// Compares two trees entry by entry: names, kinds, sizes, modes, mtimes, symlink targets and file
/// contents (BLAKE3). Returns the differences in words; empty means equal.
///
/// # Errors
/// [`ArchiveError`] if either tree cannot be read.
pub fn compare_trees(a: &Path, b: &Path) -> Result<Vec<String>, ArchiveError> {
    let (sa, sb) = (scan(a)?, scan(b)?);
    let mut diffs = Vec::new();
    let index: std::collections::HashMap<&[u8], &Entry> = sb.entries.iter().map(|e| (e.path.as_slice(), e)).collect();
    for e in &sa.entries {
        let name = String::from_utf8_lossy(&e.path).into_owned();
        let Some(o) = index.get(e.path.as_slice()) else {
            diffs.push(format!("missing: {name}"));
            continue;
        };
        match (&e.kind, &o.kind) {
            (EntryKind::File { size: x, .. }, EntryKind::File { size: y, .. }) => {
                if x != y {
                    diffs.push(format!("size differs: {name} ({x} vs {y})"));
                } else {
                    let rel = std::ffi::OsStr::from_bytes(&e.path);
                    let (pa, pb) = if sa.entries.len() == 1 {
                        (a.to_path_buf(), b.to_path_buf())
                    } else {
                        (a.join(rel), b.join(rel))
                    };
                    if hash_file(&pa)? != hash_file(&pb)? {
                        diffs.push(format!("content differs: {name}"));
                    }
                }
            }
            (x, y) if std::mem::discriminant(x) != std::mem::discriminant(y) => {
                diffs.push(format!("kind differs: {name}"))
            }
            (EntryKind::Symlink { target: x }, EntryKind::Symlink { target: y }) if x != y => {
                diffs.push(format!("link target differs: {name}"))
            }
            _ => {}
        }
        if e.mode != o.mode {
            diffs.push(format!("mode differs: {name} ({:o} vs {:o})", e.mode, o.mode));
        }
        if !matches!(e.kind, EntryKind::Symlink { .. })
            && (e.mtime_secs, e.mtime_nanos) != (o.mtime_secs, o.mtime_nanos)
        {
            diffs.push(format!("mtime differs: {name}"));
        }
    }
    let mine: std::collections::HashSet<&[u8]> = sa.entries.iter().map(|e| e.path.as_slice()).collect();
    for e in &sb.entries {
        if !mine.contains(e.path.as_slice()) {
            diffs.push(format!("extra: {}", String::from_utf8_lossy(&e.path)));
        }
    }
    Ok(diffs)
}

/// BLAKE3 of a file's contents.
///
/// # Errors
/// [`ArchiveError::Io`] if it cannot be read.
pub fn hash_file(path: &Path) -> Result<blake3::Hash, ArchiveError> {
    let mut h = blake3::Hasher::new();
    let mut f = File::open(path).map_err(io_err(path))?;
    io::copy(&mut f, &mut h).map_err(io_err(path))?;
    Ok(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excludes_patterns_ignore_files_caches_and_their_precedence() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("src");
        let w = |rel: &str, data: &[u8]| {
            let p = root.join(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, data).unwrap();
        };
        w("keep.txt", b"1");
        w("build/out.o", b"2");
        w("notes.tmp", b"3");
        w("docs/a.tmp", b"4");
        w("docs/important.tmp", b"5");
        w("docs/.bitdustignore", b"*.tmp\n!important.tmp\nprivate/\n");
        w("docs/private/secret", b"6");
        w("cache/CACHEDIR.TAG", b"Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n");
        w("cache/blob", b"7");
        w("fake-cache/CACHEDIR.TAG", b"not a signature");
        w("fake-cache/blob", b"8");
        let paths = |s: &Scan| -> Vec<String> {
            s.entries.iter().map(|e| String::from_utf8_lossy(&e.path).into_owned()).collect()
        };
        let all = scan(&root).unwrap();
        assert_eq!(all.excluded, 2, "docs/a.tmp and docs/private, by docs/.bitdustignore");
        assert!(paths(&all).contains(&"docs/important.tmp".to_string()));
        assert!(!paths(&all).contains(&"docs/private".to_string()), "a .bitdustignore applies without options too");
        let ex = Excludes { patterns: vec!["/notes.tmp".into(), "/build".into()], caches: true, one_file_system: true };
        let s = scan_with(&root, &ex).unwrap();
        let p = paths(&s);
        for kept in [
            "keep.txt",
            "docs",
            "docs/important.tmp",
            "docs/.bitdustignore",
            "cache",
            "cache/CACHEDIR.TAG",
            "fake-cache/blob",
        ] {
            assert!(p.contains(&kept.to_string()), "{kept} kept: {p:?}");
        }
        for gone in ["build", "build/out.o", "notes.tmp", "docs/a.tmp", "docs/private", "cache/blob"] {
            assert!(!p.contains(&gone.to_string()), "{gone} excluded: {p:?}");
        }
        // build (with its file, once), notes.tmp, docs/a.tmp, docs/private, cache/blob
        assert_eq!(s.excluded, 5);
        // out.o, notes.tmp and cache/blob: one byte each (docs/a.tmp was out of `all` too)
        assert_eq!(s.total_bytes, all.total_bytes - 3);
        assert!(matches!(
            scan_with(&root, &Excludes { patterns: vec!["a[".into()], ..Default::default() }),
            Err(ArchiveError::BadPattern(_))
        ));
        // a file in the data cannot take back what the command line leaves out; a bad line in it is skipped
        w("docs/.bitdustignore", b"*.tmp\n!important.tmp\nprivate/\na[\n");
        let strict = Excludes { patterns: vec!["*.tmp".into()], ..Default::default() };
        let p = paths(&scan_with(&root, &strict).unwrap());
        assert!(!p.contains(&"docs/important.tmp".to_string()), "the command line wins: {p:?}");
        assert!(!p.contains(&"docs/private".to_string()), "the file's good lines still apply: {p:?}");
    }

    /// Regression: skipping a lost block once pointed the open file at /dev/null and then removed "its temp
    /// file", deleting /dev/null itself when run as root.
    #[test]
    fn skipping_a_lost_block_touches_nothing_outside_the_target() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("a"), vec![1u8; 1000]).unwrap();
        fs::write(src.path().join("b"), vec![2u8; 1000]).unwrap();
        fs::write(src.path().join("c"), vec![3u8; 1000]).unwrap();
        let scan = scan(src.path()).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let mut w = TreeWriter::new(dst.path(), scan.entries.clone());
        w.write(&[1u8; 900]).unwrap();
        // stream bytes 900..1500 are lost: the end of `a` and the start of `b`
        let lost = w.skip(600).unwrap();
        w.write(&[2u8; 500]).unwrap();
        w.write(&[3u8; 1000]).unwrap();
        w.finish().unwrap();
        assert_eq!(lost.len(), 2, "{lost:?}");
        assert!(!dst.path().join("a").exists() && !dst.path().join("b").exists());
        assert_eq!(fs::read(dst.path().join("c")).unwrap(), vec![3u8; 1000]);
        let left: Vec<_> = fs::read_dir(dst.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![std::ffi::OsString::from("c")], "no partial files left behind");
        assert!(!fs::metadata("/dev/null").unwrap().is_file(), "/dev/null must stay a device");
    }

    /// Issue 14, item 9: links planted at every path a restore writes (the entries and their temp names), at the
    /// top and under real folders, pointing outside the target. The restore replaces them and writes nothing,
    /// creates nothing and chmods nothing outside the target (main followed them).
    #[test]
    fn links_planted_in_the_target_are_replaced_never_followed() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        fs::create_dir_all(root.join("d/e")).unwrap();
        fs::write(root.join("d/e/f"), b"deep").unwrap();
        fs::write(root.join("d/g"), b"gee").unwrap();
        fs::write(root.join("top"), vec![5u8; 10_000]).unwrap();
        std::os::unix::fs::symlink("top", root.join("l")).unwrap();
        fs::set_permissions(root.join("d"), fs::Permissions::from_mode(0o777)).unwrap();
        fs::set_permissions(root.join("top"), fs::Permissions::from_mode(0o666)).unwrap();
        let scan = scan(root).unwrap();
        let stream = stream_of(root, &scan);
        for deep in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let outside = tmp.path().join("outside");
            fs::create_dir_all(outside.join("dir")).unwrap();
            fs::write(outside.join("victim"), b"precious").unwrap();
            fs::set_permissions(outside.join("victim"), fs::Permissions::from_mode(0o600)).unwrap();
            fs::set_permissions(outside.join("dir"), fs::Permissions::from_mode(0o700)).unwrap();
            let before = scan_outside(&outside);
            let target = tmp.path().join("target");
            fs::create_dir_all(&target).unwrap();
            let plant = |rel: &str, to: &Path| {
                let p = target.join(rel);
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(to, &p).unwrap();
            };
            if deep {
                for rel in ["d/e/f", "d/g", "d/e/.f.bitdust-partial", "d/.g.bitdust-partial"] {
                    plant(rel, &outside.join("victim"));
                }
            }
            for rel in ["top", ".top.bitdust-partial", "l", ".l.bitdust-partial"] {
                plant(rel, &outside.join("victim"));
            }
            if !deep {
                plant("d", &outside.join("dir"));
            }
            let mut w = TreeWriter::new(&target, scan.entries.clone());
            w.write(&stream).unwrap();
            w.finish().unwrap();
            assert_eq!(scan_outside(&outside), before, "something outside the target changed (deep: {deep})");
            assert!(compare_trees(root, &target).unwrap().is_empty(), "{:?}", compare_trees(root, &target));
        }
    }

    /// The whole archive stream of a scanned tree, read in 4 KiB blocks.
    fn stream_of(root: &Path, scan: &Scan) -> Vec<u8> {
        let mut reader = StreamReader::new(root, scan);
        let (mut all, mut buf) = (Vec::new(), Vec::new());
        loop {
            reader.next_block(&mut buf, 4096).unwrap();
            if buf.is_empty() {
                return all;
            }
            all.extend_from_slice(&buf);
        }
    }

    /// Names, modes, sizes and contents of everything under `dir` (for "nothing changed" checks).
    fn scan_outside(dir: &Path) -> Vec<(PathBuf, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let m = fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    stack.push(p.clone());
                    out.push((p, m.mode(), Vec::new()));
                } else {
                    out.push((p.clone(), m.mode(), fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in [&b"../x"[..], b"a/../../x", b"/etc/passwd", b"a//b", b"./a"] {
            assert!(safe_relative(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(safe_relative(b"a/b c/\xc3\xa9").unwrap(), PathBuf::from("a/b c/é"));
    }

    #[test]
    fn tree_round_trips_through_the_stream() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        fs::create_dir_all(root.join("sub dir/empty folder")).unwrap();
        fs::write(root.join("sub dir/naïve file.txt"), b"hello world").unwrap();
        fs::write(root.join("empty"), b"").unwrap();
        fs::write(root.join("big"), vec![42u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("sub dir/naïve file.txt", root.join("link")).unwrap();
        fs::set_permissions(root.join("big"), fs::Permissions::from_mode(0o640)).unwrap();
        let scan = scan(root).unwrap();
        assert_eq!(scan.total_bytes, 100_011);
        let dst = tempfile::tempdir().unwrap();
        let mut writer = TreeWriter::new(dst.path(), scan.entries.clone());
        for block in stream_of(root, &scan).chunks(4096) {
            writer.write(block).unwrap();
        }
        writer.finish().unwrap();
        let again = super::scan(dst.path()).unwrap();
        assert_eq!(again.entries, scan.entries);
        assert_eq!(fs::read(dst.path().join("sub dir/naïve file.txt")).unwrap(), b"hello world");
    }
}
