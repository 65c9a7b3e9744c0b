//! `ExportTraceServiceRequest` → rows of the `spans` table.

use std::borrow::Cow;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeBinaryBuilder, Int64Builder, StringBuilder, StructArray,
    TimestampNanosecondBuilder, UInt32Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use lumen_storage::Table;
use lumen_storage::schema::{span_event_fields, span_link_fields};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};

use super::common::{
    AttributesBuilder, Clock, ItemPath, ListOffsets, ResourceContext, ResourceScopeColumns,
    ScopeContext, Signal, dropped_total, hex_id, is_zero_id, kept, non_empty, note_trimmed,
    stored_ns, timestamp_builder,
};
use super::{Converted, Limits, Report};

/// Converts the spans of an export request into one `spans` batch.
///
/// A span is rejected (and reported) when its trace id is not 16 bytes or all zeros, its span id not
/// 8 bytes or all zeros, its parent span id neither empty nor 8 bytes, its start time 0, its end
/// before its start, or any of its timestamps (events included) past the year 2262 or later than
/// `now_ns + limits.max_future_skew`. An all-zero parent span id is stored as null (a root span).
pub fn spans(
    request: &ExportTraceServiceRequest,
    limits: &Limits,
    now_ns: i64,
) -> Result<Converted, ArrowError> {
    let rows = request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    let clock = Clock::new(now_ns, limits.max_future_skew);
    let mut columns = SpanColumns::with_capacity(rows);
    let mut report = Report::default();
    for (ri, rs) in request.resource_spans.iter().enumerate() {
        let rpath = ItemPath::resource(Signal::Spans, ri);
        let resource = ResourceContext::new(
            rs.resource.as_ref(),
            &rs.schema_url,
            limits,
            &mut report,
            rpath,
        );
        for (si, ss) in rs.scope_spans.iter().enumerate() {
            let spath = rpath.scope(si);
            let scope = ScopeContext::new(
                ss.scope.as_ref(),
                &ss.schema_url,
                limits,
                &mut report,
                spath,
            );
            for (i, span) in ss.spans.iter().enumerate() {
                let path = spath.item(i, &span.name);
                match check_span(span, &clock) {
                    Ok(times) => {
                        columns.append(span, times, limits, &mut report, &path)?;
                        columns.resource_scope.append(&resource, &scope)?;
                        report.accept();
                    }
                    Err(reason) => report.reject(|| format!("{path}: {reason}")),
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

/// The spans of `request` that [`spans`] accepts, in order (what the span-derived metrics count).
pub(crate) fn accepted_spans<'a>(
    request: &'a ExportTraceServiceRequest,
    limits: &Limits,
    now_ns: i64,
) -> impl Iterator<Item = (&'a ResourceSpans, &'a Span)> + 'a {
    let clock = Clock::new(now_ns, limits.max_future_skew);
    request.resource_spans.iter().flat_map(move |rs| {
        let clock = clock;
        rs.scope_spans
            .iter()
            .flat_map(|ss| &ss.spans)
            .filter(move |span| check_span(span, &clock).is_ok())
            .map(move |span| (rs, span))
    })
}

/// Start and end of a valid span, in nanoseconds.
#[derive(Debug, Clone, Copy)]
struct SpanTimes {
    start: i64,
    end: i64,
}

fn check_span(span: &Span, clock: &Clock) -> Result<SpanTimes, String> {
    check_id("trace_id", &span.trace_id, 16)?;
    check_id("span_id", &span.span_id, 8)?;
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Err(format!(
            "parent_span_id must be empty or 8 bytes, got {} bytes",
            span.parent_span_id.len()
        ));
    }
    if span.start_time_unix_nano == 0 {
        return Err("start_time_unix_nano is 0 (unset)".to_owned());
    }
    let start = clock.check("start_time_unix_nano", span.start_time_unix_nano)?;
    let end = clock.check("end_time_unix_nano", span.end_time_unix_nano)?;
    if end < start {
        return Err(format!(
            "end_time_unix_nano {end} is before start_time_unix_nano {start}"
        ));
    }
    for (i, event) in span.events.iter().enumerate() {
        clock.check(
            format_args!("events[{i}].time_unix_nano"),
            event.time_unix_nano,
        )?;
    }
    Ok(SpanTimes { start, end })
}

/// A required id: exactly `len` bytes, not all zeros.
pub(super) fn check_id(field: &str, id: &[u8], len: usize) -> Result<(), String> {
    if id.len() != len {
        return Err(format!(
            "{field} must be {len} bytes, got {} bytes",
            id.len()
        ));
    }
    if is_zero_id(id) {
        return Err(format!("{field} is all zeros"));
    }
    Ok(())
}

/// `spans.kind`: the lowercase name of the span kind, or its number when unknown.
fn kind_text(kind: i32) -> Cow<'static, str> {
    Cow::Borrowed(match kind {
        0 => "unspecified",
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        other => return Cow::Owned(other.to_string()),
    })
}

/// `spans.status_code`: `unset`, `ok`, `error`, or the number when unknown.
fn status_code_text(code: i32) -> Cow<'static, str> {
    Cow::Borrowed(match code {
        0 => "unset",
        1 => "ok",
        2 => "error",
        other => return Cow::Owned(other.to_string()),
    })
}

