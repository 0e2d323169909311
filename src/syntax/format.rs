//! `xf fmt`'s layout: `.xf` source text → the same statements, comments and
//! strings in one canonical layout.
//!
//! The grammar skips spaces and comments between tokens, so the syntax tree
//! has neither. The formatter reads the pest pairs instead: their leaves
//! (names, paths, keywords, strings, numbers) are copied as written, and the
//! text between two leaves holds only spaces, comments, line ends and the
//! punctuation of the rule around it (`=`, `,`, `:`, brackets), which tells
//! a block's `{` from an object's. That token stream is laid out again:
//!
//! - each line is indented 2 spaces per block or bracket open before it
//!   (brackets opened on one line count once; a line starting with a closer
//!   is indented as the line that opened it);
//! - one space between tokens, none inside brackets, before `,` and `:`, or
//!   between a function's name and its `(`;
//! - line breaks are kept where they were; a run of blank lines becomes
//!   one, and none is left at the start of the file, after an opening
//!   bracket or before a closing one; a long line is never wrapped;
//! - a bracket of JSON-like items (array, object) whose closer stands on
//!   its own line gets a comma after its last item, one closed on the
//!   item's line none;
//! - comments keep their text (trailing spaces and tabs dropped); in a run
//!   of consecutive lines that all end in a comment, the `#`s line up two
//!   columns past the longest code;
//! - the file's line ends are those of its first line (`\r\n` or `\n`), and
//!   the file ends in exactly one.
//!
//! Strings of every form are copied byte for byte, `"""…"""` templates with
//! their line ends, indentation and trailing spaces. As a safety net, the
//! output is parsed again and must give the same statements (spans aside) as
//! the input; when it does not, [`format()`] refuses with
//! [`FormatError::Internal`] rather than returning a changed transform.
//!
//! Pipeline files (`.xfp`, [`format_pipeline`]) are written in the same
//! grammar (settings and `kind name { … }` sections in place of statements)
//! and laid out by the same rules: a section is a block. Their safety net
//! compares the settings, the sections and each `when` condition's statements.

use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::{without_spans, Spanned, Statement};
use super::parser::{Rule, XfParser};
use super::pipeline::{self, Declaration};
use crate::diagnostic::Diagnostic;

