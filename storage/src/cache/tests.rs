use super::*;

#[test]
fn the_least_recently_used_go_first_and_the_newest_stays() {
    let cache: SizedCache<u32, u32> = SizedCache::new(100, Eviction::ToCapacity);
    cache.insert(1, 10, 40);
    cache.insert(2, 20, 40);
    assert_eq!(cache.get(&1), Some(10)); // 2 is now the least recently used
    cache.insert(3, 30, 40);
    assert_eq!(cache.get(&2), None);
    assert_eq!(cache.get(&1), Some(10));
    assert_eq!(cache.get(&3), Some(30));
    assert_eq!(cache.bytes(), 80);
    // An entry bigger than the capacity still stays alone: its reader holds it anyway.
    cache.insert(4, 40, 500);
    assert_eq!(cache.get(&4), Some(40));
    assert_eq!(cache.get(&1), None);
    assert_eq!(cache.bytes(), 500);
}

#[test]
fn three_quarters_eviction_frees_a_quarter_at_once() {
    let cache: SizedCache<u32, u32> = SizedCache::new(100, Eviction::ToThreeQuarters);
    for k in 0..10 {
        cache.insert(k, k, 10);
    }
    assert_eq!(cache.bytes(), 100);
    cache.insert(10, 10, 10);
    assert!(cache.bytes() <= 75, "{}", cache.bytes());
    assert_eq!(cache.get(&10), Some(10));
    assert_eq!(cache.get(&0), None);
    assert_eq!(cache.get(&9), Some(9));
}

#[test]
fn replacing_removing_and_resizing_keep_the_byte_count() {
    let cache: SizedCache<&'static str, u32> =
        SizedCache::new(100, Eviction::ToCapacity).with_max_entry(50);
    cache.insert("a", 1, 30);
    cache.insert("a", 2, 20);
    assert_eq!((cache.get("a"), cache.bytes()), (Some(2), 20));
    cache.insert("huge", 3, 60);
    assert!(!cache.contains("huge"));
    cache.insert("b", 4, 30);
    cache.remove("a");
    assert_eq!(cache.bytes(), 30);
    cache.insert_many([("c", 5, 30), ("d", 6, 30)]);
    cache.remove_where(|k| *k == "c");
    assert_eq!(cache.bytes(), 60);
    assert_eq!(
        cache.get_many([Some(&"b"), None, Some(&"c")]),
        vec![Some(4), None, None]
    );
    cache.set_capacity(40);
    assert_eq!(cache.bytes(), 30);
    cache.set_capacity(0);
    assert_eq!(cache.bytes(), 0);
    cache.insert("e", 7, 1);
    assert!(!cache.contains("e"));
}
