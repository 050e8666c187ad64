//! The option registry: one static, key-sorted table of every option Trireme knows, Galera
//! 4.23's vocabulary plus `trireme.*`, with kind, default, run-time behaviour, support level
//! and a one-line note.
//!
//! Where the facts come from: keys, defaults and which options Galera prints were taken
//! from the options string a live Galera 4.23 node printed
//! (`reference/galera-4.23-provider-options.tsv`) and the strings of the 4.23 library;
//! kinds, ranges and the run-time (dynamic) set from Galera's source (26.4.18, `4.x`):
//! `galera/src/replicator_smm_params.cpp`, `wsrep_params.cpp`, `certification.cpp`,
//! `ist.cpp`, `gcs/src/gcs_params.cpp`, `gcs.cpp` (`gcs_param_set`), `gcs_group.cpp`,
//! `gcache/src/gcache_params.cpp`, `gcomm/src/conf.cpp`, `defaults.cpp`, `evs_proto.cpp`,
//! `pc_proto.cpp`, `pc.cpp`, `gmcast.cpp` (their `set_param`), `galerautils/src/gu_asio.cpp`.
//!
//! The table is sorted by key in byte order, which is also the order Galera prints
//! (`std::map<std::string, ...>`); a test keeps it so, since lookups binary-search it.

use std::time::Duration;

use crate::trireme::{TransportChoice, PROFILE_NAMES};
use crate::value::Kind;

/// How far Trireme goes with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Support {
    /// Trireme reads the option: a typed getter on [`crate::Options`] hands it to the crate
    /// that acts on it.
    Implemented,
    /// Parsed, validated and shown like Galera does, so configurations and MTR suites that
    /// set it keep working; it has no effect (yet). The note says why.
    Accepted,
}

/// What a run-time `SET GLOBAL wsrep_provider_options` may do with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Read at startup only; a run-time change is refused (an unchanged value is fine).
    Startup,
    /// Can be changed at run time; the new value is kept and reported.
    Dynamic,
    /// A one-shot request (e.g. `pc.bootstrap=YES`): reported to the caller, not kept.
    Action,
}

/// How a value is printed by [`crate::Options::render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Rendering {
    /// The text the user gave, trimmed, as `gu::Config` keeps it.
    AsGiven,
    /// The canonical form of the value: Galera's gcomm writes these options back after
    /// parsing them (`pc.ignore_sb=1` shows as `true`, `PT24H` as `P1D`).
    Normalized,
    /// Never listed: an action Galera takes without storing it (`gmcast.isolate`); MTR's
    /// check of the server's variables after a test expects the list unchanged.
    NotListed,
}

/// Where an option's value comes from when the options string does not set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum DefaultValue {
    /// A fixed text, as Galera prints it.
    Fixed(&'static str),
    /// Computed from the init arguments or from other options (see [`Derivation`]).
    Derived(Derivation),
    /// No value: Galera does not print the option until someone sets it.
    Unset,
}

/// The derived defaults; [`crate::Options::from_init`] computes them after parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Derivation {
    /// `base_dir`: the server's data directory, `.` if it passed none.
    DataDir,
    /// `base_host`, `ist.recv_addr`: the host of `wsrep_node_address`.
    NodeHost,
    /// `gcache.dir`: `base_dir`.
    BaseDir,
    /// `gmcast.listen_addr`: `tcp://0.0.0.0:<base_port>` (`ssl://` with SSL).
    ListenAddr,
    /// `evs.install_timeout`: half of `evs.inactive_timeout`.
    HalfInactiveTimeout,
    /// `evs.causal_keepalive_period`: `evs.keepalive_period`.
    KeepalivePeriod,
}

impl Derivation {
    fn describe(self) -> &'static str {
        match self {
            Derivation::DataDir => "data dir (`.` if none)",
            Derivation::NodeHost => "host of wsrep_node_address",
            Derivation::BaseDir => "`base_dir`",
            Derivation::ListenAddr => "`tcp://0.0.0.0:<base_port>` (`ssl://` with SSL)",
            Derivation::HalfInactiveTimeout => "`evs.inactive_timeout` / 2 (`PT7.5S`)",
            Derivation::KeepalivePeriod => "`evs.keepalive_period` (`PT1S`)",
        }
    }
}

