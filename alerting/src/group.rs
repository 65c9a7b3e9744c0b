//! Evaluating one rule group: every rule in order at one evaluation timestamp, alert state,
//! `ALERTS` / `ALERTS_FOR_STATE` and recorded series written back, due alerts handed to delivery.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use arrow::record_batch::RecordBatch;
use lumen_query::promql::Labels;

use crate::alert::{Alert, LabelSet, fingerprint};
use crate::history::HistoryEntry;
use crate::querier::{InstantResult, Querier, WriteSample};
use crate::rules::{Rule, RuleGroup, RuleKind, RuleQuery};
use crate::state::{AlertState, Candidate, GroupState, RuleAlerts};
use crate::template::TemplateData;

/// The token SQL rules may use for the evaluation time (replaced by a timestamp literal).
pub const EVAL_TIME_TOKEN: &str = "$__eval_time";

/// Settings shared by all groups.
#[derive(Clone, Debug)]
pub struct EvalSettings {
    /// Interval of groups that set none.
    pub default_interval: Duration,
    /// How far behind the evaluation time queries look (groups may override with `query_offset`).
    pub evaluation_delay: Duration,
    /// How often a firing alert is re-sent.
    pub resend_delay: Duration,
    /// Labels available to templates as `$externalLabels`.
    pub external_labels: BTreeMap<String, String>,
    /// Base URL of the links alerts carry back to their rule.
    pub external_url: String,
}

impl Default for EvalSettings {
    /// The settings `lumen.toml` gives when it says nothing (its defaults live in
    /// [`AlertingConfig`](crate::AlertingConfig)).
    fn default() -> Self {
        let config = crate::AlertingConfig::default();
        EvalSettings {
            default_interval: config.evaluation_interval,
            evaluation_delay: config.evaluation_delay,
            resend_delay: config.resend_delay,
            external_labels: config.external_labels,
            external_url: String::new(),
        }
    }
}

/// How one rule did in its last evaluation.
#[derive(Clone, Debug, Default)]
pub struct RuleHealth {
    /// `ok`, `err` or `unknown` (not evaluated yet).
    pub health: &'static str,
    /// The last evaluation's error, empty when it succeeded.
    pub last_error: String,
    /// When the rule was last evaluated, Unix ms.
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation took.
    pub evaluation_seconds: f64,
}

/// A group with its rules, their alert state and health.
#[derive(Clone, Debug)]
pub struct GroupRuntime {
    /// The group as its rule file defines it.
    pub group: RuleGroup,
    /// How often the group is evaluated (its own `interval` or the default).
    pub interval: Duration,
    /// How far behind the evaluation time its queries look.
    pub query_offset: Duration,
    /// Its rules' alert instances, persisted across restarts.
    pub state: GroupState,
    /// Health of each rule, in rule order.
    pub health: Vec<RuleHealth>,
    /// When the group was last evaluated, Unix ms.
    pub last_evaluation_ms: Option<i64>,
    /// How long the last evaluation of the whole group took.
    pub evaluation_seconds: f64,
    /// `ALERTS` series written by the previous evaluation, per rule (for staleness markers).
    previous_series: Vec<HashSet<LabelSet>>,
}

/// The key a rule's state is kept under: its name and its label templates, like Prometheus
/// matches rules across reloads.
pub fn rule_key(rule: &Rule) -> String {
    let mut key = rule.name.clone();
    for (name, template) in &rule.labels {
        key.push('\u{1f}');
        key.push_str(name);
        key.push('=');
        key.push_str(template.source());
    }
    key
}

/// What one evaluation produced.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Alerts due for delivery.
    pub to_send: Vec<Alert>,
    /// State changes for the `alerts` table.
    pub history: Vec<HistoryEntry>,
    /// Whether the persisted state changed.
    pub state_changed: bool,
}

impl GroupRuntime {
    /// A runtime for `group`, starting from `state` (restored or carried over from a reload).
    pub fn new(group: RuleGroup, mut state: GroupState, settings: &EvalSettings) -> Self {
        let interval = group.interval.unwrap_or(settings.default_interval);
        let query_offset = group.query_offset.unwrap_or(settings.evaluation_delay);
        let keys: HashSet<String> = group.rules.iter().map(rule_key).collect();
        state.rules.retain(|key, _| keys.contains(key));
        state.group = group.name.clone();
        state.file = group.file.display().to_string();
        let rules = group.rules.len();
        GroupRuntime {
            group,
            interval,
            query_offset,
            state,
            health: vec![
                RuleHealth {
                    health: "unknown",
                    ..Default::default()
                };
                rules
            ],
            last_evaluation_ms: None,
            evaluation_seconds: 0.0,
            previous_series: vec![HashSet::new(); rules],
        }
    }

