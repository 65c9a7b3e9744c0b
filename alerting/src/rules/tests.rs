use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::template::TemplateData;

fn parse(text: &str) -> Vec<RuleGroup> {
    match parse_rule_file(Path::new("rules.yml"), text) {
        Ok(groups) => groups,
        Err(errors) => panic!("unexpected errors: {errors:#?}"),
    }
}

fn errors(text: &str) -> Vec<RuleError> {
    match parse_rule_file(Path::new("rules.yml"), text) {
        Ok(groups) => panic!("parsed: {groups:#?}"),
        Err(errors) => errors,
    }
}

/// The single error of `text`, checked to be at `line` and to mention `needle`.
fn single_error(text: &str, line: usize, needle: &str) -> RuleError {
    let errors = errors(text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    let error = errors.into_iter().next().unwrap();
    assert_eq!(error.line, line, "{error}");
    assert!(
        error.message.contains(needle),
        "{error} does not mention {needle:?}"
    );
    error
}

const INTERFACES_EXAMPLE: &str = r#"
groups:
  - name: example
    interval: 1m
    labels: {team: myteam}
    rules:
      - record: job:http_requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
      - alert: InstanceDown
        expr: up == 0
        for: 5m
        keep_firing_for: 5m
        labels: {severity: page}
        annotations:
          summary: "Instance {{ $labels.instance }} down"
          description: "value={{ $value }}"
"#;

#[test]
fn parses_the_interfaces_example() {
    let groups = parse(INTERFACES_EXAMPLE);
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(group.name, "example");
    assert_eq!(group.file, PathBuf::from("rules.yml"));
    assert_eq!(group.interval, Some(Duration::from_secs(60)));
    assert_eq!(group.query_offset, None);
    assert_eq!(group.limit, 0);
    assert_eq!(
        group.labels,
        BTreeMap::from([("team".to_string(), "myteam".to_string())])
    );
    assert_eq!(group.rules.len(), 2);

    let record = &group.rules[0];
    assert_eq!(record.name, "job:http_requests:rate5m");
    assert_eq!(record.kind, RuleKind::Recording);
    assert_eq!(
        record.query,
        RuleQuery::Promql("sum by (job) (rate(http_requests_total[5m]))".into())
    );
    assert_eq!(record.line, 7);
    assert_eq!(record.for_duration, Duration::ZERO);

    let alert = &group.rules[1];
    assert_eq!(alert.name, "InstanceDown");
    assert_eq!(alert.kind, RuleKind::Alerting);
    assert_eq!(alert.query.text(), "up == 0");
    assert_eq!(alert.for_duration, Duration::from_secs(300));
    assert_eq!(alert.keep_firing_for, Duration::from_secs(300));
    assert_eq!(alert.line, 9);
    assert_eq!(alert.labels["severity"].source(), "page");
    assert_eq!(
        alert.annotations["summary"].source(),
        "Instance {{ $labels.instance }} down"
    );

    let labels = BTreeMap::from([("instance".to_string(), "db-1".to_string())]);
    let none = BTreeMap::new();
    let data = TemplateData {
        labels: &labels,
        value: 0.0,
        external_labels: &none,
        external_url: "",
    };
    assert_eq!(
        alert.annotations["summary"].render(&data).unwrap(),
        "Instance db-1 down"
    );
    assert_eq!(
        alert.annotations["description"].render(&data).unwrap(),
        "value=0"
    );
}

#[test]
fn parses_sql_rules_offsets_limits_and_block_scalars() {
    let groups = parse(
        r#"
groups:
  - name: sql
    interval: 30s
    query_offset: 1m
    limit: 10
    rules:
      - alert: SlowCheckout
        sql: |
          -- p99 latency per service over the last 5 minutes
          SELECT service_name AS service, approx_percentile_cont(duration_ns, 0.99) / 1e9 AS value
          FROM spans WHERE start_time > now() - INTERVAL '5 minutes' GROUP BY 1
        for: 2m
        annotations:
          summary: >
            {{ $labels.service }} p99 is {{ $value | humanizeDuration }}
      - record: errors:count5m
        sql: with e as (select 1 as value) select * from e
        labels:
          source: "{{ not a template }}"
  - name: second
    rules: []
  - name: empty
"#,
    );
    assert_eq!(groups.len(), 3);
    let group = &groups[0];
    assert_eq!(group.interval, Some(Duration::from_secs(30)));
    assert_eq!(group.query_offset, Some(Duration::from_secs(60)));
    assert_eq!(group.limit, 10);
    let alert = &group.rules[0];
    assert!(
        matches!(&alert.query, RuleQuery::Sql(sql) if sql.contains("approx_percentile_cont") && sql.starts_with("-- p99"))
    );
    assert_eq!(alert.for_duration, Duration::from_secs(120));
    assert_eq!(
        alert.annotations["summary"].source(),
        "{{ $labels.service }} p99 is {{ $value | humanizeDuration }}\n"
    );
    let record = &group.rules[1];
    assert_eq!(record.kind, RuleKind::Recording);
    assert!(matches!(&record.query, RuleQuery::Sql(_)));
    // Recording rules' labels are literal text.
    assert!(record.labels["source"].is_plain_text());
    assert_eq!(record.labels["source"].source(), "{{ not a template }}");
    assert!(groups[1].rules.is_empty());
    assert!(groups[2].rules.is_empty());
}

#[test]
fn empty_files_and_odd_but_valid_yaml() {
    assert!(parse("").is_empty());
    assert!(parse("# only a comment\n").is_empty());
    assert!(parse("---\n").is_empty());
    assert!(parse("groups: []\n").is_empty());
    assert!(parse("groups:\n").is_empty());
    // Anchors, aliases and merge keys, interval 0 meaning "default", numbers as label values.
    let groups = parse(
        r#"
groups:
  - name: g
    interval: 0s
    rules:
      - &base
        alert: A
        expr: up == 0
        for: 5m
        labels: {severity: 1, team: ~}
      - <<: *base
        alert: B
"#,
    );
    let rules = &groups[0].rules;
    assert_eq!(groups[0].interval, None);
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[1].name, "B");
    assert_eq!(rules[1].query.text(), "up == 0");
    assert_eq!(rules[1].for_duration, Duration::from_secs(300));
    assert_eq!(rules[1].labels["severity"].source(), "1");
    assert_eq!(rules[1].labels["team"].source(), "");
}

