//! Expressions: what `set`, `append`, `tag add` and `hec` compute, compiled.
//!
//! A path or template is resolved per record; objects and arrays are built from
//! their members; functions convert (`epoch_ms`, `number`, `string`), map
//! (`map`), pick (`coalesce`) or read the clock (`now`). Every function's
//! arity and constant arguments are checked here, so applying one can fail
//! only on a record's data.

use std::sync::Arc;

use regex::Regex;
use serde_json::{Map, Value};

use super::functions::{expression_names, FunctionKind, FUNCTIONS};
use super::{Compiler, TemplateId};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::syntax::ast::{Path, Spanned, ValueExpr};
// A Plan's `parse_time`/`format_time` calls hold one; the filter `format_time`
// parses its own per rendering, so the type lives in the leaf `value`.
pub use crate::value::TimeFormat;

/// A compiled expression.
pub enum Expr {
    Literal(Value),
    /// A copy of the value at a path; nothing is written when it is missing.
    Path(Path),
    /// The value at this path inside `request` (the request that carried the
    /// record: [`crate::apply::Request`]); the empty path is `request` itself.
    Request(Path),
    /// The value at `rest` inside a `let` variable (or an `any`/`all` item), by slot.
    Local {
        slot: usize,
        rest: Path,
    },
    /// The value at `rest` inside the row a lookup (by index) matches; missing without a row.
    Lookup {
        lookup: usize,
        rest: Path,
    },
    /// A template, with the local variables (by slot) it can see.
    Template {
        id: TemplateId,
        locals: Vec<usize>,
    },
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
    /// A function whose arguments are all computed per record (`lower`, `split`, …).
    Text(TextFunction, Vec<Expr>),
    /// `regex_capture(x, "PATTERN"[, GROUP])`.
    RegexCapture {
        subject: Box<Expr>,
        regex: Regex,
        group: Group,
    },
    /// `regex_replace(x, "PATTERN", "REPLACEMENT")`.
    RegexReplace {
        subject: Box<Expr>,
        regex: Regex,
        replacement: String,
    },
    /// `parse_time(x, "FORMAT")`.
    ParseTime(Box<Expr>, Arc<TimeFormat>),
    /// `format_time(x, "FORMAT")`.
    FormatTime(Box<Expr>, Arc<TimeFormat>),
}

/// The functions of [`Call::Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFunction {
    Lower,
    Upper,
    Trim,
    Split,
    Join,
    Replace,
    Truncate,
    ToJson,
    ParseJson,
    Sha256,
    Redact,
}

impl TextFunction {
    fn named(name: &str) -> Option<TextFunction> {
        Some(match name {
            "lower" => TextFunction::Lower,
            "upper" => TextFunction::Upper,
            "trim" => TextFunction::Trim,
            "split" => TextFunction::Split,
            "join" => TextFunction::Join,
            "replace" => TextFunction::Replace,
            "truncate" => TextFunction::Truncate,
            "to_json" => TextFunction::ToJson,
            "parse_json" => TextFunction::ParseJson,
            "sha256" => TextFunction::Sha256,
            "redact" => TextFunction::Redact,
            _ => return None,
        })
    }
}

/// Which group `regex_capture` gives.
pub enum Group {
    Index(usize),
    Name(String),
}

/// How big a regular expression may grow when compiled, so that no pattern
/// (`(a{1000}){1000}`) takes the process's memory or time at load.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a pattern of the transform's own text under xf's size limits.
fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()
}

