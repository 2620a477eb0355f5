//! Who may hold a fragment, and getting it from them: used by restores and by the rebuild executor.

use anyhow::{bail, Result};
use bitdust_core::PeerId;

use crate::proto::wire::{Request, Response};
use crate::service::Storage;

impl Storage {
    /// Peers that may hold `version`'s fragment at `position`: the current supplier first, then the one
    /// at backup time.
    pub(crate) fn peers_for(&self, suppliers: &[Vec<u8>], position: u16) -> Vec<PeerId> {
        let mut out = Vec::new();
        if let Some(p) = self
            .suppliers()
            .ok()
            .and_then(|s| s.into_iter().find(|s| s.position == position))
            .and_then(|s| s.peer().ok())
        {
            out.push(p);
        }
        if let Some(p) = suppliers.get(position as usize).and_then(|b| PeerId::from_bytes(b).ok()) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// Fetches our fragment `id` (for `position`) from the first of `peers` that has it (see
    /// [`Storage::peers_for`]).
    ///
    /// # Errors
    /// If none of them returns it; the message has each peer's answer.
    pub(crate) async fn fetch_fragment(&self, peers: &[PeerId], position: u16, id: [u8; 32]) -> Result<Vec<u8>> {
        self.fetch_by(peers, position, Request::GetFragment { owner: self.node.peer_id().to_bytes(), id }).await
    }

    /// Fetches `owner`'s fragment `id` (for `position`) from the first of `peers` that serves it to us under
    /// `grant`.
    ///
    /// # Errors
    /// If none of them returns it; the message has each peer's answer.
    pub(crate) async fn fetch_granted(
        &self,
        peers: &[PeerId],
        position: u16,
        owner: PeerId,
        id: [u8; 32],
        grant: crate::proto::grant::SignedGrant,
    ) -> Result<Vec<u8>> {
        self.fetch_by(peers, position, Request::GetGranted { owner: owner.to_bytes(), id, grant }).await
    }

    /// Fetches `owner`'s fragment `id` (for `position`) from the first of `peers` that serves it to us under the
    /// one of a share's `grants` that covers it.
    ///
    /// # Errors
    /// No grant covers it, or none of the peers returns it; the message has each peer's answer.
    pub(crate) async fn fetch_shared(
        &self,
        peers: &[PeerId],
        position: u16,
        owner: PeerId,
        id: [u8; 32],
        grants: &[crate::proto::grant::SignedAccessGrant],
    ) -> Result<Vec<u8>> {
        let Some(grant) = grants.iter().find(|g| g.grant.fragments.contains(&id)) else {
            bail!("position {position}: the share's grants do not cover this fragment");
        };
        self.fetch_by(peers, position, Request::GetShared { owner: owner.to_bytes(), id, grant: grant.clone() }).await
    }

    /// Sends `request` (a fragment read) to each of `peers` in turn until one returns the fragment.
    async fn fetch_by(&self, peers: &[PeerId], position: u16, request: Request) -> Result<Vec<u8>> {
        let mut errors = Vec::new();
        for peer in peers {
            match self.request(*peer, request.clone()).await {
                Ok(Response::Fragment(bytes)) => return Ok(Vec::from(bytes)),
                Ok(Response::Error(code, msg)) => errors.push(format!("{code:?}: {msg}")),
                Ok(other) => errors.push(format!("unexpected {other:?}")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        bail!("position {position}: {}", if errors.is_empty() { "no supplier".into() } else { errors.join("; ") })
    }
}
