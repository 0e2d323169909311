//! Stage 3, apply: [`Plan`] × record → zero or more output records.
//!
//! Steps run top to bottom. `drop` ends a record's run; `tag remove` paths are
//! removed after every step has run, so no later step can bring a removed key
//! back. In format `splunk` the result is wrapped as a HEC event at the end
//! ([`crate::write::hec`]).

mod condition;
mod expr;
mod path;

use std::borrow::Cow;

use serde_json::Value;

pub use path::kind_with_article;

use crate::compile::{EventType, Format, HecSlot, Origin, Plan, Step};
use crate::syntax::ast::Path;
use crate::write::hec::HecParts;
use expr::evaluate;

/// Why one record could not be transformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The statement that failed (`tag add`), and its line in the `.xf`.
    pub origin: Option<Origin>,
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.origin {
            Some(origin) => write!(
                f,
                "{} (line {}): {}",
                origin.statement, origin.line, self.reason
            ),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RecordError {}

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The record, transformed (and in format `splunk`, wrapped).
    Emit(Value),
    /// `events` or `drop` filtered it out.
    Dropped,
}

/// State of one record's run besides the record itself.
struct Run<'p> {
    hec: HecParts,
    /// Paths marked by `tag remove` steps (of this plan or an included one), in order.
    removals: Vec<&'p Path>,
    /// What `now()` gives when the clock is fixed.
    now: Option<i64>,
}

enum Flow {
    Continue,
    Drop,
}

/// Runs `plan` on one record.
pub fn apply(plan: &Plan, mut record: Value) -> Result<Outcome, RecordError> {
    if !record.is_object() {
        return Err(RecordError {
            origin: None,
            reason: format!(
                "a record is a JSON object, not {}",
                kind_with_article(&record)
            ),
        });
    }
    let mut run = Run {
        hec: HecParts::default(),
        removals: Vec::new(),
        now: plan.now,
    };
    if let Flow::Drop = whole(plan, &mut record, &mut run)? {
        return Ok(Outcome::Dropped);
    }
    path::remove_all(run.removals.iter().copied(), &mut record);
    Ok(Outcome::Emit(match plan.format {
        Format::Default => record,
        Format::Splunk => run.hec.wrap(record).map_err(|reason| RecordError {
            origin: None,
            reason,
        })?,
    }))
}

/// A plan's `events` filter, then its steps: the whole transform, or an included one.
fn whole<'p>(plan: &'p Plan, record: &mut Value, run: &mut Run<'p>) -> Result<Flow, RecordError> {
    if let Some(events) = &plan.events {
        if !EventType::of(record).is_some_and(|t| events.contains(&t)) {
            return Ok(Flow::Drop);
        }
    }
    steps(plan, &plan.steps, record, run)
}

fn steps<'p>(
    plan: &'p Plan,
    steps: &'p [Step],
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    for step in steps {
        if let Flow::Drop = self::step(plan, step, record, run)? {
            return Ok(Flow::Drop);
        }
    }
    Ok(Flow::Continue)
}

