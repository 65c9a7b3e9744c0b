//! Alerting end to end: rule files loaded by the real binary, data sent over OTLP/HTTP, notifications
//! received by a webhook server in the test and by the real Alertmanager (Debian package
//! `prometheus-alertmanager`, installed by .ci/run), which forwards to the same test server.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use lumen_alerting::testing::WebhookReceiver;

use crate::server::TestServer;

/// One request the webhook server received.
#[derive(Clone, Debug)]
struct Received {
    headers: HeaderMap,
    raw: Vec<u8>,
    body: Value,
    at: Instant,
}

/// A webhook receiver (lumen-alerting's test fixture): records every request, answers 200.
struct Hook {
    addr: SocketAddr,
    receiver: WebhookReceiver,
}

impl Hook {
    async fn start(addr: &str) -> Hook {
        let receiver = WebhookReceiver::start_on(addr, &[], 200).await;
        Hook {
            addr: receiver.addr,
            receiver,
        }
    }

    fn all(&self, path: &str) -> Vec<Received> {
        self.receiver
            .requests()
            .into_iter()
            .filter(|r| r.path == path)
            .map(|r| Received {
                body: r.json(),
                raw: r.body.to_vec(),
                headers: r.headers,
                at: r.at,
            })
            .collect()
    }

    /// Notifications on `path` containing an alert named `alertname` in `status`.
    fn matching(&self, path: &str, alertname: &str, status: &str) -> Vec<Received> {
        self.all(path)
            .into_iter()
            .filter(|r| {
                r.body["status"] == status
                    && r.body["alerts"].as_array().is_some_and(|a| {
                        a.iter()
                            .any(|a| a["labels"]["alertname"] == alertname && a["status"] == status)
                    })
            })
            .collect()
    }

    async fn wait_for(
        &self,
        path: &str,
        alertname: &str,
        status: &str,
        timeout: Duration,
    ) -> Received {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.matching(path, alertname, status).into_iter().next() {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no {status} notification for {alertname} on {path} within {timeout:?}; got: {:#?}",
                self.all(path)
                    .iter()
                    .map(|r| r.body.clone())
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The real Alertmanager, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_alertmanager(webhook: SocketAddr) -> Alertmanager {
    let binary = ["/usr/bin/prometheus-alertmanager", "/usr/local/bin/alertmanager", "/usr/bin/alertmanager"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("the Alertmanager binary is needed: apt-get install prometheus-alertmanager (.ci/run installs it)");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "route:\n  receiver: hook\n  group_by: ['alertname']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
         receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{webhook}/am\n        send_resolved: true\n"
    );
    std::fs::write(dir.path().join("alertmanager.yml"), config).unwrap();
    let port = free_port();
    let child = Command::new(binary)
        .arg(format!(
            "--config.file={}",
            dir.path().join("alertmanager.yml").display()
        ))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/-/ready")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "alertmanager did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Alertmanager {
        child,
        url,
        _dir: dir,
    }
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Sends one gauge point over OTLP/HTTP (JSON).
async fn send_gauge(server: &TestServer, name: &str, attributes: &[(&str, &str)], value: f64) {
    let attributes: Vec<Value> = attributes
        .iter()
        .map(|(k, v)| json!({"key": k, "value": {"stringValue": v}}))
        .collect();
    let body = json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "orders"}}]},
        "scopeMetrics": [{"metrics": [{"name": name, "gauge": {"dataPoints": [
            {"attributes": attributes, "timeUnixNano": now_ns().to_string(), "asDouble": value}
        ]}}]}]
    }]});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/metrics", server.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

/// Sends `n` error spans of `service` over OTLP/HTTP (JSON).
async fn send_error_spans(server: &TestServer, service: &str, n: usize) {
    let now = now_ns();
    let spans: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "traceId": format!("{:032x}", now + i as u128),
                "spanId": format!("{:016x}", i + 1),
                "name": "Charge",
                "kind": 2,
                "startTimeUnixNano": now.to_string(),
                "endTimeUnixNano": (now + 1_000_000).to_string(),
                "status": {"code": 2, "message": "card processor unavailable"}
            })
        })
        .collect();
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]
    }]});
    let r = reqwest::Client::new()
        .post(format!("{}/v1/traces", server.http))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
}

