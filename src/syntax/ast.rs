//! The syntax tree of a `.xf` file, as written: nothing is resolved or checked
//! here beyond what the grammar guarantees. Every node that can be the subject
//! of a diagnostic carries the [`Span`] of its source text.

use serde_json::Value;

use crate::diagnostic::Span;

/// A node together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(node: T, span: Span) -> Self {
        Spanned { node, span }
    }
}

/// The operators are written in the syntax; what they give on two values is
/// the same at load (a constant comparison's warning) and per record, so they
/// live with the comparison in the leaf [`crate::value::compare`].
pub use crate::value::compare::{CompareOp, TextOp};
/// Paths are written in the syntax and used by every stage after it.
pub use crate::value::{Path, Segment};

/// A statement of the language.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Name(Spanned<String>),
    Format(Spanned<String>),
    Events(Vec<Spanned<String>>),
    Lookup {
        name: Spanned<String>,
        file: Spanned<String>,
        key: Spanned<Path>,
        column: Option<Spanned<String>>,
    },
    Search {
        kind: Spanned<String>,
        base: Spanned<String>,
    },
    Label {
        target: Spanned<Path>,
        value: Spanned<Value>,
    },
    TagAdd {
        target: Spanned<Path>,
        value: Spanned<ValueExpr>,
    },
    TagRemove(Vec<Spanned<Path>>),
    Url {
        target: Spanned<Path>,
        from: Spanned<Path>,
        via: Option<Spanned<String>>,
    },
    /// The condition's span is its own text (the trace shows it).
    Drop(Option<Spanned<Condition>>),
    When {
        condition: Spanned<Condition>,
        then: Vec<Spanned<Statement>>,
        otherwise: Vec<Spanned<Statement>>,
    },
    Message {
        target: Spanned<Path>,
        template: Spanned<ValueExpr>,
    },
    Hec {
        key: Spanned<HecKey>,
        value: Spanned<ValueExpr>,
    },
    /// `validate "SCHEMA"`: a shipped schema's name, or a `.json` file beside the `.xf`.
    Validate(Spanned<String>),
    /// `set TARGET = EXPR`: write a value of any type.
    Set {
        target: Spanned<Path>,
        value: Spanned<ValueExpr>,
    },
    /// `append TARGET = EXPR`: add an item to the array at TARGET.
    Append {
        target: Spanned<Path>,
        value: Spanned<ValueExpr>,
    },
    /// `rename FROM to TO`: move a value to another path.
    Rename {
        from: Spanned<Path>,
        to: Spanned<Path>,
    },
    /// `nest TARGET`: the whole record becomes the value at TARGET of a new record.
    Nest(Spanned<Path>),
    /// `for NAME in PATH { … }`: the block once per item, NAME standing for the item.
    For {
        name: Spanned<String>,
        over: Spanned<Path>,
        body: Vec<Spanned<Statement>>,
    },
    /// `fan_out NAME in PATH`: the statements after it run once per item of
    /// PATH, on a copy of the record each, NAME standing for the item; each
    /// copy is one output record.
    FanOut {
        name: Spanned<String>,
        over: Spanned<Path>,
    },
    /// `fail "MESSAGE"`: the record is a record error with this (templated) message.
    Fail(Spanned<ValueExpr>),
    /// `include "FILE.xf"`: another transform's statements, run here.
    Include(Spanned<String>),
    /// `let NAME = EXPR`: a local variable of the record's run, never written out.
    Let {
        name: Spanned<String>,
        value: Spanned<ValueExpr>,
    },
}

/// Where a `hec` statement writes in the Splunk HEC envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HecKey {
    /// `time`, `host`, `source`, `sourcetype`, `index` (checked when compiling).
    Envelope(String),
    /// `fields.NAME`: an indexed field.
    Field(String),
}

/// What a statement writes: a constant, a copy of a record field, or a template.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueExpr {
    Literal(Value),
    Path(Path),
    /// An inline template; the span of the enclosing node points at the literal.
    Template(String),
    /// A template kept in its own file beside the `.xf`.
    TemplateFile(String),
    /// An object whose members are computed (a constant one is a `Literal`).
    Object(Vec<(String, Spanned<ValueExpr>)>),
    /// An array whose items are computed (a constant one is a `Literal`).
    Array(Vec<Spanned<ValueExpr>>),
    /// A function call: `epoch_ms(ran_at)`.
    Call {
        function: Spanned<String>,
        args: Vec<Spanned<ValueExpr>>,
    },
}

