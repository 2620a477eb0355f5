//! Relay connection: one per node. Keeps a reservation on a relay ("proxy router") while the node cannot be
//! reached directly, and moves to another relay when the one in use goes away.
//!
//! ```text
//! not_needed --needed--> finding --candidate--> reserving --accepted--> reserved --lost--> finding
//!                        finding --none_found--> waiting --retry--> finding
//!                                                reserving --timed_out--> finding
//! ```
//! A relay is needed when the user configured relays or AutoNAT says the node is private. Candidates come from
//! the driver, configured relays first, then relays found in the DHT under the relay service key; a relay that
//! failed or was lost is skipped for `skip_ms`. Circuit relay v2 (libp2p `relay` spec): a reservation lets peers
//! reach this node at `<relay address>/p2p-circuit/p2p/<us>`; the relay only forwards Noise-encrypted streams.

use serde::{Deserialize, Serialize};

use super::{t, Transition};

/// Automaton kind name.
pub const NAME: &str = "relay_connection";

/// Its transitions.
pub const TRANSITIONS: &[Transition] = &[
    t("not_needed", "needed", "finding"),
    t("finding", "candidate", "reserving"),
    t("finding", "none_found", "waiting"),
    t("waiting", "retry", "finding"),
    t("reserving", "accepted", "reserved"),
    t("reserving", "timed_out", "finding"),
    t("reserved", "lost", "finding"),
    t("reserved", "lost", "not_needed"),
    t("finding", "not_needed", "not_needed"),
    t("waiting", "not_needed", "not_needed"),
    t("reserving", "not_needed", "not_needed"),
    t("not_needed", "accepted", "reserved"),
    t("finding", "accepted", "reserved"),
    t("waiting", "accepted", "reserved"),
];

/// A relay the driver can reserve a slot on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    /// The relay's peer id (base58).
    pub peer: String,
    /// Its direct multiaddr, ending in `/p2p/<peer>`.
    pub addr: String,
}

/// The state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Reachable directly (or not known to be unreachable) and no relay configured.
    NotNeeded,
    /// Asking for candidates.
    Finding,
    /// No usable candidate; waiting `retry_ms` before asking again.
    Waiting,
    /// Reservation asked of this relay (peer id).
    Reserving(String),
    /// Reservation held on this relay (peer id).
    Reserved(String),
}

impl State {
    /// The state's name in diagrams.
    pub fn name(&self) -> &'static str {
        match self {
            Self::NotNeeded => "not_needed",
            Self::Finding => "finding",
            Self::Waiting => "waiting",
            Self::Reserving(_) => "reserving",
            Self::Reserved(_) => "reserved",
        }
    }
}

/// Inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Whether a relay is needed (relays configured, or AutoNAT says private).
    Needed(bool),
    /// The answer to [`Action::Find`], best first.
    Candidates(Vec<Candidate>),
    /// A relay (peer id) accepted our reservation.
    Accepted(String),
    /// The reservation on a relay (peer id) is gone (connection closed, relay stopped).
    Lost(String),
    /// Time passes.
    Tick,
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Collect candidates and answer with [`Event::Candidates`].
    Find,
    /// Connect to this relay and ask for a reservation.
    Reserve(Candidate),
}

/// Timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// How long a reservation may take before the relay counts as failed.
    pub reserve_timeout_ms: u64,
    /// The pause before asking again when no candidate is usable.
    pub retry_ms: u64,
    /// How long a relay that failed or was lost is skipped (longer than a search for candidates takes).
    pub skip_ms: u64,
}

impl Timings {
    /// Defaults: 20 s to reserve, 10 s between searches, a failed relay skipped for 2 minutes.
    pub const DEFAULT: Timings = Timings { reserve_timeout_ms: 20_000, retry_ms: 10_000, skip_ms: 120_000 };
}

/// The automaton.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RelayConnection {
    /// Current state.
    pub state: State,
    /// When the state was entered (ms).
    pub since_ms: u64,
    /// Whether a relay is needed.
    pub needed: bool,
    /// Relays (peer ids) skipped until the given time (ms), after they failed or were lost.
    pub skipped: Vec<(String, u64)>,
    /// Last outcome, for the user.
    pub last: Option<String>,
    timings: Timings,
}

impl RelayConnection {
    /// A new automaton in `not_needed`.
    pub fn new(timings: Timings, now_ms: u64) -> Self {
        Self { state: State::NotNeeded, since_ms: now_ms, needed: false, skipped: vec![], last: None, timings }
    }

    fn go(&mut self, to: State, event: &str, now_ms: u64) {
        debug_assert!(
            super::allowed(TRANSITIONS, self.state.name(), event, to.name()),
            "{event} from {:?}",
            self.state
        );
        self.state = to;
        self.since_ms = now_ms;
    }

    fn skip(&mut self, peer: &str, now_ms: u64) {
        self.skipped.retain(|(p, until)| p != peer && *until > now_ms);
        self.skipped.push((peer.to_string(), now_ms + self.timings.skip_ms));
    }

    fn find(&mut self, event: &str, now_ms: u64) -> Vec<Action> {
        self.go(State::Finding, event, now_ms);
        vec![Action::Find]
    }

