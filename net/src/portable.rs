//! The portable transport: non-blocking std sockets and poll(2).
//!
//! Owns: the listener, every connection's socket and [`Link`], and the connect/close
//! deadlines. Used where io_uring is refused (old kernel, seccomp, io_uring_disabled, locked
//! memory exhausted) or when `trireme.transport=portable`.
//!
//! `poll` runs, in order: flush queued bytes (write until EAGAIN), expire deadlines, wait in
//! poll(2) on the wake fd, the listener and every socket, then read everything ready (bounded
//! per connection per call so one busy peer cannot starve the others). Level-triggered
//! poll(2) means whatever is left is seen at the next call.
//!
//! No `unsafe` here: sockets are std's; poll(2) and non-blocking connect are in `sys`.

use crate::frame::{ClusterHash, Frame};
use crate::link::{EnqueueError, Link, ReceiveError};
use crate::stream::Plaintext;
use crate::{
    addr, sys, timeout_ms, CloseReason, ConnId, ConnectFailure, FrameKind, IoFailure, NetError,
    NetEvent, NetStats, Transport, TransportConfig, TransportKind, CLOSE_LINGER,
};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

/// Bytes read per read(2) call.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Reads per connection per `poll`: 1 MiB, then the next connection gets its turn.
const READS_PER_POLL: usize = 16;

enum State {
    Connecting {
        /// Addresses not tried yet, in the resolver's order.
        rest: Vec<SocketAddr>,
        peer: SocketAddr,
        deadline: Instant,
    },
    Open,
    /// `close` was called: flushing the queue until it is empty or the deadline passes.
    Closing {
        deadline: Instant,
    },
}

struct Conn {
    stream: TcpStream,
    state: State,
    link: Link,
}

pub(crate) struct PortableTransport {
    config: TransportConfig,
    cluster: ClusterHash,
    listener: Option<TcpListener>,
    conns: BTreeMap<ConnId, Conn>,
    next_id: u64,
    stats: NetStats,
    /// Events produced outside `poll` (a connect that failed or succeeded at once).
    pending: Vec<NetEvent>,
    read_buf: Vec<u8>,
    frames: Vec<Frame>,
    pollfds: Vec<libc::pollfd>,
    poll_ids: Vec<ConnId>,
    /// Same ownership rule as the io_uring transport: one thread drives it.
    _not_send: PhantomData<*const ()>,
}

