//! From `results.jsonl` to `report.md` and its SVG plots: per point of the matrix and per
//! provider, the median and range over repetitions of every measure, and the ratios
//! Trireme/Galera of the medians.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::commit::WORKLOAD as COMMIT_WORKLOAD;
use crate::error::PerfError;
use crate::record::{PointKey, RunRecord, COMMIT, SYSBENCH, TPCC};
use crate::stats::{ratio, Spread};
use crate::svg::{Bar, BarChart};

/// The providers a ratio is computed for: numerator, denominator.
pub const RATIO: (&str, &str) = ("trireme", "galera");
pub const STANDALONE: &str = "standalone";

/// Providers in report order: galera, trireme, then the others by name.
fn provider_order(records: &[&RunRecord]) -> Vec<String> {
    let set: BTreeSet<&str> = records.iter().map(|r| r.provider.as_str()).collect();
    let mut v: Vec<String> = Vec::new();
    for p in [STANDALONE, RATIO.1, RATIO.0] {
        if set.contains(p) {
            v.push(p.to_string());
        }
    }
    v.extend(
        set.iter()
            .filter(|p| ![STANDALONE, RATIO.0, RATIO.1].contains(p))
            .map(|p| p.to_string()),
    );
    v
}

fn spread<F: Fn(&RunRecord) -> Option<f64>>(rs: &[&RunRecord], f: F) -> Option<Spread> {
    let v: Vec<f64> = rs
        .iter()
        .filter_map(|r| f(r))
        .filter(|x| x.is_finite())
        .collect();
    Spread::of(&v)
}

fn show(s: Option<Spread>, decimals: usize) -> String {
    s.map_or("-".into(), |s| s.show(decimals))
}

fn show_ratio(a: Option<Spread>, b: Option<Spread>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => ratio(a.median, b.median).map_or("-".into(), |r| format!("{r:.2}x")),
        _ => "-".into(),
    }
}

/// Largest share of the run any node spent paused by flow control, percent.
pub fn fc_paused_pct(r: &RunRecord) -> Option<f64> {
    if !r.has_counter("wsrep_flow_control_paused_ns") || r.duration_s <= 0.0 {
        return None;
    }
    r.node_measures
        .iter()
        .filter_map(|n| n.counters.get("wsrep_flow_control_paused_ns"))
        .map(|ns| *ns as f64 / (r.duration_s * 1e9) * 100.0)
        .reduce(f64::max)
}

fn counter(r: &RunRecord, name: &str) -> Option<f64> {
    r.has_counter(name).then(|| r.counter_sum(name) as f64)
}

fn mib(kib: Option<u64>) -> Option<f64> {
    kib.map(|k| k as f64 / 1024.0)
}

/// Node 0's RSS at the end of the run (anon, file), MiB.
fn rss0(r: &RunRecord) -> (Option<f64>, Option<f64>) {
    let m = r.node_measures.first().and_then(|n| n.rss_end);
    (
        mib(m.map(|m| m.rss_anon_kib)),
        mib(m.map(|m| m.rss_file_kib)),
    )
}

/// What the report is made of.
pub struct Report {
    pub markdown: String,
    /// (file name, SVG text).
    pub plots: Vec<(String, String)>,
}

/// Groups the successful records by point and provider.
fn grouped(records: &[RunRecord]) -> BTreeMap<PointKey, BTreeMap<String, Vec<&RunRecord>>> {
    let mut g: BTreeMap<PointKey, BTreeMap<String, Vec<&RunRecord>>> = BTreeMap::new();
    for r in records.iter().filter(|r| r.ok) {
        g.entry(r.point_key())
            .or_default()
            .entry(r.provider.clone())
            .or_default()
            .push(r);
    }
    g
}

