//! The origin side of exactly-once ordering.
//!
//! Each proposal gets `(epoch, seq)`: `seq` counts up within an epoch; the epoch changes when
//! this node gives up on everything unconfirmed (it left the primary component, or was
//! removed), so abandoned proposals can never be delivered after newer ones
//! (`state::Admission`). Unconfirmed proposals stay queued in order and are resent, all of
//! them and in order, whenever the leader changes, when one of ours is skipped as a gap, and
//! when nothing of ours was delivered for a while. Duplicates are harmless: delivery skips
//! them deterministically.

use crate::event::{Event, ProposalFailReason, ProposalId};
use crate::msg::ProposalBody;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub id: ProposalId,
    pub epoch: u64,
    pub seq: u64,
    pub body: ProposalBody,
}

#[derive(Debug)]
pub(crate) struct Proposals {
    next_id: u64,
    pub epoch: u64,
    next_seq: u64,
    pub pending: VecDeque<Pending>,
    /// The leader (raft id, term) the first `sent` pending proposals were sent to.
    pub sent_to: Option<(u64, u64)>,
    pub sent: usize,
    /// Payload bytes of those `sent` proposals: what is in flight, bounded by the window.
    pub sent_bytes: usize,
    /// Last tick one of ours was delivered or everything was resent.
    pub progress_tick: u64,
    /// Resend everything at the next flush.
    pub resend_all: bool,
}

impl Proposals {
    pub(crate) fn new(epoch: u64) -> Proposals {
        Proposals {
            next_id: 1,
            epoch,
            next_seq: 1,
            pending: VecDeque::new(),
            sent_to: None,
            sent: 0,
            sent_bytes: 0,
            progress_tick: 0,
            resend_all: false,
        }
    }

    pub(crate) fn push(&mut self, body: ProposalBody) -> ProposalId {
        let id = ProposalId(self.next_id);
        self.next_id += 1;
        let p = Pending {
            id,
            epoch: self.epoch,
            seq: self.next_seq,
            body,
        };
        self.next_seq += 1;
        if let Some(last) = self.pending.back() {
            assert!(
                (last.epoch, last.seq) < (p.epoch, p.seq),
                "pending stays in origin order"
            );
        }
        self.pending.push_back(p);
        id
    }

    /// One of ours was delivered: it must be the oldest pending one, unless we had already
    /// given up on it (then it is delivered as remote: `None`).
    pub(crate) fn delivered(&mut self, epoch: u64, seq: u64, now: u64) -> Option<ProposalId> {
        self.progress_tick = now;
        let front = self.pending.front()?;
        if (front.epoch, front.seq) != (epoch, seq) {
            // Only abandoned epochs can be delivered out of our queue's order.
            assert!(
                epoch < front.epoch,
                "own delivery ({epoch},{seq}) skips pending ({},{})",
                front.epoch,
                front.seq
            );
            return None;
        }
        let p = self.pending.pop_front().expect("front exists");
        if self.sent > 0 {
            self.sent -= 1;
            self.sent_bytes = self.sent_bytes.saturating_sub(p.body.payload_len());
        }
        Some(p.id)
    }

    /// Drops pending proposals the state machine shows as already delivered (after a
    /// snapshot skipped part of the log); they are reported failed: their fate is decided by
    /// state transfer.
    pub(crate) fn drop_delivered_upto(&mut self, epoch: u64, last_seq: u64, out: &mut Vec<Event>) {
        while let Some(front) = self.pending.front() {
            if front.epoch < epoch || (front.epoch == epoch && front.seq <= last_seq) {
                let p = self.pending.pop_front().expect("front exists");
                out.push(Event::ProposalFailed {
                    id: p.id,
                    reason: ProposalFailReason::NonPrimary,
                });
            } else {
                break;
            }
        }
        self.clear_sent();
        self.resend_all = true;
    }

    /// Aligns our numbering with what the replicated state says about us, `(epoch,
    /// last_seq)`, after we may have missed part of the log (a snapshot) or were readmitted.
    /// Pending proposals already covered are reported failed (state transfer decides their
    /// fate); if the rest cannot continue the replicated sequence, they are failed too and a
    /// fresh epoch starts.
    pub(crate) fn resync(&mut self, epoch: u64, last_seq: u64, out: &mut Vec<Event>) {
        self.drop_delivered_upto(epoch, last_seq, out);
        let next = match self.pending.front() {
            Some(p) => (p.epoch, p.seq),
            None => (self.epoch, self.next_seq),
        };
        let continues =
            (next.0 == epoch && next.1 == last_seq + 1) || (next.0 > epoch && next.1 == 1);
        if !continues {
            if next.0 < epoch && self.pending.is_empty() {
                self.epoch = epoch;
                self.next_seq = last_seq + 1;
            } else {
                for p in self.pending.drain(..) {
                    out.push(Event::ProposalFailed {
                        id: p.id,
                        reason: ProposalFailReason::NonPrimary,
                    });
                }
                self.epoch = self.epoch.max(epoch) + 1;
                self.next_seq = 1;
            }
        }
        self.clear_sent();
        self.resend_all = true;
    }

