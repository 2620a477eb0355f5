//! # bitdust-api
//!
//! The local REST API of a node, on 127.0.0.1 only, every request authorised by
//! `Authorization: Bearer <token>` where the token is the 0600 file `<home>/api.token`.
//!
//! | method | path | body | answer |
//! | --- | --- | --- | --- |
//! | GET | `/api/v1/status` | | [`bitdust_node::Status`] |
//! | GET | `/api/v1/identity` | | the signed identity (fields + hex of the encoded document) |
//! | GET | `/api/v1/suppliers` | | positions, peer ids, contracts, connected |
//! | POST | `/api/v1/suppliers/hire` | | hires up to n suppliers; the list |
//! | POST | `/api/v1/suppliers/{position}/replace` | | asks hire/fire to replace that supplier |
//! | GET | `/api/v1/automata` | | every automaton instance: kind, state, since, details |
//! | GET | `/api/v1/health` | | per version: blocks full / degraded / lost, lost files; rebuild queue |
//! | GET | `/api/v1/backups` | | backups and their versions |
//! | POST | `/api/v1/backups` | `{"path": "/abs/path"}` | `{"job": id}` |
//! | POST | `/api/v1/restores` | `{"name", "version"?, "to", "force"?}` | `{"job": id}` |
//! | GET | `/api/v1/jobs/{id}?wait_ms=N` | | [`bitdust_node::Job`] (with `wait_ms`, once it ends or after N ms, at most 30 000) |
//! | GET | `/api/v1/store` | | supplier usage per customer |
//! | POST | `/api/v1/shutdown` | | stops the daemon |
//!
//! Errors are `{"error": "message"}` with 400 (bad input), 401 (token), 404 (unknown), 500 (failure).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitdust_node::Node;
use serde::Deserialize;
use serde_json::{json, Value};

/// An API error: a status code and a message.
#[derive(Debug)]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

fn bad_request(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    token: Arc<String>,
    shutdown: tokio::sync::mpsc::Sender<()>,
}