const RULES: &str = r#"
groups:
  - name: orders
    interval: 1s
    labels:
      team: bookstore
    rules:
      - alert: QueueDepthHigh
        expr: queue_depth > 10
        for: 2s
        labels:
          severity: page
        annotations:
          summary: "depth {{ $value }} on {{ $labels.queue }}"
          human: "{{ $value | humanize }} queued"
  - name: payments
    interval: 1s
    rules:
      - alert: PaymentErrors
        sql: |
          SELECT service_name AS service, count(*) AS value
          FROM spans
          WHERE status_code = 'error' AND time > $__eval_time - INTERVAL '6 seconds'
          GROUP BY service_name
          HAVING count(*) >= 3
        labels:
          severity: ticket
        annotations:
          summary: "{{ $labels.service }}: {{ $value }} failed charges"
"#;

fn lumen_toml(hook: SocketAddr, extra: &str) -> String {
    format!(
        r#"
[alerting]
evaluation_interval = "1s"
resend_delay = "2s"

[[alerting.receivers]]
name = "hook"
type = "webhook"
url = "http://{hook}/hook"
hmac_secret = "s3cret"
headers = {{ "X-Team" = "bookstore" }}
group_by = ["alertname"]
group_wait = "200ms"
group_interval = "1s"
repeat_interval = "1h"
{extra}
"#
    )
}

/// Writes the rules and the config into `dir`; returns the serve flags.
fn files(dir: &Path, rules: &str, config: &str) -> Vec<String> {
    std::fs::write(dir.join("rules.yml"), rules).unwrap();
    std::fs::write(dir.join("lumen.toml"), config).unwrap();
    vec![
        "--config".into(),
        dir.join("lumen.toml").display().to_string(),
        "--rules".into(),
        dir.join("rules.yml").display().to_string(),
    ]
}

fn start(args: &[String]) -> TestServer {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start_with(&refs)
}

fn alert<'a>(notification: &'a Received, alertname: &str) -> &'a Value {
    notification.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname)
        .unwrap()
}

