//! One local MariaDB node: its process, its SQL, its logs.
//!
//! A `Node` knows the PID of the `mariadbd` it started and signals only that PID. The server is
//! spawned as `setsid <mariadbd> --defaults-file=<cnf>` with the child's uid/gid switched to
//! `mysql` before exec: `setsid` (not being a group leader) calls `setsid(2)` and execs in
//! place, so the PID we spawn *is* the server's PID, it survives the testbed exiting (the CLI
//! leaves clusters running), and terminal signals do not reach it. The pid-file and
//! `/proc/<pid>/comm` are checked against that PID once the server is up.
//!
//! Readiness is polled through SQL: a node is up when `wsrep_ready=ON` and
//! `wsrep_local_state_comment=Synced`. While a joiner receives SST it does not accept
//! connections yet, so connection errors while starting are expected, not failures; the
//! process exiting is a failure, reported with the tail of its error log.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LogTail, Result, TestbedError};
use crate::process::{self, Signal};
use crate::spec::{ClusterSpec, NodeLayout, NodePorts};
use crate::sql::{quote_str, SqlClient};

/// How long to wait for a SIGKILLed server to disappear.
const KILL_WAIT: Duration = Duration::from_secs(30);

/// Readiness queries must not hang on a server that is still starting.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// How a node is (re)started.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// `--wsrep_start_position=<uuid:seqno>`, typically from [`Node::recover_position`].
    pub start_position: Option<String>,
    /// Overrides the `wsrep_cluster_address` of `my.cnf` (e.g. to rejoin node 0, whose
    /// `my.cnf` says `gcomm://`, to a cluster that is still running).
    pub cluster_address: Option<String>,
    /// Adds `--wsrep-new-cluster` (bootstrap from this node).
    pub new_cluster: bool,
    /// Return as soon as the process is spawned instead of waiting for Synced.
    pub no_wait: bool,
    /// More `--option=value` arguments for this start only.
    pub extra_args: Vec<String>,
}

/// One MariaDB server of a cluster.
#[derive(Debug)]
pub struct Node {
    layout: NodeLayout,
    mariadbd: PathBuf,
    start_timeout: Duration,
    stop_timeout: Duration,
    client: SqlClient,
    mysql: (u32, u32),
    /// wsrep off ([`ClusterSpec::standalone`]): ready as soon as it answers SQL.
    standalone: bool,
    /// The network namespace the server runs in ([`ClusterSpec::netns`]), entered by path.
    netns: Option<PathBuf>,
    /// [`ClusterSpec::script_dir`].
    script_dir: Option<PathBuf>,
    /// The PID of the running server, if any.
    pid: Option<u32>,
    /// Set when this process spawned the server: reaping through it is the only reliable way to
    /// see our own child exit (an unreaped child lingers as a zombie in `/proc`).
    child: Option<Child>,
}

impl Node {
    pub(crate) fn new(spec: &ClusterSpec, i: usize, mysql: (u32, u32)) -> Self {
        let layout = spec.layout(i);
        Node {
            client: SqlClient::new(layout.name.clone(), layout.socket.clone(), spec.sql_timeout),
            layout,
            mariadbd: spec.mariadbd.clone(),
            start_timeout: spec.start_timeout,
            stop_timeout: spec.stop_timeout,
            mysql,
            standalone: spec.is_standalone(),
            netns: None,
            script_dir: spec.script_dir.clone(),
            pid: None,
            child: None,
        }
    }

    /// A node started by another process (the CLI's `up`), known by its PID. It is verified to
    /// be a `mariadbd` using this node's `my.cnf` before it is ever signalled.
    pub(crate) fn attached(
        spec: &ClusterSpec,
        i: usize,
        mysql: (u32, u32),
        pid: Option<u32>,
    ) -> Self {
        let mut n = Node::new(spec, i, mysql);
        n.pid = pid.filter(|&p| process::verify_ours(&n.layout.name, p, &n.layout.cnf).is_ok());
        n
    }

    /// Runs this node's server (and `--wsrep-recover`) inside the network namespace mounted
    /// at `netns`.
    pub(crate) fn set_netns(&mut self, netns: PathBuf) {
        self.netns = Some(netns);
    }

    /// `node<i>`.
    pub fn name(&self) -> &str {
        &self.layout.name
    }

    /// Index in the cluster.
    pub fn index(&self) -> usize {
        self.layout.index
    }

