//! The facade: opens (creates, reinitialises or recovers) the cache file, owns every slice for
//! single-threaded use and tests, and hands the slices out to shard threads (`into_slices`).
//!
//! Open sequence (FORMAT.md §3, §8): remove stale page files; open and `flock` the file; decide
//! from its header whether to reuse it or (re)create it; when (re)creating, size and preallocate
//! it before any mapping exists, write the file header and fsync; map each slice; then per slice
//! either adopt what `scan` recovered (history matches, `recover = true`) or reset it.

use crate::config::GCacheConfig;
use crate::error::GCacheError;
use crate::format::{
    decode_file_header, encode_file_header, Geometry, HeaderProblem, FILE_HEADER_LEN,
};
use crate::map::{self, MappedRegion, Preallocated};
use crate::region::{is_page_file_name, DirPageStore, Region};
use crate::scan::scan;
use crate::slice::{GCacheSlice, RecordRef, SliceParts};
use crate::stripe::{slice_of, Striping};
use crate::RecordKind;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use trireme_types::{HistoryId, Seqno};

/// What happened to the file at open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// There was no file (or an empty one).
    Created,
    /// The file was not usable as it was and has been rewritten empty.
    Reinitialised(ReinitReason),
    /// The file was reused.
    Reopened,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReinitReason {
    /// The header was not ours (Galera's format, something else), or damaged, or another version.
    Header(HeaderProblem),
    /// `gcache.size` or the slice count changed.
    GeometryChanged { found: Geometry, wanted: Geometry },
    /// The file's length is not what its header says.
    LengthMismatch { len: u64, expected: u64 },
}

impl std::fmt::Display for ReinitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReinitReason::Header(p) => write!(f, "{p}"),
            ReinitReason::GeometryChanged { found, wanted } => write!(
                f,
                "its geometry ({} slices of {} bytes) differs from the configured one ({} slices of {} bytes)",
                found.slice_count, found.slice_len, wanted.slice_count, wanted.slice_len
            ),
            ReinitReason::LengthMismatch { len, expected } => {
                write!(f, "it is {len} bytes long, its header says {expected}")
            }
        }
    }
}

/// How one slice started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SliceStart {
    /// Rebuilt from the file.
    Recovered,
    /// The file was new or reinitialised.
    NewFile,
    /// `recover = false`.
    RecoveryNotRequested,
    /// The slice held another history's records; they were discarded.
    OtherHistory { found: HistoryId },
    /// The slice header was unusable (torn, foreign); the slice was reset.
    BadHeader(HeaderProblem),
}

/// What recovery found in one slice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceRecovery {
    pub slice: u32,
    pub start: SliceStart,
    /// The slice header said the previous run closed cleanly.
    pub previous_clean: bool,
    /// Range kept (contiguous for this slice, ending at its highest valid record).
    pub range: Option<(Seqno, Seqno)>,
    pub records: u64,
    pub bad_records: u64,
    pub discarded_records: u64,
}

/// What `GCache::open` found and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    pub path: PathBuf,
    pub file: FileOutcome,
    pub slices: Vec<SliceRecovery>,
    /// The global contiguous range (all slices) ending at the highest recovered seqno.
    pub range: Option<(Seqno, Seqno)>,
    pub records: u64,
    pub bad_records: u64,
    pub discarded_records: u64,
    /// Leftover `gcache.page.*` files deleted at open.
    pub stale_pages_removed: u64,
    pub elapsed: Duration,
}

