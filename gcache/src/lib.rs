//! Trireme's writeset cache (GCache): every ordered writeset and configuration change, by
//! seqno, so this node can serve incremental state transfer (IST) to a rejoining node.
//!
//! - One preallocated, mmap'd file (`gcache.dir`/`gcache.name`, default `galera.cache`, a name
//!   mariabackup SST keeps) of `gcache.size` bytes, cut into N equal **slices**, one per shard
//!   thread. Seqno `s` belongs to slice `(s / 64) % N` ([`slice_of`]). Each slice is an
//!   independent ring of checksummed records; when a ring has no room that may be overwritten,
//!   records overflow to page files (`gcache.page.NNNNNN`) that are deleted once released.
//! - [`GCache`] owns all slices (single-threaded use, tests, opening); [`GCache::into_slices`]
//!   gives each shard its [`GCacheSlice`] (`Send`, not `Sync`).
//! - Recovery after kill -9 is [`scan`], a pure function of a slice's bytes.
//!
//! The byte layout, media assumptions and crash analysis are in `FORMAT.md`; `format.rs`
//! mirrors it as constants. Module order, top-down: [`config`] -> `cache` (open, facade) ->
//! `slice` (ring, pages, index) -> [`scan`] (recovery) -> [`format`] (bytes) -> `region`
//! (backend trait) -> `map` (the only `unsafe`: mmap, fallocate, flock).
#![deny(unsafe_code)]

mod cache;
pub mod config;
mod error;
pub mod format;
mod map;
mod region;
pub mod scan;
mod slice;
mod stripe;

pub use cache::{
    contiguous_range, FileOutcome, GCache, RangeIter, RecoveryReport, ReinitReason, SliceRecovery,
    SliceStart,
};
pub use config::GCacheConfig;
pub use error::{GCacheError, RecordLocation};
pub use format::{Corruption, RecordKind, STRIPE_LEN};
pub use region::page_file_name;
pub use scan::{scan, ScanResult, ScannedRecord};
pub use slice::{GCacheSlice, Record, RecordRef, SliceStats};
pub use stripe::slice_of;
