//! Issue 3 on a real server: Debian's mariadbd loads libtrireme.so and runs a one-node cluster
//! on it. Every check goes through SQL, the server's error log or the files it leaves, as a
//! DBA would see them.

use std::fs;
use std::time::{Duration, Instant};
use trireme_itest::{error_lines, skip, trireme_spec, TempBase};
use trireme_testbed::{Cluster, StartOptions, Sysbench, SysbenchTarget, TestbedError, Workload};

fn grastate(cluster: &Cluster) -> String {
    let path = cluster
        .node(0)
        .unwrap()
        .layout()
        .datadir
        .join("grastate.dat");
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn grastate_field(text: &str, field: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {field} in grastate.dat:\n{text}"))
}

fn error_log(cluster: &Cluster) -> String {
    fs::read_to_string(&cluster.node(0).unwrap().layout().error_log).unwrap_or_default()
}

#[test]
fn one_node_bootstraps_a_primary_component_and_reports_like_galera() -> Result<(), TestbedError> {
    if skip("one_node_bootstraps_a_primary_component_and_reports_like_galera") {
        return Ok(());
    }
    let base = TempBase::new("bootstrap");
    let cluster = Cluster::start(trireme_spec(1, &base, 21000))?;
    let node = cluster.node(0)?;
    let st = node.status()?;
    assert_eq!(st["wsrep_ready"], "ON");
    assert_eq!(st["wsrep_connected"], "ON");
    assert_eq!(st["wsrep_cluster_status"], "Primary");
    assert_eq!(st["wsrep_cluster_size"], "1");
    assert_eq!(st["wsrep_local_state_comment"], "Synced");
    assert_eq!(st["wsrep_local_state"], "4");
    assert_eq!(st["wsrep_provider_name"], "Trireme");
    assert_eq!(st["wsrep_provider_vendor"], "The Trireme authors");
    let version = &st["wsrep_provider_version"];
    assert!(
        version.starts_with("26.4.") && version.contains("(trireme "),
        "{version}"
    );
    let uuid = &st["wsrep_cluster_state_uuid"];
    assert_eq!(uuid.len(), 36, "{uuid}");
    assert_ne!(uuid, "00000000-0000-0000-0000-000000000000");
    assert_eq!(
        &st["wsrep_local_state_uuid"], uuid,
        "history UUID, not the node's"
    );
    assert_ne!(
        &st["wsrep_gcomm_uuid"], uuid,
        "the node id is not the history id"
    );
    // The first configuration change takes seqno 1, as in Galera.
    assert_eq!(st["wsrep_last_committed"], "1");
    // Galera's status names are all there.
    for name in [
        "wsrep_local_cert_failures",
        "wsrep_local_replays",
        "wsrep_cert_deps_distance",
        "wsrep_flow_control_paused",
        "wsrep_local_recv_queue_avg",
        "wsrep_evs_state",
        "wsrep_incoming_addresses",
        "wsrep_desync_count",
        "wsrep_cluster_conf_id",
    ] {
        assert!(st.contains_key(name), "missing {name}");
    }
    assert!(
        error_lines(&error_log(&cluster)).is_empty(),
        "{}",
        error_log(&cluster)
    );
    base.passed();
    Ok(())
}

#[test]
fn last_committed_grows_by_one_per_replicated_transaction() -> Result<(), TestbedError> {
    if skip("last_committed_grows_by_one_per_replicated_transaction") {
        return Ok(());
    }
    let base = TempBase::new("seqno");
    let cluster = Cluster::start(trireme_spec(1, &base, 21020))?;
    let node = cluster.node(0)?;
    let mut expected = node.last_committed()?;
    // DDL goes through total order isolation: one seqno each.
    node.exec("CREATE DATABASE d")?;
    node.exec("CREATE TABLE d.t (id INT PRIMARY KEY, v INT, u INT UNIQUE)")?;
    expected += 2;
    assert_eq!(node.last_committed()?, expected);
    // Autocommit statements.
    node.exec("INSERT INTO d.t VALUES (1, 1, 1)")?;
    node.exec("UPDATE d.t SET v = 2 WHERE id = 1")?;
    expected += 2;
    assert_eq!(node.last_committed()?, expected);
    // A multi-statement transaction is one writeset.
    node.exec(
        "BEGIN; INSERT INTO d.t VALUES (2, 2, 2); INSERT INTO d.t VALUES (3, 3, 3); \
               DELETE FROM d.t WHERE id = 1; COMMIT",
    )?;
    expected += 1;
    assert_eq!(node.last_committed()?, expected);
    // A rolled-back transaction and a read replicate nothing.
    node.exec("BEGIN; INSERT INTO d.t VALUES (9, 9, 9); ROLLBACK")?;
    node.exec("SELECT * FROM d.t")?;
    assert_eq!(node.last_committed()?, expected);
    assert_eq!(
        node.sql("SELECT id FROM d.t ORDER BY id")?,
        vec![vec!["2"], vec!["3"]]
    );
    // A duplicate key fails in the server, before replication: no seqno.
    let err = node.exec("INSERT INTO d.t VALUES (2, 0, 0)").unwrap_err();
    assert_eq!(err.sql_code(), Some(1062), "{err}");
    assert_eq!(node.last_committed()?, expected);
    let st = node.status()?;
    assert_eq!(
        st["wsrep_local_commits"], "3",
        "three transactions committed locally"
    );
    assert_eq!(
        st["wsrep_replicated"], "5",
        "two DDL and three transactions"
    );
    assert_eq!(st["wsrep_local_cert_failures"], "0");
    base.passed();
    Ok(())
}

#[test]
fn sysbench_oltp_read_write_runs_without_errors() -> Result<(), TestbedError> {
    if skip("sysbench_oltp_read_write_runs_without_errors") || skip_unless_sysbench() {
        return Ok(());
    }
    let seconds: u32 = std::env::var("TRIREME_ITEST_SYSBENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let base = TempBase::new("sysbench");
    let cluster = Cluster::start(trireme_spec(1, &base, 21040))?;
    let node = cluster.node(0)?;
    let before = node.last_committed()?;
    let mut workload = Workload::new("oltp_read_write");
    workload.threads = 8;
    workload.time = Duration::from_secs(u64::from(seconds));
    workload.tables = 4;
    workload.table_size = 10_000;
    let bench = Sysbench::new(workload);
    let target = SysbenchTarget::socket(node);
    trireme_testbed::create_database(node, "sbtest")?;
    bench.prepare(&target)?;
    let report = bench.run(&target)?;
    // sysbench stops at the first error that is not a lock conflict, so completing means no
    // other error. Lock conflicts it counts and retries: on one node none can come from
    // replication (no certification failure, no brute-force abort, checked below); InnoDB's
    // own row-lock deadlocks on this workload also appear with wsrep off, rarely.
    assert_eq!(report.reconnects, 0, "{report:?}");
    assert!(report.transactions > 0, "{report:?}");
    assert!(
        report.errors * 1000 < report.transactions,
        "lock conflicts not rare: {report:?}"
    );
    let st = node.status()?;
    assert_eq!(st["wsrep_local_cert_failures"], "0", "{st:?}");
    assert_eq!(st["wsrep_local_bf_aborts"], "0", "{st:?}");
    let after = node.last_committed()?;
    assert!(
        after - before >= report.transactions as i64,
        "every read-write transaction replicated: {} seqnos for {} transactions",
        after - before,
        report.transactions
    );
    eprintln!("sysbench oltp_read_write 8 threads {seconds}s on one Trireme node: {report:?}");
    assert!(
        error_lines(&error_log(&cluster)).is_empty(),
        "{}",
        error_log(&cluster)
    );
    base.passed();
    Ok(())
}

fn skip_unless_sysbench() -> bool {
    if std::path::Path::new("/usr/bin/sysbench").exists() {
        return false;
    }
    eprintln!("SKIPPED: sysbench is not installed");
    true
}

#[test]
fn provider_options_speak_galera_and_refuse_what_is_wrong_by_name() -> Result<(), TestbedError> {
    if skip("provider_options_speak_galera_and_refuse_what_is_wrong_by_name") {
        return Ok(());
    }
    let base = TempBase::new("options");
    let mut spec = trireme_spec(1, &base, 21060);
    spec.provider_options = "gcache.size=16M; evs.suspect_timeout=PT4S; gcs.fc_limit=20".into();
    let cluster = Cluster::start(spec)?;
    let node = cluster.node(0)?;
    let options = node.variable("wsrep_provider_options")?.unwrap_or_default();
    for expected in [
        "base_port = 21061",
        "evs.suspect_timeout = PT4S",
        "gcs.fc_limit = 20",
        "gcache.size = 16M",
        "pc.weight = 1",
        "repl.max_ws_size = ",
        "trireme.shards = ",
        "gmcast.listen_addr = tcp://0.0.0.0:21061",
        "ist.recv_addr = ",
    ] {
        assert!(
            options.contains(expected),
            "'{expected}' missing from: {options}"
        );
    }
    // A dynamic option changes at run time and shows its new value.
    node.exec(
        "SET GLOBAL wsrep_provider_options = 'gcs.fc_limit=32; repl.causal_read_timeout=PT10S'",
    )?;
    let options = node.variable("wsrep_provider_options")?.unwrap_or_default();
    assert!(options.contains("gcs.fc_limit = 32"), "{options}");
    assert!(
        options.contains("repl.causal_read_timeout = PT10S"),
        "{options}"
    );
    // Unknown, malformed and startup-only options are refused, and the log says which.
    for (bad, named) in [
        ("evs.suspekt_timeout=PT1S", "evs.suspekt_timeout"),
        ("gcs.fc_limit=lots", "gcs.fc_limit"),
        ("gcache.size=1G", "gcache.size"),
    ] {
        let err = node
            .exec(&format!("SET GLOBAL wsrep_provider_options = '{bad}'"))
            .unwrap_err();
        assert_eq!(err.sql_code(), Some(1210), "{bad}: {err}");
        let log = error_log(&cluster);
        assert!(
            log.lines().any(|l| l.contains(named)),
            "the log does not name {named}:\n{log}"
        );
    }
    // Nothing changed after the refusals.
    let options = node.variable("wsrep_provider_options")?.unwrap_or_default();
    assert!(
        options.contains("gcs.fc_limit = 32") && options.contains("gcache.size = 16M"),
        "{options}"
    );
    // The server's own use of the options string still works.
    node.exec("SET GLOBAL wsrep_max_ws_size = 1048576")?;
    let options = node.variable("wsrep_provider_options")?.unwrap_or_default();
    assert!(options.contains("repl.max_ws_size = 1048576"), "{options}");
    base.passed();
    Ok(())
}

#[test]
fn a_wrong_option_at_startup_stops_the_server_with_a_message_naming_it() {
    if skip("a_wrong_option_at_startup_stops_the_server_with_a_message_naming_it") {
        return;
    }
    let base = TempBase::new("badopt");
    let mut spec = trireme_spec(1, &base, 21080);
    spec.provider_options = "gcache.size=16M; pc.wieght=2".into();
    spec.start_timeout = Duration::from_secs(60);
    let err = Cluster::start(spec).expect_err("the server must refuse to start");
    let text = err.to_string();
    assert!(
        text.contains("pc.wieght"),
        "the error does not name the option: {text}"
    );
    base.passed();
}

#[test]
fn clean_shutdown_saves_the_position_and_a_restart_resumes_it() -> Result<(), TestbedError> {
    if skip("clean_shutdown_saves_the_position_and_a_restart_resumes_it") {
        return Ok(());
    }
    let base = TempBase::new("grastate");
    let mut cluster = Cluster::start(trireme_spec(1, &base, 21100))?;
    let (uuid, last) = {
        let node = cluster.node(0)?;
        node.exec("CREATE DATABASE it; CREATE TABLE it.g (id INT PRIMARY KEY); INSERT INTO it.g VALUES (1)")?;
        (
            node.status_var("wsrep_local_state_uuid")?.unwrap(),
            node.last_committed()?,
        )
    };
    // While running, the file says "unknown" (-1): only a clean shutdown makes it exact.
    let running = grastate(&cluster);
    assert_eq!(grastate_field(&running, "uuid"), uuid);
    assert_eq!(grastate_field(&running, "seqno"), "-1");
    let took = cluster.node_mut(0)?.stop()?;
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let saved = grastate(&cluster);
    assert!(
        saved.starts_with("# GALERA saved state\nversion: 2.1\n"),
        "{saved}"
    );
    assert_eq!(grastate_field(&saved, "uuid"), uuid);
    assert_eq!(grastate_field(&saved, "seqno"), last.to_string());
    assert_eq!(grastate_field(&saved, "safe_to_bootstrap"), "1");
    let log = error_log(&cluster);
    assert!(error_lines(&log).is_empty(), "{log}");
    assert!(
        log.contains("Trireme provider released"),
        "provider threads were not joined:\n{log}"
    );
    // Restart: same history, and the new configuration change takes the next seqno.
    cluster.node_mut(0)?.start_with(&StartOptions::default())?;
    let node = cluster.node(0)?;
    assert_eq!(node.status_var("wsrep_local_state_uuid")?.unwrap(), uuid);
    assert_eq!(node.last_committed()?, last + 1);
    assert_eq!(node.sql("SELECT id FROM it.g")?, vec![vec!["1"]]);
    base.passed();
    Ok(())
}

#[test]
fn after_kill_9_wsrep_recover_and_the_start_position_resume_the_history() -> Result<(), TestbedError>
{
    if skip("after_kill_9_wsrep_recover_and_the_start_position_resume_the_history") {
        return Ok(());
    }
    let base = TempBase::new("recover");
    let mut cluster = Cluster::start(trireme_spec(1, &base, 21120))?;
    let (uuid, last) = {
        let node = cluster.node(0)?;
        node.exec("CREATE DATABASE it; CREATE TABLE it.k (id INT PRIMARY KEY)")?;
        for i in 0..20 {
            node.exec(&format!("INSERT INTO it.k VALUES ({i})"))?;
        }
        (
            node.status_var("wsrep_local_state_uuid")?.unwrap(),
            node.last_committed()?,
        )
    };
    cluster.node_mut(0)?.kill9()?;
    let recovered = cluster.node(0)?.recover_position()?;
    assert_eq!(
        recovered,
        format!("{uuid}:{last}"),
        "what --wsrep-recover printed"
    );
    cluster.node_mut(0)?.restart(Some(&recovered))?;
    let node = cluster.node(0)?;
    assert_eq!(node.status_var("wsrep_local_state_uuid")?.unwrap(), uuid);
    assert_eq!(node.last_committed()?, last + 1);
    assert_eq!(node.sql("SELECT COUNT(*) FROM it.k")?, vec![vec!["20"]]);
    base.passed();
    Ok(())
}

#[test]
fn a_galera_4_node_moves_to_trireme_by_a_restart_keeping_its_history() -> Result<(), TestbedError> {
    if skip("a_galera_4_node_moves_to_trireme_by_a_restart_keeping_its_history")
        || !std::path::Path::new(trireme_testbed::GALERA_PROVIDER).exists()
    {
        return Ok(());
    }
    let base = TempBase::new("migrate");
    let mut spec = trireme_spec(1, &base, 21140);
    spec.provider = trireme_testbed::GALERA_PROVIDER.into();
    spec.provider_options = "gcache.size=16M".into();
    let mut cluster = Cluster::start(spec)?;
    let (uuid, last) = {
        let node = cluster.node(0)?;
        node.exec("CREATE DATABASE it; CREATE TABLE it.m (id INT PRIMARY KEY); INSERT INTO it.m VALUES (7)")?;
        assert_eq!(
            node.status_var("wsrep_provider_name")?.as_deref(),
            Some("Galera")
        );
        (
            node.status_var("wsrep_local_state_uuid")?.unwrap(),
            node.last_committed()?,
        )
    };
    cluster.node_mut(0)?.stop()?;
    // Swap the provider in my.cnf, as a DBA would.
    let cnf = cluster.node(0)?.layout().cnf.clone();
    let text = fs::read_to_string(&cnf).unwrap();
    let swapped = text.replace(
        trireme_testbed::GALERA_PROVIDER,
        &trireme_itest::provider().display().to_string(),
    );
    assert_ne!(text, swapped);
    fs::write(&cnf, swapped).unwrap();
    cluster.node_mut(0)?.start_with(&StartOptions::default())?;
    let node = cluster.node(0)?;
    assert_eq!(
        node.status_var("wsrep_provider_name")?.as_deref(),
        Some("Trireme")
    );
    assert_eq!(node.status_var("wsrep_local_state_uuid")?.unwrap(), uuid);
    assert_eq!(node.last_committed()?, last + 1);
    assert_eq!(node.sql("SELECT id FROM it.m")?, vec![vec!["7"]]);
    base.passed();
    Ok(())
}

#[test]
fn ftwrl_desync_wsrep_on_and_address_changes_neither_crash_nor_hang() -> Result<(), TestbedError> {
    if skip("ftwrl_desync_wsrep_on_and_address_changes_neither_crash_nor_hang") {
        return Ok(());
    }
    let base = TempBase::new("lifecycle");
    let mut cluster = Cluster::start(trireme_spec(1, &base, 21160))?;
    let node = cluster.node(0)?;
    node.exec("CREATE DATABASE it; CREATE TABLE it.l (id INT PRIMARY KEY)")?;
    // FTWRL pauses and resumes the provider.
    node.exec("FLUSH TABLES WITH READ LOCK; SELECT 1; UNLOCK TABLES")?;
    node.exec("INSERT INTO it.l VALUES (1)")?;
    // Desync shows in the state and its counter, resync returns to Synced.
    node.exec("SET GLOBAL wsrep_desync = ON")?;
    let st = node.status()?;
    assert_eq!(st["wsrep_local_state_comment"], "Donor/Desynced");
    assert_eq!(st["wsrep_desync_count"], "1");
    node.exec("INSERT INTO it.l VALUES (2)")?;
    node.exec("SET GLOBAL wsrep_desync = OFF")?;
    let mut node_mut = cluster.node_mut(0)?;
    node_mut.wait_synced(Duration::from_secs(10))?;
    let node = cluster.node(0)?;
    assert_eq!(node.status_var("wsrep_desync_count")?.as_deref(), Some("0"));
    // wsrep_on=OFF in a session: the write is local only and takes no seqno.
    let before = node.last_committed()?;
    node.exec(
        "SET SESSION wsrep_on = OFF; INSERT INTO it.l VALUES (3); SET SESSION wsrep_on = ON",
    )?;
    assert_eq!(node.last_committed()?, before);
    node.exec("INSERT INTO it.l VALUES (4)")?;
    assert_eq!(node.last_committed()?, before + 1);
    // Changing the cluster address at run time reconnects (here: bootstraps again).
    let started = Instant::now();
    node.exec("SET GLOBAL wsrep_cluster_address = 'gcomm://'")?;
    node_mut = cluster.node_mut(0)?;
    node_mut.wait_synced(Duration::from_secs(20))?;
    assert!(started.elapsed() < Duration::from_secs(20));
    let node = cluster.node(0)?;
    node.exec("INSERT INTO it.l VALUES (5)")?;
    assert_eq!(node.sql("SELECT COUNT(*) FROM it.l")?, vec![vec!["5"]]);
    let took = cluster.node_mut(0)?.stop()?;
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let log = error_log(&cluster);
    assert!(error_lines(&log).is_empty(), "{log}");
    base.passed();
    Ok(())
}

#[test]
fn with_two_shards_the_certification_index_and_gcache_are_split_and_answers_stay_right(
) -> Result<(), TestbedError> {
    if skip("with_two_shards_the_certification_index_and_gcache_are_split_and_answers_stay_right")
        || skip_unless_sysbench()
    {
        return Ok(());
    }
    let base = TempBase::new("shards");
    let mut spec = trireme_spec(1, &base, 21180);
    spec.provider_options = "gcache.size=16M; trireme.shards=2".into();
    let mut cluster = Cluster::start(spec)?;
    let node = cluster.node(0)?;
    let threads = fs::read_dir(format!("/proc/{}/task", node.pid().unwrap()))
        .unwrap()
        .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("trireme-shard"))
        .count();
    assert_eq!(threads, 2, "one thread per shard");
    // Writes from 8 threads: every writeset's keys fan out to both slices. (Tables big enough
    // that InnoDB's own row-lock deadlocks, which sysbench counts as errors, stay away.)
    let mut workload = Workload::new("oltp_write_only");
    workload.threads = 8;
    workload.time = Duration::from_secs(8);
    workload.tables = 4;
    workload.table_size = 10_000;
    let bench = Sysbench::new(workload);
    let target = SysbenchTarget::socket(node);
    trireme_testbed::create_database(node, "sbtest")?;
    bench.prepare(&target)?;
    // The index holds the keys of writesets still in flight and is purged as the commit cut
    // passes them: once the load stops it may be empty, so it is sampled while the load runs.
    let (report, largest_index) = std::thread::scope(|s| {
        let run = s.spawn(|| bench.run(&target));
        let mut largest = 0u64;
        while !run.is_finished() {
            if let Ok(Some(size)) = node.status_var("wsrep_cert_index_size") {
                largest = largest.max(size.parse().unwrap_or(0));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        (run.join().expect("sysbench thread"), largest)
    });
    let report = report?;
    // sysbench stops at any error but a lock conflict; InnoDB alone (wsrep off) shows the same
    // rare row-lock deadlocks on this workload, so those are allowed, and only rarely.
    assert!(report.transactions > 0, "{report:?}");
    assert!(report.errors * 100 < report.transactions, "{report:?}");
    assert!(
        largest_index > 0,
        "the certification index never held a key"
    );
    let st = node.status()?;
    assert_ne!(st["wsrep_local_cached_downto"], "-1");
    let took = cluster.node_mut(0)?.stop()?;
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    assert!(
        error_lines(&error_log(&cluster)).is_empty(),
        "{}",
        error_log(&cluster)
    );
    base.passed();
    Ok(())
}

#[test]
fn stage_latencies_appear_after_galeras_status_list_only_when_asked() -> Result<(), TestbedError> {
    if skip("stage_latencies_appear_after_galeras_status_list_only_when_asked") {
        return Ok(());
    }
    let base = TempBase::new("latency");
    let cluster = Cluster::start(trireme_spec(1, &base, 21200))?;
    let node = cluster.node(0)?;
    node.exec("CREATE DATABASE it; CREATE TABLE it.x (id INT PRIMARY KEY)")?;
    for i in 0..50 {
        node.exec(&format!("INSERT INTO it.x VALUES ({i})"))?;
    }
    assert!(
        node.sql("SHOW STATUS LIKE 'wsrep_trireme%'")?.is_empty(),
        "listed without being asked"
    );
    // Galera's own replication-latency variable carries the replicate stage, in its format.
    let repl = node
        .status_var("wsrep_evs_repl_latency")?
        .unwrap_or_default();
    let parts: Vec<f64> = repl.split('/').map(|p| p.parse().unwrap()).collect();
    assert_eq!(parts.len(), 5, "{repl}");
    assert!(
        parts[4] >= 50.0 && parts[0] > 0.0 && parts[0] <= parts[1] && parts[1] <= parts[2],
        "{repl}"
    );
    node.exec("SET GLOBAL wsrep_provider_options = 'trireme.extended_status=yes'")?;
    let rows = node.sql("SHOW STATUS LIKE 'wsrep_trireme%'")?;
    let names: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    for stage in ["replicate", "certify", "commit_wait", "apply"] {
        for stat in ["p50_us", "p99_us", "max_us"] {
            let name = format!("wsrep_trireme_{stage}_{stat}");
            assert!(
                names.contains(&name.as_str()),
                "{name} missing from {names:?}"
            );
        }
    }
    let value = |name: &str| -> i64 {
        rows.iter()
            .find(|r| r[0] == name)
            .map(|r| r[1].parse().unwrap())
            .unwrap()
    };
    assert!(value("wsrep_trireme_replicate_max_us") >= value("wsrep_trireme_replicate_p50_us"));
    assert!(value("wsrep_trireme_replicate_p50_us") > 0, "{rows:?}");
    base.passed();
    Ok(())
}
