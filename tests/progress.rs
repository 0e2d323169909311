//! `xf run --progress`, through the real binary with standard error a pipe:
//! forced on, the bar is drawn there all the same (a carriage return and an
//! erase-line before each redraw), never on stdout, and it leaves the error
//! lines whole and one summary line at the end; off (`--no-progress`, or by
//! default in a pipe) it adds nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;

const TRANSFORM: &str =
    "drop when n == 7\nwhen n == 5 {\n  fail \"five is not allowed\"\n}\nlabel ok = true\n";

/// What erases the bar before anything else is written.
const ERASE: &str = "\r\x1b[2K";

fn xf(args: &[&std::ffi::OsStr]) -> Output {
    Command::cargo_bin("xf")
        .unwrap()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A transform and an input of `records` lines (n = 0…9 over and over; every
/// 500th line is not JSON) in a fresh directory.
fn setup(records: usize) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, TRANSFORM).unwrap();
    let input = dir.path().join("in.ndjson");
    let mut text = String::new();
    for i in 0..records {
        if i % 500 == 499 {
            text.push_str("{not json\n");
        } else {
            text.push_str(&format!("{{\"n\":{},\"i\":{i}}}\n", i % 10));
        }
    }
    std::fs::write(&input, text).unwrap();
    (dir, transform, input)
}

/// Standard error with every drawing of the bar taken out: each is the text
/// of one line up to the erase that follows it. An error line written into
/// the middle of the bar would not come out whole.
fn without_bar(stderr: &str) -> String {
    let mut kept = String::new();
    for line in stderr.split_inclusive('\n') {
        let after_last_erase = line.rsplit(ERASE).next().unwrap();
        kept.push_str(after_last_erase);
    }
    kept
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn args<'a>(transform: &'a Path, input: &'a Path, more: &[&'a str]) -> Vec<&'a std::ffi::OsStr> {
    let mut args = vec!["run".as_ref(), transform.as_os_str(), input.as_os_str()];
    args.extend(more.iter().map(|arg| std::ffi::OsStr::new(*arg)));
    args
}

#[test]
fn forced_progress_leaves_stdout_alone_and_ends_with_a_summary() {
    let (_dir, transform, input) = setup(3000);
    let plain = xf(&args(&transform, &input, &["--no-progress"]));
    let shown = xf(&args(&transform, &input, &["--progress"]));
    assert_eq!(plain.status.code(), Some(1));
    assert_eq!(shown.status.code(), Some(1));
    assert_eq!(
        shown.stdout, plain.stdout,
        "stdout is the same byte for byte"
    );
    let stderr = text(&shown.stderr);
    assert!(
        stderr.contains(ERASE) && stderr.contains(" records ("),
        "the bar was drawn: {stderr:?}"
    );
    assert!(!text(&shown.stdout).contains(" records ("));
    // The error lines, whole and in order, then the summary.
    let lines = without_bar(&stderr);
    let plain_errors = text(&plain.stderr);
    assert_eq!(plain_errors.lines().count(), 6 + 300, "{plain_errors}");
    let (errors, summary) = lines.rsplit_once("xf: ").unwrap();
    assert_eq!(errors, plain_errors);
    // 3000 lines: 6 not JSON, 300 of n == 5 failed, 300 of n == 7 dropped.
    // 3000 lines of 14 to 16 bytes: some 44 KiB, all of them read.
    let bytes = std::fs::metadata(&input).unwrap().len();
    let kib = format!("{:.2} KiB", bytes as f64 / 1024.0);
    assert!(
        summary.starts_with(&format!("3000 records, {kib} in ")),
        "{summary:?} ({bytes} bytes)"
    );
    assert!(
        summary.ends_with(" records/s), 306 failed, 300 dropped\n"),
        "{summary:?}"
    );
}

