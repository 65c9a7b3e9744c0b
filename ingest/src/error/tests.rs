use super::*;

#[test]
fn overload_maps_to_retryable_statuses_with_retry_after() {
    let error = IngestError::from(StorageError::Overloaded {
        reason: "head full".into(),
        retry_after: Duration::from_millis(1500),
    });
    assert_eq!(error.http_status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error.grpc_code(), tonic::Code::Unavailable);
    let response = error.to_http_response(true);
    assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    assert!(error.to_string().contains("retry after 2s"), "{error}");

    let error = IngestError::from(StorageError::ShuttingDown);
    assert_eq!(error.http_status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(error.to_grpc_status().message().contains("retry"));
}

#[test]
fn other_storage_errors_are_internal_and_do_not_leak_details() {
    let error = IngestError::from(StorageError::io(
        "writing /secret/path/wal",
        std::io::Error::other("disk full"),
    ));
    assert_eq!(error.http_status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error.grpc_code(), tonic::Code::Internal);
    assert!(!error.to_string().contains("/secret"));
    assert!(error.retry_after().is_none());
}

#[test]
fn error_bodies_are_rpc_status_in_the_request_encoding() {
    let error = IngestError::Json("expected value at line 1 column 1".into());
    let response = error.to_http_response(false);
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-protobuf"
    );
    assert_eq!(error.grpc_code() as i32, 3);
    assert_eq!(
        RpcStatus {
            code: 3,
            message: "x".into()
        }
        .encode_to_vec(),
        vec![0x08, 3, 0x12, 1, b'x']
    );
}
