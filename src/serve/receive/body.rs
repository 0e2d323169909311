//! Receiving: a request body → records, or a refusal that says why.
//!
//! A body is anything `xf run` reads (one object, an array batch, NDJSON,
//! several values), gzip-compressed or not. It is taken whole or refused
//! whole: a body with one malformed value is refused (400, with where and
//! why), so that the sender, who can fix it, hears of it, and nothing of it is
//! kept. Records that the transform fails on are a different matter: the
//! sender did nothing wrong, so they are dead-lettered and the body accepted.
//!
//! Records are parsed here, not where they are routed, because taking or
//! refusing a body needs every value in it read first. They are read only as
//! far as routing will look, though: given the top-level fields that the
//! source's transform and its destinations' tests can see (worked out by
//! [`crate::serve::route::fields_seen`], passed in by the request's
//! handler), an object's other fields stay the bytes they came in
//! ([`crate::value::untouched`]), which routing writes back as they were.

use std::borrow::Cow;
use std::io::Read;
use std::ops::Range;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::limits::{deeper_than, MAX_VALUE_DEPTH};
use crate::read::Framer;
use crate::stream::parse_frame;
use crate::value::untouched::{self, Field, FieldSet, Untouched};

/// What the receiver takes; a request beyond a limit is refused.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Bytes of a request body as sent (default 10 MiB): 413 beyond.
    pub max_body: usize,
    /// Bytes of a body once decompressed (default 10 MiB): 413 beyond, so a
    /// gzip bomb costs at most this.
    pub max_decoded: usize,
    /// Bytes of one record in a body (default 4 MiB, as `xf run`).
    pub max_record: usize,
    /// Records in one body (default 10,000).
    pub max_records: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            max_body: 10 << 20,
            max_decoded: 10 << 20,
            max_record: crate::read::DEFAULT_MAX_RECORD,
            max_records: 10_000,
        }
    }
}

/// Why a body was refused: the HTTP status and a JSON error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not JSON at `line`, `column` (of the decoded body).
    NotJson {
        line: usize,
        column: usize,
        reason: String,
    },
    Empty,
    TooLarge(String),
    TooManyRecords(usize),
    MediaType(String),
    Encoding(String),
    /// The body could not be decompressed.
    BadGzip(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::NotJson { .. } | Refusal::Empty | Refusal::BadGzip(_) => 400,
            Refusal::TooLarge(_) | Refusal::TooManyRecords(_) => 413,
            Refusal::MediaType(_) | Refusal::Encoding(_) => 415,
        }
    }

    /// The metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NotJson { .. } => "not_json",
            Refusal::Empty => "empty",
            Refusal::TooLarge(_) => "too_large",
            Refusal::TooManyRecords(_) => "too_many_records",
            Refusal::MediaType(_) => "media_type",
            Refusal::Encoding(_) => "encoding",
            Refusal::BadGzip(_) => "bad_gzip",
        }
    }

    /// The response body.
    pub fn body(&self) -> Value {
        match self {
            Refusal::NotJson {
                line,
                column,
                reason,
            } => json!({
                "error": format!("not JSON at line {line}, column {column}: {reason}"),
                "line": line,
                "column": column,
            }),
            Refusal::Empty => json!({"error": "the body is empty: it holds no JSON value"}),
            Refusal::TooLarge(what) => json!({ "error": what }),
            Refusal::TooManyRecords(limit) => {
                json!({ "error": format!("the body holds more than {limit} records") })
            }
            Refusal::MediaType(what) => json!({
                "error": format!("content type `{what}` is not JSON (application/json, application/x-ndjson)")
            }),
            Refusal::Encoding(what) => json!({
                "error": format!("content encoding `{what}` is not taken (gzip or none)")
            }),
            Refusal::BadGzip(why) => {
                json!({ "error": format!("the gzip body cannot be read: {why}") })
            }
        }
    }
}

/// Whether a `Content-Type` may hold JSON. No type at all is taken, as is
/// `text/plain` (some senders label JSON so); forms and the like are not.
pub fn check_media_type(content_type: Option<&str>) -> Result<(), Refusal> {
    let Some(full) = content_type else {
        return Ok(());
    };
    let essence = full
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let json_like = essence.is_empty()
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/x-ndjson"
        || essence == "application/ndjson"
        || essence == "application/jsonl"
        || essence == "application/x-jsonlines"
        || essence == "text/plain"
        || essence == "text/json";
    if json_like {
        Ok(())
    } else {
        Err(Refusal::MediaType(essence))
    }
}

