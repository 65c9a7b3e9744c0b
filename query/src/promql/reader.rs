//! A [`SeriesSource`] over Lumen's `metrics` table: rows of the selector's time range, read from a
//! [`SnapshotSource`] (head batches and Parquet segments), grouped into Prometheus series.
//!
//! The rows become series in [`super::accumulator`], named and labelled by the OpenTelemetry →
//! Prometheus mapping of [`super::naming`].
//!
//! Segments are read through their series index (`index_select.rs`): only the rows of the
//! series a selector can match. Head batches (and segments whose index cannot be had) are read
//! whole, but rows of a metric that cannot produce a name the `__name__` matchers accept are
//! skipped before their attributes are decoded. `SeriesShape` says which names and label sets a
//! series' rows can produce.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{TimestampNanosecondType, UInt32Type};
use lumen_storage::{Table, TimeRange};
use promql_parser::label::Matchers;

use lumen_storage::schema::{MetricType, REMOTE_WRITE_SCOPE};
use lumen_storage::segment::reader::Footer;

use super::accumulator::{RowPlan, SeriesAccumulator, SeriesExemplars};
use super::columns::{PlainColumns, plain_sample, str_at};
use super::index_select;
use super::naming::{TARGET_INFO, family_name, matchers_accept_name, unit_suffix};
use super::value::Series;

use super::error::PromqlError;
use super::series_source::SeriesSource;
use crate::snapshot::SnapshotSource;

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

/// Reads PromQL series from the `metrics` table.
pub struct MetricsTableSource {
    snapshots: Arc<dyn SnapshotSource>,
    use_series_index: bool,
    /// Distinct metric descriptors per segment file (segments never change), for metadata.
    descriptors: std::sync::Mutex<HashMap<std::path::PathBuf, Arc<Vec<Descriptor>>>>,
}

/// What `/api/v1/metadata` needs of a metric, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Descriptor {
    name: String,
    metric_type: Option<MetricType>,
    unit: String,
    description: String,
    monotonic: bool,
    /// Received through remote write (its name is kept as sent).
    remote_written: bool,
}

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
    /// The exemplars of the series matching `matchers`, with exemplar times in `[start_ms,
    /// end_ms]`. A histogram's exemplars go to the `_bucket` series whose `le` holds their value
    /// (as Prometheus's OTLP translation does); a sum's or gauge's to its series.
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

/// The nanoseconds of the window `[start_ms, end_ms]`, the end's whole millisecond included.
fn window_ns(start_ms: i64, end_ms: i64) -> (i64, i64) {
    (
        start_ms.saturating_mul(1_000_000),
        end_ms.saturating_mul(1_000_000).saturating_add(999_999),
    )
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
        let (start_ns, end_ns) = window_ns(start_ms, end_ms);
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
            read_segment(segment, columns, deadline, &mut |batch| {
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

/// What `/api/v1/metadata` says of one metric family.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FamilyMetadata {
    /// `counter`, `gauge`, `histogram`, `summary` or `unknown`.
    pub kind: &'static str,
    /// The metric's description.
    pub help: String,
    /// The unit (as the family name's suffix for OTLP metrics).
    pub unit: String,
}

impl MetricsTableSource {
    /// [`QuerySource::metadata`], stopping with a `timeout` error once `deadline` has passed.
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
        let (start_ns, end_ns) = window_ns(start_ms, end_ms);
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
                into.insert(Descriptor {
                    name: names.value(i).to_string(),
                    metric_type: str_at(types, i).and_then(MetricType::parse),
                    unit: str_at(units, i).unwrap_or("").to_string(),
                    description: str_at(help, i).unwrap_or("").to_string(),
                    monotonic: mono.is_some_and(|m| m.is_valid(i) && m.value(i)),
                    remote_written: str_at(scope, i) == Some(REMOTE_WRITE_SCOPE),
                });
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
                    read_segment(segment, &columns, deadline, &mut |batch| {
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
        for descriptor in distinct {
            let Descriptor {
                name,
                metric_type,
                unit,
                description: help,
                monotonic,
                remote_written: remote,
            } = descriptor;
            let (family, kind, unit) = if remote {
                // Remote-written series keep their names; the family type comes from the name.
                let (family, kind) = match name.strip_suffix("_bucket") {
                    Some(base) => (base.to_string(), "histogram"),
                    None if (metric_type == Some(MetricType::Sum) && monotonic)
                        || name.ends_with("_total") =>
                    {
                        (name.clone(), "counter")
                    }
                    // Sent with metadata (HELP or UNIT came along): a gauge; without: unknown.
                    None if !help.is_empty() || !unit.is_empty() => (name.clone(), "gauge"),
                    None => (name.clone(), "unknown"),
                };
                (family, kind, unit)
            } else {
                // Prometheus's metric types, from the stored OTLP ones.
                let kind = match metric_type {
                    Some(MetricType::Sum) if monotonic => "counter",
                    Some(MetricType::Sum | MetricType::Gauge) => "gauge",
                    Some(MetricType::Histogram | MetricType::ExponentialHistogram) => "histogram",
                    Some(MetricType::Summary) => "summary",
                    None => "unknown",
                };
                let family = family_name(&name, &unit, metric_type, monotonic);
                let is_gauge = metric_type == Some(MetricType::Gauge);
                (family, kind, unit_suffix(&unit, is_gauge))
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

/// Reads `columns` of every row of `segment`.
fn read_segment(
    segment: &lumen_storage::SegmentMeta,
    columns: &[&str],
    deadline: Option<Instant>,
    each: &mut dyn FnMut(&RecordBatch),
) -> Result<(), PromqlError> {
    let path = &segment.path;
    let err =
        |e: &dyn std::fmt::Display| PromqlError::Source(format!("segment {}: {e}", path.display()));
    let builder = lumen_storage::segment::reader::open(segment, Footer::Cached)?;
    let mask = lumen_storage::segment::root_projection(builder.parquet_schema(), |name| {
        columns.contains(&name)
    });
    for batch in builder.with_projection(mask).build().map_err(|e| err(&e))? {
        check_deadline(deadline)?;
        each(&batch.map_err(|e| err(&e))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
