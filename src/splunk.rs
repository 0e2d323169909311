//! The Splunk HTTP Event Collector envelope: its keys (the slots `hec`
//! statements write) and Splunk's rules for their values, in one place that
//! compile (a literal checked at load), apply (values set per record, the
//! envelope built) and write (events stacked into a batch) share.
//!
//! An event is `{"time", "host", "source", "sourcetype", "index", "event", "fields"}`
//! with only the keys that are set, `sourcetype` `_json` unless given. Splunk
//! rejects what it does not document (error 15, "Invalid data format"), so:
//! `time` is epoch seconds as a plain decimal with at most millisecond
//! precision (`1590673764.004`, never `1.59E9`); envelope keys are strings;
//! `fields` is flat, each value a string or an array of strings.

use serde_json::{Map, Value};

use crate::limits::{deeper_than, MAX_VALUE_DEPTH};
use crate::value::{kind_with_article, Time};

/// A key of the Splunk HEC envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HecSlot {
    Time,
    Host,
    Source,
    Sourcetype,
    Index,
    /// `fields.NAME`: an indexed field.
    Field(String),
}

impl std::fmt::Display for HecSlot {
    /// The key as a `hec` statement names it: `time`, `fields.severity`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HecSlot::Time => f.write_str("time"),
            HecSlot::Host => f.write_str("host"),
            HecSlot::Source => f.write_str("source"),
            HecSlot::Sourcetype => f.write_str("sourcetype"),
            HecSlot::Index => f.write_str("index"),
            HecSlot::Field(name) => write!(f, "fields.{name}"),
        }
    }
}

/// The envelope keys a `hec` statement may name (besides `fields.NAME`).
pub const ENVELOPE_KEYS: &[&str] = &["time", "host", "source", "sourcetype", "index"];

impl HecSlot {
    /// The envelope key of this name, if HEC has one.
    pub fn envelope(name: &str) -> Option<HecSlot> {
        Some(match name {
            "time" => HecSlot::Time,
            "host" => HecSlot::Host,
            "source" => HecSlot::Source,
            "sourcetype" => HecSlot::Sourcetype,
            "index" => HecSlot::Index,
            _ => return None,
        })
    }

    /// Whether Splunk can take this constant here, as far as its kind tells:
    /// objects and arrays never, but an indexed field takes an array of scalars.
    /// (Scalars are converted per record, see [`HecParts::set`].)
    pub fn takes_literal(&self, literal: &Value) -> bool {
        match literal {
            Value::Object(_) => false,
            Value::Array(items) => {
                matches!(self, HecSlot::Field(_))
                    && items.iter().all(|i| !i.is_object() && !i.is_array())
            }
            _ => true,
        }
    }
}

/// The envelope values one record's `hec` statements have set.
#[derive(Debug, Default, Clone)]
pub struct HecParts {
    time: Option<Time>,
    /// Set when a `hec time` statement ran: its time (or none) rather than the default.
    time_stated: bool,
    host: Option<String>,
    source: Option<String>,
    sourcetype: Option<String>,
    index: Option<String>,
    fields: Map<String, Value>,
}

impl HecParts {
    /// Sets one envelope key from a value, converting it the way Splunk needs.
    pub fn set(&mut self, slot: &HecSlot, value: Value) -> Result<(), String> {
        let name = match slot {
            HecSlot::Time => {
                // Null or empty text (a template of a missing field) is no time,
                // as for every slot: `time` is left out and Splunk uses the arrival time.
                self.time = match &value {
                    Value::Null => None,
                    Value::String(text) if text.is_empty() => None,
                    value => Some(Time::from_value(value)?.for_hec()?),
                };
                self.time_stated = true;
                return Ok(());
            }
            HecSlot::Field(name) => {
                match field_value(name, value)? {
                    Some(value) => self.fields.insert(name.clone(), value),
                    None => self.fields.shift_remove(name),
                };
                return Ok(());
            }
            HecSlot::Host => "host",
            HecSlot::Source => "source",
            HecSlot::Sourcetype => "sourcetype",
            HecSlot::Index => "index",
        };
        let text = envelope_text(name, value)?;
        let slot_value = match slot {
            HecSlot::Host => &mut self.host,
            HecSlot::Source => &mut self.source,
            HecSlot::Sourcetype => &mut self.sourcetype,
            _ => &mut self.index,
        };
        *slot_value = text;
        Ok(())
    }

    /// The value a `hec` statement has set for a key, as the envelope would
    /// hold it (`time` as HEC seconds), for traces; `None` when unset.
    pub fn get(&self, slot: &HecSlot) -> Option<Value> {
        let text = |text: &Option<String>| text.clone().map(Value::String);
        match slot {
            HecSlot::Time => self.time.map(Time::to_json),
            HecSlot::Host => text(&self.host),
            HecSlot::Source => text(&self.source),
            HecSlot::Sourcetype => text(&self.sourcetype),
            HecSlot::Index => text(&self.index),
            HecSlot::Field(name) => self.fields.get(name).cloned(),
        }
    }