/// The body's bytes once decompressed (`Content-Encoding: gzip`), bounded.
pub fn decode(
    encoding: Option<&str>,
    body: &[u8],
    limits: &BodyLimits,
) -> Result<Option<Vec<u8>>, Refusal> {
    let encoding = encoding.map(|e| e.trim().to_ascii_lowercase());
    match encoding.as_deref() {
        None | Some("") | Some("identity") => Ok(None),
        Some("gzip") | Some("x-gzip") => {
            let mut decoded = Vec::new();
            let mut reader =
                flate2::read::MultiGzDecoder::new(body).take(limits.max_decoded as u64 + 1);
            reader
                .read_to_end(&mut decoded)
                .map_err(|error| Refusal::BadGzip(error.to_string()))?;
            if decoded.len() > limits.max_decoded {
                return Err(Refusal::TooLarge(format!(
                    "the body is over {} bytes once decompressed",
                    limits.max_decoded
                )));
            }
            Ok(Some(decoded))
        }
        Some(other) => Err(Refusal::Encoding(other.to_string())),
    }
}

/// A record as received: its value, and its JSON text (for a dead letter).
///
/// Read with the set of top-level fields its processing can see (see
/// [`records`]), the value holds only those fields; the others stay in the
/// text, as the bytes they came in ([`crate::value::untouched`]), and
/// [`Received::kept`] tells the writer where they go.
pub struct Received {
    /// The record: every field, or only those of the set it was read with.
    pub record: Value,
    text: Text,
    /// An item of a top-level array (a batch), not a value of its own.
    item: bool,
}

/// A record's JSON text, and where its kept fields are in it.
enum Text {
    /// Every field of the record is in its value.
    Whole(Vec<u8>),
    /// Some top-level fields are only here, as their bytes.
    Kept { text: String, fields: Vec<FieldAt> },
}

/// One top-level field of a record read with some fields kept
/// ([`untouched::Field`]), as places in the record's own text: the record
/// then owns all it holds, so that it can be handed to another thread.
enum FieldAt {
    Kept {
        key: Range<usize>,
        bytes: Range<usize>,
    },
    /// A field in the value, under the key at this place of the text.
    Parsed(Range<usize>),
    /// A field in the value, under a key written with an escape.
    ParsedEscaped(String),
}

impl Received {
    /// A record read whole from `text`.
    pub fn whole(record: Value, text: Vec<u8>) -> Received {
        Received {
            record,
            text: Text::Whole(text),
            item: false,
        }
    }

    /// The top-level fields as they came, for the writer
    /// ([`crate::write::ndjson_line_untouched`]), when any is kept as its
    /// bytes; `None` when the value holds every field.
    pub fn kept(&self) -> Option<Untouched<'_>> {
        let Text::Kept { text, fields } = &self.text else {
            return None;
        };
        let fields = fields
            .iter()
            .map(|field| match field {
                FieldAt::Kept { key, bytes } => Field::Kept {
                    key: &text[key.clone()],
                    bytes: &text[bytes.clone()],
                },
                FieldAt::Parsed(key) => Field::Parsed(Cow::Borrowed(&text[key.clone()])),
                FieldAt::ParsedEscaped(key) => Field::Parsed(Cow::Borrowed(key.as_str())),
            })
            .collect();
        Some(Untouched { fields })
    }

    /// Whether it is an item of a top-level array (a batch).
    pub fn from_batch(&self) -> bool {
        self.item
    }

    /// What a dead letter of it keeps: its text as it came, or for an item
    /// of a batch, the item as serde_json writes it (as xf serve has always
    /// kept one); worked out only for a record that needs one.
    pub fn letter(&self) -> Vec<u8> {
        let text = match &self.text {
            Text::Whole(text) => text.as_slice(),
            Text::Kept { text, .. } => text.as_bytes(),
        };
        if !self.item {
            return text.to_vec();
        }
        // The item parsed in its batch, so it parses alone, to the same value.
        match crate::stream::parse_record(text) {
            Ok(item) => serde_json::to_vec(&item).unwrap_or_default(),
            Err(_) => text.to_vec(),
        }
    }
}

