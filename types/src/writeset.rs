//! The writeset: one transaction's certification keys and payload, and its wire form.
//!
//! Keys are reduced to 128-bit hashes on the client thread ([`key_hashes`]) so that the
//! certification shards compare fixed-size values and no row data travels as a key. Every
//! proper prefix of a key is added as a `Shared` key (Galera's rule, contract §2.6), which is
//! what makes a table-level exclusive key conflict with row writes on that table.
//!
//! The wire form is an rkyv archive; [`decode`] validates it (bounds, enum values, lengths)
//! before anything reads it, and [`MAX_WRITESET_BYTES`] bounds what is accepted at all.

use crate::ids::NodeId;
use crate::seqno::Seqno;
use rkyv::rancor;
use xxhash_rust::xxh3::Xxh3;

/// The largest encoded writeset accepted from the network (Galera's `repl.max_ws_size`
/// default is 2 GiB; we bound a single frame lower and rely on streaming replication for
/// larger transactions).
pub const MAX_WRITESET_BYTES: usize = 1 << 30;

/// Certification key types (`wsrep_key_type_t`), ordered by strength.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
#[repr(u8)]
pub enum KeyType {
    Shared = 0,
    Reference = 1,
    Update = 2,
    Exclusive = 3,
}

impl KeyType {
    pub const ALL: [KeyType; 4] = [
        KeyType::Shared,
        KeyType::Reference,
        KeyType::Update,
        KeyType::Exclusive,
    ];

    pub fn from_u8(value: u8) -> Option<KeyType> {
        match value {
            0 => Some(KeyType::Shared),
            1 => Some(KeyType::Reference),
            2 => Some(KeyType::Update),
            3 => Some(KeyType::Exclusive),
            _ => None,
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A 128-bit hash of a key prefix, stable across processes, machines and releases
/// (xxh3-128 of the length-prefixed parts). Certification must give the same answer on every
/// node, so this must never depend on a per-process seed.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq, Hash))]
pub struct KeyHash(pub u128);

impl KeyHash {
    /// Which of `shard_count` shards owns this key.
    pub fn shard(&self, shard_count: u32) -> u32 {
        debug_assert!(shard_count > 0);
        ((self.0 as u64) % u64::from(shard_count.max(1))) as u32
    }
}

/// The hashes of every prefix of `parts`: `[h(p0), h(p0,p1), ..., h(p0..pn)]`. The last one
/// is the key itself; the others are its implicit shared prefixes.
pub fn key_hashes(parts: &[&[u8]]) -> Vec<KeyHash> {
    let mut hasher = Xxh3::new();
    let mut out = Vec::with_capacity(parts.len().max(1));
    if parts.is_empty() {
        // A zero-part key names the whole server; it hashes to the empty prefix.
        out.push(KeyHash(hasher.digest128()));
        return out;
    }
    for part in parts {
        hasher.update(&(part.len() as u32).to_le_bytes());
        hasher.update(part);
        out.push(KeyHash(hasher.digest128()));
    }
    out
}

/// One certification key in a writeset: its hash and the strongest type it was appended
/// with.
#[derive(Clone, Copy, PartialEq, Eq, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct WsKey {
    pub hash: KeyHash,
    /// A [`KeyType`] as u8 (validated by [`decode`]).
    pub kind: u8,
}

impl WsKey {
    pub fn key_type(&self) -> KeyType {
        KeyType::from_u8(self.kind).unwrap_or(KeyType::Exclusive)
    }
}

/// Writeset flags (`WSREP_FLAG_*`), bit for bit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WsFlags(pub u32);

impl WsFlags {
    pub const TRX_END: u32 = 1 << 0;
    pub const ROLLBACK: u32 = 1 << 1;
    pub const ISOLATION: u32 = 1 << 2;
    pub const PA_UNSAFE: u32 = 1 << 3;
    pub const COMMUTATIVE: u32 = 1 << 4;
    pub const NATIVE: u32 = 1 << 5;
    pub const TRX_START: u32 = 1 << 6;
    pub const TRX_PREPARE: u32 = 1 << 7;
    pub const SNAPSHOT: u32 = 1 << 8;
    pub const IMPLICIT_DEPS: u32 = 1 << 9;
    /// Every flag the wsrep API v26 defines.
    pub const KNOWN: u32 = (1 << 10) - 1;

    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    pub fn is_isolation(self) -> bool {
        self.has(Self::ISOLATION)
    }

    /// Must this writeset be applied alone, after everything before it?
    pub fn is_pa_unsafe(self) -> bool {
        self.has(Self::PA_UNSAFE) || self.has(Self::ISOLATION) || self.has(Self::IMPLICIT_DEPS)
    }
}

impl std::fmt::Debug for WsFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WsFlags({:#x})", self.0)
    }
}

/// A replicated unit: a transaction (or fragment, or TOI action) with its keys and payload.
#[derive(Clone, PartialEq, Eq, Debug, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
pub struct Writeset {
    /// The node incarnation that originated it.
    pub source: NodeId,
    /// The originating server's transaction id (`u64::MAX` for TOI).
    pub trx_id: u64,
    /// The originating connection id.
    pub conn_id: u64,
    /// `WSREP_FLAG_*` bits.
    pub flags: u32,
    /// The highest seqno committed on the origin when this writeset was replicated;
    /// certification only looks for conflicts after it.
    pub last_seen: Seqno,
    /// Deduplicated certification keys, strongest type per hash.
    pub keys: Vec<WsKey>,
    /// The payload (binlog events or a TOI query), opaque to the provider.
    pub data: Vec<u8>,
}

/// Why a received writeset was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("writeset of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("writeset failed validation: {detail}")]
    Invalid { detail: String },
    #[error("writeset carries unknown key type {kind}")]
    BadKeyType { kind: u8 },
    #[error("writeset carries unknown flags {flags:#x}")]
    BadFlags { flags: u32 },
}

impl Writeset {
    /// Adds a key, keeping the strongest type per hash.
    pub fn add_key(&mut self, hash: KeyHash, kind: KeyType) {
        if let Some(existing) = self.keys.iter_mut().find(|k| k.hash == hash) {
            if kind as u8 > existing.kind {
                existing.kind = kind as u8;
            }
            return;
        }
        self.keys.push(WsKey {
            hash,
            kind: kind as u8,
        });
    }

