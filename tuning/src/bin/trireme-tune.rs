//! `trireme-tune`: shows the effective settings of a tuning profile (with any options given)
//! and what it finds about this host. Changes nothing.
//!
//! ```text
//! trireme-tune [--profile NAME] [--options 'k=v; k=v']
//! ```

use trireme_config::{InitContext, Options};
use trireme_tuning::{host_advice, resolve, Source, PROFILES};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut options_text = String::new();
    let mut profile = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--profile" => profile = args.next(),
            "--options" => options_text = args.next().unwrap_or_default(),
            "-h" | "--help" => {
                println!("usage: trireme-tune [--profile NAME] [--options 'k=v; ...']");
                println!("profiles:");
                for p in &PROFILES {
                    println!("  {:<11} {}", p.name, p.summary);
                }
                return;
            }
            other => {
                eprintln!("trireme-tune: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    if let Some(name) = profile {
        options_text = format!("trireme.profile={name}; {options_text}");
    }
    let ctx = InitContext {
        node_address: "127.0.0.1:4567".into(),
        data_dir: "/var/lib/mysql/".into(),
        node_name: "node".into(),
    };
    let options = match Options::from_init(&ctx, &options_text) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("trireme-tune: {e}");
            std::process::exit(2);
        }
    };
    let effective = match resolve(&options) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("trireme-tune: {e}");
            std::process::exit(2);
        }
    };
    let src = |s: Source| {
        if s == Source::Option {
            "option"
        } else {
            "profile"
        }
    };
    println!("profile: {}", effective.profile);
    println!(
        "  {:<24} {:>12}  {}",
        "trireme.shards",
        effective.shards.0,
        src(effective.shards.1)
    );
    println!(
        "  {:<24} {:>12}  {}",
        "trireme.pinning",
        effective.pinning.0.to_string(),
        src(effective.pinning.1)
    );
    println!(
        "  {:<24} {:>12}  {}",
        "trireme.spin_budget_us",
        effective.spin_budget_us.0,
        src(effective.spin_budget_us.1)
    );
    println!(
        "  {:<24} {:>12}  {}",
        "trireme.batch_max_bytes",
        effective.batch_max_bytes.0,
        src(effective.batch_max_bytes.1)
    );
    println!(
        "  {:<24} {:>12}  {}",
        "gcs.fc_limit",
        effective.fc_limit.0,
        src(effective.fc_limit.1)
    );
    println!(
        "  {:<24} {:>12}  {}",
        "gcs.fc_factor",
        effective.fc_factor.0,
        src(effective.fc_factor.1)
    );
    println!("host:");
    for a in host_advice() {
        match a.advice {
            Some(advice) => println!("  {:<13} {}\n  {:<13} -> {advice}", a.topic, a.found, ""),
            None => println!("  {:<13} {} (ok)", a.topic, a.found),
        }
    }
}
