//! A [`SeriesSource`] over Lumen's `metrics` table: rows of the selector's time range, read from a
//! [`SnapshotSource`] (head batches and Parquet segments), grouped into Prometheus series.
//!
//! Remote-written rows (`scope_name = 'prometheus.remote_write'`) become series whose labels are
//! their attributes plus `__name__`. OTLP rows go through the OpenTelemetry → Prometheus mapping:
//! sanitised names with a unit suffix, `_total` for monotonic cumulative sums, histograms as
//! cumulative `_bucket{le}` series plus `_sum` and `_count`, summaries as `{quantile}` series plus
//! `_sum` and `_count`, and `job` / `instance` from the resource. A data point flagged "no recorded
//! value" is a staleness marker.
//!
//! Delta sums and histograms are converted to cumulative per series over the rows read, and
//! exponential histograms to classic buckets ([`super::otlp_convert`] documents both
//! approximations). `target_info{job, instance, …}` carries the other resource attributes.
//!
//! Segments are read through their series index (`index_select.rs`): only the rows of the
//! series a selector can match. Head batches (and segments whose index cannot be had) are read
//! whole, but rows of a metric that cannot produce a name the `__name__` matchers accept are
//! skipped before their attributes are decoded. `SeriesShape` says which names and label sets a
//! series' rows can produce; keep it in step with `SeriesAccumulator::add_otlp_row`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type, UInt64Type};
use lumen_storage::{MetricDescriptor, Table, TimeRange};
use promql_parser::label::Matchers;

use super::index_select::{self, name_could_match};
use super::value::{Labels, LabelsMap, METRIC_NAME, Series, stale_nan};

/// Most row plans one read remembers by `series_id` (beyond that it starts over).
const MAX_ROW_PLANS: usize = 1 << 20;
use super::{PromqlError, SeriesSource};
use crate::snapshot::SnapshotSource;

/// `scope_name` of rows received through Prometheus remote write.
const REMOTE_WRITE_SCOPE: &str = "prometheus.remote_write";

/// OTLP `DataPointFlags.FLAG_NO_RECORDED_VALUE`.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// The columns the mapping reads.
const COLUMNS: &[&str] = &[
    "time",
    "metric_name",
    "unit",
    "metric_type",
    "temporality",
    "is_monotonic",
    "flags",
    "attributes",
    "value",
    "count",
    "sum",
    "bucket_counts",
    "explicit_bounds",
    "quantiles",
    "resource_attributes",
    "scope_name",
    "scale",
    "zero_count",
    "zero_threshold",
    "positive_offset",
    "positive_bucket_counts",
    "negative_offset",
    "negative_bucket_counts",
];

/// One exemplar: a sampled measurement with its trace context, attached to a series.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    /// `trace_id`, `span_id` and the filtered attributes (sanitised).
    pub labels: Labels,
    pub value: f64,
    pub time_ms: i64,
}

/// The exemplars of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesExemplars {
    pub labels: Labels,
    pub exemplars: Vec<Exemplar>,
}

/// Reads PromQL series from the `metrics` table.
pub struct MetricsTableSource {
    snapshots: Arc<dyn SnapshotSource>,
    use_series_index: bool,
    /// Distinct metric descriptors per segment file (segments never change), for metadata.
    descriptors: std::sync::Mutex<HashMap<std::path::PathBuf, Arc<Vec<Descriptor>>>>,
}

/// (name, type, unit, description, monotonic, remote-written) of a metric, as stored.
type Descriptor = (String, String, String, String, bool, bool);

impl MetricsTableSource {
    /// A source reading snapshots from `snapshots` (the storage engine, or a fake in tests).
    pub fn new(snapshots: Arc<dyn SnapshotSource>) -> Self {
        MetricsTableSource {
            snapshots,
            use_series_index: true,
            descriptors: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The same source mapping every row of the time range, as before the series index: no
    /// index, no name pre-filter (to compare answers and timings; the answers are identical).
    pub fn without_series_index(mut self) -> Self {
        self.use_series_index = false;
        self
    }

    /// This source as read by one query: reads stop with a `timeout` error once `deadline` has
    /// passed (checked before each segment and each head or decoded batch), so a query past its time
    /// gives its thread back instead of reading on.
    pub fn until(&self, deadline: Option<Instant>) -> QuerySource<'_> {
        QuerySource {
            source: self,
            limits: ReadLimits {
                deadline,
                small_only: false,
            },
        }
    }

    /// Like [`MetricsTableSource::until`], for a query tried within a small time budget on a
    /// thread that must not block long: a read that would load a series index from disk (a
    /// long step with no deadline check inside) stops at once with a `timeout` error instead.
    pub fn within_budget(&self, budget: Instant) -> QuerySource<'_> {
        QuerySource {
            source: self,
            limits: ReadLimits {
                deadline: Some(budget),
                small_only: true,
            },
        }
    }
}

