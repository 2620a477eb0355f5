//! Group conversations on the node ([`crate::proto::groups`]): rosters, sender keys and group history in the node
//! database; group messages fanned out to each member directly, else to its mailboxes.
//!
//! ```text
//! node database
//!   messages/groups         group id -> the signed roster, our sender key (pickled), the next history index
//!   messages/group_keys     group ‖ member -> that member's sender sessions (pickled, encrypted), newest first
//!   messages/group_history  group ‖ index -> one message, in the order sent or received here
//! ```
//!
//! Rosters, sender keys and leaves travel as Olm messages (`Body::Group`, outside the 1:1 conversation); a group
//! message is one Megolm encryption, sent as an envelope of type [`GROUP_MESSAGE_TYPE`] on the same protocol and
//! through the same mailboxes as a private message.

use anyhow::{bail, Context, Result};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::proto::e2e;
use crate::proto::groups::{
    past_chunks, GroupControl, GroupEnvelope, GroupPlain, Keyring, PastMessage, Roster, SenderKey, SignedRoster,
    GROUP_MESSAGE_TYPE, MAX_PAST_BYTES, MAX_PAST_MESSAGES,
};
use crate::proto::wire::{self, Body, Request, Response, MAX_TEXT_BYTES};
use crate::service::conversations::{guard_key, Guarded, GUARD};
use crate::service::Messages;

const GROUPS: &str = "messages/groups";
const GROUP_KEYS: &str = "messages/group_keys";
const GROUP_HISTORY: &str = "messages/group_history";
/// Group history entries marked for the next history segment (as [`crate::service::history`]'s `unsynced`).
pub(crate) const GROUP_UNSYNCED: &str = "messages/group_unsynced";
/// Groups whose roster or keys changed since the last history segment: group id -> a random mark.
pub(crate) const GROUP_DIRTY: &str = "messages/group_dirty";
/// Members a group message is sent to at once.
const FAN_OUT: usize = 16;

/// Why a group operation was refused (the API maps each to its status).
#[derive(Debug, thiserror::Error)]
pub enum GroupRefusal {
    /// No group of that name or id here.
    #[error("no group named {0}")]
    Unknown(String),
    /// Several groups of that name (from different admins): name one by its id.
    #[error("several groups are named {0}: name one by its id (bitdust group list)")]
    Ambiguous(String),
    /// A current group of that name exists already.
    #[error("a group named {0} exists already")]
    Exists(String),
    /// Only the admin adds and removes members; the admin cannot leave.
    #[error("{0}")]
    Admin(&'static str),
    /// Not a member of the group named.
    #[error("{0} is not a member of {1}")]
    NoSuchMember(String, String),
    /// We were removed or left.
    #[error("we are no longer a member of {0}")]
    NotMember(String),
}

/// What this node keeps of one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    /// The latest roster taken.
    pub roster: SignedRoster,
    /// Our sender key (pickled) and the roster revision it was made for; `None` until the first message after a
    /// removal (then a new one is made and given to the members).
    sender: Option<(String, u64)>,
    /// Members our current sender key was given to.
    given: Vec<Vec<u8>>,
    /// Index of the next history entry.
    next_index: u64,
    /// Whether we are still a member (a removed or departed member keeps the history).
    pub active: bool,
}

impl Versioned for GroupRecord {
    const FORMAT: u16 = 1;
}

/// One message of a group's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    /// The sender's peer id bytes.
    pub from: Vec<u8>,
    /// The message id.
    pub id: [u8; 16],
    /// When the sender wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// When it was sent or received here, Unix milliseconds.
    pub at_unix_ms: u64,
    /// The text.
    pub text: String,
}

impl Versioned for GroupEntry {
    const FORMAT: u16 = 1;
}

/// A group's sender sessions of one member, pickled.
#[derive(Serialize, Deserialize, Default)]
struct KeyPickles(Vec<String>);

impl Versioned for KeyPickles {
    const FORMAT: u16 = 1;
}

/// A change mark of [`GROUP_DIRTY`]: cleared after a segment only if not set again meanwhile.
#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Mark(u64);

impl Versioned for Mark {
    const FORMAT: u16 = 1;
}

