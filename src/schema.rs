//! JSON Schemas: the ones xf ships (`schemas/`, built into the binary), and
//! validators compiled from them once, at load time. Schemas are resolved
//! without any network or file look-up beyond the schema file itself.
//! A schema generated from the OCSF source (`scripts/ocsf_schema.py`) also
//! brings the OCSF rules JSON Schema cannot state (`src/schema/ocsf.rs`).

use std::collections::HashMap;
use std::path::Path as FsPath;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::files::{Disk, Kind, Loader};

mod ocsf;

/// The schemas in `schemas/`, by name (the file name without `.schema.json`).
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "armor-detection",
        include_str!("../schemas/armor-detection.schema.json"),
    ),
    (
        "armor-event",
        include_str!("../schemas/armor-event.schema.json"),
    ),
    (
        "armor-notification-config",
        include_str!("../schemas/armor-notification-config.schema.json"),
    ),
    (
        "armor-transform-config",
        include_str!("../schemas/armor-transform-config.schema.json"),
    ),
    (
        "cii-event",
        include_str!("../schemas/cii-event.schema.json"),
    ),
    (
        "datadog-signal",
        include_str!("../schemas/datadog-signal.schema.json"),
    ),
    (
        "datatheorem-event",
        include_str!("../schemas/datatheorem-event.schema.json"),
    ),
    (
        "github-code-scanning-alert",
        include_str!("../schemas/github-code-scanning-alert.schema.json"),
    ),
    (
        "github-dependabot-alert",
        include_str!("../schemas/github-dependabot-alert.schema.json"),
    ),
    (
        "github-ping",
        include_str!("../schemas/github-ping.schema.json"),
    ),
    (
        "github-repository-advisory",
        include_str!("../schemas/github-repository-advisory.schema.json"),
    ),
    (
        "github-secret-scanning-alert",
        include_str!("../schemas/github-secret-scanning-alert.schema.json"),
    ),
    (
        "github-secret-scanning-alert-location",
        include_str!("../schemas/github-secret-scanning-alert-location.schema.json"),
    ),
    (
        "github-security-advisory",
        include_str!("../schemas/github-security-advisory.schema.json"),
    ),
    (
        "ocsf-detection-finding",
        include_str!("../schemas/ocsf-detection-finding.schema.json"),
    ),
    (
        "ocsf-vulnerability-finding",
        include_str!("../schemas/ocsf-vulnerability-finding.schema.json"),
    ),
    (
        "queryai-detection",
        include_str!("../schemas/queryai-detection.schema.json"),
    ),
    (
        "queryai-test",
        include_str!("../schemas/queryai-test.schema.json"),
    ),
    (
        "splunk-hec-event",
        include_str!("../schemas/splunk-hec-event.schema.json"),
    ),
];

/// How many violations a record error lists before it summarizes the rest.
const LISTED: usize = 8;

/// A compiled schema.
pub struct Schema {
    /// As the author named it: a shipped name or a file.
    pub name: String,
    compiled: Arc<Compiled>,
}

/// What compiling a schema document gives; a shipped schema's is shared by
/// every load in the process ([`shipped`]).
struct Compiled {
    validator: jsonschema::Validator,
    /// The OCSF checks, when the schema was generated from the OCSF source.
    ocsf: Option<ocsf::Ocsf>,
    /// The only top-level keys a valid record can have, when the schema says
    /// so itself: see [`Schema::closed_keys`].
    closed_keys: Option<Vec<String>>,
}

/// Compiles a schema document (draft 2020-12 unless its `$schema` says otherwise).
fn compile(document: &Value) -> Result<Compiled, LoadError> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(document)
        .map_err(|error| {
            let at = error.instance_path().as_str().to_string();
            let at = if at.is_empty() {
                String::new()
            } else {
                format!("at {at}: ")
            };
            LoadError::Invalid(format!("{at}{error}"))
        })?;
    Ok(Compiled {
        validator,
        ocsf: ocsf::Ocsf::from_document(document),
        closed_keys: closed_keys(document),
    })
}

