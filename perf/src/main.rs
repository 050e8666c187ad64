//! `trireme-perf`: the command. See perf/README.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use trireme_perf::commit::CommitSettings;
use trireme_perf::db;
use trireme_perf::record::{self, Mode};
use trireme_perf::report;
use trireme_perf::runner::{self, LocalProvider, Plan, Point, Targets};
use trireme_perf::sysbench_run::{SysbenchSettings, WORKLOADS};
use trireme_perf::target::LocalSettings;
use trireme_perf::tpcc::{Scale, TpccSettings};
use trireme_perf::PerfError;

const USAGE: &str = "\
usage:
  trireme-perf quick  [options]   3 nodes, 20 s per point: oltp_update_index 8 threads single-writer,
                                  oltp_write_only 8 threads multi-primary, commit latency; one repetition
                                  per provider, alternating; prints the markdown tables. Single-writer
                                  sysbench points also run on a standalone server (the ceiling)
  trireme-perf matrix [options]   the full matrix (default: 4 sysbench workloads + tpcc, threads 1,8,32,
                                  single-writer and multi-primary, 3 repetitions, 60 s per run, commit latency)
  trireme-perf commit-latency [options]   only the commit latency measurement
  trireme-perf report --out DIR   re-render DIR/report.md from DIR/results.jsonl
  trireme-perf rtt                measure the loopback round trip and exit

options (matrix; quick and commit-latency accept the relevant ones):
  --providers galera,trireme   local providers, in the order they take turns (default both)
  --trireme PATH               Trireme library (default <repo>/target/release/libtrireme.so)
  --galera PATH                Galera 4 library (default /usr/lib/galera/libgalera_smm.so)
  --no-snapshot                load the libraries in place (default: copy them into the base dir first,
                               so a rebuild during the run cannot change what is measured)
  --nodes N                    nodes per cluster (default 3)
  --workloads LIST             oltp_insert,oltp_update_index,oltp_write_only,oltp_read_write,tpcc
  --threads LIST               total client threads (default 1,8,32)
  --modes LIST                 single,multi (default both)
  --reps N                     repetitions of every point per provider (default 3)
  --secs N                     seconds per run (default 60; quick 20)
  --tables N --table-size N    sysbench tables (default 8 x 10000)
  --rand-type T                sysbench --rand-type (default uniform)
  --tpcc-warehouses N          (default 2)    --tpcc-scale full|small (default full)
  --commit-rounds N            (default 5; quick 3)  --commit-inserts N (default 2000; quick 1000)
  --no-commit-latency          skip the commit latency measurement
  --slave-threads N            wsrep_slave_threads (default 4)
  --buffer-pool SIZE           innodb_buffer_pool_size (default 512M)
  --provider-options 'k=v;..'  extra wsrep_provider_options, the same for every provider
  --cnf key=value              extra my.cnf line for every server (repeatable)
  --port-base P                first port (default 21000; provider i uses P+100*i, standalone after them)
  --base-dir DIR               where the servers live (default /tmp/trireme-perf-<pid>)
  --out DIR                    results (default /tmp/trireme-perf-results/<command>-<date>)
  --seed N                     TPC-C seed (default: from the clock, printed)
  remote cluster instead of local ones:
  --hosts h:p,h:p,... --user U --password P [--label NAME]
set TRIREME_PERF_LOG=debug|info|warn|off for more or less progress output (default info).";

/// `--key value` / `--key=value` / `--flag` arguments.
#[derive(Debug, Default)]
struct Args {
    values: BTreeMap<String, Vec<String>>,
    flags: Vec<String>,
}

const FLAGS: &[&str] = &["no-snapshot", "no-commit-latency", "help"];

impl Args {
    fn parse(args: &[String]) -> Result<Args, PerfError> {
        let mut a = Args::default();
        let mut it = args.iter();
        while let Some(x) = it.next() {
            let Some(key) = x.strip_prefix("--") else {
                return Err(PerfError::Usage(format!("unexpected argument {x:?}")));
            };
            if FLAGS.contains(&key) {
                a.flags.push(key.into());
                continue;
            }
            let (k, v) = match key.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (
                    key.to_string(),
                    it.next()
                        .ok_or_else(|| PerfError::Usage(format!("--{key} needs a value")))?
                        .clone(),
                ),
            };
            a.values.entry(k).or_default().push(v);
        }
        Ok(a)
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.values
            .get(k)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    fn flag(&self, k: &str) -> bool {
        self.flags.iter().any(|f| f == k)
    }

