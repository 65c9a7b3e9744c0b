//! The Prometheus remote write receiver (protocol v1): `POST /api/v1/write`.
//!
//! A request is a Snappy-compressed (block format) protobuf `WriteRequest`. Each `TimeSeries` becomes
//! one OTLP metric whose data points are its samples: the labels other than `__name__` are the point
//! attributes, the resource is empty and the scope is [`SCOPE_NAME`], so the series keeps exactly the
//! identity Prometheus gave it. Families that the request's metadata types as counters (and the
//! `_bucket` / `_count` parts of histograms and summaries) become monotonic cumulative sums, everything
//! else gauges. Sample values are stored bit for bit, so staleness markers survive.
//!
//! The converted request then takes the same path as OTLP metrics (validation, WAL, head), so a
//! remote-written sample is durable and queryable when the 204 goes out.
//!
//! Status codes follow the remote write specification: 204 when everything was stored; 400 with a
//! readable message for an undecodable body or for invalid series and samples (the valid ones are
//! kept, as Prometheus's own receiver does, and the sender does not retry); 415 for an unknown content
//! type or encoding; 413 above the body limit; 503 with `Retry-After` when Lumen is overloaded.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar as OtlpExemplar, Gauge, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, exemplar, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

use crate::error::IngestError;
use crate::export::Exporter;
use crate::signal::Metrics;
use crate::telemetry::{self, Protocol};

/// The instrumentation scope name given to remote-written series.
pub const SCOPE_NAME: &str = lumen_storage::schema::REMOTE_WRITE_SCOPE;

/// How many problems a 400 message lists before summarising the rest.
const MAX_REPORTED: usize = 8;

/// The remote write protocol's messages (prometheus/prompb, protocol v1).
pub(crate) mod prompb {
    /// A batch of series.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        /// The series.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Metric family metadata.
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// One series: labels and its samples.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        /// Labels, `__name__` included.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Float samples, in time order.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Exemplars.
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        /// Native histogram samples (not supported yet; counted as rejected).
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub histograms: Vec<Vec<u8>>,
    }

    /// A label pair.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        /// Name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    /// A float sample.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        /// Value (a staleness marker is a NaN with bits 0x7ff0000000000002).
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// An exemplar.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        /// Labels, usually `trace_id` and `span_id`.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the epoch.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// Type, help and unit of a metric family.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram, 5 summary, 6 info, 7 stateset.
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        /// The family name.
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// Help text.
        #[prost(string, tag = "4")]
        pub help: String,
        /// Unit.
        #[prost(string, tag = "5")]
        pub unit: String,
    }
}

const TYPE_COUNTER: i32 = 1;
const TYPE_HISTOGRAM: i32 = 3;
const TYPE_GAUGE_HISTOGRAM: i32 = 4;
const TYPE_SUMMARY: i32 = 5;

/// `POST /api/v1/write`.
pub(crate) async fn write(
    State(exporter): State<Arc<Exporter>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = match handle(&exporter, &headers, body).await {
        Ok(None) => StatusCode::NO_CONTENT.into_response(),
        Ok(Some(problems)) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            problems,
        )
            .into_response(),
        Err(error) => {
            error.log();
            let mut response = (
                error.http_status(),
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("{error}\n"),
            )
                .into_response();
            if let Some(delay) = error.retry_after() {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(delay.as_secs().max(1)),
                );
            }
            response
        }
    };
    telemetry::record_request(
        "metrics",
        Protocol::RemoteWrite,
        response.status().as_str().to_owned(),
    );
    response
}

