//! Real local MariaDB clusters on a chosen wsrep provider, for tests, demos and benchmarks.
//!
//! The testbed brings up `mariadbd` nodes (Debian's MariaDB 10.11) that load a wsrep provider
//! (Trireme's `libtrireme.so` or Galera 4's `libgalera_smm.so`), waits until they are Synced,
//! and drives them: SQL through the `mariadb` client, signals by PID, `--wsrep-recover`,
//! sysbench workloads, per-table checksums. Nothing here is simulated: the integration tests
//! of the provider are only as honest as the servers they talk to.
//!
//! A typical test:
//!
//! ```no_run
//! use trireme_testbed::{checksum_all, Cluster, ClusterSpec};
//!
//! # fn main() -> Result<(), trireme_testbed::TestbedError> {
//! let spec = ClusterSpec::galera(3, "/tmp/tb-example", 17000);
//! let cluster = Cluster::start(spec)?; // node 0 bootstraps, nodes 1 and 2 join by SST
//! cluster.node(2)?.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)")?;
//! cluster.node(2)?.exec("INSERT INTO d.t VALUES (1)")?;
//! let sums = checksum_all(cluster.node(0)?)?; // waits for node 0 to catch up first
//! assert_eq!(sums["d.t"].rows, 1);
//! # Ok(()) }
//! // Dropping `cluster` stops every server it started (SIGTERM, then SIGKILL), by PID.
//! ```
//!
//! Modules, top-down: [`spec`] (what to start: ports, paths, `my.cnf`), [`cluster`] (build and
//! start a cluster, stop it on drop), [`node`] (one server: lifecycle, SQL, status),
//! [`sql`] (the client), [`sysbench`], [`checksum`], [`state`] (the state file the CLI uses),
//! [`process`] (spawning, signalling, `/proc`), [`netns`] (a network namespace per node, to
//! cut and heal links).
//!
//! The servers run as user `mysql` and the testbed must run as root to start them; see
//! [`missing_prerequisite`] for what else it needs.

pub mod checksum;
pub mod cluster;
pub mod error;
pub mod netns;
pub mod node;
pub mod process;
pub mod spec;
pub mod sql;
pub mod state;
pub mod sysbench;

pub use checksum::{checksum_all, differences, TableChecksum};
pub use cluster::{missing_prerequisite, Cluster};
pub use error::{LogTail, Result, TestbedError};
pub use netns::Network;
pub use node::{parse_recovered_position, Node, StartOptions, WsrepPosition};
pub use spec::{ClusterSpec, NodeLayout, NodePorts, GALERA_PROVIDER, MARIADBD, NO_PROVIDER};
pub use sql::SqlClient;
pub use sysbench::{
    create_database, create_user, IntervalReport, Sysbench, SysbenchConnection, SysbenchReport,
    SysbenchTarget, Workload,
};
