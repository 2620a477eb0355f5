//! The settings routes: the config file read and written through the API (checked by the runtime and by every
//! wing before it is written, atomically), and the secret key exported to a file sealed under a passphrase.
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/api/v1/config` | | [`ConfigText`]: `config.toml` with every field |
//! | PUT | `/api/v1/config` | [`ConfigUpdate`] | [`ConfigSaved`] (400 with what is wrong; nothing written); applies at the next start |
//! | POST | `/api/v1/key/export` | [`KeyExportRequest`] | [`KeyExported`] (400 a bad path or passphrase, 409 the file exists) |
//!
//! The key goes to a file on this node, never into an HTTP answer: a stolen browser session (or a bug in the web
//! UI) cannot carry the key away, and whoever can read the file could read the home's own key anyway.

use std::path::Path;
use std::sync::Arc;

use crate::http::JsonObject;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use bitdust_api::{ConfigSaved, ConfigText, ConfigUpdate, ErrorBody, KeyExportRequest, KeyExported};
use zeroize::Zeroizing;

use crate::home::Config;
use crate::http::{ApiError, ApiResult, ErrorKind};
use crate::node::Node;

/// A wing's check of a whole config (its own sections): an error says what is wrong, for people.
pub type ConfigCheck = fn(&Config) -> anyhow::Result<()>;

/// Longest config text taken, in bytes.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// Shortest passphrase taken for a key export, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

#[derive(Clone)]
pub(crate) struct SettingsState {
    pub(crate) node: Arc<Node>,
    pub(crate) checks: Arc<Vec<ConfigCheck>>,
}

/// The routes.
pub(crate) fn router(state: SettingsState) -> Router {
    Router::new()
        .route("/api/v1/config", get(config).put(put_config))
        .route("/api/v1/key/export", post(export_key))
        .with_state(state)
}

/// Checks `text` as a whole config: TOML, the runtime's fields (addresses that parse as multiaddrs, bootstrap
/// and relay addresses that name their peer), then every wing's `checks`.
///
/// # Errors
/// What is wrong, for people.
pub fn check_config(text: &str, checks: &[ConfigCheck]) -> anyhow::Result<Config> {
    use anyhow::{bail, Context};
    if text.len() > MAX_CONFIG_BYTES {
        bail!("the config is {} bytes, over the {MAX_CONFIG_BYTES}-byte limit", text.len());
    }
    let config: Config = toml::from_str(text).context("not a valid config")?;
    for a in &config.listen {
        a.parse::<libp2p::Multiaddr>().with_context(|| format!("listen address {a:?}"))?;
    }
    for (what, list) in [("bootstrap", &config.bootstrap), ("nat.relays", &config.nat.relays)] {
        for a in list {
            let addr = a.parse::<libp2p::Multiaddr>().with_context(|| format!("{what} address {a:?}"))?;
            if !addr.iter().any(|p| matches!(p, libp2p::multiaddr::Protocol::P2p(_))) {
                bail!("{what} address {a:?} does not end in /p2p/PEER_ID");
            }
        }
    }
    if config.announce_interval_secs == 0 || config.record_ttl_secs == 0 {
        bail!("announce_interval_secs and record_ttl_secs must be above 0");
    }
    for check in checks {
        check(&config)?;
    }
    Ok(config)
}

/// The node's settings (`config.toml`, every field).
#[utoipa::path(get, path = "/api/v1/config", tag = "settings", responses((status = 200, body = ConfigText)))]
pub(crate) async fn config(State(s): State<SettingsState>) -> ApiResult<ConfigText> {
    let home = s.node.home();
    let config = home.config()?;
    let toml = toml::to_string(&config).map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    Ok(Json(ConfigText { file: home.path("config.toml").display().to_string(), toml }))
}

/// New settings: checked whole (the runtime's fields and every wing's sections), then written atomically. They
/// apply when the daemon starts again.
#[utoipa::path(put, path = "/api/v1/config", tag = "settings", request_body = ConfigUpdate,
    responses((status = 200, body = ConfigSaved), (status = 400, body = ErrorBody, description = "What is wrong; nothing written")))]
pub(crate) async fn put_config(
    State(s): State<SettingsState>,
    JsonObject(body): JsonObject<ConfigUpdate>,
) -> ApiResult<ConfigSaved> {
    let config = check_config(&body.toml, &s.checks).map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let home = s.node.home();
    home.save_config(&config)?;
    Ok(Json(ConfigSaved { file: home.path("config.toml").display().to_string(), restart_needed: true }))
}

/// Writes the secret key, sealed under the passphrase (Argon2id, AES-256-GCM: `NodeKeys::export_encrypted`), to
/// a new file on this node (mode 0600). The file alone, with the passphrase, restores the identity and all data.
#[utoipa::path(post, path = "/api/v1/key/export", tag = "settings", request_body = KeyExportRequest,
    responses((status = 200, body = KeyExported), (status = 400, body = ErrorBody, description = "A relative path or a short passphrase"),
        (status = 409, body = ErrorBody, description = "The file exists")))]
pub(crate) async fn export_key(
    State(s): State<SettingsState>,
    JsonObject(body): JsonObject<KeyExportRequest>,
) -> ApiResult<KeyExported> {
    let passphrase = Zeroizing::new(body.passphrase);
    let file = Path::new(&body.file);
    if !file.is_absolute() {
        return Err(ApiError::bad_request(format!("{:?} is not an absolute path", body.file)));
    }
    if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
        return Err(ApiError::bad_request(format!("a passphrase of at least {MIN_PASSPHRASE_CHARS} characters")));
    }
    let parent = file.parent().filter(|p| p.is_dir());
    if parent.is_none() {
        return Err(ApiError::bad_request(format!("{}: its folder does not exist", file.display())));
    }
    let keys = s.node.keys().clone();
    let sealed = tokio::task::spawn_blocking(move || keys.export_encrypted(&passphrase).map(Zeroizing::new))
        .await
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?
        .map_err(|e| ApiError::from(anyhow::Error::from(e)))?;
    // created new (never over an existing file, whatever appeared since the request came), 0600 from the start
    let written = (|| -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file)?;
        f.write_all(sealed.as_bytes())?;
        f.sync_all()
    })();
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!("{} exists; refusing to overwrite it", file.display()),
            ))
        }
        Err(e) => {
            // a half-written key file is worse than none
            let _ = std::fs::remove_file(file);
            return Err(ApiError::from(anyhow::Error::from(e).context(format!("writing {}", file.display()))));
        }
    }
    Ok(Json(KeyExported { file: file.display().to_string(), peer_id: s.node.peer_id().to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_storage(c: &Config) -> anyhow::Result<()> {
        if c.sections.contains_key("forbidden") {
            anyhow::bail!("[forbidden] is not allowed");
        }
        Ok(())
    }

    #[test]
    fn configs_are_checked_whole() {
        let good = toml::to_string(&Config::default()).unwrap();
        assert!(check_config(&good, &[no_storage]).is_ok());
        let e = |t: &str| format!("{:#}", check_config(t, &[no_storage]).unwrap_err());
        assert!(e("api_port = \"x\"").contains("not a valid config"));
        assert!(e("listen = [\"not an address\"]").contains("listen address"));
        assert!(e("bootstrap = [\"/ip4/1.2.3.4/tcp/1\"]").contains("/p2p/"));
        assert!(e("[forbidden]\nx = 1").contains("not allowed"), "a wing's check runs");
        assert!(e(&"#".repeat(MAX_CONFIG_BYTES + 1)).contains("limit"));
    }
}
