//! The messages wing on the node runtime: the address book in the node database, resolved through the DHT
//! (signed nickname claims, identity records), on the local API (`routes.rs`).

pub mod conversations;
pub mod files;
pub mod groups;
pub mod history;
pub mod mailbox;
pub mod public;
mod routes;
pub mod shares;

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use bitdust_core::keys::short_peer_id;
use bitdust_net::Inbounds;
use bitdust_node::home::unix_now;
use bitdust_node::{Node, Service, Started};
use bitdust_store::Versioned;

use crate::proto::contacts::{safety_number, Address, Contact, ContactBook, ContactError};

/// The node database value holding the address book.
pub(crate) const CONTACTS_KEY: &str = "messages/contacts";

impl Versioned for ContactBook {
    const FORMAT: u16 = 1;
}

/// How the runtime starts the messages wing ([`bitdust_node::Daemon::start`]).
#[derive(Debug, Default)]
pub struct MessagesService;

impl MessagesService {
    /// The messages wing.
    pub fn new() -> Box<Self> {
        Box::new(Self)
    }
}

#[async_trait]
impl Service for MessagesService {
    fn name(&self) -> &'static str {
        "messages"
    }

    fn protocols(&self) -> Vec<bitdust_net::ProtocolSpec> {
        vec![conversations::protocol_spec()]
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        routes::openapi()
    }

    async fn start(self: Box<Self>, node: &Arc<Node>, inbounds: &mut Inbounds) -> Result<Started> {
        let spec = conversations::protocol_spec();
        let inbound = inbounds.take(&spec.name).ok_or_else(|| anyhow::anyhow!("{} was not registered", spec.name))?;
        let crypto = {
            let n = node.clone();
            tokio::task::spawn_blocking(move || conversations::Crypto::load(&n)).await??
        };
        let messages = Arc::new_cyclic(|this| Messages {
            this: this.clone(),
            slices: Arc::new(tokio::sync::Semaphore::new(files::SERVING)),
            answering: Arc::new(tokio::sync::Semaphore::new(files::ANSWERING)),
            served: std::sync::atomic::AtomicU64::new(0),
            downloads: std::sync::Mutex::new(std::collections::HashSet::new()),
            node: node.clone(),
            book: tokio::sync::Mutex::new(()),
            crypto: tokio::sync::Mutex::new(crypto),
            refused: std::sync::atomic::AtomicU64::new(0),
            batches: std::sync::atomic::AtomicU64::new(0),
            presence: std::sync::Mutex::new(std::collections::HashMap::new()),
            mailbox: tokio::sync::Mutex::new(()),
            holders: std::sync::Mutex::new(mailbox::HolderCache::default()),
            sync: tokio::sync::Mutex::new(()),
            told: std::sync::Mutex::new(std::collections::HashMap::new()),
            couriers: std::sync::Mutex::new(std::collections::HashMap::new()),
            group_lock: std::sync::Mutex::new(()),
            share_lock: tokio::sync::Mutex::new(()),
        });
        conversations::start(&messages, inbound);
        Ok(Started { handle: messages.clone(), routes: routes::router(messages), status: None })
    }
}

/// The messages wing's handle: the address book.
pub struct Messages {
    /// This handle (for the tasks a message starts).
    this: std::sync::Weak<Messages>,
    /// File slices being read for others (at most [`files::SERVING`]).
    slices: Arc<tokio::sync::Semaphore>,
    /// Answers to received messages waiting for the disk (at most [`files::ANSWERING`]).
    answering: Arc<tokio::sync::Semaphore>,
    /// File bytes served to others since start.
    served: std::sync::atomic::AtomicU64,
    /// Transfers being downloaded.
    downloads: std::sync::Mutex<std::collections::HashSet<[u8; 16]>>,
    node: Arc<Node>,
    /// Held while the book is read, changed and written (one change at a time).
    book: tokio::sync::Mutex<()>,
    /// The Olm account; held while sessions are read, advanced and written.
    crypto: tokio::sync::Mutex<conversations::Crypto>,
    /// Messages refused since start (forged, replayed, undecryptable).
    refused: std::sync::atomic::AtomicU64,
    /// Batches of messages (`DeliverMany`) taken since start.
    batches: std::sync::atomic::AtomicU64,
    /// What we know of peers' presence (in memory: it is about now).
    presence: std::sync::Mutex<std::collections::HashMap<bitdust_core::PeerId, conversations::Presence>>,
    /// Held while a mailbox's counters are read and written.
    mailbox: tokio::sync::Mutex<()>,
    /// "Am I among this user's suppliers?", remembered.
    holders: std::sync::Mutex<mailbox::HolderCache>,
    /// Held while the history log is put into the vault or restored from it.
    sync: tokio::sync::Mutex<()>,
    /// Per supplier: the digest of the contact list it took last.
    told: std::sync::Mutex<std::collections::HashMap<bitdust_core::PeerId, [u8; 32]>>,
    /// Per peer: deliveries queued for its courier (one per peer sending now).
    couriers: std::sync::Mutex<std::collections::HashMap<bitdust_core::PeerId, conversations::Courier>>,
    /// Held while a group's record is read, changed and written (a std mutex: never held across an await, so the
    /// receive path may take it under the Olm lock).
    group_lock: std::sync::Mutex<()>,
    /// Held while the shares table is read, changed and written (across the storage wing's calls).
    share_lock: tokio::sync::Mutex<()>,
}

