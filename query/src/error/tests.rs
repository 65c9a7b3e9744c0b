use std::sync::Arc;

use super::*;

#[test]
fn plan_errors_are_bad_queries_even_when_wrapped() {
    let plan = DataFusionError::Plan("table 'nope' not found".into());
    let wrapped = DataFusionError::Shared(Arc::new(plan.context("while planning")));
    let err = QueryError::from(wrapped);
    assert_eq!(err.error_type(), "bad_query");
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    assert!(err.to_string().contains("table 'nope' not found"), "{err}");
}

#[test]
fn resources_exhausted_is_422() {
    let err = QueryError::from(DataFusionError::ResourcesExhausted(
        "Failed to allocate".into(),
    ));
    assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err.error_type(), "resources_exhausted");
    assert!(err.to_string().contains("memory limit"));
}

#[test]
fn missing_segment_is_retryable_and_corrupt_segment_is_internal() {
    let missing: DataFusionError = SegmentReadError::Missing("/data/seg-1.parquet".into()).into();
    let err = QueryError::from(DataFusionError::Shared(Arc::new(missing)));
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.to_string().contains("/data/seg-1.parquet"));

    let corrupt: DataFusionError = SegmentReadError::Unreadable {
        path: "/data/seg-2.parquet".into(),
        message: "bad magic".into(),
    }
    .into();
    let arrow_wrapped =
        DataFusionError::ArrowError(Box::new(ArrowError::ExternalError(Box::new(corrupt))), None);
    let err = QueryError::from(arrow_wrapped);
    assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(err.to_string().contains("bad magic"));
}

#[test]
fn arrow_compute_errors_are_the_query_s_fault() {
    let err = QueryError::from(DataFusionError::ArrowError(
        Box::new(ArrowError::DivideByZero),
        None,
    ));
    assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    let err = QueryError::from(DataFusionError::Internal("oops".into()));
    assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[test]
fn timeout_message_and_status() {
    let err = QueryError::Timeout(Duration::from_secs(30));
    assert_eq!(
        err.to_string(),
        "query exceeded its time limit of 30s and was cancelled"
    );
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1.500s");
}
