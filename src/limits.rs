//! Limits that keep one record's work, and one transform's load, bounded.
//!
//! xf runs unattended on whatever a sender posts, so nothing a record holds
//! may take the process down, stall it or grow it without bound. Each limit
//! here has a default that no real payload comes near; a record that reaches
//! one is a record error (dead-lettered and counted, the stream goes on), and
//! a transform that reaches one at load is a diagnostic. The README's "Limits
//! and guarantees" lists them all.

/// How deep containers may nest in a value that xf reads, builds or writes:
/// serde_json's recursion limit of 128 counts the container it refuses, so
/// 127 levels parse and 128 do not. Built values share the limit, so xf
/// writes nothing it cannot read back.
pub const MAX_VALUE_DEPTH: usize = 127;

/// How deep blocks (`when`, `for`, `{ … }`), brackets (`(`, `[`, `{` in
/// expressions) and `not`s may nest in a `.xf` file. Deeper is a load error (E0004).
pub const MAX_TRANSFORM_NESTING: usize = 64;

/// How many `else when`s of `when … else when …` chains may be open at once
/// (a chain's branches nest in the grammar, one level each `else when`, and
/// a chain inside a branch adds to the chain around it). More is a load
/// error (E0004).
pub const MAX_WHEN_CHAIN: usize = 256;

/// Per-record limits, set when a transform loads ([`crate::LoadOptions::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// minijinja fuel for one rendering of a template: roughly one unit per
    /// instruction, plus the bytes and list slots it allocates. Bounds loops,
    /// `range`, `batch`, string repetition and the like.
    pub template_fuel: u64,
    /// The most text one rendering of a template may produce, in bytes.
    pub template_output: usize,
    /// The most statements run for one record, counting each pass through a
    /// `for` body and every statement of an include.
    pub statements: u64,
    /// The most time one record's work may take, in milliseconds: checked
    /// before each statement, so the most it can run over is one statement
    /// (whose templates are bounded by fuel).
    pub record_millis: u64,
    /// The most memory the values one record's statements build may take,
    /// in bytes as [`measure`] estimates them, counting every copy (`set`,
    /// `append`, `hec`): a loop that copies the record into itself would
    /// otherwise double it each pass.
    pub built_bytes: u64,
    /// The most records one record may become through `fan_out`: one per
    /// item, so a payload with a huge array cannot flood the output.
    pub outputs: u64,
}

impl Limits {
    /// 5,000,000 units of fuel (well under a second of work on this
    /// project's machine), 1 MiB of text per template, 1,000,000 statements,
    /// 10 seconds, 128 MiB of values built, 10,000 records out of one.
    pub const DEFAULT: Limits = Limits {
        template_fuel: 5_000_000,
        template_output: 1024 * 1024,
        statements: 1_000_000,
        record_millis: 10_000,
        built_bytes: 128 * 1024 * 1024,
        outputs: 10_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What [`measure`] counts for each value (scalar or container) besides its
/// text: about what one takes in memory, with its share of its container.
pub const VALUE_COST: u64 = 64;

/// A value's depth and estimated size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// Whether containers nest more than the `max` asked about.
    pub deeper: bool,
    /// [`VALUE_COST`] a value, plus the bytes of its strings, numbers' text
    /// and keys (counted only up to where it went too deep).
    pub bytes: u64,
}

/// Measures `value`: whether it nests more than `max` deep, and what it
/// takes. Iterative, like [`deeper_than`], and it stops where it goes too deep.
pub fn measure(value: &serde_json::Value, max: usize) -> Measure {
    use serde_json::Value;
    let text = |value: &Value| match value {
        Value::String(text) => text.len() as u64,
        Value::Number(number) => number.as_str().len() as u64,
        _ => 0,
    };
    let mut bytes = 0u64;
    let mut pending = vec![(value, 0usize)];
    while let Some((value, above)) = pending.pop() {
        bytes += VALUE_COST + text(value);
        match value {
            Value::Array(items) if above < max => {
                pending.extend(items.iter().map(|item| (item, above + 1)));
            }
            Value::Object(map) if above < max => {
                for (key, item) in map {
                    bytes += key.len() as u64;
                    pending.push((item, above + 1));
                }
            }
            Value::Array(_) | Value::Object(_) => {
                return Measure {
                    deeper: true,
                    bytes,
                }
            }
            _ => {}
        }
    }
    Measure {
        deeper: false,
        bytes,
    }
}

/// Whether containers nest more than `max` deep in `value` (a scalar is 0
/// deep, `[]` is 1). Iterative, so that it is safe on any value a library
/// caller hands in, and it stops at the first path that goes too deep.
pub fn deeper_than(value: &serde_json::Value, max: usize) -> bool {
    let mut pending = vec![(value, 0usize)];
    while let Some((value, above)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match value {
            serde_json::Value::Array(items) => Box::new(items.iter()),
            serde_json::Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if above + 1 > max {
            return true;
        }
        pending.extend(
            children
                .filter(|child| {
                    matches!(
                        child,
                        serde_json::Value::Array(_) | serde_json::Value::Object(_)
                    )
                })
                .map(|child| (child, above + 1)),
        );
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn measure_counts_depth_as_deeper_than_does() {
        for value in [
            json!(1),
            json!([]),
            json!([[1]]),
            json!({"a": {"b": [[]]}}),
            json!([1, [2, [3]]]),
        ] {
            for max in 0..5 {
                assert_eq!(
                    measure(&value, max).deeper,
                    deeper_than(&value, max),
                    "{value} {max}"
                );
            }
        }
    }

    #[test]
    fn measure_counts_values_and_their_text() {
        assert_eq!(measure(&json!(null), 9).bytes, VALUE_COST);
        assert_eq!(measure(&json!("abc"), 9).bytes, VALUE_COST + 3);
        assert_eq!(measure(&json!(1.25), 9).bytes, VALUE_COST + 4);
        assert_eq!(measure(&json!({"ab": [true]}), 9).bytes, 3 * VALUE_COST + 2);
    }
}
