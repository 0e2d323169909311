//! The record [`Path`]: reading, writing and removing values at it.

use std::fmt;

use serde_json::{Map, Value};

use super::kind_with_article;

/// One step of a path: an object key or an array index (negative counts from the end).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(i64),
}

/// A path into a record, such as `event.rules[0].Name`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Path(pub Vec<Segment>);

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
        let Some((last, parents)) = self.0.split_last() else {
            *record = new;
            return Ok(());
        };
        let mut slot = record;
        for (depth, segment) in parents.iter().enumerate() {
            slot = self.step(depth, segment, slot)?;
        }
        if slot.is_null() && matches!(last, Segment::Key(_)) {
            *slot = Value::Object(Map::new());
        }
        // The last key takes the value at once (in place if it is there, else
        // at the end), with no placeholder to fill.
        if let (Segment::Key(key), Value::Object(map)) = (last, &mut *slot) {
            map.insert(key.clone(), new);
            return Ok(());
        }
        *self.step(parents.len(), last, slot)? = new;
        Ok(())
    }

    /// One step of [`Path::set`]: the place `segment` names in `slot`, made
    /// when it is a missing key.
    fn step<'v>(
        &self,
        depth: usize,
        segment: &Segment,
        slot: &'v mut Value,
    ) -> Result<&'v mut Value, String> {
        if slot.is_null() && matches!(segment, Segment::Key(_)) {
            *slot = Value::Object(Map::new());
        }
        match (segment, slot) {
            (Segment::Key(key), Value::Object(map)) => {
                Ok(map.entry(key.clone()).or_insert(Value::Null))
            }
            (Segment::Index(index), Value::Array(items)) => {
                let len = items.len();
                let i = resolve_index(*index, len).ok_or_else(|| {
                    format!("cannot set {self}: {} has {len} items", self.prefix(depth))
                })?;
                Ok(&mut items[i])
            }
            (segment, other) => Err(format!(
                "cannot set {self}: {} is {}, not {}",
                self.prefix(depth),
                kind_with_article(other),
                match segment {
                    Segment::Key(_) => "an object",
                    Segment::Index(_) => "an array",
                }
            )),
        }
    }

    /// Removes the value at this path; a path that is not there is already removed.
    pub fn remove(&self, record: &mut Value) {
        if let Some(place) = self.locate(record) {
            remove_place(&place, record);
        }
    }

    /// Where this path points in `record`: its keys, and its indexes counted
    /// from the start; `None` when the path is not there.
    fn locate(&self, record: &Value) -> Option<Vec<Place>> {
        let mut value = record;
        let mut places = Vec::with_capacity(self.0.len());
        for segment in &self.0 {
            value = match (segment, value) {
                (Segment::Key(key), Value::Object(map)) => {
                    places.push(Place::Key(key.clone()));
                    map.get(key)?
                }
                (Segment::Index(index), Value::Array(items)) => {
                    let i = resolve_index(*index, items.len())?;
                    places.push(Place::Index(i));
                    &items[i]
                }
                _ => return None,
            };
        }
        Some(places)
    }

    pub fn get_mut<'a>(&self, record: &'a mut Value) -> Option<&'a mut Value> {
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

/// One step of a path resolved against a record: a key, or an index counted
/// from the start. Ordered so that, under one parent, a higher index sorts
/// after a lower one and a path after its own prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Place {
    Key(String),
    Index(usize),
}

/// Removes the values at `paths` (the `tag remove` marks), exactly those.
///
/// Every path is resolved against the record as it is before anything is
/// removed, so `a[1]` then `a[0]` removes both named items, and `a[1]` and
/// `a[-2]` on three items remove one. A path marked several times (by a
/// `tag remove` in a `for`, or by two statements naming one value) is removed
/// once. Removing in descending order takes a higher index of an array (and
/// anything inside it) before a lower one, so no removal shifts the items
/// another one names.
pub fn remove_all<'p>(paths: impl Iterator<Item = &'p Path>, record: &mut Value) {
    let mut places: Vec<Vec<Place>> = paths.filter_map(|path| path.locate(record)).collect();
    places.sort_unstable_by(|a, b| b.cmp(a));
    places.dedup();
    for place in &places {
        remove_place(place, record);
    }
}

/// Removes the value at a resolved location (always there: see [`remove_all`]).
fn remove_place(place: &[Place], record: &mut Value) {
    let Some((last, parents)) = place.split_last() else {
        // The empty path names the record itself, which is never removed.
        return;
    };
    let parent = parents
        .iter()
        .try_fold(record, |value, step| match (step, value) {
            (Place::Key(key), Value::Object(map)) => map.get_mut(key),
            (Place::Index(i), Value::Array(items)) => items.get_mut(*i),
            _ => None,
        });
    match (last, parent) {
        (Place::Key(key), Some(Value::Object(map))) => {
            map.shift_remove(key);
        }
        (Place::Index(i), Some(Value::Array(items))) if *i < items.len() => {
            items.remove(*i);
        }
        _ => {}
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
