//! `POST /api/run`: one transform over one input, as `xf run` does it.
//!
//! The transform loads through the library's own path
//! ([`Transform::from_source_with`]) and the input goes through the same
//! [`Stream`] and output writer as `xf run` (one thread), so the page shows
//! what `xf run` would print: its output lines, its `error: …` lines for
//! records that fail, and the diagnostics and warnings `xf check` renders.
//! Everything is bounded ([`Bounds`]); nothing here panics on any body.

use std::cell::RefCell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use xf::diagnostic::Diagnostic;
use xf::stream::{Interrupt, Options, Stream, StreamError};
use xf::{Limits, LoadError, LoadOptions, Transform};

/// What one run may take. The defaults are in [`Bounds::DEFAULT`].
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The largest request body, in bytes (a larger one is answered 413).
    pub body: usize,
    /// The largest transform text, in bytes.
    pub transform: usize,
    /// The most records one input may hold (each item of a top-level array counts).
    pub records: usize,
    /// The most output text one run may write, in bytes.
    pub output: usize,
    /// The longest a whole run may take; then it stops between records, and
    /// a record still at work is cut after the engine's grace.
    pub run_time: Duration,
    /// The most request headers a run may give (lines of `headers`).
    pub headers: usize,
    /// Per-record limits (`xf run`'s `--max-statements` and the others).
    pub limits: Limits,
}

impl Bounds {
    /// 2 MiB bodies, 256 KiB transforms, 1,000 records, 4 MiB of output, 5 s
    /// a run, 100 request headers; per record `xf run`'s defaults, but 1 s (not 10 s) and 1,000
    /// records out of one (not 10,000).
    pub const DEFAULT: Bounds = Bounds {
        body: 2 * 1024 * 1024,
        transform: 256 * 1024,
        records: 1_000,
        output: 4 * 1024 * 1024,
        run_time: Duration::from_secs(5),
        headers: 100,
        limits: Limits {
            record_millis: 1_000,
            outputs: 1_000,
            ..Limits::DEFAULT
        },
    };
}

/// What a run request holds, read from its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub transform: String,
    pub input: String,
    /// What `now()` gives (as `xf run --now`): epoch ms, s, or RFC 3339.
    pub now: Option<i64>,
    /// The headers the transform reads as `request.headers` (as `xf run
    /// --request-header` gives them): name and value, in the order given.
    pub headers: Vec<(String, String)>,
    /// The source name the transform reads as `request.source` (`xf run --request-source`).
    pub source: Option<String>,
}

/// Why a body is not a run request: the text of a 400 (or 413) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadRequest(String),
    TooLarge(String),
}

/// Reads a run request: a JSON object with `transform` and `input` strings,
/// and optionally `now`, `headers` (one `Name: value` a line, each read as
/// `xf run --request-header` reads one) and `source` (a string); any other
/// member is refused, so that a typo is not silently ignored.
pub fn parse_request(body: &[u8], bounds: &Bounds) -> Result<Request, Refusal> {
    let bad = |why: String| Refusal::BadRequest(why);
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| bad(format!("the body is not JSON: {error}")))?;
    let Value::Object(members) = value else {
        return Err(bad(
            "the body must be a JSON object with \"transform\" and \"input\"".into(),
        ));
    };
    for key in members.keys() {
        if !matches!(
            key.as_str(),
            "transform" | "input" | "now" | "headers" | "source"
        ) {
            return Err(bad(format!(
                "unknown member {}: a run takes \"transform\", \"input\", \"now\", \"headers\" and \"source\"",
                Value::from(key.as_str())
            )));
        }
    }
    let text = |name: &str| match members.get(name) {
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(bad(format!("\"{name}\" must be a string"))),
        None => Err(bad(format!("\"{name}\" is missing"))),
    };
    let transform = text("transform")?;
    let input = text("input")?;
    if transform.len() > bounds.transform {
        return Err(Refusal::TooLarge(format!(
            "the transform is {} bytes, over the playground's limit of {}",
            transform.len(),
            bounds.transform
        )));
    }
    let now = match members.get("now") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            xf::value::Time::from_value(value)
                .map_err(|why| bad(format!("\"now\": {why}")))?
                .millis(),
        ),
    };
    let headers = match members.get("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(lines)) => header_lines(lines, bounds)?,
        Some(_) => {
            return Err(bad(
                "\"headers\" must be a string of `Name: value` lines".into()
            ))
        }
    };
    let source = match members.get("source") {
        None | Some(Value::Null) => None,
        Some(Value::String(source)) => Some(source.clone()),
        Some(_) => return Err(bad("\"source\" must be a string".into())),
    };
    Ok(Request {
        transform,
        input,
        now,
        headers,
        source,
    })
}

