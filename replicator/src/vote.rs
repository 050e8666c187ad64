//! Inconsistency voting (Galera 4): when a node fails to apply a writeset that others may have
//! applied, the members vote on the result in total order, and the nodes whose result lost
//! leave the cluster instead of serving data that differs.
//!
//! - A node whose applier fails votes first, with a digest of the error (`error_code`); it
//!   holds that seqno in the commit order until the vote is decided.
//! - Every member that sees a vote for a seqno it has not voted on votes its own result once it
//!   has applied that seqno: 0, success (it would have voted first otherwise). An arbitrator,
//!   which applies nothing, abstains.
//! - The vote is decided once every member of the current primary view has voted, at the same
//!   point of the total order on every node (votes and views are delivered in that order). A
//!   member that leaves is no longer waited for.
//! - The result with the most votes wins; a tie goes to the lowest code, so success beats a
//!   failure one for one (MTR galera-features#119: "successful slave wins"). A node whose
//!   vote lost is inconsistent by consensus. If every node failed alike, the failure wins and
//!   everybody carries on: the writeset is skipped everywhere.

use std::collections::BTreeMap;
use trireme_types::{NodeId, Seqno};

/// The vote of a member that applies nothing (an arbitrator): counted as cast, not counted
/// for any result.
pub const ABSTAIN: u64 = trireme_types::VOTE_ABSTAIN;

/// Decisions remembered for a waiter that arrives late (bounded).
const KEEP_DECIDED: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub winner: u64,
    /// This node's vote, if it cast one.
    pub mine: Option<u64>,
}

impl Decision {
    /// This node voted and lost.
    pub fn inconsistent(&self) -> bool {
        self.mine.is_some_and(|m| m != self.winner && m != ABSTAIN)
    }
}

#[derive(Default)]
pub struct VoteBook {
    pending: BTreeMap<Seqno, BTreeMap<NodeId, u64>>,
    mine: BTreeMap<Seqno, u64>,
    decided: BTreeMap<Seqno, Decision>,
    /// The members of the last primary view delivered: the voters.
    members: Vec<NodeId>,
}

impl VoteBook {
    /// A vote delivered in total order.
    pub fn record(&mut self, node: NodeId, seqno: Seqno, code: u64) {
        if self.decided.contains_key(&seqno) {
            return;
        }
        self.pending
            .entry(seqno)
            .or_default()
            .entry(node)
            .or_insert(code);
    }

    /// Notes this node's own vote before it is sent; `false` if it already voted.
    pub fn cast(&mut self, seqno: Seqno, code: u64) -> bool {
        if self.mine.contains_key(&seqno) || self.decided.contains_key(&seqno) {
            return false;
        }
        self.mine.insert(seqno, code);
        true
    }

    pub fn has_voted(&self, seqno: Seqno) -> bool {
        self.mine.contains_key(&seqno) || self.decided.contains_key(&seqno)
    }

    pub fn set_members(&mut self, members: Vec<NodeId>) {
        self.members = members;
    }

    /// Decides every pending vote that every current member has cast, in seqno order.
    pub fn decide(&mut self) -> Vec<(Seqno, Decision)> {
        let ready: Vec<Seqno> = self
            .pending
            .iter()
            .filter(|(_, votes)| {
                !self.members.is_empty() && self.members.iter().all(|m| votes.contains_key(m))
            })
            .map(|(s, _)| *s)
            .collect();
        let mut out = Vec::new();
        for seqno in ready {
            let votes = self.pending.remove(&seqno).unwrap_or_default();
            let counted = votes
                .iter()
                .filter(|(node, _)| self.members.contains(node))
                .map(|(_, code)| *code);
            let decision = Decision {
                winner: winner(counted),
                mine: self.mine.remove(&seqno),
            };
            self.decided.insert(seqno, decision);
            while self.decided.len() > KEEP_DECIDED {
                self.decided.pop_first();
            }
            out.push((seqno, decision));
        }
        out
    }

    pub fn decision(&self, seqno: Seqno) -> Option<Decision> {
        self.decided.get(&seqno).copied()
    }

    /// Forgets everything (a new connection, a new history).
    pub fn clear(&mut self) {
        *self = VoteBook::default();
    }
}

/// The code with the most votes, abstentions aside; ties go to the lowest code (0, success,
/// beats any failure it ties with). Nothing but abstentions: success.
pub fn winner(codes: impl Iterator<Item = u64>) -> u64 {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for code in codes.filter(|c| *c != ABSTAIN) {
        *counts.entry(code).or_default() += 1;
    }
    // BTreeMap iterates codes in ascending order; `max_by_key` keeps the last maximum, so
    // iterate in reverse to keep the lowest code among equals.
    counts
        .into_iter()
        .rev()
        .max_by_key(|(_, n)| *n)
        .map_or(0, |(code, _)| code)
}

