//! One frame of input → output lines, failures and counts, with no I/O: the
//! same function serves the one-thread driver and the worker threads.

use std::cell::OnceCell;

use serde_json::value::RawValue;
use serde_json::Value;

use super::{Flow, Options, Stats};

use crate::apply::{Context, ErrorKind, Outcome, RecordError};
use crate::compile::Format;
use crate::limits::MAX_VALUE_DEPTH;
use crate::read::{Frame, Framer, DEFAULT_MAX_RECORD};
use crate::value::untouched;
use crate::write::{ndjson_line, ndjson_line_untouched};
use crate::Transform;

/// A record that could not be read or transformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: usize,
    /// Its index in a top-level array, for a batch item.
    pub index: Option<usize>,
    pub problem: Problem,
    /// The record's input bytes, verbatim.
    pub raw: Vec<u8>,
}

/// Why a record failed: kept as a value, worded by its `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// It is not JSON that xf reads (malformed, or nested too deep): why, in
    /// xf's words, and for a value on its own line, the column where it went wrong.
    Unreadable {
        reason: String,
        column: Option<usize>,
    },
    /// It is larger than the record size limit; its first `kept` bytes are kept.
    TooLarge {
        size: u64,
        limit: usize,
        kept: usize,
    },
    /// The transform failed on it.
    Transform(RecordError),
    /// The end of the stream cut it short.
    Cut(Cut),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Unreadable {
                reason,
                column: None,
            } => f.write_str(reason),
            Problem::Unreadable {
                reason,
                column: Some(column),
            } => write!(f, "{reason} (column {column})"),
            Problem::TooLarge { size, limit, kept } => write!(
                f,
                "record too large: {size} bytes, over the limit of {limit} (--max-record-size); \
                 the dead letter keeps its first {kept} bytes"
            ),
            Problem::Transform(error) => error.fmt(f),
            Problem::Cut(Cut::Signal) => {
                f.write_str("stopped by a signal in the middle of this record")
            }
            Problem::Cut(Cut::ReadError) => {
                f.write_str("the input could not be read past this part of a record")
            }
        }
    }
}

/// Where one frame's results go.
pub struct Results<'a> {
    /// Output records are appended here, as NDJSON lines ([`ndjson_line`]).
    pub out: &'a mut Vec<u8>,
    pub failures: &'a mut Vec<Failure>,
    pub stats: &'a mut Stats,
    /// A stop request ends a record's work early (see [`crate::apply::Context`]).
    pub context: Context<'a>,
    /// When set, each record is applied traced and its trace kept here.
    pub traces: Option<&'a mut Vec<Traced>>,
}

/// The trace of one record, with where the record is in its input.
#[derive(Debug, Clone)]
pub struct Traced {
    pub line: usize,
    /// Its index in a top-level array (a batch), if it is an item of one.
    pub index: Option<usize>,
    pub trace: crate::apply::Trace,
}

/// Processes one frame. Returns [`Flow::Stop`] when `strict` and a record failed
/// (the records after it in the frame are then not processed).
pub fn process(
    transform: &Transform,
    options: &Options,
    frame: &Frame<'_>,
    results: &mut Results<'_>,
) -> Flow {
    if let Some(size) = frame.oversized {
        let problem = Problem::TooLarge {
            size,
            limit: options.max_record.unwrap_or(DEFAULT_MAX_RECORD),
            kept: frame.bytes.len(),
        };
        return fail(options, results, frame.line, None, problem, frame.bytes);
    }
    if let Some(flow) = process_untouched(transform, options, frame, results) {
        return flow;
    }
    let parsed = parse(frame.bytes);
    if frame.unscanned && parsed.is_err() {
        return process_scanned(transform, options, frame, results);
    }
    if frame.bytes.first() == Some(&b'[') {
        match parsed {
            Ok(Value::Array(items)) => return batch(transform, options, frame, items, results),
            // Split it into items, to tell the malformed ones from the rest.
            _ => {
                if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(frame.bytes) {
                    return raw_batch(transform, options, frame, &items, None, results);
                }
            }
        }
    }
    match parsed {
        Ok(record) => {
            let mut flow = Flow::Continue;
            let whole = || (frame.line, frame.bytes);
            let outcome =
                record_outcome(transform, options, record, None, whole, results, &mut flow);
            write_records(results.out, outcome);
            flow
        }
        Err(error) => {
            let (line, column) = absolute(frame, error.line(), error.column());
            let problem = Problem::Unreadable {
                reason: unreadable(&error),
                column: Some(column),
            };
            fail(options, results, line, None, problem, frame.bytes)
        }
    }
}

