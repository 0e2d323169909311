//! Hostile input against the real binary: the repros of the "unattended-safe"
//! review, each run at one thread and at several. No record may take the
//! process down, stall it, choose a file, or be lost without a word.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

fn xf() -> Command {
    Command::cargo_bin("xf").unwrap()
}

/// A folder with `t.xf` holding `text`, and any other files given.
fn folder(text: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.xf");
    std::fs::write(&path, text).unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    (dir, path)
}

struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], input: &[u8]) -> Ran {
    let mut child = xf()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread: xf may stop reading (and a full pipe must not block the test).
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn good_records(n: usize) -> String {
    (0..n).map(|i| format!("{{\"i\":{i}}}\n")).collect()
}

const THREADS: [&str; 2] = ["1", "3"];

/// `xf run T -j THREADS --stats` and `more` arguments, on `input`.
fn run_with_stats(t: &std::path::Path, threads: &str, more: &[&str], input: &[u8]) -> Ran {
    let mut args = vec!["run", t.to_str().unwrap(), "-j", threads, "--stats"];
    args.extend_from_slice(more);
    run(&args, input)
}

#[test]
fn a_template_that_would_overflow_or_exhaust_memory_costs_only_its_record() {
    for (template, record) in [
        // Panicked with "capacity overflow" (exit 101), losing the records before it.
        (
            r#"{{ "a\nb" | indent(n) }}"#,
            r#"{"bad":1,"n":18446744073709551615}"#,
        ),
        // Aborted allocating 6 GiB.
        ("{{ [1] | batch(n, 0) }}", r#"{"bad":1,"n":1000000000000}"#),
        // Ran for ever.
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            r#"{"bad":1}"#,
        ),
        ("{{ 'x' * 90000000 }}{{ 'y' * 90000000 }}", r#"{"bad":1}"#),
    ] {
        // Only the hostile record takes the template's costly branch.
        let (dir, t) = folder(
            &format!("message m = \"\"\"{{% if bad %}}{template}{{% endif %}}\"\"\"\n"),
            &[],
        );
        let input = format!("{}{record}\n{}", good_records(1000), good_records(10));
        for threads in THREADS {
            let dead = dir.path().join(format!("dead-{threads}.ndjson"));
            let ran = run_with_stats(
                &t,
                threads,
                &["--dead-letter", dead.to_str().unwrap()],
                input.as_bytes(),
            );
            assert_eq!(ran.code, 1, "{template}: {}", ran.stderr);
            assert_eq!(ran.stdout.lines().count(), 1010, "{template}");
            assert!(
                ran.stderr
                    .contains("xf: 1011 read, 1010 written, 0 dropped, 1 failed"),
                "{template}: {}",
                ran.stderr
            );
            assert!(ran
                .stderr
                .contains("stdin:1001: message (line 1): template error"));
            let letters = std::fs::read_to_string(&dead).unwrap();
            assert_eq!(letters.lines().count(), 1);
            assert!(letters.contains(&record.replace('"', "\\\"")));
        }
    }
}

/// minijinja joins lists lazily and charged nothing for it: a list added to
/// itself 30 times held 2^30 items, reading it ran without fuel, and past 32
/// joins minijinja copied it whole (the process ran out of memory). Now every
/// list an operator makes is built within the template's fuel.
#[test]
fn a_template_that_doubles_a_list_fails_its_record_quickly() {
    let doubling =
        "{% set ns = namespace(x=[1]) %}{% for i in range(40) %}{% set ns.x = ns.x + ns.x %}{% endfor %}";
    for (how, transform, files) in [
        (
            "a namespace in a loop",
            format!("message m = \"\"\"{{% if bad %}}{doubling}{{{{ ns.x | string | length }}}}{{% endif %}}\"\"\"\n"),
            vec![],
        ),
        (
            "a macro calling itself",
            "message m = \"\"\"{% macro d(x, n) %}{% if n %}{{ d(x + x, n - 1) }}{% else %}\
             {{ x | sum }}{% endif %}{% endmacro %}{% if bad %}{{ d([1], 40) }}{% endif %}\"\"\"\n"
                .to_string(),
            vec![],
        ),
        (
            "a template file",
            "message m = template \"double.j2\"\n".to_string(),
            vec![(
                "double.j2",
                format!("{{% if bad %}}{doubling}{{{{ ns.x }}}}{{% endif %}}"),
            )],
        ),
    ] {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let (dir, t) = folder(&transform, &files);
        let input = format!("{}{{\"bad\":1}}\n{}", good_records(100), good_records(10));
        for threads in THREADS {
            let dead = dir.path().join(format!("dead-{threads}.ndjson"));
            let started = Instant::now();
            let ran = run_with_stats(
                &t,
                threads,
                &["--dead-letter", dead.to_str().unwrap()],
                input.as_bytes(),
            );
            // Unguarded, this took minutes or all of the memory; guarded, a
            // second or two of a debug build.
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{how}: {:?}",
                started.elapsed()
            );
            assert_eq!(ran.code, 1, "{how}: {}", ran.stderr);
            assert_eq!(ran.stdout.lines().count(), 110, "{how}");
            assert!(
                ran.stderr.contains("xf: 111 read, 110 written, 0 dropped, 1 failed"),
                "{how}: {}",
                ran.stderr
            );
            assert!(
                ran.stderr.contains(
                    "stdin:101: message (line 1): template error writing m: a list made with \
                     `+` or `*` would hold"
                ),
                "{how}: {}",
                ran.stderr
            );
            assert!(ran.stderr.contains("(--template-fuel)"), "{how}: {}", ran.stderr);
            let letters = std::fs::read_to_string(&dead).unwrap();
            assert_eq!(letters.lines().count(), 1, "{how}");
            assert!(letters.contains("{\\\"bad\\\":1}"), "{how}: {letters}");
        }
    }
}

#[test]
fn building_a_value_too_deep_is_a_record_error_at_every_thread_count() {
    let (_dir, t) = folder("for x in items {\n  nest w\n}\n", &[]);
    let items: Vec<String> = (0..30_000).map(|i| i.to_string()).collect();
    let input = format!("{{\"items\":[{}]}}\n{{\"items\":[1]}}\n", items.join(","));
    for threads in THREADS {
        let ran = run(
            &["run", t.to_str().unwrap(), "-j", threads],
            input.as_bytes(),
        );
        assert_eq!(ran.code, 1, "{}", ran.stderr);
        assert!(ran
            .stderr
            .contains("stdin:1: nest (line 2): the record would nest deeper than 127 levels"));
        // (`nest` took the loop's binding along: it is put back inside `w`.)
        assert_eq!(ran.stdout, "{\"w\":{\"items\":[1],\"x\":1}}\n");
    }
}

/// At the depth limit's edge: every record xf writes, xf reads back.
#[test]
fn whatever_is_built_up_to_the_limit_reads_back() {
    let (dir, t) = folder("for x in items {\n  nest w\n}\n", &[]);
    let empty = dir.path().join("empty.xf");
    std::fs::write(&empty, "").unwrap();
    let input: String = (118..132)
        .map(|n| format!("{{\"items\":[{}]}}\n", vec!["1"; n].join(",")))
        .collect();
    let built = run(&["run", t.to_str().unwrap(), "-j1"], input.as_bytes());
    assert_eq!(built.code, 1, "{}", built.stderr);
    let written = built.stdout.lines().count();
    assert!((1..14).contains(&written), "{written} written");
    let read = run(&["run", empty.to_str().unwrap()], built.stdout.as_bytes());
    assert_eq!(read.code, 0, "{}", read.stderr);
    assert_eq!(read.stdout, built.stdout);
}

#[test]
fn a_loop_over_a_huge_array_stops_at_the_statement_limit() {
    let (_dir, t) = folder("for x in items {\n  set last = x\n}\n", &[]);
    let input = format!("{{\"items\":[{}]}}\n", vec!["1"; 2000].join(","));
    let ran = run(
        &["run", t.to_str().unwrap(), "--max-statements", "1000"],
        input.as_bytes(),
    );
    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .contains("over the limit of 1000 statements run for one record"),
        "{}",
        ran.stderr
    );
}

