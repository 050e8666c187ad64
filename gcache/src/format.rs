//! The on-disk format of `FORMAT.md`, as derived constants and pure encode/decode functions.
//!
//! Every offset is derived from the previous field's offset and width, and `const` assertions
//! pin the totals the spec draws, so editing a field without updating the spec fails to compile.
//! Only little-endian fixed-width integers are written. Decoding treats bytes as untrusted:
//! every length is checked before it is used, and failures are structured values
//! ([`Corruption`], [`HeaderProblem`]), never panics.

use trireme_types::{HistoryId, Seqno, Uuid};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Format version written by this code. See `FORMAT.md` §9.
pub const FORMAT_VERSION: u32 = 1;

/// Records start at multiples of this and are zero-padded to it.
pub const RECORD_ALIGN: u64 = 8;

/// Seqnos are striped over slices in runs of this many.
pub const STRIPE_LEN: u32 = 64;

/// Largest number of slices a file may have.
pub const MAX_SLICES: u32 = 256;

/// The smallest ring a slice may have.
pub const MIN_RING_LEN: u64 = 4096;

/// Slices (and page files) are sized in multiples of this, so mappings start page-aligned.
pub const LAYOUT_GRANULE: u64 = 4096;

// ---------------------------------------------------------------------------------------------
// File header (FORMAT.md §3)

pub const FILE_MAGIC: [u8; 8] = *b"\x89TRGC\r\n\x1a";
pub const FILE_HEADER_LEN: u64 = 4096;

pub const FH_MAGIC_OFFSET: usize = 0;
pub const FH_VERSION_OFFSET: usize = FH_MAGIC_OFFSET + FILE_MAGIC.len();
pub const FH_HEADER_LEN_OFFSET: usize = FH_VERSION_OFFSET + 4;
pub const FH_SLICE_COUNT_OFFSET: usize = FH_HEADER_LEN_OFFSET + 4;
pub const FH_STRIPE_OFFSET: usize = FH_SLICE_COUNT_OFFSET + 4;
pub const FH_SLICE_LEN_OFFSET: usize = FH_STRIPE_OFFSET + 4;
pub const FH_ALIGN_OFFSET: usize = FH_SLICE_LEN_OFFSET + 8;
pub const FH_RESERVED_OFFSET: usize = FH_ALIGN_OFFSET + 4;
pub const FH_FILE_LEN_OFFSET: usize = FH_RESERVED_OFFSET + 4;
pub const FH_CHECKSUM_OFFSET: usize = FH_FILE_LEN_OFFSET + 8;
pub const FH_END: usize = FH_CHECKSUM_OFFSET + 8;

const _: () = assert!(FH_VERSION_OFFSET == 8);
const _: () = assert!(FH_SLICE_LEN_OFFSET == 24);
const _: () = assert!(FH_FILE_LEN_OFFSET == 40);
const _: () = assert!(FH_CHECKSUM_OFFSET == 48);
const _: () = assert!(FH_END == 56);
const _: () = assert!(FH_END as u64 <= FILE_HEADER_LEN);
const _: () = assert!(FILE_HEADER_LEN.is_multiple_of(LAYOUT_GRANULE));

// ---------------------------------------------------------------------------------------------
// Slice header (FORMAT.md §4)

pub const SLICE_MAGIC: [u8; 8] = *b"\x89TRSL\r\n\x1a";
pub const SLICE_HEADER_LEN: u64 = 4096;

pub const SH_MAGIC_OFFSET: usize = 0;
pub const SH_INDEX_OFFSET: usize = SH_MAGIC_OFFSET + SLICE_MAGIC.len();
pub const SH_FLAGS_OFFSET: usize = SH_INDEX_OFFSET + 4;
pub const SH_HISTORY_OFFSET: usize = SH_FLAGS_OFFSET + 4;
pub const SH_GENERATION_OFFSET: usize = SH_HISTORY_OFFSET + 16;
pub const SH_SLICE_LEN_OFFSET: usize = SH_GENERATION_OFFSET + 8;
pub const SH_SLICE_COUNT_OFFSET: usize = SH_SLICE_LEN_OFFSET + 8;
pub const SH_STRIPE_OFFSET: usize = SH_SLICE_COUNT_OFFSET + 4;
pub const SH_CHECKSUM_OFFSET: usize = SH_STRIPE_OFFSET + 4;
pub const SH_END: usize = SH_CHECKSUM_OFFSET + 8;

