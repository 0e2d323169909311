//! Go to definition, document symbols and formatting.
//!
//! - **definition**: on a file's name (`include "…"`, `lookup … from "…"`,
//!   `template "…"`, a pipeline's `transform "…"`, `validate "FILE.json"`)
//!   the file, when `xf run` would read it (confined to the document's folder
//!   and the `--allow-dir`s); on a `let` variable or a loop's item, where it is
//!   declared; on a lookup's name, its `lookup` statement;
//! - **symbols**: every statement, nested in its block (a pipeline: its
//!   settings, and its sources and destinations with theirs);
//! - **formatting**: `xf fmt`'s layout ([`xf::syntax::format`]), as one edit of
//!   the whole text; nothing for a text that does not parse (`xf fmt` leaves
//!   such a file as it is too).

#![allow(deprecated)] // DocumentSymbol::deprecated is a field every literal must name.

use lsp_types::{
    DocumentSymbol, DocumentSymbolResponse, GotoDefinitionResponse, Location, Position, Range,
    SymbolKind, TextEdit, Uri,
};
use xf::files::Loader;
use xf::LoadOptions;

use super::outline::{self, Line, Name};
use super::text::Document;
use super::{file_uri, Kind};

/// Where the name or file at `position` is defined.
pub(super) fn definition(
    document: &Document,
    uri: &Uri,
    position: Position,
    options: &LoadOptions,
) -> Option<GotoDefinitionResponse> {
    let offset = document.offset(position);
    let outline = outline::outline(&document.text);
    let within = |name: &Name| name.span.start <= offset && offset <= name.span.end;
    let schema = outline
        .validates
        .iter()
        .filter(|n| n.text.ends_with(".json"));
    let lookup_files = outline.lookups.iter().filter_map(|l| l.file.as_ref());
    if let Some(file) = outline
        .files
        .iter()
        .chain(lookup_files)
        .chain(schema)
        .find(|n| within(n))
    {
        return file_location(document, &file.text, options).map(GotoDefinitionResponse::Scalar);
    }
    let word = word_at(&document.text, offset)?;
    let declared = outline
        .lets
        .iter()
        .chain(&outline.items)
        .chain(outline.lookups.iter().map(|l| &l.name))
        .filter(|n| n.text == word && n.span.start <= offset)
        .max_by_key(|n| n.span.start)?;
    let range = document.range(declared.span.start, declared.span.end);
    Some(GotoDefinitionResponse::Scalar(Location::new(
        uri.clone(),
        range,
    )))
}

/// The first name of the path at `offset` (`team` of `team.name`).
fn word_at(text: &str, offset: usize) -> Option<String> {
    let offset = super::text::floor_boundary(text, offset);
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let start = text[..offset]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word(*c) || *c == '.')
        .last()
        .map_or(offset, |(i, _)| i);
    let word: String = text[start..].chars().take_while(|c| is_word(*c)).collect();
    (!word.is_empty()).then_some(word)
}

/// The location of a file a document names, if `xf run` would read it.
fn file_location(document: &Document, name: &str, options: &LoadOptions) -> Option<Location> {
    let dir = document.path.as_ref()?.parent()?.to_path_buf();
    let roots = std::iter::once(dir.clone()).chain(options.allowed_roots.iter().cloned());
    let files = xf::files::Disk::new(roots);
    let id = files.id(&dir.join(name)).ok()?;
    if !std::fs::metadata(&id).is_ok_and(|m| m.is_file()) {
        return None;
    }
    Some(Location::new(file_uri(&id)?, Range::default()))
}

/// The document's symbols, nested by block.
pub(super) fn symbols(document: &Document) -> DocumentSymbolResponse {
    let outline = outline::outline(&document.text);
    let mut roots: Vec<DocumentSymbol> = Vec::new();
    // The open blocks: each a symbol being filled, with its depth.
    let mut open: Vec<(usize, DocumentSymbol)> = Vec::new();
    for line in &outline.statements {
        while open.last().is_some_and(|(depth, _)| *depth >= line.depth) {
            close(&mut open, &mut roots);
        }
        open.push((line.depth, symbol(document, line)));
    }
    while !open.is_empty() {
        close(&mut open, &mut roots);
    }
    DocumentSymbolResponse::Nested(roots)
}

/// Ends the innermost open symbol: into its parent, or the roots.
fn close(open: &mut Vec<(usize, DocumentSymbol)>, roots: &mut Vec<DocumentSymbol>) {
    let Some((_, mut done)) = open.pop() else {
        return;
    };
    if done.children.as_ref().is_some_and(Vec::is_empty) {
        done.children = None;
    }
    match open.last_mut() {
        Some((_, parent)) => {
            parent.range.end = parent.range.end.max(done.range.end);
            parent.children.get_or_insert_with(Vec::new).push(done);
        }
        None => roots.push(done),
    }
}

fn symbol(document: &Document, line: &Line) -> DocumentSymbol {
    let text = document.text[line.start..line.end].trim();
    let text = text.strip_prefix('}').map_or(text, str::trim_start);
    let name: String = text
        .trim_end_matches('{')
        .trim_end()
        .chars()
        .take(80)
        .collect();
    let kind = match (document.kind, line.keyword.text.as_str()) {
        (Kind::Pipeline, "source" | "destination") => SymbolKind::MODULE,
        (Kind::Pipeline, _) => SymbolKind::PROPERTY,
        (_, "when" | "for" | "else") => SymbolKind::NAMESPACE,
        (_, "let") => SymbolKind::VARIABLE,
        (_, "lookup" | "include" | "search") => SymbolKind::MODULE,
        (_, "name" | "format" | "events") => SymbolKind::CONSTANT,
        _ => SymbolKind::FIELD,
    };
    let range = document.range(line.start, line.end);
    let selection = document.range(line.keyword.span.start, line.keyword.span.end);
    DocumentSymbol {
        name: if name.is_empty() {
            line.keyword.text.clone()
        } else {
            name
        },
        detail: None,
        kind,
        tags: None,
        deprecated: None,
        range,
        selection_range: selection,
        children: Some(Vec::new()),
    }
}

/// `xf fmt`'s layout of the document, as one edit; `None` when it does not
/// parse, is laid out already, or is over the size xf lsp answers for.
pub(super) fn format(document: &Document) -> Option<Vec<TextEdit>> {
    let formatted = match document.kind {
        Kind::Transform => xf::syntax::format::format(&document.text),
        Kind::Pipeline => xf::syntax::format::format_pipeline(&document.text),
    }
    .ok()?;
    if formatted == document.text {
        return Some(Vec::new());
    }
    Some(vec![TextEdit::new(document.whole(), formatted)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_nest_by_block() {
        let text = "name \"x\"\nwhen a == 1 {\n  label b = 1\n  for i in l {\n    set c = i\n  }\n} else {\n  label b = 2\n}\nset d = 1\n";
        let document = Document::new(text.to_string(), Kind::Transform, None);
        let DocumentSymbolResponse::Nested(symbols) = symbols(&document) else {
            panic!()
        };
        let names: Vec<&str> = symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["name \"x\"", "when a == 1", "else", "set d = 1"]);
        let when = &symbols[1];
        let inner: Vec<&str> = when
            .children
            .as_ref()
            .unwrap()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(inner, ["label b = 1", "for i in l"]);
        assert_eq!(symbols[2].children.as_ref().unwrap()[0].name, "label b = 2");
    }
}
