//! Public shares on the node ([`crate::proto::public`]): publishing (a share with no grantee, a signed entry, this
//! node a DHT provider of each keyword), answering `Listing`, and searching.
//!
//! ```text
//! node database
//!   messages/public   share id -> our signed entry (what we answer a Listing with)
//!   messages/found    owner ‖ share id -> an entry a search found (so `ls OWNER:NAME` and `restore` can use it)
//! ```

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bitdust_api::{SearchHit, SearchResults};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use futures::StreamExt;

use crate::proto::public::{
    keyword_key, normalize_keywords, score, words, PublicEntry, SignedPublicEntry, MAX_LISTING, MAX_LISTING_BYTES,
    MAX_PROVIDERS, MAX_QUERY_WORDS,
};
use crate::proto::wire::{Request, Response};
use crate::service::Messages;

const PUBLIC: &str = "messages/public";
const FOUND: &str = "messages/found";
/// Public shares one node publishes at most.
pub const MAX_PUBLIC_SHARES: usize = 100;
/// Search results kept for `ls` and `restore` (the oldest are forgotten).
const MAX_FOUND: usize = 1000;
/// How long a search waits for one publisher's listing.
const LISTING_TIMEOUT: Duration = Duration::from_secs(5);
/// Words of a title indexed besides the keywords.
const TITLE_WORDS: usize = 8;

impl Versioned for SignedPublicEntry {
    const FORMAT: u16 = 1;
}

impl Messages {
    /// Publishes a share (already made with no grantee, `key`) of `backup`: signs its entry, keeps it, and announces
    /// this node as a provider of each keyword and title word.
    ///
    /// # Errors
    /// Over [`MAX_PUBLIC_SHARES`], an entry over its limits, the database.
    pub(crate) async fn publish(
        &self,
        id: [u8; 16],
        backup: &str,
        version: Option<u32>,
        key: Vec<u8>,
        (title, description, keywords): (&str, &str, &str),
    ) -> Result<()> {
        if self.node.db().count(PUBLIC)? as usize >= MAX_PUBLIC_SHARES {
            bail!("this node publishes {MAX_PUBLIC_SHARES} public shares already: revoke one first");
        }
        let entry = PublicEntry {
            owner: self.node.peer_id().to_bytes(),
            id,
            backup: backup.to_string(),
            version,
            title: title.to_string(),
            description: description.to_string(),
            keywords: normalize_keywords(keywords),
            key,
            published_unix: bitdust_node::home::unix_now(),
        };
        let signed = SignedPublicEntry::sign(self.node.keys(), entry)?;
        self.node.db().write(|tx| tx.table(PUBLIC)?.put(&id, &signed))?;
        self.announce_entry(&signed.entry).await;
        Ok(())
    }

    /// Announces this node as a provider of `entry`'s keywords and title words.
    async fn announce_entry(&self, entry: &PublicEntry) {
        let mut all = entry.keywords.clone();
        all.extend(words(&entry.title, TITLE_WORDS).into_iter().filter(|w| !entry.keywords.contains(w)));
        for w in all {
            if let Err(e) = self.node.network().start_providing(keyword_key(&w)).await {
                tracing::info!(word = %w, error = %e, "a keyword not announced yet");
            }
        }
    }

    /// Announces every public share again (at start: provider records expire while a node is away).
    pub(crate) async fn announce_public(&self) {
        let Ok(rows) = self.node.db().records::<SignedPublicEntry>(PUBLIC, None, MAX_PUBLIC_SHARES) else { return };
        for (_, signed) in rows {
            self.announce_entry(&signed.entry).await;
        }
    }

    /// Stops listing public share `id` (revoked).
    pub(crate) fn unpublish(&self, id: &[u8; 16]) -> Result<()> {
        self.node.db().write(|tx| {
            tx.table(PUBLIC)?.remove(id)?;
            Ok(())
        })?;
        Ok(())
    }

    /// Our public shares matching `query`, best first, within the listing limits (the answer to `Listing`).
    pub(crate) fn listing(&self, query: &[String]) -> Response {
        if query.is_empty() || query.len() > MAX_QUERY_WORDS {
            return Response::Error(format!("a listing asks for 1 to {MAX_QUERY_WORDS} words"));
        }
        let Ok(rows) = self.node.db().records::<SignedPublicEntry>(PUBLIC, None, MAX_PUBLIC_SHARES) else {
            return Response::Error("cannot read the public shares".into());
        };
        let mut hits: Vec<(usize, SignedPublicEntry)> =
            rows.into_iter().map(|(_, s)| (score(&s.entry, query), s)).filter(|(n, _)| *n > 0).collect();
        hits.sort_by_key(|(n, s)| std::cmp::Reverse((*n, s.entry.published_unix)));
        let mut out = Vec::new();
        let mut bytes = 0;
        for (_, s) in hits.into_iter().take(MAX_LISTING) {
            let size = crate::proto::wire::encode(&s).len() + 8;
            if bytes + size > MAX_LISTING_BYTES {
                break;
            }
            bytes += size;
            out.push(s);
        }
        Response::Listing(out)
    }

