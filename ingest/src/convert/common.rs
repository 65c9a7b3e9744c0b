//! Pieces shared by the three conversions: attribute text forms and map columns, the resource and
//! scope columns, timestamp checks, list offsets and item paths for messages.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, ListArray, MapBuilder, NullBufferBuilder, StringBuilder, TimestampNanosecondBuilder,
    UInt32Builder,
};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::Field;
use arrow::error::ArrowError;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use lumen_storage::schema::ValueType;

use super::{Limits, Report};

/// Attribute key whose value becomes the `service_name` column.
const SERVICE_NAME: &str = "service.name";

/// Attributes in their stored text form, in the order received.
pub(crate) type TextAttributes = Vec<(String, Option<String>)>;

/// The text form of a value (see the table in the module docs of `convert`).
pub(crate) fn value_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::StringValue(s) => Cow::Borrowed(s),
        Value::BoolValue(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::IntValue(i) => Cow::Owned(i.to_string()),
        Value::DoubleValue(d) => Cow::Owned(d.to_string()),
        Value::BytesValue(b) => Cow::Owned(BASE64.encode(b)),
        Value::ArrayValue(_) | Value::KvlistValue(_) => {
            let mut out = String::new();
            write_json(Some(value), &mut out);
            Cow::Owned(out)
        }
        // An index into a profiles string table; meaningless here, so kept as the number sent.
        Value::StringValueStrindex(i) => Cow::Owned(i.to_string()),
    }
}

/// The text form of an optional `AnyValue`; `None` when the value is absent or empty.
pub(crate) fn any_value_text(value: Option<&AnyValue>) -> Option<Cow<'_, str>> {
    value.and_then(|v| v.value.as_ref()).map(value_text)
}

/// The name of a value's type as stored in `logs.body_type`.
pub(crate) fn value_type(value: &Value) -> &'static str {
    match value {
        Value::StringValue(_) => "string",
        Value::BoolValue(_) => "bool",
        Value::IntValue(_) => "int",
        Value::DoubleValue(_) => "double",
        Value::BytesValue(_) => "bytes",
        Value::ArrayValue(_) => "array",
        Value::KvlistValue(_) => "kvlist",
        Value::StringValueStrindex(_) => "strindex",
    }
}

/// Writes a value as compact JSON, nested values keeping their JSON types.
fn write_json(value: Option<&Value>, out: &mut String) {
    match value {
        None => out.push_str("null"),
        Some(Value::StringValue(s)) => write_json_string(s, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) => {
            if d.is_finite() {
                // `1.0` stays `1.0`, not `1`, so a reader tells doubles from ints.
                let start = out.len();
                let _ = write!(out, "{d}");
                if !out[start..].contains(['.', 'e', 'E']) {
                    out.push_str(".0");
                }
            } else if d.is_nan() {
                out.push_str("\"NaN\"");
            } else if *d > 0.0 {
                out.push_str("\"Infinity\"");
            } else {
                out.push_str("\"-Infinity\"");
            }
        }
        Some(Value::BytesValue(b)) => {
            out.push('"');
            out.push_str(&BASE64.encode(b));
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (i, item) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item.value.as_ref(), out);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => {
            out.push('{');
            for (i, kv) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(&kv.key, out);
                out.push(':');
                write_json(kv.value.as_ref().and_then(|v| v.value.as_ref()), out);
            }
            out.push('}');
        }
        Some(Value::StringValueStrindex(i)) => {
            let _ = write!(out, "{i}");
        }
    }
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `Some(s)` unless `s` is empty: optional OTLP strings are stored as null when unset.
pub(crate) fn non_empty(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

/// Lowercase hex of an id nested in a list (links, exemplars); null when absent.
pub(crate) fn hex_id(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        None
    } else {
        Some(hex::encode(bytes))
    }
}

/// A timestamp already accepted by [`Clock::check`], as stored.
pub(crate) fn stored_ns(ns: u64) -> i64 {
    i64::try_from(ns).unwrap_or(i64::MAX)
}

