//! The deterministic simulator: the referee for the group core.
//!
//! One u64 seed drives everything: the options (chosen swarm-style per seed), the packet
//! simulator (loss, duplication, delay and so reordering, clean partitions and heals,
//! connection resets), crashes (peers see `peer_lost` after a small delay) and restarts (a new
//! `NodeId`, a join, a simulated state transfer), SIGSTOP-like pauses (no ticks, messages
//! held, then every missed tick at once before any message), graceful leaves, clients
//! proposing writesets on random nodes, and causal reads.
//!
//! Checked after every step (every tick of a node and every delivered message):
//!  1. at most one primary component: every node that claims primary (a paused node's claim
//!     counts until its lease would run out in real time) agrees on (term, leader);
//!  2. every node delivers the same seqno -> item (writeset origin and bytes, or view)
//!     map, contiguously, with no gaps or duplicates (a node that received a raft snapshot
//!     continues after its state-transfer point), and a writeset is delivered at one seqno
//!     only; ordered control events and commit cuts agree too;
//!  3. views come in the same order with the same seqnos everywhere (they are items of 2);
//!  4. nothing acknowledged is lost: an acknowledged writeset is at its seqno on every node
//!     that delivers that seqno, and after the liveness phase on every live node; read points
//!     are never below anything acknowledged before the read began.
//!
//! Then the liveness phase: heal everything, stop faults; within a tick budget every live
//! node must be primary in one view, have delivered every acknowledged writeset, and new
//! proposals must commit.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use trireme_group::rng::Rng;
use trireme_group::{
    ControlEntry, ControlEvent, Event, Group, GroupConfig, LeaseClaim, Msg, Position, ProposalId,
};
use trireme_types::{HistoryId, NodeId, Seqno, Uuid};

/// Everything a seed decides.
#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: usize,
    pub election_ticks: u64,
    pub heartbeat_ticks: u64,
    pub suspect_ticks: u64,
    pub max_log_entries: u64,
    pub delay_min: u64,
    pub delay_max: u64,
    /// Per mille of packets lost / duplicated.
    pub loss: u64,
    pub duplicate: u64,
    /// Per-tick chances (per 100 000) of each fault.
    pub partition_rate: u64,
    pub crash_rate: u64,
    pub pause_rate: u64,
    pub reset_rate: u64,
    pub leave_rate: u64,
    /// Crash the leader and, at the same moment, cut one survivor off for a while.
    pub crash_cut_rate: u64,
    /// Per-tick chance (per 1000) that a client proposes somewhere.
    pub propose_rate: u64,
    pub read_rate: u64,
    pub partition_ticks_max: u64,
    pub pause_ticks_max: u64,
    pub restart_ticks_max: u64,
    /// Send every message through its encoded, validated wire form.
    pub wire: bool,
    pub fault_ticks: u64,
    pub liveness_ticks: u64,
    /// `evs.auto_evict` of every node (0: off).
    pub auto_evict: u32,
    /// Writesets above this many bytes are ordered in parts (`GroupConfig::max_part_bytes`);
    /// small in half of the swarm so that most writesets travel as several parts.
    pub max_part_bytes: usize,
    /// Each slot's `pc.weight` at the start (empty: all 1).
    pub weights: Vec<u8>,
    /// Per-tick chance (per 100 000) that an operator sets a node's `pc.weight` (0..=3) in a
    /// healthy moment.
    pub reweight_rate: u64,
}

impl Options {
    /// A calm cluster: no faults unless a scenario injects them.
    pub fn calm(nodes: usize) -> Options {
        Options {
            nodes,
            election_ticks: 10,
            heartbeat_ticks: 2,
            suspect_ticks: 50,
            max_log_entries: 1000,
            delay_min: 1,
            delay_max: 1,
            loss: 0,
            duplicate: 0,
            partition_rate: 0,
            crash_rate: 0,
            pause_rate: 0,
            reset_rate: 0,
            leave_rate: 0,
            crash_cut_rate: 0,
            propose_rate: 0,
            read_rate: 0,
            partition_ticks_max: 100,
            pause_ticks_max: 100,
            restart_ticks_max: 50,
            wire: true,
            fault_ticks: 0,
            liveness_ticks: 3000,
            auto_evict: 0,
            max_part_bytes: 1 << 20,
            weights: Vec::new(),
            reweight_rate: 0,
        }
    }

    /// Options chosen per seed, swarm-style: some faults switched off entirely, others strong.
    pub fn swarm(rng: &mut Rng) -> Options {
        let election_ticks = rng.between(8, 20);
        let heartbeat_ticks = rng.between(1, election_ticks / 4);
        let on = |rng: &mut Rng, max: u64| {
            if rng.chance(2, 3) {
                rng.between(1, max)
            } else {
                0
            }
        };
        // One network hop stays well below the election timeout (a LAN round trip is a few
        // hundred microseconds against a one-second timeout); leases need 2 round trips of room.
        let hop_max = (election_ticks / 6).max(1);
        let delay_min = rng.between(1, hop_max);
        let delay_max = rng.between(delay_min, hop_max);
        let nodes = rng.between(3, 5) as usize;
        // A third of the swarm weighs its nodes (pc.weight 0..=3, never all 0), and a third
        // of those reweighs them as it runs.
        let weighted = rng.chance(1, 3);
        let weights = if weighted {
            let mut w: Vec<u8> = (0..nodes).map(|_| rng.below(4) as u8).collect();
            if w.iter().all(|x| *x == 0) {
                w[0] = 1;
            }
            w
        } else {
            Vec::new()
        };
        let reweight_rate = if weighted && rng.chance(1, 3) {
            rng.between(100, 800)
        } else {
            0
        };
        Options {
            nodes,
            election_ticks,
            heartbeat_ticks,
            suspect_ticks: election_ticks * rng.between(2, 6),
            max_log_entries: if rng.chance(1, 3) {
                rng.between(16, 64)
            } else {
                2000
            },
            delay_min,
            delay_max,
            loss: on(rng, 150),
            duplicate: on(rng, 100),
            partition_rate: on(rng, 300),
            crash_rate: on(rng, 150),
            pause_rate: on(rng, 200),
            reset_rate: on(rng, 200),
            leave_rate: on(rng, 60),
            crash_cut_rate: on(rng, 100),
            propose_rate: rng.between(50, 600),
            read_rate: on(rng, 50),
            partition_ticks_max: election_ticks * rng.between(2, 12),
            pause_ticks_max: election_ticks * rng.between(1, 10),
            restart_ticks_max: election_ticks * rng.between(1, 8),
            wire: rng.chance(1, 4),
            fault_ticks: rng.between(800, 2000),
            liveness_ticks: 6000,
            auto_evict: 0,
            max_part_bytes: if rng.chance(1, 2) {
                rng.between(4, 16) as usize
            } else {
                1 << 20
            },
            weights,
            reweight_rate,
        }
    }
}

/// What a seqno holds, as compared across nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Writeset { origin: NodeId, payload: Vec<u8> },
    View { view_id: i64, members: Vec<NodeId> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    Up,
    /// SIGSTOPped at global tick `since`; resumes at `until`.
    Paused {
        since: u64,
        until: u64,
    },
    Down,
    Left,
}

