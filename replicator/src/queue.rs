//! The applier queue: ordered work for MariaDB's applier threads sitting in `recv()`.
//!
//! Items leave the queue in total order; whichever applier is free takes the next one, so
//! independent writesets apply in parallel while the apply and commit orders (`orders.rs`)
//! keep dependent ones and commits in seqno order. Closing the queue (final view) makes every
//! `recv()` return.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use trireme_types::{Gtid, NodeId, Seqno, View, Writeset};

#[derive(Debug)]
pub enum Work {
    /// Apply a writeset ordered elsewhere (or our own, given up on by its client).
    Apply {
        seqno: Seqno,
        ws: Arc<Writeset>,
        depends_on: Seqno,
    },
    /// A configuration change or a non-primary view, delivered alone, in its turn (`ticket`:
    /// views go to the server in the order they were queued, whichever applier pops them).
    View { view: View, ticket: u64 },
    /// The node must obtain state up to `start`: it just joined a running group, or it fell
    /// behind the group's log while away (then everything dispatched up to `settled_at` must
    /// commit first: the state transfer starts from what the database holds).
    Joined {
        view: View,
        start: Gtid,
        settled_at: Seqno,
    },
    /// Report `synced_cb` from an applier thread, once everything up to this seqno has
    /// committed.
    Synced(Seqno),
    /// Donor duty for `joiner`.
    Donate {
        joiner: NodeId,
        request: Vec<u8>,
        ist_from: Gtid,
        /// The position the donated state reflects.
        position: Gtid,
        /// IST: the provider streams the writesets; the script only hands the position over.
        bypass: bool,
    },
    /// Vote this node's result for `seqno` (success: it would have voted already had it
    /// failed) once it has applied it; another member asked (`vote.rs`).
    Vote(Seqno),
    /// Deliver the final (disconnected) view and close the queue.
    Final { view: View },
}

struct Inner {
    items: VecDeque<Work>,
    closed: bool,
    /// Appliers blocked in `pop`, and wake-ups sent to them not yet taken: a push signals
    /// only when a sleeper is left unsignalled (a signal is a syscall, and an applier that is
    /// awake takes the next item by itself).
    sleeping: usize,
    signalled: usize,
}

#[derive(Clone)]
pub struct RecvQueue {
    inner: Arc<(Mutex<Inner>, Condvar)>,
}

impl Default for RecvQueue {
    fn default() -> Self {
        RecvQueue {
            inner: Arc::new((
                Mutex::new(Inner {
                    items: VecDeque::new(),
                    closed: false,
                    sleeping: 0,
                    signalled: 0,
                }),
                Condvar::new(),
            )),
        }
    }
}

impl RecvQueue {
    /// Appends work; returns the queue length after the push.
    pub fn push(&self, work: Work) -> usize {
        let (lock, cv) = &*self.inner;
        let mut inner = lock.lock().unwrap_or_else(|e| e.into_inner());
        inner.items.push_back(work);
        let len = inner.items.len();
        let wake = inner.sleeping > inner.signalled;
        if wake {
            inner.signalled += 1;
        }
        drop(inner);
        // After the unlock: the woken applier does not block again on the mutex.
        if wake {
            cv.notify_one();
        }
        len
    }

    /// Takes the next item, blocking; `None` once the queue is closed and drained.
    pub fn pop(&self) -> Option<(Work, usize)> {
        let (lock, cv) = &*self.inner;
        let mut inner = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(work) = inner.items.pop_front() {
                let left = inner.items.len();
                return Some((work, left));
            }
            if inner.closed {
                return None;
            }
            inner.sleeping += 1;
            inner = cv.wait(inner).unwrap_or_else(|e| e.into_inner());
            inner.sleeping -= 1;
            inner.signalled = inner.signalled.saturating_sub(1);
        }
    }

    pub fn close(&self) {
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap_or_else(|e| e.into_inner()).closed = true;
        cv.notify_all();
    }

    /// Reopens a closed queue for a new connection, dropping anything left.
    pub fn reopen(&self) {
        let (lock, _) = &*self.inner;
        let mut inner = lock.lock().unwrap_or_else(|e| e.into_inner());
        inner.items.clear();
        inner.closed = false;
    }

    pub fn len(&self) -> usize {
        self.inner
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .items
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_leave_in_order_and_close_ends_every_pop() {
        let q = RecvQueue::default();
        q.push(Work::Synced(Seqno(1)));
        q.push(Work::Final {
            view: View::disconnected(Default::default(), Seqno(3)),
        });
        assert!(matches!(q.pop(), Some((Work::Synced(_), 1))));
        assert!(matches!(q.pop(), Some((Work::Final { .. }, 0))));
        let waiter = {
            let q = q.clone();
            std::thread::spawn(move || q.pop().is_none())
        };
        q.close();
        assert!(waiter.join().unwrap());
    }

    #[test]
    fn bursts_reach_every_sleeping_applier_and_nothing_is_left_behind() {
        let q = RecvQueue::default();
        let taken = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let appliers: Vec<_> = (0..4)
            .map(|_| {
                let (q, taken) = (q.clone(), taken.clone());
                std::thread::spawn(move || {
                    while q.pop().is_some() {
                        taken.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for burst in 0..200 {
            for _ in 0..(burst % 7) {
                q.push(Work::Synced(Seqno(burst)));
            }
            if burst % 10 == 0 {
                // Let the appliers drain and go back to sleep now and then.
                while taken.load(std::sync::atomic::Ordering::SeqCst) < pushed_upto(burst) {
                    std::thread::yield_now();
                }
            }
        }
        let total = pushed_upto(199);
        while taken.load(std::sync::atomic::Ordering::SeqCst) < total {
            std::thread::yield_now();
        }
        q.close();
        for a in appliers {
            a.join().unwrap();
        }
        assert_eq!(taken.load(std::sync::atomic::Ordering::SeqCst), total);
    }

    /// Items pushed by bursts 0..=burst (burst b pushes b % 7).
    fn pushed_upto(burst: i64) -> usize {
        (0..=burst).map(|b| (b % 7) as usize).sum()
    }
}
