//! # bitdust-storage
//!
//! The storage wing of bitdust: a customer's files are compressed, encrypted and cut into blocks on its own
//! machine; each block is erasure-coded into n fragments, fragment i of every block going to the supplier at
//! position i; any k of the n suppliers give everything back; lost fragments are regenerated from encrypted
//! ones, without the key.
//!
//! - [`proto`] (always built): the pure protocol: pipeline, erasure coding, fragments, catalog, wire messages and
//!   their codec, rebuild planning, audits, the DHT records, the automata. No tokio, no sockets, no disk.
//! - [`service`] (feature `service`, on by default): the customer, the supplier and the maintenance actor on the
//!   node runtime, plugged in through [`service::StorageService`]; [`config`]: the wing's settings.
//!
//! ```
//! use bitdust_core::keys::NodeKeys;
//! use bitdust_storage::proto::{erasure::Layout, pipeline::{BlockDecoder, BlockEncoder, VersionKeys}};
//!
//! let keys = NodeKeys::generate();
//! let version = VersionKeys::derive(keys.master(), [0u8; 16]);
//! let layout = Layout::for_suppliers(4).unwrap(); // RS(2, 4)
//! let block = BlockEncoder::new(layout, version.clone()).unwrap().encode(0, b"hello").unwrap();
//! // any 2 of the 4 fragments give the block back
//! let some: Vec<(usize, &[u8])> = vec![(1, &block.fragments[1]), (3, &block.fragments[3])];
//! let plain = BlockDecoder::new(layout, &version).unwrap().decode(&block.meta, &some).unwrap();
//! assert_eq!(plain, b"hello");
//! ```

pub mod proto;

#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
pub mod service;

#[cfg(feature = "service")]
pub use service::{Overrides, Storage, StorageService};
