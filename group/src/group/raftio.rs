//! Raft messages in and out: envelopes and lease stamps, validation of what arrives from the
//! network, the forced-vote filter, leader-death handling, and proposal forwarding.

use super::{Group, Phase, Succession, ViewState};
use crate::command::Command;
use crate::event::StepError;
use crate::lease::DerivedLease;
use crate::msg::{
    Abdicate, ForwardedProposal, Generation, LeaseStamp, Msg, ProposalBody, ProposeBatch,
    RaftEnvelope,
};
use crate::state::{Admission, SmState};
use crate::storage::LogStore;
use protobuf::Message as _;
use raft::eraftpb::{Message as RaftMessage, MessageType};
use raft::{RawNode, StateRole, CAMPAIGN_TRANSFER};
use trireme_types::NodeId;

/// Proposals per forwarded batch (bounded so one message stays small).
const MAX_FORWARD_BATCH: usize = 256;
/// Unconfirmed payload an origin keeps in flight, in parts (`max_part_bytes`): enough to
/// keep a large writeset streaming, little enough that no step handles much of it at once.
const IN_FLIGHT_PARTS: usize = 8;

/// Messages a leader sends that make a follower reset its election timer.
fn is_leader_message(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgAppend | MessageType::MsgHeartbeat | MessageType::MsgSnapshot
    )
}

impl Group {
    /// Wraps raft's outgoing messages for the transport.
    pub(super) fn queue_raft_messages(&mut self, msgs: Vec<RaftMessage>) {
        let Some(generation) = self.generation else {
            return;
        };
        for m in msgs {
            let Some(&to) = self.peers.get(&m.to) else {
                log::debug!(
                    "no node id known for raft id {}; dropping {:?}",
                    m.to,
                    m.get_msg_type()
                );
                continue;
            };
            if m.get_msg_type() == MessageType::MsgSnapshot {
                // The transport does not confirm delivery. Reporting "finished" at hand-off
                // puts the peer back into probing: if the snapshot was lost, its next answer
                // shows it and raft sends another (otherwise raft would wait forever).
                self.snapshots_sent.push(m.to);
            }
            let stamp = self.stamp_for(m.to);
            let bytes = match m.write_to_bytes() {
                Ok(b) => b,
                Err(e) => {
                    log::error!("cannot encode a raft message: {e}");
                    continue;
                }
            };
            self.out_messages.push((
                to,
                Msg::Raft(RaftEnvelope {
                    generation,
                    stamp,
                    message: bytes,
                }),
            ));
        }
    }

    fn stamp_for(&self, to: u64) -> LeaseStamp {
        let raft = &self.raw.raft;
        let mut stamp = LeaseStamp {
            term: raft.term,
            sent_tick: self.now,
            ..LeaseStamp::default()
        };
        if raft.state == StateRole::Leader {
            if let Some(lease) = &self.leader_lease {
                stamp.echo_tick = lease.ack(to).map_or(0, |a| a.follower_tick);
            }
            stamp.lease_remaining = self.lease_until().map_or(0, |u| u - self.now);
            stamp.compact_to = self.leader_compact_to;
        } else if let Some((term, leader, tick)) = self.echo {
            if term == raft.term && leader == to {
                stamp.echo_tick = tick;
            }
        }
        stamp
    }

