//! A donor: at the point of the order where the joiner's request is delivered, it takes its
//! certification index (and, for IST, the missed writesets from its GCache) and streams them.

use super::*;

impl Ordering {
    /// This node was chosen as donor: take the index at D (now, in total order), stream it to
    /// the joiner, and let the server run its SST script.
    pub(super) fn donate(
        &mut self,
        joiner: NodeId,
        request: Vec<u8>,
        ist_from: Position,
        position: Seqno,
    ) {
        let Some(session) = &self.session else { return };
        let history = session.history;
        let cluster = session.cluster;
        let request = match TransferRequest::decode(&request) {
            Ok(r) => r,
            Err(e) => {
                log::error!("State request of {joiner} is malformed ({e}); not donating");
                return;
            }
        };
        debug_assert_eq!(position, session.last_seqno);
        let snapshot = match &self.certifier {
            Some(certifier) => certifier.export(&self.links),
            None => {
                log::error!("Chosen as donor without a certification index; not donating");
                return;
            }
        };
        // IST when the joiner is in our history and our GCache still holds everything it
        // missed; SST otherwise.
        let mut missed = Vec::new();
        let mut bypass = false;
        if ist_from.history == history && ist_from.seqno.is_defined() && ist_from.seqno <= position
        {
            missed = self.read_gcache(ist_from.seqno.next(), position);
            let wanted = position.0 - ist_from.seqno.0;
            let contiguous = missed
                .iter()
                .zip(ist_from.seqno.0 + 1..)
                .all(|(r, s)| r.seqno.0 == s);
            bypass = contiguous && missed.len() as i64 == wanted;
            if !bypass {
                log::info!(
                    "IST from {} impossible: the GCache holds {} of the {wanted} writesets; SST instead",
                    ist_from.seqno,
                    missed.len()
                );
                missed.clear();
            }
        }
        log::info!(
            "Donating {} to {joiner} at {history}:{position} (index of {} record(s), {} missed writeset(s)) via {}",
            if bypass { "IST" } else { "SST" },
            snapshot.records.len(),
            missed.len(),
            request.stream_address
        );
        let mut messages = Vec::with_capacity(missed.len() + 3);
        messages.push(StreamMsg::Header {
            history,
            position,
            ist_from: if bypass {
                ist_from.seqno
            } else {
                Seqno::UNDEFINED
            },
        });
        messages.push(StreamMsg::Index(snapshot.encode()));
        messages.extend(missed.into_iter().map(StreamMsg::Missed));
        messages.push(StreamMsg::End);
        transfer::send(request.stream_address, cluster, messages);
        if request.sst_request.is_empty() {
            // An IST-only request (a running node rejoining): no script runs on either side,
            // so nothing pauses here and this node is a synced member again at once.
            if let Some(session) = &mut self.session {
                if let Err(e) = session.group.propose_control(ControlEntry::Synced) {
                    log::warn!("could not report synced after an IST-only donation: {e}");
                }
            }
            return;
        }
        self.sink.deliver(Delivered::DonateState {
            joiner,
            request: request.sst_request,
            ist_from: Gtid::from(ist_from),
            position: Gtid::new(history, position),
            bypass,
        });
    }

    /// Every GCache record in `[from, to]`, from every slice, in seqno order.
    pub(super) fn read_gcache(&self, from: Seqno, to: Seqno) -> Vec<transfer::MissedRecord> {
        let mut records = match &self.gcache {
            Some(slice) => crate::shards::read_slice(slice, from, to),
            None => return Vec::new(),
        };
        for link in &self.links {
            records.extend(link.read(from, to));
        }
        records.sort_by_key(|r| r.seqno);
        records
    }
}
