//! Alert state: the inactive → pending → firing → resolved machine of one alerting rule, and
//! its persistence so that a restart keeps `activeAt` and does not notify a firing alert as new.
//!
//! The transitions follow Prometheus's alerting rule:
//! - a new result element starts **pending** with `active_at` = evaluation time;
//! - pending for at least `for` → **firing** (`fired_at`); with `for: 0` at once;
//! - an element gone from the result: pending ones are dropped; firing ones stay firing for
//!   `keep_firing_for`, then become **inactive** (resolved, `resolved_at`) and are kept for
//!   [`RESOLVED_RETENTION_MS`] so the resolution is (re-)sent;
//! - an element that comes back after resolving starts over as a new alert.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, LabelSet};

/// How long a resolved alert is kept and re-sent (Prometheus: 15 minutes).
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// Where an alert instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Not active: resolved, kept for a while so receivers learn it ended.
    Inactive,
    /// Active, waiting out the rule's `for` duration.
    Pending,
    /// Active for at least `for`: sent to receivers.
    Firing,
}

impl AlertState {
    /// The name Prometheus's API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert instance of a rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveAlert {
    /// The alert's labels, `alertname` included.
    pub labels: LabelSet,
    /// Rendered annotations.
    pub annotations: LabelSet,
    /// The query value at the last evaluation.
    pub value: f64,
    /// Where the alert is in its life.
    pub state: AlertState,
    /// When the alert became active (pending), Unix ms.
    pub active_at_ms: i64,
    /// When it started firing, Unix ms.
    #[serde(default)]
    pub fired_at_ms: Option<i64>,
    /// When it resolved, Unix ms.
    #[serde(default)]
    pub resolved_at_ms: Option<i64>,
    /// When it was last sent to receivers, Unix ms.
    #[serde(default)]
    pub last_sent_at_ms: Option<i64>,
    /// Until when receivers consider it firing unless it is sent again, Unix ms.
    #[serde(default)]
    pub valid_until_ms: i64,
    /// Since when it has been kept firing by `keep_firing_for` with the condition gone, Unix ms.
    #[serde(default)]
    pub keep_firing_since_ms: Option<i64>,
}

impl ActiveAlert {
    /// Whether the alert is due for sending at `ts_ms` (Prometheus's `needsSending`).
    pub fn needs_sending(&self, ts_ms: i64, resend_delay_ms: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        let last_sent = self.last_sent_at_ms.unwrap_or(i64::MIN);
        if let Some(resolved) = self.resolved_at_ms
            && resolved > last_sent
        {
            return true;
        }
        last_sent.saturating_add(resend_delay_ms) < ts_ms
    }

    /// The alert as delivered: `startsAt` is when it fired, `endsAt` its resolution or expiry.
    pub fn to_alert(&self, generator_url: &str) -> Alert {
        Alert {
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            starts_at_ms: self.fired_at_ms.unwrap_or(self.active_at_ms),
            ends_at_ms: self.resolved_at_ms.unwrap_or(self.valid_until_ms),
            generator_url: generator_url.to_string(),
        }
    }
}

/// A state change worth recording (the `alerts` table).
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    /// The alert instance that changed.
    pub fingerprint: String,
    /// Its new state: `pending`, `firing` or `resolved`.
    pub to: &'static str,
}

/// The alerts of one rule by fingerprint, and how the last update changed them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleAlerts {
    /// Alert instances by fingerprint.
    pub active: BTreeMap<String, ActiveAlert>,
}

/// One result element of an alerting rule's query, after labels and annotations were expanded.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Identity of the alert instance (hash of its labels).
    pub fingerprint: String,
    /// The alert's labels after expansion, `alertname` included.
    pub labels: LabelSet,
    /// Rendered annotations.
    pub annotations: LabelSet,
    /// The query value.
    pub value: f64,
}

