//! The vocabulary every Trireme crate speaks.
//!
//! Types here carry meaning instead of bare integers: a [`Seqno`] is a position in the
//! cluster-wide total order, a [`NodeId`] names one incarnation of a node, a [`HistoryId`]
//! names a replication history (Galera's "cluster state UUID"), a [`ViewId`] numbers primary
//! configurations. [`Writeset`] is the unit of replication; its wire form is an rkyv archive
//! that is always validated before use (see [`writeset::decode`]).
//!
//! Nothing in this crate does I/O or keeps global state.

pub mod ids;
pub mod seqno;
pub mod view;
pub mod writeset;

pub use ids::{HistoryId, NodeId, ParseUuidError, Uuid};
pub use seqno::{ConnId, Gtid, Seqno, TrxId, ViewId};
pub use view::{Member, MemberState, View, ViewStatus};
pub use writeset::{
    key_hashes, DecodeError, KeyHash, KeyType, Writeset, WsFlags, WsKey, MAX_WRITESET_BYTES,
};

/// An inconsistency vote (Galera 4) that counts as cast but for no result: an arbitrator's,
/// which applies nothing. Success is 0; a failure votes a digest of its error.
pub const VOTE_ABSTAIN: u64 = u64::MAX;
