//! What is benchmarked: a local cluster the harness starts through the testbed (one per
//! provider, identical `my.cnf` but for `wsrep_provider`), a local standalone server (the
//! baseline for commit latency), or the user's own hosts given by address.

use std::path::{Path, PathBuf};

use trireme_testbed::{checksum_all, differences, Cluster, ClusterSpec};

use crate::db::{self, Endpoint};
use crate::error::PerfError;

/// Settings shared by every local server the harness starts, so that the providers differ in
/// nothing but the library they load.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Parent of each target's base dir (`<base>/<label>`).
    pub base_dir: PathBuf,
    pub nodes: usize,
    pub slave_threads: u32,
    pub buffer_pool: String,
    /// Extra `wsrep_provider_options`, the same for both providers.
    pub provider_options: String,
    /// Extra `my.cnf` lines, the same for every server.
    pub extra_cnf: Vec<String>,
}

/// A cluster (or standalone server) under test.
pub struct Target {
    /// `galera`, `trireme`, `standalone`, or the user's label for remote hosts.
    pub label: String,
    /// `wsrep_provider_name wsrep_provider_version`, or `standalone`.
    pub provider_version: String,
    /// The library the nodes load (local targets).
    pub provider_path: Option<PathBuf>,
    pub endpoints: Vec<Endpoint>,
    /// The servers' PIDs (local targets only: CPU and RSS come from `/proc`).
    pub pids: Vec<Option<u32>>,
    /// Owns the local servers: dropping it stops them, by PID.
    cluster: Option<Cluster>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("label", &self.label)
            .field("provider_version", &self.provider_version)
            .field("endpoints", &self.endpoints)
            .field("pids", &self.pids)
            .finish()
    }
}

impl Target {
    /// Starts a local cluster on `provider` (`None`: a standalone server) under
    /// `<settings.base_dir>/<label>` at `port_base`, creates the harness's SQL user and waits
    /// until every node answers it.
    pub fn start_local(
        label: &str,
        provider: Option<&Path>,
        port_base: u16,
        settings: &LocalSettings,
    ) -> Result<Target, PerfError> {
        let base = settings.base_dir.join(label);
        let mut spec = match provider {
            Some(p) => ClusterSpec::new(p, settings.nodes, &base, port_base),
            None => ClusterSpec::standalone(&base, port_base),
        };
        spec.slave_threads = settings.slave_threads;
        spec.innodb_buffer_pool_size = settings.buffer_pool.clone();
        spec.provider_options = settings.provider_options.clone();
        spec.extra_cnf = settings.extra_cnf.clone();
        // 32 client threads per node plus the harness's own connections.
        spec.extra_cnf.insert(0, "max_connections=300".into());
        log::info!(
            "{label}: starting {} node(s) in {} (ports from {port_base})",
            spec.nodes,
            base.display()
        );
        let cluster = Cluster::start(spec)?;
        // The statements replicate from node 0 to the others.
        cluster.node(0)?.exec(&format!(
            "CREATE USER IF NOT EXISTS '{u}'@'%' IDENTIFIED BY '{p}'; \
             ALTER USER '{u}'@'%' IDENTIFIED BY '{p}'; \
             GRANT ALL PRIVILEGES ON *.* TO '{u}'@'%'",
            u = db::LOCAL_USER,
            p = db::LOCAL_PASSWORD
        ))?;
        let endpoints: Vec<Endpoint> = cluster
            .nodes()
            .iter()
            .map(|n| Endpoint {
                name: n.name().to_string(),
                host: "127.0.0.1".into(),
                port: n.ports().sql,
                user: db::LOCAL_USER.into(),
                password: db::LOCAL_PASSWORD.into(),
            })
            .collect();
        let pids = cluster.nodes().iter().map(|n| n.pid()).collect();
        let mut t = Target {
            label: label.to_string(),
            provider_version: String::new(),
            provider_path: provider.map(Path::to_path_buf),
            endpoints,
            pids,
            cluster: Some(cluster),
        };
        db::wait_converged(&t.endpoints, std::time::Duration::from_secs(60))
            .map_err(PerfError::Run)?;
        t.provider_version = t.query_provider_version()?;
        Ok(t)
    }

    /// The user's own nodes, by address. Nothing is started or stopped.
    pub fn remote(label: &str, endpoints: Vec<Endpoint>) -> Result<Target, PerfError> {
        let mut t = Target {
            label: label.to_string(),
            provider_version: String::new(),
            provider_path: None,
            pids: vec![None; endpoints.len()],
            endpoints,
            cluster: None,
        };
        t.provider_version = t.query_provider_version()?;
        Ok(t)
    }

    /// Whether the servers run on this machine (so `/proc` can be read).
    pub fn is_local(&self) -> bool {
        self.cluster.is_some()
    }

    /// The PIDs that are alive.
    pub fn live_pids(&self) -> Vec<u32> {
        self.pids.iter().flatten().copied().collect()
    }

    fn query_provider_version(&self) -> Result<String, PerfError> {
        let mut c = self.endpoints[0].connect(None)?;
        let st = db::global_status(&mut c, Some("wsrep_provider_%"))?;
        let name = st.get("wsrep_provider_name").cloned().unwrap_or_default();
        let version = st
            .get("wsrep_provider_version")
            .cloned()
            .unwrap_or_default();
        let wsrep_on = db::variable(&mut c, "wsrep_on")?.unwrap_or_default();
        Ok(if wsrep_on == "0" || wsrep_on == "OFF" || name.is_empty() {
            "standalone (wsrep off)".into()
        } else {
            format!("{name} {version}").trim().to_string()
        })
    }

    /// Compares the fingerprint of every user table on every node with node 0's (local
    /// clusters only; the testbed's `checksum_all`, after a causal wait). Returns the
    /// differences (empty: identical data).
    pub fn data_differences(&self) -> Result<Vec<String>, PerfError> {
        let Some(c) = &self.cluster else {
            return Ok(Vec::new());
        };
        let first = c.node(0)?;
        let reference = checksum_all(first)?;
        let mut diff = Vec::new();
        for node in &c.nodes()[1..] {
            let sums = checksum_all(node)?;
            diff.extend(differences(first.name(), &reference, node.name(), &sums));
        }
        Ok(diff)
    }

    /// The last lines of each node's error log (local clusters), for failure reports.
    pub fn error_log_tails(&self, lines: usize) -> String {
        match &self.cluster {
            Some(c) => c
                .nodes()
                .iter()
                .map(|n| format!("--- {} ---\n{}", n.name(), n.error_log_tail(lines)))
                .collect::<Vec<_>>()
                .join("\n"),
            None => String::new(),
        }
    }

    /// Stops local servers now (also done on drop).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.cluster.take() {
            log::info!("{}: stopping", self.label);
            if let Err(e) = c.stop_all() {
                log::warn!("{}: clean stop failed: {e}", self.label);
            }
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}
