//! The local HTTP API, v1: on 127.0.0.1 only, every request authorised by `Authorization: Bearer <token>` (the
//! 0600 file `<home>/api.token`) in one middleware layer, errors mapped to status codes in one place
//! ([`ErrorKind::status`]), bodies typed ([`bitdust_api`]). The runtime serves its own routes; each wing adds its
//! routes and their OpenAPI paths ([`crate::Started`]); the whole document is served at `/api/v1/openapi.json`.
//!
//! | method | path | answer |
//! | --- | --- | --- |
//! | GET | `/api/v1/status` | [`bitdust_api::Status`]: the runtime's status and each wing's section |
//! | GET | `/api/v1/identity` | [`bitdust_api::Identity`] |
//! | GET | `/api/v1/automata` | [`bitdust_api::Automata`]: every automaton instance |
//! | GET | `/api/v1/automata/kinds` | [`bitdust_api::AutomatonKinds`]: every kind, its transitions and diagram |
//! | GET | `/api/v1/jobs/{id}?wait_ms=N` | [`bitdust_api::Job`] (with `wait_ms`, once it ends or after N ms, at most 30 000) |
//! | GET | `/api/v1/events?since=ID&timeout_ms=N` | [`bitdust_api::Events`] after `since` (long poll, at most 60 000 ms) |
//! | GET | `/api/v1/events/ws?since=ID` | WebSocket: each event as a JSON text message |
//! | GET | `/api/v1/openapi.json` | the OpenAPI 3 document |
//! | POST | `/api/v1/shutdown` | [`bitdust_api::Stopping`]; the daemon stops |
//! | GET | `/api/v1/proof?nonce=HEX` | [`bitdust_api::Proof`], without the token: the daemon proves it knows it |
//! | POST | `/api/v1/ui/login`, `/api/v1/ui/logout` | the web UI's login link and logout ([`crate::ui`]) |
//! | GET, PUT | `/api/v1/config` | the settings, checked by every wing before written ([`crate::settings`]) |
//! | POST | `/api/v1/key/export` | the secret key to a file on this node, sealed under a passphrase |
//!
//! A browser's session cookie (from a `bitdust ui` login link) stands for the token; the `Host` and `Origin` checks
//! of [`crate::ui::guard`] come before everything.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bitdust_api::{
    Automata, AutomatonKind, AutomatonKinds, ErrorBody, Events, Identity, Job, Status, Stopping, Transition,
};
use bitdust_core::automata::Kind;
use serde::Deserialize;
use utoipa::OpenApi;

use crate::node::Node;
use crate::ui::UiSessions;

/// Longest long poll of `GET /jobs/{id}?wait_ms=N`.
pub const MAX_JOB_WAIT_MS: u64 = 30_000;
/// Longest long poll of `GET /events?timeout_ms=N`.
pub const MAX_EVENTS_WAIT_MS: u64 = 60_000;
/// How long a WebSocket waits for events before it pings the client (a client that is gone fails the ping and
/// its task ends).
const WS_WAIT: Duration = Duration::from_secs(30);

/// What went wrong, which decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: 400.
    BadRequest,
    /// Missing or wrong token: 401.
    Unauthorized,
    /// Unknown backup, version, job, path: 404.
    NotFound,
    /// The path exists, the method does not: 405.
    MethodNotAllowed,
    /// The operation conflicts with the state (busy, target not empty): 409.
    Conflict,
    /// A body over the operation's size limit: 413.
    PayloadTooLarge,
    /// A body of a type the operation does not take: 415.
    UnsupportedMediaType,
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
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
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
        (self.kind.status(), Json(ErrorBody { error: self.message })).into_response()
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        Self::new(ErrorKind::Internal, format!("{e:#}"))
    }
}

macro_rules! bad_request_from {
    ($($rejection:ty),*) => {$(
        impl From<$rejection> for ApiError {
            fn from(e: $rejection) -> Self {
                Self::bad_request(e.body_text())
            }
        }
    )*};
}

// A rejected path, query or body is a 400 with an ErrorBody (axum's own rejections answer plain text).
bad_request_from!(
    axum::extract::rejection::PathRejection,
    axum::extract::rejection::QueryRejection,
    axum::extract::rejection::JsonRejection
);

