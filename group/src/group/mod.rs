//! `Group`: the sans-IO driver around raft-rs.
//!
//! Inputs: `tick`, `step`, `propose`, `propose_control`, `peer_connected`, `peer_lost`,
//! `leave`, `report_committed`, `read_index`, `force_bootstrap`. Outputs accumulate until
//! `take_ready`: messages to send and events in delivery order. Every input runs the same
//! tail (`after_input`): drain raft's readiness (append to the in-memory log, apply committed
//! entries to the state machine, collect messages), then let the leader reconcile membership
//! and flush proposals, until nothing moves.
//!
//! Module map: `raftio` (envelopes, stamps, validation of raft messages, forced votes),
//! `apply` (committed entries -> events), `leader` (membership changes, suspects, commit
//! cut, compaction), `proposals` (origin-side exactly-once).

mod apply;
mod leader;
mod peers;
mod proposals;
mod raftio;

use crate::config::GroupConfig;
use crate::event::{
    Event, GroupError, GroupView, LeaseClaim, ProposalFailReason, ProposalId, ProposeError, Ready,
    Role, Status, StepError,
};
use crate::lease::{DerivedLease, LeaderLease};
use crate::msg::{
    ControlEntry, Generation, Hello, JoinRequest, LeaveRequest, MemberInfo, Msg, Position,
    ProgressReport, ProposalBody, Refuse, PROTOCOL_VERSION,
};
use crate::rng::Rng;
use crate::state::SmState;
use crate::storage::LogStore;
use proposals::Proposals;
use raft::eraftpb::Message as RaftMessage;
use raft::{RawNode, StateRole};
use std::collections::{BTreeMap, BTreeSet};
use trireme_types::{HistoryId, NodeId, Seqno, ViewId};

/// Where this node stands in the group's life cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for a leader to admit us and send a snapshot.
    Joining,
    Member,
    Left,
}

/// The Galera-visible side: which kind of view was delivered last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ViewState {
    /// Not (yet, or any more) listed in a primary view.
    Outside,
    /// Listed in the last primary view and not since lost.
    Primary,
    /// Delivered a non-primary view.
    NonPrimary,
}

/// A succession after the leader's death (see `successor_tick`).
#[derive(Clone, Copy, Debug)]
struct Succession {
    dead_leader: u64,
    since: u64,
    attempts: u64,
    /// A candidate found behind our log: it cannot win, it does not get a turn.
    excluded: u64,
}

#[derive(Clone, Copy, Debug)]
struct ReadRequest {
    issued: u64,
    attempt: u64,
}

/// The ordering and membership core of one node. See the crate docs for the protocol.
pub struct Group {
    cfg: GroupConfig,
    me: u64,
    raw: RawNode<LogStore>,
    logger: slog::Logger,
    rng: Rng,
    now: u64,
    observed_role: (StateRole, u64),
    generation: Option<Generation>,
    join_position: Position,

    phase: Phase,
    view_state: ViewState,
    last_view: Option<GroupView>,
    unleased_ticks: u64,
    leaving: Option<u64>,
    last_leave_sent: u64,
    last_join_sent: u64,

    peers: BTreeMap<u64, NodeId>,
    connected: BTreeSet<NodeId>,
    /// Peers whose `Hello` we refused: nothing else from them is taken.
    refused: BTreeSet<NodeId>,
    /// The leader refused us as evicted (`evs.auto_evict`): we never ask back in.
    evicted: bool,
    /// Leader: evicted nodes already reported in the log (one line each, not one per ask).
    evictions_noted: BTreeSet<NodeId>,
    /// Peers whose connection closed, with the tick we learned it.
    lost: BTreeMap<NodeId, u64>,
    last_heard: BTreeMap<NodeId, u64>,

    props: Proposals,

    leader_lease: Option<LeaderLease>,
    had_lease_this_term: bool,
    derived: Option<DerivedLease>,
    /// (term, leader, highest leader send tick accepted) for acks.
    echo: Option<(u64, u64, u64)>,
    forced_term: Option<u64>,
    abdication_seen: Option<(u64, u64, u64)>,
    stripped_vote: Option<RaftMessage>,
    transfer_started: Option<u64>,
    /// After our leader's connection closed: survivors campaign in rank order, a stagger
    /// apart, until a live leader is known.
    leader_lost: Option<Succession>,
    /// The raft id of the last leader we saw die.
    dead_leader: u64,
    /// We lead but applied our own removal: step down after the current Ready.
    step_down_pending: bool,

    join_queue: BTreeMap<NodeId, JoinRequest>,
    leave_queue: BTreeSet<NodeId>,
    refresh_view_wanted: bool,
    last_refresh_tick: u64,
    view_proposal: Option<(u64, u64)>,
    committed_reports: BTreeMap<NodeId, Seqno>,
    cut_proposed: Seqno,
    local_committed: Seqno,
    reported_committed: Seqno,
    leader_compact_to: u64,
    follower_compact_to: u64,

    reads: BTreeMap<u64, ReadRequest>,
    read_points: Vec<(u64, u64)>,

    snapshot_cache: Option<(u64, SmState)>,
    snapshots_sent: Vec<u64>,
    /// Leader only: each origin's (epoch, last seq) after everything in our log, applied or
    /// not, so retries and out-of-order proposals stay out of the log.
    tail: BTreeMap<NodeId, (u64, u64)>,

    out_messages: Vec<(NodeId, Msg)>,
    out_events: Vec<Event>,

    /// Leader: raft ids of followers whose own entries were just committed; they learn the
    /// commit index at once (their clients wait for it).
    commit_notify: BTreeSet<u64>,
    /// Leader: the commit index last broadcast on a tick.
    commit_bcast_mark: u64,
    /// When this node last announced its `pc.weight` (0: not since the last change).
    weight_announced: u64,
}

fn role_of(state: StateRole) -> Role {
    match state {
        StateRole::Follower => Role::Follower,
        StateRole::PreCandidate => Role::PreCandidate,
        StateRole::Candidate => Role::Candidate,
        StateRole::Leader => Role::Leader,
    }
}

