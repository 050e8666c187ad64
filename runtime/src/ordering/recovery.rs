//! `pc.recovery`: `gvwstate.dat` upkeep, and re-forming the last primary component after a
//! whole-cluster crash.

use super::*;

impl Ordering {
    /// `pc.recovery`: when every member of the saved primary component is connected, none of
    /// them is primary (all are joining), and all are in our history, the most advanced (by
    /// seqno, then name) bootstraps; the others keep joining and are admitted by it.
    pub(super) fn try_recover(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        let Some(saved) = session.recovery.clone() else {
            return;
        };
        let Mode::Awaiting(awaiting) = &session.mode else {
            return;
        };
        if awaiting.announced {
            session.recovery = None; // admitted by a primary component that exists
            return;
        }
        let hellos: Vec<_> = session.peers.hellos().cloned().collect();
        let mut best = (session.position.seqno, session.my_name.clone(), true);
        let my_address = session.config.address.clone();
        for member in &saved.members {
            if member.name == session.my_name && member.address == my_address {
                continue;
            }
            let Some(hello) = hellos
                .iter()
                .find(|h| h.address == member.address || h.name == member.name)
            else {
                return; // not everybody is back yet
            };
            if hello.history != saved.history {
                return;
            }
            let candidate = (hello.position, hello.name.clone(), false);
            if (candidate.0, &candidate.1) > (best.0, &best.1) {
                best = candidate;
            }
        }
        if !best.2 {
            return; // a more advanced member bootstraps; we are admitted by it
        }
        log::info!(
            "pc.recovery: all {} member(s) of the last primary component are back and none is primary; \
             this node is the most advanced ({}:{}): re-forming the primary component",
            saved.members.len(),
            saved.history,
            session.position.seqno
        );
        let group = match Group::bootstrap(
            session.config.clone(),
            saved.history,
            session.position.seqno,
        ) {
            Ok(group) => group,
            Err(e) => {
                log::error!("pc.recovery bootstrap failed: {e}");
                session.recovery = None;
                return;
            }
        };
        session.group = group;
        session.mode = Mode::Normal;
        session.recovery = None;
        session.history = saved.history;
        session.last_seqno = session.position.seqno;
        // Tell the connected peers about the new group: their Hello handling asks to join it.
        let hello = session.group.hello();
        for peer in hellos.iter().map(|h| h.node) {
            session.peers.send(peer, &hello);
            session.group.peer_connected(peer);
        }
        if let Some((reply, _)) = session.connect_reply.take() {
            let _ = reply.send(Ok(()));
        }
        let position = session.position;
        match CertEngine::start(position.seqno, &self.links, self.cert_config()) {
            Ok(engine) => self.certifier = Some(engine),
            Err(e) => log::error!("cannot start certification at {position}: {e}"),
        }
        self.open_gcache(position.history, position.seqno);
    }

    /// Keeps `gvwstate.dat` up to date with the primary component (`pc.recovery`).
    pub(super) fn save_view(&self, view: &View) {
        let Some(session) = &self.session else { return };
        if !self.config.pc_recovery {
            return;
        }
        let addresses: HashMap<NodeId, String> =
            session.group.member_addresses().into_iter().collect();
        let members = view
            .members
            .iter()
            .map(|m| gvwstate::SavedMember {
                name: m.name.clone(),
                address: if m.id == session.me {
                    session.config.address.clone()
                } else {
                    addresses.get(&m.id).cloned().unwrap_or_default()
                },
            })
            .collect();
        let saved = gvwstate::SavedView {
            history: view.history,
            view_id: view.view_id.0,
            members,
        };
        gvwstate::store(&self.config.state_dir, &saved, &session.my_name);
    }
}
