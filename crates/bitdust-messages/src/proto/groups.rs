//! Group conversations: a roster signed by the group's admin, and Megolm sender keys (Matrix's group ratchet, the
//! `vodozemac` crate: "Megolm group ratchet", matrix.org spec) carried to each member over the members' Olm
//! sessions ([`crate::proto::e2e`]).
//!
//! - A group is a [`Roster`]: its id, name, admin (the creator) and members, with a revision; the admin signs each
//!   revision ([`SignedRoster`]). A member takes a roster only if it is signed by the admin it knows for that group
//!   and newer than the one it holds, so nobody else can add or remove members and an old roster cannot be replayed.
//! - Each member encrypts what it sends to the group with its own outbound Megolm session ([`SenderKey`]): one
//!   encryption per message, whatever the group's size. It gives the session key to each member over Olm; members
//!   keep the senders' inbound sessions in a [`Keyring`].
//! - **On every removal (or leave) each remaining member starts a new sender key** and gives it only to the members
//!   of the new roster: a removed member keeps the old keys (what it could read before) and cannot read what
//!   follows. A member added later gets each sender's key at its current index: Megolm cannot decrypt back from
//!   there, so it reads from the moment it joined.
//! - A group message is authenticated twice: the transport names the sending peer, and Megolm's signature proves
//!   the message was made with the session that peer gave us; a session is accepted only from its own sender.
//!
//! Pure: no tokio, no sockets, no disk.

use std::collections::HashMap;

use bitdust_core::keys::{self, NodeKeys};
use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{GroupSession, InboundGroupSession, MegolmMessage, SessionConfig as MegolmConfig, SessionKey};

/// Purpose prefix of the admin's signature over a roster.
const ROSTER_PURPOSE: &[u8] = b"bitdust/group-roster/v1\0";
/// Most members of a group, the admin included.
pub const MAX_MEMBERS: usize = 256;
/// Longest group name, in characters (Unicode scalar values).
pub const MAX_GROUP_NAME: usize = 64;
/// Sender sessions a [`Keyring`] keeps per member (the current one and a few before, for messages still on the way).
pub const SESSIONS_PER_MEMBER: usize = 4;

/// Errors of the group layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// A roster not signed by its admin, or by an admin other than the group's.
    #[error("the roster is not signed by the group's admin")]
    BadSignature,
    /// A roster no newer than the one held (a replay), or of another group.
    #[error("a stale roster: revision {got} where {have} is held")]
    Stale {
        /// The revision offered.
        got: u64,
        /// The revision held.
        have: u64,
    },
    /// A roster breaking a rule (too many members, a duplicate, the admin not a member, a long name).
    #[error("a malformed roster: {0}")]
    Malformed(String),
    /// A sender key or group message that is not usable.
    #[error("cannot decrypt the group message: {0}")]
    Decrypt(String),
    /// A message from a peer that is not a member of the group.
    #[error("{0} is not a member of the group")]
    NotMember(String),
}

/// One member of a roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its peer id bytes.
    pub peer: Vec<u8>,
    /// The roster revision that added it.
    pub since: u64,
}

/// A group's membership at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    /// The group's id (random, chosen by the admin).
    pub group: [u8; 16],
    /// Its name, at most [`MAX_GROUP_NAME`] characters.
    pub name: String,
    /// The admin's peer id bytes: the only one who signs rosters.
    pub admin: Vec<u8>,
    /// Revision: 1 at creation, one more at each change.
    pub revision: u64,
    /// The members, the admin among them, at most [`MAX_MEMBERS`].
    pub members: Vec<Member>,
}

impl Roster {
    /// A new group of `keys`' identity alone, named `name`.
    ///
    /// # Errors
    /// [`GroupError::Malformed`] for a name over [`MAX_GROUP_NAME`] bytes or empty.
    pub fn create(keys: &NodeKeys, name: &str) -> Result<Self, GroupError> {
        let admin = keys.peer_id().to_bytes();
        let roster = Self {
            group: rand::random(),
            name: name.to_string(),
            admin: admin.clone(),
            revision: 1,
            members: vec![Member { peer: admin, since: 1 }],
        };
        roster.check()?;
        Ok(roster)
    }

