//! Certification: Galera's conflict matrix over a key-hash-sharded index, deterministic verdicts
//! and `depends_on` for parallel apply (contract §2.6-2.7, §4.4, §5.2; DESIGN "Certification").
//!
//! Every node certifies every writeset in total order and must reach the same verdict, so this
//! crate is pure: no threads, no clocks, no randomness, no I/O, no iteration order that matters.
//!
//! # Entry points
//! - [`Certifier`]: the single-thread facade (`certify`, `certify_barrier`, `purge_upto`, ...).
//!   It runs the three steps below over all its slices.
//! - The sharded API, for a runtime that spreads the index over shard threads:
//!   1. [`CertSlice::check`] on every slice (read only) gives a [`Partial`];
//!   2. [`CertGlobal::merge`] on the ordering thread combines them into the [`Verdict`];
//!   3. [`CertSlice::apply`] on every slice records the keys if the verdict passed.
//!
//!   Keys are inserted only after the merged verdict is known, and the reported conflict is
//!   chosen by key position in the writeset, so the verdict never depends on the shard count.
//!
//! # Semantics (Galera 4, `galera/src/certification.cpp`, checked against 26.4.18)
//! - Matrix and conflict rule: see [`matrix`]. A `C` cell fails T only if the record is after
//!   T's `last_seen` and (from another node, or TOI); otherwise it is a dependency.
//! - The index keeps, per key hash and key type, the latest passed writeset (`KeyEntryNG`).
//! - TOI (ISOLATION) writesets are not certified against the index (`certify_v3to6`) but their
//!   keys are recorded, flagged TOI, so they conflict with later concurrent writesets even from
//!   their own node.
//! - ISOLATION and PA_UNSAFE writesets get `depends_on = seqno - 1` (`TrxHandleSlave::
//!   unserialize`); IMPLICIT_DEPS, or `cert.optimistic_pa = no`, raise `depends_on` to at least
//!   `last_seen`.
//! - Every writeset depends on at least the last barrier: a passed PA_UNSAFE writeset, a
//!   configuration change ([`Certifier::certify_barrier`], Galera `adjust_position`), and the
//!   initial position.
//! - "Too old": a writeset whose `last_seen` is below the initial position, or whose
//!   `seqno - last_seen` exceeds `cert.max_length` (16384), fails (`do_test`).
//! - A failed writeset records nothing (`do_test_v3to6` only refs keys on success).
//! - Purging: Galera's `purge_trxs_upto(s)` (called with the group's commit cut) forgets
//!   records with seqno <= s: [`Certifier::purge_upto`]. [`Certifier::purge_below`]`(cut)`
//!   forgets seqno < cut.
//! - Statistics: `wsrep_cert_interval` averages `seqno - last_seen - 1` and
//!   `wsrep_cert_deps_distance` averages `seqno - depends_on`, over passed writesets.
//!
//! # Deviations from Galera (deliberate)
//! - **ISOLATION is a barrier too.** Galera only moves `last_pa_unsafe_` on PA_UNSAFE; here a
//!   passed TOI writeset also makes every later writeset depend on it (DESIGN, contract §2.7 as
//!   Trireme reads it). Galera lets a DML writeset on an unrelated table apply while a DDL is
//!   running; Trireme waits. Safer, and DDL is rare.
//! - **Purge is part of the total order and "too old" follows it.** Galera purges each node at
//!   its own pace (bounded by its local safe-to-discard seqno) and silently passes a writeset
//!   whose `last_seen` is below the purged range. Here the purge happens at the same point of
//!   the order on every node (the group's `CommitCut`), and a writeset whose `last_seen` is
//!   below the purged range fails as too old, because the evidence it needs is gone. The commit
//!   cut a node reports must therefore not exceed the lowest `last_seen` of its own writesets
//!   still in flight (what Galera's `deps_set_` does for its local purge bound).
//! - **`depends_on` with no dependencies** is `max(last barrier, purge horizon)`, never -1.
//!   Galera uses (lowest seqno still in its trx map) - 1, or `seqno - 1` when that map is
//!   empty. Both are seqnos already committed on every node; ours needs no trx map.
//! - **A failed writeset's `depends_on`** is computed over all its keys, as if it had passed;
//!   Galera stops at the first conflicting key. It is never applied either way.
//! - **`last_seen >= seqno`** (impossible from an honest node) fails as
//!   [`Verdict::LastSeenAhead`]; Galera only asserts in debug builds.
//! - **IMPLICIT_DEPS** is treated as Galera does (`depends_on >= last_seen`), not as PA-unsafe,
//!   although `WsFlags::is_pa_unsafe` in `types` includes it.
//! - Not implemented: NBO (non-blocking DDL) certification, `pa_range` from the writeset
//!   header, certification protocol versions below 4 (all keys exclusive).
//!
//! Tests: unit tests in each module; `tests/matrix.rs` (one text fixture per matrix row),
//! `tests/behaviour.rs` (TOI, purge, too old, failed writesets, the sharded API), and
//! `tests/model.rs` (the facade with 1, 2, 3 and 7 slices against a naive scan, seeded).

