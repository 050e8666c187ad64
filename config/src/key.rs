//! Names of the options other crates ask about, so a typo is a compile error instead of a
//! silent miss. A test checks every constant against the registry.

pub const BASE_DIR: &str = "base_dir";
pub const BASE_HOST: &str = "base_host";
pub const BASE_PORT: &str = "base_port";
pub const CERT_LOG_CONFLICTS: &str = "cert.log_conflicts";
pub const DBUG: &str = "dbug";
pub const DEBUG: &str = "debug";
pub const EVS_AUTO_EVICT: &str = "evs.auto_evict";
pub const EVS_CAUSAL_KEEPALIVE_PERIOD: &str = "evs.causal_keepalive_period";
pub const EVS_EVICT: &str = "evs.evict";
pub const EVS_INACTIVE_CHECK_PERIOD: &str = "evs.inactive_check_period";
pub const EVS_INACTIVE_TIMEOUT: &str = "evs.inactive_timeout";
pub const EVS_INSTALL_TIMEOUT: &str = "evs.install_timeout";
pub const EVS_KEEPALIVE_PERIOD: &str = "evs.keepalive_period";
pub const EVS_SEND_WINDOW: &str = "evs.send_window";
pub const EVS_SUSPECT_TIMEOUT: &str = "evs.suspect_timeout";
pub const EVS_USER_SEND_WINDOW: &str = "evs.user_send_window";
pub const GCACHE_DIR: &str = "gcache.dir";
pub const GCACHE_NAME: &str = "gcache.name";
pub const GCACHE_PAGE_SIZE: &str = "gcache.page_size";
pub const GCACHE_RECOVER: &str = "gcache.recover";
pub const GCACHE_SIZE: &str = "gcache.size";
pub const GCS_FC_FACTOR: &str = "gcs.fc_factor";
pub const GCS_FC_LIMIT: &str = "gcs.fc_limit";
pub const GMCAST_ISOLATE: &str = "gmcast.isolate";
pub const GMCAST_LISTEN_ADDR: &str = "gmcast.listen_addr";
pub const GMCAST_PEER_ADDR: &str = "gmcast.peer_addr";
pub const GMCAST_SEGMENT: &str = "gmcast.segment";
pub const IST_RECV_ADDR: &str = "ist.recv_addr";
pub const IST_RECV_BIND: &str = "ist.recv_bind";
pub const PC_BOOTSTRAP: &str = "pc.bootstrap";
pub const PC_IGNORE_QUORUM: &str = "pc.ignore_quorum";
pub const PC_IGNORE_SB: &str = "pc.ignore_sb";
pub const PC_RECOVERY: &str = "pc.recovery";
pub const PC_WAIT_PRIM_TIMEOUT: &str = "pc.wait_prim_timeout";
pub const PC_WEIGHT: &str = "pc.weight";
pub const REPL_CAUSAL_READ_TIMEOUT: &str = "repl.causal_read_timeout";
pub const REPL_MAX_WS_SIZE: &str = "repl.max_ws_size";
pub const SIGNAL: &str = "signal";
pub const SOCKET_DYNAMIC: &str = "socket.dynamic";
pub const SOCKET_SSL: &str = "socket.ssl";
pub const SOCKET_SSL_CERT: &str = "socket.ssl_cert";
pub const SOCKET_SSL_CIPHER: &str = "socket.ssl_cipher";
pub const SOCKET_SSL_KEY: &str = "socket.ssl_key";
pub const SOCKET_SSL_RELOAD: &str = "socket.ssl_reload";
pub const TRIREME_BATCH_MAX_BYTES: &str = "trireme.batch_max_bytes";
pub const TRIREME_ELECTION_TIMEOUT: &str = "trireme.election_timeout";
pub const TRIREME_PINNING: &str = "trireme.pinning";
pub const TRIREME_PROFILE: &str = "trireme.profile";
pub const TRIREME_EXTENDED_STATUS: &str = "trireme.extended_status";
pub const TRIREME_SHARDS: &str = "trireme.shards";
pub const TRIREME_SPIN_BUDGET_US: &str = "trireme.spin_budget_us";
pub const TRIREME_TRANSPORT: &str = "trireme.transport";

/// Every constant above, for the test that checks them against the registry.
#[cfg(test)]
pub(crate) const ALL: &[&str] = &[
    BASE_DIR,
    BASE_HOST,
    BASE_PORT,
    CERT_LOG_CONFLICTS,
    DBUG,
    DEBUG,
    EVS_AUTO_EVICT,
    EVS_CAUSAL_KEEPALIVE_PERIOD,
    EVS_EVICT,
    EVS_INACTIVE_CHECK_PERIOD,
    EVS_INACTIVE_TIMEOUT,
    EVS_INSTALL_TIMEOUT,
    EVS_KEEPALIVE_PERIOD,
    EVS_SEND_WINDOW,
    EVS_SUSPECT_TIMEOUT,
    EVS_USER_SEND_WINDOW,
    GCACHE_DIR,
    GCACHE_NAME,
    GCACHE_PAGE_SIZE,
    GCACHE_RECOVER,
    GCACHE_SIZE,
    GCS_FC_FACTOR,
    GCS_FC_LIMIT,
    GMCAST_ISOLATE,
    GMCAST_LISTEN_ADDR,
    GMCAST_PEER_ADDR,
    GMCAST_SEGMENT,
    IST_RECV_ADDR,
    IST_RECV_BIND,
    PC_BOOTSTRAP,
    PC_IGNORE_QUORUM,
    PC_IGNORE_SB,
    PC_RECOVERY,
    PC_WAIT_PRIM_TIMEOUT,
    PC_WEIGHT,
    REPL_CAUSAL_READ_TIMEOUT,
    REPL_MAX_WS_SIZE,
    SIGNAL,
    SOCKET_DYNAMIC,
    SOCKET_SSL,
    SOCKET_SSL_CERT,
    SOCKET_SSL_CIPHER,
    SOCKET_SSL_KEY,
    SOCKET_SSL_RELOAD,
    TRIREME_BATCH_MAX_BYTES,
    TRIREME_ELECTION_TIMEOUT,
    TRIREME_EXTENDED_STATUS,
    TRIREME_PINNING,
    TRIREME_PROFILE,
    TRIREME_SHARDS,
    TRIREME_SPIN_BUDGET_US,
    TRIREME_TRANSPORT,
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_key_constant_names_a_registered_option() {
        for key in super::ALL {
            assert!(crate::registry::index_of(key).is_some(), "{key}");
        }
    }
}
