//! The block pipeline: plaintext block → zstd → AES-256-GCM → RS(k, n) → n fragments, and back.
//!
//! One backup *version* has its own random 16-byte id; its data key and fragment-id key derive from the
//! customer's master secret and that id ([`VersionKeys`]). Block `i` of a version:
//! - `block_id = BLAKE3-keyed(id_key, "block" || i)`: stable, reveals nothing without the key;
//! - compressed with zstd (level [`ZSTD_LEVEL`]) unless that does not make it smaller;
//! - sealed with AES-256-GCM (NIST SP 800-38D) under the version's data key, nonce = `i` as 12 little-endian
//!   bytes (unique per key since a version's blocks have distinct indexes), associated data = `block_id`;
//! - the ciphertext, zero-padded to `k * shard_len`, is cut into `k` data shards and `n - k` parity shards
//!   are computed ([`crate::proto::erasure`]); shard `j` becomes fragment `j` for the supplier at position `j`.
//!
//! Decoding takes any `k` fragments whose BLAKE3 matches the hash recorded in the catalog ([`BlockMeta`]),
//! rebuilds the data shards, checks the AEAD tag and decompresses. Hash and tag together detect any change.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use serde::{Deserialize, Serialize};

use crate::proto::erasure::{Coder, ErasureError, Layout};
use crate::proto::fragment::{self, FragmentError};
use bitdust_core::keys::MasterSecret;

/// Default block size: this many bytes of archive stream per block, before compression. 4 MiB keeps
/// per-request overhead small while bounding memory (a block and its fragments are a few MiB).
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;
/// zstd level: 1 is the fastest standard level; it still shrinks text several times, and incompressible
/// blocks are stored raw.
pub const ZSTD_LEVEL: i32 = 1;

/// The compression probe ([`compress_if_worth`]): samples of this many bytes...
const PROBE_SAMPLE: usize = 4096;
/// ...this many, spread over the input...
const PROBE_SAMPLES: usize = 4;
/// ...must compress below this ratio for the whole input to be compressed.
const PROBE_RATIO: f64 = 0.97;

/// `plain` compressed with `compressor` if that pays, else `None`. An input of at least 64 KiB is first probed:
/// four 4 KiB samples spread over it are compressed, and unless they shrink below 97% the input is stored as it
/// is (already compressed or encrypted data: photos, videos, archives), saving the work of compressing it whole.
/// Borg's `auto` compression decides the same way with a fast first pass
/// (<https://borgbackup.readthedocs.io/en/stable/usage/help.html#borg-help-compression>). A compressed result is
/// kept only if smaller.
pub fn compress_if_worth(compressor: &mut zstd::bulk::Compressor<'_>, plain: &[u8]) -> Option<Vec<u8>> {
    if plain.len() >= PROBE_SAMPLE * PROBE_SAMPLES * 4 {
        let step = plain.len() / PROBE_SAMPLES;
        let (mut raw, mut packed) = (0usize, 0usize);
        for i in 0..PROBE_SAMPLES {
            let sample = &plain[i * step..i * step + PROBE_SAMPLE];
            raw += sample.len();
            packed += compressor.compress(sample).map_or(sample.len(), |c| c.len());
        }
        if packed as f64 >= raw as f64 * PROBE_RATIO {
            return None;
        }
    }
    compressor.compress(plain).ok().filter(|c| c.len() < plain.len())
}
/// AES-GCM tag length.
const TAG_LEN: usize = 16;

/// Errors from encoding or decoding a block.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Erasure coding failed (too few fragments, inconsistent shards).
    #[error(transparent)]
    Erasure(#[from] ErasureError),
    /// A fragment is malformed or does not match the catalog.
    #[error("fragment {shard_index}: {source}")]
    Fragment {
        /// Which shard.
        shard_index: usize,
        /// Why.
        source: FragmentError,
    },
    /// The AEAD tag does not verify: wrong key or tampered data.
    #[error("block {0}: authentication failed (tampered or wrong key)")]
    Authentication(u64),
    /// Decompression failed or produced the wrong length.
    #[error("block {0}: decompression failed: {1}")]
    Decompress(u64, String),
    /// The block is larger than [`BLOCK_SIZE`].
    #[error("block of {0} bytes exceeds the {BLOCK_SIZE}-byte limit")]
    TooLarge(usize),
}

/// The keys of one backup version.
#[derive(Clone)]
pub struct VersionKeys {
    /// The version's random id.
    pub version_id: [u8; 16],
    data_key: [u8; 32],
    id_key: [u8; 32],
}

