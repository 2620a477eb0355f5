//! Fragment bytes from a supplier or the disk: parsed or refused, never a panic; what parses has a shard that
//! matches its header's length.
#![no_main]

use bitdust_storage::proto::fragment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, shard)) = fragment::parse(data) {
        assert!(shard.len() <= data.len());
    }
});
