//! The address book: who a user talks to, pinned by identity key.
//!
//! A contact is found by nickname (its signed claim in the DHT, first come), by global id
//! (`nickname@<last 8 characters of the peer id>`, which also checks the key) or by peer id, and from then on is
//! pinned to that peer id (its Ed25519 identity key) and to the X25519 encryption key its identity document
//! carried. When a later lookup shows another key (the nickname claimed by another identity, or a new encryption
//! key in the identity), the contact is flagged ([`KeyChange`]) and nothing is switched silently: the user compares
//! safety numbers ([`safety_number`]) out of band and decides.

use bitdust_core::keys::short_peer_id;
use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};

/// The longest contact name, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Errors of the address book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// No contact of that name.
    #[error("no contact named {0:?} (see `bitdust contacts`)")]
    Unknown(String),
    /// The name is used by another contact.
    #[error("the name {0:?} is taken by another contact: choose another with --name")]
    NameTaken(String),
    /// That identity is a contact already.
    #[error("{peer} is your contact {name:?} already")]
    AlreadyContact {
        /// The peer id.
        peer: String,
        /// Its name in the book.
        name: String,
    },
    /// A name that cannot be used.
    #[error("invalid contact name {0:?}: 1 to 64 characters, no control characters, no '@'")]
    BadName(String),
    /// The text names nobody (not a nickname, a global id or a peer id).
    #[error("{0:?} is not a nickname, a global id (nickname@xxxxxxxx) or a peer id")]
    BadAddress(String),
    /// Nobody found under that address.
    #[error("nobody found as {0:?} (no live nickname claim or identity record in the DHT)")]
    NotFound(String),
    /// The address is the user's own.
    #[error("{0:?} is you")]
    Yourself(String),
    /// A global id whose nickname is claimed by an identity with another short id.
    #[error("{address}: the nickname is claimed by {owner}, another identity")]
    OtherIdentity {
        /// What the user typed.
        address: String,
        /// The global id of the claim's owner.
        owner: String,
    },
    /// The nickname of a contact is now claimed by another identity: flagged on that contact, not replaced.
    #[error(
        "the nickname {nickname:?} is now claimed by {now}, not by your contact {contact:?}: compare safety numbers \
         with `bitdust contacts verify {contact}`, or add the new identity by its peer id under another name"
    )]
    NicknameMoved {
        /// The nickname.
        nickname: String,
        /// The contact pinned to the old identity.
        contact: String,
        /// The peer id holding the nickname now.
        now: String,
    },
}

/// How the user named someone to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A nickname, looked up through its claim in the DHT.
    Nickname(String),
    /// `nickname@short`: the nickname's claim must be held by a peer id ending in `short`.
    GlobalId {
        /// The nickname.
        nickname: String,
        /// The last 8 characters of the peer id.
        short: String,
    },
    /// A peer id.
    Peer(PeerId),
}

impl Address {
    /// Parses `text`: a peer id, `nickname@short`, or a nickname (`[a-z0-9_-]{3,32}`).
    ///
    /// # Errors
    /// [`ContactError::BadAddress`].
    pub fn parse(text: &str) -> Result<Self, ContactError> {
        let bad = || ContactError::BadAddress(text.to_string());
        let valid = |n: &str| bitdust_core::identity::validate_nickname(n).is_ok();
        if let Some((nickname, short)) = text.split_once('@') {
            if valid(nickname) && short.len() == 8 && short.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Ok(Self::GlobalId { nickname: nickname.to_string(), short: short.to_string() });
            }
            return Err(bad());
        }
        if valid(text) {
            return Ok(Self::Nickname(text.to_string()));
        }
        text.parse::<PeerId>().map(Self::Peer).map_err(|_| bad())
    }

    /// Whether `peer` is the one a global id names (its short form matches); true for other addresses.
    pub fn admits(&self, peer: &PeerId) -> bool {
        match self {
            Self::GlobalId { short, .. } => short_peer_id(peer) == *short,
            Self::Peer(p) => p == peer,
            Self::Nickname(_) => true,
        }
    }
}

