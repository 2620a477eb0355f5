//! Backup sets the daemon runs (`bitdust schedule add PATH --every 1h ...`).
//!
//! Each set is a path, an interval, excludes and an optional keep policy; they are kept in the node database. The
//! runner wakes at least every 20 s and compares the wall clock with each set's next run, so a run missed while
//! the machine slept (the monotonic clock stops then) runs once, soon after it wakes, not once per missed interval.
//! A due set runs as a `backup` job (its progress and end in the events stream and on the Backups page); one run
//! per set at a time; runs of different sets wait for each other on the customer lock. After a run that stored a
//! version, a keep policy forgets the versions it does not keep, then prune frees their space. The set records the
//! run's end, what it did or why it failed, and its next run: a failed run is tried again at the next interval.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::{bail, Result};
use bitdust_api::{BackupSet, JobResult, ScheduleRequest};
use bitdust_node::home::unix_now;
use bitdust_store::Versioned;
use serde::{Deserialize, Serialize};

use crate::proto::policy::KeepPolicy;
use crate::service::archive::{self, Excludes};
use crate::service::Storage;

/// Database value: the backup sets.
const SCHEDULES_KEY: &str = "backup_sets";
/// The runner looks at the wall clock at least this often.
const TICK: Duration = Duration::from_secs(20);
/// The shortest interval.
pub const MIN_EVERY_SECS: u64 = 60;
/// Most sets.
pub const MAX_SETS: usize = 256;

/// The sets as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sets(Vec<BackupSet>);

impl Versioned for Sets {
    const FORMAT: u16 = 1;
}

/// Errors a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No set with this id.
    #[error("no backup set {0} (see `bitdust schedule list`)")]
    Unknown(u32),
    /// The request is wrong.
    #[error("{0}")]
    Bad(String),
}

fn keep_policy(r: &bitdust_api::KeepRules) -> KeepPolicy {
    KeepPolicy {
        last: r.last,
        hourly: r.hourly,
        daily: r.daily,
        weekly: r.weekly,
        monthly: r.monthly,
        yearly: r.yearly,
    }
}

impl Storage {
    /// The backup sets, with `running` filled in.
    ///
    /// # Errors
    /// On database failure.
    pub fn backup_sets(&self) -> Result<Vec<BackupSet>> {
        let running = self.running_sets.lock().map(|r| r.clone()).unwrap_or_default();
        let mut sets = self.node.db().get::<Sets>(SCHEDULES_KEY)?.unwrap_or_default().0;
        for s in &mut sets {
            s.running = running.contains(&s.id);
        }
        Ok(sets)
    }

    /// Adds a backup set; its first run is due now.
    ///
    /// # Errors
    /// [`ScheduleError::Bad`] for a relative or missing path, an interval under a minute, a bad pattern, too many
    /// sets; the database.
    pub fn add_backup_set(&self, request: ScheduleRequest) -> Result<BackupSet> {
        let bad = |m: String| anyhow::Error::new(ScheduleError::Bad(m));
        let path = std::path::Path::new(&request.path);
        if !path.is_absolute() {
            return Err(bad(format!("{:?}: the path must be absolute", request.path)));
        }
        if let Err(e) = std::fs::symlink_metadata(path) {
            return Err(bad(format!("cannot back up {}: {e}", path.display())));
        }
        if request.every_secs < MIN_EVERY_SECS {
            return Err(bad(format!("every {} s: the shortest interval is {MIN_EVERY_SECS} s", request.every_secs)));
        }
        archive::check_patterns(path, &request.exclude).map_err(|e| bad(e.to_string()))?;
        let mut sets = self.node.db().get::<Sets>(SCHEDULES_KEY)?.unwrap_or_default();
        if sets.0.len() >= MAX_SETS {
            return Err(bad(format!("at most {MAX_SETS} backup sets")));
        }
        let set = BackupSet {
            id: sets.0.iter().map(|s| s.id).max().unwrap_or(0) + 1,
            request,
            last_run_unix: None,
            last_result: None,
            last_failed: false,
            next_run_unix: unix_now(),
            running: false,
        };
        sets.0.push(set.clone());
        self.node.db().put(SCHEDULES_KEY, &sets)?;
        self.schedules_changed.notify_one();
        Ok(set)
    }

    /// Removes backup set `id` (a run going on ends as it would; its versions stay).
    ///
    /// # Errors
    /// [`ScheduleError::Unknown`]; the database.
    pub fn remove_backup_set(&self, id: u32) -> Result<BackupSet> {
        let mut sets = self.node.db().get::<Sets>(SCHEDULES_KEY)?.unwrap_or_default();
        let Some(i) = sets.0.iter().position(|s| s.id == id) else { bail!(ScheduleError::Unknown(id)) };
        let gone = sets.0.remove(i);
        self.node.db().put(SCHEDULES_KEY, &sets)?;
        self.schedules_changed.notify_one();
        Ok(gone)
    }

