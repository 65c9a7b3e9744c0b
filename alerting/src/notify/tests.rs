//! End-to-end tests of delivery: a real `Notifier` against axum receivers on 127.0.0.1.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;

use super::clock::now_ms;
use super::*;
use crate::testing::WebhookReceiver as TestReceiver;

async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

fn webhook(
    name: &str,
    url: &str,
    wait_ms: u64,
    interval_ms: u64,
    repeat_ms: u64,
) -> ReceiverConfig {
    let mut config = ReceiverConfig::new(name, ReceiverKind::Webhook, url);
    config.group_wait = Duration::from_millis(wait_ms);
    config.group_interval = Duration::from_millis(interval_ms);
    config.repeat_interval = Duration::from_millis(repeat_ms);
    config.timeout = Duration::from_secs(2);
    config
}

fn options() -> NotifierOptions {
    NotifierOptions {
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        ..Default::default()
    }
}

fn start(dir: &Path, receivers: Vec<ReceiverConfig>) -> Arc<Notifier> {
    let config = NotifyConfig {
        receivers,
        external_url: "http://lumen:4318".into(),
    };
    Notifier::start_with_options(dir, config, options()).unwrap()
}

/// A firing alert (expiring in an hour) with `alertname` and extra labels, starting now.
fn firing(name: &str, labels: &[(&str, &str)]) -> Alert {
    let mut alert = Alert {
        labels: [("alertname".to_string(), name.to_string())]
            .into_iter()
            .collect(),
        annotations: [("summary".to_string(), format!("{name} is bad"))]
            .into_iter()
            .collect(),
        starts_at_ms: now_ms(),
        ends_at_ms: now_ms() + 3_600_000,
        generator_url: "http://lumen:4318/api/v1/rules".into(),
    };
    alert
        .labels
        .extend(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    alert
}

fn resolved(mut alert: Alert) -> Alert {
    alert.ends_at_ms = now_ms();
    alert
}

/// Whether `team` has delivered `n` notifications and removed them from its outbox.
fn recorded(notifier: &Notifier, n: u64) -> bool {
    let status = status(notifier, "team");
    status.delivered == n && status.queued == 0
}

fn status(notifier: &Notifier, name: &str) -> ReceiverStatus {
    notifier
        .receivers()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap()
}

#[tokio::test]
async fn webhook_body_headers_and_hmac_signature() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let mut config = webhook("team", &receiver.url("/hook"), 100, 300, 60_000);
    config.hmac_secret = Some("s3cret".into());
    config
        .headers
        .insert("Authorization".into(), "Bearer token".into());
    config.group_by = vec!["alertname".into()];
    let notifier = start(dir.path(), vec![config]);
    let alert = firing("HighLatency", &[("job", "api")]);
    notifier.send(vec![alert.clone()]);

    assert!(wait_until(Duration::from_secs(3), || receiver.accepted().len() == 1).await);
    let request = &receiver.accepted()[0];
    assert_eq!(request.path, "/hook");
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["authorization"], "Bearer token");
    let expected = delivery::signature("s3cret", &request.body).unwrap();
    assert_eq!(
        request.headers[SIGNATURE_HEADER].to_str().unwrap(),
        expected
    );
    assert!(expected.starts_with("sha256=") && expected.len() == "sha256=".len() + 64);

    let body = request.json();
    assert_eq!(body["version"], "4");
    assert_eq!(body["groupKey"], r#"{}:{alertname="HighLatency"}"#);
    assert_eq!(body["truncatedAlerts"], 0);
    assert_eq!(body["status"], "firing");
    assert_eq!(body["receiver"], "team");
    assert_eq!(
        body["groupLabels"],
        serde_json::json!({"alertname": "HighLatency"})
    );
    assert_eq!(
        body["commonLabels"],
        serde_json::json!({"alertname": "HighLatency", "job": "api"})
    );
    assert_eq!(
        body["commonAnnotations"],
        serde_json::json!({"summary": "HighLatency is bad"})
    );
    assert_eq!(body["externalURL"], "http://lumen:4318");
    let sent = &body["alerts"][0];
    assert_eq!(sent["status"], "firing");
    assert_eq!(
        sent["startsAt"],
        crate::alert::rfc3339_ms(alert.starts_at_ms)
    );
    assert_eq!(sent["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(sent["generatorURL"], "http://lumen:4318/api/v1/rules");
    assert_eq!(sent["fingerprint"], alert.fingerprint());
    // The receiver records the request before Lumen reads the answer.
    assert!(wait_until(Duration::from_secs(2), || recorded(&notifier, 1)).await);
    let status = status(&notifier, "team");
    assert!(status.last_success_ms.is_some());
    notifier.shutdown().await;
}

#[tokio::test]
async fn groups_by_labels() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let mut config = webhook("team", &receiver.url("/"), 150, 1000, 60_000);
    config.group_by = vec!["alertname".into()];
    let notifier = start(dir.path(), vec![config]);
    notifier.send(vec![
        firing("A", &[("instance", "1")]),
        firing("B", &[("instance", "1")]),
    ]);
    notifier.send(vec![firing("A", &[("instance", "2")])]);

    assert!(wait_until(Duration::from_secs(3), || receiver.accepted().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut groups: Vec<(String, usize)> = receiver
        .accepted()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["groupKey"].as_str().unwrap().to_string(),
                body["alerts"].as_array().unwrap().len(),
            )
        })
        .collect();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            (r#"{}:{alertname="A"}"#.to_string(), 2),
            (r#"{}:{alertname="B"}"#.to_string(), 1)
        ]
    );
    notifier.shutdown().await;
}

