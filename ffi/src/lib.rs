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
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
