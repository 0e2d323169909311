//! The OCSF rules a JSON Schema cannot state, checked beside one that
//! `scripts/ocsf_schema.py` generated (its root has `x-ocsf`). The generator
//! annotates each attribute's schema with what these checks need:
//!
//! - `x-ocsf-profile`: the attribute belongs to a profile, so a record may
//!   hold it only when `metadata.profiles` lists that profile;
//! - `x-ocsf-observable`: the attribute's observable type. Each
//!   `observables[]` entry must name an attribute path of the class
//!   (`evidences[].src_endpoint.ip`, `[]` after each array) that the record
//!   holds, with that type as its `type_id` and, for a scalar, a value there
//!   as its `value`.
//!
//! Everything else (types, required attributes, enums) is the schema's own.

use std::collections::HashMap;

use serde_json::Value;

use super::Violation;

/// The most `$ref`s followed from one schema to the one it names.
const MAX_REF_HOPS: usize = 64;

/// A generated OCSF schema, kept for its annotations.
pub(super) struct Ocsf {
    document: Value,
    /// What the profile check needs of each object the schema describes,
    /// found once: each record's every attribute is looked up in it.
    objects: Vec<Attributes>,
}

/// The attributes of one object the schema describes, by name.
type Attributes = HashMap<String, Attribute, foldhash::fast::RandomState>;

/// One attribute of an object: what [`Ocsf::undeclared_profiles`] reads of its schema.
struct Attribute {
    /// `x-ocsf-profile`: the profile it belongs to.
    profile: Option<String>,
    /// Its element's object (its own, when it is no array) in [`Ocsf::objects`].
    inner: usize,
    /// Whether it is an array (its items are checked against `inner`).
    array: bool,
}

impl Ocsf {
    /// `Some` when `document` is a generated OCSF schema.
    pub(super) fn from_document(document: &Value) -> Option<Ocsf> {
        document.get("x-ocsf")?;
        let mut ocsf = Ocsf {
            document: document.clone(),
            objects: Vec::new(),
        };
        let objects = Objects::of(&ocsf);
        ocsf.objects = objects;
        Some(ocsf)
    }

    /// Every profile and observable violation in `record`.
    pub(super) fn violations(&self, record: &Value) -> Vec<Violation> {
        let declared: Vec<&str> = record
            .pointer("/metadata/profiles")
            .and_then(Value::as_array)
            .map(|profiles| profiles.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut found = Vec::new();
        self.undeclared_profiles(record, 0, &mut String::new(), &declared, &mut found);
        if let Some(Value::Array(observables)) = record.get("observables") {
            for (index, observable) in observables.iter().enumerate() {
                if let Err(message) = self.observable(record, observable) {
                    found.push(Violation {
                        pointer: format!("/observables/{index}"),
                        message,
                    });
                }
            }
        }
        found
    }

    /// Follows `$ref`s into `$defs` to the schema that describes an object.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        // A bound on the hops, so that a `$ref` that leads back to itself
        // ends (where the schema's own compiler would refuse or loop).
        for _ in 0..MAX_REF_HOPS {
            let Some(target) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|to| to.strip_prefix("#/$defs/"))
                .and_then(|name| self.document["$defs"].get(name))
            else {
                break;
            };
            node = target;
        }
        node
    }

    /// The schema of attribute `name` of the object that `node` describes.
    fn property<'a>(&'a self, node: &'a Value, name: &str) -> Option<&'a Value> {
        self.resolve(node).get("properties")?.get(name)
    }

    /// Attributes of profiles `metadata.profiles` does not list, at any
    /// depth, below the object `object` describes; `pointer` is where
    /// `value` is (and is where it was again on return).
    fn undeclared_profiles(
        &self,
        value: &Value,
        object: usize,
        pointer: &mut String,
        declared: &[&str],
        found: &mut Vec<Violation>,
    ) {
        let Value::Object(attributes) = value else {
            return;
        };
        for (name, value) in attributes {
            // An attribute the class does not define is the schema's violation; an open object's are free.
            let Some(attribute) = self.objects[object].get(name) else {
                continue;
            };
            let undeclared = attribute
                .profile
                .as_deref()
                .filter(|profile| !declared.contains(profile));
            // Only a violation or what holds more attributes needs the pointer.
            if undeclared.is_none() && !matches!(value, Value::Object(_) | Value::Array(_)) {
                continue;
            }
            let at = pointer.len();
            pointer.push('/');
            pointer.push_str(&escape(name));
            if let Some(profile) = undeclared {
                found.push(Violation {
                    pointer: pointer.clone(),
                    message: format!("{name} is an attribute of the {profile} profile, which metadata.profiles does not declare"),
                });
            }
            match value {
                Value::Array(items) if attribute.array => {
                    for (index, item) in items.iter().enumerate() {
                        let before = pointer.len();
                        pointer.push('/');
                        pointer.push_str(&index.to_string());
                        self.undeclared_profiles(item, attribute.inner, pointer, declared, found);
                        pointer.truncate(before);
                    }
                }
                _ => self.undeclared_profiles(value, attribute.inner, pointer, declared, found),
            }
            pointer.truncate(at);
        }
    }

    /// One `observables[]` entry against the attribute it names and the record's values there.
    fn observable(&self, record: &Value, observable: &Value) -> Result<(), String> {
        // Without a name, the schema reports the entry.
        let Some(name) = observable.get("name").and_then(Value::as_str) else {
            return Ok(());
        };
        let (property, node, values) = self.attribute_path(record, name)?;
        if values.is_empty() {
            return Err(format!("observable {name}: the record has no {name}"));
        }
        let Some(expected) = property.get("x-ocsf-observable").and_then(Value::as_u64) else {
            return Err(format!(
                "observable {name}: {name} has no OCSF observable type"
            ));
        };
        let type_id = observable.get("type_id").and_then(Value::as_u64);
        if type_id != Some(expected) {
            return Err(format!(
                "observable {name}: type_id must be {expected}, the observable type of {name}"
            ));
        }
        let is_object = self.resolve(node).get("properties").is_some();
        match observable.get("value") {
            None if is_object => Ok(()),
            Some(_) if is_object => Err(format!(
                "observable {name}: {name} is an object, and an object's observable has no value"
            )),
            Some(Value::String(text))
                if values.iter().any(|v| as_text(v).as_deref() == Some(text)) =>
            {
                Ok(())
            }
            Some(Value::String(text)) => Err(format!(
                "observable {name}: the record holds no {text:?} at {name}"
            )),
            _ => Err(format!(
                "observable {name}: needs the value at {name} as its value"
            )),
        }
    }

    /// The schema of the attribute a path names (its property, and its
    /// element's schema), with the record's values there.
    fn attribute_path<'a, 'r>(
        &'a self,
        record: &'r Value,
        path: &str,
    ) -> Result<(&'a Value, &'a Value, Vec<&'r Value>), String> {
        let (mut node, mut last) = (&self.document, &self.document);
        let mut values = vec![record];
        for segment in path.split('.') {
            let (name, hop) = match segment.strip_suffix("[]") {
                Some(name) => (name, true),
                None => (segment, false),
            };
            let owner = self
                .resolve(node)
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("the record");
            let property = self
                .property(node, name)
                .ok_or_else(|| format!("observable {path}: {name:?} is no attribute of {owner}"))?;
            let (inner, array) = element(property);
            if array != hop {
                return Err(if array {
                    format!("observable {path}: {name} is an array, written {name}[]")
                } else {
                    format!("observable {path}: {name} is no array, written without []")
                });
            }
            values = values
                .into_iter()
                .filter_map(|value| value.get(name))
                .flat_map(|value| match value {
                    Value::Array(items) if array => items.iter().collect(),
                    _ if array => Vec::new(),
                    _ => vec![value],
                })
                .collect();
            (node, last) = (inner, property);
        }
        Ok((last, node, values))
    }
}

