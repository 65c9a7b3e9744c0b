//! The runner's scheduling: deadlines on both runtime flavours, the inline budget and heavy
//! shapes, concurrency slots held by overrunning work, and panic containment. Errors are looked at
//! as the HTTP API answers them ([`ApiError`]).

use axum::http::StatusCode;
use promql_parser::parser::Expr;

use super::*;
use crate::promql::api::ApiError;
use crate::testing::snapshots::FakeSource;

fn api_with_timeout(timeout: Duration) -> Arc<PromqlService> {
    Arc::new(PromqlService::with_slots(
        Arc::new(FakeSource::default()),
        PromqlConfig {
            timeout,
            ..Default::default()
        },
        1,
    ))
}

/// Work that overruns the timeout is answered 503 `timeout`; work that does not, with its value.
async fn overrunning_work_times_out(api: &Arc<PromqlService>) -> Duration {
    let started = std::time::Instant::now();
    let err = ApiError::from(
        api.run(None, None, |_| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        })
        .await
        .unwrap_err(),
    );
    let waited = started.elapsed();
    assert_eq!(err.error_type, "timeout");
    assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(err.message.contains("timed out"), "{}", err.message);
    // Work still running keeps its concurrency slot (the only one here) until it ends.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let answer = api.run(None, None, |_| Ok(42)).await.unwrap();
    assert_eq!(answer, 42);
    waited
}

#[tokio::test]
async fn timeouts_answer_503_at_the_deadline_off_the_blocking_pool() {
    let api = api_with_timeout(Duration::from_millis(10));
    let waited = overrunning_work_times_out(&api).await;
    // On a current-thread runtime the work is on the blocking pool: the answer does not wait for it.
    assert!(
        waited < Duration::from_millis(250),
        "answered after {waited:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_503_when_run_inline() {
    let api = api_with_timeout(Duration::from_millis(10));
    overrunning_work_times_out(&api).await;
}

/// Small queries run inline within a budget; one that overruns it is run again off the worker, and
/// its shape goes straight there afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_over_the_inline_budget_move_off_the_worker() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let api = api_with_timeout(Duration::from_secs(10));
    let calls = Arc::new(AtomicUsize::new(0));
    let slow = |calls: Arc<AtomicUsize>| {
        move |source: &QuerySource<'_>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let deadline = source.deadline().expect("a query source has a deadline");
            std::thread::sleep(INLINE_BUDGET * 4);
            if std::time::Instant::now() > deadline {
                return Err(PromqlError::Timeout("past the deadline".into()));
            }
            Ok(deadline.saturating_duration_since(std::time::Instant::now()))
        }
    };
    let left = api.run(None, Some(7), slow(calls.clone())).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "tried inline, then again with the query's deadline"
    );
    assert!(
        left > Duration::from_secs(5),
        "the second run had the query's own deadline: {left:?}"
    );
    assert!(api.is_heavy(7));

    calls.store(0, Ordering::SeqCst);
    api.run(None, Some(7), slow(calls.clone())).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "a heavy shape is not tried inline again"
    );

    let quick = api
        .run(None, Some(8), |source| {
            Ok(source
                .deadline()
                .unwrap()
                .saturating_duration_since(std::time::Instant::now()))
        })
        .await
        .unwrap();
    assert!(
        quick <= INLINE_BUDGET,
        "a small query runs within the inline budget: {quick:?}"
    );
    assert!(!api.is_heavy(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_evaluation_answers_500_and_the_api_goes_on() {
    let api = api_with_timeout(Duration::from_secs(5));
    for shape in [Some(9), None] {
        let err = ApiError::from(
            api.run(None, shape, |_| -> Result<(), PromqlError> {
                panic!("a bug")
            })
            .await
            .unwrap_err(),
        );
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(err.message.contains("a bug"), "{}", err.message);
    }
    assert_eq!(api.run(None, Some(9), |_| Ok(1)).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_reads_stop_at_the_deadline() {
    let api = api_with_timeout(Duration::from_secs(5));
    let matchers = match Engine::parse("up").unwrap() {
        Expr::VectorSelector(vs) => selector_matchers(&vs),
        _ => unreachable!(),
    };
    let past = std::time::Instant::now() - Duration::from_millis(1);
    let err = api
        .source
        .until(Some(past))
        .select(&matchers, 0, 1_000)
        .unwrap_err();
    assert_eq!(err.error_type(), "timeout", "{err}");
    let ok = api
        .source
        .until(Some(past + Duration::from_secs(60)))
        .select(&matchers, 0, 1_000);
    assert!(ok.is_ok(), "{ok:?}");
}
