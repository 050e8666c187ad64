//! Shard 0's duties: drive the group core, and turn what it orders into deliveries.
//!
//! For each writeset the group delivers in total order: decode it (remote ones; a local one
//! is matched to its proposal, no decode), certify it, append it to the GCache, and hand it to
//! the owner's sink. Configuration changes are certification barriers and GCache records too.
//! Everything here runs on one thread, in delivery order: that is what makes certification
//! deterministic across nodes. With several shards, the keys of a writeset are checked by the
//! shards owning them (`CertEngine::Sharded`) and GCache records go to the slice owning their
//! seqno stripe; the verdict never depends on the shard count (the cert crate's model test).

use crate::api::{ConnectMode, ConnectRequest, Delivered, Sink, Token, Verdict};
use crate::shards::{ShardCommand, ShardLink};
use crate::{Board, Command, RuntimeConfig};
use std::collections::HashMap;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use trireme_cert::{
    CertConfig, CertError, CertGlobal, CertSlice, Certifier, CheckInput, Partial,
    Verdict as CertVerdict,
};
use trireme_gcache::{slice_of, GCache, GCacheSlice, RecordKind};
use trireme_group::{Event, Group, GroupConfig, GroupView, ProposalId};
use trireme_types::{writeset, HistoryId, NodeId, Seqno, Writeset};

/// A local writeset waiting for its place in the order.
struct Pending {
    token: Token,
    ws: Arc<Writeset>,
    bytes: Arc<Vec<u8>>,
}

/// One connection to a group (from `connect` to the final view).
struct Session {
    group: Group,
    history: HistoryId,
    last_seqno: Seqno,
    pending: HashMap<ProposalId, Pending>,
    read_points: HashMap<u64, Token>,
    next_read: u64,
    leaving: bool,
    ticks_since_report: u32,
}

/// Certification on shard 0: the single-thread facade with one shard, or the global part plus
/// slice 0 here and slices 1..N on their shards.
enum CertEngine {
    Single(Certifier),
    Sharded {
        global: CertGlobal,
        slice0: CertSlice,
        partials: Vec<Partial>,
    },
}

impl CertEngine {
    fn start(position: Seqno, links: &[ShardLink], config: CertConfig) -> Result<Self, CertError> {
        let shard_count = links.len() as u32 + 1;
        if shard_count == 1 {
            return Ok(CertEngine::Single(Certifier::new(1, position, config)?));
        }
        let global = CertGlobal::new(shard_count, position, config)?;
        let slice0 = CertSlice::new(0, shard_count)?;
        for link in links {
            link.send(ShardCommand::AttachCert {
                cert: CertSlice::new(link.index, shard_count)?,
            });
        }
        Ok(CertEngine::Sharded {
            global,
            slice0,
            partials: Vec::with_capacity(shard_count as usize),
        })
    }

    fn certify(
        &mut self,
        links: &[ShardLink],
        seqno: Seqno,
        ws: &Arc<Writeset>,
    ) -> Result<CertVerdict, CertError> {
        let (global, slice0, partials) = match self {
            CertEngine::Single(certifier) => return certifier.certify(seqno, ws),
            CertEngine::Sharded {
                global,
                slice0,
                partials,
            } => (global, slice0, partials),
        };
        let input = CheckInput::new(seqno, ws);
        global.check_next(seqno)?;
        let shard_count = links.len() as u32 + 1;
        // Ask only the shards that own one of the keys; the others' answer is known.
        let mut touched = vec![false; shard_count as usize];
        for key in &ws.keys {
            touched[key.hash.shard(shard_count) as usize] = true;
        }
        for link in links.iter().filter(|l| touched[l.index as usize]) {
            link.send(ShardCommand::Check {
                seqno,
                ws: ws.clone(),
            });
        }
        partials.clear();
        partials.push(slice0.check(&input));
        for link in links {
            partials.push(match touched[link.index as usize] {
                true => link
                    .partial()
                    .unwrap_or_else(|| Partial::empty(link.index, seqno)),
                false => Partial::empty(link.index, seqno),
            });
        }
        let verdict = global.merge(&input, partials)?;
        slice0.apply(&input, &verdict);
        // Sent before the next Check: each shard records this verdict before it checks the
        // next writeset (its inbox is FIFO).
        for link in links.iter().filter(|l| touched[l.index as usize]) {
            link.send(ShardCommand::Apply {
                seqno,
                ws: ws.clone(),
                verdict,
            });
        }
        Ok(verdict)
    }

