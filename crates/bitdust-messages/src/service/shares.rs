//! Sharing backups with contacts ([`crate::proto::shares`]): the owner's list of shares and the grantee's list of
//! what is shared with it, in the node database; the keys themselves come from the storage wing through the node's
//! [`bitdust_node::Vault`] (manifests on the owner's suppliers, access grants bound to each grantee, revocation on
//! the suppliers).
//!
//! ```text
//! node database
//!   messages/shares   share id -> what was shared, with whom, each grantee's grant id, revoked or not
//!   messages/shared   owner ‖ share id -> a share received: the backup's name, the share key, revoked or not
//! ```
//! The share key travels in the grantee's Olm session (`Body::Share`), directly or through its mailboxes. A revoke
//! asks the owner's suppliers to refuse the grantee's grant id from now on (they confirm), forgets the manifest, and
//! tells the grantee (`Body::Unshare`, informational: the suppliers' refusal is what cuts access).

use anyhow::{bail, Context, Result};
use bitdust_api::{RestoreReport, ShareGrantee, ShareInfo, SharedInfo, SharedListing};
use bitdust_core::PeerId;
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use crate::proto::shares::{check_offer, Contribution, ShareOffer};
use crate::proto::wire::Body;
use crate::service::Messages;

const SHARES: &str = "messages/shares";
const SHARED: &str = "messages/shared";
/// How long a share's grants hold, seconds (until revoked).
pub const SHARE_GRANT_SECS: u64 = 10 * 365 * 24 * 3600;
/// Shares one owner may have given us at once (more are refused: a peer cannot fill our database).
pub const MAX_SHARED_PER_OWNER: usize = 1024;
/// Most versions the writers of one share add (the record keeps each one's author and signature); past it the
/// owner makes a new share.
pub const MAX_CONTRIBUTIONS: usize = 1000;

/// Why a share operation was refused (the API maps each to its status).
#[derive(Debug, thiserror::Error)]
pub enum ShareRefusal {
    /// No share of that id (ours), or nothing of that owner and name shared with us.
    #[error("{0}")]
    Unknown(String),
    /// The storage wing does not run here.
    #[error("sharing needs the storage wing (suppliers hold what is shared)")]
    NoStorage,
    /// A request that cannot be done as asked (a search with no word, a revoke `--from` of a public share).
    #[error("{0}")]
    BadQuery(String),
    /// Options that do not go together (write access with one version, or to the public).
    #[error("{0}")]
    Conflict(String),
}

/// One grantee of a share.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Grantee {
    peer: Vec<u8>,
    grant_id: [u8; 16],
    revoked: bool,
    delivered: bool,
}

/// A version a writer added.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Contributed {
    /// The version it became.
    version: u32,
    /// Its author's peer id bytes.
    author: Vec<u8>,
    /// When it was taken, Unix seconds.
    at_unix: u64,
    /// BLAKE3 of the key it came with, and the author's signature over it ([`Contribution`]): the owner can show
    /// who wrote the version.
    key_hash: [u8; 32],
    signature: Vec<u8>,
}

/// A share this node made.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShareRecord {
    id: [u8; 16],
    backup: String,
    version: Option<u32>,
    with: String,
    /// The group it follows (`with` = `group:NAME`): its members are the grantees, as the roster changes.
    group: Option<[u8; 16]>,
    grantees: Vec<Grantee>,
    created_unix: u64,
    expires_unix: u64,
    /// Revoked from everyone: a group's new members do not get it.
    ended: bool,
    /// Whether the grantees may add versions.
    write: bool,
    /// Versions the grantees added.
    contributions: Vec<Contributed>,
    /// Peers it was revoked from by name (`revoke --from`): a group share never goes to them again, even when they
    /// are removed and added back (a member only removed from the group gets it again when added back).
    denied: Vec<Vec<u8>>,
}

impl ShareRecord {
    /// A new share of `backup` (`version`, or every version) with `with`, made now, with no grantee yet.
    fn new(backup: &str, version: Option<u32>, with: &str, group: Option<[u8; 16]>, write: bool) -> Self {
        let now = bitdust_node::home::unix_now();
        Self {
            id: rand::random(),
            backup: backup.to_string(),
            version,
            with: with.to_string(),
            group,
            grantees: Vec::new(),
            created_unix: now,
            expires_unix: now + SHARE_GRANT_SECS,
            ended: false,
            write,
            contributions: Vec::new(),
            denied: Vec::new(),
        }
    }
}

