//! Answers of the query API, normalised, and their comparison.

use std::collections::BTreeMap;

use serde_json::Value;

/// Relative tolerance per value (absolute [`ABS_TOLERANCE`] near zero).
const REL_TOLERANCE: f64 = 1e-9;
const ABS_TOLERANCE: f64 = 1e-12;

/// A query's answer, normalised for comparison (labels as `{a="x", b="y"}` in name order).
#[derive(Debug)]
pub(super) enum Answer {
    Error(String),
    Scalar(i64, f64),
    Str(i64, String),
    /// In response order.
    Vector(Vec<(String, i64, f64)>),
    Matrix(BTreeMap<String, Vec<(i64, f64)>>),
}

fn label_key(metric: &Value) -> String {
    let map: BTreeMap<&str, &str> = metric
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("?")))
                .collect()
        })
        .unwrap_or_default();
    let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn point(p: &Value) -> (i64, f64) {
    let ts = (p[0].as_f64().unwrap_or(f64::NAN) * 1000.0).round() as i64;
    let v = match p[1].as_str().unwrap_or("") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or(f64::NAN),
    };
    (ts, v)
}

pub(super) fn parse_answer(body: &str) -> Answer {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return Answer::Error(format!("not JSON: {body}"));
    };
    if v["status"] != "success" {
        return Answer::Error(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("?"),
            v["error"].as_str().unwrap_or("?")
        ));
    }
    let result = &v["data"]["result"];
    let items = || result.as_array().cloned().unwrap_or_default();
    match v["data"]["resultType"].as_str() {
        Some("scalar") => {
            let (t, v) = point(result);
            Answer::Scalar(t, v)
        }
        Some("string") => Answer::Str(
            point(result).0,
            result[1].as_str().unwrap_or("").to_string(),
        ),
        Some("vector") => Answer::Vector(
            items()
                .iter()
                .map(|s| {
                    let (t, v) = point(&s["value"]);
                    (label_key(&s["metric"]), t, v)
                })
                .collect(),
        ),
        Some("matrix") => {
            let mut out = BTreeMap::new();
            for s in items() {
                let points = s["values"]
                    .as_array()
                    .map(|ps| ps.iter().map(point).collect())
                    .unwrap_or_default();
                out.insert(label_key(&s["metric"]), points);
            }
            Answer::Matrix(out)
        }
        other => Answer::Error(format!("unknown result type {other:?}")),
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    if a.is_infinite() || b.is_infinite() {
        return false;
    }
    let diff = (a - b).abs();
    diff <= ABS_TOLERANCE || diff <= REL_TOLERANCE * a.abs().max(b.abs())
}

/// What a comparison found: points compared, or that both sides rejected the query.
pub(super) enum Agreement {
    Points(usize),
    BothRejected,
}

fn compare_points(series: &str, l: &[(i64, f64)], p: &[(i64, f64)]) -> Result<usize, String> {
    if l.len() != p.len() {
        let lt: Vec<i64> = l.iter().map(|x| x.0).collect();
        let pt: Vec<i64> = p.iter().map(|x| x.0).collect();
        return Err(format!(
            "{series}: {} points in Lumen, {} in Prometheus (times {lt:?} vs {pt:?})",
            l.len(),
            p.len()
        ));
    }
    for ((lt, lv), (pt, pv)) in l.iter().zip(p) {
        if lt != pt || !close(*lv, *pv) {
            return Err(format!(
                "{series}: Lumen {lv} at {lt}, Prometheus {pv} at {pt}"
            ));
        }
    }
    Ok(l.len())
}

