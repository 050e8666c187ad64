//! Provided buffers for multishot recv: one allocation cut into `count` buffers of `buf_len`
//! bytes, lent to the kernel as buffer group [`BUF_GROUP`] (IORING_OP_PROVIDE_BUFFERS).
//!
//! Invariants: a buffer is either the kernel's (provided, not yet returned in a recv
//! completion) or ours (returned; read once, then provided again at the next submission).
//! We create a Rust slice only over a buffer the kernel has returned, so no reference ever
//! covers memory the kernel may be writing. The allocation is freed only by `Drop`, which the
//! transport runs after every operation has completed (or never: it leaks the pool when the
//! kernel did not confirm cancellation in time).
//!
//! Why not a registered buf_ring: its ring memory is pinned and charged to the per-user
//! locked-memory budget that InnoDB and the other nodes share; provided buffers are ordinary
//! memory. The cost is one ProvideBuffers SQE per returned buffer, batched in one submit.

use std::ptr::NonNull;

/// The buffer group id of the pool.
pub(crate) const BUF_GROUP: u16 = 7;

pub(crate) struct BufPool {
    base: NonNull<u8>,
    buf_len: usize,
    count: u16,
}

impl BufPool {
    pub fn new(count: u16, buf_len: usize) -> BufPool {
        let mem: Box<[u8]> = vec![0u8; usize::from(count) * buf_len].into_boxed_slice();
        let base = NonNull::new(Box::into_raw(mem).cast::<u8>()).unwrap_or(NonNull::dangling());
        BufPool {
            base,
            buf_len,
            count,
        }
    }

    pub fn count(&self) -> u16 {
        self.count
    }

    pub fn buf_len(&self) -> usize {
        self.buf_len
    }

    /// Start of buffer `bid`, for ProvideBuffers.
    pub fn addr(&self, bid: u16) -> *mut u8 {
        self.base
            .as_ptr()
            .wrapping_add(usize::from(bid.min(self.count)) * self.buf_len)
    }

    /// The first `len` bytes of buffer `bid`, which the kernel has just returned in a recv
    /// completion. None for an id or length the kernel cannot have produced.
    pub fn returned(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count || len > self.buf_len {
            return None;
        }
        // SAFETY: `bid < count` and `len <= buf_len`, so the range lies inside the allocation
        // made in `new`, which lives until `Drop`. The kernel handed this buffer back in a
        // completion and gets it again only through a ProvideBuffers SQE pushed after the
        // returned slice is dropped (the borrow of `self` ends before `&mut` use), so nothing
        // writes these bytes while the slice exists. The bytes were initialised (zeroed) in
        // `new` and since written by the kernel.
        Some(unsafe { std::slice::from_raw_parts(self.addr(bid), len) })
    }
}

impl Drop for BufPool {
    fn drop(&mut self) {
        let len = usize::from(self.count) * self.buf_len;
        // SAFETY: `base` and `len` are exactly the boxed slice leaked in `new`; it is freed
        // once, here. The transport drops the pool only when no recv can still write into it
        // (it leaks the pool with `mem::forget` otherwise).
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.base.as_ptr(), len)) });
    }
}