impl Versioned for ShareRecord {
    const FORMAT: u16 = 1;
}

/// A share received.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SharedRecord {
    owner: Vec<u8>,
    offer: ShareOffer,
    received_unix_ms: u64,
    revoked: bool,
}

impl Versioned for SharedRecord {
    const FORMAT: u16 = 1;
}

fn shared_key(owner: &PeerId, id: &[u8; 16]) -> Vec<u8> {
    [owner.to_bytes().as_slice(), id].concat()
}

/// A share id from its hex form.
fn parse_id(id: &str) -> Result<[u8; 16]> {
    let bytes = hex::decode(id).map_err(|_| ShareRefusal::Unknown(format!("no share {id}")))?;
    Ok(bytes.try_into().map_err(|_| ShareRefusal::Unknown(format!("no share {id}")))?)
}

impl Messages {
    fn vault(&self) -> Result<std::sync::Arc<dyn bitdust_node::Vault>> {
        Ok(self.node.vault().ok_or(ShareRefusal::NoStorage)?)
    }

    fn share_info(&self, r: &ShareRecord) -> ShareInfo {
        let book = self.contacts().unwrap_or_default();
        let name_of = |peer: &[u8]| {
            if peer.is_empty() {
                Some("anyone".to_string())
            } else {
                book.by_peer(peer).map(|c| c.name.clone())
            }
        };
        ShareInfo {
            id: hex::encode(r.id),
            backup: r.backup.clone(),
            version: r.version,
            with: r.with.clone(),
            grantees: r
                .grantees
                .iter()
                .map(|g| ShareGrantee {
                    peer: PeerId::from_bytes(&g.peer).map(|p| p.to_string()).unwrap_or_default(),
                    name: name_of(&g.peer),
                    revoked: g.revoked,
                    delivered: g.delivered,
                })
                .collect(),
            created_unix: r.created_unix,
            expires_unix: r.expires_unix,
            write: r.write,
            contributions: r
                .contributions
                .iter()
                .map(|c| bitdust_api::ContributionInfo {
                    version: c.version,
                    author: PeerId::from_bytes(&c.author).map(|p| p.to_string()).unwrap_or_default(),
                    author_name: book.by_peer(&c.author).map(|x| x.name.clone()),
                    at_unix: c.at_unix,
                })
                .collect(),
        }
    }

    /// Shares backup `backup` (version `version`, or every version it has now) with contact `with`, or with every
    /// member of a group (`group:NAME`; members added later get it, members removed are revoked): for each grantee
    /// the storage wing stores a manifest on our suppliers and returns its key, which goes to the grantee in its Olm
    /// session (directly, else through its mailboxes).
    ///
    /// # Errors
    /// An unknown contact or group, no such backup or version, no storage wing, too few suppliers.
    pub async fn share(&self, backup: &str, version: Option<u32>, with: &str, write: bool) -> Result<ShareInfo> {
        if backup.len() > crate::proto::shares::MAX_BACKUP_NAME_BYTES {
            bail!(ShareRefusal::Unknown(format!("no backup named {backup}")));
        }
        if write && backup.contains('/') {
            bail!(ShareRefusal::Conflict("a share of a path is read-only".into()));
        }
        if write && version.is_some() {
            bail!(ShareRefusal::Conflict("a share others write to is of every version (no @VERSION)".into()));
        }
        let group = match with.strip_prefix("group:") {
            Some(name) => {
                let g = self.group(name)?;
                if !g.active {
                    return Err(crate::service::groups::GroupRefusal::NotMember(name.into()).into());
                }
                Some(g.roster.roster.group)
            }
            None => {
                self.contacts()?.named(with)?.peer()?;
                None
            }
        };
        self.vault()?;
        let record = ShareRecord::new(backup, version, with, group, write);
        // the first grantee's manifest is made before anything is saved: a bad backup or version refuses it whole
        let wanted = self.grantees_wanted(&record)?;
        let _held = self.share_lock.lock().await;
        let mut record = record;
        let first = match wanted.first() {
            Some(p) => Some(self.grant_one(&record, *p).await?),
            None => None,
        };
        record.grantees.extend(first.clone());
        self.node.db().write(|tx| tx.table(SHARES)?.put(&record.id, &record))?;
        for peer in wanted.iter().skip(1) {
            match self.grant_one(&record, *peer).await {
                Ok(g) => record.grantees.push(g),
                Err(e) => tracing::info!(%peer, error = %format!("{e:#}"), "a group member did not get the share"),
            }
        }
        self.node.db().write(|tx| tx.table(SHARES)?.put(&record.id, &record))?;
        Ok(self.share_info(&record))
    }

