//! Orchestration: start the targets, run the plan with providers alternating (A/B/A/B)
//! point by point, append every run to `results.jsonl` as it ends, then write the report.
//!
//! All local clusters stay up for the whole invocation (on distinct port bases and base
//! dirs), so that the providers take turns on every point without restarts; while one is
//! measured the others sit idle, and the CPU they use anyway is recorded next to the result.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::commit::{self, CommitSettings};
use crate::db::Endpoint;
use crate::error::PerfError;
use crate::record::{self, Mode, RunRecord};
use crate::report;
use crate::sysbench_run::{self, SysbenchSettings};
use crate::target::{LocalSettings, Target};
use crate::tpcc::TpccSettings;
use crate::tpcc_run;

/// A provider to start locally.
#[derive(Debug, Clone)]
pub struct LocalProvider {
    pub label: String,
    pub library: PathBuf,
}

/// Where the servers come from.
#[derive(Debug, Clone)]
pub enum Targets {
    /// Local clusters, one per provider, at `port_base + 100 * i`; the standalone baseline (for
    /// commit latency) after them.
    Local {
        providers: Vec<LocalProvider>,
        settings: LocalSettings,
        port_base: u16,
    },
    /// The user's cluster, by address.
    Remote {
        label: String,
        endpoints: Vec<Endpoint>,
    },
}

/// One point of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// A sysbench test name or `tpcc`.
    pub workload: String,
    pub threads: u32,
    pub mode: Mode,
}

/// Everything an invocation does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub targets: Targets,
    pub points: Vec<Point>,
    pub reps: u32,
    pub sysbench: SysbenchSettings,
    pub tpcc: TpccSettings,
    pub tpcc_load_connections: usize,
    pub commit: Option<CommitSettings>,
    pub out_dir: PathBuf,
    /// Markdown lines describing the invocation (date, machine, command line...).
    pub context: String,
}

/// The points of a matrix over these axes, in a stable order. Multi-primary points whose
/// threads all land on one node (fewer threads than it takes to reach a second node) are left
/// out: they would repeat the single-writer point.
pub fn matrix_points(
    workloads: &[String],
    threads: &[u32],
    modes: &[Mode],
    nodes: usize,
) -> Vec<Point> {
    let mut v = Vec::new();
    for w in workloads {
        for &m in modes {
            for &t in threads {
                if m == Mode::MultiPrimary
                    && m.spread(t, nodes).iter().filter(|&&x| x > 0).count() < 2
                {
                    continue;
                }
                v.push(Point {
                    workload: w.clone(),
                    threads: t,
                    mode: m,
                });
            }
        }
    }
    v
}

fn start_targets(plan: &Plan) -> Result<(Vec<Target>, Option<Target>), PerfError> {
    match &plan.targets {
        Targets::Remote { label, endpoints } => {
            Ok((vec![Target::remote(label, endpoints.clone())?], None))
        }
        Targets::Local {
            providers,
            settings,
            port_base,
        } => {
            let mut v = Vec::new();
            for (i, p) in providers.iter().enumerate() {
                let port = port_base + 100 * i as u16;
                v.push(Target::start_local(
                    &p.label,
                    Some(&p.library),
                    port,
                    settings,
                )?);
                log::info!("{}: up ({})", p.label, v[i].provider_version);
            }
            let single_writer_sysbench = plan
                .points
                .iter()
                .any(|p| p.workload != "tpcc" && p.mode == Mode::SingleWriter);
            let standalone = if plan.commit.is_some() || single_writer_sysbench {
                let port = port_base + 100 * providers.len() as u16;
                Some(Target::start_local(
                    report::STANDALONE,
                    None,
                    port,
                    settings,
                )?)
            } else {
                None
            };
            Ok((v, standalone))
        }
    }
}