/// A failure's vote: a digest of the server's error (FNV-1a), never 0 (success) nor
/// `ABSTAIN`. MariaDB's error buffer lists the errors as `message, Error_code: N;`; only the
/// codes are digested when there are any, so that the originator of a DDL and its appliers,
/// whose messages may be worded differently, vote alike when they fail alike.
pub fn error_code(message: &[u8]) -> u64 {
    let trimmed = match message.iter().rposition(|b| *b != 0) {
        Some(end) => &message[..=end],
        None => &[][..],
    };
    let text = String::from_utf8_lossy(trimmed);
    let codes: Vec<&str> = text
        .split("Error_code:")
        .skip(1)
        .map(|rest| rest.trim_start())
        .map(|rest| {
            &rest[..rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len())]
        })
        .filter(|code| !code.is_empty())
        .collect();
    let digested = if codes.is_empty() {
        trimmed.to_vec()
    } else {
        codes.join(";").into_bytes()
    };
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &digested {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    match hash {
        0 | ABSTAIN => 1,
        h => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_types::Uuid;

    fn node(b: u8) -> NodeId {
        NodeId(Uuid([b; 16]))
    }

    #[test]
    fn the_majority_wins_and_success_wins_a_tie() {
        assert_eq!(winner([7, 7, 0].into_iter()), 7);
        assert_eq!(winner([7, 0].into_iter()), 0);
        assert_eq!(winner([7, 9].into_iter()), 7, "ties go to the lowest code");
        assert_eq!(winner([9, 7, 9].into_iter()), 9);
        assert_eq!(winner([ABSTAIN, 7].into_iter()), 7);
        assert_eq!(winner([ABSTAIN].into_iter()), 0);
    }

    #[test]
    fn a_vote_is_decided_once_every_member_voted_and_the_loser_is_inconsistent() {
        let mut book = VoteBook::default();
        book.set_members(vec![node(1), node(2), node(3)]);
        let bad = error_code(b"Duplicate entry '1' for key 'PRIMARY'");
        assert!(book.cast(Seqno(5), bad));
        assert!(!book.cast(Seqno(5), 0), "one vote per seqno");
        book.record(node(2), Seqno(5), bad);
        book.record(node(3), Seqno(5), 0);
        assert!(book.decide().is_empty(), "node 1 has not voted");
        book.record(node(1), Seqno(5), 0);
        let decided = book.decide();
        assert_eq!(decided.len(), 1);
        let (seqno, decision) = decided[0];
        assert_eq!(seqno, Seqno(5));
        assert_eq!(decision.winner, 0);
        assert!(decision.inconsistent());
        assert_eq!(book.decision(Seqno(5)), Some(decision));
        // A late vote for a decided seqno changes nothing.
        book.record(node(3), Seqno(5), bad);
        assert!(book.decide().is_empty());
    }

    #[test]
    fn a_member_that_leaves_is_not_waited_for_and_its_vote_does_not_count() {
        let mut book = VoteBook::default();
        book.set_members(vec![node(1), node(2), node(3)]);
        let bad = error_code(b"no such table");
        book.cast(Seqno(9), bad);
        book.record(node(1), Seqno(9), bad);
        book.record(node(3), Seqno(9), 0);
        assert!(book.decide().is_empty());
        // Node 3 leaves; node 2 (the failing one's peer) failed alike.
        book.set_members(vec![node(1), node(2)]);
        assert!(book.decide().is_empty());
        book.record(node(2), Seqno(9), bad);
        let decided = book.decide();
        assert_eq!(decided[0].1.winner, bad, "everyone left failed alike");
        assert!(!decided[0].1.inconsistent());
    }

    #[test]
    fn error_codes_are_stable_and_never_mean_success() {
        // The same errors worded differently (originator and applier) vote alike.
        assert_eq!(
            error_code(b"Table 't1' already exists, Error_code: 1050;"),
            error_code(b"Error 'Table 't1' already exists' on query, Error_code: 1050;\0")
        );
        assert_ne!(
            error_code(b"Duplicate entry '1', Error_code: 1062;"),
            error_code(b"Table 't1' already exists, Error_code: 1050;")
        );
        assert_eq!(error_code(b"x\0\0"), error_code(b"x"));
        assert_ne!(error_code(b"x"), error_code(b"y"));
        assert_ne!(error_code(b""), 0);
        assert_ne!(error_code(b""), ABSTAIN);
    }
}
