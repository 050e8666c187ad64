//! `trireme-testbed`: bring a local cluster up, look at it, query it, take it down.
//!
//! `up` starts the nodes and exits leaving them running; the PIDs, ports and sockets go to
//! `<base-dir>/cluster.state`, which `status`, `sql` and `down` read. `down` stops exactly the
//! recorded PIDs (after checking each is still a `mariadbd` on that node's `my.cnf`).
//!
//! Arguments are parsed by hand: five subcommands and a dozen flags do not justify a
//! dependency.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use trireme_testbed::{Cluster, ClusterSpec, TestbedError, GALERA_PROVIDER};

const USAGE: &str = "\
usage:
  trireme-testbed up     [--provider PATH | --galera] [--nodes N] [--base-dir DIR] [--port-base P]
                         [--cluster-name NAME] [--provider-options 'k=v; ...'] [--sst-method M]
                         [--slave-threads N] [--flush-log-at-trx-commit 0|1|2] [--cnf key=value]...
                         [--start-timeout SECS]
  trireme-testbed status [--base-dir DIR]
  trireme-testbed sql    [--base-dir DIR] [--node N] \"QUERY\"
  trireme-testbed down   [--base-dir DIR]

defaults: --provider <repository>/target/release/libtrireme.so (--galera: /usr/lib/galera/libgalera_smm.so;
          --provider none --nodes 1: one standalone server, wsrep off),
          --nodes 3, --base-dir /tmp/trireme-cluster, --port-base 17000, --node 0
node i listens on port-base+10*i (SQL), +1 (replication), +2 (IST), +3 (SST).
set TRIREME_TESTBED_LOG=debug|info|warn|off for more or less progress output (default info).";

const DEFAULT_BASE_DIR: &str = "/tmp/trireme-cluster";

fn main() -> ExitCode {
    init_logger();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(msg)) => {
            eprintln!("error: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(CliError::Testbed(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

enum CliError {
    Usage(String),
    Testbed(TestbedError),
}

impl From<TestbedError> for CliError {
    fn from(e: TestbedError) -> Self {
        CliError::Testbed(e)
    }
}

/// Flags and positional arguments of one subcommand.
struct Args {
    flags: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

impl Args {
    /// Splits `--flag value`, `--flag=value` and bare `--switch` (for `switches`).
    fn parse(raw: &[String], switches: &[&str]) -> Result<Args, CliError> {
        let mut flags = Vec::new();
        let mut positional = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                if let Some((k, v)) = name.split_once('=') {
                    flags.push((k.to_string(), Some(v.to_string())));
                } else if switches.contains(&name) {
                    flags.push((name.to_string(), None));
                } else {
                    let v = it
                        .next()
                        .ok_or_else(|| CliError::Usage(format!("--{name} needs a value")))?;
                    flags.push((name.to_string(), Some(v.clone())));
                }
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { flags, positional })
    }

    fn check_known(&self, known: &[&str]) -> Result<(), CliError> {
        match self
            .flags
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()))
        {
            Some((k, _)) => Err(CliError::Usage(format!("unknown option --{k}"))),
            None => Ok(()),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(k, _)| k == name)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn values(&self, name: &str) -> Vec<String> {
        self.flags
            .iter()
            .filter(|(k, _)| k == name)
            .filter_map(|(_, v)| v.clone())
            .collect()
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, CliError> {
        match self.value(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| CliError::Usage(format!("--{name} {v:?} is not a valid number"))),
        }
    }

    fn base_dir(&self) -> Result<PathBuf, CliError> {
        let dir = PathBuf::from(self.value("base-dir").unwrap_or(DEFAULT_BASE_DIR));
        if dir.is_absolute() {
            Ok(dir)
        } else {
            std::env::current_dir()
                .map(|cwd| cwd.join(dir))
                .map_err(|e| CliError::Usage(format!("cannot resolve --base-dir: {e}")))
        }
    }
}

fn run(args: &[String]) -> Result<(), CliError> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err(CliError::Usage("no command".into()));
    };
    match cmd.as_str() {
        "up" => up(rest),
        "status" => status(rest),
        "sql" => sql(rest),
        "down" => down(rest),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown command {other:?}"))),
    }
}

