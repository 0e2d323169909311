//! `xf fmt`: the golden layouts (`tests/cases/fmt/NAME.in.xf` → `NAME.out.xf`)
//! through the library and the real binary, the binary's exit statuses and
//! in-place rewrites, and properties over every `.xf` the repository holds:
//! formatting keeps the statements, is idempotent, and gives one layout
//! whatever the spacing it starts from.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use assert_cmd::cargo::CommandCargoExt;
use proptest::prelude::*;
use xf::syntax::ast::without_spans;
use xf::syntax::format::{format, format_pipeline, FormatError};

fn xf() -> Command {
    Command::cargo_bin("xf").unwrap()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The golden cases: (name, input, expected output), by name.
fn goldens() -> Vec<(String, String, String)> {
    let dir = repo("tests/cases/fmt");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter_map(|path| {
            let name = path
                .file_name()?
                .to_str()?
                .strip_suffix(".in.xf")?
                .to_string();
            let input = std::fs::read_to_string(&path).unwrap();
            let expected = std::fs::read_to_string(dir.join(format!("{name}.out.xf")))
                .unwrap_or_else(|_| panic!("{name}.in.xf has no {name}.out.xf"));
            Some((name, input, expected))
        })
        .collect();
    cases.sort();
    cases
}

/// Every `.xf` of the repository that parses: transforms/ and tests/cases/ (goldens included).
fn corpus() -> &'static [(PathBuf, String)] {
    static CORPUS: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut files = Vec::new();
        for root in ["transforms", "tests/cases"] {
            xf_files(&repo(root), &mut files);
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|path| {
                let text = std::fs::read_to_string(&path).ok()?;
                xf::syntax::parse(&text).is_ok().then_some((path, text))
            })
            .collect()
    })
}

fn xf_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            xf_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "xf") {
            found.push(path);
        }
    }
}

/// What a formatted text must be: the same statements as `source`, and its own layout.
fn assert_sound(name: &str, source: &str, formatted: &str) {
    let before = without_spans(xf::syntax::parse(source).unwrap());
    let after = xf::syntax::parse(formatted)
        .unwrap_or_else(|e| panic!("{name}: the formatted text does not parse: {e:?}"));
    assert_eq!(without_spans(after), before, "{name}: other statements");
    let again = format(formatted).unwrap();
    assert_eq!(
        again, formatted,
        "{name}: formatting twice changes the text"
    );
}

#[test]
fn golden_layouts_through_the_library() {
    let cases = goldens();
    assert!(
        cases.len() >= 8,
        "expected the golden cases, found {}",
        cases.len()
    );
    let mut failures = String::new();
    for (name, input, expected) in &cases {
        let formatted = format(input).unwrap_or_else(|e| panic!("{name}: {e}"));
        if &formatted != expected {
            failures.push_str(&format!(
                "\n── {name}: expected ──\n{expected}── got ──\n{formatted}"
            ));
            continue;
        }
        assert_sound(name, input, &formatted);
    }
    assert!(failures.is_empty(), "golden layouts differ:{failures}");
}

#[test]
fn crlf_input_keeps_its_line_ends_and_its_template() {
    let (_, input, expected) = goldens()
        .into_iter()
        .find(|(name, ..)| name == "crlf")
        .unwrap();
    assert!(input.contains("\r\n") && expected.contains("\r\n"));
    assert!(
        !expected.replace("\r\n", "").contains('\n'),
        "a bare LF in {expected:?}"
    );
    assert!(expected.contains("\"\"\"\r\n  line one\r\n  line two\r\n\"\"\""));
}

