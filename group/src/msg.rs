//! The wire type between group cores: [`Msg`], one payload struct per variant.
//!
//! Every frame from the network is untrusted. [`Msg::decode`] bounds the size and validates
//! the rkyv archive (bytecheck) before anything reads it; raft's own protobuf message travels
//! inside [`RaftEnvelope`] as bytes and is parsed (and checked against the sender) in
//! `Group::step`. A malformed frame is an error for the caller to log and drop, never a panic.

use rkyv::rancor;
use trireme_types::{HistoryId, NodeId, Seqno};

/// The largest encoded group message accepted: one writeset of the largest size accepted
/// (`MAX_WRITESET_BYTES`) plus room for its envelope and a batch of small entries (raft
/// appends and forwarded proposals are batched below `max_append_bytes` beyond one entry).
pub const MAX_MSG_BYTES: usize = trireme_types::MAX_WRITESET_BYTES + (16 << 20);

/// Version of this wire format, carried in [`Hello`]; peers of another version are refused.
/// 2: large writesets are ordered in parts (`Command::WritesetPart`), which a version-1 node
/// would skip, numbering seqnos differently.
pub const PROTOCOL_VERSION: u32 = 3;

/// One message between two group cores.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Msg {
    /// First message on every connection, in both directions.
    Hello(Hello),
    /// The receiver refuses this peer (different cluster name or protocol); the transport
    /// closes the connection after sending it.
    Refuse(Refuse),
    /// A node asks to be (re)admitted to the primary component; relayed to the leader.
    Join(JoinRequest),
    /// A member asks the leader to remove it (graceful leave).
    Leave(LeaveRequest),
    /// A raft message, protobuf-encoded, with the lease and compaction stamp.
    Raft(RaftEnvelope),
    /// Proposals forwarded from their origin to the leader.
    Propose(ProposeBatch),
    /// The leader hands leadership to `successor` (graceful leave): voters may grant it a
    /// forced vote.
    Abdicate(Abdicate),
    /// A member's local apply progress, for the commit cut.
    Progress(ProgressReport),
}

/// Handshake. A different `cluster_name` is refused.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Hello {
    pub protocol: u32,
    pub cluster_name: String,
    pub node: NodeId,
    /// `wsrep_node_name`.
    pub name: String,
    /// The client address shown in `wsrep_incoming_addresses`.
    pub incoming: String,
    /// The replication address peers connect to.
    pub address: String,
    /// The history this node's data belongs to, and its position in it.
    pub history: HistoryId,
    pub position: Seqno,
    /// Where the sender stands when it says hello (`pc.recovery` decides from this who may
    /// re-form a lost primary component: never against a node that is primary).
    pub standing: Standing,
}

/// A node's place in the group, as its hello tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum Standing {
    /// Not (yet) admitted to a group: a new or restarted node.
    Joining,
    /// A member of a group that has no primary component (lost quorum).
    NonPrimary,
    Primary,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Refuse {
    pub reason: String,
    /// The refused node was evicted (`evs.auto_evict`): it must not ask again; only a
    /// restart, under a new node id, brings it back.
    pub evicted: bool,
}

/// How a node appears in views; replicated in the raft configuration change that adds it.
#[derive(Clone, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct MemberInfo {
    pub id: NodeId,
    pub name: String,
    pub incoming: String,
    pub address: String,
}

