//! The harness's errors.

use trireme_testbed::TestbedError;

#[derive(Debug, thiserror::Error)]
pub enum PerfError {
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    #[error("SQL: {0}")]
    Sql(#[from] mysql::Error),
    #[error("{0}")]
    Run(String),
    #[error("usage: {0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl PerfError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PerfError::Io {
            what: what.into(),
            source,
        }
    }
}