/// The whole cache, all slices in one owner. For single-threaded use, tests, and for opening:
/// the runtime calls [`GCache::into_slices`] and gives one slice to each shard thread.
#[derive(Debug)]
pub struct GCache {
    slices: Vec<GCacheSlice>,
    path: PathBuf,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> GCacheError + 'a {
    move |source| GCacheError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl GCache {
    /// Opens the cache for `history`: creates and preallocates the file, or reinitialises it
    /// (logged) if it is not a usable Trireme cache of the configured geometry, or reuses it and,
    /// with `cfg.recover`, rebuilds each slice whose history matches from its bytes.
    pub fn open(
        cfg: GCacheConfig,
        history: HistoryId,
    ) -> Result<(GCache, RecoveryReport), GCacheError> {
        let started = Instant::now();
        let geometry = cfg.geometry()?;
        let path = cfg.path();
        let stale_pages_removed = remove_stale_pages(&cfg.dir);

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("open", &path))?;
        if !map::try_lock_exclusive(&file).map_err(io_err("lock", &path))? {
            return Err(GCacheError::Locked { path });
        }

        let outcome = inspect(&file, &path, &geometry)?;
        match &outcome {
            FileOutcome::Reopened => {}
            FileOutcome::Created => {
                log::info!(
                    "GCache: creating {} ({} bytes, {} slice(s))",
                    path.display(),
                    geometry.file_len().unwrap_or(0),
                    geometry.slice_count
                );
                prepare_file(&file, &path, &geometry)?;
            }
            FileOutcome::Reinitialised(reason) => {
                let galera = matches!(reason, ReinitReason::Header(HeaderProblem::GaleraFormat));
                log::warn!(
                    "GCache: {} cannot be reused because {reason}; reinitialising it{}",
                    path.display(),
                    if galera {
                        " for Trireme (writesets cached by Galera are not carried over; a node \
                         that needs them will get SST instead of IST)"
                    } else {
                        " (its cached writesets are lost; a node that needs them will get SST)"
                    }
                );
                prepare_file(&file, &path, &geometry)?;
            }
        }

        let file = Arc::new(file);
        let reuse = outcome == FileOutcome::Reopened;
        let mut slices = Vec::with_capacity(geometry.slice_count as usize);
        let mut reports = Vec::with_capacity(geometry.slice_count as usize);
        for index in 0..geometry.slice_count {
            let region = MappedRegion::map(
                file.clone(),
                geometry.slice_offset(index),
                geometry.slice_len,
            )
            .map_err(io_err("map", &path))?;
            let (slice, report) = open_slice(
                index,
                geometry,
                &path,
                Box::new(region),
                &cfg,
                history,
                reuse,
            )?;
            slices.push(slice);
            reports.push(report);
        }

        let cache = GCache {
            slices,
            path: path.clone(),
        };
        let report = RecoveryReport {
            path,
            file: outcome,
            range: cache.range(),
            records: reports.iter().map(|r| r.records).sum(),
            bad_records: reports.iter().map(|r| r.bad_records).sum(),
            discarded_records: reports.iter().map(|r| r.discarded_records).sum(),
            slices: reports,
            stale_pages_removed,
            elapsed: started.elapsed(),
        };
        log_report(&report, cfg.recover);
        Ok((cache, report))
    }

    /// Hands the slices out, index `i` at position `i`, for the shard threads.
    pub fn into_slices(self) -> Vec<GCacheSlice> {
        self.slices
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn slice_count(&self) -> u32 {
        self.slices.len() as u32
    }

    pub fn slices(&self) -> &[GCacheSlice] {
        &self.slices
    }

    pub fn slices_mut(&mut self) -> &mut [GCacheSlice] {
        &mut self.slices
    }

    pub fn history(&self) -> HistoryId {
        self.slices
            .first()
            .map(GCacheSlice::history)
            .unwrap_or_default()
    }

    fn owner(&self, seqno: Seqno) -> usize {
        slice_of(seqno, self.slice_count()) as usize
    }

    /// Appends to the slice that owns `seqno`.
    pub fn append(
        &mut self,
        seqno: Seqno,
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<(), GCacheError> {
        if seqno.0 < 0 {
            return Err(GCacheError::InvalidSeqno { seqno });
        }
        let owner = self.owner(seqno);
        self.slices[owner].append(seqno, kind, payload)
    }

    /// The record `seqno` from its slice (checksum and seqno verified).
    pub fn get(&self, seqno: Seqno) -> Result<Option<RecordRef<'_>>, GCacheError> {
        if seqno.0 < 0 {
            return Ok(None);
        }
        self.slices[self.owner(seqno)].get(seqno)
    }

    /// Records `from..=to` in seqno order across slices, for IST. Yields
    /// `Err(NotCached)` (and stops) at the first missing seqno.
    pub fn iter_range(&self, from: Seqno, to: Seqno) -> RangeIter<'_> {
        RangeIter {
            cache: self,
            next: from,
            to,
            done: false,
        }
    }

    /// The global contiguous range: lowest and highest seqno such that every seqno between them
    /// is cached, ending at the highest cached seqno.
    pub fn range(&self) -> Option<(Seqno, Seqno)> {
        let ranges: Vec<_> = self.slices.iter().map(GCacheSlice::range).collect();
        contiguous_range(&ranges)
    }

    /// `wsrep_local_cached_downto`: the lowest seqno from which IST can be served, or
    /// `Seqno::UNDEFINED` when nothing is cached.
    pub fn cached_downto(&self) -> Seqno {
        self.range().map_or(Seqno::UNDEFINED, |r| r.0)
    }

