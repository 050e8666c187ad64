//! Recovery: a pure function from one slice's bytes to the records worth keeping.
//!
//! [`scan`] never trusts the bytes: every offset and length is checked before use, and it never
//! panics (`tests/scan_fuzz.rs` feeds it random and mutated images). The algorithm is
//! `FORMAT.md` §8: validate the slice header, walk the ring in alignment steps collecting valid
//! records of the header's generation, then keep the longest run of consecutive (for this slice)
//! seqnos that ends at the highest valid one and lies in the ring as at most two segments.

use crate::format::{
    decode_record, decode_slice_header, looks_like_record, probe_wrap_marker, HeaderProblem,
    SliceHeader, WrapProbe, RECORD_ALIGN, SLICE_HEADER_LEN, WRAP_MARKER_LEN,
};
use crate::stripe::Striping;
use trireme_types::Seqno;

/// A record kept by recovery: its seqno and its offset from the start of the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedRecord {
    pub seqno: Seqno,
    pub offset: u64,
}

/// What [`scan`] found in one slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanResult {
    /// The slice header, or why it was not accepted (then nothing else was scanned).
    pub header: Result<SliceHeader, HeaderProblem>,
    /// The kept run, in increasing seqno order.
    pub run: Vec<ScannedRecord>,
    /// Ring offset where the next record goes: just past the highest kept record (0 if that
    /// record ends exactly at the end of the ring, or if nothing was kept).
    pub head: u64,
    /// Records that passed every check (before removing duplicates).
    pub valid_records: u64,
    /// Headers or wrap markers with this slice's magic and generation that failed a check:
    /// a torn write, or damage.
    pub bad_records: u64,
    /// Valid records not kept: below a gap, out of ring order, duplicates, or of a seqno this
    /// slice does not own.
    pub discarded_records: u64,
    /// Valid wrap markers stepped over.
    pub wrap_markers: u64,
}

impl ScanResult {
    /// Lowest and highest kept seqno.
    pub fn range(&self) -> Option<(Seqno, Seqno)> {
        Some((self.run.first()?.seqno, self.run.last()?.seqno))
    }

    fn empty(header: Result<SliceHeader, HeaderProblem>) -> ScanResult {
        ScanResult {
            header,
            run: Vec::new(),
            head: 0,
            valid_records: 0,
            bad_records: 0,
            discarded_records: 0,
            wrap_markers: 0,
        }
    }
}

#[derive(Clone, Copy)]
struct Found {
    seqno: Seqno,
    offset: u64,
    len: u64,
}

