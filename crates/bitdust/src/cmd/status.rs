//! `bitdust status`: identity, network, roles.

use anyhow::Result;
use bitdust_api::{Reachability, Status};
use bitdust_core::human_bytes;
use bitdust_node::Home;

use super::print;
use bitdust::client::Client;

/// Runs the command.
///
/// # Errors
/// If the daemon does not answer.
pub fn run(home: &Home, json: bool) -> Result<()> {
    let v: Status = Client::for_home(home)?.get("/status")?;
    print(json, &v, text);
    Ok(())
}

fn text(v: &Status) -> String {
    let n = &v.node;
    let mut s = format!(
        "node        {}\npeer id     {}\nidentity    revision {}\naddresses   {}\nnetwork     {} connected peers, {} in routing table, {}\n",
        n.global_id,
        n.peer_id,
        n.identity_revision,
        n.listen_addrs.join(" "),
        n.connected_peers,
        n.routing_table_size,
        if n.announced { "announced in the DHT" } else { "not yet announced in the DHT" },
    );
    if let Some(st) = &v.storage {
        if st.supplier {
            s += &format!(
                "supplier    {} of {} donated used, {} customers\n",
                human_bytes(st.stored_bytes),
                human_bytes(st.donated_bytes),
                st.customers
            );
        }
        s += &format!(
            "customer    {} of {} suppliers hired, {} backups (catalog revision {})\n",
            st.suppliers_hired, st.suppliers_wanted, st.backups, st.catalog_revision
        );
        for set in &st.backup_sets {
            s += &format!("backup set  {}\n", super::schedule::line(set));
        }
    }
    let reachability = match n.reachability {
        Reachability::Public => "public",
        Reachability::Private => "private",
        Reachability::Unknown => "unknown",
    };
    s += &format!(
        "nat         reachability {reachability}; relays in use: {}{}",
        if n.relays.is_empty() { "none".to_string() } else { n.relays.join(", ") },
        if n.relay_server { "; serving as a relay" } else { "" }
    );
    for c in &n.connections {
        s += &format!("\n  {} {:<8} {}", c.peer_id, if c.relayed { "relayed" } else { "direct" }, c.address);
    }
    s
}
