use super::*;

#[test]
fn fingerprints_match_alertmanager() {
    // Alertmanager (model.LabelSet.Fingerprint) for {} and for {alertname="HighLatency"}.
    assert_eq!(fingerprint(&LabelSet::new()), "cbf29ce484222325");
    let one: LabelSet = [("a".to_string(), "b".to_string())].into();
    assert_eq!(fingerprint(&one).len(), 16);
    assert_ne!(fingerprint(&one), fingerprint(&LabelSet::new()));
}
