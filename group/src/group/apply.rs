//! Draining raft's readiness: the log append, snapshot installation, and turning committed
//! entries into events in total order.

use super::{Group, Phase, ViewState};
use crate::command::{Command, MemberAdd, WeightStep};
use crate::event::{Event, GroupView, ProposalFailReason};
use crate::state::Applied;
use protobuf::Message as _;
use raft::eraftpb::{ConfChange, ConfChangeType, ConfChangeV2, Entry, EntryType, Snapshot};
use raft::ReadState;
use trireme_types::Seqno;

impl Group {
    /// Processes raft's `Ready`s until none is left (raft-rs's documented order).
    pub(super) fn drive(&mut self) {
        // Bounded: each round consumes raft work; raft produces more only from our inputs.
        for _ in 0..1024 {
            self.maybe_step_down();
            self.fix_election_timeout();
            if !self.raw.has_ready() || self.phase == Phase::Left {
                return;
            }
            let mut rd = self.raw.ready();
            let msgs = rd.take_messages();
            self.queue_raft_messages(msgs);
            if !rd.snapshot().is_empty() {
                let snap = rd.snapshot().clone();
                self.install_snapshot(&snap);
            }
            let committed = rd.take_committed_entries();
            self.apply_entries(committed);
            if !rd.entries().is_empty() {
                self.raw.mut_store().append(rd.entries());
            }
            if let Some(hs) = rd.hs() {
                self.raw.mut_store().set_hard_state(hs.clone());
            }
            for rs in rd.take_read_states() {
                self.on_read_state(rs);
            }
            let persisted = rd.take_persisted_messages();
            self.queue_raft_messages(persisted);
            // A removed leader must be a follower before `advance` (raft-rs would look for
            // itself in its progress set); its messages leave now, everything is persisted.
            if self.maybe_step_down() {
                let msgs = std::mem::take(&mut self.raw.raft.msgs);
                self.queue_raft_messages(msgs);
            }
            let mut light = self.raw.advance(rd);
            let msgs = light.take_messages();
            self.queue_raft_messages(msgs);
            let committed = light.take_committed_entries();
            self.apply_entries(committed);
            self.raw.advance_apply();
            self.notify_commit_origins();
            for peer in std::mem::take(&mut self.snapshots_sent) {
                self.raw.report_snapshot(peer, raft::SnapshotStatus::Finish);
            }
        }
        log::error!("raft kept producing work for 1024 rounds; continuing at the next input");
    }

    fn maybe_step_down(&mut self) -> bool {
        if !std::mem::take(&mut self.step_down_pending)
            || self.raw.raft.state != raft::StateRole::Leader
        {
            return false;
        }
        self.step_down_removed();
        true
    }

