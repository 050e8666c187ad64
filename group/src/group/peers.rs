//! What the transport needs to know to keep a full mesh: the replication address of every
//! member of the raft configuration (voters and learners), so each node can dial the ones it
//! is not connected to (a joiner dials only its `gcomm://` seeds at first).

use super::Group;
use trireme_types::NodeId;

impl Group {
    /// `(node, address)` of every other member of the current raft configuration.
    pub fn member_addresses(&self) -> Vec<(NodeId, String)> {
        self.raw
            .store()
            .sm
            .members
            .iter()
            .filter(|m| m.info.id != self.cfg.node && !m.info.address.is_empty())
            .map(|m| (m.info.id, m.info.address.clone()))
            .collect()
    }
}