    /// Searches the network's public shares for `query`: the providers of each word in the DHT, then each one's
    /// listing; only entries signed by the publisher that listed them are kept. Best first.
    ///
    /// # Errors
    /// The database.
    pub async fn search(&self, query: &str) -> Result<SearchResults> {
        let started = Instant::now();
        let query = words(query, MAX_QUERY_WORDS);
        if query.is_empty() {
            // nothing to look for (words are 2 to 32 letters or digits): nothing found
            return Ok(SearchResults { words: query, providers: 0, refused: 0, hits: Vec::new(), seconds: 0.0 });
        }
        let lookups =
            futures::future::join_all(query.iter().map(|w| self.node.network().get_providers(keyword_key(w)))).await;
        let me = self.node.peer_id();
        let mut providers: Vec<PeerId> = Vec::new();
        for found in lookups.into_iter().flatten() {
            for p in found {
                if !providers.contains(&p) && providers.len() < MAX_PROVIDERS {
                    providers.push(p);
                }
            }
        }
        let asked = providers.len();
        let query_ref = &query;
        let answers: Vec<(PeerId, Response)> = futures::stream::iter(providers)
            .map(|p| {
                let request = Request::Listing(query_ref.clone());
                async move {
                    let answer = if p == me {
                        self.listing(query_ref)
                    } else {
                        match tokio::time::timeout(LISTING_TIMEOUT, self.ask(p, &request)).await {
                            Ok(Ok(r)) => r,
                            _ => Response::Error("no answer".into()),
                        }
                    };
                    (p, answer)
                }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        let mut refused = 0;
        let mut kept: Vec<SignedPublicEntry> = Vec::new();
        for (provider, answer) in answers {
            let Response::Listing(entries) = answer else { continue };
            for s in entries.into_iter().take(MAX_LISTING) {
                match s.verify() {
                    // a provider lists its own shares only
                    Ok(owner) if owner == provider => kept.push(s),
                    _ => refused += 1,
                }
            }
        }
        kept.sort_by_key(|s| std::cmp::Reverse((score(&s.entry, &query), s.entry.published_unix)));
        kept.retain(|s| score(&s.entry, &query) > 0);
        self.remember_found(&kept)?;
        let book = self.contacts()?;
        let hits = kept
            .iter()
            .map(|s| SearchHit {
                owner: PeerId::from_bytes(&s.entry.owner).map(|p| p.to_string()).unwrap_or_default(),
                owner_name: book.by_peer(&s.entry.owner).map(|c| c.name.clone()),
                id: hex::encode(s.entry.id),
                backup: s.entry.backup.clone(),
                version: s.entry.version,
                title: s.entry.title.clone(),
                description: s.entry.description.clone(),
                keywords: s.entry.keywords.clone(),
                score: score(&s.entry, &query),
                published_unix: s.entry.published_unix,
            })
            .collect();
        Ok(SearchResults { words: query, providers: asked, refused, hits, seconds: started.elapsed().as_secs_f64() })
    }

    /// Keeps `entries` (verified) for `ls` and `restore`, forgetting the oldest past [`MAX_FOUND`].
    fn remember_found(&self, entries: &[SignedPublicEntry]) -> Result<()> {
        self.node.db().write(|tx| {
            let mut t = tx.table(FOUND)?;
            for s in entries {
                t.put(&[s.entry.owner.as_slice(), &s.entry.id].concat(), s)?;
            }
            Ok(())
        })?;
        let all = self.node.db().records::<SignedPublicEntry>(FOUND, None, usize::MAX)?;
        if all.len() > MAX_FOUND {
            let mut by_age: Vec<(u64, Vec<u8>)> = all.into_iter().map(|(k, s)| (s.entry.published_unix, k)).collect();
            by_age.sort();
            let excess = by_age.len() - MAX_FOUND;
            self.node.db().write(|tx| {
                let mut t = tx.table(FOUND)?;
                for (_, k) in by_age.iter().take(excess) {
                    t.remove(k)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Public shares of `owner` a search found.
    pub(crate) fn found_of(&self, owner: &PeerId) -> Result<Vec<SignedPublicEntry>> {
        let prefix = owner.to_bytes();
        Ok(self
            .node
            .db()
            .records::<SignedPublicEntry>(FOUND, Some(&prefix), usize::MAX)?
            .into_iter()
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s)
            .collect())
    }
}
