//! Certification throughput on a sysbench-like stream.
//!
//! Workload: writesets of 3 keys each (database and table as Shared prefixes, one row key as
//! Update or Exclusive), 10 tables of 100,000 rows, 3 source nodes, `last_seen = seqno - 4`,
//! and a purge every 128 writesets that keeps the last 1,024 seqnos (as a commit cut would).
//! The row choice is a fixed LCG: every run measures the same stream.
//!
//! - `CertSlice::check`: keys per second through one slice's read-only check, on a slice that
//!   holds the steady-state index (1 slice of 1, and slice 0 of 4, counting only owned keys).
//! - `Certifier::certify`: keys per second through the facade (check, merge, apply, purge)
//!   with 1, 2 and 4 slices on one thread.
//!
//! `cargo bench -p trireme-cert` measures; `cargo bench -p trireme-cert -- --test` runs each once.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use trireme_cert::{CertConfig, CertSlice, Certifier, CheckInput, Mode, Verdict};
use trireme_types::{key_hashes, KeyType, NodeId, Seqno, Uuid, WsFlags, WsKey};

const STREAM_LEN: usize = 4096;
const BATCH: usize = 1024;
const KEEP_SEQNOS: i64 = 1024;
const PURGE_EVERY: i64 = 128;

struct Item {
    source: NodeId,
    keys: Vec<WsKey>,
}

fn stream() -> Vec<Item> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..STREAM_LEN)
        .map(|i| {
            let table = format!("sbtest{}", next() % 10);
            let row = (next() % 100_000).to_le_bytes();
            let hashes = key_hashes(&[b"sbtest", table.as_bytes(), &row]);
            let row_type = if i % 4 == 0 {
                KeyType::Exclusive
            } else {
                KeyType::Update
            };
            let keys = vec![
                WsKey {
                    hash: hashes[0],
                    kind: KeyType::Shared as u8,
                },
                WsKey {
                    hash: hashes[1],
                    kind: KeyType::Shared as u8,
                },
                WsKey {
                    hash: hashes[2],
                    kind: row_type as u8,
                },
            ];
            Item {
                source: NodeId(Uuid([(i % 3) as u8 + 1; 16])),
                keys,
            }
        })
        .collect()
}

fn input(item: &Item, seqno: i64) -> CheckInput<'_> {
    CheckInput {
        seqno: Seqno(seqno),
        source: item.source,
        last_seen: Seqno(seqno - 4),
        flags: WsFlags(WsFlags::TRX_START | WsFlags::TRX_END),
        keys: &item.keys,
        mode: Mode::Certify,
    }
}

/// Feeds the stream through a certifier forever, purging like a commit cut would.
struct Driver {
    cert: Certifier,
    seqno: i64,
    cursor: usize,
}

impl Driver {
    fn new(shards: u32) -> Driver {
        let cert = Certifier::new(shards, Seqno(0), CertConfig::default()).expect("valid shards");
        Driver {
            cert,
            seqno: 0,
            cursor: 0,
        }
    }

    fn step(&mut self, items: &[Item]) -> Verdict {
        self.seqno += 1;
        let item = &items[self.cursor];
        self.cursor = (self.cursor + 1) % items.len();
        if self.seqno % PURGE_EVERY == 0 {
            self.cert.purge_below(Seqno(self.seqno - KEEP_SEQNOS));
        }
        self.cert
            .certify_input(&input(item, self.seqno))
            .expect("seqnos increase")
    }
}

/// A slice holding the steady-state index: the last `KEEP_SEQNOS` writesets of the stream.
fn warm_slice(index: u32, shard_count: u32, items: &[Item]) -> CertSlice {
    let mut slice = CertSlice::new(index, shard_count).expect("valid slice");
    let pass = Verdict::Pass {
        depends_on: Seqno(0),
    };
    for (i, item) in items.iter().enumerate().take(KEEP_SEQNOS as usize) {
        slice.apply(&input(item, i as i64 + 1), &pass);
    }
    slice
}

fn slice_check(c: &mut Criterion) {
    let items = stream();
    let mut group = c.benchmark_group("CertSlice::check");
    for (index, shard_count) in [(0u32, 1u32), (0, 4)] {
        let slice = warm_slice(index, shard_count, &items);
        let batch: Vec<CheckInput<'_>> = items[..BATCH]
            .iter()
            .enumerate()
            .map(|(i, item)| input(item, KEEP_SEQNOS + 1 + i as i64))
            .collect();
        let owned: usize = batch
            .iter()
            .flat_map(|b| b.keys)
            .filter(|k| slice.owns(k.hash))
            .count();
        group.throughput(Throughput::Elements(owned as u64));
        group.bench_with_input(
            BenchmarkId::new("owned_keys", format!("slice {index} of {shard_count}")),
            &batch,
            |b, batch| {
                b.iter(|| {
                    for input in batch {
                        black_box(slice.check(input));
                    }
                })
            },
        );
    }
    group.finish();
}

fn facade_certify(c: &mut Criterion) {
    let items = stream();
    let keys_per_batch: usize = items.iter().cycle().take(BATCH).map(|i| i.keys.len()).sum();
    let mut group = c.benchmark_group("Certifier::certify");
    group.throughput(Throughput::Elements(keys_per_batch as u64));
    for shards in [1u32, 2, 4] {
        let mut driver = Driver::new(shards);
        for _ in 0..STREAM_LEN {
            driver.step(&items); // reach the steady-state index size first
        }
        group.bench_function(BenchmarkId::new("keys", format!("{shards} slices")), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    black_box(driver.step(&items));
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, slice_check, facade_certify);
criterion_main!(benches);
