//! `ExportMetricsServiceRequest` → rows of the `metrics` table, one per data point of every type.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, StructArray, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use lumen_storage::Table;
use lumen_storage::schema::{MetricType, Temporality, exemplar_fields, quantile_fields};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
    exemplar, number_data_point,
};
use xxhash_rust::xxh3::xxh3_64;

use super::common::{
    AttributesBuilder, Clock, ItemPath, ListOffsets, ResourceContext, ResourceScopeColumns,
    ScopeContext, Signal, any_value_text, hex_id, kept, non_empty, note_trimmed, stored_ns,
    timestamp_builder, types_text,
};
use super::{Converted, Limits, Report};

/// Separates the metric name, the resource attributes and the point attributes in the series key.
const SECTION_END: u8 = 0xFF;
/// Separates an attribute's key from its value in the series key.
const KEY_END: u8 = 0xFE;
/// Stands for a null (empty) attribute value in the series key.
const NULL_VALUE: u8 = 0xFD;
/// Ends one attribute in the series key.
const ATTRIBUTE_END: u8 = 0xFC;

/// The `series_id` of a series: `xxh3_64` of a key that spells out, in order,
///
/// 1. the metric name, then `0xFF`;
/// 2. the resource attributes sorted by key (then value), each as `key 0xFE value 0xFC`
///    (`key 0xFE 0xFD 0xFC` for a null value), then `0xFF`;
/// 3. the data point's attributes, sorted and spelled the same way.
///
/// Values are in their stored text form. The bytes 0xFC–0xFF never occur in UTF-8, so different
/// series never spell the same key. Scope, type, unit and temporality are not part of the series.
pub fn series_id(
    metric_name: &str,
    resource_attributes: &[(&str, Option<&str>)],
    point_attributes: &[(&str, Option<&str>)],
) -> u64 {
    let mut key = Vec::new();
    key.extend_from_slice(metric_name.as_bytes());
    key.push(SECTION_END);
    push_sorted_attributes(&mut key, resource_attributes.to_vec());
    key.push(SECTION_END);
    push_sorted_attributes(&mut key, point_attributes.to_vec());
    xxh3_64(&key)
}

fn push_sorted_attributes(key: &mut Vec<u8>, mut attributes: Vec<(&str, Option<&str>)>) {
    attributes.sort_unstable();
    for (name, value) in attributes {
        key.extend_from_slice(name.as_bytes());
        key.push(KEY_END);
        match value {
            Some(value) => key.extend_from_slice(value.as_bytes()),
            None => key.push(NULL_VALUE),
        }
        key.push(ATTRIBUTE_END);
    }
}

/// Converts the data points of an export request into one `metrics` batch (one row per point).
///
/// A point is rejected when its time is 0 or any of its timestamps (start time and exemplars
/// included) is past the year 2262 or later than `now_ns + limits.max_future_skew`; every point of a
/// metric without a name is rejected. Data points carry no dropped-attributes count, so attributes
/// over the limit are only reported in the message. See [`series_id`] for the `series_id` column.
pub fn metrics(
    request: &ExportMetricsServiceRequest,
    limits: &Limits,
    now_ns: i64,
) -> Result<Converted, ArrowError> {
    let rows = request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| m.data.as_ref().map_or(0, point_count))
        .sum();
    let clock = Clock::new(now_ns, limits.max_future_skew);
    let mut columns = MetricColumns::with_capacity(rows);
    let mut report = Report::default();
    for (ri, rm) in request.resource_metrics.iter().enumerate() {
        let rpath = ItemPath::resource(Signal::Metrics, ri);
        let resource = ResourceContext::new(
            rm.resource.as_ref(),
            &rm.schema_url,
            limits,
            &mut report,
            rpath,
        );
        let mut resource_key = Vec::new();
        push_sorted_attributes(
            &mut resource_key,
            resource
                .attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect(),
        );
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            let spath = rpath.scope(si);
            let scope = ScopeContext::new(
                sm.scope.as_ref(),
                &sm.schema_url,
                limits,
                &mut report,
                spath,
            );
            for (mi, metric) in sm.metrics.iter().enumerate() {
                let path = spath.item(mi, &metric.name);
                let Some(data) = &metric.data else {
                    report.note(|| format!("{path}: metric has no data points; nothing stored"));
                    continue;
                };
                let (metadata, extra) = kept(&metric.metadata, limits.max_attributes_per_item);
                note_trimmed(
                    &mut report,
                    &path,
                    "metadata entries",
                    extra,
                    limits.max_attributes_per_item,
                );
                let mut series_prefix =
                    Vec::with_capacity(metric.name.len() + resource_key.len() + 2);
                series_prefix.extend_from_slice(metric.name.as_bytes());
                series_prefix.push(SECTION_END);
                series_prefix.extend_from_slice(&resource_key);
                series_prefix.push(SECTION_END);
                let (temporality, is_monotonic) = match data {
                    Data::Sum(sum) => (sum.aggregation_temporality, Some(sum.is_monotonic)),
                    Data::Histogram(h) => (h.aggregation_temporality, None),
                    Data::ExponentialHistogram(h) => (h.aggregation_temporality, None),
                    Data::Gauge(_) | Data::Summary(_) => (0, None),
                };
                let ctx = MetricContext {
                    name: &metric.name,
                    description: non_empty(&metric.description),
                    unit: non_empty(&metric.unit),
                    metric_type: metric_type(data),
                    temporality: temporality_text(temporality),
                    is_monotonic,
                    metadata,
                    series_prefix,
                    resource: &resource,
                    scope: &scope,
                    path,
                };
                let mut points = PointSink {
                    columns: &mut columns,
                    clock: &clock,
                    limits,
                    report: &mut report,
                };
                match data {
                    Data::Gauge(g) => points.append_all(&ctx, &g.data_points)?,
                    Data::Sum(s) => points.append_all(&ctx, &s.data_points)?,
                    Data::Histogram(h) => points.append_all(&ctx, &h.data_points)?,
                    Data::ExponentialHistogram(h) => points.append_all(&ctx, &h.data_points)?,
                    Data::Summary(s) => points.append_all(&ctx, &s.data_points)?,
                }
            }
        }
    }
    let batch = if report.accepted == 0 {
        None
    } else {
        Some(columns.finish()?)
    };
    Ok(report.finish(batch))
}

