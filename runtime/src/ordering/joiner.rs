//! A joining node: it holds what the group delivers until its state transfer is complete, then
//! imports the donor's certification index, applies what IST brought, and continues.

use super::*;

/// What a joiner waits for before it can certify and apply.
pub(super) struct Awaiting {
    /// Everything the group delivered since we joined, in order.
    pub(super) held: VecDeque<Event>,
    /// `Delivered::Joined` was sent (we saw a primary view that lists us).
    pub(super) announced: bool,
    /// Our request, kept to propose it again if no donor could be chosen.
    pub(super) request: Option<ControlEntry>,
    pub(super) retry_at: Option<Instant>,
    /// D: the seqno our request was ordered after; everything up to it comes with the state.
    pub(super) position: Option<Seqno>,
    /// Index in `held` of our ordered request.
    pub(super) request_index: Option<usize>,
    pub(super) stream: Option<Result<Received, String>>,
    /// What MariaDB's SST reported (`sst_received`).
    pub(super) received: Option<(Gtid, i32)>,
    pub(super) last_view: Option<GroupView>,
    /// The server sent no SST request (its method cannot copy into a running server): only
    /// IST can bring this node back, and no `sst_received` will come.
    pub(super) ist_only: bool,
}

impl Awaiting {
    pub(super) fn new(last_view: Option<GroupView>) -> Awaiting {
        Awaiting {
            held: VecDeque::new(),
            announced: false,
            request: None,
            retry_at: None,
            position: None,
            request_index: None,
            stream: None,
            received: None,
            last_view,
            ist_only: false,
        }
    }
}

/// Holds one event for a joiner, noting the views and our own ordered state request.
pub(super) fn hold(awaiting: &mut Awaiting, me: NodeId, event: Event) {
    match &event {
        Event::View(view) if view.primary => awaiting.last_view = Some(view.clone()),
        // A group snapshot while we wait (two can come in one round: the first before our
        // promotion, the next with the view that admits us). It only moves the point the
        // state transfer starts from, which the transfer covers. Its view is held as a view
        // (the view in force at the transfer point may be this one); held as it came, it was
        // never seen as one, and the node waited for an admission it already had.
        Event::Joined { view, .. } => {
            if let Some(view) = view.as_ref().filter(|v| v.primary) {
                awaiting.last_view = Some(view.clone());
                awaiting.held.push_back(Event::View(view.clone()));
            }
            return;
        }
        Event::Control {
            origin,
            event: ControlEvent::StateRequest { donor: Some(_), .. },
            after,
            ..
        } if *origin == me && awaiting.position.is_none() => {
            awaiting.position = Some(*after);
            awaiting.request_index = Some(awaiting.held.len());
        }
        _ => {}
    }
    awaiting.held.push_back(event);
}

impl Ordering {
    pub(super) fn awaiting(&mut self) -> Option<&mut Awaiting> {
        match self.session.as_mut().map(|s| &mut s.mode) {
            Some(Mode::Awaiting(a)) => Some(a),
            _ => None,
        }
    }

    /// Once a primary view lists this node, MariaDB hears that it joined (and asks for state).
    pub(super) fn announce_if_admitted(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        if session.leaving {
            // Shutting down: a state transfer now would start MariaDB's joiner script in a
            // server that is stopping, and the shutdown would wait for it for good (MTR
            // galera_3nodes.galera_allowlist). What follows stays held; the leave completes.
            return;
        }
        let Mode::Awaiting(awaiting) = &mut session.mode else {
            return;
        };
        let admitted = awaiting
            .last_view
            .as_ref()
            .is_some_and(|v| v.primary && v.my_index.is_some());
        if awaiting.announced || !admitted {
            return;
        }
        awaiting.announced = true;
        let view = awaiting
            .last_view
            .as_ref()
            .map(|v| v.to_view())
            .expect("checked above");
        let start = Gtid::new(view.history, view.seqno);
        if let Some((reply, _)) = session.connect_reply.take() {
            let _ = reply.send(Ok(()));
        }
        log::info!("Admitted to the primary component at {start}; waiting for state transfer");
        self.sink.deliver(Delivered::Joined { view, start });
    }

    /// The group moved this member past seqnos it never delivered (it was cut off or frozen
    /// while the others went on, and their log no longer reaches back to it). It becomes a
    /// joiner again: what follows is held, and MariaDB is asked for a state transfer from
    /// what it has, which a donor serves by IST while its GCache covers the gap.
    pub(super) fn fall_behind(&mut self, view: Option<GroupView>, start_seqno: Seqno) {
        let Some(session) = &mut self.session else {
            return;
        };
        // A note: after a partition this is the expected way back (Galera logs its IST as notes).
        log::info!(
            "This node missed seqnos {}..{start_seqno} while away (the group's log no longer \
             holds them); {}",
            Seqno(session.last_seqno.0 + 1),
            if session.leaving {
                "not rejoining: this node is leaving"
            } else {
                "rejoining by state transfer"
            }
        );
        session.mode = Mode::Awaiting(Box::new(Awaiting::new(view.filter(|v| v.primary))));
        // Certification restarts from the donor's index at the transfer point.
        self.certifier = None;
        self.publish_index_size();
        self.board.primary.store(false, AtomicOrdering::Relaxed);
        self.announce_if_admitted();
    }

