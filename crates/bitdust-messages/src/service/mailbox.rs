//! Mailboxes on suppliers: while a recipient is offline, its messages wait, sealed, on its own suppliers (the
//! peers in its signed supplier list), until it collects and acknowledges them.
//!
//! - A sender that cannot deliver directly looks the recipient's supplier list up in the DHT and deposits the
//!   envelope (already end-to-end encrypted) with every supplier that takes it (the message is "stored" in that
//!   many mailboxes).
//! - A node keeps envelopes only for users whose current supplier list names it (checked in the DHT, remembered
//!   for [`HOLDER_CHECK_TTL`]), within a quota per recipient ([`MAILBOX_BYTES`], [`MAILBOX_ITEMS`]) and per sender
//!   and recipient for strangers ([`STRANGER_ITEMS`]); envelopes not collected within [`MAIL_TTL`] are dropped.
//! - The recipient tells its mailboxes who its contacts are (a tag per contact, [`pow::contact_tag`]), on start
//!   and when they change: a contact's deposit needs no proof of work and is bounded only by the mailbox.
//! - The recipient collects from each of its suppliers once it is announced and then every [`COLLECT_PERIOD`],
//!   takes each envelope like a direct one (a copy from a second mailbox is recognised and skipped), and
//!   acknowledges; the supplier deletes what is acknowledged.
//!
//! A stranger's deposit carries a proof of work ([`crate::proto::pow`], about 2^16 hashes): spam costs CPU per
//! message (senders always attach one: they cannot know whether the recipient counts them as contacts).
//!
//! A supplier sees the sender, the recipient, the time and one of the padded sizes; never the text.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bitdust_core::record::{RecordKind, SupplierList};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use crate::proto::e2e::Envelope;
use crate::proto::pow;
use crate::proto::wire::{MailItem, Request, Response, MAX_COLLECT, MAX_MAILBOX_CONTACTS};
use crate::service::Messages;

/// Bytes of envelopes one recipient's mailbox holds here.
pub const MAILBOX_BYTES: u64 = 16 << 20;
/// Envelopes one recipient's mailbox holds here.
pub const MAILBOX_ITEMS: u64 = 4096;
/// Envelopes one stranger (not in the recipient's contacts) may have waiting in its mailbox here.
pub const STRANGER_ITEMS: u64 = 64;
/// How long an envelope waits to be collected.
pub const MAIL_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long "I am (not) among this user's suppliers" is believed.
pub const HOLDER_CHECK_TTL: Duration = Duration::from_secs(300);
/// How often a node collects its mail.
pub const COLLECT_PERIOD: Duration = Duration::from_secs(30);

const MAILBOX: &str = "messages/mailbox";
const MAILBOX_META: &str = "messages/mailbox-meta";
/// Per recipient: the tags of its contacts ([`Request::MailboxContacts`]).
const MAILBOX_CONTACTS: &str = "messages/mailbox-contacts";

/// A recipient's contact tags, sorted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ContactTags(Vec<[u8; 32]>);

impl Versioned for ContactTags {
    const FORMAT: u16 = 1;
}

/// A mailbox's counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    next_index: u64,
    bytes: u64,
    items: u64,
    /// Per sender (peer id bytes): items waiting.
    per_sender: Vec<(Vec<u8>, u64)>,
}

impl Versioned for Meta {
    const FORMAT: u16 = 1;
}

impl Versioned for MailItem {
    const FORMAT: u16 = 1;
}

fn item_key(recipient: &[u8], index: u64) -> Vec<u8> {
    let mut k = recipient.to_vec();
    k.extend(index.to_be_bytes());
    k
}

fn size_of(item: &MailItem) -> u64 {
    (item.envelope.ciphertext.len() + item.envelope.device.signature.len() + 128) as u64
}

/// Remembered answers to "am I among this user's suppliers?".
#[derive(Default)]
pub(crate) struct HolderCache(HashMap<PeerId, (bool, Instant)>);

