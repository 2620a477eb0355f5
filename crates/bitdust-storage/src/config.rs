//! The storage wing's settings: the `[supplier]`, `[customer]` and `[maintenance]` sections of the node's
//! `config.toml` (kept at the top level, where homes written before the wing split have them).

use anyhow::Result;
use bitdust_node::Config;
use serde::{Deserialize, Serialize};

use crate::service::store::ContractPolicy;

/// Every storage setting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StorageConfig {
    /// Supplier role.
    pub supplier: SupplierConfig,
    /// Customer role.
    pub customer: CustomerConfig,
    /// Supplier monitoring, replacement, audits and rebuilding (customer side).
    pub maintenance: MaintenanceConfig,
}

impl StorageConfig {
    /// The storage sections of `config` (defaults for missing ones).
    ///
    /// # Errors
    /// If a section is there but invalid.
    pub fn from_config(config: &Config) -> Result<Self> {
        Ok(Self {
            supplier: config.section("supplier")?,
            customer: config.section("customer")?,
            maintenance: config.section("maintenance")?,
        })
    }

    /// Writes the storage sections into `config`.
    ///
    /// # Errors
    /// Never in practice (the sections are plain tables).
    pub fn write_into(&self, config: &mut Config) -> Result<()> {
        config.set_section("supplier", &self.supplier)?;
        config.set_section("customer", &self.customer)?;
        config.set_section("maintenance", &self.maintenance)
    }
}

/// Timings of the customer's automata, in milliseconds. Defaults suit the internet; `bitdust devnet`
/// writes [`MaintenanceConfig::devnet`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct MaintenanceConfig {
    /// Heartbeat period per supplier.
    pub heartbeat_ms: u64,
    /// Silence before a supplier is suspect.
    pub suspect_after_ms: u64,
    /// Silence before it is offline.
    pub offline_after_ms: u64,
    /// Silence before it is fired and replaced (the hysteresis against short outages).
    pub fire_after_ms: u64,
    /// Pause after each replacement (against firing storms).
    pub cool_down_ms: u64,
    /// Time between audits of one supplier.
    pub audit_interval_ms: u64,
    /// Audits failed in a row (a missing fragment, an error answer, a timeout) that fire a supplier; a wrong
    /// proof fires at once.
    pub audit_failures_to_fire: u32,
    /// Delay before blocked rebuild work is retried.
    pub rebuild_retry_ms: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        let t = crate::proto::automata::supplier_connection::Timings::INTERNET;
        Self {
            heartbeat_ms: t.heartbeat_ms,
            suspect_after_ms: t.suspect_after_ms,
            offline_after_ms: t.offline_after_ms,
            fire_after_ms: t.fire_after_ms,
            cool_down_ms: 10 * 60 * 1000,
            audit_interval_ms: 60 * 60 * 1000,
            audit_failures_to_fire: 3,
            rebuild_retry_ms: 60 * 1000,
        }
    }
}

impl MaintenanceConfig {
    /// Short timings for a local network: a stopped supplier is replaced within about 20 s, a restart of a
    /// few seconds fires nobody, each supplier is audited every 5 s.
    pub fn devnet() -> Self {
        let t = crate::proto::automata::supplier_connection::Timings::DEVNET;
        Self {
            heartbeat_ms: t.heartbeat_ms,
            suspect_after_ms: t.suspect_after_ms,
            offline_after_ms: t.offline_after_ms,
            fire_after_ms: t.fire_after_ms,
            cool_down_ms: 2_000,
            audit_interval_ms: 5_000,
            audit_failures_to_fire: 3,
            rebuild_retry_ms: 2_000,
        }
    }

    /// The maintenance policy these settings give ([`crate::proto::maintenance::Policy`]).
    pub fn policy(&self) -> crate::proto::maintenance::Policy {
        crate::proto::maintenance::Policy {
            timings: self.timings(),
            cool_down_ms: self.cool_down_ms,
            audit_interval_ms: self.audit_interval_ms,
            audit_failures_to_fire: self.audit_failures_to_fire,
            rebuild_retry_ms: self.rebuild_retry_ms,
        }
    }

    /// The supplier connection timings.
    pub fn timings(&self) -> crate::proto::automata::supplier_connection::Timings {
        crate::proto::automata::supplier_connection::Timings {
            heartbeat_ms: self.heartbeat_ms,
            suspect_after_ms: self.suspect_after_ms,
            offline_after_ms: self.offline_after_ms,
            fire_after_ms: self.fire_after_ms,
        }
    }
}

/// Supplier settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct SupplierConfig {
    /// Whether this node offers space to customers.
    pub enabled: bool,
    /// Donated space in bytes.
    pub donated_bytes: u64,
    /// Seconds in which the supplier re-reads every fragment it stores and checks it against its header's hash
    /// (bit rot found before a customer needs the data); the pass is spread evenly over the period.
    pub scrub_period_secs: u64,
    /// The largest share of the donated space one customer may ask for, in percent.
    pub max_share_percent: u8,
    /// The shortest contract accepted, in seconds.
    pub min_contract_secs: u64,
    /// The longest contract accepted, in seconds: a customer must renew within it.
    pub max_contract_secs: u64,
    /// Seconds the data of an expired or cancelled contract is kept (readable by its owner) before it is freed.
    pub grace_secs: u64,
}

impl Default for SupplierConfig {
    /// Not a supplier; a scrub pass every 7 days; the default [`ContractPolicy`].
    fn default() -> Self {
        let p = ContractPolicy::default();
        Self {
            enabled: false,
            donated_bytes: 0,
            scrub_period_secs: 7 * 24 * 3600,
            max_share_percent: p.max_share_percent,
            min_contract_secs: p.min_secs,
            max_contract_secs: p.max_secs,
            grace_secs: p.grace_secs,
        }
    }
}