/// True for an id made only of zero bytes (the OTLP "invalid id").
pub(crate) fn is_zero_id(id: &[u8]) -> bool {
    id.iter().all(|b| *b == 0)
}

/// Adds the attributes left out by the limit to an item's `dropped_attributes_count`.
pub(crate) fn dropped_total(dropped: u32, extra: usize) -> u32 {
    dropped.saturating_add(u32::try_from(extra).unwrap_or(u32::MAX))
}

/// The first `limit` attributes and how many were left out.
pub(crate) fn kept(attributes: &[KeyValue], limit: usize) -> (&[KeyValue], usize) {
    let n = attributes.len().min(limit);
    (&attributes[..n], attributes.len() - n)
}

/// The stored type letter of a value (`schema::ValueType`); an absent value counts as a string.
pub(crate) fn value_type_code(value: Option<&Value>) -> u8 {
    let kind = match value {
        None | Some(Value::StringValue(_)) => ValueType::String,
        Some(Value::BoolValue(_)) => ValueType::Bool,
        // A profiles string-table index is kept as the number sent.
        Some(Value::IntValue(_)) | Some(Value::StringValueStrindex(_)) => ValueType::Int,
        Some(Value::DoubleValue(_)) => ValueType::Double,
        Some(Value::BytesValue(_)) => ValueType::Bytes,
        Some(Value::ArrayValue(_)) => ValueType::Array,
        Some(Value::KvlistValue(_)) => ValueType::Kvlist,
    };
    kind.code()
}

/// The `<map>_types` text of some attributes: one letter per entry, `None` when all are strings.
pub(crate) fn types_text(attributes: &[KeyValue]) -> Option<String> {
    let codes = attributes
        .iter()
        .map(|kv| value_type_code(kv.value.as_ref().and_then(|v| v.value.as_ref())));
    let text: String = codes.map(char::from).collect();
    text.bytes()
        .any(|c| c != ValueType::String.code())
        .then_some(text)
}

/// A `Map<Utf8, Utf8>` column of attributes (`schema::attributes_type()`) and its `<map>_types`
/// column.
pub(crate) struct AttributesBuilder {
    inner: MapBuilder<StringBuilder, StringBuilder>,
    types: StringBuilder,
}

impl AttributesBuilder {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        AttributesBuilder {
            inner: MapBuilder::with_capacity(
                None,
                StringBuilder::new(),
                StringBuilder::new(),
                rows,
            ),
            types: StringBuilder::new(),
        }
    }

    /// Appends one map holding `attributes` (already limited by the caller), and their types.
    pub(crate) fn append(&mut self, attributes: &[KeyValue]) -> Result<(), ArrowError> {
        for kv in attributes {
            self.inner.keys().append_value(&kv.key);
            self.inner
                .values()
                .append_option(any_value_text(kv.value.as_ref()));
        }
        self.types.append_option(types_text(attributes));
        self.inner.append(true)
    }

    /// Appends one map of attributes already in text form, with their `<map>_types` text.
    pub(crate) fn append_texts<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        attributes: impl IntoIterator<Item = (K, Option<V>)>,
        types: Option<&str>,
    ) -> Result<(), ArrowError> {
        for (key, value) in attributes {
            self.inner.keys().append_value(key);
            self.inner.values().append_option(value);
        }
        self.types.append_option(types);
        self.inner.append(true)
    }

    /// The map column and its types column, in schema order.
    pub(crate) fn finish(&mut self) -> [ArrayRef; 2] {
        [Arc::new(self.inner.finish()), Arc::new(self.types.finish())]
    }

    /// The map column alone, for the maps stored without types (`metric_metadata`, exemplars).
    pub(crate) fn finish_map(&mut self) -> ArrayRef {
        self.types = StringBuilder::new();
        Arc::new(self.inner.finish())
    }
}

/// A `Timestamp(Nanosecond, "UTC")` column builder.
pub(crate) fn timestamp_builder(rows: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC")
}