    pub fn release_upto(&mut self, seqno: Seqno) {
        self.slices.iter_mut().for_each(|s| s.release_upto(seqno));
    }

    pub fn lock_from(&mut self, seqno: Seqno) {
        self.slices.iter_mut().for_each(|s| s.lock_from(seqno));
    }

    pub fn unlock(&mut self) {
        self.slices.iter_mut().for_each(GCacheSlice::unlock);
    }

    /// Discards everything if `history` differs from the current one.
    pub fn set_history(&mut self, history: HistoryId) -> Result<(), GCacheError> {
        self.slices
            .iter_mut()
            .try_for_each(|s| s.set_history(history))
    }

    /// Discards everything and restarts in `history`.
    pub fn reset(&mut self, history: HistoryId) -> Result<(), GCacheError> {
        self.slices.iter_mut().try_for_each(|s| s.reset(history))
    }

    pub fn flush(&mut self) -> Result<(), GCacheError> {
        self.slices.iter_mut().try_for_each(GCacheSlice::flush)
    }

    /// Clean shutdown of every slice; the first error is returned after trying them all.
    pub fn close(self) -> Result<(), GCacheError> {
        let mut first = Ok(());
        for slice in self.slices {
            let r = slice.close();
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

/// Iterator of [`GCache::iter_range`].
pub struct RangeIter<'a> {
    cache: &'a GCache,
    next: Seqno,
    to: Seqno,
    done: bool,
}

impl<'a> Iterator for RangeIter<'a> {
    type Item = Result<RecordRef<'a>, GCacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next > self.to {
            return None;
        }
        let seqno = self.next;
        match self.cache.get(seqno) {
            Ok(Some(r)) => {
                self.next = seqno.next();
                Some(Ok(r))
            }
            Ok(None) => {
                self.done = true;
                Some(Err(GCacheError::NotCached { seqno }))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// The global contiguous range from each slice's `range()` (position = slice index): the
/// longest run of consecutive seqnos, all cached, that ends at the highest cached seqno.
/// The runtime uses this with ranges reported by the shard threads.
pub fn contiguous_range(slice_ranges: &[Option<(Seqno, Seqno)>]) -> Option<(Seqno, Seqno)> {
    let count = u32::try_from(slice_ranges.len()).ok().filter(|&n| n > 0)?;
    let top = slice_ranges.iter().flatten().map(|r| r.1).max()?;
    // For each slice, the highest seqno it owns at or below `top` that it does not hold
    // (above its run, or just below it); everything above the highest such hole is cached.
    let mut highest_hole = Seqno::UNDEFINED;
    for (index, range) in slice_ranges.iter().enumerate() {
        let st = Striping::new(index as u32, count);
        let last_owned = st.last_at_or_below(top);
        let hole = match (range, last_owned) {
            (_, None) => None,
            (Some((lo, hi)), Some(l)) if l <= *hi => st.prev(*lo),
            (_, Some(l)) => Some(l),
        };
        if let Some(h) = hole {
            highest_hole = highest_hole.max(h);
        }
    }
    Some((highest_hole.next(), top))
}

/// Decides what to do with the file as found.
fn inspect(file: &File, path: &Path, wanted: &Geometry) -> Result<FileOutcome, GCacheError> {
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    if len == 0 {
        return Ok(FileOutcome::Created);
    }
    let mut header = vec![0u8; len.min(FILE_HEADER_LEN) as usize];
    file.read_exact_at(&mut header, 0)
        .map_err(io_err("read the header of", path))?;
    let found = match decode_file_header(&header) {
        Ok(g) => g,
        Err(problem) => return Ok(FileOutcome::Reinitialised(ReinitReason::Header(problem))),
    };
    if found != *wanted {
        return Ok(FileOutcome::Reinitialised(ReinitReason::GeometryChanged {
            found,
            wanted: *wanted,
        }));
    }
    let expected = found.file_len().unwrap_or(0);
    if len != expected {
        return Ok(FileOutcome::Reinitialised(ReinitReason::LengthMismatch {
            len,
            expected,
        }));
    }
    Ok(FileOutcome::Reopened)
}

/// Sizes, preallocates and stamps the file. Runs before any mapping of it exists.
fn prepare_file(file: &File, path: &Path, g: &Geometry) -> Result<(), GCacheError> {
    let file_len = g.file_len().unwrap_or(0);
    let old_len = file.metadata().map_err(io_err("stat", path))?.len();
    // Invalidate the old header first: a crash during preparation leaves a file that is
    // reinitialised again at the next open, never one that looks valid with stale geometry.
    file.write_all_at(&[0u8; 8], 0)
        .map_err(io_err("write", path))?;
    file.set_len(file_len).map_err(io_err("resize", path))?;
    match map::preallocate(file, file_len).map_err(io_err("preallocate", path))? {
        Preallocated::Allocated => {}
        Preallocated::Unsupported if file_len > old_len => {
            // Write zeros so later stores through the mapping never need new blocks.
            let zeros = vec![0u8; 1 << 20];
            let mut at = old_len;
            while at < file_len {
                let n = (file_len - at).min(zeros.len() as u64) as usize;
                file.write_all_at(&zeros[..n], at)
                    .map_err(io_err("preallocate", path))?;
                at += n as u64;
            }
        }
        Preallocated::Unsupported => {}
    }
    file.write_all_at(&encode_file_header(g), 0)
        .map_err(io_err("write the header of", path))?;
    file.sync_all().map_err(io_err("fsync", path))
}

fn open_slice(
    index: u32,
    geometry: Geometry,
    path: &Path,
    region: Box<dyn Region>,
    cfg: &GCacheConfig,
    history: HistoryId,
    reuse: bool,
) -> Result<(GCacheSlice, SliceRecovery), GCacheError> {
    let parts = |region| SliceParts {
        index,
        geometry,
        path: path.to_path_buf(),
        region,
        page_store: Box::new(DirPageStore::new(&cfg.dir)),
        page_size_bytes: cfg.page_size_bytes,
    };
    let mut report = SliceRecovery {
        slice: index,
        start: SliceStart::NewFile,
        previous_clean: false,
        range: None,
        records: 0,
        bad_records: 0,
        discarded_records: 0,
    };
    if reuse {
        let scanned = if cfg.recover {
            Some(scan(region.bytes()))
        } else {
            None
        };
        match scanned.as_ref().map(|s| (&s.header, s)) {
            None => report.start = SliceStart::RecoveryNotRequested,
            Some((Err(problem), _)) => report.start = SliceStart::BadHeader(problem.clone()),
            Some((Ok(h), _)) if h.index != index || h.geometry != geometry => {
                report.start = SliceStart::BadHeader(HeaderProblem::BadField {
                    field: "index",
                    found: h.index.into(),
                });
            }
            Some((Ok(h), _)) if h.history != history => {
                report.previous_clean = h.clean_shutdown;
                report.start = SliceStart::OtherHistory { found: h.history };
            }
            Some((Ok(h), s)) => {
                report.start = SliceStart::Recovered;
                report.previous_clean = h.clean_shutdown;
                report.range = s.range();
                report.records = s.run.len() as u64;
                report.bad_records = s.bad_records;
                report.discarded_records = s.discarded_records;
                let slice = GCacheSlice::recovered(parts(region), *h, s)?;
                return Ok((slice, report));
            }
        }
    }
    let slice = GCacheSlice::fresh(parts(region), history)?;
    Ok((slice, report))
}

/// Deletes leftover page files (they are never read after a restart). Best effort.
fn remove_stale_pages(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(is_page_file_name) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) => log::warn!(
                    "GCache: cannot delete stale {}: {e}",
                    entry.path().display()
                ),
            }
        }
    }
    if removed > 0 {
        log::info!(
            "GCache: deleted {removed} stale page file(s) in {}",
            dir.display()
        );
    }
    removed
}

fn log_report(r: &RecoveryReport, recover: bool) {
    if !recover {
        log::info!(
            "GCache: {} opened empty (gcache.recover=no)",
            r.path.display()
        );
        return;
    }
    match r.range {
        Some((lo, hi)) => log::info!(
            "GCache: recovered seqnos {lo}..{hi} from {} ({} records kept, {} discarded, {} bad) in {:?}",
            r.path.display(),
            r.records,
            r.discarded_records,
            r.bad_records,
            r.elapsed
        ),
        None => log::info!("GCache: nothing to recover from {}", r.path.display()),
    }
    for s in &r.slices {
        if s.previous_clean && s.bad_records > 0 {
            log::warn!(
                "GCache: slice {} was closed cleanly but holds {} damaged record(s): \
                 the file was changed or the medium is failing",
                s.slice,
                s.bad_records
            );
        }
    }
}
