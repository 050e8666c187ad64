//! Routes raft-rs's `slog` records to the `log` facade (which `ffi` sends to MariaDB's
//! logger). raft-rs logs every role change at `info`; that is debug detail for us, so levels
//! are shifted down one step. Formatting happens only when the level is enabled.

use slog::{Drain, Level, Never, OwnedKVList, Record};

const TARGET: &str = "trireme_group::raft";

pub(crate) struct LogDrain;

impl Drain for LogDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, _values: &OwnedKVList) -> Result<(), Never> {
        let level = match record.level() {
            Level::Critical | Level::Error => log::Level::Error,
            Level::Warning => log::Level::Warn,
            Level::Info => log::Level::Debug,
            Level::Debug | Level::Trace => log::Level::Trace,
        };
        if log::log_enabled!(target: TARGET, level) {
            log::log!(target: TARGET, level, "{}", record.msg());
        }
        Ok(())
    }
}

pub(crate) fn raft_logger(node_short_id: u64) -> slog::Logger {
    slog::Logger::root(LogDrain.fuse(), slog::o!("node" => node_short_id))
}