#[test]
fn no_progress_and_a_pipe_add_nothing_to_stderr() {
    let (_dir, transform, input) = setup(1200);
    let default = xf(&args(&transform, &input, &[]));
    let off = xf(&args(&transform, &input, &["--no-progress"]));
    // The last of the two flags counts.
    let last_off = xf(&args(&transform, &input, &["--progress", "--no-progress"]));
    for output in [&default, &off, &last_off] {
        let stderr = text(&output.stderr);
        assert!(
            stderr.lines().all(|line| line.starts_with("error: ")),
            "{stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 2 + 120);
        assert!(!stderr.contains('\r') && !stderr.contains('\x1b'));
        assert_eq!(output.stdout, default.stdout);
    }
}

#[test]
fn the_bar_shows_bytes_and_time_left_for_files_and_a_spinner_for_stdin() {
    let (_dir, transform, input) = setup(200);
    let file = text(&xf(&args(&transform, &input, &["--progress"])).stderr);
    let total = std::fs::metadata(&input).unwrap().len();
    assert!(
        file.contains(&format!("/{:.2} KiB [", total as f64 / 1024.0)),
        "{file:?}"
    );
    assert!(file.contains(" left"), "{file:?}");
    let piped = Command::cargo_bin("xf")
        .unwrap()
        .args(["run".as_ref(), transform.as_os_str(), "--progress".as_ref()])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    let stderr = text(&piped.stderr);
    // Standard input has no size known ahead: bytes and their rate, no time left.
    assert!(stderr.contains("/s)"), "{stderr:?}");
    assert!(!stderr.contains(" left"), "{stderr:?}");
    assert!(
        stderr.ends_with("records/s), 20 failed, 20 dropped\n"),
        "{stderr:?}"
    );
}

#[test]
fn progress_with_the_trace_on_stderr_is_refused_and_with_a_trace_file_allowed() {
    let (dir, transform, input) = setup(20);
    let refused = xf(&args(&transform, &input, &["--progress", "--trace"]));
    assert_eq!(refused.status.code(), Some(2));
    assert_eq!(
        text(&refused.stderr),
        "error: --progress and --trace both write to standard error; give --trace=FILE to have both\n"
    );
    assert!(refused.stdout.is_empty());
    let trace = dir.path().join("trace.txt");
    let trace_arg = format!("--trace={}", trace.display());
    let both = xf(&args(&transform, &input, &["--progress", &trace_arg]));
    assert_eq!(both.status.code(), Some(1));
    assert!(text(&both.stderr).contains("xf: 20 records, "));
    assert!(std::fs::read_to_string(&trace).unwrap().contains("record "));
}

#[test]
fn validate_takes_progress_too() {
    let (dir, _transform, _input) = setup(0);
    let input = dir.path().join("alerts.ndjson");
    std::fs::write(&input, "{\"a\":1}\n{\"a\":\"x\"}\n").unwrap();
    let schema = dir.path().join("schema.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"a":{"type":"integer"}}}"#,
    )
    .unwrap();
    let output = xf(&[
        "validate".as_ref(),
        schema.as_os_str(),
        input.as_os_str(),
        "--progress".as_ref(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(text(&output.stdout), "{\"a\":1}\n");
    let stderr = without_bar(&text(&output.stderr));
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(
        lines[1].starts_with("xf: 2 records, 18 B in "),
        "{stderr:?}"
    );
}

#[test]
fn sigint_clears_the_bar_before_the_signal_line() {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label ok = true\n").unwrap();
    let mut child = Command::cargo_bin("xf")
        .unwrap()
        .args(["run".as_ref(), transform.as_os_str(), "--progress".as_ref()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"n\":1}\n{\"n\":2}\n").unwrap();
    stdin.flush().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let status = Command::new("kill")
        .args(["-INT".to_string(), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    drop(stdin);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr:?}");
    let lines = without_bar(&stderr);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr:?}");
    assert!(
        lines[0].starts_with("xf: 2 records, 16 B in "),
        "{stderr:?}"
    );
    assert_eq!(
        lines[1],
        "xf: stopped by signal 2 after 2 records; every record read was written whole or dead-lettered"
    );
}

/// Runs `command` (a shell command line) with a terminal as its standard
/// streams, through util-linux's `script`; what the terminal got, or `None`
/// where there is no `script`.
fn on_a_terminal(command: &str, dir: &Path) -> Option<String> {
    let typescript = dir.join("typescript");
    let status = Command::new("script")
        .args(["-qc", command])
        .arg(&typescript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .ok()?;
    assert!(status.success(), "{command}");
    Some(String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned())
}

#[test]
fn on_a_terminal_the_bar_is_on_for_files_and_off_for_stdin() {
    let (dir, transform, input) = setup(100);
    let xf = assert_cmd::cargo::cargo_bin("xf");
    let out = dir.path().join("out.ndjson");
    let run = format!(
        "{} run {} {} > {}",
        xf.display(),
        transform.display(),
        input.display(),
        out.display()
    );
    let Some(terminal) = on_a_terminal(&run, dir.path()) else {
        eprintln!("no `script` here: the terminal default is not tested");
        return;
    };
    assert!(terminal.contains(" records ("), "{terminal:?}");
    assert!(
        terminal.contains("xf: 100 records, "),
        "the summary: {terminal:?}"
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 80);
    let from_stdin = format!(
        "{} run {} < {} > {}",
        xf.display(),
        transform.display(),
        input.display(),
        out.display()
    );
    let terminal = on_a_terminal(&from_stdin, dir.path()).unwrap();
    assert!(!terminal.contains("records"), "{terminal:?}");
    assert!(terminal.contains("error: stdin:6: fail (line 3): five is not allowed"));
}

/// Issue 28: with the bar on, a single-threaded run (`-j 1`, files) cost
/// some 2-6 %: the bar's redrawing thread made the process multi-threaded,
/// and glibc's malloc and free take their locks from then on. There the
/// reads redraw the bar instead: xf stays one thread, and the bar still
/// moves while the run goes on.
#[cfg(target_os = "linux")]
#[test]
fn with_one_thread_and_files_the_reads_redraw_the_bar_and_xf_stays_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let transform = dir.path().join("t.xf");
    std::fs::write(&transform, "label ok = true\n").unwrap();
    let input = dir.path().join("in.ndjson");
    std::fs::write(
        &input,
        "{\"n\":1,\"text\":\"some words\"}\n".repeat(400_000),
    )
    .unwrap();
    let mut child = Command::cargo_bin("xf")
        .unwrap()
        .args(args(&transform, &input, &["-j", "1", "--progress"]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        BufReader::new(stderr).read_to_string(&mut text).unwrap();
        text
    });
    // Counted while the run goes on (it takes well over a second in a debug build).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let threads = std::fs::read_dir(format!("/proc/{}/task", child.id()))
        .map(|tasks| tasks.count())
        .ok();
    let status = child.wait().unwrap();
    let stderr = reader.join().unwrap();
    assert!(status.success(), "{stderr:?}");
    assert_eq!(threads, Some(1), "xf ran on more than one thread");
    let draws = stderr.matches(ERASE).count();
    assert!(draws >= 3, "the bar was drawn {draws} times: {stderr:?}");
    assert!(stderr.ends_with("records/s), 0 failed\n"), "{stderr:?}");
}
