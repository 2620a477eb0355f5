//! The chunk index on this device, and reading chunks and trees back from the suppliers (catalog format 2).
//!
//! The index (`chunk_index` table: chunk id → pack set, block, offset, sealed length) is a cache of the index
//! objects the catalog lists: each backup run writes its rows with the catalog, and a pack set the table does not
//! know yet (a new device, restored from the key) is read from its index objects before the first lookup
//! ([`Storage::sync_chunk_index`]). A row whose pack set the catalog no longer lists (pruned) counts as absent.
//!
//! [`ChunkReader`] opens chunks for restores and listings: it locates a chunk, fetches its pack's k fragments
//! (hedged, as restores do), keeps the last few packs decoded, slices the sealed chunk out and opens it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use super::restore::{fetch_block, BlockFetch, Via};
use crate::proto::catalog::{Catalog, IndexRef, PackSet, Snapshot};
use crate::proto::chunk::{self, ChunkId, ChunkRef};
use crate::proto::pack::{self, IndexEntry};
use crate::proto::pipeline::VersionKeys;
use crate::proto::tree::{ChunkList, NodeKind, Tree};
use crate::service::Storage;

/// Table: chunk id → [`Located`].
pub(crate) const CHUNK_INDEX: &str = "chunk_index";
/// Table: pack set id → unit: the sets whose index objects are in [`CHUNK_INDEX`].
pub(crate) const INDEXED_SETS: &str = "chunk_index_sets";
/// Decoded packs a [`ChunkReader`] keeps (4 MiB each at most).
const PACK_CACHE: usize = 16;
/// Most entries one index object lists (about 72 bytes each: it stays under a chunk's size).
pub(crate) const INDEX_OBJECT_ENTRIES: usize = 40_000;

/// Where a chunk is: its pack set, the block's place in the set, and the sealed chunk's place in the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Located {
    /// The pack set.
    pub set: [u8; 16],
    /// The block's id (prune removes blocks from a set, so not its place in the list).
    pub block: [u8; 32],
    /// First byte in the block.
    pub offset: u32,
    /// Sealed length.
    pub len: u32,
}

impl Versioned for Located {
    const FORMAT: u16 = 1;
}

/// A marker row.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Indexed;

impl Versioned for Indexed {
    const FORMAT: u16 = 1;
}

/// An index object: where the chunks of one run are.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IndexObject {
    /// Format (1).
    pub format: u8,
    /// The entries.
    pub entries: Vec<IndexEntry>,
}

impl IndexObject {
    /// Decodes one, bounded.
    ///
    /// # Errors
    /// If malformed or too long.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let o: Self = postcard::from_bytes(bytes).context("malformed index object")?;
        if o.format != 1 || o.entries.len() > INDEX_OBJECT_ENTRIES {
            bail!("index object of format {} with {} entries", o.format, o.entries.len());
        }
        Ok(o)
    }
}

/// Each block of `set` by id: its place in the set.
pub(crate) fn block_places(set: &PackSet) -> HashMap<[u8; 32], u32> {
    set.blocks.iter().enumerate().map(|(i, b)| (b.block_id, i as u32)).collect()
}

/// The row an index entry of pack set `set` becomes, or `None` if its block is not in the set (any more).
pub(crate) fn located(set: &PackSet, places: &HashMap<[u8; 32], u32>, e: &IndexEntry) -> Option<Located> {
    places.contains_key(&e.block).then_some(Located { set: set.id, block: e.block, offset: e.offset, len: e.len })
}

impl Storage {
    /// Where chunk `id` is, if a pack set the catalog lists holds it.
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn locate_chunk(&self, sets: &HashSet<[u8; 16]>, id: &ChunkId) -> Result<Option<Located>> {
        Ok(self.node.db().record::<Located>(CHUNK_INDEX, id)?.filter(|l| sets.contains(&l.set)))
    }

