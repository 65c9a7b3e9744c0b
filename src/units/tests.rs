use super::*;

#[test]
fn sizes() {
    assert_eq!(parse_bytes("16MiB"), Ok(16 << 20));
    assert_eq!(parse_bytes("1GB"), Ok(1_000_000_000));
    assert_eq!(parse_bytes("4096"), Ok(4096));
    assert!(parse_bytes("lots").is_err());
    assert_eq!(format_bytes(1 << 30), "1GiB");
    assert_eq!(format_bytes(256 << 20), "256MiB");
    assert_eq!(format_bytes(1000), "1000");
    for bytes in [1, 1000, 1 << 10, 3 << 20, 16 << 20, 5 << 30] {
        assert_eq!(parse_bytes(&format_bytes(bytes)), Ok(bytes));
    }
}
