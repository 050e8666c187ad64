//! Fuzz-style tests of the pure recovery function `scan`: random bytes, and valid images with
//! random damage, never panic, and what is kept is always a consistent run of genuine records.
//! Seeded: the seed is printed, `TRIREME_SEED` replays it.

mod common;

use common::{seed, Rng};
use trireme_gcache::format::{
    decode_record, encode_record, encode_slice_header, encode_wrap_marker, record_len, Geometry,
    SliceHeader, SLICE_HEADER_LEN, STRIPE_LEN,
};
use trireme_gcache::{scan, slice_of, RecordKind, ScanResult};
use trireme_types::{HistoryId, Seqno, Uuid};

fn header(index: u32, slice_count: u32, slice_len: u64, generation: u64) -> SliceHeader {
    SliceHeader {
        index,
        clean_shutdown: false,
        history: HistoryId(Uuid([3; 16])),
        generation,
        geometry: Geometry {
            slice_count,
            stripe_len: STRIPE_LEN,
            slice_len,
        },
    }
}

/// Everything `scan` promises about what it keeps.
fn check_invariants(image: &[u8], r: &ScanResult, what: &str) {
    let Ok(h) = &r.header else {
        assert!(r.run.is_empty(), "{what}: records kept without a header");
        return;
    };
    let ring = &image[SLICE_HEADER_LEN as usize..];
    let mut prev_end: Option<(u64, u64)> = None;
    for (i, rec) in r.run.iter().enumerate() {
        assert_eq!(
            slice_of(rec.seqno, h.geometry.slice_count),
            h.index,
            "{what}: not owned"
        );
        let d = decode_record(&ring[rec.offset as usize..], h.generation)
            .unwrap_or_else(|e| panic!("{what}: kept record {} is invalid: {e}", rec.seqno));
        assert_eq!(d.seqno, rec.seqno, "{what}");
        if i > 0 {
            let a = r.run[i - 1].seqno.0;
            assert!(a < rec.seqno.0, "{what}: not increasing");
            let owned_between =
                (a + 1..rec.seqno.0).any(|x| slice_of(Seqno(x), h.geometry.slice_count) == h.index);
            assert!(!owned_between, "{what}: gap between {a} and {}", rec.seqno);
        }
        // No two kept records overlap.
        let (start, end) = (rec.offset, rec.offset + d.len);
        if let Some((ps, pe)) = prev_end {
            assert!(end <= ps || start >= pe, "{what}: records overlap");
        }
        prev_end = Some((start, end));
    }
    // Ring order: walking the run, each record starts at or after the previous one's end, except
    // for at most one wrap to a lower offset, after which records stay below the first one.
    // That is what makes tail (first offset) .. head describe exactly the bytes in use.
    let mut wrapped = false;
    for w in r.run.windows(2) {
        let prev_len = decode_record(&ring[w[0].offset as usize..], h.generation)
            .unwrap()
            .len;
        let cur_len = decode_record(&ring[w[1].offset as usize..], h.generation)
            .unwrap()
            .len;
        if w[1].offset >= w[0].offset + prev_len {
            assert!(
                !wrapped || w[1].offset + cur_len <= r.run[0].offset,
                "{what}: past the tail"
            );
        } else {
            assert!(!wrapped, "{what}: wraps twice");
            assert!(
                w[1].offset + cur_len <= r.run[0].offset,
                "{what}: wrap overlaps the tail"
            );
            wrapped = true;
        }
    }
    assert!(r.head < ring.len() as u64, "{what}: head past the ring");
    if let Some(last) = r.run.last() {
        let len = decode_record(&ring[last.offset as usize..], h.generation)
            .unwrap()
            .len;
        assert_eq!(
            r.head,
            (last.offset + len) % ring.len() as u64,
            "{what}: head"
        );
    }
}