async fn get_json(url: String) -> Value {
    let r = reqwest::get(&url).await.unwrap();
    assert!(r.status().is_success(), "{url}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_and_sql_rules_fire_and_resolve_through_a_webhook_and_alertmanager() {
    let hook = Hook::start("127.0.0.1:0").await;
    let am = start_alertmanager(hook.addr).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "\n[[alerting.receivers]]\nname = \"am\"\ntype = \"alertmanager\"\nurl = \"{}\"\n",
        am.url
    );
    let server = start(&files(dir.path(), RULES, &lumen_toml(hook.addr, &extra)));

    let sent = Instant::now();
    send_gauge(&server, "queue_depth", &[("queue", "orders")], 50.0).await;
    send_error_spans(&server, "payment", 3).await;

    // The PromQL rule: pending for 2 s, then firing, then a grouped, signed webhook notification.
    let firing = hook
        .wait_for("/hook", "QueueDepthHigh", "firing", Duration::from_secs(30))
        .await;
    assert!(
        firing.at.duration_since(sent) >= Duration::from_secs(2),
        "fired before `for: 2s` passed"
    );
    let body = &firing.body;
    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["groupLabels"], json!({"alertname": "QueueDepthHigh"}));
    let a = alert(&firing, "QueueDepthHigh");
    assert_eq!(
        a["labels"],
        json!({"alertname": "QueueDepthHigh", "queue": "orders", "severity": "page", "team": "bookstore", "job": "orders"})
    );
    assert_eq!(a["annotations"]["summary"], "depth 50 on orders");
    assert_eq!(a["annotations"]["human"], "50 queued");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert!(
        a["generatorURL"]
            .as_str()
            .unwrap()
            .starts_with(&server.http)
    );
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    assert_eq!(firing.headers.get("x-team").unwrap(), "bookstore");
    let signature = firing
        .headers
        .get("x-lumen-signature")
        .expect("signature header")
        .to_str()
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
    mac.update(&firing.raw);
    assert_eq!(
        signature,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );

    // The SQL rule: one alert per row, string columns as labels, `value` as the value.
    let sql_firing = hook
        .wait_for("/hook", "PaymentErrors", "firing", Duration::from_secs(30))
        .await;
    let a = alert(&sql_firing, "PaymentErrors");
    assert_eq!(
        a["labels"],
        json!({"alertname": "PaymentErrors", "service": "payment", "severity": "ticket"})
    );
    assert_eq!(a["annotations"]["summary"], "payment: 3 failed charges");

    // Alertmanager got both from Lumen's pushes and notified its own webhook.
    let am_firing = hook
        .wait_for("/am", "QueueDepthHigh", "firing", Duration::from_secs(30))
        .await;
    assert_eq!(
        alert(&am_firing, "QueueDepthHigh")["annotations"]["summary"],
        "depth 50 on orders"
    );
    hook.wait_for("/am", "PaymentErrors", "firing", Duration::from_secs(30))
        .await;

    // Visible in the APIs, in SQL and as ALERTS series.
    let alerts = get_json(format!("{}/api/v1/alerts", server.http)).await;
    let names: Vec<&str> = alerts["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"QueueDepthHigh"), "{alerts}");
    let rules = get_json(format!("{}/api/v1/rules", server.http)).await;
    let groups = rules["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    let rule = &groups.iter().find(|g| g["name"] == "orders").unwrap()["rules"][0];
    assert_eq!(rule["type"], "alerting");
    assert_eq!(rule["health"], "ok");
    assert_eq!(rule["duration"], 2.0);
    assert_eq!(rule["state"], "firing");
    assert_eq!(rule["alerts"][0]["value"], "5e+01");
    let promql = get_json(format!(
        "{}/api/v1/query?query=ALERTS%7Balertstate%3D%22firing%22%7D",
        server.http
    ))
    .await;
    let series = promql["data"]["result"].as_array().unwrap();
    assert!(
        series
            .iter()
            .any(|s| s["metric"]["alertname"] == "QueueDepthHigh"),
        "{promql}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["alerts", "--server", &server.http])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && text.contains("QueueDepthHigh") && text.contains("firing"),
        "{text}"
    );

    // Resolution: the gauge drops; the SQL rule's 6 s window empties by itself.
    send_gauge(&server, "queue_depth", &[("queue", "orders")], 1.0).await;
    let resolved = hook
        .wait_for(
            "/hook",
            "QueueDepthHigh",
            "resolved",
            Duration::from_secs(30),
        )
        .await;
    let a = alert(&resolved, "QueueDepthHigh");
    assert_ne!(a["endsAt"], "0001-01-01T00:00:00Z");
    hook.wait_for(
        "/hook",
        "PaymentErrors",
        "resolved",
        Duration::from_secs(30),
    )
    .await;
    hook.wait_for("/am", "QueueDepthHigh", "resolved", Duration::from_secs(30))
        .await;
    hook.wait_for("/am", "PaymentErrors", "resolved", Duration::from_secs(30))
        .await;
    assert_eq!(
        hook.matching("/hook", "QueueDepthHigh", "firing").len(),
        1,
        "repeat_interval is 1h: one firing notification"
    );

    // Every state change is in the `alerts` table.
    let rows = server
        .sql_rows("SELECT state FROM alerts WHERE rule = 'QueueDepthHigh' ORDER BY time, state")
        .await;
    let states: Vec<&str> = rows.iter().map(|r| r["state"].as_str().unwrap()).collect();
    assert_eq!(states, vec!["pending", "firing", "resolved"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_waits_for_a_receiver_that_is_down_and_arrives_once() {
    let port = free_port();
    let hook_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = start(&files(dir.path(), RULES, &lumen_toml(hook_addr, "")));
    send_gauge(&server, "queue_depth", &[("queue", "orders")], 50.0).await;

    // Firing while nobody listens: delivery is retried from the outbox.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let alerts = get_json(format!("{}/api/v1/alerts", server.http)).await;
        if alerts["data"]["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["state"] == "firing")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the alert never fired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    let hook = Hook::start(&hook_addr.to_string()).await;
    hook.wait_for("/hook", "QueueDepthHigh", "firing", Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        hook.matching("/hook", "QueueDepthHigh", "firing").len(),
        1,
        "delivered exactly once after the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_survives_kill9_without_a_new_notification() {
    let hook = Hook::start("127.0.0.1:0").await;
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(&files(dir.path(), RULES, &lumen_toml(hook.addr, "")));
    send_gauge(&server, "queue_depth", &[("queue", "orders")], 50.0).await;
    hook.wait_for("/hook", "QueueDepthHigh", "firing", Duration::from_secs(30))
        .await;
    let active_at = |alerts: &Value| -> Option<String> {
        alerts["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == "QueueDepthHigh" && a["state"] == "firing")
            .map(|a| a["activeAt"].as_str().unwrap().to_string())
    };
    let before =
        active_at(&get_json(format!("{}/api/v1/alerts", server.http)).await).expect("firing");

    // A reload that adds a group keeps the firing alert's state (no new alert, no new notification).
    let more = format!(
        "{RULES}  - name: extra\n    rules:\n      - record: queue_depth:max\n        expr: max(queue_depth)\n"
    );
    std::fs::write(dir.path().join("rules.yml"), more).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/-/reload", server.http))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "{}",
        r.text().await.unwrap_or_default()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rules = get_json(format!("{}/api/v1/rules", server.http)).await;
    assert_eq!(
        rules["data"]["groups"].as_array().unwrap().len(),
        3,
        "{rules}"
    );
    assert_eq!(
        active_at(&get_json(format!("{}/api/v1/alerts", server.http)).await),
        Some(before.clone())
    );

    server.kill9();
    server.restart();
    // Several evaluations and resends after the restart.
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        if let Some(after) = active_at(&get_json(format!("{}/api/v1/alerts", server.http)).await) {
            break after;
        }
        assert!(
            Instant::now() < deadline,
            "the alert is not firing after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(after, before, "activeAt survives the restart");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        hook.matching("/hook", "QueueDepthHigh", "firing").len(),
        1,
        "no new notification within the repeat interval after the restart"
    );
    let history = server
        .sql_rows("SELECT state FROM alerts WHERE rule = 'QueueDepthHigh' ORDER BY time")
        .await;
    let states: Vec<&str> = history
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        vec!["pending", "firing"],
        "the restart is not a new alert"
    );
}

const BAD_RULES: &str = r#"groups:
  - name: broken
    rules:
      - alert: NoSuchFunction
        expr: rate_of_everything(http_requests_total[5m]) > 1
      - alert: BadTemplate
        expr: up == 0
        annotations:
          summary: "{{ $labels.instance | nosuchfunc }}"
      - alert: Typo
        exprr: up == 0
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rule_files_are_rejected_at_check_start_and_reload() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, BAD_RULES).unwrap();

    // `lumen rules check`: every error with its line, exit status 1.
    let output = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["rules", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for (line, what) in [(5, "rate_of_everything"), (9, "nosuchfunc"), (11, "exprr")] {
        assert!(
            stderr.contains(&format!("bad.yml:{line}:")),
            "no error on line {line} in:\n{stderr}"
        );
        assert!(stderr.contains(what), "no mention of {what} in:\n{stderr}");
    }
    let good = dir.path().join("good.yml");
    std::fs::write(&good, RULES).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args(["rules", "check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("SUCCESS: 2 rules found"));

    // `lumen serve` refuses to start with them, saying why.
    let output = Command::new(env!("CARGO_BIN_EXE_lumen"))
        .args([
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data-bad"))
        .arg("--rules")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yml:5:") && stderr.contains("lumen rules check"),
        "{stderr}"
    );

    // A failed reload keeps the running rules; a good one replaces them.
    let hook = Hook::start("127.0.0.1:0").await;
    let rules_dir = tempfile::tempdir().unwrap();
    let server = start(&files(rules_dir.path(), RULES, &lumen_toml(hook.addr, "")));
    let rule_names = || async {
        let rules = get_json(format!("{}/api/v1/rules", server.http)).await;
        let mut names: Vec<String> = rules["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| {
                g["rules"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["name"].as_str().unwrap().to_string())
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(rule_names().await, vec!["PaymentErrors", "QueueDepthHigh"]);
    std::fs::write(rules_dir.path().join("rules.yml"), BAD_RULES).unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/-/reload", server.http))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let message = r.text().await.unwrap();
    assert!(
        message.contains("rate_of_everything") && message.contains("previous rules keep running"),
        "{message}"
    );
    assert_eq!(rule_names().await, vec!["PaymentErrors", "QueueDepthHigh"]);

    let renamed = RULES.replace("QueueDepthHigh", "QueueDepthCritical");
    std::fs::write(rules_dir.path().join("rules.yml"), renamed).unwrap();
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().unwrap().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while rule_names().await != vec!["PaymentErrors", "QueueDepthCritical"] {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the rules: {:?}",
            rule_names().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
