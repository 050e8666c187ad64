//! [`CertSlice`]: one shard's part of the certification index, and its [`Partial`] verdicts.
//!
//! A slice owns the keys whose `KeyHash::shard(shard_count)` equals its index. For each key it
//! keeps one slot per key type holding the *latest* passed writeset that recorded the key with
//! that type (seqno, source node, whether it was TOI), as Galera's `KeyEntryNG` does. Older
//! records of the same key and type are forgotten when overwritten; Galera relies on the same
//! thing (the newer record passed certification against the older one, or came from the same
//! node).
//!
//! Hot path: [`CertSlice::check`] (read only, allocation free) then, once the merged verdict is
//! known, [`CertSlice::apply`] (one hash-map probe and one log push per owned key).
//!
//! Invariants:
//! - `check` never mutates; `apply` records nothing for a failed verdict, so a failed writeset
//!   leaves no trace in the index.
//! - A slot only moves forward in seqno.
//! - `log` lists every record in the order `apply` made it, which is seqno order when the caller
//!   applies writesets in total order (the contract of this type); `purge_below` pops it from
//!   the front, so a purge costs O(records purged), not O(index).
//! - No iteration order of the hash map influences any result: the map is only probed by key,
//!   and keyed by the 128-bit key hash itself (no per-process seed, see [`KeyHashBuilder`]).
//!
//! Tests: unit tests below; behaviour in `tests/behaviour.rs`; the model check in
//! `tests/model.rs` runs 1, 2, 3 and 7 slices against a naive scan.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use trireme_types::{KeyHash, NodeId, Seqno};

use crate::input::{CheckInput, Mode};
use crate::matrix::{rule, Rule, SLOT_ORDER};
use crate::verdict::{CertError, Verdict};

/// The latest writeset that recorded a key with one type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Holder {
    seqno: Seqno,
    source: NodeId,
    toi: bool,
}

/// One key's slots, indexed by `KeyType::index`.
#[derive(Clone, Copy, Default, Debug)]
struct Entry {
    slots: [Option<Holder>; 4],
}

impl Entry {
    fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }
}

/// A conflict found by one slice: the key's position in the writeset's key list decides which
/// of several conflicts is reported, whichever slice found it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ConflictAt {
    pub(crate) position: usize,
    pub(crate) key: KeyHash,
    pub(crate) with_seqno: Seqno,
}

/// One slice's contribution to a writeset's verdict. Small and `Copy`, so it can be sent back
/// to the ordering thread.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Partial {
    pub(crate) slice: u32,
    pub(crate) seqno: Seqno,
    /// The highest seqno this slice's keys depend on (`Seqno::UNDEFINED` if none).
    pub(crate) depends_on: Seqno,
    pub(crate) conflict: Option<ConflictAt>,
}

impl Partial {
    /// What a slice that owns none of a writeset's keys answers, without asking it: the ordering
    /// thread uses it to skip a round trip to slices a writeset does not touch.
    pub fn empty(slice: u32, seqno: Seqno) -> Partial {
        Partial {
            slice,
            seqno,
            depends_on: Seqno::UNDEFINED,
            conflict: None,
        }
    }

    /// The slice that produced it.
    pub fn slice(&self) -> u32 {
        self.slice
    }

    /// The writeset it is about.
    pub fn seqno(&self) -> Seqno {
        self.seqno
    }

    /// The highest dependency found on this slice's keys (`Seqno::UNDEFINED` if none).
    pub fn key_depends_on(&self) -> Seqno {
        self.depends_on
    }

    /// Whether this slice found a conflict.
    pub fn has_conflict(&self) -> bool {
        self.conflict.is_some()
    }
}

/// A hasher for [`KeyHash`] keys that passes the hash through: the key already is a good
/// 128-bit hash, and a seedless hasher keeps the map free of per-process state. It uses the high
/// 64 bits because the low ones choose the shard, so inside one slice they are correlated.
#[derive(Clone, Copy, Default, Debug)]
pub struct KeyHashHasher(u64);

impl Hasher for KeyHashHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = (value >> 64) as u64;
    }

    /// Only reached if `KeyHash`'s `Hash` impl changes; folds the bytes so the map still works.
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(23) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
}

/// Builds [`KeyHashHasher`]s (no seed).
#[derive(Clone, Copy, Default, Debug)]
pub struct KeyHashBuilder;

impl BuildHasher for KeyHashBuilder {
    type Hasher = KeyHashHasher;

    fn build_hasher(&self) -> KeyHashHasher {
        KeyHashHasher::default()
    }
}

/// One shard's slice of the certification index. `Send`; meant to be owned and used by one
/// thread (the runtime's shard), with writesets applied in total order.
#[derive(Debug)]
pub struct CertSlice {
    index: u32,
    shard_count: u32,
    /// `shard_count - 1` when it is a power of two: `owns` then masks instead of dividing
    /// (same answer as `KeyHash::shard`, checked by a test).
    shard_mask: Option<u64>,
    keys: HashMap<KeyHash, Entry, KeyHashBuilder>,
    /// (seqno, key) of every record made, oldest first, for purging.
    log: VecDeque<(Seqno, KeyHash)>,
}