/// Splits a body into records: each top-level value, and each item of a
/// top-level array. With `seen` (the top-level fields that a record's
/// processing can see), an object's other fields are kept as their bytes
/// where [`untouched::parse_object`] can keep them; the body is taken or
/// refused exactly as when every field is read: a value is only read this
/// way when reading it whole succeeds as well, and anything else (a
/// malformed value, one nested too deep, a key given twice, text that is
/// not UTF-8) is read whole, as before, which also says why it is refused.
pub fn records(
    body: &[u8],
    limits: &BodyLimits,
    seen: Option<&FieldSet>,
) -> Result<Vec<Received>, Refusal> {
    let mut framer = Framer::with_limit(body, limits.max_record);
    let mut records = Vec::new();
    // Reading from a slice neither fails nor waits.
    while let Ok(Some(frame)) = framer.next_frame(&mut || Ok(())) {
        if let Some(size) = frame.oversized {
            return Err(Refusal::TooLarge(format!(
                "the value at line {}, column {} is {size} bytes, over the {}-byte limit for one record",
                frame.line, frame.column, limits.max_record
            )));
        }
        if let Some(read) = seen.and_then(|seen| read_kept(frame.bytes, seen)) {
            push_all(read, &mut records, limits)?;
            continue;
        }
        let value = match parse_frame(&frame) {
            Ok(value) => value,
            // A whole line taken without scanning it may hold several values.
            Err(_) if frame.unscanned => {
                let mut line = Framer::within_line(frame.bytes, frame.line, frame.column);
                while let Ok(Some(inner)) = line.next_frame(&mut || Ok(())) {
                    match seen.and_then(|seen| read_kept(inner.bytes, seen)) {
                        Some(read) => push_all(read, &mut records, limits)?,
                        None => push(parse(&inner)?, inner.bytes, &mut records, limits)?,
                    }
                }
                continue;
            }
            Err((line, column, reason)) => {
                return Err(Refusal::NotJson {
                    line,
                    column,
                    reason,
                })
            }
        };
        push(value, frame.bytes, &mut records, limits)?;
    }
    if records.is_empty() && body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::Empty);
    }
    Ok(records)
}

fn parse(frame: &crate::read::Frame<'_>) -> Result<Value, Refusal> {
    parse_frame(frame).map_err(|(line, column, reason)| Refusal::NotJson {
        line,
        column,
        reason,
    })
}

/// The records of one top-level value, an object or an array of them,
/// read with the fields outside `seen` kept as their bytes. `None` when it
/// is to be read whole: anything else, or anything that reading it whole
/// could answer differently (see [`records`]).
fn read_kept(bytes: &[u8], seen: &FieldSet) -> Option<Vec<Received>> {
    let text = std::str::from_utf8(bytes).ok()?;
    match bytes.first() {
        Some(b'{') => {
            let (record, untouched) = untouched::parse_object(text, seen).ok()??;
            Some(vec![kept_record(text, record, &untouched, false)])
        }
        Some(b'[') => {
            let items = serde_json::from_str::<Vec<&RawValue>>(text).ok()?;
            items
                .iter()
                .map(|item| read_item(item.get(), seen))
                .collect()
        }
        _ => None,
    }
}

/// One item of a batch, read as [`read_kept`] reads an object (any other
/// item whole). `None` when reading the batch whole would fail: the item
/// is malformed, or nested too deep for the level below the batch's.
fn read_item(text: &str, seen: &FieldSet) -> Option<Received> {
    let too_deep = |value: &Value| deeper_than(value, MAX_VALUE_DEPTH - 1);
    if text.starts_with('{') {
        if let Ok(Some((record, untouched))) = untouched::parse_object(text, seen) {
            // Its fields' depth was judged for a record alone, one level up.
            return (!too_deep(&record)).then(|| kept_record(text, record, &untouched, true));
        }
    }
    let record = crate::stream::parse_record(text.as_bytes()).ok()?;
    (!too_deep(&record)).then(|| Received {
        record,
        text: Text::Whole(text.as_bytes().to_vec()),
        item: true,
    })
}