    /// Paths and ports.
    pub fn layout(&self) -> &NodeLayout {
        &self.layout
    }

    /// The node's ports.
    pub fn ports(&self) -> NodePorts {
        self.layout.ports
    }

    /// The node's Unix socket.
    pub fn socket(&self) -> &Path {
        &self.layout.socket
    }

    /// The SQL client this node uses (cloneable, e.g. to query from another thread).
    pub fn client(&self) -> &SqlClient {
        &self.client
    }

    /// The PID of the server this testbed started, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid.filter(|&p| process::alive(p))
    }

    /// Whether the server process is alive (a frozen, SIGSTOPped server counts as alive).
    pub fn is_running(&self) -> bool {
        self.pid().is_some()
    }

    // ---------------------------------------------------------------- SQL

    /// Runs `query` and returns its rows (see [`SqlClient::query`]).
    pub fn sql(&self, query: &str) -> Result<Vec<Vec<String>>> {
        self.client.query(query)
    }

    /// Runs statements whose result does not matter.
    pub fn exec(&self, query: &str) -> Result<()> {
        self.client.query(query).map(|_| ())
    }

    /// The first column of the first row, if any.
    pub fn sql_value(&self, query: &str) -> Result<Option<String>> {
        Ok(self
            .client
            .query(query)?
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next()))
    }

    /// `SHOW GLOBAL STATUS LIKE 'wsrep%'` as a map.
    pub fn status(&self) -> Result<BTreeMap<String, String>> {
        self.status_matching("LIKE 'wsrep%'")
    }

    /// One global status variable (exact name, any prefix).
    pub fn status_var(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .status_matching(&format!("WHERE Variable_name = {}", quote_str(name)))?
            .remove(name))
    }

    fn status_matching(&self, filter: &str) -> Result<BTreeMap<String, String>> {
        let rows = self.sql(&format!("SHOW GLOBAL STATUS {filter}"))?;
        Ok(pairs(rows))
    }

    /// One global server variable (`SHOW GLOBAL VARIABLES`, exact name), `None` if unknown.
    pub fn variable(&self, name: &str) -> Result<Option<String>> {
        let rows = self.sql(&format!(
            "SHOW GLOBAL VARIABLES WHERE Variable_name = {}",
            quote_str(name)
        ))?;
        Ok(pairs(rows).remove(name))
    }

    /// `wsrep_last_committed` as a number.
    pub fn last_committed(&self) -> Result<i64> {
        let v = self.status_var("wsrep_last_committed")?.unwrap_or_default();
        v.parse().map_err(|_| TestbedError::Parse {
            node: self.name().into(),
            what: "wsrep_last_committed".into(),
            detail: format!("{v:?} is not a number"),
        })
    }

    // ---------------------------------------------------------------- lifecycle

    /// Spawns the server and, unless `opts.no_wait`, waits until it is Synced.
    pub fn start_with(&mut self, opts: &StartOptions) -> Result<()> {
        if let Some(pid) = self.pid() {
            return Err(TestbedError::StillRunning {
                node: self.name().into(),
                pid,
                during: "start".into(),
            });
        }
        // Reap a previous server that exited on its own, so it does not linger as a zombie.
        if let Some(mut old) = self.child.take() {
            let _ = old.try_wait();
        }
        self.pid = None;
        let name = self.name().to_string();
        // A stale pid-file would let us mistake the previous server for the new one.
        match std::fs::remove_file(&self.layout.pid_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(TestbedError::io(&name, "remove stale pid-file", e)),
        }
        // Output written before the error log is opened (bad options, loader failures) lands
        // here instead of being lost.
        let console = self.layout.dir.join("mariadbd.console");
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&console)
            .map_err(|e| TestbedError::io(&name, format!("open {}", console.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| TestbedError::io(&name, "dup console file", e))?;

        let mut cmd = self.server_command("/usr/bin/setsid");
        cmd.arg(&self.mariadbd)
            .arg(format!("--defaults-file={}", self.layout.cnf.display()));
        if let Some(addr) = &opts.cluster_address {
            cmd.arg(format!("--wsrep_cluster_address={addr}"));
        }
        if let Some(pos) = &opts.start_position {
            cmd.arg(format!("--wsrep_start_position={pos}"));
        }
        if opts.new_cluster {
            cmd.arg("--wsrep-new-cluster");
        }
        cmd.args(&opts.extra_args);
        self.as_mysql(&mut cmd);
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let line = process::describe(&cmd);
        log::info!("{name}: starting `{line}`");
        let child = cmd
            .spawn()
            .map_err(|e| TestbedError::io(&name, format!("spawn `{line}`"), e))?;
        self.pid = Some(child.id());
        self.child = Some(child);
        if opts.no_wait {
            return Ok(());
        }
        self.wait_synced(self.start_timeout)
    }

    /// Starts the server again after [`Node::stop`] or [`Node::kill9`], with
    /// `--wsrep_start_position` when given, and waits until it is Synced. The cluster address
    /// is the one in `my.cnf`: for node 0 that bootstraps a new primary component, so to rejoin
    /// node 0 to a running cluster use [`crate::Cluster::restart_node`] (or
    /// [`Node::start_with`] with a `cluster_address`).
    pub fn restart(&mut self, start_position: Option<&str>) -> Result<()> {
        self.start_with(&StartOptions {
            start_position: start_position.map(str::to_string),
            ..StartOptions::default()
        })
    }

    /// Waits until `wsrep_ready=ON` and `wsrep_local_state_comment=Synced` (a standalone
    /// server: until it answers SQL).
    pub fn wait_synced(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut last = String::from("no answer yet");
        let mut pid_checked = false;
        loop {
            self.check_still_running("startup")?;
            if !pid_checked {
                pid_checked = self.check_pid_file()?;
            }
            if pid_checked {
                match self.probe_ready() {
                    Ok((true, _)) => {
                        log::info!("{}: Synced after {:?}", self.name(), start.elapsed());
                        return Ok(());
                    }
                    Ok((false, seen)) => last = seen,
                    Err(e) => last = e.to_string(),
                }
            }
            if start.elapsed() >= timeout {
                return Err(self.timeout_error("wsrep_ready=ON and Synced", start.elapsed(), last));
            }
            thread::sleep(process::POLL * 2);
        }
    }

    /// Polls `check` (which sees the wsrep status map) until it returns true.
    pub fn wait_status(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&BTreeMap<String, String>) -> bool,
    ) -> Result<()> {
        let start = Instant::now();
        loop {
            self.check_still_running(what)?;
            let last = match self.status() {
                Ok(st) if check(&st) => return Ok(()),
                Ok(st) => summary(&st),
                Err(e) => e.to_string(),
            };
            if start.elapsed() >= timeout {
                return Err(self.timeout_error(what, start.elapsed(), last));
            }
            thread::sleep(process::POLL * 2);
        }
    }

    /// Returns (ready, what was seen).
    fn probe_ready(&self) -> Result<(bool, String)> {
        let probe = SqlClient::new(self.name(), self.socket(), PROBE_TIMEOUT);
        if self.standalone {
            probe.query("SELECT 1")?;
            return Ok((true, "standalone, answering SQL".into()));
        }
        let st = pairs(probe.query(
            "SHOW GLOBAL STATUS WHERE Variable_name IN \
             ('wsrep_ready','wsrep_local_state_comment','wsrep_cluster_status')",
        )?);
        let ready = st.get("wsrep_ready").map(String::as_str) == Some("ON")
            && st.get("wsrep_local_state_comment").map(String::as_str) == Some("Synced");
        Ok((ready, summary(&st)))
    }

    /// Once the server has written its pid-file, checks that it names the process we spawned
    /// and that this process is now `mariadbd` (not still `setsid`). Returns whether the check
    /// could be made yet.
    fn check_pid_file(&self) -> Result<bool> {
        let Some(pid) = self.pid else {
            return Ok(false);
        };
        let Ok(text) = std::fs::read_to_string(&self.layout.pid_file) else {
            return Ok(false);
        };
        let Ok(file_pid) = text.trim().parse::<u32>() else {
            return Ok(false); // being written
        };
        if file_pid != pid {
            return Err(TestbedError::NotOurProcess {
                node: self.name().into(),
                pid: file_pid,
                detail: format!(
                    "{} names pid {file_pid} but we spawned {pid}",
                    self.layout.pid_file.display()
                ),
            });
        }
        process::verify_ours(self.name(), pid, &self.layout.cnf)?;
        Ok(true)
    }

    /// Fails with the error-log tail if the server we started has exited.
    fn check_still_running(&mut self, during: &str) -> Result<()> {
        let Some(pid) = self.pid else {
            return Err(TestbedError::NotRunning {
                node: self.name().into(),
                during: during.into(),
            });
        };
        let exited = match self.child.as_mut() {
            Some(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
            None => (!process::alive(pid)).then(|| "gone".to_string()),
        };
        match exited {
            None => Ok(()),
            Some(status) => {
                self.pid = None;
                self.child = None;
                Err(TestbedError::ServerExited {
                    node: self.name().into(),
                    pid,
                    status,
                    during: during.into(),
                    log: self.log_tail(),
                })
            }
        }
    }

    /// Asks for a clean shutdown (SIGTERM to our PID) and waits for the process to exit.
    /// Returns how long the shutdown took; fails (leaving the process running) if it took
    /// longer than the spec's `stop_timeout`.
    pub fn stop(&mut self) -> Result<Duration> {
        self.stop_within(self.stop_timeout)
    }

    /// [`Node::stop`] with an explicit timeout.
    pub fn stop_within(&mut self, timeout: Duration) -> Result<Duration> {
        let pid = self.our_pid("stop")?;
        // A frozen server would never act on SIGTERM.
        process::send_signal(self.name(), pid, Signal::Cont)?;
        process::send_signal(self.name(), pid, Signal::Term)?;
        let start = Instant::now();
        if self.wait_exit(pid, timeout) {
            let took = start.elapsed();
            log::info!("{}: stopped in {took:?}", self.name());
            Ok(took)
        } else {
            Err(self.timeout_error(
                "exit after SIGTERM",
                start.elapsed(),
                format!("pid {pid} still running"),
            ))
        }
    }

    /// Crashes the server (SIGKILL to our PID) and waits until it is gone.
    pub fn kill9(&mut self) -> Result<()> {
        let pid = self.our_pid("kill -9")?;
        process::send_signal(self.name(), pid, Signal::Kill)?;
        if self.wait_exit(pid, KILL_WAIT) {
            Ok(())
        } else {
            Err(self.timeout_error(
                "exit after SIGKILL",
                KILL_WAIT,
                format!("pid {pid} still there"),
            ))
        }
    }

    /// Freezes the server (SIGSTOP): peers see it go silent, as with a hung machine.
    pub fn sigstop(&mut self) -> Result<()> {
        let pid = self.our_pid("SIGSTOP")?;
        process::send_signal(self.name(), pid, Signal::Stop)
    }

    /// Thaws a frozen server (SIGCONT).
    pub fn sigcont(&mut self) -> Result<()> {
        let pid = self.our_pid("SIGCONT")?;
        process::send_signal(self.name(), pid, Signal::Cont)
    }

    /// The PID to signal, after making sure it is still the server we started.
    fn our_pid(&mut self, during: &str) -> Result<u32> {
        self.check_still_running(during)?;
        let pid = self.pid.ok_or_else(|| TestbedError::NotRunning {
            node: self.name().into(),
            during: during.into(),
        })?;
        if self.child.is_none() {
            // Not our child: it could have been replaced since the state file was written.
            process::verify_ours(self.name(), pid, &self.layout.cnf)?;
        }
        Ok(pid)
    }

    /// Waits for `pid` to exit, reaping it if it is our child. Clears the PID on success.
    fn wait_exit(&mut self, pid: u32, timeout: Duration) -> bool {
        let gone = match self.child.as_mut() {
            Some(child) => process::wait_child(child, timeout).is_some(),
            None => process::wait_gone(pid, timeout),
        };
        if gone {
            self.pid = None;
            self.child = None;
        }
        gone
    }

    /// Stops the server however it takes: SIGTERM, then SIGKILL after `timeout`. Used when
    /// tearing down; errors are logged, not returned, because there is nobody left to handle
    /// them.
    pub(crate) fn shut_down(&mut self, timeout: Duration) {
        if self.pid.is_none() {
            return;
        }
        match self.stop_within(timeout) {
            Ok(_) => {}
            Err(TestbedError::NotRunning { .. }) | Err(TestbedError::ServerExited { .. }) => {}
            Err(e) => {
                log::warn!("{}: clean stop failed ({e}); sending SIGKILL", self.name());
                if let Err(e) = self.kill9() {
                    log::error!("{}: SIGKILL failed: {e}", self.name());
                }
            }
        }
    }

    /// Runs `mariadbd --wsrep-recover` (as `mysql`, on this node's `my.cnf`) on the stopped
    /// node and returns the `uuid:seqno` it reports: what InnoDB really committed, which after
    /// a `kill -9` is the only trustworthy position (`grastate.dat` then says seqno -1).
    pub fn recover_position(&self) -> Result<String> {
        if let Some(pid) = self.pid() {
            return Err(TestbedError::StillRunning {
                node: self.name().into(),
                pid,
                during: "--wsrep-recover".into(),
            });
        }
        let mut cmd = self.server_command(&self.mariadbd);
        // Like galera_recovery: the log goes to stderr, which we capture and parse.
        cmd.arg(format!("--defaults-file={}", self.layout.cnf.display()))
            .arg("--wsrep-recover")
            .arg("--disable-log-error");
        self.as_mysql(&mut cmd);
        let out = process::run_checked(self.name(), cmd, self.start_timeout)?;
        let text = format!("{}{}", out.stderr, out.stdout);
        // Keep a copy next to the error log: it is the evidence when a restart goes wrong.
        let _ = std::fs::write(self.layout.dir.join("wsrep-recover.log"), &text);
        parse_recovered_position(&text).ok_or_else(|| TestbedError::Recover {
            node: self.name().into(),
            output: process::last_lines(&text, 30),
        })
    }

    /// Marks this node's `grastate.dat` safe to bootstrap from. Galera refuses to bootstrap
    /// (`gcomm://`) from a node that did not leave the primary component last, which after a
    /// crash of the whole cluster is every node; this is the documented manual override.
    pub fn set_safe_to_bootstrap(&self) -> Result<()> {
        let path = self.layout.datadir.join("grastate.dat");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| TestbedError::io(self.name(), format!("read {}", path.display()), e))?;
        let fixed: String = text
            .lines()
            .map(|l| {
                if l.starts_with("safe_to_bootstrap:") {
                    "safe_to_bootstrap: 1".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n";
        std::fs::write(&path, fixed)
            .map_err(|e| TestbedError::io(self.name(), format!("write {}", path.display()), e))
    }

    /// The last `n` lines of the node's error log (empty if there is none yet).
    pub fn error_log_tail(&self, n: usize) -> String {
        match std::fs::read(&self.layout.error_log) {
            Ok(bytes) => process::last_lines(&String::from_utf8_lossy(&bytes), n),
            Err(e) => format!("(cannot read {}: {e})", self.layout.error_log.display()),
        }
    }

    /// One line describing the node: name, pid, state, cluster status and size, last
    /// committed seqno, ready/connected, provider.
    pub fn status_line(&self) -> String {
        let pid = match self.pid() {
            Some(p) => p.to_string(),
            None => return format!("{} pid=- port={} down", self.name(), self.ports().sql),
        };
        match self.status() {
            Ok(st) => {
                let g = |k: &str| st.get(k).map(String::as_str).unwrap_or("?").to_string();
                format!(
                    "{} pid={pid} port={} state={} cluster={} size={} last_committed={} \
                     ready={} connected={} provider={} {}",
                    self.name(),
                    self.ports().sql,
                    g("wsrep_local_state_comment"),
                    g("wsrep_cluster_status"),
                    g("wsrep_cluster_size"),
                    g("wsrep_last_committed"),
                    g("wsrep_ready"),
                    g("wsrep_connected"),
                    g("wsrep_provider_name"),
                    g("wsrep_provider_version"),
                )
            }
            Err(e) => format!(
                "{} pid={pid} port={} unreachable: {}",
                self.name(),
                self.ports().sql,
                e.to_string().replace('\n', " ")
            ),
        }
    }

    // ---------------------------------------------------------------- helpers

    /// Makes `cmd` run as `mysql` with a small, explicit environment: servers must not run as
    /// root (rsync SST drops to `nobody` and then cannot write a root-owned datadir), and the
    /// SST scripts they spawn should not inherit the test runner's environment.
    fn as_mysql(&self, cmd: &mut Command) {
        if self.netns.is_none() {
            // In a namespace, `nsenter` switches after entering (see `server_command`).
            cmd.uid(self.mysql.0).gid(self.mysql.1);
        }
        let system_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        let path = match &self.script_dir {
            Some(dir) => format!("{}:{system_path}", dir.display()),
            None => system_path.to_string(),
        };
        cmd.current_dir(&self.layout.dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.layout.dir)
            .env("USER", "mysql")
            .env("LOGNAME", "mysql")
            .env("LC_ALL", "C")
            .env("TMPDIR", &self.layout.tmpdir);
    }

    /// A command for `program` that [`Node::as_mysql`] then completes: plain, or entering the
    /// node's network namespace first (then as `mysql` through `nsenter`, which execs in
    /// place, so the PID spawned is still the server's).
    fn server_command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match &self.netns {
            Some(ns) => {
                crate::netns::Network::server_command(ns, self.mysql.0, self.mysql.1, program)
            }
            None => Command::new(program),
        }
    }

    fn timeout_error(&self, what: &str, waited: Duration, last: String) -> TestbedError {
        TestbedError::Timeout {
            node: self.name().into(),
            what: what.into(),
            waited,
            last,
            log: self.log_tail(),
        }
    }

    /// The evidence attached to startup and shutdown errors.
    fn log_tail(&self) -> Box<LogTail> {
        Box::new(LogTail {
            path: self.layout.error_log.clone(),
            tail: self.error_log_tail(40),
        })
    }
}

/// Two-column rows as a map.
fn pairs(rows: Vec<Vec<String>>) -> BTreeMap<String, String> {
    rows.into_iter()
        .filter_map(|mut r| {
            if r.len() >= 2 {
                let v = r.swap_remove(1);
                Some((r.swap_remove(0), v))
            } else {
                None
            }
        })
        .collect()
}

/// The interesting part of a wsrep status map, for error messages.
fn summary(st: &BTreeMap<String, String>) -> String {
    [
        "wsrep_local_state_comment",
        "wsrep_cluster_status",
        "wsrep_ready",
        "wsrep_cluster_size",
    ]
    .iter()
    .filter_map(|k| st.get(*k).map(|v| format!("{k}={v}")))
    .collect::<Vec<_>>()
    .join(" ")
}

/// The `uuid:seqno` of the last `WSREP: Recovered position: ...` line.
pub fn parse_recovered_position(log: &str) -> Option<String> {
    const MARK: &str = "WSREP: Recovered position:";
    log.lines()
        .filter_map(|l| {
            l.find(MARK)
                .map(|at| l[at + MARK.len()..].trim().to_string())
        })
        .rfind(|p| !p.is_empty())
}

/// A `uuid:seqno` position split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsrepPosition {
    /// The history (cluster state) UUID.
    pub uuid: String,
    /// The last committed seqno (-1 when undefined).
    pub seqno: i64,
}