    /// Leaves a key out, as a `hec` statement whose value is missing or null
    /// does: whatever an earlier statement set for it goes, and for `time`
    /// the record's `startTime` is not used either.
    pub fn clear(&mut self, slot: &HecSlot) {
        match slot {
            HecSlot::Time => {
                self.time = None;
                self.time_stated = true;
            }
            HecSlot::Host => self.host = None,
            HecSlot::Source => self.source = None,
            HecSlot::Sourcetype => self.sourcetype = None,
            HecSlot::Index => self.index = None,
            HecSlot::Field(name) => {
                self.fields.shift_remove(name);
            }
        }
    }

    /// Wraps `record` as the event. When no `hec time` statement ran for it,
    /// the time is the record's `startTime`, as Armor does (one that is not a
    /// time is left out; one before 1970 is an error, as for `hec time`).
    /// Splunk refuses an empty event (code 13, "Event field cannot be blank"),
    /// so a record left with no keys is an error too: unless `kept_elsewhere`
    /// says it has fields the run did not see, kept outside it as bytes
    /// ([`crate::value::untouched`]), which the writer adds back.
    pub fn wrap(self, record: Value, kept_elsewhere: bool) -> Result<Value, String> {
        if !kept_elsewhere && record.as_object().is_some_and(Map::is_empty) {
            return Err(
                "the event has no keys left, and Splunk HEC refuses a blank event (code 13)"
                    .to_string(),
            );
        }
        // The envelope holds the record one level down: xf writes nothing it cannot read back.
        if deeper_than(&record, MAX_VALUE_DEPTH - 1) {
            return Err(format!(
                "the HEC envelope would nest deeper than {MAX_VALUE_DEPTH} levels, xf's limit"
            ));
        }
        let time = match self.time {
            Some(time) => Some(time),
            None if !self.time_stated => match record.get("startTime").map(Time::from_value) {
                Some(Ok(time)) => Some(
                    time.for_hec()
                        .map_err(|reason| format!("startTime as the HEC time: {reason}"))?,
                ),
                _ => None,
            },
            None => None,
        };
        // Room for every key an envelope can have.
        let mut envelope = Map::with_capacity(7);
        if let Some(time) = time {
            envelope.insert("time".into(), time.to_json());
        }
        for (key, value) in [("host", self.host), ("source", self.source)] {
            if let Some(value) = value {
                envelope.insert(key.into(), Value::String(value));
            }
        }
        let sourcetype = self.sourcetype.unwrap_or_else(|| "_json".to_string());
        envelope.insert("sourcetype".into(), Value::String(sourcetype));
        if let Some(index) = self.index {
            envelope.insert("index".into(), Value::String(index));
        }
        envelope.insert("event".into(), record);
        if !self.fields.is_empty() {
            envelope.insert("fields".into(), Value::Object(self.fields));
        }
        Ok(Value::Object(envelope))
    }
}

/// An envelope string; an empty one is left out (Splunk would reject it).
fn envelope_text(name: &str, value: Value) -> Result<Option<String>, String> {
    let text = match value {
        Value::Null => return Ok(None),
        Value::String(text) => text,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => {
            return Err(format!(
                "hec {name} must be a string, not {}",
                kind_with_article(&other)
            ))
        }
    };
    Ok((!text.is_empty()).then_some(text))
}

/// An indexed field's value: a string, or an array of strings; numbers and
/// booleans are written as strings; null leaves the field out.
fn field_value(name: &str, value: Value) -> Result<Option<Value>, String> {
    fn scalar(name: &str, value: Value) -> Result<Option<String>, String> {
        Ok(match value {
            Value::Null => None,
            Value::String(text) => Some(text),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                return Err(format!(
                    "indexed field {name} must be a string or an array of strings, not {} inside",
                    kind_with_article(&other)
                ))
            }
        })
    }
    match value {
        Value::Array(items) => {
            let mut strings = Vec::with_capacity(items.len());
            for item in items {
                if let Some(text) = scalar(name, item)? {
                    strings.push(Value::String(text));
                }
            }
            Ok(Some(Value::Array(strings)))
        }
        Value::Object(_) => Err(format!(
            "indexed field {name} must be a string or an array of strings, not an object (Splunk's fields are flat)"
        )),
        other => Ok(scalar(name, other)?.map(Value::String)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The envelope adds a level: a record at the depth limit cannot be wrapped.
    #[test]
    fn a_record_at_the_depth_limit_is_not_wrapped() {
        let nested = |depth: usize| {
            let text = format!(
                "{{\"a\":{}{}}}",
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            );
            serde_json::from_str::<Value>(&text).unwrap()
        };
        assert!(HecParts::default()
            .wrap(nested(MAX_VALUE_DEPTH - 1), false)
            .is_ok());
        let error = HecParts::default()
            .wrap(nested(MAX_VALUE_DEPTH), false)
            .unwrap_err();
        assert!(error.contains("nest deeper than 127 levels"), "{error}");
    }
}
