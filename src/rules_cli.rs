//! `lumen rules check FILE...`: checks rule files the way `promtool check rules` does and
//! prints the same report, so CI scripts written for promtool read it unchanged.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use lumen_alerting::rules::{self, RuleError};

/// Checks every rule file `paths` name (directories stand for their `*.yml`/`*.yaml` files):
/// "Checking FILE" then "  SUCCESS: N rules found" on stdout, or "  FAILED:" and each error as
/// `file:line:col: message` on stderr. Exits 0 when every file passes, 1 otherwise.
pub fn check(paths: &[PathBuf]) -> ExitCode {
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let passed = check_to(paths, &mut stdout.lock(), &mut stderr.lock());
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// [`check`] writing to the given streams; returns whether every file passed.
fn check_to(paths: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> bool {
    // A closed pipe (e.g. `| head`) is not worth a panic; the exit code still tells.
    let mut passed = true;
    if paths.is_empty() {
        let _ = writeln!(err, "no rule files given");
        return false;
    }
    for path in paths {
        let (files, errors) = rules::rule_files(std::slice::from_ref(path));
        if !errors.is_empty() {
            passed = false;
            report_failure(path, &errors, out, err);
            continue;
        }
        if files.is_empty() {
            let _ = writeln!(err, "{}: no *.yml or *.yaml files to check", path.display());
            continue;
        }
        for file in files {
            match rules::load_file(&file) {
                Ok(groups) => {
                    let count: usize = groups.iter().map(|g| g.rules.len()).sum();
                    let _ = writeln!(out, "Checking {}", file.display());
                    let _ = writeln!(out, "  SUCCESS: {count} rules found");
                    let _ = writeln!(out);
                }
                Err(errors) => {
                    passed = false;
                    report_failure(&file, &errors, out, err);
                }
            }
        }
    }
    passed
}

fn report_failure(path: &Path, errors: &[RuleError], out: &mut dyn Write, err: &mut dyn Write) {
    let _ = writeln!(out, "Checking {}", path.display());
    let _ = out.flush();
    let _ = writeln!(err, "  FAILED:");
    for error in errors {
        let _ = writeln!(err, "{error}");
    }
    let _ = err.flush();
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests;
