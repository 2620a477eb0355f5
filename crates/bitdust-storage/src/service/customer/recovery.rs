//! Recovery on a new device: the supplier list from the DHT, the sealed catalog from the suppliers (signature,
//! owner and AEAD checked; the highest revision wins).

use anyhow::{anyhow, bail, Context, Result};
use bitdust_core::record::RecordKind;
use bitdust_core::PeerId;
use bitdust_node::home::unix_now;

use super::SupplierSlot;
use crate::proto::catalog::{Catalog, SealedCatalog};
use crate::proto::records::SupplierList;
use crate::proto::wire::{Request, Response};
use crate::service::Storage;

impl Storage {
    /// Recovers the catalog on a new device: finds the supplier list in the DHT, fetches the sealed catalog
    /// from the suppliers and keeps the highest revision that opens with our keys.
    ///
    /// # Errors
    /// If no supplier list or no valid catalog is found.
    pub async fn recover_catalog(&self) -> Result<Catalog> {
        let _g = self.customer_lock.lock().await;
        let me = self.node.peer_id();
        let rec = self
            .node
            .network()
            .get_record(RecordKind::Suppliers, me)
            .await
            .context("finding our suppliers in the DHT")?;
        let list: SupplierList = postcard::from_bytes(&rec.payload).context("supplier list record")?;
        let mut best: Option<Catalog> = None;
        let mut errors = Vec::new();
        // All suppliers at once: one that is down costs a dial timeout, not one per supplier before it.
        let peers: Vec<PeerId> = list.suppliers.iter().filter_map(|(_, p)| PeerId::from_bytes(p).ok()).collect();
        let answers = futures::future::join_all(peers.iter().map(|&peer| async move {
            self.node.lookup_identity(peer).await?;
            match self.request(peer, Request::GetCatalog { owner: me.to_bytes() }).await? {
                Response::Catalog(bytes) => Ok(SealedCatalog::decode(&bytes)?.open(self.node.keys())?),
                other => bail!("{other:?}"),
            }
        }))
        .await;
        for (peer, r) in peers.iter().zip(answers) {
            match r {
                Ok(c) => {
                    if best.as_ref().is_none_or(|b| c.revision > b.revision) {
                        best = Some(c);
                    }
                }
                Err(e) => errors.push(format!("{peer}: {e:#}")),
            }
        }
        let catalog = best.ok_or_else(|| anyhow!("no supplier returned our catalog: {}", errors.join("; ")))?;
        let slots: Vec<SupplierSlot> = list
            .suppliers
            .iter()
            .map(|(pos, p)| SupplierSlot { position: *pos, peer_id: p.clone(), contract: None, hired_unix: unix_now() })
            .collect();
        self.save_catalog(&catalog)?;
        self.save_suppliers(&slots)?;
        Ok(catalog)
    }
}