pub mod global;
pub mod input;
pub mod matrix;
pub mod slice;
pub mod snapshot;
pub mod verdict;

pub use global::{CertConfig, CertGlobal, CertStats, DEFAULT_MAX_LENGTH};
pub use input::{CheckInput, Mode};
pub use matrix::{rule, Rule, MATRIX};
pub use slice::{CertSlice, KeyHashBuilder, Partial};
pub use snapshot::{CertSnapshot, SnapshotError, SnapshotRecord};
pub use verdict::{CertError, Verdict};

use trireme_types::{Seqno, Writeset};

/// Certification on one thread: a [`CertGlobal`] and all the [`CertSlice`]s. The runtime uses
/// it when `trireme.shards` is 1; with more slices it gives the same answers, which the model
/// test checks.
#[derive(Debug)]
pub struct Certifier {
    global: CertGlobal,
    slices: Vec<CertSlice>,
    /// Reused for every writeset, so a certify in steady state does not allocate.
    partials: Vec<Partial>,
}

impl Certifier {
    /// A certifier of `shard_count` slices starting after `initial_position` (see
    /// [`CertGlobal::new`]).
    pub fn new(
        shard_count: u32,
        initial_position: Seqno,
        config: CertConfig,
    ) -> Result<Certifier, CertError> {
        let global = CertGlobal::new(shard_count, initial_position, config)?;
        let slices = (0..shard_count)
            .map(|index| CertSlice::new(index, shard_count))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Certifier {
            global,
            slices,
            partials: Vec::with_capacity(shard_count as usize),
        })
    }

    /// Certifies the writeset ordered at `seqno` and, if it passes, records its keys.
    pub fn certify(&mut self, seqno: Seqno, ws: &Writeset) -> Result<Verdict, CertError> {
        self.certify_input(&CheckInput::new(seqno, ws))
    }

    /// Replays a writeset that passed certification elsewhere (IST from a donor) into the index.
    /// Always passes; returns the `depends_on` this node would use to apply it.
    pub fn preload(&mut self, seqno: Seqno, ws: &Writeset) -> Result<Verdict, CertError> {
        self.certify_input(&CheckInput::preload(seqno, ws))
    }

    /// Check, merge, apply over every slice.
    pub fn certify_input(&mut self, input: &CheckInput<'_>) -> Result<Verdict, CertError> {
        self.global.check_next(input.seqno)?;
        self.partials.clear();
        self.partials
            .extend(self.slices.iter().map(|slice| slice.check(input)));
        let verdict = self.global.merge(input, &self.partials)?;
        for slice in &mut self.slices {
            slice.apply(input, &verdict);
        }
        Ok(verdict)
    }

    /// The index as it is now, for a joiner (see [`snapshot`]).
    pub fn export(&self) -> CertSnapshot {
        let mut records = Vec::with_capacity(self.index_size() * 2);
        for slice in &self.slices {
            slice.export_into(&mut records);
        }
        CertSnapshot::from_parts(&self.global, records)
    }

    /// Replaces the whole index with `snapshot` (a joiner after state transfer).
    pub fn import(&mut self, snapshot: &CertSnapshot) {
        self.global.import(snapshot);
        for slice in &mut self.slices {
            slice.import(snapshot);
        }
    }

    /// A configuration change (or any other non-writeset seqno) that every later writeset must
    /// depend on.
    pub fn certify_barrier(&mut self, seqno: Seqno) -> Result<(), CertError> {
        self.global.barrier(seqno)
    }

    /// Forgets every record with seqno <= `commit_cut` (Galera's `purge_trxs_upto`): call it
    /// when the group's `CommitCut` is delivered, at the same point of the order on every node.
    pub fn purge_upto(&mut self, commit_cut: Seqno) {
        self.purge_below(Seqno(commit_cut.0.saturating_add(1)));
    }

    /// Forgets every record with seqno < `cut`.
    pub fn purge_below(&mut self, cut: Seqno) {
        self.global.purge_below(cut);
        for slice in &mut self.slices {
            slice.purge_below(cut);
        }
    }

    /// Starts over after a state transfer to `initial_position`.
    pub fn reset(&mut self, initial_position: Seqno) {
        self.global.reset(initial_position);
        for slice in &mut self.slices {
            slice.clear();
        }
    }

    /// `wsrep_cert_index_size`: distinct keys in the index.
    pub fn index_size(&self) -> usize {
        self.slices.iter().map(CertSlice::key_count).sum()
    }

    pub fn stats(&self) -> CertStats {
        self.global.stats()
    }

    pub fn reset_stats(&mut self) {
        self.global.reset_stats();
    }

    pub fn position(&self) -> Seqno {
        self.global.position()
    }

    pub fn global(&self) -> &CertGlobal {
        &self.global
    }

    pub fn slices(&self) -> &[CertSlice] {
        &self.slices
    }
}