    /// Shares backup `backup` (version `version`, or every version) with anyone: grants that name no grantee, and
    /// an entry with `title`, `description` and `keywords` that `search` finds (this node provides its words in the
    /// DHT and answers listings).
    ///
    /// # Errors
    /// No such backup or version, too many public shares, an entry over its limits, no storage wing.
    pub async fn share_public(
        &self,
        backup: &str,
        version: Option<u32>,
        title: &str,
        description: &str,
        keywords: &str,
    ) -> Result<ShareInfo> {
        let vault = self.vault()?;
        let _held = self.share_lock.lock().await;
        let mut record = ShareRecord::new(backup, version, "public", None, false);
        let grant_id: [u8; 16] = rand::random();
        let key = vault.share_backup(backup, version, None, grant_id, record.expires_unix).await?;
        record.grantees.push(Grantee { peer: Vec::new(), grant_id, revoked: false, delivered: true });
        if let Err(e) = self.publish(record.id, backup, version, key, (title, description, keywords)).await {
            let _ = vault.revoke_grants(&[(grant_id, record.expires_unix)]).await;
            return Err(e);
        }
        self.node.db().write(|tx| tx.table(SHARES)?.put(&record.id, &record))?;
        Ok(self.share_info(&record))
    }

    /// Who should hold `record` now: its contact, or its group's members but us.
    fn grantees_wanted(&self, record: &ShareRecord) -> Result<Vec<PeerId>> {
        match record.group {
            None => Ok(vec![self.contacts()?.named(&record.with)?.peer()?]),
            Some(group) => {
                let g = self.group(&hex::encode(group))?;
                if !g.active {
                    return Ok(Vec::new());
                }
                let me = self.node.peer_id();
                Ok(g.roster.roster.peers().into_iter().filter(|p| *p != me).collect())
            }
        }
    }

    /// Makes `peer`'s grant and manifest for `record` and sends it the key.
    async fn grant_one(&self, record: &ShareRecord, peer: PeerId) -> Result<Grantee> {
        self.give(record, peer, rand::random()).await
    }

