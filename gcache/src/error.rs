//! The crate's error type: one variant per situation a caller may branch on.

use crate::format::Corruption;
use std::fmt;
use std::io;
use std::path::PathBuf;
use trireme_types::Seqno;

/// Where a record lives, for error messages and logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordLocation {
    /// Offset from the start of slice `slice`'s ring.
    Ring { slice: u32, offset: u64 },
    /// Offset inside an overflow page file.
    Page {
        slice: u32,
        path: PathBuf,
        offset: u64,
    },
}

impl fmt::Display for RecordLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordLocation::Ring { slice, offset } => {
                write!(f, "slice {slice} ring offset {offset}")
            }
            RecordLocation::Page {
                slice,
                path,
                offset,
            } => {
                write!(f, "slice {slice} page {} offset {offset}", path.display())
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GCacheError {
    /// A configuration value that cannot work; names the provider option.
    #[error("invalid {option} = {value}: {reason}")]
    InvalidConfig {
        option: &'static str,
        value: String,
        reason: String,
    },

    /// An I/O call failed. In a slice, this latches: later writes return [`GCacheError::PreviousIo`].
    #[error("gcache: {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Another process (or another open in this one) holds the cache file's lock.
    #[error("gcache file {} is locked by another process using the same gcache", path.display())]
    Locked { path: PathBuf },

    /// An earlier I/O failure (e.g. msync) latched; the slice refuses writes, as redb does,
    /// rather than retrying a sync whose failure may have dropped dirty pages.
    #[error("gcache slice {slice} refuses writes after an earlier I/O failure ({op}: {kind})")]
    PreviousIo {
        slice: u32,
        op: &'static str,
        kind: io::ErrorKind,
    },

    /// Appends must be in increasing seqno order within a slice.
    #[error("gcache slice {slice}: seqno {seqno} is not above the last appended seqno {last}")]
    SeqnoNotIncreasing {
        slice: u32,
        seqno: Seqno,
        last: Seqno,
    },

    /// A seqno below zero (undefined) cannot be cached.
    #[error("gcache: seqno {seqno} is not a position in the total order")]
    InvalidSeqno { seqno: Seqno },

    /// The seqno belongs to another slice (`slice_of(seqno, slice_count)`).
    #[error("gcache: seqno {seqno} belongs to slice {owner}, not slice {slice}")]
    WrongSlice {
        seqno: Seqno,
        slice: u32,
        owner: u32,
    },

    #[error("gcache: a {len}-byte record exceeds the {max}-byte limit")]
    RecordTooLarge { len: u64, max: u64 },

    /// The bytes where the index says a record is are not that record. Never returned as data.
    #[error("gcache: record {seqno} at {location} is corrupt: {reason}")]
    CorruptRecord {
        seqno: Seqno,
        location: RecordLocation,
        reason: Corruption,
    },

    /// A range read met a seqno that is not cached.
    #[error("gcache: seqno {seqno} is not cached")]
    NotCached { seqno: Seqno },
}