impl MemberInfo {
    pub fn to_member(&self) -> trireme_types::Member {
        trireme_types::Member {
            id: self.id,
            name: self.name.clone(),
            incoming: self.incoming.clone(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct JoinRequest {
    pub member: MemberInfo,
    /// The joiner's proposal epoch: older epochs of this origin are never delivered after
    /// its admission (see `state::Admission`).
    pub epoch: u64,
    /// Its `pc.weight`.
    pub weight: u8,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct LeaveRequest {
    pub node: NodeId,
}

/// Identifies one raft group. A forced bootstrap (`pc.bootstrap`) starts a new generation so
/// that messages of the abandoned group can never mix with the new one.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
pub struct Generation {
    pub number: u64,
    pub origin: NodeId,
}

/// Lease and compaction data riding on every raft message (see `lease.rs`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
pub struct LeaseStamp {
    /// The sender's raft term when the message was created.
    pub term: u64,
    /// The sender's local tick when the message was created (leader: probe send tick).
    pub sent_tick: u64,
    /// Leader -> follower: the follower's own tick of its latest ack the leader has seen.
    /// Follower -> leader: the leader's `sent_tick` of the latest message it accepted.
    pub echo_tick: u64,
    /// Leader -> follower: ticks left on the leader's quorum lease when sent (0: none).
    pub lease_remaining: u64,
    /// Leader -> follower: raft index every voter has (followers compact up to it).
    pub compact_to: u64,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct RaftEnvelope {
    pub generation: Generation,
    pub stamp: LeaseStamp,
    /// `raft::eraftpb::Message`, protobuf-encoded.
    pub message: Vec<u8>,
}

/// A proposal as its origin forwards it; the leader adds the origin from the connection.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ForwardedProposal {
    pub epoch: u64,
    pub seq: u64,
    pub body: ProposalBody,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum ProposalBody {
    Writeset(Vec<u8>),
    Control(ControlEntry),
    /// Part `part` of `parts` of a writeset too large for one entry (`max_part_bytes`).
    WritesetPart {
        part: u32,
        parts: u32,
        bytes: Vec<u8>,
    },
}

impl ProposalBody {
    /// Payload bytes carried (what batching bounds).
    pub fn payload_len(&self) -> usize {
        match self {
            ProposalBody::Writeset(b) | ProposalBody::WritesetPart { bytes: b, .. } => b.len(),
            ProposalBody::Control(_) => 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ProposeBatch {
    pub generation: Generation,
    pub proposals: Vec<ForwardedProposal>,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Abdicate {
    pub generation: Generation,
    pub term: u64,
    pub successor: NodeId,
}

#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct ProgressReport {
    pub committed: Seqno,
}

/// A position in a history (a `Gtid` that can travel on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub struct Position {
    pub history: HistoryId,
    pub seqno: Seqno,
}

impl Position {
    pub const UNDEFINED: Position = Position {
        history: HistoryId::NIL,
        seqno: Seqno::UNDEFINED,
    };
}

impl From<trireme_types::Gtid> for Position {
    fn from(g: trireme_types::Gtid) -> Position {
        Position {
            history: g.history,
            seqno: g.seqno,
        }
    }
}

impl From<Position> for trireme_types::Gtid {
    fn from(p: Position) -> trireme_types::Gtid {
        trireme_types::Gtid {
            history: p.history,
            seqno: p.seqno,
        }
    }
}

/// Control messages ordered like writesets (`Group::propose_control`) but taking no seqno.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub enum ControlEntry {
    /// The proposer (a joiner) asks for state transfer. `donor_names` is `wsrep_sst_donor`
    /// split on commas, keeping a trailing empty name for a trailing comma.
    StateRequest {
        donor_names: Vec<String>,
        request: Vec<u8>,
        ist_from: Position,
    },
    /// The proposer has caught up (Galera's JOINED -> SYNCED).
    Synced,
    /// The proposer leaves the synced state (donor, `wsrep_desync`).
    Desynced,
    /// Flow control (Galera's FC_STOP / FC_CONT): the proposer's receive queue went over its
    /// limit (`stop`) or back under it; every node pauses its own replication while any
    /// member of the view has a stop in force.
    FlowControl { stop: bool },
    /// The proposer (a donor) could not give `joiner` its state: MariaDB's SST script failed
    /// with `code` (a negative errno). The joiner stops waiting for a transfer that will
    /// never come (Galera's "Will never receive state. Need to abort.").
    TransferFailed { joiner: NodeId, code: i32 },
    /// The proposer's GCache holds every writeset from `from` on (`Seqno::UNDEFINED`:
    /// nothing). Recorded per member so that the donor choice can prefer one that can serve
    /// a joiner by IST. A hint: the cache may have moved on since, and the donor then falls
    /// back to SST by itself.
    Cached { from: Seqno },
    /// `evs.evict=<uuid>`: the operator evicts `node` (removed if a member, refused when it
    /// asks back in, until a restart gives it a new id).
    Evict { node: NodeId },
    /// `evs.evict=` (empty): the evict list is cleared, and so are the removal counts of
    /// `evs.auto_evict`.
    ClearEvictions,
    /// The proposer's result for the writeset at `seqno` (Galera 4's inconsistency vote):
    /// `code` 0 if it applied, else a digest of the error. A node that fails to apply a
    /// writeset votes first; every member then votes its own result once it has applied it.
    Vote { seqno: Seqno, code: u64 },
    /// The proposer wants `weight` in quorums (`pc.weight` set at run time).
    Weight { weight: u8 },
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MsgDecodeError {
    #[error("group message of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("group message failed validation: {detail}")]
    Invalid { detail: String },
}

impl Msg {
    /// The wire form (one rkyv archive).
    pub fn encode(&self) -> rkyv::util::AlignedVec {
        rkyv::to_bytes::<rancor::Error>(self)
            .expect("serialising a message into memory cannot fail")
    }

    /// Validates and decodes a frame received from the network.
    pub fn decode(bytes: &[u8]) -> Result<Msg, MsgDecodeError> {
        decode_archive::<Msg>(bytes, MAX_MSG_BYTES)
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Hello(_) => "hello",
            Msg::Refuse(_) => "refuse",
            Msg::Join(_) => "join",
            Msg::Leave(_) => "leave",
            Msg::Raft(_) => "raft",
            Msg::Propose(_) => "propose",
            Msg::Abdicate(_) => "abdicate",
            Msg::Progress(_) => "progress",
        }
    }
}

/// Validated decoding of one rkyv archive of `T` (copied into an aligned buffer first).
pub(crate) fn decode_archive<T>(bytes: &[u8], limit: usize) -> Result<T, MsgDecodeError>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rancor::Error>>,
{
    if bytes.len() > limit {
        return Err(MsgDecodeError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rancor::Error>(&aligned).map_err(|e| MsgDecodeError::Invalid {
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_types::Uuid;

    fn hello() -> Msg {
        Msg::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            cluster_name: "expcluster".into(),
            node: NodeId(Uuid([3; 16])),
            name: "node1".into(),
            incoming: "127.0.0.1:3306".into(),
            address: "127.0.0.1:4567".into(),
            history: HistoryId(Uuid([9; 16])),
            position: Seqno(41),
            standing: Standing::Joining,
        })
    }

    #[test]
    fn messages_round_trip_through_the_validated_wire_form() {
        let msgs = vec![
            hello(),
            Msg::Refuse(Refuse {
                reason: "cluster name".into(),
                evicted: false,
            }),
            Msg::Propose(ProposeBatch {
                generation: Generation {
                    number: 1,
                    origin: NodeId(Uuid([1; 16])),
                },
                proposals: vec![ForwardedProposal {
                    epoch: 2,
                    seq: 3,
                    body: ProposalBody::Control(ControlEntry::StateRequest {
                        donor_names: vec!["a".into(), "".into()],
                        request: b"rsync\0addr\0".to_vec(),
                        ist_from: Position::UNDEFINED,
                    }),
                }],
            }),
        ];
        for m in msgs {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn truncated_corrupt_and_oversized_frames_are_refused() {
        let bytes = hello().encode();
        assert!(Msg::decode(&bytes[..bytes.len() - 5]).is_err());
        assert!(Msg::decode(&[]).is_err());
        // The root (the enum, tag first) sits at the end of the archive: an unknown tag.
        let mut corrupt = bytes.to_vec();
        let root = corrupt.len() - std::mem::size_of::<ArchivedMsg>();
        corrupt[root] = 200;
        assert!(Msg::decode(&corrupt).is_err());
        let huge = vec![0u8; MAX_MSG_BYTES + 1];
        assert!(matches!(
            Msg::decode(&huge),
            Err(MsgDecodeError::TooLarge { .. })
        ));
    }
}
