//! Public shares and the keyword index (the sharing issue's "others" level and `bitdust search`).
//!
//! A public share is a share whose grants name no grantee: anyone holding its key fetches it from the owner's
//! suppliers. The owner describes it in a [`PublicEntry`] (title, description, keywords, the key) signed with its
//! identity key, and announces itself in the DHT as a *provider* of each keyword ([`keyword_key`]). A search looks up
//! the providers of each word, asks each for its entries matching the words (`Request::Listing`), and keeps only
//! entries signed by the provider that answered: nobody can add to, change or replay into another publisher's
//! listing, and a provider can only list its own shares.
//!
//! Ranking: entries matching more of the query's words first, then the newest. Limits against spam: a publisher
//! lists at most [`MAX_LISTING`] entries per answer and [`MAX_LISTING_BYTES`] in all, a search asks at most
//! [`MAX_PROVIDERS`] providers, an entry's words, title and description are bounded ([`check_entry`]).

use bitdust_core::keys::{self, NodeKeys, SignatureError};
use bitdust_core::PeerId;
use serde::{Deserialize, Serialize};

const ENTRY_PURPOSE: &[u8] = b"bitdust/public-entry/v1\0";
/// Most keywords an entry has.
pub const MAX_KEYWORDS: usize = 16;
/// A keyword's length in characters.
pub const KEYWORD_CHARS: std::ops::RangeInclusive<usize> = 2..=32;
/// Most bytes of a title.
pub const MAX_TITLE_BYTES: usize = 200;
/// Most bytes of a description.
pub const MAX_DESCRIPTION_BYTES: usize = 2000;
/// Most entries in one `Listing` answer.
pub const MAX_LISTING: usize = 20;
/// Most bytes of one `Listing` answer (the entries with their keys).
pub const MAX_LISTING_BYTES: usize = 256 * 1024;
/// Most providers one search asks.
pub const MAX_PROVIDERS: usize = 32;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 8;

/// Why an entry is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    /// Not signed by its owner.
    #[error("the entry is not signed by its publisher")]
    Signature,
    /// Over a limit, or a bad keyword.
    #[error("malformed entry: {0}")]
    Malformed(String),
}

impl From<SignatureError> for EntryError {
    fn from(_: SignatureError) -> Self {
        Self::Signature
    }
}

/// A public share, as its owner describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicEntry {
    /// The owner's peer id bytes.
    #[serde(with = "serde_bytes")]
    pub owner: Vec<u8>,
    /// The share's id.
    pub id: [u8; 16],
    /// The backup's name.
    pub backup: String,
    /// The version shared, or every version the backup had.
    pub version: Option<u32>,
    /// A title (at most [`MAX_TITLE_BYTES`]).
    pub title: String,
    /// A description (at most [`MAX_DESCRIPTION_BYTES`]).
    pub description: String,
    /// Keywords ([`normalize_keywords`]).
    pub keywords: Vec<String>,
    /// The share key (at most [`bitdust_core::MAX_CAPABILITY_BYTES`]).
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    /// When published, Unix seconds.
    pub published_unix: u64,
}

/// An entry and its owner's Ed25519 signature over `ENTRY_PURPOSE || postcard(entry)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPublicEntry {
    /// The entry.
    pub entry: PublicEntry,
    /// The signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

fn signed_bytes(entry: &PublicEntry) -> Vec<u8> {
    let mut out = ENTRY_PURPOSE.to_vec();
    out.extend(postcard::to_stdvec(entry).unwrap_or_default());
    out
}

/// Lower-cases, splits on anything but letters, digits and `-`, and keeps the distinct words of
/// [`KEYWORD_CHARS`] characters, at most `max`, in order.
pub fn words(text: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in text.split(|c: char| !(c.is_alphanumeric() || c == '-')) {
        let w = w.to_lowercase();
        if KEYWORD_CHARS.contains(&w.chars().count()) && !out.contains(&w) {
            out.push(w);
            if out.len() == max {
                break;
            }
        }
    }
    out
}

/// An entry's keywords from what the user typed (`"music, live 2024"`): [`words`], at most [`MAX_KEYWORDS`].
pub fn normalize_keywords(text: &str) -> Vec<String> {
    words(text, MAX_KEYWORDS)
}

/// The DHT provider key of keyword `word`.
pub fn keyword_key(word: &str) -> Vec<u8> {
    blake3::derive_key("bitdust 2026-12 search keyword v1", word.as_bytes()).to_vec()
}

