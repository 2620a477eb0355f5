//! The connection to one hired supplier, as the customer sees it.
//!
//! ```text
//! connecting --heartbeat ok--> connected --no answer for suspect_after--> suspect
//! suspect --no answer for offline_after--> offline --offline for fire_after--> (asks hire/fire to fire)
//! connected|suspect|offline|connecting --heartbeat ok--> connected
//! any --refused (lost our contract, no space)--> refused (asks to fire at once)
//! any --wrong audit answer--> (asks to fire at once)
//! any --fire--> fired (final)
//! ```
//! Hysteresis: a supplier is fired only after `fire_after` without any answer, far longer than a restart.

use serde::{Deserialize, Serialize};

use bitdust_core::automata::{t, Transition};

/// Automaton kind name.
pub const NAME: &str = "supplier_connection";

/// Its transitions.
pub const TRANSITIONS: &[Transition] = &[
    t("connecting", "heartbeat_ok", "connected"),
    t("connecting", "no_answer_offline_after", "offline"),
    t("connected", "no_answer_suspect_after", "suspect"),
    t("suspect", "heartbeat_ok", "connected"),
    t("suspect", "no_answer_offline_after", "offline"),
    t("offline", "heartbeat_ok", "connected"),
    t("connecting", "refused", "refused"),
    t("connected", "refused", "refused"),
    t("suspect", "refused", "refused"),
    t("offline", "refused", "refused"),
    t("connecting", "fire", "fired"),
    t("connected", "fire", "fired"),
    t("suspect", "fire", "fired"),
    t("offline", "fire", "fired"),
    t("refused", "fire", "fired"),
];

/// Timings, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    /// Heartbeat period.
    pub heartbeat_ms: u64,
    /// Without any answer this long, a supplier is suspect.
    pub suspect_after_ms: u64,
    /// Without any answer this long, it is offline.
    pub offline_after_ms: u64,
    /// Without any answer this long, it is fired and replaced.
    pub fire_after_ms: u64,
}

impl Timings {
    /// Safe internet defaults: heartbeat every minute, suspect after 3 minutes, offline after 10, fired after
    /// 24 hours offline (a laptop closed overnight is not fired).
    pub const INTERNET: Self = Self {
        heartbeat_ms: 60_000,
        suspect_after_ms: 180_000,
        offline_after_ms: 600_000,
        fire_after_ms: 24 * 3600 * 1000,
    };
    /// Short timings for devnets and tests: a stopped supplier is replaced within about 20 seconds, while a
    /// restart of a few seconds fires nobody.
    pub const DEVNET: Self =
        Self { heartbeat_ms: 1_000, suspect_after_ms: 3_000, offline_after_ms: 6_000, fire_after_ms: 15_000 };
}

/// The state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Not heard from yet.
    Connecting,
    /// Answering.
    Connected,
    /// Missed heartbeats for `suspect_after`.
    Suspect,
    /// Missed heartbeats for `offline_after`.
    Offline,
    /// Refused service (reason).
    Refused(String),
    /// Fired; final.
    Fired,
}

impl State {
    /// The state's name in diagrams.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Suspect => "suspect",
            Self::Offline => "offline",
            Self::Refused(_) => "refused",
            Self::Fired => "fired",
        }
    }
}

/// Inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Time passes (the driver ticks about every heartbeat period).
    Tick,
    /// The supplier answered a heartbeat.
    HeartbeatOk,
    /// A heartbeat got no answer.
    HeartbeatFailed,
    /// The supplier refused service (no contract any more, no space).
    Refused(String),
    /// The supplier answered an audit with bytes that do not prove the fragment.
    AuditWrong,
    /// Hire/fire fired it.
    Fire,
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send a heartbeat now.
    SendHeartbeat,
    /// Ask the hire/fire automaton to replace this supplier.
    RequestFiring(String),
}

/// One supplier connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SupplierConnection {
    /// Current state.
    pub state: State,
    /// When the state was entered (ms).
    pub since_ms: u64,
    /// Last answer (ms), if any.
    pub last_seen_ms: Option<u64>,
    /// When created (ms).
    pub created_ms: u64,
    last_heartbeat_ms: Option<u64>,
    fire_requested: bool,
    timings: Timings,
}

impl SupplierConnection {
    /// A new connection, created at `now_ms`.
    pub fn new(timings: Timings, now_ms: u64) -> Self {
        Self {
            state: State::Connecting,
            since_ms: now_ms,
            last_seen_ms: None,
            created_ms: now_ms,
            last_heartbeat_ms: None,
            fire_requested: false,
            timings,
        }
    }