    fn num<T: std::str::FromStr>(&self, k: &str, default: T) -> Result<T, PerfError> {
        match self.get(k) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| PerfError::Usage(format!("--{k} {v:?} is not a number"))),
        }
    }

    fn list(&self, k: &str, default: &[&str]) -> Vec<String> {
        match self.get(k) {
            None => default.iter().map(|s| s.to_string()).collect(),
            Some(v) => v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    fn check_known(&self, known: &[&str]) -> Result<(), PerfError> {
        for k in self.values.keys() {
            if !known.contains(&k.as_str()) {
                return Err(PerfError::Usage(format!("unknown option --{k}")));
            }
        }
        Ok(())
    }
}

const KNOWN: &[&str] = &[
    "providers",
    "trireme",
    "galera",
    "nodes",
    "workloads",
    "threads",
    "modes",
    "reps",
    "secs",
    "tables",
    "table-size",
    "rand-type",
    "tpcc-warehouses",
    "tpcc-scale",
    "commit-rounds",
    "commit-inserts",
    "slave-threads",
    "buffer-pool",
    "provider-options",
    "cnf",
    "port-base",
    "base-dir",
    "out",
    "seed",
    "hosts",
    "user",
    "password",
    "label",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Copies `lib` into `dir` (readable by mysql) so that the file under test cannot change.
fn snapshot(lib: &Path, dir: &Path, label: &str) -> Result<PathBuf, PerfError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| PerfError::io(format!("create {}", dir.display()), e))?;
    let to = dir.join(format!(
        "{label}-{}",
        lib.file_name()
            .map_or("provider.so".into(), |n| n.to_string_lossy().into_owned())
    ));
    std::fs::copy(lib, &to)
        .map_err(|e| PerfError::io(format!("copy {} to {}", lib.display(), to.display()), e))?;
    Ok(to)
}

