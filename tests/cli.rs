//! The `xf` binary as a user meets it: exit statuses, messages, dead letters,
//! and its behaviour as a filter in a pipe.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

fn xf() -> Command {
    Command::cargo_bin("xf").unwrap()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A transform file in a fresh temporary directory.
fn transform(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.xf");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Starts xf with its standard streams piped (its stderr output here is small).
fn spawn_piped(args: &[&std::ffi::OsStr]) -> std::process::Child {
    xf().args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs xf with `input` on stdin; returns (exit code, stdout, stderr).
fn run(args: &[&std::ffi::OsStr], input: &[u8]) -> (i32, String, String) {
    let mut child = spawn_piped(args);
    // xf may exit without reading its input (a transform that does not load): a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn the_readme_example_runs() {
    let output = xf()
        .args([
            "run",
            "transforms/armor-splunk.xf",
            "tests/fixtures/armor/detection-with-events.json",
        ])
        .current_dir(repo(""))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let expected =
        std::fs::read_to_string(repo("tests/cases/armor/shipped-splunk/expected.ndjson")).unwrap();
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[test]
fn a_transform_that_does_not_load_exits_2_with_a_rustc_style_report() {
    let (_dir, path) = transform("format splunk\nlable idx = \"Alpha\"\n");
    let (code, stdout, stderr) = run(&["run".as_ref(), path.as_os_str()], b"{}\n");
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    let shown = path.display().to_string();
    assert!(
        stderr.starts_with("error[E0002]: unknown statement `lable`\n"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("--> {shown}:2:1\n")), "{stderr}");
    assert!(stderr.contains("2 | lable idx = \"Alpha\"\n"), "{stderr}");
    assert!(stderr.contains("  | ^^^^^ not a statement\n"), "{stderr}");
}

/// The README's example of a load error is what xf prints for its line.
#[test]
fn the_readme_load_error_example_is_the_real_report() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let start = readme
        .find("```\nerror[E0002]")
        .expect("the README's E0002 example")
        + 4;
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let (_dir, path) = transform("name \"t\"\nlable idx = \"Alpha\"\n");
    let output = xf()
        .arg("check")
        .arg("t.xf")
        .current_dir(path.parent().unwrap())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    // A report ends with a blank line, which the README's block leaves out.
    assert_eq!(
        String::from_utf8(output.stderr).unwrap().trim_end(),
        example.trim_end()
    );
}

/// Warnings are printed and the run goes on; --deny-warnings refuses the
/// transform (status 2, nothing read), in `run` and in `check` alike.
#[test]
fn warnings_are_printed_and_denied_only_when_asked() {
    let (_dir, path) = transform("drop when \"detail-type\" == \"WebhookTest\"\n");
    let path = path.as_os_str();
    let (code, stdout, stderr) = run(
        &["run".as_ref(), path],
        b"{\"detail-type\":\"WebhookTest\"}\n",
    );
    assert_eq!(
        (code, stdout.as_str()),
        (0, "{\"detail-type\":\"WebhookTest\"}\n"),
        "{stderr}"
    );
    assert!(
        stderr.starts_with("warning[W0001]: this comparison is false for every record"),
        "{stderr}"
    );
    assert!(stderr.contains("write `.\"detail-type\"`"), "{stderr}");
    assert!(stderr.contains("t.xf:1:11"), "{stderr}");

    let (code, stdout, stderr) = run(&["run".as_ref(), "--deny-warnings".as_ref(), path], b"{}\n");
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(stderr.contains("warning[W0001]"), "{stderr}");
    assert!(
        stderr.ends_with("error: 1 warning denied by --deny-warnings\n"),
        "{stderr}"
    );

    let (code, stdout, stderr) = run(&["check".as_ref(), path], b"");
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.ends_with("t.xf: ok, format default, 1 warning\n"),
        "{stdout}"
    );
    assert!(stderr.contains("warning[W0001]"), "{stderr}");
    let (code, stdout, _) = run(&["check".as_ref(), "--deny-warnings".as_ref(), path], b"");
    assert_eq!((code, stdout.as_str()), (2, ""));
}

#[test]
fn a_missing_transform_file_exits_2() {
    let (code, _, stderr) = run(&["run".as_ref(), "no/such.xf".as_ref()], b"");
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: cannot read no/such.xf:"),
        "{stderr}"
    );
}

#[test]
fn bad_records_are_reported_dead_lettered_and_the_stream_goes_on() {
    let (dir, path) = transform("tag add a.b = 1\n");
    let dead = dir.path().join("dead.ndjson");
    let input = b"{\"a\":{}}\n{\"a\": 1}\n{broken\n\xff\xfe{\"x\":\x00}\n{\"a\":{\"c\":2}}\n";
    let (code, stdout, stderr) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            "--dead-letter".as_ref(),
            dead.as_os_str(),
        ],
        input,
    );
    assert_eq!(code, 1);
    assert_eq!(stdout, "{\"a\":{\"b\":1}}\n{\"a\":{\"c\":2,\"b\":1}}\n");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert_eq!(
        lines[0],
        "error: stdin:2: tag add (line 1): cannot set a.b: a is a number, not an object"
    );
    assert!(
        lines[1].starts_with("error: stdin:3: malformed JSON: key must be a string"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("error: stdin:4: malformed JSON"),
        "{stderr}"
    );

    let letters: Vec<serde_json::Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 3);
    assert_eq!(letters[0]["input"], "stdin");
    assert_eq!(letters[0]["line"], 2);
    assert_eq!(letters[0]["raw"], "{\"a\": 1}");
    assert_eq!(
        letters[0]["error"],
        "tag add (line 1): cannot set a.b: a is a number, not an object"
    );
    assert_eq!(letters[1]["raw"], "{broken");
    // Not UTF-8: kept byte for byte, in base64.
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(letters[2]["raw_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, b"\xff\xfe{\"x\":\x00}");
}

#[test]
fn strict_stops_at_the_first_failure() {
    let (_dir, path) = transform("tag add a.b = 1\n");
    let (code, stdout, stderr) = run(
        &["run".as_ref(), path.as_os_str(), "--strict".as_ref()],
        b"{\"a\":{}}\n{\"a\":1}\n{\"a\":{}}\n",
    );
    assert_eq!(code, 1);
    assert_eq!(stdout, "{\"a\":{\"b\":1}}\n");
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn stats_account_for_every_record() {
    let (_dir, path) = transform("drop when d == true\ntag add a.b = 1\n");
    let (code, stdout, stderr) = run(
        &["run".as_ref(), path.as_os_str(), "--stats".as_ref()],
        b"{\"a\":{}}\n{\"d\":true}\n[{\"a\":1},{\"a\":{}}]\nnope\n",
    );
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 2);
    assert!(
        stderr.ends_with("xf: 5 read, 2 written, 1 dropped, 2 failed\n"),
        "{stderr}"
    );
}

/// A line of text is one failure, dead-lettered whole, not one per word
/// (issue 13); reading resumes on the next line.
#[test]
fn a_line_that_is_not_json_is_one_failure_with_its_whole_line_dead_lettered() {
    let (dir, path) = transform("label ok = true\n");
    let dead = dir.path().join("dead.ndjson");
    let (code, stdout, stderr) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            "--stats".as_ref(),
            "--dead-letter".as_ref(),
            dead.as_os_str(),
        ],
        b"{\"a\":1}\nhello world\n{\n  \"b\": 2\n}\n",
    );
    assert_eq!(code, 1);
    assert_eq!(stdout, "{\"a\":1,\"ok\":true}\n{\"b\":2,\"ok\":true}\n");
    assert!(
        stderr.ends_with("xf: 3 read, 2 written, 0 dropped, 1 failed\n"),
        "{stderr}"
    );
    let letters = std::fs::read_to_string(&dead).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.trim_end()).unwrap();
    assert_eq!(letters.lines().count(), 1);
    assert_eq!(
        (letter["line"].as_u64(), letter["raw"].as_str()),
        (Some(2), Some("hello world"))
    );
}

