//! Stage 3, apply, traced: what one record's run did, statement by statement.
//!
//! [`crate::Transform::apply_traced`] runs a record as
//! [`crate::Transform::apply_once`] does and also gives a [`Trace`]: each
//! statement that ran, in order, with where it is written, what it changed
//! (path, old → new), the condition that decided a `drop` or a `when` branch
//! and the values it read, the error that ended the record, and the time
//! each statement took. `xf run --trace` prints it; the playground shows it.
//!
//! A `Trace` is plain data: [`Trace::render`] gives the text `--trace` prints,
//! [`Trace::to_json`] one JSON object (fields documented there). Values are
//! shown as JSON text of at most [`VALUE_LIMIT`] bytes, so a trace of a large
//! record stays small. Without tracing, nothing here runs: the untraced path
//! checks one `Option` per statement.

use std::time::Instant;

use serde_json::{json, Map, Value};

use super::{condition, Flow, RecordError, Run};
use crate::compile::{Cond, Expr, Operand, Origin, Plan, Step};
use crate::diagnostic::Span;
use crate::splunk::HecSlot;
use crate::value::Path;

/// The most bytes of JSON text a value is shown with in a trace (a change's
/// old and new value, a value a condition read); a longer one is cut there
/// (at a character boundary) and marked shortened.
pub const VALUE_LIMIT: usize = 200;

/// The most bytes of source text a traced statement or condition is shown with.
pub const TEXT_LIMIT: usize = 120;

/// What one record's run did: every statement that ran, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// The statements that ran, in the order they ran (a `when` before the
    /// statements of the branch it took, an `include` before its file's).
    pub steps: Vec<TraceStep>,
    /// The statements that ran after the first [`MAX_STEPS`]: counted, not
    /// traced, so that a loop of loops cannot fill memory with its trace.
    pub omitted: usize,
    /// How the record's run ended.
    pub end: TraceEnd,
}

/// How many statements a record's trace shows; the rest are counted in
/// [`Trace::omitted`].
pub const MAX_STEPS: usize = 10_000;

/// The index [`Tracer::open`] gives a statement past [`MAX_STEPS`].
const OMITTED: usize = usize::MAX;

/// How a traced record's run ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TraceEnd {
    /// It was written out as this many records (one, or with `fan_out` any).
    Emitted(usize),
    /// A `drop`, the `events` filter, or a `fan_out` with no items left nothing.
    #[default]
    Dropped,
    /// A record error, as `xf run` reports it (`tag add (line 3): …`).
    Failed(String),
}

/// One statement that ran.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceStep {
    /// How deep it is nested: 0 at the top level, one more inside each
    /// `when` or `for` block and each included file.
    pub depth: usize,
    /// The included file it is written in, as the `include` names it; `None`
    /// for the transform itself.
    pub file: Option<String>,
    /// Where it is written (1-based, in its file).
    pub line: usize,
    pub column: usize,
    /// The statement's keyword: `set`, `tag add`, `drop`, `when`, …
    pub statement: &'static str,
    /// Its source text: the first line, spaces collapsed, at most [`TEXT_LIMIT`] bytes.
    pub text: String,
    /// Which item of the innermost `for` or `fan_out` it ran for (0-based), if inside one.
    pub item: Option<usize>,
    /// What it changed, in order.
    pub changes: Vec<Change>,
    /// For `drop` and `when`: the condition and what it decided.
    pub decision: Option<Decision>,
    /// The record error it ended with, if it failed.
    pub error: Option<String>,
    /// Wall-clock time it took, in microseconds; for `when`, `for` and
    /// `include`, with the statements inside.
    pub micros: u64,
}

/// One thing a statement changed: the record at a path, a `hec` envelope
/// key (`hec index`), or a `let` variable (`let name`).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The path written (`.` for the whole record, after `nest`).
    pub path: String,
    /// The value before; `None`: missing.
    pub old: Option<Shown>,
    /// The value after; `None`: missing (a `rename`'s source, a variable
    /// left unset, a path `tag remove` marks: it is removed at the end).
    pub new: Option<Shown>,
}

/// The condition of a `drop` or a `when`, and what it decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The condition as written (spaces collapsed); empty for a plain `drop`.
    pub condition: String,
    /// Whether it held.
    pub holds: bool,
    /// What came of it: `dropped` or `kept` (a `drop`), `then` or `else` (a `when`).
    pub outcome: &'static str,
    /// The paths and variables its sides read directly, with their values
    /// (`None`: missing), each once, in the order written.
    pub reads: Vec<(String, Option<Shown>)>,
}

