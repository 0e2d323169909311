//! A record read only as far as a transform can see it: the top-level fields
//! it reads, writes or tests are parsed into values; every other field stays
//! the bytes it came in, and is written back as those bytes.
//!
//! Which fields a run can see is the compiler's answer
//! ([`crate::compile::fields_seen`]). The record a run gets holds only the
//! fields it can see; the others are kept in [`Untouched`], with the order
//! of every field as it came. The writer ([`crate::write::ndjson_line_untouched`])
//! puts them back together: the input's fields in input order (a kept one as
//! its bytes, a seen one as the run left it, unless it was removed), then
//! the fields the run added, in the order it added them. That is the order
//! the whole record would have had, because a run never removes a top-level
//! field and adds it back before it ends (`fields_seen` refuses a `rename`
//! of one; `tag remove` runs last), and removing keeps the others' order.
//!
//! Output stays byte for byte what parsing and writing the whole record
//! gives, because a field's bytes are only kept when writing its value would
//! give them back ([`written_as_is`]): compact (no white space outside
//! strings), every escape one serde_json writes itself, no key twice in an
//! object, at most [`MAX_KEPT_DEPTH`] levels deep; and its key holds no
//! escape. Anything else is parsed as before, and so is a record that names
//! a top-level key twice (the whole parse keeps the last value).
//!
//! A record written compactly the way serde_json writes (most are) is read
//! in one pass of xf's own (the `scan` module), which checks every byte it
//! accepts and hands any other record to serde_json. There the bytes are
//! checked as serde_json skips them ([`RawValue`]): a malformed field fails
//! the record as it always did, with serde_json's error.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::limits::{deeper_than, MAX_VALUE_DEPTH};

mod scan;

/// The set of top-level field names a transform can see. Its keys are the
/// transform's own; a record's keys are only looked up in it, so a fast
/// hasher needs no protection from keys chosen to collide.
pub type FieldSet = HashSet<String, foldhash::fast::RandomState>;

/// Kept bytes nest at most this deep, so that the depth the HEC envelope
/// checks on the record as it runs is never under the limit when the record
/// with its kept fields is over it.
pub const MAX_KEPT_DEPTH: usize = 32;

/// The most keys an object inside kept bytes may have: they are checked for
/// repeats pairwise, which stays cheap only for objects of ordinary size.
const MAX_CHECKED_KEYS: usize = 64;

/// One top-level field of the input, in input order.
#[derive(Debug)]
pub enum Field<'a> {
    /// Unseen by the transform: its key (which holds no escape) and value bytes.
    Kept { key: &'a str, bytes: &'a str },
    /// In the record the transform ran on, under this key.
    Parsed(Cow<'a, str>),
}

/// The top-level fields of one record as they came: see the module's description.
#[derive(Debug, Default)]
pub struct Untouched<'a> {
    pub fields: Vec<Field<'a>>,
}

impl Field<'_> {
    fn key(&self) -> &str {
        match self {
            Field::Kept { key, .. } => key,
            Field::Parsed(key) => key,
        }
    }
}

impl Untouched<'_> {
    /// Whether any field was kept as its bytes (outside the record a run gets).
    pub fn keeps_any(&self) -> bool {
        self.fields
            .iter()
            .any(|field| matches!(field, Field::Kept { .. }))
    }
}

