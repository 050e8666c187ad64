//! TPC-C points of the matrix: load once per target, then measured runs, each followed by the
//! consistency conditions on every node and (local clusters) a cross-node data comparison.

use crate::error::PerfError;
use crate::measure::Probe;
use crate::record::{Mode, RunRecord, TPCC};
use crate::stats::{self, Latency};
use crate::sysbench_run::{measure_rtt, unix_now};
use crate::target::Target;
use crate::tpcc::{self, check, load, TpccSettings};

/// Loads the TPC-C database into `target` (through node 0) and waits until every node has it.
pub fn load_target(
    target: &Target,
    s: &TpccSettings,
    connections: usize,
) -> Result<f64, PerfError> {
    log::info!(
        "{}: loading TPC-C ({}) into `{}`",
        target.label,
        s.scale.name(),
        s.db
    );
    let took = load::load(&target.endpoints[0], &s.db, s.scale, connections, s.seed)?;
    load::wait_applied(&target.endpoints)?;
    log::info!(
        "{}: TPC-C loaded in {:.1} s",
        target.label,
        took.as_secs_f64()
    );
    Ok(took.as_secs_f64())
}

/// The consistency conditions (`full`: all of them, else [`check::QUICK`]) on every node,
/// each line prefixed with the node's name.
pub fn check_all_nodes(target: &Target, db: &str, full: bool) -> Result<Vec<String>, PerfError> {
    crate::db::wait_converged(&target.endpoints, std::time::Duration::from_secs(300))
        .map_err(PerfError::Run)?;
    let which: Vec<u32> = if full {
        check::CONDITIONS.iter().map(|c| c.0).collect()
    } else {
        check::QUICK.to_vec()
    };
    let mut out = Vec::new();
    for ep in &target.endpoints {
        let mut c = ep.connect(Some(db))?;
        for v in check::violations_of(&mut c, &which)? {
            out.push(format!("{}: {v}", ep.name));
        }
    }
    Ok(out)
}

/// The check after a target's last TPC-C run: every condition on every node, and (local
/// clusters) the fingerprint of every table compared across nodes.
pub fn final_check(target: &Target, db: &str) -> Result<Vec<String>, PerfError> {
    let mut v = check_all_nodes(target, db, true)?;
    v.extend(
        target
            .data_differences()?
            .into_iter()
            .map(|x| format!("nodes differ: {x}")),
    );
    Ok(v)
}

/// One measured TPC-C run on a loaded target.
pub fn run_point(
    target: &Target,
    threads: u32,
    mode: Mode,
    rep: u32,
    s: &TpccSettings,
    bystanders: &[u32],
) -> RunRecord {
    let per_node = mode.spread(threads, target.endpoints.len());
    let mut rec = RunRecord {
        kind: TPCC.into(),
        provider: target.label.clone(),
        provider_version: target.provider_version.clone(),
        workload: "tpcc".into(),
        threads,
        mode: Some(mode),
        threads_per_node: per_node.clone(),
        rep,
        nodes: target.endpoints.len(),
        latency_source: "client: each terminal times the whole transaction (retries included)"
            .into(),
        notes: vec![format!(
            "{}, no think time, seed {}; runs continue on the data left by earlier runs",
            s.scale.name(),
            s.seed
        )],
        ..RunRecord::default()
    };
    if let Err(e) =
        crate::db::wait_converged(&target.endpoints, std::time::Duration::from_secs(300))
    {
        rec.failure = Some(e);
        return rec;
    }
    rec.rtt = measure_rtt(target);
    let probe = Probe::start(target, bystanders);
    rec.started_unix = unix_now();
    let mut settings = s.clone();
    settings.seed = s.seed ^ u64::from(rep) ^ (u64::from(threads) << 32);
    let result = tpcc::run(&target.endpoints, &per_node, &settings);
    let (nodes, host, _wall) = probe.finish(target);
    rec.node_measures = nodes;
    rec.host = host;
    match result {
        Ok(r) => {
            rec.duration_s = r.elapsed.as_secs_f64();
            rec.tps = r.tps();
            rec.notpm = Some(r.notpm());
            let all = r.all_latency();
            rec.latency = Latency::of(&all);
            rec.histogram = stats::to_pairs(&all);
            rec.txn_latency = r.latency_by_type();
            rec.txn_counts = r
                .counts
                .iter()
                .map(|(t, n)| (t.name().to_string(), *n))
                .collect();
            rec.txn_counts
                .insert("new_order_rolled_back".into(), r.rolled_back);
            rec.txn_counts.insert("failed".into(), r.failed);
            rec.errors = r.errors_by_code.values().sum();
            rec.errors_by_code = r.errors_by_code.clone();
            rec.notes
                .extend(r.error_samples.iter().map(|e| format!("error: {e}")));
            rec.ok = true;
        }
        Err(e) => rec.failure = Some(e.to_string()),
    }
    match check_all_nodes(target, &s.db, false) {
        Ok(v) => rec.consistency_violations = Some(v),
        Err(e) => rec
            .notes
            .push(format!("consistency check failed to run: {e}")),
    }
    rec
}