/// Builds [`Ocsf::objects`]: the root's object first (index 0), then every
/// object an attribute leads to, each schema once (a `$ref` to one already
/// seen is that one, so recursive definitions end).
struct Objects<'a> {
    ocsf: &'a Ocsf,
    objects: Vec<Attributes>,
    /// Where each schema (by its address in the document) was built.
    built: HashMap<*const Value, usize>,
}

impl<'a> Objects<'a> {
    fn of(ocsf: &'a Ocsf) -> Vec<Attributes> {
        let mut objects = Objects {
            ocsf,
            objects: Vec::new(),
            built: HashMap::new(),
        };
        // Objects to fill in, by index: a worklist rather than recursion, so
        // that a schema's depth never meets the stack's.
        let mut unfilled = Vec::new();
        objects.index(&ocsf.document, &mut unfilled);
        while let Some((index, node)) = unfilled.pop() {
            let mut attributes = Attributes::default();
            if let Some(Value::Object(properties)) = node.get("properties") {
                for (name, property) in properties {
                    let (inner, array) = element(property);
                    let attribute = Attribute {
                        profile: property
                            .get("x-ocsf-profile")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        inner: objects.index(inner, &mut unfilled),
                        array,
                    };
                    attributes.insert(name.clone(), attribute);
                }
            }
            objects.objects[index] = attributes;
        }
        objects.objects
    }

    /// The index of the object that `node` describes (following its
    /// `$ref`s): a new one, to be filled in, the first time.
    fn index(&mut self, node: &'a Value, unfilled: &mut Vec<(usize, &'a Value)>) -> usize {
        let node = self.ocsf.resolve(node);
        let key: *const Value = node;
        if let Some(&index) = self.built.get(&key) {
            return index;
        }
        let index = self.objects.len();
        self.objects.push(Attributes::default());
        self.built.insert(key, index);
        unfilled.push((index, node));
        index
    }
}

/// An array attribute's element schema and `true`, or the schema itself and `false`.
fn element(property: &Value) -> (&Value, bool) {
    match property.get("items") {
        Some(items) if property.get("type").and_then(Value::as_str) == Some("array") => {
            (items, true)
        }
        _ => (property, false),
    }
}

/// A scalar as an observable's value writes it.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// A key as a JSON pointer token.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A `$ref` that leads back to itself ends, at load and per record.
    #[test]
    fn a_ref_cycle_ends() {
        let document = json!({
            "x-ocsf": {},
            "properties": {
                "a": {"$ref": "#/$defs/a"},
                "b": {"$ref": "#/$defs/b"},
                "p": {"type": "string", "x-ocsf-profile": "host"}
            },
            "$defs": {
                "a": {"$ref": "#/$defs/a"},
                "b": {"$ref": "#/$defs/c"},
                "c": {"$ref": "#/$defs/b"}
            }
        });
        let ocsf = Ocsf::from_document(&document).unwrap();
        let found = ocsf.violations(&json!({"a": {"x": 1}, "b": [1], "p": "h"}));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].pointer, "/p");
    }
}
