//! Chunks: the unit of deduplication (catalog format 2; see docs/architecture.md, "Incremental backups").
//!
//! A file is cut into content-defined chunks with FastCDC (Xia et al., "FastCDC: a Fast and Efficient
//! Content-Defined Chunking Approach for Data Deduplication", USENIX ATC 2016, in its 2020 form: the `fastcdc`
//! crate's `v2020`), between [`MIN_CHUNK`] and [`MAX_CHUNK`] bytes, [`AVG_CHUNK`] on average: an edit inside a
//! large file changes only the chunks around it.
//!
//! Each chunk, keyed by secrets derived from the master key ([`ChunkKeys`]):
//! - `id = BLAKE3-keyed(id_key, plaintext)`: equal content has one id within one user's data; without the key a
//!   supplier cannot test whether we hold a known file;
//! - `key = BLAKE3-keyed(seal_key, plaintext)`: the chunk's own key, a function of its content under a secret
//!   (Tahoe-LAFS's convergent encryption with a per-user convergence secret), so equal chunks seal to equal bytes
//!   and are stored once;
//! - sealed: `flags (1 byte: 1 = zstd) || AES-256-GCM-SIV(key, nonce 0, aad = id || flags, zstd(plaintext) or
//!   plaintext)`, compressed (zstd level [`crate::proto::pipeline::ZSTD_LEVEL`]) only when that is smaller.
//!   AES-GCM-SIV (RFC 8452, RustCrypto's `aes-gcm-siv`) is nonce-misuse resistant: the fixed nonce is safe even if
//!   one plaintext were ever sealed two ways under its key (another zstd build compressing it differently), which
//!   would reveal only that the two are equal; with AES-GCM that would have given the authentication key away.
//!
//! Opening needs the chunk's `(id, key)` ([`ChunkRef`]) and nothing else: a tree holds its files' chunk refs and its
//! subtrees' refs, so the ref of a root tree is a capability for exactly that tree (a share of one version or one
//! path), and sealed chunks can be moved between blocks (prune's repacking) without any key.

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Key, Nonce};
use serde::{Deserialize, Serialize};

use crate::proto::pipeline::ZSTD_LEVEL;
use bitdust_core::keys::MasterSecret;

/// Smallest chunk FastCDC cuts (but a file's last chunk), bytes.
pub const MIN_CHUNK: u32 = 512 * 1024;
/// Average chunk, bytes.
pub const AVG_CHUNK: u32 = 1024 * 1024;
/// Largest chunk, bytes: a sealed chunk (plus its flag byte and tag) always fits in one block.
pub const MAX_CHUNK: u32 = 4 * 1024 * 1024 - 64;
/// Bytes a sealed chunk adds to its (compressed) plaintext: the flag byte and the tag.
pub const SEAL_OVERHEAD: usize = 1 + 16;

/// Errors opening a chunk.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    /// The tag does not verify: the wrong key, or the bytes were changed.
    #[error("chunk {0}: authentication failed (tampered or wrong key)")]
    Authentication(String),
    /// Unknown flags, too short, or decompression failed.
    #[error("chunk {0}: malformed: {1}")]
    Malformed(String, String),
}

/// A chunk's id: keyed BLAKE3 of its plaintext.
pub type ChunkId = [u8; 32];

/// The fixed nonce (see the module's notes: AES-GCM-SIV under a key that seals one content).
const NONCE: [u8; 12] = [0; 12];

/// What opens one chunk: its id and key, and its plaintext length (to size buffers and report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChunkRef {
    /// The id.
    pub id: ChunkId,
    /// The AES-256-GCM-SIV key.
    pub key: [u8; 32],
    /// Plaintext bytes.
    pub len: u32,
}

/// A chunk sealed, ready to pack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    /// How to open it.
    pub chunk: ChunkRef,
    /// Its sealed bytes.
    pub sealed: Vec<u8>,
}

/// The two chunk secrets of one user, derived from the master secret.
#[derive(Clone)]
pub struct ChunkKeys {
    id_key: [u8; 32],
    seal_key: [u8; 32],
}

impl ChunkKeys {
    /// Derives them from `master`.
    pub fn derive(master: &MasterSecret) -> Self {
        Self {
            id_key: master.derive("bitdust 2026-12 chunk id key v1", b""),
            seal_key: master.derive("bitdust 2026-12 chunk seal key v1", b""),
        }
    }

    /// The id `plain` has.
    pub fn id(&self, plain: &[u8]) -> ChunkId {
        *blake3::keyed_hash(&self.id_key, plain).as_bytes()
    }

