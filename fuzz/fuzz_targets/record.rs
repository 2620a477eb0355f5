//! A DHT record under a key, from any node: verified against the key or refused; never a panic. The first byte
//! splits the input into key and value.
#![no_main]

use bitdust_core::record::SignedRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let (key, value) = rest.split_at((split as usize).min(rest.len()));
    if let Ok((record, publisher)) = SignedRecord::decode_verified(key, value) {
        assert_eq!(record.key().ok().as_deref(), Some(key));
        assert_eq!(record.publisher, publisher.to_bytes());
    }
});