#[tokio::test]
async fn group_wait_interval_and_repeat_timing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let notifier = start(
        dir.path(),
        vec![webhook("team", &receiver.url("/"), 250, 400, 1500)],
    );
    let started = Instant::now();
    let a = firing("A", &[]);
    notifier.send(vec![a.clone()]);

    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 1).await);
    let first = started.elapsed();
    assert!(
        first >= Duration::from_millis(240),
        "group_wait respected: {first:?}"
    );
    assert!(
        first < Duration::from_millis(900),
        "first notification after group_wait: {first:?}"
    );

    // A new alert in the group: next group_interval tick, not at once.
    let b = firing("B", &[]);
    notifier.send(vec![a.clone(), b.clone()]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        receiver.accepted().len(),
        1,
        "changes wait for group_interval"
    );
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 2).await);
    let second = started.elapsed();
    assert!(
        second - first >= Duration::from_millis(380),
        "group_interval respected: {:?}",
        second - first
    );
    assert_eq!(
        receiver.accepted()[1].json()["alerts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Unchanged: nothing until repeat_interval, then the same group again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(
        receiver.accepted().len(),
        2,
        "no notification before repeat_interval"
    );
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 3).await);
    let third = started.elapsed();
    assert!(
        third - second >= Duration::from_millis(1450),
        "repeat_interval respected: {:?}",
        third - second
    );
    assert_eq!(
        receiver.accepted()[2].json()["alerts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    notifier.shutdown().await;
}

#[tokio::test]
async fn resolved_notifications_and_send_resolved_false() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let with = webhook("with", &receiver.url("/with"), 100, 200, 60_000);
    let mut without = webhook("without", &receiver.url("/without"), 100, 200, 60_000);
    without.send_resolved = false;
    let notifier = start(dir.path(), vec![with, without]);
    let alert = firing("A", &[]);
    notifier.send(vec![alert.clone()]);
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 2).await);

    let ended = resolved(alert.clone());
    notifier.send(vec![ended.clone()]);
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 3).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let requests = receiver.accepted();
    assert_eq!(
        requests.len(),
        3,
        "one resolved notification, to the receiver that wants it"
    );
    let last = &requests[2];
    assert_eq!(last.path, "/with");
    let body = last.json();
    assert_eq!(body["status"], "resolved");
    assert_eq!(body["alerts"][0]["status"], "resolved");
    assert_eq!(
        body["alerts"][0]["endsAt"],
        crate::alert::rfc3339_ms(ended.ends_at_ms)
    );
    notifier.shutdown().await;
}

#[tokio::test]
async fn receiver_503_then_200_delivers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[503, 503, 503], 200).await;
    let notifier = start(
        dir.path(),
        vec![webhook("team", &receiver.url("/"), 50, 100, 60_000)],
    );
    notifier.send(vec![firing("A", &[])]);

    assert!(wait_until(Duration::from_secs(3), || receiver.accepted().len() == 1).await);
    // Long enough for several group_interval ticks and retries, were any due.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(receiver.accepted().len(), 1);
    assert_eq!(
        receiver.requests().len(),
        4,
        "three refused attempts, one delivery"
    );
    let bodies: Vec<Bytes> = receiver.requests().iter().map(|r| r.body.clone()).collect();
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "retries resend the same notification"
    );
    let status = status(&notifier, "team");
    assert_eq!((status.delivered, status.failed, status.queued), (1, 0, 0));
    assert!(status.last_error.unwrap().contains("503"));
    notifier.shutdown().await;
}

