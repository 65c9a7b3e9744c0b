use std::collections::BTreeMap;

use super::gofmt::{format_4g, format_float_v, sprintf};
use super::value::Value;
use super::*;

/// The same templates rendered by Prometheus and by Lumen.
mod prometheus;

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("alertname".to_string(), "HighLatency".to_string()),
        ("instance".to_string(), "web-1.example.com:9090".to_string()),
        ("job".to_string(), "api".to_string()),
    ])
}

fn external() -> BTreeMap<String, String> {
    BTreeMap::from([("cluster".to_string(), "eu-1".to_string())])
}

/// Renders `text` for the standard labels and `value`.
fn render_value(text: &str, value: f64) -> Result<String, TemplateError> {
    let labels = labels();
    let external = external();
    let data = TemplateData {
        labels: &labels,
        value,
        external_labels: &external,
        external_url: "http://lumen:9090/prefix",
    };
    Template::parse(text)?.render(&data)
}

fn render(text: &str) -> String {
    match render_value(text, 0.5) {
        Ok(out) => out,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn parse_error(text: &str) -> TemplateError {
    match Template::parse(text) {
        Ok(_) => panic!("{text:?} parsed"),
        Err(e) => e,
    }
}

fn render_error(text: &str) -> TemplateError {
    match render_value(text, 0.5) {
        Ok(out) => panic!("{text:?} rendered {out:?}"),
        Err(e) => e,
    }
}

#[test]
fn plain_text_and_variables() {
    assert_eq!(render("plain text"), "plain text");
    assert_eq!(render(""), "");
    assert_eq!(render("{{ $labels.job }}"), "api");
    assert_eq!(render("{{ .Labels.job }}"), "api");
    assert_eq!(render("{{ $value }}"), "0.5");
    assert_eq!(render("{{ .Value }}"), "0.5");
    assert_eq!(render("{{ $externalLabels.cluster }}"), "eu-1");
    assert_eq!(render("{{ .ExternalLabels.cluster }}"), "eu-1");
    assert_eq!(render("{{ $externalURL }}"), "http://lumen:9090/prefix");
    assert_eq!(render("{{ .ExternalURL }}"), "http://lumen:9090/prefix");
    assert_eq!(render("{{ $.Labels.job }}"), "api");
    assert_eq!(render(r#"{{ index $labels "job" }}"#), "api");
    assert_eq!(
        render("Instance {{ $labels.instance }} down"),
        "Instance web-1.example.com:9090 down"
    );
}

#[test]
fn missing_labels_render_empty() {
    assert_eq!(render("[{{ $labels.nope }}]"), "[]");
    assert_eq!(render("[{{ .Labels.nope }}]"), "[]");
    assert_eq!(render(r#"[{{ index $labels "nope" }}]"#), "[]");
}

#[test]
fn value_prints_like_go() {
    let cases = [
        (0.5, "0.5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (100000.0, "100000"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (1e21, "1e+21"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (0.1 + 0.2, "0.30000000000000004"),
        (-2.5, "-2.5"),
        (1e100, "1e+100"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
    ];
    for (value, want) in cases {
        assert_eq!(format_float_v(value), want, "{value}");
        assert_eq!(render_value("{{ $value }}", value).unwrap(), want);
    }
}

#[test]
fn four_significant_digits_like_go() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (1.2345, "1.234"),
        (1.23456, "1.235"),
        (12.345, "12.35"),
        (100000.0, "1e+05"),
        (1234.5, "1234"),
        (12345.0, "1.234e+04"),
        (0.0001234, "0.0001234"),
        (0.00001234, "1.234e-05"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
    ];
    for (value, want) in cases {
        assert_eq!(format_4g(value), want, "{value}");
    }
}

#[test]
fn humanize() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (1234567.0, "1.235M"),
        (0.12, "120m"),
        (0.001234, "1.234m"),
        (1000.0, "1k"),
        (-1500.0, "-1.5k"),
        (1e27, "1000Y"),
        (1.5e-7, "150n"),
        (f64::INFINITY, "+Inf"),
        (f64::NEG_INFINITY, "-Inf"),
        (f64::NAN, "NaN"),
    ];
    for (value, want) in cases {
        assert_eq!(
            render_value("{{ humanize $value }}", value).unwrap(),
            want,
            "{value}"
        );
        assert_eq!(
            render_value("{{ $value | humanize }}", value).unwrap(),
            want,
            "{value}"
        );
    }
    assert_eq!(render(r#"{{ "1234567" | humanize }}"#), "1.235M");
    assert_eq!(render("{{ humanize 2048 }}"), "2.048k");
}

#[test]
fn humanize_1024() {
    let cases = [
        (0.0, "0"),
        (1.0, "1"),
        (1048576.0, "1Mi"),
        (0.12, "0.12"),
        (1536.0, "1.5ki"),
        (f64::NAN, "NaN"),
    ];
    for (value, want) in cases {
        assert_eq!(
            render_value("{{ humanize1024 $value }}", value).unwrap(),
            want,
            "{value}"
        );
    }
}

#[test]
fn humanize_duration() {
    let cases = [
        (0.0, "0s"),
        (1.0, "1s"),
        (60.0, "1m 0s"),
        (3600.0, "1h 0m 0s"),
        (3725.0, "1h 2m 5s"),
        (86400.0, "1d 0h 0m 0s"),
        (90061.0, "1d 1h 1m 1s"),
        (
            -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
            "-2d 3h 4m 5s",
        ),
        (899.99, "14m 59s"),
        (0.5, "500ms"),
        (0.1, "100ms"),
        (0.0001, "100us"),
        (0.12345, "123.5ms"),
        (60.5, "1m 0s"),
        (1.2345, "1.234s"),
        (12.345, "12.35s"),
        (f64::INFINITY, "+Inf"),
        (f64::NAN, "NaN"),
    ];
    for (value, want) in cases {
        assert_eq!(
            render_value("{{ humanizeDuration $value }}", value).unwrap(),
            want,
            "{value}"
        );
    }
}

#[test]
fn humanize_percentage_and_timestamp() {
    assert_eq!(
        render_value("{{ humanizePercentage $value }}", 0.1234).unwrap(),
        "12.34%"
    );
    assert_eq!(
        render(
            "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}"
        ),
        "-22.22%:0%:12.35%:123.5%"
    );
    assert_eq!(
        render("{{ 1435065584.128 | humanizeTimestamp }}"),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        render("{{ 1435065584 | humanizeTimestamp }}"),
        "2015-06-23 13:19:44 +0000 UTC"
    );
    assert_eq!(
        render("{{ 0.1 | humanizeTimestamp }}"),
        "1970-01-01 00:00:00.1 +0000 UTC"
    );
    assert_eq!(
        render_value("{{ humanizeTimestamp $value }}", f64::INFINITY).unwrap(),
        "+Inf"
    );
    let err = render_error("{{ humanizeTimestamp 1e300 }}");
    assert!(err.message.contains("overflows int64"), "{err}");
}

#[test]
fn humanize_rejects_what_does_not_convert() {
    let err = render_error(r#"{{ humanize "abc" }}"#);
    assert_eq!(err.line, 1);
    assert_eq!(err.column, 4);
    assert_eq!(
        err.message,
        r#"at <humanize "abc">: error calling humanize: strconv.ParseFloat: parsing "abc": invalid syntax"#
    );
    let err = render_error("{{ humanize $labels }}");
    assert!(
        err.message
            .ends_with("can't convert map[string]string to float"),
        "{err}"
    );
    let err = render_error("{{ true | humanizeDuration }}");
    assert!(
        err.message.ends_with("can't convert bool to float"),
        "{err}"
    );
}

#[test]
fn printf() {
    assert_eq!(render(r#"{{ printf "%.2f" $value }}"#), "0.50");
    assert_eq!(render(r#"{{ $value | printf "%.2f" }}"#), "0.50");
    assert_eq!(
        render(r#"{{ printf "%s is %d" $labels.job 42 }}"#),
        "api is 42"
    );
    assert_eq!(render(r#"{{ printf "%f" 1.5 }}"#), "1.500000");
    assert_eq!(render(r#"{{ printf "%g" 1234567.0 }}"#), "1.234567e+06");
    assert_eq!(render(r#"{{ printf "%.3g" 1234.5 }}"#), "1.23e+03");
    assert_eq!(render(r#"{{ printf "%e" 1234.5 }}"#), "1.234500e+03");
    assert_eq!(
        render(r#"{{ printf "%v|%v|%v" 1.5 "x" true }}"#),
        "1.5|x|true"
    );
    assert_eq!(render(r#"{{ printf "%q" "a\"b" }}"#), r#""a\"b""#);
    assert_eq!(
        render(r#"{{ printf "%x %X %x" 255 255 "hi" }}"#),
        "ff FF 6869"
    );
    assert_eq!(
        render(r#"{{ printf "[%5d][%-5d][%05d][%+d]" 42 42 42 42 }}"#),
        "[   42][42   ][00042][+42]"
    );
    assert_eq!(
        render(r#"{{ printf "[%8.3f][%-8.2f][%08.3f]" 3.14159 2.5 -3.14159 }}"#),
        "[   3.142][2.50    ][-003.142]"
    );
    assert_eq!(
        render(r#"{{ printf "[%6s][%-6s][%.2s]" "ab" "ab" "abc" }}"#),
        "[    ab][ab    ][ab]"
    );
    assert_eq!(render(r#"{{ printf "100%%" }}"#), "100%");
    assert_eq!(render(r#"{{ printf "%*d" 4 7 }}"#), "   7");
    assert_eq!(render(r#"{{ printf "%c" 65 }}"#), "A");
    assert_eq!(render(r#"{{ printf "%t" false }}"#), "false");
    assert_eq!(
        render(r#"{{ printf "%v" $labels }}"#),
        "map[alertname:HighLatency instance:web-1.example.com:9090 job:api]"
    );
}

#[test]
fn printf_reports_mistakes_in_band_like_go() {
    assert_eq!(render(r#"{{ printf "%d" 1.5 }}"#), "%!d(float64=1.5)");
    assert_eq!(render(r#"{{ printf "%s" 7 }}"#), "%!s(int=7)");
    assert_eq!(render(r#"{{ printf "%d %d" 1 }}"#), "1 %!d(MISSING)");
    assert_eq!(
        render(r#"{{ printf "x" 1 "a" }}"#),
        "x%!(EXTRA int=1, string=a)"
    );
    assert_eq!(render(r#"{{ printf "%" }}"#), "%!(NOVERB)");
    assert_eq!(sprintf("%z", &[Value::Bool(true)]), "%!z(bool=true)");
}

#[test]
fn string_functions() {
    assert_eq!(render(r#"{{ "aa bb CC" | title }}"#), "Aa Bb CC");
    assert_eq!(
        render(r#"{{ "hello-world_foo.bar" | title }}"#),
        "Hello-World_foo.Bar"
    );
    assert_eq!(render(r#"{{ "aa bb CC" | toUpper }}"#), "AA BB CC");
    assert_eq!(render(r#"{{ "aA bB CC" | toLower }}"#), "aa bb cc");
    assert_eq!(render(r#"{{ toUpper "straße" }}"#), "STRAßE");
    assert_eq!(
        render(r#"{{ match "a+" "aa" }} {{ match "^a+$" "b" }}"#),
        "true false"
    );
    assert_eq!(render(r#"{{ reReplaceAll "(a)b" "x$1" "ab" }}"#), "xa");
    assert_eq!(
        render(r#"{{ reReplaceAll ":.*" "" $labels.instance }}"#),
        "web-1.example.com"
    );
    assert_eq!(
        render(r#"{{ $labels.instance | reReplaceAll "\\..*" "" }}"#),
        "web-1"
    );
    assert_eq!(render(r#"{{ "<b>" | safeHtml }}"#), "<b>");
    assert_eq!(render(r#"{{ "<b>" }}"#), "<b>");
    assert_eq!(
        render(r#"{{ html "<a href='x'>&</a>" }}"#),
        "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
    );
    assert_eq!(
        render(r#"{{ urlquery "a b&c=d/é" }}"#),
        "a+b%26c%3Dd%2F%C3%A9"
    );
    assert_eq!(render(r#"{{ parseDuration "1m30s" }}"#), "90");
    assert_eq!(
        render("{{ externalURL }}|{{ pathPrefix }}"),
        "http://lumen:9090/prefix|/prefix"
    );
}

#[test]
fn host_functions() {
    let cases = [
        ("web-1.example.com:9090", "web-1.example.com", "web-1:9090"),
        ("web-1.example.com", "web-1.example.com", "web-1"),
        ("10.0.0.1:9100", "10.0.0.1", "10.0.0.1:9100"),
        ("[::1]:9100", "::1", "[::1]:9100"),
        ("::1", "::1", "::1"),
        ("localhost", "localhost", "localhost"),
    ];
    for (input, port_stripped, domain_stripped) in cases {
        assert_eq!(
            render(&format!("{{{{ stripPort {input:?} }}}}")),
            port_stripped,
            "stripPort {input}"
        );
        assert_eq!(
            render(&format!("{{{{ stripDomain {input:?} }}}}")),
            domain_stripped,
            "stripDomain {input}"
        );
    }
    assert_eq!(
        render("{{ $labels.instance | stripPort }}"),
        "web-1.example.com"
    );
}

#[test]
fn conditionals_and_truth() {
    assert_eq!(
        render_value("{{ if gt $value 0.8 }}high{{ else }}ok{{ end }}", 0.9).unwrap(),
        "high"
    );
    assert_eq!(
        render_value("{{ if gt $value 0.8 }}high{{ else }}ok{{ end }}", 0.1).unwrap(),
        "ok"
    );
    let chain =
        "{{ if gt $value 10.0 }}big{{ else if gt $value 1.0 }}medium{{ else }}small{{ end }}";
    assert_eq!(render_value(chain, 50.0).unwrap(), "big");
    assert_eq!(render_value(chain, 5.0).unwrap(), "medium");
    assert_eq!(render_value(chain, 0.5).unwrap(), "small");
    // Integers compare with floats by value in Lumen (Go would refuse).
    assert_eq!(
        render_value("{{ if ge $value 80 }}hot{{ end }}", 90.0).unwrap(),
        "hot"
    );
    assert_eq!(
        render(r#"{{ if eq $labels.job "api" }}yes{{ end }}"#),
        "yes"
    );
    assert_eq!(
        render(r#"{{ if ne $labels.job "api" }}yes{{ else }}no{{ end }}"#),
        "no"
    );
    assert_eq!(
        render(r#"{{ if eq $labels.job "db" "api" }}one of{{ end }}"#),
        "one of"
    );
    assert_eq!(
        render(r#"{{ if and $labels.job (not $labels.nope) }}ok{{ end }}"#),
        "ok"
    );
    assert_eq!(render(r#"{{ or $labels.nope "fallback" }}"#), "fallback");
    assert_eq!(render(r#"{{ and 1 0 2 }}|{{ or 0 "" 3 }}"#), "0|3");
    assert_eq!(
        render(r#"{{ if $labels.nope }}set{{ else }}unset{{ end }}"#),
        "unset"
    );
    assert_eq!(
        render(r#"{{ if lt "a" "b" }}lt{{ end }}{{ if le 2 2 }}le{{ end }}"#),
        "ltle"
    );
    assert_eq!(render("{{ len $labels }} {{ len $labels.job }}"), "3 3");
    assert_eq!(
        render(r#"{{ with $labels.job }}job={{ . }}{{ end }}"#),
        "job=api"
    );
    assert_eq!(
        render(r#"{{ with $labels.nope }}x{{ else }}none{{ end }}"#),
        "none"
    );
    assert_eq!(
        render(r#"{{ with $labels.nope }}x{{ else with $labels.job }}{{ . }}{{ end }}"#),
        "api"
    );
    assert_eq!(
        render(r#"{{ if true }}{{ $x := "in" }}{{ $x }}{{ end }}"#),
        "in"
    );
    assert_eq!(
        render(r#"{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"#),
        "2"
    );
}

#[test]
fn range_over_labels() {
    assert_eq!(
        render("{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"),
        "alertname=HighLatency;instance=web-1.example.com:9090;job=api;"
    );
    assert_eq!(
        render("{{ range $labels }}[{{ . }}]{{ end }}"),
        "[HighLatency][web-1.example.com:9090][api]"
    );
    assert_eq!(
        render("{{ range $externalLabels }}{{ . }}{{ else }}none{{ end }}"),
        "eu-1"
    );
    assert_eq!(
        render(
            "{{ range $k, $v := $labels }}{{ if eq $k \"instance\" }}{{ break }}{{ end }}{{ $k }} {{ end }}"
        ),
        "alertname "
    );
    assert_eq!(
        render(
            "{{ range $k, $v := $labels }}{{ if eq $k \"instance\" }}{{ continue }}{{ end }}{{ $k }} {{ end }}"
        ),
        "alertname job "
    );
    assert_eq!(render("{{ range $i := 3 }}{{ $i }}{{ end }}"), "012");
}

#[test]
fn trimming_and_comments() {
    assert_eq!(render("a  {{- $labels.job -}}  b"), "aapib");
    assert_eq!(render("a \n {{- /* a comment */ -}} \n b"), "ab");
    assert_eq!(render("a{{/* comment */}}b"), "ab");
    assert_eq!(render("{{ if true -}}\n  yes\n{{- end }}"), "yes");
    assert_eq!(render("{{-3}}"), "-3");
}

#[test]
fn literals() {
    assert_eq!(
        render(r#"{{ "quoted\tstring" }}|{{ `raw\n` }}"#),
        "quoted\tstring|raw\\n"
    );
    assert_eq!(
        render("{{ 42 }}|{{ -7 }}|{{ 1.5 }}|{{ 1e3 }}|{{ 0x1F }}|{{ 'a' }}|{{ true }}"),
        "42|-7|1.5|1000|31|97|true"
    );
    assert_eq!(render(r#"{{ print 1 2 "a" "b" 3 }}"#), "1 2ab3");
    assert_eq!(render(r#"{{ println "a" 1 }}"#), "a 1\n");
    assert_eq!(render("{{ (humanize 1000) }}"), "1k");
}

#[test]
fn parse_errors_name_the_problem_and_where() {
    let err = parse_error("{{ humanise $value }}");
    assert_eq!((err.line, err.column), (1, 4));
    assert_eq!(err.message, r#"function "humanise" not defined"#);
    assert_eq!(err.to_string(), r#"1:4: function "humanise" not defined"#);

    let err = parse_error("line one\n  {{ $labels.job ");
    assert_eq!((err.line, err.column), (2, 3));
    assert_eq!(err.message, "unclosed action");

    let err = parse_error(r#"{{ query "up" | first | value }}"#);
    assert_eq!(
        err.message,
        r#"function "query" is not supported in Lumen templates"#
    );
    for name in ["first", "label", "sortByLabel", "args", "tmpl", "graphLink"] {
        let err = parse_error(&format!("{{{{ {name} }}}}"));
        assert!(
            err.message.contains("not supported in Lumen templates"),
            "{name}: {err}"
        );
    }
    assert!(
        parse_error(r#"{{ template "x" }}"#)
            .message
            .contains("not supported")
    );
    assert!(
        parse_error(r#"{{ define "x" }}{{ end }}"#)
            .message
            .contains("not supported")
    );

    let cases = [
        ("{{ $nope }}", r#"undefined variable "$nope""#),
        ("{{ if true }}x", "unexpected EOF: {{if}} has no {{end}}"),
        ("{{ end }}", "unexpected {{end}}"),
        ("{{ else }}", "unexpected {{else}}"),
        ("{{ }}", "missing value for command"),
        ("{{ nil }}", "nil is not a command"),
        (
            "{{ humanize }}",
            "wrong number of args for humanize: want 1 got 0",
        ),
        (
            "{{ humanize 1 2 }}",
            "wrong number of args for humanize: want 1 got 2",
        ),
        ("{{ 1 | 2 }}", "non executable command in pipeline stage 2"),
        (
            "{{ $value 1 }}",
            "can't give argument to non-function $value 1",
        ),
        ("{{ break }}", "{{break}} outside {{range}}"),
        (r#"{{ "unterminated }}"#, "unterminated quoted string"),
        ("{{/* open", "unclosed comment"),
        ("{{/* c */ x }}", "comment ends before closing delimiter"),
        ("{{ 5m }}", r#"bad number syntax: "5m""#),
        ("{{ ( 1 }}", "unclosed left paren"),
        ("{{ 1 ) }}", "unexpected right paren"),
        ("{{ @ }}", "unrecognized character in action: U+0040"),
        (r#"{{ match "(" "x" }}"#, "regexp: Compile"),
        ("{{ $x = 1 }}", r#"undefined variable "$x""#),
    ];
    for (text, want) in cases {
        let err = parse_error(text);
        assert!(
            err.message.contains(want),
            "{text:?}: got {err}, want {want:?}"
        );
    }
}

#[test]
fn render_errors() {
    let err = render_error("{{ .Nope }}");
    assert!(err.message.contains("can't evaluate field Nope"), "{err}");
    let err = render_error("{{ $value.x }}");
    assert!(
        err.message
            .contains("can't evaluate field x in type float64"),
        "{err}"
    );
    let err = render_error(r#"{{ toUpper $value }}"#);
    assert!(
        err.message
            .contains("wrong type for value; expected string; got float64"),
        "{err}"
    );
    let err = render_error(r#"{{ if lt "a" 1 }}{{ end }}"#);
    assert!(
        err.message.contains("incompatible types for comparison"),
        "{err}"
    );
    let err = render_error(r#"{{ $p := "(" }}{{ match $p "x" }}"#);
    assert!(
        err.message.contains("error calling match: regexp: Compile"),
        "{err}"
    );
    let err = render_error("{{ range 1.5 }}{{ end }}");
    assert!(
        err.message.contains("range can't iterate over 1.5"),
        "{err}"
    );
    let err = render_error("{{ len 3 }}");
    assert!(err.message.contains("len of type int"), "{err}");
}

#[test]
fn runaway_templates_stop() {
    let nested = "{{ range 1000 }}".repeat(3) + "x" + &"{{ end }}".repeat(3);
    let err = render_error(&nested);
    assert!(
        err.message.contains("steps") || err.message.contains("longer than"),
        "{err}"
    );
    let deep = "{{ if true }}".repeat(200) + &"{{ end }}".repeat(200);
    assert!(parse_error(&deep).message.contains("nested more than"));
    let parens = "{{ ".to_string() + &"(".repeat(500) + "1" + &")".repeat(500) + " }}";
    assert!(parse_error(&parens).message.contains("nested more than"));
}

#[test]
fn literal_templates_keep_their_text() {
    let template = Template::literal("{{ not a template");
    assert_eq!(template.source(), "{{ not a template");
    assert!(template.is_plain_text());
    let labels = labels();
    let data = TemplateData {
        labels: &labels,
        value: 1.0,
        external_labels: &labels,
        external_url: "",
    };
    assert_eq!(template.render(&data).unwrap(), "{{ not a template");
    let parsed = Template::parse("summary {{ $value }}").unwrap();
    assert_eq!(parsed.source(), "summary {{ $value }}");
    assert!(!parsed.is_plain_text());
    assert!(Template::parse("just text").unwrap().is_plain_text());
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        "{{",
        "}}",
        "{{-",
        "-}}",
        "{{- -}}",
        "{{-}}",
        "{{ - }}",
        "{{ . }}",
        "{{ .. }}",
        "{{ $ }}",
        "{{ $.}}",
        "{{ ( }}",
        "{{ ) }}",
        "{{ | }}",
        "{{ 1 | }}",
        "{{ := }}",
        "{{ $x := }}",
        "{{ '' }}",
        "{{ 'ab' }}",
        "{{ '\\'' }}",
        "{{ \"\\x4\" }}",
        "{{ \"\\400\" }}",
        "{{ 0x }}",
        "{{ 1e }}",
        "{{ 99999999999999999999 }}",
        "{{ 1i }}",
        "{{ else if }}",
        "{{ if }}{{ end }}",
        "{{ range $a, $b, $c := $labels }}{{ end }}",
        "{{ with }}",
        "{{ printf }}",
        "{{ printf \"%[1]d\" 1 }}",
        "{{ printf \"%.*f\" -1 2.0 }}",
        "{{ index $labels 1 }}",
        "{{ index \"abc\" 10 }}",
        "{{ slice \"abc\" 1 }}",
        "é{{ \"ü\" }}ß",
        "{{ 'é' }}",
        "{{/**/}}",
        "{{ -.5 }}",
        "{{ +1 }}",
        "{{ .Labels.job.x }}",
        "{{ $labels.job.x }}",
        "{{ (1).x }}",
        "{{ \"a\".x }}",
        "{{ printf \"%99999999999d\" 1 }}",
        "{{ range $labels }}{{ break }}{{ else }}{{ end }}",
    ];
    for text in odd {
        let _ = render_value(text, f64::NAN);
    }
}

/// Tiny deterministic generator for the robustness tests.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn random_token_soup_never_panics() {
    let pieces = [
        "{{",
        "}}",
        "{{- ",
        " -}}",
        " ",
        "$labels",
        "$value",
        ".",
        ".Labels",
        ".job",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2.5",
        "0x1f",
        "1e300",
        "if",
        "else",
        "end",
        "with",
        "range",
        "break",
        "continue",
        "nil",
        "true",
        "humanize",
        "printf",
        "\"%d %s %v %.2f %x %q %*d %!\"",
        "index",
        "len",
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "slice",
        "match",
        "reReplaceAll",
        "\"(\"",
        "humanizeTimestamp",
        "/*",
        "*/",
        ",",
        "é",
        "\n",
        "text",
    ];
    let labels = labels();
    let data = TemplateData {
        labels: &labels,
        value: 0.5,
        external_labels: &labels,
        external_url: "x",
    };
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..20_000 {
        let len = xorshift(&mut state) % 24;
        let text: String = (0..len)
            .map(|_| pieces[(xorshift(&mut state) % pieces.len() as u64) as usize])
            .collect();
        if let Ok(template) = Template::parse(&text) {
            let _ = template.render(&data);
        }
    }
}
