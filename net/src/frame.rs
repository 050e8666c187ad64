//! Frames: the byte layout of `FORMAT.md`, the encoder and the streaming decoder.
//!
//! Owns: the header constants (derived offsets, checked at compile time), [`encode_frame`],
//! [`FrameDecoder`] and its errors. Pure: no sockets, no clocks.
//!
//! Invariants:
//! - every byte from the network is untrusted: the decoder validates the header before it
//!   allocates anything, bounds the allocation by `max_frame_bytes`, checks padding and the
//!   checksum before it hands a payload out, and never panics on any input;
//! - after its first error the decoder is poisoned and repeats that error (the connection is
//!   going to be dropped; nothing after a bad frame can be trusted to be aligned on a frame);
//! - payloads are handed out in 16-byte-aligned buffers of exactly `payload_len` bytes.
//!
//! Hot path: [`FrameDecoder::feed`] copies each received byte once, into the payload buffer,
//! and hashes the payload once, when it is complete. Tests: `tests/frames.rs`; benches: `benches/frame.rs`.

use rkyv::util::AlignedVec;
use std::fmt;
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"TRNF";
/// The only frame format version this code speaks.
pub const VERSION: u8 = 1;

pub const MAGIC_OFFSET: usize = 0;
pub const VERSION_OFFSET: usize = MAGIC_OFFSET + MAGIC.len();
pub const KIND_OFFSET: usize = VERSION_OFFSET + 1;
pub const FLAGS_OFFSET: usize = KIND_OFFSET + 1;
pub const CLUSTER_OFFSET: usize = FLAGS_OFFSET + 2;
pub const LEN_OFFSET: usize = CLUSTER_OFFSET + 8;
pub const RESERVED_OFFSET: usize = LEN_OFFSET + 4;
pub const CHECKSUM_OFFSET: usize = RESERVED_OFFSET + 4;
/// Header bytes; the payload starts here.
pub const HEADER_LEN: usize = CHECKSUM_OFFSET + 8;
/// Frames (and so payloads) start at multiples of this in the stream.
pub const FRAME_ALIGN: usize = 16;

const _: () = assert!(VERSION_OFFSET == 4);
const _: () = assert!(CLUSTER_OFFSET == 8, "cluster hash is 8-aligned");
const _: () = assert!(LEN_OFFSET == 16);
const _: () = assert!(CHECKSUM_OFFSET == 24, "checksum is 8-aligned");
const _: () = assert!(HEADER_LEN == 32, "FORMAT.md says 32 header bytes");
const _: () = assert!(
    HEADER_LEN.is_multiple_of(FRAME_ALIGN),
    "payloads must start 16-aligned"
);

/// What a frame carries; the transport routes on it without reading the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// A `group::Msg` rkyv archive.
    Group = 1,
    /// Liveness on an idle connection; empty payload.
    Keepalive = 2,
    /// A chunk of an incremental state transfer stream.
    StateTransfer = 3,
}

impl FrameKind {
    pub fn from_wire(byte: u8) -> Option<FrameKind> {
        match byte {
            1 => Some(FrameKind::Group),
            2 => Some(FrameKind::Keepalive),
            3 => Some(FrameKind::StateTransfer),
            _ => None,
        }
    }
}

/// xxh3-64 of `wsrep_cluster_name`: frames of another cluster are refused at their header.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterHash(pub u64);

impl ClusterHash {
    pub fn of(cluster_name: &str) -> ClusterHash {
        ClusterHash(xxh3_64(cluster_name.as_bytes()))
    }
}

impl fmt::Debug for ClusterHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterHash({:#018x})", self.0)
    }
}

