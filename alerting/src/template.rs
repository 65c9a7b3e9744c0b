//! Templates (placeholder).