fn nested_whens(depth: usize) -> String {
    format!(
        "{}label x = 1\n{}",
        "when a exists {\n".repeat(depth),
        "}\n".repeat(depth)
    )
}

#[test]
fn an_over_deep_transform_is_a_load_error_never_a_crash() {
    for text in [
        nested_whens(1400),
        nested_whens(5000),
        format!(
            "drop when {}a exists{}\n",
            "(".repeat(5000),
            ")".repeat(5000)
        ),
        format!("set x = {}1{}\n", "[".repeat(5000), "]".repeat(5000)),
        // `not`s nest without brackets.
        format!("drop when {}a exists\n", "not ".repeat(20_000)),
        format!(
            "drop when {}(a exists)\n",
            "not (".repeat(40) + &"not ".repeat(30)
        ),
    ] {
        let (_dir, t) = folder(&text, &[]);
        let ran = run(&["check", t.to_str().unwrap()], b"");
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert!(
            ran.stderr.contains("error[E0004]: nested too deep"),
            "{}",
            ran.stderr
        );
        assert!(ran.stderr.contains("this opens level 65"), "{}", ran.stderr);
        let ran = run(&["run", t.to_str().unwrap()], b"{\"a\":1}\n");
        assert_eq!(ran.code, 2);
    }
    // A `when … else when …` chain nests one level a branch.
    let (_dir, t) = folder(&else_when_chain(4000), &[]);
    let ran = run(&["check", t.to_str().unwrap()], b"");
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("`else when` 257 of the chains open here"),
        "{}",
        ran.stderr
    );
    // At the limits, the same at every thread count.
    for (text, out) in [
        (nested_whens(64), "{\"a\":1,\"x\":1}\n"),
        (else_when_chain(257), "{\"a\":1,\"b\":1}\n"),
        (
            // An odd number of `not`s: the record stays.
            format!("drop when {}a exists\n", "not ".repeat(63)),
            "{\"a\":1}\n",
        ),
    ] {
        let (_dir, t) = folder(&text, &[]);
        for threads in THREADS {
            let ran = run(&["run", t.to_str().unwrap(), "-j", threads], b"{\"a\":1}\n");
            assert_eq!(ran.code, 0, "{}", ran.stderr);
            assert_eq!(ran.stdout, out);
        }
    }
}

