//! The node's home folder and config file.
//!
//! ```text
//! <home>/config.toml      settings (TOML), see [`Config`]
//! <home>/identity.key     the 32-byte key seed, as text, mode 0600
//! <home>/identity.bin     the signed identity document (postcard)
//! <home>/api.token        bearer token of the local API, mode 0600
//! <home>/node.redb        local database (catalog, suppliers)
//! <home>/store/           supplier's fragment store
//! <home>/daemon.pid       pid of the running daemon
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bitdust_core::identity::SignedIdentity;
use bitdust_core::keys::NodeKeys;
use serde::{Deserialize, Serialize};

/// Default port of the local API.
pub const DEFAULT_API_PORT: u16 = 8180;

/// The node's settings (`config.toml`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Local API port on 127.0.0.1.
    pub api_port: u16,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Bootstrap node multiaddrs (with `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// Supplier role.
    pub supplier: SupplierConfig,
    /// Customer role.
    pub customer: CustomerConfig,
    /// Supplier monitoring, replacement, audits and rebuilding (customer side).
    pub maintenance: MaintenanceConfig,
    /// NAT traversal: relays to use, and whether this node serves as a relay.
    pub nat: NatConfig,
    /// Seconds an unused connection stays open (a later request to the same peer skips the handshake).
    pub idle_timeout_secs: u64,
    /// Seconds between announcements: DHT bootstrap, then the identity record and provider records published
    /// again, so that they reach the nodes that joined since.
    pub announce_interval_secs: u64,
}

/// NAT traversal settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct NatConfig {
    /// Relays to reserve a slot on at start (multiaddrs ending in `/p2p/<peer id>`). Without any, a node
    /// that AutoNAT finds private looks relays up in the DHT.
    pub relays: Vec<String>,
    /// Serve as a relay ("proxy router") for nodes behind NAT; only useful on a public address.
    pub relay_server: bool,
    /// Limits of the relay service.
    pub relay_limits: bitdust_net::RelayLimits,
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
    /// Delay before blocked rebuild work is retried.
    pub rebuild_retry_ms: u64,
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        let t = bitdust_core::automata::supplier_connection::Timings::INTERNET;
        Self {
            heartbeat_ms: t.heartbeat_ms,
            suspect_after_ms: t.suspect_after_ms,
            offline_after_ms: t.offline_after_ms,
            fire_after_ms: t.fire_after_ms,
            cool_down_ms: 10 * 60 * 1000,
            audit_interval_ms: 60 * 60 * 1000,
            rebuild_retry_ms: 60 * 1000,
        }
    }
}

impl MaintenanceConfig {
    /// Short timings for a local network: a stopped supplier is replaced within about 20 s, a restart of a
    /// few seconds fires nobody, each supplier is audited every 5 s.
    pub fn devnet() -> Self {
        let t = bitdust_core::automata::supplier_connection::Timings::DEVNET;
        Self {
            heartbeat_ms: t.heartbeat_ms,
            suspect_after_ms: t.suspect_after_ms,
            offline_after_ms: t.offline_after_ms,
            fire_after_ms: t.fire_after_ms,
            cool_down_ms: 2_000,
            audit_interval_ms: 5_000,
            rebuild_retry_ms: 2_000,
        }
    }

    /// The supplier connection timings.
    pub fn timings(&self) -> bitdust_core::automata::supplier_connection::Timings {
        bitdust_core::automata::supplier_connection::Timings {
            heartbeat_ms: self.heartbeat_ms,
            suspect_after_ms: self.suspect_after_ms,
            offline_after_ms: self.offline_after_ms,
            fire_after_ms: self.fire_after_ms,
        }
    }
}

/// Supplier settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct SupplierConfig {
    /// Whether this node offers space to customers.
    pub enabled: bool,
    /// Donated space in bytes.
    pub donated_bytes: u64,
}

/// Customer settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CustomerConfig {
    /// How many suppliers to hire (n of the ecc layout).
    pub suppliers: u16,
    /// Data shards k of the ecc layout RS(k, n): any k of the n fragments of a block rebuild it. 0 (the default)
    /// means ceil(n / 2), BitDust's 2x overhead; e.g. 3 with 10 suppliers is Tahoe-LAFS's default 3-of-10.
    pub data_shards: u16,
    /// Needed space asked from each supplier, in bytes.
    pub needed_bytes: u64,
    /// Blocks uploaded or downloaded concurrently (bounds memory: about 3 x 4 MiB each).
    pub blocks_in_flight: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_port: DEFAULT_API_PORT,
            listen: vec!["/ip4/0.0.0.0/tcp/0".into(), "/ip4/0.0.0.0/udp/0/quic-v1".into()],
            bootstrap: Vec::new(),
            supplier: SupplierConfig::default(),
            customer: CustomerConfig::default(),
            maintenance: MaintenanceConfig::default(),
            nat: NatConfig::default(),
            idle_timeout_secs: bitdust_net::DEFAULT_IDLE_TIMEOUT.as_secs(),
            announce_interval_secs: 600,
        }
    }
}

impl CustomerConfig {
    /// The ecc layout for `n` hired suppliers: RS(`data_shards`, n), or RS(ceil(n / 2), n) when it is 0.
    ///
    /// # Errors
    /// [`bitdust_core::erasure::ErasureError::BadLayout`] unless `1 <= k < n <= 64`.
    pub fn layout(&self, n: u16) -> Result<bitdust_core::erasure::Layout, bitdust_core::erasure::ErasureError> {
        match self.data_shards {
            0 => bitdust_core::erasure::Layout::for_suppliers(n),
            k => bitdust_core::erasure::Layout::new(k, n),
        }
    }
}

impl Default for CustomerConfig {
    fn default() -> Self {
        Self { suppliers: 4, data_shards: 0, needed_bytes: 16 << 30, blocks_in_flight: 4 }
    }
}

/// A node home folder.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home at `root` (not checked).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The default home: `$BITDUST_HOME`, else `$XDG_DATA_HOME/bitdust`, else `~/.local/share/bitdust`.
    pub fn default_root() -> PathBuf {
        if let Some(h) = std::env::var_os("BITDUST_HOME") {
            return h.into();
        }
        if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
            return PathBuf::from(x).join("bitdust");
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        home.join(".local/share/bitdust")
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A path inside the home.
    pub fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Whether an identity exists here.
    pub fn is_initialized(&self) -> bool {
        self.path("identity.key").exists()
    }

    /// Creates a new home: writes the key (0600), identity revision 1, an API token and the config.
    /// Refuses if an identity already exists.
    ///
    /// # Errors
    /// If the home holds an identity already, the nickname is invalid, or a write fails.
    pub fn init(&self, keys: &NodeKeys, nickname: &str, config: &Config) -> Result<SignedIdentity> {
        if self.is_initialized() {
            bail!("{} already holds an identity; refusing to overwrite it (use another --home)", self.root.display());
        }
        let identity = SignedIdentity::create(keys, nickname, Vec::new(), 1, unix_now())?;
        std::fs::create_dir_all(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        write_secret(&self.path("identity.key"), keys.export_text().as_bytes())?;
        let token: [u8; 32] = rand::random();
        write_secret(&self.path("api.token"), hex::encode(token).as_bytes())?;
        self.save_identity(&identity)?;
        self.save_config(config)?;
        Ok(identity)
    }

    /// Loads the keys.
    ///
    /// # Errors
    /// If there is no identity here or the key file is unreadable.
    pub fn keys(&self) -> Result<NodeKeys> {
        let p = self.path("identity.key");
        if !p.exists() {
            bail!(
                "no identity in {} (run `bitdust --home {} init --nickname NAME` first)",
                self.root.display(),
                self.root.display()
            );
        }
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        NodeKeys::import_text(&text).with_context(|| format!("reading {}", p.display()))
    }

    /// Loads and verifies the identity document.
    ///
    /// # Errors
    /// If missing or invalid.
    pub fn identity(&self) -> Result<SignedIdentity> {
        let p = self.path("identity.bin");
        let bytes = std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?;
        SignedIdentity::decode_verified(&bytes).with_context(|| format!("{} is invalid", p.display()))
    }

    /// Saves the identity document atomically.
    ///
    /// # Errors
    /// On write failure.
    pub fn save_identity(&self, id: &SignedIdentity) -> Result<()> {
        bitdust_store::write_atomic(&self.path("identity.bin"), &id.encode()).context("writing identity")
    }

    /// Loads the config (defaults for missing fields).
    ///
    /// # Errors
    /// If the file is unreadable or not valid TOML.
    pub fn config(&self) -> Result<Config> {
        let p = self.path("config.toml");
        if !p.exists() {
            return Ok(Config::default());
        }
        let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        toml::from_str(&text).with_context(|| format!("{} is not a valid config", p.display()))
    }

    /// Saves the config atomically.
    ///
    /// # Errors
    /// On write failure.
    pub fn save_config(&self, config: &Config) -> Result<()> {
        let text = toml::to_string(config).context("serializing config")?;
        bitdust_store::write_atomic(&self.path("config.toml"), text.as_bytes()).context("writing config")
    }

    /// The API bearer token.
    ///
    /// # Errors
    /// If unreadable.
    pub fn api_token(&self) -> Result<String> {
        let p = self.path("api.token");
        Ok(std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?.trim().to_string())
    }
}

/// Writes a secret file atomically with mode 0600.
///
/// # Errors
/// On write failure.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    bitdust_store::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting mode of {}", path.display()))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_half_by_default_and_data_shards_when_set() {
        let mut c = CustomerConfig::default();
        assert_eq!(c.layout(4).unwrap(), bitdust_core::erasure::Layout::new(2, 4).unwrap());
        c.data_shards = 3;
        assert_eq!(c.layout(10).unwrap(), bitdust_core::erasure::Layout::new(3, 10).unwrap());
        assert!(c.layout(3).is_err(), "k must be below n");
        let parsed: Config = toml::from_str("[customer]\nsuppliers = 10\ndata_shards = 3\n").unwrap();
        assert_eq!(parsed.customer.layout(10).unwrap().k, 3);
    }

    #[test]
    fn init_refuses_to_overwrite_and_writes_secret_modes() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path().join("h"));
        let keys = NodeKeys::generate();
        home.init(&keys, "alice", &Config::default()).unwrap();
        assert!(home.init(&NodeKeys::generate(), "bob", &Config::default()).is_err());
        assert_eq!(home.keys().unwrap().peer_id(), keys.peer_id());
        assert_eq!(home.identity().unwrap().identity.revision, 1);
        let mode = std::fs::metadata(home.path("identity.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(home.config().unwrap(), Config::default());
    }
}
