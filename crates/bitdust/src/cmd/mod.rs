//! One module per command. Commands that need the network talk to the running daemon through its typed local
//! API ([`crate::client::Client`]); `init`, `key export`, `daemon`, `automata --diagram` and `openapi` work
//! without one.

pub mod automata;
pub mod backup;
pub mod chat;
pub mod contacts;
pub mod daemon;
pub mod forget;
pub mod group;
pub mod health;
pub mod init;
pub mod key;
pub mod ls;
pub mod msg;
pub mod openapi;
pub mod prune;
pub mod restore;
pub mod schedule;
pub mod share;
pub mod status;
pub mod suppliers;
pub mod ui;

use bitdust::out;
use bitdust_messages::MessagesService;
use bitdust_node::Service;
use bitdust_storage::{Overrides, StorageService};
use serde::Serialize;

/// Prints `value` as pretty JSON (`--json`) or as the text `text` makes of it.
pub fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) {
    if json {
        out!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
    } else {
        out!("{}", text(value));
    }
}

/// Prints a job's report: with `json`, one compact JSON line with `"message_type": "summary"` (after the job's
/// status lines: restic's `--json` form), otherwise `text(value)`.
pub fn print_summary<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) {
    if json {
        let mut v = serde_json::to_value(value).unwrap_or_default();
        if let Some(map) = v.as_object_mut() {
            map.insert("message_type".into(), "summary".into());
        }
        out!("{v}");
    } else {
        out!("{}", text(value));
    }
}

/// The feature wings the daemon runs.
pub fn wings(storage: Overrides) -> Vec<Box<dyn Service>> {
    vec![StorageService::new(storage), MessagesService::new()]
}

/// Milliseconds since the Unix epoch (for "for how long" columns).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