impl Group {
    /// Starts a new cluster (or a new primary from this node's state): a one-voter raft
    /// group whose first delivered event is a primary view with seqno `last_seqno + 1`.
    pub fn bootstrap(
        cfg: GroupConfig,
        history: HistoryId,
        last_seqno: Seqno,
    ) -> Result<Group, GroupError> {
        cfg.validate()?;
        let generation = Generation {
            number: 1,
            origin: cfg.node,
        };
        let mut sm = SmState::bootstrap(history, generation, last_seqno, Self::info_of(&cfg), 0);
        sm.set_bootstrap_weight(cfg.weight);
        let mut g = Self::with_store(cfg, LogStore::from_state(sm, 1, 1), 1, Phase::Member)?;
        g.generation = Some(generation);
        g.join_position = Position {
            history,
            seqno: last_seqno,
        };
        g.campaign_alone()?;
        Ok(g)
    }

    /// Creates a node that joins an existing cluster. The runtime dials the `gcomm://`
    /// addresses and exchanges `hello()`; every peer that answers with an accepted `Hello` is
    /// asked to admit us, and the leader adds us (first as a raft learner that catches up,
    /// then as a voter with a new view). `position` is what our data holds (for the
    /// replicator's IST/SST decision after `Event::Joined`).
    pub fn join(cfg: GroupConfig, position: Position) -> Result<Group, GroupError> {
        cfg.validate()?;
        let placeholder = Self::placeholder_state(&cfg, position.history);
        let mut g = Self::with_store(cfg, LogStore::empty(placeholder), 0, Phase::Joining)?;
        g.join_position = position;
        Ok(g)
    }

    fn info_of(cfg: &GroupConfig) -> MemberInfo {
        MemberInfo {
            id: cfg.node,
            name: cfg.name.clone(),
            incoming: cfg.incoming.clone(),
            address: cfg.address.clone(),
        }
    }

    fn placeholder_state(cfg: &GroupConfig, history: HistoryId) -> SmState {
        let mut sm = SmState::bootstrap(
            history,
            Generation {
                number: 0,
                origin: cfg.node,
            },
            Seqno::UNDEFINED,
            Self::info_of(cfg),
            0,
        );
        sm.members.clear();
        sm.last_seqno = Seqno::UNDEFINED;
        sm
    }

    fn raft_config(cfg: &GroupConfig, applied: u64) -> raft::Config {
        raft::Config {
            id: cfg.node.short_id(),
            election_tick: cfg.election_ticks as usize,
            heartbeat_tick: cfg.heartbeat_ticks as usize,
            applied,
            max_size_per_msg: cfg.max_append_bytes,
            max_inflight_msgs: 256,
            check_quorum: true,
            pre_vote: true,
            min_election_tick: cfg.election_ticks as usize,
            max_election_tick: 2 * cfg.election_ticks as usize,
            read_only_option: raft::ReadOnlyOption::Safe,
            // A commit index goes out with the next append (or heartbeat); the writeset's
            // origin is told at once (`notify_commit_origins`), everyone else at the latest at
            // the next tick (`tick`). An eager broadcast cost every commit an empty append to
            // each follower and an acknowledgement back: two wake-ups per node per commit.
            skip_bcast_commit: true,
            batch_append: true,
            priority: 0,
            max_uncommitted_size: raft::NO_LIMIT,
            max_committed_size_per_ready: raft::NO_LIMIT,
        }
    }

    fn with_store(
        cfg: GroupConfig,
        store: LogStore,
        applied: u64,
        phase: Phase,
    ) -> Result<Group, GroupError> {
        let me = cfg.node.short_id();
        let logger = crate::logger::raft_logger(me);
        let raw = RawNode::new(&Self::raft_config(&cfg, applied), store, &logger)
            .map_err(|e| GroupError::Raft(e.to_string()))?;
        let rng = Rng::for_member(cfg.seed, me);
        let mut peers = BTreeMap::new();
        for m in &raw.store().sm.members {
            peers.insert(m.short, m.info.id);
        }
        let mut g = Group {
            me,
            raw,
            logger,
            rng,
            now: 1,
            observed_role: (StateRole::Follower, u64::MAX),
            generation: None,
            join_position: Position::UNDEFINED,
            phase,
            view_state: ViewState::Outside,
            last_view: None,
            unleased_ticks: 0,
            leaving: None,
            last_leave_sent: 0,
            last_join_sent: 0,
            peers,
            connected: BTreeSet::new(),
            lost: BTreeMap::new(),
            refused: BTreeSet::new(),
            evicted: false,
            evictions_noted: BTreeSet::new(),
            last_heard: BTreeMap::new(),
            props: Proposals::new(0),
            leader_lease: None,
            had_lease_this_term: false,
            derived: None,
            echo: None,
            forced_term: None,
            abdication_seen: None,
            stripped_vote: None,
            transfer_started: None,
            leader_lost: None,
            dead_leader: 0,
            step_down_pending: false,
            join_queue: BTreeMap::new(),
            leave_queue: BTreeSet::new(),
            refresh_view_wanted: false,
            last_refresh_tick: 0,
            view_proposal: None,
            committed_reports: BTreeMap::new(),
            cut_proposed: Seqno::UNDEFINED,
            local_committed: Seqno::UNDEFINED,
            reported_committed: Seqno::UNDEFINED,
            leader_compact_to: 0,
            follower_compact_to: 0,
            reads: BTreeMap::new(),
            read_points: Vec::new(),
            snapshot_cache: None,
            snapshots_sent: Vec::new(),
            tail: BTreeMap::new(),
            out_messages: Vec::new(),
            out_events: Vec::new(),
            commit_notify: BTreeSet::new(),
            commit_bcast_mark: 0,
            weight_announced: 0,
            cfg,
        };
        g.sync_weights();
        g.fix_election_timeout();
        Ok(g)
    }

    /// A single voter elects itself at once.
    fn campaign_alone(&mut self) -> Result<(), GroupError> {
        self.raw
            .campaign()
            .map_err(|e| GroupError::Raft(e.to_string()))?;
        self.after_input();
        Ok(())
    }

