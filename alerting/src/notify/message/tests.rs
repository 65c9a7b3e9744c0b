use super::*;

fn alert(pairs: &[(&str, &str)], ends_at_ms: i64) -> Alert {
    Alert {
        labels: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: [("summary".to_string(), "High latency".to_string())]
            .into_iter()
            .collect(),
        starts_at_ms: 1_704_067_200_000,
        ends_at_ms,
        generator_url: "http://lumen/rules".into(),
    }
}

#[test]
fn webhook_body_matches_alertmanager_v4() {
    let firing = alert(
        &[("alertname", "HighLatency"), ("job", "api")],
        2_000_000_000_000,
    );
    let resolved = alert(
        &[("alertname", "HighLatency"), ("job", "db")],
        1_704_067_260_000,
    );
    let group_labels: LabelSet = [("alertname".to_string(), "HighLatency".to_string())]
        .into_iter()
        .collect();
    let input = WebhookInput {
        receiver: "team",
        group_key: "{}:{alertname=\"HighLatency\"}",
        group_labels: &group_labels,
        external_url: "http://host:4318",
        max_alerts: 0,
        now_ms: 1_800_000_000_000,
    };
    let body: serde_json::Value =
        serde_json::from_str(&webhook_body(&input, &[&resolved, &firing]).unwrap()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}", "truncatedAlerts": 0,
            "status": "firing", "receiver": "team", "groupLabels": {"alertname": "HighLatency"},
            "commonLabels": {"alertname": "HighLatency"}, "commonAnnotations": {"summary": "High latency"},
            "externalURL": "http://host:4318",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "HighLatency", "job": "api"},
                 "annotations": {"summary": "High latency"}, "startsAt": "2024-01-01T00:00:00.000Z",
                 "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://lumen/rules",
                 "fingerprint": firing.fingerprint()},
                {"status": "resolved", "labels": {"alertname": "HighLatency", "job": "db"},
                 "annotations": {"summary": "High latency"}, "startsAt": "2024-01-01T00:00:00.000Z",
                 "endsAt": "2024-01-01T00:01:00.000Z", "generatorURL": "http://lumen/rules",
                 "fingerprint": resolved.fingerprint()}
            ]
        })
    );
    let truncated = WebhookInput {
        max_alerts: 1,
        ..input
    };
    let body: serde_json::Value =
        serde_json::from_str(&webhook_body(&truncated, &[&resolved, &firing]).unwrap()).unwrap();
    assert_eq!(body["truncatedAlerts"], 1);
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["alerts"][0]["status"], "firing");
}

#[test]
fn label_set_notation() {
    let labels: LabelSet = [
        ("b".to_string(), "x\"y".to_string()),
        ("a".to_string(), "1".to_string()),
    ]
    .into_iter()
    .collect();
    assert_eq!(format_label_set(&labels), r#"{a="1", b="x\"y"}"#);
    assert_eq!(format_label_set(&LabelSet::new()), "{}");
}