/// A value as a trace shows it: JSON text, cut at [`VALUE_LIMIT`] bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Shown {
    /// The JSON text (the first [`VALUE_LIMIT`] bytes of it when shortened).
    pub json: String,
    /// Whether the text was cut.
    pub shortened: bool,
}

impl Shown {
    /// Shows `value`, cut at [`VALUE_LIMIT`] bytes of its JSON text. Never
    /// writes more than that, however large the value.
    pub fn of(value: &Value) -> Shown {
        let mut text = Bounded {
            text: Vec::new(),
            full: false,
        };
        // Only `Bounded` refusing more text stops it: then the text is full.
        let _ = serde_json::to_writer(&mut text, value);
        let mut json = String::from_utf8_lossy(&text.text).into_owned();
        if text.full {
            let mut end = VALUE_LIMIT.min(json.len());
            while !json.is_char_boundary(end) {
                end -= 1;
            }
            json.truncate(end);
        }
        Shown {
            json,
            shortened: text.full,
        }
    }

    /// As text: the JSON, with `…` after it when it was cut.
    fn text(&self) -> String {
        if self.shortened {
            format!("{}…", self.json)
        } else {
            self.json.clone()
        }
    }

    /// As JSON: the value itself, or when it was cut, its text with `…`.
    fn to_json(&self) -> Value {
        if self.shortened {
            return Value::String(self.text());
        }
        serde_json::from_str(&self.json).unwrap_or_else(|_| Value::String(self.json.clone()))
    }
}

