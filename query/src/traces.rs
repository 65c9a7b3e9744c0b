//! Whole traces out of the `spans` table, for the trace APIs (Tempo and Jaeger).
//!
//! [`fetch_trace`] reads one trace's spans with one pruned scan (the `trace_id` predicate skips
//! every segment, row group and page that cannot hold it; the optional time range skips whole
//! partitions) and [`otlp::to_traces_data`] turns the rows back into OTLP `TracesData`: spans
//! grouped under their resource and scope as they were sent, attributes with their original types
//! (from the `<map>_types` columns), events, links, status, trace state and flags.

pub mod otlp;

use std::collections::HashMap;

use arrow::array::{AsArray, RecordBatch};
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
    Ok(fetch_traces(engine, std::slice::from_ref(id), window)
        .await?
        .pop()
        .map(|(_, trace)| trace))
}

/// Trace ids looked up per scan by [`fetch_traces`].
const IDS_PER_SCAN: usize = 500;

/// The spans of several traces as OTLP, one `TracesData` per trace found (in the window), in
/// the order of `ids`. One scan per 500 ids: the `trace_id IN (…)` predicate prunes through the
/// bloom filters like an equality.
pub async fn fetch_traces(
    engine: &QueryEngine,
    ids: &[TraceId],
    window: TraceWindow,
) -> Result<Vec<(TraceId, TracesData)>, QueryError> {
    let mut rows: HashMap<String, Vec<RecordBatch>> = HashMap::new();
    for chunk in ids.chunks(IDS_PER_SCAN) {
        let list: Vec<String> = chunk
            .iter()
            .map(|id| format!("'{}'", hex::encode(id)))
            .collect();
        // The ids are hex and the bounds are integers: nothing user-typed reaches the text.
        let mut sql = format!(
            "SELECT * FROM spans WHERE trace_id IN ({})",
            list.join(", ")
        );
        if let Some(start) = window.start_ns {
            sql.push_str(&format!(" AND end_time >= to_timestamp_nanos({start})"));
        }
        if let Some(end) = window.end_ns {
            sql.push_str(&format!(" AND {TIME_COLUMN} <= to_timestamp_nanos({end})"));
        }
        sql.push_str(&format!(" ORDER BY trace_id, {TIME_COLUMN}"));
        let output = engine.sql(&sql).await?;
        for batch in &output.batches {
            split_by_trace(batch, &mut rows)?;
        }
    }
    let mut traces = Vec::with_capacity(rows.len());
    for id in ids {
        if let Some(batches) = rows.remove(&hex::encode(id)) {
            traces.push((*id, otlp::to_traces_data(&batches)?));
        }
    }
    Ok(traces)
}

/// Appends the runs of equal `trace_id` in `batch` (sorted by it) to `rows`.
fn split_by_trace(
    batch: &RecordBatch,
    rows: &mut HashMap<String, Vec<RecordBatch>>,
) -> Result<(), QueryError> {
    let ids = batch
        .column_by_name("trace_id")
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| QueryError::Internal("spans rows have no text trace_id".into()))?;
    let mut start = 0;
    while start < batch.num_rows() {
        let id = ids.value(start);
        let mut end = start + 1;
        while end < batch.num_rows() && ids.value(end) == id {
            end += 1;
        }
        rows.entry(id.to_owned())
            .or_default()
            .push(batch.slice(start, end - start));
        start = end;
    }
    Ok(())
}

/// A Go duration as Tempo's and Jaeger's search parameters take it (`100ms`, `1.5s`, `1h30m`,
/// `250us`; Go's `time.ParseDuration` grammar, not Prometheus's), in nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<i64, String> {
    let accepted = "write a duration such as 100ms, 1.5s or 1h30m";
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return Err(accepted.into());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let unit_len = rest[number_len..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len() - number_len);
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("{text:?}: {accepted}"))?;
        let scale = match &rest[number_len..number_len + unit_len] {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(format!("{text:?}: {accepted}")),
        };
        total += number * scale;
        rest = &rest[number_len + unit_len..];
    }
    if total > i64::MAX as f64 {
        return Err(format!("{text:?} is too long"));
    }
    Ok(total.round() as i64)
}

/// The wall clock in Unix nanoseconds (the default end of a search).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests;
