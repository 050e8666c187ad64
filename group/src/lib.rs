//! Trireme's ordering and membership core: Galera's semantics (views, primary component,
//! seqnos, state transfer requests, commit cut) on a tikv `raft` (raft-rs 0.7) core.
//!
//! Sans-IO: events in, actions out; no clock, no threads, no sockets. The runtime drives one
//! [`Group`] per node:
//!
//! ```no_run
//! use trireme_group::{Group, GroupConfig, Event};
//! use trireme_types::{HistoryId, NodeId, Seqno};
//!
//! let cfg = GroupConfig::new(NodeId::generate(), "node1", "my_cluster");
//! let mut g = Group::bootstrap(cfg, HistoryId::generate(), Seqno::UNDEFINED).unwrap();
//! let id = g.propose(b"writeset bytes".to_vec()).unwrap();
//! loop {
//!     // every tick_ms: g.tick(); on a frame: g.step_bytes(from, &frame)
//!     let ready = g.take_ready();
//!     for (to, msg) in ready.messages { /* send msg.encode() to `to` */ }
//!     for ev in ready.events {
//!         if let Event::Ordered { seqno, local: Some(p), .. } = ev { assert_eq!(p, id); let _ = seqno; return; }
//!     }
//! #   break;
//! }
//! ```
//!
//! See `README.md` in this crate for the protocol, and `tests/sim/` for the deterministic
//! simulator that checks it.

pub mod config;
pub mod event;
pub mod lease;
pub mod msg;
pub mod rng;

mod command;
mod group;
mod logger;
mod state;
mod storage;

pub use config::GroupConfig;
pub use event::{
    ControlEvent, Event, GroupError, GroupView, LeaseClaim, ProposalFailReason, ProposalId,
    ProposeError, Ready, Role, Status, StepError,
};
pub use group::Group;
pub use msg::{ControlEntry, Generation, MemberInfo, Msg, MsgDecodeError, Position, MAX_MSG_BYTES};
