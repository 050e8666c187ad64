//! The conflict matrix, one text fixture per row (contract §2.7, Galera `check_against`).
//!
//! Each row test first checks the crate's `const` table against the contract's text, then
//! certifies a real pair of writesets for every column and scenario:
//! an earlier writeset P (seqno 1, node 1) records key K with the row's type; a later writeset
//! T (seqno 2) uses K with the column's type. Outcomes:
//! `C` = T fails, conflicting with P on K; `D` = T passes and depends on P (depends_on 1);
//! `N` = T passes with no dependency (depends_on 0, the initial position).
//!
//! Scenarios:
//! - `other-concurrent`: T from node 2, last_seen 0 (P is concurrent and foreign);
//! - `same-concurrent`: T from node 1, last_seen 0 (same source: C becomes D);
//! - `other-seen`: T from node 2, last_seen 1 (P already seen: C becomes D);
//! - `same-toi`: P is TOI from node 1, T from node 1, last_seen 0 (TOI records conflict even
//!   with their own node; and a TOI is a barrier, so N becomes D).

mod common;

use common::*;
use trireme_cert::{rule, CertConfig, Certifier, Rule, Verdict};
use trireme_types::{KeyType, Seqno};

const K: u128 = 0x5eed_0000_0000_0000_0000_0000_0000_0011;

fn scenario(name: &str) -> (u8, i64, bool) {
    // (T's source, T's last_seen, P is TOI)
    match name {
        "other-concurrent" => (2, 0, false),
        "same-concurrent" => (1, 0, false),
        "other-seen" => (2, 1, false),
        "same-toi" => (1, 0, true),
        other => panic!("unknown scenario {other:?}"),
    }
}

fn outcome(p: KeyType, t: KeyType, scenario_name: &str, shards: u32) -> char {
    let (t_source, t_last_seen, p_toi) = scenario(scenario_name);
    let mut cert = Certifier::new(shards, Seqno(0), CertConfig::default()).unwrap();
    let p_flags = if p_toi { TOI } else { PLAIN };
    let first = cert
        .certify(Seqno(1), &writeset(1, 0, p_flags, &[key(K, p)]))
        .unwrap();
    assert!(first.is_pass());
    let second = cert.certify(
        Seqno(2),
        &writeset(t_source, t_last_seen, PLAIN, &[key(K, t)]),
    );
    match second.unwrap() {
        Verdict::Conflict {
            key: k,
            with_seqno: Seqno(1),
            depends_on: _,
        } if k.0 == K => 'C',
        Verdict::Pass {
            depends_on: Seqno(1),
        } => 'D',
        Verdict::Pass {
            depends_on: Seqno(0),
        } => 'N',
        other => panic!("unexpected verdict {other:?}"),
    }
}

fn letter(r: Rule) -> char {
    match r {
        Rule::Conflict => 'C',
        Rule::Dependency => 'D',
        Rule::Nothing => 'N',
    }
}

fn check_row(p_name: &str, fixture: &str) {
    let p = key_type(p_name);
    // The const table agrees with the contract's text on this row.
    for t in KeyType::ALL {
        assert_eq!(
            letter(rule(p, t)),
            contract_cell(p, t),
            "MATRIX[{p_name}][{t:?}]"
        );
    }
    let (columns, rows) = parse_table(fixture);
    // The concurrent-foreign scenario is the contract row itself.
    let concurrent = rows
        .iter()
        .find(|(n, _)| n == "other-concurrent")
        .expect("scenario");
    for (t, cell) in columns.iter().zip(&concurrent.1) {
        assert_eq!(
            *cell,
            contract_cell(p, *t),
            "fixture row disagrees with the contract"
        );
    }
    for (scenario_name, cells) in &rows {
        for (t, expected) in columns.iter().zip(cells) {
            for shards in [1, 3] {
                assert_eq!(
                    outcome(p, *t, scenario_name, shards),
                    *expected,
                    "P={p_name} T={t:?} scenario {scenario_name} with {shards} slices"
                );
            }
        }
    }
}

/// Contract §2.7, row P = EX.
#[test]
fn earlier_exclusive_key_conflicts_with_every_concurrent_foreign_use() {
    check_row(
        "EX",
        "
        scenario          EX UP RE SH
        other-concurrent  C  C  C  C
        same-concurrent   D  D  D  D
        other-seen        D  D  D  D
        same-toi          C  C  C  C
        ",
    );
}

/// Contract §2.7, row P = UP.
#[test]
fn earlier_update_key_conflicts_with_writes_and_orders_reads() {
    check_row(
        "UP",
        "
        scenario          EX UP RE SH
        other-concurrent  C  C  D  D
        same-concurrent   D  D  D  D
        other-seen        D  D  D  D
        same-toi          C  C  D  D
        ",
    );
}

/// Contract §2.7, row P = RE.
#[test]
fn earlier_reference_key_conflicts_only_with_exclusive() {
    check_row(
        "RE",
        "
        scenario          EX UP RE SH
        other-concurrent  C  D  N  N
        same-concurrent   D  D  N  N
        other-seen        D  D  N  N
        # a TOI is a barrier (Trireme), so N cells depend on it too
        same-toi          C  D  D  D
        ",
    );
}

/// Contract §2.7, row P = SH.
#[test]
fn earlier_shared_key_never_conflicts() {
    check_row(
        "SH",
        "
        scenario          EX UP RE SH
        other-concurrent  D  D  N  N
        same-concurrent   D  D  N  N
        other-seen        D  D  N  N
        same-toi          D  D  D  D
        ",
    );
}