impl VersionKeys {
    /// Derives the keys of version `version_id` from the master secret.
    pub fn derive(master: &MasterSecret, version_id: [u8; 16]) -> Self {
        Self {
            version_id,
            data_key: master.derive("bitdust 2026-11 version data key v1", &version_id),
            id_key: master.derive("bitdust 2026-11 version fragment id key v1", &version_id),
        }
    }

    /// The version's two secrets (data key, fragment id key), to hand to a peer it is shared with: derived one way
    /// from the master secret and this version's id, they open this version and nothing else.
    pub fn secrets(&self) -> ([u8; 32], [u8; 32]) {
        (self.data_key, self.id_key)
    }

    /// A version's keys from [`VersionKeys::secrets`].
    pub fn from_secrets(version_id: [u8; 16], (data_key, id_key): ([u8; 32], [u8; 32])) -> Self {
        Self { version_id, data_key, id_key }
    }

    /// The id of block `index`.
    pub fn block_id(&self, index: u64) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.id_key);
        h.update(b"block");
        h.update(&index.to_le_bytes());
        *h.finalize().as_bytes()
    }

    /// The id under which the supplier at `position` stores this block's fragment. Ids differ between
    /// positions, so suppliers cannot tell which of their fragments belong together.
    pub fn fragment_id(&self, block_id: &[u8; 32], position: u16) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.id_key);
        h.update(b"fragment");
        h.update(block_id);
        h.update(&position.to_le_bytes());
        *h.finalize().as_bytes()
    }
}

/// What the catalog records of one block: enough to fetch, check and decode it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    /// Index in the version's stream.
    pub index: u64,
    /// Keyed block id.
    pub block_id: [u8; 32],
    /// Plaintext length (archive bytes in this block).
    pub plain_len: u32,
    /// Ciphertext length (compressed or raw, plus tag).
    pub cipher_len: u32,
    /// Length of each shard.
    pub shard_len: u32,
    /// Whether the plaintext was zstd-compressed.
    pub compressed: bool,
    /// BLAKE3 of each of the n shards, by position.
    pub shard_hashes: Vec<[u8; 32]>,
}

/// An encoded block: its metadata and the `n` fragments (fragment `j` for position `j`).
pub struct EncodedBlock {
    /// Metadata for the catalog.
    pub meta: BlockMeta,
    /// The fragments, header included.
    pub fragments: Vec<Vec<u8>>,
}

/// Encodes blocks of one version; reuses its compressor and RS buffers.
pub struct BlockEncoder {
    layout: Layout,
    keys: VersionKeys,
    cipher: LessSafeKey,
    coder: Coder,
    compressor: zstd::bulk::Compressor<'static>,
}

impl BlockEncoder {
    /// A new encoder for `layout` and the version's keys.
    ///
    /// # Errors
    /// [`PipelineError::Decompress`] if zstd cannot be initialised (out of memory).
    pub fn new(layout: Layout, keys: VersionKeys) -> Result<Self, PipelineError> {
        let cipher = aes_256_gcm(&keys.data_key);
        let compressor =
            zstd::bulk::Compressor::new(ZSTD_LEVEL).map_err(|e| PipelineError::Decompress(0, e.to_string()))?;
        Ok(Self { layout, keys, cipher, coder: Coder::new(), compressor })
    }

    /// Encodes block `index` of `plain` (at most [`BLOCK_SIZE`] bytes).
    ///
    /// # Errors
    /// [`PipelineError::TooLarge`] for an oversized block.
    pub fn encode(&mut self, index: u64, plain: &[u8]) -> Result<EncodedBlock, PipelineError> {
        if plain.len() > BLOCK_SIZE {
            return Err(PipelineError::TooLarge(plain.len()));
        }
        let block_id = self.keys.block_id(index);
        let compressed = compress_if_worth(&mut self.compressor, plain);
        let (body, is_compressed) = match &compressed {
            Some(c) => (c.as_slice(), true),
            None => (plain, false),
        };
        let layout = self.layout;
        let k = layout.k as usize;
        let cipher_len = body.len() + TAG_LEN;
        let shard_len = layout.shard_len(cipher_len);
        // sealed in place in a buffer of its padded size: one copy of the body, no reallocation
        let mut padded = Vec::with_capacity(k * shard_len);
        padded.extend_from_slice(body);
        let tag = self
            .cipher
            .seal_in_place_separate_tag(nonce(index), Aad::from(&block_id), &mut padded)
            .map_err(|_| PipelineError::Authentication(index))?;
        padded.extend_from_slice(tag.as_ref());
        padded.resize(k * shard_len, 0);
        let (fragments, shard_hashes) = fragments_of(&mut self.coder, layout, block_id, &padded, shard_len)?;
        Ok(EncodedBlock {
            meta: BlockMeta {
                index,
                block_id,
                plain_len: plain.len() as u32,
                cipher_len: cipher_len as u32,
                shard_len: shard_len as u32,
                compressed: is_compressed,
                shard_hashes,
            },
            fragments,
        })
    }
}

