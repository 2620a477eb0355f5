//! The supplier's fragment store: contracts, the fragments, catalogs and records customers store under them, and
//! the space each uses.
//!
//! A contract is in force from its start for its duration, unless its customer ends it sooner
//! ([`FragmentStore::end_contract`]); a customer renews by proposing a newer one. Only a contract in force takes new
//! data; after it ends the data stays readable by its owner for the supplier's grace period
//! ([`ContractPolicy::grace_secs`]) and is then freed ([`FragmentStore::free_ended`]). Every byte a customer stores
//! counts against its contract's needed space: fragments, its sealed catalog, the records held for it.

use std::path::{Path, PathBuf};

use crate::proto::fragment;
use crate::proto::wire::{ErrorCode, SignedContract, CONTRACT_CLOCK_SKEW_SECS};
use bitdust_core::PeerId;
use redb::{Database, ReadableTable, TableDefinition};

/// owner peer id bytes → postcard(SignedContract)
const CONTRACTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("contracts");
/// owner peer id bytes ‖ fragment id → fragment length in bytes
const FRAGMENTS: TableDefinition<&[u8], u64> = TableDefinition::new("fragments");
/// owner peer id bytes → bytes used by fragments
const USAGE: TableDefinition<&[u8], u64> = TableDefinition::new("usage");
/// owner peer id bytes → revision of the stored sealed catalog
const CATALOGS: TableDefinition<&[u8], u64> = TableDefinition::new("catalogs");
/// DHT key of a customer's record (`record_key(kind, customer)`) → the encoded signed record, republished while the
/// customer is away ([`FragmentStore::hold_record`])
const HELD_RECORDS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("held_records");
/// owner peer id bytes → Unix seconds when the customer ended its contract before its term
const ENDED: TableDefinition<&[u8], u64> = TableDefinition::new("ended");
/// owner peer id bytes → size in bytes of the stored sealed catalog
const CATALOG_BYTES: TableDefinition<&[u8], u64> = TableDefinition::new("catalog_bytes");
/// owner peer id bytes ‖ access grant id → Unix seconds when the grant expires (a revocation, kept until then)
const REVOKED: TableDefinition<&[u8], u64> = TableDefinition::new("revoked");
/// "format" → store format version
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const STORE_FORMAT: u64 = 1;

/// What a supplier accepts in a contract, and how long it keeps the data of one that ended (the `[supplier]`
/// settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContractPolicy {
    /// The least needed space a contract may ask for, in bytes (at least 1: a contract for nothing only costs
    /// the supplier).
    pub min_needed_bytes: u64,
    /// The largest share of the donated space one customer may ask for, in percent (1 to 100).
    pub max_share_percent: u8,
    /// The shortest contract accepted, in seconds.
    pub min_secs: u64,
    /// The longest contract accepted, in seconds (a customer must come back and renew within it).
    pub max_secs: u64,
    /// Seconds the data of an ended contract (expired or cancelled) is kept, readable by its owner, before it is
    /// freed.
    pub grace_secs: u64,
}

impl Default for ContractPolicy {
    /// At least 1 MiB and at most a quarter of the space per customer; contracts of 1 hour to 90 days; 7 days of
    /// grace.
    fn default() -> Self {
        Self {
            min_needed_bytes: 1 << 20,
            max_share_percent: 25,
            min_secs: 3600,
            max_secs: 90 * 24 * 3600,
            grace_secs: 7 * 24 * 3600,
        }
    }
}

/// Unix seconds now.
fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// When a contract ends: its term, or earlier if its customer ended it (`ended`).
fn end_of(contract: &SignedContract, ended: Option<u64>) -> u64 {
    let term = contract.contract.start_unix.saturating_add(contract.contract.duration_secs);
    ended.map_or(term, |e| e.min(term))
}

/// Errors from the fragment store. Each maps to a wire [`ErrorCode`] with [`StoreError::code`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The sender has no contract in force with this supplier (none, or it ended).
    #[error("no contract in force with customer {0}")]
    NoContract(String),
    /// The contract is refused.
    #[error("contract refused: {0}")]
    Refused(String),
    /// Storing would exceed the contract's needed space.
    #[error("quota exceeded for {customer}: {used} + {adding} bytes > {needed} bytes contracted")]
    QuotaExceeded {
        /// Customer peer id.
        customer: String,
        /// Bytes in use.
        used: u64,
        /// Bytes being added.
        adding: u64,
        /// Needed space in the contract.
        needed: u64,
    },
    /// No such fragment or catalog.
    #[error("not found")]
    NotFound,
    /// The requester is not the owner.
    #[error("{requester} may not access data of {owner}")]
    Denied {
        /// Who asked (peer id).
        requester: String,
        /// Whose data (peer id).
        owner: String,
    },
    /// The data offered is malformed.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A catalog revision lower than the one held.
    #[error("stale catalog: revision {offered} < {held}")]
    Stale {
        /// Offered.
        offered: u64,
        /// Held.
        held: u64,
    },
    /// Disk or database failure.
    #[error("store I/O: {0}")]
    Io(String),
}

impl StoreError {
    /// The wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NoContract(_) => ErrorCode::NoContract,
            Self::Refused(_) => ErrorCode::Refused,
            Self::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Self::NotFound => ErrorCode::NotFound,
            Self::Denied { .. } => ErrorCode::Denied,
            Self::Malformed(_) => ErrorCode::Malformed,
            Self::Stale { .. } => ErrorCode::Stale,
            Self::Io(_) => ErrorCode::Internal,
        }
    }
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Io(e.to_string())
}

/// One customer's usage.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Usage {
    /// Customer peer id.
    pub customer: String,
    /// Position the customer gave this supplier.
    pub position: u16,
    /// Bytes of fragments stored.
    pub used_bytes: u64,
    /// Needed space in the contract.
    pub needed_bytes: u64,
    /// Number of fragments.
    pub fragments: u64,
    /// Unix seconds when the contract ends (or ended: the data is freed a grace period later).
    pub ends_unix: u64,
}

/// The supplier's store. Cheap to share behind an `Arc`; all methods are blocking (call them from a
/// blocking thread in async code).
pub struct FragmentStore {
    root: PathBuf,
    db: Database,
    donated_bytes: u64,
    policy: ContractPolicy,
}

impl FragmentStore {
    /// Opens (or creates) the store under `root` offering `donated_bytes` in total, with the default
    /// [`ContractPolicy`].
    ///
    /// # Errors
    /// [`StoreError::Io`] if the folder or database cannot be opened, or has an unknown format.
    pub fn open(root: &Path, donated_bytes: u64) -> Result<Self, StoreError> {
        Self::open_with(root, donated_bytes, ContractPolicy::default())
    }

