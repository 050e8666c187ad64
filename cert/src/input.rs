//! [`CheckInput`]: what certification reads from one ordered writeset.
//!
//! The same input goes to every slice's `check` and `apply` and to `CertGlobal::merge`.
//! `keys` is always the writeset's *whole* key list, in the writeset's order: each slice
//! picks out the keys it owns, and positions in this list decide which conflict is reported,
//! so the answer does not depend on how many slices there are.

use trireme_types::{NodeId, Seqno, Writeset, WsFlags, WsKey};

/// Whether the writeset is being certified or replayed into the index.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// A writeset from the live total order: it may fail.
    Certify,
    /// A writeset that already passed certification elsewhere (the donor, during IST); it only
    /// rebuilds the index and the dependency state. It never fails. Galera: `certified() ==
    /// true` in `check_against` and `do_test` (index preload).
    Preload,
}

/// One ordered writeset as certification sees it.
#[derive(Clone, Copy, Debug)]
pub struct CheckInput<'a> {
    /// Its position in the total order.
    pub seqno: Seqno,
    /// The node incarnation that replicated it.
    pub source: NodeId,
    /// The highest seqno committed on the source when it was replicated.
    pub last_seen: Seqno,
    pub flags: WsFlags,
    /// All its keys, in writeset order (not only one slice's).
    pub keys: &'a [WsKey],
    pub mode: Mode,
}

impl<'a> CheckInput<'a> {
    /// A writeset from the live order, to be certified at `seqno`.
    pub fn new(seqno: Seqno, ws: &'a Writeset) -> CheckInput<'a> {
        CheckInput {
            seqno,
            source: ws.source,
            last_seen: ws.last_seen,
            flags: ws.flags(),
            keys: &ws.keys,
            mode: Mode::Certify,
        }
    }

    /// A writeset that passed certification on the donor, replayed into the index.
    pub fn preload(seqno: Seqno, ws: &'a Writeset) -> CheckInput<'a> {
        CheckInput {
            mode: Mode::Preload,
            ..CheckInput::new(seqno, ws)
        }
    }

    /// A TOI writeset: never fails on keys, and its records conflict even with writesets
    /// from its own node.
    pub fn is_toi(&self) -> bool {
        self.flags.is_isolation()
    }

    /// Applies alone, after everything ordered before it (`depends_on = seqno - 1`), and is a
    /// barrier for everything after it. Galera's `F_ISOLATION | F_PA_UNSAFE`. IMPLICIT_DEPS is
    /// deliberately not included (see the crate header), unlike `WsFlags::is_pa_unsafe`.
    pub fn is_serial(&self) -> bool {
        self.flags.has(WsFlags::ISOLATION) || self.flags.has(WsFlags::PA_UNSAFE)
    }
}
