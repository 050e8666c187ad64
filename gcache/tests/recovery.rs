//! Reopening the file: recovery after a crash, torn records at every byte, other histories,
//! foreign (Galera) files, geometry changes, corrupt records, stale pages, the file lock.

mod common;

use common::{config, history, payload, TempDir};
use std::os::unix::fs::FileExt;
use trireme_gcache::format::{record_len, FILE_HEADER_LEN, RECORD_HEADER_LEN, SLICE_HEADER_LEN};
use trireme_gcache::{
    Corruption, FileOutcome, GCache, GCacheConfig, GCacheError, RecordKind, ReinitReason,
    SliceStart,
};
use trireme_types::Seqno;

fn open(cfg: &GCacheConfig, h: u8) -> (GCache, trireme_gcache::RecoveryReport) {
    GCache::open(cfg.clone(), history(h)).unwrap()
}

fn fill(cache: &mut GCache, from: i64, to: i64, len: usize) {
    for s in from..=to {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, len))
            .unwrap();
    }
}

fn assert_all(cache: &GCache, from: i64, to: i64, len: usize) {
    for s in from..=to {
        let r = cache
            .get(Seqno(s))
            .unwrap()
            .unwrap_or_else(|| panic!("seqno {s} missing"));
        assert_eq!(r.payload, &payload(s, len)[..], "seqno {s}");
    }
}

#[test]
fn reopen_after_a_crash_recovers_every_ring_record() {
    let dir = TempDir::new("crash");
    let cfg = config(dir.path(), 3, 32 * 1024);
    let (mut cache, report) = open(&cfg, 1);
    assert_eq!(report.file, FileOutcome::Created);
    for s in 1..=3000 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 150))
            .unwrap();
        cache.release_upto(Seqno(s - 20));
    }
    let before = cache.range().unwrap();
    assert!(before.0 > Seqno(1), "the rings wrapped");
    drop(cache); // no close: what kill -9 leaves (the page cache keeps every store)

    let (cache, report) = open(&cfg, 1);
    assert_eq!(report.file, FileOutcome::Reopened);
    assert!(report
        .slices
        .iter()
        .all(|s| s.start == SliceStart::Recovered && !s.previous_clean));
    assert_eq!(report.bad_records, 0);
    let after = cache.range().unwrap();
    assert_eq!(after.1, before.1);
    assert!(
        after.0 <= before.0,
        "lost records: before {before:?}, after {after:?}"
    );
    assert_eq!(report.range, Some(after));
    assert_all(&cache, after.0 .0, after.1 .0, 150);
    // Appending continues after the recovered head; everything recovered was released.
    let mut cache = cache;
    for s in 3001..=3500 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 150))
            .unwrap();
        cache.release_upto(Seqno(s - 20));
    }
    assert_eq!(cache.range().unwrap().1, Seqno(3500));
    assert!(
        dir.page_files().is_empty(),
        "recovered records are reusable"
    );
}

#[test]
fn a_clean_close_is_reported_at_the_next_open() {
    let dir = TempDir::new("clean");
    let cfg = config(dir.path(), 2, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 100, 64);
    cache.close().unwrap();
    let (cache, report) = open(&cfg, 1);
    assert!(report.slices.iter().all(|s| s.previous_clean), "{report:?}");
    assert_eq!(cache.range(), Some((Seqno(1), Seqno(100))));
    assert_all(&cache, 1, 100, 64);
    drop(cache);
    // That open cleared the flag again: a crash after it is not mistaken for a clean stop.
    let (_, report) = open(&cfg, 1);
    assert!(report.slices.iter().all(|s| !s.previous_clean));
}

/// FORMAT.md §8, through the file: record 6 is written only partly (every prefix, in byte
/// order) or has one damaged byte; recovery keeps 1..=5 and stops before it.
#[test]
fn recovery_stops_before_a_record_torn_or_damaged_at_any_byte() {
    let dir = TempDir::new("torn");
    let cfg = config(dir.path(), 1, 16 * 1024);
    let path = cfg.path();
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 5, 100);
    drop(cache);
    let before = std::fs::read(&path).unwrap();
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 6, 6, 100);
    drop(cache);
    let after = std::fs::read(&path).unwrap();

    // One slice: its ring starts after the file and slice headers; records 1..=5 come first.
    let start = (FILE_HEADER_LEN + SLICE_HEADER_LEN + 5 * record_len(100)) as usize;
    let covered = RECORD_HEADER_LEN + 100;
    let check = |image: &[u8], what: String| {
        std::fs::write(&path, image).unwrap();
        let (cache, report) = open(&cfg, 1);
        assert_eq!(cache.range(), Some((Seqno(1), Seqno(5))), "{what}");
        assert_eq!(cache.get(Seqno(6)).unwrap(), None, "{what}");
        assert_all(&cache, 1, 5, 100);
        report
    };
    for i in 0..covered {
        let mut image = after.clone();
        image[start + i..start + covered].copy_from_slice(&before[start + i..start + covered]);
        check(&image, format!("record written up to byte {i}"));
        let mut image = after.clone();
        image[start + i] ^= 0x5a;
        let report = check(&image, format!("byte {i} damaged"));
        // A damaged byte past the magic and generation is seen as a bad record.
        if !(0..4).contains(&i) && !(24..32).contains(&i) {
            assert_eq!(report.bad_records, 1, "byte {i}");
        }
    }
    // And after a torn record, appending goes on and recovers.
    let mut image = after.clone();
    image[start + 50] ^= 1;
    std::fs::write(&path, &image).unwrap();
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 6, 8, 100);
    drop(cache);
    let (cache, _) = open(&cfg, 1);
    assert_eq!(cache.range(), Some((Seqno(1), Seqno(8))));
    assert_all(&cache, 1, 8, 100);
}