/// Decodes blocks of one version.
pub struct BlockDecoder {
    layout: Layout,
    cipher: LessSafeKey,
    coder: Coder,
    decompressor: zstd::bulk::Decompressor<'static>,
}

impl BlockDecoder {
    /// A new decoder for `layout` and the version's keys.
    ///
    /// # Errors
    /// [`PipelineError::Decompress`] if zstd cannot be initialised.
    pub fn new(layout: Layout, keys: &VersionKeys) -> Result<Self, PipelineError> {
        Ok(Self {
            layout,
            cipher: aes_256_gcm(&keys.data_key),
            coder: Coder::new(),
            decompressor: zstd::bulk::Decompressor::new().map_err(|e| PipelineError::Decompress(0, e.to_string()))?,
        })
    }

    /// Checks one fetched fragment for position `position` against the catalog: header consistent with the
    /// block and its shard's BLAKE3 equal to the recorded hash. Returns the shard.
    ///
    /// # Errors
    /// [`PipelineError::Fragment`] if it does not match.
    pub fn check_fragment<'a>(
        &self,
        meta: &BlockMeta,
        position: usize,
        fragment_bytes: &'a [u8],
    ) -> Result<&'a [u8], PipelineError> {
        let err = |source| PipelineError::Fragment { shard_index: position, source };
        let position = u16::try_from(position).map_err(|_| err(FragmentError::Malformed("position out of range")))?;
        crate::proto::rebuild::check_source(self.layout, meta, position, fragment_bytes).map_err(err)
    }

    /// Decodes a block from at least `k` fragments given as `(position, fragment bytes)`. Every fragment
    /// is checked with [`BlockDecoder::check_fragment`]; one that fails is an error (callers drop it and
    /// fetch another).
    ///
    /// # Errors
    /// [`PipelineError`] if too few valid fragments remain, the tag fails or decompression fails.
    pub fn decode(&mut self, meta: &BlockMeta, fragments: &[(usize, &[u8])]) -> Result<Vec<u8>, PipelineError> {
        let mut shards = Vec::with_capacity(fragments.len());
        for (position, bytes) in fragments {
            shards.push((*position, self.check_fragment(meta, *position, bytes)?));
        }
        let data = self.coder.decode(self.layout, &shards)?;
        let mut ciphertext = Vec::with_capacity(data.len() * meta.shard_len as usize);
        for d in &data {
            ciphertext.extend_from_slice(d);
        }
        if (meta.cipher_len as usize) > ciphertext.len() || (meta.cipher_len as usize) < TAG_LEN {
            return Err(PipelineError::Authentication(meta.index));
        }
        ciphertext.truncate(meta.cipher_len as usize);
        let body_len = self
            .cipher
            .open_in_place(nonce(meta.index), Aad::from(&meta.block_id), &mut ciphertext)
            .map_err(|_| PipelineError::Authentication(meta.index))?
            .len();
        let mut body = ciphertext;
        body.truncate(body_len);
        let plain = if meta.compressed {
            self.decompressor
                .decompress(&body, meta.plain_len as usize)
                .map_err(|e| PipelineError::Decompress(meta.index, e.to_string()))?
        } else {
            body
        };
        if plain.len() != meta.plain_len as usize {
            return Err(PipelineError::Decompress(meta.index, "length differs from the catalog".into()));
        }
        Ok(plain)
    }
}

/// Erasure coding of packs (catalog format 2): a pack's bytes are sealed chunks already
/// ([`crate::proto::chunk`]), so a pack is only padded, cut into `k` data shards, given `n - k` parity shards and
/// framed as fragments, with no compression and no second encryption. Its [`BlockMeta`] has `plain_len =
/// cipher_len =` the pack's length and `compressed = false`.
pub struct PackCoder {
    layout: Layout,
    coder: Coder,
}

