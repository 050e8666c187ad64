//! Trireme's network layer: frames between nodes, over TCP.
//!
//! Owns: the frame format ([`frame`], specified in `FORMAT.md`), the [`Transport`] API that
//! shard 0 of the runtime drives from its single thread, and its two implementations:
//!
//! - **io_uring** (`uring`, Linux): one small ring (SINGLE_ISSUER + DEFER_TASKRUN +
//!   TASKRUN_FLAG) created on the owning thread; multishot accept, multishot recv into a pool
//!   of provided buffers, send (SendZc for large frames on sockets where it pays), connect with
//!   a linked timeout, and a poll on the owner's wake eventfd;
//! - **portable** (`portable`): non-blocking std sockets and poll(2).
//!
//! [`open`] picks one ([`TransportChoice::Auto`]: io_uring if a ring can be set up, else the
//! portable one, with one log line saying why). Both pass the same tests (`tests/transport.rs`).
//!
//! Invariants every implementation keeps:
//! - nothing received is trusted: bytes go through [`FrameDecoder`]; a bad frame is logged, the
//!   connection is dropped and reported as `Closed { reason: BadFrame(..) }`; no input panics;
//! - `send` never blocks and never grows a queue past `send_queue_limit_bytes`;
//! - a connection the peer closed or reset is reported `Closed` by the next `poll` that sees it
//!   (the group takes that as evidence the peer is gone);
//! - `poll(timeout = Some(ZERO))` does not block; `poll` returns when the wake eventfd is
//!   signalled from another thread;
//! - connection ids are never reused, so a stale id is refused (`UnknownConn`), never misrouted;
//! - a transport is `!Send`: the io_uring ring belongs to the thread that created it
//!   (SINGLE_ISSUER), so [`open`] must be called on the thread that will drive it.
//!
//! `unsafe` lives only in `uring` (pushing SQEs, adopting fds from completions) and `sys`.

mod addr;
pub mod frame;
mod link;
mod portable;
pub mod stream;
mod sys;
mod uring;

pub use addr::{resolve, split_host_port, DEFAULT_PORT};
pub use frame::{
    encode_frame, encode_frame_into, frame_len, AlignedPayload, ClusterHash, Frame, FrameDecoder,
    FrameError, FrameKind,
};
pub use stream::{LayerError, Plaintext, StreamLayer};
pub use sys::WakeFd;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

/// Which transport to use (`trireme.transport`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportChoice {
    /// io_uring if a ring can be set up here, else portable.
    Auto,
    /// io_uring or an error.
    IoUring,
    /// Non-blocking sockets and poll(2).
    Portable,
}

/// Which transport is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportKind {
    IoUring,
    Portable,
}

/// Settings of one transport instance.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// `wsrep_cluster_name`; frames carry its hash and frames of other clusters are refused.
    pub cluster_name: String,
    /// `gmcast.listen_addr`: `tcp://0.0.0.0:4567`, `[::]:4567`, `host:port`; port 0 picks one.
    pub listen: String,
    /// Largest payload sent or accepted.
    pub max_frame_bytes: u32,
    pub choice: TransportChoice,
    /// Frames of at least this many bytes may go out zero-copy (io_uring SendZc).
    pub zero_copy_min_bytes: usize,
    /// Per-connection bound on queued, unsent bytes (frames in flight included).
    pub send_queue_limit_bytes: usize,
    /// A connect attempt (per resolved address) fails after this long.
    pub connect_timeout: Duration,
    /// Submission queue entries of the io_uring ring (the CQ gets four times as many).
    pub ring_entries: u32,
    /// io_uring: receive buffers lent to the kernel for multishot recv (ordinary memory,
    /// shared by all connections) and the size of each.
    pub recv_buffer_count: u16,
    pub recv_buffer_bytes: u32,
}

impl TransportConfig {
    /// Defaults: 64 MiB frames (the group's largest message), zero-copy from 64 KiB,
    /// 128 MiB of send queue per connection, 3 s connect timeout (Galera's
    /// `gmcast.peer_timeout`), a 256-entry ring, 64 receive buffers of 64 KiB.
    pub fn new(cluster_name: &str, listen: &str) -> TransportConfig {
        TransportConfig {
            cluster_name: cluster_name.to_string(),
            listen: listen.to_string(),
            max_frame_bytes: 64 << 20,
            choice: TransportChoice::Auto,
            zero_copy_min_bytes: 64 << 10,
            send_queue_limit_bytes: 128 << 20,
            connect_timeout: Duration::from_secs(3),
            ring_entries: 256,
            recv_buffer_count: 64,
            recv_buffer_bytes: 64 << 10,
        }
    }

