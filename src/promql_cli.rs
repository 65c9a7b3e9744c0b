//! `lumen promql`: runs a PromQL query against a running server's Prometheus API
//! (`/api/v1/query`, or `/api/v1/query_range` with `--start --end --step`) and prints the series
//! as a table (labels, timestamp, value), or the raw JSON answer with `--format json`.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use crate::cli_text::{Utc, percent_encode};

/// Flags of `lumen promql`.
#[derive(clap::Args, Debug)]
pub struct PromqlArgs {
    /// The PromQL expression, e.g. 'sum by (job) (rate(http_requests_total[5m]))'.
    pub query: String,
    /// Evaluation time of an instant query: Unix seconds or RFC 3339 (default: now).
    #[arg(long, conflicts_with_all = ["start", "end", "step"])]
    pub time: Option<String>,
    /// Start of a range query: Unix seconds or RFC 3339 (needs --end and --step).
    #[arg(long, requires_all = ["end", "step"])]
    pub start: Option<String>,
    /// End of a range query.
    #[arg(long, requires_all = ["start", "step"])]
    pub end: Option<String>,
    /// Step of a range query: seconds or a duration like 15s, 1m.
    #[arg(long, requires_all = ["start", "end"])]
    pub step: Option<String>,
    /// Base URL of the Lumen server.
    #[arg(long, env = "LUMEN_SERVER", default_value = crate::DEFAULT_SERVER)]
    pub server: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// How `lumen promql` prints results.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One row per sample: series labels, time, value.
    Table,
    /// The server's JSON answer, as sent.
    Json,
}

/// Runs the query and prints the answer; errors go to stderr with exit status 1.
pub async fn run(args: PromqlArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.trim_end_matches('/');
    let (path, mut form) = match (&args.start, &args.end, &args.step) {
        (Some(start), Some(end), Some(step)) => (
            "/api/v1/query_range",
            vec![
                ("start", start.clone()),
                ("end", end.clone()),
                ("step", step.clone()),
            ],
        ),
        _ => (
            "/api/v1/query",
            args.time.iter().map(|t| ("time", t.clone())).collect(),
        ),
    };
    form.push(("query", args.query.clone()));
    let response = reqwest::Client::new()
        .post(format!("{server}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&"))
        .send()
        .await
        .with_context(|| format!("cannot reach Lumen at {server}; is `lumen serve` running there? (pass --server to use another address)"))?;
    let status = response.status();
    let body = response
        .text()
        .await
        .context("the server closed the connection mid-answer")?;
    let parsed: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => anyhow::bail!(
            "{server} answered HTTP {} with a body that is not a Prometheus API answer (is it a Lumen server?): {}",
            status.as_u16(),
            body.trim()
        ),
    };
    if parsed["status"] != "success" {
        let kind = parsed["errorType"].as_str().unwrap_or("error");
        let message = parsed["error"].as_str().unwrap_or(body.as_str());
        let hint = match kind {
            "bad_data" => " (check the query syntax and the --time/--start/--end/--step values)",
            "timeout" => {
                " (narrow the time range or the selectors, or raise the server's --query-timeout)"
            }
            _ => "",
        };
        eprintln!("error: {kind}: {message}{hint}");
        return Ok(ExitCode::FAILURE);
    }
    if args.format == Format::Json {
        println!("{body}");
    } else {
        print!("{}", render(&parsed["data"]));
    }
    for key in ["warnings", "infos"] {
        for w in parsed[key].as_array().into_iter().flatten() {
            eprintln!(
                "{}: {}",
                key.trim_end_matches('s'),
                w.as_str().unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `{__name__="up", job="node"}` (Prometheus's series notation).
fn series_name(metric: &Value) -> String {
    let Some(map) = metric.as_object() else {
        return "{}".into();
    };
    let name = map.get("__name__").and_then(Value::as_str).unwrap_or("");
    let labels: Vec<String> = map
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap_or_default()))
        .collect();
    if labels.is_empty() && !name.is_empty() {
        name.to_string()
    } else {
        format!("{name}{{{}}}", labels.join(", "))
    }
}

/// Percent-encodes a form value (everything but unreserved characters).
/// Float Unix seconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn time_text(t: &Value) -> String {
    let secs = t.as_f64().unwrap_or(0.0);
    let ms = (secs * 1000.0).round() as i64;
    let t = Utc::from_millis(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millisecond
    )
}

/// Rows of `series | time | value`, aligned.
fn render(data: &Value) -> String {
    let mut rows: Vec<[String; 3]> = Vec::new();
    let point = |p: &Value| {
        (
            time_text(&p[0]),
            p[1].as_str().unwrap_or_default().to_string(),
        )
    };
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") | Some("string") => {
            let (t, v) = point(result);
            rows.push(["(scalar)".into(), t, v]);
        }
        Some("vector") => {
            for s in result.as_array().into_iter().flatten() {
                let (t, v) = point(&s["value"]);
                rows.push([series_name(&s["metric"]), t, v]);
            }
        }
        _ => {
            for s in result.as_array().into_iter().flatten() {
                let name = series_name(&s["metric"]);
                for p in s["values"].as_array().into_iter().flatten() {
                    let (t, v) = point(p);
                    rows.push([name.clone(), t, v]);
                }
            }
        }
    }
    if rows.is_empty() {
        return "(no series)\n".into();
    }
    let header = [
        "series".to_string(),
        "time".to_string(),
        "value".to_string(),
    ];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |r: &[String; 3]| {
        format!(
            "{:w0$} | {:w1$} | {}\n",
            r[0],
            r[1],
            r[2],
            w0 = widths[0],
            w1 = widths[1]
        )
    };
    let mut out = line(&header);
    out.push_str(&format!(
        "{}-+-{}-+-{}\n",
        "-".repeat(widths[0]),
        "-".repeat(widths[1]),
        "-".repeat(widths[2])
    ));
    for r in &rows {
        out.push_str(&line(r));
    }
    out.push_str(&format!(
        "({} sample{})\n",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests;
