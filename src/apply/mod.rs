//! Stage 3, apply: [`Plan`] × record → zero or more output records.
//!
//! Steps run top to bottom. `drop` ends a record's run; `tag remove` paths are
//! removed after every step has run, so no later step can bring a removed key
//! back. In format `splunk` the result is wrapped as a HEC event at the end
//! ([`crate::write::hec`]).

mod condition;
mod path;

use std::borrow::Cow;

use serde_json::Value;

pub use path::kind_with_article;

use crate::compile::{EventType, Expr, Format, HecSlot, Origin, Plan, Step};
use crate::write::hec::HecParts;

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
#[derive(Default)]
struct Run {
    hec: HecParts,
    /// Removal ids marked by `tag remove` steps.
    removals: Vec<usize>,
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
    if let Some(events) = &plan.events {
        if !EventType::of(&record).is_some_and(|t| events.contains(&t)) {
            return Ok(Outcome::Dropped);
        }
    }
    let mut run = Run::default();
    if let Flow::Drop = steps(plan, &plan.steps, &mut record, &mut run)? {
        return Ok(Outcome::Dropped);
    }
    run.removals.sort_unstable();
    run.removals.dedup();
    // Remove from the last id back, so array indexes of earlier removals still hold.
    for id in run.removals.iter().rev() {
        plan.removals[*id].remove(&mut record);
    }
    Ok(Outcome::Emit(match plan.format {
        Format::Default => record,
        Format::Splunk => run.hec.wrap(record, plan.has_hec_time),
    }))
}

fn steps(
    plan: &Plan,
    steps: &[Step],
    record: &mut Value,
    run: &mut Run,
) -> Result<Flow, RecordError> {
    for step in steps {
        if let Flow::Drop = self::step(plan, step, record, run)? {
            return Ok(Flow::Drop);
        }
    }
    Ok(Flow::Continue)
}

fn step(plan: &Plan, step: &Step, record: &mut Value, run: &mut Run) -> Result<Flow, RecordError> {
    match step {
        Step::Set {
            target,
            value,
            origin,
        } => {
            if let Some(value) = evaluate(plan, value, record, *origin)? {
                target
                    .set(record, value)
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Remove(ids) => run.removals.extend_from_slice(ids),
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
            if let Some(value) = evaluate(plan, value, record, *origin)? {
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
    }
    Ok(Flow::Continue)
}

/// The value an expression gives for this record; `None` for a missing path.
fn evaluate(
    plan: &Plan,
    expr: &Expr,
    record: &mut Value,
    origin: Origin,
) -> Result<Option<Value>, RecordError> {
    Ok(match expr {
        Expr::Literal(value) => Some(value.clone()),
        Expr::Path(path) => path.get(record).cloned(),
        Expr::Template(id) => Some(Value::String(
            plan.templates
                .render(*id, record)
                .map_err(|reason| fail(origin, reason))?,
        )),
    })
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