/// Change marks read from [`GROUP_DIRTY`]: group id bytes and mark.
pub(crate) type Marks = Vec<(Vec<u8>, u64)>;

/// One group as the history log keeps it: the record (without our sender key: a restored device makes a new one,
/// never reusing a Megolm index) and every member's sender sessions (pickled, encrypted under a key derived from
/// the master secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedGroup {
    record: GroupRecord,
    /// Member peer id bytes -> pickles.
    keys: Vec<(Vec<u8>, Vec<String>)>,
}

impl SavedGroup {
    /// The group id.
    pub(crate) fn group(&self) -> [u8; 16] {
        self.record.roster.roster.group
    }
}

/// One group history entry as the history log keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LoggedGroupEntry {
    pub(crate) group: [u8; 16],
    pub(crate) index: u64,
    pub(crate) entry: GroupEntry,
}

/// What sending a group message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSent {
    /// The history entry.
    pub entry: GroupEntry,
    /// Members it was delivered to directly.
    pub delivered: usize,
    /// Members it was left for in their mailboxes.
    pub stored: usize,
    /// Members reached neither way.
    pub missed: usize,
}

fn key_of(group: &[u8; 16], member: &PeerId) -> Vec<u8> {
    [&group[..], &member.to_bytes()].concat()
}

fn history_key(group: &[u8; 16], index: u64) -> Vec<u8> {
    [&group[..], &index.to_be_bytes()].concat()
}

impl Messages {
    /// Held while a group's record is read, changed and written (never across an await).
    fn group_guard(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.group_lock.lock().map_err(|_| anyhow::anyhow!("the group lock is poisoned"))
    }

    /// The sender sessions `member` gave us for `group`.
    fn keyring_of(&self, group: &[u8; 16], member: &PeerId) -> Result<Keyring> {
        let mut ring = Keyring::default();
        if let Some(p) = self.node.db().record::<KeyPickles>(GROUP_KEYS, &key_of(group, member))? {
            ring.restore(member, &p.0, &self.pickle_key());
        }
        Ok(ring)
    }

    fn pickle_key(&self) -> [u8; 32] {
        self.node.keys().master().derive("bitdust 2026-12 megolm pickle key v1", b"")
    }

    /// Every group kept here (current and left), by id.
    ///
    /// # Errors
    /// The database.
    pub fn groups(&self) -> Result<Vec<GroupRecord>> {
        Ok(self.node.db().records::<GroupRecord>(GROUPS, None, usize::MAX)?.into_iter().map(|(_, g)| g).collect())
    }

    /// The group named `name` (a name, or the group id in hex) that we are a member of.
    ///
    /// # Errors
    /// No such group, or several of that name (use the id).
    pub fn group(&self, name: &str) -> Result<GroupRecord> {
        let all = self.groups()?;
        let mut found: Vec<GroupRecord> = all
            .into_iter()
            .filter(|g| g.roster.roster.name == name || hex::encode(g.roster.roster.group) == name)
            .collect();
        if found.len() > 1 {
            found.retain(|g| g.active);
        }
        match found.len() {
            0 => Err(GroupRefusal::Unknown(name.into()).into()),
            1 => Ok(found.remove(0)),
            _ => Err(GroupRefusal::Ambiguous(name.into()).into()),
        }
    }

    fn save_group(&self, record: &GroupRecord) -> Result<()> {
        let group = record.roster.roster.group;
        self.node.db().write(|tx| {
            tx.table(GROUPS)?.put(&group, record)?;
            tx.table(GROUP_DIRTY)?.put(&group, &Mark(rand::random()))
        })?;
        Ok(())
    }

