//! Private messages between online nodes: sent end-to-end encrypted ([`crate::proto::e2e`]) on
//! `/bitdust/messages/1`, kept per conversation in the node database.
//!
//! ```text
//! node database
//!   messages/account           the Olm account (pickled, encrypted under a key derived from the master secret)
//!   messages/sessions  peer -> its Olm sessions, newest first (pickled, encrypted)
//!   messages/peers     peer -> next history index, last sequence number sent
//!   messages/guard     peer ‖ kind ‖ id -> when: message ids and envelope digests taken (the replay guard)
//!   messages/history   peer ‖ index -> one message, in the order it was sent or received here
//! ```
//!
//! Sending persists the advanced ratchet, the sequence number and the history entry in one transaction before the
//! envelope leaves (a crash never reuses a message key); envelopes for one peer queued at about the same time go
//! together (a per-peer courier: one `DeliverMany` request). Receiving decrypts, checks the replay guard and stores
//! a request's envelopes in one transaction before it answers `Delivered`, requests one at a time, so a sender's
//! messages are kept in its order.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use bitdust_core::record::{RecordKind, SignedRecord};
use bitdust_core::PeerId;
use bitdust_net::{Frame, Inbound, ProtocolSpec};
use bitdust_node::Node;
use bitdust_store::{SyncTicket, Versioned};
use libp2p::StreamProtocol;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use vodozemac::olm::Session;

use crate::proto::e2e::{self, Device, E2eError};
use crate::proto::wire::{self, Body, Plain, Request, Response, MAX_TEXT_BYTES, MESSAGES_PROTOCOL};
use crate::service::Messages;

const ACCOUNT_KEY: &str = "messages/account";
const SESSIONS: &str = "messages/sessions";
pub(crate) const PEERS: &str = "messages/peers";
pub(crate) const HISTORY: &str = "messages/history";
/// The replay guard: the ids of messages taken and the digests of envelopes taken, per peer ([`guard_key`]).
pub(crate) const GUARD: &str = "messages/guard";
/// How many of a conversation's last entries a read receipt (or marking read) looks through.
const RECEIPT_WINDOW: u64 = 4096;
/// How long the replay guard remembers a message: twice the longest a mailbox keeps one (an older envelope is
/// refused by the mailboxes, and its message keys are long used up in the ratchet).
pub const GUARD_TTL: std::time::Duration = std::time::Duration::from_secs(62 * 24 * 3600);
/// Inbound requests queued before the network answers "busy".
const INBOUND_CAPACITY: usize = 256;

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The contact's key changed and the user has not confirmed it.
    #[error("not sent: {0}; compare safety numbers with `bitdust contacts verify {1}` first")]
    KeyChanged(String, String),
    /// No session yet, and the contact does not answer for one.
    #[error("{0} does not answer and has never talked with us: no session to encrypt with ({1})")]
    Unreachable(String, String),
}

/// How long a presence question waits for its answer.
pub const PRESENCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// How often contacts are asked whether they are online.
pub const PRESENCE_PERIOD: std::time::Duration = std::time::Duration::from_secs(60);

/// A contact's presence as this node knows it (never published: asked of the contact, answered to contacts only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presence {
    /// Whether it answered the last question, or wrote since.
    pub online: bool,
    /// When it was last heard from, Unix seconds (0: never).
    pub last_seen_unix: u64,
}

/// The pickled account.
#[derive(Serialize, Deserialize)]
struct AccountPickle(String);

impl Versioned for AccountPickle {
    const FORMAT: u16 = 1;
}

/// The prekey published in the DHT, and when it was made.
#[derive(Serialize, Deserialize)]
struct PublishedPrekey {
    prekey: e2e::Prekey,
    created_unix: u64,
}

impl Versioned for PublishedPrekey {
    const FORMAT: u16 = 1;
}

/// Where the published prekey is kept.
const PUBLISHED_PREKEY: &str = "messages/published_prekey";
/// How long one published prekey is used before a new one replaces it.
pub const PREKEY_LIFETIME: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);
/// How often the prekey record is published again (DHT records expire).
pub const PREKEY_REPUBLISH: std::time::Duration = std::time::Duration::from_secs(3600);

/// A peer's sessions, pickled, newest first.
#[derive(Serialize, Deserialize, Default)]
struct SessionPickles(Vec<String>);

impl Versioned for SessionPickles {
    const FORMAT: u16 = 1;
}

/// What we keep per peer besides sessions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PeerState {
    /// Index of the next history entry of this conversation.
    pub(crate) next_index: u64,
    /// Sequence number of our last message to it.
    pub(crate) next_seq: u64,
}

/// Format 1 of [`PeerState`]: the replay guard was two lists in it (read and written whole with every message).
#[derive(Deserialize)]
struct PeerStateV1 {
    next_index: u64,
    next_seq: u64,
    #[allow(dead_code)]
    seen: Vec<[u8; 16]>,
    #[allow(dead_code)]
    envelopes: Vec<[u8; 32]>,
}

impl Versioned for PeerState {
    const FORMAT: u16 = 2;

    fn migrate(format: u16, bytes: &[u8]) -> Result<Self, String> {
        match format {
            1 => {
                let v1: PeerStateV1 = postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
                Ok(Self { next_index: v1.next_index, next_seq: v1.next_seq })
            }
            _ => Err(format!("unknown format {format}")),
        }
    }
}

/// When a replay guard entry was written, Unix milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct Guarded(pub(crate) u64);

impl Versioned for Guarded {
    const FORMAT: u16 = 1;
}

/// The replay guard's key: peer id bytes ‖ kind (0: a message id, 1: an envelope's BLAKE3) ‖ the id or digest.
pub(crate) fn guard_key(peer: &PeerId, kind: u8, id: &[u8]) -> Vec<u8> {
    let mut k = peer.to_bytes();
    k.push(kind);
    k.extend_from_slice(id);
    k
}

/// Where a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Encrypted and stored here; not (yet) acknowledged by the recipient.
    Sent,
    /// Not reachable: left in the recipient's mailboxes (on its suppliers), `Entry::mailboxes` of them.
    Stored,
    /// The recipient decrypted and stored it.
    Delivered,
    /// Received from the peer.
    Received,
    /// Read: an outgoing message the recipient has shown (its receipt came back), or an incoming one shown here.
    Read,
}

impl State {
    /// Its name for people and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Stored => "stored",
            Self::Delivered => "delivered",
            Self::Received => "received",
            Self::Read => "read",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Whether we wrote it.
    pub outgoing: bool,
    /// Its id.
    pub id: [u8; 16],
    /// The writer's sequence number.
    pub seq: u64,
    /// When the writer wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// When it was stored here, Unix milliseconds.
    pub at_unix_ms: u64,
    /// The text.
    pub text: String,
    /// Where it is.
    pub state: State,
    /// Mailboxes it was left in (when the recipient was not reachable).
    pub mailboxes: u8,
}

