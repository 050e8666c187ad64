//! Flow control, as Galera does it (`gcs.fc_limit`, `gcs.fc_factor`): a node whose receive
//! queue grows past its limit asks the whole cluster to stop replicating (a stop message in
//! total order); every node then holds its new local writesets until no member of the view has
//! a stop in force; the node sends a resume once its queue is back under the lower bound.
//! So the slowest node bounds its own backlog and cannot fall ever further behind.
//!
//! The limit scales with the cluster as Galera's does: `fc_limit * sqrt(members)`, resuming
//! at `limit * fc_factor`. A desynced node (`wsrep_desync`, a donor) never asks to stop.
//!
//! A node catching up after a state transfer (or a donor after its pause) was handed its
//! backlog all at once: IST brings thousands of writesets into the queue in one go. Stopping
//! the cluster until that drains stalled every writer for as long as the catch-up took
//! (0.6 to 4 s in the fault suite's rejoin). Galera stalls the same way. Here the backlog
//! it was handed is an allowance, lowered as the queue drains: the node asks to stop only
//! when its queue grows by more than a margin (the limit, at least `CATCH_UP_GROWTH`)
//! above the lowest it has been since. So it still cannot fall ever further behind, and the
//! cluster does not wait for a backlog that is only shrinking.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use trireme_types::NodeId;

/// The upper and lower receive-queue bounds for `members` nodes.
pub fn limits(fc_limit: u64, fc_factor: f64, members: usize) -> (usize, usize) {
    let upper = ((fc_limit as f64) * (members.max(1) as f64).sqrt()).round() as usize;
    let upper = upper.max(1);
    let lower = ((upper as f64) * fc_factor.clamp(0.0, 1.0)).floor() as usize;
    (upper, lower.min(upper.saturating_sub(1)))
}

#[derive(Default)]
struct State {
    /// Members with a stop in force, in the order's view of things.
    stopped_by: BTreeSet<NodeId>,
    /// When replication was last paused here (some member's stop in force).
    paused_since: Option<Instant>,
    /// This node's own stop is in force (sent, not yet lifted).
    requested: bool,
    /// A new view dropped every stop, this node's too, while its stop was requested: the
    /// stop is sent again if the queue is still over the limit. `requested` itself stays set,
    /// since the stop may have been ordered after the view and be in force after all.
    stale: bool,
    /// Numbers the stop and resume decisions, in the order taken (`Runtime::flow_control`).
    decisions: u64,
    /// When `owed_resume` last sent a resume (it sends at most one a second).
    repaired_at: Option<Instant>,
    /// Catching up: the backlog still allowed above the limits (see the module docs).
    allowance: usize,
    catching_up: bool,
}

/// How far a catching-up node's queue may grow above its lowest point before it asks the
/// cluster to stop, if that is more than the plain limit: a node fresh from a state transfer
/// applies slowly for a while (a cold buffer pool, on a host busy with the transfer), and
/// stopping the cluster for every few writesets of that made the rejoin's stall.
const CATCH_UP_GROWTH: usize = 512;

pub struct FlowControl {
    state: Mutex<State>,
    resumed: Condvar,
    upper: AtomicUsize,
    lower: AtomicUsize,
    /// Completed pauses (the current one is added when reporting).
    paused_ns: AtomicU64,
    sent: AtomicU64,
    recv: AtomicU64,
    /// For `wsrep_flow_control_paused`: the share of time paused since the last reset.
    window: Mutex<(Instant, u64)>,
}

/// What the status variables show.
pub struct FlowStats {
    pub paused_ns: u64,
    pub paused_fraction: f64,
    pub sent: u64,
    pub recv: u64,
    pub active: bool,
    pub requested: bool,
}

