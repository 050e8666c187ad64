//! One slice of the cache: an independent ring of records plus its overflow pages, owned by one
//! shard thread (`Send`, not `Sync`).
//!
//! State and invariants:
//! - `ring` and `paged` index every record this slice can return, each in increasing seqno
//!   order; every entry points at live bytes (a ring record not yet overwritten, a page not yet
//!   deleted). An entry is removed exactly when its storage goes, always from the front of its
//!   deque (ring records are overwritten oldest first, pages deleted oldest first).
//! - Ring records are in ring order = seqno order. The ring's tail is the first `ring` entry's
//!   offset; its head (`head`) is where the next record goes. Used bytes are `[tail, head)`, or
//!   `[tail, end) + [0, head)` after a wrap; `head == tail` with records means full.
//! - A record may be overwritten (ring) or deleted (page) only if its seqno is `<= bound()`:
//!   released and not locked. When the ring has no such room, the record goes to a page.
//! - `run_start..=top` is the contiguous run (consecutive seqnos of this slice) that ends at
//!   the newest record held (`top`); that is what `range()` reports, and what `scan` would
//!   rebuild from the ring after a crash when no page holds newer records.
//!   `ring_run_start` is the same for ring entries alone: when the last page goes (and with it
//!   the newest records), the run becomes the ring's run without a walk.
//! - After an I/O failure (`failed`), every write returns `PreviousIo`.
//!
//! Hot path: `append` -> `place_in_ring` -> `format::encode_record` into the mapping; `get` ->
//! `locate` (O(1) by ordinal, binary search after a gap) -> `format::decode_record`.
//! Tests: unit tests below (fault injection, crash images), `tests/*.rs` through the facade.

use crate::error::{GCacheError, RecordLocation};
use crate::format::{
    self, decode_record, encode_record, encode_slice_header, encode_wrap_marker, record_len,
    round_up, Geometry, RecordKind, SliceHeader, LAYOUT_GRANULE, SLICE_HEADER_LEN, WRAP_MARKER_LEN,
};
use crate::region::{PageStore, Region};
use crate::scan::ScanResult;
use crate::stripe::{slice_of, Striping};
use std::cell::Cell;
use std::collections::VecDeque;
use std::io;
use std::marker::PhantomData;
use std::path::PathBuf;
use trireme_types::{HistoryId, Seqno, Uuid};

/// A record read from the cache, borrowing the cache's bytes (checksum already verified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub seqno: Seqno,
    pub kind: RecordKind,
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// An owned copy, e.g. to send to another thread for IST.
    pub fn to_record(&self) -> Record {
        Record {
            seqno: self.seqno,
            kind: self.kind,
            payload: self.payload.to_vec(),
        }
    }
}

/// An owned record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub seqno: Seqno,
    pub kind: RecordKind,
    pub payload: Vec<u8>,
}

/// Occupancy figures of one slice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SliceStats {
    pub ring_records: u64,
    pub page_records: u64,
    pub ring_len_bytes: u64,
    /// Ring bytes between tail and head, wrap gap included.
    pub ring_used_bytes: u64,
    pub page_files: u64,
    pub page_bytes: u64,
}

#[derive(Clone, Copy, Debug)]
struct RingEntry {
    seqno: Seqno,
    offset: u64,
}

#[derive(Clone, Copy, Debug)]
struct PageEntry {
    seqno: Seqno,
    page_seq: u64,
    offset: u64,
}

struct Page {
    /// Position in this slice's page sequence (consecutive in `pages`).
    seq: u64,
    file_number: u64,
    region: Box<dyn Region>,
    len: u64,
    used: u64,
    max_seqno: Seqno,
}

#[derive(Clone, Copy, Debug)]
enum Loc {
    Ring(u64),
    Page { page_seq: u64, offset: u64 },
}

