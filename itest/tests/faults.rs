//! Issue 5 on real servers: a node dies under load and the survivors keep committing; the
//! dead node comes back by IST.
//!
//! Method: one client per surviving node commits autocommit updates back to back through a
//! long-lived `mariadb` session and records the server-side commit time of each
//! (`NOW(6)` right after the commit). After `kill -9` of one node, the longest gap between
//! consecutive commits on the survivors (all clients merged) is the stall. Galera stalls
//! 3-6 s here (until `evs.suspect_timeout`); Trireme must stay at or under 1 s with default
//! settings: a closed TCP connection is immediate evidence of death.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use trireme_itest::{skip, status_is, trireme_spec, Session, TempBase};
use trireme_testbed::{checksum_all, differences, Cluster, Node, TestbedError};

/// Commit times (seconds since the epoch, server clock) of one client until `stop`.
fn commit_times(socket: std::path::PathBuf, id: usize, stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut session = Session::open(&socket).expect("mariadb client");
    let mut times = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let statement =
            format!("UPDATE f.t SET n = n + 1 WHERE id = {id}; SELECT UNIX_TIMESTAMP(NOW(6));");
        match session
            .value(&statement)
            .and_then(|v| v.parse::<f64>().ok())
        {
            Some(t) => times.push(t),
            None => break,
        }
    }
    times
}

fn longest_gap(mut times: Vec<f64>, from: f64, to: f64) -> f64 {
    times.retain(|t| *t >= from && *t <= to);
    times.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max)
}

/// Waits up to 60 s until `node` is a Synced member of a primary component of three.
fn wait_back_in_three(node: &mut Node, what: &str) -> Result<(), TestbedError> {
    node.wait_status(what, Duration::from_secs(60), |st| {
        status_is(
            st,
            &[
                ("wsrep_cluster_status", "Primary"),
                ("wsrep_cluster_size", "3"),
                ("wsrep_local_state_comment", "Synced"),
            ],
        )
    })?;
    Ok(())
}

