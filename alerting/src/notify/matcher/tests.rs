use super::*;

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_and_matches_prometheus_matchers() {
    let set = labels(&[("severity", "page"), ("team", "db")]);
    assert!(Matcher::parse(r#"severity="page""#).unwrap().matches(&set));
    assert!(
        Matcher::parse(r#"severity=~"page|critical""#)
            .unwrap()
            .matches(&set)
    );
    assert!(
        !Matcher::parse(r#"severity=~"pag""#).unwrap().matches(&set),
        "regex is anchored"
    );
    assert!(Matcher::parse(r#"team!="web""#).unwrap().matches(&set));
    assert!(!Matcher::parse(r#"team!~"d.*""#).unwrap().matches(&set));
    assert!(Matcher::parse(r#"missing="""#).unwrap().matches(&set));
    assert!(Matcher::parse("severity = page").unwrap().matches(&set));
    assert!(
        Matcher::parse(r#"a="x\"y""#)
            .unwrap()
            .matches(&labels(&[("a", "x\"y")]))
    );
    for bad in [
        "severity",
        r#"9x="y""#,
        r#"a=~"(""#,
        r#"a="unterminated"#,
        r#"a<"b""#,
    ] {
        assert!(Matcher::parse(bad).is_err(), "{bad} should not parse");
    }
    let m = Matcher::parse(r#"severity=~"page|critical""#).unwrap();
    assert_eq!(format_matchers(&[m]), r#"{severity=~"page|critical"}"#);
}