    /// The ref of `plain` (its id, key and length) without sealing it: for a chunk stored already.
    pub fn reference(&self, plain: &[u8]) -> ChunkRef {
        ChunkRef {
            id: self.id(plain),
            key: *blake3::keyed_hash(&self.seal_key, plain).as_bytes(),
            len: plain.len() as u32,
        }
    }

    /// Seals `plain` (compressing it with `compressor` when that makes it smaller).
    pub fn seal(&self, plain: &[u8], compressor: &mut zstd::bulk::Compressor<'_>) -> SealedChunk {
        seal_with(self.reference(plain), plain, compressor)
    }
}

/// Seals `plain` whose ref `r` ([`ChunkKeys::reference`]) is computed already (a backup looks a chunk up by its
/// ref before it seals it: its two keyed hashes are not computed twice).
pub fn seal_with(r: ChunkRef, plain: &[u8], compressor: &mut zstd::bulk::Compressor<'_>) -> SealedChunk {
    let compressed = crate::proto::pipeline::compress_if_worth(compressor, plain);
    let (flags, body) = match &compressed {
        Some(c) => (1u8, c.as_slice()),
        None => (0u8, plain),
    };
    let cipher = Aes256GcmSiv::new(&Key::<Aes256GcmSiv>::from(r.key));
    let aad = aad(&r.id, flags);
    // fails only past the 64 GiB plaintext limit of the mode, which a chunk (at most MAX_CHUNK) never reaches
    let body = cipher.encrypt(&Nonce::from(NONCE), Payload { msg: body, aad: &aad }).unwrap_or_default();
    let mut sealed = Vec::with_capacity(body.len() + 1);
    sealed.push(flags);
    sealed.extend_from_slice(&body);
    SealedChunk { chunk: ChunkRef { id: r.id, key: r.key, len: plain.len() as u32 }, sealed }
}

/// Opens `sealed` with `chunk`'s key: checks the tag (with the id as associated data), decompresses, checks the
/// length.
///
/// # Errors
/// [`ChunkError::Authentication`] for the wrong key or changed bytes, [`ChunkError::Malformed`] otherwise.
pub fn open(chunk: &ChunkRef, sealed: &[u8]) -> Result<Vec<u8>, ChunkError> {
    let name = || hex::encode(&chunk.id[..8]);
    // the length comes from a tree, perhaps another user's: bounded before anything is allocated for it
    if chunk.len > MAX_CHUNK {
        return Err(ChunkError::Malformed(name(), format!("a length of {} is over {MAX_CHUNK}", chunk.len)));
    }
    if sealed.len() < SEAL_OVERHEAD || sealed.len() > MAX_CHUNK as usize + 1024 {
        return Err(ChunkError::Malformed(name(), format!("{} bytes", sealed.len())));
    }
    let flags = sealed[0];
    if flags > 1 {
        return Err(ChunkError::Malformed(name(), format!("unknown flags {flags}")));
    }
    let cipher = Aes256GcmSiv::new(&Key::<Aes256GcmSiv>::from(chunk.key));
    let aad = aad(&chunk.id, flags);
    let body = cipher
        .decrypt(&Nonce::from(NONCE), Payload { msg: &sealed[1..], aad: &aad })
        .map_err(|_| ChunkError::Authentication(name()))?;
    let plain = if flags == 1 {
        zstd::bulk::decompress(&body, chunk.len as usize)
            .map_err(|e| ChunkError::Malformed(name(), format!("decompression: {e}")))?
    } else {
        body
    };
    if plain.len() != chunk.len as usize {
        return Err(ChunkError::Malformed(name(), format!("{} bytes, {} expected", plain.len(), chunk.len)));
    }
    Ok(plain)
}

/// The associated data: the id and the flags byte (so neither can be changed unnoticed).
fn aad(id: &ChunkId, flags: u8) -> [u8; 33] {
    let mut a = [0u8; 33];
    a[..32].copy_from_slice(id);
    a[32] = flags;
    a
}

/// A zstd compressor at the pipeline's level.
///
/// # Errors
/// If zstd cannot allocate its context.
pub fn compressor() -> std::io::Result<zstd::bulk::Compressor<'static>> {
    zstd::bulk::Compressor::new(ZSTD_LEVEL)
}

