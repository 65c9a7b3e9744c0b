//! Delivery tuning (outbox size, retry backoff, queue bound).

use std::time::Duration;

/// Delivery tuning; the defaults suit production.
#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// Entries kept per receiver while it is unreachable; the oldest are dropped beyond this.
    pub outbox_capacity: usize,
    /// First retry delay.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Alert batches waiting for the dispatcher beyond which [`super::Notifier::send`] drops batches
    /// (the evaluator sends firing alerts again at its next resend).
    pub max_queued_batches: usize,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            outbox_capacity: 10_000,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_queued_batches: 10_000,
        }
    }
}
