//! The supplier service: answers `/bitdust/storage/1` requests from the authenticated sender out of the
//! [`FragmentStore`] (contracts, fragments, catalogs, heartbeats, audits, listings). Every check is the
//! store's: only the owner reads, a contract bounds what is stored, sizes from the peer are bounded before
//! allocation (the network's frame limit, then the store's).

use std::sync::Arc;

use bitdust_core::keys::NodeKeys;
use bitdust_core::PeerId;
use bitdust_net::{Frame, Inbound};
use bitdust_node::home::unix_now;
use bitdust_node::Node;
use tokio::sync::mpsc;

use crate::proto::catalog::SealedCatalog;
use crate::proto::wire::{ErrorCode, Request, Response, MAX_HELD_RECORDS, MAX_LIST};
use crate::proto::{audit, codec, fragment};
use crate::service::store::{FragmentStore, StoreError};

/// Most inbound requests handled at once (bounds memory: each may hold a 4 MiB fragment).
const INBOUND_CONCURRENCY: usize = 32;

/// Answers `/bitdust/storage/1` requests until the network stops (its inbound queue closes). Every node answers:
/// one that is not a supplier refuses.
///
/// A peer that never had a contract here gets `NoContract` for anything but a contract proposal at once, from
/// memory, before its request takes one of the [`INBOUND_CONCURRENCY`] handler slots or a disk read (and its
/// buffer goes back to the network's inbound budget): strangers cannot crowd out the customers.
pub(crate) async fn serve(node: Arc<Node>, store: Option<Arc<FragmentStore>>, mut inbound: mpsc::Receiver<Inbound>) {
    let limit = Arc::new(tokio::sync::Semaphore::new(INBOUND_CONCURRENCY));
    let contracted = match store.clone() {
        Some(s) => tokio::task::spawn_blocking(move || s.usage()).await.ok().and_then(Result::ok).unwrap_or_default(),
        None => Vec::new(),
    };
    let contracted = contracted.iter().filter_map(|u| u.customer.parse().ok()).collect();
    let supplier = Arc::new(Supplier {
        store,
        keys: node.keys().clone(),
        me: node.peer_id(),
        contracted: std::sync::RwLock::new(contracted),
    });
    while let Some(req) = inbound.recv().await {
        let grantee = codec::is_granted(&req.request);
        if supplier.store.is_some()
            && !supplier.may_have_contract(&req.peer)
            && !codec::is_contract(&req.request)
            && !grantee
        {
            let refusal = refuse(ErrorCode::NoContract, format!("no contract with {}", req.peer));
            if let Ok(chunks) = codec::encode_response(&refusal) {
                drop(req.request);
                let _ = node.network().respond(req.channel, Frame(chunks)).await;
            }
            continue;
        }
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let (node, supplier) = (node.clone(), supplier.clone());
        tokio::spawn(async move {
            let response = match codec::decode_request(req.request) {
                Ok(request) => supplier.handle(req.peer, request).await,
                Err(e) => refuse(ErrorCode::Malformed, e.to_string()),
            };
            match codec::encode_response(&response) {
                Ok(chunks) => {
                    let _ = node.network().respond(req.channel, Frame(chunks)).await;
                }
                Err(e) => tracing::warn!(error = %e, "cannot encode a response"),
            }
            drop(permit);
        });
    }
}

/// The supplier's side of the protocol: its fragment store (none when the role is off) and its identity.
struct Supplier {
    store: Option<Arc<FragmentStore>>,
    keys: NodeKeys,
    me: PeerId,
    /// Peers that had a contract here at start or made one since (a superset of those in force: the store decides).
    contracted: std::sync::RwLock<std::collections::HashSet<PeerId>>,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> Response {
    Response::Error(code, message.into())
}

impl Supplier {
    /// Whether `peer` may have a contract here (else its requests are refused without a disk read).
    fn may_have_contract(&self, peer: &PeerId) -> bool {
        self.contracted.read().map(|c| c.contains(peer)).unwrap_or(true)
    }

