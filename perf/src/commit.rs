//! Commit latency: one client, autocommit single-row INSERTs on node 0, against each cluster
//! and against a standalone server (same box, same my.cnf, wsrep off). The difference is
//! what replication adds to a commit; divided by the loopback round trip measured at the
//! start of the same round, it is read in round trips. Targets take turns round by round (the
//! order rotates), so slow drifts of the shared machine hit every target alike.

use std::time::Instant;

use mysql::prelude::Queryable;

use crate::error::PerfError;
use crate::measure::Probe;
use crate::record::{RunRecord, COMMIT};
use crate::stats::{self, Latency};
use crate::sysbench_run::{measure_rtt, unix_now};
use crate::target::Target;

pub const DB: &str = "perf_commit";
pub const WORKLOAD: &str = "autocommit_insert";

#[derive(Debug, Clone)]
pub struct CommitSettings {
    pub rounds: u32,
    /// Measured inserts per target and round.
    pub inserts: u32,
    /// Unmeasured inserts before them.
    pub warmup: u32,
}

impl Default for CommitSettings {
    fn default() -> Self {
        CommitSettings {
            rounds: 5,
            inserts: 2000,
            warmup: 200,
        }
    }
}

fn setup(target: &Target) -> Result<(), PerfError> {
    let mut c = target.endpoints[0].connect(None)?;
    c.query_drop(format!(
        "DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB}; \
         CREATE TABLE {DB}.t (id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, \
         k INT NOT NULL, pad CHAR(60) NOT NULL)"
    ))?;
    crate::db::wait_converged(&target.endpoints, std::time::Duration::from_secs(120))
        .map_err(PerfError::Run)
}

/// One round on one target.
fn measure(target: &Target, round: u32, s: &CommitSettings, bystanders: &[u32]) -> RunRecord {
    let mut rec = RunRecord {
        kind: COMMIT.into(),
        provider: target.label.clone(),
        provider_version: target.provider_version.clone(),
        workload: WORKLOAD.into(),
        threads: 1,
        mode: None,
        threads_per_node: vec![1],
        rep: round,
        nodes: target.endpoints.len(),
        latency_source: "client: each INSERT timed around exec (binary protocol, TCP)".into(),
        notes: vec![format!(
            "{} measured single-row autocommit INSERTs on node 0 after {} unmeasured",
            s.inserts, s.warmup
        )],
        ..RunRecord::default()
    };
    rec.rtt = measure_rtt(target);
    let mut conn = match target.endpoints[0].connect(Some(DB)) {
        Ok(c) => c,
        Err(e) => {
            rec.failure = Some(e.to_string());
            return rec;
        }
    };
    let pad = "x".repeat(60);
    let sql = "INSERT INTO t (k, pad) VALUES (?, ?)";
    for i in 0..s.warmup {
        if let Err(e) = conn.exec_drop(sql, (i, &pad)) {
            rec.failure = Some(format!("warm-up insert: {e}"));
            return rec;
        }
    }
    let mut h = stats::new_histogram();
    let probe = Probe::start(target, bystanders);
    rec.started_unix = unix_now();
    let t0 = Instant::now();
    for i in 0..s.inserts {
        let t = Instant::now();
        if let Err(e) = conn.exec_drop(sql, (i, &pad)) {
            *rec.errors_by_code
                .entry(crate::db::error_code(&e).map_or("driver".into(), |c| c.to_string()))
                .or_default() += 1;
            rec.errors += 1;
            continue;
        }
        stats::record_us(&mut h, t.elapsed().as_secs_f64() * 1e6);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (nodes, host, _) = probe.finish(target);
    rec.node_measures = nodes;
    rec.host = host;
    rec.duration_s = elapsed;
    rec.tps = h.len() as f64 / elapsed.max(1e-9);
    rec.latency = Latency::of(&h);
    rec.histogram = stats::to_pairs(&h);
    rec.ok = !h.is_empty();
    if !rec.ok {
        rec.failure = Some("no insert succeeded".into());
    }
    rec
}

/// Runs `s.rounds` rounds over `targets` (rotating their order each round). `bystanders(i)`
/// gives the PIDs of the servers that are idle while target `i` is measured. `sink` gets
/// each record as soon as it exists.
pub fn run(
    targets: &[&Target],
    s: &CommitSettings,
    bystanders: &dyn Fn(usize) -> Vec<u32>,
    sink: &mut dyn FnMut(RunRecord),
) -> Result<(), PerfError> {
    for t in targets {
        setup(t)?;
    }
    for round in 1..=s.rounds {
        for k in 0..targets.len() {
            let i = (k + round as usize - 1) % targets.len();
            let rec = measure(targets[i], round, s, &bystanders(i));
            log::info!(
                "commit latency round {round} {}: p50 {:.0} us p99 {:.0} us (rtt p50 {:.0} us){}",
                rec.provider,
                rec.latency.p50_us,
                rec.latency.p99_us,
                rec.rtt.as_ref().map_or(0.0, |r| r.p50_us),
                rec.failure
                    .as_ref()
                    .map(|f| format!(" FAILED: {f}"))
                    .unwrap_or_default()
            );
            sink(rec);
        }
    }
    Ok(())
}
