//! Status variables, in Galera 4.23's names, types and order (captured from a live Galera
//! node: `reference/galera-4.23-status.tsv`), so that tools diffing `SHOW STATUS LIKE
//! 'wsrep%'` see no change. The server prefixes `wsrep_`; names here are without it.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One status value as `stats_get` hands it to the server.
#[derive(Clone, Debug, PartialEq)]
pub enum StatValue {
    Str(String),
    Int(i64),
    Double(f64),
}

/// A queue length sampled on every change: current, min, max and time-weighted average are
/// what Galera reports (`local_recv_queue*`, `local_send_queue*`).
#[derive(Default)]
pub struct QueueGauge {
    inner: Mutex<QueueStats>,
}

#[derive(Default, Clone, Copy)]
struct QueueStats {
    current: i64,
    min: i64,
    max: i64,
    samples: u64,
    sum: i64,
}

impl QueueGauge {
    pub fn set(&self, len: usize) {
        let len = len as i64;
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        q.current = len;
        if q.samples == 0 || len < q.min {
            q.min = len;
        }
        q.max = q.max.max(len);
        q.samples += 1;
        q.sum += len;
    }

    /// (current, max, min, avg)
    pub fn read(&self) -> (i64, i64, i64, f64) {
        let q = *self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let avg = if q.samples == 0 {
            0.0
        } else {
            q.sum as f64 / q.samples as f64
        };
        (q.current, q.max, q.min, avg)
    }

    pub fn reset(&self) {
        let mut q = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let current = q.current;
        *q = QueueStats {
            current,
            min: current,
            max: current,
            samples: 0,
            sum: 0,
        };
    }
}

/// Latencies of one stage, in nanoseconds (HDR histogram, 3 significant digits).
pub struct Latency {
    inner: Mutex<hdrhistogram::Histogram<u64>>,
}

impl Default for Latency {
    fn default() -> Self {
        let histogram = hdrhistogram::Histogram::new_with_bounds(1, 600_000_000_000, 3)
            .expect("static bounds are valid");
        Latency {
            inner: Mutex::new(histogram),
        }
    }
}

/// What `SHOW STATUS` shows of one stage.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min_ns: u64,
    pub mean_ns: f64,
    pub stddev_ns: f64,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

impl Latency {
    pub fn record(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(ns);
    }

    pub fn summary(&self) -> LatencySummary {
        let h = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min_ns: h.min(),
            mean_ns: h.mean(),
            stddev_ns: h.stdev(),
            p50_ns: h.value_at_quantile(0.50),
            p99_ns: h.value_at_quantile(0.99),
            max_ns: h.max(),
        }
    }

    pub fn reset(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).reset();
    }
}

impl LatencySummary {
    /// Galera's `wsrep_evs_repl_latency` form: min/avg/max/stddev/count, in seconds.
    pub fn galera_text(&self) -> String {
        let s = |ns: f64| ns / 1e9;
        format!(
            "{}/{}/{}/{}/{}",
            s(self.min_ns as f64),
            s(self.mean_ns),
            s(self.max_ns as f64),
            s(self.stddev_ns),
            self.count
        )
    }
}