/// `flags` bit: the slice was msync'd whole and closed cleanly.
pub const FLAG_CLEAN_SHUTDOWN: u32 = 1;

const _: () = assert!(SH_HISTORY_OFFSET == 16);
const _: () = assert!(SH_GENERATION_OFFSET == 32);
const _: () = assert!(SH_SLICE_LEN_OFFSET == 40);
const _: () = assert!(SH_CHECKSUM_OFFSET == 56);
const _: () = assert!(SH_END == 64);
const _: () = assert!(SH_END as u64 <= SLICE_HEADER_LEN);
const _: () = assert!(SLICE_HEADER_LEN.is_multiple_of(LAYOUT_GRANULE));

// ---------------------------------------------------------------------------------------------
// Record header (FORMAT.md §5)

pub const RECORD_MAGIC: [u8; 4] = *b"TRrc";

pub const RH_MAGIC_OFFSET: usize = 0;
pub const RH_KIND_OFFSET: usize = RH_MAGIC_OFFSET + RECORD_MAGIC.len();
pub const RH_FLAGS_OFFSET: usize = RH_KIND_OFFSET + 1;
pub const RH_RESERVED16_OFFSET: usize = RH_FLAGS_OFFSET + 1;
pub const RH_LEN_OFFSET: usize = RH_RESERVED16_OFFSET + 2;
pub const RH_RESERVED32_OFFSET: usize = RH_LEN_OFFSET + 4;
pub const RH_SEQNO_OFFSET: usize = RH_RESERVED32_OFFSET + 4;
pub const RH_GENERATION_OFFSET: usize = RH_SEQNO_OFFSET + 8;
pub const RH_CHECKSUM_OFFSET: usize = RH_GENERATION_OFFSET + 8;
pub const RECORD_HEADER_LEN: usize = RH_CHECKSUM_OFFSET + 8;

const _: () = assert!(RH_LEN_OFFSET == 8);
const _: () = assert!(RH_SEQNO_OFFSET == 16);
const _: () = assert!(RH_CHECKSUM_OFFSET == 32);
const _: () = assert!(RECORD_HEADER_LEN == 40);
const _: () = assert!((RECORD_HEADER_LEN as u64).is_multiple_of(RECORD_ALIGN));
// The checksum is one aligned 8-byte field.
const _: () = assert!((RH_CHECKSUM_OFFSET as u64).is_multiple_of(RECORD_ALIGN));

// ---------------------------------------------------------------------------------------------
// Wrap marker (FORMAT.md §6)

pub const WRAP_MAGIC: [u8; 4] = *b"TRwp";
pub const WM_MAGIC_OFFSET: usize = 0;
pub const WM_RESERVED_OFFSET: usize = WM_MAGIC_OFFSET + WRAP_MAGIC.len();
pub const WM_GENERATION_OFFSET: usize = WM_RESERVED_OFFSET + 4;
pub const WM_CHECKSUM_OFFSET: usize = WM_GENERATION_OFFSET + 8;
pub const WRAP_MARKER_LEN: usize = WM_CHECKSUM_OFFSET + 8;

const _: () = assert!(WRAP_MARKER_LEN == 24);
const _: () = assert!((WRAP_MARKER_LEN as u64).is_multiple_of(RECORD_ALIGN));
const _: () = assert!(WRAP_MARKER_LEN <= RECORD_HEADER_LEN);

// The ring must hold at least one header; slices are whole granules.
const _: () = assert!(MIN_RING_LEN >= RECORD_HEADER_LEN as u64);
const _: () = assert!(MIN_RING_LEN.is_multiple_of(LAYOUT_GRANULE));

// ---------------------------------------------------------------------------------------------
// Little-endian helpers. Callers pass in-bounds offsets of constant fields.

fn get_u16(b: &[u8], at: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(a)
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}
fn get_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(a)
}
fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

/// Rounds `n` up to a multiple of `to` (a power of two), or `None` on overflow.
pub fn round_up(n: u64, to: u64) -> Option<u64> {
    debug_assert!(to.is_power_of_two());
    Some(n.checked_add(to - 1)? & !(to - 1))
}

