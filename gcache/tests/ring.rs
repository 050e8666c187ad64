//! The ring and its pages through the public facade: round trips across wrap-around,
//! overwriting only released records, overflow to pages and their deletion, IST locks,
//! striping across slices.

mod common;

use common::{config, history, payload, TempDir};
use trireme_gcache::{slice_of, GCache, GCacheError, RecordKind};
use trireme_types::Seqno;

fn open(dir: &TempDir, slices: u32, ring_bytes: u64) -> GCache {
    GCache::open(config(dir.path(), slices, ring_bytes), history(1))
        .unwrap()
        .0
}

fn assert_record(cache: &GCache, s: i64, len: usize) {
    let r = cache
        .get(Seqno(s))
        .unwrap()
        .unwrap_or_else(|| panic!("seqno {s} missing"));
    assert_eq!(r.seqno, Seqno(s));
    assert_eq!(r.payload, &payload(s, len)[..], "seqno {s}");
}

#[test]
fn append_then_get_round_trips_across_wrap_around() {
    for (slices, len) in [(1u32, 200usize), (2, 4096), (3, 200)] {
        let dir = TempDir::new("wrap");
        let mut cache = open(&dir, slices, 32 * 1024);
        let n = 2000i64;
        for s in 1..=n {
            let kind = if s % 100 == 0 {
                RecordKind::ConfigurationChange
            } else {
                RecordKind::Writeset
            };
            cache.append(Seqno(s), kind, &payload(s, len)).unwrap();
            cache.release_upto(Seqno(s - 5));
        }
        let (lo, hi) = cache.range().unwrap();
        assert_eq!(hi, Seqno(n));
        assert!(
            lo > Seqno(1),
            "the ring must have wrapped ({slices} slices, {len} B)"
        );
        for s in lo.0..=hi.0 {
            assert_record(&cache, s, len);
            let kind = cache.get(Seqno(s)).unwrap().unwrap().kind;
            assert_eq!(kind == RecordKind::ConfigurationChange, s % 100 == 0);
        }
        assert_eq!(
            cache.get(Seqno(1)).unwrap(),
            None,
            "seqno 1 was overwritten"
        );
        assert!(
            dir.page_files().is_empty(),
            "released space sufficed: no pages"
        );
        // IST read across slices, in order.
        let read: Vec<i64> = cache
            .iter_range(lo, hi)
            .map(|r| r.unwrap().seqno.0)
            .collect();
        assert_eq!(read, (lo.0..=hi.0).collect::<Vec<_>>());
        cache.close().unwrap();
    }
}

#[test]
fn only_released_records_are_overwritten_oldest_first() {
    let dir = TempDir::new("released");
    // 1000-byte payloads are 1040-byte records: 15 fit in a 16 KiB ring.
    let mut cache = open(&dir, 1, 16 * 1024);
    for s in 1..=15 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 1000))
            .unwrap();
    }
    cache.release_upto(Seqno(5));
    for s in 16..=20 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 1000))
            .unwrap();
    }
    assert!(
        dir.page_files().is_empty(),
        "five released records made room for five"
    );
    for s in 1..=5 {
        assert_eq!(
            cache.get(Seqno(s)).unwrap(),
            None,
            "released {s} should be overwritten"
        );
    }
    for s in 6..=20 {
        assert_record(&cache, s, 1000);
    }
    assert_eq!(cache.range(), Some((Seqno(6), Seqno(20))));
    // Nothing more is released: the next record must not overwrite 6.
    cache
        .append(Seqno(21), RecordKind::Writeset, &payload(21, 1000))
        .unwrap();
    assert_eq!(dir.page_files(), vec!["gcache.page.000000".to_string()]);
    for s in 6..=21 {
        assert_record(&cache, s, 1000);
    }
}

#[test]
fn unreleased_records_overflow_to_pages_that_are_deleted_once_released() {
    let dir = TempDir::new("pages");
    let mut cache = open(&dir, 2, 16 * 1024);
    let n = 400i64;
    for s in 1..=n {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 700))
            .unwrap();
    }
    let pages = dir.page_files();
    assert!(
        pages.len() >= 4,
        "expected several page files, got {pages:?}"
    );
    // Both slices overflowed, each naming its pages without collisions.
    assert!(pages.contains(&"gcache.page.000000".to_string()));
    assert!(pages.contains(&"gcache.page.000001".to_string()));
    for s in 1..=n {
        assert_record(&cache, s, 700);
    }
    assert_eq!(cache.range(), Some((Seqno(1), Seqno(n))));

    // Releasing half deletes only pages whose records are all released.
    cache.release_upto(Seqno(n / 2));
    let remaining = dir.page_files();
    assert!(
        !remaining.is_empty() && remaining.len() < pages.len(),
        "{remaining:?}"
    );
    for s in n / 2 + 1..=n {
        assert_record(&cache, s, 700);
    }
    cache.release_upto(Seqno(n));
    assert!(
        dir.page_files().is_empty(),
        "all released: no page may remain"
    );
    assert!(cache.slices().iter().all(|s| s.stats().page_files == 0));
    // The ring is still usable, and reuses released space.
    for s in n + 1..=n + 100 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 700))
            .unwrap();
        cache.release_upto(Seqno(s));
    }
    assert!(dir.page_files().is_empty());
}