    /// The alerts of rule `index`.
    pub fn alerts(&self, index: usize) -> Option<&RuleAlerts> {
        self.group
            .rules
            .get(index)
            .and_then(|rule| self.state.rules.get(&rule_key(rule)))
    }

    /// Evaluates every rule at `ts_ms` (queries at `ts_ms` − the query offset).
    pub async fn evaluate(
        &mut self,
        querier: &Arc<dyn Querier>,
        settings: &EvalSettings,
        ts_ms: i64,
    ) -> Outcome {
        let started = Instant::now();
        let query_ts = ts_ms - self.query_offset.as_millis() as i64;
        let mut outcome = Outcome::default();
        for index in 0..self.group.rules.len() {
            let rule_started = Instant::now();
            let result = self
                .evaluate_rule(index, querier, settings, ts_ms, query_ts, &mut outcome)
                .await;
            let health = &mut self.health[index];
            health.last_evaluation_ms = Some(ts_ms);
            health.evaluation_seconds = rule_started.elapsed().as_secs_f64();
            let rule = &self.group.rules[index];
            match result {
                Ok(()) => {
                    health.health = "ok";
                    health.last_error.clear();
                }
                Err(err) => {
                    tracing::warn!(group = %self.group.name, rule = %rule.name, error = %err, "rule evaluation failed");
                    metrics::counter!("lumen_rule_evaluation_failures_total", "group" => self.group.name.clone())
                        .increment(1);
                    health.health = "err";
                    health.last_error = err;
                }
            }
            metrics::counter!("lumen_rule_evaluations_total", "group" => self.group.name.clone())
                .increment(1);
        }
        self.last_evaluation_ms = Some(ts_ms);
        self.evaluation_seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("lumen_rule_group_duration_seconds", "group" => self.group.name.clone())
            .record(self.evaluation_seconds);
        outcome
    }

