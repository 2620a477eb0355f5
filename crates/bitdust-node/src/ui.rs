//! The web UI's side of the local API server: the app's files (compiled into the binary, nothing fetched at run
//! time), the one-time login links that `bitdust ui` prints, the browser sessions they open, and the checks a
//! browser-facing server needs against other web sites:
//!
//! - **DNS rebinding**: every request's `Host` must be this API's own (`127.0.0.1:PORT`, `localhost:PORT` or
//!   `[::1]:PORT`), else 403: a page of `evil.example` whose name was re-pointed at 127.0.0.1 sends its own name;
//! - **cross-site requests** (CSRF, cross-site WebSocket hijacking): a request that carries a foreign `Origin` is
//!   refused (403), and a request authenticated by the session cookie that changes state (any method but GET and
//!   HEAD) must carry this API's own `Origin`; the cookie is `SameSite=Strict` besides;
//! - **the session**: a login link carries a one-time code (32 random bytes, valid [`LOGIN_CODE_TTL`]); opening it
//!   sets an `HttpOnly`, `SameSite=Strict` cookie and redirects to `/`, so the secret is never in a URL after
//!   login; sessions end after [`SESSION_IDLE`] unused, at logout, or when the daemon stops (they live in memory);
//! - **what the app shows**: a `Content-Security-Policy` with `default-src 'self'` (no inline script, nothing
//!   from elsewhere), `X-Content-Type-Options: nosniff` and `frame-ancestors 'none'`; the app writes text from
//!   other users only as text nodes, and files from them are served as `attachment` downloads (see the messages
//!   wing), never rendered in this origin.
//!
//! | method | path | auth | answer |
//! | --- | --- | --- | --- |
//! | GET | `/`, `/app.js`, ... | none (public code) | the app's files |
//! | GET | `/ui/login?code=CODE` | the code | 303 to `/` with the session cookie, or 401 |
//! | POST | `/api/v1/ui/login` | token or session | [`bitdust_api::UiLogin`]: a new one-time login link |
//! | POST | `/api/v1/ui/logout` | token or session | [`bitdust_api::UiLogout`]: this session ended |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bitdust_api::{ErrorBody, UiLogin, UiLogout};
use serde::Deserialize;

use crate::http::{ApiError, ApiResult, ErrorKind};

/// How long a login link works (once).
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(120);
/// Login links not yet used, at most (the oldest is dropped).
pub const MAX_LOGIN_CODES: usize = 16;
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions at once, at most (the least recently used ends).
pub const MAX_SESSIONS: usize = 64;

/// The policy of every answer: only this origin's own files and connections, no frames, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The app's files: path, content type, bytes.
pub const ASSETS: &[(&str, &str, &str)] = &[
    ("/", "text/html; charset=utf-8", include_str!("../ui/index.html")),
    ("/app.js", "text/javascript; charset=utf-8", include_str!("../ui/app.js")),
    ("/pages.js", "text/javascript; charset=utf-8", include_str!("../ui/pages.js")),
    ("/style.css", "text/css; charset=utf-8", include_str!("../ui/style.css")),
    ("/favicon.svg", "image/svg+xml", include_str!("../ui/favicon.svg")),
];

/// The login codes and sessions of one daemon (in memory: a restart logs every browser out).
#[derive(Debug)]
pub struct UiSessions {
    port: u16,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// BLAKE3 of a code -> when it expires.
    codes: HashMap<[u8; 32], Instant>,
    /// BLAKE3 of a session secret -> when it was last used.
    sessions: HashMap<[u8; 32], Instant>,
}

impl UiSessions {
    /// The sessions of the API on `port` (which the `Host` and `Origin` checks and the cookie name use).
    pub fn new(port: u16) -> Self {
        Self { port, inner: Mutex::new(Inner::default()) }
    }

    /// The API's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The session cookie's name: one per port, since browsers share cookies between the ports of a host.
    pub fn cookie_name(&self) -> String {
        format!("bitdust_session_{}", self.port)
    }

    /// A new one-time login code (hex), valid [`LOGIN_CODE_TTL`].
    pub fn new_code(&self) -> String {
        let code: [u8; 32] = rand::random();
        let now = Instant::now();
        if let Ok(mut inner) = self.inner.lock() {
            inner.codes.retain(|_, expires| *expires > now);
            if inner.codes.len() >= MAX_LOGIN_CODES {
                if let Some(oldest) = inner.codes.iter().min_by_key(|(_, e)| **e).map(|(k, _)| *k) {
                    inner.codes.remove(&oldest);
                }
            }
            inner.codes.insert(*blake3::hash(&code).as_bytes(), now + LOGIN_CODE_TTL);
        }
        hex::encode(code)
    }

