//! Certification behaviour beyond single matrix cells: TOI, barriers and `depends_on`, purge
//! and the "too old" rule, failed writesets, errors, and the sharded check/merge/apply API.

mod common;

use common::*;
use trireme_cert::{
    CertConfig, CertError, CertGlobal, CertSlice, Certifier, CheckInput, Partial, Verdict,
};
use trireme_types::{KeyHash, KeyType, Seqno, Writeset, WsFlags, WsKey};

fn certifier(shards: u32) -> Certifier {
    Certifier::new(shards, Seqno(0), CertConfig::default()).unwrap()
}

fn pass(depends_on: i64) -> Verdict {
    Verdict::Pass {
        depends_on: Seqno(depends_on),
    }
}

fn table_ddl(source: u8, last_seen: i64) -> Writeset {
    // TOI keys from to_execute_start: (db) and (db, table); the table key is exclusive.
    writeset(
        source,
        last_seen,
        TOI,
        &prefixed(&[b"shop", b"orders"], KeyType::Exclusive),
    )
}

fn row_write(source: u8, last_seen: i64, table: &[u8], row: &[u8]) -> Writeset {
    writeset(
        source,
        last_seen,
        PLAIN,
        &prefixed(&[b"shop", table, row], KeyType::Exclusive),
    )
}

fn table_key() -> KeyHash {
    trireme_types::key_hashes(&[b"shop", b"orders"])[1]
}

// ---- TOI ----------------------------------------------------------------------------------

/// Contract §2.6-2.7: the TOI's table-level EX key meets the row write's Shared prefix (EX row,
/// SH column: C).
#[test]
fn toi_conflicts_with_a_concurrent_row_write_on_its_table_from_another_node() {
    for shards in [1, 2, 4] {
        let mut cert = certifier(shards);
        assert_eq!(cert.certify(Seqno(1), &table_ddl(1, 0)).unwrap(), pass(0));
        let verdict = cert
            .certify(Seqno(2), &row_write(2, 0, b"orders", b"\x00\x01"))
            .unwrap();
        assert_eq!(
            verdict,
            Verdict::Conflict {
                key: table_key(),
                with_seqno: Seqno(1),
                depends_on: Seqno(1)
            },
            "{shards} slices"
        );
    }
}

/// Contract §2.7 ("or be TOI"): a TOI record conflicts even with its own node's writesets.
#[test]
fn toi_conflicts_with_a_concurrent_row_write_from_its_own_node() {
    let mut cert = certifier(1);
    cert.certify(Seqno(1), &table_ddl(1, 0)).unwrap();
    let verdict = cert
        .certify(Seqno(2), &row_write(1, 0, b"orders", b"\x00\x01"))
        .unwrap();
    assert!(
        matches!(
            verdict,
            Verdict::Conflict {
                with_seqno: Seqno(1),
                ..
            }
        ),
        "{verdict:?}"
    );
}

/// Contract §2.7 and §5.2, the other way round: a TOI ordered after a concurrent row write on
/// its table is not certified against the index (Galera `certify_v3to6`); it passes and
/// waits for everything before it.
#[test]
fn toi_ordered_after_a_concurrent_row_write_passes_and_depends_on_its_predecessor() {
    for shards in [1, 3] {
        let mut cert = certifier(shards);
        cert.certify(Seqno(1), &row_write(2, 0, b"orders", b"\x00\x01"))
            .unwrap();
        cert.certify(Seqno(2), &row_write(3, 0, b"items", b"\x00\x01"))
            .unwrap();
        assert_eq!(cert.certify(Seqno(3), &table_ddl(1, 0)).unwrap(), pass(2));
    }
}

/// A row write that has seen the TOI passes and depends on it (EX row, SH column: D).
#[test]
fn row_write_that_has_seen_the_toi_passes_and_depends_on_it() {
    let mut cert = certifier(2);
    cert.certify(Seqno(1), &table_ddl(1, 0)).unwrap();
    assert_eq!(
        cert.certify(Seqno(2), &row_write(2, 1, b"orders", b"\x00\x01"))
            .unwrap(),
        pass(1)
    );
}