    // ------------------------------------------------------------------------------------
    // Connecting

    /// A joiner asks for state: bind the stream receiver, then order the request.
    pub(super) fn request_state(
        &mut self,
        sst_request: Vec<u8>,
        donor_names: Vec<String>,
        ist_from: Gtid,
    ) {
        let cluster = match &self.session {
            Some(s) => s.cluster,
            None => return,
        };
        let sst_request_is_empty = sst_request.is_empty();
        let Some(stream_address) = self.config.ist_recv.clone() else {
            self.fail_transfer("no ist.recv_addr to receive the state stream on".into());
            return;
        };
        let bind = self
            .config
            .ist_bind
            .clone()
            .unwrap_or_else(|| stream_address.clone());
        let listener = match transfer::bind(&bind) {
            Ok(listener) => listener,
            Err(e) => {
                self.fail_transfer(e);
                return;
            }
        };
        transfer::receive(
            listener,
            cluster,
            transfer::report_to(self.inbox.clone(), self.waker.clone()),
        );
        let request = TransferRequest {
            sst_request,
            stream_address,
        }
        .encode();
        let entry = ControlEntry::StateRequest {
            donor_names,
            request,
            ist_from: Position::from(ist_from),
        };
        let ist_only = sst_request_is_empty;
        if let Some(awaiting) = self.awaiting() {
            awaiting.request = Some(entry.clone());
            awaiting.ist_only = ist_only;
        }
        if let Some(session) = &mut self.session {
            if let Err(e) = session.group.propose_control(entry) {
                log::warn!("state transfer request not sent yet ({e}); will retry");
                if let Some(awaiting) = self.awaiting() {
                    awaiting.retry_at = Some(Instant::now() + Duration::from_secs(1));
                }
            }
        }
    }

    pub(super) fn fail_transfer(&mut self, reason: String) {
        log::error!("State transfer failed: {reason}");
        self.sink.deliver(Delivered::StateFailed { reason });
    }

    // ------------------------------------------------------------------------------------
    // The loop's hooks

