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

/// How deep blocks (`when`, `for`, `{ … }`) and brackets (`(`, `[`, `{` in
/// expressions) may nest in a `.xf` file. Deeper is a load error (E0004).
pub const MAX_TRANSFORM_NESTING: usize = 64;

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
}

impl Limits {
    /// 5,000,000 units of fuel (well under a second of work on this
    /// project's machine), 1 MiB of text per template, 1,000,000 statements,
    /// 10 seconds.
    pub const DEFAULT: Limits = Limits {
        template_fuel: 5_000_000,
        template_output: 1024 * 1024,
        statements: 1_000_000,
        record_millis: 10_000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
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
