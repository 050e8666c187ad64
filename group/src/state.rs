//! The replicated state machine: what every node derives, identically, from the committed
//! raft log. It assigns seqnos, admits or skips proposals (exactly-once, in origin order),
//! tracks the raft voters with their view information and Galera member states, installs
//! views, and keeps the commit cut. It is pure: no clock, no randomness, no I/O, and it is
//! exactly what a raft snapshot carries to a joiner (never database state).
//!
//! Invariants (asserted): seqnos strictly increase by one at assignment; view ids strictly
//! increase; `members` stays sorted by raft id with no duplicates.

use crate::command::{Command, MemberAdd};
use crate::msg::{decode_archive, ControlEntry, Generation, MemberInfo, Position};
use raft::eraftpb::ConfState;
use rkyv::rancor;
use trireme_types::{HistoryId, MemberState, NodeId, Seqno, ViewId};

/// A member's Galera state as replicated (numbers as `wsrep_local_state`).
pub(crate) const STATE_JOINER: u8 = MemberState::Joiner as u8;
pub(crate) const STATE_DONOR: u8 = MemberState::Donor as u8;
pub(crate) const STATE_SYNCED: u8 = MemberState::Synced as u8;

/// One raft voter, with what views show about it and what dedup needs.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct MemberRecord {
    /// The raft id (`NodeId::short_id`).
    pub short: u64,
    pub info: MemberInfo,
    /// A raft voter (listed in views); otherwise a learner still catching up.
    pub voter: bool,
    /// `MemberState` as u8 (see the `STATE_*` constants).
    pub state: u8,
    /// The origin's current proposal epoch and the last seq delivered in it.
    pub epoch: u64,
    pub last_seq: u64,
    /// The lowest seqno its GCache last reported holding (`ControlEntry::Cached`).
    pub cached_from: Seqno,
    /// Its weight in quorums (`pc.weight`) as a voter now; 0 while a learner.
    pub weight: u8,
    /// The weight it asked for; the leader moves `weight` there one unit per raft
    /// configuration change (see `weight_step`).
    pub wanted_weight: u8,
}

/// A primary view as installed by a `View` entry.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct ViewRecord {
    pub view_id: ViewId,
    pub seqno: Seqno,
    /// Sorted by `NodeId`.
    pub members: Vec<MemberInfo>,
}

/// The state at raft index `applied_index`.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct SmState {
    pub history: HistoryId,
    pub generation: Generation,
    pub applied_index: u64,
    /// The last seqno assigned (the bootstrap position before anything is ordered).
    pub last_seqno: Seqno,
    pub last_view_id: ViewId,
    pub view: Option<ViewRecord>,
    /// The raft voters and learners, sorted by `short`.
    pub members: Vec<MemberRecord>,
    pub commit_cut: Seqno,
    /// Removed members and the last proposal epoch they had: a node readmitted under the same
    /// id starts in a later epoch, so a retry of something it proposed before its removal
    /// can never be delivered a second time. Oldest first, bounded by `MAX_RETIRED`.
    pub retired: Vec<(NodeId, u64)>,
    /// How many times each node id was removed; a readmitted node keeps its count. With
    /// `evs.auto_evict=N` the leader refuses a node removed N times (it is evicted, and
    /// must restart under a new id). Oldest first, bounded by `MAX_RETIRED`.
    pub removals: Vec<(NodeId, u32)>,
    /// Nodes the operator evicted (`evs.evict`), bounded by `MAX_RETIRED`.
    pub evicted_by_operator: Vec<NodeId>,
    /// Large writesets whose first parts are delivered and whose last is not yet: at most
    /// one per member (an origin's parts are consecutive proposals), sorted by origin. Part
    /// of the state so that a node that joins by snapshot mid-way still assembles them.
    pub partials: Vec<PartialWriteset>,
}

/// The parts of one large writeset delivered so far.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct PartialWriteset {
    pub origin: NodeId,
    pub epoch: u64,
    /// The part expected next.
    pub next_part: u32,
    pub parts: u32,
    pub bytes: Vec<u8>,
}

/// Tombstones kept for readmission (a node removed more than this many removals ago and
/// then readmitted with the same id would rely on its own epoch alone).
pub(crate) const MAX_RETIRED: usize = 1024;

/// What applying one entry produced.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Applied {
    Nothing,
    Ordered {
        seqno: Seqno,
        origin: NodeId,
        epoch: u64,
        seq: u64,
        payload: Vec<u8>,
    },
    Control {
        origin: NodeId,
        epoch: u64,
        seq: u64,
        after: Seqno,
        event: ControlEvent,
    },
    /// A part of a large writeset that is not its last: numbered and kept, nothing to
    /// deliver yet.
    Part {
        origin: NodeId,
        epoch: u64,
        seq: u64,
    },
    /// The last part of a large writeset whose earlier parts are not all here (cannot happen
    /// while origins number their parts consecutively; handled all the same): nothing is
    /// delivered, and the origin's proposal fails.
    Incomplete {
        origin: NodeId,
        epoch: u64,
        seq: u64,
    },
    /// A writeset or control entry that is not delivered.
    Rejected {
        origin: NodeId,
        epoch: u64,
        seq: u64,
        why: Admission,
    },
    View(ViewRecord),
    CommitCut(Seqno),
}

