//! The sharded index against a naive model (contract §2.7; style anchors §6 "cert").
//!
//! The model keeps every passed writeset in a `Vec` and, for each key of a new writeset and
//! each key type, scans them all for the latest one that recorded that key with that type (the
//! semantics of Galera's `KeyEntryNG`: one record per key and type). It reads the matrix from
//! the contract's text, not from the crate's table. `Certifier`s with 1, 2, 3 and 7 slices must
//! give the same verdict, `depends_on`, index size and statistics as the model after every step
//! of random streams: few hot keys, several sources, random `last_seen` (including too old and
//! ahead), random flags (TOI, PA_UNSAFE, IMPLICIT_DEPS, anything), gaps in seqnos,
//! configuration changes, purges and index preloads.
//!
//! Seeded and replayable: the seed is printed (`--nocapture`, and in any failure message);
//! `TRIREME_SEED=<n> cargo test -p trireme-cert --test model` replays it. `PROPTEST_CASES`
//! changes the number of streams.

mod common;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use trireme_cert::{CertConfig, CertStats, Certifier, Verdict};
use trireme_types::{KeyHash, KeyType, NodeId, Seqno, Writeset, WsFlags, WsKey};

const SHARD_COUNTS: [u32; 4] = [1, 2, 3, 7];
const HOT_KEYS: u8 = 6;
const SLOT_ORDER: [KeyType; 4] = [
    KeyType::Exclusive,
    KeyType::Update,
    KeyType::Reference,
    KeyType::Shared,
];

// ---- the model ----------------------------------------------------------------------------

struct Record {
    seqno: Seqno,
    source: NodeId,
    toi: bool,
    keys: Vec<WsKey>,
}

struct Model {
    config: CertConfig,
    /// `cells[p][t]` from the contract's text.
    cells: [[char; 4]; 4],
    position: Seqno,
    horizon: Seqno,
    last_barrier: Seqno,
    purged_below: Seqno,
    passed: Vec<Record>,
    stats: CertStats,
}

impl Model {
    fn new(initial: Seqno, config: CertConfig) -> Model {
        let mut cells = [[' '; 4]; 4];
        for p in KeyType::ALL {
            for t in KeyType::ALL {
                cells[p.index()][t.index()] = contract_cell(p, t);
            }
        }
        Model {
            config,
            cells,
            position: initial,
            horizon: initial,
            last_barrier: initial,
            purged_below: Seqno(i64::MIN),
            passed: Vec::new(),
            stats: CertStats::default(),
        }
    }

    fn latest(&self, hash: KeyHash, p: KeyType) -> Option<&Record> {
        self.passed
            .iter()
            .filter(|r| r.seqno >= self.purged_below)
            .filter(|r| r.keys.iter().any(|k| k.hash == hash && k.key_type() == p))
            .max_by_key(|r| r.seqno)
    }

    fn certify(&mut self, seqno: Seqno, ws: &Writeset, preload: bool) -> Verdict {
        assert!(seqno > self.position);
        let flags = ws.flags();
        let toi = flags.has(WsFlags::ISOLATION);
        let serial = toi || flags.has(WsFlags::PA_UNSAFE);
        let mut key_dep = Seqno::UNDEFINED;
        let mut conflict = None;
        if !toi {
            for k in &ws.keys {
                let t = k.key_type();
                for p in SLOT_ORDER {
                    let Some(rec) = self.latest(k.hash, p) else {
                        continue;
                    };
                    match self.cells[p.index()][t.index()] {
                        'N' => {}
                        'D' => key_dep = key_dep.max(rec.seqno),
                        'C' => {
                            key_dep = key_dep.max(rec.seqno);
                            let concurrent = rec.seqno > ws.last_seen;
                            let foreign = rec.toi || rec.source != ws.source;
                            if !preload && concurrent && foreign && conflict.is_none() {
                                conflict = Some((k.hash, rec.seqno));
                            }
                        }
                        other => panic!("bad cell {other}"),
                    }
                }
            }
        }
        let depends_on = if serial {
            Seqno(seqno.0 - 1)
        } else {
            let mut d = self.last_barrier.max(self.horizon).max(key_dep);
            let follow = !self.config.optimistic_pa || flags.has(WsFlags::IMPLICIT_DEPS);
            if follow && ws.last_seen < seqno {
                d = d.max(ws.last_seen);
            }
            d.min(Seqno(seqno.0 - 1))
        };
        let oldest_allowed = match self.config.max_length {
            Some(max) => self.horizon.max(Seqno(seqno.0 - max as i64)),
            None => self.horizon,
        };
        let verdict = if preload {
            Verdict::Pass { depends_on }
        } else if ws.last_seen >= seqno {
            Verdict::LastSeenAhead {
                last_seen: ws.last_seen,
                depends_on,
            }
        } else if ws.last_seen < oldest_allowed {
            Verdict::TooOld {
                last_seen: ws.last_seen,
                oldest_allowed,
                depends_on,
            }
        } else if let Some((key, with_seqno)) = conflict {
            Verdict::Conflict {
                key,
                with_seqno,
                depends_on,
            }
        } else {
            Verdict::Pass { depends_on }
        };
        self.position = seqno;
        if verdict.is_pass() {
            self.passed.push(Record {
                seqno,
                source: ws.source,
                toi,
                keys: ws.keys.clone(),
            });
            if serial {
                self.last_barrier = seqno;
            }
            self.stats.passed += 1;
            self.stats.cert_interval_sum += (seqno.0 - ws.last_seen.0 - 1).max(0) as u64;
            self.stats.deps_distance_sum += (seqno.0 - depends_on.0) as u64;
        } else {
            self.stats.failed += 1;
        }
        verdict
    }

