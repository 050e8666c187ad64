//! MariaDB's callbacks (`wsrep_init_args`) as a `trireme_replicator::Server`.

use crate::abi::*;
use crate::convert::{self, ViewBuffer};
use std::ffi::c_void;
use trireme_replicator::{ApplyOutcome, RecvCtx, Server, TrxMeta, WsHandle};
use trireme_types::{Gtid, View, WsFlags};

/// The capabilities we announce in views and through `capabilities()` (contract §2.8).
pub const CAPABILITIES: wsrep_cap_t = WSREP_CAP_MULTI_MASTER
    | WSREP_CAP_CERTIFICATION
    | WSREP_CAP_PARALLEL_APPLYING
    | WSREP_CAP_TRX_REPLAY
    | WSREP_CAP_ISOLATION
    | WSREP_CAP_PAUSE
    | WSREP_CAP_CAUSAL_READS
    | WSREP_CAP_INCREMENTAL_WRITESET
    | WSREP_CAP_STREAMING;

/// The callback table and the server's context pointer, copied at `init`.
pub struct ServerCallbacks {
    pub app_ctx: usize,
    pub connected: wsrep_connected_cb_t,
    pub view: wsrep_view_cb_t,
    pub sst_request: wsrep_sst_request_cb_t,
    pub apply: wsrep_apply_cb_t,
    pub sst_donate: wsrep_sst_donate_cb_t,
    pub synced: wsrep_synced_cb_t,
}

impl ServerCallbacks {
    fn app_ctx(&self) -> *mut c_void {
        self.app_ctx as *mut c_void
    }
}

fn ok(status: wsrep_cb_status_t) -> bool {
    status == WSREP_CB_SUCCESS
}

impl Server for ServerCallbacks {
    fn connected(&self, view: &View) -> bool {
        let Some(cb) = self.connected else {
            return true;
        };
        let buffer = ViewBuffer::new(view, CAPABILITIES);
        // SAFETY: `cb` is the server's connected_cb; app_ctx is the server's context from
        // init; the view buffer outlives the call (the server copies what it keeps).
        ok(unsafe { cb(self.app_ctx(), buffer.as_ptr()) })
    }

    fn view(&self, recv_ctx: RecvCtx, view: &View) -> bool {
        let Some(cb) = self.view else { return true };
        let buffer = ViewBuffer::new(view, CAPABILITIES);
        // SAFETY: as for `connected`; recv_ctx is the applier context the server gave to
        // the recv() call we are running in; state is NULL/0 as in Galera 4.
        ok(unsafe {
            cb(
                self.app_ctx(),
                recv_ctx.0 as *mut c_void,
                buffer.as_ptr(),
                std::ptr::null(),
                0,
            )
        })
    }

    fn sst_request(&self) -> Option<Vec<u8>> {
        let cb = self.sst_request?;
        let mut request: *mut c_void = std::ptr::null_mut();
        let mut len: usize = 0;
        // SAFETY: out-parameters point to our locals; the server writes a malloc'ed buffer.
        let status = unsafe { cb(self.app_ctx(), &mut request, &mut len) };
        if !ok(status) {
            return None;
        }
        if request.is_null() {
            return Some(Vec::new());
        }
        // SAFETY: the server returned a buffer of `len` bytes (NUL included).
        let copy = unsafe { std::slice::from_raw_parts(request.cast::<u8>(), len) }.to_vec();
        // SAFETY: the buffer was allocated by the server with malloc and is ours to free
        // (contract §1.5: "returns a malloc'ed buffer that you free()"); this is the C
        // allocator's free, not ours.
        unsafe { libc::free(request) };
        Some(copy)
    }

    fn apply(
        &self,
        recv_ctx: RecvCtx,
        handle: WsHandle,
        flags: WsFlags,
        data: &[u8],
        meta: &TrxMeta,
    ) -> ApplyOutcome {
        let Some(cb) = self.apply else {
            return ApplyOutcome {
                ok: false,
                exit_loop: false,
            };
        };
        let c_handle = wsrep_ws_handle_t {
            trx_id: handle.trx_id,
            opaque: handle.opaque as *mut c_void,
        };
        let buf = wsrep_buf_t {
            ptr: data.as_ptr().cast(),
            len: data.len(),
        };
        let c_meta = convert::meta_to_c(meta);
        let mut exit_loop = false;
        // SAFETY: every pointer refers to a local that outlives the call; recv_ctx is the
        // context of the thread we run on (applier or replaying client).
        let status = unsafe {
            cb(
                recv_ctx.0 as *mut c_void,
                &c_handle,
                flags.0,
                &buf,
                &c_meta,
                &mut exit_loop,
            )
        };
        ApplyOutcome {
            ok: ok(status),
            exit_loop,
        }
    }

    fn sst_donate(&self, recv_ctx: RecvCtx, request: &[u8], state_id: Gtid, bypass: bool) -> bool {
        let Some(cb) = self.sst_donate else {
            return false;
        };
        let msg = wsrep_buf_t {
            ptr: request.as_ptr().cast(),
            len: request.len(),
        };
        let gtid = convert::gtid_to_c(state_id);
        // SAFETY: locals outlive the call; state is NULL as in Galera 4.
        ok(unsafe {
            cb(
                self.app_ctx(),
                recv_ctx.0 as *mut c_void,
                &msg,
                &gtid,
                std::ptr::null(),
                bypass,
            )
        })
    }

    fn synced(&self) -> bool {
        let Some(cb) = self.synced else { return true };
        // SAFETY: the server's synced_cb with its own context.
        ok(unsafe { cb(self.app_ctx()) })
    }

    fn give_up(&self, reason: &str) {
        log::error!("{reason}: this server process ends now (exit status 1)");
        // SAFETY: `_exit` ends the process at once, without running atexit handlers or
        // static destructors while mariadbd's other threads still run (which `exit` would
        // do, and which can crash). InnoDB recovers from this like from any crash; the SST
        // script sees its parent gone and cleans up. Galera `abort()`s in this situation.
        unsafe { libc::_exit(1) }
    }
}
