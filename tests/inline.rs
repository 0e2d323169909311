//! `xf run -e PROGRAM` and `xf check -e PROGRAM`: a transform given on the
//! command line, through the real binary.

use std::io::Write;
use std::process::{Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// Runs xf in `dir` with `input` on stdin; returns (exit code, stdout, stderr).
fn xf_in(dir: &std::path::Path, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let mut child = Command::cargo_bin("xf")
        .unwrap()
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn a_program_on_the_command_line_transforms_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = xf_in(
        dir.path(),
        &["run", "-e", "set b = a\ntag add c = \"{{ a }}!\""],
        b"{\"a\":1}\n{\"a\":2}\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "{\"a\":1,\"b\":1,\"c\":\"1!\"}\n{\"a\":2,\"b\":2,\"c\":\"2!\"}\n"
    );
}

#[test]
fn with_a_program_every_positional_argument_is_an_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("one.json"), "{\"n\":1}\n").unwrap();
    std::fs::write(dir.path().join("two.json"), "{\"n\":2}\n").unwrap();
    let (code, stdout, stderr) = xf_in(
        dir.path(),
        &[
            "run",
            "--program",
            "label seen = true",
            "one.json",
            "two.json",
        ],
        b"{\"n\":\"stdin is not read\"}\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "{\"n\":1,\"seen\":true}\n{\"n\":2,\"seen\":true}\n");
}

#[test]
fn a_program_that_does_not_load_is_named_with_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = xf_in(
        dir.path(),
        &["run", "-e", "label a = 1\nlable b = 2"],
        b"{}\n",
    );
    assert_eq!(code, 2);
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("error[E0002]: unknown statement `lable`"),
        "{stderr}"
    );
    assert!(stderr.contains("--> <-e>:2:1"), "{stderr}");
    assert!(stderr.contains("2 | lable b = 2\n  | ^^^^^"), "{stderr}");
}

#[test]
fn check_takes_a_program_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = xf_in(
        dir.path(),
        &["check", "-e", "name \"inline\"\nlabel x = \"{{ y }}\""],
        b"",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "<-e>: ok, name \"inline\", format default, 1 warning\n"
    );
    assert!(stderr.contains("warning[W0002]"), "{stderr}");
    assert!(stderr.contains("--> <-e>:2:11"), "{stderr}");

    let (code, _, stderr) = xf_in(
        dir.path(),
        &["check", "--deny-warnings", "-e", "label x = \"{{ y }}\""],
        b"",
    );
    assert_eq!(code, 2, "{stderr}");

    let (code, _, stderr) = xf_in(dir.path(), &["check", "-e", "drop when"], b"");
    assert_eq!(code, 2);
    assert!(stderr.contains("--> <-e>:1:"), "{stderr}");
}

#[test]
fn a_programs_files_are_found_from_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("owners.csv"),
        "host,owner\nweb1,alice\nweb2,bob\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    std::fs::write(dir.path().join("lib/mark.xf"), "label marked = true\n").unwrap();
    let program = "lookup owners from \"owners.csv\" key host\n\
                   include \"lib/mark.xf\"\n\
                   tag add owner = \"{{ owners.owner }}\"";
    let (code, stdout, stderr) = xf_in(
        dir.path(),
        &["run", "-e", program],
        b"{\"host\":\"web2\"}\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "{\"host\":\"web2\",\"marked\":true,\"owner\":\"bob\"}\n"
    );

    // Only the current directory and below, as for a transform file there.
    let inner = dir.path().join("lib");
    let (code, _, stderr) = xf_in(
        &inner,
        &["run", "-e", "lookup owners from \"../owners.csv\" key host"],
        b"{}\n",
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("<-e>:1:"), "{stderr}");
}

#[test]
fn tags_and_kibana_are_refused_with_a_program() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = xf_in(
        dir.path(),
        &[
            "run",
            "-e",
            "label a = 1",
            "--kibana",
            "https://k.example.com",
        ],
        b"{}\n",
    );
    assert_eq!(code, 2);
    assert!(stderr.contains("Armor JSON configs"), "{stderr}");
}

#[test]
fn run_without_a_transform_or_a_program_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = xf_in(dir.path(), &["run"], b"");
    assert_eq!(code, 2);
    assert!(stderr.contains("<TRANSFORM>"), "{stderr}");
}