/// An ordered control message as delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlEvent {
    /// `joiner` asked for state transfer; `donor` is the member chosen (the same on every
    /// node), or `None` if no member qualifies (the joiner retries later).
    StateRequest {
        joiner: NodeId,
        donor: Option<NodeId>,
        donor_names: Vec<String>,
        request: Vec<u8>,
        ist_from: Position,
    },
    MemberSynced {
        node: NodeId,
    },
    MemberDesynced {
        node: NodeId,
    },
    FlowControl {
        node: NodeId,
        stop: bool,
    },
    /// `donor` failed to give `joiner` its state (see `ControlEntry::TransferFailed`).
    TransferFailed {
        donor: NodeId,
        joiner: NodeId,
        code: i32,
    },
    /// The operator of `by` evicted `node` (`evs.evict`).
    Evicted {
        node: NodeId,
        by: NodeId,
    },
    /// The operator of `by` cleared the evict list.
    EvictionsCleared {
        by: NodeId,
    },
    /// `node`'s GCache holds the writesets from `from` on.
    Cached {
        node: NodeId,
        from: Seqno,
    },
    /// `node`'s result for the writeset at `seqno` (see `ControlEntry::Vote`).
    Vote {
        node: NodeId,
        seqno: Seqno,
        code: u64,
    },
    /// `node` asked for weight `weight` in quorums (`pc.weight`); the leader gets it there
    /// in steps.
    WeightWanted {
        node: NodeId,
        weight: u8,
    },
}

/// Whether an origin's proposal `(epoch, seq)` is delivered at this point of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Deliver,
    /// Already delivered (a retry).
    Duplicate,
    /// An earlier proposal of the same origin is missing: delivering this one would reorder
    /// the origin's proposals. The origin resends from the gap.
    Gap,
    /// From an epoch the origin abandoned (it failed those proposals); never delivered once
    /// a later epoch has started.
    StaleEpoch,
    /// The origin is not a member here (removed, or never admitted).
    NotMember,
}

