//! Trireme's shard threads.
//!
//! Thread-per-core: `trireme.shards` threads started at `init` and joined at `free`. Each runs
//! one loop, in this order and for these reasons:
//!
//! 1. **drain the inbox**: commands from MariaDB's threads (propose, connect, read point...)
//!    arrive on a bounded channel; draining first keeps client latency low;
//! 2. **poll I/O**: frames from peers (the `net` transport);
//! 3. **tick**: protocol timers count ticks derived from CLOCK_MONOTONIC, so a process resumed
//!    after SIGSTOP first sees all the time that passed;
//! 4. **process ready work**: the group core's `Ready` (send messages, deliver ordered events:
//!    certify, append to the GCache, hand to the owner's [`Sink`]);
//! 5. **spin, then park**: spin up to `trireme.spin_budget_us` when something just happened
//!    (a reply is likely to follow within a round trip), then park on an eventfd (plus the
//!    sockets) until the next tick. Two spinning threads would starve mariadbd on a small VM,
//!    hence the bound.
//!
//! Shard 0 owns the group core, the network connections, the certification index and the
//! GCache. (Spreading the index and the GCache over the other shards by key hash and seqno
//! stripe is described in docs/DESIGN.md; with `trireme.shards=1`, the default on machines of
//! up to 4 CPUs, everything stays on one thread and costs no extra hop.)
//!
//! MariaDB's threads never touch shard-owned data: [`Runtime`]'s methods only enqueue
//! commands, and results come back through the owner's [`Sink`].

mod api;
pub mod arbiter;
mod config;
mod gvwstate;
mod ordering;
mod peers;
mod shard;
mod shards;
pub mod sys;
pub mod transfer;

pub use api::{ConnectMode, ConnectRequest, Delivered, Sink, Token, Verdict};
pub use config::RuntimeConfig;
pub use peers::{set_peer_filter, PeerFilter};

use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use trireme_types::{Gtid, Seqno, Writeset};

/// Capacity of a shard's command inbox. A full inbox makes the caller wait (backpressure),
/// it never drops commands.
pub const INBOX_CAPACITY: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start shard thread {index}: {source}")]
    Spawn { index: u32, source: std::io::Error },
    #[error("cannot create the shard wake-up eventfd: {0}")]
    EventFd(std::io::Error),
    #[error("the shard threads have stopped")]
    Stopped,
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("not connected to a group")]
    NotConnected,
}

/// Commands MariaDB's threads send to shard 0.
pub(crate) enum Command {
    Connect {
        request: ConnectRequest,
        reply: Sender<Result<(), String>>,
    },
    Propose {
        ws: Arc<Writeset>,
        /// Its wire form, encoded by the caller: shard 0 (which drives the group) has no
        /// time for that.
        bytes: Vec<u8>,
        token: Token,
    },
    ReadPoint {
        token: Token,
    },
    Disconnect,
    ForceBootstrap,
    /// An ordered control message (member synced, desynced).
    Control(trireme_group::ControlEntry),
    /// Flow control: this node's stop (`stop`) or resume, numbered by the deciding side.
    /// Two MariaDB threads can decide in one order and enqueue in the other; shard 0 sends
    /// only a decision newer than the last one it sent, so a stale stop can never be the
    /// last word (the cluster would stay paused for good).
    Flow {
        decision: u64,
        stop: bool,
    },
    /// `gmcast.isolate`: 0 connected, 1 cut off from every peer, 2 the group session ends
    /// (Galera's gcomm thread exits).
    Isolate(u8),
    /// A joiner asks for state (after `sst_request_cb`).
    RequestState {
        sst_request: Vec<u8>,
        donor_names: Vec<String>,
        ist_from: Gtid,
    },
    /// MariaDB's SST finished on the joiner (`sst_received`).
    StateReceived {
        gtid: Gtid,
        rcode: i32,
    },
    /// The joiner's stream receiver finished.
    StreamReceived(Box<Result<transfer::Received, String>>),
    Stop,
}

