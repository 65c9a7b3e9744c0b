use super::*;

#[test]
fn encodes_form_values() {
    assert_eq!(
        form_encode("sum by (job) (x{a=\"b\"})"),
        "sum%20by%20%28job%29%20%28x%7Ba%3D%22b%22%7D%29"
    );
}

#[test]
fn selective_query_names_an_existing_target() {
    let q = queries(10_000, &["selective".to_string()]);
    assert_eq!(q.len(), 1);
    assert!(
        q[0].promql.contains("instance=\"10.0.19.136:9100\""),
        "{}",
        q[0].promql
    );
}
