//! Every member of `wsrep_t`, in the header's order. Each one: pointers to references under
//! a SAFETY argument, one call into the replicator, the answer back as `wsrep_status_t`,
//! all inside `crate::guard`.

use crate::abi::*;
use crate::convert::{self, bytes, string};
use crate::guard;
use crate::loader::{PROVIDER_NAME, PROVIDER_VENDOR, PROVIDER_VERSION};
use crate::logging;
use crate::server::{ServerCallbacks, CAPABILITIES};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use trireme_replicator::stats::StatValue;
use trireme_replicator::{InitArgs, RecvCtx, Replicator, Status, TrxMeta, WsHandle};
use trireme_types::{Gtid, KeyType, Seqno};

/// The provider instance behind `wsrep_t::ctx`, created by `init`, destroyed by `free`.
struct Instance {
    replicator: OnceLock<Replicator>,
}

/// The interface table `wsrep_loader` copies into the server's `wsrep_t`.
pub fn provider_table() -> wsrep_t {
    wsrep_t {
        version: WSREP_INTERFACE_VERSION.as_ptr(),
        init: Some(init),
        capabilities: Some(capabilities),
        options_set: Some(options_set),
        options_get: Some(options_get),
        enc_set_key: Some(enc_set_key),
        connect: Some(connect),
        disconnect: Some(disconnect),
        recv: Some(recv),
        assign_read_view: Some(assign_read_view),
        certify: Some(certify),
        commit_order_enter: Some(commit_order_enter),
        commit_order_leave: Some(commit_order_leave),
        release: Some(release),
        replay_trx: Some(replay_trx),
        abort_certification: Some(abort_certification),
        rollback: Some(rollback),
        append_key: Some(append_key),
        append_data: Some(append_data),
        sync_wait: Some(sync_wait),
        last_committed_id: Some(last_committed_id),
        free_connection: Some(free_connection),
        to_execute_start: Some(to_execute_start),
        to_execute_end: Some(to_execute_end),
        preordered_collect: Some(preordered_collect),
        preordered_commit: Some(preordered_commit),
        sst_sent: Some(sst_sent),
        sst_received: Some(sst_received),
        snapshot: Some(snapshot),
        stats_get: Some(stats_get),
        stats_free: Some(stats_free),
        stats_reset: Some(stats_reset),
        pause: Some(pause),
        resume: Some(resume),
        desync: Some(desync),
        resync: Some(resync),
        lock: Some(lock),
        unlock: Some(unlock),
        is_locked: Some(is_locked),
        provider_name: PROVIDER_NAME.as_ptr(),
        provider_version: PROVIDER_VERSION.as_ptr(),
        provider_vendor: PROVIDER_VENDOR.as_ptr(),
        free: Some(free),
        dlh: std::ptr::null_mut(),
        ctx: std::ptr::null_mut(),
    }
}

/// The replicator of an initialised instance.
///
/// # Safety
/// `w` is NULL or the `wsrep_t` our loader filled; its `ctx` is NULL or an `Instance` we
/// leaked in `init` that lives until `free` (the server makes no other call during or after
/// `free`).
unsafe fn replicator<'a>(w: *mut wsrep_t) -> Option<&'a Replicator> {
    if w.is_null() {
        return None;
    }
    // SAFETY: per the function contract.
    let ctx = unsafe { (*w).ctx };
    if ctx.is_null() {
        return None;
    }
    // SAFETY: `ctx` is a live `Instance` per the function contract.
    unsafe { &*(ctx as *const Instance) }.replicator.get()
}

fn status(s: Status) -> wsrep_status_t {
    s.code()
}

/// Logs once per member that Trireme answers "not implemented".
fn not_implemented(member: &'static str) -> wsrep_status_t {
    static SEEN: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if !seen.contains(&member) {
        seen.push(member);
        log::info!("{member}() is not implemented by Trireme; answering WSREP_NOT_IMPLEMENTED");
    }
    WSREP_NOT_IMPLEMENTED
}

// ---------------------------------------------------------------------------------------
// Life cycle