/// Bytes a record with `payload_len` bytes of payload takes, header and padding included.
pub fn record_len(payload_len: u32) -> u64 {
    // Cannot overflow: 40 + u32::MAX + 7 < u64::MAX.
    (RECORD_HEADER_LEN as u64 + u64::from(payload_len) + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

// ---------------------------------------------------------------------------------------------
// Geometry and the file header

/// How a file is cut into slices. Validated: `slice_count` in 1..=MAX_SLICES, `slice_len` a
/// whole number of granules holding a slice header and at least [`MIN_RING_LEN`] of ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub slice_count: u32,
    pub stripe_len: u32,
    pub slice_len: u64,
}

impl Geometry {
    /// The geometry a file of at most `size_bytes` with `slice_count` slices gets, or `None`
    /// if that leaves a slice too small.
    pub fn for_size(size_bytes: u64, slice_count: u32) -> Option<Geometry> {
        if slice_count == 0 || slice_count > MAX_SLICES {
            return None;
        }
        let per_slice = size_bytes.checked_sub(FILE_HEADER_LEN)? / u64::from(slice_count);
        let slice_len = per_slice & !(LAYOUT_GRANULE - 1);
        let g = Geometry {
            slice_count,
            stripe_len: STRIPE_LEN,
            slice_len,
        };
        g.is_valid().then_some(g)
    }

    /// The smallest `gcache.size` that gives `slice_count` slices.
    pub fn min_size_bytes(slice_count: u32) -> u64 {
        FILE_HEADER_LEN + u64::from(slice_count) * (SLICE_HEADER_LEN + MIN_RING_LEN)
    }

    pub fn is_valid(&self) -> bool {
        self.slice_count >= 1
            && self.slice_count <= MAX_SLICES
            && self.stripe_len == STRIPE_LEN
            && self.slice_len.is_multiple_of(LAYOUT_GRANULE)
            && self.slice_len >= SLICE_HEADER_LEN + MIN_RING_LEN
            && self.file_len().is_some()
    }

    pub fn ring_len(&self) -> u64 {
        self.slice_len - SLICE_HEADER_LEN
    }

    pub fn file_len(&self) -> Option<u64> {
        self.slice_len
            .checked_mul(u64::from(self.slice_count))?
            .checked_add(FILE_HEADER_LEN)
    }

    pub fn slice_offset(&self, index: u32) -> u64 {
        FILE_HEADER_LEN + u64::from(index) * self.slice_len
    }
}

/// Why a file header was not accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderProblem {
    /// Fewer bytes than a header.
    Short {
        len: u64,
    },
    /// Galera's own `galera.cache` (text preamble `Version: ...`).
    GaleraFormat,
    /// Some other magic.
    ForeignMagic {
        found: [u8; 8],
    },
    UnsupportedVersion {
        found: u32,
    },
    ChecksumMismatch {
        stored: u64,
        computed: u64,
    },
    /// A field that must hold a fixed value does not.
    BadField {
        field: &'static str,
        found: u64,
    },
    /// Geometry fields that cannot describe a file.
    BadGeometry {
        slice_count: u32,
        stripe_len: u32,
        slice_len: u64,
    },
}

impl std::fmt::Display for HeaderProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HeaderProblem::Short { len } => write!(f, "only {len} bytes, shorter than a header"),
            HeaderProblem::GaleraFormat => write!(f, "it is in Galera's own gcache format"),
            HeaderProblem::ForeignMagic { found } => {
                write!(f, "unrecognised magic {found:02x?}")
            }
            HeaderProblem::UnsupportedVersion { found } => {
                write!(f, "format version {found}, this build writes {FORMAT_VERSION}")
            }
            HeaderProblem::ChecksumMismatch { stored, computed } => write!(
                f,
                "header checksum mismatch (stored {stored:#018x}, computed {computed:#018x})"
            ),
            HeaderProblem::BadField { field, found } => {
                write!(f, "header field {field} holds unexpected value {found}")
            }
            HeaderProblem::BadGeometry { slice_count, stripe_len, slice_len } => write!(
                f,
                "impossible geometry: {slice_count} slices of {slice_len} bytes, stripe {stripe_len}"
            ),
        }
    }
}

