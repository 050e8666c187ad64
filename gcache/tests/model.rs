//! Random sequences of append / release / lock / get / flush / crash / close / reopen /
//! new history, checked against a plain `BTreeMap` model (redb's habit). Seeded: the seed is
//! printed, `TRIREME_SEED` replays it.
//!
//! What the model checks, after every step:
//! - any record `get` returns is the one appended with that seqno (never garbage);
//! - a record that was never released-and-unlocked is still there (never overwritten);
//! - `range()` ends at the newest record (while that one is unreleased) and reaches down at
//!   least to the oldest never-reclaimable record above the last gap; every seqno in it reads;
//! - after a crash or close with no page files, reopening recovers at least the same range
//!   (every record recovered is checked against the model like any other read);
//! - page files on disk are exactly those the slices account for, and none remain once
//!   everything is released and unlocked.

mod common;

use common::{history, payload, seed, Rng, TempDir};
use std::collections::BTreeMap;
use trireme_gcache::{GCache, GCacheConfig, RecordKind};
use trireme_types::Seqno;

struct Model {
    records: BTreeMap<i64, (RecordKind, Vec<u8>)>,
    next: i64,
    released: i64,
    lock: Option<i64>,
    /// Highest bound (released and unlocked) ever reached: records at or below it may be gone.
    ever_reclaimable: i64,
    /// Every seqno from here to the newest was appended in this incarnation, no gaps.
    contiguous_from: i64,
    history: u8,
}

impl Model {
    fn new(history: u8) -> Model {
        Model {
            records: BTreeMap::new(),
            next: 1,
            released: -1,
            lock: None,
            ever_reclaimable: -1,
            contiguous_from: 1,
            history,
        }
    }

    fn bound(&self) -> i64 {
        match self.lock {
            Some(l) => self.released.min(l - 1),
            None => self.released,
        }
    }

    fn update_bound(&mut self) {
        self.ever_reclaimable = self.ever_reclaimable.max(self.bound());
    }

    fn newest(&self) -> Option<i64> {
        self.records.keys().next_back().copied()
    }

    /// After a reopen everything recovered counts as released (and page records are lost).
    fn after_reopen(&mut self) {
        let top = self.next - 1;
        self.released = self.released.max(top);
        self.lock = None;
        self.ever_reclaimable = top;
        self.contiguous_from = self.next;
    }
}

fn check(cache: &GCache, m: &Model, dir: &TempDir, step: usize) {
    for (&s, (kind, p)) in &m.records {
        match cache
            .get(Seqno(s))
            .unwrap_or_else(|e| panic!("step {step}: get {s}: {e}"))
        {
            Some(r) => {
                assert_eq!(
                    (r.kind, r.payload),
                    (*kind, &p[..]),
                    "step {step}: seqno {s}"
                );
            }
            None => assert!(
                s <= m.ever_reclaimable,
                "step {step}: unreleased seqno {s} lost"
            ),
        }
    }
    let range = cache.range();
    if let Some(top) = m.newest().filter(|&t| t > m.ever_reclaimable) {
        let (lo, hi) = range.unwrap_or_else(|| panic!("step {step}: empty range, newest {top}"));
        assert_eq!(hi.0, top, "step {step}");
        let must_reach = (m.ever_reclaimable + 1).max(m.contiguous_from);
        assert!(
            lo.0 <= must_reach,
            "step {step}: range {lo}..{hi} should reach {must_reach}"
        );
    }
    if let Some((lo, hi)) = range {
        for s in lo.0..=hi.0 {
            assert!(
                cache.get(Seqno(s)).unwrap().is_some(),
                "step {step}: {s} in range, absent"
            );
        }
        assert_eq!(cache.cached_downto(), lo);
    }
    let on_disk = dir.page_files().len() as u64;
    let accounted: u64 = cache.slices().iter().map(|s| s.stats().page_files).sum();
    assert_eq!(
        on_disk, accounted,
        "step {step}: page files on disk vs accounted"
    );
}

