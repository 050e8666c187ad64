//! The commit order and the apply order (Galera's monitors, contract §4.4).
//!
//! One watermark drives both: `last_committed` is the highest seqno such that every seqno at
//! or below it has *left* (committed, been skipped after a certification failure, or been
//! released by its owner). Seqnos may leave out of order (a failed remote writeset leaves at
//! once); they are kept in `ahead` until the watermark reaches them.
//!
//! - Apply order: a writeset may start applying once `last_committed >= depends_on`.
//! - Commit order: seqno `s` may commit once `last_committed == s - 1`.
//! - Pause (FTWRL, SST donor): nothing new is dispatched past the gate in `gate.rs`; here we
//!   only wait for the watermark to drain up to the dispatched position.
//!
//! Waits are interruptible: a brute-force abort wakes the waiters and each re-checks its own
//! trx. The lock is held only for watermark arithmetic, never across a callback.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use trireme_types::Seqno;

/// Why a wait ended without its condition becoming true.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitEnd {
    /// The caller's interrupt check fired (e.g. its trx was BF-aborted).
    Interrupted,
    TimedOut,
    /// The order was reset (disconnect, new history): the seqno no longer means anything.
    Reset,
}

struct State {
    last_committed: Seqno,
    ahead: BTreeSet<i64>,
    /// Bumped by `reset` so that waiters from an older epoch give up.
    epoch: u64,
    /// Threads blocked in a wait right now (`wsrep_apply_waits`-style visibility, and tests).
    waiting: usize,
}

pub struct Orders {
    state: Mutex<State>,
    changed: Condvar,
    /// Lock-free copy of `last_committed` for statistics and `last_seen`.
    last_committed: AtomicI64,
}

impl Default for Orders {
    fn default() -> Self {
        Self::new(Seqno::UNDEFINED)
    }
}

impl Orders {
    pub fn new(position: Seqno) -> Orders {
        Orders {
            state: Mutex::new(State {
                last_committed: position,
                ahead: BTreeSet::new(),
                epoch: 0,
                waiting: 0,
            }),
            changed: Condvar::new(),
            last_committed: AtomicI64::new(position.0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere while holding it; the state itself is
        // plain data and still consistent, so carry on rather than poison the server.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn last_committed(&self) -> Seqno {
        Seqno(self.last_committed.load(Ordering::Acquire))
    }

    /// Sets the watermark to a new position (connect, state transfer, new history) and
    /// wakes every waiter so that stale ones give up.
    pub fn reset(&self, position: Seqno) {
        let mut st = self.lock();
        st.last_committed = position;
        st.ahead.clear();
        st.epoch += 1;
        self.last_committed.store(position.0, Ordering::Release);
        self.changed.notify_all();
    }

    /// Marks `seqno` as left. Idempotent; seqnos at or below the watermark are ignored.
    /// Returns the new watermark.
    pub fn leave(&self, seqno: Seqno) -> Seqno {
        let mut st = self.lock();
        if seqno <= st.last_committed {
            return st.last_committed;
        }
        st.ahead.insert(seqno.0);
        let mut advanced = false;
        loop {
            let next = st.last_committed.0 + 1;
            if !st.ahead.remove(&next) {
                break;
            }
            st.last_committed = st.last_committed.next();
            advanced = true;
        }
        if advanced {
            self.last_committed
                .store(st.last_committed.0, Ordering::Release);
            self.changed.notify_all();
        }
        st.last_committed
    }

    /// Has `seqno` left (at or below the watermark, or left ahead of it)?
    pub fn has_left(&self, seqno: Seqno) -> bool {
        let st = self.lock();
        seqno <= st.last_committed || st.ahead.contains(&seqno.0)
    }

    /// How many threads are blocked in a wait.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Wakes every waiter so that interrupt checks run (BF abort, shutdown).
    pub fn poke(&self) {
        let _st = self.lock();
        self.changed.notify_all();
    }

    /// Waits until every seqno up to `target` has left.
    pub fn wait_committed(
        &self,
        target: Seqno,
        timeout: Option<Duration>,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(), WaitEnd> {
        self.wait_for(|st| st.last_committed >= target, timeout, interrupt)
    }

    /// Waits for the commit turn of `seqno`: everything before it has left.
    pub fn wait_commit_turn(
        &self,
        seqno: Seqno,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(), WaitEnd> {
        self.wait_for(|st| st.last_committed >= seqno.prev(), None, interrupt)
    }

    fn wait_for(
        &self,
        ready: impl Fn(&State) -> bool,
        timeout: Option<Duration>,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(), WaitEnd> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.lock();
        let epoch = st.epoch;
        loop {
            if st.epoch != epoch {
                return Err(WaitEnd::Reset);
            }
            if ready(&st) {
                return Ok(());
            }
            if interrupt() {
                return Err(WaitEnd::Interrupted);
            }
            let remaining = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(WaitEnd::TimedOut);
                    }
                    Some(deadline - now)
                }
            };
            st.waiting += 1;
            st = match remaining {
                None => self.changed.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    self.changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            st.waiting -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn watermark_advances_only_over_contiguous_leaves() {
        let orders = Orders::new(Seqno(10));
        assert_eq!(orders.leave(Seqno(12)), Seqno(10));
        assert!(orders.has_left(Seqno(12)));
        assert!(!orders.has_left(Seqno(11)));
        assert_eq!(orders.leave(Seqno(11)), Seqno(12));
        assert_eq!(orders.last_committed(), Seqno(12));
        // Leaving twice, or leaving something old, changes nothing.
        assert_eq!(orders.leave(Seqno(12)), Seqno(12));
        assert_eq!(orders.leave(Seqno(3)), Seqno(12));
    }

    #[test]
    fn commit_turn_waits_for_the_previous_seqno() {
        let orders = Arc::new(Orders::new(Seqno(0)));
        let waiter = {
            let orders = orders.clone();
            std::thread::spawn(move || orders.wait_commit_turn(Seqno(3), &|| false))
        };
        while orders.waiting() == 0 {
            std::thread::yield_now();
        }
        orders.leave(Seqno(2));
        // The waiter was woken by the leave of 2 and must go back to waiting for 1.
        while orders.waiting() == 0 {
            std::thread::yield_now();
        }
        assert!(!waiter.is_finished(), "seqno 1 has not left yet");
        orders.leave(Seqno(1));
        assert_eq!(waiter.join().unwrap(), Ok(()));
    }

    #[test]
    fn interrupt_and_reset_end_a_wait() {
        let orders = Arc::new(Orders::new(Seqno(0)));
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let waiter = {
            let (orders, flag) = (orders.clone(), flag.clone());
            std::thread::spawn(move || {
                orders.wait_commit_turn(Seqno(5), &|| flag.load(Ordering::SeqCst))
            })
        };
        while orders.waiting() == 0 {
            std::thread::yield_now();
        }
        flag.store(true, Ordering::SeqCst);
        orders.poke();
        assert_eq!(waiter.join().unwrap(), Err(WaitEnd::Interrupted));

        let waiter = {
            let orders = orders.clone();
            std::thread::spawn(move || orders.wait_committed(Seqno(9), None, &|| false))
        };
        while orders.waiting() == 0 {
            std::thread::yield_now();
        }
        orders.reset(Seqno(0));
        assert_eq!(waiter.join().unwrap(), Err(WaitEnd::Reset));
    }

    #[test]
    fn wait_times_out() {
        let orders = Orders::new(Seqno(0));
        assert_eq!(
            orders.wait_committed(Seqno(1), Some(Duration::from_millis(5)), &|| false),
            Err(WaitEnd::TimedOut)
        );
    }
}
