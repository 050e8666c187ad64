//! The leader's duties: membership changes (one raft configuration change at a time, each
//! followed by a view entry), suspect removal, graceful hand-over, commit cut, compaction.
//!
//! Joins go through raft learners: a joiner is added as a learner, receives a snapshot (the
//! group state, not data) and the log after it, and is promoted to voter once it has caught
//! up. A joiner that dies before that never counts toward the quorum.

use super::{Group, Phase, ViewState};
use crate::command::{Command, MemberAdd, WeightStep};
use crate::msg::{Abdicate, Msg};
use raft::eraftpb::{ConfChange, ConfChangeType};
use raft::StateRole;
use std::cmp::Reverse;
use trireme_types::{NodeId, Seqno};

/// A learner within this many entries of the commit index is promoted to voter.
const PROMOTION_LAG_ENTRIES: u64 = 64;

impl Group {
    pub(super) fn on_become_leader(&mut self) {
        let now = self.now;
        let ids: Vec<NodeId> = self
            .raw
            .store()
            .sm
            .members
            .iter()
            .map(|m| m.info.id)
            .collect();
        for id in ids {
            let t = self.last_heard.entry(id).or_insert(now);
            *t = (*t).max(now);
        }
        self.view_proposal = None;
        self.cut_proposed = self.raw.store().sm.commit_cut;
        self.committed_reports.clear();
        self.props.resend_all = true;
        self.rebuild_tail();
    }

    /// Proposes at most one membership step. Returns whether it proposed something.
    pub(super) fn reconcile(&mut self) -> bool {
        if self.raw.raft.state != StateRole::Leader
            || self.phase != Phase::Member
            || self.leaving.is_some()
        {
            return false;
        }
        if self.raw.raft.lead_transferee.is_some() || self.raw.raft.has_pending_conf() {
            return false;
        }
        let term = self.raw.raft.term;
        if let Some((t, index)) = self.view_proposal {
            if t == term && self.raw.store().sm.applied_index < index {
                return false;
            }
            self.view_proposal = None;
        }
        let sm = &self.raw.store().sm;
        // The leader itself lost the primary view but holds a lease again: a fresh view.
        if self.view_state != ViewState::Primary
            && sm.is_voter(self.cfg.node)
            && self.lease_until().is_some()
        {
            self.refresh_view_wanted = true;
        }
        let refresh_due = self.refresh_view_wanted
            && (self.last_refresh_tick == 0
                || self.now >= self.last_refresh_tick + self.cfg.election_ticks);
        if !sm.view_matches_members() || refresh_due {
            let after = sm.last_view_id;
            if self
                .raw
                .propose(Vec::new(), Command::View { after }.encode())
                .is_err()
            {
                return false;
            }
            self.view_proposal = Some((term, self.raw.raft.raft_log.last_index()));
            self.refresh_view_wanted = false;
            self.last_refresh_tick = self.now;
            return true;
        }
        if let Some(short) = self.removal_candidate() {
            // Removing a voter that weighs more than one could leave old and new quorums
            // apart: it is weighed down to one first, a unit at a time.
            let sm = &self.raw.store().sm;
            let heavy = sm
                .member_by_short(short)
                .filter(|m| m.voter && m.weight > 1);
            if let Some(m) = heavy {
                let step = WeightStep {
                    weight: m.weight - 1,
                };
                return self.propose_conf(ConfChangeType::AddNode, short, step.encode());
            }
            return self.propose_conf(ConfChangeType::RemoveNode, short, Vec::new());
        }
        if let Some((short, weight)) = self.weight_candidate() {
            let step = WeightStep { weight };
            return self.propose_conf(ConfChangeType::AddNode, short, step.encode());
        }
        if let Some(short) = self.promotion_candidate() {
            return self.propose_conf(ConfChangeType::AddNode, short, Vec::new());
        }
        if let Some((short, context)) = self.join_candidate() {
            return self.propose_conf(ConfChangeType::AddLearnerNode, short, context);
        }
        false
    }

    fn propose_conf(&mut self, kind: ConfChangeType, short: u64, context: Vec<u8>) -> bool {
        let mut cc = ConfChange::default();
        cc.set_change_type(kind);
        cc.node_id = short;
        cc.context = context.into();
        match self.raw.propose_conf_change(Vec::new(), cc) {
            Ok(()) => true,
            Err(e) => {
                log::debug!("configuration change {kind:?} of {short} not proposed: {e}");
                false
            }
        }
    }

