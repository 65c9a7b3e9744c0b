//! The `[alerting]` section of `lumen.toml`.
//!
//! ```toml
//! [alerting]
//! rules = ["rules/"]                 # files or directories of *.yml / *.yaml
//! evaluation_interval = "1m"         # groups without their own `interval`
//! evaluation_delay = "0s"            # queries look this far behind the evaluation time
//! resend_delay = "1m"                # how often a firing alert is re-sent
//! external_url = "http://lumen.example:4318"
//! external_labels = { cluster = "prod" }
//!
//! [[alerting.receivers]]
//! name = "oncall"
//! type = "webhook"
//! url = "http://127.0.0.1:9000/hook"
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::notify::ReceiverConfig;

/// Alerting settings from the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Rule files or directories.
    pub rules: Vec<PathBuf>,
    /// How often rule groups without an `interval` are evaluated (default 1m).
    #[serde(deserialize_with = "lumen_storage::duration::deserialize")]
    pub evaluation_interval: Duration,
    /// How far behind the evaluation time rule queries look, so late samples are in (default 0s).
    #[serde(deserialize_with = "lumen_storage::duration::deserialize")]
    pub evaluation_delay: Duration,
    /// How often a still-firing alert is sent again (default 1m).
    #[serde(deserialize_with = "lumen_storage::duration::deserialize")]
    pub resend_delay: Duration,
    /// Base URL in notifications' links; defaults to the HTTP address.
    pub external_url: Option<String>,
    /// Labels available to templates as `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// Where notifications go (webhooks, Alertmanager), with their routing and grouping.
    pub receivers: Vec<ReceiverConfig>,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig {
            rules: Vec::new(),
            evaluation_interval: Duration::from_secs(60),
            evaluation_delay: Duration::ZERO,
            resend_delay: Duration::from_secs(60),
            external_url: None,
            external_labels: BTreeMap::new(),
            receivers: Vec::new(),
        }
    }
}
