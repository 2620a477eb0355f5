//! `bitdust automata`: every state machine and its state; `--diagram KIND [--dot]`: a kind's diagram.

use anyhow::{Context, Result};
use bitdust_api::Automata;
use bitdust_node::Home;
use bitdust_storage::Overrides;
use serde::Serialize;

/// `--diagram KIND` as JSON.
#[derive(Debug, Serialize)]
struct Diagram {
    kind: String,
    diagram: String,
}

use super::{now_ms, print, wings};
use bitdust::client::Client;

/// The automata kinds of the runtime and every wing (for diagrams without a running daemon).
pub fn kinds() -> Vec<bitdust_core::automata::Kind> {
    bitdust_node::automata_kinds(&wings(Overrides::default()))
}

/// `--diagram KIND`: Mermaid, or Graphviz DOT with `dot`.
///
/// # Errors
/// An unknown kind (the message lists them).
pub fn diagram(kind: &str, dot: bool, json: bool) -> Result<()> {
    let all = kinds();
    let table = bitdust_core::automata::transitions(&all, kind).with_context(|| {
        let names: Vec<&str> = all.iter().map(|(k, _)| *k).collect();
        format!("no automaton kind {kind:?} (kinds: {})", names.join(", "))
    })?;
    let text = if dot { bitdust_core::automata::dot(kind, table) } else { bitdust_core::automata::mermaid(table) };
    print(json, &Diagram { kind: kind.to_string(), diagram: text.clone() }, |_| text.trim_end().to_string());
    Ok(())
}

/// Every instance and its state.
///
/// # Errors
/// If the daemon does not answer.
pub fn list(home: &Home, json: bool) -> Result<()> {
    let v: Automata = Client::for_home(home)?.get("/automata")?;
    print(json, &v, |v| {
        let now = now_ms();
        let mut s = String::from("AUTOMATON                 STATE          FOR      DETAILS");
        for a in &v.automata {
            let details: Vec<String> = a
                .details
                .as_object()
                .map(|o| o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            s += &format!(
                "\n{:<25} {:<14} {:>6}s  {}",
                a.name,
                a.state,
                now.saturating_sub(a.since_unix_ms) / 1000,
                details.join(" ")
            );
        }
        s
    });
    Ok(())
}