    /// Uses `code` up: a new session secret (hex) if it was valid and unexpired, else `None`.
    pub fn redeem(&self, code: &str) -> Option<String> {
        let code = hex::decode(code).ok()?;
        let now = Instant::now();
        let mut inner = self.inner.lock().ok()?;
        let expires = inner.codes.remove(blake3::hash(&code).as_bytes())?;
        if expires <= now {
            return None;
        }
        inner.sessions.retain(|_, used| now.duration_since(*used) < SESSION_IDLE);
        if inner.sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = inner.sessions.iter().min_by_key(|(_, u)| **u).map(|(k, _)| *k) {
                inner.sessions.remove(&oldest);
            }
        }
        let secret: [u8; 32] = rand::random();
        inner.sessions.insert(*blake3::hash(&secret).as_bytes(), now);
        Some(hex::encode(secret))
    }

    /// The session secret in `headers`' cookie, if it names a live session (whose use is recorded).
    pub fn check(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = self.secret_in(headers) else { return false };
        let now = Instant::now();
        let Ok(mut inner) = self.inner.lock() else { return false };
        match inner.sessions.get_mut(blake3::hash(&secret).as_bytes()) {
            Some(used) if now.duration_since(*used) < SESSION_IDLE => {
                *used = now;
                true
            }
            _ => false,
        }
    }

    /// Ends the session in `headers`' cookie; whether there was one.
    pub fn end(&self, headers: &HeaderMap) -> bool {
        let Some(secret) = self.secret_in(headers) else { return false };
        self.inner.lock().is_ok_and(|mut inner| inner.sessions.remove(blake3::hash(&secret).as_bytes()).is_some())
    }

    /// The bytes of this API's session cookie in `headers`.
    fn secret_in(&self, headers: &HeaderMap) -> Option<Vec<u8>> {
        let name = self.cookie_name();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == name)
            .and_then(|(_, v)| hex::decode(v).ok())
            .filter(|v| v.len() == 32)
    }

    /// Whether `host` (a `Host` header) is this API's own.
    pub fn host_ok(&self, host: &str) -> bool {
        let p = self.port;
        [format!("127.0.0.1:{p}"), format!("localhost:{p}"), format!("[::1]:{p}")].iter().any(|h| h == host)
    }

    /// Whether `origin` (an `Origin` header) is this API's own.
    pub fn origin_ok(&self, origin: &str) -> bool {
        origin.strip_prefix("http://").is_some_and(|host| self.host_ok(host))
    }
}

/// The outermost layer, on every request: a foreign `Host` or `Origin` gets 403; every answer gets the security
/// headers.
pub async fn guard(State(ui): State<Arc<UiSessions>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    if !ui.host_ok(host) {
        return forbidden("this API answers only to 127.0.0.1 and localhost (Host header refused)");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        if !origin.to_str().is_ok_and(|o| ui.origin_ok(o)) {
            return forbidden("requests from other web sites are refused (Origin header)");
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

/// Whether a request authenticated by its cookie may go on: reading always; changing state only with this API's
/// own `Origin` (the guard already refused foreign ones; this refuses none at all).
pub fn cookie_request_ok(ui: &UiSessions, method: &Method, headers: &HeaderMap) -> bool {
    if method == Method::GET || method == Method::HEAD {
        return true;
    }
    headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()).is_some_and(|o| ui.origin_ok(o))
}

/// 403 with an [`ErrorBody`].
pub fn forbidden(message: &str) -> Response {
    (StatusCode::FORBIDDEN, Json(ErrorBody { error: message.into() })).into_response()
}

/// One of the app's files.
pub async fn asset(request: Request) -> Response {
    let path = request.uri().path();
    let path = if path == "/index.html" { "/" } else { path };
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, kind, body)) => {
            ([(header::CONTENT_TYPE, *kind), (header::CACHE_CONTROL, "no-cache")], *body).into_response()
        }
        None => ApiError::not_found("no such page").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    code: String,
}