fn point_count(data: &Data) -> usize {
    match data {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(h) => h.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    }
}

fn metric_type(data: &Data) -> &'static str {
    match data {
        Data::Gauge(_) => MetricType::Gauge,
        Data::Sum(_) => MetricType::Sum,
        Data::Histogram(_) => MetricType::Histogram,
        Data::ExponentialHistogram(_) => MetricType::ExponentialHistogram,
        Data::Summary(_) => MetricType::Summary,
    }
    .as_str()
}

/// `metrics.temporality`: null when unspecified (and for gauges and summaries, which have none).
fn temporality_text(temporality: i32) -> Option<Cow<'static, str>> {
    match temporality {
        0 => None,
        1 => Some(Cow::Borrowed(Temporality::Delta.as_str())),
        2 => Some(Cow::Borrowed(Temporality::Cumulative.as_str())),
        other => Some(Cow::Owned(other.to_string())),
    }
}

/// What every row of one metric shares.
struct MetricContext<'a> {
    name: &'a str,
    description: Option<&'a str>,
    unit: Option<&'a str>,
    metric_type: &'static str,
    temporality: Option<Cow<'static, str>>,
    is_monotonic: Option<bool>,
    metadata: &'a [KeyValue],
    /// The series key up to the point attributes (see [`series_id`]).
    series_prefix: Vec<u8>,
    resource: &'a ResourceContext,
    scope: &'a ScopeContext,
    path: ItemPath<'a>,
}

/// The type-specific columns of one row; `None` / absent stays null.
#[derive(Default)]
struct PointValues<'a> {
    value: Option<f64>,
    value_int: Option<i64>,
    count: Option<u64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    bucket_counts: Option<&'a [u64]>,
    explicit_bounds: Option<&'a [f64]>,
    scale: Option<i32>,
    zero_count: Option<u64>,
    zero_threshold: Option<f64>,
    positive: Option<&'a Buckets>,
    negative: Option<&'a Buckets>,
    quantiles: Option<&'a [ValueAtQuantile]>,
    /// `None` for types without exemplars (summaries).
    exemplars: Option<&'a [Exemplar]>,
}

/// What the five OTLP data point types have in common.
trait DataPoint {
    fn attributes(&self) -> &[KeyValue];
    fn start_time_unix_nano(&self) -> u64;
    fn time_unix_nano(&self) -> u64;
    fn flags(&self) -> u32;
    fn values(&self) -> PointValues<'_>;
}

