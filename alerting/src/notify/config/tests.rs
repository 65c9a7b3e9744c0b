use super::*;

#[test]
fn deserializes_with_defaults_and_durations() {
    let config: ReceiverConfig = serde_json::from_value(serde_json::json!({
        "name": "oncall", "type": "webhook", "url": "http://127.0.0.1:9/hook",
        "group_wait": "1s", "matchers": {"severity": "page"}
    }))
    .unwrap();
    assert_eq!(config.group_wait, Duration::from_secs(1));
    assert_eq!(config.group_interval, Duration::from_secs(300));
    assert_eq!(config.repeat_interval, Duration::from_secs(4 * 3600));
    assert!(config.send_resolved);
    assert_eq!(config.matchers.len(), 1);

    let list: ReceiverConfig = serde_json::from_value(serde_json::json!({
        "name": "am", "type": "alertmanager", "url": "http://am:9093/",
        "matchers": ["severity=~\"page|critical\"", "team!=\"db\""]
    }))
    .unwrap();
    assert_eq!(list.matchers.len(), 2);
    assert_eq!(
        list.target_url().unwrap().as_str(),
        "http://am:9093/api/v2/alerts"
    );

    let unknown = serde_json::from_value::<ReceiverConfig>(serde_json::json!({
        "name": "x", "type": "webhook", "url": "http://h/", "group_wiat": "1s"
    }));
    assert!(unknown.unwrap_err().to_string().contains("group_wiat"));
    let bad_duration = serde_json::from_value::<ReceiverConfig>(serde_json::json!({
        "name": "x", "type": "webhook", "url": "http://h/", "group_wait": "soon"
    }));
    assert!(bad_duration.is_err());
}

#[test]
fn validation_explains_mistakes() {
    let check = |receivers: Vec<ReceiverConfig>| {
        NotifyConfig {
            receivers,
            external_url: String::new(),
        }
        .validate()
        .map_err(|e| e.to_string())
    };
    let ok = ReceiverConfig::new("a", ReceiverKind::Webhook, "http://127.0.0.1:1/x");
    assert!(check(vec![ok.clone()]).is_ok());
    assert!(
        check(vec![ok.clone(), ok.clone()])
            .unwrap_err()
            .contains("unique")
    );
    let err = check(vec![ReceiverConfig::new(
        "a",
        ReceiverKind::Webhook,
        "not a url",
    )])
    .unwrap_err();
    assert!(err.contains("does not parse"), "{err}");
    let err = check(vec![ReceiverConfig::new(
        "a",
        ReceiverKind::Webhook,
        "https://h/",
    )])
    .unwrap_err();
    assert!(err.contains("https"), "{err}");
    let err = check(vec![ReceiverConfig::new(
        "../x",
        ReceiverKind::Webhook,
        "http://h/",
    )])
    .unwrap_err();
    assert!(err.contains("names"), "{err}");
    let mut grouped = ok.clone();
    grouped.group_by = vec!["...".into(), "job".into()];
    assert!(check(vec![grouped]).unwrap_err().contains("only entry"));
    let mut am = ReceiverConfig::new("am", ReceiverKind::Alertmanager, "http://am:9093");
    am.group_by = vec!["job".into()];
    assert!(check(vec![am]).unwrap_err().contains("Alertmanager groups"));
    let mut header = ok;
    header.headers.insert("Bad Header".into(), "x".into());
    assert!(check(vec![header]).unwrap_err().contains("header name"));
}
