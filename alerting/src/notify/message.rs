//! Request bodies: Alertmanager's webhook JSON (version 4) and its `POST /api/v2/alerts` array.

use serde::Serialize;

use super::matcher::quote;
use crate::alert::{Alert, LabelSet, rfc3339_ms};

/// Alertmanager writes Go's zero time as the `endsAt` of firing alerts.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Alertmanager's webhook notification body, version 4.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WebhookMessage<'a> {
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: usize,
    status: &'static str,
    receiver: &'a str,
    group_labels: &'a LabelSet,
    common_labels: LabelSet,
    common_annotations: LabelSet,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    alerts: Vec<WebhookAlert<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookAlert<'a> {
    status: &'static str,
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: String,
}

/// What a webhook notification is built from.
pub(super) struct WebhookInput<'a> {
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub group_labels: &'a LabelSet,
    pub external_url: &'a str,
    /// 0 = no limit.
    pub max_alerts: usize,
    pub now_ms: i64,
}

/// Builds the webhook body for `alerts` (firing ones first, then by labels). `status` is
/// `firing` when any alert fires; common labels and annotations are computed over all alerts,
/// before `max_alerts` truncation, as Alertmanager does.
pub(super) fn webhook_body(
    input: &WebhookInput<'_>,
    alerts: &[&Alert],
) -> Result<String, serde_json::Error> {
    let mut sorted: Vec<&Alert> = alerts.to_vec();
    sorted.sort_by(|a, b| {
        a.is_resolved_at(input.now_ms)
            .cmp(&b.is_resolved_at(input.now_ms))
            .then_with(|| a.labels.cmp(&b.labels))
    });
    let any_firing = sorted.iter().any(|a| !a.is_resolved_at(input.now_ms));
    let common_labels = common(sorted.iter().map(|a| &a.labels));
    let common_annotations = common(sorted.iter().map(|a| &a.annotations));
    let keep = if input.max_alerts == 0 {
        sorted.len()
    } else {
        input.max_alerts.min(sorted.len())
    };
    let message = WebhookMessage {
        version: "4",
        group_key: input.group_key,
        truncated_alerts: sorted.len() - keep,
        status: if any_firing { "firing" } else { "resolved" },
        receiver: input.receiver,
        group_labels: input.group_labels,
        common_labels,
        common_annotations,
        external_url: input.external_url,
        alerts: sorted[..keep]
            .iter()
            .map(|alert| {
                let resolved = alert.is_resolved_at(input.now_ms);
                WebhookAlert {
                    status: if resolved { "resolved" } else { "firing" },
                    labels: &alert.labels,
                    annotations: &alert.annotations,
                    starts_at: rfc3339_ms(alert.starts_at_ms),
                    ends_at: if resolved {
                        rfc3339_ms(alert.ends_at_ms)
                    } else {
                        ZERO_TIME.to_string()
                    },
                    generator_url: &alert.generator_url,
                    fingerprint: alert.fingerprint(),
                }
            })
            .collect(),
    };
    serde_json::to_string(&message)
}

/// Labels (or annotations) present with the same value in every set.
fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let Some(first) = sets.next() else {
        return LabelSet::new();
    };
    let mut out = first.clone();
    for set in sets {
        out.retain(|name, value| set.get(name) == Some(value));
    }
    out
}

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PostableAlert<'a> {
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

/// The JSON array pushed to Alertmanager.
pub(super) fn alertmanager_body(alerts: &[Alert]) -> Result<String, serde_json::Error> {
    let postable: Vec<PostableAlert<'_>> = alerts
        .iter()
        .map(|alert| PostableAlert {
            labels: &alert.labels,
            annotations: &alert.annotations,
            starts_at: rfc3339_ms(alert.starts_at_ms),
            ends_at: rfc3339_ms(alert.ends_at_ms),
            generator_url: &alert.generator_url,
        })
        .collect();
    serde_json::to_string(&postable)
}

/// Prometheus's label set notation, as in Alertmanager group keys: `{alertname="X", job="api"}`.
pub(super) fn format_label_set(labels: &LabelSet) -> String {
    let parts: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={}", quote(value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
mod tests;