    /// A member whose connection closed (evidence of death, removed first), then one that
    /// asked to leave, then one silent for the suspect timeout. Never the leader itself (it
    /// hands over first), and only while we hear a majority of the remaining voters, each of
    /// them after the evidence against the victim appeared. Evidence can be wrong (a reset
    /// connection between live processes) or one of two simultaneous failures; removing a
    /// live member while a dead one stays can leave a configuration that no surviving
    /// majority can change again.
    fn removal_candidate(&self) -> Option<u64> {
        let sm = &self.raw.store().sm;
        let silent_since = self.now.saturating_sub(self.cfg.suspect_ticks);
        let recent = self.now.saturating_sub(self.cfg.election_ticks);
        let others = || sm.members.iter().filter(|m| m.short != self.me);
        let heard = |id: &NodeId| self.last_heard.get(id).copied().unwrap_or(0);
        // (victim, tick its evidence appeared)
        let lost = others().filter_map(|m| self.lost.get(&m.info.id).map(|t| (m.short, *t)));
        let leaving = others()
            .filter(|m| {
                self.leave_queue.contains(&m.info.id) || sm.evicted_by_operator.contains(&m.info.id)
            })
            .map(|m| (m.short, recent));
        let silent = others()
            .filter(|m| heard(&m.info.id) < silent_since)
            .map(|m| (m.short, heard(&m.info.id) + self.cfg.suspect_ticks));
        let safe = |(victim, evidence): (u64, u64)| {
            let since = evidence.max(recent);
            let rest: Vec<_> = sm.voters().filter(|m| m.short != victim).collect();
            let live: Vec<u64> = rest
                .iter()
                .filter(|m| {
                    m.short == self.me
                        || (!self.lost.contains_key(&m.info.id) && heard(&m.info.id) > since)
                })
                .map(|m| m.short)
                .collect();
            let mut weights = sm.voter_weights();
            weights.retain(|(short, _)| *short != victim);
            crate::lease::weighs_a_quorum(&weights, |short| live.contains(&short))
        };
        lost.chain(leaving)
            .chain(silent)
            .find(|c| safe(*c))
            .map(|(v, _)| v)
    }

    /// A voter we heard from recently whose weight is not the one it asked for, with its
    /// next weight (one unit closer). Not one on its way out (leaving or evicted): it is
    /// being weighed down for its removal, and stepping it back up would undo that.
    fn weight_candidate(&self) -> Option<(u64, u8)> {
        let sm = &self.raw.store().sm;
        let leaving =
            |id: &NodeId| self.leave_queue.contains(id) || sm.evicted_by_operator.contains(id);
        sm.voters()
            .filter(|m| !leaving(&m.info.id) && self.heard_alive(m.info.id))
            .find_map(|m| sm.weight_step(m.short).map(|w| (m.short, w)))
    }

    fn promotion_candidate(&self) -> Option<u64> {
        let raft = &self.raw.raft;
        let committed = raft.raft_log.committed;
        let recent = self.now.saturating_sub(self.cfg.election_ticks);
        self.raw
            .store()
            .sm
            .members
            .iter()
            .filter(|m| !m.voter)
            .find_map(|m| {
                let pr = raft.prs().get(m.short)?;
                let caught_up = pr.matched > 0 && pr.matched + PROMOTION_LAG_ENTRIES >= committed;
                let alive = self
                    .last_heard
                    .get(&m.info.id)
                    .is_some_and(|t| *t >= recent);
                (caught_up && alive).then_some(m.short)
            })
    }

    /// The oldest queued joiner we heard from recently; stale requests are dropped.
    fn join_candidate(&mut self) -> Option<(u64, Vec<u8>)> {
        let recent = self.now.saturating_sub(self.cfg.election_ticks);
        let (now_heard, lost) = (&self.last_heard, &self.lost);
        self.join_queue.retain(|id, _| {
            !lost.contains_key(id) && now_heard.get(id).is_some_and(|t| *t >= recent)
        });
        let sm = &self.raw.store().sm;
        let (_, req) = self.join_queue.iter().find(|(id, _)| !sm.is_member(**id))?;
        let add = MemberAdd {
            info: req.member.clone(),
            epoch: req.epoch,
            weight: req.weight,
        };
        Some((req.member.id.short_id(), add.encode()))
    }

