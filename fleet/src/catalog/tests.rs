use super::*;

#[test]
fn isbns_have_valid_check_digits() {
    let mut rng = Rng::new(3);
    for _ in 0..100 {
        let isbn = isbn13(&mut rng);
        assert_eq!(isbn.len(), 13);
        let sum: u32 = isbn
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        assert_eq!(sum % 10, 0, "{isbn}");
    }
}

#[test]
fn reserve_and_release_move_stock() {
    let mut c = Catalog::new(&mut Rng::new(1));
    let before = c.stock(0);
    assert!(c.reserve(0, 2));
    assert_eq!(c.stock(0), before - 2);
    assert!(!c.reserve(0, before));
    c.release(0, 2);
    assert_eq!(c.stock(0), before);
}
