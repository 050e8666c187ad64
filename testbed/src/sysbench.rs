//! sysbench: prepare, run and clean up an OLTP workload against one node or, concurrently,
//! against several (multi-primary), and parse what it reports.
//!
//! sysbench is run as a child process with every option explicit. Over the Unix socket it
//! connects as `root` (authenticated by `unix_socket`, since the testbed runs as root); over
//! TCP it needs a user with a password, which [`create_user`] makes. Tables are created once,
//! on one node: DDL and the inserted rows replicate to the others.
//!
//! Galera reports certification conflicts between nodes as deadlocks (1213), so a
//! multi-primary run has errors by nature: sysbench's default `--mysql-ignore-errors`
//! (1213, 1020, 1205) retries them and counts them as "ignored errors", which the report
//! exposes as [`SysbenchReport::errors`].

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::error::{Result, TestbedError};
use crate::node::Node;
use crate::process;
use crate::sql::{quote_ident, quote_str};

/// Debian's sysbench.
pub const SYSBENCH: &str = "/usr/bin/sysbench";

/// How sysbench reaches a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysbenchConnection {
    /// Unix socket, passwordless (`unix_socket` authentication as root).
    Socket { socket: PathBuf, user: String },
    /// TCP with a password (see [`create_user`]).
    Tcp {
        host: String,
        port: u16,
        user: String,
        password: String,
    },
}

/// One node as a sysbench target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysbenchTarget {
    /// The node's name, for reports and errors.
    pub node: String,
    /// How to connect.
    pub connection: SysbenchConnection,
}

impl SysbenchTarget {
    /// `node` over its Unix socket as root.
    pub fn socket(node: &Node) -> Self {
        SysbenchTarget {
            node: node.name().into(),
            connection: SysbenchConnection::Socket {
                socket: node.socket().to_path_buf(),
                user: "root".into(),
            },
        }
    }

    /// `node` over TCP (127.0.0.1 and its SQL port) as `user`.
    pub fn tcp(node: &Node, user: &str, password: &str) -> Self {
        SysbenchTarget {
            node: node.name().into(),
            connection: SysbenchConnection::Tcp {
                host: "127.0.0.1".into(),
                port: node.ports().sql,
                user: user.into(),
                password: password.into(),
            },
        }
    }

    fn args(&self) -> Vec<String> {
        match &self.connection {
            SysbenchConnection::Socket { socket, user } => vec![
                format!("--mysql-socket={}", socket.display()),
                format!("--mysql-user={user}"),
            ],
            SysbenchConnection::Tcp {
                host,
                port,
                user,
                password,
            } => vec![
                format!("--mysql-host={host}"),
                format!("--mysql-port={port}"),
                format!("--mysql-user={user}"),
                format!("--mysql-password={password}"),
            ],
        }
    }
}

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Workload {
    /// The bundled Lua test: `oltp_read_write`, `oltp_write_only`, `oltp_update_index`,
    /// `oltp_insert`, `oltp_read_only`, ...
    pub test: String,
    /// Database holding the tables (`--mysql-db`).
    pub db: String,
    /// `--tables`.
    pub tables: u32,
    /// `--table-size` (rows per table).
    pub table_size: u64,
    /// `--threads` (per target when running against several nodes).
    pub threads: u32,
    /// `--time`.
    pub time: Duration,
    /// `--report-interval`; interim lines are parsed into [`SysbenchReport::intervals`].
    pub report_interval: Option<Duration>,
    /// `--mysql-ignore-errors` (`None`: sysbench's default, 1213,1020,1205).
    pub ignore_errors: Option<String>,
    /// Anything else, passed as is (`--rand-type=uniform`, `--skip-trx=on`, ...).
    pub extra_args: Vec<String>,
    /// How long `prepare` or `cleanup` may take.
    pub setup_timeout: Duration,
}

impl Workload {
    /// `test` with small defaults: 4 tables of 10 000 rows, 4 threads, 10 s.
    pub fn new(test: impl Into<String>) -> Self {
        Workload {
            test: test.into(),
            db: "sbtest".into(),
            tables: 4,
            table_size: 10_000,
            threads: 4,
            time: Duration::from_secs(10),
            report_interval: None,
            ignore_errors: None,
            extra_args: Vec::new(),
            setup_timeout: Duration::from_secs(900),
        }
    }

