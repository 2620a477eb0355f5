//! Automata: the explicit finite state machines of bitdust's long-lived processes.
//!
//! Each automaton is a value with one entry point, `handle(event, now_ms) -> Vec<Action>`: a pure transition
//! function (time is an input, so tests are deterministic). A driver (an actor in `bitdust-node`) feeds it
//! events and performs the actions. Each declares its transition table ([`Transition`]), from which
//! [`mermaid`] and [`dot`] draw its diagram, and which its tests check it follows.
//!
//! - [`relay_connection`]: one per node: keeps a relay reservation while the node is unreachable, moves to
//!   another relay when the one in use goes away.
//!
//! Feature wings keep their automata beside their protocol (the storage wing's supplier connection, hire/fire
//! and rebuild are in `bitdust_storage::proto::automata`) and list them in a [`Kind`] table of their own; the
//! runtime's registry shows every instance, whatever wing it belongs to.

pub mod relay_connection;

/// One edge of an automaton's diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// State name before.
    pub from: &'static str,
    /// Event (or condition) name.
    pub event: &'static str,
    /// State name after.
    pub to: &'static str,
}

/// Builds a [`Transition`] (short, for transition tables).
pub const fn t(from: &'static str, event: &'static str, to: &'static str) -> Transition {
    Transition { from, event, to }
}

/// An automaton kind: its name and its transition table.
pub type Kind = (&'static str, &'static [Transition]);

/// The automata kinds of the runtime itself (wings add theirs).
pub const KINDS: &[Kind] = &[(relay_connection::NAME, relay_connection::TRANSITIONS)];

/// The transition table of automaton kind `name` among `kinds`.
pub fn transitions(kinds: &[Kind], name: &str) -> Option<&'static [Transition]> {
    kinds.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// A Mermaid `stateDiagram-v2` of a transition table.
pub fn mermaid(table: &[Transition]) -> String {
    let mut out = String::from("stateDiagram-v2\n");
    if let Some(first) = table.first() {
        out.push_str(&format!("    [*] --> {}\n", first.from));
    }
    for tr in table {
        out.push_str(&format!("    {} --> {}: {}\n", tr.from, tr.to, tr.event));
    }
    out
}

/// A Graphviz DOT digraph of a transition table.
pub fn dot(name: &str, table: &[Transition]) -> String {
    let mut out = format!("digraph \"{name}\" {{\n    rankdir=LR;\n");
    for tr in table {
        out.push_str(&format!("    \"{}\" -> \"{}\" [label=\"{}\"];\n", tr.from, tr.to, tr.event));
    }
    out.push_str("}\n");
    out
}

/// Checks that `from --event--> to` is in `table` (used by the automata's tests and debug assertions).
pub fn allowed(table: &[Transition], from: &str, event: &str, to: &str) -> bool {
    from == to || table.iter().any(|t| t.from == from && t.to == to && t.event == event)
}