/// The headers field: one `Name: value` a line (blank lines skipped), each
/// read by the parser of `xf run --request-header`; a bad line is named by
/// its number.
fn header_lines(lines: &str, bounds: &Bounds) -> Result<Vec<(String, String)>, Refusal> {
    let mut headers = Vec::new();
    for (number, line) in lines.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if headers.len() == bounds.headers {
            return Err(Refusal::TooLarge(format!(
                "\"headers\" holds more than {} headers, the playground's limit",
                bounds.headers
            )));
        }
        let header = crate::shared_cli::request_header(line).map_err(|why| {
            Refusal::BadRequest(format!("\"headers\", line {}: {why}", number + 1))
        })?;
        headers.push(header);
    }
    Ok(headers)
}

/// How many records `input` holds, stopping once past `max`: each value, each
/// item of a top-level array, and each stretch that is not JSON, counted as
/// one up to the end of its line, where the stream reads on (it reports
/// such a stretch as one failed record).
fn count_records(input: &str, max: usize) -> usize {
    let mut count = 0;
    let mut rest = input;
    while count <= max {
        let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match values.next() {
            None => break,
            Some(Ok(Value::Array(items))) => count += items.len().max(1),
            Some(Ok(_)) => count += 1,
            Some(Err(_)) => {
                count += 1;
                let failed_at = values.byte_offset().min(rest.len());
                // A line end is always a character boundary.
                rest = match memchr::memchr(b'\n', &rest.as_bytes()[failed_at..]) {
                    Some(at) => &rest[failed_at + at + 1..],
                    None => "",
                };
                continue;
            }
        }
        rest = &rest[values.byte_offset()..];
    }
    count
}

/// Where a transform's files (includes, lookups, templates, schemas) come from.
#[derive(Clone)]
pub enum Files {
    /// The shipped transforms' folder, built into the binary: nothing is read from disk.
    Shipped(Arc<xf::files::Memory>),
    /// A folder on disk, given by `--dir`: files there and below only.
    Dir(PathBuf),
}

/// Runs one request: the answer's JSON (status 200), or a refusal.
pub fn run(request: &Request, files: &Files, bounds: &Bounds) -> Result<Value, Refusal> {
    let records = count_records(&request.input, bounds.records);
    if records > bounds.records {
        return Err(Refusal::TooLarge(format!(
            "the input holds more than {} records, the playground's limit",
            bounds.records
        )));
    }
    let (options, base_dir) = match files {
        Files::Shipped(memory) => (
            LoadOptions {
                allowed_roots: Vec::new(),
                limits: bounds.limits,
                files: Some(Arc::clone(memory) as Arc<dyn xf::files::Loader>),
            },
            None,
        ),
        Files::Dir(dir) => (
            LoadOptions {
                allowed_roots: Vec::new(),
                limits: bounds.limits,
                files: None,
            },
            Some(dir.as_path()),
        ),
    };
    let mut answer = Map::new();
    match Transform::from_source_with(NAME, &request.transform, base_dir, &options) {
        Err(error) => {
            answer.insert("loaded".into(), false.into());
            answer.insert(
                "diagnostics".into(),
                load_problems(&error, &request.transform),
            );
            answer.insert("warnings".into(), problems("", &[], &request.transform));
            answer.insert("outputs".into(), json!([]));
            answer.insert("output".into(), "".into());
            answer.insert("errors".into(), json!([]));
            answer.insert("dropped".into(), 0.into());
        }
        Ok(transform) => {
            answer.insert("loaded".into(), true.into());
            answer.insert("diagnostics".into(), problems("", &[], &request.transform));
            answer.insert(
                "warnings".into(),
                problems(
                    &transform.render_warnings(),
                    transform.warnings(),
                    &request.transform,
                ),
            );
            answer.extend(stream(&transform, request, bounds));
        }
    }
    Ok(Value::Object(answer))
}

