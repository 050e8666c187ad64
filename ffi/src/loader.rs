//! What mariadbd resolves with `dlsym` (contract §1.1-1.2): `wsrep_loader`, the
//! `wsrep_interface_version` data symbol, the allowlist service v1 (required by 10.11: without
//! it mysqld aborts at start) and node isolation (called from the server's fatal-signal
//! handler, so it only flips an atomic).

use crate::abi::*;
use crate::calls;
use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// A pointer that may live in a `static` (it points to immutable static data).
#[repr(transparent)]
pub struct StaticPtr(*const c_char);

// SAFETY: the pointer targets a `'static` string literal that is never written.
unsafe impl Sync for StaticPtr {}

/// `const char* wsrep_interface_version = "26";` MTR's `wsrep_check_version` and mariadbd
/// read it through `dlsym` as a `char**`.
#[no_mangle]
pub static wsrep_interface_version: StaticPtr = StaticPtr(WSREP_INTERFACE_VERSION.as_ptr());

/// The Galera 4 level Trireme implements, shown as `26.4.<n>(trireme <version>)` so that
/// version-gated tools and MTR tests treat it as that level. Raised only with the features
/// that level implies.
pub const PROVIDER_VERSION: &std::ffi::CStr = {
    match std::ffi::CStr::from_bytes_with_nul(
        concat!("26.4.0(trireme ", env!("CARGO_PKG_VERSION"), ")\0").as_bytes(),
    ) {
        Ok(s) => s,
        Err(_) => panic!("version string has an interior NUL"),
    }
};
pub const PROVIDER_NAME: &std::ffi::CStr = c"Trireme";
pub const PROVIDER_VENDOR: &std::ffi::CStr = c"The Trireme authors";

/// `int wsrep_loader(wsrep_t*)`: fills every member of the provider interface.
///
/// # Safety
/// `hptr` is NULL or points to a writable `wsrep_t` (the server malloc'ed it).
#[no_mangle]
pub unsafe extern "C" fn wsrep_loader(hptr: *mut wsrep_t) -> c_int {
    crate::guard("wsrep_loader", libc::EINVAL, || {
        if hptr.is_null() {
            return libc::EINVAL;
        }
        let table = calls::provider_table();
        // SAFETY: `hptr` is non-null and writable per the function contract. `dlh` is the
        // loader's to set (it writes it after we return), so we keep whatever is there.
        unsafe {
            let dlh = (*hptr).dlh;
            std::ptr::write(hptr, table);
            (*hptr).dlh = dlh;
        }
        0
    })
}

/// The allowlist service the server passed at init (`{callback, context}`), kept until
/// deinit: every peer connection, in or out, is checked against it by its IP
/// (`mysql.wsrep_allowlist`; an empty table allows everyone, the server decides).
static ALLOWLIST: AtomicUsize = AtomicUsize::new(0);

/// `WSREP_ALLOWLIST_KEY_IP` (wsrep_allowlist_service.h).
const ALLOWLIST_KEY_IP: c_int = 0;

/// # Safety
/// `service` is NULL or points to a `wsrep_allowlist_service_v1_t` that stays valid until
/// `wsrep_deinit_allowlist_service_v1` (the server's static).
#[no_mangle]
pub unsafe extern "C" fn wsrep_init_allowlist_service_v1(
    service: *mut wsrep_allowlist_service_v1_t,
) -> c_int {
    ALLOWLIST.store(service as usize, Ordering::Release);
    if !service.is_null() {
        trireme_replicator::set_peer_filter(Some(Box::new(peer_allowed)));
    }
    0
}

#[no_mangle]
pub extern "C" fn wsrep_deinit_allowlist_service_v1() {
    trireme_replicator::set_peer_filter(None);
    ALLOWLIST.store(0, Ordering::Release);
}

/// Asks the server whether `ip` is in its allowlist (WSREP_OK: allowed).
fn peer_allowed(ip: std::net::IpAddr) -> bool {
    let service = ALLOWLIST.load(Ordering::Acquire) as *const wsrep_allowlist_service_v1_t;
    if service.is_null() {
        return true;
    }
    // SAFETY: non-null, and the server keeps its service struct valid until deinit, which
    // removes this filter first.
    let service = unsafe { &*service };
    let Some(callback) = service.allowlist_cb else {
        return true;
    };
    // NUL-terminated as well: the server may read the value as a C string (Galera passes
    // one), and `len` still counts the address alone.
    let text = format!("{ip}\0");
    let value = wsrep_buf_t {
        ptr: text.as_ptr().cast(),
        len: text.len() - 1,
    };
    // SAFETY: the server's callback with its own context; `value` points to `text`, alive for
    // the call, and the server only reads it.
    let answer = unsafe { callback(service.context, ALLOWLIST_KEY_IP, &value) };
    answer == WSREP_OK
}

/// Node isolation mode (0 not isolated, 1 isolated, 2 force disconnect), read by the network
/// layer. Written from a signal handler, hence a plain atomic.
pub static ISOLATION_MODE: AtomicI32 = AtomicI32::new(0);

/// `wsrep_node_isolation_mode_set_v1`: async-signal-safe (one atomic store).
#[no_mangle]
pub extern "C" fn wsrep_node_isolation_mode_set_v1(mode: c_int) -> c_int {
    if !(0..=2).contains(&mode) {
        return 1; // WSREP_NODE_ISOLATION_INVALID_VALUE
    }
    ISOLATION_MODE.store(mode, Ordering::Release);
    0 // WSREP_NODE_ISOLATION_SUCCESS
}
