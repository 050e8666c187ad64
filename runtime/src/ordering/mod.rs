//! Shard 0's duties: drive the group core over the network, and turn what it orders into
//! deliveries.
//!
//! For each writeset the group delivers in total order: decode it (remote ones; a local one
//! is matched to its proposal, no decode), certify it, append it to the GCache with its
//! verdict, and hand it to the owner's sink. Configuration changes are certification barriers
//! and GCache records too. Everything here runs on one thread, in delivery order: that is what
//! makes certification deterministic across nodes. With several shards, the keys of a
//! writeset are checked by the shards owning them (`CertEngine::Sharded`) and GCache records
//! go to the slice owning their seqno stripe; verdicts never depend on the shard count.
//!
//! A joining node holds everything the group delivers until its state transfer is complete
//! (`Mode::Awaiting`): the SST script brings the database to seqno D (the point of the total
//! order where the donor took its state), the donor's stream brings the certification index
//! at D, and from D + 1 on the node certifies and applies like every other. A donor takes
//! the index at D itself, when its own delivery reaches the joiner's request.

use crate::api::{ConnectMode, ConnectRequest, Delivered, Sink, Token, Verdict};
use crate::peers::Peers;
use crate::shards::{ShardCommand, ShardLink};
use crate::transfer::{self, Received, StreamMsg, TransferRequest};
use crate::{gvwstate, sys, Board, Command, RuntimeConfig};
use crossbeam_channel::Sender;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use trireme_cert::{
    CertConfig, CertError, CertGlobal, CertSlice, CertSnapshot, Certifier, CheckInput, Partial,
    SnapshotRecord, Verdict as CertVerdict,
};
use trireme_gcache::{slice_of, GCache, GCacheSlice, RecordKind};
use trireme_group::{
    ControlEntry, ControlEvent, Event, Group, GroupConfig, GroupView, Position, ProposalId,
};
use trireme_net::{ClusterHash, TransportConfig};
use trireme_types::{writeset, Gtid, HistoryId, NodeId, Seqno, View, Writeset};

mod cert_engine;
mod donor;
mod joiner;
mod recovery;
mod view_record;

use cert_engine::CertEngine;
use joiner::{hold, Awaiting};

/// A local writeset waiting for its place in the order.
struct Pending {
    token: Token,
    ws: Arc<Writeset>,
    bytes: Arc<Vec<u8>>,
}

enum Mode {
    Normal,
    Awaiting(Box<Awaiting>),
}

/// One connection to a group (from `connect` to the final view).
struct Session {
    group: Group,
    peers: Peers,
    me: NodeId,
    cluster: ClusterHash,
    history: HistoryId,
    last_seqno: Seqno,
    pending: HashMap<ProposalId, Pending>,
    read_points: HashMap<u64, Token>,
    next_read: u64,
    leaving: bool,
    /// Proposals were deferred since the last `flush_proposals`.
    flush_due: bool,
    ticks_since_report: u32,
    /// Reports since this node last told the group how far back its GCache reaches, and
    /// what it told (`ControlEntry::Cached`, for the donor choice).
    reports_since_cache: u32,
    cache_reported: Seqno,
    mode: Mode,
    /// A joiner's `connect` waits for admission (or this deadline).
    connect_reply: Option<(Sender<Result<(), String>>, Instant)>,
    /// `pc.recovery`: the primary component this node was in before a crash, to re-form
    /// when all its members are back and none of them finds a primary.
    recovery: Option<gvwstate::SavedView>,
    /// The last primary component this node was in while running (`pc.recovery` re-forms
    /// it when this node is left non-primary and all the others come back as joiners).
    last_primary: Option<gvwstate::SavedView>,
    /// pc.ignore_sb is re-forming the primary component (from the lost quorum until the new
    /// primary view): proposals and causal-read points that fail meanwhile, or arrive
    /// meanwhile, are held and submitted again in the new component instead of failing their
    /// clients, as Galera's clients never see the change.
    reforming: bool,
    held_proposals: Vec<(Arc<Writeset>, Token)>,
    held_reads: Vec<Token>,
    /// Where this node's data is (a joiner: what it would bootstrap from in a recovery).
    position: Gtid,
    my_name: String,
    config: GroupConfig,
}

/// A GCache writeset record: the verdict every node gave it, then the encoded writeset. IST
/// sends these as they are, so a joiner applies exactly what the others applied.
/// A delivery slower than this is logged with its parts.
const SLOW_DELIVERY: Duration = Duration::from_millis(300);

