//! Shard 0's connections to the other nodes: the transport, the handshake and the mesh.
//!
//! Every connection starts with a `Hello` each way; until the peer's `Hello` arrives a
//! connection carries nothing else, and the `Hello` names the peer (`NodeId`) for everything
//! that follows on it. The group never sees a connection, only `step(from, msg)`,
//! `peer_connected(node)` and `peer_lost(node)`.
//!
//! Mesh: a node dials the `gcomm://` addresses it was given and the replication address of
//! every member of the configuration it is not connected to; a failed dial is retried after a
//! back-off. Two nodes may end up with two connections (both dialled): both are kept, messages
//! go out on the oldest, and the peer counts as lost only when its last connection closes.
//! A connection that closes (FIN or RST) is immediate evidence that the peer process is gone:
//! that is what lets the survivors of a `kill -9` move on without waiting for a timeout.
//!
//! Frames that fail validation (net) or decoding (group) drop their connection; nothing from
//! the network is trusted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use trireme_group::{Group, Msg};
use trireme_net::{ConnId, FrameKind, NetEvent, NetStats, Transport, TransportConfig};
use trireme_types::NodeId;

/// Retry interval for an address that could not be reached.
const REDIAL_AFTER: Duration = Duration::from_millis(500);

struct Conn {
    /// Known once its `Hello` arrived.
    peer: Option<NodeId>,
    /// The address we dialled (outbound connections).
    address: Option<String>,
    opened: Instant,
}

/// An address we keep a connection to.
struct Dial {
    conn: Option<ConnId>,
    next_attempt: Instant,
    /// The node behind it, once seen.
    node: Option<NodeId>,
    /// It turned out to be this node's own address.
    is_self: bool,
}

pub(crate) struct Peers {
    transport: Box<dyn Transport>,
    me: NodeId,
    conns: HashMap<ConnId, Conn>,
    /// Established connections per node, oldest first.
    by_node: BTreeMap<NodeId, Vec<ConnId>>,
    dials: BTreeMap<String, Dial>,
    events: Vec<NetEvent>,
    pub listen: std::net::SocketAddr,
    /// The `Hello` of every connected peer (history, position, name, address).
    hellos: BTreeMap<NodeId, trireme_group::msg::Hello>,
    /// `gmcast.isolate=1`: no connection is kept, dialled or accepted.
    isolated: bool,
}

impl Peers {
    /// Opens the transport on this thread and starts listening.
    pub fn open(mut config: TransportConfig, me: NodeId) -> Result<Peers, String> {
        // A frame carries one group message, and one message may carry a writeset as large as
        // `repl.max_ws_size` allows (1 GiB): a smaller frame limit left such a proposal
        // unsendable, retried for ever, and its client waiting for good.
        let largest = u32::try_from(trireme_group::MAX_MSG_BYTES).unwrap_or(u32::MAX);
        config.max_frame_bytes = config.max_frame_bytes.max(largest);
        config.send_queue_limit_bytes = config
            .send_queue_limit_bytes
            .max(trireme_net::frame_len(config.max_frame_bytes as usize));
        let mut transport = trireme_net::open(config).map_err(|e| e.to_string())?;
        let listen = transport.listen().map_err(|e| e.to_string())?;
        log::info!(
            "Listening for peers on {listen} ({:?} transport)",
            transport.kind()
        );
        Ok(Peers {
            transport,
            me,
            conns: HashMap::new(),
            by_node: BTreeMap::new(),
            dials: BTreeMap::new(),
            events: Vec::new(),
            listen,
            hellos: BTreeMap::new(),
            isolated: false,
        })
    }

    /// Keeps a connection to `address` (a `gcomm://` seed or a member's address).
    pub fn want(&mut self, address: &str) {
        self.dials.entry(address.to_string()).or_insert(Dial {
            conn: None,
            next_attempt: Instant::now(),
            node: None,
            is_self: false,
        });
    }

    /// The `Hello`s of the peers connected now.
    pub fn hellos(&self) -> impl Iterator<Item = &trireme_group::msg::Hello> {
        self.hellos.values()
    }

    pub fn stats(&self) -> NetStats {
        self.transport.stats()
    }

    /// Nodes with at least one established connection.
    #[allow(dead_code)]
    pub fn connected(&self) -> HashSet<NodeId> {
        self.by_node.keys().copied().collect()
    }

    /// `gmcast.isolate`: cuts this node off from every peer (each is lost at once, as a
    /// network partition would lose it) and keeps it cut off until lifted.
    pub fn isolate(&mut self, group: &mut Group, on: bool) {
        if self.isolated == on {
            return;
        }
        self.isolated = on;
        if on {
            log::info!("gmcast.isolate: closing every peer connection");
            for conn in self.conns.keys().copied().collect::<Vec<_>>() {
                self.drop_conn(group, conn);
            }
        } else {
            log::info!("gmcast.isolate lifted: reconnecting to peers");
            for dial in self.dials.values_mut() {
                dial.next_attempt = Instant::now();
            }
        }
    }