/// A JSON request body that must be an object: serde also reads a struct from an array (`[null]` as a struct of
/// defaults), which the OpenAPI document does not allow. A number with no fractional part counts as an integer
/// (`2.0` for `2`), as in JSON Schema. Anything else is a 400 with an [`ErrorBody`].
pub struct JsonObject<T>(pub T);

/// Turns every float with no fractional part that fits an `i64` or `u64` into that integer.
fn integral(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                if f >= 0.0 && f < u64::MAX as f64 {
                    *n = (f as u64).into();
                } else if f < 0.0 && f >= i64::MIN as f64 {
                    *n = (f as i64).into();
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(integral),
        serde_json::Value::Object(map) => map.values_mut().for_each(integral),
        _ => {}
    }
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(mut value) = Json::<serde_json::Value>::from_request(req, state).await?;
        integral(&mut value);
        if !value.is_object() {
            return Err(ApiError::bad_request("the request body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map(JsonObject)
            .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
    }
}

/// Whether `a` and `b` are equal, in time independent of where they differ (for secrets and proofs of them).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A handler's result.
pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Context of the daemon's proof that it knows the token (BLAKE3's key derivation: a key of its own for this use).
const PROOF_CONTEXT: &str = "bitdust local API 2026-12 proof of the token";
/// Longest nonce accepted by `GET /api/v1/proof`, in bytes (hex in the query).
const MAX_NONCE_BYTES: usize = 64;

/// The daemon's proof that it knows `token`, for the client's `nonce`: BLAKE3 in keyed mode (a MAC) under a key
/// derived from the token, hex. The client checks it before it sends the token: a program that holds the API port
/// while the daemon is stopped cannot compute it, and never receives the token.
pub fn token_proof(token: &str, nonce: &[u8]) -> String {
    let key = blake3::derive_key(PROOF_CONTEXT, token.as_bytes());
    blake3::keyed_hash(&key, nonce).to_hex().to_string()
}

/// A wing's section of `GET /api/v1/status`.
#[async_trait]
pub trait StatusSection: Send + Sync {
    /// Fills the wing's part of `status`.
    ///
    /// # Errors
    /// If the wing cannot report now.
    async fn fill(&self, status: &mut Status) -> anyhow::Result<()>;
}

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    kinds: Arc<AutomatonKinds>,
    sections: Arc<Vec<Arc<dyn StatusSection>>>,
    openapi: Arc<String>,
    shutdown: tokio::sync::mpsc::Sender<()>,
}

/// Compares the bearer token in time independent of where the strings differ.
fn token_ok(headers: &HeaderMap, expected: &str) -> bool {
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    constant_time_eq(given.as_bytes(), expected.as_bytes())
}

/// The token, or the UI's sessions.
#[derive(Clone)]
struct Auth {
    token: Arc<String>,
    ui: Arc<UiSessions>,
}

/// Lets a request through with the bearer token, or with a UI session's cookie (then a state change must come
/// from this API's own origin: [`crate::ui::cookie_request_ok`]).
async fn authenticate(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    if token_ok(request.headers(), &auth.token) {
        return next.run(request).await;
    }
    if auth.ui.check(request.headers()) {
        if !crate::ui::cookie_request_ok(&auth.ui, request.method(), request.headers()) {
            return crate::ui::forbidden("a change through the web UI's session must come from the web UI (Origin)");
        }
        return next.run(request).await;
    }
    crate::ui::unauthorized()
}

/// The node's status, and each wing's section.
#[utoipa::path(get, path = "/api/v1/status", tag = "node", responses((status = 200, body = Status)))]
async fn status(State(s): State<AppState>) -> ApiResult<Status> {
    let mut status = Status { node: s.node.status().await?, storage: None };
    for section in s.sections.iter() {
        section.fill(&mut status).await?;
    }
    Ok(Json(status))
}