#[test]
fn inputs_are_files_or_stdin_in_order_and_an_unreadable_one_exits_2() {
    let (dir, path) = transform("label ok = true\n");
    let file = dir.path().join("in.json");
    std::fs::write(&file, "{\"from\":\"file\"}").unwrap();
    let missing = dir.path().join("missing.json");
    let (code, stdout, stderr) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            file.as_os_str(),
            "-".as_ref(),
            missing.as_os_str(),
        ],
        b"{\"from\":\"stdin\"}",
    );
    assert_eq!(
        stdout,
        "{\"from\":\"file\",\"ok\":true}\n{\"from\":\"stdin\",\"ok\":true}\n"
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot open"), "{stderr}");
}

#[test]
fn keep_batches_writes_one_array_per_input_array() {
    let (_dir, path) = transform("drop when x == 2\n");
    let (code, stdout, _) = run(
        &["run".as_ref(), path.as_os_str(), "--keep-batches".as_ref()],
        b"[{\"x\":1},{\"x\":2},{\"x\":3}]\n[{\"x\":2}]\n{\"x\":4}\n",
    );
    assert_eq!(code, 0);
    assert_eq!(stdout, "[{\"x\":1},{\"x\":3}]\n{\"x\":4}\n");
}

#[test]
fn check_reports_each_transform() {
    let output = xf()
        .args([
            "check",
            "transforms/armor-splunk.xf",
            "transforms/armor-default.xf",
        ])
        .current_dir(repo(""))
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "transforms/armor-splunk.xf: ok, name \"Hello world config\", format splunk, lookup tags (3 rows)\n\
         transforms/armor-default.xf: ok, name \"Hello world config (default format)\", format default, lookup tags (3 rows)\n"
    );
    let (_dir, bad) = transform("format xml\n");
    let output = xf().arg("check").arg(&bad).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("error[E0101]: unknown format `xml`"));
}

