use super::*;
use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{Field, Schema};
use parking_lot::Mutex;

/// Answers every PromQL query with one sample and records what it was asked and written.
#[derive(Default)]
struct FakeQuerier {
    asked: Mutex<Vec<(String, i64)>>,
    written: Mutex<Vec<WriteSample>>,
}

impl Querier for FakeQuerier {
    fn promql(
        &self,
        expr: &str,
        time_ms: i64,
    ) -> crate::BoxFuture<'_, Result<InstantResult, String>> {
        self.asked.lock().push((expr.to_string(), time_ms));
        let labels = Labels::new(vec![
            ("__name__".into(), "up".into()),
            ("job".into(), "api".into()),
        ]);
        Box::pin(async move { Ok(InstantResult::Vector(vec![(labels, 0.0)])) })
    }
    fn sql(&self, query: &str) -> crate::BoxFuture<'_, Result<Vec<RecordBatch>, String>> {
        self.asked.lock().push((query.to_string(), 0));
        Box::pin(async { Ok(Vec::new()) })
    }
    fn write(&self, samples: Vec<WriteSample>) -> crate::BoxFuture<'_, Result<(), String>> {
        self.written.lock().extend(samples);
        Box::pin(async { Ok(()) })
    }
}

fn group(text: &str) -> RuleGroup {
    crate::rules::parse_rule_file(std::path::Path::new("t.yml"), text)
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn queries_run_behind_the_evaluation_time_by_the_delay_and_state_uses_the_evaluation_time() {
    let fake = Arc::new(FakeQuerier::default());
    let querier: Arc<dyn Querier> = fake.clone();
    let settings = EvalSettings {
        evaluation_delay: Duration::from_secs(30),
        ..Default::default()
    };
    let g = group(
        "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: up == 0\n        annotations: {s: '{{ $labels.__name__ }} {{ $labels.job }}'}\n      - alert: Q\n        sql: SELECT 1 AS value WHERE $__eval_time > now()\n",
    );
    let mut runtime = GroupRuntime::new(g, GroupState::default(), &settings);
    let outcome = runtime.evaluate(&querier, &settings, 100_000).await;
    let asked = fake.asked.lock().clone();
    assert_eq!(
        asked[0],
        ("up == 0".to_string(), 70_000),
        "the query runs 30 s behind"
    );
    assert!(
        asked[1].0.contains("to_timestamp_nanos(70000000000)"),
        "{}",
        asked[1].0
    );
    let alert = runtime.alerts(0).unwrap().active.values().next().unwrap();
    assert_eq!(
        alert.active_at_ms, 100_000,
        "state is stamped with the evaluation time"
    );
    assert_eq!(
        alert.annotations["s"], "up api",
        "templates see __name__ like Prometheus"
    );
    assert!(!alert.labels.contains_key("__name__"));
    assert_eq!(outcome.to_send.len(), 1, "for: 0 fires and sends at once");
    let written = fake.written.lock().clone();
    let names: Vec<&str> = written
        .iter()
        .filter_map(|w| w.labels.get("__name__").map(String::as_str))
        .collect();
    assert_eq!(names, vec!["ALERTS_FOR_STATE", "ALERTS"]);
    assert_eq!(
        written[1].labels.get("alertstate").map(String::as_str),
        Some("firing")
    );

    // A group's own query_offset wins over the default delay.
    let g = group(
        "groups:\n  - name: g\n    query_offset: 5s\n    rules:\n      - record: r\n        expr: up\n",
    );
    let mut runtime = GroupRuntime::new(g, GroupState::default(), &settings);
    runtime.evaluate(&querier, &settings, 100_000).await;
    assert_eq!(fake.asked.lock().last().unwrap().1, 95_000);
    assert_eq!(
        fake.written
            .lock()
            .last()
            .unwrap()
            .labels
            .get("__name__")
            .map(String::as_str),
        Some("r")
    );
}

#[test]
fn sql_rows_become_labelled_samples() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("service", DataType::Utf8, true),
        Field::new("value", DataType::Int64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![Some("payment"), None])),
            Arc::new(Int64Array::from(vec![Some(3), Some(4)])),
        ],
    )
    .unwrap();
    let samples = rows_to_samples(&[batch]).unwrap();
    assert_eq!(samples.len(), 2);
    assert_eq!(
        samples[0].0.get("service").map(String::as_str),
        Some("payment")
    );
    assert_eq!(samples[0].1, 3.0);
    assert_eq!(samples[1].0.get("service"), None);
}

#[test]
fn sql_rows_without_a_value_column_are_an_error() {
    let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let err = rows_to_samples(&[batch]).unwrap_err();
    assert!(err.contains("column named `value`"), "{err}");
}
