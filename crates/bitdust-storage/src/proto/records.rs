//! The storage wing's DHT records: what a new device needs to find its suppliers from the key alone.

/// The DHT key under which nodes offering supplier service announce themselves as providers.
pub const SUPPLIERS_SERVICE_KEY: &[u8] = b"/bitdust/service/supplier/v1";

/// Payload of a [`bitdust_core::record::RecordKind::Suppliers`] record (the type lives in core: other wings read it).
pub use bitdust_core::record::SupplierList;