/// Stores the request; `Ok(Some(message))` when some series or samples were invalid.
async fn handle(
    exporter: &Exporter,
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<String>, IngestError> {
    check_headers(headers)?;
    let limit = exporter.config().max_body_bytes;
    let body = crate::body::read_body(headers, body, limit).await?;
    telemetry::record_bytes("metrics", Protocol::RemoteWrite, body.len());
    let size_hint = snap::raw::decompress_len(&body)
        .unwrap_or(body.len().saturating_mul(4))
        .saturating_mul(2);
    // Decoding goes with the conversion (off the HTTP workers for all but small requests); the
    // problems it finds come back through `found`.
    let found: Arc<std::sync::Mutex<Option<Problems>>> = Arc::default();
    let report = found.clone();
    let outcome = exporter
        .export::<Metrics>(Protocol::RemoteWrite, size_hint, move || {
            let (request, problems) = decode(&body, limit)?;
            *report
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(problems);
            Ok(request)
        })
        .await?;
    let problems = found
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
        .unwrap_or_default();
    let pre_rejected = problems.rejected;
    let mut messages = problems.messages;
    if pre_rejected > 0 {
        telemetry::record_items("metrics", Protocol::RemoteWrite, 0, pre_rejected);
    }
    if outcome.rejected == 0 && pre_rejected == 0 {
        return Ok(None);
    }
    if !outcome.message.is_empty() {
        messages.push(outcome.message);
    }
    Ok(Some(format!(
        "{} samples rejected, the rest stored: {}\n",
        outcome.rejected + pre_rejected,
        messages.join("; ")
    )))
}

fn check_headers(headers: &HeaderMap) -> Result<(), IngestError> {
    if let Some(value) = headers.get(header::CONTENT_TYPE) {
        let mime = value
            .to_str()
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if mime != "application/x-protobuf" && mime != "application/protobuf" {
            return Err(IngestError::UnsupportedContentType(format!(
                "{mime} (remote write sends application/x-protobuf)"
            )));
        }
    }
    if let Some(value) = headers.get(header::CONTENT_ENCODING) {
        let coding = value
            .to_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if coding != "snappy" {
            return Err(IngestError::UnsupportedContentEncoding(format!(
                "{coding} (remote write sends snappy)"
            )));
        }
    }
    Ok(())
}

/// Problems found while turning series into OTLP.
#[derive(Debug, Default)]
struct Problems {
    rejected: u64,
    messages: Vec<String>,
    unreported: usize,
}

impl Problems {
    fn reject(&mut self, samples: usize, why: impl FnOnce() -> String) {
        self.rejected += samples as u64;
        if self.messages.len() < MAX_REPORTED {
            self.messages.push(why());
        } else {
            self.unreported += 1;
        }
    }
}

/// Decompresses and decodes a body, and converts it to an OTLP metrics request.
fn decode(
    body: &[u8],
    limit: usize,
) -> Result<(ExportMetricsServiceRequest, Problems), IngestError> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| IngestError::InvalidSnappy(format!("not Snappy block format: {e}")))?;
    if len > limit {
        return Err(IngestError::DecompressedTooLarge { limit });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| IngestError::InvalidSnappy(format!("not Snappy block format: {e}")))?;
    let request = prompb::WriteRequest::decode(raw.as_slice())?;
    let mut problems = Problems::default();
    let otlp = to_otlp(
        request,
        &mut problems,
        limit.saturating_mul(EXPANSION_FACTOR),
    );
    if problems.unreported > 0 {
        problems
            .messages
            .push(format!("and {} more", problems.unreported));
    }
    Ok((otlp, problems))
}

/// Whether samples of series `name` are monotonic counters, from the request's metadata.
fn is_counter(name: &str, types: &HashMap<&str, i32>) -> bool {
    if types.get(name) == Some(&TYPE_COUNTER) {
        return true;
    }
    if let Some(family) = name.strip_suffix("_total") {
        return types.get(family) == Some(&TYPE_COUNTER);
    }
    for suffix in ["_bucket", "_count"] {
        if let Some(family) = name.strip_suffix(suffix) {
            return matches!(types.get(family), Some(&(TYPE_HISTOGRAM | TYPE_SUMMARY)));
        }
    }
    false
}

fn family_of<'a>(
    name: &str,
    metadata: &HashMap<&str, &'a prompb::MetricMetadata>,
) -> Option<&'a prompb::MetricMetadata> {
    if let Some(m) = metadata.get(name) {
        return Some(*m);
    }
    ["_total", "_bucket", "_count", "_sum", "_created"]
        .iter()
        .filter_map(|suffix| name.strip_suffix(suffix))
        .find_map(|family| metadata.get(family).copied())
        .filter(|m| m.r#type != TYPE_GAUGE_HISTOGRAM || name.ends_with("_bucket"))
}

fn string_kv(key: String, value: String) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

fn ms_to_ns(ms: i64) -> Option<u64> {
    ms.checked_mul(1_000_000)
        .and_then(|ns| u64::try_from(ns).ok())
}

/// A request may expand into OTLP points of at most this many times its decompressed size limit:
/// every sample carries its series' labels, so a few kilobytes of labels on a series of many
/// samples would otherwise expand into gigabytes.
const EXPANSION_FACTOR: usize = 8;
/// Estimated memory of one OTLP point and of one attribute beyond its strings.
const POINT_BYTES: usize = 96;
const ATTRIBUTE_BYTES: usize = 80;

