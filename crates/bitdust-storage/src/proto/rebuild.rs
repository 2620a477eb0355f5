//! Rebuild planning and keyless regeneration of fragments.
//!
//! The planner ([`assess`], [`plan_block`]) is pure: from which positions of a block are unavailable it
//! says how healthy the block is and which fragments to regenerate from which sources. [`regenerate`]
//! does the work on encrypted fragments only: it checks `k` source fragments against the hashes recorded
//! in the catalog, rebuilds the data shards, re-encodes, and returns the missing fragments, each checked
//! against its recorded hash (Reed-Solomon is deterministic, so a regenerated fragment is bit-identical to
//! the lost one). It needs no key, so a hired scrubber can run it.

use serde::{Deserialize, Serialize};

use crate::proto::erasure::{Coder, ErasureError, Layout};
use crate::proto::fragment::{self, FragmentError};
use crate::proto::pipeline::BlockMeta;

/// How healthy one block is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BlockHealth {
    /// All n fragments available.
    Full,
    /// Some missing; `can_still_lose` more losses are survivable.
    Degraded {
        /// Missing positions.
        missing: Vec<u16>,
        /// How many more fragments can be lost before the block is lost.
        can_still_lose: u16,
    },
    /// More than n - k missing: the block cannot be restored.
    Lost {
        /// Missing positions.
        missing: Vec<u16>,
    },
}

/// Classifies a block from its unavailable positions.
pub fn assess(layout: Layout, unavailable: &[u16]) -> BlockHealth {
    let mut missing: Vec<u16> = unavailable.iter().copied().filter(|p| *p < layout.n).collect();
    missing.sort_unstable();
    missing.dedup();
    let lost = missing.len() as u16;
    if lost == 0 {
        BlockHealth::Full
    } else if lost <= layout.parity() {
        BlockHealth::Degraded { can_still_lose: layout.parity() - lost, missing }
    } else {
        BlockHealth::Lost { missing }
    }
}

/// The positions of a block that cannot serve it now: those whose supplier is `down`, those without a supplier
/// (`held` lists the positions that have one) and those whose fragment is `queued` for rebuilding. What
/// [`assess`] takes to report a block's health.
pub fn unavailable_positions(layout: Layout, down: &[u16], held: &[u16], queued: &[u16]) -> Vec<u16> {
    let mut out: Vec<u16> =
        (0..layout.n).filter(|p| down.contains(p) || !held.contains(p) || queued.contains(p)).collect();
    out.dedup();
    out
}

/// A rebuild decision for one block: regenerate `targets` from any `k` of `sources`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPlan {
    /// Positions to regenerate.
    pub targets: Vec<u16>,
    /// Positions to fetch from, in preference order (data shards first); at least k.
    pub sources: Vec<u16>,
}

/// Plans the rebuild of a block whose `missing` positions must be regenerated, when `unavailable`
/// positions (a superset of those missing, plus unreachable ones) cannot serve as sources.
/// `None` if nothing is missing or fewer than `k` sources remain.
pub fn plan_block(layout: Layout, missing: &[u16], unavailable: &[u16]) -> Option<BlockPlan> {
    if missing.is_empty() {
        return None;
    }
    let sources: Vec<u16> = (0..layout.n).filter(|p| !missing.contains(p) && !unavailable.contains(p)).collect();
    if sources.len() < layout.k as usize {
        return None;
    }
    let mut targets = missing.to_vec();
    targets.sort_unstable();
    targets.dedup();
    Some(BlockPlan { targets, sources })
}

/// Errors from regeneration.
#[derive(Debug, thiserror::Error)]
pub enum RegenerateError {
    /// A source fragment is malformed or does not match the catalog.
    #[error("source fragment at position {position}: {source}")]
    Source {
        /// Position.
        position: u16,
        /// Why.
        source: FragmentError,
    },
    /// Erasure decoding failed (too few sources).
    #[error(transparent)]
    Erasure(#[from] ErasureError),
    /// A regenerated fragment does not hash to the catalog's value (catalog or sources inconsistent).
    #[error("regenerated fragment for position {0} does not match the catalog")]
    Mismatch(u16),
}

/// Checks one fragment for `position` of the block described by `meta` against the catalog hash, without
/// keys. Returns the shard.
///
/// # Errors
/// [`FragmentError`] if it is malformed or its hash differs from the recorded one.
pub fn check_source<'a>(
    layout: Layout,
    meta: &BlockMeta,
    position: u16,
    bytes: &'a [u8],
) -> Result<&'a [u8], FragmentError> {
    let (header, shard) = fragment::parse(bytes)?;
    if header.shard_index != position
        || header.layout != layout
        || header.block_tag != fragment::expected_tag(header.format, &meta.block_id, position)
        || header.shard_len != meta.shard_len
    {
        return Err(FragmentError::Malformed("header does not match the catalog"));
    }
    if meta.shard_hashes.get(position as usize) != Some(&header.shard_hash) {
        return Err(FragmentError::HashMismatch);
    }
    Ok(shard)
}

