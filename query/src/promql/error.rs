//! Errors of the PromQL engine, typed like Prometheus's HTTP API `errorType`.

/// A PromQL query failure.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PromqlError {
    /// The query does not parse or is semantically invalid, or a parameter is out of bounds
    /// (`bad_data`, HTTP 400).
    #[error("{0}")]
    BadData(String),
    /// The query parsed but failed while running (`execution`, HTTP 422): many-to-many
    /// matching, duplicate label sets, invalid function arguments, limits exceeded.
    #[error("{0}")]
    Execution(String),
    /// The series source failed (`internal`, HTTP 500).
    #[error("{0}")]
    Source(String),
    /// The evaluation passed its deadline and stopped (`timeout`, HTTP 503).
    #[error("{0}")]
    Timeout(String),
}

impl PromqlError {
    /// The Prometheus API `errorType` of this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            PromqlError::BadData(_) => "bad_data",
            PromqlError::Execution(_) => "execution",
            PromqlError::Source(_) => "internal",
            PromqlError::Timeout(_) => "timeout",
        }
    }
}

/// Shorthand for an execution error.
pub(crate) fn exec_err<T>(msg: impl Into<String>) -> Result<T, PromqlError> {
    Err(PromqlError::Execution(msg.into()))
}

/// Shorthand for a bad-data error.
pub(crate) fn bad_data<T>(msg: impl Into<String>) -> Result<T, PromqlError> {
    Err(PromqlError::BadData(msg.into()))
}

impl From<lumen_storage::segment::reader::OpenError> for PromqlError {
    /// A segment that cannot be opened: gone since the snapshot (compaction or retention removed
    /// it; the query may be retried), unreadable, or — for queries that may only use what is in
    /// memory — a footer not cached yet, which answers like a deadline passed.
    fn from(e: lumen_storage::segment::reader::OpenError) -> Self {
        use lumen_storage::segment::reader::OpenError;
        match e {
            OpenError::Missing(path) => PromqlError::Source(format!(
                "segment {} unavailable, retry the query",
                path.display()
            )),
            OpenError::NotCached(_) => PromqlError::Timeout(e.to_string()),
            OpenError::Unreadable { .. } => PromqlError::Source(e.to_string()),
        }
    }
}