/// The chunks of `data` (a whole file or its last part): `(offset, length)` pairs covering it in order.
pub fn cut(data: &[u8]) -> Vec<(usize, usize)> {
    if data.is_empty() {
        return Vec::new();
    }
    fastcdc::v2020::FastCDC::new(data, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK).map(|c| (c.offset, c.length)).collect()
}

/// Cuts what `reader` gives into chunks as it reads (a bounded buffer of [`MAX_CHUNK`] bytes), calling `each` with
/// every chunk's bytes in order.
///
/// # Errors
/// A read error, or what `each` returns.
pub fn cut_stream<R: std::io::Read, E: From<std::io::Error>>(
    reader: R,
    mut each: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<(), E> {
    for chunk in fastcdc::v2020::StreamCDC::new(reader, MIN_CHUNK, AVG_CHUNK, MAX_CHUNK) {
        let chunk = chunk.map_err(|e| match e {
            fastcdc::v2020::Error::IoError(e) => e,
            other => std::io::Error::other(other.to_string()),
        })?;
        each(&chunk.data)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitdust_core::keys::NodeKeys;
    use rand::{Rng, SeedableRng};

    fn keys(seed: u8) -> ChunkKeys {
        ChunkKeys::derive(NodeKeys::from_seed([seed; 32]).unwrap().master())
    }

    #[test]
    fn sealed_chunks_open_with_their_ref_only() {
        let k = keys(1);
        let mut z = compressor().unwrap();
        for plain in [
            b"hello hello hello hello hello hello".to_vec(),
            (0..1000u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<u8>>(),
            vec![],
        ] {
            let s = k.seal(&plain, &mut z);
            assert_eq!(open(&s.chunk, &s.sealed).unwrap(), plain);
            assert_eq!(s.chunk.len as usize, plain.len());
            // equal content seals equally (dedup); another user's keys give another id and key
            assert_eq!(k.seal(&plain, &mut z), s);
            let other = keys(2).seal(&plain, &mut z);
            assert_ne!(other.chunk.id, s.chunk.id);
            assert_ne!(other.chunk.key, s.chunk.key);
            // a changed byte, another key, another id (the associated data): refused
            for i in 0..s.sealed.len() {
                let mut bad = s.sealed.clone();
                bad[i] ^= 1;
                assert!(open(&s.chunk, &bad).is_err(), "byte {i}");
            }
            assert!(matches!(open(&other.chunk, &s.sealed), Err(ChunkError::Authentication(_))));
            let wrong_id = ChunkRef { id: other.chunk.id, ..s.chunk };
            assert!(matches!(open(&wrong_id, &s.sealed), Err(ChunkError::Authentication(_))));
            assert!(open(&s.chunk, &s.sealed[..3]).is_err());
            let huge = ChunkRef { len: u32::MAX, ..s.chunk };
            assert!(matches!(open(&huge, &s.sealed), Err(ChunkError::Malformed(..))), "no 4 GiB allocation");
        }
        let text = vec![b'a'; 100_000];
        assert!(k.seal(&text, &mut z).sealed.len() < 1000, "text is compressed");
    }

    #[test]
    fn an_edit_in_the_middle_changes_only_the_chunks_around_it() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut data = vec![0u8; 24 << 20];
        rng.fill(&mut data[..]);
        let before = cut(&data);
        assert!(before.iter().all(|(_, l)| *l as u32 <= MAX_CHUNK));
        assert!(before[..before.len() - 1].iter().all(|(_, l)| *l as u32 >= MIN_CHUNK));
        assert_eq!(before.iter().map(|c| c.1).sum::<usize>(), data.len());
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        let after = cut(&data);
        let k = keys(3);
        let ids = |cuts: &[(usize, usize)], d: &[u8]| -> Vec<ChunkId> {
            cuts.iter().map(|(o, l)| k.id(&d[*o..o + l])).collect()
        };
        let mut orig = data.clone();
        orig[mid] ^= 0xff;
        let old: std::collections::HashSet<ChunkId> = ids(&before, &orig).into_iter().collect();
        let new_bytes: usize =
            after.iter().filter(|(o, l)| !old.contains(&k.id(&data[*o..o + l]))).map(|(_, l)| *l).sum();
        assert!(new_bytes > 0 && new_bytes <= 2 * MAX_CHUNK as usize, "{new_bytes} new bytes");
        // the stream cutter cuts the same way
        let mut streamed = Vec::new();
        cut_stream::<_, std::io::Error>(&data[..], |c| {
            streamed.push(c.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(streamed, after.iter().map(|c| c.1).collect::<Vec<_>>());
    }
}