    pub(super) fn retry_state_request(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Mode::Awaiting(awaiting) = &mut session.mode else {
            return;
        };
        let due = awaiting.retry_at.is_some_and(|at| Instant::now() >= at);
        if !due {
            return;
        }
        awaiting.retry_at = None;
        if let Some(entry) = awaiting.request.clone() {
            log::info!("Requesting state transfer again");
            if let Err(e) = session.group.propose_control(entry) {
                log::warn!("state transfer request not sent yet ({e}); will retry");
                awaiting.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// A joiner finishes its transfer once it has the stream, MariaDB's SST result and its
    /// place in the order.
    pub(super) fn try_finish_transfer(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Mode::Awaiting(awaiting) = &mut session.mode else {
            return;
        };
        // IST only: the stream alone decides; the data is where this node left it.
        if awaiting.ist_only && awaiting.received.is_none() {
            if let Some(Ok(stream)) = awaiting.stream.as_ref() {
                if !stream.ist_from.is_defined() {
                    awaiting.stream = None;
                    self.fail_transfer(
                        "the donors' GCache no longer holds what this node missed, and the \
                         server's SST method cannot copy into a running server: restart this \
                         node to rejoin by SST"
                            .into(),
                    );
                    return;
                }
                awaiting.received = Some((Gtid::new(stream.history, stream.ist_from), 0));
            }
        }
        let (Some(position), Some(stream), Some((gtid, rcode))) = (
            awaiting.position,
            awaiting.stream.as_ref(),
            awaiting.received,
        ) else {
            if let Some(Err(e)) = awaiting.stream.as_ref() {
                let reason = e.clone();
                awaiting.stream = None;
                self.fail_transfer(reason);
            }
            return;
        };
        let stream = match stream {
            Ok(s) => s.clone(),
            Err(_) => return,
        };
        if rcode < 0 {
            let reason = format!("the SST script failed ({rcode})");
            awaiting.received = None;
            self.fail_transfer(reason);
            return;
        }
        // SST: the script brought the data to where it locked the donor, at or after D (the
        // donor kept committing until then, as Galera's does); the held events up to there
        // are certified but not applied. IST: the data stays where it was (the joiner's own
        // position P, handed back by the donor's script) and the stream carries (P, D].
        let ist = stream.ist_from.is_defined();
        let (data_at, cached_from) = if ist {
            (stream.ist_from, stream.ist_from)
        } else {
            (gtid.seqno, position)
        };
        // After IST the server may report a lower seqno than ours when the last events it
        // missed were writesets that failed certification (they leave no trace in InnoDB).
        let seqno_ok = if ist {
            gtid.seqno <= data_at
        } else {
            gtid.seqno >= position
        };
        if stream.position != position || !seqno_ok || gtid.history != stream.history {
            let reason = format!(
                "state transfer positions disagree: ordered at {position}, stream at {}:{}, SST at {gtid}",
                stream.history, stream.position
            );
            awaiting.received = None;
            self.fail_transfer(reason);
            return;
        }
        let snapshot = match CertSnapshot::decode(&stream.index) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                awaiting.received = None;
                self.fail_transfer(format!("bad certification index from the donor: {e}"));
                return;
            }
        };
        let Mode::Awaiting(awaiting) = std::mem::replace(&mut session.mode, Mode::Normal) else {
            unreachable!("checked above")
        };
        let request_index = awaiting.request_index.unwrap_or(0);
        session.history = stream.history;
        session.last_seqno = position;
        // The view in force at D: the last primary view held before our request.
        let view: Option<View> =
            awaiting
                .held
                .iter()
                .take(request_index)
                .rev()
                .find_map(|e| match e {
                    Event::View(v) if v.primary => Some(v.to_view()),
                    _ => None,
                });
        let cert_config = self.cert_config();
        match CertEngine::start(position, &self.links, cert_config) {
            Ok(mut engine) => {
                engine.import(&self.links, &snapshot);
                self.certifier = Some(engine);
            }
            Err(e) => {
                self.fail_transfer(format!("cannot start certification at {position}: {e}"));
                return;
            }
        }
        self.publish_index_size();
        self.open_gcache(stream.history, cached_from);
        if let Some(view) = &view {
            self.save_view(view);
        }
        log::info!(
            "State transfer complete at {}:{position} (data at {data_at}); {} held event(s) follow",
            stream.history,
            awaiting.held.len().saturating_sub(request_index + 1)
        );
        self.sink.deliver(Delivered::StateReady {
            position: Gtid::new(stream.history, data_at),
            view,
        });
        if let (Some(first), Some(last)) = (stream.missed.first(), stream.missed.last()) {
            // Galera's words: MTR (galera_ist_progress) and DBAs' scripts look for them.
            log::info!(
                "Receiving IST: {} writesets, seqnos {}-{}",
                stream.missed.len(),
                first.seqno,
                last.seqno
            );
        }
        for record in stream.missed {
            self.replay_missed(record);
        }
        for event in awaiting.held.into_iter().skip(request_index + 1) {
            self.deliver(event);
        }
        self.sink.deliver(Delivered::CaughtUp);
    }

    /// One record received by IST: applied with the verdict every node gave it (it is not
    /// certified again; the imported index already reflects it), and cached here too.
    pub(super) fn replay_missed(&mut self, record: transfer::MissedRecord) {
        let seqno = record.seqno;
        let kind = RecordKind::from_byte(record.kind);
        let parsed = match kind {
            Some(RecordKind::Writeset) if record.bytes.len() >= 9 => {
                let passed = record.bytes[0] == 1;
                let mut word = [0u8; 8];
                word.copy_from_slice(&record.bytes[1..9]);
                let seqno_field = Seqno(i64::from_le_bytes(word));
                writeset::decode(&record.bytes[9..]).ok().map(|ws| {
                    let verdict = if passed {
                        Verdict::Pass {
                            depends_on: seqno_field,
                        }
                    } else {
                        Verdict::Conflict {
                            with_seqno: seqno_field,
                        }
                    };
                    (Arc::new(ws), verdict)
                })
            }
            _ => None,
        };
        if kind == Some(RecordKind::ConfigurationChange) {
            if let Some(mut view) = view_record::decode(&record.bytes) {
                // MariaDB gets the configuration changes it missed, in order, as Galera
                // replays them through IST; it keeps the last one as its view.
                if let Some(session) = &mut self.session {
                    view.my_index = view.members.iter().position(|m| m.id == session.me);
                    session.last_seqno = seqno;
                }
                self.gcache_append(
                    seqno,
                    RecordKind::ConfigurationChange,
                    Arc::new(record.bytes),
                );
                self.sink.deliver(Delivered::View(view));
                return;
            }
        }
        let (ws, verdict) = parsed.unwrap_or_else(|| {
            // A configuration change (or anything else) only takes its place in the order.
            (
                Arc::new(invalid_writeset()),
                Verdict::Conflict {
                    with_seqno: Seqno::UNDEFINED,
                },
            )
        });
        if let Some(kind) = kind {
            self.gcache_append(seqno, kind, Arc::new(record.bytes));
        }
        if let Some(session) = &mut self.session {
            session.last_seqno = seqno;
        }
        self.sink.deliver(Delivered::Writeset {
            seqno,
            ws,
            verdict,
            local: None,
        });
    }
}