    /// Milliseconds since its last answer (or since it was created, if it never answered), at `now_ms`.
    pub fn silent_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_seen_ms.unwrap_or(self.created_ms))
    }

    /// Counts `silent_ms` of silence observed before this connection was created (an earlier run of the customer:
    /// only time the customer was running counts, so a customer that is never up for `fire_after_ms` at a stretch
    /// still fires a supplier that stays silent). At most `fire_after_ms - offline_after_ms` is carried, so a
    /// supplier is never fired sooner than `offline_after_ms` after a restart: heartbeats get their chance first.
    /// Ignored once the supplier has answered.
    pub fn carry_silence(&mut self, silent_ms: u64, now_ms: u64) {
        if self.last_seen_ms.is_some() {
            return;
        }
        let most = self.timings.fire_after_ms.saturating_sub(self.timings.offline_after_ms);
        self.created_ms = now_ms.saturating_sub(silent_ms.min(most));
    }

    /// When time alone next changes this connection (ms): it turns suspect, offline, or asks to be fired, if no
    /// answer comes before. `None` once fired or refused, or once its firing was asked. Heartbeats are not
    /// counted (see [`Self::next_heartbeat_ms`]).
    pub fn next_deadline(&self) -> Option<u64> {
        let since = self.last_seen_ms.unwrap_or(self.created_ms);
        let after = match self.state {
            State::Connected => self.timings.suspect_after_ms,
            State::Connecting | State::Suspect => self.timings.offline_after_ms,
            State::Offline if !self.fire_requested => self.timings.fire_after_ms,
            State::Offline | State::Refused(_) | State::Fired => return None,
        };
        Some(since.saturating_add(after))
    }

    /// When the next heartbeat is due (ms); `None` once fired.
    pub fn next_heartbeat_ms(&self) -> Option<u64> {
        match (&self.state, self.last_heartbeat_ms) {
            (State::Fired, _) => None,
            (_, None) => Some(self.created_ms),
            (_, Some(t)) => Some(t.saturating_add(self.timings.heartbeat_ms)),
        }
    }

    fn go(&mut self, to: State, event: &str, now_ms: u64) {
        debug_assert!(
            bitdust_core::automata::allowed(TRANSITIONS, self.state.name(), event, to.name()),
            "{} --{event}--> {}",
            self.state.name(),
            to.name()
        );
        if self.state.name() != to.name() {
            self.since_ms = now_ms;
        }
        self.state = to;
    }

    /// Feeds one event at `now_ms`; returns what to do.
    pub fn handle(&mut self, event: Event, now_ms: u64) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Fired {
            return out;
        }
        match event {
            Event::Tick => {
                let due = self.last_heartbeat_ms.is_none_or(|t| now_ms.saturating_sub(t) >= self.timings.heartbeat_ms);
                if due {
                    self.last_heartbeat_ms = Some(now_ms);
                    out.push(Action::SendHeartbeat);
                }
                let silent = self.silent_ms(now_ms);
                match self.state {
                    State::Connected if silent >= self.timings.suspect_after_ms => {
                        self.go(State::Suspect, "no_answer_suspect_after", now_ms)
                    }
                    State::Suspect | State::Connecting if silent >= self.timings.offline_after_ms => {
                        self.go(State::Offline, "no_answer_offline_after", now_ms)
                    }
                    _ => {}
                }
                if self.state == State::Offline && silent >= self.timings.fire_after_ms && !self.fire_requested {
                    self.fire_requested = true;
                    out.push(Action::RequestFiring(format!("no answer for {} s", silent / 1000)));
                }
            }
            Event::HeartbeatOk => {
                self.last_seen_ms = Some(now_ms);
                if !matches!(self.state, State::Refused(_)) {
                    self.go(State::Connected, "heartbeat_ok", now_ms);
                    self.fire_requested = false;
                }
            }
            Event::HeartbeatFailed => {}
            Event::Refused(reason) => {
                self.go(State::Refused(reason.clone()), "refused", now_ms);
                if !self.fire_requested {
                    self.fire_requested = true;
                    out.push(Action::RequestFiring(format!("refused service: {reason}")));
                }
            }
            Event::AuditWrong => {
                if !self.fire_requested {
                    self.fire_requested = true;
                    out.push(Action::RequestFiring("answered an audit with wrong data".into()));
                }
            }
            Event::Fire => self.go(State::Fired, "fire", now_ms),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut SupplierConnection, from: u64, to: u64, answer: bool) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut now = from;
        while now <= to {
            let a = c.handle(Event::Tick, now);
            if answer && a.contains(&Action::SendHeartbeat) {
                c.handle(Event::HeartbeatOk, now);
            }
            actions.extend(a.into_iter().filter(|a| *a != Action::SendHeartbeat));
            now += 500;
        }
        actions
    }

    #[test]
    fn a_short_outage_fires_nobody() {
        let mut c = SupplierConnection::new(Timings::DEVNET, 0);
        assert!(run(&mut c, 0, 5_000, true).is_empty());
        assert_eq!(c.state, State::Connected);
        // 8 s of silence: suspect, then offline, but not fired
        assert!(run(&mut c, 5_500, 13_000, false).is_empty());
        assert_eq!(c.state, State::Offline);
        assert!(run(&mut c, 13_500, 20_000, true).is_empty());
        assert_eq!(c.state, State::Connected);
    }

    #[test]
    fn a_long_outage_asks_for_firing_once() {
        let mut c = SupplierConnection::new(Timings::DEVNET, 0);
        run(&mut c, 0, 2_000, true);
        let actions = run(&mut c, 2_500, 40_000, false);
        assert_eq!(actions.len(), 1, "{actions:?}");
        assert!(matches!(&actions[0], Action::RequestFiring(r) if r.contains("no answer")));
        c.handle(Event::Fire, 40_000);
        assert_eq!(c.state, State::Fired);
        assert!(c.handle(Event::HeartbeatOk, 41_000).is_empty());
        assert_eq!(c.state, State::Fired);
    }

    #[test]
    fn refusal_and_wrong_audits_ask_for_firing_at_once() {
        let mut c = SupplierConnection::new(Timings::DEVNET, 0);
        assert_eq!(c.handle(Event::AuditWrong, 10).len(), 1);
        let mut c = SupplierConnection::new(Timings::DEVNET, 0);
        c.handle(Event::HeartbeatOk, 1);
        let a = c.handle(Event::Refused("no contract".into()), 2);
        assert!(matches!(&a[..], [Action::RequestFiring(_)]));
        assert_eq!(c.state.name(), "refused");
    }
}