pub(super) fn compare(lumen: &Answer, prom: &Answer, ordered: bool) -> Result<Agreement, String> {
    match (lumen, prom) {
        (Answer::Error(_), Answer::Error(_)) => Ok(Agreement::BothRejected),
        (Answer::Error(e), _) => Err(format!("Lumen failed ({e}), Prometheus answered")),
        (_, Answer::Error(e)) => Err(format!("Prometheus failed ({e}), Lumen answered")),
        (Answer::Scalar(lt, lv), Answer::Scalar(pt, pv)) => {
            compare_points("scalar", &[(*lt, *lv)], &[(*pt, *pv)]).map(Agreement::Points)
        }
        (Answer::Str(lt, lv), Answer::Str(pt, pv)) => {
            if lt == pt && lv == pv {
                Ok(Agreement::Points(1))
            } else {
                Err(format!("string {lv:?} at {lt} vs {pv:?} at {pt}"))
            }
        }
        (Answer::Vector(l), Answer::Vector(p)) => {
            let lm: BTreeMap<&str, (i64, f64)> =
                l.iter().map(|(k, t, v)| (k.as_str(), (*t, *v))).collect();
            let pm: BTreeMap<&str, (i64, f64)> =
                p.iter().map(|(k, t, v)| (k.as_str(), (*t, *v))).collect();
            if lm.len() != l.len() || pm.len() != p.len() {
                return Err("a vector holds a label set twice".into());
            }
            let lk: Vec<&&str> = lm.keys().collect();
            let pk: Vec<&&str> = pm.keys().collect();
            if lk != pk {
                let only_l: Vec<&&str> = lk
                    .iter()
                    .copied()
                    .filter(|k| !pm.contains_key(**k))
                    .collect();
                let only_p: Vec<&&str> = pk
                    .iter()
                    .copied()
                    .filter(|k| !lm.contains_key(**k))
                    .collect();
                return Err(format!(
                    "series only in Lumen: {only_l:?}; only in Prometheus: {only_p:?}"
                ));
            }
            let mut n = 0;
            for (k, lp) in &lm {
                n += compare_points(k, &[*lp], &[pm[k]])?;
            }
            // Ties may come in either order, so the order check compares the values position by position.
            if ordered {
                for (i, (a, b)) in l.iter().zip(p).enumerate() {
                    if !close(a.2, b.2) {
                        return Err(format!(
                            "order differs at position {i}: Lumen {} {}, Prometheus {} {}",
                            a.0, a.2, b.0, b.2
                        ));
                    }
                }
            }
            Ok(Agreement::Points(n))
        }
        (Answer::Matrix(l), Answer::Matrix(p)) => {
            if l.keys().ne(p.keys()) {
                let only_l: Vec<&String> = l.keys().filter(|k| !p.contains_key(*k)).collect();
                let only_p: Vec<&String> = p.keys().filter(|k| !l.contains_key(*k)).collect();
                return Err(format!(
                    "series only in Lumen: {only_l:?}; only in Prometheus: {only_p:?}"
                ));
            }
            let mut n = 0;
            for (k, lp) in l {
                n += compare_points(k, lp, &p[k])?;
            }
            Ok(Agreement::Points(n))
        }
        _ => Err("different result types".into()),
    }
}

#[test]
fn the_comparison_catches_each_kind_of_difference() {
    let vector = |items: &[(&str, f64)]| {
        let result: Vec<Value> = items
            .iter()
            .map(|(job, v)| serde_json::json!({"metric": {"job": job}, "value": [10.5, format!("{v}")]}))
            .collect();
        serde_json::json!({"status": "success", "data": {"resultType": "vector", "result": result}})
            .to_string()
    };
    let cmp =
        |a: &str, b: &str, ordered: bool| compare(&parse_answer(a), &parse_answer(b), ordered);
    let base = vector(&[("a", 1.0), ("b", 2.0)]);
    assert!(matches!(
        cmp(&base, &vector(&[("b", 2.0), ("a", 1.0 + 1e-12)]), false),
        Ok(Agreement::Points(2))
    ));
    assert!(
        cmp(&base, &vector(&[("a", 1.0), ("b", 2.000001)]), false).is_err(),
        "value"
    );
    assert!(
        cmp(&base, &vector(&[("a", 1.0), ("c", 2.0)]), false).is_err(),
        "labels"
    );
    assert!(
        cmp(&base, &vector(&[("a", 1.0)]), false).is_err(),
        "missing series"
    );
    assert!(
        cmp(&base, &vector(&[("b", 2.0), ("a", 1.0)]), true).is_err(),
        "order"
    );
    assert!(
        cmp(&base, &vector(&[("a", 1.0), ("b", f64::NAN)]), false).is_err(),
        "NaN against a number"
    );
    let error = r#"{"status":"error","errorType":"execution","error":"x"}"#;
    assert!(cmp(&base, error, false).is_err(), "one side failed");
    assert!(matches!(
        cmp(error, error, false),
        Ok(Agreement::BothRejected)
    ));
    let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[10.5,"1"]}}"#;
    assert!(cmp(&base, scalar, false).is_err(), "result type");
    let nan = r#"{"status":"success","data":{"resultType":"scalar","result":[10.5,"NaN"]}}"#;
    assert!(matches!(cmp(nan, nan, false), Ok(Agreement::Points(1))));
    let matrix = |points: &str| {
        format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{}},"values":{points}}}]}}}}"#
        )
    };
    let m = matrix(r#"[[1,"1"],[2,"+Inf"]]"#);
    assert!(matches!(cmp(&m, &m, false), Ok(Agreement::Points(2))));
    assert!(
        cmp(&m, &matrix(r#"[[1,"1"],[3,"+Inf"]]"#), false).is_err(),
        "timestamp"
    );
    assert!(
        cmp(&m, &matrix(r#"[[1,"1"]]"#), false).is_err(),
        "missing point"
    );
}