#[test]
fn collects_every_error_with_its_line() {
    let text = r#"
groups:
  - name: g
    rules:
      - alert: A
        exprr: up == 0
      - record: bad-name
        expr: up
      - alert: C
        expr: rate(up[5m]
      - alert: D
        expr: up
        for: 5 minutes
"#;
    let errors = errors(text);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    // A: unknown key (line 6) and then no query (line 5).
    assert_eq!(lines, vec![6, 5, 7, 10, 13], "{errors:#?}");
    assert_eq!(errors[0].column, 9);
    assert_eq!(
        errors[0].message,
        r#"group "g", rule 1: unknown field "exprr"; did you mean "expr"?"#
    );
    assert_eq!(
        errors[0].to_string(),
        r#"rules.yml:6:9: group "g", rule 1: unknown field "exprr"; did you mean "expr"?"#
    );
    assert!(
        errors[1]
            .message
            .contains("one of expr (PromQL) or sql must be set")
    );
    assert!(
        errors[2]
            .message
            .contains(r#"invalid recording rule name "bad-name""#)
    );
    assert!(
        errors[3]
            .message
            .contains(r#"group "g", rule 3 ("C"): expr: invalid PromQL: "#),
        "{}",
        errors[3]
    );
    assert_eq!(errors[3].column, 15);
    assert!(
        errors[4]
            .message
            .contains(r#"for: "5 minutes" is not a duration"#),
        "{}",
        errors[4]
    );
}

#[test]
fn group_level_errors() {
    single_error("groups:\n  - rules: []\n", 2, "group 1: name is missing");
    single_error("groups:\n  - name: \"\"\n", 2, "name must not be empty");
    let e = single_error(
        "groups:\n  - name: a\n  - name: a\n",
        3,
        r#"group name "a" is repeated in this file (first at line 2)"#,
    );
    assert_eq!(e.column, 11);
    single_error(
        "groups:\n  - name: a\n    interval: soon\n",
        3,
        r#"group "a": interval: "soon" is not a duration"#,
    );
    single_error(
        "groups:\n  - name: a\n    query_offset: -1m\n",
        3,
        "query_offset",
    );
    single_error(
        "groups:\n  - name: a\n    limit: -1\n",
        3,
        "limit must be a non-negative whole number",
    );
    single_error(
        "groups:\n  - name: a\n    labels: {bad-name: x}\n",
        3,
        r#"invalid label name "bad-name""#,
    );
    single_error(
        "groups:\n  - name: a\n    rules: {}\n",
        3,
        "rules must be a list, found a mapping",
    );
    single_error(
        "groups:\n  - name: a\n    evaluation: 1m\n",
        3,
        r#"unknown field "evaluation""#,
    );
    single_error("groups: {name: a}\n", 1, "groups must be a list");
    single_error(
        "rules:\n  - alert: A\n",
        1,
        r#"rule file: unknown field "rules""#,
    );
    single_error(
        "- name: a\n",
        1,
        "rule file: expected a mapping, found a list",
    );
}

#[test]
fn rule_level_errors() {
    let head = "groups:\n  - name: g\n    rules:\n";
    let cases: &[(&str, usize, &str)] = &[
        (
            "      - expr: up\n",
            4,
            "one of alert or record must be set",
        ),
        (
            "      - alert: A\n        record: b\n        expr: up\n",
            4,
            "only one of alert and record may be set",
        ),
        (
            "      - alert: A\n",
            4,
            "one of expr (PromQL) or sql must be set",
        ),
        (
            "      - alert: A\n        expr: up\n        sql: SELECT 1\n",
            6,
            "only one of expr and sql may be set",
        ),
        (
            "      - alert: A\n        expr: \"\"\n",
            5,
            "expr must not be empty",
        ),
        (
            "      - alert: A\n        expr: nosuchfunction(up)\n",
            5,
            "invalid PromQL",
        ),
        (
            "      - alert: A\n        expr: sum(up\n",
            5,
            "invalid PromQL",
        ),
        (
            "      - alert: A\n        sql: \"\"\n",
            5,
            "sql: must not be empty",
        ),
        (
            "      - alert: A\n        sql: \"  -- nothing\"\n",
            5,
            "sql: must not be empty",
        ),
        (
            "      - alert: A\n        sql: DELETE FROM spans\n",
            5,
            r#"must be a read-only query starting with SELECT or WITH, found "DELETE""#,
        ),
        (
            "      - alert: A\n        sql: SELECT count(* AS value FROM spans\n",
            5,
            "sql: invalid SQL",
        ),
        (
            "      - alert: A\n        sql: SELECT 1 AS value; SELECT 2 AS value\n",
            5,
            "must be exactly one statement, found 2",
        ),
        (
            "      - record: r\n        expr: up\n        for: 5m\n",
            6,
            "for is not allowed in a recording rule",
        ),
        (
            "      - record: r\n        expr: up\n        keep_firing_for: 5m\n",
            6,
            "keep_firing_for is not allowed in a recording rule",
        ),
        (
            "      - record: r\n        expr: up\n        annotations: {a: b}\n",
            6,
            "annotations are not allowed in a recording rule",
        ),
        (
            "      - record: 1abc\n        expr: up\n",
            4,
            "invalid recording rule name",
        ),
        (
            "      - alert: A\n        expr: up\n        for: 5x\n",
            6,
            r#"for: "5x" is not a duration"#,
        ),
        (
            "      - alert: A\n        expr: up\n        keep_firing_for: 1h5h\n",
            6,
            "keep_firing_for",
        ),
        (
            "      - alert: A\n        expr: up\n        labels: {9lives: x}\n",
            6,
            r#"invalid label name "9lives""#,
        ),
        (
            "      - alert: A\n        expr: up\n        labels: {__name__: x}\n",
            6,
            r#"invalid label name "__name__""#,
        ),
        (
            "      - alert: A\n        expr: up\n        annotations: {bad.name: x}\n",
            6,
            r#"invalid annotation name "bad.name""#,
        ),
        (
            "      - alert: A\n        expr: up\n        labels: [a]\n",
            6,
            "labels must be a mapping, found a list",
        ),
        (
            "      - alert: A\n        expr: up\n        annotations:\n          x: [1]\n",
            7,
            "must be a string, found a list",
        ),
        (
            "      - alert: A\n        expr: {a: b}\n",
            5,
            "expr must be a string, found a mapping",
        ),
        (
            "      - alert: A\n        expr: up\n        for: 5m\n        for: 6m\n",
            7,
            r#"key "for" is repeated (first at line 6)"#,
        ),
        (
            "      - just a string\n",
            4,
            "expected a mapping, found a string",
        ),
    ];
    for (rule, line, needle) in cases {
        single_error(&format!("{head}{rule}"), *line, needle);
    }
}

#[test]
fn template_errors_point_into_the_value() {
    let head = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n";
    let e = single_error(
        &format!(
            "{head}        annotations:\n          summary: \"{{{{ $value | humanise }}}}\"\n"
        ),
        7,
        r#"annotation "summary": invalid template: function "humanise" not defined (template 1:13)"#,
    );
    // `          summary: "` is 20 characters; the template's column 13 follows them.
    assert_eq!(e.column, 21 + 12);
    let e = single_error(
        &format!("{head}        labels:\n          team: \"{{{{ $labels.team\"\n"),
        7,
        "unclosed action",
    );
    assert_eq!(e.column, 18);
    let e = single_error(
        &format!(
            "{head}        annotations:\n          description: |\n            line one\n            {{{{ query \"up\" }}}}\n"
        ),
        9,
        r#"function "query" is not supported in Lumen templates"#,
    );
    assert_eq!(e.column, 16);
    single_error(
        &format!("{head}        annotations:\n          a: \"{{{{ if true }}}}\"\n"),
        7,
        "has no {{end}}",
    );
}

#[test]
fn yaml_syntax_errors_have_positions() {
    let e = single_error(
        "groups:\n  - name: \"unterminated\n    rules: []\n",
        2,
        "YAML syntax error",
    );
    assert_eq!(e.column, 11);
    single_error(
        "groups:\n  - name: a\n   rules: []\n",
        3,
        "YAML syntax error",
    );
    single_error("groups:\n\t- name: a\n", 2, "YAML syntax error");
    single_error("groups: []\n---\ngroups: []\n", 2, "one YAML document");
    single_error("groups: *nope\n", 1, "YAML syntax error");
}

#[test]
fn hostile_yaml_is_refused_without_blowing_up() {
    let deep = "[".repeat(200) + &"]".repeat(200);
    single_error(&format!("groups: {deep}\n"), 1, "nested more than");
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..8 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [{}]\n",
            vec![
                if i == 1 {
                    "*a".to_string()
                } else {
                    format!("*b{}", i - 1)
                };
                10
            ]
            .join(", ")
        ));
    }
    let errors = errors(&bomb);
    assert!(
        errors
            .iter()
            .any(|e| e.message.contains("aliases expand to more than")),
        "{errors:#?}"
    );
    for odd in [
        "{",
        "}",
        "[",
        "]",
        ":",
        "- - -",
        "? a",
        "!!binary x",
        "&a",
        "groups: [",
        "'",
        "\"\\",
        "%YAML 1.2\n---\n",
        "\u{feff}groups: []",
    ] {
        let _ = parse_rule_file(Path::new("odd.yml"), odd);
    }
}

#[test]
fn loads_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yml"),
        "groups:\n  - name: b\n    rules:\n      - record: r\n        expr: up\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("a.yaml"), "groups:\n  - name: a\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not rules").unwrap();
    std::fs::create_dir(dir.path().join("nested.yml")).unwrap();
    let groups = load(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(groups[1].file, dir.path().join("b.yml"));

    // Same group name in two files is fine; errors from every file are collected.
    std::fs::write(
        dir.path().join("c.yml"),
        "groups:\n  - name: a\n    rules:\n      - alert: X\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.yml");
    let errors = load(&[dir.path().to_path_buf(), missing.clone()]).unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].file, missing);
    assert_eq!(errors[0].line, 0);
    assert!(
        errors[0]
            .to_string()
            .starts_with(&format!("{}: cannot read", missing.display()))
    );
    assert_eq!(
        (errors[1].file.clone(), errors[1].line),
        (dir.path().join("c.yml"), 4)
    );

    std::fs::write(dir.path().join("bin.yml"), [0xff, 0xfe, 0x00]).unwrap();
    let errors = load_file(&dir.path().join("bin.yml")).unwrap_err();
    assert!(errors[0].message.contains("not UTF-8"));
}

#[test]
fn random_yaml_soup_never_panics() {
    let pieces = [
        "groups:",
        "\n",
        "  ",
        "- ",
        "name: ",
        "g",
        "rules:",
        "alert: ",
        "record: ",
        "expr: ",
        "sql: ",
        "up",
        "for: ",
        "5m",
        "labels:",
        "annotations:",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        "\"{{ $value }}\"",
        "'",
        "\"",
        "&a ",
        "*a",
        "<<: ",
        "|",
        ">",
        "#",
        "---",
        "\t",
        "~",
        "SELECT 1",
        "interval: ",
        "limit: ",
        "-1",
        "é",
    ];
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..5_000 {
        let len = next() % 40;
        let text: String = (0..len)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        let _ = parse_rule_file(Path::new("soup.yml"), &text);
    }
}