/// `when a == 0 { … } else when a == 1 { … } …`: `n` branches in one chain.
fn else_when_chain(n: usize) -> String {
    let mut text = String::from("when a == 0 {\n  set b = 0\n");
    for i in 1..n {
        text.push_str(&format!("}} else when a == {i} {{\n  set b = {i}\n"));
    }
    text.push_str("}\n");
    text
}

#[test]
fn record_data_never_names_a_template() {
    let (_dir, t) = folder(
        "message m = template \"outer.j2\"\n",
        &[("outer.j2", "{% include vendor %}")],
    );
    let ran = run(&["check", t.to_str().unwrap()], b"");
    assert_eq!(ran.code, 2);
    assert!(
        ran.stderr
            .contains("`include` must name its template with a quoted string"),
        "{}",
        ran.stderr
    );
    // Inline too, and for import, from and extends.
    for template in [
        "{% include vendor %}",
        "{% import vendor as v %}",
        "{% from vendor import x %}",
        "{% extends vendor %}",
    ] {
        let (_dir, t) = folder(&format!("message m = \"{template}\"\n"), &[]);
        let ran = run(&["check", t.to_str().unwrap()], b"");
        assert_eq!(ran.code, 2, "{template}");
        assert!(ran.stderr.contains("error[E0301]"), "{}", ran.stderr);
    }
}

