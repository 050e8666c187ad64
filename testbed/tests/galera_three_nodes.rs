//! Three Galera nodes through the testbed: joiners arrive by rsync SST, writes on any node are
//! seen everywhere, a multi-primary sysbench run leaves identical data, and a crashed node
//! comes back from its recovered position.

mod common;

use common::{galera_spec, skip, TempBase};
use trireme_testbed::{
    checksum_all, create_database, create_user, differences, Cluster, Sysbench, SysbenchTarget,
    TestbedError, Workload, WsrepPosition,
};

/// Fails with every difference if the nodes' table fingerprints disagree.
fn assert_consistent(cluster: &Cluster) -> Result<(), TestbedError> {
    let first = cluster.node(0)?;
    let reference = checksum_all(first)?;
    for node in &cluster.nodes()[1..] {
        let sums = checksum_all(node)?;
        let diff = differences(first.name(), &reference, node.name(), &sums);
        assert!(diff.is_empty(), "data differs:\n{}", diff.join("\n"));
    }
    Ok(())
}

#[test]
fn three_nodes_join_by_sst_replicate_from_any_node_and_stay_consistent() -> Result<(), TestbedError>
{
    let name = "three_nodes_join_by_sst_replicate_from_any_node_and_stay_consistent";
    if skip(name, &["/usr/bin/rsync", "/usr/bin/sysbench"]) {
        return Ok(());
    }
    let base = TempBase::new("three");
    let spec = galera_spec(3, &base, 18420);
    let stop_timeout = spec.stop_timeout;
    let mut cluster = Cluster::start(spec)?;

    let uuid = cluster
        .node(0)?
        .status_var("wsrep_cluster_state_uuid")?
        .unwrap_or_default();
    for node in cluster.nodes() {
        let st = node.status()?;
        assert_eq!(st["wsrep_cluster_size"], "3", "{}", node.status_line());
        assert_eq!(st["wsrep_cluster_status"], "Primary");
        assert_eq!(st["wsrep_local_state_comment"], "Synced");
        assert_eq!(st["wsrep_cluster_state_uuid"], uuid);
    }
    for joiner in &cluster.nodes()[1..] {
        let log = joiner.error_log_tail(10_000);
        assert!(
            log.contains("wsrep_sst_rsync --role 'joiner'"),
            "{} did not join by rsync SST:\n{}",
            joiner.name(),
            joiner.error_log_tail(30)
        );
    }

    // A write on node 2 is visible on the others (read with a causal wait).
    cluster
        .node(2)?
        .exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v TEXT)")?;
    cluster
        .node(2)?
        .exec("INSERT INTO d.t VALUES (1, 'from node2'), (2, NULL)")?;
    for i in [0, 1] {
        let rows = cluster
            .node(i)?
            .sql("SET SESSION wsrep_sync_wait=15; SELECT id, v FROM d.t ORDER BY id")?;
        assert_eq!(
            rows,
            vec![vec!["1", "from node2"], vec!["2", "NULL"]],
            "on node{i}"
        );
    }
    assert_consistent(&cluster)?;

    // Multi-primary: one sysbench per node at once (node 0 over TCP, the others over the
    // socket); conflicts between nodes are expected and retried, divergence is not.
    let node0 = cluster.node(0)?;
    let mut w = Workload::new("oltp_write_only");
    w.tables = 2;
    w.table_size = 1000;
    w.threads = 2;
    w.time = std::time::Duration::from_secs(5);
    w.report_interval = Some(std::time::Duration::from_secs(1));
    create_database(node0, &w.db)?;
    create_user(node0, "sbtest", "sbtest-pw", &w.db)?;
    let bench = Sysbench::new(w);
    bench.prepare(&SysbenchTarget::socket(node0))?;
    let targets = vec![
        SysbenchTarget::tcp(node0, "sbtest", "sbtest-pw"),
        SysbenchTarget::socket(cluster.node(1)?),
        SysbenchTarget::socket(cluster.node(2)?),
    ];
    let reports = bench.run_concurrently(&targets)?;
    for r in &reports {
        assert!(r.transactions > 0 && r.tps > 0.0, "{r:?}");
        assert!(
            r.latency_avg_ms > 0.0 && r.latency_p95_ms >= r.latency_min_ms,
            "{r:?}"
        );
        assert!(!r.intervals.is_empty(), "{r:?}");
    }
    assert_consistent(&cluster)?;
    // The fingerprint covered the workload's tables (their row counts drift: oltp_write_only
    // deletes and re-inserts, and conflicting events are retried).
    let sums = checksum_all(cluster.node(1)?)?;
    for t in ["sbtest.sbtest1", "sbtest.sbtest2"] {
        assert!(
            sums.get(t).is_some_and(|s| s.rows > 0),
            "{t} missing from {sums:?}"
        );
    }

    // Crash node 2, recover its position, bring it back through the running nodes.
    let committed = cluster.node(2)?.last_committed()?;
    cluster.node_mut(2)?.kill9()?;
    cluster
        .node(0)?
        .exec("INSERT INTO d.t VALUES (3, 'while node2 was down')")?;
    let pos = cluster.node(2)?.recover_position()?;
    let parsed = WsrepPosition::parse(&pos).unwrap_or_else(|| panic!("unparsable {pos:?}"));
    assert_eq!(parsed.uuid, uuid, "recovered {pos}");
    assert!(
        parsed.seqno >= committed,
        "recovered {pos}, had committed {committed}"
    );
    cluster.restart_node(2, Some(&pos))?;
    assert_eq!(
        cluster
            .node(2)?
            .status_var("wsrep_cluster_size")?
            .as_deref(),
        Some("3")
    );
    assert_consistent(&cluster)?;

    bench.cleanup(&SysbenchTarget::socket(cluster.node(1)?))?;
    for took in cluster.stop_all()? {
        let took = took.expect("every node was running");
        assert!(took < stop_timeout, "a clean stop took {took:?}");
    }
    drop(cluster);
    base.passed();
    Ok(())
}
