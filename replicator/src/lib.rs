//! The provider engine behind every wsrep call.
//!
//! `ffi` turns each C call into a call on [`Replicator`] with safe types and turns the
//! [`Status`] back into `wsrep_status_t`; it holds no logic. This crate holds it all: the
//! local transaction path (`certify` and the commit order), the applier loop (`recv`), the
//! node state (Joiner, Synced, Donor...), pause/desync, TOI, the saved state file and the
//! status variables. Ordering, certification and the GCache run on the runtime's shard threads;
//! this crate reaches them only through [`trireme_runtime::Runtime`] and hears back through
//! its [`trireme_runtime::Sink`] implementation, in total order.
//!
//! Threads: every method runs on the MariaDB thread that called it. Callbacks into the server
//! ([`Server`]) are made only from `recv()` (appliers) and `replay_trx()` (the client), never
//! from a provider thread (contract §1.5).
//!
//! Module map: `trx` (local transactions, BF abort), `orders` (apply and commit order),
//! `queue` (applier work), `stats` (status variables), `grastate` (saved state), `status`
//! (answers and errors), `server` (the callback trait).

pub mod flow;
pub mod grastate;
pub mod orders;
pub mod queue;
pub mod server;
pub mod stats;
pub mod status;
pub mod trx;
pub mod vote;

use grastate::{SavedState, StateFile};
use orders::{Orders, WaitEnd};
use queue::{RecvQueue, Work};
use stats::{Counters, NodeFacts, StatValue};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use trireme_config::{Action, Change, InitContext, Options};
use trireme_runtime::{
    ConnectMode, ConnectRequest, Delivered, Runtime, RuntimeConfig, Sink, Token, Verdict,
};
use trireme_types::{
    key_hashes, Gtid, HistoryId, KeyType, MemberState, NodeId, Seqno, View, Writeset, WsFlags,
};
use trx::{AbortAnswer, Outcome, Phase, TrxRegistry};

pub use server::{ApplyOutcome, RecvCtx, Server, TrxMeta, WsHandle};
pub use status::{ProviderError, Status};
/// The peer filter the library installs from MariaDB's allowlist service.
pub use trireme_runtime::{set_peer_filter, PeerFilter};

/// Trireme's release, shown in `wsrep_provider_version`.
pub const TRIREME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The `wsrep_init_args` values, copied out of server memory.
#[derive(Clone, Debug)]
pub struct InitArgs {
    pub node_name: String,
    pub node_address: String,
    pub node_incoming: String,
    pub data_dir: String,
    pub options: String,
    pub proto_ver: i32,
    /// `wsrep_start_position` (from `--wsrep-recover`), or undefined.
    pub state_id: Gtid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Connection {
    Disconnected,
    Connected,
    Disconnecting,
}

/// Node-level state, guarded by one mutex; never held across a callback or a wait.
struct NodeState {
    connection: Connection,
    node_id: NodeId,
    history: HistoryId,
    member: MemberState,
    view: Option<View>,
    /// `connected_cb` already reported for this connection.
    connected_reported: bool,
    desync_count: i64,
    saved: SavedState,
    cluster_name: String,
    /// This node is donating state (between the donation and `sst_sent`).
    donating: bool,
    /// The donation holds the pause gate (SST copies the data, which must stay at the
    /// donation point; IST copies nothing and does not pause).
    donation_paused: bool,
    /// The joiner of the current donation, told if it fails.
    donee: Option<NodeId>,
    /// The donor names of `connect`, for the joiner's request.
    donor_names: Vec<String>,
    /// Where the data was at `connect` (grastate.dat or the server's start position): the
    /// first state transfer starts from here. The file says "unknown" once connected.
    join_position: Gtid,
}

/// The pause gate: while paused, ordered events are held here instead of being dispatched,
/// so nothing new applies, commits or finishes certification until `resume`.
struct Gate {
    pauses: u32,
    paused_at: Seqno,
    held: VecDeque<Delivered>,
    /// The highest seqno dispatched so far (the drain target of `pause`).
    dispatched: Seqno,
}

/// Everything the delivery side (shard thread) and the MariaDB threads share.
struct Shared {
    args: InitArgs,
    server: Arc<dyn Server>,
    options: Mutex<Options>,
    /// The commit order: a seqno leaves at `commit_order_leave` (or when skipped).
    orders: Orders,
    /// The apply order (Galera's apply monitor): a seqno leaves once everything about it is
    /// over. A remote writeset leaves when `apply_cb` returns: MariaDB releases the applier's
    /// metadata locks after `commit_order_leave`, inside the callback. A DDL (TOI) and a
    /// writeset that depends on a DDL wait on this order, not the commit order; otherwise
    /// they request a lock the earlier applier still holds ("MDL BF-BF conflict"). A causal
    /// read waits on it too: with the binary log on, `commit_order_leave` comes from the
    /// binlog group commit, before the storage engine's commit is visible. Local seqnos
    /// leave both orders at once (their client returns only after its commit is over).
    applied: Orders,
    trxs: TrxRegistry,
    queue: RecvQueue,
    gate: Mutex<Gate>,
    node: Mutex<NodeState>,
    counters: Counters,
    state_file: StateFile,
    /// Local TOI in progress per connection: its seqno, and whether it runs (it passed
    /// certification and waited its turn) or was only ordered.
    toi: Mutex<HashMap<u64, (Seqno, bool)>>,
    read_points: Mutex<HashMap<Token, Option<Result<Seqno, String>>>>,
    read_point_ready: Condvar,
    /// Inconsistency votes (`vote.rs`), and the failing appliers waiting for a decision.
    votes: Mutex<vote::VoteBook>,
    vote_decided: Condvar,
    /// This node lost a vote: its data differs from the cluster's. It leaves, and its saved
    /// position is unknown, so a restart brings it back by SST.
    inconsistent: AtomicBool,
    next_token: AtomicU64,
    appliers: AtomicUsize,
    /// Set right after the shard threads start (they need the shared state as their sink).
    runtime: OnceLock<Runtime>,
    /// A joiner's state transfer, watched by the applier that waits for it.
    transfer: Mutex<Transfer>,
    transfer_changed: Condvar,
    /// Views queued for the appliers and handed to the server: a rejoining node waits for
    /// all of them (views carry no seqno to wait on), and each view waits for its turn.
    views: Mutex<ViewTurns>,
    views_done: Condvar,
    flow: flow::FlowControl,
    /// The last exemption `flow_check` saw (desynced, donor, joiner).
    flow_exempt: std::sync::atomic::AtomicBool,
}

/// The effective flow-control settings: the options, or the tuning profile where the user
/// left them alone.
fn fc_settings(options: &Options) -> (u64, f64) {
    trireme_tuning::resolve(options)
        .map(|e| (e.fc_limit.0, e.fc_factor.0))
        .unwrap_or((options.fc_limit(), options.fc_factor()))
}

/// Where a joiner's state transfer stands.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Transfer {
    None,
    Waiting,
    Done,
    Failed(String),
}

/// The provider instance `init` creates and `free` destroys.
pub struct Replicator {
    shared: Arc<Shared>,
}

/// ECANCELED: what a donor reports when its server could not even start the SST.
const ECANCELED: i32 = 125;

/// How long the final view waits for what was delivered before it to commit.
const FINAL_DRAIN: Duration = Duration::from_secs(10);

/// How long an applier waits for the commits before a "synced" report before it queues the
/// report again and takes other work.
const SYNCED_RECHECK: Duration = Duration::from_millis(20);

/// Views handed out to the appliers (`issued`) and delivered to the server (`delivered`),
/// counted since the connection began.
#[derive(Default)]
struct ViewTurns {
    issued: u64,
    delivered: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Key prefix used for TOI pseudo-transactions in the registry, so they never collide with
/// server trx ids (which MariaDB allocates from 0 upwards).
const TOI_KEY: u64 = 1 << 63;

/// Tokens of proposals nobody waits for (rollback fragments): never a registry key, so their
/// delivery falls through to the appliers on this node too.
const UNAWAITED_TOKEN: u64 = 3 << 62;

impl Replicator {
    /// `init`: parse options, read the saved state, start the shard threads. Does not
    /// connect (contract §1.3).
    pub fn init(args: InitArgs, server: Arc<dyn Server>) -> Result<Replicator, ProviderError> {
        let ctx = InitContext {
            node_address: args.node_address.clone(),
            data_dir: args.data_dir.clone(),
            node_name: args.node_name.clone(),
        };
        let options = Options::from_init(&ctx, &args.options)?;
        let data_dir = PathBuf::from(&args.data_dir);
        let state_file = StateFile::in_dir(&data_dir);
        let saved = state_file
            .load()
            .map_err(|reason| ProviderError::StateFile {
                path: state_file.path().display().to_string(),
                reason,
            })?
            .unwrap_or(SavedState::EMPTY);
        log::info!(
            "Trireme {TRIREME_VERSION} initialising: node '{}' at {}, data dir {}, saved state {}",
            args.node_name,
            args.node_address,
            args.data_dir,
            saved.position
        );
        let runtime_config = RuntimeConfig::from_options(&options, &data_dir);
        let fc;
        let shared = Arc::new(Shared {
            args,
            server,
            options: {
                fc = fc_settings(&options);
                Mutex::new(options)
            },
            orders: Orders::new(saved.position.seqno),
            applied: Orders::new(saved.position.seqno),
            trxs: TrxRegistry::default(),
            queue: RecvQueue::default(),
            gate: Mutex::new(Gate {
                pauses: 0,
                paused_at: Seqno::UNDEFINED,
                held: VecDeque::new(),
                dispatched: Seqno::UNDEFINED,
            }),
            node: Mutex::new(NodeState {
                connection: Connection::Disconnected,
                node_id: NodeId::NIL,
                history: saved.position.history,
                member: MemberState::Initialized,
                view: None,
                connected_reported: false,
                desync_count: 0,
                saved,
                cluster_name: String::new(),
                donating: false,
                donation_paused: false,
                donee: None,
                donor_names: Vec::new(),
                join_position: Gtid::UNDEFINED,
            }),
            counters: Counters::default(),
            state_file,
            toi: Mutex::new(HashMap::new()),
            read_points: Mutex::new(HashMap::new()),
            read_point_ready: Condvar::new(),
            votes: Mutex::new(vote::VoteBook::default()),
            vote_decided: Condvar::new(),
            inconsistent: AtomicBool::new(false),
            next_token: AtomicU64::new(1),
            appliers: AtomicUsize::new(0),
            runtime: OnceLock::new(),
            transfer: Mutex::new(Transfer::None),
            transfer_changed: Condvar::new(),
            views: Mutex::new(ViewTurns::default()),
            views_done: Condvar::new(),
            flow: flow::FlowControl::new(fc.0, fc.1),
            flow_exempt: std::sync::atomic::AtomicBool::new(false),
        });
        let sink: Arc<dyn Sink> = shared.clone();
        let runtime = Runtime::start(runtime_config, sink)?;
        runtime.set_ignore_split_brain(shared.ignores_quorum());
        runtime.set_auto_evict(lock(&shared.options).evs_auto_evict());
        runtime.set_weight(lock(&shared.options).pc_weight());
        let _ = shared.runtime.set(runtime);
        Ok(Replicator { shared })
    }