    /// [`FragmentStore::open`] with a contract policy.
    ///
    /// # Errors
    /// As [`FragmentStore::open`].
    pub fn open_with(root: &Path, donated_bytes: u64, policy: ContractPolicy) -> Result<Self, StoreError> {
        bitdust_store::create_private_dir(&root.join("fragments")).map_err(io)?;
        bitdust_store::create_private_dir(&root.join("catalogs")).map_err(io)?;
        let db = Database::create(root.join("index.redb")).map_err(io)?;
        let txn = db.begin_write().map_err(io)?;
        {
            let mut meta = txn.open_table(META).map_err(io)?;
            let format = meta.get("format").map_err(io)?.map(|v| v.value());
            match format {
                None => {
                    meta.insert("format", STORE_FORMAT).map_err(io)?;
                }
                Some(STORE_FORMAT) => {}
                Some(other) => return Err(StoreError::Io(format!("unknown store format {other}"))),
            }
            txn.open_table(CONTRACTS).map_err(io)?;
            txn.open_table(FRAGMENTS).map_err(io)?;
            txn.open_table(USAGE).map_err(io)?;
            txn.open_table(CATALOGS).map_err(io)?;
            txn.open_table(HELD_RECORDS).map_err(io)?;
            txn.open_table(ENDED).map_err(io)?;
            txn.open_table(CATALOG_BYTES).map_err(io)?;
            txn.open_table(REVOKED).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        Ok(Self { root: root.to_path_buf(), db, donated_bytes, policy })
    }

    /// Total donated space in bytes.
    pub fn donated_bytes(&self) -> u64 {
        self.donated_bytes
    }

    /// Accepts a customer's proposed contract if it is addressed to `me`, signed by `sender`, fresh, within the
    /// [`ContractPolicy`] (needed space at least its minimum and at most the customer's share of the
    /// donated space, a duration within bounds), and the space committed to all customers stays within the donated
    /// space (a contract in force commits its needed space, an ended one what it still holds). Returns it signed by
    /// the supplier (via `sign`). A newer contract from the same customer replaces the old one (a renewal, also of
    /// one that ended).
    ///
    /// # Errors
    /// [`StoreError::Refused`] with the reason; [`StoreError::Io`] on disk failure.
    pub fn accept_contract(
        &self,
        sender: &PeerId,
        me: &PeerId,
        proposed: &SignedContract,
        now_unix: u64,
        sign: impl FnOnce(SignedContract) -> SignedContract,
    ) -> Result<SignedContract, StoreError> {
        let (customer, supplier) = proposed.verify().map_err(|e| StoreError::Refused(e.to_string()))?;
        if customer != *sender {
            return Err(StoreError::Refused("contract not signed by the sender".into()));
        }
        if supplier != *me {
            return Err(StoreError::Refused("contract addressed to another supplier".into()));
        }
        if customer == *me {
            return Err(StoreError::Refused("a node cannot be its own supplier".into()));
        }
        let c = &proposed.contract;
        if c.start_unix.abs_diff(now_unix) > CONTRACT_CLOCK_SKEW_SECS {
            return Err(StoreError::Refused("contract start time too far from now (clock skew or replay)".into()));
        }
        let policy = self.policy;
        let least = policy.min_needed_bytes.max(1);
        if c.needed_bytes < least {
            return Err(StoreError::Refused(format!(
                "needed space {} is below the {least} bytes a contract asks for at least",
                c.needed_bytes
            )));
        }
        let percent = u128::from(policy.max_share_percent.clamp(1, 100));
        let share = u64::try_from(u128::from(self.donated_bytes) * percent / 100).unwrap_or(u64::MAX);
        if c.needed_bytes > share {
            return Err(StoreError::Refused(format!(
                "needed space {} is more than one customer's share: {}% of {} bytes donated",
                c.needed_bytes, policy.max_share_percent, self.donated_bytes
            )));
        }
        if !(policy.min_secs..=policy.max_secs).contains(&c.duration_secs) {
            return Err(StoreError::Refused(format!(
                "a contract of {} s: this supplier takes {} to {} s",
                c.duration_secs, policy.min_secs, policy.max_secs
            )));
        }
        let key = sender.to_bytes();
        let txn = self.db.begin_write().map_err(io)?;
        let accepted = {
            let mut contracts = txn.open_table(CONTRACTS).map_err(io)?;
            let mut ended = txn.open_table(ENDED).map_err(io)?;
            let usage = txn.open_table(USAGE).map_err(io)?;
            let mut committed: u64 = 0;
            let mut previous_start = None;
            for row in contracts.iter().map_err(io)? {
                let (k, v) = row.map_err(io)?;
                let Ok(sc) = postcard::from_bytes::<SignedContract>(v.value()) else {
                    continue;
                };
                if k.value() == key.as_slice() {
                    previous_start = Some(sc.contract.start_unix);
                    continue;
                }
                let end = end_of(&sc, ended.get(k.value()).map_err(io)?.map(|v| v.value()));
                let held = if now_unix < end {
                    sc.contract.needed_bytes
                } else {
                    usage.get(k.value()).map_err(io)?.map(|v| v.value()).unwrap_or(0)
                };
                committed = committed.saturating_add(held);
            }
            if previous_start.is_some_and(|p| p > c.start_unix) {
                return Err(StoreError::Refused("an older contract than the one in force (replay)".into()));
            }
            let used = usage.get(key.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            if c.needed_bytes < used {
                return Err(StoreError::Refused(format!(
                    "needed space {} is below the {used} bytes already stored",
                    c.needed_bytes
                )));
            }
            if committed.saturating_add(c.needed_bytes) > self.donated_bytes {
                return Err(StoreError::Refused(format!(
                    "not enough donated space: {} bytes asked, {} of {} bytes free",
                    c.needed_bytes,
                    self.donated_bytes.saturating_sub(committed),
                    self.donated_bytes
                )));
            }
            let accepted = sign(proposed.clone());
            let bytes = postcard::to_stdvec(&accepted).map_err(io)?;
            contracts.insert(key.as_slice(), bytes.as_slice()).map_err(io)?;
            ended.remove(key.as_slice()).map_err(io)?;
            accepted
        };
        txn.commit().map_err(io)?;
        Ok(accepted)
    }

    /// The contract in force with `customer`.
    ///
    /// # Errors
    /// [`StoreError::Io`] on database failure.
    pub fn contract(&self, customer: &PeerId) -> Result<Option<SignedContract>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let t = txn.open_table(CONTRACTS).map_err(io)?;
        let v = t.get(customer.to_bytes().as_slice()).map_err(io)?;
        Ok(v.and_then(|v| postcard::from_bytes(v.value()).ok()))
    }

    /// The contract with `customer` if it is in force at `now_unix` (started, not past its term, not ended by the
    /// customer).
    ///
    /// # Errors
    /// [`StoreError::NoContract`] if there is none in force; [`StoreError::Io`].
    pub fn contract_in_force(&self, customer: &PeerId, now_unix: u64) -> Result<SignedContract, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let key = customer.to_bytes();
        let contract = txn.open_table(CONTRACTS).map_err(io)?.get(key.as_slice()).map_err(io)?;
        let contract = contract.and_then(|v| postcard::from_bytes::<SignedContract>(v.value()).ok());
        let ended = txn.open_table(ENDED).map_err(io)?.get(key.as_slice()).map_err(io)?.map(|v| v.value());
        match contract {
            Some(c) if now_unix < end_of(&c, ended) => Ok(c),
            Some(c) => Err(StoreError::NoContract(format!("{customer} (its contract ended at {})", end_of(&c, ended)))),
            None => Err(StoreError::NoContract(customer.to_string())),
        }
    }