    fn args(&self, phase: &str, target: &SysbenchTarget) -> Vec<String> {
        let mut a = vec![
            self.test.clone(),
            "--db-driver=mysql".into(),
            format!("--mysql-db={}", self.db),
            format!("--tables={}", self.tables),
            format!("--table-size={}", self.table_size),
            format!("--threads={}", self.threads),
            format!("--time={}", self.time.as_secs().max(1)),
            "--percentile=95".into(),
            // Measure the whole run: sysbench's default would stop at 10 000 events.
            "--events=0".into(),
        ];
        a.extend(target.args());
        if let Some(r) = self.report_interval {
            a.push(format!("--report-interval={}", r.as_secs().max(1)));
        }
        if let Some(e) = &self.ignore_errors {
            a.push(format!("--mysql-ignore-errors={e}"));
        }
        a.extend(self.extra_args.iter().cloned());
        a.push(phase.into());
        a
    }
}

/// One interim line (`--report-interval`).
#[derive(Debug, Clone, PartialEq)]
pub struct IntervalReport {
    /// Seconds since the start.
    pub at_secs: u64,
    /// Threads running.
    pub threads: u32,
    /// Transactions per second in the interval.
    pub tps: f64,
    /// Queries per second in the interval.
    pub qps: f64,
    /// 95th percentile latency in the interval.
    pub latency_p95_ms: f64,
    /// Ignored errors per second.
    pub errors_per_sec: f64,
    /// Reconnects per second.
    pub reconnects_per_sec: f64,
}

/// The final report of a run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SysbenchReport {
    /// The target's node name.
    pub node: String,
    /// Read queries.
    pub reads: u64,
    /// Write queries.
    pub writes: u64,
    /// Other queries (BEGIN, COMMIT, ...).
    pub other: u64,
    /// Transactions.
    pub transactions: u64,
    /// Transactions per second.
    pub tps: f64,
    /// Queries.
    pub queries: u64,
    /// Queries per second.
    pub qps: f64,
    /// Ignored errors (certification conflicts, deadlocks).
    pub errors: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Measured time in seconds.
    pub total_time_secs: f64,
    /// Latency minimum.
    pub latency_min_ms: f64,
    /// Latency average.
    pub latency_avg_ms: f64,
    /// Latency 95th percentile.
    pub latency_p95_ms: f64,
    /// Latency maximum.
    pub latency_max_ms: f64,
    /// Interim lines, if `report_interval` was set.
    pub intervals: Vec<IntervalReport>,
    /// The latency histogram of the whole run, if `--histogram=on` was passed (in
    /// `extra_args`): `(bucket value in ms, events)`, as sysbench prints it (1024 logarithmic
    /// buckets, values printed to 3 decimals).
    pub histogram: Vec<(f64, u64)>,
}

/// A sysbench runner for one workload.
#[derive(Debug, Clone)]
pub struct Sysbench {
    /// The sysbench binary.
    pub binary: PathBuf,
    /// What to run.
    pub workload: Workload,
}

impl Sysbench {
    /// A runner for `workload` with Debian's sysbench.
    pub fn new(workload: Workload) -> Self {
        Sysbench {
            binary: PathBuf::from(SYSBENCH),
            workload,
        }
    }

    /// Creates and fills the tables (through one node; they replicate).
    pub fn prepare(&self, target: &SysbenchTarget) -> Result<()> {
        self.invoke("prepare", target, self.workload.setup_timeout)
            .map(|_| ())
    }

    /// Drops the tables.
    pub fn cleanup(&self, target: &SysbenchTarget) -> Result<()> {
        self.invoke("cleanup", target, self.workload.setup_timeout)
            .map(|_| ())
    }

    /// Runs the workload against one node and returns the parsed report.
    pub fn run(&self, target: &SysbenchTarget) -> Result<SysbenchReport> {
        // A run that overstays its --time by this much is hung (e.g. on a stalled cluster).
        let timeout = self.workload.time + Duration::from_secs(120);
        let stdout = self.invoke("run", target, timeout)?;
        let mut report = parse_report(&stdout).ok_or_else(|| TestbedError::Parse {
            node: target.node.clone(),
            what: "sysbench run report".into(),
            detail: process::last_lines(&stdout, 40),
        })?;
        report.node = target.node.clone();
        Ok(report)
    }