#[test]
fn golden_layouts_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("nested/deeper");
    std::fs::create_dir_all(&nested).unwrap();
    let cases = goldens();
    for (i, (name, input, _)) in cases.iter().enumerate() {
        let at = if i % 2 == 0 { dir.path() } else { &nested };
        std::fs::write(at.join(format!("{name}.xf")), input).unwrap();
    }
    // A hidden directory is not entered, and a file of another kind is not read.
    std::fs::create_dir(dir.path().join(".hidden")).unwrap();
    std::fs::write(dir.path().join(".hidden/skipped.xf"), "name   \"x\"\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "name   \"x\"\n").unwrap();

    // --check with no path: the current directory, recursively; nothing written.
    let check = xf()
        .args(["fmt", "--check"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    for (name, input, expected) in &cases {
        let listed = stdout.contains(&format!("{name}.xf: not formatted"));
        assert_eq!(listed, input != expected, "{name} in:\n{stdout}");
    }
    assert!(!stdout.contains("skipped.xf"), "{stdout}");
    assert!(stdout.contains("\n-format    splunk\n"), "a diff: {stdout}");
    assert!(stdout.contains("\n+format splunk\n"), "a diff: {stdout}");

    // In place, then nothing is left to change.
    let write = xf().arg("fmt").arg(dir.path()).output().unwrap();
    assert_eq!(write.status.code(), Some(0), "{write:?}");
    for (i, (name, _, expected)) in cases.iter().enumerate() {
        let at = if i % 2 == 0 { dir.path() } else { &nested };
        let written = std::fs::read_to_string(at.join(format!("{name}.xf"))).unwrap();
        assert_eq!(&written, expected, "{name}");
    }
    let again = xf()
        .args(["fmt", "--check"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(again.stdout.is_empty());
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".hidden/skipped.xf")).unwrap(),
        "name   \"x\"\n"
    );
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("xf-fmt"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn stdin_is_formatted_to_stdout() {
    for (name, input, expected) in goldens() {
        let out = assert_cmd::Command::cargo_bin("xf")
            .unwrap()
            .args(["fmt", "-"])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}: {out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{name}");
        let check = assert_cmd::Command::cargo_bin("xf")
            .unwrap()
            .args(["fmt", "--check", "-"])
            .write_stdin(input.clone())
            .output()
            .unwrap();
        let code = if input == expected { 0 } else { 1 };
        assert_eq!(check.status.code(), Some(code), "{name}: {check:?}");
    }
}

#[test]
fn a_file_that_does_not_parse_is_reported_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xf");
    let bad_text = "name   \"bad\"\nlabel x = \n";
    std::fs::write(&bad, bad_text).unwrap();
    let good = dir.path().join("good.xf");
    std::fs::write(&good, "format   splunk\n").unwrap();
    let out = xf().arg("fmt").arg(&bad).arg(&good).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("error[E0001]"), "{stderr}");
    assert!(stderr.contains("bad.xf:2:"), "{stderr}");
    assert!(
        stderr.contains("2 | label x = \n  |           ^"),
        "{stderr}"
    );
    assert!(
        stderr.contains("not formatted, it does not parse"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), bad_text);
    // The other file is still formatted.
    assert_eq!(std::fs::read_to_string(&good).unwrap(), "format splunk\n");

    let check = xf().args(["fmt", "--check"]).arg(&bad).output().unwrap();
    assert_eq!(check.status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), bad_text);
    assert!(matches!(format(bad_text), Err(FormatError::Syntax(_))));
}

#[test]
fn missing_and_non_utf8_files_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("binary.xf");
    std::fs::write(&binary, b"name \"\xff\"\n").unwrap();
    let out = xf()
        .arg("fmt")
        .arg(&binary)
        .arg(dir.path().join("missing.xf"))
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("binary.xf: not UTF-8 text"), "{stderr}");
    assert!(stderr.contains("missing.xf: "), "{stderr}");
    assert_eq!(std::fs::read(&binary).unwrap(), b"name \"\xff\"\n");
}

#[cfg(unix)]
#[test]
fn a_rewrite_keeps_the_permissions_and_follows_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.xf");
    std::fs::write(&file, "set  x=1\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("link.xf");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let out = xf().arg("fmt").arg(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "set x = 1\n");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn every_transform_and_case_formats_soundly() {
    let corpus = corpus();
    assert!(
        corpus.len() > 50,
        "expected the repository's .xf files, found {}",
        corpus.len()
    );
    for (path, source) in corpus {
        let name = path.display().to_string();
        let formatted = format(source).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_sound(&name, source, &formatted);
    }
}

#[test]
fn shipped_transforms_are_formatted() {
    for (path, source) in corpus() {
        if path.starts_with(repo("transforms")) {
            assert_eq!(
                &format(source).unwrap(),
                source,
                "{}: run xf fmt",
                path.display()
            );
        }
    }
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(format("").unwrap(), "");
    assert_eq!(format("\n\n  \n").unwrap(), "");
    assert_eq!(
        format("# only   \n\n\n# comments").unwrap(),
        "# only\n\n# comments\n"
    );
}

