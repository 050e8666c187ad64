//! The io_uring transport (Linux, io-uring 0.7; see shared/reference/deps-vetting.md for why
//! not glommio).
//!
//! Owns: one ring, created on the owning thread with SINGLE_ISSUER + DEFER_TASKRUN +
//! TASKRUN_FLAG (no IPIs to a spinning owner; completions run only when the owner enters the
//! kernel), the [`OpSlab`] that owns every in-flight operation's memory, the provided-buffer
//! pool, the listener and every connection.
//!
//! Operations: multishot accept; connect linked to a LINK_TIMEOUT; multishot recv with
//! provided buffers (one SQE per connection, re-armed when the kernel ends it, e.g. ENOBUFS);
//! one send in flight per connection (stream order), Send or SendZc; a multishot poll on the
//! owner's wake eventfd; AsyncCancel on close.
//!
//! Zero-copy policy: SendZc only for chunks of at least `zero_copy_min_bytes`, only if the
//! kernel has it, and only on a socket that has not yet shown it does not pay: a notification
//! with IORING_NOTIF_USAGE_ZC_COPIED (always the case on loopback, where SendZc is 2x slower)
//! turns it off for that socket; a SendZc failing with ENOMEM (locked memory, charged per OS
//! user and shared with InnoDB) or EINVAL/EOPNOTSUPP is re-sent plain and turns it off for the
//! socket too.
//!
//! `poll`: arm (re-arm multishots, return buffers, start sends), submit and wait in ONE
//! io_uring_enter (for a zero timeout the syscall is skipped when there is nothing to submit
//! and no deferred task work), reap every completion, enter again only while the kernel still
//! has deferred task work. SQEs queued while reaping go out with the next `poll`.
//!
//! Every `unsafe` block pushes an SQE (or adopts an fd from a completion); its `// SAFETY:`
//! names the owner of the memory the kernel will use and why it outlives the operation.

mod buf_pool;
mod slab;

use crate::frame::{ClusterHash, Frame};
use crate::link::{Chunk, EnqueueError, Link, ReceiveError};
use crate::stream::Plaintext;
use crate::sys::{self, SockAddr};
use crate::{
    addr, CloseReason, ConnId, ConnectFailure, FrameKind, IoFailure, NetError, NetEvent, NetStats,
    Transport, TransportConfig, TransportKind, CLOSE_LINGER,
};
use buf_pool::{BufPool, BUF_GROUP};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use slab::{Op, OpSlab, PROVIDE_TAG};
use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Reap rounds per `poll` after the wait.
const ROUNDS_PER_POLL: usize = 4;
/// After an accept error (EMFILE...), wait this long before accepting again.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long `Drop` waits for the kernel to finish cancelled operations.
const DROP_DRAIN: Duration = Duration::from_secs(1);

// Kernel ABI values the io-uring crate does not export (include/uapi/linux/io_uring.h).
const IORING_SEND_ZC_REPORT_USAGE: u16 = 8;
const IORING_NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;

/// What to do with a send op after its completion.
enum Next {
    Finished,
    Resubmit,
    Requeue(Vec<u8>),
    Fail(i32),
}

/// Whether a ring with our flags and operations can be set up on this thread.
pub(crate) fn probe() -> Result<(), NetError> {
    let ring = build_ring(8)?;
    let (ok, missing) = check_opcodes(&ring);
    if !ok {
        return Err(NetError::IoUringUnavailable(format!(
            "kernel lacks {missing}"
        )));
    }
    Ok(())
}

fn build_ring(entries: u32) -> Result<IoUring, NetError> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_taskrun_flag()
        .setup_submit_all()
        .setup_cqsize(entries.saturating_mul(4))
        .build(entries)
        .map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::ENOMEM) => {
                    " (locked memory exhausted: raise LimitMEMLOCK or grant CAP_IPC_LOCK)"
                }
                Some(libc::EPERM) => {
                    " (io_uring disabled by policy: kernel.io_uring_disabled or seccomp)"
                }
                Some(libc::ENOSYS) => " (kernel without io_uring)",
                Some(libc::EINVAL) => " (kernel older than 6.1: no DEFER_TASKRUN)",
                _ => "",
            };
            NetError::IoUringUnavailable(format!("ring setup failed: {e}{why}"))
        })
}

/// (all required opcodes present, the first missing one's name). SendZc is optional.
fn check_opcodes(ring: &IoUring) -> (bool, &'static str) {
    let mut probe = Probe::new();
    if ring.submitter().register_probe(&mut probe).is_err() {
        return (false, "IORING_REGISTER_PROBE");
    }
    let required = [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::Connect::CODE, "CONNECT"),
        (opcode::LinkTimeout::CODE, "LINK_TIMEOUT"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::Send::CODE, "SEND"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::ProvideBuffers::CODE, "PROVIDE_BUFFERS"),
        (opcode::AsyncCancel2::CODE, "ASYNC_CANCEL"),
    ];
    for (code, name) in required {
        if !probe.is_supported(code) {
            return (false, name);
        }
    }
    (true, "")
}

