//! Hover: what the word under the cursor is. A statement's keyword gives the
//! statement's form and meaning; a function (or template filter) its
//! signature and meaning from the function table; a path the type and
//! description the schemas give its field; `request.…` what the request
//! says there; and a place with a diagnostic the explanation of its code.

use lsp_types::{Hover, HoverContents, MarkupContent, MarkupKind, NumberOrString, Position};
use xf::compile::{FunctionKind, FUNCTIONS};
use xf::diagnostic::Code;

use super::complete;
use super::text::Document;

/// Each statement's form and meaning, as the README's tables say them. A test
/// holds it to the parser's list of keywords, in its order.
pub(super) const STATEMENTS: &[(&str, &str, &str)] = &[
    ("name", "name \"…\"", "the transform's name (shown by `xf check`)"),
    ("format", "format default | splunk", "the output format; `default` if absent"),
    ("events", "events T, …", "Armor's subscription filter: records of no listed type (security_incident, security_detection, security_event) are dropped"),
    ("lookup", "lookup NAME from \"FILE\" key PATH [column \"COL\"]", "reads a CSV or JSON table beside the `.xf` once, and joins the row whose COL equals the record's value at PATH (compared as text)"),
    ("search", "search KIND \"…\"", "where `url` links point: `kibana \"BASE\"`, `splunk \"BASE\"` or `custom \"TEMPLATE\"`"),
    ("label", "label PATH = LITERAL", "writes a constant JSON literal; a label string is never a template"),
    ("tag", "tag add PATH = VALUE / tag remove PATH, …", "`tag add` writes a template, a path's value or a literal; `tag remove` removes paths after every other statement"),
    ("url", "url PATH from FIELD [via KIND]", "a search link for records whose FIELD equals this record's value"),
    ("drop", "drop / drop when CONDITION", "the record is not written (counted as dropped)"),
    ("when", "when CONDITION { … } [else { … }]", "runs the block's statements when the condition holds; `} else when … {` chains tests"),
    ("message", "message PATH = TEMPLATE", "renders a readable text: `\"…\"`, `\"\"\"…\"\"\"`, or `template \"FILE\"`"),
    ("hec", "hec KEY = VALUE", "sets a key of the HEC envelope (format `splunk` only): time, host, source, sourcetype, index, fields.NAME"),
    ("validate", "validate \"SCHEMA\"", "the record as it is here must match a JSON Schema (a shipped one by name, or a `.json` file beside the `.xf`); else a record error listing each violation"),
    ("set", "set PATH = EXPR", "writes the value of an expression, with its type"),
    ("append", "append PATH = EXPR", "adds an item at the end of the array at PATH (created when missing or null)"),
    ("rename", "rename FROM to TO", "moves a value; nothing happens when FROM is missing"),
    ("nest", "nest PATH", "the whole record becomes the value at PATH of a new, empty record"),
    ("for", "for NAME in PATH { … }", "runs the block once per item of the array at PATH, NAME standing for the item"),
    ("fan_out", "fan_out NAME in PATH", "one output record per item of the array at PATH: the statements after it run once per item"),
    ("fail", "fail \"TEMPLATE\"", "the record is a record error with this message (dead-lettered)"),
    ("include", "include \"FILE.xf\"", "runs another transform here, whole"),
    ("let", "let NAME = EXPR", "computes a value and keeps it for the rest of the record's run, without writing it to the output"),
];

/// What `request.NAME` says, as the README's table says it.
pub(super) const REQUEST_NAMES: &[(&str, &str)] = &[
    ("headers", "a header's value by its lower-case name, text (`request.headers.\"x-github-event\"`); repeated headers joined with `, `; Authorization, Proxy-Authorization and Cookie never readable"),
    ("source", "the pipeline's name of the source (`source github at …`)"),
    ("path", "the URL's path the request was posted to, without its query"),
    ("received_at", "when xf received the request, in epoch ms"),
    ("delivery_id", "the sender's id of the delivery (`webhook-id`, `X-GitHub-Delivery` or `Idempotency-Key`); missing when it sent none"),
    ("index", "the record's position in its body, from 0"),
];

