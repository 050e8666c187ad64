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
    /// A configuration change or a non-primary view, delivered alone.
    View(View),
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
    /// Deliver the final (disconnected) view and close the queue.
    Final { view: View },
}

struct Inner {
    items: VecDeque<Work>,
    closed: bool,
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
        cv.notify_one();
        inner.items.len()
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
            inner = cv.wait(inner).unwrap_or_else(|e| e.into_inner());
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
}
