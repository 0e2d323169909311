//! The Splunk HTTP Event Collector envelope.
//!
//! An event is `{"time", "host", "source", "sourcetype", "index", "event", "fields"}`
//! with only the keys that are set, `sourcetype` `_json` unless given. Splunk
//! rejects what it does not document (error 15, "Invalid data format"), so:
//! `time` is epoch seconds as a plain decimal with at most millisecond
//! precision (`1590673764.004`, never `1.59E9`); envelope keys are strings;
//! `fields` is flat, each value a string or an array of strings.

use serde_json::{Map, Number, Value};

use crate::compile::HecSlot;
use crate::limits::{deeper_than, MAX_VALUE_DEPTH};

/// The envelope values one record's `hec` statements have set.
#[derive(Debug, Default)]
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

/// Epoch time in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    millis: i64,
}

impl HecParts {
    /// Sets one envelope key from a value, converting it the way Splunk needs.
    pub fn set(&mut self, slot: &HecSlot, value: Value) -> Result<(), String> {
        let name = match slot {
            HecSlot::Time => {
                self.time = Some(Time::from_value(&value)?.for_hec()?);
                self.time_stated = true;
                return Ok(());
            }
            HecSlot::Field(name) => {
                if let Some(value) = field_value(name, value)? {
                    self.fields.insert(name.clone(), value);
                }
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

    pub fn clear_time(&mut self) {
        self.time = None;
        self.time_stated = true;
    }

    /// Wraps `record` as the event. When no `hec time` statement ran for it,
    /// the time is the record's `startTime`, as Armor does (one that is not a
    /// time is left out; one before 1970 is an error, as for `hec time`).
    /// Splunk refuses an empty event (code 13, "Event field cannot be blank"),
    /// so a record left with no keys is an error too.
    pub fn wrap(self, record: Value) -> Result<Value, String> {
        if record.as_object().is_some_and(Map::is_empty) {
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
        let mut envelope = Map::new();
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
                crate::apply::kind_with_article(&other)
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
                    crate::apply::kind_with_article(&other)
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

impl Time {
    /// Epoch milliseconds.
    pub fn millis(self) -> i64 {
        self.millis
    }

    /// Numbers at or above 10^11 are taken as milliseconds, at or above 10^14
    /// as microseconds and at or above 10^17 as nanoseconds; smaller ones as
    /// seconds. Strings are RFC 3339 timestamps or such numbers written as text.
    pub fn from_value(value: &Value) -> Result<Time, String> {
        match value {
            Value::Number(n) => {
                Time::from_number(n).ok_or_else(|| format!("time {n} is out of range"))
            }
            Value::String(text) => Time::from_text(text),
            other => Err(format!(
                "time must be epoch seconds, epoch milliseconds or an RFC 3339 string, not {}",
                crate::apply::kind_with_article(other)
            )),
        }
    }

    fn from_number(n: &Number) -> Option<Time> {
        if let Some(i) = n.as_i64() {
            let magnitude = i.unsigned_abs();
            let millis = if magnitude >= 100_000_000_000_000_000 {
                i / 1_000_000
            } else if magnitude >= 100_000_000_000_000 {
                i / 1_000
            } else if magnitude >= 100_000_000_000 {
                i
            } else {
                i.checked_mul(1000)?
            };
            return Some(Time { millis });
        }
        let f = n.as_f64()?;
        let magnitude = f.abs();
        let millis = if magnitude >= 1e17 {
            f / 1e6
        } else if magnitude >= 1e14 {
            f / 1e3
        } else if magnitude >= 1e11 {
            f
        } else {
            f * 1e3
        };
        // Truncate toward negative infinity, to whole milliseconds.
        let millis = millis.floor();
        (millis.is_finite() && millis.abs() < 9.0e15).then_some(Time {
            millis: millis as i64,
        })
    }

    fn from_text(text: &str) -> Result<Time, String> {
        let trimmed = text.trim();
        if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(trimmed) {
            return Time::from_number(&n).ok_or_else(|| format!("time {n} is out of range"));
        }
        let parsed =
            time::OffsetDateTime::parse(trimmed, &time::format_description::well_known::Rfc3339)
                .map_err(|_| {
                    format!("cannot read {text:?} as epoch seconds, epoch milliseconds or RFC 3339")
                })?;
        let millis = parsed.unix_timestamp_nanos().div_euclid(1_000_000);
        i64::try_from(millis)
            .map(|millis| Time { millis })
            .map_err(|_| format!("time {text:?} is out of range"))
    }

    /// This time, if HEC takes it: Splunk's `time` is epoch seconds from 1970
    /// on (the `splunk-hec-event` schema's minimum is 0).
    fn for_hec(self) -> Result<Time, String> {
        if self.millis < 0 {
            let seconds = Time {
                millis: self.millis,
            }
            .to_json();
            return Err(format!(
                "time {seconds} (epoch seconds) is before 1970; Splunk HEC takes no negative time"
            ));
        }
        Ok(self)
    }

    /// Epoch seconds: an integer when whole, else a decimal with up to three
    /// fraction digits. Both print as plain decimals (never an exponent).
    pub fn to_json(self) -> Value {
        if self.millis % 1000 == 0 {
            Value::Number((self.millis / 1000).into())
        } else {
            // At most 16 significant digits, which an f64 holds exactly enough
            // that its shortest form is these very digits.
            let seconds = self.millis as f64 / 1000.0;
            Number::from_f64(seconds).map_or(Value::Null, Value::Number)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

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
            .wrap(nested(MAX_VALUE_DEPTH - 1))
            .is_ok());
        let error = HecParts::default()
            .wrap(nested(MAX_VALUE_DEPTH))
            .unwrap_err();
        assert!(error.contains("nest deeper than 127 levels"), "{error}");
    }

    fn seconds(value: Value) -> String {
        Time::from_value(&value).unwrap().to_json().to_string()
    }

    #[test]
    fn reads_every_documented_form() {
        assert_eq!(seconds(json!(1590673764)), "1590673764");
        assert_eq!(seconds(json!(1590673764004_i64)), "1590673764.004");
        assert_eq!(seconds(json!(1590673764.5)), "1590673764.5");
        assert_eq!(seconds(json!("2020-05-28T13:49:24.004Z")), "1590673764.004");
        assert_eq!(seconds(json!("2020-05-28T15:49:24+02:00")), "1590673764");
        assert_eq!(seconds(json!("1590673764")), "1590673764");
        assert!(Time::from_value(&json!("yesterday")).is_err());
        assert!(Time::from_value(&json!({"t": 1})).is_err());
    }

    proptest! {
        #[test]
        fn millisecond_times_print_as_plain_decimals(millis in -62_135_596_800_000_i64..253_402_300_799_999) {
            let text = Time { millis }.to_json().to_string();
            prop_assert!(!text.contains(['e', 'E']), "{}", text);
            let back: f64 = text.parse().unwrap();
            prop_assert_eq!((back * 1000.0).round() as i64, millis);
        }

        #[test]
        fn rfc3339_and_epoch_milliseconds_agree(millis in 100_000_000_000_i64..100_000_000_000_000) {
            let date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000).unwrap();
            let text = date.format(&time::format_description::well_known::Rfc3339).unwrap();
            prop_assert_eq!(Time::from_value(&json!(text)).unwrap(), Time::from_value(&json!(millis)).unwrap());
        }
    }
}