pub fn encode_file_header(g: &Geometry) -> [u8; FH_END] {
    let mut b = [0u8; FH_END];
    put(&mut b, FH_MAGIC_OFFSET, &FILE_MAGIC);
    put(&mut b, FH_VERSION_OFFSET, &FORMAT_VERSION.to_le_bytes());
    put(
        &mut b,
        FH_HEADER_LEN_OFFSET,
        &(FILE_HEADER_LEN as u32).to_le_bytes(),
    );
    put(&mut b, FH_SLICE_COUNT_OFFSET, &g.slice_count.to_le_bytes());
    put(&mut b, FH_STRIPE_OFFSET, &g.stripe_len.to_le_bytes());
    put(&mut b, FH_SLICE_LEN_OFFSET, &g.slice_len.to_le_bytes());
    put(
        &mut b,
        FH_ALIGN_OFFSET,
        &(RECORD_ALIGN as u32).to_le_bytes(),
    );
    put(&mut b, FH_RESERVED_OFFSET, &0u32.to_le_bytes());
    put(
        &mut b,
        FH_FILE_LEN_OFFSET,
        &g.file_len().unwrap_or(0).to_le_bytes(),
    );
    let sum = xxh3_64(&b[..FH_CHECKSUM_OFFSET]);
    put(&mut b, FH_CHECKSUM_OFFSET, &sum.to_le_bytes());
    b
}

/// Decodes and validates a file header from the first bytes of a file.
pub fn decode_file_header(b: &[u8]) -> Result<Geometry, HeaderProblem> {
    if b.len() < FH_END {
        if b.starts_with(b"Version:") {
            return Err(HeaderProblem::GaleraFormat);
        }
        return Err(HeaderProblem::Short {
            len: b.len() as u64,
        });
    }
    if b[..FILE_MAGIC.len()] != FILE_MAGIC {
        if b.starts_with(b"Version:") {
            return Err(HeaderProblem::GaleraFormat);
        }
        let mut found = [0u8; 8];
        found.copy_from_slice(&b[..8]);
        return Err(HeaderProblem::ForeignMagic { found });
    }
    let stored = get_u64(b, FH_CHECKSUM_OFFSET);
    let computed = xxh3_64(&b[..FH_CHECKSUM_OFFSET]);
    if stored != computed {
        return Err(HeaderProblem::ChecksumMismatch { stored, computed });
    }
    let version = get_u32(b, FH_VERSION_OFFSET);
    if version != FORMAT_VERSION {
        return Err(HeaderProblem::UnsupportedVersion { found: version });
    }
    let header_len = get_u32(b, FH_HEADER_LEN_OFFSET);
    if u64::from(header_len) != FILE_HEADER_LEN {
        return Err(HeaderProblem::BadField {
            field: "hdr_len",
            found: header_len.into(),
        });
    }
    let align = get_u32(b, FH_ALIGN_OFFSET);
    if u64::from(align) != RECORD_ALIGN {
        return Err(HeaderProblem::BadField {
            field: "align",
            found: align.into(),
        });
    }
    let g = Geometry {
        slice_count: get_u32(b, FH_SLICE_COUNT_OFFSET),
        stripe_len: get_u32(b, FH_STRIPE_OFFSET),
        slice_len: get_u64(b, FH_SLICE_LEN_OFFSET),
    };
    if !g.is_valid() {
        return Err(HeaderProblem::BadGeometry {
            slice_count: g.slice_count,
            stripe_len: g.stripe_len,
            slice_len: g.slice_len,
        });
    }
    let file_len = get_u64(b, FH_FILE_LEN_OFFSET);
    if Some(file_len) != g.file_len() {
        return Err(HeaderProblem::BadField {
            field: "file_len",
            found: file_len,
        });
    }
    Ok(g)
}

// ---------------------------------------------------------------------------------------------
// Slice header

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SliceHeader {
    pub index: u32,
    pub clean_shutdown: bool,
    pub history: HistoryId,
    pub generation: u64,
    pub geometry: Geometry,
}

