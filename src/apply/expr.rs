//! Evaluating an [`Expr`] on a record.

use serde_json::{Map, Number, Value};

use super::{fail, fail_as, ErrorKind, RecordError};
use crate::compile::{Call, Expr, Origin, Plan};
use crate::value::{key_str, kind_with_article, Time};

/// The value an expression gives for this record; `None` when it is missing
/// (a path that is not there), so that nothing is written.
pub(super) fn evaluate(
    plan: &Plan,
    expr: &Expr,
    record: &mut Value,
    now: Option<i64>,
    origin: Origin,
) -> Result<Option<Value>, RecordError> {
    // A template borrows the record whole (see `Templates::render`), hence `&mut`.
    let mut eval = |expr: &Expr| evaluate(plan, expr, record, now, origin);
    Ok(match expr {
        Expr::Literal(value) => Some(value.clone()),
        Expr::Path(path) => path.get(record).cloned(),
        Expr::Template(id) => {
            Some(Value::String(plan.templates.render(*id, record).map_err(
                |reason| fail_as(ErrorKind::Template, origin, reason),
            )?))
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
        Expr::Call(call) => match call {
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
                    Err(_) => {
                        return Err(fail(origin, format!("number: {text:?} is not a number")))
                    }
                },
                Some(other) => {
                    return Err(fail(
                        origin,
                        format!("number: {} is not a number", kind_with_article(&other)),
                    ))
                }
            },
            // Null is absent here as in a template, where it prints nothing.
            Call::String(arg) => match eval(arg)? {
                None | Some(Value::Null) => None,
                Some(Value::String(text)) => Some(Value::String(text)),
                Some(other) => Some(Value::String(other.to_string())),
            },
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
            Call::Now => Some(Value::Number(now.unwrap_or_else(clock_millis).into())),
        },
    })
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

fn clock_millis() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