    fn barrier(&mut self, seqno: Seqno) -> Result<(), CertError> {
        match self {
            CertEngine::Single(certifier) => certifier.certify_barrier(seqno),
            CertEngine::Sharded { global, .. } => global.barrier(seqno),
        }
    }

    /// The commit cut: forget every record at or below `cut`, everywhere.
    fn purge_upto(&mut self, links: &[ShardLink], cut: Seqno) {
        let below = Seqno(cut.0.saturating_add(1));
        match self {
            CertEngine::Single(certifier) => certifier.purge_below(below),
            CertEngine::Sharded { global, slice0, .. } => {
                global.purge_below(below);
                slice0.purge_below(below);
                for link in links {
                    link.send(ShardCommand::Purge { below });
                }
            }
        }
    }

    /// Keys in the slice(s) this thread owns.
    fn local_index_size(&self) -> usize {
        match self {
            CertEngine::Single(certifier) => certifier.index_size(),
            CertEngine::Sharded { slice0, .. } => slice0.key_count(),
        }
    }
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
}

/// How often (in ticks) the committed position is reported for the commit cut.
const REPORT_EVERY_TICKS: u32 = 10;

impl Ordering {
    pub fn new(
        config: RuntimeConfig,
        sink: Arc<dyn Sink>,
        board: Arc<Board>,
        links: Vec<ShardLink>,
    ) -> Ordering {
        Ordering {
            config,
            sink,
            board,
            session: None,
            certifier: None,
            gcache: None,
            links,
        }
    }

    fn shard_count(&self) -> u32 {
        self.links.len() as u32 + 1
    }

    pub fn command(&mut self, command: Command) {
        match command {
            Command::Connect { request, reply } => {
                let result = self.connect(request);
                let _ = reply.send(result);
            }
            Command::Propose { ws, token } => self.propose(ws, token),
            Command::ReadPoint { token } => self.read_point(token),
            Command::Disconnect => self.disconnect(),
            Command::ForceBootstrap => {
                if let Some(session) = &mut self.session {
                    if let Err(e) = session.group.force_bootstrap() {
                        log::warn!("pc.bootstrap refused: {e}");
                    }
                }
            }
            Command::Stop => {}
        }
    }

    fn connect(&mut self, request: ConnectRequest) -> Result<(), String> {
        if self.session.is_some() {
            return Err("already connected".into());
        }
        let mut group_config =
            GroupConfig::new(request.node, &request.node_name, &request.cluster_name);
        group_config.incoming = request.incoming.clone();
        group_config.election_ticks = ticks(self.config.election_timeout, self.config.tick);
        group_config.heartbeat_ticks = (group_config.election_ticks / 10).max(1);
        group_config.suspect_ticks = ticks(self.config.suspect_timeout, self.config.tick);
        group_config.seed = seed_from(request.node);
        let (group, position) = match request.mode {
            ConnectMode::Bootstrap { position } => {
                let group = Group::bootstrap(group_config, position.history, position.seqno)
                    .map_err(|e| e.to_string())?;
                (group, position)
            }
            ConnectMode::Join { .. } => {
                return Err(
                    "joining a running cluster is not implemented yet: this build \
                            bootstraps one-node clusters only (wsrep_cluster_address=gcomm://)"
                        .into(),
                )
            }
        };
        let cert_config = CertConfig {
            optimistic_pa: self.config.cert_optimistic_pa,
            ..CertConfig::default()
        };
        self.certifier = Some(
            CertEngine::start(position.seqno, &self.links, cert_config)
                .map_err(|e| e.to_string())?,
        );
        self.open_gcache(position.history);
        self.session = Some(Session {
            group,
            history: position.history,
            last_seqno: position.seqno,
            pending: HashMap::new(),
            read_points: HashMap::new(),
            next_read: 1,
            leaving: false,
            ticks_since_report: 0,
        });
        Ok(())
    }

