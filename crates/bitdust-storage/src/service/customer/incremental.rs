//! Incremental backup (catalog format 2; docs/architecture.md, "Incremental backups: chunks, packs and trees").
//!
//! ```text
//! scan(path, excludes) ─► Builder (blocking thread): per directory, deepest first,
//!     file unchanged since the parent snapshot (size, mtime, ctime, inode)? its chunk list is reused, unread;
//!     otherwise FastCDC chunks ─► chunk id known (this run, or the chunk index)? reused : sealed ─► data pack
//!     directory's nodes ─► tree parts ─► chunks in the metadata pack (trees read back together)
//!   ─► full pack ─► PackCoder (RS, no second encryption) ─► queue(2) ─► upload: n PutFragment per block,
//!     `blocks_in_flight` blocks at once
//! then index objects (where this run's chunks are) ─► pack set + version + snapshot in the catalog, the chunk
//! index rows beside it in one transaction ─► sealed catalog to every supplier
//! ```
//! A file whose size, mtime or ctime changes while it is read is read once more; if it changes again it is
//! stored as last read and named in the version's summary (`changed`), never silently half old, half new.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use bitdust_node::home::unix_now;
use bitdust_node::Progress;
use tokio::sync::mpsc;

use super::backup::{name_base, Prepared, Uploaded};
use super::chunks::{block_places, located, ChunkReader, IndexObject, Located, INDEXED_SETS, INDEX_OBJECT_ENTRIES};
use super::BackupReport;
use crate::proto::catalog::{Backup, EntryKind, IndexRef, PackSet, Snapshot, Version};
use crate::proto::chunk::{self, ChunkId, ChunkKeys, ChunkRef};
use crate::proto::pack::{IndexEntry, Pack, PackWriter};
use crate::proto::pipeline::{EncodedBlock, PackCoder, VersionKeys, BLOCK_SIZE};
use crate::proto::tree::{self, ChunkList, Node, NodeKind, Tree, MAX_FILE_CHUNKS, TREE_FORMAT};
use crate::service::archive;
use crate::service::Storage;

/// What the builder made.
struct Built {
    root: ChunkRef,
    files: u64,
    dirs: u64,
    symlinks: u64,
    new_bytes: u64,
    unchanged_files: u64,
    changed: Vec<String>,
    skipped: Vec<String>,
    /// Where every chunk this run stored is (index objects included).
    entries: Vec<IndexEntry>,
    /// The index objects.
    index: Vec<ChunkRef>,
}

impl Storage {
    /// Backs up `source` incrementally as a new version of its backup (see the module's notes).
    ///
    /// # Errors
    /// If the path is unreadable, too few suppliers are online, the chunk index cannot be brought up to date, or
    /// an upload fails (what was stored is deleted then; the catalog is unchanged).
    pub(crate) async fn backup_incremental(
        self: &Arc<Self>,
        source: &Path,
        excludes: &archive::Excludes,
        progress: Progress,
    ) -> Result<BackupReport> {
        let started = Instant::now();
        let _g = self.customer_lock.lock().await;
        let Prepared { source, scan, layout, peers } = self.prepare_backup(source, excludes, &progress).await?;
        let catalog = self.catalog()?;
        self.sync_chunk_index(&catalog).await.context("the chunk index could not be read from the suppliers")?;

        let base = name_base(&source);
        let src_bytes = source.as_os_str().as_encoded_bytes().to_vec();
        let name = catalog.name_for(&src_bytes, &base);
        let parent = catalog
            .backup(&name)
            .and_then(|b| b.versions.iter().rev().find_map(|v| catalog.snapshot(v)))
            .map(|s| s.root);
        let single_file = scan.entries.first().is_some_and(|e| matches!(e.kind, EntryKind::File { .. }));

        let (total_bytes, scan_skipped, excluded) = (scan.total_bytes, scan.skipped.clone(), scan.excluded);
        let (root_mode, root_mtime) =
            scan.entries.first().map(|e| (e.mode, (e.mtime_secs, e.mtime_nanos))).unwrap_or_default();
        let set_id: [u8; 16] = rand::random();
        let vkeys = VersionKeys::derive(self.node.keys().master(), set_id);
        let reader = Arc::new(ChunkReader::new(self, &catalog));
        let (tx, rx) = mpsc::channel::<Result<EncodedBlock>>(2);
        let builder = {
            let storage = self.clone();
            let reader = reader.clone();
            let source = source.clone();
            let progress = progress.clone();
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || -> Result<Built> {
                let mut b = Builder::new(storage, reader, handle, layout, tx, progress)?;
                let root = b.build(&source, &scan, parent)?;
                b.finish(root)
            })
        };

