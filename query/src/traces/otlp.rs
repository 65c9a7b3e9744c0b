//! `spans` rows (in the SQL schema: ids as hex) back to OTLP `TracesData`.
//!
//! Rows are grouped by resource, then by scope, in the order they are met (the caller sorts by
//! time). Attribute values get their OTLP type back from the `<map>_types` columns
//! (`lumen_storage::schema::ValueType`); arrays and maps are parsed from their stored JSON,
//! keeping key order. What cannot come back exactly: bytes inside arrays and maps (stored as their
//! base64 text) return as strings, and NaN or infinite doubles inside them as the strings `NaN`,
//! `Infinity`, `-Infinity`.

use std::fmt;

use arrow::array::{
    Array, AsArray, MapArray, RecordBatch, StringArray, StructArray, TimestampNanosecondArray,
    UInt32Array,
};
use arrow::datatypes::{TimestampNanosecondType, UInt32Type};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use lumen_storage::schema::{ValueType, types_column};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, TracesData};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::error::QueryError;

/// The OTLP `TracesData` holding every row of `batches` (the `spans` table's SQL schema).
pub fn to_traces_data(batches: &[RecordBatch]) -> Result<TracesData, QueryError> {
    let mut resource_spans: Vec<ResourceSpans> = Vec::new();
    for batch in batches {
        let columns = SpanColumns::new(batch)?;
        for row in 0..batch.num_rows() {
            let (resource, resource_schema_url) = columns.resource(row);
            let (scope, scope_schema_url) = columns.scope(row);
            let span = columns.span(row)?;
            let index = match resource_spans.iter().position(|r| {
                r.resource.as_ref() == Some(&resource) && r.schema_url == resource_schema_url
            }) {
                Some(i) => i,
                None => {
                    resource_spans.push(ResourceSpans {
                        resource: Some(resource),
                        scope_spans: Vec::new(),
                        schema_url: resource_schema_url,
                    });
                    resource_spans.len() - 1
                }
            };
            let group = &mut resource_spans[index];
            match group
                .scope_spans
                .iter_mut()
                .find(|s| s.scope.as_ref() == Some(&scope) && s.schema_url == scope_schema_url)
            {
                Some(scope_spans) => scope_spans.spans.push(span),
                None => group.scope_spans.push(ScopeSpans {
                    scope: Some(scope),
                    spans: vec![span],
                    schema_url: scope_schema_url,
                }),
            }
        }
    }
    Ok(TracesData { resource_spans })
}

/// The `spans` columns one conversion reads, typed.
struct SpanColumns<'a> {
    time: &'a TimestampNanosecondArray,
    end_time: &'a TimestampNanosecondArray,
    trace_id: &'a StringArray,
    span_id: &'a StringArray,
    parent_span_id: &'a StringArray,
    trace_state: &'a StringArray,
    flags: &'a UInt32Array,
    name: &'a StringArray,
    kind: &'a StringArray,
    status_code: &'a StringArray,
    status_message: &'a StringArray,
    attributes: Attributes<'a>,
    dropped_attributes_count: &'a UInt32Array,
    events: &'a arrow::array::ListArray,
    dropped_events_count: &'a UInt32Array,
    links: &'a arrow::array::ListArray,
    dropped_links_count: &'a UInt32Array,
    resource_attributes: Attributes<'a>,
    resource_dropped_attributes_count: &'a UInt32Array,
    resource_schema_url: &'a StringArray,
    resource_entity_refs: &'a StringArray,
    scope_name: &'a StringArray,
    scope_version: &'a StringArray,
    scope_attributes: Attributes<'a>,
    scope_dropped_attributes_count: &'a UInt32Array,
    scope_schema_url: &'a StringArray,
}

/// A column the conversion needs is missing or of another type: a bug, not bad input.
#[derive(Debug)]
struct MissingColumn(String);

impl fmt::Display for MissingColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the spans rows have no usable column {}", self.0)
    }
}

impl From<MissingColumn> for QueryError {
    fn from(err: MissingColumn) -> Self {
        QueryError::Internal(err.to_string())
    }
}