/// Parses a JSON object, keeping the top-level fields not in `seen` as their
/// bytes where that writes back the same. `Ok(None)` when the record must be
/// parsed whole instead (it names a top-level key twice, or a field nests
/// too deep for a record); an error is serde_json's, which parsing the whole
/// record gives as well.
pub fn parse_object<'a>(
    text: &'a str,
    seen: &FieldSet,
) -> serde_json::Result<Option<(Value, Untouched<'a>)>> {
    // Most records are written compactly, the way xf writes them: one pass
    // reads those (see `scan`); any other is serde_json's, as it always was.
    if let Some(parsed) = scan::object(text, seen) {
        return Ok(Some(parsed));
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = deserializer.deserialize_map(RecordVisitor { seen })?;
    deserializer.end()?;
    Ok(parsed)
}

struct RecordVisitor<'s> {
    seen: &'s FieldSet,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = Option<(Value, Untouched<'de>)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        // Room for a typical webhook payload's top-level fields, grown past it.
        let mut untouched = Untouched {
            fields: Vec::with_capacity(32),
        };
        while let Some(key) = access.next_key::<Key<'de>>()? {
            let raw: &'de RawValue = access.next_value()?;
            let raw = raw.get();
            if let Key::Borrowed(name) = key {
                if !self.seen.contains(name) && written_as_is(raw) {
                    untouched.fields.push(Field::Kept {
                        key: name,
                        bytes: raw,
                    });
                    continue;
                }
            }
            let value = parse_value(raw).map_err(de::Error::custom)?;
            // Alone, a field may nest one level deeper than it may inside
            // the record: the whole parse tells what is too deep.
            if raw.starts_with(['[', '{']) && deeper_than(&value, MAX_VALUE_DEPTH - 1) {
                return Ok(None);
            }
            let key = match key {
                Key::Borrowed(name) => Cow::Borrowed(name),
                Key::Owned(name) => Cow::Owned(name),
            };
            if map.insert(key.to_string(), value).is_some() {
                return Ok(None);
            }
            untouched.fields.push(Field::Parsed(key));
        }
        // A repeated key: the last value wins, in the first one's place.
        // The whole parse does exactly that; a kept field cannot. (The map
        // found a parsed key given twice; one key twice among the kept, or
        // kept and parsed, is found here.)
        if untouched.keeps_any() {
            let mut keys: HashSet<&str, foldhash::fast::RandomState> =
                HashSet::with_capacity_and_hasher(untouched.fields.len(), Default::default());
            if !untouched
                .fields
                .iter()
                .all(|field| keys.insert(field.key()))
            {
                return Ok(None);
            }
        }
        Ok(Some((Value::Object(map), untouched)))
    }
}

/// A key as the input has it: borrowed when it holds no escape.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(text))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(text.to_string()))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// One value parsed as a whole record's values are: numbers keep their
/// exponent's spelling (serde_json writes `1E2` as `1e+2`).
fn parse_value(text: &str) -> serde_json::Result<Value> {
    let mut value = serde_json::from_str(text)?;
    if crate::number::has_exponent(&value) {
        crate::number::restore_exponents(text, &mut value);
    }
    Ok(value)
}

/// Whether writing the value of `raw` (well-formed JSON) gives back `raw`
/// itself: see the module's description.
pub fn written_as_is(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    match bytes.first() {
        // A number keeps its text, a literal is one word.
        Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => true,
        Some(b'"') => string_end(bytes, 1) == Some(bytes.len()),
        Some(b'[' | b'{') => container_as_is(bytes),
        _ => false,
    }
}

/// Where the string whose text starts at `at` ends (past its closing quote),
/// or `None` when it holds an escape that serde_json would write otherwise
/// (`\/`, `\u00e9`, a surrogate pair): those it writes as the character, so
/// the bytes would differ.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += memchr::memchr2(b'"', b'\\', &bytes[at..])?;
        if bytes[at] == b'"' {
            return Some(at + 1);
        }
        // serde_json writes these escapes as they are; `\u` only for control
        // characters, which it spells in lower-case hex (not checked: rare).
        match bytes.get(at + 1)? {
            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
            _ => return None,
        }
    }
}