    /// Runs the workload against every target at the same time (one sysbench process per
    /// node, `workload.threads` each) and returns the reports in target order.
    pub fn run_concurrently(&self, targets: &[SysbenchTarget]) -> Result<Vec<SysbenchReport>> {
        std::thread::scope(|s| {
            let handles: Vec<_> = targets
                .iter()
                .map(|t| s.spawn(move || self.run(t)))
                .collect();
            handles
                .into_iter()
                .zip(targets)
                .map(|(h, t)| {
                    h.join().unwrap_or_else(|_| {
                        Err(TestbedError::Parse {
                            node: t.node.clone(),
                            what: "sysbench runner thread".into(),
                            detail: "the thread panicked".into(),
                        })
                    })
                })
                .collect()
        })
    }

    fn invoke(&self, phase: &str, target: &SysbenchTarget, timeout: Duration) -> Result<String> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(self.workload.args(phase, target));
        Ok(process::run_checked(&target.node, cmd, timeout)?.stdout)
    }
}

/// Creates the workload's database if needed (sysbench does not).
pub fn create_database(node: &Node, db: &str) -> Result<()> {
    node.exec(&format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        quote_ident(db)
    ))
}

/// Creates (or resets) a password user with every privilege on `db`, for TCP connections. The
/// statements replicate, so one node is enough.
pub fn create_user(node: &Node, user: &str, password: &str, db: &str) -> Result<()> {
    let u = format!("{}@'%'", quote_str(user));
    node.exec(&format!(
        "CREATE USER IF NOT EXISTS {u} IDENTIFIED BY {pw}; \
         ALTER USER {u} IDENTIFIED BY {pw}; \
         GRANT ALL PRIVILEGES ON {db}.* TO {u}",
        pw = quote_str(password),
        db = quote_ident(db),
    ))
}

/// Parses sysbench 1.0's final report (and interim lines). `None` if the essential numbers
/// (transactions, queries, latency) are missing.
pub fn parse_report(out: &str) -> Option<SysbenchReport> {
    let mut r = SysbenchReport::default();
    let mut seen = 0u8;
    for line in out.lines() {
        let t = line.trim();
        if t.starts_with("[ ") {
            if let Some(iv) = parse_interval(t) {
                r.intervals.push(iv);
            }
            continue;
        }
        if let Some(bucket) = parse_histogram_line(t) {
            r.histogram.push(bucket);
            continue;
        }
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.trim();
        // "1234   (123.31 per sec.)": the count, then the rate in parentheses.
        let count = || first_number(value);
        let rate = || value.split_once('(').and_then(|(_, r)| first_number(r));
        match key {
            "read" => r.reads = count()? as u64,
            "write" => r.writes = count()? as u64,
            "other" => r.other = count()? as u64,
            "transactions" => {
                r.transactions = count()? as u64;
                r.tps = rate()?;
                seen |= 1;
            }
            "queries" => {
                r.queries = count()? as u64;
                r.qps = rate()?;
                seen |= 2;
            }
            "ignored errors" => r.errors = count()? as u64,
            "reconnects" => r.reconnects = count()? as u64,
            "total time" => r.total_time_secs = first_number(value.trim_end_matches('s'))?,
            "min" => r.latency_min_ms = count()?,
            "avg" => {
                r.latency_avg_ms = count()?;
                seen |= 4;
            }
            "max" => r.latency_max_ms = count()?,
            "95th percentile" => r.latency_p95_ms = count()?,
            _ => {}
        }
    }
    (seen == 7).then_some(r)
}

/// `[ 10s ] thds: 4 tps: 123.45 qps: 2469.03 (r/w/o: ...) lat (ms,95%): 45.79 err/s: 0.00 reconn/s: 0.00`
fn parse_interval(line: &str) -> Option<IntervalReport> {
    let after = |label: &str| -> Option<f64> {
        let at = line.find(label)? + label.len();
        first_number(&line[at..])
    };
    Some(IntervalReport {
        at_secs: after("[ ")? as u64,
        threads: after("thds: ")? as u32,
        tps: after("tps: ")?,
        qps: after("qps: ")?,
        latency_p95_ms: after("lat (ms,95%): ").unwrap_or(0.0),
        errors_per_sec: after("err/s: ").unwrap_or(0.0),
        reconnects_per_sec: after("reconn/s: ").unwrap_or(0.0),
    })
}

/// `0.027 |*******          159`: one bucket of `--histogram=on`.
fn parse_histogram_line(line: &str) -> Option<(f64, u64)> {
    let (value, rest) = line.split_once('|')?;
    let value: f64 = value.trim().parse().ok()?;
    let count: u64 = rest.trim_start_matches(['*', ' ']).trim().parse().ok()?;
    Some((value, count))
}

