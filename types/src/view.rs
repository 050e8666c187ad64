//! Membership views as the server sees them (`wsrep_view_info_t`), and member states.

use crate::ids::{HistoryId, NodeId};
use crate::seqno::{Seqno, ViewId};

/// Whether a view is a primary component (can commit) or not.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ViewStatus {
    Primary,
    NonPrimary,
    /// The final view delivered on disconnect: no members, no index.
    Disconnected,
}

/// One member of a view. `name` and `incoming` are what MariaDB shows in
/// `wsrep_incoming_addresses` and stores in `mysql.wsrep_cluster_members`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    pub id: NodeId,
    pub name: String,
    pub incoming: String,
}

/// A configuration change as delivered to the server. `seqno` is the position the change
/// takes in the total order (Galera 4 orders configuration changes like writesets).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct View {
    pub history: HistoryId,
    pub seqno: Seqno,
    pub view_id: ViewId,
    pub status: ViewStatus,
    pub members: Vec<Member>,
    /// This node's index in `members`, if it is one of them.
    pub my_index: Option<usize>,
    /// Negotiated application protocol version (MariaDB expects 4).
    pub proto_ver: i32,
}

impl View {
    /// The view a node delivers when it leaves: not primary, nobody in it.
    pub fn disconnected(history: HistoryId, seqno: Seqno) -> View {
        View {
            history,
            seqno,
            view_id: ViewId::NONE,
            status: ViewStatus::Disconnected,
            members: Vec::new(),
            my_index: None,
            proto_ver: 4,
        }
    }

    pub fn is_primary(&self) -> bool {
        self.status == ViewStatus::Primary
    }
}

/// A node's state as Galera reports it in `wsrep_local_state` (numbers are the wsrep API's).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i32)]
pub enum MemberState {
    Initialized = 0,
    Joiner = 1,
    Donor = 2,
    Joined = 3,
    Synced = 4,
    Error = 5,
}

impl MemberState {
    /// The text Galera shows in `wsrep_local_state_comment`.
    pub fn comment(self) -> &'static str {
        match self {
            MemberState::Initialized => "Initialized",
            MemberState::Joiner => "Joining",
            MemberState::Donor => "Donor/Desynced",
            MemberState::Joined => "Joined",
            MemberState::Synced => "Synced",
            MemberState::Error => "Inconsistent",
        }
    }
}
