//! One run's result: a line of `results.jsonl`. The report is computed from these lines only,
//! so a run can be re-reported (`trireme-perf report`) and lines from several invocations
//! can be concatenated.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::PerfError;
use crate::measure::{HostMeasure, NodeMeasure};
use crate::rtt::Rtt;
use crate::stats::Latency;

/// Kinds of run.
pub const SYSBENCH: &str = "sysbench";
pub const TPCC: &str = "tpcc";
pub const COMMIT: &str = "commit_latency";

/// Where the clients run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Every client on node 0.
    SingleWriter,
    /// Clients spread evenly over all nodes.
    MultiPrimary,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "single" | "single-writer" => Some(Mode::SingleWriter),
            "multi" | "multi-primary" => Some(Mode::MultiPrimary),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::SingleWriter => "single-writer",
            Mode::MultiPrimary => "multi-primary",
        }
    }

    /// How `threads` clients are spread over `nodes` nodes: per node, in node order (the
    /// first nodes take the remainder).
    pub fn spread(self, threads: u32, nodes: usize) -> Vec<u32> {
        match self {
            Mode::SingleWriter => {
                let mut v = vec![0; nodes.max(1)];
                v[0] = threads;
                v
            }
            Mode::MultiPrimary => {
                let n = nodes.max(1) as u32;
                (0..n)
                    .map(|i| threads / n + u32::from(i < threads % n))
                    .collect()
            }
        }
    }
}

/// One run of one point of the matrix against one target.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RunRecord {
    /// [`SYSBENCH`], [`TPCC`] or [`COMMIT`].
    pub kind: String,
    /// Target label: `galera`, `trireme`, `standalone`, or the user's label.
    pub provider: String,
    /// What the server reports (`wsrep_provider_name wsrep_provider_version`).
    pub provider_version: String,
    /// `oltp_update_index`, ..., `tpcc`, `autocommit_insert`.
    pub workload: String,
    /// Total client threads (all nodes together).
    pub threads: u32,
    pub mode: Option<Mode>,
    /// Clients per node.
    pub threads_per_node: Vec<u32>,
    /// Repetition (round) number, from 1.
    pub rep: u32,
    pub nodes: usize,
    /// Unix time at the start of the measured part.
    pub started_unix: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// False when the run failed; `failure` says why and the numbers are not to be used.
    pub ok: bool,
    pub failure: Option<String>,
    /// Transactions (sysbench events; TPC-C: all five types; commit latency: inserts) per s.
    pub tps: f64,
    /// Queries per second (sysbench only).
    pub qps: Option<f64>,
    /// TPC-C: New-Order transactions per minute.
    pub notpm: Option<f64>,
    /// Latency of one transaction/event as the client saw it.
    pub latency: Latency,
    /// Where `latency` comes from (`sysbench --histogram`, `client per transaction`, ...).
    pub latency_source: String,
    /// The latency histogram as `(us, count)` pairs (for re-analysis and merging).
    pub histogram: Vec<(u64, u64)>,
    /// TPC-C: latency and count per transaction type.
    pub txn_latency: BTreeMap<String, Latency>,
    pub txn_counts: BTreeMap<String, u64>,
    /// Errors the clients got (retried or not), total and by server error code where known.
    pub errors: u64,
    pub errors_by_code: BTreeMap<String, u64>,
    /// Loopback (or COM_PING) round trip measured just before the run.
    pub rtt: Option<Rtt>,
    pub node_measures: Vec<NodeMeasure>,
    pub host: HostMeasure,
    /// TPC-C: consistency conditions violated after the run, per node (empty: all hold).
    pub consistency_violations: Option<Vec<String>>,
    /// Anything else worth knowing about this run (settings, warnings).
    pub notes: Vec<String>,
}

impl RunRecord {
    /// Sum of one counter's change over all nodes.
    pub fn counter_sum(&self, name: &str) -> i64 {
        self.node_measures
            .iter()
            .filter_map(|n| n.counters.get(name))
            .sum()
    }

    /// Whether any node reported `name` (a provider may lack a counter).
    pub fn has_counter(&self, name: &str) -> bool {
        self.node_measures
            .iter()
            .any(|n| n.counters.contains_key(name))
    }

    /// CPU of all servers together, in vCPUs (None when not measured).
    pub fn cpu_util_total(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .node_measures
            .iter()
            .filter_map(|n| n.cpu_util)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    }

    /// The group a record belongs to in the report (everything but provider and rep).
    pub fn point_key(&self) -> PointKey {
        PointKey {
            kind: self.kind.clone(),
            workload: self.workload.clone(),
            mode: self.mode,
            threads: self.threads,
        }
    }
}