/// One registry entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Spec {
    pub key: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    pub runtime: Runtime,
    pub support: Support,
    pub rendering: Rendering,
    /// Galera warns when it is set; so does Trireme.
    pub deprecated: bool,
    pub note: &'static str,
}

/// The longest period Galera can hold: `i64::MAX` nanoseconds.
pub(crate) const MAX_PERIOD: Duration = Duration::from_nanos(i64::MAX as u64);
const MAX_BYTES: u64 = i64::MAX as u64;

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const fn at_least(min: Duration) -> Kind {
    Kind::Duration {
        min,
        max: MAX_PERIOD,
    }
}
const INT32: Kind = int(0, i32::MAX as i64);
const INT64: Kind = int(0, i64::MAX);
const SIZE: Kind = Kind::Size {
    min: 0,
    max: MAX_BYTES,
};
const DURATION: Kind = at_least(Duration::ZERO);
const FRACTION: Kind = Kind::Float {
    min: 0.0,
    max: 1.0,
    max_inclusive: true,
};
const FRACTION_BELOW_ONE: Kind = Kind::Float {
    min: 0.0,
    max: 1.0,
    max_inclusive: false,
};
const MS_100: Duration = Duration::from_millis(100);
const SEC_1: Duration = Duration::from_secs(1);

use DefaultValue::{Derived, Fixed, Unset};
use Rendering::Normalized;
use Runtime::{Action, Dynamic};
use Support::Implemented;

/// Most options are startup-only, accepted for compatibility and printed as given.
const BASE: Spec = Spec {
    key: "",
    kind: Kind::String,
    default: Unset,
    runtime: Runtime::Startup,
    support: Support::Accepted,
    rendering: Rendering::AsGiven,
    deprecated: false,
    note: "",
};

