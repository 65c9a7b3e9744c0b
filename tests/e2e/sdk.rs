//! The real OpenTelemetry Rust SDK (0.33) exporting to the real binary over every OTLP transport:
//! gRPC (plain and gzip), HTTP/protobuf and HTTP/JSON. Each signal is read back with SQL and compared
//! field by field with what the SDK was told to send, first from the head and again from Parquet
//! segments after a flush.
//!
//! Processors: for gRPC the SDK's defaults (batch span/log processors and the periodic reader on
//! their own threads, as most applications run them). The HTTP exporters use the async `reqwest`
//! client, which needs a Tokio runtime, so for HTTP the Tokio-runtime variants of the processors and
//! reader are used. Every call that blocks on an export (`force_flush`, `shutdown`) runs on a blocking
//! thread so that it never stalls a runtime worker the export needs.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt as _, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{
    Array, Context, InstrumentationScope, KeyValue, StringValue, Value as OtelValue,
};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol, SpanExporter, WithExportConfig as _,
    WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{Aggregation, Instrument, SdkMeterProvider, Stream, Temporality};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value, json};

use crate::server::TestServer;

type Row = Map<String, Value>;

const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough that only our explicit `force_flush` / `shutdown` ever export metrics.
const NEVER: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------------------------------
// The tests: three signals × four exporter configurations.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_traces() {
    traces_round_trip(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_traces() {
    traces_round_trip(Transport::GrpcGzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_traces() {
    traces_round_trip(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_traces() {
    traces_round_trip(Transport::HttpJson).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_metrics_cumulative() {
    metrics_round_trip(Transport::Grpc, Temporality::Cumulative).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_metrics_delta() {
    metrics_round_trip(Transport::GrpcGzip, Temporality::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_metrics_cumulative() {
    metrics_round_trip(Transport::HttpProtobuf, Temporality::Cumulative).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_metrics_delta() {
    metrics_round_trip(Transport::HttpJson, Temporality::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_logs() {
    logs_round_trip(Transport::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_gzip_logs() {
    logs_round_trip(Transport::GrpcGzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_protobuf_logs() {
    logs_round_trip(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_logs() {
    logs_round_trip(Transport::HttpJson).await;
}

#[test]
fn rfc3339_formatting_of_the_expected_values() {
    let t = UNIX_EPOCH + Duration::new(1_544_712_660, 300_000_000);
    assert_eq!(rfc3339(t), "2018-12-13T14:51:00.300000000Z");
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::new(951_782_400, 7)),
        "2000-02-29T00:00:00.000000007Z"
    );
    assert_eq!(
        rfc3339(UNIX_EPOCH + Duration::new(4_102_444_799, 999_999_999)),
        "2099-12-31T23:59:59.999999999Z"
    );
}

// ---------------------------------------------------------------------------------------------
// Exporter configurations.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Grpc,
    GrpcGzip,
    HttpProtobuf,
    HttpJson,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::GrpcGzip => "grpc-gzip",
            Transport::HttpProtobuf => "http-protobuf",
            Transport::HttpJson => "http-json",
        }
    }

    fn is_grpc(self) -> bool {
        matches!(self, Transport::Grpc | Transport::GrpcGzip)
    }

    fn http_protocol(self) -> Protocol {
        match self {
            Transport::HttpJson => Protocol::HttpJson,
            _ => Protocol::HttpBinary,
        }
    }

    fn span_exporter(self, server: &TestServer) -> SpanExporter {
        let exporter = match self {
            Transport::Grpc => SpanExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc.clone())
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Transport::GrpcGzip => SpanExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc.clone())
                .with_compression(Compression::Gzip)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Transport::HttpProtobuf | Transport::HttpJson => SpanExporter::builder()
                .with_http()
                .with_protocol(self.http_protocol())
                .with_endpoint(format!("{}/v1/traces", server.http))
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        };
        exporter.expect("span exporter")
    }

    fn metric_exporter(self, server: &TestServer, temporality: Temporality) -> MetricExporter {
        let exporter = match self {
            Transport::Grpc => MetricExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc.clone())
                .with_temporality(temporality)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Transport::GrpcGzip => MetricExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc.clone())
                .with_compression(Compression::Gzip)
                .with_temporality(temporality)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Transport::HttpProtobuf | Transport::HttpJson => MetricExporter::builder()
                .with_http()
                .with_protocol(self.http_protocol())
                .with_endpoint(format!("{}/v1/metrics", server.http))
                .with_temporality(temporality)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        };
        exporter.expect("metric exporter")
    }

    fn log_exporter(self, server: &TestServer) -> LogExporter {
        let exporter = match self {
            Transport::Grpc => LogExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc.clone())
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Transport::GrpcGzip => LogExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc.clone())
                .with_compression(Compression::Gzip)
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
            Transport::HttpProtobuf | Transport::HttpJson => LogExporter::builder()
                .with_http()
                .with_protocol(self.http_protocol())
                .with_endpoint(format!("{}/v1/logs", server.http))
                .with_timeout(EXPORT_TIMEOUT)
                .build(),
        };
        exporter.expect("log exporter")
    }

    fn tracer_provider(self, server: &TestServer, resource: Resource) -> SdkTracerProvider {
        let exporter = self.span_exporter(server);
        let builder = SdkTracerProvider::builder().with_resource(resource);
        let builder = if self.is_grpc() {
            builder.with_batch_exporter(exporter)
        } else {
            use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
            builder
                .with_span_processor(BatchSpanProcessor::builder(exporter, runtime::Tokio).build())
        };
        builder.build()
    }

    fn meter_provider(
        self,
        server: &TestServer,
        resource: Resource,
        temporality: Temporality,
        view: impl Fn(&Instrument) -> Option<Stream> + Send + Sync + 'static,
    ) -> SdkMeterProvider {
        let exporter = self.metric_exporter(server, temporality);
        let builder = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_view(view);
        let builder = if self.is_grpc() {
            use opentelemetry_sdk::metrics::PeriodicReader;
            builder.with_reader(
                PeriodicReader::builder(exporter)
                    .with_interval(NEVER)
                    .build(),
            )
        } else {
            use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
            builder.with_reader(
                PeriodicReader::builder(exporter, runtime::Tokio)
                    .with_interval(NEVER)
                    .build(),
            )
        };
        builder.build()
    }

    fn logger_provider(self, server: &TestServer, resource: Resource) -> SdkLoggerProvider {
        let exporter = self.log_exporter(server);
        let builder = SdkLoggerProvider::builder().with_resource(resource);
        let builder = if self.is_grpc() {
            builder.with_batch_exporter(exporter)
        } else {
            use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
            builder.with_log_processor(BatchLogProcessor::builder(exporter, runtime::Tokio).build())
        };
        builder.build()
    }
}

/// Runs an SDK call that blocks on exports on a blocking thread (see the module docs).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

// ---------------------------------------------------------------------------------------------
// Traces.
// ---------------------------------------------------------------------------------------------

async fn traces_round_trip(transport: Transport) {
    let server = TestServer::start();
    let label = transport.label();
    let checkout_service = format!("checkout-{label}");
    let payment_service = format!("payment-{label}");
    const RESOURCE_SCHEMA: &str = "https://opentelemetry.io/schemas/1.26.0";
    const SCOPE_SCHEMA: &str = "https://opentelemetry.io/schemas/1.27.0";

    let checkout = transport.tracer_provider(
        &server,
        Resource::builder_empty()
            .with_service_name(checkout_service.clone())
            .with_schema_url(
                [
                    KeyValue::new("deployment.environment.name", "e2e"),
                    KeyValue::new("host.cpu.count", 2_i64),
                ],
                RESOURCE_SCHEMA,
            )
            .build(),
    );
    let payment = transport.tracer_provider(
        &server,
        Resource::builder_empty()
            .with_service_name(payment_service.clone())
            .with_attribute(KeyValue::new("service.version", "2.0.1"))
            .build(),
    );
    let checkout_tracer = checkout.tracer_with_scope(
        InstrumentationScope::builder("checkout.http")
            .with_version("1.4.2")
            .with_schema_url(SCOPE_SCHEMA)
            .with_attributes([KeyValue::new("library.flavor", "e2e")])
            .build(),
    );
    let payment_tracer = payment.tracer_with_scope(
        InstrumentationScope::builder("payment.grpc")
            .with_version("0.9.0")
            .build(),
    );

    let base = base_time();
    let at = |micros: u64| base + Duration::from_micros(micros);

    // An earlier request in another trace; the checkout span links to it.
    let mut warmup = checkout_tracer
        .span_builder("warmup")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(0))
        .start(&checkout_tracer);
    warmup.end_with_timestamp(at(5_000));
    let warmup_sc = warmup.span_context().clone();

    // Service "checkout": the server span of the request...
    let mut root = checkout_tracer
        .span_builder("POST /checkout")
        .with_kind(SpanKind::Server)
        .with_start_time(at(10_000))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.response.status_code", 502_i64),
            KeyValue::new("checkout.discount_ratio", 1.5_f64),
            KeyValue::new("checkout.tax_rate", 0.075_f64),
            KeyValue::new("checkout.express", true),
            KeyValue::new(
                "checkout.items",
                OtelValue::Array(Array::String(vec![
                    StringValue::from("sku-1"),
                    StringValue::from("sku-2"),
                ])),
            ),
            KeyValue::new(
                "checkout.quantities",
                OtelValue::Array(Array::I64(vec![1, 2, 3])),
            ),
            KeyValue::new(
                "checkout.prices",
                OtelValue::Array(Array::F64(vec![9.99, 20.0])),
            ),
            KeyValue::new(
                "checkout.gift_flags",
                OtelValue::Array(Array::Bool(vec![true, false])),
            ),
        ])
        .with_links(vec![Link::new(
            warmup_sc.clone(),
            vec![KeyValue::new("link.reason", "retry-of")],
            0,
        )])
        .start(&checkout_tracer);
    root.add_event_with_timestamp(
        "cart.loaded",
        at(11_000),
        vec![
            KeyValue::new("cart.size", 3_i64),
            KeyValue::new("cart.currency", "EUR"),
        ],
    );
    root.add_event_with_timestamp(
        "exception",
        at(95_000),
        vec![
            KeyValue::new("exception.type", "PaymentDeclined"),
            KeyValue::new("exception.escaped", false),
        ],
    );
    root.set_status(Status::error("payment declined"));
    let root_sc = root.span_context().clone();
    let root_cx = Context::new().with_span(root);

    // ...its outgoing call to the payment service...
    let client = checkout_tracer
        .span_builder("POST payment/pay")
        .with_kind(SpanKind::Client)
        .with_start_time(at(20_000))
        .with_attributes([
            KeyValue::new("server.address", "payment"),
            KeyValue::new("server.port", 8443_i64),
        ])
        .start_with_context(&checkout_tracer, &root_cx);
    let client_sc = client.span_context().clone();
    let client_cx = root_cx.with_span(client);

    // ...and a message it publishes.
    let mut producer = checkout_tracer
        .span_builder("orders publish")
        .with_kind(SpanKind::Producer)
        .with_start_time(at(85_000))
        .start_with_context(&checkout_tracer, &root_cx);
    producer.set_status(Status::Ok);
    producer.end_with_timestamp(at(86_500));
    let producer_sc = producer.span_context().clone();

    // The trace context crosses the process boundary as W3C headers (with a vendor tracestate).
    let propagator = TraceContextPropagator::new();
    let mut headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&client_cx, &mut headers);
    assert_eq!(
        headers["traceparent"],
        format!("00-{}-{}-01", root_sc.trace_id(), client_sc.span_id())
    );
    headers.insert("tracestate".into(), "lumen=e2e".into());
    let remote_cx = propagator.extract(&headers);

    // Service "payment": the server span (remote parent) and an internal child.
    let pay = payment_tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Server)
        .with_start_time(at(30_000))
        .with_attributes([KeyValue::new("payment.amount", 42.25_f64)])
        .start_with_context(&payment_tracer, &remote_cx);
    let pay_sc = pay.span_context().clone();
    let pay_cx = remote_cx.with_span(pay);
    let mut charge = payment_tracer
        .span_builder("charge card")
        .with_kind(SpanKind::Internal)
        .with_start_time(at(40_000))
        .start_with_context(&payment_tracer, &pay_cx);
    charge.add_event_with_timestamp("card.authorized", at(55_000), vec![]);
    charge.end_with_timestamp(at(60_000));
    let charge_sc = charge.span_context().clone();
    pay_cx.span().end_with_timestamp(at(70_000));
    client_cx.span().end_with_timestamp(at(80_000));
    root_cx.span().end_with_timestamp(at(100_000));

    let (checkout_flush, payment_flush) = {
        let (c, p) = (checkout.clone(), payment.clone());
        blocking(move || (c.force_flush(), p.force_flush())).await
    };
    checkout_flush.expect("checkout force_flush");
    payment_flush.expect("payment force_flush");

    let trace = root_sc.trace_id().to_string();
    assert_eq!(trace.len(), 32);
    let got = server
        .wait_for_count(
            &format!("SELECT count(*) FROM spans WHERE trace_id = '{trace}'"),
            5,
        )
        .await;
    assert_eq!(got, 5, "{label}: spans of trace {trace}");
    let warmup_trace = warmup_sc.trace_id().to_string();
    let got = server
        .wait_for_count(
            &format!("SELECT count(*) FROM spans WHERE trace_id = '{warmup_trace}'"),
            1,
        )
        .await;
    assert_eq!(got, 1, "{label}: the linked span");

    let checkout_resource = json!({
        "service.name": checkout_service,
        "deployment.environment.name": "e2e",
        "host.cpu.count": "2",
    });
    let payment_resource = json!({"service.name": payment_service, "service.version": "2.0.1"});

    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        let ctx = format!("{label}/{phase}");
        let rows = server
            .sql_rows(&format!(
                "SELECT * FROM spans WHERE trace_id = '{trace}' ORDER BY time"
            ))
            .await;
        let names: Vec<&str> = rows
            .iter()
            .map(|r| r["name"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            names,
            [
                "POST /checkout",
                "POST payment/pay",
                "POST /pay",
                "charge card",
                "orders publish"
            ],
            "{ctx}: spans ordered by time"
        );
        let span = |name: &str| {
            rows.iter()
                .find(|r| r["name"] == json!(name))
                .expect("span by name")
        };

        // Checkout: server span (root).
        let s = span("POST /checkout");
        let c = format!("{ctx}: POST /checkout");
        assert_span_basics(s, &c, &root_sc, None, "server", at(10_000), at(100_000));
        assert_eq!(
            s["flags"],
            json!(0x101),
            "{c}: sampled, parent is local (none)"
        );
        assert_eq!(s["service_name"], json!(checkout_service), "{c}");
        assert_eq!(s["resource_attributes"], checkout_resource, "{c}");
        assert_eq!(s["resource_schema_url"], json!(RESOURCE_SCHEMA), "{c}");
        assert_eq!(s["scope_name"], json!("checkout.http"), "{c}");
        assert_eq!(s["scope_version"], json!("1.4.2"), "{c}");
        assert_eq!(s["scope_schema_url"], json!(SCOPE_SCHEMA), "{c}");
        assert_eq!(
            s["scope_attributes"],
            json!({"library.flavor": "e2e"}),
            "{c}"
        );
        assert_eq!(s["status_code"], json!("error"), "{c}");
        assert_eq!(s["status_message"], json!("payment declined"), "{c}");
        assert_eq!(
            s["attributes"],
            json!({
                "http.request.method": "POST",
                "http.response.status_code": "502",
                "checkout.discount_ratio": "1.5",
                "checkout.tax_rate": "0.075",
                "checkout.express": "true",
                "checkout.items": r#"["sku-1","sku-2"]"#,
                "checkout.quantities": "[1,2,3]",
                "checkout.prices": "[9.99,20.0]",
                "checkout.gift_flags": "[true,false]",
            }),
            "{c}"
        );
        assert_eq!(s["dropped_attributes_count"], json!(0), "{c}");
        let events = s["events"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}: events is a list: {}", s["events"]));
        assert_eq!(events.len(), 2, "{c}: {events:?}");
        assert_event(
            &events[0],
            &c,
            "cart.loaded",
            at(11_000),
            json!({"cart.size": "3", "cart.currency": "EUR"}),
        );
        assert_event(
            &events[1],
            &c,
            "exception",
            at(95_000),
            json!({"exception.type": "PaymentDeclined", "exception.escaped": "false"}),
        );
        assert_eq!(s["dropped_events_count"], json!(0), "{c}");
        let links = s["links"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}: links is a list: {}", s["links"]));
        assert_eq!(links.len(), 1, "{c}: {links:?}");
        assert_eq!(links[0]["trace_id"], json!(warmup_trace), "{c}: link");
        assert_eq!(
            links[0]["span_id"],
            json!(warmup_sc.span_id().to_string()),
            "{c}: link"
        );
        assert_eq!(
            links[0]["attributes"],
            json!({"link.reason": "retry-of"}),
            "{c}: link"
        );
        assert_eq!(
            links[0]["flags"],
            json!(0x101),
            "{c}: link to a local, sampled span"
        );
        assert_eq!(links[0]["dropped_attributes_count"], json!(0), "{c}: link");
        assert_eq!(s["dropped_links_count"], json!(0), "{c}");

        // Checkout: client span.
        let s = span("POST payment/pay");
        let c = format!("{ctx}: POST payment/pay");
        assert_span_basics(
            s,
            &c,
            &client_sc,
            Some(&root_sc),
            "client",
            at(20_000),
            at(80_000),
        );
        assert_eq!(s["flags"], json!(0x101), "{c}");
        assert_eq!(s["service_name"], json!(checkout_service), "{c}");
        assert_eq!(s["resource_attributes"], checkout_resource, "{c}");
        assert_eq!(s["scope_name"], json!("checkout.http"), "{c}");
        assert_eq!(s["scope_version"], json!("1.4.2"), "{c}");
        assert_eq!(
            s["attributes"],
            json!({"server.address": "payment", "server.port": "8443"}),
            "{c}"
        );
        assert_eq!(s["status_code"], json!("unset"), "{c}");
        assert_eq!(s["status_message"], Value::Null, "{c}");
        assert_eq!(s["events"], json!([]), "{c}");
        assert_eq!(s["links"], json!([]), "{c}");

        // Checkout: producer span, status ok.
        let s = span("orders publish");
        let c = format!("{ctx}: orders publish");
        assert_span_basics(
            s,
            &c,
            &producer_sc,
            Some(&root_sc),
            "producer",
            at(85_000),
            at(86_500),
        );
        assert_eq!(s["service_name"], json!(checkout_service), "{c}");
        assert_eq!(s["status_code"], json!("ok"), "{c}");
        assert_eq!(s["status_message"], Value::Null, "{c}");
        assert_eq!(s["attributes"], json!({}), "{c}");

        // Payment: server span whose parent came over the wire.
        let s = span("POST /pay");
        let c = format!("{ctx}: POST /pay");
        assert_span_basics(
            s,
            &c,
            &pay_sc,
            Some(&client_sc),
            "server",
            at(30_000),
            at(70_000),
        );
        assert_eq!(s["flags"], json!(0x301), "{c}: sampled, parent is remote");
        assert_eq!(s["trace_state"], json!("lumen=e2e"), "{c}");
        assert_eq!(s["service_name"], json!(payment_service), "{c}");
        assert_eq!(s["resource_attributes"], payment_resource, "{c}");
        assert_eq!(s["scope_name"], json!("payment.grpc"), "{c}");
        assert_eq!(s["scope_version"], json!("0.9.0"), "{c}");
        assert_eq!(s["scope_attributes"], json!({}), "{c}");
        assert_eq!(s["attributes"], json!({"payment.amount": "42.25"}), "{c}");
        assert_eq!(s["status_code"], json!("unset"), "{c}");

        // Payment: internal child.
        let s = span("charge card");
        let c = format!("{ctx}: charge card");
        assert_span_basics(
            s,
            &c,
            &charge_sc,
            Some(&pay_sc),
            "internal",
            at(40_000),
            at(60_000),
        );
        assert_eq!(s["flags"], json!(0x101), "{c}");
        assert_eq!(
            s["trace_state"],
            json!("lumen=e2e"),
            "{c}: inherited from the parent"
        );
        assert_eq!(s["service_name"], json!(payment_service), "{c}");
        let events = s["events"]
            .as_array()
            .unwrap_or_else(|| panic!("{c}: events is a list: {}", s["events"]));
        assert_eq!(events.len(), 1, "{c}: {events:?}");
        assert_event(&events[0], &c, "card.authorized", at(55_000), json!({}));

        // The span the checkout span links to, in its own trace.
        let linked = server
            .sql_rows(&format!(
                "SELECT * FROM spans WHERE trace_id = '{warmup_trace}'"
            ))
            .await;
        assert_eq!(linked.len(), 1, "{ctx}");
        assert_span_basics(
            &linked[0],
            &format!("{ctx}: warmup"),
            &warmup_sc,
            None,
            "internal",
            at(0),
            at(5_000),
        );

        // SQL over the same data: map access, the parent/child relation across services, services.
        let v = server
            .sql(&format!(
                "SELECT name FROM spans WHERE trace_id = '{trace}' AND attributes['http.response.status_code'] = '502'"
            ))
            .await;
        assert_eq!(v["rows"], json!([["POST /checkout"]]), "{ctx}");
        let v = server
            .sql(&format!(
                "SELECT p.name, p.service_name, c.name, c.service_name FROM spans c JOIN spans p \
                 ON c.parent_span_id = p.span_id AND c.trace_id = p.trace_id \
                 WHERE c.trace_id = '{trace}' AND c.service_name <> p.service_name"
            ))
            .await;
        assert_eq!(
            v["rows"],
            json!([[
                "POST payment/pay",
                checkout_service,
                "POST /pay",
                payment_service
            ]]),
            "{ctx}"
        );
        let v = server
            .sql(&format!(
                "SELECT service_name, count(*) AS n FROM spans WHERE trace_id = '{trace}' GROUP BY service_name ORDER BY service_name"
            ))
            .await;
        assert_eq!(
            v["rows"],
            json!([[checkout_service, 3], [payment_service, 2]]),
            "{ctx}"
        );
        let v = server
            .sql(&format!(
                "SELECT span_id FROM spans WHERE trace_id = '{trace}' AND parent_span_id IS NULL"
            ))
            .await;
        assert_eq!(
            v["rows"],
            json!([[root_sc.span_id().to_string()]]),
            "{ctx}: the only root"
        );
    }

    let results = blocking(move || (checkout.shutdown(), payment.shutdown())).await;
    results.0.expect("checkout shutdown");
    results.1.expect("payment shutdown");
}

/// Ids, parent, kind, name-independent times of one span row.
fn assert_span_basics(
    s: &Row,
    c: &str,
    sc: &SpanContext,
    parent: Option<&SpanContext>,
    kind: &str,
    start: SystemTime,
    end: SystemTime,
) {
    assert_eq!(
        s["trace_id"],
        json!(sc.trace_id().to_string()),
        "{c}: trace_id"
    );
    assert_eq!(
        s["span_id"],
        json!(sc.span_id().to_string()),
        "{c}: span_id"
    );
    let parent = parent.map_or(Value::Null, |p| json!(p.span_id().to_string()));
    assert_eq!(s["parent_span_id"], parent, "{c}: parent_span_id");
    assert_eq!(s["kind"], json!(kind), "{c}: kind");
    assert_eq!(s["time"], json!(rfc3339(start)), "{c}: start time");
    assert_eq!(s["end_time"], json!(rfc3339(end)), "{c}: end time");
    let duration = end
        .duration_since(start)
        .expect("end after start")
        .as_nanos() as i64;
    assert_eq!(s["duration_ns"], json!(duration), "{c}: duration_ns");
}

fn assert_event(event: &Value, c: &str, name: &str, time: SystemTime, attributes: Value) {
    assert_eq!(event["name"], json!(name), "{c}: event {event}");
    assert_eq!(
        event["time"],
        json!(rfc3339(time)),
        "{c}: event {name} time"
    );
    assert_eq!(
        event["attributes"], attributes,
        "{c}: event {name} attributes"
    );
    assert_eq!(
        event["dropped_attributes_count"],
        json!(0),
        "{c}: event {name}"
    );
}

// ---------------------------------------------------------------------------------------------
// Metrics.
// ---------------------------------------------------------------------------------------------

async fn metrics_round_trip(transport: Transport, temporality: Temporality) {
    let server = TestServer::start();
    let label = transport.label();
    let delta = temporality == Temporality::Delta;
    let service = format!("inventory-{label}");
    let resource = Resource::builder_empty()
        .with_service_name(service.clone())
        .with_attribute(KeyValue::new("cloud.region", "eu-west-1"))
        .build();
    // `payload.size` is aggregated as a base-2 exponential histogram; scale at most 0 keeps the
    // expected buckets easy to work out: bucket i holds (2^i, 2^(i+1)].
    let view = |i: &Instrument| {
        (i.name() == "payload.size").then(|| {
            Stream::builder()
                .with_aggregation(Aggregation::Base2ExponentialHistogram {
                    max_size: 160,
                    max_scale: 0,
                    record_min_max: true,
                })
                .build()
                .expect("exponential histogram stream")
        })
    };
    let provider = transport.meter_provider(&server, resource, temporality, view);
    let meter = provider.meter_with_scope(
        InstrumentationScope::builder("inventory.metrics")
            .with_version("3.1.0")
            .build(),
    );
    let attrs = [
        KeyValue::new("warehouse", "ams-1"),
        KeyValue::new("shard", 3_i64),
    ];

    let orders = meter
        .u64_counter("orders.placed")
        .with_description("Orders placed")
        .with_unit("{order}")
        .build();
    let revenue = meter
        .f64_counter("orders.revenue")
        .with_description("Revenue")
        .with_unit("EUR")
        .build();
    let queue = meter
        .i64_up_down_counter("queue.depth")
        .with_description("Jobs waiting")
        .with_unit("{job}")
        .build();
    let temperature = meter
        .f64_gauge("cpu.temperature")
        .with_description("CPU temperature")
        .with_unit("Cel")
        .build();
    let _threads = meter
        .i64_observable_gauge("worker.threads")
        .with_description("Worker threads")
        .with_unit("{thread}")
        .with_callback(|observer| observer.observe(12, &[KeyValue::new("pool", "io")]))
        .build();
    let latency = meter
        .f64_histogram("request.latency")
        .with_description("Request latency")
        .with_unit("ms")
        .with_boundaries(vec![1.0, 5.0, 10.0])
        .build();
    let sizes = meter
        .f64_histogram("payload.size")
        .with_description("Payload size")
        .with_unit("By")
        .build();

    // First collection.
    orders.add(5, &attrs);
    orders.add(2, &attrs);
    revenue.add(12.5, &attrs);
    revenue.add(0.25, &attrs);
    queue.add(10, &attrs);
    queue.add(-4, &attrs);
    temperature.record(71.5, &attrs);
    temperature.record(68.25, &attrs);
    for v in [0.5, 3.0, 4.0, 7.0, 12.0] {
        latency.record(v, &attrs);
    }
    for v in [0.0, 1.5, 3.0, 3.0, 6.0] {
        sizes.record(v, &attrs);
    }
    let p = provider.clone();
    blocking(move || p.force_flush())
        .await
        .expect("first force_flush");
    let got = server
        .wait_for_count("SELECT count(*) FROM metrics", 7)
        .await;
    assert_eq!(
        got, 7,
        "{label}: one point per instrument after the first collection"
    );

    // Second collection: only the counter and the explicit histogram see new measurements.
    orders.add(3, &attrs);
    latency.record(2.0, &attrs);
    let p = provider.clone();
    blocking(move || p.shutdown())
        .await
        .expect("shutdown (final collection)");
    // Cumulative: all seven series again. Delta: the counter, histogram and observable gauge (its
    // callback observes on every collection) plus the up-down counter, which stays cumulative.
    let total = if delta { 11 } else { 14 };
    let got = server
        .wait_for_count("SELECT count(*) FROM metrics", total)
        .await;
    assert_eq!(got, total, "{label}: points after both collections");

    let sum_temporality = if delta {
        json!("delta")
    } else {
        json!("cumulative")
    };
    let point_attrs = json!({"warehouse": "ams-1", "shard": "3"});

    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        let ctx = format!("{label}/{phase}");
        let all = server
            .sql_rows("SELECT * FROM metrics ORDER BY metric_name, time")
            .await;
        assert_eq!(all.len() as i64, total, "{ctx}");
        for m in &all {
            let c = format!("{ctx}: {}", m["metric_name"]);
            assert_eq!(m["service_name"], json!(service), "{c}");
            assert_eq!(
                m["resource_attributes"],
                json!({"service.name": service, "cloud.region": "eu-west-1"}),
                "{c}"
            );
            assert_eq!(m["scope_name"], json!("inventory.metrics"), "{c}");
            assert_eq!(m["scope_version"], json!("3.1.0"), "{c}");
            assert!(is_rfc3339_nanos(&m["time"]), "{c}: time {}", m["time"]);
        }
        let points = |name: &str| -> Vec<&Row> {
            all.iter()
                .filter(|m| m["metric_name"] == json!(name))
                .collect()
        };
        let per_series = |name: &str, want: usize| -> Vec<&Row> {
            let p = points(name);
            assert_eq!(p.len(), want, "{ctx}: points of {name}");
            let ids: Vec<&Value> = p.iter().map(|r| &r["series_id"]).collect();
            assert!(
                ids.iter().all(|id| id.is_u64() && *id == ids[0]),
                "{ctx}: {name}: one series: {ids:?}"
            );
            p
        };

        // Monotonic integer counter: `value_int` exact, `value` the same number.
        let c = format!("{ctx}: orders.placed");
        let p = per_series("orders.placed", 2);
        for m in &p {
            assert_eq!(m["metric_type"], json!("sum"), "{c}");
            assert_eq!(m["temporality"], sum_temporality, "{c}");
            assert_eq!(m["is_monotonic"], json!(true), "{c}");
            assert_eq!(m["description"], json!("Orders placed"), "{c}");
            assert_eq!(m["unit"], json!("{order}"), "{c}");
            assert_eq!(m["attributes"], point_attrs, "{c}");
            assert!(
                is_rfc3339_nanos(&m["start_time"]),
                "{c}: start_time {}",
                m["start_time"]
            );
            assert!(
                m["start_time"].as_str() <= m["time"].as_str(),
                "{c}: start_time after time: {m:?}"
            );
        }
        assert_eq!(p[0]["value_int"], json!(7), "{c}: first");
        assert_eq!(num(&p[0]["value"]), Some(7.0), "{c}: first");
        let second = if delta { 3 } else { 10 };
        assert_eq!(p[1]["value_int"], json!(second), "{c}: second");
        assert_eq!(num(&p[1]["value"]), Some(second as f64), "{c}: second");
        if delta {
            assert_eq!(
                p[1]["start_time"], p[0]["time"],
                "{c}: a delta point starts where the previous one ended"
            );
        } else {
            assert_eq!(
                p[1]["start_time"], p[0]["start_time"],
                "{c}: cumulative points share their start"
            );
        }

        // Monotonic double counter: `value` only.
        let c = format!("{ctx}: orders.revenue");
        let p = per_series("orders.revenue", if delta { 1 } else { 2 });
        for m in &p {
            assert_eq!(m["metric_type"], json!("sum"), "{c}");
            assert_eq!(m["temporality"], sum_temporality, "{c}");
            assert_eq!(m["is_monotonic"], json!(true), "{c}");
            assert_eq!(m["unit"], json!("EUR"), "{c}");
            assert_eq!(num(&m["value"]), Some(12.75), "{c}");
            assert_eq!(m["value_int"], Value::Null, "{c}");
            assert_eq!(m["attributes"], point_attrs, "{c}");
        }

        // Up-down counter: non-monotonic, and cumulative even when the exporter prefers delta.
        let c = format!("{ctx}: queue.depth");
        let p = per_series("queue.depth", 2);
        for m in &p {
            assert_eq!(m["metric_type"], json!("sum"), "{c}");
            assert_eq!(m["temporality"], json!("cumulative"), "{c}");
            assert_eq!(m["is_monotonic"], json!(false), "{c}");
            assert_eq!(m["description"], json!("Jobs waiting"), "{c}");
            assert_eq!(m["value_int"], json!(6), "{c}");
            assert_eq!(num(&m["value"]), Some(6.0), "{c}");
        }

        // Synchronous gauge: the last value; no temporality, no monotonicity.
        let c = format!("{ctx}: cpu.temperature");
        let p = per_series("cpu.temperature", if delta { 1 } else { 2 });
        for m in &p {
            assert_eq!(m["metric_type"], json!("gauge"), "{c}");
            assert_eq!(m["temporality"], Value::Null, "{c}");
            assert_eq!(m["is_monotonic"], Value::Null, "{c}");
            assert_eq!(m["unit"], json!("Cel"), "{c}");
            assert_eq!(num(&m["value"]), Some(68.25), "{c}");
            assert_eq!(m["value_int"], Value::Null, "{c}");
            assert_eq!(m["attributes"], point_attrs, "{c}");
        }

        // Observable integer gauge.
        let c = format!("{ctx}: worker.threads");
        let p = per_series("worker.threads", 2);
        for m in &p {
            assert_eq!(m["metric_type"], json!("gauge"), "{c}");
            assert_eq!(m["temporality"], Value::Null, "{c}");
            assert_eq!(m["value_int"], json!(12), "{c}");
            assert_eq!(num(&m["value"]), Some(12.0), "{c}");
            assert_eq!(m["attributes"], json!({"pool": "io"}), "{c}");
        }

        // Explicit-bucket histogram: bounds 1, 5, 10.
        let c = format!("{ctx}: request.latency");
        let p = per_series("request.latency", 2);
        for m in &p {
            assert_eq!(m["metric_type"], json!("histogram"), "{c}");
            assert_eq!(m["temporality"], sum_temporality, "{c}");
            assert_eq!(m["unit"], json!("ms"), "{c}");
            assert_eq!(m["description"], json!("Request latency"), "{c}");
            assert_eq!(
                nums(&m["explicit_bounds"]),
                Some(vec![1.0, 5.0, 10.0]),
                "{c}"
            );
            assert_eq!(m["value"], Value::Null, "{c}");
            assert_eq!(m["attributes"], point_attrs, "{c}");
        }
        // 0.5 | 3, 4 | 7 | 12
        assert_eq!(p[0]["count"], json!(5), "{c}: first");
        assert_eq!(num(&p[0]["sum"]), Some(26.5), "{c}: first");
        assert_eq!(num(&p[0]["min"]), Some(0.5), "{c}: first");
        assert_eq!(num(&p[0]["max"]), Some(12.0), "{c}: first");
        assert_eq!(p[0]["bucket_counts"], json!([1, 2, 1, 1]), "{c}: first");
        if delta {
            // Only the 2.0 recorded since the first collection.
            assert_eq!(p[1]["count"], json!(1), "{c}: second");
            assert_eq!(num(&p[1]["sum"]), Some(2.0), "{c}: second");
            assert_eq!(num(&p[1]["min"]), Some(2.0), "{c}: second");
            assert_eq!(num(&p[1]["max"]), Some(2.0), "{c}: second");
            assert_eq!(p[1]["bucket_counts"], json!([0, 1, 0, 0]), "{c}: second");
        } else {
            assert_eq!(p[1]["count"], json!(6), "{c}: second");
            assert_eq!(num(&p[1]["sum"]), Some(28.5), "{c}: second");
            assert_eq!(num(&p[1]["min"]), Some(0.5), "{c}: second");
            assert_eq!(num(&p[1]["max"]), Some(12.0), "{c}: second");
            assert_eq!(p[1]["bucket_counts"], json!([1, 3, 1, 1]), "{c}: second");
        }

        // Exponential histogram at scale 0: 0 → zero bucket; 1.5 → (1,2] index 0; 3, 3 → (2,4]
        // index 1; 6 → (4,8] index 2.
        let c = format!("{ctx}: payload.size");
        let p = per_series("payload.size", if delta { 1 } else { 2 });
        for m in &p {
            assert_eq!(m["metric_type"], json!("exponential_histogram"), "{c}");
            assert_eq!(m["temporality"], sum_temporality, "{c}");
            assert_eq!(m["unit"], json!("By"), "{c}");
            assert_eq!(m["count"], json!(5), "{c}");
            assert_eq!(num(&m["sum"]), Some(13.5), "{c}");
            assert_eq!(num(&m["min"]), Some(0.0), "{c}");
            assert_eq!(num(&m["max"]), Some(6.0), "{c}");
            assert_eq!(m["scale"], json!(0), "{c}");
            assert_eq!(m["zero_count"], json!(1), "{c}");
            assert_eq!(m["positive_offset"], json!(0), "{c}");
            assert_eq!(m["positive_bucket_counts"], json!([1, 2, 1]), "{c}");
            assert_eq!(m["bucket_counts"], Value::Null, "{c}");
            assert_eq!(m["attributes"], point_attrs, "{c}");
        }

        // The same data through SQL aggregation and map access.
        let v = server
            .sql(
                "SELECT metric_type, count(*) FROM metrics WHERE attributes['warehouse'] = 'ams-1' \
                 GROUP BY metric_type ORDER BY metric_type",
            )
            .await;
        let expected = if delta {
            json!([
                ["exponential_histogram", 1],
                ["gauge", 1],
                ["histogram", 2],
                ["sum", 5]
            ])
        } else {
            json!([
                ["exponential_histogram", 2],
                ["gauge", 2],
                ["histogram", 2],
                ["sum", 6]
            ])
        };
        assert_eq!(v["rows"], expected, "{ctx}");
    }
}

// ---------------------------------------------------------------------------------------------
// Logs.
// ---------------------------------------------------------------------------------------------

async fn logs_round_trip(transport: Transport) {
    let server = TestServer::start();
    let label = transport.label();
    let service = format!("orders-{label}");
    let resource = Resource::builder_empty()
        .with_service_name(service.clone())
        .with_attribute(KeyValue::new("service.namespace", "shop"))
        .build();
    let tracer_provider = transport.tracer_provider(&server, resource.clone());
    let logger_provider = transport.logger_provider(&server, resource);
    let tracer = tracer_provider.tracer("orders.worker");
    let logger = logger_provider.logger_with_scope(
        InstrumentationScope::builder("orders.logging")
            .with_version("2.2.0")
            .build(),
    );

    let base = base_time();
    let at = |micros: u64| base + Duration::from_micros(micros);

    let span = tracer
        .span_builder("process order")
        .with_kind(SpanKind::Consumer)
        .with_start_time(at(0))
        .start(&tracer);
    let sc = span.span_context().clone();

    // 1. Trace context set explicitly on the record.
    let mut record = logger.create_log_record();
    record.set_timestamp(at(1_000));
    record.set_observed_timestamp(at(1_500));
    record.set_severity_number(Severity::Error);
    record.set_severity_text("ERROR");
    record.set_event_name("order.payment_declined");
    record.set_body(AnyValue::from("payment declined for order 1234"));
    record.add_attribute("order.id", 1234_i64);
    record.add_attribute("order.retryable", false);
    record.add_attribute("order.total", 99.95_f64);
    record.add_attribute(
        "order.tags",
        AnyValue::ListAny(Box::new(vec![
            AnyValue::from("gift"),
            AnyValue::from("express"),
        ])),
    );
    record.add_attribute(
        "order.signature",
        AnyValue::Bytes(Box::new(vec![0x01, 0x02, 0xff])),
    );
    record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
    logger.emit(record);

    // 2. Emitted while the span is the active one: the SDK fills in the trace context.
    let cx = Context::new().with_span(span);
    {
        let _active = cx.clone().attach();
        let mut record = logger.create_log_record();
        record.set_timestamp(at(2_000));
        record.set_observed_timestamp(at(2_000));
        record.set_severity_number(Severity::Warn);
        record.set_severity_text("WARN");
        record.set_body(AnyValue::Map(Box::new(HashMap::from([(
            "order.id".into(),
            AnyValue::Int(1234),
        )]))));
        record.add_attribute("attempt", 2_i64);
        logger.emit(record);
    }

    // 3. Outside any span, without a timestamp (stored at its observed time), an int body.
    let mut record = logger.create_log_record();
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_body(AnyValue::Int(7));
    logger.emit(record);

    cx.span().end_with_timestamp(at(3_000));

    let (lp, tp) = (logger_provider.clone(), tracer_provider.clone());
    let (logs_flush, spans_flush) = blocking(move || (lp.force_flush(), tp.force_flush())).await;
    logs_flush.expect("logs force_flush");
    spans_flush.expect("spans force_flush");

    let got = server.wait_for_count("SELECT count(*) FROM logs", 3).await;
    assert_eq!(got, 3, "{label}: log records");
    let got = server.wait_for_count("SELECT count(*) FROM spans", 1).await;
    assert_eq!(got, 1, "{label}: the span");

    let trace = sc.trace_id().to_string();
    let span_id = sc.span_id().to_string();
    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        let ctx = format!("{label}/{phase}");
        let rows = server
            .sql_rows("SELECT * FROM logs ORDER BY severity_number DESC")
            .await;
        assert_eq!(rows.len(), 3, "{ctx}");
        for l in &rows {
            let c = format!("{ctx}: {}", l["severity_text"]);
            assert_eq!(l["service_name"], json!(service), "{c}");
            assert_eq!(
                l["resource_attributes"],
                json!({"service.name": service, "service.namespace": "shop"}),
                "{c}"
            );
            assert_eq!(l["scope_name"], json!("orders.logging"), "{c}");
            assert_eq!(l["scope_version"], json!("2.2.0"), "{c}");
            assert_eq!(l["dropped_attributes_count"], json!(0), "{c}");
        }

        let l = &rows[0];
        let c = format!("{ctx}: explicit trace context");
        assert_eq!(l["severity_number"], json!(17), "{c}");
        assert_eq!(l["severity_text"], json!("ERROR"), "{c}");
        assert_eq!(l["time"], json!(rfc3339(at(1_000))), "{c}");
        assert_eq!(l["observed_time"], json!(rfc3339(at(1_500))), "{c}");
        assert_eq!(l["event_name"], json!("order.payment_declined"), "{c}");
        assert_eq!(l["body"], json!("payment declined for order 1234"), "{c}");
        assert_eq!(l["body_type"], json!("string"), "{c}");
        assert_eq!(l["trace_id"], json!(trace), "{c}");
        assert_eq!(l["span_id"], json!(span_id), "{c}");
        assert_eq!(l["flags"], json!(1), "{c}: sampled");
        assert_eq!(
            l["attributes"],
            json!({
                "order.id": "1234",
                "order.retryable": "false",
                "order.total": "99.95",
                "order.tags": r#"["gift","express"]"#,
                "order.signature": "AQL/",
            }),
            "{c}"
        );

        let l = &rows[1];
        let c = format!("{ctx}: active span");
        assert_eq!(l["severity_number"], json!(13), "{c}");
        assert_eq!(l["severity_text"], json!("WARN"), "{c}");
        assert_eq!(l["time"], json!(rfc3339(at(2_000))), "{c}");
        assert_eq!(l["event_name"], Value::Null, "{c}");
        assert_eq!(l["body"], json!(r#"{"order.id":1234}"#), "{c}");
        assert_eq!(l["body_type"], json!("kvlist"), "{c}");
        assert_eq!(l["trace_id"], json!(trace), "{c}");
        assert_eq!(l["span_id"], json!(span_id), "{c}");
        assert_eq!(l["flags"], json!(1), "{c}: sampled");
        assert_eq!(l["attributes"], json!({"attempt": "2"}), "{c}");

        let l = &rows[2];
        let c = format!("{ctx}: no span, no timestamp");
        assert_eq!(l["severity_number"], json!(9), "{c}");
        assert_eq!(l["severity_text"], json!("INFO"), "{c}");
        assert_eq!(l["body"], json!("7"), "{c}");
        assert_eq!(l["body_type"], json!("int"), "{c}");
        assert_eq!(l["trace_id"], Value::Null, "{c}");
        assert_eq!(l["span_id"], Value::Null, "{c}");
        assert_eq!(l["flags"], json!(0), "{c}");
        assert_eq!(l["attributes"], json!({}), "{c}");
        assert!(
            is_rfc3339_nanos(&l["observed_time"]),
            "{c}: observed_time set by the SDK: {}",
            l["observed_time"]
        );
        assert_eq!(
            l["time"], l["observed_time"],
            "{c}: time falls back to the observed time"
        );

        // Logs join their span through the hex ids.
        let v = server
            .sql(
                "SELECT l.severity_text, s.name, s.kind FROM logs l JOIN spans s \
                 ON l.trace_id = s.trace_id AND l.span_id = s.span_id ORDER BY l.time",
            )
            .await;
        assert_eq!(
            v["rows"],
            json!([
                ["ERROR", "process order", "consumer"],
                ["WARN", "process order", "consumer"]
            ]),
            "{ctx}"
        );
        let v = server
            .sql(&format!(
                "SELECT count(*) FROM logs WHERE trace_id = '{trace}' AND span_id = '{span_id}'"
            ))
            .await;
        assert_eq!(v["rows"], json!([[2]]), "{ctx}");
    }

    let results = blocking(move || (logger_provider.shutdown(), tracer_provider.shutdown())).await;
    results.0.expect("logger provider shutdown");
    results.1.expect("tracer provider shutdown");
}

// ---------------------------------------------------------------------------------------------
// Values.
// ---------------------------------------------------------------------------------------------

/// Two minutes ago, at a whole second plus 123456789 ns, so all nine fractional digits matter.
fn base_time() -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    UNIX_EPOCH + Duration::new(now.as_secs() - 120, 123_456_789)
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, the form Lumen's SQL output uses.
fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).expect("after 1970");
    let secs = d.as_secs() as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3_600,
        sod % 3_600 / 60,
        sod % 60,
        d.subsec_nanos()
    )
}

fn is_rfc3339_nanos(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let b = s.as_bytes();
        b.len() == 30 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[29] == b'Z'
    })
}

/// A JSON number as f64 (so `7` and `7.0` compare equal).
fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn nums(v: &Value) -> Option<Vec<f64>> {
    v.as_array()?.iter().map(Value::as_f64).collect()
}