unsafe extern "C" fn init(w: *mut wsrep_t, args: *const wsrep_init_args) -> wsrep_status_t {
    guard("init", WSREP_NODE_FAIL, || {
        if w.is_null() || args.is_null() {
            return WSREP_NODE_FAIL;
        }
        // SAFETY: `args` points to the server's init args for the duration of the call.
        let args = unsafe { &*args };
        // SAFETY: all strings are NUL-terminated server strings, valid during init; we copy.
        let init_args = unsafe {
            InitArgs {
                node_name: string(args.node_name),
                node_address: string(args.node_address),
                node_incoming: string(args.node_incoming),
                data_dir: string(args.data_dir),
                options: string(args.options),
                proto_ver: args.proto_ver,
                state_id: if args.state_id.is_null() {
                    Gtid::UNDEFINED
                } else {
                    convert::gtid_from_c(&*args.state_id)
                },
            }
        };
        let debug = init_args.options.split(';').any(|kv| {
            let mut it = kv.splitn(2, '=');
            it.next().map(str::trim) == Some("debug")
                && matches!(
                    it.next().map(|v| v.trim().to_ascii_lowercase()).as_deref(),
                    Some("yes" | "true" | "1" | "on")
                )
        });
        logging::install(args.logger_cb, debug);
        let callbacks = ServerCallbacks {
            app_ctx: args.app_ctx as usize,
            connected: args.connected_cb,
            view: args.view_cb,
            sst_request: args.sst_request_cb,
            apply: args.apply_cb,
            sst_donate: args.sst_donate_cb,
            synced: args.synced_cb,
        };
        match Replicator::init(init_args, Arc::new(callbacks)) {
            Ok(replicator) => {
                let instance = Box::new(Instance {
                    replicator: OnceLock::new(),
                });
                let _ = instance.replicator.set(replicator);
                // SAFETY: `w` is the server's wsrep_t (non-null checked); ctx is ours.
                unsafe { (*w).ctx = Box::into_raw(instance).cast() };
                WSREP_OK
            }
            Err(e) => {
                log::error!("Trireme failed to initialise: {e}");
                WSREP_NODE_FAIL
            }
        }
    })
}

unsafe extern "C" fn free(w: *mut wsrep_t) {
    guard("free", (), || {
        if w.is_null() {
            return;
        }
        // SAFETY: `w` is the server's wsrep_t. Taking ctx and nulling it makes the second
        // `free` the server performs (contract §1.1) a no-op.
        let ctx = unsafe { std::mem::replace(&mut (*w).ctx, std::ptr::null_mut()) };
        if ctx.is_null() {
            return;
        }
        // SAFETY: ctx is the Box we leaked in `init`; no other call runs during free.
        let instance = unsafe { Box::from_raw(ctx as *mut Instance) };
        if let Some(replicator) = instance.replicator.into_inner() {
            replicator.shutdown();
        }
        logging::detach();
    })
}

unsafe extern "C" fn capabilities(_w: *mut wsrep_t) -> wsrep_cap_t {
    CAPABILITIES
}

unsafe extern "C" fn options_set(w: *mut wsrep_t, conf: *const c_char) -> wsrep_status_t {
    guard("options_set", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; `conf` is a server string for the call.
        let (Some(r), text) = (unsafe { replicator(w) }, unsafe { string(conf) }) else {
            return WSREP_NODE_FAIL;
        };
        match r.options_set(&text) {
            Ok(()) => WSREP_OK,
            Err(e) => {
                log::error!("{e}");
                status(e.status())
            }
        }
    })
}

unsafe extern "C" fn options_get(w: *mut wsrep_t) -> *mut c_char {
    guard("options_get", std::ptr::null_mut(), || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return std::ptr::null_mut();
        };
        malloc_c_string(&r.options_get())
    })
}

/// A copy of `text` in C's heap: the server `free()`s what `options_get` returns.
fn malloc_c_string(text: &str) -> *mut c_char {
    let bytes = text.as_bytes();
    // SAFETY: allocating len+1 bytes with the C allocator; checked for NULL below.
    let ptr = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if ptr.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: `ptr` has room for len+1 bytes; `bytes` does not overlap it.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len());
        *ptr.add(bytes.len()) = 0;
    }
    ptr.cast()
}

