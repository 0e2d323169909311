//! Completion: what may be written at the cursor, by where it is.
//!
//! - at a statement's start: the statements (a pipeline: its settings and
//!   sections, by the section the cursor is in), and `else` after a `}`;
//! - after `format`, `events`, `hec`, `search`, `via`, `validate`: their words;
//! - where a value goes: the record's field paths, `let` variables and loop
//!   items declared above, lookups (and their columns after `NAME.`),
//!   `request` (and its names after `request.`), and the functions, each
//!   with its signature and meaning from the function table;
//! - inside a template's `{{ … }}` or `{% … %}`: the same names, and after
//!   `|` the filters (xf's and minijinja's), after `is` the tests;
//! - inside `validate "…"`: the shipped schemas.
//!
//! Field paths come from the schemas the transform validates against
//! (`validate "…"`; Armor's two when it declares `events`), mounted under
//! the path of each `nest` above the cursor; a transform with none takes the
//! paths its own `NAME.tests/` inputs hold. A path is offered whole
//! (`detail.severity`), replacing the path typed so far.

use std::path::Path;

use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, Documentation, MarkupContent,
    MarkupKind, Position, TextEdit,
};
use xf::compile::{FunctionKind, FUNCTIONS};
use xf::files::Loader;
use xf::LoadOptions;

use super::fields::{self, Segment, Source};
use super::hover::{REQUEST_NAMES, STATEMENTS};
use super::outline::{self, Outline};
use super::text::Document;
use super::Kind;

/// Where the cursor is, and what has been typed of the word there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Context {
    /// In a comment, or in a string that is no template.
    Nothing,
    /// Where a statement (or a pipeline's setting) starts; `after_brace`: after a `}`.
    Statement { typed: String, after_brace: bool },
    /// One of a few words (after `format`, `events`, …).
    Words {
        typed: String,
        words: Vec<&'static str>,
    },
    /// Where a value, a path or a call may be written.
    Expression { typed: String },
    /// Inside a template's `{{ … }}` or `{% … %}`.
    Template { typed: String },
    /// After `|` in a template.
    Filter { typed: String },
    /// After `is` (or `is not`) in a template.
    Test { typed: String },
    /// Inside `validate "…"`, or after `validate` (`quoted`: the quotes are to be written).
    Schema { typed: String, quoted: bool },
}

/// The completion items at `position`.
pub(super) fn complete(
    document: &Document,
    position: Position,
    options: &LoadOptions,
) -> Vec<CompletionItem> {
    let offset = document.offset(position);
    let context = context(&document.text, offset);
    let outline = outline::outline(&document.text);
    let typed_len = match &context {
        Context::Nothing => 0,
        Context::Statement { typed, .. }
        | Context::Words { typed, .. }
        | Context::Expression { typed }
        | Context::Template { typed }
        | Context::Filter { typed }
        | Context::Test { typed }
        | Context::Schema { typed, .. } => typed.len(),
    };
    let replace = document.range(offset - typed_len, offset);
    let mut items = match (&context, document.kind) {
        (Context::Nothing, _) => Vec::new(),
        (Context::Statement { after_brace, .. }, Kind::Transform) => statements(*after_brace),
        (Context::Statement { .. }, Kind::Pipeline) => settings(&document.text, &outline, offset),
        (Context::Words { words, .. }, _) => words
            .iter()
            .map(|word| item(word, CompletionItemKind::KEYWORD, None, None))
            .collect(),
        (Context::Expression { typed }, Kind::Transform) => {
            let mut items = names(document, &outline, typed, offset, options);
            if !typed.contains('.') {
                items.extend(functions(&[FunctionKind::Expression]));
            }
            items
        }
        (Context::Template { typed }, Kind::Transform) => {
            let mut items = names(document, &outline, typed, offset, options);
            if !typed.contains('.') {
                items.extend(functions(&[FunctionKind::Template]));
            }
            items
        }
        (Context::Filter { .. }, _) => filters(),
        (Context::Test { .. }, _) => xf::compile::MINIJINJA_TESTS
            .iter()
            .map(|test| {
                item(
                    test,
                    CompletionItemKind::FUNCTION,
                    Some("minijinja test"),
                    None,
                )
            })
            .collect(),
        (Context::Schema { quoted, .. }, _) => xf::schema::shipped_names()
            .into_iter()
            .map(|name| {
                let mut schema = item(name, CompletionItemKind::FILE, Some("shipped schema"), None);
                if !quoted {
                    schema.insert_text = Some(format!("\"{name}\""));
                }
                schema
            })
            .collect(),
        (_, Kind::Pipeline) => Vec::new(),
    };
    for item in &mut items {
        let label = item.label.clone();
        let new_text = item.insert_text.take().unwrap_or(label);
        item.text_edit = Some(CompletionTextEdit::Edit(TextEdit::new(replace, new_text)));
    }
    items
}