/// A key change seen on a contact: never accepted silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyChange {
    /// The contact's nickname is now claimed by another identity (peer id bytes).
    Nickname {
        /// The identity holding the nickname now.
        #[serde(with = "serde_bytes_vec")]
        now: Vec<u8>,
    },
    /// The contact's identity document carries another encryption key.
    EncryptionKey {
        /// The new X25519 public key.
        now: [u8; 32],
    },
}

impl std::fmt::Display for KeyChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Nickname { now } => match PeerId::from_bytes(now) {
                Ok(p) => write!(f, "the nickname is now claimed by another identity, {p}"),
                Err(_) => write!(f, "the nickname is now claimed by another identity"),
            },
            Self::EncryptionKey { .. } => write!(f, "the contact's identity now carries another encryption key"),
        }
    }
}

/// Byte vectors as byte strings in postcard (`serde_bytes` without the dependency).
mod serde_bytes_vec {
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// One contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The user's name for it (its nickname unless chosen otherwise); unique in the book.
    pub name: String,
    /// Its peer id bytes: the identity key it is pinned to.
    #[serde(with = "serde_bytes_vec")]
    pub peer_id: Vec<u8>,
    /// Its nickname, from its identity document.
    pub nickname: String,
    /// The X25519 encryption key its identity document carried when it was added (or last accepted).
    pub encryption_key: [u8; 32],
    /// The identity revision seen last.
    pub identity_revision: u64,
    /// When it was added, Unix seconds.
    pub added_unix: u64,
    /// Whether the user compared safety numbers and confirmed them.
    pub verified: bool,
    /// A key change seen since, waiting for the user's decision.
    pub key_change: Option<KeyChange>,
}

impl Contact {
    /// Its peer id.
    ///
    /// # Errors
    /// If the stored bytes are not a peer id (a damaged book).
    pub fn peer(&self) -> Result<PeerId, bitdust_core::keys::SignatureError> {
        bitdust_core::keys::peer_id_from_bytes(&self.peer_id)
    }
}

/// Checks a contact name: 1 to [`MAX_NAME_CHARS`] characters, no control characters, no `@` (which would read as
/// a global id).
///
/// # Errors
/// [`ContactError::BadName`].
pub fn validate_name(name: &str) -> Result<(), ContactError> {
    let n = name.chars().count();
    if (1..=MAX_NAME_CHARS).contains(&n) && !name.chars().any(|c| c.is_control() || c == '@') && name.trim() == name {
        Ok(())
    } else {
        Err(ContactError::BadName(name.to_string()))
    }
}

/// The address book.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactBook {
    /// The contacts, in the order they were added.
    pub contacts: Vec<Contact>,
}

impl ContactBook {
    /// Adds `contact`.
    ///
    /// # Errors
    /// [`ContactError::BadName`], [`ContactError::NameTaken`], [`ContactError::AlreadyContact`].
    pub fn add(&mut self, contact: Contact) -> Result<(), ContactError> {
        validate_name(&contact.name)?;
        if let Some(c) = self.by_peer(&contact.peer_id) {
            let peer = PeerId::from_bytes(&c.peer_id).map(|p| p.to_string()).unwrap_or_default();
            return Err(ContactError::AlreadyContact { peer, name: c.name.clone() });
        }
        if self.get(&contact.name).is_some() {
            return Err(ContactError::NameTaken(contact.name));
        }
        self.contacts.push(contact);
        Ok(())
    }

    /// Removes the contact `name`.
    ///
    /// # Errors
    /// [`ContactError::Unknown`].
    pub fn remove(&mut self, name: &str) -> Result<Contact, ContactError> {
        let i =
            self.contacts.iter().position(|c| c.name == name).ok_or_else(|| ContactError::Unknown(name.to_string()))?;
        Ok(self.contacts.remove(i))
    }