impl FlowControl {
    pub fn new(fc_limit: u64, fc_factor: f64) -> FlowControl {
        let (upper, lower) = limits(fc_limit, fc_factor, 1);
        FlowControl {
            state: Mutex::new(State::default()),
            resumed: Condvar::new(),
            upper: AtomicUsize::new(upper),
            lower: AtomicUsize::new(lower),
            paused_ns: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            recv: AtomicU64::new(0),
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_limits(&self, fc_limit: u64, fc_factor: f64, members: usize) {
        let (upper, lower) = limits(fc_limit, fc_factor, members);
        self.upper.store(upper, Ordering::Relaxed);
        self.lower.store(lower, Ordering::Relaxed);
    }

    /// After a change of the receive queue: `Some(stop)` when this node must send a stop or a
    /// resume now (the caller sends it; it is counted here).
    ///
    /// `len` is read here, under the flow lock, not before: a length read earlier can be stale
    /// by the time it is judged. A push seeing 200 whose check ran after the pop that emptied
    /// the queue sent a stop with nothing left in the queue to ever trigger the resume, and
    /// the whole cluster stayed paused. Checks are serialized by the lock and each reads the
    /// length it judges, so the last check after the last change judges the real length.
    pub fn on_queue(&self, len: &dyn Fn() -> usize, exempt: bool) -> Option<(u64, bool)> {
        let mut st = self.state();
        let len = len();
        // Lowered only while no stop is asked: a stop waits for the queue to drain back
        // under the allowance it was sent with.
        if !st.requested {
            st.allowance = st.allowance.min(len);
        }
        let (mut upper, mut lower) = (
            self.upper.load(Ordering::Relaxed),
            self.lower.load(Ordering::Relaxed),
        );
        if st.catching_up {
            let grow = CATCH_UP_GROWTH.saturating_sub(upper);
            upper += st.allowance + grow;
            lower += st.allowance + grow;
        }
        let send = if (!st.requested || st.stale) && !exempt && len > upper {
            st.requested = true;
            st.stale = false;
            Some(true)
        } else if st.requested && (exempt || len <= lower) {
            st.requested = false;
            st.stale = false;
            Some(false)
        } else {
            None
        };
        send.map(|stop| {
            self.sent.fetch_add(1, Ordering::Relaxed);
            st.decisions += 1;
            (st.decisions, stop)
        })
    }

    /// The queue now holds a backlog handed over at once (state transfer, the end of a
    /// donor's pause): it is allowed above the limits while it drains.
    pub fn begin_catch_up(&self, backlog: usize) {
        let mut st = self.state();
        st.allowance = st.allowance.max(backlog);
        st.catching_up = true;
    }

    /// Caught up (synced): the plain limits again.
    pub fn end_catch_up(&self) {
        let mut st = self.state();
        st.allowance = 0;
        st.catching_up = false;
    }

    /// A member's stop or resume, in total order.
    pub fn on_message(&self, node: NodeId, stop: bool) {
        self.recv.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state();
        if stop {
            st.stopped_by.insert(node);
        } else {
            st.stopped_by.remove(&node);
        }
        self.update_pause(&mut st);
    }

    /// A new primary view, or a state transfer (which skips the messages in between): every
    /// stop is dropped, and a node still over its limit asks again at its next queue change.
    /// Without this a stop whose resume was never seen here (the node that sent it left, or
    /// the resume fell in a range this node received by IST) would hold writers for ever.
    /// This node's own request is not forgotten: its stop may still be on the way and be
    /// ordered after the view, and only a resume lifts it then.
    pub fn clear(&self) {
        let mut st = self.state();
        st.stopped_by.clear();
        st.stale = st.requested;
        self.update_pause(&mut st);
    }

    fn update_pause(&self, st: &mut State) {
        match (st.stopped_by.is_empty(), st.paused_since) {
            (false, None) => st.paused_since = Some(Instant::now()),
            (true, Some(since)) => {
                let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.paused_ns.fetch_add(ns, Ordering::Relaxed);
                st.paused_since = None;
                self.resumed.notify_all();
            }
            _ => {}
        }
    }

    /// This node's own stop is in force but it no longer asks for one: a resume is owed
    /// (the safety net behind the ordering rules above; at most one a second).
    pub fn owed_resume(&self, me: NodeId) -> Option<u64> {
        let mut st = self.state();
        if st.requested || !st.stopped_by.contains(&me) {
            return None;
        }
        if st
            .repaired_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return None;
        }
        st.repaired_at = Some(Instant::now());
        st.decisions += 1;
        self.sent.fetch_add(1, Ordering::Relaxed);
        Some(st.decisions)
    }

    /// Blocks a local writeset while replication is paused. Returns early, `false`, when
    /// `give_up` says so (checked every `poll`, without the flow lock held), so a client is
    /// never stuck for a reason that went away some other way (the node left the primary
    /// component, the trx was aborted).
    pub fn wait_resumed(&self, poll: Duration, give_up: &dyn Fn() -> bool) -> bool {
        loop {
            {
                let st = self.state();
                if st.stopped_by.is_empty() {
                    return true;
                }
                let (st, _) = self
                    .resumed
                    .wait_timeout(st, poll)
                    .unwrap_or_else(|e| e.into_inner());
                if st.stopped_by.is_empty() {
                    return true;
                }
            }
            if give_up() {
                return false;
            }
        }
    }

    pub fn stats(&self) -> FlowStats {
        let st = self.state();
        let current = st.paused_since.map_or(0, |s| {
            u64::try_from(s.elapsed().as_nanos()).unwrap_or(u64::MAX)
        });
        let paused_ns = self
            .paused_ns
            .load(Ordering::Relaxed)
            .saturating_add(current);
        let (since, paused_at_start) = *self.window.lock().unwrap_or_else(|e| e.into_inner());
        let window_ns = since.elapsed().as_nanos().max(1) as f64;
        let paused_fraction =
            (paused_ns.saturating_sub(paused_at_start) as f64 / window_ns).clamp(0.0, 1.0);
        FlowStats {
            paused_ns,
            paused_fraction,
            sent: self.sent.load(Ordering::Relaxed),
            recv: self.recv.load(Ordering::Relaxed),
            active: !st.stopped_by.is_empty(),
            requested: st.requested,
        }
    }

    /// `FLUSH STATUS`: the paused fraction starts over (Galera resets it, not the counters).
    pub fn reset_window(&self) {
        let paused = self.stats().paused_ns;
        *self.window.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), paused);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop(fc: &FlowControl, len: usize, exempt: bool) -> Option<bool> {
        fc.on_queue(&|| len, exempt).map(|(_, stop)| stop)
    }