fn item(
    label: &str,
    kind: CompletionItemKind,
    detail: Option<&str>,
    documentation: Option<String>,
) -> CompletionItem {
    CompletionItem {
        label: label.to_string(),
        kind: Some(kind),
        detail: detail.map(str::to_string),
        documentation: documentation.map(|value| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value,
            })
        }),
        filter_text: Some(label.to_string()),
        ..CompletionItem::default()
    }
}

fn statements(after_brace: bool) -> Vec<CompletionItem> {
    if after_brace {
        return vec![item(
            "else",
            CompletionItemKind::KEYWORD,
            Some("} else { … }"),
            None,
        )];
    }
    STATEMENTS
        .iter()
        .map(|(keyword, usage, meaning)| {
            item(
                keyword,
                CompletionItemKind::KEYWORD,
                Some(usage),
                Some(meaning.to_string()),
            )
        })
        .collect()
}

/// A pipeline's settings where the cursor is: in a section, that kind's; at the top, the server's and the sections.
#[cfg(feature = "serve")]
fn settings(text: &str, outline: &Outline, offset: usize) -> Vec<CompletionItem> {
    let section = (depth_at(text, offset) > 0)
        .then(|| {
            outline
                .statements
                .iter()
                .rfind(|line| line.start <= offset && line.depth == 0)
                .map(|line| line.keyword.text.clone())
        })
        .flatten();
    xf::serve::config::pipeline::known_settings(section.as_deref())
        .into_iter()
        .map(|name| item(name, CompletionItemKind::PROPERTY, None, None))
        .collect()
}