impl Versioned for Entry {
    const FORMAT: u16 = 1;
}

/// The history table's key of `peer`'s entry `index`: peer id bytes ‖ index (big-endian, so entries sort in order).
pub(crate) fn history_key(peer: &PeerId, index: u64) -> Vec<u8> {
    let mut k = peer.to_bytes();
    k.extend(index.to_be_bytes());
    k
}

/// Writes history entry `index` of `peer` and marks it for the next history segment
/// ([`crate::service::history`]).
fn put_entry(
    tx: &bitdust_store::Txn<'_>,
    peer: &PeerId,
    index: u64,
    entry: &Entry,
) -> Result<(), bitdust_store::NodeDbError> {
    let key = history_key(peer, index);
    tx.table(HISTORY)?.put(&key, entry)?;
    tx.table(crate::service::history::UNSYNCED)?.put(&key, entry)
}

fn now_ms() -> u64 {
    bitdust_node::automata::now_ms()
}

/// The `/bitdust/messages/1` protocol as registered with the network.
pub fn protocol_spec() -> ProtocolSpec {
    let mut spec = ProtocolSpec::new(
        StreamProtocol::new(MESSAGES_PROTOCOL),
        wire::MAX_MESSAGE_BYTES + 256,
        wire::MAX_RESPONSE_BYTES,
        INBOUND_CAPACITY,
        Frame::one(wire::encode(&Response::Error("busy, retry".into()))),
    );
    spec.request_kinds = wire::request_limit;
    spec.response_kinds = wire::response_limit;
    spec
}

/// What a batch of envelopes from one peer stores, gathered before the one transaction that writes it.
struct Stage {
    /// The peer's sessions, advanced by each envelope decrypted.
    sessions: Vec<Session>,
    /// Its history counters.
    state: PeerState,
    /// A pre-key message changed the account.
    account: bool,
    /// Replay guard keys of what was taken (none: nothing to write).
    guards: Vec<Vec<u8>>,
    /// New history entries, with their indexes.
    entries: Vec<(u64, Entry)>,
    /// Outgoing entries a read receipt marked read, with their indexes.
    read: Vec<(u64, Entry)>,
    /// File offers taken.
    offers: Vec<crate::proto::files::FileOffer>,
    /// Transfers the peer has fetched from our suppliers.
    fetched: Vec<[u8; 16]>,
    /// When the batch was taken, Unix milliseconds.
    now: u64,
}

impl Stage {
    fn load(m: &Messages, crypto: &Crypto, peer: &PeerId) -> Result<Self> {
        Ok(Self {
            sessions: crypto.sessions(&m.node, peer)?,
            state: m.node.db().record::<PeerState>(PEERS, &peer.to_bytes())?.unwrap_or_default(),
            account: false,
            guards: Vec::new(),
            entries: Vec::new(),
            read: Vec::new(),
            offers: Vec::new(),
            fetched: Vec::new(),
            now: now_ms(),
        })
    }

    /// Whether the replay guard holds `key`, on disk or in this batch.
    fn guarded(&self, m: &Messages, key: &[u8]) -> Result<bool> {
        Ok(self.guards.iter().any(|k| k == key) || m.node.db().record::<Guarded>(GUARD, key)?.is_some())
    }
}

/// Messages waiting for one peer's courier, at most this many (more are refused: try again).
const COURIER_QUEUE: usize = 1024;

/// A message for a peer's courier to seal and carry.
struct Parcel {
    id: [u8; 16],
    body: Body,
    /// What the history shows.
    text: String,
    /// A prekey to start a session with, if there was none when it was queued.
    prekey: Option<e2e::Prekey>,
}

/// A message sealed and carried: its history entry and index, its plaintext and envelope (to seal again or leave in
/// the mailboxes), and the peer's answer.
struct Sealed {
    entry: Entry,
    index: u64,
    plain: Plain,
    envelope: e2e::Envelope,
    answer: Result<Response>,
}

/// Messages to one peer waiting to go (each with where its outcome goes), and whether a courier task is carrying
/// them.
#[derive(Default)]
pub(crate) struct Courier {
    queue: std::collections::VecDeque<(Parcel, tokio::sync::oneshot::Sender<Result<Sealed>>)>,
    flying: bool,
}