/// The throughput table of the sysbench and TPC-C points (markdown), one row per point and
/// provider plus a ratio row.
pub fn throughput_table(records: &[RunRecord]) -> String {
    let g = grouped(records);
    let mut s = String::new();
    s.push_str(
        "| point | provider | runs | TPS | NOTPM | p50 ms | p95 ms | p99 ms | max ms | errors/s | cert fail | BF aborts | FC paused % | CPU (vCPU, all nodes) | CPU ms/txn | CPU ms/txn per node |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (key, by_p) in g.iter().filter(|(k, _)| k.kind != COMMIT) {
        let all: Vec<&RunRecord> = by_p.values().flatten().copied().collect();
        let mut tps = BTreeMap::new();
        let mut p99 = BTreeMap::new();
        let mut cpu_per = BTreeMap::new();
        for p in provider_order(&all) {
            let rs = &by_p[&p];
            let t = spread(rs, |r| Some(r.tps));
            let l99 = spread(rs, |r| Some(r.latency.p99_us / 1000.0));
            let cpt = spread(rs, |r| {
                r.cpu_util_total().and_then(|c| ratio(c * 1000.0, r.tps))
            });
            let _ = writeln!(
                s,
                "| {} | {p} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                key.label(),
                rs.len(),
                show(t, 0),
                show(spread(rs, |r| r.notpm), 0),
                show(spread(rs, |r| Some(r.latency.p50_us / 1000.0)), 2),
                show(spread(rs, |r| Some(r.latency.p95_us / 1000.0)), 2),
                show(l99, 2),
                show(spread(rs, |r| Some(r.latency.max_us / 1000.0)), 1),
                show(
                    spread(rs, |r| Some(r.errors as f64 / r.duration_s.max(1e-9))),
                    1
                ),
                show(spread(rs, |r| counter(r, "wsrep_local_cert_failures")), 0),
                show(spread(rs, |r| counter(r, "wsrep_local_bf_aborts")), 0),
                show(spread(rs, fc_paused_pct), 1),
                show(spread(rs, |r| r.cpu_util_total()), 2),
                show(cpt, 2),
                per_node_cpu_per_txn(rs),
            );
            tps.insert(p.clone(), t);
            p99.insert(p.clone(), l99);
            cpu_per.insert(p.clone(), cpt);
        }
        if by_p.contains_key(RATIO.0) && by_p.contains_key(RATIO.1) {
            let rt = |m: &BTreeMap<String, Option<Spread>>| show_ratio(m[RATIO.0], m[RATIO.1]);
            let _ = writeln!(
                s,
                "| {} | **{}/{}** | | **{}** | | | | {} | | | | | | | {} | |",
                key.label(),
                RATIO.0,
                RATIO.1,
                rt(&tps),
                rt(&p99),
                rt(&cpu_per)
            );
        }
    }
    s
}

/// Each node's CPU per transaction in ms (median over runs), node 0 first: where the work
/// of a transaction falls, the writer's against the appliers'.
fn per_node_cpu_per_txn(rs: &[&RunRecord]) -> String {
    let nodes = rs.iter().map(|r| r.node_measures.len()).max().unwrap_or(0);
    let per: Vec<String> = (0..nodes)
        .map(|i| {
            let s = spread(rs, |r| {
                let cpu = r.node_measures.get(i)?.cpu_util?;
                ratio(cpu * 1000.0, r.tps)
            });
            s.map_or("-".into(), |s| format!("{:.3}", s.median))
        })
        .collect();
    if per.iter().all(|x| x == "-") {
        return "-".into();
    }
    per.join(" / ")
}

