//! File transfer between contacts: an offer inside an end-to-end encrypted message, then the file pulled in
//! verified slices, so a cut link resumes where it stopped and a corrupted slice is refused.
//!
//! The sender computes the file's Bao outboard tree (BLAKE3 in verified streaming mode: Jack O'Connor, "Bao",
//! <https://github.com/oconnor663/bao>, spec in its repository; with 16 KiB chunk groups as n0's `bao-tree` does) and sends a [`FileOffer`] carrying the root hash.
//! The recipient asks for [`CHUNK_BYTES`] at a time at any offset ([`crate::proto::wire::Request::FileGet`]); each
//! answer is a Bao slice (the bytes interleaved with the tree nodes that prove them) that [`verify`] checks against
//! the root hash from the offer before a byte is written. Resuming is asking from the first offset not yet written.
//!
//! Pure: readers and writers are the caller's (files on disk in the service).

use std::io::{Read, Write};

use bao_tree::io::outboard::{EmptyOutboard, PostOrderOutboard};
use bao_tree::io::sync::{ReadAt, Size, WriteAt};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

use serde::{Deserialize, Serialize};

/// Bytes asked per request.
pub const CHUNK_BYTES: u64 = 1 << 20;
/// The largest slice of [`CHUNK_BYTES`]: the bytes and the tree nodes over them (64 bytes per 16 KiB, and the path
/// from the root), with room to spare.
pub const MAX_SLICE_BYTES: usize = CHUNK_BYTES as usize + CHUNK_BYTES as usize / 8 + 4096;
/// The longest file name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Errors of file transfer.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A slice that does not prove the asked bytes against the offer's hash.
    #[error("slice at {offset} does not verify: {why}")]
    Corrupt {
        /// Where it was asked.
        offset: u64,
        /// What the decoder said.
        why: String,
    },
    /// A range outside the file.
    #[error("range {offset}+{len} is outside a file of {size} bytes")]
    BadRange {
        /// Start.
        offset: u64,
        /// Length.
        len: u64,
        /// File size.
        size: u64,
    },
    /// A read or write failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the sender offers, inside an encrypted message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffer {
    /// The transfer's random id (what the recipient asks slices of).
    pub transfer: [u8; 16],
    /// The file's name (no folders; see [`safe_name`]).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The Bao (BLAKE3) root hash of its bytes.
    pub hash: [u8; 32],
    /// Empty: fetch it from the sender. Otherwise "sent through storage": the capability with which the recipient
    /// fetches it from the sender's suppliers while the sender is offline (opaque here; the storage wing's).
    #[serde(with = "serde_bytes")]
    pub stored: Vec<u8>,
}

/// The tree's chunk groups: 16 KiB (2^4 BLAKE3 chunks) hashed as one subtree, so hashing uses BLAKE3's SIMD and the
/// outboard holds 64 bytes per 16 KiB (1/256 of the file).
pub const CHUNK_GROUP: BlockSize = BlockSize::from_chunk_log(4);

fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, CHUNK_GROUP)
}

/// The chunk ranges of `len` bytes at `offset` (a multiple of [`CHUNK_BYTES`]) of a file of `size` bytes.
fn ranges(size: u64, offset: u64, len: u64) -> Result<ChunkRanges, FileError> {
    let end = offset.checked_add(len).filter(|end| *end <= size);
    match end {
        Some(end) if len > 0 && len <= CHUNK_BYTES && offset % CHUNK_BYTES == 0 => {
            Ok(ChunkRanges::from(ChunkNum(offset / 1024)..ChunkNum::chunks(end)))
        }
        _ => Err(FileError::BadRange { offset, len, size }),
    }
}

/// Writes the Bao outboard tree (post order, [`CHUNK_GROUP`]s) of the `size` bytes `input` yields into
/// `outboard` and returns the root hash (the file's BLAKE3 hash).
///
/// # Errors
/// A read or write failure, or an input shorter than `size`.
pub fn outboard<R: Read, W: Write>(input: R, size: u64, outboard: W) -> Result<[u8; 32], FileError> {
    Ok(*bao_tree::io::sync::outboard_post_order(input, tree(size), outboard)?.as_bytes())
}