/// Why a source could not be formatted.
#[derive(Debug)]
pub enum FormatError {
    /// The source does not parse: the parser's diagnostics, to render with it.
    Syntax(Vec<Diagnostic>),
    /// A bug in the formatter: its output did not parse, or parsed to other
    /// statements than the source's. What went wrong, for the report.
    Internal(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::Syntax(diagnostics) => {
                write!(
                    f,
                    "the source does not parse ({} problems)",
                    diagnostics.len()
                )
            }
            FormatError::Internal(what) => write!(f, "internal error in xf fmt: {what}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// The canonical layout of a `.xf` source (see the module's documentation).
/// The result parses to the same statements as `source`, and formatting it
/// again gives it unchanged.
pub fn format(source: &str) -> Result<String, FormatError> {
    let original = super::parse(source).map_err(FormatError::Syntax)?;
    let formatted = lay_out(source, Rule::file)?;
    let reparsed = super::parse(&formatted).map_err(not_parsing)?;
    if without_spans(reparsed) != without_spans(original) {
        return Err(FormatError::Internal(
            "the formatted text parses to other statements than the source".into(),
        ));
    }
    Ok(formatted)
}

/// The canonical layout of a pipeline file (`.xfp`): the layout of
/// [`format()`], a section's `{ … }` indented as a block. The result parses to
/// the same settings, sections and conditions as `source`, and formatting it
/// again gives it unchanged.
pub fn format_pipeline(source: &str) -> Result<String, FormatError> {
    let original = pipeline::parse_pipeline(source).map_err(FormatError::Syntax)?;
    let formatted = lay_out(source, Rule::pipeline)?;
    let reparsed = pipeline::parse_pipeline(&formatted).map_err(not_parsing)?;
    if pipeline_shape(reparsed, &formatted) != pipeline_shape(original, source) {
        return Err(FormatError::Internal(
            "the formatted text parses to other settings than the source".into(),
        ));
    }
    Ok(formatted)
}

/// `source` (which parses as `rule`) laid out again.
fn lay_out(source: &str, rule: Rule) -> Result<String, FormatError> {
    let mut pairs = XfParser::parse(rule, source)
        .map_err(|error| FormatError::Internal(format!("the source parsed once only: {error}")))?;
    let file = pairs
        .next()
        .ok_or_else(|| FormatError::Internal("no file in the parse".into()))?;
    let mut tokens = Vec::new();
    collect(file, source, &mut tokens).map_err(FormatError::Internal)?;
    let tokens = canonical_commas(tokens);
    Ok(layout(&tokens, line_end(source)))
}

fn not_parsing(diagnostics: Vec<Diagnostic>) -> FormatError {
    FormatError::Internal(format!(
        "the formatted text does not parse: {}",
        diagnostics
            .first()
            .map_or("no diagnostic", |d| d.message.as_str())
    ))
}

/// What a pipeline file says, wherever it says it: its declarations without
/// positions, and each `when` condition's statements as `xf serve` compiles
/// them (`drop when not (CONDITION)`), in order.
type PipelineShape = (Vec<Declaration>, Vec<Option<Vec<Spanned<Statement>>>>);

fn pipeline_shape(declarations: Vec<Declaration>, source: &str) -> PipelineShape {
    let mut conditions = Vec::new();
    for declaration in &declarations {
        let settings = match declaration {
            Declaration::Setting(setting) => std::slice::from_ref(setting),
            Declaration::Section(section) => &section.settings[..],
        };
        for span in settings.iter().filter_map(|setting| setting.condition) {
            let condition = source.get(span.start..span.end).unwrap_or_default();
            let statements = super::parse(&format!("drop when not ({condition})\n")).ok();
            conditions.push(statements.map(without_spans));
        }
    }
    (pipeline::without_spans(declarations), conditions)
}

/// What a token is, as far as its spacing and indentation go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A name, path, keyword, string, number or comparison: copied as written.
    Word,
    /// A function's name (or `any`/`all`), which its `(` follows with no space.
    CallName,
    Open(Bracket),
    Close(Bracket),
    Comma,
    Colon,
    /// `=` or `=~`.
    Operator,
    /// `# …` to the end of its line.
    Comment,
    Newline,
}

/// Which construct a bracket opens or closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bracket {
    /// A `when`/`else`/`for` block.
    Block,
    /// An array or object, which takes a comma after its last item.
    Items,
    /// A call's or `any`/`all`'s parentheses.
    Call,
    /// Parentheses around a condition.
    Group,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    text: &'a str,
    kind: Kind,
}

impl Kind {
    fn is_code(self) -> bool {
        !matches!(self, Kind::Comment | Kind::Newline)
    }
}

/// Rules whose whole text is one token, though they have inner pairs: paths
/// (no spaces may stand inside one).
fn is_atomic_rule(rule: Rule) -> bool {
    matches!(rule, Rule::path | Rule::target | Rule::hec_key)
}

/// Rules whose brackets stand between their inner pairs: an empty one (`[]`,
/// a block with no statement) has no inner pair and is still no leaf.
fn holds_brackets(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::block | Rule::array | Rule::object | Rule::build_array | Rule::build_object
    )
}

/// The tokens of `pair` in source order: its leaves, and what stands between them.
fn collect<'a>(
    pair: Pair<'a, Rule>,
    source: &'a str,
    tokens: &mut Vec<Token<'a>>,
) -> Result<(), String> {
    let rule = pair.as_rule();
    let span = pair.as_span();
    let mut at = span.start();
    for child in pair.into_inner() {
        let child_span = child.as_span();
        between(&source[at..child_span.start()], rule, tokens)?;
        let child_rule = child.as_rule();
        let is_leaf = is_atomic_rule(child_rule)
            || (!holds_brackets(child_rule) && child.clone().into_inner().next().is_none());
        if is_leaf {
            if !child_span.as_str().is_empty() {
                let calls = matches!(
                    (rule, child_rule),
                    (Rule::call, Rule::ident)
                        | (_, Rule::function_name)
                        | (Rule::quantified, Rule::kw_any | Rule::kw_all)
                );
                let kind = if calls { Kind::CallName } else { Kind::Word };
                tokens.push(Token {
                    text: child_span.as_str(),
                    kind,
                });
            }
        } else {
            collect(child, source, tokens)?;
        }
        at = child_span.end();
    }
    between(&source[at..span.end()], rule, tokens)
}