fn build_plan(cmd: &str, a: &Args, command_line: &str) -> Result<Plan, PerfError> {
    a.check_known(KNOWN)?;
    let quick = cmd == "quick";
    let pid = std::process::id();
    let base_dir = PathBuf::from(
        a.get("base-dir")
            .map_or(format!("/tmp/trireme-perf-{pid}"), str::to_string),
    );
    let out_dir = PathBuf::from(a.get("out").map_or_else(
        || {
            let stamp =
                report::utc(trireme_perf::sysbench_run::unix_now()).replace([' ', ':'], "-");
            format!("/tmp/trireme-perf-results/{cmd}-{stamp}")
        },
        str::to_string,
    ));
    let nodes: usize = a.num("nodes", 3)?;
    let secs: u64 = a.num("secs", if quick { 20 } else { 60 })?;
    let seed: u64 = match a.get("seed") {
        Some(_) => a.num("seed", 0)?,
        None => trireme_perf::sysbench_run::unix_now(),
    };
    let mut providers_desc = Vec::new();
    let targets = if let Some(hosts) = a.get("hosts") {
        let user = a
            .get("user")
            .ok_or_else(|| PerfError::Usage("--hosts needs --user".into()))?;
        let password = a.get("password").unwrap_or("");
        let endpoints = db::parse_hosts(hosts, user, password).map_err(PerfError::Usage)?;
        let label = a.get("label").unwrap_or("remote").to_string();
        providers_desc.push((label.clone(), format!("remote hosts {hosts} as {user}")));
        Targets::Remote { label, endpoints }
    } else {
        let mut providers = Vec::new();
        for p in a.list("providers", &["galera", "trireme"]) {
            let lib = match p.as_str() {
                "galera" => {
                    PathBuf::from(a.get("galera").unwrap_or(trireme_testbed::GALERA_PROVIDER))
                }
                "trireme" => a
                    .get("trireme")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| repo_root().join("target/release/libtrireme.so")),
                other => {
                    return Err(PerfError::Usage(format!(
                        "unknown provider {other:?} (galera, trireme)"
                    )))
                }
            };
            if !lib.exists() {
                return Err(PerfError::Usage(format!(
                    "{p}: {} does not exist{}",
                    lib.display(),
                    if p == "trireme" {
                        " (build it: cargo build --release -p trireme-ffi)"
                    } else {
                        ""
                    }
                )));
            }
            let desc = runner::describe_file(&lib);
            let library = if a.flag("no-snapshot") {
                lib
            } else {
                snapshot(&lib, &base_dir, &p)?
            };
            providers_desc.push((
                p.clone(),
                format!(
                    "{desc}{}",
                    if a.flag("no-snapshot") {
                        ""
                    } else {
                        ", loaded from a copy taken at the start"
                    }
                ),
            ));
            providers.push(LocalProvider { label: p, library });
        }
        Targets::Local {
            providers,
            settings: LocalSettings {
                base_dir: base_dir.clone(),
                nodes,
                slave_threads: a.num("slave-threads", 4)?,
                buffer_pool: a.get("buffer-pool").unwrap_or("512M").into(),
                provider_options: a.get("provider-options").unwrap_or("").into(),
                extra_cnf: a.values.get("cnf").cloned().unwrap_or_default(),
            },
            port_base: a.num("port-base", 21000)?,
        }
    };
    let points = match cmd {
        "quick" => vec![
            Point {
                workload: "oltp_update_index".into(),
                threads: 8,
                mode: Mode::SingleWriter,
            },
            Point {
                workload: "oltp_write_only".into(),
                threads: 8,
                mode: Mode::MultiPrimary,
            },
        ],
        "commit-latency" => Vec::new(),
        _ => {
            let mut workloads: Vec<&str> = WORKLOADS.to_vec();
            workloads.push("tpcc");
            let workloads = a.list("workloads", &workloads);
            for w in &workloads {
                if w != "tpcc" && !WORKLOADS.contains(&w.as_str()) {
                    return Err(PerfError::Usage(format!("unknown workload {w:?}")));
                }
            }
            let threads = a
                .list("threads", &["1", "8", "32"])
                .iter()
                .map(|t| {
                    t.parse()
                        .map_err(|_| PerfError::Usage(format!("bad thread count {t:?}")))
                })
                .collect::<Result<Vec<u32>, _>>()?;
            let modes = a
                .list("modes", &["single", "multi"])
                .iter()
                .map(|m| {
                    Mode::parse(m)
                        .ok_or_else(|| PerfError::Usage(format!("bad mode {m:?} (single, multi)")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let n = match &targets {
                Targets::Remote { endpoints, .. } => endpoints.len(),
                Targets::Local { .. } => nodes,
            };
            runner::matrix_points(&workloads, &threads, &modes, n)
        }
    };
    let scale = match a.get("tpcc-scale").unwrap_or("full") {
        "full" => Scale::full(a.num("tpcc-warehouses", 2)?),
        "small" => Scale::small(a.num("tpcc-warehouses", 2)?),
        other => {
            return Err(PerfError::Usage(format!(
                "--tpcc-scale {other:?}: full or small"
            )))
        }
    };
    let commit = (!a.flag("no-commit-latency")).then(|| -> Result<CommitSettings, PerfError> {
        Ok(CommitSettings {
            rounds: a.num("commit-rounds", if quick { 3 } else { 5 })?,
            inserts: a.num("commit-inserts", if quick { 1000 } else { 2000 })?,
            warmup: 200,
        })
    });
    let commit = commit.transpose()?;
    Ok(Plan {
        targets,
        points,
        reps: if quick {
            a.num("reps", 1)?
        } else {
            a.num("reps", 3)?
        },
        sysbench: SysbenchSettings {
            tables: a.num("tables", 8)?,
            table_size: a.num("table-size", 10_000)?,
            secs,
            rand_type: a.get("rand-type").unwrap_or("uniform").into(),
            db: "sbtest".into(),
        },
        tpcc: TpccSettings {
            db: "tpcc".into(),
            scale,
            secs,
            max_attempts: 10,
            seed,
        },
        tpcc_load_connections: 3,
        commit,
        context: runner::context(command_line, &providers_desc, &repo_root()),
        out_dir,
    })
}

fn run(args: Vec<String>) -> Result<(), PerfError> {
    let Some(cmd) = args.first().cloned() else {
        return Err(PerfError::Usage("no command".into()));
    };
    let a = Args::parse(&args[1..])?;
    if a.flag("help") || cmd == "help" || cmd == "--help" || cmd == "-h" {
        println!("{USAGE}");
        return Ok(());
    }
    match cmd.as_str() {
        "quick" | "matrix" | "commit-latency" => {
            let command_line = format!(
                "trireme-perf {}",
                args.iter()
                    .map(|s| if s.contains(' ') {
                        format!("'{s}'")
                    } else {
                        s.clone()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            let command_line = mask_password(&command_line);
            let plan = build_plan(&cmd, &a, &command_line)?;
            let t0 = Instant::now();
            log::info!("results go to {}", plan.out_dir.display());
            let records = runner::execute(&plan)?;
            println!("{}", plan.context);
            if records.iter().any(|r| r.kind != record::COMMIT) {
                println!("{}", report::throughput_table(&records));
            }
            println!("{}", report::commit_table(&records));
            let failed = records.iter().filter(|r| !r.ok).count();
            println!(
                "{} runs ({failed} failed) in {:.1} min; report: {}",
                records.len(),
                t0.elapsed().as_secs_f64() / 60.0,
                plan.out_dir.join("report.md").display()
            );
            Ok(())
        }
        "report" => {
            a.check_known(&["out"])?;
            let dir = PathBuf::from(
                a.get("out")
                    .ok_or_else(|| PerfError::Usage("report needs --out DIR".into()))?,
            );
            let records = record::latest_per_run(record::read_all(&dir.join("results.jsonl"))?);
            let context = std::fs::read_to_string(dir.join("context.md")).unwrap_or_default();
            report::write(&dir, &report::build(&records, &context))?;
            println!("{}", dir.join("report.md").display());
            Ok(())
        }
        "rtt" => {
            let r = trireme_perf::rtt::loopback(20_000)
                .map_err(|e| PerfError::io("loopback ping-pong", e))?;
            println!(
                "loopback TCP 64 B round trip ({}): p50 {:.1} us, p99 {:.1} us, min {:.1} us ({} round trips); unpinned p50 {:.1} us",
                r.method,
                r.p50_us,
                r.p99_us,
                r.min_us,
                r.round_trips,
                r.unpinned_p50_us.unwrap_or(f64::NAN)
            );
            Ok(())
        }
        other => Err(PerfError::Usage(format!("unknown command {other:?}"))),
    }
}

fn mask_password(s: &str) -> String {
    let mut out = Vec::new();
    let mut hide = false;
    for w in s.split(' ') {
        if hide {
            out.push("***".to_string());
            hide = false;
        } else if let Some(rest) = w.strip_prefix("--password=") {
            let _ = rest;
            out.push("--password=***".into());
        } else {
            hide = w == "--password";
            out.push(w.to_string());
        }
    }
    out.join(" ")
}

struct StderrLogger {
    level: log::LevelFilter,
    start: Instant,
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "[{:7.1}s {}] {}",
                self.start.elapsed().as_secs_f64(),
                r.level(),
                r.args()
            );
        }
    }
    fn flush(&self) {}
}

fn main() -> ExitCode {
    let level = match std::env::var("TRIREME_PERF_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    let logger = Box::leak(Box::new(StderrLogger {
        level,
        start: Instant::now(),
    }));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(PerfError::Usage(m)) => {
            eprintln!("error: {m}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_take_values_both_ways_and_refuse_unknown_ones() {
        let v: Vec<String> = [
            "--secs",
            "5",
            "--modes=single",
            "--cnf",
            "a=1",
            "--cnf",
            "b=2",
            "--no-snapshot",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let a = Args::parse(&v).unwrap();
        assert_eq!(a.num("secs", 0u64).unwrap(), 5);
        assert_eq!(a.list("modes", &[]), vec!["single"]);
        assert_eq!(a.values["cnf"], vec!["a=1", "b=2"]);
        assert!(a.flag("no-snapshot"));
        assert!(a.check_known(KNOWN).is_ok());
        assert!(Args::parse(&["--secs".to_string()]).is_err());
        let bad = Args::parse(&["--bogus".into(), "1".into()]).unwrap();
        assert!(bad.check_known(KNOWN).is_err());
    }

    #[test]
    fn passwords_never_reach_the_report() {
        assert_eq!(
            mask_password("x --password s3cret --user u"),
            "x --password *** --user u"
        );
        assert_eq!(mask_password("x --password=s3cret"), "x --password=***");
    }
}