/// A record read by [`untouched::parse_object`] from `text`, owning a copy
/// of its text and the places of its fields in it.
fn kept_record(text: &str, record: Value, untouched: &Untouched<'_>, item: bool) -> Received {
    if !untouched.keeps_any() {
        return Received {
            record,
            text: Text::Whole(text.as_bytes().to_vec()),
            item,
        };
    }
    // Every borrowed key and kept value is a slice of `text`.
    let at = |part: &str| {
        let start = part.as_ptr() as usize - text.as_ptr() as usize;
        start..start + part.len()
    };
    let fields = untouched
        .fields
        .iter()
        .map(|field| match field {
            Field::Kept { key, bytes } => FieldAt::Kept {
                key: at(key),
                bytes: at(bytes),
            },
            Field::Parsed(Cow::Borrowed(key)) => FieldAt::Parsed(at(key)),
            Field::Parsed(Cow::Owned(key)) => FieldAt::ParsedEscaped(key.clone()),
        })
        .collect();
    Received {
        record,
        text: Text::Kept {
            text: text.to_string(),
            fields,
        },
        item,
    }
}

/// Adds the records of a top-level value read by [`read_kept`].
fn push_all(
    read: Vec<Received>,
    records: &mut Vec<Received>,
    limits: &BodyLimits,
) -> Result<(), Refusal> {
    for record in read {
        records.push(record);
        if records.len() > limits.max_records {
            return Err(Refusal::TooManyRecords(limits.max_records));
        }
    }
    Ok(())
}

