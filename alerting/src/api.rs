//! `/api/v1/rules`, `/api/v1/alerts` (Prometheus's format, which Grafana reads) and
//! `POST /-/reload`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value as Json, json};

use crate::alert::rfc3339_ms;
use crate::group::GroupRuntime;
use crate::manager::{Manager, format_rule_errors};
use crate::rules::{RuleKind, RuleQuery};
use crate::state::{ActiveAlert, AlertState};
use lumen_storage::duration::format as format_duration;

/// The alerting routes.
pub fn router(manager: Arc<Manager>) -> Router {
    Router::new()
        .route("/api/v1/rules", get(rules))
        .route("/api/v1/alerts", get(alerts))
        .route("/-/reload", post(reload).put(reload))
        .with_state(manager)
}

/// A float as Prometheus's API formats alert values (Go's `strconv.FormatFloat(v, 'e', -1, 64)`).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let text = format!("{value:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

fn time_or_zero(ms: Option<i64>) -> String {
    match ms {
        Some(ms) => rfc3339_ms(ms),
        None => "0001-01-01T00:00:00Z".into(),
    }
}

fn alert_json(alert: &ActiveAlert) -> Json {
    let mut out = json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "state": alert.state.as_str(),
        "activeAt": rfc3339_ms(alert.active_at_ms),
        "value": format_value(alert.value),
    });
    if let Some(since) = alert.keep_firing_since_ms
        && let Some(map) = out.as_object_mut()
    {
        map.insert("keepFiringSince".into(), json!(rfc3339_ms(since)));
    }
    out
}

fn active(group: &GroupRuntime, index: usize) -> Vec<&ActiveAlert> {
    group
        .alerts(index)
        .map(|alerts| {
            alerts
                .active
                .values()
                .filter(|a| a.state != AlertState::Inactive)
                .collect()
        })
        .unwrap_or_default()
}

/// Query parameters that may repeat (`rule_name[]=a&rule_name[]=b`).
fn params(raw: Option<String>) -> Vec<(String, String)> {
    raw.map(|raw| lumen_query::promql::api::parse_urlencoded(&raw))
        .unwrap_or_default()
}

fn bad_data(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({"status": "error", "errorType": "bad_data", "error": message})),
    )
        .into_response()
}

async fn rules(State(manager): State<Arc<Manager>>, RawQuery(raw): RawQuery) -> Response {
    let params = params(raw);
    let pick = |name: &str| -> HashSet<String> {
        params
            .iter()
            .filter(|(k, _)| k == name || *k == format!("{name}[]"))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let kind = params
        .iter()
        .find(|(k, _)| k == "type")
        .map(|(_, v)| v.to_lowercase());
    let want_alerts = match kind.as_deref() {
        None | Some("") => None,
        Some("alert") => Some(true),
        Some("record") => Some(false),
        Some(other) => return bad_data(format!("unsupported type {other:?}: use alert or record")),
    };
    let names = pick("rule_name");
    let group_names = pick("rule_group");
    let files = pick("file");
    let exclude_alerts = params
        .iter()
        .any(|(k, v)| k == "exclude_alerts" && v == "true");
    let mut groups = Vec::new();
    for group in manager.groups() {
        if !group_names.is_empty() && !group_names.contains(&group.group.name) {
            continue;
        }
        let file = group.group.file.display().to_string();
        if !files.is_empty() && !files.contains(&file) {
            continue;
        }
        let mut rules = Vec::new();
        for (index, rule) in group.group.rules.iter().enumerate() {
            let is_alert = rule.kind == RuleKind::Alerting;
            if want_alerts.is_some_and(|want| want != is_alert)
                || (!names.is_empty() && !names.contains(&rule.name))
            {
                continue;
            }
            let health = &group.health[index];
            let (query, language) = match &rule.query {
                RuleQuery::Promql(expr) => (expr.clone(), "promql"),
                RuleQuery::Sql(sql) => (sql.clone(), "sql"),
            };
            let labels: serde_json::Map<String, Json> = rule
                .labels
                .iter()
                .map(|(k, t)| (k.clone(), json!(t.source())))
                .collect();
            let mut out = json!({
                "name": rule.name,
                "query": query,
                "queryLanguage": language,
                "labels": labels,
                "health": health.health,
                "lastError": health.last_error,
                "evaluationTime": health.evaluation_seconds,
                "lastEvaluation": time_or_zero(health.last_evaluation_ms),
                "type": if is_alert { "alerting" } else { "recording" },
            });
            if is_alert && let Some(map) = out.as_object_mut() {
                let alerts = active(&group, index);
                let state = if alerts.iter().any(|a| a.state == AlertState::Firing) {
                    "firing"
                } else if alerts.is_empty() {
                    "inactive"
                } else {
                    "pending"
                };
                let annotations: serde_json::Map<String, Json> = rule
                    .annotations
                    .iter()
                    .map(|(k, t)| (k.clone(), json!(t.source())))
                    .collect();
                map.insert("state".into(), json!(state));
                map.insert("duration".into(), json!(rule.for_duration.as_secs_f64()));
                map.insert(
                    "keepFiringFor".into(),
                    json!(rule.keep_firing_for.as_secs_f64()),
                );
                map.insert("annotations".into(), Json::Object(annotations));
                if !exclude_alerts {
                    map.insert(
                        "alerts".into(),
                        Json::Array(alerts.into_iter().map(alert_json).collect()),
                    );
                }
            }
            rules.push(out);
        }
        if rules.is_empty() && (want_alerts.is_some() || !names.is_empty()) {
            continue;
        }
        groups.push(json!({
            "name": group.group.name,
            "file": file,
            "rules": rules,
            "interval": group.interval.as_secs_f64(),
            "intervalText": format_duration(group.interval),
            "limit": group.group.limit,
            "evaluationTime": group.evaluation_seconds,
            "lastEvaluation": time_or_zero(group.last_evaluation_ms),
        }));
    }
    axum::Json(json!({"status": "success", "data": {"groups": groups}})).into_response()
}

async fn alerts(State(manager): State<Arc<Manager>>) -> Response {
    let mut out = Vec::new();
    for group in manager.groups() {
        for index in 0..group.group.rules.len() {
            out.extend(active(&group, index).into_iter().map(alert_json));
        }
    }
    axum::Json(json!({"status": "success", "data": {"alerts": out}})).into_response()
}

async fn reload(State(manager): State<Arc<Manager>>) -> Response {
    match manager.reload().await {
        Ok(rules) => (StatusCode::OK, format!("reloaded: {rules} rules\n")).into_response(),
        Err(errors) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "failed to reload rules, the previous rules keep running: {}\n",
                format_rule_errors(&errors)
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests;
