//! The automata registry: every automaton instance of the node (the runtime's relay connection and the
//! wings' own), as the API and `bitdust automata` show them. Drivers publish an instance's state after each
//! step; the registry keeps the latest, and logs an event when an instance enters a new state.

use std::collections::BTreeMap;
use std::sync::Mutex;

pub use bitdust_api::AutomatonInfo;
use bitdust_api::EventKind;

use crate::events::Events;

/// All automata of a node.
#[derive(Debug)]
pub struct Registry {
    inner: Mutex<BTreeMap<String, AutomatonInfo>>,
    events: Events,
}

impl Registry {
    /// An empty registry logging state changes to `events`.
    pub fn new(events: Events) -> Self {
        Self { inner: Mutex::new(BTreeMap::new()), events }
    }

    /// Publishes (or replaces) an instance; a new state (or a new instance) is logged as an event.
    pub fn set(&self, info: AutomatonInfo) {
        let Ok(mut m) = self.inner.lock() else { return };
        let changed = m.get(&info.name).is_none_or(|old| old.state != info.state);
        let event = changed.then(|| EventKind::AutomatonChanged {
            name: info.name.clone(),
            kind: info.kind.clone(),
            state: info.state.clone(),
        });
        m.insert(info.name.clone(), info);
        drop(m);
        if let Some(e) = event {
            self.events.push(e);
        }
    }

    /// Keeps only the instances whose name passes `keep` (a driver drops the instances it no longer runs).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut m) = self.inner.lock() {
            m.retain(|k, _| keep(k));
        }
    }

    /// Every instance, by name.
    pub fn list(&self) -> Vec<AutomatonInfo> {
        self.inner.lock().map(|m| m.values().cloned().collect()).unwrap_or_default()
    }
}

/// Milliseconds since the Unix epoch (the clock automata are driven with).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