    fn barrier(&mut self, seqno: Seqno) {
        self.position = seqno;
        self.last_barrier = seqno;
    }

    fn purge_below(&mut self, cut: Seqno) {
        self.purged_below = self.purged_below.max(cut);
        self.horizon = self.horizon.max(Seqno(cut.0 - 1).min(self.position));
        let purged_below = self.purged_below;
        self.passed.retain(|r| r.seqno >= purged_below);
    }

    fn index_size(&self) -> usize {
        let mut keys: Vec<KeyHash> = self
            .passed
            .iter()
            .flat_map(|r| r.keys.iter().map(|k| k.hash))
            .collect();
        keys.sort();
        keys.dedup();
        keys.len()
    }
}

// ---- random streams -----------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Op {
    Writeset {
        gap: u8,
        source: u8,
        /// last_seen = seqno - 1 - back (negative: at or after its own seqno).
        back: i16,
        flags: u32,
        /// (hot key, kind); kind 4 is an unknown kind byte.
        keys: Vec<(u8, u8)>,
        preload: bool,
    },
    Barrier {
        gap: u8,
    },
    /// purge_below(position + 1 - back)
    Purge {
        back: u8,
    },
}

#[derive(Clone, Debug)]
struct Scenario {
    initial: i64,
    config: CertConfig,
    ops: Vec<Op>,
}

fn hot_key(index: u8) -> KeyHash {
    // Spread over the slices of every tested shard count, and over the high half too.
    let x = u128::from(index) + 1;
    KeyHash(x.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) ^ (x << 3))
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let gap = prop_oneof![10 => Just(0u8), 1 => 1..3u8];
    let back = prop_oneof![30 => 0..5i16, 6 => 5..16i16, 1 => -2..0i16, 1 => 100..200i16];
    let flags = prop_oneof![
        14 => Just(PLAIN),
        2 => Just(TOI),
        2 => Just(WsFlags::TRX_END | WsFlags::PA_UNSAFE),
        1 => Just(PLAIN | WsFlags::IMPLICIT_DEPS),
        1 => 0..(WsFlags::KNOWN + 1),
    ];
    let kind = prop_oneof![6 => 0..4u8, 1 => Just(4u8)];
    let keys = prop::collection::vec((0..HOT_KEYS, kind), 0..6);
    let preload = prop_oneof![25 => Just(false), 1 => Just(true)];
    prop_oneof![
        85 => (gap.clone(), 0..4u8, back, flags, keys, preload).prop_map(
            |(gap, source, back, flags, keys, preload)| Op::Writeset {
                gap, source, back, flags, keys, preload
            }
        ),
        5 => gap.prop_map(|gap| Op::Barrier { gap }),
        10 => (0..12u8).prop_map(|back| Op::Purge { back }),
    ]
}

fn scenario_strategy() -> impl Strategy<Value = Scenario> {
    let max_length = prop_oneof![Just(None), (2..12u64).prop_map(Some), Just(Some(16384))];
    let optimistic_pa = prop_oneof![5 => Just(true), 1 => Just(false)];
    (
        -1..3i64,
        max_length,
        optimistic_pa,
        prop::collection::vec(op_strategy(), 1..200),
    )
        .prop_map(|(initial, max_length, optimistic_pa, ops)| Scenario {
            initial,
            config: CertConfig {
                optimistic_pa,
                max_length,
            },
            ops,
        })
}

// ---- the comparison -----------------------------------------------------------------------

#[derive(Default)]
struct Coverage {
    pass_with_key_dependency: AtomicU64,
    conflict: AtomicU64,
    too_old: AtomicU64,
    ahead: AtomicU64,
    purges_that_removed_keys: AtomicU64,
}