/// Offsets (and validity) of a list column whose values are built separately.
pub(crate) struct ListOffsets {
    offsets: Vec<i32>,
    validity: NullBufferBuilder,
}

impl ListOffsets {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        ListOffsets {
            offsets,
            validity: NullBufferBuilder::new(rows),
        }
    }

    /// Ends a list of `len` values.
    pub(crate) fn push(&mut self, len: usize) -> Result<(), ArrowError> {
        let last = self.offsets.last().copied().unwrap_or(0);
        let next = i32::try_from(len)
            .ok()
            .and_then(|len| last.checked_add(len))
            .ok_or_else(|| ArrowError::ComputeError("list column exceeds 2^31 values".into()))?;
        self.offsets.push(next);
        self.validity.append_non_null();
        Ok(())
    }

    /// Appends a null list.
    pub(crate) fn push_null(&mut self) {
        let last = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(last);
        self.validity.append_null();
    }

    /// The list column over `values` (which hold every list's items, in order).
    pub(crate) fn finish(&mut self, values: ArrayRef) -> Result<ArrayRef, ArrowError> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        // Offsets start at 0 and never decrease (see `push`), as OffsetBuffer requires.
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let field = Arc::new(Field::new_list_field(values.data_type().clone(), true));
        Ok(Arc::new(ListArray::try_new(
            field,
            offsets,
            values,
            self.validity.finish(),
        )?))
    }
}

/// Checks timestamps against what a `Timestamp(Nanosecond)` can hold and the allowed future skew.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    now_ns: i64,
    latest_ns: i64,
}

impl Clock {
    pub(crate) fn new(now_ns: i64, max_future_skew: Duration) -> Self {
        let skew = i64::try_from(max_future_skew.as_nanos()).unwrap_or(i64::MAX);
        Clock {
            now_ns,
            latest_ns: now_ns.saturating_add(skew),
        }
    }

    pub(crate) fn now_ns(&self) -> i64 {
        self.now_ns
    }

    /// The timestamp as stored, or why it cannot be.
    pub(crate) fn check(&self, field: impl fmt::Display, ns: u64) -> Result<i64, String> {
        let Ok(value) = i64::try_from(ns) else {
            return Err(format!("{field} {ns} is past the year 2262"));
        };
        if value > self.latest_ns {
            let ahead_s = (value - self.now_ns) / 1_000_000_000;
            return Err(format!("{field} {ns} is {ahead_s}s in the future"));
        }
        Ok(value)
    }
}

/// Which OTLP message an item path points into.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Signal {
    Spans,
    Logs,
    Metrics,
}

impl Signal {
    fn fields(self) -> [&'static str; 3] {
        match self {
            Signal::Spans => ["resourceSpans", "scopeSpans", "spans"],
            Signal::Logs => ["resourceLogs", "scopeLogs", "logRecords"],
            Signal::Metrics => ["resourceMetrics", "scopeMetrics", "metrics"],
        }
    }
}

/// Where an item sits in its request, as shown in partial-success messages, e.g.
/// `resourceSpans[0].scopeSpans[1].spans[3] "GET /books"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ItemPath<'a> {
    pub signal: Signal,
    pub resource: usize,
    pub scope: Option<usize>,
    pub item: Option<usize>,
    /// Data point index inside a metric.
    pub point: Option<usize>,
    pub name: &'a str,
}

impl<'a> ItemPath<'a> {
    pub(crate) fn resource(signal: Signal, resource: usize) -> Self {
        ItemPath {
            signal,
            resource,
            scope: None,
            item: None,
            point: None,
            name: "",
        }
    }

    pub(crate) fn scope(self, scope: usize) -> Self {
        ItemPath {
            scope: Some(scope),
            ..self
        }
    }

    pub(crate) fn item(self, item: usize, name: &'a str) -> Self {
        ItemPath {
            item: Some(item),
            name,
            ..self
        }
    }

    pub(crate) fn point(self, point: usize) -> Self {
        ItemPath {
            point: Some(point),
            ..self
        }
    }
}

