//! Slice tests over in-memory regions: I/O fault latching, torn records at every byte, and
//! power-loss images built from the live and durable images (redb's crash-backend idea).

use super::*;
use crate::format::{Geometry, SLICE_HEADER_LEN};
use crate::region::mem::{Faults, MemPageStore, MemRegion};
use crate::scan::scan;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

struct Rig {
    slice: GCacheSlice,
    faults: Arc<Faults>,
    durable: Arc<Mutex<Vec<u8>>>,
    pages: Arc<Mutex<BTreeSet<u64>>>,
}

fn history(b: u8) -> HistoryId {
    HistoryId(Uuid([b; 16]))
}

fn rig(ring_len: u64, slice_count: u32, index: u32) -> Rig {
    let geometry = Geometry {
        slice_count,
        stripe_len: crate::format::STRIPE_LEN,
        slice_len: SLICE_HEADER_LEN + ring_len,
    };
    assert!(geometry.is_valid());
    let faults = Arc::new(Faults::default());
    let region = MemRegion::new(geometry.slice_len as usize, faults.clone());
    let durable = region.durable.clone();
    let store = MemPageStore::new(faults.clone());
    let pages = store.live_pages.clone();
    let parts = SliceParts {
        index,
        geometry,
        path: PathBuf::from("mem"),
        region: Box::new(region),
        page_store: Box::new(store),
        page_size_bytes: 4096,
    };
    let slice = GCacheSlice::fresh(parts, history(1)).unwrap();
    Rig {
        slice,
        faults,
        durable,
        pages,
    }
}

fn payload(seqno: i64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seqno as u8).wrapping_mul(31).wrapping_add(i as u8))
        .collect()
}

fn seqnos(r: &ScanResult) -> Vec<i64> {
    r.run.iter().map(|r| r.seqno.0).collect()
}

/// SplitMix64: small, seedable, good enough for test schedules.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn seed() -> u64 {
    let seed = std::env::var("TRIREME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| u64::from(std::process::id()) ^ 0x5eed_0000_0000_0000);
    eprintln!("seed: TRIREME_SEED={seed}");
    seed
}

// Compile-time: a slice can move to a shard thread but cannot be shared between threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<GCacheSlice>();
    trait AmbiguousIfSync<A> {
        fn check() {}
    }
    impl<T: ?Sized> AmbiguousIfSync<()> for T {}
    impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}
    // Ambiguous (a compile error) if GCacheSlice were Sync.
    <GCacheSlice as AmbiguousIfSync<_>>::check();
};

#[test]
fn torn_record_at_any_byte_is_dropped_and_everything_before_it_kept() {
    // FORMAT.md §8: a record some of whose bytes still hold old contents is never accepted.
    let mut rig = rig(8192, 1, 0);
    for s in 1..=5 {
        rig.slice
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 100))
            .unwrap();
    }
    let before: Vec<u8> = rig.slice.raw_bytes().to_vec();
    let offset = rig.slice.ring.back().unwrap().offset + record_len(100);
    rig.slice
        .append(Seqno(6), RecordKind::Writeset, &payload(6, 100))
        .unwrap();
    let after: Vec<u8> = rig.slice.raw_bytes().to_vec();
    let start = (SLICE_HEADER_LEN + offset) as usize;
    assert_eq!(seqnos(&scan(&after)), (1..=6).collect::<Vec<_>>());

    // Only bytes covered by the checksum matter: header and payload, not padding.
    let covered = crate::format::RECORD_HEADER_LEN + 100;
    for i in 0..covered {
        // Written in byte order up to i (a prefix of the record)...
        let mut img = before.clone();
        img[start..start + i].copy_from_slice(&after[start..start + i]);
        assert_eq!(
            seqnos(&scan(&img)),
            (1..=5).collect::<Vec<_>>(),
            "prefix {i}"
        );
        // ...everything but byte i (any write order)...
        let mut img = after.clone();
        img[start + i] = before[start + i];
        if img[start + i] != after[start + i] {
            let r = scan(&img);
            assert_eq!(seqnos(&r), (1..=5).collect::<Vec<_>>(), "missing byte {i}");
        }
        // ...or byte i damaged.
        let mut img = after.clone();
        img[start + i] ^= 0xff;
        let r = scan(&img);
        assert_eq!(seqnos(&r), (1..=5).collect::<Vec<_>>(), "flipped byte {i}");
        assert!(
            r.discarded_records == 0 && r.valid_records == 5,
            "flipped byte {i}: {r:?}"
        );
    }
}