impl fmt::Display for ClusterHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Why a frame was refused. Every variant ends the connection it came from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("bad magic {found:02x?} (not a Trireme frame)")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported frame version {found} (this node speaks {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("frame of another cluster (hash {found}, ours {expected}): check wsrep_cluster_name")]
    WrongCluster {
        expected: ClusterHash,
        found: ClusterHash,
    },
    #[error("unknown frame kind {found}")]
    UnknownKind { found: u8 },
    #[error("unknown frame flags {found:#06x}")]
    UnknownFlags { found: u16 },
    #[error("reserved header field is {found:#x}, must be 0")]
    NonZeroReserved { found: u32 },
    #[error("frame payload of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge { len: u64, limit: u32 },
    #[error("frame padding is not zero")]
    NonZeroPadding,
    #[error("frame checksum mismatch (header says {expected:#018x}, payload hashes to {computed:#018x})")]
    BadChecksum { expected: u64, computed: u64 },
}

/// Bytes a frame with a payload of `payload_len` bytes occupies on the wire.
pub const fn frame_len(payload_len: usize) -> usize {
    HEADER_LEN + padded_len(payload_len)
}

/// `len` rounded up to [`FRAME_ALIGN`].
pub const fn padded_len(len: usize) -> usize {
    len.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

/// Encodes one frame into a new buffer. Fails only if the payload does not fit a u32 length.
pub fn encode_frame(
    kind: FrameKind,
    cluster: ClusterHash,
    payload: &[u8],
) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(frame_len(payload.len()));
    encode_frame_into(kind, cluster, payload, &mut out)?;
    Ok(out)
}

/// Appends one frame to `out` (a reused buffer). On error `out` is unchanged.
pub fn encode_frame_into(
    kind: FrameKind,
    cluster: ClusterHash,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    let len = u32::try_from(payload.len()).map_err(|_| FrameError::TooLarge {
        len: payload.len() as u64,
        limit: u32::MAX,
    })?;
    let mut header = [0u8; HEADER_LEN];
    header[MAGIC_OFFSET..VERSION_OFFSET].copy_from_slice(&MAGIC);
    header[VERSION_OFFSET] = VERSION;
    header[KIND_OFFSET] = kind as u8;
    header[FLAGS_OFFSET..CLUSTER_OFFSET].copy_from_slice(&0u16.to_le_bytes());
    header[CLUSTER_OFFSET..LEN_OFFSET].copy_from_slice(&cluster.0.to_le_bytes());
    header[LEN_OFFSET..RESERVED_OFFSET].copy_from_slice(&len.to_le_bytes());
    header[RESERVED_OFFSET..CHECKSUM_OFFSET].copy_from_slice(&0u32.to_le_bytes());
    let checksum = checksum(&header, payload);
    header[CHECKSUM_OFFSET..HEADER_LEN].copy_from_slice(&checksum.to_le_bytes());
    out.reserve(frame_len(payload.len()));
    out.extend_from_slice(&header);
    out.extend_from_slice(payload);
    let padding = padded_len(payload.len()) - payload.len();
    out.extend_from_slice(&[0u8; FRAME_ALIGN][..padding]);
    Ok(())
}

/// The frame checksum (FORMAT.md): xxh3-64 of the payload, seeded with xxh3-64 of header
/// bytes 0..24. Two one-shot hashes over contiguous bytes: no streaming state per frame.
fn checksum(header: &[u8; HEADER_LEN], payload: &[u8]) -> u64 {
    xxh3_64_with_seed(payload, xxh3_64(&header[..CHECKSUM_OFFSET]))
}

/// A validated payload in a 16-byte-aligned buffer of exactly `payload_len` bytes.
#[derive(Clone)]
pub struct AlignedPayload(AlignedVec<16>);

impl PartialEq for AlignedPayload {
    fn eq(&self, other: &AlignedPayload) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for AlignedPayload {}

impl AlignedPayload {
    pub fn as_slice(&self) -> &[u8] {
        self.0.as_slice()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The buffer itself, e.g. for `rkyv::access`.
    pub fn into_inner(self) -> AlignedVec<16> {
        self.0
    }
}

impl std::ops::Deref for AlignedPayload {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

impl fmt::Debug for AlignedPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AlignedPayload({} bytes)", self.0.len())
    }
}

/// One validated frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: AlignedPayload,
}

