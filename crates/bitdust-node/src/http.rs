//! The local HTTP API: on 127.0.0.1 only, every request authorised by `Authorization: Bearer <token>` (the
//! 0600 file `<home>/api.token`) in one middleware layer, errors mapped to status codes in one place
//! ([`ApiError`]). The runtime serves its own routes; each wing adds its routes ([`crate::Started::routes`]).
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/api/v1/status` | the runtime's status and each wing's section |
//! | GET | `/api/v1/identity` | the signed identity (fields + hex of the encoded document) |
//! | GET | `/api/v1/automata` | every automaton instance: kind, state, since, details |
//! | GET | `/api/v1/jobs/{id}?wait_ms=N` | a job (with `wait_ms`, once it ends or after N ms, at most 30 000) |
//! | POST | `/api/v1/shutdown` | stops the daemon |
//!
//! Errors are `{"error": "message"}` with the status of their [`ErrorKind`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::node::Node;

/// Longest long poll of `GET /jobs/{id}?wait_ms=N`.
pub const MAX_JOB_WAIT_MS: u64 = 30_000;

/// What went wrong, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: 400.
    BadRequest,
    /// Missing or wrong token: 401.
    Unauthorized,
    /// Unknown backup, version, job, path: 404.
    NotFound,
    /// The operation conflicts with the state (busy, target not empty): 409.
    Conflict,
    /// The network cannot serve it now (too few suppliers online): 503.
    Unavailable,
    /// A failure of ours: 500.
    Internal,
}

impl ErrorKind {
    /// The HTTP status (the one place errors become status codes).
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An API error: its kind and a message for people.
#[derive(Debug)]
pub struct ApiError {
    /// Kind (decides the status).
    pub kind: ErrorKind,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.kind.status(), Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::new(ErrorKind::Internal, format!("{e:#}"))
    }
}

/// A handler's result.
pub type ApiResult<T = Value> = Result<Json<T>, ApiError>;

/// A wing's section of `GET /api/v1/status`.
#[async_trait]
pub trait StatusSection: Send + Sync {
    /// The section: a JSON object whose fields are added to the status.
    ///
    /// # Errors
    /// If the wing cannot report now.
    async fn status(&self) -> anyhow::Result<Value>;
}

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    sections: Arc<Vec<Arc<dyn StatusSection>>>,
    shutdown: tokio::sync::mpsc::Sender<()>,
}

/// Compares the bearer token in time independent of where the strings differ.
fn token_ok(headers: &HeaderMap, expected: &str) -> bool {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let expected = expected.as_bytes();
    given.len() == expected.len() && given.as_bytes().iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn authenticate(State(token): State<Arc<String>>, request: Request, next: Next) -> Response {
    if token_ok(request.headers(), &token) {
        next.run(request).await
    } else {
        ApiError::new(ErrorKind::Unauthorized, "missing or wrong API token").into_response()
    }
}

async fn status(State(s): State<AppState>) -> ApiResult {
    let mut v = serde_json::to_value(s.node.status().await?).map_err(anyhow::Error::from)?;
    for section in s.sections.iter() {
        if let (Some(out), Value::Object(extra)) = (v.as_object_mut(), section.status().await?) {
            out.extend(extra);
        }
    }
    Ok(Json(v))
}

async fn identity(State(s): State<AppState>) -> ApiResult {
    let id = s.node.identity();
    Ok(Json(json!({
        "global_id": id.identity.global_id(),
        "nickname": id.identity.nickname,
        "peer_id": s.node.peer_id().to_string(),
        "revision": id.identity.revision,
        "addresses": id.identity.addresses,
        "encryption_key": hex::encode(id.identity.encryption_key),
        "document_hex": hex::encode(id.encode()),
    })))
}

#[derive(Debug, Deserialize)]
struct JobQuery {
    /// Wait up to this many milliseconds for the job to end (capped at [`MAX_JOB_WAIT_MS`]); 0 answers at once.
    #[serde(default)]
    wait_ms: u64,
}

async fn job(
    State(s): State<AppState>,
    Path(id): Path<u64>,
    q: Result<Query<JobQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let wait = std::time::Duration::from_millis(q.wait_ms.min(MAX_JOB_WAIT_MS));
    let job = s.node.jobs().wait(id, wait).await.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Json(serde_json::to_value(job).map_err(anyhow::Error::from)?))
}

async fn shutdown_handler(State(s): State<AppState>) -> ApiResult {
    let _ = s.shutdown.try_send(());
    Ok(Json(json!({ "stopping": true })))
}

async fn automata(State(s): State<AppState>) -> ApiResult {
    Ok(Json(json!({ "automata": s.node.registry().list() })))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API path")
}

/// The whole API: the runtime's routes and `wing_routes`, behind the token check. `shutdown` receives when a
/// client asks the daemon to stop.
pub fn router(
    node: Arc<Node>,
    token: String,
    wing_routes: Vec<Router>,
    sections: Vec<Arc<dyn StatusSection>>,
    shutdown: tokio::sync::mpsc::Sender<()>,
) -> Router {
    let mut app = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/identity", get(identity))
        .route("/api/v1/automata", get(automata))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/api/v1/shutdown", post(shutdown_handler))
        .with_state(AppState { node, sections: Arc::new(sections), shutdown });
    for r in wing_routes {
        app = app.merge(r);
    }
    app.fallback(not_found).layer(axum::middleware::from_fn_with_state(Arc::new(token), authenticate))
}

/// Binds 127.0.0.1:`port` (0 picks a free port).
///
/// # Errors
/// If the port cannot be bound.
pub async fn bind(port: u16) -> anyhow::Result<(SocketAddr, tokio::net::TcpListener)> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1:{port} for the API: {e}"))?;
    let addr = listener.local_addr()?;
    Ok((addr, listener))
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
