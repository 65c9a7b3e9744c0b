//! Row accumulation: the rows of the `metrics` table a read hands over, grouped into Prometheus
//! series ([`SeriesAccumulator`]), through typed column views ([`super::columns`]) and the plans
//! of series already seen ([`RowPlan`], keyed by `series_id`). Which names and labels a row becomes
//! is [`super::naming`]'s; where the rows come from is [`super::reader`]'s.
//!
//! Delta sums and histograms are converted to cumulative per series over the rows read, and
//! exponential histograms to classic buckets ([`super::otlp_convert`] documents both
//! approximations). A data point flagged "no recorded value" is a staleness marker.

use std::collections::HashMap;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt64Type};
use lumen_storage::MetricDescriptor;
use lumen_storage::schema::{MetricType, PointFlags, REMOTE_WRITE_SCOPE, Temporality};
use promql_parser::label::Matchers;

use super::columns::{
    Columns, PlainColumns, f64_at, map_at, map_equals, plain_sample, raw_map_at, str_at,
};
use super::index_select::name_could_match;
use super::naming::{
    SeriesShape, TARGET_INFO, family_name, otlp_labels, sanitize_label_name, target_info_labels,
};
use super::value::{Labels, LabelsMap, METRIC_NAME, Series, stale_nan};

/// Most row plans one read remembers by `series_id` (beyond that it starts over).
const MAX_ROW_PLANS: usize = 1 << 20;

/// One exemplar: a sampled measurement with its trace context, attached to a series.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// `trace_id`, `span_id` and the filtered attributes (sanitised).
    pub labels: Labels,
    /// The measured value.
    pub value: f64,
    /// When it was measured (ms).
    pub time_ms: i64,
}

/// The exemplars of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesExemplars {
    /// The series' labels.
    pub labels: Labels,
    /// Its exemplars in the window, in time order.
    pub exemplars: Vec<Exemplar>,
}

/// What to do with the rows of one series.
#[derive(Clone, Copy, Debug)]
pub(super) enum RowPlan {
    /// One sample per row into known series.
    Plain(PlainSeries),
    /// Through the row mapping (histograms, summaries, exemplars).
    Mapped,
    /// The rows produce nothing (no metric name, no series the selector can want).
    Skip,
}

/// Where a plain row's samples go: its series, and `target_info`'s (OTLP rows, when wanted).
#[derive(Clone, Copy, Debug)]
pub(super) struct PlainSeries {
    pub(super) main: usize,
    pub(super) target_info: Option<usize>,
}

/// Collects samples per label set.
#[derive(Default)]
pub(super) struct SeriesAccumulator {
    /// Series in order of first sample, and where each label set is.
    pub(super) series: Vec<(Labels, Vec<(i64, f64)>)>,
    pub(super) slots: LabelsMap<usize>,
    /// Plans of the rows of plain series by `series_id` (head batches and unindexed segments),
    /// with the descriptor they were made for.
    pub(super) plans_by_id: HashMap<u64, KnownSeries>,
    /// Map every row on its own, as before the series index (the reference the faster paths are
    /// tested against).
    pub(super) reference_mapping: bool,
    /// Series whose samples are deltas, summed up in [`SeriesAccumulator::finish`].
    pub(super) delta: std::collections::HashSet<Labels>,
    /// Whether the selector may want `target_info`.
    pub(super) want_target_info: bool,
    /// Collecting exemplars instead of samples: series labels → exemplars.
    pub(super) exemplars: Option<HashMap<Labels, Vec<Exemplar>>>,
    /// While a row is mapped in exemplar mode: the series it produced.
    pub(super) row_series: Vec<Labels>,
}

/// The plan of a series' rows, with the identity it was made for.
pub(super) struct KnownSeries {
    descriptor: OwnedDescriptor,
    attributes: Vec<(String, Option<String>)>,
    resource: Vec<(String, Option<String>)>,
    plan: RowPlan,
}

/// A metric descriptor with its own strings.
pub(super) type OwnedDescriptor = [Option<String>; 5];

