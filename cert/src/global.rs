//! [`CertGlobal`]: the part of certification that is not per key, owned by the ordering thread.
//!
//! It holds four seqnos and the statistics:
//! - `position`: the last seqno certified or passed as a barrier; seqnos must increase.
//! - `horizon`: every record with seqno <= horizon may be gone from the index (purged, or never
//!   seen because this node's state came from a state transfer at that position). Everything at
//!   or below it is committed on every node.
//! - `last_barrier`: the last configuration change, ISOLATION or PA_UNSAFE writeset; every later
//!   writeset depends on it (Galera's `last_pa_unsafe_`).
//! - statistics for `wsrep_cert_interval` and `wsrep_cert_deps_distance`.
//!
//! [`CertGlobal::merge`] turns the slices' [`Partial`]s into the [`Verdict`]. The order of the
//! rules is Galera's `do_test`: the "too old" test first, then key conflicts. `depends_on` is
//! `seqno - 1` for ISOLATION and PA_UNSAFE writesets, and otherwise the highest of: the key
//! dependencies, `last_barrier`, `horizon`, and `last_seen` when IMPLICIT_DEPS is set or
//! `cert.optimistic_pa` is off. It is always below `seqno`.
//!
//! Invariants: `horizon <= position`, `last_barrier <= position`; a merge or barrier either
//! returns an error and changes nothing, or advances `position` to its seqno.

use trireme_types::Seqno;

use crate::input::{CheckInput, Mode};
use crate::slice::{ConflictAt, Partial};
use crate::verdict::{CertError, Verdict};

/// Galera's `cert.max_length` default. Like Galera's, it must be the same on every node.
pub const DEFAULT_MAX_LENGTH: u64 = 16384;

/// Certification settings. Every node of a cluster must use the same values, or verdicts
/// diverge (Galera says the same of `cert.max_length`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CertConfig {
    /// `cert.optimistic_pa` (default yes): when off, a writeset also depends on its `last_seen`,
    /// so it applies in the order its source committed.
    pub optimistic_pa: bool,
    /// `cert.max_length`: a writeset with `seqno - last_seen` above this fails as too old.
    /// `None` removes the limit (not a Galera setting; for tests and tools).
    pub max_length: Option<u64>,
}

impl Default for CertConfig {
    fn default() -> Self {
        CertConfig {
            optimistic_pa: true,
            max_length: Some(DEFAULT_MAX_LENGTH),
        }
    }
}

/// Counters behind `wsrep_cert_interval`, `wsrep_cert_deps_distance` (averaged over passed
/// writesets, as Galera's `stats_get`) and certification failures.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct CertStats {
    /// Writesets that passed (including preloaded ones, as Galera counts them).
    pub passed: u64,
    /// Writesets that failed (conflict, too old, or last_seen ahead).
    pub failed: u64,
    /// Sum over passed writesets of `seqno - last_seen - 1` (Galera's definition: the number of
    /// writesets ordered between what the source had seen and this one).
    pub cert_interval_sum: u64,
    /// Sum over passed writesets of `seqno - depends_on`.
    pub deps_distance_sum: u64,
}

impl CertStats {
    /// `wsrep_cert_interval`.
    pub fn avg_cert_interval(&self) -> f64 {
        average(self.cert_interval_sum, self.passed)
    }

    /// `wsrep_cert_deps_distance`.
    pub fn avg_deps_distance(&self) -> f64 {
        average(self.deps_distance_sum, self.passed)
    }
}

fn average(sum: u64, count: u64) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum as f64 / count as f64
    }
}

/// `a - b` as a non-negative count, total for any inputs.
fn distance(a: Seqno, b: Seqno) -> u64 {
    u64::try_from(i128::from(a.0) - i128::from(b.0)).unwrap_or(0)
}

/// The global half of certification (see the module header).
#[derive(Clone, Debug)]
pub struct CertGlobal {
    shard_count: u32,
    config: CertConfig,
    position: Seqno,
    horizon: Seqno,
    last_barrier: Seqno,
    stats: CertStats,
}

impl CertGlobal {
    /// Certification for `shard_count` slices, starting after `initial_position` (the seqno the
    /// node's state is at: 0 for a new cluster, the SST/IST position for a joiner). Writesets
    /// whose `last_seen` is below it fail as too old, as in Galera (`initial_position_`).
    pub fn new(
        shard_count: u32,
        initial_position: Seqno,
        config: CertConfig,
    ) -> Result<CertGlobal, CertError> {
        if shard_count == 0 {
            return Err(CertError::NoSlices);
        }
        let start = initial_position.max(Seqno::UNDEFINED);
        Ok(CertGlobal {
            shard_count,
            config,
            position: start,
            horizon: start,
            last_barrier: start,
            stats: CertStats::default(),
        })
    }

    /// Starts over at `initial_position` (after a state transfer); the slices must be cleared
    /// at the same time. Statistics are kept, as Galera keeps them.
    pub fn reset(&mut self, initial_position: Seqno) {
        let start = initial_position.max(Seqno::UNDEFINED);
        self.position = start;
        self.horizon = start;
        self.last_barrier = start;
    }

    /// Sets the position, horizon and last barrier (snapshot import).
    pub(crate) fn restore(&mut self, position: Seqno, horizon: Seqno, last_barrier: Seqno) {
        self.position = position;
        self.horizon = horizon;
        self.last_barrier = last_barrier;
    }

    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    pub fn config(&self) -> CertConfig {
        self.config
    }

    /// The last seqno certified or passed as a barrier.
    pub fn position(&self) -> Seqno {
        self.position
    }

