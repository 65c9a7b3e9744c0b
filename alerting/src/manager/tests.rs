use super::*;

#[test]
fn ticks_are_aligned_to_the_group_grid() {
    assert_eq!(next_tick(1_000, 1_000, 0), 1_000);
    assert_eq!(next_tick(1_001, 1_000, 0), 2_000);
    assert_eq!(next_tick(1_001, 1_000, 250), 1_250);
    assert_eq!(next_tick(1_250, 1_000, 250), 1_250);
    let offset = group_offset("f", "g", 60_000);
    assert!((0..60_000).contains(&offset));
}
