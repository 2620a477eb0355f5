//! Jobs: long-running operations (a backup, a restore) that the API starts and reports on. Each job gets a
//! [`Progress`] handle; its end is signalled, so a client can long-poll it ([`Jobs::wait`]). The last
//! [`KEEP_JOBS`] jobs are kept.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// Jobs kept for the API (older ones are forgotten).
pub const KEEP_JOBS: usize = 100;

/// A long-running operation the API reports on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// Id.
    pub id: u64,
    /// `backup` or `restore`.
    pub kind: String,
    /// What it works on.
    pub target: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Bytes processed so far.
    pub done_bytes: u64,
    /// Bytes in total (0 until known).
    pub total_bytes: u64,
    /// Result when done.
    pub result: Option<serde_json::Value>,
    /// Error when failed.
    pub error: Option<String>,
}

/// Progress reporting handle for a job.
#[derive(Clone)]
pub struct Progress {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
}

impl Progress {
    /// A detached progress counter (for in-process use).
    pub fn new() -> Self {
        Self { done: Arc::new(AtomicU64::new(0)), total: Arc::new(AtomicU64::new(0)) }
    }
    /// Sets the total.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    /// Adds processed bytes.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
    /// (done, total).
    pub fn get(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// The jobs of a node. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    jobs: Mutex<BTreeMap<u64, (Job, Progress)>>,
    /// Bumped each time a job ends (what [`Jobs::wait`] waits on).
    ended: tokio::sync::watch::Sender<u64>,
    next: AtomicU64,
}

impl Jobs {
    /// Starts a job of `kind` on `target`; `work` gets its progress handle and returns its result.
    /// Returns the job id.
    pub fn spawn<F, Fut>(&self, kind: &str, target: String, work: F) -> u64
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<serde_json::Value>> + Send + 'static,
    {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed) + 1;
        let progress = Progress::new();
        let job = Job {
            id,
            kind: kind.into(),
            target,
            state: "running".into(),
            done_bytes: 0,
            total_bytes: 0,
            result: None,
            error: None,
        };
        if let Ok(mut jobs) = self.inner.jobs.lock() {
            while jobs.len() >= KEEP_JOBS {
                let Some(first) = jobs.keys().next().copied() else {
                    break;
                };
                jobs.remove(&first);
            }
            jobs.insert(id, (job, progress.clone()));
        }
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let result = work(progress).await;
            if let Ok(mut jobs) = inner.jobs.lock() {
                if let Some((job, _)) = jobs.get_mut(&id) {
                    match result {
                        Ok(v) => {
                            job.state = "done".into();
                            job.result = Some(v);
                        }
                        Err(e) => {
                            job.state = "failed".into();
                            job.error = Some(format!("{e:#}"));
                        }
                    }
                }
            }
            inner.ended.send_modify(|n| *n = n.wrapping_add(1));
        });
        id
    }

    /// Job `id` once it has ended, or its state after `timeout` if it is still running (a long poll: clients
    /// learn of the end at once instead of on their next poll). `None` for an unknown job.
    pub async fn wait(&self, id: u64, timeout: Duration) -> Option<Job> {
        let mut ended = self.inner.ended.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.get(id)?;
            if job.state != "running" {
                return Some(job);
            }
            match tokio::time::timeout_at(deadline, ended.changed()).await {
                Ok(Ok(())) => continue,
                _ => return self.get(id),
            }
        }
    }

    /// A job's current state.
    pub fn get(&self, id: u64) -> Option<Job> {
        let jobs = self.inner.jobs.lock().ok()?;
        let (job, progress) = jobs.get(&id)?;
        let mut job = job.clone();
        (job.done_bytes, job.total_bytes) = progress.get();
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_reports_progress_then_its_result_and_a_failure_its_error() {
        let jobs = Jobs::default();
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let id = jobs.spawn("backup", "/x".into(), |p| async move {
            p.set_total(10);
            p.add(4);
            let _ = go_rx.await;
            Ok(serde_json::json!({"files": 3}))
        });
        // still running: the long poll returns after its timeout with the progress so far
        let running = jobs.wait(id, Duration::from_millis(50)).await.unwrap();
        assert_eq!(running.state, "running");
        let _ = go_tx.send(());
        let done = jobs.wait(id, Duration::from_secs(10)).await.unwrap();
        assert_eq!((done.state.as_str(), done.done_bytes, done.total_bytes), ("done", 4, 10));
        assert_eq!(done.result.unwrap()["files"], 3);
        let failed = jobs.spawn("restore", "y".into(), |_| async { Err(anyhow::anyhow!("no backup named y")) });
        let failed = jobs.wait(failed, Duration::from_secs(10)).await.unwrap();
        assert_eq!(failed.state, "failed");
        assert!(failed.error.unwrap().contains("no backup named y"));
        assert!(jobs.get(999).is_none());
    }
}
