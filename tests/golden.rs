//! Golden tests: every folder under `tests/cases/` that holds a `transform.xf`
//! is a case. The runner feeds its `input.*` file through the transform (the
//! same stream driver `xf run` uses) and compares with:
//!
//! - `expected.ndjson`: the exact output bytes, one record per line;
//! - `expected.json` instead: a JSON array of the expected records, compared
//!   line by line in compact form (key order included), for vendor files;
//! - `expected-errors.txt` (optional): the exact record-error lines;
//! - `args` (optional): `keep-batches`, `strict`, and `now MILLIS` (what
//!   `now()` gives), one per line;
//! - `output-schema` (optional): a shipped schema's name; every output record
//!   must be valid against it (e.g. `splunk-hec-event`, `ocsf-detection-finding`).
//!
//! A case may name a shipped transform in `transform.path` (relative to the
//! repository) instead of holding a `transform.xf`.
//! A case whose transform must not load has `expected-load-error.txt` instead.
//! Every failure is collected and shown as a framed expected/got block.
//! `XF_BLESS=1 cargo test --test golden` rewrites the expected files.

use std::fs;
use std::path::{Path, PathBuf};

use xf::stream::{Options, Stream};
use xf::Transform;

fn cases(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if entry.join("transform.xf").exists() || entry.join("transform.path").exists() {
                found.push(entry.clone());
            }
            cases(&entry, found);
        }
    }
}

fn input_file(case: &Path) -> Option<PathBuf> {
    let mut inputs: Vec<PathBuf> = fs::read_dir(case)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_stem().is_some_and(|s| s == "input"))
        .collect();
    inputs.sort();
    inputs.pop()
}

/// Streams `input` through the transform; returns (output, error lines).
fn run_stream(
    transform: &Transform,
    options: Options,
    now: Option<i64>,
    input: &Path,
) -> (String, String) {
    let mut output = Vec::new();
    let mut errors = String::new();
    let mut stream = Stream::new(
        transform,
        &mut output,
        None::<Vec<u8>>,
        |e| errors.push_str(&format!("{e}\n")),
        options,
    );
    if let Some(millis) = now {
        stream.fix_now(millis);
    }
    stream.run("input", fs::File::open(input).unwrap()).unwrap();
    let stats = stream.stats;
    assert_eq!(
        stats.read,
        stats.written + stats.dropped + stats.failed,
        "{}: accounting",
        input.display()
    );
    drop(stream);
    (String::from_utf8(output).unwrap(), errors)
}

/// Runs one case; returns (file compared, expected, got) for each mismatch.
fn run_case(case: &Path) -> Vec<(String, String, String)> {
    let mut mismatches = Vec::new();
    let compare = |mismatches: &mut Vec<_>, file: &str, got: String| {
        let path = case.join(file);
        if std::env::var_os("XF_BLESS").is_some() {
            fs::write(&path, &got).unwrap();
            return;
        }
        let expected = fs::read_to_string(&path).unwrap_or_default();
        if expected != got {
            mismatches.push((file.to_string(), expected, got));
        }
    };
    let transform_file = match fs::read_to_string(case.join("transform.path")) {
        Ok(path) => Path::new(env!("CARGO_MANIFEST_DIR")).join(path.trim()),
        Err(_) => case.join("transform.xf"),
    };
    let args = fs::read_to_string(case.join("args")).unwrap_or_default();
    let transform = match Transform::from_path(transform_file) {
        Ok(transform) => transform,
        Err(error) => {
            let rendered = error.render().replace(&format!("{}/", case.display()), "");
            compare(&mut mismatches, "expected-load-error.txt", rendered);
            return mismatches;
        }
    };
    let now = args
        .lines()
        .find_map(|l| l.trim().strip_prefix("now "))
        .map(|millis| millis.trim().parse().expect("`now MILLIS` in args"));
    let input = input_file(case).expect("a case has an input.* file");
    // One thread and several must give the very same output, in the same order.
    let mut runs = [1, 3].map(|threads| {
        let options = Options {
            keep_batches: args.lines().any(|l| l.trim() == "keep-batches"),
            strict: args.lines().any(|l| l.trim() == "strict"),
            max_record: None,
            threads,
        };
        run_stream(&transform, options, now, &input)
    });
    let (output, errors) = std::mem::take(&mut runs[0]);
    if runs[1] != (output.clone(), errors.clone()) {
        mismatches.push((
            "(3 threads vs 1)".into(),
            format!("{output}{errors}"),
            format!("{}{}", runs[1].0, runs[1].1),
        ));
    }
    if let Ok(name) = fs::read_to_string(case.join("output-schema")) {
        let schema = xf::schema::Schema::load(name.trim(), None)
            .unwrap_or_else(|_| panic!("output-schema names no shipped schema: {name}"));
        for line in output.lines() {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(problems) = schema.check(&record) {
                mismatches.push((
                    "output-schema".into(),
                    name.trim().to_string(),
                    format!("{problems}\n{line}"),
                ));
            }
        }
    }
    if case.join("expected.json").exists() {
        let expected: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(case.join("expected.json")).unwrap()).unwrap();
        let expected: String = expected
            .as_array()
            .unwrap()
            .iter()
            .map(|v| format!("{}\n", serde_json::to_string(v).unwrap()))
            .collect();
        if expected != output {
            mismatches.push(("expected.json".into(), expected, output));
        }
    } else {
        compare(&mut mismatches, "expected.ndjson", output);
    }
    if !errors.is_empty() || case.join("expected-errors.txt").exists() {
        compare(&mut mismatches, "expected-errors.txt", errors);
    }
    mismatches
}