pub struct GCacheSlice {
    index: u32,
    striping: Striping,
    geometry: Geometry,
    path: PathBuf,
    region: Box<dyn Region>,
    page_store: Box<dyn PageStore>,
    page_size_bytes: u64,
    header: SliceHeader,
    head: u64,
    ring: VecDeque<RingEntry>,
    paged: VecDeque<PageEntry>,
    pages: VecDeque<Page>,
    next_page_seq: u64,
    last_appended: Option<Seqno>,
    top: Option<Seqno>,
    run_start: Option<Seqno>,
    ring_run_start: Option<Seqno>,
    released: Seqno,
    lock: Option<Seqno>,
    failed: Option<(&'static str, io::ErrorKind)>,
    // Owned by one thread at a time: Send (all fields are) but not Sync.
    _not_sync: PhantomData<Cell<()>>,
}

impl std::fmt::Debug for GCacheSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GCacheSlice")
            .field("index", &self.index)
            .field("history", &self.header.history)
            .field("range", &self.range())
            .field("released", &self.released)
            .field("lock", &self.lock)
            .field("stats", &self.stats())
            .field("failed", &self.failed)
            .finish()
    }
}

/// A random non-zero generation different from `old` (FORMAT.md §4: random, so that payload
/// bytes can never forge a record the scanner would accept).
fn new_generation(old: u64) -> u64 {
    loop {
        let b = Uuid::generate().0;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        let g = u64::from_le_bytes(a) ^ u64::from_le_bytes(b[8..16].try_into().unwrap_or([0; 8]));
        if g != 0 && g != old {
            return g;
        }
    }
}

/// Everything a slice is made of besides its contents.
pub(crate) struct SliceParts {
    pub(crate) index: u32,
    pub(crate) geometry: Geometry,
    /// The cache file, for messages.
    pub(crate) path: PathBuf,
    /// The slice's bytes: slice header, then ring.
    pub(crate) region: Box<dyn Region>,
    pub(crate) page_store: Box<dyn PageStore>,
    pub(crate) page_size_bytes: u64,
}

impl GCacheSlice {
    fn blank(parts: SliceParts, header: SliceHeader) -> GCacheSlice {
        let SliceParts {
            index,
            geometry,
            path,
            region,
            page_store,
            page_size_bytes,
        } = parts;
        GCacheSlice {
            index,
            striping: Striping::new(index, geometry.slice_count),
            geometry,
            path,
            region,
            page_store,
            page_size_bytes,
            header,
            head: 0,
            ring: VecDeque::new(),
            paged: VecDeque::new(),
            pages: VecDeque::new(),
            next_page_seq: 0,
            last_appended: None,
            top: None,
            run_start: None,
            ring_run_start: None,
            released: Seqno::UNDEFINED,
            lock: None,
            failed: None,
            _not_sync: PhantomData,
        }
    }

    /// A slice that starts empty in `history` with a new generation (header written and synced).
    pub(crate) fn fresh(parts: SliceParts, history: HistoryId) -> Result<GCacheSlice, GCacheError> {
        let header = SliceHeader {
            index: parts.index,
            clean_shutdown: false,
            history,
            generation: 0,
            geometry: parts.geometry,
        };
        let mut slice = Self::blank(parts, header);
        slice.reset(history)?;
        Ok(slice)
    }

    /// A slice rebuilt from `scan` of its own bytes (whose header was valid and matched).
    pub(crate) fn recovered(
        parts: SliceParts,
        header: SliceHeader,
        scan: &ScanResult,
    ) -> Result<GCacheSlice, GCacheError> {
        let mut slice = Self::blank(parts, header);
        slice.ring = scan
            .run
            .iter()
            .map(|r| RingEntry {
                seqno: r.seqno,
                offset: r.offset,
            })
            .collect();
        slice.head = scan.head;
        slice.run_start = scan.run.first().map(|r| r.seqno);
        slice.ring_run_start = slice.run_start;
        slice.last_appended = scan.run.last().map(|r| r.seqno);
        slice.top = slice.last_appended;
        // Recovered records are committed history: overwritable unless an IST locks them.
        slice.released = slice.last_appended.unwrap_or(Seqno::UNDEFINED);
        // From now on a crash must not look like a clean shutdown.
        slice.header.clean_shutdown = false;
        slice.write_header("clear the clean-shutdown flag of")?;
        Ok(slice)
    }