    #[test]
    fn decisions_are_numbered_in_the_order_taken_so_a_stale_one_can_be_told_apart() {
        let fc = FlowControl::new(16, 0.5);
        let first = fc.on_queue(&|| 100, false).expect("a stop");
        let second = fc.on_queue(&|| 0, false).expect("a resume");
        assert_eq!((first.1, second.1), (true, false));
        assert!(second.0 > first.0);
    }

    #[test]
    fn limits_scale_with_the_square_root_of_the_cluster_as_galeras_do() {
        assert_eq!(limits(16, 1.0, 1), (16, 15));
        assert_eq!(limits(16, 1.0, 4), (32, 31));
        assert_eq!(limits(16, 0.5, 4), (32, 16));
        assert_eq!(limits(100, 0.8, 3), (173, 138));
        assert_eq!(limits(0, 1.0, 3), (1, 0));
    }

    #[test]
    fn a_node_stops_over_the_limit_once_and_resumes_under_the_lower_bound() {
        let fc = FlowControl::new(16, 0.5);
        assert_eq!(stop(&fc, 16, false), None);
        assert_eq!(stop(&fc, 17, false), Some(true));
        assert_eq!(stop(&fc, 40, false), None, "one stop while in force");
        assert_eq!(stop(&fc, 9, false), None, "above fc_limit * fc_factor");
        assert_eq!(stop(&fc, 8, false), Some(false));
        assert_eq!(stop(&fc, 8, false), None);
        let s = fc.stats();
        assert_eq!(s.sent, 2);
        assert!(!s.requested);
    }