/// The length of the chunk at `offset` of a file of `size` bytes.
pub fn chunk_len(size: u64, offset: u64) -> u64 {
    size.saturating_sub(offset).min(CHUNK_BYTES)
}

/// The Bao slice proving `len` bytes at `offset` of the file of `size` bytes and root `hash`, from the file and
/// its outboard tree (the sender's side).
///
/// # Errors
/// [`FileError::BadRange`] for an empty range, one over [`CHUNK_BYTES`], not at a chunk boundary or outside the
/// file; a read failure.
pub fn extract<D: ReadAt + Size, O: ReadAt>(
    file: D,
    outboard: O,
    size: u64,
    hash: &[u8; 32],
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, FileError> {
    let ranges = ranges(size, offset, len)?;
    let outboard = PostOrderOutboard { root: bao_tree::blake3::Hash::from(*hash), tree: tree(size), data: outboard };
    let mut slice = Vec::with_capacity(len as usize + len as usize / 128 + 1024);
    bao_tree::io::sync::encode_ranges(file, outboard, &ranges, &mut slice)
        .map_err(|e| FileError::Io(std::io::Error::other(e.to_string())))?;
    Ok(slice)
}

/// The bytes of one slice, written where the decoder puts them.
struct Window<'a> {
    base: u64,
    buf: &'a mut [u8],
    written: u64,
}