impl Messages {
    /// The suppliers of `user`, from its signed supplier list in the DHT.
    async fn suppliers_of(&self, user: PeerId) -> Vec<PeerId> {
        match self.node.network().get_record(RecordKind::Suppliers, user).await {
            Ok(rec) => SupplierList::decode(&rec.payload).map(|l| l.peers()).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// Deposits `envelope` for `recipient` with every supplier of it that takes it; returns how many did.
    pub(crate) async fn deposit(&self, recipient: PeerId, envelope: &Envelope) -> u8 {
        let suppliers = self.suppliers_of(recipient).await;
        let (r, s, c) = (recipient.to_bytes(), self.node.peer_id().to_bytes(), envelope.ciphertext.clone());
        let pow = tokio::task::spawn_blocking(move || pow::solve(&r, &s, &c, pow::DEPOSIT_BITS)).await.unwrap_or(0);
        let request = Request::Deposit { recipient: recipient.to_bytes(), envelope: envelope.clone(), pow };
        let asks = suppliers.iter().filter(|s| **s != self.node.peer_id()).map(|s| self.ask(*s, &request));
        let answers = futures::future::join_all(asks).await;
        let mut stored = answers.iter().filter(|a| matches!(a, Ok(Response::Stored))).count();
        if suppliers.contains(&self.node.peer_id()) {
            // we are one of its suppliers ourselves: our own mailbox for it takes the envelope too
            let Request::Deposit { recipient: r, envelope, pow } = request else { return 0 };
            if matches!(self.host_deposit(self.node.peer_id(), &r, envelope, pow).await, Response::Stored) {
                stored += 1;
            }
        }
        let errors: Vec<String> = answers
            .iter()
            .filter(|a| !matches!(a, Ok(Response::Stored)))
            .map(|a| match a {
                Ok(other) => format!("{other:?}"),
                Err(e) => format!("{e:#}"),
            })
            .collect();
        tracing::info!(%recipient, stored, of = suppliers.len(), ?errors, "message left in mailboxes");
        u8::try_from(stored).unwrap_or(u8::MAX)
    }

    /// Whether this node is among `recipient`'s suppliers (asked of the DHT at most every [`HOLDER_CHECK_TTL`]).
    async fn holds_mail_for(&self, recipient: PeerId) -> bool {
        if let Ok(cache) = self.holders.lock() {
            if let Some((yes, at)) = cache.0.get(&recipient) {
                if at.elapsed() < HOLDER_CHECK_TTL {
                    return *yes;
                }
            }
        }
        let yes = self.suppliers_of(recipient).await.contains(&self.node.peer_id());
        if let Ok(mut cache) = self.holders.lock() {
            if cache.0.len() > 10_000 {
                cache.0.clear();
            }
            cache.0.insert(recipient, (yes, Instant::now()));
        }
        yes
    }

    /// A sender's `Deposit`.
    pub(crate) async fn host_deposit(
        &self,
        sender: PeerId,
        recipient: &[u8],
        envelope: Envelope,
        nonce: u64,
    ) -> Response {
        let refuse = |why: &str| Response::Error(format!("not kept: {why}"));
        let tag = pow::contact_tag(recipient, &sender.to_bytes());
        let contact = match self.node.db().record::<ContactTags>(MAILBOX_CONTACTS, recipient) {
            Ok(tags) => tags.is_some_and(|t| t.0.binary_search(&tag).is_ok()),
            Err(e) => return Response::Error(format!("not kept: {e}")),
        };
        if !contact && !pow::check(recipient, &sender.to_bytes(), &envelope.ciphertext, nonce, pow::DEPOSIT_BITS) {
            return refuse("no proof of work");
        }
        let Ok(recipient) = PeerId::from_bytes(recipient) else { return refuse("the recipient is not a peer id") };
        if recipient == sender || envelope.device.verify(&sender).is_err() {
            return refuse("the envelope is not the sender's");
        }
        if !self.holds_mail_for(recipient).await {
            return refuse("this node is not one of the recipient's suppliers");
        }
        let _g = self.mailbox.lock().await;
        let rkey = recipient.to_bytes();
        let item = MailItem { index: 0, from: sender.to_bytes(), at_unix: bitdust_node::home::unix_now(), envelope };
        let stored = self.node.db().write(|tx| {
            let mut meta_table = tx.table(MAILBOX_META)?;
            let mut meta = meta_table.get::<Meta>(&rkey)?.unwrap_or_default();
            let size = size_of(&item);
            let from_sender = meta.per_sender.iter().find(|(s, _)| *s == item.from).map_or(0, |(_, n)| *n);
            let share_spent = !contact && from_sender >= STRANGER_ITEMS;
            if meta.bytes + size > MAILBOX_BYTES || meta.items >= MAILBOX_ITEMS || share_spent {
                return Ok(false);
            }
            meta.next_index += 1;
            let item = MailItem { index: meta.next_index, ..item.clone() };
            meta.bytes += size;
            meta.items += 1;
            match meta.per_sender.iter_mut().find(|(s, _)| *s == item.from) {
                Some((_, n)) => *n += 1,
                None => meta.per_sender.push((item.from.clone(), 1)),
            }
            tx.table(MAILBOX)?.put(&item_key(&rkey, item.index), &item)?;
            meta_table.put(&rkey, &meta)?;
            Ok(true)
        });
        match stored {
            Ok(true) => Response::Stored,
            Ok(false) => refuse("the mailbox is full (or this sender's share of it)"),
            Err(e) => Response::Error(format!("not kept: {e}")),
        }
    }

    /// The recipient's `MailboxContacts`: kept if this node holds its mail.
    pub(crate) async fn host_contacts(&self, recipient: PeerId, mut tags: Vec<[u8; 32]>) -> Response {
        if tags.len() > MAX_MAILBOX_CONTACTS {
            return Response::Error(format!("more than {MAX_MAILBOX_CONTACTS} contacts"));
        }
        if !self.holds_mail_for(recipient).await {
            return Response::Error("not kept: this node is not one of your suppliers".into());
        }
        tags.sort_unstable();
        tags.dedup();
        match self.node.db().write(|tx| tx.table(MAILBOX_CONTACTS)?.put(&recipient.to_bytes(), &ContactTags(tags))) {
            Ok(()) => Response::Stored,
            Err(e) => Response::Error(e.to_string()),
        }
    }

    /// Tells each of our suppliers (our mailboxes) who our contacts are, if that changed since they were last told
    /// (or `force`). Returns how many took the list.
    pub async fn push_mailbox_contacts(&self, force: bool) -> usize {
        let me = self.node.peer_id().to_bytes();
        let Ok(book) = self.contacts() else { return 0 };
        let tags: Vec<[u8; 32]> = book.contacts.iter().map(|c| pow::contact_tag(&me, &c.peer_id)).collect();
        let digest = *blake3::hash(&tags.concat()).as_bytes();
        let suppliers = self.suppliers_of(self.node.peer_id()).await;
        let told = self.told.lock().map(|t| t.clone()).unwrap_or_default();
        let request = Request::MailboxContacts(tags);
        let mut took = 0;
        for supplier in suppliers {
            if !force && told.get(&supplier) == Some(&digest) {
                continue;
            }
            if matches!(self.ask(supplier, &request).await, Ok(Response::Stored)) {
                took += 1;
                if let Ok(mut t) = self.told.lock() {
                    t.insert(supplier, digest);
                }
            }
        }
        took
    }

    /// The recipient's `Collect`: its envelopes after `after`, expired ones left out (and dropped at the next ack).
    pub(crate) fn host_collect(&self, recipient: PeerId, after: u64, limit: u32) -> Response {
        let rkey = recipient.to_bytes();
        let oldest = bitdust_node::home::unix_now().saturating_sub(MAIL_TTL.as_secs());
        let from = item_key(&rkey, after);
        match self.node.db().records::<MailItem>(MAILBOX, Some(&from), limit.min(MAX_COLLECT) as usize) {
            Ok(rows) => Response::Mail(
                rows.into_iter()
                    .filter(|(k, _)| k.starts_with(&rkey) && k.len() == rkey.len() + 8)
                    .map(|(_, item)| item)
                    .filter(|item| item.at_unix >= oldest)
                    .collect(),
            ),
            Err(e) => Response::Error(e.to_string()),
        }
    }

    /// The recipient's `Ack`: deletes those envelopes (and any expired ones of its mailbox).
    pub(crate) fn host_ack(&self, recipient: PeerId, indexes: &[u64]) -> Response {
        let rkey = recipient.to_bytes();
        let done = self.node.db().write(|tx| {
            let mut items = tx.table(MAILBOX)?;
            let mut meta_table = tx.table(MAILBOX_META)?;
            let mut meta = meta_table.get::<Meta>(&rkey)?.unwrap_or_default();
            for index in indexes.iter().take(MAX_COLLECT as usize * 4) {
                let key = item_key(&rkey, *index);
                if let Some(item) = items.get::<MailItem>(&key)? {
                    items.remove(&key)?;
                    meta.bytes = meta.bytes.saturating_sub(size_of(&item));
                    meta.items = meta.items.saturating_sub(1);
                    if let Some((_, n)) = meta.per_sender.iter_mut().find(|(s, _)| *s == item.from) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            meta.per_sender.retain(|(_, n)| *n > 0);
            meta_table.put(&rkey, &meta)
        });
        match done {
            Ok(()) => Response::Acked,
            Err(e) => Response::Error(e.to_string()),
        }
    }

    /// Envelopes waiting here for `recipient` (for status and tests).
    ///
    /// # Errors
    /// The database.
    pub fn mailbox_items(&self, recipient: &PeerId) -> anyhow::Result<u64> {
        Ok(self.node.db().record::<Meta>(MAILBOX_META, &recipient.to_bytes())?.map_or(0, |m| m.items))
    }

    /// Collects our mail from every supplier once: takes each envelope like a direct one and acknowledges it.
    /// Returns the messages taken.
    pub async fn collect_mail(&self) -> usize {
        let mut taken = 0;
        for supplier in self.suppliers_of(self.node.peer_id()).await {
            let mut after = 0;
            loop {
                let Ok(Response::Mail(items)) =
                    self.ask(supplier, &Request::Collect { after, limit: MAX_COLLECT }).await
                else {
                    break;
                };
                let Some(last) = items.last() else { break };
                after = last.index;
                let mut done = Vec::with_capacity(items.len());
                let mut last_ticket = None;
                for item in &items {
                    match PeerId::from_bytes(&item.from) {
                        Ok(from) => match self.receive(from, &item.envelope).await {
                            Ok(Some(ticket)) => {
                                taken += 1;
                                last_ticket = Some(ticket);
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::info!(%from, error = %e, "mailbox message refused");
                                self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        },
                        Err(_) => {
                            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    done.push(item.index);
                }
                // what is acknowledged is deleted from the mailbox: on our disk first
                if let Some(t) = last_ticket {
                    if self.durable(t).await.is_err() {
                        break;
                    }
                }
                if !matches!(self.ask(supplier, &Request::Ack(done)).await, Ok(Response::Acked)) {
                    break;
                }
            }
        }
        taken
    }
}

/// Collects mail once the node is announced, then every [`COLLECT_PERIOD`].
pub(crate) async fn collect_loop(messages: std::sync::Weak<Messages>) {
    loop {
        let Some(m) = messages.upgrade() else { return };
        if m.node.network().is_stopped() {
            return;
        }
        let pause = if m.node.is_announced() {
            m.push_mailbox_contacts(false).await;
            let n = m.collect_mail().await;
            if n > 0 {
                tracing::info!(messages = n, "mail collected");
            }
            COLLECT_PERIOD
        } else {
            Duration::from_millis(250)
        };
        drop(m);
        tokio::time::sleep(pause).await;
    }
}
