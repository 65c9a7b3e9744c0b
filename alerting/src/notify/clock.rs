//! The wall clock delivery stamps its records with.

/// Current wall-clock time, Unix ms.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