    /// Nothing counts as sent any more: everything pending goes (again) to the leader.
    pub(crate) fn clear_sent(&mut self) {
        self.sent = 0;
        self.sent_bytes = 0;
    }

    /// The next pending proposal went to the leader.
    pub(crate) fn mark_sent(&mut self) {
        self.sent_bytes += self.pending[self.sent].body.payload_len();
        self.sent += 1;
    }

    /// Whether another proposal may go out: always one when nothing is in flight, else only
    /// while the payload in flight stays below `window` bytes (the parts of a large writeset
    /// go out a few at a time, as earlier ones are ordered, instead of all in one step).
    pub(crate) fn may_send(&self, window: usize) -> bool {
        self.sent < self.pending.len() && (self.sent == 0 || self.sent_bytes < window)
    }

    /// Gives up on everything unconfirmed and starts a new epoch.
    pub(crate) fn fail_all(&mut self, reason: ProposalFailReason, out: &mut Vec<Event>) {
        for p in self.pending.drain(..) {
            out.push(Event::ProposalFailed { id: p.id, reason });
        }
        self.epoch += 1;
        self.next_seq = 1;
        self.clear_sent();
        self.sent_to = None;
        self.resend_all = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_deliveries_pop_in_order_and_abandoned_ones_come_back_as_remote() {
        let mut p = Proposals::new(0);
        let a = p.push(ProposalBody::Writeset(vec![1]));
        let b = p.push(ProposalBody::Writeset(vec![2]));
        assert_eq!(p.delivered(0, 1, 5), Some(a));
        let mut out = Vec::new();
        p.fail_all(ProposalFailReason::NonPrimary, &mut out);
        assert_eq!(
            out,
            vec![Event::ProposalFailed {
                id: b,
                reason: ProposalFailReason::NonPrimary
            }]
        );
        let c = p.push(ProposalBody::Writeset(vec![3]));
        // The abandoned (0, 2) is ordered after all: delivered as remote.
        assert_eq!(p.delivered(0, 2, 6), None);
        assert_eq!(p.pending.front().map(|x| (x.epoch, x.seq)), Some((1, 1)));
        assert_eq!(p.delivered(1, 1, 7), Some(c));
    }

    #[test]
    fn resync_continues_the_replicated_sequence_or_starts_a_fresh_epoch() {
        // Readmitted at epoch 3 while our counter was behind: adopt it.
        let mut p = Proposals::new(0);
        let mut out = Vec::new();
        p.resync(3, 0, &mut out);
        p.push(ProposalBody::Writeset(vec![1]));
        assert_eq!(p.pending.front().map(|x| (x.epoch, x.seq)), Some((3, 1)));
        // A snapshot shows (3, 1) delivered: dropped as decided by state transfer; (3, 2)
        // continues the sequence and stays.
        p.push(ProposalBody::Writeset(vec![2]));
        p.resync(3, 1, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(p.pending.front().map(|x| (x.epoch, x.seq)), Some((3, 2)));
        // Readmitted under epoch 5 with (3, 2) unconfirmed: it can never be delivered now
        // (stale epoch), so it fails and numbering continues the record.
        p.resync(5, 0, &mut out);
        assert!(p.pending.is_empty());
        assert_eq!(out.len(), 2);
        p.push(ProposalBody::Writeset(vec![3]));
        assert_eq!(p.pending.front().map(|x| (x.epoch, x.seq)), Some((5, 1)));
        // Our counter ran ahead of the record in its epoch (the proposals in between were
        // given up): a fresh epoch, or later ones would be gaps forever.
        let mut q = Proposals::new(7);
        q.push(ProposalBody::Writeset(vec![4]));
        q.push(ProposalBody::Writeset(vec![5]));
        let mut out = Vec::new();
        q.fail_all(ProposalFailReason::NonPrimary, &mut out);
        q.resync(7, 0, &mut out);
        q.push(ProposalBody::Writeset(vec![6]));
        assert_eq!(q.pending.front().map(|x| (x.epoch, x.seq)), Some((8, 1)));
    }
}
