//! Receiver configuration (the `[[alerting.receivers]]` entries of `lumen.toml`) and its checks.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use super::error::NotifyError;
use super::matcher::{self, Matcher, is_label_name};

/// Where a receiver's notifications go and how they are shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverKind {
    /// Any HTTP endpoint that accepts Alertmanager's webhook JSON (version 4); Lumen groups.
    Webhook,
    /// An Alertmanager: alerts are pushed to `<url>/api/v2/alerts`; Alertmanager groups.
    Alertmanager,
}

impl ReceiverKind {
    /// `webhook` or `alertmanager`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverKind::Webhook => "webhook",
            ReceiverKind::Alertmanager => "alertmanager",
        }
    }
}

/// One notification receiver.
///
/// ```toml
/// [[alerting.receivers]]
/// name = "oncall"
/// type = "webhook"
/// url = "http://hooks.internal:8080/alerts"
/// group_by = ["alertname", "service_name"]
/// group_wait = "30s"
/// matchers = ['severity=~"page|critical"']
/// hmac_secret = "s3cret"
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Unique name: letters, digits, `_`, `-`, `.`; it names the receiver's directory on disk.
    pub name: String,
    /// `webhook` or `alertmanager`.
    #[serde(rename = "type")]
    pub kind: ReceiverKind,
    /// Webhook endpoint, or Alertmanager base URL (`/api/v2/alerts` is appended). `http://` only
    /// for now: Lumen is built without TLS.
    pub url: String,
    /// Extra HTTP headers sent with every request (e.g. `Authorization`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// When set, requests carry `X-Lumen-Signature: sha256=<hex HMAC-SHA256 of the body>`.
    #[serde(default)]
    pub hmac_secret: Option<String>,
    /// Webhook only: labels that form a group; `["..."]` groups by all labels; empty is one group.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// Webhook only: how long a new group waits before its first notification.
    #[serde(
        default = "default_group_wait",
        deserialize_with = "lumen_storage::duration::deserialize"
    )]
    pub group_wait: Duration,
    /// Webhook only: minimum time between notifications of a group that changed.
    #[serde(
        default = "default_group_interval",
        deserialize_with = "lumen_storage::duration::deserialize"
    )]
    pub group_interval: Duration,
    /// Webhook only: an unchanged firing group is notified again after this long.
    #[serde(
        default = "default_repeat_interval",
        deserialize_with = "lumen_storage::duration::deserialize"
    )]
    pub repeat_interval: Duration,
    /// Webhook only: also notify when alerts resolve.
    #[serde(default = "default_true")]
    pub send_resolved: bool,
    /// Per-request timeout.
    #[serde(
        default = "default_timeout",
        deserialize_with = "lumen_storage::duration::deserialize"
    )]
    pub timeout: Duration,
    /// Webhook only: at most this many alerts per notification (0 = no limit); the rest are
    /// counted in `truncatedAlerts`.
    #[serde(default)]
    pub max_alerts: usize,
    /// Which alerts this receiver gets: a map of exact label values, or a list of matcher strings
    /// such as `'severity=~"page|critical"'`. Empty = every alert.
    #[serde(default, deserialize_with = "matcher::deserialize")]
    pub matchers: Vec<Matcher>,
}

fn default_group_wait() -> Duration {
    Duration::from_secs(30)
}
fn default_group_interval() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_repeat_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_true() -> bool {
    true
}

impl ReceiverConfig {
    /// A receiver with every optional field at its default.
    pub fn new(name: &str, kind: ReceiverKind, url: &str) -> Self {
        ReceiverConfig {
            name: name.to_string(),
            kind,
            url: url.to_string(),
            headers: BTreeMap::new(),
            hmac_secret: None,
            group_by: Vec::new(),
            group_wait: default_group_wait(),
            group_interval: default_group_interval(),
            repeat_interval: default_repeat_interval(),
            send_resolved: true,
            timeout: default_timeout(),
            max_alerts: 0,
            matchers: Vec::new(),
        }
    }

    /// Whether an alert with these labels goes to this receiver.
    pub fn accepts(&self, labels: &crate::alert::LabelSet) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Whether `group_by` is Alertmanager's `["..."]` (group by every label).
    pub fn groups_by_all(&self) -> bool {
        self.group_by.len() == 1 && self.group_by[0] == "..."
    }

