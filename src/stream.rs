//! The stream driver: read → parse → apply → write for a whole input, record
//! by record, in constant memory.
//!
//! A record that cannot be read or transformed is reported (input position and
//! reason) through the error callback, kept verbatim in the dead-letter file
//! when there is one, and counted; the stream goes on unless `strict` is set.
//! Output is flushed whenever the input would make xf wait.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::apply::Outcome;
use crate::read::{Frame, Framer, DEFAULT_MAX_RECORD};
use crate::write::{DeadLetters, Position, Sink};
use crate::Transform;

/// How the stream treats batches and errors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Write one array per input array instead of one line per record.
    pub keep_batches: bool,
    /// Stop at the first record that fails.
    pub strict: bool,
    /// The largest input value kept whole, in bytes; `None`: [`DEFAULT_MAX_RECORD`].
    pub max_record: Option<usize>,
}

/// What happened to the records of a stream. `read == written + dropped + failed`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub read: u64,
    pub written: u64,
    pub dropped: u64,
    pub failed: u64,
}

/// Flags shared with signal handlers (see `xf run`): `waiting` is true while
/// the stream waits for input with all its output written, so a handler may end
/// the process then; `stop` asks the stream to end after the record in hand.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    pub stop: Arc<AtomicBool>,
    pub waiting: Arc<AtomicBool>,
}

/// Whether the stream may go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// `strict` and a record failed, or the output was closed.
    Stop,
}

/// Runs one transform over any number of inputs into one output.
pub struct Stream<'t, W: Write, D: Write> {
    transform: &'t Transform,
    sink: Sink<W>,
    dead_letters: Option<DeadLetters<D>>,
    on_error: Box<dyn FnMut(&str) + 't>,
    options: Options,
    pub stats: Stats,
    output_closed: bool,
    interrupt: Option<Interrupt>,
}

impl<'t, W: Write, D: Write> Stream<'t, W, D> {
    pub fn new(
        transform: &'t Transform,
        output: W,
        dead_letters: Option<D>,
        on_error: impl FnMut(&str) + 't,
        options: Options,
    ) -> Self {
        Stream {
            transform,
            sink: Sink::new(output),
            dead_letters: dead_letters.map(DeadLetters::new),
            on_error: Box::new(on_error),
            options,
            stats: Stats::default(),
            output_closed: false,
            interrupt: None,
        }
    }

    /// Lets signal handlers stop the stream between records (see [`Interrupt`]).
    pub fn set_interrupt(&mut self, interrupt: Interrupt) {
        self.interrupt = Some(interrupt);
    }

    /// Whether the stream ended because `Interrupt::stop` was set.
    pub fn interrupted(&self) -> bool {
        self.interrupt
            .as_ref()
            .is_some_and(|i| i.stop.load(Ordering::SeqCst))
    }

    /// Whether the reader of the output has gone away (`xf run … | head -1`).
    pub fn output_closed(&self) -> bool {
        self.output_closed
    }

    /// Streams one input through the transform. I/O errors of the output and
    /// the dead-letter file are returned; a closed output just stops the stream.
    pub fn run(&mut self, input_name: &str, input: impl Read) -> io::Result<Flow> {
        let limit = self.options.max_record.unwrap_or(DEFAULT_MAX_RECORD);
        let mut framer = Framer::with_limit(input, limit);
        let interrupt = self.interrupt.clone();
        loop {
            let sink = &mut self.sink;
            let next = framer.next_frame(&mut || {
                sink.flush()?;
                if let Some(interrupt) = &interrupt {
                    // Everything is written: from here until input arrives, a signal may end
                    // xf at once. A signal that came just before this point only set `stop`.
                    interrupt.waiting.store(true, Ordering::SeqCst);
                    if interrupt.stop.load(Ordering::SeqCst) {
                        return Err(io::Error::new(io::ErrorKind::Interrupted, "stop requested"));
                    }
                }
                Ok(())
            });
            if let Some(interrupt) = &interrupt {
                interrupt.waiting.store(false, Ordering::SeqCst);
            }
            let frame = match next {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(_) if self.interrupted() => return self.drain(input_name, &mut framer),
                Err(error) => return self.output_error(error),
            };
            let flow = match self.frame(input_name, &frame) {
                Ok(flow) => flow,
                Err(error) => return self.output_error(error),
            };
            if flow == Flow::Stop {
                return self.finish().map(|_| Flow::Stop);
            }
            if self.interrupted() {
                return self.drain(input_name, &mut framer);
            }
        }
        self.finish()
    }

