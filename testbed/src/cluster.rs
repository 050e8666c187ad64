//! A local cluster: build the nodes' directories, start node 0, then each joiner once the
//! previous node is Synced, and stop everything we started when dropped.
//!
//! Joiners are started one at a time because a joiner with a fresh datadir needs a full SST
//! from a Synced donor; two joiners at once would queue behind each other anyway and make
//! failures harder to attribute.
//!
//! The cluster writes a state file (`cluster.state`, see [`crate::state`]) into the base dir
//! after every change of PIDs, so that a cluster left behind (by the CLI on purpose, or by a
//! test process that was killed) can be found and stopped by PID with `trireme-testbed down`.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Result, TestbedError};
use crate::netns::Network;
use crate::node::{Node, StartOptions};
use crate::process;
use crate::spec::ClusterSpec;
use crate::state::{self, ClusterState};

/// The installer Debian's `mariadb-server` ships.
pub const INSTALL_DB: &str = "/usr/bin/mariadb-install-db";

/// A running local cluster.
#[derive(Debug)]
pub struct Cluster {
    spec: ClusterSpec,
    nodes: Vec<Node>,
    keep: bool,
    /// The nodes' network namespaces ([`ClusterSpec::netns`]). Declared after `nodes`, and
    /// `Drop` stops the servers first, so the namespaces go once nobody uses them.
    network: Option<Network>,
}

impl Cluster {
    /// Builds fresh datadirs for `spec.nodes` nodes under `spec.base_dir` and starts them:
    /// node 0 bootstraps, each joiner starts after the previous node is Synced. On failure the
    /// nodes already started are stopped again (by `Drop`) and the error names the node.
    pub fn start(spec: ClusterSpec) -> Result<Cluster> {
        spec.validate()?;
        refuse_running_cluster(&spec)?;
        let mysql = preflight(&spec)?;
        prepare_base_dir(&spec)?;
        let network = if spec.netns {
            Some(Network::create(spec.nodes)?)
        } else {
            None
        };
        let mut nodes: Vec<Node> = (0..spec.nodes)
            .map(|i| Node::new(&spec, i, mysql))
            .collect();
        if let Some(net) = &network {
            for (i, node) in nodes.iter_mut().enumerate() {
                node.set_netns(net.node_netns_path(i));
            }
        }
        let mut cluster = Cluster {
            nodes,
            spec,
            keep: false,
            network,
        };
        for i in 0..cluster.spec.nodes {
            cluster.init_node(i, mysql)?;
        }
        for i in 0..cluster.nodes.len() {
            let started = cluster.nodes[i].start_with(&StartOptions {
                no_wait: true,
                ..StartOptions::default()
            });
            // Record the PID before waiting, so a cluster whose start hangs can still be
            // stopped with `trireme-testbed down` if this process dies.
            cluster.write_state()?;
            started?;
            let timeout = cluster.spec.start_timeout;
            cluster.nodes[i].wait_synced(timeout)?;
        }
        Ok(cluster)
    }

    /// Re-opens a cluster started by another process (e.g. `trireme-testbed up`) from the state
    /// file in `base_dir`. The result is marked [`Cluster::keep`]: dropping it stops nothing.
    pub fn attach(base_dir: &Path) -> Result<Cluster> {
        let st = ClusterState::read(&state::path(base_dir))?;
        let mysql = mysql_account()?;
        let spec = st.spec(base_dir);
        let nodes = (0..spec.nodes)
            .map(|i| Node::attached(&spec, i, mysql, st.pids.get(i).copied().flatten()))
            .collect();
        Ok(Cluster {
            spec,
            nodes,
            keep: true,
            network: None,
        })
    }

