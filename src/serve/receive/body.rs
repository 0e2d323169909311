//! Receiving: a request body → records, or a refusal that says why.
//!
//! A body is anything `xf run` reads (one object, an array batch, NDJSON,
//! several values), gzip-compressed or not. It is taken whole or refused
//! whole: a body with one malformed value is refused (400, with where and
//! why), so that the sender, who can fix it, hears of it, and nothing of it is
//! kept. Records that the transform fails on are a different matter: the
//! sender did nothing wrong, so they are dead-lettered and the body accepted.

use std::io::Read;

use serde_json::{json, Value};

use crate::read::Framer;
use crate::stream::parse_frame;

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

/// A record as received: its value and its JSON text (for a dead letter).
pub struct Received {
    pub record: Value,
    pub raw: Vec<u8>,
}

/// Splits a body into records: each top-level value, and each item of a
/// top-level array.
pub fn records(body: &[u8], limits: &BodyLimits) -> Result<Vec<Received>, Refusal> {
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
        let value = match parse_frame(&frame) {
            Ok(value) => value,
            // A whole line taken without scanning it may hold several values.
            Err(_) if frame.unscanned => {
                let mut line = Framer::within_line(frame.bytes, frame.line, frame.column);
                while let Ok(Some(inner)) = line.next_frame(&mut || Ok(())) {
                    push(parse(&inner)?, inner.bytes, &mut records, limits)?;
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

/// Adds a top-level value's records.
fn push(
    value: Value,
    raw: &[u8],
    records: &mut Vec<Received>,
    limits: &BodyLimits,
) -> Result<(), Refusal> {
    {
        match value {
            Value::Array(items) => {
                for record in items {
                    let raw = serde_json::to_vec(&record).unwrap_or_default();
                    records.push(Received { record, raw });
                    if records.len() > limits.max_records {
                        return Err(Refusal::TooManyRecords(limits.max_records));
                    }
                }
            }
            record => {
                records.push(Received {
                    record,
                    raw: raw.to_vec(),
                });
                if records.len() > limits.max_records {
                    return Err(Refusal::TooManyRecords(limits.max_records));
                }
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
        assert_eq!(records(br#"{"a":1}"#, &limits()).unwrap().len(), 1);
        assert_eq!(
            records(br#"[{"a":1},{"a":2}]"#, &limits()).unwrap().len(),
            2
        );
        assert_eq!(
            records(b"{\"a\":1}\n{\"a\":2}\n", &limits()).unwrap().len(),
            2
        );
        assert_eq!(records(b"[]", &limits()).unwrap().len(), 0);
        assert_eq!(
            records(b"{\"a\":1} {\"a\":2}\n", &limits()).unwrap().len(),
            2
        );
    }

    #[test]
    fn a_malformed_body_is_refused_with_its_position() {
        let refusal = records(b"{\"a\":1}\n{\"a\": tru}\n", &limits())
            .err()
            .unwrap();
        match refusal {
            Refusal::NotJson { line, column, .. } => assert_eq!((line, column), (2, 10)),
            other => panic!("{other:?}"),
        }
        assert_eq!(records(b"  \n", &limits()).err(), Some(Refusal::Empty));
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
