//! Frame codec throughput: `encode_frame_into` into a reused buffer and `FrameDecoder::feed`
//! of whole frames (each payload is copied once into its aligned buffer and hashed).
//! `cargo bench -p trireme-net --bench frame`.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use trireme_net::{encode_frame, encode_frame_into, ClusterHash, FrameDecoder, FrameKind};

const SIZES: [usize; 3] = [64, 4096, 1 << 20];

fn encode(c: &mut Criterion) {
    let cluster = ClusterHash::of("bench");
    let mut group = c.benchmark_group("encode_frame_into");
    group.measurement_time(Duration::from_secs(2));
    for size in SIZES {
        let payload = vec![0x5au8; size];
        let mut buf = Vec::with_capacity(size + 64);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, p| {
            b.iter(|| {
                buf.clear();
                encode_frame_into(FrameKind::Group, cluster, black_box(p), &mut buf).unwrap();
                black_box(buf.len())
            })
        });
    }
    group.finish();
}

fn decode(c: &mut Criterion) {
    let cluster = ClusterHash::of("bench");
    let mut group = c.benchmark_group("FrameDecoder::feed");
    group.measurement_time(Duration::from_secs(2));
    for size in SIZES {
        let frame = encode_frame(FrameKind::Group, cluster, &vec![0x5au8; size]).unwrap();
        let mut decoder = FrameDecoder::new(cluster, 64 << 20);
        let mut frames = Vec::with_capacity(1);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &frame, |b, f| {
            b.iter(|| {
                frames.clear();
                decoder.feed(black_box(f), &mut frames).unwrap();
                black_box(frames.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, encode, decode);
criterion_main!(benches);
