//! What to start: [`ClusterSpec`], the per-node layout derived from it (ports and paths), and
//! the generated `my.cnf`.
//!
//! Everything a node needs is explicit in its own `my.cnf`, read with `--defaults-file` so that
//! the machine's `/etc/mysql` never leaks in. Each node gets four distinct ports (SQL,
//! replication, IST, SST) in a block of ten per node, so several clusters (and several tests)
//! can share the machine as long as their port bases are 10 * nodes apart.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Result, TestbedError};

/// Galera 4 as Debian installs it (`galera-4`).
pub const GALERA_PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";

/// The `provider` of a standalone server: wsrep off, no provider loaded (MariaDB's own
/// spelling, `wsrep_provider=none`). The benchmarks' baseline.
pub const NO_PROVIDER: &str = "none";

/// The server binary Debian's `mariadb-server` installs.
pub const MARIADBD: &str = "/usr/sbin/mariadbd";

/// Longest socket path `sun_path` can hold (108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Everything needed to bring up a local cluster.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// The wsrep provider library loaded by every node.
    pub provider: PathBuf,
    /// Number of nodes (at least 1).
    pub nodes: usize,
    /// Directory holding one `node<i>/` directory per node and the state file. Wiped per node
    /// (only the `node<i>` directories) when a cluster starts.
    pub base_dir: PathBuf,
    /// Node i uses ports `port_base + 10*i` (SQL), `+1` (replication), `+2` (IST), `+3` (SST).
    pub port_base: u16,
    /// `wsrep_cluster_name`.
    pub cluster_name: String,
    /// Appended to the generated `base_port=...; ist.recv_addr=...` provider options.
    pub provider_options: String,
    /// Extra `[mysqld]` lines (`key=value`), written after the generated ones so they win.
    pub extra_cnf: Vec<String>,
    /// `wsrep_sst_method` (`rsync` by default; `mariabackup`, `mysqldump`, `skip` ...).
    pub sst_method: String,
    /// `wsrep_slave_threads`.
    pub slave_threads: u32,
    /// `innodb_flush_log_at_trx_commit` (2 by default: this is a test box, not a bank).
    pub innodb_flush_log_at_trx_commit: u8,
    /// `innodb_buffer_pool_size`.
    pub innodb_buffer_pool_size: String,
    /// `innodb_log_file_size`.
    pub innodb_log_file_size: String,
    /// The server binary.
    pub mariadbd: PathBuf,
    /// How long one node may take to become Synced (a joiner's SST included).
    pub start_timeout: Duration,
    /// How long a clean shutdown may take before it counts as failed.
    pub stop_timeout: Duration,
    /// How long one `mariadb` client invocation may run before it is killed.
    pub sql_timeout: Duration,
    /// Run each node in its own network namespace at `10.77.0.<i+1>` (see [`crate::netns`]),
    /// so that a test can cut and heal links; off by default (everything on 127.0.0.1).
    pub netns: bool,
    /// A directory put first on the servers' PATH: MariaDB finds `wsrep_sst_<method>` scripts
    /// there (a test's own SST method).
    pub script_dir: Option<PathBuf>,
}

impl ClusterSpec {
    /// A spec with the defaults a small test box wants.
    pub fn new(
        provider: impl Into<PathBuf>,
        nodes: usize,
        base_dir: impl Into<PathBuf>,
        port_base: u16,
    ) -> Self {
        ClusterSpec {
            provider: provider.into(),
            nodes,
            base_dir: base_dir.into(),
            port_base,
            cluster_name: "trireme".into(),
            provider_options: String::new(),
            extra_cnf: Vec::new(),
            sst_method: "rsync".into(),
            slave_threads: 2,
            innodb_flush_log_at_trx_commit: 2,
            innodb_buffer_pool_size: "128M".into(),
            innodb_log_file_size: "48M".into(),
            mariadbd: PathBuf::from(MARIADBD),
            start_timeout: Duration::from_secs(180),
            stop_timeout: Duration::from_secs(60),
            sql_timeout: Duration::from_secs(120),
            netns: false,
            script_dir: None,
        }
    }