    /// Ends `customer`'s contract at `now_unix`, at its request: it takes no new data; what it holds stays readable
    /// by the customer for the grace period and is then freed. Ending one that ended already changes nothing.
    ///
    /// # Errors
    /// [`StoreError::NoContract`] if there is none; [`StoreError::Io`].
    pub fn end_contract(&self, customer: &PeerId, now_unix: u64) -> Result<(), StoreError> {
        let key = customer.to_bytes();
        let txn = self.db.begin_write().map_err(io)?;
        {
            if txn.open_table(CONTRACTS).map_err(io)?.get(key.as_slice()).map_err(io)?.is_none() {
                return Err(StoreError::NoContract(customer.to_string()));
            }
            let mut ended = txn.open_table(ENDED).map_err(io)?;
            let at = ended.get(key.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(u64::MAX).min(now_unix);
            ended.insert(key.as_slice(), at).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    /// Remembers that `owner` revoked its access grants `grants` (id, expiry in Unix seconds), each until it
    /// expires; the expired ones are forgotten first. Returns how many `owner` has revoked now.
    ///
    /// # Errors
    /// [`StoreError::Refused`] past [`crate::proto::grant::MAX_REVOKED_PER_OWNER`] (nothing is changed then),
    /// [`StoreError::Io`].
    pub fn revoke(&self, owner: &PeerId, grants: &[([u8; 16], u64)], now_unix: u64) -> Result<u64, StoreError> {
        let key = owner.to_bytes();
        let txn = self.db.begin_write().map_err(io)?;
        let count = {
            let mut table = txn.open_table(REVOKED).map_err(io)?;
            let held: Vec<(Vec<u8>, u64)> = table
                .range(key.as_slice()..)
                .map_err(io)?
                .map_while(|row| {
                    row.ok().map(|(k, v)| (k.value().to_vec(), v.value())).filter(|(k, _)| k.starts_with(&key))
                })
                .collect();
            let mut count = held.len() as u64;
            for (k, expires) in &held {
                if expires.saturating_add(crate::proto::grant::SKEW_SECS) < now_unix {
                    table.remove(k.as_slice()).map_err(io)?;
                    count -= 1;
                }
            }
            for (id, expires) in grants {
                let k = [key.as_slice(), id].concat();
                if expires.saturating_add(crate::proto::grant::SKEW_SECS) < now_unix {
                    continue;
                }
                if table.insert(k.as_slice(), *expires).map_err(io)?.is_none() {
                    count += 1;
                }
            }
            if count > crate::proto::grant::MAX_REVOKED_PER_OWNER {
                return Err(StoreError::Refused(format!(
                    "over {} revoked grants held for {owner}: let some expire first",
                    crate::proto::grant::MAX_REVOKED_PER_OWNER
                )));
            }
            count
        };
        txn.commit().map_err(io)?;
        Ok(count)
    }

    /// Whether `owner` revoked its access grant `id`.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn is_revoked(&self, owner: &PeerId, id: &[u8; 16]) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let table = txn.open_table(REVOKED).map_err(io)?;
        let k = [owner.to_bytes().as_slice(), id].concat();
        Ok(table.get(k.as_slice()).map_err(io)?.is_some())
    }

    /// Frees everything of the customers whose contract ended more than the grace period before `now_unix`:
    /// fragments, catalog, held records, usage and the contract itself. Returns each customer freed and the bytes
    /// freed.
    ///
    /// # Errors
    /// [`StoreError::Io`]; what was freed before the error stays freed, the rest is freed by the next call.
    pub fn free_ended(&self, now_unix: u64) -> Result<Vec<(PeerId, u64)>, StoreError> {
        let grace = self.policy.grace_secs;
        let due: Vec<PeerId> = {
            let txn = self.db.begin_read().map_err(io)?;
            let contracts = txn.open_table(CONTRACTS).map_err(io)?;
            let ended = txn.open_table(ENDED).map_err(io)?;
            let mut due = Vec::new();
            for row in contracts.iter().map_err(io)? {
                let (k, v) = row.map_err(io)?;
                let Ok(customer) = PeerId::from_bytes(k.value()) else { continue };
                let end = match postcard::from_bytes::<SignedContract>(v.value()) {
                    Ok(sc) => end_of(&sc, ended.get(k.value()).map_err(io)?.map(|v| v.value())),
                    Err(_) => 0,
                };
                if now_unix >= end.saturating_add(grace) {
                    due.push(customer);
                }
            }
            due
        };
        let mut freed = Vec::new();
        for customer in due {
            let used = self.usage_of(&customer)?.0;
            self.free_customer(&customer)?;
            tracing::info!(%customer, bytes = used, "contract ended past its grace period: space freed");
            freed.push((customer, used));
        }
        Ok(freed)
    }

    /// Removes every trace of `customer` (see [`FragmentStore::free_ended`]): the index first, in one transaction,
    /// then the files (a crash in between leaves only unindexed files, removed again by the next call).
    fn free_customer(&self, customer: &PeerId) -> Result<(), StoreError> {
        use bitdust_core::record::{record_key, RecordKind};
        let key = customer.to_bytes();
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut frags = txn.open_table(FRAGMENTS).map_err(io)?;
            let ids: Vec<Vec<u8>> = frags
                .range(key.as_slice()..)
                .map_err(io)?
                .map_while(|row| row.ok().map(|(k, _)| k.value().to_vec()).filter(|k| k.starts_with(&key)))
                .collect();
            for id in ids {
                frags.remove(id.as_slice()).map_err(io)?;
            }
            for table in [USAGE, CATALOGS, CATALOG_BYTES, ENDED] {
                txn.open_table(table).map_err(io)?.remove(key.as_slice()).map_err(io)?;
            }
            let mut held = txn.open_table(HELD_RECORDS).map_err(io)?;
            for kind in [RecordKind::Identity, RecordKind::Suppliers] {
                held.remove(record_key(kind, customer).as_slice()).map_err(io)?;
            }
            txn.open_table(CONTRACTS).map_err(io)?.remove(key.as_slice()).map_err(io)?;
        }
        txn.commit().map_err(io)?;
        // paths built from a peer id under our own root: nothing a peer names
        for path in [
            self.root.join("fragments").join(customer.to_string()),
            self.root.join("catalogs").join(customer.to_string()),
        ] {
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        Ok(())
    }

    fn fragment_path(&self, owner: &PeerId, id: &[u8; 32]) -> PathBuf {
        let h = hex_id(id);
        self.root.join("fragments").join(owner.to_string()).join(&h[..2]).join(h)
    }

    /// Stores (or overwrites) fragment `id` of `owner`, who must be the authenticated sender. Checks the
    /// fragment's format and hash, the contract and the quota before writing.
    ///
    /// # Errors
    /// [`StoreError::NoContract`], [`StoreError::QuotaExceeded`], [`StoreError::Malformed`],
    /// [`StoreError::Io`]. On error nothing is changed.
    pub fn put_fragment(&self, owner: &PeerId, id: &[u8; 32], data: &[u8]) -> Result<(), StoreError> {
        if data.len() > fragment::MAX_FRAGMENT_LEN {
            return Err(StoreError::Malformed(format!("fragment of {} bytes is too large", data.len())));
        }
        fragment::parse(data).map_err(|e| StoreError::Malformed(e.to_string()))?;
        let contract = self.contract_in_force(owner, unix_now())?;
        let key = fragment_key(owner, id);
        let okey = owner.to_bytes();
        let needed = contract.contract.needed_bytes;
        // Usage after this put: (old size of `id`, usage now, usage after), or QuotaExceeded.
        let quota = |old: u64, used: u64| {
            let new_used = used - old.min(used) + data.len() as u64;
            if new_used > needed {
                return Err(StoreError::QuotaExceeded {
                    customer: owner.to_string(),
                    used,
                    adding: data.len() as u64,
                    needed,
                });
            }
            Ok(new_used)
        };
        // Check the quota (read), write and fsync the file under a temp name, and only then take the write
        // transaction (one at a time) to check again, rename the file into place and commit the index: puts of
        // several fragments write and fsync at the same time.
        {
            let txn = self.db.begin_read().map_err(io)?;
            let old = txn.open_table(FRAGMENTS).map_err(io)?.get(key.as_slice()).map_err(io)?.map(|v| v.value());
            let used = txn.open_table(USAGE).map_err(io)?.get(okey.as_slice()).map_err(io)?.map(|v| v.value());
            quota(old.unwrap_or(0), used.unwrap_or(0))?;
        }
        let staged = bitdust_store::StagedFile::write_cold(&self.fragment_path(owner, id), data).map_err(io)?;
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut frags = txn.open_table(FRAGMENTS).map_err(io)?;
            let mut usage = txn.open_table(USAGE).map_err(io)?;
            let old = frags.get(key.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let used = usage.get(okey.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let new_used = quota(old, used)?;
            staged.commit().map_err(io)?;
            frags.insert(key.as_slice(), data.len() as u64).map_err(io)?;
            usage.insert(okey.as_slice(), new_used).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    /// Reads fragment `id` of `owner` on behalf of `requester`. The fragment is checked first (format and
    /// BLAKE3 of its shard): a fragment damaged on disk is removed and reported missing, so that the owner
    /// rebuilds it rather than receiving bad bytes.
    ///
    /// # Errors
    /// [`StoreError::Denied`] unless `requester == owner`; [`StoreError::NotFound`]; [`StoreError::Io`].
    pub fn get_fragment(&self, requester: &PeerId, owner: &PeerId, id: &[u8; 32]) -> Result<Vec<u8>, StoreError> {
        if requester != owner {
            return Err(StoreError::Denied { requester: requester.to_string(), owner: owner.to_string() });
        }
        let bytes = match bitdust_store::read_cold(&self.fragment_path(owner, id)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // keep the index honest if the file vanished
                self.delete_fragment(owner, id)?;
                return Err(StoreError::NotFound);
            }
            Err(e) => return Err(io(e)),
        };
        if fragment::parse(&bytes).is_err() {
            tracing::warn!(%owner, id = %hex_id(id), "fragment damaged on disk; removed");
            self.delete_fragment(owner, id)?;
            return Err(StoreError::NotFound);
        }
        Ok(bytes)
    }

    /// Every fragment held, as (owner, id), in index order, for the scrub.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn all_fragments(&self) -> Result<Vec<(PeerId, [u8; 32])>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let frags = txn.open_table(FRAGMENTS).map_err(io)?;
        let mut out = Vec::new();
        for row in frags.iter().map_err(io)? {
            let (k, _) = row.map_err(io)?;
            let k = k.value();
            let Some(split) = k.len().checked_sub(32) else { continue };
            let (Ok(owner), Ok(id)) = (PeerId::from_bytes(&k[..split]), <[u8; 32]>::try_from(&k[split..])) else {
                continue;
            };
            out.push((owner, id));
        }
        Ok(out)
    }

    /// Scrubs one fragment: reads it from disk and checks its format and its shard against the header's BLAKE3.
    /// A damaged or vanished fragment is dropped from the store, so the owner's next audit finds it missing, its
    /// sweep lists what else is gone, and it rebuilds them. Returns whether the fragment was intact.
    ///
    /// # Errors
    /// [`StoreError::Io`] if it cannot be read for another reason (the disk, the folder): left in place, and the
    /// owner's audits fail.
    pub fn scrub(&self, owner: &PeerId, id: &[u8; 32]) -> Result<bool, StoreError> {
        match self.get_fragment(owner, owner, id) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Ids of `owner`'s fragments in ascending order, after `after`, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn list_fragments(
        &self,
        owner: &PeerId,
        after: Option<[u8; 32]>,
        limit: usize,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let prefix = owner.to_bytes();
        let start = match after {
            Some(a) => {
                let mut k = fragment_key(owner, &a);
                k.push(0);
                k
            }
            None => prefix.clone(),
        };
        let txn = self.db.begin_read().map_err(io)?;
        let frags = txn.open_table(FRAGMENTS).map_err(io)?;
        let mut out = Vec::new();
        for row in frags.range(start.as_slice()..).map_err(io)? {
            let (k, _) = row.map_err(io)?;
            let k = k.value();
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            // list only what is really on disk: an index entry whose file vanished is not held
            if let Ok(id) = <[u8; 32]>::try_from(&k[prefix.len()..]) {
                if self.fragment_path(owner, &id).exists() {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Bytes and number of fragments stored for `owner`.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn usage_of(&self, owner: &PeerId) -> Result<(u64, u64), StoreError> {
        let u = self.usage()?;
        let o = owner.to_string();
        Ok(u.iter().find(|u| u.customer == o).map(|u| (u.used_bytes, u.fragments)).unwrap_or((0, 0)))
    }

    /// Deletes fragment `id` of `owner` (the authenticated sender; nobody can name another owner).
    /// Deleting a fragment that does not exist succeeds.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn delete_fragment(&self, owner: &PeerId, id: &[u8; 32]) -> Result<(), StoreError> {
        let key = fragment_key(owner, id);
        let okey = owner.to_bytes();
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut frags = txn.open_table(FRAGMENTS).map_err(io)?;
            let mut usage = txn.open_table(USAGE).map_err(io)?;
            let old = frags.remove(key.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let used = usage.get(okey.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            usage.insert(okey.as_slice(), used.saturating_sub(old)).map_err(io)?;
            match std::fs::remove_file(self.fragment_path(owner, id)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
        txn.commit().map_err(io)
    }

    /// Stores `owner`'s sealed catalog of `revision` (signature already checked by the caller). Requires a
    /// contract in force; refuses a revision lower than the one held; the catalog counts against the needed space.
    ///
    /// # Errors
    /// [`StoreError::NoContract`], [`StoreError::Stale`], [`StoreError::QuotaExceeded`], [`StoreError::Io`].
    pub fn put_catalog(&self, owner: &PeerId, revision: u64, sealed: &[u8]) -> Result<(), StoreError> {
        let needed = self.contract_in_force(owner, unix_now())?.contract.needed_bytes;
        let okey = owner.to_bytes();
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut cats = txn.open_table(CATALOGS).map_err(io)?;
            let held = cats.get(okey.as_slice()).map_err(io)?.map(|v| v.value());
            if let Some(held) = held {
                if revision < held {
                    return Err(StoreError::Stale { offered: revision, held });
                }
            }
            let mut sizes = txn.open_table(CATALOG_BYTES).map_err(io)?;
            let old = sizes.get(okey.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let mut usage = txn.open_table(USAGE).map_err(io)?;
            let used = usage.get(okey.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let new_used = charge(owner, used, old, sealed.len() as u64, needed)?;
            bitdust_store::write_atomic(&self.root.join("catalogs").join(owner.to_string()), sealed).map_err(io)?;
            cats.insert(okey.as_slice(), revision).map_err(io)?;
            sizes.insert(okey.as_slice(), sealed.len() as u64).map_err(io)?;
            usage.insert(okey.as_slice(), new_used).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    /// Keeps `sender`'s signed DHT record `bytes` (its identity or its supplier list) to publish again while the
    /// sender is away. The record must verify, be published by the sender (nobody can plant records for
    /// another customer), be of a kind recovery needs, and not roll back a newer one held; the sender must have a
    /// contract.
    ///
    /// # Errors
    /// [`StoreError::NoContract`], [`StoreError::Malformed`] (bad record or kind), [`StoreError::Denied`] (another
    /// publisher), [`StoreError::Stale`], [`StoreError::Io`].
    pub fn hold_record(&self, sender: &PeerId, bytes: &[u8]) -> Result<(), StoreError> {
        use bitdust_core::record::{self, RecordKind, SignedRecord};
        let needed = self.contract_in_force(sender, unix_now())?.contract.needed_bytes;
        if bytes.len() > record::MAX_RECORD_BYTES {
            return Err(StoreError::Malformed(format!("record of {} bytes is too large", bytes.len())));
        }
        let claimed: SignedRecord = postcard::from_bytes(bytes).map_err(|e| StoreError::Malformed(e.to_string()))?;
        if !matches!(claimed.kind, RecordKind::Identity | RecordKind::Suppliers) {
            return Err(StoreError::Malformed(format!("records of kind {:?} are not held", claimed.kind)));
        }
        let key = record::record_key(claimed.kind, sender);
        let (offered, publisher) = SignedRecord::decode_verified(&key, bytes).map_err(|e| match e {
            record::RecordError::WrongKey => {
                StoreError::Denied { requester: sender.to_string(), owner: "another publisher".into() }
            }
            other => StoreError::Malformed(other.to_string()),
        })?;
        if publisher != *sender {
            return Err(StoreError::Denied { requester: sender.to_string(), owner: publisher.to_string() });
        }
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut held = txn.open_table(HELD_RECORDS).map_err(io)?;
            let current = held
                .get(key.as_slice())
                .map_err(io)?
                .and_then(|v| SignedRecord::decode_verified(&key, v.value()).ok().map(|(r, _)| r));
            if let Some(h) = current.as_ref().filter(|h| h.revision > offered.revision) {
                return Err(StoreError::Stale { offered: offered.revision, held: h.revision });
            }
            let old = held.get(key.as_slice()).map_err(io)?.map(|v| v.value().len() as u64).unwrap_or(0);
            let okey = sender.to_bytes();
            let mut usage = txn.open_table(USAGE).map_err(io)?;
            let used = usage.get(okey.as_slice()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let new_used = charge(sender, used, old, bytes.len() as u64, needed)?;
            held.insert(key.as_slice(), bytes).map_err(io)?;
            usage.insert(okey.as_slice(), new_used).map_err(io)?;
        }
        txn.commit().map_err(io)
    }

    /// The records held for customers whose contract is in force ([`FragmentStore::hold_record`]), to publish.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn held_records(&self) -> Result<Vec<bitdust_core::record::SignedRecord>, StoreError> {
        use bitdust_core::record::SignedRecord;
        let txn = self.db.begin_read().map_err(io)?;
        let held = txn.open_table(HELD_RECORDS).map_err(io)?;
        let contracts = txn.open_table(CONTRACTS).map_err(io)?;
        let ended = txn.open_table(ENDED).map_err(io)?;
        let now = unix_now();
        let mut out = Vec::new();
        for row in held.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let Ok((record, publisher)) = SignedRecord::decode_verified(k.value(), v.value()) else {
                continue;
            };
            let pkey = publisher.to_bytes();
            let contract = contracts.get(pkey.as_slice()).map_err(io)?;
            let contract = contract.and_then(|v| postcard::from_bytes::<SignedContract>(v.value()).ok());
            let ended = ended.get(pkey.as_slice()).map_err(io)?.map(|v| v.value());
            if contract.is_some_and(|c| now < end_of(&c, ended)) {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// Reads `owner`'s sealed catalog on behalf of `requester`.
    ///
    /// # Errors
    /// [`StoreError::Denied`] unless `requester == owner`; [`StoreError::NotFound`]; [`StoreError::Io`].
    pub fn get_catalog(&self, requester: &PeerId, owner: &PeerId) -> Result<Vec<u8>, StoreError> {
        if requester != owner {
            return Err(StoreError::Denied { requester: requester.to_string(), owner: owner.to_string() });
        }
        match std::fs::read(self.root.join("catalogs").join(owner.to_string())) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(io(e)),
        }
    }

    /// Usage per customer with a contract.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn usage(&self) -> Result<Vec<Usage>, StoreError> {
        let txn = self.db.begin_read().map_err(io)?;
        let contracts = txn.open_table(CONTRACTS).map_err(io)?;
        let usage = txn.open_table(USAGE).map_err(io)?;
        let frags = txn.open_table(FRAGMENTS).map_err(io)?;
        let ended = txn.open_table(ENDED).map_err(io)?;
        let mut out = Vec::new();
        for row in contracts.iter().map_err(io)? {
            let (k, v) = row.map_err(io)?;
            let Ok(sc) = postcard::from_bytes::<SignedContract>(v.value()) else {
                continue;
            };
            let Ok(customer) = PeerId::from_bytes(k.value()) else {
                continue;
            };
            let used = usage.get(k.value()).map_err(io)?.map(|v| v.value()).unwrap_or(0);
            let prefix = k.value().to_vec();
            let mut count = 0u64;
            for f in frags.range(prefix.as_slice()..).map_err(io)? {
                let (fk, _) = f.map_err(io)?;
                if !fk.value().starts_with(&prefix) || fk.value().len() != prefix.len() + 32 {
                    break;
                }
                count += 1;
            }
            out.push(Usage {
                customer: customer.to_string(),
                position: sc.contract.position,
                used_bytes: used,
                needed_bytes: sc.contract.needed_bytes,
                fragments: count,
                ends_unix: end_of(&sc, ended.get(k.value()).map_err(io)?.map(|v| v.value())),
            });
        }
        Ok(out)
    }

    /// Space committed to customers now: the needed space of contracts in force, and what ended ones still hold.
    ///
    /// # Errors
    /// [`StoreError::Io`].
    pub fn committed_bytes(&self) -> Result<u64, StoreError> {
        let now = unix_now();
        Ok(self.usage()?.iter().map(|u| if now < u.ends_unix { u.needed_bytes } else { u.used_bytes }).sum())
    }

    /// The path of a fragment file (for fault-injection tests and diagnostics).
    pub fn fragment_file(&self, owner: &PeerId, id: &[u8; 32]) -> PathBuf {
        self.fragment_path(owner, id)
    }
}

/// Usage after replacing `old` bytes with `new` ones under a contract of `needed` bytes, or
/// [`StoreError::QuotaExceeded`].
fn charge(owner: &PeerId, used: u64, old: u64, new: u64, needed: u64) -> Result<u64, StoreError> {
    let after = used.saturating_sub(old).saturating_add(new);
    if after > needed {
        return Err(StoreError::QuotaExceeded { customer: owner.to_string(), used, adding: new, needed });
    }
    Ok(after)
}

fn fragment_key(owner: &PeerId, id: &[u8; 32]) -> Vec<u8> {
    let mut k = owner.to_bytes();
    k.extend_from_slice(id);
    k
}

fn hex_id(id: &[u8; 32]) -> String {
    hex::encode(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::erasure::Layout;
    use crate::proto::wire::Contract;
    use bitdust_core::keys::NodeKeys;

    /// Lax terms for tests of small quotas: any size, the whole space, 1 s to 10 years, 100 s of grace.
    fn policy() -> ContractPolicy {
        ContractPolicy {
            min_needed_bytes: 1,
            max_share_percent: 100,
            min_secs: 1,
            max_secs: 10 * 365 * 86_400,
            grace_secs: 100,
        }
    }

    fn contract(customer: &NodeKeys, supplier: &NodeKeys, needed: u64, start: u64, secs: u64) -> SignedContract {
        SignedContract::propose(
            customer,
            Contract {
                customer: customer.peer_id().to_bytes(),
                supplier: supplier.peer_id().to_bytes(),
                position: 0,
                needed_bytes: needed,
                start_unix: start,
                duration_secs: secs,
                nonce: rand::random(),
            },
        )
    }

    fn propose(
        store: &FragmentStore,
        customer: &NodeKeys,
        supplier: &NodeKeys,
        c: &SignedContract,
        now: u64,
    ) -> Result<SignedContract, StoreError> {
        store.accept_contract(&customer.peer_id(), &supplier.peer_id(), c, now, |c| c.accept(supplier))
    }

    /// A store with one customer holding a contract of `needed` bytes for an hour from now.
    fn setup(donated: u64, needed: u64) -> (tempfile::TempDir, FragmentStore, NodeKeys, NodeKeys) {
        let dir = tempfile::tempdir().unwrap();
        let store = FragmentStore::open_with(dir.path(), donated, policy()).unwrap();
        let (customer, supplier) = (NodeKeys::generate(), NodeKeys::generate());
        let now = unix_now();
        propose(&store, &customer, &supplier, &contract(&customer, &supplier, needed, now, 3600), now).unwrap();
        (dir, store, customer, supplier)
    }

    fn frag(len: usize) -> Vec<u8> {
        fragment::build(0, Layout::for_suppliers(4).unwrap(), [1; 32], &vec![7u8; len]).0
    }

    #[test]
    fn owner_reads_back_and_strangers_are_denied() {
        let (_d, store, customer, _) = setup(1 << 20, 1 << 20);
        let f = frag(100);
        store.put_fragment(&customer.peer_id(), &[9; 32], &f).unwrap();
        assert_eq!(store.get_fragment(&customer.peer_id(), &customer.peer_id(), &[9; 32]).unwrap(), f);
        let stranger = NodeKeys::generate().peer_id();
        assert!(matches!(store.get_fragment(&stranger, &customer.peer_id(), &[9; 32]), Err(StoreError::Denied { .. })));
        // a stranger's delete only touches the stranger's own namespace
        store.delete_fragment(&stranger, &[9; 32]).unwrap();
        assert_eq!(store.get_fragment(&customer.peer_id(), &customer.peer_id(), &[9; 32]).unwrap(), f);
        // and a stranger without a contract cannot store
        assert!(matches!(store.put_fragment(&stranger, &[9; 32], &f), Err(StoreError::NoContract(_))));
        store.delete_fragment(&customer.peer_id(), &[9; 32]).unwrap();
        assert!(matches!(
            store.get_fragment(&customer.peer_id(), &customer.peer_id(), &[9; 32]),
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.usage().unwrap()[0].used_bytes, 0);
    }

    /// A supplier holds a customer's own records only: a stranger (no contract) or another customer cannot plant
    /// records under someone else's key, and an older revision never replaces a newer one.
    #[test]
    fn held_records_are_the_customers_own_and_never_roll_back() {
        use bitdust_core::record::{RecordKind, SignedRecord};
        let (_d, store, customer, _) = setup(1 << 20, 1 << 20);
        let me = customer.peer_id();
        let list = |rev| SignedRecord::sign(&customer, RecordKind::Suppliers, rev, 1, vec![rev as u8]).encode();
        store.hold_record(&me, &list(5)).unwrap();
        assert!(matches!(store.hold_record(&me, &list(4)), Err(StoreError::Stale { offered: 4, held: 5 })));
        let held = store.held_records().unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].revision, 5);
        // a stranger has no contract; with one it still cannot hold records published by another
        let stranger = NodeKeys::generate();
        let own = SignedRecord::sign(&stranger, RecordKind::Suppliers, 9, 1, vec![1]).encode();
        assert!(matches!(store.hold_record(&stranger.peer_id(), &own), Err(StoreError::NoContract(_))));
        assert!(store.hold_record(&stranger.peer_id(), &list(6)).is_err());
        let mut forged = SignedRecord::sign(&stranger, RecordKind::Suppliers, 9, 1, vec![1]);
        forged.publisher = me.to_bytes();
        assert!(store.hold_record(&me, &forged.encode()).is_err(), "a record whose signature is not the publisher's");
        assert!(store.hold_record(&me, b"garbage").is_err());
        assert_eq!(store.held_records().unwrap()[0].revision, 5);
    }

    #[test]
    fn over_quota_is_refused_and_overwrite_counts_once() {
        let (_d, store, customer, _) = setup(1 << 20, 1000);
        let f = frag(400);
        store.put_fragment(&customer.peer_id(), &[1; 32], &f).unwrap();
        store.put_fragment(&customer.peer_id(), &[1; 32], &f).unwrap();
        store.put_fragment(&customer.peer_id(), &[2; 32], &f).unwrap();
        let err = store.put_fragment(&customer.peer_id(), &[3; 32], &f).unwrap_err();
        assert!(matches!(err, StoreError::QuotaExceeded { .. }), "{err}");
        assert!(matches!(
            store.get_fragment(&customer.peer_id(), &customer.peer_id(), &[3; 32]),
            Err(StoreError::NotFound)
        ));
        assert_eq!(store.usage().unwrap()[0].fragments, 2);
    }

    #[test]
    fn concurrent_puts_respect_the_quota_and_leave_no_temp_files() {
        let (dir, store, customer, _) = setup(1 << 20, 1000);
        let f = frag(400);
        assert!(f.len() * 2 <= 1000 && f.len() * 3 > 1000, "two fragments fit, three do not");
        let owner = customer.peer_id();
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|s| {
            let (store, owner, f) = (&store, &owner, &f);
            let handles: Vec<_> =
                (0..8u8).map(|i| s.spawn(move || store.put_fragment(owner, &[i + 10; 32], f))).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 2, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(StoreError::QuotaExceeded { .. }))));
        let usage = &store.usage().unwrap()[0];
        assert_eq!((usage.fragments, usage.used_bytes), (2, 2 * f.len() as u64));
        let files: Vec<String> = walk(dir.path()).into_iter().filter(|p| p.contains("/fragments/")).collect();
        assert_eq!(files.len(), 2, "only the two stored fragments are on disk: {files:?}");
    }

    fn walk(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
        out
    }

    #[test]
    fn contract_beyond_donated_space_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FragmentStore::open_with(dir.path(), 1000, policy()).unwrap();
        let (customer, supplier) = (NodeKeys::generate(), NodeKeys::generate());
        let proposed = contract(&customer, &supplier, 1001, 1000, 100);
        assert!(matches!(propose(&store, &customer, &supplier, &proposed, 1000), Err(StoreError::Refused(_))));
        // signed by someone else than the sender
        let r = store.accept_contract(&supplier.peer_id(), &supplier.peer_id(), &proposed, 1000, |c| c);
        assert!(matches!(r, Err(StoreError::Refused(_))));
    }

    /// Issue 14, item 4: no contract for nothing, for all the space, for a moment or for ever.
    #[test]
    fn contract_terms_outside_the_policy_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FragmentStore::open_with(dir.path(), 100 << 20, ContractPolicy::default()).unwrap();
        let (customer, supplier) = (NodeKeys::generate(), NodeKeys::generate());
        let now = unix_now();
        let refused = |needed, secs| {
            let c = contract(&customer, &supplier, needed, now, secs);
            match propose(&store, &customer, &supplier, &c, now) {
                Err(StoreError::Refused(why)) => why,
                other => panic!("{needed} bytes for {secs} s: {other:?}"),
            }
        };
        assert!(refused(0, 86_400).contains("below"));
        assert!(refused(100 << 20, 86_400).contains("share"), "all the space");
        assert!(refused((25 << 20) + 1, 86_400).contains("share"));
        assert!(refused(1 << 20, 60).contains("takes"), "too short");
        assert!(refused(1 << 20, 10 * 365 * 86_400).contains("takes"), "too long");
        // a quarter of the space for a month is fine
        let ok = contract(&customer, &supplier, 25 << 20, now, 30 * 86_400);
        propose(&store, &customer, &supplier, &ok, now).unwrap();
    }

    /// Issue 14, item 4: a contract takes data only while in force; after its term (or its customer's cancel) the
    /// data stays readable for the grace period and is then freed, and with it the space it held.
    #[test]
    fn a_contract_ends_at_its_term_or_when_cancelled_and_its_space_is_freed_after_the_grace_period() {
        use bitdust_core::record::{RecordKind, SignedRecord};
        let (dir, store, alice, supplier) = setup(4 << 20, 2 << 20);
        let now = unix_now();
        let (a, f) = (alice.peer_id(), frag(1000));
        store.put_fragment(&a, &[1; 32], &f).unwrap();
        store.put_catalog(&a, 1, b"sealed catalog").unwrap();
        store.hold_record(&a, &SignedRecord::sign(&alice, RecordKind::Identity, 1, 1, vec![1]).encode()).unwrap();
        assert!(store.contract_in_force(&a, now + 3599).is_ok());
        assert!(matches!(store.contract_in_force(&a, now + 3600), Err(StoreError::NoContract(_))));
        // bob cancels at once: no new data, his data still readable, his reservation released
        let bob = NodeKeys::generate();
        let b = bob.peer_id();
        propose(&store, &bob, &supplier, &contract(&bob, &supplier, 2 << 20, now, 3600), now).unwrap();
        store.put_fragment(&b, &[2; 32], &f).unwrap();
        let carol = NodeKeys::generate();
        // (what bob still holds stays committed until it is freed)
        let full = contract(&carol, &supplier, (2 << 20) - 2000, now, 3600);
        assert!(matches!(propose(&store, &carol, &supplier, &full, now), Err(StoreError::Refused(_))), "full");
        store.end_contract(&b, now).unwrap();
        assert!(matches!(store.put_fragment(&b, &[3; 32], &f), Err(StoreError::NoContract(_))));
        assert_eq!(store.get_fragment(&b, &b, &[2; 32]).unwrap(), f);
        propose(&store, &carol, &supplier, &full, now).unwrap();
        assert!(store.held_records().unwrap().iter().all(|r| r.publisher == a.to_bytes()));

        // nothing is freed before the grace period is over, everything of bob after it
        assert!(store.free_ended(now + 99).unwrap().is_empty());
        assert_eq!(store.free_ended(now + 100).unwrap(), vec![(b, f.len() as u64)]);
        assert!(matches!(store.get_fragment(&b, &b, &[2; 32]), Err(StoreError::NotFound)));
        assert!(!dir.path().join("fragments").join(b.to_string()).exists());
        // alice's term ends; her data is freed a grace period later, and her held records are no longer published
        assert_eq!(store.usage().unwrap().len(), 2);
        assert!(store.free_ended(now + 3600 + 99).unwrap().iter().all(|(p, _)| *p != a));
        let freed = store.free_ended(now + 3600 + 100).unwrap();
        assert!(freed.iter().any(|(p, n)| *p == a && *n > f.len() as u64), "{freed:?}");
        assert!(matches!(store.get_catalog(&a, &a), Err(StoreError::NotFound)));
        assert!(store.held_records().unwrap().is_empty());
        assert!(store.usage().unwrap().is_empty());
        assert!(!dir.path().join("catalogs").join(a.to_string()).exists());
        // a renewal revives an ended contract
        let dave = NodeKeys::generate();
        propose(&store, &dave, &supplier, &contract(&dave, &supplier, 1 << 20, now, 3600), now).unwrap();
        store.end_contract(&dave.peer_id(), now).unwrap();
        propose(&store, &dave, &supplier, &contract(&dave, &supplier, 1 << 20, now + 1, 3600), now + 1).unwrap();
        assert!(store.contract_in_force(&dave.peer_id(), now + 1).is_ok());
    }

    /// Issue 14, item 4: every byte counts, catalogs and held records included.
    #[test]
    fn catalogs_and_held_records_count_against_the_needed_space() {
        use bitdust_core::record::{RecordKind, SignedRecord};
        let (_d, store, alice, _) = setup(1 << 20, 3000);
        let a = alice.peer_id();
        store.put_catalog(&a, 1, &[1; 1500]).unwrap();
        let record = SignedRecord::sign(&alice, RecordKind::Identity, 1, 1, vec![1; 100]).encode();
        store.hold_record(&a, &record).unwrap();
        let used = 1500 + record.len() as u64;
        assert_eq!(store.usage_of(&a).unwrap().0, used);
        // a new catalog replaces the old one's bytes
        store.put_catalog(&a, 2, &vec![2; 2900 - record.len()]).unwrap();
        assert_eq!(store.usage_of(&a).unwrap().0, 2900);
        assert!(matches!(store.put_catalog(&a, 3, &[3; 3000]), Err(StoreError::QuotaExceeded { .. })));
        assert!(matches!(store.put_fragment(&a, &[1; 32], &frag(200)), Err(StoreError::QuotaExceeded { .. })));
        assert_eq!(store.get_catalog(&a, &a).unwrap().len(), 2900 - record.len());
    }

    #[test]
    fn a_fragment_damaged_on_disk_is_removed_and_reported_missing() {
        let (_d, store, customer, _) = setup(1 << 20, 1 << 20);
        let me = customer.peer_id();
        store.put_fragment(&me, &[1; 32], &frag(100)).unwrap();
        store.put_fragment(&me, &[2; 32], &frag(100)).unwrap();
        assert_eq!(store.list_fragments(&me, None, 10).unwrap(), vec![[1; 32], [2; 32]]);
        assert_eq!(store.list_fragments(&me, Some([1; 32]), 10).unwrap(), vec![[2; 32]]);
        let path = store.fragment_file(&me, &[1; 32]);
        let mut b = std::fs::read(&path).unwrap();
        b[100] ^= 1;
        std::fs::write(&path, b).unwrap();
        assert!(matches!(store.get_fragment(&me, &me, &[1; 32]), Err(StoreError::NotFound)));
        assert_eq!(store.list_fragments(&me, None, 10).unwrap(), vec![[2; 32]]);
        assert_eq!(store.usage_of(&me).unwrap(), (frag(100).len() as u64, 1));
    }

    #[test]
    fn malformed_fragment_is_refused() {
        let (_d, store, customer, _) = setup(1 << 20, 1 << 20);
        let mut f = frag(100);
        f[90] ^= 1;
        assert!(matches!(store.put_fragment(&customer.peer_id(), &[1; 32], &f), Err(StoreError::Malformed(_))));
    }

    #[test]
    fn catalog_rollback_is_refused() {
        let (_d, store, customer, _) = setup(1 << 20, 1 << 20);
        store.put_catalog(&customer.peer_id(), 5, b"five").unwrap();
        assert!(matches!(store.put_catalog(&customer.peer_id(), 4, b"four"), Err(StoreError::Stale { .. })));
        assert_eq!(store.get_catalog(&customer.peer_id(), &customer.peer_id()).unwrap(), b"five");
    }
}
