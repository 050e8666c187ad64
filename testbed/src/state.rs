//! The state file a cluster leaves in its base dir (`cluster.state`).
//!
//! Plain `key=value` lines, so that a human (or a shell script) can read the PIDs, ports and
//! sockets without a JSON tool, and so that the crate needs no serialisation dependency. The
//! testbed reads back only what it needs to re-open the cluster (`provider`, `nodes`,
//! `port_base`, the cluster name and the PIDs); the per-node paths and ports, derived from
//! those, are written for readers.
//!
//! ```text
//! version=1
//! base_dir=/tmp/trireme-cluster
//! provider=/usr/lib/galera/libgalera_smm.so
//! nodes=3
//! port_base=17000
//! cluster_name=trireme
//! node0.pid=12345          # `-` when the node is not running
//! node0.sql_port=17000
//! node0.socket=/tmp/trireme-cluster/node0/mariadbd.sock
//! ...
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::{Result, TestbedError};
use crate::spec::ClusterSpec;

/// The state file's name inside the base dir.
pub const STATE_FILE: &str = "cluster.state";

/// `<base_dir>/cluster.state`.
pub fn path(base_dir: &Path) -> PathBuf {
    base_dir.join(STATE_FILE)
}

/// What the state file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterState {
    /// Where the cluster lives.
    pub base_dir: PathBuf,
    /// The provider the nodes loaded.
    pub provider: PathBuf,
    /// `wsrep_cluster_name`.
    pub cluster_name: String,
    /// The spec's port base.
    pub port_base: u16,
    /// The server binary.
    pub mariadbd: PathBuf,
    /// One entry per node: its PID while running.
    pub pids: Vec<Option<u32>>,
}

impl ClusterState {
    /// The state of a cluster built from `spec` whose nodes have these PIDs.
    pub fn of(spec: &ClusterSpec, pids: Vec<Option<u32>>) -> Self {
        ClusterState {
            base_dir: spec.base_dir.clone(),
            provider: spec.provider.clone(),
            cluster_name: spec.cluster_name.clone(),
            port_base: spec.port_base,
            mariadbd: spec.mariadbd.clone(),
            pids,
        }
    }

    /// A spec that reproduces the recorded layout under `base_dir` (other settings default:
    /// they live in each node's `my.cnf`, which is reused as is).
    pub fn spec(&self, base_dir: &Path) -> ClusterSpec {
        let mut s = ClusterSpec::new(
            self.provider.clone(),
            self.pids.len(),
            base_dir,
            self.port_base,
        );
        s.cluster_name = self.cluster_name.clone();
        s.mariadbd = self.mariadbd.clone();
        s
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# trireme-testbed cluster state: read by `trireme-testbed status|sql|down`\n",
        );
        let _ = writeln!(s, "version=1");
        let _ = writeln!(s, "base_dir={}", self.base_dir.display());
        let _ = writeln!(s, "provider={}", self.provider.display());
        let _ = writeln!(s, "cluster_name={}", self.cluster_name);
        let _ = writeln!(s, "nodes={}", self.pids.len());
        let _ = writeln!(s, "port_base={}", self.port_base);
        let _ = writeln!(s, "mariadbd={}", self.mariadbd.display());
        let spec = self.spec(&self.base_dir);
        for (i, pid) in self.pids.iter().enumerate() {
            let l = spec.layout(i);
            let p = l.ports;
            let n = &l.name;
            let pid = pid.map_or("-".to_string(), |p| p.to_string());
            let _ = writeln!(s, "{n}.pid={pid}");
            let _ = writeln!(s, "{n}.sql_port={}", p.sql);
            let _ = writeln!(s, "{n}.repl_port={}", p.repl);
            let _ = writeln!(s, "{n}.ist_port={}", p.ist);
            let _ = writeln!(s, "{n}.sst_port={}", p.sst);
            let _ = writeln!(s, "{n}.socket={}", l.socket.display());
            let _ = writeln!(s, "{n}.datadir={}", l.datadir.display());
            let _ = writeln!(s, "{n}.cnf={}", l.cnf.display());
            let _ = writeln!(s, "{n}.error_log={}", l.error_log.display());
        }
        s
    }

    /// Writes the file atomically (write then rename), so a reader never sees half of it.
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("state.tmp");
        let io = |e| TestbedError::io("testbed", format!("write {}", path.display()), e);
        std::fs::write(&tmp, self.render()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Reads and parses the file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TestbedError::State {
            path: path.to_path_buf(),
            detail: format!("cannot read it ({e}); was the cluster started with `up`?"),
        })?;
        let mut st = Self::parse(&text).map_err(|detail| TestbedError::State {
            path: path.to_path_buf(),
            detail,
        })?;
        if st.base_dir.as_os_str().is_empty() {
            st.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        Ok(st)
    }

    /// Parses the file's text (`base_dir` stays empty if the text has none).
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let kv: BTreeMap<&str, &str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |k: &str| kv.get(k).copied().ok_or_else(|| format!("no `{k}=` line"));
        if get("version")? != "1" {
            return Err(format!("unknown version {}", get("version")?));
        }
        let nodes: usize = get("nodes")?
            .parse()
            .map_err(|e| format!("bad nodes: {e}"))?;
        let port_base: u16 = get("port_base")?
            .parse()
            .map_err(|e| format!("bad port_base: {e}"))?;
        let mut pids = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let v = get(&format!("node{i}.pid"))?;
            pids.push(if v == "-" {
                None
            } else {
                Some(
                    v.parse()
                        .map_err(|e| format!("bad node{i}.pid {v:?}: {e}"))?,
                )
            });
        }
        Ok(ClusterState {
            // Optional: the directory holding the file says the same.
            base_dir: PathBuf::from(kv.get("base_dir").copied().unwrap_or_default()),
            provider: PathBuf::from(get("provider")?),
            cluster_name: get("cluster_name")?.to_string(),
            port_base,
            mariadbd: PathBuf::from(get("mariadbd")?),
            pids,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_text() {
        let spec = ClusterSpec::galera(3, "/tmp/tb", 17000);
        let st = ClusterState::of(&spec, vec![Some(10), None, Some(30)]);
        let text = st.render();
        assert!(text.contains("node1.pid=-\n"), "{text}");
        assert!(text.contains("node2.sql_port=17020\n"), "{text}");
        assert!(
            text.contains("node0.socket=/tmp/tb/node0/mariadbd.sock\n"),
            "{text}"
        );
        let back = ClusterState::parse(&text).unwrap();
        assert_eq!(back, st);
        let again = back.spec(Path::new("/tmp/tb"));
        assert_eq!(again.nodes, 3);
        assert_eq!(again.layout(2).ports, spec.layout(2).ports);
    }

    #[test]
    fn a_state_file_without_pids_is_rejected() {
        let err = ClusterState::parse("version=1\nnodes=2\nport_base=1\nprovider=x\n").unwrap_err();
        assert!(
            err.contains("node0.pid") || err.contains("cluster_name"),
            "{err}"
        );
    }
}