/// A shipped schema, compiled once per process: its text never changes, and
/// compiling the OCSF ones is most of what loading a transform that
/// validates against them costs (time and memory), for every `validate` and
/// every included file that names one, and on every reload, check and
/// keystroke in `xf lsp`.
fn shipped(name: &str) -> Result<Arc<Compiled>, LoadError> {
    static COMPILED: OnceLock<Mutex<HashMap<&'static str, Arc<Compiled>>>> = OnceLock::new();
    let (shipped_name, text) = SHIPPED
        .iter()
        .find(|(shipped, _)| *shipped == name)
        .ok_or(LoadError::UnknownName)?;
    let cache = COMPILED.get_or_init(Mutex::default);
    if let Some(compiled) = cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(shipped_name)
    {
        return Ok(Arc::clone(compiled));
    }
    let document: Value =
        serde_json::from_str(text).map_err(|error| LoadError::File(error.to_string()))?;
    let compiled = Arc::new(compile(&document)?);
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(shipped_name, Arc::clone(&compiled));
    Ok(compiled)
}

/// Why a schema could not be loaded.
#[derive(Debug, PartialEq, Eq)]
pub enum LoadError {
    /// No shipped schema has this name.
    UnknownName,
    /// The file cannot be read, or is not JSON.
    File(String),
    /// The JSON is not a valid schema.
    Invalid(String),
}

/// One way a value fails its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer to the failing value ("" is the whole record).
    pub pointer: String,
    pub message: String,
}

impl Schema {
    /// A shipped schema by name, or — when `name` ends in `.json` — a schema
    /// file, relative to `base_dir` (or the current directory) and inside it.
    pub fn load(name: &str, base_dir: Option<&FsPath>) -> Result<Schema, LoadError> {
        Schema::load_with(name, base_dir, &*Disk::beside(base_dir))
    }

    /// [`Schema::load`], reading a schema file through `files`.
    pub fn load_with(
        name: &str,
        base_dir: Option<&FsPath>,
        files: &dyn Loader,
    ) -> Result<Schema, LoadError> {
        if !name.ends_with(".json") {
            return Ok(Schema {
                name: name.to_string(),
                compiled: shipped(name)?,
            });
        }
        let document: Value = {
            let path = match base_dir {
                Some(dir) => dir.join(name),
                None => FsPath::new(name).to_path_buf(),
            };
            let text = files
                .read(&path, Kind::Schema)
                .map_err(|error| LoadError::File(format!("cannot read {name}: {error}")))?
                .text;
            serde_json::from_str(&text)
                .map_err(|error| LoadError::File(format!("{name} is not JSON: {error}")))?
        };
        Schema::compile(name, &document)
    }

    /// Compiles a schema document (draft 2020-12 unless its `$schema` says otherwise).
    pub fn compile(name: &str, document: &Value) -> Result<Schema, LoadError> {
        Ok(Schema {
            name: name.to_string(),
            compiled: Arc::new(compile(document)?),
        })
    }

    /// The only top-level keys a record valid against this schema can have:
    /// when its root lists `properties` and says `"additionalProperties":
    /// false`, with no `patternProperties` and no `$ref`, `allOf`, `anyOf`,
    /// `oneOf` or `if` that could say more. `None` for any other schema.
    pub fn closed_keys(&self) -> Option<&[String]> {
        self.compiled.closed_keys.as_deref()
    }

    pub fn is_valid(&self, value: &Value) -> bool {
        self.compiled.validator.is_valid(value)
            && self
                .compiled
                .ocsf
                .as_ref()
                .is_none_or(|ocsf| ocsf.violations(value).is_empty())
    }