impl DataPoint for NumberDataPoint {
    fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time_unix_nano(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn values(&self) -> PointValues<'_> {
        let (value, value_int) = match self.value {
            Some(number_data_point::Value::AsDouble(v)) => (Some(v), None),
            // value is also set so that SQL over `value` sees every number point.
            Some(number_data_point::Value::AsInt(v)) => (Some(v as f64), Some(v)),
            None => (None, None),
        };
        PointValues {
            value,
            value_int,
            exemplars: Some(&self.exemplars),
            ..PointValues::default()
        }
    }
}

impl DataPoint for HistogramDataPoint {
    fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time_unix_nano(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn values(&self) -> PointValues<'_> {
        PointValues {
            count: Some(self.count),
            sum: self.sum,
            min: self.min,
            max: self.max,
            bucket_counts: Some(&self.bucket_counts),
            explicit_bounds: Some(&self.explicit_bounds),
            exemplars: Some(&self.exemplars),
            ..PointValues::default()
        }
    }
}

impl DataPoint for ExponentialHistogramDataPoint {
    fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time_unix_nano(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn values(&self) -> PointValues<'_> {
        PointValues {
            count: Some(self.count),
            sum: self.sum,
            min: self.min,
            max: self.max,
            scale: Some(self.scale),
            zero_count: Some(self.zero_count),
            zero_threshold: Some(self.zero_threshold),
            positive: self.positive.as_ref(),
            negative: self.negative.as_ref(),
            exemplars: Some(&self.exemplars),
            ..PointValues::default()
        }
    }
}

impl DataPoint for SummaryDataPoint {
    fn attributes(&self) -> &[KeyValue] {
        &self.attributes
    }
    fn start_time_unix_nano(&self) -> u64 {
        self.start_time_unix_nano
    }
    fn time_unix_nano(&self) -> u64 {
        self.time_unix_nano
    }
    fn flags(&self) -> u32 {
        self.flags
    }
    fn values(&self) -> PointValues<'_> {
        PointValues {
            count: Some(self.count),
            sum: Some(self.sum),
            quantiles: Some(&self.quantile_values),
            ..PointValues::default()
        }
    }
}

/// Validates points and appends the valid ones.
struct PointSink<'a> {
    columns: &'a mut MetricColumns,
    clock: &'a Clock,
    limits: &'a Limits,
    report: &'a mut Report,
}

impl PointSink<'_> {
    fn append_all<P: DataPoint>(
        &mut self,
        metric: &MetricContext<'_>,
        points: &[P],
    ) -> Result<(), ArrowError> {
        for (i, point) in points.iter().enumerate() {
            let path = metric.path.point(i);
            let checked = if metric.name.is_empty() {
                Err("metric name is empty".to_owned())
            } else {
                check_point(point, self.clock)
            };
            match checked {
                Ok((time, start_time)) => {
                    let limit = self.limits.max_attributes_per_item;
                    let (attributes, extra) = kept(point.attributes(), limit);
                    note_trimmed(self.report, &path, "attributes", extra, limit);
                    self.columns
                        .append(metric, point, attributes, time, start_time)?;
                    self.report.accept();
                }
                Err(reason) => self.report.reject(|| format!("{path}: {reason}")),
            }
        }
        Ok(())
    }
}

/// The point's time and start time (null when unset), or why it is rejected.
fn check_point<P: DataPoint>(point: &P, clock: &Clock) -> Result<(i64, Option<i64>), String> {
    if point.time_unix_nano() == 0 {
        return Err("time_unix_nano is 0 (unset)".to_owned());
    }
    let time = clock.check("time_unix_nano", point.time_unix_nano())?;
    let start = clock.check("start_time_unix_nano", point.start_time_unix_nano())?;
    for (i, exemplar) in point
        .values()
        .exemplars
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        clock.check(
            format_args!("exemplars[{i}].time_unix_nano"),
            exemplar.time_unix_nano,
        )?;
    }
    Ok((time, (start != 0).then_some(start)))
}

struct MetricColumns {
    time: TimestampNanosecondBuilder,
    start_time: TimestampNanosecondBuilder,
    metric_name: StringBuilder,
    description: StringBuilder,
    unit: StringBuilder,
    metric_type: StringBuilder,
    temporality: StringBuilder,
    is_monotonic: BooleanBuilder,
    series_id: UInt64Builder,
    flags: UInt32Builder,
    attributes: AttributesBuilder,
    metric_metadata: AttributesBuilder,
    value: Float64Builder,
    value_int: Int64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bucket_counts: ListBuilder<UInt64Builder>,
    explicit_bounds: ListBuilder<Float64Builder>,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    zero_threshold: Float64Builder,
    positive_offset: Int32Builder,
    positive_bucket_counts: ListBuilder<UInt64Builder>,
    negative_offset: Int32Builder,
    negative_bucket_counts: ListBuilder<UInt64Builder>,
    quantiles: QuantileColumns,
    exemplars: ExemplarColumns,
    resource_scope: ResourceScopeColumns,
    /// Reused buffer for the series key of each point.
    series_key: Vec<u8>,
}