#[tokio::test]
async fn receiver_400_is_dropped_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 400).await;
    let notifier = start(
        dir.path(),
        vec![webhook("team", &receiver.url("/"), 50, 100, 60_000)],
    );
    let alert = firing("A", &[]);
    notifier.send(vec![alert.clone()]);

    assert!(
        wait_until(Duration::from_secs(2), || status(&notifier, "team").failed
            == 1)
        .await
    );
    // The evaluator keeps re-sending the firing alert; still no new attempt for the same content.
    for _ in 0..5 {
        notifier.send(vec![alert.clone()]);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(receiver.requests().len(), 1, "no retry storm");
    let status = status(&notifier, "team");
    assert_eq!((status.delivered, status.failed, status.queued), (0, 1, 0));
    assert!(status.last_error.unwrap().contains("400"));
    notifier.shutdown().await;
}

#[tokio::test]
async fn outage_across_restart_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start_down().await;
    let url = receiver.url("");
    let receivers = || {
        let hook = webhook("team", &format!("{url}/hook"), 50, 100, 60_000);
        let am = ReceiverConfig::new("am", ReceiverKind::Alertmanager, &url);
        vec![hook, am]
    };
    let alert = firing("A", &[]);

    let notifier = start(dir.path(), receivers());
    notifier.send(vec![alert.clone()]);
    assert!(
        wait_until(Duration::from_secs(3), || {
            let statuses = notifier.receivers();
            statuses
                .iter()
                .all(|s| s.queued == 1 && s.last_error.is_some())
        })
        .await,
        "{:?}",
        notifier.receivers()
    );
    // Still down for a few group_interval ticks: no second webhook notification is created.
    notifier.send(vec![alert.clone()]);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(status(&notifier, "team").queued, 1);
    notifier.crash().await;
    drop(notifier);
    let outbox = std::fs::read_dir(dir.path().join("receivers/team/outbox"))
        .unwrap()
        .count();
    assert_eq!(outbox, 1, "the undelivered notification is on disk");

    receiver.set_down(false);
    let notifier = start(dir.path(), receivers());
    notifier.send(vec![alert.clone()]);
    assert!(wait_until(Duration::from_secs(3), || receiver.accepted().len() >= 2).await);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let webhooks: Vec<_> = receiver
        .accepted()
        .into_iter()
        .filter(|r| r.path == "/hook")
        .collect();
    assert_eq!(
        webhooks.len(),
        1,
        "the webhook notification is delivered exactly once"
    );
    assert_eq!(
        webhooks[0].json()["alerts"][0]["fingerprint"],
        alert.fingerprint()
    );
    let pushes: Vec<_> = receiver
        .accepted()
        .into_iter()
        .filter(|r| r.path == "/api/v2/alerts")
        .collect();
    assert!(!pushes.is_empty());
    assert!(notifier.receivers().iter().all(|s| s.queued == 0));
    notifier.shutdown().await;
}

#[tokio::test]
async fn restart_with_same_alerts_sends_nothing_before_repeat_interval() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let config = || {
        let mut config = webhook("team", &receiver.url("/"), 100, 150, 60_000);
        config.group_by = vec!["alertname".into()];
        config
    };
    let a = firing("A", &[]);
    let notifier = start(dir.path(), vec![config()]);
    notifier.send(vec![a.clone()]);
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 1).await);
    // Crash once the delivery is recorded (a crash between the receiver's 2xx and that is the
    // documented at-least-once window).
    assert!(wait_until(Duration::from_secs(2), || recorded(&notifier, 1)).await);
    notifier.crash().await;
    drop(notifier);

    // Restarted (as after kill -9); the evaluator sends the same firing alert again.
    let notifier = start(dir.path(), vec![config()]);
    for _ in 0..4 {
        notifier.send(vec![a.clone()]);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(receiver.accepted().len(), 1, "no duplicate after restart");
    // Grouping still works after the restart: a new firing alert in the group is notified.
    notifier.send(vec![a.clone(), firing("A", &[("instance", "2")])]);
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 2).await);
    assert_eq!(
        receiver.accepted()[1].json()["alerts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    notifier.shutdown().await;
}

#[tokio::test]
async fn restart_resolves_alerts_that_expired_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let config = || webhook("team", &receiver.url("/"), 100, 150, 60_000);
    let mut alert = firing("A", &[]);
    alert.ends_at_ms = now_ms() + 600; // the evaluator stops re-sending: it expires
    let notifier = start(dir.path(), vec![config()]);
    notifier.send(vec![alert.clone()]);
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 1).await);
    assert!(wait_until(Duration::from_secs(2), || recorded(&notifier, 1)).await);
    notifier.shutdown().await;
    drop(notifier);
    tokio::time::sleep(Duration::from_millis(700)).await;

    let notifier = start(dir.path(), vec![config()]);
    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 2).await);
    assert_eq!(receiver.accepted()[1].json()["status"], "resolved");
    notifier.shutdown().await;
}

