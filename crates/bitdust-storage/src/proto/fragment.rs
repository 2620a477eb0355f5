//! The fragment format: a fixed 80-byte header followed by one shard.
//!
//! ```text
//! offset size field
//!      0    4 magic "BDFR"
//!      4    1 format version (2; 1 is still read)
//!      5    1 reserved (0)
//!      6    2 shard index, little endian (0..k data, k..n parity)
//!      8    2 k
//!     10    2 n
//!     12    4 shard length in bytes
//!     16   32 block tag: BLAKE3 keyed by the block id, of the position (format 2); the block id itself in
//!             format 1. Per position, so that colluding suppliers cannot tell which of their fragments
//!             belong to one block; the customer (and a keyless rebuild, which has the block id from the
//!             catalog) recomputes it.
//!     48   32 BLAKE3 of the shard bytes
//!     80    . shard
//! ```

use crate::proto::erasure::Layout;

/// Header length in bytes.
pub const HEADER_LEN: usize = 80;
const MAGIC: &[u8; 4] = b"BDFR";
/// Current fragment format.
pub const FRAGMENT_FORMAT: u8 = 2;
const BLOCK_TAG_CONTEXT: &[u8] = b"bitdust fragment block tag v1";

/// The block tag a fragment of format 2 carries for `position` of the block `block_id`: BLAKE3 keyed with the
/// block id over a context and the position (a PRF: without the block id, two positions' tags are unrelated).
pub fn block_tag(block_id: &[u8; 32], position: u16) -> [u8; 32] {
    let mut h = blake3::Hasher::new_keyed(block_id);
    h.update(BLOCK_TAG_CONTEXT);
    h.update(&position.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The tag a fragment of `format` must carry for `position` of block `block_id`.
pub fn expected_tag(format: u8, block_id: &[u8; 32], position: u16) -> [u8; 32] {
    if format == 1 {
        *block_id
    } else {
        block_tag(block_id, position)
    }
}
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
    /// Format version (1 or 2).
    pub format: u8,
    /// The block tag (format 2: [`block_tag`]; format 1: the block id).
    pub block_tag: [u8; 32],
    /// BLAKE3 of the shard.
    pub shard_hash: [u8; 32],
}

/// Builds a fragment from a shard: header (with the shard's BLAKE3) then shard.
pub fn build(shard_index: u16, layout: Layout, block_id: [u8; 32], shard: &[u8]) -> (Vec<u8>, [u8; 32]) {
    build_tagged(shard_index, layout, block_tag(&block_id, shard_index), shard)
}

/// Builds a fragment with the given block `tag` in its header (tests that forge fragments; [`build`] otherwise).
pub fn build_tagged(shard_index: u16, layout: Layout, tag: [u8; 32], shard: &[u8]) -> (Vec<u8>, [u8; 32]) {
    let hash = *blake3::hash(shard).as_bytes();
    let mut out = Vec::with_capacity(HEADER_LEN + shard.len());
    out.extend_from_slice(MAGIC);
    out.push(FRAGMENT_FORMAT);
    out.push(0);
    out.extend_from_slice(&shard_index.to_le_bytes());
    out.extend_from_slice(&layout.k.to_le_bytes());
    out.extend_from_slice(&layout.n.to_le_bytes());
    out.extend_from_slice(&(shard.len() as u32).to_le_bytes());
    out.extend_from_slice(&tag);
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
    let format = bytes[4];
    if format != FRAGMENT_FORMAT && format != 1 {
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
    let mut block_tag = [0u8; 32];
    block_tag.copy_from_slice(&bytes[16..48]);
    let mut shard_hash = [0u8; 32];
    shard_hash.copy_from_slice(&bytes[48..80]);
    let shard = &bytes[HEADER_LEN..];
    if blake3::hash(shard).as_bytes() != &shard_hash {
        return Err(FragmentError::HashMismatch);
    }
    Ok((FragmentHeader { shard_index, layout, shard_len, format, block_tag, shard_hash }, shard))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14, item 10: the fragments of one block carry different header tags at each position, so colluding
    /// suppliers cannot group their fragments by block; the tag still binds the fragment to its block and position.
    #[test]
    fn fragments_of_one_block_carry_unlinkable_per_position_tags() {
        let layout = Layout::new(2, 4).unwrap();
        let block_id = [9u8; 32];
        let headers: Vec<FragmentHeader> =
            (0..4u16).map(|p| parse(&build(p, layout, block_id, &[p as u8; 64]).0).unwrap().0).collect();
        for (p, h) in headers.iter().enumerate() {
            assert_eq!(h.format, FRAGMENT_FORMAT);
            assert_eq!(h.block_tag, expected_tag(h.format, &block_id, p as u16));
            assert_ne!(h.block_tag, block_id, "the block id itself is not in the header");
            for other in &headers[p + 1..] {
                assert_ne!(h.block_tag, other.block_tag);
            }
        }
        assert_ne!(block_tag(&[8u8; 32], 0), headers[0].block_tag, "another block, another tag");
        // fragments written by the first format (block id in the header) are still read
        let (old, _) = build_tagged(1, layout, block_id, &[1u8; 64]);
        let mut old = old;
        old[4] = 1;
        let (h, _) = parse(&old).unwrap();
        assert_eq!(h.block_tag, expected_tag(1, &block_id, 1));
        old[4] = 3;
        assert!(parse(&old).is_err());
    }
}
