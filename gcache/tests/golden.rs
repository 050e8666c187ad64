//! Format compatibility: `fixtures/golden-v1.cache` was written by format version 1 (see
//! `write_golden_fixture`, run once with `--ignored`). Every later version must still read it
//! (or, after a deliberate format change, reinitialise it with a logged reason and bump the
//! version in FORMAT.md §9). After the first release this becomes a test against files written
//! by the previous release.

mod common;

use common::TempDir;
use std::path::{Path, PathBuf};
use trireme_gcache::format::FILE_MAGIC;
use trireme_gcache::{FileOutcome, GCache, GCacheConfig, RecordKind, SliceStart};
use trireme_types::{HistoryId, Seqno};

const HISTORY: &str = "6f1c2a9e-3b7d-4e21-9c55-0a8b7d6e5f40";
const LAST: i64 = 300;
/// Recorded when the fixture was written: the live range at close, which recovery finds again.
const EXPECTED_RANGE: (i64, i64) = (137, 300);

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-v1.cache")
}

fn config(dir: &Path) -> GCacheConfig {
    GCacheConfig {
        dir: dir.to_path_buf(),
        name: "galera.cache".into(),
        size_bytes: 4096 + 2 * (4096 + 8192),
        page_size_bytes: 4096,
        recover: true,
        slice_count: 2,
    }
}

fn kind_of(s: i64) -> RecordKind {
    match s % 10 {
        0 => RecordKind::ConfigurationChange,
        5 => RecordKind::Other,
        _ => RecordKind::Writeset,
    }
}

fn payload_of(s: i64) -> Vec<u8> {
    format!("golden record {s:05} {}", "x".repeat((s % 37) as usize)).into_bytes()
}

#[test]
#[ignore = "writes the fixture; run once per format version"]
fn write_golden_fixture() {
    let dir = TempDir::new("golden-write");
    let (mut cache, _) = GCache::open(config(dir.path()), HISTORY.parse().unwrap()).unwrap();
    for s in 1..=LAST {
        cache.append(Seqno(s), kind_of(s), &payload_of(s)).unwrap();
        cache.release_upto(Seqno(s - 10));
    }
    eprintln!("range when written: {:?}", cache.range());
    cache.close().unwrap();
    std::fs::copy(config(dir.path()).path(), fixture()).unwrap();
}

#[test]
fn golden_v1_fixture_is_still_read() {
    let bytes = std::fs::read(fixture()).unwrap();
    assert_eq!(&bytes[..8], &FILE_MAGIC, "the fixture's magic");
    assert_eq!(
        &bytes[8..12],
        &1u32.to_le_bytes(),
        "the fixture is format version 1"
    );

    let dir = TempDir::new("golden-read");
    std::fs::write(config(dir.path()).path(), &bytes).unwrap();
    let history: HistoryId = HISTORY.parse().unwrap();
    let (cache, report) = GCache::open(config(dir.path()), history).unwrap();
    assert_eq!(report.file, FileOutcome::Reopened);
    for s in &report.slices {
        assert_eq!(s.start, SliceStart::Recovered, "slice {}", s.slice);
        assert!(s.previous_clean, "slice {} was closed cleanly", s.slice);
        assert_eq!(s.bad_records, 0);
    }
    assert_eq!(
        cache.range(),
        Some((Seqno(EXPECTED_RANGE.0), Seqno(EXPECTED_RANGE.1)))
    );
    for r in cache.iter_range(Seqno(EXPECTED_RANGE.0), Seqno(EXPECTED_RANGE.1)) {
        let r = r.unwrap();
        assert_eq!(r.kind, kind_of(r.seqno.0), "seqno {}", r.seqno);
        assert_eq!(r.payload, &payload_of(r.seqno.0)[..], "seqno {}", r.seqno);
    }
    // Every record either slice still holds (also below the global range) is genuine.
    for slice in cache.slices() {
        let (lo, hi) = slice.range().unwrap();
        for s in lo.0..=hi.0 {
            if let Some(r) = slice.get(Seqno(s)).unwrap_or(None) {
                assert_eq!(r.payload, &payload_of(s)[..]);
            }
        }
    }
}
