//! Expressions: what `set`, `append`, `tag add` and `hec` compute, compiled.
//!
//! A path or template is resolved per record; objects and arrays are built from
//! their members; functions convert (`epoch_ms`, `number`, `string`), map
//! (`map`), pick (`coalesce`) or read the clock (`now`). Every function's
//! arity and constant arguments are checked here, so applying one can fail
//! only on a record's data.

use serde_json::{Map, Value};

use super::{Compiler, TemplateId};
use crate::diagnostic::{Code, Diagnostic};
use crate::syntax::ast::{Path, Spanned, ValueExpr};

/// A compiled expression.
pub enum Expr {
    Literal(Value),
    /// A copy of the value at a path; nothing is written when it is missing.
    Path(Path),
    Template(TemplateId),
    /// An object; members whose value is missing are left out.
    Object(Vec<(String, Expr)>),
    /// An array; items whose value is missing are left out.
    Array(Vec<Expr>),
    Call(Call),
}

/// A function call, its arguments checked.
pub enum Call {
    /// `epoch_ms(x)`: a time (epoch s/ms/µs/ns or RFC 3339) as epoch milliseconds.
    EpochMs(Box<Expr>),
    /// `number(x)`: a number, or a string that holds one.
    Number(Box<Expr>),
    /// `string(x)`: a scalar as text; an object or array as its JSON text.
    String(Box<Expr>),
    /// `map(x, {"HIGH": 4, …}, default)`: the table's value for x (as text).
    Map {
        subject: Box<Expr>,
        table: Map<String, Value>,
        default: Option<Value>,
    },
    /// `coalesce(a, b, …)`: the first that is present and not null.
    Coalesce(Vec<Expr>),
    /// `now()`: the current time in epoch milliseconds.
    Now,
}

/// A function's name, how it is called (for diagnostics), and how many arguments it takes.
pub struct Function {
    pub name: &'static str,
    pub usage: &'static str,
    pub min: usize,
    pub max: usize,
}

const fn function(name: &'static str, usage: &'static str, min: usize, max: usize) -> Function {
    Function {
        name,
        usage,
        min,
        max,
    }
}

/// Every function of the language.
pub const FUNCTIONS: &[Function] = &[
    function("epoch_ms", "epoch_ms(VALUE)", 1, 1),
    function("number", "number(VALUE)", 1, 1),
    function("string", "string(VALUE)", 1, 1),
    function("map", "map(VALUE, {\"KEY\": RESULT, …}[, DEFAULT])", 2, 3),
    function("coalesce", "coalesce(VALUE, VALUE, …)", 1, usize::MAX),
    function("now", "now()", 0, 0),
];

impl Compiler<'_> {
    pub(super) fn expr(&mut self, value: &Spanned<ValueExpr>) -> Option<Expr> {
        match &value.node {
            ValueExpr::Literal(literal) => Some(Expr::Literal(literal.clone())),
            ValueExpr::Path(path) => Some(Expr::Path(path.clone())),
            ValueExpr::Template(text) => {
                let name = self.template_name(value.span);
                match self.plan.templates.add(name, text.clone()) {
                    Ok(id) => self
                        .template_names_exist(id, value.span, Some(text))
                        .then_some(Expr::Template(id)),
                    Err(error) => {
                        self.template_error(error, value.span, text);
                        None
                    }
                }
            }
            ValueExpr::TemplateFile(file) => self.template_file(file, value.span),
            ValueExpr::Object(members) => {
                // Compile every member, so that every error is reported.
                let compiled: Vec<Option<(String, Expr)>> = members
                    .iter()
                    .map(|(key, value)| Some((key.clone(), self.expr(value)?)))
                    .collect();
                compiled
                    .into_iter()
                    .collect::<Option<_>>()
                    .map(Expr::Object)
            }
            ValueExpr::Array(items) => {
                let compiled: Vec<Option<Expr>> = items.iter().map(|i| self.expr(i)).collect();
                compiled.into_iter().collect::<Option<_>>().map(Expr::Array)
            }
            ValueExpr::Call { function, args } => self.call(function, args),
        }
    }

    fn call(&mut self, function: &Spanned<String>, args: &[Spanned<ValueExpr>]) -> Option<Expr> {
        let Some(&Function {
            usage, min, max, ..
        }) = FUNCTIONS.iter().find(|f| f.name == function.node)
        else {
            let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.name).collect();
            self.unknown(
                Code::UnknownFunction,
                "function",
                &function.node,
                function.span,
                &names,
            );
            return None;
        };
        if args.len() < min || args.len() > max {
            self.errors.push(
                Diagnostic::new(
                    Code::Arguments,
                    format!(
                        "`{}` takes {}, not {}",
                        function.node,
                        match (min, max) {
                            (0, 0) => "no arguments".to_string(),
                            (1, 1) => "one argument".to_string(),
                            (min, usize::MAX) => format!("at least {min}"),
                            (min, max) => format!("{min} or {max} arguments"),
                        },
                        args.len()
                    ),
                    function.span,
                )
                .with_label("called here")
                .with_note(format!("usage: {usage}")),
            );
            return None;
        }
        let mut compiled = Vec::new();
        for arg in args {
            compiled.push(self.expr(arg));
        }
        let mut compiled: Vec<Expr> = compiled.into_iter().collect::<Option<_>>()?;
        let first = |compiled: &mut Vec<Expr>| Box::new(compiled.remove(0));
        Some(Expr::Call(match function.node.as_str() {
            "epoch_ms" => Call::EpochMs(first(&mut compiled)),
            "number" => Call::Number(first(&mut compiled)),
            "string" => Call::String(first(&mut compiled)),
            "coalesce" => Call::Coalesce(compiled),
            "now" => Call::Now,
            _ => {
                // map: the table and the default are constants, known now.
                let table = match &compiled[1] {
                    Expr::Literal(Value::Object(table)) => table.clone(),
                    _ => {
                        self.errors.push(
                            Diagnostic::new(
                                Code::Arguments,
                                "`map` needs its table written out as an object of constants",
                                args[1].span,
                            )
                            .with_label("not a constant object")
                            .with_note(format!("usage: {usage}")),
                        );
                        return None;
                    }
                };
                let default = match compiled.get(2) {
                    None => None,
                    Some(Expr::Literal(value)) => Some(value.clone()),
                    Some(_) => {
                        self.errors.push(
                            Diagnostic::new(
                                Code::Arguments,
                                "`map`'s default is a constant",
                                args[2].span,
                            )
                            .with_label("computed per record")
                            .with_note(
                                "for a computed fallback, use coalesce(map(VALUE, {…}), FALLBACK)",
                            ),
                        );
                        return None;
                    }
                };
                Call::Map {
                    subject: first(&mut compiled),
                    table,
                    default,
                }
            }
        }))
    }

    fn template_file(&mut self, file: &str, span: crate::diagnostic::Span) -> Option<Expr> {
        match self.plan.templates.add_file(file) {
            Ok(id) => self
                .template_names_exist(id, span, None)
                .then_some(Expr::Template(id)),
            Err(error) => {
                let code = if error.not_found {
                    Code::TemplateFile
                } else {
                    Code::Template
                };
                let mut diagnostic = Diagnostic::new(code, "template file does not load", span)
                    .with_label(error.message.clone());
                if let (Some(file), Some(line)) = (&error.file, error.line) {
                    diagnostic = diagnostic.with_note(format!("in {file}, line {line}"));
                }
                self.errors.push(diagnostic);
                None
            }
        }
    }
}