#[test]
fn a_closed_stdout_ends_xf_quietly() {
    let (_dir, path) = transform("label ok = true\n");
    let mut child = spawn_piped(&["run".as_ref(), path.as_os_str()]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // Far more than the pipe buffers hold; xf stops reading once its reader is gone.
        let line = b"{\"some\":\"record\",\"n\":12345}\n".repeat(1000);
        for _ in 0..200 {
            if stdin.write_all(&line).is_err() {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(first, "{\"some\":\"record\",\"n\":12345,\"ok\":true}\n");
    drop(stdout);
    let status = child.wait().unwrap();
    writer.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit {status:?}, stderr {stderr}");
    assert_eq!(stderr, "");
}

/// Reads one line from xf's stdout on another thread, giving up after `limit`.
fn read_line_within(lines: &mpsc::Receiver<String>, limit: Duration) -> Option<String> {
    lines.recv_timeout(limit).ok()
}

#[test]
fn each_record_comes_out_while_stdin_stays_open() {
    for threads in ["-j1", "-j2"] {
        each_record_comes_out_at(threads);
    }
}

fn each_record_comes_out_at(threads: &str) {
    let (_dir, path) = transform("label ok = true\n");
    let mut child = spawn_piped(&["run".as_ref(), path.as_os_str(), threads.as_ref()]);
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if send.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // The limit only guards against a hang; records normally show in milliseconds.
    let limit = Duration::from_secs(10);
    stdin.write_all(b"{\"n\":1}\n").unwrap();
    stdin.flush().unwrap();
    assert_eq!(
        read_line_within(&lines, limit).as_deref(),
        Some("{\"n\":1,\"ok\":true}")
    );
    // A pretty-printed record, and one without a final newline, are complete at their `}`.
    stdin.write_all(b"{\n  \"n\": 2\n}").unwrap();
    stdin.flush().unwrap();
    assert_eq!(
        read_line_within(&lines, limit).as_deref(),
        Some("{\"n\":2,\"ok\":true}")
    );
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_record_over_the_size_limit_is_a_record_error_and_the_stream_goes_on() {
    let (dir, path) = transform("label ok = true\n");
    let dead = dir.path().join("dead.ndjson");
    let mut input = b"{\"big\":\"".to_vec();
    input.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    input.extend_from_slice(b"\"}\n{\"small\":1}\n");
    let (code, stdout, stderr) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            "--max-record-size".as_ref(),
            "1".as_ref(),
            "--dead-letter".as_ref(),
            dead.as_os_str(),
        ],
        &input,
    );
    assert_eq!(code, 1);
    assert_eq!(stdout, "{\"small\":1,\"ok\":true}\n");
    assert!(
        stderr.starts_with(
            "error: stdin:1: record too large: 3145738 bytes, over the limit of 1048576"
        ),
        "{stderr}"
    );
    let letter: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&dead).unwrap().trim()).unwrap();
    assert_eq!(letter["raw"].as_str().unwrap().len(), 1024);
}