    /// Dials what should be dialled (seeds, members' addresses), at most once per back-off.
    pub fn maintain(&mut self, members: &[(NodeId, String)]) {
        if self.isolated {
            return;
        }
        for (node, address) in members {
            if !self.by_node.contains_key(node) {
                self.want(address);
            }
        }
        let now = Instant::now();
        let mut to_dial = Vec::new();
        for (address, dial) in &self.dials {
            let satisfied = dial.is_self
                || dial.conn.is_some()
                || dial.node.is_some_and(|n| self.by_node.contains_key(&n));
            if !satisfied && dial.next_attempt <= now {
                to_dial.push(address.clone());
            }
        }
        for address in to_dial {
            let dial = self.dials.get_mut(&address).expect("listed above");
            dial.next_attempt = now + REDIAL_AFTER;
            match self.transport.connect(&address) {
                Ok(conn) => {
                    dial.conn = Some(conn);
                    self.conns.insert(
                        conn,
                        Conn {
                            peer: None,
                            address: Some(address),
                            opened: now,
                        },
                    );
                }
                Err(e) => log::debug!("cannot dial {address}: {e}"),
            }
        }
    }

    /// Waits for I/O (or the wake eventfd, or the timeout), then feeds what arrived to the
    /// group. Returns whether anything happened.
    pub fn poll(
        &mut self,
        group: &mut Group,
        timeout: Option<Duration>,
        wake_fd: std::os::fd::RawFd,
    ) -> bool {
        self.events.clear();
        if let Err(e) = self.transport.poll(&mut self.events, timeout, wake_fd) {
            log::warn!("transport poll failed: {e}");
            return false;
        }
        let events = std::mem::take(&mut self.events);
        let busy = !events.is_empty();
        for event in events {
            self.on_event(group, event);
        }
        busy
    }

    fn on_event(&mut self, group: &mut Group, event: NetEvent) {
        match event {
            NetEvent::Accepted { conn, peer } if self.isolated => {
                log::debug!("gmcast.isolate: refusing {conn} from {peer}");
                self.transport.close(conn);
            }
            NetEvent::Accepted { conn, peer } if !peer_allowed(peer.ip()) => {
                not_allowed(peer.ip());
                self.transport.close(conn);
            }
            NetEvent::Accepted { conn, peer } => {
                log::debug!("accepted {conn} from {peer}");
                self.conns.insert(
                    conn,
                    Conn {
                        peer: None,
                        address: None,
                        opened: Instant::now(),
                    },
                );
                self.send_on(conn, &group.hello());
            }
            NetEvent::Connected { conn, .. } if self.isolated => self.drop_conn(group, conn),
            NetEvent::Connected { conn, peer } if !peer_allowed(peer.ip()) => {
                not_allowed(peer.ip());
                self.drop_conn(group, conn);
            }
            NetEvent::Connected { conn, peer } => {
                log::debug!("connected {conn} to {peer}");
                self.send_on(conn, &group.hello());
            }
            NetEvent::ConnectFailed { conn, reason } => {
                if let Some(c) = self.conns.remove(&conn) {
                    if let Some(address) = c.address {
                        log::debug!("dial of {address} failed: {reason}");
                        if let Some(dial) = self.dials.get_mut(&address) {
                            dial.conn = None;
                        }
                    }
                }
            }
            NetEvent::Frame {
                conn,
                kind,
                payload,
            } => {
                if kind != FrameKind::Group {
                    return;
                }
                match Msg::decode(payload.as_slice()) {
                    Ok(msg) => self.on_message(group, conn, msg),
                    Err(e) => {
                        log::warn!("dropping {conn}: undecodable group message: {e}");
                        self.drop_conn(group, conn);
                    }
                }
            }
            NetEvent::Closed { conn, reason } => {
                let address = self.conns.get(&conn).and_then(|c| c.address.clone());
                let peer = address.unwrap_or_else(|| conn.to_string());
                match &reason {
                    // A peer that speaks something else is a configuration error worth saying
                    // plainly (another cluster's frames are refused at their first byte).
                    trireme_net::CloseReason::BadFrame(e) => {
                        log::error!("Connection with {peer} refused: {e}")
                    }
                    _ => log::debug!("{conn} ({peer}) closed: {reason}"),
                }
                self.forget(group, conn);
            }
        }
    }

