//! Hire and fire: one per customer. Decides when a position's supplier is replaced.
//!
//! ```text
//! ready --fire requested--> replacing --hired--> cooling_down --cool-down over--> ready
//!                           replacing --hire failed--> cooling_down (the position is retried later)
//! ```
//! Requests come from the supplier connections (after their own hysteresis) or from the user
//! (`bitdust supplier replace POSITION`). Only one replacement runs at a time and each is followed by a
//! cool-down, so that churn never causes a storm of firings. The hiring itself (DHT candidates, never a
//! node already holding a position, never the customer itself, contract) is the driver's job.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use bitdust_core::automata::{t, Transition};

/// Automaton kind name.
pub const NAME: &str = "hire_fire";

/// Its transitions.
pub const TRANSITIONS: &[Transition] = &[
    t("ready", "fire_requested", "replacing"),
    t("replacing", "hired", "cooling_down"),
    t("replacing", "hire_failed", "cooling_down"),
    t("cooling_down", "cool_down_over", "ready"),
];

/// The state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Nothing in progress.
    Ready,
    /// Replacing the supplier at this position.
    Replacing(u16),
    /// Waiting before the next replacement.
    CoolingDown,
}

impl State {
    /// The state's name in diagrams.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Ready => "ready",
            Self::Replacing(_) => "replacing",
            Self::CoolingDown => "cooling_down",
        }
    }
}

/// Inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Replace the supplier at `position`.
    FireRequested {
        /// Position.
        position: u16,
        /// Why.
        reason: String,
    },
    /// A replacement was hired at `position`.
    Hired(u16),
    /// Hiring for `position` failed.
    HireFailed(u16, String),
    /// Time passes.
    Tick,
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fire the current supplier at `position` and hire another.
    Replace {
        /// Position.
        position: u16,
        /// Why.
        reason: String,
    },
}

/// The automaton.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HireFire {
    /// Current state.
    pub state: State,
    /// When the state was entered (ms).
    pub since_ms: u64,
    /// Positions waiting for a replacement, with the reason.
    pub pending: VecDeque<(u16, String)>,
    /// Last outcome, for the user.
    pub last: Option<String>,
    cool_down_ms: u64,
}

impl HireFire {
    /// A new automaton; `cool_down_ms` is the pause after each replacement.
    pub fn new(cool_down_ms: u64, now_ms: u64) -> Self {
        Self { state: State::Ready, since_ms: now_ms, pending: VecDeque::new(), last: None, cool_down_ms }
    }

    fn go(&mut self, to: State, event: &str, now_ms: u64) {
        debug_assert!(bitdust_core::automata::allowed(TRANSITIONS, self.state.name(), event, to.name()));
        self.state = to;
        self.since_ms = now_ms;
    }

    fn try_start(&mut self, now_ms: u64) -> Vec<Action> {
        if self.state != State::Ready {
            return vec![];
        }
        let Some((position, reason)) = self.pending.pop_front() else { return vec![] };
        self.go(State::Replacing(position), "fire_requested", now_ms);
        vec![Action::Replace { position, reason }]
    }

    /// When time alone next changes this automaton (ms): the end of a cool-down. `None` otherwise.
    pub fn next_deadline(&self) -> Option<u64> {
        (self.state == State::CoolingDown).then(|| self.since_ms.saturating_add(self.cool_down_ms))
    }

    /// Feeds one event at `now_ms`.
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Action> {
        match event {
            Event::FireRequested { position, reason } => {
                let busy = self.state == State::Replacing(position) || self.pending.iter().any(|(p, _)| *p == position);
                if !busy {
                    self.pending.push_back((position, reason));
                }
                self.try_start(now_ms)
            }
            Event::Hired(p) => {
                if self.state == State::Replacing(p) {
                    self.last = Some(format!("replaced the supplier at position {p}"));
                    self.go(State::CoolingDown, "hired", now_ms);
                }
                vec![]
            }
            Event::HireFailed(p, reason) => {
                if self.state == State::Replacing(p) {
                    self.last = Some(format!("could not replace position {p}: {reason}"));
                    self.pending.push_back((p, reason));
                    self.go(State::CoolingDown, "hire_failed", now_ms);
                }
                vec![]
            }
            Event::Tick => {
                if self.state == State::CoolingDown && now_ms.saturating_sub(self.since_ms) >= self.cool_down_ms {
                    self.go(State::Ready, "cool_down_over", now_ms);
                }
                self.try_start(now_ms)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_replacement_at_a_time_with_cool_down() {
        let mut h = HireFire::new(1_000, 0);
        let a = h.handle(Event::FireRequested { position: 1, reason: "x".into() }, 0);
        assert_eq!(a, vec![Action::Replace { position: 1, reason: "x".into() }]);
        // a second request waits; a duplicate is ignored
        assert!(h.handle(Event::FireRequested { position: 2, reason: "y".into() }, 10).is_empty());
        assert!(h.handle(Event::FireRequested { position: 1, reason: "x".into() }, 10).is_empty());
        assert!(h.handle(Event::Hired(1), 100).is_empty());
        assert!(h.handle(Event::Tick, 500).is_empty(), "cool-down not over");
        assert_eq!(h.handle(Event::Tick, 1_100), vec![Action::Replace { position: 2, reason: "y".into() }]);
        assert!(h.handle(Event::HireFailed(2, "no candidates".into()), 1_200).is_empty());
        assert_eq!(h.handle(Event::Tick, 2_300), vec![Action::Replace { position: 2, reason: "no candidates".into() }]);
        assert!(h.pending.is_empty());
    }
}
