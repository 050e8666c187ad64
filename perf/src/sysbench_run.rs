//! sysbench points: fresh tables, one sysbench process per node that has clients, latency
//! from sysbench's own `--histogram` (all events of the run, in sysbench's 1024 logarithmic
//! buckets), merged over the processes of a multi-primary run.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mysql::prelude::Queryable;
use trireme_testbed::{Sysbench, SysbenchConnection, SysbenchReport, SysbenchTarget, Workload};

use crate::db::{self, Endpoint};
use crate::error::PerfError;
use crate::measure::Probe;
use crate::record::{Mode, RunRecord, SYSBENCH};
use crate::rtt;
use crate::stats::{self, Latency};
use crate::target::Target;

/// The sysbench workloads of the matrix.
pub const WORKLOADS: &[&str] = &[
    "oltp_insert",
    "oltp_update_index",
    "oltp_write_only",
    "oltp_read_write",
];

/// How sysbench runs are sized.
#[derive(Debug, Clone)]
pub struct SysbenchSettings {
    pub tables: u32,
    pub table_size: u64,
    pub secs: u64,
    /// `--rand-type` (uniform by default: the multi-primary target is on uniform keys,
    /// and sysbench's default `special` piles every node onto the same few rows).
    pub rand_type: String,
    pub db: String,
}

impl Default for SysbenchSettings {
    fn default() -> Self {
        SysbenchSettings {
            tables: 8,
            table_size: 10_000,
            secs: 60,
            rand_type: "uniform".into(),
            db: "sbtest".into(),
        }
    }
}

fn sb_target(ep: &Endpoint) -> SysbenchTarget {
    SysbenchTarget {
        node: ep.name.clone(),
        connection: SysbenchConnection::Tcp {
            host: ep.host.clone(),
            port: ep.port,
            user: ep.user.clone(),
            password: ep.password.clone(),
        },
    }
}

fn workload(test: &str, threads: u32, s: &SysbenchSettings) -> Workload {
    let mut w = Workload::new(test);
    w.db = s.db.clone();
    w.tables = s.tables;
    w.table_size = s.table_size;
    w.threads = threads;
    w.time = Duration::from_secs(s.secs);
    w.extra_args = vec![
        "--histogram=on".into(),
        format!("--rand-type={}", s.rand_type),
    ];
    w
}

/// Drops and re-creates the sysbench tables through node 0, so that every run of a point
/// starts from the same data, then waits until every node has applied them.
pub fn prepare(target: &Target, s: &SysbenchSettings) -> Result<(), PerfError> {
    let ep = &target.endpoints[0];
    let mut c = ep.connect(None)?;
    c.query_drop(format!(
        "DROP DATABASE IF EXISTS `{0}`; CREATE DATABASE `{0}`",
        s.db
    ))?;
    drop(c);
    let mut w = workload("oltp_common", s.tables.min(4), s);
    w.extra_args.clear();
    Sysbench::new(w).prepare(&sb_target(ep))?;
    db::wait_converged(&target.endpoints, Duration::from_secs(300)).map_err(PerfError::Run)
}

/// Runs one sysbench point against `target` (tables already prepared) and measures it.
pub fn run_point(
    target: &Target,
    test: &str,
    threads: u32,
    mode: Mode,
    rep: u32,
    s: &SysbenchSettings,
    bystanders: &[u32],
) -> RunRecord {
    let per_node = mode.spread(threads, target.endpoints.len());
    let mut rec = RunRecord {
        kind: SYSBENCH.into(),
        provider: target.label.clone(),
        provider_version: target.provider_version.clone(),
        workload: test.into(),
        threads,
        mode: Some(mode),
        threads_per_node: per_node.clone(),
        rep,
        nodes: target.endpoints.len(),
        latency_source: "sysbench --histogram (1024 log buckets), all processes merged; max is \
                         sysbench's exact max"
            .into(),
        notes: vec![format!(
            "{} tables x {} rows, --rand-type={}, fresh tables before the run",
            s.tables, s.table_size, s.rand_type
        )],
        ..RunRecord::default()
    };
    if let Err(e) = prepare(target, s) {
        rec.failure = Some(format!("prepare: {e}"));
        return rec;
    }
    rec.rtt = measure_rtt(target);
    let probe = Probe::start(target, bystanders);
    rec.started_unix = unix_now();
    let reports = run_processes(target, test, &per_node, s);
    let (nodes, host, wall) = probe.finish(target);
    rec.node_measures = nodes;
    rec.host = host;
    rec.duration_s = wall;
    match reports {
        Ok(reports) => fill_from_reports(&mut rec, &reports),
        Err(e) => rec.failure = Some(e.to_string()),
    }
    rec
}