/// Typed access to the columns (or struct fields) of one record batch or struct array.
trait Columns {
    fn named(&self, name: &str) -> Option<&arrow::array::ArrayRef>;

    fn strings(&self, name: &str) -> Result<&StringArray, MissingColumn> {
        self.named(name)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| MissingColumn(name.into()))
    }

    fn times(&self, name: &str) -> Result<&TimestampNanosecondArray, MissingColumn> {
        self.named(name)
            .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
            .ok_or_else(|| MissingColumn(name.into()))
    }

    fn counts(&self, name: &str) -> Result<&UInt32Array, MissingColumn> {
        self.named(name)
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .ok_or_else(|| MissingColumn(name.into()))
    }

    fn lists(&self, name: &str) -> Result<&arrow::array::ListArray, MissingColumn> {
        self.named(name)
            .and_then(|c| c.as_list_opt::<i32>())
            .ok_or_else(|| MissingColumn(name.into()))
    }

    fn attributes(&self, name: &str) -> Result<Attributes<'_>, MissingColumn> {
        let map = self
            .named(name)
            .and_then(|c| c.as_map_opt())
            .ok_or_else(|| MissingColumn(name.into()))?;
        let types = self.strings(&types_column(name))?;
        Attributes::new(map, types).ok_or_else(|| MissingColumn(name.into()))
    }
}

impl Columns for RecordBatch {
    fn named(&self, name: &str) -> Option<&arrow::array::ArrayRef> {
        self.column_by_name(name)
    }
}

impl Columns for StructArray {
    fn named(&self, name: &str) -> Option<&arrow::array::ArrayRef> {
        self.column_by_name(name)
    }
}

/// An attribute map column and its `<map>_types` column.
struct Attributes<'a> {
    map: &'a MapArray,
    keys: &'a StringArray,
    values: &'a StringArray,
    types: &'a StringArray,
}

impl<'a> Attributes<'a> {
    fn new(map: &'a MapArray, types: &'a StringArray) -> Option<Self> {
        Some(Attributes {
            map,
            keys: map.keys().as_string_opt::<i32>()?,
            values: map.values().as_string_opt::<i32>()?,
            types,
        })
    }

    /// The attributes of row `row`, typed.
    fn get(&self, row: usize) -> Vec<KeyValue> {
        if self.map.is_null(row) {
            return Vec::new();
        }
        let offsets = self.map.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let types = (!self.types.is_null(row)).then(|| self.types.value(row));
        (start..end)
            .enumerate()
            .map(|(n, entry)| KeyValue {
                key: self.keys.value(entry).to_owned(),
                value: (!self.values.is_null(entry)).then(|| AnyValue {
                    value: Some(typed_value(
                        self.values.value(entry),
                        ValueType::of_entry(types, n),
                    )),
                }),
                ..Default::default()
            })
            .collect()
    }
}

fn text(array: &StringArray, row: usize) -> String {
    if array.is_null(row) {
        String::new()
    } else {
        array.value(row).to_owned()
    }
}

fn hex_bytes(array: &StringArray, row: usize) -> Vec<u8> {
    if array.is_null(row) {
        Vec::new()
    } else {
        hex::decode(array.value(row)).unwrap_or_default()
    }
}

fn unix_nanos(array: &TimestampNanosecondArray, row: usize) -> u64 {
    u64::try_from(array.value(row)).unwrap_or(0)
}

