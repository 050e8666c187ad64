//! One Galera node through the testbed: bootstrap, replication counters, signals, clean stop,
//! crash and recovery.

mod common;

use std::time::Duration;

use common::{galera_spec, skip, TempBase};
use trireme_testbed::{process, Cluster, TestbedError, WsrepPosition};

#[test]
fn a_single_node_bootstraps_primary_synced_and_counts_its_commits() -> Result<(), TestbedError> {
    if skip(
        "a_single_node_bootstraps_primary_synced_and_counts_its_commits",
        &[],
    ) {
        return Ok(());
    }
    let base = TempBase::new("single");
    let spec = galera_spec(1, &base, 18400);
    let stop_timeout = spec.stop_timeout;
    let mut cluster = Cluster::start(spec)?;
    let node = cluster.node_mut(0)?;

    let st = node.status()?;
    assert_eq!(st["wsrep_cluster_status"], "Primary");
    assert_eq!(st["wsrep_local_state_comment"], "Synced");
    assert_eq!(st["wsrep_ready"], "ON");
    assert_eq!(st["wsrep_connected"], "ON");
    assert_eq!(st["wsrep_cluster_size"], "1");
    assert_eq!(st["wsrep_provider_name"], "Galera");
    assert_eq!(node.variable("wsrep_node_name")?.as_deref(), Some("node0"));
    assert_eq!(node.variable("wsrep_on")?.as_deref(), Some("ON"));
    let pid = node.pid().expect("running");
    assert_eq!(process::effective_uid(), Some(0));
    let line = node.status_line();
    assert!(
        line.contains(&format!("pid={pid}")) && line.contains("state=Synced"),
        "{line}"
    );

    // Every replicated commit takes a seqno: DDL (TOI) and DML alike.
    let before = node.last_committed()?;
    node.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(20))")?;
    node.exec("INSERT INTO d.t VALUES (1, 'one'), (2, 'two')")?;
    node.exec("INSERT INTO d.t VALUES (3, 'three')")?;
    let after = node.last_committed()?;
    assert!(
        after >= before + 4,
        "last_committed went from {before} to {after}"
    );
    assert_eq!(
        node.sql("SELECT id, v FROM d.t ORDER BY id")?[2],
        vec!["3", "three"]
    );
    // A failing statement surfaces MariaDB's error number.
    let err = node.exec("INSERT INTO d.t VALUES (1, 'dup')").unwrap_err();
    assert_eq!(err.sql_code(), Some(1062), "{err}");

    // A frozen server is still ours and still alive; stop() thaws it before SIGTERM.
    node.sigstop()?;
    assert_eq!(node.pid(), Some(pid));
    node.sigcont()?;
    assert_eq!(node.sql("SELECT 1")?, vec![vec!["1".to_string()]]);
    node.sigstop()?;
    let took = node.stop()?;
    assert!(took < stop_timeout, "clean stop took {took:?}");
    assert_eq!(node.pid(), None);
    assert!(!process::alive(pid));
    drop(cluster);
    base.passed();
    Ok(())
}

#[test]
fn kill9_then_wsrep_recover_finds_the_last_commit_and_restart_resumes_from_it(
) -> Result<(), TestbedError> {
    if skip(
        "kill9_then_wsrep_recover_finds_the_last_commit_and_restart_resumes_from_it",
        &[],
    ) {
        return Ok(());
    }
    let base = TempBase::new("recover");
    let mut cluster = Cluster::start(galera_spec(1, &base, 18410))?;
    let node = cluster.node_mut(0)?;
    let uuid = node
        .status_var("wsrep_cluster_state_uuid")?
        .unwrap_or_default();
    node.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)")?;
    for i in 0..5 {
        node.exec(&format!("INSERT INTO d.t VALUES ({i})"))?;
    }
    let committed = node.last_committed()?;
    let pid = node.pid().expect("running");

    node.kill9()?;
    assert_eq!(node.pid(), None);
    assert!(!process::alive(pid));
    let pos = node.recover_position()?;
    let parsed = WsrepPosition::parse(&pos).unwrap_or_else(|| panic!("unparsable {pos:?}"));
    assert_eq!(parsed.uuid, uuid, "recovered {pos}");
    // flush_log_at_trx_commit=2 loses nothing when only the process dies.
    assert_eq!(parsed.seqno, committed, "recovered {pos}");

    // The only node crashed, so Galera will not bootstrap from it until told it is safe.
    node.set_safe_to_bootstrap()?;
    node.restart(Some(&pos))?;
    assert_ne!(node.pid(), Some(pid));
    assert_eq!(
        node.status_var("wsrep_cluster_state_uuid")?.as_deref(),
        Some(uuid.as_str())
    );
    assert!(node.last_committed()? >= committed);
    assert_eq!(
        node.sql_value("SELECT COUNT(*) FROM d.t")?.as_deref(),
        Some("5")
    );
    // Recovery on a running node would fight it over InnoDB's files: refused.
    let err = node.recover_position().unwrap_err();
    assert!(matches!(err, TestbedError::StillRunning { .. }), "{err}");
    let err = node.restart(None).unwrap_err();
    assert!(matches!(err, TestbedError::StillRunning { .. }), "{err}");
    let took = node.stop()?;
    assert!(took < Duration::from_secs(60));
    drop(cluster);
    base.passed();
    Ok(())
}

#[test]
fn a_node_that_cannot_start_fails_with_the_tail_of_its_error_log() {
    if skip(
        "a_node_that_cannot_start_fails_with_the_tail_of_its_error_log",
        &[],
    ) {
        return;
    }
    let base = TempBase::new("badstart");
    let mut spec = galera_spec(1, &base, 18460);
    // Galera refuses unknown options at init, so mariadbd exits during startup.
    spec.provider_options = "no.such.option=1".into();
    let err = Cluster::start(spec).expect_err("a bogus provider option must fail the start");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            TestbedError::ServerExited { .. } | TestbedError::Timeout { .. }
        ),
        "{text}"
    );
    assert!(text.starts_with("node0:"), "{text}");
    assert!(
        text.contains("no.such.option"),
        "the log tail should show why: {text}"
    );
    base.passed();
}

#[test]
fn a_busy_port_is_refused_before_anything_starts() {
    if skip("a_busy_port_is_refused_before_anything_starts", &[]) {
        return;
    }
    let base = TempBase::new("busyport");
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", 18472)).expect("bind test port");
    let err = Cluster::start(galera_spec(1, &base, 18470)).expect_err("port 18472 is taken");
    assert!(err.to_string().contains("port 18472"), "{err}");
    assert!(
        !base.path().join("node0").exists(),
        "nothing should have been created"
    );
    base.passed();
}
