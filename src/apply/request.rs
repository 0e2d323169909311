//! `request`: what the HTTP request that carried a record says, as a
//! transform reads it (`request.headers."x-github-event"`, `request.index`).
//!
//! Read-only and per call ([`super::Context::request`]): one loaded
//! transform serves every request. The fields all records of one request
//! share are built once, behind an [`Arc`]; a record adds only its position
//! in the body, so a batch of many records copies no header.
//!
//! Credentials are never put in it: [`WITHHELD_HEADERS`] and the header an
//! `api_key` source reads its key from are left out when it is built, so no
//! statement, condition or template can read them. The query string is not
//! in it at all (`path` is the URL's path alone), so neither are query keys.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::value::{Path, Segment};

/// The most bytes a header's value keeps (its values joined, for a header
/// sent more than once); the rest is cut at a character boundary. Enough for
/// every signature and id header senders use; it bounds what a sender's
/// headers can make a transform copy per record.
pub const MAX_HEADER_VALUE: usize = 8 << 10;

/// Headers that carry credentials, never readable (lower case). Besides
/// these, the header an `api_key` source takes its key from.
pub const WITHHELD_HEADERS: [&str; 3] = ["authorization", "proxy-authorization", "cookie"];

/// What a record's request says (see the module's documentation).
#[derive(Debug, Clone)]
pub struct Request {
    /// `headers`, `source`, `path`, `received_at`, `delivery_id`: those known.
    shared: Arc<Value>,
    /// The record's position in its body (from 0), when it came in one.
    index: Option<u64>,
}

/// The parts of a [`Request`] all records of one body share.
#[derive(Debug, Default, Clone)]
pub struct RequestParts<'a> {
    /// The pipeline's name of the source (`source armor at …`).
    pub source: Option<&'a str>,
    /// The URL's path, without its query.
    pub path: Option<&'a str>,
    /// When the request was received, in epoch milliseconds (as `now()` gives a time).
    pub received_at: Option<i64>,
    /// The sender's id of the delivery, the one record ids are derived from.
    pub delivery_id: Option<&'a str>,
    /// Further headers to withhold, besides [`WITHHELD_HEADERS`] (any case):
    /// the source's API-key header.
    pub withheld: &'a [&'a str],
}

impl Request {
    /// A request of these `headers` (name, value as sent, in order) and
    /// `parts`. Names are lower-cased; a name sent more than once has its
    /// values joined with `, ` in the order sent, as HTTP reads a repeated
    /// header; a value that is not UTF-8 is read lossily; each is bounded by
    /// [`MAX_HEADER_VALUE`]. Withheld headers are left out.
    pub fn new<'h>(
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        parts: &RequestParts<'_>,
    ) -> Request {
        let mut joined: Map<String, Value> = Map::new();
        for (name, value) in headers {
            let name = name.trim().to_ascii_lowercase();
            let withheld = WITHHELD_HEADERS.contains(&name.as_str())
                || parts.withheld.iter().any(|w| w.eq_ignore_ascii_case(&name));
            if withheld || name.is_empty() {
                continue;
            }
            let value = String::from_utf8_lossy(value);
            match joined.get_mut(&name) {
                Some(Value::String(text)) => {
                    if text.len() < MAX_HEADER_VALUE {
                        text.push_str(", ");
                        text.push_str(value.trim());
                        bound(text);
                    }
                }
                _ => {
                    let mut text = value.trim().to_string();
                    bound(&mut text);
                    joined.insert(name, Value::String(text));
                }
            }
        }
        let mut shared = Map::new();
        shared.insert("headers".into(), Value::Object(joined));
        let text = |text: Option<&str>| text.map(|text| Value::String(text.to_string()));
        let fields = [
            ("source", text(parts.source)),
            ("path", text(parts.path)),
            ("received_at", parts.received_at.map(Value::from)),
            ("delivery_id", text(parts.delivery_id)),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                shared.insert(name.into(), value);
            }
        }
        Request {
            shared: Arc::new(Value::Object(shared)),
            index: None,
        }
    }

    /// The same request, for the record at `index` of its body.
    pub fn at(&self, index: u64) -> Request {
        Request {
            shared: Arc::clone(&self.shared),
            index: Some(index),
        }
    }

    /// The whole of it as one JSON object (`set r = request`).
    pub fn to_value(&self) -> Value {
        let mut value = (*self.shared).clone();
        if let (Some(index), Value::Object(map)) = (self.index, &mut value) {
            map.insert("index".into(), Value::from(index));
        }
        value
    }

    /// The value at `rest` inside it (`headers."x-github-event"` of
    /// `request.headers."x-github-event"`); `None` when it is not there.
    pub fn get(&self, rest: &Path) -> Option<Cow<'_, Value>> {
        match rest.0.split_first() {
            None => Some(Cow::Owned(self.to_value())),
            // A number has nothing inside it.
            Some((Segment::Key(key), inner)) if key == "index" => match inner {
                [] => self.index.map(|index| Cow::Owned(Value::from(index))),
                _ => None,
            },
            Some(_) => rest.get(&self.shared).map(Cow::Borrowed),
        }
    }

    /// The fields all records of the request share.
    pub(crate) fn shared(&self) -> &Arc<Value> {
        &self.shared
    }

    /// The record's position in its body, when known.
    pub(crate) fn index(&self) -> Option<u64> {
        self.index
    }
}

