//! The operation slab: owner of every in-flight io_uring operation and of the memory the
//! kernel reads or writes for it.
//!
//! Invariants:
//! - an entry is inserted before its SQE is pushed and removed only when its LAST completion
//!   has been reaped (for SendZc: the notification), so every pointer given to the kernel
//!   (a send chunk's heap buffer, a boxed sockaddr or timespec) stays valid for the whole
//!   operation. Entries own heap allocations, so moving an entry (the slab's Vec growing)
//!   never moves the memory the kernel holds a pointer to;
//! - `user_data` = generation << 32 | index, generation 31 bits: a stale key never matches a
//!   reused slot, and the top bit is free for untracked operations (see `PROVIDE_TAG`).

use crate::link::Chunk;
use crate::sys::SockAddr;
use crate::ConnId;
use std::net::SocketAddr;

/// user_data of ProvideBuffers SQEs (top bit set, buffer id in the low 16 bits). They are
/// submitted with CQE_SKIP_SUCCESS and own no memory (the buffer pool does), so they are not
/// in the slab; only a failure posts a completion.
pub(crate) const PROVIDE_TAG: u64 = 1 << 63;

pub(crate) enum Op {
    /// Multishot accept on the listener.
    Accept,
    /// Multishot poll on the owner's wake eventfd.
    Wake { fd: i32 },
    /// Connect; the kernel reads `addr` until the completion.
    Connect {
        conn: ConnId,
        peer: SocketAddr,
        #[allow(dead_code, reason = "owned for the kernel, never read by us")]
        addr: Box<SockAddr>,
    },
    /// The timeout linked to a connect; the kernel reads `timespec`.
    ConnectTimeout {
        #[allow(dead_code, reason = "owned for the kernel, never read by us")]
        timespec: Box<io_uring::types::Timespec>,
    },
    /// Multishot recv into provided buffers (owned by the buffer pool).
    Recv { conn: ConnId },
    /// Send or SendZc of `chunk.bytes[offset..]`; the kernel reads the chunk until the
    /// completion, or for SendZc until the notification.
    Send {
        conn: ConnId,
        chunk: Chunk,
        offset: usize,
        zero_copy: bool,
        /// SendZc: the send completed, only the notification is awaited.
        awaiting_notif: bool,
    },
    /// AsyncCancel; owns nothing.
    Cancel,
}

struct Slot {
    generation: u32,
    op: Option<Op>,
}

pub(crate) struct OpSlab {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl OpSlab {
    pub fn new() -> OpSlab {
        OpSlab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    pub fn live(&self) -> usize {
        self.live
    }

    /// Stores `op`; returns its user_data.
    pub fn insert(&mut self, op: Op) -> u64 {
        self.live += 1;
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    op: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = (slot.generation + 1) & 0x7fff_ffff;
        slot.op = Some(op);
        (u64::from(slot.generation) << 32) | u64::from(index)
    }

    fn slot(&self, key: u64) -> Option<usize> {
        let index = (key & 0xffff_ffff) as usize;
        let generation = (key >> 32) as u32;
        match self.slots.get(index) {
            Some(s) if s.generation == generation && s.op.is_some() => Some(index),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: u64) -> Option<&mut Op> {
        let i = self.slot(key)?;
        self.slots[i].op.as_mut()
    }

    /// Removes an operation after its last completion.
    pub fn remove(&mut self, key: u64) -> Option<Op> {
        let i = self.slot(key)?;
        self.live -= 1;
        self.free.push(i as u32);
        self.slots[i].op.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_key_never_reaches_a_reused_slot() {
        let mut slab = OpSlab::new();
        let a = slab.insert(Op::Cancel);
        assert!(slab.remove(a).is_some());
        let b = slab.insert(Op::Accept);
        assert_ne!(a, b);
        assert!(slab.get_mut(a).is_none() && slab.remove(a).is_none());
        assert!(matches!(slab.get_mut(b), Some(Op::Accept)));
        assert_eq!(b & PROVIDE_TAG, 0);
        assert_eq!(slab.live(), 1);
    }
}