#[test]
fn quoted_includes_are_loaded_with_the_transform_and_nothing_else_is_read() {
    let (_dir, t) = folder(
        "message m = template \"outer.j2\"\n",
        &[
            (
                "outer.j2",
                "{# {% include vendor %} #}{% include \"part.j2\" %}|{% include [\"none.j2\", \"part.j2\"] %}|{% include \"gone.j2\" ignore missing %}",
            ),
            ("part.j2", "{{ who }}"),
        ],
    );
    let ran = run(
        &["run", t.to_str().unwrap()],
        b"{\"who\":\"w\",\"vendor\":\"/proc/self/environ\"}\n",
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.contains("\"m\":\"w|w|\""), "{}", ran.stdout);
    assert!(!ran.stdout.contains("PATH="));
}

#[test]
fn record_fields_never_hide_template_functions() {
    let (_dir, t) = folder(
        "message m = \"{{ range(2) | list }} {{ dict(a=1).a }} {{ namespace(n=2).n }}\"\n",
        &[],
    );
    let ran = run(
        &["run", t.to_str().unwrap()],
        b"{\"range\":\"10.0.0.0/8\",\"dict\":1,\"namespace\":\"ns\"}\n{}\n",
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for line in ran.stdout.lines() {
        // A list prints as compact JSON, as every value does (issue 13).
        assert!(line.contains("\"m\":\"[0,1] 1 2\""), "{line}");
    }
    // And a function never prints as a value.
    let (_dir, t) = folder("message m = \"{{ range }}\"\n", &[]);
    let ran = run(&["run", t.to_str().unwrap()], b"{}\n{\"range\":1}\n");
    assert_eq!(ran.code, 1);
    assert!(!ran.stdout.contains("minijinja"));
    assert_eq!(
        ran.stderr.matches("a function cannot be printed").count(),
        2
    );
}

#[test]
fn a_dead_letter_file_that_cannot_be_written_loses_no_good_record() {
    let (_dir, t) = folder("label x = 1\n", &[]);
    let input = format!("{}{{bad\n{}", good_records(1000), good_records(5));
    for threads in THREADS {
        let ran = run_with_stats(
            &t,
            threads,
            &["--dead-letter", "/dev/full"],
            input.as_bytes(),
        );
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        let written = ran.stdout.lines().count();
        assert!(written >= 1000, "{written}");
        assert!(
            ran.stderr
                .contains("cannot write dead-letter file /dev/full"),
            "{}",
            ran.stderr
        );
        assert!(
            ran.stderr
                .contains(&format!("{written} written, 0 dropped, 1 failed")),
            "{}",
            ran.stderr
        );
    }
}

/// Every record of the frame or chunk in hand still gets its error line when
/// the dead-letter file breaks under it; those not dead-lettered are counted
/// lost; and -j1 and -jN stop at the same record.
#[test]
fn a_broken_dead_letter_file_loses_no_error_line_and_counts_the_lost() {
    let (_dir, t) = folder("label x = 1\n", &[]);
    for (input, read, written, lost) in [
        ("{\"i\":0}\n[1,{\"i\":1},2]\n{bad\n{\"i\":2}\n", 4, 2, 2),
        ("{bad\n{bad\n{bad\n", 1, 0, 1),
    ] {
        let mut runs = Vec::new();
        for threads in THREADS {
            let ran = run_with_stats(
                &t,
                threads,
                &["--dead-letter", "/dev/full"],
                input.as_bytes(),
            );
            assert_eq!(ran.code, 2, "{}", ran.stderr);
            let failed = read - written;
            assert!(
                ran.stderr.contains(&format!(
                    "xf: {read} read, {written} written, 0 dropped, {failed} failed, {lost} lost"
                )),
                "-j{threads}: {}",
                ran.stderr
            );
            // One error line per failed record, with its position.
            let errors: Vec<&str> = ran
                .stderr
                .lines()
                .filter(|l| l.starts_with("error: stdin:"))
                .collect();
            assert_eq!(errors.len(), failed, "-j{threads}: {}", ran.stderr);
            assert!(
                ran.stderr.contains(&format!(
                    "{lost} failed record{} not in it",
                    if lost == 1 { " is" } else { "s are" }
                )),
                "-j{threads}: {}",
                ran.stderr
            );
            assert!(!ran.stderr.contains("nothing after it was read"));
            runs.push((ran.stdout, ran.stderr));
        }
        assert_eq!(runs[0], runs[1], "-j1 and -j3 differ");
    }
    let (out, err) = {
        let ran = run(
            &[
                "run",
                t.to_str().unwrap(),
                "-j1",
                "--dead-letter",
                "/dev/full",
            ],
            b"{\"i\":0}\n[1,{\"i\":1},2]\n{bad\n{\"i\":2}\n",
        );
        (ran.stdout, ran.stderr)
    };
    assert_eq!(out, "{\"i\":0,\"x\":1}\n{\"i\":1,\"x\":1}\n");
    assert!(
        err.contains("error: stdin:2 (batch item 0): a record is a JSON object"),
        "{err}"
    );
    assert!(
        err.contains("error: stdin:2 (batch item 2): a record is a JSON object"),
        "{err}"
    );
    assert!(!err.contains("stdin:3"), "{err}");
}

/// A dead-letter file that fills up mid-line (here: the file size limit,
/// `ulimit -f`, as a small full filesystem would) keeps whole lines only.
#[test]
fn a_dead_letter_file_that_fills_up_never_ends_in_half_a_line() {
    let records: String = (0..400)
        .map(|i| format!("{{\"i\":{i},\"pad\":\"{}\"}}\n", "p".repeat(i % 97)))
        .collect();
    let (dir, t) = folder("fail \"no\"\n", &[("in.ndjson", &records)]);
    let dead = dir.path().join("dead.ndjson");
    for threads in THREADS {
        let _ = std::fs::remove_file(&dead);
        // SIGXFSZ ignored, so that a write past the limit fails with EFBIG
        // (part of it written) instead of killing xf.
        let output = Command::new("sh")
            .arg("-c")
            .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" run \"$1\" \"$2\" -j \"$3\" --dead-letter \"$4\" --stats")
            .arg(Command::cargo_bin("xf").unwrap().get_program())
            .arg(&t)
            .arg(dir.path().join("in.ndjson"))
            .arg(threads)
            .arg(&dead)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot write dead-letter file {}", dead.display())),
            "{stderr}"
        );
        let letters = std::fs::read_to_string(&dead).unwrap();
        assert!(
            !letters.is_empty() && letters.ends_with('\n'),
            "{letters:?}"
        );
        let kept = letters.lines().count();
        assert!(kept < 400, "{kept}");
        for line in letters.lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
        assert!(stderr.contains("xf: "), "{stderr}");
    }
}