        let Uploaded { metas, sent, failure } = self.upload_all(rx, &peers, &vkeys, None).await;
        let built = builder.await.map_err(|e| anyhow!("the backup's reader stopped: {e}")).and_then(|r| r);
        let built = match (built, failure) {
            (Ok(b), None) => b,
            (Ok(_), Some(e)) | (Err(_), Some(e)) | (Err(e), None) => {
                self.delete_fragments(&peers, &vkeys, &sent).await;
                return Err(e.context("backup failed; the catalog is unchanged and what it stored is deleted"));
            }
        };

        let set = PackSet {
            id: set_id,
            created_unix: unix_now(),
            layout,
            suppliers: peers.iter().map(|p| p.to_bytes()).collect(),
            blocks: metas,
            index: Vec::new(),
        };
        let places = block_places(&set);
        let mut index = Vec::new();
        for r in &built.index {
            let at = built.entries.iter().find(|e| e.chunk == r.id).copied();
            match at {
                Some(at) if places.contains_key(&at.block) => index.push(IndexRef { chunk: *r, at }),
                _ => {
                    self.delete_fragments(&peers, &vkeys, &sent).await;
                    return Err(anyhow!("an index object of this run is in no block it stored (a bug)"));
                }
            }
        }
        let set = PackSet { index, ..set };
        let rows: Vec<(ChunkId, Located)> =
            built.entries.iter().filter_map(|e| located(&set, &places, e).map(|l| (e.chunk, l))).collect();
        let stored_bytes: u64 = set
            .blocks
            .iter()
            .map(|b| (u64::from(b.shard_len) + crate::proto::fragment::HEADER_LEN as u64) * u64::from(layout.n))
            .sum();

        let mut catalog = self.catalog()?;
        let version = Version {
            number: catalog.backup(&name).and_then(|b| b.versions.last()).map(|v| v.number + 1).unwrap_or(1),
            id: rand::random(),
            created_unix: unix_now(),
            layout,
            suppliers: set.suppliers.clone(),
            total_bytes,
            entries: Vec::new(),
            blocks: Vec::new(),
        };
        let snapshot = Snapshot {
            version_id: version.id,
            root: built.root,
            root_mode,
            root_mtime,
            files: built.files,
            dirs: built.dirs,
            symlinks: built.symlinks,
            new_bytes: built.new_bytes,
            unchanged_files: built.unchanged_files,
            stored_bytes,
            changed: built.changed.clone(),
        };
        let report = BackupReport {
            name: name.clone(),
            version: version.number,
            files: built.files as usize,
            folders: built.dirs as usize,
            symlinks: built.symlinks as usize,
            bytes: total_bytes,
            stored_bytes,
            blocks: set.blocks.len(),
            layout: layout.to_string(),
            seconds: 0.0,
            skipped: scan_skipped.into_iter().chain(built.skipped).collect(),
            changed: built.changed,
            excluded,
            new_bytes: built.new_bytes,
            unchanged_files: built.unchanged_files,
        };
        match catalog.backups.iter_mut().find(|b| b.name == name) {
            Some(b) => b.versions.push(version),
            None => catalog.backups.push(Backup { name, source: src_bytes, single_file, versions: vec![version] }),
        }
        let has_blocks = !set.blocks.is_empty();
        if has_blocks {
            catalog.packs.push(set);
        }
        catalog.snapshots.push(snapshot);
        catalog.revision += 1;
        self.node.db().write(|tx| {
            tx.put_value(super::CATALOG_KEY, &catalog)?;
            let mut t = tx.table(super::chunks::CHUNK_INDEX)?;
            for (id, l) in &rows {
                t.put(id, l)?;
            }
            if has_blocks {
                tx.table(INDEXED_SETS)?.put(&set_id, &super::chunks::Indexed)?;
            }
            Ok(())
        })?;
        self.push_catalog(&catalog, &peers).await?;
        Ok(BackupReport { seconds: started.elapsed().as_secs_f64(), ..report })
    }
}

