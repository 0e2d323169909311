//! The record's fields: what a JSON Schema says a path holds (its type and
//! description), or what the transform's own test inputs hold there.
//!
//! A schema is walked on demand, one level per segment of the path asked
//! about: `properties` (merged across `allOf`, `anyOf` and `oneOf`), `items`
//! for an index, and local `$ref`s (`#/$defs/…`), so that OCSF's recursive
//! objects cost nothing until asked for. Test inputs are folded into the same
//! shape (a schema of the keys and kinds seen), so both answer alike.

use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// How deep `$ref`s may chain, and paths descend, before the walk gives up.
const MAX_DEPTH: usize = 64;
/// The most test inputs read for their paths, and bytes of each.
const MAX_SAMPLES: usize = 64;
const MAX_SAMPLE_BYTES: u64 = 4 << 20;

/// A segment of a path as written: a name, or an index into an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Name(String),
    Index,
}

/// Where field descriptions come from: a schema (shipped, or a file), or the
/// shape of a transform's test inputs.
pub(super) struct Source {
    /// `cii-event`, `mine.json`, or `the tests' inputs`.
    pub name: String,
    pub root: Value,
    /// The path under which this source's record sits at the cursor
    /// (`unmapped` after `nest unmapped`), as segments.
    pub mount: Vec<Segment>,
}

/// A field found under a path: its name, type in words and description.
pub(super) struct Field {
    pub name: String,
    pub kind: String,
    pub description: Option<String>,
}

/// The shipped schemas, parsed once.
fn shipped() -> &'static [(&'static str, Value)] {
    static SHIPPED: OnceLock<Vec<(&'static str, Value)>> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        xf::schema::SHIPPED
            .iter()
            .filter_map(|(name, text)| Some((*name, serde_json::from_str(text).ok()?)))
            .collect()
    })
}

/// The schema a `validate "NAME"` names: a shipped one, or a `.json` file
/// beside the transform, read through `files` (confined as `xf run` reads it).
pub(super) fn schema(
    name: &str,
    dir: Option<&Path>,
    files: &dyn xf::files::Loader,
) -> Option<Value> {
    if let Some((_, root)) = shipped().iter().find(|(n, _)| *n == name) {
        return Some(root.clone());
    }
    if !name.ends_with(".json") {
        return None;
    }
    let path = dir?.join(name);
    let loaded = files.read(&path, xf::files::Kind::Schema).ok()?;
    serde_json::from_str(&loaded.text).ok()
}

/// A schema of the shape the transform's test inputs have (`NAME.tests/*.input.json`
/// and `*.input.ndjson` beside `NAME.xf`), or `None` when there are none.
pub(super) fn sample_shape(transform: &Path, files: &dyn xf::files::Loader) -> Option<Value> {
    let stem = transform.file_stem()?.to_str()?;
    let folder = transform.with_file_name(format!("{stem}.tests"));
    let mut names: Vec<_> = std::fs::read_dir(&folder)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".input.json") || name.ends_with(".input.ndjson"))
        .collect();
    names.sort();
    let mut shape = Value::Object(Map::new());
    for name in names.into_iter().take(MAX_SAMPLES) {
        let Ok(loaded) = files.read(&folder.join(&name), xf::files::Kind::Template) else {
            continue;
        };
        if loaded.text.len() as u64 > MAX_SAMPLE_BYTES {
            continue;
        }
        for record in serde_json::Deserializer::from_str(&loaded.text).into_iter::<Value>() {
            let Ok(record) = record else { break };
            fold(&mut shape, &record, 0);
        }
    }
    Some(shape).filter(|shape| shape.get("properties").is_some())
}