/// Converts a write request to OTLP; series whose points would take the request past `budget`
/// estimated bytes are rejected (with the reason) instead of converted.
fn to_otlp(
    request: prompb::WriteRequest,
    problems: &mut Problems,
    budget: usize,
) -> ExportMetricsServiceRequest {
    let mut spent = 0usize;
    let metadata: HashMap<&str, &prompb::MetricMetadata> = request
        .metadata
        .iter()
        .map(|m| (m.metric_family_name.as_str(), m))
        .collect();
    let types: HashMap<&str, i32> = request
        .metadata
        .iter()
        .map(|m| (m.metric_family_name.as_str(), m.r#type))
        .collect();
    let mut metrics = Vec::with_capacity(request.timeseries.len());
    for (index, series) in request.timeseries.iter().enumerate() {
        if !series.histograms.is_empty() {
            problems.reject(series.histograms.len(), || {
                format!("series {index}: native histograms are not supported yet")
            });
        }
        let Some(name) = series
            .labels
            .iter()
            .find(|l| l.name == "__name__")
            .map(|l| l.value.clone())
        else {
            problems.reject(series.samples.len(), || {
                format!("series {index}: no __name__ label")
            });
            continue;
        };
        if name.is_empty() {
            problems.reject(series.samples.len(), || {
                format!("series {index}: empty __name__")
            });
            continue;
        }
        if let Some(bad) = series.labels.iter().find(|l| l.name.is_empty()) {
            problems.reject(series.samples.len(), || {
                format!(
                    "series {name}: a label with an empty name (value {:?})",
                    bad.value
                )
            });
            continue;
        }
        let mut labels: Vec<&prompb::Label> = series
            .labels
            .iter()
            .filter(|l| l.name != "__name__" && !l.value.is_empty())
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        if labels.windows(2).any(|w| w[0].name == w[1].name) {
            problems.reject(series.samples.len(), || {
                format!("series {name}: duplicate label names")
            });
            continue;
        }
        let per_point = POINT_BYTES
            + labels
                .iter()
                .map(|l| ATTRIBUTE_BYTES + l.name.len() + l.value.len())
                .sum::<usize>();
        let cost = per_point.saturating_mul(series.samples.len());
        if spent.saturating_add(cost) > budget {
            problems.reject(series.samples.len(), || {
                format!(
                    "series {name}: its {} samples × {} labels take the request past {} MiB of points; send fewer samples or labels per request",
                    series.samples.len(),
                    labels.len(),
                    budget >> 20
                )
            });
            continue;
        }
        spent += cost;
        let attributes: Vec<KeyValue> = labels
            .iter()
            .map(|l| string_kv(l.name.clone(), l.value.clone()))
            .collect();
        let mut points = Vec::with_capacity(series.samples.len());
        for sample in &series.samples {
            let Some(time) = ms_to_ns(sample.timestamp).filter(|t| *t > 0) else {
                problems.reject(1, || {
                    format!(
                        "series {name}: sample timestamp {} ms is out of range",
                        sample.timestamp
                    )
                });
                continue;
            };
            points.push(NumberDataPoint {
                attributes: attributes.clone(),
                time_unix_nano: time,
                value: Some(number_data_point::Value::AsDouble(sample.value)),
                ..Default::default()
            });
        }
        attach_exemplars(&mut points, &series.exemplars);
        if points.is_empty() {
            continue;
        }
        let family = family_of(&name, &metadata);
        let data = if is_counter(&name, &types) {
            metric::Data::Sum(Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })
        } else {
            metric::Data::Gauge(Gauge {
                data_points: points,
            })
        };
        metrics.push(Metric {
            name,
            description: family.map(|f| f.help.clone()).unwrap_or_default(),
            unit: family.map(|f| f.unit.clone()).unwrap_or_default(),
            data: Some(data),
            ..Default::default()
        });
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource::default()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE_NAME.to_owned(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Puts each exemplar on the sample closest to it in time (remote write sends them per series).
fn attach_exemplars(points: &mut [NumberDataPoint], exemplars: &[prompb::Exemplar]) {
    if points.is_empty() {
        return;
    }
    for e in exemplars {
        let Some(time) = ms_to_ns(e.timestamp) else {
            continue;
        };
        let mut trace_id = Vec::new();
        let mut span_id = Vec::new();
        let mut filtered = Vec::new();
        for label in &e.labels {
            match (label.name.as_str(), hex::decode(&label.value)) {
                ("trace_id", Ok(bytes)) if bytes.len() == 16 => trace_id = bytes,
                ("span_id", Ok(bytes)) if bytes.len() == 8 => span_id = bytes,
                _ => filtered.push(string_kv(label.name.clone(), label.value.clone())),
            }
        }
        let nearest = points
            .iter_mut()
            .min_by_key(|p| p.time_unix_nano.abs_diff(time))
            .map(|p| &mut p.exemplars);
        if let Some(target) = nearest {
            target.push(OtlpExemplar {
                filtered_attributes: filtered,
                time_unix_nano: time,
                span_id,
                trace_id,
                value: Some(exemplar::Value::AsDouble(e.value)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prompb::*;
    use super::*;

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.into(),
            value: value.into(),
        }
    }

    fn compress(request: &WriteRequest) -> Vec<u8> {
        snap::raw::Encoder::new()
            .compress_vec(&request.encode_to_vec())
            .unwrap()
    }

    #[test]
    fn series_become_points_with_their_labels_and_types() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let request = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![
                        label("__name__", "http_requests_total"),
                        label("job", "api"),
                        label("code", "200"),
                    ],
                    samples: vec![
                        Sample {
                            value: 1.0,
                            timestamp: 1_000,
                        },
                        Sample {
                            value: stale,
                            timestamp: 2_000,
                        },
                    ],
                    exemplars: vec![Exemplar {
                        labels: vec![
                            label("trace_id", "5b8efff798038103d269b633813fc60c"),
                            label("user", "u1"),
                        ],
                        value: 1.0,
                        timestamp: 1_900,
                    }],
                    histograms: vec![],
                },
                TimeSeries {
                    labels: vec![label("__name__", "temp_celsius")],
                    samples: vec![Sample {
                        value: 21.5,
                        timestamp: 1_000,
                    }],
                    ..Default::default()
                },
            ],
            metadata: vec![MetricMetadata {
                r#type: TYPE_COUNTER,
                metric_family_name: "http_requests".into(),
                help: "Requests.".into(),
                unit: String::new(),
            }],
        };
        let (otlp, problems) = decode(&compress(&request), 1 << 20).unwrap();
        assert_eq!(problems.rejected, 0);
        let metrics = &otlp.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(
            otlp.resource_metrics[0].scope_metrics[0]
                .scope
                .as_ref()
                .unwrap()
                .name,
            SCOPE_NAME
        );
        let Some(metric::Data::Sum(sum)) = &metrics[0].data else {
            panic!("counter should be a sum")
        };
        assert!(sum.is_monotonic);
        assert_eq!(metrics[0].description, "Requests.");
        let keys: Vec<&str> = sum.data_points[0]
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(keys, vec!["code", "job"]);
        assert_eq!(sum.data_points[0].time_unix_nano, 1_000_000_000);
        let Some(number_data_point::Value::AsDouble(v)) = sum.data_points[1].value else {
            panic!()
        };
        assert_eq!(
            v.to_bits(),
            0x7ff0_0000_0000_0002,
            "staleness marker kept bit for bit"
        );
        assert_eq!(
            sum.data_points[1].exemplars.len(),
            1,
            "exemplar on the nearest sample"
        );
        assert_eq!(sum.data_points[1].exemplars[0].trace_id.len(), 16);
        assert!(matches!(metrics[1].data, Some(metric::Data::Gauge(_))));
    }

    #[test]
    fn invalid_series_are_reported_and_the_rest_kept() {
        let request = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![label("job", "x")],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 1,
                    }],
                    ..Default::default()
                },
                TimeSeries {
                    labels: vec![label("__name__", "ok")],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 5,
                    }],
                    ..Default::default()
                },
                TimeSeries {
                    labels: vec![label("__name__", "dup"), label("a", "1"), label("a", "2")],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 5,
                    }],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let (otlp, problems) = decode(&compress(&request), 1 << 20).unwrap();
        assert_eq!(problems.rejected, 2);
        assert!(
            problems.messages[0].contains("__name__"),
            "{:?}",
            problems.messages
        );
        assert_eq!(otlp.resource_metrics[0].scope_metrics[0].metrics.len(), 1);
    }

    #[test]
    fn a_series_whose_labels_times_samples_would_blow_up_is_refused_and_the_rest_kept() {
        // 2,000 labels of 1 KiB on 500 identical samples: a few KiB compressed, ~1 GB as points.
        let mut labels = vec![label("__name__", "wide")];
        labels.extend((0..2000).map(|i| label(&format!("l{i}"), &"v".repeat(1024))));
        let samples: Vec<Sample> = (1..=500)
            .map(|t| Sample {
                value: 1.0,
                timestamp: t,
            })
            .collect();
        let request = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels,
                    samples,
                    ..Default::default()
                },
                TimeSeries {
                    labels: vec![label("__name__", "ok")],
                    samples: vec![Sample {
                        value: 1.0,
                        timestamp: 5,
                    }],
                    ..Default::default()
                },
            ],
            metadata: vec![],
        };
        let body = compress(&request);
        assert!(body.len() < 1 << 20, "{} bytes compressed", body.len());
        let (otlp, problems) = decode(&body, 4 << 20).unwrap();
        assert_eq!(problems.rejected, 500);
        assert!(
            problems.messages[0].contains("series wide")
                && problems.messages[0].contains("fewer samples"),
            "{:?}",
            problems.messages
        );
        let metrics = &otlp.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(
            metrics.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
            vec!["ok"]
        );
    }

    #[test]
    fn bad_bodies_are_errors() {
        assert!(decode(b"definitely not snappy", 1 << 20).is_err());
        let big = snap::raw::Encoder::new()
            .compress_vec(&vec![0u8; 4096])
            .unwrap();
        assert!(matches!(
            decode(&big, 1024),
            Err(IngestError::DecompressedTooLarge { .. })
        ));
        let garbage = snap::raw::Encoder::new()
            .compress_vec(&[0xff, 0xff, 0xff])
            .unwrap();
        assert!(matches!(
            decode(&garbage, 1 << 20),
            Err(IngestError::Protobuf(_))
        ));
    }
}