/// A [`MetricsTableSource`] read on behalf of one query, with that query's deadline.
pub struct QuerySource<'a> {
    source: &'a MetricsTableSource,
    limits: ReadLimits,
}

/// When a read stops (see [`QuerySource`]).
#[derive(Clone, Copy)]
struct ReadLimits {
    deadline: Option<Instant>,
    /// See [`MetricsTableSource::within_budget`].
    small_only: bool,
}

impl QuerySource<'_> {
    /// See [`MetricsTableSource::select_exemplars`].
    pub fn select_exemplars(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>, PromqlError> {
        let mut acc = SeriesAccumulator {
            exemplars: Some(HashMap::new()),
            ..Default::default()
        };
        self.source
            .read(&mut acc, matchers, start_ms, end_ms, self.limits)?;
        Ok(acc.finish_exemplars(matchers, start_ms, end_ms))
    }

    /// See [`MetricsTableSource::metadata`].
    pub fn metadata(
        &self,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<
        std::collections::BTreeMap<String, std::collections::BTreeSet<FamilyMetadata>>,
        PromqlError,
    > {
        self.source
            .metadata_until(start_ms, end_ms, self.limits.deadline)
    }
}

impl SeriesSource for QuerySource<'_> {
    fn select(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromqlError> {
        let mut acc = SeriesAccumulator {
            want_target_info: matchers_accept_name(matchers, TARGET_INFO),
            reference_mapping: !self.source.use_series_index,
            ..Default::default()
        };
        self.source
            .read(&mut acc, matchers, start_ms, end_ms, self.limits)?;
        Ok(acc.finish(matchers))
    }

    fn deadline(&self) -> Option<Instant> {
        self.limits.deadline
    }
}

/// A `timeout` error once `deadline` has passed.
fn check_deadline(deadline: Option<Instant>) -> Result<(), PromqlError> {
    match deadline {
        Some(deadline) if Instant::now() > deadline => Err(PromqlError::Timeout(
            "query timed out in query execution (reading series)".into(),
        )),
        _ => Ok(()),
    }
}

impl MetricsTableSource {
    /// The exemplars of the series matching `matchers`, with exemplar times in `[start_ms,
    /// end_ms]`. A histogram's exemplars go to the `_bucket` series whose `le` holds their value
    /// (as Prometheus's OTLP translation does); a sum's or gauge's to its series.
    pub fn select_exemplars(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<SeriesExemplars>, PromqlError> {
        self.until(None)
            .select_exemplars(matchers, start_ms, end_ms)
    }

    fn read(
        &self,
        acc: &mut SeriesAccumulator,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
        limits: ReadLimits,
    ) -> Result<(), PromqlError> {
        let deadline = limits.deadline;
        check_deadline(deadline)?;
        let columns: Vec<&str> = if acc.exemplars.is_some() {
            COLUMNS.iter().copied().chain(["exemplars"]).collect()
        } else {
            COLUMNS.to_vec()
        };
        let columns = columns.as_slice();
        let start_ns = start_ms.saturating_mul(1_000_000);
        let end_ns = end_ms.saturating_mul(1_000_000).saturating_add(999_999);
        let snapshot = self.snapshots.snapshot(
            Table::Metrics,
            TimeRange {
                start: Some(start_ns),
                end: Some(end_ns),
            },
        );
        let prefilter = self.use_series_index.then_some(matchers);
        for batch in &snapshot.head {
            check_deadline(deadline)?;
            acc.add_batch(batch, start_ns, end_ns, prefilter);
        }
        let too_big = || {
            PromqlError::Timeout(
                "over the inline budget: more to load than a small query reads".into(),
            )
        };
        for segment in &snapshot.segments {
            check_deadline(deadline)?;
            let loaded = if !limits.small_only {
                self.use_series_index
                    .then(|| lumen_storage::load_series_index(segment))
            } else {
                // A small query only reads what is in memory: the index, and what is derived from it.
                match lumen_storage::index::cached(segment) {
                    Some(index) if self.use_series_index && index_select::extras_made(&index) => {
                        Some(Ok(index))
                    }
                    _ => return Err(too_big()),
                }
            };
            if let Some(loaded) = loaded {
                match loaded {
                    Ok(index) => {
                        let mut sink = IndexedSink {
                            acc: &mut *acc,
                            segment,
                            columns,
                            start_ns,
                            end_ns,
                            plans: Vec::new(),
                            fill: Vec::new(),
                            identity: None,
                            extras: index_select::extras(&index),
                            limits,
                        };
                        index_select::read_indexed(&index, segment, matchers, &mut sink)?;
                        let fill: Vec<(u64, Vec<(i64, f64)>)> =
                            sink.fill.into_iter().flatten().collect();
                        if !limits.small_only {
                            // (Making room in the sample cache can take a while: not on a small query's budget.)
                            super::sample_cache::insert_many(segment, fill);
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(
                        segment = %segment.path.display(),
                        error = %e,
                        "no series index for the segment; reading it whole"
                    ),
                }
            }
            read_segment(&segment.path, columns, deadline, &mut |batch| {
                acc.add_batch(batch, start_ns, end_ns, prefilter)
            })?;
        }
        Ok(())
    }
}

/// Takes the rows of an indexed read: rows of plain series (one sample per row, labels known
/// from the index) go straight to their series; the others get their identity columns back and
/// go through the row mapping.
struct IndexedSink<'a> {
    acc: &'a mut SeriesAccumulator,
    segment: &'a lumen_storage::SegmentMeta,
    /// The columns the row mapping reads.
    columns: &'a [&'static str],
    start_ns: i64,
    end_ns: i64,
    /// Per selected entry of the segment being read.
    plans: Vec<RowPlan>,
    /// Per selected entry read from the file, for the sample cache: a plain series' first row
    /// and every sample of it read so far.
    fill: Vec<Option<CacheFill>>,
    /// The entries' identity columns, built when a mapped row first needs them.
    identity: Option<RecordBatch>,
    /// What the segment's index tells of its descriptors ([`index_select::extras`]).
    extras: std::borrow::Cow<'a, index_select::IndexExtras>,
    /// The read's deadline (a `timeout` error at the first check past it), and whether it may
    /// only use what is in memory.
    limits: ReadLimits,
}

/// The columns plain series need.
const PLAIN_COLUMNS: &[&str] = &["time", "flags", "value"];

impl index_select::IndexedRows for IndexedSink<'_> {
    fn check(&self) -> Result<(), PromqlError> {
        check_deadline(self.limits.deadline)
    }

    fn in_memory_only(&self) -> bool {
        self.limits.small_only
    }

    fn plan(
        &mut self,
        entries: &[lumen_storage::SeriesEntry<'_>],
    ) -> (Vec<&'static str>, Vec<bool>) {
        self.identity = None;
        let shapes = &self.extras.shapes;
        self.plans = entries
            .iter()
            .map(|e| {
                let d = e.descriptor();
                let shape = shapes
                    .get(e.descriptor_ordinal())
                    .filter(|_| self.acc.is_plain(&d));
                match shape {
                    Some(shape) => self.acc.plain_plan(
                        shape,
                        &d,
                        index_select::pairs(e.attributes()),
                        index_select::pairs(e.resource_attributes()),
                    ),
                    None => RowPlan::Mapped,
                }
            })
            .collect();
        // Plain series (without `target_info`, whose staleness comes from the flags) are cached.
        let cacheable: Vec<Option<u64>> = entries
            .iter()
            .zip(&self.plans)
            .map(|(e, plan)| match plan {
                RowPlan::Plain(p) if p.target_info.is_none() => Some(e.first_row()),
                _ => None,
            })
            .collect();
        let cached = super::sample_cache::get_many(self.segment, &cacheable);
        let (start_ms, end_ms) = (
            self.start_ns.div_euclid(1_000_000),
            self.end_ns.div_euclid(1_000_000),
        );
        let mut read = Vec::with_capacity(entries.len());
        self.fill = Vec::with_capacity(entries.len());
        for ((plan, first_row), hit) in self.plans.iter().zip(&cacheable).zip(cached) {
            match (plan, hit) {
                (RowPlan::Plain(to), Some(samples)) => {
                    let out = &mut self.acc.series[to.main].1;
                    let lo = samples.partition_point(|(t, _)| *t < start_ms);
                    let hi = lo + samples[lo..].partition_point(|(t, _)| *t <= end_ms);
                    if samples[lo..hi].is_sorted_by_key(|(t, _)| *t) {
                        out.extend_from_slice(&samples[lo..hi]);
                    } else {
                        out.extend(
                            samples
                                .iter()
                                .filter(|(t, _)| *t >= start_ms && *t <= end_ms),
                        );
                    }
                    read.push(false);
                    self.fill.push(None);
                }
                _ => {
                    read.push(true);
                    self.fill.push(first_row.map(|row| (row, Vec::new())));
                }
            }
        }
        let columns = if self.plans.iter().any(|p| matches!(p, RowPlan::Mapped)) {
            self.columns.to_vec()
        } else {
            PLAIN_COLUMNS.to_vec()
        };
        (columns, read)
    }

    fn rows(
        &mut self,
        batch: &RecordBatch,
        owners: &arrow::array::UInt32Array,
        entries: &[lumen_storage::SeriesEntry<'_>],
    ) -> Result<(), PromqlError> {
        check_deadline(self.limits.deadline)?;
        let c = PlainColumns::of(batch);
        let mut mapped: Vec<u32> = Vec::new();
        for (i, owner) in owners.values().iter().enumerate() {
            match self.plans.get(*owner as usize) {
                Some(RowPlan::Plain(plain)) => {
                    let Some((t, v, stale)) = plain_sample(&c, i) else {
                        continue;
                    };
                    if let Some(Some((_, fill))) = self.fill.get_mut(*owner as usize) {
                        fill.push((t, v));
                    }
                    self.acc
                        .push_plain(*plain, t, v, stale, self.start_ns, self.end_ns);
                }
                Some(RowPlan::Mapped) => mapped.push(i as u32),
                Some(RowPlan::Skip) | None => {}
            }
        }
        if mapped.is_empty() {
            return Ok(());
        }
        if self.identity.is_none() {
            self.identity = Some(index_select::identity_batch(entries)?);
        }
        let Some(identity) = &self.identity else {
            return Ok(());
        };
        let err = |e: arrow::error::ArrowError| PromqlError::Source(format!("series index: {e}"));
        let rows = arrow::array::UInt32Array::from(mapped);
        let sub = arrow::compute::take_record_batch(batch, &rows).map_err(err)?;
        let sub_owners = arrow::compute::take(owners, &rows, None).map_err(err)?;
        let sub_owners = sub_owners.as_primitive::<UInt32Type>();
        let full = index_select::with_identity(&sub, identity, sub_owners)?;
        self.acc.add_batch(&full, self.start_ns, self.end_ns, None);
        Ok(())
    }
}

/// A plain series' first row in a segment and its samples read so far (for the sample cache).
type CacheFill = (u64, Vec<(i64, f64)>);

/// What to do with the rows of one series.
#[derive(Clone, Copy, Debug)]
enum RowPlan {
    /// One sample per row into known series.
    Plain(PlainSeries),
    /// Through the row mapping (histograms, summaries, exemplars).
    Mapped,
    /// The rows produce nothing (no metric name, no series the selector can want).
    Skip,
}

/// Where a plain row's samples go: its series, and `target_info`'s (OTLP rows, when wanted).
#[derive(Clone, Copy, Debug)]
struct PlainSeries {
    main: usize,
    target_info: Option<usize>,
}

/// Row `i` of a plain series as `(time ms, value, stale)`: the value is the staleness marker when
/// the row is flagged "no recorded value", NaN when missing. `None` without a time.
fn plain_sample(c: &PlainColumns<'_>, i: usize) -> Option<(i64, f64, bool)> {
    let time = c.time.filter(|t| t.is_valid(i))?;
    let t = time.value(i).div_euclid(1_000_000);
    let stale = c
        .flags
        .is_some_and(|f| f.is_valid(i) && f.value(i) & FLAG_NO_RECORDED_VALUE != 0);
    let v = if stale {
        stale_nan()
    } else {
        f64_at(c.value, i).unwrap_or(f64::NAN)
    };
    Some((t, v, stale))
}

/// The columns a plain row needs.
struct PlainColumns<'a> {
    time: Option<&'a arrow::array::PrimitiveArray<TimestampNanosecondType>>,
    flags: Option<&'a arrow::array::PrimitiveArray<UInt32Type>>,
    value: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
}

impl<'a> PlainColumns<'a> {
    fn of(batch: &'a RecordBatch) -> Self {
        PlainColumns {
            time: batch
                .column_by_name("time")
                .and_then(|c| c.as_primitive_opt()),
            flags: batch
                .column_by_name("flags")
                .and_then(|c| c.as_primitive_opt()),
            value: batch
                .column_by_name("value")
                .and_then(|c| c.as_primitive_opt()),
        }
    }
}

/// What `/api/v1/metadata` says of one metric family.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FamilyMetadata {
    /// `counter`, `gauge`, `histogram`, `summary` or `unknown`.
    pub kind: &'static str,
    pub help: String,
    pub unit: String,
}

impl MetricsTableSource {
    /// The metric families with data in `[start_ms, end_ms]`, with their type, help (the OTLP
    /// description, or the remote-written HELP) and unit, by Prometheus family name.
    pub fn metadata(
        &self,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<
        std::collections::BTreeMap<String, std::collections::BTreeSet<FamilyMetadata>>,
        PromqlError,
    > {
        self.metadata_until(start_ms, end_ms, None)
    }

    /// [`MetricsTableSource::metadata`], stopping with a `timeout` error once `deadline` has passed.
    fn metadata_until(
        &self,
        start_ms: i64,
        end_ms: i64,
        deadline: Option<Instant>,
    ) -> Result<
        std::collections::BTreeMap<String, std::collections::BTreeSet<FamilyMetadata>>,
        PromqlError,
    > {
        check_deadline(deadline)?;
        const META_COLUMNS: &[&str] = &[
            "time",
            "metric_name",
            "metric_type",
            "unit",
            "description",
            "is_monotonic",
            "scope_name",
        ];
        let start_ns = start_ms.saturating_mul(1_000_000);
        let end_ns = end_ms.saturating_mul(1_000_000).saturating_add(999_999);
        let snapshot = self.snapshots.snapshot(
            Table::Metrics,
            TimeRange {
                start: Some(start_ns),
                end: Some(end_ns),
            },
        );
        // Distinct descriptors first (a handful per batch), mapped once each.
        let distinct_of = |batch: &RecordBatch,
                           into: &mut std::collections::HashSet<Descriptor>,
                           window: Option<(i64, i64)>| {
            let col = |name: &str| batch.column_by_name(name);
            let names = col("metric_name").and_then(|c| c.as_string_opt::<i32>());
            let types = col("metric_type").and_then(|c| c.as_string_opt::<i32>());
            let units = col("unit").and_then(|c| c.as_string_opt::<i32>());
            let help = col("description").and_then(|c| c.as_string_opt::<i32>());
            let mono = col("is_monotonic").and_then(|c| c.as_boolean_opt());
            let scope = col("scope_name").and_then(|c| c.as_string_opt::<i32>());
            let time = col("time").and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>());
            let Some(names) = names else { return };
            for i in 0..batch.num_rows() {
                if !names.is_valid(i) {
                    continue;
                }
                if let (Some((start, end)), Some(time)) = (window, time)
                    && time.is_valid(i)
                    && (time.value(i) < start || time.value(i) > end)
                {
                    continue;
                }
                into.insert((
                    names.value(i).to_string(),
                    str_at(types, i).unwrap_or("").to_string(),
                    str_at(units, i).unwrap_or("").to_string(),
                    str_at(help, i).unwrap_or("").to_string(),
                    mono.is_some_and(|m| m.is_valid(i) && m.value(i)),
                    str_at(scope, i) == Some(REMOTE_WRITE_SCOPE),
                ));
            }
        };
        let mut distinct: std::collections::HashSet<Descriptor> = std::collections::HashSet::new();
        for batch in &snapshot.head {
            distinct_of(batch, &mut distinct, Some((start_ns, end_ns)));
        }
        for segment in &snapshot.segments {
            check_deadline(deadline)?;
            let cached = self
                .descriptors
                .lock()
                .ok()
                .and_then(|c| c.get(&segment.path).cloned());
            let list = match cached {
                Some(list) => list,
                None => {
                    let columns: Vec<&str> = META_COLUMNS
                        .iter()
                        .copied()
                        .filter(|c| *c != "time")
                        .collect();
                    let mut set = std::collections::HashSet::new();
                    read_segment(&segment.path, &columns, deadline, &mut |batch| {
                        distinct_of(batch, &mut set, None)
                    })?;
                    let list = Arc::new(set.into_iter().collect::<Vec<_>>());
                    if let Ok(mut cache) = self.descriptors.lock() {
                        if cache.len() > 100_000 {
                            cache.clear();
                        }
                        cache.insert(segment.path.clone(), Arc::clone(&list));
                    }
                    list
                }
            };
            distinct.extend(list.iter().cloned());
        }
        let mut out: std::collections::BTreeMap<
            String,
            std::collections::BTreeSet<FamilyMetadata>,
        > = std::collections::BTreeMap::new();
        for (name, metric_type, unit, help, monotonic, remote) in distinct {
            let (family, kind, unit) = if remote {
                // Remote-written series keep their names; the family type comes from the name.
                let (family, kind) = match name.strip_suffix("_bucket") {
                    Some(base) => (base.to_string(), "histogram"),
                    None if (metric_type == "sum" && monotonic) || name.ends_with("_total") => {
                        (name.clone(), "counter")
                    }
                    // Sent with metadata (HELP or UNIT came along): a gauge; without: unknown.
                    None if !help.is_empty() || !unit.is_empty() => (name.clone(), "gauge"),
                    None => (name.clone(), "unknown"),
                };
                (family, kind, unit)
            } else {
                let kind = match metric_type.as_str() {
                    "sum" if monotonic => "counter",
                    "sum" | "gauge" => "gauge",
                    "histogram" | "exponential_histogram" => "histogram",
                    "summary" => "summary",
                    _ => "unknown",
                };
                let family = family_name(&name, &unit, &metric_type, monotonic);
                (family, kind, unit_suffix(&unit, metric_type == "gauge"))
            };
            out.entry(family)
                .or_default()
                .insert(FamilyMetadata { kind, help, unit });
        }
        // Remote-written `_sum`/`_count` of a histogram family belong to it.
        let histograms: Vec<String> = out
            .iter()
            .filter(|(_, m)| m.iter().any(|m| m.kind == "histogram"))
            .map(|(n, _)| n.clone())
            .collect();
        for base in histograms {
            for suffix in ["_sum", "_count"] {
                if let Some(part) = out.get(&format!("{base}{suffix}"))
                    && part
                        .iter()
                        .all(|m| m.kind != "histogram" && m.kind != "summary")
                {
                    out.remove(&format!("{base}{suffix}"));
                }
            }
        }
        Ok(out)
    }
}

impl SeriesSource for MetricsTableSource {
    fn select(
        &self,
        matchers: &Matchers,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, PromqlError> {
        self.until(None).select(matchers, start_ms, end_ms)
    }
}

/// Reads `columns` of every row of the segment file at `path`.
fn read_segment(
    path: &std::path::Path,
    columns: &[&str],
    deadline: Option<Instant>,
    each: &mut dyn FnMut(&RecordBatch),
) -> Result<(), PromqlError> {
    let err =
        |e: &dyn std::fmt::Display| PromqlError::Source(format!("segment {}: {e}", path.display()));
    let builder = super::parquet_cache::reader_builder(path)?;
    let mask = lumen_storage::segment::root_projection(builder.parquet_schema(), |name| {
        columns.contains(&name)
    });
    for batch in builder.with_projection(mask).build().map_err(|e| err(&e))? {
        check_deadline(deadline)?;
        each(&batch.map_err(|e| err(&e))?);
    }
    Ok(())
}

/// The series of resource attributes.
pub(super) const TARGET_INFO: &str = "target_info";

/// Whether a series named `name` could pass the selector's `__name__` matchers.
fn matchers_accept_name(matchers: &Matchers, name: &str) -> bool {
    let labels = Labels::new(vec![(METRIC_NAME.to_string(), name.to_string())]);
    matchers
        .matchers
        .iter()
        .filter(|m| m.name == METRIC_NAME)
        .all(|m| labels.matches_all(std::slice::from_ref(m)))
}

/// Collects samples per label set.
#[derive(Default)]
struct SeriesAccumulator {
    /// Series in order of first sample, and where each label set is.
    series: Vec<(Labels, Vec<(i64, f64)>)>,
    slots: LabelsMap<usize>,
    /// Plans of the rows of plain series by `series_id` (head batches and unindexed segments),
    /// with the descriptor they were made for.
    plans_by_id: HashMap<u64, KnownSeries>,
    /// Map every row on its own, as before the series index (the reference the faster paths are
    /// tested against).
    reference_mapping: bool,
    /// Series whose samples are deltas, summed up in [`SeriesAccumulator::finish`].
    delta: std::collections::HashSet<Labels>,
    /// Whether the selector may want `target_info`.
    want_target_info: bool,
    /// Collecting exemplars instead of samples: series labels → exemplars.
    exemplars: Option<HashMap<Labels, Vec<Exemplar>>>,
    /// While a row is mapped in exemplar mode: the series it produced.
    row_series: Vec<Labels>,
}

/// Typed views of one batch's columns; a missing or mistyped column reads as null.
struct Columns<'a> {
    time: Option<&'a arrow::array::PrimitiveArray<TimestampNanosecondType>>,
    name: Option<&'a arrow::array::StringArray>,
    unit: Option<&'a arrow::array::StringArray>,
    metric_type: Option<&'a arrow::array::StringArray>,
    temporality: Option<&'a arrow::array::StringArray>,
    monotonic: Option<&'a arrow::array::BooleanArray>,
    flags: Option<&'a arrow::array::PrimitiveArray<UInt32Type>>,
    attributes: Option<&'a MapArray>,
    resource: Option<&'a MapArray>,
    scope: Option<&'a arrow::array::StringArray>,
    scale: Option<&'a arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>,
    zero_count: Option<&'a arrow::array::PrimitiveArray<UInt64Type>>,
    zero_threshold: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
    positive_offset: Option<&'a arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>,
    positive: Option<&'a arrow::array::ListArray>,
    negative_offset: Option<&'a arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>,
    negative: Option<&'a arrow::array::ListArray>,
    exemplars: Option<&'a arrow::array::ListArray>,
    value: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
    count: Option<&'a arrow::array::PrimitiveArray<UInt64Type>>,
    sum: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
    bucket_counts: Option<&'a arrow::array::ListArray>,
    bounds: Option<&'a arrow::array::ListArray>,
    quantiles: Option<&'a arrow::array::ListArray>,
}

impl<'a> Columns<'a> {
    fn of(batch: &'a RecordBatch) -> Self {
        let col = |name: &str| -> Option<&'a ArrayRef> { batch.column_by_name(name) };
        Columns {
            time: col("time").and_then(|c| c.as_primitive_opt()),
            name: col("metric_name").and_then(|c| c.as_string_opt()),
            unit: col("unit").and_then(|c| c.as_string_opt()),
            metric_type: col("metric_type").and_then(|c| c.as_string_opt()),
            temporality: col("temporality").and_then(|c| c.as_string_opt()),
            monotonic: col("is_monotonic").and_then(|c| c.as_boolean_opt()),
            flags: col("flags").and_then(|c| c.as_primitive_opt()),
            attributes: col("attributes").and_then(|c| c.as_map_opt()),
            resource: col("resource_attributes").and_then(|c| c.as_map_opt()),
            scope: col("scope_name").and_then(|c| c.as_string_opt()),
            scale: col("scale").and_then(|c| c.as_primitive_opt()),
            zero_count: col("zero_count").and_then(|c| c.as_primitive_opt()),
            zero_threshold: col("zero_threshold").and_then(|c| c.as_primitive_opt()),
            positive_offset: col("positive_offset").and_then(|c| c.as_primitive_opt()),
            positive: col("positive_bucket_counts").and_then(|c| c.as_list_opt()),
            negative_offset: col("negative_offset").and_then(|c| c.as_primitive_opt()),
            negative: col("negative_bucket_counts").and_then(|c| c.as_list_opt()),
            exemplars: col("exemplars").and_then(|c| c.as_list_opt()),
            value: col("value").and_then(|c| c.as_primitive_opt()),
            count: col("count").and_then(|c| c.as_primitive_opt()),
            sum: col("sum").and_then(|c| c.as_primitive_opt()),
            bucket_counts: col("bucket_counts").and_then(|c| c.as_list_opt()),
            bounds: col("explicit_bounds").and_then(|c| c.as_list_opt()),
            quantiles: col("quantiles").and_then(|c| c.as_list_opt()),
        }
    }
}

fn str_at(a: Option<&arrow::array::StringArray>, i: usize) -> Option<&str> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

fn f64_at(a: Option<&arrow::array::PrimitiveArray<Float64Type>>, i: usize) -> Option<f64> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

/// The `(key, value)` pairs of row `i` of a map column.
fn map_at(a: Option<&MapArray>, i: usize) -> Vec<(String, String)> {
    let Some(a) = a.filter(|a| a.is_valid(i)) else {
        return Vec::new();
    };
    let entries = a.value(i);
    let (Some(keys), Some(values)) = (
        entries.column(0).as_string_opt::<i32>(),
        entries.column(1).as_string_opt::<i32>(),
    ) else {
        return Vec::new();
    };
    (0..entries.len())
        .filter(|&j| values.is_valid(j))
        .map(|j| (keys.value(j).to_string(), values.value(j).to_string()))
        .collect()
}

/// The plan of a series' rows, with the identity it was made for.
struct KnownSeries {
    descriptor: OwnedDescriptor,
    attributes: Vec<(String, Option<String>)>,
    resource: Vec<(String, Option<String>)>,
    plan: RowPlan,
}

/// The entries of row `i` of a map column as listed (duplicates and null values included).
fn raw_map_at(a: Option<&MapArray>, i: usize) -> Vec<(String, Option<String>)> {
    let Some((keys, values, range)) = map_entries(a, i) else {
        return Vec::new();
    };
    range
        .map(|j| {
            (
                keys.value(j).to_string(),
                values.is_valid(j).then(|| values.value(j).to_string()),
            )
        })
        .collect()
}

/// Whether row `i` of a map column lists exactly `expected` (without allocating).
fn map_equals(a: Option<&MapArray>, i: usize, expected: &[(String, Option<String>)]) -> bool {
    let Some((keys, values, range)) = map_entries(a, i) else {
        return expected.is_empty();
    };
    range.len() == expected.len()
        && range.zip(expected).all(|(j, (k, v))| {
            keys.value(j) == k && (values.is_valid(j).then(|| values.value(j)) == v.as_deref())
        })
}

/// The key and value arrays of a map column and the entries of its row `i` (`None` for a null or
/// missing map, or keys or values that are not strings).
fn map_entries(
    a: Option<&MapArray>,
    i: usize,
) -> Option<(
    &arrow::array::StringArray,
    &arrow::array::StringArray,
    std::ops::Range<usize>,
)> {
    let a = a.filter(|a| a.is_valid(i))?;
    let keys = a.keys().as_string_opt::<i32>()?;
    let values = a.values().as_string_opt::<i32>()?;
    let offsets = a.value_offsets();
    let (start, end) = (offsets[i] as usize, offsets[i + 1] as usize);
    Some((keys, values, start..end))
}

/// A metric descriptor with its own strings.
type OwnedDescriptor = [Option<String>; 5];

fn owned_descriptor(d: &MetricDescriptor<'_>) -> OwnedDescriptor {
    [
        d.metric_name,
        d.metric_type,
        d.unit,
        d.temporality,
        d.scope_name,
    ]
    .map(|s| s.map(str::to_string))
}

fn same_descriptor(owned: &OwnedDescriptor, d: &MetricDescriptor<'_>) -> bool {
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
    fn slot(&mut self, labels: Labels) -> usize {
        if let Some(&i) = self.slots.get(&labels) {
            return i;
        }
        self.series.push((labels.clone(), Vec::new()));
        self.slots.insert(labels, self.series.len() - 1);
        self.series.len() - 1
    }

    fn push(&mut self, labels: Labels, t_ms: i64, v: f64) {
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
    fn is_plain(&self, d: &MetricDescriptor<'_>) -> bool {
        self.exemplars.is_none()
            && (d.scope_name == Some(REMOTE_WRITE_SCOPE)
                || matches!(d.metric_type, Some("gauge" | "sum")))
    }

    /// The shape of series with descriptor `d` when their rows are plain ([`Self::is_plain`]).
    fn plain_shape(&self, d: &MetricDescriptor<'_>) -> Option<SeriesShape> {
        self.is_plain(d).then(|| SeriesShape::of(d))
    }

    /// The plan of a plain series (exactly the series `add_batch` would push its rows to).
    fn plain_plan(
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
        if !remote && d.metric_type == Some("sum") && d.temporality == Some("delta") {
            self.delta.insert(main.clone());
        }
        let main = self.slot(main);
        let target_info = sets.next().map(|(l, _)| self.slot(l));
        RowPlan::Plain(PlainSeries { main, target_info })
    }

    /// A plain series' sample at `t` (ms), if within `[start_ns, end_ns]`.
    fn push_plain(
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
    fn attach_exemplars(&mut self, c: &Columns<'_>, i: usize, t_ms: i64) {
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
    fn finish_exemplars(
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
    fn push_temporal(&mut self, labels: Labels, t_ms: i64, v: f64, delta: bool) {
        if delta && !self.delta.contains(&labels) {
            self.delta.insert(labels.clone());
        }
        self.push(labels, t_ms, v);
    }

    /// Adds the rows of `batch` in `[start_ns, end_ns]`. With `matchers`, rows of a metric that
    /// cannot produce a name the `__name__` matchers accept are skipped before their attributes
    /// are decoded (rows from the series index are already selected: `None`).
    fn add_batch(
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
                .is_some_and(|f| f.is_valid(i) && f.value(i) & FLAG_NO_RECORDED_VALUE != 0);
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

    fn add_otlp_row(&mut self, c: &Columns<'_>, i: usize, name: &str, t: i64, stale: bool) {
        let metric_type = str_at(c.metric_type, i).unwrap_or("");
        let delta = str_at(c.temporality, i) == Some("delta");
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
            "gauge" | "sum" => {
                let n = family_name(name, unit, metric_type, monotonic);
                base.set(METRIC_NAME, &n);
                let v = value_or_stale(f64_at(c.value, i).unwrap_or(f64::NAN));
                self.push_temporal(base, t, v, metric_type == "sum" && delta);
            }
            "histogram" | "summary" | "exponential_histogram" => {
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
                    "histogram" => self.add_buckets(c, i, &base, &n, t, stale, delta),
                    "exponential_histogram" => {
                        self.add_exponential_buckets(c, i, &base, &n, t, stale, delta)
                    }
                    _ => self.add_quantiles(c, i, &base, &n, t, stale),
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_exponential_buckets(
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
    fn push_bucket(&mut self, base: &Labels, n: &str, le: &str, t: i64, v: f64, delta: bool) {
        let mut l = base.clone();
        l.set(METRIC_NAME, &format!("{n}_bucket"));
        l.set("le", le);
        self.push_temporal(l, t, v, delta);
    }

    #[allow(clippy::too_many_arguments)]
    fn add_buckets(
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

    fn add_quantiles(
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

    fn finish(self, matchers: &Matchers) -> Vec<Series> {
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

/// The Prometheus name of an OTLP metric family: sanitised with its unit suffix, and `_total` for
/// monotonic sums. Histograms and summaries add `_bucket`, `_sum`, `_count` to it.
fn family_name(name: &str, unit: &str, metric_type: &str, monotonic: bool) -> String {
    let mut n = metric_name(name, unit, metric_type == "gauge");
    if metric_type == "sum" && monotonic && !n.ends_with("_total") {
        n.push_str("_total");
    }
    n
}

/// Which `__name__`s and label sets the rows of a series can produce, from its metric descriptor
/// (and, for label sets, its attributes). The series index path ([`super::index_select`]) prunes
/// with it and the row path skips rows with it, so it must cover everything
/// [`SeriesAccumulator::add_otlp_row`] emits (`tests/promql_conformance/series_index.rs` compares both paths).
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
                let metric_type = d.metric_type.unwrap_or("");
                let monotonic = d.is_monotonic == Some(true);
                let n = family_name(name, d.unit.unwrap_or(""), metric_type, monotonic);
                ShapeKind::Otlp(match metric_type {
                    "gauge" | "sum" => vec![(n, None)],
                    "histogram" | "exponential_histogram" => vec![
                        (format!("{n}_sum"), None),
                        (format!("{n}_count"), None),
                        (format!("{n}_bucket"), Some("le")),
                    ],
                    "summary" => vec![
                        (format!("{n}_sum"), None),
                        (format!("{n}_count"), None),
                        (n, Some("quantile")),
                    ],
                    _ => Vec::new(),
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
fn target_info_labels(resource: &[(String, String)]) -> Labels {
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
fn otlp_labels(attributes: Vec<(String, String)>, resource: Vec<(String, String)>) -> Labels {
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
fn sanitize(s: &str, allow_colon: bool) -> String {
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
pub(crate) fn metric_name(name: &str, unit: &str, is_gauge: bool) -> String {
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

fn unit_suffix(unit: &str, is_gauge: bool) -> String {
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
fn strip_braces(unit: &str) -> String {
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