    fn on_message(&mut self, group: &mut Group, conn: ConnId, msg: Msg) {
        let Some(state) = self.conns.get_mut(&conn) else {
            return;
        };
        let peer = match (state.peer, &msg) {
            (Some(peer), _) => peer,
            (None, Msg::Hello(hello)) => {
                let node = hello.node;
                if node == self.me {
                    // We dialled our own address (it is in gcomm:// as on every node).
                    if let Some(address) = &state.address {
                        if let Some(dial) = self.dials.get_mut(address) {
                            dial.is_self = true;
                            dial.conn = None;
                        }
                    }
                    self.conns.remove(&conn);
                    self.transport.close(conn);
                    return;
                }
                state.peer = Some(node);
                if let Some(address) = &state.address {
                    if let Some(dial) = self.dials.get_mut(address) {
                        dial.node = Some(node);
                    }
                }
                let first = !self.by_node.contains_key(&node);
                self.by_node.entry(node).or_default().push(conn);
                if let Msg::Hello(hello) = &msg {
                    self.hellos.insert(node, hello.clone());
                }
                if let Err(e) = group.step(node, msg) {
                    log::warn!("peer {node} refused: {e}");
                }
                if first {
                    log::info!("Connected to peer {node}");
                    group.peer_connected(node);
                }
                return;
            }
            (None, other) => {
                log::warn!("dropping {conn}: {} before Hello", other.kind());
                self.drop_conn(group, conn);
                return;
            }
        };
        let refusal = matches!(msg, Msg::Refuse(_));
        if let Err(e) = group.step(peer, msg) {
            match e {
                // Expected around a partition or a re-formed component: the peer catches up.
                trireme_group::StepError::OtherGeneration { .. } => {
                    log::debug!("message from {peer} dropped: {e}")
                }
                _ => log::warn!("message from {peer} dropped: {e}"),
            }
        }
        if refusal {
            log::error!("peer {peer} refused this node; closing the connection");
            self.drop_conn(group, conn);
        }
    }

    /// Sends `msg` to `to` on its oldest connection (dropped if there is none: the group
    /// retransmits what matters).
    pub fn send(&mut self, to: NodeId, msg: &Msg) {
        let Some(&conn) = self.by_node.get(&to).and_then(|conns| conns.first()) else {
            log::trace!("no connection to {to}; {} dropped", msg.kind());
            return;
        };
        self.send_on(conn, msg);
    }

    fn send_on(&mut self, conn: ConnId, msg: &Msg) {
        let bytes = msg.encode();
        if let Err(e) = self.transport.send(conn, FrameKind::Group, &bytes) {
            log::warn!("send of {} on {conn} failed: {e}", msg.kind());
        }
    }

    fn drop_conn(&mut self, group: &mut Group, conn: ConnId) {
        self.transport.close(conn);
        self.forget(group, conn);
    }

    /// A connection is gone: the peer is lost when it was its last one.
    fn forget(&mut self, group: &mut Group, conn: ConnId) {
        let Some(state) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(address) = &state.address {
            if let Some(dial) = self.dials.get_mut(address) {
                if dial.conn == Some(conn) {
                    dial.conn = None;
                    dial.next_attempt = Instant::now() + REDIAL_AFTER;
                }
            }
        }
        let Some(node) = state.peer else { return };
        let gone = match self.by_node.get_mut(&node) {
            Some(conns) => {
                conns.retain(|c| *c != conn);
                conns.is_empty()
            }
            None => false,
        };
        if gone {
            self.by_node.remove(&node);
            self.hellos.remove(&node);
            log::info!(
                "Lost peer {node} (connection closed after {:?})",
                state.opened.elapsed()
            );
            group.peer_lost(node);
        }
    }

    /// Closes everything (end of session).
    pub fn close_all(&mut self, wake_fd: std::os::fd::RawFd) {
        for conn in self.conns.keys().copied().collect::<Vec<_>>() {
            self.transport.close(conn);
        }
        self.conns.clear();
        self.by_node.clear();
        // Let the transport flush the closes (it lingers at most CLOSE_LINGER).
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline && self.transport.stats().connections > 0 {
            let _ = self
                .transport
                .poll(&mut events, Some(Duration::from_millis(20)), wake_fd);
            events.clear();
        }
    }
}

/// Decides whether a peer's IP may connect: MariaDB's `mysql.wsrep_allowlist`, asked through
/// the allowlist service the server hands the library (installed by the `ffi` crate). `None`:
/// every peer may connect.
pub type PeerFilter = Box<dyn Fn(std::net::IpAddr) -> bool + Send + Sync>;

static PEER_FILTER: std::sync::RwLock<Option<PeerFilter>> = std::sync::RwLock::new(None);

/// Installs (or, with `None`, removes) the filter every connection is checked against.
pub fn set_peer_filter(filter: Option<PeerFilter>) {
    if let Ok(mut slot) = PEER_FILTER.write() {
        *slot = filter;
    }
}

fn peer_allowed(ip: std::net::IpAddr) -> bool {
    match PEER_FILTER.read() {
        Ok(slot) => slot.as_ref().is_none_or(|allowed| allowed(ip)),
        Err(_) => true,
    }
}

/// Galera's words (MTR suppresses them by this text); once per IP every 10 s, since a refused
/// peer keeps trying.
fn not_allowed(ip: std::net::IpAddr) {
    static LOGGED: std::sync::Mutex<Vec<(std::net::IpAddr, Instant)>> =
        std::sync::Mutex::new(Vec::new());
    let due = match LOGGED.lock() {
        Ok(mut logged) => {
            let now = Instant::now();
            logged.retain(|(_, at)| now.duration_since(*at) < Duration::from_secs(10));
            let due = !logged.iter().any(|(seen, _)| *seen == ip);
            if due {
                logged.push((ip, now));
            }
            due
        }
        Err(_) => true,
    };
    if due {
        log::warn!("Connection not allowed, IP {ip} not found in allowlist.");
    }
}