impl SupplierConfig {
    /// The contract policy these settings give.
    pub fn policy(&self) -> ContractPolicy {
        ContractPolicy {
            min_needed_bytes: ContractPolicy::default().min_needed_bytes,
            max_share_percent: self.max_share_percent,
            min_secs: self.min_contract_secs,
            max_secs: self.max_contract_secs,
            grace_secs: self.grace_secs,
        }
    }
}

/// Customer settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CustomerConfig {
    /// How many suppliers to hire (n of the ecc layout): 24 by default, RS(12, 24), whose yearly loss the
    /// durability study puts below 1e-9 with always-on suppliers leaving at 10% a month, at 2x stored bytes
    /// (RS(2, 4), the earlier default, loses about 1e-3 a year there; RS(8, 16) up to 2e-8). A network of fewer
    /// nodes needs it lowered.
    pub suppliers: u16,
    /// Data shards k of the ecc layout RS(k, n): any k of the n fragments of a block rebuild it. 0 (the default)
    /// means ceil(n / 2), BitDust's 2x overhead; e.g. 3 with 10 suppliers is Tahoe-LAFS's default 3-of-10.
    pub data_shards: u16,
    /// Needed space asked from each supplier, in bytes (8 GiB by default: suppliers give one customer at most a
    /// share of what they donate, a quarter by default, so this fits a supplier donating 32 GiB or more).
    pub needed_bytes: u64,
    /// Blocks uploaded or downloaded concurrently (bounds memory: about 3 x 4 MiB each).
    pub blocks_in_flight: usize,
    /// At most one supplier per network (IPv4 /24, IPv6 /48 of a public address we are connected to), as Storj
    /// selects nodes; private addresses are exempt (see [`crate::proto::hiring`]).
    pub one_per_network: bool,
    /// Length of the contracts proposed to suppliers, in seconds; each is renewed when half of it has passed
    /// (suppliers refuse contracts outside their bounds: by default 1 hour to 90 days).
    pub contract_secs: u64,
    /// Back up incrementally (catalog format 2: content-defined chunks stored once, trees, packs; the default);
    /// off makes format-1 versions, which upload the whole tree each time.
    pub incremental: bool,
}

impl CustomerConfig {
    /// The ecc layout for `n` hired suppliers: RS(`data_shards`, n), or RS(ceil(n / 2), n) when it is 0.
    ///
    /// # Errors
    /// [`crate::proto::erasure::ErasureError::BadLayout`] unless `1 <= k < n <= 64`.
    pub fn layout(&self, n: u16) -> Result<crate::proto::erasure::Layout, crate::proto::erasure::ErasureError> {
        match self.data_shards {
            0 => crate::proto::erasure::Layout::for_suppliers(n),
            k => crate::proto::erasure::Layout::new(k, n),
        }
    }
}

impl Default for CustomerConfig {
    fn default() -> Self {
        Self {
            // RS(12, 24): the durability study's choice at 2x stored bytes (docs/architecture.md, "Durability")
            suppliers: 24,
            data_shards: 0,
            needed_bytes: 8 << 30,
            blocks_in_flight: 4,
            one_per_network: true,
            contract_secs: 30 * 24 * 3600,
            incremental: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_half_by_default_and_data_shards_when_set() {
        let mut c = CustomerConfig::default();
        assert_eq!(c.layout(c.suppliers).unwrap(), crate::proto::erasure::Layout::new(12, 24).unwrap());
        assert_eq!(c.layout(4).unwrap(), crate::proto::erasure::Layout::new(2, 4).unwrap());
        c.data_shards = 3;
        assert_eq!(c.layout(10).unwrap(), crate::proto::erasure::Layout::new(3, 10).unwrap());
        assert!(c.layout(3).is_err(), "k must be below n");
        let parsed: Config = toml::from_str("[customer]\nsuppliers = 10\ndata_shards = 3\n").unwrap();
        assert_eq!(StorageConfig::from_config(&parsed).unwrap().customer.layout(10).unwrap().k, 3);
    }

    /// A config.toml written before the wing split (storage sections at the top level, beside the runtime's
    /// keys) still reads the same.
    #[test]
    fn a_config_written_before_the_split_reads_the_same() {
        let old = "api_port = 8180\nlisten = []\nbootstrap = []\nidle_timeout_secs = 120\nannounce_interval_secs = 600\n\n[supplier]\nenabled = true\ndonated_bytes = 1073741824\n\n[customer]\nsuppliers = 4\ndata_shards = 0\nneeded_bytes = 268435456\nblocks_in_flight = 4\n\n[maintenance]\nheartbeat_ms = 1000\nsuspect_after_ms = 3000\noffline_after_ms = 6000\nfire_after_ms = 15000\ncool_down_ms = 2000\naudit_interval_ms = 5000\nrebuild_retry_ms = 2000\n\n[nat]\nrelays = []\nrelay_server = false\n";
        let config: Config = toml::from_str(old).unwrap();
        let s = StorageConfig::from_config(&config).unwrap();
        assert!(s.supplier.enabled);
        assert_eq!(s.supplier.donated_bytes, 1 << 30);
        assert_eq!(s.customer.needed_bytes, 256 << 20);
        assert_eq!(s.maintenance, MaintenanceConfig::devnet());
        let mut again = Config::default();
        s.write_into(&mut again).unwrap();
        assert_eq!(StorageConfig::from_config(&again).unwrap(), s);
    }
}