/// A frame whose header has been validated and whose payload is arriving.
struct Body {
    kind: FrameKind,
    payload_len: usize,
    expected: u64,
    /// xxh3-64 of header bytes 0..24: the payload hash's seed.
    seed: u64,
    /// Payload and padding received so far; its final length is `padded_len(payload_len)`.
    buf: AlignedVec<16>,
}

/// Turns a byte stream, in chunks of any size, into validated frames.
pub struct FrameDecoder {
    cluster: ClusterHash,
    max_payload: u32,
    header: [u8; HEADER_LEN],
    header_filled: usize,
    body: Option<Body>,
    poisoned: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder accepting frames of `cluster` with payloads of at most `max_payload` bytes.
    pub fn new(cluster: ClusterHash, max_payload: u32) -> FrameDecoder {
        FrameDecoder {
            cluster,
            max_payload,
            header: [0; HEADER_LEN],
            header_filled: 0,
            body: None,
            poisoned: None,
        }
    }

    /// Consumes `bytes`, appending every frame they complete to `frames`. Frames completed
    /// before an error are kept in `frames` (they were valid); after an error the decoder
    /// refuses everything with that same error.
    pub fn feed(&mut self, mut bytes: &[u8], frames: &mut Vec<Frame>) -> Result<(), FrameError> {
        if let Some(error) = &self.poisoned {
            return Err(error.clone());
        }
        while !bytes.is_empty() {
            let step = match self.body.as_mut() {
                None => self.feed_header(&mut bytes),
                Some(body) => Self::feed_body(body, &mut bytes),
            };
            match step {
                Ok(Progress::NeedMore) => {}
                Ok(Progress::HeaderDone(body)) => {
                    self.header_filled = 0;
                    if body.payload_len == 0 {
                        // Nothing follows the header: the frame is complete now.
                        match Self::finish(body) {
                            Ok(frame) => frames.push(frame),
                            Err(e) => return Err(self.poison(e)),
                        }
                    } else {
                        self.body = Some(body);
                    }
                }
                Ok(Progress::BodyDone) => {
                    if let Some(body) = self.body.take() {
                        match Self::finish(body) {
                            Ok(frame) => frames.push(frame),
                            Err(e) => return Err(self.poison(e)),
                        }
                    }
                }
                Err(e) => return Err(self.poison(e)),
            }
        }
        Ok(())
    }

    /// Bytes of a partial frame held right now (0 between frames).
    pub fn buffered_bytes(&self) -> usize {
        self.header_filled + self.body.as_ref().map_or(0, |b| b.buf.len())
    }

    fn poison(&mut self, error: FrameError) -> FrameError {
        self.body = None;
        self.header_filled = 0;
        self.poisoned = Some(error.clone());
        error
    }

    fn feed_header(&mut self, bytes: &mut &[u8]) -> Result<Progress, FrameError> {
        let take = (HEADER_LEN - self.header_filled).min(bytes.len());
        self.header[self.header_filled..self.header_filled + take].copy_from_slice(&bytes[..take]);
        self.header_filled += take;
        *bytes = &bytes[take..];
        if self.header_filled < HEADER_LEN {
            return Ok(Progress::NeedMore);
        }
        self.parse_header().map(Progress::HeaderDone)
    }

