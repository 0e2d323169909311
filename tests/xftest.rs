//! `xf test` as a user meets it: the real binary on suites in temporary
//! folders. What it prints for a passing and a failing suite is kept in
//! `tests/cases/xftest/*.stdout` (the summary's time as `in T`);
//! `XF_BLESS=1 cargo test --test xftest` rewrites those files.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::cargo::CommandCargoExt;

/// A transform that writes, drops (`kind: "noise"`), fails (`kind: "bad"`)
/// and reads the clock, with one warning (W0002).
const TRANSFORM: &str = r#"name "test subject"
drop when kind == "noise"
when kind == "bad" {
  fail "bad record {{ id }}"
}
set seen = now()
tag add summary = "{{ kind }} {{ id }}"
label note = "{{ not rendered }}"
"#;

const WARNING: &str =
    "warning[W0002]: a label's value is never rendered: this template is written as it is";

/// A folder holding `t.xf` (TRANSFORM unless given) and the files given (paths relative to it).
fn suite(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("t.xf"), TRANSFORM).unwrap();
    fs::create_dir(dir.path().join("t.tests")).unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

/// The passing cases of TRANSFORM: one of each kind, and its warning.
fn passing() -> Vec<(&'static str, String)> {
    vec![
        ("t.tests/warnings.txt", format!("{WARNING}\n")),
        ("t.tests/alert.input.json", "{\n  \"id\": 1,\n  \"kind\": \"alert\"\n}\n".into()),
        (
            "t.tests/alert.output.ndjson",
            "{\"id\":1,\"kind\":\"alert\",\"seen\":1764000000000,\"summary\":\"alert 1\",\"note\":\"{{ not rendered }}\"}\n".into(),
        ),
        // With a byte-order mark, as some tools write.
        (
            "t.tests/noise.input.json",
            "\u{feff}{\"id\": 2, \"kind\": \"noise\"}\n".into(),
        ),
        ("t.tests/noise.dropped", String::new()),
        ("t.tests/bad.input.json", "{\"id\": 3, \"kind\": \"bad\"}\n".into()),
        ("t.tests/bad.error.txt", "bad.input.json:1: fail (line 4): bad record 3\n".into()),
        (
            "t.tests/stream.input.ndjson",
            "{\"id\": 4, \"kind\": \"a\"}\n{\"id\": 5, \"kind\": \"noise\"}\n{\"id\": 6, \"kind\": \"bad\"}\n".into(),
        ),
        (
            "t.tests/stream.output.ndjson",
            "{\"id\":4,\"kind\":\"a\",\"seen\":1764000000000,\"summary\":\"a 4\",\"note\":\"{{ not rendered }}\"}\n".into(),
        ),
        ("t.tests/stream.error.txt", "stream.input.ndjson:3: fail (line 4): bad record 6\n".into()),
    ]
}

fn passing_suite() -> tempfile::TempDir {
    let files = passing();
    let borrowed: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    suite(&borrowed)
}

/// Runs `xf test ARGS` in `dir`; returns (status, stdout with the time as `T`, stderr).
fn xf_test(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = Command::cargo_bin("xf")
        .unwrap()
        .arg("test")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!stderr.contains("panicked"), "xf panicked: {stderr}");
    (output.status.code().unwrap(), without_time(&stdout), stderr)
}