    /// Records how set `id`'s run went and when the next is due (nothing if the set was removed meanwhile).
    fn record_run(&self, id: u32, result: &Result<String>) -> Result<()> {
        let mut sets = self.node.db().get::<Sets>(SCHEDULES_KEY)?.unwrap_or_default();
        if let Some(s) = sets.0.iter_mut().find(|s| s.id == id) {
            let now = unix_now();
            s.last_run_unix = Some(now);
            s.last_failed = result.is_err();
            s.last_result = Some(match result {
                Ok(m) => m.clone(),
                Err(e) => format!("{e:#}"),
            });
            s.next_run_unix = next_run(now, s.request.every_secs);
            self.node.db().put(SCHEDULES_KEY, &sets)?;
        }
        Ok(())
    }

    /// Starts set `set`'s run as a job, unless one is going on.
    fn start_run(self: &Arc<Self>, set: BackupSet) {
        let started = self.running_sets.lock().map(|mut r| r.insert(set.id)).unwrap_or(false);
        if !started {
            return;
        }
        let storage = self.clone();
        let target = format!("set {}: {}", set.id, set.request.path);
        self.node.jobs().spawn("backup", target, move |progress| async move {
            let r = &set.request;
            let excludes =
                Excludes { patterns: r.exclude.clone(), caches: r.exclude_caches, one_file_system: r.one_file_system };
            let report = storage.backup_with(std::path::Path::new(&r.path), &excludes, progress).await;
            let mut summary =
                report.as_ref().map(|b| format!("{}@{}", b.name, b.version)).map_err(|e| anyhow::anyhow!("{e:#}"));
            if let (Ok(b), false) = (&report, r.keep.is_empty()) {
                let after = async {
                    let f = storage.forget(&b.name, &keep_policy(&r.keep), false).await?;
                    let p = storage.prune(false).await?;
                    anyhow::Ok(format!(", forgot {} versions, pruned {} blocks", f.removed.len(), p.blocks_deleted))
                }
                .await;
                summary = match after {
                    Ok(s) => summary.map(|m| m + &s),
                    Err(e) => Err(e.context("backed up, but forget or prune failed")),
                };
            }
            if let Err(e) = storage.record_run(set.id, &summary) {
                tracing::warn!(set = set.id, error = %format!("{e:#}"), "the run's result was not recorded");
            }
            if let Ok(mut running) = storage.running_sets.lock() {
                running.remove(&set.id);
            }
            storage.schedules_changed.notify_one();
            summary?;
            Ok(JobResult::Backup(report?))
        });
    }
}

/// Which sets are due at `now` (not running, next run reached), and how long to sleep before looking again (at
/// most [`TICK`]: the wall clock is checked that often, whatever a sleep of the machine did to timers).
pub(crate) fn plan(sets: &[BackupSet], now: u64) -> (Vec<u32>, Duration) {
    let mut wait = TICK;
    let mut due = Vec::new();
    for set in sets.iter().filter(|s| !s.running) {
        if set.next_run_unix <= now {
            due.push(set.id);
        } else {
            wait = wait.min(Duration::from_secs(set.next_run_unix - now));
        }
    }
    (due, wait)
}

/// When a set that ran until `ended` runs next: one interval after the run ended, whatever was missed before it
/// (so runs missed while the machine slept make one run, not one per interval).
pub(crate) fn next_run(ended: u64, every_secs: u64) -> u64 {
    ended.saturating_add(every_secs)
}

/// Runs the due backup sets of `storage` until its node stops (see the module's notes).
pub(crate) async fn run(storage: Weak<Storage>) {
    loop {
        let Some(s) = storage.upgrade() else { return };
        if s.node.network().is_stopped() {
            return;
        }
        let now = unix_now();
        let sets = s.backup_sets().unwrap_or_default();
        let (due, wait) = plan(&sets, now);
        for set in sets.into_iter().filter(|x| due.contains(&x.id)) {
            s.start_run(set);
        }
        let changed = s.schedules_changed.clone();
        drop(s);
        tokio::select! {
            () = tokio::time::sleep(wait.max(Duration::from_millis(200))) => {}
            () = changed.notified() => {}
        }
    }
}

/// Sets that are running now (shared with the runner).
pub(crate) type Running = std::sync::Mutex<HashSet<u32>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: u32, next_run_unix: u64, running: bool) -> BackupSet {
        BackupSet {
            id,
            request: ScheduleRequest {
                path: "/x".into(),
                every_secs: 3600,
                exclude: vec![],
                exclude_caches: false,
                one_file_system: false,
                keep: Default::default(),
            },
            last_run_unix: None,
            last_result: None,
            last_failed: false,
            next_run_unix,
            running,
        }
    }

    #[test]
    fn runs_missed_while_asleep_make_one_run_and_a_running_set_waits() {
        let now = 1_000_000;
        // asleep for ten intervals: due once; the one running is not started again; the future one sets the wait
        let sets = [set(1, now - 10 * 3600, false), set(2, now - 1, true), set(3, now + 5, false)];
        let (due, wait) = plan(&sets, now);
        assert_eq!(due, vec![1]);
        assert_eq!(wait, Duration::from_secs(5));
        // after the run, the next is one interval after it ended: nothing is due until then
        let after = [set(1, next_run(now + 30, 3600), false)];
        assert!(plan(&after, now + 31).0.is_empty());
        assert_eq!(plan(&after, now + 30 + 3600).0, vec![1]);
        // nothing due and nothing soon: the wall clock is looked at again within TICK
        assert_eq!(plan(&[], now).1, TICK);
    }
}