/// `source` with its layout changed where layout is free: each run of spaces
/// outside strings and comments becomes 1–3 spaces or tabs, lines (outside
/// `"""` templates) get some indentation, and line ends some trailing spaces.
/// `choices` picks among them, cyclically.
fn perturb(source: &str, choices: &[u8]) -> String {
    let mut pick = choices.iter().copied().cycle();
    let mut next = move || pick.next().unwrap_or(0);
    let blanks = |n: u8, out: &mut String| {
        for i in 0..n {
            out.push(if (n + i) % 3 == 0 { '\t' } else { ' ' });
        }
    };
    let mut out = String::new();
    let mut chars = source.char_indices().peekable();
    let mut line_start = true;
    while let Some((at, c)) = chars.next() {
        if line_start {
            blanks(next() % 5, &mut out);
            line_start = false;
        }
        match c {
            ' ' | '\t' => {
                while chars.next_if(|&(_, c)| c == ' ' || c == '\t').is_some() {}
                blanks(1 + next() % 3, &mut out);
            }
            '\n' => {
                blanks(next() % 3, &mut out);
                out.push('\n');
                line_start = true;
            }
            '#' => {
                let end = source[at..].find('\n').map_or(source.len(), |n| at + n);
                out.push_str(&source[at..end]);
                while chars.next_if(|&(i, _)| i < end).is_some() {}
            }
            '"' if source[at..].starts_with("\"\"\"") => {
                let body = at + 3;
                let end = source[body..]
                    .find("\"\"\"")
                    .map_or(source.len(), |n| body + n + 3);
                out.push_str(&source[at..end]);
                while chars.next_if(|&(i, _)| i < end).is_some() {}
            }
            '"' => {
                out.push('"');
                let mut escaped = false;
                while let Some((_, c)) = chars.next_if(|&(_, c)| c != '\n') {
                    out.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
            }
            other => out.push(other),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any spacing of a repository's `.xf` formats to the layout of the file
    /// as written: the layout depends on the tokens, line breaks and comments
    /// only. (CRLF files are left out: the perturbation writes LF line ends.)
    #[test]
    fn one_layout_whatever_the_spacing(pick in any::<prop::sample::Index>(), choices in prop::collection::vec(any::<u8>(), 1..64)) {
        let corpus: Vec<_> = corpus().iter().filter(|(_, text)| !text.contains('\r')).collect();
        let (path, source) = corpus[pick.index(corpus.len())];
        let spaced = perturb(source, &choices);
        let expected = format(source).unwrap();
        let formatted = format(&spaced).map_err(|e| TestCaseError::fail(format!("{}: {e}\n{spaced}", path.display())))?;
        prop_assert_eq!(&formatted, &expected, "{}:\n{}", path.display(), spaced);
        assert_sound(&path.display().to_string(), &spaced, &formatted);
    }

    /// Lines of the repository's `.xf`s in any order and spacing: whatever of
    /// that parses formats soundly, and nothing panics.
    #[test]
    fn shuffled_lines_format_soundly(picks in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 1..24), choices in prop::collection::vec(any::<u8>(), 1..64)) {
        let corpus = corpus();
        let mut text = String::new();
        for (file, line) in picks {
            let lines: Vec<&str> = corpus[file.index(corpus.len())].1.lines().collect();
            if !lines.is_empty() {
                text.push_str(lines[line.index(lines.len())]);
                text.push('\n');
            }
        }
        let text = perturb(&text, &choices);
        match format(&text) {
            Ok(formatted) => assert_sound("generated", &text, &formatted),
            Err(FormatError::Syntax(_)) => {}
            Err(error) => return Err(TestCaseError::fail(format!("{error}\n{text}"))),
        }
    }
}

#[test]
fn edge_cases() {
    let cases = [
        // A comma goes before a trailing comment; comments after items line up.
        (
            "set x = [1, # c\n  2 # d\n]\n",
            "set x = [1,  # c\n  2,         # d\n]\n",
        ),
        // A bracket holding only comments gets no comma.
        ("set y = [\n# nothing\n]\n", "set y = [\n  # nothing\n]\n"),
        // Lone CR line ends become LF (the first line end is no CRLF).
        (
            "name \"a\"\rformat  splunk\r",
            "name \"a\"\nformat splunk\n",
        ),
        // The last line may lack its line end.
        ("drop", "drop\n"),
        // A blank line after a block's opener or before its closer goes.
        (
            "when a == 1 {  \n\n  drop\n\n}\n",
            "when a == 1 {\n  drop\n}\n",
        ),
        // Tabs are spaces too; a line's indentation is its level's.
        ("\t\tset\tx\t=\t1\t\n", "set x = 1\n"),
        // Brackets opened on one line indent the next once.
        (
            "set x = f({\n\"a\": [\n1]})\n",
            "set x = f({\n  \"a\": [\n    1]})\n",
        ),
    ];
    for (input, expected) in cases {
        let formatted = format(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(formatted, expected, "{input:?}");
        assert_sound(input, input, &formatted);
    }
}

/// Every `.xfp` under `dir`.
fn xfp_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            xfp_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "xfp") {
            found.push(path);
        }
    }
}