impl PortableTransport {
    pub fn new(config: TransportConfig) -> PortableTransport {
        PortableTransport {
            cluster: ClusterHash::of(&config.cluster_name),
            config,
            listener: None,
            conns: BTreeMap::new(),
            next_id: 1,
            stats: NetStats::default(),
            pending: Vec::new(),
            read_buf: vec![0; READ_CHUNK_BYTES],
            frames: Vec::new(),
            pollfds: Vec::new(),
            poll_ids: Vec::new(),
            _not_send: PhantomData,
        }
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

    /// Tries `addrs` in order until one connects at once or is in progress.
    /// Returns the socket and state, or the last error.
    fn start_attempt(
        &self,
        mut addrs: Vec<SocketAddr>,
    ) -> Result<(TcpStream, State, bool), IoFailure> {
        let mut last = IoFailure::from(&io::Error::from(io::ErrorKind::AddrNotAvailable));
        addrs.reverse(); // pop() takes them in the resolver's order
        while let Some(peer) = addrs.pop() {
            let attempt = sys::tcp_socket(&peer, true)
                .and_then(|s| sys::start_connect(&s, &peer).map(|now| (s, now)));
            match attempt {
                Ok((stream, done)) => {
                    addrs.reverse();
                    let state = State::Connecting {
                        rest: addrs,
                        peer,
                        deadline: Instant::now() + self.config.connect_timeout,
                    };
                    return Ok((stream, state, done));
                }
                Err(e) => last = IoFailure::from(&e),
            }
        }
        Err(last)
    }

    /// A connect attempt of `id` failed: try its next address or report the failure.
    fn attempt_failed(&mut self, id: ConnId, failure: ConnectFailure) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let rest = match &mut conn.state {
            State::Connecting { rest, .. } => std::mem::take(rest),
            _ => Vec::new(),
        };
        if !rest.is_empty() {
            if let Ok((stream, state, done)) = self.start_attempt(rest) {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.stream = stream;
                    conn.state = state;
                }
                if done {
                    self.connected(id);
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

    fn connected(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if let State::Connecting { peer, .. } = conn.state {
            conn.state = State::Open;
            self.pending.push(NetEvent::Connected { conn: id, peer });
        }
    }

    /// Reports `id` closed and drops it.
    fn drop_conn(&mut self, id: ConnId, reason: CloseReason) {
        if let Some(conn) = self.conns.remove(&id) {
            if let CloseReason::BadFrame(e) = &reason {
                self.stats.bad_frames += 1;
                log::warn!(
                    "dropping {id} from {}: {e}",
                    conn.stream
                        .peer_addr()
                        .map_or_else(|_| "?".to_string(), |a| a.to_string())
                );
            }
            if !matches!(conn.state, State::Closing { .. }) {
                self.pending.push(NetEvent::Closed { conn: id, reason });
            }
        }
    }

    /// Writes queued bytes until the queue is empty or the socket is full.
    fn flush(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if matches!(conn.state, State::Connecting { .. }) {
            return;
        }
        let mut failure = None;
        while let Some(bytes) = conn.link.queue.front() {
            match conn.stream.write(bytes) {
                Ok(0) => {
                    failure = Some(IoFailure::from(&io::Error::from(io::ErrorKind::WriteZero)));
                    break;
                }
                Ok(n) => {
                    self.stats.bytes_out += n as u64;
                    self.stats.frames_out += conn.link.queue.advance(n) as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    failure = Some(IoFailure::from(&e));
                    break;
                }
            }
        }
        if let Some(f) = failure {
            self.drop_conn(id, CloseReason::Io(f));
        }
    }

    /// Reads what is ready (bounded), feeding frames to `pending`.
    fn read_ready(&mut self, id: ConnId) {
        for _ in 0..READS_PER_POLL {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            match conn.stream.read(&mut self.read_buf) {
                Ok(0) => return self.drop_conn(id, CloseReason::PeerClosed),
                Ok(n) => {
                    self.stats.bytes_in += n as u64;
                    let result = conn.link.receive(&self.read_buf[..n], &mut self.frames);
                    for frame in self.frames.drain(..) {
                        self.stats.frames_in += 1;
                        self.pending.push(NetEvent::Frame {
                            conn: id,
                            kind: frame.kind,
                            payload: frame.payload,
                        });
                    }
                    match result {
                        Ok(()) => {}
                        Err(ReceiveError::Frame(e)) => {
                            return self.drop_conn(id, CloseReason::BadFrame(e))
                        }
                        Err(ReceiveError::Layer(e)) => {
                            return self.drop_conn(id, CloseReason::Layer(e))
                        }
                    }
                    if n < self.read_buf.len() {
                        return; // drained for now
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.drop_conn(id, CloseReason::Io(IoFailure::from(&e))),
            }
        }
    }

    /// A connecting socket became writable or failed: find out which.
    fn finish_connect(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let outcome = match conn.stream.take_error() {
            Ok(None) => conn.stream.peer_addr().map(|_| ()),
            Ok(Some(e)) | Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => {
                self.connected(id);
                self.flush(id);
            }
            Err(e) => self.attempt_failed(id, ConnectFailure::Io(IoFailure::from(&e))),
        }
    }

    fn accept_ready(&mut self) {
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if let Err(e) = stream
                        .set_nonblocking(true)
                        .and_then(|()| stream.set_nodelay(true))
                    {
                        log::warn!("dropping connection from {peer}: {e}");
                        continue;
                    }
                    let id = self.alloc_id();
                    let link = self.new_link();
                    self.conns.insert(
                        id,
                        Conn {
                            stream,
                            state: State::Open,
                            link,
                        },
                    );
                    self.pending.push(NetEvent::Accepted { conn: id, peer });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and friends: the connection stays in the backlog; try later.
                    log::warn!("accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Handles connect and close deadlines; returns the nearest one still ahead.
    fn expire(&mut self, now: Instant) -> Option<Instant> {
        let mut timed_out = Vec::new();
        let mut done_closing = Vec::new();
        let mut nearest: Option<Instant> = None;
        for (&id, conn) in &self.conns {
            match conn.state {
                State::Connecting { deadline, .. } if deadline <= now => timed_out.push(id),
                State::Closing { deadline } if deadline <= now || !conn.link.queue.has_chunks() => {
                    done_closing.push(id)
                }
                State::Connecting { deadline, .. } | State::Closing { deadline } => {
                    nearest = Some(nearest.map_or(deadline, |n| n.min(deadline)));
                }
                State::Open => {}
            }
        }
        for id in timed_out {
            self.attempt_failed(id, ConnectFailure::TimedOut);
        }
        for id in done_closing {
            if let Some(conn) = self.conns.remove(&id) {
                let _ = conn.stream.shutdown(std::net::Shutdown::Both);
            }
        }
        nearest
    }
}

impl Transport for PortableTransport {
    fn listen(&mut self) -> Result<SocketAddr, NetError> {
        if let Some(l) = &self.listener {
            if let Ok(a) = l.local_addr() {
                return Err(NetError::AlreadyListening(a));
            }
        }
        let addrs = addr::resolve(&self.config.listen)?;
        let listen_err = |source| NetError::Listen {
            address: self.config.listen.clone(),
            source,
        };
        // std sets SO_REUSEADDR on listening sockets (Unix).
        let listener = TcpListener::bind(&addrs[..]).map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;
        let local = listener.local_addr().map_err(listen_err)?;
        self.listener = Some(listener);
        Ok(local)
    }

    fn connect(&mut self, address: &str) -> Result<ConnId, NetError> {
        let addrs = addr::resolve(address)?;
        let id = self.alloc_id();
        match self.start_attempt(addrs) {
            Ok((stream, state, done)) => {
                let link = self.new_link();
                self.conns.insert(
                    id,
                    Conn {
                        stream,
                        state,
                        link,
                    },
                );
                if done {
                    self.connected(id);
                }
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
                self.drop_conn(conn, CloseReason::Layer(e.clone()));
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
                // Nothing more is read: tell the peer now, keep the write side for the queue.
                let _ = c.stream.shutdown(std::net::Shutdown::Read);
            }
            State::Connecting { .. } => {
                self.conns.remove(&conn);
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
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.link.queue.has_chunks())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.flush(id);
        }
        let now = Instant::now();
        let nearest = self.expire(now);
        let mut wait = if self.pending.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        if let Some(deadline) = nearest {
            let until = deadline.saturating_duration_since(now);
            wait = Some(wait.map_or(until, |w| w.min(until)));
        }

        self.pollfds.clear();
        self.poll_ids.clear();
        let pollfd = |fd: RawFd, events: i16| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        self.pollfds.push(pollfd(wake_fd, libc::POLLIN));
        let listener_fd = self.listener.as_ref().map(|l| l.as_raw_fd());
        self.pollfds
            .push(pollfd(listener_fd.unwrap_or(-1), libc::POLLIN));
        for (&id, conn) in &self.conns {
            let interest = match conn.state {
                State::Connecting { .. } => libc::POLLOUT,
                State::Open if conn.link.queue.has_chunks() => libc::POLLIN | libc::POLLOUT,
                State::Open => libc::POLLIN,
                State::Closing { .. } => libc::POLLOUT,
            };
            self.pollfds.push(pollfd(conn.stream.as_raw_fd(), interest));
            self.poll_ids.push(id);
        }
        sys::poll(&mut self.pollfds, timeout_ms(wait))
            .map_err(|source| NetError::Io { op: "poll", source })?;

        if self.pollfds[0].revents != 0 {
            sys::drain_eventfd(wake_fd);
        }
        if self.pollfds[1].revents != 0 {
            self.accept_ready();
        }
        let ready: Vec<(ConnId, i16)> = self
            .poll_ids
            .iter()
            .zip(&self.pollfds[2..])
            .filter(|(_, p)| p.revents != 0)
            .map(|(&id, p)| (id, p.revents))
            .collect();
        for (id, revents) in ready {
            let Some(conn) = self.conns.get(&id) else {
                continue;
            };
            match conn.state {
                State::Connecting { .. } => self.finish_connect(id),
                State::Open => {
                    if revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                        self.read_ready(id);
                    }
                    if revents & libc::POLLOUT != 0 {
                        self.flush(id);
                    }
                }
                State::Closing { .. } => {
                    if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
                        self.conns.remove(&id);
                    } else {
                        self.flush(id);
                    }
                }
            }
        }
        events.append(&mut self.pending);
        Ok(())
    }

    fn kind(&self) -> TransportKind {
        TransportKind::Portable
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
