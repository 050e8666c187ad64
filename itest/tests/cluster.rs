//! Issue 4 on real servers: three MariaDB nodes on Trireme, from empty datadirs (node 0
//! bootstraps, nodes 1 and 2 join by MariaDB's rsync SST script), taking writes everywhere.
//! Every check goes through SQL.

use std::collections::BTreeMap;
use std::thread;
use std::time::{Duration, Instant};
use trireme_itest::{error_lines, skip, status_is, trireme_spec, TempBase};
use trireme_testbed::{
    checksum_all, differences, Cluster, Node, Sysbench, SysbenchReport, SysbenchTarget,
    TestbedError, Workload,
};

fn seconds(default: u64) -> Duration {
    Duration::from_secs(
        std::env::var("TRIREME_ITEST_CLUSTER_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default),
    )
}

fn three_nodes(base: &TempBase, port_base: u16) -> Result<Cluster, TestbedError> {
    let mut spec = trireme_spec(3, base, port_base);
    spec.slave_threads = 4;
    Cluster::start(spec)
}

/// Every node holds the same rows in every table (after a causal wait).
fn assert_identical(cluster: &Cluster) -> Result<(), TestbedError> {
    let first = checksum_all(cluster.node(0)?)?;
    assert!(!first.is_empty());
    for i in 1..cluster.nodes().len() {
        let other = checksum_all(cluster.node(i)?)?;
        let diff = differences("node0", &first, &format!("node{i}"), &other);
        assert!(
            diff.is_empty(),
            "data differs between node0 and node{i}: {diff:#?}"
        );
    }
    Ok(())
}

fn status(node: &Node, name: &str) -> i64 {
    node.status_var(name)
        .ok()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1)
}

