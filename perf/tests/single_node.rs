//! The harness against one real MariaDB server (wsrep off, started through the testbed):
//! TPC-C's transactions keep the specification's consistency conditions, the checker does
//! catch a broken database, and a sysbench point yields a record with a latency histogram.
//! Each test prints `SKIPPED: <why>` and returns when not root or when MariaDB or sysbench
//! is missing.

use std::io::Write;
use std::path::PathBuf;

use mysql::prelude::Queryable;
use trireme_perf::record::Mode;
use trireme_perf::sysbench_run::{self, SysbenchSettings};
use trireme_perf::target::{LocalSettings, Target};
use trireme_perf::tpcc::{self, check, load, Scale, TpccSettings, TxnType};

fn skip(test: &str, extra: &[&str]) -> bool {
    let why =
        trireme_testbed::missing_prerequisite(std::path::Path::new(trireme_testbed::NO_PROVIDER))
            .or_else(|| {
                extra
                    .iter()
                    .find(|b| !std::path::Path::new(b).exists())
                    .map(|b| format!("{b} is not installed"))
            });
    match why {
        Some(why) => {
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
            true
        }
        None => false,
    }
}

fn settings(tag: &str) -> LocalSettings {
    LocalSettings {
        base_dir: PathBuf::from(format!("/tmp/perf-test-{tag}-{}", std::process::id())),
        nodes: 1,
        slave_threads: 1,
        buffer_pool: "128M".into(),
        provider_options: String::new(),
        extra_cnf: Vec::new(),
    }
}

fn seed() -> u64 {
    let s = std::env::var("TRIREME_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(trireme_perf::sysbench_run::unix_now);
    let _ = writeln!(
        std::io::stderr(),
        "TPC-C seed {s} (replay with TRIREME_SEED={s})"
    );
    s
}

#[test]
fn tpcc_transactions_keep_the_consistency_conditions_and_a_broken_database_is_caught() {
    let name = "tpcc_transactions_keep_the_consistency_conditions_and_a_broken_database_is_caught";
    if skip(name, &[]) {
        return;
    }
    let s = settings("tpcc");
    let mut target = Target::start_local("standalone", None, 21300, &s).expect("server starts");
    let ts = TpccSettings {
        db: "tpcc".into(),
        scale: Scale::small(2),
        secs: 8,
        max_attempts: 10,
        seed: seed(),
    };
    let ep = target.endpoints[0].clone();
    load::load(&ep, &ts.db, ts.scale, 2, ts.seed).expect("load");
    let mut c = ep.connect(Some("tpcc")).unwrap();
    assert_eq!(
        check::violations(&mut c).unwrap(),
        Vec::<String>::new(),
        "freshly loaded"
    );
    let n: u64 = c
        .query_first("SELECT COUNT(*) FROM order_line")
        .unwrap()
        .unwrap();
    assert!(n >= 2 * 10 * 30 * 5, "order lines loaded: {n}");

    // Four terminals over two warehouses: remote payments and supply warehouses happen.
    let r = tpcc::run(&target.endpoints, &[4], &ts).expect("run");
    for t in TxnType::ALL {
        assert!(
            r.counts.get(&t).copied().unwrap_or(0) > 0,
            "no {} in {:?}",
            t.name(),
            r.counts
        );
    }
    assert_eq!(r.failed, 0, "failed transactions: {:?}", r.error_samples);
    assert!(r.notpm() > 0.0);
    let lat = r.latency_by_type();
    assert!(
        lat["new_order"].p50_us > 0.0 && lat["new_order"].count == r.counts[&TxnType::NewOrder]
    );
    let violations = check::violations(&mut c).unwrap();
    assert!(violations.is_empty(), "after the run: {violations:?}");
    // New orders were created and some delivered: the data really moved.
    let next: u64 = c
        .query_first("SELECT SUM(d_next_o_id - 1) FROM district")
        .unwrap()
        .unwrap();
    assert!(next > 2 * 10 * 30, "d_next_o_id did not advance: {next}");

    // The checker is not blind: a payment recorded in the district only breaks 1 and 9.
    c.query_drop("UPDATE district SET d_ytd = d_ytd + 1 WHERE d_w_id = 1 AND d_id = 3")
        .unwrap();
    let v = check::violations(&mut c).unwrap();
    assert_eq!(v.len(), 2, "{v:?}");
    assert!(
        v[0].starts_with("condition 1 ") && v[1].starts_with("condition 9 "),
        "{v:?}"
    );
    // An order that lost its new-order row breaks 2/3-style and 5.
    c.query_drop(
        "DELETE FROM new_order WHERE no_w_id = 2 AND no_d_id = 1 ORDER BY no_o_id LIMIT 1",
    )
    .unwrap();
    let v = check::violations(&mut c).unwrap();
    assert!(v.iter().any(|x| x.starts_with("condition 5 ")), "{v:?}");
    drop(c);
    target.stop();
    let _ = std::fs::remove_dir_all(&s.base_dir);
}

#[test]
fn a_sysbench_point_records_throughput_latency_histogram_and_process_measures() {
    let name = "a_sysbench_point_records_throughput_latency_histogram_and_process_measures";
    if skip(name, &[trireme_testbed::sysbench::SYSBENCH]) {
        return;
    }
    let s = settings("sysbench");
    let mut target = Target::start_local("standalone", None, 21310, &s).expect("server starts");
    let sb = SysbenchSettings {
        tables: 2,
        table_size: 1000,
        secs: 3,
        ..SysbenchSettings::default()
    };
    let r = sysbench_run::run_point(
        &target,
        "oltp_update_index",
        2,
        Mode::SingleWriter,
        1,
        &sb,
        &[],
    );
    assert!(r.ok, "{:?}", r.failure);
    assert!(r.tps > 0.0);
    assert!(
        !r.histogram.is_empty(),
        "sysbench --histogram was not parsed"
    );
    assert!(
        r.latency.count > 0
            && r.latency.p50_us <= r.latency.p99_us
            && r.latency.p99_us <= r.latency.max_us
    );
    let n = &r.node_measures[0];
    assert!(n.cpu_s.unwrap() > 0.0, "server CPU not measured: {n:?}");
    assert!(n.rss_end.unwrap().rss_anon_kib > 0);
    assert!(r.rtt.as_ref().unwrap().p50_us > 0.0);
    assert_eq!(r.threads_per_node, vec![2]);
    target.stop();
    let _ = std::fs::remove_dir_all(&s.base_dir);
}
