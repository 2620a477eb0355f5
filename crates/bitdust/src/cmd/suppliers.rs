//! `bitdust suppliers [--hire]` and `bitdust supplier replace POSITION`.

use anyhow::Result;
use bitdust_api::{Replacing, Suppliers};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print;
use bitdust::client::Client;

/// `bitdust suppliers`: who holds which position (hiring the missing ones with `hire`).
///
/// # Errors
/// If the daemon does not answer, or too few suppliers are online to hire.
pub fn list(home: &Home, hire: bool, json: bool) -> Result<()> {
    let c = Client::for_home(home)?;
    let v: Suppliers = if hire { c.post("/suppliers/hire", &())? } else { c.get("/suppliers")? };
    print(json, &v, |v| {
        if v.suppliers.is_empty() {
            return format!(
                "no suppliers hired yet (wanted: {}); `bitdust suppliers --hire` or a first backup hires them",
                v.wanted
            );
        }
        let mut s = format!(
            "{} of {} suppliers\nPOS  STATE        HOLDS                  PEER ID",
            v.suppliers.len(),
            v.wanted
        );
        for x in &v.suppliers {
            let holds = match (x.held_fragments, x.held_bytes) {
                (Some(f), Some(b)) => format!("{f} fragments, {}", human_bytes(b)),
                _ => "?".into(),
            };
            let state = x.state.clone().unwrap_or_else(|| (if x.connected { "connected" } else { "unknown" }).into());
            s += &format!("\n{:<4} {:<12} {:<22} {}", x.position, state, holds, x.peer_id);
        }
        s
    });
    Ok(())
}

/// `bitdust supplier replace POSITION`.
///
/// # Errors
/// If there is no supplier at that position, or the daemon does not answer.
pub fn replace(home: &Home, position: u16, json: bool) -> Result<()> {
    let v: Replacing = Client::for_home(home)?.post(&format!("/suppliers/{position}/replace"), &())?;
    print(json, &v, |v| {
        format!("replacing the supplier at position {}; watch it with `bitdust automata`", v.replacing)
    });
    Ok(())
}
