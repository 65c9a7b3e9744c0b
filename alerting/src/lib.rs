//! Alerting: Prometheus rule files and SQL rules, evaluated on each group's interval, with
//! notifications delivered durably to webhooks and Alertmanager.
//!
//! ```text
//! rules (files) ──► Manager ──► per group: evaluate (Querier) ─► state machine ─► Notifier
//!                      │                        │                                   │
//!                 SIGHUP/reload          ALERTS series, history            outbox ─► webhook / Alertmanager
//! ```
//!
//! The crate reaches the rest of Lumen only through the [`Querier`] trait (PromQL, SQL, and
//! writing samples back), which the root binary implements.

#![warn(missing_docs)]

pub mod alert;
pub mod api;
pub mod config;
pub mod group;
pub mod history;
pub mod manager;
pub mod notify;
pub mod querier;
pub mod rules;
pub mod state;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use alert::{Alert, LabelSet};
pub use config::AlertingConfig;
pub use group::EvalSettings;
pub use history::AlertsTable;
pub use manager::{Manager, StartError};
pub use querier::{BoxFuture, InstantResult, Querier, WriteSample};
