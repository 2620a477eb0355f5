//! The node's event log (the model is Syncthing's events API): every event gets the next id; the last
//! [`CAPACITY`] are kept. Clients ask for the events after the last id they saw, by long poll
//! (`GET /api/v1/events?since=ID&timeout_ms=N`) or WebSocket (`GET /api/v1/events/ws`); one that fell behind the
//! buffer sees a jump in the ids. Job progress, automaton state changes and health changes are logged; wings add
//! their own kinds to [`bitdust_api::EventKind`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitdust_api::{Event, EventKind};

use crate::automata::now_ms;

/// Events kept: a few minutes of a busy node (job progress is at most four events a second per job).
pub const CAPACITY: usize = 4096;
/// Most events one answer carries.
pub const PAGE: usize = 1000;

/// The log. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    buffer: Mutex<VecDeque<Event>>,
    /// The last id given (what waiters wait on).
    last: tokio::sync::watch::Sender<u64>,
    /// Set when the node stops: waiters return at once (a daemon's shutdown does not wait out long polls).
    closed: tokio::sync::watch::Sender<bool>,
}

impl Default for Events {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                buffer: Mutex::new(VecDeque::new()),
                last: tokio::sync::watch::Sender::new(0),
                closed: tokio::sync::watch::Sender::new(false),
            }),
        }
    }
}

impl Events {
    /// Logs `kind`; returns its id.
    pub fn push(&self, kind: EventKind) -> u64 {
        let Ok(mut buffer) = self.inner.buffer.lock() else { return 0 };
        let id = buffer.back().map_or(*self.inner.last.borrow(), |e| e.id) + 1;
        if buffer.len() >= CAPACITY {
            buffer.pop_front();
        }
        buffer.push_back(Event { id, time_unix_ms: now_ms(), kind });
        // under the lock, so the last id only rises (two pushes cannot publish 6 then 5)
        self.inner.last.send_replace(id);
        drop(buffer);
        id
    }

    /// The newest id given (0 before any event).
    pub fn last_id(&self) -> u64 {
        *self.inner.last.borrow()
    }

    /// The events after `since` still in the buffer, at most [`PAGE`].
    pub fn since(&self, since: u64) -> Vec<Event> {
        let Ok(buffer) = self.inner.buffer.lock() else { return Vec::new() };
        buffer.iter().filter(|e| e.id > since).take(PAGE).cloned().collect()
    }

    /// The events after `since`, waiting up to `timeout` for the first one if there is none yet (a long poll);
    /// at once when the log is closed.
    pub async fn wait(&self, since: u64, timeout: Duration) -> Vec<Event> {
        let mut rx = self.inner.last.subscribe();
        let mut closed = self.inner.closed.subscribe();
        tokio::select! {
            _ = tokio::time::timeout(timeout, rx.wait_for(|last| *last > since)) => {}
            _ = closed.wait_for(|c| *c) => {}
        }
        self.since(since)
    }

    /// Closes the log (the node stops): every waiter returns, and later waits return at once.
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }

    /// Whether the log is closed.
    pub fn is_closed(&self) -> bool {
        *self.inner.closed.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(job: u64) -> EventKind {
        EventKind::JobProgress { job, done_bytes: 1, total_bytes: 2, new_bytes: 0 }
    }

    #[tokio::test]
    async fn ids_rise_by_one_a_long_poll_wakes_on_the_next_event_and_a_slow_client_sees_a_gap() {
        let events = Events::default();
        assert_eq!(events.push(progress(1)), 1);
        assert_eq!(events.push(progress(2)), 2);
        assert_eq!(events.since(0).iter().map(|e| e.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(events.since(2).is_empty());
        // nothing new: the long poll returns empty after its timeout
        assert!(events.wait(2, Duration::from_millis(20)).await.is_empty());
        // an event while it waits wakes it at once
        let waiter = tokio::spawn({
            let events = events.clone();
            async move { events.wait(2, Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        events.push(progress(3));
        let got = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3]);
        // the buffer is bounded: the oldest go, and a client that asks from 0 sees ids start above 1
        for i in 0..CAPACITY as u64 {
            events.push(progress(i));
        }
        let page = events.since(0);
        assert_eq!(page.len(), PAGE);
        assert_eq!(page[0].id, 4, "ids 1 to 3 fell out of the buffer");
        assert_eq!(events.last_id(), 3 + CAPACITY as u64);
        // closing wakes a waiter at once
        let last = events.last_id();
        let waiter = tokio::spawn({
            let events = events.clone();
            async move { events.wait(last, Duration::from_secs(30)).await }
        });
        tokio::task::yield_now().await;
        events.close();
        let got = tokio::time::timeout(Duration::from_secs(10), waiter).await.unwrap().unwrap();
        assert!(got.is_empty() && events.is_closed());
    }
}
