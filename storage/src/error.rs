//! The storage engine's error type.

use std::time::Duration;

/// Errors returned by the storage engine.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The head is full (flushes are behind); the client should retry after the given delay.
    #[error("overloaded: {reason}; retry after {}s", retry_after.as_secs().max(1))]
    Overloaded {
        /// Why the write was refused.
        reason: String,
        /// How long the client should wait before retrying.
        retry_after: Duration,
    },
    /// The engine is shutting down and takes no more writes.
    #[error("shutting down")]
    ShuttingDown,
    /// A batch handed to the engine does not match the table's schema (a bug in the caller).
    #[error("batch does not match the {table} schema: {message}")]
    SchemaMismatch {
        /// The table written to.
        table: &'static str,
        /// What did not match.
        message: String,
    },
    /// A file the engine owns could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What the engine was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Arrow encoding or decoding failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Parquet encoding or decoding failed.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// The manifest could not be parsed.
    #[error("manifest {path}: {message}")]
    Manifest {
        /// The manifest's path.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl StorageError {
    /// Wraps an I/O error with what the engine was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the client may retry the same write later (overload, shutdown).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Overloaded { .. } | StorageError::ShuttingDown
        )
    }
}

/// Result alias for the storage engine.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
