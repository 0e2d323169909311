//! One frame of input → output lines, failures and counts, with no I/O: the
//! same function serves the one-thread driver and the worker threads.

use serde_json::value::RawValue;
use serde_json::Value;

use super::{Flow, Options, Stats};
use crate::apply::Outcome;
use crate::read::{Frame, DEFAULT_MAX_RECORD};
use crate::Transform;

/// A record that could not be read or transformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub line: usize,
    /// Its index in a top-level array, for a batch item.
    pub index: Option<usize>,
    pub reason: String,
    /// The record's input bytes, verbatim.
    pub raw: Vec<u8>,
}

/// Where one frame's results go.
pub struct Results<'a> {
    /// Output lines (NDJSON) are appended here.
    pub out: &'a mut Vec<u8>,
    pub failures: &'a mut Vec<Failure>,
    pub stats: &'a mut Stats,
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
        let limit = options.max_record.unwrap_or(DEFAULT_MAX_RECORD);
        let reason = format!(
            "record too large: {size} bytes, over the limit of {limit} (--max-record-size); \
             the dead letter keeps its first {} bytes",
            frame.bytes.len()
        );
        return fail(options, results, frame.line, None, reason, frame.bytes);
    }
    if frame.bytes.first() == Some(&b'[') {
        if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(frame.bytes) {
            return batch(transform, options, frame, &items, results);
        }
    }
    match serde_json::from_slice::<Value>(frame.bytes) {
        Ok(record) => {
            let mut flow = Flow::Continue;
            if let Some(output) = record_outcome(
                transform,
                options,
                record,
                frame.line,
                None,
                frame.bytes,
                results,
                &mut flow,
            ) {
                write_line(results.out, &output);
            }
            flow
        }
        Err(error) => {
            let (line, column) = absolute(frame, error.line(), error.column());
            let reason = format!(
                "malformed JSON: {} (column {column})",
                strip_location(&error)
            );
            fail(options, results, line, None, reason, frame.bytes)
        }
    }
}

/// A top-level array: each item is a record.
fn batch(
    transform: &Transform,
    options: &Options,
    frame: &Frame<'_>,
    items: &[&RawValue],
    results: &mut Results<'_>,
) -> Flow {
    let mut kept = Vec::new();
    let mut flow = Flow::Continue;
    for (index, item) in items.iter().enumerate() {
        let raw = item.get().as_bytes();
        let offset = raw.as_ptr() as usize - frame.bytes.as_ptr() as usize;
        let line = frame.line
            + frame.bytes[..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
        // Splitting into raw items does not check string escapes, so an item can still be malformed.
        let output = match serde_json::from_str::<Value>(item.get()) {
            Ok(record) => record_outcome(
                transform,
                options,
                record,
                line,
                Some(index),
                raw,
                results,
                &mut flow,
            ),
            Err(error) => {
                let reason = format!("malformed JSON: {}", strip_location(&error));
                flow = fail(options, results, line, Some(index), reason, raw);
                None
            }
        };
        if let Some(output) = output {
            if options.keep_batches {
                kept.push(output);
            } else {
                write_line(results.out, &output);
            }
        }
        if flow == Flow::Stop {
            break;
        }
    }
    if options.keep_batches && !kept.is_empty() {
        write_line(results.out, &Value::Array(kept));
    }
    flow
}

/// Applies the transform to one record; returns what to write, if anything.
#[allow(clippy::too_many_arguments)]
fn record_outcome(
    transform: &Transform,
    options: &Options,
    record: Value,
    line: usize,
    index: Option<usize>,
    raw: &[u8],
    results: &mut Results<'_>,
    flow: &mut Flow,
) -> Option<Value> {
    match transform.apply_once(record) {
        Ok(Outcome::Emit(output)) => {
            results.stats.read += 1;
            results.stats.written += 1;
            Some(output)
        }
        Ok(Outcome::Dropped) => {
            results.stats.read += 1;
            results.stats.dropped += 1;
            None
        }
        Err(error) => {
            *flow = fail(options, results, line, index, error.to_string(), raw);
            None
        }
    }
}

/// Records a failure (counted as read and failed).
pub fn fail(
    options: &Options,
    results: &mut Results<'_>,
    line: usize,
    index: Option<usize>,
    reason: String,
    raw: &[u8],
) -> Flow {
    results.stats.read += 1;
    results.stats.failed += 1;
    results.failures.push(Failure {
        line,
        index,
        reason,
        raw: raw.to_vec(),
    });
    if options.strict {
        Flow::Stop
    } else {
        Flow::Continue
    }
}

/// Records a value that a stop request cut short: it was read in part, so it
/// is a failure (dead-lettered) rather than lost.
pub fn cut(options: &Options, results: &mut Results<'_>, frame: &Frame<'_>) -> Flow {
    let reason = "stopped by a signal in the middle of this record".to_string();
    fail(options, results, frame.line, None, reason, frame.bytes)
}

fn write_line(out: &mut Vec<u8>, value: &Value) {
    // Writing into a Vec cannot fail, and a serde_json Value always serializes.
    let _ = serde_json::to_writer(&mut *out, value);
    out.push(b'\n');
}

/// serde_json's position inside a frame → the position in the input.
fn absolute(frame: &Frame<'_>, line: usize, column: usize) -> (usize, usize) {
    if line <= 1 {
        (frame.line, frame.column + column.saturating_sub(1))
    } else {
        (frame.line + line - 1, column)
    }
}

/// serde_json's message without its "at line 1 column 5" suffix.
fn strip_location(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}
