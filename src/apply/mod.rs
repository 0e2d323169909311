//! Stage 3, apply: [`Plan`] × record → zero or more output records.
//!
//! Steps run top to bottom. `drop` ends a record's run; `tag remove` paths are
//! removed after every step has run, so no later step can bring a removed key
//! back. In format `splunk` the result is wrapped as a HEC event at the end
//! ([`crate::splunk`]).

mod condition;
mod error;
mod expr;
mod functions;
mod link;
mod lookup;
mod request;
mod template;
pub mod trace;

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::compile::{EventType, Format, Origin, Plan, Step};
use crate::limits::{deeper_than, measure, Limits, MAX_VALUE_DEPTH};
use crate::splunk::HecParts;
pub use crate::value::REQUEST_NAME;
use crate::value::{kind_with_article, remove_all, Path};
pub use error::{ErrorKind, Include, RecordError};
use expr::{evaluate, Scope};
pub use request::{Request, RequestParts, MAX_HEADER_VALUE, WITHHELD_HEADERS};
pub use trace::{Change, Decision, Shown, Trace, TraceEnd, TraceStep};

/// What happened to one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The record, transformed (and in format `splunk`, wrapped).
    Emit(Value),
    /// `events` or `drop` filtered it out (or `fan_out` found no items).
    Dropped,
    /// `fan_out` made these records of it, in item order (at least one).
    Fanned(Vec<Value>),
}

impl Outcome {
    /// How many records are written for it.
    pub fn records(&self) -> usize {
        match self {
            Outcome::Emit(_) => 1,
            Outcome::Dropped => 0,
            Outcome::Fanned(values) => values.len(),
        }
    }

    /// The records written for it: none, one, or those `fan_out` made.
    pub fn into_records(self) -> Vec<Value> {
        match self {
            Outcome::Emit(value) => vec![value],
            Outcome::Dropped => Vec::new(),
            Outcome::Fanned(values) => values,
        }
    }
}

/// State of one record's run besides the record itself.
struct Run<'p> {
    hec: HecParts,
    /// Paths marked by `tag remove` steps (of this plan or an included one),
    /// in order, each once (a transform has few).
    removals: Vec<&'p Path>,
    /// What `now()` gives when the clock is fixed.
    now: Option<i64>,
    /// What `request` reads: see [`Context::request`].
    request: Option<&'p Request>,
    /// See [`Context::kept_elsewhere`].
    kept_elsewhere: bool,
    /// Statements run so far, against [`Limits::statements`].
    statements: u64,
    /// Bytes of values built so far, against [`Limits::built_bytes`].
    built: u64,
    limits: Limits,
    /// When this record's work must end ([`Limits::record_millis`]).
    deadline: Instant,
    /// Set when the run should end soon (a signal): see [`Context::stop`].
    stop: Option<&'p AtomicBool>,
    /// When a stop was first seen, shared by the records of a stream: see [`Context::stop_seen`].
    stop_seen: Option<&'p OnceLock<Instant>>,
    /// When this record first saw the stop, without a shared `stop_seen`.
    stopping: Option<Instant>,
    /// The running plan's local variables by slot (`let`, `any`/`all` items);
    /// missing until set. Each included plan has its own while it runs.
    locals: Vec<Option<std::sync::Arc<Value>>>,
    /// The records `fan_out` has finished so far.
    fanned: Vec<Value>,
    /// What a traced run ([`apply_traced`]) has seen so far; `None`
    /// otherwise, and then checked once per statement and nothing more.
    trace: Option<Box<trace::Tracer>>,
}

/// How many statements run between two looks at the clock for
/// [`Limits::record_millis`]: a record's time limit is checked that often.
const CLOCK_EVERY: u64 = 8;

/// How much longer work may go on once a stop is seen: for all the records
/// of a stream together when they share [`Context::stop_seen`].
pub const STOP_GRACE: Duration = Duration::from_millis(500);

