//! Reed-Solomon erasure coding RS(k, n) over GF(2^16) with `reed-solomon-simd` (Leopard-RS, after
//! Lin, Chung and Han, "Novel polynomial basis and its application to Reed-Solomon erasure codes", FOCS 2014).
//!
//! A block's ciphertext is split into `k` data shards of equal length; `n - k` parity shards are added.
//! Any `k` of the `n` shards rebuild the data (the code is MDS), so a block survives the loss of any `n - k`.

use serde::{Deserialize, Serialize};

/// The supplier counts BitDust offers; [`Layout::for_suppliers`] accepts any count from 2 to 255.
pub const STANDARD_SUPPLIER_COUNTS: [u16; 7] = [2, 4, 7, 13, 18, 26, 64];
/// The largest supplier count accepted (bounded so every per-block array from a peer or disk is small).
pub const MAX_SUPPLIERS: u16 = 255;

/// Errors from erasure coding.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ErasureError {
    /// `k` and `n` do not satisfy `1 <= k < n <= MAX_SUPPLIERS`.
    #[error("invalid ecc layout RS({k}, {n}): need 1 <= k < n <= {MAX_SUPPLIERS}")]
    BadLayout {
        /// Data shards.
        k: u16,
        /// Total shards.
        n: u16,
    },
    /// Fewer than `k` shards were given.
    #[error("too few shards to decode: have {have}, need {need}")]
    TooFewShards {
        /// Shards available.
        have: usize,
        /// Shards needed (k).
        need: usize,
    },
    /// Shards of different lengths, odd length, or an index out of range.
    #[error("inconsistent shards: {0}")]
    BadShards(String),
    /// The underlying codec failed.
    #[error("reed-solomon: {0}")]
    Codec(String),
}

/// An ecc layout RS(k, n): `n` shards of which any `k` rebuild the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layout {
    /// Data shards (any `k` shards suffice).
    pub k: u16,
    /// Total shards, one per supplier position.
    pub n: u16,
}

impl Layout {
    /// A checked layout.
    ///
    /// # Errors
    /// [`ErasureError::BadLayout`] unless `1 <= k < n <= MAX_SUPPLIERS`.
    pub fn new(k: u16, n: u16) -> Result<Self, ErasureError> {
        if k == 0 || k >= n || n > MAX_SUPPLIERS {
            return Err(ErasureError::BadLayout { k, n });
        }
        Ok(Self { k, n })
    }

    /// The default layout for `n` suppliers: `k = ceil(n / 2)`, the same 2x overhead as BitDust's layouts,
    /// surviving any `n - k` losses.
    ///
    /// # Errors
    /// [`ErasureError::BadLayout`] for `n < 2` or `n > MAX_SUPPLIERS`.
    pub fn for_suppliers(n: u16) -> Result<Self, ErasureError> {
        Self::new(n.div_ceil(2), n)
    }

    /// Parity shards, `n - k`: how many losses a block survives.
    pub fn parity(&self) -> u16 {
        self.n - self.k
    }

    /// Shard length for a payload of `len` bytes: `ceil(len / k)` rounded up to an even number (the codec
    /// works on 16-bit symbols), at least 2.
    pub fn shard_len(&self, len: usize) -> usize {
        let per = len.div_ceil(self.k as usize).max(2);
        per + (per % 2)
    }
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RS({}, {})", self.k, self.n)
    }
}

/// A reusable encoder/decoder (reusing keeps its work buffers).
#[derive(Default)]
pub struct Coder {
    encoder: Option<reed_solomon_simd::ReedSolomonEncoder>,
    decoder: Option<reed_solomon_simd::ReedSolomonDecoder>,
}

impl Coder {
    /// A new coder; buffers are allocated on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Computes the `n - k` parity shards of `data` (`k` shards of one even length).
    ///
    /// # Errors
    /// [`ErasureError`] if the shards are inconsistent with the layout.
    pub fn encode(&mut self, layout: Layout, data: &[&[u8]]) -> Result<Vec<Vec<u8>>, ErasureError> {
        let mut parity = Vec::with_capacity(layout.parity() as usize);
        self.encode_each(layout, data, |_, shard| parity.push(shard.to_vec()))?;
        Ok(parity)
    }

    /// [`Coder::encode`] without copying the parity out of the encoder: calls `each(j, shard)` for parity
    /// shard `j` in `0..n - k` (shard index `k + j`), borrowed from the encoder's buffers.
    ///
    /// # Errors
    /// As [`Coder::encode`]; `each` is then not called.
    pub fn encode_each(
        &mut self,
        layout: Layout,
        data: &[&[u8]],
        mut each: impl FnMut(usize, &[u8]),
    ) -> Result<(), ErasureError> {
        let shard_len = check_shards(layout, data.len(), data.iter().map(|s| s.len()))?;
        if data.len() != layout.k as usize {
            return Err(ErasureError::BadShards(format!("{} data shards for {layout}", data.len())));
        }
        let (k, m) = (layout.k as usize, layout.parity() as usize);
        let enc = match self.encoder.as_mut() {
            Some(e) => {
                e.reset(k, m, shard_len).map_err(codec)?;
                e
            }
            None => self.encoder.insert(reed_solomon_simd::ReedSolomonEncoder::new(k, m, shard_len).map_err(codec)?),
        };
        for shard in data {
            enc.add_original_shard(shard).map_err(codec)?;
        }
        let result = enc.encode().map_err(codec)?;
        for (j, shard) in result.recovery_iter().enumerate() {
            each(j, shard);
        }
        Ok(())
    }

