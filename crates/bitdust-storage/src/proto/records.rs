//! The storage wing's DHT records: what a new device needs to find its suppliers from the key alone.

use serde::{Deserialize, Serialize};

/// The DHT key under which nodes offering supplier service announce themselves as providers.
pub const SUPPLIERS_SERVICE_KEY: &[u8] = b"/bitdust/service/supplier/v1";

/// Payload of a [`bitdust_core::record::RecordKind::Suppliers`] record: who holds which position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SupplierList {
    /// `(position, supplier peer id bytes)` pairs.
    pub suppliers: Vec<(u16, Vec<u8>)>,
}