/// Facts the shards publish for status variables, read lock-free.
pub(crate) struct Board {
    /// Keys held by each shard's certification slice (their sum is `wsrep_cert_index_size`).
    pub slice_index_sizes: Vec<AtomicU64>,
    /// Each GCache slice's contiguous run `(low, high)`, published by the thread that owns
    /// the slice after every append (-1: nothing cached). `cached_range` combines them.
    pub gcache_ranges: Vec<[AtomicI64; 2]>,
    pub primary: AtomicBool,
    /// `pc.ignore_sb`: on losing the quorum, carry on as a primary component of the members
    /// left (split brain is the user's risk, as with Galera).
    pub ignore_split_brain: AtomicBool,
    /// `evs.auto_evict` (dynamic), handed to the group core at the next tick.
    pub auto_evict: AtomicU32,
    /// `pc.weight` (dynamic), handed to the group core at the next tick.
    pub weight: AtomicU8,
    /// This node's weight as the group applied it (-1: not a voter), and the primary
    /// component's total (`wsrep_cluster_weight`, 0 outside one).
    pub applied_weight: AtomicI64,
    pub cluster_weight: AtomicI64,
    /// `wsrep_evs_evict_list`: the evicted node ids, comma-separated.
    pub evict_list: std::sync::Mutex<String>,
    /// Frames queued for peers and not yet handed to the kernel (`wsrep_local_send_queue`).
    pub send_queue_frames: AtomicU64,
    /// Time to certify one writeset on shard 0 (fan-out to other shards included), ns.
    pub certify_latency: std::sync::Mutex<hdrhistogram::Histogram<u64>>,
}

impl Board {
    /// Publishes slice `index`'s contiguous run (`None`: nothing cached, or closed).
    pub(crate) fn publish_gcache_range(&self, index: usize, range: Option<(Seqno, Seqno)>) {
        if let Some([low, high]) = self.gcache_ranges.get(index) {
            let (l, h) = range.map_or((-1, -1), |(l, h)| (l.0, h.0));
            low.store(l, Ordering::Relaxed);
            high.store(h, Ordering::Relaxed);
        }
    }

    /// The range every seqno of which is cached by some slice, ending at the newest record
    /// (`wsrep_local_cached_downto` is its start; IST can be served from there).
    pub(crate) fn cached_range(&self) -> Option<(Seqno, Seqno)> {
        let ranges: Vec<Option<(Seqno, Seqno)>> = self
            .gcache_ranges
            .iter()
            .map(|[low, high]| {
                let (l, h) = (low.load(Ordering::Relaxed), high.load(Ordering::Relaxed));
                (l >= 0 && h >= l).then_some((Seqno(l), Seqno(h)))
            })
            .collect();
        trireme_gcache::contiguous_range(&ranges)
    }

    fn new(shards: u32) -> Board {
        Board {
            slice_index_sizes: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            gcache_ranges: (0..shards)
                .map(|_| [AtomicI64::new(-1), AtomicI64::new(-1)])
                .collect(),
            primary: AtomicBool::new(false),
            ignore_split_brain: AtomicBool::new(false),
            auto_evict: AtomicU32::new(0),
            weight: AtomicU8::new(1),
            applied_weight: AtomicI64::new(-1),
            cluster_weight: AtomicI64::new(0),
            evict_list: std::sync::Mutex::new(String::new()),
            send_queue_frames: AtomicU64::new(0),
            certify_latency: std::sync::Mutex::new(
                hdrhistogram::Histogram::new_with_bounds(1, 600_000_000_000, 3)
                    .expect("static bounds are valid"),
            ),
        }
    }
}

/// What the shards publish for `SHOW STATUS`.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeStatus {
    pub cert_index_size: u64,
    pub cached_downto: Seqno,
    pub send_queue_frames: u64,
    pub certify_latency: Percentiles,
}

/// A latency distribution's summary, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

/// The running shard threads.
pub struct Runtime {
    inbox: Sender<Command>,
    waker: Arc<sys::EventFd>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
    board: Arc<Board>,
}

