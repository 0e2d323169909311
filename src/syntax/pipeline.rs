//! Pipeline files: source text → settings and sections.
//!
//! The same grammar as transforms (`grammar/xf.pest`, rule `pipeline`): the
//! same comments, strings, numbers, conditions and `{ … }` blocks, and the
//! same rustc-style syntax errors. What each setting means is checked later,
//! by whoever reads the file (`xf serve`).

use pest::iterators::Pair;
use pest::Parser as _;

use super::parser::{syntax_diagnostic, too_deep, Rule, XfParser};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::limits::MAX_TRANSFORM_NESTING;

/// A pipeline file's top level.
#[derive(Debug, Clone, PartialEq)]
pub enum Declaration {
    Setting(Setting),
    Section(Section),
}

/// `kind name [at "path"] { settings }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: Word,
    pub name: Word,
    pub at: Option<Word>,
    pub settings: Vec<Setting>,
    pub span: Span,
}

/// `name value, value… [= value]`, or `when CONDITION`.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub name: Word,
    pub values: Vec<Value>,
    /// What follows `=` (a header's value).
    pub assigned: Option<Value>,
    /// For `when`: where its condition is in the source.
    pub condition: Option<Span>,
    pub span: Span,
}

/// A word or a string's text, and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
}

/// One value of a setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueKind {
    /// `"…"`, unescaped.
    Text(String),
    /// A JSON number, as written.
    Number(String),
    /// A bare word (`hec`, `none`, `security_incident`).
    Word(String),
    /// `env "NAME"`: read from the environment when the pipeline loads.
    Env(String),
    /// `file "PATH"`: read from a file (its first line) when the pipeline loads.
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub kind: ValueKind,
    pub span: Span,
}

/// Parses a whole pipeline file.
pub fn parse_pipeline(source: &str) -> Result<Vec<Declaration>, Vec<Diagnostic>> {
    if let Some(diagnostic) = too_deep(source, MAX_TRANSFORM_NESTING) {
        return Err(vec![diagnostic]);
    }
    pest::set_error_detail(true);
    let mut pairs = XfParser::parse(Rule::pipeline, source).map_err(|error| {
        let mut diagnostic = syntax_diagnostic(source, &error);
        // The transform language's only blocks are `when`'s; a pipeline's are sections.
        diagnostic.label = diagnostic.label.replace("a `when` block", "a block");
        vec![diagnostic]
    })?;
    let file = pairs
        .next()
        .expect("the pipeline rule always yields one pair");
    let mut errors = Vec::new();
    let mut declarations = Vec::new();
    for pair in file.into_inner() {
        match pair.as_rule() {
            Rule::section => declarations.push(Declaration::Section(section(pair, &mut errors))),
            Rule::setting => declarations.push(Declaration::Setting(setting(pair, &mut errors))),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(declarations)
    } else {
        Err(errors)
    }
}

/// The declarations with every position reset, to compare what two texts
/// say (`xf fmt`'s safety net). A `when` keeps only that it has a condition.
pub fn without_spans(mut declarations: Vec<Declaration>) -> Vec<Declaration> {
    for declaration in &mut declarations {
        match declaration {
            Declaration::Setting(setting) => unspan_setting(setting),
            Declaration::Section(section) => {
                section.span = Span::default();
                section.kind.span = Span::default();
                section.name.span = Span::default();
                if let Some(at) = &mut section.at {
                    at.span = Span::default();
                }
                section.settings.iter_mut().for_each(unspan_setting);
            }
        }
    }
    declarations
}

fn unspan_setting(setting: &mut Setting) {
    setting.span = Span::default();
    setting.name.span = Span::default();
    for value in setting.values.iter_mut().chain(setting.assigned.as_mut()) {
        value.span = Span::default();
    }
    if let Some(condition) = &mut setting.condition {
        *condition = Span::default();
    }
}

fn section(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Section {
    let span = Span::from(pair.as_span());
    let mut inner = pair.into_inner();
    let kind = word(inner.next());
    let name = word(inner.next());
    let mut at = None;
    let mut settings = Vec::new();
    for part in inner {
        match part.as_rule() {
            Rule::string => at = Some(text(&part, errors)),
            Rule::setting => settings.push(setting(part, errors)),
            _ => {}
        }
    }
    Section {
        kind,
        name,
        at,
        settings,
        span,
    }
}

fn setting(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Setting {
    let span = Span::from(pair.as_span());
    let mut parts = pair.into_inner().peekable();
    if parts.peek().map(Pair::as_rule) == Some(Rule::when_setting) {
        let when = parts.next().expect("peeked");
        let mut inner = when.into_inner();
        let keyword = word(inner.next());
        let condition = inner.next().map(|c| Span::from(c.as_span()));
        return Setting {
            name: keyword,
            values: Vec::new(),
            assigned: None,
            condition,
            span,
        };
    }
    let name = word(parts.next());
    let mut values = Vec::new();
    let mut assigned = None;
    for part in parts {
        if part.as_rule() == Rule::assigned {
            assigned = part.into_inner().next().map(|v| value(v, errors));
        } else {
            values.push(value(part, errors));
        }
    }
    Setting {
        name,
        values,
        assigned,
        condition: None,
        span,
    }
}

fn value(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Value {
    let span = Span::from(pair.as_span());
    let kind = match pair.as_rule() {
        Rule::string => ValueKind::Text(text(&pair, errors).text),
        Rule::number => ValueKind::Number(pair.as_str().to_string()),
        Rule::secret => {
            let mut inner = pair.into_inner();
            let keyword = inner
                .next()
                .map(|k| k.as_str().to_string())
                .unwrap_or_default();
            let name = inner
                .next()
                .map(|s| text(&s, errors).text)
                .unwrap_or_default();
            if keyword == "env" {
                ValueKind::Env(name)
            } else {
                ValueKind::File(name)
            }
        }
        _ => ValueKind::Word(pair.as_str().to_string()),
    };
    Value { kind, span }
}

fn word(pair: Option<Pair<'_, Rule>>) -> Word {
    match pair {
        Some(pair) => Word {
            text: pair.as_str().to_string(),
            span: Span::from(pair.as_span()),
        },
        None => Word {
            text: String::new(),
            span: Span::default(),
        },
    }
}

/// A string literal's text, its JSON escapes resolved.
fn text(pair: &Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Word {
    let span = Span::from(pair.as_span());
    match serde_json::from_str::<String>(pair.as_str()) {
        Ok(text) => Word { text, span },
        Err(_) => {
            errors.push(
                Diagnostic::new(
                    Code::BadEscape,
                    "this string has an escape JSON does not allow",
                    span,
                )
                .with_label("not a valid JSON string"),
            );
            Word {
                text: String::new(),
                span,
            }
        }
    }
}