unsafe extern "C" fn enc_set_key(_w: *mut wsrep_t, _key: *const wsrep_buf_t) -> wsrep_status_t {
    not_implemented("enc_set_key")
}

unsafe extern "C" fn connect(
    w: *mut wsrep_t,
    cluster_name: *const c_char,
    cluster_url: *const c_char,
    state_donor: *const c_char,
    bootstrap: wsrep_bool_t,
) -> wsrep_status_t {
    guard("connect", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; strings are server strings for the call.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_NODE_FAIL;
        };
        // SAFETY: the server's strings are NUL-terminated (or null) and valid for this call; `string` copies them.
        let (name, url, donor) = unsafe {
            (
                string(cluster_name),
                string(cluster_url),
                string(state_donor),
            )
        };
        match r.connect(&name, &url, &donor, bootstrap) {
            Ok(()) => WSREP_OK,
            Err(e) => {
                // The error alone, as Galera words it; mariadbd adds
                // "wsrep::connect(<url>) failed: 7" for the context.
                log::error!("{e}");
                if let Some(line) = e.gcs_line() {
                    log::error!("{line}");
                }
                WSREP_NODE_FAIL
            }
        }
    })
}

unsafe extern "C" fn disconnect(w: *mut wsrep_t) -> wsrep_status_t {
    guard("disconnect", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_OK;
        };
        match r.disconnect() {
            Ok(()) => WSREP_OK,
            Err(e) => {
                log::error!("disconnect failed: {e}");
                status(e.status())
            }
        }
    })
}

unsafe extern "C" fn recv(w: *mut wsrep_t, recv_ctx: *mut c_void) -> wsrep_status_t {
    guard("recv", WSREP_FATAL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_NODE_FAIL;
        };
        status(r.recv(RecvCtx(recv_ctx as usize)))
    })
}

unsafe extern "C" fn assign_read_view(
    _w: *mut wsrep_t,
    _handle: *mut wsrep_ws_handle_t,
    _gtid: *const wsrep_gtid_t,
) -> wsrep_status_t {
    not_implemented("assign_read_view")
}

// ---------------------------------------------------------------------------------------
// The local transaction path

fn handle_from_c(h: &wsrep_ws_handle_t) -> WsHandle {
    WsHandle {
        trx_id: h.trx_id,
        opaque: h.opaque as usize,
    }
}

unsafe extern "C" fn certify(
    w: *mut wsrep_t,
    conn_id: wsrep_conn_id_t,
    ws_handle: *mut wsrep_ws_handle_t,
    flags: u32,
    meta: *mut wsrep_trx_meta_t,
) -> wsrep_status_t {
    guard("certify", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        if ws_handle.is_null() {
            return WSREP_OK;
        }
        // SAFETY: the server's handle, owned by the calling thread for the call.
        let c_handle = unsafe { &mut *ws_handle };
        let mut handle = handle_from_c(c_handle);
        let mut out = TrxMeta::UNDEFINED;
        let result = r.certify(conn_id, &mut handle, flags, &mut out);
        c_handle.opaque = handle.opaque as *mut c_void;
        if !meta.is_null() {
            // SAFETY: the server's meta out-parameter for this call.
            unsafe { *meta = convert::meta_to_c(&out) };
        }
        status(result)
    })
}

unsafe extern "C" fn commit_order_enter(
    w: *mut wsrep_t,
    ws_handle: *const wsrep_ws_handle_t,
    meta: *const wsrep_trx_meta_t,
) -> wsrep_status_t {
    guard("commit_order_enter", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; handle and meta are the server's, valid
        // for the call (const: we do not modify them).
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_NODE_FAIL;
        };
        if ws_handle.is_null() || meta.is_null() {
            return WSREP_NODE_FAIL;
        }
        // SAFETY: both pointers were checked non-null above and point to the server's structs for this call.
        let (handle, meta) = unsafe { (handle_from_c(&*ws_handle), convert::meta_from_c(&*meta)) };
        status(r.commit_order_enter(&handle, &meta))
    })
}