/// The number at the start of `s` (after spaces).
fn first_number(s: &str) -> Option<f64> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    s[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of sysbench 1.0.20's output for `oltp_read_write run --report-interval=1`.
    const SAMPLE: &str = "\
sysbench 1.0.20 (using system LuaJIT 2.1.0-beta3)

Running the test with following options:
Number of threads: 4
Report intermediate results every 1 second(s)
Initializing random number generator from current time


Initializing worker threads...

Threads started!

[ 1s ] thds: 4 tps: 101.87 qps: 2067.38 (r/w/o: 1450.15/407.49/209.74) lat (ms,95%): 59.99 err/s: 1.00 reconn/s: 0.00
[ 2s ] thds: 4 tps: 120.01 qps: 2398.20 (r/w/o: 1679.14/479.04/240.02) lat (ms,95%): 48.34 err/s: 0.00 reconn/s: 0.00
SQL statistics:
    queries performed:
        read:                            31458
        write:                           8986
        other:                           4494
        total:                           44938
    transactions:                        2246   (112.18 per sec.)
    queries:                             44938  (2244.56 per sec.)
    ignored errors:                      2      (0.10 per sec.)
    reconnects:                          0      (0.00 per sec.)

General statistics:
    total time:                          20.0187s
    total number of events:              2246

Latency (ms):
         min:                                    9.61
         avg:                                   35.62
         max:                                  212.01
         95th percentile:                       52.89
         sum:                                80010.22

Threads fairness:
    events (avg/stddev):           561.5000/3.20
    execution time (avg/stddev):   20.0026/0.00
";

    #[test]
    fn final_report_numbers_are_parsed() {
        let r = parse_report(SAMPLE).expect("parsed");
        assert_eq!(r.transactions, 2246);
        assert_eq!(r.tps, 112.18);
        assert_eq!(r.queries, 44938);
        assert_eq!(r.qps, 2244.56);
        assert_eq!((r.reads, r.writes, r.other), (31458, 8986, 4494));
        assert_eq!(r.errors, 2);
        assert_eq!(r.reconnects, 0);
        assert_eq!(r.total_time_secs, 20.0187);
        assert_eq!(r.latency_min_ms, 9.61);
        assert_eq!(r.latency_avg_ms, 35.62);
        assert_eq!(r.latency_max_ms, 212.01);
        assert_eq!(r.latency_p95_ms, 52.89);
    }

    #[test]
    fn interim_lines_are_parsed() {
        let r = parse_report(SAMPLE).expect("parsed");
        assert_eq!(r.intervals.len(), 2);
        let first = &r.intervals[0];
        assert_eq!(first.at_secs, 1);
        assert_eq!(first.threads, 4);
        assert_eq!(first.tps, 101.87);
        assert_eq!(first.qps, 2067.38);
        assert_eq!(first.latency_p95_ms, 59.99);
        assert_eq!(first.errors_per_sec, 1.0);
    }

    #[test]
    fn latency_histogram_buckets_are_parsed() {
        let with_histogram = SAMPLE.replace(
            "SQL statistics:",
            "Latency histogram (values are in milliseconds)\n\
       value  ------------- distribution ------------- count\n\
       0.027 |*                                        25\n\
       0.027 |*******                                  159\n\
      51.945 |                                         1\n \nSQL statistics:",
        );
        let r = parse_report(&with_histogram).expect("parsed");
        assert_eq!(r.histogram, vec![(0.027, 25), (0.027, 159), (51.945, 1)]);
        assert_eq!(r.transactions, 2246);
        assert!(parse_report(SAMPLE).expect("parsed").histogram.is_empty());
    }

    #[test]
    fn output_without_a_report_is_rejected() {
        assert!(parse_report("FATAL: error 2002: Can't connect").is_none());
    }

    #[test]
    fn arguments_name_the_connection_and_the_phase_last() {
        let w = Workload::new("oltp_write_only");
        let t = SysbenchTarget {
            node: "node1".into(),
            connection: SysbenchConnection::Tcp {
                host: "127.0.0.1".into(),
                port: 17010,
                user: "sbtest".into(),
                password: "pw".into(),
            },
        };
        let a = w.args("run", &t);
        assert_eq!(a.first().map(String::as_str), Some("oltp_write_only"));
        assert_eq!(a.last().map(String::as_str), Some("run"));
        for want in [
            "--mysql-port=17010",
            "--mysql-password=pw",
            "--tables=4",
            "--threads=4",
        ] {
            assert!(a.iter().any(|x| x == want), "{want} missing from {a:?}");
        }
    }
}
