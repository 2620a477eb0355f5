//! `bitdust daemon`: the node, its wings and the local API, until stopped.

use anyhow::Result;
use bitdust::out;
use bitdust_core::human_bytes;
use bitdust_node::{Daemon, Home, StartOptions};
use bitdust_storage::{Overrides, Storage};

use super::wings;

/// Runs the daemon until Ctrl-C, SIGTERM or `POST /api/v1/shutdown`.
///
/// # Errors
/// If the node cannot start or the API port cannot be bound.
pub async fn run(home: Home, opts: StartOptions, storage: Overrides) -> Result<()> {
    let daemon = Daemon::start(home.clone(), opts, wings(storage)).await?;
    let node = daemon.node().clone();
    let _pid = bitdust_node::PidFile::create(home.path("daemon.pid"))?;
    // a new token at every start: one that leaked while the daemon was stopped is worth nothing now
    home.rotate_api_token()?;
    let token = home.api_token()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let (addr, listener) = bitdust_node::http::bind(node.config().api_port).await?;
    let router = daemon.router(token, addr.port(), tx);
    bitdust_store::write_atomic(&home.path("api.port"), addr.port().to_string().as_bytes())?;
    let id = node.identity();
    out!("bitdust daemon {} ({})", id.identity.global_id(), node.peer_id());
    for a in &id.identity.addresses {
        out!("  listening on {a}");
    }
    out!("  API on http://{addr}/api/v1 (token in {})", home.path("api.token").display());
    out!("  web UI on http://{addr}/ (`bitdust ui` prints a login link)");
    if let Some(store) = daemon.service::<Storage>().and_then(|s| s.store().cloned()) {
        out!("  supplier: {} donated", human_bytes(store.donated_bytes()));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let events = node.events().clone();
    let stop = async move {
        tokio::select! {
            _ = rx.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        // end the long polls and WebSockets now: the graceful shutdown waits for requests in flight
        events.close();
    };
    bitdust_node::http::serve(listener, router, stop).await?;
    daemon.shutdown().await;
    let _ = std::fs::remove_file(home.path("api.port"));
    Ok(())
}