#[rustfmt::skip]
pub(crate) static REGISTRY: &[Spec] = &[
    Spec { key: "base_dir", kind: Kind::Path, default: Derived(Derivation::DataDir), support: Implemented,
        note: "Directory of grastate.dat, gvwstate.dat and, by default, the GCache.", ..BASE },
    Spec { key: "base_host", kind: Kind::Address, default: Derived(Derivation::NodeHost), support: Implemented,
        note: "Host of wsrep_node_address; other nodes and IST reach this node there.", ..BASE },
    Spec { key: "base_port", kind: int(0, 65535), default: Fixed("4567"), support: Implemented,
        note: "Replication port; the port of wsrep_node_address or of gmcast.listen_addr overrides it.", ..BASE },
    Spec { key: "cert.length_check", kind: INT32,
        note: "Hidden Galera tuning of certification index purging; Trireme purges at commit cuts.", ..BASE },
    Spec { key: "cert.log_conflicts", kind: Kind::Bool, default: Fixed("no"), runtime: Dynamic, support: Implemented,
        note: "Log the keys and writesets of certification conflicts.", ..BASE },
    Spec { key: "cert.max_length", kind: INT32,
        note: "Hidden Galera tuning of certification index length; Trireme purges at commit cuts.", ..BASE },
    Spec { key: "cert.optimistic_pa", kind: Kind::Bool, default: Fixed("yes"), runtime: Dynamic,
        note: "Galera's optimistic parallel applying; Trireme applies in parallel by key dependencies only.", ..BASE },
    Spec { key: "dbug", runtime: Action,
        note: "DBUG control string of debug Galera builds; reported, no effect.", ..BASE },
    Spec { key: "debug", kind: Kind::Bool, default: Fixed("no"), runtime: Dynamic, support: Implemented,
        note: "Debug-level provider logging.", ..BASE },
    Spec { key: "evs.auto_evict", kind: INT64, default: Fixed("0"), runtime: Dynamic, rendering: Normalized,
        support: Implemented,
        note: "A node removed this many times (failing and coming back) is refused until restarted; 0: off.", ..BASE },
    Spec { key: "evs.causal_keepalive_period", kind: DURATION, default: Derived(Derivation::KeepalivePeriod),
        runtime: Dynamic, rendering: Normalized,
        note: "EVS causal keepalives; Trireme's causal reads wait on the commit watermark instead.", ..BASE },
    Spec { key: "evs.debug_log_mask", kind: Kind::Mask, default: Fixed("0x1"), runtime: Dynamic, rendering: Normalized,
        note: "EVS debug log mask; Trireme logs through the log facade.", ..BASE },
    Spec { key: "evs.delay_margin", kind: DURATION, default: Fixed("PT1S"), runtime: Dynamic, rendering: Normalized,
        note: "Delayed-node detection margin; not implemented.", ..BASE },
    Spec { key: "evs.delayed_keep_period", kind: DURATION, default: Fixed("PT30S"), runtime: Dynamic, rendering: Normalized,
        note: "How long a node stays on the delayed list; not implemented.", ..BASE },
    Spec { key: "evs.evict", kind: Kind::NodeUuid, runtime: Action, support: Implemented,
        note: "Evict a node by UUID, cluster-wide (empty: clear the evict list everywhere).", ..BASE },
    Spec { key: "evs.inactive_check_period", kind: at_least(Duration::from_nanos(1)), default: Fixed("PT0.5S"),
        rendering: Normalized,
        note: "How often peers are checked for silence; Trireme checks on every shard tick.", ..BASE },
    Spec { key: "evs.inactive_timeout", kind: at_least(MS_100), default: Fixed("PT15S"), runtime: Dynamic,
        support: Implemented, rendering: Normalized,
        note: "Silence after which a peer is declared dead and removed from the view.", ..BASE },
    Spec { key: "evs.info_log_mask", kind: Kind::Mask, default: Fixed("0"), runtime: Dynamic, rendering: Normalized,
        note: "EVS info log mask; Trireme logs through the log facade.", ..BASE },
    Spec { key: "evs.install_timeout", kind: DURATION, default: Derived(Derivation::HalfInactiveTimeout),
        runtime: Dynamic, support: Implemented, rendering: Normalized,
        note: "Time a membership change (view install) may take before it is retried.", ..BASE },
    Spec { key: "evs.join_retrans_period", kind: at_least(MS_100), default: Fixed("PT1S"), runtime: Dynamic,
        rendering: Normalized,
        note: "EVS join message retransmission; raft retransmits on its own ticks.", ..BASE },
    Spec { key: "evs.keepalive_period", kind: at_least(MS_100), default: Fixed("PT1S"), runtime: Dynamic,
        support: Implemented, rendering: Normalized,
        note: "Keepalive interval on idle links.", ..BASE },
    Spec { key: "evs.max_install_timeouts", kind: INT32, default: Fixed("3"), runtime: Dynamic, rendering: Normalized,
        note: "EVS install retries before giving up on a node; not used by raft.", ..BASE },
    Spec { key: "evs.send_window", kind: int(1, i64::MAX), default: Fixed("4"), runtime: Dynamic, rendering: Normalized,
        note: "EVS send window; raft pipelining is sized by trireme.batch_max_bytes.", ..BASE },
    Spec { key: "evs.stats_report_period", kind: at_least(SEC_1), default: Fixed("PT1M"), runtime: Dynamic,
        rendering: Normalized,
        note: "EVS statistics log period; not implemented.", ..BASE },
    Spec { key: "evs.suspect_timeout", kind: at_least(MS_100), default: Fixed("PT5S"), runtime: Dynamic,
        support: Implemented, rendering: Normalized,
        note: "Silence after which a peer is suspected (fallback when no TCP close is seen).", ..BASE },
    Spec { key: "evs.use_aggregate", kind: Kind::Bool, default: Fixed("true"), runtime: Dynamic, rendering: Normalized,
        note: "EVS message aggregation; Trireme batches by trireme.batch_max_bytes.", ..BASE },
    Spec { key: "evs.user_send_window", kind: int(1, i64::MAX), default: Fixed("2"), runtime: Dynamic,
        rendering: Normalized,
        note: "EVS user-message send window (at most evs.send_window); not used by raft.", ..BASE },
    Spec { key: "evs.version", kind: int(0, 1), default: Fixed("1"), runtime: Dynamic, rendering: Normalized,
        note: "EVS protocol version; Trireme speaks its own protocol.", ..BASE },
    Spec { key: "evs.view_forget_timeout", kind: at_least(SEC_1), default: Fixed("P1D"), rendering: Normalized,
        note: "How long old views are remembered; not needed by raft.", ..BASE },
    Spec { key: "gcache.dir", kind: Kind::Path, default: Derived(Derivation::BaseDir), support: Implemented,
        note: "Directory of the GCache ring file and its overflow pages.", ..BASE },
    Spec { key: "gcache.keep_pages_size", kind: SIZE, default: Fixed("0"), runtime: Dynamic,
        note: "Overflow pages to keep after use; Trireme frees them once purged.", ..BASE },
    Spec { key: "gcache.mem_size", kind: SIZE, default: Fixed("0"), runtime: Dynamic,
        note: "Galera's in-memory cache store; Trireme caches in the mmap'd ring only.", ..BASE },
    Spec { key: "gcache.name", kind: Kind::Path, default: Fixed("galera.cache"), support: Implemented,
        note: "Ring file name, relative to gcache.dir unless absolute.", ..BASE },
    Spec { key: "gcache.page_size", kind: SIZE, default: Fixed("128M"), runtime: Dynamic, support: Implemented,
        note: "Size of an overflow page for writesets that do not fit the ring.", ..BASE },
    Spec { key: "gcache.recover", kind: Kind::Bool, default: Fixed("yes"), support: Implemented,
        note: "Recover the ring file at startup so IST can be served after a restart.", ..BASE },
    Spec { key: "gcache.size", kind: SIZE, default: Fixed("128M"), support: Implemented,
        note: "Size of the GCache ring file.", ..BASE },
    Spec { key: "gcomm.thread_prio", default: Fixed(""),
        note: "Scheduling of Galera's gcomm thread; Trireme's shard threads follow trireme.pinning.", ..BASE },
    Spec { key: "gcs.fc_debug", kind: INT64, default: Fixed("0"), runtime: Dynamic,
        note: "Flow-control debug logging period; not implemented.", ..BASE },
    Spec { key: "gcs.fc_factor", kind: FRACTION, default: Fixed("1.0"), runtime: Dynamic, support: Implemented,
        note: "Resume replication when the receive queue falls below fc_limit * fc_factor.", ..BASE },
    Spec { key: "gcs.fc_limit", kind: INT64, default: Fixed("16"), runtime: Dynamic, support: Implemented,
        note: "Pause the cluster when this many writesets wait to be applied.", ..BASE },
    Spec { key: "gcs.fc_master_slave", kind: Kind::Bool, default: Fixed("no"), deprecated: true,
        note: "Deprecated alias of gcs.fc_single_primary.", ..BASE },
    Spec { key: "gcs.fc_single_primary", kind: Kind::Bool, default: Fixed("no"),
        note: "Flow-control tuning for a single writer; flow control is the same for all writers.", ..BASE },
    Spec { key: "gcs.max_packet_size", kind: INT64, default: Fixed("64500"), runtime: Dynamic,
        note: "Galera's fragment size; Trireme frames are bounded by trireme.batch_max_bytes.", ..BASE },
    Spec { key: "gcs.max_throttle", kind: FRACTION_BELOW_ONE, default: Fixed("0.25"), runtime: Dynamic,
        note: "Replication throttling during state transfer; not implemented.", ..BASE },
    Spec { key: "gcs.recv_q_hard_limit", kind: SIZE, default: Fixed("9223372036854775807"), runtime: Dynamic,
        note: "Receive queue memory limit; Trireme's queues are bounded by count.", ..BASE },
    Spec { key: "gcs.recv_q_soft_limit", kind: FRACTION_BELOW_ONE, default: Fixed("0.25"), runtime: Dynamic,
        note: "Fraction of the hard limit where throttling starts; not implemented.", ..BASE },
    Spec { key: "gcs.stateless", kind: Kind::Bool,
        note: "Galera 4.23 option (MTR galera_sst_stateless sets it); no effect.", ..BASE },
    Spec { key: "gcs.sync_donor", kind: Kind::Bool, default: Fixed("no"), runtime: Dynamic,
        note: "Make a donor keep the cluster in flow control; not implemented.", ..BASE },
    Spec { key: "gcs.vote_policy", kind: int(0, 254),
        note: "Inconsistency voting policy; Trireme votes by majority (0, the default) whatever the value.", ..BASE },
    Spec { key: "gmcast.group", kind: Kind::String,
        note: "Group name Galera takes from the cluster address; not used.", ..BASE },
    Spec { key: "gmcast.isolate", kind: int(0, 2), runtime: Dynamic, support: Implemented,
        rendering: Rendering::NotListed,
        note: "1 cuts this node off from its peers, 2 makes it leave, 0 restores (MTR partition tests).", ..BASE },
    Spec { key: "gmcast.listen_addr", kind: Kind::Address, default: Derived(Derivation::ListenAddr),
        support: Implemented, rendering: Normalized,
        note: "Address replication traffic is accepted on.", ..BASE },
    Spec { key: "gmcast.mcast_addr", default: Fixed(""), rendering: Normalized,
        note: "UDP multicast address; Trireme uses TCP only.", ..BASE },
    Spec { key: "gmcast.mcast_port",
        note: "UDP multicast port; Trireme uses TCP only.", ..BASE },
    Spec { key: "gmcast.mcast_ttl", kind: int(1, 255), default: Fixed("1"), rendering: Normalized,
        note: "UDP multicast TTL; Trireme uses TCP only.", ..BASE },
    Spec { key: "gmcast.mira", kind: INT32, runtime: Dynamic,
        note: "Initial reconnect attempts to unreachable peers; not implemented.", ..BASE },
    Spec { key: "gmcast.peer_addr", kind: Kind::PeerOp, runtime: Action,
        note: "add:/del: a peer address at run time; reported to the caller, not acted on yet.", ..BASE },
    Spec { key: "gmcast.peer_timeout", kind: DURATION, default: Fixed("PT3S"), rendering: Normalized,
        note: "Connection handshake timeout; Trireme uses evs.suspect_timeout.", ..BASE },
    Spec { key: "gmcast.segment", kind: int(0, 254), default: Fixed("0"), support: Implemented, rendering: Normalized,
        note: "WAN segment of this node, shown as wsrep_gmcast_segment.", ..BASE },
    Spec { key: "gmcast.time_wait", kind: DURATION, default: Fixed("PT5S"), rendering: Normalized,
        note: "Wait before reconnecting to a peer that left; not implemented.", ..BASE },
    Spec { key: "gmcast.version", kind: int(0, 0), default: Fixed("0"), rendering: Normalized,
        note: "GMCast protocol version; Trireme speaks its own protocol.", ..BASE },
    Spec { key: "ist.keep_keys", kind: Kind::Bool,
        note: "Hidden Galera option (send keys with IST); Trireme always sends whole writesets.", ..BASE },
    Spec { key: "ist.recv_addr", kind: Kind::Address, default: Derived(Derivation::NodeHost), support: Implemented,
        note: "Address donors send IST to; port base_port + 1 when none is given.", ..BASE },
    Spec { key: "ist.recv_bind", kind: Kind::Address, support: Implemented,
        note: "Address the IST receiver binds to when it differs from ist.recv_addr (NAT).", ..BASE },
    Spec { key: "pc.announce_timeout", kind: DURATION, default: Fixed("PT3S"),
        note: "Galera's primary-component announce wait; raft elections use trireme.election_timeout.", ..BASE },
    Spec { key: "pc.bootstrap", kind: Kind::Bool, runtime: Action, support: Implemented,
        note: "Make this non-primary component primary (after quorum loss); true only.", ..BASE },
    Spec { key: "pc.checksum", kind: Kind::Bool, default: Fixed("false"), rendering: Normalized,
        note: "Checksums on PC messages; every Trireme frame is checksummed anyway.", ..BASE },
    Spec { key: "pc.ignore_quorum", kind: Kind::Bool, default: Fixed("false"), runtime: Dynamic, support: Implemented,
        rendering: Normalized,
        note: "Stay primary after losing quorum, as pc.ignore_sb does (split brain is the user's risk).", ..BASE },
    Spec { key: "pc.ignore_sb", kind: Kind::Bool, default: Fixed("false"), runtime: Dynamic, support: Implemented,
        rendering: Normalized,
        note: "Stay primary after an even split (split brain, for two-node tests).", ..BASE },
    Spec { key: "pc.linger", kind: DURATION, default: Fixed("PT20S"), rendering: Normalized,
        note: "How long a leaving node lingers; not implemented.", ..BASE },
    Spec { key: "pc.npvo", kind: Kind::Bool, default: Fixed("false"), rendering: Normalized,
        note: "Primary-view override on conflicting primaries; not applicable to raft.", ..BASE },
    Spec { key: "pc.recovery", kind: Kind::Bool, default: Fixed("true"), support: Implemented, rendering: Normalized,
        note: "Restore the primary component from gvwstate.dat after a whole-cluster crash.", ..BASE },
    Spec { key: "pc.version", kind: int(0, 255), default: Fixed("0"),
        note: "PC protocol version; Trireme speaks its own protocol.", ..BASE },
    Spec { key: "pc.wait_prim", kind: Kind::Bool, default: Fixed("true"),
        note: "Wait for a primary component at startup; Trireme always does.", ..BASE },
    Spec { key: "pc.wait_prim_timeout", kind: DURATION, default: Fixed("PT30S"), support: Implemented,
        note: "How long connect waits for a primary component.", ..BASE },
    Spec { key: "pc.weight", kind: int(0, 255), default: Fixed("1"), runtime: Dynamic,
        rendering: Normalized, support: Implemented,
        note: "Weight in quorums: a component is primary if it weighs over half; changed in steps of 1.", ..BASE },
    Spec { key: "protonet.backend", kind: Kind::Enum(&["asio"]), default: Fixed("asio"),
        note: "Galera's network backend; Trireme's is trireme.transport.", ..BASE },
    Spec { key: "protonet.version", kind: int(0, 0), default: Fixed("0"),
        note: "Galera's network protocol version.", ..BASE },
    Spec { key: "repl.causal_read_timeout", kind: DURATION, default: Fixed("PT30S"), runtime: Dynamic,
        support: Implemented,
        note: "How long a causal read (wsrep_sync_wait) may wait.", ..BASE },
    Spec { key: "repl.commit_order", kind: int(0, 3), default: Fixed("3"),
        note: "Galera's commit-order relaxations; Trireme always commits in total order (mode 3).", ..BASE },
    Spec { key: "repl.key_format", kind: Kind::Enum(&["FLAT8", "FLAT8A", "FLAT16", "FLAT16A"]),
        default: Fixed("FLAT8"), runtime: Dynamic,
        note: "Galera's key hash width; Trireme always uses 128-bit key hashes.", ..BASE },
    Spec { key: "repl.max_ws_size", kind: int(1, i32::MAX as i64), default: Fixed("2147483647"), runtime: Dynamic,
        support: Implemented, rendering: Normalized,
        note: "Largest writeset in bytes (capped at the 1 GiB Trireme frame limit); MariaDB reads it back.", ..BASE },
    Spec { key: "repl.proto_max", kind: int(0, 11), default: Fixed("11"),
        note: "Highest Galera replication protocol; Trireme speaks its own protocol.", ..BASE },
    Spec { key: "signal", runtime: Action,
        note: "Debug-sync signal of debug Galera builds; reported, no effect.", ..BASE },
    Spec { key: "socket.checksum", kind: int(0, 2), default: Fixed("2"), rendering: Normalized,
        note: "Galera's frame checksum type; Trireme frames always carry xxh3 checksums.", ..BASE },
    Spec { key: "socket.dynamic", kind: Kind::Bool,
        note: "Accept both TCP and SSL peers; TLS is not implemented.", ..BASE },
    Spec { key: "socket.non_blocking", kind: Kind::Bool,
        note: "Galera socket mode; Trireme sockets are always non-blocking.", ..BASE },
    Spec { key: "socket.recv_buf_size", kind: Kind::SizeOrAuto, default: Fixed("auto"), runtime: Dynamic,
        note: "SO_RCVBUF of replication sockets; the kernel default is used.", ..BASE },
    Spec { key: "socket.send_buf_size", kind: Kind::SizeOrAuto, default: Fixed("auto"),
        note: "SO_SNDBUF of replication sockets; the kernel default is used.", ..BASE },
    Spec { key: "socket.ssl", kind: Kind::Bool,
        note: "Enable TLS between nodes; validated, TLS is not implemented.", ..BASE },
    Spec { key: "socket.ssl_ca", kind: Kind::Path,
        note: "CA file for TLS; TLS is not implemented.", ..BASE },
    Spec { key: "socket.ssl_cert", kind: Kind::Path,
        note: "Certificate file for TLS; TLS is not implemented.", ..BASE },
    Spec { key: "socket.ssl_cipher", kind: Kind::String,
        note: "TLS cipher list; TLS is not implemented.", ..BASE },
    Spec { key: "socket.ssl_compression", kind: Kind::Bool, deprecated: true,
        note: "TLS compression (deprecated in Galera, never effective).", ..BASE },
    Spec { key: "socket.ssl_key", kind: Kind::Path,
        note: "Private key file for TLS; TLS is not implemented.", ..BASE },
    Spec { key: "socket.ssl_password_file", kind: Kind::Path,
        note: "Password file of the TLS key; TLS is not implemented.", ..BASE },
    Spec { key: "socket.ssl_reload", kind: Kind::Bool, runtime: Action,
        note: "Reload TLS certificates (FLUSH SSL sends it); reported, TLS is not implemented.", ..BASE },
    Spec { key: "trireme.batch_max_bytes", kind: Kind::Size { min: 4 << 10, max: 256 << 20 }, default: Fixed("1M"),
        support: Implemented,
        note: "Largest batch of writesets proposed to the group in one raft entry.", ..BASE },
    Spec { key: "trireme.election_timeout", kind: Kind::Duration { min: Duration::from_millis(10), max: Duration::from_secs(600) },
        default: Fixed("PT1S"), support: Implemented, rendering: Normalized,
        note: "Raft election timeout: how long followers wait for the leader before electing.", ..BASE },
    Spec { key: "trireme.extended_status", kind: Kind::Bool, default: Fixed("no"), runtime: Dynamic,
        support: Implemented,
        note: "Add Trireme's latency histograms (wsrep_trireme_*) after Galera's status variables.", ..BASE },
    Spec { key: "trireme.pinning", kind: Kind::CoreList, default: Fixed("none"), support: Implemented,
        rendering: Normalized,
        note: "Pin shard threads: none, auto, or a list of core ids.", ..BASE },
    Spec { key: "trireme.profile", kind: Kind::Enum(PROFILE_NAMES), default: Fixed("default"), support: Implemented,
        rendering: Normalized,
        note: "Tuning profile (default, latency, throughput, small-vm), see the tuning crate.", ..BASE },
    Spec { key: "trireme.shards", kind: Kind::CountOrAuto { min: 1, max: 64 }, default: Fixed("auto"),
        support: Implemented, rendering: Normalized,
        note: "Shard threads; auto (or 0) is 1 up to 4 CPUs, else CPUs / 4, at most 8.", ..BASE },
    Spec { key: "trireme.spin_budget_us", kind: int(0, 1_000_000), default: Fixed("50"), support: Implemented,
        rendering: Normalized,
        note: "How long an idle shard spins before parking, in microseconds.", ..BASE },
    Spec { key: "trireme.transport", kind: Kind::Enum(TransportChoice::NAMES), default: Fixed("auto"),
        support: Implemented, rendering: Normalized,
        note: "Network path: auto (io_uring if allowed), io_uring, or portable (poll).", ..BASE },
];