    /// Feeds one event at `now_ms`.
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Action> {
        match event {
            Event::Needed(needed) => {
                self.needed = needed;
                match (&self.state, needed) {
                    (State::NotNeeded, true) => self.find("needed", now_ms),
                    (State::Finding | State::Waiting | State::Reserving(_), false) => {
                        self.go(State::NotNeeded, "not_needed", now_ms);
                        vec![]
                    }
                    _ => vec![],
                }
            }
            Event::Candidates(candidates) => {
                if self.state != State::Finding {
                    return vec![];
                }
                let usable = candidates
                    .into_iter()
                    .find(|c| !self.skipped.iter().any(|(p, until)| *p == c.peer && *until > now_ms));
                match usable {
                    Some(c) => {
                        self.go(State::Reserving(c.peer.clone()), "candidate", now_ms);
                        vec![Action::Reserve(c)]
                    }
                    None => {
                        self.last = Some("no usable relay found".into());
                        self.go(State::Waiting, "none_found", now_ms);
                        vec![]
                    }
                }
            }
            Event::Accepted(peer) => {
                if !matches!(self.state, State::Reserved(_)) {
                    self.last = Some(format!("reserved a slot on relay {peer}"));
                    self.go(State::Reserved(peer), "accepted", now_ms);
                }
                vec![]
            }
            Event::Lost(peer) => {
                if self.state != State::Reserved(peer.clone()) {
                    return vec![];
                }
                self.skip(&peer, now_ms);
                self.last = Some(format!("lost relay {peer}"));
                if self.needed {
                    self.find("lost", now_ms)
                } else {
                    self.go(State::NotNeeded, "lost", now_ms);
                    vec![]
                }
            }
            Event::Tick => match &self.state {
                State::Waiting if now_ms.saturating_sub(self.since_ms) >= self.timings.retry_ms => {
                    self.find("retry", now_ms)
                }
                State::Reserving(peer) if now_ms.saturating_sub(self.since_ms) >= self.timings.reserve_timeout_ms => {
                    let peer = peer.clone();
                    self.last = Some(format!("relay {peer} did not grant a reservation"));
                    self.skip(&peer, now_ms);
                    self.find("timed_out", now_ms)
                }
                _ => vec![],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(peer: &str) -> Candidate {
        Candidate { peer: peer.into(), addr: format!("/ip4/198.51.100.1/tcp/4001/p2p/{peer}") }
    }

    const T: Timings = Timings { reserve_timeout_ms: 1_000, retry_ms: 5_000, skip_ms: 6_000 };

    #[test]
    fn a_lost_relay_is_replaced_by_another_and_skipped_for_a_while() {
        let mut r = RelayConnection::new(T, 0);
        assert!(r.handle(Event::Tick, 10).is_empty(), "a public node needs no relay");
        assert_eq!(r.handle(Event::Needed(true), 10), vec![Action::Find]);
        assert_eq!(r.handle(Event::Candidates(vec![c("a"), c("b")]), 20), vec![Action::Reserve(c("a"))]);
        assert!(r.handle(Event::Accepted("a".into()), 30).is_empty());
        assert_eq!(r.state, State::Reserved("a".into()));
        assert!(r.handle(Event::Lost("b".into()), 40).is_empty(), "losing another relay changes nothing");
        assert_eq!(r.handle(Event::Lost("a".into()), 50), vec![Action::Find]);
        // the lost relay is still listed by the DHT: skipped
        assert_eq!(r.handle(Event::Candidates(vec![c("a"), c("b")]), 60), vec![Action::Reserve(c("b"))]);
        assert!(r.handle(Event::Accepted("b".into()), 70).is_empty());
        assert_eq!(r.state, State::Reserved("b".into()));
    }

    #[test]
    fn a_silent_relay_times_out_and_an_empty_list_is_retried_later() {
        let mut r = RelayConnection::new(T, 0);
        r.handle(Event::Needed(true), 0);
        assert_eq!(r.handle(Event::Candidates(vec![c("a")]), 0), vec![Action::Reserve(c("a"))]);
        assert!(r.handle(Event::Tick, 999).is_empty());
        assert_eq!(r.handle(Event::Tick, 1_000), vec![Action::Find]);
        assert!(r.handle(Event::Candidates(vec![c("a")]), 1_001).is_empty(), "a is skipped");
        assert_eq!(r.state, State::Waiting);
        assert!(r.handle(Event::Tick, 5_000).is_empty());
        assert_eq!(r.handle(Event::Tick, 6_001), vec![Action::Find]);
        assert!(r.handle(Event::Candidates(vec![c("a")]), 6_002).is_empty(), "still skipped");
        assert_eq!(r.handle(Event::Tick, 11_002), vec![Action::Find]);
        assert_eq!(r.handle(Event::Candidates(vec![c("a")]), 11_003), vec![Action::Reserve(c("a"))], "skip expired");
    }

    #[test]
    fn a_node_that_turns_public_stops_looking() {
        let mut r = RelayConnection::new(T, 0);
        r.handle(Event::Needed(true), 0);
        assert!(r.handle(Event::Needed(false), 1).is_empty());
        assert_eq!(r.state, State::NotNeeded);
        assert!(r.handle(Event::Candidates(vec![c("a")]), 2).is_empty(), "a late answer is ignored");
        // a reservation made at start-up (configured relay) is shown even before reachability is known
        r.handle(Event::Accepted("a".into()), 3);
        assert_eq!(r.state, State::Reserved("a".into()));
        assert!(r.handle(Event::Lost("a".into()), 4).is_empty());
        assert_eq!(r.state, State::NotNeeded);
    }
}
