//! # bitdust-node
//!
//! The services of a bitdust node, over `bitdust-net` and `bitdust-store`:
//! - the supplier service: answers `/bitdust/storage/1` requests from the authenticated sender
//!   (contracts, fragments, catalogs) out of a [`bitdust_store::FragmentStore`];
//! - the customer service: hires suppliers found in the DHT, backs up and restores ([`customer`]);
//! - the node's [`home`] (keys, identity, config) and the [`node::Node`] that ties them together.

pub mod archive;
pub mod customer;
pub mod home;
pub mod maintenance;
pub mod node;
mod relay;

pub use customer::{BackupReport, RestoreReport, SupplierSlot};
pub use home::{Config, Home};
pub use node::{Job, Node, Progress, StartOptions, Status};