/// How many blocks are open at `offset`.
#[cfg(feature = "serve")]
fn depth_at(text: &str, offset: usize) -> usize {
    let mut depth = 0usize;
    for (start, end, in_text) in outline::lines(text) {
        if start > offset {
            break;
        }
        if in_text {
            continue;
        }
        for token in outline::tokens(text, start, end.min(offset.max(start))) {
            match token {
                outline::Token::Punct('{', _) => depth += 1,
                outline::Token::Punct('}', _) => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
    }
    depth
}

#[cfg(not(feature = "serve"))]
fn settings(_: &str, _: &Outline, _: usize) -> Vec<CompletionItem> {
    Vec::new()
}

fn functions(kinds: &[FunctionKind]) -> Vec<CompletionItem> {
    FUNCTIONS
        .iter()
        .filter(|f| kinds.contains(&f.kind))
        .map(|f| {
            let doc = format!("{}\n\n`{}` → `{}`", f.meaning, f.example, f.result);
            item(
                f.name,
                CompletionItemKind::FUNCTION,
                Some(f.usage),
                Some(doc),
            )
        })
        .collect()
}

fn filters() -> Vec<CompletionItem> {
    let mut items = functions(&[FunctionKind::Filter]);
    for name in xf::compile::MINIJINJA_FILTERS {
        if !items.iter().any(|i| i.label == *name) {
            items.push(item(
                name,
                CompletionItemKind::FUNCTION,
                Some("minijinja filter"),
                None,
            ));
        }
    }
    items
}

/// The names a value may read at `offset`: variables, lookups, `request`
/// and the record's fields; after a `.`, what the name before it holds.
fn names(
    document: &Document,
    outline: &Outline,
    typed: &str,
    offset: usize,
    options: &LoadOptions,
) -> Vec<CompletionItem> {
    let (parent, _) = fields::split_typed(typed);
    let mut items = Vec::new();
    match parent.first() {
        None => {
            for name in outline.lets.iter().filter(|n| n.span.start < offset) {
                items.push(item(
                    &name.text,
                    CompletionItemKind::VARIABLE,
                    Some("let variable"),
                    None,
                ));
            }
            for name in outline.items.iter().filter(|n| n.span.start < offset) {
                items.push(item(
                    &name.text,
                    CompletionItemKind::VARIABLE,
                    Some("loop item"),
                    None,
                ));
            }
            for lookup in &outline.lookups {
                let file = lookup
                    .file
                    .as_ref()
                    .map(|f| format!("lookup from \"{}\"", f.text));
                items.push(item(
                    &lookup.name.text,
                    CompletionItemKind::MODULE,
                    file.as_deref(),
                    None,
                ));
            }
            items.push(item(
                "request",
                CompletionItemKind::MODULE,
                Some("the HTTP request that carried the record"),
                None,
            ));
        }
        Some(Segment::Name(first)) if first == "request" && parent.len() == 1 => {
            for (name, meaning) in REQUEST_NAMES {
                let label = format!("request.{name}");
                items.push(item(
                    &label,
                    CompletionItemKind::FIELD,
                    None,
                    Some(meaning.to_string()),
                ));
            }
            return items;
        }
        Some(Segment::Name(first)) if first == "request" => return items,
        Some(Segment::Name(first)) if parent.len() == 1 => {
            if let Some(lookup) = outline.lookups.iter().find(|l| l.name.text == *first) {
                for column in lookup_columns(document, lookup, options) {
                    let label = format!("{first}.{column}");
                    items.push(item(
                        &label,
                        CompletionItemKind::FIELD,
                        Some("lookup column"),
                        None,
                    ));
                }
                return items;
            }
        }
        _ => {}
    }
    items.extend(field_items(document, outline, &parent, offset, options));
    dedup(items)
}

fn dedup(items: Vec<CompletionItem>) -> Vec<CompletionItem> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|item| seen.insert(item.label.clone()))
        .collect()
}

/// The loader a document's files are read through: as `xf run` would read
/// them (its folder and the `--allow-dir`s; regular files; bounded).
fn loader(
    document: &Document,
    options: &LoadOptions,
) -> Option<(std::path::PathBuf, Box<dyn Loader>)> {
    let dir = document
        .path
        .as_ref()?
        .parent()
        .filter(|p| !p.as_os_str().is_empty())?
        .to_path_buf();
    let roots = std::iter::once(dir.clone()).chain(options.allowed_roots.iter().cloned());
    Some((dir, Box::new(xf::files::Disk::new(roots))))
}

/// A lookup table's columns: a CSV's header row, or a JSON table's first row's keys.
fn lookup_columns(
    document: &Document,
    lookup: &outline::LookupDecl,
    options: &LoadOptions,
) -> Vec<String> {
    let Some(file) = &lookup.file else {
        return Vec::new();
    };
    let Some((dir, files)) = loader(document, options) else {
        return Vec::new();
    };
    let Ok(loaded) = files.read(&dir.join(&file.text), xf::files::Kind::Lookup) else {
        return Vec::new();
    };
    if file.text.ends_with(".json") {
        let rows: serde_json::Value = serde_json::from_str(&loaded.text).unwrap_or_default();
        let first = match &rows {
            serde_json::Value::Array(rows) => rows.first(),
            serde_json::Value::Object(rows) => rows.values().next(),
            _ => None,
        };
        return first
            .and_then(serde_json::Value::as_object)
            .map(|row| row.keys().cloned().collect())
            .unwrap_or_default();
    }
    let header = loaded.text.lines().next().unwrap_or_default();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(header.as_bytes())
        .records()
        .next()
        .and_then(Result::ok)
        .map(|record| record.iter().map(|c| c.trim().to_string()).collect())
        .unwrap_or_default()
}