    /// Every way `value` fails the schema, in the validator's order, then
    /// the OCSF checks' (profiles, observables).
    pub fn violations(&self, value: &Value) -> Vec<Violation> {
        let mut found: Vec<Violation> = self
            .compiled
            .validator
            .iter_errors(value)
            .map(|error| Violation {
                pointer: error.instance_path().as_str().to_string(),
                message: error.to_string(),
            })
            .collect();
        if let Some(ocsf) = &self.compiled.ocsf {
            found.extend(ocsf.violations(value));
        }
        found
    }

    /// `None` when `value` is valid; else a record error's text that lists
    /// each violation with its JSON pointer.
    pub fn check(&self, value: &Value) -> Option<String> {
        // The common case asks only yes or no, which is cheaper than collecting errors.
        if self.is_valid(value) {
            return None;
        }
        let violations = self.violations(value);
        let mut text = format!("does not match schema {}:", self.name);
        for violation in violations.iter().take(LISTED) {
            let at = if violation.pointer.is_empty() {
                "(record)"
            } else {
                &violation.pointer
            };
            text.push_str(&format!(" {at}: {};", shortened(&violation.message)));
        }
        if violations.len() > LISTED {
            text.push_str(&format!(" and {} more;", violations.len() - LISTED));
        }
        text.pop();
        Some(text)
    }
}

/// A violation's message, which quotes the failing value, kept to one readable size.
fn shortened(message: &str) -> String {
    const MOST: usize = 160;
    if message.chars().count() <= MOST {
        return message.to_string();
    }
    let head: String = message.chars().take(MOST / 2).collect();
    let tail: String = {
        let mut tail: Vec<char> = message.chars().rev().take(MOST / 2).collect();
        tail.reverse();
        tail.into_iter().collect()
    };
    format!("{head} … {tail}")
}

/// The shipped schemas' names.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

/// See [`Schema::closed_keys`]: only what the root itself says, never a guess.
fn closed_keys(document: &Value) -> Option<Vec<String>> {
    let root = document.as_object()?;
    let open = [
        "patternProperties",
        "$ref",
        "$dynamicRef",
        "allOf",
        "anyOf",
        "oneOf",
        "if",
        "unevaluatedProperties",
    ];
    if root.get("additionalProperties") != Some(&Value::Bool(false))
        || open.iter().any(|key| root.contains_key(*key))
    {
        return None;
    }
    Some(
        root.get("properties")?
            .as_object()?
            .keys()
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_schemas_is_shipped_and_compiles() {
        let dir = FsPath::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|name| name.strip_suffix(".schema.json").map(str::to_string))
            .collect();
        files.sort();
        assert_eq!(files, shipped_names());
        for name in shipped_names() {
            assert!(Schema::load(name, None).is_ok(), "{name}");
        }
    }

    #[test]
    fn violations_name_their_json_pointer() {
        let schema = Schema::load("queryai-detection", None).ok().unwrap();
        let record = serde_json::json!({
            "detection_id": "x", "detection_name": "n", "severity": "EXTREME",
            "outcome": "ERROR", "ran_at": "2025-01-15T10:00:00Z", "errors": []
        });
        let pointers: Vec<String> = schema
            .violations(&record)
            .into_iter()
            .map(|v| v.pointer)
            .collect();
        for expected in ["/detection_id", "/severity", "/errors"] {
            assert!(
                pointers.iter().any(|p| p == expected),
                "{expected} in {pointers:?}"
            );
        }
        let text = schema.check(&record).unwrap();
        assert!(
            text.starts_with("does not match schema queryai-detection: "),
            "{text}"
        );
    }

    #[test]
    fn unknown_names_and_bad_files_are_load_errors() {
        assert_eq!(
            Schema::load("nope", None).err(),
            Some(LoadError::UnknownName)
        );
        assert!(matches!(
            Schema::load("missing.json", None),
            Err(LoadError::File(_))
        ));
        let invalid = Schema::compile("x", &serde_json::json!({"type": 12}));
        assert!(matches!(invalid, Err(LoadError::Invalid(_))));
    }
}