impl fmt::Display for ItemPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [resource, scope, item] = self.signal.fields();
        write!(f, "{resource}[{}]", self.resource)?;
        match self.scope {
            Some(s) => write!(f, ".{scope}[{s}]")?,
            None => return f.write_str(".resource"),
        }
        match self.item {
            Some(i) => write!(f, ".{item}[{i}]")?,
            None => return f.write_str(".scope"),
        }
        if let Some(p) = self.point {
            write!(f, ".dataPoints[{p}]")?;
        }
        if !self.name.is_empty() {
            // Names come from clients: keep messages short whatever they send.
            let name: String = self.name.chars().take(64).collect();
            let ellipsis = if name.len() < self.name.len() {
                "…"
            } else {
                ""
            };
            write!(f, " {:?}", format!("{name}{ellipsis}"))?;
        }
        Ok(())
    }
}

/// Notes in the report that an item's attributes were trimmed to the limit.
pub(crate) fn note_trimmed(
    report: &mut Report,
    path: &ItemPath<'_>,
    what: impl fmt::Display,
    extra: usize,
    limit: usize,
) {
    if extra > 0 {
        report.note(|| {
            format!(
                "{path}: {} {what}, kept the first {limit} (the rest counted as dropped)",
                limit + extra
            )
        });
    }
}

/// The resource of a `Resource*` message, in the form every row repeats.
pub(crate) struct ResourceContext {
    pub service_name: Option<String>,
    pub attributes: TextAttributes,
    /// The attributes' `<map>_types` text.
    pub attribute_types: Option<String>,
    pub dropped_attributes_count: u32,
    pub schema_url: Option<String>,
    /// `Resource.entity_refs` as a JSON array, `None` when there are none.
    pub entity_refs: Option<String>,
}

impl ResourceContext {
    pub(crate) fn new(
        resource: Option<&Resource>,
        schema_url: &str,
        limits: &Limits,
        report: &mut Report,
        path: ItemPath<'_>,
    ) -> Self {
        let all = resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let service_name = all
            .iter()
            .find(|kv| kv.key == SERVICE_NAME)
            .and_then(|kv| any_value_text(kv.value.as_ref()))
            .map(Cow::into_owned);
        let (attributes, extra) = kept(all, limits.max_attributes_per_item);
        note_trimmed(
            report,
            &path,
            "attributes",
            extra,
            limits.max_attributes_per_item,
        );
        ResourceContext {
            service_name,
            attributes: to_texts(attributes),
            attribute_types: types_text(attributes),
            dropped_attributes_count: dropped_total(
                resource.map(|r| r.dropped_attributes_count).unwrap_or(0),
                extra,
            ),
            schema_url: non_empty(schema_url).map(str::to_owned),
            entity_refs: resource.and_then(entity_refs_json),
        }
    }
}

/// `Resource.entity_refs` as compact JSON (`[{"type":…,"id_keys":[…],"description_keys":[…],"schema_url":…}]`).
fn entity_refs_json(resource: &Resource) -> Option<String> {
    if resource.entity_refs.is_empty() {
        return None;
    }
    let refs: Vec<serde_json::Value> = resource
        .entity_refs
        .iter()
        .map(|e| {
            serde_json::json!({
                "type": e.r#type,
                "id_keys": e.id_keys,
                "description_keys": e.description_keys,
                "schema_url": e.schema_url,
            })
        })
        .collect();
    Some(serde_json::Value::Array(refs).to_string())
}

/// The instrumentation scope of a `Scope*` message, in the form every row repeats.
pub(crate) struct ScopeContext {
    pub name: Option<String>,
    pub version: Option<String>,
    pub attributes: TextAttributes,
    /// The attributes' `<map>_types` text.
    pub attribute_types: Option<String>,
    pub dropped_attributes_count: u32,
    pub schema_url: Option<String>,
}