unsafe extern "C" fn commit_order_leave(
    w: *mut wsrep_t,
    ws_handle: *const wsrep_ws_handle_t,
    meta: *const wsrep_trx_meta_t,
    error: *const wsrep_buf_t,
) -> wsrep_status_t {
    guard("commit_order_leave", WSREP_NODE_FAIL, || {
        // SAFETY: as for commit_order_enter; `error` is NULL or a server buffer.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_NODE_FAIL;
        };
        if ws_handle.is_null() || meta.is_null() {
            return WSREP_NODE_FAIL;
        }
        // SAFETY: both pointers were checked non-null above and point to the server's structs for this call.
        let (handle, meta, error) = unsafe {
            (
                handle_from_c(&*ws_handle),
                convert::meta_from_c(&*meta),
                bytes(error),
            )
        };
        status(r.commit_order_leave(&handle, &meta, error))
    })
}

unsafe extern "C" fn release(w: *mut wsrep_t, ws_handle: *mut wsrep_ws_handle_t) -> wsrep_status_t {
    guard("release", WSREP_OK, || {
        // SAFETY: `w` per `replicator`'s contract; the handle is the server's for the call.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_OK;
        };
        if ws_handle.is_null() {
            return WSREP_OK;
        }
        // SAFETY: checked non-null above: the server's handle, ours alone for this call.
        let c_handle = unsafe { &mut *ws_handle };
        let mut handle = handle_from_c(c_handle);
        let result = r.release(&mut handle);
        c_handle.opaque = handle.opaque as *mut c_void;
        status(result)
    })
}

unsafe extern "C" fn replay_trx(
    w: *mut wsrep_t,
    ws_handle: *const wsrep_ws_handle_t,
    trx_ctx: *mut c_void,
) -> wsrep_status_t {
    // Only OK or TRX_FAIL may come back: anything else aborts mysqld (contract §4.6).
    guard("replay_trx", WSREP_TRX_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; handle valid for the call.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_TRX_FAIL;
        };
        if ws_handle.is_null() {
            return WSREP_TRX_FAIL;
        }
        // SAFETY: checked non-null above: the server's handle for this call.
        let handle = unsafe { handle_from_c(&*ws_handle) };
        match r.replay_trx(&handle, RecvCtx(trx_ctx as usize)) {
            Status::Ok => WSREP_OK,
            _ => WSREP_TRX_FAIL,
        }
    })
}

unsafe extern "C" fn abort_certification(
    w: *mut wsrep_t,
    bf_seqno: wsrep_seqno_t,
    victim_trx: wsrep_trx_id_t,
    victim_seqno: *mut wsrep_seqno_t,
) -> wsrep_status_t {
    guard("abort_certification", WSREP_OK, || {
        // SAFETY: `w` per `replicator`'s contract; victim_seqno is the server's out-param.
        let (result, seqno) = match unsafe { replicator(w) } {
            Some(r) => r.abort_certification(Seqno(bf_seqno), victim_trx),
            None => (Status::Ok, Seqno::UNDEFINED),
        };
        if !victim_seqno.is_null() {
            // SAFETY: checked non-null above: the server's out-parameter for this call.
            unsafe { *victim_seqno = seqno.0 };
        }
        status(result)
    })
}

unsafe extern "C" fn rollback(
    w: *mut wsrep_t,
    trx: wsrep_trx_id_t,
    _data: *const wsrep_buf_t,
) -> wsrep_status_t {
    guard("rollback", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        status(r.rollback(trx))
    })
}