/// Adds a top-level value's records.
fn push(
    value: Value,
    raw: &[u8],
    records: &mut Vec<Received>,
    limits: &BodyLimits,
) -> Result<(), Refusal> {
    match value {
        Value::Array(items) => {
            // Each item's text is its part of `raw`: its dead letter is
            // written from it again, only if it needs one.
            // (The array parsed, so it splits into as many texts; were it
            // not to, the item's value written is a text that gives it too.)
            let texts = serde_json::from_slice::<Vec<&RawValue>>(raw).unwrap_or_default();
            for (at, record) in items.into_iter().enumerate() {
                let text = match texts.get(at) {
                    Some(text) => text.get().as_bytes().to_vec(),
                    None => serde_json::to_vec(&record).unwrap_or_default(),
                };
                records.push(Received {
                    record,
                    text: Text::Whole(text),
                    item: true,
                });
                if records.len() > limits.max_records {
                    return Err(Refusal::TooManyRecords(limits.max_records));
                }
            }
        }
        record => {
            records.push(Received::whole(record, raw.to_vec()));
            if records.len() > limits.max_records {
                return Err(Refusal::TooManyRecords(limits.max_records));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> BodyLimits {
        BodyLimits::default()
    }

    #[test]
    fn a_body_is_one_object_an_array_or_ndjson() {
        assert_eq!(records(br#"{"a":1}"#, &limits(), None).unwrap().len(), 1);
        assert_eq!(
            records(br#"[{"a":1},{"a":2}]"#, &limits(), None)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            records(b"{\"a\":1}\n{\"a\":2}\n", &limits(), None)
                .unwrap()
                .len(),
            2
        );
        assert_eq!(records(b"[]", &limits(), None).unwrap().len(), 0);
        assert_eq!(
            records(b"{\"a\":1} {\"a\":2}\n", &limits(), None)
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn a_malformed_body_is_refused_with_its_position() {
        let refusal = records(b"{\"a\":1}\n{\"a\": tru}\n", &limits(), None)
            .err()
            .unwrap();
        match refusal {
            Refusal::NotJson { line, column, .. } => assert_eq!((line, column), (2, 10)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            records(b"  \n", &limits(), None).err(),
            Some(Refusal::Empty)
        );
    }

    fn seen(names: &[&str]) -> FieldSet {
        names.iter().map(|name| name.to_string()).collect()
    }

    /// A record as the writer writes it: kept fields back in their places.
    fn written(record: &Received) -> String {
        let mut out = Vec::new();
        match record.kept() {
            Some(kept) => {
                crate::write::ndjson_line_untouched(&mut out, &record.record, &kept, false)
            }
            None => crate::write::ndjson_line(&mut out, &record.record),
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn unseen_fields_are_kept_and_seen_ones_read() {
        let body = br#"{"a":1,"b":[1, 2],"c":{"d":"x"}}"#;
        let read = records(body, &limits(), Some(&seen(&["a", "b"]))).unwrap();
        assert_eq!(read[0].record, json!({"a": 1, "b": [1, 2]}));
        assert!(read[0].kept().is_some());
        assert_eq!(
            written(&read[0]),
            "{\"a\":1,\"b\":[1,2],\"c\":{\"d\":\"x\"}}\n"
        );
        assert_eq!(read[0].letter(), body);
        let batch = records(br#"[{"a":1, "c":2}]"#, &limits(), Some(&seen(&["a"]))).unwrap();
        assert_eq!(batch[0].record, json!({"a": 1}));
        assert!(batch[0].from_batch());
        assert_eq!(batch[0].letter(), br#"{"a":1,"c":2}"#);
    }

    #[test]
    fn a_body_read_with_kept_fields_is_taken_or_refused_as_read_whole() {
        let deep = |depth: usize, key: &str| {
            format!(r#"{{"{key}":{}{}}}"#, "[".repeat(depth), "]".repeat(depth))
        };
        let mut bodies: Vec<Vec<u8>> = [
            r#"{"a":1,"b":{"c":[1,2]},"d":"x\u00e9","e":"\/"}"#,
            r#"[{"a":1,"b":2},{"b": 3, "a":1E400}, 5, [1], {"b":-0,"c":1E2}]"#,
            r#"{"b":1,"b":2,"a":1}"#,
            r#"{"b":{"c":1,"c":2},"a":1}"#,
            "{\"a\":-0 , \"b\" : [ 1 ]}\n\n{\"b\":\"\\n\\\"\"}",
            "{\"a\":1} {\"b\":2}\n{\"a\":3}\n",
            r#"{"a":1,"b":tru}"#,
            r#"[{"a":1},{"b":"\ud800"}]"#,
            r#"{"b":"\ud800"}"#,
            r#"[{"a":1}, {"b": tru}]"#,
            r#"{"k\u0065":1,"a":2}"#,
            r#"[]"#,
            "  ",
        ]
        .iter()
        .map(|body| body.as_bytes().to_vec())
        .collect();
        bodies.push(b"{\"b\":\"\xff\",\"a\":1}".to_vec());
        // Nested as deep as xf reads, and one deeper: alone, and in a batch.
        for depth in MAX_VALUE_DEPTH - 3..MAX_VALUE_DEPTH + 1 {
            for key in ["a", "b"] {
                bodies.push(deep(depth, key).into_bytes());
                bodies.push(format!("[{}]", deep(depth, key)).into_bytes());
                bodies.push(format!(r#"[{}, {{"a":1}}]"#, deep(depth, key)).into_bytes());
            }
        }
        let many = format!("[{}]", [r#"{"a":1,"b":2}"#; 11].join(","));
        bodies.push(many.into_bytes());
        let limits = BodyLimits {
            max_records: 10,
            ..limits()
        };
        for body in &bodies {
            let shown = String::from_utf8_lossy(body);
            let whole = records(body, &limits, None);
            for names in [&["a"][..], &[], &["a", "b"]] {
                let partial = records(body, &limits, Some(&seen(names)));
                match (&whole, &partial) {
                    (Ok(whole), Ok(partial)) => {
                        assert_eq!(whole.len(), partial.len(), "{shown}");
                        for (whole, partial) in whole.iter().zip(partial) {
                            assert_eq!(written(whole), written(partial), "{shown}");
                            assert_eq!(whole.letter(), partial.letter(), "{shown}");
                        }
                    }
                    (Err(whole), Err(partial)) => assert_eq!(whole, partial, "{shown}"),
                    _ => panic!("{shown}: only one of the two reads took it"),
                }
            }
        }
    }

    #[test]
    fn gzip_is_bounded() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b' '; 11 << 20]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 100_000);
        let refusal = decode(Some("gzip"), &bomb, &limits()).err().unwrap();
        assert_eq!(refusal.status(), 413);
        assert_eq!(
            decode(Some("br"), b"", &limits()).err().unwrap().status(),
            415
        );
    }

    #[test]
    fn media_types() {
        assert!(check_media_type(None).is_ok());
        assert!(check_media_type(Some("application/json; charset=utf-8")).is_ok());
        assert!(check_media_type(Some("application/cloudevents+json")).is_ok());
        assert_eq!(
            check_media_type(Some("application/x-www-form-urlencoded"))
                .err()
                .unwrap()
                .status(),
            415
        );
    }
}