    /// [`ClusterSpec::new`] with Galera 4 as the provider.
    pub fn galera(nodes: usize, base_dir: impl Into<PathBuf>, port_base: u16) -> Self {
        Self::new(GALERA_PROVIDER, nodes, base_dir, port_base)
    }

    /// One standalone server: the same `my.cnf` as a cluster node but with `wsrep_on=OFF` and
    /// `wsrep_provider=none`, ready as soon as it answers SQL. The baseline against which
    /// benchmarks measure what replication adds.
    pub fn standalone(base_dir: impl Into<PathBuf>, port_base: u16) -> Self {
        Self::new(NO_PROVIDER, 1, base_dir, port_base)
    }

    /// Whether this spec is a standalone server ([`ClusterSpec::standalone`]).
    pub fn is_standalone(&self) -> bool {
        self.provider.as_os_str() == NO_PROVIDER
    }

    /// Checks what can be checked without touching the machine.
    pub fn validate(&self) -> Result<()> {
        if self.nodes == 0 {
            return Err(TestbedError::Spec("nodes must be at least 1".into()));
        }
        let last = u32::from(self.port_base) + 10 * (self.nodes as u32 - 1) + 3;
        if self.port_base < 1024 || last > u32::from(u16::MAX) {
            return Err(TestbedError::Spec(format!(
                "ports {}..={last} do not fit in 1024..=65535",
                self.port_base
            )));
        }
        if !self.base_dir.is_absolute() {
            return Err(TestbedError::Spec(format!(
                "base_dir {} must be absolute (it is written into my.cnf)",
                self.base_dir.display()
            )));
        }
        for (name, v) in [
            ("cluster_name", &self.cluster_name),
            ("sst_method", &self.sst_method),
        ] {
            if v.is_empty() || v.contains(['\n', '"', '\\']) {
                return Err(TestbedError::Spec(format!(
                    "{name} {v:?} is empty or unsafe in my.cnf"
                )));
            }
        }
        if self.provider_options.contains(['\n', '"']) {
            return Err(TestbedError::Spec(format!(
                "provider_options {:?} contains a newline or a double quote",
                self.provider_options
            )));
        }
        if let Some(bad) = self.extra_cnf.iter().find(|l| l.contains('\n')) {
            return Err(TestbedError::Spec(format!(
                "extra_cnf line {bad:?} contains a newline"
            )));
        }
        if self.is_standalone() && self.nodes != 1 {
            return Err(TestbedError::Spec(format!(
                "a standalone server (provider {NO_PROVIDER}) has 1 node, not {}",
                self.nodes
            )));
        }
        if self.netns && self.nodes > crate::netns::MAX_NODES {
            return Err(TestbedError::Spec(format!(
                "network namespaces fit at most {} nodes",
                crate::netns::MAX_NODES
            )));
        }
        if self.innodb_flush_log_at_trx_commit > 2 {
            return Err(TestbedError::Spec(format!(
                "innodb_flush_log_at_trx_commit must be 0, 1 or 2, not {}",
                self.innodb_flush_log_at_trx_commit
            )));
        }
        let sock = self.layout(self.nodes - 1).socket;
        if sock.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(TestbedError::Spec(format!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter base_dir",
                sock.display()
            )));
        }
        Ok(())
    }

    /// Ports and paths of node `i`.
    pub fn layout(&self, i: usize) -> NodeLayout {
        NodeLayout::new(&self.base_dir, self.port_base, i)
    }

    /// The address node `i` listens on and is reached at: `127.0.0.1`, or `10.77.0.<i+1>` in
    /// its own network namespace when [`ClusterSpec::netns`] is set.
    pub fn host(&self, i: usize) -> String {
        if self.netns {
            crate::netns::node_address(i)
        } else {
            "127.0.0.1".into()
        }
    }

    /// `wsrep_cluster_address` for node `i`: node 0 bootstraps (`gcomm://`); every other node
    /// lists all the others, node 0 first, so it can join through whichever is up.
    pub fn cluster_address(&self, i: usize) -> String {
        if i == 0 {
            "gcomm://".into()
        } else {
            self.peer_address(i)
        }
    }

    /// `gcomm://` followed by the replication address of every node but `i`: the address a
    /// node uses to join (or rejoin) a running cluster.
    pub fn peer_address(&self, i: usize) -> String {
        let peers: Vec<String> = (0..self.nodes)
            .filter(|&j| j != i)
            .map(|j| format!("{}:{}", self.host(j), self.layout(j).ports.repl))
            .collect();
        format!("gcomm://{}", peers.join(","))
    }

    /// The full `wsrep_provider_options` of node `i`.
    pub fn provider_options_for(&self, i: usize) -> String {
        let p = self.layout(i).ports;
        let mut s = format!(
            "base_port={}; ist.recv_addr={}:{}",
            p.repl,
            self.host(i),
            p.ist
        );
        let extra = self.provider_options.trim().trim_start_matches(';').trim();
        if !extra.is_empty() {
            s.push_str("; ");
            s.push_str(extra);
        }
        s
    }

    /// The `my.cnf` of node `i`.
    pub fn render_cnf(&self, i: usize) -> String {
        let l = self.layout(i);
        let p = l.ports;
        let mut c = String::new();
        // `writeln!` into a String cannot fail; the results are ignored for readability.
        let _ = writeln!(
            c,
            "# Generated by trireme-testbed for node{i}; rewritten on every start."
        );
        let _ = writeln!(c, "[mysqld]");
        let _ = writeln!(c, "datadir={}", l.datadir.display());
        let _ = writeln!(c, "socket={}", l.socket.display());
        let _ = writeln!(c, "pid-file={}", l.pid_file.display());
        let _ = writeln!(c, "log-error={}", l.error_log.display());
        let _ = writeln!(c, "tmpdir={}", l.tmpdir.display());
        let _ = writeln!(c, "port={}", p.sql);
        let host = self.host(i);
        let _ = writeln!(c, "bind-address={host}");
        let _ = writeln!(c, "skip-name-resolve");
        let _ = writeln!(c, "default_storage_engine=InnoDB");
        let _ = writeln!(c, "binlog_format=ROW");
        let _ = writeln!(c, "innodb_autoinc_lock_mode=2");
        let _ = writeln!(
            c,
            "innodb_buffer_pool_size={}",
            self.innodb_buffer_pool_size
        );
        let _ = writeln!(c, "innodb_log_file_size={}", self.innodb_log_file_size);
        let _ = writeln!(
            c,
            "innodb_flush_log_at_trx_commit={}",
            self.innodb_flush_log_at_trx_commit
        );
        // A standalone server keeps every other line, so that it differs from a cluster node
        // only in replication.
        let wsrep_on = if self.is_standalone() { "OFF" } else { "ON" };
        let _ = writeln!(c, "wsrep_on={wsrep_on}");
        let _ = writeln!(c, "wsrep_provider={}", self.provider.display());
        let _ = writeln!(c, "wsrep_cluster_name={}", self.cluster_name);
        let _ = writeln!(c, "wsrep_cluster_address={}", self.cluster_address(i));
        let _ = writeln!(c, "wsrep_node_name={}", l.name);
        let _ = writeln!(c, "wsrep_node_address={host}:{}", p.repl);
        let _ = writeln!(c, "wsrep_node_incoming_address={host}:{}", p.sql);
        let _ = writeln!(
            c,
            "wsrep_provider_options=\"{}\"",
            self.provider_options_for(i)
        );
        let _ = writeln!(c, "wsrep_sst_receive_address={host}:{}", p.sst);
        let _ = writeln!(c, "wsrep_sst_method={}", self.sst_method);
        let _ = writeln!(c, "wsrep_slave_threads={}", self.slave_threads);
        for line in &self.extra_cnf {
            let _ = writeln!(c, "{line}");
        }
        // The SST scripts and `mariadb --defaults-file` read [client]; harmless for mariadbd.
        let _ = writeln!(c, "\n[client]");
        let _ = writeln!(c, "socket={}", l.socket.display());
        let _ = writeln!(c, "port={}", p.sql);
        c
    }
}

