//! `xf test`: the test cases kept beside a transform, found, run as `xf run`
//! runs them (the same [`Stream`], one thread, a fixed clock) and compared
//! with what they expect. The stage after write: it drives the stream.
//!
//! Layout: `name.xf` (or an Armor transform config, `name.json`) has its
//! cases in the folder `name.tests/` beside it. A
//! case is the files sharing a stem there: one input (`CASE.input.json`, one
//! JSON document, or `CASE.input.ndjson`, one record a line) and what it
//! expects: `CASE.output.ndjson` (the exact output, one record a line),
//! `CASE.error.txt` (the record-error lines, as `xf run` prints them after
//! `error: `; beside an output file when some records of the input fail), or
//! an empty `CASE.dropped` (every record dropped); `CASE.now` may fix the
//! case's clock (one RFC 3339 time). `warnings.txt` holds the
//! transform's expected warnings, one `warning[CODE]: message` a line;
//! `README*`, `NOTICE*` and `LICENSE*` files are left alone. Any other file is
//! a mistake, reported, so that a misnamed case never silently goes unrun.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::stream::{Options, Stream};
use crate::Transform;

/// What `now()` gives in every test (epoch ms): 2025-11-24T16:00:00Z, the
/// time the golden tests use, so that output never depends on the clock.
pub const TEST_NOW: i64 = 1_764_000_000_000;

/// The largest input file read, in bytes (16 MiB, as for `.xf` files).
pub const INPUT_LIMIT: u64 = crate::files::TEXT_LIMIT;

/// The lines of context around each change in a diff.
const DIFF_CONTEXT: usize = 3;

/// How long a diff may look for the fewest changes; after that it is still
/// right, only longer than it need be (for two large, very different outputs).
const DIFF_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A transform (a `.xf`, or an Armor transform config `.json`) and the
/// folder its tests are in (which may not exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suite {
    pub transform: PathBuf,
    pub folder: PathBuf,
}

impl Suite {
    fn of(transform: PathBuf) -> Suite {
        let folder = transform.with_extension("tests");
        Suite { transform, folder }
    }

    /// Whether the transform is an Armor transform config (`.json`).
    pub fn is_armor_config(&self) -> bool {
        Transform::is_armor_config(&self.transform)
    }

    /// The transform's file stem, which case names start with (`cii-splunk`).
    pub fn name(&self) -> String {
        self.transform
            .file_stem()
            .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned())
    }

    /// Whether the transform has a tests folder.
    pub fn has_tests(&self) -> bool {
        self.folder.is_dir()
    }
}

/// The suites that `paths` name: a `.xf` file, an Armor transform config
/// (`.json`), a `.tests` folder (its transform beside it) or a directory,
/// searched below for `.xf` files and for `.json` files that have a tests
/// folder (most JSON files are no transform; hidden folders, folders with a
/// `CACHEDIR.TAG` such as Cargo's `target`, and symlinks to folders are
/// skipped). Sorted, each once. A tests folder with both a `.xf` and a
/// `.json` beside it is an error: whose cases they are would be a guess.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<Suite>, String> {
    let mut suites = Vec::new();
    for path in paths {
        let metadata = fs::metadata(path)
            .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
        if metadata.is_dir() && path.extension().is_some_and(|e| e == "tests") {
            suites.push(Suite::of(owner(path)?));
        } else if metadata.is_dir() {
            search(path, &mut suites)?;
        } else if path.extension().is_some_and(|e| e == "xf") || Transform::is_armor_config(path) {
            suites.push(Suite::of(path.clone()));
        } else {
            return Err(format!(
                "{}: not a .xf file, an Armor config (.json), a .tests folder or a directory",
                path.display()
            ));
        }
    }
    suites.sort_by(|a, b| a.transform.cmp(&b.transform));
    suites.dedup();
    for pair in suites.windows(2) {
        if pair[0].folder == pair[1].folder {
            return Err(ambiguous(&pair[0].folder));
        }
    }
    Ok(suites)
}

