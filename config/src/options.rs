//! [`Options`]: the current value of every provider option, built once at `init` and
//! changed by run-time `SET GLOBAL wsrep_provider_options`.
//!
//! Invariants:
//! - every slot holds a value of its option's kind, or nothing (an option Galera would not
//!   print, such as `pc.bootstrap` before anyone sets it);
//! - a failed [`Options::set`] leaves every value as it was (changes are staged on a copy);
//! - [`Options::render`] always contains `repl.max_ws_size = <decimal>;`, which MariaDB
//!   reads back.
//!
//! Derived defaults are computed once, at [`Options::from_init`], after the options string
//! has been applied (see the crate README). At run time nothing is re-derived, as in Galera.

use std::path::PathBuf;
use std::time::Duration;

use trireme_types::{NodeId, MAX_WRITESET_BYTES};

use crate::address::{Address, ListenAddr, PeerOp, Scheme};
use crate::error::{clip, OptionError};
use crate::key;
use crate::parse::parse_pairs;
use crate::registry::{
    index_of, suggestion_for, DefaultValue, Rendering, Runtime, Spec, Support, REGISTRY,
};
use crate::trireme::{auto_shards, Pinning, TransportChoice};
use crate::value::{Rejection, Value};

/// What MariaDB hands to `init` besides the options string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitContext {
    /// `wsrep_node_address` (possibly with a port); empty when the server has none.
    pub node_address: String,
    /// The server's data directory (`wsrep_data_home_dir`); empty means `.`.
    pub data_dir: String,
    /// `wsrep_node_name`.
    pub node_name: String,
}

/// One outcome of a successful run-time [`Options::set`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A setting changed; [`Options`] already holds the new value.
    Set {
        key: &'static str,
        /// The value shown before, `None` when the option had none.
        old: Option<String>,
        new: String,
    },
    /// A one-shot request the caller must carry out now.
    Action(Action),
}

/// The one-shot requests an options string can carry.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `pc.bootstrap=YES`: make this non-primary component primary.
    Bootstrap,
    /// `socket.ssl_reload=1` (MariaDB's `FLUSH SSL`): reload TLS certificates.
    ReloadSsl,
    /// `evs.evict=<uuid>`: evict that node.
    Evict(NodeId),
    /// `evs.evict=` (empty): forget every eviction.
    ClearEvictions,
    /// `gmcast.peer_addr=add:<address>`.
    AddPeer(Address),
    /// `gmcast.peer_addr=del:<address>`.
    DelPeer(Address),
    /// `dbug=<string>` (debug builds of Galera); Trireme only reports it.
    Dbug(String),
    /// `signal=<string>` (debug builds of Galera); Trireme only reports it.
    Signal(String),
}

/// The value of one option.
#[derive(Debug, Clone, PartialEq)]
struct Slot {
    /// What `render` prints (see [`Rendering`]).
    text: String,
    value: Value,
    /// Set by the options string (init or run time), not by a default or a derivation.
    explicit: bool,
}

/// The current value of every provider option. See the module header for invariants.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Parallel to [`REGISTRY`].
    slots: Vec<Option<Slot>>,
    node_name: String,
}

/// Actions Galera carries out on every request, without first comparing the value with the
/// stored one (`socket.ssl_reload` is exempted in `ReplicatorSMM::param_set`; `dbug` and
/// `signal` are handled before it, in `wsrep_set_params`).
const ALWAYS_FIRES: [&str; 3] = [key::SOCKET_SSL_RELOAD, key::DBUG, key::SIGNAL];

