//! Packs (catalog format 2): sealed chunks ([`crate::proto::chunk`]) gathered into blocks of up to
//! [`BLOCK_SIZE`] bytes, which [`crate::proto::pipeline::PackCoder`] erasure-codes; the index says where each chunk
//! is (restic's packs and index, with our blocks as packs).
//!
//! A pack is the sealed chunks back to back, nothing else: which chunk starts where is in the index only, which is
//! sealed itself, so k colluding suppliers who rebuild a pack see sealed bytes and not even chunk boundaries. Block
//! ids are random (a block's content is not predictable from anything a supplier sees).

use serde::{Deserialize, Serialize};

use crate::proto::chunk::{ChunkId, SealedChunk};
use crate::proto::pipeline::BLOCK_SIZE;

/// Where one sealed chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// The chunk.
    pub chunk: ChunkId,
    /// The block holding it.
    pub block: [u8; 32],
    /// Its first byte in the block.
    pub offset: u32,
    /// Its sealed length.
    pub len: u32,
}

/// A full pack, ready to erasure-code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pack {
    /// Its random block id.
    pub block_id: [u8; 32],
    /// The sealed chunks back to back.
    pub bytes: Vec<u8>,
    /// Where each chunk is in it.
    pub entries: Vec<IndexEntry>,
}

/// Gathers sealed chunks into packs of at most `capacity` bytes.
#[derive(Debug)]
pub struct PackWriter {
    capacity: usize,
    current: Option<Pack>,
}

impl PackWriter {
    /// Packs of at most `capacity` bytes (at most [`BLOCK_SIZE`]; every sealed chunk fits in one).
    pub fn new(capacity: usize) -> Self {
        Self { capacity: capacity.clamp(1, BLOCK_SIZE), current: None }
    }

    /// Adds `chunk`; returns the pack it closed, if it did not fit in the current one.
    ///
    /// # Panics
    /// Never: a chunk larger than the capacity gets a pack of its own (cut by [`crate::proto::chunk::MAX_CHUNK`],
    /// a sealed chunk is always under [`BLOCK_SIZE`]).
    pub fn push(&mut self, chunk: &SealedChunk) -> Option<Pack> {
        self.push_sealed(chunk.chunk.id, &chunk.sealed)
    }

    /// Adds the sealed chunk `sealed` of id `id` (moved from another pack by prune's repacking, which has no
    /// key and needs none); returns the pack it closed, if any.
    pub fn push_sealed(&mut self, id: ChunkId, sealed: &[u8]) -> Option<Pack> {
        let fits = self.current.as_ref().is_some_and(|p| p.bytes.len() + sealed.len() <= self.capacity);
        let closed = if fits { None } else { self.current.take().filter(|p| !p.entries.is_empty()) };
        let pack = self.current.get_or_insert_with(|| Pack {
            block_id: rand::random(),
            bytes: Vec::with_capacity(sealed.len().max(self.capacity.min(BLOCK_SIZE))),
            entries: Vec::new(),
        });
        pack.entries.push(IndexEntry {
            chunk: id,
            block: pack.block_id,
            offset: pack.bytes.len() as u32,
            len: sealed.len() as u32,
        });
        pack.bytes.extend_from_slice(sealed);
        closed
    }

    /// Where the chunks of the open pack are (the closed packs carry their own entries).
    pub fn open_entries(&self) -> &[IndexEntry] {
        self.current.as_ref().map_or(&[], |p| p.entries.as_slice())
    }

    /// Bytes waiting in the open pack.
    pub fn pending(&self) -> usize {
        self.current.as_ref().map_or(0, |p| p.bytes.len())
    }

    /// Closes the open pack, if it holds anything.
    pub fn finish(&mut self) -> Option<Pack> {
        self.current.take().filter(|p| !p.entries.is_empty())
    }
}

/// The sealed bytes of `entry` in `pack` (a decoded block).
///
/// # Errors
/// If the entry reaches past the pack.
pub fn slice<'a>(pack: &'a [u8], entry: &IndexEntry) -> Result<&'a [u8], String> {
    let start = entry.offset as usize;
    let end = start.checked_add(entry.len as usize).filter(|e| *e <= pack.len());
    match end {
        Some(end) => Ok(&pack[start..end]),
        None => Err(format!("chunk at {}+{} is past the pack's {} bytes", entry.offset, entry.len, pack.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::chunk::{self, ChunkKeys};
    use crate::proto::erasure::Layout;
    use crate::proto::pipeline::PackCoder;
    use bitdust_core::keys::NodeKeys;

    #[test]
    fn chunks_pack_into_blocks_that_erasure_code_and_open_again() {
        let keys = ChunkKeys::derive(NodeKeys::from_seed([4; 32]).unwrap().master());
        let mut z = chunk::compressor().unwrap();
        // incompressible contents of assorted sizes
        let plains: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                let mut v = vec![0u8; (i * 7919 % 300_000) as usize];
                blake3::Hasher::new().update(&i.to_le_bytes()).finalize_xof().fill(&mut v);
                v
            })
            .collect();
        let sealed: Vec<SealedChunk> = plains.iter().map(|p| keys.seal(p, &mut z)).collect();
        let mut w = PackWriter::new(1 << 20);
        let mut packs: Vec<Pack> = sealed.iter().filter_map(|c| w.push(c)).collect();
        packs.extend(w.finish());
        assert!(w.finish().is_none());
        assert!(packs.len() > 1);
        assert!(packs.iter().all(|p| p.bytes.len() <= 1 << 20 || p.entries.len() == 1));
        assert_eq!(packs.iter().map(|p| p.entries.len()).sum::<usize>(), sealed.len());
        let layout = Layout::new(3, 5).unwrap();
        let mut coder = PackCoder::new(layout);
        let mut opened = 0;
        for (i, pack) in packs.iter().enumerate() {
            let block = coder.encode(i as u64, pack.block_id, &pack.bytes).unwrap();
            // any k fragments: here the parity ones and one data fragment
            let some: Vec<(usize, &[u8])> =
                [4usize, 3, 1].iter().map(|p| (*p, block.fragments[*p].as_slice())).collect();
            let back = coder.decode(&block.meta, &some).unwrap();
            assert_eq!(back, pack.bytes);
            for e in &pack.entries {
                let s = sealed.iter().find(|s| s.chunk.id == e.chunk).unwrap();
                assert_eq!(slice(&back, e).unwrap(), s.sealed.as_slice());
                assert_eq!(chunk::open(&s.chunk, slice(&back, e).unwrap()).unwrap().len(), s.chunk.len as usize);
                opened += 1;
            }
            let mut bad = block.fragments[1].clone();
            let last = bad.len() - 1;
            bad[last] ^= 1;
            assert!(coder
                .decode(&block.meta, &[(4, &block.fragments[4]), (3, &block.fragments[3]), (1, &bad)])
                .is_err());
        }
        assert_eq!(opened, sealed.len());
        let e = IndexEntry { chunk: [0; 32], block: [0; 32], offset: 10, len: u32::MAX };
        assert!(slice(&[0u8; 20], &e).is_err());
    }
}
