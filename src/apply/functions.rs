//! The functions of [`crate::compile::functions::FUNCTIONS`] applied to a
//! record's values. Each takes values that are there (a missing or null
//! argument makes the call missing before it gets here) and gives a value or
//! the reason it cannot. Text they make is bounded by a limit checked as it
//! grows, so that no call (nor a call of a call) builds more than the limit.

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::expr::text_of;
use crate::compile::{Group, TextFunction};
use crate::value::{kind_with_article, truncate};

/// The functions of [`TextFunction`], with the most bytes of text one may make.
pub(super) struct Text {
    pub limit: usize,
}

impl Text {
    pub fn call(&self, function: TextFunction, args: Vec<Value>) -> Result<Value, String> {
        let name = format!("{function:?}").to_lowercase();
        let text = |at: usize| scalar_text(&args[at], &name);
        let made = match function {
            TextFunction::Lower => Value::String(text(0)?.to_lowercase()),
            TextFunction::Upper => Value::String(text(0)?.to_uppercase()),
            TextFunction::Trim => Value::String(text(0)?.trim().to_string()),
            TextFunction::Split => split(&text(0)?, &text(1)?),
            TextFunction::Join => Value::String(self.join(&args[0], &text(1)?)?),
            TextFunction::Replace => {
                Value::String(self.replace(&text(0)?, &text(1)?, &text(2)?)?)
            }
            TextFunction::Truncate => Value::String(truncate(&text(0)?, count(&args[1], &name)?)),
            TextFunction::ToJson => Value::String(args[0].to_string()),
            TextFunction::ParseJson => parse_json(&text(0)?)?,
            TextFunction::Sha256 => {
                let digest = Sha256::digest(text_of(&args[0]).unwrap_or_default().as_bytes());
                Value::String(digest.iter().map(|b| format!("{b:02x}")).collect())
            }
            TextFunction::Redact => {
                let keep = match args.get(1) {
                    Some(keep) => count(keep, &name)?,
                    None => 0,
                };
                Value::String(redact(&text(0)?, keep))
            }
        };
        match &made {
            Value::String(made) if made.len() > self.limit => Err(self.over(&name)),
            _ => Ok(made),
        }
    }

    fn join(&self, items: &Value, separator: &str) -> Result<String, String> {
        let items = match items {
            Value::Array(items) => items.as_slice(),
            single => std::slice::from_ref(single),
        };
        let mut joined = String::new();
        for text in items.iter().filter_map(text_of) {
            if !joined.is_empty() {
                joined.push_str(separator);
            }
            joined.push_str(&text);
            if joined.len() > self.limit {
                return Err(self.over("join"));
            }
        }
        Ok(joined)
    }

    fn replace(&self, text: &str, from: &str, to: &str) -> Result<String, String> {
        if from.is_empty() {
            return Ok(text.to_string());
        }
        // Known before building it: replacing can multiply the text's length.
        let matches = text.matches(from).count();
        let length =
            (text.len() - matches * from.len()).saturating_add(matches.saturating_mul(to.len()));
        if length > self.limit {
            return Err(self.over("replace"));
        }
        Ok(text.replace(from, to))
    }

    fn over(&self, name: &str) -> String {
        format!(
            "{name}: the text would be over the limit of {} bytes (--template-output)",
            self.limit
        )
    }
}

/// A scalar's text; an object or array is not text to work on.
fn scalar_text(value: &Value, function: &str) -> Result<String, String> {
    match value {
        Value::Array(_) | Value::Object(_) => Err(format!(
            "{function}: {} is not text",
            kind_with_article(value)
        )),
        other => Ok(text_of(other).unwrap_or_default()),
    }
}

/// A count (a length, characters to keep): a non-negative integer, or text of one.
fn count(value: &Value, function: &str) -> Result<usize, String> {
    let number = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    };
    number
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .ok_or_else(|| format!("{function}: {value} is not a count (a whole number, 0 or more)"))
}

/// JSON text's value, its numbers as written (`1E400` stays `1E400`).
fn parse_json(text: &str) -> Result<Value, String> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|error| format!("parse_json: not JSON ({error})"))?;
    if crate::number::has_exponent(&value) {
        crate::number::restore_exponents(text, &mut value);
    }
    Ok(value)
}

fn split(text: &str, separator: &str) -> Value {
    let parts: Vec<Value> = if separator.is_empty() {
        text.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        text.split(separator)
            .map(|part| Value::String(part.to_string()))
            .collect()
    };
    Value::Array(parts)
}

fn redact(text: &str, keep: usize) -> String {
    let length = text.chars().count();
    let hidden = length.saturating_sub(keep);
    let mut redacted = "*".repeat(hidden);
    redacted.extend(text.chars().skip(hidden));
    redacted
}

/// `regex_capture`: the group's text in the first match.
pub(super) fn capture(regex: &Regex, group: &Group, text: &str) -> Option<String> {
    let captures = regex.captures(text)?;
    let found = match group {
        Group::Index(index) => captures.get(*index),
        Group::Name(name) => captures.name(name),
    };
    found.map(|m| m.as_str().to_string())
}

/// `regex_replace`: every match replaced, the text checked against `limit`
/// after each, so that a replacement longer than its match cannot build
/// text without bound.
pub(super) fn replace_all(
    regex: &Regex,
    text: &str,
    replacement: &str,
    limit: usize,
) -> Result<String, String> {
    let mut replaced = String::with_capacity(text.len());
    let mut last = 0;
    for captures in regex.captures_iter(text) {
        let Some(whole) = captures.get(0) else {
            continue;
        };
        replaced.push_str(&text[last..whole.start()]);
        captures.expand(replacement, &mut replaced);
        last = whole.end();
        if replaced.len() > limit {
            return Err(format!(
                "regex_replace: the text would be over the limit of {limit} bytes (--template-output)"
            ));
        }
    }
    replaced.push_str(&text[last..]);
    if replaced.len() > limit {
        return Err(format!(
            "regex_replace: the text would be over the limit of {limit} bytes (--template-output)"
        ));
    }
    Ok(replaced)
}
