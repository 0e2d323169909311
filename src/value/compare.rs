//! How xf compares values: the operators a condition is written with, and
//! what each gives on two values. A comparison is both a run-time test (a
//! condition on a record) and a load-time one (a comparison of two literals
//! is warned about with what it always gives), so it lives here where the
//! syntax tree, the compiler and apply all reach it, and the stages need not
//! reach into one another for it.

use std::cmp::Ordering;

use serde_json::Value;

/// A test on text (or, for `contains`, on an array's items).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Whether `left op right` holds: equality as [`equal`], order as numbers by
/// exact value and strings by their characters; values of other kinds (or of
/// two different kinds) are unordered, so every ordering test is false.
pub fn compare(left: &Value, op: CompareOp, right: &Value) -> bool {
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

/// `contains` holds for text holding the other text, and for an array with
/// an item equal to the value; `starts_with` and `ends_with` hold for text only.
pub fn text_test(left: &Value, op: TextOp, right: &Value) -> bool {
    match (op, left, right) {
        (TextOp::Contains, Value::Array(items), item) => items.iter().any(|i| equal(i, item)),
        (TextOp::Contains, Value::String(l), Value::String(r)) => l.contains(r.as_str()),
        (TextOp::StartsWith, Value::String(l), Value::String(r)) => l.starts_with(r.as_str()),
        (TextOp::EndsWith, Value::String(l), Value::String(r)) => l.ends_with(r.as_str()),
        _ => false,
    }
}

/// JSON equality, except that numbers compare by value (`1 == 1.0`).
pub fn equal(left: &Value, right: &Value) -> bool {
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
