use super::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;

#[test]
fn camel_case_converts_proto_field_names() {
    assert_eq!(camel_case("time_unix_nano"), "timeUnixNano");
    assert_eq!(camel_case("resource_spans"), "resourceSpans");
    assert_eq!(camel_case("name"), "name");
}

#[test]
fn accepts_snake_case_nulls_enum_names_and_numbers_for_64_bit_fields() {
    let body = br#"{"resource_spans":[{"resource":null,"scope_spans":[{"spans":[{
        "trace_id":"5b8efff798038103d269b633813fc60c","span_id":"EEE19B7EC3C1B174",
        "parent_span_id":"","name":"s","kind":"SPAN_KIND_CLIENT",
        "start_time_unix_nano":1544712660000000000,"end_time_unix_nano":"1544712661000000000",
        "status":{"code":"STATUS_CODE_ERROR","message":null},
        "attributes":[{"key":"a","value":{"arrayValue":{}}},{"key":"b","value":{"intValue":7}}]
    }]}]}]}"#;
    let request: ExportTraceServiceRequest = decode(body).expect("decodes");
    let span = &request.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.span_id, hex::decode("eee19b7ec3c1b174").expect("hex"));
    assert_eq!(span.kind, 3);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(
        span.attributes[1]
            .value
            .as_ref()
            .and_then(|v| v.value.clone()),
        Some(any_value::Value::IntValue(7))
    );
}

#[test]
fn errors_say_what_failed() {
    let err = decode::<ExportLogsServiceRequest>(b"{\"resourceLogs\": [").unwrap_err();
    assert!(err.to_string().contains("not valid JSON"), "{err}");
    let err = decode::<ExportLogsServiceRequest>(b"[1]").unwrap_err();
    assert!(err.to_string().contains("object"), "{err}");
    let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"zz"}]}]}]}"#;
    let err = decode::<ExportLogsServiceRequest>(body).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid OTLP/JSON body: resourceLogs[0].scopeLogs[0].logRecords[0].traceId: \
         \"zz\" is not a hex-encoded id"
    );
    let body = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#;
    let err = decode::<ExportLogsServiceRequest>(body).unwrap_err();
    assert!(
        err.to_string().starts_with("invalid OTLP/JSON body"),
        "{err}"
    );
    assert!(decode::<ExportLogsServiceRequest>(&[0xff, 0xfe]).is_err());
}