impl Messages {
    /// Seals `parcel` for `peer` and delivers it, together with the others sent to it at about the same time: the
    /// first starts a courier task, which carries the queue until it is empty, up to [`wire::MAX_BATCH`] at a
    /// time: one lock, one transaction and one flush to seal them, one `DeliverMany` (a message alone goes in its
    /// own `Deliver`, at once, as before), one transaction for their `delivered` marks.
    ///
    /// # Errors
    /// [`COURIER_QUEUE`] messages wait for this peer already, or the message could not be sealed and stored (no
    /// session, the database). A failed delivery is not an error: see [`Sealed::answer`].
    async fn send_parcel(&self, peer: PeerId, parcel: Parcel) -> Result<Sealed> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = {
            let mut couriers = self.couriers.lock().map_err(|_| anyhow::anyhow!("the courier lock is poisoned"))?;
            let courier = couriers.entry(peer).or_default();
            if courier.queue.len() >= COURIER_QUEUE {
                None
            } else {
                courier.queue.push_back((parcel, tx));
                Some(!std::mem::replace(&mut courier.flying, true))
            }
        };
        match start {
            None => bail!("{COURIER_QUEUE} messages are waiting for this contact already: try again"),
            Some(true) => match self.this.upgrade() {
                Some(this) => drop(tokio::spawn(async move { this.carry(peer).await })),
                None => self.carry(peer).await,
            },
            Some(false) => {}
        }
        rx.await.unwrap_or_else(|_| Err(anyhow::anyhow!("the message was dropped")))
    }

    /// The courier of `peer`: seals and carries its queue until it is empty, then ends.
    async fn carry(&self, peer: PeerId) {
        loop {
            let (parcels, replies): (Vec<Parcel>, Vec<_>) = {
                let Ok(mut couriers) = self.couriers.lock() else { return };
                let Some(courier) = couriers.get_mut(&peer) else { return };
                let n = courier.queue.len().min(wire::MAX_BATCH);
                if n == 0 {
                    couriers.remove(&peer);
                    return;
                }
                courier.queue.drain(..n).unzip()
            };
            let mut outcomes = self.seal(peer, parcels).await;
            let envelopes: Vec<e2e::Envelope> = outcomes.iter().flatten().map(|s| s.envelope.clone()).collect();
            let mut answers = self.carry_all(peer, envelopes).await.into_iter();
            for sealed in outcomes.iter_mut().flatten() {
                sealed.answer = answers.next().unwrap_or_else(|| Err(anyhow::anyhow!("no answer")));
            }
            let marks: Vec<(u64, Entry)> = outcomes
                .iter()
                .flatten()
                .filter(|s| matches!(s.answer, Ok(Response::Delivered)))
                .map(|s| (s.index, Entry { state: State::Delivered, ..s.entry.clone() }))
                .collect();
            self.write_marks(peer, &marks);
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
        }
    }

    /// Encrypts `parcels` for `peer` under one hold of the lock and stores the advanced ratchet, the sequence
    /// numbers and their history entries in one transaction, on disk before it returns (a crash never reuses a
    /// message key). The outcome of each, in order (not sent yet).
    async fn seal(&self, peer: PeerId, parcels: Vec<Parcel>) -> Vec<Result<Sealed>> {
        let n = parcels.len();
        let all_failed = |e: anyhow::Error| (0..n).map(|_| Err(anyhow::anyhow!("{e:#}"))).collect();
        let crypto = self.crypto.lock().await;
        let loaded = crypto.sessions(&self.node, &peer).and_then(|sessions| {
            let state = self.node.db().record::<PeerState>(PEERS, &peer.to_bytes())?.unwrap_or_default();
            Ok((sessions, state))
        });
        let (mut sessions, mut state) = match loaded {
            Ok(loaded) => loaded,
            Err(e) => return all_failed(e),
        };
        let device = crypto.device.device_key(self.node.keys());
        let mut outcomes: Vec<Result<Sealed>> = Vec::with_capacity(n);
        for parcel in parcels {
            let mut seal_one = || -> Result<Sealed> {
                if sessions.is_empty() {
                    let prekey = parcel.prekey.as_ref().context("no session and no prekey")?;
                    sessions.push(crypto.device.outbound(&peer, prekey)?);
                }
                let plain =
                    Plain { id: parcel.id, seq: state.next_seq + 1, sent_unix_ms: now_ms(), body: parcel.body.clone() };
                let envelope = e2e::encrypt(&mut sessions[0], &device, &e2e::pad(&wire::encode(&plain))?)?;
                state.next_seq += 1;
                let index = state.next_index;
                state.next_index += 1;
                let entry = Entry {
                    outgoing: true,
                    id: plain.id,
                    seq: plain.seq,
                    sent_unix_ms: plain.sent_unix_ms,
                    at_unix_ms: plain.sent_unix_ms,
                    text: parcel.text.clone(),
                    state: State::Sent,
                    mailboxes: 0,
                };
                Ok(Sealed { entry, index, plain, envelope, answer: Err(anyhow::anyhow!("not sent")) })
            };
            outcomes.push(seal_one());
        }
        if outcomes.iter().flatten().next().is_none() {
            return outcomes;
        }
        let pickles = crypto.pickles(&sessions);
        let written = self.node.db().write_deferred(|tx| {
            tx.table(SESSIONS)?.put(&peer.to_bytes(), &pickles)?;
            tx.table(PEERS)?.put(&peer.to_bytes(), &state)?;
            outcomes.iter().flatten().try_for_each(|s| put_entry(tx, &peer, s.index, &s.entry))
        });
        drop(crypto);
        // on disk before the envelopes leave; concurrent writers share a flush
        let durable = match written {
            Ok(((), ticket)) => self.durable(ticket).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = durable {
            return all_failed(e);
        }
        for sealed in outcomes.iter().flatten() {
            self.event(&peer, &sealed.entry);
        }
        outcomes
    }

    /// Delivers `envelopes` to `peer` in as few requests as fit; the answer to each, in order.
    async fn carry_all(&self, peer: PeerId, mut envelopes: Vec<e2e::Envelope>) -> Vec<Result<Response>> {
        let mut answers = Vec::with_capacity(envelopes.len());
        while !envelopes.is_empty() {
            let mut bytes = wire::batch_bytes([]);
            let mut n = 0;
            for e in &envelopes {
                bytes += wire::batch_bytes([e]) - wire::batch_bytes([]);
                if n > 0 && bytes > wire::MAX_MESSAGE_BYTES {
                    break;
                }
                n += 1;
            }
            let rest = envelopes.split_off(n);
            answers.extend(self.carry_batch(peer, std::mem::replace(&mut envelopes, rest)).await);
        }
        answers
    }

    /// Delivers `envelopes` to `peer` in one request; the answer to each, in order.
    async fn carry_batch(&self, peer: PeerId, mut envelopes: Vec<e2e::Envelope>) -> Vec<Result<Response>> {
        let n = envelopes.len();
        if n == 1 {
            if let Some(envelope) = envelopes.pop() {
                return vec![self.ask(peer, &Request::Deliver(envelope)).await];
            }
        }
        match self.ask(peer, &Request::DeliverMany(envelopes.clone())).await {
            Ok(Response::DeliveredMany(answers)) if answers.len() == n => answers.into_iter().map(Ok).collect(),
            Ok(other) => {
                // a peer that does not take batches (or refused this one): one at a time
                tracing::debug!(%peer, answer = ?other, "a batch not taken: delivering one at a time");
                let mut answers = Vec::with_capacity(n);
                for envelope in envelopes {
                    answers.push(self.ask(peer, &Request::Deliver(envelope)).await);
                }
                answers
            }
            Err(e) => (0..n).map(|_| Err(anyhow::anyhow!("{e:#}"))).collect(),
        }
    }

    /// Writes the history entries `marks` of `peer` (delivered marks) in one transaction. A mark may be lost in a
    /// crash (the message then shows as sent): it does not wait for the disk.
    fn write_marks(&self, peer: PeerId, marks: &[(u64, Entry)]) {
        if marks.is_empty() {
            return;
        }
        if let Err(e) = self.node.db().write_lazy(|tx| marks.iter().try_for_each(|(i, e)| put_entry(tx, &peer, *i, e)))
        {
            tracing::warn!(%peer, error = %e, "cannot mark messages delivered");
        }
    }
}
/// The Olm side of the wing: this node's account, behind a lock with the sessions (one change at a time).
pub(crate) struct Crypto {
    device: Device,
    pickle_key: [u8; 32],
}