    fn install_snapshot(&mut self, snap: &Snapshot) {
        let index = snap.get_metadata().index;
        let state = match self.snapshot_cache.take() {
            Some((i, s)) if i == index => s,
            _ => match crate::state::SmState::decode(snap.get_data()) {
                Ok(s) => s,
                Err(e) => {
                    // Validated in `on_raft`; reaching here means a bug. Keep going without
                    // the state rather than take the process down.
                    log::error!("snapshot at index {index} no longer decodes: {e}");
                    return;
                }
            },
        };
        let old_last = self.raw.store().sm.last_seqno;
        let new_last = state.last_seqno;
        assert!(
            self.phase == Phase::Joining
                || state.history != self.raw.store().sm.history
                || new_last >= old_last,
            "a snapshot never moves the delivered seqno back"
        );
        self.raw.mut_store().apply_snapshot(snap, state);
        self.sync_weights();
        let sm = &self.raw.store().sm;
        for m in &sm.members {
            self.peers.insert(m.short, m.info.id);
        }
        self.generation = Some(sm.generation);
        let me = self.cfg.node;
        let view = sm
            .view
            .as_ref()
            .map(|v| GroupView::primary_from(v, sm.history, me));
        let in_view = view.as_ref().is_some_and(|v| v.my_index.is_some());
        // Our own proposals inside the skipped range were ordered or not: state transfer
        // decides. Later ones stay queued.
        if let Some(rec) = sm.member(me) {
            let (epoch, last_seq) = (rec.epoch, rec.last_seq);
            let mut out = Vec::new();
            self.props.resync(epoch, last_seq, &mut out);
            self.out_events.extend(out);
        }
        self.phase = Phase::Member;
        self.view_state = if in_view {
            ViewState::Primary
        } else {
            ViewState::Outside
        };
        self.unleased_ticks = 0;
        self.last_view = view.clone();
        self.out_events.push(Event::Joined {
            view,
            start_seqno: new_last,
        });
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) {
        for e in entries {
            if self.phase == Phase::Left {
                return;
            }
            let index = e.index;
            match e.get_entry_type() {
                EntryType::EntryNormal => {
                    let command = if e.get_data().is_empty() {
                        None
                    } else {
                        Command::decode(e.get_data())
                    };
                    let applied = self.raw.mut_store().sm.apply(index, command);
                    self.on_applied(applied);
                }
                EntryType::EntryConfChange => {
                    self.raw.mut_store().sm.advance_index(index);
                    match ConfChange::parse_from_bytes(e.get_data()) {
                        Ok(cc) => self.apply_conf_change(cc),
                        Err(err) => {
                            log::error!("undecodable configuration change at {index}: {err}")
                        }
                    }
                }
                EntryType::EntryConfChangeV2 => {
                    // Never proposed by us (no joint consensus); applied for raft's sake.
                    self.raw.mut_store().sm.advance_index(index);
                    if let Ok(cc) = ConfChangeV2::parse_from_bytes(e.get_data()) {
                        if let Err(err) = self.raw.apply_conf_change(&cc) {
                            log::error!("configuration change v2 at {index} refused: {err}");
                        }
                    }
                }
            }
            self.release_read_points();
        }
    }

    /// Mirrors a raft configuration change in the state machine. Changes whose member data
    /// does not check out are skipped by raft and state machine alike (deterministically).
    fn apply_conf_change(&mut self, cc: ConfChange) {
        let short = cc.node_id;
        let kind = cc.get_change_type();
        if kind == ConfChangeType::AddNode && !cc.get_context().is_empty() {
            self.apply_weight_step(short, cc.get_context());
            return;
        }
        let add = match kind {
            ConfChangeType::AddLearnerNode => match MemberAdd::decode(cc.get_context()) {
                Some(a) if a.info.id.short_id() == short => Some(a),
                _ => {
                    log::error!("skipping a learner addition without valid member data");
                    return;
                }
            },
            ConfChangeType::AddNode => {
                if self.raw.store().sm.member_by_short(short).is_none() {
                    log::error!("skipping promotion of unknown raft id {short}");
                    return;
                }
                None
            }
            ConfChangeType::RemoveNode => None,
        };
        if let Err(err) = self.raw.apply_conf_change(&cc) {
            log::error!("configuration change {kind:?} of {short} refused by raft: {err}");
            return;
        }
        let sm = &mut self.raw.mut_store().sm;
        match kind {
            ConfChangeType::AddLearnerNode => {
                let add = add.expect("checked above");
                self.peers.insert(short, add.info.id);
                let joiner = add.info.id;
                sm.add_learner(short, add);
                self.join_queue.remove(&joiner);
                if joiner == self.cfg.node {
                    // Readmitted: continue numbering from the epoch the group gave us.
                    let rec = self
                        .raw
                        .store()
                        .sm
                        .member(joiner)
                        .map(|m| (m.epoch, m.last_seq));
                    if let Some((epoch, last_seq)) = rec {
                        let mut out = Vec::new();
                        self.props.resync(epoch, last_seq, &mut out);
                        self.out_events.extend(out);
                    }
                }
            }
            ConfChangeType::AddNode => {
                sm.promote(short);
                self.sync_weights();
            }
            ConfChangeType::RemoveNode => {
                let removed = sm.remove_member(short);
                self.sync_weights();
                if let Some(rec) = removed {
                    self.leave_queue.remove(&rec.info.id);
                    self.committed_reports.remove(&rec.info.id);
                    if short == self.me {
                        self.on_removed();
                    }
                }
            }
        }
    }