impl Compiler<'_> {
    pub(super) fn expr(&mut self, value: &Spanned<ValueExpr>) -> Option<Expr> {
        match &value.node {
            ValueExpr::Literal(literal) => Some(Expr::Literal(literal.clone())),
            ValueExpr::Path(path) => {
                let read = self.read_path(path);
                if let Expr::Request(rest) = &read {
                    let _ = self.request_path_exists(rest, value.span);
                }
                Some(read)
            }
            ValueExpr::Template(text) => {
                let name = self.template_name(value.span);
                match self.plan.templates.add(name, text.clone()) {
                    Ok(id) => self
                        .template_names_exist(id, value.span, Some(text))
                        .then(|| Expr::Template {
                            id,
                            locals: self.visible.clone(),
                        }),
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
        let Some(&super::functions::Function {
            usage, min, max, ..
        }) = FUNCTIONS
            .iter()
            .find(|f| f.kind == FunctionKind::Expression && f.name == function.node)
        else {
            let names = expression_names();
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
            "regex_capture" | "regex_replace" | "parse_time" | "format_time" => {
                return self.constant_call(function, args, compiled, usage)
            }
            name if TextFunction::named(name).is_some() => {
                Call::Text(TextFunction::named(name)?, compiled)
            }
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

    /// The functions whose second (and third) arguments are constants,
    /// compiled now: a pattern or a time format is the transform's text, never
    /// a record's, so that no record chooses what runs (or how long).
    fn constant_call(
        &mut self,
        function: &Spanned<String>,
        args: &[Spanned<ValueExpr>],
        mut compiled: Vec<Expr>,
        usage: &str,
    ) -> Option<Expr> {
        let text_at = |compiler: &mut Self, at: usize, what: &str| -> Option<String> {
            match compiled.get(at) {
                Some(Expr::Literal(Value::String(text))) => Some(text.clone()),
                _ => {
                    compiler.errors.push(
                        Diagnostic::new(
                            Code::Arguments,
                            format!("`{}`'s {what} is a literal string", function.node),
                            args[at].span,
                        )
                        .with_label("not a literal string")
                        .with_note(format!("usage: {usage}"))
                        .with_note("record data is never a pattern or a format: write it out in the transform"),
                    );
                    None
                }
            }
        };
        let call = match function.node.as_str() {
            "regex_capture" => {
                let pattern = text_at(self, 1, "pattern")?;
                let regex = self.regex(&pattern, args[1].span)?;
                let group = match compiled.get(2) {
                    None if regex.captures_len() > 1 => Group::Index(1),
                    None => Group::Index(0),
                    Some(Expr::Literal(Value::String(name)))
                        if regex.capture_names().any(|n| n == Some(name)) =>
                    {
                        Group::Name(name.clone())
                    }
                    Some(Expr::Literal(Value::Number(n)))
                        if n.as_u64()
                            .is_some_and(|n| (n as usize) < regex.captures_len()) =>
                    {
                        Group::Index(n.as_u64()? as usize)
                    }
                    Some(_) => {
                        self.errors.push(
                            Diagnostic::new(Code::Arguments, "the pattern has no such group", args[2].span)
                                .with_label(format!("the pattern has {} numbered group(s)", regex.captures_len() - 1))
                                .with_note("GROUP is a constant: a group's number (0: the whole match) or its name"),
                        );
                        return None;
                    }
                };
                Call::RegexCapture {
                    subject: Box::new(compiled.remove(0)),
                    regex,
                    group,
                }
            }
            "regex_replace" => {
                let pattern = text_at(self, 1, "pattern");
                let replacement = text_at(self, 2, "replacement")?;
                let regex = self.regex(&pattern?, args[1].span)?;
                Call::RegexReplace {
                    subject: Box::new(compiled.remove(0)),
                    regex,
                    replacement,
                }
            }
            name => {
                let text = text_at(self, 1, "format")?;
                let format = match TimeFormat::parse(&text) {
                    Ok(format) => Arc::new(format),
                    Err(reason) => {
                        self.errors.push(
                            Diagnostic::new(Code::Arguments, "invalid time format", args[1].span)
                                .with_label(reason)
                                .with_note("formats are `rfc3339` or the time crate's format descriptions: \"[year]-[month]-[day] [hour]:[minute]:[second]\""),
                        );
                        return None;
                    }
                };
                let subject = Box::new(compiled.remove(0));
                if name == "parse_time" {
                    Call::ParseTime(subject, format)
                } else {
                    Call::FormatTime(subject, format)
                }
            }
        };
        Some(Expr::Call(call))
    }

    /// A literal pattern compiled, or a diagnostic at it.
    pub(super) fn regex(&mut self, pattern: &str, span: Span) -> Option<Regex> {
        match compile_regex(pattern) {
            Ok(regex) => Some(regex),
            Err(error) => {
                let reason = error.to_string();
                let last = reason
                    .lines()
                    .last()
                    .unwrap_or("invalid pattern")
                    .trim()
                    .to_string();
                self.errors.push(
                    Diagnostic::new(Code::Regex, "invalid regular expression", span)
                        .with_label(last.trim_start_matches("error: ").to_string())
                        .with_note("patterns use the regex crate's syntax (like RE2: no look-around or back-references)"),
                );
                None
            }
        }
    }

    /// A path read in an expression or condition: `request` first (no
    /// variable or lookup may take its name), then a `let` variable (or an
    /// `any`/`all` item) by its name, then a lookup's matched row by the
    /// lookup's name, then the record.
    pub(super) fn read_path(&self, path: &Path) -> Expr {
        let Some(crate::value::Segment::Key(first)) = path.0.first() else {
            return Expr::Path(path.clone());
        };
        let rest = Path(path.0[1..].to_vec());
        if first == crate::value::REQUEST_NAME {
            return Expr::Request(rest);
        }
        if let Some(slot) = self.local(first) {
            return Expr::Local { slot, rest };
        }
        match self
            .plan
            .templates
            .lookups()
            .iter()
            .position(|l| &l.name == first)
        {
            Some(lookup) => Expr::Lookup { lookup, rest },
            None => Expr::Path(path.clone()),
        }
    }

    fn template_file(&mut self, file: &str, span: Span) -> Option<Expr> {
        match self.plan.templates.add_file(file) {
            Ok(id) => self
                .template_names_exist(id, span, None)
                .then(|| Expr::Template {
                    id,
                    locals: self.visible.clone(),
                }),
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