    /// The contact `name`.
    pub fn get(&self, name: &str) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.name == name)
    }

    /// The contact `name`, or [`ContactError::Unknown`].
    ///
    /// # Errors
    /// [`ContactError::Unknown`].
    pub fn named(&self, name: &str) -> Result<&Contact, ContactError> {
        self.get(name).ok_or_else(|| ContactError::Unknown(name.to_string()))
    }

    /// The contact `name`, to change.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Contact> {
        self.contacts.iter_mut().find(|c| c.name == name)
    }

    /// The contact with peer id bytes `peer`.
    pub fn by_peer(&self, peer: &[u8]) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.peer_id == peer)
    }

    /// Records what a lookup found for contact `name`: a nickname claim held by `claimed_by` (if looked up) and an
    /// identity document with `encryption_key` at `revision` (if looked up). A different key flags the contact
    /// (the first change seen is kept until the user decides); the same keys only update the revision. Returns the
    /// flag raised, if any.
    ///
    /// # Errors
    /// [`ContactError::Unknown`].
    pub fn observe(
        &mut self,
        name: &str,
        claimed_by: Option<&PeerId>,
        identity: Option<([u8; 32], u64)>,
    ) -> Result<Option<KeyChange>, ContactError> {
        let c = self.get_mut(name).ok_or_else(|| ContactError::Unknown(name.to_string()))?;
        let mut change = None;
        if let Some(owner) = claimed_by.filter(|o| o.to_bytes() != c.peer_id) {
            change = Some(KeyChange::Nickname { now: owner.to_bytes() });
        }
        if let Some((key, revision)) = identity {
            if key != c.encryption_key {
                change = change.or(Some(KeyChange::EncryptionKey { now: key }));
            } else {
                c.identity_revision = c.identity_revision.max(revision);
            }
        }
        if c.key_change.is_none() {
            c.key_change.clone_from(&change);
            if change.is_some() {
                c.verified = false;
            }
        }
        Ok(change)
    }

    /// Accepts contact `name`'s new encryption key after the user checked it (a nickname that moved to another
    /// identity cannot be accepted: that is another person; add it as a new contact).
    ///
    /// # Errors
    /// [`ContactError::Unknown`].
    pub fn accept_key_change(&mut self, name: &str) -> Result<(), ContactError> {
        let c = self.get_mut(name).ok_or_else(|| ContactError::Unknown(name.to_string()))?;
        if let Some(KeyChange::EncryptionKey { now }) = c.key_change {
            c.encryption_key = now;
            c.key_change = None;
        }
        Ok(())
    }
}