enum State {
    Connecting {
        rest: Vec<SocketAddr>,
        op: u64,
    },
    Open,
    /// `close` was called: sending what is queued until `deadline`.
    Closing {
        deadline: Instant,
    },
}

struct Conn {
    sock: TcpStream,
    state: State,
    link: Link,
    /// The armed multishot recv, if any.
    recv_op: Option<u64>,
    /// The send whose (first) completion is awaited: one at a time keeps stream order.
    send_op: Option<u64>,
    /// SendZc still allowed on this socket.
    zero_copy: bool,
}

struct Listener {
    sock: TcpListener,
    op: Option<u64>,
    retry_at: Option<Instant>,
}

pub(crate) struct UringTransport {
    // Field order matters only for the fallback path of Drop (see there).
    ring: IoUring,
    ops: OpSlab,
    bufs: BufPool,
    conns: BTreeMap<ConnId, Conn>,
    listener: Option<Listener>,
    /// The wake fd the multishot poll is armed on, and its op.
    wake: Option<(RawFd, u64)>,
    /// Buffers returned by recv completions, to provide again at the next submission.
    to_provide: Vec<u16>,
    config: TransportConfig,
    cluster: ClusterHash,
    next_id: u64,
    stats: NetStats,
    pending: Vec<NetEvent>,
    frames: Vec<Frame>,
    cqes: Vec<(u64, i32, u32)>,
    ids: Vec<ConnId>,
    /// The wake fd fired during the current `poll`.
    woken: bool,
    zero_copy_supported: bool,
    /// The ring is SINGLE_ISSUER: it must stay on the thread that created it.
    _not_send: PhantomData<*const ()>,
}

impl UringTransport {
    pub fn new(config: TransportConfig) -> Result<UringTransport, NetError> {
        config.validate()?;
        let ring = build_ring(config.ring_entries)?;
        let (ok, missing) = check_opcodes(&ring);
        if !ok {
            return Err(NetError::IoUringUnavailable(format!(
                "kernel lacks {missing}"
            )));
        }
        let mut probe = Probe::new();
        let zero_copy_supported = ring.submitter().register_probe(&mut probe).is_ok()
            && probe.is_supported(opcode::SendZc::CODE);
        let mut t = UringTransport {
            ring,
            ops: OpSlab::new(),
            bufs: BufPool::new(config.recv_buffer_count, config.recv_buffer_bytes as usize),
            conns: BTreeMap::new(),
            listener: None,
            wake: None,
            to_provide: Vec::new(),
            cluster: ClusterHash::of(&config.cluster_name),
            config,
            next_id: 1,
            stats: NetStats::default(),
            pending: Vec::new(),
            frames: Vec::new(),
            cqes: Vec::new(),
            ids: Vec::new(),
            woken: false,
            zero_copy_supported,
            _not_send: PhantomData,
        };
        t.provide_initial_buffers()?;
        Ok(t)
    }

    /// Lends the whole pool to the kernel and waits for the answer, so a failure (ENOMEM)
    /// makes `open(Auto)` fall back instead of failing later.
    fn provide_initial_buffers(&mut self) -> Result<(), NetError> {
        let entry = opcode::ProvideBuffers::new(
            self.bufs.addr(0),
            self.bufs.buf_len() as i32,
            self.bufs.count(),
            BUF_GROUP,
            0,
        )
        .build()
        .user_data(PROVIDE_TAG);
        // SAFETY: the pool's allocation (`self.bufs`) holds `count` buffers of `buf_len`
        // bytes from `addr(0)`; it lives until the transport is dropped, and Drop waits for
        // (or leaks the pool instead of freeing it under) every recv that may write into it.
        unsafe { self.push(&entry) }?;
        let io = |source| NetError::Io {
            op: "io_uring_enter",
            source,
        };
        self.ring.submit_and_wait(1).map_err(io)?;
        let cqe = self.ring.completion().next();
        match cqe {
            Some(c) if c.result() >= 0 => Ok(()),
            Some(c) => Err(NetError::IoUringUnavailable(format!(
                "cannot provide receive buffers: {}",
                io::Error::from_raw_os_error(-c.result())
            ))),
            None => Err(NetError::IoUringUnavailable(
                "no completion for PROVIDE_BUFFERS".into(),
            )),
        }
    }

