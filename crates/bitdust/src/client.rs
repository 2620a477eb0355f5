//! The CLI's client of a daemon's local API v1, typed with [`bitdust_api`]: requests and answers are the same
//! types the daemon serves. Jobs are followed through the event log (`GET /api/v1/events`), which also drives
//! the progress bar.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use bitdust_core::human_bytes;

use anyhow::{anyhow, bail, Context, Result};
use bitdust_api::{
    BackupReport, BackupRequest, ErrorBody, EventKind, Events, Job, JobResult, JobStarted, JobState, Proof,
    RestoreReport, RestoreRequest,
};
use bitdust_node::Home;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// How long one events long poll waits when a progress bar is shown (it redraws between polls).
const BAR_POLL_MS: u64 = 250;

/// How a command waits for a job (a backup, a restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// A progress bar on stderr if it is a terminal.
    Bar,
    /// Nothing until it ends.
    Quiet,
    /// A JSON line on stdout per progress event (`--json`).
    JsonLines,
}

/// One `--json` progress line, as restic's status lines: `message_type` `status`, `seconds_elapsed`,
/// `percent_done` (0 to 1), `total_bytes`, `bytes_done`, `seconds_remaining` (once there is a rate), and for a
/// backup `new_bytes` (stored) and `deduplicated_bytes` (found in earlier versions).
fn status_line(elapsed: Duration, done: u64, total: u64, new: Option<u64>) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut v = serde_json::json!({
        "message_type": "status",
        "seconds_elapsed": secs,
        "percent_done": if total > 0 { (done as f64 / total as f64).min(1.0) } else { 0.0 },
        "total_bytes": total,
        "bytes_done": done,
    });
    if rate > 0.0 && total >= done {
        v["seconds_remaining"] = serde_json::json!((total - done) as f64 / rate);
    }
    if let Some(new) = new {
        v["new_bytes"] = serde_json::json!(new);
        v["deduplicated_bytes"] = serde_json::json!(done.saturating_sub(new));
    }
    v.to_string()
}
/// How long one job long poll waits when no bar is drawn (the daemon's limit).
const JOB_WAIT_MS: u64 = 30_000;

/// A client bound to one home's daemon.
pub struct Client {
    base: String,
    /// The home, whose token is read at each request (the daemon writes a new one at every start).
    home_dir: Home,
    home: String,
    /// The token the daemon answering on the port last proved it knows (checked before a token is first sent).
    verified: std::cell::RefCell<Option<String>>,
    /// One HTTP agent for every request (it keeps the connection to the daemon open between them).
    agent: ureq::Agent,
}