    // -----------------------------------------------------------------------------------------
    // Queries

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn slice_count(&self) -> u32 {
        self.geometry.slice_count
    }

    pub fn history(&self) -> HistoryId {
        self.header.history
    }

    /// Does this slice own `seqno` (`slice_of(seqno, slice_count) == index`)?
    pub fn owns(&self, seqno: Seqno) -> bool {
        self.striping.owns(seqno)
    }

    /// Lowest and highest seqno of the contiguous run of this slice's seqnos that ends at the
    /// newest record. `None` when nothing is cached.
    pub fn range(&self) -> Option<(Seqno, Seqno)> {
        self.run_start.zip(self.top)
    }

    /// The oldest seqno this slice still holds (possibly below a gap, so outside `range()`).
    pub fn lowest(&self) -> Option<Seqno> {
        self.front_seqno()
    }

    /// The last seqno appended (even if since overwritten); appends must be above it.
    pub fn last_appended(&self) -> Option<Seqno> {
        self.last_appended
    }

    pub fn released(&self) -> Seqno {
        self.released
    }

    pub fn locked_from(&self) -> Option<Seqno> {
        self.lock
    }

    /// Has an I/O failure latched (writes refused)?
    pub fn has_failed(&self) -> bool {
        self.failed.is_some()
    }

    pub fn stats(&self) -> SliceStats {
        let ring_len = self.geometry.ring_len();
        let used = match self.ring.front() {
            None => 0,
            Some(t) if self.head > t.offset => self.head - t.offset,
            Some(t) if self.head < t.offset => ring_len - t.offset + self.head,
            Some(_) => ring_len,
        };
        SliceStats {
            ring_records: self.ring.len() as u64,
            page_records: self.paged.len() as u64,
            ring_len_bytes: ring_len,
            ring_used_bytes: used,
            page_files: self.pages.len() as u64,
            page_bytes: self.pages.iter().map(|p| p.len).sum(),
        }
    }