pub fn encode_slice_header(h: &SliceHeader) -> [u8; SH_END] {
    let mut b = [0u8; SH_END];
    let flags = if h.clean_shutdown {
        FLAG_CLEAN_SHUTDOWN
    } else {
        0
    };
    put(&mut b, SH_MAGIC_OFFSET, &SLICE_MAGIC);
    put(&mut b, SH_INDEX_OFFSET, &h.index.to_le_bytes());
    put(&mut b, SH_FLAGS_OFFSET, &flags.to_le_bytes());
    put(&mut b, SH_HISTORY_OFFSET, h.history.as_bytes());
    put(&mut b, SH_GENERATION_OFFSET, &h.generation.to_le_bytes());
    put(
        &mut b,
        SH_SLICE_LEN_OFFSET,
        &h.geometry.slice_len.to_le_bytes(),
    );
    put(
        &mut b,
        SH_SLICE_COUNT_OFFSET,
        &h.geometry.slice_count.to_le_bytes(),
    );
    put(
        &mut b,
        SH_STRIPE_OFFSET,
        &h.geometry.stripe_len.to_le_bytes(),
    );
    let sum = xxh3_64(&b[..SH_CHECKSUM_OFFSET]);
    put(&mut b, SH_CHECKSUM_OFFSET, &sum.to_le_bytes());
    b
}

pub fn decode_slice_header(b: &[u8]) -> Result<SliceHeader, HeaderProblem> {
    if b.len() < SH_END {
        return Err(HeaderProblem::Short {
            len: b.len() as u64,
        });
    }
    if b[..SLICE_MAGIC.len()] != SLICE_MAGIC {
        let mut found = [0u8; 8];
        found.copy_from_slice(&b[..8]);
        return Err(HeaderProblem::ForeignMagic { found });
    }
    let stored = get_u64(b, SH_CHECKSUM_OFFSET);
    let computed = xxh3_64(&b[..SH_CHECKSUM_OFFSET]);
    if stored != computed {
        return Err(HeaderProblem::ChecksumMismatch { stored, computed });
    }
    let flags = get_u32(b, SH_FLAGS_OFFSET);
    if flags & !FLAG_CLEAN_SHUTDOWN != 0 {
        return Err(HeaderProblem::BadField {
            field: "flags",
            found: flags.into(),
        });
    }
    let generation = get_u64(b, SH_GENERATION_OFFSET);
    if generation == 0 {
        return Err(HeaderProblem::BadField {
            field: "generation",
            found: 0,
        });
    }
    let geometry = Geometry {
        slice_count: get_u32(b, SH_SLICE_COUNT_OFFSET),
        stripe_len: get_u32(b, SH_STRIPE_OFFSET),
        slice_len: get_u64(b, SH_SLICE_LEN_OFFSET),
    };
    if !geometry.is_valid() {
        return Err(HeaderProblem::BadGeometry {
            slice_count: geometry.slice_count,
            stripe_len: geometry.stripe_len,
            slice_len: geometry.slice_len,
        });
    }
    let index = get_u32(b, SH_INDEX_OFFSET);
    if index >= geometry.slice_count {
        return Err(HeaderProblem::BadField {
            field: "index",
            found: index.into(),
        });
    }
    let mut history = [0u8; 16];
    history.copy_from_slice(&b[SH_HISTORY_OFFSET..SH_HISTORY_OFFSET + 16]);
    Ok(SliceHeader {
        index,
        clean_shutdown: flags & FLAG_CLEAN_SHUTDOWN != 0,
        history: HistoryId(Uuid(history)),
        generation,
        geometry,
    })
}

// ---------------------------------------------------------------------------------------------
// Records

/// What a record holds. Stored as one byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// An ordered writeset.
    Writeset,
    /// A configuration change (view), ordered like writesets in Galera 4.
    ConfigurationChange,
    /// Anything else the replicator orders (e.g. a commit cut).
    Other,
}

impl RecordKind {
    pub fn to_byte(self) -> u8 {
        match self {
            RecordKind::Writeset => 1,
            RecordKind::ConfigurationChange => 2,
            RecordKind::Other => 3,
        }
    }

    pub fn from_byte(b: u8) -> Option<RecordKind> {
        match b {
            1 => Some(RecordKind::Writeset),
            2 => Some(RecordKind::ConfigurationChange),
            3 => Some(RecordKind::Other),
            _ => None,
        }
    }
}

