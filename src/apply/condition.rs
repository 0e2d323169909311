//! Evaluating conditions. A comparison that involves a missing field is false,
//! never an error; values of different kinds are unequal and unordered.

use std::cmp::Ordering;

use serde_json::Value;

use crate::compile::{Cond, Operand};
use crate::syntax::ast::CompareOp;

impl Cond {
    /// Whether the condition holds for `record`.
    pub fn holds(&self, record: &Value) -> bool {
        match self {
            Cond::Or(parts) => parts.iter().any(|c| c.holds(record)),
            Cond::And(parts) => parts.iter().all(|c| c.holds(record)),
            Cond::Not(inner) => !inner.holds(record),
            Cond::Exists(path) => path.get(record).is_some(),
            Cond::In(subject, list) => subject
                .resolve(record)
                .is_some_and(|value| list.iter().any(|item| equal(value, item))),
            Cond::Matches(subject, regex) => subject
                .resolve(record)
                .and_then(Value::as_str)
                .is_some_and(|text| regex.is_match(text)),
            Cond::Compare(left, op, right) => match (left.resolve(record), right.resolve(record)) {
                (Some(l), Some(r)) => compare(l, *op, r),
                _ => false,
            },
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, record: &'a Value) -> Option<&'a Value> {
        match self {
            Operand::Literal(value) => Some(value),
            Operand::Path(path) => path.get(record),
        }
    }
}

fn compare(left: &Value, op: CompareOp, right: &Value) -> bool {
    match op {
        CompareOp::Eq => equal(left, right),
        CompareOp::Ne => !equal(left, right),
        CompareOp::Lt => order(left, right) == Some(Ordering::Less),
        CompareOp::Le => matches!(order(left, right), Some(Ordering::Less | Ordering::Equal)),
        CompareOp::Gt => order(left, right) == Some(Ordering::Greater),
        CompareOp::Ge => matches!(
            order(left, right),
            Some(Ordering::Greater | Ordering::Equal)
        ),
    }
}

/// JSON equality, except that numbers compare by value (`1 == 1.0`).
fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(_), Value::Number(_)) => order(left, right) == Some(Ordering::Equal),
        _ => left == right,
    }
}

/// Numbers order by their exact decimal values (never through floating point:
/// `18446744073709551617 > 18446744073709551616`, `1E-400 > 0`) and strings by
/// their characters; nothing else is ordered.
fn order(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Number(l), Value::Number(r)) => crate::number::compare(l.as_str(), r.as_str()),
        (Value::String(l), Value::String(r)) => Some(l.cmp(r)),
        _ => None,
    }
}