/// Processes a frame that holds one object, or an array of them, with the
/// fields the transform cannot see kept as their bytes
/// ([`crate::value::untouched`]), when it can be: the transform does not see
/// the whole record, no trace is asked for, and batches are not kept whole.
/// `None` leaves the frame to [`process`]'s whole parse, which also gives a
/// malformed frame its usual error.
fn process_untouched(
    transform: &Transform,
    options: &Options,
    frame: &Frame<'_>,
    results: &mut Results<'_>,
) -> Option<Flow> {
    let seen = transform.fields_seen()?;
    if results.traces.is_some() {
        return None;
    }
    let text = std::str::from_utf8(frame.bytes).ok()?;
    match frame.bytes.first() {
        Some(b'{') => {
            let (record, untouched) = untouched::parse_object(text, seen).ok()??;
            let mut flow = Flow::Continue;
            let whole = || (frame.line, frame.bytes);
            let output = run_untouched(
                transform, options, record, &untouched, None, whole, results, &mut flow,
            );
            write_untouched(transform, results, output, &untouched);
            Some(flow)
        }
        Some(b'[') if !options.keep_batches => {
            let items = serde_json::from_str::<Vec<&RawValue>>(text).ok()?;
            Some(raw_batch(
                transform,
                options,
                frame,
                &items,
                Some(seen),
                results,
            ))
        }
        _ => None,
    }
}

/// [`record_outcome`] for a record whose unseen fields are kept elsewhere.
#[allow(clippy::too_many_arguments)]
fn run_untouched<'a>(
    transform: &Transform,
    options: &Options,
    record: Value,
    untouched: &untouched::Untouched<'_>,
    index: Option<usize>,
    locate: impl FnOnce() -> (usize, &'a [u8]),
    results: &mut Results<'_>,
    flow: &mut Flow,
) -> Outcome {
    let context = results.context;
    results.context.kept_elsewhere = untouched.keeps_any();
    let output = record_outcome(transform, options, record, index, locate, results, flow);
    results.context = context;
    output
}

/// A record's outputs, their kept fields written back.
fn write_untouched(
    transform: &Transform,
    results: &mut Results<'_>,
    output: Outcome,
    untouched: &untouched::Untouched<'_>,
) {
    let in_envelope = transform.format() == Format::Splunk;
    for output in output.into_records() {
        ndjson_line_untouched(results.out, &output, untouched, in_envelope);
    }
}

/// An unscanned line that is not one value, framed for real: several values,
/// or a malformed one reported where it is.
fn process_scanned(
    transform: &Transform,
    options: &Options,
    line: &Frame<'_>,
    results: &mut Results<'_>,
) -> Flow {
    let mut framer = Framer::within_line(line.bytes, line.line, line.column);
    // Reading from a slice neither fails nor waits.
    while let Ok(Some(frame)) = framer.next_frame(&mut || Ok(())) {
        if process(transform, options, &frame, results) == Flow::Stop {
            return Flow::Stop;
        }
    }
    Flow::Continue
}