impl MetricColumns {
    fn with_capacity(rows: usize) -> Self {
        MetricColumns {
            time: timestamp_builder(rows),
            start_time: timestamp_builder(rows),
            metric_name: StringBuilder::with_capacity(rows, rows * 24),
            description: StringBuilder::new(),
            unit: StringBuilder::new(),
            metric_type: StringBuilder::with_capacity(rows, rows * 5),
            temporality: StringBuilder::new(),
            is_monotonic: BooleanBuilder::with_capacity(rows),
            series_id: UInt64Builder::with_capacity(rows),
            flags: UInt32Builder::with_capacity(rows),
            attributes: AttributesBuilder::with_capacity(rows),
            metric_metadata: AttributesBuilder::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            value_int: Int64Builder::with_capacity(rows),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            bucket_counts: ListBuilder::new(UInt64Builder::new()),
            explicit_bounds: ListBuilder::new(Float64Builder::new()),
            scale: Int32Builder::with_capacity(rows),
            zero_count: UInt64Builder::with_capacity(rows),
            zero_threshold: Float64Builder::with_capacity(rows),
            positive_offset: Int32Builder::with_capacity(rows),
            positive_bucket_counts: ListBuilder::new(UInt64Builder::new()),
            negative_offset: Int32Builder::with_capacity(rows),
            negative_bucket_counts: ListBuilder::new(UInt64Builder::new()),
            quantiles: QuantileColumns::with_capacity(rows),
            exemplars: ExemplarColumns::with_capacity(rows),
            resource_scope: ResourceScopeColumns::with_capacity(rows),
            series_key: Vec::new(),
        }
    }

    /// Appends one row for a point that passed [`check_point`]; `attributes` are the kept ones.
    fn append<P: DataPoint>(
        &mut self,
        metric: &MetricContext<'_>,
        point: &P,
        attributes: &[KeyValue],
        time: i64,
        start_time: Option<i64>,
    ) -> Result<(), ArrowError> {
        self.time.append_value(time);
        self.start_time.append_option(start_time);
        self.metric_name.append_value(metric.name);
        self.description.append_option(metric.description);
        self.unit.append_option(metric.unit);
        self.metric_type.append_value(metric.metric_type);
        self.temporality
            .append_option(metric.temporality.as_deref());
        self.is_monotonic.append_option(metric.is_monotonic);

        let texts: Vec<(&str, Option<Cow<'_, str>>)> = attributes
            .iter()
            .map(|kv| (kv.key.as_str(), any_value_text(kv.value.as_ref())))
            .collect();
        self.series_key.clear();
        self.series_key.extend_from_slice(&metric.series_prefix);
        push_sorted_attributes(
            &mut self.series_key,
            texts.iter().map(|(k, v)| (*k, v.as_deref())).collect(),
        );
        self.series_id.append_value(xxh3_64(&self.series_key));
        self.flags.append_value(point.flags());
        self.attributes.append_texts(
            texts.iter().map(|(k, v)| (k, v.as_ref())),
            types_text(attributes).as_deref(),
        )?;
        self.metric_metadata.append(metric.metadata)?;

        let values = point.values();
        self.value.append_option(values.value);
        self.value_int.append_option(values.value_int);
        self.count.append_option(values.count);
        self.sum.append_option(values.sum);
        self.min.append_option(values.min);
        self.max.append_option(values.max);
        append_u64_list(&mut self.bucket_counts, values.bucket_counts);
        match values.explicit_bounds {
            Some(bounds) => {
                self.explicit_bounds.values().append_slice(bounds);
                self.explicit_bounds.append(true);
            }
            None => self.explicit_bounds.append_null(),
        }
        self.scale.append_option(values.scale);
        self.zero_count.append_option(values.zero_count);
        self.zero_threshold.append_option(values.zero_threshold);
        self.positive_offset
            .append_option(values.positive.map(|b| b.offset));
        append_u64_list(
            &mut self.positive_bucket_counts,
            values.positive.map(|b| b.bucket_counts.as_slice()),
        );
        self.negative_offset
            .append_option(values.negative.map(|b| b.offset));
        append_u64_list(
            &mut self.negative_bucket_counts,
            values.negative.map(|b| b.bucket_counts.as_slice()),
        );
        self.quantiles.append(values.quantiles)?;
        self.exemplars.append(values.exemplars)?;
        self.resource_scope.append(metric.resource, metric.scope)
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let [attributes, attribute_types] = self.attributes.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.start_time.finish()),
            Arc::new(self.metric_name.finish()),
            Arc::new(self.description.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.metric_type.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.is_monotonic.finish()),
            Arc::new(self.series_id.finish()),
            Arc::new(self.flags.finish()),
            attributes,
            attribute_types,
            self.metric_metadata.finish_map(),
            Arc::new(self.value.finish()),
            Arc::new(self.value_int.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.explicit_bounds.finish()),
            Arc::new(self.scale.finish()),
            Arc::new(self.zero_count.finish()),
            Arc::new(self.zero_threshold.finish()),
            Arc::new(self.positive_offset.finish()),
            Arc::new(self.positive_bucket_counts.finish()),
            Arc::new(self.negative_offset.finish()),
            Arc::new(self.negative_bucket_counts.finish()),
            self.quantiles.finish()?,
            self.exemplars.finish()?,
        ];
        columns.extend(self.resource_scope.finish());
        RecordBatch::try_new(Table::Metrics.schema(), columns)
    }
}

