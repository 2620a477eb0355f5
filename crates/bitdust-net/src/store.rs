//! The DHT store: libp2p's in-memory Kademlia store behind limits on what others can make us hold.
//!
//! Kademlia (Maymounkov & Mazières 2002, 2.3) has every node store whatever its neighbours send it with `STORE`.
//! Every bitdust record is signed and keyed by its publisher ([`bitdust_core::record::record_key`]), so one key
//! pair has at most one record per kind; but key pairs cost nothing, and a stranger could fill the store with
//! records of throwaway keys, pushing out the records of the peers this node actually works with. So:
//!
//! - each record held for others is charged to the peer that sent it (its *source*), which may have at most
//!   [`DhtLimits::max_records_per_source`] records in our store;
//! - past [`DhtLimits::pressure_records`] only updates of held records and records of *priority* publishers (the
//!   peers this node has contracts with) are accepted, and when the store is full a priority record takes the
//!   place of a record of the source holding the most;
//! - a peer may be a provider of at most [`DhtLimits::max_keys_per_provider`] keys (libp2p accepts provider
//!   records only from the provider itself), and a priority provider takes the place of a stranger on a key whose
//!   provider list is full.
//!
//! Records this node puts itself (its own, through [`RecordStore::put`]) are never refused here.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use libp2p::kad::store::{self, MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::PeerId;

use crate::DhtLimits;

/// Why a record or provider record from a peer is not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The source has its share of the store already.
    #[error("the sender has {0} records here already")]
    SourceFull(usize),
    /// The store is under pressure and the publisher has no contract with us.
    #[error("the store is under pressure ({0} records) and the publisher is not a priority peer")]
    Pressure(usize),
    /// The store is full of priority records.
    #[error("the store is full")]
    Full,
    /// The provider provides its share of keys already.
    #[error("the provider provides {0} keys here already")]
    ProviderFull(usize),
    /// The key's provider list is full, or the store has its share of provided keys.
    #[error("no room for another provider")]
    ProvidersFull,
}

/// Kademlia's memory store with per-source, per-provider and pressure limits (see the module docs).
pub(crate) struct DhtStore {
    inner: MemoryStore,
    local: PeerId,
    limits: DhtLimits,
    /// Every record held, with the peer it is charged to (ourselves for our own).
    origin: HashMap<RecordKey, PeerId>,
    /// Records held per source.
    per_source: HashMap<PeerId, usize>,
    /// The providers of every key held.
    providers: HashMap<RecordKey, Vec<PeerId>>,
    /// Keys provided per provider.
    per_provider: HashMap<PeerId, usize>,
    /// Peers whose records are accepted whatever the pressure.
    priority: HashSet<PeerId>,
    /// Records and provider records refused so far.
    refused: u64,
}

impl DhtStore {
    /// An empty store for the node `local`, with `limits`; records larger than `max_value_bytes` are refused.
    pub(crate) fn new(local: PeerId, limits: DhtLimits, max_value_bytes: usize) -> Self {
        let config = MemoryStoreConfig {
            max_records: limits.max_records,
            max_value_bytes,
            max_provided_keys: limits.max_provided_keys,
            max_providers_per_key: limits.max_providers_per_key,
        };
        Self {
            inner: MemoryStore::with_config(local, config),
            local,
            limits,
            origin: HashMap::new(),
            per_source: HashMap::new(),
            providers: HashMap::new(),
            per_provider: HashMap::new(),
            priority: HashSet::new(),
            refused: 0,
        }
    }

    /// Records and provider records from peers refused so far (by these limits, or by the caller's checks:
    /// [`DhtStore::count_refused`]).
    pub(crate) fn refused(&self) -> u64 {
        self.refused
    }

    /// Counts a record refused before it reached the store (a bad signature, a rollback, a nickname taken).
    pub(crate) fn count_refused(&mut self) {
        self.refused += 1;
    }

    /// Replaces the set of priority peers.
    pub(crate) fn set_priority(&mut self, peers: HashSet<PeerId>) {
        self.priority = peers;
    }

    /// Records held.
    pub(crate) fn len(&self) -> usize {
        self.origin.len()
    }

    /// Keys with provider records held.
    pub(crate) fn provided_keys(&self) -> usize {
        self.providers.len()
    }

    /// Stores `record`, signed by `publisher`, that `source` asked us to store, if the limits allow it.
    ///
    /// # Errors
    /// The [`Refusal`]; the store is unchanged then.
    pub(crate) fn put_from(&mut self, source: PeerId, publisher: PeerId, record: Record) -> Result<(), Refusal> {
        let put = self.try_put_from(source, publisher, record);
        self.refused += u64::from(put.is_err());
        put
    }