    /// A voter's weight moves by one (see `command::WeightStep`). For raft the change is
    /// re-adding a voter, a no-op that still goes through its configuration-change path;
    /// invalid steps are skipped by every node alike.
    fn apply_weight_step(&mut self, short: u64, context: &[u8]) {
        let step = WeightStep::decode(context);
        let sm = &self.raw.store().sm;
        let Some(step) = step.filter(|s| sm.weight_step_valid(short, s.weight)) else {
            log::error!("skipping an invalid weight step for raft id {short}");
            return;
        };
        let mut cc = ConfChange::default();
        cc.set_change_type(ConfChangeType::AddNode);
        cc.node_id = short;
        if let Err(err) = self.raw.apply_conf_change(&cc) {
            log::error!("weight step of {short} refused by raft: {err}");
            return;
        }
        self.raw
            .mut_store()
            .sm
            .apply_weight_step(short, step.weight);
        self.sync_weights();
        if let Some(m) = self.raw.store().sm.member_by_short(short) {
            log::info!("Member {} now weighs {} in quorums", m.info.id, step.weight);
        }
    }

    /// Hands the voters' weights to raft's quorums. Called wherever the voters or their
    /// weights change (at the same log position on every node) and after a snapshot.
    pub(super) fn sync_weights(&mut self) {
        let weights = self.raw.store().sm.weights();
        if self.raw.raft.prs().weights() != weights.as_ref() {
            self.raw.raft.mut_prs().set_weights(weights);
        }
    }

    fn on_removed(&mut self) {
        if self.leaving.is_some() {
            self.finish_left();
            return;
        }
        // Expected after a partition or isolation (the others went on without this node): a
        // note, as Galera's own rejoin is.
        log::info!("This node was removed from the configuration; asking to be readmitted");
        self.enter_non_primary(ProposalFailReason::Removed);
        self.view_state = ViewState::Outside;
        if self.raw.raft.state == raft::StateRole::Leader {
            // raft-rs keeps a removed leader leading, and panics on the next acknowledgement
            // (it is no longer in its own progress set): step down, handing over, as soon as
            // this Ready is done (raft-rs forbids the role change in the middle of one).
            self.step_down_pending = true;
        }
    }

    /// Leader: sends the commit index now to the followers whose entries were just
    /// committed (with `skip_bcast_commit` nobody else hears of it before the next append or
    /// tick). The messages are taken by the next round of `drive`.
    fn notify_commit_origins(&mut self) {
        let origins = std::mem::take(&mut self.commit_notify);
        if self.raw.raft.state != raft::StateRole::Leader {
            return;
        }
        for id in origins {
            if id != self.me && self.raw.raft.prs().get(id).is_some() {
                self.raw.raft.send_append(id);
            }
        }
    }

    /// Leader, every tick: followers that heard of no commit since the last tick hear of it
    /// now (a follower with no client of its own waits at most one tick to apply).
    pub(super) fn broadcast_commit_on_tick(&mut self) {
        let raft = &self.raw.raft;
        if raft.state != raft::StateRole::Leader {
            return;
        }
        let committed = raft.raft_log.committed;
        if committed > self.commit_bcast_mark {
            self.commit_bcast_mark = committed;
            self.raw.raft.bcast_append();
        }
    }