    /// Makes (or makes again, with every version the backup has now) `peer`'s manifest for `record` under grant
    /// `grant_id` and sends it the key.
    async fn give(&self, record: &ShareRecord, peer: PeerId, grant_id: [u8; 16]) -> Result<Grantee> {
        let key = self
            .vault()?
            .share_backup(&record.backup, record.version, Some(peer), grant_id, record.expires_unix)
            .await?;
        let offer = ShareOffer {
            id: record.id,
            backup: record.backup.clone(),
            version: record.version,
            key,
            write: record.write,
        };
        let delivered = match self.send_control(peer, Body::Share(offer)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::info!(%peer, error = %format!("{e:#}"), "a share did not reach its grantee yet");
                false
            }
        };
        Ok(Grantee { peer: peer.to_bytes(), grant_id, revoked: false, delivered })
    }

    /// Brings the shares that follow `group` in line with its roster: a member removed (or gone) is revoked, a
    /// member added is given the share.
    pub(crate) async fn sync_group_shares(&self, group: [u8; 16]) {
        let _held = self.share_lock.lock().await;
        let Ok(rows) = self.node.db().records::<ShareRecord>(SHARES, None, usize::MAX) else { return };
        for (_, mut record) in rows.into_iter().filter(|(_, r)| r.group == Some(group) && !r.ended) {
            let Ok(wanted) = self.grantees_wanted(&record) else { continue };
            let wanted_bytes: Vec<Vec<u8>> = wanted.iter().map(|p| p.to_bytes()).collect();
            let gone: Vec<usize> = (0..record.grantees.len())
                .filter(|i| !record.grantees[*i].revoked && !wanted_bytes.contains(&record.grantees[*i].peer))
                .collect();
            if !gone.is_empty() {
                let grants: Vec<([u8; 16], u64)> =
                    gone.iter().map(|i| (record.grantees[*i].grant_id, record.expires_unix)).collect();
                match self.vault() {
                    Ok(v) => match v.revoke_grants(&grants).await {
                        Ok(_) => gone.iter().for_each(|i| record.grantees[*i].revoked = true),
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "a removed member's share not revoked yet"),
                    },
                    Err(_) => continue,
                }
                self.tell_revoked(&record, &gone).await;
            }
            for peer in wanted {
                // a member holding the share keeps it; one removed and added back gets a new grant; one the share
                // was revoked from by name never gets it again
                let bytes = peer.to_bytes();
                if record.denied.contains(&bytes) || record.grantees.iter().any(|g| g.peer == bytes && !g.revoked) {
                    continue;
                }
                match self.grant_one(&record, peer).await {
                    Ok(g) => record.grantees.push(g),
                    Err(e) => tracing::info!(%peer, error = %format!("{e:#}"), "a new member did not get the share"),
                }
            }
            if let Err(e) = self.node.db().write(|tx| tx.table(SHARES)?.put(&record.id, &record)) {
                tracing::warn!(error = %e, "a group share's grantees not saved");
            }
        }
    }

    /// What this node shares, newest first.
    ///
    /// # Errors
    /// The database.
    pub fn shares(&self) -> Result<Vec<ShareInfo>> {
        let mut rows: Vec<ShareRecord> =
            self.node.db().records::<ShareRecord>(SHARES, None, usize::MAX)?.into_iter().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.created_unix));
        Ok(rows.iter().map(|r| self.share_info(r)).collect())
    }

    /// Revokes share `id` (hex) from every grantee, or from `from` (a contact's name or a peer id): our suppliers
    /// refuse their grants from the moment they confirm, and the grantees are told. Returns the share after it, how
    /// many grantees were revoked, and how many suppliers of how many confirmed.
    ///
    /// # Errors
    /// No such share or grantee, no storage wing, the database.
    pub async fn revoke(&self, id: &str, from: Option<&str>) -> Result<(ShareInfo, usize, usize, usize)> {
        let id = parse_id(id)?;
        let _held = self.share_lock.lock().await;
        let mut record = self
            .node
            .db()
            .record::<ShareRecord>(SHARES, &id)?
            .ok_or_else(|| ShareRefusal::Unknown(format!("no share {}", hex::encode(id))))?;
        let only: Option<Vec<u8>> = match from {
            None => None,
            Some(who) => Some(match self.contacts()?.named(who) {
                Ok(c) => c.peer_id.clone(),
                Err(_) => who
                    .parse::<PeerId>()
                    .map_err(|_| ShareRefusal::Unknown(format!("{who} is neither a contact nor a peer id")))?
                    .to_bytes(),
            }),
        };
        let chosen: Vec<usize> = (0..record.grantees.len())
            .filter(|i| !record.grantees[*i].revoked && only.as_ref().is_none_or(|p| *p == record.grantees[*i].peer))
            .collect();
        // revoked from everyone, a group share with no member holding it now still ends (new members never get it)
        match from {
            Some(who) if chosen.is_empty() => bail!(ShareRefusal::Unknown(format!(
                "share {} is not given to {who} (or was revoked already)",
                hex::encode(id)
            ))),
            None if record.ended => {
                bail!(ShareRefusal::Unknown(format!("share {} was revoked already", hex::encode(id))))
            }
            _ => {}
        }
        let grants: Vec<([u8; 16], u64)> =
            chosen.iter().map(|i| (record.grantees[*i].grant_id, record.expires_unix)).collect();
        if record.with == "public" {
            // listed no more, then refused by the suppliers
            self.unpublish(&id)?;
        }
        let (confirmed, asked) = self.vault()?.revoke_grants(&grants).await?;
        for i in &chosen {
            record.grantees[*i].revoked = true;
        }
        if let Some(peer) = only {
            if !record.denied.contains(&peer) {
                record.denied.push(peer);
            }
        }
        record.ended |= from.is_none();
        self.node.db().write(|tx| tx.table(SHARES)?.put(&id, &record))?;
        self.tell_revoked(&record, &chosen).await;
        Ok((self.share_info(&record), chosen.len(), confirmed, asked))
    }

    /// Tells the grantees of `record` at `revoked` (indexes) that it was revoked from them (`Body::Unshare`, so their
    /// lists say so; the suppliers' refusal is what cuts access). A public share's grantee is nobody to tell.
    async fn tell_revoked(&self, record: &ShareRecord, revoked: &[usize]) {
        for g in revoked.iter().filter_map(|i| record.grantees.get(*i)) {
            let Ok(peer) = PeerId::from_bytes(&g.peer) else { continue };
            if let Err(e) = self.send_control(peer, Body::Unshare(record.id)).await {
                tracing::info!(%peer, error = %format!("{e:#}"), "a revoked grantee was not told");
            }
        }
    }

    /// Adds the file or folder at `path` as a new version of what `owner` shares as `backup`: stored on our
    /// suppliers, its key sent to the owner, whose node takes it only if the share lets us write (the API refuses
    /// early when the share says read-only). Returns once the owner took it (it fetches the version in the
    /// background; its other grantees then get the share again with it).
    ///
    /// # Errors
    /// Nothing shared under that name, an unreadable path, too few suppliers, the owner refused or is unreachable.
    pub async fn contribute(&self, owner: &str, backup: &str, path: &std::path::Path) -> Result<()> {
        let (peer, found) = self.find_shared(owner, backup)?;
        // a share that lets us write, if we hold one (the owner takes a version only under such a share)
        let Some(r) = found.iter().find(|r| r.offer.write && !r.revoked).or(found.first()) else {
            bail!(ShareRefusal::Unknown(format!("{owner} shares nothing named {backup}")));
        };
        let grant_id: [u8; 16] = rand::random();
        let expires = bitdust_node::home::unix_now() + SHARE_GRANT_SECS;
        let key = self.vault()?.share_path(path, peer, grant_id, expires).await?;
        let c = Contribution::sign(self.node.keys(), r.offer.id, key);
        self.send_control(peer, Body::Contribute(c)).await.context("the owner did not take the version")
    }

    /// Whether the share `owner` gave us as `backup` lets us write (the API's early check).
    ///
    /// # Errors
    /// Nothing shared under that name.
    pub fn may_write(&self, owner: &str, backup: &str) -> Result<bool> {
        Ok(self.find_shared(owner, backup)?.1.iter().any(|r| r.offer.write && !r.revoked))
    }

    /// Takes a contribution from `peer`: only if our share of that id lets `peer` write (and was not revoked from
    /// it). The version is fetched and added in the background, then the share goes again to every grantee.
    ///
    /// # Errors
    /// No such share, `peer` may not write to it.
    pub(crate) fn take_contribution(&self, peer: PeerId, c: Contribution) -> Result<()> {
        c.check(&peer).map_err(anyhow::Error::msg)?;
        let record = self.node.db().record::<ShareRecord>(SHARES, &c.share)?.context("a write to no share of ours")?;
        let allowed =
            record.write && !record.ended && record.grantees.iter().any(|g| g.peer == peer.to_bytes() && !g.revoked);
        if !allowed {
            bail!("{peer} may not write to share {}", hex::encode(c.share));
        }
        if record.contributions.len() >= MAX_CONTRIBUTIONS {
            bail!("share {} took {MAX_CONTRIBUTIONS} versions already", hex::encode(c.share));
        }
        let Some(this) = self.this.upgrade() else { bail!("the messages wing is stopping") };
        tokio::spawn(async move {
            if let Err(e) = this.ingest(peer, c).await {
                tracing::warn!(%peer, error = %format!("{e:#}"), "a contribution was not taken");
            }
        });
        Ok(())
    }

    /// Fetches contribution `c` of `author` into its share's backup, records it, and gives the share again (with
    /// the new version) to every grantee.
    async fn ingest(&self, author: PeerId, c: Contribution) -> Result<()> {
        let backup = {
            let r = self.node.db().record::<ShareRecord>(SHARES, &c.share)?.context("the share is gone")?;
            r.backup
        };
        let version = self.vault()?.ingest_share(author, &c.key, &backup).await?;
        let _held = self.share_lock.lock().await;
        let mut record = self.node.db().record::<ShareRecord>(SHARES, &c.share)?.context("the share is gone")?;
        record.contributions.push(Contributed {
            version,
            author: author.to_bytes(),
            at_unix: bitdust_node::home::unix_now(),
            key_hash: *blake3::hash(&c.key).as_bytes(),
            signature: c.signature.clone(),
        });
        self.node.db().write(|tx| tx.table(SHARES)?.put(&record.id, &record))?;
        // every share of the backup that follows its versions goes again, with the new one
        let all = self.node.db().records::<ShareRecord>(SHARES, None, usize::MAX)?;
        for (_, r) in all.iter().filter(|(_, r)| r.backup == record.backup) {
            self.refresh(r).await;
        }
        tracing::info!(%author, backup, version, "a grantee's version taken");
        Ok(())
    }

    /// Gives every share of `backup` that follows every version (no `@VERSION`) again, now that it has a new
    /// version: each grantee's manifest is made again under its grant id.
    async fn refresh(&self, record: &ShareRecord) {
        if record.version.is_some() || record.ended {
            return;
        }
        for g in record.grantees.iter().filter(|g| !g.revoked && !g.peer.is_empty()) {
            let Ok(peer) = PeerId::from_bytes(&g.peer) else { continue };
            if let Err(e) = self.give(record, peer, g.grant_id).await {
                tracing::info!(%peer, error = %format!("{e:#}"), "a grantee did not get the new version yet");
            }
        }
    }

    /// Takes a share from `peer` (decrypted from its Olm message).
    ///
    /// # Errors
    /// An offer over its limits, more than [`MAX_SHARED_PER_OWNER`] shares from `peer`.
    pub(crate) fn take_share(&self, peer: PeerId, offer: ShareOffer) -> Result<()> {
        check_offer(&offer).map_err(anyhow::Error::msg)?;
        let held = self.shared_of(&peer)?;
        if held.len() >= MAX_SHARED_PER_OWNER && !held.iter().any(|r| r.offer.id == offer.id) {
            bail!("{peer} shares {} things with us already", held.len());
        }
        let record = SharedRecord {
            owner: peer.to_bytes(),
            received_unix_ms: bitdust_node::automata::now_ms(),
            revoked: false,
            offer,
        };
        self.node.db().write(|tx| tx.table(SHARED)?.put(&shared_key(&peer, &record.offer.id), &record))?;
        tracing::info!(owner = %peer, backup = %record.offer.backup, "a share received");
        Ok(())
    }

    /// Takes `peer`'s word that it revoked its share `id`.
    pub(crate) fn take_unshare(&self, peer: PeerId, id: [u8; 16]) -> Result<()> {
        let key = shared_key(&peer, &id);
        if let Some(mut r) = self.node.db().record::<SharedRecord>(SHARED, &key)? {
            r.revoked = true;
            self.node.db().write(|tx| tx.table(SHARED)?.put(&key, &r))?;
        }
        Ok(())
    }

    fn shared_of(&self, owner: &PeerId) -> Result<Vec<SharedRecord>> {
        let prefix = owner.to_bytes();
        Ok(self
            .node
            .db()
            .records::<SharedRecord>(SHARED, Some(&prefix), usize::MAX)?
            .into_iter()
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, r)| r)
            .collect())
    }

    /// What others share with this node, newest first.
    ///
    /// # Errors
    /// The database.
    pub fn shared(&self) -> Result<Vec<SharedInfo>> {
        let book = self.contacts()?;
        let mut rows: Vec<SharedRecord> =
            self.node.db().records::<SharedRecord>(SHARED, None, usize::MAX)?.into_iter().map(|(_, r)| r).collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.received_unix_ms));
        Ok(rows
            .into_iter()
            .map(|r| SharedInfo {
                id: hex::encode(r.offer.id),
                owner: PeerId::from_bytes(&r.owner).map(|p| p.to_string()).unwrap_or_default(),
                owner_name: book.by_peer(&r.owner).map(|c| c.name.clone()),
                backup: r.offer.backup,
                version: r.offer.version,
                received_unix_ms: r.received_unix_ms,
                revoked: r.revoked,
                write: r.offer.write,
            })
            .collect())
    }

    /// The shares of `owner` (a contact's name or a peer id) named `backup` (its share id in hex also names it), the
    /// best first: those not known revoked before the others, newer before older. A grantee may hold several (given
    /// to it by name, through a group, in public): when one is refused the next may still serve.
    ///
    /// # Errors
    /// An unknown owner, nothing shared under that name.
    fn find_shared(&self, owner: &str, backup: &str) -> Result<(PeerId, Vec<SharedRecord>)> {
        let peer = match self.contacts()?.named(owner) {
            Ok(c) => c.peer()?,
            Err(_) => owner
                .parse::<PeerId>()
                .map_err(|_| ShareRefusal::Unknown(format!("{owner} is neither a contact nor a peer id")))?,
        };
        let public = self.found_of(&peer)?.into_iter().map(|s| SharedRecord {
            owner: s.entry.owner,
            offer: ShareOffer {
                id: s.entry.id,
                backup: s.entry.backup,
                version: s.entry.version,
                key: s.entry.key,
                write: false,
            },
            received_unix_ms: s.entry.published_unix.saturating_mul(1000),
            revoked: false,
        });
        let mut found: Vec<SharedRecord> = self
            .shared_of(&peer)?
            .into_iter()
            .chain(public)
            .filter(|r| r.offer.backup == backup || hex::encode(r.offer.id) == backup)
            .collect();
        found.sort_by_key(|r| std::cmp::Reverse((!r.revoked, r.received_unix_ms)));
        if found.is_empty() {
            bail!(ShareRefusal::Unknown(format!("{owner} shares nothing named {backup}")));
        }
        Ok((peer, found))
    }

    /// The first of `owner`'s shares named `backup` whose manifest the suppliers give, with its listing of
    /// `version`; else the best one's error.
    async fn open_first(
        &self,
        owner: &str,
        backup: &str,
        version: Option<u32>,
    ) -> Result<(PeerId, SharedRecord, SharedListing)> {
        let (peer, found) = self.find_shared(owner, backup)?;
        let vault = self.vault()?;
        let mut first_error = None;
        for r in found {
            match vault.open_share(peer, &r.offer.key, version).await {
                Ok(listing) => return Ok((peer, r, listing)),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| anyhow::anyhow!("{owner} shares nothing named {backup}"))
            .context("the owner's suppliers refused or failed"))
    }

    /// Lists what `owner` shares as `backup`: its versions and the entries of `version` (the latest if `None`),
    /// fetched from the owner's suppliers.
    ///
    /// # Errors
    /// Nothing shared under that name, the suppliers refuse (a revoked share) or cannot give the manifest.
    pub async fn shared_listing(&self, owner: &str, backup: &str, version: Option<u32>) -> Result<SharedListing> {
        Ok(self.open_first(owner, backup, version).await?.2)
    }

    /// Restores what `owner` shares as `backup` (version `version`, else the latest) into `target` (an absolute
    /// path).
    ///
    /// # Errors
    /// As [`Messages::shared_listing`], a bad target, fragments refused or unreachable.
    pub async fn restore_shared(
        &self,
        owner: &str,
        backup: &str,
        version: Option<u32>,
        target: &std::path::Path,
        force: bool,
    ) -> Result<RestoreReport> {
        // what is shared first (an unknown share is the first thing to say), then the target
        let (peer, found) = self.find_shared(owner, backup)?;
        if !target.is_absolute() {
            let what = format!("the target {} is not an absolute path", target.display());
            return Err(bitdust_node::vault::ShareError::BadRequest(what).into());
        }
        let vault = self.vault()?;
        // with several shares, the first the suppliers serve; what a refused try left in a target that was empty
        // before is ours to overwrite
        let was_empty = std::fs::read_dir(target).map_or(true, |mut d| d.next().is_none());
        let mut first_error = None;
        for (i, r) in found.iter().enumerate() {
            let force = force || (i > 0 && was_empty);
            match vault.restore_share(peer, &r.offer.key, version, target, force).await {
                Ok(report) => return Ok(report),
                Err(e) if matches!(e.downcast_ref(), Some(bitdust_node::vault::ShareError::BadRequest(_))) => {
                    return Err(e)
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(first_error
            .unwrap_or_else(|| anyhow::anyhow!("{owner} shares nothing named {backup}"))
            .context("the owner's suppliers refused or failed"))
    }
}
