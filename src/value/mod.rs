//! Values of records, and what every stage needs to know about them: the
//! record [`Path`] and its get/set/remove, kinds in words, keys as text, times
//! and time formats, URL components, how two values compare ([`compare`]:
//! the operators too), and how values look in a template (`template`: the
//! record as minijinja sees it, xf's filters). A leaf: it imports from no
//! stage, and every stage may import from it; this is where what two stages
//! both need goes, so that the stages never import backwards.

pub mod compare;
mod path;
pub(crate) mod template;
mod time;
pub mod untouched;
pub mod url;

use serde_json::Value;

pub use path::{remove_all, Path, Segment};
pub use time::{clock_millis, format_time, parse_time, Time, TimeFormat};

/// The name that reads the request that carried a record (`request.headers.…`)
/// in expressions, conditions and templates; no statement may write it.
pub const REQUEST_NAME: &str = "request";

/// What `request` holds: `headers` (an object of lower-cased names, each a
/// text) and the rest single values. A path into `request` past these can
/// never be present, which loading says.
pub const REQUEST_FIELDS: &[&str] = &[
    "headers",
    "source",
    "path",
    "received_at",
    "delivery_id",
    "index",
];

/// "a string", "an object", … for messages about a value's kind.
pub fn kind_with_article(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A scalar as the text a table is keyed by: a string as it is, a number as
/// written in the input (arbitrary_precision keeps it: borrowed, not formatted
/// per record), a boolean as `true`/`false`. Lookups and `map` both use it.
pub fn key_str(value: &Value) -> Option<&str> {
    match value {
        Value::String(text) => Some(text),
        Value::Number(n) => Some(n.as_str()),
        Value::Bool(b) => Some(if *b { "true" } else { "false" }),
        _ => None,
    }
}

/// The first `length` characters of `text`: the function `truncate` and the
/// template filter of that name alike.
pub fn truncate(text: &str, length: usize) -> String {
    match text.char_indices().nth(length) {
        Some((at, _)) => text[..at].to_string(),
        None => text.to_string(),
    }
}