    /// Graceful hand-over before leaving: to the voter with the most log, and tell the
    /// voters so that they may grant the successor's forced vote. Our lease ends now.
    pub(super) fn start_transfer(&mut self) {
        let successor = self.successor();
        let Some((short, node)) = successor else {
            if self.leaving.is_some() {
                self.finish_left();
            }
            return;
        };
        self.transfer_started = Some(self.now);
        if let Some(lease) = self.leader_lease.as_mut() {
            lease.abdicated = true;
        }
        let Some(generation) = self.generation else {
            return;
        };
        let term = self.raw.raft.term;
        self.announce_abdication(generation, term, node);
        self.raw.transfer_leader(short);
    }

    /// The voter other than us with the most log (ties: the lowest raft id), not known lost.
    fn successor(&self) -> Option<(u64, NodeId)> {
        let raft = &self.raw.raft;
        self.raw
            .store()
            .sm
            .voters()
            .filter(|m| m.short != self.me && !self.lost.contains_key(&m.info.id))
            .max_by_key(|m| {
                (
                    raft.prs().get(m.short).map_or(0, |p| p.matched),
                    Reverse(m.short),
                )
            })
            .map(|m| (m.short, m.info.id))
    }

    /// Tells every voter but us that `successor` takes over, so they grant its forced vote.
    fn announce_abdication(&mut self, generation: crate::Generation, term: u64, successor: NodeId) {
        let voters: Vec<NodeId> = self
            .raw
            .store()
            .sm
            .voters()
            .filter(|m| m.short != self.me)
            .map(|m| m.info.id)
            .collect();
        for v in voters {
            self.out_messages.push((
                v,
                Msg::Abdicate(Abdicate {
                    generation,
                    term,
                    successor,
                }),
            ));
        }
    }

    /// A leader that applied its own removal hands over at once and steps down: raft-rs
    /// cannot keep leading without itself in the configuration. The successor (the voter
    /// with the most log) gets raft's `MsgTimeoutNow` directly, the voters an `Abdicate` so
    /// they grant its forced vote; if that fails, raft's timers elect someone.
    pub(super) fn step_down_removed(&mut self) {
        let successor = self.successor();
        let term = self.raw.raft.term;
        if let (Some((short, node)), Some(generation)) = (successor, self.generation) {
            self.announce_abdication(generation, term, node);
            self.raw.raft.send_timeout_now(short);
        }
        self.raw.raft.become_follower(term, 0);
    }

    /// Every heartbeat: the commit cut and log compaction.
    pub(super) fn leader_heartbeat_duties(&mut self) {
        self.maybe_propose_commit_cut();
        self.compact_leader_log();
    }

    /// The cut is the lowest seqno every voter has reported committed.
    fn maybe_propose_commit_cut(&mut self) {
        let sm = &self.raw.store().sm;
        let mut cut: Option<Seqno> = None;
        for m in sm.voters() {
            let Some(reported) = self.committed_reports.get(&m.info.id).copied() else {
                return;
            };
            cut = Some(cut.map_or(reported, |c| c.min(reported)));
        }
        let Some(cut) = cut else { return };
        let cut = cut.min(sm.last_seqno);
        if cut <= sm.commit_cut || cut <= self.cut_proposed {
            return;
        }
        if self
            .raw
            .propose(Vec::new(), Command::CommitCut { seqno: cut }.encode())
            .is_ok()
        {
            self.cut_proposed = cut;
        }
    }

    /// Compacts up to what every member has (and we applied); beyond `max_log_entries` a
    /// lagging member is left to a snapshot.
    fn compact_leader_log(&mut self) {
        let raft = &self.raw.raft;
        let store = self.raw.store();
        let applied = store.sm.applied_index;
        let mut upto = applied;
        for m in &store.sm.members {
            let matched = if m.short == self.me {
                raft.raft_log.persisted
            } else {
                raft.prs().get(m.short).map_or(0, |p| p.matched)
            };
            upto = upto.min(matched);
        }
        if store.len() > self.cfg.max_log_entries {
            upto = upto.max(applied.saturating_sub(self.cfg.max_log_entries / 2));
        }
        self.leader_compact_to = upto;
        self.raw.mut_store().compact(upto);
    }
}