#[test]
fn golden_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut found = Vec::new();
    cases(&root, &mut found);
    assert!(
        found.len() >= 20,
        "expected the golden cases under {}, found {}",
        root.display(),
        found.len()
    );
    let mut report = String::new();
    for case in &found {
        for (file, expected, got) in run_case(case) {
            let name = case.strip_prefix(&root).unwrap().display();
            report.push_str(&format!(
                "\n=== {name}/{file}\n--- expected\n{expected}\n--- got\n{got}\n===\n"
            ));
        }
    }
    assert!(report.is_empty(), "golden cases failed:{report}");
}

#[test]
fn shipped_transforms_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("transforms");
    let mut count = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "xf") {
            match Transform::from_path(&path) {
                Err(error) => panic!("{} does not load:\n{}", path.display(), error.render()),
                // What xf ships is an example to follow: it raises no warning.
                Ok(transform) => assert_eq!(
                    transform.render_warnings(),
                    "",
                    "{} has warnings",
                    path.display()
                ),
            }
            count += 1;
        }
    }
    assert!(count >= 2);
}

/// The README's example with every statement must load and run as documented.
#[test]
fn readme_example_transform_runs() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let after = readme
        .split("An example with every statement:")
        .nth(1)
        .expect("the README example");
    let example = after
        .split("```")
        .nth(1)
        .expect("a fenced block")
        .trim_start_matches('\n');
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("tags.csv"),
        "accountId,index\n1000,armor_alpha\n",
    )
    .unwrap();
    let transform = Transform::from_source("README.md", example, Some(dir.path()))
        .unwrap_or_else(|e| panic!("the README example does not load:\n{}", e.render()));
    let out = transform
        .apply(serde_json::json!({
            "documentType": "OFFENSE_DETECTION_1", "offenseType": "Detection", "offenseStatus": "OPEN",
            "accountId": 1000, "severity": 9, "description": "d", "eventId": "e1",
            "classificationTag": "secret", "startTime": 1590673764
        }))
        .unwrap();
    let expected = serde_json::json!({
        "time": 1590673764,
        "sourcetype": "_json",
        "index": "alpha",
        "event": {
            "documentType": "OFFENSE_DETECTION_1", "offenseType": "Detection", "offenseStatus": "OPEN",
            "accountId": 1000, "severity": 9, "description": "d", "eventId": "e1",
            "startTime": 1590673764,
            "idx": "Alpha",
            "event": {"account_id": "Home"},
            "index": "armor_alpha",
            "link_event_kibana": "https://kibana.example.com/app/discover#/?_a=(query:(language:kuery,query:'eventId%3A%22e1%22'))",
            "priority": "P1",
            "summary": "[9] d"
        },
        "fields": {"severity": "9"}
    });
    assert_eq!(out, vec![expected]);
}