    /// After a stop request: every record already read is written whole or
    /// dead-lettered; nothing more is read.
    fn drain(&mut self, input_name: &str, framer: &mut Framer<impl Read>) -> io::Result<Flow> {
        while let Some(frame) = framer.next_buffered_frame() {
            if let Err(error) = self.frame(input_name, &frame) {
                return self.output_error(error);
            }
        }
        if let Some(frame) = framer.unfinished() {
            let position = Position {
                input: input_name,
                line: frame.line,
                index: None,
            };
            self.stats.read += 1;
            self.fail(
                &position,
                "stopped by a signal in the middle of this record",
                frame.bytes,
            )?;
        }
        self.finish().map(|_| Flow::Stop)
    }

    fn finish(&mut self) -> io::Result<Flow> {
        match self.sink.flush() {
            Ok(()) => Ok(Flow::Continue),
            Err(error) => self.output_error(error),
        }
    }

    /// A closed pipe ends the stream quietly; other errors are the caller's.
    fn output_error(&mut self, error: io::Error) -> io::Result<Flow> {
        if error.kind() == io::ErrorKind::BrokenPipe {
            self.output_closed = true;
            Ok(Flow::Stop)
        } else {
            Err(error)
        }
    }

    fn frame(&mut self, input: &str, frame: &Frame<'_>) -> io::Result<Flow> {
        let position = Position {
            input,
            line: frame.line,
            index: None,
        };
        if let Some(size) = frame.oversized {
            self.stats.read += 1;
            let limit = self.options.max_record.unwrap_or(DEFAULT_MAX_RECORD);
            let reason = format!(
                "record too large: {size} bytes, over the limit of {limit} (--max-record-size); \
                 the dead letter keeps its first {} bytes",
                frame.bytes.len()
            );
            return self.fail(&position, &reason, frame.bytes);
        }
        if frame.bytes.first() == Some(&b'[') {
            if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(frame.bytes) {
                return self.batch(input, frame, &items);
            }
        }
        let record = match serde_json::from_slice::<Value>(frame.bytes) {
            Ok(record) => record,
            Err(error) => {
                self.stats.read += 1;
                let (line, column) = absolute(frame, error.line(), error.column());
                let at = Position {
                    input,
                    line,
                    index: None,
                };
                let reason = format!(
                    "malformed JSON: {} (column {column})",
                    strip_location(&error)
                );
                return self.fail(&at, &reason, frame.bytes);
            }
        };
        match self.record(record, &position, frame.bytes)? {
            (flow, Some(value)) => {
                self.sink.line(&value)?;
                Ok(flow)
            }
            (flow, None) => Ok(flow),
        }
    }

    /// A top-level array: each item is a record.
    fn batch(&mut self, input: &str, frame: &Frame<'_>, items: &[&RawValue]) -> io::Result<Flow> {
        let mut outputs = Vec::new();
        let mut flow = Flow::Continue;
        for (index, item) in items.iter().enumerate() {
            let raw = item.get().as_bytes();
            let offset = raw.as_ptr() as usize - frame.bytes.as_ptr() as usize;
            let line = frame.line
                + frame.bytes[..offset]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count();
            let position = Position {
                input,
                line,
                index: Some(index),
            };
            // Splitting into raw items does not check string escapes, so an item can still be malformed.
            let (item_flow, output) = match serde_json::from_str::<Value>(item.get()) {
                Ok(record) => self.record(record, &position, raw)?,
                Err(error) => {
                    self.stats.read += 1;
                    let reason = format!("malformed JSON: {}", strip_location(&error));
                    (self.fail(&position, &reason, raw)?, None)
                }
            };
            if let Some(output) = output {
                if self.options.keep_batches {
                    outputs.push(output);
                } else {
                    self.sink.line(&output)?;
                }
            }
            if item_flow == Flow::Stop {
                flow = Flow::Stop;
                break;
            }
        }
        if self.options.keep_batches && !outputs.is_empty() {
            self.sink.batch(&outputs)?;
        }
        Ok(flow)
    }

    /// Applies the transform to one record; returns what to write, if anything.
    fn record(
        &mut self,
        record: Value,
        position: &Position<'_>,
        raw: &[u8],
    ) -> io::Result<(Flow, Option<Value>)> {
        self.stats.read += 1;
        match self.transform.apply_once(record) {
            Ok(Outcome::Emit(output)) => {
                self.stats.written += 1;
                Ok((Flow::Continue, Some(output)))
            }
            Ok(Outcome::Dropped) => {
                self.stats.dropped += 1;
                Ok((Flow::Continue, None))
            }
            Err(error) => Ok((self.fail(position, &error.to_string(), raw)?, None)),
        }
    }

    fn fail(&mut self, position: &Position<'_>, reason: &str, raw: &[u8]) -> io::Result<Flow> {
        self.stats.failed += 1;
        (self.on_error)(&format!("{position}: {reason}"));
        if let Some(dead_letters) = &mut self.dead_letters {
            dead_letters.write(position, reason, raw)?;
        }
        Ok(if self.options.strict {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
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