    /// The record `seqno`, checksum and seqno verified. `Ok(None)` if it is not cached here;
    /// an error (never garbage) if the bytes are not the record the index expects.
    pub fn get(&self, seqno: Seqno) -> Result<Option<RecordRef<'_>>, GCacheError> {
        if !self.owns(seqno) {
            if seqno.0 < 0 {
                return Ok(None);
            }
            return Err(self.wrong_slice(seqno));
        }
        let Some(loc) = self.locate(seqno) else {
            return Ok(None);
        };
        let (bytes, location) = match loc {
            Loc::Ring(offset) => {
                let start = (SLICE_HEADER_LEN + offset) as usize;
                let end = self.geometry.slice_len as usize;
                let bytes = self.region.bytes().get(start..end).unwrap_or(&[]);
                (
                    bytes,
                    RecordLocation::Ring {
                        slice: self.index,
                        offset,
                    },
                )
            }
            Loc::Page { page_seq, offset } => {
                let page = self.page(page_seq);
                let bytes = page
                    .and_then(|p| p.region.bytes().get(offset as usize..p.len as usize))
                    .unwrap_or(&[]);
                let path = page
                    .map(|p| self.page_store.path_of(p.file_number))
                    .unwrap_or_default();
                (
                    bytes,
                    RecordLocation::Page {
                        slice: self.index,
                        path,
                        offset,
                    },
                )
            }
        };
        let corrupt = |reason| GCacheError::CorruptRecord {
            seqno,
            location: location.clone(),
            reason,
        };
        let rec = decode_record(bytes, self.header.generation).map_err(corrupt)?;
        if rec.seqno != seqno {
            return Err(corrupt(format::Corruption::SeqnoMismatch {
                expected: seqno.0,
                found: rec.seqno.0,
            }));
        }
        Ok(Some(RecordRef {
            seqno,
            kind: rec.kind,
            payload: rec.payload,
        }))
    }

    // -----------------------------------------------------------------------------------------
    // Writes

    /// Caches `payload` as record `seqno`. Seqnos must increase within the slice (gaps are
    /// allowed). Goes to the ring, overwriting the oldest released records if needed; if that
    /// would overwrite an unreleased or locked record, goes to a page file instead.
    /// On error the slice is unchanged (an I/O error also latches).
    pub fn append(
        &mut self,
        seqno: Seqno,
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<(), GCacheError> {
        self.check_writable()?;
        if seqno.0 < 0 {
            return Err(GCacheError::InvalidSeqno { seqno });
        }
        if !self.owns(seqno) {
            return Err(self.wrong_slice(seqno));
        }
        if let Some(last) = self.last_appended {
            if seqno <= last {
                return Err(GCacheError::SeqnoNotIncreasing {
                    slice: self.index,
                    seqno,
                    last,
                });
            }
        }
        let payload_len =
            u32::try_from(payload.len()).map_err(|_| GCacheError::RecordTooLarge {
                len: payload.len() as u64,
                max: u64::from(u32::MAX),
            })?;
        let len = record_len(payload_len);
        let generation = self.header.generation;

        let in_ring = if len <= self.geometry.ring_len() {
            self.place_in_ring(len)
        } else {
            None
        };
        match in_ring {
            Some(offset) => {
                // (After place_in_ring, which may have popped old entries.)
                let ring_continues = self
                    .ring
                    .back()
                    .is_some_and(|b| self.striping.next(b.seqno) == Some(seqno));
                if !ring_continues {
                    self.ring_run_start = Some(seqno);
                }
                let start = (SLICE_HEADER_LEN + offset) as usize;
                let dst = &mut self.region.bytes_mut()[start..start + len as usize];
                encode_record(dst, seqno, kind, generation, payload);
                debug_assert!(decode_record(dst, generation).is_ok_and(|r| r.seqno == seqno));
                self.ring.push_back(RingEntry { seqno, offset });
                self.head = (offset + len) % self.geometry.ring_len();
            }
            None => self.append_to_page(seqno, kind, payload, len)?,
        }

        let continues_run = self.run_start.is_some()
            && self.top.and_then(|top| self.striping.next(top)) == Some(seqno);
        if !continues_run {
            self.run_start = Some(seqno);
        }
        self.top = Some(seqno);
        self.last_appended = Some(seqno);
        Ok(())
    }

    /// Records `<= seqno` may be overwritten or deleted (unless locked). Monotonic: a lower
    /// value than before is ignored. Deletes page files whose records are all released.
    pub fn release_upto(&mut self, seqno: Seqno) {
        if seqno > self.released {
            self.released = seqno;
        }
        self.drop_released_pages();
    }

    /// Keeps records `>= seqno` from being overwritten or deleted, even if released, while an
    /// IST reads them. One lock per slice: a new call replaces the previous one (a caller
    /// serving several ISTs passes the lowest seqno any of them still needs).
    pub fn lock_from(&mut self, seqno: Seqno) {
        self.lock = Some(seqno);
    }

    /// Ends the IST lock; released records may be reused again.
    pub fn unlock(&mut self) {
        self.lock = None;
        self.drop_released_pages();
    }

    /// Switches to `history`: if it differs from the current one, everything cached is
    /// discarded (seqnos of different histories are unrelated).
    pub fn set_history(&mut self, history: HistoryId) -> Result<(), GCacheError> {
        if history == self.header.history {
            return self.check_writable();
        }
        self.reset(history)
    }

    /// Discards everything and starts again in `history` with a new generation, even if the
    /// history is unchanged (Galera's `seqno_reset`: e.g. the cache runs ahead of the position
    /// the node resumes from). The new header is synced before anything else is written.
    pub fn reset(&mut self, history: HistoryId) -> Result<(), GCacheError> {
        self.check_writable()?;
        self.ring.clear();
        self.paged.clear();
        self.remove_all_pages();
        self.head = 0;
        self.last_appended = None;
        self.top = None;
        self.run_start = None;
        self.ring_run_start = None;
        self.released = Seqno::UNDEFINED;
        self.lock = None;
        self.header.history = history;
        self.header.generation = new_generation(self.header.generation);
        self.header.clean_shutdown = false;
        self.write_header("write the slice header of")
    }

    /// Makes every record appended so far durable (msync of the slice). The runtime may call
    /// this periodically; it is not needed for kill -9, only for power loss.
    pub fn flush(&mut self) -> Result<(), GCacheError> {
        self.check_writable()?;
        let len = self.geometry.slice_len as usize;
        self.region.sync(0, len).map_err(|e| self.latch("msync", e))
    }

    /// Clean shutdown: msync the slice, then set and sync the clean-shutdown flag, then delete
    /// page files (they are never read after a restart).
    pub fn close(mut self) -> Result<(), GCacheError> {
        self.flush()?;
        self.header.clean_shutdown = true;
        self.write_header("mark clean")?;
        self.remove_all_pages();
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // Internals

    fn check_writable(&self) -> Result<(), GCacheError> {
        match self.failed {
            Some((op, kind)) => Err(GCacheError::PreviousIo {
                slice: self.index,
                op,
                kind,
            }),
            None => Ok(()),
        }
    }

    fn latch(&mut self, op: &'static str, source: io::Error) -> GCacheError {
        let path = self.path.clone();
        self.latch_at(op, path, source)
    }

    fn latch_at(&mut self, op: &'static str, path: PathBuf, source: io::Error) -> GCacheError {
        log::error!(
            "GCache slice {}: {op} {} failed: {source}; refusing further writes",
            self.index,
            path.display()
        );
        self.failed = Some((op, source.kind()));
        GCacheError::Io { op, path, source }
    }

    fn wrong_slice(&self, seqno: Seqno) -> GCacheError {
        GCacheError::WrongSlice {
            seqno,
            slice: self.index,
            owner: slice_of(seqno, self.geometry.slice_count),
        }
    }

    fn write_header(&mut self, op: &'static str) -> Result<(), GCacheError> {
        let bytes = encode_slice_header(&self.header);
        self.region.bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
        self.region
            .sync(0, SLICE_HEADER_LEN as usize)
            .map_err(|e| self.latch(op, e))
    }

    /// Released and not locked: may be overwritten or deleted.
    fn bound(&self) -> Seqno {
        match self.lock {
            Some(l) => self.released.min(Seqno(l.0.saturating_sub(1))),
            None => self.released,
        }
    }

    fn front_seqno(&self) -> Option<Seqno> {
        match (self.ring.front(), self.paged.front()) {
            (Some(r), Some(p)) => Some(r.seqno.min(p.seqno)),
            (Some(r), None) => Some(r.seqno),
            (None, Some(p)) => Some(p.seqno),
            (None, None) => None,
        }
    }

    /// Bookkeeping after the entry for `seqno` was removed (its storage is gone).
    fn forget(&mut self, seqno: Seqno) {
        if self.ring.is_empty() && self.paged.is_empty() {
            self.top = None;
            self.run_start = None;
            self.ring_run_start = None;
        } else if self.top == Some(seqno) {
            // The newest record went: only deleting the last page does that (a ring record is
            // reclaimable only once every page is deleted), and then the ring's run is the run.
            if self.paged.is_empty() {
                self.top = self.ring.back().map(|e| e.seqno);
                self.run_start = self.ring_run_start;
            } else {
                self.recompute_run();
            }
        } else if self.run_start.is_some_and(|start| seqno >= start) {
            // The run is contiguous: it now starts just above the removed seqno.
            let top = self.top;
            self.run_start = self.striping.next(seqno).filter(|&n| Some(n) <= top);
        }
    }

    /// Removes the oldest ring entry (its bytes are about to be overwritten).
    fn pop_ring_front(&mut self) {
        let Some(e) = self.ring.pop_front() else {
            return;
        };
        if self.ring_run_start == Some(e.seqno) {
            let next = self.striping.next(e.seqno);
            self.ring_run_start = if self.ring.is_empty() { None } else { next };
        }
        self.forget(e.seqno);
    }

    /// Finds `top` and the run below it by walking both indexes from the newest entry down.
    /// O(run); only for states the incremental bookkeeping does not expect.
    fn recompute_run(&mut self) {
        let (mut ri, mut pi) = (self.ring.len(), self.paged.len());
        let mut start: Option<Seqno> = None;
        loop {
            let r = ri.checked_sub(1).map(|i| self.ring[i].seqno);
            let p = pi.checked_sub(1).map(|i| self.paged[i].seqno);
            let s = match (r, p) {
                (Some(r), Some(p)) if r > p => {
                    ri -= 1;
                    r
                }
                (_, Some(p)) => {
                    pi -= 1;
                    p
                }
                (Some(r), None) => {
                    ri -= 1;
                    r
                }
                (None, None) => break,
            };
            if start.is_some_and(|above| self.striping.next(s) != Some(above)) {
                break;
            }
            start = Some(s);
        }
        let r = self.ring.back().map(|e| e.seqno);
        let p = self.paged.back().map(|e| e.seqno);
        self.top = r.max(p);
        self.run_start = start;
    }

    /// Where a record of `len` bytes fits in the ring right now, writing a wrap marker if it
    /// goes to offset 0 past the end; `None` if only overwriting would make room.
    fn try_fit(&mut self, len: u64) -> Option<u64> {
        let ring_len = self.geometry.ring_len();
        let Some(tail) = self.ring.front().map(|e| e.offset) else {
            self.head = 0;
            return (len <= ring_len).then_some(0);
        };
        let head = self.head;
        if head > tail {
            if ring_len - head >= len {
                return Some(head);
            }
            if tail >= len {
                if ring_len - head >= WRAP_MARKER_LEN as u64 {
                    let marker = encode_wrap_marker(self.header.generation);
                    let at = (SLICE_HEADER_LEN + head) as usize;
                    self.region.bytes_mut()[at..at + marker.len()].copy_from_slice(&marker);
                }
                return Some(0);
            }
            None
        } else if head < tail {
            (tail - head >= len).then_some(head)
        } else {
            None
        }
    }

    /// Makes room by overwriting released ring records, oldest first; never unreleased ones.
    fn place_in_ring(&mut self, len: u64) -> Option<u64> {
        loop {
            if let Some(offset) = self.try_fit(len) {
                return Some(offset);
            }
            let oldest = *self.ring.front()?;
            if oldest.seqno > self.bound() {
                return None;
            }
            self.pop_ring_front();
        }
    }

    fn append_to_page(
        &mut self,
        seqno: Seqno,
        kind: RecordKind,
        payload: &[u8],
        len: u64,
    ) -> Result<(), GCacheError> {
        let fits_last = self.pages.back().is_some_and(|p| p.len - p.used >= len);
        if !fits_last {
            let page_len = round_up(self.page_size_bytes.max(len), LAYOUT_GRANULE).ok_or(
                GCacheError::RecordTooLarge {
                    len,
                    max: u64::MAX - LAYOUT_GRANULE,
                },
            )?;
            let seq = self.next_page_seq;
            let file_number = seq * u64::from(self.geometry.slice_count) + u64::from(self.index);
            let region = match self.page_store.create(file_number, page_len) {
                Ok(r) => r,
                Err(e) => {
                    let path = self.page_store.path_of(file_number);
                    return Err(self.latch_at("create page file", path, e));
                }
            };
            log::info!(
                "GCache slice {}: no reusable room in the ring (oldest unreleased or locked); \
                 writing to page file {} ({page_len} bytes)",
                self.index,
                self.page_store.path_of(file_number).display()
            );
            self.pages.push_back(Page {
                seq,
                file_number,
                region,
                len: page_len,
                used: 0,
                max_seqno: seqno,
            });
            self.next_page_seq += 1;
        }
        let generation = self.header.generation;
        // Non-empty: the last page fits, or one was just pushed.
        let last = self.pages.len() - 1;
        let page = &mut self.pages[last];
        let offset = page.used;
        let dst = &mut page.region.bytes_mut()[offset as usize..(offset + len) as usize];
        encode_record(dst, seqno, kind, generation, payload);
        debug_assert!(decode_record(dst, generation).is_ok_and(|r| r.seqno == seqno));
        page.used += len;
        page.max_seqno = seqno;
        let page_seq = page.seq;
        self.paged.push_back(PageEntry {
            seqno,
            page_seq,
            offset,
        });
        Ok(())
    }

    /// Deletes pages, oldest first, whose records are all released and unlocked.
    fn drop_released_pages(&mut self) {
        let bound = self.bound();
        while let Some((seq, max_seqno)) = self.pages.front().map(|p| (p.seq, p.max_seqno)) {
            if max_seqno > bound {
                break;
            }
            // A page's entries are the oldest page entries: pages fill and go in seqno order.
            while let Some(e) = self.paged.front().copied().filter(|e| e.page_seq == seq) {
                self.paged.pop_front();
                self.forget(e.seqno);
            }
            if let Some(page) = self.pages.pop_front() {
                let number = page.file_number;
                drop(page.region);
                if let Err(e) = self.page_store.remove(number) {
                    log::warn!(
                        "GCache slice {}: cannot delete {}: {e}",
                        self.index,
                        self.page_store.path_of(number).display()
                    );
                }
            }
        }
    }

    fn remove_all_pages(&mut self) {
        self.paged.clear();
        while let Some(page) = self.pages.pop_front() {
            let number = page.file_number;
            drop(page.region);
            if let Err(e) = self.page_store.remove(number) {
                log::warn!(
                    "GCache slice {}: cannot delete {}: {e}",
                    self.index,
                    self.page_store.path_of(number).display()
                );
            }
        }
    }

    fn page(&self, page_seq: u64) -> Option<&Page> {
        let first = self.pages.front()?.seq;
        let i = usize::try_from(page_seq.checked_sub(first)?).ok()?;
        self.pages.get(i)
    }

    fn locate(&self, seqno: Seqno) -> Option<Loc> {
        if let Some(front) = self.ring.front() {
            // Fast path: without gaps, the entry sits at the ordinal distance from the front.
            let guess = self.striping.ordinal(seqno) - self.striping.ordinal(front.seqno);
            let hit = usize::try_from(guess).ok().and_then(|i| self.ring.get(i));
            if let Some(e) = hit.filter(|e| e.seqno == seqno) {
                return Some(Loc::Ring(e.offset));
            }
            if let Ok(i) = self.ring.binary_search_by_key(&seqno, |e| e.seqno) {
                return Some(Loc::Ring(self.ring[i].offset));
            }
        }
        let i = self.paged.binary_search_by_key(&seqno, |e| e.seqno).ok()?;
        let e = self.paged[i];
        Some(Loc::Page {
            page_seq: e.page_seq,
            offset: e.offset,
        })
    }

    /// The slice's raw bytes (header and ring), for tests that build crash images.
    #[cfg(test)]
    pub(crate) fn raw_bytes(&self) -> &[u8] {
        self.region.bytes()
    }
}

#[cfg(test)]
mod tests;