    /// Records at or below this seqno may be gone; a writeset whose `last_seen` is below it is
    /// too old.
    pub fn horizon(&self) -> Seqno {
        self.horizon
    }

    /// The last barrier (configuration change, ISOLATION or PA_UNSAFE writeset).
    pub fn last_barrier(&self) -> Seqno {
        self.last_barrier
    }

    pub fn stats(&self) -> CertStats {
        self.stats
    }

    pub fn reset_stats(&mut self) {
        self.stats = CertStats::default();
    }

    /// The lowest `last_seen` a writeset ordered at `seqno` may have.
    pub fn oldest_allowed(&self, seqno: Seqno) -> Seqno {
        match self.config.max_length {
            Some(max) => {
                let max = i64::try_from(max).unwrap_or(i64::MAX);
                self.horizon.max(Seqno(seqno.0.saturating_sub(max)))
            }
            None => self.horizon,
        }
    }

    /// Fails with [`CertError::SeqnoNotAfterPosition`] unless `seqno` may come next.
    pub fn check_next(&self, seqno: Seqno) -> Result<(), CertError> {
        if seqno <= self.position || seqno < Seqno(1) {
            return Err(CertError::SeqnoNotAfterPosition {
                seqno,
                position: self.position,
            });
        }
        Ok(())
    }

    /// A seqno in the total order that is not a writeset (a configuration change): every later
    /// writeset depends on it (Galera `adjust_position` sets `last_pa_unsafe_` to it).
    pub fn barrier(&mut self, seqno: Seqno) -> Result<(), CertError> {
        self.check_next(seqno)?;
        self.position = seqno;
        self.last_barrier = seqno;
        Ok(())
    }

    /// The verdict for `input` from the partials of every slice (`partials[i]` from slice `i`),
    /// and the global bookkeeping for it. On `Ok`, the caller must pass the verdict to every
    /// slice's `apply` before checking the next writeset.
    pub fn merge(
        &mut self,
        input: &CheckInput<'_>,
        partials: &[Partial],
    ) -> Result<Verdict, CertError> {
        self.check_next(input.seqno)?;
        self.check_partials(input.seqno, partials)?;
        let key_depends_on = partials
            .iter()
            .map(|p| p.depends_on)
            .max()
            .unwrap_or(Seqno::UNDEFINED);
        let conflict = partials
            .iter()
            .filter_map(|p| p.conflict)
            .min_by_key(|c| c.position);
        let verdict = self.decide(input, key_depends_on, conflict);

        self.position = input.seqno;
        match verdict {
            Verdict::Pass { depends_on } => {
                if input.is_serial() {
                    self.last_barrier = input.seqno;
                }
                self.stats.passed += 1;
                let interval = distance(input.seqno, input.last_seen).saturating_sub(1);
                self.stats.cert_interval_sum =
                    self.stats.cert_interval_sum.saturating_add(interval);
                self.stats.deps_distance_sum = self
                    .stats
                    .deps_distance_sum
                    .saturating_add(distance(input.seqno, depends_on));
            }
            _ => self.stats.failed += 1,
        }
        Ok(verdict)
    }

    /// Forgets every record with seqno < `cut`: the slices drop them, and writesets whose
    /// `last_seen` is below `cut - 1` become too old. Call it at the same point of the total
    /// order on every node, on this and on every slice. Clamped to the position: a cut beyond
    /// what was ordered cannot make future writesets too old.
    pub fn purge_below(&mut self, cut: Seqno) {
        let purged_upto = Seqno(cut.0.saturating_sub(1)).min(self.position);
        self.horizon = self.horizon.max(purged_upto);
    }

    fn check_partials(&self, seqno: Seqno, partials: &[Partial]) -> Result<(), CertError> {
        let mismatch = |detail: String| CertError::PartialsMismatch {
            seqno,
            expected: self.shard_count,
            detail,
        };
        if partials.len() != self.shard_count as usize {
            return Err(mismatch(format!("got {} partials", partials.len())));
        }
        for (index, partial) in partials.iter().enumerate() {
            if partial.slice as usize != index || partial.seqno != seqno {
                return Err(mismatch(format!(
                    "position {index} holds slice {}'s partial for seqno {}",
                    partial.slice, partial.seqno
                )));
            }
        }
        Ok(())
    }

    fn decide(
        &self,
        input: &CheckInput<'_>,
        key_depends_on: Seqno,
        conflict: Option<ConflictAt>,
    ) -> Verdict {
        let seqno = input.seqno;
        let last_seen_ok = input.last_seen < seqno;
        let depends_on = if input.is_serial() {
            seqno.prev()
        } else {
            let mut floor = self.last_barrier.max(self.horizon).max(key_depends_on);
            let follow_source = !self.config.optimistic_pa
                || input.flags.has(trireme_types::WsFlags::IMPLICIT_DEPS);
            if follow_source && last_seen_ok {
                floor = floor.max(input.last_seen);
            }
            floor.min(seqno.prev())
        };

        if input.mode == Mode::Preload {
            return Verdict::Pass { depends_on };
        }
        if !last_seen_ok {
            return Verdict::LastSeenAhead {
                last_seen: input.last_seen,
                depends_on,
            };
        }
        let oldest_allowed = self.oldest_allowed(seqno);
        if input.last_seen < oldest_allowed {
            return Verdict::TooOld {
                last_seen: input.last_seen,
                oldest_allowed,
                depends_on,
            };
        }
        match conflict {
            Some(c) => Verdict::Conflict {
                key: c.key,
                with_seqno: c.with_seqno,
                depends_on,
            },
            None => Verdict::Pass { depends_on },
        }
    }
}
