//! One node, no network: bootstrap, propose, deliver.

use trireme_group::{Event, Group, GroupConfig};
use trireme_types::{HistoryId, NodeId, Seqno, Uuid};

fn cfg() -> GroupConfig {
    let mut c = GroupConfig::new(NodeId(Uuid([1; 16])), "n1", "c");
    c.election_ticks = 10;
    c.heartbeat_ticks = 2;
    c.suspect_ticks = 50;
    c.lease_margin_ticks = 1;
    c
}

#[test]
fn bootstrap_delivers_a_primary_view_then_orders_proposals() {
    let mut g = Group::bootstrap(cfg(), HistoryId(Uuid([2; 16])), Seqno(41)).unwrap();
    let r = g.take_ready();
    let views: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| {
            if let Event::View(v) = e {
                Some(v.clone())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(views.len(), 1, "{:?}", r.events);
    assert!(views[0].primary);
    assert_eq!(views[0].seqno, Seqno(42));
    assert!(g.is_primary());
    let a = g.propose(b"a".to_vec()).unwrap();
    let b = g.propose(b"b".to_vec()).unwrap();
    let r = g.take_ready();
    let ordered: Vec<_> = r
        .events
        .iter()
        .filter_map(|e| {
            if let Event::Ordered {
                seqno,
                local,
                payload,
                ..
            } = e
            {
                Some((*seqno, *local, payload.clone()))
            } else {
                None
            }
        })
        .collect();
    assert_eq!(
        ordered,
        vec![
            (Seqno(43), Some(a), b"a".to_vec()),
            (Seqno(44), Some(b), b"b".to_vec())
        ]
    );
    for _ in 0..100 {
        g.tick();
    }
    assert!(g.is_primary());
    assert!(g.take_ready().messages.is_empty());
}

#[test]
fn malformed_frames_and_contradictory_raft_messages_are_errors_not_panics() {
    use protobuf::Message as _;
    use trireme_group::msg::{LeaseStamp, RaftEnvelope};
    use trireme_group::{Generation, Msg};
    let mut g = Group::bootstrap(cfg(), HistoryId(Uuid([2; 16])), Seqno(0)).unwrap();
    let peer = NodeId(Uuid([9; 16]));
    assert!(g.step_bytes(peer, b"not an archive").is_err());
    let env = |m: raft::eraftpb::Message| {
        Msg::Raft(RaftEnvelope {
            generation: Generation {
                number: 1,
                origin: NodeId(Uuid([1; 16])),
            },
            stamp: LeaseStamp::default(),
            message: m.write_to_bytes().unwrap(),
        })
    };
    let me = NodeId(Uuid([1; 16])).short_id();
    // Garbage protobuf, a sender claiming another raft id, a local-only type, term 0.
    let garbage = Msg::Raft(RaftEnvelope {
        generation: Generation {
            number: 1,
            origin: NodeId(Uuid([1; 16])),
        },
        stamp: LeaseStamp::default(),
        message: vec![0xff; 7],
    });
    assert!(g.step(peer, garbage).is_err());
    let mut m = raft::eraftpb::Message::default();
    m.set_msg_type(raft::eraftpb::MessageType::MsgHeartbeat);
    m.from = 12345;
    m.to = me;
    m.term = 1;
    assert!(g.step(peer, env(m.clone())).is_err());
    m.from = peer.short_id();
    m.set_msg_type(raft::eraftpb::MessageType::MsgPropose);
    assert!(g.step(peer, env(m.clone())).is_err());
    m.set_msg_type(raft::eraftpb::MessageType::MsgRequestVote);
    m.term = 0;
    assert!(g.step(peer, env(m)).is_err());
    // Still a healthy single-node primary.
    assert!(g.is_primary());
    assert!(g.propose(b"ok".to_vec()).is_ok());
}
