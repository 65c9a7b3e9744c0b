//! Conversion of decoded OTLP export requests into Arrow record batches in the storage schemas
//! (`lumen_storage::schema`).
//!
//! Each signal is converted in one pass, straight into Arrow builders: one row per span, log record
//! or metric data point, with the resource and scope columns repeated on every row. Items that fail
//! validation are skipped and counted (OTLP partial success); the valid rest of the request is kept.
//!
//! Text forms used for attribute values (and log bodies), so SQL users see them consistently:
//!
//! | `AnyValue`      | text                                                                    |
//! |-----------------|-------------------------------------------------------------------------|
//! | string          | as is                                                                   |
//! | bool            | `true` / `false`                                                        |
//! | int             | decimal                                                                 |
//! | double          | Rust's `{}` formatting of `f64`: shortest round-trip digits, no exponent (`5`, `637.704`, `NaN`, `inf`) |
//! | bytes           | base64, standard alphabet with padding                                  |
//! | array / kvlist  | compact JSON; nested values typed (`["a",1,true]`, `{"k":"v"}`); bytes as base64 strings, non-finite doubles as `"NaN"` / `"Infinity"` / `"-Infinity"`, empty values as `null` |
//! | empty           | null                                                                    |

mod common;
mod logs;
mod metrics;
mod spans;

use std::time::Duration;

use arrow::record_batch::RecordBatch;

pub use logs::logs;
pub use metrics::{metrics, series_id};
pub(crate) use spans::accepted_spans;
pub use spans::spans;

/// How many reasons a partial-success message lists before summarising the rest.
const MAX_MESSAGES: usize = 8;

/// Per-item limits applied while converting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Attributes kept per item; the rest are added to its `dropped_attributes_count`.
    pub max_attributes_per_item: usize,
    /// Items with a timestamp later than now plus this are rejected.
    pub max_future_skew: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        crate::IngestConfig::default().limits()
    }
}

/// The result of converting one export request.
#[derive(Debug, Default)]
pub struct Converted {
    /// The accepted items in the table's storage schema; `None` when no item was accepted.
    pub batch: Option<RecordBatch>,
    /// Items (spans, log records, data points) in `batch`.
    pub accepted: u64,
    /// Items rejected by validation.
    pub rejected: u64,
    /// The first few reasons for rejections and for trimmed attributes, each naming its item.
    pub messages: Vec<String>,
}

impl Converted {
    /// The text of the OTLP partial-success `error_message` (empty when there is nothing to report).
    pub fn message(&self) -> String {
        self.messages.join("; ")
    }
}

/// Counts accepted and rejected items and keeps the first few messages about them.
#[derive(Debug, Default)]
pub(crate) struct Report {
    accepted: u64,
    rejected: u64,
    messages: Vec<String>,
    omitted: u64,
}

impl Report {
    pub(crate) fn accept(&mut self) {
        self.accepted += 1;
    }

    /// Counts a rejected item; `message` is only formatted while there is room for it.
    pub(crate) fn reject(&mut self, message: impl FnOnce() -> String) {
        self.rejected += 1;
        self.note(message);
    }

    /// Records something the client should know about that is not a rejection.
    pub(crate) fn note(&mut self, message: impl FnOnce() -> String) {
        if self.messages.len() < MAX_MESSAGES {
            self.messages.push(message());
        } else {
            self.omitted += 1;
        }
    }

    pub(crate) fn finish(mut self, batch: Option<RecordBatch>) -> Converted {
        if self.omitted > 0 {
            self.messages.push(format!("and {} more", self.omitted));
        }
        Converted {
            batch,
            accepted: self.accepted,
            rejected: self.rejected,
            messages: self.messages,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
