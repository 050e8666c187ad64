//! A TPC-C workload in the manner of DBT2, written in the harness (DBT2 is not packaged):
//! the nine tables, the initial population, the five transactions with the standard mix,
//! NOTPM and per-type latency, and the consistency conditions checked afterwards.
//!
//! Departures from the specification, all common in TPC-C-like benchmarks: no keying or
//! think times (terminals submit back to back, so throughput is limited by the database, not
//! by 12 s pauses); Delivery runs synchronously for all ten districts in one transaction (as
//! DBT2 does); terminals are spread over warehouses round-robin and pick districts at
//! random; a transaction that fails on a conflict (1213, 1205, 1020: deadlocks and, on a
//! cluster, certification failures) is retried with the same type, and its latency is
//! measured from the first attempt.

pub mod check;
pub mod driver;
pub mod load;
pub mod rand;
pub mod schema;
pub mod txn;

pub use driver::{run, TpccResult, TpccSettings};
pub use schema::Scale;
pub use txn::{Outcome, Terminal, TxnType};