fn step<'p>(
    plan: &'p Plan,
    step: &'p Step,
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    match step {
        Step::Set {
            target,
            value,
            origin,
        } => {
            if let Some(value) = evaluate(plan, value, record, run.now, *origin)? {
                target
                    .set(record, value)
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Remove(ids) => run
            .removals
            .extend(ids.iter().map(|id| &plan.removals[*id])),
        Step::Url {
            target,
            from,
            field,
            search,
            origin,
        } => {
            if let Some(link) = link(plan, from, field, *search, record, *origin)? {
                target
                    .set(record, Value::String(link))
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Drop(condition) => {
            if condition.as_ref().is_none_or(|c| c.holds(record)) {
                return Ok(Flow::Drop);
            }
        }
        Step::When {
            condition,
            then,
            otherwise,
        } => {
            let branch = if condition.holds(record) {
                then
            } else {
                otherwise
            };
            return steps(plan, branch, record, run);
        }
        Step::Hec {
            slot,
            value,
            origin,
        } => {
            if let Some(value) = evaluate(plan, value, record, run.now, *origin)? {
                run.hec
                    .set(slot, value)
                    .map_err(|reason| fail(*origin, reason))?;
            } else if *slot == HecSlot::Time {
                run.hec.clear_time();
            }
        }
        Step::Validate { schema, origin } => {
            if let Some(reason) = plan.schemas[*schema].check(record) {
                return Err(fail(*origin, reason));
            }
        }
        Step::Append {
            target,
            value,
            origin,
        } => {
            if let Some(value) = evaluate(plan, value, record, run.now, *origin)? {
                append(target, record, value).map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Rename { from, to, origin } => {
            if let Some(value) = from.get(record).cloned() {
                from.remove(record);
                to.set(record, value)
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Nest { target, origin } => {
            let original = std::mem::replace(record, Value::Object(serde_json::Map::new()));
            // A fresh object takes any path of keys; an index fails, and says so.
            target
                .set(record, original)
                .map_err(|reason| fail(*origin, reason))?;
        }
        Step::For {
            name,
            over,
            body,
            origin,
        } => return for_each(plan, name, over, body, *origin, record, run),
        Step::Fail { message, origin } => {
            let reason = match evaluate(plan, message, record, run.now, *origin)? {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => "failed".to_string(),
            };
            return Err(fail(*origin, reason));
        }
        Step::Include { plan, file, origin } => {
            return whole(plan, record, run).map_err(|error| RecordError {
                origin: Some(*origin),
                reason: format!("{file}: {error}"),
            })
        }
    }
    Ok(Flow::Continue)
}

/// `append`: the array at `target` gets `value` at its end; a missing (or
/// null) target becomes a one-item array.
fn append(target: &Path, record: &mut Value, value: Value) -> Result<(), String> {
    if let Some(Value::Array(items)) = target.get_mut(record) {
        items.push(value);
        return Ok(());
    }
    match target.get(record) {
        None | Some(Value::Null) => target.set(record, Value::Array(vec![value])),
        Some(other) => Err(format!(
            "cannot append to {target}: it is {}, not an array",
            kind_with_article(other)
        )),
    }
}

/// `for NAME in PATH`: the body once per item. While it runs, the record's
/// top-level key NAME holds the item (a field of that name is hidden, and put
/// back after). A single value that is not an array counts as one item; a
/// missing or null one as none.
fn for_each<'p>(
    plan: &'p Plan,
    name: &str,
    over: &Path,
    body: &'p [Step],
    origin: Origin,
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    let items = match over.get(record) {
        None | Some(Value::Null) => return Ok(Flow::Continue),
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
    };
    let Value::Object(map) = record else {
        return Err(fail(origin, "the record is no longer an object".into()));
    };
    let hidden = map
        .keys()
        .position(|key| key == name)
        .and_then(|at| Some((at, map.shift_remove(name)?)));
    let mut flow = Ok(Flow::Continue);
    for item in items {
        if let Value::Object(map) = &mut *record {
            map.insert(name.to_string(), item);
        }
        flow = steps(plan, body, record, run);
        if !matches!(flow, Ok(Flow::Continue)) {
            break;
        }
    }
    if let Value::Object(map) = record {
        match hidden {
            Some((at, value)) => {
                map.shift_insert(at, name.to_string(), value);
            }
            None => {
                map.shift_remove(name);
            }
        }
    }
    flow
}

/// The search link for the value at `from`, if the record has a scalar there.
fn link(
    plan: &Plan,
    from: &crate::syntax::ast::Path,
    field: &str,
    search: usize,
    record: &Value,
    origin: Origin,
) -> Result<Option<String>, RecordError> {
    let value: Cow<'_, str> = match from.get(record) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => Cow::Borrowed(text),
        Some(scalar @ (Value::Number(_) | Value::Bool(_))) => Cow::Owned(scalar.to_string()),
        Some(other) => {
            return Err(fail(
                origin,
                format!(
                    "{field} is {}; a link searches for a string or number",
                    kind_with_article(other)
                ),
            ))
        }
    };
    plan.searches[search]
        .link(&plan.templates, field, &value)
        .map(Some)
        .map_err(|reason| fail(origin, reason))
}

fn fail(origin: Origin, reason: String) -> RecordError {
    RecordError {
        origin: Some(origin),
        reason,
    }
}