/// A writer that keeps the first bytes written to it and refuses more.
struct Bounded {
    text: Vec<u8>,
    full: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        // A few bytes past the limit, so that a character cut at it can be told.
        let room = (VALUE_LIMIT + 4).saturating_sub(self.text.len());
        if bytes.len() > room {
            self.text.extend_from_slice(&bytes[..room]);
            self.full = true;
            return Err(std::io::Error::other("value shown in part"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `text` as a trace shows source: its first line, runs of white space as
/// one space, at most [`TEXT_LIMIT`] bytes (then `…`).
pub(crate) fn source_text(text: &str, first_line_only: bool) -> String {
    let text = if first_line_only {
        text.lines().next().unwrap_or("")
    } else {
        text
    };
    let mut shown = String::new();
    for word in text.split_whitespace() {
        if !shown.is_empty() {
            shown.push(' ');
        }
        shown.push_str(word);
    }
    if shown.len() > TEXT_LIMIT {
        let mut end = TEXT_LIMIT;
        while !shown.is_char_boundary(end) {
            end -= 1;
        }
        shown.truncate(end);
        shown.push('…');
    }
    shown
}

fn optional(value: &Option<Shown>) -> String {
    value.as_ref().map_or("(missing)".to_string(), Shown::text)
}

impl Trace {
    /// The trace as `xf run --trace` prints it: a line per statement
    /// (`line:col`, the statement, its time), indented by depth, then a line
    /// per change (`path: old → new`), decision (`dropped: COND is true
    /// (path = value, …)`) or error, and a last line with how the run ended.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let indent = "  ".repeat(step.depth);
            let place = match &step.file {
                Some(file) => format!("{file}:{}:{}", step.line, step.column),
                None => format!("{}:{}", step.line, step.column),
            };
            let item = step
                .item
                .map_or(String::new(), |item| format!(" [item {item}]"));
            out.push_str(&format!(
                "{indent}{place}  {}{item}  ({} µs)\n",
                step.text, step.micros
            ));
            for change in &step.changes {
                out.push_str(&format!(
                    "{indent}    {}: {} → {}\n",
                    change.path,
                    optional(&change.old),
                    optional(&change.new)
                ));
            }
            if let Some(decision) = &step.decision {
                out.push_str(&format!("{indent}    {}", decision.outcome));
                if !decision.condition.is_empty() {
                    out.push_str(&format!(": {} is {}", decision.condition, decision.holds));
                }
                if !decision.reads.is_empty() {
                    let reads: Vec<String> = decision
                        .reads
                        .iter()
                        .map(|(name, value)| format!("{name} = {}", optional(value)))
                        .collect();
                    out.push_str(&format!(" ({})", reads.join(", ")));
                }
                out.push('\n');
            }
            if let Some(error) = &step.error {
                out.push_str(&format!("{indent}    error: {error}\n"));
            }
        }
        if self.omitted > 0 {
            out.push_str(&format!(
                "… and {} more statements, not traced (a trace shows the first {MAX_STEPS})\n",
                self.omitted
            ));
        }
        out.push_str(&match &self.end {
            TraceEnd::Emitted(1) => "→ written\n".to_string(),
            TraceEnd::Emitted(count) => format!("→ written as {count} records\n"),
            TraceEnd::Dropped => "→ dropped\n".to_string(),
            TraceEnd::Failed(error) => format!("→ failed: {error}\n"),
        });
        out
    }

    /// The trace as one JSON object:
    ///
    /// ```text
    /// {"steps": [{"line": 3, "column": 1, "file": "lib.xf" (only in an included file),
    ///             "depth": 0, "statement": "tag add", "text": "tag add x = \"{{ a }}\"",
    ///             "item": 0 (only inside a for or fan_out), "micros": 4,
    ///             "changes": [{"path": "x", "old": …, "new": …}],   (a side left out: missing)
    ///             "decision": {"condition": "…", "holds": true, "outcome": "dropped",
    ///                          "reads": [{"name": "a", "value": …}]},  (drop and when only)
    ///             "error": "…" (only when it failed)}, …],
    ///  "omitted": N (only past MAX_STEPS statements),
    ///  "end": "written" | "dropped" | "failed", "records": N (written), "error": "…" (failed)}
    /// ```
    ///
    /// A value cut at [`VALUE_LIMIT`] is a string of its JSON text ending in
    /// `…`, and its object has `"old_shortened"`, `"new_shortened"` or
    /// `"value_shortened": true` beside it.
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self.steps.iter().map(TraceStep::to_json).collect();
        let mut object = Map::new();
        object.insert("steps".into(), Value::Array(steps));
        if self.omitted > 0 {
            object.insert("omitted".into(), self.omitted.into());
        }
        match &self.end {
            TraceEnd::Emitted(count) => {
                object.insert("end".into(), "written".into());
                object.insert("records".into(), (*count).into());
            }
            TraceEnd::Dropped => {
                object.insert("end".into(), "dropped".into());
            }
            TraceEnd::Failed(error) => {
                object.insert("end".into(), "failed".into());
                object.insert("error".into(), error.clone().into());
            }
        }
        Value::Object(object)
    }

    /// The trace with every time set to 0: for comparing traces in tests.
    pub fn without_times(mut self) -> Trace {
        for step in &mut self.steps {
            step.micros = 0;
        }
        self
    }
}

impl TraceStep {
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("line".into(), self.line.into());
        object.insert("column".into(), self.column.into());
        if let Some(file) = &self.file {
            object.insert("file".into(), file.clone().into());
        }
        object.insert("depth".into(), self.depth.into());
        object.insert("statement".into(), self.statement.into());
        object.insert("text".into(), self.text.clone().into());
        if let Some(item) = self.item {
            object.insert("item".into(), item.into());
        }
        object.insert("micros".into(), self.micros.into());
        if !self.changes.is_empty() {
            let changes = self.changes.iter().map(Change::to_json).collect();
            object.insert("changes".into(), Value::Array(changes));
        }
        if let Some(decision) = &self.decision {
            let reads: Vec<Value> = decision
                .reads
                .iter()
                .map(|(name, value)| {
                    let mut read = Map::new();
                    read.insert("name".into(), name.clone().into());
                    shown_into(&mut read, "value", value);
                    Value::Object(read)
                })
                .collect();
            object.insert(
                "decision".into(),
                json!({
                    "condition": decision.condition,
                    "holds": decision.holds,
                    "outcome": decision.outcome,
                    "reads": reads,
                }),
            );
        }
        if let Some(error) = &self.error {
            object.insert("error".into(), error.clone().into());
        }
        Value::Object(object)
    }
}

impl Change {
    fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("path".into(), self.path.clone().into());
        shown_into(&mut object, "old", &self.old);
        shown_into(&mut object, "new", &self.new);
        Value::Object(object)
    }
}

/// Puts a shown value under `key` (left out when missing), and
/// `"KEY_shortened": true` when it was cut.
fn shown_into(object: &mut Map<String, Value>, key: &str, value: &Option<Shown>) {
    if let Some(value) = value {
        object.insert(key.into(), value.to_json());
        if value.shortened {
            object.insert(format!("{key}_shortened"), true.into());
        }
    }
}

