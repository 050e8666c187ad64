//! Named tuning profiles: plain data, every field with its unit in its name.
//!
//! `trireme.profile=NAME` picks one; each field fills in the option it stands for unless the
//! user set that option explicitly (an explicit option always wins). [`resolve`] gives the
//! effective settings and where each one came from; the runtime reads them, and
//! `trireme-tune` prints them with advice about the host.
//!
//! What each field drives (and what it does not yet):
//! - `shards` (`trireme.shards`): shard threads; `None` = auto (1 on machines of up to 4 CPUs).
//! - `pin_shards` (`trireme.pinning=auto`): pin shard threads to the last cores.
//! - `spin_budget_us` (`trireme.spin_budget_us`): how long a shard spins after activity before
//!   it parks. Spinning saves the ~30 us wake-up of a parked thread on a VM, at the price of a
//!   core; 0 never spins. The default profile does not spin on hosts of 2 CPUs or fewer
//!   ([`profile_spin_us`]): there the core it would take is the one mariadbd needs.
//! - `batch_max_bytes` (`trireme.batch_max_bytes`): the largest replication message the group
//!   core batches writesets into.
//! - `fc_limit`, `fc_factor` (`gcs.fc_limit`, `gcs.fc_factor`): flow-control bounds of the
//!   receive queue (flow control itself is not implemented yet: the values are carried).

use trireme_config::{Options, Pinning};

/// One profile. `validate` checks the relations between fields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub summary: &'static str,
    /// `None`: one shard per 4 CPUs, at most 8 (1 on small machines).
    pub shards: Option<u32>,
    pub pin_shards: bool,
    pub spin_budget_us: u32,
    pub batch_max_bytes: u64,
    pub fc_limit: u64,
    pub fc_factor: f64,
}

/// The shipped profiles. Their names must match `trireme_config::PROFILE_NAMES` (tested).
pub const PROFILES: [Profile; 4] = [
    Profile {
        name: "default",
        summary: "Galera's flow-control defaults, shards by CPU count, short spin (none on 2 CPUs)",
        shards: None,
        pin_shards: false,
        spin_budget_us: 50,
        batch_max_bytes: 1 << 20,
        fc_limit: 16,
        fc_factor: 1.0,
    },
    Profile {
        name: "latency",
        summary: "one pinned shard that spins longer before parking: lowest commit latency",
        shards: Some(1),
        pin_shards: true,
        spin_budget_us: 200,
        batch_max_bytes: 64 << 10,
        fc_limit: 16,
        fc_factor: 1.0,
    },
    Profile {
        name: "throughput",
        summary: "more shards, big batches, a deeper receive queue before flow control",
        shards: None,
        pin_shards: true,
        spin_budget_us: 20,
        batch_max_bytes: 4 << 20,
        fc_limit: 128,
        fc_factor: 0.8,
    },
    Profile {
        name: "small-vm",
        summary: "one shard that never spins: leaves the CPUs to mariadbd",
        shards: Some(1),
        pin_shards: false,
        spin_budget_us: 0,
        batch_max_bytes: 256 << 10,
        fc_limit: 16,
        fc_factor: 1.0,
    },
];

#[derive(Debug, Clone, PartialEq)]
pub enum TuningError {
    UnknownProfile {
        name: String,
    },
    Invalid {
        profile: &'static str,
        field: &'static str,
        value: String,
        rule: &'static str,
    },
}

impl std::fmt::Display for TuningError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TuningError::UnknownProfile { name } => {
                let names: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
                write!(
                    f,
                    "unknown tuning profile '{name}' (known: {})",
                    names.join(", ")
                )
            }
            TuningError::Invalid {
                profile,
                field,
                value,
                rule,
            } => {
                write!(
                    f,
                    "profile {profile}: {field} = {value} breaks the rule: {rule}"
                )
            }
        }
    }
}

impl std::error::Error for TuningError {}

impl Profile {
    /// Checks a profile's fields, naming the offending value.
    pub fn validate(&self) -> Result<(), TuningError> {
        let invalid = |field, value: String, rule| {
            Err(TuningError::Invalid {
                profile: self.name,
                field,
                value,
                rule,
            })
        };
        if let Some(shards) = self.shards {
            if !(1..=64).contains(&shards) {
                return invalid("shards", shards.to_string(), "between 1 and 64");
            }
        }
        if self.spin_budget_us > 1_000_000 {
            return invalid(
                "spin_budget_us",
                self.spin_budget_us.to_string(),
                "at most 1 s",
            );
        }
        if !(4096..=(256 << 20)).contains(&self.batch_max_bytes) {
            return invalid(
                "batch_max_bytes",
                self.batch_max_bytes.to_string(),
                "4 KiB to 256 MiB",
            );
        }
        if self.fc_limit == 0 {
            return invalid("fc_limit", "0".into(), "at least 1");
        }
        if !(0.0..=1.0).contains(&self.fc_factor) {
            return invalid(
                "fc_factor",
                self.fc_factor.to_string(),
                "between 0 and 1 (Galera's range)",
            );
        }
        Ok(())
    }
}

