//! Evaluating an [`Expr`] on a record.

use std::sync::Arc;

use serde_json::{Map, Number, Value};

use super::functions;
use super::template::Bindings;
use super::{fail, fail_as, ErrorKind, RecordError};
use crate::compile::{Call, Expr, Origin, Plan};
use crate::value::{clock_millis, key_str, kind_with_article, Time};

/// What an expression reads besides the record: the clock, the local
/// variables, and the limit on the text a function may make.
pub(super) struct Scope<'s> {
    pub now: Option<i64>,
    /// What `request` reads; `None`: it is null.
    pub request: Option<&'s super::Request>,
    pub locals: &'s [Option<Arc<Value>>],
    pub text_limit: usize,
}

/// The value an expression gives for this record; `None` when it is missing
/// (a path that is not there), so that nothing is written.
pub(super) fn evaluate(
    plan: &Plan,
    expr: &Expr,
    record: &mut Value,
    scope: &Scope<'_>,
    origin: Origin,
) -> Result<Option<Value>, RecordError> {
    // A template borrows the record whole (see `Templates::render`), hence `&mut`.
    let mut eval = |expr: &Expr| evaluate(plan, expr, record, scope, origin);
    Ok(match expr {
        Expr::Literal(value) => Some(value.clone()),
        Expr::Path(path) => path.get(record).cloned(),
        Expr::Request(rest) => request_value(scope.request, rest),
        Expr::Local { slot, rest } => scope.locals[*slot]
            .as_deref()
            .and_then(|value| rest.get(value))
            .cloned(),
        Expr::Lookup { lookup, rest } => plan.templates.lookups()[*lookup]
            .row_json(record)
            .and_then(|row| rest.get(&row).cloned()),
        Expr::Template { id, locals } => {
            let bindings = Bindings {
                locals: locals
                    .iter()
                    .filter_map(|slot| {
                        let value = scope.locals[*slot].as_ref()?;
                        Some((plan.locals[*slot].as_str(), Arc::clone(value)))
                    })
                    .collect(),
                now: scope.now,
                request: scope.request,
            };
            Some(Value::String(
                plan.templates
                    .render(*id, record, &bindings)
                    .map_err(|reason| fail_as(ErrorKind::Template, origin, reason))?,
            ))
        }
        Expr::Object(members) => {
            let mut object = Map::with_capacity(members.len());
            for (key, member) in members {
                if let Some(value) = member_value(member, eval(member)?) {
                    object.insert(key.clone(), value);
                }
            }
            Some(Value::Object(object))
        }
        Expr::Array(items) => {
            let mut array = Vec::with_capacity(items.len());
            for item in items {
                array.extend(member_value(item, eval(item)?));
            }
            Some(Value::Array(array))
        }
        Expr::Call(call) => call_value(call, &mut eval, scope, origin)?,
    })
}

fn call_value(
    call: &Call,
    eval: &mut dyn FnMut(&Expr) -> Result<Option<Value>, RecordError>,
    scope: &Scope<'_>,
    origin: Origin,
) -> Result<Option<Value>, RecordError> {
    Ok(match call {
        Call::EpochMs(arg) => match eval(arg)? {
            None | Some(Value::Null) => None,
            Some(value) => Some(Value::Number(
                Time::from_value(&value)
                    .map_err(|reason| fail(origin, format!("epoch_ms: {reason}")))?
                    .millis()
                    .into(),
            )),
        },
        Call::Number(arg) => match eval(arg)? {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(Value::Number(n)),
            Some(Value::String(text)) => match serde_json::from_str::<Number>(text.trim()) {
                // The text is a JSON number: kept as written (`"1E2"` → `1E2`).
                Ok(_) => Some(Value::Number(crate::number::as_written(text.trim()))),
                Err(_) => return Err(fail(origin, format!("number: {text:?} is not a number"))),
            },
            Some(other) => {
                return Err(fail(
                    origin,
                    format!("number: {} is not a number", kind_with_article(&other)),
                ))
            }
        },
        // Null is absent here as in a template, where it prints nothing.
        Call::String(arg) => eval(arg)?
            .and_then(|value| text_of(&value))
            .map(Value::String),
        Call::Map {
            subject,
            table,
            default,
        } => {
            let subject = eval(subject)?;
            subject
                .as_ref()
                .and_then(key_str)
                .and_then(|key| table.get(key).cloned())
                .or_else(|| default.clone())
        }
        Call::Coalesce(args) => {
            for arg in args {
                match eval(arg)? {
                    None | Some(Value::Null) => continue,
                    found => return Ok(found),
                }
            }
            None
        }
        Call::Now => Some(Value::Number(scope.now.unwrap_or_else(clock_millis).into())),
        Call::Text(function, args) => {
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                match eval(arg)? {
                    // Every argument missing or null: the function gives missing.
                    None | Some(Value::Null) => return Ok(None),
                    Some(value) => values.push(value),
                }
            }
            let text = functions::Text {
                limit: scope.text_limit,
            };
            Some(
                text.call(*function, values)
                    .map_err(|reason| fail(origin, reason))?,
            )
        }
        Call::RegexCapture {
            subject,
            regex,
            group,
        } => match eval(subject)?.and_then(|v| text_of(&v)) {
            None => None,
            Some(text) => functions::capture(regex, group, &text).map(Value::String),
        },
        Call::RegexReplace {
            subject,
            regex,
            replacement,
        } => match eval(subject)?.and_then(|v| text_of(&v)) {
            None => None,
            Some(text) => Some(Value::String(
                functions::replace_all(regex, &text, replacement, scope.text_limit)
                    .map_err(|reason| fail_as(ErrorKind::Limit, origin, reason))?,
            )),
        },
        Call::ParseTime(subject, format) => match eval(subject)?.and_then(|v| text_of(&v)) {
            None => None,
            Some(text) => Some(Value::Number(
                crate::value::parse_time(&text, format)
                    .map_err(|reason| fail(origin, format!("parse_time: {reason}")))?
                    .into(),
            )),
        },
        Call::FormatTime(subject, format) => match eval(subject)? {
            None | Some(Value::Null) => None,
            Some(value) => Some(Value::String(
                crate::value::format_time(&value, format)
                    .map_err(|reason| fail(origin, format!("format_time: {reason}")))?,
            )),
        },
    })
}

/// The value at `rest` inside `request`: outside a server `request` is
/// null, and a name inside a null is missing (the null model's rule).
pub(super) fn request_value(
    request: Option<&super::Request>,
    rest: &crate::value::Path,
) -> Option<Value> {
    match request {
        Some(request) => request.get(rest).map(std::borrow::Cow::into_owned),
        None => rest.0.is_empty().then_some(Value::Null),
    }
}

/// A value as text, the way `string()` writes it; none for null.
pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// A member of a computed object or array is left out when its value is
/// missing, or null from the record: payloads say "absent" both ways. A
/// literal `null` is kept, since the author wrote it.
fn member_value(expr: &Expr, value: Option<Value>) -> Option<Value> {
    match (expr, value) {
        (Expr::Literal(_), value) => value,
        (_, Some(Value::Null)) => None,
        (_, value) => value,
    }
}
