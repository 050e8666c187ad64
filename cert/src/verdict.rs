//! What certification answers ([`Verdict`]) and how a caller can misuse it ([`CertError`]).
//!
//! A verdict is a pure function of the writeset and of what was certified before it, so every
//! node computes the same one. Every verdict carries a `depends_on` (the seqno that must have
//! committed before the writeset may apply, contract §2.7 and §5.2); a failed writeset is never
//! applied, but its `depends_on` is still defined and deterministic.
//!
//! A [`CertError`] is a caller bug (seqnos out of order, partials from the wrong slices), never
//! a property of a writeset: everything a remote node can put in a writeset ends in a verdict.
//! Error paths leave the certifier unchanged.

use trireme_types::{KeyHash, Seqno};

/// The outcome of certifying one ordered writeset.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// Commit it; apply it once `depends_on` has committed.
    Pass { depends_on: Seqno },
    /// It conflicts with the concurrent writeset `with_seqno` on `key` (the first conflicting key
    /// in the writeset's key order; within a key, slots are examined EX, UP, RE, SH). The client
    /// gets ER_LOCK_DEADLOCK; `cert.log_conflicts` logs `key` and `with_seqno`.
    Conflict {
        key: KeyHash,
        with_seqno: Seqno,
        depends_on: Seqno,
    },
    /// Its `last_seen` is older than `oldest_allowed`: the index no longer holds (or never held,
    /// after a state transfer) the records needed to certify it, or the certification interval
    /// exceeds `cert.max_length`. Galera fails these too (`do_test`).
    TooOld {
        last_seen: Seqno,
        oldest_allowed: Seqno,
        depends_on: Seqno,
    },
    /// Its `last_seen` is not before its own seqno, which no honest node can produce (the origin
    /// cannot have committed its own writeset before it was ordered). Failed to stay safe.
    LastSeenAhead { last_seen: Seqno, depends_on: Seqno },
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }

    /// The seqno that must commit before this writeset may apply (or, for a failed one, before
    /// its slot in the order is released).
    pub fn depends_on(&self) -> Seqno {
        match *self {
            Verdict::Pass { depends_on }
            | Verdict::Conflict { depends_on, .. }
            | Verdict::TooOld { depends_on, .. }
            | Verdict::LastSeenAhead { depends_on, .. } => depends_on,
        }
    }
}

/// Misuse of the certifier by its caller. The certifier's state is unchanged when one is
/// returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("a certifier needs at least one slice (shard count 0)")]
    NoSlices,
    #[error("slice index {index} is out of range for {shard_count} slices")]
    SliceOutOfRange { index: u32, shard_count: u32 },
    #[error("seqno {seqno} is not after the certification position {position}: seqnos must increase and start at 1")]
    SeqnoNotAfterPosition { seqno: Seqno, position: Seqno },
    #[error("merge of seqno {seqno} needs one partial from each of the {expected} slices in slice order; {detail}")]
    PartialsMismatch {
        seqno: Seqno,
        expected: u32,
        detail: String,
    },
}