    fn try_put_from(&mut self, source: PeerId, publisher: PeerId, record: Record) -> Result<(), Refusal> {
        if self.origin.contains_key(&record.key) {
            // an update of a record held (the caller checked it is newer): it stays charged where it was
            return self.inner.put(record).map_err(|_| Refusal::Full);
        }
        let priority = self.priority.contains(&publisher);
        let held = self.len();
        if !priority {
            let charged = self.per_source.get(&source).copied().unwrap_or(0);
            if charged >= self.limits.max_records_per_source {
                return Err(Refusal::SourceFull(charged));
            }
            if held >= self.limits.pressure_records {
                return Err(Refusal::Pressure(held));
            }
        }
        if held >= self.limits.max_records && !self.evict_a_record() {
            return Err(Refusal::Full);
        }
        let key = record.key.clone();
        self.inner.put(record).map_err(|_| Refusal::Full)?;
        self.charge(key, source);
        Ok(())
    }

    /// Removes one record of a non-priority publisher, charged to the source charged the most; false if there is
    /// none. Linear in the records held: it runs only when a priority record meets a full store.
    fn evict_a_record(&mut self) -> bool {
        let mut sources: Vec<(PeerId, usize)> = self.per_source.iter().map(|(p, n)| (*p, *n)).collect();
        sources.sort_by_key(|s| std::cmp::Reverse(s.1));
        for (source, _) in sources {
            if source == self.local {
                continue;
            }
            let victim = self
                .origin
                .iter()
                .filter(|(_, s)| **s == source)
                .map(|(k, _)| k)
                .find(|k| self.publisher_of(k).is_none_or(|p| !self.priority.contains(&p)))
                .cloned();
            if let Some(key) = victim {
                self.remove(&key);
                return true;
            }
        }
        false
    }

    /// The publisher of a held record, from its key (`/bitdust/<kind>/<peer id bytes>`).
    fn publisher_of(&self, key: &RecordKey) -> Option<PeerId> {
        let bytes = key.as_ref();
        let prefix_end = bytes.iter().enumerate().filter(|(_, b)| **b == b'/').nth(2).map(|(i, _)| i + 1)?;
        PeerId::from_bytes(&bytes[prefix_end..]).ok()
    }

    fn charge(&mut self, key: RecordKey, source: PeerId) {
        if let Some(old) = self.origin.insert(key, source) {
            self.uncharge(old);
        }
        *self.per_source.entry(source).or_default() += 1;
    }

    fn uncharge(&mut self, source: PeerId) {
        if let Some(n) = self.per_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
    }

    /// Stores a provider record a peer sent about itself, if the limits allow it.
    ///
    /// # Errors
    /// The [`Refusal`]; the store is unchanged then.
    pub(crate) fn add_provider_from(&mut self, record: ProviderRecord) -> Result<(), Refusal> {
        let added = self.try_add_provider_from(record);
        self.refused += u64::from(added.is_err());
        added
    }

    fn try_add_provider_from(&mut self, record: ProviderRecord) -> Result<(), Refusal> {
        let provider = record.provider;
        let known = self.providers.get(&record.key).cloned();
        if known.as_ref().is_some_and(|ps| ps.contains(&provider)) {
            return self.add_provider(record).map_err(|_| Refusal::ProvidersFull);
        }
        let priority = self.priority.contains(&provider);
        let provided = self.per_provider.get(&provider).copied().unwrap_or(0);
        if !priority && provided >= self.limits.max_keys_per_provider {
            return Err(Refusal::ProviderFull(provided));
        }
        match known {
            Some(ps) if ps.len() >= self.limits.max_providers_per_key => {
                let stranger = ps
                    .iter()
                    .copied()
                    .filter(|p| !self.priority.contains(p))
                    .max_by_key(|p| (self.per_provider.get(p).copied().unwrap_or(0), *p != self.local));
                match stranger {
                    Some(s) if priority && s != self.local => self.remove_provider(&record.key, &s),
                    _ => return Err(Refusal::ProvidersFull),
                }
            }
            None if self.providers.len() >= self.limits.max_provided_keys => return Err(Refusal::ProvidersFull),
            _ => {}
        }
        let key = record.key.clone();
        self.add_provider(record).map_err(|_| Refusal::ProvidersFull)?;
        match self.providers.get(&key) {
            Some(ps) if ps.contains(&provider) => Ok(()),
            _ => Err(Refusal::ProvidersFull),
        }
    }
}