    /// Answers one storage request from the authenticated `peer`.
    async fn handle(&self, peer: PeerId, request: Request) -> Response {
        let Some(store) = self.store.clone() else {
            return refuse(ErrorCode::Refused, "this node is not a supplier");
        };
        let me = self.me;
        let keys = self.keys.clone();
        let result = tokio::task::spawn_blocking(move || -> Result<Response, StoreError> {
            Ok(match request {
                Request::Contract(proposed) => {
                    Response::ContractAccepted(
                        store.accept_contract(&peer, &me, &proposed, unix_now(), |c| c.accept(&keys))?,
                    )
                }
                Request::PutFragment { id, data } => {
                    store.put_fragment(&peer, &id, &data)?;
                    Response::Stored
                }
                Request::GetFragment { owner, id } => {
                    let owner = PeerId::from_bytes(&owner).map_err(|_| StoreError::Malformed("owner".into()))?;
                    Response::Fragment(store.get_fragment(&peer, &owner, &id)?.into())
                }
                Request::GetGranted { owner, id, grant } => {
                    let owner = PeerId::from_bytes(&owner).map_err(|_| StoreError::Malformed("owner".into()))?;
                    grant.allows(&peer, &owner, &id, unix_now()).map_err(|e| StoreError::Denied {
                        requester: format!("{peer} ({e})"),
                        owner: owner.to_string(),
                    })?;
                    Response::Fragment(store.get_fragment(&owner, &owner, &id)?.into())
                }
                Request::GetShared { owner, id, grant } => {
                    let owner = PeerId::from_bytes(&owner).map_err(|_| StoreError::Malformed("owner".into()))?;
                    let denied = |why: String| StoreError::Denied {
                        requester: format!("{peer} ({why})"),
                        owner: owner.to_string(),
                    };
                    grant.allows(&peer, &owner, &id, unix_now()).map_err(|e| denied(e.to_string()))?;
                    if store.is_revoked(&owner, &grant.grant.id)? {
                        return Err(denied("the owner revoked the grant".into()));
                    }
                    Response::Fragment(store.get_fragment(&owner, &owner, &id)?.into())
                }
                Request::Revoke { grants } => {
                    if grants.len() > crate::proto::grant::MAX_REVOKE {
                        return Err(StoreError::Malformed(format!("{} grants in one revocation", grants.len())));
                    }
                    // any contract held (one ended still serves its data during the grace period)
                    if store.contract(&peer)?.is_none() {
                        return Err(StoreError::NoContract(peer.to_string()));
                    }
                    store.revoke(&peer, &grants, unix_now())?;
                    Response::Revoked
                }
                Request::DeleteFragment { id } => {
                    store.delete_fragment(&peer, &id)?;
                    Response::Deleted
                }
                Request::PutCatalog(bytes) => {
                    let sealed = SealedCatalog::decode(&bytes).map_err(|e| StoreError::Malformed(e.to_string()))?;
                    let owner = sealed.verify().map_err(|e| StoreError::Malformed(e.to_string()))?;
                    if owner != peer {
                        return Err(StoreError::Denied { requester: peer.to_string(), owner: owner.to_string() });
                    }
                    store.put_catalog(&peer, sealed.revision, &bytes)?;
                    Response::Stored
                }
                Request::Heartbeat => {
                    store.contract_in_force(&peer, unix_now())?;
                    let (used_bytes, fragments) = store.usage_of(&peer)?;
                    Response::Alive { used_bytes, fragments }
                }
                Request::Audit { owner, id, start, len } => {
                    let owner = PeerId::from_bytes(&owner).map_err(|_| StoreError::Malformed("owner".into()))?;
                    let bytes = store.get_fragment(&peer, &owner, &id)?;
                    let (_, shard) = fragment::parse(&bytes).map_err(|e| StoreError::Malformed(e.to_string()))?;
                    let proof = audit::prove(shard, start, len).map_err(|e| StoreError::Malformed(e.to_string()))?;
                    Response::AuditProof(proof.into())
                }
                Request::ListFragments { after, limit } => {
                    let limit = limit.min(MAX_LIST) as usize;
                    Response::FragmentList(store.list_fragments(&peer, after, limit)?)
                }
                Request::HoldRecords(records) => {
                    if records.len() > MAX_HELD_RECORDS {
                        return Err(StoreError::Malformed(format!(
                            "{} records, at most {MAX_HELD_RECORDS}",
                            records.len()
                        )));
                    }
                    for r in &records {
                        store.hold_record(&peer, r)?;
                    }
                    Response::Stored
                }
                Request::EndContract => {
                    store.end_contract(&peer, unix_now())?;
                    Response::Deleted
                }
                Request::GetCatalog { owner } => {
                    let owner = PeerId::from_bytes(&owner).map_err(|_| StoreError::Malformed("owner".into()))?;
                    Response::Catalog(store.get_catalog(&peer, &owner)?)
                }
            })
        })
        .await;
        if let Ok(Ok(Response::ContractAccepted(_))) = &result {
            if let Ok(mut c) = self.contracted.write() {
                c.insert(peer);
            }
        }
        match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "request refused");
                refuse(e.code(), e.to_string())
            }
            Err(e) => refuse(ErrorCode::Internal, e.to_string()),
        }
    }
}