/// Why bytes at a record position are not the record expected there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// Fewer bytes left than a record header.
    Truncated {
        room: u64,
    },
    BadMagic {
        found: [u8; 4],
    },
    GenerationMismatch {
        expected: u64,
        found: u64,
    },
    UnknownKind {
        found: u8,
    },
    NonZeroReserved,
    NegativeSeqno {
        found: i64,
    },
    /// The payload length runs past the end of the ring or page.
    LengthOutOfBounds {
        payload_len: u32,
        room: u64,
    },
    ChecksumMismatch {
        stored: u64,
        computed: u64,
    },
    /// A valid record, but not the seqno the index points at.
    SeqnoMismatch {
        expected: i64,
        found: i64,
    },
}

impl std::fmt::Display for Corruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Corruption::Truncated { room } => write!(f, "only {room} bytes left for a header"),
            Corruption::BadMagic { found } => write!(f, "bad record magic {found:02x?}"),
            Corruption::GenerationMismatch { expected, found } => {
                write!(f, "generation {found:#018x}, slice has {expected:#018x}")
            }
            Corruption::UnknownKind { found } => write!(f, "unknown record kind {found}"),
            Corruption::NonZeroReserved => write!(f, "reserved header bytes are not zero"),
            Corruption::NegativeSeqno { found } => write!(f, "negative seqno {found}"),
            Corruption::LengthOutOfBounds { payload_len, room } => {
                write!(
                    f,
                    "payload length {payload_len} exceeds the {room} bytes left"
                )
            }
            Corruption::ChecksumMismatch { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#018x}, computed {computed:#018x})"
            ),
            Corruption::SeqnoMismatch { expected, found } => {
                write!(f, "record holds seqno {found}, index expected {expected}")
            }
        }
    }
}

/// A record that passed every check of `FORMAT.md` §5.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    pub seqno: Seqno,
    pub kind: RecordKind,
    pub payload: &'a [u8],
    /// Bytes the record takes, padding included.
    pub len: u64,
}

fn record_checksum(header_prefix: &[u8], payload: &[u8]) -> u64 {
    xxh3_64_with_seed(payload, xxh3_64(header_prefix))
}

/// Does `b` start with our record magic and the given generation? The scanner's cheap filter:
/// anything that passes and then fails [`decode_record`] counts as a bad record.
pub fn looks_like_record(b: &[u8], generation: u64) -> bool {
    b.len() >= RECORD_HEADER_LEN
        && b[..4] == RECORD_MAGIC
        && get_u64(b, RH_GENERATION_OFFSET) == generation
}

/// Decodes the record at the start of `b` (which extends to the end of the ring or page).
pub fn decode_record(b: &[u8], generation: u64) -> Result<DecodedRecord<'_>, Corruption> {
    if b.len() < RECORD_HEADER_LEN {
        return Err(Corruption::Truncated {
            room: b.len() as u64,
        });
    }
    if b[..4] != RECORD_MAGIC {
        let mut found = [0u8; 4];
        found.copy_from_slice(&b[..4]);
        return Err(Corruption::BadMagic { found });
    }
    let found_gen = get_u64(b, RH_GENERATION_OFFSET);
    if found_gen != generation {
        return Err(Corruption::GenerationMismatch {
            expected: generation,
            found: found_gen,
        });
    }
    let payload_len = get_u32(b, RH_LEN_OFFSET);
    let len = record_len(payload_len);
    // Rings and pages are whole multiples of the alignment, so a record whose padded length
    // fits is exactly one whose payload fits.
    let room = (b.len() - RECORD_HEADER_LEN) as u64;
    if u64::from(payload_len) > room || len > b.len() as u64 {
        return Err(Corruption::LengthOutOfBounds { payload_len, room });
    }
    let payload = &b[RECORD_HEADER_LEN..RECORD_HEADER_LEN + payload_len as usize];
    let stored = get_u64(b, RH_CHECKSUM_OFFSET);
    let computed = record_checksum(&b[..RH_CHECKSUM_OFFSET], payload);
    if stored != computed {
        return Err(Corruption::ChecksumMismatch { stored, computed });
    }
    // Checked after the checksum so that a torn record reports the tear, not a field.
    let kind = b[RH_KIND_OFFSET];
    let kind = RecordKind::from_byte(kind).ok_or(Corruption::UnknownKind { found: kind })?;
    if b[RH_FLAGS_OFFSET] != 0
        || get_u16(b, RH_RESERVED16_OFFSET) != 0
        || get_u32(b, RH_RESERVED32_OFFSET) != 0
    {
        return Err(Corruption::NonZeroReserved);
    }
    let seqno = get_i64(b, RH_SEQNO_OFFSET);
    if seqno < 0 {
        return Err(Corruption::NegativeSeqno { found: seqno });
    }
    Ok(DecodedRecord {
        seqno: Seqno(seqno),
        kind,
        payload,
        len,
    })
}