pub fn profile(name: &str) -> Result<&'static Profile, TuningError> {
    PROFILES
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| TuningError::UnknownProfile {
            name: name.to_string(),
        })
}

/// Where an effective value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The user set the option.
    Option,
    /// The selected profile.
    Profile,
}

/// The settings the runtime uses, each with its source.
#[derive(Clone, Debug, PartialEq)]
pub struct Effective {
    pub profile: &'static str,
    pub shards: (u32, Source),
    pub pinning: (Pinning, Source),
    pub spin_budget_us: (u32, Source),
    pub batch_max_bytes: (u64, Source),
    pub fc_limit: (u64, Source),
    pub fc_factor: (f64, Source),
}

/// The spin budget a profile gives on a host of `cpus` CPUs. The default profile's short
/// spin is dropped on 2 CPUs or fewer: measured on the 2-vCPU reference VM (3 nodes,
/// alternating runs), no spin gave lower single-client commit latency (avg 0.52-0.69 ms vs
/// 0.61-0.91 ms) and more throughput under 8 clients, because the spinning shard holds the
/// CPU that the client, the server and the peers need right then. Profiles that ask for
/// spinning by name (latency, throughput) keep it.
pub fn profile_spin_us(p: &Profile, cpus: usize) -> u32 {
    if p.name == "default" && cpus <= 2 {
        0
    } else {
        p.spin_budget_us
    }
}

/// The effective settings for `options`: the profile named by `trireme.profile`, overridden
/// by every option the user set explicitly.
pub fn resolve(options: &Options) -> Result<Effective, TuningError> {
    let p = profile(options.profile())?;
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pick = |key: &str| {
        if options.is_explicit(key) {
            Source::Option
        } else {
            Source::Profile
        }
    };
    let shards = match pick("trireme.shards") {
        Source::Option => (options.shards(), Source::Option),
        Source::Profile => (
            p.shards
                .unwrap_or_else(|| trireme_config::auto_shards(cpus)),
            Source::Profile,
        ),
    };
    let pinning = match pick("trireme.pinning") {
        Source::Option => (options.pinning(), Source::Option),
        Source::Profile => (
            if p.pin_shards {
                Pinning::Auto
            } else {
                Pinning::None
            },
            Source::Profile,
        ),
    };
    let choose = |key: &str, from_option: u64, from_profile: u64| match pick(key) {
        Source::Option => (from_option, Source::Option),
        Source::Profile => (from_profile, Source::Profile),
    };
    let spin = choose(
        "trireme.spin_budget_us",
        u64::from(options.spin_budget_us()),
        u64::from(profile_spin_us(p, cpus)),
    );
    let fc_factor = match pick("gcs.fc_factor") {
        Source::Option => (options.fc_factor(), Source::Option),
        Source::Profile => (p.fc_factor, Source::Profile),
    };
    Ok(Effective {
        profile: p.name,
        shards,
        pinning,
        spin_budget_us: (spin.0 as u32, spin.1),
        batch_max_bytes: choose(
            "trireme.batch_max_bytes",
            options.batch_max_bytes(),
            p.batch_max_bytes,
        ),
        fc_limit: choose("gcs.fc_limit", options.fc_limit(), p.fc_limit),
        fc_factor,
    })
}

/// One finding about the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advice {
    pub topic: &'static str,
    /// What was found.
    pub found: String,
    /// What to do about it, or `None` when it is fine.
    pub advice: Option<String>,
}

/// What `trireme-tune` checks on this host (read-only; nothing is changed).
pub fn host_advice() -> Vec<Advice> {
    let mut out = Vec::new();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    out.push(Advice {
        topic: "cpus",
        found: format!("{cpus} CPU(s)"),
        advice: (cpus <= 2).then(|| {
            "small machine: profile small-vm or default (one shard); spinning shards would take CPU from mariadbd".into()
        }),
    });
    let governors: Vec<String> = (0..cpus)
        .filter_map(|i| {
            std::fs::read_to_string(format!(
                "/sys/devices/system/cpu/cpu{i}/cpufreq/scaling_governor"
            ))
            .ok()
            .map(|g| g.trim().to_string())
        })
        .collect();
    out.push(match governors.first() {
        None => Advice { topic: "cpu governor", found: "not exposed (VM or no cpufreq)".into(), advice: None },
        Some(g) if governors.iter().all(|x| x == "performance") => {
            Advice { topic: "cpu governor", found: g.clone(), advice: None }
        }
        Some(g) => Advice {
            topic: "cpu governor",
            found: g.clone(),
            advice: Some("set the performance governor (cpupower frequency-set -g performance) for stable latency".into()),
        },
    });
    out.push(memlock_advice());
    let uring =
        std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").map(|s| s.trim().to_string());
    out.push(match uring.as_deref() {
        Ok("0") | Err(_) => Advice {
            topic: "io_uring",
            found: "allowed".into(),
            advice: None,
        },
        Ok(v) => Advice {
            topic: "io_uring",
            found: format!("kernel.io_uring_disabled = {v}"),
            advice: Some(
                "Trireme falls back to poll(2); set kernel.io_uring_disabled=0 for the faster path"
                    .into(),
            ),
        },
    });
    out.push(irq_advice());
    out
}