    /// The groups whose roster or keys changed since the last segment (all of them if `all`), with their marks.
    pub(crate) fn groups_to_log(&self, all: bool) -> Result<(Vec<SavedGroup>, Marks)> {
        let marks: Marks =
            self.node.db().records::<Mark>(GROUP_DIRTY, None, usize::MAX)?.into_iter().map(|(k, m)| (k, m.0)).collect();
        let mut saved = Vec::new();
        for (key, mut record) in self.node.db().records::<GroupRecord>(GROUPS, None, usize::MAX)? {
            if !all && !marks.iter().any(|(k, _)| *k == key) {
                continue;
            }
            record.sender = None;
            record.given.clear();
            let group = record.roster.roster.group;
            let keys = self
                .node
                .db()
                .records::<KeyPickles>(GROUP_KEYS, Some(&group[..]), usize::MAX)?
                .into_iter()
                .take_while(|(k, _)| k.starts_with(&group))
                .map(|(k, p)| (k[16..].to_vec(), p.0))
                .collect();
            saved.push(SavedGroup { record, keys });
        }
        Ok((saved, marks))
    }

    /// Clears the change marks `marks` (those not set again meanwhile) and the group entries `entries` (those not
    /// written again meanwhile), in `tx`.
    pub(crate) fn clear_group_marks(
        tx: &bitdust_store::Txn<'_>,
        marks: &Marks,
        entries: &[(Vec<u8>, GroupEntry)],
    ) -> Result<(), bitdust_store::NodeDbError> {
        let mut dirty = tx.table(GROUP_DIRTY)?;
        for (key, mark) in marks {
            if dirty.get::<Mark>(key)? == Some(Mark(*mark)) {
                dirty.remove(key)?;
            }
        }
        drop(dirty);
        let mut unsynced = tx.table(GROUP_UNSYNCED)?;
        for (key, entry) in entries {
            if unsynced.get::<GroupEntry>(key)?.as_ref() == Some(entry) {
                unsynced.remove(key)?;
            }
        }
        Ok(())
    }

