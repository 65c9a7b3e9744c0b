//! `lumen alerts`: the active alerts of a running server (`/api/v1/alerts`), or with `--history`
//! the recent state changes (the `alerts` SQL table).

use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

/// Flags of `lumen alerts`.
#[derive(clap::Args, Debug)]
pub struct AlertsArgs {
    /// Show the latest state changes (pending, firing, resolved) instead of the active alerts.
    #[arg(long)]
    pub history: bool,
    /// How many state changes `--history` shows.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Base URL of the Lumen server.
    #[arg(long, env = "LUMEN_SERVER", default_value = crate::DEFAULT_SERVER)]
    pub server: String,
    /// Print the server's JSON answer as sent.
    #[arg(long)]
    pub json: bool,
}

/// Prints the alerts; exit status 1 when the server cannot be reached.
pub async fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.trim_end_matches('/');
    let client = reqwest::Client::new();
    let response = if args.history {
        let query = format!(
            "SELECT time, state, rule, labels, value, active_at FROM alerts ORDER BY time DESC LIMIT {}",
            args.limit
        );
        client.post(format!("{server}/api/v1/sql")).json(&serde_json::json!({ "query": query })).send().await
    } else {
        client.get(format!("{server}/api/v1/alerts")).send().await
    }
    .with_context(|| format!("cannot reach Lumen at {server}; is `lumen serve` running? (set --server or LUMEN_SERVER)"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("the server's answer is not JSON")?;
    if !status.is_success() {
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("unknown error");
        eprintln!("error: {message}");
        return Ok(ExitCode::FAILURE);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = if args.history {
        body.get("rows")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|row| {
                vec![
                    text(&row[0]),
                    text(&row[1]),
                    text(&row[2]),
                    labels(&row[3]),
                    text(&row[4]),
                ]
            })
            .collect()
    } else {
        body["data"]["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|alert| {
                let mut labels_only = alert["labels"].clone();
                let name = labels_only.get("alertname").map(text).unwrap_or_default();
                if let Some(map) = labels_only.as_object_mut() {
                    map.remove("alertname");
                }
                // The API writes values as Go does ("5e+01"); show them plainly.
                let value = text(&alert["value"]);
                let value = value.parse::<f64>().map_or(value, |v| v.to_string());
                vec![
                    text(&alert["state"]),
                    name,
                    labels(&labels_only),
                    text(&alert["activeAt"]),
                    value,
                ]
            })
            .collect()
    };
    let header: Vec<&str> = if args.history {
        vec!["time", "state", "rule", "labels", "value"]
    } else {
        vec!["state", "alertname", "labels", "active since", "value"]
    };
    if rows.is_empty() {
        println!(
            "{}",
            if args.history {
                "no alert state changes yet"
            } else {
                "no active alerts"
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    print_table(&header, &rows);
    Ok(ExitCode::SUCCESS)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn labels(value: &Value) -> String {
    match value.as_object() {
        Some(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={:?}", text(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        None => text(value),
    }
}

fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        line(row.clone());
    }
}