fn memlock_advice() -> Advice {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `limit`, a valid rlimit we own for the call.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } == 0;
    if !ok {
        return Advice {
            topic: "memlock",
            found: "unknown".into(),
            advice: None,
        };
    }
    let hard = limit.rlim_max;
    let found = if hard == libc::RLIM_INFINITY {
        "unlimited".to_string()
    } else {
        format!("{} KiB hard limit", hard / 1024)
    };
    let advice = (hard != libc::RLIM_INFINITY && hard < 64 << 20).then(|| {
        "io_uring rings are charged to RLIMIT_MEMLOCK per OS user (all mysqld of that user and InnoDB share it): \
         add LimitMEMLOCK=64M in a systemd drop-in for mariadb.service, or keep its AmbientCapabilities=CAP_IPC_LOCK"
            .to_string()
    });
    Advice {
        topic: "memlock",
        found,
        advice,
    }
}

/// Network interrupts spread over cores that shards are pinned to add latency; say where they
/// land.
fn irq_advice() -> Advice {
    let Ok(text) = std::fs::read_to_string("/proc/interrupts") else {
        return Advice {
            topic: "nic irqs",
            found: "unknown".into(),
            advice: None,
        };
    };
    let nic: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.contains("virtio") && (l.contains("input") || l.contains("output"))
                || l.contains("eth")
                || l.contains("ens")
        })
        .collect();
    Advice {
        topic: "nic irqs",
        found: format!("{} network interrupt line(s)", nic.len()),
        advice: (!nic.is_empty()).then(|| {
            "with trireme.pinning, keep NIC interrupts (/proc/irq/*/smp_affinity) off the cores the shards use".into()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trireme_config::InitContext;

    fn options(text: &str) -> Options {
        let ctx = InitContext {
            node_address: "127.0.0.1:4567".into(),
            data_dir: "/tmp/x/".into(),
            node_name: "n".into(),
        };
        Options::from_init(&ctx, text).unwrap()
    }

    #[test]
    fn every_shipped_profile_validates_and_names_match_the_option_registry() {
        for p in &PROFILES {
            p.validate().unwrap();
        }
        let mut ours: Vec<&str> = PROFILES.iter().map(|p| p.name).collect();
        let mut registry: Vec<&str> = trireme_config::PROFILE_NAMES.to_vec();
        ours.sort();
        registry.sort();
        assert_eq!(ours, registry);
    }

    #[test]
    fn validate_names_the_offending_field() {
        let mut p = PROFILES[0];
        p.fc_factor = 1.5;
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("fc_factor") && err.contains("1.5"), "{err}");
    }

    #[test]
    fn a_profile_fills_in_what_the_user_left_alone_and_explicit_options_win() {
        let e = resolve(&options("trireme.profile=latency")).unwrap();
        assert_eq!(e.profile, "latency");
        assert_eq!(e.spin_budget_us, (200, Source::Profile));
        assert_eq!(e.shards, (1, Source::Profile));
        assert_eq!(e.pinning, (Pinning::Auto, Source::Profile));
        let e = resolve(&options(
            "trireme.profile=latency; trireme.spin_budget_us=7; gcs.fc_limit=99",
        ))
        .unwrap();
        assert_eq!(e.spin_budget_us, (7, Source::Option));
        assert_eq!(e.fc_limit, (99, Source::Option));
        assert_eq!(e.batch_max_bytes, (64 << 10, Source::Profile));
    }

    #[test]
    fn the_default_profile_does_not_spin_on_two_cpus_and_named_profiles_keep_their_spin() {
        let default = profile("default").unwrap();
        assert_eq!(profile_spin_us(default, 1), 0);
        assert_eq!(profile_spin_us(default, 2), 0);
        assert_eq!(profile_spin_us(default, 3), default.spin_budget_us);
        assert_eq!(profile_spin_us(default, 16), default.spin_budget_us);
        let latency = profile("latency").unwrap();
        assert_eq!(profile_spin_us(latency, 2), latency.spin_budget_us);
    }

    #[test]
    fn the_default_profile_keeps_galeras_flow_control_defaults() {
        let e = resolve(&options("")).unwrap();
        assert_eq!(e.fc_limit.0, 16);
        assert_eq!(e.fc_factor.0, 1.0);
    }
}