/// Memory table: RSS of node 0 at the end of the runs, anonymous and file-backed apart.
pub fn memory_table(records: &[RunRecord]) -> String {
    let g = grouped(records);
    let mut s = String::from(
        "| point | provider | node0 RssAnon MiB (end) | node0 RssFile MiB (end) | node0 RssAnon growth over the run MiB | all nodes RssAnon MiB |\n|---|---|---|---|---|---|\n",
    );
    for (key, by_p) in &g {
        let all: Vec<&RunRecord> = by_p.values().flatten().copied().collect();
        for p in provider_order(&all) {
            let rs = &by_p[&p];
            if rs
                .iter()
                .all(|r| r.node_measures.iter().all(|n| n.rss_end.is_none()))
            {
                continue;
            }
            let growth = spread(rs, |r| {
                let n = r.node_measures.first()?;
                Some((n.rss_end?.rss_anon_kib as f64 - n.rss_start?.rss_anon_kib as f64) / 1024.0)
            });
            let total = spread(rs, |r| {
                let v: Vec<u64> = r
                    .node_measures
                    .iter()
                    .filter_map(|n| n.rss_end.map(|m| m.rss_anon_kib))
                    .collect();
                (!v.is_empty()).then(|| v.iter().sum::<u64>() as f64 / 1024.0)
            });
            let _ = writeln!(
                s,
                "| {} | {p} | {} | {} | {} | {} |",
                key.label(),
                show(spread(rs, |r| rss0(r).0), 0),
                show(spread(rs, |r| rss0(r).1), 0),
                show(growth, 1),
                show(total, 0)
            );
        }
    }
    s
}

