//! Named scenarios on the simulator: the cases the swarm hits only by luck. Each asserts
//! what the feature promises; the simulator's checks (one primary, one order, nothing
//! acknowledged lost) run after every step underneath.

mod sim;

use sim::{Options, Sim, SlotState};
use trireme_group::{ControlEntry, Event, Group, GroupConfig, ProposeError};

fn calm(nodes: usize) -> Sim {
    Sim::new(7, calm_options(nodes))
}

fn calm_options(nodes: usize) -> Options {
    let mut o = Options::calm(nodes);
    o.election_ticks = 20;
    o.heartbeat_ticks = 2;
    o.suspect_ticks = 100;
    o
}

#[test]
fn bootstrap_then_two_joins_form_a_three_node_primary() {
    let mut sim = calm(3);
    sim.bootstrap(0);
    assert_eq!(
        sim.slots[0].last,
        Some(1),
        "the bootstrap view takes seqno last_seqno + 1"
    );
    sim.start_joiner(1);
    sim.start_joiner(2);
    assert!(sim.run_until(500, |s| s.converged() && s.view_size(0) == 3));
    sim.assert_ok();
    assert_eq!(
        sim.stats.joined_events, 2,
        "each joiner starts from a snapshot"
    );
    for slot in 0..3 {
        let st = sim.group(slot).status();
        assert!(st.primary);
        assert_eq!(st.members.len(), 3);
        assert!(st.view.as_ref().unwrap().my_index.is_some());
    }
    let payloads: Vec<_> = (0..3).map(|s| sim.propose(s).expect("accepted")).collect();
    assert!(sim.run_until(200, |s| payloads.iter().all(|p| s.is_acked(p))));
    sim.assert_ok();
}

#[test]
fn kill_of_leader_elects_a_new_one_without_waiting_for_a_timeout() {
    let only: Option<u64> = std::env::var("SCENARIO_SEED")
        .ok()
        .and_then(|s| s.parse().ok());
    for seed in (0..16).filter(|s| only.is_none_or(|o| o == *s)) {
        let mut o = Options::calm(3 + (seed as usize % 3));
        o.election_ticks = 20;
        o.heartbeat_ticks = 2;
        o.suspect_ticks = 100;
        let mut sim = Sim::new(200 + seed, o);
        sim.form();
        // Some writes in flight, so logs differ a little at the crash.
        for i in 0..5 {
            sim.propose(i % sim.slots.len());
        }
        sim.run(seed % 4);
        let old = sim.leader().expect("a leader");
        let crashed_at = sim.now;
        sim.crash(old);
        // Survivors see the connection close 1-3 ticks later; one of them campaigns at once.
        let e = sim.opts.election_ticks;
        let elected = sim.run_until(e, |s| s.raft_leader().is_some_and(|l| l != old));
        sim.assert_ok();
        assert!(
            elected,
            "seed {seed}: no new leader within the election timeout: {}",
            sim.describe()
        );
        let took = sim.now - crashed_at;
        assert!(
            took < e / 2,
            "seed {seed}: took {took} ticks; a timeout election needs >= {e}"
        );
        // Writes commit at once (the primary claim waits out the old lease, commits do not).
        let survivor = (0..sim.slots.len()).find(|s| *s != old).unwrap();
        let p = sim.propose(survivor).expect("accepted");
        assert!(
            sim.run_until(10, |s| s.is_acked(&p)),
            "seed {seed}: a write waited: {}",
            sim.describe()
        );
        // And the dead member leaves the view.
        let n = sim.slots.len();
        assert!(sim.run_until(200, |s| s.converged() && s.view_size(survivor) == n - 1));
        sim.assert_ok();
    }
}

