//! What is measured around every run: per node, CPU time and RSS of the `mariadbd` process
//! (local targets) and the deltas of the wsrep counters that explain a result (certification
//! failures, brute-force aborts, flow control); for the host, the load average and the busy
//! share of all CPUs, and how much CPU the servers of the *other* provider (idle meanwhile)
//! took, so that noise from outside the run is visible next to the result.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::db::{self, Endpoint};
use crate::procfs::{self, HostCpu, ProcMem};
use crate::target::Target;

/// Counters whose change over the run is recorded (Galera's names; Trireme shows the same).
pub const COUNTERS: &[&str] = &[
    "wsrep_local_cert_failures",
    "wsrep_local_bf_aborts",
    "wsrep_local_replays",
    "wsrep_flow_control_sent",
    "wsrep_flow_control_recv",
    "wsrep_flow_control_paused_ns",
    "wsrep_replicated",
    "wsrep_replicated_bytes",
    "wsrep_received",
    "wsrep_local_commits",
    "wsrep_last_committed",
];

/// Values read at the end of the run as they are.
pub const GAUGES: &[&str] = &[
    "wsrep_local_recv_queue_max",
    "wsrep_local_recv_queue_avg",
    "wsrep_local_send_queue_max",
    "wsrep_cert_deps_distance",
    "wsrep_apply_window",
    "wsrep_commit_window",
    "wsrep_flow_control_paused",
];

/// One node over one run.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct NodeMeasure {
    pub node: String,
    pub pid: Option<u32>,
    /// CPU seconds (user + system) the server used during the run.
    pub cpu_s: Option<f64>,
    /// `cpu_s` per second of run: 1.0 is one vCPU fully busy.
    pub cpu_util: Option<f64>,
    /// RSS at the end of the run, KiB.
    pub rss_end: Option<ProcMem>,
    /// Largest RssAnon / RssFile seen (sampled every second), KiB.
    pub rss_anon_peak_kib: Option<u64>,
    pub rss_file_peak_kib: Option<u64>,
    /// RSS at the start of the run (to see growth), KiB.
    pub rss_start: Option<ProcMem>,
    /// Change of each of [`COUNTERS`] over the run.
    pub counters: BTreeMap<String, i64>,
    /// [`GAUGES`] at the end.
    pub gauges: BTreeMap<String, String>,
}

/// The host over one run.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
pub struct HostMeasure {
    pub cpus: usize,
    pub load_1m_start: Option<f64>,
    pub load_1m_end: Option<f64>,
    /// Busy share of all CPUs during the run, percent (everything on the machine).
    pub busy_pct: Option<f64>,
    /// CPU used meanwhile by the servers of targets that were not being measured, in vCPUs.
    pub bystanders_cpu_util: Option<f64>,
}

/// A measurement in progress.
pub struct Probe {
    start: Instant,
    host_before: Option<HostCpu>,
    load_start: Option<f64>,
    cpu_before: Vec<Option<u64>>,
    rss_start: Vec<Option<ProcMem>>,
    status_before: Vec<BTreeMap<String, String>>,
    bystanders: Vec<(u32, Option<u64>)>,
    peaks: Arc<Mutex<Vec<(u64, u64)>>>,
    stop: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
    ticks: f64,
}

fn status_of(ep: &Endpoint) -> BTreeMap<String, String> {
    match ep
        .connect(None)
        .and_then(|mut c| db::global_status(&mut c, Some("wsrep_%")))
    {
        Ok(st) => st,
        Err(e) => {
            log::warn!("{}: cannot read wsrep status: {e}", ep.name);
            BTreeMap::new()
        }
    }
}