    /// Whether `peer` is a member.
    pub fn is_member(&self, peer: &PeerId) -> bool {
        let bytes = peer.to_bytes();
        self.members.iter().any(|m| m.peer == bytes)
    }

    /// The members' peer ids (those that parse).
    pub fn peers(&self) -> Vec<PeerId> {
        self.members.iter().filter_map(|m| PeerId::from_bytes(&m.peer).ok()).collect()
    }

    /// The next revision with `peer` added (unchanged if it is a member already).
    ///
    /// # Errors
    /// [`GroupError::Malformed`] past [`MAX_MEMBERS`].
    pub fn with_member(&self, peer: &PeerId) -> Result<Self, GroupError> {
        let mut next = self.clone();
        if !self.is_member(peer) {
            next.revision += 1;
            next.members.push(Member { peer: peer.to_bytes(), since: next.revision });
        }
        next.check()?;
        Ok(next)
    }

    /// The next revision without `peer` (unchanged if it is not a member).
    ///
    /// # Errors
    /// [`GroupError::Malformed`] for removing the admin.
    pub fn without_member(&self, peer: &PeerId) -> Result<Self, GroupError> {
        let mut next = self.clone();
        if self.is_member(peer) {
            next.revision += 1;
            let bytes = peer.to_bytes();
            next.members.retain(|m| m.peer != bytes);
        }
        next.check()?;
        Ok(next)
    }

    /// Whether going from `self` to `next` removed anyone (then every sender key is replaced).
    pub fn removes_from(&self, next: &Roster) -> bool {
        self.members.iter().any(|m| !next.members.iter().any(|n| n.peer == m.peer))
    }

    fn check(&self) -> Result<(), GroupError> {
        let bad = |why: &str| Err(GroupError::Malformed(why.to_string()));
        if self.name.is_empty() || self.name.chars().count() > MAX_GROUP_NAME {
            return bad("a group name is 1 to 64 characters");
        }
        if self.members.len() > MAX_MEMBERS {
            return bad("too many members");
        }
        if !self.members.iter().any(|m| m.peer == self.admin) {
            return bad("the admin is not a member");
        }
        for (i, m) in self.members.iter().enumerate() {
            if PeerId::from_bytes(&m.peer).is_err() {
                return bad("a member that is not a peer id");
            }
            if self.members[..i].iter().any(|o| o.peer == m.peer) {
                return bad("a member listed twice");
            }
            if m.since > self.revision {
                return bad("a member added after this revision");
            }
        }
        Ok(())
    }

    fn signed_bytes(&self) -> Vec<u8> {
        [ROSTER_PURPOSE, &crate::proto::wire::encode(self)].concat()
    }
}

/// A roster with its admin's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedRoster {
    /// The roster.
    pub roster: Roster,
    /// The admin's Ed25519 signature over `ROSTER_PURPOSE || postcard(roster)`.
    pub signature: Vec<u8>,
}

impl SignedRoster {
    /// Signs `roster` as its admin.
    ///
    /// # Errors
    /// [`GroupError::BadSignature`] if `keys` is not the roster's admin; [`GroupError::Malformed`].
    pub fn sign(keys: &NodeKeys, roster: Roster) -> Result<Self, GroupError> {
        if roster.admin != keys.peer_id().to_bytes() {
            return Err(GroupError::BadSignature);
        }
        roster.check()?;
        let signature = keys.sign(&roster.signed_bytes());
        Ok(Self { roster, signature })
    }