#[test]
fn recovery_ignores_records_of_another_history() {
    let dir = TempDir::new("otherhistory");
    let cfg = config(dir.path(), 2, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 200, 32);
    cache.close().unwrap();

    let (cache, report) = open(&cfg, 2);
    assert_eq!(cache.range(), None);
    assert_eq!(cache.get(Seqno(7)).unwrap(), None);
    for s in &report.slices {
        assert_eq!(s.start, SliceStart::OtherHistory { found: history(1) });
    }
    drop(cache);
    // The old history's records were discarded for good (a new generation), not hidden.
    let (cache, report) = open(&cfg, 1);
    assert_eq!(cache.range(), None, "{report:?}");
    assert!(report
        .slices
        .iter()
        .all(|s| matches!(s.start, SliceStart::OtherHistory { .. })));
}

#[test]
fn recover_off_starts_empty() {
    let dir = TempDir::new("norecover");
    let mut cfg = config(dir.path(), 1, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 20, 32);
    cache.close().unwrap();
    cfg.recover = false;
    let (cache, report) = open(&cfg, 1);
    assert_eq!(report.file, FileOutcome::Reopened);
    assert_eq!(report.slices[0].start, SliceStart::RecoveryNotRequested);
    assert_eq!(cache.range(), None);
}

#[test]
fn a_galera_format_file_is_reinitialised() {
    let dir = TempDir::new("galera");
    let cfg = config(dir.path(), 2, 16 * 1024);
    // The start of a Galera 4 galera.cache: a text preamble, then binary buffers.
    let mut galera = b"Version: 2\nGID: 5ee5e4c2-1f3a-11ef-8a3b-7e2f4f0f8a11\n\
seqno_min: 1\nseqno_max: 42\noffset: 1024\nsynced: 1\n"
        .to_vec();
    galera.resize(1024, 0);
    galera.extend((0..70_000u32).map(|i| (i * 7) as u8));
    std::fs::write(cfg.path(), &galera).unwrap();

    let (mut cache, report) = open(&cfg, 1);
    assert_eq!(
        report.file,
        FileOutcome::Reinitialised(ReinitReason::Header(
            trireme_gcache::format::HeaderProblem::GaleraFormat
        ))
    );
    assert_eq!(cache.range(), None);
    let expected_len = cfg.geometry().unwrap().file_len().unwrap();
    assert_eq!(std::fs::metadata(cfg.path()).unwrap().len(), expected_len);
    fill(&mut cache, 1, 300, 40);
    cache.close().unwrap();
    let (cache, report) = open(&cfg, 1);
    assert_eq!(report.file, FileOutcome::Reopened);
    assert_eq!(cache.range(), Some((Seqno(1), Seqno(300))));
}

#[test]
fn a_changed_size_or_slice_count_reinitialises_the_file() {
    let dir = TempDir::new("geometry");
    let cfg = config(dir.path(), 2, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 50, 32);
    cache.close().unwrap();

    let bigger = config(dir.path(), 2, 32 * 1024);
    let (cache, report) = open(&bigger, 1);
    assert!(matches!(
        report.file,
        FileOutcome::Reinitialised(ReinitReason::GeometryChanged { .. })
    ));
    assert_eq!(cache.range(), None);
    assert_eq!(
        std::fs::metadata(bigger.path()).unwrap().len(),
        bigger.geometry().unwrap().file_len().unwrap()
    );
    drop(cache);

    let more_slices = config(dir.path(), 3, 16 * 1024);
    let (_, report) = open(&more_slices, 1);
    assert!(matches!(
        report.file,
        FileOutcome::Reinitialised(ReinitReason::GeometryChanged { .. })
    ));
}