#[test]
fn an_msync_failure_latches_and_refuses_every_later_write() {
    let mut rig = rig(8192, 1, 0);
    rig.slice
        .append(Seqno(1), RecordKind::Writeset, b"one")
        .unwrap();
    rig.faults.fail_sync.store(true, Ordering::SeqCst);
    assert!(matches!(
        rig.slice.flush(),
        Err(GCacheError::Io { op: "msync", .. })
    ));
    // The failure is sticky even once the medium "recovers": no retried fsync (redb).
    rig.faults.fail_sync.store(false, Ordering::SeqCst);
    assert!(rig.slice.has_failed());
    let before = rig.slice.raw_bytes().to_vec();
    for result in [
        rig.slice.append(Seqno(2), RecordKind::Writeset, b"two"),
        rig.slice.flush(),
        rig.slice.reset(history(2)),
        rig.slice.set_history(history(1)),
    ] {
        assert!(matches!(
            result,
            Err(GCacheError::PreviousIo {
                slice: 0,
                op: "msync",
                ..
            })
        ));
    }
    assert_eq!(
        rig.slice.raw_bytes(),
        &before[..],
        "refused writes leave the bytes alone"
    );
    // Reads of what is there still work.
    assert_eq!(rig.slice.get(Seqno(1)).unwrap().unwrap().payload, b"one");
    assert_eq!(rig.slice.range(), Some((Seqno(1), Seqno(1))));
    assert!(matches!(
        rig.slice.close(),
        Err(GCacheError::PreviousIo { .. })
    ));
}