unsafe extern "C" fn append_key(
    w: *mut wsrep_t,
    ws_handle: *mut wsrep_ws_handle_t,
    keys: *const wsrep_key_t,
    count: usize,
    key_type: wsrep_key_type_t,
    _copy: wsrep_bool_t,
) -> wsrep_status_t {
    guard("append_key", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        let Some(kind) = u8::try_from(key_type).ok().and_then(KeyType::from_u8) else {
            log::error!("append_key: unknown key type {key_type}");
            return WSREP_TRX_FAIL;
        };
        if ws_handle.is_null() || (keys.is_null() && count > 0) {
            return WSREP_TRX_FAIL;
        }
        // SAFETY: the server's handle for the call.
        let c_handle = unsafe { &mut *ws_handle };
        let mut handle = handle_from_c(c_handle);
        let mut result = Status::Ok;
        for i in 0..count {
            // SAFETY: `keys` has `count` entries; each key's parts array has
            // `key_parts_num` buffers, all valid for the call (we hash them right away).
            let key = unsafe { &*keys.add(i) };
            let parts: Vec<&[u8]> = (0..key.key_parts_num)
                // SAFETY: `key_parts` holds `key_parts_num` buffers, valid for the call.
                .map(|j| unsafe { bytes(key.key_parts.add(j)) })
                .collect();
            result = r.append_key(&mut handle, &parts, kind);
            if result != Status::Ok {
                break;
            }
        }
        c_handle.opaque = handle.opaque as *mut c_void;
        status(result)
    })
}

unsafe extern "C" fn append_data(
    w: *mut wsrep_t,
    ws_handle: *mut wsrep_ws_handle_t,
    data: *const wsrep_buf_t,
    count: usize,
    _data_type: wsrep_data_type_t,
    _copy: wsrep_bool_t,
) -> wsrep_status_t {
    guard("append_data", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        if ws_handle.is_null() || (data.is_null() && count > 0) {
            return WSREP_TRX_FAIL;
        }
        // SAFETY: the server's handle for the call.
        let c_handle = unsafe { &mut *ws_handle };
        let mut handle = handle_from_c(c_handle);
        let mut result = Status::Ok;
        for i in 0..count {
            // SAFETY: `data` has `count` buffers valid for the call; we copy them.
            let chunk = unsafe { bytes(data.add(i)) };
            result = r.append_data(&mut handle, chunk);
            if result != Status::Ok {
                break;
            }
        }
        c_handle.opaque = handle.opaque as *mut c_void;
        status(result)
    })
}

unsafe extern "C" fn sync_wait(
    w: *mut wsrep_t,
    upto: *mut wsrep_gtid_t,
    tout: c_int,
    gtid: *mut wsrep_gtid_t,
) -> wsrep_status_t {
    guard("sync_wait", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; upto/gtid are NULL or server structs.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        let upto = if upto.is_null() {
            None
        } else {
            // SAFETY: checked non-null above: the server's GTID for this call.
            Some(convert::gtid_from_c(unsafe { &*upto }))
        };
        let timeout = if tout < 0 {
            None
        } else {
            Some(Duration::from_secs(tout as u64))
        };
        match r.sync_wait(upto, timeout) {
            Ok(reached) => {
                if !gtid.is_null() {
                    // SAFETY: checked non-null above: the server's out-parameter for this call.
                    unsafe { *gtid = convert::gtid_to_c(reached) };
                }
                WSREP_OK
            }
            Err(s) => status(s),
        }
    })
}

unsafe extern "C" fn last_committed_id(w: *mut wsrep_t, gtid: *mut wsrep_gtid_t) -> wsrep_status_t {
    guard("last_committed_id", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; gtid is the server's out-parameter.
        let value = match unsafe { replicator(w) } {
            Some(r) => r.last_committed_id(),
            None => Gtid::UNDEFINED,
        };
        if !gtid.is_null() {
            // SAFETY: checked non-null above: the server's out-parameter for this call.
            unsafe { *gtid = convert::gtid_to_c(value) };
        }
        WSREP_OK
    })
}

unsafe extern "C" fn free_connection(
    _w: *mut wsrep_t,
    _conn_id: wsrep_conn_id_t,
) -> wsrep_status_t {
    WSREP_OK
}

// ---------------------------------------------------------------------------------------
// Total order isolation