    // ----------------------------------------------------------------------------------
    // Inputs
    // ----------------------------------------------------------------------------------

    /// One tick of time. The runtime calls it every `tick_ms`, catching up with the
    /// monotonic clock (after SIGSTOP, all missed ticks before any message).
    pub fn tick(&mut self) {
        if self.phase == Phase::Left {
            return;
        }
        self.now += 1;
        self.raw.tick();
        self.broadcast_commit_on_tick();
        self.fix_election_timeout();
        self.maybe_unlock_lease();
        self.refresh_non_primary_view();
        self.check_primary();
        self.periodic();
        self.after_input();
    }

    /// A message from `from` (authenticated by the transport's handshake).
    pub fn step(&mut self, from: NodeId, msg: Msg) -> Result<(), StepError> {
        if self.phase == Phase::Left {
            return Ok(());
        }
        if self.refused.contains(&from) && !matches!(msg, Msg::Hello(_) | Msg::Refuse(_)) {
            return Err(StepError::Refused {
                from,
                reason: "refused at handshake".into(),
            });
        }
        if from != self.cfg.node {
            self.last_heard.insert(from, self.now);
        }
        let result = match msg {
            Msg::Hello(h) => self.on_hello(from, h),
            Msg::Refuse(r) => {
                self.refused.insert(from);
                self.connected.remove(&from);
                if r.evicted {
                    if self.evicted {
                        return Ok(());
                    }
                    self.evicted = true;
                }
                self.out_events.push(Event::Refused {
                    peer: from,
                    reason: r.reason,
                });
                Ok(())
            }
            Msg::Join(j) => {
                self.on_join_request(from, j);
                Ok(())
            }
            Msg::Leave(l) => {
                self.on_leave_request(from, l);
                Ok(())
            }
            Msg::Raft(env) => self.on_raft(from, env),
            Msg::Propose(batch) => {
                self.on_propose_batch(from, batch);
                Ok(())
            }
            Msg::Abdicate(a) => {
                self.on_abdicate(from, a);
                Ok(())
            }
            Msg::Progress(p) => {
                self.on_progress(from, p);
                Ok(())
            }
        };
        self.after_input();
        result
    }

    /// Decodes and validates a frame, then steps it.
    pub fn step_bytes(&mut self, from: NodeId, bytes: &[u8]) -> Result<(), StepError> {
        match Msg::decode(bytes) {
            Ok(msg) => self.step(from, msg),
            Err(e) => Err(StepError::MalformedRaft {
                from,
                detail: e.to_string(),
            }),
        }
    }

    /// Submits a writeset (opaque bytes) for total ordering. The answer comes later as
    /// `Event::Ordered { local: Some(id) }` or `Event::ProposalFailed { id }`.
    pub fn propose(&mut self, payload: Vec<u8>) -> Result<ProposalId, ProposeError> {
        let id = self.propose_deferred(payload)?;
        self.after_input();
        Ok(id)
    }

    /// `propose` without the hand-over to raft: the proposal goes out with the next `flush`
    /// (or any other input). A burst of proposals taken together then becomes one append per
    /// follower and one acknowledgement back, instead of one round of messages each.
    pub fn propose_deferred(&mut self, payload: Vec<u8>) -> Result<ProposalId, ProposeError> {
        if payload.len() <= self.cfg.max_part_bytes {
            self.check_writeset_size(payload.len())?;
            self.check_can_propose(false)?;
            return Ok(self.props.push(ProposalBody::Writeset(payload)));
        }
        self.propose_deferred_bytes(&payload)
    }

    /// `propose_deferred` of bytes the caller keeps (a large writeset is copied once, into
    /// its parts).
    pub fn propose_deferred_bytes(&mut self, payload: &[u8]) -> Result<ProposalId, ProposeError> {
        self.check_writeset_size(payload.len())?;
        self.check_can_propose(false)?;
        let part_bytes = self.cfg.max_part_bytes.max(1);
        if payload.len() <= part_bytes {
            return Ok(self.props.push(ProposalBody::Writeset(payload.to_vec())));
        }
        // Consecutive proposals, one entry each; the writeset's id is its last part's.
        let parts = payload.len().div_ceil(part_bytes);
        let parts32 = u32::try_from(parts).map_err(|_| ProposeError::TooLarge {
            size: payload.len(),
            limit: part_bytes.saturating_mul(u32::MAX as usize),
        })?;
        let mut id = None;
        for (part, bytes) in payload.chunks(part_bytes).enumerate() {
            id = Some(self.props.push(ProposalBody::WritesetPart {
                part: part as u32,
                parts: parts32,
                bytes: bytes.to_vec(),
            }));
        }
        Ok(id.expect("a payload larger than a part has parts"))
    }

    fn check_writeset_size(&self, size: usize) -> Result<(), ProposeError> {
        if size > trireme_types::MAX_WRITESET_BYTES {
            return Err(ProposeError::TooLarge {
                size,
                limit: trireme_types::MAX_WRITESET_BYTES,
            });
        }
        Ok(())
    }

    /// Hands deferred proposals to raft (see `propose_deferred`).
    pub fn flush(&mut self) {
        self.after_input();
    }

    /// Submits an ordered control message (state request, synced, desynced). Unlike
    /// writesets, these are accepted while the node is admitted but not yet in a primary
    /// view (a joiner asks for state transfer before it is synced).
    pub fn propose_control(&mut self, entry: ControlEntry) -> Result<ProposalId, ProposeError> {
        self.check_can_propose(true)?;
        let id = self.props.push(ProposalBody::Control(entry));
        self.after_input();
        Ok(id)
    }

    fn check_can_propose(&self, control: bool) -> Result<(), ProposeError> {
        if self.leaving.is_some() || self.phase == Phase::Left {
            return Err(ProposeError::Leaving);
        }
        if self.phase == Phase::Joining {
            return Err(ProposeError::NotJoined);
        }
        if control {
            if !self.raw.store().sm.is_member(self.cfg.node) {
                return Err(ProposeError::NotJoined);
            }
        } else if self.view_state != ViewState::Primary {
            return Err(ProposeError::NotPrimary);
        }
        if self.props.pending.len() >= self.cfg.max_pending_proposals {
            return Err(ProposeError::Backlog {
                pending: self.props.pending.len(),
            });
        }
        Ok(())
    }