    async fn evaluate_rule(
        &mut self,
        index: usize,
        querier: &Arc<dyn Querier>,
        settings: &EvalSettings,
        ts_ms: i64,
        query_ts: i64,
        outcome: &mut Outcome,
    ) -> Result<(), String> {
        let rule = self.group.rules[index].clone();
        let samples = run_query(&rule, querier, query_ts).await?;
        match rule.kind {
            RuleKind::Recording => {
                let mut seen = HashSet::with_capacity(samples.len());
                let mut writes = Vec::with_capacity(samples.len());
                for (labels, value) in samples {
                    let mut labels = labels;
                    set_label(&mut labels, "__name__", &rule.name);
                    for (name, value) in &self.group.labels {
                        set_label(&mut labels, name, value);
                    }
                    for (name, template) in &rule.labels {
                        set_label(&mut labels, name, template.source());
                    }
                    if !seen.insert(labels.clone()) {
                        return Err(
                            "vector contains metrics with the same labelset after applying rule labels".into()
                        );
                    }
                    writes.push(WriteSample {
                        labels,
                        time_ms: ts_ms,
                        value,
                    });
                }
                if self.group.limit > 0 && writes.len() > self.group.limit {
                    return Err(format!(
                        "exceeded limit of {} with {} series",
                        self.group.limit,
                        writes.len()
                    ));
                }
                let stale = self.stale_markers(index, &writes, ts_ms);
                writes.extend(stale);
                querier.write(writes).await
            }
            RuleKind::Alerting => {
                let key = rule_key(&rule);
                let candidates = self.candidates(&rule, settings, samples)?;
                let mut alerts = self.state.rules.remove(&key).unwrap_or_default();
                let result = if self.group.limit > 0 && candidates.len() > self.group.limit {
                    // Like Prometheus: over the limit, the rule fails and its alerts are cleared.
                    alerts.active.clear();
                    Err(format!(
                        "exceeded limit of {} with {} alerts",
                        self.group.limit,
                        candidates.len()
                    ))
                } else {
                    let changes = alerts.update(
                        candidates,
                        ts_ms,
                        rule.for_duration.as_millis() as i64,
                        rule.keep_firing_for.as_millis() as i64,
                    );
                    for change in &changes {
                        if let Some(alert) = alerts.active.get(&change.fingerprint) {
                            outcome.history.push(HistoryEntry {
                                time_ms: ts_ms,
                                group: self.group.name.clone(),
                                rule: rule.name.clone(),
                                state: change.to.to_string(),
                                labels: alert.labels.clone(),
                                annotations: alert.annotations.clone(),
                                value: alert.value,
                                active_at_ms: alert.active_at_ms,
                            });
                        }
                    }
                    if !changes.is_empty() {
                        outcome.state_changed = true;
                    }
                    Ok(())
                };
                let generator_url = generator_url(&settings.external_url, &rule);
                let due = alerts.due(
                    ts_ms,
                    settings.resend_delay.as_millis() as i64,
                    self.interval.as_millis() as i64,
                    &generator_url,
                );
                if !due.is_empty() {
                    outcome.state_changed = true;
                }
                outcome.to_send.extend(due);
                let mut writes = Vec::new();
                for alert in alerts.active.values() {
                    if alert.state == AlertState::Inactive {
                        continue;
                    }
                    let mut labels = alert.labels.clone();
                    // Written series never carry empty values (an empty value is no label).
                    labels.retain(|_, value| !value.is_empty());
                    labels.insert("__name__".into(), "ALERTS_FOR_STATE".into());
                    writes.push(WriteSample {
                        labels: labels.clone(),
                        time_ms: ts_ms,
                        value: alert.active_at_ms as f64 / 1000.0,
                    });
                    labels.insert("__name__".into(), "ALERTS".into());
                    labels.insert("alertstate".into(), alert.state.as_str().into());
                    writes.push(WriteSample {
                        labels,
                        time_ms: ts_ms,
                        value: 1.0,
                    });
                }
                self.state.rules.insert(key, alerts);
                let stale = self.stale_markers(index, &writes, ts_ms);
                writes.extend(stale);
                let written = querier.write(writes).await;
                result?;
                written.map_err(|err| format!("writing ALERTS series: {err}"))
            }
        }
    }

    /// Expands labels and annotations for each result element of an alerting rule.
    fn candidates(
        &self,
        rule: &Rule,
        settings: &EvalSettings,
        samples: Vec<(LabelSet, f64)>,
    ) -> Result<Vec<Candidate>, String> {
        let mut out = Vec::with_capacity(samples.len());
        let mut seen = HashSet::with_capacity(samples.len());
        for (sample_labels, value) in samples {
            // Like Prometheus, templates see the sample's labels including `__name__`.
            let template_labels = sample_labels;
            let data = TemplateData {
                labels: &template_labels,
                value,
                external_labels: &settings.external_labels,
                external_url: &settings.external_url,
            };
            let mut labels: LabelSet = template_labels.clone();
            labels.remove("__name__");
            for (name, value) in &self.group.labels {
                labels.insert(name.clone(), value.clone());
            }
            for (name, template) in &rule.labels {
                let value = expand(template, &data);
                if value.is_empty() {
                    labels.remove(name);
                } else {
                    labels.insert(name.clone(), value);
                }
            }
            labels.insert("alertname".into(), rule.name.clone());
            let annotations: LabelSet = rule
                .annotations
                .iter()
                .map(|(name, template)| (name.clone(), expand(template, &data)))
                .collect();
            let fp = fingerprint(&labels);
            if !seen.insert(fp.clone()) {
                return Err(
                    "vector contains metrics with the same labelset after applying alert labels"
                        .into(),
                );
            }
            out.push(Candidate {
                fingerprint: fp,
                labels,
                annotations,
                value,
            });
        }
        Ok(out)
    }

    /// Staleness markers for the series rule `index` wrote last time but not this time.
    fn stale_markers(
        &mut self,
        index: usize,
        writes: &[WriteSample],
        ts_ms: i64,
    ) -> Vec<WriteSample> {
        let now: HashSet<LabelSet> = writes.iter().map(|w| w.labels.clone()).collect();
        let previous = std::mem::replace(&mut self.previous_series[index], now);
        previous
            .into_iter()
            .filter(|labels| !self.previous_series[index].contains(labels))
            .map(|labels| WriteSample {
                labels,
                time_ms: ts_ms,
                value: lumen_query::promql::stale_nan(),
            })
            .collect()
    }
}

