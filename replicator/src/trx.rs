//! Local transactions: the state MariaDB's client threads build through append_key /
//! append_data and drive through certify, the commit order and release; and the
//! brute-force abort rules (contract §4.5).
//!
//! A trx lives in the [`TrxRegistry`] from its first append until `release` (for streaming
//! replication, until the fragment that ends it). Its key is the server's trx id; the ws
//! handle's `opaque` only marks "tracked" ([`crate::WsHandle::LOCAL`]), because MariaDB resets
//! `opaque` whenever the trx id changes (`wsrep_ws_handle_for_trx`).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use trireme_runtime::Verdict;
use trireme_types::{KeyHash, KeyType, Seqno, Writeset, WsKey};

/// Where a local trx is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Collecting keys and data; not sent yet.
    Executing,
    /// Sent to the group, waiting for its seqno and verdict.
    Replicating,
    /// Ordered and certified OK; may wait in the commit order.
    Certified,
    /// Inside `commit_order_enter` .. `commit_order_leave`.
    Committing,
    /// Left the commit order.
    Committed,
    /// Ordered but failed certification, or rolled back.
    Aborted,
    /// Being re-applied by `replay_trx` after a BF abort.
    Replaying,
}

/// The answer the delivery side gives a waiting `certify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ordered { seqno: Seqno, verdict: Verdict },
    Failed { reason: String },
}

pub struct TrxState {
    pub phase: Phase,
    keys: Vec<WsKey>,
    key_index: HashMap<KeyHash, usize>,
    data: Vec<u8>,
    /// Set by a brute-force abort; checked by every wait of this trx.
    pub must_abort: bool,
    /// A `certify` (or TOI) is waiting for the outcome of its proposal, and none was
    /// recorded yet. The first outcome wins; see `LocalTrx::complete`.
    awaiting: bool,
    pub outcome: Option<Outcome>,
    /// The last writeset sent (kept for replay and for the stats of the fragment).
    pub writeset: Option<Arc<Writeset>>,
    pub seqno: Seqno,
    pub depends_on: Seqno,
    /// Flags of the last certified fragment: without TRX_END the trx continues (streaming).
    pub last_flags: u32,
    /// Key and data bytes appended since the last fragment (for `repl_*_bytes`).
    pub key_bytes: u64,
}

pub struct LocalTrx {
    pub trx_id: u64,
    state: Mutex<TrxState>,
    changed: Condvar,
}