    /// Brings the local chunk index up to the catalog: reads the index objects of every pack set not indexed here
    /// yet (a new device) and writes their rows.
    ///
    /// # Errors
    /// If an index object cannot be fetched or opened.
    pub(crate) async fn sync_chunk_index(self: &Arc<Self>, catalog: &Catalog) -> Result<usize> {
        let mut added = 0;
        let mut reader = None;
        for set in &catalog.packs {
            if self.node.db().record::<Indexed>(INDEXED_SETS, &set.id)?.is_some() {
                continue;
            }
            let reader = reader.get_or_insert_with(|| ChunkReader::new(self, catalog));
            let places = block_places(set);
            let mut rows = Vec::new();
            for r in &set.index {
                let object = reader
                    .read_at(set, &places, r)
                    .await
                    .with_context(|| format!("index of pack set {}", hex::encode(set.id)))?;
                let object = IndexObject::decode(&object)?;
                rows.extend(object.entries.iter().filter_map(|e| located(set, &places, e).map(|l| (e.chunk, l))));
            }
            added += rows.len();
            let id = set.id;
            self.node.db().write(|tx| {
                let mut t = tx.table(CHUNK_INDEX)?;
                for (chunk, l) in &rows {
                    t.put(chunk, l)?;
                }
                tx.table(INDEXED_SETS)?.put(&id, &Indexed)
            })?;
        }
        Ok(added)
    }
}

/// A block of a pack set: (set id, block id).
pub(crate) type BlockKey = ([u8; 16], [u8; 32]);

/// A pack set as a reader keeps it: the set, its blocks' places by id, and how its blocks are fetched.
type ReadableSet = (PackSet, HashMap<[u8; 32], u32>, Arc<BlockFetch>);

/// Where a reader finds chunks.
enum Locator {
    /// This device's chunk index (our own versions).
    Index,
    /// A list given with the sets (another owner's versions, from a share's manifest).
    Given(HashMap<ChunkId, Located>),
}

/// Reads chunks and trees of format-2 versions: this user's ([`ChunkReader::new`]) or another owner's shared with
/// us ([`ChunkReader::shared`]).
pub(crate) struct ChunkReader {
    storage: Arc<Storage>,
    sets: HashMap<[u8; 16], ReadableSet>,
    ids: HashSet<[u8; 16]>,
    locator: Locator,
    cache: Mutex<VecDeque<(BlockKey, Arc<Vec<u8>>)>>,
}

impl ChunkReader {
    /// A reader over the pack sets of `catalog`.
    pub(crate) fn new(storage: &Arc<Storage>, catalog: &Catalog) -> Self {
        let master = storage.node.keys().master();
        let sets = catalog
            .packs
            .iter()
            .map(|set| {
                let peers: Vec<Vec<PeerId>> = (0..set.layout.n).map(|p| storage.peers_for(&set.suppliers, p)).collect();
                (set.clone(), VersionKeys::derive(master, set.id), peers)
            })
            .collect();
        Self::over(storage, sets, Via::Own, Locator::Index)
    }

    /// A reader over another owner's pack sets `sets` (each with its keys and, per position, the peers to ask),
    /// fetched `via` a share's grants, finding chunks in `located`.
    pub(crate) fn shared(
        storage: &Arc<Storage>,
        sets: Vec<(PackSet, VersionKeys, Vec<Vec<PeerId>>)>,
        via: Via,
        located: HashMap<ChunkId, Located>,
    ) -> Self {
        Self::over(storage, sets, via, Locator::Given(located))
    }