/// The name messages give the transform, as `xf check` would name a file.
pub const NAME: &str = "transform.xf";

/// A load error as the page shows it: rendered with carets, and each
/// diagnostic at its line and column for marking the editor.
fn load_problems(error: &LoadError, text: &str) -> Value {
    match error {
        LoadError::Invalid { diagnostics, .. } => problems(&error.render(), diagnostics, text),
        other => json!({"rendered": other.render(), "items": []}),
    }
}

/// `{"rendered": "error[E…]: …\n --> …", "items": [{code, severity, message,
/// label, line, column, end_line, end_column, notes}]}`; lines and columns
/// 1-based, columns in characters. A problem inside an included file (its
/// `within`) is marked where the include is.
fn problems(rendered: &str, diagnostics: &[Diagnostic], text: &str) -> Value {
    let items: Vec<Value> = diagnostics
        .iter()
        .map(|diagnostic| {
            let (line, column) = diagnostic.span.line_col(text);
            let end = xf::diagnostic::Span::new(diagnostic.span.end, diagnostic.span.end);
            let (end_line, end_column) = end.line_col(text);
            json!({
                "code": diagnostic.code.as_str(),
                "severity": if diagnostic.code.is_warning() { "warning" } else { "error" },
                "message": diagnostic.message,
                "label": diagnostic.label,
                "line": line,
                "column": column,
                "end_line": end_line,
                "end_column": end_column,
                "notes": diagnostic.notes,
            })
        })
        .collect();
    json!({"rendered": rendered, "items": items})
}

/// How many records' traces an answer carries, and how much of their text
/// at most (the rest of the run is not traced in the answer, though it runs).
pub const TRACED_RECORDS: usize = 100;
pub const TRACE_TEXT: usize = 1 << 20;

/// The run itself: `xf run`'s stream over the input, its output kept (and
/// bounded), its error lines collected.
fn stream(transform: &Transform, request: &Request, bounds: &Bounds) -> Map<String, Value> {
    let errors = RefCell::new(Vec::new());
    let traces = RefCell::new(Vec::new());
    let mut output = Bounded {
        text: Vec::new(),
        max: bounds.output,
    };
    let options = Options {
        keep_batches: false,
        strict: false,
        max_record: Some(bounds.body),
        threads: 1,
    };
    let report = |failure: &xf::stream::Report<'_>| {
        errors.borrow_mut().push(format!("error: {failure}"));
    };
    let mut stream = Stream::new(transform, &mut output, None::<io::Sink>, report, options);
    // What each statement did, per record, as `xf run --trace` shows it: the
    // first TRACED_RECORDS records' (each trace's values are already shortened).
    let mut trace_text = 0;
    let traces_ref = &traces;
    stream.trace_to(move |position, trace| {
        let mut traces = traces_ref.borrow_mut();
        if traces.len() < TRACED_RECORDS && trace_text < TRACE_TEXT {
            let text = trace.render();
            trace_text += text.len();
            let mut entry = Map::new();
            entry.insert("record".into(), position.to_string().into());
            entry.insert("text".into(), text.into());
            if let Value::Object(fields) = trace.to_json() {
                entry.extend(fields);
            }
            traces.push(Value::Object(entry));
        }
    });
    if let Some(now) = request.now {
        stream.fix_now(now);
    }
    // As `xf run` gives it: null without headers or a source.
    if let Some(given) = crate::shared_cli::request(&request.headers, request.source.as_deref()) {
        stream.set_request(given);
    }
    let interrupt = Interrupt::default();
    stream.set_interrupt(interrupt.clone());
    let _timer = Timer::start(interrupt, bounds.run_time);
    let result = stream.run_here("input", request.input.as_bytes());
    let interrupted = stream.interrupted();
    let stats = stream.stats;
    drop(stream);
    let mut errors = errors.into_inner();
    match result {
        Ok(_) => {}
        Err(StreamError::Output(_)) => errors.push(format!(
            "error: the output passed the playground's limit of {} bytes; the rest of the input was not run",
            bounds.output
        )),
        Err(other) => errors.push(format!("error: {other}")),
    }
    if interrupted {
        errors.push(format!(
            "error: the run passed the playground's limit of {} s; the rest of the input was not run",
            bounds.run_time.as_secs()
        ));
    }
    let text = String::from_utf8_lossy(&output.text).into_owned();
    let outputs: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::from(line)))
        .collect();
    let mut answer = Map::new();
    answer.insert("outputs".into(), outputs.into());
    // Pretty-printed here, where numbers keep what they were written as (the
    // page's JavaScript would turn `1e400` into null and round big integers).
    answer.insert("pretty".into(), xf::testing::pretty(&text).into());
    answer.insert("output".into(), text.into());
    answer.insert("errors".into(), errors.into());
    answer.insert("trace".into(), traces.into_inner().into());
    answer.insert("dropped".into(), stats.dropped.into());
    answer.insert(
        "stats".into(),
        json!({
            "read": stats.read,
            "written": stats.written,
            "outputs": stats.outputs,
            "dropped": stats.dropped,
            "failed": stats.failed,
        }),
    );
    answer
}