/// Index of `key` in [`REGISTRY`]. Keys are case-sensitive, as in Galera.
pub(crate) fn index_of(key: &str) -> Option<usize> {
    REGISTRY.binary_search_by(|spec| spec.key.cmp(key)).ok()
}

/// The known key closest to a mistyped one: same key in another case, or a key at most
/// two single-character edits away (`evs.suspekt_timeout`).
pub(crate) fn suggestion_for(key: &str) -> Option<&'static str> {
    if let Some(spec) = REGISTRY.iter().find(|s| s.key.eq_ignore_ascii_case(key)) {
        return Some(spec.key);
    }
    // Long inputs are not typos of a key; skip them rather than spend time on them.
    if key.len() > 64 {
        return None;
    }
    REGISTRY
        .iter()
        .map(|s| (edit_distance(key, s.key), s.key))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitution.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// One row of the option table ([`table`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OptionInfo {
    pub key: &'static str,
    pub kind: Kind,
    /// The default as Galera prints it, or how it is derived (e.g. "host of
    /// wsrep_node_address"); empty for options that have no value until set.
    pub default: String,
    /// Whether `options_get` shows the option when nobody set it.
    pub shown_by_default: bool,
    /// Whether a run-time `SET` may change it (true for actions too).
    pub dynamic: bool,
    /// Whether it is a one-shot request rather than a setting.
    pub action: bool,
    pub support: Support,
    pub deprecated: bool,
    pub note: &'static str,
}