/// The state of a traced run besides the [`Trace`] it builds: where in the
/// nesting of blocks, files and items the next statement is.
#[derive(Debug, Default)]
pub(super) struct Tracer {
    pub(super) trace: Trace,
    depth: usize,
    /// The included files being run, innermost last.
    files: Vec<String>,
    /// The item of each `for` or `fan_out` being run, innermost last.
    items: Vec<usize>,
}

impl Tracer {
    /// Starts the step of a statement (written at `origin` in `source`); its index.
    /// Past [`MAX_STEPS`] the step is only counted, and the index given is
    /// one [`Tracer::step`] finds nothing at.
    pub(super) fn open(&mut self, source: &str, origin: &Origin) -> usize {
        if self.trace.steps.len() >= MAX_STEPS {
            self.trace.omitted += 1;
            return OMITTED;
        }
        let text = source
            .get(origin.span.start..origin.span.end)
            .map_or(String::new(), |text| source_text(text, true));
        self.trace.steps.push(TraceStep {
            depth: self.depth,
            file: self.files.last().cloned(),
            line: origin.line,
            column: origin.column,
            statement: origin.statement,
            text,
            item: self.items.last().copied(),
            changes: Vec::new(),
            decision: None,
            error: None,
            micros: 0,
        });
        self.trace.steps.len() - 1
    }

    /// The step at `index`, opened by [`Tracer::open`].
    pub(super) fn step(&mut self, index: usize) -> Option<&mut TraceStep> {
        self.trace.steps.get_mut(index)
    }

    /// The statements from here to [`Tracer::outside`] are one level deeper,
    /// in `file` when it is an included one.
    pub(super) fn inside(&mut self, file: Option<&str>) {
        self.depth += 1;
        if let Some(file) = file {
            self.files.push(file.to_string());
        }
    }

    pub(super) fn outside(&mut self, file: bool) {
        self.depth = self.depth.saturating_sub(1);
        if file {
            self.files.pop();
        }
    }

    /// The statements from here run for item `item` of a `for` or `fan_out`
    /// (the first call for a loop opens its level, [`Tracer::items_done`] closes it).
    pub(super) fn item(&mut self, item: usize) {
        if item == 0 {
            self.items.push(0);
        } else if let Some(last) = self.items.last_mut() {
            *last = item;
        }
    }

    pub(super) fn items_done(&mut self, any: bool) {
        if any {
            self.items.pop();
        }
    }
}

impl Tracer {
    /// The `events` filter dropped the record: a step of line 0, since the
    /// filter is a declaration, not a statement that runs.
    pub(super) fn events_filtered(&mut self) {
        self.trace.steps.push(TraceStep {
            depth: self.depth,
            file: self.files.last().cloned(),
            line: 0,
            column: 0,
            statement: "events",
            text: "events (the record's type is not one of them)".to_string(),
            item: self.items.last().copied(),
            changes: Vec::new(),
            decision: Some(Decision {
                condition: String::new(),
                holds: false,
                outcome: "dropped",
                reads: Vec::new(),
            }),
            error: None,
            micros: 0,
        });
    }
}

/// [`super::step`], traced: the same work, with what it did written down.
pub(super) fn step<'p>(
    plan: &'p Plan,
    step: &'p Step,
    rest: &'p [Step],
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    let started = Instant::now();
    let origin = step.origin();
    let index = run
        .trace
        .as_mut()
        .map_or(0, |tracer| tracer.open(&plan.source, &origin));
    if index == OMITTED {
        // Past the trace's limit: only run it (the statements inside are counted too).
        return traced_work(plan, step, rest, record, run, index);
    }
    let watched = watch(plan, step);
    let before: Vec<Option<Value>> = watched.iter().map(|w| w.read(record, run)).collect();
    let result = traced_work(plan, step, rest, record, run, index);
    let changes = watched
        .iter()
        .zip(before)
        .filter_map(|(watched, old)| {
            let new = if watched.removed {
                None
            } else {
                watched.read(record, run)
            };
            (old != new || (watched.removed && old.is_some())).then(|| Change {
                path: watched.name.clone(),
                old: old.as_ref().map(Shown::of),
                new: new.as_ref().map(Shown::of),
            })
        })
        .collect();
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    if let Some(tracer) = run.trace.as_deref_mut() {
        // An error is the innermost failed statement's: those around it only pass it on.
        let inner_failed = result.is_err()
            && tracer
                .trace
                .steps
                .get(index + 1..)
                .is_some_and(|inner| inner.iter().any(|step| step.error.is_some()));
        if let Some(traced) = tracer.step(index) {
            traced.changes = changes;
            traced.micros = micros;
            if let (Err(error), false) = (&result, inner_failed) {
                traced.error = Some(error.to_string());
            }
        }
    }
    result
}