#[test]
fn a_100_mb_record_passes_whole_with_the_records_around_it() {
    let (dir, path) = transform("tag add n = \"{{ id }}\"\n");
    let input = dir.path().join("big.ndjson");
    let blob = "a".repeat(100 * 1024 * 1024);
    std::fs::write(
        &input,
        format!("{{\"id\":\"1\"}}\n{{\"id\":\"2\",\"blob\":\"{blob}\"}}\n{{\"id\":\"3\"}}\n"),
    )
    .unwrap();
    for threads in ["1", "2"] {
        let output = xf()
            .args([
                "run".as_ref(),
                path.as_os_str(),
                input.as_os_str(),
                "-j".as_ref(),
                threads.as_ref(),
                // Over the default limit (4 MiB): a user who expects such records raises it.
                "--max-record-size".as_ref(),
                "128".as_ref(),
            ])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<&[u8]> = output.stdout.split(|b| *b == b'\n').collect();
        assert_eq!(lines.len(), 4, "three lines and the final newline");
        assert_eq!(lines[0], b"{\"id\":\"1\",\"n\":\"1\"}");
        let expected_big = format!("{{\"id\":\"2\",\"blob\":\"{blob}\",\"n\":\"2\"}}");
        assert!(
            lines[1] == expected_big.as_bytes(),
            "the big record changed"
        );
        assert_eq!(lines[2], b"{\"id\":\"3\",\"n\":\"3\"}");
    }
}

fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_while_waiting_for_input_ends_xf_with_its_output_written() {
    let (_dir, path) = transform("label ok = true\n");
    let mut child = spawn_piped(&["run".as_ref(), path.as_os_str()]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin.write_all(b"{\"n\":1}\n").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "{\"n\":1,\"ok\":true}\n");
    send_signal(&child, "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    drop(stdin);
}

#[test]
fn sigint_mid_stream_never_leaves_half_a_line() {
    let (_dir, path) = transform("label ok = true\n");
    let mut child = spawn_piped(&["run".as_ref(), path.as_os_str(), "--stats".as_ref()]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk: Vec<u8> = (0..2000)
            .flat_map(|i| format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(200)).into_bytes())
            .collect();
        for _ in 0..500 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    send_signal(&child, "INT");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    writer.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    let output = first + &rest;
    assert!(output.ends_with('\n'), "a half line at the end");
    for line in output.lines() {
        let record: serde_json::Value = serde_json::from_str(line).expect("every line whole");
        assert_eq!(record["ok"], true);
    }
    // Interrupted while busy: the summary accounts for every record read.
    if let Some(summary) = stderr
        .lines()
        .find(|l| l.starts_with("xf: ") && l.contains(" read, "))
    {
        let read: usize = summary[4..].split(' ').next().unwrap().parse().unwrap();
        let failed: usize = summary
            .split(", ")
            .nth(3)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(output.lines().count() + failed, read, "{stderr}");
    }
}

#[test]
fn validate_passes_valid_records_through_and_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dir.path().join("dead.ndjson");
    let matched =
        std::fs::read_to_string(repo("tests/fixtures/queryai/detection-matched.json")).unwrap();
    let input = format!("{matched}\n{{\"detection_id\":7,\"severity\":\"SEVERE\"}}\n");
    let (code, stdout, stderr) = run(
        &[
            "validate".as_ref(),
            "queryai-detection".as_ref(),
            "--dead-letter".as_ref(),
            dead.as_os_str(),
        ],
        input.as_bytes(),
    );
    assert_eq!(code, 1, "{stderr}");
    let written: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&matched).unwrap();
    assert_eq!(written, expected);
    // The command wrote the one `validate` statement: errors name no line of it.
    assert!(
        stderr.contains("error: stdin:23: does not match schema queryai-detection: "),
        "{stderr}"
    );
    assert!(!stderr.contains("(line "), "{stderr}");
    assert!(
        stderr.contains("/severity: \"SEVERE\" is not one of"),
        "{stderr}"
    );
    let letters = std::fs::read_to_string(&dead).unwrap();
    assert_eq!(letters.lines().count(), 1);

    let (code, _, stderr) = run(&["validate".as_ref(), "queryai".as_ref()], b"{}");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no shipped schema is named `queryai`"),
        "{stderr}"
    );
}

