//! What a provider call answers, in the wsrep API's terms, and the typed errors behind it.

use std::fmt;

/// `wsrep_status_t`, value for value. Every call into the replicator ends in one of these;
/// `ffi` passes the number through unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(i32)]
pub enum Status {
    Ok = 0,
    Warning = 1,
    TrxMissing = 2,
    /// Certification failed (or the trx must roll back): the client gets ER_LOCK_DEADLOCK.
    TrxFail = 3,
    /// The trx was brute-force aborted after it was ordered: the server replays it.
    BfAbort = 4,
    SizeExceeded = 5,
    /// Not connected to a primary component.
    ConnFail = 6,
    NodeFail = 7,
    Fatal = 8,
    NotImplemented = 9,
    NotAllowed = 10,
}

impl Status {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// Errors of provider-level operations (init, connect, options, state files). Each names
/// the situation; `status()` says what the server is told.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    Option(#[from] trireme_config::OptionError),
    #[error("provider is not connected")]
    NotConnected,
    #[error("provider is already connected; disconnect first")]
    AlreadyConnected,
    /// `wsrep_cluster_address` with a scheme other than gcomm:// (Galera's wording: MTR's
    /// suppressions and DBAs' log filters look for it).
    #[error("Backend not supported: {scheme}")]
    UnsupportedBackend { scheme: String },
    /// `wsrep_cluster_address` that is not a URI at all (e.g. 'NULL').
    #[error("Invalid backend URI: {address}")]
    InvalidUri { address: String },
    #[error(
        "It may not be safe to bootstrap the cluster from this node. It was not the last one to \
         leave the cluster and may not contain all the updates. To force cluster bootstrap with \
         this node, edit the grastate.dat file manually and set safe_to_bootstrap to 1 ."
    )]
    UnsafeBootstrap,
    #[error("state file {path}: {reason}")]
    StateFile { path: String, reason: String },
    #[error("runtime: {0}")]
    Runtime(#[from] trireme_runtime::RuntimeError),
    /// `evs.evict` naming this node itself.
    #[error("evs.evict: a node cannot evict itself ({node})")]
    EvictSelf { node: trireme_types::NodeId },
    #[error("{what} is not implemented yet in Trireme {version}")]
    NotImplemented {
        what: &'static str,
        version: &'static str,
    },
    #[error("{0}")]
    Other(String),
}

impl ProviderError {
    /// Galera's own follow-up line for a refused connect (`gcs connect failed: <strerror>`),
    /// for the errors Galera reports that way.
    pub fn gcs_line(&self) -> Option<&'static str> {
        match self {
            ProviderError::UnsupportedBackend { .. } => {
                Some("gcs connect failed: Socket type not supported")
            }
            ProviderError::InvalidUri { .. } => Some("gcs connect failed: Invalid argument"),
            _ => None,
        }
    }

    pub fn status(&self) -> Status {
        match self {
            ProviderError::NotConnected => Status::ConnFail,
            ProviderError::NotImplemented { .. } => Status::NotImplemented,
            // As Galera, a refused option is WSREP_NODE_FAIL too ("Set options returned 7").
            _ => Status::NodeFail,
        }
    }
}

/// A log-friendly rendering of a byte buffer coming from the server (error descriptions).
pub struct Printable<'a>(pub &'a [u8]);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(self.0);
        write!(f, "{}", text.trim_end_matches('\0'))
    }
}
