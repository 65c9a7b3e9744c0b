use super::*;

fn run(paths: &[PathBuf]) -> (bool, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let passed = check_to(paths, &mut out, &mut err);
    (
        passed,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn reports_like_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: up\n      - alert: A\n        expr: up == 0\n",
    )
    .unwrap();
    let (passed, out, err) = run(std::slice::from_ref(&good));
    assert!(passed);
    assert_eq!(
        out,
        format!("Checking {}\n  SUCCESS: 2 rules found\n\n", good.display())
    );
    assert_eq!(err, "");

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        exprr: up\n",
    )
    .unwrap();
    let (passed, out, err) = run(&[dir.path().to_path_buf()]);
    assert!(!passed);
    assert_eq!(
        out,
        format!(
            "Checking {}\n\nChecking {}\n  SUCCESS: 2 rules found\n\n",
            bad.display(),
            good.display()
        )
    );
    assert!(err.starts_with("  FAILED:\n"), "{err}");
    assert!(
        err.contains(&format!(
            "{}:5:9: group \"g\", rule 1: unknown field \"exprr\"",
            bad.display()
        )),
        "{err}"
    );

    let missing = dir.path().join("missing.yml");
    let (passed, _, err) = run(std::slice::from_ref(&missing));
    assert!(!passed);
    assert!(
        err.contains(&format!("{}: cannot read", missing.display())),
        "{err}"
    );

    let empty = tempfile::tempdir().unwrap();
    let (passed, out, err) = run(&[empty.path().to_path_buf()]);
    assert!(passed);
    assert_eq!(out, "");
    assert!(err.contains("no *.yml or *.yaml files"));

    assert!(!run(&[]).0);
}