/// Where the record's field descriptions come from at `offset` (see the module's documentation).
pub(super) fn sources(
    document: &Document,
    outline: &Outline,
    offset: usize,
    options: &LoadOptions,
) -> Vec<Source> {
    let loaded = loader(document, options);
    let (dir, files): (Option<&Path>, Option<&dyn Loader>) = match &loaded {
        Some((dir, files)) => (Some(dir.as_path()), Some(files.as_ref())),
        None => (None, None),
    };
    let no_files = xf::files::Memory::new();
    let files = files.unwrap_or(&no_files);
    // The record as it came sits under every `nest` above the cursor, the last outermost.
    let mut mount: Vec<Segment> = Vec::new();
    for nest in outline.nests.iter().filter(|n| n.span.start < offset) {
        let mut outer = fields::segments(&nest.text);
        outer.extend(mount);
        mount = outer;
    }
    let first_nest = outline.nests.first().map_or(usize::MAX, |n| n.span.start);
    let mut inputs: Vec<(String, serde_json::Value)> = Vec::new();
    let mut outputs: Vec<(String, serde_json::Value)> = Vec::new();
    if outline.events {
        for name in ["armor-detection", "armor-event"] {
            inputs.extend(fields::schema(name, dir, files).map(|root| (name.to_string(), root)));
        }
    }
    for validate in &outline.validates {
        let Some(root) = fields::schema(&validate.text, dir, files) else {
            continue;
        };
        let named = (validate.text.clone(), root);
        if validate.span.start < first_nest {
            inputs.push(named);
        } else {
            outputs.push(named);
        }
    }
    if inputs.is_empty() {
        if let Some(path) = &document.path {
            if let Some(shape) = fields::sample_shape(path, files) {
                inputs.push(("the tests' inputs".to_string(), shape));
            }
        }
    }
    let mut sources: Vec<Source> = inputs
        .into_iter()
        .map(|(name, root)| Source {
            name,
            root,
            mount: mount.clone(),
        })
        .collect();
    sources.extend(outputs.into_iter().map(|(name, root)| Source {
        name,
        root,
        mount: Vec::new(),
    }));
    sources
}

/// The fields under `parent` that the sources know, offered as whole paths.
fn field_items(
    document: &Document,
    outline: &Outline,
    parent: &[Segment],
    offset: usize,
    options: &LoadOptions,
) -> Vec<CompletionItem> {
    let mut items = Vec::new();
    for source in sources(document, outline, offset, options) {
        // The path typed so far reaches into the mount, or within the record under it.
        if source.mount.len() > parent.len() {
            if source.mount.starts_with(parent) {
                let label = fields::written(&source.mount[..=parent.len()]);
                let detail = format!("object: the record as it came ({})", source.name);
                items.push(item(&label, CompletionItemKind::FIELD, Some(&detail), None));
            }
            continue;
        }
        if !parent.starts_with(&source.mount) {
            continue;
        }
        let Some(node) = fields::at(&source.root, &parent[source.mount.len()..]) else {
            continue;
        };
        for field in fields::children(&source.root, node) {
            let mut path = parent.to_vec();
            path.push(Segment::Name(field.name.clone()));
            let label = fields::written(&path);
            let doc = format!(
                "{}\n\n(schema `{}`)",
                field.description.as_deref().unwrap_or(""),
                source.name
            );
            items.push(item(
                &label,
                CompletionItemKind::FIELD,
                Some(&field.kind),
                Some(doc.trim_start().to_string()),
            ));
        }
    }
    items
}