impl WsrepPosition {
    /// Parses `uuid:seqno` (the seqno may be followed by a `,gtid` suffix, which is ignored).
    pub fn parse(s: &str) -> Option<WsrepPosition> {
        let (uuid, rest) = s.trim().split_once(':')?;
        let seqno = rest.split(',').next()?.trim().parse().ok()?;
        let valid_uuid =
            uuid.len() == 36 && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        valid_uuid.then(|| WsrepPosition {
            uuid: uuid.to_string(),
            seqno,
        })
    }
}

impl std::fmt::Display for WsrepPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uuid, self.seqno)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovered_position_is_read_from_the_last_matching_line() {
        let log = "2025-01-01  0:00:00 0 [Note] InnoDB: Starting\n\
                   2025-01-01  0:00:01 0 [Note] WSREP: Recovered position: 11111111-2222-3333-4444-555555555555:7\n\
                   2025-01-01  0:00:02 0 [Note] WSREP: Recovered position: 11111111-2222-3333-4444-555555555555:9\n";
        assert_eq!(
            parse_recovered_position(log).as_deref(),
            Some("11111111-2222-3333-4444-555555555555:9")
        );
        assert_eq!(parse_recovered_position("no such line"), None);
    }

    #[test]
    fn positions_parse_and_print_as_uuid_colon_seqno() {
        let p = WsrepPosition::parse("11111111-2222-3333-4444-555555555555:-1").unwrap();
        assert_eq!(p.seqno, -1);
        assert_eq!(p.to_string(), "11111111-2222-3333-4444-555555555555:-1");
        assert!(WsrepPosition::parse("nonsense:3").is_none());
        assert!(WsrepPosition::parse("11111111-2222-3333-4444-555555555555").is_none());
    }

    #[test]
    fn status_rows_become_a_map() {
        let m = pairs(vec![
            vec!["wsrep_ready".into(), "ON".into()],
            vec!["odd".into()],
        ]);
        assert_eq!(m.get("wsrep_ready").map(String::as_str), Some("ON"));
        assert_eq!(m.len(), 1);
    }
}