impl Options {
    /// Builds the options of a provider being initialised: Galera's defaults, then the
    /// node address and data directory, then the options string, then derived defaults and
    /// the cross-option checks Galera makes when it connects.
    ///
    /// Refuses unknown keys, malformed or out-of-range values, and inconsistent pairs, with
    /// an error naming the option.
    pub fn from_init(ctx: &InitContext, options: &str) -> Result<Options, OptionError> {
        let mut o = Options::with_fixed_defaults(&ctx.node_name);

        let base_dir = if ctx.data_dir.is_empty() {
            "."
        } else {
            ctx.data_dir.as_str()
        };
        o.store_text(key::BASE_DIR, base_dir, false)?;
        if let Some(node) = parse_node_address(&ctx.node_address)? {
            // Galera stores the host as its URI parser returns it: IPv6 in brackets.
            let host = node.uri_host();
            o.store_text(key::BASE_HOST, &host, false)?;
            o.store_text(key::IST_RECV_ADDR, &host, false)?;
            if let Some(port) = node.port {
                o.store_text(key::BASE_PORT, &port.to_string(), false)?;
            }
        }

        for (k, text) in parse_pairs(options)? {
            let index = lookup(&k)?;
            let value = parse_value(&REGISTRY[index], &text)?;
            o.store(index, &text, value, true);
        }

        o.derive_defaults()?;
        o.check_startup_relations()?;
        for (spec, slot) in REGISTRY.iter().zip(&o.slots) {
            if slot.as_ref().is_some_and(|s| s.explicit) {
                log_compatibility_notes(spec);
            }
        }
        Ok(o)
    }

    /// Applies a run-time options string, all or nothing: every pair is validated and
    /// staged first; on any error nothing changes.
    ///
    /// As in Galera, a pair whose value equals the current one is accepted and ignored, even
    /// for startup-only options: MTR tests restore a saved `@@wsrep_provider_options` whole.
    /// A real change to a startup-only option is refused ([`OptionError::NotDynamic`]).
    /// Returns what changed, in order: settings (by key, once, with old and new text) and
    /// actions (each occurrence).
    pub fn set(&mut self, options: &str) -> Result<Vec<Change>, OptionError> {
        enum Pending {
            Setting(usize),
            Action(Action),
        }
        let mut staged = self.clone();
        let mut pending = Vec::new();
        for (k, text) in parse_pairs(options)? {
            let index = lookup(&k)?;
            let spec = &REGISTRY[index];
            let fires_always = ALWAYS_FIRES.contains(&spec.key);
            let current = staged.slots[index].as_ref();
            // Galera compares texts before parsing anything (`ReplicatorSMM::param_set`).
            if !fires_always && current.is_some_and(|s| s.text == text) {
                continue;
            }
            let value = parse_value(spec, &text)?;
            // The same value spelt differently is no change either (`128M` = `134217728`);
            // except for actions, which Galera only skips on identical text.
            let is_action = spec.runtime == Runtime::Action;
            if !is_action && current.is_some_and(|s| s.value == value) {
                continue;
            }
            match spec.runtime {
                Runtime::Startup => return Err(OptionError::NotDynamic { key: spec.key }),
                Runtime::Action => {
                    pending.extend(action_for(spec.key, &value).map(Pending::Action));
                }
                Runtime::Dynamic => {
                    staged.store(index, &text, value, true);
                    pending.push(Pending::Setting(index));
                }
            }
        }
        let touched = |k: &str| {
            pending
                .iter()
                .any(|p| matches!(p, Pending::Setting(i) if REGISTRY[*i].key == k))
        };
        staged.check_runtime_relations(touched)?;

        let mut changes = Vec::new();
        let mut reported = Vec::new();
        for p in pending {
            match p {
                Pending::Action(action) => changes.push(Change::Action(action)),
                Pending::Setting(index) if !reported.contains(&index) => {
                    reported.push(index);
                    let old = self.slots[index].as_ref();
                    let Some(new) = staged.slots[index].as_ref() else {
                        continue;
                    };
                    // `a=1;a=2;a=1` ends where it started: nothing to report.
                    if old.is_some_and(|o| o.value == new.value) {
                        continue;
                    }
                    log_compatibility_notes(&REGISTRY[index]);
                    changes.push(Change::Set {
                        key: REGISTRY[index].key,
                        old: old.map(|o| o.text.clone()),
                        new: new.text.clone(),
                    });
                }
                Pending::Setting(_) => {}
            }
        }
        *self = staged;
        Ok(changes)
    }