    pub fn flags(&self) -> WsFlags {
        WsFlags(self.flags)
    }

    /// The wire form. Aligned so that [`decode`] can validate it in place.
    pub fn encode(&self) -> rkyv::util::AlignedVec {
        rkyv::to_bytes::<rancor::Error>(self)
            .expect("serialising a writeset into memory cannot fail")
    }
}

/// Validates and decodes a writeset received from the network or read from the GCache.
/// The buffer must be exactly one archive (rkyv keeps its root at the end).
pub fn decode(bytes: &[u8]) -> Result<Writeset, DecodeError> {
    if bytes.len() > MAX_WRITESET_BYTES {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: MAX_WRITESET_BYTES,
        });
    }
    // rkyv needs the archive aligned; a copy into an aligned buffer is cheap next to I/O.
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    let archived = rkyv::access::<ArchivedWriteset, rancor::Error>(&aligned).map_err(|e| {
        DecodeError::Invalid {
            detail: e.to_string(),
        }
    })?;
    let ws: Writeset = rkyv::deserialize::<Writeset, rancor::Error>(archived).map_err(|e| {
        DecodeError::Invalid {
            detail: e.to_string(),
        }
    })?;
    if ws.flags & !WsFlags::KNOWN != 0 {
        return Err(DecodeError::BadFlags { flags: ws.flags });
    }
    if let Some(bad) = ws.keys.iter().find(|k| KeyType::from_u8(k.kind).is_none()) {
        return Err(DecodeError::BadKeyType { kind: bad.kind });
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Uuid;

    fn sample() -> Writeset {
        let mut ws = Writeset {
            source: NodeId(Uuid([7; 16])),
            trx_id: 42,
            conn_id: 9,
            flags: WsFlags::TRX_START | WsFlags::TRX_END,
            last_seen: Seqno(17),
            keys: Vec::new(),
            data: b"binlog events".to_vec(),
        };
        let hashes = key_hashes(&[b"db", b"t", b"\x00\x03\x00\x00\x00"]);
        ws.add_key(hashes[0], KeyType::Shared);
        ws.add_key(hashes[1], KeyType::Shared);
        ws.add_key(hashes[2], KeyType::Exclusive);
        ws
    }

    #[test]
    fn writeset_round_trips_through_the_wire_form() {
        let ws = sample();
        let bytes = ws.encode();
        assert_eq!(decode(&bytes).unwrap(), ws);
    }

    #[test]
    fn decode_refuses_truncated_and_corrupt_archives() {
        let bytes = sample().encode();
        assert!(decode(&bytes[..bytes.len() - 3]).is_err());
        let mut corrupt = bytes.to_vec();
        let n = corrupt.len();
        corrupt[n - 8..].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&corrupt).is_err());
        assert!(decode(&[]).is_err());
    }

    #[test]
    fn decode_refuses_unknown_key_types_and_flags() {
        let mut ws = sample();
        ws.keys[0].kind = 9;
        assert_eq!(
            decode(&ws.encode()),
            Err(DecodeError::BadKeyType { kind: 9 })
        );
        let mut ws = sample();
        ws.flags = 1 << 20;
        assert!(matches!(
            decode(&ws.encode()),
            Err(DecodeError::BadFlags { .. })
        ));
    }

    #[test]
    fn prefixes_hash_differently_and_stably() {
        let a = key_hashes(&[b"db", b"t1"]);
        let b = key_hashes(&[b"db", b"t2"]);
        assert_eq!(a[0], b[0], "same database prefix");
        assert_ne!(a[1], b[1]);
        // Length prefixing keeps ("ab","c") apart from ("a","bc").
        assert_ne!(key_hashes(&[b"ab", b"c"])[1], key_hashes(&[b"a", b"bc"])[1]);
        // Pinned value: certification across releases and machines depends on it, so a
        // change of hash function or encoding must fail here first.
        assert_eq!(
            key_hashes(&[b"db", b"t"])[1].0,
            0xbe22705659f94996b93b3b1b97bcaba3
        );
    }

    #[test]
    fn add_key_keeps_the_strongest_type() {
        let mut ws = sample();
        let h = ws.keys[0].hash;
        ws.add_key(h, KeyType::Update);
        assert_eq!(ws.keys.len(), 3);
        assert_eq!(ws.keys[0].key_type(), KeyType::Update);
        ws.add_key(h, KeyType::Reference);
        assert_eq!(ws.keys[0].key_type(), KeyType::Update);
    }
}
