//! The group core's configuration, in ticks (the runtime converts Galera's durations using
//! its tick length).

use crate::event::GroupError;
use trireme_types::NodeId;

/// Defaults assume a 10 ms tick: election 1 s (`trireme.election_timeout`), heartbeat 100 ms,
/// suspect 5 s (`evs.suspect_timeout`).
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub node: NodeId,
    /// `wsrep_node_name`.
    pub name: String,
    /// `wsrep_node_incoming_address`.
    pub incoming: String,
    /// The replication address peers dial (`wsrep_node_address`).
    pub address: String,
    /// `wsrep_cluster_name`: peers with another name are refused.
    pub cluster_name: String,
    /// Silence from the leader after which followers elect a new one.
    pub election_ticks: u64,
    pub heartbeat_ticks: u64,
    /// Silence after which the leader removes a member from the view.
    pub suspect_ticks: u64,
    /// How long a member may go without a lease before it delivers a non-primary view
    /// (0: three election timeouts: a leader change, even with one split vote, completes
    /// well within it). A leader whose lease expires goes non-primary at once.
    pub primary_loss_ticks: u64,
    /// Safety margin subtracted from every lease, for clock-rate drift.
    pub lease_margin_ticks: u64,
    /// The raft log is compacted once every voter has an entry; beyond this many entries it
    /// is compacted anyway and a lagging member gets a snapshot (and must do state transfer).
    pub max_log_entries: u64,
    /// Unconfirmed local proposals beyond which `propose` refuses.
    pub max_pending_proposals: usize,
    /// Largest raft append message (bytes).
    pub max_append_bytes: u64,
    /// A writeset larger than this is ordered as consecutive parts of at most this many
    /// bytes, each its own raft entry, reassembled at delivery: no message, and no step of
    /// the loop that drives the group, carries the whole of a large writeset, so heartbeats
    /// and acknowledgements keep flowing while it travels.
    pub max_part_bytes: usize,
    /// Seeds election-timeout randomisation (use OS randomness outside simulations).
    pub seed: u64,
    /// `evs.auto_evict`: a node removed this many times (it keeps failing and coming back
    /// under the same id) is refused when it asks back in; 0 never evicts.
    pub auto_evict: u32,
    /// `pc.weight`: this node's weight in quorums. A component is primary while its voters
    /// weigh more than half of all voters (the group never lets every voter weigh 0).
    pub weight: u8,
}

impl GroupConfig {
    pub fn new(node: NodeId, name: &str, cluster_name: &str) -> GroupConfig {
        GroupConfig {
            node,
            name: name.to_string(),
            incoming: String::new(),
            address: String::new(),
            cluster_name: cluster_name.to_string(),
            election_ticks: 100,
            heartbeat_ticks: 10,
            suspect_ticks: 500,
            primary_loss_ticks: 0,
            lease_margin_ticks: 5,
            max_log_entries: 100_000,
            max_pending_proposals: 65_536,
            max_append_bytes: 1 << 20,
            // Above a 1 MB streaming fragment with its headers: those stay in one entry.
            max_part_bytes: 2 << 20,
            seed: 0,
            auto_evict: 0,
            weight: 1,
        }
    }

    pub(crate) fn primary_loss(&self) -> u64 {
        if self.primary_loss_ticks == 0 {
            3 * self.election_ticks
        } else {
            self.primary_loss_ticks
        }
    }

    /// Checks the relations the protocol relies on, naming both values when they conflict.
    pub fn validate(&self) -> Result<(), GroupError> {
        let err = |s: String| Err(GroupError::Config(s));
        if self.node.is_nil() {
            return err("node id must not be nil".into());
        }
        if self.heartbeat_ticks == 0 {
            return err("heartbeat_ticks must be at least 1".into());
        }
        if self.election_ticks < 3 * self.heartbeat_ticks {
            return err(format!(
                "election_ticks ({}) must be at least 3 x heartbeat_ticks ({})",
                self.election_ticks, self.heartbeat_ticks
            ));
        }
        if self.lease_margin_ticks + 2 * self.heartbeat_ticks >= self.election_ticks {
            return err(format!(
                "lease_margin_ticks ({}) + 2 x heartbeat_ticks ({}) must stay below election_ticks ({})",
                self.lease_margin_ticks, self.heartbeat_ticks, self.election_ticks
            ));
        }
        if self.suspect_ticks < self.election_ticks {
            return err(format!(
                "suspect_ticks ({}) must be at least election_ticks ({})",
                self.suspect_ticks, self.election_ticks
            ));
        }
        if self.max_log_entries < 16 {
            return err(format!(
                "max_log_entries ({}) must be at least 16",
                self.max_log_entries
            ));
        }
        if self.max_part_bytes == 0 {
            return err("max_part_bytes must be at least 1".into());
        }
        if self.max_pending_proposals == 0 {
            return err("max_pending_proposals must be at least 1".into());
        }
        Ok(())
    }
}
