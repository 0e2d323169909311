//! Stage 4, write: output records (values, from apply) encoded as NDJSON or
//! as a request body, and dead letters.
//!
//! Records are written one compact JSON value per line (`--keep-batches`: one
//! array per input array). In format `splunk` each line is a HEC event
//! ([`crate::splunk`]), and stacked events are exactly a HEC batch.

use std::io::{self, Write};

use serde_json::Value;

use crate::value::untouched::{Field, Untouched};

/// Appends `value` as one NDJSON line: compact JSON and a newline.
pub fn ndjson_line(out: &mut Vec<u8>, value: &Value) {
    json_value(out, value);
    out.push(b'\n');
}

/// Appends `value` as one NDJSON line, as [`ndjson_line`] does, for a record
/// read with its unseen fields kept as bytes ([`Untouched`]): they are
/// written back in their places. The record is `value` itself, or in a HEC
/// event (`in_envelope`) its `event`.
pub fn ndjson_line_untouched(
    out: &mut Vec<u8>,
    value: &Value,
    untouched: &Untouched<'_>,
    in_envelope: bool,
) {
    match value {
        Value::Object(envelope) if in_envelope => {
            out.push(b'{');
            for (at, (key, value)) in envelope.iter().enumerate() {
                member_key(out, at, key);
                match value {
                    Value::Object(record) if key == "event" => object(out, record, untouched),
                    _ => json_value(out, value),
                }
            }
            out.push(b'}');
        }
        Value::Object(record) if !in_envelope => object(out, record, untouched),
        _ => json_value(out, value),
    }
    out.push(b'\n');
}

/// A record's fields in the order the input had them (a kept one as its
/// bytes), then those the run added: see [`crate::value::untouched`].
fn object(out: &mut Vec<u8>, record: &serde_json::Map<String, Value>, untouched: &Untouched<'_>) {
    out.push(b'{');
    // The input's fields still in the record come first in it, in input order.
    let mut members = record.iter().peekable();
    let mut at = 0;
    for field in &untouched.fields {
        match field {
            Field::Kept { key, bytes } => {
                // A kept key holds no escape: its text is what serde_json writes.
                if at > 0 {
                    out.push(b',');
                }
                out.push(b'"');
                out.extend_from_slice(key.as_bytes());
                out.extend_from_slice(b"\":");
                out.extend_from_slice(bytes.as_bytes());
            }
            Field::Parsed(name) => match members.next_if(|(key, _)| *key == name) {
                Some((key, value)) => {
                    member_key(out, at, key);
                    json_value(out, value);
                }
                // Removed by the run.
                None => continue,
            },
        }
        at += 1;
    }
    for (key, value) in members {
        member_key(out, at, key);
        json_value(out, value);
        at += 1;
    }
    out.push(b'}');
}

/// `,"key":` (no comma before the first member), as serde_json writes it.
fn member_key(out: &mut Vec<u8>, at: usize, key: &str) {
    if at > 0 {
        out.push(b',');
    }
    json_value(out, key);
    out.push(b':');
}

/// Appends `value` as compact JSON, as serde_json writes it.
fn json_value<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Writing into a Vec cannot fail, and these values always serialize.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// How several encoded records are put together in one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One record alone (the first, if given more).
    Single,
    /// A JSON array of the records.
    Array,
    /// One record per line, each line ended.
    Lines,
    /// A Splunk HEC batch: events stacked, one per line (HEC reads them
    /// back to back; the newlines keep the body readable).
    HecBatch,
}

/// Appends `records`, each one compact JSON value, framed as `framing` says.
pub fn frame<'r>(framing: Framing, records: impl IntoIterator<Item = &'r [u8]>, out: &mut Vec<u8>) {
    let mut records = records.into_iter();
    match framing {
        Framing::Single => {
            if let Some(record) = records.next() {
                out.extend_from_slice(record);
            }
        }
        Framing::Array => {
            out.push(b'[');
            for (i, record) in records.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(record);
            }
            out.push(b']');
        }
        Framing::Lines => {
            for record in records {
                out.extend_from_slice(record);
                out.push(b'\n');
            }
        }
        Framing::HecBatch => {
            for (i, record) in records.enumerate() {
                if i > 0 {
                    out.push(b'\n');
                }
                out.extend_from_slice(record);
            }
        }
    }
}