#[test]
fn an_ist_lock_keeps_released_records_until_unlock() {
    let dir = TempDir::new("lock");
    let mut cache = open(&dir, 1, 16 * 1024);
    for s in 1..=15 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 1000))
            .unwrap();
    }
    cache.lock_from(Seqno(3));
    cache.release_upto(Seqno(15));
    for s in 16..=25 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 1000))
            .unwrap();
    }
    // 1 and 2 were not locked and went first; 3.. stayed, so the rest went to pages.
    assert_eq!(cache.get(Seqno(1)).unwrap(), None);
    for s in 3..=25 {
        assert_record(&cache, s, 1000);
    }
    assert!(!dir.page_files().is_empty());
    cache.unlock();
    cache.release_upto(Seqno(25));
    assert!(dir.page_files().is_empty());
    for s in 26..=40 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 1000))
            .unwrap();
    }
    assert!(
        dir.page_files().is_empty(),
        "after unlock the ring reuses released space"
    );
}

#[test]
fn appends_must_increase_within_a_slice_and_go_to_the_owner() {
    let dir = TempDir::new("order");
    let mut cache = open(&dir, 2, 8192);
    cache.append(Seqno(10), RecordKind::Writeset, b"x").unwrap();
    let err = cache
        .append(Seqno(10), RecordKind::Writeset, b"y")
        .unwrap_err();
    assert!(
        matches!(err, GCacheError::SeqnoNotIncreasing { .. }),
        "{err}"
    );
    assert!(matches!(
        cache.append(Seqno::UNDEFINED, RecordKind::Writeset, b"y"),
        Err(GCacheError::InvalidSeqno { .. })
    ));
    // Slice 1 owns 64..127; a lower seqno there is fine (slices are independent).
    cache.append(Seqno(64), RecordKind::Writeset, b"z").unwrap();
    let mut slices = cache.into_slices();
    assert_eq!(slice_of(Seqno(11), 2), 0);
    let err = slices[1]
        .append(Seqno(11), RecordKind::Writeset, b"w")
        .unwrap_err();
    assert!(
        matches!(
            err,
            GCacheError::WrongSlice {
                owner: 0,
                slice: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(slices[0].get(Seqno(10)).unwrap().unwrap().payload, b"x");
}

#[test]
fn slices_work_on_their_own_threads_and_the_global_range_joins_them() {
    let dir = TempDir::new("threads");
    let cache = open(&dir, 3, 64 * 1024);
    let slices = cache.into_slices();
    let n = 3 * 64 * 10;
    let handles: Vec<_> = slices
        .into_iter()
        .map(|mut slice| {
            std::thread::spawn(move || {
                for s in 1..=n {
                    if slice.owns(Seqno(s)) {
                        slice
                            .append(Seqno(s), RecordKind::Writeset, &payload(s, 100))
                            .unwrap();
                    }
                }
                slice
            })
        })
        .collect();
    let slices: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let ranges: Vec<_> = slices.iter().map(|s| s.range()).collect();
    assert_eq!(
        trireme_gcache::contiguous_range(&ranges),
        Some((Seqno(1), Seqno(n)))
    );
    // An IST reader asks each owning slice in turn.
    for s in 1..=n {
        let owner = &slices[slice_of(Seqno(s), 3) as usize];
        let rec = owner.get(Seqno(s)).unwrap().unwrap().to_record();
        assert_eq!(rec.payload, payload(s, 100));
    }
    for s in slices {
        s.close().unwrap();
    }
}

#[test]
fn global_range_stops_at_the_highest_hole_of_any_slice() {
    use trireme_gcache::contiguous_range;
    let r = |a: i64, b: i64| Some((Seqno(a), Seqno(b)));
    // Two slices, stripe 64: slice 0 owns 0..63, 128..191; slice 1 owns 64..127, 192..255.
    assert_eq!(
        contiguous_range(&[r(1, 150), r(64, 127)]),
        Some((Seqno(1), Seqno(150)))
    );
    // Slice 1 lost 64..99: everything from 100 up is there.
    assert_eq!(
        contiguous_range(&[r(1, 150), r(100, 127)]),
        Some((Seqno(100), Seqno(150)))
    );
    // Slice 1 is behind (ends at 120, slice 0 is at 150): 121..127 are missing.
    assert_eq!(
        contiguous_range(&[r(1, 150), r(64, 120)]),
        Some((Seqno(128), Seqno(150)))
    );
    assert_eq!(
        contiguous_range(&[r(1, 10), None]),
        Some((Seqno(1), Seqno(10)))
    );
    assert_eq!(contiguous_range(&[None, None]), None);
    assert_eq!(contiguous_range(&[]), None);
}

#[test]
fn a_new_history_discards_everything() {
    let dir = TempDir::new("history");
    let mut cache = open(&dir, 2, 8192);
    for s in 1..=100 {
        cache
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 10))
            .unwrap();
    }
    cache.set_history(history(1)).unwrap();
    assert_eq!(
        cache.range(),
        Some((Seqno(1), Seqno(100))),
        "same history keeps the cache"
    );
    cache.set_history(history(2)).unwrap();
    assert_eq!(cache.range(), None);
    assert_eq!(cache.cached_downto(), Seqno::UNDEFINED);
    assert_eq!(cache.get(Seqno(50)).unwrap(), None);
    // Seqnos restart in the new history.
    cache
        .append(Seqno(1), RecordKind::Writeset, b"new")
        .unwrap();
    assert_eq!(cache.get(Seqno(1)).unwrap().unwrap().payload, b"new");
    assert_eq!(cache.cached_downto(), Seqno(1));
}