impl RuleAlerts {
    /// Applies one evaluation's result at `ts_ms`; returns the state changes.
    pub fn update(
        &mut self,
        candidates: Vec<Candidate>,
        ts_ms: i64,
        for_ms: i64,
        keep_firing_for_ms: i64,
    ) -> Vec<Transition> {
        let mut changes = Vec::new();
        let mut present = std::collections::HashSet::with_capacity(candidates.len());
        for candidate in candidates {
            present.insert(candidate.fingerprint.clone());
            match self.active.get_mut(&candidate.fingerprint) {
                Some(alert) if alert.state != AlertState::Inactive => {
                    alert.value = candidate.value;
                    alert.annotations = candidate.annotations;
                    alert.labels = candidate.labels;
                }
                _ => {
                    changes.push(Transition {
                        fingerprint: candidate.fingerprint.clone(),
                        to: "pending",
                    });
                    self.active.insert(
                        candidate.fingerprint,
                        ActiveAlert {
                            labels: candidate.labels,
                            annotations: candidate.annotations,
                            value: candidate.value,
                            state: AlertState::Pending,
                            active_at_ms: ts_ms,
                            fired_at_ms: None,
                            resolved_at_ms: None,
                            last_sent_at_ms: None,
                            valid_until_ms: 0,
                            keep_firing_since_ms: None,
                        },
                    );
                }
            }
        }
        let mut remove = Vec::new();
        for (fingerprint, alert) in self.active.iter_mut() {
            if present.contains(fingerprint) {
                alert.keep_firing_since_ms = None;
            } else {
                let mut keep_firing = false;
                if alert.state == AlertState::Firing && keep_firing_for_ms > 0 {
                    let since = *alert.keep_firing_since_ms.get_or_insert(ts_ms);
                    keep_firing = ts_ms - since < keep_firing_for_ms;
                }
                if alert.state == AlertState::Pending
                    || alert
                        .resolved_at_ms
                        .is_some_and(|at| ts_ms - at > RESOLVED_RETENTION_MS)
                {
                    remove.push(fingerprint.clone());
                }
                if alert.state != AlertState::Inactive && !keep_firing {
                    if alert.state == AlertState::Firing {
                        changes.push(Transition {
                            fingerprint: fingerprint.clone(),
                            to: "resolved",
                        });
                    }
                    alert.state = AlertState::Inactive;
                    alert.resolved_at_ms = Some(ts_ms);
                    alert.keep_firing_since_ms = None;
                }
                if !keep_firing {
                    continue;
                }
            }
            if alert.state == AlertState::Pending && ts_ms - alert.active_at_ms >= for_ms {
                alert.state = AlertState::Firing;
                alert.fired_at_ms = Some(ts_ms);
                changes.push(Transition {
                    fingerprint: fingerprint.clone(),
                    to: "firing",
                });
            }
        }
        for fingerprint in remove {
            self.active.remove(&fingerprint);
        }
        changes
    }

    /// The alerts due for sending at `ts_ms`, marking them sent and setting their expiry.
    pub fn due(
        &mut self,
        ts_ms: i64,
        resend_delay_ms: i64,
        interval_ms: i64,
        generator_url: &str,
    ) -> Vec<Alert> {
        let mut out = Vec::new();
        for alert in self.active.values_mut() {
            if alert.needs_sending(ts_ms, resend_delay_ms) {
                alert.last_sent_at_ms = Some(ts_ms);
                alert.valid_until_ms = ts_ms + 4 * resend_delay_ms.max(interval_ms);
                out.push(alert.to_alert(generator_url));
            }
        }
        out
    }
}

/// Persisted state of one rule group: rule key → its alerts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GroupState {
    /// The group's name.
    pub group: String,
    /// The rule file the group came from.
    pub file: String,
    /// Each rule's alerts, by rule key (see `group::rule_key`).
    pub rules: BTreeMap<String, RuleAlerts>,
}

/// The file holding a group's state under `dir`.
pub fn state_path(dir: &Path, file: &str, group: &str) -> PathBuf {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(file.as_bytes());
    hasher.update(&[0]);
    hasher.update(group.as_bytes());
    dir.join(format!("{:016x}.json", hasher.digest()))
}

/// Loads a group's state; a missing or unreadable file is an empty state (logged).
pub fn load(path: &Path) -> GroupState {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(state) => state,
            Err(err) => {
                tracing::warn!(path = %path.display(), %err, "unreadable alert state; starting this group afresh");
                GroupState::default()
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => GroupState::default(),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "cannot read alert state; starting this group afresh");
            GroupState::default()
        }
    }
}

/// Writes a group's state atomically (temporary file, fsync, rename, fsync of the directory).
pub fn save(path: &Path, state: &GroupState) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(state)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent()
        && let Ok(dir) = std::fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests;