/// Runs the plan. Returns the records (also in `<out>/results.jsonl`) and writes the report.
pub fn execute(plan: &Plan) -> Result<Vec<RunRecord>, PerfError> {
    std::fs::create_dir_all(&plan.out_dir)
        .map_err(|e| PerfError::io(format!("create {}", plan.out_dir.display()), e))?;
    let results = plan.out_dir.join("results.jsonl");
    if results.exists() {
        return Err(PerfError::Usage(format!(
            "{} exists already; choose another --out (or re-render it with `trireme-perf report --out {}`)",
            results.display(),
            plan.out_dir.display()
        )));
    }
    std::fs::write(plan.out_dir.join("context.md"), &plan.context)
        .map_err(|e| PerfError::io("write context.md", e))?;
    let mut records = Vec::new();
    let keep = |r: RunRecord, records: &mut Vec<RunRecord>| -> Result<(), PerfError> {
        log::info!(
            "{} {} rep {}: {}",
            r.point_key().label(),
            r.provider,
            r.rep,
            summary_line(&r)
        );
        record::append(&results, &r)?;
        records.push(r);
        Ok(())
    };

    let (targets, standalone) = start_targets(plan)?;
    let all_pids: Vec<Vec<u32>> = targets.iter().map(Target::live_pids).collect();
    let standalone_pids = standalone
        .as_ref()
        .map(Target::live_pids)
        .unwrap_or_default();
    // While target i runs, every other local server is a bystander.
    let bystanders = |i: usize| -> Vec<u32> {
        all_pids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, p)| p.iter().copied())
            .chain(standalone_pids.iter().copied())
            .collect()
    };

    let mut tpcc_loaded = false;
    for point in &plan.points {
        if point.workload == "tpcc" && !tpcc_loaded {
            for t in &targets {
                let secs = tpcc_run::load_target(t, &plan.tpcc, plan.tpcc_load_connections)?;
                let violations = tpcc_run::check_all_nodes(t, &plan.tpcc.db, false)?;
                if !violations.is_empty() {
                    return Err(PerfError::Run(format!(
                        "{}: the freshly loaded TPC-C database breaks its consistency conditions: {}",
                        t.label,
                        violations.join("; ")
                    )));
                }
                log::info!(
                    "{}: TPC-C database loaded ({secs:.0} s) and consistent",
                    t.label
                );
            }
            tpcc_loaded = true;
        }
        for rep in 1..=plan.reps {
            for (i, t) in targets.iter().enumerate() {
                log::info!(
                    "running {} {} {}t on {} (rep {rep}/{})",
                    point.workload,
                    point.mode.name(),
                    point.threads,
                    t.label,
                    plan.reps
                );
                let mut r = if point.workload == "tpcc" {
                    tpcc_run::run_point(
                        t,
                        point.threads,
                        point.mode,
                        rep,
                        &plan.tpcc,
                        &bystanders(i),
                    )
                } else {
                    sysbench_run::run_point(
                        t,
                        &point.workload,
                        point.threads,
                        point.mode,
                        rep,
                        &plan.sysbench,
                        &bystanders(i),
                    )
                };
                if !r.ok {
                    let tails = t.error_log_tails(15);
                    if !tails.is_empty() {
                        r.notes.push(format!("error log tails:\n{tails}"));
                    }
                }
                keep(r, &mut records)?;
            }
            // The ceiling: the same sysbench point on one standalone server (same my.cnf,
            // wsrep off), whose CPU per transaction is MariaDB's own share of what a cluster
            // spends. Single-writer sysbench points only (multi-primary needs a cluster).
            let ceiling = point.workload != "tpcc" && point.mode == Mode::SingleWriter;
            if let Some(s) = standalone.as_ref().filter(|_| ceiling) {
                log::info!(
                    "running {} {} {}t on {} (rep {rep}/{})",
                    point.workload,
                    point.mode.name(),
                    point.threads,
                    s.label,
                    plan.reps
                );
                let others: Vec<u32> = all_pids.iter().flatten().copied().collect();
                let r = sysbench_run::run_point(
                    s,
                    &point.workload,
                    point.threads,
                    point.mode,
                    rep,
                    &plan.sysbench,
                    &others,
                );
                keep(r, &mut records)?;
            }
        }
        let last_tpcc = plan.points.iter().rposition(|p| p.workload == "tpcc");
        if point.workload == "tpcc"
            && last_tpcc.is_some_and(|i| std::ptr::eq(&plan.points[i], point))
        {
            finish_tpcc(&targets, &plan.tpcc.db, &mut records, &results)?;
        }
    }

    if let Some(cs) = &plan.commit {
        let mut list: Vec<&Target> = Vec::new();
        if let Some(s) = &standalone {
            list.push(s);
        }
        list.extend(targets.iter());
        // Bystanders of list[k]: every other local server.
        let lists: Vec<Vec<u32>> = list
            .iter()
            .map(|t| {
                list.iter()
                    .filter(|o| o.label != t.label)
                    .flat_map(|o| o.live_pids())
                    .collect()
            })
            .collect();
        let mut pending = Vec::new();
        commit::run(&list, cs, &|k| lists[k].clone(), &mut |r| pending.push(r))?;
        for r in pending {
            keep(r, &mut records)?;
        }
    }
    drop(targets);
    drop(standalone);
    let rep = report::build(&records, &plan.context);
    report::write(&plan.out_dir, &rep)?;
    Ok(records)
}