#[test]
fn a_read_error_writes_what_came_before_and_names_the_input() {
    let (dir, t) = folder("label x = 1\n", &[("good.ndjson", &good_records(1000))]);
    let good = dir.path().join("good.ndjson");
    for threads in THREADS {
        // Reading a process's own memory at offset 0 fails (EIO).
        let ran = run(
            &[
                "run",
                t.to_str().unwrap(),
                good.to_str().unwrap(),
                "/proc/self/mem",
                "-j",
                threads,
                "--stats",
            ],
            b"",
        );
        assert_eq!(ran.code, 2, "{}", ran.stderr);
        assert_eq!(ran.stdout.lines().count(), 1000);
        assert!(
            ran.stderr.contains("cannot read /proc/self/mem"),
            "{}",
            ran.stderr
        );
        assert!(ran.stderr.contains("xf: 1000 read, 1000 written"));
    }
    let ran = run(
        &["run", t.to_str().unwrap(), dir.path().to_str().unwrap()],
        b"",
    );
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("it is a directory"), "{}", ran.stderr);
}

#[test]
fn a_closed_standard_output_is_an_error_not_a_count() {
    let (dir, t) = folder("label x = 1\n", &[("good.ndjson", &good_records(10))]);
    let output = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" run \"$1\" \"$2\" --stats >&-")
        .arg(Command::cargo_bin("xf").unwrap().get_program())
        .arg(&t)
        .arg(dir.path().join("good.ndjson"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("standard output is closed"), "{stderr}");
    // Writing to /dev/null on purpose is fine, opened write-only (a shell's
    // `>`) or read-write (`1<>`, Python's `stdout=DEVNULL`) alike.
    let read_write = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .unwrap();
    for stdout in [Stdio::null(), Stdio::from(read_write)] {
        let ran = xf()
            .args(["run", t.to_str().unwrap()])
            .arg(dir.path().join("good.ndjson"))
            .stdout(stdout)
            .status()
            .unwrap();
        assert_eq!(ran.code(), Some(0));
    }
}