unsafe extern "C" fn to_execute_start(
    w: *mut wsrep_t,
    conn_id: wsrep_conn_id_t,
    keys: *const wsrep_key_t,
    keys_num: usize,
    action: *const wsrep_buf_t,
    count: usize,
    flags: u32,
    meta: *mut wsrep_trx_meta_t,
) -> wsrep_status_t {
    guard("to_execute_start", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        // SAFETY: keys/action arrays have keys_num/count valid entries for the call.
        let key_list: Vec<Vec<&[u8]>> = (0..if keys.is_null() { 0 } else { keys_num })
            .map(|i| {
                // SAFETY: `i < keys_num`, and `keys` has `keys_num` entries valid for the call.
                let key = unsafe { &*keys.add(i) };
                (0..key.key_parts_num)
                    // SAFETY: `key_parts` holds `key_parts_num` buffers, valid for the call.
                    .map(|j| unsafe { bytes(key.key_parts.add(j)) })
                    .collect()
            })
            .collect();
        let mut payload = Vec::new();
        for i in 0..if action.is_null() { 0 } else { count } {
            // SAFETY: `i < count`, and `action` has `count` buffers valid for the call.
            payload.extend_from_slice(unsafe { bytes(action.add(i)) });
        }
        let mut out = TrxMeta::UNDEFINED;
        let result = r.to_execute_start(conn_id, &key_list, &payload, flags, &mut out);
        if !meta.is_null() {
            // SAFETY: the server's meta out-parameter.
            unsafe { *meta = convert::meta_to_c(&out) };
        }
        status(result)
    })
}

unsafe extern "C" fn to_execute_end(
    w: *mut wsrep_t,
    conn_id: wsrep_conn_id_t,
    error: *const wsrep_buf_t,
) -> wsrep_status_t {
    guard("to_execute_end", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; error is NULL or a server buffer.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        // SAFETY: the error buffer is the server's for this call (or null, which `bytes` reads as empty).
        status(r.to_execute_end(conn_id, unsafe { bytes(error) }))
    })
}

unsafe extern "C" fn preordered_collect(
    _w: *mut wsrep_t,
    _handle: *mut wsrep_po_handle_t,
    _data: *const wsrep_buf_t,
    _count: usize,
    _copy: wsrep_bool_t,
) -> wsrep_status_t {
    not_implemented("preordered_collect")
}

unsafe extern "C" fn preordered_commit(
    _w: *mut wsrep_t,
    _handle: *mut wsrep_po_handle_t,
    _source: *const wsrep_uuid_t,
    _flags: u32,
    _pa_range: c_int,
    _commit: wsrep_bool_t,
) -> wsrep_status_t {
    not_implemented("preordered_commit")
}

// ---------------------------------------------------------------------------------------
// State transfer

unsafe extern "C" fn sst_sent(
    w: *mut wsrep_t,
    state_id: *const wsrep_gtid_t,
    rcode: c_int,
) -> wsrep_status_t {
    guard("sst_sent", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; state_id is NULL or the server's GTID.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        let gtid = if state_id.is_null() {
            Gtid::UNDEFINED
        } else {
            // SAFETY: checked non-null above: the server's GTID for this call.
            convert::gtid_from_c(unsafe { &*state_id })
        };
        status(r.sst_sent(gtid, rcode))
    })
}

unsafe extern "C" fn sst_received(
    w: *mut wsrep_t,
    state_id: *const wsrep_gtid_t,
    _state: *const wsrep_buf_t,
    rcode: c_int,
) -> wsrep_status_t {
    guard("sst_received", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract; state_id is NULL or the server's GTID.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        let gtid = if state_id.is_null() {
            Gtid::UNDEFINED
        } else {
            // SAFETY: checked non-null above: the server's GTID for this call.
            convert::gtid_from_c(unsafe { &*state_id })
        };
        status(r.sst_received(gtid, rcode))
    })
}

unsafe extern "C" fn snapshot(
    _w: *mut wsrep_t,
    _msg: *const wsrep_buf_t,
    _donor: *const c_char,
) -> wsrep_status_t {
    not_implemented("snapshot")
}

// ---------------------------------------------------------------------------------------
// Status variables

/// One `stats_get` answer: the array handed to the server and the strings it points into.
struct StatsBlock {
    vars: Vec<wsrep_stats_var>,
    _strings: Vec<CString>,
}

// SAFETY: the raw pointers in `vars` point into `_strings`, owned by the same block; the
// block is only touched under the registry mutex.
unsafe impl Send for StatsBlock {}

/// Blocks handed out and not yet freed, by array address.
static STATS_BLOCKS: Mutex<Option<HashMap<usize, Box<StatsBlock>>>> = Mutex::new(None);

