//! What the group core hands back: events in total order, status, errors.

use crate::msg::{Msg, Position};
pub use crate::state::ControlEvent;
use crate::state::ViewRecord;
use trireme_types::{HistoryId, Member, NodeId, Seqno, View, ViewId, ViewStatus};

/// A local handle for one proposal, unique within one `Group`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProposalId(pub u64);

/// A configuration as the group delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub history: HistoryId,
    /// The position the view takes in the total order; `UNDEFINED` for non-primary views.
    pub seqno: Seqno,
    /// Increases with every primary view; `ViewId::NONE` for non-primary views.
    pub view_id: ViewId,
    pub primary: bool,
    /// Sorted by node id.
    pub members: Vec<Member>,
    /// This node's index in `members`, if it is one.
    pub my_index: Option<usize>,
}

impl GroupView {
    pub(crate) fn primary_from(record: &ViewRecord, history: HistoryId, me: NodeId) -> GroupView {
        let members: Vec<Member> = record.members.iter().map(|m| m.to_member()).collect();
        let my_index = members.iter().position(|m| m.id == me);
        GroupView {
            history,
            seqno: record.seqno,
            view_id: record.view_id,
            primary: true,
            members,
            my_index,
        }
    }

    /// The `wsrep_view_info_t`-shaped view (protocol version 4, as MariaDB expects).
    pub fn to_view(&self) -> View {
        View {
            history: self.history,
            seqno: self.seqno,
            view_id: self.view_id,
            status: if self.primary {
                ViewStatus::Primary
            } else {
                ViewStatus::NonPrimary
            },
            members: self.members.clone(),
            my_index: self.my_index,
            proto_ver: 4,
        }
    }
}

/// Why a proposal will not be reported as ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposalFailReason {
    /// This node left the primary component with the proposal unconfirmed. Its fate is
    /// unknown here: the primary may still order it. If it does, every node (this one
    /// included, once it catches up) delivers it with `local: None`, to be applied like a
    /// remote writeset.
    NonPrimary,
    /// This node was removed from the configuration. Anything of it still unordered can never
    /// be delivered: entries of non-members are skipped, and a readmitted node starts a new
    /// proposal epoch.
    Removed,
    /// This node left the group (`leave()`); as for `Removed`, it can never be ordered.
    Left,
}

/// One output of the group core, in total order where it says so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A configuration change. Primary views are totally ordered and take a seqno; a
    /// non-primary view is local (this node lost the primary component) and takes none.
    View(GroupView),
    /// This node's state now starts at `start_seqno` (it received a raft snapshot: it is a new
    /// joiner, or it fell too far behind). Everything after `start_seqno` will be delivered;
    /// the replicator must reach `start_seqno` by IST or SST (a `StateRequest` control) and
    /// buffer later events meanwhile. `view` is the last primary view at that point.
    Joined {
        view: Option<GroupView>,
        start_seqno: Seqno,
    },
    /// A writeset at its place in the total order. `local` is set on the origin for its own
    /// live proposal; `None` means apply it like a remote writeset.
    Ordered {
        seqno: Seqno,
        origin: NodeId,
        local: Option<ProposalId>,
        payload: Vec<u8>,
    },
    /// Every node purges certification state below this seqno at this point of the order.
    CommitCut(Seqno),
    /// An ordered control message (no seqno of its own; `after` is the last seqno before it).
    Control {
        origin: NodeId,
        local: Option<ProposalId>,
        after: Seqno,
        event: ControlEvent,
    },
    /// A causal read point: wait until `seqno` is applied locally (`wsrep_sync_wait`).
    ReadIndexReady { ctx: u64, seqno: Seqno },
    /// A read point could not be obtained (this node left the primary component).
    ReadIndexFailed { ctx: u64 },
    ProposalFailed {
        id: ProposalId,
        reason: ProposalFailReason,
    },
    /// A peer refused us (different cluster name or protocol).
    Refused { peer: NodeId, reason: String },
    /// This node is out of the group after `leave()`: deliver the final (disconnected) view.
    Left,
    /// The core stopped on an internal error (raft refused its state); nothing more will be
    /// delivered. Deliver the disconnected view and restart the provider (a new member).
    Failed { reason: String },
}

/// The node's raft role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// What the caller needs to surface (status variables, 1047 refusals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub node: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// In a primary component whose leader holds a quorum lease, right now.
    pub primary: bool,
    /// The local tick before which the current lease holds (`primary` implies `Some`).
    pub lease_until: Option<u64>,
    /// This node's local tick count.
    pub tick: u64,
    /// The last view delivered (primary or not).
    pub view: Option<GroupView>,
    /// The raft configuration's members (node ids), sorted.
    pub members: Vec<NodeId>,
    pub last_seqno: Seqno,
    pub history: HistoryId,
    pub position: Position,
}

/// A node's claim to be in the primary component, as of its local tick `now_tick`: valid
/// until `until_tick` under the lease of `leader` in raft term `term`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseClaim {
    pub term: u64,
    pub leader: NodeId,
    pub until_tick: u64,
    pub now_tick: u64,
}

/// Everything produced since the last `take_ready`.
#[derive(Debug, Default)]
pub struct Ready {
    /// Messages to send, in order per destination.
    pub messages: Vec<(NodeId, Msg)>,
    /// Events in delivery order.
    pub events: Vec<Event>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.events.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not in a primary component")]
    NotPrimary,
    #[error("this node is leaving the group")]
    Leaving,
    #[error("this node has not joined the group yet")]
    NotJoined,
    #[error("{pending} proposals are already waiting to be ordered")]
    Backlog { pending: usize },
    #[error("proposal of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("malformed raft message from {from}: {detail}")]
    MalformedRaft { from: NodeId, detail: String },
    #[error("raft message from {from} claims to be from raft id {claimed}")]
    WrongSender { from: NodeId, claimed: u64 },
    #[error("refused {from}: {reason}")]
    Refused { from: NodeId, reason: String },
    #[error("message from {from} belongs to another group generation")]
    OtherGeneration { from: NodeId },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("invalid group configuration: {0}")]
    Config(String),
    #[error("raft refused to start: {0}")]
    Raft(String),
    #[error("force bootstrap is only allowed outside a primary component")]
    AlreadyPrimary,
}