impl Runtime {
    /// Starts the shard threads. Checks locked memory and io_uring first and says once
    /// which transport path will be used.
    pub fn start(config: RuntimeConfig, sink: Arc<dyn Sink>) -> Result<Runtime, RuntimeError> {
        let memlock = sys::raise_memlock();
        let uring = match config.transport {
            trireme_config::TransportChoice::Portable => {
                Err("forced by trireme.transport=portable".to_string())
            }
            _ => sys::probe_io_uring(),
        };
        match (&uring, memlock.budget_bytes()) {
            (Ok(()), Some(budget)) => log::info!(
                "io_uring available; locked-memory budget {} KiB (shared by every process of this user)",
                budget / 1024
            ),
            (Ok(()), None) => log::info!("io_uring available; locked memory not limited"),
            (Err(reason), _) => log::warn!("io_uring cannot be used ({reason}); using the portable path"),
        }
        let shard_count = config.shards.max(1);
        let waker = Arc::new(sys::EventFd::new().map_err(RuntimeError::EventFd)?);
        let board = Arc::new(Board::new(shard_count));
        let mut links = Vec::new();
        let mut threads = Vec::new();
        for index in 1..shard_count {
            let (link, handle) = shards::spawn(index, board.clone(), config.pin_core(index))
                .map_err(|source| RuntimeError::Spawn { index, source })?;
            links.push(link);
            threads.push(handle);
        }
        let (inbox, commands) = bounded(INBOX_CAPACITY);
        let core = config.pin_core(0);
        let (shard_config, shard_waker, shard_board, shard_inbox) =
            (config.clone(), waker.clone(), board.clone(), inbox.clone());
        // Built on its own thread: the transport it opens there is thread-bound (!Send).
        let thread = std::thread::Builder::new()
            .name("trireme-shard0".into())
            .spawn(move || {
                shard::Shard0::new(
                    shard_config,
                    sink,
                    commands,
                    shard_waker,
                    shard_board,
                    links,
                    shard_inbox,
                )
                .run(core)
            })
            .map_err(|source| RuntimeError::Spawn { index: 0, source })?;
        // Shard 0 first: it stops the others when it stops.
        threads.insert(0, thread);
        let pinned = match core {
            Some(core) => format!(", shard 0 pinned to core {core}"),
            None => String::new(),
        };
        log::info!("Started {shard_count} shard thread(s){pinned}");
        Ok(Runtime {
            inbox,
            waker,
            threads: std::sync::Mutex::new(threads),
            board,
        })
    }

    fn send(&self, command: Command) -> Result<(), RuntimeError> {
        self.inbox
            .send(command)
            .map_err(|_| RuntimeError::Stopped)?;
        self.waker.signal_if_sleeping();
        Ok(())
    }

