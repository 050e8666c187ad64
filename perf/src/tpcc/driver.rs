//! Runs TPC-C terminals against a set of nodes for a fixed time and collects NOTPM,
//! per-type latency (HDR histograms, microseconds, measured by each terminal around the
//! whole transaction including retries) and errors by server code.

use std::collections::BTreeMap;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mysql::Conn;

use super::rand::Rng;
use super::schema::Scale;
use super::txn::{Outcome, Terminal, TxnType};
use crate::db::{self, Endpoint};
use crate::error::PerfError;
use crate::stats::{self, Latency};

/// How a TPC-C run is set up.
#[derive(Debug, Clone)]
pub struct TpccSettings {
    pub db: String,
    pub scale: Scale,
    pub secs: u64,
    /// Attempts of one transaction before it counts as failed.
    pub max_attempts: u32,
    pub seed: u64,
}

/// What a run produced.
#[derive(Debug)]
pub struct TpccResult {
    pub elapsed: Duration,
    /// Completed transactions per type (New-Order includes the 1 % rolled back by design).
    pub counts: BTreeMap<TxnType, u64>,
    pub rolled_back: u64,
    /// Transactions given up after `max_attempts` or on a non-retryable error.
    pub failed: u64,
    /// Errors by server code (`driver` for errors without one), retried ones included.
    pub errors_by_code: BTreeMap<String, u64>,
    pub latency: BTreeMap<TxnType, Histogram<u64>>,
    /// The first few distinct non-retryable errors, for the report.
    pub error_samples: Vec<String>,
}

impl TpccResult {
    /// New-Order transactions per minute.
    pub fn notpm(&self) -> f64 {
        let n = self.counts.get(&TxnType::NewOrder).copied().unwrap_or(0);
        n as f64 * 60.0 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// All completed transactions per second.
    pub fn tps(&self) -> f64 {
        self.counts.values().sum::<u64>() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// All types merged.
    pub fn all_latency(&self) -> Histogram<u64> {
        let mut h = stats::new_histogram();
        for x in self.latency.values() {
            stats::merge_into(&mut h, x);
        }
        h
    }

    pub fn latency_by_type(&self) -> BTreeMap<String, Latency> {
        self.latency
            .iter()
            .map(|(t, h)| (t.name().to_string(), Latency::of(h)))
            .collect()
    }
}

#[derive(Default)]
struct TerminalTally {
    counts: BTreeMap<TxnType, u64>,
    rolled_back: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    latency: BTreeMap<TxnType, Histogram<u64>>,
    samples: Vec<String>,
}

/// Runs `per_node[i]` terminals against `endpoints[i]` for `s.secs` seconds. Terminal `k`
/// (counted over all nodes) has home warehouse `k % W + 1`.
pub fn run(
    endpoints: &[Endpoint],
    per_node: &[u32],
    s: &TpccSettings,
) -> Result<TpccResult, PerfError> {
    let mut plan = Vec::new();
    for (ep, &n) in endpoints.iter().zip(per_node) {
        for _ in 0..n {
            plan.push(ep.clone());
        }
    }
    if plan.is_empty() {
        return Err(PerfError::Run("TPC-C: no terminals".into()));
    }
    // Connect everyone first, then start the clock together.
    let mut conns = Vec::new();
    for ep in &plan {
        conns.push(ep.connect(Some(&s.db))?);
    }
    let barrier = Barrier::new(plan.len() + 1);
    let tallies = Mutex::new(Vec::new());
    let duration = Duration::from_secs(s.secs);
    let mut t0 = Instant::now();
    std::thread::scope(|scope| {
        for (k, (conn, ep)) in conns.into_iter().zip(&plan).enumerate() {
            let (barrier, tallies) = (&barrier, &tallies);
            scope.spawn(move || {
                let term = Terminal {
                    w_id: (k as u32 % s.scale.warehouses) + 1,
                    scale: s.scale,
                };
                let rng = Rng::new(s.seed ^ (k as u64 + 1).wrapping_mul(0xA076_1D64_78BD_642F));
                barrier.wait();
                let tally = terminal_loop(term, conn, ep, rng, Instant::now() + duration, s);
                tallies
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(tally);
            });
        }
        barrier.wait();
        t0 = Instant::now();
    });
    // The scope has joined every terminal: the clock stops when the last one has finished
    // the transaction it was in at the deadline, and every transaction counted is inside it.
    let elapsed = t0.elapsed();
    let mut r = TpccResult {
        elapsed,
        counts: BTreeMap::new(),
        rolled_back: 0,
        failed: 0,
        errors_by_code: BTreeMap::new(),
        latency: BTreeMap::new(),
        error_samples: Vec::new(),
    };
    for t in tallies.into_inner().unwrap_or_else(|p| p.into_inner()) {
        for (k, v) in t.counts {
            *r.counts.entry(k).or_default() += v;
        }
        for (k, v) in t.errors {
            *r.errors_by_code.entry(k).or_default() += v;
        }
        for (k, h) in t.latency {
            stats::merge_into(r.latency.entry(k).or_insert_with(stats::new_histogram), &h);
        }
        r.rolled_back += t.rolled_back;
        r.failed += t.failed;
        for sm in t.samples {
            if r.error_samples.len() < 5 && !r.error_samples.contains(&sm) {
                r.error_samples.push(sm);
            }
        }
    }
    Ok(r)
}

fn terminal_loop(
    term: Terminal,
    mut conn: Conn,
    ep: &Endpoint,
    mut rng: Rng,
    deadline: Instant,
    s: &TpccSettings,
) -> TerminalTally {
    let mut t = TerminalTally::default();
    for ty in TxnType::ALL {
        t.latency.insert(ty, stats::new_histogram());
    }
    while Instant::now() < deadline {
        let ty = TxnType::pick(&mut rng);
        let start = Instant::now();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match term.run(&mut conn, ty, &mut rng) {
                Ok(outcome) => {
                    *t.counts.entry(ty).or_default() += 1;
                    if outcome == Outcome::RolledBack {
                        t.rolled_back += 1;
                    }
                    if let Some(h) = t.latency.get_mut(&ty) {
                        stats::record_us(h, start.elapsed().as_secs_f64() * 1e6);
                    }
                    break;
                }
                Err(e) => {
                    let code = db::error_code(&e)
                        .filter(|&c| c != 0)
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "driver".into());
                    *t.errors.entry(code).or_default() += 1;
                    let retry = db::is_retryable(&e) && attempt < s.max_attempts;
                    if !retry {
                        t.failed += 1;
                        if t.samples.len() < 5 {
                            t.samples.push(format!("{}: {e}", ty.name()));
                        }
                        // A driver error may mean a dead connection: start a new one.
                        if db::error_code(&e).is_none() {
                            match ep.connect(Some(&s.db)) {
                                Ok(c) => conn = c,
                                Err(_) => std::thread::sleep(Duration::from_millis(200)),
                            }
                        }
                        break;
                    }
                    if Instant::now() >= deadline {
                        break;
                    }
                }
            }
        }
    }
    t
}
