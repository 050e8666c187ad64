//! `pc.recovery`: `gvwstate.dat` upkeep, and re-forming the last primary component after a
//! whole-cluster crash, or after a crash of all members but one that kept running.

use super::*;
use gvwstate::SavedView;
use trireme_group::msg::{Hello, Standing};
use trireme_group::GroupError;

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
        if hellos.iter().any(|h| h.standing != Standing::Joining) {
            // A member still running (primary, or left non-primary) re-forms or admits us.
            return;
        }
        let Some(others) = others_back(&saved, session, &hellos) else {
            return; // not everybody is back yet
        };
        let mut best = (session.position.seqno, session.my_name.clone(), true);
        for hello in others {
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
        announce_new_group(session, &hellos);
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

    /// `pc.recovery`, the other half: this node kept running but lost its quorum (the others
    /// were killed), and every other member of its last primary component is back, joining,
    /// and no further on than this node. Nobody else can re-form the component (the joiners
    /// defer to a running member), so this node does, as Galera re-forms it when the members
    /// of the last primary component are all back; they then join it by IST.
    pub(super) fn try_reform(&mut self) {
        let Some(session) = &mut self.session else {
            return;
        };
        // A node that is leaving does not re-form anything (a shutdown saw the others come
        // back and bootstrapped a component it was about to leave).
        if !self.config.pc_recovery
            || session.leaving
            || !matches!(session.mode, Mode::Normal)
            || self.board.primary.load(AtomicOrdering::Relaxed)
        {
            return;
        }
        let Some(last) = session.last_primary.clone() else {
            return;
        };
        if last.members.len() < 2 {
            return;
        }
        let hellos: Vec<_> = session.peers.hellos().cloned().collect();
        let trireme_group::msg::Msg::Hello(mine) = session.group.hello() else {
            return;
        };
        let Some(others) = others_back(&last, session, &hellos) else {
            return; // not everybody is back yet
        };
        for hello in others {
            if hello.standing != Standing::Joining
                || hello.history != last.history
                || hello.position > mine.position
            {
                return;
            }
        }
        match session.group.force_bootstrap() {
            Ok(()) => {}
            // Re-formed already; the board has not caught up yet.
            Err(GroupError::AlreadyPrimary) => return,
            Err(e) => {
                log::warn!("pc.recovery: cannot re-form the primary component: {e}");
                return;
            }
        }
        log::info!(
            "pc.recovery: all {} member(s) of the last primary component are back and joining; \
             this node kept running and re-forms the primary component",
            last.members.len()
        );
        announce_new_group(session, &hellos);
    }

    /// Keeps `gvwstate.dat` up to date with the primary component (`pc.recovery`), and
    /// remembers it for `try_reform`.
    pub(super) fn save_view(&mut self, view: &View) {
        let Some(session) = &self.session else { return };
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
        if self.config.pc_recovery {
            gvwstate::store(&self.config.state_dir, &saved, &session.my_name);
        }
        if let Some(session) = &mut self.session {
            session.last_primary = Some(saved);
        }
    }
}

/// The hello of every member of `view` but this node, or `None` while one of them is not
/// connected (matched by replication address or by name).
fn others_back<'a>(
    view: &SavedView,
    session: &Session,
    hellos: &'a [Hello],
) -> Option<Vec<&'a Hello>> {
    view.members
        .iter()
        .filter(|m| !(m.name == session.my_name && m.address == session.config.address))
        .map(|m| {
            hellos
                .iter()
                .find(|h| h.address == m.address || h.name == m.name)
        })
        .collect()
}

/// This node just formed a group: the connected peers hear its hello, and their Hello
/// handling asks to join it.
fn announce_new_group(session: &mut Session, hellos: &[Hello]) {
    let hello = session.group.hello();
    for peer in hellos.iter().map(|h| h.node) {
        session.peers.send(peer, &hello);
        session.group.peer_connected(peer);
    }
}