fn gcache_record(verdict: &Verdict, bytes: &[u8]) -> Vec<u8> {
    let (passed, seqno) = match *verdict {
        Verdict::Pass { depends_on } => (1u8, depends_on),
        Verdict::Conflict { with_seqno } => (0u8, with_seqno),
    };
    let mut record = Vec::with_capacity(9 + bytes.len());
    record.push(passed);
    record.extend_from_slice(&seqno.0.to_le_bytes());
    record.extend_from_slice(bytes);
    record
}

pub(crate) struct Ordering {
    config: RuntimeConfig,
    sink: Arc<dyn Sink>,
    board: Arc<Board>,
    session: Option<Session>,
    certifier: Option<CertEngine>,
    /// Slice 0 of the GCache (the whole cache with one shard).
    gcache: Option<GCacheSlice>,
    /// Shards 1..N.
    links: Vec<ShardLink>,
    inbox: Sender<Command>,
    waker: Arc<sys::EventFd>,
    /// The newest flow-control decision sent (see `Command::Flow`).
    flow_decision: u64,
}

/// An errno's text as C's strerror gives it (Galera prints codes that way).
fn strerror(code: i32) -> String {
    let text = std::io::Error::from_raw_os_error(code.saturating_abs()).to_string();
    match text.split_once(" (os error") {
        Some((plain, _)) => plain.to_string(),
        None => text,
    }
}

/// How often (in ticks) the committed position is reported for the commit cut.
const REPORT_EVERY_TICKS: u32 = 10;
/// The GCache's reach is reported at most once per this many reports (about 2 s), and only
/// when it moved: one small ordered entry per node.
const CACHE_REPORT_EVERY_REPORTS: u32 = 20;

impl Ordering {
    pub fn new(
        config: RuntimeConfig,
        sink: Arc<dyn Sink>,
        board: Arc<Board>,
        links: Vec<ShardLink>,
        inbox: Sender<Command>,
        waker: Arc<sys::EventFd>,
    ) -> Ordering {
        Ordering {
            config,
            sink,
            board,
            session: None,
            certifier: None,
            gcache: None,
            links,
            inbox,
            waker,
            flow_decision: 0,
        }
    }

    fn shard_count(&self) -> u32 {
        self.links.len() as u32 + 1
    }

    pub fn has_network(&self) -> bool {
        self.session.is_some()
    }

    /// Local proposals or read points wait for the group: an answer is due within a round
    /// trip, worth spinning for.
    pub fn awaiting_replies(&self) -> bool {
        self.session
            .as_ref()
            .is_some_and(|s| !s.pending.is_empty() || !s.read_points.is_empty())
    }