/// One server: a sequence of incarnations (a restart is a new `NodeId`).
pub struct Slot {
    pub name: String,
    pub id: NodeId,
    pub group: Option<Group>,
    pub state: SlotState,
    pub incarnation: u32,
    /// Last seqno in this incarnation's contiguous delivered sequence.
    pub last: Option<i64>,
    /// Position of the next ordered non-seqno event: (after seqno, index).
    ctl_pos: (i64, u32),
    /// Seqnos at or below this were obtained by state transfer.
    pub transfer_point: Option<i64>,
    restart_at: Option<u64>,
    held: Vec<(NodeId, Msg)>,
    claim_at_pause: Option<LeaseClaim>,
    pub delivered_writesets: u64,
    wants_state: bool,
    pub leaving: bool,
    /// This server's `pc.weight` (kept across restarts).
    pub weight: u8,
}

struct Packet {
    from: NodeId,
    to: NodeId,
    msg: Msg,
}

/// A failed check: what, and where.
pub type Failure = String;

pub struct Sim {
    pub seed: u64,
    pub opts: Options,
    rng: Rng,
    pub now: u64,
    pub slots: Vec<Slot>,
    net: BTreeMap<(u64, u64), Packet>,
    net_seq: u64,
    /// Side per slot while a clean partition is in force.
    partition: Option<Vec<u8>>,
    partition_until: u64,
    /// Slot pairs whose connection is down (reset), with the tick it comes back.
    reset_until: BTreeMap<(usize, usize), u64>,
    /// Scheduled `peer_lost` notices: (tick, seq) -> (slot, lost node).
    notices: BTreeMap<(u64, u64), (usize, NodeId, bool)>,
    truth: BTreeMap<i64, Item>,
    payload_at: BTreeMap<Vec<u8>, i64>,
    proposals: BTreeMap<Vec<u8>, (NodeId, ProposalId)>,
    by_id: BTreeMap<(NodeId, ProposalId), Vec<u8>>,
    pub acked: BTreeMap<Vec<u8>, i64>,
    failed_payloads: BTreeSet<Vec<u8>>,
    max_acked: i64,
    ctl_truth: BTreeMap<(i64, u32), String>,
    reads: BTreeMap<(NodeId, u64), i64>,
    next_read: u64,
    next_payload: u64,
    pub faults: bool,
    pub history: HistoryId,
    pub trace: u64,
    journal: Vec<String>,
    pub failed: Option<Failure>,
    /// Counters for scenario assertions.
    pub stats: Stats,
    /// Print the journal as it happens (`TRIREME_TRACE=1`).
    pub verbose: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub crashes: u64,
    pub restarts: u64,
    pub pauses: u64,
    pub partitions: u64,
    pub leaves: u64,
    pub joined_events: u64,
    pub non_primary_views: u64,
    pub proposals: u64,
    pub proposal_failures: u64,
    pub reads_ready: u64,
    pub refused: u64,
    pub max_term: u64,
    pub commit_cuts: u64,
    pub last_cut: i64,
    /// (joiner, donor) of every state request delivered on slot 0's current incarnation.
    pub donors: Vec<(NodeId, Option<NodeId>)>,
    pub reweights: u64,
}

const JOURNAL_LINES: usize = 60;

fn node_id(rng: &mut Rng) -> NodeId {
    NodeId(Uuid::from_random_bytes(rng.bytes16()))
}

fn short(id: NodeId) -> String {
    id.to_string()[..8].to_string()
}

impl Sim {
    pub fn new(seed: u64, opts: Options) -> Sim {
        let mut rng = Rng::new(seed ^ 0x5eed);
        let history = HistoryId(Uuid::from_random_bytes(rng.bytes16()));
        let slots = (0..opts.nodes)
            .map(|i| Slot {
                name: format!("node{i}"),
                id: node_id(&mut rng),
                group: None,
                state: SlotState::Down,
                incarnation: 0,
                last: None,
                ctl_pos: (0, 0),
                transfer_point: None,
                restart_at: None,
                held: Vec::new(),
                claim_at_pause: None,
                delivered_writesets: 0,
                wants_state: false,
                leaving: false,
                weight: opts.weights.get(i).copied().unwrap_or(1),
            })
            .collect();
        Sim {
            seed,
            opts,
            rng,
            now: 0,
            slots,
            net: BTreeMap::new(),
            net_seq: 0,
            partition: None,
            partition_until: 0,
            reset_until: BTreeMap::new(),
            notices: BTreeMap::new(),
            truth: BTreeMap::new(),
            payload_at: BTreeMap::new(),
            proposals: BTreeMap::new(),
            by_id: BTreeMap::new(),
            acked: BTreeMap::new(),
            failed_payloads: BTreeSet::new(),
            max_acked: -1,
            ctl_truth: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_read: 1,
            next_payload: 1,
            faults: false,
            history,
            trace: 0xcbf2_9ce4_8422_2325,
            journal: Vec::new(),
            failed: None,
            stats: Stats::default(),
            verbose: std::env::var("TRIREME_TRACE").is_ok(),
        }
    }

    fn mix(&mut self, x: u64) {
        self.trace = (self.trace ^ x).wrapping_mul(0x100_0000_01b3);
    }