/// Issue 28: `xf fmt` lays out `.xfp` pipeline files too, by the same rules
/// (a section is a block); `xf fmt --pipeline -` for an editor's buffer.
#[test]
fn pipeline_files_are_formatted_by_the_same_rules() {
    let input = std::fs::read_to_string(repo("tests/cases/fmt/pipeline.in.xfp")).unwrap();
    let expected = std::fs::read_to_string(repo("tests/cases/fmt/pipeline.out.xfp")).unwrap();
    assert_eq!(format_pipeline(&input).unwrap(), expected);
    assert_eq!(format_pipeline(&expected).unwrap(), expected);

    // A directory of both kinds: each is listed, then formatted in place.
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("p.xfp");
    std::fs::write(&pipeline, &input).unwrap();
    std::fs::write(dir.path().join("t.xf"), "set  x=1\n").unwrap();
    let check = xf()
        .args(["fmt", "--check"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("p.xfp: not formatted"), "{stdout}");
    assert!(stdout.contains("t.xf: not formatted"), "{stdout}");
    assert!(stdout.contains("\n+  tolerance 300\n"), "a diff: {stdout}");
    let write = xf().arg("fmt").arg(dir.path()).output().unwrap();
    assert_eq!(write.status.code(), Some(0), "{write:?}");
    assert_eq!(std::fs::read_to_string(&pipeline).unwrap(), expected);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("t.xf")).unwrap(),
        "set x = 1\n"
    );

    // Standard input, as a pipeline with --pipeline (as a transform, it does not parse).
    let out = assert_cmd::Command::cargo_bin("xf")
        .unwrap()
        .args(["fmt", "--pipeline", "-"])
        .write_stdin(input.clone())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let out = assert_cmd::Command::cargo_bin("xf")
        .unwrap()
        .args(["fmt", "-"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_pipeline_file_that_does_not_parse_is_reported_at_its_line_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xfp");
    let text = "listen   \"127.0.0.1:8080\"\nsource s at \"/in\" {\n  transform = = \"t.xf\"\n}\n";
    std::fs::write(&bad, text).unwrap();
    let out = xf().arg("fmt").arg(&bad).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("bad.xfp:3:"), "{stderr}");
    assert!(
        stderr.contains("not formatted, it does not parse"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&bad).unwrap(), text);
    assert!(matches!(format_pipeline(text), Err(FormatError::Syntax(_))));
}

/// Every pipeline file of the repository that parses formats to the same
/// settings and to itself; the shipped examples are formatted (CI checks them too).
#[test]
fn every_pipeline_file_formats_soundly_and_the_examples_are_formatted() {
    let mut files = Vec::new();
    for root in ["examples", "tests"] {
        xfp_files(&repo(root), &mut files);
    }
    let mut checked = 0;
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        if xf::syntax::pipeline::parse_pipeline(&source).is_err() {
            continue;
        }
        let name = path.display();
        let formatted = format_pipeline(&source).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            format_pipeline(&formatted).unwrap(),
            formatted,
            "{name}: formatting twice changes the text"
        );
        if path.starts_with(repo("examples")) {
            assert_eq!(formatted, source, "{name}: run xf fmt");
        }
        checked += 1;
    }
    assert!(
        checked >= 5,
        "expected the repository's .xfp files, found {checked}"
    );
}
