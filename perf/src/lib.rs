//! trireme-perf: Galera 4 and Trireme side by side on the same machine, in one run.
//!
//! The harness starts one local cluster per provider through the testbed (identical
//! `my.cnf` but for `wsrep_provider`), or points at the user's own nodes by address, and
//! runs a matrix of sysbench workloads and a TPC-C workload written here (in the manner of
//! DBT2), plus a commit-latency measurement against a standalone server. Providers take
//! turns point by point (A/B/A/B). Every run is one JSON line in `results.jsonl`; the
//! report (`report.md` with SVG plots) gives medians with ranges over repetitions and the
//! ratios Trireme/Galera.
//!
//! Modules, top-down: [`runner`] (the plan and its execution), [`sysbench_run`],
//! [`tpcc_run`] and [`tpcc`], [`commit`], [`measure`] (CPU, RSS, wsrep counters around a run),
//! [`report`] and [`svg`], [`record`] (the JSON line), and the small parts: [`target`],
//! [`db`], [`rtt`], [`procfs`], [`stats`].

pub mod commit;
pub mod db;
pub mod error;
pub mod measure;
pub mod procfs;
pub mod record;
pub mod report;
pub mod rtt;
pub mod runner;
pub mod stats;
pub mod svg;
pub mod sysbench_run;
pub mod target;
pub mod tpcc;
pub mod tpcc_run;

pub use error::PerfError;