/// Bytes of output collected before they are written.
const OUTPUT_BUFFER: usize = 64 * 1024;

/// Buffered NDJSON output that only ever writes whole lines, so that a
/// reader never sees half a record, whenever xf stops.
pub struct Sink<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> Sink<W> {
    pub fn new(out: W) -> Self {
        Sink {
            out,
            buf: Vec::with_capacity(OUTPUT_BUFFER),
        }
    }

    /// The buffer that complete output lines are appended to; call
    /// [`Sink::commit`] after appending.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends complete output lines; as many as fill the buffer on their
    /// own are written out at once, without a copy into it.
    pub fn append(&mut self, lines: &[u8]) -> io::Result<()> {
        if lines.len() >= OUTPUT_BUFFER {
            self.write_out()?;
            return self.out.write_all(lines);
        }
        self.buf.extend_from_slice(lines);
        self.commit()
    }

    /// Writes the buffered lines out once there are enough of them.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.buf.len() >= OUTPUT_BUFFER {
            self.write_out()?;
        }
        Ok(())
    }

    fn write_out(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let result = self.out.write_all(&self.buf);
            self.buf.clear();
            result?;
        }
        Ok(())
    }

    /// Writes out every complete line collected so far.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_out()?;
        self.out.flush()
    }
}

/// Where a record that failed came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position<'a> {
    /// The input's name: a file path, or `stdin`.
    pub input: &'a str,
    pub line: usize,
    /// For a record inside a top-level array: its 0-based index there.
    pub index: Option<usize>,
}

impl std::fmt::Display for Position<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.input, self.line)?;
        if let Some(index) = self.index {
            write!(f, " (batch item {index})")?;
        }
        Ok(())
    }
}

/// The dead-letter file: one JSON line per failed record, with the record's
/// input text kept verbatim in `raw` (or, when it is not UTF-8, in `raw_base64`).
pub struct DeadLetters<W: Write> {
    out: W,
    line: Vec<u8>,
}

impl<W: Write> DeadLetters<W> {
    pub fn new(out: W) -> Self {
        DeadLetters {
            out,
            line: Vec::new(),
        }
    }

    pub fn write(&mut self, position: &Position<'_>, reason: &str, raw: &[u8]) -> io::Result<()> {
        let mut letter = serde_json::Map::new();
        letter.insert("input".into(), position.input.into());
        letter.insert("line".into(), position.line.into());
        if let Some(index) = position.index {
            letter.insert("index".into(), index.into());
        }
        letter.insert("error".into(), reason.into());
        match std::str::from_utf8(raw) {
            Ok(text) => letter.insert("raw".into(), text.into()),
            Err(_) => {
                use base64::Engine as _;
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                letter.insert("raw_base64".into(), encoded.into())
            }
        };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &Value::Object(letter)).map_err(io::Error::from)?;
        self.line.push(b'\n');
        // One write of the whole line (see [`DeadLetterFile`] for a write that
        // fails half-way), written through at once: it must survive a crash later on.
        self.out.write_all(&self.line)?;
        self.out.flush()
    }
}

/// A dead-letter file opened for appending, in which a line is written whole
/// or not at all: when a write fails half-way (a full disk), the file is cut
/// back to where it was, so that it never ends in half a line.
pub struct DeadLetterFile {
    file: std::fs::File,
}

impl DeadLetterFile {
    /// Opens (creating) `path` for appending.
    pub fn open(path: &std::path::Path) -> io::Result<Self> {
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(DeadLetterFile { file })
    }
}

impl Write for DeadLetterFile {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.write_all(bytes).map(|()| bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        // Appending: the end of the file is where this line starts.
        let before = self.file.metadata().map(|m| m.len());
        let result = self.file.write_all(bytes);
        if result.is_err() {
            if let Ok(before) = before {
                // Not possible on every file (a device): then there is nothing to cut.
                let _ = self.file.set_len(before);
            }
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}