#[test]
fn a_page_file_that_cannot_be_created_latches_the_slice_and_changes_nothing() {
    let mut rig = rig(4096, 1, 0);
    let mut s = 0;
    // Fill the ring with unreleased records (a 4 KiB ring holds 7 of them).
    while rig.slice.stats().page_files == 0 {
        s += 1;
        assert!(s < 100, "unreleased records never overflowed to a page");
        rig.faults.fail_create.store(false, Ordering::SeqCst);
        let before = rig.slice.range();
        rig.faults.fail_create.store(true, Ordering::SeqCst);
        match rig.slice.append(Seqno(s), RecordKind::Writeset, &[7; 500]) {
            Ok(()) => continue,
            Err(GCacheError::Io {
                op: "create page file",
                ..
            }) => {
                assert_eq!(rig.slice.range(), before, "failed append changed the range");
                assert_eq!(rig.slice.get(Seqno(s)).unwrap(), None);
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    rig.faults.fail_create.store(false, Ordering::SeqCst);
    assert!(matches!(
        rig.slice.append(Seqno(s), RecordKind::Writeset, &[7; 500]),
        Err(GCacheError::PreviousIo {
            op: "create page file",
            ..
        })
    ));
}

#[test]
fn header_is_durable_before_any_record_of_its_generation() {
    // Reset syncs the header: a crash image from the durable bytes alone carries the new
    // history and generation, never the old header with new records.
    let mut rig = rig(8192, 1, 0);
    rig.slice
        .append(Seqno(1), RecordKind::Writeset, b"a")
        .unwrap();
    rig.slice.flush().unwrap();
    rig.slice.reset(history(9)).unwrap();
    rig.slice
        .append(Seqno(100), RecordKind::Writeset, b"b")
        .unwrap();
    let durable = rig.durable.lock().unwrap().clone();
    let r = scan(&durable);
    assert_eq!(r.header.as_ref().unwrap().history, history(9));
    assert!(
        r.run.is_empty(),
        "old generation's records must not be recovered: {r:?}"
    );
    assert_eq!(seqnos(&scan(rig.slice.raw_bytes())), vec![100]);
}

/// Power loss: each 512-byte sector that differs between the live and durable images reaches
/// the disk or not, independently. Whatever survives, recovery keeps only genuine records (the
/// content appended for that seqno), contiguous, and everything synced is kept.
#[test]
fn power_loss_images_recover_only_genuine_records_and_everything_synced() {
    let seed = seed();
    let mut rng = Rng(seed);
    for round in 0..40 {
        let slice_count = 1 + rng.below(3) as u32;
        let index = rng.below(u64::from(slice_count)) as u32;
        let mut rig = rig(4096 * (1 + rng.below(4)), slice_count, index);
        let st = Striping::new(index, slice_count);
        let mut model: BTreeMap<i64, Vec<u8>> = BTreeMap::new();
        let mut s = Seqno(i64::from(index) * 64 + rng.below(5) as i64);
        let mut synced_range = None;
        for _ in 0..rng.below(120) {
            let p = payload(s.0, rng.below(700) as usize);
            rig.slice.append(s, RecordKind::Writeset, &p).unwrap();
            model.insert(s.0, p);
            if rng.below(4) == 0 {
                rig.slice.release_upto(s);
            }
            if rng.below(10) == 0 {
                rig.slice.flush().unwrap();
                synced_range = rig
                    .slice
                    .range()
                    .filter(|_| rig.slice.stats().page_files == 0);
            }
            s = st.next(s).unwrap();
            if rng.below(20) == 0 {
                s = st.next(st.next(s).unwrap()).unwrap(); // a gap
            }
        }
        let live = rig.slice.raw_bytes().to_vec();
        let durable = rig.durable.lock().unwrap().clone();
        let mut img = durable.clone();
        for sector in (0..img.len()).step_by(512) {
            let end = sector + 512;
            if live[sector..end] != durable[sector..end] && rng.below(2) == 0 {
                img[sector..end].copy_from_slice(&live[sector..end]);
            }
        }
        let r = scan(&img);
        for rec in &r.run {
            let start = (SLICE_HEADER_LEN + rec.offset) as usize;
            let d = decode_record(&img[start..], r.header.as_ref().unwrap().generation).unwrap();
            assert_eq!(
                Some(&d.payload.to_vec()),
                model.get(&rec.seqno.0),
                "round {round}"
            );
        }
        for w in r.run.windows(2) {
            assert_eq!(
                st.next(w[0].seqno),
                Some(w[1].seqno),
                "round {round}: not contiguous"
            );
        }
        // Nothing was appended after a sync that covered the whole run: it must all be there.
        let last_synced = synced_range.map(|r: (Seqno, Seqno)| r.1);
        if last_synced.is_some() && last_synced == rig.slice.last_appended() {
            let (lo, hi) = synced_range.unwrap();
            let got = r.range().unwrap();
            assert!(
                got.0 <= lo && got.1 == hi,
                "round {round}: synced {lo}..{hi}, got {got:?}"
            );
        }
        // And the live image (kill -9) recovers exactly the slice's current run, if no page
        // records are in the way.
        if rig.slice.stats().page_files == 0 {
            let lr = scan(&live);
            if let Some((lo, hi)) = rig.slice.range() {
                let got = lr.range().unwrap();
                assert!(
                    got.0 <= lo && got.1 == hi,
                    "round {round}: live {lo}..{hi}, got {got:?}"
                );
            }
        }
    }
}

#[test]
fn ring_accounting_matches_a_rebuild_from_scan() {
    // After any sequence, scanning the live bytes gives back the same tail and head.
    let seed = seed();
    let mut rng = Rng(seed ^ 0xabcdef);
    let mut rig = rig(8192, 1, 0);
    for s in 1..2000i64 {
        rig.slice
            .append(
                Seqno(s),
                RecordKind::Other,
                &payload(s, rng.below(300) as usize),
            )
            .unwrap();
        if rng.below(3) > 0 {
            rig.slice.release_upto(Seqno(s - rng.below(10) as i64));
        }
        let range = rig
            .slice
            .range()
            .filter(|_| rig.slice.stats().page_files == 0);
        if let Some((lo, hi)) = range.filter(|_| rng.below(50) == 0) {
            let r = scan(rig.slice.raw_bytes());
            assert_eq!(r.range().map(|r| r.1), Some(hi));
            assert!(r.range().unwrap().0 <= lo);
            assert_eq!(r.head, rig.slice.head, "head after seqno {s}");
        }
    }
}

#[test]
fn a_locked_page_survives_release_and_goes_at_unlock() {
    let mut rig = rig(4096, 1, 0);
    let mut s = 0;
    while rig.pages.lock().unwrap().is_empty() {
        s += 1;
        assert!(s < 100, "unreleased records never overflowed to a page");
        rig.slice
            .append(Seqno(s), RecordKind::Writeset, &payload(s, 900))
            .unwrap();
    }
    rig.slice.lock_from(Seqno(s));
    rig.slice.release_upto(Seqno(s));
    assert_eq!(rig.pages.lock().unwrap().len(), 1, "locked page deleted");
    assert_eq!(
        rig.slice.get(Seqno(s)).unwrap().unwrap().payload,
        &payload(s, 900)[..]
    );
    rig.slice.unlock();
    assert!(
        rig.pages.lock().unwrap().is_empty(),
        "released page kept after unlock"
    );
    assert_eq!(rig.slice.get(Seqno(s)).unwrap(), None);
    // Released ring records are still readable: deleting a page does not evict them.
    assert_eq!(
        rig.slice.get(Seqno(1)).unwrap().unwrap().payload,
        &payload(1, 900)[..]
    );
    // The page record was the newest; with it gone the ring's run is the range again, as a
    // scan of the ring after a crash would find.
    assert_eq!(rig.slice.range(), Some((Seqno(1), Seqno(s - 1))));
    assert_eq!(scan(rig.slice.raw_bytes()).range(), rig.slice.range());
    assert_eq!(rig.slice.lowest(), Some(Seqno(1)));
}

#[test]
fn incremental_run_bookkeeping_matches_a_full_walk() {
    // Paired check: after every step, recomputing the run from scratch changes nothing.
    let seed = seed();
    let mut rng = Rng(seed ^ 0x1234);
    for round in 0..20 {
        let slice_count = 1 + rng.below(3) as u32;
        let index = rng.below(u64::from(slice_count)) as u32;
        let st = Striping::new(index, slice_count);
        let mut rig = rig(4096 * (1 + rng.below(3)), slice_count, index);
        let mut s = st.next(Seqno(i64::from(index) * 64)).unwrap();
        for step in 0..400 {
            match rng.below(10) {
                0..=5 => {
                    let len = if rng.below(15) == 0 {
                        5000
                    } else {
                        rng.below(400) as usize
                    };
                    rig.slice
                        .append(s, RecordKind::Writeset, &payload(s.0, len))
                        .unwrap();
                    s = st.next(s).unwrap();
                    if rng.below(15) == 0 {
                        s = st.next(st.next(s).unwrap()).unwrap();
                    }
                }
                6 | 7 => rig.slice.release_upto(Seqno(s.0 - rng.below(30) as i64)),
                8 => rig.slice.lock_from(Seqno(s.0 - rng.below(60) as i64)),
                _ => rig.slice.unlock(),
            }
            let incremental = (rig.slice.top, rig.slice.run_start);
            rig.slice.recompute_run();
            assert_eq!(
                incremental,
                (rig.slice.top, rig.slice.run_start),
                "round {round} step {step}"
            );
            if let Some((lo, hi)) = rig.slice.range() {
                let mut x = lo;
                while x <= hi {
                    assert!(
                        rig.slice.get(x).unwrap().is_some(),
                        "round {round} step {step}: {x}"
                    );
                    x = st.next(x).unwrap();
                }
            }
        }
        assert_eq!(
            rig.pages.lock().unwrap().len() as u64,
            rig.slice.stats().page_files,
            "round {round}"
        );
    }
}
