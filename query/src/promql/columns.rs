//! Typed views of a `metrics` batch's columns ([`Columns`], [`PlainColumns`]) and per-row
//! accessors; a missing or mistyped column reads as null, so a batch of an older schema still maps.

use arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch};
use arrow::datatypes::{Float64Type, TimestampNanosecondType, UInt32Type, UInt64Type};
use lumen_storage::schema::PointFlags;

use super::value::stale_nan;

/// Row `i` of a plain series as `(time ms, value, stale)`: the value is the staleness marker when
/// the row is flagged "no recorded value", NaN when missing. `None` without a time.
pub(super) fn plain_sample(c: &PlainColumns<'_>, i: usize) -> Option<(i64, f64, bool)> {
    let time = c.time.filter(|t| t.is_valid(i))?;
    let t = time.value(i).div_euclid(1_000_000);
    let stale = c
        .flags
        .is_some_and(|f| f.is_valid(i) && f.value(i) & PointFlags::NO_RECORDED_VALUE != 0);
    let v = if stale {
        stale_nan()
    } else {
        f64_at(c.value, i).unwrap_or(f64::NAN)
    };
    Some((t, v, stale))
}

/// The columns a plain row needs.
pub(super) struct PlainColumns<'a> {
    pub(super) time: Option<&'a arrow::array::PrimitiveArray<TimestampNanosecondType>>,
    pub(super) flags: Option<&'a arrow::array::PrimitiveArray<UInt32Type>>,
    pub(super) value: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
}

impl<'a> PlainColumns<'a> {
    pub(super) fn of(batch: &'a RecordBatch) -> Self {
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

/// Typed views of one batch's columns; a missing or mistyped column reads as null.
pub(super) struct Columns<'a> {
    pub(super) time: Option<&'a arrow::array::PrimitiveArray<TimestampNanosecondType>>,
    pub(super) name: Option<&'a arrow::array::StringArray>,
    pub(super) unit: Option<&'a arrow::array::StringArray>,
    pub(super) metric_type: Option<&'a arrow::array::StringArray>,
    pub(super) temporality: Option<&'a arrow::array::StringArray>,
    pub(super) monotonic: Option<&'a arrow::array::BooleanArray>,
    pub(super) flags: Option<&'a arrow::array::PrimitiveArray<UInt32Type>>,
    pub(super) attributes: Option<&'a MapArray>,
    pub(super) resource: Option<&'a MapArray>,
    pub(super) scope: Option<&'a arrow::array::StringArray>,
    pub(super) scale: Option<&'a arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>,
    pub(super) zero_count: Option<&'a arrow::array::PrimitiveArray<UInt64Type>>,
    pub(super) zero_threshold: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
    pub(super) positive_offset:
        Option<&'a arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>,
    pub(super) positive: Option<&'a arrow::array::ListArray>,
    pub(super) negative_offset:
        Option<&'a arrow::array::PrimitiveArray<arrow::datatypes::Int32Type>>,
    pub(super) negative: Option<&'a arrow::array::ListArray>,
    pub(super) exemplars: Option<&'a arrow::array::ListArray>,
    pub(super) value: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
    pub(super) count: Option<&'a arrow::array::PrimitiveArray<UInt64Type>>,
    pub(super) sum: Option<&'a arrow::array::PrimitiveArray<Float64Type>>,
    pub(super) bucket_counts: Option<&'a arrow::array::ListArray>,
    pub(super) bounds: Option<&'a arrow::array::ListArray>,
    pub(super) quantiles: Option<&'a arrow::array::ListArray>,
}

impl<'a> Columns<'a> {
    pub(super) fn of(batch: &'a RecordBatch) -> Self {
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

pub(super) fn str_at(a: Option<&arrow::array::StringArray>, i: usize) -> Option<&str> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

pub(super) fn f64_at(
    a: Option<&arrow::array::PrimitiveArray<Float64Type>>,
    i: usize,
) -> Option<f64> {
    a.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

/// The `(key, value)` pairs of row `i` of a map column.
pub(super) fn map_at(a: Option<&MapArray>, i: usize) -> Vec<(String, String)> {
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

/// The entries of row `i` of a map column as listed (duplicates and null values included).
pub(super) fn raw_map_at(a: Option<&MapArray>, i: usize) -> Vec<(String, Option<String>)> {
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
pub(super) fn map_equals(
    a: Option<&MapArray>,
    i: usize,
    expected: &[(String, Option<String>)],
) -> bool {
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
pub(super) fn map_entries(
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
