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