    /// Pushes one SQE, submitting first if the queue is full.
    ///
    /// # Safety
    /// Every pointer in `entry` must stay valid until the operation's last completion is
    /// reaped; callers keep the memory in the op slab or the buffer pool.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> Result<(), NetError> {
        // SAFETY: the caller guarantees the entry's memory outlives the operation.
        if unsafe { self.ring.submission().push(entry) }.is_ok() {
            return Ok(());
        }
        self.ring.submit().map_err(|source| NetError::Io {
            op: "io_uring_enter",
            source,
        })?;
        // SAFETY: as above.
        unsafe { self.ring.submission().push(entry) }.map_err(|_| NetError::Io {
            op: "io_uring submission queue",
            source: io::Error::from(io::ErrorKind::WouldBlock),
        })
    }

    fn new_link(&self) -> Link {
        Link::new(
            self.cluster,
            self.config.max_frame_bytes,
            self.config.send_queue_limit_bytes,
            Box::new(Plaintext),
        )
    }

    fn alloc_id(&mut self) -> ConnId {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Starts a connect to the first of `addrs` a socket can be made for; the rest are
    /// kept for retries. Returns the socket, the connect op and the remaining addresses.
    fn start_connect(
        &mut self,
        conn: ConnId,
        mut addrs: Vec<SocketAddr>,
    ) -> Result<(TcpStream, u64, Vec<SocketAddr>), IoFailure> {
        addrs.reverse();
        let mut last = IoFailure::from(&io::Error::from(io::ErrorKind::AddrNotAvailable));
        while let Some(peer) = addrs.pop() {
            let sock = match sys::tcp_socket(&peer, false) {
                Ok(s) => s,
                Err(e) => {
                    last = IoFailure::from(&e);
                    continue;
                }
            };
            let addr = Box::new(SockAddr::from(peer));
            let timespec = Box::new(types::Timespec::from(self.config.connect_timeout));
            let connect =
                opcode::Connect::new(types::Fd(sock.as_raw_fd()), addr.as_ptr(), addr.len())
                    .build()
                    .flags(squeue::Flags::IO_LINK);
            let timeout = opcode::LinkTimeout::new(&*timespec as *const types::Timespec).build();
            let op = self.ops.insert(Op::Connect { conn, peer, addr });
            let top = self.ops.insert(Op::ConnectTimeout { timespec });
            // Both SQEs must land in the same submission to stay linked.
            let free = {
                let sq = self.ring.submission();
                sq.capacity() - sq.len()
            };
            if free < 2 {
                let _ = self.ring.submit();
            }
            // SAFETY: the sockaddr behind `addr.as_ptr()` is the Box now owned by the slab
            // entry `op`, removed only when the connect's completion is reaped; the socket
            // outlives the SQE because the kernel takes its own file reference at submission.
            let pushed = unsafe { self.push(&connect.user_data(op)) };
            // SAFETY: the timespec is the Box owned by the slab entry `top`, removed only when
            // the timeout's own completion is reaped.
            let pushed = pushed.and_then(|()| unsafe { self.push(&timeout.user_data(top)) });
            if let Err(e) = pushed {
                log::warn!("cannot submit connect to {peer}: {e}");
                // Never submitted: nothing can complete for them.
                self.ops.remove(op);
                self.ops.remove(top);
                last = IoFailure::from(&io::Error::from(io::ErrorKind::WouldBlock));
                continue;
            }
            addrs.reverse();
            return Ok((sock, op, addrs));
        }
        Err(last)
    }

    fn attempt_failed(&mut self, id: ConnId, failure: ConnectFailure) {
        let rest = match self.conns.get_mut(&id) {
            Some(Conn {
                state: State::Connecting { rest, .. },
                ..
            }) => std::mem::take(rest),
            _ => return,
        };
        if !rest.is_empty() {
            if let Ok((sock, op, rest)) = self.start_connect(id, rest) {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.sock = sock;
                    conn.state = State::Connecting { rest, op };
                }
                return;
            }
        }
        self.conns.remove(&id);
        self.pending.push(NetEvent::ConnectFailed {
            conn: id,
            reason: failure,
        });
    }

    /// Tears a connection down: FIN to the peer now (shutdown wakes the armed recv, which
    /// then completes), cancel its recv and send, close our fd. Buffers of those operations
    /// stay in the slab until their completions. Reports `Closed` unless `close` was called.
    fn drop_conn(&mut self, id: ConnId, reason: Option<CloseReason>) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        let _ = conn.sock.shutdown(Shutdown::Both);
        for key in [conn.recv_op, conn.send_op].into_iter().flatten() {
            self.cancel(key);
        }
        if let Some(reason) = reason {
            if let CloseReason::BadFrame(e) = &reason {
                self.stats.bad_frames += 1;
                log::warn!(
                    "dropping {id} from {}: {e}",
                    conn.sock
                        .peer_addr()
                        .map_or_else(|_| "?".to_string(), |a| a.to_string())
                );
            }
            if !matches!(conn.state, State::Closing { .. }) {
                self.pending.push(NetEvent::Closed { conn: id, reason });
            }
        }
    }

    fn cancel(&mut self, key: u64) {
        let op = self.ops.insert(Op::Cancel);
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::user_data(key))
            .build()
            .user_data(op);
        // SAFETY: AsyncCancel carries no pointer; `op` only names the slab entry.
        if unsafe { self.push(&entry) }.is_err() {
            self.ops.remove(op);
        }
    }

    /// Re-arms multishots, returns buffers, starts sends, finishes closes.
    fn arm(&mut self, wake_fd: RawFd) -> Result<(), NetError> {
        // Wake fd: one multishot poll, moved if the owner passes another fd.
        match self.wake {
            Some((fd, _)) if fd == wake_fd => {}
            other => {
                if let Some((_, key)) = other {
                    self.cancel(key);
                }
                self.wake = None;
                if wake_fd >= 0 {
                    let op = self.ops.insert(Op::Wake { fd: wake_fd });
                    let entry = opcode::PollAdd::new(types::Fd(wake_fd), libc::POLLIN as u32)
                        .multi(true)
                        .build()
                        .user_data(op);
                    // SAFETY: a poll carries no pointer; the fd is the owner's, valid while it
                    // calls `poll` (and the kernel holds its own file reference).
                    if let Err(e) = unsafe { self.push(&entry) } {
                        self.ops.remove(op); // never submitted
                        return Err(e);
                    }
                    self.wake = Some((wake_fd, op));
                }
            }
        }
        // Listener: multishot accept, re-armed when it ends.
        let now = Instant::now();
        let accept = match &self.listener {
            Some(l) if l.op.is_none() && l.retry_at.is_none_or(|t| t <= now) => {
                Some(l.sock.as_raw_fd())
            }
            _ => None,
        };
        if let Some(fd) = accept {
            let op = self.ops.insert(Op::Accept);
            let entry = opcode::AcceptMulti::new(types::Fd(fd))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(op);
            // SAFETY: multishot accept carries no pointer (no sockaddr out-parameter).
            if let Err(e) = unsafe { self.push(&entry) } {
                self.ops.remove(op); // never submitted
                return Err(e);
            }
            if let Some(l) = &mut self.listener {
                l.op = Some(op);
                l.retry_at = None;
            }
        }
        // Buffers the kernel returned: lend them again.
        while let Some(bid) = self.to_provide.pop() {
            let entry = opcode::ProvideBuffers::new(
                self.bufs.addr(bid),
                self.bufs.buf_len() as i32,
                1,
                BUF_GROUP,
                bid,
            )
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(PROVIDE_TAG | u64::from(bid));
            // SAFETY: buffer `bid` is part of the pool allocation (`self.bufs`), which lives
            // until Drop, and Drop waits for every recv (or leaks the pool). We hold no slice
            // over it any more: the recv completion that returned it has been handled.
            if let Err(e) = unsafe { self.push(&entry) } {
                self.to_provide.push(bid); // retried at the next arm
                return Err(e);
            }
        }
        // Connections (ids copied into a reused buffer: arming may drop a connection).
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.extend(self.conns.keys().copied());
        let result = ids.iter().try_for_each(|&id| self.arm_conn(id, now));
        self.ids = ids;
        result
    }

    fn arm_conn(&mut self, id: ConnId, now: Instant) -> Result<(), NetError> {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        match conn.state {
            State::Connecting { .. } => return Ok(()),
            State::Closing { deadline } => {
                if (conn.send_op.is_none() && !conn.link.queue.has_chunks()) || deadline <= now {
                    self.drop_conn(id, None);
                    return Ok(());
                }
            }
            State::Open => {
                if conn.recv_op.is_none() {
                    let fd = conn.sock.as_raw_fd();
                    let op = self.ops.insert(Op::Recv { conn: id });
                    let entry = opcode::RecvMulti::new(types::Fd(fd), BUF_GROUP)
                        .build()
                        .user_data(op);
                    // SAFETY: the kernel writes only into buffers of the pool (buffer group
                    // BUF_GROUP), which lives until Drop and Drop waits for this operation.
                    if let Err(e) = unsafe { self.push(&entry) } {
                        self.ops.remove(op); // never submitted
                        return Err(e);
                    }
                    if let Some(conn) = self.conns.get_mut(&id) {
                        conn.recv_op = Some(op);
                    }
                }
            }
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return Ok(());
        };
        if conn.send_op.is_some() {
            return Ok(());
        }
        let Some(chunk) = conn.link.queue.take() else {
            return Ok(());
        };
        let big = chunk.bytes.len() >= self.config.zero_copy_min_bytes;
        let zero_copy = big && conn.zero_copy && self.zero_copy_supported;
        if big && !zero_copy {
            self.stats.zero_copy_fallbacks += 1;
        }
        let fd = conn.sock.as_raw_fd();
        let op = self.ops.insert(Op::Send {
            conn: id,
            chunk,
            offset: 0,
            zero_copy,
            awaiting_notif: false,
        });
        if let Err(e) = self.push_send(op, fd) {
            // Never submitted: the chunk goes back to the front, order intact.
            if let Some(Op::Send { chunk, .. }) = self.ops.remove(op) {
                self.requeue_front(id, chunk);
            }
            return Err(e);
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.send_op = Some(op);
        }
        Ok(())
    }

    /// Pushes the SQE for the send op `key` from its current offset.
    fn push_send(&mut self, key: u64, fd: RawFd) -> Result<(), NetError> {
        let Some(Op::Send {
            chunk,
            offset,
            zero_copy,
            ..
        }) = self.ops.get_mut(key)
        else {
            return Ok(());
        };
        let rest = &chunk.bytes[(*offset).min(chunk.bytes.len())..];
        let len = u32::try_from(rest.len()).unwrap_or(u32::MAX);
        let entry = if *zero_copy {
            opcode::SendZc::new(types::Fd(fd), rest.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .zc_flags(IORING_SEND_ZC_REPORT_USAGE)
                .build()
        } else {
            opcode::Send::new(types::Fd(fd), rest.as_ptr(), len)
                .flags(libc::MSG_NOSIGNAL)
                .build()
        }
        .user_data(key);
        // SAFETY: `rest` points into `chunk.bytes`, a Vec owned by the slab entry `key`; its
        // heap buffer does not move when the slab grows and is freed only when the entry is
        // removed, after the send's completion (and, for SendZc, its notification).
        unsafe { self.push(&entry) }
    }

    /// Submits and waits as `wait` says.
    fn enter(&mut self, wait: Option<Duration>) -> Result<(), NetError> {
        let result = match wait {
            Some(d) if d.is_zero() => {
                let sq_empty = self.ring.submission().is_empty();
                if sq_empty
                    && !self.ring.submission().taskrun()
                    && !self.ring.submission().cq_overflow()
                {
                    return Ok(());
                }
                self.ring.submit()
            }
            None => self.ring.submit_and_wait(1),
            Some(d) => {
                let ts = types::Timespec::from(d);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    Ok(())
                }
                _ => Err(NetError::Io {
                    op: "io_uring_enter",
                    source: e,
                }),
            },
        }
    }

    /// Moves every available completion to `self.cqes`; returns how many.
    fn reap(&mut self) -> usize {
        self.cqes.clear();
        self.cqes.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags())),
        );
        self.cqes.len()
    }

    fn dispatch(&mut self) {
        let cqes = std::mem::take(&mut self.cqes);
        for &(key, res, flags) in &cqes {
            self.complete(key, res, flags);
        }
        self.cqes = cqes;
    }

    fn complete(&mut self, key: u64, res: i32, flags: u32) {
        if key & PROVIDE_TAG != 0 {
            // Only failures post a completion (SKIP_SUCCESS): try again next time.
            let bid = (key & 0xffff) as u16;
            log::warn!(
                "returning receive buffer {bid} failed: {}",
                io::Error::from_raw_os_error(-res)
            );
            self.to_provide.push(bid);
            return;
        }
        let more = cqueue::more(flags);
        match self.ops.get_mut(key) {
            None => log::error!("completion for unknown io_uring op {key:#x} (res {res})"),
            Some(Op::Accept) => self.on_accept(key, res, more),
            Some(Op::Wake { fd }) => {
                let fd = *fd;
                if res >= 0 {
                    sys::drain_eventfd(fd);
                    self.woken = true;
                }
                if !more {
                    self.ops.remove(key);
                    if self.wake.is_some_and(|(_, k)| k == key) {
                        self.wake = None;
                    }
                }
            }
            Some(Op::Connect { .. }) => self.on_connect(key, res),
            Some(Op::ConnectTimeout { .. }) | Some(Op::Cancel) => {
                self.ops.remove(key);
            }
            Some(Op::Recv { conn }) => {
                let conn = *conn;
                self.on_recv(key, conn, res, flags, more);
            }
            Some(Op::Send { .. }) => self.on_send(key, res, flags, more),
        }
    }

    fn on_accept(&mut self, key: u64, res: i32, more: bool) {
        if !more {
            self.ops.remove(key);
            if let Some(l) = &mut self.listener {
                if l.op == Some(key) {
                    l.op = None;
                }
            }
        }
        if res < 0 {
            if res != -libc::ECANCELED {
                log::warn!("accept failed: {}", io::Error::from_raw_os_error(-res));
                if let Some(l) = &mut self.listener {
                    l.retry_at = Some(Instant::now() + ACCEPT_RETRY);
                }
            }
            return;
        }
        // SAFETY: a successful accept completion's result is a new descriptor that the
        // kernel installed for us and nothing else owns.
        let sock = TcpStream::from(unsafe { OwnedFd::from_raw_fd(res) });
        let peer = match sock.set_nodelay(true).and_then(|()| sock.peer_addr()) {
            Ok(peer) => peer,
            Err(e) => {
                log::warn!("dropping an accepted connection: {e}");
                return;
            }
        };
        if self.listener.is_none() {
            return; // accepted while tearing down
        }
        let id = self.alloc_id();
        let link = self.new_link();
        self.conns.insert(
            id,
            Conn {
                sock,
                state: State::Open,
                link,
                recv_op: None,
                send_op: None,
                zero_copy: true,
            },
        );
        self.pending.push(NetEvent::Accepted { conn: id, peer });
    }

    fn on_connect(&mut self, key: u64, res: i32) {
        let Some(Op::Connect { conn, peer, .. }) = self.ops.remove(key) else {
            return;
        };
        let current = matches!(
            self.conns.get(&conn),
            Some(Conn { state: State::Connecting { op, .. }, .. }) if *op == key
        );
        if !current {
            return; // closed meanwhile
        }
        if res == 0 {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.state = State::Open;
            }
            self.pending.push(NetEvent::Connected { conn, peer });
        } else if res == -libc::ECANCELED {
            // Only the linked timeout cancels a connect we still want.
            self.attempt_failed(conn, ConnectFailure::TimedOut);
        } else {
            self.attempt_failed(conn, ConnectFailure::Io(IoFailure::from_errno(-res)));
        }
    }

    fn on_recv(&mut self, key: u64, id: ConnId, res: i32, flags: u32, more: bool) {
        let bid = cqueue::buffer_select(flags);
        if !more {
            self.ops.remove(key);
            if let Some(c) = self.conns.get_mut(&id) {
                if c.recv_op == Some(key) {
                    c.recv_op = None;
                }
            }
        }
        let open = matches!(
            self.conns.get(&id),
            Some(Conn {
                state: State::Open,
                ..
            })
        );
        if res > 0 {
            let len = res as usize;
            self.stats.bytes_in += len as u64;
            let result = match (bid, self.conns.get_mut(&id)) {
                (Some(bid), Some(conn)) if open => match self.bufs.returned(bid, len) {
                    Some(bytes) => Some(conn.link.receive(bytes, &mut self.frames)),
                    None => {
                        log::error!("recv completion with impossible buffer {bid}/{len}");
                        None
                    }
                },
                _ => None,
            };
            if let Some(bid) = bid {
                self.to_provide.push(bid);
            }
            for frame in self.frames.drain(..) {
                self.stats.frames_in += 1;
                self.pending.push(NetEvent::Frame {
                    conn: id,
                    kind: frame.kind,
                    payload: frame.payload,
                });
            }
            match result {
                Some(Err(ReceiveError::Frame(e))) => {
                    self.drop_conn(id, Some(CloseReason::BadFrame(e)))
                }
                Some(Err(ReceiveError::Layer(e))) => {
                    self.drop_conn(id, Some(CloseReason::Layer(e)))
                }
                _ => {}
            }
            return;
        }
        if let Some(bid) = bid {
            self.to_provide.push(bid);
        }
        if !open {
            return;
        }
        match res {
            0 => self.drop_conn(id, Some(CloseReason::PeerClosed)),
            e if e == -libc::ENOBUFS => {
                // The pool ran dry: buffers go back at the next submission, then recv re-arms.
                self.stats.recv_buffers_exhausted += 1;
            }
            e if e == -libc::ECANCELED => {}
            e => self.drop_conn(id, Some(CloseReason::Io(IoFailure::from_errno(-e)))),
        }
    }

    fn on_send(&mut self, key: u64, res: i32, flags: u32, more: bool) {
        let Some(Op::Send {
            conn: id,
            chunk,
            offset,
            zero_copy,
            awaiting_notif,
        }) = self.ops.get_mut(key)
        else {
            return;
        };
        let id = *id;
        if cqueue::notif(flags) {
            // SendZc's second completion: the kernel no longer reads the chunk.
            self.ops.remove(key);
            if (res as u32) & IORING_NOTIF_USAGE_ZC_COPIED != 0 {
                self.stats.zero_copy_copied += 1;
                if let Some(c) = self.conns.get_mut(&id) {
                    if c.zero_copy {
                        log::debug!(
                            "{id}: zero-copy sends are copied by the kernel; sending plain"
                        );
                    }
                    c.zero_copy = false;
                }
            }
            return;
        }
        if *awaiting_notif {
            return; // a send completes once; only its notification may follow
        }
        if more {
            // A notification follows: the kernel may read the chunk until then.
            *awaiting_notif = true;
        }
        let was_zero_copy = *zero_copy;
        let frames = chunk.frames;
        let sent = usize::try_from(res).unwrap_or(0);
        let next = if res < 0 {
            let errno = -res;
            if was_zero_copy && matches!(errno, libc::ENOMEM | libc::EINVAL | libc::EOPNOTSUPP) {
                if errno != libc::ENOMEM {
                    self.zero_copy_supported = false;
                }
                log::debug!(
                    "{id}: zero-copy send failed ({}); sending plain",
                    io::Error::from_raw_os_error(errno)
                );
                self.stats.zero_copy_fallbacks += 1;
                if more {
                    Next::Requeue(chunk.bytes[(*offset).min(chunk.bytes.len())..].to_vec())
                } else {
                    *zero_copy = false;
                    Next::Resubmit
                }
            } else {
                Next::Fail(errno)
            }
        } else {
            if was_zero_copy {
                self.stats.zero_copy_sends += 1;
            }
            *offset += sent;
            if *offset >= chunk.bytes.len() {
                Next::Finished
            } else if more {
                // Cannot re-push under this key while its notification is pending.
                Next::Requeue(chunk.bytes[*offset..].to_vec())
            } else {
                Next::Resubmit // short send: the rest from the same buffer
            }
        };
        self.stats.bytes_out += sent as u64;
        let fd = self.conns.get_mut(&id).map(|c| {
            c.link.queue.complete(sent, 0);
            if c.send_op == Some(key) {
                c.send_op = None;
            }
            if was_zero_copy && res < 0 {
                c.zero_copy = false;
            }
            c.sock.as_raw_fd()
        });
        match next {
            Next::Finished => {
                if !more {
                    self.ops.remove(key);
                }
                if let Some(c) = self.conns.get_mut(&id) {
                    c.link.queue.complete(0, frames);
                    self.stats.frames_out += frames as u64;
                }
            }
            Next::Requeue(bytes) => self.requeue_front(id, Chunk { bytes, frames }),
            Next::Resubmit => match fd {
                Some(fd) => match self.push_send(key, fd) {
                    Ok(()) => {
                        if let Some(c) = self.conns.get_mut(&id) {
                            c.send_op = Some(key);
                        }
                    }
                    Err(e) => {
                        self.ops.remove(key);
                        self.drop_conn(
                            id,
                            Some(CloseReason::Io(IoFailure::from(&io::Error::other(e)))),
                        );
                    }
                },
                None => {
                    self.ops.remove(key);
                }
            },
            Next::Fail(errno) => {
                if !more {
                    self.ops.remove(key);
                }
                if errno != libc::ECANCELED {
                    self.drop_conn(id, Some(CloseReason::Io(IoFailure::from_errno(errno))));
                }
            }
        }
    }

    /// Puts a copy of an unsent remainder back at the front of the queue. Its bytes were
    /// accounted when first queued, so only the queue's chunk list changes.
    fn requeue_front(&mut self, id: ConnId, chunk: Chunk) {
        if let Some(c) = self.conns.get_mut(&id) {
            c.link.queue.put_back_front(chunk);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let closing = self.conns.values().filter_map(|c| match c.state {
            State::Closing { deadline } => Some(deadline),
            _ => None,
        });
        let accept = self.listener.as_ref().and_then(|l| l.retry_at);
        closing.chain(accept).min()
    }
}

