//! `libtrireme.so`: the wsrep API v26 provider MariaDB loads with
//! `wsrep_provider=/path/to/libtrireme.so`.
//!
//! This crate is a thin shim with no logic. Each `extern "C"` function has one shape:
//! turn pointers into references under a `// SAFETY:` argument, call
//! `trireme_replicator::Replicator`, and map the answer to `wsrep_status_t`; all of it inside
//! [`guard`], which catches a panic, logs it and answers a failure instead of unwinding into
//! mariadbd. Memory handed to C that C frees (`options_get`) comes from `libc::malloc`; memory
//! C hands us is copied and never freed by us.
//!
//! Module map: `abi` (the C structs, layout-checked), `loader` (`wsrep_loader`, the
//! interface-version symbol, the allowlist service, node isolation), `calls` (every member of
//! `wsrep_t`), `server` (MariaDB's callbacks as `trireme_replicator::Server`), `logging`
//! (the `log` facade routed to MariaDB's logger), `convert` (C <-> Rust values).

// The provider's allocator. `local_dynamic_tls` keeps the cdylib from using up glibc's static
// TLS surplus inside mariadbd (deps-vetting §4); mariadbd's own malloc stays untouched.
#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// mimalloc, counting what the provider holds (`wsrep_trireme_heap_bytes`): the figure that
/// shows whether memory grows with a transaction (streaming replication) or a soak.
struct CountingAlloc;

thread_local! {
    /// This thread's count not yet added to the shared total. Const-initialised and without
    /// a destructor, so it never allocates and stays usable while the thread exits.
    static UNREPORTED: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn count(delta: i64) {
    use trireme_replicator::stats::{HEAP_BYTES, HEAP_FLUSH_BYTES};
    let _ = UNREPORTED.try_with(|pending| {
        let v = pending.get() + delta;
        if v.abs() >= HEAP_FLUSH_BYTES {
            HEAP_BYTES.fetch_add(v, std::sync::atomic::Ordering::Relaxed);
            pending.set(0);
        } else {
            pending.set(v);
        }
    });
}

// SAFETY: every method forwards to mimalloc with the caller's arguments unchanged, so the
// `GlobalAlloc` contract holds exactly as it does for `MiMalloc`; the counting touches only a
// thread-local cell and an atomic, and never allocates.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as i64);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        count(-(layout.size() as i64));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is (see the impl).
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as i64 - layout.size() as i64);
        }
        p
    }
}

pub mod abi;
mod calls;
mod convert;
pub mod loader;
mod logging;
mod server;

use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, turning a panic into `on_panic` after logging it: no unwinding crosses into C.
pub(crate) fn guard<T>(call: &'static str, on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            log::error!("internal error in {call}: {what}; the call fails instead");
            on_panic
        }
    }
}

pub use loader::wsrep_loader;
