//! Quorum leases: when a node may call itself primary.
//!
//! The argument, in ticks of each node's own clock (clocks run at the same rate; a paused
//! process first receives every missed tick before any message):
//!
//! * A follower that accepts a leader message created at leader tick `s` resets raft's
//!   `election_elapsed` on receipt and, with `check_quorum`, refuses any (pre-)vote for
//!   `election_ticks` after that: it will not help elect anyone before `s + election_ticks`.
//! * The leader counts an acknowledgement by the `s` it echoes (the tick at which the leader
//!   SENT what was answered), never by when the answer arrived. With a quorum of voters
//!   having echoed `>= start`, no other leader can be elected by a normal election before
//!   `start + election_ticks`, so the leader's lease `[.., start + election_ticks - margin)`
//!   ends before any successor's begins.
//! * A follower's view of the lease is derived with the same rule in the other direction: the
//!   leader tells it "`remaining` ticks left" on a message sent after receiving the
//!   follower's ack created at follower tick `f`; the lease ends at least `f + remaining` in
//!   the follower's clock. A follower derives only from its current leader and term.
//! * A forced campaign (raft's `CAMPAIGN_TRANSFER`, used on evidence of the leader's death or
//!   on its own abdication) bypasses the voters' lease check. A leader elected that way
//!   therefore counts its lease only from `election_ticks` after its election: every lease
//!   of the old term was derived from acknowledgements sent before the new leader's voters
//!   moved to its term (quorums intersect), so they have all ended by then. Writes commit
//!   meanwhile; only the primary claim waits.

use std::collections::BTreeMap;

/// The leader's side: acknowledgements in its term.
#[derive(Clone, Debug)]
pub(crate) struct LeaderLease {
    pub term: u64,
    pub elected_tick: u64,
    /// False until a forced leader may count its lease (see module docs).
    unlocked: bool,
    /// Per voter (raft id): the highest leader send tick it echoed, and its own tick when it
    /// sent that echo.
    acks: BTreeMap<u64, Ack>,
    /// The leader gave up its lease (graceful transfer).
    pub abdicated: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ack {
    pub echoed_leader_tick: u64,
    pub follower_tick: u64,
}

impl LeaderLease {
    pub(crate) fn new(term: u64, now: u64, forced: bool) -> LeaderLease {
        LeaderLease {
            term,
            elected_tick: now,
            unlocked: !forced,
            acks: BTreeMap::new(),
            abdicated: false,
        }
    }

    pub(crate) fn record_ack(&mut self, voter: u64, echoed_leader_tick: u64, follower_tick: u64) {
        let ack = self.acks.entry(voter).or_default();
        if echoed_leader_tick > ack.echoed_leader_tick {
            ack.echoed_leader_tick = echoed_leader_tick;
        }
        if follower_tick > ack.follower_tick {
            ack.follower_tick = follower_tick;
        }
    }

    pub(crate) fn ack(&self, voter: u64) -> Option<Ack> {
        self.acks.get(&voter).copied()
    }

    /// Unlocks a forced leader's lease a full election timeout after its election. Waiting
    /// for acknowledgements instead would not do: the evidence behind a forced campaign can
    /// be wrong (a connection reset between live processes), and a node that still holds a
    /// lease of the old term may not even be in the new configuration any more.
    pub(crate) fn maybe_unlock(&mut self, now: u64, election_ticks: u64) {
        if !self.unlocked && now >= self.elected_tick + election_ticks {
            self.unlocked = true;
        }
    }

    /// The local tick before which this leader holds a quorum lease, if any.
    pub(crate) fn until(
        &self,
        now: u64,
        voters: &[(u64, u64)],
        me: u64,
        election_ticks: u64,
        margin: u64,
    ) -> Option<u64> {
        if !self.unlocked || self.abdicated {
            return None;
        }
        let start = quorum_start(now, voters, me, &self.acks)?;
        // Acks echo ticks of this term only, so the lease can never predate the election.
        let start = start.max(self.elected_tick);
        let until = start + election_ticks - margin;
        (until > now).then_some(until)
    }
}

/// The largest `t` such that a quorum of `voters` (raft id, weight) has echoed a send tick
/// `>= t` (the leader itself counts as `now`). Quorums are weighted as raft's own are (see
/// `weighs_a_quorum`), so a lease quorum meets every quorum that could elect another leader.
pub(crate) fn quorum_start(
    now: u64,
    voters: &[(u64, u64)],
    me: u64,
    acks: &BTreeMap<u64, Ack>,
) -> Option<u64> {
    if voters.is_empty() {
        return None;
    }
    let total: u64 = voters.iter().map(|(_, w)| *w).sum();
    let mut ticks: Vec<(u64, u64)> = voters
        .iter()
        .map(|(v, w)| {
            let tick = if *v == me {
                now
            } else {
                acks.get(v).map_or(0, |a| a.echoed_leader_tick)
            };
            (tick, *w)
        })
        .collect();
    ticks.sort_unstable_by_key(|t| std::cmp::Reverse(t.0));
    let mut sum = 0;
    for (tick, w) in ticks {
        sum += w;
        if sum * 2 > total {
            return (tick > 0).then_some(tick);
        }
    }
    None
}

/// Whether the voters for which `present` holds weigh more than half of all `voters`
/// (raft id, weight): the same rule as the patched raft-rs quorum (third_party/raft,
/// `quorum::weighted`); voters that all weigh 0 have none.
pub(crate) fn weighs_a_quorum(voters: &[(u64, u64)], present: impl Fn(u64) -> bool) -> bool {
    let total: u64 = voters.iter().map(|(_, w)| *w).sum();
    let here: u64 = voters
        .iter()
        .filter(|(v, _)| present(*v))
        .map(|(_, w)| *w)
        .sum();
    total > 0 && here * 2 > total
}

/// A follower's lease, derived from its leader's stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DerivedLease {
    pub term: u64,
    pub leader: u64,
    pub until: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ones(voters: &[u64]) -> Vec<(u64, u64)> {
        voters.iter().map(|v| (*v, 1)).collect()
    }

