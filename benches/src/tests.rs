use super::*;

#[test]
fn parses_counts() {
    assert_eq!(parse_count("10M"), Ok(10_000_000));
    assert_eq!(parse_count("1.5k"), Ok(1_500));
    assert_eq!(parse_count("123"), Ok(123));
    assert!(parse_count("-1").is_err());
}
