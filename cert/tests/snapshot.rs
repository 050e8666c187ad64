//! A joiner certifies exactly like the donor once it imports the donor's index
//! (`cert::snapshot`): after a random prefix of writesets, barriers and purges, the donor
//! exports; certifiers with 1, 2 and 3 slices import it; then donor and joiners certify the
//! same continuation and must agree on every verdict and `depends_on`. A certifier that
//! starts empty at the same position instead (what a joiner without the snapshot would do)
//! must disagree on some seeds, which shows the test can fail.
//!
//! Seeded: `TRIREME_SEED=<n> cargo test -p trireme-cert --test snapshot` replays a run.

mod common;

use common::*;
use trireme_cert::{CertConfig, CertSnapshot, Certifier, Verdict};
use trireme_types::{KeyType, Seqno, Writeset, WsFlags, WsKey};

/// A small deterministic PRNG (the test's own: no dependency on a crate's stream).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

enum Step {
    Write(Writeset),
    Barrier,
    Purge(i64),
}

fn random_step(rng: &mut Rng, seqno: i64) -> Step {
    match rng.below(20) {
        0 => Step::Barrier,
        1 => Step::Purge(seqno - 1 - rng.below(30) as i64),
        _ => {
            let kinds = [
                KeyType::Shared,
                KeyType::Reference,
                KeyType::Update,
                KeyType::Exclusive,
            ];
            let keys: Vec<WsKey> = (0..1 + rng.below(3))
                .map(|_| {
                    key(
                        u128::from(rng.below(8)) * 0x9e37_79b9 + 1,
                        kinds[rng.below(4) as usize],
                    )
                })
                .collect();
            let flags = match rng.below(15) {
                0 => WsFlags::ISOLATION | WsFlags::TRX_START | WsFlags::TRX_END,
                1 => WsFlags::PA_UNSAFE | WsFlags::TRX_START | WsFlags::TRX_END,
                _ => WsFlags::TRX_START | WsFlags::TRX_END,
            };
            let last_seen = (seqno - 1 - rng.below(12) as i64).max(0);
            Step::Write(writeset(1 + rng.below(3) as u8, last_seen, flags, &keys))
        }
    }
}

fn run(certifier: &mut Certifier, seqno: i64, step: &Step) -> Option<Verdict> {
    match step {
        Step::Write(ws) => Some(certifier.certify(Seqno(seqno), ws).expect("in order")),
        Step::Barrier => {
            certifier.certify_barrier(Seqno(seqno)).expect("in order");
            None
        }
        Step::Purge(cut) => {
            certifier.purge_upto(Seqno(*cut));
            None
        }
    }
}

#[test]
fn a_joiner_that_imports_the_donors_index_certifies_exactly_like_the_donor() {
    let base_seed = seed();
    eprintln!("TRIREME_SEED={base_seed}");
    let mut empty_joiner_disagreed = 0;
    for round in 0..200u64 {
        let seed = base_seed.wrapping_add(round).max(1);
        let mut rng = Rng(seed);
        let config = CertConfig::default();
        let mut donor = Certifier::new(1, Seqno(0), config).unwrap();
        let prefix = 50 + rng.below(150) as i64;
        let mut seqno = 0;
        for _ in 0..prefix {
            seqno += 1;
            let step = random_step(&mut rng, seqno);
            if let Step::Purge(_) = step {
                run(&mut donor, seqno, &step);
                seqno -= 1; // a purge takes no seqno
            } else {
                run(&mut donor, seqno, &step);
            }
        }
        let bytes = donor.export().encode();
        let snapshot = CertSnapshot::decode(&bytes).expect("a donor's snapshot decodes");
        assert_eq!(snapshot.position, Seqno(seqno), "seed {seed}");
        let mut joiners: Vec<Certifier> = [1, 2, 3]
            .iter()
            .map(|&shards| {
                let mut c = Certifier::new(shards, Seqno(0), config).unwrap();
                c.import(&snapshot);
                c
            })
            .collect();
        let mut empty = Certifier::new(1, Seqno(seqno), config).unwrap();
        for _ in 0..100 {
            seqno += 1;
            let step = random_step(&mut rng, seqno);
            let purge = matches!(step, Step::Purge(_));
            let expected = run(&mut donor, seqno, &step);
            for (i, joiner) in joiners.iter_mut().enumerate() {
                assert_eq!(
                    run(joiner, seqno, &step),
                    expected,
                    "seed {seed} (TRIREME_SEED={base_seed}, round {round}): joiner {i} differs at seqno {seqno}"
                );
            }
            if run(&mut empty, seqno, &step) != expected {
                empty_joiner_disagreed += 1;
            }
            if purge {
                seqno -= 1;
            }
        }
        assert_eq!(donor.index_size(), joiners[0].index_size(), "seed {seed}");
    }
    assert!(
        empty_joiner_disagreed > 0,
        "the continuation never needed the imported index"
    );
}

#[test]
fn corrupt_snapshots_are_refused() {
    let mut c = Certifier::new(1, Seqno(0), CertConfig::default()).unwrap();
    c.certify(
        Seqno(1),
        &writeset(
            1,
            0,
            WsFlags::TRX_START | WsFlags::TRX_END,
            &[key(5, KeyType::Exclusive)],
        ),
    )
    .unwrap();
    let bytes = c.export().encode();
    assert!(CertSnapshot::decode(&bytes[..bytes.len() / 2]).is_err());
    assert!(CertSnapshot::decode(&[]).is_err());
    let mut bad = c.export();
    bad.records[0].kind = 9;
    assert!(CertSnapshot::decode(&bad.encode()).is_err());
    let mut beyond = c.export();
    beyond.records[0].seqno = Seqno(99);
    assert!(CertSnapshot::decode(&beyond.encode()).is_err());
}