    /// Refuses settings that cannot work, naming the values.
    pub fn validate(&self) -> Result<(), NetError> {
        let bad = |reason: String| Err(NetError::Config(reason));
        if self.max_frame_bytes == 0 {
            return bad("max_frame_bytes must be at least 1".into());
        }
        let largest = frame_len(self.max_frame_bytes as usize);
        if self.send_queue_limit_bytes < largest {
            return bad(format!(
                "send_queue_limit_bytes {} is below one frame of max_frame_bytes {} ({} bytes on the wire)",
                self.send_queue_limit_bytes, self.max_frame_bytes, largest
            ));
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be positive".into());
        }
        if self.recv_buffer_count == 0 || !(1024..=(1 << 24)).contains(&self.recv_buffer_bytes) {
            return bad(format!(
                "recv_buffer_count {} must be at least 1 and recv_buffer_bytes {} within 1 KiB..=16 MiB",
                self.recv_buffer_count, self.recv_buffer_bytes
            ));
        }
        if !(8..=4096).contains(&self.ring_entries) {
            return bad(format!(
                "ring_entries {} is outside 8..=4096",
                self.ring_entries
            ));
        }
        Ok(())
    }
}

/// A connection, accepted or initiated. Never reused within a transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// An I/O error reduced to what can be compared and logged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoFailure {
    pub kind: io::ErrorKind,
    pub errno: Option<i32>,
}

impl IoFailure {
    pub fn from_errno(errno: i32) -> IoFailure {
        IoFailure::from(&io::Error::from_raw_os_error(errno))
    }
}

impl From<&io::Error> for IoFailure {
    fn from(e: &io::Error) -> IoFailure {
        IoFailure {
            kind: e.kind(),
            errno: e.raw_os_error(),
        }
    }
}

impl fmt::Display for IoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(errno) => write!(f, "{}", io::Error::from_raw_os_error(errno)),
            None => write!(f, "{}", self.kind),
        }
    }
}

/// Why a connect attempt failed (every resolved address was tried).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConnectFailure {
    #[error("timed out")]
    TimedOut,
    #[error("{0}")]
    Io(IoFailure),
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloseReason {
    /// Orderly end of stream (FIN): the peer closed or its process exited.
    #[error("closed by peer")]
    PeerClosed,
    /// Reset, broken pipe or another socket error.
    #[error("{0}")]
    Io(IoFailure),
    /// The peer sent a frame we refuse; the connection is dropped.
    #[error("bad frame: {0}")]
    BadFrame(FrameError),
    /// The stream layer (TLS, later) failed.
    #[error("{0}")]
    Layer(LayerError),
}

/// What `poll` reports.
#[derive(Debug)]
pub enum NetEvent {
    Accepted {
        conn: ConnId,
        peer: SocketAddr,
    },
    Connected {
        conn: ConnId,
        peer: SocketAddr,
    },
    ConnectFailed {
        conn: ConnId,
        reason: ConnectFailure,
    },
    Frame {
        conn: ConnId,
        kind: FrameKind,
        payload: AlignedPayload,
    },
    /// The connection is gone (not reported for connections closed with `close`).
    Closed {
        conn: ConnId,
        reason: CloseReason,
    },
}