/// What one call of [`apply_in`] runs with besides the record.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    /// When set (by a signal handler, say), the record's work may go on for
    /// [`STOP_GRACE`] more, then ends before its next statement as a record
    /// error: a long record never delays a stop, a short one still finishes.
    pub stop: Option<&'a AtomicBool>,
    /// When the stop was first seen, by any record or by the stream driver:
    /// the grace counts from it, so that the records still at work and those
    /// read but not yet begun share one [`STOP_GRACE`] instead of one each.
    /// Without it, the grace counts from when this record first saw the stop.
    pub stop_seen: Option<&'a OnceLock<Instant>>,
    /// What `now()` gives (epoch milliseconds), for reproducible output;
    /// `None`: the clock. Per call, so that one loaded transform shared by
    /// threads and requests is never changed to run with another time.
    pub now: Option<i64>,
    /// What `request` reads (`request.headers."x-github-event"`): the
    /// request that carried the record, in `xf serve`. `None`: `request` is
    /// null, as it is outside a server. Per call, as the clock is.
    pub request: Option<&'a Request>,
    /// The record has more fields than it holds: fields the transform cannot
    /// see, kept outside it as their input bytes and written back by the
    /// caller ([`crate::value::untouched`]). Only the HEC envelope's check
    /// for an empty event needs to know.
    pub kept_elsewhere: bool,
}

enum Flow {
    Continue,
    Drop,
    /// A `fan_out` ran the rest of the steps on each copy: the records are
    /// in [`Run::fanned`], and the record itself is not written.
    FannedOut,
}

/// Runs `plan` on one record.
pub fn apply(plan: &Plan, record: Value) -> Result<Outcome, RecordError> {
    apply_in(plan, record, &Context::default())
}

/// Runs `plan` on one record, in `context`.
pub fn apply_in<'p>(
    plan: &'p Plan,
    record: Value,
    context: &Context<'p>,
) -> Result<Outcome, RecordError> {
    run_record(plan, record, &mut start(plan, context))
}

/// Runs `plan` on one record, in `context`, as [`apply_in`] does, and also
/// says what the run did: which statements ran, what each changed, what
/// decided a `drop` or a `when`, how long each took ([`Trace`]).
pub fn apply_traced<'p>(
    plan: &'p Plan,
    record: Value,
    context: &Context<'p>,
) -> (Result<Outcome, RecordError>, Trace) {
    let mut run = start(plan, context);
    run.trace = Some(Box::default());
    let result = run_record(plan, record, &mut run);
    let mut trace = run.trace.take().map_or_else(Trace::default, |t| t.trace);
    trace.end = match &result {
        Ok(outcome @ (Outcome::Emit(_) | Outcome::Fanned(_))) => {
            TraceEnd::Emitted(outcome.records())
        }
        Ok(Outcome::Dropped) => TraceEnd::Dropped,
        Err(error) => TraceEnd::Failed(error.to_string()),
    };
    (result, trace)
}

/// The state a record's run begins with.
fn start<'p>(plan: &'p Plan, context: &Context<'p>) -> Run<'p> {
    Run {
        hec: HecParts::default(),
        removals: Vec::new(),
        now: context.now,
        request: context.request,
        kept_elsewhere: context.kept_elsewhere,
        statements: 0,
        built: 0,
        limits: plan.limits,
        deadline: Instant::now() + Duration::from_millis(plan.limits.record_millis),
        stop: context.stop,
        stop_seen: context.stop_seen,
        stopping: None,
        locals: vec![None; plan.locals.len()],
        fanned: Vec::new(),
        trace: None,
    }
}

fn run_record<'p>(
    plan: &'p Plan,
    mut record: Value,
    run: &mut Run<'p>,
) -> Result<Outcome, RecordError> {
    if !record.is_object() {
        return Err(RecordError::new(
            ErrorKind::NotAnObject,
            None,
            format!(
                "a record is a JSON object, not {}",
                kind_with_article(&record)
            ),
        ));
    }
    match whole(plan, &mut record, run)? {
        Flow::Drop => Ok(Outcome::Dropped),
        Flow::FannedOut if run.fanned.is_empty() => Ok(Outcome::Dropped),
        Flow::FannedOut => Ok(Outcome::Fanned(std::mem::take(&mut run.fanned))),
        Flow::Continue => Ok(Outcome::Emit(finish(plan, record, run)?)),
    }
}