    fn on_applied(&mut self, applied: Applied) {
        let me = self.cfg.node;
        let origin = match &applied {
            Applied::Ordered { origin, .. }
            | Applied::Control { origin, .. }
            | Applied::Part { origin, .. }
            | Applied::Incomplete { origin, .. }
            | Applied::Rejected { origin, .. } => Some(*origin),
            _ => None,
        };
        if let Some(origin) = origin.filter(|o| *o != me) {
            if self.raw.raft.state == raft::StateRole::Leader {
                self.commit_notify.insert(origin.short_id());
            }
        }
        match applied {
            Applied::Nothing => {}
            Applied::Ordered {
                seqno,
                origin,
                epoch,
                seq,
                payload,
            } => {
                let local = if origin == me {
                    self.props.delivered(epoch, seq, self.now)
                } else {
                    None
                };
                self.out_events.push(Event::Ordered {
                    seqno,
                    origin,
                    local,
                    payload,
                });
            }
            Applied::Control {
                origin,
                epoch,
                seq,
                after,
                event,
            } => {
                let local = if origin == me {
                    self.props.delivered(epoch, seq, self.now)
                } else {
                    None
                };
                self.out_events.push(Event::Control {
                    origin,
                    local,
                    after,
                    event,
                });
            }
            Applied::Part { origin, epoch, seq } => {
                if origin == me {
                    // The writeset's id is its last part's; earlier parts' ids are internal.
                    let _ = self.props.delivered(epoch, seq, self.now);
                }
            }
            Applied::Incomplete { origin, epoch, seq } => {
                log::warn!(
                    "the last part of a large writeset from {origin} arrived without its \
                     earlier parts; it is not delivered"
                );
                if origin == me {
                    if let Some(id) = self.props.delivered(epoch, seq, self.now) {
                        self.out_events.push(Event::ProposalFailed {
                            id,
                            reason: ProposalFailReason::NonPrimary,
                        });
                    }
                }
            }
            Applied::Rejected { origin, why, .. } => {
                // One of ours was skipped because an earlier one is missing: resend all, in
                // order (at most once per heartbeat, so skips cannot snowball into storms).
                if origin == me
                    && why == crate::state::Admission::Gap
                    && self.now >= self.props.progress_tick + self.cfg.heartbeat_ticks
                {
                    self.props.progress_tick = self.now;
                    self.props.resend_all = true;
                }
            }
            Applied::View(record) => {
                let sm = &self.raw.store().sm;
                let view = GroupView::primary_from(&record, sm.history, me);
                if let Some(last) = &self.last_view {
                    if last.primary {
                        assert!(
                            view.view_id > last.view_id,
                            "view ids increase at installation"
                        );
                    }
                }
                if view.my_index.is_some() {
                    self.view_state = ViewState::Primary;
                    self.unleased_ticks = 0;
                } else if self.view_state == ViewState::Primary {
                    self.view_state = ViewState::Outside;
                }
                self.last_view = Some(view.clone());
                self.out_events.push(Event::View(view));
            }
            Applied::CommitCut(seqno) => self.out_events.push(Event::CommitCut(seqno)),
        }
    }

    fn on_read_state(&mut self, rs: ReadState) {
        if rs.request_ctx.len() < 8 {
            return;
        }
        let mut b = [0u8; 8];
        b.copy_from_slice(&rs.request_ctx[..8]);
        let ctx = u64::from_le_bytes(b);
        if self.reads.remove(&ctx).is_none() {
            return;
        }
        self.read_points.push((rs.index, ctx));
        self.release_read_points();
    }

    fn release_read_points(&mut self) {
        if self.read_points.is_empty() {
            return;
        }
        let sm = &self.raw.store().sm;
        let (applied, seqno): (u64, Seqno) = (sm.applied_index, sm.last_seqno);
        let mut i = 0;
        while i < self.read_points.len() {
            if self.read_points[i].0 <= applied {
                let (_, ctx) = self.read_points.remove(i);
                self.out_events.push(Event::ReadIndexReady { ctx, seqno });
            } else {
                i += 1;
            }
        }
    }
}
