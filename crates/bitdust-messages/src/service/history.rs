//! History from the key: the address book and every conversation, kept on the user's own suppliers through the
//! node's [`bitdust_node::Vault`] (the storage pipeline: compressed, encrypted under keys derived from the master
//! secret, erasure-coded), so that `init --from-key` on a new device gets them back.
//!
//! The vault holds an append-only log of segments, `messages/log/<n>` (n zero-padded, so names sort in order):
//!
//! ```text
//! segment n      the history entries written or changed since segment n-1 (a message, or its new state), the
//!                address book if it changed, the groups whose roster or member keys changed (without our own
//!                sender key: a restored device makes a new one) and the group messages since n-1
//! <n>-base       everything: the address book, every entry, every group and group message; the segments before
//!                it are then deleted
//! ```
//! Every history write also marks its entry unsynced (table `messages/unsynced`, in the same transaction); every
//! [`SYNC_PERIOD`] the marked entries go out as one segment (small appends batched) and their marks are cleared
//! if the entry did not change meanwhile. After [`COMPACT_AFTER`] segments the next one is a base. Restoring reads
//! the last base and the segments after it, in order (an entry's last state wins), and rebuilds each
//! conversation's counters.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use crate::proto::contacts::ContactBook;
use crate::service::conversations::{guard_key, history_key, Entry, Guarded, PeerState, GUARD, HISTORY, PEERS};
use crate::service::groups::{GroupEntry, LoggedGroupEntry, SavedGroup};
use crate::service::{Messages, CONTACTS_KEY};

/// Entries marked for the next segment: history key -> the entry as written.
pub(crate) const UNSYNCED: &str = "messages/unsynced";
/// Where the log stands.
const SYNC_KEY: &str = "messages/sync";
/// The vault name prefix of the log.
pub const LOG_PREFIX: &str = "messages/log/";
/// How often unsynced entries go out as a segment.
pub const SYNC_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);
/// Segments after a base before the next segment is a base.
pub const COMPACT_AFTER: u64 = 32;
/// Entries per segment at most (the rest go in the next).
const SEGMENT_ENTRIES: usize = 50_000;

/// Where the log stands.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SyncState {
    /// Number of the next segment.
    next: u64,
    /// Segments since the last base.
    since_base: u64,
    /// BLAKE3 of the address book as last put in a segment.
    contacts: [u8; 32],
}

impl Versioned for SyncState {
    const FORMAT: u16 = 1;
}

/// One entry of a segment.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Logged {
    #[serde(with = "serde_bytes")]
    peer: Vec<u8>,
    index: u64,
    entry: Entry,
}

/// One segment of the log.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Segment {
    /// Whether it holds everything (the segments before it are not needed).
    base: bool,
    /// The address book, if it changed (always in a base).
    contacts: Option<ContactBook>,
    /// Entries, in key order.
    entries: Vec<Logged>,
    /// Groups whose roster or keys changed (every group in a base).
    groups: Vec<SavedGroup>,
    /// Group history entries written since the last segment (every one in a base).
    group_entries: Vec<LoggedGroupEntry>,
}

/// A segment as format 1 wrote it (before groups).
#[derive(Deserialize)]
struct SegmentV1 {
    base: bool,
    contacts: Option<ContactBook>,
    entries: Vec<Logged>,
}

impl Versioned for Segment {
    const FORMAT: u16 = 2;

    fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
        match format {
            1 => {
                let v1: SegmentV1 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
                Ok(Segment { base: v1.base, contacts: v1.contacts, entries: v1.entries, ..Segment::default() })
            }
            _ => Err(format!("unknown segment format {format} (current {})", Self::FORMAT)),
        }
    }
}

/// What [`Messages::restore_history`] got back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Segments read.
    pub segments: usize,
    /// Contacts in the restored address book.
    pub contacts: usize,
    /// Conversations.
    pub conversations: usize,
    /// Messages in them.
    pub messages: usize,
    /// Groups.
    pub groups: usize,
    /// Messages in the groups' histories.
    pub group_messages: usize,
}

fn segment_name(n: u64, base: bool) -> String {
    format!("{LOG_PREFIX}{n:016}{}", if base { "-base" } else { "" })
}

/// The segment number and base flag of a log name.
fn parse_name(name: &str) -> Option<(u64, bool)> {
    let rest = name.strip_prefix(LOG_PREFIX)?;
    let (digits, base) = match rest.strip_suffix("-base") {
        Some(d) => (d, true),
        None => (rest, false),
    };
    Some((digits.parse().ok()?, base))
}

fn digest(book: &ContactBook) -> Result<[u8; 32]> {
    Ok(*blake3::hash(&bitdust_store::encode(book)?).as_bytes())
}