fn expand(template: &crate::template::Template, data: &TemplateData<'_>) -> String {
    match template.render(data) {
        Ok(text) => text,
        Err(err) => format!("<error expanding template: {err}>"),
    }
}

/// The link an alert carries back to its rule.
pub fn generator_url(external_url: &str, rule: &Rule) -> String {
    let base = external_url.trim_end_matches('/');
    let query = match &rule.query {
        RuleQuery::Promql(expr) => expr.as_str(),
        RuleQuery::Sql(sql) => sql.as_str(),
    };
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!(
        "{base}/api/v1/rules?rule_name[]={}&expr={encoded}",
        rule.name
    )
}

/// Runs a rule's query at `ts_ms`: its result elements as (labels, value).
async fn run_query(
    rule: &Rule,
    querier: &Arc<dyn Querier>,
    ts_ms: i64,
) -> Result<Vec<(LabelSet, f64)>, String> {
    match &rule.query {
        // The query engine's label sets become the alerting crate's here, once per result element.
        RuleQuery::Promql(expr) => match querier.promql(expr, ts_ms).await? {
            InstantResult::Vector(samples) => Ok(samples
                .into_iter()
                .map(|(labels, value)| (label_set(&labels), value))
                .collect()),
            InstantResult::Scalar(value) => Ok(vec![(LabelSet::new(), value)]),
        },
        RuleQuery::Sql(sql) => {
            let sql = sql.replace(
                EVAL_TIME_TOKEN,
                &format!("to_timestamp_nanos({})", ts_ms.saturating_mul(1_000_000)),
            );
            let batches = querier.sql(&sql).await?;
            rows_to_samples(&batches)
        }
    }
}

/// SQL rule rows → (labels, value): string columns are labels, the numeric column `value` the value.
pub fn rows_to_samples(batches: &[RecordBatch]) -> Result<Vec<(LabelSet, f64)>, String> {
    let mut out = Vec::new();
    for batch in batches {
        let schema = batch.schema();
        let value_index = schema.index_of("value").map_err(|_| {
            let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            format!(
                "a SQL rule's result needs a numeric column named `value` (got columns {}); add e.g. `count(*) AS value`",
                columns.join(", ")
            )
        })?;
        let values =
            arrow::compute::cast(batch.column(value_index), &DataType::Float64).map_err(|_| {
                format!(
                    "the `value` column of a SQL rule must be numeric, not {}",
                    schema.field(value_index).data_type()
                )
            })?;
        if !schema.field(value_index).data_type().is_numeric() {
            return Err(format!(
                "the `value` column of a SQL rule must be numeric, not {}",
                schema.field(value_index).data_type()
            ));
        }
        let values = values.as_primitive::<Float64Type>();
        let mut label_columns = Vec::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let is_string = match field.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
                DataType::Dictionary(_, value) => {
                    matches!(
                        value.as_ref(),
                        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                    )
                }
                _ => false,
            };
            if i != value_index && is_string {
                let strings = arrow::compute::cast(batch.column(i), &DataType::Utf8)
                    .map_err(|err| format!("reading column {}: {err}", field.name()))?;
                label_columns.push((field.name().clone(), strings));
            }
        }
        for row in 0..batch.num_rows() {
            if values.is_null(row) {
                continue;
            }
            let mut labels = LabelSet::new();
            for (name, column) in &label_columns {
                let column = column.as_string::<i32>();
                if column.is_valid(row) {
                    // A later column of the same name wins; an empty value is no label.
                    set_label(&mut labels, name, column.value(row));
                }
            }
            out.push((labels, values.value(row)));
        }
    }
    Ok(out)
}

/// A query result's labels as the alerting crate keeps them.
fn label_set(labels: &Labels) -> LabelSet {
    labels
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Sets `name` to `value`; an empty value removes the label (Prometheus's label semantics).
fn set_label(labels: &mut LabelSet, name: &str, value: &str) {
    if value.is_empty() {
        labels.remove(name);
    } else {
        labels.insert(name.to_string(), value.to_string());
    }
}

#[cfg(test)]
mod tests;
