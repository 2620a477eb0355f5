//! Feature wings plug into the runtime through [`Service`]; [`Daemon`] is the composition root that starts the
//! node and its wings.
//!
//! ```text
//! Daemon::start(home, options, [wings])
//!   1. each wing's protocols()                 registered with the network before it starts
//!   2. Node::start                             network, identity, announcements, relay connection
//!   3. each wing's start(node, inbounds)       takes its protocols' inbound queues, spawns its tasks,
//!                                              adds provider keys (Node::provide), returns its handle + routes
//!   4. Node::start_announcing                  identity and provider records (the wings' keys included)
//!   5. the API router: runtime routes + every wing's routes, behind one authentication layer
//! ```
//! A wing holds an `Arc<Node>`; the node holds no wing (nothing below imports a wing). Wings find each other
//! through [`Daemon::service`] at composition time.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use bitdust_core::automata::Kind;
use bitdust_net::{Inbounds, ProtocolSpec};

use crate::home::Home;
use crate::http::StatusSection;
use crate::node::{Node, StartOptions};

/// What a started wing gives the runtime.
pub struct Started {
    /// The wing's handle, for other wings, tests and the composition root ([`Daemon::service`]).
    pub handle: Arc<dyn Any + Send + Sync>,
    /// Its API routes (paths under `/api/v1/`), served behind the runtime's authentication.
    pub routes: axum::Router,
    /// Its section of `GET /api/v1/status`.
    pub status: Option<Arc<dyn StatusSection>>,
}

/// A feature wing: storage, later messages, sharing, scrubbing.
#[async_trait]
pub trait Service: Send + 'static {
    /// The wing's name (`storage`).
    fn name(&self) -> &'static str;

    /// Its request-response protocols, registered with the network before it starts.
    fn protocols(&self) -> Vec<ProtocolSpec> {
        Vec::new()
    }

    /// Its automata kinds, with their transition tables (for diagrams).
    fn automata(&self) -> &'static [Kind] {
        &[]
    }

    /// Its routes' part of the OpenAPI document (known without starting it, so the document can be printed
    /// and checked without a running node).
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApi::default()
    }

    /// Starts the wing on the running node: takes the inbound queues of its protocols from `inbounds`,
    /// spawns its background tasks and returns its handle and routes.
    ///
    /// # Errors
    /// If the wing cannot start (its config section is invalid, its store cannot open).
    async fn start(self: Box<Self>, node: &Arc<Node>, inbounds: &mut Inbounds) -> Result<Started>;

    /// Its check of a whole config (its own sections), run before `PUT /api/v1/config` writes one.
    fn config_check(&self) -> Option<crate::settings::ConfigCheck> {
        None
    }
}

/// The OpenAPI document of a daemon running `wings` (the runtime's paths and theirs), without starting anything.
pub fn openapi(wings: &[Box<dyn Service>]) -> utoipa::openapi::OpenApi {
    crate::http::openapi(&wings.iter().map(|w| w.openapi()).collect::<Vec<_>>())
}

/// Every automaton kind of a daemon running `wings`: the runtime's and theirs (for diagrams, without a running node).
pub fn automata_kinds(wings: &[Box<dyn Service>]) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = bitdust_core::automata::KINDS.to_vec();
    for wing in wings {
        kinds.extend(wing.automata().iter().copied());
    }
    kinds
}

/// A running node and its wings: the composition root of the daemon, the demo, the devnet and the tests.
pub struct Daemon {
    node: Arc<Node>,
    handles: Vec<(&'static str, Arc<dyn Any + Send + Sync>)>,
    routes: Vec<axum::Router>,
    sections: Vec<Arc<dyn StatusSection>>,
    openapi: utoipa::openapi::OpenApi,
    kinds: Vec<Kind>,
    checks: Vec<crate::settings::ConfigCheck>,
}

impl Daemon {
    /// Starts the node of `home` with `wings`.
    ///
    /// # Errors
    /// If the node or a wing cannot start.
    pub async fn start(home: Home, options: StartOptions, wings: Vec<Box<dyn Service>>) -> Result<Self> {
        home.secure()?;
        let protocols = wings.iter().flat_map(|w| w.protocols()).collect();
        let (node, mut inbounds) = Node::start(home, options, protocols).await?;
        let mut handles = Vec::new();
        let mut routes = Vec::new();
        let mut sections = Vec::new();
        let openapi = openapi(&wings);
        let kinds = automata_kinds(&wings);
        let checks = wings.iter().filter_map(|w| w.config_check()).collect();
        for wing in wings {
            let name = wing.name();
            let started = match wing.start(&node, &mut inbounds).await {
                Ok(s) => s,
                Err(e) => {
                    node.shutdown().await;
                    return Err(e.context(format!("starting the {name} wing")));
                }
            };
            handles.push((name, started.handle));
            routes.push(started.routes);
            sections.extend(started.status);
        }
        node.start_announcing();
        Ok(Self { node, handles, routes, sections, openapi, kinds, checks })
    }

    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The handle of the wing whose handle type is `T`.
    pub fn service<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.handles.iter().find_map(|(_, h)| h.clone().downcast::<T>().ok())
    }

    /// The whole API router on `port` (runtime, wings and the web UI), behind the token or a UI session;
    /// `shutdown` receives when a client asks the daemon to stop.
    pub fn router(&self, token: String, port: u16, shutdown: tokio::sync::mpsc::Sender<()>) -> axum::Router {
        let parts = crate::http::Parts {
            wing_routes: self.routes.clone(),
            sections: self.sections.clone(),
            kinds: self.kinds.clone(),
            openapi: self.openapi.clone(),
            checks: self.checks.clone(),
        };
        crate::http::router(self.node.clone(), token, port, parts, shutdown)
    }

    /// The OpenAPI document of the API this daemon serves.
    pub fn openapi(&self) -> &utoipa::openapi::OpenApi {
        &self.openapi
    }

    /// Stops the network; wings stop as their queues close.
    pub async fn shutdown(&self) {
        self.node.shutdown().await;
    }
}

/// A pid file written by the daemon and removed when it exits.
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes the current pid to `path`.
    ///
    /// # Errors
    /// On write failure.
    pub fn create(path: PathBuf) -> Result<Self> {
        bitdust_store::write_atomic(&path, std::process::id().to_string().as_bytes())?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
