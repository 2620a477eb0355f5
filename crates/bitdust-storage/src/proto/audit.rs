//! Proof of storage: Bao slices (BLAKE3 verified streaming, <https://github.com/oconnor663/bao>).
//!
//! The customer recorded, for every fragment, the BLAKE3 hash of its shard. To audit, it asks the supplier
//! for the Bao slice of a random range of the shard: the range's bytes plus the BLAKE3 tree nodes on their
//! path to the root. The customer verifies the slice against the recorded hash without holding the shard;
//! a supplier that does not hold the exact bytes cannot answer (short of breaking BLAKE3).

use std::io::{Cursor, Read};

use crate::proto::wire::MAX_AUDIT_SLICE;

/// Errors from proving or verifying.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// The requested range is empty, too long, or outside the shard.
    #[error("bad audit range {start}+{len} for a shard of {shard_len} bytes")]
    BadRange {
        /// Start.
        start: u64,
        /// Length.
        len: u32,
        /// Shard length.
        shard_len: u64,
    },
    /// The slice does not verify against the recorded hash.
    #[error("audit proof does not verify: {0}")]
    Invalid(String),
}

/// Picks a challenge range for a shard of `shard_len` bytes from a random `seed`: a 1 KiB..16 KiB slice
/// (whole BLAKE3 chunks where possible) at a random offset.
pub fn challenge(seed: u64, shard_len: u32) -> (u64, u32) {
    let len = (1024u32 << (seed % 5)).min(shard_len.max(1));
    let span = shard_len.saturating_sub(len) as u64 + 1;
    ((seed >> 8) % span, len)
}

/// Builds the Bao slice of `shard[start..start + len]` (supplier side).
///
/// # Errors
/// [`AuditError::BadRange`] for an empty, oversized or out-of-range request.
pub fn prove(shard: &[u8], start: u64, len: u32) -> Result<Vec<u8>, AuditError> {
    let shard_len = shard.len() as u64;
    if len == 0 || len > MAX_AUDIT_SLICE || start.saturating_add(len as u64) > shard_len {
        return Err(AuditError::BadRange { start, len, shard_len });
    }
    let (outboard, _) = bao::encode::outboard(shard);
    let mut extractor =
        bao::encode::SliceExtractor::new_outboard(Cursor::new(shard), Cursor::new(&outboard), start, len as u64);
    let mut slice = Vec::new();
    extractor.read_to_end(&mut slice).map_err(|e| AuditError::Invalid(e.to_string()))?;
    Ok(slice)
}

/// Verifies a Bao slice against the shard's recorded BLAKE3 hash (customer side).
///
/// # Errors
/// [`AuditError::Invalid`] if it does not verify or holds too few bytes.
pub fn verify(shard_hash: &[u8; 32], start: u64, len: u32, slice: &[u8]) -> Result<(), AuditError> {
    if slice.len() > 2 * MAX_AUDIT_SLICE as usize + 4096 {
        return Err(AuditError::Invalid("slice too large".into()));
    }
    let hash = bao::Hash::from(*shard_hash);
    let mut decoder = bao::decode::SliceDecoder::new(slice, &hash, start, len as u64);
    let mut content = Vec::new();
    decoder.read_to_end(&mut content).map_err(|e| AuditError::Invalid(e.to_string()))?;
    if content.len() != len as usize {
        return Err(AuditError::Invalid(format!("{} bytes proven of {len} asked", content.len())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// A real shard always passes; a shard with any bit flipped in the audited range never does.
        #[test]
        fn real_bytes_pass_and_changed_bytes_fail(seed in any::<u64>(), shard_len in 2u32..300_000, flip in any::<u64>()) {
            let shard: Vec<u8> = (0..shard_len).map(|i| (i.wrapping_mul(2654435761) >> 7) as u8 ^ seed as u8).collect();
            let hash = *blake3::hash(&shard).as_bytes();
            let (start, len) = challenge(seed, shard_len);
            let proof = prove(&shard, start, len).unwrap();
            prop_assert!(verify(&hash, start, len, &proof).is_ok());
            let mut bad = shard.clone();
            let at = start as usize + (flip % len as u64) as usize;
            bad[at] ^= 1 << (flip % 8);
            let forged = prove(&bad, start, len).unwrap();
            prop_assert!(verify(&hash, start, len, &forged).is_err());
            let mut tampered = proof.clone();
            let i = (flip as usize) % tampered.len();
            tampered[i] ^= 1;
            prop_assert!(verify(&hash, start, len, &tampered).is_err());
        }
    }

    #[test]
    fn bad_ranges_are_refused() {
        let shard = vec![0u8; 5000];
        assert!(prove(&shard, 4999, 2).is_err());
        assert!(prove(&shard, 0, 0).is_err());
        assert!(prove(&shard, 0, MAX_AUDIT_SLICE + 1).is_err());
    }
}
