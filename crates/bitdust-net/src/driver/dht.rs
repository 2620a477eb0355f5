//! DHT: queries in flight (answered when libp2p reports their progress) and records peers ask us to store.

use std::collections::HashSet;

use bitdust_core::record::{self, SignedRecord};
use libp2p::kad::{self, store::RecordStore as _};
use libp2p::PeerId;

use super::Driver;
use crate::handle::{Enough, Reply};
use crate::{LookupStats, NetError};

/// A record lookup ends once this many valid copies were found (the one to believe among them is
/// [`record::pick`]'s: the newest revision), or when the query ends. A nickname lookup always asks every closest
/// node: the claim believed is the publisher most copies agree on, and a thief's claim sits on the nodes that had
/// none when it came, so stopping early could count mostly those.
const GET_COPIES: usize = 4;

pub(crate) enum Query {
    Put(Reply<()>),
    Get {
        key: Vec<u8>,
        /// Valid copies seen so far.
        copies: Vec<SignedRecord>,
        reply: Reply<(SignedRecord, LookupStats)>,
    },
    Provide(Reply<()>),
    Providers {
        found: HashSet<PeerId>,
        enough: Enough,
        reply: Reply<(HashSet<PeerId>, LookupStats)>,
    },
    Bootstrap(Reply<()>),
}

impl Driver {
    pub(super) fn kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::InboundRequest { request } => match request {
                kad::InboundRequest::PutRecord { source, record: Some(record), .. } => {
                    self.inbound_record(source, record)
                }
                kad::InboundRequest::AddProvider { record: Some(provider) } => {
                    let who = provider.provider;
                    if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().add_provider_from(provider) {
                        tracing::debug!(provider = %who, error = %e, "refused provider record");
                    }
                }
                _ => {}
            },
            kad::Event::OutboundQueryProgressed { id, result, step, stats } => {
                self.query_progressed(id, result, step.last, LookupStats::from(&stats))
            }
            _ => {}
        }
    }

    /// Validates a record a peer asks us to store (signature, key, size, no rollback) and stores it within the
    /// store's limits ([`crate::DhtLimits`]).
    fn inbound_record(&mut self, source: PeerId, record: kad::Record) {
        let key = record.key.to_vec();
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let (offered, publisher) = match SignedRecord::decode_verified(&key, &record.value) {
            Ok(r) => r,
            Err(e) => {
                tracing::info!(%source, error = %e, "refused DHT record");
                store.count_refused();
                return;
            }
        };
        let held =
            store.get(&record.key).and_then(|r| SignedRecord::decode_verified(&key, &r.value).ok().map(|(r, _)| r));
        if let Err(e) = record::accept(held.as_ref(), &offered) {
            tracing::info!(%source, error = %e, "refused DHT record");
            store.count_refused();
            return;
        }
        if let Err(e) = store.put_from(source, publisher, record) {
            tracing::debug!(%source, %publisher, error = %e, "refused DHT record");
        }
    }

    fn query_progressed(&mut self, id: kad::QueryId, result: kad::QueryResult, last: bool, stats: LookupStats) {
        let Some(mut query) = self.queries.remove(&id) else {
            return;
        };
        let mut done = last;
        match (&mut query, result) {
            (Query::Get { key, copies, .. }, kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(found)))) => {
                match SignedRecord::decode_verified(key, &found.record.value) {
                    Ok((r, _)) => {
                        // Enough copies to pick from: do not wait for the slowest peers (a dead peer costs a whole
                        // dial timeout).
                        copies.push(r);
                        if copies.len() >= GET_COPIES && !record::is_nickname_key(key) {
                            if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                                q.finish();
                            }
                            done = true;
                        }
                    }
                    Err(e) => tracing::info!(error = %e, "ignored invalid DHT record"),
                }
            }
            (Query::Get { .. }, kad::QueryResult::GetRecord(_)) => done = true,
            (Query::Put(_), kad::QueryResult::PutRecord(r)) => {
                if let Query::Put(reply) = query {
                    let _ = reply.send(r.map(|_| ()).map_err(|e| NetError::Dht { what: "put", reason: e.to_string() }));
                }
                return;
            }
            (Query::Provide(_), kad::QueryResult::StartProviding(r)) => {
                if let Query::Provide(reply) = query {
                    let _ =
                        reply.send(r.map(|_| ()).map_err(|e| NetError::Dht { what: "provide", reason: e.to_string() }));
                }
                return;
            }
            (Query::Providers { found, enough, .. }, kad::QueryResult::GetProviders(r)) => match r {
                Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                    found.extend(providers);
                    if enough.met_by(found) {
                        if let Some(mut q) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                            q.finish();
                        }
                        done = true;
                    }
                }
                Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => done = true,
                Err(_) => done = true,
            },
            (Query::Bootstrap(_), kad::QueryResult::Bootstrap(r)) => {
                if !last && r.is_ok() {
                    self.queries.insert(id, query);
                    return;
                }
                if let Query::Bootstrap(reply) = query {
                    let _ = reply
                        .send(r.map(|_| ()).map_err(|e| NetError::Dht { what: "bootstrap", reason: e.to_string() }));
                }
                return;
            }
            _ => {}
        }
        if !done {
            self.queries.insert(id, query);
            return;
        }
        match query {
            Query::Get { copies, reply, .. } => {
                let found = record::pick(&copies)
                    .cloned()
                    .ok_or(NetError::Dht { what: "get", reason: "no valid record found".into() });
                let _ = reply.send(found.map(|r| (r, stats)));
            }
            Query::Providers { found, reply, .. } => {
                let _ = reply.send(Ok((found, stats)));
            }
            Query::Put(reply) | Query::Provide(reply) | Query::Bootstrap(reply) => {
                let _ = reply.send(Err(NetError::Dht { what: "query", reason: "ended without result".into() }));
            }
        }
    }
}