impl WriteAt for Window<'_> {
    fn write_at(&mut self, pos: u64, data: &[u8]) -> std::io::Result<usize> {
        let outside = || std::io::Error::new(std::io::ErrorKind::InvalidData, "leaf outside the asked range");
        let start = usize::try_from(pos.checked_sub(self.base).ok_or_else(outside)?).map_err(|_| outside())?;
        let end = start.checked_add(data.len()).filter(|e| *e <= self.buf.len()).ok_or_else(outside)?;
        self.buf[start..end].copy_from_slice(data);
        self.written += data.len() as u64;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Checks a slice against the offer's root `hash` (and `size`) and returns the `len` bytes at `offset` it proves
/// (the recipient's side).
///
/// # Errors
/// [`FileError::BadRange`] for a range [`extract`] would refuse; [`FileError::Corrupt`] if the slice is too
/// large, does not verify, or proves fewer bytes than asked.
pub fn verify(slice: &[u8], hash: &[u8; 32], size: u64, offset: u64, len: u64) -> Result<Vec<u8>, FileError> {
    let corrupt = |why: String| FileError::Corrupt { offset, why };
    let ranges = ranges(size, offset, len)?;
    if slice.len() > MAX_SLICE_BYTES {
        return Err(corrupt(format!("{} bytes is over the slice limit", slice.len())));
    }
    let mut content = vec![0u8; len as usize];
    let mut window = Window { base: offset, buf: &mut content, written: 0 };
    let root = EmptyOutboard { tree: tree(size), root: bao_tree::blake3::Hash::from(*hash) };
    bao_tree::io::sync::decode_ranges(slice, &ranges, &mut window, root).map_err(|e| corrupt(e.to_string()))?;
    if window.written != len {
        return Err(corrupt(format!("{} bytes proven of {len} asked", window.written)));
    }
    Ok(content)
}

/// A name safe to create in a folder: the last component of `name`, without control characters or a leading
/// dot, at most [`MAX_NAME_BYTES`] bytes, `file` if nothing is left.
pub fn safe_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out: String = last.chars().filter(|c| !c.is_control()).collect();
    while out.starts_with('.') {
        out.remove(0);
    }
    while out.len() > MAX_NAME_BYTES {
        out.pop();
    }
    if out.trim().is_empty() {
        "file".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn every_chunk_verifies_and_any_flipped_byte_is_refused() {
        let data = file(3 * CHUNK_BYTES as usize + 12_345);
        let size = data.len() as u64;
        let mut tree = Vec::new();
        let hash = outboard(&data[..], size, &mut tree).unwrap();
        assert_eq!(hash, *blake3::hash(&data).as_bytes(), "Bao's root is the BLAKE3 hash");
        assert!(tree.len() as u64 <= size / 256 + 64, "outboard of {} bytes", tree.len());
        let mut offset = 0;
        while offset < size {
            let len = chunk_len(size, offset);
            let slice = extract(&data[..], &tree[..], size, &hash, offset, len).unwrap();
            assert!(slice.len() <= MAX_SLICE_BYTES);
            let got = verify(&slice, &hash, size, offset, len).unwrap();
            assert_eq!(got, &data[offset as usize..(offset + len) as usize]);
            for at in [0, 8, slice.len() / 3, slice.len() - 1] {
                let mut bad = slice.clone();
                bad[at] ^= 1;
                assert!(matches!(verify(&bad, &hash, size, offset, len), Err(FileError::Corrupt { .. })), "byte {at}");
            }
            // a slice of the right bytes at another offset does not prove this one
            if offset > 0 {
                assert!(verify(&slice, &hash, size, offset - CHUNK_BYTES, CHUNK_BYTES).is_err());
            }
            offset += len;
        }
        // the file changed on the sender's disk after the offer: its slices no longer verify
        let mut changed = data.clone();
        changed[CHUNK_BYTES as usize + 5] ^= 0x80;
        let slice = extract(&changed[..], &tree[..], size, &hash, CHUNK_BYTES, CHUNK_BYTES).unwrap();
        assert!(verify(&slice, &hash, size, CHUNK_BYTES, CHUNK_BYTES).is_err());
        let good = extract(&data[..], &tree[..], size, &hash, CHUNK_BYTES, CHUNK_BYTES).unwrap();
        assert!(verify(&good[..good.len() / 2], &hash, size, CHUNK_BYTES, CHUNK_BYTES).is_err(), "a cut slice");
        // another file's hash, or the right hash with another size, proves nothing
        assert!(verify(&good, &[7; 32], size, CHUNK_BYTES, CHUNK_BYTES).is_err());
        // the size is proven by the last chunk (Bao authenticates it there, not in the middle of the file)
        let last = size / CHUNK_BYTES * CHUNK_BYTES;
        let tail = extract(&data[..], &tree[..], size, &hash, last, size - last).unwrap();
        assert!(verify(&tail, &hash, size, last, size - last).is_ok());
        assert!(verify(&tail, &hash, size + 1, last, size - last + 1).is_err());
        assert!(verify(&tail, &hash, size - 1, last, size - last - 1).is_err());
    }

    #[test]
    fn ranges_outside_the_file_are_refused() {
        let data = file(2 * CHUNK_BYTES as usize);
        let size = data.len() as u64;
        let mut tree = Vec::new();
        let hash = outboard(&data[..], size, &mut tree).unwrap();
        for (offset, len) in [(0, 0), (CHUNK_BYTES, CHUNK_BYTES + 1), (0, CHUNK_BYTES + 1), (u64::MAX, 1), (1024, 1024)]
        {
            let r = extract(&data[..], &tree[..], size, &hash, offset, len);
            assert!(matches!(r, Err(FileError::BadRange { .. })), "{offset}+{len}");
            assert!(matches!(verify(&[], &hash, size, offset, len), Err(FileError::BadRange { .. })));
        }
    }

    #[test]
    fn names_lose_their_folders_and_dots() {
        assert_eq!(safe_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_name("a\\b\\c.txt"), "c.txt");
        assert_eq!(safe_name(".hidden"), "hidden");
        assert_eq!(safe_name(".."), "file");
        assert_eq!(safe_name("x\u{0}y\n"), "xy");
        assert_eq!(safe_name(&"é".repeat(200)).len(), 254);
    }
}