/// Counters updated on the hot path with relaxed atomics.
#[derive(Default)]
pub struct Counters {
    pub replicated: AtomicU64,
    pub replicated_bytes: AtomicU64,
    pub repl_keys: AtomicU64,
    pub repl_keys_bytes: AtomicU64,
    pub repl_data_bytes: AtomicU64,
    pub repl_other_bytes: AtomicU64,
    pub received: AtomicU64,
    pub received_bytes: AtomicU64,
    pub local_commits: AtomicU64,
    pub local_cert_failures: AtomicU64,
    pub local_replays: AtomicU64,
    pub causal_reads: AtomicU64,
    pub apply_waits: AtomicU64,
    /// Sum and count of (seqno - depends_on) for `cert_deps_distance`.
    pub deps_distance_sum: AtomicI64,
    pub deps_distance_count: AtomicU64,
    /// Sum and count of (seqno - last_seen) for `cert_interval`.
    pub cert_interval_sum: AtomicI64,
    pub cert_interval_count: AtomicU64,
    pub cert_index_size: AtomicU64,
    /// Sum and count of (seqno - last committed) when a writeset starts applying, and when a
    /// commit leaves the order: `wsrep_apply_window`, `wsrep_commit_window`.
    pub apply_window_sum: AtomicI64,
    pub apply_window_count: AtomicU64,
    pub commit_window_sum: AtomicI64,
    pub commit_window_count: AtomicU64,
    pub cached_downto: AtomicI64,
    pub open_transactions: AtomicI64,
    pub recv_queue: QueueGauge,
    pub send_queue: QueueGauge,
    /// `certify()` from the send to the answer: ordering, certification and the hops.
    pub replicate_latency: Latency,
    /// Time waited in `commit_order_enter`.
    pub commit_wait_latency: Latency,
    /// `apply_cb` of one writeset on an applier.
    pub apply_latency: Latency,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> i64 {
        counter.load(Ordering::Relaxed) as i64
    }