/// The work of a traced step: `drop` and `when` as [`super::step`] does it,
/// with their decision kept; blocks and included files one level deeper.
fn traced_work<'p>(
    plan: &'p Plan,
    step: &'p Step,
    rest: &'p [Step],
    record: &mut Value,
    run: &mut Run<'p>,
    index: usize,
) -> Result<Flow, RecordError> {
    match step {
        Step::Drop {
            condition, text, ..
        } => {
            let holds = match condition {
                Some(condition) => condition::holds(plan, condition, record, run)?,
                None => true,
            };
            let outcome = if holds { "dropped" } else { "kept" };
            decide(
                plan,
                condition.as_ref(),
                *text,
                holds,
                outcome,
                record,
                run,
                index,
            );
            Ok(if holds { Flow::Drop } else { Flow::Continue })
        }
        Step::When {
            condition,
            text,
            then,
            otherwise,
            ..
        } => {
            let holds = condition::holds(plan, condition, record, run)?;
            let outcome = if holds { "then" } else { "else" };
            decide(
                plan,
                Some(condition),
                *text,
                holds,
                outcome,
                record,
                run,
                index,
            );
            let branch = if holds { then } else { otherwise };
            nested(run, None, |run| super::steps(plan, branch, record, run))
        }
        Step::For { .. } | Step::FanOut { .. } => {
            nested(run, None, |run| super::step(plan, step, rest, record, run))
        }
        Step::Include { file, .. } => nested(run, Some(file), |run| {
            super::step(plan, step, rest, record, run)
        }),
        _ => super::step(plan, step, rest, record, run),
    }
}

/// Runs `work` one level deeper in the trace (in `file`, an included one).
fn nested<'p, T>(run: &mut Run<'p>, file: Option<&str>, work: impl FnOnce(&mut Run<'p>) -> T) -> T {
    if let Some(tracer) = run.trace.as_deref_mut() {
        tracer.inside(file);
    }
    let result = work(run);
    if let Some(tracer) = run.trace.as_deref_mut() {
        tracer.outside(file.is_some());
    }
    result
}

/// Keeps the decision of a `drop` or `when` in the step at `index`.
#[allow(clippy::too_many_arguments)]
fn decide(
    plan: &Plan,
    condition: Option<&Cond>,
    text: Span,
    holds: bool,
    outcome: &'static str,
    record: &Value,
    run: &mut Run<'_>,
    index: usize,
) {
    let mut reads = Vec::new();
    if let Some(condition) = condition {
        read_by(plan, condition, record, run, &mut Vec::new(), &mut reads);
    }
    let condition = plan
        .source
        .get(text.start..text.end)
        .map_or(String::new(), |text| source_text(text, false));
    if let Some(traced) = run.trace.as_deref_mut().and_then(|t| t.step(index)) {
        traced.decision = Some(Decision {
            condition,
            holds,
            outcome,
            reads,
        });
    }
}