/// The end of a record's run: `tag remove` paths go, and in format `splunk`
/// the record is wrapped as a HEC event.
fn finish(plan: &Plan, mut record: Value, run: &mut Run<'_>) -> Result<Value, RecordError> {
    remove_all(run.removals.iter().copied(), &mut record);
    Ok(match plan.format {
        Format::Default => record,
        Format::Splunk => std::mem::take(&mut run.hec)
            .wrap(record, run.kept_elsewhere)
            .map_err(|reason| RecordError::new(ErrorKind::Value, None, reason))?,
    })
}

/// A plan's `events` filter, then its steps: the whole transform, or an included one.
fn whole<'p>(plan: &'p Plan, record: &mut Value, run: &mut Run<'p>) -> Result<Flow, RecordError> {
    if let Some(events) = &plan.events {
        if !EventType::of(record).is_some_and(|t| events.contains(&t)) {
            if let Some(tracer) = &mut run.trace {
                tracer.events_filtered();
            }
            return Ok(Flow::Drop);
        }
    }
    // An included plan's variables are its own: none of the includer's is
    // seen there, and the includer's are as they were when it returns.
    let outer = std::mem::replace(&mut run.locals, vec![None; plan.locals.len()]);
    let flow = steps(plan, &plan.steps, record, run);
    run.locals = outer;
    flow
}

fn steps<'p>(
    plan: &'p Plan,
    steps: &'p [Step],
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    for (at, step) in steps.iter().enumerate() {
        run.count(step_origin(step))?;
        let stopping = run.stop.is_some_and(|stop| stop.load(Ordering::Relaxed));
        // Reading the clock costs more than most statements: it is read on a
        // record's first statement and every CLOCK_EVERY-th after, and on
        // each while a stop is pending.
        if stopping || run.statements % CLOCK_EVERY == 1 {
            let now = Instant::now();
            if stopping {
                // A stop lets the record finish, but only within a short grace,
                // counted from when the stop was first seen.
                let seen = match run.stop_seen {
                    Some(shared) => *shared.get_or_init(|| now),
                    None => *run.stopping.get_or_insert(now),
                };
                if now > seen + STOP_GRACE {
                    return Err(RecordError::new(
                        ErrorKind::Stopped,
                        step_origin(step),
                        "stopped by a signal while transforming this record",
                    ));
                }
            }
            if now > run.deadline {
                return Err(RecordError::new(
                    ErrorKind::Limit,
                    step_origin(step),
                    format!(
                        "over the limit of {} ms of work for one record (--record-time)",
                        run.limits.record_millis
                    ),
                ));
            }
        }
        let flow = if run.trace.is_none() {
            self::step(plan, step, &steps[at + 1..], record, run)?
        } else {
            trace::step(plan, step, &steps[at + 1..], record, run)?
        };
        match flow {
            Flow::Continue => {}
            ended => return Ok(ended),
        }
    }
    Ok(Flow::Continue)
}

/// `fan_out NAME in PATH`: `rest`, the steps after it, once per item, each
/// time on a copy of the record as it is here, with the item in local
/// `slot` and the `hec` values, `tag remove` marks and variables as they
/// are here; each copy that `rest` does not drop is finished as one record.
/// An item's record error fails the whole record: it is dead-lettered whole,
/// never half written. A missing or null PATH, or an empty array, makes no
/// records (the record counts as dropped); a single value that is not an
/// array counts as one item, as in `for`.
fn fan_out<'p>(
    plan: &'p Plan,
    slot: usize,
    over: &Path,
    origin: Origin,
    rest: &'p [Step],
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    let items = match over.get(record) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
    };
    let hec = std::mem::take(&mut run.hec);
    let removals = run.removals.clone();
    let locals = run.locals.clone();
    let any = !items.is_empty();
    for (at, item) in items.into_iter().enumerate() {
        if let Some(tracer) = &mut run.trace {
            tracer.item(at);
        }
        let mut copy = record.clone();
        run.built(0, &copy, origin)?;
        run.hec = hec.clone();
        run.removals.clone_from(&removals);
        run.locals.clone_from(&locals);
        run.locals[slot] = Some(std::sync::Arc::new(item));
        match steps(plan, rest, &mut copy, run)? {
            Flow::Drop | Flow::FannedOut => {}
            Flow::Continue => {
                if run.fanned.len() as u64 >= run.limits.outputs {
                    return Err(fail_as(
                        ErrorKind::Limit,
                        origin,
                        format!(
                            "over the limit of {} records made of one record (--max-outputs)",
                            run.limits.outputs
                        ),
                    ));
                }
                let finished = finish(plan, copy, run)?;
                run.fanned.push(finished);
            }
        }
    }
    if let Some(tracer) = &mut run.trace {
        tracer.items_done(any);
    }
    Ok(Flow::FannedOut)
}