/// [`written_as_is`] for an array or object: compact, plain escapes, no key
/// twice in one object, at most [`MAX_KEPT_DEPTH`] deep.
fn container_as_is(bytes: &[u8]) -> bool {
    // Bit n says whether the container at depth n is an object.
    let mut objects: u64 = 0;
    let mut depth = 0usize;
    let mut expect_key = false;
    // The keys of the open objects, innermost last, and where each object's start.
    let mut keys: Vec<&[u8]> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                let Some(end) = string_end(bytes, at + 1) else {
                    return false;
                };
                if expect_key {
                    let key = &bytes[at + 1..end - 1];
                    let siblings = &keys[starts.last().copied().unwrap_or(0)..];
                    if siblings.len() >= MAX_CHECKED_KEYS || siblings.contains(&key) {
                        return false;
                    }
                    keys.push(key);
                    expect_key = false;
                }
                at = end;
                continue;
            }
            open @ (b'{' | b'[') => {
                depth += 1;
                if depth > MAX_KEPT_DEPTH {
                    return false;
                }
                if open == b'{' {
                    objects |= 1 << depth;
                    starts.push(keys.len());
                    expect_key = true;
                } else {
                    objects &= !(1 << depth);
                }
            }
            close @ (b'}' | b']') => {
                if close == b'}' {
                    keys.truncate(starts.pop().unwrap_or(0));
                }
                depth = depth.saturating_sub(1);
            }
            b',' => expect_key = objects & (1 << depth) != 0,
            b' ' | b'\t' | b'\n' | b'\r' => return false,
            _ => {}
        }
        at += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> FieldSet {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn parse_whole(text: &str) -> Value {
        parse_value(text).unwrap()
    }

    #[test]
    fn as_is_only_when_writing_gives_the_same_bytes() {
        for raw in [
            r#""plain""#,
            r#""a \"quote\" and \\ and \n\t""#,
            "12",
            "-0",
            "1E400",
            "true",
            "null",
            "[]",
            "{}",
            r#"[1,"two",{"three":[3]}]"#,
            r#"{"a":{"a":1},"b":{"a":2}}"#,
            r#"[{"a":1},{"a":2}]"#,
        ] {
            assert!(written_as_is(raw), "{raw}");
            assert_eq!(serde_json::to_string(&parse_whole(raw)).unwrap(), raw);
        }
        for raw in [
            r#""\u00e9""#,
            r#""\/""#,
            r#""\ud800""#,
            "[1, 2]",
            "{\"a\":\n1}",
            r#"{"a":1,"a":2}"#,
            r#"[{"k":1,"k":1}]"#,
        ] {
            assert!(!written_as_is(raw), "{raw}");
        }
        let deep = format!(
            "{}{}",
            "[".repeat(MAX_KEPT_DEPTH + 1),
            "]".repeat(MAX_KEPT_DEPTH + 1)
        );
        assert!(!written_as_is(&deep));
        let wide: Vec<String> = (0..MAX_CHECKED_KEYS + 1)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect();
        assert!(!written_as_is(&format!("{{{}}}", wide.join(","))));
    }

    #[test]
    fn unseen_fields_are_kept_and_seen_ones_parsed() {
        let seen = fields(&["b"]);
        let text = r#"{"a":[1,2],"b":{"c":1E2},"c":"x\u00e9"}"#;
        let (value, untouched) = parse_object(text, &seen).unwrap().unwrap();
        assert_eq!(value.as_object().unwrap().len(), 2);
        assert_eq!(value["b"]["c"].to_string(), "1E2");
        assert_eq!(value["c"], "xé");
        assert!(untouched.keeps_any());
        assert!(matches!(
            untouched.fields[..],
            [Field::Kept { key: "a", bytes: "[1,2]" }, Field::Parsed(ref b), Field::Parsed(ref c)]
                if b == "b" && c == "c"
        ));
    }

    /// What serde_json's way makes of `text`, without the one-pass reading.
    fn parse_slowly<'a>(text: &'a str, seen: &FieldSet) -> Option<(Value, Untouched<'a>)> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let parsed = deserializer.deserialize_map(RecordVisitor { seen }).ok()?;
        deserializer.end().ok()?;
        parsed
    }

    fn same(a: &Option<(Value, Untouched<'_>)>, b: &Option<(Value, Untouched<'_>)>) -> bool {
        let shape = |parsed: &Option<(Value, Untouched<'_>)>| {
            parsed.as_ref().map(|(value, untouched)| {
                let fields: Vec<String> = untouched
                    .fields
                    .iter()
                    .map(|field| match field {
                        Field::Kept { key, bytes } => format!("kept {key} {bytes}"),
                        Field::Parsed(key) => format!("parsed {key}"),
                    })
                    .collect();
                (value.to_string(), fields)
            })
        };
        shape(a) == shape(b)
    }

    #[test]
    fn the_one_pass_reading_takes_compact_records_and_agrees_with_serde_json() {
        let seen = fields(&[
            "b",
            "a_name_longer_than_sixty_four_bytes_is_looked_up_all_the_same_xx",
        ]);
        for text in [
            r#"{}"#,
            r#"{"a":1,"b":2}"#,
            r#"{"a":[1,"two",{"three":[3.5e-1,-0,1E400]}],"b":{"c":"x\"y\n"},"c":null}"#,
            r#"{"a":true,"b":false,"rules":[{"Id":"1","Name":"n"},{"Id":"2"}],"é":"ü"}"#,
            r#"{"a_name_longer_than_sixty_four_bytes_is_looked_up_all_the_same_xx":[]}"#,
            r#"{"a":{"k":{}},"b":[[],[[]]]}"#,
        ] {
            let quick = scan::object(text, &seen);
            assert!(quick.is_some(), "{text}");
            assert!(same(&quick, &parse_slowly(text, &seen)), "{text}");
            if text.contains("sixty_four") {
                assert!(!quick.unwrap().1.keeps_any());
            }
        }
        // Wider than the keys checked pairwise: serde_json's way, in linear time.
        let wide: Vec<String> = (0..MAX_CHECKED_KEYS + 1)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect();
        let wide = format!("{{{}}}", wide.join(","));
        assert!(scan::object(&wide, &seen).is_none());
        assert!(parse_object(&wide, &seen).unwrap().unwrap().1.keeps_any());
        // Outside the subset (or malformed): serde_json's way decides.
        for text in [
            r#"{ "a":1}"#,
            r#"{"a":1 }"#,
            r#"{"a":"\u00e9"}"#,
            r#"{"a":"\/"}"#,
            r#"{"a\"":1}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a":{"k":1,"k":2}}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":tru}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":[1}"#,
            r#"{"a":{"k":1]}"#,
            r#"{"a":1,}"#,
            r#"{"a":1}x"#,
            r#"{"a":1}"#.trim_end_matches('}'),
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"\u{1}\"}",
            r#"[1]"#,
        ] {
            assert!(scan::object(text, &seen).is_none(), "{text}");
        }
        let deep = format!(
            r#"{{"a":{}{}}}"#,
            "[".repeat(MAX_KEPT_DEPTH + 1),
            "]".repeat(MAX_KEPT_DEPTH + 1)
        );
        assert!(scan::object(&deep, &seen).is_none());
    }

    #[test]
    fn a_field_too_deep_for_the_record_asks_for_the_whole_parse() {
        let seen = fields(&["a"]);
        for depth in MAX_VALUE_DEPTH - 3..MAX_VALUE_DEPTH + 3 {
            let text = format!(r#"{{"a":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            let whole = serde_json::from_str::<Value>(&text).is_ok();
            let partial = matches!(parse_object(&text, &seen), Ok(Some(_)));
            assert!(
                !partial || whole,
                "depth {depth}: whole {whole}, partial {partial}"
            );
            assert_eq!(partial, whole, "depth {depth}");
        }
    }

    #[test]
    fn a_repeated_top_level_key_asks_for_the_whole_parse() {
        let seen = fields(&["b"]);
        for text in [
            r#"{"a":1,"a":2}"#,
            r#"{"b":1,"b":2}"#,
            r#"{"a":1,"b":1,"a":2}"#,
        ] {
            assert!(parse_object(text, &seen).unwrap().is_none(), "{text}");
        }
        assert!(parse_object(r#"{"a":1,"b":[1,}"#, &seen).is_err());
        assert!(parse_object(r#"{"a":1} x"#, &seen).is_err());
    }
}
