//! Traces (`xf run --trace`, `Transform::apply_traced`): every folder under
//! `tests/cases/trace/` is run traced through the library and through the
//! binary, and compared with its `expected-trace.txt` (text, times masked)
//! and `expected-trace.ndjson` (json, times 0). See that folder's README.
//! `XF_BLESS=1 cargo test --test trace` rewrites the expected files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;
use xf::apply::Context;
use xf::Transform;

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/trace");
    let mut cases: Vec<PathBuf> = fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.join("transform.xf").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "the trace cases are found");
    cases
}

/// Each `(N µs)` of a text trace as `(… µs)`.
fn mask_text(text: &str) -> String {
    let times = regex::Regex::new(r"\(\d+ µs\)").unwrap();
    times.replace_all(text, "(… µs)").into_owned()
}

/// Each `"micros"` of a json trace line as 0.
fn mask_json(line: &str) -> Value {
    let mut value: Value = serde_json::from_str(line).unwrap();
    if let Some(steps) = value["steps"].as_array_mut() {
        for step in steps {
            step["micros"] = 0.into();
        }
    }
    value
}

/// `xf run --trace[ --trace-format json] transform.xf input.ndjson` in the
/// case's folder: (stdout, stderr).
fn traced_run(case: &Path, json: bool) -> (String, String) {
    let mut command = Command::cargo_bin("xf").unwrap();
    command.current_dir(case).args([
        "run",
        "--trace",
        "--now",
        "0",
        "transform.xf",
        "input.ndjson",
    ]);
    if json {
        command.args(["--trace-format", "json"]);
    }
    let output = command.output().unwrap();
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// The trace lines of a run's stderr (its record-error lines left out).
fn trace_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|line| !line.starts_with("error: "))
        .map(|line| format!("{line}\n"))
        .collect()
}

fn compare(case: &Path, file: &str, got: &str, mismatches: &mut Vec<String>) {
    let path = case.join(file);
    if std::env::var_os("XF_BLESS").is_some() {
        fs::write(&path, got).unwrap();
        return;
    }
    let expected = fs::read_to_string(&path).unwrap_or_default();
    if expected != got {
        mismatches.push(format!(
            "── {} ──\n── expected ──\n{expected}── got ──\n{got}",
            path.display()
        ));
    }
}

