//! Chunking micro-benchmark, one core: scanning a tree and cutting its archive stream into the pipeline's
//! 4 MiB blocks ([`bitdust_node::archive::StreamReader`]), from the page cache (the files are read once before
//! measuring). Two trees: one 64 MiB file, and 2,048 files of 16 KiB (32 MiB, where per-file open and metadata
//! costs dominate).
//!
//! Run: `cargo bench -p bitdust-storage --bench chunking` (add `-- --quick` for a fast pass).

mod common;

use std::path::Path;

use bitdust_storage::proto::pipeline::BLOCK_SIZE;
use bitdust_storage::service::archive::{scan, StreamReader};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn write_pseudo_random(path: &Path, len: usize, seed: u64) {
    std::fs::write(path, common::pseudo_random(seed, len)).expect("writing a bench file");
}

/// Reads the whole tree at `root` in blocks; returns the bytes read.
fn chunk(root: &Path) -> u64 {
    let s = scan(root).expect("scan");
    let mut reader = StreamReader::new(root, &s);
    let mut buf = Vec::with_capacity(BLOCK_SIZE);
    let mut total = 0u64;
    loop {
        reader.next_block(&mut buf, BLOCK_SIZE).expect("read");
        if buf.is_empty() {
            return total;
        }
        total += buf.len() as u64;
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big");
    let small = dir.path().join("small");
    std::fs::create_dir_all(&big).expect("mkdir");
    std::fs::create_dir_all(&small).expect("mkdir");
    write_pseudo_random(&big.join("file"), 64 << 20, 1);
    for i in 0..2048u64 {
        write_pseudo_random(&small.join(format!("f{i:04}")), 16 << 10, i + 2);
    }
    let mut g = c.benchmark_group("chunking");
    g.sample_size(10);
    for (name, root) in [("one-64MiB-file", &big), ("2048-files-of-16KiB", &small)] {
        let bytes = chunk(root);
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(name, |b| b.iter(|| chunk(root)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