    /// Enters the group; returns once the node is a member (bootstrap: at once).
    pub fn connect(&self, request: ConnectRequest) -> Result<(), RuntimeError> {
        let (reply, answer) = bounded(1);
        self.send(Command::Connect { request, reply })?;
        match answer.recv() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(RuntimeError::Connect(reason)),
            Err(_) => Err(RuntimeError::Stopped),
        }
    }

    /// Hands a local writeset to the group; the outcome arrives as `Delivered::Writeset`
    /// with `local: Some(token)` or `Delivered::ProposalFailed`.
    pub fn propose(&self, ws: Arc<Writeset>, token: Token) -> Result<(), RuntimeError> {
        let bytes = ws.encode().to_vec();
        self.send(Command::Propose { ws, bytes, token })
    }

    /// Asks for a causal read point; it arrives as `Delivered::ReadPoint`.
    pub fn read_point(&self, token: Token) -> Result<(), RuntimeError> {
        self.send(Command::ReadPoint { token })
    }

    /// Leaves the group; ends with `Delivered::Disconnected`.
    pub fn disconnect(&self) -> Result<(), RuntimeError> {
        self.send(Command::Disconnect)
    }

    /// This node's result for the writeset at `seqno` (an inconsistency vote; 0: applied).
    pub fn vote(&self, seqno: trireme_types::Seqno, code: u64) -> Result<(), RuntimeError> {
        self.send(Command::Control(trireme_group::ControlEntry::Vote {
            seqno,
            code,
        }))
    }

    /// Tells the group this node is synced (donor choice counts only synced members).
    pub fn member_synced(&self) -> Result<(), RuntimeError> {
        self.send(Command::Control(trireme_group::ControlEntry::Synced))
    }

    /// Tells the group this node left the synced state (desync, donor).
    pub fn member_desynced(&self) -> Result<(), RuntimeError> {
        self.send(Command::Control(trireme_group::ControlEntry::Desynced))
    }

    /// Flow control: asks every node to pause replicating (`stop`), or lifts this node's stop.
    /// `decision` numbers the caller's decisions in the order they were taken.
    pub fn flow_control(&self, decision: u64, stop: bool) -> Result<(), RuntimeError> {
        self.send(Command::Flow { decision, stop })
    }

    /// The donor's SST failed (`code`, a negative errno): every node hears it, and `joiner`
    /// stops waiting for state that will never come.
    pub fn transfer_failed(
        &self,
        joiner: trireme_types::NodeId,
        code: i32,
    ) -> Result<(), RuntimeError> {
        self.send(Command::Control(
            trireme_group::ControlEntry::TransferFailed { joiner, code },
        ))
    }

    /// A joiner asks for state transfer with MariaDB's request bytes.
    pub fn request_state(
        &self,
        sst_request: Vec<u8>,
        donor_names: Vec<String>,
        ist_from: Gtid,
    ) -> Result<(), RuntimeError> {
        self.send(Command::RequestState {
            sst_request,
            donor_names,
            ist_from,
        })
    }

    /// MariaDB's SST finished on this joiner (`sst_received`).
    pub fn state_received(&self, gtid: Gtid, rcode: i32) -> Result<(), RuntimeError> {
        self.send(Command::StateReceived { gtid, rcode })
    }

    /// `pc.bootstrap=YES`: make this (non-primary) component primary.
    /// `evs.evict=<uuid>`: orders the eviction of `node` (see `ControlEntry::Evict`).
    pub fn evict(&self, node: trireme_types::NodeId) -> Result<(), RuntimeError> {
        self.send(Command::Control(trireme_group::ControlEntry::Evict {
            node,
        }))
    }

    /// `evs.evict=` (empty): orders the evict list cleared.
    pub fn clear_evictions(&self) -> Result<(), RuntimeError> {
        self.send(Command::Control(
            trireme_group::ControlEntry::ClearEvictions,
        ))
    }

    /// `gmcast.isolate` (dynamic): see `Command::Isolate`.
    pub fn isolate(&self, level: u8) -> Result<(), RuntimeError> {
        self.send(Command::Isolate(level))
    }

    /// `evs.auto_evict` (dynamic): see [`Board::auto_evict`].
    pub fn set_auto_evict(&self, limit: u32) {
        self.board.auto_evict.store(limit, Ordering::Relaxed);
    }

    /// `pc.weight` (dynamic): see [`Board::weight`].
    pub fn set_weight(&self, weight: u8) {
        self.board.weight.store(weight, Ordering::Relaxed);
    }

    /// This node's weight in quorums as applied by the group (`None`: not a voter).
    pub fn applied_weight(&self) -> Option<u8> {
        u8::try_from(self.board.applied_weight.load(Ordering::Relaxed)).ok()
    }

    /// Whether this node is in the primary component now.
    pub fn is_primary(&self) -> bool {
        self.board.primary.load(Ordering::Relaxed)
    }

    /// `wsrep_cluster_weight`.
    pub fn cluster_weight(&self) -> i64 {
        self.board.cluster_weight.load(Ordering::Relaxed)
    }

    /// `wsrep_evs_evict_list`.
    pub fn evict_list(&self) -> String {
        self.board
            .evict_list
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    /// `pc.ignore_sb` (dynamic): see [`Board::ignore_split_brain`].
    pub fn set_ignore_split_brain(&self, on: bool) {
        self.board.ignore_split_brain.store(on, Ordering::Relaxed);
    }

    pub fn force_bootstrap(&self) -> Result<(), RuntimeError> {
        self.send(Command::ForceBootstrap)
    }

    pub fn status(&self) -> RuntimeStatus {
        RuntimeStatus {
            cert_index_size: self
                .board
                .slice_index_sizes
                .iter()
                .map(|s| s.load(Ordering::Relaxed))
                .sum(),
            cached_downto: self.board.cached_range().map_or(Seqno::UNDEFINED, |r| r.0),
            send_queue_frames: self.board.send_queue_frames.load(Ordering::Relaxed),
            certify_latency: {
                let h = self
                    .board
                    .certify_latency
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                Percentiles {
                    count: h.len(),
                    p50_ns: h.value_at_quantile(0.5),
                    p99_ns: h.value_at_quantile(0.99),
                    max_ns: h.max(),
                }
            },
        }
    }

    /// Stops and joins every shard thread (once; later calls do nothing).
    pub fn stop(&self) {
        let _ = self.send(Command::Stop);
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        for thread in threads {
            if thread.join().is_err() {
                log::error!("a shard thread ended with a panic");
            }
        }
    }
}

/// How long a parked shard sleeps when it has no timer due sooner.
pub(crate) const MAX_PARK: Duration = Duration::from_millis(100);
