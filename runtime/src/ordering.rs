//! Shard 0's duties: drive the group core, and turn what it orders into deliveries.
//!
//! For each writeset the group delivers in total order: decode it (remote ones; a local one
//! is matched to its proposal, no decode), certify it, append it to the GCache, and hand it to
//! the owner's sink. Configuration changes are certification barriers and GCache records too.
//! Everything here runs on one thread, in delivery order: that is what makes certification
//! deterministic across nodes.

use crate::api::{ConnectMode, ConnectRequest, Delivered, Sink, Token, Verdict};
use crate::{Board, Command, RuntimeConfig};
use std::collections::HashMap;
use std::sync::atomic::Ordering as AtomicOrdering;
use std::sync::Arc;
use trireme_cert::{CertConfig, Certifier, Verdict as CertVerdict};
use trireme_gcache::{GCache, RecordKind};
use trireme_group::{Event, Group, GroupConfig, GroupView, ProposalId};
use trireme_types::{writeset, HistoryId, NodeId, Seqno, Writeset};

/// A local writeset waiting for its place in the order.
struct Pending {
    token: Token,
    ws: Arc<Writeset>,
    bytes: Vec<u8>,
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

pub(crate) struct Ordering {
    config: RuntimeConfig,
    sink: Arc<dyn Sink>,
    board: Arc<Board>,
    session: Option<Session>,
    certifier: Option<Certifier>,
    gcache: Option<GCache>,
}

/// How often (in ticks) the committed position is reported for the commit cut.
const REPORT_EVERY_TICKS: u32 = 10;

impl Ordering {
    pub fn new(config: RuntimeConfig, sink: Arc<dyn Sink>, board: Arc<Board>) -> Ordering {
        Ordering {
            config,
            sink,
            board,
            session: None,
            certifier: None,
            gcache: None,
        }
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
        let certifier = Certifier::new(
            1,
            position.seqno,
            CertConfig {
                optimistic_pa: self.config.cert_optimistic_pa,
                ..CertConfig::default()
            },
        )
        .map_err(|e| e.to_string())?;
        self.certifier = Some(certifier);
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

    fn open_gcache(&mut self, history: HistoryId) {
        if self.gcache.is_some() {
            return;
        }
        match GCache::open(self.config.gcache.clone(), history) {
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
                self.gcache = Some(gcache);
            }
            Err(e) => {
                // Without a cache the node still replicates; it just cannot donate IST.
                log::error!("GCache unavailable, continuing without it: {e}");
            }
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
                session.pending.insert(id, Pending { token, ws, bytes });
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
        let committed = self.sink.committed();
        if let Some(session) = &mut self.session {
            session.group.tick();
            session.ticks_since_report += 1;
            if session.ticks_since_report >= REPORT_EVERY_TICKS {
                session.ticks_since_report = 0;
                session.group.report_committed(committed);
            }
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
                    certifier.purge_upto(cut);
                    self.board
                        .cert_index_size
                        .store(certifier.index_size() as u64, AtomicOrdering::Relaxed);
                }
                if let Some(gcache) = &mut self.gcache {
                    gcache.release_upto(cut);
                }
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
            Event::ProposalFailed { id, reason } => {
                if let Some(pending) = self.session.as_mut().and_then(|s| s.pending.remove(&id)) {
                    self.sink.deliver(Delivered::ProposalFailed {
                        token: pending.token,
                        reason: format!("{reason:?}"),
                    });
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
                Ok(ws) => (Arc::new(ws), payload, None),
                Err(e) => {
                    // Every node decodes the same committed bytes, so every node skips it alike.
                    log::error!("ordered writeset at seqno {seqno} is invalid and skipped: {e}");
                    let empty = Arc::new(Writeset {
                        source: NodeId::NIL,
                        trx_id: u64::MAX,
                        conn_id: u64::MAX,
                        flags: 0,
                        last_seen: Seqno::UNDEFINED,
                        keys: Vec::new(),
                        data: Vec::new(),
                    });
                    self.sink.deliver(Delivered::Writeset {
                        seqno,
                        ws: empty,
                        verdict: Verdict::Conflict {
                            with_seqno: Seqno::UNDEFINED,
                        },
                        local: None,
                    });
                    return;
                }
            },
        };
        let verdict = match self.certifier.as_mut().map(|c| c.certify(seqno, &ws)) {
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
        if let Some(certifier) = &self.certifier {
            self.board
                .cert_index_size
                .store(certifier.index_size() as u64, AtomicOrdering::Relaxed);
        }
        if let Some(gcache) = &mut self.gcache {
            if let Err(e) = gcache.append(seqno, RecordKind::Writeset, &bytes) {
                log::warn!("GCache append of seqno {seqno} failed: {e}");
            } else if self.board.cached_downto.load(AtomicOrdering::Relaxed) < 0 {
                self.board
                    .cached_downto
                    .store(seqno.0, AtomicOrdering::Relaxed);
            }
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
        let view = group_view.to_view();
        if view.is_primary() {
            session.history = view.history;
            session.last_seqno = view.seqno;
            if let Some(certifier) = &mut self.certifier {
                if let Err(e) = certifier.certify_barrier(view.seqno) {
                    log::error!("certification barrier at seqno {} refused: {e}", view.seqno);
                }
            }
            if let Some(gcache) = &mut self.gcache {
                let record = format!("view {} members {}", view.view_id.0, view.members.len());
                if let Err(e) = gcache.append(
                    view.seqno,
                    RecordKind::ConfigurationChange,
                    record.as_bytes(),
                ) {
                    log::warn!("GCache append of view at seqno {} failed: {e}", view.seqno);
                } else if self.board.cached_downto.load(AtomicOrdering::Relaxed) < 0 {
                    self.board.cached_downto.store(view.seqno.0, AtomicOrdering::Relaxed);
                }
            }
        }
        self.board
            .primary
            .store(view.is_primary(), AtomicOrdering::Relaxed);
        self.sink.deliver(Delivered::View(view));
    }

    /// The group session is over: fail what waits, deliver the final view.
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
        self.board.primary.store(false, AtomicOrdering::Relaxed);
        self.sink.deliver(Delivered::Disconnected {
            history: session.history,
            seqno: session.last_seqno,
        });
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
        if let Some(gcache) = self.gcache.take() {
            if let Err(e) = gcache.close() {
                log::warn!("GCache close failed: {e}");
            }
        }
    }
}

fn ticks(duration: std::time::Duration, tick: std::time::Duration) -> u64 {
    (duration.as_millis() / tick.as_millis().max(1)).clamp(3, u128::from(u32::MAX)) as u64
}

/// The seed of the group core's PRNG: different per node incarnation, fixed for its life.
fn seed_from(node: NodeId) -> u64 {
    node.short_id()
}
