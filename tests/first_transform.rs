//! The README's "Writing your first transform": its example folder passes the
//! checks the walk-through ends with, and every output the README quotes is
//! what the real binary prints.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn xf(args: &[&str], dir: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xf"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The README's walk-through section.
fn walk_through() -> String {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("## Writing your first transform\n")
        .expect("the walk-through section");
    let end = readme[start..].find("\n## ").unwrap() + start;
    readme[start..end].to_string()
}

/// The code blocks of a README section, in order.
fn blocks(section: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        if line.starts_with("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some(String::new()),
            }
        } else if let Some(block) = &mut current {
            block.push_str(line);
            block.push('\n');
        }
    }
    blocks
}

fn example() -> PathBuf {
    root().join("examples/first-transform")
}

fn transform() -> String {
    fs::read_to_string(example().join("github-code-scanning.xf")).unwrap()
}

#[test]
fn the_example_passes_the_checks_the_walk_through_ends_with() {
    let blocks = blocks(&walk_through());
    let ci = blocks.last().unwrap();
    let commands: Vec<&str> = ci.lines().collect();
    assert_eq!(commands.len(), 3, "{ci}");
    for command in commands {
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let (status, stdout, stderr) = xf(&args, &root());
        assert_eq!(status, Some(0), "{command}\n{stdout}{stderr}");
    }
    // The cases cover a written record, a drop, the coalesce fallback, and
    // an alert of another event that only its X-GitHub-Event header tells.
    let tests = example().join("github-code-scanning.tests");
    for file in [
        "created.output.ndjson",
        "created.request.json",
        "fixed.dropped",
        "reopened-no-security-severity.output.ndjson",
        "dependabot-alert.request.json",
        "dependabot-alert.dropped",
    ] {
        assert!(tests.join(file).is_file(), "{file}");
    }
}

#[test]
fn the_readme_shows_the_example_transform_as_it_is() {
    let blocks = blocks(&walk_through());
    assert!(
        blocks.contains(&transform()),
        "the README's transform block"
    );
}

#[test]
fn the_slip_and_its_diagnostic_are_what_xf_check_prints() {
    let blocks = blocks(&walk_through());
    let dir = tempfile::tempdir().unwrap();
    let slip = transform().replace("action != \"reopened\"", "action != 'reopened'");
    // The playground names the transform `transform.xf`.
    fs::write(dir.path().join("transform.xf"), slip).unwrap();
    let (status, _, stderr) = xf(&["check", "transform.xf"], dir.path());
    assert_eq!(status, Some(2));
    assert_eq!(stderr.trim_end(), blocks[0].trim_end());
}

#[test]
fn the_test_failure_shown_is_what_xf_test_prints_after_the_change() {
    let blocks = blocks(&walk_through());
    let shown = blocks
        .iter()
        .find(|block| block.starts_with("$ xf test "))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("examples/first-transform");
    let tests = folder.join("github-code-scanning.tests");
    fs::create_dir_all(&tests).unwrap();
    for entry in fs::read_dir(example().join("github-code-scanning.tests")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(&path, tests.join(path.file_name().unwrap())).unwrap();
    }
    let changed = transform().replace("{{ severity | upper }}", "{{ severity }}");
    fs::write(folder.join("github-code-scanning.xf"), changed).unwrap();
    let (status, stdout, _) = xf(&["test", "examples/first-transform/"], dir.path());
    assert_eq!(status, Some(1), "{stdout}");
    // The README cuts the report where it says `…`; each line it shows is the
    // report's, in order (the timing aside).
    let mut actual = stdout.lines();
    for line in shown.lines().skip(1) {
        if line.trim() == "…" {
            continue;
        }
        if let Some(summary) = line.strip_suffix(" in 0.07s") {
            assert!(stdout.contains(summary), "{line}\n{stdout}");
            continue;
        }
        assert!(
            actual.any(|candidate| candidate == line),
            "{line:?} not in order in\n{stdout}"
        );
    }
}

#[test]
fn the_layout_shown_is_what_xf_fmt_check_prints() {
    let blocks = blocks(&walk_through());
    let shown = blocks
        .iter()
        .find(|block| block.ends_with("not formatted\n") || block.contains(": not formatted\n"))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let messy = transform().replace(
        "hec sourcetype = \"github:code_scanning\"",
        "hec sourcetype=\"github:code_scanning\"",
    );
    fs::write(dir.path().join("github-code-scanning.xf"), messy).unwrap();
    let (status, stdout, _) = xf(&["fmt", "--check", "github-code-scanning.xf"], dir.path());
    assert_eq!(status, Some(1));
    assert_eq!(&stdout, shown);
}
