//! Warnings (W00xx): what loads and runs, but is probably not what the author
//! meant: a condition that is the same for every record, a label that will
//! never be rendered, an ordering that no record can satisfy as intended, a
//! lookup row that is never used.
//!
//! Input: a file's statements and the plan compiled from them (for its lookup
//! tables and schemas). Output: warning diagnostics, in source order. Each
//! check is conservative: it fires only on what the source itself shows, so
//! a warning is never a guess about a record's data.

use std::collections::BTreeSet;

use serde_json::Value;

use super::Plan;
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::syntax::ast::{CompareOp, Condition, Operand, Segment, Spanned, Statement, ValueExpr};

/// Every warning about `statements` (compiled into `plan`) from `source`.
pub(super) fn lint(
    statements: &[Spanned<Statement>],
    source: &str,
    plan: &Plan,
) -> Vec<Diagnostic> {
    let mut lint = Lint {
        source,
        warnings: Vec::new(),
    };
    lint.statements(statements);
    lint.lookups(statements, plan);
    lint.unsupplied_names(statements, plan);
    lint.warnings.sort_by_key(|w| w.span.start);
    lint.warnings
}

struct Lint<'a> {
    source: &'a str,
    warnings: Vec<Diagnostic>,
}

impl Lint<'_> {
    fn statements(&mut self, statements: &[Spanned<Statement>]) {
        for statement in statements {
            self.statement(statement);
        }
    }

    fn statement(&mut self, statement: &Spanned<Statement>) {
        match &statement.node {
            Statement::Label { target, value } => self.label(target.span, value),
            Statement::Drop(Some(condition)) => self.condition(&condition.node),
            Statement::When {
                condition,
                then,
                otherwise,
            } => {
                self.condition(&condition.node);
                self.statements(then);
                self.statements(otherwise);
            }
            Statement::For { body, .. } => self.statements(body),
            _ => {}
        }
    }

    fn condition(&mut self, condition: &Condition) {
        match condition {
            Condition::Or(parts) | Condition::And(parts) => {
                parts.iter().for_each(|part| self.condition(part))
            }
            Condition::Not(inner) => self.condition(inner),
            Condition::Compare(left, op, right) => self.compare(left, *op, right),
            Condition::Quantified { condition, .. } => self.condition(condition),
            Condition::Exists(_)
            | Condition::In { .. }
            | Condition::Matches(..)
            | Condition::IsNull { .. }
            | Condition::Text(..) => {}
        }
    }

    fn compare(&mut self, left: &Operand, op: CompareOp, right: &Operand) {
        match (&left.node, &right.node) {
            (ValueExpr::Literal(l), ValueExpr::Literal(r)) => {
                self.constant_comparison(left, right, crate::value::compare::compare(l, op, r))
            }
            (ValueExpr::Path(_), ValueExpr::Literal(literal))
            | (ValueExpr::Literal(literal), ValueExpr::Path(_)) => {
                let literal_side = if matches!(left.node, ValueExpr::Literal(_)) {
                    left
                } else {
                    right
                };
                self.ordered_numeric_string(op, literal, literal_side.span);
            }
            _ => {}
        }
    }

    /// W0001: `"detail-type" == "WebhookTest"` compares two strings, so it
    /// holds for every record or for none. A quoted word where a value is
    /// expected is a string; the field is written `."detail-type"`.
    fn constant_comparison(&mut self, left: &Operand, right: &Operand, holds: bool) {
        let message =
            format!("this comparison is {holds} for every record: both sides are constants");
        let quoted =
            [(left, right), (right, left)]
                .into_iter()
                .find_map(|(side, other)| match &side.node {
                    ValueExpr::Literal(Value::String(text)) => Some((side.span, text, other.span)),
                    _ => None,
                });
        let warning = match quoted {
            Some((at, text, other)) => {
                let written = &self.source[at.start..at.end];
                Diagnostic::new(Code::ConstantComparison, message, at)
                    .with_label("a string, not a field")
                    .with_context(other, "compared with this constant")
                    .with_note(format!(
                        "a quoted word where a value is expected is a string; to compare \
                         the field {written}, write `{}`",
                        field_path(text)
                    ))
            }
            None => Diagnostic::new(
                Code::ConstantComparison,
                message,
                Span::new(left.span.start, right.span.end),
            )
            .with_label("compares two constants, no field")
            .with_note("a condition compares a field with a value: `severity >= 8`"),
        };
        self.warnings.push(warning);
    }

    /// W0003: an ordering (`<`, `>=`, …) against a string that holds a
    /// number. The field's kind is unknown before a record comes, but either
    /// way the comparison is not what it reads as: a number in the record is
    /// never ordered with a string (false), and text is ordered by its
    /// characters (`"10" < "9"`). A number literal against a field is not
    /// flagged: the field may hold numbers, which is then right.
    fn ordered_numeric_string(&mut self, op: CompareOp, literal: &Value, at: Span) {
        if matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return;
        }
        let Value::String(text) = literal else {
            return;
        };
        if serde_json::from_str::<serde_json::Number>(text).is_err() {
            return;
        }
        self.warnings.push(
            Diagnostic::new(
                Code::OrderedNumericString,
                format!("ordering a field with the string \"{text}\", which holds a number"),
                at,
            )
            .with_label("a string, not a number")
            .with_note(
                "a number in the record is never ordered with a string (the comparison is \
                 false), and text orders by its characters (\"10\" < \"9\")",
            )
            .with_note(format!("to compare numbers, write `{text}` without quotes")),
        );
    }

    /// W0002: a label's value is a constant, written as it is; one holding
    /// `{{` or `{%` was almost certainly meant to be rendered.
    fn label(&mut self, target: Span, value: &Spanned<Value>) {
        if !holds_template_syntax(&value.node) {
            return;
        }
        let target_text = &self.source[target.start..target.end];
        let value_text = &self.source[value.span.start..value.span.end];
        self.warnings.push(
            Diagnostic::new(
                Code::LabelTemplate,
                "a label's value is never rendered: this template is written as it is",
                value.span,
            )
            .with_label("written literally, braces and all")
            .with_note(format!(
                "to render it, write `tag add {target_text} = {value_text}`"
            )),
        );
    }

    /// W0005: after a `validate` whose schema closes the record to its
    /// properties, a template name that is none of them and that no
    /// statement, variable, loop or lookup of the file supplies renders
    /// empty for every record: most likely a misspelt field. Conservative:
    /// nothing is said for a file that includes another (whose statements
    /// could set anything), nor after a `nest` (the record's shape changes).
    fn unsupplied_names(&mut self, statements: &[Spanned<Statement>], plan: &Plan) {
        let mut supplied = BTreeSet::new();
        if !supplies(statements, &mut supplied) {
            return;
        }
        supplied.extend(plan.templates.lookups().iter().map(|l| l.name.clone()));
        // The request is no field of the record: the schema does not close it.
        supplied.insert(crate::value::REQUEST_NAME.to_string());
        let mut closed: Option<(&str, &[String])> = None;
        for statement in statements {
            match &statement.node {
                Statement::Validate(name) if closed.is_none() => {
                    closed = plan
                        .schemas
                        .iter()
                        .find(|schema| schema.name == name.node)
                        .and_then(|schema| Some((schema.name.as_str(), schema.closed_keys()?)));
                }
                _ if nests(statement) => return,
                _ => {
                    if let Some((schema, keys)) = closed {
                        for (template, span) in inline_templates(statement) {
                            self.unsupplied_in(template, span, schema, keys, &supplied, plan);
                        }
                    }
                }
            }
        }
    }

    fn unsupplied_in(
        &mut self,
        template: &str,
        span: Span,
        schema: &str,
        keys: &[String],
        supplied: &BTreeSet<String>,
        plan: &Plan,
    ) {
        let Some(names) = plan.templates.context_names(template) else {
            return;
        };
        for name in names {
            if keys.contains(&name) || supplied.contains(&name) {
                continue;
            }
            let written = &self.source[span.start..span.end];
            let at = word_at(written, &name)
                .map(|offset| Span::new(span.start + offset, span.start + offset + name.len()))
                .unwrap_or(span);
            let mut warning = Diagnostic::new(
                Code::UnsuppliedTemplateName,
                format!("`{name}` is empty for every record: nothing supplies it"),
                at,
            )
            .with_label("not in the record here")
            .with_note(format!(
                "the schema `{schema}` (validated above) allows only these top-level fields: {}; and no statement, variable or lookup of this file is named `{name}`",
                keys.join(", ")
            ));
            let known: Vec<&str> = keys
                .iter()
                .chain(supplied.iter())
                .map(String::as_str)
                .collect();
            if let Some(best) = super::closest(&name, &known) {
                warning = warning.with_note(format!("did you mean `{best}`?"));
            }
            self.warnings.push(warning);
        }
    }

    /// W0004: a lookup table with rows of one key; only the last is used.
    fn lookups(&mut self, statements: &[Spanned<Statement>], plan: &Plan) {
        for lookup in plan.templates.lookups() {
            if lookup.duplicates.is_empty() {
                continue;
            }
            let Some(file) = statements
                .iter()
                .find_map(|statement| match &statement.node {
                    Statement::Lookup { name, file, .. } if name.node == lookup.name => Some(file),
                    _ => None,
                })
            else {
                continue;
            };
            let count = lookup.duplicates.len();
            let mut warning = Diagnostic::new(
                Code::DuplicateLookupKey,
                format!(
                    "lookup table `{}` has {count} key{} on more than one row: only the last row of each is used",
                    lookup.name,
                    if count == 1 { "" } else { "s" }
                ),
                file.span,
            )
            .with_label(format!("{} has duplicate keys", file.node));
            const SHOWN: usize = 5;
            for (key, rows) in lookup.duplicates.iter().take(SHOWN) {
                warning = warning.with_note(format!("key `{key}`: {rows}"));
            }
            if count > SHOWN {
                warning = warning.with_note(format!("and {} more", count - SHOWN));
            }
            self.warnings.push(warning);
        }
    }
}

