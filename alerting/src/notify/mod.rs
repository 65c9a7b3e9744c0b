//! Notification delivery (placeholder).