    /// The transport (re)established a connection to `peer` (after its `Hello`).
    pub fn peer_connected(&mut self, peer: NodeId) {
        if self.phase == Phase::Left || peer == self.cfg.node {
            return;
        }
        self.connected.insert(peer);
        self.lost.remove(&peer);
        self.last_heard.insert(peer, self.now);
        self.after_input();
    }

    /// The transport saw the connection to `peer` close: evidence its process is gone. The
    /// leader removes it at once; if it was our leader, the designated survivor campaigns at
    /// once (a forced campaign: see `lease.rs`).
    pub fn peer_lost(&mut self, peer: NodeId) {
        if self.phase == Phase::Left || peer == self.cfg.node {
            return;
        }
        self.lost.insert(peer, self.now);
        self.connected.remove(&peer);
        self.on_peer_lost(peer);
        self.after_input();
    }

    /// Graceful leave: a leader first hands leadership over; then the leader removes us, so
    /// the survivors never wait for a timeout. Ends with `Event::Left`.
    pub fn leave(&mut self) {
        if self.phase == Phase::Left || self.leaving.is_some() {
            return;
        }
        let sm = &self.raw.store().sm;
        let alone = sm.members.iter().all(|m| m.short == self.me);
        if self.phase == Phase::Joining || !sm.is_member(self.cfg.node) || alone {
            self.finish_left();
            return;
        }
        self.leaving = Some(self.now);
        self.last_leave_sent = 0;
        self.leave_step();
        self.after_input();
    }

    /// Local apply progress, for the commit cut.
    pub fn report_committed(&mut self, seqno: Seqno) {
        if seqno > self.local_committed {
            self.local_committed = seqno;
        }
    }

    /// Asks for a causal read point: `Event::ReadIndexReady { ctx, seqno }` once this node
    /// has delivered everything committed cluster-wide when the request was made.
    pub fn read_index(&mut self, ctx: u64) {
        if self.view_state != ViewState::Primary || self.phase != Phase::Member {
            self.out_events.push(Event::ReadIndexFailed { ctx });
            return;
        }
        self.reads.insert(
            ctx,
            ReadRequest {
                issued: self.now,
                attempt: 0,
            },
        );
        self.issue_read(ctx, 0);
        self.after_input();
    }

    /// `pc.bootstrap=YES`: make this node, outside any primary component, a new primary on
    /// its own, continuing its history and seqnos, in a new raft generation. Other nodes of
    /// the old component then rejoin it (with state transfer). The operator must pick the
    /// most advanced node, as with Galera: anything it has not delivered is lost.
    pub fn force_bootstrap(&mut self) -> Result<(), GroupError> {
        if self.phase != Phase::Member || self.view_state == ViewState::Primary {
            return Err(GroupError::AlreadyPrimary);
        }
        let old = self.raw.store().sm.clone();
        let number = self.generation.map_or(1, |g| g.number + 1);
        let generation = Generation {
            number,
            origin: self.cfg.node,
        };
        let me = Self::info_of(&self.cfg);
        let mut sm = SmState::bootstrap(
            old.history,
            generation,
            old.last_seqno,
            me,
            self.props.epoch,
        );
        sm.set_bootstrap_weight(self.cfg.weight);
        sm.last_view_id = old.last_view_id;
        sm.view = old.view.clone();
        sm.commit_cut = old.commit_cut;
        let store = LogStore::from_state(sm, 1, 1);
        self.raw = RawNode::new(&Self::raft_config(&self.cfg, 1), store, &self.logger)
            .map_err(|e| GroupError::Raft(e.to_string()))?;
        self.reset_raft_side(generation);
        self.campaign_alone()
    }

    /// Everything produced since the last call: messages to send, events in order.
    /// (No `advance`: there is no durable state, so nothing needs acknowledging; log appends
    /// happen inside the core before any message that depends on them is released.)
    pub fn take_ready(&mut self) -> Ready {
        Ready {
            messages: std::mem::take(&mut self.out_messages),
            events: std::mem::take(&mut self.out_events),
        }
    }

