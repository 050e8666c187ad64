//! What the runtime offers its owner (the replicator) and what it delivers back.
//!
//! The owner talks to the shards only through [`crate::Runtime`]'s methods, which put a
//! command on shard 0's bounded inbox and wake it. The shards answer through the owner's
//! [`Sink`], called on a shard thread, in total order. A sink must be quick (push and
//! notify): it runs on the hot path of every writeset.

use std::sync::Arc;
use trireme_types::{Gtid, HistoryId, NodeId, Seqno, View, Writeset};

/// Identifies a local proposal so that its ordering can be matched to the waiting client.
/// The replicator uses its transaction registry key.
pub type Token = u64;

/// The certification outcome of an ordered writeset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass { depends_on: Seqno },
    Conflict { with_seqno: Seqno },
}

impl Verdict {
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass { .. })
    }
}

/// Events delivered to the owner in total order (one shard thread calls the sink).
#[derive(Debug)]
pub enum Delivered {
    /// A member's flow-control message, in total order: `stop` while its receive queue is
    /// over the limit, `!stop` once it is back under.
    FlowControl { node: NodeId, stop: bool },
    /// A member's result for the writeset at `seqno`, in total order (an inconsistency vote:
    /// `code` 0 if it applied, else a digest of its error).
    Vote {
        node: NodeId,
        seqno: Seqno,
        code: u64,
    },
    /// A writeset took `seqno`. `local` is set when this node proposed it and the proposal is
    /// still awaited; otherwise it must be applied like a remote one.
    Writeset {
        seqno: Seqno,
        ws: Arc<Writeset>,
        verdict: Verdict,
        local: Option<Token>,
    },
    /// A configuration change (primary views carry their seqno) or a non-primary view.
    View(View),
    /// The node joined a running group; everything after `start` will be delivered. The owner
    /// arranges state transfer up to `start` if its own position is behind.
    Joined { view: View, start: Gtid },
    /// A local proposal will never be ordered (the node left the primary component, or the
    /// proposal was refused).
    ProposalFailed { token: Token, reason: String },
    /// A causal read point: everything up to `seqno` must be committed locally before a
    /// causal read may proceed.
    ReadPoint { token: Token, seqno: Seqno },
    /// A causal read point could not be had (this node left the primary component).
    ReadPointFailed { token: Token },
    /// Donor duty: `joiner` asked for state; this node was chosen (ordered in total order).
    /// `position` is the point of the order the state must reflect; `bypass` means IST (the
    /// provider streams the missing writesets, the SST script only hands the position over).
    DonateState {
        joiner: NodeId,
        request: Vec<u8>,
        ist_from: Gtid,
        position: Gtid,
        bypass: bool,
    },
    /// A joiner's state transfer is complete at `position`; deliveries continue after it.
    /// `view` is the configuration in force at `position`.
    StateReady { position: Gtid, view: Option<View> },
    /// A joiner has been handed everything up to where the live stream continues (after the
    /// IST writesets and the events held during the transfer): it is caught up once it has
    /// applied what was delivered before this.
    CaughtUp,
    /// A joiner's state transfer cannot complete.
    StateFailed { reason: String },
    /// The final view after `disconnect`: not primary, nobody in it.
    Disconnected { history: HistoryId, seqno: Seqno },
}

/// The owner's end of the delivery channel.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, event: Delivered);

    /// The owner's committed watermark, reported to the group for the commit cut.
    fn committed(&self) -> Seqno;
}

/// How to enter the group.
#[derive(Clone, Debug)]
pub enum ConnectMode {
    /// Start a new primary component from this node's position.
    Bootstrap { position: Gtid },
    /// Join the group reachable at these addresses, from this node's position.
    Join {
        peers: Vec<String>,
        position: Gtid,
        donor_names: Vec<String>,
    },
}

#[derive(Clone, Debug)]
pub struct ConnectRequest {
    pub cluster_name: String,
    pub node: NodeId,
    pub node_name: String,
    pub incoming: String,
    pub mode: ConnectMode,
}