/// The signed identity document.
#[utoipa::path(get, path = "/api/v1/identity", tag = "node", responses((status = 200, body = Identity)))]
async fn identity(State(s): State<AppState>) -> ApiResult<Identity> {
    let id = s.node.identity();
    Ok(Json(Identity {
        global_id: id.identity.global_id(),
        nickname: id.identity.nickname.clone(),
        peer_id: s.node.peer_id().to_string(),
        revision: id.identity.revision,
        addresses: id.identity.addresses.clone(),
        encryption_key: hex::encode(id.identity.encryption_key),
        document_hex: hex::encode(id.encode()),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct JobQuery {
    /// Wait up to this many milliseconds for the job to end (at most 30 000); 0 answers at once.
    #[serde(default)]
    #[param(required = false)]
    wait_ms: u64,
}

/// A job: at once, or once it ends (long poll with `wait_ms`).
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}", tag = "node",
    params(("id" = u64, Path, description = "Job id"), JobQuery),
    responses(
        (status = 200, body = Job),
        (status = 400, body = ErrorBody, description = "Not a job id, or a bad query"),
        (status = 404, body = ErrorBody, description = "No such job")
    )
)]
async fn job(
    State(s): State<AppState>,
    id: Result<Path<u64>, axum::extract::rejection::PathRejection>,
    q: Result<Query<JobQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Job> {
    let Path(id) = id?;
    let Query(q) = q?;
    within_int64(&[id, q.wait_ms])?;
    let wait = Duration::from_millis(q.wait_ms.min(MAX_JOB_WAIT_MS));
    let job = s.node.jobs().wait(id, wait).await.ok_or_else(|| ApiError::not_found(format!("no job {id}")))?;
    Ok(Json(job))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct EventsQuery {
    /// Events after this id (0: from the oldest still kept).
    #[serde(default)]
    #[param(required = false)]
    since: u64,
    /// Wait up to this many milliseconds for an event when there is none yet (at most 60 000); 0 answers at once.
    #[serde(default)]
    #[param(required = false)]
    timeout_ms: u64,
}

/// The events after `since` (a long poll with `timeout_ms`).
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events", params(EventsQuery),
    responses((status = 200, body = Events), (status = 400, body = ErrorBody, description = "A bad query"))
)]
async fn events(
    State(s): State<AppState>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Events> {
    let Query(q) = q?;
    within_int64(&[q.since, q.timeout_ms])?;
    let log = s.node.events();
    let events = log.wait(q.since, Duration::from_millis(q.timeout_ms.min(MAX_EVENTS_WAIT_MS))).await;
    Ok(Json(Events { events, last_id: log.last_id() }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WsQuery {
    /// Events after this id (0: from the oldest still kept).
    #[serde(default)]
    #[param(required = false)]
    since: u64,
}

/// The events after `since`, then each new one, as JSON text messages on a WebSocket.
#[utoipa::path(get, path = "/api/v1/events/ws", tag = "events", params(WsQuery), responses((status = 101, description = "WebSocket: one bitdust_api::Event per text message")))]
async fn events_ws(
    State(s): State<AppState>,
    q: Result<Query<WsQuery>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    within_int64(&[q.since])?;
    let log = s.node.events().clone();
    Ok(ws.on_upgrade(move |socket| stream_events(socket, log, q.since)))
}

/// Sends every event after `since` until the client goes away.
async fn stream_events(mut socket: WebSocket, log: crate::events::Events, mut since: u64) {
    loop {
        let batch = tokio::select! {
            b = log.wait(since, WS_WAIT) => b,
            incoming = socket.recv() => match incoming {
                // the client closed or failed; pings are answered by the server, text from the client is ignored
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
        };
        if log.is_closed() {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        if batch.is_empty() && socket.send(Message::Ping(Vec::new().into())).await.is_err() {
            return;
        }
        for event in batch {
            since = event.id;
            let Ok(text) = serde_json::to_string(&event) else { continue };
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
    }
}

/// Stops the daemon.
#[utoipa::path(post, path = "/api/v1/shutdown", tag = "node", responses((status = 200, body = Stopping)))]
async fn shutdown_handler(State(s): State<AppState>) -> ApiResult<Stopping> {
    let _ = s.shutdown.try_send(());
    Ok(Json(Stopping { stopping: true }))
}

/// Every automaton instance and its state.
#[utoipa::path(get, path = "/api/v1/automata", tag = "node", responses((status = 200, body = Automata)))]
async fn automata(State(s): State<AppState>) -> ApiResult<Automata> {
    Ok(Json(Automata { automata: s.node.registry().list() }))
}

/// Every automaton kind with its transition table and diagram.
#[utoipa::path(get, path = "/api/v1/automata/kinds", tag = "node", responses((status = 200, body = AutomatonKinds)))]
async fn automaton_kinds(State(s): State<AppState>) -> ApiResult<AutomatonKinds> {
    Ok(Json(s.kinds.as_ref().clone()))
}

/// The kinds as the API shows them.
fn kinds_of(kinds: &[Kind]) -> AutomatonKinds {
    let kinds = kinds
        .iter()
        .map(|(name, table)| AutomatonKind {
            name: (*name).to_string(),
            transitions: table
                .iter()
                .map(|t| Transition { from: t.from.into(), event: t.event.into(), to: t.to.into() })
                .collect(),
            mermaid: bitdust_core::automata::mermaid(table),
        })
        .collect();
    AutomatonKinds { kinds }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "node", responses((status = 200, description = "The OpenAPI 3 document")))]
async fn openapi_json(State(s): State<AppState>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], s.openapi.as_str().to_owned()).into_response()
}

/// Integers in the API are OpenAPI's `int64`: larger ones are refused rather than read as `u64`.
fn within_int64(values: &[u64]) -> Result<(), ApiError> {
    match values.iter().find(|v| **v > i64::MAX as u64) {
        Some(v) => Err(ApiError::bad_request(format!("{v} is larger than the largest int64"))),
        None => Ok(()),
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ProofQuery {
    /// The client's random nonce, hex, 16 to 64 bytes.
    #[param(pattern = "^([0-9a-fA-F]{2}){16,64}$")]
    nonce: String,
}

/// The daemon's proof that it knows the token, for the client's nonce (no token needed: the client asks this
/// before it sends the token, and sends it only if the proof verifies).
#[utoipa::path(
    get, path = "/api/v1/proof", tag = "node", params(ProofQuery), security(()),
    responses((status = 200, body = bitdust_api::Proof), (status = 400, body = ErrorBody, description = "A bad nonce"))
)]
async fn proof(
    State(token): State<Arc<String>>,
    q: Result<Query<ProofQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<bitdust_api::Proof> {
    let Query(q) = q?;
    let nonce = hex::decode(&q.nonce).map_err(|e| ApiError::bad_request(format!("nonce: {e}")))?;
    if !(16..=MAX_NONCE_BYTES).contains(&nonce.len()) {
        return Err(ApiError::bad_request(format!("nonce: 16 to {MAX_NONCE_BYTES} bytes")));
    }
    Ok(Json(bitdust_api::Proof { proof: token_proof(&token, &nonce) }))
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such API path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorKind::MethodNotAllowed, "this API path does not take that method")
}

/// The runtime's part of the OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    paths(
        status,
        identity,
        automata,
        automaton_kinds,
        job,
        events,
        events_ws,
        shutdown_handler,
        openapi_json,
        proof,
        crate::ui::new_login,
        crate::ui::logout,
        crate::settings::config,
        crate::settings::put_config,
        crate::settings::export_key
    ),
    components(schemas(ErrorBody, bitdust_api::Event, bitdust_api::EventKind))
)]
struct RuntimeApi;

/// The whole OpenAPI 3 document: the runtime's paths and every wing's, one bearer-token security scheme.
pub fn openapi(wings: &[utoipa::openapi::OpenApi]) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
    let mut doc = RuntimeApi::openapi();
    for w in wings {
        doc.merge(w.clone());
    }
    doc.info.title = "bitdust local API".into();
    doc.info.version = "1".into();
    doc.info.description = Some(
        "The local API of a bitdust node: on 127.0.0.1 only, every request with `Authorization: Bearer <token>` \
         (the file `<home>/api.token`), or the web UI's session cookie. Errors answer `ErrorBody` with 400, 401, \
         403 (a foreign Host or Origin), 404, 405, 409, 503 or 500."
            .into(),
    );
    doc.info.contact = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    doc.security = Some(vec![SecurityRequirement::new("token", Vec::<String>::new())]);
    // every operation answers 401 without the token (the middleware's), and 405 for a method it does not take
    let unauthorized = utoipa::openapi::ResponseBuilder::new()
        .description("Missing or wrong API token")
        .content(
            "application/json",
            utoipa::openapi::ContentBuilder::new()
                .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if path == "/api/v1/proof" {
            continue;
        }
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            op.responses.responses.entry("401".into()).or_insert_with(|| unauthorized.clone().into());
        }
    }
    doc
}