/// After the last TPC-C point: the full check on every target, added to its last TPC-C record
/// (which is appended again, so `results.jsonl` keeps both versions; the report reads the
/// last one of each run).
fn finish_tpcc(
    targets: &[Target],
    db: &str,
    records: &mut [RunRecord],
    results: &Path,
) -> Result<(), PerfError> {
    for t in targets {
        log::info!("{}: full TPC-C consistency check on every node", t.label);
        let found = tpcc_run::final_check(t, db);
        let Some(r) = records
            .iter_mut()
            .rev()
            .find(|r| r.kind == record::TPCC && r.provider == t.label)
        else {
            continue;
        };
        match found {
            Ok(v) => {
                log::info!(
                    "{}: {}",
                    t.label,
                    if v.is_empty() {
                        "all conditions hold, nodes identical".to_string()
                    } else {
                        v.join("; ")
                    }
                );
                r.notes.push(format!(
                    "after this run, the last TPC-C run of {}: all consistency conditions checked on every node{}",
                    t.label,
                    if t.is_local() { " and every table compared across nodes" } else { "" }
                ));
                r.consistency_violations
                    .get_or_insert_with(Vec::new)
                    .extend(v);
            }
            Err(e) => r
                .notes
                .push(format!("full consistency check failed to run: {e}")),
        }
        r.notes.push("final_check".into());
        record::append(results, r)?;
    }
    Ok(())
}

/// One line per run for the log.
pub fn summary_line(r: &RunRecord) -> String {
    if !r.ok {
        return format!("FAILED: {}", r.failure.as_deref().unwrap_or("?"));
    }
    let mut s = format!(
        "tps {:.0} p50 {:.2} ms p99 {:.2} ms errors {}",
        r.tps,
        r.latency.p50_us / 1000.0,
        r.latency.p99_us / 1000.0,
        r.errors
    );
    if let Some(n) = r.notpm {
        s.push_str(&format!(" notpm {n:.0}"));
    }
    let c: std::collections::BTreeMap<String, i64> = [
        "wsrep_local_cert_failures",
        "wsrep_local_bf_aborts",
        "wsrep_flow_control_sent",
    ]
    .iter()
    .map(|k| (k.to_string(), r.counter_sum(k)))
    .collect();
    let extra = sysbench_run::short(&c);
    if !extra.is_empty() {
        s.push(' ');
        s.push_str(&extra);
    }
    if let Some(v) = &r.consistency_violations {
        s.push_str(if v.is_empty() {
            " consistent"
        } else {
            " CONSISTENCY VIOLATED"
        });
    }
    s
}

/// Output of a command, trimmed, or `?`.
fn cmd_out(prog: &str, args: &[&str]) -> String {
    Command::new(prog)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into())
}

/// size, mtime and sha256 of a file, for the record.
pub fn describe_file(p: &Path) -> String {
    let meta = std::fs::metadata(p).ok();
    let sha = cmd_out("sha256sum", &[&p.to_string_lossy()]);
    format!(
        "`{}` ({} bytes, modified {}, sha256 {})",
        p.display(),
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or("?".into(), |d| report::utc(d.as_secs()) + " UTC"),
        sha.split_whitespace().next().unwrap_or("?")
    )
}

/// The markdown header of a report: when, where, what.
pub fn context(command_line: &str, providers: &[(String, String)], repo: &Path) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb as f64 / 1048576.0));
    let git = cmd_out(
        "git",
        &[
            "-C",
            &repo.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = cmd_out(
        "git",
        &[
            "-C",
            &repo.to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    );
    let mut s = format!(
        "- date: {} UTC\n- command: `{command_line}`\n- machine: {} vCPU ({cpu}), {mem} RAM, kernel {}\n- load average at start: {}\n- software: {}, {}\n- repository: {} at {git}{}\n",
        report::utc(sysbench_run::unix_now()),
        crate::procfs::cpus(),
        cmd_out("uname", &["-r"]),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        cmd_out("mariadbd", &["--version"]),
        cmd_out("sysbench", &["--version"]),
        repo.display(),
        if dirty == "?" { "" } else { " (with uncommitted changes in the work tree)" },
    );
    for (label, what) in providers {
        s.push_str(&format!("- {label}: {what}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_leaves_out_multi_primary_points_that_reach_one_node() {
        let p = matrix_points(
            &["oltp_insert".into()],
            &[1, 8],
            &[Mode::SingleWriter, Mode::MultiPrimary],
            3,
        );
        let got: Vec<(u32, Mode)> = p.iter().map(|p| (p.threads, p.mode)).collect();
        assert_eq!(
            got,
            vec![
                (1, Mode::SingleWriter),
                (8, Mode::SingleWriter),
                (8, Mode::MultiPrimary)
            ]
        );
    }
}
