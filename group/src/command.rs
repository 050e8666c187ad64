//! What the replicated log carries: the payload of each raft entry this crate proposes.
//!
//! Entries are decoded when they are applied. A committed entry that fails to decode is the
//! same bytes on every node, so every node skips it the same way: determinism survives even a
//! buggy or hostile proposer.

use crate::msg::{decode_archive, ControlEntry, MemberInfo};
use rkyv::rancor;
use trireme_types::{NodeId, Seqno, ViewId};

/// A normal raft entry's payload.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) enum Command {
    /// A writeset (opaque bytes) from `origin`, numbered `(epoch, seq)` by its origin.
    Writeset {
        origin: NodeId,
        epoch: u64,
        seq: u64,
        payload: Vec<u8>,
    },
    /// Part `part` (from 0) of `parts` of a large writeset from `origin`; each part is a
    /// proposal of its own, numbered like writesets, and the parts of one writeset have
    /// consecutive numbers. The writeset is delivered, and gets its seqno, with its last part.
    WritesetPart {
        origin: NodeId,
        epoch: u64,
        seq: u64,
        part: u32,
        parts: u32,
        bytes: Vec<u8>,
    },
    /// An ordered control message from `origin`, numbered like writesets.
    Control {
        origin: NodeId,
        epoch: u64,
        seq: u64,
        control: ControlEntry,
    },
    /// Install a new primary view listing the current raft voters. Applied only if the last
    /// view is still `after` (so two leaders' identical requests deliver one view).
    View { after: ViewId },
    /// Every node may purge certification state below `seqno` from here on.
    CommitCut { seqno: Seqno },
}

/// The `context` of a raft configuration change that adds a voter.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct MemberAdd {
    pub info: MemberInfo,
    pub epoch: u64,
    /// The weight it wants once a voter (`pc.weight`).
    pub weight: u8,
}

/// The `context` of a raft configuration change that moves a voter's weight by one
/// (`AddNode` of a voter, which raft itself treats as a no-op): riding on raft's
/// configuration changes, a weight step is never concurrent with another one or with a
/// membership change, and no node campaigns while one is committed but not applied.
#[derive(Clone, Debug, PartialEq, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
pub(crate) struct WeightStep {
    pub weight: u8,
}

/// Entries are bounded by the message limit anyway; this only stops absurd allocations.
const MAX_COMMAND_BYTES: usize = crate::msg::MAX_MSG_BYTES;

/// The rkyv wire form of what raft entries (and configuration-change contexts) carry;
/// decoding validates (a committed entry that fails is skipped the same way everywhere).
macro_rules! entry_codec {
    ($ty:ty, $what:literal) => {
        impl $ty {
            pub(crate) fn encode(&self) -> Vec<u8> {
                rkyv::to_bytes::<rancor::Error>(self)
                    .expect(concat!("serialising ", $what, " into memory cannot fail"))
                    .to_vec()
            }

            pub(crate) fn decode(bytes: &[u8]) -> Option<$ty> {
                decode_archive::<$ty>(bytes, MAX_COMMAND_BYTES).ok()
            }
        }
    };
}

entry_codec!(Command, "a command");
entry_codec!(MemberAdd, "a member");
entry_codec!(WeightStep, "a weight step");