impl Crypto {
    /// The account of `node`, or a new one (saved).
    pub(crate) fn load(node: &Node) -> Result<Self> {
        let pickle_key = node.keys().master().derive("bitdust 2026-12 olm pickle key v1", b"");
        let device = match node.db().get::<AccountPickle>(ACCOUNT_KEY)? {
            Some(p) => Device::unpickle(&p.0, &pickle_key).context("the Olm account in the node database")?,
            None => {
                let d = Device::new();
                node.db().put(ACCOUNT_KEY, &AccountPickle(d.pickle(&pickle_key)))?;
                d
            }
        };
        Ok(Self { device, pickle_key })
    }

    fn sessions(&self, node: &Node, peer: &PeerId) -> Result<Vec<Session>> {
        let pickles = node.db().record::<SessionPickles>(SESSIONS, &peer.to_bytes())?.unwrap_or_default();
        Ok(pickles.0.iter().filter_map(|p| e2e::unpickle_session(p, &self.pickle_key).ok()).collect())
    }

    fn pickles(&self, sessions: &[Session]) -> SessionPickles {
        SessionPickles(sessions.iter().map(|s| e2e::pickle_session(s, &self.pickle_key)).collect())
    }
}

impl Messages {
    /// Puts a [`bitdust_api::EventKind::Message`] into the event log.
    pub(crate) fn event(&self, peer: &PeerId, entry: &Entry) {
        let contact = self
            .contacts()
            .ok()
            .and_then(|b| b.by_peer(&peer.to_bytes()).map(|c| c.name.clone()))
            .unwrap_or_else(|| peer.to_string());
        self.node.events().push(bitdust_api::EventKind::Message {
            contact,
            peer: peer.to_string(),
            outgoing: entry.outgoing,
            message_id: hex::encode(entry.id),
            state: entry.state.as_str().to_string(),
        });
    }

