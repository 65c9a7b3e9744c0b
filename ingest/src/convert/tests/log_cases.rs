//! Logs: times, ids and bodies.

use super::*;

fn log_request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("shop"),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn log_times_fall_back_to_observed_then_now() {
    let request = log_request(vec![
        LogRecord {
            time_unix_nano: 0,
            observed_time_unix_nano: 1_700_000_000_000_000_123,
            ..Default::default()
        },
        LogRecord::default(),
        LogRecord {
            time_unix_nano: 1_600_000_000_000_000_000,
            body: Some(AnyValue {
                value: Some(Value::DoubleValue(0.5)),
            }),
            ..Default::default()
        },
    ]);
    let converted = logs(&request, &limits(), NOW).expect("converts");
    assert_schema(&converted, Table::Logs);
    let b = batch(&converted);
    assert_eq!(time_at(b, "time", 0), Some(1_700_000_000_000_000_123));
    assert_eq!(
        time_at(b, "observed_time", 0),
        Some(1_700_000_000_000_000_123)
    );
    assert_eq!(time_at(b, "time", 1), Some(NOW));
    assert_eq!(time_at(b, "observed_time", 1), None);
    assert_eq!(string(b, "body", 1), None);
    assert_eq!(string(b, "body_type", 1), None);
    assert_eq!(time_at(b, "time", 2), Some(1_600_000_000_000_000_000));
    assert_eq!(string(b, "body", 2).as_deref(), Some("0.5"));
    assert_eq!(string(b, "body_type", 2).as_deref(), Some("double"));
}

#[test]
fn log_ids_of_the_wrong_length_are_rejected_zero_ids_are_null() {
    let far_future = (NOW + 2 * 3_600_000_000_000) as u64;
    let request = log_request(vec![
        LogRecord {
            trace_id: vec![1; 8],
            event_name: "short".to_owned(),
            ..Default::default()
        },
        LogRecord {
            span_id: vec![1; 16],
            ..Default::default()
        },
        LogRecord {
            time_unix_nano: far_future,
            ..Default::default()
        },
        LogRecord {
            observed_time_unix_nano: u64::MAX,
            ..Default::default()
        },
        LogRecord {
            trace_id: vec![0; 16],
            span_id: vec![0; 8],
            ..Default::default()
        },
        LogRecord {
            trace_id: vec![7; 16],
            span_id: vec![8; 8],
            ..Default::default()
        },
    ]);
    let converted = logs(&request, &limits(), NOW).expect("converts");
    assert_eq!((converted.accepted, converted.rejected), (2, 4));
    let b = batch(&converted);
    assert_eq!(id(b, "trace_id", 0), None);
    assert_eq!(id(b, "span_id", 0), None);
    assert_eq!(
        id(b, "trace_id", 1).as_deref(),
        Some("07".repeat(16).as_str())
    );
    let message = converted.message();
    assert!(
        message.contains(r#"logRecords[0] "short": trace_id must be empty or 16 bytes, got 8"#),
        "{message}"
    );
    assert!(
        message.contains("logRecords[1]: span_id must be empty or 8 bytes"),
        "{message}"
    );
}
