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
//!
//! Wake-ups are targeted: a waiter sleeps on the condition variable of the slot its target
//! seqno hashes to, and an advance of the watermark wakes only the slots of the seqnos it
//! passed, and only slots with a sleeper. With 8 clients queued in the commit order, one
//! commit used to wake all of them (each wake costs tens of microseconds of CPU on a small
//! VM); now it wakes the next one. `reset` and `poke` still wake everybody.

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

/// Condition variables waiters are spread over, by target seqno.
const SLOTS: usize = 16;

fn slot_of(target: Seqno) -> usize {
    target.0.rem_euclid(SLOTS as i64) as usize
}

struct State {
    last_committed: Seqno,
    ahead: BTreeSet<i64>,
    /// Bumped by `reset` and `close` so that waiters from an older epoch give up.
    epoch: u64,
    /// Closed at the final view: nothing more will leave, so a wait for a seqno beyond the
    /// watermark ends at once instead of blocking a thread (and the shutdown) for ever.
    closed: bool,
    /// Threads blocked in a wait right now (`wsrep_apply_waits`-style visibility, and tests).
    waiting: usize,
    /// Sleepers per slot: a slot nobody sleeps on is not signalled (a signal is a syscall).
    slot_waiting: [usize; SLOTS],
}

pub struct Orders {
    state: Mutex<State>,
    /// One per slot; all are used with `state`.
    changed: [Condvar; SLOTS],
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
                closed: false,
                waiting: 0,
                slot_waiting: [0; SLOTS],
            }),
            changed: std::array::from_fn(|_| Condvar::new()),
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
        st.closed = false;
        self.last_committed.store(position.0, Ordering::Release);
        drop(st);
        self.wake_all();
    }

    /// The final view: the position stays, every waiter gives up, and so does every later
    /// wait that the watermark does not already satisfy (until the next `reset`).
    pub fn close(&self) {
        let mut st = self.lock();
        st.epoch += 1;
        st.closed = true;
        drop(st);
        self.wake_all();
    }

    fn wake_all(&self) {
        for cv in &self.changed {
            cv.notify_all();
        }
    }

    /// Marks `seqno` as left. Idempotent; seqnos at or below the watermark are ignored.
    /// Returns the new watermark.
    pub fn leave(&self, seqno: Seqno) -> Seqno {
        let mut st = self.lock();
        if seqno <= st.last_committed {
            return st.last_committed;
        }
        st.ahead.insert(seqno.0);
        let from = st.last_committed;
        loop {
            let next = st.last_committed.0 + 1;
            if !st.ahead.remove(&next) {
                break;
            }
            st.last_committed = st.last_committed.next();
        }
        let to = st.last_committed;
        if to == from {
            return to;
        }
        self.last_committed.store(to.0, Ordering::Release);
        if st.waiting == 0 {
            return to;
        }
        // The slots of every seqno passed (all of them once the advance spans every slot).
        let mut wake = [false; SLOTS];
        let passed = (to.0 - from.0).min(SLOTS as i64);
        for k in 0..passed {
            let slot = slot_of(Seqno(to.0 - k));
            wake[slot] = st.slot_waiting[slot] > 0;
        }
        drop(st);
        for (slot, cv) in self.changed.iter().enumerate() {
            if wake[slot] {
                cv.notify_all();
            }
        }
        to
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
        drop(self.lock());
        self.wake_all();
    }

    /// Waits until every seqno up to `target` has left.
    pub fn wait_committed(
        &self,
        target: Seqno,
        timeout: Option<Duration>,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(), WaitEnd> {
        self.wait_for(target, timeout, interrupt)
    }

    /// Waits for the commit turn of `seqno`: everything before it has left.
    pub fn wait_commit_turn(
        &self,
        seqno: Seqno,
        interrupt: &dyn Fn() -> bool,
    ) -> Result<(), WaitEnd> {
        self.wait_for(seqno.prev(), None, interrupt)
    }

    /// Waits until the watermark reaches `target`.
    fn wait_for(
        &self,
        target: Seqno,
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
            if st.last_committed >= target {
                return Ok(());
            }
            if st.closed {
                return Err(WaitEnd::Reset);
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
            let slot = slot_of(target);
            let cv = &self.changed[slot];
            st.waiting += 1;
            st.slot_waiting[slot] += 1;
            st = match remaining {
                None => cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    cv.wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            st.waiting -= 1;
            st.slot_waiting[slot] -= 1;
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
    fn a_closed_order_ends_current_and_later_waits_until_reset() {
        let orders = Arc::new(Orders::new(Seqno(4)));
        let waiter = {
            let orders = orders.clone();
            std::thread::spawn(move || orders.wait_commit_turn(Seqno(7), &|| false))
        };
        while orders.waiting() == 0 {
            std::thread::yield_now();
        }
        orders.close();
        assert_eq!(waiter.join().unwrap(), Err(WaitEnd::Reset));
        // A wait that starts after the close does not block; one already satisfied succeeds.
        assert_eq!(
            orders.wait_committed(Seqno(5), None, &|| false),
            Err(WaitEnd::Reset)
        );
        assert_eq!(orders.wait_committed(Seqno(4), None, &|| false), Ok(()));
        assert_eq!(orders.last_committed(), Seqno(4));
        // A new connection reopens it.
        orders.reset(Seqno(4));
        assert_eq!(
            orders.wait_committed(Seqno(5), Some(Duration::from_millis(1)), &|| false),
            Err(WaitEnd::TimedOut)
        );
    }

    #[test]
    fn every_waiter_is_released_whatever_slot_it_shares() {
        // 40 waiters over 16 slots, released by leaves in an order that makes the watermark
        // jump (by one, then by more than a slot count) and wakes shared slots early.
        let orders = Arc::new(Orders::new(Seqno(0)));
        let waiters: Vec<_> = (1..=40)
            .map(|t| {
                let orders = orders.clone();
                std::thread::spawn(move || {
                    if t % 2 == 0 {
                        orders.wait_committed(Seqno(t), None, &|| false)
                    } else {
                        orders.wait_commit_turn(Seqno(t + 1), &|| false)
                    }
                })
            })
            .collect();
        while orders.waiting() < 40 {
            std::thread::yield_now();
        }
        orders.leave(Seqno(1));
        for s in (3..=30).rev() {
            orders.leave(Seqno(s));
        }
        // 1 left; 2 is missing, so every waiter but the first still waits.
        while !waiters[0].is_finished() {
            std::thread::yield_now();
        }
        assert_eq!(orders.last_committed(), Seqno(1));
        assert!(waiters[1..].iter().all(|w| !w.is_finished()));
        orders.leave(Seqno(2));
        for s in 31..=40 {
            orders.leave(Seqno(s));
        }
        for w in waiters {
            assert_eq!(w.join().unwrap(), Ok(()));
        }
        assert_eq!(orders.waiting(), 0);
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