/// Runs one step; `rest` are the steps after it in its list (which only
/// `fan_out` runs itself).
fn step<'p>(
    plan: &'p Plan,
    step: &'p Step,
    rest: &'p [Step],
    record: &mut Value,
    run: &mut Run<'p>,
) -> Result<Flow, RecordError> {
    match step {
        Step::Set {
            target,
            value,
            origin,
        } => {
            let value = evaluate(plan, value, record, &run.scope(), *origin)
                .map_err(|error| writing(error, target))?;
            if let Some(value) = value {
                run.built(target.0.len(), &value, *origin)?;
                target
                    .set(record, value)
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Remove { ids, .. } => {
            for path in ids.iter().map(|id| &plan.removals[*id]) {
                // Once each: a `tag remove` in a loop marks its paths on every
                // pass, and all are resolved against the final record anyway.
                if !run
                    .removals
                    .iter()
                    .any(|marked| std::ptr::eq(*marked, path))
                {
                    run.removals.push(path);
                }
            }
        }
        Step::Url {
            target,
            from,
            field,
            search,
            origin,
        } => {
            if let Some(link) = link(plan, from, field, *search, record, *origin)? {
                fits(target.0.len(), &Value::Null, *origin)?;
                target
                    .set(record, Value::String(link))
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Drop { condition, .. } => {
            let holds = match condition {
                Some(condition) => condition::holds(plan, condition, record, run)?,
                None => true,
            };
            if holds {
                return Ok(Flow::Drop);
            }
        }
        Step::Let {
            slot,
            value,
            origin,
        } => {
            let value = evaluate(plan, value, record, &run.scope(), *origin)?;
            if let Some(value) = &value {
                run.built(0, value, *origin)?;
            }
            run.locals[*slot] = value.map(std::sync::Arc::new);
        }
        Step::When {
            condition,
            then,
            otherwise,
            ..
        } => {
            let branch = if condition::holds(plan, condition, record, run)? {
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
            let value = evaluate(plan, value, record, &run.scope(), *origin)
                .map_err(|error| writing(error, slot))?;
            if let Some(value) = value {
                // The envelope's `fields` object holds it: two levels above.
                run.built(2, &value, *origin)?;
                run.hec
                    .set(slot, value)
                    .map_err(|reason| fail(*origin, reason))?;
            } else {
                run.hec.clear(slot);
            }
        }
        Step::Validate { schema, origin } => {
            if let Some(reason) = plan.schemas[*schema].check(record) {
                return Err(fail_as(ErrorKind::Invalid, *origin, reason));
            }
        }
        Step::Append {
            target,
            value,
            origin,
        } => {
            let value = evaluate(plan, value, record, &run.scope(), *origin)
                .map_err(|error| writing(error, target))?;
            if let Some(value) = value {
                run.built(target.0.len() + 1, &value, *origin)?;
                append(target, record, value).map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Rename { from, to, origin } => {
            if let Some(value) = from.get(record) {
                fits(to.0.len(), value, *origin)?;
                let value = value.clone();
                from.remove(record);
                to.set(record, value)
                    .map_err(|reason| fail(*origin, reason))?;
            }
        }
        Step::Nest { target, origin } => {
            fits(target.0.len(), record, *origin)?;
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
        Step::FanOut { slot, over, origin } => {
            return fan_out(plan, *slot, over, *origin, rest, record, run)
        }
        Step::Fail { message, origin } => {
            let reason = match evaluate(plan, message, record, &run.scope(), *origin)? {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => "failed".to_string(),
            };
            return Err(fail_as(ErrorKind::Failed, *origin, reason));
        }
        Step::Include { plan, file, origin } => {
            return whole(plan, record, run).map_err(|error| {
                error.through(Include {
                    origin: *origin,
                    file: file.clone(),
                })
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
    let any = !items.is_empty();
    for (at, item) in items.into_iter().enumerate() {
        if let Value::Object(map) = &mut *record {
            map.insert(name.to_string(), item);
        }
        if let Some(tracer) = &mut run.trace {
            tracer.item(at);
        }
        flow = steps(plan, body, record, run);
        if !matches!(flow, Ok(Flow::Continue)) {
            break;
        }
    }
    if let Some(tracer) = &mut run.trace {
        tracer.items_done(any);
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
    from: &Path,
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
        .map_err(|reason| fail_as(ErrorKind::Template, origin, reason))
}

/// A value written `above` containers deep must keep the record within
/// [`MAX_VALUE_DEPTH`]: deeper values could not be read back, and building
/// them without bound (`nest` in a loop) would exhaust the stack. For a value
/// moved (`rename`, `nest`); one built is checked by [`Run::built`].
fn fits(above: usize, value: &Value, origin: Origin) -> Result<(), RecordError> {
    if above > MAX_VALUE_DEPTH || deeper_than(value, MAX_VALUE_DEPTH - above) {
        return Err(too_deep(origin));
    }
    Ok(())
}

fn too_deep(origin: Origin) -> RecordError {
    fail_as(
        ErrorKind::Limit,
        origin,
        format!("the record would nest deeper than {MAX_VALUE_DEPTH} levels, xf's limit"),
    )
}

impl Run<'_> {
    /// What expressions read besides the record.
    fn scope(&self) -> Scope<'_> {
        Scope {
            now: self.now,
            request: self.request,
            locals: &self.locals,
            text_limit: self.limits.template_output,
        }
    }

    /// Counts one statement run (or one item an `any`/`all` tests) against
    /// [`Limits::statements`].
    fn count(&mut self, origin: Option<Origin>) -> Result<(), RecordError> {
        self.statements += 1;
        if self.statements > self.limits.statements {
            return Err(RecordError::new(
                ErrorKind::Limit,
                origin,
                format!(
                    "over the limit of {} statements run for one record (--max-statements): \
                     a loop over too many items, or includes that multiply",
                    self.limits.statements
                ),
            ));
        }
        Ok(())
    }

    /// Like [`fits`], for a value built (a copy, a template's text): it also
    /// counts against [`Limits::built_bytes`].
    fn built(&mut self, above: usize, value: &Value, origin: Origin) -> Result<(), RecordError> {
        let Some(room) = MAX_VALUE_DEPTH.checked_sub(above) else {
            return Err(too_deep(origin));
        };
        let measured = measure(value, room);
        if measured.deeper {
            return Err(too_deep(origin));
        }
        self.built = self.built.saturating_add(measured.bytes);
        if self.built > self.limits.built_bytes {
            return Err(fail_as(
                ErrorKind::Limit,
                origin,
                format!(
                    "the values built for this record would take over {} MiB (--max-built-size): \
                     a loop that copies the record into itself, or values too large",
                    self.limits.built_bytes >> 20
                ),
            ));
        }
        Ok(())
    }
}

/// The statement a step came from, when it has one of its own.
fn step_origin(step: &Step) -> Option<Origin> {
    match step {
        // Their errors (over a limit, stopped) have always named no statement.
        Step::Remove { .. } | Step::Drop { .. } | Step::When { .. } => None,
        other => Some(other.origin()),
    }
}

/// A statement's problem with a value (the most common kind).
/// A template error names the path its statement writes:
/// `message (line 3): template error writing summary: …`.
fn writing(mut error: RecordError, target: &dyn std::fmt::Display) -> RecordError {
    if error.kind == ErrorKind::Template {
        if let Some(detail) = error.reason.strip_prefix("template error: ") {
            error.reason = format!("template error writing {target}: {detail}");
        }
    }
    error
}

fn fail(origin: Origin, reason: String) -> RecordError {
    fail_as(ErrorKind::Value, origin, reason)
}

fn fail_as(kind: ErrorKind, origin: Origin, reason: String) -> RecordError {
    RecordError::new(kind, Some(origin), reason)
}