/// Writes a record into `dst`, which must be exactly `record_len(payload.len())` bytes.
/// Payload and padding first, header and checksum last (FORMAT.md §8 does not rely on the order).
pub fn encode_record(
    dst: &mut [u8],
    seqno: Seqno,
    kind: RecordKind,
    generation: u64,
    payload: &[u8],
) {
    let payload_len = payload.len() as u32;
    debug_assert_eq!(payload.len(), payload_len as usize);
    debug_assert_eq!(dst.len() as u64, record_len(payload_len));
    let end = RECORD_HEADER_LEN + payload.len();
    dst[RECORD_HEADER_LEN..end].copy_from_slice(payload);
    dst[end..].fill(0);
    let mut h = [0u8; RECORD_HEADER_LEN];
    put(&mut h, RH_MAGIC_OFFSET, &RECORD_MAGIC);
    h[RH_KIND_OFFSET] = kind.to_byte();
    h[RH_FLAGS_OFFSET] = 0;
    put(&mut h, RH_RESERVED16_OFFSET, &0u16.to_le_bytes());
    put(&mut h, RH_LEN_OFFSET, &payload_len.to_le_bytes());
    put(&mut h, RH_RESERVED32_OFFSET, &0u32.to_le_bytes());
    put(&mut h, RH_SEQNO_OFFSET, &seqno.0.to_le_bytes());
    put(&mut h, RH_GENERATION_OFFSET, &generation.to_le_bytes());
    let sum = record_checksum(&h[..RH_CHECKSUM_OFFSET], payload);
    put(&mut h, RH_CHECKSUM_OFFSET, &sum.to_le_bytes());
    dst[..RH_CHECKSUM_OFFSET].copy_from_slice(&h[..RH_CHECKSUM_OFFSET]);
    dst[RH_CHECKSUM_OFFSET..RECORD_HEADER_LEN].copy_from_slice(&h[RH_CHECKSUM_OFFSET..]);
}

pub fn encode_wrap_marker(generation: u64) -> [u8; WRAP_MARKER_LEN] {
    let mut b = [0u8; WRAP_MARKER_LEN];
    put(&mut b, WM_MAGIC_OFFSET, &WRAP_MAGIC);
    put(&mut b, WM_RESERVED_OFFSET, &0u32.to_le_bytes());
    put(&mut b, WM_GENERATION_OFFSET, &generation.to_le_bytes());
    let sum = xxh3_64(&b[..WM_CHECKSUM_OFFSET]);
    put(&mut b, WM_CHECKSUM_OFFSET, &sum.to_le_bytes());
    b
}

/// What the bytes at a wrap-marker position are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapProbe {
    Valid,
    /// Our magic and generation, but torn.
    Torn,
    NotAMarker,
}

