//! [`CertSnapshot`]: the certification index at one seqno, for a joiner.
//!
//! A node that joins by state transfer receives the database as of seqno D and must certify
//! every later writeset exactly as the others do. Certification of a writeset looks at records
//! after its `last_seen`, which can be older than D, so the joiner needs the index as every
//! node holds it at D: the donor exports it when it reaches D in the total order
//! ([`crate::Certifier::export`] or per slice with [`CertSlice::export_into`]), the joiner imports
//! it ([`crate::Certifier::import`]) with any shard count, and certifies from D + 1 on.
//!
//! The snapshot holds the global position (position, horizon, last barrier) and, for every key
//! and key type, the latest record (the slot). Records overwritten before D are not needed: no
//! later check reads them. The purge log is rebuilt from the slots in seqno order, which purges
//! exactly as the original (a slot goes when the cut passes its seqno).
//!
//! Wire form: an rkyv archive, validated on decode; records of an impossible shape (bad type
//! index, seqno beyond the position) are refused.

use rkyv::rancor;
use trireme_types::{KeyHash, NodeId, Seqno};

use crate::global::CertGlobal;
use crate::slice::CertSlice;

/// One slot of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct SnapshotRecord {
    pub key: KeyHash,
    /// `KeyType::index` of the slot.
    pub kind: u8,
    pub seqno: Seqno,
    pub source: NodeId,
    pub toi: bool,
}

/// The certification index at `position`.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct CertSnapshot {
    pub position: Seqno,
    pub horizon: Seqno,
    pub last_barrier: Seqno,
    /// Sorted by seqno (then key, then kind), so import rebuilds the purge log in order.
    pub records: Vec<SnapshotRecord>,
}

/// Why a snapshot was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("certification snapshot failed validation: {0}")]
    Invalid(String),
    #[error("certification snapshot record {index} is impossible: {reason}")]
    BadRecord { index: usize, reason: String },
}

impl CertSnapshot {
    /// A snapshot of `global` and the records gathered from every slice (any order).
    pub fn from_records(global: &CertGlobal, records: Vec<SnapshotRecord>) -> CertSnapshot {
        Self::from_parts(global, records)
    }

    pub(crate) fn from_parts(
        global: &CertGlobal,
        mut records: Vec<SnapshotRecord>,
    ) -> CertSnapshot {
        records.sort_by_key(|r| (r.seqno, r.key, r.kind));
        CertSnapshot {
            position: global.position(),
            horizon: global.horizon(),
            last_barrier: global.last_barrier(),
            records,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        rkyv::to_bytes::<rancor::Error>(self)
            .map(|bytes| bytes.to_vec())
            .unwrap_or_default()
    }

    /// Validates and decodes a snapshot received from a donor.
    pub fn decode(bytes: &[u8]) -> Result<CertSnapshot, SnapshotError> {
        let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
        aligned.extend_from_slice(bytes);
        let snapshot = rkyv::from_bytes::<CertSnapshot, rancor::Error>(&aligned)
            .map_err(|e| SnapshotError::Invalid(e.to_string()))?;
        snapshot.validate()?;
        Ok(snapshot)
    }

    fn validate(&self) -> Result<(), SnapshotError> {
        if self.horizon > self.position || self.last_barrier > self.position {
            return Err(SnapshotError::Invalid(format!(
                "horizon {} / last barrier {} beyond position {}",
                self.horizon, self.last_barrier, self.position
            )));
        }
        let mut previous = Seqno::UNDEFINED;
        for (index, record) in self.records.iter().enumerate() {
            let bad = |reason: String| Err(SnapshotError::BadRecord { index, reason });
            if record.kind > 3 {
                return bad(format!("key type {}", record.kind));
            }
            if record.seqno > self.position || record.seqno < previous {
                return bad(format!(
                    "seqno {} out of order or beyond {}",
                    record.seqno, self.position
                ));
            }
            previous = record.seqno;
        }
        Ok(())
    }
}

impl CertSlice {
    /// Appends this slice's records to `out` (any order; the snapshot sorts them).
    pub fn export_into(&self, out: &mut Vec<SnapshotRecord>) {
        self.for_each_slot(|key, kind, seqno, source, toi| {
            out.push(SnapshotRecord {
                key,
                kind,
                seqno,
                source,
                toi,
            });
        });
    }

    /// Replaces this slice's content with the records of `snapshot` it owns.
    pub fn import(&mut self, snapshot: &CertSnapshot) {
        self.clear();
        for r in &snapshot.records {
            if self.owns(r.key) {
                self.restore_slot(r.key, r.kind, r.seqno, r.source, r.toi);
            }
        }
    }
}

impl CertGlobal {
    /// The global half at the snapshot's position.
    pub fn import(&mut self, snapshot: &CertSnapshot) {
        self.restore(snapshot.position, snapshot.horizon, snapshot.last_barrier);
    }
}
