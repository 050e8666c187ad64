//! Helpers shared by the integration tests: writeset builders and the contract's matrix as
//! text (contract §2.7), parsed independently of the crate's `const` table.

#![allow(dead_code)] // each test binary uses a different subset

use trireme_types::{KeyHash, KeyType, NodeId, Seqno, Uuid, Writeset, WsFlags, WsKey};

/// Contract §2.7, verbatim layout: rows are the earlier writeset P, columns the later one T.
pub const CONTRACT_MATRIX: &str = "
P\\T  EX UP RE SH
EX   C  C  C  C
UP   C  C  D  D
RE   C  D  N  N
SH   D  D  N  N
";

pub const PLAIN: u32 = WsFlags::TRX_START | WsFlags::TRX_END;
pub const TOI: u32 = WsFlags::TRX_START | WsFlags::TRX_END | WsFlags::ISOLATION;

pub fn key_type(name: &str) -> KeyType {
    match name {
        "EX" => KeyType::Exclusive,
        "UP" => KeyType::Update,
        "RE" => KeyType::Reference,
        "SH" => KeyType::Shared,
        other => panic!("unknown key type {other:?} in fixture"),
    }
}

/// The header's column types and the rows as (first word, cells) of a whitespace table.
pub fn parse_table(text: &str) -> (Vec<KeyType>, Vec<(String, Vec<char>)>) {
    let mut lines = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'));
    let header = lines.next().expect("fixture has a header");
    let columns: Vec<KeyType> = header.split_whitespace().skip(1).map(key_type).collect();
    let rows = lines
        .map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next().expect("row name").to_string();
            let cells: Vec<char> = words
                .map(|w| {
                    let mut chars = w.chars();
                    let c = chars.next().expect("cell");
                    assert!(chars.next().is_none(), "cell {w:?} is not one letter");
                    c
                })
                .collect();
            assert_eq!(
                cells.len(),
                columns.len(),
                "row {name:?} has the wrong width"
            );
            (name, cells)
        })
        .collect();
    (columns, rows)
}

/// The contract's cell for an earlier record of type `p` and a later use of type `t`.
pub fn contract_cell(p: KeyType, t: KeyType) -> char {
    let (columns, rows) = parse_table(CONTRACT_MATRIX);
    let column = columns.iter().position(|c| *c == t).expect("column");
    let row = rows
        .iter()
        .find(|(name, _)| key_type(name) == p)
        .expect("row");
    row.1[column]
}

pub fn node(n: u8) -> NodeId {
    NodeId(Uuid([n; 16]))
}

pub fn key(hash: u128, kind: KeyType) -> WsKey {
    WsKey {
        hash: KeyHash(hash),
        kind: kind as u8,
    }
}

pub fn writeset(source: u8, last_seen: i64, flags: u32, keys: &[WsKey]) -> Writeset {
    Writeset {
        source: node(source),
        trx_id: if flags & WsFlags::ISOLATION != 0 {
            u64::MAX
        } else {
            1
        },
        conn_id: 1,
        flags,
        last_seen: Seqno(last_seen),
        keys: keys.to_vec(),
        data: Vec::new(),
    }
}

/// A key with every proper prefix added as Shared, the way the producer builds them
/// (contract §2.6): `parts` = ["db", "table", "row image"] and so on.
pub fn prefixed(parts: &[&[u8]], kind: KeyType) -> Vec<WsKey> {
    let hashes = trireme_types::key_hashes(parts);
    let last = hashes.len() - 1;
    hashes
        .iter()
        .enumerate()
        .map(|(i, h)| WsKey {
            hash: *h,
            kind: if i == last {
                kind as u8
            } else {
                KeyType::Shared as u8
            },
        })
        .collect()
}

/// Seed for randomised tests: `TRIREME_SEED` if set, else fresh from the OS. Printed by the
/// caller so any run can be replayed.
pub fn seed() -> u64 {
    if let Ok(text) = std::env::var("TRIREME_SEED") {
        return text.trim().parse().expect("TRIREME_SEED must be a u64");
    }
    let mut bytes = [0u8; 8];
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom for a test seed");
    u64::from_le_bytes(bytes)
}