/// Writesets with more keys than this reserve index room for all of them at once.
const BULK_KEYS: usize = 4096;

impl CertSlice {
    /// Slice `index` of `shard_count`.
    pub fn new(index: u32, shard_count: u32) -> Result<CertSlice, CertError> {
        if shard_count == 0 {
            return Err(CertError::NoSlices);
        }
        if index >= shard_count {
            return Err(CertError::SliceOutOfRange { index, shard_count });
        }
        Ok(CertSlice {
            index,
            shard_count,
            shard_mask: shard_count
                .is_power_of_two()
                .then(|| u64::from(shard_count) - 1),
            keys: HashMap::with_hasher(KeyHashBuilder),
            log: VecDeque::new(),
        })
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    pub fn shard_count(&self) -> u32 {
        self.shard_count
    }

    /// Does this slice own `key`?
    pub fn owns(&self, key: KeyHash) -> bool {
        match self.shard_mask {
            Some(mask) => (key.0 as u64) & mask == u64::from(self.index),
            None => key.shard(self.shard_count) == self.index,
        }
    }

    /// Number of distinct keys this slice holds (its part of `wsrep_cert_index_size`).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Certifies the keys of `input` this slice owns against its records. Reads only.
    ///
    /// Contract §2.7: for each owned key of type `t` and each recorded slot `p` of that key, the
    /// matrix cell decides. A `C` cell is a conflict when the record is after `last_seen` and
    /// from another node or TOI; otherwise it is a dependency, like a `D` cell. TOI writesets
    /// are not certified against the index at all (Galera `certify_v3to6`); their
    /// `depends_on` is `seqno - 1` anyway. Preloaded writesets never conflict.
    pub fn check(&self, input: &CheckInput<'_>) -> Partial {
        let mut partial = Partial {
            slice: self.index,
            seqno: input.seqno,
            depends_on: Seqno::UNDEFINED,
            conflict: None,
        };
        if input.is_toi() || self.keys.is_empty() {
            return partial;
        }
        let may_conflict = input.mode == Mode::Certify;
        for (position, key) in input.keys.iter().enumerate() {
            if !self.owns(key.hash) {
                continue;
            }
            let Some(entry) = self.keys.get(&key.hash) else {
                continue;
            };
            let t = key.key_type();
            for p in SLOT_ORDER {
                let Some(holder) = entry.slots[p.index()] else {
                    continue;
                };
                match rule(p, t) {
                    Rule::Nothing => continue,
                    Rule::Dependency => {}
                    Rule::Conflict => {
                        let concurrent = holder.seqno > input.last_seen;
                        let foreign = holder.toi || holder.source != input.source;
                        if may_conflict && concurrent && foreign && partial.conflict.is_none() {
                            partial.conflict = Some(ConflictAt {
                                position,
                                key: key.hash,
                                with_seqno: holder.seqno,
                            });
                        }
                    }
                }
                partial.depends_on = partial.depends_on.max(holder.seqno);
            }
        }
        partial
    }

    /// Records the owned keys of `input` if `verdict` passed; does nothing otherwise. Call it
    /// for every writeset in total order, after the merged verdict is known.
    pub fn apply(&mut self, input: &CheckInput<'_>, verdict: &Verdict) {
        if !verdict.is_pass() {
            return;
        }
        let holder = Holder {
            seqno: input.seqno,
            source: input.source,
            toi: input.is_toi(),
        };
        if input.keys.len() > BULK_KEYS {
            // A bulk writeset (a million-row transaction): grow the index once, not by
            // doubling, each step of which copies it into fresh pages.
            self.keys
                .reserve(input.keys.len() / self.shard_count as usize);
            self.log
                .reserve(input.keys.len() / self.shard_count as usize);
        }
        for key in input.keys {
            if !self.owns(key.hash) {
                continue;
            }
            let entry = self.keys.entry(key.hash).or_default();
            let slot = &mut entry.slots[key.key_type().index()];
            if slot.is_none_or(|old| old.seqno < holder.seqno) {
                *slot = Some(holder);
            }
            self.log.push_back((holder.seqno, key.hash));
        }
    }

    /// Forgets every record with seqno < `cut` (Galera's `purge_trxs_upto(cut - 1)`).
    pub fn purge_below(&mut self, cut: Seqno) {
        while let Some(&(seqno, hash)) = self.log.front() {
            if seqno >= cut {
                break;
            }
            self.log.pop_front();
            let Some(entry) = self.keys.get_mut(&hash) else {
                continue; // already emptied by an earlier log record of the same key
            };
            for slot in &mut entry.slots {
                if slot.is_some_and(|holder| holder.seqno < cut) {
                    *slot = None;
                }
            }
            if entry.is_empty() {
                self.keys.remove(&hash);
            }
        }
    }

    /// Calls `f(key, kind, seqno, source, toi)` for every occupied slot.
    pub(crate) fn for_each_slot(&self, mut f: impl FnMut(KeyHash, u8, Seqno, NodeId, bool)) {
        for (key, entry) in &self.keys {
            for (kind, slot) in entry.slots.iter().enumerate() {
                if let Some(h) = slot {
                    f(*key, kind as u8, h.seqno, h.source, h.toi);
                }
            }
        }
    }

    /// Restores one slot (import); records must come in seqno order to keep the log sorted.
    pub(crate) fn restore_slot(
        &mut self,
        key: KeyHash,
        kind: u8,
        seqno: Seqno,
        source: NodeId,
        toi: bool,
    ) {
        let entry = self.keys.entry(key).or_default();
        if let Some(slot) = entry.slots.get_mut(usize::from(kind)) {
            *slot = Some(Holder { seqno, source, toi });
            self.log.push_back((seqno, key));
        }
    }

    /// Forgets everything (a new initial position after a state transfer). Keeps capacity.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.log.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_types::{KeyType, Uuid, WsFlags, WsKey};

    fn node(n: u8) -> NodeId {
        NodeId(Uuid([n; 16]))
    }

    fn input(seqno: i64, source: u8, last_seen: i64, keys: &[WsKey]) -> CheckInput<'_> {
        CheckInput {
            seqno: Seqno(seqno),
            source: node(source),
            last_seen: Seqno(last_seen),
            flags: WsFlags(WsFlags::TRX_START | WsFlags::TRX_END),
            keys,
            mode: Mode::Certify,
        }
    }

