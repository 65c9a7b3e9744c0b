//! The alert as the evaluator hands it to delivery: Prometheus's notifier model (labels,
//! annotations, `startsAt`, `endsAt`), which is also what Alertmanager's API and webhook speak.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Sorted label or annotation set.
pub type LabelSet = BTreeMap<String, String>;

/// One alert instance as sent for delivery.
///
/// A firing alert has `ends_at_ms` in the future (evaluation time + 4 × max(interval, resend
/// delay)): if Lumen stops sending it, receivers resolve it then. A resolved alert has
/// `ends_at_ms` at its resolution time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Identifying labels, including `alertname`.
    pub labels: LabelSet,
    /// Rendered annotations.
    pub annotations: LabelSet,
    /// When the alert became active (entered pending), Unix ms.
    pub starts_at_ms: i64,
    /// When the alert ended, or when it expires unless re-sent, Unix ms.
    pub ends_at_ms: i64,
    /// Link to the rule (Lumen's `/api/v1/rules` view of it).
    pub generator_url: String,
}

impl Alert {
    /// Whether the alert is resolved at `now_ms`.
    pub fn is_resolved_at(&self, now_ms: i64) -> bool {
        self.ends_at_ms <= now_ms
    }

    /// Alertmanager's fingerprint form: a stable hash of the labels as 16 hex digits.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.labels)
    }
}

/// Alertmanager's fingerprint of a label set (FNV-1a 64 over the sorted names and values, each
/// followed by 0xff), as 16 lowercase hex digits, so receivers see the same ids from both.
pub fn fingerprint(labels: &LabelSet) -> String {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

/// RFC 3339 with milliseconds in UTC, as Alertmanager writes times.
pub fn rfc3339_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests;
