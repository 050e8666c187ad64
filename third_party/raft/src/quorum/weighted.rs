// Trireme patch (not upstream raft-rs): weighted quorums for Galera's `pc.weight`.
//
// A set of voters is a quorum under a weight map when its weight is more than half of the
// voters' total. Any two such sets share a voter, which is all raft's safety needs. Changing
// one voter's weight by one keeps every old quorum intersecting every new one (a voter of
// weight w acts as w voters of weight one; this adds or removes one of them), so weight
// changes go one unit at a time, through raft's configuration-change path. A voter missing
// from the map weighs 1. Voters that weigh 0 in all have no quorum at all (the caller keeps
// the total above 0).

use super::{AckedIndexer, VoteResult};
use crate::{HashMap, HashSet};

/// One weight per voter id.
pub type Weights = HashMap<u64, u64>;

fn weight(w: &Weights, id: u64) -> u64 {
    w.get(&id).copied().unwrap_or(1)
}

/// The highest index acknowledged by a weighted quorum of `voters` (`u64::MAX` for an empty
/// set, as `MajorityConfig` does, so that an empty half of a joint config is neutral).
pub fn committed_index(voters: &HashSet<u64>, w: &Weights, l: &impl AckedIndexer) -> u64 {
    if voters.is_empty() {
        return u64::MAX;
    }
    let total: u64 = voters.iter().map(|v| weight(w, *v)).sum();
    let mut acked: Vec<(u64, u64)> = voters
        .iter()
        .map(|v| (l.acked_index(*v).unwrap_or_default().index, weight(w, *v)))
        .collect();
    acked.sort_unstable_by(|a, b| b.0.cmp(&a.0));
    let mut sum = 0;
    for (index, wt) in acked {
        sum += wt;
        if sum * 2 > total {
            return index;
        }
    }
    0
}

/// Won when the yes votes weigh more than half, lost when they cannot any more.
pub fn vote_result(
    voters: &HashSet<u64>,
    w: &Weights,
    check: &impl Fn(u64) -> Option<bool>,
) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing, mut total) = (0, 0, 0);
    for v in voters {
        let wt = weight(w, *v);
        total += wt;
        match check(*v) {
            Some(true) => yes += wt,
            None => missing += wt,
            Some(false) => {}
        }
    }
    if yes * 2 > total {
        VoteResult::Won
    } else if (yes + missing) * 2 > total {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::Index;

    fn set(ids: &[u64]) -> HashSet<u64> {
        ids.iter().copied().collect()
    }

    fn weights(pairs: &[(u64, u64)]) -> Weights {
        pairs.iter().copied().collect()
    }

    fn acked(pairs: &[(u64, u64)]) -> std::collections::HashMap<u64, Index> {
        pairs
            .iter()
            .map(|(id, index)| {
                (
                    *id,
                    Index {
                        index: *index,
                        group_id: 0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_heavy_voter_commits_alone_and_light_ones_need_it() {
        let voters = set(&[1, 2, 3]);
        let w = weights(&[(1, 3)]);
        assert_eq!(committed_index(&voters, &w, &acked(&[(1, 9), (2, 4), (3, 5)])), 9);
        assert_eq!(committed_index(&voters, &w, &acked(&[(1, 2), (2, 8), (3, 8)])), 2);
        let yes = |ids: &'static [u64]| move |id| Some(ids.contains(&id));
        assert_eq!(vote_result(&voters, &w, &yes(&[1])), VoteResult::Won);
        assert_eq!(vote_result(&voters, &w, &yes(&[2, 3])), VoteResult::Lost);
    }

    #[test]
    fn an_empty_map_counts_heads_and_an_all_zero_one_has_no_quorum() {
        let voters = set(&[1, 2, 3]);
        let w = weights(&[]);
        assert_eq!(committed_index(&voters, &w, &acked(&[(1, 9), (2, 4), (3, 5)])), 5);
        let votes = |id| if id == 1 { Some(true) } else { None };
        assert_eq!(vote_result(&voters, &w, &votes), VoteResult::Pending);
        let zero = weights(&[(1, 0), (2, 0), (3, 0)]);
        assert_eq!(committed_index(&voters, &zero, &acked(&[(1, 9), (2, 9), (3, 9)])), 0);
        assert_eq!(vote_result(&voters, &zero, &|_| Some(true)), VoteResult::Lost);
    }

    #[test]
    fn a_zero_weight_voter_never_decides() {
        let voters = set(&[1, 2, 3]);
        let w = weights(&[(3, 0)]);
        // 1 and 2 weigh 2 of 2: both are needed, 3's ack adds nothing.
        assert_eq!(committed_index(&voters, &w, &acked(&[(1, 9), (2, 4), (3, 9)])), 4);
        let votes = |id| Some(id != 2);
        assert_eq!(vote_result(&voters, &w, &votes), VoteResult::Lost);
    }
}
