//! A sealed catalog from a supplier: decoded, its signature checked and opened with our key, or refused; never a
//! panic, and nothing but a catalog sealed by the key's owner opens.
#![no_main]

use std::sync::LazyLock;

use bitdust_core::keys::NodeKeys;
use bitdust_storage::proto::catalog::SealedCatalog;
use libfuzzer_sys::fuzz_target;

static KEYS: LazyLock<NodeKeys> = LazyLock::new(|| NodeKeys::from_seed([7; 32]).expect("a fixed seed"));

fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = SealedCatalog::decode(data) {
        if let Ok(owner) = sealed.verify() {
            if sealed.open(&KEYS).is_ok() {
                assert_eq!(owner, KEYS.peer_id(), "only our own catalog opens with our key");
            }
        }
    }
});