/// Waits up to 30 s for `text` in the log at `path`, past its first `from` bytes.
fn wait_for_log(path: &std::path::Path, from: usize, text: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if log.get(from..).unwrap_or_default().contains(text) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never logged {text:?}",
            path.display()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// A child process that is killed and reaped when the test leaves early (an error or a
/// failed assertion), so no arbitrator outlives its test.
struct Reaped(std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Kills node `victim` under load and returns the survivors' longest commit gap.
fn kill_under_load(cluster: &mut Cluster, victim: usize) -> Result<f64, TestbedError> {
    let stop = Arc::new(AtomicBool::new(false));
    let survivors: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let clients: Vec<_> = survivors
        .iter()
        .map(|&i| {
            let socket = cluster.node(i).unwrap().socket().to_path_buf();
            let stop = stop.clone();
            thread::spawn(move || commit_times(socket, i + 1, stop))
        })
        .collect();
    thread::sleep(Duration::from_secs(3));
    let killed_at = now();
    cluster.node_mut(victim)?.kill9()?;
    thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    let times: Vec<f64> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let after = times.iter().filter(|t| **t > killed_at + 1.0).count();
    assert!(
        after > 100,
        "the survivors committed only {after} times after the kill"
    );
    Ok(longest_gap(times, killed_at - 1.0, killed_at + 4.0))
}

fn rejoin_by_ist(cluster: &mut Cluster, victim: usize) -> Result<(), TestbedError> {
    let position = cluster.node(victim)?.recover_position()?;
    cluster.restart_node(victim, Some(&position))?;
    let log =
        std::fs::read_to_string(&cluster.node(victim)?.layout().error_log).unwrap_or_default();
    assert!(
        log.contains("Receiving IST"),
        "node{victim} did not rejoin by IST:\n{}",
        tail(&log)
    );
    let first = checksum_all(cluster.node(0)?)?;
    for i in 1..3 {
        let other = checksum_all(cluster.node(i)?)?;
        let diff = differences("node0", &first, &format!("node{i}"), &other);
        assert!(diff.is_empty(), "{diff:#?}");
    }
    Ok(())
}

fn tail(log: &str) -> String {
    log.lines()
        .rev()
        .take(40)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn kill_9_of_a_follower_or_the_leader_stalls_the_survivors_under_a_second_and_it_rejoins_by_ist(
) -> Result<(), TestbedError> {
    if skip("kill_9_of_a_follower_or_the_leader_stalls_the_survivors_under_a_second_and_it_rejoins_by_ist") {
        return Ok(());
    }
    let base = TempBase::new("kill9");
    let mut cluster = Cluster::start(trireme_spec(3, &base, 23300))?;
    cluster.node(0)?.exec("CREATE DATABASE f; CREATE TABLE f.t (id INT PRIMARY KEY, n INT); INSERT INTO f.t VALUES (1,0),(2,0),(3,0)")?;
    // Node 2 is a follower; node 0 bootstrapped the group and leads it.
    for victim in [2, 0] {
        let stall = kill_under_load(&mut cluster, victim)?;
        eprintln!("kill -9 of node{victim}: longest commit gap on the survivors {stall:.3} s");
        assert!(
            stall <= 1.0,
            "kill -9 of node{victim} stalled the survivors for {stall:.3} s"
        );
        rejoin_by_ist(&mut cluster, victim)?;
    }
    base.passed();
    Ok(())
}

#[test]
fn a_node_without_a_majority_refuses_queries_until_pc_bootstrap() -> Result<(), TestbedError> {
    if skip("a_node_without_a_majority_refuses_queries_until_pc_bootstrap") {
        return Ok(());
    }
    let base = TempBase::new("quorum");
    let mut cluster = Cluster::start(trireme_spec(3, &base, 23340))?;
    cluster.node(2)?.exec(
        "CREATE DATABASE q; CREATE TABLE q.t (id INT PRIMARY KEY); INSERT INTO q.t VALUES (1)",
    )?;
    cluster.node_mut(0)?.kill9()?;
    cluster.node_mut(1)?.kill9()?;
    let node = cluster.node(2)?;
    // One of three is no majority: non-primary at once, and queries refused as with Galera.
    let mut status = String::new();
    for _ in 0..50 {
        status = node.status_var("wsrep_cluster_status")?.unwrap_or_default();
        if status == "non-Primary" {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(status, "non-Primary");
    assert_eq!(node.status_var("wsrep_ready")?.as_deref(), Some("OFF"));
    let err = node.exec("SELECT * FROM q.t").unwrap_err();
    assert_eq!(err.sql_code(), Some(1047), "{err}");
    // The operator forces a primary component from the survivor.
    node.exec("SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'")?;
    let mut ready = String::new();
    for _ in 0..50 {
        ready = node.status_var("wsrep_ready")?.unwrap_or_default();
        if ready == "ON" {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(ready, "ON");
    assert_eq!(
        node.status_var("wsrep_cluster_status")?.as_deref(),
        Some("Primary")
    );
    node.exec("INSERT INTO q.t VALUES (2)")?;
    assert_eq!(node.sql("SELECT COUNT(*) FROM q.t")?, vec![vec!["2"]]);
    base.passed();
    Ok(())
}

#[test]
fn after_every_node_crashed_the_cluster_re_forms_itself_with_pc_recovery(
) -> Result<(), TestbedError> {
    if skip("after_every_node_crashed_the_cluster_re_forms_itself_with_pc_recovery") {
        return Ok(());
    }
    let base = TempBase::new("pcrecovery");
    let mut cluster = Cluster::start(trireme_spec(3, &base, 23380))?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE r; CREATE TABLE r.t (id INT PRIMARY KEY)")?;
    for i in 0..3 {
        cluster
            .node(i)?
            .exec(&format!("INSERT INTO r.t VALUES ({i})"))?;
    }
    let everyone = (0..3)
        .map(|i| format!("127.0.0.1:{}", cluster.node(i).unwrap().ports().repl))
        .collect::<Vec<_>>()
        .join(",");
    for i in 0..3 {
        cluster.node_mut(i)?.kill9()?;
    }
    // A restart with everybody's address, as a DBA's my.cnf has it; nobody bootstraps by hand.
    let mut positions = Vec::new();
    for i in 0..3 {
        positions.push(cluster.node(i)?.recover_position()?);
    }
    for (i, position) in positions.into_iter().enumerate() {
        let opts = trireme_testbed::StartOptions {
            start_position: Some(position),
            cluster_address: Some(format!("gcomm://{everyone}")),
            new_cluster: false,
            no_wait: true,
            extra_args: Vec::new(),
        };
        cluster.node_mut(i)?.start_with(&opts)?;
    }
    for i in 0..3 {
        cluster.node_mut(i)?.wait_synced(Duration::from_secs(90))?;
    }
    for i in 0..3 {
        let node = cluster.node(i)?;
        assert_eq!(node.status_var("wsrep_cluster_size")?.as_deref(), Some("3"));
        assert_eq!(
            node.sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM r.t")?,
            vec![vec!["3"]]
        );
    }
    let log: String = (0..3)
        .map(|i| {
            std::fs::read_to_string(&cluster.node(i).unwrap().layout().error_log)
                .unwrap_or_default()
        })
        .collect();
    assert!(
        log.contains("re-forming the primary component"),
        "no node re-formed the component"
    );
    base.passed();
    Ok(())
}

/// `target/release/trireme-arbitrator` (built by `cargo build --release`).
fn arbitrator_binary() -> std::path::PathBuf {
    trireme_itest::provider().with_file_name("trireme-arbitrator")
}

#[test]
fn two_data_nodes_and_an_arbitrator_survive_the_loss_of_either_data_node(
) -> Result<(), TestbedError> {
    if skip("two_data_nodes_and_an_arbitrator_survive_the_loss_of_either_data_node") {
        return Ok(());
    }
    assert!(
        arbitrator_binary().exists(),
        "build it: cargo build --release -p trireme-arbitrator"
    );
    let base = TempBase::new("arbitrator");
    for victim in [1usize, 0] {
        let port_base = if victim == 1 { 23420 } else { 23440 };
        let mut cluster = Cluster::start(trireme_spec(2, &base, port_base))?;
        let seed = format!("gcomm://127.0.0.1:{}", cluster.node(0)?.ports().repl);
        let log = base.path().join(format!("arbitrator-{victim}.log"));
        let mut arbitrator = Reaped(
            std::process::Command::new(arbitrator_binary())
                .args(["--address", &seed, "--group", "trireme", "--name", "arb"])
                .args([
                    "--options",
                    &format!("gmcast.listen_addr=tcp://127.0.0.1:{}", port_base + 9),
                ])
                .args(["--log", log.to_str().unwrap()])
                .spawn()
                .expect("start the arbitrator"),
        );
        let wait_size = |node: &trireme_testbed::Node, want: &str| {
            for _ in 0..100 {
                if node
                    .status_var("wsrep_cluster_size")
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some(want)
                {
                    return true;
                }
                thread::sleep(Duration::from_millis(100));
            }
            false
        };
        assert!(
            wait_size(cluster.node(0)?, "3"),
            "the arbitrator did not join"
        );
        let survivor = 1 - victim;
        cluster.node(survivor)?.exec(
            "CREATE DATABASE IF NOT EXISTS a; CREATE TABLE IF NOT EXISTS a.t (id INT PRIMARY KEY)",
        )?;
        cluster.node_mut(victim)?.kill9()?;
        // Two of three votes remain: the survivor stays primary and keeps committing.
        assert!(
            wait_size(cluster.node(survivor)?, "2"),
            "the dead node was not removed"
        );
        let node = cluster.node(survivor)?;
        assert_eq!(
            node.status_var("wsrep_cluster_status")?.as_deref(),
            Some("Primary")
        );
        node.exec("INSERT INTO a.t VALUES (1)")?;
        // The arbitrator leaves cleanly on SIGTERM and the survivor then stands alone
        // (a clean leave shrinks the component, as in Galera).
        std::process::Command::new("/usr/bin/kill")
            .args(["-TERM", &arbitrator.0.id().to_string()])
            .status()
            .ok();
        let status = arbitrator.0.wait().expect("arbitrator exit");
        assert!(
            status.success(),
            "arbitrator exit {status:?}: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        assert!(wait_size(node, "1"), "the arbitrator's leave was not seen");
        assert_eq!(
            node.status_var("wsrep_cluster_status")?.as_deref(),
            Some("Primary")
        );
        drop(cluster);
    }
    base.passed();
    Ok(())
}

/// Issue 5 item 7, as MariaDB's own galera.galera_gcs_fc_limit does it: node1's appliers are
/// blocked by `LOCK TABLE ... WRITE`, so its receive queue grows; past `gcs.fc_limit` (scaled
/// by the square root of the cluster size) it sends a stop, node0's writer is held until the
/// lock goes, and nothing is lost.
#[test]
fn flow_control_holds_the_writers_while_a_node_cannot_apply_and_bounds_its_queue(
) -> Result<(), TestbedError> {
    if skip("flow_control_holds_the_writers_while_a_node_cannot_apply_and_bounds_its_queue") {
        return Ok(());
    }
    let base = TempBase::new("flow");
    let cluster = Cluster::start(trireme_spec(2, &base, 23460))?;
    let (n0, n1) = (cluster.node(0)?, cluster.node(1)?);
    n0.exec(
        "CREATE DATABASE fc; CREATE TABLE fc.t (id INT PRIMARY KEY AUTO_INCREMENT, b INT); \
         INSERT INTO fc.t VALUES (1, 1)",
    )?;
    n1.exec("SET SESSION wsrep_sync_wait=15; SELECT COUNT(*) FROM fc.t")?;
    // Two nodes: the limit is round(1 * sqrt 2) = 1 queued writeset.
    n1.exec("SET GLOBAL wsrep_provider_options='gcs.fc_limit=1'")?;
    let mut locker = Session::open(n1.socket()).expect("mariadb client");
    assert_eq!(
        locker.value("LOCK TABLE fc.t WRITE; SELECT 1;").as_deref(),
        Some("1")
    );
    const WRITES: usize = 20;
    let committed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let socket = n0.socket().to_path_buf();
        let committed = committed.clone();
        thread::spawn(move || {
            let mut s = Session::open(&socket).expect("mariadb client");
            for i in 0..WRITES {
                let v = s.value(&format!("INSERT INTO fc.t (b) VALUES ({i}); SELECT 1;"));
                if v.as_deref() != Some("1") {
                    return;
                }
                committed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let flag = |node: &trireme_testbed::Node, name: &str| {
        node.status_var(name).ok().flatten().unwrap_or_default()
    };
    let mut active = false;
    for _ in 0..300 {
        if flag(n0, "wsrep_flow_control_active") == "true" {
            active = true;
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    assert!(active, "flow control never paused node0");
    thread::sleep(Duration::from_secs(1));
    let held_at = committed.load(Ordering::SeqCst);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        committed.load(Ordering::SeqCst),
        held_at,
        "node0 kept committing while node1 could not apply"
    );
    assert!(held_at < WRITES, "every write went through: {held_at}");
    let queue: i64 = flag(n1, "wsrep_local_recv_queue").parse().unwrap_or(-1);
    assert!(
        (0..=3).contains(&queue),
        "node1's receive queue is not bounded by the limit: {queue}"
    );
    assert_eq!(flag(n1, "wsrep_flow_control_requested"), "true");
    let sent: i64 = flag(n1, "wsrep_flow_control_sent").parse().unwrap_or(0);
    let recv: i64 = flag(n0, "wsrep_flow_control_recv").parse().unwrap_or(0);
    assert!(sent >= 1 && recv >= 1, "sent {sent}, received {recv}");

    assert_eq!(
        locker.value("UNLOCK TABLES; SELECT 1;").as_deref(),
        Some("1")
    );
    writer.join().expect("writer thread");
    assert_eq!(committed.load(Ordering::SeqCst), WRITES);
    let rows = n1.sql_value("SET SESSION wsrep_sync_wait=15; SELECT COUNT(*) FROM fc.t")?;
    assert_eq!(rows, Some((WRITES + 1).to_string()));
    let paused_ns: i64 = flag(n0, "wsrep_flow_control_paused_ns")
        .parse()
        .unwrap_or(0);
    assert!(paused_ns >= 2_000_000_000, "paused only {paused_ns} ns");
    assert_eq!(flag(n0, "wsrep_flow_control_active"), "false");
    let a = checksum_all(n0)?;
    let b = checksum_all(n1)?;
    assert!(differences("node0", &a, "node1", &b).is_empty());
    base.passed();
    Ok(())
}

#[test]
fn with_pc_ignore_sb_the_survivor_of_two_keeps_taking_writes() -> Result<(), TestbedError> {
    if skip("with_pc_ignore_sb_the_survivor_of_two_keeps_taking_writes") {
        return Ok(());
    }
    let base = TempBase::new("ignoresb");
    let mut cluster = Cluster::start(trireme_spec(2, &base, 23540))?;
    cluster.node(0)?.exec(
        "CREATE DATABASE s; CREATE TABLE s.t (id INT PRIMARY KEY); INSERT INTO s.t VALUES (1)",
    )?;
    // Set at run time, as galera_pc_ignore_sb does.
    cluster
        .node(0)?
        .exec("SET GLOBAL wsrep_provider_options = 'pc.ignore_sb=true'")?;
    cluster.node_mut(1)?.kill9()?;
    // Writes issued at once, while the loss is still being detected, are not failed: they
    // commit in the component the survivor re-forms (galera_kill_ddl, galera_kill_smallchanges).
    // (With causal reads on, as MariaDB's galera suite runs: the read point is held too.)
    cluster
        .node(0)?
        .exec("SET SESSION wsrep_sync_wait = 15; INSERT INTO s.t VALUES (2)")?;
    cluster
        .node(0)?
        .exec("ALTER TABLE s.t ADD COLUMN f2 INTEGER")?;
    // One of two is no majority; with pc.ignore_sb the survivor goes on as a primary component.
    cluster.node_mut(0)?.wait_status(
        "a one-node primary component",
        Duration::from_secs(60),
        |st| {
            status_is(
                st,
                &[
                    ("wsrep_cluster_size", "1"),
                    ("wsrep_cluster_status", "Primary"),
                    ("wsrep_ready", "ON"),
                ],
            )
        },
    )?;
    let node = cluster.node(0)?;
    node.exec("INSERT INTO s.t VALUES (3, 3)")?;
    node.exec("CREATE TABLE s.u (id INT PRIMARY KEY)")?;
    assert_eq!(node.sql("SELECT COUNT(*) FROM s.t")?, vec![vec!["3"]]);
    // The killed node comes back and catches up.
    let position = cluster.node(1)?.recover_position()?;
    cluster.restart_node(1, Some(&position))?;
    assert_eq!(
        cluster
            .node(1)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM s.t")?,
        vec![vec!["3"]]
    );
    base.passed();
    Ok(())
}

#[test]
fn a_killed_node_that_comes_back_re_forms_the_primary_component_with_the_survivor(
) -> Result<(), TestbedError> {
    if skip("a_killed_node_that_comes_back_re_forms_the_primary_component_with_the_survivor") {
        return Ok(());
    }
    let base = TempBase::new("reform");
    let mut cluster = Cluster::start(trireme_spec(2, &base, 23560))?;
    cluster.node(0)?.exec(
        "CREATE DATABASE k; CREATE TABLE k.t (id INT PRIMARY KEY); INSERT INTO k.t VALUES (1)",
    )?;
    cluster.node_mut(1)?.kill9()?;
    // One of two: the survivor has no quorum (pc.ignore_sb is off).
    cluster
        .node_mut(0)?
        .wait_status("non-primary", Duration::from_secs(60), |st| {
            status_is(st, &[("wsrep_cluster_status", "non-Primary")])
        })?;
    // The killed node comes back (galera_kill_nochanges): with every member of the last
    // primary component back, the two re-form it, and the returning node catches up.
    let position = cluster.node(1)?.recover_position()?;
    cluster.restart_node(1, Some(&position))?;
    for i in 0..2 {
        cluster
            .node_mut(i)?
            .wait_status("Primary, 2 members", Duration::from_secs(60), |st| {
                status_is(
                    st,
                    &[
                        ("wsrep_cluster_status", "Primary"),
                        ("wsrep_cluster_size", "2"),
                        ("wsrep_ready", "ON"),
                    ],
                )
            })?;
    }
    cluster.node(0)?.exec("INSERT INTO k.t VALUES (2)")?;
    assert_eq!(
        cluster
            .node(1)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM k.t")?,
        vec![vec!["2"]]
    );
    base.passed();
    Ok(())
}

#[test]
fn a_non_primary_view_lists_only_the_members_still_heard_from() -> Result<(), TestbedError> {
    if skip("a_non_primary_view_lists_only_the_members_still_heard_from") {
        return Ok(());
    }
    let base = TempBase::new("npview");
    let mut cluster = Cluster::start(trireme_spec(2, &base, 23580))?;
    // A frozen peer keeps its TCP connections open: only its silence tells (galera_suspend_slave).
    cluster.node_mut(1)?.sigstop()?;
    let seen = cluster.node_mut(0)?.wait_status(
        "non-primary, one member",
        Duration::from_secs(60),
        |st| {
            status_is(
                st,
                &[
                    ("wsrep_cluster_status", "non-Primary"),
                    ("wsrep_cluster_size", "1"),
                ],
            )
        },
    );
    cluster.node_mut(1)?.sigcont()?;
    seen?;
    for i in 0..2 {
        cluster.node_mut(i)?.wait_status(
            "Primary again, 2 members",
            Duration::from_secs(60),
            |st| {
                status_is(
                    st,
                    &[
                        ("wsrep_cluster_status", "Primary"),
                        ("wsrep_cluster_size", "2"),
                    ],
                )
            },
        )?;
    }
    base.passed();
    Ok(())
}

#[test]
fn gmcast_isolate_cuts_a_node_off_and_lifting_it_brings_the_node_back() -> Result<(), TestbedError>
{
    if skip("gmcast_isolate_cuts_a_node_off_and_lifting_it_brings_the_node_back") {
        return Ok(());
    }
    let base = TempBase::new("isolate");
    let mut cluster = Cluster::start(trireme_spec(3, &base, 23600))?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE i; CREATE TABLE i.t (id INT PRIMARY KEY)")?;
    // MTR's partition tests do exactly this (galera_shutdown_nonprim, MW-284, ...); GAL-401
    // desyncs the node first: the state transfer on its return ends the desync.
    cluster.node(2)?.exec("SET GLOBAL wsrep_desync = 1")?;
    cluster
        .node(2)?
        .exec("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'")?;
    cluster.node_mut(2)?.wait_status(
        "isolated: non-primary alone",
        Duration::from_secs(60),
        |st| {
            status_is(
                st,
                &[
                    ("wsrep_cluster_status", "non-Primary"),
                    ("wsrep_cluster_size", "1"),
                    ("wsrep_ready", "OFF"),
                ],
            )
        },
    )?;
    for i in 0..2 {
        cluster
            .node_mut(i)?
            .wait_status("the other two go on", Duration::from_secs(60), |st| {
                status_is(
                    st,
                    &[
                        ("wsrep_cluster_status", "Primary"),
                        ("wsrep_cluster_size", "2"),
                    ],
                )
            })?;
    }
    cluster.node(0)?.exec("INSERT INTO i.t VALUES (1)")?;
    cluster
        .node(2)?
        .exec("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'")?;
    wait_back_in_three(cluster.node_mut(2)?, "back in the primary component")?;
    assert_eq!(
        cluster
            .node(2)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM i.t")?,
        vec![vec!["1"]]
    );
    assert_eq!(
        cluster
            .node(2)?
            .status_var("wsrep_desync_count")?
            .as_deref(),
        Some("0")
    );
    cluster.node(2)?.exec("SET GLOBAL wsrep_desync = 0")?;
    assert_eq!(
        cluster
            .node(2)?
            .status_var("wsrep_local_state_comment")?
            .as_deref(),
        Some("Synced")
    );
    base.passed();
    Ok(())
}

/// Issue 5 item 9: with `evs.auto_evict=2`, a node removed twice (here cut off by
/// `gmcast.isolate`, then let back) is refused the second time: it stays non-primary, says
/// it was evicted, and every member lists it in `wsrep_evs_evict_list`; a restart (a new node
/// id) brings it back.
#[test]
fn a_node_removed_auto_evict_times_or_evicted_by_an_operator_stays_out_until_restarted(
) -> Result<(), TestbedError> {
    if skip("a_node_removed_auto_evict_times_or_evicted_by_an_operator_stays_out_until_restarted") {
        return Ok(());
    }
    let base = TempBase::new("evict");
    let mut spec = trireme_spec(3, &base, 23640);
    spec.provider_options.push_str("; evs.auto_evict=2");
    let mut cluster = Cluster::start(spec)?;
    let victim_id = cluster
        .node(2)?
        .status_var("wsrep_gcomm_uuid")?
        .unwrap_or_default();
    let two_left = |st: &std::collections::BTreeMap<String, String>| {
        status_is(
            st,
            &[
                ("wsrep_cluster_status", "Primary"),
                ("wsrep_cluster_size", "2"),
            ],
        )
    };
    for round in 1..=2 {
        cluster
            .node(2)?
            .exec("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'")?;
        cluster
            .node_mut(2)?
            .wait_status("node2 cut off", Duration::from_secs(60), |st| {
                status_is(st, &[("wsrep_cluster_status", "non-Primary")])
            })?;
        cluster
            .node_mut(0)?
            .wait_status("node2 removed", Duration::from_secs(60), two_left)?;
        cluster
            .node(2)?
            .exec("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'")?;
        if round == 1 {
            wait_back_in_three(cluster.node_mut(2)?, "back after the first removal")?;
            cluster.node_mut(0)?.wait_status(
                "node2 back in node0's view",
                Duration::from_secs(60),
                |st| status_is(st, &[("wsrep_cluster_size", "3")]),
            )?;
        }
    }
    // The second time it is refused: out, and told why.
    cluster
        .node_mut(0)?
        .wait_status("node2 listed as evicted", Duration::from_secs(60), |st| {
            st.get("wsrep_evs_evict_list") == Some(&victim_id)
        })?;
    let log_path = cluster.node(2)?.layout().error_log.clone();
    wait_for_log(&log_path, 0, "This node was evicted from the cluster");
    thread::sleep(Duration::from_secs(3));
    let node2 = cluster.node(2)?;
    assert_eq!(node2.status_var("wsrep_ready")?.as_deref(), Some("OFF"));
    assert_ne!(
        node2.status_var("wsrep_cluster_status")?.as_deref(),
        Some("Primary")
    );
    assert_eq!(
        cluster
            .node(1)?
            .status_var("wsrep_evs_evict_list")?
            .as_deref(),
        Some(victim_id.as_str())
    );
    cluster.node(0)?.exec("CREATE DATABASE e")?;
    // A restart is a new node id: it joins.
    cluster.node_mut(2)?.stop()?;
    cluster.restart_node(2, None)?;
    assert_eq!(
        cluster
            .node(2)?
            .status_var("wsrep_cluster_size")?
            .as_deref(),
        Some("3")
    );
    assert_eq!(
        cluster
            .node(2)?
            .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'e'")?,
        vec![vec!["1"]]
    );
    // An operator's eviction (`evs.evict=<uuid>`, from another node) takes the node out the
    // same way; `evs.evict=` clears the list, and the node comes back by a restart.
    let new_id = cluster
        .node(2)?
        .status_var("wsrep_gcomm_uuid")?
        .unwrap_or_default();
    assert_ne!(new_id, victim_id);
    let mark = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
    cluster.node(1)?.exec(&format!(
        "SET GLOBAL wsrep_provider_options = 'evs.evict={new_id}'"
    ))?;
    cluster.node_mut(0)?.wait_status(
        "node2 evicted by the operator",
        Duration::from_secs(60),
        |st| {
            st.get("wsrep_evs_evict_list")
                .is_some_and(|l| l.contains(&new_id))
                && two_left(st)
        },
    )?;
    wait_for_log(&log_path, mark, "evicted by an operator");
    cluster
        .node(1)?
        .exec("SET GLOBAL wsrep_provider_options = 'evs.evict='")?;
    cluster
        .node_mut(0)?
        .wait_status("the evict list cleared", Duration::from_secs(60), |st| {
            st.get("wsrep_evs_evict_list").is_some_and(|l| l.is_empty())
        })?;
    cluster.node_mut(2)?.stop()?;
    cluster.restart_node(2, None)?;
    assert_eq!(
        cluster
            .node(0)?
            .status_var("wsrep_cluster_size")?
            .as_deref(),
        Some("3")
    );
    base.passed();
    Ok(())
}

/// Issue 5 item 4 with `pc.weight`, on a network cut between namespaces: node 0, set to
/// weight 3 at run time, weighs more than nodes 1 and 2 together (3 of 5). Cut off, it keeps
/// the primary component and takes writes; the other two, a head-count majority, go
/// non-primary and refuse queries (1047). Healed, all three are one primary component again
/// with node 0's writes. `wsrep_cluster_weight` follows, as Galera reports it (0 outside a
/// primary component), and the `SET` returns once the weight is in force.
#[test]
fn a_node_that_weighs_more_than_the_others_keeps_the_primary_when_the_network_cuts_it_off(
) -> Result<(), TestbedError> {
    let name =
        "a_node_that_weighs_more_than_the_others_keeps_the_primary_when_the_network_cuts_it_off";
    if skip(name) {
        return Ok(());
    }
    if let Some(why) = trireme_testbed::netns::missing_tools() {
        eprintln!("SKIPPED: {name}: {why}");
        return Ok(());
    }
    let base = TempBase::new("weight");
    let mut spec = trireme_spec(3, &base, 23660);
    spec.netns = true;
    let mut cluster = Cluster::start(spec)?;
    cluster
        .node(0)?
        .exec("CREATE DATABASE w; CREATE TABLE w.t (id INT PRIMARY KEY)")?;
    let weight = |cluster: &Cluster, i: usize| -> Result<String, TestbedError> {
        Ok(cluster
            .node(i)?
            .status_var("wsrep_cluster_weight")?
            .unwrap_or_default())
    };
    for i in 0..3 {
        assert_eq!(
            weight(&cluster, i)?,
            "3",
            "node{i}: three nodes of weight 1"
        );
    }
    cluster
        .node(0)?
        .exec("SET GLOBAL wsrep_provider_options = 'pc.weight=3'")?;
    assert_eq!(
        weight(&cluster, 0)?,
        "5",
        "the SET returns with the weight in force"
    );
    for i in 1..3 {
        cluster
            .node_mut(i)?
            .wait_status("weight 5", Duration::from_secs(10), |st| {
                status_is(st, &[("wsrep_cluster_weight", "5")])
            })?;
    }

    cluster.network().expect("netns").isolate(0)?;
    for i in 1..3 {
        cluster.node_mut(i)?.wait_status(
            "the light pair goes non-primary",
            Duration::from_secs(30),
            |st| {
                status_is(
                    st,
                    &[
                        ("wsrep_cluster_status", "non-Primary"),
                        ("wsrep_ready", "OFF"),
                        ("wsrep_cluster_weight", "0"),
                    ],
                )
            },
        )?;
    }
    cluster.node_mut(0)?.wait_status(
        "the heavy node is the primary component alone",
        Duration::from_secs(30),
        |st| {
            status_is(
                st,
                &[
                    ("wsrep_cluster_status", "Primary"),
                    ("wsrep_cluster_size", "1"),
                    ("wsrep_cluster_weight", "3"),
                    ("wsrep_ready", "ON"),
                ],
            )
        },
    )?;
    for id in 1..=20 {
        cluster
            .node(0)?
            .exec(&format!("INSERT INTO w.t VALUES ({id})"))?;
    }
    // Still cut off a while later: the pair never became primary.
    thread::sleep(Duration::from_secs(3));
    for i in 1..3 {
        let node = cluster.node(i)?;
        assert_eq!(
            node.status_var("wsrep_cluster_status")?.as_deref(),
            Some("non-Primary"),
            "node{i}"
        );
        let err = node.exec("SELECT * FROM w.t").unwrap_err();
        assert_eq!(err.sql_code(), Some(1047), "node{i}: {err}");
    }

    cluster.network().expect("netns").heal()?;
    for i in 0..3 {
        wait_back_in_three(cluster.node_mut(i)?, "healed: one primary component")?;
    }
    for i in 0..3 {
        assert_eq!(
            cluster
                .node(i)?
                .sql("SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM w.t")?,
            vec![vec!["20"]],
            "node{i} has the heavy node's writes"
        );
    }
    cluster
        .node(0)?
        .exec("SET GLOBAL wsrep_provider_options = 'pc.weight=1'")?;
    assert_eq!(weight(&cluster, 0)?, "3");
    let first = checksum_all(cluster.node(0)?)?;
    for i in 1..3 {
        let other = checksum_all(cluster.node(i)?)?;
        let diff = differences("node0", &first, &format!("node{i}"), &other);
        assert!(diff.is_empty(), "{diff:#?}");
    }
    base.passed();
    Ok(())
}