impl PackCoder {
    /// A coder for `layout`.
    pub fn new(layout: Layout) -> Self {
        Self { layout, coder: Coder::new() }
    }

    /// Encodes pack `pack` as block `block_id` (`index`: the pack's number, for messages).
    ///
    /// # Errors
    /// [`PipelineError::TooLarge`] over [`BLOCK_SIZE`]; erasure coding errors.
    pub fn encode(&mut self, index: u64, block_id: [u8; 32], pack: &[u8]) -> Result<EncodedBlock, PipelineError> {
        if pack.len() > BLOCK_SIZE {
            return Err(PipelineError::TooLarge(pack.len()));
        }
        let layout = self.layout;
        let k = layout.k as usize;
        let shard_len = layout.shard_len(pack.len().max(1));
        let mut padded = Vec::with_capacity(k * shard_len);
        padded.extend_from_slice(pack);
        padded.resize(k * shard_len, 0);
        let (fragments, shard_hashes) = fragments_of(&mut self.coder, layout, block_id, &padded, shard_len)?;
        let len = pack.len() as u32;
        Ok(EncodedBlock {
            meta: BlockMeta {
                index,
                block_id,
                plain_len: len,
                cipher_len: len,
                shard_len: shard_len as u32,
                compressed: false,
                shard_hashes,
            },
            fragments,
        })
    }

    /// Decodes a pack from at least `k` fragments `(position, bytes)`, each checked against `meta` first.
    ///
    /// # Errors
    /// [`PipelineError`] if a fragment does not match or too few remain.
    pub fn decode(&mut self, meta: &BlockMeta, fragments: &[(usize, &[u8])]) -> Result<Vec<u8>, PipelineError> {
        let mut shards = Vec::with_capacity(fragments.len());
        for (position, bytes) in fragments {
            let err = |source| PipelineError::Fragment { shard_index: *position, source };
            let p = u16::try_from(*position).map_err(|_| err(FragmentError::Malformed("position out of range")))?;
            shards.push((*position, crate::proto::rebuild::check_source(self.layout, meta, p, bytes).map_err(err)?));
        }
        let data = self.coder.decode(self.layout, &shards)?;
        let mut pack = Vec::with_capacity(data.len() * meta.shard_len as usize);
        for d in &data {
            pack.extend_from_slice(d);
        }
        if meta.cipher_len as usize > pack.len() {
            return Err(PipelineError::Decompress(meta.index, "pack shorter than its length".into()));
        }
        pack.truncate(meta.cipher_len as usize);
        Ok(pack)
    }
}

/// A block's fragments and each shard's BLAKE3, by position.
type Framed = (Vec<Vec<u8>>, Vec<[u8; 32]>);

/// The `n` fragments of a block whose `k` data shards are `padded` cut every `shard_len` bytes, and each shard's
/// BLAKE3: data shards framed as they are, parity shards framed straight from the encoder's buffers.
fn fragments_of(
    coder: &mut Coder,
    layout: Layout,
    block_id: [u8; 32],
    padded: &[u8],
    shard_len: usize,
) -> Result<Framed, PipelineError> {
    let data: Vec<&[u8]> = padded.chunks(shard_len).collect();
    let mut fragments = Vec::with_capacity(layout.n as usize);
    let mut shard_hashes = Vec::with_capacity(layout.n as usize);
    let mut add = |i: usize, shard: &[u8]| {
        let (frag, hash) = fragment::build(i as u16, layout, block_id, shard);
        fragments.push(frag);
        shard_hashes.push(hash);
    };
    for (i, shard) in data.iter().enumerate() {
        add(i, shard);
    }
    let k = layout.k as usize;
    coder.encode_each(layout, &data, |j, shard| add(k + j, shard))?;
    Ok((fragments, shard_hashes))
}

