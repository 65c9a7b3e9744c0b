//! Every official OTLP/JSON example body, posted over HTTP and read back field by field.

use serde_json::{Value, json};

use crate::server::TestServer;

pub(crate) const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/otlp-examples");

/// Posts the official example `file` to `path` and checks it is fully accepted.
pub(crate) async fn post_example(server: &TestServer, file: &str, path: &str) {
    let body = std::fs::read(format!("{EXAMPLES}/{file}"))
        .expect("example file (../shared/otlp-examples)");
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", server.http))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{file}: {text}");
    let response: Value = serde_json::from_str(&text).expect("JSON response");
    assert!(
        response
            .get("partialSuccess")
            .is_none_or(|p| p.get("rejectedSpans").is_none()),
        "{text}"
    );
}

fn scope_and_resource(row: &serde_json::Map<String, Value>) {
    assert_eq!(row["service_name"], json!("my.service"));
    assert_eq!(
        row["resource_attributes"],
        json!({"service.name": "my.service"})
    );
    assert_eq!(row["scope_name"], json!("my.library"));
    assert_eq!(row["scope_version"], json!("1.0.0"));
    assert_eq!(
        row["scope_attributes"],
        json!({"my.scope.attribute": "some scope attribute"})
    );
    assert_eq!(row["resource_dropped_attributes_count"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_examples_round_trip_through_sql() {
    // What the examples themselves store; the metrics derived from their spans are
    // spanmetrics.rs's to check.
    let server = TestServer::start_with(&["--span-metrics", "false"]);
    post_example(&server, "trace.json", "/v1/traces").await;
    post_example(&server, "logs.json", "/v1/logs").await;
    post_example(&server, "events.json", "/v1/logs").await;
    post_example(&server, "metrics.json", "/v1/metrics").await;

    // Read back once from the head, then again from Parquet segments after a flush.
    for phase in ["head", "segments"] {
        if phase == "segments" {
            server.flush().await;
        }
        let spans = server
            .sql_rows("SELECT * FROM spans WHERE trace_id = '5b8efff798038103d269b633813fc60c'")
            .await;
        assert_eq!(spans.len(), 1, "{phase}");
        let s = &spans[0];
        scope_and_resource(s);
        assert_eq!(s["trace_id"], json!("5b8efff798038103d269b633813fc60c"));
        assert_eq!(s["span_id"], json!("eee19b7ec3c1b174"));
        assert_eq!(s["parent_span_id"], json!("eee19b7ec3c1b173"));
        assert_eq!(s["name"], json!("I'm a server span"));
        assert_eq!(s["kind"], json!("server"));
        assert_eq!(s["time"], json!("2018-12-13T14:51:00.000000000Z"));
        assert_eq!(s["end_time"], json!("2018-12-13T14:51:01.000000000Z"));
        assert_eq!(s["duration_ns"], json!(1_000_000_000));
        assert_eq!(s["attributes"], json!({"my.span.attr": "some value"}));
        assert_eq!(s["status_code"], json!("unset"));
        assert_eq!(s["events"], json!([]));
        assert_eq!(s["links"], json!([]));

        let logs = server
            .sql_rows("SELECT * FROM logs WHERE event_name IS NULL")
            .await;
        assert_eq!(logs.len(), 1, "{phase}");
        let l = &logs[0];
        scope_and_resource(l);
        assert_eq!(l["time"], json!("2018-12-13T14:51:00.300000000Z"));
        assert_eq!(l["observed_time"], json!("2018-12-13T14:51:00.300000000Z"));
        assert_eq!(l["severity_number"], json!(10));
        assert_eq!(l["severity_text"], json!("Information"));
        assert_eq!(l["trace_id"], json!("5b8efff798038103d269b633813fc60c"));
        assert_eq!(l["span_id"], json!("eee19b7ec3c1b174"));
        assert_eq!(l["body"], json!("Example log record"));
        assert_eq!(l["body_type"], json!("string"));
        assert_eq!(
            l["attributes"],
            json!({
                "string.attribute": "some string",
                "boolean.attribute": "true",
                "int.attribute": "10",
                "double.attribute": "637.704",
                "array.attribute": "[\"many\",\"values\"]",
                "map.attribute": "{\"some.map.key\":\"some value\"}",
            })
        );

        let events = server
            .sql_rows("SELECT * FROM logs WHERE event_name = 'browser.page_view'")
            .await;
        assert_eq!(events.len(), 1, "{phase}");
        let e = &events[0];
        scope_and_resource(e);
        assert_eq!(e["severity_number"], json!(9));
        assert_eq!(e["severity_text"], json!("test severity text"));
        assert_eq!(e["trace_id"], Value::Null);
        assert_eq!(e["body_type"], json!("kvlist"));
        let body: Value = serde_json::from_str(e["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"type": 0, "url": "https://www.guidgenerator.com/online-guid-generator.aspx",
                   "referrer": "https://wwww.google.com", "title": "Free Online GUID Generator"})
        );
        assert_eq!(
            e["attributes"],
            json!({"event.attribute": "some event attribute"})
        );

        let metrics = server
            .sql_rows("SELECT * FROM metrics ORDER BY metric_name")
            .await;
        assert_eq!(metrics.len(), 4, "{phase}");
        for m in &metrics {
            scope_and_resource(m);
            assert_eq!(m["time"], json!("2018-12-13T14:51:00.300000000Z"));
            assert_eq!(m["unit"], json!("1"));
        }
        let by_name = |name: &str| {
            metrics
                .iter()
                .find(|m| m["metric_name"] == json!(name))
                .unwrap()
        };
        let counter = by_name("my.counter");
        assert_eq!(counter["metric_type"], json!("sum"));
        assert_eq!(counter["description"], json!("I am a Counter"));
        assert_eq!(counter["temporality"], json!("delta"));
        assert_eq!(counter["is_monotonic"], json!(true));
        assert_eq!(counter["value"], json!(5.0));
        assert_eq!(counter["value_int"], Value::Null);
        assert_eq!(
            counter["start_time"],
            json!("2018-12-13T14:51:00.300000000Z")
        );
        assert_eq!(
            counter["attributes"],
            json!({"my.counter.attr": "some value"})
        );
        let gauge = by_name("my.gauge");
        assert_eq!(gauge["metric_type"], json!("gauge"));
        assert_eq!(gauge["value"], json!(10.0));
        assert_eq!(gauge["temporality"], Value::Null);
        assert_eq!(gauge["start_time"], Value::Null);
        let hist = by_name("my.histogram");
        assert_eq!(hist["metric_type"], json!("histogram"));
        assert_eq!(hist["temporality"], json!("delta"));
        assert_eq!(hist["count"], json!(2));
        assert_eq!(hist["sum"], json!(2.0));
        assert_eq!(hist["min"], json!(0.0));
        assert_eq!(hist["max"], json!(2.0));
        assert_eq!(hist["bucket_counts"], json!([1, 1]));
        assert_eq!(hist["explicit_bounds"], json!([1.0]));
        let exp = by_name("my.exponential.histogram");
        assert_eq!(exp["metric_type"], json!("exponential_histogram"));
        assert_eq!(exp["count"], json!(3));
        assert_eq!(exp["sum"], json!(10.0));
        assert_eq!(exp["scale"], json!(0));
        assert_eq!(exp["zero_count"], json!(1));
        assert_eq!(exp["zero_threshold"], json!(0.0));
        assert_eq!(exp["positive_offset"], json!(1));
        assert_eq!(exp["positive_bucket_counts"], json!([0, 2]));
        assert_eq!(exp["min"], json!(0.0));
        assert_eq!(exp["max"], json!(5.0));
        assert_eq!(
            exp["attributes"],
            json!({"my.exponential.histogram.attr": "some value"})
        );
        // A stable series id: same name and labels, same id, across head and segments.
        assert!(counter["series_id"].as_u64().is_some());
    }
}