#[test]
fn partition_2_1_minority_goes_non_primary_majority_keeps_committing() {
    let mut sim = calm(3);
    sim.form();
    let leader = sim.leader().expect("a leader");
    // The leader ends up alone: the hard side of the split.
    let sides: Vec<u8> = (0..3).map(|s| u8::from(s == leader)).collect();
    sim.partition(sides, 10_000);
    let majority: Vec<usize> = (0..3).filter(|s| *s != leader).collect();
    let e = sim.opts.election_ticks;
    // The isolated leader loses its lease within an election timeout and says so at once.
    let went = sim.run_until(2 * e, |s| {
        !s.group(leader).is_primary() && s.stats.non_primary_views >= 1
    });
    sim.assert_ok();
    assert!(went, "minority leader still primary: {}", sim.describe());
    assert_eq!(
        sim.group_mut(leader).propose(b"x".to_vec()),
        Err(ProposeError::NotPrimary)
    );
    // The majority elects a new leader and keeps committing, throughout the split.
    assert!(sim.run_until(6 * e, |s| s.leader().is_some_and(|l| l != leader)));
    for i in 0..20 {
        let p = sim.propose(majority[i % 2]).expect("majority accepts");
        assert!(
            sim.run_until(e, |s| s.is_acked(&p)),
            "majority stalled: {}",
            sim.describe()
        );
    }
    sim.assert_ok();
    assert!(matches!(sim.slots[leader].state, SlotState::Up));
    // Heal: the old leader comes back into one primary view with everything.
    sim.heal();
    assert!(
        sim.run_until(20 * e, |s| s.converged() && s.view_size(leader) == 3),
        "{}",
        sim.describe()
    );
    sim.assert_ok();
}

/// Every node has the weights `want` (slot order) applied, as wanted and in force.
fn weights_settled(sim: &Sim, want: &[u8]) -> bool {
    let ids: Vec<_> = sim.slots.iter().map(|s| s.id).collect();
    sim.live_slots_up().iter().all(|&s| {
        let w = sim.group(s).voter_weights();
        w.len() == want.len()
            && ids.iter().zip(want).all(|(id, want)| {
                w.iter()
                    .any(|(node, now, wanted)| node == id && now == want && wanted == want)
            })
    })
}

fn heal_into_one_view_of_three(sim: &mut Sim) {
    let e = sim.opts.election_ticks;
    sim.heal();
    assert!(
        sim.run_until(40 * e, |s| s.converged() && s.view_size(0) == 3),
        "{}",
        sim.describe()
    );
    sim.assert_ok();
}

/// Galera's `pc.weight`: a node that weighs more than the others together keeps the
/// primary component alone when cut off, and the two light nodes, a head-count majority,
/// go non-primary. Weights set at run time reach every node one unit at a time.
#[test]
fn a_heavy_node_keeps_the_primary_alone_and_the_light_majority_does_not() {
    let mut sim = calm(3);
    sim.form();
    let e = sim.opts.election_ticks;
    sim.set_weight(2, 3);
    assert!(
        sim.run_until(20 * e, |s| weights_settled(s, &[1, 1, 3])),
        "weights did not settle: {:?}\n{}",
        sim.group(0).voter_weights(),
        sim.describe()
    );
    let sides: Vec<u8> = (0..3).map(|s| u8::from(s == 2)).collect();
    sim.partition(sides, 100_000);
    // The light pair loses the primary within a few election timeouts and stays out.
    assert!(
        sim.run_until(6 * e, |s| !s.group(0).is_primary()
            && !s.group(1).is_primary()),
        "{}",
        sim.describe()
    );
    assert_eq!(
        sim.group_mut(0).propose(b"x".to_vec()),
        Err(ProposeError::NotPrimary)
    );
    // The heavy node alone is (or becomes) the primary component and keeps committing.
    assert!(
        sim.run_until(6 * e, |s| s.group(2).is_primary()),
        "{}",
        sim.describe()
    );
    for _ in 0..10 {
        let p = sim.propose(2).expect("the heavy node accepts writes");
        assert!(
            sim.run_until(2 * e, |s| s.is_acked(&p)),
            "heavy node stalled: {}",
            sim.describe()
        );
    }
    sim.run(10 * e);
    assert!(!sim.group(0).is_primary() && !sim.group(1).is_primary());
    sim.assert_ok();
    // Healed, the light pair comes back into one primary view.
    heal_into_one_view_of_three(&mut sim);
}