/// Scans one slice image: its 4096-byte slice header followed by its ring.
pub fn scan(slice: &[u8]) -> ScanResult {
    let header = match decode_slice_header(slice) {
        Ok(h) if h.geometry.slice_len != slice.len() as u64 => {
            return ScanResult::empty(Err(HeaderProblem::BadField {
                field: "slice_len",
                found: h.geometry.slice_len,
            }))
        }
        Ok(h) => h,
        Err(e) => return ScanResult::empty(Err(e)),
    };
    // decode_slice_header validated the geometry, so the ring is at least MIN_RING_LEN.
    let ring = &slice[SLICE_HEADER_LEN as usize..];
    let striping = Striping::new(header.index, header.geometry.slice_count);
    let generation = header.generation;
    let mut result = ScanResult::empty(Ok(header));

    let mut found: Vec<Found> = Vec::new();
    let mut off = 0usize;
    while off + WRAP_MARKER_LEN <= ring.len() {
        let rest = &ring[off..];
        if looks_like_record(rest, generation) {
            match decode_record(rest, generation) {
                Ok(r) => {
                    result.valid_records += 1;
                    if striping.owns(r.seqno) {
                        found.push(Found {
                            seqno: r.seqno,
                            offset: off as u64,
                            len: r.len,
                        });
                    } else {
                        result.discarded_records += 1;
                    }
                    // r.len <= rest.len() was checked by decode_record.
                    off += r.len as usize;
                    continue;
                }
                Err(_) => result.bad_records += 1,
            }
        } else {
            match probe_wrap_marker(rest, generation) {
                WrapProbe::Valid => {
                    result.wrap_markers += 1;
                    off += WRAP_MARKER_LEN;
                    continue;
                }
                WrapProbe::Torn => result.bad_records += 1,
                WrapProbe::NotAMarker => {}
            }
        }
        off += RECORD_ALIGN as usize;
    }

    found.sort_unstable_by_key(|f| (f.seqno, f.offset));
    let before = found.len();
    found.dedup_by_key(|f| f.seqno);
    result.discarded_records += (before - found.len()) as u64;

    let Some(&top) = found.last() else {
        return result;
    };
    // The newest segment ends at head_end; an older segment (before a wrap) must lie above it.
    let head_end = top.offset + top.len;
    let mut kept = 1usize;
    let mut cur = top;
    let mut wrapped = false;
    for rec in found[..found.len() - 1].iter().rev() {
        if striping.prev(cur.seqno) != Some(rec.seqno) {
            break;
        }
        let end = rec.offset + rec.len;
        let in_ring_order = if end <= cur.offset {
            !wrapped || rec.offset >= head_end
        } else if !wrapped && rec.offset >= head_end {
            wrapped = true;
            true
        } else {
            false
        };
        if !in_ring_order {
            break;
        }
        kept += 1;
        cur = *rec;
    }
    result.discarded_records += (found.len() - kept) as u64;
    result.run = found[found.len() - kept..]
        .iter()
        .map(|f| ScannedRecord {
            seqno: f.seqno,
            offset: f.offset,
        })
        .collect();
    result.head = if head_end == ring.len() as u64 {
        0
    } else {
        head_end
    };
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{encode_record, encode_slice_header, record_len, Geometry, RecordKind};
    use trireme_types::{HistoryId, Uuid};

    fn image(records: &[(i64, u64)]) -> Vec<u8> {
        let geometry = Geometry {
            slice_count: 1,
            stripe_len: 64,
            slice_len: 8192,
        };
        let header = SliceHeader {
            index: 0,
            clean_shutdown: false,
            history: HistoryId(Uuid([1; 16])),
            generation: 7,
            geometry,
        };
        let mut img = vec![0u8; 8192];
        img[..64].copy_from_slice(&encode_slice_header(&header));
        for &(seqno, offset) in records {
            let at = (SLICE_HEADER_LEN + offset) as usize;
            let len = record_len(60) as usize;
            encode_record(
                &mut img[at..at + len],
                Seqno(seqno),
                RecordKind::Writeset,
                7,
                &[9; 60],
            );
        }
        img
    }

    fn kept(r: &ScanResult) -> Vec<i64> {
        r.run.iter().map(|r| r.seqno.0).collect()
    }

    #[test]
    fn a_wrapped_run_is_kept_whole() {
        // 3 and 4 after the wrap at offset 0; 1 and 2 before it, higher in the ring.
        let n = record_len(60); // 104
        let r = scan(&image(&[(3, 0), (4, n), (1, 2000), (2, 2000 + n)]));
        assert_eq!(kept(&r), vec![1, 2, 3, 4]);
        assert_eq!(r.head, 2 * n);
    }

    #[test]
    fn a_run_out_of_ring_order_is_cut_where_the_layout_breaks() {
        // Consecutive seqnos, but 1 lies between 2 and 3 in the ring: no writer lays records
        // out like that (it would be a stale copy), and tail..head could not describe it.
        let r = scan(&image(&[(2, 0), (1, 1000), (3, 2000)]));
        assert_eq!(r.valid_records, 3);
        assert_eq!(kept(&r), vec![2, 3]);
        assert_eq!(r.discarded_records, 1);
        // A gap between records of a segment is fine (tail..head covers it)...
        let r = scan(&image(&[(2, 504), (3, 0), (1, 200)]));
        assert_eq!(kept(&r), vec![1, 2, 3]);
        // ...but an older segment must lie wholly above the newest record's end: with 1 kept,
        // tail = 96 and head = 508 could not include 2 at 1000.
        let r = scan(&image(&[(3, 304), (4, 408), (2, 1000), (1, 96)]));
        assert_eq!(r.valid_records, 4);
        assert_eq!(kept(&r), vec![2, 3, 4]);
    }
}