    /// The options string in Galera's `options_get` format: `key = value; ` for every option
    /// that has a value, sorted by key. Always contains `repl.max_ws_size = <n>; `.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        for (spec, slot) in REGISTRY.iter().zip(&self.slots) {
            if spec.rendering == Rendering::NotListed {
                continue;
            }
            if let Some(slot) = slot {
                out.push_str(spec.key);
                out.push_str(" = ");
                out.push_str(&slot.text);
                out.push_str("; ");
            }
        }
        out
    }

    /// The text `render` shows for `key`, or `None` for an unknown or unset option.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.slot(key).map(|s| s.text.as_str())
    }

    /// Whether the user set `key` (in the options string or at run time) rather than it
    /// holding a default: a tuning profile fills in only what the user left alone.
    pub fn is_explicit(&self, key: &str) -> bool {
        self.slot(key).is_some_and(|s| s.explicit)
    }

    // ---- Typed getters: what the rest of Trireme reads. ----

    /// `wsrep_node_name` as passed to init.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    pub fn base_dir(&self) -> PathBuf {
        PathBuf::from(self.text(key::BASE_DIR).unwrap_or("."))
    }

    /// `None` when neither `wsrep_node_address` nor `base_host` gave one.
    pub fn base_host(&self) -> Option<&str> {
        self.text(key::BASE_HOST)
    }

    pub fn base_port(&self) -> u16 {
        u16::try_from(self.int(key::BASE_PORT, 4567)).unwrap_or(4567)
    }

    /// Where replication connections are accepted (`gmcast.listen_addr`, derived).
    pub fn listen_addr(&self) -> ListenAddr {
        let derived = match self.value(key::GMCAST_LISTEN_ADDR) {
            Some(Value::Address(a)) => Some(a),
            _ => None,
        };
        ListenAddr {
            scheme: derived.and_then(|a| a.scheme).unwrap_or(Scheme::Tcp),
            host: derived.map_or_else(|| "0.0.0.0".to_string(), |a| a.host.clone()),
            port: derived.and_then(|a| a.port).unwrap_or(self.base_port()),
        }
    }

    /// Where donors send IST: `ist.recv_addr` (default: the node's host), completed as Galera
    /// does: `ssl://` when `socket.ssl_key` is set (and `socket.dynamic` is not), else
    /// `tcp://`; port `base_port + 1` (16-bit, as in Galera) when none is given. `None` when
    /// no host is known at all.
    pub fn ist_recv_addr(&self) -> Option<ListenAddr> {
        let given = match self.value(key::IST_RECV_ADDR) {
            Some(Value::Address(a)) => Some(a.clone()),
            _ => match self.value(key::BASE_HOST) {
                Some(Value::Address(a)) => Some(a.clone()),
                _ => None,
            },
        };
        given.map(|a| self.complete_ist_addr(a))
    }

    /// Where the IST receiver binds, when `ist.recv_bind` is set (else it binds to
    /// [`Options::ist_recv_addr`]); completed the same way.
    pub fn ist_recv_bind(&self) -> Option<ListenAddr> {
        match self.value(key::IST_RECV_BIND) {
            Some(Value::Address(a)) => Some(self.complete_ist_addr(a.clone())),
            _ => None,
        }
    }

    /// Whether the options ask for TLS between nodes (not implemented yet; see the table).
    pub fn ssl_enabled(&self) -> bool {
        self.boolean(key::SOCKET_SSL, false)
    }

    pub fn suspect_timeout(&self) -> Duration {
        self.duration(key::EVS_SUSPECT_TIMEOUT, Duration::from_secs(5))
    }

    pub fn inactive_timeout(&self) -> Duration {
        self.duration(key::EVS_INACTIVE_TIMEOUT, Duration::from_secs(15))
    }

    pub fn install_timeout(&self) -> Duration {
        self.duration(key::EVS_INSTALL_TIMEOUT, Duration::from_millis(7_500))
    }

    pub fn keepalive_period(&self) -> Duration {
        self.duration(key::EVS_KEEPALIVE_PERIOD, Duration::from_secs(1))
    }

    pub fn inactive_check_period(&self) -> Duration {
        self.duration(key::EVS_INACTIVE_CHECK_PERIOD, Duration::from_millis(500))
    }

    pub fn causal_read_timeout(&self) -> Duration {
        self.duration(key::REPL_CAUSAL_READ_TIMEOUT, Duration::from_secs(30))
    }

    pub fn fc_limit(&self) -> u64 {
        u64::try_from(self.int(key::GCS_FC_LIMIT, 16)).unwrap_or(16)
    }

    pub fn fc_factor(&self) -> f64 {
        match self.value(key::GCS_FC_FACTOR) {
            Some(Value::Float(x)) => *x,
            _ => 1.0,
        }
    }

    /// `pc.weight`: this node's weight in quorums (validated to 0..=255).
    pub fn pc_weight(&self) -> u8 {
        u8::try_from(self.int(key::PC_WEIGHT, 1)).unwrap_or(1)
    }

    /// `evs.auto_evict`: removals after which a node is evicted (0: never).
    pub fn evs_auto_evict(&self) -> u32 {
        u32::try_from(self.int(key::EVS_AUTO_EVICT, 0)).unwrap_or(0)
    }

    pub fn pc_ignore_sb(&self) -> bool {
        self.boolean(key::PC_IGNORE_SB, false)
    }

    pub fn pc_ignore_quorum(&self) -> bool {
        self.boolean(key::PC_IGNORE_QUORUM, false)
    }

    pub fn pc_recovery(&self) -> bool {
        self.boolean(key::PC_RECOVERY, true)
    }

    /// `pc.bootstrap` as given at init (at run time it is an [`Action`]).
    pub fn pc_bootstrap(&self) -> bool {
        self.boolean(key::PC_BOOTSTRAP, false)
    }

    pub fn pc_wait_prim_timeout(&self) -> Duration {
        self.duration(key::PC_WAIT_PRIM_TIMEOUT, Duration::from_secs(30))
    }

    pub fn gcache_dir(&self) -> PathBuf {
        self.text(key::GCACHE_DIR)
            .map_or_else(|| self.base_dir(), PathBuf::from)
    }

    pub fn gcache_name(&self) -> &str {
        self.text(key::GCACHE_NAME).unwrap_or("galera.cache")
    }

    /// The ring file: `gcache.name` inside `gcache.dir`, unless the name is absolute.
    pub fn gcache_file(&self) -> PathBuf {
        self.gcache_dir().join(self.gcache_name())
    }

    pub fn gcache_size_bytes(&self) -> u64 {
        self.size(key::GCACHE_SIZE, 128 << 20)
    }

    pub fn gcache_page_size_bytes(&self) -> u64 {
        self.size(key::GCACHE_PAGE_SIZE, 128 << 20)
    }

    pub fn gcache_recover(&self) -> bool {
        self.boolean(key::GCACHE_RECOVER, true)
    }

    /// `repl.max_ws_size`, capped at the largest writeset Trireme's frames carry
    /// ([`MAX_WRITESET_BYTES`], 1 GiB; Galera's default is 2 GiB - 1).
    pub fn max_ws_size_bytes(&self) -> u64 {
        let configured = u64::try_from(self.int(key::REPL_MAX_WS_SIZE, i64::from(i32::MAX)));
        configured
            .unwrap_or(u64::MAX)
            .min(MAX_WRITESET_BYTES as u64)
    }

    /// `gmcast.segment` (0..=254).
    pub fn segment(&self) -> u8 {
        u8::try_from(self.int(key::GMCAST_SEGMENT, 0)).unwrap_or(0)
    }

    /// `gmcast.isolate`: 0 connected, 1 isolated from peers, 2 leave the cluster.
    pub fn gmcast_isolate(&self) -> u8 {
        u8::try_from(self.int(key::GMCAST_ISOLATE, 0)).unwrap_or(0)
    }

    /// `debug`: debug-level provider logging.
    pub fn debug_log(&self) -> bool {
        self.boolean(key::DEBUG, false)
    }

    pub fn cert_log_conflicts(&self) -> bool {
        self.boolean(key::CERT_LOG_CONFLICTS, false)
    }

    /// `trireme.shards` as configured: `None` for `auto`.
    pub fn shards_setting(&self) -> Option<u32> {
        match self.value(key::TRIREME_SHARDS) {
            Some(Value::Int(n)) => u32::try_from(*n).ok(),
            _ => None,
        }
    }

    /// The shard count to run: `trireme.shards`, with `auto` resolved for this machine
    /// (see [`auto_shards`]).
    pub fn shards(&self) -> u32 {
        self.shards_setting().unwrap_or_else(|| {
            auto_shards(std::thread::available_parallelism().map_or(1, |n| n.get()))
        })
    }

    pub fn transport(&self) -> TransportChoice {
        match self.value(key::TRIREME_TRANSPORT) {
            Some(Value::Choice(name)) => {
                TransportChoice::from_name(name).unwrap_or(TransportChoice::Auto)
            }
            _ => TransportChoice::Auto,
        }
    }

    pub fn pinning(&self) -> Pinning {
        match self.value(key::TRIREME_PINNING) {
            Some(Value::Pinning(p)) => p.clone(),
            _ => Pinning::None,
        }
    }

    pub fn profile(&self) -> &str {
        match self.value(key::TRIREME_PROFILE) {
            Some(Value::Choice(name)) => name,
            _ => "default",
        }
    }

    pub fn spin_budget_us(&self) -> u32 {
        u32::try_from(self.int(key::TRIREME_SPIN_BUDGET_US, 50)).unwrap_or(50)
    }

    /// Whether SHOW STATUS also lists Trireme's latency histograms.
    pub fn extended_status(&self) -> bool {
        self.boolean(key::TRIREME_EXTENDED_STATUS, false)
    }

    pub fn election_timeout(&self) -> Duration {
        self.duration(key::TRIREME_ELECTION_TIMEOUT, Duration::from_secs(1))
    }

    pub fn batch_max_bytes(&self) -> u64 {
        self.size(key::TRIREME_BATCH_MAX_BYTES, 1 << 20)
    }

    // ---- Construction helpers. ----

    /// Every option with a fixed default, parsed; derived and unset options empty.
    fn with_fixed_defaults(node_name: &str) -> Options {
        let slots = REGISTRY
            .iter()
            .map(|spec| match spec.default {
                DefaultValue::Fixed(text) => spec.kind.parse(text).ok().map(|value| Slot {
                    text: rendered_text(spec, text, &value),
                    value,
                    explicit: false,
                }),
                DefaultValue::Derived(_) | DefaultValue::Unset => None,
            })
            .collect();
        Options {
            slots,
            node_name: node_name.to_string(),
        }
    }

    fn store(&mut self, index: usize, given: &str, value: Value, explicit: bool) {
        let text = rendered_text(&REGISTRY[index], given, &value);
        self.slots[index] = Some(Slot {
            text,
            value,
            explicit,
        });
    }

    /// Parses `text` for `key` and stores it; used for values Trireme itself supplies.
    fn store_text(&mut self, key: &str, text: &str, explicit: bool) -> Result<(), OptionError> {
        let index = lookup(key)?;
        let value = parse_value(&REGISTRY[index], text)?;
        self.store(index, text, value, explicit);
        Ok(())
    }

    /// Stores a value Trireme computed (a derived default), printed in canonical form.
    fn store_value(&mut self, key: &str, value: Value, explicit: bool) {
        if let Some(index) = index_of(key) {
            let text = value.canonical();
            self.store(index, &text, value, explicit);
        }
    }

    /// The derived defaults, in dependency order. Mirrors what Galera computes at init and
    /// connect: SSL defaults (`gu::ssl_init_options`), the listen address (`GMCast`), the
    /// GCache directory (`GCache::Params`), EVS timeouts (`evs::Proto`).
    fn derive_defaults(&mut self) -> Result<(), OptionError> {
        if !self.is_explicit(key::GCACHE_DIR) {
            let base_dir = self.text(key::BASE_DIR).unwrap_or(".").to_string();
            self.store_text(key::GCACHE_DIR, &base_dir, false)?;
        }

        let ssl = self.derive_ssl()?;
        let dynamic_socket = self.boolean(key::SOCKET_DYNAMIC, false);
        // Galera rewrites the scheme whatever the user wrote: ssl:// exactly when SSL is
        // on and the socket is not dynamic.
        let scheme = if ssl && !dynamic_socket {
            Scheme::Ssl
        } else {
            Scheme::Tcp
        };
        let (host, port) = match self.value(key::GMCAST_LISTEN_ADDR) {
            Some(Value::Address(a)) if self.is_explicit(key::GMCAST_LISTEN_ADDR) => {
                (a.host.clone(), a.port)
            }
            _ => ("0.0.0.0".to_string(), None),
        };
        let port = match port {
            // An explicit listen port becomes base_port, as in Galera.
            Some(p) => {
                let explicit = self.is_explicit(key::BASE_PORT);
                self.store_text(key::BASE_PORT, &p.to_string(), explicit)?;
                p
            }
            None => self.base_port(),
        };
        let explicit = self.is_explicit(key::GMCAST_LISTEN_ADDR);
        let listen = Value::Address(Address {
            scheme: Some(scheme),
            host,
            port: Some(port),
        });
        self.store_value(key::GMCAST_LISTEN_ADDR, listen, explicit);

        if !self.is_explicit(key::EVS_INSTALL_TIMEOUT) {
            let half = self.inactive_timeout() / 2;
            self.store_value(key::EVS_INSTALL_TIMEOUT, Value::Duration(half), false);
        }
        if !self.is_explicit(key::EVS_CAUSAL_KEEPALIVE_PERIOD) {
            let keepalive = self.keepalive_period();
            self.store_value(
                key::EVS_CAUSAL_KEEPALIVE_PERIOD,
                Value::Duration(keepalive),
                false,
            );
        }
        Ok(())
    }

    /// Whether SSL is on, with Galera's side effects on what is shown: `socket.ssl = YES`,
    /// `socket.ssl_reload = 1`, `socket.ssl_cipher = ` (empty).
    fn derive_ssl(&mut self) -> Result<bool, OptionError> {
        let has_key = self.slot(key::SOCKET_SSL_KEY).is_some();
        let has_cert = self.slot(key::SOCKET_SSL_CERT).is_some();
        let ssl = match self.value(key::SOCKET_SSL) {
            Some(Value::Bool(explicit)) => *explicit,
            _ => has_key || has_cert,
        };
        if !ssl {
            return Ok(false);
        }
        if !(has_key && has_cert) {
            return Err(OptionError::Inconsistent {
                key: key::SOCKET_SSL_KEY,
                value: self.shown(key::SOCKET_SSL_KEY),
                other: key::SOCKET_SSL_CERT,
                other_value: self.shown(key::SOCKET_SSL_CERT),
                rule: "SSL needs both a key and a certificate",
            });
        }
        let explicit = self.is_explicit(key::SOCKET_SSL);
        self.store_text(key::SOCKET_SSL, "YES", explicit)?;
        if self.slot(key::SOCKET_SSL_RELOAD).is_none() {
            self.store_text(key::SOCKET_SSL_RELOAD, "1", false)?;
        }
        if self.slot(key::SOCKET_SSL_CIPHER).is_none() {
            self.store_text(key::SOCKET_SSL_CIPHER, "", false)?;
        }
        Ok(true)
    }

    /// The relations Galera's `evs::Proto` constructor enforces when it connects.
    fn check_startup_relations(&self) -> Result<(), OptionError> {
        let suspect = self.suspect_timeout();
        let keepalive = self.keepalive_period();
        let inactive = self.inactive_timeout();
        let install = self.install_timeout();
        self.relation(
            self.inactive_check_period() <= suspect / 2,
            (key::EVS_INACTIVE_CHECK_PERIOD, key::EVS_SUSPECT_TIMEOUT),
            "must be at most half of it",
        )?;
        self.relation(
            keepalive <= suspect / 3,
            (key::EVS_KEEPALIVE_PERIOD, key::EVS_SUSPECT_TIMEOUT),
            "must be at most a third of it",
        )?;
        self.relation(
            install >= keepalive,
            (key::EVS_INSTALL_TIMEOUT, key::EVS_KEEPALIVE_PERIOD),
            "must be at least as long",
        )?;
        self.relation(
            install <= inactive,
            (key::EVS_INSTALL_TIMEOUT, key::EVS_INACTIVE_TIMEOUT),
            "must not be longer",
        )?;
        self.check_send_windows()
    }

    /// The relations Galera's `evs::Proto::set_param` checks when one of the options
    /// changes at run time (fewer than at startup: MTR's
    /// `evs.inactive_timeout=PT100M; evs.suspect_timeout=PT1S` must pass).
    fn check_runtime_relations(&self, touched: impl Fn(&str) -> bool) -> Result<(), OptionError> {
        if touched(key::EVS_INSTALL_TIMEOUT) {
            let install = self.install_timeout();
            self.relation(
                install >= self.keepalive_period() * 2,
                (key::EVS_INSTALL_TIMEOUT, key::EVS_KEEPALIVE_PERIOD),
                "must be at least twice as long",
            )?;
            self.relation(
                install <= self.inactive_timeout(),
                (key::EVS_INSTALL_TIMEOUT, key::EVS_INACTIVE_TIMEOUT),
                "must not be longer",
            )?;
        }
        if touched(key::EVS_SEND_WINDOW) || touched(key::EVS_USER_SEND_WINDOW) {
            self.check_send_windows()?;
        }
        Ok(())
    }

    fn check_send_windows(&self) -> Result<(), OptionError> {
        let user = self.int(key::EVS_USER_SEND_WINDOW, 2);
        let all = self.int(key::EVS_SEND_WINDOW, 4);
        self.relation(
            user <= all,
            (key::EVS_USER_SEND_WINDOW, key::EVS_SEND_WINDOW),
            "must not be larger",
        )
    }

    fn relation(
        &self,
        holds: bool,
        (k, other): (&'static str, &'static str),
        rule: &'static str,
    ) -> Result<(), OptionError> {
        if holds {
            return Ok(());
        }
        Err(OptionError::Inconsistent {
            key: k,
            value: self.shown(k),
            other,
            other_value: self.shown(other),
            rule,
        })
    }

    fn complete_ist_addr(&self, a: Address) -> ListenAddr {
        let ssl_key = self.slot(key::SOCKET_SSL_KEY).is_some();
        let dynamic = self.boolean(key::SOCKET_DYNAMIC, false);
        let default_scheme = if ssl_key && !dynamic {
            Scheme::Ssl
        } else {
            Scheme::Tcp
        };
        ListenAddr {
            scheme: a.scheme.unwrap_or(default_scheme),
            // Galera computes the port in 16 bits, so 65535 + 1 wraps to 0 (any free port).
            port: a.port.unwrap_or_else(|| self.base_port().wrapping_add(1)),
            host: a.host,
        }
    }

    // ---- Slot access. ----

    fn slot(&self, key: &str) -> Option<&Slot> {
        index_of(key)
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
    }

    fn value(&self, key: &str) -> Option<&Value> {
        self.slot(key).map(|s| &s.value)
    }

    fn shown(&self, key: &str) -> String {
        self.slot(key)
            .map_or_else(|| "(not set)".to_string(), |s| s.text.clone())
    }

    fn text(&self, key: &str) -> Option<&str> {
        match self.value(key) {
            Some(Value::Text(t)) => Some(t.as_str()),
            Some(Value::Address(_)) => self.slot(key).map(|s| s.text.as_str()),
            _ => None,
        }
    }

    // The fallbacks below are Galera's defaults; they are only reached if an option's kind
    // and its getter disagree, which the getter tests would show.

    fn boolean(&self, key: &str, fallback: bool) -> bool {
        match self.value(key) {
            Some(Value::Bool(b)) => *b,
            _ => fallback,
        }
    }

    fn int(&self, key: &str, fallback: i64) -> i64 {
        match self.value(key) {
            Some(Value::Int(n)) => *n,
            _ => fallback,
        }
    }

    fn size(&self, key: &str, fallback: u64) -> u64 {
        match self.value(key) {
            Some(Value::Size(n)) => *n,
            _ => fallback,
        }
    }

    fn duration(&self, key: &str, fallback: Duration) -> Duration {
        match self.value(key) {
            Some(Value::Duration(d)) => *d,
            _ => fallback,
        }
    }
}