/// Trireme makes ISOLATION a barrier (DESIGN "Certification"; Galera does not): a writeset on
/// another table that has not seen the TOI still passes, but only applies after it.
#[test]
fn writesets_after_a_toi_depend_on_it_even_without_shared_keys() {
    let mut cert = certifier(1);
    cert.certify(Seqno(1), &table_ddl(1, 0)).unwrap();
    assert_eq!(
        cert.certify(Seqno(2), &row_write(2, 0, b"items", b"\x00\x07"))
            .unwrap(),
        pass(1)
    );
}

// ---- barriers and depends_on ----------------------------------------------------------------

/// Contract §2.7 and §5.2: PA_UNSAFE gets seqno - 1 and raises depends_on for all that follow.
#[test]
fn pa_unsafe_writeset_depends_on_its_predecessor_and_is_a_barrier() {
    let mut cert = certifier(2);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(10, KeyType::Exclusive)]),
    )
    .unwrap();
    let unsafe_ws = writeset(2, 0, WsFlags::TRX_END | WsFlags::PA_UNSAFE, &[]);
    assert_eq!(cert.certify(Seqno(2), &unsafe_ws).unwrap(), pass(1));
    let unrelated = writeset(3, 0, PLAIN, &[key(11, KeyType::Exclusive)]);
    assert_eq!(cert.certify(Seqno(3), &unrelated).unwrap(), pass(2));
}

/// Galera `do_test_v3to6` moves `last_pa_unsafe_` only on success.
#[test]
fn failed_pa_unsafe_writeset_is_not_a_barrier() {
    let mut cert = certifier(1);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(10, KeyType::Exclusive)]),
    )
    .unwrap();
    let unsafe_ws = writeset(
        2,
        0,
        WsFlags::TRX_END | WsFlags::PA_UNSAFE,
        &[key(10, KeyType::Exclusive)],
    );
    let verdict = cert.certify(Seqno(2), &unsafe_ws).unwrap();
    assert!(matches!(verdict, Verdict::Conflict { .. }), "{verdict:?}");
    let unrelated = writeset(3, 0, PLAIN, &[key(11, KeyType::Exclusive)]);
    assert_eq!(cert.certify(Seqno(3), &unrelated).unwrap(), pass(0));
}