fn send_signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_with_half_a_record_buffered_dead_letters_it() {
    for threads in THREADS {
        let (dir, t) = folder("label x = 1\n", &[]);
        let dead = dir.path().join("dead.ndjson");
        let mut child = xf()
            .args(["run", t.to_str().unwrap(), "-j", threads, "--stats"])
            .arg("--dead-letter")
            .arg(&dead)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"{\"ok\":1}\n{\"a\":").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        send_signal(&child, "TERM");
        let started = Instant::now();
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        assert!(started.elapsed() < Duration::from_secs(3));
        assert_eq!(output.status.code(), Some(143));
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "{\"ok\":1,\"x\":1}\n"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("xf: 2 read, 1 written, 0 dropped, 1 failed"),
            "{stderr}"
        );
        let letters = std::fs::read_to_string(&dead).unwrap();
        assert!(letters.contains("stopped by a signal in the middle of this record"));
        assert!(letters.contains(r#""raw":"{\"a\":""#), "{letters}");
    }
}

/// A signal does not hide a loss: a record that could be neither written nor
/// dead-lettered after the signal makes the exit status 2, and the message says so.
#[test]
fn a_record_lost_after_a_signal_is_told_and_exits_2() {
    for threads in THREADS {
        let (_dir, t) = folder("label x = 1\n", &[]);
        let mut child = xf()
            .args(["run", t.to_str().unwrap(), "-j", threads, "--stats"])
            .args(["--dead-letter", "/dev/full"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"{\"ok\":1}\n{\"a\":").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        send_signal(&child, "TERM");
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "{\"ok\":1,\"x\":1}\n"
        );
        assert!(
            stderr.contains("stdin:2: stopped by a signal in the middle of this record"),
            "{stderr}"
        );
        assert!(
            stderr.contains("xf: 2 read, 1 written, 0 dropped, 1 failed, 1 lost"),
            "{stderr}"
        );
        assert!(stderr.contains("xf: stopped by signal 15"), "{stderr}");
        assert!(
            !stderr.contains("every record read was written whole"),
            "{stderr}"
        );
    }
}