/// The text `render` shows for a value given as `given`.
fn rendered_text(spec: &Spec, given: &str, value: &Value) -> String {
    match spec.rendering {
        Rendering::AsGiven | Rendering::NotListed => given.to_string(),
        Rendering::Normalized => value.canonical(),
    }
}

fn lookup(key: &str) -> Result<usize, OptionError> {
    index_of(key).ok_or_else(|| OptionError::Unknown {
        key: clip(key),
        suggestion: suggestion_for(key),
    })
}

fn parse_value(spec: &Spec, text: &str) -> Result<Value, OptionError> {
    spec.kind.parse(text).map_err(|rejection| match rejection {
        Rejection::Malformed { detail } => OptionError::Malformed {
            key: spec.key,
            value: clip(text),
            expected: match detail {
                Some(d) => format!("{} ({d})", spec.kind.expected()),
                None => spec.kind.expected(),
            },
        },
        Rejection::OutOfRange => OptionError::OutOfRange {
            key: spec.key,
            value: clip(text),
            range: spec.kind.range(),
        },
    })
}

/// `wsrep_node_address`: `host`, `host:port`, `[v6]:port`, optionally with a scheme. Galera
/// refuses a wildcard host, which would be advertised to other nodes.
fn parse_node_address(text: &str) -> Result<Option<Address>, OptionError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let address = Address::parse(text).map_err(|reason| OptionError::NodeAddress {
        address: clip(text),
        reason,
    })?;
    if address.is_unspecified() {
        return Err(OptionError::NodeAddress {
            address: clip(text),
            reason: "a wildcard address cannot name this node",
        });
    }
    Ok(Some(address))
}