    fn note(&mut self, line: String) {
        for b in line.as_bytes() {
            self.trace = (self.trace ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
        if self.verbose {
            println!("[{}] {line}", self.now);
        }
        if self.journal.len() >= JOURNAL_LINES {
            self.journal.remove(0);
        }
        self.journal.push(format!("[{}] {line}", self.now));
    }

    fn fail(&mut self, what: String) {
        if self.failed.is_none() {
            self.failed = Some(what);
        }
    }

    pub fn journal(&self) -> String {
        self.journal.join("\n")
    }

    fn config(&self, slot: usize, id: NodeId, cluster: &str) -> GroupConfig {
        let mut c = GroupConfig::new(id, &self.slots[slot].name, cluster);
        c.incoming = format!("10.0.0.{slot}:3306");
        c.address = format!("10.0.0.{slot}:4567");
        c.election_ticks = self.opts.election_ticks;
        c.heartbeat_ticks = self.opts.heartbeat_ticks;
        c.suspect_ticks = self.opts.suspect_ticks;
        c.lease_margin_ticks = 1;
        c.max_log_entries = self.opts.max_log_entries;
        c.auto_evict = self.opts.auto_evict;
        c.max_part_bytes = self.opts.max_part_bytes;
        c.weight = self.slots[slot].weight;
        c.seed = self.seed.wrapping_mul(31).wrapping_add(id.short_id());
        c
    }

    // ------------------------------------------------------------------------------------
    // Scripted actions (used by scenarios and by the swarm driver)
    // ------------------------------------------------------------------------------------

    pub fn bootstrap(&mut self, slot: usize) {
        let id = self.slots[slot].id;
        let cfg = self.config(slot, id, "sim");
        let g = Group::bootstrap(cfg, self.history, Seqno(0)).expect("bootstrap");
        self.slots[slot].group = Some(g);
        self.slots[slot].state = SlotState::Up;
        self.slots[slot].last = Some(0);
        self.slots[slot].transfer_point = Some(0);
        self.note(format!(
            "bootstrap {} as {}",
            self.slots[slot].name,
            short(id)
        ));
        self.drain(slot);
    }

    /// Starts a node that joins through every reachable up node.
    pub fn start_joiner(&mut self, slot: usize) {
        self.start_joiner_in(slot, "sim");
    }

    pub fn start_joiner_in(&mut self, slot: usize, cluster: &str) {
        let id = self.slots[slot].id;
        let cfg = self.config(slot, id, cluster);
        let g = Group::join(
            cfg,
            Position {
                history: self.history,
                seqno: Seqno::UNDEFINED,
            },
        )
        .expect("join");
        let s = &mut self.slots[slot];
        s.group = Some(g);
        s.state = SlotState::Up;
        s.last = None;
        s.transfer_point = None;
        s.ctl_pos = (0, 0);
        s.wants_state = false;
        s.leaving = false;
        self.note(format!(
            "start joiner {} as {}",
            self.slots[slot].name,
            short(id)
        ));
        for other in 0..self.slots.len() {
            if other != slot && self.is_running_or_paused(other) && self.can_talk(slot, other) {
                self.connect(slot, other);
            }
        }
    }

    fn is_running_or_paused(&self, slot: usize) -> bool {
        matches!(
            self.slots[slot].state,
            SlotState::Up | SlotState::Paused { .. }
        )
    }

    pub fn is_up(&self, slot: usize) -> bool {
        self.slots[slot].state == SlotState::Up
    }

    /// A new TCP connection: both sides send their `Hello`.
    fn connect(&mut self, a: usize, b: usize) {
        let (ha, hb) = match (&self.slots[a].group, &self.slots[b].group) {
            (Some(ga), Some(gb)) => (ga.hello(), gb.hello()),
            _ => return,
        };
        let (ia, ib) = (self.slots[a].id, self.slots[b].id);
        self.send_reliable(ia, ib, ha);
        self.send_reliable(ib, ia, hb);
    }

    fn can_talk(&self, a: usize, b: usize) -> bool {
        let key = (a.min(b), a.max(b));
        if self.reset_until.contains_key(&key) {
            return false;
        }
        match &self.partition {
            Some(sides) => sides[a] == sides[b],
            None => true,
        }
    }

    pub fn crash(&mut self, slot: usize) {
        if self.slots[slot].group.is_none() {
            return;
        }
        let id = self.slots[slot].id;
        self.slots[slot].group = None;
        self.slots[slot].state = SlotState::Down;
        self.slots[slot].held.clear();
        self.stats.crashes += 1;
        self.note(format!("crash {} ({})", self.slots[slot].name, short(id)));
        for other in 0..self.slots.len() {
            if other != slot && self.slots[other].group.is_some() {
                let delay = self.rng.between(1, 3);
                self.schedule_notice(other, id, false, delay);
            }
        }
    }

    /// `SET GLOBAL wsrep_provider_options='pc.weight=W'` on a running node.
    pub fn set_weight(&mut self, slot: usize, weight: u8) {
        self.slots[slot].weight = weight;
        self.stats.reweights += 1;
        let name = self.slots[slot].name.clone();
        self.note(format!("pc.weight={weight} on {name}"));
        if let Some(g) = self.slots[slot].group.as_mut() {
            g.set_weight(weight);
            self.drain(slot);
        }
    }

    /// Restarts a crashed (or left) slot as a new incarnation that joins.
    pub fn restart(&mut self, slot: usize) {
        assert!(self.slots[slot].group.is_none());
        let id = node_id(&mut self.rng);
        self.slots[slot].id = id;
        self.slots[slot].incarnation += 1;
        self.slots[slot].restart_at = None;
        self.stats.restarts += 1;
        self.start_joiner(slot);
    }

    fn schedule_notice(&mut self, slot: usize, peer: NodeId, connected: bool, delay: u64) {
        self.net_seq += 1;
        self.notices
            .insert((self.now + delay, self.net_seq), (slot, peer, connected));
    }

    pub fn pause(&mut self, slot: usize, ticks: u64) {
        if self.slots[slot].state != SlotState::Up {
            return;
        }
        let claim = self.slots[slot]
            .group
            .as_ref()
            .and_then(|g| g.lease_claim());
        self.slots[slot].claim_at_pause = claim;
        self.slots[slot].state = SlotState::Paused {
            since: self.now,
            until: self.now + ticks,
        };
        self.stats.pauses += 1;
        self.note(format!("pause {} for {ticks}", self.slots[slot].name));
    }

    fn resume(&mut self, slot: usize) {
        let SlotState::Paused { since, .. } = self.slots[slot].state else {
            return;
        };
        self.slots[slot].state = SlotState::Up;
        self.slots[slot].claim_at_pause = None;
        let missed = self.now - since;
        self.note(format!(
            "resume {} after {missed} ticks",
            self.slots[slot].name
        ));
        // SIGCONT: the runtime first catches up with the clock, then reads its sockets.
        for _ in 0..missed {
            if let Some(g) = self.slots[slot].group.as_mut() {
                g.tick();
            }
            self.drain(slot);
            if self.slots[slot].group.is_none() {
                return;
            }
        }
        self.check_primaries();
        let held = std::mem::take(&mut self.slots[slot].held);
        for (from, msg) in held {
            self.deliver_to(slot, from, msg);
        }
    }

    /// A clean split: `sides[slot]` names each slot's side.
    pub fn partition(&mut self, sides: Vec<u8>, ticks: u64) {
        self.note(format!("partition {sides:?} for {ticks}"));
        self.partition = Some(sides);
        self.partition_until = self.now + ticks;
        self.stats.partitions += 1;
    }

    pub fn heal(&mut self) {
        if self.partition.take().is_some() {
            self.note("heal".to_string());
        }
        let resets: Vec<(usize, usize)> = self.reset_until.keys().copied().collect();
        self.reset_until.clear();
        for (a, b) in resets {
            self.reconnect(a, b);
        }
        // Nodes started during the partition connect now.
        let n = self.slots.len();
        for a in 0..n {
            for b in (a + 1)..n {
                if self.slots[a].group.is_some() && self.slots[b].group.is_some() {
                    self.connect(a, b);
                }
            }
        }
    }

    fn reconnect(&mut self, a: usize, b: usize) {
        if self.slots[a].group.is_none() || self.slots[b].group.is_none() {
            return;
        }
        self.note(format!(
            "reconnect {} {}",
            self.slots[a].name, self.slots[b].name
        ));
        self.connect(a, b);
        let (ia, ib) = (self.slots[a].id, self.slots[b].id);
        self.schedule_notice(a, ib, true, 1);
        self.schedule_notice(b, ia, true, 1);
    }

    /// The connection between two live nodes closes (both see `peer_lost`) and comes back
    /// after `ticks`.
    pub fn reset_connection(&mut self, a: usize, b: usize, ticks: u64) {
        let key = (a.min(b), a.max(b));
        if self.reset_until.contains_key(&key) {
            return;
        }
        self.note(format!(
            "reset {} {}",
            self.slots[a].name, self.slots[b].name
        ));
        self.reset_until.insert(key, self.now + ticks);
        let (ia, ib) = (self.slots[a].id, self.slots[b].id);
        self.schedule_notice(a, ib, false, 1);
        self.schedule_notice(b, ia, false, 1);
    }

    pub fn leave(&mut self, slot: usize) {
        if let Some(g) = self.slots[slot].group.as_mut() {
            g.leave();
            self.slots[slot].leaving = true;
            self.stats.leaves += 1;
            self.note(format!("leave {}", self.slots[slot].name));
            self.drain(slot);
        }
    }

    /// A client writes on `slot`. Returns the payload if the node accepted it.
    pub fn propose(&mut self, slot: usize) -> Option<Vec<u8>> {
        if !self.is_up(slot) {
            return None;
        }
        let payload = format!("ws-{}-{}", self.seed, self.next_payload).into_bytes();
        // Every other proposal takes the deferred path (as the runtime does for a burst):
        // half of those are flushed at once, the rest go out with the node's next input.
        let deferred = self.next_payload % 2 == 1;
        let flush = self.next_payload % 4 == 3;
        self.next_payload += 1;
        let g = self.slots[slot].group.as_mut()?;
        let id = if deferred {
            let id = g.propose_deferred(payload.clone()).ok()?;
            if flush {
                g.flush();
            }
            id
        } else {
            g.propose(payload.clone()).ok()?
        };
        let node = g.node();
        self.proposals.insert(payload.clone(), (node, id));
        self.by_id.insert((node, id), payload.clone());
        self.stats.proposals += 1;
        if self.verbose {
            let line = format!(
                "{} proposes {:?} as {id:?}",
                self.slots[slot].name,
                String::from_utf8_lossy(&payload)
            );
            self.note(line);
        }
        self.drain(slot);
        Some(payload)
    }

    /// A causal read on `slot`: its read point must cover everything acknowledged so far.
    pub fn read(&mut self, slot: usize) {
        if !self.is_up(slot) {
            return;
        }
        let ctx = self.next_read;
        self.next_read += 1;
        let floor = self.max_acked;
        if let Some(g) = self.slots[slot].group.as_mut() {
            let node = g.node();
            self.reads.insert((node, ctx), floor);
            g.read_index(ctx);
        }
        self.drain(slot);
    }

    pub fn force_bootstrap(&mut self, slot: usize) -> bool {
        let ok = self.slots[slot]
            .group
            .as_mut()
            .is_some_and(|g| g.force_bootstrap().is_ok());
        if ok {
            self.note(format!("force bootstrap {}", self.slots[slot].name));
            self.drain(slot);
        }
        ok
    }

    // ------------------------------------------------------------------------------------
    // The clock and the network
    // ------------------------------------------------------------------------------------

    /// One global tick: faults (if on), ticks for running nodes, then packets due.
    pub fn step(&mut self) {
        self.now += 1;
        if self.faults {
            self.inject_faults();
        }
        self.timers();
        let n = self.slots.len();
        for slot in 0..n {
            if self.is_up(slot) {
                let before = self.slots[slot]
                    .group
                    .as_ref()
                    .map(|g| (g.status().role, g.status().term));
                if let Some(g) = self.slots[slot].group.as_mut() {
                    g.tick();
                }
                if self.verbose {
                    let after = self.slots[slot]
                        .group
                        .as_ref()
                        .map(|g| (g.status().role, g.status().term));
                    if before != after {
                        let line = format!("   {} tick -> {after:?}", self.slots[slot].name);
                        self.note(line);
                    }
                }
                self.drain(slot);
                self.check_primaries();
            }
        }
        self.deliver_due();
        self.feed_commit_progress();
        self.retry_state_requests();
    }

    fn timers(&mut self) {
        if self.partition.is_some() && self.now >= self.partition_until {
            self.heal_partition_only();
        }
        let due: Vec<(usize, usize)> = self
            .reset_until
            .iter()
            .filter(|(_, t)| **t <= self.now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            self.reset_until.remove(&key);
            self.reconnect(key.0, key.1);
        }
        for slot in 0..self.slots.len() {
            if let SlotState::Paused { until, .. } = self.slots[slot].state {
                if until <= self.now {
                    self.resume(slot);
                }
            }
            if self.slots[slot].restart_at.is_some_and(|t| t <= self.now)
                && self.slots[slot].group.is_none()
            {
                self.restart(slot);
            }
        }
        let due: Vec<(u64, u64)> = self
            .notices
            .range(..(self.now + 1, 0))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let (slot, peer, connected) = self.notices.remove(&key).expect("due notice");
            if !self.is_up(slot) {
                // A paused process learns about closed sockets when it resumes; keep it.
                if matches!(self.slots[slot].state, SlotState::Paused { .. }) {
                    self.net_seq += 1;
                    self.notices
                        .insert((self.now + 1, self.net_seq), (slot, peer, connected));
                }
                continue;
            }
            if let Some(g) = self.slots[slot].group.as_mut() {
                if connected {
                    g.peer_connected(peer);
                } else {
                    g.peer_lost(peer);
                }
            }
            self.note(format!(
                "{} sees {} {}",
                self.slots[slot].name,
                short(peer),
                if connected { "connected" } else { "lost" }
            ));
            self.drain(slot);
            self.check_primaries();
        }
    }

    fn heal_partition_only(&mut self) {
        self.partition = None;
        self.note("partition healed".to_string());
        let n = self.slots.len();
        for a in 0..n {
            for b in (a + 1)..n {
                if self.slots[a].group.is_some()
                    && self.slots[b].group.is_some()
                    && self.can_talk(a, b)
                {
                    self.connect(a, b);
                }
            }
        }
    }

    fn slot_of(&self, id: NodeId) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.id == id && s.group.is_some())
    }

    fn send_reliable(&mut self, from: NodeId, to: NodeId, msg: Msg) {
        let delay = self
            .rng
            .between(self.opts.delay_min, self.opts.delay_max)
            .max(1);
        self.net_seq += 1;
        self.net
            .insert((self.now + delay, self.net_seq), Packet { from, to, msg });
    }

    fn send(&mut self, from_slot: usize, to: NodeId, msg: Msg) {
        let from = self.slots[from_slot].id;
        let Some(to_slot) = self.slot_of(to) else {
            return;
        };
        if !self.can_talk(from_slot, to_slot) {
            return;
        }
        let faulty = self.faults;
        if faulty && self.opts.loss > 0 && self.rng.chance(self.opts.loss, 1000) {
            return;
        }
        let copies =
            if faulty && self.opts.duplicate > 0 && self.rng.chance(self.opts.duplicate, 1000) {
                2
            } else {
                1
            };
        for _ in 0..copies {
            let delay = self
                .rng
                .between(self.opts.delay_min, self.opts.delay_max)
                .max(1);
            self.net_seq += 1;
            self.net.insert(
                (self.now + delay, self.net_seq),
                Packet {
                    from,
                    to,
                    msg: msg.clone(),
                },
            );
        }
    }

    fn deliver_due(&mut self) {
        loop {
            let Some((&key, _)) = self.net.iter().next() else {
                return;
            };
            if key.0 > self.now {
                return;
            }
            let p = self.net.remove(&key).expect("first packet");
            let Some(to_slot) = self.slot_of(p.to) else {
                continue;
            };
            if let Some(from_slot) = self.slots.iter().position(|s| s.id == p.from) {
                if !self.can_talk(from_slot, to_slot) {
                    continue;
                }
            }
            match self.slots[to_slot].state {
                SlotState::Up => self.deliver_to(to_slot, p.from, p.msg),
                SlotState::Paused { .. } => self.slots[to_slot].held.push((p.from, p.msg)),
                _ => {}
            }
        }
    }

    fn deliver_to(&mut self, slot: usize, from: NodeId, msg: Msg) {
        if self.verbose {
            let line = format!(
                "{} <- {} {}",
                self.slots[slot].name,
                short(from),
                describe_msg(&msg)
            );
            self.note(line);
        }
        let wire = self.opts.wire;
        let Some(g) = self.slots[slot].group.as_mut() else {
            return;
        };
        let result = if wire {
            g.step_bytes(from, &msg.encode())
        } else {
            g.step(from, msg)
        };
        if let Err(e) = result {
            let line = format!(
                "{} step error from {}: {e}",
                self.slots[slot].name,
                short(from)
            );
            self.note(line);
        }
        self.drain(slot);
        if self.verbose {
            if let Some(g) = &self.slots[slot].group {
                let st = g.status();
                let line = format!(
                    "   {} now {:?} term {}",
                    self.slots[slot].name, st.role, st.term
                );
                self.note(line);
            }
        }
        self.check_primaries();
    }

    /// Takes a node's outputs: sends its messages, checks and records its events.
    fn drain(&mut self, slot: usize) {
        let Some(g) = self.slots[slot].group.as_mut() else {
            return;
        };
        let ready = g.take_ready();
        let left = g.has_left();
        for (to, msg) in ready.messages {
            self.send(slot, to, msg);
        }
        for ev in ready.events {
            self.on_event(slot, ev);
        }
        if left && self.slots[slot].group.is_some() {
            self.slots[slot].group = None;
            self.slots[slot].state = SlotState::Left;
            let id = self.slots[slot].id;
            // The process exits: its connections close.
            for other in 0..self.slots.len() {
                if other != slot && self.slots[other].group.is_some() {
                    self.schedule_notice(other, id, false, 1);
                }
            }
        }
    }

    /// The applier: report local progress for the commit cut.
    fn feed_commit_progress(&mut self) {
        for s in &mut self.slots {
            if let (Some(g), Some(last)) = (s.group.as_mut(), s.last) {
                if s.state == SlotState::Up {
                    g.report_committed(Seqno(last));
                }
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // Checks
    // ------------------------------------------------------------------------------------

    fn on_event(&mut self, slot: usize, ev: Event) {
        let name = self.slots[slot].name.clone();
        let me = self.slots[slot].id;
        match ev {
            Event::View(v) => {
                if v.primary {
                    let members: Vec<NodeId> = v.members.iter().map(|m| m.id).collect();
                    self.note(format!(
                        "{name} view#{} at {} {:?}",
                        v.view_id.0,
                        v.seqno.0,
                        members.iter().map(|m| short(*m)).collect::<Vec<_>>()
                    ));
                    self.deliver_item(
                        slot,
                        v.seqno.0,
                        Item::View {
                            view_id: v.view_id.0,
                            members,
                        },
                    );
                } else {
                    self.stats.non_primary_views += 1;
                    self.note(format!("{name} non-primary view"));
                    if v.seqno.is_defined() || v.view_id.0 != -1 {
                        self.fail(format!(
                            "{name}: non-primary view carries seqno {} / id {}",
                            v.seqno, v.view_id.0
                        ));
                    }
                }
            }
            Event::Joined { view, start_seqno } => {
                self.stats.joined_events += 1;
                let start = start_seqno.0;
                self.note(format!("{name} joined at {start}"));
                let last = self.slots[slot].last;
                if last.is_some_and(|l| l > start) {
                    self.fail(format!(
                        "{name}: snapshot at {start} below delivered {last:?}"
                    ));
                    return;
                }
                // State transfer: copy the ordered history up to the snapshot point from the
                // nodes that delivered it (every seqno up to it was delivered by the leader
                // that produced the snapshot before it sent it).
                for s in last.map_or(1, |l| l + 1)..=start {
                    if !self.truth.contains_key(&s) && s > 0 {
                        self.fail(format!(
                            "{name}: state transfer to {start} but nobody delivered {s}"
                        ));
                        return;
                    }
                }
                self.slots[slot].last = Some(start);
                self.slots[slot].transfer_point = Some(start);
                self.slots[slot].ctl_pos = (start, 0);
                if let Some(v) = view {
                    if v.seqno.0 > start {
                        self.fail(format!(
                            "{name}: joined view seqno {} after start {start}",
                            v.seqno
                        ));
                    }
                }
                self.slots[slot].wants_state = true;
                self.request_state(slot);
            }
            Event::Ordered {
                seqno,
                origin,
                local,
                payload,
            } => {
                let s = seqno.0;
                if let Some(id) = local {
                    if origin != me {
                        self.fail(format!(
                            "{name}: local proposal {id:?} ordered with origin {}",
                            short(origin)
                        ));
                    }
                    match self.by_id.get(&(me, id)) {
                        Some(p) if *p == payload => {
                            self.acked.insert(payload.clone(), s);
                            self.max_acked = self.max_acked.max(s);
                        }
                        other => self.fail(format!(
                            "{name}: {id:?} acknowledged with the wrong payload ({other:?})"
                        )),
                    }
                }
                match self.proposals.get(&payload) {
                    Some((o, _)) if *o == origin => {}
                    other => self.fail(format!("{name}: seqno {s} carries a writeset never proposed by its origin ({other:?})")),
                }
                if let Some(prev) = self.payload_at.get(&payload) {
                    if *prev != s {
                        self.fail(format!("{name}: writeset delivered at {s} and at {prev}"));
                    }
                } else {
                    self.payload_at.insert(payload.clone(), s);
                }
                self.slots[slot].delivered_writesets += 1;
                if self.verbose {
                    self.note(format!(
                        "{name} ordered {s} {:?} local={local:?}",
                        String::from_utf8_lossy(&payload)
                    ));
                }
                self.deliver_item(slot, s, Item::Writeset { origin, payload });
            }
            Event::CommitCut(c) => {
                let last = self.slots[slot].last.unwrap_or(-1);
                if c.0 > last {
                    self.fail(format!("{name}: commit cut {c} above delivered {last}"));
                }
                if slot == 0 {
                    self.stats.commit_cuts += 1;
                    self.stats.last_cut = self.stats.last_cut.max(c.0);
                }
                self.ordered_control(slot, format!("cut {}", c.0));
            }
            Event::Control {
                origin,
                local,
                event,
                after,
            } => {
                if let Some(last) = self.slots[slot].last {
                    if after.0 != last {
                        self.fail(format!(
                            "{name}: control after {after} but delivered up to {last}"
                        ));
                    }
                }
                let text = match &event {
                    ControlEvent::StateRequest { joiner, donor, .. } => {
                        if slot == 0 {
                            self.stats.donors.push((*joiner, *donor));
                        }
                        if donor.is_some_and(|d| d == *joiner) {
                            self.fail(format!("{name}: joiner chosen as its own donor"));
                        }
                        format!("sst {} by {:?}", short(*joiner), donor.map(short))
                    }
                    ControlEvent::MemberSynced { node } => format!("synced {}", short(*node)),
                    ControlEvent::MemberDesynced { node } => format!("desynced {}", short(*node)),
                    ControlEvent::FlowControl { node, stop } => {
                        format!(
                            "fc {} {}",
                            short(*node),
                            if *stop { "stop" } else { "cont" }
                        )
                    }
                    ControlEvent::TransferFailed {
                        donor,
                        joiner,
                        code,
                    } => format!("sst-failed {} by {} {code}", short(*joiner), short(*donor)),
                    ControlEvent::WeightWanted { node, weight } => {
                        format!("weight {} {weight}", short(*node))
                    }
                    ControlEvent::Evicted { node, by } => {
                        format!("evicted {} by {}", short(*node), short(*by))
                    }
                    ControlEvent::EvictionsCleared { by } => {
                        format!("evictions cleared by {}", short(*by))
                    }
                    ControlEvent::Cached { node, from } => {
                        format!("cached {} from {from}", short(*node))
                    }
                    ControlEvent::Vote { node, seqno, code } => {
                        format!("vote {} on {seqno}: {code:#x}", short(*node))
                    }
                };
                let _ = (origin, local);
                self.ordered_control(slot, text.clone());
                if let ControlEvent::StateRequest { joiner, donor, .. } = event {
                    if joiner == me && local.is_some() {
                        if donor.is_some() {
                            // The transfer itself is simulated at `Joined`; report synced.
                            if let Some(g) = self.slots[slot].group.as_mut() {
                                let _ = g.propose_control(ControlEntry::Synced);
                            }
                        } else {
                            // No synced member right now: ask again later (Galera retries).
                            self.slots[slot].wants_state = true;
                        }
                    }
                    if donor == Some(me) {
                        // The donor's server donates, then is synced again.
                        if let Some(g) = self.slots[slot].group.as_mut() {
                            let _ = g.propose_control(ControlEntry::Synced);
                        }
                    }
                }
                if let ControlEvent::MemberSynced { node } = event {
                    if node == me {
                        // A synced member reports how far back its cache reaches (here: half
                        // of what it delivered), which steers later donor choices.
                        let from = Seqno(self.slots[slot].last.unwrap_or(0) / 2);
                        if let Some(g) = self.slots[slot].group.as_mut() {
                            let _ = g.propose_control(ControlEntry::Cached { from });
                        }
                    }
                }
            }
            Event::ReadIndexReady { ctx, seqno } => {
                self.stats.reads_ready += 1;
                let floor = self.reads.remove(&(me, ctx)).unwrap_or(-1);
                if seqno.0 < floor {
                    self.fail(format!(
                        "{name}: read point {seqno} below {floor} acknowledged before the read"
                    ));
                }
                let last = self.slots[slot].last.unwrap_or(-1);
                if seqno.0 > last {
                    self.fail(format!(
                        "{name}: read point {seqno} ready before delivering it (at {last})"
                    ));
                }
            }
            Event::ReadIndexFailed { ctx } => {
                self.reads.remove(&(me, ctx));
            }
            Event::ProposalFailed { id, reason } => {
                self.stats.proposal_failures += 1;
                if self.verbose {
                    self.note(format!("{name} proposal {id:?} failed: {reason:?}"));
                }
                if let Some(p) = self.by_id.get(&(me, id)).cloned() {
                    if self.acked.contains_key(&p) {
                        self.fail(format!("{name}: {id:?} failed after it was acknowledged"));
                    }
                    self.failed_payloads.insert(p);
                }
            }
            Event::Refused { .. } => self.stats.refused += 1,
            Event::Left => self.note(format!("{name} left")),
            Event::Failed { reason } => self.fail(format!("{name}: core failed: {reason}")),
        }
    }

    fn request_state(&mut self, slot: usize) {
        let req = ControlEntry::StateRequest {
            donor_names: vec![],
            request: b"rsync\0sim\0".to_vec(),
            // What it has: a donor whose cache reaches back to it is preferred.
            ist_from: Position {
                history: self.history,
                seqno: self.slots[slot].last.map_or(Seqno::UNDEFINED, Seqno),
            },
        };
        if let Some(g) = self.slots[slot].group.as_mut() {
            if g.propose_control(req).is_ok() {
                self.slots[slot].wants_state = false;
            }
        }
    }

    fn deliver_item(&mut self, slot: usize, seqno: i64, item: Item) {
        self.mix(slot as u64);
        self.mix(seqno as u64);
        self.mix(self.now);
        let name = self.slots[slot].name.clone();
        let expected = self.slots[slot].last.map(|l| l + 1);
        match expected {
            None => self.fail(format!("{name}: delivered {seqno} before any start point")),
            Some(e) if e != seqno => self.fail(format!(
                "{name}: delivered {seqno}, expected {e} (gap or duplicate)"
            )),
            _ => {}
        }
        self.slots[slot].last = Some(seqno);
        self.slots[slot].ctl_pos = (seqno, 0);
        match self.truth.get(&seqno) {
            Some(t) if *t != item => {
                self.fail(format!(
                    "{name}: seqno {seqno} is {item:?} here but {t:?} elsewhere"
                ));
            }
            Some(_) => {}
            None => {
                self.truth.insert(seqno, item);
            }
        }
    }

    fn ordered_control(&mut self, slot: usize, text: String) {
        let (after, k) = self.slots[slot].ctl_pos;
        self.slots[slot].ctl_pos = (after, k + 1);
        // A node that started at a snapshot may have missed controls right after its start
        // seqno (they precede the snapshot index): compare only fully observed positions.
        if self.slots[slot].transfer_point == Some(after) && after != 0 {
            return;
        }
        match self.ctl_truth.get(&(after, k)) {
            Some(t) if *t != text => {
                let name = self.slots[slot].name.clone();
                self.fail(format!("{name}: ordered control #{k} after {after} is '{text}' here but '{t}' elsewhere"));
            }
            Some(_) => {}
            None => {
                self.ctl_truth.insert((after, k), text);
            }
        }
    }

    /// Check 1: at most one primary component.
    pub fn check_primaries(&mut self) {
        let mut seen: Option<(u64, NodeId, usize)> = None;
        for slot in 0..self.slots.len() {
            let claim = match self.slots[slot].state {
                SlotState::Up => self.slots[slot]
                    .group
                    .as_ref()
                    .and_then(|g| g.lease_claim()),
                SlotState::Paused { since, .. } => self.slots[slot].claim_at_pause.filter(|c| {
                    // Frozen, but its claim stands until its lease would end in real time.
                    c.now_tick + (self.now - since) < c.until_tick
                }),
                _ => None,
            };
            let Some(c) = claim else { continue };
            self.stats.max_term = self.stats.max_term.max(c.term);
            match seen {
                None => seen = Some((c.term, c.leader, slot)),
                Some((t, l, other)) if (t, l) != (c.term, c.leader) => {
                    let msg = format!(
                        "two primary components: {} claims (term {t}, leader {}) while {} claims (term {}, leader {})",
                        self.slots[other].name,
                        short(l),
                        self.slots[slot].name,
                        c.term,
                        short(c.leader)
                    );
                    self.fail(msg);
                }
                _ => {}
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // The swarm driver
    // ------------------------------------------------------------------------------------

    fn live_slots(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|s| self.slots[*s].group.is_some())
            .collect()
    }

    /// May `slot` be lost for good (crash, leave) without making liveness impossible? Only
    /// in a healthy moment: nothing partitioned, paused or reset, no dead member left in any
    /// node's configuration, and every configuration keeps a strict majority without it.
    /// (Losing a majority needs an operator's `pc.bootstrap`; a scenario covers that.)
    fn may_lose(&self, slot: usize) -> bool {
        if self.partition.is_some() || !self.reset_until.is_empty() {
            return false;
        }
        if self
            .slots
            .iter()
            .any(|s| matches!(s.state, SlotState::Paused { .. }) || s.leaving)
        {
            return false;
        }
        // A membership change in flight (say, the removal of a node whose connection just
        // reset) may shrink the configuration under this check's feet: losing a node now
        // could leave no majority of the configuration that results.
        if self
            .slots
            .iter()
            .filter_map(|s| s.group.as_ref())
            .any(|g| g.conf_change_pending())
        {
            return false;
        }
        let gone = self.slots[slot].id;
        let alive: BTreeSet<NodeId> = self
            .slots
            .iter()
            .filter(|s| s.group.is_some() && s.id != gone)
            .map(|s| s.id)
            .collect();
        if alive.len() < 2 {
            return false;
        }
        for s in &self.slots {
            let Some(g) = &s.group else { continue };
            // Weights as this node has them: a live node may still move toward a lower
            // wanted weight, a silent one is never moved up.
            let weights: BTreeMap<NodeId, (u8, u8)> = g
                .voter_weights()
                .into_iter()
                .map(|(id, w, wanted)| (id, (w, wanted)))
                .collect();
            // The members listed, and raft's configuration, which a removal reaches first.
            for members in [g.status().members, g.configured_voters()] {
                if members.iter().any(|m| *m != gone && !alive.contains(m)) {
                    return false;
                }
                // Weighted majority without `gone`, however the live weights settle.
                let live: u64 = members
                    .iter()
                    .filter(|m| alive.contains(m))
                    .map(|m| {
                        weights
                            .get(m)
                            .map_or(0, |(w, want)| u64::from(*w.min(want)))
                    })
                    .sum();
                let lost: u64 = members
                    .iter()
                    .filter(|m| **m == gone)
                    .map(|m| {
                        weights
                            .get(m)
                            .map_or(1, |(w, want)| u64::from(*w.max(want)))
                    })
                    .sum();
                if live <= lost {
                    return false;
                }
            }
        }
        true
    }

    /// May an operator change `slot`'s weight to `weight` without making liveness
    /// impossible? In a healthy moment only (as `may_lose`), and only if every live
    /// configuration then keeps more weight than any one node could take away with it
    /// (a later loss is checked by `may_lose` against the weights then).
    fn may_reweight(&self, slot: usize) -> bool {
        if self.partition.is_some() || !self.reset_until.is_empty() {
            return false;
        }
        if self.slots.iter().any(|s| {
            matches!(s.state, SlotState::Paused { .. })
                || s.leaving
                || s.group.as_ref().is_some_and(|g| g.conf_change_pending())
        }) {
            return false;
        }
        let alive: BTreeSet<NodeId> = self
            .slots
            .iter()
            .filter(|s| s.group.is_some())
            .map(|s| s.id)
            .collect();
        self.slots[slot].group.is_some()
            && self.slots.iter().filter_map(|s| s.group.as_ref()).all(|g| {
                g.configured_voters().iter().all(|m| alive.contains(m))
                    && g.status().members.iter().all(|m| alive.contains(m))
            })
    }

    fn inject_faults(&mut self) {
        let n = self.slots.len();
        let o = self.opts.clone();
        if o.partition_rate > 0
            && self.partition.is_none()
            && self.rng.chance(o.partition_rate, 100_000)
        {
            let sides: Vec<u8> = (0..n).map(|_| self.rng.below(2) as u8).collect();
            let ticks = self.rng.between(1, o.partition_ticks_max);
            self.partition(sides, ticks);
        }
        if o.crash_rate > 0 && self.rng.chance(o.crash_rate, 100_000) {
            let slot = self.rng.below(n as u64) as usize;
            if self.slots[slot].group.is_some() && self.may_lose(slot) {
                self.crash(slot);
                let delay = self.rng.between(1, o.restart_ticks_max);
                self.slots[slot].restart_at = Some(self.now + delay);
            }
        }
        if o.leave_rate > 0 && self.rng.chance(o.leave_rate, 100_000) {
            let slot = self.rng.below(n as u64) as usize;
            if self.is_up(slot) && self.may_lose(slot) {
                self.leave(slot);
                let delay = self
                    .rng
                    .between(o.suspect_ticks, o.suspect_ticks + o.restart_ticks_max);
                self.slots[slot].restart_at = Some(self.now + delay);
            }
        }
        if o.crash_cut_rate > 0
            && self.partition.is_none()
            && self.rng.chance(o.crash_cut_rate, 100_000)
        {
            if let Some(leader) = self.leader() {
                if self.may_lose(leader) {
                    self.crash(leader);
                    let delay = self.rng.between(1, o.restart_ticks_max);
                    self.slots[leader].restart_at = Some(self.now + delay);
                    let cut = self.rng.below(n as u64) as usize;
                    let sides: Vec<u8> = (0..n).map(|s| u8::from(s == cut)).collect();
                    let ticks = self.rng.between(1, 2 * o.election_ticks);
                    self.partition(sides, ticks);
                }
            }
        }
        if o.reweight_rate > 0 && self.rng.chance(o.reweight_rate, 100_000) {
            let slot = self.rng.below(n as u64) as usize;
            let weight = self.rng.below(4) as u8;
            if self.may_reweight(slot) {
                self.set_weight(slot, weight);
            }
        }
        if o.pause_rate > 0 && self.rng.chance(o.pause_rate, 100_000) {
            let slot = self.rng.below(n as u64) as usize;
            let ticks = self.rng.between(1, o.pause_ticks_max);
            self.pause(slot, ticks);
        }
        if o.reset_rate > 0 && self.rng.chance(o.reset_rate, 100_000) {
            let a = self.rng.below(n as u64) as usize;
            let b = self.rng.below(n as u64) as usize;
            if a != b && self.slots[a].group.is_some() && self.slots[b].group.is_some() {
                let ticks = self.rng.between(1, 3 * o.election_ticks);
                self.reset_connection(a, b, ticks);
            }
        }
        self.client_work();
    }

    fn client_work(&mut self) {
        let n = self.slots.len() as u64;
        if self.rng.chance(self.opts.propose_rate, 1000) {
            let slot = self.rng.below(n) as usize;
            self.propose(slot);
        }
        if self.opts.read_rate > 0 && self.rng.chance(self.opts.read_rate, 1000) {
            let slot = self.rng.below(n) as usize;
            self.read(slot);
        }
    }

    /// Joiners whose state request found no donor ask again, every few ticks.
    fn retry_state_requests(&mut self) {
        if !self.now.is_multiple_of(5) {
            return;
        }
        for slot in 0..self.slots.len() {
            if self.slots[slot].wants_state && self.is_up(slot) {
                self.request_state(slot);
            }
        }
    }

    /// Heals everything and stops faults (crashed nodes stay down unless a restart is due).
    pub fn enter_liveness(&mut self) {
        self.faults = false;
        self.heal();
        for slot in 0..self.slots.len() {
            if let SlotState::Paused { .. } = self.slots[slot].state {
                self.resume(slot);
            }
            if self.slots[slot].group.is_none() && self.slots[slot].restart_at.is_some() {
                self.restart(slot);
            }
            if self.slots[slot].leaving {
                // Restart as soon as it is out.
                self.slots[slot].restart_at = Some(self.now);
            }
        }
        self.note("liveness phase".to_string());
    }

    /// Runs until `done` holds or `budget` ticks pass; returns whether it held.
    pub fn run_until(&mut self, budget: u64, mut done: impl FnMut(&Sim) -> bool) -> bool {
        for _ in 0..budget {
            if self.failed.is_some() {
                return false;
            }
            if done(self) {
                return true;
            }
            self.step();
        }
        done(self)
    }

    pub fn run(&mut self, ticks: u64) {
        for _ in 0..ticks {
            if self.failed.is_some() {
                return;
            }
            self.step();
        }
    }

    /// Every live node primary, in one view, having delivered every acknowledged writeset.
    pub fn converged(&self) -> bool {
        let live = self.live_slots();
        if live.is_empty() {
            return false;
        }
        let mut view = None;
        for &s in &live {
            let Some(g) = &self.slots[s].group else {
                return false;
            };
            if !self.is_up(s) || !g.is_primary() || self.slots[s].leaving {
                return false;
            }
            let v = g.status().view.map(|v| v.view_id);
            if view.is_some() && view != v {
                return false;
            }
            view = v;
            if self.slots[s].last.unwrap_or(-1) < self.max_acked {
                return false;
            }
        }
        true
    }

    /// Slots running and not paused.
    pub fn live_slots_up(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|s| self.is_up(*s)).collect()
    }

    pub fn live_count(&self) -> usize {
        self.live_slots().len()
    }

    /// The final check: converge, then prove new proposals commit everywhere.
    pub fn liveness(&mut self) -> Result<(), Failure> {
        self.enter_liveness();
        let budget = self.opts.liveness_ticks;
        if !self.run_until(budget, |s| s.converged()) {
            return Err(self.failed.clone().unwrap_or_else(|| {
                format!("no convergence within {budget} ticks: {}", self.describe())
            }));
        }
        // One new writeset per live node; a client whose proposal fails (a membership change
        // can still be settling) retries, as a real client would.
        let live = self.live_slots();
        let mut fresh: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        for _ in 0..budget {
            if self.failed.is_some() {
                break;
            }
            for &s in &live {
                let retry = match fresh.get(&s) {
                    None => true,
                    Some(p) => !self.acked.contains_key(p) && self.failed_payloads.contains(p),
                };
                if retry {
                    if let Some(p) = self.propose(s) {
                        fresh.insert(s, p);
                    }
                }
            }
            let all_acked = live
                .iter()
                .all(|s| fresh.get(s).is_some_and(|p| self.acked.contains_key(p)));
            if all_acked {
                let top = fresh
                    .values()
                    .filter_map(|p| self.acked.get(p))
                    .max()
                    .copied()
                    .unwrap_or(0);
                if self
                    .live_slots()
                    .iter()
                    .all(|&x| self.slots[x].last.unwrap_or(-1) >= top)
                {
                    return self.check_acked_everywhere();
                }
            }
            self.step();
        }
        Err(self.failed.clone().unwrap_or_else(|| {
            format!(
                "new proposals did not commit everywhere: {}",
                self.describe()
            )
        }))
    }

    fn check_acked_everywhere(&self) -> Result<(), Failure> {
        // Memory stays bounded: compaction keeps every log near the configured maximum.
        let bound = 2 * self.opts.max_log_entries + 256;
        for s in self.live_slots() {
            let len = self.slots[s].group.as_ref().map_or(0, |g| g.log_len());
            if len > bound {
                return Err(format!(
                    "{} holds {len} log entries (bound {bound})",
                    self.slots[s].name
                ));
            }
        }
        for (payload, seqno) in &self.acked {
            match self.truth.get(seqno) {
                Some(Item::Writeset { payload: p, .. }) if p == payload => {}
                other => {
                    return Err(format!(
                        "acknowledged writeset at {seqno} is {other:?} in the order"
                    ))
                }
            }
            for s in self.live_slots() {
                if self.slots[s].last.unwrap_or(-1) < *seqno {
                    return Err(format!(
                        "{} lacks acknowledged seqno {seqno}",
                        self.slots[s].name
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn describe(&self) -> String {
        let mut out = String::new();
        for s in &self.slots {
            let st = s.group.as_ref().map(|g| g.status());
            let _ = write!(
                out,
                "\n  {} {} {:?} last={:?}",
                s.name,
                short(s.id),
                s.state,
                s.last,
            );
            if let Some(st) = st {
                let _ = write!(
                    out,
                    " role={:?} term={} leader={:?} primary={} view={:?} members={:?} seq={}",
                    st.role,
                    st.term,
                    st.leader.map(short),
                    st.primary,
                    st.view.as_ref().map(|v| (v.view_id.0, v.primary)),
                    st.members.iter().map(|m| short(*m)).collect::<Vec<_>>(),
                    st.last_seqno
                );
                if let Some(g) = &s.group {
                    let _ = write!(out, "\n      {}", g.debug_state());
                }
            }
        }
        out
    }
}

fn describe_msg(msg: &Msg) -> String {
    use protobuf::Message as _;
    match msg {
        Msg::Raft(env) => match raft::eraftpb::Message::parse_from_bytes(&env.message) {
            Ok(m) => format!(
                "raft {:?} term={} idx={} logterm={} commit={} reject={} ents={} snap={}",
                m.get_msg_type(),
                m.term,
                m.index,
                m.log_term,
                m.commit,
                m.reject,
                m.entries.len(),
                m.get_snapshot().get_metadata().index
            ),
            Err(_) => "raft <malformed>".to_string(),
        },
        other => other.kind().to_string(),
    }
}

/// Runs one seed end to end: formation, faults, liveness. Returns the trace hash.
#[allow(clippy::result_large_err)] // a failure report, built once per failing seed
pub fn run_seed(seed: u64) -> Result<u64, (Options, Failure, String)> {
    let mut rng = Rng::new(seed);
    let opts = Options::swarm(&mut rng);
    let mut sim = Sim::new(seed, opts.clone());
    sim.bootstrap(0);
    for slot in 1..opts.nodes {
        sim.start_joiner(slot);
    }
    sim.run_until(opts.liveness_ticks, |s| s.converged());
    if let Some(f) = sim.failed.clone() {
        return Err((opts, f, sim.journal()));
    }
    if !sim.converged() {
        return Err((
            opts,
            format!("the cluster did not form: {}", sim.describe()),
            sim.journal(),
        ));
    }
    sim.faults = true;
    sim.run(opts.fault_ticks);
    if let Some(f) = sim.failed.clone() {
        return Err((opts, f, sim.journal()));
    }
    match sim.liveness() {
        Ok(()) => Ok(sim.trace),
        Err(f) => Err((opts, f, sim.journal())),
    }
}

impl Sim {
    /// The slot leading with a valid lease, if any.
    pub fn leader(&self) -> Option<usize> {
        (0..self.slots.len()).find(|&s| {
            self.is_up(s)
                && self.slots[s]
                    .group
                    .as_ref()
                    .is_some_and(|g| g.lease_claim().is_some_and(|c| c.leader == g.node()))
        })
    }

    /// The slot that raft-wise leads (lease or not), if any.
    pub fn raft_leader(&self) -> Option<usize> {
        (0..self.slots.len()).find(|&s| {
            self.is_up(s)
                && self.slots[s]
                    .group
                    .as_ref()
                    .is_some_and(|g| g.status().role == trireme_group::Role::Leader)
        })
    }

    pub fn group(&self, slot: usize) -> &Group {
        self.slots[slot].group.as_ref().expect("slot is running")
    }

    pub fn group_mut(&mut self, slot: usize) -> &mut Group {
        self.slots[slot].group.as_mut().expect("slot is running")
    }

    /// Forms a cluster of every slot: slot 0 bootstraps, the others join.
    pub fn form(&mut self) {
        self.bootstrap(0);
        for slot in 1..self.slots.len() {
            self.start_joiner(slot);
        }
        let ok = self.run_until(2000, |s| s.converged() && s.view_size(0) == s.slots.len());
        assert!(
            ok,
            "cluster did not form: {:?}\n{}",
            self.failed,
            self.describe()
        );
    }

    pub fn view_size(&self, slot: usize) -> usize {
        self.slots[slot]
            .group
            .as_ref()
            .and_then(|g| g.status().view)
            .map_or(0, |v| v.members.len())
    }

    pub fn is_acked(&self, payload: &[u8]) -> bool {
        self.acked.contains_key(payload)
    }

    pub fn assert_ok(&self) {
        if let Some(f) = &self.failed {
            panic!("check failed: {f}\n{}\n{}", self.journal(), self.describe());
        }
    }
}
