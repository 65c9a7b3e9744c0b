//! The same templates and data rendered by Prometheus and by Lumen must give the same text.

use std::collections::BTreeMap;

use super::super::*;

// What Prometheus 2.42 renders (captured with `promtool test rules`) for the same templates and
// data: labels {__name__="m", instance="web-1.example.com:9090", job="api"}, value 0.5, external
// labels {cluster="eu-1"}, external URL http://lumen:9090/prefix.

const VALUE_TEMPLATE: &str = r#"{{ $value }}|{{ humanize $value }}|{{ humanize1024 $value }}|{{ humanizeDuration $value }}|{{ humanizePercentage $value }}|{{ printf "%.2f" $value }}|{{ printf "%g|%e|%v|%8.3f|%-8.2e|%+.1f" $value $value $value $value $value $value }}|{{ printf "%d" $value }}"#;

const VALUE_CASES: &[(f64, &str)] = &[
    (
        1e6,
        r#"1e+06|1M|976.6ki|11d 13h 46m 40s|1e+08%|1000000.00|1e+06|1.000000e+06|1e+06|1000000.000|1.00e+06|+1000000.0|%!d(float64=1e+06)"#,
    ),
    (
        1234567.0,
        r#"1.234567e+06|1.235M|1.177Mi|14d 6h 56m 7s|1.235e+08%|1234567.00|1.234567e+06|1.234567e+06|1.234567e+06|1234567.000|1.23e+06|+1234567.0|%!d(float64=1.234567e+06)"#,
    ),
    (
        100000.0,
        r#"100000|100k|97.66ki|1d 3h 46m 40s|1e+07%|100000.00|100000|1.000000e+05|100000|100000.000|1.00e+05|+100000.0|%!d(float64=100000)"#,
    ),
    (
        123456.0,
        r#"123456|123.5k|120.6ki|1d 10h 17m 36s|1.235e+07%|123456.00|123456|1.234560e+05|123456|123456.000|1.23e+05|+123456.0|%!d(float64=123456)"#,
    ),
    (
        0.00001,
        r#"1e-05|10u|1e-05|10us|0.001%|0.00|1e-05|1.000000e-05|1e-05|   0.000|1.00e-05|+0.0|%!d(float64=1e-05)"#,
    ),
    (
        0.0001,
        r#"0.0001|100u|0.0001|100us|0.01%|0.00|0.0001|1.000000e-04|0.0001|   0.000|1.00e-04|+0.0|%!d(float64=0.0001)"#,
    ),
    (
        1e21,
        r#"1e+21|1Z|867.4Ei|-106751991167300d -15h -30m -8s|1e+23%|1000000000000000000000.00|1e+21|1.000000e+21|1e+21|1000000000000000000000.000|1.00e+21|+1000000000000000000000.0|%!d(float64=1e+21)"#,
    ),
    (
        1e20,
        r#"1e+20|100E|86.74Ei|-106751991167300d -15h -30m -8s|1e+22%|100000000000000000000.00|1e+20|1.000000e+20|1e+20|100000000000000000000.000|1.00e+20|+100000000000000000000.0|%!d(float64=1e+20)"#,
    ),
    (
        0.5,
        r#"0.5|500m|0.5|500ms|50%|0.50|0.5|5.000000e-01|0.5|   0.500|5.00e-01|+0.5|%!d(float64=0.5)"#,
    ),
    (
        -0.0,
        r#"-0|-0|-0|-0s|-0%|-0.00|-0|-0.000000e+00|-0|  -0.000|-0.00e+00|-0.0|%!d(float64=-0)"#,
    ),
    (
        0.1 + 0.2,
        r#"0.30000000000000004|300m|0.3|300ms|30%|0.30|0.30000000000000004|3.000000e-01|0.30000000000000004|   0.300|3.00e-01|+0.3|%!d(float64=0.30000000000000004)"#,
    ),
    (
        1.5e-7,
        r#"1.5e-07|150n|1.5e-07|150ns|1.5e-05%|0.00|1.5e-07|1.500000e-07|1.5e-07|   0.000|1.50e-07|+0.0|%!d(float64=1.5e-07)"#,
    ),
    (
        -2.5,
        r#"-2.5|-2.5|-2.5|-2.5s|-250%|-2.50|-2.5|-2.500000e+00|-2.5|  -2.500|-2.50e+00|-2.5|%!d(float64=-2.5)"#,
    ),
    (
        1e100,
        r#"1e+100|1e+76Y|8.272e+75Yi|-106751991167300d -15h -30m -8s|1e+102%|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.00|1e+100|1.000000e+100|1e+100|10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.000|1.00e+100|+10000000000000000159028911097599180468360808563945281389781327557747838772170381060813469985856815104.0|%!d(float64=1e+100)"#,
    ),
];
const TEMPLATE_CASES: &[(&str, &str)] = &[
    (
        r#"{{ "hello-world_foo.bar aa" | title }}|{{ toUpper "straße" }}|{{ toLower "ÀB" }}"#,
        r#"Hello-World_foo.Bar Aa|STRAßE|àb"#,
    ),
    (
        r#"{{ reReplaceAll "(a)b" "x$1" "abab" }}|{{ match "^a+$" "aa" }}|{{ $labels.instance | stripPort }}|{{ stripPort "[::1]:80" }}|{{ stripPort "::1" }}|{{ stripPort "host:" }}"#,
        r#"xaxa|true|web-1.example.com|::1|::1|host"#,
    ),
    (
        r#"{{ printf "%q|%x|%X|%5s|%-5s|%.2s|%05d|%x|%c|%q|%U" "a\"b\n" "hi" 255 "ab" "ab" "abc" -42 255 65 65 65 }}"#,
        r#""a\"b\n"|6869|FF|   ab|ab   |ab|-0042|ff|A|'A'|U+0041"#,
    ),
    (
        r#"[{{ $labels.nope }}]|{{ index $labels "job" }}|{{ len $labels }}|{{ $labels }}"#,
        r#"[]|api|3|map[__name__:m instance:web-1.example.com:9090 job:api]"#,
    ),
    (
        r#"{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}"#,
        r#"__name__=m;instance=web-1.example.com:9090;job=api;"#,
    ),
    (
        r#"{{ print 1 2 "a" "b" 3 nil }}|{{ println "a" 1 }}|{{ printf "%v %s %d" true nil }}"#,
        r#"1 2ab3 <nil>|a 1
|true %!s(<nil>) %!d(MISSING)"#,
    ),
    (
        r#"{{ 1e3 }}|{{ 0x1F }}|{{ 010 }}|{{ 'a' }}|{{ 1.0 }}|{{ -7 }}|{{ 2e-5 }}"#,
        r#"1000|31|8|97|1|-7|2e-05"#,
    ),
    (
        r#"{{ and 1 0 2 }}|{{ or 0 "" 3 }}|{{ not 0 }}|{{ eq 1 1 2 }}|{{ html "<a href='x'>&</a>" }}|{{ urlquery "a b&c=d/é" }}"#,
        r#"0|3|true|true|&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;|a+b%26c%3Dd%2F%C3%A9"#,
    ),
    (
        r#"{{ printf "%6.2f|%-8.3g|%08.3f|% d|%+d|%x|%o|%b|%#x|%.3d|%t|%%" 3.14159 1234.5678 -3.14159 5 5 -255 8 5 255 7 true }}"#,
        r#"  3.14|1.23e+03|-003.142| 5|+5|-ff|10|101|0xff|007|true|%"#,
    ),
    (
        r#"{{ humanize "1234567" }}|{{ humanize 2048 }}|{{ humanizeDuration 60.5 }}|{{ humanize1024 1536 }}|{{ humanize 1e-30 }}|{{ humanizeDuration 1e-30 }}"#,
        r#"1.235M|2.048k|1m 0s|1.5ki|1e-06y|1e-06ys"#,
    ),
    (
        r#"{{ printf "%s" 7 }}|{{ printf "%d %d" 1 }}|{{ printf "x" 1 "a" }}|{{ printf "%" }}|{{ printf "%!" }}|{{ printf "%z" true }}|{{ printf "%*d|%-*d|%.*f" 4 7 4 7 2 3.14159 }}"#,
        r#"%!s(int=7)|1 %!d(MISSING)|x%!(EXTRA int=1, string=a)|%!(NOVERB)|%!!(MISSING)|%!z(bool=true)|   7|7   |3.14"#,
    ),
    (
        r#"{{ printf "%v|%s|%g|%e" .Value .Value 100000.0 0.0 }}|{{ printf "%08.3e|%+g|% g|%G|%E" 1234.5 1.5 1.5 1e-7 1e7 }}"#,
        r#"0.5|%!s(float64=0.5)|100000|0.000000e+00|1.234e+03|+1.5| 1.5|1E-07|1.000000E+07"#,
    ),
    (
        r#"{{ printf "%5t|%-5v|%3c|%05s|%.0f|%.0f|%.0f|%.1f" true 1 66 "ab" 0.5 1.5 2.5 0.25 }}"#,
        r#" true|1    |  B|000ab|0|2|2|0.2"#,
    ),
    (
        r#"{{ printf "%10.4v|%-10v|%010v|%.3v" 3.14159 2.5 -1.5 "abcdef" }}"#,
        r#"     3.142|2.5       |-0000001.5|abc"#,
    ),
    (
        r#"{{ printf "%.3s|%5.1s|%x|% x|%#x" "日本語" "日本語" "日本" "ab" "ab" }}"#,
        r#"日本語|    日|e697a5e69cac|61 62|0x6162"#,
    ),
    (
        r#"{{ len "日本" }}|{{ index "abc" 1 }}|{{ slice "abc" 1 2 }}"#,
        r#"6|98|b"#,
    ),
    (
        r#"{{ 1435065584.128 | humanizeTimestamp }}|{{ 0.1 | humanizeTimestamp }}|{{ -1.5 | humanizeTimestamp }}|{{ 1e9 | humanizeTimestamp }}"#,
        r#"2015-06-23 13:19:44.128 +0000 UTC|1970-01-01 00:00:00.1 +0000 UTC|1969-12-31 23:59:58.5 +0000 UTC|2001-09-09 01:46:40 +0000 UTC"#,
    ),
    (
        r#"{{ . }}"#,
        r#"{map[__name__:m instance:web-1.example.com:9090 job:api] map[cluster:eu-1] http://lumen:9090/prefix 0.5}"#,
    ),
    (
        r#"{{ stripDomain "web-1.example.com:9090" }}|{{ stripDomain "10.0.0.1:9100" }}|{{ stripDomain "[::1]:9100" }}|{{ stripDomain "a.b" }}|{{ stripDomain "[fe80::1%eth0]:80" }}"#,
        r#"web-1:9090|10.0.0.1:9100|[::1]:9100|a|[fe80::1%eth0]:80"#,
    ),
    (
        r#"{{ printf "%v" $value }}|{{ printf "%6.2v" 3.14159 }}|{{ printf "%+q" "é" }}|{{ printf "%#q" "ab" }}|{{ printf "%-6d|" 5 }}"#,
        r#"0.5|   3.1|"\u00e9"|`ab`|5     |"#,
    ),
    (
        r#"{{ parseDuration "1m30s" }}|{{ humanizePercentage 0.1234 }}"#,
        r#"90|12.34%"#,
    ),
];

#[test]
fn renders_what_prometheus_renders() {
    let labels = BTreeMap::from([
        ("__name__".to_string(), "m".to_string()),
        ("instance".to_string(), "web-1.example.com:9090".to_string()),
        ("job".to_string(), "api".to_string()),
    ]);
    let external = BTreeMap::from([("cluster".to_string(), "eu-1".to_string())]);
    let url = "http://lumen:9090/prefix";
    let value_template = Template::parse(VALUE_TEMPLATE).unwrap();
    for (value, want) in VALUE_CASES {
        let data = TemplateData {
            labels: &labels,
            value: *value,
            external_labels: &external,
            external_url: url,
        };
        assert_eq!(
            value_template.render(&data).unwrap(),
            *want,
            "value {value}"
        );
    }
    let data = TemplateData {
        labels: &labels,
        value: 0.5,
        external_labels: &external,
        external_url: url,
    };
    for (text, want) in TEMPLATE_CASES {
        let template = Template::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let got = template
            .render(&data)
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(got, *want, "{text}");
    }
}