    /// The spec this cluster was started from.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// All nodes, in index order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// All nodes, mutably (to stop, kill or restart them).
    pub fn nodes_mut(&mut self) -> &mut [Node] {
        &mut self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Result<&Node> {
        let n = self.nodes.len();
        self.nodes
            .get(i)
            .ok_or(TestbedError::NoSuchNode { index: i, nodes: n })
    }

    /// Node `i`, mutably.
    pub fn node_mut(&mut self, i: usize) -> Result<&mut Node> {
        let n = self.nodes.len();
        self.nodes
            .get_mut(i)
            .ok_or(TestbedError::NoSuchNode { index: i, nodes: n })
    }

    /// Leave the servers running when this value is dropped (the CLI's `up`), and their
    /// network namespaces in place.
    pub fn keep(&mut self) {
        self.keep = true;
        if let Some(net) = &mut self.network {
            net.keep();
        }
    }

    /// The nodes' network namespaces, when the spec asked for them ([`ClusterSpec::netns`]):
    /// cut, split and heal the network with it.
    pub fn network(&self) -> Option<&Network> {
        self.network.as_ref()
    }

    /// One [`Node::status_line`] per node.
    pub fn status_lines(&self) -> Vec<String> {
        self.nodes.iter().map(Node::status_line).collect()
    }

    /// Restarts node `i` (after a stop or a kill -9) and waits until it is Synced. If another
    /// node is running, node `i` rejoins through the running ones (IST when the donor's cache
    /// still has what it missed), whatever its `my.cnf` says; otherwise it starts from its
    /// `my.cnf` (node 0 bootstraps).
    pub fn restart_node(&mut self, i: usize, start_position: Option<&str>) -> Result<()> {
        self.restart_node_with(i, start_position, Vec::new())
    }

    /// `restart_node` with more `--option=value` arguments for this start (e.g. other
    /// provider options for one node).
    pub fn restart_node_with(
        &mut self,
        i: usize,
        start_position: Option<&str>,
        extra_args: Vec<String>,
    ) -> Result<()> {
        self.node(i)?;
        let others_up = self.nodes.iter().any(|n| n.index() != i && n.is_running());
        let opts = StartOptions {
            start_position: start_position.map(str::to_string),
            cluster_address: others_up.then(|| self.spec.peer_address(i)),
            extra_args,
            ..StartOptions::default()
        };
        let started = self.nodes[i].start_with(&StartOptions {
            no_wait: true,
            ..opts
        });
        self.write_state()?;
        started?;
        let timeout = self.spec.start_timeout;
        self.nodes[i].wait_synced(timeout)
    }

    /// Stops every running node cleanly, last node first (so node 0, which leaves the primary
    /// component last, is the one marked safe to bootstrap). Returns each node's shutdown time
    /// (`None` for nodes that were not running).
    pub fn stop_all(&mut self) -> Result<Vec<Option<Duration>>> {
        let mut took = vec![None; self.nodes.len()];
        let mut first_err = None;
        for (i, node) in self.nodes.iter_mut().enumerate().rev() {
            if node.pid().is_none() {
                continue;
            }
            match node.stop() {
                Ok(d) => took[i] = Some(d),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        self.write_state()?;
        match first_err {
            Some(e) => Err(e),
            None => Ok(took),
        }
    }

    /// Writes the state file (`<base_dir>/cluster.state`) and returns its path.
    pub fn write_state(&self) -> Result<PathBuf> {
        let st = ClusterState::of(&self.spec, self.nodes.iter().map(Node::pid).collect());
        let path = state::path(&self.spec.base_dir);
        st.write(&path)?;
        Ok(path)
    }

    /// Runs `mariadb-install-db` for node `i` and writes its `my.cnf`.
    fn init_node(&self, i: usize, mysql: (u32, u32)) -> Result<()> {
        let l = self.spec.layout(i);
        let name = l.name.as_str();
        for dir in [&l.dir, &l.tmpdir] {
            std::fs::create_dir_all(dir)
                .map_err(|e| TestbedError::io(name, format!("create {}", dir.display()), e))?;
        }
        // The bootstrap server runs as mysql and writes into the node's tmpdir.
        process::chown_tree(name, &l.dir, mysql.0, mysql.1)?;
        let mut cmd = Command::new(INSTALL_DB);
        // --no-defaults first: /etc/mysql must not leak in. The InnoDB sizes match my.cnf so
        // the first start does not have to resize the redo log.
        cmd.arg("--no-defaults")
            .arg("--user=mysql")
            .arg(format!("--datadir={}", l.datadir.display()))
            .arg("--skip-test-db")
            // Concurrent installs sharing /tmp collide on temporary table names and fail
            // ("Unknown table 'mysql.tmp_user_sys'"): give each node its own.
            .arg(format!("--tmpdir={}", l.tmpdir.display()))
            .arg("--auth-root-authentication-method=socket")
            .arg(format!(
                "--innodb-log-file-size={}",
                self.spec.innodb_log_file_size
            ))
            .arg(format!(
                "--innodb-buffer-pool-size={}",
                self.spec.innodb_buffer_pool_size
            ))
            .current_dir(&l.dir);
        let out = process::run_checked(name, cmd, Duration::from_secs(300))?;
        let _ = std::fs::write(l.dir.join("install-db.log"), out.stdout + &out.stderr);
        std::fs::write(&l.cnf, self.spec.render_cnf(i))
            .map_err(|e| TestbedError::io(name, format!("write {}", l.cnf.display()), e))?;
        // install-db leaves some root-owned files (mysql_upgrade_info, the datadir's group).
        process::chown_tree(name, &l.dir, mysql.0, mysql.1)?;
        let mut cmd = Command::new("/usr/bin/test");
        cmd.arg("-w").arg(&l.datadir).uid(mysql.0).gid(mysql.1);
        if process::run_checked(name, cmd, Duration::from_secs(10)).is_err() {
            return Err(TestbedError::Prerequisite(format!(
                "user mysql cannot write {} (is a parent of the base dir private?)",
                l.datadir.display()
            )));
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let timeout = self.spec.stop_timeout;
        for node in self.nodes.iter_mut().rev() {
            node.shut_down(timeout);
        }
        if self.nodes.iter().all(|n| n.pid().is_none()) {
            let _ = std::fs::remove_file(state::path(&self.spec.base_dir));
        } else {
            let _ = self.write_state();
        }
    }
}

/// Why this machine cannot run the testbed, if it cannot: not root, or a binary, the provider
/// or the `mysql` account missing. Tests use it to skip loudly instead of failing.
pub fn missing_prerequisite(provider: &Path) -> Option<String> {
    if process::effective_uid() != Some(0) {
        return Some("the testbed must run as root (it starts servers as user mysql)".into());
    }
    for bin in [
        crate::spec::MARIADBD,
        INSTALL_DB,
        crate::sql::MARIADB_CLIENT,
        "/usr/bin/setsid",
        "/usr/bin/kill",
    ] {
        if !Path::new(bin).exists() {
            return Some(format!("{bin} is not installed"));
        }
    }
    if provider.as_os_str() != crate::spec::NO_PROVIDER && !provider.exists() {
        return Some(format!(
            "wsrep provider {} does not exist",
            provider.display()
        ));
    }
    if process::account("mysql").is_none() {
        return Some("there is no `mysql` user".into());
    }
    None
}

fn mysql_account() -> Result<(u32, u32)> {
    process::account("mysql")
        .ok_or_else(|| TestbedError::Prerequisite("there is no `mysql` user in /etc/passwd".into()))
}

/// Checks the machine before touching anything: root, binaries, the provider readable by
/// `mysql` (a provider under a private directory would fail deep inside mariadbd's startup),
/// and free ports.
fn preflight(spec: &ClusterSpec) -> Result<(u32, u32)> {
    if let Some(why) = missing_prerequisite(&spec.provider) {
        return Err(TestbedError::Prerequisite(why));
    }
    let mysql = mysql_account()?;
    let mut cmd = Command::new("/usr/bin/test");
    cmd.arg("-r").arg(&spec.provider).uid(mysql.0).gid(mysql.1);
    if !spec.is_standalone()
        && process::run_checked("testbed", cmd, Duration::from_secs(10)).is_err()
    {
        return Err(TestbedError::Prerequisite(format!(
            "user mysql cannot read the provider {}",
            spec.provider.display()
        )));
    }
    // In network namespaces every node has its own ports; the root namespace's do not matter.
    for i in (0..spec.nodes).filter(|_| !spec.netns) {
        let l = spec.layout(i);
        for port in l.ports.all() {
            if let Err(e) = TcpListener::bind(("127.0.0.1", port)) {
                return Err(TestbedError::Spec(format!(
                    "{}: port {port} is not free ({e}); choose another port_base",
                    l.name
                )));
            }
        }
    }
    Ok(mysql)
}

/// Refuses to build over a previous cluster recorded in `base_dir` that is still running
/// (its datadirs are about to be wiped).
fn refuse_running_cluster(spec: &ClusterSpec) -> Result<()> {
    let base = &spec.base_dir;
    let Ok(old) = ClusterState::read(&state::path(base)) else {
        return Ok(());
    };
    let old_spec = old.spec(base);
    for (i, pid) in old.pids.iter().enumerate() {
        let Some(pid) = *pid else { continue };
        if process::verify_ours("testbed", pid, &old_spec.layout(i).cnf).is_ok() {
            return Err(TestbedError::StillRunning {
                node: format!("node{i}"),
                pid,
                during: format!(
                    "a new cluster in {} (stop the old one with `trireme-testbed down --base-dir {}`)",
                    base.display(),
                    base.display()
                ),
            });
        }
    }
    Ok(())
}

/// Makes `base_dir` ready for a fresh cluster: removes the state file and the `node<i>`
/// directories this spec will use (nothing else).
fn prepare_base_dir(spec: &ClusterSpec) -> Result<()> {
    let base = &spec.base_dir;
    let state_path = state::path(base);
    std::fs::create_dir_all(base)
        .map_err(|e| TestbedError::io("testbed", format!("create {}", base.display()), e))?;
    let _ = std::fs::remove_file(&state_path);
    for i in 0..spec.nodes {
        let dir = spec.layout(i).dir;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(TestbedError::io(
                    &format!("node{i}"),
                    format!("remove old {}", dir.display()),
                    e,
                ))
            }
        }
    }
    Ok(())
}