#[test]
fn now_fixes_the_clock_of_expressions_and_templates() {
    let (_dir, path) =
        transform("set t = now()\nset text = \"{{ now() | format_time('rfc3339') }}\"\n");
    for now in ["1714557600000", "2024-05-01T10:00:00Z"] {
        let (code, stdout, stderr) = run(
            &[
                OsStr::new("run"),
                path.as_os_str(),
                OsStr::new("--now"),
                OsStr::new(now),
            ],
            b"{}\n",
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(
            stdout,
            "{\"t\":1714557600000,\"text\":\"2024-05-01T10:00:00Z\"}\n"
        );
    }
    let (code, _, stderr) = run(
        &[
            OsStr::new("run"),
            path.as_os_str(),
            OsStr::new("--now"),
            OsStr::new("yesterday"),
        ],
        b"{}\n",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--now"), "{stderr}");
}

#[test]
fn fan_out_makes_one_record_per_item_within_max_outputs() {
    let (_dir, path) = transform("fan_out item in items\nset item = item\ntag remove items\n");
    let input = br#"{"id":1,"items":[1,2,3]}
{"id":2,"items":[]}
{"id":3,"items":[4,5,6,7]}
"#;
    let (status, out, err) = run(
        &["run".as_ref(), path.as_os_str(), "--stats".as_ref()],
        input,
    );
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            r#"{"id":1,"item":1}"#,
            r#"{"id":1,"item":2}"#,
            r#"{"id":1,"item":3}"#,
            r#"{"id":3,"item":4}"#,
            r#"{"id":3,"item":5}"#,
            r#"{"id":3,"item":6}"#,
            r#"{"id":3,"item":7}"#,
        ]
    );
    assert!(
        err.contains("xf: 3 read, 2 written, 1 dropped, 0 failed (7 records out, by fan_out)"),
        "{err}"
    );

    // A record that would make more than --max-outputs is failed whole: none of its records is written.
    let (status, out, err) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            "--max-outputs".as_ref(),
            "3".as_ref(),
        ],
        input,
    );
    assert_eq!(status, 1, "{err}");
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(out.lines().all(|line| line.contains(r#""id":1"#)), "{out}");
    assert!(
        err.contains("stdin:3: fan_out (line 1): over the limit of 3 records made of one record (--max-outputs)"),
        "{err}"
    );
}

/// The write end of a pipe whose reader is already gone, as a child's
/// stdout: `xf … | head -0` without the race of who goes first.
fn closed_pipe() -> Stdio {
    let mut reader = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    let writer = reader.stdin.take().unwrap();
    reader.wait().unwrap();
    Stdio::from(writer)
}

/// Runs xf with `input` on stdin and a stdout nobody reads: (exit code, stderr).
fn run_into_closed_pipe(args: &[&OsStr], input: &[u8]) -> (Option<i32>, String) {
    let mut child = xf()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Issue 28: every subcommand that answers on stdout ends as `xf run` does
/// when its reader has gone away: no panic, no message, its usual status
/// (`xf check` still says, by its status, whether every file loaded).
#[test]
fn every_command_ends_quietly_when_its_reader_has_gone() {
    let (dir, unformatted) = transform("label   ok=true\n");
    let broken = dir.path().join("broken.xf");
    std::fs::write(&broken, "format xml\n").unwrap();
    let pipeline = dir.path().join("p.xfp");
    std::fs::write(
        &pipeline,
        "source s at \"/in\" {\n  transform \"t.xf\"\n  auth none\n}\ndestination d {\n  uri \"https://siem.example.com/in\"\n}\n",
    )
    .unwrap();
    let armor = repo("tests/fixtures/armor/transform-config.json");
    let transforms = repo("transforms");
    let records = b"{\"a\": 1}\n{\"a\": 2}\n";
    // (arguments, exit status, what stderr starts with: its only text)
    let cases: Vec<(Vec<&OsStr>, i32, &str)> = vec![
        (vec!["run".as_ref(), unformatted.as_os_str()], 0, ""),
        (vec!["check".as_ref(), unformatted.as_os_str()], 0, ""),
        (
            vec!["check".as_ref(), "-e".as_ref(), "label a = 1".as_ref()],
            0,
            "",
        ),
        (
            vec![
                "check".as_ref(),
                unformatted.as_os_str(),
                broken.as_os_str(),
            ],
            2,
            "error[E0101]: unknown format `xml`",
        ),
        (vec!["check".as_ref(), pipeline.as_os_str()], 0, ""),
        (vec!["fmt".as_ref(), "-".as_ref()], 0, ""),
        (
            vec!["fmt".as_ref(), "--check".as_ref(), unformatted.as_os_str()],
            1,
            "",
        ),
        (
            vec!["import".as_ref(), "armor".as_ref(), armor.as_os_str()],
            0,
            "",
        ),
        (vec!["test".as_ref(), transforms.as_os_str()], 0, ""),
        (vec!["--help".as_ref()], 0, ""),
        (vec!["spool".as_ref(), "--help".as_ref()], 0, ""),
        (vec!["--version".as_ref()], 0, ""),
    ];
    for (args, expected, said) in cases {
        let stdin: &[u8] = if args[0] == "fmt" {
            b"label   ok=true\n"
        } else {
            records
        };
        let (status, stderr) = run_into_closed_pipe(&args, stdin);
        let shown: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
        let shown = shown.join(" ");
        assert_eq!(status, Some(expected), "xf {shown}: {stderr}");
        assert!(stderr.starts_with(said), "xf {shown}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.to_lowercase().contains("pipe"),
            "xf {shown}: {stderr}"
        );
        if said.is_empty() {
            assert_eq!(stderr, "", "xf {shown}");
        }
    }
}

/// The subcommands a help text lists under `Commands:` (but `help`).
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// The long options a help text lists under `Options:`, as often as listed.
fn long_options(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Options:")
        .filter_map(|line| {
            let line = line.trim_start();
            if !line.starts_with('-') {
                return None;
            }
            let at = line.find("--")?;
            let name: String = line[at..]
                .chars()
                .take_while(|c| !matches!(c, ' ' | '<' | '[' | '=' | ','))
                .collect();
            Some(name)
        })
        .collect()
}

/// Issue 28: `xf spool purge --help` listed `--queue` twice (the JetStream
/// server and "delete queued records"), and the README's
/// `xf spool purge --spool DIR --queue` could not run. Every subcommand's
/// help, from `xf --help` down, prints, and names each option once.
#[test]
fn every_subcommand_s_help_prints_and_names_each_option_once() {
    let mut pending = vec![Vec::<String>::new()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        let output = xf().args(&path).arg("--help").output().unwrap();
        let help = String::from_utf8_lossy(&output.stdout);
        let shown = format!("xf {} --help", path.join(" "));
        assert!(
            output.status.success(),
            "{shown}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut options = long_options(&help);
        assert!(options.contains(&"--help".to_string()), "{shown}: {help}");
        options.sort();
        let count = options.len();
        options.dedup();
        assert_eq!(
            options.len(),
            count,
            "{shown} lists an option twice: {help}"
        );
        for name in subcommands(&help) {
            let mut deeper = path.clone();
            deeper.push(name);
            pending.push(deeper);
        }
        seen.push(path.join(" "));
    }
    assert!(seen.iter().any(|path| path == "spool purge"), "{seen:?}");
    // Both of purge's meanings have their own name now.
    let help = xf().args(["spool", "purge", "--help"]).output().unwrap();
    let options = long_options(&String::from_utf8_lossy(&help.stdout));
    assert!(options.contains(&"--queued".to_string()), "{options:?}");
    assert!(options.contains(&"--queue".to_string()), "{options:?}");
}

/// minijinja's `~` would write `True`/`None` where every other rendering
/// writes `true` and empty text: xf refuses it when the transform loads, in
/// the `.xf` and in template files, with the way to write it instead.
#[test]
fn a_template_s_tilde_is_refused_at_load_with_what_to_write_instead() {
    let (dir, path) =
        transform("set a = \"{{ flag }}/{{ none }}\"\nset b = \"{{ flag ~ '/' ~ none }}\"\n");
    for command in ["check", "run"] {
        let (code, stdout, stderr) = run(
            &[command.as_ref(), path.as_os_str()],
            b"{\"flag\": true, \"none\": null}\n",
        );
        assert_eq!(code, 2, "{command}: {stdout}{stderr}");
        assert_eq!(stdout, "", "{command}");
        assert!(
            stderr.contains(&format!(
                "error[E0307]: templates may not use `~`\n  --> {}:2:18\n",
                path.display()
            )),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("2 | set b = \"{{ flag ~ '/' ~ none }}\"\n  |                  ^ minijinja's `~` writes `True` and `None` for booleans and null\n"), "{stderr}");
        assert!(
            stderr.contains(
                "= write `{{ a }}{{ b }}`, or `[a, b] | join(\"\")` inside an expression\n"
            ),
            "{stderr}"
        );
        assert!(
            stderr.contains("= this template holds 1 more `~` after this one\n"),
            "{stderr}"
        );
    }
    // In a template file too, named with its own line and column.
    std::fs::write(dir.path().join("t.xf"), "message m = template \"m.j2\"\n").unwrap();
    std::fs::write(
        dir.path().join("m.j2"),
        "{% if x %}\n{% set k = x ~ y %}{% endif %}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["check".as_ref(), path.as_os_str()], b"");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("template file uses the `~` operator, which xf refuses"),
        "{stderr}"
    );
    assert!(stderr.contains("--> m.j2:2:14\n"), "{stderr}");
    // What the hint says to write renders by xf's model.
    std::fs::write(
        dir.path().join("t.xf"),
        "set a = \"{{ flag }}/{{ none }}\"\nset b = \"{{ [flag, '/', none] | join('') }}\"\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run(
        &["run".as_ref(), path.as_os_str()],
        b"{\"flag\": true, \"none\": null}\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "{\"flag\":true,\"none\":null,\"a\":\"true/\",\"b\":\"true/\"}\n"
    );
}

/// `request` in a transform: null without the flags (its names missing, no
/// error), set by `--request-header` and `--request-source` as `xf serve`
/// sets it: names lower-cased, a repeated header joined with `, `, and the
/// credential headers withheld, in expressions, conditions and templates.
#[test]
fn request_headers_and_source_come_from_the_command_line() {
    let (_dir, path) = transform(
        "set event = request.headers.\"x-github-event\"\n\
         set accept = request.headers.accept\n\
         set source = request.source\n\
         set auth = coalesce(request.headers.authorization, request.headers.cookie, \"withheld\")\n\
         when request.headers.\"x-github-event\" == \"ping\" {\n  set ping = true\n}\n\
         message m = \"{{ request.headers['x-github-event'] }}|{{ request.source }}|{{ request.headers.authorization }}|{{ request.headers['proxy-authorization'] }}|{{ request.index }}\"\n",
    );
    let with = |flags: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec!["run".as_ref(), path.as_os_str()];
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        run(&args, b"{\"request\": \"the record's own\"}\n")
    };
    let (status, out, err) = with(&[
        "--request-header",
        "X-GitHub-Event: ping",
        "--request-header",
        "Accept: a/b",
        "--request-header",
        "accept:  c/d ",
        "--request-header",
        "Authorization: Bearer s3cret",
        "--request-header",
        "Proxy-Authorization: Basic s3cret",
        "--request-header",
        "Cookie: session=s3cret",
        "--request-source",
        "github",
    ]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out,
        "{\"request\":\"the record's own\",\"event\":\"ping\",\"accept\":\"a/b, c/d\",\
         \"source\":\"github\",\"auth\":\"withheld\",\"ping\":true,\"m\":\"ping|github|||\"}\n"
    );
    assert!(!out.contains("s3cret"));

    let (status, out, err) = with(&[]);
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out,
        "{\"request\":\"the record's own\",\"auth\":\"withheld\",\"m\":\"||||\"}\n"
    );

    let (status, _, err) = with(&["--request-header", "no colon"]);
    assert_eq!(status, 2);
    assert!(err.contains("is not `Name: value`"), "{err}");
}

/// The README's example of `request` loads and runs as it says.
#[test]
fn the_readme_request_example_runs() {
    let readme = std::fs::read_to_string(repo("README.md")).unwrap();
    let section = &readme[readme.find("### The request").expect("the section")..];
    let example = section
        .split("```\n")
        .nth(1)
        .expect("the section's example");
    let (_dir, path) = transform(example);
    let (status, out, err) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            "--request-header".as_ref(),
            "X-GitHub-Event: push".as_ref(),
            "--request-source".as_ref(),
            "github".as_ref(),
        ],
        b"{\"a\": 1}\n",
    );
    assert_eq!(status, 0, "{err}");
    assert_eq!(
        out,
        "{\"a\":1,\"event\":\"push\",\"title\":\"github: push\"}\n"
    );
    let (status, out, err) = run(
        &[
            "run".as_ref(),
            path.as_os_str(),
            "--request-header".as_ref(),
            "X-GitHub-Event: ping".as_ref(),
        ],
        b"{\"a\": 1}\n",
    );
    assert_eq!((status, out.as_str()), (0, ""), "{err}");
}