    pub(super) fn on_raft(&mut self, from: NodeId, env: RaftEnvelope) -> Result<(), StepError> {
        let mut m =
            RaftMessage::parse_from_bytes(&env.message).map_err(|e| StepError::MalformedRaft {
                from,
                detail: e.to_string(),
            })?;
        self.validate_raft(from, &m)?;
        // The transport authenticated `from`: this is how a joiner learns raft ids.
        self.peers.insert(m.from, from);
        if !self.accept_generation(from, env.generation, m.get_msg_type())? {
            return Ok(());
        }
        if m.get_msg_type() == MessageType::MsgSnapshot {
            let snap = m.get_snapshot();
            let state = SmState::decode(snap.get_data()).map_err(|e| StepError::MalformedRaft {
                from,
                detail: format!("snapshot: {e}"),
            })?;
            if state.generation != env.generation {
                return Err(StepError::OtherGeneration { from });
            }
            self.snapshot_cache = Some((snap.get_metadata().index, state));
        }
        let msg_type = m.get_msg_type();
        let mut allowed_forced = false;
        let mut candidate_behind = false;
        if matches!(
            msg_type,
            MessageType::MsgRequestVote | MessageType::MsgRequestPreVote
        ) && m.get_context() == CAMPAIGN_TRANSFER
        {
            allowed_forced = self.allow_forced_vote(m.from);
            if !allowed_forced {
                // Treat it as a normal vote: raft's lease check applies.
                let mut plain = m.clone();
                plain.context = Vec::new().into();
                self.stripped_vote = Some(m);
                m = plain;
            } else {
                candidate_behind = !self.raw.raft.raft_log.is_up_to_date(m.index, m.log_term);
            }
        }
        let msg_term = m.term;
        // raft-rs asserts on messages that contradict its log (a buggy or hostile member can
        // send such a thing in valid protobuf). Such a panic must not take the process down;
        // the raft instance may be half-updated, so this node stops (and rejoins as new).
        let term_before = self.raw.raft.term;
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.raw.step(m)));
        let result = match stepped {
            Ok(r) => r,
            Err(_) => {
                let reason = format!("raft rejected a {msg_type:?} from {from} with a panic");
                self.fail_core(reason.clone());
                return Err(StepError::MalformedRaft {
                    from,
                    detail: reason,
                });
            }
        };
        let raft = &self.raw.raft;
        if msg_type == MessageType::MsgTimeoutNow
            && raft.term > term_before
            && (self.is_campaigning() || raft.state == StateRole::Leader)
        {
            // A graceful hand-over from our leader: a forced campaign, marked before the role
            // change is observed (a voter that weighs a quorum alone leads at once).
            self.forced_term = Some(raft.term);
        }
        self.fix_election_timeout();
        if let Err(e) = result {
            log::trace!("raft refused {msg_type:?} from {from}: {e}");
        }
        self.on_stamp(from.short_id(), msg_type, msg_term, env.stamp);
        if allowed_forced && candidate_behind && self.raw.raft.state == StateRole::Follower {
            // The old leader is dead and our log is ahead of the candidate's: it cannot win.
            // The survivors ahead of it take turns instead of waiting for a timeout.
            self.restart_succession(from.short_id());
        }
        Ok(())
    }

    /// Rejects what raft-rs would choke on or what can only be a local message.
    fn validate_raft(&self, from: NodeId, m: &RaftMessage) -> Result<(), StepError> {
        let bad = |detail: &str| {
            Err(StepError::MalformedRaft {
                from,
                detail: detail.to_string(),
            })
        };
        if m.from != from.short_id() {
            return Err(StepError::WrongSender {
                from,
                claimed: m.from,
            });
        }
        if m.to != self.me {
            return bad("addressed to another raft id");
        }
        match m.get_msg_type() {
            MessageType::MsgHup
            | MessageType::MsgBeat
            | MessageType::MsgUnreachable
            | MessageType::MsgSnapStatus
            | MessageType::MsgCheckQuorum
            | MessageType::MsgPropose
            | MessageType::MsgTransferLeader => return bad("local-only message type"),
            MessageType::MsgReadIndex => {
                if m.entries.len() != 1 {
                    return bad("read index request needs exactly one entry");
                }
                return Ok(());
            }
            MessageType::MsgSnapshot if m.get_snapshot().get_metadata().index == 0 => {
                return bad("empty snapshot");
            }
            _ => {}
        }
        if m.term == 0 {
            return bad("term 0 on a network message");
        }
        Ok(())
    }

    /// Raft messages of another generation are dropped, except that a node outside the
    /// primary component (or a fresh joiner) adopts a newer generation whose leader writes
    /// to it: it was admitted there (after `force_bootstrap` elsewhere).
    fn accept_generation(
        &mut self,
        from: NodeId,
        generation: Generation,
        t: MessageType,
    ) -> Result<bool, StepError> {
        match self.generation {
            Some(g) if g == generation => Ok(true),
            None if is_leader_message(t) => {
                self.generation = Some(generation);
                Ok(true)
            }
            None => Ok(false),
            Some(g) => {
                let may_switch = generation > g
                    && is_leader_message(t)
                    && self.phase == Phase::Member
                    && self.view_state != ViewState::Primary
                    && self.leaving.is_none();
                if !may_switch {
                    return Err(StepError::OtherGeneration { from });
                }
                log::info!(
                    "switching to group generation {} of {}",
                    generation.number,
                    generation.origin
                );
                let placeholder = Self::placeholder_state(&self.cfg, self.raw.store().sm.history);
                // Keep our view of the old state for the proposals epoch and the status; the
                // snapshot will replace it.
                let raw = RawNode::new(
                    &Self::raft_config(&self.cfg, 0),
                    LogStore::empty(placeholder),
                    &self.logger,
                );
                match raw {
                    Ok(raw) => {
                        self.raw = raw;
                        self.reset_raft_side(generation);
                        self.phase = Phase::Joining;
                        Ok(true)
                    }
                    Err(e) => {
                        log::error!("cannot restart raft for a new generation: {e}");
                        Ok(false)
                    }
                }
            }
        }
    }

    fn is_campaigning(&self) -> bool {
        matches!(
            self.raw.raft.state,
            StateRole::Candidate | StateRole::Leader
        )
    }

    /// Lease bookkeeping after raft has taken a message.
    fn on_stamp(&mut self, from: u64, t: MessageType, msg_term: u64, stamp: LeaseStamp) {
        let raft = &self.raw.raft;
        match raft.state {
            StateRole::Leader
                if stamp.term == raft.term && stamp.echo_tick > 0 && msg_term == raft.term =>
            {
                if let Some(lease) = self.leader_lease.as_mut().filter(|l| l.term == raft.term) {
                    lease.record_ack(from, stamp.echo_tick, stamp.sent_tick);
                }
            }
            // Raft accepted a message of our leader's current term: it reset its election
            // timer, so we may echo this send tick as a lease acknowledgement.
            StateRole::Follower
                if is_leader_message(t)
                    && raft.leader_id == from
                    && raft.term == stamp.term
                    && msg_term == raft.term =>
            {
                let term = raft.term;
                let tick = match self.echo {
                    Some((t0, l0, old)) if t0 == term && l0 == from => old.max(stamp.sent_tick),
                    _ => stamp.sent_tick,
                };
                self.echo = Some((term, from, tick));
                if stamp.echo_tick > 0 && stamp.lease_remaining > 0 {
                    let until = stamp.echo_tick + stamp.lease_remaining;
                    let better = self
                        .derived
                        .is_none_or(|d| d.term != term || d.leader != from || d.until < until);
                    if better {
                        self.derived = Some(DerivedLease {
                            term,
                            leader: from,
                            until,
                        });
                    }
                }
                if stamp.compact_to > self.follower_compact_to {
                    self.follower_compact_to = stamp.compact_to;
                }
            }
            _ => {}
        }
    }

    /// A forced (lease-bypassing) vote is granted only on our own evidence that the current
    /// leader is gone: we saw its connection close, or it abdicated to this candidate.
    fn allow_forced_vote(&self, candidate: u64) -> bool {
        let raft = &self.raw.raft;
        let leader = raft.leader_id;
        if leader == 0 {
            return true;
        }
        if leader == self.me {
            let target = self.transfer_target();
            return self.leader_lease.as_ref().is_some_and(|l| l.abdicated)
                && target == Some(candidate);
        }
        if self
            .peers
            .get(&leader)
            .is_some_and(|n| self.lost.contains_key(n))
        {
            return true;
        }
        self.abdication_seen == Some((raft.term, leader, candidate))
    }

    pub(super) fn on_abdicate(&mut self, from: NodeId, a: Abdicate) {
        if Some(a.generation) != self.generation {
            return;
        }
        let raft = &self.raw.raft;
        if raft.leader_id == from.short_id() && raft.term == a.term {
            self.abdication_seen = Some((a.term, from.short_id(), a.successor.short_id()));
            // The successor's vote request may have overtaken this notice.
            if let Some(m) = self.stripped_vote.take() {
                if m.from == a.successor.short_id() && m.term > raft.term {
                    let _ = self.raw.step(m);
                    self.fix_election_timeout();
                }
            }
        }
    }

    pub(super) fn on_peer_lost(&mut self, peer: NodeId) {
        if self.phase != Phase::Member || self.raw.raft.state == StateRole::Leader {
            return;
        }
        if self.peers.get(&self.raw.raft.leader_id) != Some(&peer) {
            return;
        }
        // Someone may already be campaigning: grant it now that we know.
        self.dead_leader = self.raw.raft.leader_id;
        if let Some(m) = self.stripped_vote.take() {
            if m.term > self.raw.raft.term {
                let m_from = m.from;
                let candidate_behind = !self.raw.raft.raft_log.is_up_to_date(m.index, m.log_term);
                let _ = self.raw.step(m);
                self.fix_election_timeout();
                if candidate_behind && self.raw.raft.state == StateRole::Follower {
                    // Our log is ahead of that candidate's: it cannot win with our vote.
                    self.restart_succession(m_from);
                    return;
                }
            }
        }
        if self.raw.raft.state != StateRole::Follower || self.raw.raft.leader_id == 0 {
            return;
        }
        self.leader_lost = Some(Succession {
            dead_leader: self.raw.raft.leader_id,
            since: self.now,
            attempts: 0,
            excluded: 0,
        });
        self.successor_tick();
    }

    fn restart_succession(&mut self, excluded: u64) {
        if self.dead_leader == 0 {
            return;
        }
        self.leader_lost = Some(Succession {
            dead_leader: self.dead_leader,
            since: self.now,
            attempts: 0,
            excluded,
        });
        self.successor_tick();
    }

    /// Deterministic tie-break so the survivors do not split the vote: the surviving voters
    /// take turns in raft-id order, a stagger apart (`since + (rank + k * n) * stagger`), until
    /// a live leader is known or three rounds have passed (then raft's own timers take over).
    /// A survivor cut off from the others does not hold everyone up, and two survivors that
    /// noticed the death at slightly different times cannot keep splitting the vote.
    pub(super) fn successor_tick(&mut self) {
        let Some(Succession {
            dead_leader,
            since,
            attempts,
            excluded,
        }) = self.leader_lost
        else {
            return;
        };
        let raft = &self.raw.raft;
        let live_leader = raft.leader_id != 0 && raft.leader_id != dead_leader;
        if live_leader || raft.state == StateRole::Leader || self.phase != Phase::Member {
            self.leader_lost = None;
            return;
        }
        let dead = self.peers.get(&dead_leader).copied();
        let mut ranked: Vec<u64> = self
            .raw
            .store()
            .sm
            .voters()
            .filter(|m| {
                Some(m.info.id) != dead
                    && !self.lost.contains_key(&m.info.id)
                    && m.short != excluded
            })
            .map(|m| m.short)
            .collect();
        ranked.sort_unstable();
        let Some(rank) = ranked.iter().position(|s| *s == self.me) else {
            self.leader_lost = None;
            return;
        };
        const ROUNDS: u64 = 3;
        if attempts >= ROUNDS {
            self.leader_lost = None;
            return;
        }
        let stagger = (2 * self.cfg.heartbeat_ticks).max(self.cfg.election_ticks / 4);
        let turn = rank as u64 + attempts * ranked.len() as u64;
        if self.now >= since + turn * stagger {
            self.leader_lost = Some(Succession {
                dead_leader,
                since,
                attempts: attempts + 1,
                excluded,
            });
            // We voted for another survivor in this term: its election is under way.
            let voted_other = raft.vote != 0 && raft.vote != self.me && raft.vote != dead_leader;
            if !voted_other {
                self.campaign_forced();
            }
        }
    }

    /// Campaigns with raft's transfer type (no pre-vote, bypasses voters' lease check).
    pub(super) fn campaign_forced(&mut self) {
        let raft = &self.raw.raft;
        if raft.state == StateRole::Leader
            || !raft.promotable()
            || raft.snap().is_some()
            || raft.raft_log.applied != raft.raft_log.committed
        {
            return;
        }
        self.raw.raft.campaign(CAMPAIGN_TRANSFER);
        self.forced_term = Some(self.raw.raft.term);
        self.fix_election_timeout();
    }

    // ----------------------------------------------------------------------------------
    // Proposal forwarding
    // ----------------------------------------------------------------------------------

    pub(super) fn on_propose_batch(&mut self, from: NodeId, batch: ProposeBatch) {
        if Some(batch.generation) != self.generation || self.raw.raft.state != StateRole::Leader {
            return;
        }
        if !self.raw.store().sm.is_member(from) {
            return;
        }
        for p in batch.proposals {
            if !self.propose_as_leader(from, p) {
                break;
            }
        }
    }

    /// Appends one proposal to the log as leader. Proposals already delivered (or from an
    /// abandoned epoch) are dropped here to keep retries out of the log; whatever still gets
    /// in twice is skipped at delivery.
    fn propose_as_leader(&mut self, origin: NodeId, p: ForwardedProposal) -> bool {
        if self.tail_admit(origin, p.epoch, p.seq) != Admission::Deliver {
            return true;
        }
        let command = match p.body {
            ProposalBody::Writeset(payload) => Command::Writeset {
                origin,
                epoch: p.epoch,
                seq: p.seq,
                payload,
            },
            ProposalBody::Control(control) => Command::Control {
                origin,
                epoch: p.epoch,
                seq: p.seq,
                control,
            },
            ProposalBody::WritesetPart { part, parts, bytes } => Command::WritesetPart {
                origin,
                epoch: p.epoch,
                seq: p.seq,
                part,
                parts,
                bytes,
            },
        };
        if self.raw.propose(Vec::new(), command.encode()).is_err() {
            return false;
        }
        self.tail.insert(origin, (p.epoch, p.seq));
        true
    }

    /// Admission against the log's tail (the leader's log, applied or not). Delivery still
    /// decides for sure (entries of an earlier leader may sit in the log); this only keeps
    /// duplicates and gaps from being appended.
    fn tail_admit(&self, origin: NodeId, epoch: u64, seq: u64) -> Admission {
        let sm = &self.raw.store().sm;
        let Some(rec) = sm.member(origin) else {
            return Admission::NotMember;
        };
        let (e, last) = match self.tail.get(&origin) {
            Some(&(te, ts)) if (te, ts) > (rec.epoch, rec.last_seq) => (te, ts),
            _ => (rec.epoch, rec.last_seq),
        };
        if epoch < e {
            Admission::StaleEpoch
        } else if epoch == e {
            if seq <= last {
                Admission::Duplicate
            } else if seq == last + 1 {
                Admission::Deliver
            } else {
                Admission::Gap
            }
        } else if seq == 1 {
            Admission::Deliver
        } else {
            Admission::Gap
        }
    }

    /// Rebuilds the tail from the unapplied part of our log (on becoming leader).
    pub(super) fn rebuild_tail(&mut self) {
        self.tail.clear();
        let applied = self.raw.store().sm.applied_index;
        let last = self.raw.raft.raft_log.last_index();
        if last <= applied {
            return;
        }
        let ents = self.raw.raft.raft_log.entries(
            applied + 1,
            None,
            raft::GetEntriesContext::empty(false),
        );
        let Ok(ents) = ents else { return };
        for e in ents {
            if e.get_entry_type() != raft::eraftpb::EntryType::EntryNormal
                || e.get_data().is_empty()
            {
                continue;
            }
            let (origin, epoch, seq) = match Command::decode(e.get_data()) {
                Some(Command::Writeset {
                    origin, epoch, seq, ..
                }) => (origin, epoch, seq),
                Some(Command::Control {
                    origin, epoch, seq, ..
                }) => (origin, epoch, seq),
                Some(Command::WritesetPart {
                    origin, epoch, seq, ..
                }) => (origin, epoch, seq),
                _ => continue,
            };
            if self.tail_admit(origin, epoch, seq) == Admission::Deliver {
                self.tail.insert(origin, (epoch, seq));
            }
        }
    }

    /// Sends unconfirmed proposals to the current leader (all of them after a leader change
    /// or when a resend is due, otherwise only those not sent yet). Returns whether anything
    /// was appended locally (as leader).
    pub(super) fn flush_proposals(&mut self) -> bool {
        if self.props.pending.is_empty() || self.phase != Phase::Member {
            return false;
        }
        let window = IN_FLIGHT_PARTS * self.cfg.max_part_bytes;
        let raft = &self.raw.raft;
        let leader = raft.leader_id;
        if leader == 0 {
            return false;
        }
        let target = (leader, raft.term);
        if self.props.sent_to != Some(target) || self.props.resend_all {
            self.props.sent_to = Some(target);
            self.props.clear_sent();
            self.props.resend_all = false;
        }
        if self.props.sent >= self.props.pending.len() {
            return false;
        }
        if leader == self.me {
            if self.raw.raft.lead_transferee.is_some() {
                return false;
            }
            let mut appended = false;
            while self.props.may_send(window) {
                let p = self.props.pending[self.props.sent].clone();
                let fp = ForwardedProposal {
                    epoch: p.epoch,
                    seq: p.seq,
                    body: p.body,
                };
                let me = self.cfg.node;
                if !self.propose_as_leader(me, fp) {
                    break;
                }
                appended = true;
                self.props.mark_sent();
            }
            return appended;
        }
        let Some(to) = self.peers.get(&leader).copied() else {
            return false;
        };
        let Some(generation) = self.generation else {
            return false;
        };
        while self.props.may_send(window) {
            // At most MAX_FORWARD_BATCH proposals and about one append's worth of bytes per
            // message (the parts of a large writeset go in several).
            let start = self.props.sent;
            let mut bytes = 0usize;
            while self.props.may_send(window)
                && self.props.sent < start + MAX_FORWARD_BATCH
                && (self.props.sent == start || bytes < self.cfg.max_append_bytes as usize)
            {
                bytes += self.props.pending[self.props.sent].body.payload_len();
                self.props.mark_sent();
            }
            let end = self.props.sent;
            let proposals: Vec<ForwardedProposal> = self
                .props
                .pending
                .range(start..end)
                .map(|p| ForwardedProposal {
                    epoch: p.epoch,
                    seq: p.seq,
                    body: p.body.clone(),
                })
                .collect();
            self.out_messages.push((
                to,
                Msg::Propose(ProposeBatch {
                    generation,
                    proposals,
                }),
            ));
        }
        false
    }

    pub(super) fn transfer_target(&self) -> Option<u64> {
        self.raw.raft.lead_transferee
    }
}
