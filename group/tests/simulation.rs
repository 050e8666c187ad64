//! The simulator's seeds and named scenarios. `TRIREME_SEED=<n>` replays one seed;
//! `TRIREME_SIM_SEEDS=<count>` sets how many `simulation_many_seeds` runs (default 200).

mod sim;

use sim::run_seed;

fn replay_command(seed: u64) -> String {
    format!("TRIREME_SEED={seed} cargo test -p trireme-group --release --test simulation simulation_many_seeds -- --nocapture")
}

fn run_and_report(seed: u64) -> Result<u64, String> {
    run_seed(seed).map_err(|(opts, failure, journal)| {
        format!(
            "seed {seed} FAILED: {failure}\noptions: {opts:?}\nlast events:\n{journal}\nreplay: {}",
            replay_command(seed)
        )
    })
}

#[test]
fn simulation_many_seeds() {
    if let Ok(seed) = std::env::var("TRIREME_SEED") {
        let seed: u64 = seed.parse().expect("TRIREME_SEED is a u64");
        let mut rng = trireme_group::rng::Rng::new(seed);
        println!("seed {seed}: {:?}", sim::Options::swarm(&mut rng));
        if let Err(report) = run_and_report(seed) {
            panic!("{report}");
        }
        return;
    }
    let count: u64 = std::env::var("TRIREME_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let base: u64 = std::env::var("TRIREME_SIM_BASE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8) as u64;
    println!("running {count} seeds from {base} on {threads} threads");
    // Wall-clock time of the whole run, for the report only: the simulation never sees it.
    #[allow(clippy::disallowed_methods)]
    let started = std::time::Instant::now();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut failed = Vec::new();
                    let mut seed = base + t;
                    while seed < base + count {
                        if let Err(report) = run_and_report(seed) {
                            failed.push(report);
                        }
                        seed += threads;
                    }
                    failed
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("seed thread"))
            .collect()
    });
    println!("{count} seeds in {:.1?}", started.elapsed());
    if !failures.is_empty() {
        for f in &failures {
            println!("{}\n", f.lines().next().unwrap_or(""));
        }
        println!("first failure in full:\n{}", failures[0]);
        panic!("{} of {count} seeds failed", failures.len());
    }
}

#[test]
fn simulation_replays_exactly_from_its_seed() {
    // Same seed, same trace (every event, in order, hashed): nothing nondeterministic
    // (thread_rng, HashMap order, clocks) leaks into the group core.
    for seed in [3, 17, 4242] {
        let a = run_seed(seed).map_err(|e| e.1).expect("seed passes");
        let b = run_seed(seed).map_err(|e| e.1).expect("seed passes");
        assert_eq!(a, b, "seed {seed} did not replay");
    }
    let a = run_seed(3).map_err(|e| e.1).unwrap();
    let c = run_seed(4).map_err(|e| e.1).unwrap();
    assert_ne!(a, c, "different seeds should differ");
}

#[test]
fn seeds_that_once_failed_stay_green() {
    // Each found a bug (see the commit log): a forced leader's lease (50), a lost snapshot
    // (21), joiners learning raft ids (5), readmission epochs and retry storms (1195), a
    // learner that missed its removal (1967), a removed leader (223, 7088), removal guards
    // (1135), identical election timeouts (1056).
    for seed in [5, 21, 41, 50, 223, 467, 1056, 1135, 1195, 1967, 7088] {
        if let Err(report) = run_and_report(seed) {
            panic!("{report}");
        }
    }
}