/// Parses a frame. UTF-8 is checked once for the whole frame, which costs far
/// less than serde_json checking each string apart; only invalid text goes to
/// the byte parser, for its error's position.
/// Numbers keep their exponent's spelling (serde_json writes `1E2` as `1e+2`).
fn parse(bytes: &[u8]) -> serde_json::Result<Value> {
    match std::str::from_utf8(bytes) {
        Ok(text) => {
            let mut value = serde_json::from_str(text)?;
            if crate::number::has_exponent(&value) {
                crate::number::restore_exponents(text, &mut value);
            }
            Ok(value)
        }
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// One value read as a record of the input is (the same parser, depth limit
/// and numbers), such as a record `xf serve` kept as it was received; an
/// array stays one value. The reason, with its line and column, if it is not JSON.
pub fn parse_record(bytes: &[u8]) -> Result<Value, String> {
    parse(bytes).map_err(|error| {
        format!(
            "{} at line {}, column {}",
            unreadable(&error),
            error.line(),
            error.column()
        )
    })
}

/// A well-formed top-level array: each item is a record. Where an item is in
/// the input is only worked out for one that fails: the frame is split into raw
/// items once, on the first failure, and lines are counted on from the last
/// failing item, so a batch whose every item fails stays linear.
fn batch(
    transform: &Transform,
    options: &Options,
    frame: &Frame<'_>,
    items: Vec<Value>,
    results: &mut Results<'_>,
) -> Flow {
    let mut batch = Batch::new(options);
    let raw_items: OnceCell<Option<Vec<&RawValue>>> = OnceCell::new();
    let mut lines = Lines::new(frame);
    for (index, record) in items.into_iter().enumerate() {
        let lines = &mut lines;
        let raw_items = &raw_items;
        let locate = move || {
            // The frame parsed as a whole, so it splits into the same items.
            let raw = raw_items
                .get_or_init(|| serde_json::from_slice::<Vec<&RawValue>>(frame.bytes).ok())
                .as_ref()
                .and_then(|items| items.get(index).map(|item| item.get().as_bytes()))
                .unwrap_or(frame.bytes);
            (lines.line_of(raw), raw)
        };
        let output = record_outcome(
            transform,
            options,
            record,
            Some(index),
            locate,
            results,
            &mut batch.flow,
        );
        if batch.push(output, results) == Flow::Stop {
            break;
        }
    }
    batch.finish(results)
}

/// A top-level array split into raw items first: one with malformed items,
/// or (given `seen`, the fields the transform sees) one whose object items
/// are read as [`process_untouched`] reads a frame. Any other item is parsed
/// whole; a malformed one fails alone.
fn raw_batch(
    transform: &Transform,
    options: &Options,
    frame: &Frame<'_>,
    items: &[&RawValue],
    seen: Option<&untouched::FieldSet>,
    results: &mut Results<'_>,
) -> Flow {
    let mut batch = Batch::new(options);
    let mut lines = Lines::new(frame);
    for (index, item) in items.iter().enumerate() {
        let text = item.get();
        let raw = text.as_bytes();
        let lines = &mut lines;
        let mut locate = move || (lines.line_of(raw), raw);
        let kept = seen
            .filter(|_| raw.first() == Some(&b'{'))
            .and_then(|seen| untouched::parse_object(text, seen).ok().flatten());
        match kept {
            Some((record, untouched)) => {
                let output = run_untouched(
                    transform,
                    options,
                    record,
                    &untouched,
                    Some(index),
                    locate,
                    results,
                    &mut batch.flow,
                );
                write_untouched(transform, results, output, &untouched);
            }
            // Splitting into raw items does not check string escapes, so an item can still be malformed.
            None => match parse(raw) {
                Ok(record) => {
                    let output = record_outcome(
                        transform,
                        options,
                        record,
                        Some(index),
                        locate,
                        results,
                        &mut batch.flow,
                    );
                    batch.push(output, results);
                }
                Err(error) => {
                    let problem = Problem::Unreadable {
                        reason: unreadable(&error),
                        column: None,
                    };
                    let (line, raw) = locate();
                    batch.flow = fail(options, results, line, Some(index), problem, raw);
                }
            },
        }
        if batch.flow == Flow::Stop {
            break;
        }
    }
    batch.finish(results)
}

/// A batch's outputs: one line each, or one array (`--keep-batches`).
struct Batch {
    keep: bool,
    kept: Vec<Value>,
    flow: Flow,
}

impl Batch {
    fn new(options: &Options) -> Self {
        Batch {
            keep: options.keep_batches,
            kept: Vec::new(),
            flow: Flow::Continue,
        }
    }

    fn push(&mut self, outcome: Outcome, results: &mut Results<'_>) -> Flow {
        match outcome {
            Outcome::Emit(output) if self.keep => self.kept.push(output),
            Outcome::Fanned(outputs) if self.keep => self.kept.extend(outputs),
            outcome => write_records(results.out, outcome),
        }
        self.flow
    }

    fn finish(self, results: &mut Results<'_>) -> Flow {
        if !self.kept.is_empty() {
            ndjson_line(results.out, &Value::Array(self.kept));
        }
        self.flow
    }
}

/// A record's outputs, one NDJSON line each (none when it was dropped).
fn write_records(out: &mut Vec<u8>, outcome: Outcome) {
    match outcome {
        Outcome::Emit(output) => ndjson_line(out, &output),
        Outcome::Fanned(outputs) => outputs.iter().for_each(|output| ndjson_line(out, output)),
        Outcome::Dropped => {}
    }
}

/// The input lines that items of a batch start on. Items are asked for in
/// input order, so newlines are counted on from the previous item, never again
/// from the frame's start.
struct Lines<'f> {
    frame: &'f [u8],
    /// The frame's first line, and how far (offset, line) counting has come.
    first: usize,
    offset: usize,
    line: usize,
}

impl<'f> Lines<'f> {
    fn new(frame: &Frame<'f>) -> Self {
        Lines {
            frame: frame.bytes,
            first: frame.line,
            offset: 0,
            line: frame.line,
        }
    }

    /// The line `raw` (a slice of the frame) starts on.
    fn line_of(&mut self, raw: &[u8]) -> usize {
        let offset = item_offset(self.frame, raw);
        if offset < self.offset {
            // Out of order (not the case in a batch): count from the start again.
            self.offset = 0;
            self.line = self.first;
        }
        self.line += memchr::memchr_iter(b'\n', &self.frame[self.offset..offset]).count();
        self.offset = offset;
        self.line
    }
}

/// Where `raw`, a slice of `frame`, starts in it (clamped to the frame).
fn item_offset(frame: &[u8], raw: &[u8]) -> usize {
    let offset = (raw.as_ptr() as usize).saturating_sub(frame.as_ptr() as usize);
    offset.min(frame.len())
}

/// Applies the transform to one record; returns what to write (a record
/// that failed is `Dropped` here, after it was dead-lettered). `locate`
/// gives its line and input bytes, wanted only when it fails.
fn record_outcome<'a>(
    transform: &Transform,
    options: &Options,
    record: Value,
    index: Option<usize>,
    locate: impl FnOnce() -> (usize, &'a [u8]),
    results: &mut Results<'_>,
    flow: &mut Flow,
) -> Outcome {
    // A traced record is located at once (its trace names its line); any
    // other only when it fails.
    let mut locate = Some(locate);
    let located = match results.traces.is_some() {
        true => locate.take().map(|locate| locate()),
        false => None,
    };
    let result = match (results.traces.as_deref_mut(), located) {
        (Some(traces), Some((line, _))) => {
            let (result, trace) = guarded(|| transform.apply_traced(record, &results.context))
                .unwrap_or_else(|error| {
                    let end = crate::apply::TraceEnd::Failed(error.to_string());
                    let trace = crate::apply::Trace {
                        end,
                        ..Default::default()
                    };
                    (Err(error), trace)
                });
            traces.push(Traced { line, index, trace });
            result
        }
        _ => apply_guarded(transform, record, &results.context),
    };
    match result {
        Ok(Outcome::Dropped) => {
            results.stats.read += 1;
            results.stats.dropped += 1;
            Outcome::Dropped
        }
        Ok(written) => {
            results.stats.read += 1;
            results.stats.written += 1;
            results.stats.outputs += written.records() as u64;
            written
        }
        Err(error) => {
            // One of the two is always there.
            let (line, raw) = located
                .or_else(|| locate.take().map(|locate| locate()))
                .unwrap_or_default();
            *flow = fail(
                options,
                results,
                line,
                index,
                Problem::Transform(error),
                raw,
            );
            Outcome::Dropped
        }
    }
}

thread_local! {
    /// Whether this thread is applying a transform to a record right now.
    static IN_RECORD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the calling thread is inside one record's work, where a panic is
/// caught and becomes that record's error: a program's panic hook can stay
/// quiet then (`xf run` does), since the record error says it all.
pub fn in_record_work() -> bool {
    IN_RECORD.with(std::cell::Cell::get)
}

/// Applies the transform to one record, so that a panic in that work (a bug in
/// xf or a library it uses, reached by some input) is this record's error and
/// never the process's: the stream goes on with the next record.
fn apply_guarded(
    transform: &Transform,
    record: Value,
    context: &Context<'_>,
) -> Result<Outcome, RecordError> {
    guarded(|| transform.apply_in(record, context)).and_then(|outcome| outcome)
}

/// Runs one record's `work`; a panic in it is the record's error.
fn guarded<T>(work: impl FnOnce() -> T) -> Result<T, RecordError> {
    IN_RECORD.with(|flag| flag.set(true));
    // Nothing outlives a panic here but the transform, which applying never
    // changes, so no broken state can be seen after one.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    IN_RECORD.with(|flag| flag.set(false));
    match result {
        Ok(done) => Ok(done),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_string());
            Err(RecordError::new(
                ErrorKind::Internal,
                None,
                format!(
                    "internal error while transforming this record (a bug in xf: please report it): {what}"
                ),
            ))
        }
    }
}

