//! Network namespaces through the testbed, proved on Galera 4: three nodes, each in its own
//! namespace, form a cluster over their 10.77.0.x addresses (joiners by rsync SST), answer
//! SQL over TCP on those addresses, and behave as a partition says: the isolated node refuses
//! queries (1047) while the other two keep committing, and it comes back when the network
//! heals. Afterwards nothing the testbed created is left in `/run/netns`.

mod common;

use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{galera_spec, skip, TempBase};
use trireme_testbed::netns::missing_tools;
use trireme_testbed::{checksum_all, create_user, differences, Cluster, Node, TestbedError};

/// The tests of this file count this process's namespaces: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn namespaces_of_this_process() -> Vec<String> {
    let mine = format!("tbn-{}-", std::process::id());
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&mine))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(node: &Node, what: &str, timeout: Duration, mut ok: impl FnMut(&Node) -> bool) {
    let start = Instant::now();
    while !ok(node) {
        assert!(
            start.elapsed() < timeout,
            "{}: {what} not seen within {timeout:?}; {}",
            node.name(),
            node.status_line()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn tcp_query(cluster: &Cluster, i: usize, query: &str) -> std::process::Output {
    let net = cluster.network().expect("netns cluster");
    let mut cmd: Command = net.hub_command("/usr/bin/mariadb");
    cmd.args([
        "--no-defaults",
        "--protocol=tcp",
        &format!("--host={}", net.address(i)),
        &format!("--port={}", cluster.node(i).unwrap().ports().sql),
        "--user=tcpcheck",
        "--password=tcpcheck-pw",
        "--batch",
        "--skip-column-names",
        "--connect-timeout=10",
        "-e",
        query,
    ]);
    cmd.output().expect("run mariadb in the hub namespace")
}

#[test]
fn nodes_in_network_namespaces_replicate_over_their_addresses_and_a_partition_isolates_one(
) -> Result<(), TestbedError> {
    let name =
        "nodes_in_network_namespaces_replicate_over_their_addresses_and_a_partition_isolates_one";
    if skip(name, &["/usr/bin/rsync"]) {
        return Ok(());
    }
    if let Some(why) = missing_tools() {
        eprintln!("SKIPPED: {name}: {why}");
        return Ok(());
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = TempBase::new("netns");
    let mut spec = galera_spec(3, &base, 18490);
    spec.netns = true;
    let mut cluster = Cluster::start(spec)?;
    assert_eq!(namespaces_of_this_process().len(), 4, "hub + 3 nodes");

    for node in cluster.nodes() {
        assert_eq!(node.status_var("wsrep_cluster_size")?.as_deref(), Some("3"));
    }
    let addresses = cluster
        .node(0)?
        .status_var("wsrep_incoming_addresses")?
        .unwrap_or_default();
    for i in 0..3 {
        let want = format!("10.77.0.{}:", i + 1);
        assert!(addresses.contains(&want), "{want} not in {addresses}");
    }

    // SQL over TCP on the namespace address, from the hub.
    cluster
        .node(0)?
        .exec("CREATE DATABASE n; CREATE TABLE n.t (id INT PRIMARY KEY, v INT)")?;
    create_user(cluster.node(0)?, "tcpcheck", "tcpcheck-pw", "n")?;
    for i in 0..3 {
        let out = tcp_query(&cluster, i, "SELECT @@wsrep_node_address");
        assert!(
            out.status.success(),
            "node{i} over TCP: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("10.77.0.{}:{}", i + 1, cluster.node(i)?.ports().repl)
        );
    }

    // Cut node 2 off: it loses the primary component, the other two carry on.
    cluster.network().expect("netns").isolate(2)?;
    wait_for(
        cluster.node(2)?,
        "non-Primary",
        Duration::from_secs(60),
        |n| {
            n.status_var("wsrep_cluster_status")
                .ok()
                .flatten()
                .as_deref()
                == Some("non-Primary")
        },
    );
    let err = cluster.node(2)?.exec("SELECT * FROM n.t").unwrap_err();
    assert_eq!(err.sql_code(), Some(1047), "{err}");
    wait_for(cluster.node(0)?, "size 2", Duration::from_secs(60), |n| {
        n.status_var("wsrep_cluster_size").ok().flatten().as_deref() == Some("2")
    });
    for v in 1..=20 {
        cluster
            .node(v % 2)?
            .exec(&format!("INSERT INTO n.t VALUES ({v}, {v})"))?;
    }

    // Heal: node 2 rejoins (IST) and has every row.
    cluster.network().expect("netns").heal()?;
    cluster.node_mut(2)?.wait_synced(Duration::from_secs(120))?;
    wait_for(cluster.node(2)?, "size 3", Duration::from_secs(60), |n| {
        n.status_var("wsrep_cluster_size").ok().flatten().as_deref() == Some("3")
    });
    let first = checksum_all(cluster.node(0)?)?;
    assert_eq!(first["n.t"].rows, 20);
    for i in 1..3 {
        let other = checksum_all(cluster.node(i)?)?;
        let diff = differences("node0", &first, &format!("node{i}"), &other);
        assert!(diff.is_empty(), "{diff:#?}");
    }

    drop(cluster);
    assert!(
        namespaces_of_this_process().is_empty(),
        "left behind: {:?}",
        namespaces_of_this_process()
    );
    base.passed();
    Ok(())
}

#[test]
fn a_failed_start_in_network_namespaces_leaves_no_namespace_behind() {
    let name = "a_failed_start_in_network_namespaces_leaves_no_namespace_behind";
    if skip(name, &[]) {
        return;
    }
    if let Some(why) = missing_tools() {
        eprintln!("SKIPPED: {name}: {why}");
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let base = TempBase::new("netns-fail");
    let mut spec = galera_spec(1, &base, 18496);
    spec.netns = true;
    // An option Galera refuses: the server exits during startup.
    spec.provider_options = "no.such.option=1".into();
    spec.start_timeout = Duration::from_secs(60);
    let err = Cluster::start(spec).expect_err("the start must fail");
    assert!(
        matches!(err, TestbedError::ServerExited { .. }),
        "unexpected error: {err}"
    );
    assert_eq!(namespaces_of_this_process(), Vec::<String>::new());
    base.passed();
}