/// Checks an entry's sizes and keywords (what a peer controls).
///
/// # Errors
/// [`EntryError::Malformed`] naming the field.
pub fn check_entry(e: &PublicEntry) -> Result<(), EntryError> {
    let bad = |what: String| Err(EntryError::Malformed(what));
    if e.title.len() > MAX_TITLE_BYTES || e.description.len() > MAX_DESCRIPTION_BYTES {
        return bad("a title or description over its limit".into());
    }
    if e.backup.is_empty() || e.backup.len() > crate::proto::shares::MAX_BACKUP_NAME_BYTES {
        return bad("a backup name over its limit".into());
    }
    if e.keywords.len() > MAX_KEYWORDS || normalize_keywords(&e.keywords.join(" ")) != e.keywords {
        return bad("keywords not in their normal form".into());
    }
    if e.key.len() > bitdust_core::MAX_CAPABILITY_BYTES {
        return bad(format!("a key of {} bytes", e.key.len()));
    }
    Ok(())
}

impl SignedPublicEntry {
    /// Signs `entry` as its owner `keys`.
    ///
    /// # Errors
    /// [`EntryError::Malformed`] if `entry` fails [`check_entry`] or names another owner.
    pub fn sign(keys: &NodeKeys, entry: PublicEntry) -> Result<Self, EntryError> {
        check_entry(&entry)?;
        if entry.owner != keys.peer_id().to_bytes() {
            return Err(EntryError::Malformed("another owner".into()));
        }
        let signature = keys.sign(&signed_bytes(&entry));
        Ok(Self { entry, signature })
    }

    /// Checks the entry's limits and that its owner signed it; returns the owner.
    ///
    /// # Errors
    /// [`EntryError`].
    pub fn verify(&self) -> Result<PeerId, EntryError> {
        check_entry(&self.entry)?;
        let owner = PeerId::from_bytes(&self.entry.owner).map_err(|_| EntryError::Malformed("owner".into()))?;
        keys::verify(&owner, &signed_bytes(&self.entry), &self.signature)?;
        Ok(owner)
    }
}

/// How many of `query` (normalized words) `entry` matches: its keywords, its title's and description's words.
pub fn score(entry: &PublicEntry, query: &[String]) -> usize {
    let mut text = words(&entry.title, 64);
    text.extend(words(&entry.description, 256));
    query.iter().filter(|q| entry.keywords.contains(q) || text.contains(q)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(keys: &NodeKeys) -> PublicEntry {
        PublicEntry {
            owner: keys.peer_id().to_bytes(),
            id: [1; 16],
            backup: "photos".into(),
            version: None,
            title: "Alpine Lakes".into(),
            description: "Photos of lakes in the Alps".into(),
            keywords: normalize_keywords("photos, Lakes; alps 2024 x"),
            key: vec![7; 100],
            published_unix: 1,
        }
    }

    #[test]
    fn keywords_are_normal_words_and_entries_rank_by_matches() {
        assert_eq!(normalize_keywords("photos, Lakes; alps 2024 x photos"), vec!["photos", "lakes", "alps", "2024"]);
        let keys = NodeKeys::generate();
        let e = entry(&keys);
        assert_eq!(score(&e, &words("lakes alps", 8)), 2);
        assert_eq!(score(&e, &words("alpine", 8)), 1, "a title word");
        assert_eq!(score(&e, &words("music", 8)), 0);
        assert_ne!(keyword_key("lakes"), keyword_key("alps"));
    }

    #[test]
    fn only_the_owner_signs_its_entry_and_nothing_in_it_can_change() {
        let (alice, mallory) = (NodeKeys::generate(), NodeKeys::generate());
        let signed = SignedPublicEntry::sign(&alice, entry(&alice)).unwrap();
        assert_eq!(signed.verify(), Ok(alice.peer_id()));
        // mallory changes the key (to point searchers at her data) or the words: refused
        let mut changed = signed.clone();
        changed.entry.key = vec![8; 100];
        assert_eq!(changed.verify(), Err(EntryError::Signature));
        let mut reworded = signed.clone();
        reworded.entry.keywords.push("free".into());
        assert_eq!(reworded.verify(), Err(EntryError::Signature));
        // she signs an entry in alice's name: refused, and she cannot make one naming alice
        let mut forged = SignedPublicEntry::sign(&mallory, entry(&mallory)).unwrap();
        forged.entry.owner = alice.peer_id().to_bytes();
        assert_eq!(forged.verify(), Err(EntryError::Signature));
        assert!(SignedPublicEntry::sign(&mallory, entry(&alice)).is_err());
        // limits
        let mut long = entry(&alice);
        long.title = "t".repeat(MAX_TITLE_BYTES + 1);
        assert!(SignedPublicEntry::sign(&alice, long).is_err());
        let mut odd = entry(&alice);
        odd.keywords = vec!["UPPER".into()];
        assert!(SignedPublicEntry::sign(&alice, odd).is_err());
    }
}
