//! Pipeline micro-benchmarks, one core, on 4 MiB blocks (the pipeline's block size):
//! - `stage/*`: each stage alone: zstd level 1 compression of incompressible and of text-like data (whole, and
//!   behind the compression probe), AES-256-GCM sealing (and ChaCha20-Poly1305, the transports'), BLAKE3 hashing;
//! - `chunk/*`: an incremental backup's new 1 MiB chunk, ref and seal;
//! - `rs-encode/n` and `rs-decode-lost/n`: Reed-Solomon alone for BitDust's supplier counts 2, 4, 7, 13, 18,
//!   26, 64 (RS(ceil(n/2), n)): parity of one block, and rebuilding it with n - k data shards lost (the most
//!   a layout survives);
//! - `pipeline/encode/n`, `pipeline/decode-data/n`, `pipeline/decode-parity/n`: the whole block pipeline
//!   (zstd → AES-256-GCM → RS → fragments with BLAKE3, and back with hash checks) from the k data fragments (no
//!   RS work) and with every data fragment lost (all from parity: the worst case).
//!
//! Chunking (cutting files into blocks) is benchmarked in `bitdust-node` (`--bench chunking`), where the
//! archive reader lives. Run: `cargo bench -p bitdust-core --bench pipeline` (add `-- --quick` for a fast pass).

mod common;

use bitdust_core::keys::NodeKeys;
use bitdust_storage::proto::chunk::{self, ChunkKeys};
use bitdust_storage::proto::erasure::{Coder, Layout};
use bitdust_storage::proto::pipeline::{compress_if_worth, BlockDecoder, BlockEncoder, VersionKeys, BLOCK_SIZE};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, CHACHA20_POLY1305};

fn random_block() -> Vec<u8> {
    common::pseudo_random(0x2545F4914F6CDD1D, BLOCK_SIZE)
}

/// Text-like, compressible data: words from a small vocabulary (zstd level 1 reaches about 3-4x on it).
fn text_block() -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "backup ",
        "supplier ",
        "customer ",
        "the ",
        "of ",
        "fragment ",
        "block ",
        "and ",
        "key ",
        "a ",
        "node ",
        "\n",
    ];
    let mut out = Vec::with_capacity(BLOCK_SIZE);
    for x in common::xorshift(0x9E3779B97F4A7C15) {
        if out.len() >= BLOCK_SIZE {
            break;
        }
        out.extend_from_slice(WORDS[(x % WORDS.len() as u64) as usize].as_bytes());
    }
    out.truncate(BLOCK_SIZE);
    out
}

fn bench(c: &mut Criterion) {
    let plain = random_block();
    let text = text_block();
    let keys = VersionKeys::derive(NodeKeys::from_seed([1; 32]).expect("seed").master(), [2; 16]);
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    g.sample_size(20);
    let mut zstd = zstd::bulk::Compressor::new(bitdust_storage::proto::pipeline::ZSTD_LEVEL).expect("zstd");
    g.bench_function("zstd-1-random", |b| b.iter(|| zstd.compress(&plain).expect("compress")));
    g.bench_function("zstd-1-text", |b| b.iter(|| zstd.compress(&text).expect("compress")));
    // the compression probe: incompressible data is sampled and left alone; text is sampled, then compressed
    g.bench_function("probe-zstd-1-random", |b| b.iter(|| compress_if_worth(&mut zstd, &plain)));
    g.bench_function("probe-zstd-1-text", |b| b.iter(|| compress_if_worth(&mut zstd, &text)));
    let aes = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
    let mut sealed = plain.clone();
    g.bench_function("aes-256-gcm", |b| {
        b.iter(|| {
            sealed.copy_from_slice(&plain);
            aes.seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut sealed)
                .expect("seal")
        })
    });
    // the transports' AEADs (Noise and libp2p-tls negotiate ChaCha20-Poly1305 between rust-libp2p peers)
    let chacha = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).expect("key"));
    g.bench_function("chacha20-poly1305", |b| {
        b.iter(|| {
            sealed.copy_from_slice(&plain);
            chacha
                .seal_in_place_separate_tag(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), &mut sealed)
                .expect("seal")
        })
    });
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(&plain)));
    g.finish();

    // an incremental backup's new chunk (1 MiB, FastCDC's average): its ref (two keyed BLAKE3 hashes), then sealing
    // (probe, zstd, AES-256-GCM-SIV); `ref-then-seal` hashed it twice more before `seal_with`
    let chunk_keys = ChunkKeys::derive(NodeKeys::from_seed([1; 32]).expect("seed").master());
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Bytes(1 << 20));
    g.sample_size(20);
    for (name, data) in [("random", &plain[..1 << 20]), ("text", &text[..1 << 20])] {
        g.bench_function(BenchmarkId::new("ref-then-seal", name), |b| {
            b.iter(|| (chunk_keys.reference(data), chunk_keys.seal(data, &mut zstd)))
        });
        g.bench_function(BenchmarkId::new("ref-then-seal-with", name), |b| {
            b.iter(|| chunk::seal_with(chunk_keys.reference(data), data, &mut zstd))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("rs");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    g.sample_size(20);
    let mut coder = Coder::new();
    for n in bitdust_storage::proto::erasure::STANDARD_SUPPLIER_COUNTS {
        let layout = Layout::for_suppliers(n).expect("layout");
        let (k, n) = (layout.k as usize, layout.n as usize);
        let shard_len = layout.shard_len(BLOCK_SIZE);
        let mut padded = plain.clone();
        padded.resize(k * shard_len, 0);
        let data: Vec<&[u8]> = padded.chunks(shard_len).collect();
        g.bench_function(BenchmarkId::new("encode", n), |b| b.iter(|| coder.encode(layout, &data).expect("encode")));
        let parity = coder.encode(layout, &data).expect("encode");
        // The n - k first data shards are lost: the k survivors are the last data shards and every parity shard.
        let lost = n - k;
        let survivors: Vec<(usize, &[u8])> = (lost..k)
            .map(|j| (j, data[j]))
            .chain(parity.iter().enumerate().map(|(j, p)| (k + j, p.as_slice())))
            .collect();
        g.bench_function(BenchmarkId::new("decode-lost", n), |b| {
            b.iter(|| coder.decode(layout, &survivors).expect("decode"))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(BLOCK_SIZE as u64));
    g.sample_size(20);
    for n in bitdust_storage::proto::erasure::STANDARD_SUPPLIER_COUNTS {
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
