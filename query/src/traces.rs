//! Whole traces out of the `spans` table, for the trace APIs (Tempo, and next Jaeger).
//!
//! [`fetch_trace`] reads one trace's spans with one pruned scan (the `trace_id` predicate skips
//! every segment, row group and page that cannot hold it; the optional time range skips whole
//! partitions) and [`otlp::to_traces_data`] turns the rows back into OTLP `TracesData`: spans
//! grouped under their resource and scope as they were sent, attributes with their original types
//! (from the `<map>_types` columns), events, links, status, trace state and flags.

pub mod otlp;

use lumen_storage::schema::TIME_COLUMN;
use opentelemetry_proto::tonic::trace::v1::TracesData;

use crate::error::QueryError;
use crate::sql::session::QueryEngine;

/// A trace id: 16 bytes, written as 32 hex digits.
pub type TraceId = [u8; 16];

/// Parses a trace id as the trace APIs take it: 1 to 32 hex digits, either case; shorter ids are
/// left-padded with zeros (Tempo and Jaeger accept 64-bit ids that way). `None` for anything else.
pub fn parse_trace_id(text: &str) -> Option<TraceId> {
    let text = text.trim();
    if text.is_empty() || text.len() > 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = format!("{:0>32}", text.to_ascii_lowercase());
    let mut id = [0u8; 16];
    hex::decode_to_slice(padded, &mut id).ok()?;
    (id != [0u8; 16]).then_some(id)
}

/// An optional time window for a trace lookup, in Unix nanoseconds (inclusive): the spans that
/// overlap it are returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TraceWindow {
    /// Spans ending at or after this time.
    pub start_ns: Option<i64>,
    /// Spans starting at or before this time.
    pub end_ns: Option<i64>,
}

/// The spans of one trace as OTLP, or `None` when no span of it is stored (in the window).
pub async fn fetch_trace(
    engine: &QueryEngine,
    id: &TraceId,
    window: TraceWindow,
) -> Result<Option<TracesData>, QueryError> {
    let mut sql = format!("SELECT * FROM spans WHERE trace_id = '{}'", hex::encode(id));
    // The id is hex and the bounds are integers: nothing user-typed reaches the text.
    if let Some(start) = window.start_ns {
        sql.push_str(&format!(" AND end_time >= to_timestamp_nanos({start})"));
    }
    if let Some(end) = window.end_ns {
        sql.push_str(&format!(" AND {TIME_COLUMN} <= to_timestamp_nanos({end})"));
    }
    sql.push_str(&format!(" ORDER BY {TIME_COLUMN}"));
    let output = engine.sql(&sql).await?;
    if output.num_rows() == 0 {
        return Ok(None);
    }
    otlp::to_traces_data(&output.batches).map(Some)
}

#[cfg(test)]
mod tests;
