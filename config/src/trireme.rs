//! The typed values of Trireme's own `trireme.*` options and the rules that resolve their
//! `auto` settings.
//!
//! The profile names are listed here rather than read from the `tuning` crate, which owns
//! the profiles themselves: `config` only has to refuse a name no profile has, and keeping
//! the list here keeps `config` buildable on its own. `tuning` must ship a profile for
//! every name in [`PROFILE_NAMES`].

use std::fmt;

/// Names `trireme.profile` accepts. `default` is the default.
pub const PROFILE_NAMES: &[&str] = &["default", "latency", "throughput", "small-vm"];

/// Which network path `trireme.transport` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportChoice {
    /// io_uring where the kernel allows it, else the portable path.
    Auto,
    /// io_uring only; startup fails if it is refused.
    IoUring,
    /// The portable `poll(2)` path, even where io_uring works.
    Portable,
}

impl TransportChoice {
    pub(crate) const NAMES: &'static [&'static str] = &["auto", "io_uring", "portable"];

    pub(crate) fn from_name(name: &str) -> Option<TransportChoice> {
        match name {
            "auto" => Some(TransportChoice::Auto),
            "io_uring" => Some(TransportChoice::IoUring),
            "portable" => Some(TransportChoice::Portable),
            _ => None,
        }
    }
}

/// Largest core id `trireme.pinning` accepts; far above any machine Trireme targets, low
/// enough that a typo like `10000` is caught here rather than by `sched_setaffinity`.
pub const MAX_CORE_ID: u16 = 1023;

/// How `trireme.pinning` places shard threads on CPU cores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Pinning {
    /// Threads float; the kernel schedules them.
    None,
    /// The runtime picks one core per shard.
    Auto,
    /// Shard `i` goes to `cores[i % cores.len()]`. Never empty, no duplicates.
    Cores(Vec<u16>),
}

impl Pinning {
    /// Parses `none`, `auto` (case-insensitive) or a comma list such as `0,2,4`.
    pub(crate) fn parse(text: &str) -> Result<Pinning, &'static str> {
        if text.eq_ignore_ascii_case("none") {
            return Ok(Pinning::None);
        }
        if text.eq_ignore_ascii_case("auto") {
            return Ok(Pinning::Auto);
        }
        let mut cores = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || part.len() > 5 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err("each core id must be a number");
            }
            let core: u16 = part.parse().map_err(|_| "each core id must be a number")?;
            if core > MAX_CORE_ID {
                return Err("core ids go up to 1023");
            }
            if cores.contains(&core) {
                return Err("a core id is listed twice");
            }
            cores.push(core);
        }
        Ok(Pinning::Cores(cores))
    }
}

impl fmt::Display for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pinning::None => f.write_str("none"),
            Pinning::Auto => f.write_str("auto"),
            Pinning::Cores(cores) => {
                let list: Vec<String> = cores.iter().map(u16::to_string).collect();
                f.write_str(&list.join(","))
            }
        }
    }
}

/// The shard count `trireme.shards=auto` resolves to on a machine with `cpus` CPUs: one
/// shard up to 4 CPUs (a cross-thread hop costs ~30 us on small VMs, more than a shard
/// saves), then one per 4 CPUs, at most 8.
pub fn auto_shards(cpus: usize) -> u32 {
    if cpus <= 4 {
        1
    } else {
        u32::try_from((cpus / 4).min(8)).unwrap_or(8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_shards_is_one_on_small_machines_and_at_most_eight() {
        assert_eq!(auto_shards(0), 1);
        assert_eq!(auto_shards(1), 1);
        assert_eq!(auto_shards(2), 1);
        assert_eq!(auto_shards(4), 1);
        assert_eq!(auto_shards(5), 1);
        assert_eq!(auto_shards(8), 2);
        assert_eq!(auto_shards(16), 4);
        assert_eq!(auto_shards(32), 8);
        assert_eq!(auto_shards(256), 8);
        assert_eq!(auto_shards(usize::MAX), 8);
    }

    #[test]
    fn pinning_reads_none_auto_and_core_lists() {
        assert_eq!(Pinning::parse("none"), Ok(Pinning::None));
        assert_eq!(Pinning::parse("AUTO"), Ok(Pinning::Auto));
        assert_eq!(Pinning::parse("0"), Ok(Pinning::Cores(vec![0])));
        assert_eq!(Pinning::parse("0, 2,4"), Ok(Pinning::Cores(vec![0, 2, 4])));
        for bad in [
            "", ",", "0,", "0,,1", "a", "-1", "1024", "0,0", "99999999", "1-3",
        ] {
            assert!(Pinning::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pinning_round_trips_through_display() {
        for text in ["none", "auto", "3", "0,2,4"] {
            assert_eq!(Pinning::parse(text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn every_transport_name_maps_to_a_choice() {
        for name in TransportChoice::NAMES {
            assert!(TransportChoice::from_name(name).is_some(), "{name}");
        }
    }
}
