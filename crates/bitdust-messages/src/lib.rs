//! # bitdust-messages
//!
//! The messages wing of bitdust ("DusTalk"): people find each other by nickname and talk privately, with no
//! server. This first part is the address book:
//!
//! - [`proto`] (always built): contacts, how a contact is named (`nickname`, `nickname@short peer id`, peer id),
//!   safety numbers both sides compare out of band, and the flags raised when a contact's keys change. Pure: no
//!   tokio, no sockets, no disk.
//! - [`service`] (feature `service`, on by default): the wing on the node runtime ([`service::MessagesService`]):
//!   contacts resolved through signed nickname claims and identity records in the DHT, kept in the node database,
//!   served on the local API.
//!
//! ```
//! use bitdust_core::keys::NodeKeys;
//! use bitdust_messages::proto::contacts::safety_number;
//!
//! let (alice, bob) = (NodeKeys::generate().peer_id(), NodeKeys::generate().peer_id());
//! // both sides compute the same 60 digits, whoever asks
//! assert_eq!(safety_number(&alice, &bob), safety_number(&bob, &alice));
//! assert_eq!(safety_number(&alice, &bob).split(' ').count(), 12);
//! ```

pub mod proto;

#[cfg(feature = "service")]
pub mod service;

#[cfg(feature = "service")]
pub use service::{Messages, MessagesService};
