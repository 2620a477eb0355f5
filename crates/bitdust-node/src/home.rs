//! The node's home folder and config file.
//!
//! ```text
//! <home>/config.toml      settings (TOML), see [`Config`]
//! <home>/identity.key     the 32-byte key seed, as text, mode 0600
//! <home>/identity.bin     the signed identity document (postcard)
//! <home>/api.token        bearer token of the local API, mode 0600
//! <home>/node.redb        local database (the wings' tables: catalog, suppliers, rebuild queue)
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

/// The node's settings (`config.toml`): the runtime's own, and one or more sections per feature wing.
///
/// Wing sections (the storage wing's `[supplier]`, `[customer]`, `[maintenance]`) are kept as TOML tables in
/// [`Config::sections`] and read and written by their wing, so the runtime knows nothing of them and a file
/// written by an older or newer build keeps every section it does not understand.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Config {
    /// Local API port on 127.0.0.1.
    pub api_port: u16,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// Bootstrap node multiaddrs (with `/p2p/<peer id>`).
    pub bootstrap: Vec<String>,
    /// NAT traversal: relays to use, and whether this node serves as a relay.
    pub nat: NatConfig,
    /// Seconds an unused connection stays open (a later request to the same peer skips the handshake).
    pub idle_timeout_secs: u64,
    /// Seconds between announcements: DHT bootstrap, then the identity record and provider records published
    /// again, so that they reach the nodes that joined since.
    pub announce_interval_secs: u64,
    /// Seconds a DHT record lives in other nodes' stores unless published again (every node of a network should
    /// use the same value). The publisher republishes at half this period; a customer's suppliers republish its
    /// identity and supplier list records while it is offline.
    pub record_ttl_secs: u64,
    /// Bounds on what peers can make this node hold: connections, inbound buffers, DHT records.
    pub limits: bitdust_net::NetLimits,
    /// The feature wings' sections, by name.
    #[serde(flatten)]
    pub sections: toml::Table,
}

impl Config {
    /// Wing section `name`, or its default when absent.
    ///
    /// # Errors
    /// If the section is there but does not parse as `T`.
    pub fn section<T: serde::de::DeserializeOwned + Default>(&self, name: &str) -> Result<T> {
        match self.sections.get(name) {
            None => Ok(T::default()),
            Some(v) => v.clone().try_into().with_context(|| format!("[{name}] in the config")),
        }
    }

    /// Replaces wing section `name`.
    ///
    /// # Errors
    /// If `value` is not a TOML table.
    pub fn set_section<T: Serialize>(&mut self, name: &str, value: &T) -> Result<()> {
        let v = toml::Value::try_from(value).with_context(|| format!("[{name}] in the config"))?;
        if !v.is_table() {
            bail!("config section [{name}] must be a table");
        }
        self.sections.insert(name.to_string(), v);
        Ok(())
    }
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

impl Default for Config {
    fn default() -> Self {
        Self {
            api_port: DEFAULT_API_PORT,
            listen: vec!["/ip4/0.0.0.0/tcp/0".into(), "/ip4/0.0.0.0/udp/0/quic-v1".into()],
            bootstrap: Vec::new(),
            nat: NatConfig::default(),
            idle_timeout_secs: bitdust_net::DEFAULT_IDLE_TIMEOUT.as_secs(),
            announce_interval_secs: 600,
            record_ttl_secs: bitdust_net::DEFAULT_RECORD_TTL.as_secs(),
            limits: bitdust_net::NetLimits::default(),
            sections: toml::Table::new(),
        }
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
        bitdust_store::create_private_dir(&self.root).with_context(|| format!("creating {}", self.root.display()))?;
        write_secret(&self.path("identity.key"), keys.export_text().as_bytes())?;
        self.rotate_api_token()?;
        self.save_identity(&identity)?;
        self.save_config(config)?;
        Ok(identity)
    }

    /// Makes the home its owner's only (folder 0700; key, token, identity and config 0600), for homes made before
    /// files were created that way (the node database sets its own mode when opened). The daemon calls it at every
    /// start.
    ///
    /// # Errors
    /// If a mode cannot be set.
    pub fn secure(&self) -> Result<()> {
        let set = |p: &Path, mode: u32| -> Result<()> {
            match std::fs::symlink_metadata(p) {
                Ok(m) if !m.file_type().is_symlink() && m.permissions().mode() & 0o7777 != mode => {
                    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
                        .with_context(|| format!("setting mode of {}", p.display()))
                }
                _ => Ok(()),
            }
        };
        set(&self.root, 0o700)?;
        for name in ["identity.key", "api.token", "identity.bin", "config.toml"] {
            set(&self.path(name), 0o600)?;
        }
        Ok(())
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

    /// Writes a new API bearer token (32 random bytes, hex; mode 0600). The daemon does this at every start, so a
    /// token that leaked (to a program that held the port while the daemon was stopped) is worth nothing once it
    /// runs again.
    ///
    /// # Errors
    /// On write failure.
    pub fn rotate_api_token(&self) -> Result<()> {
        let token: [u8; 32] = rand::random();
        write_secret(&self.path("api.token"), hex::encode(token).as_bytes())
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

/// Writes a secret file atomically, mode 0600 from its first byte ([`bitdust_store::write_atomic`]).
///
/// # Errors
/// On write failure.
pub fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    bitdust_store::write_atomic(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wing_sections_survive_a_round_trip_and_a_bad_one_is_an_error() {
        #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
        #[serde(default)]
        struct Customer {
            suppliers: u16,
        }
        let parsed: Config = toml::from_str("api_port = 9000\n[customer]\nsuppliers = 10\n[future]\nx = 1\n").unwrap();
        assert_eq!(parsed.api_port, 9000);
        assert_eq!(parsed.section::<Customer>("customer").unwrap(), Customer { suppliers: 10 });
        assert_eq!(parsed.section::<Customer>("missing").unwrap(), Customer::default());
        let text = toml::to_string(&parsed).unwrap();
        let again: Config = toml::from_str(&text).unwrap();
        assert_eq!(again, parsed, "unknown sections are kept: {text}");
        let bad: Config = toml::from_str("[customer]\nsuppliers = \"many\"\n").unwrap();
        assert!(bad.section::<Customer>("customer").is_err());
        let mut c = Config::default();
        c.set_section("customer", &Customer { suppliers: 7 }).unwrap();
        assert_eq!(c.section::<Customer>("customer").unwrap().suppliers, 7);
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