/// A point of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PointKey {
    pub kind: String,
    pub workload: String,
    pub mode: Option<Mode>,
    pub threads: u32,
}

impl PointKey {
    pub fn label(&self) -> String {
        match self.mode {
            Some(m) => format!("{} {} {}t", self.workload, m.name(), self.threads),
            None => format!("{} {}t", self.workload, self.threads),
        }
    }
}

/// Appends `r` to a JSON-lines file.
pub fn append(path: &Path, r: &RunRecord) -> Result<(), PerfError> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| PerfError::io(format!("open {}", path.display()), e))?;
    let line = serde_json::to_string(r).map_err(|e| PerfError::Run(e.to_string()))?;
    writeln!(f, "{line}").map_err(|e| PerfError::io(format!("write {}", path.display()), e))
}

/// Reads every record of a JSON-lines file (blank lines are skipped; a bad line is an error
/// naming its number).
pub fn read_all(path: &Path) -> Result<Vec<RunRecord>, PerfError> {
    let f = std::fs::File::open(path)
        .map_err(|e| PerfError::io(format!("open {}", path.display()), e))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.map_err(|e| PerfError::io(format!("read {}", path.display()), e))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|e| PerfError::Run(format!("{} line {}: {e}", path.display(), i + 1)))?,
        );
    }
    Ok(out)
}

/// Keeps the last line of each run (a run is appended again when a later check adds to it),
/// in the order the runs first appeared.
pub fn latest_per_run(records: Vec<RunRecord>) -> Vec<RunRecord> {
    let id = |r: &RunRecord| {
        (
            r.kind.clone(),
            r.provider.clone(),
            r.point_key(),
            r.rep,
            r.started_unix,
        )
    };
    let mut order = Vec::new();
    let mut latest = std::collections::HashMap::new();
    for r in records {
        let k = id(&r);
        if !latest.contains_key(&k) {
            order.push(k.clone());
        }
        latest.insert(k, r);
    }
    order
        .into_iter()
        .filter_map(|k| latest.remove(&k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_spread_threads_over_nodes() {
        assert_eq!(Mode::SingleWriter.spread(8, 3), vec![8, 0, 0]);
        assert_eq!(Mode::MultiPrimary.spread(8, 3), vec![3, 3, 2]);
        assert_eq!(Mode::MultiPrimary.spread(32, 3), vec![11, 11, 10]);
        assert_eq!(Mode::MultiPrimary.spread(1, 3), vec![1, 0, 0]);
        assert_eq!(Mode::parse("multi"), Some(Mode::MultiPrimary));
        assert_eq!(Mode::parse("nope"), None);
    }

    #[test]
    fn records_round_trip_through_json_lines() {
        let dir = std::env::temp_dir().join(format!("perf-rec-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("r.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut r = RunRecord {
            kind: SYSBENCH.into(),
            provider: "galera".into(),
            workload: "oltp_insert".into(),
            threads: 8,
            mode: Some(Mode::MultiPrimary),
            ok: true,
            tps: 123.5,
            ..RunRecord::default()
        };
        r.errors_by_code.insert("1213".into(), 4);
        append(&path, &r).unwrap();
        r.provider = "trireme".into();
        append(&path, &r).unwrap();
        let back = read_all(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].provider, "galera");
        assert_eq!(back[1], r);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"mode\":\"multi-primary\""), "{text}");
        std::fs::write(&path, "{not json}\n").unwrap();
        assert!(read_all(&path).unwrap_err().to_string().contains("line 1"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_appended_again_counts_once_with_its_last_version() {
        let a = RunRecord {
            provider: "galera".into(),
            rep: 1,
            ..RunRecord::default()
        };
        let b = RunRecord {
            provider: "trireme".into(),
            rep: 1,
            ..RunRecord::default()
        };
        let mut b2 = b.clone();
        b2.notes.push("final_check".into());
        let v = latest_per_run(vec![a.clone(), b, b2.clone()]);
        assert_eq!(v, vec![a, b2]);
    }

    #[test]
    fn counters_sum_over_nodes() {
        let mut r = RunRecord::default();
        for v in [2, 3] {
            let mut n = NodeMeasure::default();
            n.counters.insert("wsrep_local_cert_failures".into(), v);
            n.cpu_util = Some(0.5);
            r.node_measures.push(n);
        }
        assert_eq!(r.counter_sum("wsrep_local_cert_failures"), 5);
        assert!(r.has_counter("wsrep_local_cert_failures"));
        assert!(!r.has_counter("wsrep_local_bf_aborts"));
        assert_eq!(r.cpu_util_total(), Some(1.0));
    }
}