/// The four ports of one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodePorts {
    /// SQL clients (`port`).
    pub sql: u16,
    /// Group communication (`wsrep_node_address`, `base_port`).
    pub repl: u16,
    /// Incremental state transfer (`ist.recv_addr`).
    pub ist: u16,
    /// State snapshot transfer (`wsrep_sst_receive_address`).
    pub sst: u16,
}

impl NodePorts {
    /// The ports of node `i` for a cluster at `port_base`. The caller has validated the range.
    pub fn new(port_base: u16, i: usize) -> Self {
        let sql = port_base.wrapping_add((10 * i) as u16);
        NodePorts {
            sql,
            repl: sql.wrapping_add(1),
            ist: sql.wrapping_add(2),
            sst: sql.wrapping_add(3),
        }
    }

    /// All four, for checking that they are free.
    pub fn all(&self) -> [u16; 4] {
        [self.sql, self.repl, self.ist, self.sst]
    }
}

/// Where node `i` keeps its files. The datadir is a sub-directory so that the error log, pid
/// file and socket stay outside what SST copies or wipes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLayout {
    /// `node<i>`: also `wsrep_node_name`.
    pub name: String,
    /// Index in the cluster.
    pub index: usize,
    /// `<base_dir>/node<i>`.
    pub dir: PathBuf,
    /// `<dir>/data`.
    pub datadir: PathBuf,
    /// `<dir>/my.cnf`.
    pub cnf: PathBuf,
    /// `<dir>/mariadbd.sock`.
    pub socket: PathBuf,
    /// `<dir>/mariadbd.pid`.
    pub pid_file: PathBuf,
    /// `<dir>/error.log`.
    pub error_log: PathBuf,
    /// `<dir>/tmp`.
    pub tmpdir: PathBuf,
    /// The node's ports.
    pub ports: NodePorts,
}

