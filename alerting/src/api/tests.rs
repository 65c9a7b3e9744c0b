use super::*;

#[test]
fn values_are_formatted_like_prometheus() {
    assert_eq!(format_value(1.0), "1e+00");
    assert_eq!(format_value(0.5), "5e-01");
    assert_eq!(format_value(123.45), "1.2345e+02");
    assert_eq!(format_value(-2.5e-7), "-2.5e-07");
    assert_eq!(format_value(1e100), "1e+100");
    assert_eq!(format_value(f64::NAN), "NaN");
    assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
}

#[test]
fn query_parameters_repeat_and_decode() {
    let p = params(Some(
        "rule_name[]=A%20B&rule_name%5B%5D=C&type=alert".into(),
    ));
    assert_eq!(p[0], ("rule_name[]".to_string(), "A B".to_string()));
    assert_eq!(p[1], ("rule_name[]".to_string(), "C".to_string()));
}