impl RecordStore for DhtStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, k: &RecordKey) -> Option<Cow<'_, Record>> {
        self.inner.get(k)
    }

    /// Our own records (never refused by the limits, only by the store's size).
    fn put(&mut self, r: Record) -> store::Result<()> {
        let key = r.key.clone();
        let new = !self.origin.contains_key(&key);
        if new && self.len() >= self.limits.max_records && !self.evict_a_record() {
            return Err(store::Error::MaxRecords);
        }
        self.inner.put(r)?;
        self.charge(key, self.local);
        Ok(())
    }

    fn remove(&mut self, k: &RecordKey) {
        self.inner.remove(k);
        if let Some(source) = self.origin.remove(k) {
            self.uncharge(source);
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    fn add_provider(&mut self, record: ProviderRecord) -> store::Result<()> {
        let (key, provider) = (record.key.clone(), record.provider);
        self.inner.add_provider(record)?;
        // the memory store ignores a provider when the key's list is full: mirror what it really holds
        if self.inner.providers(&key).iter().any(|p| p.provider == provider) {
            let list = self.providers.entry(key).or_default();
            if !list.contains(&provider) {
                list.push(provider);
                *self.per_provider.entry(provider).or_default() += 1;
            }
        }
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.inner.providers(key)
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, k: &RecordKey, p: &PeerId) {
        self.inner.remove_provider(k, p);
        if let Some(list) = self.providers.get_mut(k) {
            if let Some(i) = list.iter().position(|x| x == p) {
                list.swap_remove(i);
                if let Some(n) = self.per_provider.get_mut(p) {
                    *n -= 1;
                    if *n == 0 {
                        self.per_provider.remove(p);
                    }
                }
            }
            if list.is_empty() {
                self.providers.remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    /// A record of `publisher` under a bitdust-shaped key (`/bitdust/identity/<peer id>`).
    fn record_of(publisher: &PeerId) -> Record {
        let mut key = b"/bitdust/identity/".to_vec();
        key.extend(publisher.to_bytes());
        Record::new(RecordKey::new(&key), vec![1, 2, 3])
    }

    fn limits() -> DhtLimits {
        DhtLimits {
            max_records: 10,
            max_records_per_source: 4,
            pressure_records: 8,
            max_provided_keys: 6,
            max_keys_per_provider: 2,
            max_providers_per_key: 3,
        }
    }

    #[test]
    fn one_source_gets_its_share_and_updates_of_held_records_still_pass() {
        let mut store = DhtStore::new(peer(), limits(), 1024);
        let source = peer();
        let publishers: Vec<PeerId> = (0..6).map(|_| peer()).collect();
        for (i, p) in publishers.iter().enumerate() {
            let put = store.put_from(source, *p, record_of(p));
            assert_eq!(put.is_ok(), i < 4, "record {i}: {put:?}");
        }
        assert_eq!((store.len(), store.refused()), (4, 2));
        // an update of a held record is not a new one
        let mut again = record_of(&publishers[0]);
        again.value = vec![9];
        store.put_from(source, publishers[0], again).unwrap();
        assert_eq!(store.get(&record_of(&publishers[0]).key).unwrap().value, vec![9]);
        // removal (expiry) gives the share back
        store.remove(&record_of(&publishers[0]).key);
        store.put_from(source, publishers[4], record_of(&publishers[4])).unwrap();
        assert_eq!(store.len(), 4);
    }

    #[test]
    fn under_pressure_only_priority_publishers_get_in_and_a_full_store_evicts_the_biggest_source() {
        let mut store = DhtStore::new(peer(), limits(), 1024);
        let (flooder, other) = (peer(), peer());
        for _ in 0..4 {
            let p = peer();
            store.put_from(flooder, p, record_of(&p)).unwrap();
        }
        for _ in 0..4 {
            let p = peer();
            store.put_from(other, p, record_of(&p)).unwrap();
        }
        assert_eq!(store.len(), 8, "at the pressure mark");
        let stranger = peer();
        assert!(matches!(store.put_from(stranger, stranger, record_of(&stranger)), Err(Refusal::Pressure(8))));
        let friends: Vec<PeerId> = (0..3).map(|_| peer()).collect();
        store.set_priority(friends.iter().copied().collect());
        for f in &friends {
            store.put_from(*f, *f, record_of(f)).unwrap();
        }
        assert_eq!(store.len(), 10, "full: the third friend took a stranger's place");
        assert_eq!(store.per_source.get(&flooder).copied().unwrap_or(0) + store.per_source[&other], 7);
        for f in &friends {
            assert!(store.get(&record_of(f).key).is_some());
        }
        // our own records are never refused by the limits, only by the size: they evict too
        let own = store.local;
        store.put(record_of(&own)).unwrap();
        assert_eq!(store.len(), 10);
    }

    #[test]
    fn providers_have_a_share_of_keys_and_priority_providers_take_a_strangers_place() {
        let mut store = DhtStore::new(peer(), limits(), 1024);
        let provider_record = |key: &[u8], p: PeerId| ProviderRecord::new(RecordKey::new(&key), p, Vec::new());
        let sybil = peer();
        store.add_provider_from(provider_record(b"a", sybil)).unwrap();
        store.add_provider_from(provider_record(b"b", sybil)).unwrap();
        assert!(matches!(store.add_provider_from(provider_record(b"c", sybil)), Err(Refusal::ProviderFull(2))));
        // a re-announcement of a held key passes
        store.add_provider_from(provider_record(b"a", sybil)).unwrap();
        for _ in 0..2 {
            store.add_provider_from(provider_record(b"a", peer())).unwrap();
        }
        let late = peer();
        assert!(store.add_provider_from(provider_record(b"a", late)).is_err(), "key a is full");
        let friend = peer();
        store.set_priority([friend].into_iter().collect());
        store.add_provider_from(provider_record(b"a", friend)).unwrap();
        let providers: Vec<PeerId> = store.providers(&RecordKey::new(&b"a")).iter().map(|r| r.provider).collect();
        assert!(providers.contains(&friend) && !providers.contains(&sybil) && providers.len() == 3, "{providers:?}");
        assert_eq!(store.per_provider.get(&sybil), Some(&1), "the sybil's share counts what it still provides");
    }
}