/// Contract §5.2 (views are serialized); Galera `adjust_position` sets `last_pa_unsafe_`.
#[test]
fn configuration_change_is_a_barrier_for_later_writesets() {
    let mut cert = certifier(3);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(10, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.certify_barrier(Seqno(2)).unwrap();
    assert_eq!(
        cert.certify(Seqno(3), &writeset(2, 0, PLAIN, &[])).unwrap(),
        pass(2)
    );
    assert_eq!(cert.position(), Seqno(3));
}

/// With no dependency, depends_on is the last barrier or purge horizon, never -1.
#[test]
fn independent_writesets_depend_only_on_what_every_node_has_committed() {
    let mut cert = Certifier::new(1, Seqno(40), CertConfig::default()).unwrap();
    let ws = |k, last_seen| writeset(1, last_seen, PLAIN, &[key(k, KeyType::Exclusive)]);
    assert_eq!(cert.certify(Seqno(41), &ws(1, 40)).unwrap(), pass(40));
    assert_eq!(cert.certify(Seqno(42), &ws(2, 40)).unwrap(), pass(40));
    cert.purge_upto(Seqno(41));
    assert_eq!(cert.certify(Seqno(43), &ws(3, 42)).unwrap(), pass(41));
}

/// Contract §2.5: IMPLICIT_DEPS means depends_on = last_seen; it is not a barrier.
#[test]
fn implicit_deps_writeset_depends_on_its_last_seen_only() {
    let mut cert = certifier(1);
    for s in 1..=5 {
        cert.certify(
            Seqno(s),
            &writeset(1, s - 1, PLAIN, &[key(s as u128, KeyType::Shared)]),
        )
        .unwrap();
    }
    let implicit = writeset(2, 4, PLAIN | WsFlags::IMPLICIT_DEPS, &[]);
    assert_eq!(cert.certify(Seqno(6), &implicit).unwrap(), pass(4));
    assert_eq!(
        cert.certify(Seqno(7), &writeset(3, 6, PLAIN, &[])).unwrap(),
        pass(0)
    );
}

/// Galera `cert.optimistic_pa = no`: every writeset depends on at least its last_seen.
#[test]
fn without_optimistic_pa_every_writeset_depends_on_its_last_seen() {
    let config = CertConfig {
        optimistic_pa: false,
        ..CertConfig::default()
    };
    let mut cert = Certifier::new(2, Seqno(0), config).unwrap();
    cert.certify(Seqno(1), &writeset(1, 0, PLAIN, &[])).unwrap();
    cert.certify(Seqno(2), &writeset(1, 1, PLAIN, &[])).unwrap();
    assert_eq!(
        cert.certify(Seqno(3), &writeset(2, 2, PLAIN, &[])).unwrap(),
        pass(2)
    );
}

// ---- failed writesets ---------------------------------------------------------------------

/// Galera `do_test_v3to6` refs keys only on success. T fails on K; U would conflict only with
/// T's record of K2 (concurrent, other node); U passes because T left nothing.
#[test]
fn failed_writeset_leaves_no_keys() {
    for shards in [1, 2, 5] {
        let mut cert = certifier(shards);
        cert.certify(
            Seqno(1),
            &writeset(1, 0, PLAIN, &[key(100, KeyType::Exclusive)]),
        )
        .unwrap();
        let size_before = cert.index_size();
        let t = writeset(
            2,
            0,
            PLAIN,
            &[key(100, KeyType::Exclusive), key(201, KeyType::Exclusive)],
        );
        assert!(matches!(
            cert.certify(Seqno(2), &t).unwrap(),
            Verdict::Conflict { .. }
        ));
        assert_eq!(cert.index_size(), size_before, "{shards} slices");
        let u = writeset(3, 1, PLAIN, &[key(201, KeyType::Exclusive)]);
        assert_eq!(
            cert.certify(Seqno(3), &u).unwrap(),
            pass(0),
            "{shards} slices"
        );
    }
}

/// The reported conflict is the first conflicting key in the writeset's order, whichever slice
/// holds it.
#[test]
fn reported_conflict_is_the_first_conflicting_key_for_any_shard_count() {
    let keys: Vec<WsKey> = (0..16u128)
        .map(|k| key(k * 7 + 3, KeyType::Exclusive))
        .collect();
    for shards in [1, 2, 3, 4, 7] {
        let mut cert = certifier(shards);
        // Record keys 5 and 11 (from node 1), then certify all 16 from node 2.
        cert.certify(Seqno(1), &writeset(1, 0, PLAIN, &[keys[11], keys[5]]))
            .unwrap();
        let verdict = cert
            .certify(Seqno(2), &writeset(2, 0, PLAIN, &keys))
            .unwrap();
        assert_eq!(
            verdict,
            Verdict::Conflict {
                key: keys[5].hash,
                with_seqno: Seqno(1),
                depends_on: Seqno(1)
            },
            "{shards} slices"
        );
    }
}

// ---- purge and too old --------------------------------------------------------------------

/// Galera `purge_trxs_upto(s)` forgets seqno <= s; later records stay and still conflict.
#[test]
fn purge_upto_forgets_records_at_and_below_the_cut_and_keeps_later_ones() {
    let mut cert = certifier(2);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(1, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.certify(
        Seqno(2),
        &writeset(1, 1, PLAIN, &[key(2, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.certify(
        Seqno(3),
        &writeset(1, 2, PLAIN, &[key(3, KeyType::Exclusive)]),
    )
    .unwrap();
    assert_eq!(cert.index_size(), 3);
    cert.purge_upto(Seqno(2));
    assert_eq!(cert.index_size(), 1);
    assert_eq!(cert.global().horizon(), Seqno(2));
    let late = writeset(
        2,
        2,
        PLAIN,
        &[key(1, KeyType::Exclusive), key(3, KeyType::Exclusive)],
    );
    let verdict = cert.certify(Seqno(4), &late).unwrap();
    assert!(
        matches!(
            verdict,
            Verdict::Conflict {
                with_seqno: Seqno(3),
                ..
            }
        ),
        "{verdict:?}"
    );
}

/// Trireme deviation (crate header): purge is in total order, so a writeset that needs purged
/// records fails deterministically on every node instead of passing unchecked.
#[test]
fn writeset_whose_last_seen_is_below_the_purged_range_fails_as_too_old() {
    for shards in [1, 4] {
        let mut cert = certifier(shards);
        for s in 1..=6 {
            cert.certify(
                Seqno(s),
                &writeset(1, s - 1, PLAIN, &[key(50, KeyType::Update)]),
            )
            .unwrap();
        }
        cert.purge_upto(Seqno(5));
        let old = writeset(2, 4, PLAIN, &[key(77, KeyType::Exclusive)]);
        assert_eq!(
            cert.certify(Seqno(7), &old).unwrap(),
            Verdict::TooOld {
                last_seen: Seqno(4),
                oldest_allowed: Seqno(5),
                depends_on: Seqno(5)
            }
        );
        // Exactly at the cut is fine: every record after it is still there.
        let fresh = writeset(2, 5, PLAIN, &[key(50, KeyType::Update)]);
        let verdict = cert.certify(Seqno(8), &fresh).unwrap();
        assert!(
            matches!(
                verdict,
                Verdict::Conflict {
                    with_seqno: Seqno(6),
                    ..
                }
            ),
            "{verdict:?}"
        );
    }
}

/// Galera `do_test`: last_seen below the initial position (after a state transfer) fails.
#[test]
fn writeset_whose_last_seen_is_below_the_initial_position_fails_as_too_old() {
    let mut cert = Certifier::new(1, Seqno(100), CertConfig::default()).unwrap();
    let verdict = cert
        .certify(Seqno(101), &writeset(1, 99, PLAIN, &[]))
        .unwrap();
    assert!(
        matches!(
            verdict,
            Verdict::TooOld {
                oldest_allowed: Seqno(100),
                ..
            }
        ),
        "{verdict:?}"
    );
    assert_eq!(
        cert.certify(Seqno(102), &writeset(1, 100, PLAIN, &[]))
            .unwrap(),
        pass(100)
    );
}

/// Galera `do_test`: `seqno - last_seen > cert.max_length` fails.
#[test]
fn certification_interval_beyond_max_length_fails_as_too_old() {
    let config = CertConfig {
        max_length: Some(4),
        ..CertConfig::default()
    };
    let mut cert = Certifier::new(1, Seqno(0), config).unwrap();
    for s in 1..=9 {
        cert.certify_barrier(Seqno(s)).unwrap();
    }
    assert!(matches!(
        cert.certify(Seqno(10), &writeset(1, 5, PLAIN, &[]))
            .unwrap(),
        Verdict::TooOld {
            oldest_allowed: Seqno(6),
            ..
        }
    ));
    assert!(cert
        .certify(Seqno(11), &writeset(1, 7, PLAIN, &[]))
        .unwrap()
        .is_pass());
}

/// A cut beyond what was ordered is clamped to the position.
#[test]
fn purge_beyond_the_position_does_not_make_future_writesets_too_old() {
    let mut cert = certifier(1);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(9, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.purge_upto(Seqno(50));
    assert_eq!(cert.global().horizon(), Seqno(1));
    assert_eq!(cert.index_size(), 0);
    assert!(cert
        .certify(Seqno(2), &writeset(2, 1, PLAIN, &[]))
        .unwrap()
        .is_pass());
}

/// No honest node replicates a writeset claiming to have committed its own seqno or later.
#[test]
fn last_seen_at_or_after_its_own_seqno_fails() {
    let mut cert = certifier(1);
    let verdict = cert
        .certify(Seqno(1), &writeset(1, 1, PLAIN, &[key(3, KeyType::Shared)]))
        .unwrap();
    assert_eq!(
        verdict,
        Verdict::LastSeenAhead {
            last_seen: Seqno(1),
            depends_on: Seqno(0)
        }
    );
    let verdict = cert
        .certify(Seqno(2), &writeset(1, i64::MAX, PLAIN, &[]))
        .unwrap();
    assert!(matches!(verdict, Verdict::LastSeenAhead { .. }));
    let verdict = cert
        .certify(Seqno(3), &writeset(1, i64::MIN, PLAIN, &[]))
        .unwrap();
    assert!(matches!(verdict, Verdict::TooOld { .. }));
    assert_eq!(cert.index_size(), 0);
    assert_eq!(cert.stats().failed, 3);
}

/// Any key byte is total: an unknown kind (refused earlier by the decoder) counts as EX.
#[test]
fn unknown_key_kind_is_treated_as_exclusive() {
    let mut cert = certifier(1);
    cert.certify(
        Seqno(1),
        &writeset(
            1,
            0,
            PLAIN,
            &[WsKey {
                hash: KeyHash(5),
                kind: 200,
            }],
        ),
    )
    .unwrap();
    let verdict = cert
        .certify(Seqno(2), &writeset(2, 0, PLAIN, &[key(5, KeyType::Shared)]))
        .unwrap();
    assert!(matches!(verdict, Verdict::Conflict { .. }), "{verdict:?}");
}

// ---- errors, preload, reset, stats ------------------------------------------------------

#[test]
fn seqnos_must_increase_and_a_refused_one_changes_nothing() {
    let mut cert = certifier(2);
    cert.certify(
        Seqno(3),
        &writeset(1, 0, PLAIN, &[key(1, KeyType::Exclusive)]),
    )
    .unwrap();
    let stats = cert.stats();
    for bad in [Seqno(3), Seqno(2), Seqno(-5)] {
        let err = cert.certify(bad, &writeset(2, 0, PLAIN, &[key(2, KeyType::Exclusive)]));
        assert_eq!(
            err,
            Err(CertError::SeqnoNotAfterPosition {
                seqno: bad,
                position: Seqno(3)
            })
        );
        assert!(cert.certify_barrier(bad).is_err());
    }
    assert_eq!(cert.position(), Seqno(3));
    assert_eq!(cert.index_size(), 1);
    assert_eq!(cert.stats(), stats);
    assert!(Certifier::new(1, Seqno::UNDEFINED, CertConfig::default())
        .unwrap()
        .certify(Seqno(0), &writeset(1, -1, PLAIN, &[]))
        .is_err());
    assert_eq!(
        Certifier::new(0, Seqno(0), CertConfig::default()).unwrap_err(),
        CertError::NoSlices
    );
}

/// Galera index preload (`certified() == true`): no conflict and no "too old", but the keys
/// are recorded so later live writesets certify as on the donor.
#[test]
fn preload_never_fails_and_rebuilds_the_index() {
    let mut cert = Certifier::new(2, Seqno(10), CertConfig::default()).unwrap();
    let old = writeset(1, 3, PLAIN, &[key(1, KeyType::Exclusive)]);
    assert_eq!(cert.preload(Seqno(11), &old).unwrap(), pass(10));
    let conflicting = writeset(2, 3, PLAIN, &[key(1, KeyType::Exclusive)]);
    assert_eq!(cert.preload(Seqno(12), &conflicting).unwrap(), pass(11));
    let live = writeset(3, 11, PLAIN, &[key(1, KeyType::Exclusive)]);
    let verdict = cert.certify(Seqno(13), &live).unwrap();
    assert!(
        matches!(
            verdict,
            Verdict::Conflict {
                with_seqno: Seqno(12),
                ..
            }
        ),
        "{verdict:?}"
    );
}

#[test]
fn reset_forgets_the_index_and_starts_at_the_new_position() {
    let mut cert = certifier(3);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(1, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.reset(Seqno(500));
    assert_eq!(cert.index_size(), 0);
    assert_eq!(cert.position(), Seqno(500));
    assert_eq!(
        cert.certify(Seqno(501), &writeset(2, 500, PLAIN, &[]))
            .unwrap(),
        pass(500)
    );
}

/// Galera `stats_get`: averages over passed writesets of seqno - last_seen - 1 and
/// seqno - depends_on; the index size counts distinct keys.
#[test]
fn statistics_average_interval_and_dependency_distance_over_passed_writesets() {
    let mut cert = certifier(2);
    cert.certify(
        Seqno(1),
        &writeset(1, 0, PLAIN, &[key(1, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.certify(
        Seqno(2),
        &writeset(1, 0, PLAIN, &[key(2, KeyType::Exclusive)]),
    )
    .unwrap();
    cert.certify(Seqno(3), &writeset(1, 0, PLAIN, &[key(1, KeyType::Shared)]))
        .unwrap();
    cert.certify(
        Seqno(4),
        &writeset(2, 0, PLAIN, &[key(2, KeyType::Exclusive)]),
    )
    .unwrap(); // fails
    let stats = cert.stats();
    assert_eq!((stats.passed, stats.failed), (3, 1));
    // intervals 0, 1, 2; distances 1, 2, 2
    assert_eq!(stats.avg_cert_interval(), 1.0);
    assert_eq!(stats.avg_deps_distance(), 5.0 / 3.0);
    assert_eq!(cert.index_size(), 2);
    cert.reset_stats();
    assert_eq!(cert.stats().avg_cert_interval(), 0.0);
}

// ---- the sharded API --------------------------------------------------------------------

/// Each slice lives on its own thread; check in parallel, merge on the ordering thread, apply
/// in parallel. The answers equal the single-thread facade's.
#[test]
fn slices_on_their_own_threads_agree_with_the_facade() {
    let shards = 3;
    let stream: Vec<Writeset> = (0..200i64)
        .map(|i| {
            let keys = [
                key((i as u128 * 31) % 11, KeyType::ALL[(i % 4) as usize]),
                key((i as u128 * 17) % 13 + 100, KeyType::Exclusive),
            ];
            writeset((i % 3) as u8, (i - 3).max(0), PLAIN, &keys)
        })
        .collect();
    let mut facade = certifier(1);
    let mut global = CertGlobal::new(shards, Seqno(0), CertConfig::default()).unwrap();
    let mut slices: Vec<CertSlice> = (0..shards)
        .map(|i| CertSlice::new(i, shards).unwrap())
        .collect();
    for (i, ws) in stream.iter().enumerate() {
        let seqno = Seqno(i as i64 + 1);
        let input = CheckInput::new(seqno, ws);
        let partials: Vec<Partial> = std::thread::scope(|s| {
            let handles: Vec<_> = slices
                .iter()
                .map(|slice| s.spawn(move || slice.check(&input)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let verdict = global.merge(&input, &partials).unwrap();
        std::thread::scope(|s| {
            for slice in slices.iter_mut() {
                s.spawn(move || slice.apply(&input, &verdict));
            }
        });
        assert_eq!(verdict, facade.certify(seqno, ws).unwrap(), "seqno {seqno}");
    }
    let sharded_size: usize = slices.iter().map(CertSlice::key_count).sum();
    assert_eq!(sharded_size, facade.index_size());
}

#[test]
fn merge_refuses_missing_misordered_or_stale_partials_and_changes_nothing() {
    let shards = 2;
    let mut global = CertGlobal::new(shards, Seqno(0), CertConfig::default()).unwrap();
    let slices: Vec<CertSlice> = (0..shards)
        .map(|i| CertSlice::new(i, shards).unwrap())
        .collect();
    let ws = writeset(1, 0, PLAIN, &[key(1, KeyType::Exclusive)]);
    let input = CheckInput::new(Seqno(1), &ws);
    let good: Vec<Partial> = slices.iter().map(|s| s.check(&input)).collect();
    let stale = CheckInput::new(Seqno(7), &ws);
    let stale_partial = slices[1].check(&stale);
    for bad in [
        vec![good[0]],
        vec![good[1], good[0]],
        vec![good[0], good[0]],
        vec![good[0], stale_partial],
    ] {
        let err = global.merge(&input, &bad).unwrap_err();
        assert!(matches!(err, CertError::PartialsMismatch { .. }), "{err}");
        assert_eq!(global.position(), Seqno(0));
    }
    assert_eq!(global.merge(&input, &good).unwrap(), pass(0));
}
