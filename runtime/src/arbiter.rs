//! The arbitrator's loop (garbd's role): a group member that votes in quorum and stores no
//! data.
//!
//! It joins like any node, is promoted to voter once its raft log has caught up, and then
//! counts in every majority, so two data nodes and an arbitrator survive the loss of either
//! data node. It never asks for state and never reports itself synced, so the group never
//! picks it as a donor. It reports its delivered position as committed, so the commit cut
//! (and with it the certification index and GCache purge on the data nodes) keeps moving.

use crate::peers::Peers;
use crate::sys::EventFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use trireme_group::{ControlEntry, ControlEvent, Event, Group, GroupConfig, Position};
use trireme_net::{TransportChoice, TransportConfig};
use trireme_types::{NodeId, Seqno};

#[derive(Clone, Debug)]
pub struct ArbiterConfig {
    pub cluster_name: String,
    /// `gcomm://` addresses of the data nodes.
    pub seeds: Vec<String>,
    pub name: String,
    /// Where peers connect (`gmcast.listen_addr`).
    pub listen: String,
    /// The host peers are told to dial.
    pub advertised_host: String,
    pub election_timeout: Duration,
    pub suspect_timeout: Duration,
    pub transport: TransportChoice,
    /// `pc.weight`.
    pub weight: u8,
}

const TICK: Duration = Duration::from_millis(10);

/// Runs until `stop` is set (then leaves the group cleanly) or the group fails.
pub fn run(config: ArbiterConfig, stop: &AtomicBool) -> Result<(), String> {
    let node = NodeId::generate();
    let mut transport = TransportConfig::new(&config.cluster_name, &config.listen);
    transport.choice = config.transport;
    let mut peers = Peers::open(transport, node)?;
    let advertised = format!("{}:{}", config.advertised_host, peers.listen.port());
    let mut group_config = GroupConfig::new(node, &config.name, &config.cluster_name);
    group_config.address = advertised;
    let ticks = |d: Duration| (d.as_millis() / TICK.as_millis()).max(3) as u64;
    group_config.election_ticks = ticks(config.election_timeout);
    group_config.heartbeat_ticks = (group_config.election_ticks / 10).max(1);
    group_config.suspect_ticks = ticks(config.suspect_timeout);
    group_config.seed = node.short_id();
    group_config.weight = config.weight;
    let mut group = Group::join(group_config, Position::UNDEFINED).map_err(|e| e.to_string())?;
    for seed in &config.seeds {
        peers.want(seed);
    }
    let waker = EventFd::new().map_err(|e| e.to_string())?;
    log::info!(
        "Arbitrator {node} joining {} through {}",
        config.cluster_name,
        config.seeds.join(",")
    );
    let mut next_tick = Instant::now() + TICK;
    let mut ticks_since_report = 0u32;
    let mut delivered = Seqno::UNDEFINED;
    let mut abstained = std::collections::BTreeSet::new();
    let mut leaving_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) && leaving_since.is_none() {
            log::info!("Arbitrator leaving the group");
            group.leave();
            leaving_since = Some(Instant::now());
        }
        if leaving_since.is_some_and(|t| t.elapsed() > Duration::from_secs(5)) {
            log::warn!("Arbitrator: no confirmation of the leave within 5 s; exiting");
            return Ok(());
        }
        while Instant::now() >= next_tick {
            group.tick();
            next_tick += TICK;
            ticks_since_report += 1;
            if ticks_since_report >= 10 {
                ticks_since_report = 0;
                group.report_committed(delivered);
                peers.maintain(&group.member_addresses());
            }
        }
        let wait = next_tick.saturating_duration_since(Instant::now());
        peers.poll(&mut group, Some(wait), waker.raw_fd());
        let ready = group.take_ready();
        for (to, msg) in &ready.messages {
            peers.send(*to, msg);
        }
        for event in ready.events {
            match event {
                Event::View(view) => log::info!(
                    "View #{} at {}: {} member(s), {}",
                    view.view_id.0,
                    view.seqno,
                    view.members.len(),
                    if view.primary {
                        "primary"
                    } else {
                        "non-primary"
                    }
                ),
                Event::Ordered { seqno, .. } => delivered = seqno,
                // An inconsistency vote: the arbitrator applies nothing, so it abstains (the
                // data nodes wait for every member of the view before deciding).
                Event::Control {
                    origin,
                    event: ControlEvent::Vote { seqno, .. },
                    ..
                } if origin != node && abstained.insert(seqno) => {
                    let abstain = ControlEntry::Vote {
                        seqno,
                        code: trireme_types::VOTE_ABSTAIN,
                    };
                    if let Err(e) = group.propose_control(abstain) {
                        log::warn!("Arbitrator could not abstain on seqno {seqno}: {e}");
                    }
                    while abstained.len() > 1024 {
                        abstained.pop_first();
                    }
                }
                Event::Joined { start_seqno, .. } => delivered = start_seqno,
                Event::Refused { peer, reason } => log::error!("Refused by {peer}: {reason}"),
                Event::Left => {
                    peers.close_all(waker.raw_fd());
                    log::info!("Arbitrator left the group");
                    return Ok(());
                }
                Event::Failed { reason } => return Err(reason),
                _ => {}
            }
        }
    }
}