/// Per-transaction-type latency of the TPC-C points.
pub fn tpcc_table(records: &[RunRecord]) -> String {
    let g = grouped(records);
    let mut s = String::new();
    for (key, by_p) in g.iter().filter(|(k, _)| k.kind == TPCC) {
        let _ = writeln!(s, "\n**{}**\n", key.label());
        s.push_str("| provider | type | per run | p50 ms | p95 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n");
        let all: Vec<&RunRecord> = by_p.values().flatten().copied().collect();
        for p in provider_order(&all) {
            let rs = &by_p[&p];
            for ty in [
                "new_order",
                "payment",
                "order_status",
                "delivery",
                "stock_level",
            ] {
                let f = |pick: fn(&crate::stats::Latency) -> f64| {
                    spread(rs, |r| r.txn_latency.get(ty).map(|l| pick(l) / 1000.0))
                };
                let _ = writeln!(
                    s,
                    "| {p} | {ty} | {} | {} | {} | {} | {} |",
                    show(spread(rs, |r| r.txn_counts.get(ty).map(|n| *n as f64)), 0),
                    show(f(|l| l.p50_us), 2),
                    show(f(|l| l.p95_us), 2),
                    show(f(|l| l.p99_us), 2),
                    show(f(|l| l.max_us), 1),
                );
            }
            let viol: Vec<&String> = rs
                .iter()
                .filter_map(|r| r.consistency_violations.as_ref())
                .flatten()
                .collect();
            let checked = rs
                .iter()
                .filter(|r| r.consistency_violations.is_some())
                .count();
            let errs: BTreeMap<String, u64> = rs.iter().fold(BTreeMap::new(), |mut m, r| {
                for (k, v) in &r.errors_by_code {
                    *m.entry(k.clone()).or_default() += v;
                }
                m
            });
            let _ = writeln!(
                s,
                "| {p} | consistency | {} | errors by code over all runs: {} | | | |",
                if checked == 0 {
                    "not checked".to_string()
                } else if viol.is_empty() {
                    format!("conditions 1-10, 12 hold on every node after {checked} run(s)")
                } else {
                    format!(
                        "**VIOLATED**: {}",
                        viol.iter()
                            .map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                },
                if errs.is_empty() {
                    "none".to_string()
                } else {
                    errs.iter()
                        .map(|(k, v)| format!("{k}: {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
        }
    }
    s
}

/// Commit latency per round: each provider's latency minus the standalone server's in the
/// same round, in microseconds and in round trips.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitRow {
    pub provider: String,
    pub p50_us: Option<Spread>,
    pub p99_us: Option<Spread>,
    pub mean_us: Option<Spread>,
    pub added_p50_us: Option<Spread>,
    pub added_mean_us: Option<Spread>,
    pub added_p50_rtts: Option<Spread>,
    pub rtt_p50_us: Option<Spread>,
}

/// The commit-latency rows, one per target, in report order.
pub fn commit_rows(records: &[RunRecord]) -> Vec<CommitRow> {
    let rs: Vec<&RunRecord> = records
        .iter()
        .filter(|r| r.ok && r.kind == COMMIT && r.workload == COMMIT_WORKLOAD)
        .collect();
    let base: BTreeMap<u32, &RunRecord> = rs
        .iter()
        .filter(|r| r.provider == STANDALONE)
        .map(|r| (r.rep, *r))
        .collect();
    provider_order(&rs)
        .into_iter()
        .map(|p| {
            let mine: Vec<&RunRecord> = rs.iter().filter(|r| r.provider == p).copied().collect();
            let added = |f: fn(&RunRecord) -> f64| {
                let v: Vec<f64> = mine
                    .iter()
                    .filter_map(|r| base.get(&r.rep).map(|b| f(r) - f(b)))
                    .collect();
                Spread::of(&v)
            };
            let rtts: Vec<f64> = mine
                .iter()
                .filter_map(|r| {
                    let b = base.get(&r.rep)?;
                    ratio(r.latency.p50_us - b.latency.p50_us, r.rtt.as_ref()?.p50_us)
                })
                .collect();
            let is_base = p == STANDALONE;
            CommitRow {
                p50_us: spread(&mine, |r| Some(r.latency.p50_us)),
                p99_us: spread(&mine, |r| Some(r.latency.p99_us)),
                mean_us: spread(&mine, |r| Some(r.latency.mean_us)),
                added_p50_us: (!is_base).then(|| added(|r| r.latency.p50_us)).flatten(),
                added_mean_us: (!is_base).then(|| added(|r| r.latency.mean_us)).flatten(),
                added_p50_rtts: (!is_base).then(|| Spread::of(&rtts)).flatten(),
                rtt_p50_us: spread(&mine, |r| r.rtt.as_ref().map(|x| x.p50_us)),
                provider: p,
            }
        })
        .collect()
}

pub fn commit_table(records: &[RunRecord]) -> String {
    let rows = commit_rows(records);
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "| server | rounds | p50 us | p99 us | mean us | added p50 us | added mean us | added p50 in loopback RTTs | loopback RTT p50 us |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in &rows {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.provider,
            r.p50_us.map_or(0, |x| x.n),
            show(r.p50_us, 0),
            show(r.p99_us, 0),
            show(r.mean_us, 0),
            show(r.added_p50_us, 0),
            show(r.added_mean_us, 0),
            show(r.added_p50_rtts, 1),
            show(r.rtt_p50_us, 0)
        );
    }
    let find = |p: &str| {
        rows.iter()
            .find(|r| r.provider == p)
            .and_then(|r| r.added_p50_us)
    };
    if let (Some(a), Some(b)) = (find(RATIO.0), find(RATIO.1)) {
        let _ = writeln!(
            s,
            "| **{}/{} added p50** | | | | | **{}** | | | |",
            RATIO.0,
            RATIO.1,
            ratio(a.median, b.median).map_or("-".into(), |x| format!("{x:.2}x"))
        );
    }
    s
}

/// The noise next to every run: load average, host busy share, the other provider's CPU.
pub fn runs_table(records: &[RunRecord]) -> String {
    let mut s = String::from(
        "| # | start (UTC) | point | provider | rep | ok | TPS | p99 ms | load 1m start-end | host busy % | idle servers' CPU (vCPU) | RTT p50 us (cross-CPU / unpinned) |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (i, r) in records.iter().enumerate() {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {:.0} | {:.2} | {} | {} | {} | {} |",
            i + 1,
            utc(r.started_unix),
            r.point_key().label(),
            r.provider,
            r.rep,
            if r.ok {
                "yes".to_string()
            } else {
                format!(
                    "**no**: {}",
                    r.failure
                        .as_deref()
                        .unwrap_or("?")
                        .replace('\n', " ")
                        .chars()
                        .take(160)
                        .collect::<String>()
                )
            },
            r.tps,
            r.latency.p99_us / 1000.0,
            match (r.host.load_1m_start, r.host.load_1m_end) {
                (Some(a), Some(b)) => format!("{a:.2}-{b:.2}"),
                _ => "-".into(),
            },
            r.host.busy_pct.map_or("-".into(), |b| format!("{b:.0}")),
            r.host
                .bystanders_cpu_util
                .map_or("-".into(), |b| format!("{b:.2}")),
            r.rtt
                .as_ref()
                .map_or("-".into(), |x| match x.unpinned_p50_us {
                    Some(u) => format!("{:.0} / {u:.0}", x.p50_us),
                    None => format!("{:.0} ({})", x.p50_us, x.method),
                }),
        );
    }
    s
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time (UTC), without a date library.
pub fn utc(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let rem = t % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn chart_for(
    records: &[RunRecord],
    workload: &str,
    title: &str,
    y_label: &str,
    f: fn(&RunRecord) -> f64,
) -> Option<BarChart> {
    let g = grouped(records);
    let keys: Vec<&PointKey> = g.keys().filter(|k| k.workload == workload).collect();
    if keys.is_empty() {
        return None;
    }
    let all: Vec<&RunRecord> = keys
        .iter()
        .flat_map(|k| g[*k].values().flatten().copied())
        .collect();
    let providers = provider_order(&all);
    let categories = keys
        .iter()
        .map(|k| match k.mode {
            Some(m) => format!("{} {}t", m.name(), k.threads),
            None => format!("{}t", k.threads),
        })
        .collect();
    let series = providers
        .iter()
        .map(|p| {
            let bars = keys
                .iter()
                .map(|k| {
                    let rs = g[*k].get(p)?;
                    let s = spread(rs, |r| Some(f(r)))?;
                    Some(Bar {
                        value: s.median,
                        min: s.min,
                        max: s.max,
                    })
                })
                .collect();
            (p.clone(), bars)
        })
        .collect();
    Some(BarChart {
        title: format!("{workload}: {title}"),
        y_label: y_label.into(),
        categories,
        series,
    })
}

/// Builds the whole report. `context` is prepended (machine, date, command line).
pub fn build(records: &[RunRecord], context: &str) -> Report {
    let mut md = String::from("# Trireme vs Galera 4: performance report\n\n");
    md.push_str(context);
    md.push('\n');
    let mut plots = Vec::new();
    let workloads: BTreeSet<String> = records
        .iter()
        .filter(|r| r.kind == SYSBENCH || r.kind == TPCC)
        .map(|r| r.workload.clone())
        .collect();
    if !workloads.is_empty() {
        md.push_str("\n## Throughput and latency\n\nMedian over repetitions, [min-max] when there are several. Latency is per transaction (sysbench event). `errors/s` counts the errors the clients got (sysbench: ignored and retried 1213/1205/1020; TPC-C: every failed attempt). `cert fail`, `BF aborts`: changes of `wsrep_local_cert_failures` / `wsrep_local_bf_aborts` summed over the nodes. `FC paused %`: largest share of the run a node spent paused by flow control (`wsrep_flow_control_paused_ns`). CPU: user+system time of the mariadbd processes / wall time. Ratios are Trireme's median over Galera's.\n\n");
        md.push_str(&throughput_table(records));
        for w in &workloads {
            let (tps_title, tps_f): (&str, fn(&RunRecord) -> f64) = if w == "tpcc" {
                ("NOTPM", |r| r.notpm.unwrap_or(0.0))
            } else {
                ("transactions per second", |r| r.tps)
            };
            if let Some(c) = chart_for(records, w, tps_title, tps_title, tps_f) {
                let name = format!("{w}_throughput.svg");
                let _ = writeln!(md, "\n![{w} throughput]({name})");
                plots.push((name, c.render()));
            }
            if let Some(c) = chart_for(records, w, "p99 latency", "ms", |r| {
                r.latency.p99_us / 1000.0
            }) {
                let name = format!("{w}_p99.svg");
                let _ = writeln!(md, "![{w} p99 latency]({name})");
                plots.push((name, c.render()));
            }
        }
    }
    if records.iter().any(|r| r.kind == TPCC) {
        md.push_str("\n## TPC-C per transaction type\n");
        md.push_str(&tpcc_table(records));
    }
    let commit = commit_table(records);
    if !commit.is_empty() {
        md.push_str("\n## Commit latency\n\nOne client, single-row autocommit INSERTs on node 0; the standalone server is the same my.cnf with wsrep off. \"Added\" is the cluster's latency minus the standalone server's in the same round (median over rounds); in RTTs it is divided by the loopback TCP round trip measured at the start of that round (64 bytes between two threads pinned to different vCPUs, as messages between two nodes on this box travel; the unpinned figure in the run list is often lower because the scheduler then keeps both threads on one vCPU).\n\n");
        md.push_str(&commit);
        if let Some(c) = chart_for(records, COMMIT_WORKLOAD, "commit latency p50", "us", |r| {
            r.latency.p50_us
        }) {
            let name = "commit_latency.svg".to_string();
            let _ = writeln!(md, "\n![commit latency]({name})");
            plots.push((name, c.render()));
        }
    }
    md.push_str("\n## Memory\n\nResident memory of the mariadbd processes at the end of each run, from /proc/<pid>/status: RssAnon (heap: buffer pool, provider allocations) and RssFile (mapped files: binaries, an mmap'd GCache).\n\n");
    md.push_str(&memory_table(records));
    md.push_str("\n## Every run\n\nIn the order they ran. `host busy %` is the whole machine (other users included); `idle servers' CPU` is what the other provider's servers used meanwhile.\n\n");
    md.push_str(&runs_table(records));
    let failed: Vec<&RunRecord> = records.iter().filter(|r| !r.ok).collect();
    if !failed.is_empty() {
        md.push_str("\n## Failed runs\n\n");
        for r in failed {
            let _ = writeln!(
                md,
                "- {} {} rep {}: {}",
                r.point_key().label(),
                r.provider,
                r.rep,
                r.failure.as_deref().unwrap_or("?")
            );
        }
    }
    Report {
        markdown: md,
        plots,
    }
}

/// Writes `report.md` and the plots into `dir`.
pub fn write(dir: &Path, report: &Report) -> Result<(), PerfError> {
    let w = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text)
            .map_err(|e| PerfError::io(format!("write {}", dir.join(name).display()), e))
    };
    w("report.md", &report.markdown)?;
    for (name, svg) in &report.plots {
        w(name, svg)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Mode;
    use crate::rtt::Rtt;
    use crate::stats::Latency;

    fn rec(provider: &str, kind: &str, workload: &str, rep: u32, tps: f64, p50: f64) -> RunRecord {
        RunRecord {
            kind: kind.into(),
            provider: provider.into(),
            workload: workload.into(),
            threads: if kind == COMMIT { 1 } else { 8 },
            mode: (kind != COMMIT).then_some(Mode::SingleWriter),
            rep,
            ok: true,
            tps,
            duration_s: 20.0,
            latency: Latency {
                count: 100,
                mean_us: p50,
                p50_us: p50,
                p95_us: p50 * 2.0,
                p99_us: p50 * 3.0,
                max_us: p50 * 10.0,
            },
            rtt: Some(Rtt {
                method: "tcp-loopback-64B".into(),
                round_trips: 100,
                p50_us: 100.0,
                p99_us: 200.0,
                min_us: 50.0,
                unpinned_p50_us: None,
            }),
            ..RunRecord::default()
        }
    }

    #[test]
    fn throughput_rows_show_medians_ranges_and_the_ratio() {
        let rs = vec![
            rec("galera", SYSBENCH, "oltp_update_index", 1, 1000.0, 2000.0),
            rec("trireme", SYSBENCH, "oltp_update_index", 1, 1500.0, 1000.0),
            rec("galera", SYSBENCH, "oltp_update_index", 2, 1200.0, 2000.0),
            rec("trireme", SYSBENCH, "oltp_update_index", 2, 1800.0, 1000.0),
            rec("galera", SYSBENCH, "oltp_update_index", 3, 1100.0, 2000.0),
            rec("trireme", SYSBENCH, "oltp_update_index", 3, 2100.0, 1000.0),
        ];
        let t = throughput_table(&rs);
        assert!(t.contains("| galera | 3 | 1100 [1000-1200] |"), "{t}");
        assert!(t.contains("| trireme | 3 | 1800 [1500-2100] |"), "{t}");
        // 1800 / 1100 and p99 3 ms / 6 ms.
        assert!(t.contains("**1.64x**"), "{t}");
        assert!(t.contains("| 0.50x |"), "{t}");
    }

    #[test]
    fn cpu_per_transaction_is_shown_per_node_writer_first() {
        let mut r = rec("trireme", SYSBENCH, "oltp_update_index", 1, 10_000.0, 400.0);
        for cpu in [0.9, 0.3, 0.35] {
            r.node_measures.push(crate::measure::NodeMeasure {
                cpu_util: Some(cpu),
                ..Default::default()
            });
        }
        let t = throughput_table(&[r]);
        // 0.9 vCPU / 10 000 TPS = 0.09 ms per transaction on node 0; about 0.15 in all.
        assert!(t.contains("| 1.55 | 0.15 | 0.090 / 0.030 / 0.035 |"), "{t}");
    }

    #[test]
    fn failed_runs_are_left_out_of_the_statistics_but_listed() {
        let mut bad = rec("trireme", SYSBENCH, "oltp_insert", 2, 0.0, 0.0);
        bad.ok = false;
        bad.failure = Some("server exited".into());
        let rs = vec![
            rec("trireme", SYSBENCH, "oltp_insert", 1, 500.0, 1000.0),
            bad,
        ];
        let r = build(&rs, "context line\n");
        assert!(
            r.markdown.contains("| trireme | 1 | 500 |"),
            "{}",
            r.markdown
        );
        assert!(r.markdown.contains("## Failed runs"));
        assert!(r.markdown.contains("server exited"));
        assert!(r.markdown.contains("context line"));
        assert!(r
            .plots
            .iter()
            .any(|(n, _)| n == "oltp_insert_throughput.svg"));
    }

    #[test]
    fn commit_latency_is_the_difference_to_standalone_in_the_same_round() {
        let mut rs = Vec::new();
        for (round, base) in [(1, 100.0), (2, 120.0), (3, 110.0)] {
            rs.push(rec(STANDALONE, COMMIT, COMMIT_WORKLOAD, round, 0.0, base));
            rs.push(rec(
                "galera",
                COMMIT,
                COMMIT_WORKLOAD,
                round,
                0.0,
                base + 800.0,
            ));
            rs.push(rec(
                "trireme",
                COMMIT,
                COMMIT_WORKLOAD,
                round,
                0.0,
                base + 300.0 + round as f64,
            ));
        }
        let rows = commit_rows(&rs);
        assert_eq!(
            rows.iter().map(|r| r.provider.as_str()).collect::<Vec<_>>(),
            ["standalone", "galera", "trireme"]
        );
        assert!(rows[0].added_p50_us.is_none());
        assert_eq!(rows[1].added_p50_us.unwrap().median, 800.0);
        assert_eq!(rows[1].added_p50_rtts.unwrap().median, 8.0);
        let t = rows[2].added_p50_us.unwrap();
        assert_eq!((t.median, t.min, t.max), (302.0, 301.0, 303.0));
        let table = commit_table(&rs);
        assert!(table.contains("**0.38x**"), "{table}");
    }

    #[test]
    fn flow_control_share_is_the_worst_node() {
        let mut r = rec("galera", SYSBENCH, "x", 1, 1.0, 1.0);
        for ns in [1_000_000_000i64, 4_000_000_000] {
            let mut n = crate::measure::NodeMeasure::default();
            n.counters.insert("wsrep_flow_control_paused_ns".into(), ns);
            r.node_measures.push(n);
        }
        assert_eq!(fc_paused_pct(&r), Some(20.0));
        assert_eq!(fc_paused_pct(&rec("g", SYSBENCH, "x", 1, 1.0, 1.0)), None);
    }

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_798_000_000), "2026-12-23 04:26:40");
    }
}