/// The hover at `position`, if there is anything to say.
pub(super) fn hover(
    document: &Document,
    position: Position,
    published: &[lsp_types::Diagnostic],
    options: &xf::LoadOptions,
) -> Option<Hover> {
    let offset = document.offset(position);
    let mut sections: Vec<String> = Vec::new();
    if let Some((word, range)) = word_at(&document.text, offset) {
        if let Some(text) = describe_word(document, &word, range, options) {
            sections.push(text);
        }
    }
    for diagnostic in published {
        let start = document.offset(diagnostic.range.start);
        let end = document.offset(diagnostic.range.end);
        if start <= offset && offset <= end {
            if let Some(NumberOrString::String(code)) = &diagnostic.code {
                if let Some(known) = Code::from_code(code) {
                    sections.push(format!("**{code}**: {}", known.explanation()));
                }
            }
        }
    }
    if sections.is_empty() {
        return None;
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: sections.join("\n\n---\n\n"),
        }),
        range: None,
    })
}

/// The path or word around `offset` (`detail.severity`, `lower`), and its byte range.
fn word_at(text: &str, offset: usize) -> Option<(String, std::ops::Range<usize>)> {
    let is_part = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']');
    let offset = super::text::floor_boundary(text, offset);
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_part(*c))
        .last()
        .map_or(offset, |(i, _)| i);
    let end = text[offset..]
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric() && *c != '_')
        .map_or(text.len(), |(i, _)| offset + i);
    let word = text[start..end].trim_start_matches('.');
    (!word.is_empty()).then(|| (word.to_string(), start..end))
}

fn describe_word(
    document: &Document,
    word: &str,
    range: std::ops::Range<usize>,
    options: &xf::LoadOptions,
) -> Option<String> {
    let text = &document.text;
    let called = text[range.end..].trim_start().starts_with('(');
    let piped = text[..range.start].trim_end().ends_with('|');
    let line_start = text[..range.start].rfind('\n').map_or(0, |i| i + 1);
    let at_statement = text[line_start..range.start]
        .trim_start_matches(|c: char| c.is_whitespace() || c == '}')
        .is_empty();
    if piped || called {
        let kinds: &[FunctionKind] = if piped {
            &[FunctionKind::Filter]
        } else {
            &[FunctionKind::Expression, FunctionKind::Template]
        };
        if let Some(function) = FUNCTIONS
            .iter()
            .find(|f| f.name == word && kinds.contains(&f.kind))
        {
            return Some(format!(
                "```\n{}\n```\n{}\n\n`{}` → `{}`",
                function.usage, function.meaning, function.example, function.result
            ));
        }
        if piped && xf::compile::MINIJINJA_FILTERS.contains(&word) {
            return Some(format!("`| {word}`: minijinja's built-in filter"));
        }
    }
    if at_statement && document.kind == super::Kind::Transform {
        if let Some((_, usage, meaning)) = STATEMENTS.iter().find(|(k, ..)| *k == word) {
            return Some(format!("```\n{usage}\n```\n{meaning}"));
        }
    }
    if let Some(name) = word.strip_prefix("request.") {
        let (name, _) = name.split_once('.').unwrap_or((name, ""));
        if let Some((_, meaning)) = REQUEST_NAMES.iter().find(|(n, _)| *n == name) {
            return Some(format!("`request.{name}`: {meaning}"));
        }
    }
    if document.kind == super::Kind::Transform {
        return complete::field_doc(document, word, range.start, options);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statement_has_its_doc_in_the_parser_s_order() {
        let documented: Vec<&str> = STATEMENTS.iter().map(|(k, ..)| *k).collect();
        assert_eq!(documented, xf::syntax::STATEMENT_KEYWORDS);
    }

    #[test]
    fn every_field_of_request_has_its_doc_in_the_loader_s_order() {
        let documented: Vec<&str> = REQUEST_NAMES.iter().map(|(name, _)| *name).collect();
        assert_eq!(documented, xf::value::REQUEST_FIELDS);
    }

    #[test]
    fn the_word_under_the_cursor_is_the_whole_path() {
        let text = "set x = lower(detail.severity)";
        let at = text.find("sev").unwrap();
        let (word, range) = word_at(text, at).unwrap();
        assert_eq!(word, "detail.severity");
        assert_eq!(&text[range], "detail.severity");
        assert_eq!(word_at(text, 9).unwrap().0, "lower");
    }
}