/// The other way round: weights 2, 1, 1 give the pair half the weight, not more; neither
/// side of a split between the heavy node and the pair is primary, as in Galera.
#[test]
fn an_even_weighted_split_leaves_no_primary_until_healed() {
    let mut o = calm_options(3);
    o.weights = vec![1, 1, 2];
    let mut sim = Sim::new(7, o);
    sim.form();
    let e = sim.opts.election_ticks;
    assert!(
        sim.run_until(20 * e, |s| weights_settled(s, &[1, 1, 2])),
        "{}",
        sim.describe()
    );
    let sides: Vec<u8> = (0..3).map(|s| u8::from(s == 2)).collect();
    sim.partition(sides, 100_000);
    assert!(
        sim.run_until(6 * e, |s| (0..3).all(|x| !s.group(x).is_primary())),
        "{}",
        sim.describe()
    );
    sim.run(20 * e);
    assert!(
        (0..3).all(|x| !sim.group(x).is_primary()),
        "{}",
        sim.describe()
    );
    heal_into_one_view_of_three(&mut sim);
}

#[test]
fn paused_leader_loses_its_lease_before_a_new_leader_is_elected() {
    let mut sim = calm(3);
    sim.form();
    let old = sim.leader().expect("a leader");
    let lease_end_local = sim.group(old).lease_claim().unwrap().until_tick;
    let local_now = sim.group(old).status().tick;
    let paused_at = sim.now;
    let e = sim.opts.election_ticks;
    sim.pause(old, 6 * e);
    // Its lease, in real time, ends here (its clock is frozen, real time is not).
    let lease_end = paused_at + (lease_end_local - local_now);
    let mut elected_at = None;
    for _ in 0..(6 * e) {
        sim.step();
        sim.assert_ok();
        if elected_at.is_none() && sim.leader().is_some_and(|l| l != old) {
            elected_at = Some(sim.now);
        }
    }
    let elected_at =
        elected_at.expect("the majority elected a new leader while the old one was paused");
    assert!(
        lease_end <= elected_at,
        "old lease ends at {lease_end}, new leader primary at {elected_at}"
    );
    // Resumed: all missed ticks first, so it knows at once its lease is gone.
    assert!(
        sim.run_until(20 * e, |s| s.converged() && s.view_size(0) >= 2),
        "{}",
        sim.describe()
    );
    sim.assert_ok();
}

#[test]
fn duplicate_and_reordered_proposals_commit_exactly_once() {
    let mut o = Options::calm(3);
    o.election_ticks = 20;
    o.heartbeat_ticks = 2;
    o.suspect_ticks = 200;
    o.delay_min = 1;
    o.delay_max = 3;
    o.loss = 100;
    o.duplicate = 400;
    o.propose_rate = 800;
    let mut sim = Sim::new(11, o);
    sim.form();
    sim.faults = true;
    sim.run(1500);
    sim.assert_ok();
    assert!(sim.stats.proposals > 500);
    sim.liveness()
        .unwrap_or_else(|f| panic!("{f}\n{}", sim.journal()));
    // Every writeset delivered at most once (the simulator fails on a second seqno), and
    // everything acknowledged is everywhere; with no membership change, nothing failed.
    assert!(sim.acked.len() as u64 + sim.stats.proposal_failures >= sim.stats.proposals);
    let distinct: std::collections::BTreeSet<i64> = sim.acked.values().copied().collect();
    assert_eq!(
        distinct.len(),
        sim.acked.len(),
        "two writesets acknowledged at one seqno"
    );
}