#[tokio::test]
async fn alertmanager_push_body_and_matchers() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let mut am = ReceiverConfig::new("am", ReceiverKind::Alertmanager, &receiver.url("/prefix/"));
    am.matchers = vec![Matcher::parse(r#"severity=~"page|critical""#).unwrap()];
    let notifier = start(dir.path(), vec![am]);
    let page = firing("Down", &[("severity", "page")]);
    let info = firing("Slow", &[("severity", "info")]);
    let ended = resolved(firing("Gone", &[("severity", "critical")]));
    notifier.send(vec![page.clone(), info, ended.clone()]);

    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 1).await);
    let request = &receiver.accepted()[0];
    assert_eq!(request.path, "/prefix/api/v2/alerts");
    let body = request.json();
    let alerts = body.as_array().unwrap();
    assert_eq!(alerts.len(), 2, "the info alert does not match");
    let down = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "Down")
        .unwrap();
    assert_eq!(
        *down,
        serde_json::json!({
            "labels": {"alertname": "Down", "severity": "page"},
            "annotations": {"summary": "Down is bad"},
            "startsAt": crate::alert::rfc3339_ms(page.starts_at_ms),
            "endsAt": crate::alert::rfc3339_ms(page.ends_at_ms),
            "generatorURL": "http://lumen:4318/api/v1/rules"
        })
    );
    let gone = alerts
        .iter()
        .find(|a| a["labels"]["alertname"] == "Gone")
        .unwrap();
    assert_eq!(gone["endsAt"], crate::alert::rfc3339_ms(ended.ends_at_ms));
    notifier.shutdown().await;
}

#[tokio::test]
async fn alerts_fan_out_to_matching_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start(&[], 200).await;
    let everything = webhook("everything", &receiver.url("/all"), 50, 200, 60_000);
    let mut paging = webhook("paging", &receiver.url("/page"), 50, 200, 60_000);
    paging.matchers = vec![Matcher::new("severity", MatchOp::Equal, "page").unwrap()];
    let notifier = start(dir.path(), vec![everything, paging]);
    notifier.send(vec![
        firing("Down", &[("severity", "page")]),
        firing("Slow", &[("severity", "info")]),
    ]);

    assert!(wait_until(Duration::from_secs(2), || receiver.accepted().len() == 2).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = receiver.accepted();
    assert_eq!(requests.len(), 2);
    let page = requests.iter().find(|r| r.path == "/page").unwrap().json();
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(page["groupKey"], r#"{}/{severity="page"}:{}"#);
    let all = requests.iter().find(|r| r.path == "/all").unwrap().json();
    assert_eq!(all["alerts"].as_array().unwrap().len(), 2);
    notifier.shutdown().await;
}

#[tokio::test]
async fn outbox_is_bounded_oldest_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = TestReceiver::start_down().await;
    let mut config = webhook("team", &receiver.url("/"), 10, 100, 60_000);
    config.group_by = vec!["alertname".into()];
    let config = NotifyConfig {
        receivers: vec![config],
        external_url: String::new(),
    };
    let options = NotifierOptions {
        outbox_capacity: 3,
        initial_backoff: Duration::from_secs(10),
        ..options()
    };
    let notifier = Notifier::start_with_options(dir.path(), config, options).unwrap();
    let alerts: Vec<Alert> = (0..5).map(|i| firing(&format!("A{i}"), &[])).collect();
    notifier.send(alerts);

    assert!(
        wait_until(Duration::from_secs(2), || status(&notifier, "team").dropped
            == 2)
        .await,
        "{:?}",
        notifier.receivers()
    );
    let status = status(&notifier, "team");
    assert_eq!(status.queued, 3);
    let files = std::fs::read_dir(dir.path().join("receivers/team/outbox"))
        .unwrap()
        .count();
    assert_eq!(files, 3);
    assert!(receiver.accepted().is_empty());
    notifier.shutdown().await;
}

#[test]
fn start_needs_a_runtime_and_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let err = Notifier::start(dir.path(), NotifyConfig::default()).unwrap_err();
    assert!(matches!(err, NotifyError::NoRuntime));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bad = NotifyConfig {
            receivers: vec![ReceiverConfig::new(
                "x",
                ReceiverKind::Webhook,
                "ftp://host/",
            )],
            external_url: String::new(),
        };
        let err = Notifier::start(dir.path(), bad).unwrap_err().to_string();
        assert!(
            err.contains(r#"receiver "x""#) && err.contains("ftp"),
            "{err}"
        );
    });
}