fn up(raw: &[String]) -> Result<(), CliError> {
    let a = Args::parse(raw, &["galera"])?;
    a.check_known(&[
        "provider",
        "galera",
        "nodes",
        "base-dir",
        "port-base",
        "cluster-name",
        "provider-options",
        "sst-method",
        "slave-threads",
        "flush-log-at-trx-commit",
        "cnf",
        "start-timeout",
    ])?;
    if let Some(p) = a.positional.first() {
        return Err(CliError::Usage(format!("unexpected argument {p:?}")));
    }
    let provider = match (a.has("galera"), a.value("provider")) {
        (true, Some(_)) => {
            return Err(CliError::Usage(
                "--galera and --provider exclude each other".into(),
            ))
        }
        (true, None) => PathBuf::from(GALERA_PROVIDER),
        // mariadbd runs in its own directory: the path must be absolute.
        (false, Some(p)) => std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)),
        (false, None) => default_provider(),
    };
    let mut spec = ClusterSpec::new(
        provider,
        a.number("nodes", 3usize)?,
        a.base_dir()?,
        a.number("port-base", 17000u16)?,
    );
    if let Some(v) = a.value("cluster-name") {
        spec.cluster_name = v.into();
    }
    if let Some(v) = a.value("provider-options") {
        spec.provider_options = v.into();
    }
    if let Some(v) = a.value("sst-method") {
        spec.sst_method = v.into();
    }
    spec.slave_threads = a.number("slave-threads", spec.slave_threads)?;
    spec.innodb_flush_log_at_trx_commit = a.number(
        "flush-log-at-trx-commit",
        spec.innodb_flush_log_at_trx_commit,
    )?;
    spec.extra_cnf = a.values("cnf");
    spec.start_timeout =
        Duration::from_secs(a.number("start-timeout", spec.start_timeout.as_secs())?);
    if !spec.is_standalone() && !spec.provider.exists() {
        return Err(CliError::Usage(format!(
            "provider {} does not exist (build it with `cargo build --release`, or use --galera)",
            spec.provider.display()
        )));
    }

    let mut cluster = Cluster::start(spec)?;
    cluster.keep();
    for line in cluster.status_lines() {
        println!("{line}");
    }
    let state = cluster.write_state()?;
    println!("state: {}", state.display());
    Ok(())
}

fn status(raw: &[String]) -> Result<(), CliError> {
    let a = Args::parse(raw, &[])?;
    a.check_known(&["base-dir"])?;
    let cluster = Cluster::attach(&a.base_dir()?)?;
    for line in cluster.status_lines() {
        println!("{line}");
    }
    Ok(())
}

fn sql(raw: &[String]) -> Result<(), CliError> {
    let a = Args::parse(raw, &[])?;
    a.check_known(&["base-dir", "node"])?;
    let query = match a.positional.as_slice() {
        [q] => q,
        _ => {
            return Err(CliError::Usage(
                "sql takes exactly one query argument".into(),
            ))
        }
    };
    let cluster = Cluster::attach(&a.base_dir()?)?;
    let node = cluster.node(a.number("node", 0usize)?)?;
    for row in node.sql(query)? {
        println!("{}", row.join("\t"));
    }
    Ok(())
}

fn down(raw: &[String]) -> Result<(), CliError> {
    let a = Args::parse(raw, &[])?;
    a.check_known(&["base-dir"])?;
    let mut cluster = Cluster::attach(&a.base_dir()?)?;
    let took = cluster.stop_all()?;
    for (node, t) in cluster.nodes().iter().zip(took) {
        match t {
            Some(d) => println!("{} stopped in {:.1}s", node.name(), d.as_secs_f64()),
            None => println!("{} was not running", node.name()),
        }
    }
    Ok(())
}

/// `<repository>/target/release/libtrireme.so`: the crate sits one level below the root.
fn default_provider() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let root = root.canonicalize().unwrap_or(root);
    root.join("target/release/libtrireme.so")
}

/// Progress goes to stderr; stdout carries only the results (status lines, rows).
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) && r.target().starts_with("trireme_testbed") {
            eprintln!("[{}] {}", r.level(), r.args());
        }
    }
    fn flush(&self) {}
}

fn init_logger() {
    static LOGGER: StderrLogger = StderrLogger;
    let level = match std::env::var("TRIREME_TESTBED_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        Ok("warn") => log::LevelFilter::Warn,
        Ok("off") => log::LevelFilter::Off,
        _ => log::LevelFilter::Info,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}