#[test]
fn graceful_leave_removes_the_node_without_a_stall() {
    for leaver_is_leader in [true, false] {
        let mut sim = calm(3);
        sim.form();
        let leader = sim.leader().unwrap();
        let leaver = if leaver_is_leader {
            leader
        } else {
            (leader + 1) % 3
        };
        let stay: Vec<usize> = (0..3).filter(|s| *s != leaver).collect();
        sim.leave(leaver);
        let e = sim.opts.election_ticks;
        // Writes keep committing while it leaves: each within a few round trips.
        for i in 0..30 {
            if let Some(p) = sim.propose(stay[i % 2]) {
                assert!(
                    sim.run_until(e / 2, |s| s.is_acked(&p)),
                    "stalled during leave: {}",
                    sim.describe()
                );
            } else {
                sim.step();
            }
        }
        sim.assert_ok();
        assert_eq!(
            sim.slots[leaver].state,
            SlotState::Left,
            "{}",
            sim.describe()
        );
        assert!(sim.run_until(e, |s| stay.iter().all(|x| s.view_size(*x) == 2)));
        assert!(stay.iter().all(|x| sim.group(*x).is_primary()));
        sim.assert_ok();
    }
}

#[test]
fn different_cluster_name_is_refused() {
    let mut sim = calm(3);
    sim.bootstrap(0);
    sim.start_joiner(1);
    assert!(sim.run_until(500, |s| s.converged() && s.view_size(0) == 2));
    sim.start_joiner_in(2, "another_cluster");
    sim.run(300);
    sim.assert_ok();
    assert!(sim.stats.refused >= 1, "the stranger was not told");
    assert_eq!(sim.view_size(0), 2, "the stranger got in");
    assert!(sim.slots[2].last.is_none(), "the stranger received state");
    // And a Hello with another name gets a Refuse back, directly.
    let mut g = Group::join(
        GroupConfig::new(sim.slots[2].id, "x", "sim"),
        trireme_group::Position::UNDEFINED,
    )
    .unwrap();
    let stranger = Group::join(
        GroupConfig::new(
            trireme_types::NodeId(trireme_types::Uuid([5; 16])),
            "y",
            "zzz",
        ),
        trireme_group::Position::UNDEFINED,
    )
    .unwrap();
    assert!(g.step(stranger.node(), stranger.hello()).is_err());
    let r = g.take_ready();
    assert!(matches!(
        r.messages.as_slice(),
        [(_, trireme_group::Msg::Refuse(_))]
    ));
}

#[test]
fn force_bootstrap_makes_a_non_primary_component_primary() {
    let mut sim = calm(3);
    sim.form();
    let payloads: Vec<_> = (0..5).map(|i| sim.propose(i % 3).unwrap()).collect();
    assert!(sim.run_until(100, |s| payloads.iter().all(|p| s.is_acked(p))));
    sim.run(20); // everyone has everything
    let survivor = (0..3).find(|s| Some(*s) != sim.leader()).unwrap();
    for s in 0..3 {
        if s != survivor {
            sim.crash(s);
        }
    }
    let e = sim.opts.election_ticks;
    assert!(sim.run_until(10 * e, |s| !s.group(survivor).is_primary()
        && s.stats.non_primary_views >= 1));
    sim.run(5 * e);
    assert!(
        !sim.group(survivor).is_primary(),
        "one of three cannot be primary on its own"
    );
    // pc.bootstrap: the operator makes the survivor a primary component.
    assert!(sim.force_bootstrap(survivor));
    sim.assert_ok();
    assert!(sim.group(survivor).is_primary());
    assert_eq!(sim.view_size(survivor), 1);
    let p = sim.propose(survivor).unwrap();
    assert!(sim.run_until(10, |s| s.is_acked(&p)));
    // The others come back as new incarnations and join the new primary.
    for s in 0..3 {
        if s != survivor {
            sim.restart(s);
        }
    }
    assert!(
        sim.run_until(50 * e, |s| s.converged() && s.view_size(survivor) == 3),
        "{}",
        sim.describe()
    );
    sim.assert_ok();
    sim.liveness().unwrap_or_else(|f| panic!("{f}"));
    let _ = Event::Left;
}

