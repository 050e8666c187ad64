//! A standalone server (wsrep off, no provider): the benchmarks' baseline starts, answers SQL
//! and replicates nothing.

mod common;

use common::{skip, TempBase};
use trireme_testbed::{Cluster, ClusterSpec, TestbedError};

#[test]
fn standalone_server_starts_with_wsrep_off_and_takes_writes() -> Result<(), TestbedError> {
    let name = "standalone_server_starts_with_wsrep_off_and_takes_writes";
    if skip(name, &[]) {
        return Ok(());
    }
    let base = TempBase::new("standalone");
    let spec = ClusterSpec::standalone(base.path(), 18480);
    let cluster = Cluster::start(spec)?;
    let node = cluster.node(0)?;
    assert_eq!(node.variable("wsrep_on")?.as_deref(), Some("OFF"));
    assert_eq!(node.variable("wsrep_provider")?.as_deref(), Some("none"));
    node.exec(
        "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY); INSERT INTO d.t VALUES (1)",
    )?;
    assert_eq!(
        node.sql_value("SELECT COUNT(*) FROM d.t")?.as_deref(),
        Some("1")
    );
    drop(cluster);
    base.passed();
    Ok(())
}
