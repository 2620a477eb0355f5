//! Hiring suppliers: candidates from the DHT's supplier-service providers (never ourselves, a node already holding
//! a position, or one fired before), a contract both sign, the signed supplier list published for key-only
//! recovery; and replacing one supplier (the hire/fire automaton's action).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitdust_core::record::{RecordKind, SignedRecord};
use bitdust_core::PeerId;
use bitdust_node::automata::now_ms;
use bitdust_node::home::unix_now;

use super::{FiredSuppliers, SupplierSlot, SupplierSlots, FIRED_KEY, SUPPLIERS_KEY};
use crate::proto::catalog::SealedCatalog;
use crate::proto::hiring;
use crate::proto::records::{SupplierList, SUPPLIERS_SERVICE_KEY};
use crate::proto::wire::{Contract, Request, Response, SignedContract};
use crate::service::Storage;

/// Candidates asked from the DHT per position to fill: the random draw is among this many at least.
const CANDIDATES_PER_POSITION: usize = 4;

impl Storage {
    /// Hires suppliers until `customer.suppliers` positions are filled.
    ///
    /// # Errors
    /// "too few suppliers online" if the DHT does not offer enough.
    pub async fn ensure_suppliers(&self) -> Result<Vec<SupplierSlot>> {
        let _g = self.customer_lock.lock().await;
        self.ensure_suppliers_locked().await
    }

    pub(super) async fn ensure_suppliers_locked(&self) -> Result<Vec<SupplierSlot>> {
        let n = self.config.customer.suppliers;
        self.config.customer.layout(n).context("customer.suppliers and customer.data_shards in the config")?;
        let mut slots = self.suppliers()?;
        if slots.len() >= n as usize {
            return Ok(slots);
        }
        let fired = self.fired()?;
        let mut candidates = self.candidates(&fired, n as usize - slots.len()).await?;
        let found = candidates.len();
        let mut errors = Vec::new();
        let mut spread = self.spread(&slots).await;
        for position in 0..n {
            if slots.iter().any(|s| s.position == position) {
                continue;
            }
            while let Some(peer) = candidates.pop() {
                match self.hire(peer, position, &mut spread).await {
                    Ok(slot) => {
                        slots.push(slot);
                        break;
                    }
                    Err(e) => errors.push(format!("{peer}: {e:#}")),
                }
            }
        }
        slots.sort_by_key(|s| s.position);
        self.save_suppliers(&slots)?;
        if slots.len() < n as usize {
            bail!(
                "too few suppliers online: hired {} of {n} ({found} candidates found in the DHT{}{}); a network this \
                 small needs customer.suppliers lowered in config.toml",
                slots.len(),
                if errors.is_empty() { "" } else { "; refusals: " },
                errors.join("; ")
            );
        }
        self.publish_suppliers(&slots).await;
        Ok(slots)
    }

