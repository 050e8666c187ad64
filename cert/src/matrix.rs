//! The certification conflict matrix (contract §2.7, Galera's `check_against` table).
//!
//! Owns one `const` table and nothing else. Rows are the type `p` a key was recorded with by an
//! earlier writeset P, columns the type `t` the writeset T being certified uses for the same key:
//!
//! ```text
//! P\T  EX UP RE SH
//! EX   C  C  C  C
//! UP   C  C  D  D
//! RE   C  D  N  N
//! SH   D  D  N  N
//! ```
//!
//! `C` (conflict) fails T only when P is *concurrent and foreign*: P.seqno > T.last_seen and
//! (P came from another node or P was TOI). Otherwise a `C` cell is a dependency, exactly like a
//! `D` cell (Galera falls through from CONFLICT to DEPENDENCY). `N` cells are nothing at all.
//! That rule lives in [`crate::slice`]; this module only says which cell is which.
//!
//! Invariant: the table is indexed by [`KeyType::index`] (SH=0 .. EX=3); its text form is
//! checked row by row against the contract in `tests/matrix.rs`.

use trireme_types::KeyType;

/// What an earlier record of a key means for a later writeset using the same key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Rule {
    /// Conflict if P is concurrent (after T's `last_seen`) and foreign (other node or TOI);
    /// otherwise a dependency.
    Conflict,
    /// T must not apply before P has committed.
    Dependency,
    /// The two writesets commute on this key.
    Nothing,
}

use Rule::{Conflict as C, Dependency as D, Nothing as N};

/// `MATRIX[p.index()][t.index()]`. Index order is SH, RE, UP, EX (the `KeyType` order), which is
/// the contract's table mirrored on both axes.
pub const MATRIX: [[Rule; 4]; 4] = [
    //  T: SH RE UP EX        P:
    [N, N, D, D], // SH
    [N, N, D, C], // RE
    [D, D, C, C], // UP
    [C, C, C, C], // EX
];

/// The order in which a key's slots are examined: Galera's cascade (EX, UP, RE, SH), so the
/// conflict reported for a key is the same one Galera would log.
pub const SLOT_ORDER: [KeyType; 4] = [
    KeyType::Exclusive,
    KeyType::Update,
    KeyType::Reference,
    KeyType::Shared,
];

/// The cell for an earlier record of type `p` and a later use of type `t`.
pub const fn rule(p: KeyType, t: KeyType) -> Rule {
    MATRIX[p as usize][t as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_index_follows_key_type_index() {
        for p in KeyType::ALL {
            for t in KeyType::ALL {
                assert_eq!(rule(p, t), MATRIX[p.index()][t.index()]);
            }
        }
    }

    #[test]
    fn slot_order_visits_every_type_once() {
        let mut seen = [false; 4];
        for p in SLOT_ORDER {
            assert!(!seen[p.index()]);
            seen[p.index()] = true;
        }
        assert!(seen.iter().all(|s| *s));
    }
}