impl<'a> SpanColumns<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self, MissingColumn> {
        Ok(SpanColumns {
            time: batch.times("time")?,
            end_time: batch.times("end_time")?,
            trace_id: batch.strings("trace_id")?,
            span_id: batch.strings("span_id")?,
            parent_span_id: batch.strings("parent_span_id")?,
            trace_state: batch.strings("trace_state")?,
            flags: batch.counts("flags")?,
            name: batch.strings("name")?,
            kind: batch.strings("kind")?,
            status_code: batch.strings("status_code")?,
            status_message: batch.strings("status_message")?,
            attributes: batch.attributes("attributes")?,
            dropped_attributes_count: batch.counts("dropped_attributes_count")?,
            events: batch.lists("events")?,
            dropped_events_count: batch.counts("dropped_events_count")?,
            links: batch.lists("links")?,
            dropped_links_count: batch.counts("dropped_links_count")?,
            resource_attributes: batch.attributes("resource_attributes")?,
            resource_dropped_attributes_count: batch.counts("resource_dropped_attributes_count")?,
            resource_schema_url: batch.strings("resource_schema_url")?,
            resource_entity_refs: batch.strings("resource_entity_refs")?,
            scope_name: batch.strings("scope_name")?,
            scope_version: batch.strings("scope_version")?,
            scope_attributes: batch.attributes("scope_attributes")?,
            scope_dropped_attributes_count: batch.counts("scope_dropped_attributes_count")?,
            scope_schema_url: batch.strings("scope_schema_url")?,
        })
    }

    fn resource(&self, row: usize) -> (Resource, String) {
        let resource = Resource {
            attributes: self.resource_attributes.get(row),
            dropped_attributes_count: self.resource_dropped_attributes_count.value(row),
            entity_refs: entity_refs(&text(self.resource_entity_refs, row)),
        };
        (resource, text(self.resource_schema_url, row))
    }

    fn scope(&self, row: usize) -> (InstrumentationScope, String) {
        let scope = InstrumentationScope {
            name: text(self.scope_name, row),
            version: text(self.scope_version, row),
            attributes: self.scope_attributes.get(row),
            dropped_attributes_count: self.scope_dropped_attributes_count.value(row),
        };
        (scope, text(self.scope_schema_url, row))
    }

    fn span(&self, row: usize) -> Result<Span, MissingColumn> {
        Ok(Span {
            trace_id: hex_bytes(self.trace_id, row),
            span_id: hex_bytes(self.span_id, row),
            trace_state: text(self.trace_state, row),
            parent_span_id: hex_bytes(self.parent_span_id, row),
            flags: self.flags.value(row),
            name: text(self.name, row),
            kind: span_kind(&text(self.kind, row)),
            start_time_unix_nano: unix_nanos(self.time, row),
            end_time_unix_nano: unix_nanos(self.end_time, row),
            attributes: self.attributes.get(row),
            dropped_attributes_count: self.dropped_attributes_count.value(row),
            events: self.events(row)?,
            dropped_events_count: self.dropped_events_count.value(row),
            links: self.links(row)?,
            dropped_links_count: self.dropped_links_count.value(row),
            status: Some(Status {
                message: text(self.status_message, row),
                code: status_code(&text(self.status_code, row)),
            }),
        })
    }

    fn events(&self, row: usize) -> Result<Vec<Event>, MissingColumn> {
        if self.events.is_null(row) {
            return Ok(Vec::new());
        }
        let offsets = self.events.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let items = self
            .events
            .values()
            .as_struct_opt()
            .ok_or_else(|| MissingColumn("events".into()))?;
        let time = items.times("time")?;
        let name = items.strings("name")?;
        let attributes = items.attributes("attributes")?;
        let dropped = items.counts("dropped_attributes_count")?;
        Ok((start..end)
            .map(|i| Event {
                time_unix_nano: unix_nanos(time, i),
                name: text(name, i),
                attributes: attributes.get(i),
                dropped_attributes_count: dropped.value(i),
            })
            .collect())
    }

    fn links(&self, row: usize) -> Result<Vec<Link>, MissingColumn> {
        if self.links.is_null(row) {
            return Ok(Vec::new());
        }
        let offsets = self.links.value_offsets();
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let items = self
            .links
            .values()
            .as_struct_opt()
            .ok_or_else(|| MissingColumn("links".into()))?;
        let trace_id = items.strings("trace_id")?;
        let span_id = items.strings("span_id")?;
        let trace_state = items.strings("trace_state")?;
        let flags = items.counts("flags")?;
        let attributes = items.attributes("attributes")?;
        let dropped = items.counts("dropped_attributes_count")?;
        Ok((start..end)
            .map(|i| Link {
                trace_id: hex_bytes(trace_id, i),
                span_id: hex_bytes(span_id, i),
                trace_state: text(trace_state, i),
                attributes: attributes.get(i),
                dropped_attributes_count: dropped.value(i),
                flags: flags.value(i),
            })
            .collect())
    }
}

