//! pest pairs → [`ast`](super::ast) nodes, and pest errors → diagnostics.

use pest::iterators::Pair;
use pest::Parser as _;
use serde_json::Value;

use super::ast::{
    CompareOp, Condition, HecKey, Operand, Path, Segment, Spanned, Statement, TextOp, ValueExpr,
};
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::limits::{MAX_TRANSFORM_NESTING, MAX_WHEN_CHAIN};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/xf.pest"]
pub(super) struct XfParser;

/// The statements' keywords, for "unknown statement" suggestions (and `xf lsp`'s completion).
pub const STATEMENT_KEYWORDS: &[&str] = &[
    "name", "format", "events", "lookup", "search", "label", "tag", "url", "drop", "when",
    "message", "hec", "validate", "set", "append", "rename", "nest", "for", "fan_out", "fail",
    "include", "let",
];

/// Parses a whole `.xf` source into its statements.
pub fn parse(source: &str) -> Result<Vec<Spanned<Statement>>, Vec<Diagnostic>> {
    // The parser, the compiler and apply all recurse on nesting: bound it
    // before any of them runs, so that no file can exhaust the stack.
    if let Some(diagnostic) = too_deep(source, MAX_TRANSFORM_NESTING) {
        return Err(vec![diagnostic]);
    }
    // Ask pest for the literal tokens it expected (`=`, `}`), not just rule names.
    pest::set_error_detail(true);
    let mut syntax_errors = Vec::new();
    // Each syntax error's line is blanked and the file parsed again, so that
    // one run reports the errors of several lines. Offsets stay those of the
    // source (a blanked line keeps its length and line end).
    let mut text = std::borrow::Cow::Borrowed(source);
    let pairs = loop {
        match XfParser::parse(Rule::file, &text) {
            Ok(pairs) => break Some(pairs),
            Err(error) => {
                let diagnostic = syntax_diagnostic(&text, &error);
                let at = diagnostic.span.start;
                syntax_errors.push(diagnostic);
                match recoverable_line(&text, at) {
                    Some(line) if syntax_errors.len() < MAX_SYNTAX_ERRORS => {
                        text = std::borrow::Cow::Owned(blank(&text, line));
                    }
                    _ => break None,
                }
            }
        }
    };
    let Some(mut pairs) = pairs else {
        return Err(syntax_errors);
    };
    let file = pairs.next().expect("the file rule always yields one pair");
    let mut errors = syntax_errors;
    let statements = statements(file.into_inner(), &mut errors);
    if errors.is_empty() {
        Ok(statements)
    } else {
        errors.sort_by_key(|d| d.span.start);
        Err(errors)
    }
}

/// Syntax errors reported in one run at most; past that, fixing the first
/// ones is the next step anyway.
const MAX_SYNTAX_ERRORS: usize = 20;

/// The byte range of the line holding `at`, when parsing can go on without
/// it: the line opens or closes no block, bracket or triple-quoted text (its
/// statement is then the line alone, and blanking it leaves the rest of the
/// file's structure as it was).
fn recoverable_line(source: &str, at: usize) -> Option<std::ops::Range<usize>> {
    let at = at.min(source.len());
    let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = source[at..].find('\n').map_or(source.len(), |i| at + i);
    let line = &source[start..end];
    if line.trim().is_empty() || line.contains("\"\"\"") {
        return None;
    }
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    for c in line.chars() {
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => in_string = false,
            (true, ..) => {}
            (false, _, '"') => in_string = true,
            (false, _, '#') => break,
            (false, _, '{' | '}') => return None,
            (false, _, '[' | '(') => depth += 1,
            (false, _, ']' | ')') => depth -= 1,
            _ => {}
        }
    }
    (depth == 0).then_some(start..end)
}

/// `source` with the bytes of `line` (a range without its line end) as spaces.
fn blank(source: &str, line: std::ops::Range<usize>) -> String {
    let mut text = String::with_capacity(source.len());
    text.push_str(&source[..line.start]);
    text.extend(std::iter::repeat_n(' ', line.len()));
    text.push_str(&source[line.end..]);
    text
}

fn statements<'a>(
    pairs: impl Iterator<Item = Pair<'a, Rule>>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Spanned<Statement>> {
    pairs
        .filter(|pair| !matches!(pair.as_rule(), Rule::EOI))
        .filter_map(|pair| {
            let span = Span::from(pair.as_span());
            statement(pair, errors).map(|node| Spanned::new(node, span))
        })
        .collect()
}

