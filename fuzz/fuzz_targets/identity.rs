//! An identity document from the DHT or a peer: decoded and verified, or refused; never a panic.
#![no_main]

use bitdust_core::identity::SignedIdentity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(identity) = SignedIdentity::decode_verified(data) {
        assert!(identity.verify().is_ok());
    }
});