/// The transform a tests folder belongs to: `NAME.xf` or `NAME.json` beside it, not both.
fn owner(folder: &Path) -> Result<PathBuf, String> {
    let xf = folder.with_extension("xf");
    let json = folder.with_extension("json");
    match (xf.is_file(), json.is_file()) {
        (true, false) => Ok(xf),
        (false, true) => Ok(json),
        (true, true) => Err(ambiguous(folder)),
        (false, false) => Err(format!(
            "{} is a tests folder without its transform: there is no {} or {}",
            folder.display(),
            xf.display(),
            json.display()
        )),
    }
}

fn ambiguous(folder: &Path) -> String {
    format!(
        "{} is the tests folder of both {} and {}: rename one of them",
        folder.display(),
        folder.with_extension("xf").display(),
        folder.with_extension("json").display()
    )
}

fn search(dir: &Path, suites: &mut Vec<Suite>) -> Result<(), String> {
    if dir.join("CACHEDIR.TAG").exists() {
        return Ok(());
    }
    let cannot = |error: io::Error| format!("cannot read {}: {error}", dir.display());
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(cannot)? {
        let entry = entry.map_err(cannot)?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        // `xf test` with no path searches `.`: its files named without `./`.
        let path = if dir == Path::new(".") {
            PathBuf::from(entry.file_name())
        } else {
            entry.path()
        };
        entries.push((path, entry.file_type().map_err(cannot)?, hidden));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, kind, hidden) in entries {
        if hidden {
            continue;
        }
        let extension = path.extension();
        if kind.is_dir() && extension.is_none_or(|e| e != "tests") {
            search(&path, suites)?;
        } else if kind.is_dir() || !path.is_file() {
            continue;
        } else if extension.is_some_and(|e| e == "xf")
            || (Transform::is_armor_config(&path) && path.with_extension("tests").is_dir())
        {
            suites.push(Suite::of(path));
        }
    }
    Ok(())
}

/// The kinds of file a case may have, by the end of their names.
const INPUT_JSON: &str = ".input.json";
const INPUT_NDJSON: &str = ".input.ndjson";
const OUTPUT: &str = ".output.ndjson";
const ERROR: &str = ".error.txt";
const DROPPED: &str = ".dropped";
const NOW: &str = ".now";
const REQUEST: &str = ".request.json";
/// The file of the transform's expected warnings, in its tests folder.
pub const WARNINGS_FILE: &str = "warnings.txt";

/// One case: its input and the files of what it expects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Case {
    /// The stem its files share (`webhook-test`).
    pub name: String,
    pub inputs: Vec<PathBuf>,
    pub output: Option<PathBuf>,
    pub error: Option<PathBuf>,
    pub dropped: Option<PathBuf>,
    /// The file fixing the case's clock, one RFC 3339 time (`CASE.now`).
    pub now: Option<PathBuf>,
    /// The request the transform reads as `request` (`CASE.request.json`),
    /// as `xf serve` would give it; without one, `request` is null.
    pub request: Option<PathBuf>,
}

impl Case {
    /// Whether it has a file of what it expects (an output, an error or a drop).
    pub fn expects_anything(&self) -> bool {
        self.output.is_some() || self.error.is_some() || self.dropped.is_some()
    }
}

/// The part of a file's name before its first `.` (`alert` for `alert.ouput.ndjson`).
pub fn stem(path: &Path) -> String {
    let name = file_name(path);
    name.split('.').next().unwrap_or_default().to_string()
}

/// A tests folder read: its cases by name, its warnings file, and the files
/// that are no case's.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    pub cases: Vec<Case>,
    pub warnings: Option<PathBuf>,
    pub strays: Vec<PathBuf>,
}

