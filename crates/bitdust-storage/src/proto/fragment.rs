//! The fragment format: a fixed 80-byte header followed by one shard.
//!
//! ```text
//! offset size field
//!      0    4 magic "BDFR"
//!      4    1 format version (1)
//!      5    1 reserved (0)
//!      6    2 shard index, little endian (0..k data, k..n parity)
//!      8    2 k
//!     10    2 n
//!     12    4 shard length in bytes
//!     16   32 block id (keyed BLAKE3; reveals nothing of names)
//!     48   32 BLAKE3 of the shard bytes
//!     80    . shard
//! ```

use crate::proto::erasure::Layout;

/// Header length in bytes.
pub const HEADER_LEN: usize = 80;
const MAGIC: &[u8; 4] = b"BDFR";
/// Current fragment format.
pub const FRAGMENT_FORMAT: u8 = 1;
/// The largest shard accepted, in bytes (a 4 MiB block with k = 1, plus AEAD tag and padding, fits).
pub const MAX_SHARD_LEN: usize = 4 * 1024 * 1024 + 1024;
/// The largest fragment accepted, header included.
pub const MAX_FRAGMENT_LEN: usize = HEADER_LEN + MAX_SHARD_LEN;

/// Errors from parsing a fragment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FragmentError {
    /// Shorter than its header, bad magic or version, or inconsistent fields.
    #[error("malformed fragment: {0}")]
    Malformed(&'static str),
    /// The shard does not hash to the header's (or the catalog's) hash.
    #[error("fragment hash mismatch")]
    HashMismatch,
}

/// The parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragmentHeader {
    /// Shard index (= supplier position).
    pub shard_index: u16,
    /// The block's ecc layout.
    pub layout: Layout,
    /// Shard length in bytes.
    pub shard_len: u32,
    /// Keyed block id.
    pub block_id: [u8; 32],
    /// BLAKE3 of the shard.
    pub shard_hash: [u8; 32],
}

/// Builds a fragment from a shard: header (with the shard's BLAKE3) then shard.
pub fn build(shard_index: u16, layout: Layout, block_id: [u8; 32], shard: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let hash = *blake3::hash(shard).as_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + shard.len());
    out.extend_from_slice(MAGIC);
    out.push(FRAGMENT_FORMAT);
    out.push(0);
    out.extend_from_slice(&shard_index.to_le_bytes());
    out.extend_from_slice(&layout.k.to_le_bytes());
    out.extend_from_slice(&layout.n.to_le_bytes());
    out.extend_from_slice(&(shard.len() as u32).to_le_bytes());
    out.extend_from_slice(&block_id);
    out.extend_from_slice(&hash);
    out.extend_from_slice(shard);
    (out, hash)
}

/// Parses a fragment and checks its shard against the header's hash. Returns the header and the shard.
///
/// # Errors
/// [`FragmentError`] if anything is inconsistent or the hash does not match.
pub fn parse(bytes: &[u8]) -> Result<(FragmentHeader, &[u8]), FragmentError> {
    if bytes.len() < HEADER_LEN {
        return Err(FragmentError::Malformed("shorter than the header"));
    }
    if &bytes[0..4] != MAGIC {
        return Err(FragmentError::Malformed("bad magic"));
    }
    if bytes[4] != FRAGMENT_FORMAT {
        return Err(FragmentError::Malformed("unsupported format version"));
    }
    // Reserved: always written as zero. Refused otherwise, so that no header bit can change unnoticed.
    if bytes[5] != 0 {
        return Err(FragmentError::Malformed("reserved byte set"));
    }
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let shard_index = u16_at(6);
    let layout = Layout::new(u16_at(8), u16_at(10)).map_err(|_| FragmentError::Malformed("bad layout"))?;
    if shard_index >= layout.n {
        return Err(FragmentError::Malformed("shard index outside layout"));
    }
    let shard_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
    if shard_len as usize > MAX_SHARD_LEN || bytes.len() != HEADER_LEN + shard_len as usize {
        return Err(FragmentError::Malformed("length does not match header"));
    }
    let mut block_id = [0u8; 32];
    block_id.copy_from_slice(&bytes[16..48]);
    let mut shard_hash = [0u8; 32];
    shard_hash.copy_from_slice(&bytes[48..80]);
    let shard = &bytes[HEADER_LEN..];
    if blake3::hash(shard).as_bytes() != &shard_hash {
        return Err(FragmentError::HashMismatch);
    }
    Ok((FragmentHeader { shard_index, layout, shard_len, block_id, shard_hash }, shard))
}