    // ------------------------------------------------------------------------------------
    // Options

    /// As with Galera, `SET GLOBAL wsrep_provider_options='pc.weight=N'` returns once the
    /// primary component has the new weight (ordered, one unit per step), so that
    /// `wsrep_cluster_weight` read next shows it. Outside a primary component, or if the
    /// group takes longer than a few seconds, it returns anyway (the change goes on).
    fn wait_for_weight(&self, weight: u8) {
        let runtime = self.shared.runtime();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while runtime.applied_weight().is_some_and(|w| w != weight) {
            if !runtime.is_primary() {
                return;
            }
            if std::time::Instant::now() >= deadline {
                log::warn!(
                    "pc.weight={weight} not applied by the group within 5 s; it takes effect \
                     when the primary component orders it"
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn options_set(&self, text: &str) -> Result<(), ProviderError> {
        let changes = lock(&self.shared.options).set(text)?;
        for change in changes {
            match change {
                Change::Set { key, new, .. } => {
                    log::info!("Provider option changed: {key} = {new}");
                    self.shared.refresh_flow_limits();
                    let ignore = self.shared.ignores_quorum();
                    self.shared.runtime().set_ignore_split_brain(ignore);
                    let auto_evict = lock(&self.shared.options).evs_auto_evict();
                    self.shared.runtime().set_auto_evict(auto_evict);
                    let weight = lock(&self.shared.options).pc_weight();
                    self.shared.runtime().set_weight(weight);
                    if key == "pc.weight" {
                        self.wait_for_weight(weight);
                    }
                    if key == "gmcast.isolate" {
                        let level = lock(&self.shared.options).gmcast_isolate();
                        self.shared.runtime().isolate(level)?;
                    }
                }
                Change::Action(Action::Evict(node)) => {
                    if node == lock(&self.shared.node).node_id {
                        return Err(ProviderError::EvictSelf { node });
                    }
                    log::info!("evs.evict: asking the group to evict {node}");
                    self.shared.runtime().evict(node)?;
                }
                Change::Action(Action::ClearEvictions) => {
                    log::info!("evs.evict: asking the group to clear the evict list");
                    self.shared.runtime().clear_evictions()?;
                }
                Change::Action(Action::Bootstrap) => {
                    log::info!("pc.bootstrap requested: forming a primary component here");
                    self.shared.runtime().force_bootstrap()?;
                }
                Change::Action(action) => {
                    log::info!("Provider option action {action:?} accepted; it has no effect yet")
                }
            }
        }
        Ok(())
    }

    pub fn options_get(&self) -> String {
        lock(&self.shared.options).render()
    }

    // ------------------------------------------------------------------------------------
    // Connection life cycle

    /// `connect`: join or bootstrap the group. Returns once the node is in the group; the
    /// first view is delivered to the first applier that enters `recv()`.
    pub fn connect(
        &self,
        cluster_name: &str,
        url: &str,
        donor: &str,
        bootstrap: bool,
    ) -> Result<(), ProviderError> {
        let peers = parse_cluster_address(url)?;
        let bootstrap = bootstrap || peers.is_empty();
        let shared = &self.shared;
        let (request, position) = {
            let mut node = lock(&shared.node);
            if node.connection != Connection::Disconnected {
                return Err(ProviderError::AlreadyConnected);
            }
            let position = resolve_position(&node.saved, shared.args.state_id);
            if bootstrap && !node.saved.safe_to_bootstrap && !node.saved.position.history.is_nil() {
                return Err(ProviderError::UnsafeBootstrap);
            }
            node.node_id = NodeId::generate();
            node.connected_reported = false;
            node.member = MemberState::Initialized;
            node.view = None;
            node.cluster_name = cluster_name.to_string();
            node.donating = false;
            shared.inconsistent.store(false, Ordering::SeqCst);
            lock(&shared.votes).clear();
            node.donor_names = donor.split(',').map(str::trim).map(String::from).collect();
            let position = if bootstrap {
                if position.history.is_nil() || !position.seqno.is_defined() {
                    if !position.history.is_nil() {
                        log::warn!(
                            "Saved position {position} has no seqno; bootstrapping a new history. \
                             Run mariadbd --wsrep-recover first to keep the old one."
                        );
                    }
                    Gtid::new(HistoryId::generate(), Seqno::ZERO)
                } else {
                    position
                }
            } else {
                position
            };
            node.history = position.history;
            node.join_position = position;
            let mode = if bootstrap {
                log::info!("Bootstrapping a new primary component at {position}");
                ConnectMode::Bootstrap { position }
            } else {
                log::info!("Joining group at {} from {position}", peers.join(","));
                ConnectMode::Join {
                    peers,
                    position,
                    donor_names: donor.split(',').map(str::trim).map(String::from).collect(),
                }
            };
            let request = ConnectRequest {
                cluster_name: cluster_name.to_string(),
                node: node.node_id,
                node_name: shared.args.node_name.clone(),
                incoming: shared.args.node_incoming.clone(),
                mode,
            };
            (request, position)
        };
        shared.reset_orders(position.seqno);
        {
            let mut gate = lock(&shared.gate);
            gate.dispatched = position.seqno;
            gate.held.clear();
        }
        shared.queue.reopen();
        *lock(&shared.views) = ViewTurns::default();
        // While running, the file says "position unknown" (seqno -1): the database may be
        // ahead of it after a crash, and --wsrep-recover must be asked instead.
        shared.store_state(Gtid::new(position.history, Seqno::UNDEFINED), false)?;
        self.shared.runtime().connect(request)?;
        lock(&shared.node).connection = Connection::Connected;
        Ok(())
    }

    /// `disconnect`: leave the group. The final view reaches an applier, whose `recv`
    /// then returns; the others return too (contract §3.6).
    pub fn disconnect(&self) -> Result<(), ProviderError> {
        {
            let mut node = lock(&self.shared.node);
            match node.connection {
                Connection::Disconnected | Connection::Disconnecting => return Ok(()),
                Connection::Connected => node.connection = Connection::Disconnecting,
            }
        }
        log::info!("Disconnecting from the group");
        self.shared
            .trxs
            .fail_all_replicating("provider disconnecting");
        self.shared.runtime().disconnect()?;
        Ok(())
    }

    /// `recv`: the applier loop of one MariaDB applier thread.
    pub fn recv(&self, ctx: RecvCtx) -> Status {
        self.shared.appliers.fetch_add(1, Ordering::SeqCst);
        let status = self.shared.applier_loop(ctx);
        self.shared.appliers.fetch_sub(1, Ordering::SeqCst);
        status
    }

    // ------------------------------------------------------------------------------------
    // The local transaction path

    pub fn append_key(&self, handle: &mut WsHandle, parts: &[&[u8]], kind: KeyType) -> Status {
        let trx = self.shared.trxs.get_or_create(handle.trx_id);
        handle.opaque = WsHandle::LOCAL;
        let raw_len: usize = parts.iter().map(|p| p.len()).sum();
        let hashes = key_hashes(parts);
        let mut st = trx.lock();
        if st.phase == Phase::Executing || st.phase == Phase::Committed {
            st.phase = Phase::Executing;
        }
        st.add_key(&hashes, kind, raw_len);
        Status::Ok
    }

    pub fn append_data(&self, handle: &mut WsHandle, data: &[u8]) -> Status {
        let trx = self.shared.trxs.get_or_create(handle.trx_id);
        handle.opaque = WsHandle::LOCAL;
        let mut st = trx.lock();
        st.append_data(data);
        let limit = lock(&self.shared.options).max_ws_size_bytes();
        if st.data_len() as u64 > limit {
            // A note: the client gets the error; MTR (MDEV-26597) allows no warning here.
            log::info!(
                "Transaction size limit ({limit} bytes, repl.max_ws_size) exceeded by trx {}: {} bytes",
                handle.trx_id,
                st.data_len()
            );
            return Status::SizeExceeded;
        }
        Status::Ok
    }

    /// `certify`: replicate, order and certify the trx's writeset (contract §4.3).
    pub fn certify(
        &self,
        conn_id: u64,
        handle: &mut WsHandle,
        flags: u32,
        meta: &mut TrxMeta,
    ) -> Status {
        *meta = TrxMeta::UNDEFINED;
        let shared = &self.shared;
        if handle.opaque != WsHandle::LOCAL {
            return Status::Ok;
        }
        let Some(trx) = shared.trxs.get(handle.trx_id) else {
            return Status::Ok;
        };
        let (node_id, history, primary) = shared.identity();
        let ws = {
            let mut st = trx.lock();
            if st.must_abort {
                st.phase = Phase::Aborted;
                return Status::TrxFail;
            }
            if st.is_empty() && flags & WsFlags::ROLLBACK == 0 {
                // Nothing to replicate: Galera answers OK without ordering anything.
                return Status::Ok;
            }
            if !primary {
                return Status::ConnFail;
            }
            let limit = lock(&shared.options).max_ws_size_bytes();
            let (keys, data) = st.take_contents();
            let size = data.len() as u64 + 24 * keys.len() as u64;
            if size > limit {
                log::info!(
                    "Transaction size limit ({limit} bytes, repl.max_ws_size) exceeded by trx {}: {size} bytes",
                    handle.trx_id
                );
                st.phase = Phase::Aborted;
                return Status::SizeExceeded;
            }
            // A fragment after the first of a streaming trx must be applied after the earlier
            // ones (the server creates the trx's applier context with the first): certification
            // finds no dependency between fragments on different rows, so serialize them.
            let flags = if flags & WsFlags::TRX_START == 0 {
                flags | WsFlags::PA_UNSAFE
            } else {
                flags
            };
            let ws = Arc::new(Writeset {
                source: node_id,
                trx_id: handle.trx_id,
                conn_id,
                flags,
                last_seen: shared.orders.last_committed(),
                keys,
                data,
            });
            st.start_replicating();
            st.last_flags = flags;
            st.seqno = Seqno::UNDEFINED;
            st.writeset = Some(ws.clone());
            ws
        };
        if !shared.wait_flow(&|| trx.lock().must_abort) {
            let mut st = trx.lock();
            let aborted = st.must_abort;
            st.phase = Phase::Aborted;
            return if aborted {
                Status::TrxFail
            } else {
                Status::ConnFail
            };
        }
        shared.count_replicated(&ws);
        let started = std::time::Instant::now();
        if let Err(e) = self.shared.runtime().propose(ws.clone(), handle.trx_id) {
            log::warn!("Could not replicate trx {}: {e}", handle.trx_id);
            trx.lock().phase = Phase::Aborted;
            return Status::ConnFail;
        }
        let outcome = trx.wait_outcome();
        shared.counters.replicate_latency.record(started.elapsed());
        let mut st = trx.lock();
        match outcome {
            Outcome::Failed { reason } => {
                // The client gets the error (1047 or a retry); the node's state says why.
                log::info!("Trx {} was not ordered: {reason}", handle.trx_id);
                st.phase = Phase::Aborted;
                Status::ConnFail
            }
            Outcome::Ordered { seqno, verdict } => {
                st.seqno = seqno;
                *meta = TrxMeta {
                    gtid: Gtid::new(history, seqno),
                    source: node_id,
                    trx_id: handle.trx_id,
                    conn_id,
                    depends_on: Seqno::UNDEFINED,
                };
                match verdict {
                    Verdict::Conflict { .. } => {
                        st.phase = Phase::Aborted;
                        Counters::add(&shared.counters.local_cert_failures, 1);
                        Status::TrxFail
                    }
                    Verdict::Pass { depends_on } => {
                        st.depends_on = depends_on;
                        meta.depends_on = depends_on;
                        st.phase = Phase::Certified;
                        if st.must_abort {
                            Status::BfAbort
                        } else {
                            Status::Ok
                        }
                    }
                }
            }
        }
    }

    /// `commit_order_enter`: block until it is this seqno's turn to commit.
    pub fn commit_order_enter(&self, handle: &WsHandle, meta: &TrxMeta) -> Status {
        let seqno = meta.gtid.seqno;
        if !seqno.is_defined() {
            return Status::Ok;
        }
        let orders = &self.shared.orders;
        if handle.opaque == WsHandle::LOCAL {
            if let Some(trx) = self.shared.trxs.get(handle.trx_id) {
                let interruptible = {
                    let st = trx.lock();
                    if st.phase == Phase::Certified && st.must_abort {
                        return Status::BfAbort;
                    }
                    st.phase == Phase::Certified
                };
                let interrupt = || interruptible && trx.must_abort();
                let started = std::time::Instant::now();
                let waited = orders.wait_commit_turn(seqno, &interrupt);
                self.shared
                    .counters
                    .commit_wait_latency
                    .record(started.elapsed());
                match waited {
                    Ok(()) => {}
                    Err(WaitEnd::Interrupted) => return Status::BfAbort,
                    Err(_) => return Status::ConnFail,
                }
                let mut st = trx.lock();
                if st.phase == Phase::Certified {
                    st.phase = Phase::Committing;
                }
                return Status::Ok;
            }
        }
        match orders.wait_commit_turn(seqno, &|| false) {
            Ok(()) => Status::Ok,
            Err(_) => Status::ConnFail,
        }
    }

    /// `commit_order_leave`: the commit of `meta.gtid.seqno` is done (or skipped).
    pub fn commit_order_leave(&self, handle: &WsHandle, meta: &TrxMeta, error: &[u8]) -> Status {
        let seqno = meta.gtid.seqno;
        if !seqno.is_defined() {
            return Status::Ok;
        }
        if !error.is_empty() && error.iter().any(|b| *b != 0) {
            // MariaDB reports a failed apply here (its apply callback then returns success):
            // this is where Galera 4 votes, holding the commit order until the cluster has
            // decided.
            if handle.opaque == WsHandle::APPLIED {
                self.shared.vote_failed(
                    seqno,
                    vote::error_code(error),
                    &format!(
                        "trx_id: {}: {}",
                        handle.trx_id,
                        status::Printable(error).to_string().trim()
                    ),
                );
            } else {
                log::warn!(
                    "Commit of seqno {seqno} reported an error: {}",
                    status::Printable(error)
                );
            }
        }
        if handle.opaque == WsHandle::LOCAL {
            if let Some(trx) = self.shared.trxs.get(handle.trx_id) {
                let mut st = trx.lock();
                if matches!(st.phase, Phase::Committing | Phase::Replaying) {
                    st.phase = Phase::Committed;
                    Counters::add(&self.shared.counters.local_commits, 1);
                }
            }
        }
        let counters = &self.shared.counters;
        Counters::record_window(
            &counters.commit_window_sum,
            &counters.commit_window_count,
            seqno.0,
            self.shared.orders.last_committed().0,
        );
        self.shared.orders.leave(seqno);
        if handle.opaque != WsHandle::APPLIED {
            // A remote writeset leaves the apply order when apply_cb returns (`apply_one`).
            self.shared.applied.leave(seqno);
        }
        Status::Ok
    }

    /// `release`: drop the trx state; a seqno that never left the commit order leaves now
    /// (contract gotcha 11: an ordered-but-failed seqno must not block later commits).
    pub fn release(&self, handle: &mut WsHandle) -> Status {
        if handle.opaque != WsHandle::LOCAL {
            return Status::Ok;
        }
        let shared = &self.shared;
        let Some(trx) = shared.trxs.get(handle.trx_id) else {
            handle.opaque = 0;
            return Status::Ok;
        };
        let mut st = trx.lock();
        if st.seqno.is_defined() {
            shared.leave_both(st.seqno);
        }
        let fragment_continues = st.last_flags & WsFlags::TRX_END == 0
            && st.last_flags & WsFlags::ROLLBACK == 0
            && st.phase == Phase::Committed
            && !st.must_abort;
        if fragment_continues {
            // Streaming replication: the trx goes on with its next fragment.
            st.phase = Phase::Executing;
            st.seqno = Seqno::UNDEFINED;
            return Status::Ok;
        }
        drop(st);
        shared.trxs.remove(handle.trx_id);
        handle.opaque = 0;
        Status::Ok
    }

    /// `replay_trx`: re-apply a BF-aborted, already certified local trx on its client thread.
    /// Answers only OK or TRX_FAIL: anything else makes MariaDB abort (contract §4.6).
    pub fn replay_trx(&self, handle: &WsHandle, ctx: RecvCtx) -> Status {
        let shared = &self.shared;
        let Some(trx) = shared.trxs.get(handle.trx_id) else {
            return Status::TrxFail;
        };
        let (ws, seqno, depends_on) = {
            let mut st = trx.lock();
            let Some(ws) = st.writeset.clone() else {
                return Status::TrxFail;
            };
            if !st.seqno.is_defined() || st.phase == Phase::Aborted {
                return Status::TrxFail;
            }
            st.phase = Phase::Replaying;
            st.must_abort = false;
            (ws, st.seqno, st.depends_on)
        };
        Counters::add(&shared.counters.local_replays, 1);
        if shared
            .applied
            .wait_committed(depends_on, None, &|| false)
            .is_err()
        {
            return Status::TrxFail;
        }
        let (node_id, history, _) = shared.identity();
        let meta = TrxMeta {
            gtid: Gtid::new(history, seqno),
            source: node_id,
            trx_id: ws.trx_id,
            conn_id: ws.conn_id,
            depends_on,
        };
        let handle = WsHandle {
            trx_id: handle.trx_id,
            opaque: WsHandle::LOCAL,
        };
        let outcome = shared
            .server
            .apply(ctx, handle, ws.flags(), &ws.data, &meta);
        shared.leave_both(seqno);
        if outcome.ok {
            Status::Ok
        } else {
            log::error!("Replay of trx {} (seqno {seqno}) failed", ws.trx_id);
            Status::TrxFail
        }
    }

    /// `abort_certification` (contract §4.5): always answers with a victim seqno.
    pub fn abort_certification(&self, bf_seqno: Seqno, victim_trx: u64) -> (Status, Seqno) {
        let Some(trx) = self.shared.trxs.get(victim_trx) else {
            return (Status::Ok, Seqno::UNDEFINED);
        };
        let answer = trx::bf_abort(&trx, bf_seqno);
        self.shared.orders.poke();
        match answer {
            AbortAnswer::Aborted { victim_seqno } => (Status::Ok, victim_seqno),
            AbortAnswer::NotAllowed { victim_seqno } => (Status::NotAllowed, victim_seqno),
        }
    }

    /// `rollback`: replicate a rollback fragment for a streaming trx.
    pub fn rollback(&self, trx_id: u64) -> Status {
        let shared = &self.shared;
        let (node_id, _, primary) = shared.identity();
        if !primary {
            return Status::ConnFail;
        }
        let conn_id = match shared.trxs.get(trx_id) {
            Some(trx) => trx.lock().writeset.as_ref().map_or(0, |ws| ws.conn_id),
            None => 0,
        };
        // The rollback fragment is applied on every node, this one included: wsrep-lib turns
        // the rolled-back client into a streaming applier that removes the fragments when it
        // applies this (as with Galera). So it is not awaited as a local proposal.
        let ws = Arc::new(Writeset {
            source: node_id,
            trx_id,
            conn_id,
            flags: WsFlags::ROLLBACK | WsFlags::PA_UNSAFE,
            last_seen: shared.orders.last_committed(),
            keys: Vec::new(),
            data: Vec::new(),
        });
        shared.count_replicated(&ws);
        let token = UNAWAITED_TOKEN | shared.next_token.fetch_add(1, Ordering::Relaxed);
        match shared.runtime().propose(ws, token) {
            Ok(()) => Status::Ok,
            Err(e) => {
                log::warn!("Could not replicate the rollback of trx {trx_id}: {e}");
                Status::ConnFail
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Total order isolation

    /// `to_execute_start`: replicate a DDL and hold the total order until `to_execute_end`.
    pub fn to_execute_start(
        &self,
        conn_id: u64,
        keys: &[Vec<&[u8]>],
        action: &[u8],
        flags: u32,
        meta: &mut TrxMeta,
    ) -> Status {
        *meta = TrxMeta::UNDEFINED;
        let shared = &self.shared;
        let (node_id, history, primary) = shared.identity();
        if !primary {
            return Status::ConnFail;
        }
        let key = TOI_KEY | conn_id;
        let trx = shared.trxs.get_or_create(key);
        let ws = {
            let mut st = trx.lock();
            for parts in keys {
                st.add_key(&key_hashes(parts), KeyType::Exclusive, 0);
            }
            if keys.is_empty() {
                // A server-level action (no keys) isolates against everything.
                st.add_key(&key_hashes(&[]), KeyType::Exclusive, 0);
            }
            let (keys, _) = st.take_contents();
            st.start_replicating();
            Arc::new(Writeset {
                source: node_id,
                trx_id: u64::MAX,
                conn_id,
                flags: flags | WsFlags::ISOLATION,
                last_seen: shared.orders.last_committed(),
                keys,
                data: action.to_vec(),
            })
        };
        if !shared.wait_flow(&|| false) {
            shared.trxs.remove(key);
            return Status::ConnFail;
        }
        shared.count_replicated(&ws);
        if let Err(e) = self.shared.runtime().propose(ws, key) {
            log::warn!("Could not replicate TOI action of connection {conn_id}: {e}");
            shared.trxs.remove(key);
            return Status::ConnFail;
        }
        let outcome = trx.wait_outcome();
        shared.trxs.remove(key);
        match outcome {
            Outcome::Failed { reason } => {
                log::warn!("TOI action of connection {conn_id} was not ordered: {reason}");
                Status::ConnFail
            }
            Outcome::Ordered { seqno, verdict } => {
                *meta = TrxMeta {
                    gtid: Gtid::new(history, seqno),
                    source: node_id,
                    trx_id: u64::MAX,
                    conn_id,
                    depends_on: seqno.prev(),
                };
                if let Verdict::Conflict { .. } = verdict {
                    // meta stays defined: wsrep-lib calls to_execute_end to release it.
                    lock(&shared.toi).insert(conn_id, (seqno, false));
                    return Status::TrxFail;
                }
                // Isolation: every earlier writeset is over, its appliers' locks released
                // (the apply order), before the DDL runs.
                let isolated = shared
                    .applied
                    .wait_committed(seqno.prev(), None, &|| false)
                    .and_then(|()| shared.orders.wait_commit_turn(seqno, &|| false));
                lock(&shared.toi).insert(conn_id, (seqno, isolated.is_ok()));
                match isolated {
                    Ok(()) => Status::Ok,
                    Err(_) => Status::ConnFail,
                }
            }
        }
    }

    /// `to_execute_end`: the DDL is done; let the order move on.
    pub fn to_execute_end(&self, conn_id: u64, error: &[u8]) -> Status {
        let Some((seqno, ran)) = lock(&self.shared.toi).remove(&conn_id) else {
            return Status::Ok;
        };
        if ran && !error.is_empty() && error.iter().any(|b| *b != 0) {
            // Every node runs this DDL: its result is voted on like an applier's, so that a
            // DDL that fails everywhere alike keeps everybody, and one that failed only here
            // makes this node leave (Galera 4 votes here too). Cast before the seqno leaves,
            // so this node never answers a vote on it with "success".
            let text = status::Printable(error).to_string();
            let code = vote::error_code(error);
            let history = lock(&self.shared.node).history;
            log::info!(
                "TOI action {history}:{seqno} failed locally ({}); voting on it with the \
                 cluster (code {code:#x})",
                text.trim()
            );
            if lock(&self.shared.votes).cast(seqno, code) {
                if let Err(e) = self.shared.runtime().vote(seqno, code) {
                    log::warn!("Could not vote on seqno {seqno}: {e}");
                }
            }
        }
        self.shared.leave_both(seqno);
        Status::Ok
    }

    // ------------------------------------------------------------------------------------
    // Causal reads and positions

    /// `sync_wait` (contract §5.6). `upto = None` establishes a cluster-wide causal point.
    pub fn sync_wait(&self, upto: Option<Gtid>, timeout: Option<Duration>) -> Result<Gtid, Status> {
        let shared = &self.shared;
        let timeout = timeout.unwrap_or_else(|| lock(&shared.options).causal_read_timeout());
        let target = match upto {
            Some(gtid) => gtid.seqno,
            None => {
                let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
                lock(&shared.read_points).insert(token, None);
                if let Err(e) = self.shared.runtime().read_point(token) {
                    lock(&shared.read_points).remove(&token);
                    log::debug!("causal read point refused: {e}");
                    return Err(Status::ConnFail);
                }
                let point = shared.wait_read_point(token, timeout);
                Counters::add(&shared.counters.causal_reads, 1);
                match point {
                    Some(Ok(seqno)) => seqno,
                    Some(Err(reason)) => {
                        log::debug!("causal read point failed: {reason}");
                        return Err(Status::ConnFail);
                    }
                    None => return Err(Status::TrxFail),
                }
            }
        };
        match shared
            .applied
            .wait_committed(target, Some(timeout), &|| false)
        {
            Ok(()) => Ok(self.last_committed_id()),
            Err(_) => Err(Status::TrxFail),
        }
    }

    pub fn last_committed_id(&self) -> Gtid {
        let history = lock(&self.shared.node).history;
        Gtid::new(history, self.shared.orders.last_committed())
    }

    // ------------------------------------------------------------------------------------
    // State transfer

    /// `sst_sent`: the donor script finished. The donation pause ends; the node is back to
    /// Joined, and Synced once its applier has caught up.
    pub fn sst_sent(&self, gtid: Gtid, rcode: i32) -> Status {
        if rcode < 0 {
            log::warn!("State transfer to the joiner failed ({rcode}) at {gtid}");
        } else {
            log::info!("State transfer to the joiner complete at {gtid}");
        }
        let (donating, donee) = {
            let mut node = lock(&self.shared.node);
            (
                std::mem::replace(&mut node.donating, false),
                node.donee.take(),
            )
        };
        if rcode < 0 {
            if let Some(joiner) = donee {
                self.shared.tell_transfer_failed(joiner, rcode);
            }
        }
        if donating {
            self.shared.release_donation_pause();
        }
        Status::Ok
    }

    /// `sst_received`: MariaDB's SST finished on this joiner; the provider completes the
    /// transfer (certification index, held events) on its side.
    pub fn sst_received(&self, gtid: Gtid, rcode: i32) -> Status {
        log::info!("SST received: {gtid} ({rcode})");
        match self.shared.runtime().state_received(gtid, rcode) {
            Ok(()) => Status::Ok,
            Err(e) => {
                log::error!("sst_received: {e}");
                Status::NodeFail
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Pause, desync

    /// `pause`: nothing new applies, commits or certifies until `resume`; returns the
    /// position everything before has committed to (the SST / FTWRL position).
    pub fn pause(&self) -> Result<Seqno, Status> {
        let target = {
            let mut gate = lock(&self.shared.gate);
            if gate.pauses == 0 {
                gate.paused_at = gate.dispatched;
            }
            gate.pauses += 1;
            gate.paused_at
        };
        match self.shared.applied.wait_committed(target, None, &|| false) {
            Ok(()) => {
                log::info!("Provider paused at {target}");
                Ok(target)
            }
            Err(_) => {
                self.resume();
                Err(Status::NodeFail)
            }
        }
    }

    pub fn resume(&self) -> Status {
        let mut gate = lock(&self.shared.gate);
        if gate.pauses == 0 {
            return Status::Ok;
        }
        gate.pauses -= 1;
        if gate.pauses == 0 {
            log::info!("Provider resumed");
            while let Some(event) = gate.held.pop_front() {
                self.shared.dispatch(&mut gate, event);
            }
            // A desynced node (FLUSH TABLES WITH READ LOCK desyncs) drains what it held
            // until it reports synced again.
            if lock(&self.shared.node).member != MemberState::Synced {
                self.shared.flow.begin_catch_up(self.shared.queue.len());
            }
        }
        Status::Ok
    }

    pub fn desync(&self) -> Status {
        let mut node = lock(&self.shared.node);
        node.desync_count += 1;
        if node.member == MemberState::Synced || node.member == MemberState::Joined {
            node.member = MemberState::Donor;
            drop(node);
            // A desynced node is no donor candidate (the group's choice is deterministic).
            let _ = self.shared.runtime().member_desynced();
        }
        Status::Ok
    }

    pub fn resync(&self) -> Status {
        let mut node = lock(&self.shared.node);
        if node.desync_count > 0 {
            node.desync_count -= 1;
        }
        if node.desync_count == 0 && node.member == MemberState::Donor {
            node.member = MemberState::Joined;
            drop(node);
            // synced_cb must come from an applier thread.
            let upto = lock(&self.shared.gate).dispatched;
            self.shared.queue.push(Work::Synced(upto));
        }
        Status::Ok
    }

    // ------------------------------------------------------------------------------------
    // Status

    pub fn stats(&self) -> Vec<(&'static str, StatValue)> {
        let shared = &self.shared;
        let facts = {
            let node = lock(&shared.node);
            let incoming = match &node.view {
                Some(view) => view
                    .members
                    .iter()
                    .map(|m| m.incoming.clone())
                    .collect::<Vec<_>>()
                    .join(","),
                None => String::new(),
            };
            NodeFacts {
                history_uuid: node.history.to_string(),
                last_committed: shared.orders.last_committed().0,
                local_state: node.member as i64,
                local_state_comment: node.member.comment().to_string(),
                incoming_addresses: incoming,
                desync_count: node.desync_count,
                gcomm_uuid: node.node_id.to_string(),
                evs_state: match node.connection {
                    Connection::Connected => "OPERATIONAL".into(),
                    _ => "CLOSED".into(),
                },
                segment: i64::from(lock(&shared.options).segment()),
                open_connections: 0,
                flow: shared.flow.stats(),
                evict_list: shared
                    .runtime
                    .get()
                    .map(|r| r.evict_list())
                    .unwrap_or_default(),
                // 0 outside a primary component, as Galera shows it, from the moment the
                // status says non-Primary.
                cluster_weight: match &node.view {
                    Some(v) if v.is_primary() => {
                        shared.runtime.get().map_or(0, |r| r.cluster_weight())
                    }
                    _ => 0,
                },
            }
        };
        shared
            .counters
            .open_transactions
            .store(shared.trxs.len() as i64, Ordering::Relaxed);
        let status = self.shared.runtime().status();
        shared
            .counters
            .cert_index_size
            .store(status.cert_index_size, Ordering::Relaxed);
        shared
            .counters
            .cached_downto
            .store(status.cached_downto.0, Ordering::Relaxed);
        shared
            .counters
            .send_queue
            .set(status.send_queue_frames as usize);
        let mut list = stats::collect(&shared.counters, &facts);
        if lock(&shared.options).extended_status() {
            let c = status.certify_latency;
            let certify = stats::LatencySummary {
                count: c.count,
                p50_ns: c.p50_ns,
                p99_ns: c.p99_ns,
                max_ns: c.max_ns,
                ..Default::default()
            };
            list.extend(stats::extended(&shared.counters, certify));
        }
        list
    }

    pub fn stats_reset(&self) {
        self.shared.counters.reset();
        self.shared.flow.reset_window();
    }

    /// The node's own id for this connection (`wsrep_gcomm_uuid`).
    pub fn node_id(&self) -> NodeId {
        lock(&self.shared.node).node_id
    }

    /// Destroys the instance: stops the shard threads and records the final position if the
    /// server did not disconnect first.
    pub fn shutdown(self) {
        let connected = lock(&self.shared.node).connection != Connection::Disconnected;
        if connected {
            let _ = self.disconnect();
        }
        self.shared.runtime().stop();
        if connected {
            let _ = self.shared.store_final_state();
        }
        log::info!("Trireme provider released");
    }
}

impl Shared {
    fn runtime(&self) -> &Runtime {
        self.runtime
            .get()
            .expect("the runtime is set in init, before any other call")
    }

    /// (node id, history, primary?)
    fn identity(&self) -> (NodeId, HistoryId, bool) {
        let node = lock(&self.node);
        let primary = node.connection == Connection::Connected
            && node.view.as_ref().is_some_and(View::is_primary);
        (node.node_id, node.history, primary)
    }

    fn count_replicated(&self, ws: &Writeset) {
        let c = &self.counters;
        Counters::add(&c.replicated, 1);
        Counters::add(
            &c.replicated_bytes,
            (ws.data.len() + 24 * ws.keys.len() + 64) as u64,
        );
        Counters::add(&c.repl_keys, ws.keys.len() as u64);
        Counters::add(&c.repl_keys_bytes, 24 * ws.keys.len() as u64);
        Counters::add(&c.repl_data_bytes, ws.data.len() as u64);
    }

    /// Flow control after the receive queue changed: send a stop or a resume when due. The
    /// node lock is only tried (this runs under the gate lock); when it is busy the last known
    /// exemption stands. The check itself must never be skipped: a resume missed on the last
    /// pop would leave the whole cluster paused with nothing left to trigger another.
    fn flow_check(&self) {
        let exempt = match self.node.try_lock() {
            Ok(node) => {
                let exempt = node.desync_count > 0
                    || node.donating
                    || matches!(node.member, MemberState::Donor | MemberState::Joiner);
                self.flow_exempt.store(exempt, Ordering::Relaxed);
                exempt
            }
            Err(_) => self.flow_exempt.load(Ordering::Relaxed),
        };
        if let Some((decision, stop)) = self.flow.on_queue(&|| self.queue.len(), exempt) {
            if let Some(runtime) = self.runtime.get() {
                if let Err(e) = runtime.flow_control(decision, stop) {
                    log::warn!("flow control message not sent: {e}");
                }
            }
        }
    }

    /// `seqno` is over: it leaves the commit order (if still in it) and the apply order.
    fn leave_both(&self, seqno: Seqno) {
        // `leave` is idempotent: a seqno that already left either order is ignored.
        self.orders.leave(seqno);
        self.applied.leave(seqno);
    }

    fn reset_orders(&self, position: Seqno) {
        self.orders.reset(position);
        self.applied.reset(position);
    }

    /// `pc.ignore_sb` or `pc.ignore_quorum`: Trireme re-forms a primary component of the
    /// members left on any loss of quorum, which serves both (an even split is one case).
    fn ignores_quorum(&self) -> bool {
        let options = lock(&self.options);
        options.pc_ignore_sb() || options.pc_ignore_quorum()
    }

    fn refresh_flow_limits(&self) {
        let members = lock(&self.node)
            .view
            .as_ref()
            .map_or(1, |v| v.members.len());
        let (limit, factor) = fc_settings(&lock(&self.options));
        self.flow.set_limits(limit, factor, members);
    }

    /// Holds a local writeset while flow control pauses replication; `false` if the wait was
    /// abandoned because the node left the primary component or `abandon` said so.
    fn wait_flow(&self, abandon: &dyn Fn() -> bool) -> bool {
        self.flow.wait_resumed(Duration::from_millis(100), &|| {
            // While writers wait, the checks are repeated: a missed one must not leave the
            // cluster paused with no queue change left to trigger it.
            self.flow_check();
            let (me, _, primary) = self.identity();
            if let (Some(decision), Some(runtime)) = (self.flow.owed_resume(me), self.runtime.get())
            {
                log::warn!("flow control: this node's stop was in force unasked; lifting it");
                if let Err(e) = runtime.flow_control(decision, false) {
                    log::warn!("flow control message not sent: {e}");
                }
            }
            !primary || abandon()
        })
    }

    fn store_state(&self, position: Gtid, safe_to_bootstrap: bool) -> Result<(), ProviderError> {
        let state = SavedState {
            position,
            safe_to_bootstrap,
        };
        self.state_file
            .store(&state)
            .map_err(|reason| ProviderError::StateFile {
                path: self.state_file.path().display().to_string(),
                reason,
            })?;
        lock(&self.node).saved = state;
        Ok(())
    }

    /// Clean shutdown: the real position, and "safe to bootstrap" if this node was the last
    /// member of the primary component (Galera's rule).
    fn store_final_state(&self) -> Result<(), ProviderError> {
        let (history, safe) = {
            let node = lock(&self.node);
            let alone = node
                .view
                .as_ref()
                .is_some_and(|v| v.is_primary() && v.members.len() == 1);
            (node.history, alone || node.saved.safe_to_bootstrap)
        };
        let inconsistent = self.inconsistent.load(Ordering::SeqCst);
        let (position, safe) = if inconsistent {
            // Its data cannot be trusted at any seqno: only SST can bring it back.
            (Gtid::new(history, Seqno::UNDEFINED), false)
        } else {
            (Gtid::new(history, self.orders.last_committed()), safe)
        };
        log::info!(
            "Saving state {position}, safe_to_bootstrap {}",
            u8::from(safe)
        );
        self.store_state(position, safe)
    }

    fn wait_read_point(&self, token: Token, timeout: Duration) -> Option<Result<Seqno, String>> {
        let deadline = std::time::Instant::now() + timeout;
        let mut points = lock(&self.read_points);
        loop {
            if let Some(Some(result)) = points.get(&token) {
                let result = result.clone();
                points.remove(&token);
                return Some(result);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                points.remove(&token);
                return None;
            }
            points = self
                .read_point_ready
                .wait_timeout(points, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Hands a local writeset's outcome to its waiting transaction; false if none takes it
    /// (then it is applied like a remote one).
    fn take_local_outcome(
        &self,
        gate: &mut Gate,
        seqno: Seqno,
        ws: &Writeset,
        verdict: Verdict,
        token: Token,
    ) -> bool {
        let taken = self
            .trxs
            .get(token)
            .is_some_and(|trx| trx.complete(Outcome::Ordered { seqno, verdict }));
        if taken {
            gate.dispatched = gate.dispatched.max(seqno);
            self.record_cert(seqno, ws, verdict);
        }
        taken
    }

    fn record_cert(&self, seqno: Seqno, ws: &Writeset, verdict: Verdict) {
        let depends_on = match verdict {
            Verdict::Pass { depends_on } => depends_on,
            Verdict::Conflict { .. } => Seqno::UNDEFINED,
        };
        self.counters
            .record_cert(seqno.0, ws.last_seen.0, depends_on.0);
    }

    /// Routes one delivered event (called with the gate held, in total order).
    fn dispatch(&self, gate: &mut Gate, event: Delivered) {
        match event {
            Delivered::Writeset {
                seqno,
                ws,
                verdict,
                local,
            } => {
                gate.dispatched = gate.dispatched.max(seqno);
                if local.is_none() && seqno <= self.orders.last_committed() {
                    // Already in the data: an SST locked its donor past the donation point
                    // (the joiner's stream of events starts there). Certified, not applied.
                    return;
                }
                if let Some(token) = local {
                    if self.take_local_outcome(gate, seqno, &ws, verdict, token) {
                        return;
                    }
                }
                self.record_cert(seqno, &ws, verdict);
                Counters::add(&self.counters.received, 1);
                Counters::add(&self.counters.received_bytes, ws.data.len() as u64);
                match verdict {
                    Verdict::Pass { depends_on } => {
                        let len = self.queue.push(Work::Apply {
                            seqno,
                            ws,
                            depends_on,
                        });
                        self.counters.recv_queue.set(len);
                        self.flow_check();
                    }
                    // A writeset that failed certification is skipped by every node alike;
                    // it leaves the order at once so later commits do not wait for it.
                    Verdict::Conflict { .. } => {
                        self.leave_both(seqno);
                    }
                }
            }
            Delivered::View(view) => {
                if view.is_primary() {
                    gate.dispatched = gate.dispatched.max(view.seqno);
                    self.flow.clear();
                    let (limit, factor) = fc_settings(&lock(&self.options));
                    self.flow.set_limits(limit, factor, view.members.len());
                    // A member that left is no longer waited for.
                    self.settle_votes(Some(view.members.iter().map(|m| m.id).collect()));
                }
                let ticket = {
                    let mut turns = lock(&self.views);
                    turns.issued += 1;
                    turns.issued - 1
                };
                self.queue.push(Work::View { view, ticket });
            }
            Delivered::FlowControl { node, stop } => self.flow.on_message(node, stop),
            Delivered::Vote { node, seqno, code } => {
                let me = lock(&self.node).node_id;
                let answer = {
                    let mut book = lock(&self.votes);
                    book.record(node, seqno, code);
                    node != me && !book.has_voted(seqno)
                };
                if answer {
                    self.queue.push(Work::Vote(seqno));
                }
                self.settle_votes(None);
            }
            Delivered::Joined { view, start } => {
                self.queue.push(Work::Joined {
                    view,
                    start,
                    settled_at: gate.dispatched,
                });
            }
            Delivered::ProposalFailed { token, reason } => {
                if let Some(trx) = self.trxs.get(token) {
                    let _ = trx.complete(Outcome::Failed { reason });
                }
            }
            Delivered::ReadPoint { token, seqno } => {
                let mut points = lock(&self.read_points);
                if let Some(slot) = points.get_mut(&token) {
                    *slot = Some(Ok(seqno));
                    self.read_point_ready.notify_all();
                }
            }
            Delivered::ReadPointFailed { token } => {
                let mut points = lock(&self.read_points);
                if let Some(slot) = points.get_mut(&token) {
                    *slot = Some(Err(
                        "no causal read point outside a primary component".into()
                    ));
                    self.read_point_ready.notify_all();
                }
            }
            Delivered::DonateState {
                joiner,
                request,
                ist_from,
                position,
                bypass,
            } => {
                // IST: the stream already left (GCache and index at `position`); the data is
                // not copied, so nothing pauses.
                // SST by rsync or mariabackup: the script locks the server itself (FLUSH
                // TABLES WITH READ LOCK, BACKUP STAGE: our `pause`) and reports the position
                // it locked at, at or after `position`; the joiner starts from there. So
                // nothing pauses here either, as with Galera. A pause here held the ordering
                // of this node's own writesets: their clients kept row locks an earlier
                // applier waited for, and MariaDB's FLUSH TABLES WITH READ LOCK waited for
                // those clients (a donor under write load never donated).
                // Other methods (mysqldump) copy a running server at the position they are
                // given: the donor stops here, at exactly `position`, until `sst_sent`.
                let paused = !bypass && !sst_locks_the_server(&request);
                if paused {
                    if gate.pauses == 0 {
                        gate.paused_at = gate.dispatched;
                    }
                    gate.pauses += 1;
                }
                {
                    let mut node = lock(&self.node);
                    node.donating = true;
                    node.donation_paused = paused;
                }
                self.queue.push(Work::Donate {
                    joiner,
                    request,
                    ist_from,
                    position,
                    bypass,
                });
            }
            Delivered::StateReady { position, view } => {
                if let Some(v) = &view {
                    self.settle_votes(Some(v.members.iter().map(|m| m.id).collect()));
                }
                self.flow.clear();
                self.reset_orders(position.seqno);
                gate.dispatched = position.seqno;
                {
                    let mut node = lock(&self.node);
                    node.history = position.history;
                    if view.is_some() {
                        node.view = view;
                    }
                    // Still Joiner while what IST brought is handed to the queue (as in
                    // Galera); Joined at `CaughtUp`.
                }
                self.set_transfer(Transfer::Done);
                // The data now belongs to this history; its exact seqno is known again only
                // at a clean shutdown.
                if let Err(e) =
                    self.store_state(Gtid::new(position.history, Seqno::UNDEFINED), false)
                {
                    log::error!("{e}");
                }
            }
            Delivered::CaughtUp => {
                {
                    let mut node = lock(&self.node);
                    if node.member == MemberState::Joiner {
                        node.member = MemberState::Joined;
                    }
                }
                // What IST and the held events put in the queue is drained, not waited for.
                self.flow.begin_catch_up(self.queue.len());
                // Synced once the appliers have committed what came before this.
                self.queue.push(Work::Synced(gate.dispatched));
            }
            Delivered::StateFailed { reason } => {
                self.set_transfer(Transfer::Failed(reason));
            }
            Delivered::Disconnected { history, seqno } => {
                self.flow.clear();
                self.trxs.fail_all_replicating("provider disconnected");
                {
                    let mut points = lock(&self.read_points);
                    for slot in points.values_mut() {
                        if slot.is_none() {
                            *slot = Some(Err("provider disconnected".into()));
                        }
                    }
                    self.read_point_ready.notify_all();
                }
                self.queue.push(Work::Final {
                    view: View::disconnected(history, seqno),
                });
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // The applier side

    fn applier_loop(&self, ctx: RecvCtx) -> Status {
        loop {
            let Some((work, left)) = self.queue.pop() else {
                // Another applier delivered the final view.
                return Status::ConnFail;
            };
            self.counters.recv_queue.set(left);
            self.flow_check();
            match work {
                Work::Apply {
                    seqno,
                    ws,
                    depends_on,
                } => {
                    let exit = self.apply_one(ctx, seqno, &ws, depends_on);
                    // Never let the last applier go (contract §3.7).
                    if exit && self.appliers.load(Ordering::SeqCst) > 1 {
                        return Status::Ok;
                    }
                }
                Work::View { view, ticket } => {
                    // Two appliers can hold consecutive views (a primary one still waiting
                    // for what precedes it, then a non-primary one): the server must see them
                    // in order, or it ends in the older one. Seen with a node that caught up
                    // on a view that listed it and then on its own removal.
                    let mut turns = lock(&self.views);
                    while turns.delivered < ticket {
                        turns = self
                            .views_done
                            .wait(turns)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                    drop(turns);
                    self.deliver_view(ctx, view);
                    lock(&self.views).delivered += 1;
                    self.views_done.notify_all();
                }
                Work::Synced(upto) => {
                    // Not an unbounded wait on an applier: what must commit first may need
                    // this very thread (the next queued writeset), or wait on locks an
                    // applier must take. Look again later, behind what is queued.
                    match self
                        .orders
                        .wait_committed(upto, Some(SYNCED_RECHECK), &|| false)
                    {
                        Err(WaitEnd::TimedOut) => {
                            self.queue.push(Work::Synced(upto));
                        }
                        _ => self.report_synced(),
                    }
                }
                Work::Joined {
                    view,
                    start,
                    settled_at,
                } => {
                    if let Err(reason) = self.on_joined(ctx, view, start, settled_at) {
                        log::error!("State transfer failed: {reason}. This node cannot continue.");
                        lock(&self.node).member = MemberState::Error;
                        // MariaDB keeps waiting for its SST script, and the script for data
                        // that will never come: the process must end, as Galera ends it
                        // ("Need to abort"). The server decides how (`Server::give_up`).
                        self.server.give_up("state transfer failed; need to abort");
                        return Status::NodeFail;
                    }
                }
                Work::Donate {
                    joiner,
                    request,
                    ist_from,
                    position,
                    bypass,
                } => {
                    // An SST copies committed data: what was ordered up to the donation point
                    // commits first (Galera drains its monitors here). Not an unbounded wait
                    // on an applier: the rest may need this thread.
                    let drained = bypass
                        || lock(&self.node).donation_paused
                        || self.applied.wait_committed(
                            position.seqno,
                            Some(SYNCED_RECHECK),
                            &|| false,
                        ) != Err(WaitEnd::TimedOut);
                    if drained {
                        self.donate(ctx, joiner, &request, ist_from, position, bypass);
                    } else {
                        self.queue.push(Work::Donate {
                            joiner,
                            request,
                            ist_from,
                            position,
                            bypass,
                        });
                    }
                }
                Work::Vote(seqno) => self.vote_applied(seqno),
                Work::Final { view } => {
                    self.deliver_final(ctx, view);
                    return Status::Ok;
                }
            }
        }
    }

    fn apply_one(&self, ctx: RecvCtx, seqno: Seqno, ws: &Writeset, depends_on: Seqno) -> bool {
        if self.inconsistent.load(Ordering::SeqCst) {
            // This node lost a vote and is leaving: it applies nothing more (Galera stops
            // at the vote too); what is still queued only leaves the order.
            self.leave_both(seqno);
            return false;
        }
        if !self.applied.has_left(depends_on) && depends_on.is_defined() {
            Counters::add(&self.counters.apply_waits, 1);
        }
        // Galera's apply monitor: what this depends on is over, metadata locks released.
        if self
            .applied
            .wait_committed(depends_on, None, &|| false)
            .is_err()
        {
            return false;
        }
        // Checked again: what this waited for may be the writeset whose vote was lost (the
        // next fragment of a streaming transaction would find no applier context).
        if self.inconsistent.load(Ordering::SeqCst) {
            self.leave_both(seqno);
            return false;
        }
        Counters::record_window(
            &self.counters.apply_window_sum,
            &self.counters.apply_window_count,
            seqno.0,
            self.orders.last_committed().0,
        );
        let history = lock(&self.node).history;
        let meta = TrxMeta {
            gtid: Gtid::new(history, seqno),
            source: ws.source,
            trx_id: ws.trx_id,
            conn_id: ws.conn_id,
            depends_on,
        };
        let handle = WsHandle {
            trx_id: ws.trx_id,
            opaque: WsHandle::APPLIED,
        };
        let started = std::time::Instant::now();
        let outcome = self.server.apply(ctx, handle, ws.flags(), &ws.data, &meta);
        self.counters.apply_latency.record(started.elapsed());
        if !outcome.ok {
            // Usually voted already, in `commit_order_leave`; then this returns at once.
            self.vote_failed(
                seqno,
                vote::error_code(b"apply failed"),
                &format!("trx {} from {}", ws.trx_id, ws.source),
            );
        }
        // The server may have failed before leaving the commit order: do not block it.
        self.leave_both(seqno);
        outcome.exit_loop
    }

    fn deliver_view(&self, ctx: RecvCtx, view: View) {
        if !view.is_primary() {
            log::info!("Non-primary view: {} member(s)", view.members.len());
            {
                let mut node = lock(&self.node);
                node.view = Some(view.clone());
                if node.member != MemberState::Error {
                    node.member = MemberState::Initialized;
                }
            }
            self.server.view(ctx, &view);
            return;
        }
        // Configuration changes are applied alone, after everything before them.
        let _ = self
            .applied
            .wait_committed(view.seqno.prev(), None, &|| false);
        let first = {
            let mut node = lock(&self.node);
            let first = !node.connected_reported;
            node.connected_reported = true;
            node.history = view.history;
            node.view = Some(view.clone());
            first
        };
        log::info!(
            "Primary view #{} at seqno {}: {} member(s)",
            view.view_id.0,
            view.seqno,
            view.members.len()
        );
        if first && !self.server.connected(&view) {
            log::error!(
                "The server refused the connected callback for view #{}",
                view.view_id.0
            );
        }
        if !self.server.view(ctx, &view) {
            log::error!("The server failed to process view #{}", view.view_id.0);
        }
        self.leave_both(view.seqno);
        let alone = view.members.len() == 1;
        let _ = self.store_state(Gtid::new(view.history, Seqno::UNDEFINED), alone);
        let became_synced = {
            let mut node = lock(&self.node);
            // The first primary view after connect, or the first after a non-primary period
            // (the component merged back or was re-bootstrapped): Joined, then Synced.
            let regained = node.member == MemberState::Initialized;
            if (first || regained)
                && matches!(node.member, MemberState::Initialized | MemberState::Joined)
            {
                node.member = if node.desync_count > 0 {
                    MemberState::Donor
                } else {
                    MemberState::Joined
                };
                node.member == MemberState::Joined
            } else {
                false
            }
        };
        if became_synced {
            self.report_synced();
        }
    }

    /// A joiner's first view: report the connection, ask MariaDB for its SST request, hand it
    /// to the group, and wait (this applier, as in Galera) until the transfer is complete;
    /// everything after the transfer point is then in the queue (contract §3.3).
    ///
    /// A running node that fell behind the group's log (it was cut off or frozen while the
    /// others went on) comes here too: once what it already has is committed, it asks for
    /// state from its last committed seqno, which a donor serves by IST while it caches the
    /// gap (Galera's rejoin after a partition).
    fn on_joined(
        &self,
        ctx: RecvCtx,
        view: View,
        start: Gtid,
        settled_at: Seqno,
    ) -> Result<(), String> {
        let rejoin = lock(&self.node).connected_reported;
        if rejoin {
            let _ = self.orders.wait_committed(settled_at, None, &|| false);
            let mut turns = lock(&self.views);
            while turns.delivered < turns.issued {
                turns = self
                    .views_done
                    .wait(turns)
                    .unwrap_or_else(|e| e.into_inner());
            }
            drop(turns);
            // The server must leave its primary component before it can be a joiner again
            // (wsrep-lib: synced -> connected -> joiner); here, in order on this applier.
            let left = lock(&self.node)
                .view
                .as_ref()
                .filter(|v| v.is_primary())
                .map(|v| {
                    let me = v.my_index.and_then(|i| v.members.get(i)).cloned();
                    View {
                        seqno: Seqno::UNDEFINED,
                        view_id: trireme_types::ViewId::NONE,
                        status: trireme_types::ViewStatus::NonPrimary,
                        my_index: me.as_ref().map(|_| 0),
                        members: me.into_iter().collect(),
                        ..v.clone()
                    }
                });
            if let Some(view) = left {
                self.deliver_view(ctx, view);
            }
        }
        let (position, donor_names) = {
            let mut node = lock(&self.node);
            let position = if rejoin {
                Gtid::new(node.history, self.orders.last_committed())
            } else {
                node.join_position
            };
            node.connected_reported = true;
            node.history = view.history;
            node.view = Some(view.clone());
            node.member = MemberState::Joiner;
            // A state transfer ends any desync, as in Galera (GAL-401): the node comes back
            // Synced, and a later `wsrep_desync=OFF` finds nothing to undo.
            node.desync_count = 0;
            (position, node.donor_names.clone())
        };
        log::info!(
            "{} the primary component at {start} ({} member(s)); requesting state transfer from {position}",
            if rejoin { "Rejoined" } else { "Joined" },
            view.members.len()
        );
        // `connected_cb` once per connection, as Galera does; a rejoining server is already
        // in state connected (its non-primary view put it there).
        if !rejoin && !self.server.connected(&view) {
            return Err("the server refused the connected callback".into());
        }
        self.set_transfer(Transfer::Waiting);
        let request = self
            .server
            .sst_request()
            .ok_or("the server could not prepare SST")?;
        self.runtime()
            .request_state(request, donor_names, position)
            .map_err(|e| e.to_string())?;
        let mut transfer = lock(&self.transfer);
        loop {
            match &*transfer {
                Transfer::Done => return Ok(()),
                Transfer::Failed(reason) => return Err(reason.clone()),
                Transfer::Waiting | Transfer::None => {}
            }
            transfer = self
                .transfer_changed
                .wait(transfer)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    fn set_transfer(&self, state: Transfer) {
        *lock(&self.transfer) = state;
        self.transfer_changed.notify_all();
    }

    /// Donor duty: the server runs its SST script (in its own thread) and reports `sst_sent`.
    fn donate(
        &self,
        ctx: RecvCtx,
        joiner: NodeId,
        request: &[u8],
        ist_from: Gtid,
        position: Gtid,
        bypass: bool,
    ) {
        log::info!(
            "Donating {} to {joiner} (joiner at {ist_from})",
            if bypass { "IST" } else { "SST" }
        );
        {
            let mut node = lock(&self.node);
            node.member = MemberState::Donor;
            node.donee = Some(joiner);
        }
        let state_id = if bypass { ist_from } else { position };
        if !self.server.sst_donate(ctx, request, state_id, bypass) {
            log::error!("The server could not start donating to {joiner}");
            let (donating, donee) = {
                let mut node = lock(&self.node);
                (
                    std::mem::replace(&mut node.donating, false),
                    node.donee.take(),
                )
            };
            if let Some(joiner) = donee {
                self.tell_transfer_failed(joiner, -ECANCELED);
            }
            if donating {
                self.release_donation_pause();
            }
        }
    }

    /// A donation failed: the joiner must hear it, or it waits for ever (its SST script
    /// waits for files that will never come).
    fn tell_transfer_failed(&self, joiner: NodeId, code: i32) {
        log::error!("State transfer to {joiner} failed: {code}; telling the joiner");
        if let Err(e) = self.runtime().transfer_failed(joiner, code) {
            log::warn!("Could not tell {joiner} that its state transfer failed: {e}");
        }
    }

    /// Ends the donation: the pause taken at the donation point, if any, is released.
    fn release_donation_pause(&self) {
        let paused = std::mem::replace(&mut lock(&self.node).donation_paused, false);
        let mut gate = lock(&self.gate);
        if paused && gate.pauses > 0 {
            gate.pauses -= 1;
            if gate.pauses == 0 {
                while let Some(event) = gate.held.pop_front() {
                    self.dispatch(&mut gate, event);
                }
                self.flow.begin_catch_up(self.queue.len());
            }
        }
        let upto = gate.dispatched;
        drop(gate);
        {
            let mut node = lock(&self.node);
            if node.member == MemberState::Donor && node.desync_count == 0 {
                node.member = MemberState::Joined;
            }
        }
        self.queue.push(Work::Synced(upto));
    }

    // ------------------------------------------------------------------------------------
    // Inconsistency voting (vote.rs)

    /// Decides what the votes delivered so far allow (with the voters of a new primary view,
    /// if given); a node whose vote lost leaves. Runs in total order (delivery side).
    fn settle_votes(&self, members: Option<Vec<NodeId>>) {
        let decided = {
            let mut book = lock(&self.votes);
            if let Some(members) = members {
                book.set_members(members);
            }
            book.decide()
        };
        if decided.is_empty() {
            return;
        }
        self.vote_decided.notify_all();
        let history = lock(&self.node).history;
        for (seqno, decision) in decided {
            let at = Gtid::new(history, seqno);
            if decision.inconsistent() {
                self.leave_inconsistent(at);
            } else if decision.winner != 0 && decision.mine.is_some() {
                log::info!(
                    "Every node failed to apply {at} alike: it is skipped everywhere, and this \
                     node stays consistent with the cluster"
                );
            } else {
                log::info!("Vote on {at} decided: {:#x}", decision.winner);
            }
        }
    }

    /// Another member voted on `seqno`: this node votes success once it has applied it.
    fn vote_applied(&self, seqno: Seqno) {
        if lock(&self.votes).has_voted(seqno) {
            return;
        }
        match self
            .applied
            .wait_committed(seqno, Some(SYNCED_RECHECK), &|| false)
        {
            Err(WaitEnd::TimedOut) => {
                self.queue.push(Work::Vote(seqno));
            }
            // The order was reset (a new connection): the vote is moot here.
            Err(_) => {}
            Ok(()) => {
                if lock(&self.votes).cast(seqno, 0) {
                    if let Err(e) = self.runtime().vote(seqno, 0) {
                        log::warn!("Could not vote on seqno {seqno}: {e}");
                    }
                }
            }
        }
    }

    /// This node failed to apply `seqno`: it votes the error's digest and waits for the
    /// cluster's decision before the seqno leaves the apply order (Galera 4 holds it too).
    fn vote_failed(&self, seqno: Seqno, code: u64, what: &str) {
        let history = lock(&self.node).history;
        if lock(&self.votes).cast(seqno, code) {
            // A note until the vote is decided: if every node failed alike, nothing is wrong
            // with this one (Galera logs nothing more then; MTR GCF-363).
            log::info!(
                "Write set {history}:{seqno} failed to apply here ({what}); voting on it with \
                 the cluster (code {code:#x})"
            );
            if let Err(e) = self.runtime().vote(seqno, code) {
                log::info!("Failed to apply write set: gtid: {history}:{seqno} {what}");
                log::error!("Could not vote on seqno {seqno}: {e}");
                self.leave_inconsistent(Gtid::new(history, seqno));
                return;
            }
        }
        let logged_if_lost = || {
            let lost = match lock(&self.votes).decision(seqno) {
                Some(decision) => decision.inconsistent(),
                None => return false,
            };
            if lost {
                // The error line is "Inconsistency detected" (`leave_inconsistent`).
                log::info!("Failed to apply write set: gtid: {history}:{seqno} {what}");
                // Before this seqno leaves the order: nothing after it may be applied here
                // (the delivery side may not have acted on the decision yet).
                self.leave_inconsistent(Gtid::new(history, seqno));
            }
            true
        };
        loop {
            if logged_if_lost() {
                return;
            }
            {
                let book = lock(&self.votes);
                if book.decision(seqno).is_none() {
                    let _ = self
                        .vote_decided
                        .wait_timeout(book, Duration::from_millis(100))
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
            // Checked with the vote book unlocked (the node lock comes first elsewhere). A
            // lost vote disconnects at once, often before this thread looks again: the
            // decision is read once more so that the failure is still reported.
            if lock(&self.node).connection != Connection::Connected {
                logged_if_lost();
                return;
            }
        }
    }

    /// This node voted success on `seqno` (and lost, if asked after the decision).
    fn votes_mine_was_success(&self, seqno: Seqno) -> bool {
        lock(&self.votes)
            .decision(seqno)
            .is_some_and(|d| d.mine == Some(0))
    }

    /// This node lost a vote: its data differs from the cluster's. It leaves the group (the
    /// server sees a disconnected view and stays up, as with Galera) and forgets its
    /// position, so that a restart brings it back by SST.
    fn leave_inconsistent(&self, at: Gtid) {
        if self.inconsistent.swap(true, Ordering::SeqCst) {
            return;
        }
        // Galera's words, as Galera splits them (MTR suppresses exactly these): a node whose
        // success lost says so; a node whose failure lost reports the inconsistency.
        if self.votes_mine_was_success(at.seqno) {
            log::error!("Vote 0 (success) on {at} is inconsistent with group. Leaving cluster.");
        } else {
            log::error!("Inconsistency detected: Inconsistent by consensus on {at}");
        }
        log::info!(
            "This node leaves the cluster: its data differs from the cluster's. Restart it to \
             rejoin (by SST)"
        );
        {
            let mut node = lock(&self.node);
            if node.connection != Connection::Connected {
                return;
            }
            node.connection = Connection::Disconnecting;
            node.member = MemberState::Error;
        }
        self.trxs
            .fail_all_replicating("this node is inconsistent with the cluster");
        if let Err(e) = self.runtime().disconnect() {
            log::error!("Could not leave the group: {e}");
        }
    }

    fn report_synced(&self) {
        let report = {
            let mut node = lock(&self.node);
            if node.member == MemberState::Joined && node.desync_count == 0 {
                node.member = MemberState::Synced;
                true
            } else {
                false
            }
        };
        if report {
            self.flow.end_catch_up();
            log::info!("Synced with the group");
            if !self.server.synced() {
                log::error!("The server refused the synced callback");
            }
            // The group counts synced members for donor choice.
            let _ = self.runtime().member_synced();
        }
    }

    fn deliver_final(&self, ctx: RecvCtx, view: View) {
        // Galera drains its monitors first: what was delivered before the final view commits
        // (the appliers that took it, the clients whose writesets were ordered), so the saved
        // position covers it. Bounded, because a client that never comes back to
        // commit_order_enter would otherwise hold the shutdown.
        let drained = self
            .orders
            .wait_committed(view.seqno, Some(FINAL_DRAIN), &|| false);
        if drained.is_err() {
            log::warn!(
                "Leaving with seqnos {}..{} not committed here after {FINAL_DRAIN:?}; \
                 the saved position stops before them",
                self.orders.last_committed().next(),
                view.seqno
            );
        }
        log::info!("Delivering the final view; leaving the group");
        self.server.view(ctx, &view);
        if let Err(e) = self.store_final_state() {
            log::error!("{e}");
        }
        {
            let mut node = lock(&self.node);
            node.connection = Connection::Disconnected;
            node.member = MemberState::Initialized;
            node.view = None;
        }
        self.queue.close();
        // Nothing more will be applied, so a seqno waiting for its turn would wait for ever: a
        // BF-aborted trx in MariaDB's rollbacker thread, a client in commit_order_enter. That
        // held a shutdown for good (fault suite, clean_restart). Every waiter gives up, now
        // and later; the positions stay where they are.
        self.orders.close();
        self.applied.close();
    }
}

impl Sink for Shared {
    fn deliver(&self, event: Delivered) {
        let mut gate = lock(&self.gate);
        // Votes are decided against the views around them: held alike.
        let ordered = matches!(
            event,
            Delivered::Writeset { .. } | Delivered::View(_) | Delivered::Vote { .. }
        );
        if gate.pauses > 0 && ordered {
            // A local transaction ordered past the pause point learns its outcome now, as
            // with Galera (only its commit waits for the resume): until then it would wait in
            // certification holding its row locks, and an applier before the pause point
            // that needs one could never be served, nor the pause complete (an SST donor
            // under write load hung in FLUSH TABLES WITH READ LOCK, "BF lock wait long").
            // Counted as dispatched: a later pause must cover it (its position is what an
            // SST reports).
            if let Delivered::Writeset {
                seqno,
                ws,
                verdict,
                local: Some(token),
            } = &event
            {
                if self.take_local_outcome(&mut gate, *seqno, ws, *verdict, *token) {
                    return;
                }
            }
            gate.held.push_back(event);
            return;
        }
        self.dispatch(&mut gate, event);
    }

    fn committed(&self) -> Seqno {
        self.orders.last_committed()
    }
}

/// Does this SST method lock the donor itself and report the position it locked at? MariaDB's
/// request is `method NUL address...`. rsync and mariabackup do (FLUSH TABLES WITH READ
/// LOCK / BACKUP STAGE BLOCK_COMMIT, which reach `pause`); mysqldump and unknown scripts are
/// given a position and trusted to copy exactly that.
fn sst_locks_the_server(request: &[u8]) -> bool {
    let method = request.split(|b| *b == 0).next().unwrap_or_default();
    matches!(method, b"rsync" | b"rsync_wan" | b"mariabackup")
}

/// Galera's rule for the starting position: the saved file first; its seqno is trusted unless
/// it is -1 (running or crashed), in which case `wsrep_start_position` (from
/// `--wsrep-recover`) supplies it if it names the same history (contract §6.6).
fn resolve_position(saved: &SavedState, start: Gtid) -> Gtid {
    let file = saved.position;
    if file.history.is_nil() {
        return if start.history.is_nil() {
            Gtid::UNDEFINED
        } else {
            start
        };
    }
    if file.seqno.is_defined() {
        return file;
    }
    if start.history == file.history && start.seqno.is_defined() {
        return start;
    }
    file
}

/// Parses `gcomm://host:port,host2?option=value` into the peer list (empty: bootstrap).
pub fn parse_cluster_address(url: &str) -> Result<Vec<String>, ProviderError> {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some(("gcomm", rest)) => rest,
        Some((scheme, _)) => {
            return Err(ProviderError::UnsupportedBackend {
                scheme: scheme.to_string(),
            })
        }
        None => {
            return Err(ProviderError::InvalidUri {
                address: url.to_string(),
            })
        }
    };
    let hosts = rest.split('?').next().unwrap_or("");
    if rest.contains('?') {
        log::info!("Ignoring options in cluster address '{url}'; use wsrep_provider_options");
    }
    Ok(hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gtid(text: &str) -> Gtid {
        text.parse().unwrap()
    }

    const U: &str = "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b";

    #[test]
    fn position_comes_from_the_saved_file_unless_it_says_unknown() {
        let saved = SavedState {
            position: gtid(&format!("{U}:4")),
            safe_to_bootstrap: true,
        };
        assert_eq!(
            resolve_position(&saved, gtid(&format!("{U}:9"))),
            gtid(&format!("{U}:4"))
        );
        let crashed = SavedState {
            position: gtid(&format!("{U}:-1")),
            safe_to_bootstrap: false,
        };
        assert_eq!(
            resolve_position(&crashed, gtid(&format!("{U}:9"))),
            gtid(&format!("{U}:9"))
        );
        let other = "11111111-e77a-11f1-90be-d2d5e7a9831b:9";
        assert_eq!(
            resolve_position(&crashed, gtid(other)),
            gtid(&format!("{U}:-1"))
        );
        assert_eq!(
            resolve_position(&SavedState::EMPTY, gtid(other)),
            gtid(other)
        );
        assert_eq!(
            resolve_position(&SavedState::EMPTY, Gtid::UNDEFINED),
            Gtid::UNDEFINED
        );
    }

    #[test]
    fn cluster_addresses_parse_like_galera() {
        assert!(parse_cluster_address("gcomm://").unwrap().is_empty());
        assert!(parse_cluster_address("gcomm://?pc.wait_prim=no")
            .unwrap()
            .is_empty());
        assert_eq!(
            parse_cluster_address("gcomm://10.0.0.1:4567, 10.0.0.2").unwrap(),
            vec!["10.0.0.1:4567".to_string(), "10.0.0.2".to_string()]
        );
        assert_eq!(
            parse_cluster_address("gcomm://[::1]:4567").unwrap(),
            vec!["[::1]:4567"]
        );
        assert_eq!(
            parse_cluster_address("foo://").unwrap_err().to_string(),
            "Backend not supported: foo"
        );
        assert_eq!(
            parse_cluster_address("NULL").unwrap_err().to_string(),
            "Invalid backend URI: NULL"
        );
    }
}