    /// Opens the GCache with one slice per shard and hands slices 1..N to their shards.
    fn open_gcache(&mut self, history: HistoryId) {
        if self.gcache.is_some() {
            return;
        }
        let mut config = self.config.gcache.clone();
        config.slice_count = self.shard_count();
        match GCache::open(config, history) {
            Ok((gcache, report)) => {
                log::info!(
                    "GCache {}: {:?}, {} record(s) recovered, range {:?}, in {:?}",
                    report.path.display(),
                    report.file,
                    report.records,
                    report.range,
                    report.elapsed
                );
                if let Some((low, _)) = gcache.range() {
                    self.board
                        .cached_downto
                        .store(low.0, AtomicOrdering::Relaxed);
                }
                let mut slices = gcache.into_slices().into_iter();
                self.gcache = slices.next();
                for (link, slice) in self.links.iter().zip(slices) {
                    link.send(ShardCommand::AttachGCache { gcache: slice });
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
            }
        } else if let Some(link) = self.links.get(slice as usize - 1) {
            link.send(ShardCommand::Append { seqno, kind, bytes });
        }
        if self.board.cached_downto.load(AtomicOrdering::Relaxed) < 0 {
            self.board
                .cached_downto
                .store(seqno.0, AtomicOrdering::Relaxed);
        }
    }

    fn propose(&mut self, ws: Arc<Writeset>, token: Token) {
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
        let bytes = ws.encode().to_vec();
        match session.group.propose(bytes.clone()) {
            Ok(id) => {
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

    fn read_point(&mut self, token: Token) {
        let Some(session) = &mut self.session else {
            self.sink.deliver(Delivered::ReadPointFailed { token });
            return;
        };
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
            session.group.report_committed(report);
        }
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
        // Messages would go to the transport here; a one-node group sends none.
        for event in ready.events {
            self.deliver(event);
        }
        true
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
                if let Some(token) = self
                    .session
                    .as_mut()
                    .and_then(|s| s.read_points.remove(&ctx))
                {
                    self.sink.deliver(Delivered::ReadPointFailed { token });
                }
            }
            Event::ProposalFailed { id, reason } => {
                if let Some(pending) = self.session.as_mut().and_then(|s| s.pending.remove(&id)) {
                    self.sink.deliver(Delivered::ProposalFailed {
                        token: pending.token,
                        reason: format!("{reason:?}"),
                    });
                }
            }
            Event::Left => self.finish_session(),
            other => log::debug!("group event not handled yet: {other:?}"),
        }
    }

    fn deliver_writeset(&mut self, seqno: Seqno, local: Option<ProposalId>, payload: Vec<u8>) {
        let Some(session) = &mut self.session else {
            return;
        };
        session.last_seqno = seqno;
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
        let outcome = self
            .certifier
            .as_mut()
            .map(|c| c.certify(&self.links, seqno, &ws));
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
        self.publish_index_size();
        self.gcache_append(seqno, RecordKind::Writeset, bytes);
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
        let view = group_view.to_view();
        if view.is_primary() {
            session.history = view.history;
            session.last_seqno = view.seqno;
            if let Some(certifier) = &mut self.certifier {
                if let Err(e) = certifier.barrier(view.seqno) {
                    log::error!("certification barrier at seqno {} refused: {e}", view.seqno);
                }
            }
            let record = format!("view {} members {}", view.view_id.0, view.members.len());
            self.gcache_append(
                view.seqno,
                RecordKind::ConfigurationChange,
                Arc::new(record.into_bytes()),
            );
        }
        self.board
            .primary
            .store(view.is_primary(), AtomicOrdering::Relaxed);
        self.sink.deliver(Delivered::View(view));
    }

    fn publish_index_size(&self) {
        if let Some(certifier) = &self.certifier {
            self.board.slice_index_sizes[0]
                .store(certifier.local_index_size() as u64, AtomicOrdering::Relaxed);
        }
    }

    /// The group session is over: fail what waits, hand the slices back, deliver the final
    /// view.
    fn finish_session(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        for (_, pending) in session.pending {
            self.sink.deliver(Delivered::ProposalFailed {
                token: pending.token,
                reason: "left the group".into(),
            });
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
        self.board.cached_downto.store(-1, AtomicOrdering::Relaxed);
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