/// Every option, in key order, for documentation and tooling.
pub fn table() -> Vec<OptionInfo> {
    REGISTRY
        .iter()
        .map(|spec| OptionInfo {
            key: spec.key,
            kind: spec.kind,
            default: match spec.default {
                Fixed(text) => text.to_string(),
                Derived(d) => d.describe().to_string(),
                Unset => String::new(),
            },
            shown_by_default: !matches!(spec.default, Unset),
            dynamic: spec.runtime != Runtime::Startup,
            action: spec.runtime == Action,
            support: spec.support,
            deprecated: spec.deprecated,
            note: spec.note,
        })
        .collect()
}

/// The option table as Markdown, for README files: option, default, run time, support, note.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| option | default | run time | support | note |\n|---|---|---|---|---|\n");
    for (info, spec) in table().iter().zip(REGISTRY) {
        let default = match spec.default {
            Fixed("") => "(empty)".to_string(),
            Fixed(text) => format!("`{text}`"),
            Derived(_) => info.default.clone(),
            Unset => "(not set)".to_string(),
        };
        let runtime = match spec.runtime {
            Runtime::Startup => "no",
            Dynamic => "yes",
            Action => "action",
        };
        let support = match info.support {
            Implemented => "implemented",
            Support::Accepted => "accepted",
        };
        let deprecated = if info.deprecated { " Deprecated." } else { "" };
        out.push_str(&format!(
            "| `{}` | {default} | {runtime} | {support} | {}{deprecated} |\n",
            info.key, info.note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_sorted_by_key_without_duplicates() {
        for pair in REGISTRY.windows(2) {
            assert!(
                pair[0].key < pair[1].key,
                "'{}' must sort before '{}'",
                pair[0].key,
                pair[1].key
            );
        }
    }

    #[test]
    fn every_entry_has_a_key_and_a_one_line_note() {
        for spec in REGISTRY {
            assert!(!spec.key.is_empty());
            assert!(!spec.note.is_empty(), "{}", spec.key);
            assert!(
                !spec.note.contains('\n') && !spec.note.contains('|'),
                "{}",
                spec.key
            );
            assert!(spec.note.len() <= 110, "{} note is too long", spec.key);
        }
    }

    #[test]
    fn every_fixed_default_parses_with_its_own_kind() {
        for spec in REGISTRY {
            if let Fixed(text) = spec.default {
                assert!(
                    spec.kind.parse(text).is_ok(),
                    "{} default {text:?}",
                    spec.key
                );
            }
        }
    }

    #[test]
    fn normalized_defaults_are_already_in_canonical_form() {
        // So a fresh node prints exactly the fixed text Galera prints.
        for spec in REGISTRY {
            if let (Fixed(text), Normalized) = (spec.default, spec.rendering) {
                let canonical = spec.kind.parse(text).map(|v| v.canonical());
                assert_eq!(canonical.as_deref(), Ok(text), "{}", spec.key);
            }
        }
    }

    #[test]
    fn lookup_is_case_sensitive_like_galera() {
        assert!(index_of("pc.weight").is_some());
        assert!(index_of("PC.WEIGHT").is_none());
        assert!(index_of("").is_none());
        assert_eq!(suggestion_for("PC.WEIGHT"), Some("pc.weight"));
    }

    #[test]
    fn typos_get_the_nearest_key_as_suggestion() {
        assert_eq!(
            suggestion_for("evs.suspekt_timeout"),
            Some("evs.suspect_timeout")
        );
        assert_eq!(suggestion_for("gmcasts.segment"), Some("gmcast.segment"));
        assert_eq!(suggestion_for("gcache.sise"), Some("gcache.size"));
        assert_eq!(suggestion_for("completely.unrelated"), None);
        assert_eq!(suggestion_for(&"x".repeat(10_000)), None);
    }

    #[test]
    fn markdown_table_has_one_row_per_option() {
        let md = markdown_table();
        assert_eq!(md.lines().count(), REGISTRY.len() + 2);
        assert!(md.contains("| `gcache.size` | `128M` | no | implemented |"));
        assert!(md.contains("| `pc.bootstrap` | (not set) | action | implemented |"));
        assert!(md.contains("| `gcomm.thread_prio` | (empty) | no | accepted |"));
    }
}
