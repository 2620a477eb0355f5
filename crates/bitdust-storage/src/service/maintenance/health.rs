//! Health reports: per version, blocks at full redundancy, degraded (and how many more losses they take) or
//! lost, from the rebuild queue and the positions whose supplier is down ([`unavailable_positions`]), and the
//! files that overlap lost blocks.

use std::collections::HashMap;

use anyhow::Result;
pub use bitdust_api::VersionHealth;

use crate::proto::catalog::EntryKind;
use crate::proto::rebuild::{assess, unavailable_positions, BlockHealth};
use crate::service::Storage;

impl Storage {
    /// Health of every version: blocks at full redundancy, degraded or lost, and the files lost.
    ///
    /// # Errors
    /// On database failure.
    pub fn health(&self) -> Result<Vec<VersionHealth>> {
        let catalog = self.catalog()?;
        let down: Vec<u16> = self.unhealthy_positions.lock().map(|d| d.clone()).unwrap_or_default();
        let held: Vec<u16> = self.suppliers()?.iter().map(|s| s.position).collect();
        let mut queued: HashMap<([u8; 16], u64), Vec<u16>> = HashMap::new();
        for it in self.rebuild_queue()? {
            queued.insert((it.version_id, it.block), it.positions);
        }
        // incremental versions share the packs: each is as healthy as all of them (a lost pack may hold any
        // version's chunks; which files it touches would need the trees read)
        let mut packs = (0usize, 0usize, 0usize, u16::MAX, 0usize);
        for set in &catalog.packs {
            for i in 0..set.blocks.len() {
                packs.0 += 1;
                let q = queued.get(&(set.id, i as u64)).map(Vec::as_slice).unwrap_or(&[]);
                match assess(set.layout, &unavailable_positions(set.layout, &down, &held, q)) {
                    BlockHealth::Full => packs.1 += 1,
                    BlockHealth::Degraded { can_still_lose, .. } => {
                        packs.2 += 1;
                        packs.3 = packs.3.min(can_still_lose);
                    }
                    BlockHealth::Lost { .. } => packs.4 += 1,
                }
            }
        }
        let mut out = Vec::new();
        for b in &catalog.backups {
            for v in &b.versions {
                if catalog.snapshot(v).is_some() {
                    let (blocks, full, degraded, least, lost) = packs;
                    out.push(VersionHealth {
                        name: b.name.clone(),
                        version: v.number,
                        blocks,
                        full,
                        degraded,
                        can_still_lose: if degraded == 0 && lost == 0 {
                            v.layout.parity()
                        } else {
                            least.min(v.layout.parity())
                        },
                        lost,
                        lost_files: Vec::new(),
                    });
                    continue;
                }
                let mut h = VersionHealth {
                    name: b.name.clone(),
                    version: v.number,
                    blocks: v.blocks.len(),
                    full: 0,
                    degraded: 0,
                    can_still_lose: v.layout.parity(),
                    lost: 0,
                    lost_files: Vec::new(),
                };
                let mut offset = 0u64;
                let mut lost_ranges = Vec::new();
                for (i, m) in v.blocks.iter().enumerate() {
                    let q = queued.get(&(v.id, i as u64)).map(Vec::as_slice).unwrap_or(&[]);
                    match assess(v.layout, &unavailable_positions(v.layout, &down, &held, q)) {
                        BlockHealth::Full => h.full += 1,
                        BlockHealth::Degraded { can_still_lose, .. } => {
                            h.degraded += 1;
                            h.can_still_lose = h.can_still_lose.min(can_still_lose);
                        }
                        BlockHealth::Lost { .. } => {
                            h.lost += 1;
                            lost_ranges.push((offset, offset + m.plain_len as u64));
                        }
                    }
                    offset += m.plain_len as u64;
                }
                if h.degraded == 0 && h.lost == 0 {
                    h.can_still_lose = v.layout.parity();
                }
                for e in &v.entries {
                    if let EntryKind::File { size, offset } = e.kind {
                        if size > 0 && lost_ranges.iter().any(|(a, b)| offset < *b && offset + size > *a) {
                            h.lost_files.push(String::from_utf8_lossy(&e.path).into_owned());
                        }
                    }
                }
                out.push(h);
            }
        }
        Ok(out)
    }
}