    fn parse_header(&self) -> Result<Body, FrameError> {
        let h = &self.header;
        let magic = [h[0], h[1], h[2], h[3]];
        if magic != MAGIC {
            return Err(FrameError::BadMagic { found: magic });
        }
        if h[VERSION_OFFSET] != VERSION {
            return Err(FrameError::UnsupportedVersion {
                found: h[VERSION_OFFSET],
                supported: VERSION,
            });
        }
        let cluster = ClusterHash(u64::from_le_bytes(field(h, CLUSTER_OFFSET)));
        if cluster != self.cluster {
            return Err(FrameError::WrongCluster {
                expected: self.cluster,
                found: cluster,
            });
        }
        let kind = FrameKind::from_wire(h[KIND_OFFSET]).ok_or(FrameError::UnknownKind {
            found: h[KIND_OFFSET],
        })?;
        let flags = u16::from_le_bytes(field(h, FLAGS_OFFSET));
        if flags != 0 {
            return Err(FrameError::UnknownFlags { found: flags });
        }
        let reserved = u32::from_le_bytes(field(h, RESERVED_OFFSET));
        if reserved != 0 {
            return Err(FrameError::NonZeroReserved { found: reserved });
        }
        let len = u32::from_le_bytes(field(h, LEN_OFFSET));
        if len > self.max_payload {
            return Err(FrameError::TooLarge {
                len: u64::from(len),
                limit: self.max_payload,
            });
        }
        let payload_len = len as usize;
        Ok(Body {
            kind,
            payload_len,
            expected: u64::from_le_bytes(field(h, CHECKSUM_OFFSET)),
            seed: xxh3_64(&h[..CHECKSUM_OFFSET]),
            buf: AlignedVec::with_capacity(padded_len(payload_len)),
        })
    }

    fn feed_body(body: &mut Body, bytes: &mut &[u8]) -> Result<Progress, FrameError> {
        let total = padded_len(body.payload_len);
        let take = (total - body.buf.len()).min(bytes.len());
        let chunk = &bytes[..take];
        body.buf.extend_from_slice(chunk);
        *bytes = &bytes[take..];
        if body.buf.len() == total {
            Ok(Progress::BodyDone)
        } else {
            Ok(Progress::NeedMore)
        }
    }

    fn finish(mut body: Body) -> Result<Frame, FrameError> {
        if body.buf[body.payload_len..].iter().any(|&b| b != 0) {
            return Err(FrameError::NonZeroPadding);
        }
        let computed = xxh3_64_with_seed(&body.buf[..body.payload_len], body.seed);
        if computed != body.expected {
            return Err(FrameError::BadChecksum {
                expected: body.expected,
                computed,
            });
        }
        body.buf.truncate_to(body.payload_len);
        Ok(Frame {
            kind: body.kind,
            payload: AlignedPayload(body.buf),
        })
    }
}

enum Progress {
    NeedMore,
    HeaderDone(Body),
    BodyDone,
}

/// Reads a fixed-width little-endian field; offsets are compile-time constants inside the
/// fixed-size header, so the slice always has length N.
fn field<const N: usize>(header: &[u8; HEADER_LEN], offset: usize) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&header[offset..offset + N]);
    out
}

/// `AlignedVec` has no `truncate`; shrinking the length is what we need.
trait TruncateTo {
    fn truncate_to(&mut self, len: usize);
}

impl TruncateTo for AlignedVec<16> {
    fn truncate_to(&mut self, len: usize) {
        if len < self.len() {
            self.resize(len, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_sit_where_format_md_says() {
        let frame =
            encode_frame(FrameKind::Group, ClusterHash(0x0102030405060708), b"abc").unwrap();
        assert_eq!(&frame[..4], b"TRNF");
        assert_eq!(frame[4], 1);
        assert_eq!(frame[5], 1);
        assert_eq!(&frame[6..8], &[0, 0]);
        assert_eq!(&frame[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&frame[16..20], &[3, 0, 0, 0]);
        assert_eq!(&frame[20..24], &[0; 4]);
        let seed = xxh3_64(&frame[..24]);
        assert_eq!(frame[24..32], xxh3_64_with_seed(b"abc", seed).to_le_bytes());
        assert_eq!(&frame[32..35], b"abc");
        assert_eq!(frame.len(), 48);
        assert!(frame[35..].iter().all(|&b| b == 0));
    }
}