fn authorise(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // compare in time independent of where the strings differ
    let expected = state.token.as_bytes();
    let ok = given.len() == expected.len()
        && given.as_bytes().iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if ok {
        Ok(())
    } else {
        Err(ApiError(StatusCode::UNAUTHORIZED, "missing or wrong API token".into()))
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

async fn status(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    Ok(Json(serde_json::to_value(s.node.status().await?).map_err(anyhow::Error::from)?))
}

async fn identity(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    let id = s.node.identity();
    Ok(Json(json!({
        "global_id": id.identity.global_id(),
        "nickname": id.identity.nickname,
        "peer_id": s.node.peer_id().to_string(),
        "revision": id.identity.revision,
        "addresses": id.identity.addresses,
        "encryption_key": id.identity.encryption_key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "document_hex": id.encode().iter().map(|b| format!("{b:02x}")).collect::<String>(),
    })))
}

async fn suppliers_json(node: &Node) -> Result<Value, ApiError> {
    let slots = node.suppliers()?;
    let connected = node.network().status().await.map_err(anyhow::Error::from)?.connected_peers;
    let automata = node.automata();
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
    Ok(json!({ "wanted": node.config().customer.suppliers, "suppliers": list }))
}

async fn suppliers(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    Ok(Json(suppliers_json(&s.node).await?))
}

async fn hire(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    s.node.ensure_suppliers().await?;
    Ok(Json(suppliers_json(&s.node).await?))
}

async fn backups(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    let catalog = s.node.catalog()?;
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

async fn start_backup(State(s): State<AppState>, h: HeaderMap, Json(body): Json<BackupBody>) -> ApiResult {
    authorise(&s, &h)?;
    if !body.path.is_absolute() {
        return Err(bad_request("path must be absolute"));
    }
    std::fs::symlink_metadata(&body.path)
        .map_err(|e| bad_request(format!("cannot back up {}: {e}", body.path.display())))?;
    let path = body.path.clone();
    let id = s.node.spawn_job("backup", body.path.display().to_string(), move |node, progress| async move {
        let report = node.backup(&path, progress).await?;
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

async fn start_restore(State(s): State<AppState>, h: HeaderMap, Json(body): Json<RestoreBody>) -> ApiResult {
    authorise(&s, &h)?;
    if !body.to.is_absolute() {
        return Err(bad_request("target must be absolute"));
    }
    let catalog = s.node.catalog()?;
    let Some(backup) = catalog.backup(&body.name) else {
        return Err(ApiError(StatusCode::NOT_FOUND, format!("no backup named {:?}", body.name)));
    };
    if let Some(v) = body.version {
        if !backup.versions.iter().any(|x| x.number == v) {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("backup {:?} has no version {v}", body.name)));
        }
    }
    bitdust_node::customer::prepare_target(&body.to, body.force).map_err(|e| bad_request(format!("{e:#}")))?;
    let target = format!("{}{}", body.name, body.version.map(|v| format!("@{v}")).unwrap_or_default());
    let id = s.node.spawn_job("restore", target, move |node, progress| async move {
        let report = node.restore(&body.name, body.version, &body.to, true, progress).await?;
        Ok(serde_json::to_value(report)?)
    });
    Ok(Json(json!({ "job": id })))
}

/// Longest long poll of `GET /jobs/{id}?wait_ms=N`.
const MAX_JOB_WAIT_MS: u64 = 30_000;

#[derive(Debug, Deserialize)]
struct JobQuery {
    /// Wait up to this many milliseconds for the job to end (capped at [`MAX_JOB_WAIT_MS`]); 0 answers at once.
    #[serde(default)]
    wait_ms: u64,
}

async fn job(
    State(s): State<AppState>,
    h: HeaderMap,
    Path(id): Path<u64>,
    q: Result<Query<JobQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    authorise(&s, &h)?;
    let Query(q) = q.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    let wait = std::time::Duration::from_millis(q.wait_ms.min(MAX_JOB_WAIT_MS));
    let job = s.node.wait_job(id, wait).await;
    let job = job.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no job {id}")))?;
    Ok(Json(serde_json::to_value(job).map_err(anyhow::Error::from)?))
}

async fn store(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    let Some(store) = s.node.store().cloned() else {
        return Ok(Json(json!({ "supplier": false, "customers": [] })));
    };
    let usage = tokio::task::spawn_blocking(move || store.usage())
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
    Ok(Json(json!({ "supplier": true, "customers": usage })))
}

async fn shutdown_handler(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    let _ = s.shutdown.try_send(());
    Ok(Json(json!({ "stopping": true })))
}

async fn automata(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    Ok(Json(json!({ "automata": s.node.automata() })))
}

async fn health(State(s): State<AppState>, h: HeaderMap) -> ApiResult {
    authorise(&s, &h)?;
    let queue = s.node.rebuild_queue()?;
    Ok(Json(json!({
        "versions": s.node.health()?,
        "rebuild_queue_blocks": queue.len(),
        "rebuild_queue_fragments": queue.iter().map(|q| q.positions.len()).sum::<usize>(),
    })))
}

async fn replace(State(s): State<AppState>, h: HeaderMap, Path(position): Path<u16>) -> ApiResult {
    authorise(&s, &h)?;
    s.node.request_replacement(position).await.map_err(|e| bad_request(format!("{e:#}")))?;
    Ok(Json(json!({ "replacing": position })))
}

async fn not_found() -> ApiError {
    ApiError(StatusCode::NOT_FOUND, "no such API path".into())
}

/// The router, for tests and for [`serve`].
pub fn router(node: Arc<Node>, token: String, shutdown: tokio::sync::mpsc::Sender<()>) -> Router {
    Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/identity", get(identity))
        .route("/api/v1/suppliers", get(suppliers))
        .route("/api/v1/suppliers/hire", post(hire))
        .route("/api/v1/suppliers/{position}/replace", post(replace))
        .route("/api/v1/automata", get(automata))
        .route("/api/v1/health", get(health))
        .route("/api/v1/backups", get(backups).post(start_backup))
        .route("/api/v1/restores", post(start_restore))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/api/v1/store", get(store))
        .route("/api/v1/shutdown", post(shutdown_handler))
        .fallback(not_found)
        .with_state(AppState { node, token: Arc::new(token), shutdown })
}

/// Binds 127.0.0.1:`port` (0 picks a free port) and returns the bound address and the server future.
/// The server stops when `shutdown_requested` receives (an API `shutdown` call sends to `shutdown_tx`).
///
/// # Errors
/// If the port cannot be bound.
pub async fn bind(
    node: Arc<Node>,
    token: String,
    port: u16,
    shutdown_tx: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<(SocketAddr, tokio::net::TcpListener, Router)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port} for the API: {e}"))?;
    let addr = listener.local_addr()?;
    Ok((addr, listener, router(node, token, shutdown_tx)))
}

/// Serves the API on `listener` until `shutdown` completes.
///
/// # Errors
/// If the server fails.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