/// The type and description of the field `path` at `offset`, for hover.
pub(super) fn field_doc(
    document: &Document,
    path: &str,
    offset: usize,
    options: &LoadOptions,
) -> Option<String> {
    let outline = outline::outline(&document.text);
    let segments = fields::segments(path);
    for source in sources(document, &outline, offset, options) {
        if !segments.starts_with(&source.mount) || segments.len() == source.mount.len() {
            continue;
        }
        let Some(node) = fields::at(&source.root, &segments[source.mount.len()..]) else {
            continue;
        };
        let (kind, description) = fields::describe(&source.root, node);
        return Some(format!(
            "`{path}`: {kind}\n\n{}\n\n(schema `{}`)",
            description.unwrap_or_default(),
            source.name
        ));
    }
    None
}

/// What the cursor at `offset` is in (see [`Context`]).
pub(super) fn context(text: &str, offset: usize) -> Context {
    let offset = super::text::floor_boundary(text, offset);
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let in_text_at_start = outline::lines(text)
        .into_iter()
        .find(|(start, _, _)| *start == line_start)
        .is_some_and(|(_, _, in_text)| in_text);
    let prefix = &text[line_start..offset];
    match string_state(prefix, in_text_at_start) {
        Lexed::Comment => Context::Nothing,
        Lexed::InString { content_start } => {
            let content = if in_text_at_start && content_start == 0 {
                // A `"""…"""` text opened on an earlier line: from its opening.
                let opening = text[..line_start]
                    .rfind("\"\"\"")
                    .map_or(line_start, |i| i + 3);
                &text[opening..offset]
            } else {
                &prefix[content_start..]
            };
            in_string(prefix, content_start, content)
        }
        Lexed::Code => in_code(prefix),
    }
}

enum Lexed {
    Comment,
    /// In a string whose content starts at this byte of the prefix.
    InString {
        content_start: usize,
    },
    Code,
}

