//! Armor's Detections Transform Config (JSON) → `.xf` text.
//!
//! Armor users keep their configs: `xf import armor` prints the equivalent
//! `.xf`, and `xf run CONFIG.json` runs it through the same translation, so
//! both behave the same by construction. The config is first checked against
//! the shipped `armor-transform-config` schema; each problem is reported once,
//! with its JSON pointer.
//!
//! | Armor                                   | `.xf`                                   |
//! |-----------------------------------------|-----------------------------------------|
//! | `name`, `format`, `event_type`          | `name`, `format`, `events`              |
//! | `default_label` `{key, value}`          | `label KEY = VALUE`                     |
//! | `add_dynamic_tag` `{key, value}`        | `tag add KEY = "VALUE"` (a template)    |
//! | `remove_dynamic_tag` `{key}`            | `tag remove KEY`                        |
//! | `add_log_search_url` `{key, value}`     | `url KEY from FIELD` via `search kibana`|
//! | the tags service                        | `lookup tags from "FILE" key accountId` |

use std::fmt;

use serde_json::Value;

use crate::schema::Schema;
use crate::syntax::ast::{Path, Segment};
use crate::LoadError;

/// What a config does not say, given on the command line.
#[derive(Debug, Clone, Default)]
pub struct ArmorOptions {
    /// The tags table (CSV or JSON, keyed by `accountId`), as the `.xf` should name it.
    pub tags: Option<String>,
    /// The Kibana that `add_log_search_url` links point into.
    pub kibana: Option<String>,
}

/// Where links point when no `--kibana` is given (as in `transforms/armor-splunk.xf`).
pub const DEFAULT_KIBANA: &str = "https://kibana.example.com";

/// One problem with a config: where (a JSON pointer) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub pointer: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(config)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// The `.xf` text for an Armor config file: what `xf import armor` prints and
/// `xf run CONFIG.json` runs. Problems with the config are [`LoadError::ArmorConfig`].
pub fn armor_file(path: &std::path::Path, options: &ArmorOptions) -> Result<String, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let source = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    armor(&text, &source, options).map_err(|problems| LoadError::ArmorConfig {
        file: path.display().to_string(),
        problems,
    })
}

/// The `.xf` text for an Armor config's JSON text; `source` names the config in a comment.
pub fn armor(text: &str, source: &str, options: &ArmorOptions) -> Result<String, Vec<Problem>> {
    let config: Value = serde_json::from_str(text).map_err(|error| {
        vec![Problem {
            pointer: String::new(),
            message: format!(
                "not JSON: {error} (line {}, column {})",
                error.line(),
                error.column()
            ),
        }]
    })?;
    let schema = Schema::load("armor-transform-config", None)
        .expect("the shipped armor-transform-config schema compiles");
    let problems: Vec<Problem> = schema
        .violations(&config)
        .into_iter()
        .map(|v| Problem {
            pointer: v.pointer,
            message: v.message,
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(write_xf(&config, source, options))
}

/// Writes the `.xf`; `config` is valid against the schema.
fn write_xf(config: &Value, source: &str, options: &ArmorOptions) -> String {
    let quoted = |text: &str| Value::String(text.to_string()).to_string();
    let str_of =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(String::from);
    let mut out = format!(
        "# Imported by `xf import armor` from {source} (an Armor Detections Transform Config).\n"
    );
    out.push_str(&format!(
        "name {}\n",
        quoted(&str_of(config, "name").unwrap_or_default())
    ));
    out.push_str(&format!(
        "format {}\n",
        str_of(config, "format").unwrap_or_else(|| "default".into())
    ));
    if let Some(types) = config.get("event_type").and_then(Value::as_array) {
        let names: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
        if !names.is_empty() {
            out.push_str(&format!("events {}\n", names.join(", ")));
        }
    }
    let transforms: &[Value] = config
        .get("transform")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let kind = |t: &Value| str_of(t, "type").unwrap_or_default();

    out.push('\n');
    match &options.tags {
        Some(file) => {
            out.push_str(
                "# Armor's tags service, offline: one row per account, joined on accountId.\n",
            );
            out.push_str(&format!(
                "lookup tags from {} key accountId\n",
                quoted(file)
            ));
        }
        None => out.push_str(
            "# No tags table was given (--tags FILE): tag templates render as with no tags.\n",
        ),
    }
    if transforms.iter().any(|t| kind(t) == "add_log_search_url") {
        let base = options.kibana.as_deref().unwrap_or(DEFAULT_KIBANA);
        out.push_str(&format!("search kibana {}\n", quoted(base)));
    }

    if let Some(labels) = config.get("default_label").and_then(Value::as_array) {
        out.push_str("\n# default_label\n");
        for label in labels {
            let key = str_of(label, "key").unwrap_or_default();
            let value = label.get("value").cloned().unwrap_or(Value::Null);
            out.push_str(&format!("label {} = {value}\n", path(&key)));
        }
    }
    if !transforms.is_empty() {
        out.push_str("\n# transform\n");
    }
    for transform in transforms {
        let key = str_of(transform, "key").unwrap_or_default();
        let value = transform.get("value").cloned().unwrap_or(Value::Null);
        match kind(transform).as_str() {
            "add_dynamic_tag" => {
                let text = match value {
                    Value::String(text) => text,
                    _ => String::new(),
                };
                out.push_str(&format!("tag add {} = {}\n", path(&key), quoted(&text)));
            }
            "remove_dynamic_tag" => out.push_str(&format!("tag remove {}\n", path(&key))),
            _ => {
                let field = value.as_str().unwrap_or("event_uuid");
                let from = if field == "event_uuid" {
                    out.push_str(
                        "# Armor's \"event_uuid\" is the raw event's id, which its payloads carry as eventId.\n",
                    );
                    "eventId".to_string()
                } else {
                    path(field)
                };
                out.push_str(&format!("url {} from {from}\n", path(&key)));
            }
        }
    }
    out
}

/// An Armor key (`idx`, `[event].provider_id`, `a.b-c`) as an `.xf` path:
/// dots separate keys, and `[key]` is Armor's notation for `key`. [`Path`]'s
/// `Display` writes it, quoting what is not a plain name, in a form that both
/// a statement's target and `url … from` accept.
fn path(key: &str) -> String {
    let segments = key.split('.').map(|part| {
        let part = part
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .unwrap_or(part);
        Segment::Key(part.to_string())
    });
    Path(segments.collect()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_paths_that_parse() {
        assert_eq!(path("idx"), "idx");
        assert_eq!(path("[event].provider_id"), "event.provider_id");
        assert_eq!(path("a.b-c"), "a.\"b-c\"");
        assert_eq!(path("detail-type"), "[\"detail-type\"]");
        assert_eq!(path("null"), "[\"null\"]");
        for key in [
            "idx",
            "[event].provider_id",
            "a.b-c",
            "detail-type",
            "x y.z",
        ] {
            let source = format!("tag remove {}\nurl l from {}\n", path(key), path(key));
            assert!(crate::syntax::parse(&source).is_ok(), "{source}");
        }
    }
}
