//! The one error type of the testbed.
//!
//! Every variant names *who* failed (a node name such as `node1`, or `testbed` for
//! cluster-wide steps) and *what* was being done (the command line or the SQL text), and
//! carries the evidence needed to debug without re-running: the child's stderr, or the tail of
//! the node's error log. Tests print these errors verbatim, so they must be self-explanatory.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, starting, driving or stopping nodes.
#[derive(Debug, thiserror::Error)]
pub enum TestbedError {
    /// The spec cannot describe a working cluster (no nodes, ports overflow, ...).
    #[error("invalid cluster spec: {0}")]
    Spec(String),

    /// A node index beyond the cluster's size.
    #[error("no node {index}: the cluster has {nodes} node(s)")]
    NoSuchNode { index: usize, nodes: usize },

    /// Something the testbed needs is not there (a binary, the `mysql` account, root).
    #[error("prerequisite missing: {0}")]
    Prerequisite(String),

    /// A filesystem or process-spawn operation failed.
    #[error("{node}: {context}: {source}")]
    Io {
        node: String,
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// An external command exited unsuccessfully.
    #[error("{node}: `{command}` failed ({status}): {stderr}")]
    Command {
        node: String,
        command: String,
        status: String,
        stderr: String,
    },

    /// An external command did not finish in time and was killed (by its own PID).
    #[error(
        "{node}: `{command}` did not finish within {timeout:?} and was killed; stderr: {stderr}"
    )]
    CommandTimeout {
        node: String,
        command: String,
        timeout: Duration,
        stderr: String,
    },

    /// The server answered a query with an error (or the client could not connect).
    /// `code` is MariaDB's error number when the client printed one (e.g. 1047 when the node
    /// is not in a primary component, 1213 for a certification conflict).
    #[error("{node}: SQL `{query}` failed: {stderr}")]
    Sql {
        node: String,
        query: String,
        code: Option<u32>,
        stderr: String,
    },

    /// The server printed something the testbed could not interpret.
    #[error("{node}: cannot parse output of `{what}`: {detail}")]
    Parse {
        node: String,
        what: String,
        detail: String,
    },

    /// A node did not reach the awaited state in time.
    #[error("{node}: {what} not reached within {waited:?}; last observation: {last}\n{log}")]
    Timeout {
        node: String,
        what: String,
        waited: Duration,
        last: String,
        log: Box<LogTail>,
    },

    /// The server process exited while the testbed expected it to run.
    #[error("{node}: mariadbd (pid {pid}) exited unexpectedly ({status}) during {during}\n{log}")]
    ServerExited {
        node: String,
        pid: u32,
        status: String,
        during: String,
        log: Box<LogTail>,
    },

    /// A PID does not (or no longer) belong to the server the testbed started.
    #[error("{node}: pid {pid} is not our mariadbd ({detail}); refusing to signal it")]
    NotOurProcess {
        node: String,
        pid: u32,
        detail: String,
    },

    /// The operation needs a running server, and there is none.
    #[error("{node}: not running ({during})")]
    NotRunning { node: String, during: String },

    /// The operation needs a stopped server, and ours still runs.
    #[error("{node}: {during} needs the server stopped, but pid {pid} runs")]
    StillRunning {
        node: String,
        pid: u32,
        during: String,
    },

    /// `mariadbd --wsrep-recover` ran but did not report a position.
    #[error(
        "{node}: --wsrep-recover printed no `WSREP: Recovered position:` line; output:\n{output}"
    )]
    Recover { node: String, output: String },

    /// The cluster state file in the base dir is missing or malformed.
    #[error("state file {path}: {detail}")]
    State { path: PathBuf, detail: String },
}

/// The last lines of a node's error log, carried by errors as the evidence of what happened.
#[derive(Debug, Clone)]
pub struct LogTail {
    /// The error log.
    pub path: PathBuf,
    /// Its last lines.
    pub tail: String,
}

impl std::fmt::Display for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- tail of {} ---\n{}", self.path.display(), self.tail)
    }
}

/// The testbed's result type.
pub type Result<T, E = TestbedError> = std::result::Result<T, E>;

impl TestbedError {
    /// Wraps an I/O error with the node it concerns and the operation that failed.
    pub(crate) fn io(node: &str, context: impl Into<String>, source: std::io::Error) -> Self {
        TestbedError::Io {
            node: node.to_string(),
            context: context.into(),
            source,
        }
    }

    /// MariaDB's error number, when this is an SQL error that carried one.
    pub fn sql_code(&self) -> Option<u32> {
        match self {
            TestbedError::Sql { code, .. } => *code,
            _ => None,
        }
    }
}
