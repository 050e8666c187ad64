//! What `/proc` says about a process and the host: CPU time (`/proc/<pid>/stat` utime +
//! stime), resident memory split into anonymous and file-backed pages (`/proc/<pid>/status`
//! RssAnon / RssFile), host CPU busy time (`/proc/stat`) and the load average.
//!
//! RssAnon is the heap (InnoDB's buffer pool, the provider's own allocations); RssFile is
//! mapped files that are resident (the binaries, and a GCache ring file when it is mmap'd).

use std::process::Command;

/// CPU time a process has used so far, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcCpu {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
}

impl ProcCpu {
    pub fn total_ticks(&self) -> u64 {
        self.utime_ticks + self.stime_ticks
    }
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may contain
/// spaces and parentheses itself, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<ProcCpu> {
    let rest = &text[text.rfind(')')? + 1..];
    // After the name: state (3), ppid (4), ..., utime (14), stime (15).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcCpu {
        utime_ticks: fields.get(11)?.parse().ok()?,
        stime_ticks: fields.get(12)?.parse().ok()?,
    })
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct ProcMem {
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub rss_shmem_kib: u64,
}

/// Parses the `RssAnon`, `RssFile` and `RssShmem` lines of `/proc/<pid>/status`.
pub fn parse_status(text: &str) -> Option<ProcMem> {
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        line[name.len()..]
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(ProcMem {
        rss_anon_kib: field("RssAnon")?,
        rss_file_kib: field("RssFile")?,
        rss_shmem_kib: field("RssShmem").unwrap_or(0),
    })
}

/// CPU time of `pid`, if it is alive.
pub fn proc_cpu(pid: u32) -> Option<ProcCpu> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Resident memory of `pid`, if it is alive.
pub fn proc_mem(pid: u32) -> Option<ProcMem> {
    parse_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100, Linux's USER_HZ, if that fails).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Host-wide CPU counters (first line of `/proc/stat`), in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpu {
    /// Everything but idle and iowait.
    pub busy: u64,
    pub total: u64,
}

/// Parses the `cpu ` line of `/proc/stat`.
pub fn parse_host_stat(text: &str) -> Option<HostCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some(HostCpu {
        busy: total - idle,
        total,
    })
}

/// The host's CPU counters now.
pub fn host_cpu() -> Option<HostCpu> {
    parse_host_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Busy share of all CPUs between two readings, in percent of the whole machine.
pub fn busy_pct(before: HostCpu, after: HostCpu) -> f64 {
    let total = after.total.saturating_sub(before.total);
    if total == 0 {
        return 0.0;
    }
    100.0 * after.busy.saturating_sub(before.busy) as f64 / total as f64
}

/// The 1-minute load average.
pub fn loadavg_1m() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Number of CPUs the host shows (`nproc`).
pub fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        // A name with a space and a parenthesis must not shift the fields.
        let text = "4242 (mariadbd (x) y) S 1 4242 4242 0 -1 4194560 9 0 0 0 1234 567 0 0 20 0 \
                    40 0 100 8592540996 62331 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1";
        assert_eq!(
            parse_stat(text),
            Some(ProcCpu {
                utime_ticks: 1234,
                stime_ticks: 567
            })
        );
        assert_eq!(parse_stat(text).unwrap().total_ticks(), 1801);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn status_gives_anonymous_and_file_backed_rss() {
        let text = "Name:\tmariadbd\nVmRSS:\t  249324 kB\nRssAnon:\t  180000 kB\n\
                    RssFile:\t   69000 kB\nRssShmem:\t     324 kB\nThreads:\t40\n";
        assert_eq!(
            parse_status(text),
            Some(ProcMem {
                rss_anon_kib: 180_000,
                rss_file_kib: 69_000,
                rss_shmem_kib: 324
            })
        );
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn own_process_can_be_read() {
        let me = std::process::id();
        assert!(proc_cpu(me).is_some());
        assert!(proc_mem(me).unwrap().rss_anon_kib > 0);
        assert!(clock_ticks() > 0);
        assert!(loadavg_1m().is_some());
    }

    #[test]
    fn host_busy_share_is_the_non_idle_delta() {
        let a = parse_host_stat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n").unwrap();
        assert_eq!((a.busy, a.total), (200, 1000));
        let b = parse_host_stat("cpu  250 0 150 750 150 0 0 0 0 0\n").unwrap();
        assert_eq!(busy_pct(a, b), 100.0 * 200.0 / 300.0);
        assert_eq!(busy_pct(a, a), 0.0);
    }
}