impl Messages {
    /// The node it runs on.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Messages refused since start (forged, replayed, undecryptable).
    pub fn refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Batches of several messages (`DeliverMany`) taken since start.
    pub fn batches(&self) -> u64 {
        self.batches.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The address book.
    ///
    /// # Errors
    /// If the node database cannot be read.
    pub fn contacts(&self) -> Result<ContactBook> {
        Ok(self.node.db().get::<ContactBook>(CONTACTS_KEY)?.unwrap_or_default())
    }

    fn save(&self, book: &ContactBook) -> Result<()> {
        Ok(self.node.db().put(CONTACTS_KEY, book)?)
    }

    /// Finds who `who` names (a nickname through its claim, a global id, a peer id), looks its signed identity up
    /// and adds it as `name` (default: its nickname).
    ///
    /// # Errors
    /// A bad address or name, nobody found, ourselves, a contact already (by name or key), or a nickname now held
    /// by another identity than the contact of that nickname (flagged on that contact, not replaced).
    pub async fn add_contact(&self, who: &str, name: Option<&str>) -> Result<Contact> {
        let address = Address::parse(who)?;
        let peer = match &address {
            Address::Peer(p) => *p,
            Address::Nickname(nick) | Address::GlobalId { nickname: nick, .. } => {
                let (_, owner) = self
                    .node
                    .network()
                    .get_nickname(nick)
                    .await
                    .map_err(|_| ContactError::NotFound(who.to_string()))?;
                if !address.admits(&owner) {
                    let owner = format!("{nick}@{}", short_peer_id(&owner));
                    return Err(ContactError::OtherIdentity { address: who.to_string(), owner }.into());
                }
                owner
            }
        };
        if peer == self.node.peer_id() {
            return Err(ContactError::Yourself(who.to_string()).into());
        }
        let identity = self.node.lookup_identity(peer).await.map_err(|_| ContactError::NotFound(who.to_string()))?;
        let id = &identity.identity;
        let _g = self.book.lock().await;
        let mut book = self.contacts()?;
        if let Address::Nickname(nick) = &address {
            // a contact of this nickname pinned to another key: the nickname moved; flag it, never switch
            let moved: Vec<String> = book
                .contacts
                .iter()
                .filter(|c| c.nickname == *nick && c.peer_id != peer.to_bytes())
                .map(|c| c.name.clone())
                .collect();
            if let Some(name) = moved.first() {
                book.observe(name, Some(&peer), None)?;
                self.save(&book)?;
                let (nickname, contact, now) = (nick.clone(), name.clone(), peer.to_string());
                return Err(ContactError::NicknameMoved { nickname, contact, now }.into());
            }
        }
        let contact = Contact {
            name: name.map_or_else(|| id.nickname.clone(), str::to_string),
            peer_id: peer.to_bytes(),
            nickname: id.nickname.clone(),
            encryption_key: id.encryption_key,
            identity_revision: id.revision,
            added_unix: unix_now(),
            verified: false,
            key_change: None,
        };
        book.add(contact.clone())?;
        self.save(&book)?;
        tracing::info!(name = %contact.name, %peer, "contact added");
        Ok(contact)
    }

    /// Removes contact `name`.
    ///
    /// # Errors
    /// [`ContactError::Unknown`], or the database.
    pub async fn remove_contact(&self, name: &str) -> Result<Contact> {
        let _g = self.book.lock().await;
        let mut book = self.contacts()?;
        let removed = book.remove(name)?;
        self.save(&book)?;
        Ok(removed)
    }

    /// Looks contact `name` up again (its nickname's claim and its identity document) and flags a changed key
    /// ([`ContactBook::observe`]). Returns the contact as it is now.
    ///
    /// # Errors
    /// [`ContactError::Unknown`], or the database. Lookups that find nothing change nothing.
    pub async fn check_contact(&self, name: &str) -> Result<Contact> {
        let contact = self.contacts()?.named(name)?.clone();
        let peer = contact.peer()?;
        let claimed_by = self.node.network().get_nickname(&contact.nickname).await.ok().map(|(_, owner)| owner);
        let identity = self.node.lookup_identity(peer).await.ok();
        let identity = identity.map(|i| (i.identity.encryption_key, i.identity.revision));
        let _g = self.book.lock().await;
        let mut book = self.contacts()?;
        if let Some(change) = book.observe(name, claimed_by.as_ref(), identity)? {
            tracing::warn!(contact = name, %change, "a contact's key changed");
        }
        self.save(&book)?;
        Ok(book.named(name)?.clone())
    }

    /// The safety number of contact `name` (after looking it up again); with `confirm`, marks it verified and
    /// accepts a new encryption key it carries (the user compared the numbers).
    ///
    /// # Errors
    /// [`ContactError::Unknown`], or the database.
    pub async fn verify_contact(&self, name: &str, confirm: bool) -> Result<(Contact, String)> {
        let mut contact = self.check_contact(name).await?;
        if confirm {
            let _g = self.book.lock().await;
            let mut book = self.contacts()?;
            book.accept_key_change(name)?;
            if let Some(c) = book.get_mut(name) {
                if c.key_change.is_none() {
                    c.verified = true;
                }
            }
            self.save(&book)?;
            contact = book.named(name)?.clone();
        }
        let number = safety_number(&self.node.peer_id(), &contact.peer()?);
        Ok((contact, number))
    }
}
