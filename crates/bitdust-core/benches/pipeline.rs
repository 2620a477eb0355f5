//! Pipeline micro-benchmarks, one core: encode (zstd → AES-256-GCM → RS → fragments with BLAKE3) and
//! decode (hash checks → RS → AES-GCM → zstd) of 4 MiB incompressible blocks, for BitDust's supplier counts.
//! Decode is measured twice: from the k data fragments (no RS work) and with every data fragment lost
//! (all from parity: the worst case). A raw AES-256-GCM and BLAKE3 baseline is printed beside them.
//!
//! Run: `cargo bench -p bitdust-core --bench pipeline` (add `-- --quick` for a fast pass).

use aes_gcm::aead::{Aead, KeyInit};
use bitdust_core::erasure::Layout;
use bitdust_core::keys::NodeKeys;
use bitdust_core::pipeline::{BlockDecoder, BlockEncoder, VersionKeys, BLOCK_SIZE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn random_block() -> Vec<u8> {
    let mut x = 0x2545F4914F6CDD1Du64;
    (0..BLOCK_SIZE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let plain = random_block();
    let keys = VersionKeys::derive(NodeKeys::from_seed([1; 32]).expect("seed").master(), [2; 16]);
    let mut g = c.benchmark_group("baseline");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    g.sample_size(20);
    let aes = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
    g.bench_function("aes-256-gcm", |b| b.iter(|| aes.encrypt(&[0u8; 12].into(), plain.as_slice()).expect("encrypt")));
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(&plain)));
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    g.sample_size(20);
    for n in bitdust_core::erasure::STANDARD_SUPPLIER_COUNTS {
        let layout = Layout::for_suppliers(n).expect("layout");
        let mut enc = BlockEncoder::new(layout, keys.clone()).expect("encoder");
        g.bench_with_input(BenchmarkId::new("encode", n), &plain, |b, p| b.iter(|| enc.encode(0, p).expect("encode")));
        let block = enc.encode(0, &plain).expect("encode");
        let mut dec = BlockDecoder::new(layout, &keys).expect("decoder");
        let k = layout.k as usize;
        let data: Vec<(usize, &[u8])> = (0..k).map(|j| (j, block.fragments[j].as_slice())).collect();
        g.bench_function(BenchmarkId::new("decode-data", n), |b| {
            b.iter(|| dec.decode(&block.meta, &data).expect("decode"))
        });
        let parity_start = n as usize - k;
        let worst: Vec<(usize, &[u8])> =
            (parity_start..n as usize).map(|j| (j, block.fragments[j].as_slice())).collect();
        g.bench_function(BenchmarkId::new("decode-parity", n), |b| {
            b.iter(|| dec.decode(&block.meta, &worst).expect("decode"))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