/// Reads a tests folder (not below it: a folder in it is a stray).
pub fn read_folder(folder: &Path) -> io::Result<Folder> {
    let mut read = Folder::default();
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        names.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    names.sort();
    for (name, path) in names {
        if !path.is_file() {
            read.strays.push(path);
            continue;
        }
        if name == WARNINGS_FILE {
            read.warnings = Some(path);
            continue;
        }
        if ["README", "NOTICE", "LICENSE"]
            .iter()
            .any(|kept| name.starts_with(kept))
        {
            continue;
        }
        let kinds = [
            INPUT_JSON,
            INPUT_NDJSON,
            OUTPUT,
            ERROR,
            DROPPED,
            NOW,
            REQUEST,
        ];
        let Some((stem, kind)) = kinds.iter().find_map(|kind| {
            name.strip_suffix(kind)
                .filter(|stem| !stem.is_empty())
                .map(|stem| (stem, *kind))
        }) else {
            read.strays.push(path);
            continue;
        };
        let case = match read.cases.iter_mut().position(|case| case.name == stem) {
            Some(index) => &mut read.cases[index],
            None => {
                read.cases.push(Case {
                    name: stem.to_string(),
                    ..Case::default()
                });
                read.cases.last_mut().expect("just pushed")
            }
        };
        match kind {
            INPUT_JSON | INPUT_NDJSON => case.inputs.push(path),
            OUTPUT => case.output = Some(path),
            ERROR => case.error = Some(path),
            NOW => case.now = Some(path),
            REQUEST => case.request = Some(path),
            _ => case.dropped = Some(path),
        }
    }
    read.cases.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(read)
}

/// What the records of a case's input became.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actual {
    /// The output, exactly as `xf run` writes it.
    pub output: String,
    /// The record-error lines, each ending in a newline.
    pub errors: String,
    pub read: u64,
    pub dropped: u64,
}

impl Actual {
    /// Every record was dropped: nothing written, nothing failed.
    pub fn all_dropped(&self) -> bool {
        self.read > 0 && self.dropped == self.read
    }
}

/// Why a case could not be run or judged: a mistake in its files.
pub type Broken = String;

/// Runs a case's input through the transform as `xf run --now NOW -j1`
/// would, the input named by its file name in error lines. NOW is the
/// case's own (`CASE.now`), else `now` (`xf test --now`, or [`TEST_NOW`]).
pub fn run_case(transform: &Transform, case: &Case, now: i64) -> Result<Actual, Broken> {
    let input = match case.inputs.as_slice() {
        [input] => input,
        [] => return Err("no input file (CASE.input.json or CASE.input.ndjson)".to_string()),
        inputs => {
            let names: Vec<String> = inputs.iter().map(|input| file_name(input)).collect();
            return Err(format!("more than one input file: {}", names.join(", ")));
        }
    };
    let now = match &case.now {
        Some(path) => read_now(path)?,
        None => now,
    };
    let request = case.request.as_deref().map(read_request).transpose()?;
    let name = file_name(input);
    let text = read_text(input)?;
    if name.ends_with(INPUT_JSON) {
        // One document, as a vendor ships it; xf itself would take several
        // (and skips a byte-order mark, as here).
        let document = text.strip_prefix('\u{feff}').unwrap_or(&text);
        if let Err(error) = serde_json::from_str::<serde_json::Value>(document) {
            return Err(format!(
                "{}:{}:{}: the input is not one JSON document: {error}",
                input.display(),
                error.line(),
                error.column()
            ));
        }
    }
    let mut output = Vec::new();
    let mut errors = String::new();
    let stats = {
        let report = |failure: &crate::stream::Report<'_>| {
            let _ = writeln!(errors, "{failure}");
        };
        let options = Options {
            threads: 1,
            ..Options::default()
        };
        let mut stream = Stream::new(transform, &mut output, None::<io::Sink>, report, options);
        stream.fix_now(now);
        if let Some(request) = request {
            stream.set_request(request);
        }
        stream
            .run_here(&name, text.as_bytes())
            .map_err(|error| format!("{}: {error}", input.display()))?;
        stream.stats
    };
    if stats.read == 0 {
        return Err(format!("{}: the input holds no record", input.display()));
    }
    Ok(Actual {
        output: String::from_utf8_lossy(&output).into_owned(),
        errors,
        read: stats.read,
        dropped: stats.dropped,
    })
}

