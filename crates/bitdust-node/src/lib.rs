//! # bitdust-node
//!
//! The runtime of a bitdust node, over `bitdust-net` and `bitdust-store`, on which feature wings run:
//! - [`Node`]: the node context: keys, identity, the network handle, the database, peer reachability
//!   (identity lookups, peers found unreachable), DHT announcements, the automata [`Registry`] and [`Jobs`];
//! - [`Service`]: how a wing (storage, later messages and sharing) registers its protocols, automata, API
//!   routes and background tasks; [`Daemon`]: the composition root that starts a node and its wings;
//! - [`http`]: the local API server (authentication, errors to status codes, the runtime's routes);
//! - [`settings`]: the config read and written through the API (checked by every wing), the key exported;
//! - [`ui`]: the web UI's files, login links and sessions, and the Host and Origin checks;
//! - [`home`]: the home folder and `config.toml` (wings keep their own sections);
//! - [`Vault`]: the user's own objects on its suppliers (provided by the storage wing, used by the others);
//! - the relay connection (NAT traversal), the runtime's own automaton.
//!
//! Nothing here imports a wing.

pub mod automata;
pub mod events;
pub mod home;
pub mod http;
pub mod jobs;
pub mod node;
mod relay;
pub mod service;
pub mod settings;
pub mod ui;
pub mod vault;

pub use automata::{AutomatonInfo, Registry};
pub use events::Events;
pub use home::{Config, Home};
pub use jobs::{Jobs, Progress};
pub use node::{Node, StartOptions, UNREACHABLE_FOR};
pub use service::{automata_kinds, openapi, Daemon, PidFile, Service, Started};
pub use vault::Vault;