#[test]
fn scan_of_random_bytes_never_panics() {
    let mut rng = Rng(seed());
    for i in 0..3000 {
        let len = rng.below(3 * 4096 + 100) as usize;
        let mut image: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if rng.chance(2) && len >= 64 {
            // A valid slice header, so the ring walk runs over random bytes.
            let slice_len = (len as u64 / 4096) * 4096;
            let h = header(
                0,
                1 + rng.below(3) as u32,
                slice_len.max(8192),
                1 + rng.below(5),
            );
            let bytes = encode_slice_header(&h);
            image[..bytes.len()].copy_from_slice(&bytes);
            if slice_len >= 8192 && rng.chance(2) {
                image.truncate(slice_len as usize);
            }
        }
        let r = scan(&image);
        check_invariants(&image, &r, &format!("random image {i}"));
    }
}

#[test]
fn scan_of_damaged_valid_images_keeps_only_consistent_runs_of_genuine_records() {
    let mut rng = Rng(seed());
    for i in 0..400 {
        let slice_count = 1 + rng.below(3) as u32;
        let index = rng.below(u64::from(slice_count)) as u32;
        let ring_len = 4096 * (1 + rng.below(4));
        let slice_len = SLICE_HEADER_LEN + ring_len;
        let generation = 1 + rng.below(3);
        let mut image = vec![0u8; slice_len as usize];
        image[..64].copy_from_slice(&encode_slice_header(&header(
            index,
            slice_count,
            slice_len,
            generation,
        )));
        // Lay records the way the writer does: forward, wrapping to 0 with a marker, owned
        // seqnos increasing with occasional gaps, sometimes of another generation.
        let mut seqno = i64::from(index) * 64;
        let mut off = 0u64;
        for _ in 0..rng.below(200) {
            let len = rng.below(500) as u32;
            let rl = record_len(len);
            if off + rl > ring_len {
                if ring_len - off >= 24 {
                    let m = encode_wrap_marker(generation);
                    let at = (SLICE_HEADER_LEN + off) as usize;
                    image[at..at + 24].copy_from_slice(&m);
                }
                off = 0;
            }
            let g = if rng.chance(30) {
                generation + 1
            } else {
                generation
            };
            let payload: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            let at = (SLICE_HEADER_LEN + off) as usize;
            encode_record(
                &mut image[at..at + rl as usize],
                Seqno(seqno),
                RecordKind::Writeset,
                g,
                &payload,
            );
            off += rl;
            seqno += 1;
            while slice_of(Seqno(seqno), slice_count) != index || rng.chance(50) {
                seqno += 1;
            }
        }
        let clean = scan(&image);
        check_invariants(&image, &clean, &format!("image {i}"));
        for j in 0..20 {
            let mut damaged = image.clone();
            for _ in 0..1 + rng.below(8) {
                let at = SLICE_HEADER_LEN as usize + rng.below(ring_len) as usize;
                match rng.below(4) {
                    3 if !clean.run.is_empty() => {
                        // A stale duplicate: a whole valid record copied to another offset.
                        let rec = clean.run[rng.below(clean.run.len() as u64) as usize];
                        let from = (SLICE_HEADER_LEN + rec.offset) as usize;
                        let to = SLICE_HEADER_LEN as usize + (rng.below(ring_len) & !7) as usize;
                        let n = (record_len(0) as usize + 500).min(damaged.len() - from.max(to));
                        damaged.copy_within(from..from + n, to);
                    }
                    0 => damaged[at] ^= 1 << rng.below(8),
                    1 => {
                        // A stale copy of other bytes (old lap contents).
                        let from = SLICE_HEADER_LEN as usize + rng.below(ring_len) as usize;
                        let n = (rng.below(300) as usize).min(damaged.len() - at.max(from));
                        damaged.copy_within(from..from + n, at);
                    }
                    _ => {
                        let n = (rng.below(600) as usize).min(damaged.len() - at);
                        damaged[at..at + n].fill(0);
                    }
                }
            }
            let r = scan(&damaged);
            check_invariants(&damaged, &r, &format!("image {i} damage {j}"));
        }
    }
}
