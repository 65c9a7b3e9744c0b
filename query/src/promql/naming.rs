//! The OpenTelemetry → Prometheus naming of `metrics` rows: family names with unit suffixes and
//! `_total` ([`family_name`], [`metric_name`]), label sanitising ([`sanitize_label_name`]),
//! `target_info` and `job` / `instance` from the resource ([`otlp_labels`]), and which names and
//! label sets a series' rows can produce ([`SeriesShape`]).
//!
//! Remote-written rows keep their names and labels (attributes plus `__name__`). OTLP rows become
//! sanitised names with a unit suffix, `_total` for monotonic cumulative sums, histograms as
//! cumulative `_bucket{le}` series plus `_sum` and `_count`, summaries as `{quantile}` series plus
//! `_sum` and `_count`. Keep [`SeriesShape`] in step with
//! [`super::accumulator::SeriesAccumulator`]'s row mapping: the series index path prunes with it.

use lumen_storage::MetricDescriptor;
use lumen_storage::schema::{MetricType, REMOTE_WRITE_SCOPE};
use promql_parser::label::Matchers;

use super::value::{Labels, METRIC_NAME};

/// The series of resource attributes.
pub(super) const TARGET_INFO: &str = "target_info";

/// Whether a series named `name` could pass the selector's `__name__` matchers.
pub(super) fn matchers_accept_name(matchers: &Matchers, name: &str) -> bool {
    let labels = Labels::new(vec![(METRIC_NAME.to_string(), name.to_string())]);
    matchers
        .matchers
        .iter()
        .filter(|m| m.name == METRIC_NAME)
        .all(|m| labels.matches_all(std::slice::from_ref(m)))
}

/// The Prometheus name of an OTLP metric family: sanitised with its unit suffix, and `_total` for
/// monotonic sums. Histograms and summaries add `_bucket`, `_sum`, `_count` to it.
pub(super) fn family_name(
    name: &str,
    unit: &str,
    metric_type: Option<MetricType>,
    monotonic: bool,
) -> String {
    let mut n = metric_name(name, unit, metric_type == Some(MetricType::Gauge));
    if metric_type == Some(MetricType::Sum) && monotonic && !n.ends_with("_total") {
        n.push_str("_total");
    }
    n
}

/// Which `__name__`s and label sets the rows of a series can produce, from its metric descriptor
/// (and, for label sets, its attributes). The series index path ([`super::index_select`]) prunes
/// with it and the row path skips rows with it, so it must cover everything
/// [`super::accumulator::SeriesAccumulator`]'s row mapping emits (`tests/promql_conformance/series_index.rs` compares both paths).
#[derive(Clone)]
pub(super) struct SeriesShape {
    kind: ShapeKind,
    names: Vec<String>,
}