/// One directory being built: its nodes so far, and the parent snapshot's nodes of the same directory.
struct Frame {
    rel: Vec<u8>,
    name: Vec<u8>,
    mode: u32,
    mtime: (i64, u32),
    nodes: Vec<Node>,
    parent: HashMap<Vec<u8>, Node>,
}

/// Reads, chunks, deduplicates, seals and packs on a blocking thread.
struct Builder {
    storage: Arc<Storage>,
    reader: Arc<ChunkReader>,
    handle: tokio::runtime::Handle,
    keys: ChunkKeys,
    compressor: zstd::bulk::Compressor<'static>,
    data: PackWriter,
    meta: PackWriter,
    coder: PackCoder,
    next_block: u64,
    tx: mpsc::Sender<Result<EncodedBlock>>,
    progress: Progress,
    seen: HashSet<ChunkId>,
    entries: Vec<IndexEntry>,
    new_bytes: u64,
    files: u64,
    dirs: u64,
    symlinks: u64,
    unchanged_files: u64,
    changed: Vec<String>,
    skipped: Vec<String>,
}

impl Builder {
    fn new(
        storage: Arc<Storage>,
        reader: Arc<ChunkReader>,
        handle: tokio::runtime::Handle,
        layout: crate::proto::erasure::Layout,
        tx: mpsc::Sender<Result<EncodedBlock>>,
        progress: Progress,
    ) -> Result<Self> {
        let keys = ChunkKeys::derive(storage.node.keys().master());
        Ok(Self {
            storage,
            reader,
            handle,
            keys,
            compressor: chunk::compressor()?,
            data: PackWriter::new(BLOCK_SIZE),
            meta: PackWriter::new(BLOCK_SIZE),
            coder: PackCoder::new(layout),
            next_block: 0,
            tx,
            progress,
            seen: HashSet::new(),
            entries: Vec::new(),
            new_bytes: 0,
            files: 0,
            dirs: 0,
            symlinks: 0,
            unchanged_files: 0,
            changed: Vec::new(),
            skipped: Vec::new(),
        })
    }

    /// Stores `plain` as a chunk unless this run or an earlier one stored it; returns its ref. `meta`: a tree,
    /// chunk list or index object (packed apart from file data, so listings read few packs).
    fn store(&mut self, plain: &[u8], meta: bool) -> Result<ChunkRef> {
        let r = self.keys.reference(plain);
        if self.seen.contains(&r.id) || self.storage.locate_chunk(self.reader.set_ids(), &r.id)?.is_some() {
            return Ok(r);
        }
        let sealed = chunk::seal_with(r, plain, &mut self.compressor);
        self.seen.insert(r.id);
        self.new_bytes += plain.len() as u64;
        if !meta {
            self.progress.add_new(plain.len() as u64);
        }
        let closed = if meta { self.meta.push(&sealed) } else { self.data.push(&sealed) };
        if let Some(pack) = closed {
            self.emit(pack)?;
        }
        Ok(r)
    }

    fn emit(&mut self, pack: Pack) -> Result<()> {
        let block = self.coder.encode(self.next_block, pack.block_id, &pack.bytes)?;
        self.next_block += 1;
        self.entries.extend(pack.entries);
        self.tx.blocking_send(Ok(block)).map_err(|_| anyhow!("the upload stopped"))
    }