    /// Checks the roster alone: well formed and signed by the admin it names.
    ///
    /// # Errors
    /// [`GroupError::BadSignature`], [`GroupError::Malformed`].
    pub fn verify(&self) -> Result<&Roster, GroupError> {
        self.roster.check()?;
        let admin = PeerId::from_bytes(&self.roster.admin).map_err(|_| GroupError::BadSignature)?;
        keys::verify(&admin, &self.roster.signed_bytes(), &self.signature).map_err(|_| GroupError::BadSignature)?;
        Ok(&self.roster)
    }

    /// Checks that this roster may replace `held` (the one kept for its group, if any): signed by its admin, the
    /// same group and admin, and newer.
    ///
    /// # Errors
    /// [`GroupError::BadSignature`] (another admin), [`GroupError::Stale`], [`GroupError::Malformed`].
    pub fn replaces(&self, held: Option<&Roster>) -> Result<&Roster, GroupError> {
        let roster = self.verify()?;
        if let Some(held) = held {
            if held.group != roster.group || held.admin != roster.admin {
                return Err(GroupError::BadSignature);
            }
            if roster.revision <= held.revision {
                return Err(GroupError::Stale { got: roster.revision, have: held.revision });
            }
        }
        Ok(roster)
    }
}

/// [`crate::proto::e2e::Envelope::message_type`] of a group message: its ciphertext is a postcard
/// [`GroupEnvelope`], not an Olm message.
pub const GROUP_MESSAGE_TYPE: u8 = 2;

/// What members tell each other about a group, over their Olm sessions (`Body::Group`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupControl {
    /// The admin's roster: a new group, an add or a removal (the removed member is told too).
    Roster(SignedRoster),
    /// The sender's Megolm session key for the group, with the roster it was made for (so a member that has not
    /// had that roster from the admin yet takes it first: its signature is the admin's, whoever carries it).
    SenderKey {
        /// The roster it was made for.
        roster: SignedRoster,
        /// [`SenderKey::session_key`].
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    /// The sender leaves the group (the admin then removes it from the roster).
    Left {
        /// The group.
        group: [u8; 16],
    },
    /// The group's earlier messages, as the admin holds them, for a member it added with the history (taken only
    /// from the admin; at most [`MAX_PAST_BYTES`] of texts in one control, several controls for more).
    History {
        /// The group.
        group: [u8; 16],
        /// Oldest first.
        messages: Vec<PastMessage>,
    },
}

/// Most bytes of texts in one [`GroupControl::History`] (it travels as one Olm message of at most 64 KiB).
pub const MAX_PAST_BYTES: usize = 40 * 1024;
/// Most earlier messages the admin gives a member added with the history.
pub const MAX_PAST_MESSAGES: usize = 1000;

/// One earlier message of a group, as the admin holds it: the admin vouches for it (its author's Megolm
/// signature is not carried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastMessage {
    /// The author's peer id bytes.
    #[serde(with = "serde_bytes")]
    pub from: Vec<u8>,
    /// The message id.
    pub id: [u8; 16],
    /// When the author wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// The text.
    pub text: String,
}

/// Cuts `messages` into runs of at most [`MAX_PAST_BYTES`] of text each (a message alone is never over it: a text
/// is at most 16 KiB), oldest first.
pub fn past_chunks(messages: Vec<PastMessage>) -> Vec<Vec<PastMessage>> {
    let mut chunks: Vec<Vec<PastMessage>> = Vec::new();
    let mut bytes = 0;
    for m in messages {
        let size = m.text.len() + 64;
        if chunks.is_empty() || bytes + size > MAX_PAST_BYTES {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        if let Some(last) = chunks.last_mut() {
            last.push(m);
        }
    }
    chunks
}

/// The plaintext of a group message (padded, then encrypted with the sender's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupPlain {
    /// Random id (the replay guard names it).
    pub id: [u8; 16],
    /// When the sender wrote it, Unix milliseconds.
    pub sent_unix_ms: u64,
    /// The text, at most [`crate::proto::wire::MAX_TEXT_BYTES`].
    pub text: String,
}