#[derive(Clone)]
enum ShapeKind {
    /// Remote-written: labels = attributes + `__name__` (the metric name as is).
    RemoteWrite(String),
    /// OTLP: each sample name with the label made per point (`le`, `quantile`), if any; and
    /// `target_info` from the resource.
    Otlp(Vec<(String, Option<&'static str>)>),
    /// No metric name: the rows are skipped.
    Nameless,
}

impl SeriesShape {
    /// The shape of the series with this descriptor.
    pub(super) fn of(d: &MetricDescriptor<'_>) -> SeriesShape {
        let kind = match d.metric_name {
            None => ShapeKind::Nameless,
            Some(name) if d.scope_name == Some(REMOTE_WRITE_SCOPE) => {
                ShapeKind::RemoteWrite(name.to_string())
            }
            Some(name) => {
                let metric_type = d.metric_type.and_then(MetricType::parse);
                let monotonic = d.is_monotonic == Some(true);
                let n = family_name(name, d.unit.unwrap_or(""), metric_type, monotonic);
                ShapeKind::Otlp(match metric_type {
                    Some(MetricType::Gauge | MetricType::Sum) => vec![(n, None)],
                    Some(MetricType::Histogram | MetricType::ExponentialHistogram) => vec![
                        (format!("{n}_sum"), None),
                        (format!("{n}_count"), None),
                        (format!("{n}_bucket"), Some("le")),
                    ],
                    Some(MetricType::Summary) => vec![
                        (format!("{n}_sum"), None),
                        (format!("{n}_count"), None),
                        (n, Some("quantile")),
                    ],
                    None => Vec::new(),
                })
            }
        };
        let names = match &kind {
            ShapeKind::RemoteWrite(n) => vec![n.clone()],
            ShapeKind::Otlp(samples) => samples
                .iter()
                .map(|(n, _)| n.clone())
                .chain([TARGET_INFO.to_string()])
                .collect(),
            ShapeKind::Nameless => Vec::new(),
        };
        SeriesShape { kind, names }
    }

    /// Every `__name__` the series' rows can produce.
    pub(super) fn names(&self) -> &[String] {
        &self.names
    }

    /// The label sets the series' rows can produce, given its attributes and resource attributes
    /// (pairs with a value), each with the label made per point that takes any value there.
    /// `target_info`'s is left out unless `with_target_info`.
    pub(super) fn label_sets(
        &self,
        attributes: Vec<(String, String)>,
        resource: Vec<(String, String)>,
        with_target_info: bool,
    ) -> Vec<(Labels, Option<&'static str>)> {
        match &self.kind {
            ShapeKind::RemoteWrite(name) => {
                let mut pairs = attributes;
                pairs.push((METRIC_NAME.to_string(), name.clone()));
                vec![(Labels::new(pairs), None)]
            }
            ShapeKind::Otlp(samples) => {
                let info = with_target_info.then(|| target_info_labels(&resource));
                let base = otlp_labels(attributes, resource);
                let mut out: Vec<(Labels, Option<&'static str>)> = samples
                    .iter()
                    .map(|(n, per_point)| {
                        let mut l = base.clone();
                        l.set(METRIC_NAME, n);
                        (l, *per_point)
                    })
                    .collect();
                out.extend(info.map(|info| (info, None)));
                out
            }
            ShapeKind::Nameless => Vec::new(),
        }
    }
}

/// `target_info{job, instance, …}`: the resource attributes other than those `job` and
/// `instance` come from, sanitised.
pub(super) fn target_info_labels(resource: &[(String, String)]) -> Labels {
    let rest: Vec<(String, String)> = resource
        .iter()
        .filter(|(k, _)| !super::otlp_convert::TARGET_INFO_EXCLUDED.contains(&k.as_str()))
        .cloned()
        .collect();
    let mut labels = otlp_labels(rest, resource.to_vec());
    labels.set(METRIC_NAME, TARGET_INFO);
    labels
}

/// Point attributes (sanitised, colliding keys joined with `;` in key order) plus `job` and
/// `instance` from the resource.
pub(super) fn otlp_labels(
    attributes: Vec<(String, String)>,
    resource: Vec<(String, String)>,
) -> Labels {
    let mut attributes = attributes;
    attributes.sort();
    let mut merged: Vec<(String, String)> = Vec::new();
    for (k, v) in attributes {
        let k = sanitize_label_name(&k);
        match merged.iter_mut().find(|(mk, _)| *mk == k) {
            Some(existing) => {
                existing.1.push(';');
                existing.1.push_str(&v);
            }
            None => merged.push((k, v)),
        }
    }
    let get = |key: &str| {
        resource
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if let Some(service) = get("service.name") {
        let job = match get("service.namespace") {
            Some(ns) if !ns.is_empty() => format!("{ns}/{service}"),
            _ => service.to_string(),
        };
        merged.push(("job".into(), job));
    }
    if let Some(instance) = get("service.instance.id") {
        merged.push(("instance".into(), instance.to_string()));
    }
    Labels::new(merged)
}

/// Replaces characters outside `[a-zA-Z0-9_]` (plus `:` for metric names) with `_` and collapses
/// repeated underscores.
pub(super) fn sanitize(s: &str, allow_colon: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        let ok = ch.is_ascii_alphanumeric() || ch == '_' || (allow_colon && ch == ':');
        let ch = if ok { ch } else { '_' };
        if ch == '_' && out.ends_with('_') {
            continue;
        }
        out.push(ch);
    }
    out
}

/// A label name from an attribute key: sanitised, `key_`-prefixed when it starts with a digit.
pub(super) fn sanitize_label_name(s: &str) -> String {
    let out = sanitize(s, false);
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("key_{out}")
    } else {
        out
    }
}

/// The Prometheus metric name of an OTLP metric: sanitised, with its unit suffix (UCUM units
/// spelled out, `1` as `_ratio` on gauges, `a/b` as `a_per_b`, `{annotations}` dropped).
pub(super) fn metric_name(name: &str, unit: &str, is_gauge: bool) -> String {
    let mut n = sanitize(name, true);
    if n.starts_with(|c: char| c.is_ascii_digit()) {
        n.insert(0, '_');
    }
    let suffix = unit_suffix(unit, is_gauge);
    if !suffix.is_empty() && !n.ends_with(&suffix) {
        n.push('_');
        n.push_str(&suffix);
    }
    n
}

pub(super) fn unit_suffix(unit: &str, is_gauge: bool) -> String {
    let without_annotations = strip_braces(unit);
    let unit = without_annotations.trim();
    if unit == "1" {
        return if is_gauge {
            "ratio".into()
        } else {
            String::new()
        };
    }
    let (main, per) = match unit.split_once('/') {
        Some((m, p)) => (m.trim(), Some(p.trim())),
        None => (unit, None),
    };
    let main = match main {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "TiBy" => "tibibytes",
        "KBy" => "kilobytes",
        "MBy" => "megabytes",
        "GBy" => "gigabytes",
        "TBy" => "terabytes",
        "m" => "meters",
        "V" => "volts",
        "A" => "amperes",
        "J" => "joules",
        "W" => "watts",
        "g" => "grams",
        "Cel" => "celsius",
        "Hz" => "hertz",
        "%" => "percent",
        "1" => "",
        other => other,
    };
    let mut out = sanitize(main, false).trim_matches('_').to_string();
    if let Some(per) = per.filter(|p| !p.is_empty()) {
        let per = match per {
            "s" => "second",
            "m" => "minute",
            "h" => "hour",
            "d" => "day",
            "w" => "week",
            "mo" => "month",
            "y" => "year",
            other => other,
        };
        let per = sanitize(per, false).trim_matches('_').to_string();
        out = if out.is_empty() {
            format!("per_{per}")
        } else {
            format!("{out}_per_{per}")
        };
    }
    out
}

/// `unit` without `{...}` annotations.
pub(super) fn strip_braces(unit: &str) -> String {
    let mut out = String::new();
    let mut depth = 0usize;
    for ch in unit.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests;