    fn key(hash: u128, kind: KeyType) -> WsKey {
        WsKey {
            hash: KeyHash(hash),
            kind: kind as u8,
        }
    }

    const PASS: Verdict = Verdict::Pass {
        depends_on: Seqno(0),
    };

    #[test]
    fn a_slice_owning_none_of_the_keys_answers_exactly_the_empty_partial() {
        let mut slice = CertSlice::new(1, 2).unwrap();
        // Keys owned by slice 0 only (even low bits), recorded once so the index is not empty.
        let keys = [key(2, KeyType::Exclusive), key(4, KeyType::Update)];
        slice.apply(&input(1, 1, 0, &keys), &PASS);
        let partial = slice.check(&input(2, 2, 0, &keys));
        assert_eq!(partial, Partial::empty(1, Seqno(2)));
        // A key it does own makes the answer differ once that key has a record.
        let owned = [key(3, KeyType::Exclusive)];
        slice.apply(&input(3, 1, 0, &owned), &PASS);
        assert_ne!(
            slice.check(&input(4, 2, 0, &owned)),
            Partial::empty(1, Seqno(4))
        );
    }

    #[test]
    fn slice_constructor_refuses_bad_indices() {
        assert_eq!(CertSlice::new(0, 0).unwrap_err(), CertError::NoSlices);
        assert_eq!(
            CertSlice::new(3, 3).unwrap_err(),
            CertError::SliceOutOfRange {
                index: 3,
                shard_count: 3
            }
        );
    }

    #[test]
    fn slice_ignores_keys_it_does_not_own() {
        let mut slice = CertSlice::new(1, 2).unwrap();
        let keys = [key(2, KeyType::Exclusive), key(3, KeyType::Exclusive)];
        slice.apply(&input(1, 1, 0, &keys), &PASS);
        assert_eq!(
            slice.key_count(),
            1,
            "only the odd hash belongs to slice 1 of 2"
        );
        let later = [key(2, KeyType::Exclusive)];
        assert!(!slice.check(&input(2, 2, 0, &later)).has_conflict());
    }

    #[test]
    fn ownership_agrees_with_key_hash_shard_for_every_shard_count() {
        let mut x: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        for shard_count in 1..=16u32 {
            let slices: Vec<CertSlice> = (0..shard_count)
                .map(|i| CertSlice::new(i, shard_count).unwrap())
                .collect();
            for _ in 0..200 {
                x = x
                    .wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15)
                    .wrapping_add(1);
                let key = KeyHash(x);
                for slice in &slices {
                    assert_eq!(slice.owns(key), key.shard(shard_count) == slice.index());
                }
            }
        }
    }

    #[test]
    fn purge_clears_only_slots_older_than_the_cut() {
        let mut slice = CertSlice::new(0, 1).unwrap();
        slice.apply(&input(1, 1, 0, &[key(7, KeyType::Exclusive)]), &PASS);
        slice.apply(&input(2, 1, 1, &[key(7, KeyType::Shared)]), &PASS);
        slice.purge_below(Seqno(2));
        assert_eq!(
            slice.key_count(),
            1,
            "the shared record of seqno 2 survives"
        );
        let probe = [key(7, KeyType::Exclusive)];
        let partial = slice.check(&input(3, 2, 0, &probe));
        assert!(
            !partial.has_conflict(),
            "EX record of seqno 1 is gone; SH vs EX is D"
        );
        assert_eq!(partial.key_depends_on(), Seqno(2));
        slice.purge_below(Seqno(3));
        assert_eq!(slice.key_count(), 0);
    }

    #[test]
    fn hasher_uses_the_high_half_of_the_key_hash() {
        let mut a = KeyHashBuilder.build_hasher();
        std::hash::Hash::hash(&KeyHash(0xdead_beef_u128 << 64 | 5), &mut a);
        assert_eq!(a.finish(), 0xdead_beef);
    }
}
