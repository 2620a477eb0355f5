//! The automata registry: every automaton instance of the node (the runtime's relay connection and the
//! wings' own), as the API and `bitdust automata` show them. Drivers publish an instance's state after each
//! step; the registry only keeps the latest.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One automaton instance as the API and `bitdust automata` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomatonInfo {
    /// Instance name, e.g. `supplier_connection/2`.
    pub name: String,
    /// Kind (its diagram: `bitdust automata --diagram KIND`).
    pub kind: String,
    /// Current state.
    pub state: String,
    /// Unix milliseconds when the state was entered.
    pub since_unix_ms: u64,
    /// Kind-specific details.
    pub details: serde_json::Value,
}

/// All automata of a node.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<BTreeMap<String, AutomatonInfo>>,
}

impl Registry {
    /// Publishes (or replaces) an instance.
    pub fn set(&self, info: AutomatonInfo) {
        if let Ok(mut m) = self.inner.lock() {
            m.insert(info.name.clone(), info);
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

    /// Instance `name`.
    pub fn get(&self, name: &str) -> Option<AutomatonInfo> {
        self.inner.lock().ok()?.get(name).cloned()
    }
}

/// Milliseconds since the Unix epoch (the clock automata are driven with).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
