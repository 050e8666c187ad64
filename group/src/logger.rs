//! Routes raft-rs's `slog` records to the `log` facade (which `ffi` sends to MariaDB's
//! logger). raft-rs logs every role change at `info`; that is debug detail for us, so levels
//! are shifted down one step. Its warnings are expected events of a cluster that loses a node
//! ("stepped down to follower since quorum is not active"), which Trireme reports in its own
//! words (the non-primary view); as warnings they would alarm DBAs and fail MTR's log checks,
//! so they become notes. Formatting happens only when the level is enabled.

use slog::{Drain, Level, Never, OwnedKVList, Record};

const TARGET: &str = "trireme_group::raft";

pub(crate) struct LogDrain;

impl Drain for LogDrain {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record<'_>, _values: &OwnedKVList) -> Result<(), Never> {
        let level = match record.level() {
            Level::Critical | Level::Error => log::Level::Error,
            Level::Warning => log::Level::Info,
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