/// What a stuck workload leaves to read when the run is on another machine: the ordering
/// and flow-control state of each node and the end of its error log.
fn diagnose(cluster: &Cluster) -> String {
    const VARS: [&str; 10] = [
        "wsrep_last_committed",
        "wsrep_local_recv_queue",
        "wsrep_local_send_queue",
        "wsrep_flow_control_active",
        "wsrep_flow_control_requested",
        "wsrep_flow_control_sent",
        "wsrep_flow_control_recv",
        "wsrep_cluster_status",
        "wsrep_local_state_comment",
        "wsrep_cluster_size",
    ];
    let mut out = String::new();
    for node in cluster.nodes() {
        let vars: Vec<String> = VARS
            .iter()
            .map(|v| match node.status_var(v) {
                Ok(Some(value)) => format!("{v}={value}"),
                Ok(None) => format!("{v}=?"),
                Err(e) => format!("{v}: {e}"),
            })
            .collect();
        out += &format!("--- {}: {}\n", node.name(), vars.join(" "));
        let log = std::fs::read_to_string(&node.layout().error_log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        for line in &lines[lines.len().saturating_sub(25)..] {
            out += &format!("    {line}\n");
        }
    }
    out
}

fn assert_no_errors_logged(cluster: &Cluster) {
    for node in cluster.nodes() {
        let log = std::fs::read_to_string(&node.layout().error_log).unwrap_or_default();
        let errors = error_lines(&log);
        assert!(
            errors.is_empty(),
            "{} logged errors:\n{}",
            node.name(),
            errors.join("\n")
        );
    }
}

fn workload(test: &str, threads: u32, time: Duration) -> Sysbench {
    let mut w = Workload::new(test);
    w.threads = threads;
    w.time = time;
    w.tables = 4;
    w.table_size = 10_000;
    Sysbench::new(w)
}

/// sysbench stops at any error but a lock conflict (1213 from a certification failure or
/// a brute-force abort, and InnoDB's own deadlocks), which it retries and counts.
fn assert_ran(report: &SysbenchReport) {
    assert!(report.transactions > 0, "{report:?}");
    assert_eq!(report.reconnects, 0, "{report:?}");
}

#[test]
fn three_nodes_join_by_sst_take_writes_everywhere_and_stay_identical() -> Result<(), TestbedError> {
    if skip("three_nodes_join_by_sst_take_writes_everywhere_and_stay_identical") {
        return Ok(());
    }
    let base = TempBase::new("three");
    let cluster = three_nodes(&base, 23000)?;
    // One primary component: same history, same view, three distinct members.
    let mut uuids = BTreeMap::new();
    for node in cluster.nodes() {
        let st = node.status()?;
        assert_eq!(st["wsrep_cluster_size"], "3", "{}", node.name());
        assert_eq!(st["wsrep_cluster_status"], "Primary");
        assert_eq!(st["wsrep_local_state_comment"], "Synced");
        assert_eq!(
            st["wsrep_cluster_state_uuid"],
            cluster.node(0)?.status()?["wsrep_cluster_state_uuid"]
        );
        assert_eq!(
            st["wsrep_incoming_addresses"].split(',').count(),
            3,
            "{st:?}"
        );
        uuids.insert(
            st["wsrep_gcomm_uuid"].clone(),
            st["wsrep_local_index"].clone(),
        );
    }
    assert_eq!(uuids.len(), 3, "distinct node ids: {uuids:?}");
    let mut indexes: Vec<_> = uuids.values().cloned().collect();
    indexes.sort();
    assert_eq!(indexes, vec!["0", "1", "2"]);
    for i in [1, 2] {
        let log = std::fs::read_to_string(&cluster.node(i)?.layout().error_log).unwrap_or_default();
        assert!(
            log.contains("rsync SST completed on joiner"),
            "node{i} did not join by SST"
        );
    }

    let time = seconds(60);
    let node0 = cluster.node(0)?;
    trireme_testbed::create_database(node0, "sbtest")?;
    let targets: Vec<SysbenchTarget> = cluster.nodes().iter().map(SysbenchTarget::socket).collect();
    let single = workload("oltp_read_write", 8, time);
    single.prepare(&targets[0])?;
    let report = single
        .run(&targets[0])
        .inspect_err(|_| eprintln!("{}", diagnose(&cluster)))?;
    assert_ran(&report);
    eprintln!("oltp_read_write single-writer: {report:?}");
    assert_identical(&cluster)?;

    for test in ["oltp_write_only", "oltp_update_index"] {
        let multi = workload(test, 4, time);
        let reports = multi
            .run_concurrently(&targets)
            .inspect_err(|_| eprintln!("{}", diagnose(&cluster)))?;
        for report in &reports {
            assert_ran(report);
        }
        eprintln!("{test} on all three nodes: {reports:?}");
        assert_identical(&cluster)?;
    }
    // Certification did work on the way: conflicts were found and resolved on some node.
    let conflicts: i64 = cluster
        .nodes()
        .iter()
        .map(|n| status(n, "wsrep_local_cert_failures") + status(n, "wsrep_local_bf_aborts"))
        .sum();
    assert!(
        conflicts > 0,
        "multi-primary writes on shared tables never conflicted"
    );
    // Every node applied others' writesets (apply window) and committed in order (commit
    // window): both are averages of at least one seqno.
    for node in cluster.nodes() {
        for name in ["wsrep_apply_window", "wsrep_commit_window"] {
            let v: f64 = node
                .status_var(name)?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            assert!(v >= 1.0, "{} {name} = {v}", node.name());
        }
    }
    assert_no_errors_logged(&cluster);
    base.passed();
    Ok(())
}

#[test]
fn a_hot_row_updated_from_every_node_ends_with_every_acknowledged_increment(
) -> Result<(), TestbedError> {
    if skip("a_hot_row_updated_from_every_node_ends_with_every_acknowledged_increment") {
        return Ok(());
    }
    let base = TempBase::new("hotrow");
    let cluster = three_nodes(&base, 23040)?;
    cluster.node(0)?.exec("CREATE DATABASE h; CREATE TABLE h.c (id INT PRIMARY KEY, n INT NOT NULL); INSERT INTO h.c VALUES (1, 0)")?;
    let before: Vec<i64> = cluster
        .nodes()
        .iter()
        .map(|n| status(n, "wsrep_local_cert_failures") + status(n, "wsrep_local_bf_aborts"))
        .collect();
    let deadline = Instant::now() + seconds(20).min(Duration::from_secs(20));
    let results: Vec<(u64, u64)> = thread::scope(|s| {
        let handles: Vec<_> = cluster
            .nodes()
            .iter()
            .map(|node| {
                s.spawn(move || {
                    let (mut ok, mut deadlocks) = (0u64, 0u64);
                    while Instant::now() < deadline {
                        match node.exec("UPDATE h.c SET n = n + 1 WHERE id = 1") {
                            Ok(()) => ok += 1,
                            Err(e) if e.sql_code() == Some(1213) => deadlocks += 1,
                            Err(e) => panic!("{}: unexpected error {e}", node.name()),
                        }
                    }
                    (ok, deadlocks)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    let acknowledged: u64 = results.iter().map(|r| r.0).sum();
    let deadlocks: u64 = results.iter().map(|r| r.1).sum();
    eprintln!("hot row: {results:?} (acknowledged, 1213) per node");
    assert!(acknowledged > 0);
    // Conflicts happened, surfaced as ER_LOCK_DEADLOCK, and moved the counters.
    assert!(
        deadlocks > 0,
        "three nodes on one row never conflicted: {results:?}"
    );
    let after: Vec<i64> = cluster
        .nodes()
        .iter()
        .map(|n| status(n, "wsrep_local_cert_failures") + status(n, "wsrep_local_bf_aborts"))
        .collect();
    assert!(
        after.iter().sum::<i64>() > before.iter().sum::<i64>(),
        "{before:?} -> {after:?}"
    );
    for node in cluster.nodes() {
        let n = node.sql("SET SESSION wsrep_sync_wait = 15; SELECT n FROM h.c WHERE id = 1")?;
        assert_eq!(
            n,
            vec![vec![acknowledged.to_string()]],
            "{}: every acknowledged increment, no more",
            node.name()
        );
    }
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}

#[test]
fn causal_reads_ddl_and_auto_increment_behave_across_nodes() -> Result<(), TestbedError> {
    if skip("causal_reads_ddl_and_auto_increment_behave_across_nodes") {
        return Ok(());
    }
    let base = TempBase::new("causal");
    let cluster = three_nodes(&base, 23080)?;
    let (n0, n1, n2) = (cluster.node(0)?, cluster.node(1)?, cluster.node(2)?);
    // DDL on one node is there, in total order, for DML on the next.
    n1.exec("CREATE DATABASE c; CREATE TABLE c.t (id INT PRIMARY KEY, v INT)")?;
    n2.exec("SET SESSION wsrep_sync_wait = 1; INSERT INTO c.t VALUES (0, 0)")?;
    // A read with wsrep_sync_wait sees the write just committed on another node, every time.
    for i in 1..=100 {
        n0.exec(&format!("INSERT INTO c.t VALUES ({i}, {i})"))?;
        let seen = n1.sql(&format!(
            "SET SESSION wsrep_sync_wait = 1; SELECT v FROM c.t WHERE id = {i}"
        ))?;
        assert_eq!(
            seen,
            vec![vec![i.to_string()]],
            "causal read {i} missed the write"
        );
    }
    // Auto-increment control: concurrent inserts on every node never collide.
    n0.exec("CREATE TABLE c.a (id INT AUTO_INCREMENT PRIMARY KEY, node INT)")?;
    thread::scope(|s| {
        for (i, node) in [n0, n1, n2].into_iter().enumerate() {
            s.spawn(move || {
                for _ in 0..100 {
                    node.exec(&format!("INSERT INTO c.a (node) VALUES ({i})"))
                        .expect("no duplicate keys");
                }
            });
        }
    });
    let count =
        n2.sql("SET SESSION wsrep_sync_wait = 15; SELECT COUNT(*), COUNT(DISTINCT id) FROM c.a")?;
    assert_eq!(count, vec![vec!["300", "300"]]);
    for node in [n0, n1, n2] {
        let inc = node
            .variable("auto_increment_increment")?
            .unwrap_or_default();
        assert_eq!(
            inc,
            "3",
            "{}: wsrep_auto_increment_control sets the increment to the cluster size",
            node.name()
        );
    }
    assert_identical(&cluster)?;
    assert_no_errors_logged(&cluster);
    base.passed();
    Ok(())
}

#[test]
fn a_node_leaves_cleanly_without_disturbing_the_others_and_rejoins() -> Result<(), TestbedError> {
    if skip("a_node_leaves_cleanly_without_disturbing_the_others_and_rejoins") {
        return Ok(());
    }
    let base = TempBase::new("leave");
    let mut cluster = three_nodes(&base, 23120)?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE l; CREATE TABLE l.t (id INT PRIMARY KEY)")?;
    let took = cluster.node_mut(2)?.stop()?;
    assert!(took < Duration::from_secs(5), "clean leave took {took:?}");
    for i in [0, 1] {
        let node = cluster.node(i)?;
        let mut size = String::new();
        for _ in 0..50 {
            size = node.status_var("wsrep_cluster_size")?.unwrap_or_default();
            if size == "2" {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(size, "2", "node{i} still sees the leaver");
        assert_eq!(
            node.status_var("wsrep_cluster_status")?.as_deref(),
            Some("Primary")
        );
    }
    cluster.node(1)?.exec("INSERT INTO l.t VALUES (1), (2)")?;
    cluster.restart_node(2, None)?;
    let node2 = cluster.node(2)?;
    assert_eq!(
        node2.status_var("wsrep_cluster_size")?.as_deref(),
        Some("3")
    );
    assert_eq!(
        node2.sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM l.t")?,
        vec![vec!["2"]]
    );
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}

/// The part of `node`'s error log written after `from` bytes.
fn log_since(node: &Node, from: usize) -> String {
    let log = std::fs::read_to_string(&node.layout().error_log).unwrap_or_default();
    log.get(from..).unwrap_or_default().to_string()
}

fn log_len(node: &Node) -> usize {
    std::fs::metadata(&node.layout().error_log).map_or(0, |m| m.len() as usize)
}

/// Issue 5 (donor choice): without `wsrep_sst_donor`, the donor is a member whose GCache
/// still reaches back to the joiner's position, so the joiner gets IST, not SST. Node 0 has
/// a GCache too small to hold the gap and is made the member the old rule (lowest node id)
/// would pick; node 2 holds it all.
#[test]
fn a_rejoining_node_gets_ist_from_the_member_whose_gcache_still_holds_its_gap(
) -> Result<(), TestbedError> {
    if skip("a_rejoining_node_gets_ist_from_the_member_whose_gcache_still_holds_its_gap") {
        return Ok(());
    }
    let base = TempBase::new("istdonor");
    let mut cluster = three_nodes(&base, 23760)?;
    // Node ids are random. Node 0 is redrawn below until it is the lower of nodes 0 and 2;
    // a node 2 whose id happens to be very low would make that take many draws (it failed
    // CI once after 10), so node 2 is first redrawn, before the scenario starts, until its
    // id is in the upper three quarters.
    for _ in 0..20 {
        let id = cluster.node(2)?.status_var("wsrep_gcomm_uuid")?;
        if id.as_deref().is_some_and(|id| id >= "4") {
            break;
        }
        cluster.node_mut(2)?.stop()?;
        cluster.restart_node(2, None)?;
    }
    cluster.node(0)?.exec(
        "CREATE DATABASE g; CREATE TABLE g.t (id INT PRIMARY KEY, pad VARCHAR(1000)); \
         INSERT INTO g.t VALUES (0, 'x')",
    )?;
    cluster.node_mut(1)?.stop()?;
    // Node 1 left at or before this seqno; IST must start right after it.
    let gap_start = status(cluster.node(0)?, "wsrep_last_committed") + 1;
    let small = format!(
        "--wsrep_provider_options={}; gcache.size=1M; gcache.page_size=1M",
        cluster.spec().provider_options
    );
    let gcomm_uuid = |cluster: &Cluster, i: usize| -> Result<String, TestbedError> {
        Ok(cluster
            .node(i)?
            .status_var("wsrep_gcomm_uuid")?
            .unwrap_or_default())
    };
    // Restart node 0 with the small cache until its (random) node id is the lower one.
    let mut tries = 0;
    loop {
        cluster.node_mut(0)?.stop()?;
        cluster.restart_node_with(0, None, vec![small.clone()])?;
        if gcomm_uuid(&cluster, 0)? < gcomm_uuid(&cluster, 2)? {
            break;
        }
        tries += 1;
        assert!(tries < 10, "node0 never drew the lower node id");
    }
    // About 4 MB of writesets from node 2: far more than node 0's 1 MB cache keeps.
    let pad = "p".repeat(1000);
    for batch in 0..40 {
        let rows: Vec<String> = (0..100)
            .map(|k| format!("({}, '{pad}')", 1 + batch * 100 + k))
            .collect();
        cluster
            .node(2)?
            .exec(&format!("INSERT INTO g.t VALUES {}", rows.join(",")))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while status(cluster.node(0)?, "wsrep_local_cached_downto") <= gap_start {
        assert!(
            Instant::now() < deadline,
            "node0's GCache still reaches back to {gap_start}: {}",
            status(cluster.node(0)?, "wsrep_local_cached_downto")
        );
        thread::sleep(Duration::from_millis(200));
    }
    // Members report their cache's reach every ~2 s.
    thread::sleep(Duration::from_secs(3));
    let marks: Vec<usize> = cluster.nodes().iter().map(log_len).collect();
    cluster.restart_node(1, None)?;
    let joiner_log = log_since(cluster.node(1)?, marks[1]);
    assert!(
        joiner_log.contains("IST completed on joiner"),
        "node1 did not rejoin by IST:\n{joiner_log}"
    );
    assert!(log_since(cluster.node(2)?, marks[2]).contains("Donating IST to"));
    assert!(!log_since(cluster.node(0)?, marks[0]).contains("Donating"));
    assert_eq!(
        cluster
            .node(1)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM g.t")?,
        vec![vec!["4001"]]
    );
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}

fn heap_bytes(node: &Node) -> i64 {
    status(node, "wsrep_trireme_heap_bytes")
}

/// Issue 5 item 8: a 1,000,000-row transaction (about 100 MB of row events) replicates in
/// 1 MB fragments, and the provider's heap (`wsrep_trireme_heap_bytes`, counted by its
/// allocator) does not grow with it, on the writer or on the nodes applying the fragments.
#[test]
fn a_million_row_transaction_streams_without_the_provider_heap_growing_with_it(
) -> Result<(), TestbedError> {
    if skip("a_million_row_transaction_streams_without_the_provider_heap_growing_with_it") {
        return Ok(());
    }
    const ROWS: i64 = 1_000_000;
    const BOUND: i64 = 64 << 20;
    let base = TempBase::new("srmem");
    let mut spec = trireme_spec(3, &base, 23800);
    spec.provider_options
        .push_str("; trireme.extended_status=yes");
    spec.slave_threads = 4;
    let cluster = Cluster::start(spec)?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY, pad CHAR(100) NOT NULL)")?;
    let nodes = cluster.nodes();
    let before: Vec<i64> = nodes.iter().map(heap_bytes).collect();
    assert!(
        before.iter().all(|b| *b > 0),
        "heap not reported: {before:?}"
    );
    let replicated_before = status(&nodes[0], "wsrep_replicated_bytes");
    let mut writer = nodes[0].client().clone();
    writer.timeout = Duration::from_secs(600);
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut peak = before.clone();
    let started = Instant::now();
    let result = thread::scope(|s| {
        let run = s.spawn(|| {
            let r = writer.query(&format!(
                "SET SESSION wsrep_trx_fragment_unit='bytes'; \
                 SET SESSION wsrep_trx_fragment_size=1048576; \
                 INSERT INTO m.t SELECT seq, REPEAT('x', 100) FROM m.seq_1_to_{ROWS}"
            ));
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            r
        });
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            for (i, node) in nodes.iter().enumerate() {
                peak[i] = peak[i].max(heap_bytes(node));
            }
            thread::sleep(Duration::from_millis(100));
        }
        run.join().expect("writer thread")
    });
    result?;
    let took = started.elapsed();
    let replicated = status(&nodes[0], "wsrep_replicated_bytes") - replicated_before;
    assert!(
        replicated > 100 << 20,
        "the transaction replicated only {replicated} bytes"
    );
    for (i, node) in nodes.iter().enumerate() {
        let growth = peak[i] - before[i];
        eprintln!(
            "{}: provider heap {} -> peak {} (+{} KiB) during a {replicated}-byte transaction of {took:?}",
            node.name(),
            before[i],
            peak[i],
            growth >> 10
        );
        assert!(
            growth < BOUND,
            "{}: the provider heap grew by {growth} bytes (bound {BOUND})",
            node.name()
        );
        assert_eq!(
            node.sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM m.t")?,
            vec![vec![ROWS.to_string()]]
        );
    }
    base.passed();
    Ok(())
}

/// A 130 MB writeset without streaming replication is ordered in 2 MiB parts (no frame
/// carries it whole, its origin sends a few parts at a time) and commits on every node with
/// identical data. Until 2026-11-24 its client got 1180: the origin spent seconds encoding and
/// sending it in one step and lost the leadership before it was ordered.
///
/// Not asserted, because not finished: that the view stays put. Certifying a million keys
/// still takes each node's ordering thread about two seconds at delivery, during which it
/// answers no heartbeat, and the cluster re-forms once (the test prints what it saw).
#[test]
#[ignore = "flaky until delivery leaves the ordering thread: the cluster may re-form twice and a node answer 1047 after the first wait (CI 2026-11-24 17:28); run with --ignored"]
fn a_130_mb_transaction_without_streaming_commits_on_every_node() -> Result<(), TestbedError> {
    if skip("a_130_mb_transaction_without_streaming_commits_on_every_node") {
        return Ok(());
    }
    const ROWS: i64 = 1_000_000;
    let base = TempBase::new("bigws");
    let mut cluster = three_nodes(&base, 23920)?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE b; CREATE TABLE b.t (id INT PRIMARY KEY, pad CHAR(100) NOT NULL)")?;
    let nodes = cluster.nodes();
    let conf_before: Vec<i64> = nodes
        .iter()
        .map(|n| status(n, "wsrep_cluster_conf_id"))
        .collect();
    let replicated_before = status(&nodes[0], "wsrep_replicated_bytes");
    let mut writer = nodes[0].client().clone();
    writer.timeout = Duration::from_secs(600);
    let started = Instant::now();
    writer.query(&format!(
        "SET SESSION wsrep_trx_fragment_size=0; \
         INSERT INTO b.t SELECT seq, REPEAT('x', 100) FROM b.seq_1_to_{ROWS}"
    ))?;
    let took = started.elapsed();
    let replicated = status(&nodes[0], "wsrep_replicated_bytes") - replicated_before;
    eprintln!("a {replicated}-byte writeset committed in {took:?}");
    assert!(
        replicated > 100 << 20,
        "the transaction replicated only {replicated} bytes"
    );
    for i in 0..3 {
        cluster.node_mut(i)?.wait_status(
            "Synced in a primary view of three",
            Duration::from_secs(120),
            |st| {
                status_is(
                    st,
                    &[
                        ("wsrep_cluster_status", "Primary"),
                        ("wsrep_local_state_comment", "Synced"),
                        ("wsrep_cluster_size", "3"),
                    ],
                )
            },
        )?;
    }
    let nodes = cluster.nodes();
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(
            node.sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM b.t")?,
            vec![vec![ROWS.to_string()]]
        );
        eprintln!(
            "{}: view changes while it travelled and was certified: {}",
            node.name(),
            status(node, "wsrep_cluster_conf_id") - conf_before[i]
        );
    }
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}

#[test]
fn a_node_of_another_cluster_is_refused() -> Result<(), TestbedError> {
    if skip("a_node_of_another_cluster_is_refused") {
        return Ok(());
    }
    let base = TempBase::new("othername");
    let cluster = Cluster::start(trireme_spec(1, &base, 23160))?;
    let other = TempBase::new("othername-joiner");
    let mut joiner = trireme_spec(1, &other, 23180);
    joiner.cluster_name = "someone_else".into();
    joiner.start_timeout = Duration::from_secs(60);
    joiner.extra_cnf.push(format!(
        "wsrep_cluster_address=gcomm://127.0.0.1:{}",
        cluster.node(0)?.ports().repl
    ));
    joiner.provider_options = "gcache.size=16M; pc.wait_prim_timeout=PT5S".into();
    let err = Cluster::start(joiner).expect_err("a node of another cluster must not join");
    assert!(
        err.to_string().contains("someone_else") || err.to_string().contains("refused"),
        "{err}"
    );
    assert_eq!(
        cluster
            .node(0)?
            .status_var("wsrep_cluster_size")?
            .as_deref(),
        Some("1")
    );
    base.passed();
    other.passed();
    Ok(())
}

#[test]
fn streaming_replication_applies_fragments_as_they_run_and_rolls_back_cleanly(
) -> Result<(), TestbedError> {
    if skip("streaming_replication_applies_fragments_as_they_run_and_rolls_back_cleanly") {
        return Ok(());
    }
    let base = TempBase::new("sr");
    let mut spec = trireme_spec(2, &base, 23200);
    spec.slave_threads = 4;
    let cluster = Cluster::start(spec)?;
    let (n0, n1) = (cluster.node(0)?, cluster.node(1)?);
    n0.exec("CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY, v VARCHAR(100))")?;
    // A streamed transaction: its fragments reach the other node while it runs.
    let mut writer = trireme_itest::Session::open(n0.socket()).expect("client");
    writer.value("SET SESSION wsrep_trx_fragment_unit='rows'; SET SESSION wsrep_trx_fragment_size=10; BEGIN; SELECT 1;");
    for i in 0..500 {
        writer.value(&format!(
            "INSERT INTO s.t VALUES ({i}, REPEAT('x', 50)); SELECT 1;"
        ));
    }
    let fragments: i64 = n1.sql("SELECT COUNT(*) FROM mysql.wsrep_streaming_log")?[0][0]
        .parse()
        .unwrap();
    assert!(
        fragments >= 40,
        "only {fragments} fragments replicated while the trx runs"
    );
    assert_eq!(
        n1.sql("SELECT COUNT(*) FROM s.t")?,
        vec![vec!["0"]],
        "not visible before commit"
    );
    writer.value("COMMIT; SELECT 1;");
    assert_eq!(
        n1.sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM s.t")?,
        vec![vec!["500"]]
    );
    assert_eq!(
        n1.sql("SELECT COUNT(*) FROM mysql.wsrep_streaming_log")?,
        vec![vec!["0"]]
    );
    // A streamed transaction rolled back leaves nothing anywhere.
    writer.value("BEGIN; SELECT 1;");
    for i in 1000..1100 {
        writer.value(&format!("INSERT INTO s.t VALUES ({i}, 'r'); SELECT 1;"));
    }
    writer.value("ROLLBACK; SELECT 1;");
    for node in [n0, n1] {
        assert_eq!(
            node.sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM s.t")?,
            vec![vec!["500"]]
        );
        assert_eq!(
            node.sql("SELECT COUNT(*) FROM mysql.wsrep_streaming_log")?,
            vec![vec!["0"]]
        );
    }
    assert_identical(&cluster)?;
    assert_no_errors_logged(&cluster);
    base.passed();
    Ok(())
}

#[test]
fn wsrep_sst_donor_chooses_the_donor() -> Result<(), TestbedError> {
    if skip("wsrep_sst_donor_chooses_the_donor") {
        return Ok(());
    }
    let base = TempBase::new("donor");
    let mut spec = trireme_spec(3, &base, 23240);
    // node2 must take its state from node1 (not node0, the first node); node1 itself falls
    // back to any other donor thanks to the trailing comma, as in Galera.
    spec.extra_cnf.push("wsrep_sst_donor=node1,".into());
    let cluster = Cluster::start(spec)?;
    let log = |i: usize| {
        std::fs::read_to_string(&cluster.node(i).unwrap().layout().error_log).unwrap_or_default()
    };
    let node2_id = cluster
        .node(2)?
        .status_var("wsrep_gcomm_uuid")?
        .unwrap_or_default();
    assert!(!node2_id.is_empty());
    let donated_to_node2 = |i: usize| {
        log(i)
            .lines()
            .any(|l| l.contains("Donating") && l.contains(&node2_id))
    };
    assert!(
        donated_to_node2(1),
        "node1 did not donate to node2:\n{}",
        log(1)
    );
    assert!(
        !donated_to_node2(0),
        "node0 donated to node2 although node1 was named"
    );
    cluster.node(2)?.exec(
        "CREATE DATABASE d2; CREATE TABLE d2.t (id INT PRIMARY KEY); INSERT INTO d2.t VALUES (1)",
    )?;
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}

/// An SST method for tests (`wsrep_sst_trireme_fail`): the joiner's side waits like a real
/// one (it announces an address, then waits for its server to go away); the donor's side fails.
const FAILING_SST: &str = r#"#!/bin/sh
role=""; parent=""
while [ $# -gt 0 ]; do
  case "$1" in
    --role) role="$2"; shift ;;
    --parent) parent="$2"; shift ;;
  esac
  shift
done
if [ "$role" = "joiner" ]; then
  echo "ready 127.0.0.1:1/trireme_fail"
  while kill -0 "$parent" 2>/dev/null; do sleep 1; done
  exit 32
fi
echo "donor side fails on purpose" >&2
exit 1
"#;

#[test]
fn a_failed_sst_ends_the_joiner_with_a_clear_error_and_the_donor_goes_back_to_synced(
) -> Result<(), TestbedError> {
    if skip("a_failed_sst_ends_the_joiner_with_a_clear_error_and_the_donor_goes_back_to_synced") {
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let base = TempBase::new("sstfail");
    let scripts = base.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts dir");
    let script = scripts.join("wsrep_sst_trireme_fail");
    std::fs::write(&script, FAILING_SST).expect("write script");
    for (path, mode) in [(&scripts, 0o755), (&script, 0o755)] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    // Three nodes: a joiner that ends is a member lost, and two of three keep the quorum.
    let mut spec = trireme_spec(3, &base, 23500);
    spec.script_dir = Some(scripts.clone());
    let mut cluster = Cluster::start(spec)?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE f; CREATE TABLE f.t (id INT PRIMARY KEY)")?;

    // node1 comes back with no saved position (so it needs a full SST) and the failing method;
    // node0 is the donor it asks for.
    cluster.node_mut(1)?.stop()?;
    let grastate = cluster.node(1)?.layout().datadir.join("grastate.dat");
    std::fs::remove_file(&grastate).expect("remove grastate.dat");
    cluster
        .node_mut(1)?
        .start_with(&trireme_testbed::StartOptions {
            no_wait: true,
            extra_args: vec![
                "--wsrep_sst_method=trireme_fail".into(),
                "--wsrep_sst_donor=node0".into(),
            ],
            ..Default::default()
        })?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while cluster.node(1)?.is_running() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(250));
    }
    let joiner_log =
        std::fs::read_to_string(&cluster.node(1)?.layout().error_log).unwrap_or_default();
    assert!(
        !cluster.node(1)?.is_running(),
        "the joiner still waits for a state that will never come:\n{}",
        cluster.node(1)?.error_log_tail(30)
    );
    assert!(
        joiner_log.contains("failed: -") && joiner_log.contains("Will never receive state"),
        "the joiner's log does not say why it ended:\n{}",
        cluster.node(1)?.error_log_tail(30)
    );

    // The donor said so too, and is Synced again, in a primary component taking writes.
    let donor_log =
        std::fs::read_to_string(&cluster.node(0)?.layout().error_log).unwrap_or_default();
    assert!(donor_log.contains("telling the joiner"), "{donor_log}");
    cluster
        .node_mut(0)?
        .wait_status("donor Synced again", Duration::from_secs(60), |st| {
            status_is(
                st,
                &[
                    ("wsrep_local_state_comment", "Synced"),
                    ("wsrep_cluster_status", "Primary"),
                ],
            )
        })?;
    cluster.node(0)?.exec("INSERT INTO f.t VALUES (1)")?;

    // With a working method the same node then joins.
    cluster.node_mut(1)?.restart(None)?;
    assert_eq!(
        cluster
            .node(1)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM f.t")?,
        vec![vec!["1"]]
    );
    base.passed();
    Ok(())
}

#[test]
fn a_node_joins_by_mariabackup_sst() -> Result<(), TestbedError> {
    if skip("a_node_joins_by_mariabackup_sst") {
        return Ok(());
    }
    let base = TempBase::new("mariabackup");
    let mut spec = trireme_spec(2, &base, 23700);
    spec.sst_method = "mariabackup".into();
    // The donor's script connects as the `mysql` account mariadb-install-db creates (unix
    // socket authentication; the servers run as the OS user mysql).
    spec.extra_cnf.push("wsrep_sst_auth=mysql:".into());
    let cluster = Cluster::start(spec)?;
    let log = std::fs::read_to_string(&cluster.node(1)?.layout().error_log).unwrap_or_default();
    assert!(
        log.contains("mariabackup SST completed on joiner"),
        "node1 did not join by mariabackup:\n{}",
        cluster.node(1)?.error_log_tail(30)
    );
    cluster.node(0)?.exec(
        "CREATE DATABASE m; CREATE TABLE m.t (id INT PRIMARY KEY); INSERT INTO m.t VALUES (1), (2)",
    )?;
    assert_eq!(
        cluster
            .node(1)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM m.t")?,
        vec![vec!["2"]]
    );
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}

/// A node joins by SST (rsync) while both other nodes take writes: the donor keeps
/// committing its own clients' transactions until MariaDB's script locks it (FLUSH TABLES
/// WITH READ LOCK), and the joiner starts from wherever that lock put the data.
#[test]
fn a_node_joins_by_sst_while_the_others_take_writes() -> Result<(), TestbedError> {
    if skip("a_node_joins_by_sst_while_the_others_take_writes") {
        return Ok(());
    }
    let base = TempBase::new("sstload");
    let mut cluster = three_nodes(&base, 23840)?;
    trireme_testbed::create_database(cluster.node(0)?, "sbtest")?;
    let targets: Vec<SysbenchTarget> = cluster.nodes().iter().map(SysbenchTarget::socket).collect();
    let load = workload("oltp_write_only", 4, Duration::from_secs(25));
    load.prepare(&targets[0])?;
    // Node 2 comes back with no position: a full SST, not IST.
    cluster.node_mut(2)?.stop()?;
    let grastate = cluster.node(2)?.layout().datadir.join("grastate.dat");
    std::fs::remove_file(&grastate).expect("node2's grastate.dat");
    let marks: Vec<usize> = cluster.nodes().iter().map(log_len).collect();
    let writers = targets[..2].to_vec();
    let running = thread::spawn(move || load.run_concurrently(&writers));
    thread::sleep(Duration::from_secs(5));
    let joined = cluster.restart_node(2, None);
    let reports = running.join().expect("the sysbench thread");
    joined.inspect_err(|_| eprintln!("{}", diagnose(&cluster)))?;
    for report in reports? {
        assert_ran(&report);
    }
    let joiner_log = log_since(cluster.node(2)?, marks[2]);
    assert!(
        joiner_log.contains("rsync SST completed on joiner"),
        "node2 did not join by SST:\n{joiner_log}"
    );
    let donor_logs: String = [0, 1]
        .iter()
        .map(|&i| log_since(cluster.node(i).expect("a node"), marks[i]))
        .collect();
    assert!(donor_logs.contains("Donating SST to"), "{donor_logs}");
    assert_identical(&cluster)?;
    assert_no_errors_logged(&cluster);
    base.passed();
    Ok(())
}

/// Galera 4's inconsistency vote: a node whose data differs (a row inserted with
/// `wsrep_on=OFF`) fails to apply a writeset the others applied; it votes, loses two to one,
/// says so in Galera's words and leaves (Disconnected, the server stays up), while the other
/// two carry on. Restarted, it comes back by SST with the cluster's data.
#[test]
fn a_node_that_fails_to_apply_what_the_others_applied_loses_the_vote_and_leaves(
) -> Result<(), TestbedError> {
    if skip("a_node_that_fails_to_apply_what_the_others_applied_loses_the_vote_and_leaves") {
        return Ok(());
    }
    let base = TempBase::new("vote");
    let mut cluster = three_nodes(&base, 23880)?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE v; CREATE TABLE v.t (id INT PRIMARY KEY, who VARCHAR(10))")?;
    cluster
        .node(2)?
        .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM v.t")?;
    let marks: Vec<usize> = cluster.nodes().iter().map(log_len).collect();
    // Node 2 alone gets row 1 (not replicated); node 0's row 1 then fails there only.
    cluster
        .node(2)?
        .exec("SET SESSION wsrep_on = OFF; INSERT INTO v.t VALUES (1, 'local')")?;
    cluster
        .node(0)?
        .exec("INSERT INTO v.t VALUES (1, 'cluster')")?;
    cluster.node_mut(2)?.wait_status(
        "node2 disconnected after losing the vote",
        Duration::from_secs(60),
        |st| status_is(st, &[("wsrep_cluster_status", "Disconnected")]),
    )?;
    let loser_log = log_since(cluster.node(2)?, marks[2]);
    assert!(
        loser_log.contains("Failed to apply write set: ")
            && loser_log.contains("Inconsistency detected: Inconsistent by consensus on"),
        "node2 did not vote and lose:\n{loser_log}"
    );
    for i in [0, 1] {
        cluster
            .node_mut(i)?
            .wait_status("the other two go on", Duration::from_secs(60), |st| {
                status_is(
                    st,
                    &[
                        ("wsrep_cluster_status", "Primary"),
                        ("wsrep_cluster_size", "2"),
                        ("wsrep_local_state_comment", "Synced"),
                    ],
                )
            })?;
        assert!(
            !log_since(cluster.node(i)?, marks[i]).contains("Inconsistency detected"),
            "node{i} thinks it is inconsistent"
        );
    }
    cluster
        .node(1)?
        .exec("INSERT INTO v.t VALUES (2, 'after')")?;
    // Its position is forgotten: the restart is a full SST, and its stray row is gone.
    cluster.node_mut(2)?.stop()?;
    let mark = log_len(cluster.node(2)?);
    cluster.restart_node(2, None)?;
    assert!(
        log_since(cluster.node(2)?, mark).contains("rsync SST completed on joiner"),
        "node2 did not come back by SST"
    );
    assert_eq!(
        cluster
            .node(2)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT id, who FROM v.t ORDER BY id")?,
        vec![vec!["1", "cluster"], vec!["2", "after"]]
    );
    assert_identical(&cluster)?;
    base.passed();
    Ok(())
}