impl Transport for UringTransport {
    fn listen(&mut self) -> Result<SocketAddr, NetError> {
        if let Some(l) = &self.listener {
            if let Ok(a) = l.sock.local_addr() {
                return Err(NetError::AlreadyListening(a));
            }
        }
        let addrs = addr::resolve(&self.config.listen)?;
        let listen_err = |source| NetError::Listen {
            address: self.config.listen.clone(),
            source,
        };
        // std sets SO_REUSEADDR; the socket stays blocking (io_uring does the waiting).
        let sock = TcpListener::bind(&addrs[..]).map_err(listen_err)?;
        let local = sock.local_addr().map_err(listen_err)?;
        self.listener = Some(Listener {
            sock,
            op: None,
            retry_at: None,
        });
        Ok(local)
    }

    fn connect(&mut self, address: &str) -> Result<ConnId, NetError> {
        let addrs = addr::resolve(address)?;
        let id = self.alloc_id();
        match self.start_connect(id, addrs) {
            Ok((sock, op, rest)) => {
                // Start the handshake now, as the portable transport does, not at the next
                // poll: the peer may be waiting for it in a blocking accept.
                if let Err(e) = self.ring.submit() {
                    log::warn!("submitting connect to {address}: {e}");
                }
                let link = self.new_link();
                self.conns.insert(
                    id,
                    Conn {
                        sock,
                        state: State::Connecting { rest, op },
                        link,
                        recv_op: None,
                        send_op: None,
                        zero_copy: true,
                    },
                );
            }
            Err(failure) => self.pending.push(NetEvent::ConnectFailed {
                conn: id,
                reason: ConnectFailure::Io(failure),
            }),
        }
        Ok(id)
    }

