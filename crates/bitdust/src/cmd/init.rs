//! `bitdust init`: a new identity in the home, or one restored from a key file with everything it had.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bitdust_api::RestoreReport;
use bitdust_core::keys::NodeKeys;
use bitdust_messages::Messages;
use bitdust_node::{Config, Daemon, Home, StartOptions};
use bitdust_storage::config::StorageConfig;
use bitdust_storage::service::vault::is_vault_backup;
use bitdust_storage::{Overrides, Storage};
use serde::Serialize;

use super::{print, wings};

/// What `init` made.
#[derive(Debug, Serialize)]
struct Created {
    home: String,
    global_id: String,
    peer_id: String,
    revision: u64,
}

/// A key file to restore from, and where its passphrase comes from if it is protected.
#[derive(Debug, Clone)]
pub struct KeyFile {
    /// The file `bitdust key export` wrote.
    pub file: PathBuf,
    /// The passphrase's file (`--passphrase-file`); without it, a protected key's passphrase is asked.
    pub passphrase_file: Option<PathBuf>,
}

/// What `init --from-key` recovered.
#[derive(Debug, Serialize)]
struct Recovered {
    global_id: String,
    peer_id: String,
    catalog_revision: u64,
    backups: Vec<String>,
    restored: Vec<RestoreReport>,
    /// Contacts and conversations restored from the messages log.
    history: HistoryRestored,
}

/// What the messages history restore got back.
#[derive(Debug, Serialize)]
struct HistoryRestored {
    contacts: usize,
    conversations: usize,
    messages: usize,
    groups: usize,
    group_messages: usize,
}

/// Runs the command: a new identity, or (`from_key`) the identity of a key file with its catalog recovered from
/// the suppliers (and every backup restored under `restore_to`).
///
/// # Errors
/// A home that holds an identity, a bad key file, no bootstrap node, no catalog found.
pub fn run(
    home: &Home,
    nickname: Option<String>,
    from_key: Option<KeyFile>,
    bootstrap: Vec<String>,
    restore_to: Option<PathBuf>,
    api_port: Option<u16>,
    j: bool,
) -> Result<()> {
    let mut config = Config { bootstrap: bootstrap.clone(), ..Config::default() };
    if let Some(p) = api_port {
        config.api_port = p;
    }
    // the storage sections with their defaults, so users see what they can set
    StorageConfig::default().write_into(&mut config)?;
    let Some(KeyFile { file: key_file, passphrase_file }) = from_key else {
        let nickname = nickname.context("--nickname NAME is required")?;
        let keys = NodeKeys::generate();
        let id = home.init(&keys, &nickname, &config)?;
        let v = Created {
            home: home.root().display().to_string(),
            global_id: id.identity.global_id(),
            peer_id: keys.peer_id().to_string(),
            revision: id.identity.revision,
        };
        print(j, &v, |_| {
            format!(
                "created identity {} (peer id {}) in {}\nnext: bitdust --home {} daemon --bootstrap <MULTIADDR>\nback up your key: bitdust --home {} key export FILE",
                id.identity.global_id(),
                keys.peer_id(),
                home.root().display(),
                home.root().display(),
                home.root().display()
            )
        });
        return Ok(());
    };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&key_file).with_context(|| format!("reading {}", key_file.display()))?,
    );
    let passphrase = match (&passphrase_file, NodeKeys::is_encrypted_text(&text)) {
        (_, false) => None,
        (Some(f), true) => Some(super::key::passphrase_from_file(f)?),
        (None, true) => Some(super::key::ask_passphrase(&format!("passphrase of {}: ", key_file.display()), false)?),
    };
    let keys = NodeKeys::import_text_with(&text, passphrase.as_deref().map(String::as_str))
        .with_context(|| format!("cannot read the key in {}", key_file.display()))?;
    if bootstrap.is_empty() {
        bail!("--from-key needs at least one --bootstrap node to find your suppliers");
    }
    home.init(&keys, nickname.as_deref().unwrap_or("recovered"), &config)?;
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(recover(home, restore_to.as_deref(), j))?;
    print(j, &report, |r| {
        let mut s = format!(
            "restored identity {} into {}; catalog revision {} with {} backups recovered from the suppliers",
            r.global_id,
            home.root().display(),
            r.catalog_revision,
            r.backups.len()
        );
        s += &format!(
            "\n{} contacts, {} conversations ({} messages) and {} groups ({} messages) restored",
            r.history.contacts, r.history.conversations, r.history.messages, r.history.groups, r.history.group_messages
        );
        for x in &r.restored {
            s += &format!("\n  restored {}@{} into {} ({} files)", x.name, x.version, x.target, x.files);
        }
        s
    });
    Ok(())
}

/// Runs an in-process node with the restored key: adopts the identity found in the DHT, recovers the
/// catalog and optionally restores every backup.
async fn recover(home: &Home, restore_to: Option<&Path>, j: bool) -> Result<Recovered> {
    let daemon = Daemon::start(
        home.clone(),
        StartOptions { listen: vec!["/ip4/0.0.0.0/tcp/0".into()], quiet: true, ..StartOptions::default() },
        wings(Overrides::default()),
    )
    .await?;
    let node = daemon.node().clone();
    let storage = daemon.service::<Storage>().context("the storage wing runs")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let catalog = loop {
        match storage.recover_catalog().await {
            Ok(c) => break c,
            Err(e) if std::time::Instant::now() > deadline => {
                node.shutdown().await;
                return Err(e.context("could not recover the catalog"));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
        }
    };
    let history = match daemon.service::<Messages>() {
        Some(m) => m.restore_history().await,
        None => Err(anyhow::anyhow!("the messages wing does not run")),
    };
    let history = match history {
        Ok(h) => HistoryRestored {
            contacts: h.contacts,
            conversations: h.conversations,
            messages: h.messages,
            groups: h.groups,
            group_messages: h.group_messages,
        },
        Err(e) => {
            node.shutdown().await;
            return Err(e.context("could not restore contacts and conversations"));
        }
    };
    // Adopt the identity published from the old device (nickname), with a higher revision.
    if let Ok(found) = node.lookup_identity(node.peer_id()).await {
        node.adopt_identity(&found)?;
    }
    let mut restored = Vec::new();
    if let Some(root) = restore_to {
        let root = std::path::absolute(root)?;
        for b in catalog.backups.iter().filter(|b| !is_vault_backup(&b.name)) {
            let target = bitdust_storage::service::customer::restore_all_path(&root, &b.name);
            if !j {
                eprintln!("restoring {} into {} ...", b.name, target.display());
            }
            let r = storage.restore(&b.name, None, &target, false, bitdust_node::Progress::new()).await?;
            restored.push(r);
        }
    }
    node.shutdown().await;
    Ok(Recovered {
        global_id: home.identity()?.identity.global_id(),
        peer_id: node.peer_id().to_string(),
        catalog_revision: catalog.revision,
        backups: catalog.backups.iter().filter(|b| !is_vault_backup(&b.name)).map(|b| b.name.clone()).collect(),
        restored,
        history,
    })
}
