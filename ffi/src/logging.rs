//! Routes the `log` facade to MariaDB's `logger_cb`, so every crate's messages appear in the
//! server's error log as `WSREP: ...`, with Galera's levels (contract §1.5).
//!
//! Before `init` (or after `free`) there is no callback; messages go to stderr, which
//! mariadbd redirects to its error log too.

use crate::abi::{
    wsrep_log_cb_t, WSREP_LOG_DEBUG, WSREP_LOG_ERROR, WSREP_LOG_INFO, WSREP_LOG_WARN,
};
use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// The logger callback as an address (0 = none). Written at init and free, read by every
/// log call on any thread.
static LOGGER: AtomicUsize = AtomicUsize::new(0);

struct WsrepLogger;

impl log::Log for WsrepLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // raft-rs and other dependencies log through slog/log too; keep their chatter at
        // debug unless it is a warning or worse.
        let level = match record.level() {
            log::Level::Error => WSREP_LOG_ERROR,
            log::Level::Warn => WSREP_LOG_WARN,
            log::Level::Info => WSREP_LOG_INFO,
            log::Level::Debug | log::Level::Trace => WSREP_LOG_DEBUG,
        };
        let text = format!("{}", record.args());
        let text = CString::new(text.replace('\0', " ")).unwrap_or_default();
        let address = LOGGER.load(Ordering::Acquire);
        if address == 0 {
            eprintln!("WSREP: {}", text.to_string_lossy());
            return;
        }
        // SAFETY: `address` was stored from a non-null `wsrep_log_cb_t` given to us by the
        // server in `init` and stays valid while the provider is loaded (the server's
        // logger is a static function of mariadbd). The message is a valid C string that
        // outlives the call.
        let callback: unsafe extern "C" fn(i32, *const std::ffi::c_char) =
            unsafe { std::mem::transmute(address) };
        // SAFETY: see above; the callback only reads the string.
        unsafe { callback(level, text.as_ptr()) };
    }

    fn flush(&self) {}
}

static LOGGER_INSTANCE: WsrepLogger = WsrepLogger;
static INSTALL: Once = Once::new();

/// Installs the facade once per process and points it at `callback` (or stderr).
pub fn install(callback: wsrep_log_cb_t, debug: bool) {
    INSTALL.call_once(|| {
        let _ = log::set_logger(&LOGGER_INSTANCE);
    });
    log::set_max_level(if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    });
    let address = callback.map(|f| f as usize).unwrap_or(0);
    LOGGER.store(address, Ordering::Release);
}

/// Stops using the server's callback (at `free`: the server may unload right after).
pub fn detach() {
    LOGGER.store(0, Ordering::Release);
}
