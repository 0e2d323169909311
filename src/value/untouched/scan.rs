//! The quick way through a record that is written the way xf writes JSON:
//! one pass over its bytes that checks them and finds each top-level field,
//! without serde_json's skipping, its key strings or its hash map for the
//! fields a run does not see.
//!
//! It reads a strict subset of JSON only: compact (no white space outside
//! strings), keys without escapes at the top level (at most 64 of them), only the escapes
//! serde_json writes itself, nothing deeper than [`MAX_KEPT_DEPTH`], and no
//! key twice in an object. That is what a record must be for every unseen
//! field to be kept as its bytes anyway ([`super::written_as_is`]), and what
//! most senders (and xf itself) write. Anything else (and anything malformed)
//! answers `None`, and the record is read by serde_json as before, which
//! gives the same result or the same error: so this pass never has to
//! explain a mistake, only to be sure of what it accepts. The input is a
//! `str`, so it is UTF-8 already.

use serde_json::{Map, Value};

use super::{parse_value, Field, FieldSet, Untouched, MAX_CHECKED_KEYS, MAX_KEPT_DEPTH};

/// Reads `text` as one object in the subset above: the fields `seen` names
/// parsed (by serde_json, from their own bytes), the others kept as bytes.
pub(super) fn object<'a>(text: &'a str, seen: &FieldSet) -> Option<(Value, Untouched<'a>)> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') {
        return None;
    }
    // A key whose class no seen name has is not looked up.
    let seen_classes = seen
        .iter()
        .fold(Classes::default(), |classes, name| classes.with(name));
    let mut scan = Scan::default();
    // The fields a run sees are the most it can hold at the top: they
    // include every field it adds, so the map never grows.
    let mut map = Map::with_capacity(seen.len());
    let mut untouched = Untouched {
        fields: Vec::with_capacity(32),
    };
    // The classes of the keys so far: a key is compared with the others
    // only when one of them is of its class.
    let mut classes = Classes::default();
    let mut at = 1;
    if bytes.get(at) == Some(&b'}') {
        return (at + 1 == bytes.len()).then(|| (Value::Object(map), untouched));
    }
    loop {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let key_end = plain_string_end(bytes, at + 1)?;
        let key = &text[at + 1..key_end - 1];
        // Keys are compared pairwise (where their classes meet), which stays
        // cheap only for a record of ordinary width: a wider one is serde_json's.
        if untouched.fields.len() >= MAX_CHECKED_KEYS {
            return None;
        }
        if classes.has(key) && untouched.fields.iter().any(|field| field.key() == key) {
            // The whole parse keeps the last value in the first one's place.
            return None;
        }
        classes = classes.with(key);
        if bytes.get(key_end) != Some(&b':') {
            return None;
        }
        let start = key_end + 1;
        let end = scan.value_end(bytes, start)?;
        let raw = &text[start..end];
        let is_seen = seen_classes.has(key) && seen.contains(key);
        if is_seen {
            map.insert(key.to_string(), parse_value(raw).ok()?);
            untouched.fields.push(Field::Parsed(key.into()));
        } else {
            untouched.fields.push(Field::Kept { key, bytes: raw });
        }
        match bytes.get(end) {
            Some(b',') => at = end + 1,
            Some(b'}') if end + 1 == bytes.len() => return Some((Value::Object(map), untouched)),
            _ => return None,
        }
    }
}

/// A set of keys' classes (from their length, first and last bytes), 256 of
/// them: a cheap "certainly not among them" before comparing or hashing.
#[derive(Default, Clone, Copy)]
struct Classes([u64; 4]);

impl Classes {
    fn class(key: &str) -> usize {
        let bytes = key.as_bytes();
        let ends = match bytes {
            [] => 0,
            [first, .., last] | [first @ last] => usize::from(*first) * 7 + usize::from(*last),
        };
        (bytes.len() * 31 + ends) & 255
    }

    fn with(mut self, key: &str) -> Self {
        let class = Self::class(key);
        self.0[class / 64] |= 1 << (class % 64);
        self
    }

    fn has(&self, key: &str) -> bool {
        let class = Self::class(key);
        self.0[class / 64] & (1 << (class % 64)) != 0
    }
}

/// Where a string whose text starts at `at` ends (past its closing quote),
/// when it holds no escape at all; `None` for an escape, a control
/// character or no end.
fn plain_string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let end = at + special_at(bytes, at)?;
    (bytes[end] == b'"').then_some(end + 1)
}