#[test]
fn a_forced_election_never_overlaps_the_lease_of_a_follower_cut_off_from_it() {
    // The leader dies; at that moment one follower is cut off from the survivors. It still
    // holds a lease derived from the dead leader; the survivors elect a new leader at once
    // (forced campaign). One primary at a time still: the new leader's claim waits the old
    // lease out. (The simulator checks this after every step.)
    for seed in 0..20 {
        let mut o = Options::calm(5);
        o.election_ticks = 20;
        o.heartbeat_ticks = 2;
        o.suspect_ticks = 200;
        let mut sim = Sim::new(100 + seed, o);
        println!("scenario seed {}", 100 + seed);
        sim.form();
        sim.run(5);
        let leader = sim.leader().expect("a leader");
        let cut = (leader + 1 + (seed as usize % 4)) % 5;
        let sides: Vec<u8> = (0..5).map(|s| u8::from(s == cut)).collect();
        sim.crash(leader);
        sim.partition(sides, 60);
        let e = sim.opts.election_ticks;
        assert!(
            sim.run_until(e, |s| s.raft_leader().is_some_and(|l| l != leader)),
            "{}",
            sim.describe()
        );
        sim.run(3 * e);
        sim.assert_ok();
        sim.heal();
        assert!(
            sim.run_until(30 * e, |s| s.converged() && s.view_size(cut) == 4),
            "{}",
            sim.describe()
        );
        sim.assert_ok();
    }
}

#[test]
fn read_index_covers_everything_acknowledged_before_the_read() {
    // wsrep_sync_wait: a read point on any node is at or after every writeset acknowledged
    // anywhere before the read began (the simulator checks the floor on every answer).
    let mut sim = calm(3);
    sim.form();
    for round in 0..10 {
        let writer = round % 3;
        let reader = (round + 1) % 3;
        let p = sim.propose(writer).unwrap();
        assert!(sim.run_until(20, |s| s.is_acked(&p)));
        let before = sim.stats.reads_ready;
        sim.read(reader);
        assert!(
            sim.run_until(20, |s| s.stats.reads_ready > before),
            "read {round} got no point"
        );
        sim.assert_ok();
    }
}

#[test]
fn commit_cut_is_ordered_and_never_passes_the_slowest_member() {
    let mut sim = calm(3);
    sim.form();
    for i in 0..30 {
        sim.propose(i % 3);
        sim.run(2);
    }
    sim.run(20);
    sim.assert_ok();
    assert!(sim.stats.commit_cuts > 0, "no commit cut was ordered");
    // A member stops applying (paused): the cut stays at or below what it reported.
    let slow = (0..3).find(|s| Some(*s) != sim.leader()).unwrap();
    let slow_last = sim.slots[slow].last.unwrap();
    sim.pause(slow, 60);
    for i in 0..20 {
        sim.propose(if i % 2 == 0 {
            (slow + 1) % 3
        } else {
            (slow + 2) % 3
        });
        sim.run(2);
    }
    sim.assert_ok();
    assert!(
        sim.stats.last_cut <= slow_last,
        "cut {} passed the slow member's {slow_last}",
        sim.stats.last_cut
    );
}

#[test]
fn state_request_names_the_same_synced_donor_on_every_node() {
    let mut sim = calm(4);
    sim.form();
    sim.run(50);
    sim.assert_ok();
    // Every joiner asked for state through the total order and ends up with a donor other
    // than itself (the simulator checks every node delivered the same choice). While the
    // only synced member is donating, a request finds no donor and is retried, as in Galera.
    let donors = &sim.stats.donors;
    for slot in 1..4 {
        let joiner = sim.slots[slot].id;
        let last = donors
            .iter()
            .rev()
            .find(|(j, _)| *j == joiner)
            .expect("it asked");
        let donor = last.1.expect("a synced donor in the end");
        assert_ne!(donor, joiner);
    }
    for (joiner, donor) in donors {
        assert_ne!(Some(*joiner), *donor);
    }
}