/// One sample that Lumen writes itself, with its full label set (including `__name__`).
#[derive(Clone, Debug, PartialEq)]
pub struct PromSample {
    /// Every label, `__name__` included.
    pub labels: Vec<(String, String)>,
    /// Sample time, Unix ms.
    pub time_ms: i64,
    /// The sample value.
    pub value: f64,
}

/// Writes samples produced inside Lumen (recording rules, `ALERTS`, `ALERTS_FOR_STATE`) exactly as
/// remote-written samples are stored: same conversion, same WAL and head, durable when it returns.
#[derive(Clone)]
pub struct SampleWriter {
    exporter: Arc<Exporter>,
}

impl std::fmt::Debug for SampleWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleWriter").finish_non_exhaustive()
    }
}

impl SampleWriter {
    /// A writer into `storage`'s metrics table.
    pub fn new(storage: Arc<lumen_storage::Storage>, config: crate::IngestConfig) -> Self {
        SampleWriter {
            exporter: Arc::new(Exporter::new(storage, config)),
        }
    }

    /// Stores the samples; invalid ones (no name, bad timestamp) are reported as an error after
    /// the valid ones were stored.
    pub async fn write(&self, samples: Vec<PromSample>) -> Result<(), IngestError> {
        if samples.is_empty() {
            return Ok(());
        }
        let mut by_series: HashMap<Vec<(String, String)>, Vec<prompb::Sample>> = HashMap::new();
        let mut order = Vec::new();
        for sample in samples {
            let entry = by_series.entry(sample.labels.clone());
            if matches!(entry, std::collections::hash_map::Entry::Vacant(_)) {
                order.push(sample.labels);
            }
            entry.or_default().push(prompb::Sample {
                value: sample.value,
                timestamp: sample.time_ms,
            });
        }
        let timeseries = order
            .into_iter()
            .filter_map(|labels| {
                let samples = by_series.remove(&labels)?;
                Some(prompb::TimeSeries {
                    labels: labels
                        .into_iter()
                        .map(|(name, value)| prompb::Label { name, value })
                        .collect(),
                    samples,
                    ..Default::default()
                })
            })
            .collect();
        let mut problems = Problems {
            rejected: 0,
            messages: Vec::new(),
            unreported: 0,
        };
        // Lumen's own samples (rule results, ALERTS): no outside input to bound.
        let request = to_otlp(
            prompb::WriteRequest {
                timeseries,
                ..Default::default()
            },
            &mut problems,
            usize::MAX,
        );
        let outcome = self
            .exporter
            .export::<Metrics>(Protocol::Internal, 0, move || Ok(request))
            .await?;
        if problems.rejected > 0 || outcome.rejected > 0 {
            let mut messages = problems.messages;
            if !outcome.message.is_empty() {
                messages.push(outcome.message);
            }
            return Err(IngestError::Internal(format!(
                "{} samples rejected: {}",
                problems.rejected + outcome.rejected as u64,
                messages.join("; ")
            )));
        }
        Ok(())
    }
}
