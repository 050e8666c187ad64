//! Append and get throughput of one slice over a real mmap'd file, for 200 B and 4 KiB
//! records, in steady state (the ring wraps and overwrites released records; nothing goes to
//! pages). `cargo bench -p trireme-gcache` to measure, `-- --test` to smoke-run once.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::path::PathBuf;
use trireme_gcache::{GCache, GCacheConfig, GCacheSlice, RecordKind};
use trireme_types::{HistoryId, Seqno, Uuid};

const CACHE_BYTES: u64 = 256 << 20;
/// Records kept unreleased behind the newest, as if commits lagged a little.
const UNRELEASED: i64 = 1000;

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open_slice(tag: &str) -> (Scratch, GCacheSlice) {
    let dir =
        std::env::temp_dir().join(format!("trireme-gcache-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cfg = GCacheConfig::new(&dir);
    cfg.size_bytes = CACHE_BYTES;
    let (cache, _) = GCache::open(cfg, HistoryId(Uuid([1; 16]))).unwrap();
    let slice = cache.into_slices().pop().unwrap();
    (Scratch(dir), slice)
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("GCacheSlice::append");
    for len in [200usize, 4096] {
        let (_dir, mut slice) = open_slice(&format!("append{len}"));
        let payload = vec![0x5au8; len];
        let mut s = 0i64;
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("{len}B"), |b| {
            b.iter(|| {
                s += 1;
                slice
                    .append(Seqno(s), RecordKind::Writeset, black_box(&payload))
                    .unwrap();
                slice.release_upto(Seqno(s - UNRELEASED));
            })
        });
        assert_eq!(
            slice.stats().page_files,
            0,
            "the bench must stay in the ring"
        );
        slice.close().unwrap();
    }
    group.finish();
}

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("GCacheSlice::get");
    for len in [200usize, 4096] {
        let (_dir, mut slice) = open_slice(&format!("get{len}"));
        let payload = vec![0xa5u8; len];
        let n = 20_000i64;
        for s in 1..=n {
            slice
                .append(Seqno(s), RecordKind::Writeset, &payload)
                .unwrap();
            slice.release_upto(Seqno(s - UNRELEASED));
        }
        let (lo, hi) = slice.range().unwrap();
        let span = hi.0 - lo.0 + 1;
        let mut i = 0i64;
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("{len}B"), |b| {
            b.iter(|| {
                // A stride through the range: not purely sequential, every record visited.
                i = (i + 7919) % span;
                let r = slice.get(Seqno(lo.0 + i)).unwrap().unwrap();
                black_box(r.payload.len())
            })
        });
        slice.close().unwrap();
    }
    group.finish();
}

criterion_group!(benches, append, get);
criterion_main!(benches);