/// The summary line's duration (`in 0.01s`) as `in T`.
fn without_time(stdout: &str) -> String {
    stdout
        .lines()
        .map(|line| match line.rfind(") in ") {
            Some(at) if line.ends_with('s') => format!("{}) in T", &line[..at]),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Compares with (or, under XF_BLESS=1, writes) `tests/cases/xftest/NAME.stdout`.
fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases/xftest")
        .join(format!("{name}.stdout"));
    if std::env::var_os("XF_BLESS").is_some() {
        fs::write(&path, actual).unwrap();
        return;
    }
    let expected =
        fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert_eq!(
        actual,
        expected,
        "\n--- expected ({})\n{expected}\n--- got\n{actual}",
        path.display()
    );
}

fn write(dir: &Path, path: &str, text: &str) {
    fs::write(dir.join(path), text).unwrap();
}

#[test]
fn a_passing_suite_exits_0_with_each_case_and_a_summary() {
    let dir = passing_suite();
    let (status, stdout, stderr) = xf_test(dir.path(), &[]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    golden("passing", &stdout);
    let (status, quiet, _) = xf_test(dir.path(), &["-q", "t.xf"]);
    assert_eq!(status, 0);
    assert_eq!(quiet, "5 passed, 0 failed (5 cases in 1 transform) in T\n");
}

#[test]
fn each_kind_of_failure_is_said_plainly_with_a_diff() {
    let dir = passing_suite();
    let d = dir.path();
    // alert: one field differs.
    write(
        d,
        "t.tests/alert.output.ndjson",
        "{\"id\":1,\"kind\":\"alert\",\"seen\":1764000000000,\"summary\":\"alert 01\",\"note\":\"{{ not rendered }}\"}\n",
    );
    // noise: expected a record, but it is dropped.
    fs::remove_file(d.join("t.tests/noise.dropped")).unwrap();
    write(d, "t.tests/noise.output.ndjson", "{\"id\":2}\n");
    // bad: expected a drop, but it fails.
    fs::remove_file(d.join("t.tests/bad.error.txt")).unwrap();
    write(d, "t.tests/bad.dropped", "");
    // stream: another error message, and one record expected that is not written.
    write(
        d,
        "t.tests/stream.error.txt",
        "stream.input.ndjson:3: fail (line 4): bad record 7\n",
    );
    // written: expected a record error, but it is written.
    write(
        d,
        "t.tests/written.input.json",
        "{\"id\": 8, \"kind\": \"x\"}",
    );
    write(
        d,
        "t.tests/written.error.txt",
        "written.input.json:1: fail (line 4): bad record 8\n",
    );
    // dropwritten: expected a drop, but it is written.
    write(
        d,
        "t.tests/dropwritten.input.json",
        "{\"id\": 9, \"kind\": \"x\"}",
    );
    write(d, "t.tests/dropwritten.dropped", "");
    // erring: expected a record, but it fails.
    write(
        d,
        "t.tests/erring.input.json",
        "{\"id\": 10, \"kind\": \"bad\"}",
    );
    write(d, "t.tests/erring.output.ndjson", "{\"id\":10}\n");
    // the warning: missing one expected, got one unexpected.
    write(
        d,
        "t.tests/warnings.txt",
        "warning[W0001]: a comparison of two constants\n",
    );
    let (status, stdout, stderr) = xf_test(d, &[]);
    assert_eq!(status, 1, "{stdout}{stderr}");
    assert!(
        !stdout.contains('\x1b'),
        "colour only on a terminal:\n{stdout}"
    );
    golden("failing", &stdout);
}

#[test]
fn filter_selects_cases_by_transform_and_case_name() {
    let dir = passing_suite();
    let (status, stdout, _) = xf_test(dir.path(), &["--filter", "t/no"]);
    assert_eq!(status, 0);
    assert_eq!(
        stdout,
        "t.xf\n  ok      t/noise\n1 passed, 0 failed (1 case in 1 transform) in T\n"
    );
    let (_, stdout, _) = xf_test(dir.path(), &["--filter", "warn", "-q"]);
    assert_eq!(stdout, "1 passed, 0 failed (1 case in 1 transform) in T\n");
    let (status, stdout, _) = xf_test(dir.path(), &["--filter", "nothing-is-named-so", "-q"]);
    assert_eq!(status, 0);
    assert_eq!(stdout, "0 passed, 0 failed (0 cases in 1 transform) in T\n");
}

#[test]
fn bless_writes_failing_cases_replaces_their_kind_and_leaves_passing_ones() {
    let dir = passing_suite();
    let d = dir.path();
    // noise now expects output (wrong: it is dropped); bad has no expectation yet.
    fs::remove_file(d.join("t.tests/noise.dropped")).unwrap();
    write(d, "t.tests/noise.output.ndjson", "{\"id\":2}\n");
    fs::remove_file(d.join("t.tests/bad.error.txt")).unwrap();
    fs::remove_file(d.join("t.tests/warnings.txt")).unwrap();
    let alert = d.join("t.tests/alert.output.ndjson");
    let before = fs::metadata(&alert).unwrap().modified().unwrap();
    let (status, stdout, _) = xf_test(d, &["-q"]);
    assert_eq!(status, 1);
    assert!(
        stdout.contains("t/bad (input t.tests/bad.input.json)\n    no expectation"),
        "{stdout}"
    );
    let (status, stdout, stderr) = xf_test(d, &["--bless"]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    golden("bless", &stdout);
    assert!(!d.join("t.tests/noise.output.ndjson").exists());
    assert_eq!(
        fs::read_to_string(d.join("t.tests/noise.dropped")).unwrap(),
        ""
    );
    assert_eq!(
        fs::read_to_string(d.join("t.tests/bad.error.txt")).unwrap(),
        "bad.input.json:1: fail (line 4): bad record 3\n"
    );
    assert_eq!(
        fs::read_to_string(d.join("t.tests/warnings.txt")).unwrap(),
        format!("{WARNING}\n")
    );
    assert_eq!(fs::metadata(&alert).unwrap().modified().unwrap(), before);
    let (status, stdout, _) = xf_test(d, &["-q"]);
    assert_eq!(status, 0, "{stdout}");
    assert_eq!(stdout, "5 passed, 0 failed (5 cases in 1 transform) in T\n");
}

#[test]
fn require_tests_fails_a_transform_without_a_tests_folder() {
    let dir = passing_suite();
    fs::create_dir(dir.path().join("more")).unwrap();
    write(dir.path(), "more/untested.xf", "set a = 1\n");
    let (status, stdout, _) = xf_test(dir.path(), &["-q"]);
    assert_eq!(status, 0, "{stdout}");
    let (status, stdout, _) = xf_test(dir.path(), &["more"]);
    assert_eq!(status, 0);
    assert_eq!(
        stdout,
        "more/untested.xf: no tests\n0 passed, 0 failed (0 cases in 0 transforms) in T\n"
    );
    let (status, stdout, _) = xf_test(dir.path(), &["--require-tests", "-q"]);
    assert_eq!(status, 1);
    assert_eq!(
        stdout,
        "  FAILED  more/untested.xf\n    no tests (no folder more/untested.tests)\n5 passed, 1 failed (6 cases in 2 transforms) in T\n"
    );
}

#[test]
fn a_search_skips_hidden_folders_and_cargo_targets() {
    let dir = passing_suite();
    for folder in [".hidden", "target"] {
        fs::create_dir_all(dir.path().join(folder).join("u.tests")).unwrap();
        write(dir.path(), &format!("{folder}/u.xf"), "set a = 1\n");
    }
    write(
        dir.path(),
        "target/CACHEDIR.TAG",
        "Signature: 8a477f597d28d172789f06886806bc55\n",
    );
    let (status, stdout, _) = xf_test(dir.path(), &["--require-tests", "-q"]);
    assert_eq!(status, 0, "{stdout}");
    assert_eq!(stdout, "5 passed, 0 failed (5 cases in 1 transform) in T\n");
}

#[test]
fn a_tests_folder_names_its_transform() {
    let dir = passing_suite();
    let (status, stdout, _) = xf_test(dir.path(), &["t.tests", "-q"]);
    assert_eq!(
        (status, stdout.as_str()),
        (0, "5 passed, 0 failed (5 cases in 1 transform) in T\n")
    );
    fs::create_dir(dir.path().join("orphan.tests")).unwrap();
    let (status, _, stderr) = xf_test(dir.path(), &["orphan.tests"]);
    assert_eq!(status, 2);
    assert_eq!(
        stderr,
        "error: orphan.tests is a tests folder without its transform: there is no orphan.xf or orphan.json\n"
    );
}

#[test]
fn usage_errors_and_transforms_that_do_not_load_exit_2() {
    let dir = passing_suite();
    let (status, _, stderr) = xf_test(dir.path(), &["missing.xf"]);
    assert_eq!(status, 2);
    assert!(
        stderr.starts_with("error: cannot read missing.xf: "),
        "{stderr}"
    );
    write(dir.path(), "notes.txt", "");
    let (status, _, stderr) = xf_test(dir.path(), &["notes.txt"]);
    assert_eq!(status, 2);
    assert_eq!(
        stderr,
        "error: notes.txt: not a .xf file, an Armor config (.json), a .tests folder or a directory\n"
    );
    let (status, _, _) = xf_test(dir.path(), &["--no-such-flag"]);
    assert_eq!(status, 2);
    // A transform with a syntax error: its diagnostic with the caret, status 2, other transforms still run.
    fs::create_dir(dir.path().join("broken.tests")).unwrap();
    write(dir.path(), "broken.xf", "set = 1\n");
    let (status, stdout, stderr) = xf_test(dir.path(), &["-q"]);
    assert_eq!(status, 2, "{stdout}{stderr}");
    assert!(stderr.contains("broken.xf:1:"), "{stderr}");
    assert!(stderr.contains('^'), "{stderr}");
    assert!(
        stderr.ends_with("error: broken.xf does not load: its tests were not run\n"),
        "{stderr}"
    );
    assert_eq!(
        stdout,
        "5 passed, 0 failed (5 cases in 2 transforms) in T\n"
    );
}

#[test]
fn an_input_that_is_not_json_names_its_file_and_position() {
    let dir = passing_suite();
    write(
        dir.path(),
        "t.tests/alert.input.json",
        "{\n  \"id\": 1,\n  \"kind\" \"alert\"\n}\n",
    );
    let (status, stdout, _) = xf_test(dir.path(), &["-q"]);
    assert_eq!(status, 1);
    assert!(
        stdout.contains("  FAILED  t/alert (input t.tests/alert.input.json)\n    t.tests/alert.input.json:3:10: the input is not one JSON document: expected `:` at line 3 column 10\n"),
        "{stdout}"
    );
    // Two documents in a .input.json, and NDJSON that is no JSON (a record error, as in xf run).
    write(
        dir.path(),
        "t.tests/alert.input.json",
        "{\"id\": 1}\n{\"id\": 2}\n",
    );
    write(
        dir.path(),
        "t.tests/stream.input.ndjson",
        "{\"id\": 4, \"kind\": \"a\"}\nnot json\n",
    );
    let (status, stdout, _) = xf_test(dir.path(), &["-q"]);
    assert_eq!(status, 1);
    assert!(
        stdout.contains(
            "alert.input.json:2:1: the input is not one JSON document: trailing characters"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("+stream.input.ndjson:2: "), "{stdout}");
}

#[test]
fn mistakes_in_a_tests_folder_are_failures() {
    let dir = passing_suite();
    write(dir.path(), "t.tests/alert.ouput.ndjson", "");
    write(
        dir.path(),
        "t.tests/noise.dropped",
        "because kind is noise\n",
    );
    write(dir.path(), "t.tests/lonely.output.ndjson", "{}\n");
    write(dir.path(), "t.tests/twice.input.json", "{}");
    write(dir.path(), "t.tests/twice.input.ndjson", "{}\n");
    write(dir.path(), "t.tests/twice.dropped", "");
    write(dir.path(), "t.tests/empty.input.ndjson", "");
    write(dir.path(), "t.tests/empty.dropped", "");
    write(dir.path(), "t.tests/README.md", "kept: not a case\n");
    let (status, stdout, _) = xf_test(dir.path(), &["-q"]);
    assert_eq!(status, 1, "{stdout}");
    golden("mistakes", &stdout);
}

#[test]
fn every_shipped_transform_carries_passing_tests() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (status, stdout, stderr) = xf_test(repo, &["--require-tests", "-q", "transforms/"]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    let shipped = fs::read_dir(repo.join("transforms"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path: &PathBuf| path.extension().is_some_and(|e| e == "xf"))
        .count();
    // Only the summary: every case passed, in every shipped transform.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains(" passed, 0 failed ("), "{stdout}");
    assert!(
        stdout.ends_with(&format!(" in {shipped} transforms) in T\n")),
        "{stdout}"
    );
}

/// The README's example of a failure is what `xf test` prints for it.
#[test]
fn the_readme_failure_example_is_the_real_report() {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find("```\n  FAILED  t/alert")
        .expect("the README's xf test example")
        + 4;
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = passing_suite();
    write(
        dir.path(),
        "t.tests/alert.output.ndjson",
        "{\"id\":1,\"kind\":\"alert\",\"seen\":1764000000000,\"summary\":\"alert 01\",\"note\":\"{{ not rendered }}\"}\n",
    );
    let (status, stdout, _) = xf_test(dir.path(), &["-q", "--filter", "t/alert"]);
    assert_eq!(status, 1);
    assert_eq!(stdout, without_time(example));
}

/// An Armor transform config with a tags template and the clock.
const ARMOR_CONFIG: &str = r#"{
  "name": "tagged",
  "format": "default",
  "event_type": ["security_event"],
  "transform": [
    {"type": "add_dynamic_tag", "key": "index", "value": "{{index}}"},
    {"type": "add_dynamic_tag", "key": "seen", "value": "{{ now() }}"}
  ]
}
"#;

/// A folder holding `cfg.json` (ARMOR_CONFIG), its tags table, its cases,
/// and JSON files that are no transform (ignored by a search).
fn armor_suite() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("cfg.tests")).unwrap();
    write(d, "cfg.json", ARMOR_CONFIG);
    write(d, "tags.csv", "accountId,index\n1000,armor_alpha\n");
    write(d, "notes.json", "{\"not\": \"a transform\"}");
    let event = "{\"accountId\": 1000, \"documentType\": \"EVENT_1\", \"id\": 2}";
    write(d, "cfg.tests/event.input.json", event);
    write(
        d,
        "cfg.tests/event.output.ndjson",
        "{\"accountId\":1000,\"documentType\":\"EVENT_1\",\"id\":2,\"index\":\"armor_alpha\",\"seen\":\"1764000000000\"}\n",
    );
    write(
        d,
        "cfg.tests/detection.input.json",
        "{\"accountId\": 1000, \"documentType\": \"OFFENSE_1\", \"id\": 3}",
    );
    write(d, "cfg.tests/detection.dropped", "");
    // A case with its own clock.
    write(d, "cfg.tests/late.input.json", event);
    write(d, "cfg.tests/late.now", "2026-01-01T00:00:00Z\n");
    write(
        d,
        "cfg.tests/late.output.ndjson",
        "{\"accountId\":1000,\"documentType\":\"EVENT_1\",\"id\":2,\"index\":\"armor_alpha\",\"seen\":\"1767225600000\"}\n",
    );
    dir
}

#[test]
fn an_armor_config_is_tested_as_xf_run_runs_it() {
    let dir = armor_suite();
    let d = dir.path();
    let (status, stdout, stderr) = xf_test(d, &["--tags", "tags.csv"]);
    assert_eq!(status, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "cfg.json\n  ok      cfg/detection\n  ok      cfg/event\n  ok      cfg/late\n3 passed, 0 failed (3 cases in 1 transform) in T\n"
    );
    // Named by the config or by its tests folder; notes.json has no tests and is no transform.
    for path in ["cfg.json", "cfg.tests"] {
        let (status, stdout, _) =
            xf_test(d, &["-q", "--require-tests", "--tags", "tags.csv", path]);
        assert_eq!(
            (status, stdout.as_str()),
            (0, "3 passed, 0 failed (3 cases in 1 transform) in T\n")
        );
    }
    // Without the tags table the tag renders empty, as `xf run` without --tags does.
    let (status, stdout, _) = xf_test(d, &["-q"]);
    assert_eq!(status, 1, "{stdout}");
    assert!(
        stdout.contains("-  \"index\": \"armor_alpha\",\n    +  \"index\": \"\","),
        "{stdout}"
    );
    // A config that does not load: its problems, status 2.
    write(d, "cfg.json", "{\"name\": \"x\", \"format\": \"csv\"}");
    let (status, _, stderr) = xf_test(d, &["-q", "--tags", "tags.csv"]);
    assert_eq!(status, 2);
    assert!(stderr.contains("/format"), "{stderr}");
    assert!(
        stderr.ends_with("error: cfg.json does not load: its tests were not run\n"),
        "{stderr}"
    );
}

#[test]
fn armor_options_without_an_armor_config_and_two_owners_of_a_tests_folder_are_usage_errors() {
    let dir = passing_suite();
    let (status, _, stderr) = xf_test(dir.path(), &["--tags", "tags.csv"]);
    assert_eq!(status, 2);
    assert_eq!(stderr, "error: --tags and --kibana are for Armor JSON configs, and none was found among the transforms to test\n");
    write(dir.path(), "t.json", ARMOR_CONFIG);
    for args in [&[][..], &["t.tests"], &["t.xf", "t.json"]] {
        let (status, _, stderr) = xf_test(dir.path(), args);
        assert_eq!(status, 2, "{args:?}");
        assert_eq!(
            stderr,
            "error: t.tests is the tests folder of both t.xf and t.json: rename one of them\n",
            "{args:?}"
        );
    }
}

#[test]
fn now_fixes_the_clock_of_the_run_and_a_case_s_now_file_its_own() {
    let dir = passing_suite();
    let d = dir.path();
    // alert gets its own clock; the other cases keep the default.
    write(d, "t.tests/alert.now", "2026-01-01T00:00:00Z");
    let late = "{\"id\":1,\"kind\":\"alert\",\"seen\":1767225600000,\"summary\":\"alert 1\",\"note\":\"{{ not rendered }}\"}\n";
    write(d, "t.tests/alert.output.ndjson", late);
    let (status, stdout, _) = xf_test(d, &["-q"]);
    assert_eq!(
        (status, stdout.as_str()),
        (0, "5 passed, 0 failed (5 cases in 1 transform) in T\n")
    );
    // --now moves the other cases' clock, not alert's.
    let (status, stdout, _) = xf_test(d, &["-q", "--now", "2026-06-01T12:00:00+02:00"]);
    assert_eq!(status, 1);
    assert!(stdout.contains("  FAILED  t/stream"), "{stdout}");
    assert!(stdout.contains("+  \"seen\": 1780308000000,"), "{stdout}");
    assert!(!stdout.contains("t/alert"), "{stdout}");
    // --bless writes the outcome, and leaves the .now file as it is.
    let (status, _, _) = xf_test(d, &["-q", "--bless", "--now", "1780308000000"]);
    assert_eq!(status, 0);
    assert!(fs::read_to_string(d.join("t.tests/stream.output.ndjson"))
        .unwrap()
        .contains("\"seen\":1780308000000"));
    assert_eq!(
        fs::read_to_string(d.join("t.tests/alert.now")).unwrap(),
        "2026-01-01T00:00:00Z"
    );
    assert_eq!(
        fs::read_to_string(d.join("t.tests/alert.output.ndjson")).unwrap(),
        late
    );
    // A .now that holds no time is the case's failure, named; a bad --now is a usage error.
    write(d, "t.tests/alert.now", "yesterday\n");
    let (status, stdout, _) = xf_test(d, &["-q", "--now", "1780308000000"]);
    assert_eq!(status, 1);
    assert!(
        stdout.contains("  FAILED  t/alert (input t.tests/alert.input.json)\n    t.tests/alert.now: cannot read \"yesterday\" as epoch seconds, epoch milliseconds or RFC 3339\n"),
        "{stdout}"
    );
    let (status, _, stderr) = xf_test(d, &["--now", "soon"]);
    assert_eq!(status, 2);
    assert!(
        stderr.contains("invalid value 'soon' for '--now <TIME>'"),
        "{stderr}"
    );
}

/// `CASE.request.json` gives a case the request `xf serve` would: the
/// transform reads its headers and source, with a server's rules (names
/// lower-cased, repeats joined, credentials withheld); a case without one
/// reads null; a file that is no request is the case's failure, named.
#[test]
fn a_case_s_request_file_is_what_the_transform_reads_as_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::create_dir(d.join("gh.tests")).unwrap();
    write(
        d,
        "gh.xf",
        "set event = coalesce(request.headers.\"x-github-event\", \"none\")\n\
         set source = request.source\n\
         set delivery = request.delivery_id\n\
         set via = request.headers.via\n\
         set auth = coalesce(request.headers.authorization, \"withheld\")\n\
         drop when request.headers.\"x-github-event\" == \"ping\"\n",
    );
    write(d, "gh.tests/alert.input.json", "{\"n\": 1}\n");
    write(
        d,
        "gh.tests/alert.request.json",
        r#"{"headers": {"X-GitHub-Event": "dependabot_alert", "Via": ["a", "b"], "Authorization": "Bearer s3cret"},
            "source": "github", "delivery_id": "72d3162e"}"#,
    );
    write(
        d,
        "gh.tests/alert.output.ndjson",
        "{\"n\":1,\"event\":\"dependabot_alert\",\"source\":\"github\",\"delivery\":\"72d3162e\",\"via\":\"a, b\",\"auth\":\"withheld\"}\n",
    );
    write(
        d,
        "gh.tests/ping.input.json",
        "{\"zen\": \"Keep it logically awesome.\"}\n",
    );
    write(
        d,
        "gh.tests/ping.request.json",
        r#"{"headers": {"x-github-event": "ping"}}"#,
    );
    write(d, "gh.tests/ping.dropped", "");
    // Without a request file, `request` is null, as in `xf run`.
    write(d, "gh.tests/plain.input.json", "{\"n\": 2}\n");
    write(
        d,
        "gh.tests/plain.output.ndjson",
        "{\"n\":2,\"event\":\"none\",\"auth\":\"withheld\"}\n",
    );
    let (status, stdout, stderr) = xf_test(d, &["-q"]);
    assert_eq!(
        (status, stdout.as_str(), stderr.as_str()),
        (0, "3 passed, 0 failed (3 cases in 1 transform) in T\n", "")
    );
    write(
        d,
        "gh.tests/ping.request.json",
        r#"{"headers": {"x-github-event": 7}}"#,
    );
    let (status, stdout, _) = xf_test(d, &["-q"]);
    assert_eq!(status, 1);
    assert!(
        stdout.contains(
            "gh.tests/ping.request.json: header `x-github-event`: a text, or a list of texts"
        ),
        "{stdout}"
    );
    write(d, "gh.tests/ping.request.json", r#"{"query": "key=1"}"#);
    let (_, stdout, _) = xf_test(d, &["-q"]);
    assert!(
        stdout.contains("`query` is no field of a request"),
        "{stdout}"
    );
}