    fn over(
        storage: &Arc<Storage>,
        sets: Vec<(PackSet, VersionKeys, Vec<Vec<PeerId>>)>,
        via: Via,
        locator: Locator,
    ) -> Self {
        let sets = sets
            .into_iter()
            .map(|(set, vkeys, peers)| {
                let fetch = BlockFetch {
                    layout: set.layout,
                    peers,
                    vkeys,
                    unconnected: HashSet::new(),
                    bad: Mutex::new(HashSet::new()),
                    failed: std::sync::atomic::AtomicU64::new(0),
                    via: via.clone(),
                    packed: true,
                };
                let places = block_places(&set);
                (set.id, (set, places, Arc::new(fetch)))
            })
            .collect::<HashMap<_, _>>();
        let ids = sets.keys().copied().collect();
        Self { storage: storage.clone(), sets, ids, locator, cache: Mutex::new(VecDeque::new()) }
    }

    /// Where chunk `id` is, if a set this reader reads holds it.
    ///
    /// # Errors
    /// On database failure.
    pub(crate) fn locate(&self, id: &ChunkId) -> Result<Option<Located>> {
        match &self.locator {
            Locator::Index => self.storage.locate_chunk(&self.ids, id),
            Locator::Given(map) => Ok(map.get(id).copied().filter(|l| self.ids.contains(&l.set))),
        }
    }

    /// The pack sets it reads.
    pub(crate) fn set_ids(&self) -> &HashSet<[u8; 16]> {
        &self.ids
    }

    /// Fragments that failed while reading (missing, unreachable, corrupt).
    pub(crate) fn failed_fragments(&self) -> u64 {
        self.sets.values().map(|(_, _, f)| f.failed.load(std::sync::atomic::Ordering::Relaxed)).sum()
    }

