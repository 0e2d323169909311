//! The README's "GitHub security alerts into Splunk in five minutes": every
//! command of its shell blocks runs, in order, in one shell, as a newcomer
//! would paste them, in a copy of the repository's files it uses; each output
//! block it shows is exactly what the shell block before it printed. Only
//! the addresses (free ports instead of 8080 and 9000) and the spool folder
//! are changed, so that the test runs beside others.
#![cfg(feature = "serve")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SECTION: &str = "## GitHub security alerts into Splunk in five minutes\n";
/// The build the section asks for once, before its commands.
const BUILD: &str = "`cargo build && cargo build --example destination`";
const MARK: &str = "@@ end of block @@";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The section's code blocks, in order: (info string, text).
fn blocks() -> (String, Vec<(String, String)>) {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme.find(SECTION).expect("the README's GitHub section");
    let end = readme[start + SECTION.len()..]
        .find("\n## ")
        .map_or(readme.len(), |at| at + start + SECTION.len());
    let section = readme[start..end].to_string();
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in section.lines() {
        if let Some(info) = line.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((info.to_string(), String::new())),
            }
        } else if let Some((_, text)) = &mut current {
            text.push_str(line);
            text.push('\n');
        }
    }
    (section, blocks)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The repository's files the section reads, and its two programs where it
/// runs them (`target/debug/…`).
fn lay_out(dir: &Path) {
    copy_dir(&root().join("examples"), &dir.join("examples"));
    copy_dir(&root().join("transforms"), &dir.join("transforms"));
    copy_dir(
        &root().join("tests/fixtures/github"),
        &dir.join("tests/fixtures/github"),
    );
    let xf = PathBuf::from(env!("CARGO_BIN_EXE_xf"));
    let destination = xf.parent().unwrap().join("examples/destination");
    assert!(
        destination.is_file(),
        "{} is not built: the section's {BUILD} builds it (plain `cargo test` does too)",
        destination.display()
    );
    std::fs::create_dir_all(dir.join("target/debug/examples")).unwrap();
    std::os::unix::fs::symlink(&xf, dir.join("target/debug/xf")).unwrap();
    std::os::unix::fs::symlink(&destination, dir.join("target/debug/examples/destination"))
        .unwrap();
}

#[test]
fn every_command_of_the_github_walk_through_runs_and_prints_what_it_shows() {
    let (section, blocks) = blocks();
    assert!(section.contains(BUILD), "the section names its build");
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let (xf_port, destination_port) = (free_port(), free_port());
    let spool = dir.path().join("spool");
    // One shell for every block, as pasted one after the other; what is left
    // running in the background is stopped however the script ends.
    let mut script = String::from("set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let mut expected = Vec::new();
    for (k, (info, text)) in blocks.iter().enumerate() {
        if info != "sh" {
            continue;
        }
        script.push_str(
            &text
                .replace("127.0.0.1:8080", &format!("127.0.0.1:{xf_port}"))
                .replace("127.0.0.1:9000", &format!("127.0.0.1:{destination_port}"))
                .replace("/tmp/xf-github", &spool.display().to_string()),
        );
        script.push_str(&format!("echo '{MARK}'\n"));
        // An output block right after a shell block is what it prints.
        expected.push(match blocks.get(k + 1) {
            Some((info, shown)) if info.is_empty() => Some(shown.clone()),
            _ => None,
        });
    }
    assert_eq!(expected.len(), 4, "the section's shell blocks");
    assert_eq!(
        expected.iter().filter(|e| e.is_some()).count(),
        3,
        "the outputs the section shows"
    );
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.path().join("xf.log")).unwrap_or_default();
            panic!("the walk-through did not finish in 120 s; xf.log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    let printed: Vec<&str> = stdout.split(&format!("{MARK}\n")).collect();
    assert_eq!(printed.len(), expected.len() + 1, "{stdout}");
    for (k, shown) in expected.iter().enumerate() {
        if let Some(shown) = shown {
            assert_eq!(printed[k], shown, "the output of shell block {}", k + 1);
        }
    }
    // What the section says arrived is what the destinations were sent: the
    // stand-in's file holds two Splunk events and one finding.
    let delivered = std::fs::read_to_string(dir.path().join("delivered.ndjson")).unwrap();
    let paths: Vec<String> = delivered
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["path"].to_string())
        .collect();
    assert_eq!(paths.len(), 3, "{delivered}");
    assert_eq!(paths.iter().filter(|p| p.contains("collector")).count(), 2);
}