    fn send(&mut self, conn: ConnId, kind: FrameKind, payload: &[u8]) -> Result<(), NetError> {
        let c = match self.conns.get_mut(&conn) {
            Some(c) if !matches!(c.state, State::Closing { .. }) => c,
            _ => return Err(NetError::UnknownConn(conn)),
        };
        match c.link.enqueue(kind, payload) {
            Ok(()) => Ok(()),
            Err(EnqueueError::TooLarge { len, limit }) => {
                Err(NetError::FrameTooLarge { len, limit })
            }
            Err(EnqueueError::Full(full)) => {
                self.stats.send_queue_refusals += 1;
                Err(NetError::SendQueueFull {
                    conn,
                    queued_bytes: full.queued_bytes,
                    limit_bytes: full.limit_bytes,
                })
            }
            Err(EnqueueError::Layer(e)) => {
                self.drop_conn(conn, Some(CloseReason::Layer(e)));
                Err(NetError::UnknownConn(conn))
            }
        }
    }

    fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.state {
            State::Open => {
                c.state = State::Closing {
                    deadline: Instant::now() + CLOSE_LINGER,
                };
                let _ = c.sock.shutdown(Shutdown::Read);
            }
            State::Connecting { op, .. } => {
                self.conns.remove(&conn);
                self.cancel(op);
            }
            State::Closing { .. } => {}
        }
    }

    fn poll(
        &mut self,
        events: &mut Vec<NetEvent>,
        timeout: Option<Duration>,
        wake_fd: RawFd,
    ) -> Result<(), NetError> {
        self.arm(wake_fd)?;
        let now = Instant::now();
        let mut wait = if self.pending.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        if let Some(deadline) = self.next_deadline() {
            let until = deadline.saturating_duration_since(now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }
        let deadline = wait.map(|d| now + d);
        self.woken = false;
        loop {
            self.enter(wait)?;
            // Reap; enter again (without waiting) only while the kernel has deferred task
            // work, i.e. more completions to post. What dispatching queued (returned buffers,
            // re-armed receives, the rest of a short send) goes out with the next enter, which
            // also carries the owner's replies: one syscall per wake-up in the common case.
            for _ in 0..ROUNDS_PER_POLL {
                if self.reap() == 0 {
                    break;
                }
                self.dispatch();
                if !self.ring.submission().taskrun() {
                    break;
                }
                self.ring.submit().map_err(|source| NetError::Io {
                    op: "io_uring_enter",
                    source,
                })?;
            }
            if !self.pending.is_empty() || self.woken {
                break;
            }
            // Only internal completions so far (a send finished, a cancel): they are no
            // reason to return; wait again for what is left of the timeout.
            match deadline {
                None => {}
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    wait = Some(d - now);
                }
            }
            self.arm(wake_fd)?;
        }
        events.append(&mut self.pending);
        Ok(())
    }

    fn kind(&self) -> TransportKind {
        TransportKind::IoUring
    }

    fn stats(&self) -> NetStats {
        let mut stats = self.stats;
        stats.connections = self.conns.len();
        stats.send_queue_bytes = self
            .conns
            .values()
            .map(|c| c.link.queue.queued_bytes())
            .sum();
        stats.send_queue_frames = self
            .conns
            .values()
            .map(|c| c.link.queue.queued_frames())
            .sum();
        stats
    }
}