impl Messages {
    /// Puts what changed since the last segment (history entries, the address book) into the vault as one
    /// segment (a base holding everything after [`COMPACT_AFTER`] segments). Returns whether it put one.
    ///
    /// # Errors
    /// No vault (the storage wing does not run), the vault refused the put (too few suppliers), or the database.
    /// Nothing is lost: the marks stay, and the next sync puts them.
    pub async fn sync_history(&self) -> Result<bool> {
        let vault = self.node.vault().context("no vault: the storage wing does not run")?;
        let _g = self.sync.lock().await;
        let state = match self.node.db().get::<SyncState>(SYNC_KEY)? {
            Some(s) => s,
            None => {
                // never synced nor restored here: a log on the suppliers is another device's (an interrupted
                // `init --from-key`): restored into an empty history, continued after otherwise, never overwritten
                let existing = vault.list(LOG_PREFIX)?;
                if let Some(last) = existing.iter().filter_map(|n| parse_name(n)).map(|(k, _)| k).max() {
                    if self.node.db().count(HISTORY)? == 0 {
                        drop(_g);
                        self.restore_history().await?;
                        return Ok(false);
                    }
                    tracing::warn!("the suppliers hold a history log this device did not restore: continuing it");
                    SyncState { next: last + 1, since_base: existing.len() as u64, contacts: [0; 32] }
                } else {
                    SyncState::default()
                }
            }
        };
        let book = self.contacts()?;
        let book_digest = digest(&book)?;
        let base = state.since_base >= COMPACT_AFTER;
        let marked = self.node.db().records::<Entry>(UNSYNCED, None, SEGMENT_ENTRIES)?;
        let (groups, group_marks) = self.groups_to_log(base)?;
        let marked_group_entries = self.group_entries_to_log(false, SEGMENT_ENTRIES)?;
        // an empty book never put is no change (a user who never messages puts nothing)
        let book_changed = book_digest != state.contacts && !(state.next == 0 && book.contacts.is_empty());
        if marked.is_empty() && !book_changed && !base && group_marks.is_empty() && marked_group_entries.is_empty() {
            return Ok(false);
        }
        let entries = if base { self.all_entries()? } else { logged(&marked) };
        let group_rows = if base { self.group_entries_to_log(true, usize::MAX)? } else { marked_group_entries.clone() };
        let group_entries = group_rows
            .into_iter()
            .filter_map(|(key, entry)| {
                let group: [u8; 16] = key.get(..16)?.try_into().ok()?;
                let index = u64::from_be_bytes(key.get(16..24)?.try_into().ok()?);
                Some(LoggedGroupEntry { group, index, entry })
            })
            .collect();
        let contacts = (base || book_changed).then(|| book.clone());
        let segment = Segment { base, contacts, entries, groups, group_entries };
        let name = segment_name(state.next, base);
        vault.put(&name, bitdust_store::encode(&segment)?).await?;
        let next = SyncState {
            next: state.next + 1,
            since_base: if base { 0 } else { state.since_base + 1 },
            contacts: book_digest,
        };
        self.node.db().write(|tx| {
            let mut table = tx.table(UNSYNCED)?;
            for (key, entry) in &marked {
                // cleared only if not written again meanwhile (then it goes in the next segment)
                if table.get::<Entry>(key)?.as_ref() == Some(entry) {
                    table.remove(key)?;
                }
            }
            drop(table);
            Messages::clear_group_marks(tx, &group_marks, &marked_group_entries)?;
            tx.put_value(SYNC_KEY, &next)
        })?;
        tracing::debug!(segment = %name, entries = segment.entries.len(), "history segment stored");
        if base {
            let older: Vec<String> = vault
                .list(LOG_PREFIX)?
                .into_iter()
                .filter(|n| parse_name(n).is_some_and(|(k, _)| k < state.next))
                .collect();
            if let Err(e) = vault.delete(&older).await {
                tracing::warn!(error = %format!("{e:#}"), "segments before the base not deleted yet");
            }
        }
        Ok(true)
    }