#[test]
fn a_node_removed_auto_evict_times_is_refused_until_it_restarts() {
    let mut o = calm_options(3);
    o.auto_evict = 2;
    let mut sim = Sim::new(7, o);
    sim.form();
    let e = sim.opts.election_ticks;
    let victim = (0..3)
        .find(|s| Some(*s) != sim.leader())
        .expect("a follower");
    let cut_off = |sim: &mut Sim| {
        let sides: Vec<u8> = (0..3).map(|s| u8::from(s == victim)).collect();
        sim.partition(sides, 100_000);
        assert!(
            sim.run_until(40 * e, |s| s.leader().is_some_and(|l| s.view_size(l) == 2)),
            "the cut-off node was not removed: {}",
            sim.describe()
        );
        sim.heal();
    };
    // Removed once: it comes back.
    cut_off(&mut sim);
    assert!(
        sim.run_until(40 * e, |s| s.converged() && s.view_size(victim) == 3),
        "{}",
        sim.describe()
    );
    assert!(!sim.group(victim).is_evicted());
    // Removed a second time: refused, for good, and listed as evicted everywhere.
    cut_off(&mut sim);
    let id = sim.slots[victim].id;
    assert!(
        sim.run_until(40 * e, |s| s.group(victim).is_evicted()),
        "{}",
        sim.describe()
    );
    sim.run(40 * e);
    sim.assert_ok();
    let leader = sim.leader().expect("a leader");
    assert_eq!(sim.view_size(leader), 2, "{}", sim.describe());
    assert!(!sim.group(victim).is_primary());
    assert!(sim.stats.refused >= 1);
    for s in (0..3).filter(|s| *s != victim) {
        assert_eq!(sim.group(s).evicted(), vec![id]);
    }
    // The survivors keep committing.
    let p = sim.propose(leader).expect("the primary accepts");
    assert!(sim.run_until(4 * e, |s| s.is_acked(&p)));
    // A restart is a new node id: it joins.
    sim.crash(victim);
    sim.restart(victim);
    assert!(
        sim.run_until(60 * e, |s| s.converged() && s.view_size(leader) == 3),
        "{}",
        sim.describe()
    );
    sim.assert_ok();
}

#[test]
fn an_operator_eviction_removes_the_node_and_refuses_it_until_it_restarts() {
    let mut sim = calm(3);
    sim.form();
    let e = sim.opts.election_ticks;
    let leader = sim.leader().expect("a leader");
    let victim = (0..3).find(|s| *s != leader).expect("a follower");
    let asker = (0..3)
        .find(|s| *s != leader && *s != victim)
        .expect("a third node");
    let id = sim.slots[victim].id;
    sim.group_mut(asker)
        .propose_control(ControlEntry::Evict { node: id })
        .expect("a member may order an eviction");
    assert!(
        sim.run_until(40 * e, |s| s.group(victim).is_evicted()
            && s.leader().is_some_and(|l| s.view_size(l) == 2)),
        "{}",
        sim.describe()
    );
    sim.run(20 * e);
    sim.assert_ok();
    for s in (0..3).filter(|s| *s != victim) {
        assert_eq!(sim.group(s).evicted(), vec![id]);
    }
    assert!(!sim.group(victim).is_primary());
    // Clearing the list is ordered too; the evicted node still needs its restart.
    sim.group_mut(leader)
        .propose_control(ControlEntry::ClearEvictions)
        .expect("ordered");
    assert!(sim.run_until(10 * e, |s| (0..3)
        .filter(|x| *x != victim)
        .all(|x| s.group(x).evicted().is_empty())));
    sim.crash(victim);
    sim.restart(victim);
    assert!(
        sim.run_until(60 * e, |s| s.converged() && s.view_size(leader) == 3),
        "{}",
        sim.describe()
    );
    sim.assert_ok();
}