unsafe extern "C" fn stats_get(w: *mut wsrep_t) -> *mut wsrep_stats_var {
    guard("stats_get", std::ptr::null_mut(), || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return std::ptr::null_mut();
        };
        let stats = r.stats();
        let mut strings = Vec::with_capacity(stats.len() * 2);
        let mut vars = Vec::with_capacity(stats.len() + 1);
        for (name, value) in stats {
            let name = CString::new(name).unwrap_or_default();
            let name_ptr = name.as_ptr();
            strings.push(name);
            let (type_, value) = match value {
                StatValue::Int(v) => (WSREP_VAR_INT64, wsrep_stats_value { _int64: v }),
                StatValue::Double(v) => (WSREP_VAR_DOUBLE, wsrep_stats_value { _double: v }),
                StatValue::Str(s) => {
                    // Never NULL: the server would crash (contract gotcha 15).
                    let s = CString::new(s.replace('\0', " ")).unwrap_or_default();
                    let ptr = s.as_ptr();
                    strings.push(s);
                    (WSREP_VAR_STRING, wsrep_stats_value { _string: ptr })
                }
            };
            vars.push(wsrep_stats_var {
                name: name_ptr,
                type_,
                value,
            });
        }
        vars.push(wsrep_stats_var {
            name: std::ptr::null(),
            type_: WSREP_VAR_INT64,
            value: wsrep_stats_value { _int64: 0 },
        });
        let mut block = Box::new(StatsBlock {
            vars,
            _strings: strings,
        });
        let ptr = block.vars.as_mut_ptr();
        STATS_BLOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(HashMap::new)
            .insert(ptr as usize, block);
        ptr
    })
}

unsafe extern "C" fn stats_free(_w: *mut wsrep_t, var_array: *mut wsrep_stats_var) {
    guard("stats_free", (), || {
        if var_array.is_null() {
            return;
        }
        // Dropping the block frees the array and its strings; an unknown pointer is ignored.
        let block = STATS_BLOCKS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|m| m.remove(&(var_array as usize)));
        drop(block);
    })
}

unsafe extern "C" fn stats_reset(w: *mut wsrep_t) {
    guard("stats_reset", (), || {
        // SAFETY: `w` per `replicator`'s contract.
        if let Some(r) = unsafe { replicator(w) } {
            r.stats_reset();
        }
    })
}

// ---------------------------------------------------------------------------------------
// Pause, desync, locks

unsafe extern "C" fn pause(w: *mut wsrep_t) -> wsrep_seqno_t {
    // -1 is the only failure value wsrep-lib understands (contract §1.3, #32).
    guard("pause", -1, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return -1;
        };
        match r.pause() {
            Ok(seqno) => seqno.0.max(0),
            Err(_) => -1,
        }
    })
}

unsafe extern "C" fn resume(w: *mut wsrep_t) -> wsrep_status_t {
    guard("resume", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_OK;
        };
        status(r.resume())
    })
}

unsafe extern "C" fn desync(w: *mut wsrep_t) -> wsrep_status_t {
    guard("desync", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_CONN_FAIL;
        };
        status(r.desync())
    })
}

unsafe extern "C" fn resync(w: *mut wsrep_t) -> wsrep_status_t {
    guard("resync", WSREP_NODE_FAIL, || {
        // SAFETY: `w` per `replicator`'s contract.
        let Some(r) = (unsafe { replicator(w) }) else {
            return WSREP_OK;
        };
        status(r.resync())
    })
}

unsafe extern "C" fn lock(
    _w: *mut wsrep_t,
    _name: *const c_char,
    _shared: wsrep_bool_t,
    _owner: u64,
    _tout: i64,
) -> wsrep_status_t {
    not_implemented("lock")
}

unsafe extern "C" fn unlock(_w: *mut wsrep_t, _name: *const c_char, _owner: u64) -> wsrep_status_t {
    not_implemented("unlock")
}

unsafe extern "C" fn is_locked(
    _w: *mut wsrep_t,
    _name: *const c_char,
    _conn: *mut u64,
    _node: *mut wsrep_uuid_t,
) -> wsrep_bool_t {
    false
}
