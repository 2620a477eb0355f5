//! The storage wing's automata, each a pure transition function with its table
//! ([`bitdust_core::automata::Transition`]):
//! - [`supplier_connection`]: one per hired supplier: connecting, connected, suspect, offline, refused, fired.
//! - [`hire_fire`]: one per customer: decides replacements, one at a time with a cool-down, so a short outage
//!   fires nobody and churn causes no storm.
//! - [`rebuild`]: one per customer: idle, rebuilding, waiting for suppliers.

use bitdust_core::automata::Kind;

pub mod hire_fire;
pub mod rebuild;
pub mod supplier_connection;

/// The storage wing's automata kinds.
pub const KINDS: &[Kind] = &[
    (supplier_connection::NAME, supplier_connection::TRANSITIONS),
    (hire_fire::NAME, hire_fire::TRANSITIONS),
    (rebuild::NAME, rebuild::TRANSITIONS),
];
