use super::*;

#[test]
fn renders_vectors_as_aligned_rows() {
    let data = serde_json::json!({"resultType": "vector", "result": [
        {"metric": {"__name__": "up", "job": "node"}, "value": [4, "1"]}
    ]});
    let text = render(&data);
    assert!(
        text.contains("up{job=\"node\"} | 1970-01-01T00:00:04.000Z | 1"),
        "{text}"
    );
    assert!(text.ends_with("(1 sample)\n"));
    assert_eq!(
        time_text(&serde_json::json!(1435781451.781)),
        "2015-07-01T20:10:51.781Z"
    );
    assert_eq!(percent_encode("rate(x[1m])+1"), "rate%28x%5B1m%5D%29%2B1");
}
