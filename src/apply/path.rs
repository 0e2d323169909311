//! Reading, writing and removing values at a [`Path`] in a record.

use std::fmt;

use serde_json::{Map, Value};

use crate::syntax::ast::{Path, Segment};

impl Path {
    /// The value at this path, if every step exists.
    pub fn get<'a>(&self, record: &'a Value) -> Option<&'a Value> {
        Path::get_segments(&self.0, record)
    }

    /// The value at a path given as its steps.
    pub fn get_segments<'a>(segments: &[Segment], record: &'a Value) -> Option<&'a Value> {
        segments
            .iter()
            .try_fold(record, |value, segment| match (segment, value) {
                (Segment::Key(key), Value::Object(map)) => map.get(key),
                (Segment::Index(index), Value::Array(items)) => {
                    resolve_index(*index, items.len()).map(|i| &items[i])
                }
                _ => None,
            })
    }

    /// Writes `new` at this path, creating objects for missing keys on the way.
    /// Fails where a step meets a value of the wrong kind or an index past the end.
    pub fn set(&self, record: &mut Value, new: Value) -> Result<(), String> {
        let mut slot = record;
        for (depth, segment) in self.0.iter().enumerate() {
            if slot.is_null() && matches!(segment, Segment::Key(_)) {
                *slot = Value::Object(Map::new());
            }
            slot = match (segment, slot) {
                (Segment::Key(key), Value::Object(map)) => {
                    map.entry(key.clone()).or_insert(Value::Null)
                }
                (Segment::Index(index), Value::Array(items)) => {
                    let len = items.len();
                    let i = resolve_index(*index, len).ok_or_else(|| {
                        format!("cannot set {self}: {} has {len} items", self.prefix(depth))
                    })?;
                    &mut items[i]
                }
                (segment, other) => {
                    return Err(format!(
                        "cannot set {self}: {} is {}, not {}",
                        self.prefix(depth),
                        kind_with_article(other),
                        match segment {
                            Segment::Key(_) => "an object",
                            Segment::Index(_) => "an array",
                        }
                    ))
                }
            };
        }
        *slot = new;
        Ok(())
    }

    /// Removes the value at this path; a path that is not there is already removed.
    pub fn remove(&self, record: &mut Value) {
        let Some((last, parents)) = self.0.split_last() else {
            return;
        };
        let Some(parent) = Path(parents.to_vec()).get_mut(record) else {
            return;
        };
        match (last, parent) {
            (Segment::Key(key), Value::Object(map)) => {
                map.shift_remove(key);
            }
            (Segment::Index(index), Value::Array(items)) => {
                if let Some(i) = resolve_index(*index, items.len()) {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }

    pub(crate) fn get_mut<'a>(&self, record: &'a mut Value) -> Option<&'a mut Value> {
        self.0
            .iter()
            .try_fold(record, |value, segment| match (segment, value) {
                (Segment::Key(key), Value::Object(map)) => map.get_mut(key),
                (Segment::Index(index), Value::Array(items)) => {
                    let len = items.len();
                    resolve_index(*index, len).map(move |i| &mut items[i])
                }
                _ => None,
            })
    }

    /// The path's first `depth` steps, for messages (`the record` when empty).
    fn prefix(&self, depth: usize) -> String {
        if depth == 0 {
            "the record".to_string()
        } else {
            Path(self.0[..depth].to_vec()).to_string()
        }
    }
}

/// An index counted from the end when negative; `None` when out of bounds.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let resolved = if index < 0 {
        len.checked_sub(index.unsigned_abs() as usize)?
    } else {
        usize::try_from(index).ok()?
    };
    (resolved < len).then_some(resolved)
}

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

impl fmt::Display for Path {
    /// Writes the path back in xf syntax: `a.b[0]."c-d"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_name(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => {
                    let quoted = serde_json::to_string(key).map_err(|_| fmt::Error)?;
                    if i > 0 {
                        write!(f, ".{quoted}")?;
                    } else {
                        write!(f, "[{quoted}]")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(key, "true" | "false" | "null")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(segments: &[Segment]) -> Path {
        Path(segments.to_vec())
    }

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_string())
    }

    #[test]
    fn set_creates_objects_and_keeps_order() {
        let mut record = json!({"b": 1, "a": 2});
        path(&[key("event"), key("id")])
            .set(&mut record, json!("x"))
            .unwrap();
        assert_eq!(
            serde_json::to_string(&record).unwrap(),
            r#"{"b":1,"a":2,"event":{"id":"x"}}"#
        );
    }

    #[test]
    fn set_through_a_string_fails_with_a_reason() {
        let mut record = json!({"event": "text"});
        let error = path(&[key("event"), key("id")])
            .set(&mut record, json!(1))
            .unwrap_err();
        assert_eq!(
            error,
            "cannot set event.id: event is a string, not an object"
        );
    }

    #[test]
    fn negative_indexes_count_from_the_end() {
        let record = json!({"a": [1, 2, 3]});
        assert_eq!(
            path(&[key("a"), Segment::Index(-1)]).get(&record),
            Some(&json!(3))
        );
        assert_eq!(path(&[key("a"), Segment::Index(-4)]).get(&record), None);
    }

    #[test]
    fn display_round_trips_awkward_keys() {
        let p = path(&[key("detail-type"), key("a.b"), Segment::Index(0), key("ok")]);
        assert_eq!(p.to_string(), r#"["detail-type"]."a.b"[0].ok"#);
    }
}