/// A group message as it travels, inside an authenticated transport that names its sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEnvelope {
    /// The group.
    pub group: [u8; 16],
    /// The roster revision the sender encrypted under.
    pub revision: u64,
    /// The Megolm message (signed by the sender's session key).
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// This member's outbound Megolm session for one group.
pub struct SenderKey {
    session: GroupSession,
    /// The roster revision it was made for.
    pub revision: u64,
}

impl SenderKey {
    /// A new sender key for roster `revision`.
    pub fn new(revision: u64) -> Self {
        Self { session: GroupSession::new(MegolmConfig::version_1()), revision }
    }

    /// The session key to give members (over Olm): it decrypts from the session's current index on.
    pub fn session_key(&self) -> Vec<u8> {
        self.session.session_key().to_bytes()
    }

    /// Encrypts `padded` (see [`crate::proto::e2e::pad`]) for group `group`.
    pub fn encrypt(&mut self, group: [u8; 16], padded: &[u8]) -> GroupEnvelope {
        let message = self.session.encrypt(padded);
        GroupEnvelope { group, revision: self.revision, ciphertext: message.to_bytes() }
    }

    /// The session, pickled and encrypted under `key`.
    pub fn pickle(&self, key: &[u8; 32]) -> String {
        self.session.pickle().encrypt(key)
    }

    /// A sender key from [`SenderKey::pickle`].
    ///
    /// # Errors
    /// [`GroupError::Decrypt`] for a wrong key or damaged pickle.
    pub fn unpickle(pickle: &str, key: &[u8; 32], revision: u64) -> Result<Self, GroupError> {
        let p = vodozemac::megolm::GroupSessionPickle::from_encrypted(pickle, key)
            .map_err(|e| GroupError::Decrypt(e.to_string()))?;
        Ok(Self { session: GroupSession::from_pickle(p), revision })
    }
}

/// The senders' inbound sessions of one group, per member, newest first.
#[derive(Default)]
pub struct Keyring {
    sessions: HashMap<Vec<u8>, Vec<InboundGroupSession>>,
}

impl Keyring {
    /// Takes the session key `member` gave us (over Olm, so it is `member`'s).
    ///
    /// # Errors
    /// [`GroupError::Decrypt`] for bytes that are not a session key.
    pub fn add(&mut self, member: &PeerId, session_key: &[u8]) -> Result<(), GroupError> {
        let key = SessionKey::from_bytes(session_key).map_err(|e| GroupError::Decrypt(e.to_string()))?;
        let session = InboundGroupSession::new(&key, MegolmConfig::version_1());
        let list = self.sessions.entry(member.to_bytes()).or_default();
        if list.iter().any(|s| s.session_id() == session.session_id()) {
            return Ok(());
        }
        list.insert(0, session);
        list.truncate(SESSIONS_PER_MEMBER);
        Ok(())
    }

    /// Forgets every session of `member` (it left or was removed).
    pub fn forget(&mut self, member: &PeerId) {
        self.sessions.remove(&member.to_bytes());
    }

    /// The sessions of `member`, pickled and encrypted under `key`, newest first.
    pub fn pickles_of(&self, member: &PeerId, key: &[u8; 32]) -> Vec<String> {
        self.sessions
            .get(&member.to_bytes())
            .map_or_else(Vec::new, |l| l.iter().map(|s| s.pickle().encrypt(key)).collect())
    }

    /// Takes back the sessions of `member` from [`Keyring::pickles_of`] (those that do not unpickle are dropped).
    pub fn restore(&mut self, member: &PeerId, pickles: &[String], key: &[u8; 32]) {
        let sessions: Vec<InboundGroupSession> = pickles
            .iter()
            .filter_map(|p| vodozemac::megolm::InboundGroupSessionPickle::from_encrypted(p, key).ok())
            .map(InboundGroupSession::from_pickle)
            .take(SESSIONS_PER_MEMBER)
            .collect();
        if !sessions.is_empty() {
            self.sessions.insert(member.to_bytes(), sessions);
        }
    }