    /// Rebuilds all `k` data shards from any `k` (or more) shards given as `(index, bytes)`, where indexes
    /// `0..k` are data shards and `k..n` parity shards.
    ///
    /// # Errors
    /// [`ErasureError::TooFewShards`] with fewer than `k` distinct shards; [`ErasureError::BadShards`] for
    /// out-of-range indexes or unequal lengths.
    pub fn decode(&mut self, layout: Layout, shards: &[(usize, &[u8])]) -> Result<Vec<Vec<u8>>, ErasureError> {
        let (k, n) = (layout.k as usize, layout.n as usize);
        let shard_len = check_shards(layout, shards.len(), shards.iter().map(|(_, s)| s.len()))?;
        let mut seen = vec![false; n];
        for (i, _) in shards {
            if *i >= n {
                return Err(ErasureError::BadShards(format!("shard index {i} outside {layout}")));
            }
            seen[*i] = true;
        }
        let have = seen.iter().filter(|s| **s).count();
        if have < k {
            return Err(ErasureError::TooFewShards { have, need: k });
        }
        let mut out: Vec<Option<Vec<u8>>> = vec![None; k];
        for (i, s) in shards {
            if *i < k {
                out[*i] = Some(s.to_vec());
            }
        }
        if out.iter().all(Option::is_some) {
            return Ok(out.into_iter().flatten().collect());
        }
        let dec = match self.decoder.as_mut() {
            Some(d) => {
                d.reset(k, n - k, shard_len).map_err(codec)?;
                d
            }
            None => {
                self.decoder.insert(reed_solomon_simd::ReedSolomonDecoder::new(k, n - k, shard_len).map_err(codec)?)
            }
        };
        let mut added = vec![false; n];
        for (i, s) in shards {
            if added[*i] {
                continue;
            }
            added[*i] = true;
            if *i < k {
                dec.add_original_shard(*i, s).map_err(codec)?;
            } else {
                dec.add_recovery_shard(*i - k, s).map_err(codec)?;
            }
        }
        let result = dec.decode().map_err(codec)?;
        for (i, s) in result.restored_original_iter() {
            out[i] = Some(s.to_vec());
        }
        out.into_iter()
            .enumerate()
            .map(|(i, s)| s.ok_or_else(|| ErasureError::Codec(format!("data shard {i} not restored"))))
            .collect()
    }
}

fn codec(e: reed_solomon_simd::Error) -> ErasureError {
    ErasureError::Codec(e.to_string())
}

fn check_shards(layout: Layout, count: usize, lens: impl Iterator<Item = usize>) -> Result<usize, ErasureError> {
    Layout::new(layout.k, layout.n)?;
    let mut shard_len = None;
    for len in lens {
        if len == 0 || len % 2 != 0 {
            return Err(ErasureError::BadShards(format!("shard length {len} is not a positive even number")));
        }
        match shard_len {
            None => shard_len = Some(len),
            Some(l) if l != len => return Err(ErasureError::BadShards(format!("lengths {l} and {len} differ"))),
            Some(_) => {}
        }
    }
    shard_len.ok_or(ErasureError::TooFewShards { have: count, need: layout.k as usize })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn default_layouts_match_bitdust_counts() {
        let ks: Vec<u16> = STANDARD_SUPPLIER_COUNTS.iter().map(|n| Layout::for_suppliers(*n).unwrap().k).collect();
        assert_eq!(ks, vec![1, 2, 4, 7, 9, 13, 32]);
        assert!(Layout::for_suppliers(1).is_err());
        assert!(Layout::new(2, 2).is_err());
    }

    /// Visits every subset of `0..n` of size `k` (n is small in these tests).
    fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
        (0u32..(1 << n))
            .filter(|m| m.count_ones() as usize == k)
            .map(|m| (0..n).filter(|i| m & (1 << i) != 0).collect())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// RS recovers the data from every choice of k surviving shards (every choice of n-k losses).
        #[test]
        fn recovers_from_every_choice_of_losses(
            n in prop::sample::select(vec![2u16, 4, 7, 13]),
            seed in any::<u64>(),
            half_len in 1usize..200,
        ) {
            let layout = Layout::for_suppliers(n).unwrap();
            let len = half_len * 2;
            let mut rng = seed;
            let data: Vec<Vec<u8>> = (0..layout.k).map(|_| (0..len).map(|_| { rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); (rng >> 33) as u8 }).collect()).collect();
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut coder = Coder::new();
            let parity = coder.encode(layout, &refs).unwrap();
            let all: Vec<&[u8]> = refs.iter().copied().chain(parity.iter().map(Vec::as_slice)).collect();
            for keep in subsets(n as usize, layout.k as usize) {
                let given: Vec<(usize, &[u8])> = keep.iter().map(|i| (*i, all[*i])).collect();
                prop_assert_eq!(&coder.decode(layout, &given).unwrap(), &data, "kept {:?}", keep);
            }
            // one fewer than k is refused, not guessed
            if layout.k > 1 {
                let given: Vec<(usize, &[u8])> = (0..layout.k as usize - 1).map(|i| (i, all[i])).collect();
                let too_few = matches!(coder.decode(layout, &given), Err(ErasureError::TooFewShards { .. }));
                prop_assert!(too_few);
            }
        }
    }
}
