//! Trireme's provider options (`wsrep_provider_options`): Galera 4.23's vocabulary plus
//! Trireme's own `trireme.*` keys; their syntax, validation, defaults, run-time changes and
//! the `options_get` string MariaDB shows as `@@wsrep_provider_options`.
//!
//! The crate is pure: no I/O, no threads, no global state. `ffi`/`replicator` call it at
//! `init`, on every `options_set`, and for every `options_get`.
//!
//! ```
//! use std::time::Duration;
//! use trireme_config::{Action, Change, InitContext, Options};
//!
//! // At init: the server's node address and data dir, and the options string.
//! let ctx = InitContext {
//!     node_address: "127.0.0.1".into(),
//!     data_dir: "/var/lib/mysql/".into(),
//!     node_name: "node1".into(),
//! };
//! let mut options = Options::from_init(&ctx, "base_port=14567; evs.suspect_timeout=PT10S")?;
//! assert_eq!(options.suspect_timeout(), Duration::from_secs(10));
//! assert_eq!(options.listen_addr().to_string(), "tcp://0.0.0.0:14567");
//!
//! // At run time: all or nothing, and the caller learns what to act on.
//! let changes = options.set("gcs.fc_limit=100; pc.bootstrap=YES")?;
//! assert_eq!(changes[1], Change::Action(Action::Bootstrap));
//! assert!(options.set("gcache.size=1G").is_err()); // startup-only
//!
//! // What MariaDB shows; it reads repl.max_ws_size back from this string.
//! assert!(options.render().contains("repl.max_ws_size = 2147483647; "));
//! # Ok::<(), trireme_config::OptionError>(())
//! ```
//!
//! Modules, top-down: [`options`] (the [`Options`] value and its getters), [`registry`]
//! (the table of every option), then the value syntax: `parse` (the `k=v;` string),
//! [`value`] (kinds), [`number`], [`duration`], [`address`], [`trireme`] (the `trireme.*`
//! types). Tests sit in each module; `tests.rs` holds the cross-cutting ones (Galera
//! reference comparison, MariaDB's `repl.max_ws_size` read-back, random strings).

pub mod address;
pub mod duration;
mod error;
pub mod key;
pub mod number;
pub mod options;
mod parse;
pub mod registry;
pub mod trireme;
pub mod value;

#[cfg(test)]
mod tests;

pub use address::{Address, ListenAddr, PeerOp, Scheme};
pub use duration::format_duration;
pub use error::OptionError;
pub use number::format_size;
pub use options::{Action, Change, InitContext, Options};
pub use registry::{markdown_table, table, OptionInfo, Runtime, Support};
pub use trireme::{auto_shards, Pinning, TransportChoice, PROFILE_NAMES};
pub use value::Kind;