/// The paths and variables `condition`'s sides read directly, each once,
/// with their values now; `items` are the slots of `any`/`all` items, which
/// have no value outside their test.
fn read_by(
    plan: &Plan,
    condition: &Cond,
    record: &Value,
    run: &Run<'_>,
    items: &mut Vec<usize>,
    reads: &mut Vec<(String, Option<Shown>)>,
) {
    let mut operand = |operand: &Operand, items: &[usize]| {
        // Owned: the request's index is made, not read in place.
        let requested;
        let (name, value) = match &operand.expr {
            Expr::Request(rest) => {
                requested = super::expr::request_value(run.request, rest);
                let name = match rest.0.is_empty() {
                    true => crate::value::REQUEST_NAME.to_string(),
                    false => format!("{}.{rest}", crate::value::REQUEST_NAME),
                };
                (name, requested.as_ref())
            }
            Expr::Path(path) => (path.to_string(), path.get(record)),
            Expr::Local { slot, rest } if !items.contains(slot) => {
                let name = plan.locals.get(*slot).map_or("?", String::as_str);
                let value = run
                    .locals
                    .get(*slot)
                    .and_then(Option::as_deref)
                    .and_then(|value| rest.get(value));
                match rest.0.is_empty() {
                    true => (name.to_string(), value),
                    false => (format!("{name}.{rest}"), value),
                }
            }
            _ => return,
        };
        if !reads.iter().any(|(read, _)| *read == name) {
            reads.push((name, value.map(Shown::of)));
        }
    };
    match condition {
        Cond::Or(parts) | Cond::And(parts) => {
            for part in parts {
                read_by(plan, part, record, run, items, reads);
            }
        }
        Cond::Not(inner) => read_by(plan, inner, record, run, items, reads),
        Cond::Exists(subject)
        | Cond::In(subject, ..)
        | Cond::Matches(subject, _)
        | Cond::IsNull(subject, _) => operand(subject, items),
        Cond::Compare(left, _, right) | Cond::Text(left, _, right) => {
            operand(left, items);
            operand(right, items);
        }
        Cond::Quantified {
            slot,
            over,
            condition,
            ..
        } => {
            operand(over, items);
            items.push(*slot);
            read_by(plan, condition, record, run, items, reads);
            items.pop();
        }
    }
}

/// Something a step may change, watched by its trace.
struct Watched<'p> {
    /// As the trace names it: a path, `hec KEY`, `let NAME`.
    name: String,
    place: Place<'p>,
    /// A `tag remove` mark: the value goes at the end of the run.
    removed: bool,
}

enum Place<'p> {
    Record(&'p Path),
    Whole,
    Local(usize),
    Hec(&'p HecSlot),
}

impl Watched<'_> {
    fn read(&self, record: &Value, run: &Run<'_>) -> Option<Value> {
        match self.place {
            Place::Record(path) => path.get(record).cloned(),
            Place::Whole => Some(record.clone()),
            Place::Local(slot) => run.locals.get(slot).and_then(Option::as_deref).cloned(),
            Place::Hec(slot) => run.hec.get(slot),
        }
    }
}

/// What `step` may change (blocks and included files: only their statements).
fn watch<'p>(plan: &'p Plan, step: &'p Step) -> Vec<Watched<'p>> {
    let path = |path: &'p Path| Watched {
        name: path.to_string(),
        place: Place::Record(path),
        removed: false,
    };
    match step {
        Step::Set { target, .. } | Step::Url { target, .. } | Step::Append { target, .. } => {
            vec![path(target)]
        }
        Step::Rename { from, to, .. } => vec![path(from), path(to)],
        Step::Nest { .. } => vec![Watched {
            name: ".".to_string(),
            place: Place::Whole,
            removed: false,
        }],
        Step::Let { slot, .. } => vec![Watched {
            name: format!("let {}", plan.locals.get(*slot).map_or("?", String::as_str)),
            place: Place::Local(*slot),
            removed: false,
        }],
        Step::Hec { slot, .. } => vec![Watched {
            name: format!("hec {slot}"),
            place: Place::Hec(slot),
            removed: false,
        }],
        Step::Remove { ids, .. } => ids
            .iter()
            .filter_map(|id| plan.removals.get(*id))
            .map(|removed| Watched {
                removed: true,
                ..path(removed)
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_value_is_shown_in_part() {
        let big = Value::String("x".repeat(10_000));
        let shown = Shown::of(&big);
        assert!(shown.shortened);
        assert_eq!(shown.json.len(), VALUE_LIMIT);
        assert!(shown.text().ends_with('…'));
        let small = Shown::of(&json!({"a": [1, "é"]}));
        assert!(!small.shortened);
        assert_eq!(small.to_json(), json!({"a": [1, "é"]}));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        let shown = Shown::of(&Value::String("é".repeat(500)));
        assert!(shown.shortened);
        assert!(shown.json.len() <= VALUE_LIMIT);
    }

    #[test]
    fn source_text_is_one_line_of_collapsed_spaces() {
        assert_eq!(
            source_text("when a  ==  1 {\n  set b = 2\n}", true),
            "when a == 1 {"
        );
        assert_eq!(
            source_text("a == 1 or\n   b == 2", false),
            "a == 1 or b == 2"
        );
        assert!(source_text(&"y".repeat(500), true).ends_with('…'));
    }
}
