//! The CLI's client of the local REST API.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bitdust_node::Home;
use serde_json::Value;

/// A client bound to one home's daemon.
pub struct Client {
    base: String,
    token: String,
    home: String,
}

impl Client {
    /// The client for the daemon of `home`: port from `<home>/api.port` (written by the running daemon),
    /// else from the config; token from `<home>/api.token`.
    pub fn for_home(home: &Home) -> Result<Self> {
        if !home.is_initialized() {
            bail!(
                "no identity in {} (run `bitdust --home {} init --nickname NAME` first)",
                home.root().display(),
                home.root().display()
            );
        }
        let port = match std::fs::read_to_string(home.path("api.port")) {
            Ok(p) => p.trim().parse::<u16>().context("reading api.port")?,
            Err(_) => home.config()?.api_port,
        };
        Ok(Self {
            base: format!("http://127.0.0.1:{port}/api/v1"),
            token: home.api_token()?,
            home: home.root().display().to_string(),
        })
    }

    fn handle(&self, r: Result<ureq::Response, ureq::Error>) -> Result<Value> {
        match r {
            Ok(resp) => resp.into_json::<Value>().context("reading the daemon's answer"),
            Err(ureq::Error::Status(401, _)) => {
                bail!("the daemon refused our API token (wrong token in {}/api.token?)", self.home)
            }
            Err(ureq::Error::Status(code, resp)) => {
                let body: Value = resp.into_json().unwrap_or(Value::Null);
                let msg = body.get("error").and_then(Value::as_str).unwrap_or("no details").to_string();
                bail!("{msg} (HTTP {code})")
            }
            Err(ureq::Error::Transport(t)) => bail!(
                "the daemon is not running ({} does not answer: {t}); start it with `bitdust --home {} daemon`",
                self.base,
                self.home
            ),
        }
    }

    fn agent() -> ureq::Agent {
        ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(3)).timeout(Duration::from_secs(600)).build()
    }

    /// GET `path`.
    pub fn get(&self, path: &str) -> Result<Value> {
        let r = Self::agent()
            .get(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .call();
        self.handle(r)
    }

    /// POST `path` with a JSON body.
    pub fn post(&self, path: &str, body: Value) -> Result<Value> {
        let r = Self::agent()
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token))
            .send_json(body);
        self.handle(r)
    }

    /// Waits for job `id` to end, showing a progress bar on a terminal (unless `quiet`). Returns the job's
    /// result, or its error.
    pub fn wait_job(&self, id: u64, label: &str, quiet: bool) -> Result<Value> {
        let bar = if !quiet && std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_message(label.to_string());
            Some(b)
        } else {
            None
        };
        // Long poll: the daemon answers as soon as the job ends, or after `wait` to refresh the bar.
        let wait = if bar.is_some() { 250 } else { 10_000 };
        loop {
            let job = self.get(&format!("/jobs/{id}?wait_ms={wait}"))?;
            if let Some(b) = &bar {
                b.set_length(job["total_bytes"].as_u64().unwrap_or(0));
                b.set_position(job["done_bytes"].as_u64().unwrap_or(0));
            }
            match job["state"].as_str() {
                Some("running") => {}
                Some("done") => {
                    if let Some(b) = bar {
                        b.finish_and_clear();
                    }
                    return Ok(job["result"].clone());
                }
                _ => {
                    if let Some(b) = bar {
                        b.abandon();
                    }
                    return Err(anyhow!("{}", job["error"].as_str().unwrap_or("job failed")));
                }
            }
        }
    }
}