/// Records a failure (counted as read and failed).
pub fn fail(
    options: &Options,
    results: &mut Results<'_>,
    line: usize,
    index: Option<usize>,
    problem: Problem,
    raw: &[u8],
) -> Flow {
    results.stats.read += 1;
    results.stats.failed += 1;
    results.failures.push(Failure {
        line,
        index,
        problem,
        raw: raw.to_vec(),
    });
    if options.strict {
        Flow::Stop
    } else {
        Flow::Continue
    }
}

/// Why the stream ended in the middle of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// A stop request (SIGINT, SIGTERM).
    Signal,
    /// The input could not be read further.
    ReadError,
}

/// Records a value that the end of the stream cut short: it was read in part,
/// so it is a failure (dead-lettered) rather than lost.
pub fn cut(options: &Options, results: &mut Results<'_>, frame: &Frame<'_>, why: Cut) -> Flow {
    fail(
        options,
        results,
        frame.line,
        None,
        Problem::Cut(why),
        frame.bytes,
    )
}

/// serde_json's position inside a frame → the position in the input.
/// Parses one frame as the stream does (numbers keep their spelling). On
/// error: the line and column in the input where it went wrong, and why, in
/// xf's words.
pub fn parse_frame(frame: &Frame<'_>) -> Result<Value, (usize, usize, String)> {
    parse(frame.bytes).map_err(|error| {
        let (line, column) = absolute(frame, error.line(), error.column());
        (line, column, unreadable(&error))
    })
}

