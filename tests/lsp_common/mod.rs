//! What tests/lsp.rs and tests/nvim.rs share: the README's common mistakes,
//! and what `xf check` says of each.

use std::path::Path;
use std::process::Command;

/// The README's common mistakes, each as a file with it.
pub const MISTAKES: &[(&str, &str)] = &[
    ("unknown-statement.xf", "label a = 1\nlable idx = \"Alpha\"\n"),
    ("single-quote.xf", "drop when action != \"created\" and action != 'reopened'\n"),
    ("curly-quotes.xf", "label idx = “Alpha”\n"),
    ("else-on-its-own-line.xf", "when severity >= 8 {\n  tag add priority = \"P1\"\n}\nelse {\n  tag add priority = \"P3\"\n}\n"),
    ("jq-path.xf", "tag add number = .alert.number\n"),
    ("unclosed-block.xf", "when severity >= 8 {\n  when status == \"OPEN\" {\n    tag add priority = \"P1\"\n\n  tag add escalated = true\n}\nlabel done = true\n"),
    ("unknown-function.xf", "set t = epoch(ran_at)\n"),
    ("unknown-filter.xf", "tag add t = \"{{ title | lowercase }}\"\n"),
    ("constant-comparison.xf", "drop when \"detail-type\" == \"WebhookTest\"\n"),
];

/// What `xf check` prints of a file's first problem: its code, 1-based line
/// and column, and how many carets underline it.
pub fn check_says(path: &Path) -> (String, u32, u32, u32) {
    let out = Command::new(env!("CARGO_BIN_EXE_xf"))
        .arg("check")
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let code = stderr
        .split_once('[')
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(code, _)| code.to_string())
        .unwrap_or_else(|| panic!("no code in {stderr}"));
    let place = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("--> "))
        .unwrap();
    let mut parts = place.rsplitn(3, ':');
    let column: u32 = parts.next().unwrap().parse().unwrap();
    let line: u32 = parts.next().unwrap().parse().unwrap();
    let carets = stderr
        .lines()
        .find(|l| l.contains('^'))
        .map_or(0, |l| l.chars().filter(|c| *c == '^').count() as u32);
    (code, line, column, carets)
}