/// Opens a login link: the session cookie and a redirect to `/`, or 401 with what to do.
pub(crate) async fn login(
    State(ui): State<Arc<UiSessions>>,
    q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let code = q.map(|Query(q)| q.code).unwrap_or_default();
    match ui.redeem(&code) {
        Some(secret) => {
            let cookie = format!(
                "{}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                ui.cookie_name(),
                SESSION_IDLE.as_secs()
            );
            (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/".to_string())]).into_response()
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "This login link is used up or expired. Run `bitdust ui` for a new one.\n",
        )
            .into_response(),
    }
}

/// A new one-time login link for the web UI (what `bitdust ui` prints).
#[utoipa::path(
    post, path = "/api/v1/ui/login", tag = "ui",
    responses((status = 200, body = UiLogin))
)]
pub(crate) async fn new_login(State(ui): State<Arc<UiSessions>>) -> ApiResult<UiLogin> {
    let code = ui.new_code();
    Ok(Json(UiLogin {
        url: format!("http://127.0.0.1:{}/ui/login?code={code}", ui.port),
        expires_in_s: LOGIN_CODE_TTL.as_secs(),
    }))
}

/// Ends the browser session this request comes from (its cookie).
#[utoipa::path(post, path = "/api/v1/ui/logout", tag = "ui", responses((status = 200, body = UiLogout)))]
pub(crate) async fn logout(State(ui): State<Arc<UiSessions>>, headers: HeaderMap) -> Response {
    let ended = ui.end(&headers);
    let clear = format!("{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", ui.cookie_name());
    ([(header::SET_COOKIE, clear)], Json(UiLogout { ended })).into_response()
}

/// 401 for a request with neither the token nor a session.
pub(crate) fn unauthorized() -> Response {
    ApiError::new(ErrorKind::Unauthorized, "missing or wrong API token or session (run `bitdust ui` to log in)")
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(ui: &UiSessions, secret: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {}={secret}", ui.cookie_name()).parse().unwrap());
        h
    }

    #[test]
    fn a_code_opens_one_session_once() {
        let ui = UiSessions::new(9400);
        let code = ui.new_code();
        let secret = ui.redeem(&code).expect("a fresh code works");
        assert!(ui.redeem(&code).is_none(), "a code works once");
        assert!(ui.check(&cookie(&ui, &secret)));
        assert!(!ui.check(&cookie(&ui, &hex::encode([7u8; 32]))), "an unknown secret is no session");
        assert!(!ui.check(&cookie(&UiSessions::new(9401), &secret)), "another port's cookie name");
        assert!(ui.end(&cookie(&ui, &secret)));
        assert!(!ui.check(&cookie(&ui, &secret)), "logged out");
        assert!(ui.redeem("zz").is_none() && ui.redeem(&hex::encode([1u8; 32])).is_none());
        // an expired code opens nothing, and neither does a session unused past its idle time
        let stale = ui.new_code();
        let past = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        ui.inner.lock().unwrap().codes.values_mut().for_each(|e| *e = past);
        assert!(ui.redeem(&stale).is_none(), "an expired code");
        let fresh = ui.new_code();
        let secret = ui.redeem(&fresh).unwrap();
        if let Some(idle) = Instant::now().checked_sub(SESSION_IDLE + Duration::from_secs(1)) {
            ui.inner.lock().unwrap().sessions.values_mut().for_each(|u| *u = idle);
            assert!(!ui.check(&cookie(&ui, &secret)), "an idle session");
        }
    }

    #[test]
    fn codes_and_sessions_are_bounded() {
        let ui = UiSessions::new(1);
        let codes: Vec<String> = (0..MAX_LOGIN_CODES + 3).map(|_| ui.new_code()).collect();
        assert_eq!(ui.inner.lock().unwrap().codes.len(), MAX_LOGIN_CODES);
        for c in &codes[3..] {
            assert!(ui.redeem(c).is_some());
        }
        for _ in 0..MAX_SESSIONS {
            let c = ui.new_code();
            ui.redeem(&c).unwrap();
        }
        assert_eq!(ui.inner.lock().unwrap().sessions.len(), MAX_SESSIONS);
    }

    #[test]
    fn hosts_and_origins() {
        let ui = UiSessions::new(9400);
        assert!(ui.host_ok("127.0.0.1:9400") && ui.host_ok("localhost:9400") && ui.host_ok("[::1]:9400"));
        assert!(!ui.host_ok("evil.example:9400") && !ui.host_ok("127.0.0.1:9401") && !ui.host_ok("127.0.0.1"));
        assert!(ui.origin_ok("http://localhost:9400"));
        assert!(
            !ui.origin_ok("https://localhost:9400") && !ui.origin_ok("http://evil.example") && !ui.origin_ok("null")
        );
        let mut h = HeaderMap::new();
        assert!(cookie_request_ok(&ui, &Method::GET, &h));
        assert!(!cookie_request_ok(&ui, &Method::POST, &h), "no Origin on a state change");
        h.insert(header::ORIGIN, "http://127.0.0.1:9400".parse().unwrap());
        assert!(cookie_request_ok(&ui, &Method::POST, &h));
    }
}
