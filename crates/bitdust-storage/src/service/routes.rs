//! The storage wing's API routes (behind the runtime's authentication; errors through
//! [`bitdust_node::http::ApiError`]).
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/api/v1/suppliers` | | positions, peer ids, contracts, state |
//! | POST | `/api/v1/suppliers/hire` | | hires up to n suppliers; the list |
//! | POST | `/api/v1/suppliers/{position}/replace` | | asks hire/fire to replace that supplier |
//! | GET | `/api/v1/health` | | per version: blocks full / degraded / lost, lost files; rebuild queue |
//! | GET | `/api/v1/backups` | | backups and their versions |
//! | POST | `/api/v1/backups` | `{"path": "/abs/path"}` | `{"job": id}` |
//! | POST | `/api/v1/restores` | `{"name", "version"?, "to", "force"?}` | `{"job": id}` |
//! | GET | `/api/v1/store` | | supplier usage per customer |

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitdust_node::http::{ApiError, ApiResult};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::customer::prepare_target;
use crate::service::Storage;

type S = State<Arc<Storage>>;

/// The routes, bound to `storage`.
pub(crate) fn router(storage: Arc<Storage>) -> Router {
    Router::new()
        .route("/api/v1/suppliers", get(suppliers))
        .route("/api/v1/suppliers/hire", post(hire))
        .route("/api/v1/suppliers/{position}/replace", post(replace))
        .route("/api/v1/health", get(health))
        .route("/api/v1/backups", get(backups).post(start_backup))
        .route("/api/v1/restores", post(start_restore))
        .route("/api/v1/store", get(store))
        .with_state(storage)
}

async fn suppliers_json(storage: &Storage) -> Result<Value, ApiError> {
    let slots = storage.suppliers()?;
    let connected = storage.node().network().status().await.map_err(anyhow::Error::from)?.connected_peers;
    let automata = storage.automata();
    let conn = |pos: u16| automata.iter().find(|a| a.name == format!("supplier_connection/{pos}")).cloned();
    let list: Vec<Value> = slots
        .iter()
        .map(|s| {
            let peer = s.peer().map(|p| p.to_string()).unwrap_or_default();
            json!({
                "position": s.position,
                "peer_id": peer,
                "connected": connected.contains(&peer),
                "state": conn(s.position).map(|a| a.state),
                "held_bytes": conn(s.position).and_then(|a| a.details["held_bytes"].as_u64()),
                "held_fragments": conn(s.position).and_then(|a| a.details["held_fragments"].as_u64()),
                "needed_bytes": s.contract.as_ref().map(|c| c.contract.needed_bytes),
                "contract_start_unix": s.contract.as_ref().map(|c| c.contract.start_unix),
                "hired_unix": s.hired_unix,
            })
        })
        .collect();
    Ok(json!({ "wanted": storage.config().customer.suppliers, "suppliers": list }))
}

async fn suppliers(State(s): S) -> ApiResult {
    Ok(Json(suppliers_json(&s).await?))
}

async fn hire(State(s): S) -> ApiResult {
    s.ensure_suppliers().await?;
    Ok(Json(suppliers_json(&s).await?))
}

async fn backups(State(s): S) -> ApiResult {
    let catalog = s.catalog()?;
    let list: Vec<Value> = catalog
        .backups
        .iter()
        .map(|b| {
            json!({
                "name": b.name,
                "source": String::from_utf8_lossy(&b.source),
                "versions": b.versions.iter().map(|v| json!({
                    "version": v.number,
                    "created_unix": v.created_unix,
                    "files": v.file_count(),
                    "entries": v.entries.len(),
                    "bytes": v.total_bytes,
                    "stored_bytes": v.stored_bytes(),
                    "blocks": v.blocks.len(),
                    "layout": v.layout.to_string(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "revision": catalog.revision, "backups": list })))
}

#[derive(Deserialize)]
struct BackupBody {
    path: PathBuf,
}

async fn start_backup(State(s): S, Json(body): Json<BackupBody>) -> ApiResult {
    if !body.path.is_absolute() {
        return Err(ApiError::bad_request("path must be absolute"));
    }
    std::fs::symlink_metadata(&body.path)
        .map_err(|e| ApiError::bad_request(format!("cannot back up {}: {e}", body.path.display())))?;
    let path = body.path.clone();
    let storage = s.clone();
    let id = s.node().jobs().spawn("backup", body.path.display().to_string(), move |progress| async move {
        let report = storage.backup(&path, progress).await?;
        Ok(serde_json::to_value(report)?)
    });
    Ok(Json(json!({ "job": id })))
}

#[derive(Deserialize)]
struct RestoreBody {
    name: String,
    version: Option<u32>,
    to: PathBuf,
    #[serde(default)]
    force: bool,
}

async fn start_restore(State(s): S, Json(body): Json<RestoreBody>) -> ApiResult {
    if !body.to.is_absolute() {
        return Err(ApiError::bad_request("target must be absolute"));
    }
    let catalog = s.catalog()?;
    let Some(backup) = catalog.backup(&body.name) else {
        return Err(ApiError::not_found(format!("no backup named {:?}", body.name)));
    };
    if let Some(v) = body.version {
        if !backup.versions.iter().any(|x| x.number == v) {
            return Err(ApiError::not_found(format!("backup {:?} has no version {v}", body.name)));
        }
    }
    prepare_target(&body.to, body.force).map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    let target = format!("{}{}", body.name, body.version.map(|v| format!("@{v}")).unwrap_or_default());
    let storage = s.clone();
    let id = s.node().jobs().spawn("restore", target, move |progress| async move {
        let report = storage.restore(&body.name, body.version, &body.to, true, progress).await?;
        Ok(serde_json::to_value(report)?)
    });
    Ok(Json(json!({ "job": id })))
}

async fn store(State(s): S) -> ApiResult {
    let Some(store) = s.store().cloned() else {
        return Ok(Json(json!({ "supplier": false, "customers": [] })));
    };
    let usage = tokio::task::spawn_blocking(move || store.usage())
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "supplier": true, "customers": usage })))
}

async fn health(State(s): S) -> ApiResult {
    let queue = s.rebuild_queue()?;
    Ok(Json(json!({
        "versions": s.health()?,
        "rebuild_queue_blocks": queue.len(),
        "rebuild_queue_fragments": queue.iter().map(|q| q.positions.len()).sum::<usize>(),
    })))
}

async fn replace(State(s): S, Path(position): Path<u16>) -> ApiResult {
    s.request_replacement(position).await.map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
    Ok(Json(json!({ "replacing": position })))
}