/// The action an action option's value asks for; `None` when it asks for nothing
/// (`pc.bootstrap=no`).
fn action_for(key: &str, value: &Value) -> Option<Action> {
    match (key, value) {
        // Galera bootstraps (and reloads) on any value; Trireme only on a true one, so that
        // `pc.bootstrap=0` does what it says.
        (key::PC_BOOTSTRAP, Value::Bool(true)) => Some(Action::Bootstrap),
        (key::SOCKET_SSL_RELOAD, Value::Bool(true)) => Some(Action::ReloadSsl),
        (key::EVS_EVICT, Value::Node(Some(id))) => Some(Action::Evict(*id)),
        (key::EVS_EVICT, Value::Node(None)) => Some(Action::ClearEvictions),
        (key::GMCAST_PEER_ADDR, Value::Peer(PeerOp::Add(a))) => Some(Action::AddPeer(a.clone())),
        (key::GMCAST_PEER_ADDR, Value::Peer(PeerOp::Del(a))) => Some(Action::DelPeer(a.clone())),
        (key::DBUG, Value::Text(s)) => Some(Action::Dbug(s.clone())),
        (key::SIGNAL, Value::Text(s)) => Some(Action::Signal(s.clone())),
        _ => None,
    }
}

fn log_compatibility_notes(spec: &Spec) {
    if spec.deprecated {
        log::warn!(
            "Provider option '{}' is deprecated and will be removed in future versions",
            spec.key
        );
    }
    if spec.support == Support::Accepted && spec.runtime != Runtime::Action {
        log::info!(
            "Provider option '{}' is accepted for compatibility and has no effect in Trireme: {}",
            spec.key,
            spec.note
        );
    }
}
