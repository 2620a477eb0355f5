//! The local API v1 through the real daemon: the checked-in OpenAPI document is the served one, errors carry
//! their status codes, and the event log answers by long poll and by WebSocket, with job events as they happen.
//! The attacker here is anything on the machine without the token: it gets 401 everywhere, WebSocket included.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bitdust_api::{ErrorBody, Event, EventKind, Events, JobStarted, JobState};
use common::*;

struct Api {
    base: String,
    token: String,
}

impl Api {
    fn of(home: &Path) -> Self {
        let port = std::fs::read_to_string(home.join("api.port")).unwrap();
        Self {
            base: format!("http://127.0.0.1:{}/api/v1", port.trim()),
            token: std::fs::read_to_string(home.join("api.token")).unwrap().trim().to_string(),
        }
    }

    /// (status, body) of GET `path`.
    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut req = ureq::get(&format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        answer(req.call())
    }

    fn post(&self, path: &str, body: serde_json::Value) -> (u16, String) {
        let req = ureq::post(&format!("{}{path}", self.base)).set("Authorization", &format!("Bearer {}", self.token));
        answer(req.send_json(body))
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
        Err(e) => panic!("no answer: {e}"),
    }
}

fn error_of(body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body).unwrap_or_else(|e| panic!("not an ErrorBody ({e}): {body}")).error
}

#[test]
fn the_checked_in_openapi_document_is_the_served_one() {
    let printed = ok(&["openapi"]);
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap();
    assert!(
        printed.trim_end() == checked_in.trim_end(),
        "docs/openapi.json is out of date: cargo run -p bitdust -- openapi > docs/openapi.json"
    );
    let doc: serde_json::Value = serde_json::from_str(&printed).unwrap();
    for path in ["/api/v1/status", "/api/v1/events", "/api/v1/events/ws", "/api/v1/backups", "/api/v1/restores"] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(doc["components"]["securitySchemes"]["token"]["scheme"], "bearer");
}

#[test]
fn errors_have_their_status_and_events_arrive_by_long_poll_and_websocket() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("h");
    ok(&["--home", s(&home), "init", "--nickname", "solo", "--api-port", "0"]);
    let mut daemon = Running(
        bitdust()
            .args(["--home", s(&home), "daemon", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("daemon API", || run(&["--home", s(&home), "status"]).status.success());
    let api = Api::of(&home);

    // without the token: 401, on every route, the WebSocket too
    for path in ["/status", "/events", "/openapi.json", "/jobs/1", "/nope"] {
        assert_eq!(api.get(path, None).0, 401, "{path}");
        assert_eq!(api.get(path, Some("wrong")).0, 401, "{path}");
    }
    let ws_url = format!("{}/events/ws", api.base.replace("http://", "ws://"));
    let refused = tungstenite::connect(ws_url.as_str());
    assert!(matches!(refused, Err(tungstenite::Error::Http(ref r)) if r.status() == 401), "{refused:?}");

    // errors: 404 unknown job and path, 400 bad input, 404 unknown backup, 503 no suppliers to hire
    let token = Some(api.token.as_str());
    let (code, body) = api.get("/jobs/77", token);
    assert_eq!((code, error_of(&body)), (404, "no job 77".to_string()));
    assert_eq!(api.get("/nope", token).0, 404);
    // every error is an ErrorBody, also when the path or the method is wrong
    let (code, body) = api.get("/jobs/abc", token);
    assert_eq!(code, 400);
    error_of(&body);
    let (code, body) = api.post("/status", serde_json::json!({}));
    assert_eq!(code, 405);
    error_of(&body);
    let (code, body) = api.post("/suppliers/70000/replace", serde_json::json!({}));
    assert_eq!(code, 400);
    error_of(&body);
    assert_eq!(api.get("/events?since=abc", token).0, 400);
    assert_eq!(api.post("/backups", serde_json::json!({ "path": "relative/path" })).0, 400);
    assert_eq!(api.post("/backups", serde_json::json!({ "nonsense": 1 })).0, 400);
    let (code, body) = api.post("/restores", serde_json::json!({ "name": "nothing", "to": s(&tmp.path().join("o")) }));
    assert_eq!(code, 404, "{body}");
    assert!(error_of(&body).contains("no backup named"));
    let (code, body) = api.post("/suppliers/hire", serde_json::json!({}));
    assert_eq!(code, 503, "{body}");
    // every automaton kind, the runtime's and the storage wing's, with its table (for diagrams)
    let kinds: bitdust_api::AutomatonKinds = serde_json::from_str(&api.get("/automata/kinds", token).1).unwrap();
    let names: Vec<&str> = kinds.kinds.iter().map(|k| k.name.as_str()).collect();
    for k in ["relay_connection", "supplier_connection", "hire_fire", "rebuild"] {
        assert!(names.contains(&k), "{k} in {names:?}");
    }
    let conn = kinds.kinds.iter().find(|k| k.name == "supplier_connection").unwrap();
    assert!(conn.transitions.iter().any(|t| (t.from.as_str(), t.to.as_str()) == ("connected", "suspect")));
    assert!(conn.mermaid.starts_with("stateDiagram-v2"));
    let served: serde_json::Value = serde_json::from_str(&api.get("/openapi.json", token).1).unwrap();
    assert_eq!(served["info"]["title"], "bitdust local API");

    // the log so far (the relay connection automaton at least), then a long poll with nothing new waits
    let first: Events = serde_json::from_str(&api.get("/events?since=0", token).1).unwrap();
    assert!(!first.events.is_empty(), "the node logged its start");
    let ids: Vec<u64> = first.events.iter().map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "ids rise by one: {ids:?}");
    let last = first.last_id;
    let t = Instant::now();
    let empty: Events =
        serde_json::from_str(&api.get(&format!("/events?since={last}&timeout_ms=300"), token).1).unwrap();
    assert!(empty.events.is_empty() && t.elapsed() >= Duration::from_millis(250), "{empty:?}");

    // a WebSocket from `last` on, then a job (a backup that fails: no supplier is online)
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("{ws_url}?since={last}")).unwrap();
    request.headers_mut().insert("Authorization", format!("Bearer {}", api.token).parse().unwrap());
    let (mut socket, _) = tungstenite::connect(request).unwrap();
    let (code, body) = api.post("/backups", serde_json::json!({ "path": "/usr/share/doc" }));
    assert_eq!(code, 200, "{body}");
    let started: JobStarted = serde_json::from_str(&body).unwrap();
    assert!(started.event_id > last);
    // the long poll from `last` wakes with the job's first event
    let polled: Events =
        serde_json::from_str(&api.get(&format!("/events?since={last}&timeout_ms=30000"), token).1).unwrap();
    assert!(polled.events.iter().any(|e| e.id == started.event_id && matches!(e.kind, EventKind::JobStarted { .. })));
    // the WebSocket carries the job's start and its end, in id order
    let mut seen: Vec<Event> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.iter().any(|e| matches!(e.kind, EventKind::JobEnded { job, .. } if job == started.job)) {
        assert!(Instant::now() < deadline, "no end of job {} on the WebSocket: {seen:?}", started.job);
        if let tungstenite::Message::Text(text) = socket.read().unwrap() {
            seen.push(serde_json::from_str(&text).unwrap());
        }
    }
    assert!(seen.windows(2).all(|w| w[1].id > w[0].id), "{seen:?}");
    assert!(seen.iter().any(|e| matches!(e.kind, EventKind::JobStarted { job, .. } if job == started.job)));
    assert!(seen.iter().any(|e| e.kind == EventKind::JobEnded { job: started.job, state: JobState::Failed }));
    let (_, job) = api.get(&format!("/jobs/{}", started.job), token);
    let job: bitdust_api::Job = serde_json::from_str(&job).unwrap();
    assert!(job.error.unwrap().contains("too few suppliers online"));
    terminate(&mut daemon.0);
}