/// What the API server is made of, besides the node: the wings' routes and status sections, the automata kinds,
/// the OpenAPI document.
pub struct Parts {
    /// The wings' routes.
    pub wing_routes: Vec<Router>,
    /// The wings' status sections.
    pub sections: Vec<Arc<dyn StatusSection>>,
    /// Every automaton kind (the runtime's and the wings').
    pub kinds: Vec<Kind>,
    /// The document served at `/api/v1/openapi.json`.
    pub openapi: utoipa::openapi::OpenApi,
    /// The wings' config checks (for `PUT /api/v1/config`).
    pub checks: Vec<crate::settings::ConfigCheck>,
}

/// The whole API on `port`: the runtime's routes and the wings', behind the token or a UI session, and the web
/// UI's files, all behind the `Host` and `Origin` checks ([`crate::ui::guard`]). `shutdown` receives when a
/// client asks the daemon to stop.
pub fn router(
    node: Arc<Node>,
    token: String,
    port: u16,
    parts: Parts,
    shutdown: tokio::sync::mpsc::Sender<()>,
) -> Router {
    let Parts { wing_routes, sections, kinds, openapi, checks } = parts;
    let openapi = Arc::new(openapi.to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")));
    let mut app = Router::new()
        .route("/api/v1/status", get(status))
        .route("/api/v1/identity", get(identity))
        .route("/api/v1/automata", get(automata))
        .route("/api/v1/automata/kinds", get(automaton_kinds))
        .route("/api/v1/jobs/{id}", get(job))
        .route("/api/v1/events", get(events))
        .route("/api/v1/events/ws", get(events_ws))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/shutdown", post(shutdown_handler))
        .with_state(AppState {
            node: node.clone(),
            kinds: Arc::new(kinds_of(&kinds)),
            sections: Arc::new(sections),
            openapi,
            shutdown,
        });
    for r in wing_routes {
        app = app.merge(r);
    }
    app = app.merge(crate::settings::router(crate::settings::SettingsState { node, checks: Arc::new(checks) }));
    let token = Arc::new(token);
    let ui = Arc::new(UiSessions::new(port));
    app = app.merge(
        Router::new()
            .route("/api/v1/ui/login", post(crate::ui::new_login))
            .route("/api/v1/ui/logout", post(crate::ui::logout))
            .with_state(ui.clone()),
    );
    // the routes without the token: the daemon's proof that it knows it, the login link, the app's files
    let mut public = Router::new()
        .route("/api/v1/proof", get(proof))
        .with_state(token.clone())
        .route("/ui/login", get(crate::ui::login).with_state(ui.clone()));
    for (path, _, _) in crate::ui::ASSETS {
        public = public.route(path, get(crate::ui::asset));
    }
    public = public.route("/index.html", get(crate::ui::asset));
    app.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(Auth { token, ui: ui.clone() }, authenticate))
        .merge(public)
        .layer(axum::middleware::from_fn_with_state(ui, crate::ui::guard))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Req {
        n: Option<u32>,
    }

    async fn parse(body: &str) -> Result<Req, String> {
        use axum::extract::FromRequest;
        let req = axum::http::Request::builder()
            .method("POST")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .map_err(|e| e.to_string())?;
        JsonObject::<Req>::from_request(req, &()).await.map(|JsonObject(r)| r).map_err(|e| e.message)
    }

    #[tokio::test]
    async fn a_body_is_an_object_and_an_integral_float_an_integer() {
        assert_eq!(parse(r#"{"n": 2}"#).await, Ok(Req { n: Some(2) }));
        assert_eq!(parse(r#"{"n": 2.0, "extra": [1.0]}"#).await, Ok(Req { n: Some(2) }), "JSON Schema's integer");
        assert!(parse("[null]").await.unwrap_err().contains("must be a JSON object"), "serde would take it");
        assert!(parse(r#"{"n": 2.5}"#).await.unwrap_err().contains("invalid request body"));
        assert!(parse(r#"{"n": -1.0}"#).await.is_err(), "a u32 is not negative");
        assert!(parse("{").await.is_err());
    }
}