    /// Decrypts `envelope` sent by `member` (the peer the transport names) with one of its sessions. Returns the
    /// padded plaintext and its Megolm message index.
    ///
    /// # Errors
    /// [`GroupError::NotMember`] if no session of `member` is held; [`GroupError::Decrypt`] if none decrypts it
    /// (a forged or tampered message, or one from before we joined).
    pub fn decrypt(&mut self, member: &PeerId, envelope: &GroupEnvelope) -> Result<(Vec<u8>, u32), GroupError> {
        let message =
            MegolmMessage::from_bytes(&envelope.ciphertext).map_err(|e| GroupError::Decrypt(e.to_string()))?;
        let sessions =
            self.sessions.get_mut(&member.to_bytes()).ok_or_else(|| GroupError::NotMember(member.to_string()))?;
        let mut last = String::from("no session");
        for s in sessions.iter_mut() {
            match s.decrypt(&message) {
                Ok(d) => return Ok((d.plaintext, d.message_index)),
                Err(e) => last = e.to_string(),
            }
        }
        Err(GroupError::Decrypt(last))
    }

    /// The members whose sessions are held.
    pub fn members(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::e2e::{pad, unpad};

    fn group_of(admin: &NodeKeys, others: &[&NodeKeys]) -> SignedRoster {
        let mut roster = Roster::create(admin, "friends").unwrap();
        for k in others {
            roster = roster.with_member(&k.peer_id()).unwrap();
        }
        SignedRoster::sign(admin, roster).unwrap()
    }

    #[test]
    fn earlier_messages_are_cut_into_controls_that_fit_one_olm_message() {
        let big = "x".repeat(crate::proto::wire::MAX_TEXT_BYTES);
        let messages: Vec<PastMessage> =
            (0..10u8).map(|i| PastMessage { from: vec![i], id: [i; 16], sent_unix_ms: 0, text: big.clone() }).collect();
        let chunks = past_chunks(messages.clone());
        assert_eq!(chunks.concat(), messages, "all of them, in order");
        for c in &chunks {
            assert!(!c.is_empty() && c.iter().map(|m| m.text.len()).sum::<usize>() <= MAX_PAST_BYTES);
            let control = GroupControl::History { group: [0; 16], messages: c.clone() };
            let body = crate::proto::wire::encode(&crate::proto::wire::Body::Group(control));
            assert!(pad(&body).is_ok(), "{} bytes fit the largest bucket", body.len());
        }
        assert!(past_chunks(Vec::new()).is_empty());
    }

    #[test]
    fn only_the_admin_signs_a_roster_and_an_old_one_is_not_taken_again() {
        let (admin, bob, mallory) = (NodeKeys::generate(), NodeKeys::generate(), NodeKeys::generate());
        let v2 = group_of(&admin, &[&bob]);
        assert_eq!(v2.replaces(None).unwrap().revision, 2);
        // mallory cannot sign the group's roster, nor pass off her own roster of the same group
        assert_eq!(SignedRoster::sign(&mallory, v2.roster.clone()), Err(GroupError::BadSignature));
        let mut hers = v2.roster.with_member(&mallory.peer_id()).unwrap();
        hers.admin = mallory.peer_id().to_bytes();
        let forged = SignedRoster::sign(&mallory, hers).unwrap();
        assert!(forged.verify().is_ok(), "well signed by its own admin");
        assert_eq!(forged.replaces(Some(&v2.roster)), Err(GroupError::BadSignature), "but not this group's admin");
        // a tampered roster fails its signature
        let mut tampered = v2.clone();
        tampered.roster.members.push(Member { peer: mallory.peer_id().to_bytes(), since: 2 });
        assert_eq!(tampered.verify(), Err(GroupError::BadSignature));
        // the admin removes bob (v3): v2 cannot come back
        let v3 = SignedRoster::sign(&admin, v2.roster.without_member(&bob.peer_id()).unwrap()).unwrap();
        assert!(v3.replaces(Some(&v2.roster)).is_ok());
        assert_eq!(v2.replaces(Some(&v3.roster)), Err(GroupError::Stale { got: 2, have: 3 }));
        assert!(v2.roster.removes_from(&v3.roster) && !v3.roster.removes_from(&v2.roster));
        // the admin cannot be removed; names and sizes are bounded
        assert!(v3.roster.without_member(&admin.peer_id()).is_err());
        assert!(Roster::create(&admin, &"é".repeat(MAX_GROUP_NAME + 1)).is_err());
        assert!(Roster::create(&admin, &"é".repeat(MAX_GROUP_NAME)).is_ok());
        assert!(Roster::create(&admin, "").is_err());
        let mut full = v3.roster.clone();
        for _ in 1..MAX_MEMBERS {
            full = full.with_member(&NodeKeys::generate().peer_id()).unwrap();
        }
        assert!(full.with_member(&NodeKeys::generate().peer_id()).is_err());
    }

    #[test]
    fn a_removed_member_cannot_read_what_follows_and_a_late_joiner_reads_from_its_join() {
        let (alice, carol) = (NodeKeys::generate(), NodeKeys::generate());
        let id = [7; 16];
        // alice's sender key, given to bob and carol
        let mut key = SenderKey::new(2);
        let (mut bobs, mut carols) = (Keyring::default(), Keyring::default());
        bobs.add(&alice.peer_id(), &key.session_key()).unwrap();
        carols.add(&alice.peer_id(), &key.session_key()).unwrap();
        let first = key.encrypt(id, &pad(b"before").unwrap());
        for ring in [&mut bobs, &mut carols] {
            let (plain, index) = ring.decrypt(&alice.peer_id(), &first).unwrap();
            assert_eq!((unpad(&plain).unwrap(), index), (&b"before"[..], 0));
        }
        // a message is taken only from the sender whose session it is
        assert!(matches!(bobs.decrypt(&carol.peer_id(), &first), Err(GroupError::NotMember(_))));

        // carol is removed: alice starts a new sender key and gives it to bob only
        let mut key = SenderKey::new(3);
        bobs.add(&alice.peer_id(), &key.session_key()).unwrap();
        let after = key.encrypt(id, &pad(b"after").unwrap());
        assert_eq!(unpad(&bobs.decrypt(&alice.peer_id(), &after).unwrap().0).unwrap(), b"after");
        assert!(matches!(carols.decrypt(&alice.peer_id(), &after), Err(GroupError::Decrypt(_))), "carol is out");

        // dave joins later: he gets the key at its current index and reads from there, not before
        let between = key.encrypt(id, &pad(b"between").unwrap());
        let mut daves = Keyring::default();
        daves.add(&alice.peer_id(), &key.session_key()).unwrap();
        let joined = key.encrypt(id, &pad(b"welcome").unwrap());
        assert_eq!(unpad(&daves.decrypt(&alice.peer_id(), &joined).unwrap().0).unwrap(), b"welcome");
        assert!(daves.decrypt(&alice.peer_id(), &between).is_err(), "from before he joined");
        assert!(daves.decrypt(&alice.peer_id(), &after).is_err());

        // a tampered message does not decrypt (Megolm's MAC and signature)
        let mut bad = joined.clone();
        let last = bad.ciphertext.len() - 1;
        bad.ciphertext[last] ^= 1;
        assert!(bobs.decrypt(&alice.peer_id(), &bad).is_err());
        // and a session key pickled comes back working
        let pickle_key = [9; 32];
        let mut again = SenderKey::unpickle(&key.pickle(&pickle_key), &pickle_key, key.revision).unwrap();
        let later = again.encrypt(id, &pad(b"later").unwrap());
        assert_eq!(unpad(&bobs.decrypt(&alice.peer_id(), &later).unwrap().0).unwrap(), b"later");
    }
}
