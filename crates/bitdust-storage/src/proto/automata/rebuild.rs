//! The rebuild automaton: one per customer; shows what the rebuild executor is doing.
//!
//! ```text
//! idle --work queued--> rebuilding --queue empty--> idle
//! rebuilding --blocked (too few fragments reachable)--> waiting --retry time--> rebuilding
//! ```
//! The plan itself is computed by [`crate::proto::rebuild::plan_block`]; the durable queue lives in the node's database.

use serde::{Deserialize, Serialize};

use bitdust_core::automata::{t, Transition};

/// Automaton kind name.
pub const NAME: &str = "rebuild";

/// Its transitions.
pub const TRANSITIONS: &[Transition] = &[
    t("idle", "work_queued", "rebuilding"),
    t("rebuilding", "queue_empty", "idle"),
    t("rebuilding", "blocked", "waiting"),
    t("waiting", "retry", "rebuilding"),
    t("waiting", "queue_empty", "idle"),
];

/// The state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Nothing to do.
    Idle,
    /// Working through the queue.
    Rebuilding,
    /// Some work is blocked; retried after a delay.
    Waiting,
}

impl State {
    /// The state's name in diagrams.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Rebuilding => "rebuilding",
            Self::Waiting => "waiting",
        }
    }
}

/// Inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The queue holds `n` tasks.
    Queued(usize),
    /// A task finished: fragments regenerated and stored.
    Done {
        /// Fragments stored.
        fragments: u64,
        /// Bytes sent (regenerated fragments).
        bytes_sent: u64,
        /// Bytes fetched (source fragments).
        bytes_fetched: u64,
    },
    /// A task could not run (too few sources, target unreachable).
    Blocked(String),
    /// Time passes.
    Tick,
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Take the next task from the queue.
    RunNext,
}

/// The automaton.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rebuild {
    /// Current state.
    pub state: State,
    /// When the state was entered (ms).
    pub since_ms: u64,
    /// Tasks queued.
    pub queued: usize,
    /// Fragments regenerated since start.
    pub fragments_rebuilt: u64,
    /// Bytes sent for rebuilding since start.
    pub bytes_sent: u64,
    /// Bytes fetched for rebuilding since start.
    pub bytes_fetched: u64,
    /// Last reason for blocking.
    pub blocked: Option<String>,
    retry_ms: u64,
}

impl Rebuild {
    /// A new automaton; blocked work is retried after `retry_ms`.
    pub fn new(retry_ms: u64, now_ms: u64) -> Self {
        Self {
            state: State::Idle,
            since_ms: now_ms,
            queued: 0,
            fragments_rebuilt: 0,
            bytes_sent: 0,
            bytes_fetched: 0,
            blocked: None,
            retry_ms,
        }
    }

    fn go(&mut self, to: State, event: &str, now_ms: u64) {
        debug_assert!(bitdust_core::automata::allowed(TRANSITIONS, self.state.name(), event, to.name()));
        if self.state != to {
            self.since_ms = now_ms;
        }
        self.state = to;
    }

    /// When time alone next changes this automaton (ms): the retry of blocked work. `None` otherwise.
    pub fn next_deadline(&self) -> Option<u64> {
        (self.state == State::Waiting).then(|| self.since_ms.saturating_add(self.retry_ms))
    }

    /// Feeds one event at `now_ms`.
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Action> {
        match event {
            Event::Queued(n) => {
                self.queued = n;
                match (&self.state, n) {
                    (State::Idle, n) if n > 0 => {
                        self.go(State::Rebuilding, "work_queued", now_ms);
                        vec![Action::RunNext]
                    }
                    (State::Rebuilding, 0) | (State::Waiting, 0) => {
                        self.go(State::Idle, "queue_empty", now_ms);
                        vec![]
                    }
                    (State::Rebuilding, _) => vec![Action::RunNext],
                    _ => vec![],
                }
            }
            Event::Done { fragments, bytes_sent, bytes_fetched } => {
                self.fragments_rebuilt += fragments;
                self.bytes_sent += bytes_sent;
                self.bytes_fetched += bytes_fetched;
                self.blocked = None;
                vec![]
            }
            Event::Blocked(reason) => {
                self.blocked = Some(reason);
                if self.state == State::Rebuilding {
                    self.go(State::Waiting, "blocked", now_ms);
                }
                vec![]
            }
            Event::Tick => {
                if self.state == State::Waiting && now_ms.saturating_sub(self.since_ms) >= self.retry_ms {
                    self.go(State::Rebuilding, "retry", now_ms);
                    return vec![Action::RunNext];
                }
                if self.state == State::Idle && self.queued > 0 {
                    self.go(State::Rebuilding, "work_queued", now_ms);
                    return vec![Action::RunNext];
                }
                vec![]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_waits_and_retries() {
        let mut r = Rebuild::new(1_000, 0);
        assert_eq!(r.handle(Event::Queued(3), 0), vec![Action::RunNext]);
        r.handle(Event::Done { fragments: 1, bytes_sent: 10, bytes_fetched: 20 }, 1);
        r.handle(Event::Blocked("too few".into()), 2);
        assert_eq!(r.state, State::Waiting);
        assert!(r.handle(Event::Tick, 500).is_empty());
        assert_eq!(r.handle(Event::Tick, 1_100), vec![Action::RunNext]);
        r.handle(Event::Queued(0), 1_200);
        assert_eq!((r.state.clone(), r.fragments_rebuilt), (State::Idle, 1));
    }
}