    /// The URL requests go to: the webhook URL, or Alertmanager's push endpoint.
    pub fn target_url(&self) -> Result<Url, NotifyError> {
        let url = Url::parse(&self.url)
            .map_err(|err| self.invalid(format!("url {:?} does not parse: {err}", self.url)))?;
        match self.kind {
            ReceiverKind::Webhook => Ok(url),
            ReceiverKind::Alertmanager => {
                if url.path().trim_end_matches('/').ends_with("/api/v2/alerts") {
                    return Ok(url);
                }
                let mut url = url;
                let path = format!("{}/api/v2/alerts", url.path().trim_end_matches('/'));
                url.set_path(&path);
                Ok(url)
            }
        }
    }

    /// The URL with any password removed, for status output and logs.
    pub fn display_url(&self) -> String {
        match Url::parse(&self.url) {
            Ok(mut url) => {
                if url.password().is_some() {
                    let _ = url.set_password(Some("xxxxx"));
                }
                url.to_string()
            }
            Err(_) => self.url.clone(),
        }
    }

    fn invalid(&self, message: String) -> NotifyError {
        NotifyError::InvalidConfig {
            receiver: self.name.clone(),
            message,
        }
    }

    fn validate(&self) -> Result<(), NotifyError> {
        let name_ok = !self.name.is_empty()
            && !self.name.starts_with('.')
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !name_ok {
            return Err(self.invalid(
                "receiver names use letters, digits, '_', '-' and '.', and do not start with '.' (the name is also a directory name)".into(),
            ));
        }
        let url = self.target_url()?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(self.invalid(format!(
                    "url {:?}: https is not supported yet (Lumen is built without TLS); use http:// or a local TLS-terminating proxy",
                    self.url
                )));
            }
            other => {
                return Err(
                    self.invalid(format!("url {:?}: scheme {other:?} is not http", self.url))
                );
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(self.invalid(format!("url {:?} has no host", self.url)));
        }
        for (name, value) in &self.headers {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| self.invalid(format!("header name {name:?} is not valid")))?;
            HeaderValue::from_str(value).map_err(|_| {
                self.invalid(format!(
                    "header {name:?} has a value that cannot be sent in HTTP"
                ))
            })?;
        }
        if self.hmac_secret.as_deref() == Some("") {
            return Err(self.invalid("hmac_secret is empty; remove it or set a secret".into()));
        }
        if self.timeout.is_zero() {
            return Err(self.invalid("timeout must be greater than 0".into()));
        }
        match self.kind {
            ReceiverKind::Alertmanager => {
                if !self.group_by.is_empty() {
                    return Err(self.invalid(
                        "group_by applies to webhook receivers; Alertmanager groups alerts itself"
                            .into(),
                    ));
                }
                if self.max_alerts != 0 {
                    return Err(self.invalid("max_alerts applies to webhook receivers".into()));
                }
            }
            ReceiverKind::Webhook => {
                if self.group_by.iter().any(|l| l == "...") && !self.groups_by_all() {
                    return Err(self.invalid(
                        r#"group_by "..." means all labels and must be the only entry"#.into(),
                    ));
                }
                if let Some(bad) = self
                    .group_by
                    .iter()
                    .find(|l| !is_label_name(l) && l.as_str() != "...")
                {
                    return Err(
                        self.invalid(format!("group_by: {bad:?} is not a valid label name"))
                    );
                }
                if self.group_interval.is_zero() {
                    return Err(self.invalid("group_interval must be greater than 0".into()));
                }
                if self.repeat_interval.is_zero() {
                    return Err(self.invalid("repeat_interval must be greater than 0".into()));
                }
            }
        }
        Ok(())
    }
}

/// Everything the notifier needs: the receivers and Lumen's own external URL (the webhook
/// body's `externalURL`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Receivers; an alert goes to every receiver whose matchers match.
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    /// Lumen's URL as receivers should link to it.
    #[serde(default)]
    pub external_url: String,
}

impl NotifyConfig {
    /// Checks every receiver and that names are unique.
    pub fn validate(&self) -> Result<(), NotifyError> {
        let mut seen = HashSet::new();
        for receiver in &self.receivers {
            receiver.validate()?;
            if !seen.insert(receiver.name.as_str()) {
                return Err(
                    receiver.invalid("two receivers have this name; names must be unique".into())
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