/// A boolean test on a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    Or(Vec<Condition>),
    And(Vec<Condition>),
    Not(Box<Condition>),
    Exists(Spanned<Path>),
    /// `X in [...]`, or with `negated`, `X not in [...]`.
    In {
        subject: Operand,
        list: Vec<Value>,
        negated: bool,
    },
    Matches(Operand, Spanned<String>),
    /// Each side is spanned, for warnings about the comparison.
    Compare(Operand, CompareOp, Operand),
    /// `X is null`, or with `negated`, `X is not null`.
    IsNull {
        subject: Operand,
        negated: bool,
    },
    /// `X contains Y`, `X starts_with Y`, `X ends_with Y`.
    Text(Operand, TextOp, Operand),
    /// `any(NAME in OVER: CONDITION)`, or with `all`, `all(…)`.
    Quantified {
        all: bool,
        name: Spanned<String>,
        over: Operand,
        condition: Box<Condition>,
    },
}

/// One side of a comparison: a literal, a path or a function call.
pub type Operand = Spanned<ValueExpr>;

/// `statements` with every span zeroed, so that two trees compare by what
/// they say, not where they were written (`xf fmt` checks its output so).
pub fn without_spans(mut statements: Vec<Spanned<Statement>>) -> Vec<Spanned<Statement>> {
    unspan_statements(&mut statements);
    statements
}

fn unspan<T>(node: &mut Spanned<T>) {
    node.span = Span::default();
}

fn unspan_statements(statements: &mut [Spanned<Statement>]) {
    for statement in statements {
        unspan(statement);
        unspan_statement(&mut statement.node);
    }
}

fn unspan_statement(statement: &mut Statement) {
    match statement {
        Statement::Name(s) | Statement::Format(s) | Statement::Validate(s) => unspan(s),
        Statement::Include(s) => unspan(s),
        Statement::Events(names) => names.iter_mut().for_each(unspan),
        Statement::Lookup {
            name,
            file,
            key,
            column,
        } => {
            unspan(name);
            unspan(file);
            unspan(key);
            column.iter_mut().for_each(unspan);
        }
        Statement::Search { kind, base } => {
            unspan(kind);
            unspan(base);
        }
        Statement::Label { target, value } => {
            unspan(target);
            unspan(value);
        }
        Statement::TagAdd { target, value }
        | Statement::Set { target, value }
        | Statement::Append { target, value }
        | Statement::Message {
            target,
            template: value,
        } => {
            unspan(target);
            unspan_expr(value);
        }
        Statement::TagRemove(paths) => paths.iter_mut().for_each(unspan),
        Statement::Url { target, from, via } => {
            unspan(target);
            unspan(from);
            via.iter_mut().for_each(unspan);
        }
        Statement::Drop(condition) => condition.iter_mut().for_each(|condition| {
            unspan(condition);
            unspan_condition(&mut condition.node);
        }),
        Statement::When {
            condition,
            then,
            otherwise,
        } => {
            unspan(condition);
            unspan_condition(&mut condition.node);
            unspan_statements(then);
            unspan_statements(otherwise);
        }
        Statement::Hec { key, value } => {
            unspan(key);
            unspan_expr(value);
        }
        Statement::Rename { from, to } => {
            unspan(from);
            unspan(to);
        }
        Statement::Nest(target) => unspan(target),
        Statement::For { name, over, body } => {
            unspan(name);
            unspan(over);
            unspan_statements(body);
        }
        Statement::FanOut { name, over } => {
            unspan(name);
            unspan(over);
        }
        Statement::Fail(value) => unspan_expr(value),
        Statement::Let { name, value } => {
            unspan(name);
            unspan_expr(value);
        }
    }
}

fn unspan_expr(expr: &mut Spanned<ValueExpr>) {
    unspan(expr);
    match &mut expr.node {
        ValueExpr::Literal(_)
        | ValueExpr::Path(_)
        | ValueExpr::Template(_)
        | ValueExpr::TemplateFile(_) => {}
        ValueExpr::Object(members) => members.iter_mut().for_each(|(_, v)| unspan_expr(v)),
        ValueExpr::Array(items) => items.iter_mut().for_each(unspan_expr),
        ValueExpr::Call { function, args } => {
            unspan(function);
            args.iter_mut().for_each(unspan_expr);
        }
    }
}

fn unspan_condition(condition: &mut Condition) {
    match condition {
        Condition::Or(parts) | Condition::And(parts) => parts.iter_mut().for_each(unspan_condition),
        Condition::Not(inner) => unspan_condition(inner),
        Condition::Exists(path) => unspan(path),
        Condition::In { subject, .. } | Condition::IsNull { subject, .. } => unspan_expr(subject),
        Condition::Matches(subject, pattern) => {
            unspan_expr(subject);
            unspan(pattern);
        }
        Condition::Compare(left, _, right) | Condition::Text(left, _, right) => {
            unspan_expr(left);
            unspan_expr(right);
        }
        Condition::Quantified {
            name,
            over,
            condition,
            ..
        } => {
            unspan(name);
            unspan_expr(over);
            unspan_condition(condition);
        }
    }
}
