//! The in-memory raft log plus the applied state machine: raft-rs's `Storage`.
//!
//! There is no durable state (a restarted process is a new member), so "persisting" a
//! `Ready` is appending to this log. The log's first index is always above 1: the initial
//! state is itself a snapshot at index 1, so a node with an empty log (a joiner) is always
//! brought up to date with a snapshot, never by replaying history it has no state for.
//!
//! A snapshot is generated on demand from the applied state machine (`SmState` at the
//! applied index): history, seqno, current view, members with their states. It never carries
//! database state; a joiner reaches the snapshot's seqno by IST or SST.

use crate::state::SmState;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

pub(crate) struct LogStore {
    hard_state: HardState,
    /// Index and term of the entry just before `entries[0]` (the last compacted one).
    base_index: u64,
    base_term: u64,
    /// The configuration at `base_index`, for `initial_state`.
    base_conf: ConfState,
    entries: Vec<Entry>,
    /// The state machine at `sm.applied_index`.
    pub(crate) sm: SmState,
}

impl LogStore {
    /// A store whose log starts after a snapshot at (`index`, `term`) holding `sm`.
    // protobuf messages are built field by field (as raft-rs itself does)
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn from_state(mut sm: SmState, index: u64, term: u64) -> LogStore {
        assert!(index >= 1);
        sm.applied_index = index;
        let mut hard_state = HardState::default();
        hard_state.term = term;
        hard_state.commit = index;
        LogStore {
            hard_state,
            base_index: index,
            base_term: term,
            base_conf: sm.conf_state(),
            entries: Vec::new(),
            sm,
        }
    }

    /// A store for a joiner: nothing at all until the leader's snapshot arrives.
    pub(crate) fn empty(sm: SmState) -> LogStore {
        LogStore {
            hard_state: HardState::default(),
            base_index: 0,
            base_term: 0,
            base_conf: ConfState::default(),
            entries: Vec::new(),
            sm,
        }
    }

    pub(crate) fn first_index(&self) -> u64 {
        self.base_index + 1
    }

    pub(crate) fn last_index(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    pub(crate) fn set_hard_state(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    pub(crate) fn append(&mut self, ents: &[Entry]) {
        let Some(first) = ents.first() else { return };
        assert!(
            first.index > self.base_index,
            "append below the compacted log"
        );
        assert!(
            first.index <= self.last_index() + 1,
            "log must stay contiguous"
        );
        let keep = (first.index - self.first_index()) as usize;
        self.entries.truncate(keep);
        self.entries.extend_from_slice(ents);
        debug_assert!(self
            .entries
            .windows(2)
            .all(|w| w[1].index == w[0].index + 1));
    }

    /// Replaces the log with a snapshot received from the leader; `sm` is its decoded state.
    pub(crate) fn apply_snapshot(&mut self, snap: &Snapshot, mut sm: SmState) {
        let meta = snap.get_metadata();
        assert!(meta.index >= self.base_index);
        sm.applied_index = meta.index;
        self.base_index = meta.index;
        self.base_term = meta.term;
        self.base_conf = meta.get_conf_state().clone();
        self.entries.clear();
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = meta.index;
        self.sm = sm;
    }

    /// Drops entries up to and including `index` (which must be applied).
    pub(crate) fn compact(&mut self, index: u64) {
        let index = index.min(self.sm.applied_index).min(self.last_index());
        if index <= self.base_index {
            return;
        }
        let term = self.term_of(index).expect("compaction index is in the log");
        let drop = (index - self.base_index) as usize;
        self.entries.drain(..drop);
        self.base_index = index;
        self.base_term = term;
        // The configuration at `index` is not tracked separately: initial_state is only read
        // at construction, so `base_conf` is informational from here on.
        self.base_conf = self.sm.conf_state();
    }

    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    fn term_of(&self, idx: u64) -> Option<u64> {
        if idx == self.base_index {
            return Some(self.base_term);
        }
        if idx < self.base_index || idx > self.last_index() {
            return None;
        }
        Some(self.entries[(idx - self.first_index()) as usize].term)
    }
}

impl Storage for LogStore {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState {
            hard_state: self.hard_state.clone(),
            conf_state: self.base_conf.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        assert!(
            high <= self.last_index() + 1,
            "entries({low}, {high}) beyond the log"
        );
        let lo = (low - self.first_index()) as usize;
        let hi = (high - self.first_index()) as usize;
        let mut ents = self.entries[lo..hi].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx < self.base_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        self.term_of(idx)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(LogStore::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(LogStore::last_index(self))
    }

    #[allow(clippy::field_reassign_with_default)]
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let index = self.sm.applied_index;
        if index < request_index || index < self.base_index {
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        let term = self.term_of(index).ok_or(raft::Error::Store(
            StorageError::SnapshotTemporarilyUnavailable,
        ))?;
        let mut meta = SnapshotMetadata::default();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(self.sm.conf_state());
        let mut snap = Snapshot::default();
        snap.set_metadata(meta);
        snap.data = self.sm.encode().into();
        Ok(snap)
    }
}