/// A time as `xf run --now` and `xf test --now` take one (RFC 3339, or
/// epoch seconds or milliseconds), in epoch ms.
pub fn parse_now(text: &str) -> Result<i64, String> {
    let value = match text.parse::<i64>() {
        Ok(number) => serde_json::Value::from(number),
        Err(_) => serde_json::Value::from(text),
    };
    crate::value::Time::from_value(&value).map(|time| time.millis())
}

/// A case's `CASE.request.json`: the request as `xf serve` gives it, as
/// one JSON object whose fields are all optional: `headers` (an object of
/// names to a text, or a list of texts for a header sent more than once),
/// `source`, `path`, `delivery_id` (texts) and `received_at` (epoch ms).
/// The same rules as in a server apply (names lower-cased, repeats joined,
/// each value bounded, `Authorization`, `Proxy-Authorization` and `Cookie`
/// withheld). There is no `index`, as in `xf run`: a case's records do not
/// come in one webhook's body.
fn read_request(path: &Path) -> Result<crate::apply::Request, Broken> {
    let text = read_text(path)?;
    let broken = |why: String| format!("{}: {why}", path.display());
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|error| {
        broken(format!(
            "{}:{}: not JSON: {error}",
            error.line(),
            error.column()
        ))
    })?;
    let serde_json::Value::Object(fields) = value else {
        return Err(broken("a request is one JSON object".to_string()));
    };
    let text_field = |name: &str| -> Result<Option<&str>, Broken> {
        match fields.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(broken(format!("`{name}` is a text"))),
        }
    };
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for (name, field) in &fields {
        match name.as_str() {
            "headers" => {
                let Some(given) = field.as_object() else {
                    return Err(broken("`headers` is an object of names to values".to_string()));
                };
                for (header, value) in given {
                    match value {
                        serde_json::Value::String(text) => headers.push((header, text)),
                        serde_json::Value::Array(items) => {
                            for item in items {
                                let Some(text) = item.as_str() else {
                                    return Err(broken(format!(
                                        "header `{header}`: each value is a text"
                                    )));
                                };
                                headers.push((header, text));
                            }
                        }
                        _ => {
                            return Err(broken(format!(
                                "header `{header}`: a text, or a list of texts"
                            )))
                        }
                    }
                }
            }
            "source" | "path" | "delivery_id" | "received_at" => {}
            other => {
                return Err(broken(format!(
                    "`{other}` is no field of a request (headers, source, path, received_at, delivery_id)"
                )))
            }
        }
    }
    let received_at = match fields.get("received_at") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(
            value
                .as_i64()
                .ok_or_else(|| broken("`received_at` is epoch milliseconds".to_string()))?,
        ),
    };
    let parts = crate::apply::RequestParts {
        source: text_field("source")?,
        path: text_field("path")?,
        received_at,
        delivery_id: text_field("delivery_id")?,
        withheld: &[],
    };
    Ok(crate::apply::Request::new(
        headers
            .iter()
            .map(|(name, value)| (*name, value.as_bytes())),
        &parts,
    ))
}