/// Adds what `value` shows to `shape`, a schema of `type` and `properties`/`items`.
fn fold(shape: &mut Value, value: &Value, depth: usize) {
    let Value::Object(shape) = shape else { return };
    if depth > MAX_DEPTH {
        return;
    }
    shape
        .entry("type")
        .or_insert_with(|| Value::String(kind_of(value).to_string()));
    match value {
        Value::Object(members) => {
            let properties = shape
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(properties) = properties {
                for (key, member) in members {
                    let entry = properties
                        .entry(key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                    fold(entry, member, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            let entry = shape
                .entry("items")
                .or_insert_with(|| Value::Object(Map::new()));
            for item in items {
                fold(entry, item, depth + 1);
            }
        }
        _ => {}
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A `$ref` resolved inside `root` (local pointers only: nothing is fetched).
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return node;
        };
        match root.pointer(pointer) {
            Some(target) => node = target,
            None => return node,
        }
    }
    node
}

/// `node` and the subschemas it is made of (`allOf`, `anyOf`, `oneOf`), resolved.
fn parts<'a>(root: &'a Value, node: &'a Value, into: &mut Vec<&'a Value>, depth: usize) {
    let node = resolve(root, node);
    into.push(node);
    if depth >= 8 {
        return;
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subschemas)) = node.get(key) {
            for subschema in subschemas {
                parts(root, subschema, into, depth + 1);
            }
        }
    }
}

/// The schema of what `path` holds under `node`, if the schema says.
pub(super) fn at<'a>(root: &'a Value, path: &[Segment]) -> Option<&'a Value> {
    let mut node = resolve(root, root);
    for segment in path {
        let mut found = None;
        let mut candidates = Vec::new();
        parts(root, node, &mut candidates, 0);
        for candidate in candidates {
            found = match segment {
                Segment::Name(name) => candidate.get("properties").and_then(|p| p.get(name)),
                Segment::Index => candidate.get("items").filter(|items| items.is_object()),
            };
            if found.is_some() {
                break;
            }
        }
        node = resolve(root, found?);
    }
    Some(node)
}

/// The fields under `node`: its properties, merged across its parts.
pub(super) fn children(root: &Value, node: &Value) -> Vec<Field> {
    let mut candidates = Vec::new();
    parts(root, node, &mut candidates, 0);
    let mut fields: Vec<Field> = Vec::new();
    for candidate in candidates {
        let Some(Value::Object(properties)) = candidate.get("properties") else {
            continue;
        };
        for (name, schema) in properties {
            if fields.iter().any(|f| f.name == *name) {
                continue;
            }
            let (kind, description) = describe(root, schema);
            fields.push(Field {
                name: name.clone(),
                kind,
                description,
            });
        }
    }
    fields
}

/// A schema's type in words (`string`, `integer`, `one of "low", "high"`,
/// `array of object`) and its description (or title).
pub(super) fn describe(root: &Value, schema: &Value) -> (String, Option<String>) {
    let titled = schema;
    let schema = resolve(root, schema);
    let text = |node: &Value, key: &str| node.get(key).and_then(Value::as_str).map(str::to_string);
    let description = text(titled, "description")
        .or_else(|| text(schema, "description"))
        .or_else(|| text(titled, "title"))
        .or_else(|| text(schema, "title"));
    (kind(root, schema, 0), description)
}

fn kind(root: &Value, schema: &Value, depth: usize) -> String {
    if let Some(Value::Array(values)) = schema.get("enum") {
        let shown: Vec<String> = values.iter().take(8).map(Value::to_string).collect();
        let more = if values.len() > 8 { ", …" } else { "" };
        return format!("one of {}{more}", shown.join(", "));
    }
    if let Some(value) = schema.get("const") {
        return format!("always {value}");
    }
    let mut kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.clone(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" or "),
        _ if schema.get("properties").is_some() => "object".to_string(),
        _ => "any".to_string(),
    };
    if kind == "array" && depth < 4 {
        if let Some(items) = schema.get("items").filter(|items| items.is_object()) {
            kind = format!("array of {}", kind_of_items(root, items, depth));
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str) {
        kind = format!("{kind} ({format})");
    }
    kind
}