impl NodeLayout {
    /// The layout of node `i` under `base_dir`.
    pub fn new(base_dir: &Path, port_base: u16, i: usize) -> Self {
        let name = format!("node{i}");
        let dir = base_dir.join(&name);
        NodeLayout {
            datadir: dir.join("data"),
            cnf: dir.join("my.cnf"),
            socket: dir.join("mariadbd.sock"),
            pid_file: dir.join("mariadbd.pid"),
            error_log: dir.join("error.log"),
            tmpdir: dir.join("tmp"),
            ports: NodePorts::new(port_base, i),
            index: i,
            name,
            dir,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        ClusterSpec::galera(3, "/tmp/tb", 17000)
    }

    #[test]
    fn ports_follow_the_ten_per_node_layout() {
        let s = spec();
        assert_eq!(
            s.layout(2).ports,
            NodePorts {
                sql: 17020,
                repl: 17021,
                ist: 17022,
                sst: 17023
            }
        );
    }

    #[test]
    fn node_zero_bootstraps_and_joiners_list_node_zero_first() {
        let s = spec();
        assert_eq!(s.cluster_address(0), "gcomm://");
        assert_eq!(
            s.cluster_address(1),
            "gcomm://127.0.0.1:17001,127.0.0.1:17021"
        );
        assert_eq!(
            s.cluster_address(2),
            "gcomm://127.0.0.1:17001,127.0.0.1:17011"
        );
        assert_eq!(s.peer_address(0), "gcomm://127.0.0.1:17011,127.0.0.1:17021");
    }

    #[test]
    fn cnf_carries_every_required_setting() {
        let mut s = spec();
        s.provider_options = "gcache.size=64M".into();
        s.extra_cnf.push("max_connections=300".into());
        let c = s.render_cnf(1);
        for want in [
            "datadir=/tmp/tb/node1/data\n",
            "socket=/tmp/tb/node1/mariadbd.sock\n",
            "pid-file=/tmp/tb/node1/mariadbd.pid\n",
            "log-error=/tmp/tb/node1/error.log\n",
            "port=17010\n",
            "binlog_format=ROW\n",
            "innodb_autoinc_lock_mode=2\n",
            "innodb_buffer_pool_size=128M\n",
            "innodb_log_file_size=48M\n",
            "innodb_flush_log_at_trx_commit=2\n",
            "wsrep_on=ON\n",
            "wsrep_provider=/usr/lib/galera/libgalera_smm.so\n",
            "wsrep_cluster_name=trireme\n",
            "wsrep_cluster_address=gcomm://127.0.0.1:17001,127.0.0.1:17021\n",
            "wsrep_node_address=127.0.0.1:17011\n",
            "wsrep_node_name=node1\n",
            "wsrep_provider_options=\"base_port=17011; ist.recv_addr=127.0.0.1:17012; gcache.size=64M\"\n",
            "wsrep_sst_receive_address=127.0.0.1:17013\n",
            "wsrep_sst_method=rsync\n",
            "wsrep_slave_threads=2\n",
            "skip-name-resolve\n",
            "bind-address=127.0.0.1\n",
            "max_connections=300\n",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        // Extra lines come after the generated ones so that they override them.
        assert!(c.find("max_connections").unwrap() > c.find("wsrep_slave_threads").unwrap());
    }

    #[test]
    fn standalone_cnf_differs_only_in_wsrep_on_and_provider() {
        let s = ClusterSpec::standalone("/tmp/tb", 17000);
        assert!(s.is_standalone() && s.validate().is_ok());
        let node = ClusterSpec::new("/x/libp.so", 1, "/tmp/tb", 17000).render_cnf(0);
        let c = s.render_cnf(0);
        let differing: Vec<_> = c
            .lines()
            .zip(node.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            differing,
            vec![
                ("wsrep_on=OFF", "wsrep_on=ON"),
                ("wsrep_provider=none", "wsrep_provider=/x/libp.so")
            ]
        );
        let mut two = ClusterSpec::standalone("/tmp/tb", 17000);
        two.nodes = 2;
        assert!(two.validate().is_err());
    }

    #[test]
    fn netns_nodes_listen_and_are_reached_on_their_namespace_addresses() {
        let mut s = spec();
        s.netns = true;
        assert_eq!(s.cluster_address(0), "gcomm://");
        assert_eq!(
            s.cluster_address(2),
            "gcomm://10.77.0.1:17001,10.77.0.2:17011"
        );
        let c = s.render_cnf(1);
        for want in [
            "bind-address=10.77.0.2\n",
            "wsrep_node_address=10.77.0.2:17011\n",
            "wsrep_node_incoming_address=10.77.0.2:17010\n",
            "wsrep_provider_options=\"base_port=17011; ist.recv_addr=10.77.0.2:17012\"\n",
            "wsrep_sst_receive_address=10.77.0.2:17013\n",
        ] {
            assert!(c.contains(want), "missing {want:?} in\n{c}");
        }
        assert!(!c.contains("127.0.0.1"), "{c}");
    }

    #[test]
    fn provider_options_without_extras_have_no_dangling_separator() {
        assert_eq!(
            spec().provider_options_for(0),
            "base_port=17001; ist.recv_addr=127.0.0.1:17002"
        );
    }

    #[test]
    fn validate_rejects_what_cannot_work() {
        let mut s = spec();
        assert!(s.validate().is_ok());
        s.nodes = 0;
        assert!(s.validate().is_err());
        let mut s = spec();
        s.port_base = 65530;
        assert!(s.validate().is_err());
        let mut s = spec();
        s.base_dir = "relative".into();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.base_dir = PathBuf::from(format!("/tmp/{}", "x".repeat(100)));
        assert!(s.validate().is_err());
        let mut s = spec();
        s.provider_options = "a=\"b\"".into();
        assert!(s.validate().is_err());
    }
}