struct SpanColumns {
    time: TimestampNanosecondBuilder,
    end_time: TimestampNanosecondBuilder,
    duration_ns: Int64Builder,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    parent_span_id: FixedSizeBinaryBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    name: StringBuilder,
    kind: StringBuilder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    attributes: AttributesBuilder,
    dropped_attributes_count: UInt32Builder,
    events: EventColumns,
    dropped_events_count: UInt32Builder,
    links: LinkColumns,
    dropped_links_count: UInt32Builder,
    resource_scope: ResourceScopeColumns,
}

impl SpanColumns {
    fn with_capacity(rows: usize) -> Self {
        SpanColumns {
            time: timestamp_builder(rows),
            end_time: timestamp_builder(rows),
            duration_ns: Int64Builder::with_capacity(rows),
            trace_id: FixedSizeBinaryBuilder::with_capacity(rows, 16),
            span_id: FixedSizeBinaryBuilder::with_capacity(rows, 8),
            parent_span_id: FixedSizeBinaryBuilder::with_capacity(rows, 8),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::with_capacity(rows),
            name: StringBuilder::with_capacity(rows, rows * 16),
            kind: StringBuilder::with_capacity(rows, rows * 6),
            status_code: StringBuilder::with_capacity(rows, rows * 5),
            status_message: StringBuilder::new(),
            attributes: AttributesBuilder::with_capacity(rows),
            dropped_attributes_count: UInt32Builder::with_capacity(rows),
            events: EventColumns::with_capacity(rows),
            dropped_events_count: UInt32Builder::with_capacity(rows),
            links: LinkColumns::with_capacity(rows),
            dropped_links_count: UInt32Builder::with_capacity(rows),
            resource_scope: ResourceScopeColumns::with_capacity(rows),
        }
    }

    /// Appends a span that passed [`check_span`] (all but the resource and scope columns).
    fn append(
        &mut self,
        span: &Span,
        times: SpanTimes,
        limits: &Limits,
        report: &mut Report,
        path: &ItemPath<'_>,
    ) -> Result<(), ArrowError> {
        let limit = limits.max_attributes_per_item;
        self.time.append_value(times.start);
        self.end_time.append_value(times.end);
        self.duration_ns.append_value(times.end - times.start);
        self.trace_id.append_value(&span.trace_id)?;
        self.span_id.append_value(&span.span_id)?;
        if span.parent_span_id.is_empty() || is_zero_id(&span.parent_span_id) {
            self.parent_span_id.append_null();
        } else {
            self.parent_span_id.append_value(&span.parent_span_id)?;
        }
        self.trace_state.append_option(non_empty(&span.trace_state));
        self.flags.append_value(span.flags);
        self.name.append_value(&span.name);
        self.kind.append_value(kind_text(span.kind));
        match &span.status {
            Some(status) => {
                self.status_code.append_value(status_code_text(status.code));
                self.status_message
                    .append_option(non_empty(&status.message));
            }
            None => {
                self.status_code.append_value("unset");
                self.status_message.append_null();
            }
        }
        let (attributes, extra) = kept(&span.attributes, limit);
        self.attributes.append(attributes)?;
        self.dropped_attributes_count
            .append_value(dropped_total(span.dropped_attributes_count, extra));
        note_trimmed(report, path, "attributes", extra, limit);
        self.events.append(&span.events, limit, report, path)?;
        self.dropped_events_count
            .append_value(span.dropped_events_count);
        self.links.append(&span.links, limit, report, path)?;
        self.dropped_links_count
            .append_value(span.dropped_links_count);
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let [attributes, attribute_types] = self.attributes.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.end_time.finish()),
            Arc::new(self.duration_ns.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            attributes,
            attribute_types,
            Arc::new(self.dropped_attributes_count.finish()),
            self.events.finish()?,
            Arc::new(self.dropped_events_count.finish()),
            self.links.finish()?,
            Arc::new(self.dropped_links_count.finish()),
        ];
        columns.extend(self.resource_scope.finish());
        RecordBatch::try_new(Table::Spans.schema(), columns)
    }
}