/// A case's `CASE.now`: one time, surrounding white space aside.
fn read_now(path: &Path) -> Result<i64, Broken> {
    let text = read_text(path)?;
    parse_now(text.trim()).map_err(|error| format!("{}: {error}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |name| name.to_string_lossy().into_owned())
}

fn read_text(path: &Path) -> Result<String, Broken> {
    let file =
        fs::File::open(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    crate::files::read_bounded(file, INPUT_LIMIT)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// Compares a case's outcome with what its files expect: `None` when it
/// passes, or what went wrong, in plain words and diffs (`colour`: ANSI).
pub fn judge(case: &Case, actual: &Actual, colour: bool) -> Result<Option<String>, Broken> {
    if case.dropped.is_some() && (case.output.is_some() || case.error.is_some()) {
        return Err(format!(
            "{}{DROPPED} expects nothing else: remove its {OUTPUT} or {ERROR}",
            case.name
        ));
    }
    if let Some(dropped) = &case.dropped {
        if !read_text(dropped)?.trim().is_empty() {
            return Err(format!(
                "{} is not empty: the engine does not report why a record was dropped, so a {DROPPED} file stays empty",
                dropped.display()
            ));
        }
        return Ok(judge_drop(actual, colour));
    }
    if !case.expects_anything() {
        return Err(format!(
            "no expectation ({OUTPUT}, {ERROR} or {DROPPED}): `xf test --bless` writes the current outcome"
        ));
    }
    let expected_output = match &case.output {
        Some(path) => read_text(path)?,
        None => String::new(),
    };
    let expected_errors = match &case.error {
        Some(path) => read_text(path)?,
        None => String::new(),
    };
    Ok(judge_records(
        &expected_output,
        &expected_errors,
        actual,
        colour,
    ))
}

fn judge_drop(actual: &Actual, colour: bool) -> Option<String> {
    if actual.all_dropped() {
        return None;
    }
    let mut report = String::from("expected every record to be dropped, but ");
    describe_actual(&mut report, actual, colour);
    Some(report)
}

/// What happened instead of what was expected, each part shown whole.
fn describe_actual(report: &mut String, actual: &Actual, colour: bool) {
    let written = actual.output.lines().count();
    let failed = actual.errors.lines().count();
    let mut parts = Vec::new();
    if written > 0 {
        parts.push(format!("{} written", plural(written, "record")));
    }
    if failed > 0 {
        parts.push(format!("{} failed", plural(failed, "record")));
    }
    if actual.dropped > 0 {
        parts.push(format!(
            "{} dropped",
            plural(actual.dropped as usize, "record")
        ));
    }
    let _ = writeln!(report, "{}:", parts.join(", "));
    if written > 0 {
        report.push_str(&diff(&pretty(""), &pretty(&actual.output), colour));
    }
    if failed > 0 {
        report.push_str(&diff("", &actual.errors, colour));
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn judge_records(
    expected_output: &str,
    expected_errors: &str,
    actual: &Actual,
    colour: bool,
) -> Option<String> {
    let output_same = expected_output == actual.output;
    let errors_same = expected_errors.trim_end() == actual.errors.trim_end();
    if output_same && errors_same {
        return None;
    }
    let mut report = String::new();
    let expected = expectation(expected_output, expected_errors);
    let got = expectation(&actual.output, &actual.errors);
    if actual.all_dropped() {
        let _ = writeln!(report, "expected {expected}, but every record was dropped");
        return Some(report);
    }
    // Another kind of outcome (a record error for output, say): said first, in words.
    let kind = |output: &str, errors: &str| (output.is_empty(), errors.is_empty());
    if kind(expected_output, expected_errors) != kind(&actual.output, &actual.errors) {
        let _ = writeln!(report, "expected {expected}, but got {got}");
    }
    if !output_same {
        let expected = expected_output.lines().count();
        let got = actual.output.lines().count();
        if expected == 0 {
            let _ = writeln!(report, "expected no record written, got {got}:");
        } else if got == 0 {
            let _ = writeln!(
                report,
                "expected {} written, got none:",
                plural(expected, "record")
            );
        } else {
            let _ = writeln!(
                report,
                "the output differs (- expected, + actual; each record pretty-printed):"
            );
        }
        let (old, new) = (pretty(expected_output), pretty(&actual.output));
        if old == new {
            // Different bytes of the same values (spacing, escapes): as they are.
            report.push_str("(the records are equal as values; their text differs)\n");
            report.push_str(&diff(expected_output, &actual.output, colour));
        } else {
            report.push_str(&diff(&old, &new, colour));
        }
    }
    if !errors_same {
        let expected = expected_errors.lines().count();
        let got = actual.errors.lines().count();
        if expected == 0 {
            let _ = writeln!(report, "expected no record error, got {got}:");
        } else if got == 0 {
            let _ = writeln!(
                report,
                "expected {}, got none:",
                plural(expected, "record error")
            );
        } else {
            let _ = writeln!(report, "the record errors differ (- expected, + actual):");
        }
        report.push_str(&diff(
            &with_final_newline(expected_errors),
            &actual.errors,
            colour,
        ));
    }
    if actual.dropped > 0 {
        let _ = writeln!(
            report,
            "({} dropped)",
            plural(actual.dropped as usize, "record")
        );
    }
    Some(report)
}

fn expectation(output: &str, errors: &str) -> String {
    let mut parts = Vec::new();
    let written = output.lines().count();
    if written > 0 {
        parts.push(format!("{} written", plural(written, "record")));
    }
    let failed = errors.lines().count();
    if failed > 0 {
        parts.push(plural(failed, "record error"));
    }
    if parts.is_empty() {
        "no output".to_string()
    } else {
        parts.join(" and ")
    }
}

fn with_final_newline(text: &str) -> String {
    let mut text = text.trim_end().to_string();
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

/// NDJSON with each record pretty-printed (keys in their order, numbers as
/// written), so that a diff shows one field a line; a line that is not JSON
/// stays as it is.
pub fn pretty(ndjson: &str) -> String {
    let mut out = String::new();
    for line in ndjson.lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(mut value) => {
                // Numbers as the record has them (`1e400`, not serde_json's `1e+400`).
                if crate::number::has_exponent(&value) {
                    crate::number::restore_exponents(line, &mut value);
                }
                let text = serde_json::to_string_pretty(&value).unwrap_or_else(|_| line.into());
                out.push_str(&text);
            }
            Err(_) => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A unified diff of two texts, line by line (`-` expected, `+` actual),
/// with three lines of context around each change; `colour`: red and green.
pub fn diff(expected: &str, actual: &str, colour: bool) -> String {
    use similar::{ChangeTag, TextDiff};
    let lines = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(expected, actual);
    let mut out = String::new();
    for group in lines.grouped_ops(DIFF_CONTEXT) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old = first.old_range().start..last.old_range().end;
        let new = first.new_range().start..last.new_range().end;
        // As in `diff -u`: an empty range starts at the line before it.
        let start = |range: &std::ops::Range<usize>| range.start + usize::from(!range.is_empty());
        let header = format!(
            "@@ -{},{} +{},{} @@",
            start(&old),
            old.len(),
            start(&new),
            new.len()
        );
        out.push_str(&paint(&header, "36", colour));
        out.push('\n');
        for op in &group {
            for change in lines.iter_changes(op) {
                let (sign, code) = match change.tag() {
                    ChangeTag::Delete => ('-', "31"),
                    ChangeTag::Insert => ('+', "32"),
                    ChangeTag::Equal => (' ', ""),
                };
                let text = change.value().trim_end_matches(['\n', '\r']);
                let line = format!("{sign}{text}");
                out.push_str(&paint(&line, code, colour && !code.is_empty()));
                out.push('\n');
                if change.missing_newline() {
                    out.push_str("\\ no newline at end of file\n");
                }
            }
        }
    }
    out
}

fn paint(text: &str, code: &str, colour: bool) -> String {
    if colour {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// Writes a case's outcome as what it expects, replacing the files of
/// another kind of expectation. Returns the files written.
pub fn bless(folder: &Path, case: &Case, actual: &Actual) -> io::Result<Vec<PathBuf>> {
    let path = |kind: &str| folder.join(format!("{}{kind}", case.name));
    let mut writes: Vec<(PathBuf, &str)> = Vec::new();
    let mut removes = Vec::new();
    if actual.all_dropped() {
        writes.push((path(DROPPED), ""));
        removes.extend([path(OUTPUT), path(ERROR)]);
    } else {
        removes.push(path(DROPPED));
        for (kind, text) in [(OUTPUT, &actual.output), (ERROR, &actual.errors)] {
            if text.is_empty() {
                removes.push(path(kind));
            } else {
                writes.push((path(kind), text));
            }
        }
    }
    // The new expectation first, then the old ones go: stopped in between, a
    // case has two expectations (a failure that says so), never none.
    let mut written = Vec::new();
    for (file, text) in writes {
        crate::files::write_atomically(&file, text)?;
        written.push(file);
    }
    for file in removes {
        match fs::remove_file(&file) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(written)
}

/// The transform's warnings as `warnings.txt` lists them: `warning[CODE]:
/// message`, the header line `xf check` prints for each.
pub fn warning_lines(transform: &Transform) -> Vec<String> {
    transform
        .warnings()
        .iter()
        .map(|warning| format!("warning[{}]: {}", warning.code, warning.message))
        .collect()
}

/// Compares the warnings with `warnings.txt` (none expected without it):
/// `None` when they are the same, or which are unexpected and which missing.
pub fn judge_warnings(expected: Option<&str>, actual: &[String]) -> Option<String> {
    let expected: Vec<&str> = expected
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let mut missing: Vec<&str> = expected.clone();
    let mut unexpected = Vec::new();
    for line in actual {
        match missing.iter().position(|m| m == line) {
            Some(index) => {
                missing.remove(index);
            }
            None => unexpected.push(line.as_str()),
        }
    }
    if missing.is_empty() && unexpected.is_empty() {
        return None;
    }
    let mut report = String::new();
    for line in unexpected {
        let _ = writeln!(report, "unexpected (not in {WARNINGS_FILE}): {line}");
    }
    for line in missing {
        let _ = writeln!(report, "expected (in {WARNINGS_FILE}) but missing: {line}");
    }
    Some(report)
}

/// Writes the warnings as the folder's `warnings.txt`, or removes it when
/// there are none.
pub fn bless_warnings(folder: &Path, actual: &[String]) -> io::Result<()> {
    let path = folder.join(WARNINGS_FILE);
    if actual.is_empty() {
        return match fs::remove_file(path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        };
    }
    let mut text = actual.join("\n");
    text.push('\n');
    crate::files::write_atomically(&path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_shows_changed_lines_with_context() {
        let text = diff("a\nb\nc\n", "a\nB\nc\n", false);
        assert_eq!(text, "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n");
    }

    #[test]
    fn a_diff_in_colour_paints_removals_red_and_additions_green() {
        let text = diff("a\n", "b\n", true);
        assert_eq!(
            text,
            "\x1b[36m@@ -1,1 +1,1 @@\x1b[0m\n\x1b[31m-a\x1b[0m\n\x1b[32m+b\x1b[0m\n"
        );
    }

    #[test]
    fn a_diff_of_large_different_texts_ends() {
        let old: String = (0..40_000).map(|i| format!("{i}\n")).collect();
        let new: String = (0..40_000).map(|i| format!("x{i}\n")).collect();
        let started = std::time::Instant::now();
        let text = diff(&old, &new, false);
        assert!(
            started.elapsed() < DIFF_TIMEOUT * 30,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(text.lines().filter(|l| l.starts_with('-')).count(), 40_000);
        assert_eq!(text.lines().filter(|l| l.starts_with('+')).count(), 40_000);
    }

    #[test]
    fn pretty_keeps_key_order_and_non_json_lines() {
        assert_eq!(
            pretty("{\"b\":1,\"a\":2}\nnope\n"),
            "{\n  \"b\": 1,\n  \"a\": 2\n}\nnope\n"
        );
    }

    #[test]
    fn pretty_keeps_numbers_as_written() {
        assert_eq!(
            pretty("{\"a\":1E2,\"b\":1e400,\"c\":0.10}\n"),
            "{\n  \"a\": 1E2,\n  \"b\": 1e400,\n  \"c\": 0.10\n}\n"
        );
    }

    #[test]
    fn warnings_compare_as_lists() {
        let actual = vec!["warning[W0001]: x".to_string()];
        assert_eq!(judge_warnings(Some("warning[W0001]: x\n"), &actual), None);
        let report = judge_warnings(Some("warning[W0002]: y\n"), &actual).unwrap();
        assert!(report.contains("unexpected (not in warnings.txt): warning[W0001]: x"));
        assert!(report.contains("but missing: warning[W0002]: y"));
    }
}