/// `spans.kind` back to the OTLP enum number.
pub fn span_kind(kind: &str) -> i32 {
    match kind {
        "unspecified" | "" => 0,
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        other => other.parse().unwrap_or(0),
    }
}

/// `spans.status_code` back to the OTLP enum number.
pub fn status_code(code: &str) -> i32 {
    match code {
        "ok" => 1,
        "error" => 2,
        _ => 0,
    }
}

/// `resource_entity_refs` JSON back to OTLP entity refs.
fn entity_refs(json: &str) -> Vec<EntityRef> {
    if json.is_empty() {
        return Vec::new();
    }
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(json)
    else {
        return Vec::new();
    };
    let strings = |v: &serde_json::Value, key: &str| -> Vec<String> {
        v.get(key)
            .and_then(|k| k.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    items
        .iter()
        .map(|item| EntityRef {
            schema_url: item["schema_url"].as_str().unwrap_or_default().to_owned(),
            r#type: item["type"].as_str().unwrap_or_default().to_owned(),
            id_keys: strings(item, "id_keys"),
            description_keys: strings(item, "description_keys"),
        })
        .collect()
}

/// A stored attribute text back to the OTLP value of type `kind`. Text that does not parse as
/// its type (which Lumen never writes) comes back as a string.
pub fn typed_value(text: &str, kind: ValueType) -> any_value::Value {
    let string = || any_value::Value::StringValue(text.to_owned());
    match kind {
        ValueType::String => string(),
        ValueType::Bool => any_value::Value::BoolValue(text == "true"),
        ValueType::Int => text
            .parse()
            .map_or_else(|_| string(), any_value::Value::IntValue),
        ValueType::Double => text
            .parse()
            .map_or_else(|_| string(), any_value::Value::DoubleValue),
        ValueType::Bytes => BASE64
            .decode(text)
            .map_or_else(|_| string(), any_value::Value::BytesValue),
        ValueType::Array | ValueType::Kvlist => {
            let mut deserializer = serde_json::Deserializer::from_str(text);
            match deserializer.deserialize_any(JsonAny) {
                Ok(AnyValue { value: Some(value) }) => value,
                _ => string(),
            }
        }
    }
}

/// Deserializes stored JSON straight into an OTLP value, keeping object key order (which
/// `serde_json::Value` would sort).
struct JsonAny;

impl<'de> de::DeserializeSeed<'de> for JsonAny {
    type Value = AnyValue;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<AnyValue, D::Error> {
        deserializer.deserialize_any(JsonAny)
    }
}

fn any(value: any_value::Value) -> AnyValue {
    AnyValue { value: Some(value) }
}

impl<'de> Visitor<'de> for JsonAny {
    type Value = AnyValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<AnyValue, E> {
        Ok(AnyValue { value: None })
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::BoolValue(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::IntValue(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AnyValue, E> {
        Ok(any(match i64::try_from(v) {
            Ok(v) => any_value::Value::IntValue(v),
            Err(_) => any_value::Value::DoubleValue(v as f64),
        }))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::DoubleValue(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AnyValue, E> {
        Ok(any(any_value::Value::StringValue(v.to_owned())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AnyValue, A::Error> {
        let mut values = Vec::new();
        while let Some(item) = seq.next_element_seed(JsonAny)? {
            values.push(item);
        }
        Ok(any(any_value::Value::ArrayValue(ArrayValue { values })))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AnyValue, A::Error> {
        let mut values = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(JsonAny)?;
            values.push(KeyValue {
                key,
                value: Some(value),
                ..Default::default()
            });
        }
        Ok(any(any_value::Value::KvlistValue(KeyValueList { values })))
    }
}