pub fn probe_wrap_marker(b: &[u8], generation: u64) -> WrapProbe {
    if b.len() < WRAP_MARKER_LEN
        || b[..4] != WRAP_MAGIC
        || get_u64(b, WM_GENERATION_OFFSET) != generation
    {
        return WrapProbe::NotAMarker;
    }
    let ok = get_u32(b, WM_RESERVED_OFFSET) == 0
        && get_u64(b, WM_CHECKSUM_OFFSET) == xxh3_64(&b[..WM_CHECKSUM_OFFSET]);
    if ok {
        WrapProbe::Valid
    } else {
        WrapProbe::Torn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry::for_size(4096 + 2 * 16384, 2).unwrap()
    }

    #[test]
    fn file_header_round_trips_and_pins_its_bytes() {
        let g = geometry();
        let b = encode_file_header(&g);
        assert_eq!(&b[..8], b"\x89TRGC\r\n\x1a");
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(decode_file_header(&b), Ok(g));
    }

    #[test]
    fn file_header_with_any_flipped_byte_is_rejected() {
        let b = encode_file_header(&geometry());
        for i in 0..b.len() {
            let mut c = b;
            c[i] ^= 0x40;
            assert!(decode_file_header(&c).is_err(), "byte {i}");
        }
    }

    #[test]
    fn galera_preamble_is_recognised_as_galera() {
        let mut b = b"Version: 2\nGID: 8d1e2c1a-0000-0000-0000-000000000000\n".to_vec();
        b.resize(4096, 0);
        assert_eq!(decode_file_header(&b), Err(HeaderProblem::GaleraFormat));
    }

    #[test]
    fn slice_header_round_trips_and_rejects_flipped_bytes() {
        let h = SliceHeader {
            index: 1,
            clean_shutdown: true,
            history: HistoryId(Uuid([7; 16])),
            generation: 0x1234_5678_9abc_def0,
            geometry: geometry(),
        };
        let b = encode_slice_header(&h);
        assert_eq!(decode_slice_header(&b), Ok(h));
        for i in 0..b.len() {
            let mut c = b;
            c[i] ^= 0x01;
            assert!(decode_slice_header(&c).is_err(), "byte {i}");
        }
    }

    #[test]
    fn record_round_trips_with_padding_to_alignment() {
        for len in [0usize, 1, 7, 8, 9, 200] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let rl = record_len(len as u32) as usize;
            assert_eq!(rl % 8, 0);
            let mut buf = vec![0xAAu8; rl];
            encode_record(
                &mut buf,
                Seqno(42),
                RecordKind::ConfigurationChange,
                9,
                &payload,
            );
            let r = decode_record(&buf, 9).unwrap();
            assert_eq!(r.seqno, Seqno(42));
            assert_eq!(r.kind, RecordKind::ConfigurationChange);
            assert_eq!(r.payload, &payload[..]);
            assert_eq!(r.len, rl as u64);
            assert_eq!(
                decode_record(&buf, 10),
                Err(Corruption::GenerationMismatch {
                    expected: 10,
                    found: 9
                })
            );
        }
    }

    #[test]
    fn record_with_any_flipped_covered_byte_is_rejected() {
        let payload = b"hello, world";
        let rl = record_len(payload.len() as u32) as usize;
        let mut buf = vec![0u8; rl];
        encode_record(&mut buf, Seqno(7), RecordKind::Writeset, 3, payload);
        for i in 0..RECORD_HEADER_LEN + payload.len() {
            let mut c = buf.clone();
            c[i] ^= 0x80;
            assert!(decode_record(&c, 3).is_err(), "byte {i}");
        }
    }

    #[test]
    fn record_length_past_the_end_is_an_error_not_a_panic() {
        let mut buf = vec![0u8; 64];
        encode_record(&mut buf[..48], Seqno(1), RecordKind::Other, 5, b"12345678");
        buf[RH_LEN_OFFSET..RH_LEN_OFFSET + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_record(&buf, 5),
            Err(Corruption::LengthOutOfBounds { .. })
        ));
    }

    #[test]
    fn wrap_marker_validates_and_detects_tears() {
        let m = encode_wrap_marker(77);
        assert_eq!(probe_wrap_marker(&m, 77), WrapProbe::Valid);
        assert_eq!(probe_wrap_marker(&m, 78), WrapProbe::NotAMarker);
        let mut t = m;
        t[20] ^= 1;
        assert_eq!(probe_wrap_marker(&t, 77), WrapProbe::Torn);
    }

    #[test]
    fn geometry_rounds_slices_down_to_granules_and_rejects_tiny_sizes() {
        let g = Geometry::for_size(1_000_000, 3).unwrap();
        assert_eq!(g.slice_len % 4096, 0);
        assert!(g.file_len().unwrap() <= 1_000_000);
        assert!(Geometry::for_size(Geometry::min_size_bytes(2) - 1, 2).is_none());
        assert!(Geometry::for_size(Geometry::min_size_bytes(2), 2).is_some());
        assert!(Geometry::for_size(1 << 30, 0).is_none());
        assert!(Geometry::for_size(1 << 30, MAX_SLICES + 1).is_none());
    }
}
