//! `lumen traces` and `lumen trace`: traces at the terminal, through a running server's Tempo API.
//!
//! - `lumen traces '<TraceQL>'` runs a search (`/api/search`) and prints the matching traces as a
//!   table, newest first: id, start, duration, root service and name, spans matched.
//! - `lumen trace <id>` fetches one trace (`/api/v2/traces/<id>`) and prints its waterfall: the
//!   span tree indented under its root, each span's service, name, offset from the trace's start,
//!   duration, a bar placing it in the trace, and its status.

use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use serde_json::Value;

use crate::cli_text::{Utc, percent_encode};

/// Flags of `lumen traces`.
#[derive(clap::Args, Debug)]
pub struct TracesArgs {
    /// The TraceQL query, e.g. '{ resource.service.name = "payment" && status = error }'.
    #[arg(default_value = "{}")]
    pub query: String,
    /// How far back to search, e.g. 15m, 1h, 2d (ignored with --start/--end).
    #[arg(long, default_value = "1h", value_parser = parse_since)]
    pub since: Duration,
    /// Start of the search window, Unix seconds.
    #[arg(long)]
    pub start: Option<i64>,
    /// End of the search window, Unix seconds (default: now).
    #[arg(long)]
    pub end: Option<i64>,
    /// Traces listed at most.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Base URL of the Lumen server.
    #[arg(long, env = "LUMEN_SERVER", default_value = crate::DEFAULT_SERVER)]
    pub server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Flags of `lumen trace`.
#[derive(clap::Args, Debug)]
pub struct TraceArgs {
    /// The trace id: up to 32 hex digits.
    pub id: String,
    /// Base URL of the Lumen server.
    #[arg(long, env = "LUMEN_SERVER", default_value = crate::DEFAULT_SERVER)]
    pub server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How the trace commands print.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table (`traces`) or a waterfall (`trace`).
    Table,
    /// The server's JSON answer, as sent.
    Json,
}

fn parse_since(text: &str) -> Result<Duration, String> {
    lumen_storage::duration::parse_seconds_or_duration(text).map_err(|e| e.to_string())
}

/// GETs `path` and returns the body, or prints the server's error and returns `None`.
async fn fetch(server: &str, path: &str) -> anyhow::Result<Result<String, String>> {
    let response = reqwest::Client::new()
        .get(format!("{server}{path}"))
        .send()
        .await
        .with_context(|| format!("cannot reach Lumen at {server}; is `lumen serve` running there? (pass --server to use another address)"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .context("the server closed the connection mid-answer")?;
    if status.is_success() {
        Ok(Ok(body))
    } else {
        Ok(Err(format!("HTTP {}: {}", status.as_u16(), body.trim())))
    }
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Runs `lumen traces`.
pub async fn run_traces(args: TracesArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.trim_end_matches('/');
    let end = args.end.unwrap_or_else(now_s);
    let start = args
        .start
        .unwrap_or(end - args.since.as_secs().max(1) as i64);
    let path = format!(
        "/api/search?q={}&start={start}&end={end}&limit={}",
        percent_encode(&args.query),
        args.limit
    );
    let body = match fetch(server, &path).await? {
        Ok(body) => body,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.format == Format::Json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let answer: Value = serde_json::from_str(&body)
        .with_context(|| format!("{server} answered with a body that is not a search answer"))?;
    print!("{}", render_traces(&answer));
    Ok(ExitCode::SUCCESS)
}

/// The search answer as a table.
pub fn render_traces(answer: &Value) -> String {
    let traces = answer["traces"].as_array().cloned().unwrap_or_default();
    if traces.is_empty() {
        return "no traces match\n".into();
    }
    let mut rows = vec![vec![
        "TRACE ID".to_string(),
        "START (UTC)".into(),
        "DURATION".into(),
        "ROOT SERVICE".into(),
        "ROOT NAME".into(),
        "MATCHED".into(),
    ]];
    for trace in &traces {
        let start_ns: i64 = trace["startTimeUnixNano"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        // Summed over the span sets: `by(…)` splits one trace's matches over several.
        let matched: u64 = trace["spanSets"]
            .as_array()
            .map(|sets| sets.iter().filter_map(|set| set["matched"].as_u64()).sum())
            .unwrap_or(0);
        rows.push(vec![
            trace["traceID"].as_str().unwrap_or_default().to_owned(),
            utc(start_ns),
            format_ms(trace["durationMs"].as_f64().unwrap_or(0.0)),
            text_or(&trace["rootServiceName"], "<root not yet received>"),
            text_or(&trace["rootTraceName"], ""),
            matched.to_string(),
        ]);
    }
    let mut out = table(&rows);
    out.push_str(&format!("{} traces\n", traces.len()));
    out
}

fn text_or(value: &Value, default: &str) -> String {
    match value.as_str() {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => default.to_owned(),
    }
}

/// Columns padded to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// `2026-12-07 23:59:01.123` from Unix nanoseconds.
fn utc(ns: i64) -> String {
    let t = Utc::from_millis(ns.div_euclid(1_000_000));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millisecond
    )
}

fn format_ms(ms: f64) -> String {
    if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1_000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// Runs `lumen trace`.
pub async fn run_trace(args: TraceArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.trim_end_matches('/');
    let id = args.id.trim();
    let body = match fetch(server, &format!("/api/v2/traces/{}", percent_encode(id))).await? {
        Ok(body) => body,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.format == Format::Json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let answer: Value = serde_json::from_str(&body)
        .with_context(|| format!("{server} answered with a body that is not a trace"))?;
    print!("{}", render_waterfall(&answer["trace"], 40));
    Ok(ExitCode::SUCCESS)
}

/// One span, read from OTLP/JSON.
struct SpanRow {
    id: String,
    parent: String,
    service: String,
    name: String,
    start_ns: i64,
    end_ns: i64,
    status: &'static str,
}

fn nanos(value: &Value) -> i64 {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_i64())
        .unwrap_or(0)
}

fn status(value: &Value) -> &'static str {
    match &value["code"] {
        Value::Number(n) if n.as_i64() == Some(2) => "error",
        Value::Number(n) if n.as_i64() == Some(1) => "ok",
        Value::String(s) if s == "STATUS_CODE_ERROR" => "error",
        Value::String(s) if s == "STATUS_CODE_OK" => "ok",
        _ => "",
    }
}

fn spans_of(trace: &Value) -> Vec<SpanRow> {
    let mut spans = Vec::new();
    for resource_spans in trace["resourceSpans"].as_array().into_iter().flatten() {
        let service = resource_spans["resource"]["attributes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|kv| kv["key"] == "service.name")
            .and_then(|kv| kv["value"]["stringValue"].as_str())
            .unwrap_or("unknown_service")
            .to_owned();
        for scope_spans in resource_spans["scopeSpans"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for span in scope_spans["spans"].as_array().into_iter().flatten() {
                spans.push(SpanRow {
                    id: span["spanId"].as_str().unwrap_or_default().to_owned(),
                    parent: span["parentSpanId"].as_str().unwrap_or_default().to_owned(),
                    service: service.clone(),
                    name: span["name"].as_str().unwrap_or_default().to_owned(),
                    start_ns: nanos(&span["startTimeUnixNano"]),
                    end_ns: nanos(&span["endTimeUnixNano"]),
                    status: status(&span["status"]),
                });
            }
        }
    }
    spans
}

/// The trace as an indented span tree with offsets, durations and a bar of `width` cells.
pub fn render_waterfall(trace: &Value, width: usize) -> String {
    let spans = spans_of(trace);
    if spans.is_empty() {
        return "the trace has no spans\n".into();
    }
    let start = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_ns).max().unwrap_or(start);
    let total = (end - start).max(1);
    let ids: HashMap<&str, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (i, span) in spans.iter().enumerate() {
        // A span whose parent is not in the trace is shown as a root.
        let parent = ids.get(span.parent.as_str()).copied().filter(|p| *p != i);
        children.entry(parent).or_default().push(i);
    }
    for list in children.values_mut() {
        list.sort_by_key(|i| (spans[*i].start_ns, spans[*i].name.clone()));
    }
    let mut order: Vec<(usize, usize)> = Vec::new();
    let mut seen = vec![false; spans.len()];
    fn walk(
        node: Option<usize>,
        depth: usize,
        children: &HashMap<Option<usize>, Vec<usize>>,
        seen: &mut [bool],
        order: &mut Vec<(usize, usize)>,
    ) {
        for &child in children.get(&node).into_iter().flatten() {
            if std::mem::replace(&mut seen[child], true) {
                continue;
            }
            order.push((child, depth));
            walk(Some(child), depth + 1, children, seen, order);
        }
    }
    walk(None, 0, &children, &mut seen, &mut order);
    // Spans in a parent cycle (bad data) still get listed.
    for (i, done) in seen.iter().enumerate() {
        if !done {
            order.push((i, 0));
        }
    }
    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|s| s.service.as_str()).collect();
    let trace_id = trace["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        .as_str()
        .unwrap_or_default();
    let mut rows = vec![vec![
        "SERVICE".to_string(),
        "SPAN".into(),
        "OFFSET".into(),
        "DURATION".into(),
        String::new(),
        "STATUS".into(),
    ]];
    for (i, depth) in order {
        let span = &spans[i];
        let offset = span.start_ns - start;
        let duration = (span.end_ns - span.start_ns).max(0);
        let from = (offset as f64 / total as f64 * width as f64).floor() as usize;
        let cells = ((duration as f64 / total as f64 * width as f64).round() as usize).max(1);
        let from = from.min(width - 1);
        let cells = cells.min(width - from);
        let bar = format!(
            "|{}{}{}|",
            " ".repeat(from),
            "█".repeat(cells),
            " ".repeat(width - from - cells)
        );
        let indent = if depth == 0 {
            String::new()
        } else {
            format!("{}└─ ", "   ".repeat(depth - 1))
        };
        rows.push(vec![
            span.service.clone(),
            format!("{indent}{}", span.name),
            format!("+{}", format_ms(offset as f64 / 1e6)),
            format_ms(duration as f64 / 1e6),
            bar,
            span.status.to_owned(),
        ]);
    }
    let mut out = format!(
        "trace {trace_id}: {} spans, {} services, {} from {}\n",
        spans.len(),
        services.len(),
        format_ms(total as f64 / 1e6),
        utc(start)
    );
    out.push_str(&table(&rows));
    out
}

#[cfg(test)]
mod tests;