/// Regenerates the fragments at `targets` from at least `k` source fragments `(position, bytes)`.
///
/// # Errors
/// [`RegenerateError`] if a source is bad, too few sources are given, or a result does not match the
/// catalog.
pub fn regenerate(
    coder: &mut Coder,
    layout: Layout,
    meta: &BlockMeta,
    sources: &[(u16, &[u8])],
    targets: &[u16],
) -> Result<Vec<(u16, Vec<u8>)>, RegenerateError> {
    let mut shards = Vec::with_capacity(sources.len());
    for (position, bytes) in sources {
        let shard = check_source(layout, meta, *position, bytes)
            .map_err(|source| RegenerateError::Source { position: *position, source })?;
        shards.push((*position as usize, shard));
    }
    let data = coder.decode(layout, &shards)?;
    let needs_parity = targets.iter().any(|t| *t >= layout.k);
    let parity = if needs_parity {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        coder.encode(layout, &refs)?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(targets.len());
    for &t in targets {
        let shard = if t < layout.k { &data[t as usize] } else { &parity[(t - layout.k) as usize] };
        let (frag, hash) = fragment::build(t, layout, meta.block_id, shard);
        if meta.shard_hashes.get(t as usize) != Some(&hash) {
            return Err(RegenerateError::Mismatch(t));
        }
        out.push((t, frag));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::pipeline::{BlockEncoder, VersionKeys};
    use bitdust_core::keys::NodeKeys;
    use proptest::prelude::*;

    #[test]
    fn health_follows_the_layout() {
        let l = Layout::for_suppliers(4).unwrap();
        assert_eq!(assess(l, &[]), BlockHealth::Full);
        assert_eq!(assess(l, &[3]), BlockHealth::Degraded { missing: vec![3], can_still_lose: 1 });
        assert_eq!(assess(l, &[0, 1, 2]), BlockHealth::Lost { missing: vec![0, 1, 2] });
        assert_eq!(plan_block(l, &[1], &[]), Some(BlockPlan { targets: vec![1], sources: vec![0, 2, 3] }));
        assert_eq!(plan_block(l, &[1], &[0, 2]), None, "only one source left");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        /// Any n-k lost fragments are regenerated bit for bit from the k others, without keys.
        #[test]
        fn regenerated_fragments_equal_the_lost_ones(n in prop::sample::select(vec![2u16, 4, 7, 13]), seed in any::<u64>(), len in 1usize..50_000) {
            let layout = Layout::for_suppliers(n).unwrap();
            let keys = VersionKeys::derive(NodeKeys::from_seed([8; 32]).unwrap().master(), [1; 16]);
            let mut x = seed | 1;
            let plain: Vec<u8> = (0..len).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect();
            let block = BlockEncoder::new(layout, keys).unwrap().encode(0, &plain).unwrap();
            // lose a pseudo-random choice of n-k positions
            let mut order: Vec<u16> = (0..n).collect();
            order.sort_by_key(|p| (seed.rotate_left(*p as u32) ^ *p as u64).wrapping_mul(0x9e3779b97f4a7c15));
            let lost: Vec<u16> = order[..layout.parity() as usize].to_vec();
            let plan = plan_block(layout, &lost, &[]).unwrap();
            let sources: Vec<(u16, &[u8])> = plan.sources.iter().map(|p| (*p, block.fragments[*p as usize].as_slice())).collect();
            let out = regenerate(&mut Coder::new(), layout, &block.meta, &sources, &plan.targets).unwrap();
            for (p, frag) in out {
                prop_assert_eq!(&frag, &block.fragments[p as usize]);
            }
        }
    }

    #[test]
    fn a_bad_source_is_named() {
        let layout = Layout::for_suppliers(4).unwrap();
        let keys = VersionKeys::derive(NodeKeys::from_seed([8; 32]).unwrap().master(), [1; 16]);
        let block = BlockEncoder::new(layout, keys).unwrap().encode(0, b"some data here").unwrap();
        let mut bad = block.fragments[0].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let sources = [(0u16, bad.as_slice()), (1, block.fragments[1].as_slice())];
        let err = regenerate(&mut Coder::new(), layout, &block.meta, &sources, &[3]).unwrap_err();
        assert!(matches!(err, RegenerateError::Source { position: 0, .. }), "{err}");
    }
}
