//! What failures look like in each service: the dependency error seen first, and the exception the
//! service then reports, with stack traces in the service's language.

use crate::topology::Service;

/// A dependency (database or cache) failure and how the service surfaces it.
#[derive(Debug)]
pub(crate) struct Fault {
    /// True when the failing dependency is Redis rather than PostgreSQL.
    pub on_cache: bool,
    /// The failing dependency call: operation name and span name (query summary).
    pub operation: &'static str,
    pub summary: &'static str,
    /// How long the failing dependency call takes before it errors (ms).
    pub dependency_ms: f64,
    /// The driver's exception type and message.
    pub cause_type: &'static str,
    pub cause_message: &'static str,
    /// SQLSTATE, for database failures (`db.response.status_code`).
    pub sqlstate: Option<&'static str>,
    /// The exception the service's handler reports.
    pub error_type: &'static str,
    pub message: &'static str,
    pub stacktrace: &'static str,
    /// gRPC status the service answers with (HTTP services answer 500 or 503).
    pub grpc_code: i64,
    pub http_status: i64,
}

const ACCOUNT: Fault = Fault {
    operation: "SELECT",
    summary: "SELECT orders",
    on_cache: false,
    dependency_ms: 250.0,
    cause_type: "java.sql.SQLTransientConnectionException",
    cause_message: "HikariPool-1 - Connection is not available, request timed out after 250ms.",
    sqlstate: None,
    error_type: "org.springframework.jdbc.CannotGetJdbcConnectionException",
    message: "Failed to obtain JDBC Connection",
    stacktrace: "org.springframework.jdbc.CannotGetJdbcConnectionException: Failed to obtain JDBC Connection\n\
\tat org.springframework.jdbc.datasource.DataSourceUtils.getConnection(DataSourceUtils.java:84)\n\
\tat com.bookstore.account.orders.OrderRepository.save(OrderRepository.java:57)\n\
\tat com.bookstore.account.orders.OrderController.create(OrderController.java:41)\n\
Caused by: java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 250ms.\n\
\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:686)\n\
\t... 86 more",
    grpc_code: 14,
    http_status: 503,
};

const WAREHOUSE: Fault = Fault {
    operation: "SELECT",
    summary: "SELECT inventory",
    on_cache: false,
    dependency_ms: 500.0,
    cause_type: "org.postgresql.util.PSQLException",
    cause_message: "ERROR: canceling statement due to statement timeout",
    sqlstate: Some("57014"),
    error_type: "org.springframework.dao.QueryTimeoutException",
    message: "PreparedStatementCallback; SQL [SELECT available FROM inventory WHERE isbn = ?]; ERROR: canceling statement due to statement timeout",
    stacktrace: "org.springframework.dao.QueryTimeoutException: PreparedStatementCallback; ERROR: canceling statement due to statement timeout\n\
\tat org.springframework.jdbc.support.SQLStateSQLExceptionTranslator.doTranslate(SQLStateSQLExceptionTranslator.java:114)\n\
\tat com.bookstore.warehouse.stock.StockRepository.available(StockRepository.java:88)\n\
\tat com.bookstore.warehouse.stock.StockService.check(StockService.java:35)\n\
Caused by: org.postgresql.util.PSQLException: ERROR: canceling statement due to statement timeout\n\
\tat org.postgresql.core.v3.QueryExecutorImpl.receiveErrorResponse(QueryExecutorImpl.java:2725)\n\
\t... 64 more",
    grpc_code: 13,
    http_status: 500,
};

const PAYMENT: Fault = Fault {
    operation: "INSERT",
    summary: "INSERT charges",
    on_cache: false,
    dependency_ms: 4.0,
    cause_type: "*pgconn.PgError",
    cause_message: "ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)",
    sqlstate: Some("40001"),
    error_type: "*fmt.wrapError",
    message: "record charge: ERROR: could not serialize access due to concurrent update (SQLSTATE 40001)",
    stacktrace: "goroutine 4127 [running]:\n\
bookstore/payment/internal/charges.(*Store).Insert(0xc0001a2000, {0x1b3c8e0, 0xc000512f00}, 0xc0004c6d80)\n\
\t/src/internal/charges/store.go:112 +0x2a5\n\
bookstore/payment/internal/server.(*PaymentServer).Charge(0xc00011e0f0, {0x1b3c8e0, 0xc000512f00}, 0xc0003f8a50)\n\
\t/src/internal/server/charge.go:64 +0x1d3",
    grpc_code: 13,
    http_status: 500,
};

const SECURITY: Fault = Fault {
    operation: "GET",
    summary: "GET",
    on_cache: true,
    dependency_ms: 1.5,
    cause_type: "*net.OpError",
    cause_message: "dial tcp 10.0.7.21:6379: connect: connection refused",
    sqlstate: None,
    error_type: "*fmt.wrapError",
    message: "load session: dial tcp 10.0.7.21:6379: connect: connection refused",
    stacktrace: "goroutine 981 [running]:\n\
bookstore/security/internal/sessions.(*Cache).Get(0xc000182a80, {0x19a2f40, 0xc0002b4e10}, {0xc0003c6f00, 0x24})\n\
\t/src/internal/sessions/cache.go:48 +0x1f1\n\
bookstore/security/internal/server.(*AuthServer).ValidateToken(0xc0000a6c30, {0x19a2f40, 0xc0002b4e10}, 0xc000410c00)\n\
\t/src/internal/server/auth.go:77 +0xc5",
    grpc_code: 14,
    http_status: 503,
};

const GATEWAY: Fault = Fault {
    operation: "",
    summary: "",
    on_cache: false,
    dependency_ms: 0.0,
    cause_type: "runtime.Error",
    cause_message: "runtime error: invalid memory address or nil pointer dereference",
    sqlstate: None,
    error_type: "runtime.Error",
    message: "runtime error: invalid memory address or nil pointer dereference",
    stacktrace: "panic: runtime error: invalid memory address or nil pointer dereference [recovered]\n\
[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x12d4f6a]\n\n\
goroutine 20533 [running]:\n\
bookstore/gateway/internal/render.(*Page).Books(0x0, {0xc000a1e000, 0x14, 0x14})\n\
\t/src/internal/render/books.go:91 +0x4a\n\
bookstore/gateway/internal/api.(*Handler).serve(0xc0001b6000, {0x1c0a9e8, 0xc0006a41c0}, 0xc0004e2900)\n\
\t/src/internal/api/handler.go:212 +0x3be",
    grpc_code: 13,
    http_status: 500,
};

/// The failure `service` suffers when it fails a request.
pub(crate) fn fault_of(service: Service) -> &'static Fault {
    match service {
        Service::Gateway => &GATEWAY,
        Service::Account => &ACCOUNT,
        Service::Warehouse => &WAREHOUSE,
        Service::Payment => &PAYMENT,
        Service::Security => &SECURITY,
    }
}

/// The name of a gRPC status code (`error.type` on failed RPCs).
pub(crate) fn grpc_code_name(code: i64) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        9 => "FAILED_PRECONDITION",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// Whether a server reports this gRPC code as an error (semantic conventions: server faults only).
pub(crate) fn grpc_server_error(code: i64) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

/// An HTTP status code as text (`error.type` on failed HTTP calls).
pub(crate) fn http_status_text(code: i64) -> &'static str {
    match code {
        200 => "200",
        201 => "201",
        400 => "400",
        401 => "401",
        402 => "402",
        404 => "404",
        409 => "409",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "_OTHER",
    }
}