fn append_u64_list(builder: &mut ListBuilder<UInt64Builder>, values: Option<&[u64]>) {
    match values {
        Some(values) => {
            builder.values().append_slice(values);
            builder.append(true);
        }
        None => builder.append_null(),
    }
}

/// `metrics.quantiles`: a list of `schema::quantile_fields()` structs (summaries only).
struct QuantileColumns {
    offsets: ListOffsets,
    quantile: Float64Builder,
    value: Float64Builder,
}

impl QuantileColumns {
    fn with_capacity(rows: usize) -> Self {
        QuantileColumns {
            offsets: ListOffsets::with_capacity(rows),
            quantile: Float64Builder::new(),
            value: Float64Builder::new(),
        }
    }

    fn append(&mut self, quantiles: Option<&[ValueAtQuantile]>) -> Result<(), ArrowError> {
        let Some(quantiles) = quantiles else {
            self.offsets.push_null();
            return Ok(());
        };
        for q in quantiles {
            self.quantile.append_value(q.quantile);
            self.value.append_value(q.value);
        }
        self.offsets.push(quantiles.len())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let values = StructArray::try_new(
            quantile_fields(),
            vec![
                Arc::new(self.quantile.finish()),
                Arc::new(self.value.finish()),
            ],
            None,
        )?;
        self.offsets.finish(Arc::new(values))
    }
}

/// `metrics.exemplars`: a list of `schema::exemplar_fields()` structs, ids as lowercase hex.
struct ExemplarColumns {
    offsets: ListOffsets,
    time: TimestampNanosecondBuilder,
    value: Float64Builder,
    value_int: Int64Builder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    filtered_attributes: AttributesBuilder,
}

impl ExemplarColumns {
    fn with_capacity(rows: usize) -> Self {
        ExemplarColumns {
            offsets: ListOffsets::with_capacity(rows),
            time: timestamp_builder(0),
            value: Float64Builder::new(),
            value_int: Int64Builder::new(),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            filtered_attributes: AttributesBuilder::with_capacity(0),
        }
    }

    fn append(&mut self, exemplars: Option<&[Exemplar]>) -> Result<(), ArrowError> {
        let Some(exemplars) = exemplars else {
            self.offsets.push_null();
            return Ok(());
        };
        for e in exemplars {
            self.time.append_value(stored_ns(e.time_unix_nano));
            let (value, value_int) = match e.value {
                Some(exemplar::Value::AsDouble(v)) => (Some(v), None),
                Some(exemplar::Value::AsInt(v)) => (Some(v as f64), Some(v)),
                None => (None, None),
            };
            self.value.append_option(value);
            self.value_int.append_option(value_int);
            self.trace_id.append_option(hex_id(&e.trace_id));
            self.span_id.append_option(hex_id(&e.span_id));
            self.filtered_attributes.append(&e.filtered_attributes)?;
        }
        self.offsets.push(exemplars.len())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let values = StructArray::try_new(
            exemplar_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.value.finish()),
                Arc::new(self.value_int.finish()),
                Arc::new(self.trace_id.finish()),
                Arc::new(self.span_id.finish()),
                self.filtered_attributes.finish_map(),
            ],
            None,
        )?;
        self.offsets.finish(Arc::new(values))
    }
}
