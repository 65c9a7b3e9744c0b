//! `ExportLogsServiceRequest` → rows of the `logs` table.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, FixedSizeBinaryBuilder, Int32Builder, StringBuilder, TimestampNanosecondBuilder,
    UInt32Builder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use lumen_storage::Table;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;

use super::common::{
    AttributesBuilder, Clock, ItemPath, ResourceContext, ResourceScopeColumns, ScopeContext,
    Signal, dropped_total, is_zero_id, kept, non_empty, note_trimmed, timestamp_builder,
    value_text, value_type,
};
use super::{Converted, Limits, Report};

/// Converts the log records of an export request into one `logs` batch.
///
/// `time` is the record's timestamp, else its observed timestamp, else `now_ns` (the time it was
/// received); `observed_time` is null when unset. The body is stored in its text form (see the
/// module docs of `convert`) with its type in `body_type`. A record is rejected when its trace id
/// is neither empty nor 16 bytes, its span id neither empty nor 8 bytes, or a timestamp is past the
/// year 2262 or later than `now_ns + limits.max_future_skew`. All-zero ids are stored as null.
pub fn logs(
    request: &ExportLogsServiceRequest,
    limits: &Limits,
    now_ns: i64,
) -> Result<Converted, ArrowError> {
    let rows = request
        .resource_logs
        .iter()
        .flat_map(|rl| &rl.scope_logs)
        .map(|sl| sl.log_records.len())
        .sum();
    let clock = Clock::new(now_ns, limits.max_future_skew);
    let mut columns = LogColumns::with_capacity(rows);
    let mut report = Report::default();
    for (ri, rl) in request.resource_logs.iter().enumerate() {
        let rpath = ItemPath::resource(Signal::Logs, ri);
        let resource = ResourceContext::new(
            rl.resource.as_ref(),
            &rl.schema_url,
            limits,
            &mut report,
            rpath,
        );
        for (si, sl) in rl.scope_logs.iter().enumerate() {
            let spath = rpath.scope(si);
            let scope = ScopeContext::new(
                sl.scope.as_ref(),
                &sl.schema_url,
                limits,
                &mut report,
                spath,
            );
            for (i, record) in sl.log_records.iter().enumerate() {
                let path = spath.item(i, &record.event_name);
                match check_record(record, &clock) {
                    Ok(times) => {
                        columns.append(record, times, limits, &mut report, &path)?;
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

/// The `time` and `observed_time` of a valid record.
#[derive(Debug, Clone, Copy)]
struct LogTimes {
    time: i64,
    observed: Option<i64>,
}

fn check_record(record: &LogRecord, clock: &Clock) -> Result<LogTimes, String> {
    check_optional_id("trace_id", &record.trace_id, 16)?;
    check_optional_id("span_id", &record.span_id, 8)?;
    let time = clock.check("time_unix_nano", record.time_unix_nano)?;
    let observed = clock.check("observed_time_unix_nano", record.observed_time_unix_nano)?;
    let observed = (observed != 0).then_some(observed);
    let time = match (time, observed) {
        (0, Some(observed)) => observed,
        (0, None) => clock.now_ns(),
        (time, _) => time,
    };
    Ok(LogTimes { time, observed })
}

fn check_optional_id(field: &str, id: &[u8], len: usize) -> Result<(), String> {
    if !id.is_empty() && id.len() != len {
        return Err(format!(
            "{field} must be empty or {len} bytes, got {} bytes",
            id.len()
        ));
    }
    Ok(())
}

fn append_optional_id(builder: &mut FixedSizeBinaryBuilder, id: &[u8]) -> Result<(), ArrowError> {
    if id.is_empty() || is_zero_id(id) {
        builder.append_null();
        Ok(())
    } else {
        builder.append_value(id)
    }
}

struct LogColumns {
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    body_type: StringBuilder,
    event_name: StringBuilder,
    trace_id: FixedSizeBinaryBuilder,
    span_id: FixedSizeBinaryBuilder,
    flags: UInt32Builder,
    attributes: AttributesBuilder,
    dropped_attributes_count: UInt32Builder,
    resource_scope: ResourceScopeColumns,
}

impl LogColumns {
    fn with_capacity(rows: usize) -> Self {
        LogColumns {
            time: timestamp_builder(rows),
            observed_time: timestamp_builder(rows),
            severity_number: Int32Builder::with_capacity(rows),
            severity_text: StringBuilder::with_capacity(rows, rows * 5),
            body: StringBuilder::with_capacity(rows, rows * 64),
            body_type: StringBuilder::with_capacity(rows, rows * 6),
            event_name: StringBuilder::new(),
            trace_id: FixedSizeBinaryBuilder::with_capacity(rows, 16),
            span_id: FixedSizeBinaryBuilder::with_capacity(rows, 8),
            flags: UInt32Builder::with_capacity(rows),
            attributes: AttributesBuilder::with_capacity(rows),
            dropped_attributes_count: UInt32Builder::with_capacity(rows),
            resource_scope: ResourceScopeColumns::with_capacity(rows),
        }
    }

    /// Appends a record that passed [`check_record`] (all but the resource and scope columns).
    fn append(
        &mut self,
        record: &LogRecord,
        times: LogTimes,
        limits: &Limits,
        report: &mut Report,
        path: &ItemPath<'_>,
    ) -> Result<(), ArrowError> {
        let limit = limits.max_attributes_per_item;
        self.time.append_value(times.time);
        self.observed_time.append_option(times.observed);
        self.severity_number.append_value(record.severity_number);
        self.severity_text
            .append_option(non_empty(&record.severity_text));
        match record.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(body) => {
                self.body.append_value(value_text(body));
                self.body_type.append_value(value_type(body));
            }
            None => {
                self.body.append_null();
                self.body_type.append_null();
            }
        }
        self.event_name.append_option(non_empty(&record.event_name));
        append_optional_id(&mut self.trace_id, &record.trace_id)?;
        append_optional_id(&mut self.span_id, &record.span_id)?;
        self.flags.append_value(record.flags);
        let (attributes, extra) = kept(&record.attributes, limit);
        self.attributes.append(attributes)?;
        self.dropped_attributes_count
            .append_value(dropped_total(record.dropped_attributes_count, extra));
        note_trimmed(report, path, "attributes", extra, limit);
        Ok(())
    }

    fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let [attributes, attribute_types] = self.attributes.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.observed_time.finish()),
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.body_type.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.flags.finish()),
            attributes,
            attribute_types,
            Arc::new(self.dropped_attributes_count.finish()),
        ];
        columns.extend(self.resource_scope.finish());
        RecordBatch::try_new(Table::Logs.schema(), columns)
    }
}