fn statement(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Statement> {
    let rule = pair.as_rule();
    // Keywords are pairs too; the parts that matter are the others. The grammar
    // guarantees the parts each arm takes, so `?` on them never fires.
    let mut parts = pair.into_inner().filter(|p| !is_keyword(p.as_rule()));
    let statement = match rule {
        Rule::name_stmt => Statement::Name(string(parts.next()?, errors)?),
        Rule::format_stmt => Statement::Format(word(parts.next()?)),
        Rule::events_stmt => Statement::Events(parts.map(word).collect()),
        Rule::lookup_stmt => Statement::Lookup {
            name: word(parts.next()?),
            file: string(parts.next()?, errors)?,
            key: spanned_path(parts.next()?, errors)?,
            column: match parts.next() {
                Some(p) => Some(string(p, errors)?),
                None => None,
            },
        },
        Rule::search_stmt => Statement::Search {
            kind: word(parts.next()?),
            base: string(parts.next()?, errors)?,
        },
        Rule::label_stmt => {
            let target = spanned_path(parts.next()?, errors)?;
            let value = parts.next()?;
            let span = value.as_span().into();
            Statement::Label {
                target,
                value: Spanned::new(literal(value, errors)?, span),
            }
        }
        Rule::tag_add => Statement::TagAdd {
            target: spanned_path(parts.next()?, errors)?,
            value: value_expr(parts.next()?, errors)?,
        },
        Rule::tag_remove => Statement::TagRemove(
            parts
                .map(|p| spanned_path(p, errors))
                .collect::<Option<Vec<_>>>()?,
        ),
        Rule::url_stmt => Statement::Url {
            target: spanned_path(parts.next()?, errors)?,
            from: spanned_path(parts.next()?, errors)?,
            via: parts.next().map(word),
        },
        Rule::drop_stmt => Statement::Drop(match parts.next() {
            Some(p) => Some(spanned_condition(p, errors)?),
            None => None,
        }),
        Rule::when_stmt => {
            let condition = spanned_condition(parts.next()?, errors)?;
            let then = statements(parts.next()?.into_inner(), errors);
            let otherwise = match parts.next() {
                // `else when …`: a block holding that one statement.
                Some(p) if p.as_rule() == Rule::when_stmt => {
                    let span = Span::from(p.as_span());
                    vec![Spanned::new(statement(p, errors)?, span)]
                }
                Some(p) => statements(p.into_inner(), errors),
                None => Vec::new(),
            };
            Statement::When {
                condition,
                then,
                otherwise,
            }
        }
        Rule::message_stmt => Statement::Message {
            target: spanned_path(parts.next()?, errors)?,
            template: value_expr(parts.next()?, errors)?,
        },
        Rule::hec_stmt => Statement::Hec {
            key: hec_key(parts.next()?, errors)?,
            value: value_expr(parts.next()?, errors)?,
        },
        Rule::validate_stmt => Statement::Validate(string(parts.next()?, errors)?),
        Rule::set_stmt => Statement::Set {
            target: spanned_path(parts.next()?, errors)?,
            value: value_expr(parts.next()?, errors)?,
        },
        Rule::append_stmt => Statement::Append {
            target: spanned_path(parts.next()?, errors)?,
            value: value_expr(parts.next()?, errors)?,
        },
        Rule::rename_stmt => Statement::Rename {
            from: spanned_path(parts.next()?, errors)?,
            to: spanned_path(parts.next()?, errors)?,
        },
        Rule::nest_stmt => Statement::Nest(spanned_path(parts.next()?, errors)?),
        Rule::for_stmt => Statement::For {
            name: word(parts.next()?),
            over: spanned_path(parts.next()?, errors)?,
            body: statements(parts.next()?.into_inner(), errors),
        },
        Rule::fan_out_stmt => Statement::FanOut {
            name: word(parts.next()?),
            over: spanned_path(parts.next()?, errors)?,
        },
        Rule::fail_stmt => Statement::Fail(value_expr(parts.next()?, errors)?),
        Rule::include_stmt => Statement::Include(string(parts.next()?, errors)?),
        Rule::let_stmt => Statement::Let {
            name: word(parts.next()?),
            value: value_expr(parts.next()?, errors)?,
        },
        other => unreachable!("not a statement rule: {other:?}"),
    };
    Some(statement)
}

fn is_keyword(rule: Rule) -> bool {
    format!("{rule:?}").starts_with("kw_")
}

fn word(pair: Pair<'_, Rule>) -> Spanned<String> {
    Spanned::new(pair.as_str().to_string(), pair.as_span().into())
}

/// Decodes a `"…"` literal with JSON's escapes.
fn string(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Spanned<String>> {
    let span = Span::from(pair.as_span());
    match serde_json::from_str::<String>(pair.as_str()) {
        Ok(text) => Some(Spanned::new(text, span)),
        Err(error) => {
            // serde_json's column is 1-based inside the literal and points at the escape's letter.
            let escape_start =
                (span.start + error.column().saturating_sub(2)).clamp(span.start, span.end);
            let escape = Span::new(escape_start, (escape_start + 2).min(span.end));
            errors.push(
                Diagnostic::new(Code::BadEscape, "invalid escape in string", escape)
                    .with_label("not a JSON escape")
                    .with_note(
                        "strings take JSON's escapes: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX",
                    ),
            );
            None
        }
    }
}

/// The text of a `"""…"""` literal: a newline right after the opening quotes and
/// a last line of only blanks before the closing quotes are not part of it.
fn triple_string(pair: &Pair<'_, Rule>) -> String {
    let raw = pair.as_str();
    let mut text = &raw[3..raw.len() - 3];
    text = text
        .strip_prefix("\r\n")
        .or_else(|| text.strip_prefix('\n'))
        .unwrap_or(text);
    if let Some(last_newline) = text.rfind('\n') {
        if text[last_newline + 1..].trim().is_empty() {
            text = text[..last_newline]
                .strip_suffix('\r')
                .unwrap_or(&text[..last_newline]);
        }
    }
    text.to_string()
}

fn literal(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Value> {
    match pair.as_rule() {
        Rule::string => string(pair, errors).map(|s| Value::String(s.node)),
        Rule::number | Rule::boolean | Rule::null => {
            // The grammar only admits JSON's number syntax; huge exponents become
            // an error here rather than a panic.
            match serde_json::from_str(pair.as_str()) {
                // Kept as written, as a record's numbers are (serde_json
                // would respell `1e400` as `1e+400`).
                Ok(Value::Number(_)) => {
                    Some(Value::Number(crate::number::as_written(pair.as_str())))
                }
                Ok(value) => Some(value),
                Err(error) => {
                    errors.push(
                        Diagnostic::new(Code::Syntax, "number out of range", pair.as_span().into())
                            .with_label(error.to_string()),
                    );
                    None
                }
            }
        }
        Rule::array => {
            let items: Option<Vec<Value>> = pair.into_inner().map(|p| literal(p, errors)).collect();
            items.map(Value::Array)
        }
        Rule::object => {
            let mut object = serde_json::Map::new();
            for member in pair.into_inner() {
                let mut parts = member.into_inner();
                let key = string(parts.next()?, errors)?;
                let value = literal(parts.next()?, errors)?;
                object.insert(key.node, value);
            }
            Some(Value::Object(object))
        }
        other => unreachable!("not a literal rule: {other:?}"),
    }
}

fn value_expr(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Spanned<ValueExpr>> {
    let span = Span::from(pair.as_span());
    let node = match pair.as_rule() {
        Rule::template_file => {
            let file = string(pair.into_inner().nth(1)?, errors)?;
            ValueExpr::TemplateFile(file.node)
        }
        Rule::triple_string => ValueExpr::Template(triple_string(&pair)),
        Rule::string => {
            let text = string(pair, errors)?.node;
            if is_template(&text) {
                ValueExpr::Template(text)
            } else {
                ValueExpr::Literal(Value::String(text))
            }
        }
        Rule::path => ValueExpr::Path(path(pair, errors)?),
        Rule::call | Rule::operand_call => {
            let mut parts = pair.into_inner();
            let function = word(parts.next()?);
            let args = parts
                .map(|p| value_expr(p, errors))
                .collect::<Option<Vec<_>>>()?;
            ValueExpr::Call { function, args }
        }
        Rule::build_array => {
            let items = pair
                .into_inner()
                .map(|p| value_expr(p, errors))
                .collect::<Option<Vec<_>>>()?;
            match items.iter().map(constant).collect::<Option<Vec<_>>>() {
                Some(values) => ValueExpr::Literal(Value::Array(values)),
                None => ValueExpr::Array(items),
            }
        }
        Rule::build_object => {
            let mut members = Vec::new();
            for member in pair.into_inner() {
                let mut parts = member.into_inner();
                let key = string(parts.next()?, errors)?;
                members.push((key.node, value_expr(parts.next()?, errors)?));
            }
            let constants: Option<serde_json::Map<String, Value>> = members
                .iter()
                .map(|(key, value)| constant(value).map(|v| (key.clone(), v)))
                .collect();
            match constants {
                Some(object) => ValueExpr::Literal(Value::Object(object)),
                None => ValueExpr::Object(members),
            }
        }
        _ => ValueExpr::Literal(literal(pair, errors)?),
    };
    Some(Spanned::new(node, span))
}

/// The value of an expression that needs no record, if it is one.
fn constant(expr: &Spanned<ValueExpr>) -> Option<Value> {
    match &expr.node {
        ValueExpr::Literal(value) => Some(value.clone()),
        _ => None,
    }
}

/// Whether a string literal holds minijinja syntax; one that does not is a constant.
fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

fn spanned_path(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Spanned<Path>> {
    let span = Span::from(pair.as_span());
    path(pair, errors).map(|p| Spanned::new(p, span))
}

fn path(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Path> {
    let mut segments = Vec::new();
    // A leading `."key"` is a key like any other: the dot is not a pair.
    for part in pair.into_inner() {
        segments.push(segment(part, errors)?);
    }
    Some(Path(segments))
}

fn segment(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Segment> {
    Some(match pair.as_rule() {
        Rule::ident => Segment::Key(pair.as_str().to_string()),
        Rule::string => Segment::Key(string(pair, errors)?.node),
        Rule::bracket_key => return segment(pair.into_inner().next()?, errors),
        Rule::index => {
            let digits = pair.as_str().trim_start_matches('[').trim_end_matches(']');
            match digits.parse() {
                Ok(index) => Segment::Index(index),
                Err(_) => {
                    errors.push(
                        Diagnostic::new(
                            Code::Syntax,
                            "array index out of range",
                            pair.as_span().into(),
                        )
                        .with_label("too large"),
                    );
                    return None;
                }
            }
        }
        other => unreachable!("not a path segment: {other:?}"),
    })
}

fn hec_key(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Spanned<HecKey>> {
    let span = Span::from(pair.as_span());
    let mut parts = pair.into_inner();
    let head = parts.next()?.as_str().to_string();
    let key = match parts.next() {
        None => HecKey::Envelope(head),
        Some(field) if head == "fields" => HecKey::Field(match field.as_rule() {
            Rule::string => string(field, errors)?.node,
            _ => field.as_str().to_string(),
        }),
        Some(_) => {
            errors.push(
                Diagnostic::new(
                    Code::UnknownHecKey,
                    format!("unknown HEC key `{head}.…`"),
                    span,
                )
                .with_label("only `fields.NAME` has a second part")
                .with_note("HEC keys: time, host, source, sourcetype, index, fields.NAME"),
            );
            return None;
        }
    };
    Some(Spanned::new(key, span))
}

fn spanned_condition(
    pair: Pair<'_, Rule>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Spanned<Condition>> {
    let span = Span::from(pair.as_span());
    Some(Spanned::new(condition(pair, errors)?, span))
}

fn condition(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Condition> {
    match pair.as_rule() {
        Rule::condition => condition(pair.into_inner().next()?, errors),
        Rule::or_expr | Rule::and_expr => {
            let is_or = pair.as_rule() == Rule::or_expr;
            let mut parts: Vec<Condition> = Vec::new();
            for part in pair
                .into_inner()
                .filter(|p| !matches!(p.as_rule(), Rule::kw_or | Rule::kw_and))
            {
                parts.push(condition(part, errors)?);
            }
            Some(if parts.len() == 1 {
                parts.pop()?
            } else if is_or {
                Condition::Or(parts)
            } else {
                Condition::And(parts)
            })
        }
        Rule::not_expr => {
            let mut inner = pair.into_inner();
            let first = inner.next()?;
            if first.as_rule() == Rule::kw_not {
                Some(Condition::Not(Box::new(condition(inner.next()?, errors)?)))
            } else {
                condition(first, errors)
            }
        }
        Rule::exists_test => Some(Condition::Exists(spanned_path(
            pair.into_inner().next()?,
            errors,
        )?)),
        Rule::in_test => {
            let mut inner = pair.into_inner();
            let subject = operand(inner.next()?, errors)?;
            let negated = inner.next()?.as_rule() == Rule::kw_not;
            let list = inner.find(|p| p.as_rule() == Rule::array)?;
            match literal(list, errors)? {
                Value::Array(list) => Some(Condition::In {
                    subject,
                    list,
                    negated,
                }),
                _ => None,
            }
        }
        Rule::null_test => {
            let mut inner = pair.into_inner();
            let subject = operand(inner.next()?, errors)?;
            let negated = inner.any(|p| p.as_rule() == Rule::kw_not);
            Some(Condition::IsNull { subject, negated })
        }
        Rule::text_test => {
            let mut inner = pair.into_inner();
            let left = operand(inner.next()?, errors)?;
            let op = match inner.next()?.into_inner().next()?.as_rule() {
                Rule::kw_contains => TextOp::Contains,
                Rule::kw_starts_with => TextOp::StartsWith,
                _ => TextOp::EndsWith,
            };
            let right = operand(inner.next()?, errors)?;
            Some(Condition::Text(left, op, right))
        }
        Rule::quantified => {
            let mut inner = pair.into_inner();
            let all = inner.next()?.as_rule() == Rule::kw_all;
            let name = word(inner.next()?);
            let mut inner = inner.filter(|p| p.as_rule() != Rule::kw_in);
            let over = operand(inner.next()?, errors)?;
            let condition = Box::new(condition(inner.next()?, errors)?);
            Some(Condition::Quantified {
                all,
                name,
                over,
                condition,
            })
        }
        Rule::match_test => {
            let mut inner = pair
                .into_inner()
                .filter(|p| p.as_rule() != Rule::kw_matches);
            let subject = operand(inner.next()?, errors)?;
            let pattern = string(inner.next()?, errors)?;
            Some(Condition::Matches(subject, pattern))
        }
        Rule::compare => {
            let mut inner = pair.into_inner();
            let left = operand(inner.next()?, errors)?;
            let op = match inner.next()?.as_str() {
                "==" => CompareOp::Eq,
                "!=" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                "<=" => CompareOp::Le,
                ">" => CompareOp::Gt,
                _ => CompareOp::Ge,
            };
            let right = operand(inner.next()?, errors)?;
            Some(Condition::Compare(left, op, right))
        }
        other => unreachable!("not a condition rule: {other:?}"),
    }
}

fn operand(pair: Pair<'_, Rule>, errors: &mut Vec<Diagnostic>) -> Option<Operand> {
    value_expr(pair, errors)
}

/// Turns pest's error into a diagnostic that names what was expected in words.
pub(super) fn syntax_diagnostic(source: &str, error: &pest::error::Error<Rule>) -> Diagnostic {
    let location = match error.location {
        pest::error::InputLocation::Pos(pos) => pos,
        pest::error::InputLocation::Span((start, _)) => start,
    };
    let positives: Vec<Rule> = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    let attempts = error.parse_attempts();
    let position = attempts
        .as_ref()
        .map_or(location, |a| a.max_position.max(location));
    let tokens: Vec<String> = attempts
        .as_ref()
        .map(|a| {
            a.expected_tokens()
                .iter()
                .map(ToString::to_string)
                .filter(|t| !matches!(t.as_str(), " " | "\t" | "#"))
                .collect()
        })
        .unwrap_or_default();

    if let Some(diagnostic) = unknown_statement(source, location, &positives) {
        return diagnostic;
    }
    if is_unterminated_string(&source[location..]) {
        let line_end = source[location..]
            .find('\n')
            .map_or(source.len(), |i| location + i);
        let mut diagnostic = Diagnostic::new(
            Code::Syntax,
            "unterminated string",
            Span::new(location, line_end.max(location + 1)),
        )
        .with_label("this string does not end on its line");
        if let Some(curly) = source[location..line_end].find(['”', '“']) {
            let at = location + curly;
            diagnostic = diagnostic
                .with_context(
                    Span::new(at, at + '”'.len_utf8()),
                    "a curly quote, which does not end a string",
                )
                .with_note("end the string with a straight double quote: \"");
        }
        return diagnostic
            .with_note("a \"…\" string ends on the line it starts; use \"\"\"…\"\"\" for text over several lines");
    }
    let found = token_at(source, position);
    // A line end is shown as a caret just past the line's last character,
    // not as a span reaching into the next line.
    let shown_len = if matches!(found, "\n" | "\r\n") {
        0
    } else {
        found.len().max(1)
    };
    let span = Span::new(position, position + shown_len).min_len(source);
    let found_text = describe_found(found);
    if found.is_empty() && tokens.iter().any(|t| t == "}") {
        return unclosed_block(source, span);
    }
    if let Some(diagnostic) = wrong_quote(source, position) {
        return diagnostic;
    }
    if let Some(diagnostic) = jq_path(source, position) {
        return diagnostic;
    }
    let punctuation: Vec<&str> = tokens
        .iter()
        .map(String::as_str)
        .filter(|t| matches!(*t, "=" | "}" | "{" | "]" | ")" | "," | ":"))
        .collect();
    let expected_text = if !punctuation.is_empty() {
        one_of(punctuation.iter().map(|t| format!("`{t}`")).collect())
    } else if tokens.iter().any(|t| t == "\n")
        && tokens.iter().all(|t| t == "\n" || t == "\r\n" || t == "\r")
    {
        "the end of the line".to_string()
    } else {
        let mut words: Vec<String> = positives
            .iter()
            .map(|rule| describe(*rule).to_string())
            .collect();
        words.sort_unstable();
        words.dedup();
        one_of(words)
    };
    Diagnostic::new(
        Code::Syntax,
        format!("expected {expected_text}, found {found_text}"),
        span,
    )
    .with_label(format!("expected {expected_text}"))
}

/// A line that starts with a word no statement starts with.
fn unknown_statement(source: &str, position: usize, positives: &[Rule]) -> Option<Diagnostic> {
    let statement_expected = positives.iter().any(|rule| {
        is_statement_rule(*rule) || matches!(rule, Rule::file | Rule::block | Rule::EOI)
    });
    if !statement_expected || !at_line_start(source, position) {
        return None;
    }
    let word: String = source[position..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    if word.is_empty() || STATEMENT_KEYWORDS.contains(&word.as_str()) {
        return None;
    }
    if word == "else" {
        return Some(else_on_its_own_line(source, position));
    }
    let mut diagnostic = Diagnostic::new(
        Code::UnknownStatement,
        format!("unknown statement `{word}`"),
        Span::new(position, position + word.len()),
    )
    .with_label("not a statement");
    if let Some(best) = closest(&word, STATEMENT_KEYWORDS) {
        diagnostic = diagnostic.with_note(format!("did you mean `{best}`?"));
    }
    Some(diagnostic.with_note(format!("statements: {}", STATEMENT_KEYWORDS.join(", "))))
}

/// `else` at the start of a line: the `when` statement ended with the `}`
/// before it, since a statement ends at its line's end.
fn else_on_its_own_line(source: &str, position: usize) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(
        Code::Syntax,
        "`else` must follow the `}` of its `when` block on the same line",
        Span::new(position, position + "else".len()),
    )
    .with_label("`else` starts a line here");
    let before = source[..position].trim_end();
    if before.ends_with('}') {
        let at = before.len() - 1;
        diagnostic = diagnostic.with_context(
            Span::new(at, at + 1),
            "the `when` statement ends with this `}` and its line",
        );
    }
    diagnostic.with_note("write `} else {` (or `} else when …`) on one line")
}

/// The file ends inside a block: which `{` is not closed. Indentation tells
/// when a `}` was missed in the middle: a `}` that starts a line less
/// indented than the line of the `{` it would close closes an outer block,
/// so that `{` is the unclosed one. Otherwise it is the innermost still open.
fn unclosed_block(source: &str, end: Span) -> Diagnostic {
    let found = unclosed_brace(source);
    let note = "a block opened with `{` ends with `}` on a line of its own";
    let Some((open, closed_by)) = found else {
        return Diagnostic::new(Code::Syntax, "unclosed block: expected `}`", end)
            .with_label("the file ends inside a block")
            .with_note(note);
    };
    let line = source[..open].matches('\n').count() + 1;
    let mut diagnostic = Diagnostic::new(
        Code::Syntax,
        format!("unclosed block: the `{{` on line {line} has no `}}`"),
        Span::new(open, open + 1),
    )
    .with_label("this block is not closed");
    diagnostic = match closed_by {
        Some(close) => diagnostic.with_context(
            Span::new(close, close + 1),
            "by its indentation, this `}` closes an outer block",
        ),
        None => diagnostic.with_context(end, "the file ends here"),
    };
    diagnostic.with_note(note)
}

/// The offset of the `{` that is not closed, and the `}` whose indentation
/// shows it (none when the file simply ends). Strings and comments skipped.
fn unclosed_brace(source: &str) -> Option<(usize, Option<usize>)> {
    let indent_at = |at: usize| {
        let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
        let before = &source[start..at];
        let indent = before.len() - before.trim_start().len();
        (indent, before.trim().is_empty())
    };
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut mismatch = None;
    let bytes = source.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'#' => {
                at = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
                continue;
            }
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                let body = at + 3;
                at = memchr::memmem::find(&bytes[body..], b"\"\"\"")
                    .map_or(bytes.len(), |n| body + n + 3);
                continue;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && !matches!(bytes[at], b'"' | b'\n') {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => {
                let start = source[..at].rfind('\n').map_or(0, |i| i + 1);
                let line = &source[start..at];
                open.push((at, line.len() - line.trim_start().len()));
            }
            b'}' => {
                let (indent, starts_line) = indent_at(at);
                if let Some(&(brace, opened_at)) = open.last() {
                    if starts_line && indent < opened_at && mismatch.is_none() {
                        mismatch = Some((brace, Some(at)));
                        open.pop();
                    }
                }
                open.pop();
            }
            _ => {}
        }
        at += 1;
    }
    mismatch.or_else(|| open.last().map(|&(brace, _)| (brace, None)))
}

/// A curly (“ ” ‘ ’) or single quote where a value is expected: xf's strings
/// are written in straight double quotes.
fn wrong_quote(source: &str, position: usize) -> Option<Diagnostic> {
    let rest = &source[position.min(source.len())..];
    let quote = rest
        .chars()
        .next()
        .filter(|c| matches!(c, '“' | '”' | '‘' | '’' | '\''))?;
    let line = rest.split('\n').next().unwrap_or_default();
    let body = &line[quote.len_utf8()..];
    let closing: &[char] = match quote {
        '\'' => &['\''],
        '‘' | '’' => &['’', '‘'],
        _ => &['”', '“'],
    };
    let end = body.find(closing);
    let kind = if quote == '\'' {
        "a single quote"
    } else {
        "a curly quote"
    };
    let span_len = end.map_or(quote.len_utf8(), |end| {
        quote.len_utf8() + end + body[end..].chars().next().map_or(0, char::len_utf8)
    });
    let mut diagnostic = Diagnostic::new(
        Code::Syntax,
        format!("strings are written in straight double quotes, not with {kind} `{quote}`"),
        Span::new(position, position + span_len),
    )
    .with_label(kind);
    diagnostic = match end {
        Some(end) => diagnostic.with_note(format!(
            "write {}",
            format_args!("`{}`", serde_json::Value::String(body[..end].to_string()))
        )),
        None => diagnostic.with_note("use \" to begin and end a string"),
    };
    if quote != '\'' {
        diagnostic = diagnostic.with_note(
            "word processors and some editors curl quotes as you type; xf takes only \"",
        );
    }
    Some(diagnostic)
}

/// jq's `.alert.number` where a path is expected: xf's paths start with
/// their first name (a leading dot only comes before a quoted key).
fn jq_path(source: &str, position: usize) -> Option<Diagnostic> {
    let position = position.min(source.len());
    // pest may stop at the dot or just after it.
    let dot = if source[position..].starts_with('.') {
        position
    } else if position > 0 && source[..position].ends_with('.') {
        position - 1
    } else {
        return None;
    };
    let after = &source[dot + 1..];
    if !after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let before = source[..dot].chars().next_back();
    if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ']' | '"' | '.')) {
        return None;
    }
    let path: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-'))
        .collect();
    let path = path.trim_end_matches('.');
    Some(
        Diagnostic::new(
            Code::Syntax,
            format!("`.{path}` is jq's way to write a path; xf's starts with its first name"),
            Span::new(dot, dot + 1),
        )
        .with_label("jq's leading dot")
        .with_note(format!("write `{path}`"))
        .with_note("a leading dot only comes before a quoted key: .\"detail-type\""),
    )
}

/// Whether `rest` starts with a `"` string that its line does not close.
fn is_unterminated_string(rest: &str) -> bool {
    let Some(body) = rest.strip_prefix('"') else {
        return false;
    };
    let line = body.split('\n').next().unwrap_or_default();
    let mut escaped = false;
    for c in line.chars() {
        match (escaped, c) {
            (true, _) => escaped = false,
            (false, '\\') => escaped = true,
            (false, '"') => return false,
            _ => {}
        }
    }
    !rest.starts_with("\"\"\"")
}

fn one_of(mut words: Vec<String>) -> String {
    match words.len() {
        0 => "something else".to_string(),
        1 => words.remove(0),
        _ => {
            let last = words.pop().unwrap_or_default();
            format!("{} or {last}", words.join(", "))
        }
    }
}

fn describe_found(found: &str) -> String {
    if found.is_empty() {
        "the end of the file".to_string()
    } else if found == "\n" || found == "\r\n" {
        "the end of the line".to_string()
    } else {
        format!("`{found}`")
    }
}

trait MinLen {
    fn min_len(self, source: &str) -> Span;
}

impl MinLen for Span {
    /// Keeps the span inside the source, so a caret at the very end still shows.
    fn min_len(self, source: &str) -> Span {
        let start = self.start.min(source.len());
        Span::new(start, self.end.min(source.len()).max(start))
    }
}

/// The token at `position`: a word, a quoted string, a line end or one character.
fn token_at(source: &str, position: usize) -> &str {
    let rest = &source[position.min(source.len())..];
    let Some(first) = rest.chars().next() else {
        return "";
    };
    let end = if first.is_ascii_alphanumeric() || first == '_' {
        rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len())
    } else if rest.starts_with("\r\n") {
        2
    } else {
        first.len_utf8()
    };
    &rest[..end]
}

fn at_line_start(source: &str, position: usize) -> bool {
    source[..position.min(source.len())]
        .rsplit('\n')
        .next()
        .is_some_and(|before| before.trim().is_empty() || before.trim_start().starts_with('{'))
}

fn is_statement_rule(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::name_stmt
            | Rule::format_stmt
            | Rule::events_stmt
            | Rule::lookup_stmt
            | Rule::search_stmt
            | Rule::label_stmt
            | Rule::tag_add
            | Rule::tag_remove
            | Rule::url_stmt
            | Rule::drop_stmt
            | Rule::when_stmt
            | Rule::message_stmt
            | Rule::hec_stmt
            | Rule::validate_stmt
            | Rule::let_stmt
    )
}

/// A rule as a transform author would name it.
fn describe(rule: Rule) -> &'static str {
    match rule {
        r if is_statement_rule(r) => "a statement",
        Rule::EOI => "the end of the line",
        Rule::file | Rule::block => "a statement",
        Rule::ident => "a name",
        Rule::string => "a string",
        Rule::triple_string => "a \"\"\"template\"\"\"",
        Rule::template_file => "`template \"FILE\"`",
        Rule::number => "a number",
        Rule::boolean | Rule::null | Rule::array | Rule::object => "a JSON literal",
        Rule::path | Rule::target | Rule::bracket_key | Rule::index => "a path",
        Rule::function_name => "a path",
        Rule::condition | Rule::or_expr | Rule::and_expr | Rule::not_expr => "a condition",
        Rule::exists_test | Rule::in_test | Rule::match_test | Rule::compare => "a condition",
        Rule::null_test | Rule::text_test | Rule::quantified => "a condition",
        Rule::text_op => "`contains`, `starts_with` or `ends_with`",
        Rule::kw_is => "`is`",
        Rule::cmp_op => "a comparison (==, !=, <, <=, >, >=, in, matches, exists)",
        Rule::hec_key => "a HEC key",
        Rule::member => "`\"key\": value`",
        Rule::kw_name => "`name`",
        Rule::kw_from => "`from`",
        Rule::kw_key => "`key`",
        Rule::kw_column => "`column`",
        Rule::kw_add | Rule::kw_remove => "`add` or `remove`",
        Rule::kw_via => "`via`",
        Rule::kw_when => "`when`",
        Rule::kw_else => "`else`",
        Rule::kw_or => "`or`",
        Rule::kw_and => "`and`",
        Rule::kw_not => "`not`",
        Rule::kw_exists => "`exists`",
        Rule::kw_in => "`in`",
        Rule::kw_matches => "`matches`",
        Rule::kw_template => "`template`",
        _ => "something else",
    }
}

/// The keyword nearest to a misspelt word, if one is near enough to suggest.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|candidate| (strsim::damerau_levenshtein(word, candidate), *candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The first place that nests more than `max` levels deep, outside strings
/// and comments, as a diagnostic: brackets (`{`, `(`, `[`) and each `not`
/// count a level (`not not x` nests as `not (not x)` does), and the branches
/// of one `when … else when …` chain count towards [`MAX_WHEN_CHAIN`]. The
/// grammar, the syntax tree and the passes over it recurse that deep, so this
/// runs first, without recursion. Strings are skipped as the grammar reads
/// them: `"…"` with escapes up to the line's end, `"""…"""` across lines; a
/// comment runs from `#` to the line's end.
pub(super) fn too_deep(source: &str, max: usize) -> Option<Diagnostic> {
    let bytes = source.as_bytes();
    let too_deep = |at: usize, len: usize, label: String, note: String| {
        Some(
            Diagnostic::new(Code::TooDeep, "nested too deep", Span::new(at, at + len))
                .with_label(label)
                .with_note(note),
        )
    };
    let brackets_note =
        || format!("blocks, brackets and `not`s nest at most {max} levels deep in a transform");
    let mut depth = 0usize;
    // Per open bracket: the levels it holds (itself and the `not`s before it).
    let mut opened: Vec<usize> = Vec::new();
    // `not`s read since the last other token: open until that token ends.
    let mut nots = 0usize;
    // Per bracket level (0: outside any), the `else when`s of a chain there
    // still open; and all of them.
    let mut chains: Vec<usize> = vec![0];
    let mut chained = 0usize;
    // After a `}`: a chain at that level goes on only if `else` comes next.
    let mut after_block = false;
    let mut after_else = false;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'#' {
            at = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |n| at + n);
            continue;
        }
        if byte.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let word_len = bytes[at..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        let word = &bytes[at..at + word_len];
        if after_block && word != b"else" {
            let level = chains.last_mut().expect("level 0 is never closed");
            chained -= *level;
            *level = 0;
        }
        after_block = false;
        if word == b"when" && after_else {
            *chains.last_mut().expect("level 0 is never closed") += 1;
            chained += 1;
            if chained > MAX_WHEN_CHAIN {
                return too_deep(
                    at,
                    4,
                    format!("`else when` {chained} of the chains open here"),
                    format!(
                        "`when … else when …` chains may have {MAX_WHEN_CHAIN} `else when`s \
                         open at once (a chain inside a branch adds to the one around it)"
                    ),
                );
            }
        }
        after_else = word == b"else";
        if word == b"not" {
            nots += 1;
            if depth + nots > max {
                return too_deep(
                    at,
                    3,
                    format!("this opens level {}", depth + nots),
                    brackets_note(),
                );
            }
        }
        if word_len > 0 {
            if word != b"not" {
                nots = 0;
            }
            at += word_len;
            continue;
        }
        match byte {
            b'"' if bytes[at..].starts_with(b"\"\"\"") => {
                let body = at + 3;
                at = memchr::memmem::find(&bytes[body..], b"\"\"\"")
                    .map_or(bytes.len(), |n| body + n + 3);
                nots = 0;
                continue;
            }
            b'"' => {
                at += 1;
                while at < bytes.len() && !matches!(bytes[at], b'"' | b'\n') {
                    at += if bytes[at] == b'\\' { 2 } else { 1 };
                }
                nots = 0;
            }
            b'{' | b'(' | b'[' => {
                let levels = 1 + nots;
                nots = 0;
                depth += levels;
                opened.push(levels);
                chains.push(0);
                if depth > max {
                    return too_deep(at, 1, format!("this opens level {depth}"), brackets_note());
                }
            }
            b'}' | b')' | b']' => {
                if let Some(levels) = opened.pop() {
                    depth -= levels;
                    chained -= chains.pop().unwrap_or(0);
                }
                nots = 0;
                after_block = byte == b'}';
            }
            _ => nots = 0,
        }
        at += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_statement() {
        let source = r#"name "t"
format splunk
events security_event, security_incident
lookup tags from "tags.csv" key accountId column "account"
search kibana "https://kibana.example.com"
label [event].account_id = {"a": [1, 2.5, true, null]}
tag add index = "{{ index }}"
tag add copy = a.b[0]."c-d"
tag remove classificationTag, "x.y"
url link from eventId via kibana
drop when not (a == 1 or b exists) and c in ["x", 2]
when severity >= 8 {
  tag add priority = "P1"
} else {
  drop
}
message summary = """
[{{ severity }}] {{ description }}
"""
hec fields.sev = severity   # trailing comment
hec time = startTime"#;
        let statements = parse(source).expect("parses");
        assert_eq!(statements.len(), 15);
        match &statements[12].node {
            Statement::Message { template, .. } => {
                assert_eq!(
                    template.node,
                    ValueExpr::Template("[{{ severity }}] {{ description }}".into())
                )
            }
            other => panic!("{other:?}"),
        }
        match &statements[7].node {
            Statement::TagAdd { value, .. } => assert_eq!(
                value.node,
                ValueExpr::Path(Path(vec![
                    Segment::Key("a".into()),
                    Segment::Key("b".into()),
                    Segment::Index(0),
                    Segment::Key("c-d".into())
                ]))
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn suggests_the_nearest_statement() {
        let errors = parse("lable x = 1\n").unwrap_err();
        assert_eq!(errors[0].code, Code::UnknownStatement);
        assert!(errors[0].notes[0].contains("`label`"));
    }
}