/// The tokens of `text`, which stands between two leaves inside a pair of `rule`:
/// spaces, comments, line ends and punctuation only.
fn between<'a>(mut text: &'a str, rule: Rule, tokens: &mut Vec<Token<'a>>) -> Result<(), String> {
    while let Some(c) = text.chars().next() {
        let (len, kind) = match c {
            ' ' | '\t' => (1, None),
            '#' => (
                text.find(['\n', '\r']).unwrap_or(text.len()),
                Some(Kind::Comment),
            ),
            '\r' if text.starts_with("\r\n") => (2, Some(Kind::Newline)),
            '\r' | '\n' => (1, Some(Kind::Newline)),
            '=' if text.starts_with("=~") => (2, Some(Kind::Operator)),
            '=' => (1, Some(Kind::Operator)),
            ',' => (1, Some(Kind::Comma)),
            ':' => (1, Some(Kind::Colon)),
            '{' | '[' | '(' => (1, Some(Kind::Open(bracket(rule, c)?))),
            '}' | ']' | ')' => (1, Some(Kind::Close(bracket(rule, c)?))),
            other => return Err(format!("unexpected `{other}` between tokens of {rule:?}")),
        };
        if let Some(kind) = kind {
            tokens.push(Token {
                text: &text[..len],
                kind,
            });
        }
        text = &text[len..];
    }
    Ok(())
}

fn bracket(rule: Rule, c: char) -> Result<Bracket, String> {
    match rule {
        Rule::block | Rule::section => Ok(Bracket::Block),
        Rule::array | Rule::object | Rule::build_array | Rule::build_object => Ok(Bracket::Items),
        Rule::call | Rule::operand_call | Rule::quantified => Ok(Bracket::Call),
        Rule::not_expr => Ok(Bracket::Group),
        other => Err(format!("unexpected `{c}` in {other:?}")),
    }
}

/// The tokens with a comma after the last item of each array or object
/// whose closer starts its line, and none after the last item of one whose
/// closer does not. The grammar admits both; calls take no trailing comma.
fn canonical_commas(tokens: Vec<Token<'_>>) -> Vec<Token<'_>> {
    const COMMA: Token<'static> = Token {
        text: ",",
        kind: Kind::Comma,
    };
    let mut out: Vec<Token<'_>> = Vec::with_capacity(tokens.len() + 8);
    for token in tokens {
        if token.kind == Kind::Close(Bracket::Items) {
            let own_line = out.last().is_some_and(|t| t.kind == Kind::Newline);
            // The comments and line ends since the last code token: each
            // token is looked back at by one closer at most, so this stays linear.
            let last_code = out.iter().rposition(|t| t.kind.is_code());
            let tail: Vec<Token<'_>> = out.drain(last_code.map_or(0, |at| at + 1)..).collect();
            match (out.last().map(|t| t.kind), own_line) {
                (Some(Kind::Comma), false) => {
                    out.pop();
                }
                (Some(Kind::Comma | Kind::Open(_)) | None, _) | (_, false) => {}
                (Some(_), true) => out.push(COMMA),
            }
            out.extend(tail);
        }
        out.push(token);
    }
    out
}

/// The line end of the file's first line: `\r\n` keeps a Windows file one.
fn line_end(source: &str) -> &'static str {
    match source.find('\n') {
        Some(at) if source[..at].ends_with('\r') => "\r\n",
        _ => "\n",
    }
}

/// One line of the output: its indented code (which may span lines, inside
/// a `"""` template) and its comment.
struct Line {
    code: String,
    comment: Option<String>,
}