    #[test]
    fn a_catching_up_node_stops_only_when_its_backlog_grows_by_more_than_the_limit() {
        let fc = FlowControl::new(16, 0.5);
        fc.begin_catch_up(5000);
        // Draining a handed-over backlog never stops the cluster.
        assert_eq!(stop(&fc, 5000, false), None);
        assert_eq!(stop(&fc, 3000, false), None);
        // Growing back by the catch-up margin is allowed; beyond it is not (it is falling
        // behind).
        assert_eq!(stop(&fc, 3000 + CATCH_UP_GROWTH, false), None);
        assert_eq!(stop(&fc, 3001 + CATCH_UP_GROWTH, false), Some(true));
        // The allowance stays put while the stop is in force: resume under it again.
        let resume_at = 3000 + CATCH_UP_GROWTH - 8;
        assert_eq!(stop(&fc, resume_at + 1, false), None);
        assert_eq!(stop(&fc, resume_at, false), Some(false));
        // Caught up: the plain limits.
        fc.end_catch_up();
        assert_eq!(stop(&fc, 100, false), Some(true));
    }

    #[test]
    fn after_a_new_view_a_node_still_over_its_limit_asks_again() {
        let fc = FlowControl::new(16, 1.0);
        assert_eq!(stop(&fc, 100, false), Some(true));
        fc.clear();
        assert_eq!(stop(&fc, 99, false), Some(true));
    }

    #[test]
    fn a_stop_ordered_after_a_new_view_is_still_lifted_by_a_resume() {
        let fc = FlowControl::new(16, 1.0);
        let me = NodeId::generate();
        assert_eq!(stop(&fc, 100, false), Some(true));
        fc.clear();
        // The stop sent before the view is ordered after it: in force everywhere.
        fc.on_message(me, true);
        assert!(fc.stats().active);
        assert_eq!(stop(&fc, 0, false), Some(false), "the resume is still owed");
        fc.on_message(me, false);
        assert!(!fc.stats().active);
    }

    #[test]
    fn a_stop_in_force_that_this_node_no_longer_asks_for_is_lifted_once_a_second() {
        let fc = FlowControl::new(16, 1.0);
        let (me, other) = (NodeId::generate(), NodeId::generate());
        fc.on_message(other, true);
        assert_eq!(
            fc.owed_resume(me),
            None,
            "another node's stop is its own business"
        );
        fc.on_message(me, true);
        assert!(fc.owed_resume(me).is_some());
        assert_eq!(fc.owed_resume(me), None, "not again within the second");
        let fc = FlowControl::new(16, 1.0);
        assert_eq!(stop(&fc, 100, false), Some(true));
        fc.on_message(me, true);
        assert_eq!(fc.owed_resume(me), None, "requested: nothing owed");
    }

    #[test]
    fn a_desynced_node_never_stops_the_cluster_and_lifts_its_stop() {
        let fc = FlowControl::new(16, 1.0);
        assert_eq!(stop(&fc, 1000, true), None);
        assert_eq!(stop(&fc, 1000, false), Some(true));
        assert_eq!(stop(&fc, 1000, true), Some(false));
    }

    #[test]
    fn replication_waits_while_any_member_of_the_view_has_a_stop_in_force() {
        let fc = FlowControl::new(16, 1.0);
        let (a, b) = (NodeId::generate(), NodeId::generate());
        assert!(fc.wait_resumed(Duration::from_millis(1), &|| true));
        fc.on_message(a, true);
        fc.on_message(b, true);
        assert!(fc.stats().active);
        assert!(
            !fc.wait_resumed(Duration::from_millis(1), &|| true),
            "gives up when asked"
        );
        fc.on_message(a, false);
        assert!(fc.stats().active, "b still stops");
        fc.clear();
        assert!(!fc.stats().active, "a new view drops every stop");
        assert!(fc.wait_resumed(Duration::from_millis(1), &|| true));
        let s = fc.stats();
        assert_eq!(s.recv, 3);
        assert!(s.paused_ns > 0);
    }

    #[test]
    fn a_waiting_writer_is_released_by_the_resume() {
        let fc = std::sync::Arc::new(FlowControl::new(16, 1.0));
        let a = NodeId::generate();
        fc.on_message(a, true);
        let fc2 = fc.clone();
        let waiter =
            std::thread::spawn(move || fc2.wait_resumed(Duration::from_secs(3600), &|| false));
        fc.on_message(a, false);
        assert!(waiter.join().expect("no panic"));
    }
}
