//! Evaluating conditions. A comparison that involves a missing field is false,
//! never an error; values of different kinds are unequal and unordered. Only
//! a function failing on the record's data (`number("x") > 1`) is an error.

use std::sync::Arc;

use serde_json::Value;

use super::expr::evaluate;
use super::{RecordError, Run};
use crate::compile::{Cond, Expr, Operand, Plan};
use crate::value::compare::{compare, equal, text_test};

/// Whether `condition` holds for `record`, in this record's run.
pub(super) fn holds(
    plan: &Plan,
    condition: &Cond,
    record: &mut Value,
    run: &mut Run<'_>,
) -> Result<bool, RecordError> {
    let value = |operand: &Operand, record: &mut Value, run: &Run<'_>| {
        evaluate(plan, &operand.expr, record, &run.scope(), operand.origin)
    };
    let leaf = !matches!(
        condition,
        Cond::Or(_) | Cond::And(_) | Cond::Not(_) | Cond::Quantified { .. }
    );
    if leaf {
        // Paths and literals are read in place, without a copy.
        if let Some(held) = condition.holds_plainly(record) {
            return Ok(held);
        }
    }
    Ok(match condition {
        Cond::Or(parts) => {
            for part in parts {
                if holds(plan, part, record, run)? {
                    return Ok(true);
                }
            }
            false
        }
        Cond::And(parts) => {
            for part in parts {
                if !holds(plan, part, record, run)? {
                    return Ok(false);
                }
            }
            true
        }
        Cond::Not(inner) => !holds(plan, inner, record, run)?,
        Cond::Exists(operand) => value(operand, record, run)?.is_some(),
        Cond::In(subject, list, negated) => value(subject, record, run)?
            .is_some_and(|value| list.iter().any(|item| equal(&value, item)) != *negated),
        Cond::Matches(subject, regex) => value(subject, record, run)?
            .as_ref()
            .and_then(Value::as_str)
            .is_some_and(|text| regex.is_match(text)),
        Cond::Compare(left, op, right) => {
            match (value(left, record, run)?, value(right, record, run)?) {
                (Some(l), Some(r)) => compare(&l, *op, &r),
                _ => false,
            }
        }
        Cond::IsNull(subject, negated) => {
            value(subject, record, run)?.is_some_and(|value| value.is_null() != *negated)
        }
        Cond::Text(left, op, right) => {
            match (value(left, record, run)?, value(right, record, run)?) {
                (Some(l), Some(r)) => text_test(&l, *op, &r),
                _ => false,
            }
        }
        Cond::Quantified {
            all,
            slot,
            over,
            condition,
        } => {
            let items = match value(over, record, run)? {
                None | Some(Value::Null) => return Ok(false),
                Some(Value::Array(items)) => items,
                Some(single) => vec![single],
            };
            let earlier = run.locals[*slot].take();
            let mut verdict = Ok(*all);
            for item in items {
                // Each item tested counts as a statement, as a `for` pass does.
                if let Err(error) = run.count(Some(over.origin)) {
                    verdict = Err(error);
                    break;
                }
                run.locals[*slot] = Some(Arc::new(item));
                match holds(plan, condition, record, run) {
                    Ok(held) if held != *all => {
                        verdict = Ok(held);
                        break;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        verdict = Err(error);
                        break;
                    }
                }
            }
            run.locals[*slot] = earlier;
            verdict?
        }
    })
}

impl Cond {
    /// Whether the condition holds for `record`, for a condition of record
    /// paths and literals alone (a filter's `drop when`); `None` for one that
    /// needs a run (a function, a template, a variable, a lookup).
    pub fn holds_plainly(&self, record: &Value) -> Option<bool> {
        fn plain<'v>(operand: &'v Operand, record: &'v Value) -> Option<Option<&'v Value>> {
            match &operand.expr {
                Expr::Literal(value) => Some(Some(value)),
                Expr::Path(path) => Some(path.get(record)),
                _ => None,
            }
        }
        let value = |operand| plain(operand, record);
        let any_of = |parts: &[Cond], wanted: bool| -> Option<bool> {
            for part in parts {
                if part.holds_plainly(record)? == wanted {
                    return Some(wanted);
                }
            }
            Some(!wanted)
        };
        Some(match self {
            Cond::Or(parts) => any_of(parts, true)?,
            Cond::And(parts) => any_of(parts, false)?,
            Cond::Not(inner) => !inner.holds_plainly(record)?,
            Cond::Exists(operand) => value(operand)?.is_some(),
            Cond::In(subject, list, negated) => value(subject)?
                .is_some_and(|value| list.iter().any(|item| equal(value, item)) != *negated),
            Cond::Matches(subject, regex) => value(subject)?
                .and_then(Value::as_str)
                .is_some_and(|text| regex.is_match(text)),
            Cond::Compare(left, op, right) => match (value(left)?, value(right)?) {
                (Some(l), Some(r)) => compare(l, *op, r),
                _ => false,
            },
            Cond::IsNull(subject, negated) => {
                value(subject)?.is_some_and(|value| value.is_null() != *negated)
            }
            Cond::Text(left, op, right) => match (value(left)?, value(right)?) {
                (Some(l), Some(r)) => text_test(l, *op, r),
                _ => false,
            },
            Cond::Quantified { .. } => return None,
        })
    }
}