/// The web UI's doors, through the real daemon. The attackers: a web site open in the user's browser (cross-site
/// requests, WebSocket hijacking: refused by Origin, and the cookie is SameSite=Strict), a DNS-rebinding page (its
/// own Host: 403), anything on the machine without a session (401), and whoever holds a used or wrong login link
/// (expired codes and idle sessions: `bitdust_node::ui`'s unit tests).
/// Then the settings: a config is checked whole before it is written, and the key is exported sealed to a file.
#[test]
fn web_ui_login_session_origin_checks_and_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("h");
    ok(&["--home", s(&home), "init", "--nickname", "solo", "--api-port", "0"]);
    let mut daemon = Running(
        bitdust()
            .args(["--home", s(&home), "daemon", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("daemon API", || run(&["--home", s(&home), "status"]).status.success());
    let api = Api::of(&home);
    let origin = api.base.trim_end_matches("/api/v1").to_string();
    let agent = ureq::AgentBuilder::new().redirects(0).build();

    // the app's files are public code, served with the policy; a foreign Host gets 403 everywhere
    let index = agent.get(&format!("{origin}/")).call().unwrap();
    assert!(index.header("content-security-policy").unwrap().contains("default-src 'self'"));
    assert_eq!(index.header("x-content-type-options"), Some("nosniff"));
    assert!(index.into_string().unwrap().contains("/app.js"));
    let rebound = agent.get(&format!("{origin}/api/v1/status")).set("Host", "evil.example").call();
    assert_eq!(answer(rebound).0, 403);

    // a login link opens one session, once; the cookie is HttpOnly and SameSite=Strict; the redirect holds no code
    let link: bitdust_api::UiLogin =
        serde_json::from_str(&ok(&["--home", s(&home), "--json", "ui", "--no-open"])).unwrap();
    assert!(link.url.starts_with(&format!("{origin}/ui/login?code=")), "{}", link.url);
    let login = agent.get(&link.url).call().unwrap();
    assert_eq!((login.status(), login.header("location")), (303, Some("/")));
    let set = login.header("set-cookie").unwrap().to_string();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    assert_eq!(answer(agent.get(&link.url).call()).0, 401, "a link works once");
    let wrong = link.url.replace("code=", "code=00");
    assert_eq!(answer(agent.get(&wrong).call()).0, 401);

    let with_cookie = |method: &str, path: &str, origin_header: Option<&str>| {
        let mut r = agent.request(method, &format!("{origin}/api/v1{path}")).set("Cookie", &cookie);
        if let Some(o) = origin_header {
            r = r.set("Origin", o);
        }
        answer(r.send_json(serde_json::json!({})))
    };
    assert_eq!(answer(agent.get(&format!("{origin}/api/v1/status")).call()).0, 401, "no cookie");
    assert_eq!(answer(agent.get(&format!("{origin}/api/v1/status")).set("Cookie", &cookie).call()).0, 200);
    // a change through the cookie: only with the UI's own Origin (the hire answers 503: no supplier here)
    assert_eq!(with_cookie("POST", "/suppliers/hire", None).0, 403);
    assert_eq!(with_cookie("POST", "/suppliers/hire", Some("http://evil.example")).0, 403);
    assert_eq!(with_cookie("POST", "/suppliers/hire", Some("null")).0, 403);
    assert_eq!(with_cookie("POST", "/suppliers/hire", Some(&origin)).0, 503);
    // the WebSocket: refused from a foreign Origin even with the cookie, accepted from the UI's
    let ws = |o: &str| {
        let mut request = tungstenite::client::IntoClientRequest::into_client_request(format!(
            "{}/events/ws",
            api.base.replace("http://", "ws://")
        ))
        .unwrap();
        request.headers_mut().insert("Cookie", cookie.parse().unwrap());
        request.headers_mut().insert("Origin", o.parse().unwrap());
        tungstenite::connect(request)
    };
    assert!(matches!(ws("http://evil.example"), Err(tungstenite::Error::Http(ref r)) if r.status() == 403));
    assert!(ws(&origin).is_ok());
    // logout ends the session
    assert_eq!(with_cookie("POST", "/ui/logout", Some(&origin)).0, 200);
    assert_eq!(answer(agent.get(&format!("{origin}/api/v1/status")).set("Cookie", &cookie).call()).0, 401);

    // settings: a bad config is refused whole and nothing is written; a good one is written
    let config_file = home.join("config.toml");
    let before = std::fs::read_to_string(&config_file).unwrap();
    let current: bitdust_api::ConfigText = serde_json::from_str(&api.get("/config", Some(&api.token)).1).unwrap();
    let put = |toml: &str| {
        answer(
            ureq::put(&format!("{}/config", api.base))
                .set("Authorization", &format!("Bearer {}", api.token))
                .send_json(serde_json::json!({ "toml": toml })),
        )
    };
    for (bad, says) in [
        ("api_port = \"x\"".to_string(), "not a valid config"),
        (format!("bootstrap = [\"/ip4/1.2.3.4/tcp/1\"]\n{}", current.toml.replace("bootstrap = []\n", "")), "/p2p/"),
        (
            format!("{}\n[customer]\nsuppliers = 4\ndata_shards = 9\n", strip_section(&current.toml, "customer")),
            "layout",
        ),
    ] {
        let (code, body) = put(&bad);
        assert_eq!(code, 400, "{bad}: {body}");
        assert!(error_of(&body).contains(says), "{body}");
        assert_eq!(std::fs::read_to_string(&config_file).unwrap(), before, "nothing written");
    }
    let good = current.toml.replace("announce_interval_secs = 600", "announce_interval_secs = 601");
    assert_ne!(good, current.toml);
    let (code, body) = put(&good);
    assert_eq!(code, 200, "{body}");
    assert!(std::fs::read_to_string(&config_file).unwrap().contains("announce_interval_secs = 601"));

    // the key: to a new absolute path only, with a passphrase of 8 or more; sealed, mode 0600, not overwritten
    let key_file = tmp.path().join("solo.key");
    let export = |file: &str, passphrase: &str| {
        api.post("/key/export", serde_json::json!({ "file": file, "passphrase": passphrase }))
    };
    assert_eq!(export("relative.key", "long enough").0, 400);
    assert_eq!(export(s(&key_file), "short").0, 400);
    assert_eq!(export(s(&tmp.path().join("no/such/folder/k.key")), "long enough passphrase").0, 400);
    let (code, body) = export(s(&key_file), "long enough passphrase");
    assert_eq!(code, 200, "{body}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&key_file).unwrap();
    let keys = bitdust_core::keys::NodeKeys::import_text_with(&text, Some("long enough passphrase")).unwrap();
    let exported: bitdust_api::KeyExported = serde_json::from_str(&body).unwrap();
    assert_eq!(keys.peer_id().to_string(), exported.peer_id);
    assert!(bitdust_core::keys::NodeKeys::import_text_with(&text, Some("another passphrase")).is_err());
    assert_eq!(export(s(&key_file), "long enough passphrase").0, 409, "never overwritten");
    terminate(&mut daemon.0);
}

/// `toml` without its `[name]` table.
fn strip_section(toml: &str, name: &str) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in toml.lines() {
        if line.starts_with('[') {
            skipping = line.trim() == format!("[{name}]") || line.trim().starts_with(&format!("[{name}."));
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
