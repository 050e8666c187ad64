//! The server side of the contract: the callbacks MariaDB gave us at `init`, as a trait.
//!
//! `ffi` implements [`Server`] over the C function pointers; unit tests implement it with a
//! fake. Every callback except logging must run on a thread MariaDB gave us (an applier inside
//! `recv()` or a client thread during replay), never on a provider thread: the server needs
//! its THD (contract §1.5, gotcha 6). The replicator keeps that rule by calling these only
//! from `recv()` and `replay_trx()`.

use trireme_types::{Gtid, NodeId, Seqno, View, WsFlags};

/// The applier context (`recv_ctx`) of the MariaDB thread sitting in `recv()`, or the replay
/// context. Opaque to us; passed back verbatim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecvCtx(pub usize);

/// `wsrep_ws_handle_t` as the replicator sees it: the server's trx id and our opaque marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WsHandle {
    pub trx_id: u64,
    pub opaque: usize,
}

impl WsHandle {
    /// `opaque` of a local transaction the replicator tracks.
    pub const LOCAL: usize = 1;
    /// `opaque` of a writeset handed to `apply_cb` by an applier.
    pub const APPLIED: usize = 2;
}

/// `wsrep_trx_meta_t` in Rust terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrxMeta {
    pub gtid: Gtid,
    pub source: NodeId,
    pub trx_id: u64,
    pub conn_id: u64,
    pub depends_on: Seqno,
}

impl TrxMeta {
    pub const UNDEFINED: TrxMeta = TrxMeta {
        gtid: Gtid::UNDEFINED,
        source: NodeId::NIL,
        trx_id: u64::MAX,
        conn_id: u64::MAX,
        depends_on: Seqno::UNDEFINED,
    };
}

/// What `apply_cb` answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyOutcome {
    pub ok: bool,
    /// The server asks this applier thread to leave `recv()` (wsrep_slave_threads lowered).
    pub exit_loop: bool,
}

/// The callbacks of `wsrep_init_args`. `false` means the server reported a failure.
pub trait Server: Send + Sync {
    fn connected(&self, view: &View) -> bool;
    fn view(&self, recv_ctx: RecvCtx, view: &View) -> bool;
    /// Runs the joiner's SST script; returns the request bytes (with their trailing NUL) or
    /// `None` when the server failed.
    fn sst_request(&self) -> Option<Vec<u8>>;
    fn apply(
        &self,
        recv_ctx: RecvCtx,
        handle: WsHandle,
        flags: WsFlags,
        data: &[u8],
        meta: &TrxMeta,
    ) -> ApplyOutcome;
    fn sst_donate(&self, recv_ctx: RecvCtx, request: &[u8], state_id: Gtid, bypass: bool) -> bool;
    fn synced(&self) -> bool;
    /// This node can never continue (a joiner whose state will never come): the server process
    /// must end, or it waits for ever for its SST script (`ffi` ends it with `_exit`, after the
    /// error is logged).
    fn give_up(&self, reason: &str);
}