/// Counters for status variables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// Frames queued and not yet fully handed to the kernel, all connections
    /// (`wsrep_local_send_queue`).
    pub send_queue_frames: usize,
    pub send_queue_bytes: usize,
    /// Sends refused because a connection's queue was full.
    pub send_queue_refusals: u64,
    /// Open connections (accepted, connected or connecting).
    pub connections: usize,
    /// Connections dropped for a bad frame.
    pub bad_frames: u64,
    /// Sends that went out with SendZc.
    pub zero_copy_sends: u64,
    /// SendZc notifications saying the kernel copied anyway (the socket then stops using it).
    pub zero_copy_copied: u64,
    /// Large sends that went out plain because zero-copy was off for the socket or failed
    /// (ENOMEM: locked memory exhausted).
    pub zero_copy_fallbacks: u64,
    /// io_uring: times a connection's receive stopped because every receive buffer was in
    /// use (ENOBUFS) and had to be re-armed; often means `recv_buffer_count` is too small.
    pub recv_buffers_exhausted: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("invalid transport configuration: {0}")]
    Config(String),
    #[error("invalid address {address:?}: {reason}")]
    BadAddress { address: String, reason: String },
    #[error("cannot resolve {address:?}: {source}")]
    Resolve { address: String, source: io::Error },
    #[error("cannot listen on {address}: {source}")]
    Listen { address: String, source: io::Error },
    #[error("already listening on {0}")]
    AlreadyListening(SocketAddr),
    #[error("unknown or closed connection {0}")]
    UnknownConn(ConnId),
    #[error("payload of {len} bytes exceeds max_frame_bytes {limit}")]
    FrameTooLarge { len: usize, limit: u32 },
    #[error("send queue of {conn} is full ({queued_bytes} bytes queued, limit {limit_bytes})")]
    SendQueueFull {
        conn: ConnId,
        queued_bytes: usize,
        limit_bytes: usize,
    },
    #[error("io_uring unavailable: {0}")]
    IoUringUnavailable(String),
    #[error("{op}: {source}")]
    Io { op: &'static str, source: io::Error },
}

/// The API shard 0 drives. One thread owns a transport (see the crate header).
pub trait Transport {
    /// Binds and listens on `config.listen`; returns the bound address (port 0 resolved).
    fn listen(&mut self) -> Result<SocketAddr, NetError>;
    /// Starts connecting to `address` (`host:port`, `[::1]:4567`, a host name, optional
    /// `tcp://`; default port 4567). The outcome comes from `poll`: `Connected` or
    /// `ConnectFailed`. Host names are resolved here, blocking (see `addr.rs` for why).
    fn connect(&mut self, address: &str) -> Result<ConnId, NetError>;
    /// Queues one frame; never blocks. Refuses (`SendQueueFull`) instead of growing the
    /// connection's queue past its limit; nothing is queued on error.
    fn send(&mut self, conn: ConnId, kind: FrameKind, payload: &[u8]) -> Result<(), NetError>;
    /// Stops reading `conn`, sends what is queued (for at most `CLOSE_LINGER`), then closes.
    /// No event is reported for it; the id is invalid from now on.
    fn close(&mut self, conn: ConnId);
    /// Waits until I/O is ready, `wake_fd` (a non-blocking eventfd, drained here) is
    /// signalled, or `timeout` passes (None: no limit; Some(ZERO): do not block), then
    /// appends what happened to `events`.
    fn poll(
        &mut self,
        events: &mut Vec<NetEvent>,
        timeout: Option<Duration>,
        wake_fd: RawFd,
    ) -> Result<(), NetError>;
    fn kind(&self) -> TransportKind;
    fn stats(&self) -> NetStats;
}

/// How long `close` keeps trying to send what was queued.
pub const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Opens a transport as `config.choice` says. Call it on the thread that will drive it.
pub fn open(config: TransportConfig) -> Result<Box<dyn Transport>, NetError> {
    config.validate()?;
    match config.choice {
        TransportChoice::Portable => Ok(Box::new(portable::PortableTransport::new(config))),
        TransportChoice::IoUring => Ok(Box::new(uring::UringTransport::new(config)?)),
        TransportChoice::Auto => match uring::UringTransport::new(config.clone()) {
            Ok(t) => {
                log::info!("network transport: io_uring");
                Ok(Box::new(t))
            }
            Err(e) => {
                log::warn!("network transport: portable poll(2), because {e}");
                Ok(Box::new(portable::PortableTransport::new(config)))
            }
        },
    }
}

/// Whether an io_uring transport can be opened on this thread, and why not.
pub fn probe_io_uring() -> Result<(), NetError> {
    uring::probe()
}

/// Timeout of a poll(2)-style wait in milliseconds, rounded up so a short timeout never
/// becomes a busy loop (None: -1, forever).
pub(crate) fn timeout_ms(timeout: Option<Duration>) -> i32 {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).unwrap_or(i32::MAX)
        }
    }
}