    /// The `Hello` to send first on every new connection.
    pub fn hello(&self) -> Msg {
        let sm = &self.raw.store().sm;
        let (history, position) = if self.phase == Phase::Joining {
            (self.join_position.history, self.join_position.seqno)
        } else {
            (sm.history, sm.last_seqno)
        };
        Msg::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            cluster_name: self.cfg.cluster_name.clone(),
            node: self.cfg.node,
            name: self.cfg.name.clone(),
            incoming: self.cfg.incoming.clone(),
            address: self.cfg.address.clone(),
            history,
            position,
            standing: if self.phase == Phase::Joining {
                crate::msg::Standing::Joining
            } else if self.view_state == ViewState::Primary {
                crate::msg::Standing::Primary
            } else {
                crate::msg::Standing::NonPrimary
            },
        })
    }

    pub fn node(&self) -> NodeId {
        self.cfg.node
    }

    pub fn status(&self) -> Status {
        let raft = &self.raw.raft;
        let sm = &self.raw.store().sm;
        let lease_until = self.lease_until();
        Status {
            node: self.cfg.node,
            role: role_of(raft.state),
            term: raft.term,
            leader: if raft.leader_id == self.me {
                Some(self.cfg.node)
            } else {
                self.peers.get(&raft.leader_id).copied()
            },
            primary: self.is_primary(),
            lease_until,
            tick: self.now,
            view: self.last_view.clone(),
            members: {
                let mut v: Vec<NodeId> = sm
                    .members
                    .iter()
                    .filter(|m| m.voter)
                    .map(|m| m.info.id)
                    .collect();
                v.sort();
                v
            },
            last_seqno: sm.last_seqno,
            history: sm.history,
            position: Position {
                history: sm.history,
                seqno: sm.last_seqno,
            },
        }
    }

    /// Primary right now: listed in the last primary view and under a valid lease.
    pub fn is_primary(&self) -> bool {
        self.phase == Phase::Member
            && self.view_state == ViewState::Primary
            && self.lease_until().is_some()
    }

    /// The primary claim (cheaper than `status()`): `Some` exactly when `is_primary()`.
    pub fn lease_claim(&self) -> Option<LeaseClaim> {
        if !self.is_primary() {
            return None;
        }
        let raft = &self.raw.raft;
        let leader = if raft.leader_id == self.me {
            Some(self.cfg.node)
        } else {
            self.peers.get(&raft.leader_id).copied()
        };
        Some(LeaseClaim {
            term: raft.term,
            leader: leader?,
            until_tick: self.lease_until()?,
            now_tick: self.now,
        })
    }

    /// The voters of raft's own configuration as this node knows it, which may be ahead of
    /// the members listed in the state machine (a removal in the log, not yet in a view).
    /// For the simulator's fault model.
    pub fn configured_voters(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .raw
            .raft
            .prs()
            .conf()
            .voters()
            .ids()
            .iter()
            .filter_map(|short| {
                if short == self.me {
                    Some(self.cfg.node)
                } else {
                    self.peers.get(&short).copied()
                }
            })
            .collect();
        v.sort();
        v
    }

    /// Each voter's node id, weight in quorums now, and wanted weight (`pc.weight`), as this
    /// node's state has them.
    pub fn voter_weights(&self) -> Vec<(NodeId, u8, u8)> {
        self.raw
            .store()
            .sm
            .voters()
            .map(|m| (m.info.id, m.weight, m.wanted_weight))
            .collect()
    }

    /// This node's log holds a membership change not yet applied (for the simulator's
    /// fault model: the configuration is in flux). Whatever this node's role: an old
    /// leader's uncommitted removal is committed by the next leader that holds it.
    pub fn conf_change_pending(&self) -> bool {
        let log = &self.raw.raft.raft_log;
        let from = log.applied + 1;
        let to = log.last_index() + 1;
        if from >= to {
            return false;
        }
        log.entries(from, None, raft::GetEntriesContext::empty(false))
            .map(|entries| {
                entries.iter().any(|e| {
                    matches!(
                        e.get_entry_type(),
                        raft::eraftpb::EntryType::EntryConfChange
                            | raft::eraftpb::EntryType::EntryConfChangeV2
                    )
                })
            })
            .unwrap_or(true)
    }

    /// Entries held in the in-memory raft log (for memory-bound checks).
    pub fn log_len(&self) -> u64 {
        self.raw.store().len() + self.raw.raft.raft_log.unstable.entries.len() as u64
    }

    /// Internal state for simulator diagnostics.
    #[doc(hidden)]
    pub fn debug_state(&self) -> String {
        let sm = &self.raw.store().sm;
        let rec = sm
            .member(self.cfg.node)
            .map(|m| (m.epoch, m.last_seq, m.voter));
        let front = self.props.pending.front().map(|p| (p.epoch, p.seq));
        format!(
            "phase={:?} view_state={:?} epoch={} pending={} front={front:?} sent={} sent_to={:?} sm_self={rec:?} applied={} first={} last={}",
            self.phase,
            self.view_state,
            self.props.epoch,
            self.props.pending.len(),
            self.props.sent,
            self.props.sent_to,
            sm.applied_index,
            self.raw.store().first_index(),
            self.raw.store().last_index(),
        )
    }

    /// Whether this node has left the group.
    pub fn has_left(&self) -> bool {
        self.phase == Phase::Left
    }

    // ----------------------------------------------------------------------------------
    // Handshake, joins, leaves
    // ----------------------------------------------------------------------------------

    fn on_hello(&mut self, from: NodeId, h: Hello) -> Result<(), StepError> {
        let reason = if h.cluster_name != self.cfg.cluster_name {
            Some(format!(
                "cluster name '{}' differs from ours ('{}')",
                h.cluster_name, self.cfg.cluster_name
            ))
        } else if h.protocol != PROTOCOL_VERSION {
            Some(format!(
                "protocol {} differs from ours ({PROTOCOL_VERSION})",
                h.protocol
            ))
        } else if h.node != from {
            Some(format!(
                "hello names node {} on the connection of {from}",
                h.node
            ))
        } else {
            None
        };
        if let Some(reason) = reason {
            log::warn!("refusing {from}: {reason}");
            self.out_messages.push((
                from,
                Msg::Refuse(Refuse {
                    reason: reason.clone(),
                    evicted: false,
                }),
            ));
            self.connected.remove(&from);
            self.refused.insert(from);
            return Err(StepError::Refused { from, reason });
        }
        self.refused.remove(&from);
        self.peers.insert(from.short_id(), from);
        self.connected.insert(from);
        self.lost.remove(&from);
        if self.wants_admission() {
            self.send_join_request(from);
        }
        Ok(())
    }

    /// Whether we should be asking a leader to (re)admit us: whenever we are outside the
    /// primary view. The leader decides from its own configuration: a voter gets a fresh
    /// view, a learner it knows is left to catch up, anyone else is added (our own view of
    /// the configuration may be stale: we may have been removed without seeing it).
    fn wants_admission(&self) -> bool {
        if self.evicted {
            return false;
        }
        match self.phase {
            Phase::Joining => true,
            Phase::Member => self.leaving.is_none() && self.view_state != ViewState::Primary,
            Phase::Left => false,
        }
    }

    fn join_request(&self) -> JoinRequest {
        JoinRequest {
            member: Self::info_of(&self.cfg),
            epoch: self.props.epoch,
            weight: self.cfg.weight,
        }
    }

    fn send_join_request(&mut self, to: NodeId) {
        let req = self.join_request();
        self.out_messages.push((to, Msg::Join(req)));
    }

    fn on_join_request(&mut self, from: NodeId, req: JoinRequest) {
        let joiner = req.member.id;
        // A join is relayed by members only; a direct one must come from the joiner itself.
        if joiner != from && !self.raw.store().sm.is_member(from) {
            return;
        }
        if joiner == self.cfg.node || self.phase != Phase::Member {
            return;
        }
        if self.raw.raft.state == StateRole::Leader {
            let sm = &self.raw.store().sm;
            if sm.is_voter(joiner) {
                // A member outside the primary view asks back in: order a fresh view.
                self.refresh_view_wanted = true;
            } else if sm.is_member(joiner) {
                // A learner still catching up: it is promoted when it has.
            } else if sm.is_evicted(joiner, self.cfg.auto_evict) {
                let removed = sm.removals_of(joiner);
                self.refuse_evicted(joiner, removed);
            } else {
                self.peers.insert(joiner.short_id(), joiner);
                if from != joiner {
                    // Relayed by a member the joiner reached: it was alive just now. Until
                    // we have dialled it ourselves we have not heard from it, and the join
                    // queue drops requests not heard from recently, so a node joining through
                    // a member that is not the leader was never admitted (MTR
                    // galera-features#119: the restarted node names only node 1).
                    let heard = self.last_heard.entry(joiner).or_insert(self.now);
                    *heard = (*heard).max(self.now);
                }
                self.join_queue.insert(joiner, req);
            }
        } else if let Some(leader) = self.leader_node() {
            if leader != from {
                self.out_messages.push((leader, Msg::Join(req)));
            }
        }
    }

    /// Galera's auto-eviction: a node that kept failing and coming back under the same id
    /// is refused for good; its operator restarts it (a new id) once it is healthy.
    fn refuse_evicted(&mut self, joiner: NodeId, removed: u32) {
        let reason = if self.raw.store().sm.evicted_by_operator.contains(&joiner) {
            "evicted by an operator (evs.evict); restart the node to rejoin".to_string()
        } else {
            format!(
                "evicted: removed from the group {removed} times (evs.auto_evict={}); \
                 restart the node to rejoin",
                self.cfg.auto_evict
            )
        };
        if self.evictions_noted.insert(joiner) {
            log::warn!("Node {joiner} {reason}");
        }
        self.peers.insert(joiner.short_id(), joiner);
        self.out_messages.push((
            joiner,
            Msg::Refuse(Refuse {
                reason,
                evicted: true,
            }),
        ));
    }

    /// `evs.auto_evict` at run time (0: never evict).
    pub fn set_auto_evict(&mut self, limit: u32) {
        self.cfg.auto_evict = limit;
    }

    /// `pc.weight` at run time: announced to the group (ordered), after which the leader
    /// moves this node's weight there one unit per configuration change.
    pub fn set_weight(&mut self, weight: u8) {
        if weight != self.cfg.weight {
            self.cfg.weight = weight;
            self.weight_announced = 0;
            self.announce_weight();
            self.after_input();
        }
    }

    /// `wsrep_cluster_weight`: what the members of the primary component weigh together
    /// (0 outside a primary component, as Galera reports it).
    pub fn cluster_weight(&self) -> u32 {
        if self.phase != Phase::Member || self.view_state != ViewState::Primary {
            return 0;
        }
        self.raw
            .store()
            .sm
            .voters()
            .map(|m| u32::from(m.weight))
            .sum()
    }

    /// This node's weight in quorums now (as the group has applied it), if a voter.
    pub fn weight(&self) -> Option<u8> {
        let sm = &self.raw.store().sm;
        sm.member(self.cfg.node)
            .filter(|m| m.voter)
            .map(|m| m.weight)
    }

    /// A member whose recorded wanted weight differs from its `pc.weight` (changed at run
    /// time, or readmitted under the same id) says so, again every election timeout until
    /// the record agrees.
    fn announce_weight(&mut self) {
        let wanted = self
            .raw
            .store()
            .sm
            .member(self.cfg.node)
            .map(|m| m.wanted_weight);
        let due = self.weight_announced == 0
            || self.now >= self.weight_announced + self.cfg.election_ticks;
        if wanted.is_none_or(|w| w == self.cfg.weight) || !due {
            return;
        }
        let entry = ControlEntry::Weight {
            weight: self.cfg.weight,
        };
        if self.propose_control(entry).is_ok() {
            self.weight_announced = self.now;
        }
    }

    /// Node ids this node counts as evicted (`wsrep_evs_evict_list`).
    pub fn evicted(&self) -> Vec<NodeId> {
        self.raw.store().sm.evicted(self.cfg.auto_evict)
    }

    /// Whether the leader refused this node as evicted.
    pub fn is_evicted(&self) -> bool {
        self.evicted
    }

    fn on_leave_request(&mut self, from: NodeId, req: LeaveRequest) {
        if req.node != from || self.raw.raft.state != StateRole::Leader {
            return;
        }
        if self.raw.store().sm.is_member(from) {
            self.leave_queue.insert(from);
        }
    }

    fn leave_step(&mut self) {
        if self.leaving.is_none() {
            return;
        }
        if self.raw.raft.state == StateRole::Leader {
            self.start_transfer();
        } else if let Some(leader) = self.leader_node() {
            if self.last_leave_sent == 0
                || self.now >= self.last_leave_sent + self.cfg.election_ticks
            {
                self.last_leave_sent = self.now;
                self.out_messages.push((
                    leader,
                    Msg::Leave(LeaveRequest {
                        node: self.cfg.node,
                    }),
                ));
            }
        }
    }

    fn finish_left(&mut self) {
        let mut out = Vec::new();
        self.props.fail_all(ProposalFailReason::Left, &mut out);
        self.out_events.extend(out);
        self.fail_reads();
        self.phase = Phase::Left;
        self.out_events.push(Event::Left);
    }

    /// Stops the core after an internal error: everything pending fails, nothing more is
    /// delivered or sent.
    fn fail_core(&mut self, reason: String) {
        log::error!("group core stopped: {reason}");
        let mut out = Vec::new();
        self.props
            .fail_all(ProposalFailReason::NonPrimary, &mut out);
        self.out_events.extend(out);
        self.fail_reads();
        self.phase = Phase::Left;
        self.out_events.push(Event::Failed { reason });
    }

    /// Every member with its replication address, and joiners waiting for admission: the
    /// peers the runtime should keep connections to.
    pub fn peer_addresses(&self) -> Vec<(NodeId, String)> {
        let mut out: Vec<(NodeId, String)> = self
            .raw
            .store()
            .sm
            .members
            .iter()
            .filter(|m| m.info.id != self.cfg.node)
            .map(|m| (m.info.id, m.info.address.clone()))
            .collect();
        for (id, req) in &self.join_queue {
            if !out.iter().any(|(o, _)| o == id) {
                out.push((*id, req.member.address.clone()));
            }
        }
        out.sort();
        out
    }

    fn on_progress(&mut self, from: NodeId, p: ProgressReport) {
        if self.raw.raft.state == StateRole::Leader && self.raw.store().sm.is_member(from) {
            let e = self
                .committed_reports
                .entry(from)
                .or_insert(Seqno::UNDEFINED);
            if p.committed > *e {
                *e = p.committed;
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // Time-driven duties
    // ----------------------------------------------------------------------------------

    fn periodic(&mut self) {
        let e = self.cfg.election_ticks;
        let h = self.cfg.heartbeat_ticks;
        if self.wants_admission()
            && (self.last_join_sent == 0 || self.now >= self.last_join_sent + e)
        {
            self.last_join_sent = self.now;
            let targets: Vec<NodeId> = self.connected.iter().copied().collect();
            for t in targets {
                self.send_join_request(t);
            }
        }
        if self.leaving.is_some() {
            self.leave_tick();
        }
        // Resend everything unconfirmed when nothing of ours was delivered for a while.
        if !self.props.pending.is_empty() && self.now >= self.props.progress_tick + e / 2 {
            self.props.progress_tick = self.now;
            self.props.resend_all = true;
        }
        self.retry_reads();
        self.successor_tick();
        self.announce_weight();
        if self.now.is_multiple_of(h) {
            self.report_progress();
            if self.raw.raft.state == StateRole::Leader {
                self.leader_heartbeat_duties();
            } else {
                let to = self.follower_compact_to;
                self.raw.mut_store().compact(to);
            }
        }
    }

    fn leave_tick(&mut self) {
        let started = self.leaving.expect("leaving");
        // A leaving node that cannot reach anyone gives up; the survivors remove it when its
        // connections close (or by the suspect timeout).
        if self.now >= started + self.cfg.suspect_ticks && self.view_state != ViewState::Primary {
            self.finish_left();
            return;
        }
        if self.raw.raft.state == StateRole::Leader {
            let stale = self
                .transfer_started
                .is_none_or(|t| self.now >= t + self.cfg.election_ticks);
            if stale {
                self.start_transfer();
            }
        } else {
            self.leave_step();
        }
    }

    fn report_progress(&mut self) {
        if self.local_committed <= self.reported_committed || self.phase != Phase::Member {
            return;
        }
        if self.raw.raft.state == StateRole::Leader {
            self.reported_committed = self.local_committed;
            let me = self.cfg.node;
            self.committed_reports.insert(me, self.local_committed);
        } else if let Some(leader) = self.leader_node() {
            self.reported_committed = self.local_committed;
            self.out_messages.push((
                leader,
                Msg::Progress(ProgressReport {
                    committed: self.local_committed,
                }),
            ));
        }
    }

    /// The Galera-visible primary state follows the lease: a leader whose lease ran out knows
    /// it cannot reach a majority and goes non-primary at once; other nodes after
    /// `primary_loss_ticks` without a lease (which also covers a leader change).
    fn check_primary(&mut self) {
        if self.phase != Phase::Member || self.view_state != ViewState::Primary {
            self.unleased_ticks = 0;
            return;
        }
        if self.lease_until().is_some() {
            self.unleased_ticks = 0;
            return;
        }
        self.unleased_ticks += 1;
        let leader_lost_it = self.raw.raft.state == StateRole::Leader && self.had_lease_this_term;
        if leader_lost_it || self.unleased_ticks >= self.cfg.primary_loss() {
            self.enter_non_primary(ProposalFailReason::NonPrimary);
        }
    }

    fn enter_non_primary(&mut self, reason: ProposalFailReason) {
        let was_primary = self.view_state == ViewState::Primary;
        self.view_state = ViewState::NonPrimary;
        self.unleased_ticks = 0;
        self.last_join_sent = 0;
        if was_primary {
            let view = self.non_primary_view();
            self.last_view = Some(view.clone());
            self.out_events.push(Event::View(view));
        }
        let mut out = Vec::new();
        self.props.fail_all(reason, &mut out);
        self.out_events.extend(out);
        self.fail_reads();
    }

    /// A non-primary view lists the members this node still hears from; as more of them fall
    /// silent (or come back) while the quorum stays lost, the server gets the new list, as
    /// Galera's views shrink to the reachable members (`wsrep_cluster_size`).
    fn refresh_non_primary_view(&mut self) {
        if self.phase != Phase::Member || self.view_state != ViewState::NonPrimary {
            return;
        }
        let Some(last) = &self.last_view else {
            return;
        };
        if last.primary {
            return;
        }
        let view = self.non_primary_view();
        if view.members != last.members {
            self.last_view = Some(view.clone());
            self.out_events.push(Event::View(view));
        }
    }

    /// This node, or a member whose connection did not close and that was heard from
    /// within the last election timeout.
    pub(super) fn heard_alive(&self, id: NodeId) -> bool {
        let recent = self.now.saturating_sub(self.cfg.election_ticks);
        id == self.cfg.node
            || (!self.lost.contains_key(&id)
                && self.last_heard.get(&id).is_some_and(|t| *t >= recent))
    }

    /// The members this node still hears from (itself included).
    fn non_primary_view(&self) -> GroupView {
        let sm = &self.raw.store().sm;
        let mut members: Vec<trireme_types::Member> = sm
            .members
            .iter()
            .filter(|m| m.voter)
            .filter(|m| self.heard_alive(m.info.id))
            .map(|m| m.info.to_member())
            .collect();
        if !members.iter().any(|m| m.id == self.cfg.node) {
            members.push(Self::info_of(&self.cfg).to_member());
        }
        members.sort_by_key(|m| m.id);
        let my_index = members.iter().position(|m| m.id == self.cfg.node);
        GroupView {
            history: sm.history,
            seqno: Seqno::UNDEFINED,
            view_id: ViewId::NONE,
            primary: false,
            members,
            my_index,
        }
    }

    // ----------------------------------------------------------------------------------
    // Leases
    // ----------------------------------------------------------------------------------

    /// The local tick before which this node holds (leader) or relies on (follower) a
    /// quorum lease.
    pub(crate) fn lease_until(&self) -> Option<u64> {
        let raft = &self.raw.raft;
        match raft.state {
            StateRole::Leader => {
                let lease = self.leader_lease.as_ref()?;
                if lease.term != raft.term {
                    return None;
                }
                let voters = self.raw.store().sm.voter_weights();
                if !voters.iter().any(|(v, _)| *v == self.me) {
                    return None;
                }
                lease.until(
                    self.now,
                    &voters,
                    self.me,
                    self.cfg.election_ticks,
                    self.cfg.lease_margin_ticks,
                )
            }
            StateRole::Follower => {
                let d = self.derived?;
                (d.term == raft.term && d.leader == raft.leader_id && self.now < d.until)
                    .then_some(d.until)
            }
            _ => None,
        }
    }

    fn maybe_unlock_lease(&mut self) {
        let (now, e) = (self.now, self.cfg.election_ticks);
        if let Some(lease) = self.leader_lease.as_mut() {
            lease.maybe_unlock(now, e);
        }
        if self.raw.raft.state == StateRole::Leader
            && self.lease_until().is_some()
            && !self.had_lease_this_term
        {
            self.had_lease_this_term = true;
            // Tell the followers at once rather than at the next heartbeat.
            self.raw.ping();
        }
    }

    /// raft-rs draws its randomized election timeout from `thread_rng` whenever it resets
    /// (every change of role or term). We overwrite it from our seeded PRNG right after every
    /// call into raft, so a simulation replays from its seed. Also the place where role
    /// changes reset lease state.
    fn fix_election_timeout(&mut self) {
        let role = (self.raw.raft.state, self.raw.raft.term);
        if role == self.observed_role {
            return;
        }
        let e = self.cfg.election_ticks;
        let timeout = e + self.rng.below(e);
        self.raw
            .raft
            .set_randomized_election_timeout(timeout as usize);
        let (old_state, old_term) = self.observed_role;
        self.observed_role = role;
        if role.1 != old_term {
            self.echo = None;
            self.derived = None;
            self.abdication_seen = None;
            self.had_lease_this_term = false;
        }
        if role.0 == StateRole::Leader && (old_state != StateRole::Leader || role.1 != old_term) {
            let forced = self.forced_term == Some(role.1);
            self.leader_lease = Some(LeaderLease::new(role.1, self.now, forced));
            self.had_lease_this_term = false;
            self.on_become_leader();
        } else if role.0 != StateRole::Leader {
            self.leader_lease = None;
            self.transfer_started = None;
        }
    }

    // ----------------------------------------------------------------------------------
    // Shared helpers
    // ----------------------------------------------------------------------------------

    fn leader_node(&self) -> Option<NodeId> {
        let l = self.raw.raft.leader_id;
        if l == 0 || l == self.me {
            return None;
        }
        self.peers.get(&l).copied()
    }

    fn issue_read(&mut self, ctx: u64, attempt: u64) {
        let mut bytes = ctx.to_le_bytes().to_vec();
        bytes.extend_from_slice(&attempt.to_le_bytes());
        self.raw.read_index(bytes);
    }

    fn retry_reads(&mut self) {
        let due: Vec<(u64, u64)> = self
            .reads
            .iter()
            .filter(|(_, r)| self.now >= r.issued + self.cfg.election_ticks)
            .map(|(ctx, r)| (*ctx, r.attempt + 1))
            .collect();
        for (ctx, attempt) in due {
            self.reads.insert(
                ctx,
                ReadRequest {
                    issued: self.now,
                    attempt,
                },
            );
            self.issue_read(ctx, attempt);
        }
    }

    fn fail_reads(&mut self) {
        let mut ctxs: Vec<u64> = self.reads.keys().copied().collect();
        ctxs.extend(self.read_points.iter().map(|(_, c)| *c));
        self.reads.clear();
        self.read_points.clear();
        for ctx in ctxs {
            self.out_events.push(Event::ReadIndexFailed { ctx });
        }
    }

    /// After a new raft instance (force bootstrap or a generation switch): forget
    /// everything tied to the old one.
    fn reset_raft_side(&mut self, generation: Generation) {
        self.generation = Some(generation);
        self.observed_role = (StateRole::Follower, u64::MAX);
        self.leader_lease = None;
        self.derived = None;
        self.echo = None;
        self.forced_term = None;
        self.abdication_seen = None;
        self.stripped_vote = None;
        self.transfer_started = None;
        self.join_queue.clear();
        self.leave_queue.clear();
        self.view_proposal = None;
        self.committed_reports.clear();
        self.cut_proposed = Seqno::UNDEFINED;
        self.leader_compact_to = 0;
        self.follower_compact_to = 0;
        self.snapshot_cache = None;
        self.props.sent_to = None;
        self.props.clear_sent();
        for m in &self.raw.store().sm.members {
            self.peers.insert(m.short, m.info.id);
        }
        self.weight_announced = 0;
        self.sync_weights();
        self.fix_election_timeout();
    }

    /// The common tail of every input: drain raft, let the leader act, flush proposals.
    fn after_input(&mut self) {
        if self.phase == Phase::Left {
            self.out_messages
                .retain(|(_, m)| matches!(m, Msg::Refuse(_)));
            return;
        }
        self.drive();
        // Bounded: each round either proposes something or stops.
        for _ in 0..16 {
            let mut acted = self.reconcile();
            acted |= self.flush_proposals();
            if !acted {
                break;
            }
            self.drive();
        }
        self.maybe_unlock_lease();
        self.drive();
    }
}