/// Cuts `text` to at most [`MAX_HEADER_VALUE`] bytes, at a character boundary.
fn bound(text: &mut String) {
    if text.len() > MAX_HEADER_VALUE {
        let mut end = MAX_HEADER_VALUE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(keys: &[&str]) -> Path {
        Path(keys.iter().map(|k| Segment::Key(k.to_string())).collect())
    }

    #[test]
    fn headers_are_lower_cased_joined_bounded_and_credentials_withheld() {
        let long = "é".repeat(MAX_HEADER_VALUE);
        let headers: Vec<(&str, &[u8])> = vec![
            ("X-GitHub-Event", b"code_scanning_alert"),
            ("Accept", b"a/b"),
            ("accept", b" c/d "),
            ("Authorization", b"Bearer secret"),
            ("Proxy-Authorization", b"Basic c2VjcmV0"),
            ("Cookie", b"session=secret"),
            ("X-Armor-Token", b"secret"),
            ("X-Long", long.as_bytes()),
            ("X-Bytes", b"\xff ok"),
        ];
        let parts = RequestParts {
            source: Some("github"),
            withheld: &["x-armor-token"],
            ..RequestParts::default()
        };
        let request = Request::new(headers, &parts).at(3);
        let header = |name: &str| request.get(&path(&["headers", name])).map(Cow::into_owned);
        assert_eq!(header("x-github-event"), Some("code_scanning_alert".into()));
        assert_eq!(header("accept"), Some("a/b, c/d".into()));
        for secret in [
            "authorization",
            "proxy-authorization",
            "cookie",
            "x-armor-token",
        ] {
            assert_eq!(header(secret), None, "{secret}");
        }
        assert!(!request.to_value().to_string().contains("secret"));
        let Some(Value::String(long)) = header("x-long") else {
            panic!("x-long")
        };
        assert!(long.len() <= MAX_HEADER_VALUE && long.len() > MAX_HEADER_VALUE - 2);
        assert_eq!(header("x-bytes"), Some("\u{fffd} ok".into()));
        assert_eq!(request.get(&path(&["index"])).as_deref(), Some(&3.into()));
        assert_eq!(request.get(&path(&["index", "x"])), None);
        assert_eq!(
            request.get(&path(&["source"])).as_deref(),
            Some(&"github".into())
        );
        assert_eq!(request.get(&path(&["path"])), None);
        assert_eq!(request.to_value()["index"], 3);
    }
}