    pub fn command(&mut self, command: Command) {
        match command {
            Command::Connect { request, reply } => self.connect(request, reply),
            Command::Propose { ws, bytes, token } => self.propose(ws, bytes, token),
            Command::ReadPoint { token } => self.read_point(token),
            Command::Disconnect => self.disconnect(),
            Command::ForceBootstrap => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.group.force_bootstrap() {
                        log::warn!("pc.bootstrap refused: {e}");
                    }
                }
            }
            Command::Control(entry) => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.group.propose_control(entry) {
                        log::warn!("control message not sent: {e}");
                    }
                }
            }
            Command::Isolate(level) => match (level, &mut self.session) {
                (2, Some(_)) => self.fail_session("gmcast.isolate=2"),
                (_, Some(session)) => session.peers.isolate(&mut session.group, level == 1),
                (_, None) => {}
            },
            Command::Flow { decision, stop } => {
                if decision <= self.flow_decision {
                    return;
                }
                self.flow_decision = decision;
                if let Some(session) = &mut self.session {
                    let entry = trireme_group::ControlEntry::FlowControl { stop };
                    if let Err(e) = session.group.propose_control(entry) {
                        log::warn!("flow control message not sent: {e}");
                    }
                }
            }
            Command::RequestState {
                sst_request,
                donor_names,
                ist_from,
            } => self.request_state(sst_request, donor_names, ist_from),
            Command::StateReceived { gtid, rcode } => {
                if let Some(awaiting) = self.awaiting() {
                    awaiting.received = Some((gtid, rcode));
                }
                self.try_finish_transfer();
            }
            Command::StreamReceived(result) => {
                if let Err(e) = result.as_ref() {
                    log::error!("State transfer stream failed: {e}");
                }
                if let Some(awaiting) = self.awaiting() {
                    awaiting.stream = Some(*result);
                }
                self.try_finish_transfer();
            }
            Command::Stop => {}
        }
    }

    fn connect(&mut self, request: ConnectRequest, reply: Sender<Result<(), String>>) {
        if self.session.is_some() {
            let _ = reply.send(Err("already connected".into()));
            return;
        }
        match self.start_session(request) {
            Ok(Some(reply_later)) => {
                if let Some(session) = &mut self.session {
                    session.connect_reply = Some((reply, reply_later));
                }
            }
            Ok(None) => {
                let _ = reply.send(Ok(()));
            }
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Starts the session; `Some(deadline)` when `connect` must wait for admission.
    fn start_session(&mut self, request: ConnectRequest) -> Result<Option<Instant>, String> {
        let mut transport = TransportConfig::new(&request.cluster_name, &self.config.listen);
        transport.choice = self.config.net_choice();
        let peers = Peers::open(transport, request.node)?;
        let advertised = self.config.advertised_address(peers.listen.port());
        let mut group_config =
            GroupConfig::new(request.node, &request.node_name, &request.cluster_name);
        group_config.incoming = request.incoming.clone();
        group_config.address = advertised;
        group_config.election_ticks = ticks(self.config.election_timeout, self.config.tick);
        group_config.heartbeat_ticks = (group_config.election_ticks / 10).max(1);
        group_config.suspect_ticks = ticks(self.config.suspect_timeout, self.config.tick);
        group_config.seed = seed_from(request.node);
        group_config.max_append_bytes = self.config.batch_max_bytes;
        group_config.auto_evict = self.board.auto_evict.load(AtomicOrdering::Relaxed);
        group_config.weight = self.board.weight.load(AtomicOrdering::Relaxed);
        let cluster = ClusterHash::of(&request.cluster_name);
        let saved_config = group_config.clone();
        let join_position = match &request.mode {
            ConnectMode::Bootstrap { position } | ConnectMode::Join { position, .. } => *position,
        };
        let recovery = match &request.mode {
            ConnectMode::Join { .. } if self.config.pc_recovery => {
                gvwstate::load(&self.config.state_dir).filter(|v| {
                    v.history == join_position.history && join_position.seqno.is_defined()
                })
            }
            _ => None,
        };
        if let Some(saved) = &recovery {
            log::info!(
                "pc.recovery: last primary component had {} member(s); it is re-formed if none of them finds a primary",
                saved.members.len()
            );
        }
        let (group, history, last_seqno, mode, wait) = match request.mode {
            ConnectMode::Bootstrap { position } => {
                let group = Group::bootstrap(group_config, position.history, position.seqno)
                    .map_err(|e| e.to_string())?;
                let cert_config = self.cert_config();
                self.certifier = Some(
                    CertEngine::start(position.seqno, &self.links, cert_config)
                        .map_err(|e| e.to_string())?,
                );
                self.open_gcache(position.history, position.seqno);
                (group, position.history, position.seqno, Mode::Normal, None)
            }
            ConnectMode::Join {
                peers: ref seeds,
                position,
                ..
            } => {
                let group = Group::join(group_config, Position::from(position))
                    .map_err(|e| e.to_string())?;
                log::info!("Joining through {}", seeds.join(", "));
                let awaiting = Awaiting::new(None);
                let deadline = Instant::now() + self.config.join_timeout;
                (
                    group,
                    position.history,
                    position.seqno,
                    Mode::Awaiting(Box::new(awaiting)),
                    Some(deadline),
                )
            }
        };
        let mut peers = peers;
        if let ConnectMode::Join { peers: seeds, .. } = &request.mode {
            for seed in seeds {
                peers.want(seed);
            }
        }
        self.session = Some(Session {
            group,
            peers,
            me: request.node,
            cluster,
            history,
            last_seqno,
            pending: HashMap::new(),
            read_points: HashMap::new(),
            next_read: 1,
            leaving: false,
            flush_due: false,
            ticks_since_report: 0,
            reports_since_cache: 0,
            cache_reported: Seqno::UNDEFINED,
            mode,
            connect_reply: None,
            recovery,
            last_primary: None,
            reforming: false,
            held_proposals: Vec::new(),
            held_reads: Vec::new(),
            position: join_position,
            my_name: request.node_name.clone(),
            config: saved_config,
        });
        Ok(wait)
    }

    fn cert_config(&self) -> CertConfig {
        CertConfig {
            optimistic_pa: self.config.cert_optimistic_pa,
            ..CertConfig::default()
        }
    }

    /// Opens the GCache with one slice per shard and hands slices 1..N to their shards.
    /// Opens the GCache for `history`, resuming at seqno `resume_at`.
    fn open_gcache(&mut self, history: HistoryId, resume_at: Seqno) {
        if self.gcache.is_some() {
            return;
        }
        let mut config = self.config.gcache.clone();
        config.slice_count = self.shard_count();
        // Galera takes any size, even 1 byte (tests set it to cache nothing): a size below
        // the smallest cache is raised to it, not refused.
        let smallest = trireme_gcache::format::Geometry::min_size_bytes(config.slice_count);
        if config.size_bytes < smallest {
            log::info!(
                "gcache.size = {} is below the smallest cache ({smallest} bytes); using {smallest}",
                config.size_bytes
            );
            config.size_bytes = smallest;
        }
        match GCache::open(config, history) {
            Ok((mut gcache, report)) => {
                // After a crash the cache can hold writesets the database never committed;
                // they will come again, in order, so the cache starts over (Galera's
                // seqno_reset).
                if gcache.range().is_some_and(|(_, high)| high > resume_at) {
                    log::info!("GCache holds seqnos past {resume_at}; discarding it");
                    if let Err(e) = gcache.reset(history) {
                        log::warn!("GCache reset failed: {e}");
                    }
                }
                log::info!(
                    "GCache {}: {:?}, {} record(s) recovered, range {:?}, in {:?}",
                    report.path.display(),
                    report.file,
                    report.records,
                    report.range,
                    report.elapsed
                );
                let slices = gcache.into_slices();
                for (index, slice) in slices.iter().enumerate() {
                    self.board.publish_gcache_range(index, slice.range());
                }
                let mut slices = slices.into_iter();
                self.gcache = slices.next();
                for (link, slice) in self.links.iter().zip(slices) {
                    link.send(ShardCommand::AttachGCache {
                        gcache: Box::new(slice),
                    });
                }
            }
            Err(e) => {
                // Without a cache the node still replicates; it just cannot donate IST.
                log::error!("GCache unavailable, continuing without it: {e}");
            }
        }
    }

    /// Appends to the slice owning `seqno`'s stripe (here or on its shard).
    fn gcache_append(&mut self, seqno: Seqno, kind: RecordKind, bytes: Arc<Vec<u8>>) {
        let slice = slice_of(seqno, self.shard_count());
        if slice == 0 {
            if let Some(gcache) = &mut self.gcache {
                if let Err(e) = gcache.append(seqno, kind, &bytes) {
                    log::warn!("GCache append of seqno {seqno} failed: {e}");
                    return;
                }
                self.board.publish_gcache_range(0, gcache.range());
            }
        } else if let Some(link) = self.links.get(slice as usize - 1) {
            link.send(ShardCommand::Append { seqno, kind, bytes });
        }
    }

    // ------------------------------------------------------------------------------------
    // Commands from MariaDB's threads

    fn propose(&mut self, ws: Arc<Writeset>, bytes: Vec<u8>, token: Token) {
        let Some(session) = &mut self.session else {
            self.sink.deliver(Delivered::ProposalFailed {
                token,
                reason: "not connected".into(),
            });
            return;
        };
        if session.leaving {
            self.sink.deliver(Delivered::ProposalFailed {
                token,
                reason: "leaving the group".into(),
            });
            return;
        }
        if session.reforming {
            session.held_proposals.push((ws, token));
            return;
        }
        match session.group.propose_deferred_bytes(&bytes) {
            Ok(id) => {
                session.flush_due = true;
                session.pending.insert(
                    id,
                    Pending {
                        token,
                        ws,
                        bytes: Arc::new(bytes),
                    },
                );
            }
            Err(e) => {
                self.sink.deliver(Delivered::ProposalFailed {
                    token,
                    reason: e.to_string(),
                });
            }
        }
    }

    /// Hands the proposals of the commands just drained to the group in one go: one append
    /// per follower for the whole burst.
    pub fn flush_proposals(&mut self) {
        if let Some(session) = &mut self.session {
            if std::mem::take(&mut session.flush_due) {
                session.group.flush();
            }
        }
    }

    fn read_point(&mut self, token: Token) {
        let Some(session) = &mut self.session else {
            self.sink.deliver(Delivered::ReadPointFailed { token });
            return;
        };
        if session.reforming {
            session.held_reads.push(token);
            return;
        }
        let ctx = session.next_read;
        session.next_read += 1;
        session.read_points.insert(ctx, token);
        session.group.read_index(ctx);
    }

    fn disconnect(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        session.leaving = true;
        session.group.leave();
    }

    pub fn tick(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        session.group.tick();
        session.ticks_since_report += 1;
        if session.ticks_since_report >= REPORT_EVERY_TICKS {
            session.ticks_since_report = 0;
            // The cut must not pass the last_seen of a local writeset still being ordered:
            // certification would then find it too old (the cert crate's requirement).
            let in_flight = session.pending.values().map(|p| p.ws.last_seen).min();
            let committed = self.sink.committed();
            let report = in_flight.map_or(committed, |seen| committed.min(seen));
            if matches!(session.mode, Mode::Normal) {
                session.group.report_committed(report);
            }
            session.reports_since_cache += 1;
            if session.reports_since_cache >= CACHE_REPORT_EVERY_REPORTS
                && matches!(session.mode, Mode::Normal)
                && self.board.primary.load(AtomicOrdering::Relaxed)
            {
                session.reports_since_cache = 0;
                let from = self.board.cached_range().map_or(Seqno::UNDEFINED, |r| r.0);
                if from != session.cache_reported
                    && session
                        .group
                        .propose_control(ControlEntry::Cached { from })
                        .is_ok()
                {
                    session.cache_reported = from;
                }
            }
            let members = session.group.member_addresses();
            session.peers.maintain(&members);
            session
                .group
                .set_auto_evict(self.board.auto_evict.load(AtomicOrdering::Relaxed));
            session
                .group
                .set_weight(self.board.weight.load(AtomicOrdering::Relaxed));
            // The total first: a `SET pc.weight` waits for the applied weight, then reads it.
            self.board.cluster_weight.store(
                i64::from(session.group.cluster_weight()),
                AtomicOrdering::Relaxed,
            );
            let applied = session.group.weight().map_or(-1, i64::from);
            self.board
                .applied_weight
                .store(applied, AtomicOrdering::Relaxed);
            let evicted = session.group.evicted();
            if let Ok(mut list) = self.board.evict_list.lock() {
                let text = evicted
                    .iter()
                    .map(|id| id.to_string())
                    .collect::<Vec<_>>()
                    .join(",");
                if *list != text {
                    *list = text;
                }
            }
            let queued = session.peers.stats().send_queue_frames as u64;
            self.board
                .send_queue_frames
                .store(queued, AtomicOrdering::Relaxed);
        }
        self.check_connect_deadline();
        self.retry_state_request();
        self.try_recover();
        self.try_reform();
    }

    fn check_connect_deadline(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        let expired =
            matches!(&session.connect_reply, Some((_, deadline)) if Instant::now() >= *deadline);
        if expired {
            if let Some((reply, _)) = session.connect_reply.take() {
                let _ = reply.send(Err(format!(
                    "no primary component admitted this node within {:?}",
                    self.config.join_timeout
                )));
            }
            self.session = None;
        }
    }

    /// Polls the network (non-blocking with `Some(ZERO)`), then handles the group's output.
    pub fn poll_network(&mut self, timeout: Option<Duration>) -> bool {
        let wake_fd = self.waker.raw_fd();
        let Some(session) = &mut self.session else {
            return false;
        };
        let busy = session.peers.poll(&mut session.group, timeout, wake_fd);
        self.process_ready() || busy
    }

    /// Handles the group's ready work; true if there was any.
    pub fn process_ready(&mut self) -> bool {
        let Some(session) = &mut self.session else {
            return false;
        };
        let ready = session.group.take_ready();
        if ready.is_empty() {
            return false;
        }
        for (to, msg) in &ready.messages {
            session.peers.send(*to, msg);
        }
        for event in ready.events {
            self.route(event);
        }
        true
    }

    /// Normal mode delivers; a joiner holds events until its state has arrived.
    fn route(&mut self, event: Event) {
        let Some(session) = &mut self.session else {
            return;
        };
        let me = session.me;
        if let (
            Mode::Awaiting(_),
            Event::Control {
                event:
                    ControlEvent::TransferFailed {
                        donor,
                        joiner,
                        code,
                    },
                ..
            },
        ) = (&session.mode, &event)
        {
            if *joiner == me {
                let reason = format!(
                    "State transfer to this node from {donor} failed: {code} ({}). Will never \
                     receive state",
                    strerror(*code)
                );
                self.fail_transfer(reason);
                return;
            }
        }
        if let Mode::Awaiting(awaiting) = &mut session.mode {
            if let Event::Left = event {
                self.finish_session();
                return;
            }
            hold(awaiting, me, event);
            self.announce_if_admitted();
            let Some(session) = &mut self.session else {
                return;
            };
            let Mode::Awaiting(awaiting) = &mut session.mode else {
                return;
            };
            let no_donor = match &awaiting.held.back() {
                Some(Event::Control {
                    origin,
                    event:
                        ControlEvent::StateRequest {
                            donor: None,
                            donor_names,
                            ..
                        },
                    ..
                }) if *origin == me => Some(if donor_names.is_empty() {
                    "*any*".to_string()
                } else {
                    donor_names.join(",")
                }),
                _ => None,
            };
            if let Some(wanted) = no_donor {
                // Galera's wording (DBAs' filters and MTR's suppressions know it).
                log::warn!(
                    "Member {me} requested state transfer from '{wanted}', but it is \
                     impossible to select State Transfer donor: Resource temporarily \
                     unavailable (retrying in 1 s)"
                );
                awaiting.retry_at = Some(Instant::now() + Duration::from_secs(1));
                awaiting.position = None;
                awaiting.request_index = None;
            }
            self.try_finish_transfer();
            return;
        }
        self.deliver(event);
    }

    fn deliver(&mut self, event: Event) {
        match event {
            Event::Ordered {
                seqno,
                origin: _,
                local,
                payload,
            } => self.deliver_writeset(seqno, local, payload),
            Event::View(view) => self.deliver_view(view),
            Event::CommitCut(cut) => {
                if let Some(certifier) = &mut self.certifier {
                    certifier.purge_upto(&self.links, cut);
                }
                if let Some(gcache) = &mut self.gcache {
                    gcache.release_upto(cut);
                }
                for link in &self.links {
                    link.send(ShardCommand::Release { upto: cut });
                }
                self.publish_index_size();
            }
            Event::ReadIndexReady { ctx, seqno } => {
                if let Some(token) = self
                    .session
                    .as_mut()
                    .and_then(|s| s.read_points.remove(&ctx))
                {
                    self.sink.deliver(Delivered::ReadPoint { token, seqno });
                }
            }
            Event::ReadIndexFailed { ctx } => {
                if let Some(session) = &mut self.session {
                    if let Some(token) = session.read_points.remove(&ctx) {
                        if session.reforming {
                            session.held_reads.push(token);
                        } else {
                            self.sink.deliver(Delivered::ReadPointFailed { token });
                        }
                    }
                }
            }
            Event::ProposalFailed { id, reason } => {
                let again = self.session.as_ref().is_some_and(|s| s.reforming);
                if let Some(pending) = self.session.as_mut().and_then(|s| s.pending.remove(&id)) {
                    if again {
                        if let Some(session) = &mut self.session {
                            session.held_proposals.push((pending.ws, pending.token));
                        }
                        return;
                    }
                    self.sink.deliver(Delivered::ProposalFailed {
                        token: pending.token,
                        reason: format!("{reason:?}"),
                    });
                }
            }
            Event::Control {
                origin,
                event,
                after,
                ..
            } => self.deliver_control(origin, event, after),
            Event::Joined { view, start_seqno } => self.fall_behind(view, start_seqno),
            Event::Refused { peer, reason } => {
                let evicted = self.session.as_ref().is_some_and(|s| s.group.is_evicted());
                if evicted {
                    // Galera's words: the node stays out (non-primary) until restarted.
                    log::error!(
                        "This node was evicted from the cluster ({reason}, said {peer}). \
                         Restart required to rejoin."
                    );
                } else {
                    log::error!("Peer {peer} refused this node: {reason}");
                }
            }
            Event::Left => self.finish_session(),
            Event::Failed { reason } => {
                log::error!("The group core stopped: {reason}; leaving the group");
                self.finish_session();
            }
        }
    }

    fn deliver_control(&mut self, origin: NodeId, event: ControlEvent, after: Seqno) {
        let Some(session) = &self.session else { return };
        let me = session.me;
        match event {
            ControlEvent::StateRequest {
                joiner,
                donor,
                request,
                ist_from,
                ..
            } => {
                if donor != Some(me) {
                    log::info!(
                        "Node {joiner} asked for state at {after}; donor: {}",
                        donor.map_or("none available".to_string(), |d| d.to_string())
                    );
                    return;
                }
                debug_assert_eq!(origin, joiner);
                self.donate(joiner, request, ist_from, after);
            }
            ControlEvent::MemberSynced { node } => log::info!("Member {node} is synced"),
            ControlEvent::MemberDesynced { node } => log::info!("Member {node} is desynced"),
            ControlEvent::FlowControl { node, stop } => {
                self.sink.deliver(Delivered::FlowControl { node, stop })
            }
            ControlEvent::TransferFailed {
                donor,
                joiner,
                code,
            } => log::warn!(
                "State transfer from {donor} to {joiner} failed: {code} ({})",
                strerror(code)
            ),
            // Recorded by the group for the donor choice; nothing to do here.
            ControlEvent::Cached { .. } => {}
            ControlEvent::Vote { node, seqno, code } => {
                self.sink.deliver(Delivered::Vote { node, seqno, code })
            }
            ControlEvent::Evicted { node, by } => {
                log::warn!("Node {node} evicted from the cluster (evs.evict, asked by {by})")
            }
            ControlEvent::EvictionsCleared { by } => {
                log::info!("Evict list cleared (evs.evict, asked by {by})")
            }
            ControlEvent::WeightWanted { node, weight } => {
                log::info!("Member {node} asks for weight {weight} in quorums (pc.weight)")
            }
        }
    }

    fn deliver_writeset(&mut self, seqno: Seqno, local: Option<ProposalId>, payload: Vec<u8>) {
        let Some(session) = &mut self.session else {
            return;
        };
        session.last_seqno = seqno;
        let took_from = Instant::now();
        let pending = local.and_then(|id| session.pending.remove(&id));
        let (ws, bytes, token) = match pending {
            Some(p) => (p.ws, p.bytes, Some(p.token)),
            None => match writeset::decode(&payload) {
                Ok(ws) => (Arc::new(ws), Arc::new(payload), None),
                Err(e) => {
                    // Every node decodes the same committed bytes, so every node skips it alike.
                    log::error!("ordered writeset at seqno {seqno} is invalid and skipped: {e}");
                    self.sink.deliver(Delivered::Writeset {
                        seqno,
                        ws: Arc::new(invalid_writeset()),
                        verdict: Verdict::Conflict {
                            with_seqno: Seqno::UNDEFINED,
                        },
                        local: None,
                    });
                    return;
                }
            },
        };
        let started = Instant::now();
        let outcome = self
            .certifier
            .as_mut()
            .map(|c| c.certify(&self.links, seqno, &ws));
        let elapsed = u64::try_from(started.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1);
        self.board
            .certify_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(elapsed);
        let verdict = match outcome {
            Some(Ok(CertVerdict::Pass { depends_on })) => Verdict::Pass { depends_on },
            Some(Ok(CertVerdict::Conflict { with_seqno, .. })) => Verdict::Conflict { with_seqno },
            Some(Ok(other)) => Verdict::Conflict {
                with_seqno: other.depends_on(),
            },
            Some(Err(e)) => {
                log::error!("certification of seqno {seqno} refused: {e}");
                Verdict::Conflict {
                    with_seqno: Seqno::UNDEFINED,
                }
            }
            None => Verdict::Conflict {
                with_seqno: Seqno::UNDEFINED,
            },
        };
        let certified = Instant::now();
        self.publish_index_size();
        self.gcache_append(
            seqno,
            RecordKind::Writeset,
            Arc::new(gcache_record(&verdict, &bytes)),
        );
        let cached = Instant::now();
        if cached - took_from > SLOW_DELIVERY {
            // The ordering thread answers no peer meanwhile: worth knowing when the cluster
            // re-forms around a bulk transaction.
            log::info!(
                "Delivering seqno {seqno} ({} keys, {} bytes) took {:?}: decode {:?}, \
                 certification {:?}, GCache {:?}",
                ws.keys.len(),
                bytes.len(),
                cached - took_from,
                started - took_from,
                certified - started,
                cached - certified
            );
        }
        self.sink.deliver(Delivered::Writeset {
            seqno,
            ws,
            verdict,
            local: token,
        });
    }

    fn deliver_view(&mut self, group_view: GroupView) {
        let Some(session) = &mut self.session else {
            return;
        };
        if !group_view.primary && self.board.ignore_split_brain.load(AtomicOrdering::Relaxed) {
            // pc.ignore_sb: no quorum is needed, so the members left go on as a primary
            // component at once; the server never sees the non-primary view in between.
            if session.reforming {
                return; // the re-formed component's primary view is on its way
            }
            match session.group.force_bootstrap() {
                Ok(()) => {
                    session.reforming = true;
                    // A note, not a warning: the user asked for exactly this (and Galera says
                    // nothing here; MTR's galera tests would flag a warning).
                    log::info!(
                        "Quorum lost; pc.ignore_sb=true: continuing as a primary component of \
                         this node (a split brain is possible)"
                    );
                    return;
                }
                Err(trireme_group::GroupError::AlreadyPrimary) => {
                    return; // a non-primary view a new primary one has already overtaken
                }
                Err(e) => {
                    log::warn!(
                        "pc.ignore_sb=true, but the primary component cannot be re-formed: {e}"
                    );
                    if std::mem::replace(&mut session.reforming, false) {
                        let proposals = std::mem::take(&mut session.held_proposals);
                        let reads = std::mem::take(&mut session.held_reads);
                        for (_, token) in proposals {
                            self.sink.deliver(Delivered::ProposalFailed {
                                token,
                                reason: "no primary component".into(),
                            });
                        }
                        for token in reads {
                            self.sink.deliver(Delivered::ReadPointFailed { token });
                        }
                    }
                }
            }
        }
        // `wsrep_cluster_weight` moves with the view (0 outside a primary component), before
        // the server shows the view's size (it is also refreshed with every report).
        let weight = if group_view.primary {
            i64::from(session.group.cluster_weight())
        } else {
            0
        };
        self.board
            .cluster_weight
            .store(weight, AtomicOrdering::Relaxed);
        let view = group_view.to_view();
        if view.is_primary() {
            session.history = view.history;
            session.last_seqno = view.seqno;
            if let Some(certifier) = &mut self.certifier {
                if let Err(e) = certifier.barrier(view.seqno) {
                    log::error!("certification barrier at seqno {} refused: {e}", view.seqno);
                }
            }
            self.gcache_append(
                view.seqno,
                RecordKind::ConfigurationChange,
                Arc::new(view_record::encode(&view)),
            );
        }
        self.board
            .primary
            .store(view.is_primary(), AtomicOrdering::Relaxed);
        if view.is_primary() {
            self.save_view(&view);
        }
        self.sink.deliver(Delivered::View(view.clone()));
        if view.is_primary() {
            let (proposals, reads) = match &mut self.session {
                Some(s) => {
                    s.reforming = false;
                    (
                        std::mem::take(&mut s.held_proposals),
                        std::mem::take(&mut s.held_reads),
                    )
                }
                None => Default::default(),
            };
            // Rare (a re-formed primary): encoded again here rather than kept twice meanwhile.
            for (ws, token) in proposals {
                let bytes = ws.encode().to_vec();
                self.propose(ws, bytes, token);
            }
            for token in reads {
                self.read_point(token);
            }
        }
    }

    fn publish_index_size(&self) {
        let size = self.certifier.as_ref().map_or(0, |c| c.local_index_size());
        self.board.slice_index_sizes[0].store(size as u64, AtomicOrdering::Relaxed);
    }

    /// The group session is over: fail what waits, hand the slices back, deliver the final
    /// view.
    fn finish_session(&mut self) {
        let Some(mut session) = self.session.take() else {
            return;
        };
        for (_, pending) in session.pending.drain() {
            self.sink.deliver(Delivered::ProposalFailed {
                token: pending.token,
                reason: "left the group".into(),
            });
        }
        for (_, token) in session.held_proposals.drain(..) {
            self.sink.deliver(Delivered::ProposalFailed {
                token,
                reason: "left the group".into(),
            });
        }
        for token in session.held_reads.drain(..) {
            self.sink.deliver(Delivered::ReadPointFailed { token });
        }
        if let Some((reply, _)) = session.connect_reply.take() {
            let _ = reply.send(Err("left the group before being admitted".into()));
        }
        session.peers.close_all(self.waker.raw_fd());
        if session.leaving {
            // Left on purpose: this node must not pull a crashed cluster back on restart.
            gvwstate::remove(&self.config.state_dir);
        }
        self.certifier = None;
        self.close_gcache();
        self.publish_index_size();
        self.board.primary.store(false, AtomicOrdering::Relaxed);
        self.sink.deliver(Delivered::Disconnected {
            history: session.history,
            seqno: session.last_seqno,
        });
    }

    /// Closes every GCache slice (the shards close theirs before acknowledging).
    fn close_gcache(&mut self) {
        for link in &self.links {
            link.detach();
        }
        if let Some(gcache) = self.gcache.take() {
            if let Err(e) = gcache.close() {
                log::warn!("GCache close failed: {e}");
            }
        }
        self.board.publish_gcache_range(0, None);
    }

    /// After an internal error: drop the session as if the group had been left.
    pub fn fail_session(&mut self, reason: &str) {
        log::error!("leaving the group: {reason}");
        self.finish_session();
    }

    pub fn shutdown(&mut self) {
        if self.session.is_some() {
            self.finish_session();
        }
        for link in &self.links {
            link.send(ShardCommand::Stop);
        }
    }
}

/// What a writeset that failed validation is delivered as: nothing to apply.
fn invalid_writeset() -> Writeset {
    Writeset {
        source: NodeId::NIL,
        trx_id: u64::MAX,
        conn_id: u64::MAX,
        flags: 0,
        last_seen: Seqno::UNDEFINED,
        keys: Vec::new(),
        data: Vec::new(),
    }
}

fn ticks(duration: std::time::Duration, tick: std::time::Duration) -> u64 {
    (duration.as_millis() / tick.as_millis().max(1)).clamp(3, u128::from(u32::MAX)) as u64
}

/// The seed of the group core's PRNG: different per node incarnation, fixed for its life.
fn seed_from(node: NodeId) -> u64 {
    node.short_id()
}