/// `spans.events`: a list of `schema::span_event_fields()` structs per span.
struct EventColumns {
    offsets: ListOffsets,
    time: TimestampNanosecondBuilder,
    name: StringBuilder,
    attributes: AttributesBuilder,
    dropped_attributes_count: UInt32Builder,
}

impl EventColumns {
    fn with_capacity(rows: usize) -> Self {
        EventColumns {
            offsets: ListOffsets::with_capacity(rows),
            time: timestamp_builder(0),
            name: StringBuilder::new(),
            attributes: AttributesBuilder::with_capacity(0),
            dropped_attributes_count: UInt32Builder::new(),
        }
    }

    fn append(
        &mut self,
        events: &[Event],
        limit: usize,
        report: &mut Report,
        path: &ItemPath<'_>,
    ) -> Result<(), ArrowError> {
        for (i, event) in events.iter().enumerate() {
            self.time.append_value(stored_ns(event.time_unix_nano));
            self.name.append_value(&event.name);
            let (attributes, extra) = kept(&event.attributes, limit);
            self.attributes.append(attributes)?;
            self.dropped_attributes_count
                .append_value(dropped_total(event.dropped_attributes_count, extra));
            note_trimmed(
                report,
                path,
                format_args!("attributes in events[{i}]"),
                extra,
                limit,
            );
        }
        self.offsets.push(events.len())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let [attributes, attribute_types] = self.attributes.finish();
        let values = StructArray::try_new(
            span_event_fields(),
            vec![
                Arc::new(self.time.finish()),
                Arc::new(self.name.finish()),
                attributes,
                attribute_types,
                Arc::new(self.dropped_attributes_count.finish()),
            ],
            None,
        )?;
        self.offsets.finish(Arc::new(values))
    }
}

/// `spans.links`: a list of `schema::span_link_fields()` structs per span, ids as lowercase hex.
struct LinkColumns {
    offsets: ListOffsets,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    attributes: AttributesBuilder,
    dropped_attributes_count: UInt32Builder,
}

impl LinkColumns {
    fn with_capacity(rows: usize) -> Self {
        LinkColumns {
            offsets: ListOffsets::with_capacity(rows),
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::new(),
            attributes: AttributesBuilder::with_capacity(0),
            dropped_attributes_count: UInt32Builder::new(),
        }
    }

    fn append(
        &mut self,
        links: &[Link],
        limit: usize,
        report: &mut Report,
        path: &ItemPath<'_>,
    ) -> Result<(), ArrowError> {
        for (i, link) in links.iter().enumerate() {
            self.trace_id.append_option(hex_id(&link.trace_id));
            self.span_id.append_option(hex_id(&link.span_id));
            self.trace_state.append_option(non_empty(&link.trace_state));
            self.flags.append_value(link.flags);
            let (attributes, extra) = kept(&link.attributes, limit);
            self.attributes.append(attributes)?;
            self.dropped_attributes_count
                .append_value(dropped_total(link.dropped_attributes_count, extra));
            note_trimmed(
                report,
                path,
                format_args!("attributes in links[{i}]"),
                extra,
                limit,
            );
        }
        self.offsets.push(links.len())
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let [attributes, attribute_types] = self.attributes.finish();
        let values = StructArray::try_new(
            span_link_fields(),
            vec![
                Arc::new(self.trace_id.finish()),
                Arc::new(self.span_id.finish()),
                Arc::new(self.trace_state.finish()),
                Arc::new(self.flags.finish()),
                attributes,
                attribute_types,
                Arc::new(self.dropped_attributes_count.finish()),
            ],
            None,
        )?;
        self.offsets.finish(Arc::new(values))
    }
}