fn run(scenario: &Scenario, coverage: &Coverage) -> Result<(), TestCaseError> {
    let initial = Seqno(scenario.initial);
    let mut model = Model::new(initial, scenario.config);
    let mut certifiers: Vec<Certifier> = SHARD_COUNTS
        .iter()
        .map(|&n| Certifier::new(n, initial, scenario.config).unwrap())
        .collect();
    for (step, op) in scenario.ops.iter().enumerate() {
        let position = model.position;
        match op {
            Op::Writeset {
                gap,
                source,
                back,
                flags,
                keys,
                preload,
            } => {
                let seqno = Seqno(position.0.max(0) + 1 + i64::from(*gap));
                let keys: Vec<WsKey> = keys
                    .iter()
                    .map(|&(k, kind)| WsKey {
                        hash: hot_key(k),
                        kind: if kind < 4 { kind } else { 9 },
                    })
                    .collect();
                let ws = writeset(*source, seqno.0 - 1 - i64::from(*back), *flags, &keys);
                let floor = model.last_barrier.max(model.horizon);
                let expected = model.certify(seqno, &ws, *preload);
                match expected {
                    Verdict::Pass { depends_on }
                        if depends_on > floor
                            && !ws.flags().has(WsFlags::PA_UNSAFE | WsFlags::ISOLATION) =>
                    {
                        coverage.pass_with_key_dependency.fetch_add(1, Relaxed);
                    }
                    Verdict::Conflict { .. } => _ = coverage.conflict.fetch_add(1, Relaxed),
                    Verdict::TooOld { .. } => _ = coverage.too_old.fetch_add(1, Relaxed),
                    Verdict::LastSeenAhead { .. } => _ = coverage.ahead.fetch_add(1, Relaxed),
                    _ => {}
                }
                for (cert, shards) in certifiers.iter_mut().zip(SHARD_COUNTS) {
                    let got = if *preload {
                        cert.preload(seqno, &ws)
                    } else {
                        cert.certify(seqno, &ws)
                    };
                    prop_assert_eq!(
                        got,
                        Ok(expected),
                        "step {} seqno {} with {} slices: {:?}",
                        step,
                        seqno,
                        shards,
                        ws
                    );
                }
            }
            Op::Barrier { gap } => {
                let seqno = Seqno(position.0.max(0) + 1 + i64::from(*gap));
                model.barrier(seqno);
                for cert in &mut certifiers {
                    prop_assert_eq!(cert.certify_barrier(seqno), Ok(()));
                }
            }
            Op::Purge { back } => {
                let cut = Seqno(position.0 + 1 - i64::from(*back));
                let before = model.index_size();
                model.purge_below(cut);
                if model.index_size() < before {
                    coverage.purges_that_removed_keys.fetch_add(1, Relaxed);
                }
                for cert in &mut certifiers {
                    cert.purge_below(cut);
                }
            }
        }
        for (cert, shards) in certifiers.iter().zip(SHARD_COUNTS) {
            prop_assert_eq!(
                cert.index_size(),
                model.index_size(),
                "index size, {} slices, step {}",
                shards,
                step
            );
            prop_assert_eq!(
                cert.stats(),
                model.stats,
                "stats, {} slices, step {}",
                shards,
                step
            );
            prop_assert_eq!(cert.position(), model.position);
        }
    }
    Ok(())
}

fn rng_from(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Contract §2.7: the verdict never depends on the shard count, and equals the naive scan.
#[test]
fn sharded_certifier_matches_the_naive_model_for_any_shard_count() {
    let seed = seed();
    println!("model test: TRIREME_SEED={seed}");
    // 1024 streams unless PROPTEST_CASES says otherwise (a run takes about a second).
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, rng_from(seed));
    let coverage = Coverage::default();
    let result = runner.run(&scenario_strategy(), |scenario| run(&scenario, &coverage));
    if let Err(failure) = result {
        panic!("{failure}\nreplay with TRIREME_SEED={seed}");
    }
    // The streams must reach every interesting outcome, or the comparison proves little.
    let counts = [
        (
            "pass with a key dependency",
            coverage.pass_with_key_dependency.load(Relaxed),
        ),
        ("conflict", coverage.conflict.load(Relaxed)),
        ("too old", coverage.too_old.load(Relaxed)),
        ("last_seen ahead", coverage.ahead.load(Relaxed)),
        (
            "purge removing keys",
            coverage.purges_that_removed_keys.load(Relaxed),
        ),
    ];
    println!("model test coverage: {counts:?}");
    for (what, count) in counts {
        assert!(
            count > 0,
            "no stream produced a {what} (TRIREME_SEED={seed})"
        );
    }
}
