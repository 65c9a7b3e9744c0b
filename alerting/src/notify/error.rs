//! Why the notifier could not start.

use std::path::PathBuf;

/// Errors starting the notifier.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A receiver's configuration is not usable.
    #[error("alerting receiver {receiver:?}: {message}")]
    InvalidConfig {
        /// The receiver's name.
        receiver: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The notification directory cannot be read or written.
    #[error("notification state in {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// [`super::Notifier::start`] was called outside a tokio runtime.
    #[error("Notifier::start must be called inside a tokio runtime")]
    NoRuntime,
}