    /// Every conversation: the peer, its message count and its last message, the most recent first.
    ///
    /// # Errors
    /// The database.
    pub fn conversations(&self) -> Result<Vec<(PeerId, u64, Option<Entry>)>> {
        let mut out = Vec::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let rows = self.node.db().records::<PeerState>(PEERS, after.as_deref(), 256)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            for (key, state) in rows {
                let Ok(peer) = PeerId::from_bytes(&key) else { continue };
                let last = match state.next_index.checked_sub(1) {
                    Some(i) => self.node.db().record::<Entry>(HISTORY, &history_key(&peer, i))?,
                    None => None,
                };
                out.push((peer, state.next_index, last));
            }
        }
        out.sort_by_key(|(_, _, last)| std::cmp::Reverse(last.as_ref().map_or(0, |e| e.at_unix_ms)));
        Ok(out)
    }

    pub(crate) async fn ask(&self, peer: PeerId, request: &Request) -> Result<Response> {
        let name = StreamProtocol::new(MESSAGES_PROTOCOL);
        let bytes = self.node.request(peer, &name, Frame::one(wire::encode(request))).await?;
        wire::decode::<Response>(&bytes).map_err(anyhow::Error::msg)
    }

    /// Sends `text` to contact `name`, end-to-end encrypted; returns the history entry (delivered, or sent if the
    /// contact did not take it).
    ///
    /// # Errors
    /// An unknown contact, a text over [`MAX_TEXT_BYTES`], a contact whose key changed (flagged: confirm it first),
    /// or no session could be started (the contact is offline and has never talked with us).
    pub async fn send_text(&self, name: &str, text: &str) -> Result<Entry> {
        if text.len() > MAX_TEXT_BYTES {
            bail!("message of {} bytes is over the {MAX_TEXT_BYTES}-byte limit", text.len());
        }
        self.send_body(name, rand::random(), Body::Text(text.to_string()), text.to_string()).await
    }

    /// Sends `body` as message `id` to contact `name`; the history shows `text`.
    pub(crate) async fn send_body(&self, name: &str, id: [u8; 16], body: Body, text: String) -> Result<Entry> {
        let contact = self.contacts()?.named(name)?.clone();
        if let Some(change) = &contact.key_change {
            return Err(SendError::KeyChanged(change.to_string(), name.to_string()).into());
        }
        let peer = contact.peer()?;
        let prekey = self.prekey_if_needed(peer, name).await?;
        let Sealed { entry, index, plain, mut envelope, mut answer } =
            self.send_parcel(peer, Parcel { id, body, text, prekey }).await?;
        let delivered = Entry { state: State::Delivered, ..entry.clone() };
        if matches!(answer, Ok(Response::NoSession)) {
            // the contact lost our session (a new device restored from its key): a new one, the same message
            tracing::info!(contact = name, "the contact has no session with us: starting a new one");
            match self.reseal(peer, &plain).await {
                Ok(fresh) => {
                    envelope = fresh;
                    answer = self.ask(peer, &Request::Deliver(envelope.clone())).await;
                    if matches!(answer, Ok(Response::Delivered)) {
                        self.write_marks(peer, &[(index, delivered.clone())]);
                    }
                }
                Err(e) => answer = Err(e),
            }
        }
        match answer {
            Ok(Response::Delivered) => {
                // the mark is written (by the courier, or above)
                self.event(&peer, &delivered);
                Ok(delivered)
            }
            answer => {
                tracing::info!(contact = name, answer = ?answer.map(|_| ()), "not delivered directly: to the mailboxes");
                let mailboxes = self.deposit(peer, &envelope).await;
                if mailboxes == 0 {
                    return Ok(entry);
                }
                let stored = Entry { state: State::Stored, mailboxes, ..entry };
                self.node.db().write(|tx| put_entry(tx, &peer, index, &stored))?;
                self.event(&peer, &stored);
                Ok(stored)
            }
        }
    }

    /// A prekey of `peer` (`name` in errors) if we have no session with it yet: asked of the peer, else the one it
    /// published in the DHT (outside the lock).
    ///
    /// # Errors
    /// [`SendError::Unreachable`]: no session, and no prekey from either.
    pub(crate) async fn prekey_if_needed(&self, peer: PeerId, name: &str) -> Result<Option<e2e::Prekey>> {
        let have =
            self.node.db().record::<SessionPickles>(SESSIONS, &peer.to_bytes())?.is_some_and(|p| !p.0.is_empty());
        if have {
            return Ok(None);
        }
        match self.ask(peer, &Request::Prekey).await {
            Ok(Response::Prekey(p)) => Ok(Some(p)),
            asked => match self.published_prekey_of(peer).await {
                Ok(p) => Ok(Some(p)),
                Err(e) => {
                    let asked = asked.map(|r| format!("{r:?}")).unwrap_or_else(|e| e.to_string());
                    Err(SendError::Unreachable(name.into(), format!("{asked}; in the DHT: {e:#}")).into())
                }
            },
        }
    }

    /// The prekey `peer` published in the DHT (checked: signed by `peer`; [`Device::outbound`] checks its binding).
    async fn published_prekey_of(&self, peer: PeerId) -> Result<e2e::Prekey> {
        let found = self.node.network().get_record(RecordKind::Prekey, peer).await?;
        let key = bitdust_core::record::record_key(RecordKind::Prekey, &peer);
        let record = match SignedRecord::decode_verified(&key, &found.encode()) {
            Ok((r, publisher)) if publisher == peer && r.kind == RecordKind::Prekey => r,
            _ => bail!("the prekey record found is not {peer}'s"),
        };
        wire::decode(&record.payload).map_err(anyhow::Error::msg)
    }

    /// Publishes this node's prekey in the DHT for senders while it is offline: the same one for
    /// [`PREKEY_LIFETIME`], then a new fallback key (the account keeps the previous one's secret for messages
    /// still on the way).
    ///
    /// # Errors
    /// The database, or the DHT did not take it.
    pub async fn publish_prekey(&self) -> Result<()> {
        let now = bitdust_node::home::unix_now();
        let published = {
            let mut crypto = self.crypto.lock().await;
            match self.node.db().get::<PublishedPrekey>(PUBLISHED_PREKEY)? {
                Some(p) if now.saturating_sub(p.created_unix) < PREKEY_LIFETIME.as_secs() => p,
                _ => {
                    let p =
                        PublishedPrekey { prekey: crypto.device.fallback_prekey(self.node.keys()), created_unix: now };
                    let account = AccountPickle(crypto.device.pickle(&crypto.pickle_key));
                    self.node.db().write(|tx| {
                        tx.put_value(ACCOUNT_KEY, &account)?;
                        tx.put_value(PUBLISHED_PREKEY, &p)
                    })?;
                    p
                }
            }
        };
        let payload = wire::encode(&published.prekey);
        let record = SignedRecord::sign(self.node.keys(), RecordKind::Prekey, published.created_unix, now, payload);
        self.node.network().put_record(record).await?;
        Ok(())
    }

    /// Encrypts `plain` again for `peer` in a new session (from a new prekey), kept as its newest.
    async fn reseal(&self, peer: PeerId, plain: &Plain) -> Result<e2e::Envelope> {
        let Response::Prekey(prekey) = self.ask(peer, &Request::Prekey).await? else {
            bail!("no prekey from {peer}");
        };
        let crypto = self.crypto.lock().await;
        let mut sessions = crypto.sessions(&self.node, &peer)?;
        sessions.insert(0, crypto.device.outbound(&peer, &prekey)?);
        sessions.truncate(e2e::MAX_SESSIONS);
        let device = crypto.device.device_key(self.node.keys());
        let envelope = e2e::encrypt(&mut sessions[0], &device, &e2e::pad(&wire::encode(plain))?)?;
        let pickles = crypto.pickles(&sessions);
        self.node.db().write(|tx| tx.table(SESSIONS)?.put(&peer.to_bytes(), &pickles))?;
        Ok(envelope)
    }

    /// The conversation with contact `name`, oldest first, at most `limit` messages from the end.
    ///
    /// # Errors
    /// An unknown contact, or the database.
    pub fn history(&self, name: &str, limit: usize) -> Result<Vec<Entry>> {
        let contact = self.contacts()?.named(name)?.clone();
        self.history_of(&contact.peer()?, limit)
    }

    /// The conversation with `peer`, oldest first, the last `limit` messages.
    ///
    /// # Errors
    /// The database.
    pub fn history_of(&self, peer: &PeerId, limit: usize) -> Result<Vec<Entry>> {
        let state = self.node.db().record::<PeerState>(PEERS, &peer.to_bytes())?.unwrap_or_default();
        let first = state.next_index.saturating_sub(limit as u64);
        let prefix = peer.to_bytes();
        // after the entry before the first wanted, or after the bare prefix (which sorts before all its entries)
        let after = first.checked_sub(1).map_or_else(|| prefix.clone(), |i| history_key(peer, i));
        let rows = self.node.db().records::<Entry>(HISTORY, Some(&after), limit)?;
        Ok(rows
            .into_iter()
            .filter(|(k, _)| k.starts_with(&prefix) && k.len() == prefix.len() + 8)
            .map(|(_, e)| e)
            .collect())
    }

    /// Answers one inbound request from the authenticated `peer` (deliveries and file slices are taken in
    /// [`serve`]).
    async fn answer(&self, peer: PeerId, request: Result<Request, String>) -> Response {
        match request {
            Ok(Request::Prekey) => {
                let mut crypto = self.crypto.lock().await;
                let prekey = crypto.device.prekey(self.node.keys());
                let pickle = AccountPickle(crypto.device.pickle(&crypto.pickle_key));
                match self.node.db().put(ACCOUNT_KEY, &pickle) {
                    Ok(()) => Response::Prekey(prekey),
                    Err(e) => Response::Error(format!("cannot save the account: {e}")),
                }
            }
            Ok(Request::Presence) => {
                let known = self.contacts().map(|b| b.by_peer(&peer.to_bytes()).is_some()).unwrap_or(false);
                if known {
                    self.seen(&peer);
                    Response::Present
                } else {
                    Response::Error("presence is for contacts only".into())
                }
            }
            Ok(Request::Deliver(_) | Request::DeliverMany(_)) => {
                Response::Error("deliveries are taken by serve".into())
            }
            Ok(Request::Deposit { recipient, envelope, pow }) => {
                self.host_deposit(peer, &recipient, envelope, pow).await
            }
            Ok(Request::Collect { after, limit }) => self.host_collect(peer, after, limit),
            Ok(Request::MailboxContacts(tags)) => self.host_contacts(peer, tags).await,
            Ok(Request::Ack(indexes)) => self.host_ack(peer, &indexes),
            Ok(Request::FileGet { transfer, offset, len }) => self.serve_slice(peer, transfer, offset, len).await,
            Ok(Request::Listing(words)) => self.listing(&words),
            Err(e) => Response::Error(e),
        }
    }

    /// The answer to a delivery from `peer` whose taking ended in `taken` (refusals are counted).
    fn answer_of(&self, peer: PeerId, envelope: &e2e::Envelope, taken: Result<bool>) -> Response {
        match taken {
            Ok(_) => Response::Delivered,
            Err(e) if envelope.message_type == 1 && matches!(e.downcast_ref(), Some(E2eError::Decrypt(_))) => {
                tracing::info!(%peer, "a message in a session we do not have: asked for a new one");
                self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Response::NoSession
            }
            Err(e) => {
                tracing::info!(%peer, error = %e, "message refused");
                self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Response::Error(e.to_string())
            }
        }
    }

    /// Waits until the deferred write of `ticket` is on disk (one flush shared by the writes of the moment: group
    /// commit).
    ///
    /// # Errors
    /// The database.
    pub(crate) async fn durable(&self, ticket: SyncTicket) -> Result<()> {
        let node = self.node.clone();
        tokio::task::spawn_blocking(move || node.db().sync(ticket)).await??;
        Ok(())
    }

    /// Decrypts and stores `envelope` from the authenticated `peer` (stored once [`Messages::durable`] with the
    /// returned ticket returns). Returns `None` for a copy of an envelope taken already (the same one from a second
    /// mailbox).
    pub(crate) async fn receive(&self, peer: PeerId, envelope: &e2e::Envelope) -> Result<Option<SyncTicket>> {
        let (mut taken, ticket) = self.receive_many(peer, std::slice::from_ref(envelope)).await;
        match taken.pop() {
            Some(Ok(true)) => Ok(ticket),
            Some(Ok(false)) => Ok(None),
            Some(Err(e)) => Err(e),
            None => bail!("nothing taken"),
        }
    }

    /// Decrypts and stores `envelopes` from the authenticated `peer`, in order, in one transaction (stored once
    /// [`Messages::durable`] with the returned ticket returns). For each: `Ok(true)` taken, `Ok(false)` a copy of
    /// an envelope taken already (the same one from a second mailbox), or why it was refused (forged, replayed,
    /// undecryptable, over a limit). A refused envelope changes nothing the others store.
    pub(crate) async fn receive_many(
        &self,
        peer: PeerId,
        envelopes: &[e2e::Envelope],
    ) -> (Vec<Result<bool>>, Option<SyncTicket>) {
        let mut crypto = self.crypto.lock().await;
        let mut stage = match Stage::load(self, &crypto, &peer) {
            Ok(stage) => stage,
            Err(e) => return (envelopes.iter().map(|_| Err(anyhow::anyhow!("{e:#}"))).collect(), None),
        };
        let mut taken: Vec<Result<bool>> =
            envelopes.iter().map(|envelope| self.take(&mut crypto, &peer, &mut stage, envelope)).collect();
        if stage.guards.is_empty() {
            return (taken, None);
        }
        let pickles = crypto.pickles(&stage.sessions);
        // a pre-key message may have started a session with one of our one-time keys: the account changed too
        let account = stage.account.then(|| AccountPickle(crypto.device.pickle(&crypto.pickle_key)));
        let written = self.node.db().write_deferred(|tx| {
            if let Some(a) = &account {
                tx.put_value(ACCOUNT_KEY, a)?;
            }
            tx.table(SESSIONS)?.put(&peer.to_bytes(), &pickles)?;
            tx.table(PEERS)?.put(&peer.to_bytes(), &stage.state)?;
            let mut guard = tx.table(GUARD)?;
            for key in &stage.guards {
                guard.put(key, &Guarded(stage.now))?;
            }
            drop(guard);
            for offer in &stage.offers {
                crate::service::files::put_incoming(tx, &peer, offer)?;
            }
            stage.entries.iter().chain(&stage.read).try_for_each(|(index, e)| put_entry(tx, &peer, *index, e))
        });
        drop(crypto);
        let ticket = match written {
            Ok(((), ticket)) => ticket,
            Err(e) => {
                for t in taken.iter_mut().filter(|t| matches!(t, Ok(true))) {
                    *t = Err(anyhow::anyhow!("cannot store it: {e}"));
                }
                return (taken, None);
            }
        };
        self.seen(&peer);
        for (_, entry) in stage.entries.iter().chain(&stage.read) {
            self.event(&peer, entry);
        }
        for offer in stage.offers {
            self.start_download(peer, offer.transfer);
        }
        for transfer in stage.fetched {
            self.fetched(peer, transfer);
        }
        (taken, Some(ticket))
    }

    /// Decrypts `envelope` from `peer` and adds what it says to `stage`: `Ok(false)` for a copy of one taken
    /// already. On an error `stage` keeps nothing of it (but the ratchet may have advanced past it).
    fn take(&self, crypto: &mut Crypto, peer: &PeerId, stage: &mut Stage, envelope: &e2e::Envelope) -> Result<bool> {
        let digest = *blake3::hash(&envelope.ciphertext).as_bytes();
        let envelope_key = guard_key(peer, 1, &digest);
        if stage.guarded(self, &envelope_key)? {
            return Ok(false);
        }
        if envelope.message_type == crate::proto::groups::GROUP_MESSAGE_TYPE {
            // a group message: Megolm, with the sender's key from the group's keyring (its own guard entries)
            return self.take_group_message(*peer, envelope);
        }
        let padded = crypto.device.decrypt(peer, &mut stage.sessions, envelope)?;
        stage.account |= envelope.message_type == 0;
        let plain: Plain = wire::decode(e2e::unpad(&padded)?).map_err(E2eError::Malformed)?;
        let id_key = guard_key(peer, 0, &plain.id);
        if stage.guarded(self, &id_key)? {
            bail!("replayed message");
        }
        let (text, offer) = match plain.body {
            Body::Read(ids) => {
                if ids.len() > wire::MAX_RECEIPT_IDS {
                    bail!("a receipt naming {} messages is over the limit", ids.len());
                }
                // its outgoing messages named become read; nothing goes into the history
                let read =
                    self.recent_entries(peer, |e| e.outgoing && e.state != State::Read && ids.contains(&e.id))?;
                stage.read.extend(read);
                stage.guards.extend([id_key, envelope_key]);
                return Ok(true);
            }
            Body::Fetched(transfer) => {
                stage.fetched.push(transfer);
                stage.guards.extend([id_key, envelope_key]);
                return Ok(true);
            }
            Body::Group(control) => {
                self.take_group_control(*peer, control)?;
                stage.guards.extend([id_key, envelope_key]);
                return Ok(true);
            }
            Body::Share(offer) => {
                self.take_share(*peer, offer)?;
                stage.guards.extend([id_key, envelope_key]);
                return Ok(true);
            }
            Body::Unshare(id) => {
                self.take_unshare(*peer, id)?;
                stage.guards.extend([id_key, envelope_key]);
                return Ok(true);
            }
            Body::Contribute(c) => {
                self.take_contribution(*peer, c)?;
                stage.guards.extend([id_key, envelope_key]);
                return Ok(true);
            }
            Body::Text(text) if text.len() > MAX_TEXT_BYTES => {
                bail!("message of {} bytes is over the limit", text.len())
            }
            Body::Text(text) => (text, None),
            Body::File(offer) => {
                let offer = crate::service::files::check_offer(offer)?;
                if self.file(&offer.transfer)?.is_some() || stage.offers.iter().any(|o| o.transfer == offer.transfer) {
                    bail!("a file offer reusing the id of another transfer");
                }
                (crate::service::files::describe(&offer), Some(offer))
            }
        };
        let index = stage.state.next_index;
        stage.state.next_index += 1;
        let entry = Entry {
            outgoing: false,
            id: plain.id,
            seq: plain.seq,
            sent_unix_ms: plain.sent_unix_ms,
            at_unix_ms: stage.now,
            text,
            state: State::Received,
            mailboxes: 0,
        };
        stage.entries.push((index, entry));
        stage.offers.extend(offer);
        stage.guards.extend([id_key, envelope_key]);
        Ok(true)
    }

    /// Our device key (bound to the node's identity).
    pub(crate) async fn device_key(&self) -> e2e::DeviceKey {
        self.crypto.lock().await.device.device_key(self.node.keys())
    }

    /// The entries among the last [`RECEIPT_WINDOW`] of the conversation with `peer` that `pick` selects, with their
    /// indexes, as read.
    fn recent_entries(&self, peer: &PeerId, pick: impl Fn(&Entry) -> bool) -> Result<Vec<(u64, Entry)>> {
        let state = self.node.db().record::<PeerState>(PEERS, &peer.to_bytes())?.unwrap_or_default();
        let first = state.next_index.saturating_sub(RECEIPT_WINDOW);
        let mut out = Vec::new();
        for index in first..state.next_index {
            if let Some(e) = self.node.db().record::<Entry>(HISTORY, &history_key(peer, index))? {
                if pick(&e) {
                    out.push((index, Entry { state: State::Read, ..e }));
                }
            }
        }
        Ok(out)
    }

    /// Marks the messages received from contact `name` and not read yet as read, and sends the contact a read
    /// receipt for them (in the background: directly, else through its mailboxes). Returns how many.
    ///
    /// # Errors
    /// An unknown contact, or the database.
    pub async fn mark_read(&self, name: &str) -> Result<usize> {
        let peer = self.contacts()?.named(name)?.peer()?;
        let read = self.recent_entries(&peer, |e| !e.outgoing && e.state == State::Received)?;
        if read.is_empty() {
            return Ok(0);
        }
        self.node.db().write(|tx| read.iter().try_for_each(|(index, e)| put_entry(tx, &peer, *index, e)))?;
        let ids: Vec<[u8; 16]> = read.iter().map(|(_, e)| e.id).collect();
        if let Some(me) = self.this.upgrade() {
            tokio::spawn(async move {
                for chunk in ids.chunks(wire::MAX_RECEIPT_IDS) {
                    if let Err(e) = me.send_control(peer, Body::Read(chunk.to_vec())).await {
                        tracing::info!(%peer, error = %format!("{e:#}"), "read receipt not sent");
                    }
                }
            });
        }
        Ok(read.len())
    }

    /// Sends `body` to `peer` outside the conversation (no history entry, sequence number 0): directly, else
    /// through its mailboxes. A session is started first if there is none (a group member need not be a contact).
    pub(crate) async fn send_control(&self, peer: PeerId, body: Body) -> Result<()> {
        let prekey = self.prekey_if_needed(peer, &peer.to_string()).await?;
        let envelope = {
            let crypto = self.crypto.lock().await;
            let mut sessions = crypto.sessions(&self.node, &peer)?;
            if sessions.is_empty() {
                let prekey = prekey.as_ref().with_context(|| format!("no session with {peer}"))?;
                sessions.push(crypto.device.outbound(&peer, prekey)?);
            }
            let plain = Plain { id: rand::random(), seq: 0, sent_unix_ms: now_ms(), body };
            let device = crypto.device.device_key(self.node.keys());
            let envelope = e2e::encrypt(&mut sessions[0], &device, &e2e::pad(&wire::encode(&plain))?)?;
            let pickles = crypto.pickles(&sessions);
            let ((), ticket) =
                self.node.db().write_deferred(|tx| tx.table(SESSIONS)?.put(&peer.to_bytes(), &pickles))?;
            drop(crypto);
            self.durable(ticket).await?;
            envelope
        };
        match self.ask(peer, &Request::Deliver(envelope.clone())).await {
            Ok(Response::Delivered) => Ok(()),
            // the peer read it and said no: its mailboxes would give it the same envelope (a replay, refused)
            Ok(Response::Error(why)) => bail!("{peer} refused it: {why}"),
            _ if self.deposit(peer, &envelope).await > 0 => Ok(()),
            other => bail!("not delivered: {:?}", other.map(|_| ())),
        }
    }

    /// Forgets replay guard entries older than [`GUARD_TTL`]; returns how many.
    ///
    /// # Errors
    /// The database.
    pub fn prune_guard(&self) -> Result<usize> {
        let oldest = now_ms().saturating_sub(GUARD_TTL.as_millis() as u64);
        let mut after: Option<Vec<u8>> = None;
        let mut removed = 0;
        loop {
            let rows = self.node.db().records::<Guarded>(GUARD, after.as_deref(), 4096)?;
            let Some((last, _)) = rows.last() else { break };
            after = Some(last.clone());
            let old: Vec<Vec<u8>> = rows.into_iter().filter(|(_, g)| g.0 < oldest).map(|(k, _)| k).collect();
            if !old.is_empty() {
                removed += old.len();
                self.node.db().write(|tx| {
                    let mut t = tx.table(GUARD)?;
                    old.iter().try_for_each(|k| t.remove(k))
                })?;
            }
        }
        Ok(removed)
    }

    /// Notes that `peer` was heard from now.
    fn seen(&self, peer: &PeerId) {
        if let Ok(mut p) = self.presence.lock() {
            p.insert(*peer, Presence { online: true, last_seen_unix: bitdust_node::home::unix_now() });
        }
    }

    /// What we know of `peer`'s presence (heard from lately, or asked).
    pub fn presence_of(&self, peer: &PeerId) -> Option<Presence> {
        self.presence.lock().ok().and_then(|p| p.get(peer).copied())
    }

    /// Asks every contact whether it is online (each at most [`PRESENCE_TIMEOUT`]; a contact that does not answer
    /// is offline, last seen when it last answered or wrote).
    pub async fn refresh_presence(&self) {
        let Ok(book) = self.contacts() else { return };
        let peers: Vec<PeerId> = book.contacts.iter().filter_map(|c| c.peer().ok()).collect();
        let asks = peers.iter().map(|p| tokio::time::timeout(PRESENCE_TIMEOUT, self.ask(*p, &Request::Presence)));
        let answers = futures::future::join_all(asks).await;
        for (peer, answer) in peers.iter().zip(answers) {
            if matches!(answer, Ok(Ok(Response::Present))) {
                self.seen(peer);
            } else if let Ok(mut p) = self.presence.lock() {
                let last = p.get(peer).map_or(0, |x| x.last_seen_unix);
                p.insert(*peer, Presence { online: false, last_seen_unix: last });
            }
        }
    }
}