    pub fn record_cert(&self, seqno: i64, last_seen: i64, depends_on: i64) {
        if last_seen >= 0 {
            self.cert_interval_sum
                .fetch_add(seqno - last_seen, Ordering::Relaxed);
            self.cert_interval_count.fetch_add(1, Ordering::Relaxed);
        }
        if depends_on >= 0 {
            self.deps_distance_sum
                .fetch_add(seqno - depends_on, Ordering::Relaxed);
            self.deps_distance_count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How many seqnos, this one included, were ordered but not yet committed when `seqno`
    /// started applying (`apply`) or committed: Galera's apply and commit windows.
    pub fn record_window(sum: &AtomicI64, count: &AtomicU64, seqno: i64, last_committed: i64) {
        let distance = seqno - last_committed;
        if distance >= 1 && last_committed >= 0 {
            sum.fetch_add(distance, Ordering::Relaxed);
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn apply_window(&self) -> f64 {
        Self::average(&self.apply_window_sum, &self.apply_window_count)
    }

    pub fn commit_window(&self) -> f64 {
        Self::average(&self.commit_window_sum, &self.commit_window_count)
    }

    fn average(sum: &AtomicI64, count: &AtomicU64) -> f64 {
        let n = count.load(Ordering::Relaxed);
        if n == 0 {
            0.0
        } else {
            sum.load(Ordering::Relaxed) as f64 / n as f64
        }
    }

    pub fn cert_deps_distance(&self) -> f64 {
        Self::average(&self.deps_distance_sum, &self.deps_distance_count)
    }

    pub fn cert_interval(&self) -> f64 {
        Self::average(&self.cert_interval_sum, &self.cert_interval_count)
    }

    /// `FLUSH STATUS` / `stats_reset`: Galera resets the queue and flow-control averages,
    /// not the monotonic counters.
    pub fn reset(&self) {
        for sum in [&self.apply_window_sum, &self.commit_window_sum] {
            sum.store(0, Ordering::Relaxed);
        }
        for count in [&self.apply_window_count, &self.commit_window_count] {
            count.store(0, Ordering::Relaxed);
        }
        self.recv_queue.reset();
        self.send_queue.reset();
        self.replicate_latency.reset();
        self.commit_wait_latency.reset();
        self.apply_latency.reset();
    }
}

/// What `stats_get` needs besides the counters: node-level facts the engine knows.
pub struct NodeFacts {
    pub history_uuid: String,
    pub last_committed: i64,
    pub local_state: i64,
    pub local_state_comment: String,
    pub incoming_addresses: String,
    pub desync_count: i64,
    pub gcomm_uuid: String,
    pub evs_state: String,
    pub segment: i64,
    pub open_connections: i64,
    pub flow: crate::flow::FlowStats,
    /// `wsrep_evs_evict_list`: evicted node ids, comma-separated.
    pub evict_list: String,
    /// `wsrep_cluster_weight`: the primary component's total weight (0 outside one).
    pub cluster_weight: i64,
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Application protocol version we speak with MariaDB (contract §1.4: 4).
pub const PROTOCOL_APPLICATION: i64 = 4;
/// Trireme's own replication and group protocol versions.
pub const PROTOCOL_TRIREME: i64 = 1;

/// Bytes the provider's allocator holds (allocated minus freed), kept by the library's global
/// allocator (the `ffi` crate), which flushes each thread's running count here in steps of
/// `HEAP_FLUSH_BYTES`: the value is exact to within that per thread. Zero where no counting
/// allocator is installed (unit tests).
pub static HEAP_BYTES: AtomicI64 = AtomicI64::new(0);

/// The step in which threads report to `HEAP_BYTES` (one shared atomic add per step, not
/// per allocation).
pub const HEAP_FLUSH_BYTES: i64 = 256 * 1024;

/// Trireme's own stage latencies (`trireme.extended_status=yes`), listed after Galera's names so
/// that list stays as Galera has it: p50, p99 and max in microseconds per stage; then the
/// provider's heap (`trireme_heap_bytes`).
pub fn extended(c: &Counters, certify: LatencySummary) -> Vec<(&'static str, StatValue)> {
    let us = |ns: u64| StatValue::Int((ns / 1000) as i64);
    let mut out = Vec::new();
    for (stage, summary) in [
        ("replicate", c.replicate_latency.summary()),
        ("certify", certify),
        ("commit_wait", c.commit_wait_latency.summary()),
        ("apply", c.apply_latency.summary()),
    ] {
        let names: [&'static str; 3] = match stage {
            "replicate" => [
                "trireme_replicate_p50_us",
                "trireme_replicate_p99_us",
                "trireme_replicate_max_us",
            ],
            "certify" => [
                "trireme_certify_p50_us",
                "trireme_certify_p99_us",
                "trireme_certify_max_us",
            ],
            "commit_wait" => [
                "trireme_commit_wait_p50_us",
                "trireme_commit_wait_p99_us",
                "trireme_commit_wait_max_us",
            ],
            _ => [
                "trireme_apply_p50_us",
                "trireme_apply_p99_us",
                "trireme_apply_max_us",
            ],
        };
        out.push((names[0], us(summary.p50_ns)));
        out.push((names[1], us(summary.p99_ns)));
        out.push((names[2], us(summary.max_ns)));
    }
    out.push((
        "trireme_heap_bytes",
        StatValue::Int(HEAP_BYTES.load(Ordering::Relaxed)),
    ));
    out
}

/// The status list in Galera 4.23's order.
pub fn collect(c: &Counters, f: &NodeFacts) -> Vec<(&'static str, StatValue)> {
    use StatValue::{Double, Int, Str};
    let (recv_cur, recv_max, recv_min, recv_avg) = c.recv_queue.read();
    let (send_cur, send_max, send_min, send_avg) = c.send_queue.read();
    let get = Counters::get;
    vec![
        ("local_state_uuid", Str(f.history_uuid.clone())),
        ("protocol_version", Int(PROTOCOL_TRIREME)),
        ("protocol_application", Int(PROTOCOL_APPLICATION)),
        ("protocol_replicator", Int(PROTOCOL_TRIREME)),
        ("protocol_GCS", Int(PROTOCOL_TRIREME)),
        ("last_committed", Int(f.last_committed)),
        ("replicated", Int(get(&c.replicated))),
        ("replicated_bytes", Int(get(&c.replicated_bytes))),
        ("repl_keys", Int(get(&c.repl_keys))),
        ("repl_keys_bytes", Int(get(&c.repl_keys_bytes))),
        ("repl_data_bytes", Int(get(&c.repl_data_bytes))),
        ("repl_other_bytes", Int(get(&c.repl_other_bytes))),
        ("received", Int(get(&c.received))),
        ("received_bytes", Int(get(&c.received_bytes))),
        ("local_commits", Int(get(&c.local_commits))),
        ("local_cert_failures", Int(get(&c.local_cert_failures))),
        ("local_replays", Int(get(&c.local_replays))),
        ("local_send_queue", Int(send_cur)),
        ("local_send_queue_max", Int(send_max)),
        ("local_send_queue_min", Int(send_min)),
        ("local_send_queue_avg", Double(send_avg)),
        ("local_recv_queue", Int(recv_cur)),
        ("local_recv_queue_max", Int(recv_max)),
        ("local_recv_queue_min", Int(recv_min)),
        ("local_recv_queue_avg", Double(recv_avg)),
        (
            "local_cached_downto",
            Int(c.cached_downto.load(Ordering::Relaxed)),
        ),
        ("flow_control_paused_ns", Int(clamp_i64(f.flow.paused_ns))),
        ("flow_control_paused", Double(f.flow.paused_fraction)),
        ("flow_control_sent", Int(clamp_i64(f.flow.sent))),
        ("flow_control_recv", Int(clamp_i64(f.flow.recv))),
        ("flow_control_active", Str(f.flow.active.to_string())),
        ("flow_control_requested", Str(f.flow.requested.to_string())),
        ("cert_deps_distance", Double(c.cert_deps_distance())),
        ("apply_oooe", Double(0.0)),
        ("apply_oool", Double(0.0)),
        ("apply_window", Double(c.apply_window())),
        ("apply_waits", Int(get(&c.apply_waits))),
        ("commit_oooe", Double(0.0)),
        ("commit_oool", Double(0.0)),
        ("commit_window", Double(c.commit_window())),
        ("local_state", Int(f.local_state)),
        ("local_state_comment", Str(f.local_state_comment.clone())),
        ("cert_index_size", Int(get(&c.cert_index_size))),
        ("causal_reads", Int(get(&c.causal_reads))),
        ("cert_interval", Double(c.cert_interval())),
        (
            "open_transactions",
            Int(c.open_transactions.load(Ordering::Relaxed)),
        ),
        ("open_connections", Int(f.open_connections)),
        ("incoming_addresses", Str(f.incoming_addresses.clone())),
        ("cluster_weight", Int(f.cluster_weight)),
        ("desync_count", Int(f.desync_count)),
        ("evs_delayed", Str(String::new())),
        ("evs_evict_list", Str(f.evict_list.clone())),
        (
            "evs_repl_latency",
            Str(c.replicate_latency.summary().galera_text()),
        ),
        ("evs_state", Str(f.evs_state.clone())),
        ("gcomm_uuid", Str(f.gcomm_uuid.clone())),
        ("gmcast_segment", Int(f.segment)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const GALERA_STATUS: &str = include_str!("../../reference/galera-4.23-status.tsv");

    fn facts() -> NodeFacts {
        NodeFacts {
            history_uuid: "x".into(),
            last_committed: 1,
            local_state: 4,
            local_state_comment: "Synced".into(),
            incoming_addresses: "AUTO".into(),
            desync_count: 0,
            gcomm_uuid: "y".into(),
            evs_state: "OPERATIONAL".into(),
            segment: 0,
            open_connections: 0,
            flow: crate::flow::FlowControl::new(16, 1.0).stats(),
            evict_list: String::new(),
            cluster_weight: 3,
        }
    }

    #[test]
    fn provider_status_names_match_galera_in_name_and_order() {
        // Galera's provider-side names are those before the server's own
        // (wsrep_checkpoint_position is the first server-side one).
        let galera: Vec<String> = GALERA_STATUS
            .lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .take_while(|n| n != "wsrep_checkpoint_position")
            .collect();
        let ours: Vec<String> = collect(&Counters::default(), &facts())
            .iter()
            .map(|(n, _)| format!("wsrep_{}", n.to_lowercase()))
            .collect();
        assert_eq!(ours, galera);
    }

    #[test]
    fn queue_gauge_reports_current_min_max_and_average() {
        let q = QueueGauge::default();
        for len in [0, 2, 4, 2] {
            q.set(len);
        }
        assert_eq!(q.read(), (2, 4, 0, 2.0));
        q.reset();
        assert_eq!(q.read(), (2, 2, 2, 0.0));
    }
}