impl SmState {
    /// The state a bootstrapping node starts from: itself the only member, synced.
    pub(crate) fn bootstrap(
        history: HistoryId,
        generation: Generation,
        last_seqno: Seqno,
        me: MemberInfo,
        epoch: u64,
    ) -> SmState {
        let short = me.id.short_id();
        SmState {
            history,
            generation,
            applied_index: 0,
            last_seqno: if last_seqno.is_defined() {
                last_seqno
            } else {
                Seqno::ZERO
            },
            last_view_id: ViewId(0),
            view: None,
            members: vec![MemberRecord {
                short,
                info: me,
                voter: true,
                state: STATE_SYNCED,
                epoch,
                last_seq: 0,
                cached_from: Seqno::UNDEFINED,
                weight: 1,
                wanted_weight: 1,
            }],
            commit_cut: Seqno::UNDEFINED,
            retired: Vec::new(),
            removals: Vec::new(),
            evicted_by_operator: Vec::new(),
            partials: Vec::new(),
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        rkyv::to_bytes::<rancor::Error>(self)
            .expect("serialising the state into memory cannot fail")
            .to_vec()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<SmState, crate::msg::MsgDecodeError> {
        let state = decode_archive::<SmState>(bytes, crate::msg::MAX_MSG_BYTES)?;
        state
            .check()
            .map_err(|detail| crate::msg::MsgDecodeError::Invalid { detail })?;
        Ok(state)
    }

    /// Structural checks on a state that arrived from the network.
    fn check(&self) -> Result<(), String> {
        if self.members.is_empty() {
            return Err("snapshot state has no members".into());
        }
        if self.members.windows(2).any(|w| w[0].short >= w[1].short) {
            return Err("snapshot members are not sorted and unique".into());
        }
        if self.members.iter().any(|m| m.short != m.info.id.short_id()) {
            return Err("snapshot member raft id does not match its node id".into());
        }
        if self.retired.len() > MAX_RETIRED
            || self.removals.len() > MAX_RETIRED
            || self.evicted_by_operator.len() > MAX_RETIRED
        {
            return Err("snapshot keeps more removed nodes than the bound".into());
        }
        if self.partials.windows(2).any(|w| w[0].origin >= w[1].origin) {
            return Err("snapshot partial writesets are not sorted and unique".into());
        }
        for p in &self.partials {
            if !self.is_member(p.origin) || p.next_part == 0 || p.next_part >= p.parts {
                return Err(format!(
                    "snapshot partial writeset of {} is inconsistent",
                    p.origin
                ));
            }
        }
        Ok(())
    }

    // protobuf messages are built field by field (as raft-rs itself does)
    #[allow(clippy::field_reassign_with_default)]
    pub(crate) fn conf_state(&self) -> ConfState {
        let mut cs = ConfState::default();
        cs.voters = self
            .members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.short)
            .collect();
        cs.learners = self
            .members
            .iter()
            .filter(|m| !m.voter)
            .map(|m| m.short)
            .collect();
        cs
    }

    pub(crate) fn member(&self, id: NodeId) -> Option<&MemberRecord> {
        self.members.iter().find(|m| m.info.id == id)
    }

    fn member_mut(&mut self, id: NodeId) -> Option<&mut MemberRecord> {
        self.members.iter_mut().find(|m| m.info.id == id)
    }

    pub(crate) fn member_by_short(&self, short: u64) -> Option<&MemberRecord> {
        self.members
            .binary_search_by_key(&short, |m| m.short)
            .ok()
            .map(|i| &self.members[i])
    }

    pub(crate) fn is_member(&self, id: NodeId) -> bool {
        self.member(id).is_some()
    }

    pub(crate) fn is_voter(&self, id: NodeId) -> bool {
        self.member(id).is_some_and(|m| m.voter)
    }

    pub(crate) fn voters(&self) -> impl Iterator<Item = &MemberRecord> {
        self.members.iter().filter(|m| m.voter)
    }

    /// Whether the installed view lists exactly the current voters.
    pub(crate) fn view_matches_members(&self) -> bool {
        match &self.view {
            None => false,
            Some(v) => {
                v.members.len() == self.voters().count()
                    && self
                        .voters()
                        .all(|m| v.members.iter().any(|i| i.id == m.info.id))
            }
        }
    }

    pub(crate) fn admit(&self, origin: NodeId, epoch: u64, seq: u64) -> Admission {
        let Some(m) = self.member(origin) else {
            return Admission::NotMember;
        };
        if epoch < m.epoch {
            Admission::StaleEpoch
        } else if epoch == m.epoch {
            if seq <= m.last_seq {
                Admission::Duplicate
            } else if seq == m.last_seq + 1 {
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

    fn record_delivery(&mut self, origin: NodeId, epoch: u64, seq: u64) {
        let m = self
            .member_mut(origin)
            .expect("admitted origin is a member");
        assert!(
            epoch > m.epoch || seq == m.last_seq + 1,
            "delivery out of origin order"
        );
        m.epoch = epoch;
        m.last_seq = seq;
    }

    fn next_seqno(&mut self) -> Seqno {
        let next = self.last_seqno.next();
        assert!(
            next > self.last_seqno && next.is_defined(),
            "seqno must strictly increase"
        );
        self.last_seqno = next;
        next
    }

    /// Applies one committed normal entry at raft `index`. `command` is `None` for raft's
    /// empty entries and for payloads that did not decode.
    pub(crate) fn apply(&mut self, index: u64, command: Option<Command>) -> Applied {
        self.advance_index(index);
        let Some(command) = command else {
            return Applied::Nothing;
        };
        match command {
            // A whole writeset is its own only part (`assemble` then drops any partial).
            Command::Writeset {
                origin,
                epoch,
                seq,
                payload,
            } => self.apply_part(origin, epoch, seq, (0, 1), payload),
            Command::WritesetPart {
                origin,
                epoch,
                seq,
                part,
                parts,
                bytes,
            } => self.apply_part(origin, epoch, seq, (part, parts), bytes),
            Command::Control {
                origin,
                epoch,
                seq,
                control,
            } => match self.admit(origin, epoch, seq) {
                Admission::Deliver => {
                    self.record_delivery(origin, epoch, seq);
                    self.drop_partial(origin);
                    let event = self.apply_control(origin, control);
                    Applied::Control {
                        origin,
                        epoch,
                        seq,
                        after: self.last_seqno,
                        event,
                    }
                }
                why => Applied::Rejected {
                    origin,
                    epoch,
                    seq,
                    why,
                },
            },
            Command::View { after } => {
                if after != self.last_view_id {
                    return Applied::Nothing;
                }
                let view_id = ViewId(self.last_view_id.0 + 1);
                assert!(view_id > self.last_view_id, "view ids must increase");
                let seqno = self.next_seqno();
                let mut members: Vec<MemberInfo> = self.voters().map(|m| m.info.clone()).collect();
                members.sort_by_key(|m| m.id);
                let record = ViewRecord {
                    view_id,
                    seqno,
                    members,
                };
                self.last_view_id = view_id;
                self.view = Some(record.clone());
                Applied::View(record)
            }
            Command::CommitCut { seqno } => {
                if seqno > self.commit_cut && seqno <= self.last_seqno {
                    self.commit_cut = seqno;
                    Applied::CommitCut(seqno)
                } else {
                    Applied::Nothing
                }
            }
        }
    }

    /// A writeset, or part `part` of `parts` of one: admitted in origin order, and ordered
    /// (given its seqno) once whole.
    fn apply_part(
        &mut self,
        origin: NodeId,
        epoch: u64,
        seq: u64,
        (part, parts): (u32, u32),
        bytes: Vec<u8>,
    ) -> Applied {
        let why = self.admit(origin, epoch, seq);
        if why != Admission::Deliver {
            return Applied::Rejected {
                origin,
                epoch,
                seq,
                why,
            };
        }
        self.record_delivery(origin, epoch, seq);
        match self.assemble(origin, epoch, part, parts, bytes) {
            Some(payload) => Applied::Ordered {
                seqno: self.next_seqno(),
                origin,
                epoch,
                seq,
                payload,
            },
            None if part.saturating_add(1) >= parts => Applied::Incomplete { origin, epoch, seq },
            None => Applied::Part { origin, epoch, seq },
        }
    }

    /// Adds a delivered part to its origin's partial writeset; returns the whole writeset
    /// with its last part. A part that does not continue the partial (never expected: an
    /// origin's parts are consecutive) drops it; a first part starts a new one.
    fn assemble(
        &mut self,
        origin: NodeId,
        epoch: u64,
        part: u32,
        parts: u32,
        bytes: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let at = self.partials.binary_search_by_key(&origin, |p| p.origin);
        if part == 0 {
            if parts <= 1 {
                if let Ok(i) = at {
                    self.partials.remove(i);
                }
                return Some(bytes);
            }
            // The whole writeset's room at once: growing by doubling would copy it about
            // twice over, into fresh pages each time (slow on a VM).
            let whole = (parts as usize)
                .saturating_mul(bytes.len())
                .min(trireme_types::MAX_WRITESET_BYTES);
            let mut buffer = Vec::with_capacity(whole.max(bytes.len()));
            buffer.extend_from_slice(&bytes);
            let fresh = PartialWriteset {
                origin,
                epoch,
                next_part: 1,
                parts,
                bytes: buffer,
            };
            match at {
                Ok(i) => self.partials[i] = fresh,
                Err(i) => self.partials.insert(i, fresh),
            }
            return None;
        }
        let i = at.ok()?;
        let p = &mut self.partials[i];
        if p.epoch != epoch || p.next_part != part || p.parts != parts {
            self.partials.remove(i);
            return None;
        }
        p.bytes.extend_from_slice(&bytes);
        p.next_part += 1;
        if p.next_part < p.parts {
            return None;
        }
        Some(self.partials.remove(i).bytes)
    }

    /// An origin's partial writeset can no longer complete (it delivered something else, or
    /// left).
    fn drop_partial(&mut self, origin: NodeId) {
        if let Ok(i) = self.partials.binary_search_by_key(&origin, |p| p.origin) {
            self.partials.remove(i);
        }
    }

    /// Records raft index `index` as applied (entries of any type).
    pub(crate) fn advance_index(&mut self, index: u64) {
        assert!(
            index > self.applied_index,
            "raft entries apply in index order"
        );
        self.applied_index = index;
    }

    /// A learner was added by a configuration change raft accepted.
    pub(crate) fn add_learner(&mut self, short: u64, add: MemberAdd) {
        assert_eq!(short, add.info.id.short_id(), "raft id matches the node id");
        match self.members.binary_search_by_key(&short, |m| m.short) {
            Ok(_) => {} // raft treats re-adding as a no-op; so do we
            Err(at) => {
                let id = add.info.id;
                let mut epoch = add.epoch;
                if let Some(i) = self.retired.iter().position(|(r, _)| *r == id) {
                    epoch = epoch.max(self.retired[i].1 + 1);
                    self.retired.remove(i);
                }
                self.members.insert(
                    at,
                    MemberRecord {
                        short,
                        info: add.info,
                        voter: false,
                        state: STATE_JOINER,
                        epoch,
                        last_seq: 0,
                        cached_from: Seqno::UNDEFINED,
                        weight: 0,
                        wanted_weight: add.weight,
                    },
                );
            }
        }
    }

    /// A learner became a voter (raft `AddNode` on a learner). It enters with weight at
    /// most one, which keeps old and new quorums intersecting as adding one voter does; the
    /// rest of its wanted weight comes one unit at a time.
    pub(crate) fn promote(&mut self, short: u64) {
        if let Ok(at) = self.members.binary_search_by_key(&short, |m| m.short) {
            let m = &mut self.members[at];
            if !m.voter {
                m.voter = true;
                m.weight = m.wanted_weight.min(1);
            }
        }
    }

    /// The only member of a state made by `bootstrap` starts at weight one (voters that all
    /// weigh 0 have no quorum) and wants `weight`.
    pub(crate) fn set_bootstrap_weight(&mut self, weight: u8) {
        assert_eq!(
            self.members.len(),
            1,
            "only a one-member state is bootstrapped"
        );
        self.members[0].wanted_weight = weight;
    }

    /// The next weight step for a voter, if its weight is not what it wanted: one unit
    /// toward it (see `weight_step_valid`).
    pub(crate) fn weight_step(&self, short: u64) -> Option<u8> {
        let m = self.member_by_short(short).filter(|m| m.voter)?;
        let next = match m.weight.cmp(&m.wanted_weight) {
            std::cmp::Ordering::Less => m.weight + 1,
            std::cmp::Ordering::Greater => m.weight - 1,
            std::cmp::Ordering::Equal => return None,
        };
        self.weight_step_valid(short, next).then_some(next)
    }

    /// Whether `weight` is a valid next weight for the voter `short`: one unit from its
    /// current weight, and not the step that would leave every voter at 0 (no quorum at
    /// all). Changing one voter's weight by one is like adding or removing one voter of
    /// weight one, so every quorum before the step intersects every quorum after it;
    /// larger jumps would not.
    pub(crate) fn weight_step_valid(&self, short: u64, weight: u8) -> bool {
        let Some(m) = self.member_by_short(short).filter(|m| m.voter) else {
            return false;
        };
        let others: u64 = self
            .voters()
            .filter(|o| o.short != short)
            .map(|o| u64::from(o.weight))
            .sum();
        m.weight.abs_diff(weight) == 1 && others + u64::from(weight) > 0
    }

    /// Applies a weight step checked by `weight_step_valid`.
    pub(crate) fn apply_weight_step(&mut self, short: u64, weight: u8) {
        assert!(
            self.weight_step_valid(short, weight),
            "weight steps are checked first"
        );
        if let Ok(at) = self.members.binary_search_by_key(&short, |m| m.short) {
            self.members[at].weight = weight;
        }
    }

    /// The voters' weights for raft's quorums, `None` when every voter weighs one (raft's
    /// own head count, unchanged).
    pub(crate) fn weights(&self) -> Option<raft::Weights> {
        let weights = self.voter_weights();
        (!weights.iter().all(|(_, w)| *w == 1)).then(|| weights.into_iter().collect())
    }

    /// Each voter's raft id and weight, for quorum arithmetic outside raft (leases,
    /// removal checks).
    pub(crate) fn voter_weights(&self) -> Vec<(u64, u64)> {
        self.voters()
            .map(|m| (m.short, u64::from(m.weight)))
            .collect()
    }

    /// How many times `node` was removed from the group.
    pub(crate) fn removals_of(&self, node: NodeId) -> u32 {
        self.removals
            .iter()
            .find(|(id, _)| *id == node)
            .map_or(0, |(_, n)| *n)
    }

    /// The ids the operator evicted or removed at least `limit` times (`evs.auto_evict`;
    /// 0: no automatic eviction), for `wsrep_evs_evict_list`.
    pub(crate) fn evicted(&self, limit: u32) -> Vec<NodeId> {
        let mut out = self.evicted_by_operator.clone();
        if limit > 0 {
            for (id, n) in &self.removals {
                if *n >= limit && !out.contains(id) {
                    out.push(*id);
                }
            }
        }
        out
    }

    /// Whether `node` is evicted (by the operator, or by `limit` removals).
    pub(crate) fn is_evicted(&self, node: NodeId, limit: u32) -> bool {
        self.evicted_by_operator.contains(&node) || (limit > 0 && self.removals_of(node) >= limit)
    }

    /// A voter was removed by a configuration change raft accepted.
    pub(crate) fn remove_member(&mut self, short: u64) -> Option<MemberRecord> {
        match self.members.binary_search_by_key(&short, |m| m.short) {
            Ok(at) => {
                let m = self.members.remove(at);
                self.drop_partial(m.info.id);
                if self.retired.len() >= MAX_RETIRED {
                    self.retired.remove(0);
                }
                self.retired.push((m.info.id, m.epoch));
                match self.removals.iter_mut().find(|(id, _)| *id == m.info.id) {
                    Some((_, count)) => *count = count.saturating_add(1),
                    None => {
                        if self.removals.len() >= MAX_RETIRED {
                            self.removals.remove(0);
                        }
                        self.removals.push((m.info.id, 1));
                    }
                }
                Some(m)
            }
            Err(_) => None,
        }
    }

    fn apply_control(&mut self, origin: NodeId, control: ControlEntry) -> ControlEvent {
        match control {
            ControlEntry::StateRequest {
                donor_names,
                request,
                ist_from,
            } => {
                let donor = self.choose_donor(origin, &donor_names, ist_from);
                if let Some(donor) = donor {
                    self.set_state(donor, STATE_DONOR);
                    self.set_state(origin, STATE_JOINER);
                }
                ControlEvent::StateRequest {
                    joiner: origin,
                    donor,
                    donor_names,
                    request,
                    ist_from,
                }
            }
            ControlEntry::Synced => {
                self.set_state(origin, STATE_SYNCED);
                ControlEvent::MemberSynced { node: origin }
            }
            ControlEntry::Desynced => {
                self.set_state(origin, STATE_DONOR);
                ControlEvent::MemberDesynced { node: origin }
            }
            ControlEntry::FlowControl { stop } => ControlEvent::FlowControl { node: origin, stop },
            ControlEntry::TransferFailed { joiner, code } => ControlEvent::TransferFailed {
                donor: origin,
                joiner,
                code,
            },
            ControlEntry::Evict { node } => {
                if !self.evicted_by_operator.contains(&node) {
                    if self.evicted_by_operator.len() >= MAX_RETIRED {
                        self.evicted_by_operator.remove(0);
                    }
                    self.evicted_by_operator.push(node);
                }
                ControlEvent::Evicted { node, by: origin }
            }
            ControlEntry::ClearEvictions => {
                self.evicted_by_operator.clear();
                self.removals.clear();
                ControlEvent::EvictionsCleared { by: origin }
            }
            ControlEntry::Cached { from } => {
                if let Some(m) = self.member_mut(origin) {
                    m.cached_from = from;
                }
                ControlEvent::Cached { node: origin, from }
            }
            ControlEntry::Vote { seqno, code } => ControlEvent::Vote {
                node: origin,
                seqno,
                code,
            },
            ControlEntry::Weight { weight } => {
                if let Some(m) = self.member_mut(origin) {
                    m.wanted_weight = weight;
                }
                ControlEvent::WeightWanted {
                    node: origin,
                    weight,
                }
            }
        }
    }

    fn set_state(&mut self, node: NodeId, state: u8) {
        if let Some(m) = self.member_mut(node) {
            m.state = state;
        }
    }

    /// Galera's donor choice, made at delivery so every node agrees: the first synced member
    /// named in `donor_names` (in list order), else, if the list is empty or ends with an
    /// empty name (a trailing comma in `wsrep_sst_donor`), a synced member other than the
    /// joiner: one whose GCache (as last reported) reaches back to the joiner's position, so
    /// that IST will do, with the most margin (the lowest `cached_from`); else the one with
    /// the lowest node id. Ties go to the lowest node id.
    pub(crate) fn choose_donor(
        &self,
        joiner: NodeId,
        donor_names: &[String],
        ist_from: Position,
    ) -> Option<NodeId> {
        let eligible = |m: &&MemberRecord| m.state == STATE_SYNCED && m.info.id != joiner;
        for name in donor_names.iter().filter(|n| !n.is_empty()) {
            if let Some(m) = self
                .members
                .iter()
                .filter(eligible)
                .find(|m| &m.info.name == name)
            {
                return Some(m.info.id);
            }
        }
        let any_allowed = donor_names.last().is_none_or(|n| n.is_empty());
        if !any_allowed {
            return None;
        }
        let wants = (ist_from.history == self.history && ist_from.seqno.is_defined())
            .then(|| ist_from.seqno.next());
        let can_ist = |m: &&MemberRecord| {
            wants.is_some_and(|w| m.cached_from.is_defined() && m.cached_from <= w)
        };
        if let Some(m) = self
            .members
            .iter()
            .filter(eligible)
            .filter(can_ist)
            .min_by_key(|m| (m.cached_from, m.info.id))
        {
            return Some(m.info.id);
        }
        self.members
            .iter()
            .filter(eligible)
            .map(|m| m.info.id)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_types::Uuid;

    fn node(b: u8) -> NodeId {
        NodeId(Uuid([b; 16]))
    }

    fn info(b: u8, name: &str) -> MemberInfo {
        MemberInfo {
            id: node(b),
            name: name.into(),
            incoming: String::new(),
            address: String::new(),
        }
    }

    fn state_with(members: &[(u8, &str, u8)]) -> SmState {
        let gen = Generation {
            number: 1,
            origin: node(members[0].0),
        };
        let mut s = SmState::bootstrap(
            HistoryId(Uuid([7; 16])),
            gen,
            Seqno(10),
            info(members[0].0, members[0].1),
            0,
        );
        s.members[0].state = members[0].2;
        for &(b, name, state) in &members[1..] {
            s.add_learner(
                node(b).short_id(),
                MemberAdd {
                    info: info(b, name),
                    epoch: 0,
                    weight: 1,
                },
            );
            s.promote(node(b).short_id());
            s.set_state(node(b), state);
        }
        s
    }

    fn ws(origin: u8, epoch: u64, seq: u64) -> Option<Command> {
        Some(Command::Writeset {
            origin: node(origin),
            epoch,
            seq,
            payload: vec![origin, seq as u8],
        })
    }

    #[test]
    fn seqnos_continue_from_the_bootstrap_position_and_views_take_one() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED)]);
        let v = s.apply(2, Some(Command::View { after: ViewId(0) }));
        let Applied::View(v) = v else { panic!("{v:?}") };
        assert_eq!((v.view_id, v.seqno), (ViewId(1), Seqno(11)));
        assert_eq!(
            s.apply(3, None),
            Applied::Nothing,
            "raft's empty entries take no seqno"
        );
        let Applied::Ordered { seqno, .. } = s.apply(4, ws(1, 0, 1)) else {
            panic!()
        };
        assert_eq!(seqno, Seqno(12));
        // A second view request based on the old view is skipped deterministically.
        assert_eq!(
            s.apply(5, Some(Command::View { after: ViewId(0) })),
            Applied::Nothing
        );
        let Applied::View(v) = s.apply(6, Some(Command::View { after: ViewId(1) })) else {
            panic!()
        };
        assert_eq!((v.view_id, v.seqno), (ViewId(2), Seqno(13)));
    }

    #[test]
    fn undefined_bootstrap_position_starts_the_history_at_seqno_one() {
        let gen = Generation {
            number: 1,
            origin: node(1),
        };
        let mut s = SmState::bootstrap(
            HistoryId(Uuid([7; 16])),
            gen,
            Seqno::UNDEFINED,
            info(1, "a"),
            0,
        );
        let Applied::View(v) = s.apply(2, Some(Command::View { after: ViewId(0) })) else {
            panic!()
        };
        assert_eq!(v.seqno, Seqno(1));
    }

    #[test]
    fn retries_are_delivered_once_and_never_reorder_an_origin() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_SYNCED)]);
        let mut i = 1;
        let mut apply = |s: &mut SmState, c| {
            i += 1;
            s.apply(i, c)
        };
        assert!(matches!(
            apply(&mut s, ws(2, 0, 1)),
            Applied::Ordered { seq: 1, .. }
        ));
        // seq 3 arrives before seq 2 (a retry raced a later proposal): skipped as a gap.
        assert!(matches!(
            apply(&mut s, ws(2, 0, 3)),
            Applied::Rejected {
                why: Admission::Gap,
                ..
            }
        ));
        assert!(matches!(
            apply(&mut s, ws(2, 0, 2)),
            Applied::Ordered { seq: 2, .. }
        ));
        assert!(matches!(
            apply(&mut s, ws(2, 0, 2)),
            Applied::Rejected {
                why: Admission::Duplicate,
                ..
            }
        ));
        assert!(matches!(
            apply(&mut s, ws(2, 0, 3)),
            Applied::Ordered { seq: 3, .. }
        ));
        // The origin abandons epoch 0 and starts epoch 1: later epoch-0 entries never land.
        assert!(matches!(
            apply(&mut s, ws(2, 1, 2)),
            Applied::Rejected {
                why: Admission::Gap,
                ..
            }
        ));
        assert!(matches!(
            apply(&mut s, ws(2, 1, 1)),
            Applied::Ordered { .. }
        ));
        assert!(matches!(
            apply(&mut s, ws(2, 0, 4)),
            Applied::Rejected {
                why: Admission::StaleEpoch,
                ..
            }
        ));
        // Non-members are never delivered.
        assert!(matches!(
            apply(&mut s, ws(9, 0, 1)),
            Applied::Rejected {
                why: Admission::NotMember,
                ..
            }
        ));
        s.remove_member(node(2).short_id());
        assert!(matches!(
            apply(&mut s, ws(2, 1, 2)),
            Applied::Rejected {
                why: Admission::NotMember,
                ..
            }
        ));
    }

    #[test]
    fn readmitted_origin_starts_at_its_join_epoch() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED)]);
        s.add_learner(
            node(2).short_id(),
            MemberAdd {
                info: info(2, "b"),
                epoch: 5,
                weight: 1,
            },
        );
        assert_eq!(s.admit(node(2), 4, 1), Admission::StaleEpoch);
        assert_eq!(s.admit(node(2), 5, 1), Admission::Deliver);
    }

    #[test]
    fn a_removed_and_readmitted_origin_never_gets_an_old_proposal_delivered_twice() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_SYNCED)]);
        assert!(matches!(s.apply(2, ws(2, 0, 1)), Applied::Ordered { .. }));
        s.remove_member(node(2).short_id());
        // Readmitted asking for the same epoch it used before: it gets a later one.
        s.add_learner(
            node(2).short_id(),
            MemberAdd {
                info: info(2, "b"),
                epoch: 0,
                weight: 1,
            },
        );
        assert_eq!(s.member(node(2)).unwrap().epoch, 1);
        assert!(matches!(
            s.apply(3, ws(2, 0, 1)),
            Applied::Rejected {
                why: Admission::StaleEpoch,
                ..
            }
        ));
        assert!(s.retired.is_empty());
    }

    #[test]
    fn donor_is_the_first_named_synced_member() {
        let s = state_with(&[
            (1, "a", STATE_SYNCED),
            (2, "b", STATE_SYNCED),
            (3, "c", STATE_JOINER),
            (4, "d", STATE_SYNCED),
        ]);
        let names = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.choose_donor(node(3), &names(&["d", "b"]), Position::UNDEFINED),
            Some(node(4))
        );
        // c is not synced: skipped; b is next in the list.
        assert_eq!(
            s.choose_donor(node(4), &names(&["c", "b"]), Position::UNDEFINED),
            Some(node(2))
        );
        // Only unavailable names and no trailing comma: no donor (Galera waits).
        assert_eq!(
            s.choose_donor(node(4), &names(&["c"]), Position::UNDEFINED),
            None
        );
        // A trailing comma allows any synced member other than the joiner: lowest id.
        assert_eq!(
            s.choose_donor(node(1), &names(&["c", ""]), Position::UNDEFINED),
            Some(node(2))
        );
        assert_eq!(
            s.choose_donor(node(1), &[], Position::UNDEFINED),
            Some(node(2))
        );
        // The joiner never donates to itself.
        assert_eq!(
            s.choose_donor(node(2), &names(&["b", ""]), Position::UNDEFINED),
            Some(node(1))
        );
    }

    #[test]
    fn without_a_named_donor_one_whose_gcache_reaches_the_joiner_is_preferred() {
        let mut s = state_with(&[
            (1, "a", STATE_SYNCED),
            (2, "b", STATE_SYNCED),
            (3, "c", STATE_JOINER),
            (4, "d", STATE_SYNCED),
        ]);
        let cached = |s: &mut SmState, b: u8, from: i64| {
            s.apply_control(node(b), ControlEntry::Cached { from: Seqno(from) })
        };
        let at = |seqno: i64| Position {
            history: s_history(),
            seqno: Seqno(seqno),
        };
        // Nobody reported a cache: the lowest id, as before (SST or a lucky IST).
        assert_eq!(s.choose_donor(node(3), &[], at(50)), Some(node(1)));
        cached(&mut s, 1, 90);
        cached(&mut s, 2, 40);
        cached(&mut s, 4, 20);
        // The joiner has 50 and needs 51 on: b and d can serve it; d has the most margin.
        assert_eq!(s.choose_donor(node(3), &[], at(50)), Some(node(4)));
        assert_eq!(
            s.choose_donor(node(3), &[String::new()], at(50)),
            Some(node(4))
        );
        // Needs 31 on: only d.
        assert_eq!(s.choose_donor(node(3), &[], at(30)), Some(node(4)));
        // Nobody reaches back to 11: lowest id (SST).
        assert_eq!(s.choose_donor(node(3), &[], at(10)), Some(node(1)));
        // Another history, or no position: no IST possible, lowest id.
        let other = Position {
            history: HistoryId(Uuid([9; 16])),
            seqno: Seqno(50),
        };
        assert_eq!(s.choose_donor(node(3), &[], other), Some(node(1)));
        assert_eq!(
            s.choose_donor(node(3), &[], Position::UNDEFINED),
            Some(node(1))
        );
        // A named donor still wins over the cache.
        let a = vec!["a".to_string()];
        assert_eq!(s.choose_donor(node(3), &a, at(50)), Some(node(1)));
        // A member that is not synced is never chosen, whatever it caches.
        s.set_state(node(4), STATE_DONOR);
        assert_eq!(s.choose_donor(node(3), &[], at(50)), Some(node(2)));
    }

    fn s_history() -> HistoryId {
        HistoryId(Uuid([7; 16]))
    }

    #[test]
    fn state_request_marks_donor_and_joiner_and_synced_restores() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_JOINER)]);
        let req = ControlEntry::StateRequest {
            donor_names: vec![],
            request: b"rsync".to_vec(),
            ist_from: Position::UNDEFINED,
        };
        let r = s.apply(
            2,
            Some(Command::Control {
                origin: node(2),
                epoch: 0,
                seq: 1,
                control: req,
            }),
        );
        let Applied::Control {
            event: ControlEvent::StateRequest { donor, joiner, .. },
            ..
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!((donor, joiner), (Some(node(1)), node(2)));
        assert_eq!(s.member(node(1)).unwrap().state, STATE_DONOR);
        // Nobody else is synced now: a second joiner finds no donor.
        assert_eq!(s.choose_donor(node(2), &[], Position::UNDEFINED), None);
        s.apply(
            3,
            Some(Command::Control {
                origin: node(1),
                epoch: 0,
                seq: 1,
                control: ControlEntry::Synced,
            }),
        );
        assert_eq!(s.member(node(1)).unwrap().state, STATE_SYNCED);
    }

    #[test]
    fn commit_cut_only_moves_forward_and_within_assigned_seqnos() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED)]);
        assert_eq!(
            s.apply(2, Some(Command::CommitCut { seqno: Seqno(5) })),
            Applied::CommitCut(Seqno(5))
        );
        assert_eq!(
            s.apply(3, Some(Command::CommitCut { seqno: Seqno(4) })),
            Applied::Nothing
        );
        assert_eq!(
            s.apply(4, Some(Command::CommitCut { seqno: Seqno(11) })),
            Applied::Nothing
        );
    }

    #[test]
    fn snapshot_state_round_trips_and_bad_states_are_refused() {
        let s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_JOINER)]);
        assert_eq!(SmState::decode(&s.encode()).unwrap(), s);
        let mut bad = s.clone();
        bad.members.swap(0, 1);
        assert!(SmState::decode(&bad.encode()).is_err());
        assert!(SmState::decode(b"garbage").is_err());
    }

    fn part(
        origin: u8,
        epoch: u64,
        seq: u64,
        part: u32,
        parts: u32,
        bytes: &[u8],
    ) -> Option<Command> {
        Some(Command::WritesetPart {
            origin: node(origin),
            epoch,
            seq,
            part,
            parts,
            bytes: bytes.to_vec(),
        })
    }

    #[test]
    fn a_writeset_in_parts_gets_one_seqno_with_its_last_part_and_survives_a_snapshot() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_SYNCED)]);
        let start = s.last_seqno;
        assert_eq!(
            s.apply(1, part(1, 0, 1, 0, 3, b"ab")),
            Applied::Part {
                origin: node(1),
                epoch: 0,
                seq: 1
            }
        );
        // Another origin's writeset is ordered between the parts; the partial waits.
        assert!(matches!(s.apply(2, ws(2, 0, 1)), Applied::Ordered { .. }));
        assert!(matches!(
            s.apply(3, part(1, 0, 2, 1, 3, b"cd")),
            Applied::Part { .. }
        ));
        // A node that starts from a snapshot taken here assembles the same writeset.
        let mut joiner = SmState::decode(&s.encode()).unwrap();
        for state in [&mut s, &mut joiner] {
            match state.apply(4, part(1, 0, 3, 2, 3, b"e")) {
                Applied::Ordered {
                    seqno,
                    payload,
                    seq,
                    ..
                } => {
                    assert_eq!(payload, b"abcde".to_vec());
                    assert_eq!(seq, 3);
                    assert_eq!(seqno, Seqno(start.0 + 2));
                }
                other => panic!("expected the whole writeset, got {other:?}"),
            }
            assert!(state.partials.is_empty());
        }
    }

    #[test]
    fn a_partial_writeset_is_dropped_when_its_origin_moves_on_or_leaves() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_SYNCED)]);
        s.apply(1, part(1, 0, 1, 0, 2, b"ab"));
        // The origin delivered something else: its partial can never complete.
        assert!(matches!(s.apply(2, ws(1, 0, 2)), Applied::Ordered { .. }));
        assert!(s.partials.is_empty());
        let seqno = s.last_seqno;
        assert_eq!(
            s.apply(3, part(1, 0, 3, 1, 2, b"cd")),
            Applied::Incomplete {
                origin: node(1),
                epoch: 0,
                seq: 3
            }
        );
        assert_eq!(s.last_seqno, seqno, "nothing incomplete takes a seqno");
        s.apply(4, part(2, 0, 1, 0, 2, b"xy"));
        assert_eq!(s.partials.len(), 1);
        s.remove_member(node(2).short_id());
        assert!(s.partials.is_empty());
        // A snapshot naming a partial of a non-member is refused.
        let mut bad = s.clone();
        bad.partials.push(PartialWriteset {
            origin: node(9),
            epoch: 0,
            next_part: 1,
            parts: 2,
            bytes: vec![],
        });
        assert!(SmState::decode(&bad.encode()).is_err());
    }

    #[test]
    fn weights_move_one_unit_at_a_time_and_never_all_to_zero() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_SYNCED)]);
        let (a, b) = (node(1).short_id(), node(2).short_id());
        assert_eq!(s.weights(), None, "all weigh one: raft counts heads");
        s.member_mut(node(1)).unwrap().wanted_weight = 3;
        assert_eq!(s.weight_step(a), Some(2));
        assert!(
            !s.weight_step_valid(a, 3),
            "a jump of two could split quorums"
        );
        s.apply_weight_step(a, 2);
        assert_eq!(s.weight_step(a), Some(3));
        s.apply_weight_step(a, 3);
        assert_eq!(s.weight_step(a), None);
        assert_eq!(s.weights(), Some([(a, 3), (b, 1)].into_iter().collect()));
        // Down to zero, one step at a time; the last voter with weight keeps one.
        s.member_mut(node(1)).unwrap().wanted_weight = 0;
        s.member_mut(node(2)).unwrap().wanted_weight = 0;
        for w in [2, 1, 0] {
            assert_eq!(s.weight_step(a), Some(w));
            s.apply_weight_step(a, w);
        }
        assert!(
            !s.weight_step_valid(b, 0),
            "every voter at 0 would have no quorum"
        );
        assert_eq!(s.weight_step(b), None);
    }

    #[test]
    fn a_learner_weighs_nothing_and_enters_as_a_voter_with_at_most_one() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED)]);
        let short = node(2).short_id();
        s.add_learner(
            short,
            MemberAdd {
                info: info(2, "b"),
                epoch: 0,
                weight: 3,
            },
        );
        assert_eq!(s.member(node(2)).unwrap().weight, 0);
        assert_eq!(s.weight_step(short), None, "learners take no weight steps");
        s.promote(short);
        assert_eq!(s.member(node(2)).unwrap().weight, 1);
        assert_eq!(s.weight_step(short), Some(2));
    }

    #[test]
    fn a_weight_announcement_is_recorded_as_wanted() {
        let mut s = state_with(&[(1, "a", STATE_SYNCED), (2, "b", STATE_SYNCED)]);
        let applied = s.apply(
            2,
            Some(Command::Control {
                origin: node(2),
                epoch: 0,
                seq: 1,
                control: ControlEntry::Weight { weight: 2 },
            }),
        );
        assert!(matches!(
            applied,
            Applied::Control {
                event: ControlEvent::WeightWanted { weight: 2, .. },
                ..
            }
        ));
        let m = s.member(node(2)).unwrap();
        assert_eq!((m.weight, m.wanted_weight), (1, 2));
    }
}