    /// Every history entry, in key order.
    fn all_entries(&self) -> Result<Vec<Logged>> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.node.db().records::<Entry>(HISTORY, after.as_deref(), 4096)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            out.extend(logged(&rows));
        }
        Ok(out)
    }

    /// Restores the address book and every conversation from the vault's log, replacing what this node holds
    /// (a new device: `init --from-key`).
    ///
    /// # Errors
    /// No vault, a segment that cannot be fetched or decoded (nothing is changed then), or the database.
    pub async fn restore_history(&self) -> Result<Restored> {
        let vault = self.node.vault().context("no vault: the storage wing does not run")?;
        let _g = self.sync.lock().await;
        let mut names: Vec<(u64, bool, String)> =
            vault.list(LOG_PREFIX)?.into_iter().filter_map(|n| parse_name(&n).map(|(k, b)| (k, b, n))).collect();
        names.sort();
        let from = names.iter().rposition(|(_, base, _)| *base).unwrap_or(0);
        let names = &names[from..];
        let mut book = ContactBook::default();
        let mut entries: BTreeMap<(Vec<u8>, u64), Entry> = BTreeMap::new();
        let mut groups: BTreeMap<[u8; 16], SavedGroup> = BTreeMap::new();
        let mut group_entries: BTreeMap<([u8; 16], u64), GroupEntry> = BTreeMap::new();
        for (_, _, name) in names {
            let bytes = vault.get(name).await?.with_context(|| format!("history segment {name} is gone"))?;
            let segment: Segment = bitdust_store::decode(name, &bytes)?;
            if let Some(b) = segment.contacts {
                book = b;
            }
            for l in segment.entries {
                entries.insert((l.peer, l.index), l.entry);
            }
            for g in segment.groups {
                groups.insert(g.group(), g);
            }
            for l in segment.group_entries {
                group_entries.insert((l.group, l.index), l.entry);
            }
        }
        let mut peers: BTreeMap<Vec<u8>, PeerState> = BTreeMap::new();
        for ((peer, index), entry) in &entries {
            let s = peers.entry(peer.clone()).or_default();
            s.next_index = s.next_index.max(index + 1);
            if entry.outgoing {
                s.next_seq = s.next_seq.max(entry.seq);
            }
        }
        let state = SyncState {
            next: names.last().map_or(0, |(k, _, _)| k + 1),
            since_base: names.len() as u64,
            contacts: digest(&book)?,
        };
        let restored = Restored {
            segments: names.len(),
            contacts: book.contacts.len(),
            conversations: peers.len(),
            messages: entries.len(),
            groups: groups.len(),
            group_messages: group_entries.len(),
        };
        let _b = self.book.lock().await;
        let _c = self.crypto.lock().await;
        self.node.db().write(|tx| {
            tx.put_value(CONTACTS_KEY, &book)?;
            let mut history = tx.table(HISTORY)?;
            let mut guard = tx.table(GUARD)?;
            for ((peer, index), entry) in &entries {
                let Ok(p) = PeerId::from_bytes(peer) else { continue };
                history.put(&history_key(&p, *index), entry)?;
                if !entry.outgoing {
                    // the replay guard knows what was received
                    guard.put(&guard_key(&p, 0, &entry.id), &Guarded(entry.at_unix_ms))?;
                }
            }
            drop((history, guard));
            let mut table = tx.table(PEERS)?;
            for (peer, s) in &peers {
                let mut merged = table.get::<PeerState>(peer)?.unwrap_or_default();
                merged.next_index = merged.next_index.max(s.next_index);
                merged.next_seq = merged.next_seq.max(s.next_seq);
                table.put(peer, &merged)?;
            }
            drop(table);
            self.restore_groups(tx, &groups, &group_entries)?;
            tx.put_value(SYNC_KEY, &state)
        })?;
        tracing::info!(?restored, "history restored from the vault");
        Ok(restored)
    }
}

fn logged(rows: &[(Vec<u8>, Entry)]) -> Vec<Logged> {
    rows.iter()
        .filter_map(|(key, entry)| {
            let split = key.len().checked_sub(8)?;
            let index = u64::from_be_bytes(key[split..].try_into().ok()?);
            Some(Logged { peer: key[..split].to_vec(), index, entry: entry.clone() })
        })
        .collect()
}

/// Puts the history into the vault every [`SYNC_PERIOD`] while the node runs (and prunes the replay guard about
/// hourly).
pub(crate) async fn sync_loop(messages: std::sync::Weak<Messages>) {
    for round in 0u64.. {
        tokio::time::sleep(SYNC_PERIOD).await;
        let Some(m) = messages.upgrade() else { return };
        if m.node.network().is_stopped() {
            return;
        }
        if round % 120 == 0 {
            // about hourly: the replay guard forgets what no mailbox can still hold
            match m.prune_guard() {
                Ok(0) => {}
                Ok(n) => tracing::debug!(entries = n, "old replay guard entries forgotten"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the replay guard"),
            }
        }
        if m.node.is_announced() && m.node.vault().is_some() {
            if let Err(e) = m.sync_history().await {
                tracing::debug!(error = %format!("{e:#}"), "history not synced yet");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_and_parse() {
        let mut names = vec![segment_name(10, false), segment_name(9, true), segment_name(100, false)];
        names.sort();
        assert_eq!(names, vec![segment_name(9, true), segment_name(10, false), segment_name(100, false)]);
        assert_eq!(parse_name(&segment_name(9, true)), Some((9, true)));
        assert_eq!(parse_name(&segment_name(10, false)), Some((10, false)));
        assert_eq!(parse_name("messages/log/x"), None);
        assert_eq!(parse_name("other/0000000000000001"), None);
    }
}