/// Whether a literal holds minijinja's syntax in one of its strings.
fn holds_template_syntax(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains("{{") || text.contains("{%"),
        Value::Array(items) => items.iter().any(holds_template_syntax),
        Value::Object(members) => members.values().any(holds_template_syntax),
        _ => false,
    }
}

/// How a condition reads the field named `name`: a bare name when it is one
/// (`severity`), else a quoted key after a dot (`."detail-type"`).
pub(super) fn field_path(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            name,
            "true" | "false" | "null" | "not" | "and" | "or" | "in" | "matches" | "exists"
        );
    if bare {
        name.to_string()
    } else {
        format!(".{}", Value::String(name.to_string()))
    }
}

/// Adds to `names` every top-level name the statements can give the record
/// or a template (fields written, variables, loop and `fan_out` items);
/// false when they include another file, whose statements could give any.
fn supplies(statements: &[Spanned<Statement>], names: &mut BTreeSet<String>) -> bool {
    let first_key = |path: &crate::syntax::ast::Path| match path.0.first() {
        Some(Segment::Key(key)) => Some(key.clone()),
        _ => None,
    };
    for statement in statements {
        match &statement.node {
            Statement::Include(_) => return false,
            Statement::Label { target, .. }
            | Statement::TagAdd { target, .. }
            | Statement::Url { target, .. }
            | Statement::Message { target, .. }
            | Statement::Set { target, .. }
            | Statement::Append { target, .. }
            | Statement::Rename { to: target, .. } => names.extend(first_key(&target.node)),
            Statement::Let { name, .. } | Statement::FanOut { name, .. } => {
                names.insert(name.node.clone());
            }
            Statement::For { name, body, .. } => {
                names.insert(name.node.clone());
                if !supplies(body, names) {
                    return false;
                }
            }
            Statement::When {
                then, otherwise, ..
            } => {
                let complete = supplies(then, names) && supplies(otherwise, names);
                if !complete {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

/// Whether a statement is, or holds, a `nest`.
fn nests(statement: &Spanned<Statement>) -> bool {
    match &statement.node {
        Statement::Nest(_) => true,
        Statement::When {
            then, otherwise, ..
        } => then.iter().chain(otherwise).any(nests),
        Statement::For { body, .. } => body.iter().any(nests),
        _ => false,
    }
}

/// Where `name` first stands as a whole word in `text`.
fn word_at(text: &str, name: &str) -> Option<usize> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(name).map(|(at, _)| at).find(|&at| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// Each inline template a statement (and a block's statements) renders, with
/// the span of the value that holds it.
fn inline_templates(statement: &Spanned<Statement>) -> Vec<(&str, Span)> {
    let mut pending: Vec<&Spanned<ValueExpr>> = match &statement.node {
        Statement::TagAdd { value, .. }
        | Statement::Set { value, .. }
        | Statement::Append { value, .. }
        | Statement::Hec { value, .. }
        | Statement::Let { value, .. }
        | Statement::Message {
            template: value, ..
        }
        | Statement::Fail(value) => vec![value],
        Statement::When {
            then, otherwise, ..
        } => {
            return then
                .iter()
                .chain(otherwise)
                .flat_map(inline_templates)
                .collect()
        }
        Statement::For { body, .. } => return body.iter().flat_map(inline_templates).collect(),
        _ => return Vec::new(),
    };
    let mut templates = Vec::new();
    while let Some(value) = pending.pop() {
        match &value.node {
            ValueExpr::Template(text) => templates.push((text.as_str(), value.span)),
            ValueExpr::Object(members) => pending.extend(members.iter().map(|(_, v)| v)),
            ValueExpr::Array(items) => pending.extend(items),
            ValueExpr::Call { args, .. } => pending.extend(args),
            ValueExpr::Literal(_) | ValueExpr::Path(_) | ValueExpr::TemplateFile(_) => {}
        }
    }
    templates
}
