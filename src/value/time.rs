//! Times in records: epoch seconds, milliseconds, microseconds or
//! nanoseconds, or RFC 3339 text, read as one [`Time`].

use serde_json::{Number, Value};

/// Epoch time in whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    millis: i64,
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
                super::kind_with_article(other)
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
    pub fn for_hec(self) -> Result<Time, String> {
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

/// A time format, parsed when the transform loads (a function's literal
/// argument) or when a template renders (the `format_time` filter's).
pub enum TimeFormat {
    Rfc3339,
    Described(time::format_description::OwnedFormatItem),
}

impl TimeFormat {
    /// `rfc3339`, or a `time` crate format description (`[year]-[month]-[day]`).
    pub fn parse(text: &str) -> Result<TimeFormat, String> {
        if text.eq_ignore_ascii_case("rfc3339") {
            return Ok(TimeFormat::Rfc3339);
        }
        time::format_description::parse_owned::<2>(text)
            .map(TimeFormat::Described)
            .map_err(|error| error.to_string())
    }
}

/// `parse_time`: epoch milliseconds of the text in `format`, UTC unless the
/// format has an offset; a date alone is its midnight.
pub fn parse_time(text: &str, format: &TimeFormat) -> Result<i64, String> {
    use time::{Date, OffsetDateTime, PrimitiveDateTime};
    let time = match format {
        TimeFormat::Rfc3339 => {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        }
        TimeFormat::Described(items) => OffsetDateTime::parse(text, items)
            .or_else(|_| PrimitiveDateTime::parse(text, items).map(|t| t.assume_utc()))
            .or_else(|_| Date::parse(text, items).map(|d| d.midnight().assume_utc())),
    }
    .map_err(|error| format!("{text:?} does not fit the format ({error})"))?;
    i64::try_from(time.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| format!("{text:?} is out of range"))
}

/// `format_time` (the function and the template filter): a time `epoch_ms`
/// reads, as text in `format`, in UTC.
pub fn format_time(value: &Value, format: &TimeFormat) -> Result<String, String> {
    let millis = Time::from_value(value)?.millis();
    let time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .map_err(|error| error.to_string())?;
    match format {
        TimeFormat::Rfc3339 => time.format(&time::format_description::well_known::Rfc3339),
        TimeFormat::Described(items) => time.format(items),
    }
    .map_err(|error| error.to_string())
}

/// The clock's epoch milliseconds, for `now()` in expressions and templates
/// alike when the run has no fixed time.
pub fn clock_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

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