fn absolute(frame: &Frame<'_>, line: usize, column: usize) -> (usize, usize) {
    if line <= 1 {
        (frame.line, frame.column + column.saturating_sub(1))
    } else {
        (frame.line + line - 1, column)
    }
}

/// Why a value could not be read: JSON nested deeper than xf parses (which
/// may be valid JSON), or malformed JSON.
fn unreadable(error: &serde_json::Error) -> String {
    let message = strip_location(error);
    if message == too_deep() {
        message
    } else {
        format!("malformed JSON: {message}")
    }
}

fn too_deep() -> String {
    format!("nested more than {MAX_VALUE_DEPTH} levels deep, xf's limit")
}

/// serde_json's message without its "at line 1 column 5" suffix, in xf's
/// words where serde_json's would mislead.
fn strip_location(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let message = match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => &text,
    };
    explain(message)
}

/// serde_json's messages that say what it was doing rather than what is wrong
/// with the input. Both surrogate messages mean a `\u` escape of a UTF-16
/// surrogate without its partner: a leading one (`\ud800`) not followed by a
/// trailing one, or a trailing one (`\udc00`) alone.
fn explain(message: &str) -> String {
    match message {
        "recursion limit exceeded" => too_deep(),
        "lone leading surrogate in hex escape" | "unexpected end of hex escape" => {
            "a lone UTF-16 surrogate escape in a string (\\uD800 to \\uDFFF come only as \
             a leading-trailing pair)"
                .to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(transform: &str, input: &[u8], line: usize) -> (Vec<Failure>, Stats) {
        let transform = Transform::from_source("t.xf", transform, None).unwrap();
        let frame = Frame {
            bytes: input,
            line,
            column: 1,
            oversized: None,
            unscanned: false,
        };
        let (mut out, mut failures, mut stats) = (Vec::new(), Vec::new(), Stats::default());
        let mut results = Results {
            out: &mut out,
            failures: &mut failures,
            stats: &mut stats,
            context: Context::default(),
            traces: None,
        };
        process(&transform, &Options::default(), &frame, &mut results);
        (failures, stats)
    }

    /// Each failing item's line and raw text, as counted from the frame's start.
    fn expected(input: &[u8], first: usize) -> Vec<(usize, Vec<u8>)> {
        let items: Vec<&RawValue> = serde_json::from_slice(input).unwrap_or_default();
        items
            .iter()
            .map(|item| {
                let raw = item.get().as_bytes();
                let offset = item_offset(input, raw);
                let newlines = input[..offset].iter().filter(|b| **b == b'\n').count();
                (first + newlines, raw.to_vec())
            })
            .collect()
    }

    #[test]
    fn failing_batch_items_keep_their_lines_and_text() {
        let input = b"[{\"a\": 1},\n  {\"a\": 2}, {\"b\": 3},\n\n  {\"a\": 4},\n {\"a\":\n 5}]";
        let (failures, stats) = run("when a exists {\n  fail \"no\"\n}\n", input, 7);
        let want = expected(input, 7);
        let got: Vec<(usize, Vec<u8>)> = failures.iter().map(|f| (f.line, f.raw.clone())).collect();
        let failing: Vec<(usize, Vec<u8>)> =
            [0, 1, 3, 4].iter().map(|&i| want[i].clone()).collect();
        assert_eq!(got, failing);
        assert_eq!(
            failures.iter().map(|f| f.index).collect::<Vec<_>>(),
            [0, 1, 3, 4].map(Some)
        );
        assert_eq!((stats.read, stats.written, stats.failed), (5, 1, 4));
        assert_eq!(failures[0].line, 7);
        assert_eq!(failures[3].line, 11);
    }

    #[test]
    fn malformed_batch_items_keep_their_lines_and_text() {
        // A lone surrogate splits as a raw item but does not parse.
        let input = b"[{\"a\": 1},\n {\"a\": \"\\ud800\"},\n\n {\"b\": 2}, {\"a\": 3}\n]";
        let (failures, stats) = run("when a exists {\n  fail \"no\"\n}\n", input, 3);
        let want = expected(input, 3);
        let got: Vec<(usize, Vec<u8>)> = failures.iter().map(|f| (f.line, f.raw.clone())).collect();
        let failing: Vec<(usize, Vec<u8>)> = [0, 1, 3].iter().map(|&i| want[i].clone()).collect();
        assert_eq!(got, failing);
        assert!(
            failures[1]
                .problem
                .to_string()
                .starts_with("malformed JSON: "),
            "{}",
            failures[1].problem
        );
        assert_eq!(
            (failures[0].line, failures[1].line, failures[2].line),
            (3, 4, 6)
        );
        assert_eq!((stats.read, stats.written, stats.failed), (4, 1, 3));
    }

    #[test]
    fn lines_count_on_and_restart_when_asked_out_of_order() {
        let bytes = b"a\nb\n\nc\nd";
        let frame = Frame {
            bytes,
            line: 10,
            column: 1,
            oversized: None,
            unscanned: false,
        };
        let mut lines = Lines::new(&frame);
        assert_eq!(lines.line_of(&bytes[0..1]), 10);
        assert_eq!(lines.line_of(&bytes[2..3]), 11);
        assert_eq!(lines.line_of(&bytes[5..6]), 13);
        assert_eq!(lines.line_of(&bytes[2..3]), 11);
        assert_eq!(lines.line_of(&bytes[7..8]), 14);
    }
}