fn run_processes(
    target: &Target,
    test: &str,
    per_node: &[u32],
    s: &SysbenchSettings,
) -> Result<Vec<SysbenchReport>, PerfError> {
    let jobs: Vec<(Sysbench, SysbenchTarget)> = per_node
        .iter()
        .zip(&target.endpoints)
        .filter(|(t, _)| **t > 0)
        .map(|(&t, ep)| (Sysbench::new(workload(test, t, s)), sb_target(ep)))
        .collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|(sb, t)| scope.spawn(move || sb.run(t)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| PerfError::Run("sysbench runner thread panicked".into()))?
                    .map_err(PerfError::from)
            })
            .collect()
    })
}

/// Sums throughput and errors over the processes and merges their histograms.
pub fn fill_from_reports(rec: &mut RunRecord, reports: &[SysbenchReport]) {
    let mut h = stats::new_histogram();
    let mut max_ms: f64 = 0.0;
    for r in reports {
        stats::merge_into(&mut h, &stats::from_sysbench_buckets(&r.histogram));
        max_ms = max_ms.max(r.latency_max_ms);
    }
    rec.tps = reports.iter().map(|r| r.tps).sum();
    rec.qps = Some(reports.iter().map(|r| r.qps).sum());
    rec.errors = reports.iter().map(|r| r.errors).sum();
    if rec.errors > 0 {
        rec.errors_by_code.insert(
            "1213/1205/1020 (sysbench ignored errors, not split by code)".into(),
            rec.errors,
        );
    }
    let reconnects: u64 = reports.iter().map(|r| r.reconnects).sum();
    if reconnects > 0 {
        rec.notes.push(format!("{reconnects} sysbench reconnects"));
    }
    rec.latency = Latency::of(&h);
    if max_ms > 0.0 {
        rec.latency.max_us = max_ms * 1000.0;
    }
    if h.is_empty() {
        rec.notes
            .push("sysbench printed no histogram; latency percentiles missing".into());
    }
    rec.histogram = stats::to_pairs(&h);
    rec.ok = !reports.is_empty() && rec.failure.is_none();
}

/// The round trip just before a run: loopback ping-pong for local targets, COM_PING to node
/// 0 for remote ones.
pub fn measure_rtt(target: &Target) -> Option<rtt::Rtt> {
    let r = if target.is_local() {
        rtt::loopback(2000).map_err(|e| e.to_string())
    } else {
        target.endpoints[0]
            .connect(None)
            .and_then(|mut c| rtt::com_ping(&mut c, 500))
            .map_err(|e| e.to_string())
    };
    match r {
        Ok(r) => Some(r),
        Err(e) => {
            log::warn!("RTT measurement failed: {e}");
            None
        }
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Keeps only the interesting part of a map for logs.
pub fn short(m: &BTreeMap<String, i64>) -> String {
    m.iter()
        .filter(|(_, v)| **v != 0)
        .map(|(k, v)| format!("{}={v}", k.trim_start_matches("wsrep_")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_of_several_processes_add_up_and_merge() {
        let a = SysbenchReport {
            tps: 100.0,
            qps: 400.0,
            errors: 2,
            latency_max_ms: 9.5,
            histogram: vec![(1.0, 90), (2.0, 10)],
            ..SysbenchReport::default()
        };
        let b = SysbenchReport {
            tps: 50.0,
            qps: 200.0,
            errors: 1,
            latency_max_ms: 30.25,
            histogram: vec![(3.0, 100)],
            ..SysbenchReport::default()
        };
        let mut rec = RunRecord::default();
        fill_from_reports(&mut rec, &[a, b]);
        assert!(rec.ok);
        assert_eq!(rec.tps, 150.0);
        assert_eq!(rec.qps, Some(600.0));
        assert_eq!(rec.errors, 3);
        assert_eq!(rec.latency.count, 200);
        assert_eq!(rec.latency.p50_us, 2000.0);
        assert!(
            (3000.0..=3001.0).contains(&rec.latency.p95_us),
            "{:?}",
            rec.latency
        );
        assert_eq!(rec.latency.max_us, 30_250.0);
    }
}
