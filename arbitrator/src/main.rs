//! `trireme-arbitrator`: votes in a Trireme cluster's quorum without storing data, so that
//! two data nodes and an arbitrator survive the loss of either data node (garbd's role).
//!
//! Flags follow garbd's where they make sense:
//!
//! ```text
//! trireme-arbitrator --address gcomm://10.0.0.1:4567,10.0.0.2:4567 --group my_cluster
//!                    [--options 'gmcast.listen_addr=tcp://0.0.0.0:4567; evs.suspect_timeout=PT5S']
//!                    [--name arbitrator] [--log FILE] [--daemon]
//! ```
//! `--group` is `wsrep_cluster_name`; `--options` takes the same provider options as a data
//! node (only the network and timing ones matter here). SIGTERM or SIGINT leaves the group
//! cleanly.

use std::io::Write;
use std::sync::Mutex;
use trireme_config::{InitContext, Options};
use trireme_runtime::arbiter::{run, ArbiterConfig};

#[derive(Debug)]
struct Args {
    address: String,
    group: String,
    options: String,
    name: String,
    log: Option<String>,
    daemon: bool,
}

const USAGE: &str = "usage: trireme-arbitrator --address gcomm://HOST:PORT[,...] --group NAME \
[--options 'k=v; ...'] [--name NAME] [--log FILE] [--daemon]";

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        address: String::new(),
        group: String::new(),
        options: String::new(),
        name: "arbitrator".into(),
        log: None,
        daemon: false,
    };
    let mut it = argv.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| it.next().cloned().ok_or(format!("{flag} needs a value"));
        match arg.as_str() {
            "-a" | "--address" => args.address = value(arg)?,
            "-g" | "--group" => args.group = value(arg)?,
            "-o" | "--options" => args.options = value(arg)?,
            "-n" | "--name" => args.name = value(arg)?,
            "-l" | "--log" => args.log = Some(value(arg)?),
            "-d" | "--daemon" => args.daemon = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.address.is_empty() || args.group.is_empty() {
        return Err(format!("--address and --group are required\n{USAGE}"));
    }
    Ok(args)
}

/// Log lines to stderr or a file, with a timestamp, as garbd does.
struct LineLogger {
    out: Mutex<Box<dyn Write + Send>>,
}

impl log::Log for LineLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(out, "{now:.3} [{}] {}", record.level(), record.args());
        let _ = out.flush();
    }

    fn flush(&self) {}
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("trireme-arbitrator: {e}");
            std::process::exit(2);
        }
    };
    if args.daemon {
        // Detach: run again without --daemon in a new session, with no terminal.
        let rest: Vec<&String> = argv
            .iter()
            .filter(|a| a.as_str() != "--daemon" && a.as_str() != "-d")
            .collect();
        let spawned = std::process::Command::new("/usr/bin/setsid")
            .arg(std::env::current_exe().unwrap_or_else(|_| "trireme-arbitrator".into()))
            .args(rest)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => {
                println!("{}", child.id());
                return;
            }
            Err(e) => {
                eprintln!("trireme-arbitrator: cannot detach: {e}");
                std::process::exit(1);
            }
        }
    }
    let out: Box<dyn Write + Send> = match &args.log {
        Some(path) => match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("trireme-arbitrator: cannot open log {path}: {e}");
                std::process::exit(1);
            }
        },
        None => Box::new(std::io::stderr()),
    };
    let logger: &'static LineLogger = Box::leak(Box::new(LineLogger {
        out: Mutex::new(out),
    }));
    let _ = log::set_logger(logger);
    log::set_max_level(log::LevelFilter::Info);

    let ctx = InitContext {
        node_address: String::new(),
        data_dir: "/tmp/".into(),
        node_name: args.name.clone(),
    };
    let options = match Options::from_init(&ctx, &args.options) {
        Ok(o) => o,
        Err(e) => {
            log::error!("{e}");
            eprintln!("trireme-arbitrator: {e}");
            std::process::exit(2);
        }
    };
    let seeds: Vec<String> = args
        .address
        .trim_start_matches("gcomm://")
        .split('?')
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let listen = options.listen_addr();
    let config = ArbiterConfig {
        cluster_name: args.group.clone(),
        seeds,
        name: args.name.clone(),
        listen: format!("{}:{}", listen.host, listen.port),
        advertised_host: options.base_host().unwrap_or("127.0.0.1").to_string(),
        election_timeout: options.election_timeout(),
        suspect_timeout: options.suspect_timeout(),
        weight: options.pc_weight(),
        transport: match options.transport() {
            trireme_config::TransportChoice::Portable => trireme_net::TransportChoice::Portable,
            trireme_config::TransportChoice::IoUring => trireme_net::TransportChoice::IoUring,
            _ => trireme_net::TransportChoice::Auto,
        },
    };
    let stop = trireme_runtime::sys::termination_flag();
    if let Err(e) = run(config, stop) {
        log::error!("arbitrator stopped: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn garbd_style_flags_parse_and_missing_ones_are_named() {
        let a = parse(&argv(
            "--address gcomm://a:1,b:2 --group g --name arb -o base_port=9",
        ))
        .unwrap();
        assert_eq!(
            (a.address.as_str(), a.group.as_str(), a.name.as_str()),
            ("gcomm://a:1,b:2", "g", "arb")
        );
        assert_eq!(a.options, "base_port=9");
        assert!(parse(&argv("--group g")).unwrap_err().contains("--address"));
        assert!(parse(&argv("--address gcomm://a --group g --bogus"))
            .unwrap_err()
            .contains("--bogus"));
    }
}