impl ScopeContext {
    pub(crate) fn new(
        scope: Option<&InstrumentationScope>,
        schema_url: &str,
        limits: &Limits,
        report: &mut Report,
        path: ItemPath<'_>,
    ) -> Self {
        let all = scope.map(|s| s.attributes.as_slice()).unwrap_or_default();
        let (attributes, extra) = kept(all, limits.max_attributes_per_item);
        note_trimmed(
            report,
            &path,
            "attributes",
            extra,
            limits.max_attributes_per_item,
        );
        ScopeContext {
            name: scope.and_then(|s| non_empty(&s.name)).map(str::to_owned),
            version: scope.and_then(|s| non_empty(&s.version)).map(str::to_owned),
            attributes: to_texts(attributes),
            attribute_types: types_text(attributes),
            dropped_attributes_count: dropped_total(
                scope.map(|s| s.dropped_attributes_count).unwrap_or(0),
                extra,
            ),
            schema_url: non_empty(schema_url).map(str::to_owned),
        }
    }
}

fn to_texts(attributes: &[KeyValue]) -> TextAttributes {
    attributes
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                any_value_text(kv.value.as_ref()).map(Cow::into_owned),
            )
        })
        .collect()
}

/// The resource and scope columns every table ends with, in schema order.
pub(crate) struct ResourceScopeColumns {
    service_name: StringBuilder,
    resource_attributes: AttributesBuilder,
    resource_dropped_attributes_count: UInt32Builder,
    resource_schema_url: StringBuilder,
    resource_entity_refs: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attributes: AttributesBuilder,
    scope_dropped_attributes_count: UInt32Builder,
    scope_schema_url: StringBuilder,
}

impl ResourceScopeColumns {
    pub(crate) fn with_capacity(rows: usize) -> Self {
        ResourceScopeColumns {
            service_name: StringBuilder::with_capacity(rows, rows * 8),
            resource_attributes: AttributesBuilder::with_capacity(rows),
            resource_dropped_attributes_count: UInt32Builder::with_capacity(rows),
            resource_schema_url: StringBuilder::new(),
            resource_entity_refs: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attributes: AttributesBuilder::with_capacity(rows),
            scope_dropped_attributes_count: UInt32Builder::with_capacity(rows),
            scope_schema_url: StringBuilder::new(),
        }
    }

    pub(crate) fn append(
        &mut self,
        resource: &ResourceContext,
        scope: &ScopeContext,
    ) -> Result<(), ArrowError> {
        self.service_name
            .append_option(resource.service_name.as_deref());
        self.resource_attributes.append_texts(
            resource.attributes.iter().map(|(k, v)| (k, v.as_ref())),
            resource.attribute_types.as_deref(),
        )?;
        self.resource_dropped_attributes_count
            .append_value(resource.dropped_attributes_count);
        self.resource_schema_url
            .append_option(resource.schema_url.as_deref());
        self.resource_entity_refs
            .append_option(resource.entity_refs.as_deref());
        self.scope_name.append_option(scope.name.as_deref());
        self.scope_version.append_option(scope.version.as_deref());
        self.scope_attributes.append_texts(
            scope.attributes.iter().map(|(k, v)| (k, v.as_ref())),
            scope.attribute_types.as_deref(),
        )?;
        self.scope_dropped_attributes_count
            .append_value(scope.dropped_attributes_count);
        self.scope_schema_url
            .append_option(scope.schema_url.as_deref());
        Ok(())
    }

    pub(crate) fn finish(&mut self) -> [ArrayRef; 12] {
        let [resource_attributes, resource_attribute_types] = self.resource_attributes.finish();
        let [scope_attributes, scope_attribute_types] = self.scope_attributes.finish();
        [
            Arc::new(self.service_name.finish()),
            resource_attributes,
            resource_attribute_types,
            Arc::new(self.resource_dropped_attributes_count.finish()),
            Arc::new(self.resource_schema_url.finish()),
            Arc::new(self.resource_entity_refs.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            scope_attributes,
            scope_attribute_types,
            Arc::new(self.scope_dropped_attributes_count.finish()),
            Arc::new(self.scope_schema_url.finish()),
        ]
    }
}