/// Output kept in memory, refused past `max` bytes (the stream then stops:
/// `StreamError::Output`).
struct Bounded {
    text: Vec<u8>,
    max: usize,
}

impl Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.text.len().saturating_add(bytes.len()) > self.max {
            return Err(io::Error::other("the playground's output limit"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Sets the stream's stop once the run has taken `after`; dropping it ends
/// its thread at once.
struct Timer {
    _done: mpsc::Sender<()>,
}

impl Timer {
    fn start(interrupt: Interrupt, after: Duration) -> Timer {
        let (done, wait) = mpsc::channel::<()>();
        if after.is_zero() {
            // No time at all: stopped before the first record ends, not whenever
            // the timer's thread first runs.
            interrupt
                .stop
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        std::thread::spawn(move || {
            if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(after) {
                interrupt
                    .stop
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Timer { _done: done }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shipped() -> Files {
        Files::Shipped(Arc::new(xf::files::Memory::new()))
    }

    #[test]
    fn a_request_needs_its_two_strings_and_nothing_else() {
        let bounds = Bounds::DEFAULT;
        assert!(parse_request(br#"{"transform": "", "input": ""}"#, &bounds).is_ok());
        for body in [
            &b"{"[..],
            b"[]",
            b"{\"transform\": 1, \"input\": \"\"}",
            b"{\"input\": \"\"}",
            b"{\"transform\": \"\", \"input\": \"\", \"x\": 1}",
            b"{\"transform\": \"\", \"input\": \"\", \"now\": []}",
        ] {
            assert!(
                matches!(parse_request(body, &bounds), Err(Refusal::BadRequest(_))),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let long = json!({"transform": "#".repeat(bounds.transform + 1), "input": ""});
        assert!(matches!(
            parse_request(long.to_string().as_bytes(), &bounds),
            Err(Refusal::TooLarge(_))
        ));
    }

    #[test]
    fn headers_are_lines_read_as_xf_run_reads_them_and_bounded() {
        let bounds = Bounds::DEFAULT;
        let parse = |headers: Value| {
            let body = json!({"transform": "", "input": "", "headers": headers, "source": "gh"});
            parse_request(body.to_string().as_bytes(), &bounds)
        };
        let request = parse(json!("X-GitHub-Event: ping\n\n  Accept :a/b  \r\n")).unwrap();
        assert_eq!(
            request.headers,
            [
                ("X-GitHub-Event".into(), "ping".into()),
                ("Accept".into(), "a/b".into())
            ]
        );
        assert_eq!(request.source.as_deref(), Some("gh"));
        let Err(Refusal::BadRequest(why)) = parse(json!("Accept: a/b\nno colon")) else {
            panic!("a line without a colon")
        };
        assert!(why.starts_with("\"headers\", line 2: "), "{why}");
        assert!(matches!(
            parse(json!("X Y: z")),
            Err(Refusal::BadRequest(_))
        ));
        assert!(matches!(
            parse(json!(["a: b"])),
            Err(Refusal::BadRequest(_))
        ));
        let many = "X-A: 1\n".repeat(bounds.headers + 1);
        assert!(matches!(parse(json!(many)), Err(Refusal::TooLarge(_))));
        let body = json!({"transform": "", "input": "", "source": 1});
        assert!(parse_request(body.to_string().as_bytes(), &bounds).is_err());
    }

    #[test]
    fn what_is_not_json_counts_a_record_a_line_and_the_count_reads_on() {
        assert_eq!(count_records("", 10), 0);
        assert_eq!(count_records("{} [1, 2, 3] {}", 10), 5);
        assert_eq!(count_records("x\n{}\n{}\n", 10), 3);
        assert_eq!(count_records("{\"a\": 1\n{}\nnot json at all\n[]", 10), 4);
        assert_eq!(count_records("é\u{1F600}\n{}", 10), 2);
        // A bad first line does not hide the records after it from the limit.
        let many = format!("x\n{}", "{}\n".repeat(2_000));
        assert!(count_records(&many, 1_000) > 1_000);
    }

    #[test]
    fn too_many_records_are_refused_before_the_run() {
        let bounds = Bounds {
            records: 3,
            ..Bounds::DEFAULT
        };
        let request = |input: &str| Request {
            transform: "set a = 1\n".into(),
            input: input.into(),
            now: None,
            headers: Vec::new(),
            source: None,
        };
        assert!(run(&request("{}\n{}\n[{}]"), &shipped(), &bounds).is_ok());
        assert!(run(&request("{}\n[{}, {}, {}]"), &shipped(), &bounds).is_err());
    }

    #[test]
    fn a_run_past_its_time_stops_between_records() {
        let bounds = Bounds {
            run_time: Duration::ZERO,
            ..Bounds::DEFAULT
        };
        let request = Request {
            transform: "set a = 1\n".into(),
            input: "{}\n".repeat(5),
            now: None,
            headers: Vec::new(),
            source: None,
        };
        let answer = run(&request, &shipped(), &bounds).unwrap();
        assert!(
            answer["errors"].to_string().contains("limit of 0 s"),
            "{answer}"
        );
        assert!(answer["stats"]["read"].as_u64().unwrap() < 5, "{answer}");
    }

    #[test]
    fn output_past_its_limit_stops_the_run() {
        let bounds = Bounds {
            output: 100,
            ..Bounds::DEFAULT
        };
        let request = Request {
            transform: "set a = \"0123456789012345678901234567890123456789\"\n".into(),
            input: "{}\n".repeat(10),
            now: None,
            headers: Vec::new(),
            source: None,
        };
        let answer = run(&request, &shipped(), &bounds).unwrap();
        let errors = answer["errors"].to_string();
        assert!(errors.contains("output passed"), "{answer}");
        assert!(answer["output"].as_str().unwrap().len() <= 100);
    }

    proptest! {
        // Any body: an answer or a refusal, never a panic.
        #[test]
        fn any_body_is_answered(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_request(&body, &Bounds::DEFAULT);
        }

        #[test]
        fn any_json_shaped_body_is_answered(
            transform in "[a-z =\"{}#\n\\[\\]]{0,40}",
            input in "[{}\\[\\]\",:0-9a-z \n]{0,40}",
            headers in "[A-Za-z: \n-]{0,30}",
            extra in proptest::option::of("[a-z]{1,5}"),
        ) {
            let mut body = json!({"transform": transform, "input": input, "headers": headers});
            if let Some(key) = extra {
                body[key] = json!(1);
            }
            if let Ok(request) = parse_request(body.to_string().as_bytes(), &Bounds::DEFAULT) {
                let _ = run(&request, &shipped(), &Bounds::DEFAULT);
            }
        }
    }
}