    fn acks(pairs: &[(u64, u64)]) -> BTreeMap<u64, Ack> {
        pairs
            .iter()
            .map(|&(v, t)| {
                (
                    v,
                    Ack {
                        echoed_leader_tick: t,
                        follower_tick: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn lease_starts_at_the_quorum_th_latest_echoed_send_tick() {
        // 5 voters: the leader (now=100) plus echoes 90, 80, 70 and none.
        let a = acks(&[(2, 90), (3, 80), (4, 70)]);
        assert_eq!(quorum_start(100, &ones(&[1, 2, 3, 4, 5]), 1, &a), Some(80));
        // 3 voters: leader plus the best follower.
        assert_eq!(
            quorum_start(100, &ones(&[1, 2, 3]), 1, &acks(&[(3, 95)])),
            Some(95)
        );
        // No follower answered yet: no lease (except alone).
        assert_eq!(quorum_start(100, &ones(&[1, 2, 3]), 1, &acks(&[])), None);
        assert_eq!(quorum_start(100, &ones(&[1]), 1, &acks(&[])), Some(100));
    }

    #[test]
    fn a_weighted_lease_needs_echoes_weighing_more_than_half() {
        // The leader weighs 3 of 5: its own tick is a quorum on its own.
        let heavy_leader = [(1, 3), (2, 1), (3, 1)];
        assert_eq!(quorum_start(100, &heavy_leader, 1, &acks(&[])), Some(100));
        // A light leader needs the heavy voter's echo, however many light ones answer.
        let light_leader = [(1, 1), (2, 3), (3, 1)];
        assert_eq!(quorum_start(100, &light_leader, 1, &acks(&[(3, 99)])), None);
        assert_eq!(
            quorum_start(100, &light_leader, 1, &acks(&[(2, 90), (3, 99)])),
            Some(90)
        );
        // A voter of weight 0 adds nothing; voters that all weigh 0 have no quorum.
        let zero = [(1, 1), (2, 1), (3, 0)];
        assert_eq!(quorum_start(100, &zero, 1, &acks(&[(3, 99)])), None);
        let all_zero = [(1, 0), (2, 0), (3, 0)];
        assert_eq!(
            quorum_start(100, &all_zero, 1, &acks(&[(2, 99), (3, 99)])),
            None
        );
    }

    #[test]
    fn weighs_a_quorum_is_more_than_half_the_weight() {
        let v = [(1, 2), (2, 1), (3, 1)];
        assert!(
            !weighs_a_quorum(&v, |id| id == 1),
            "2 of 4 is not more than half"
        );
        assert!(weighs_a_quorum(&v, |id| id != 3));
        assert!(!weighs_a_quorum(&v, |id| id != 1));
        assert!(!weighs_a_quorum(&[(1, 0), (2, 0), (3, 0)], |_| true));
    }

    #[test]
    fn lease_ends_an_election_timeout_after_its_start_minus_the_margin() {
        let mut l = LeaderLease::new(3, 50, false);
        l.record_ack(2, 60, 1000);
        assert_eq!(l.until(65, &ones(&[1, 2, 3]), 1, 10, 1), Some(69));
        assert_eq!(
            l.until(69, &ones(&[1, 2, 3]), 1, 10, 1),
            None,
            "expired at 60 + 10 - 1"
        );
        // A late answer to an old probe does not extend it.
        l.record_ack(2, 55, 1001);
        assert_eq!(l.until(69, &ones(&[1, 2, 3]), 1, 10, 1), None);
        l.abdicated = true;
        l.record_ack(2, 68, 1002);
        assert_eq!(
            l.until(68, &ones(&[1, 2, 3]), 1, 10, 1),
            None,
            "an abdicated leader holds no lease"
        );
    }

    #[test]
    fn forced_leader_counts_its_lease_only_after_a_full_election_timeout() {
        let mut l = LeaderLease::new(4, 100, true);
        l.record_ack(2, 101, 7);
        l.record_ack(3, 101, 9);
        l.maybe_unlock(109, 10);
        assert!(
            l.until(109, &ones(&[1, 2, 3]), 1, 10, 1).is_none(),
            "every voter answered, still locked"
        );
        l.maybe_unlock(110, 10);
        l.record_ack(2, 110, 8);
        assert_eq!(l.until(110, &ones(&[1, 2, 3]), 1, 10, 1), Some(119));
    }
}