pub(super) fn owned_descriptor(d: &MetricDescriptor<'_>) -> OwnedDescriptor {
    [
        d.metric_name,
        d.metric_type,
        d.unit,
        d.temporality,
        d.scope_name,
    ]
    .map(|s| s.map(str::to_string))
}

pub(super) fn same_descriptor(owned: &OwnedDescriptor, d: &MetricDescriptor<'_>) -> bool {
    owned
        .iter()
        .zip([
            d.metric_name,
            d.metric_type,
            d.unit,
            d.temporality,
            d.scope_name,
        ])
        .all(|(a, b)| a.as_deref() == b)
}

impl SeriesAccumulator {
    /// The index of the series with `labels`, added if new.
    pub(super) fn slot(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.slots.get(&labels) {
            return i;
        }
        self.series.push((labels.clone(), Vec::new()));
        self.slots.insert(labels, self.series.len() - 1);
        self.series.len() - 1
    }

    pub(super) fn push(&mut self, labels: Labels, t_ms: i64, v: f64) {
        if self.exemplars.is_some() {
            // Exemplar mode: remember the row's series, keep no samples.
            self.row_series.push(labels);
            return;
        }
        let i = self.slot(labels);
        self.series[i].1.push((t_ms, v));
    }

    /// Whether rows of series with descriptor `d` are plain (one sample per row: remote-written
    /// rows, OTLP gauges and sums) and samples are wanted.
    pub(super) fn is_plain(&self, d: &MetricDescriptor<'_>) -> bool {
        self.exemplars.is_none()
            && (d.scope_name == Some(REMOTE_WRITE_SCOPE)
                || matches!(
                    d.metric_type.and_then(MetricType::parse),
                    Some(MetricType::Gauge | MetricType::Sum)
                ))
    }

    /// The shape of series with descriptor `d` when their rows are plain ([`Self::is_plain`]).
    pub(super) fn plain_shape(&self, d: &MetricDescriptor<'_>) -> Option<SeriesShape> {
        self.is_plain(d).then(|| SeriesShape::of(d))
    }

    /// The plan of a plain series (exactly the series `add_batch` would push its rows to).
    pub(super) fn plain_plan(
        &mut self,
        shape: &SeriesShape,
        d: &MetricDescriptor<'_>,
        attributes: Vec<(String, String)>,
        resource: Vec<(String, String)>,
    ) -> RowPlan {
        let remote = d.scope_name == Some(REMOTE_WRITE_SCOPE);
        let mut sets = shape
            .label_sets(attributes, resource, self.want_target_info && !remote)
            .into_iter();
        let Some((main, _)) = sets.next() else {
            return RowPlan::Skip;
        };
        if !remote
            && d.metric_type == Some(MetricType::Sum.as_str())
            && d.temporality == Some(Temporality::Delta.as_str())
        {
            self.delta.insert(main.clone());
        }
        let main = self.slot(main);
        let target_info = sets.next().map(|(l, _)| self.slot(l));
        RowPlan::Plain(PlainSeries { main, target_info })
    }

    /// A plain series' sample at `t` (ms), if within `[start_ns, end_ns]`.
    pub(super) fn push_plain(
        &mut self,
        to: PlainSeries,
        t: i64,
        v: f64,
        stale: bool,
        start_ns: i64,
        end_ns: i64,
    ) {
        if t < start_ns.div_euclid(1_000_000) || t > end_ns.div_euclid(1_000_000) {
            return;
        }
        self.series[to.main].1.push((t, v));
        if let Some(ti) = to.target_info {
            self.series[ti]
                .1
                .push((t, if stale { stale_nan() } else { 1.0 }));
        }
    }

