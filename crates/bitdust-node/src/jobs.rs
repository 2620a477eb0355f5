//! Jobs: long-running operations (a backup, a restore) that the API starts and reports on. Each job gets a
//! [`Progress`] handle; its start, its progress (at most every [`PROGRESS_EVERY`]) and its end go to the event
//! log, and its end is signalled, so a client can also long-poll it ([`Jobs::wait`]). The last [`KEEP_JOBS`] jobs
//! are kept.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use bitdust_api::{EventKind, Job, JobResult, JobState};

use crate::events::Events;

/// Jobs kept for the API (older ones are forgotten).
pub const KEEP_JOBS: usize = 100;
/// Longest pause between two progress events of a running job whose progress changed.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Progress reporting handle for a job.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    done: Arc<AtomicU64>,
    total: Arc<AtomicU64>,
    new: Arc<AtomicU64>,
}

impl Progress {
    /// A detached progress counter (for in-process use).
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the total, in bytes.
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
    /// Adds processed bytes.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds bytes of a backup that had to be stored (not found in an earlier version: deduplicated bytes are the
    /// rest of `done`).
    pub fn add_new(&self, n: u64) {
        self.new.fetch_add(n, Ordering::Relaxed);
    }
    /// (done, total), in bytes.
    pub fn get(&self) -> (u64, u64) {
        (self.done.load(Ordering::Relaxed), self.total.load(Ordering::Relaxed))
    }
    /// (done, total, new), in bytes.
    pub fn counts(&self) -> (u64, u64, u64) {
        let (done, total) = self.get();
        (done, total, self.new.load(Ordering::Relaxed))
    }
}

/// The jobs of a node. Cheap to clone (shared state).
#[derive(Clone, Debug)]
pub struct Jobs {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    jobs: Mutex<BTreeMap<u64, (Job, Progress)>>,
    /// Bumped each time a job ends (what [`Jobs::wait`] waits on).
    ended: tokio::sync::watch::Sender<u64>,
    next: AtomicU64,
    events: Events,
}

impl Jobs {
    /// The jobs, logging to `events`.
    pub fn new(events: Events) -> Self {
        Self {
            inner: Arc::new(Inner {
                jobs: Mutex::new(BTreeMap::new()),
                ended: tokio::sync::watch::Sender::new(0),
                next: AtomicU64::new(0),
                events,
            }),
        }
    }

    /// Starts a job of `kind` on `target`; `work` gets its progress handle and returns its result. Returns the job
    /// id and the id of the event that announced it.
    pub fn spawn<F, Fut>(&self, kind: &str, target: String, work: F) -> (u64, u64)
    where
        F: FnOnce(Progress) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<JobResult>> + Send + 'static,
    {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed) + 1;
        let progress = Progress::new();
        let job = Job {
            id,
            kind: kind.into(),
            target: target.clone(),
            state: JobState::Running,
            done_bytes: 0,
            total_bytes: 0,
            new_bytes: 0,
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
        let event_id = self.inner.events.push(EventKind::JobStarted { job: id, kind: kind.into(), target });
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let work = work(progress.clone());
            tokio::pin!(work);
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            let mut last = (0, 0, 0);
            let report = |last: &mut (u64, u64, u64)| {
                let now = progress.counts();
                if now != *last {
                    *last = now;
                    let (done_bytes, total_bytes, new_bytes) = now;
                    inner.events.push(EventKind::JobProgress { job: id, done_bytes, total_bytes, new_bytes });
                }
            };
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tick.tick() => report(&mut last),
                }
            };
            report(&mut last);
            let state = if result.is_ok() { JobState::Done } else { JobState::Failed };
            if let Ok(mut jobs) = inner.jobs.lock() {
                if let Some((job, _)) = jobs.get_mut(&id) {
                    job.state = state;
                    match result {
                        Ok(v) => job.result = Some(v),
                        Err(e) => job.error = Some(format!("{e:#}")),
                    }
                }
            }
            inner.events.push(EventKind::JobEnded { job: id, state });
            inner.ended.send_modify(|n| *n = n.wrapping_add(1));
        });
        (id, event_id)
    }

    /// Job `id` once it has ended, or its state after `timeout` if it is still running (a long poll: clients
    /// learn of the end at once instead of on their next poll). `None` for an unknown job.
    pub async fn wait(&self, id: u64, timeout: Duration) -> Option<Job> {
        let mut ended = self.inner.ended.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let job = self.get(id)?;
            if job.state != JobState::Running {
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
        (job.done_bytes, job.total_bytes, job.new_bytes) = progress.counts();
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use bitdust_api::RestoreReport;

    use super::*;

    fn report() -> JobResult {
        JobResult::Restore(RestoreReport {
            name: "docs".into(),
            version: 1,
            target: "/tmp/x".into(),
            files: 3,
            bytes: 10,
            seconds: 0.1,
            fragments_failed: 0,
            lost_files: vec![],
        })
    }

    #[tokio::test]
    async fn a_job_reports_progress_then_its_result_and_a_failure_its_error_in_the_log_too() {
        let events = Events::default();
        let jobs = Jobs::new(events.clone());
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let (id, started) = jobs.spawn("restore", "docs".into(), |p| async move {
            p.set_total(10);
            p.add(4);
            let _ = go_rx.await;
            Ok(report())
        });
        assert!(matches!(&events.since(started - 1)[0].kind, EventKind::JobStarted { job, .. } if *job == id));
        // still running: the long poll returns after its timeout with the progress so far
        let running = jobs.wait(id, Duration::from_millis(50)).await.unwrap();
        assert_eq!(running.state, JobState::Running);
        let _ = go_tx.send(());
        let done = jobs.wait(id, Duration::from_secs(10)).await.unwrap();
        assert_eq!((done.state, done.done_bytes, done.total_bytes), (JobState::Done, 4, 10));
        assert!(matches!(done.result, Some(JobResult::Restore(ref r)) if r.files == 3));
        let log = events.since(0);
        assert!(log
            .iter()
            .any(|e| e.kind == EventKind::JobProgress { job: id, done_bytes: 4, total_bytes: 10, new_bytes: 0 }));
        assert!(log.iter().any(|e| e.kind == EventKind::JobEnded { job: id, state: JobState::Done }));
        let (failed, _) = jobs.spawn("restore", "y".into(), |_| async { Err(anyhow::anyhow!("no backup named y")) });
        let failed = jobs.wait(failed, Duration::from_secs(10)).await.unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert!(failed.error.unwrap().contains("no backup named y"));
        assert!(jobs.get(999).is_none());
    }
}
