//! A lying supplier's fragments: one block is encoded once; the fuzzer replaces the fragments of some positions
//! with its own bytes. Decoding returns the block's exact plaintext or an error, never other bytes, never a panic.
#![no_main]

use std::sync::LazyLock;

use bitdust_core::keys::NodeKeys;
use bitdust_storage::proto::erasure::Layout;
use bitdust_storage::proto::pipeline::{BlockDecoder, BlockEncoder, EncodedBlock, VersionKeys};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    layout: Layout,
    keys: VersionKeys,
    plain: Vec<u8>,
    block: EncodedBlock,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let master = NodeKeys::from_seed([3; 32]).expect("a fixed seed");
    let keys = VersionKeys::derive(master.master(), [9; 16]);
    let layout = Layout::new(2, 4).expect("RS(2, 4)");
    let plain: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let block = BlockEncoder::new(layout, keys.clone()).expect("encoder").encode(0, &plain).expect("encodes");
    Fixture { layout, keys, plain, block }
});

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    // first byte: which positions are replaced (bits 0-3) and which are given at all (bits 4-7)
    let Some((&mask, forged)) = data.split_first() else { return };
    let mut fragments: Vec<(usize, &[u8])> = Vec::new();
    for (i, real) in f.block.fragments.iter().enumerate() {
        if mask & (0x10 << i) != 0 {
            continue;
        }
        fragments.push((i, if mask & (1 << i) != 0 { forged } else { real.as_slice() }));
    }
    let mut decoder = BlockDecoder::new(f.layout, &f.keys).expect("decoder");
    if let Ok(plain) = decoder.decode(&f.block.meta, &fragments) {
        assert_eq!(plain, f.plain, "a block decoded to other bytes than were encoded");
    }
});