/// The safety number of two identities: 60 digits in 12 groups of 5, the same whichever side computes it. Both
/// read it to each other out of band (in person, on a call); equal numbers mean each holds the other's real key.
/// BLAKE3 in key derivation mode (context `bitdust 2026-12 safety number v1`) over both peer ids' bytes in
/// ascending order, read as 60 bytes of output; each group is 5 of them read as a number modulo 100,000 (the shape
/// of Signal's safety numbers).
pub fn safety_number(a: &PeerId, b: &PeerId) -> String {
    let (mut x, mut y) = (a.to_bytes(), b.to_bytes());
    if x > y {
        std::mem::swap(&mut x, &mut y);
    }
    x.extend(y);
    let mut out = blake3::Hasher::new_derive_key("bitdust 2026-12 safety number v1");
    out.update(&x);
    let mut digits = [0u8; 60];
    out.finalize_xof().fill(&mut digits);
    digits
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)) % 100_000;
            format!("{n:05}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitdust_core::keys::NodeKeys;

    fn contact(name: &str, keys: &NodeKeys) -> Contact {
        Contact {
            name: name.into(),
            peer_id: keys.peer_id().to_bytes(),
            nickname: name.into(),
            encryption_key: keys.encryption_public_key(),
            identity_revision: 1,
            added_unix: 1,
            verified: false,
            key_change: None,
        }
    }

    #[test]
    fn addresses_parse_and_a_global_id_checks_the_key() {
        let bob = NodeKeys::generate().peer_id();
        assert_eq!(Address::parse("bob").unwrap(), Address::Nickname("bob".into()));
        assert_eq!(Address::parse(&bob.to_string()).unwrap(), Address::Peer(bob));
        let global = format!("bob@{}", short_peer_id(&bob));
        let address = Address::parse(&global).unwrap();
        assert!(address.admits(&bob));
        assert!(!address.admits(&NodeKeys::generate().peer_id()));
        for bad in ["b", "Bob Smith", "bob@short", "bob@", "@abcdefgh", ""] {
            assert!(matches!(Address::parse(bad), Err(ContactError::BadAddress(_))), "{bad}");
        }
    }

    #[test]
    fn the_book_refuses_duplicates_and_bad_names() {
        let (bob, carol) = (NodeKeys::generate(), NodeKeys::generate());
        let mut book = ContactBook::default();
        book.add(contact("bob", &bob)).unwrap();
        assert!(matches!(book.add(contact("bobby", &bob)), Err(ContactError::AlreadyContact { .. })));
        assert_eq!(book.add(contact("bob", &carol)), Err(ContactError::NameTaken("bob".into())));
        for bad in ["", " bob", "a@b", "tab\there", &"x".repeat(65)] {
            assert!(matches!(book.add(contact(bad, &carol)), Err(ContactError::BadName(_))), "{bad:?}");
        }
        book.add(contact("Carol (work)", &carol)).unwrap();
        assert_eq!(book.remove("bob").unwrap().name, "bob");
        assert_eq!(book.remove("bob"), Err(ContactError::Unknown("bob".into())));
    }

    /// Issue 15: a contact whose key changes is flagged, never silently accepted.
    #[test]
    fn a_changed_key_is_flagged_and_kept_until_the_user_decides() {
        let (bob, mallory) = (NodeKeys::generate(), NodeKeys::generate());
        let mut book = ContactBook::default();
        book.add(contact("bob", &bob)).unwrap();
        book.get_mut("bob").unwrap().verified = true;
        // the same keys at a later revision: nothing to flag
        assert_eq!(book.observe("bob", Some(&bob.peer_id()), Some((bob.encryption_public_key(), 4))).unwrap(), None);
        assert_eq!(book.get("bob").unwrap().identity_revision, 4);
        // the nickname now held by mallory: flagged, unverified, the pinned key unchanged
        let change = book.observe("bob", Some(&mallory.peer_id()), None).unwrap();
        assert_eq!(change, Some(KeyChange::Nickname { now: mallory.peer_id().to_bytes() }));
        let c = book.get("bob").unwrap();
        assert!(!c.verified && c.peer_id == bob.peer_id().to_bytes() && c.key_change.is_some());
        assert!(book.accept_key_change("bob").is_ok());
        assert!(book.get("bob").unwrap().key_change.is_some(), "a moved nickname is another person: not accepted");
        // a new encryption key can be accepted once checked
        let mut book = ContactBook::default();
        book.add(contact("bob", &bob)).unwrap();
        let new_key = NodeKeys::generate().encryption_public_key();
        book.observe("bob", None, Some((new_key, 5))).unwrap();
        assert_eq!(book.get("bob").unwrap().key_change, Some(KeyChange::EncryptionKey { now: new_key }));
        book.accept_key_change("bob").unwrap();
        assert_eq!(
            (book.get("bob").unwrap().encryption_key, book.get("bob").unwrap().key_change.clone()),
            (new_key, None)
        );
    }

    #[test]
    fn safety_numbers_are_symmetric_and_differ_per_pair() {
        let (a, b, c) =
            (NodeKeys::generate().peer_id(), NodeKeys::generate().peer_id(), NodeKeys::generate().peer_id());
        let ab = safety_number(&a, &b);
        assert_eq!(ab, safety_number(&b, &a));
        assert_ne!(ab, safety_number(&a, &c));
        assert!(ab.split(' ').all(|g| g.len() == 5 && g.chars().all(|d| d.is_ascii_digit())), "{ab}");
        assert_eq!(ab.len(), 12 * 5 + 11);
    }
}