fn run(seed: u64, case: u64) {
    let mut rng = Rng(seed ^ case.wrapping_mul(0x2545_f491_4f6c_dd1d));
    let dir = TempDir::new("model");
    let slices = 1 + rng.below(3) as u32;
    let ring = 4096 * (2 + rng.below(6));
    let mut cfg = GCacheConfig {
        dir: dir.path().to_path_buf(),
        name: "galera.cache".into(),
        size_bytes: 4096 + u64::from(slices) * (4096 + ring),
        page_size_bytes: 4096 * (1 + rng.below(4)),
        recover: true,
        slice_count: slices,
    };
    eprintln!(
        "case {case}: {slices} slice(s), ring {ring} B, page {} B",
        cfg.page_size_bytes
    );
    let mut m = Model::new(1);
    let mut cache = GCache::open(cfg.clone(), history(m.history)).unwrap().0;
    for step in 0..1500 {
        match rng.below(100) {
            0..=54 => {
                if rng.chance(40) {
                    m.next += 1 + rng.below(200) as i64; // a gap in the total order
                    m.contiguous_from = m.next;
                }
                let s = m.next;
                let len = match rng.below(20) {
                    0 => rng.below(3 * ring) as usize, // may not fit in the ring at all
                    1..=4 => 0,
                    _ => rng.below(600) as usize,
                };
                let kind = [
                    RecordKind::Writeset,
                    RecordKind::ConfigurationChange,
                    RecordKind::Other,
                ][rng.below(3) as usize];
                let p = payload(s ^ (u64::from(m.history) << 40) as i64, len);
                cache.append(Seqno(s), kind, &p).unwrap();
                m.records.insert(s, (kind, p));
                m.next += 1;
            }
            55..=74 => {
                let r =
                    m.released.max(0) + rng.below((m.next - m.released.max(0)) as u64 + 1) as i64;
                cache.release_upto(Seqno(r));
                m.released = m.released.max(r);
                m.update_bound();
            }
            75..=79 => {
                if m.lock.is_some() && rng.chance(2) {
                    cache.unlock();
                    m.lock = None;
                } else {
                    let l = cache.cached_downto().0.max(0) + rng.below(20) as i64;
                    cache.lock_from(Seqno(l));
                    m.lock = Some(l);
                }
                m.update_bound();
            }
            80..=83 => cache.flush().unwrap(),
            84..=91 => {
                // Crash (drop without close: kill -9 keeps the page cache) or clean close.
                let before = cache.range();
                let had_pages = cache.slices().iter().any(|s| s.stats().page_files > 0);
                if rng.chance(2) {
                    cache.close().unwrap();
                } else {
                    drop(cache);
                }
                let (c, report) = GCache::open(cfg.clone(), history(m.history)).unwrap();
                cache = c;
                assert!(
                    dir.page_files().is_empty(),
                    "step {step}: pages left after reopen"
                );
                assert_eq!(report.range, cache.range());
                if let (Some((lo, hi)), false) = (before, had_pages) {
                    let (rlo, rhi) = cache.range().unwrap_or_else(|| {
                        panic!("step {step}: {lo}..{hi} before reopen, nothing after")
                    });
                    // Containment, not equality: a slice whose newest record was on a page
                    // that has since been deleted holds ring records above the old range
                    // that recovery (rightly) finds again.
                    assert!(
                        rlo <= lo && rhi >= hi,
                        "step {step}: {lo}..{hi} became {rlo}..{rhi}"
                    );
                }
                m.after_reopen();
                // Records that were lost (pages) or overwritten are dropped from the model
                // only through `ever_reclaimable`; keep checking the rest.
            }
            92..=94 => {
                m = Model::new(m.history.wrapping_add(1));
                cache.set_history(history(m.history)).unwrap();
                assert_eq!(cache.range(), None);
            }
            95..=96 => {
                // Reopen without recovery: starts empty in the same history.
                drop(cache);
                cfg.recover = false;
                cache = GCache::open(cfg.clone(), history(m.history)).unwrap().0;
                cfg.recover = true;
                m = Model::new(m.history);
            }
            _ => {
                cache.unlock();
                m.lock = None;
                cache.release_upto(Seqno(m.next));
                m.released = m.released.max(m.next);
                m.update_bound();
                assert!(
                    dir.page_files().is_empty(),
                    "step {step}: all released, pages remain"
                );
            }
        }
        check(&cache, &m, &dir, step);
    }
    cache.close().unwrap();
    assert!(dir.page_files().is_empty());
}

#[test]
fn random_operation_sequences_match_a_btreemap_model() {
    let seed = seed();
    for case in 0..12 {
        run(seed, case);
    }
}