/// The half second a stop allows counts from the signal, for all the records
/// at work or read: a batch of slow items, or slow lines, never each get one.
#[test]
fn sigterm_ends_many_slow_records_within_one_grace() {
    let (_dir, t) = folder(
        "for i in items {\n  message m = \"{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}\"\n}\n",
        &[],
    );
    let slow = format!("{{\"items\":[{}]}}", vec!["1"; 1000].join(","));
    let batch = format!("[{}]\n", [slow.as_str(); 8].join(","));
    let lines = format!("{slow}\n").repeat(8);
    for input in [batch, lines] {
        for threads in THREADS {
            let mut child = xf()
                .args(["run", t.to_str().unwrap(), "-j", threads, "--stats"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
            stdin.flush().unwrap();
            std::thread::sleep(Duration::from_millis(800));
            let started = Instant::now();
            send_signal(&child, "TERM");
            let output = child.wait_with_output().unwrap();
            drop(stdin);
            let took = started.elapsed();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                took < Duration::from_secs(2),
                "-j{threads}: {took:?}\n{stderr}"
            );
            assert_eq!(output.status.code(), Some(143), "{stderr}");
            assert!(
                stderr.contains("xf: 8 read, 0 written, 0 dropped, 8 failed"),
                "{stderr}"
            );
            assert_eq!(
                stderr
                    .matches("stopped by a signal while transforming this record")
                    .count(),
                8,
                "{stderr}"
            );
        }
    }
}

#[test]
fn sigterm_ends_a_long_record_promptly() {
    // Each pass renders a template that stays within its fuel; the loop would
    // run for minutes.
    let (_dir, t) = folder(
        "for i in items {\n  message m = \"{% for i in range(300) %}{% for j in range(300) %}{% endfor %}{% endfor %}\"\n}\n",
        &[],
    );
    for threads in THREADS {
        let mut child = xf()
            .args(["run", t.to_str().unwrap(), "-j", threads, "--stats"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let items = vec!["1"; 5000].join(",");
        stdin
            .write_all(format!("{{\"items\":[{items}]}}\n{{\"items\":[]}}\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(800));
        send_signal(&child, "TERM");
        let started = Instant::now();
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(output.status.code(), Some(143));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("stdin:1: message (line 2): stopped by a signal while transforming"),
            "{stderr}"
        );
        // The record read after it went through, if it was done before the
        // grace ran out (at -jN another worker may take it at once); else the
        // stop cut it too, and it was reported.
        let stdout = String::from_utf8_lossy(&output.stdout);
        if stdout.is_empty() {
            assert!(
                stderr.contains("stdin:2: for (line 1): stopped by a signal while transforming"),
                "{stderr}"
            );
        } else {
            assert_eq!(stdout, "{\"items\":[]}\n");
        }
        assert!(stderr.contains("xf: 2 read, "), "{stderr}");
    }
}

#[test]
fn keep_batches_is_refused_for_splunk_output() {
    let (_dir, t) = folder("format splunk\n", &[]);
    let ran = run(&["run", t.to_str().unwrap(), "--keep-batches"], b"[{}]\n");
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("Splunk"), "{}", ran.stderr);
}

/// A schema file named on `xf validate`'s command line is the user's choice:
/// it is read wherever it is (a transform's own files stay confined).
#[test]
fn a_schema_named_on_the_command_line_is_read_from_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(
        dir.path().join("s.json"),
        r#"{"type":"object","required":["a"]}"#,
    )
    .unwrap();
    std::fs::write(sub.join("in.ndjson"), "{\"a\":1}\n{\"b\":2}\n").unwrap();
    let output = xf()
        .current_dir(&sub)
        .args(["validate", "../s.json", "in.ndjson"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "{\"a\":1}\n");
    assert!(
        stderr.contains("in.ndjson:2: does not match schema s.json"),
        "{stderr}"
    );
}

/// Functions that can multiply text (`replace`, `regex_replace`, `join`),
/// nested as deep as a transform may nest them, cost only their record: the
/// text each makes is bounded as it grows.
#[test]
fn text_functions_that_multiply_text_cost_only_their_record() {
    let mut expr = "s".to_string();
    for i in 0..20 {
        expr = if i % 2 == 0 {
            format!("replace({expr}, \"a\", \"aaaaaaaaaaaaaaaa\")")
        } else {
            format!("regex_replace({expr}, \"a\", \"$0$0$0$0$0$0$0$0\")")
        };
    }
    let text = format!("set big = {expr}\nset parts = join(split(s, \"\"), s)\n");
    let (_dir, path) = folder(&text, &[]);
    let input = format!("{{\"s\": \"{}\"}}\n{{\"s\": \"b\"}}\n", "a".repeat(10_000));
    let started = std::time::Instant::now();
    let ran = run(&["run", path.to_str().unwrap()], input.as_bytes());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(ran.code, 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("over the limit of 1048576 bytes"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "{\"s\":\"b\",\"big\":\"b\",\"parts\":\"b\"}\n");
}

/// A pattern whose compiled form would be huge is refused when the transform
/// loads, with a caret at it; it never takes the process's memory.
#[test]
fn a_huge_pattern_is_a_load_error() {
    let (_dir, path) = folder("set x = regex_capture(s, \"(\\\\w{1000}){1000}\")\n", &[]);
    let ran = run(&["check", path.to_str().unwrap()], b"");
    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(ran.stderr.contains("error[E0303]"), "{}", ran.stderr);
    assert!(ran.stderr.contains("exceeds size limit"), "{}", ran.stderr);
}