impl LocalTrx {
    fn new(trx_id: u64) -> LocalTrx {
        LocalTrx {
            trx_id,
            state: Mutex::new(TrxState {
                phase: Phase::Executing,
                keys: Vec::new(),
                key_index: HashMap::new(),
                data: Vec::new(),
                must_abort: false,
                awaiting: false,
                outcome: None,
                writeset: None,
                seqno: Seqno::UNDEFINED,
                depends_on: Seqno::UNDEFINED,
                last_flags: 0,
                key_bytes: 0,
            }),
            changed: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, TrxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Cheap check used as the interrupt of commit-order waits.
    pub fn must_abort(&self) -> bool {
        self.lock().must_abort
    }

    /// Records the ordering outcome and wakes the waiting `certify`, if it still waits for
    /// one: the first outcome wins. `false` means the trx is no longer waiting (a disconnect
    /// already failed it, or it was ordered), and the caller must deal with the outcome
    /// itself: a writeset delivered after its client gave up is applied like a remote one,
    /// or its seqno would never leave the commit order.
    pub fn complete(&self, outcome: Outcome) -> bool {
        {
            let mut st = self.lock();
            if !st.awaiting {
                return false;
            }
            st.awaiting = false;
            st.outcome = Some(outcome);
        }
        // Signalled after the unlock: a waiter woken under the lock would only block again
        // on the mutex (a second sleep and wake on the commit path).
        self.changed.notify_all();
        true
    }

    /// Blocks until the ordering outcome arrives.
    pub fn wait_outcome(&self) -> Outcome {
        let mut st = self.lock();
        loop {
            if let Some(outcome) = st.outcome.take() {
                return outcome;
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl TrxState {
    /// A proposal of this trx goes out: its outcome is awaited.
    pub fn start_replicating(&mut self) {
        self.phase = Phase::Replicating;
        self.outcome = None;
        self.awaiting = true;
    }

    /// Adds a key and its implicit shared prefixes (contract §2.6), keeping the strongest
    /// type per hash. `hashes` are the prefix hashes from `trireme_types::key_hashes`.
    pub fn add_key(&mut self, hashes: &[KeyHash], kind: KeyType, raw_len: usize) {
        let last = hashes.len().saturating_sub(1);
        for (i, hash) in hashes.iter().enumerate() {
            let kind = if i == last { kind } else { KeyType::Shared };
            match self.key_index.get(hash) {
                Some(&at) => {
                    if kind as u8 > self.keys[at].kind {
                        self.keys[at].kind = kind as u8;
                    }
                }
                None => {
                    self.key_index.insert(*hash, self.keys.len());
                    self.keys.push(WsKey {
                        hash: *hash,
                        kind: kind as u8,
                    });
                }
            }
        }
        self.key_bytes += raw_len as u64;
    }

    pub fn append_data(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    pub fn data_len(&self) -> usize {
        self.data.len()
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Moves the collected keys and data out for a writeset (a fragment starts empty).
    pub fn take_contents(&mut self) -> (Vec<WsKey>, Vec<u8>) {
        self.key_index.clear();
        self.key_bytes = 0;
        (
            std::mem::take(&mut self.keys),
            std::mem::take(&mut self.data),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.data.is_empty()
    }
}

const REGISTRY_SHARDS: usize = 16;

/// Every tracked local trx by server trx id. Sharded to keep client threads from
/// contending on one lock.
pub struct TrxRegistry {
    shards: Vec<Mutex<HashMap<u64, Arc<LocalTrx>>>>,
}

impl Default for TrxRegistry {
    fn default() -> Self {
        TrxRegistry {
            shards: (0..REGISTRY_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
        }
    }
}

impl TrxRegistry {
    fn shard(&self, trx_id: u64) -> MutexGuard<'_, HashMap<u64, Arc<LocalTrx>>> {
        let index = (trx_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 60) as usize % REGISTRY_SHARDS;
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, trx_id: u64) -> Option<Arc<LocalTrx>> {
        self.shard(trx_id).get(&trx_id).cloned()
    }

    pub fn get_or_create(&self, trx_id: u64) -> Arc<LocalTrx> {
        self.shard(trx_id)
            .entry(trx_id)
            .or_insert_with(|| Arc::new(LocalTrx::new(trx_id)))
            .clone()
    }

    pub fn remove(&self, trx_id: u64) -> Option<Arc<LocalTrx>> {
        self.shard(trx_id).remove(&trx_id)
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes every waiting trx (used on disconnect so that waits end).
    pub fn fail_all_replicating(&self, reason: &str) {
        for shard in &self.shards {
            let trxs: Vec<Arc<LocalTrx>> = shard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .cloned()
                .collect();
            for trx in trxs {
                // Only a trx still waiting is failed; if its writeset is delivered after all,
                // the delivery applies it like a remote one.
                trx.complete(Outcome::Failed {
                    reason: reason.to_string(),
                });
            }
        }
    }
}

/// The answer to `abort_certification` (contract §4.5): whether the victim was marked, and
/// its seqno if it has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbortAnswer {
    /// Marked (or unknown / idle): the server may abort it.
    Aborted { victim_seqno: Seqno },
    /// The victim is ordered before the aborter or already committing: the aborter waits.
    NotAllowed { victim_seqno: Seqno },
}

/// Decides a brute-force abort of `trx` by an ordered thread holding `bf_seqno`.
pub fn bf_abort(trx: &LocalTrx, bf_seqno: Seqno) -> AbortAnswer {
    let mut st = trx.lock();
    let answer = match st.phase {
        Phase::Executing | Phase::Replicating => {
            st.must_abort = true;
            AbortAnswer::Aborted {
                victim_seqno: Seqno::UNDEFINED,
            }
        }
        Phase::Certified => {
            if bf_seqno.is_defined() && st.seqno < bf_seqno {
                AbortAnswer::NotAllowed {
                    victim_seqno: st.seqno,
                }
            } else {
                st.must_abort = true;
                AbortAnswer::Aborted {
                    victim_seqno: st.seqno,
                }
            }
        }
        Phase::Committing | Phase::Committed | Phase::Aborted | Phase::Replaying => {
            AbortAnswer::NotAllowed {
                victim_seqno: st.seqno,
            }
        }
    };
    drop(st);
    trx.changed.notify_all();
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_types::key_hashes;

    #[test]
    fn the_first_outcome_wins_and_a_late_delivery_is_refused() {
        let registry = TrxRegistry::default();
        let trx = registry.get_or_create(9);
        let ordered = Outcome::Ordered {
            seqno: Seqno(5),
            verdict: Verdict::Pass {
                depends_on: Seqno(4),
            },
        };
        // Nothing is awaited before a proposal goes out.
        assert!(!trx.complete(ordered.clone()));
        trx.lock().start_replicating();
        // A disconnect fails the waiting trx; its writeset delivered afterwards is refused,
        // so the delivery side applies it (its seqno must leave the order somewhere).
        registry.fail_all_replicating("provider disconnecting");
        assert!(!trx.complete(ordered.clone()));
        assert!(matches!(trx.wait_outcome(), Outcome::Failed { .. }));
        // The next fragment awaits again, and an ordering now reaches the waiter once.
        trx.lock().start_replicating();
        assert!(trx.complete(ordered.clone()));
        registry.fail_all_replicating("provider disconnecting");
        assert_eq!(trx.wait_outcome(), ordered);
    }

    #[test]
    fn keys_add_shared_prefixes_and_keep_the_strongest_type() {
        let registry = TrxRegistry::default();
        let trx = registry.get_or_create(7);
        let mut st = trx.lock();
        st.add_key(
            &key_hashes(&[b"db", b"t", b"\x00\x01"]),
            KeyType::Exclusive,
            6,
        );
        st.add_key(&key_hashes(&[b"db", b"t", b"\x00\x02"]), KeyType::Update, 6);
        st.add_key(&key_hashes(&[b"db", b"t"]), KeyType::Exclusive, 4);
        // db (shared), db.t (raised to exclusive by the TOI-style key), two rows.
        assert_eq!(st.key_count(), 4);
        let (keys, _) = st.take_contents();
        let table = key_hashes(&[b"db", b"t"])[1];
        let db = key_hashes(&[b"db"])[0];
        assert_eq!(
            keys.iter().find(|k| k.hash == table).unwrap().key_type(),
            KeyType::Exclusive
        );
        assert_eq!(
            keys.iter().find(|k| k.hash == db).unwrap().key_type(),
            KeyType::Shared
        );
        assert!(st.is_empty());
    }

    #[test]
    fn unknown_or_executing_victims_are_aborted_without_a_seqno() {
        let registry = TrxRegistry::default();
        let trx = registry.get_or_create(1);
        assert_eq!(
            bf_abort(&trx, Seqno(10)),
            AbortAnswer::Aborted {
                victim_seqno: Seqno::UNDEFINED
            }
        );
        assert!(trx.must_abort());
    }

    #[test]
    fn a_victim_ordered_before_the_aborter_is_not_aborted() {
        let registry = TrxRegistry::default();
        let trx = registry.get_or_create(1);
        {
            let mut st = trx.lock();
            st.phase = Phase::Certified;
            st.seqno = Seqno(5);
        }
        assert_eq!(
            bf_abort(&trx, Seqno(9)),
            AbortAnswer::NotAllowed {
                victim_seqno: Seqno(5)
            }
        );
        assert!(!trx.must_abort());
        assert_eq!(
            bf_abort(&trx, Seqno(3)),
            AbortAnswer::Aborted {
                victim_seqno: Seqno(5)
            }
        );
        assert!(trx.must_abort());
    }

    #[test]
    fn committing_victims_are_never_aborted() {
        let registry = TrxRegistry::default();
        let trx = registry.get_or_create(1);
        trx.lock().phase = Phase::Committing;
        trx.lock().seqno = Seqno(12);
        assert_eq!(
            bf_abort(&trx, Seqno(20)),
            AbortAnswer::NotAllowed {
                victim_seqno: Seqno(12)
            }
        );
    }
}