    /// Every group history entry (if `all`), else those marked since the last segment (at most `limit`).
    pub(crate) fn group_entries_to_log(&self, all: bool, limit: usize) -> Result<Vec<(Vec<u8>, GroupEntry)>> {
        if !all {
            return Ok(self.node.db().records::<GroupEntry>(GROUP_UNSYNCED, None, limit)?);
        }
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.node.db().records::<GroupEntry>(GROUP_HISTORY, after.as_deref(), 4096)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            out.extend(rows);
        }
        Ok(out)
    }

    /// Writes restored groups and group history in `tx` (a newer roster held here wins over the log's), with the
    /// replay guard of every message received. Returns the number of groups restored.
    pub(crate) fn restore_groups(
        &self,
        tx: &bitdust_store::Txn<'_>,
        groups: &std::collections::BTreeMap<[u8; 16], SavedGroup>,
        entries: &std::collections::BTreeMap<([u8; 16], u64), GroupEntry>,
    ) -> Result<usize, bitdust_store::NodeDbError> {
        let mut next: std::collections::BTreeMap<[u8; 16], u64> = std::collections::BTreeMap::new();
        let me = self.node.peer_id().to_bytes();
        let mut history = tx.table(GROUP_HISTORY)?;
        let mut guard = tx.table(GUARD)?;
        for ((group, index), entry) in entries {
            history.put(&history_key(group, *index), entry)?;
            let n = next.entry(*group).or_default();
            *n = (*n).max(index + 1);
            if entry.from != me {
                if let Ok(peer) = PeerId::from_bytes(&entry.from) {
                    guard.put(&guard_key(&peer, 2, &[&group[..], &entry.id].concat()), &Guarded(entry.at_unix_ms))?;
                }
            }
        }
        drop((history, guard));
        let mut restored = 0;
        let mut table = tx.table(GROUPS)?;
        let mut keys = tx.table(GROUP_KEYS)?;
        for (group, saved) in groups {
            let held = table.get::<GroupRecord>(group)?;
            let mut record = match held {
                Some(h) if h.roster.roster.revision > saved.record.roster.roster.revision => h,
                _ => {
                    for (member, pickles) in &saved.keys {
                        keys.put(&[&group[..], member].concat(), &KeyPickles(pickles.clone()))?;
                    }
                    saved.record.clone()
                }
            };
            record.next_index = record.next_index.max(next.get(group).copied().unwrap_or(0));
            table.put(group, &record)?;
            restored += 1;
        }
        Ok(restored)
    }

    /// Creates group `name` with this node as its admin and only member.
    ///
    /// # Errors
    /// A bad name, or a current group of that name already.
    pub async fn group_create(&self, name: &str) -> Result<Roster> {
        let _held = self.group_guard()?;
        if self.groups()?.iter().any(|g| g.active && g.roster.roster.name == name) {
            return Err(GroupRefusal::Exists(name.into()).into());
        }
        let roster = SignedRoster::sign(self.node.keys(), Roster::create(self.node.keys(), name)?)?;
        let record =
            GroupRecord { roster: roster.clone(), sender: None, given: Vec::new(), next_index: 0, active: true };
        self.save_group(&record)?;
        Ok(roster.roster)
    }

    /// Adds contact `contact` to group `name` (we must be its admin), tells every member the new roster and gives
    /// the newcomer our sender key; the other members give theirs when they take the roster. With `history`, the
    /// newcomer also gets the group's earlier messages as we hold them (the last [`MAX_PAST_MESSAGES`]); without,
    /// it reads from its join.
    ///
    /// # Errors
    /// Not the admin, an unknown contact, a full group.
    pub async fn group_add(&self, name: &str, contact: &str, history: bool) -> Result<Roster> {
        let peer = self.contacts()?.named(contact)?.peer()?;
        let roster = self.change_roster(name, |r| r.with_member(&peer).map_err(Into::into)).await?;
        if history {
            let past: Vec<PastMessage> = self
                .group_history(&hex::encode(roster.group), MAX_PAST_MESSAGES)?
                .into_iter()
                .map(|e| PastMessage { from: e.from, id: e.id, sent_unix_ms: e.sent_unix_ms, text: e.text })
                .collect();
            for messages in past_chunks(past) {
                let control = GroupControl::History { group: roster.group, messages };
                if let Err(e) = self.send_control(peer, Body::Group(control)).await {
                    tracing::info!(%peer, error = %e, "the group's history did not reach the newcomer");
                    break;
                }
            }
        }
        Ok(roster)
    }

    /// Removes `member` (a contact name or peer id) from group `name` (we must be its admin): a new roster to every
    /// member and to the removed one, and a new sender key on every side.
    ///
    /// # Errors
    /// Not the admin, not a member, the admin itself.
    pub async fn group_remove(&self, name: &str, member: &str) -> Result<Roster> {
        // the group first (an unknown group is the first thing to say), then the member
        self.group(name)?;
        let peer = match self.contacts()?.named(member) {
            Ok(c) => c.peer()?,
            Err(_) => member
                .parse::<PeerId>()
                .map_err(|_| GroupRefusal::NoSuchMember(member.to_string(), name.to_string()))?,
        };
        self.change_roster(name, |r| {
            if !r.is_member(&peer) {
                return Err(GroupRefusal::NoSuchMember(member.into(), name.into()).into());
            }
            r.without_member(&peer).map_err(Into::into)
        })
        .await
    }

    async fn change_roster(&self, name: &str, change: impl FnOnce(&Roster) -> Result<Roster>) -> Result<Roster> {
        let (before, after) = {
            let _held = self.group_guard()?;
            let mut record = self.group(name)?;
            if !record.active {
                return Err(GroupRefusal::NotMember(name.into()).into());
            }
            if record.roster.roster.admin != self.node.peer_id().to_bytes() {
                return Err(GroupRefusal::Admin("only the group's admin adds and removes members").into());
            }
            let before = record.roster.roster.clone();
            let next = change(&before)?;
            record.roster = SignedRoster::sign(self.node.keys(), next)?;
            if before.removes_from(&record.roster.roster) {
                self.rotate(&mut record, &before)?;
            }
            self.save_group(&record)?;
            (before, record.roster)
        };
        // every member of either roster hears of it (a removed member learns it is out)
        let me = self.node.peer_id();
        let told: Vec<PeerId> = before
            .peers()
            .into_iter()
            .chain(after.roster.peers())
            .filter(|p| *p != me)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        for peer in told {
            if let Err(e) = self.send_control(peer, Body::Group(GroupControl::Roster(after.clone()))).await {
                tracing::info!(%peer, error = %e, "the new roster did not reach a member");
            }
        }
        self.share_sender_key(after.roster.group).await;
        self.sync_group_shares(after.roster.group).await;
        Ok(after.roster)
    }

    /// Drops our sender key (a new one is made and given out) and the removed members' keys.
    fn rotate(&self, record: &mut GroupRecord, before: &Roster) -> Result<()> {
        record.sender = None;
        record.given.clear();
        let removed: Vec<PeerId> = before.peers().into_iter().filter(|p| !record.roster.roster.is_member(p)).collect();
        let group = record.roster.roster.group;
        self.node.db().write(|tx| {
            let mut t = tx.table(GROUP_KEYS)?;
            for p in &removed {
                t.remove(&key_of(&group, p))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Our sender key of `record`, made (and saved) if there is none for its roster.
    fn sender_key(&self, record: &mut GroupRecord) -> Result<SenderKey> {
        let key = self.pickle_key();
        if let Some((pickle, revision)) = &record.sender {
            return Ok(SenderKey::unpickle(pickle, &key, *revision)?);
        }
        let sender = SenderKey::new(record.roster.roster.revision);
        record.sender = Some((sender.pickle(&key), sender.revision));
        record.given.clear();
        Ok(sender)
    }

    /// Gives our current sender key of `group` to every member that does not have it yet.
    pub(crate) async fn share_sender_key(&self, group: [u8; 16]) {
        let pending = {
            let Ok(_held) = self.group_guard() else { return };
            let Ok(Some(mut record)) = self.node.db().record::<GroupRecord>(GROUPS, &group) else { return };
            if !record.active {
                return;
            }
            let Ok(sender) = self.sender_key(&mut record) else { return };
            let me = self.node.peer_id();
            let pending: Vec<PeerId> = record
                .roster
                .roster
                .peers()
                .into_iter()
                .filter(|p| *p != me && !record.given.contains(&p.to_bytes()))
                .collect();
            if self.save_group(&record).is_err() {
                return;
            }
            (pending, sender.revision, sender.session_key(), record.roster.clone())
        };
        let (pending, revision, key, roster) = pending;
        let mut given = Vec::new();
        for peer in pending {
            let control = GroupControl::SenderKey { roster: roster.clone(), key: key.clone() };
            match self.send_control(peer, Body::Group(control)).await {
                Ok(()) => given.push(peer.to_bytes()),
                Err(e) => tracing::info!(%peer, error = %e, "our group key did not reach a member"),
            }
        }
        let Ok(_held) = self.group_guard() else { return };
        if let Ok(Some(mut record)) = self.node.db().record::<GroupRecord>(GROUPS, &group) {
            // only if the key given is still the current one
            if record.sender.as_ref().is_some_and(|(_, r)| *r == revision) {
                record.given.extend(given);
                let _ = self.save_group(&record);
            }
        }
    }

    /// Leaves group `name`: the members are told (the admin removes us), and we stop taking its messages.
    ///
    /// # Errors
    /// No such group; the admin cannot leave its own group.
    pub async fn group_leave(&self, name: &str) -> Result<()> {
        let record = {
            let _held = self.group_guard()?;
            let mut record = self.group(name)?;
            if record.roster.roster.admin == self.node.peer_id().to_bytes() {
                return Err(
                    GroupRefusal::Admin("the admin cannot leave its own group: remove the members instead").into()
                );
            }
            if !record.active {
                return Err(GroupRefusal::NotMember(name.into()).into());
            }
            record.active = false;
            record.sender = None;
            self.save_group(&record)?;
            record
        };
        let me = self.node.peer_id();
        for peer in record.roster.roster.peers().into_iter().filter(|p| *p != me) {
            let _ =
                self.send_control(peer, Body::Group(GroupControl::Left { group: record.roster.roster.group })).await;
        }
        Ok(())
    }

    /// Sends `text` to group `name`: one encryption with our sender key, then to each member directly, else to its
    /// mailboxes.
    ///
    /// # Errors
    /// No such group, not a member, a text over [`MAX_TEXT_BYTES`], the database.
    pub async fn group_send(&self, name: &str, text: &str) -> Result<GroupSent> {
        if text.len() > MAX_TEXT_BYTES {
            bail!("message of {} bytes is over the {MAX_TEXT_BYTES}-byte limit", text.len());
        }
        let group = self.group(name)?.roster.roster.group;
        self.share_sender_key(group).await;
        let device = self.device_key().await;
        let (envelope, entry, members, ticket) = {
            let _held = self.group_guard()?;
            let mut record = self.node.db().record::<GroupRecord>(GROUPS, &group)?.context("the group is gone")?;
            if !record.active {
                return Err(GroupRefusal::NotMember(name.into()).into());
            }
            let mut sender = self.sender_key(&mut record)?;
            let now = bitdust_node::automata::now_ms();
            let plain = GroupPlain { id: rand::random(), sent_unix_ms: now, text: text.into() };
            let sealed = sender.encrypt(group, &e2e::pad(&wire::encode(&plain))?);
            record.sender = Some((sender.pickle(&self.pickle_key()), sender.revision));
            let index = record.next_index;
            record.next_index += 1;
            let entry = GroupEntry {
                from: self.node.peer_id().to_bytes(),
                id: plain.id,
                sent_unix_ms: now,
                at_unix_ms: now,
                text: plain.text,
            };
            let ((), ticket) = self.node.db().write_deferred(|tx| {
                tx.table(GROUPS)?.put(&group, &record)?;
                tx.table(GROUP_HISTORY)?.put(&history_key(&group, index), &entry)?;
                tx.table(GROUP_UNSYNCED)?.put(&history_key(&group, index), &entry)
            })?;
            let envelope =
                e2e::Envelope { device, message_type: GROUP_MESSAGE_TYPE, ciphertext: wire::encode(&sealed) };
            let me = self.node.peer_id();
            let members: Vec<PeerId> = record.roster.roster.peers().into_iter().filter(|p| *p != me).collect();
            (envelope, entry, members, ticket)
        };
        // on disk before it leaves: a crash never reuses a Megolm index
        self.durable(ticket).await?;
        self.group_event(&group, &entry);
        let outcomes = futures::stream::iter(members)
            .map(|peer| {
                let envelope = envelope.clone();
                async move {
                    match self.ask(peer, &Request::Deliver(envelope.clone())).await {
                        Ok(Response::Delivered) => 0,
                        _ if self.deposit(peer, &envelope).await > 0 => 1,
                        _ => 2,
                    }
                }
            })
            .buffer_unordered(FAN_OUT)
            .collect::<Vec<u8>>()
            .await;
        let count = |k| outcomes.iter().filter(|o| **o == k).count();
        Ok(GroupSent { entry, delivered: count(0), stored: count(1), missed: count(2) })
    }

    /// Group `name`'s history, oldest first, the last `limit` messages.
    ///
    /// # Errors
    /// No such group, the database.
    pub fn group_history(&self, name: &str, limit: usize) -> Result<Vec<GroupEntry>> {
        let record = self.group(name)?;
        let group = record.roster.roster.group;
        let first = record.next_index.saturating_sub(limit as u64);
        let after = first.checked_sub(1).map_or_else(|| group.to_vec(), |i| history_key(&group, i));
        let rows = self.node.db().records::<GroupEntry>(GROUP_HISTORY, Some(&after), limit)?;
        Ok(rows.into_iter().filter(|(k, _)| k.starts_with(&group) && k.len() == 24).map(|(_, e)| e).collect())
    }

    fn group_event(&self, group: &[u8; 16], entry: &GroupEntry) {
        let name = self
            .node
            .db()
            .record::<GroupRecord>(GROUPS, group)
            .ok()
            .flatten()
            .map_or_else(|| "?".into(), |g| g.roster.roster.name);
        let outgoing = entry.from == self.node.peer_id().to_bytes();
        self.node.events().push(bitdust_api::EventKind::Message {
            contact: format!("group:{name}"),
            peer: PeerId::from_bytes(&entry.from).map(|p| p.to_string()).unwrap_or_default(),
            outgoing,
            message_id: hex::encode(entry.id),
            state: if outgoing { "sent" } else { "received" }.into(),
        });
    }

    /// Takes a group control from the authenticated `peer` (decrypted from its Olm message).
    ///
    /// # Errors
    /// A roster not signed by the group's admin, older than the one held (a replay) or of a group we are not in;
    /// a key from a non-member.
    pub(crate) fn take_group_control(&self, peer: PeerId, control: GroupControl) -> Result<()> {
        let _held = self.group_guard()?;
        match control {
            GroupControl::Roster(signed) => self.take_roster(signed, true),
            GroupControl::SenderKey { roster, key } => {
                let group = roster.roster.group;
                // the roster it was made for, if newer than ours (an older one is no error here)
                self.take_roster(roster, false)?;
                let record =
                    self.node.db().record::<GroupRecord>(GROUPS, &group)?.context("a key for an unknown group")?;
                if !record.active || !record.roster.roster.is_member(&peer) {
                    bail!("a group key from a non-member");
                }
                let mut ring = self.keyring_of(&group, &peer)?;
                ring.add(&peer, &key)?;
                let pickles = KeyPickles(ring.pickles_of(&peer, &self.pickle_key()));
                self.node.db().write(|tx| {
                    tx.table(GROUP_KEYS)?.put(&key_of(&group, &peer), &pickles)?;
                    tx.table(GROUP_DIRTY)?.put(&group, &Mark(rand::random()))
                })?;
                Ok(())
            }
            GroupControl::History { group, messages } => self.take_past(peer, group, messages),
            GroupControl::Left { group } => {
                let record =
                    self.node.db().record::<GroupRecord>(GROUPS, &group)?.context("a leave of an unknown group")?;
                let me = self.node.peer_id();
                if record.roster.roster.is_member(&peer) && record.roster.roster.admin == me.to_bytes() && record.active
                {
                    if let Some(this) = self.this.upgrade() {
                        let id = hex::encode(group);
                        tokio::spawn(async move {
                            if let Err(e) = this.group_remove(&id, &peer.to_string()).await {
                                tracing::info!(%peer, error = %e, "cannot remove a member who left");
                            }
                        });
                    }
                }
                Ok(())
            }
        }
    }

    /// Takes a group's earlier messages from its admin `peer` (the caller holds the group lock): appended to its
    /// history, those held already skipped.
    fn take_past(&self, peer: PeerId, group: [u8; 16], messages: Vec<PastMessage>) -> Result<()> {
        let mut record =
            self.node.db().record::<GroupRecord>(GROUPS, &group)?.context("a history of an unknown group")?;
        if !record.active || record.roster.roster.admin != peer.to_bytes() {
            bail!("a group's history from someone not its admin");
        }
        if messages.len() > MAX_PAST_MESSAGES || messages.iter().map(|m| m.text.len()).sum::<usize>() > MAX_PAST_BYTES {
            bail!("a group history over the limits");
        }
        let now = bitdust_node::automata::now_ms();
        let me = self.node.peer_id();
        self.node.db().write(|tx| {
            let mut guard = tx.table(GUARD)?;
            let mut history = tx.table(GROUP_HISTORY)?;
            let mut unsynced = tx.table(GROUP_UNSYNCED)?;
            for m in messages {
                let Ok(author) = PeerId::from_bytes(&m.from) else { continue };
                let id_key = guard_key(&author, 2, &[&group[..], &m.id].concat());
                if author == me || guard.get::<Guarded>(&id_key)?.is_some() {
                    continue;
                }
                let entry =
                    GroupEntry { from: m.from, id: m.id, sent_unix_ms: m.sent_unix_ms, at_unix_ms: now, text: m.text };
                let key = history_key(&group, record.next_index);
                record.next_index += 1;
                history.put(&key, &entry)?;
                unsynced.put(&key, &entry)?;
                guard.put(&id_key, &Guarded(now))?;
            }
            drop((guard, history, unsynced));
            tx.table(GROUPS)?.put(&group, &record)
        })?;
        Ok(())
    }

    /// Takes `signed` if it is newer than the roster held for its group (the caller holds the group lock). An older
    /// or equal one is an error if `strict` (a replay), else ignored.
    fn take_roster(&self, signed: SignedRoster, strict: bool) -> Result<()> {
        let group = signed.roster.group;
        let held = self.node.db().record::<GroupRecord>(GROUPS, &group)?;
        if held.as_ref().is_some_and(|h| h.roster == signed) {
            return Ok(());
        }
        let roster = match signed.replaces(held.as_ref().map(|h| &h.roster.roster)) {
            Ok(r) => r.clone(),
            Err(crate::proto::groups::GroupError::Stale { .. }) if !strict => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let active = roster.is_member(&self.node.peer_id());
        if held.is_none() && !active {
            bail!("a roster of a group we are not in");
        }
        let mut record = match held {
            Some(mut h) => {
                let before = h.roster.roster.clone();
                h.roster = signed;
                // we stay out once we left (a roster may name us until the admin removes us); a member removed
                // earlier and added again is back in
                let left = !h.active && before.is_member(&self.node.peer_id());
                h.active = active && !left;
                if before.removes_from(&roster) {
                    self.rotate(&mut h, &before)?;
                }
                h
            }
            None => GroupRecord { roster: signed, sender: None, given: Vec::new(), next_index: 0, active },
        };
        if !record.active {
            record.sender = None;
        }
        let active = record.active;
        self.save_group(&record)?;
        if let Some(this) = self.this.upgrade() {
            tokio::spawn(async move {
                if active {
                    this.share_sender_key(group).await;
                }
                // our shares with the group follow its roster
                this.sync_group_shares(group).await;
            });
        }
        Ok(())
    }

    /// Takes a group message (an envelope of type [`GROUP_MESSAGE_TYPE`]) from the authenticated `peer`: `Ok(false)`
    /// for one taken already.
    ///
    /// # Errors
    /// Malformed, a group we are not in, a sender not a member or whose key we lack, a replay.
    pub(crate) fn take_group_message(&self, peer: PeerId, envelope: &e2e::Envelope) -> Result<bool> {
        let _held = self.group_guard()?;
        let sealed: GroupEnvelope = wire::decode(&envelope.ciphertext).map_err(anyhow::Error::msg)?;
        let group = sealed.group;
        let mut record =
            self.node.db().record::<GroupRecord>(GROUPS, &group)?.context("a message of an unknown group")?;
        if !record.active {
            bail!("a message of a group we left");
        }
        if !record.roster.roster.is_member(&peer) {
            bail!("a group message from a non-member");
        }
        let envelope_key = guard_key(&peer, 3, blake3::hash(&envelope.ciphertext).as_bytes());
        if self.node.db().record::<Guarded>(GUARD, &envelope_key)?.is_some() {
            return Ok(false);
        }
        let mut ring = self.keyring_of(&group, &peer)?;
        let (padded, _index) = ring.decrypt(&peer, &sealed)?;
        let plain: GroupPlain = wire::decode(e2e::unpad(&padded)?).map_err(anyhow::Error::msg)?;
        if plain.text.len() > MAX_TEXT_BYTES {
            bail!("message of {} bytes is over the limit", plain.text.len());
        }
        let id_key = guard_key(&peer, 2, &[&group[..], &plain.id].concat());
        if self.node.db().record::<Guarded>(GUARD, &id_key)?.is_some() {
            bail!("replayed group message");
        }
        let now = bitdust_node::automata::now_ms();
        let index = record.next_index;
        record.next_index += 1;
        let entry = GroupEntry {
            from: peer.to_bytes(),
            id: plain.id,
            sent_unix_ms: plain.sent_unix_ms,
            at_unix_ms: now,
            text: plain.text,
        };
        let pickles = KeyPickles(ring.pickles_of(&peer, &self.pickle_key()));
        self.node.db().write(|tx| {
            tx.table(GROUPS)?.put(&group, &record)?;
            tx.table(GROUP_KEYS)?.put(&key_of(&group, &peer), &pickles)?;
            tx.table(GROUP_HISTORY)?.put(&history_key(&group, index), &entry)?;
            tx.table(GROUP_UNSYNCED)?.put(&history_key(&group, index), &entry)?;
            let mut guard = tx.table(GUARD)?;
            guard.put(&id_key, &Guarded(now))?;
            guard.put(&envelope_key, &Guarded(now))
        })?;
        drop(_held);
        self.group_event(&group, &entry);
        Ok(true)
    }
}