    /// Exemplar mode: attaches row `i`'s exemplars to the series the row produced.
    pub(super) fn attach_exemplars(&mut self, c: &Columns<'_>, i: usize, t_ms: i64) {
        let series = std::mem::take(&mut self.row_series);
        let Some(out) = self.exemplars.as_mut() else {
            return;
        };
        let Some(list) = c.exemplars.filter(|l| l.is_valid(i)) else {
            return;
        };
        let entries = list.value(i);
        let Some(entries) = entries.as_struct_opt() else {
            return;
        };
        let column = |name: &str| entries.column_by_name(name);
        let times = column("time").and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
        let values = column("value").and_then(|c| c.as_primitive_opt::<Float64Type>());
        let ints =
            column("value_int").and_then(|c| c.as_primitive_opt::<arrow::datatypes::Int64Type>());
        let trace_ids = column("trace_id").and_then(|c| c.as_string_opt::<i32>());
        let span_ids = column("span_id").and_then(|c| c.as_string_opt::<i32>());
        let attributes = column("filtered_attributes").and_then(|c| c.as_map_opt());
        // The series an exemplar belongs to: the bucket holding its value for histograms,
        // otherwise the row's one series (`_sum`, `_count`, `target_info` and summary quantiles
        // carry none).
        let buckets: Vec<(f64, &Labels)> = series
            .iter()
            .filter_map(|l| {
                let le = l.get("le")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, l))
            })
            .collect();
        let plain = series.iter().find(|l| {
            l.get("le").is_none()
                && l.get("quantile").is_none()
                && l.metric_name().is_some_and(|n| {
                    n != TARGET_INFO && !n.ends_with("_sum") && !n.ends_with("_count")
                })
        });
        for j in 0..entries.len() {
            let value = match (values, ints) {
                (Some(v), _) if v.is_valid(j) => v.value(j),
                (_, Some(v)) if v.is_valid(j) => v.value(j) as f64,
                _ => continue,
            };
            let time_ms = times
                .filter(|t| t.is_valid(j) && t.value(j) > 0)
                .map_or(t_ms, |t| t.value(j).div_euclid(1_000_000));
            let target = if buckets.is_empty() {
                plain
            } else {
                buckets
                    .iter()
                    .filter(|(bound, _)| value <= *bound)
                    .min_by(|a, b| a.0.total_cmp(&b.0))
                    .map(|(_, l)| *l)
            };
            let Some(target) = target else { continue };
            let mut pairs: Vec<(String, String)> = map_at(attributes, j)
                .into_iter()
                .map(|(k, v)| (sanitize_label_name(&k), v))
                .collect();
            if let Some(id) = trace_ids.filter(|a| a.is_valid(j)) {
                pairs.push(("trace_id".into(), id.value(j).to_string()));
            }
            if let Some(id) = span_ids.filter(|a| a.is_valid(j)) {
                pairs.push(("span_id".into(), id.value(j).to_string()));
            }
            out.entry(target.clone()).or_default().push(Exemplar {
                labels: Labels::new(pairs),
                value,
                time_ms,
            });
        }
    }

    /// The exemplars of the series matching `matchers`, within the time range, in time order.
    pub(super) fn finish_exemplars(
        self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Vec<SeriesExemplars> {
        let mut out: Vec<SeriesExemplars> = self
            .exemplars
            .unwrap_or_default()
            .into_iter()
            .filter(|(labels, _)| labels.matches(matchers))
            .filter_map(|(labels, mut exemplars)| {
                exemplars.retain(|e| e.time_ms >= start_ms && e.time_ms <= end_ms);
                exemplars.sort_by_key(|e| e.time_ms);
                exemplars.dedup();
                (!exemplars.is_empty()).then_some(SeriesExemplars { labels, exemplars })
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Pushes a sample of a delta series (or of a cumulative one when `delta` is false).
    pub(super) fn push_temporal(&mut self, labels: Labels, t_ms: i64, v: f64, delta: bool) {
        if delta && !self.delta.contains(&labels) {
            self.delta.insert(labels.clone());
        }
        self.push(labels, t_ms, v);
    }

    /// Adds the rows of `batch` in `[start_ns, end_ns]`. With `matchers`, rows of a metric that
    /// cannot produce a name the `__name__` matchers accept are skipped before their attributes
    /// are decoded (rows from the series index are already selected: `None`).
    pub(super) fn add_batch(
        &mut self,
        batch: &RecordBatch,
        start_ns: i64,
        end_ns: i64,
        matchers: Option<&Matchers>,
    ) {
        let c = Columns::of(batch);
        let (Some(time), Some(names)) = (c.time, c.name) else {
            return;
        };
        let series_ids = batch
            .column_by_name("series_id")
            .and_then(|c| c.as_primitive_opt::<UInt64Type>())
            .filter(|_| self.exemplars.is_none() && !self.reference_mapping);
        // Per distinct descriptor of the batch (a handful, however many rows): may its rows
        // produce a wanted name?
        let mut wanted: HashMap<MetricDescriptor<'_>, bool> = HashMap::new();
        for i in 0..batch.num_rows() {
            if !time.is_valid(i) || !names.is_valid(i) {
                continue;
            }
            let t_ns = time.value(i);
            if t_ns < start_ns || t_ns > end_ns {
                continue;
            }
            let descriptor = MetricDescriptor {
                metric_name: Some(names.value(i)),
                metric_type: str_at(c.metric_type, i),
                unit: str_at(c.unit, i),
                temporality: str_at(c.temporality, i),
                is_monotonic: c.monotonic.filter(|m| m.is_valid(i)).map(|m| m.value(i)),
                scope_name: str_at(c.scope, i),
            };
            if let Some(matchers) = matchers {
                let wanted = *wanted
                    .entry(descriptor)
                    .or_insert_with(|| name_could_match(&SeriesShape::of(&descriptor), matchers));
                if !wanted {
                    continue;
                }
            }
            // Rows of a plain series seen before skip the attribute decoding.
            if let Some(ids) = series_ids.filter(|ids| ids.is_valid(i)) {
                let id = ids.value(i);
                // `series_id` hashes the name and the attribute sets; the descriptor and the
                // attributes as listed (duplicate keys, hash collisions) are checked too.
                let known = self
                    .plans_by_id
                    .get(&id)
                    .filter(|known| {
                        same_descriptor(&known.descriptor, &descriptor)
                            && map_equals(c.attributes, i, &known.attributes)
                            && map_equals(c.resource, i, &known.resource)
                    })
                    .map(|known| known.plan);
                let plan = match known {
                    Some(plan) => plan,
                    None => {
                        let plan = match self.plain_shape(&descriptor) {
                            Some(shape) => self.plain_plan(
                                &shape,
                                &descriptor,
                                map_at(c.attributes, i),
                                map_at(c.resource, i),
                            ),
                            None => RowPlan::Mapped,
                        };
                        if self.plans_by_id.len() >= MAX_ROW_PLANS {
                            self.plans_by_id.clear();
                        }
                        self.plans_by_id.insert(
                            id,
                            KnownSeries {
                                descriptor: owned_descriptor(&descriptor),
                                attributes: raw_map_at(c.attributes, i),
                                resource: raw_map_at(c.resource, i),
                                plan,
                            },
                        );
                        plan
                    }
                };
                match plan {
                    RowPlan::Plain(to) => {
                        let plain = PlainColumns {
                            time: Some(time),
                            flags: c.flags,
                            value: c.value,
                        };
                        if let Some((t, v, stale)) = plain_sample(&plain, i) {
                            self.push_plain(to, t, v, stale, start_ns, end_ns);
                        }
                        continue;
                    }
                    RowPlan::Skip => continue,
                    RowPlan::Mapped => {}
                }
            }
            let t = t_ns.div_euclid(1_000_000);
            let stale = c
                .flags
                .is_some_and(|f| f.is_valid(i) && f.value(i) & PointFlags::NO_RECORDED_VALUE != 0);
            let name = names.value(i);
            if str_at(c.scope, i) == Some(REMOTE_WRITE_SCOPE) {
                let mut pairs = map_at(c.attributes, i);
                pairs.push((METRIC_NAME.to_string(), name.to_string()));
                let v = if stale {
                    stale_nan()
                } else {
                    f64_at(c.value, i).unwrap_or(f64::NAN)
                };
                self.push(Labels::new(pairs), t, v);
                if self.exemplars.is_some() {
                    self.attach_exemplars(&c, i, t);
                }
                continue;
            }
            self.add_otlp_row(&c, i, name, t, stale);
            if self.exemplars.is_some() {
                self.attach_exemplars(&c, i, t);
            }
        }
    }

    pub(super) fn add_otlp_row(
        &mut self,
        c: &Columns<'_>,
        i: usize,
        name: &str,
        t: i64,
        stale: bool,
    ) {
        let metric_type = str_at(c.metric_type, i).and_then(MetricType::parse);
        let delta = str_at(c.temporality, i) == Some(Temporality::Delta.as_str());
        let monotonic = c.monotonic.is_some_and(|m| m.is_valid(i) && m.value(i));
        let unit = str_at(c.unit, i).unwrap_or("");
        let resource = map_at(c.resource, i);
        if self.want_target_info {
            let info = target_info_labels(&resource);
            self.push(info, t, if stale { stale_nan() } else { 1.0 });
        }
        let mut base = otlp_labels(map_at(c.attributes, i), resource);
        let value_or_stale = |v: f64| if stale { stale_nan() } else { v };
        match metric_type {
            Some(MetricType::Gauge | MetricType::Sum) => {
                let n = family_name(name, unit, metric_type, monotonic);
                base.set(METRIC_NAME, &n);
                let v = value_or_stale(f64_at(c.value, i).unwrap_or(f64::NAN));
                self.push_temporal(base, t, v, metric_type == Some(MetricType::Sum) && delta);
            }
            Some(
                MetricType::Histogram | MetricType::Summary | MetricType::ExponentialHistogram,
            ) => {
                let n = family_name(name, unit, metric_type, monotonic);
                let count = c
                    .count
                    .filter(|a| a.is_valid(i))
                    .map_or(f64::NAN, |a| a.value(i) as f64);
                if let Some(sum) = f64_at(c.sum, i) {
                    let mut l = base.clone();
                    l.set(METRIC_NAME, &format!("{n}_sum"));
                    self.push_temporal(l, t, value_or_stale(sum), delta);
                }
                let mut l = base.clone();
                l.set(METRIC_NAME, &format!("{n}_count"));
                self.push_temporal(l, t, value_or_stale(count), delta);
                match metric_type {
                    Some(MetricType::Histogram) => {
                        self.add_buckets(c, i, &base, &n, t, stale, delta)
                    }
                    Some(MetricType::ExponentialHistogram) => {
                        self.add_exponential_buckets(c, i, &base, &n, t, stale, delta)
                    }
                    _ => self.add_quantiles(c, i, &base, &n, t, stale),
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_exponential_buckets(
        &mut self,
        c: &Columns<'_>,
        i: usize,
        base: &Labels,
        n: &str,
        t: i64,
        stale: bool,
        delta: bool,
    ) {
        let list = |a: Option<&arrow::array::ListArray>| -> Vec<u64> {
            a.filter(|a| a.is_valid(i))
                .and_then(|a| {
                    a.value(i)
                        .as_primitive_opt::<UInt64Type>()
                        .map(|v| v.values().to_vec())
                })
                .unwrap_or_default()
        };
        let int = |a: Option<&arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>| {
            a.filter(|a| a.is_valid(i)).map_or(0, |a| a.value(i))
        };
        let (positive, negative) = (list(c.positive), list(c.negative));
        let histogram = super::otlp_convert::ExpHistogram {
            scale: int(c.scale),
            zero_count: c
                .zero_count
                .filter(|a| a.is_valid(i))
                .map_or(0, |a| a.value(i)),
            zero_threshold: f64_at(c.zero_threshold, i).unwrap_or(0.0),
            positive_offset: int(c.positive_offset),
            positive: &positive,
            negative_offset: int(c.negative_offset),
            negative: &negative,
            count: c.count.filter(|a| a.is_valid(i)).map_or(0, |a| a.value(i)),
        };
        for (le, cumulative) in super::otlp_convert::exponential_to_classic(&histogram) {
            let le = super::value::format_go_float(le);
            self.push_bucket(
                base,
                n,
                &le,
                t,
                if stale {
                    stale_nan()
                } else {
                    cumulative as f64
                },
                delta,
            );
        }
    }

    /// One `<n>_bucket{le}` sample.
    pub(super) fn push_bucket(
        &mut self,
        base: &Labels,
        n: &str,
        le: &str,
        t: i64,
        v: f64,
        delta: bool,
    ) {
        let mut l = base.clone();
        l.set(METRIC_NAME, &format!("{n}_bucket"));
        l.set("le", le);
        self.push_temporal(l, t, v, delta);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_buckets(
        &mut self,
        c: &Columns<'_>,
        i: usize,
        base: &Labels,
        n: &str,
        t: i64,
        stale: bool,
        delta: bool,
    ) {
        let (Some(counts), Some(bounds)) = (c.bucket_counts, c.bounds) else {
            return;
        };
        if !counts.is_valid(i) || !bounds.is_valid(i) {
            return;
        }
        let (counts, bounds) = (counts.value(i), bounds.value(i));
        let (Some(counts), Some(bounds)) = (
            counts.as_primitive_opt::<UInt64Type>(),
            bounds.as_primitive_opt::<Float64Type>(),
        ) else {
            return;
        };
        let mut cumulative = 0u64;
        for j in 0..counts.len() {
            cumulative = cumulative.saturating_add(counts.value(j));
            let le = if j < bounds.len() {
                super::value::format_go_float(bounds.value(j))
            } else {
                "+Inf".to_string()
            };
            self.push_bucket(
                base,
                n,
                &le,
                t,
                if stale {
                    stale_nan()
                } else {
                    cumulative as f64
                },
                delta,
            );
        }
    }

    pub(super) fn add_quantiles(
        &mut self,
        c: &Columns<'_>,
        i: usize,
        base: &Labels,
        n: &str,
        t: i64,
        stale: bool,
    ) {
        let Some(q) = c.quantiles.filter(|q| q.is_valid(i)) else {
            return;
        };
        let entries = q.value(i);
        let Some(entries) = entries.as_struct_opt() else {
            return;
        };
        let (Some(qs), Some(vs)) = (
            entries.column(0).as_primitive_opt::<Float64Type>(),
            entries.column(1).as_primitive_opt::<Float64Type>(),
        ) else {
            return;
        };
        for j in 0..entries.len() {
            let mut l = base.clone();
            l.set(METRIC_NAME, n);
            l.set("quantile", &super::value::format_go_float(qs.value(j)));
            self.push(l, t, if stale { stale_nan() } else { vs.value(j) });
        }
    }

    pub(super) fn finish(self, matchers: &Matchers) -> Vec<Series> {
        let delta = self.delta;
        let mut out: Vec<Series> = self
            .series
            .into_iter()
            .filter(|(labels, samples)| !samples.is_empty() && labels.matches(matchers))
            .map(|(labels, mut samples)| {
                if !samples.is_sorted_by_key(|(t, _)| *t) {
                    samples.sort_by_key(|(t, _)| *t);
                }
                // Of samples at one timestamp the first read wins, but a value beats a staleness
                // marker (`target_info` gets one sample per metric of its resource, and whether
                // the resource is there must not depend on the order rows are read in).
                samples.dedup_by(|later, kept| {
                    if later.0 != kept.0 {
                        return false;
                    }
                    if super::value::is_stale_nan(kept.1) && !super::value::is_stale_nan(later.1) {
                        *kept = *later;
                    }
                    true
                });
                if delta.contains(&labels) {
                    super::otlp_convert::delta_to_cumulative(&mut samples);
                }
                Series { labels, samples }
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}