/// Answers `/bitdust/messages/1` requests one at a time (so a sender's messages are stored in its order) until the
/// network stops.
pub(crate) async fn serve(messages: std::sync::Weak<Messages>, mut inbound: mpsc::Receiver<Inbound>) {
    while let Some(req) = inbound.recv().await {
        let Some(m) = messages.upgrade() else { return };
        let request = wire::decode::<Request>(&req.request);
        if let Ok(Request::FileGet { transfer, offset, len }) = &request {
            let (transfer, offset, len) = (*transfer, *offset, *len);
            // file slices are read on their own tasks, at most SERVING at once (more are told to retry): a
            // transfer does not hold messages up
            let Ok(permit) = m.slices.clone().try_acquire_owned() else {
                let busy = Response::Error("busy, retry".into());
                let _ = m.node.network().respond(req.channel, Frame::one(wire::encode(&busy))).await;
                continue;
            };
            tokio::spawn(async move {
                let response = m.serve_slice(req.peer, transfer, offset, len).await;
                drop(permit);
                let _ = m.node.network().respond(req.channel, Frame::one(wire::encode(&response))).await;
            });
            continue;
        }
        let (envelopes, batch) = match request {
            Ok(Request::Deliver(envelope)) => (vec![envelope], false),
            Ok(Request::DeliverMany(envelopes)) if envelopes.len() <= wire::MAX_BATCH => {
                m.batches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                (envelopes, true)
            }
            Ok(Request::DeliverMany(_)) => {
                let refused = Response::Error(format!("over {} messages at once", wire::MAX_BATCH));
                let _ = m.node.network().respond(req.channel, Frame::one(wire::encode(&refused))).await;
                continue;
            }
            request => {
                let response = m.answer(req.peer, request).await;
                let _ = m.node.network().respond(req.channel, Frame::one(wire::encode(&response))).await;
                continue;
            }
        };
        // taken in order here; the answer waits for the disk on its own task, so the next message is taken
        // meanwhile and one flush covers several (group commit); at most ANSWERING answers wait at once
        let Ok(permit) = m.answering.clone().acquire_owned().await else { return };
        let (taken, last) = m.receive_many(req.peer, &envelopes).await;
        let mut answers: Vec<Response> =
            envelopes.iter().zip(taken).map(|(envelope, taken)| m.answer_of(req.peer, envelope, taken)).collect();
        tokio::spawn(async move {
            let _permit = permit;
            if let Some(t) = last {
                if let Err(e) = m.durable(t).await {
                    for a in answers.iter_mut().filter(|a| matches!(a, Response::Delivered)) {
                        *a = Response::Error(format!("cannot store it: {e}"));
                    }
                }
            }
            let response = if batch {
                for a in &mut answers {
                    if let Response::Error(text) = a {
                        let cut = (0..=wire::MAX_BATCH_ERROR.min(text.len()))
                            .rev()
                            .find(|&i| text.is_char_boundary(i))
                            .unwrap_or(0);
                        text.truncate(cut);
                    }
                }
                Response::DeliveredMany(answers)
            } else {
                answers.pop().unwrap_or(Response::Error("nothing delivered".into()))
            };
            let _ = m.node.network().respond(req.channel, Frame::one(wire::encode(&response))).await;
        });
    }
}