#[test]
fn a_truncated_file_is_reinitialised_not_mapped_past_its_end() {
    let dir = TempDir::new("truncated");
    let cfg = config(dir.path(), 1, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 50, 32);
    cache.close().unwrap();
    let len = std::fs::metadata(cfg.path()).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(cfg.path())
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let (cache, report) = open(&cfg, 1);
    assert!(matches!(
        report.file,
        FileOutcome::Reinitialised(ReinitReason::LengthMismatch { .. })
    ));
    assert_eq!(cache.range(), None);
}

#[test]
fn get_of_a_corrupt_record_returns_an_error_not_garbage() {
    let dir = TempDir::new("corrupt");
    let cfg = config(dir.path(), 1, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 3, 100);
    // Damage record 2's payload behind the cache's back (same page cache as the mapping).
    let at = FILE_HEADER_LEN + SLICE_HEADER_LEN + record_len(100) + RECORD_HEADER_LEN as u64 + 10;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(cfg.path())
        .unwrap();
    file.write_all_at(b"garbage", at).unwrap();
    match cache.get(Seqno(2)) {
        Err(GCacheError::CorruptRecord {
            seqno,
            reason: Corruption::ChecksumMismatch { .. },
            ..
        }) => {
            assert_eq!(seqno, Seqno(2))
        }
        other => panic!("expected a checksum error, got {other:?}"),
    }
    assert_eq!(
        cache.get(Seqno(1)).unwrap().unwrap().payload,
        &payload(1, 100)[..]
    );
    assert_eq!(
        cache.get(Seqno(3)).unwrap().unwrap().payload,
        &payload(3, 100)[..]
    );
    // The IST reader stops at the damaged record instead of shipping it.
    let read: Vec<_> = cache.iter_range(Seqno(1), Seqno(3)).collect();
    assert_eq!(read.len(), 2);
    assert!(read[1].is_err());
    // Overwriting record 2's header with record 3's bytes: valid, but the wrong seqno.
    let r3 = FILE_HEADER_LEN + SLICE_HEADER_LEN + 2 * record_len(100);
    let mut rec3 = vec![0u8; record_len(100) as usize];
    file.read_exact_at(&mut rec3, r3).unwrap();
    file.write_all_at(&rec3, r3 - record_len(100)).unwrap();
    assert!(matches!(
        cache.get(Seqno(2)),
        Err(GCacheError::CorruptRecord {
            reason: Corruption::SeqnoMismatch {
                expected: 2,
                found: 3
            },
            ..
        })
    ));
}

#[test]
fn stale_page_files_are_removed_at_open() {
    let dir = TempDir::new("stalepages");
    let cfg = config(dir.path(), 1, 8192);
    for n in [
        "gcache.page.000000",
        "gcache.page.000007",
        "gcache.page.123456789",
    ] {
        std::fs::write(dir.path().join(n), b"old").unwrap();
    }
    std::fs::write(dir.path().join("gcache.page.notes"), b"not ours").unwrap();
    let (_cache, report) = open(&cfg, 1);
    assert_eq!(report.stale_pages_removed, 3);
    assert!(dir.page_files() == vec!["gcache.page.notes".to_string()]);
}

#[test]
fn records_that_were_on_pages_are_not_recovered_and_the_range_restarts_above_them() {
    let dir = TempDir::new("pagesrecovery");
    let cfg = config(dir.path(), 1, 16 * 1024);
    let (mut cache, _) = open(&cfg, 1);
    fill(&mut cache, 1, 20, 1000); // 15 fit in the ring; 16..=20 go to a page
    assert!(!dir.page_files().is_empty());
    cache.release_upto(Seqno(20));
    assert!(dir.page_files().is_empty());
    fill(&mut cache, 21, 25, 1000); // overwrite 1..=5 in the ring
    drop(cache);
    let (cache, report) = open(&cfg, 1);
    assert_eq!(report.stale_pages_removed, 0);
    assert_eq!(cache.range(), Some((Seqno(21), Seqno(25))));
    assert_all(&cache, 21, 25, 1000);
}

#[test]
fn a_second_open_of_the_same_file_is_refused() {
    let dir = TempDir::new("lock");
    let cfg = config(dir.path(), 1, 8192);
    let (cache, _) = open(&cfg, 1);
    assert!(matches!(
        GCache::open(cfg.clone(), history(1)),
        Err(GCacheError::Locked { .. })
    ));
    drop(cache);
    assert!(GCache::open(cfg, history(1)).is_ok());
}

#[test]
fn a_size_too_small_names_the_option() {
    let dir = TempDir::new("small");
    let mut cfg = config(dir.path(), 4, 8192);
    cfg.size_bytes = 10_000;
    let err = GCache::open(cfg, history(1)).unwrap_err();
    assert!(
        matches!(
            err,
            GCacheError::InvalidConfig {
                option: "gcache.size",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("gcache.size"));
}