#[test]
fn the_binary_writes_each_cases_trace() {
    let mut mismatches = Vec::new();
    for case in cases() {
        let (stdout, stderr) = traced_run(&case, false);
        compare(
            &case,
            "expected-trace.txt",
            &mask_text(&trace_lines(&stderr)),
            &mut mismatches,
        );
        let expected_output = fs::read_to_string(case.join("expected.ndjson")).unwrap_or_default();
        if stdout != expected_output {
            mismatches.push(format!("{}: stdout differs with --trace", case.display()));
        }
        let (_, stderr) = traced_run(&case, true);
        let json: String = trace_lines(&stderr)
            .lines()
            .map(|line| format!("{}\n", mask_json(line)))
            .collect();
        compare(&case, "expected-trace.ndjson", &json, &mut mismatches);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn the_library_gives_the_same_traces() {
    if std::env::var_os("XF_BLESS").is_some() {
        return;
    }
    let mut mismatches = Vec::new();
    for case in cases() {
        let transform = Transform::from_path(case.join("transform.xf")).unwrap();
        let expected_json = fs::read_to_string(case.join("expected-trace.ndjson")).unwrap();
        let expected_text = fs::read_to_string(case.join("expected-trace.txt")).unwrap();
        // The text of each record: the lines under its `record …` line, two spaces in.
        let mut texts: Vec<String> = Vec::new();
        for line in expected_text.lines() {
            match line.strip_prefix("  ") {
                Some(inner) => {
                    if let Some(text) = texts.last_mut() {
                        text.push_str(&format!("{inner}\n"));
                    }
                }
                None if line.starts_with("record ") => texts.push(String::new()),
                None => {}
            }
        }
        let input = fs::read_to_string(case.join("input.ndjson")).unwrap();
        let context = Context {
            now: Some(0),
            ..Context::default()
        };
        let mut at = 0;
        for line in input.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            // A top-level array is a batch: its items are the records.
            let records = match record {
                Value::Array(items) => items,
                record => vec![record],
            };
            for record in records {
                let (_, trace) = transform.apply_traced(record, &context);
                let trace = trace.without_times();
                let mut expected = mask_json(expected_json.lines().nth(at).unwrap_or("{}"));
                if let Value::Object(fields) = &mut expected {
                    for key in ["input", "line", "index"] {
                        fields.remove(key);
                    }
                }
                if trace.to_json() != expected {
                    mismatches.push(format!(
                        "{} record {at}: json\n{}\n{expected}",
                        case.display(),
                        trace.to_json()
                    ));
                }
                let text = mask_text(&trace.render());
                if texts.get(at) != Some(&text) {
                    mismatches.push(format!(
                        "{} record {at}: text\n{text}\n{:?}",
                        case.display(),
                        texts.get(at)
                    ));
                }
                at += 1;
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn tracing_does_not_change_the_output_at_any_thread_count() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/trace/when-else");
    let plain = Command::cargo_bin("xf")
        .unwrap()
        .current_dir(&case)
        .args(["run", "-j", "3", "transform.xf", "input.ndjson"])
        .output()
        .unwrap();
    let traced = Command::cargo_bin("xf")
        .unwrap()
        .current_dir(&case)
        .args(["run", "-j", "3", "--trace", "transform.xf", "input.ndjson"])
        .output()
        .unwrap();
    assert_eq!(plain.stdout, traced.stdout);
    assert!(plain.stderr.is_empty());
    // -j 3 or not, the records' traces come in input order.
    let stderr = String::from_utf8(traced.stderr).unwrap();
    let headers: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("record "))
        .collect();
    assert_eq!(
        headers,
        [
            "record input.ndjson:1",
            "record input.ndjson:2",
            "record input.ndjson:3"
        ]
    );
}

#[test]
fn a_trace_file_gets_the_trace_and_stderr_does_not() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/trace/drop");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trace.ndjson");
    let output = Command::cargo_bin("xf")
        .unwrap()
        .current_dir(&case)
        .arg("run")
        .arg(format!("--trace={}", file.display()))
        .args(["--trace-format", "json", "transform.xf", "input.ndjson"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(output.stderr.is_empty(), "{:?}", output.stderr);
    let written = fs::read_to_string(&file).unwrap();
    assert_eq!(written.lines().count(), 4);
    let first: Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert_eq!(first["end"], "dropped");
    assert_eq!(first["input"], "input.ndjson");
    assert_eq!(first["line"], 1);
}

#[test]
fn a_trace_file_that_cannot_be_opened_is_a_start_error() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/trace/drop");
    let output = Command::cargo_bin("xf")
        .unwrap()
        .current_dir(&case)
        .args([
            "run",
            "--trace=/nonexistent-dir/trace.txt",
            "transform.xf",
            "input.ndjson",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("cannot open trace file"), "{stderr}");
}

/// A loop of loops runs on, but its trace stops growing at `MAX_STEPS`
/// statements and counts the rest.
#[test]
fn a_trace_keeps_the_first_statements_and_counts_the_rest() {
    use xf::apply::trace::MAX_STEPS;
    let transform = Transform::from_source(
        "loops.xf",
        "for x in a {\n  for y in a {\n    set n = y\n  }\n}\n",
        None,
    )
    .unwrap();
    let record: Value = serde_json::json!({"a": vec![0; 150]});
    let (result, trace) = transform.apply_traced(record, &Context::default());
    assert!(result.is_ok());
    // 1 outer for, 150 inner fors, 150 × 150 sets.
    let ran = 1 + 150 + 150 * 150;
    assert_eq!(trace.steps.len(), MAX_STEPS);
    assert_eq!(trace.omitted, ran - MAX_STEPS);
    assert!(trace.render().contains(&format!(
        "… and {} more statements, not traced",
        ran - MAX_STEPS
    )));
    assert_eq!(trace.to_json()["omitted"], ran - MAX_STEPS);
}
