//! Arrow values to JSON values, cell by cell.
//!
//! Used by every output format (JSON rows, NDJSON objects, CSV cells) and by the CLI, so a value
//! looks the same whichever way it is fetched. See [the module docs](super) for the mapping.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Utc};
use serde_json::{Map, Number, Value};

/// Every row of `batch` as a list of JSON values, one per column.
pub fn batch_rows(batch: &RecordBatch) -> Vec<Vec<Value>> {
    (0..batch.num_rows())
        .map(|row| {
            batch
                .columns()
                .iter()
                .map(|column| json_value(column.as_ref(), row))
                .collect()
        })
        .collect()
}

/// The JSON value of `array[row]` (`null` when out of range).
pub fn json_value(array: &dyn Array, row: usize) -> Value {
    if row >= array.len() || array.is_null(row) {
        return Value::Null;
    }
    let value = match array.data_type() {
        DataType::Null => Some(Value::Null),
        DataType::Boolean => array.as_boolean_opt().map(|a| Value::Bool(a.value(row))),
        DataType::Int8 => array
            .as_primitive_opt::<Int8Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::Int16 => array
            .as_primitive_opt::<Int16Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::Int32 => array
            .as_primitive_opt::<Int32Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::Int64 => array
            .as_primitive_opt::<Int64Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::UInt8 => array
            .as_primitive_opt::<UInt8Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::UInt16 => array
            .as_primitive_opt::<UInt16Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::UInt32 => array
            .as_primitive_opt::<UInt32Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::UInt64 => array
            .as_primitive_opt::<UInt64Type>()
            .map(|a| Value::from(a.value(row))),
        DataType::Float16 => array
            .as_primitive_opt::<Float16Type>()
            .map(|a| f32_value(a.value(row).to_f32())),
        DataType::Float32 => array
            .as_primitive_opt::<Float32Type>()
            .map(|a| f32_value(a.value(row))),
        DataType::Float64 => array
            .as_primitive_opt::<Float64Type>()
            .map(|a| f64_value(a.value(row))),
        DataType::Timestamp(unit, _) => timestamp_value(array, row, *unit),
        DataType::Utf8 => array
            .as_string_opt::<i32>()
            .map(|a| Value::from(a.value(row))),
        DataType::LargeUtf8 => array
            .as_string_opt::<i64>()
            .map(|a| Value::from(a.value(row))),
        DataType::Utf8View => array
            .as_string_view_opt()
            .map(|a| Value::from(a.value(row))),
        DataType::Binary => array
            .as_binary_opt::<i32>()
            .map(|a| Value::from(hex::encode(a.value(row)))),
        DataType::LargeBinary => array
            .as_binary_opt::<i64>()
            .map(|a| Value::from(hex::encode(a.value(row)))),
        DataType::BinaryView => array
            .as_binary_view_opt()
            .map(|a| Value::from(hex::encode(a.value(row)))),
        DataType::FixedSizeBinary(_) => array
            .as_fixed_size_binary_opt()
            .map(|a| Value::from(hex::encode(a.value(row)))),
        DataType::List(_) => array
            .as_list_opt::<i32>()
            .map(|a| list_value(a.value(row).as_ref())),
        DataType::LargeList(_) => array
            .as_list_opt::<i64>()
            .map(|a| list_value(a.value(row).as_ref())),
        DataType::FixedSizeList(..) => array
            .as_fixed_size_list_opt()
            .map(|a| list_value(a.value(row).as_ref())),
        DataType::Struct(_) => array.as_struct_opt().map(|a| {
            let object: Map<String, Value> = a
                .fields()
                .iter()
                .zip(a.columns())
                .map(|(field, column)| (field.name().clone(), json_value(column.as_ref(), row)))
                .collect();
            Value::Object(object)
        }),
        DataType::Map(..) => array.as_map_opt().and_then(|a| {
            let entries = a.value(row);
            let (keys, values) = (entries.columns().first()?, entries.columns().get(1)?);
            let object: Map<String, Value> = (0..entries.len())
                .map(|i| {
                    let key = match json_value(keys.as_ref(), i) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, json_value(values.as_ref(), i))
                })
                .collect();
            Some(Value::Object(object))
        }),
        DataType::Dictionary(_, value_type) => cast(&array.slice(row, 1), value_type)
            .ok()
            .map(|single| json_value(single.as_ref(), 0)),
        _ => None,
    };
    value.unwrap_or_else(|| display_value(array, row))
}

fn list_value(items: &dyn Array) -> Value {
    Value::Array((0..items.len()).map(|i| json_value(items, i)).collect())
}

/// Non-finite floats become the strings Prometheus uses: `NaN`, `+Inf`, `-Inf`.
fn f64_value(v: f64) -> Value {
    if v.is_nan() {
        Value::from("NaN")
    } else if v.is_infinite() {
        Value::from(if v > 0.0 { "+Inf" } else { "-Inf" })
    } else {
        Number::from_f64(v).map_or(Value::Null, Value::Number)
    }
}

/// An `f32` via its shortest decimal form, so `0.1f32` is `0.1` and not `0.10000000149011612`.
fn f32_value(v: f32) -> Value {
    if !v.is_finite() {
        return f64_value(f64::from(v));
    }
    f64_value(v.to_string().parse::<f64>().unwrap_or(f64::from(v)))
}

fn timestamp_value(array: &dyn Array, row: usize, unit: TimeUnit) -> Option<Value> {
    let raw = match unit {
        TimeUnit::Second => array.as_primitive_opt::<TimestampSecondType>()?.value(row),
        TimeUnit::Millisecond => array
            .as_primitive_opt::<TimestampMillisecondType>()?
            .value(row),
        TimeUnit::Microsecond => array
            .as_primitive_opt::<TimestampMicrosecondType>()?
            .value(row),
        TimeUnit::Nanosecond => array
            .as_primitive_opt::<TimestampNanosecondType>()?
            .value(row),
    };
    Some(format_timestamp(raw, unit).map_or_else(|| Value::from(raw), Value::from))
}

/// RFC 3339 in UTC with exactly nine fractional digits: `2018-12-13T14:51:00.000000000Z`.
/// `None` when the instant is outside what a calendar date can show.
pub fn format_timestamp(value: i64, unit: TimeUnit) -> Option<String> {
    let per_second: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let secs = value.div_euclid(per_second);
    let nanos = u32::try_from(value.rem_euclid(per_second) * (1_000_000_000 / per_second)).ok()?;
    let time = DateTime::<Utc>::from_timestamp(secs, nanos)?;
    Some(time.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string())
}

/// Arrow's own text for types without a JSON mapping (dates, times, durations, decimals, ...).
fn display_value(array: &dyn Array, row: usize) -> Value {
    match ArrayFormatter::try_new(array, &FormatOptions::default()) {
        Ok(formatter) => Value::from(formatter.value(row).to_string()),
        Err(_) => Value::from(format!("<{}>", array.data_type())),
    }
}