/// The offset from `at` of the first `"`, `\` or control character: eight
/// bytes at a time, since strings are most of a record's bytes.
fn special_at(bytes: &[u8], at: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let rest = bytes.get(at..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut offset = 0;
    for chunk in chunks.by_ref() {
        let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // The classic tests for a zero byte and for a byte under 0x20: each
        // flags its lowest such byte exactly (only bytes above it can be
        // flagged wrongly), which is the one wanted.
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flags = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (word.wrapping_sub(ONES * 0x20) & !word))
            & HIGHS;
        if flags != 0 {
            return Some(offset + (flags.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|position| offset + position)
}

/// Scratch space for the keys of the objects open in a value, reused
/// across a record's fields.
#[derive(Default)]
struct Scan<'a> {
    /// The keys of the open objects, innermost last.
    keys: Vec<&'a [u8]>,
    /// Where each open object's keys start in `keys`.
    starts: Vec<usize>,
}

impl<'a> Scan<'a> {
    /// Where the value starting at `at` ends, when it is in the subset.
    fn value_end(&mut self, bytes: &'a [u8], mut at: usize) -> Option<usize> {
        self.keys.clear();
        self.starts.clear();
        // Bit n says whether the container at depth n is an object.
        let mut objects: u64 = 0;
        let mut depth = 0usize;
        loop {
            // A value starts at `at`.
            match *bytes.get(at)? {
                b'"' => at = string_end(bytes, at + 1)?,
                b'-' | b'0'..=b'9' => at = number_end(bytes, at)?,
                b't' => at = word_end(bytes, at, b"true")?,
                b'f' => at = word_end(bytes, at, b"false")?,
                b'n' => at = word_end(bytes, at, b"null")?,
                open @ (b'[' | b'{') => {
                    depth += 1;
                    if depth > MAX_KEPT_DEPTH {
                        return None;
                    }
                    at += 1;
                    if open == b'[' {
                        objects &= !(1 << depth);
                        if bytes.get(at) != Some(&b']') {
                            continue;
                        }
                    } else {
                        objects |= 1 << depth;
                        self.starts.push(self.keys.len());
                        if bytes.get(at) != Some(&b'}') {
                            at = self.key_end(bytes, at)?;
                            continue;
                        }
                        self.starts.pop();
                    }
                    at += 1;
                    depth -= 1;
                }
                _ => return None,
            }
            // A value ended at `at`: close what it ends, or go on to the next.
            loop {
                if depth == 0 {
                    return Some(at);
                }
                let in_object = objects & (1 << depth) != 0;
                match (*bytes.get(at)?, in_object) {
                    (b',', false) => {
                        at += 1;
                        break;
                    }
                    (b',', true) => {
                        at = self.key_end(bytes, at + 1)?;
                        break;
                    }
                    (b']', false) => {}
                    (b'}', true) => {
                        let start = self.starts.pop()?;
                        self.keys.truncate(start);
                    }
                    _ => return None,
                }
                at += 1;
                depth -= 1;
            }
        }
    }

    /// Reads a key and its `:` at `at`, refusing one its object has already.
    fn key_end(&mut self, bytes: &'a [u8], at: usize) -> Option<usize> {
        if bytes.get(at) != Some(&b'"') {
            return None;
        }
        let end = string_end(bytes, at + 1)?;
        let key = &bytes[at + 1..end - 1];
        // Each escape allowed has one spelling, so equal bytes are equal keys.
        let siblings = &self.keys[*self.starts.last()?..];
        if siblings.len() >= MAX_CHECKED_KEYS || siblings.contains(&key) {
            return None;
        }
        self.keys.push(key);
        (bytes.get(end) == Some(&b':')).then_some(end + 1)
    }
}

/// Where a string whose text starts at `at` ends (past its closing quote),
/// allowing the escapes serde_json writes as they are.
fn string_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        at += special_at(bytes, at)?;
        match bytes[at] {
            b'"' => return Some(at + 1),
            b'\\' => match bytes.get(at + 1)? {
                b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => at += 2,
                _ => return None,
            },
            _ => return None,
        }
    }
}

/// Where a number starting at `at` ends: JSON's grammar, `-? int frac? exp?`.
fn number_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    let digits = |at: usize| {
        bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    if bytes[at] == b'-' {
        at += 1;
    }
    match bytes.get(at)? {
        b'0' => at += 1,
        b'1'..=b'9' => at += digits(at),
        _ => return None,
    }
    if bytes.get(at) == Some(&b'.') {
        let count = digits(at + 1);
        if count == 0 {
            return None;
        }
        at += 1 + count;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let count = digits(at);
        if count == 0 {
            return None;
        }
        at += count;
    }
    Some(at)
}

fn word_end(bytes: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    bytes[at..].starts_with(word).then_some(at + word.len())
}