impl Drop for UringTransport {
    /// Cancels everything and waits (bounded) for the kernel to let go of our memory. If it
    /// does not in time, the buffer pool and the op slab are leaked rather than freed under
    /// the kernel.
    fn drop(&mut self) {
        for conn in self.conns.values() {
            let _ = conn.sock.shutdown(Shutdown::Both);
        }
        self.conns.clear();
        self.listener = None;
        self.wake = None;
        self.to_provide.clear();
        let op = self.ops.insert(Op::Cancel);
        let entry = opcode::AsyncCancel2::new(types::CancelBuilder::any())
            .build()
            .user_data(op);
        // SAFETY: AsyncCancel carries no pointer.
        if unsafe { self.push(&entry) }.is_err() {
            self.ops.remove(op);
        }
        let deadline = Instant::now() + DROP_DRAIN;
        while self.ops.live() > 0 && Instant::now() < deadline {
            let _ = self.enter(Some(Duration::from_millis(20)));
            self.reap();
            for &(key, _, flags) in &self.cqes {
                // The last completion of an op: a notification, or one without MORE.
                if key & PROVIDE_TAG == 0 && (cqueue::notif(flags) || !cqueue::more(flags)) {
                    self.ops.remove(key);
                }
            }
        }
        if self.ops.live() > 0 {
            log::error!(
                "io_uring transport dropped with {} operations the kernel did not finish; leaking their buffers",
                self.ops.live()
            );
            let ops = std::mem::replace(&mut self.ops, OpSlab::new());
            std::mem::forget(ops);
            let bufs = std::mem::replace(&mut self.bufs, BufPool::new(0, 0));
            std::mem::forget(bufs);
        }
    }
}
