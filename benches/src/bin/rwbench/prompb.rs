//! The remote write protocol's messages (prometheus/prompb, protocol v1), the subset the benchmark
//! sends. Lumen's own definitions (`lumen_ingest::remote_write::prompb`) are crate-private; the field
//! numbers here are the specification's, so every receiver decodes them the same way.

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

/// One series: labels (sorted by name, `__name__` included) and its samples in time order.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
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
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Type, help and unit of a metric family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// 0 unknown, 1 counter, 2 gauge, 3 histogram, 4 gauge histogram, 5 summary.
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

/// `MetricMetadata.type` of a counter.
pub const COUNTER: i32 = 1;
/// `MetricMetadata.type` of a gauge.
pub const GAUGE: i32 = 2;
/// `MetricMetadata.type` of a histogram.
pub const HISTOGRAM: i32 = 3;
/// `MetricMetadata.type` of a summary.
pub const SUMMARY: i32 = 5;