    /// Supplier candidates from the DHT in a random order ([`hiring::shuffled`]: a chosen key does not sort
    /// first): never ourselves, a node already holding one of our positions, or one in `excluded` (fired before).
    /// The DHT is asked for several times `wanted`, so that the draw is among many; a young network may not have
    /// spread every provider record yet, so it is asked up to three times until `wanted` candidates are known.
    async fn candidates(&self, excluded: &[Vec<u8>], wanted: usize) -> Result<Vec<PeerId>> {
        let slots = self.suppliers()?;
        let taken = slots.iter().map(|s| &s.peer_id);
        let unwanted: HashSet<PeerId> = std::iter::once(self.node.peer_id())
            .chain(taken.chain(excluded).filter_map(|b| PeerId::from_bytes(b).ok()))
            .collect();
        let mut candidates: HashSet<PeerId> = HashSet::new();
        for attempt in 0..3 {
            // The lookup ends once `wanted` usable providers are known (it need not hear from every closest peer).
            let found = self
                .node
                .network()
                .get_some_providers(SUPPLIERS_SERVICE_KEY.to_vec(), unwanted.clone(), wanted * CANDIDATES_PER_POSITION)
                .await
                .unwrap_or_default();
            candidates.extend(found.into_iter().filter(|p| !unwanted.contains(p)));
            if candidates.len() >= wanted || attempt == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let mut candidates: Vec<PeerId> = candidates.into_iter().collect();
        // a fixed order first (a HashSet's depends on the process), then a uniformly random one
        candidates.sort_by_key(|p| p.to_bytes());
        Ok(hiring::shuffled(candidates, &mut rand::thread_rng()))
    }

    /// Per connected peer, the addresses we are directly connected to it at (relayed connections say nothing of
    /// where it is).
    async fn connected_ips(&self) -> HashMap<PeerId, Vec<std::net::IpAddr>> {
        let mut out: HashMap<PeerId, Vec<std::net::IpAddr>> = HashMap::new();
        let Ok(status) = self.node.network().status().await else { return out };
        for c in status.connections.iter().filter(|c| !c.relayed) {
            let (Ok(peer), Ok(addr)) = (c.peer_id.parse::<PeerId>(), c.address.parse::<libp2p::Multiaddr>()) else {
                continue;
            };
            let ip = addr.iter().find_map(|p| match p {
                libp2p::multiaddr::Protocol::Ip4(ip) => Some(std::net::IpAddr::V4(ip)),
                libp2p::multiaddr::Protocol::Ip6(ip) => Some(std::net::IpAddr::V6(ip)),
                _ => None,
            });
            out.entry(peer).or_default().extend(ip);
        }
        out
    }

    /// The peers and networks of the suppliers in `slots` (those we are connected to), for the hiring rules.
    async fn spread(&self, slots: &[SupplierSlot]) -> hiring::Spread {
        let mut spread = hiring::Spread::new(self.config.customer.one_per_network);
        let ips = self.connected_ips().await;
        for peer in slots.iter().filter_map(|s| s.peer().ok()) {
            spread.take(peer, ips.get(&peer).map(Vec::as_slice).unwrap_or_default());
        }
        spread
    }

    /// Hires a supplier for `position` among [`Storage::candidates`]. The caller holds the customer lock and
    /// saves the slots.
    pub(crate) async fn hire_position(&self, position: u16, excluded: &[Vec<u8>]) -> Result<SupplierSlot> {
        let mut candidates = self.candidates(excluded, 1).await?;
        let found = candidates.len();
        let mut errors = Vec::new();
        let others: Vec<SupplierSlot> = self.suppliers()?.into_iter().filter(|s| s.position != position).collect();
        let mut spread = self.spread(&others).await;
        while let Some(peer) = candidates.pop() {
            match self.hire(peer, position, &mut spread).await {
                Ok(slot) => return Ok(slot),
                Err(e) => errors.push(format!("{peer}: {e:#}")),
            }
        }
        bail!(
            "no replacement for position {position}: {found} new candidates in the DHT{}{}",
            if errors.is_empty() { "" } else { "; " },
            errors.join("; ")
        )
    }

    /// Hires `peer` for `position` if the hiring rules admit it where we reach it (`spread`, which then counts it).
    async fn hire(&self, peer: PeerId, position: u16, spread: &mut hiring::Spread) -> Result<SupplierSlot> {
        spread.admits(&peer, &[]).map_err(anyhow::Error::msg)?;
        self.node.lookup_identity(peer).await?;
        // connect first (any answer will do) to learn the network we reach it in
        if spread.strict {
            self.request(peer, Request::Heartbeat).await?;
        }
        let ips = self.connected_ips().await.remove(&peer).unwrap_or_default();
        spread.admits(&peer, &ips).map_err(anyhow::Error::msg)?;
        let signed = self.propose_contract(peer, position).await?;
        spread.take(peer, &ips);
        Ok(SupplierSlot { position, peer_id: peer.to_bytes(), contract: Some(signed), hired_unix: unix_now() })
    }

    /// Proposes a contract for `position` to `peer` (our needed space, `customer.contract_secs` from now) and
    /// returns it signed by both.
    ///
    /// # Errors
    /// The supplier's refusal, a bad or changed countersignature, or the request's failure.
    async fn propose_contract(&self, peer: PeerId, position: u16) -> Result<SignedContract> {
        let contract = Contract {
            customer: self.node.peer_id().to_bytes(),
            supplier: peer.to_bytes(),
            position,
            needed_bytes: self.config.customer.needed_bytes,
            start_unix: unix_now(),
            duration_secs: self.config.customer.contract_secs,
            nonce: rand::random(),
        };
        let proposed = SignedContract::propose(self.node.keys(), contract.clone());
        match self.request(peer, Request::Contract(proposed)).await? {
            Response::ContractAccepted(signed) => {
                let (_, supplier) = signed.verify().context("supplier's contract signature")?;
                if signed.contract != contract || supplier != peer || signed.supplier_signature.is_none() {
                    bail!("supplier returned a different or unsigned contract");
                }
                Ok(signed)
            }
            Response::Error(code, msg) => bail!("refused ({code:?}): {msg}"),
            other => bail!("unexpected answer {other:?}"),
        }
    }

    /// Renews every supplier's contract once half of it has passed, and makes one with a supplier we have none
    /// with (a supplier list recovered from the DHT on a new device). A supplier that refuses keeps the old
    /// contract until it ends; then its heartbeats say so and it is replaced.
    pub(crate) async fn renew_contracts_due(&self) {
        let now = unix_now();
        let Ok(slots) = self.suppliers() else { return };
        for slot in slots {
            let half = |c: &SignedContract| c.contract.start_unix.saturating_add(c.contract.duration_secs / 2);
            if slot.contract.as_ref().is_some_and(|c| now < half(c)) {
                continue;
            }
            let Ok(peer) = slot.peer() else { continue };
            match self.propose_contract(peer, slot.position).await {
                Ok(signed) => {
                    let _g = self.customer_lock.lock().await;
                    let Ok(mut slots) = self.suppliers() else { return };
                    if let Some(s) = slots.iter_mut().find(|s| s.position == slot.position && s.peer_id == slot.peer_id)
                    {
                        s.contract = Some(signed);
                        if let Err(e) = self.save_suppliers(&slots) {
                            tracing::warn!(error = %e, "cannot save a renewed contract");
                        }
                    }
                    tracing::info!(%peer, position = slot.position, "contract renewed");
                }
                Err(e) => tracing::info!(%peer, position = slot.position, error = %e, "contract not renewed"),
            }
        }
    }

    /// Publishes the signed supplier list record, so a new device finds our suppliers from the key alone, and
    /// hands it with our identity record to every supplier in `slots`, which hold both and publish them again
    /// while we are away ([`Request::HoldRecords`]).
    pub(crate) async fn publish_suppliers(&self, slots: &[SupplierSlot]) {
        let list = SupplierList { suppliers: slots.iter().map(|s| (s.position, s.peer_id.clone())).collect() };
        let payload = postcard::to_stdvec(&list).unwrap_or_default();
        let revision = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let rec = SignedRecord::sign(self.node.keys(), RecordKind::Suppliers, revision, unix_now(), payload);
        let id = self.node.identity();
        let identity =
            SignedRecord::sign(self.node.keys(), RecordKind::Identity, id.identity.revision, unix_now(), id.encode());
        let held = Request::HoldRecords(vec![identity.encode().into(), rec.encode().into()]);
        if let Err(e) = self.node.network().put_record(rec).await {
            tracing::warn!(error = %e, "could not publish the supplier list");
        }
        let peers: Vec<PeerId> = slots.iter().filter_map(|s| s.peer().ok()).collect();
        // a supplier hired since a share was revoked must refuse its grants too
        self.push_revocations(&peers).await;
        let answers = futures::future::join_all(peers.iter().map(|p| self.request(*p, held.clone()))).await;
        for (peer, answer) in peers.iter().zip(answers) {
            match answer {
                Ok(Response::Stored) => {}
                Ok(other) => tracing::info!(%peer, answer = ?other, "supplier did not take our records"),
                Err(e) => tracing::debug!(%peer, error = %e, "supplier did not take our records"),
            }
        }
    }

    /// Fires `old` at `position` and hires another (a compare-and-swap: if `old` no longer holds the position,
    /// nothing changes and the current supplier is returned), never one already
    /// holding a position, a supplier fired before, or ourselves. Queues every block of every version for
    /// regeneration at that position and stores the catalog on the new supplier.
    ///
    /// # Errors
    /// If no replacement can be hired.
    pub async fn replace_supplier(&self, position: u16, old: Option<PeerId>) -> Result<PeerId> {
        let new = {
            let _g = self.customer_lock.lock().await;
            // Compare-and-swap: the request was about `old`; if another supplier holds the position now (`old` was
            // replaced since), that one has done nothing wrong and stays.
            let current = self.suppliers()?.into_iter().find(|s| s.position == position).and_then(|s| s.peer().ok());
            if let (Some(o), Some(c)) = (old, current) {
                if o != c {
                    tracing::info!(position, accused = %o, current = %c, "replacement dropped: the accused supplier is already gone");
                    return Ok(c);
                }
            }
            // The old supplier is excluded from the candidates but keeps its slot until a replacement signs: a
            // failed hire changes nothing (and puts nobody on the fired list).
            let mut fired = self.fired()?;
            if let Some(o) = old.map(|o| o.to_bytes()).filter(|o| !fired.contains(o)) {
                fired.push(o);
            }
            let slot = self.hire_position(position, &fired).await?;
            let peer = slot.peer()?;
            let mut slots = self.suppliers()?;
            slots.retain(|s| s.position != position);
            slots.push(slot);
            slots.sort_by_key(|s| s.position);
            // The new supplier, the fired list and every block of its position to regenerate, in one transaction:
            // a crash leaves either the old supplier or the new one with its work queued.
            let catalog = self.catalog()?;
            let items: Vec<([u8; 16], u64, u16)> = catalog
                .block_sets()
                .filter(|v| position < v.layout.n)
                .flat_map(|v| (0..v.blocks.len() as u64).map(move |i| (v.id, i, position)))
                .collect();
            let (saved, fired_list) = (SupplierSlots(slots.clone()), FiredSuppliers(fired));
            self.node.db().write(|tx| {
                tx.put_value(SUPPLIERS_KEY, &saved)?;
                tx.put_value(FIRED_KEY, &fired_list)?;
                crate::service::maintenance::queue::add_in(tx, &items, now_ms())
            })?;
            // From here on the replacement has happened: what follows is best effort.
            self.publish_suppliers(&slots).await;
            (peer, catalog)
        };
        let (new, catalog) = new;
        // the fired supplier, if it still answers, ends our contract and frees our space after its grace period
        if let Some(old) = old {
            match tokio::time::timeout(Duration::from_secs(10), self.request(old, Request::EndContract)).await {
                Ok(Ok(Response::Deleted)) => tracing::info!(%old, "contract with the fired supplier ended"),
                other => {
                    tracing::debug!(%old, answer = ?other.map(|r| r.map(|_| ())), "fired supplier did not end the contract")
                }
            }
        }
        if catalog.revision > 0 {
            let sealed = SealedCatalog::seal(self.node.keys(), &catalog).encode();
            if let Err(e) = self.request(new, Request::PutCatalog(sealed)).await {
                tracing::warn!(position, error = %e, "the new supplier did not take the catalog yet");
            }
        }
        Ok(new)
    }
}

/// Renews the contracts with our suppliers when due ([`Storage::renew_contracts_due`]): once the node has
/// announced itself, then every eighth of `customer.contract_secs` (at least every second, at most hourly).
pub(crate) async fn renew_contracts(storage: std::sync::Weak<Storage>) {
    loop {
        let Some(s) = storage.upgrade() else { return };
        if s.node.network().is_stopped() {
            return;
        }
        let every = Duration::from_secs((s.config.customer.contract_secs / 8).clamp(1, 3600));
        let pause = if s.node.is_announced() {
            s.renew_contracts_due().await;
            every
        } else {
            Duration::from_millis(250)
        };
        drop(s);
        tokio::time::sleep(pause).await;
    }
}

/// Once the node has announced itself, publishes the supplier list again and hands it with the identity to the
/// suppliers ([`Storage::publish_suppliers`]): a customer that was away longer than the records live, or whose
/// suppliers hold none yet (hired by an older version), is findable from its key again.
pub(crate) async fn publish_on_start(storage: std::sync::Weak<Storage>) {
    loop {
        let Some(s) = storage.upgrade() else { return };
        if s.node.network().is_stopped() {
            return;
        }
        if s.node.is_announced() {
            let _g = s.customer_lock.lock().await;
            let slots = s.suppliers().unwrap_or_default();
            if !slots.is_empty() {
                s.publish_suppliers(&slots).await;
            }
            return;
        }
        drop(s);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