/// A block's AES-256-GCM nonce (NIST SP 800-38D, 96-bit): its index, little-endian, then four zero bytes. Unique
/// per key: each version has its own data key and each block of a version its own index.
fn nonce(index: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

/// AES-256-GCM with `key`, for blocks and the catalog (ring's implementation: constant-time, with the CPU's AES
/// and carry-less multiply instructions).
pub(crate) fn aes_256_gcm(key: &[u8; 32]) -> LessSafeKey {
    // ring refuses only a key of the wrong length, which a `[u8; 32]` cannot be.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 takes a 32-byte key"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitdust_core::keys::NodeKeys;
    use proptest::prelude::*;

    fn keys() -> VersionKeys {
        VersionKeys::derive(NodeKeys::from_seed([1u8; 32]).unwrap().master(), [2u8; 16])
    }

    fn data(seed: u64, len: usize, compressible: bool) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                if compressible {
                    b"hello bitdust "[i % 14]
                } else {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                }
            })
            .collect()
    }

    #[test]
    fn the_probe_skips_incompressible_data_and_keeps_compressing_the_rest() {
        let mut c = zstd::bulk::Compressor::new(ZSTD_LEVEL).unwrap();
        assert_eq!(compress_if_worth(&mut c, &data(7, 1 << 20, false)), None, "random: not compressed");
        let text = data(7, 1 << 20, true);
        assert!(compress_if_worth(&mut c, &text).is_some_and(|z| z.len() < text.len() / 10), "text: compressed");
        // under the probe's size the whole input decides, as before
        assert!(compress_if_worth(&mut c, &text[..1000]).is_some());
        assert_eq!(compress_if_worth(&mut c, &data(7, 1000, false)), None);
        // random data with compressible stretches the samples miss is stored as it is (the probe's trade-off);
        // mostly compressible data with a random stretch is compressed
        let mut mixed = text.clone();
        mixed[..100_000].copy_from_slice(&data(9, 100_000, false));
        assert!(compress_if_worth(&mut c, &mixed).is_some());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The pipeline round-trips from the first k fragments, and from the last k.
        #[test]
        fn pipeline_round_trips(
            n in prop::sample::select(vec![2u16, 4, 7, 13]),
            len in 0usize..70_000,
            compressible in any::<bool>(),
            seed in any::<u64>(),
            index in any::<u64>(),
        ) {
            let layout = Layout::for_suppliers(n).unwrap();
            let plain = data(seed, len, compressible);
            let mut enc = BlockEncoder::new(layout, keys()).unwrap();
            let block = enc.encode(index, &plain).unwrap();
            prop_assert_eq!(block.fragments.len(), n as usize);
            let mut dec = BlockDecoder::new(layout, &keys()).unwrap();
            let k = layout.k as usize;
            let first: Vec<(usize, &[u8])> = (0..k).map(|j| (j, block.fragments[j].as_slice())).collect();
            prop_assert_eq!(&dec.decode(&block.meta, &first).unwrap(), &plain);
            let last: Vec<(usize, &[u8])> = (n as usize - k..n as usize).map(|j| (j, block.fragments[j].as_slice())).collect();
            prop_assert_eq!(&dec.decode(&block.meta, &last).unwrap(), &plain);
        }

        /// Any bit flipped anywhere in a fragment is detected: that fragment is refused.
        #[test]
        fn any_bit_flip_in_a_fragment_is_detected(bit in any::<usize>(), which in 0usize..4, seed in any::<u64>()) {
            let layout = Layout::for_suppliers(4).unwrap();
            let plain = data(seed, 5000, false);
            let mut enc = BlockEncoder::new(layout, keys()).unwrap();
            let block = enc.encode(0, &plain).unwrap();
            let mut frag = block.fragments[which].clone();
            let bit = bit % (frag.len() * 8);
            frag[bit / 8] ^= 1 << (bit % 8);
            let dec = BlockDecoder::new(layout, &keys()).unwrap();
            prop_assert!(dec.check_fragment(&block.meta, which, &frag).is_err());
        }
    }

    #[test]
    fn wrong_key_fails_authentication() {
        let layout = Layout::for_suppliers(4).unwrap();
        let plain = data(5, 10_000, false);
        let block = BlockEncoder::new(layout, keys()).unwrap().encode(3, &plain).unwrap();
        let other = VersionKeys::derive(NodeKeys::from_seed([1u8; 32]).unwrap().master(), [9u8; 16]);
        let mut dec = BlockDecoder::new(layout, &other).unwrap();
        let frags: Vec<(usize, &[u8])> = (0..2).map(|j| (j, block.fragments[j].as_slice())).collect();
        assert!(matches!(dec.decode(&block.meta, &frags), Err(PipelineError::Authentication(3))));
    }

    #[test]
    fn fragment_ids_differ_by_position_and_version() {
        let k = keys();
        let b = k.block_id(0);
        assert_ne!(k.fragment_id(&b, 0), k.fragment_id(&b, 1));
        let other = VersionKeys::derive(NodeKeys::from_seed([1u8; 32]).unwrap().master(), [3u8; 16]);
        assert_ne!(k.block_id(0), other.block_id(0));
    }
}