impl Probe {
    /// Takes the "before" readings of `target` (and of the `bystanders`' PIDs) and starts
    /// sampling RSS every second.
    pub fn start(target: &Target, bystanders: &[u32]) -> Probe {
        let pids = target.pids.clone();
        let peaks = Arc::new(Mutex::new(vec![(0u64, 0u64); pids.len()]));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peaks, stop, pids) = (peaks.clone(), stop.clone(), pids.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for (i, pid) in pids.iter().enumerate() {
                        if let Some(m) = pid.and_then(procfs::proc_mem) {
                            let mut p = peaks.lock().unwrap_or_else(|e| e.into_inner());
                            p[i].0 = p[i].0.max(m.rss_anon_kib);
                            p[i].1 = p[i].1.max(m.rss_file_kib);
                        }
                    }
                    // Sleep in short steps so that finishing does not wait a whole second.
                    for _ in 0..10 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            })
        };
        Probe {
            status_before: target.endpoints.iter().map(status_of).collect(),
            cpu_before: pids
                .iter()
                .map(|p| p.and_then(procfs::proc_cpu).map(|c| c.total_ticks()))
                .collect(),
            rss_start: pids.iter().map(|p| p.and_then(procfs::proc_mem)).collect(),
            bystanders: bystanders
                .iter()
                .map(|&p| (p, procfs::proc_cpu(p).map(|c| c.total_ticks())))
                .collect(),
            host_before: procfs::host_cpu(),
            load_start: procfs::loadavg_1m(),
            start: Instant::now(),
            peaks,
            stop,
            sampler: Some(sampler),
            ticks: procfs::clock_ticks() as f64,
        }
    }

    /// Takes the "after" readings. Returns the per-node and host measures and the wall time.
    pub fn finish(mut self, target: &Target) -> (Vec<NodeMeasure>, HostMeasure, f64) {
        let wall = self.start.elapsed().as_secs_f64();
        let host_after = procfs::host_cpu();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        let peaks = self.peaks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut nodes = Vec::new();
        for (i, ep) in target.endpoints.iter().enumerate() {
            let pid = target.pids.get(i).copied().flatten();
            let after = status_of(ep);
            let before = &self.status_before[i];
            let mut counters = BTreeMap::new();
            for k in COUNTERS {
                let num =
                    |m: &BTreeMap<String, String>| m.get(*k).and_then(|v| v.parse::<i64>().ok());
                if let (Some(a), Some(b)) = (num(&after), num(before)) {
                    counters.insert(k.to_string(), a - b);
                }
            }
            let gauges = GAUGES
                .iter()
                .filter_map(|k| after.get(*k).map(|v| (k.to_string(), v.clone())))
                .collect();
            let cpu_s = match (
                self.cpu_before.get(i).copied().flatten(),
                pid.and_then(procfs::proc_cpu),
            ) {
                (Some(b), Some(a)) => Some(a.total_ticks().saturating_sub(b) as f64 / self.ticks),
                _ => None,
            };
            let peak = peaks.get(i).copied().filter(|p| p.0 > 0);
            nodes.push(NodeMeasure {
                node: ep.name.clone(),
                pid,
                cpu_s,
                cpu_util: cpu_s.map(|c| c / wall),
                rss_end: pid.and_then(procfs::proc_mem),
                rss_anon_peak_kib: peak.map(|p| p.0),
                rss_file_peak_kib: peak.map(|p| p.1),
                rss_start: self.rss_start.get(i).copied().flatten(),
                counters,
                gauges,
            });
        }
        let by: Vec<f64> = self
            .bystanders
            .iter()
            .filter_map(|&(pid, before)| {
                let after = procfs::proc_cpu(pid)?.total_ticks();
                Some(after.saturating_sub(before?) as f64 / self.ticks)
            })
            .collect();
        let host = HostMeasure {
            cpus: procfs::cpus(),
            load_1m_start: self.load_start,
            load_1m_end: procfs::loadavg_1m(),
            busy_pct: match (self.host_before, host_after) {
                (Some(a), Some(b)) => Some(procfs::busy_pct(a, b)),
                _ => None,
            },
            bystanders_cpu_util: (!self.bystanders.is_empty())
                .then(|| by.iter().sum::<f64>() / wall),
        };
        (nodes, host, wall)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