fn kind_of_items(root: &Value, items: &Value, depth: usize) -> String {
    kind(root, resolve(root, items), depth + 1)
}

/// Splits a path as typed (`detail.sev`, `[event].acc`, `rules[0].`) into its
/// complete segments and the name being typed.
pub(super) fn split_typed(typed: &str) -> (Vec<Segment>, String) {
    let (parent, partial) = match typed.rfind('.') {
        Some(dot) => (&typed[..dot], &typed[dot + 1..]),
        None => ("", typed),
    };
    (segments(parent), partial.to_string())
}

/// The segments of a path written with names, `[N]` indexes and `[name]` keys.
pub(super) fn segments(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('[') {
                let end = inner.find(']').unwrap_or(inner.len());
                let key = inner[..end].trim_matches('"');
                if key.parse::<i64>().is_ok() {
                    segments.push(Segment::Index);
                } else if !key.is_empty() {
                    segments.push(Segment::Name(key.to_string()));
                }
                rest = inner.get(end + 1..).unwrap_or("");
            } else {
                let end = rest.find('[').unwrap_or(rest.len());
                segments.push(Segment::Name(rest[..end].trim_matches('"').to_string()));
                rest = &rest[end..];
            }
        }
    }
    segments
}

/// A path's text from its segments: `detail.severity`, `rules[0].Name`, `."detail-type"`.
pub(super) fn written(segments: &[Segment]) -> String {
    let mut text = String::new();
    for segment in segments {
        match segment {
            Segment::Index => text.push_str("[0]"),
            Segment::Name(name) if is_ident(name) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(name);
            }
            Segment::Name(name) => {
                text.push('.');
                text.push_str(&Value::String(name.clone()).to_string());
            }
        }
    }
    text
}

pub(super) fn is_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped_schema(name: &str) -> &'static Value {
        &shipped().iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn paths_split_into_segments_and_back() {
        assert_eq!(
            split_typed("detail.sev"),
            (vec![Segment::Name("detail".into())], "sev".to_string())
        );
        assert_eq!(
            segments("[event].rules[0].x"),
            vec![
                Segment::Name("event".into()),
                Segment::Name("rules".into()),
                Segment::Index,
                Segment::Name("x".into())
            ]
        );
        assert_eq!(
            written(&[Segment::Name("detail-type".into())]),
            ".\"detail-type\""
        );
        assert_eq!(written(&segments("a.rules[0].x")), "a.rules[0].x");
    }

    #[test]
    fn a_schema_is_walked_through_refs_and_items() {
        let cii = shipped_schema("cii-event");
        let detail = at(cii, &segments("detail")).unwrap();
        let names: Vec<String> = children(cii, detail).into_iter().map(|f| f.name).collect();
        assert!(names.contains(&"severity".to_string()), "{names:?}");
        let severity = at(cii, &segments("detail.severity")).unwrap();
        assert!(describe(cii, severity).0.starts_with("one of \"low\""));
        // OCSF: properties behind `$ref`s to `$defs`.
        let ocsf = shipped_schema("ocsf-detection-finding");
        let title = at(ocsf, &segments("finding_info.title")).unwrap();
        assert_eq!(describe(ocsf, title).0, "string");
        let evidence = at(ocsf, &segments("evidences[0].src_endpoint.ip"));
        assert!(evidence.is_some());
    }

    #[test]
    fn samples_fold_into_a_shape() {
        let mut shape = Value::Object(Map::new());
        fold(
            &mut shape,
            &serde_json::json!({"a": {"b": [{"c": 1}]}, "d": "x"}),
            0,
        );
        fold(&mut shape, &serde_json::json!({"e": true}), 0);
        let names: Vec<String> = children(&shape, &shape)
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["a", "d", "e"]);
        let c = at(&shape, &segments("a.b[0].c")).unwrap();
        assert_eq!(describe(&shape, c).0, "number");
    }
}