    /// Block `block` of pack set `set`, decoded (from the cache if it was read lately).
    ///
    /// # Errors
    /// If the set or block is unknown or fewer than k fragments are available.
    pub(crate) async fn block(&self, set: &[u8; 16], block: &[u8; 32]) -> Result<Arc<Vec<u8>>> {
        let key = (*set, *block);
        if let Some(hit) =
            self.cache.lock().ok().and_then(|c| c.iter().find(|(k, _)| *k == key).map(|(_, b)| b.clone()))
        {
            return Ok(hit);
        }
        let (pack_set, places, fetch) =
            self.sets.get(set).ok_or_else(|| anyhow!("pack set {} is not in the catalog", hex::encode(set)))?;
        let meta = places
            .get(block)
            .and_then(|i| pack_set.blocks.get(*i as usize))
            .ok_or_else(|| anyhow!("pack set {} has no block {}", hex::encode(set), hex::encode(&block[..8])))?;
        let bytes = Arc::new(fetch_block(&self.storage, fetch, meta).await?);
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= PACK_CACHE {
                c.pop_front();
            }
            c.push_back((key, bytes.clone()));
        }
        Ok(bytes)
    }

    /// Opens `chunk` found at `at`.
    ///
    /// # Errors
    /// If its block cannot be read or the chunk does not open.
    pub(crate) async fn read_located(&self, chunk: &ChunkRef, at: Located) -> Result<Vec<u8>> {
        let block = self.block(&at.set, &at.block).await?;
        let entry = IndexEntry { chunk: chunk.id, block: [0; 32], offset: at.offset, len: at.len };
        let sealed = pack::slice(&block, &entry).map_err(|e| anyhow!(e))?;
        Ok(chunk::open(chunk, sealed)?)
    }

    /// Opens the index object `r` of `set`.
    pub(crate) async fn read_at(
        &self,
        set: &PackSet,
        places: &HashMap<[u8; 32], u32>,
        r: &IndexRef,
    ) -> Result<Vec<u8>> {
        let at =
            located(set, places, &r.at).ok_or_else(|| anyhow!("an index object in a block its set does not have"))?;
        self.read_located(&r.chunk, at).await
    }

    /// Opens `chunk` wherever the index says it is.
    ///
    /// # Errors
    /// If no pack set holds it, or it cannot be read.
    pub(crate) async fn read(&self, chunk: &ChunkRef) -> Result<Vec<u8>> {
        let at = self
            .locate(&chunk.id)?
            .ok_or_else(|| anyhow!("chunk {} is in no pack set of the catalog", hex::encode(&chunk.id[..8])))?;
        self.read_located(chunk, at).await
    }

    /// Reads a directory's whole listing: the tree part `root` opens and the parts after it.
    ///
    /// # Errors
    /// If a part cannot be read or is malformed, or the parts loop.
    pub(crate) async fn tree(&self, root: &ChunkRef) -> Result<Tree> {
        let mut whole = Tree::decode(&self.read(root).await?)?;
        let mut seen = HashSet::from([root.id]);
        let mut next = whole.next.take();
        while let Some(r) = next {
            if !seen.insert(r.id) {
                bail!("a directory's tree parts loop");
            }
            let mut part = Tree::decode(&self.read(&r).await?)?;
            if let (Some(last), Some(first)) = (whole.nodes.last(), part.nodes.first()) {
                if last.name >= first.name {
                    bail!("a directory's tree parts are out of order");
                }
            }
            whole.nodes.append(&mut part.nodes);
            next = part.next.take();
        }
        Ok(whole)
    }

    /// The whole chunk list of a file node: `chunks`, then each continuation `more` opens.
    ///
    /// # Errors
    /// If a continuation cannot be read, or the list runs past `size` or loops.
    pub(crate) async fn file_chunks(
        &self,
        size: u64,
        chunks: &[ChunkRef],
        more: Option<ChunkRef>,
    ) -> Result<Vec<ChunkRef>> {
        let mut out = chunks.to_vec();
        let mut next = more;
        let mut seen = HashSet::new();
        while let Some(r) = next {
            if !seen.insert(r.id) {
                bail!("a file's chunk list loops");
            }
            let list = ChunkList::decode(&self.read(&r).await?)?;
            out.extend(list.chunks);
            next = list.more;
        }
        let total: u64 = out.iter().map(|c| u64::from(c.len)).sum();
        if total != size {
            bail!("a file's chunks hold {total} bytes for a size of {size}");
        }
        Ok(out)
    }

    /// Every chunk `snapshots` use: their tree parts, chunk lists and file chunks (restic's mark). A tree id seen
    /// once is not walked again (unchanged folders are shared between versions).
    ///
    /// # Errors
    /// The first tree or chunk list that cannot be read: the set would be incomplete, so nothing may be decided
    /// from it.
    pub(crate) async fn used_chunks(&self, snapshots: &[Snapshot]) -> Result<Used> {
        let mut used = Used { ids: HashSet::new(), trees: 0 };
        let mut walked: HashSet<ChunkId> = HashSet::new();
        for snap in snapshots {
            let mut trees: Vec<ChunkRef> = vec![snap.root];
            while let Some(first) = trees.pop() {
                if !walked.insert(first.id) {
                    continue;
                }
                let mut part = Some(first);
                while let Some(p) = part {
                    used.ids.insert(p.id);
                    let tree = Tree::decode(&self.read(&p).await.context("reading a tree")?)?;
                    used.trees += 1;
                    for node in &tree.nodes {
                        match &node.kind {
                            NodeKind::Dir { tree } => trees.push(*tree),
                            NodeKind::File { chunks, more, .. } => {
                                used.ids.extend(chunks.iter().map(|c| c.id));
                                let mut next = *more;
                                while let Some(l) = next {
                                    if !used.ids.insert(l.id) {
                                        break;
                                    }
                                    let list =
                                        ChunkList::decode(&self.read(&l).await.context("reading a chunk list")?)?;
                                    used.ids.extend(list.chunks.iter().map(|c| c.id));
                                    next = list.more;
                                }
                            }
                            NodeKind::Symlink { .. } => {}
                        }
                    }
                    part = tree.next;
                }
            }
        }
        Ok(used)
    }
}

/// What [`ChunkReader::used_chunks`] found.
pub(crate) struct Used {
    /// The chunks.
    pub ids: HashSet<ChunkId>,
    /// Distinct tree parts read.
    pub trees: usize,
}