    /// The parent snapshot's listing of a directory, or nothing if it cannot be read (its files are read then).
    fn parent_listing(&self, tree: Option<&ChunkRef>) -> HashMap<Vec<u8>, Node> {
        let Some(tree) = tree else { return HashMap::new() };
        match self.handle.block_on(self.reader.tree(tree)) {
            Ok(t) => t.nodes.into_iter().map(|n| (n.name.clone(), n)).collect(),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "a folder of the previous version could not be read; its files are read again");
                HashMap::new()
            }
        }
    }

    /// Builds every tree of `scan` (taken from `source`) and returns the root's ref.
    fn build(&mut self, source: &Path, scan: &archive::Scan, parent: Option<ChunkRef>) -> Result<ChunkRef> {
        let Some(first) = scan.entries.first() else { return Err(anyhow!("nothing to back up")) };
        if let EntryKind::File { .. } = first.kind {
            // a single file: a root tree of that one file
            let parents = self.parent_listing(parent.as_ref());
            let node = self.file_node(source, first.path.clone(), parents.get(&first.path))?;
            let mut nodes = Vec::new();
            nodes.extend(node);
            return self.store_tree(nodes);
        }
        let root_parent = self.parent_listing(parent.as_ref());
        let mut stack = vec![Frame {
            rel: Vec::new(),
            name: Vec::new(),
            mode: first.mode,
            mtime: (first.mtime_secs, first.mtime_nanos),
            nodes: Vec::new(),
            parent: root_parent,
        }];
        for e in &scan.entries[1..] {
            let (dir, name) = match e.path.iter().rposition(|b| *b == b'/') {
                Some(i) => (&e.path[..i], e.path[i + 1..].to_vec()),
                None => (&e.path[..0], e.path.clone()),
            };
            while stack.last().is_some_and(|f| f.rel != dir) && stack.len() > 1 {
                self.close(&mut stack)?;
            }
            let mtime = (e.mtime_secs, e.mtime_nanos);
            match &e.kind {
                EntryKind::Dir => {
                    let tree = stack.last().and_then(|f| match f.parent.get(&name).map(|n| &n.kind) {
                        Some(NodeKind::Dir { tree }) => Some(*tree),
                        _ => None,
                    });
                    let parent = self.parent_listing(tree.as_ref());
                    stack.push(Frame { rel: e.path.clone(), name, mode: e.mode, mtime, nodes: Vec::new(), parent });
                }
                EntryKind::Symlink { target } => {
                    self.symlinks += 1;
                    if let Some(f) = stack.last_mut() {
                        f.nodes.push(Node {
                            name,
                            kind: NodeKind::Symlink { target: target.clone() },
                            mode: e.mode,
                            mtime,
                        });
                    }
                }
                EntryKind::File { .. } => {
                    let path = source.join(std::ffi::OsStr::from_bytes(&e.path));
                    let before = stack.last().and_then(|f| f.parent.get(&name).cloned());
                    if let Some(node) = self.file_node(&path, name, before.as_ref())? {
                        if let Some(f) = stack.last_mut() {
                            f.nodes.push(node);
                        }
                    }
                }
            }
        }
        while stack.len() > 1 {
            self.close(&mut stack)?;
        }
        let root = stack.pop().ok_or_else(|| anyhow!("no root folder"))?;
        self.dirs += 1;
        self.store_tree(root.nodes)
    }

    /// Stores the top folder's tree and adds its node to the folder above.
    fn close(&mut self, stack: &mut Vec<Frame>) -> Result<()> {
        let Some(f) = stack.pop() else { return Ok(()) };
        self.dirs += 1;
        let tree = self.store_tree(f.nodes)?;
        if let Some(up) = stack.last_mut() {
            up.nodes.push(Node { name: f.name, kind: NodeKind::Dir { tree }, mode: f.mode, mtime: f.mtime });
        }
        Ok(())
    }

    /// Stores a folder's nodes as tree parts (last first, each pointing to the next); returns the first's ref.
    fn store_tree(&mut self, nodes: Vec<Node>) -> Result<ChunkRef> {
        let parts = tree::split(nodes)?;
        let mut next = None;
        for nodes in parts.into_iter().rev() {
            let bytes = Tree { format: TREE_FORMAT, nodes, next }.encode()?;
            next = Some(self.store(&bytes, true)?);
        }
        next.ok_or_else(|| anyhow!("a folder with no tree part"))
    }

    /// The node of the regular file at `path`: its chunks from the parent snapshot if it is unchanged there,
    /// otherwise read (again once if it changes meanwhile). `None` if it vanished or cannot be read (skipped).
    fn file_node(&mut self, path: &Path, name: Vec<u8>, before: Option<&Node>) -> Result<Option<Node>> {
        let shown = || path.display().to_string();
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %shown(), error = %e, "skipped: cannot be opened");
                self.skipped.push(shown());
                return Ok(None);
            }
        };
        let mut stat = file.metadata().with_context(shown)?;
        self.files += 1;
        let ident = |m: &std::fs::Metadata| {
            (m.len(), (m.mtime(), m.mtime_nsec() as u32), (m.ctime(), m.ctime_nsec() as u32), (m.ino(), m.dev()))
        };
        if let Some(Node { kind: NodeKind::File { size, chunks, more, ctime, inode }, mtime, .. }) = before {
            if (*size, *mtime, *ctime, *inode) == ident(&stat) {
                self.unchanged_files += 1;
                self.progress.add(*size);
                return Ok(Some(Node {
                    name,
                    kind: NodeKind::File {
                        size: *size,
                        chunks: chunks.clone(),
                        more: *more,
                        ctime: *ctime,
                        inode: *inode,
                    },
                    mode: stat.mode() & 0o7777,
                    mtime: *mtime,
                }));
            }
        }
        let mut refs: Vec<ChunkRef>;
        let mut read: u64;
        let mut attempt = 0;
        loop {
            refs = Vec::new();
            read = 0;
            (&file).seek(SeekFrom::Start(0)).with_context(shown)?;
            chunk::cut_stream(&file, |c: &[u8]| -> Result<()> {
                refs.push(self.store(c, false)?);
                read += c.len() as u64;
                self.progress.add(c.len() as u64);
                Ok(())
            })
            .with_context(shown)?;
            let after = file.metadata().with_context(shown)?;
            let same = ident(&after) == ident(&stat) && read == after.len();
            stat = after;
            if same {
                break;
            }
            attempt += 1;
            if attempt == 2 {
                self.changed.push(shown());
                break;
            }
        }
        let (_, mtime, ctime, inode) = ident(&stat);
        let (chunks, more) = self.chunk_list(refs)?;
        Ok(Some(Node {
            name,
            kind: NodeKind::File { size: read, chunks, more, ctime, inode },
            mode: stat.mode() & 0o7777,
            mtime,
        }))
    }

    /// A file's chunk list as a node holds it: the first [`MAX_FILE_CHUNKS`], the rest in stored continuations.
    fn chunk_list(&mut self, mut refs: Vec<ChunkRef>) -> Result<(Vec<ChunkRef>, Option<ChunkRef>)> {
        if refs.len() <= MAX_FILE_CHUNKS {
            return Ok((refs, None));
        }
        let rest = refs.split_off(MAX_FILE_CHUNKS);
        let parts: Vec<Vec<ChunkRef>> = rest.chunks(MAX_FILE_CHUNKS).map(<[ChunkRef]>::to_vec).collect();
        let mut more = None;
        for chunks in parts.into_iter().rev() {
            let bytes = ChunkList { chunks, more }.encode()?;
            more = Some(self.store(&bytes, true)?);
        }
        Ok((refs, more))
    }

    /// Stores the index objects, closes the open packs and returns what the run made.
    fn finish(mut self, root: ChunkRef) -> Result<Built> {
        // the open packs' entries are taken first: storing the index objects may close those packs
        let mut open: Vec<IndexEntry> = self.data.open_entries().to_vec();
        open.extend_from_slice(self.meta.open_entries());
        // each object is stored as soon as it is full (storing may close packs: their entries are appended to
        // `self.entries` past `closed`, already counted through `open`)
        let closed = self.entries.len();
        let mut index = Vec::new();
        let mut part = Vec::with_capacity(INDEX_OBJECT_ENTRIES.min(closed + open.len()));
        for i in 0..closed + open.len() {
            part.push(if i < closed { self.entries[i] } else { open[i - closed] });
            if part.len() == INDEX_OBJECT_ENTRIES || i + 1 == closed + open.len() {
                let bytes = postcard::to_allocvec(&IndexObject { format: 1, entries: std::mem::take(&mut part) })?;
                index.push(self.store(&bytes, true)?);
            }
        }
        if let Some(p) = self.data.finish() {
            self.emit(p)?;
        }
        if let Some(p) = self.meta.finish() {
            self.emit(p)?;
        }
        Ok(Built {
            root,
            files: self.files,
            dirs: self.dirs,
            symlinks: self.symlinks,
            new_bytes: self.new_bytes,
            unchanged_files: self.unchanged_files,
            changed: self.changed,
            skipped: self.skipped,
            entries: self.entries,
            index,
        })
    }
}