fn string_state(prefix: &str, in_text: bool) -> Lexed {
    let bytes = prefix.as_bytes();
    let mut i = 0;
    let mut state = if in_text { Some((true, 0)) } else { None }; // (triple, content start)
    while i < bytes.len() {
        match state {
            None => {
                if bytes[i..].starts_with(b"\"\"\"") {
                    state = Some((true, i + 3));
                    i += 3;
                    continue;
                }
                match bytes[i] {
                    b'"' => state = Some((false, i + 1)),
                    b'#' => return Lexed::Comment,
                    _ => {}
                }
            }
            Some((triple, _)) => {
                if bytes[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if triple && bytes[i..].starts_with(b"\"\"\"") {
                    state = None;
                    i += 3;
                    continue;
                }
                if !triple && bytes[i] == b'"' {
                    state = None;
                }
            }
        }
        i += 1;
    }
    match state {
        Some((_, content_start)) => Lexed::InString { content_start },
        None => Lexed::Code,
    }
}

/// The path (or word) typed just before the end of `text`.
fn typed_path(text: &str) -> &str {
    let start = text
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'))
        .last()
        .map_or(text.len(), |(i, _)| i);
    &text[start..]
}

fn in_string(prefix: &str, content_start: usize, content: &str) -> Context {
    let open = content
        .rfind("{{")
        .into_iter()
        .chain(content.rfind("{%"))
        .max();
    if let Some(open) = open {
        let after = &content[open + 2..];
        if !after.contains("}}") && !after.contains("%}") {
            let typed = typed_path(after).to_string();
            let before = after[..after.len() - typed.len()].trim_end();
            if before.ends_with('|') {
                return Context::Filter { typed };
            }
            if before.ends_with(" is") || before.ends_with(" is not") {
                return Context::Test { typed };
            }
            return Context::Template { typed };
        }
        return Context::Nothing;
    }
    let before_quote = prefix[..content_start.saturating_sub(1)].trim_end();
    if before_quote.trim_start().starts_with("validate") && before_quote.trim() == "validate" {
        return Context::Schema {
            typed: content.to_string(),
            quoted: true,
        };
    }
    Context::Nothing
}

fn in_code(prefix: &str) -> Context {
    let typed = typed_path(prefix).to_string();
    let before = &prefix[..prefix.len() - typed.len()];
    let trimmed = before.trim();
    if trimmed.is_empty() {
        return Context::Statement {
            typed,
            after_brace: false,
        };
    }
    if trimmed == "}" {
        return Context::Statement {
            typed,
            after_brace: true,
        };
    }
    let words: Vec<&str> = trimmed.split_whitespace().collect();
    let last = words.last().copied().unwrap_or_default();
    let first = words.first().copied().unwrap_or_default();
    let of = |words: &[&'static str]| Context::Words {
        typed: typed.clone(),
        words: words.to_vec(),
    };
    match (first, last, words.len()) {
        ("format", "format", 1) => of(&["default", "splunk"]),
        ("events", _, _) if last == "events" || last.ends_with(',') => {
            of(xf::compile::EventType::NAMES)
        }
        ("hec", "hec", 1) => {
            let mut keys = xf::splunk::ENVELOPE_KEYS.to_vec();
            keys.push("fields");
            of(&keys)
        }
        ("search", "search", 1) | (_, "via", _) => of(xf::compile::SEARCH_KINDS),
        ("validate", "validate", 1) => Context::Schema {
            typed,
            quoted: false,
        },
        ("tag", "tag", 1) => of(&["add", "remove"]),
        _ => Context::Expression { typed },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_bar(text: &str) -> Context {
        let offset = text.find('‸').unwrap();
        let text = text.replacen('‸', "", 1);
        context(&text, offset)
    }

    #[test]
    fn the_cursor_s_context_is_told_from_the_text_before_it() {
        let expression = |typed: &str| Context::Expression {
            typed: typed.to_string(),
        };
        let statement = |typed: &str| Context::Statement {
            typed: typed.to_string(),
            after_brace: false,
        };
        assert_eq!(at_bar("la‸"), statement("la"));
        assert_eq!(at_bar("when x {\n  se‸\n}"), statement("se"));
        assert_eq!(
            at_bar("} ‸"),
            Context::Statement {
                typed: String::new(),
                after_brace: true
            }
        );
        assert_eq!(at_bar("set x = detail.se‸"), expression("detail.se"));
        assert_eq!(at_bar("drop when lower(sev‸ == 1"), expression("sev"));
        assert_eq!(at_bar("set x = 1 # detail.‸"), Context::Nothing);
        assert_eq!(at_bar("label x = \"abc‸\""), Context::Nothing);
        assert_eq!(
            at_bar("tag add x = \"{{ detail.‸\""),
            Context::Template {
                typed: "detail.".into()
            }
        );
        assert_eq!(
            at_bar("tag add x = \"{{ x | low‸\""),
            Context::Filter {
                typed: "low".into()
            }
        );
        assert_eq!(
            at_bar("message m = \"\"\"\n{% if x is def‸"),
            Context::Test {
                typed: "def".into()
            }
        );
        assert_eq!(
            at_bar("message m = \"\"\"\nline\n{{ a.‸"),
            Context::Template { typed: "a.".into() }
        );
        assert_eq!(
            at_bar("validate \"cii‸\""),
            Context::Schema {
                typed: "cii".into(),
                quoted: true
            }
        );
        assert_eq!(
            at_bar("validate ‸"),
            Context::Schema {
                typed: String::new(),
                quoted: false
            }
        );
        assert!(matches!(at_bar("format ‸"), Context::Words { .. }));
        assert!(matches!(
            at_bar("events security_event, ‸"),
            Context::Words { .. }
        ));
    }
}