/// The tokens laid out as lines (see the module's documentation).
fn layout(tokens: &[Token<'_>], newline: &str) -> String {
    // `None` stands for a blank line.
    let mut lines: Vec<Option<Line>> = Vec::new();
    // Per open bracket, the indentation level of the line that opened it.
    let mut open: Vec<usize> = Vec::new();
    let mut blank_pending = false;
    let mut after_opener = true; // the file's start counts as one
    for line in tokens.split(|t| t.kind == Kind::Newline) {
        if line.is_empty() {
            blank_pending = true;
            continue;
        }
        let code: Vec<&Token<'_>> = line.iter().filter(|t| t.kind.is_code()).collect();
        let comment = line
            .iter()
            .find(|t| t.kind == Kind::Comment)
            .map(|t| t.text.trim_end_matches([' ', '\t']).to_string());
        let closers = code
            .iter()
            .take_while(|t| matches!(t.kind, Kind::Close(_)))
            .count();
        let level = if closers > 0 {
            open.get(open.len().saturating_sub(closers))
                .copied()
                .unwrap_or(0)
        } else {
            open.last().map_or(0, |level| level + 1)
        };
        if blank_pending && !after_opener && closers == 0 {
            lines.push(None);
        }
        blank_pending = false;
        for token in &code {
            match token.kind {
                Kind::Open(_) => open.push(level),
                Kind::Close(_) => {
                    open.pop();
                }
                _ => {}
            }
        }
        after_opener = code.last().is_some_and(|t| matches!(t.kind, Kind::Open(_)));
        lines.push(Some(Line {
            code: render_code(&code, level),
            comment,
        }));
    }
    align_comments(&mut lines);
    let mut out = String::new();
    for line in &lines {
        if let Some(line) = line {
            out.push_str(&line.code);
            if let Some(comment) = &line.comment {
                out.push_str(comment);
            }
        }
        out.push_str(newline);
    }
    out
}

/// A line's code tokens, indented and spaced.
fn render_code(code: &[&Token<'_>], level: usize) -> String {
    let mut text = "  ".repeat(level);
    for (i, token) in code.iter().enumerate() {
        if i > 0 && spaced(code[i - 1].kind, token.kind) {
            text.push(' ');
        }
        text.push_str(token.text);
    }
    text
}

/// Whether one space stands between two tokens on a line.
fn spaced(before: Kind, after: Kind) -> bool {
    !matches!(
        (before, after),
        (_, Kind::Comma | Kind::Colon)
            | (
                Kind::Open(Bracket::Items | Bracket::Call | Bracket::Group),
                _
            )
            | (
                _,
                Kind::Close(Bracket::Items | Bracket::Call | Bracket::Group)
            )
            | (Kind::CallName, Kind::Open(Bracket::Call))
    )
}

/// Pads each line's code so that its comment starts where the others' of its
/// run do; a line of comment alone is indented as code and ends a run.
fn align_comments(lines: &mut [Option<Line>]) {
    let mut start = 0;
    while start < lines.len() {
        let mut end = start;
        while end < lines.len() && has_trailing_comment(&lines[end]) {
            // A line holding a multi-line template starts its own run: its
            // first line stands far from its last.
            if end > start && lines[end].as_ref().is_some_and(|l| l.code.contains('\n')) {
                break;
            }
            end += 1;
        }
        if end == start {
            start += 1;
            continue;
        }
        let column = lines[start..end]
            .iter()
            .flatten()
            .map(|line| last_line_width(&line.code))
            .max()
            .unwrap_or(0)
            + 2;
        for line in lines[start..end].iter_mut().flatten() {
            let pad = column - last_line_width(&line.code);
            line.code.extend(std::iter::repeat_n(' ', pad));
        }
        start = end;
    }
}

fn has_trailing_comment(line: &Option<Line>) -> bool {
    line.as_ref()
        .is_some_and(|line| line.comment.is_some() && !line.code.trim().is_empty())
}

/// The width in characters of the last line of `text`.
fn last_line_width(text: &str) -> usize {
    text.rsplit(['\n', '\r'])
        .next()
        .unwrap_or(text)
        .chars()
        .count()
}