/// Asks the contacts whether they are online every [`PRESENCE_PERIOD`] while the node runs.
async fn presence_loop(messages: std::sync::Weak<Messages>) {
    loop {
        let Some(m) = messages.upgrade() else { return };
        if m.node.network().is_stopped() {
            return;
        }
        if m.node.is_announced() {
            m.refresh_presence().await;
        }
        drop(m);
        tokio::time::sleep(PRESENCE_PERIOD).await;
    }
}

/// Publishes the prekey once the node is announced, then every [`PREKEY_REPUBLISH`].
async fn prekey_loop(messages: std::sync::Weak<Messages>) {
    loop {
        let Some(m) = messages.upgrade() else { return };
        if m.node.network().is_stopped() {
            return;
        }
        let pause = if m.node.is_announced() {
            match m.publish_prekey().await {
                Ok(()) => PREKEY_REPUBLISH,
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "prekey not published yet");
                    std::time::Duration::from_secs(10)
                }
            }
        } else {
            std::time::Duration::from_millis(250)
        };
        drop(m);
        tokio::time::sleep(pause).await;
    }
}

/// Announces our public shares' keywords once the node is announced (provider records expire while it is away; the
/// DHT republishes them while it runs).
async fn announce_public_once(messages: std::sync::Weak<Messages>) {
    loop {
        let Some(m) = messages.upgrade() else { return };
        if m.node.network().is_stopped() {
            return;
        }
        if m.node.is_announced() {
            m.announce_public().await;
            return;
        }
        drop(m);
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// Starts the protocol's server for `messages`, and the presence questions.
pub(crate) fn start(messages: &Arc<Messages>, inbound: mpsc::Receiver<Inbound>) {
    tokio::spawn(serve(Arc::downgrade(messages), inbound));
    tokio::spawn(presence_loop(Arc::downgrade(messages)));
    tokio::spawn(prekey_loop(Arc::downgrade(messages)));
    tokio::spawn(crate::service::mailbox::collect_loop(Arc::downgrade(messages)));
    tokio::spawn(crate::service::history::sync_loop(Arc::downgrade(messages)));
    tokio::spawn(announce_public_once(Arc::downgrade(messages)));
    crate::service::files::resume_downloads(messages);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_peer_state_keeps_its_counters() {
        #[derive(Serialize)]
        struct V1 {
            next_index: u64,
            next_seq: u64,
            seen: Vec<[u8; 16]>,
            envelopes: Vec<[u8; 32]>,
        }
        let old = V1 { next_index: 7, next_seq: 3, seen: vec![[1; 16]; 5], envelopes: vec![[2; 32]; 5] };
        let mut bytes = 1u16.to_le_bytes().to_vec();
        bytes.extend(postcard::to_stdvec(&old).unwrap());
        let now: PeerState = bitdust_store::decode("peer", &bytes).unwrap();
        assert_eq!((now.next_index, now.next_seq), (7, 3));
        assert!(bitdust_store::decode::<PeerState>("peer", &[9, 0, 1]).is_err());
    }
}