impl Client {
    /// The client for the daemon of `home`: port from `<home>/api.port` (written by the running daemon),
    /// else from the config; token from `<home>/api.token`.
    ///
    /// # Errors
    /// If the home has no identity or its files are unreadable.
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
            home_dir: home.clone(),
            home: home.root().display().to_string(),
            verified: std::cell::RefCell::new(None),
            agent: Self::new_agent(),
        })
    }

    /// The home's token now, once the daemon proved it knows it.
    ///
    /// # Errors
    /// If the token is unreadable or the daemon cannot prove it.
    fn token(&self) -> Result<String> {
        let token = self.home_dir.api_token()?;
        match self.verify_daemon(&token) {
            Ok(()) => Ok(token),
            Err(e) => {
                // the daemon may have just started and written a new token: read it once more
                let again = self.home_dir.api_token()?;
                if again == token {
                    return Err(e);
                }
                self.verify_daemon(&again)?;
                Ok(again)
            }
        }
    }

    /// Checks that whatever answers on the API port is this home's daemon, before the token goes out: it must
    /// prove it knows the token (`GET /api/v1/proof` for a random nonce, see
    /// [`bitdust_node::http::token_proof`]). A program that took the port while the daemon was stopped fails this
    /// and never receives the token.
    ///
    /// # Errors
    /// If nothing answers, or the answer is not the proof.
    fn verify_daemon(&self, token: &str) -> Result<()> {
        if self.verified.borrow().as_deref() == Some(token) {
            return Ok(());
        }
        let nonce: [u8; 32] = rand::random();
        let r = self.agent.get(&format!("{}/proof?nonce={}", self.base, hex::encode(nonce))).call();
        let answer: Result<Proof> = self.handle(r);
        let expected = bitdust_node::http::token_proof(token, &nonce);
        let ok = answer
            .as_ref()
            .is_ok_and(|p| bitdust_node::http::constant_time_eq(p.proof.as_bytes(), expected.as_bytes()));
        if !ok {
            if let Err(e) = answer {
                if e.to_string().contains("daemon is not running") {
                    return Err(e);
                }
            }
            bail!(
                "whatever answers on {} is not the daemon of {} (it could not prove it knows the API token, which was \
                 not sent); stop it, or start the daemon with `bitdust --home {} daemon`",
                self.base,
                self.home,
                self.home
            );
        }
        *self.verified.borrow_mut() = Some(token.to_string());
        Ok(())
    }

    fn handle<T: DeserializeOwned>(&self, r: Result<ureq::Response, ureq::Error>) -> Result<T> {
        match r {
            Ok(resp) => resp.into_json::<T>().context("reading the daemon's answer"),
            Err(ureq::Error::Status(401, _)) => {
                bail!("the daemon refused our API token (wrong token in {}/api.token?)", self.home)
            }
            Err(ureq::Error::Status(code, resp)) => {
                let msg = resp.into_json::<ErrorBody>().map(|b| b.error).unwrap_or_else(|_| "no details".into());
                bail!("{msg} (HTTP {code})")
            }
            Err(ureq::Error::Transport(t)) => bail!(
                "the daemon is not running ({} does not answer: {t}); start it with `bitdust --home {} daemon`",
                self.base,
                self.home
            ),
        }
    }

    fn new_agent() -> ureq::Agent {
        ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(3)).timeout(Duration::from_secs(600)).build()
    }

    /// GET `path` (under `/api/v1`).
    ///
    /// # Errors
    /// The daemon's error, or that it does not run.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let token = self.token()?;
        let r = self.agent.get(&format!("{}{path}", self.base)).set("Authorization", &format!("Bearer {token}")).call();
        self.handle(r)
    }

    /// POST `path` (under `/api/v1`) with a JSON body.
    ///
    /// # Errors
    /// The daemon's error, or that it does not run.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let token = self.token()?;
        let body = serde_json::to_value(body)?;
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {token}"))
            .send_json(body);
        self.handle(r)
    }

    /// DELETE `path` (under `/api/v1`).
    ///
    /// # Errors
    /// The daemon's error, or that it does not run.
    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let token = self.token()?;
        let r =
            self.agent.delete(&format!("{}{path}", self.base)).set("Authorization", &format!("Bearer {token}")).call();
        self.handle(r)
    }

    /// Backs up `path` and waits for the report, following it as `follow` says.
    ///
    /// # Errors
    /// The daemon's error or the job's.
    pub fn backup(&self, path: &Path, follow: Follow) -> Result<BackupReport> {
        self.backup_with(
            BackupRequest { path: path.to_string_lossy().into_owned(), ..BackupRequest::default() },
            follow,
        )
    }

    /// Backs up as `request` says (path and excludes) and waits for the report.
    ///
    /// # Errors
    /// The daemon's error or the job's.
    pub fn backup_with(&self, request: BackupRequest, follow: Follow) -> Result<BackupReport> {
        let started: JobStarted = self.post("/backups", &request)?;
        match self.wait_job(started, "backup", follow)? {
            JobResult::Backup(r) => Ok(r),
            JobResult::Restore(_) => bail!("the daemon answered a backup job with a restore report"),
        }
    }

    /// Restores as `request` says and waits for the report.
    ///
    /// # Errors
    /// The daemon's error or the job's.
    pub fn restore(&self, request: &RestoreRequest, follow: Follow) -> Result<RestoreReport> {
        let started: JobStarted = self.post("/restores", request)?;
        match self.wait_job(started, "restore", follow)? {
            JobResult::Restore(r) => Ok(r),
            JobResult::Backup(_) => bail!("the daemon answered a restore job with a backup report"),
        }
    }

    /// Waits for job `started` (a `label` job: `backup` or `restore`) to end and returns its result, or its error.
    /// With [`Follow::Bar`] on a terminal it follows the job through the event log and draws a progress bar (a
    /// backup's splits new bytes from deduplicated ones); with [`Follow::JsonLines`] it prints each progress event
    /// as a JSON line on stdout (restic's `--json` status lines); if the log moved on faster than we read it (a gap
    /// in the ids), the job itself is asked. Otherwise it long-polls the job, which answers once it ends.
    ///
    /// # Errors
    /// The job's error, or the daemon's.
    pub fn wait_job(&self, started: JobStarted, label: &str, follow: Follow) -> Result<JobResult> {
        let bar = (follow == Follow::Bar && std::io::stderr().is_terminal()).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b.set_prefix(format!("{label:<7}"));
            b
        });
        let lines = follow == Follow::JsonLines;
        let began = std::time::Instant::now();
        let id = started.job;
        if bar.is_none() && !lines {
            // nothing to draw: the job's own long poll answers once, when it ends
            loop {
                let job: Job = self.get(&format!("/jobs/{id}?wait_ms={JOB_WAIT_MS}"))?;
                match job.state {
                    JobState::Running => continue,
                    JobState::Done => return job.result.ok_or_else(|| anyhow!("job {id} ended without a result")),
                    JobState::Failed => return Err(anyhow!("{}", job.error.unwrap_or_else(|| "job failed".into()))),
                }
            }
        }
        let poll = BAR_POLL_MS;
        let mut since = started.event_id.saturating_sub(1);
        loop {
            let page: Events = self.get(&format!("/events?since={since}&timeout_ms={poll}"))?;
            let gap = page.events.first().is_some_and(|e| e.id > since + 1);
            let mut ended = false;
            for e in &page.events {
                since = e.id;
                match &e.kind {
                    EventKind::JobProgress { job, done_bytes, total_bytes, new_bytes } if *job == id => {
                        let backup = label == "backup";
                        if let Some(bar) = &bar {
                            bar.set_length(*total_bytes);
                            bar.set_position(*done_bytes);
                            if backup {
                                bar.set_message(format!(
                                    "{} new, {} deduplicated",
                                    human_bytes(*new_bytes),
                                    human_bytes(done_bytes.saturating_sub(*new_bytes))
                                ));
                            }
                        }
                        if lines {
                            let status =
                                status_line(began.elapsed(), *done_bytes, *total_bytes, backup.then_some(*new_bytes));
                            crate::out!("{status}");
                        }
                    }
                    EventKind::JobEnded { job, .. } if *job == id => ended = true,
                    _ => {}
                }
            }
            // at its end, after a gap, when nothing came (the job may have ended before we looked, or the daemon
            // restarted and its ids began again), ask the job itself
            let restarted = page.last_id < since;
            if ended || gap || restarted || page.events.is_empty() {
                let job: Job = self.get(&format!("/jobs/{id}"))?;
                match job.state {
                    JobState::Running => continue,
                    JobState::Done => {
                        if let Some(bar) = &bar {
                            bar.finish_and_clear();
                        }
                        return job.result.ok_or_else(|| anyhow!("job {id} ended without a result"));
                    }
                    JobState::Failed => {
                        if let Some(bar) = &bar {
                            bar.abandon();
                        }
                        return Err(anyhow!("{}", job.error.unwrap_or_else(|| "job failed".into())));
                    }
                }
            }
        }
    }
}
