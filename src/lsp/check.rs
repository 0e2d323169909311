//! Diagnostics: a document checked as `xf check` checks its file, and the
//! problems turned into LSP's terms; and the quick fixes their notes suggest.
//!
//! A transform is loaded with [`Transform::from_text_at`] (its includes,
//! lookups, templates and schemas read from beside its file, confined as `xf
//! run` confines them), a pipeline with the pipeline loader's `load_text`;
//! the problems are those `xf check` prints, each with its code, its span
//! (byte offsets, turned into UTF-16 positions), the other places it names
//! as related information (the `{` of an unclosed block, and, for an
//! included file that does not load, each of that file's own problems at its
//! place there) and its label and notes under the message.

use std::path::Path;

use lsp_types::{
    CodeAction, CodeActionKind, CodeActionOrCommand, DiagnosticRelatedInformation,
    DiagnosticSeverity, Location, NumberOrString, Range, TextEdit, Uri, WorkspaceEdit,
};
use xf::diagnostic::{Diagnostic, FileProblems, Span};
use xf::{LoadError, LoadOptions, Transform};

use super::text::{self, Document};
use super::{file_uri, Kind, MAX_DOCUMENT};

/// What a client sees as the diagnostics' source.
const SOURCE: &str = "xf";

/// A problem `xf check` prints without a place in the file (a pipeline's
/// destination that the request forgery guard refuses), and the span of what
/// it names, when found.
pub(super) struct Unplaced {
    pub message: String,
    pub span: Span,
}

/// The document's problems as `xf check` finds them.
pub(super) fn problems(
    document: &Document,
    options: &LoadOptions,
) -> (Vec<Diagnostic>, Vec<Unplaced>) {
    match document.kind {
        Kind::Transform => (transform_problems(document, options), Vec::new()),
        Kind::Pipeline => pipeline_problems(document, options),
    }
}

fn transform_problems(document: &Document, options: &LoadOptions) -> Vec<Diagnostic> {
    let loaded = match &document.path {
        Some(path) => Transform::from_text_at(path, &document.text, options),
        None => Transform::from_source_with(
            "untitled.xf",
            &document.text,
            Some(Path::new(".")),
            options,
        ),
    };
    match loaded {
        Ok(transform) => transform.warnings().to_vec(),
        Err(LoadError::Invalid { diagnostics, .. }) => diagnostics,
        // Neither is made by a load from text; said at the start if ever.
        Err(other) => vec![Diagnostic::new(
            xf::diagnostic::Code::Syntax,
            other.to_string(),
            Span::new(0, 0),
        )],
    }
}

#[cfg(feature = "serve")]
fn pipeline_problems(
    document: &Document,
    options: &LoadOptions,
) -> (Vec<Diagnostic>, Vec<Unplaced>) {
    use xf::serve::config::pipeline;
    let path = document
        .path
        .clone()
        .unwrap_or_else(|| Path::new("untitled.xfp").to_path_buf());
    match pipeline::load_text(&path, &document.text, options) {
        Err(problems) => (problems, Vec::new()),
        Ok(loaded) => {
            let refused = crate::cli::refused_addresses(&loaded, &[]);
            let unplaced = refused
                .into_iter()
                .map(|line| {
                    let message = line.strip_prefix("error: ").unwrap_or(&line).to_string();
                    let span = named_section(&document.text, &message);
                    Unplaced { message, span }
                })
                .collect();
            (Vec::new(), unplaced)
        }
    }
}

/// Without `xf serve` built in, pipeline files are not checked (as `xf
/// check` cannot check them): said once, at the start.
#[cfg(not(feature = "serve"))]
fn pipeline_problems(_: &Document, _: &LoadOptions) -> (Vec<Diagnostic>, Vec<Unplaced>) {
    let message = "this xf is built without `serve`: pipeline files are not checked".to_string();
    (
        Vec::new(),
        vec![Unplaced {
            message,
            span: Span::new(0, 0),
        }],
    )
}

/// Where the section a refusal names (``destination `splunk`: …``) is written: its name.
#[cfg(feature = "serve")]
fn named_section(text: &str, message: &str) -> Span {
    let found = (|| {
        let (kind, rest) = message.split_once(" `")?;
        let name = rest.split('`').next()?;
        let declarations = xf::syntax::pipeline::parse_pipeline(text).ok()?;
        declarations
            .into_iter()
            .find_map(|declaration| match declaration {
                xf::syntax::pipeline::Declaration::Section(section)
                    if section.kind.text == kind && section.name.text == name =>
                {
                    Some(section.name.span)
                }
                _ => None,
            })
    })();
    found.unwrap_or_default()
}

/// The diagnostics to publish for a document.
pub(super) fn diagnostics(
    document: &Document,
    uri: &Uri,
    options: &LoadOptions,
) -> Vec<lsp_types::Diagnostic> {
    if document.text.len() > MAX_DOCUMENT {
        return vec![too_large(document)];
    }
    let (problems, unplaced) = problems(document, options);
    let mut published: Vec<lsp_types::Diagnostic> = problems
        .iter()
        .map(|problem| to_lsp(document, uri, problem))
        .collect();
    published.extend(unplaced.into_iter().map(|problem| lsp_types::Diagnostic {
        range: document.range(problem.span.start, problem.span.end),
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some(SOURCE.to_string()),
        message: problem.message,
        ..lsp_types::Diagnostic::default()
    }));
    published
}

fn too_large(document: &Document) -> lsp_types::Diagnostic {
    lsp_types::Diagnostic {
        range: document.range(0, 0),
        severity: Some(DiagnosticSeverity::WARNING),
        source: Some(SOURCE.to_string()),
        message: format!(
            "this document is {} bytes, over the {} that xf lsp checks and answers for; `xf check` checks it",
            document.text.len(),
            MAX_DOCUMENT
        ),
        ..lsp_types::Diagnostic::default()
    }
}

/// The one diagnostic of a check that failed inside xf (a bug): said, not hidden.
pub(super) fn internal_error(document: &Document) -> lsp_types::Diagnostic {
    lsp_types::Diagnostic {
        range: document.range(0, 0),
        severity: Some(DiagnosticSeverity::ERROR),
        source: Some(SOURCE.to_string()),
        message: "internal error in xf lsp while checking this document; `xf check` says more"
            .to_string(),
        ..lsp_types::Diagnostic::default()
    }
}

/// An xf diagnostic in LSP's terms.
fn to_lsp(document: &Document, uri: &Uri, problem: &Diagnostic) -> lsp_types::Diagnostic {
    let severity = if problem.code.is_warning() {
        DiagnosticSeverity::WARNING
    } else {
        DiagnosticSeverity::ERROR
    };
    let mut related: Vec<DiagnosticRelatedInformation> = problem
        .context
        .iter()
        .map(|(span, label)| DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), document.range(span.start, span.end)),
            message: label.clone(),
        })
        .collect();
    if let Some(within) = &problem.within {
        within_locations(within, &mut related, 0);
    }
    lsp_types::Diagnostic {
        range: document.range(problem.span.start, problem.span.end),
        severity: Some(severity),
        code: Some(NumberOrString::String(problem.code.as_str().to_string())),
        source: Some(SOURCE.to_string()),
        message: message(problem),
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    }
}

/// The message, then the label under the caret and each note on a line of its own.
fn message(problem: &Diagnostic) -> String {
    let mut message = problem.message.clone();
    if !problem.label.is_empty() {
        message.push('\n');
        message.push_str(&problem.label);
    }
    for note in &problem.notes {
        message.push('\n');
        message.push_str(note);
    }
    message
}

/// Includes nest at most 8 deep; the files' problems, at their places.
const MAX_WITHIN: usize = 8;

/// Each problem of an included file (and of the files it includes), as a
/// location in that file.
fn within_locations(
    within: &FileProblems,
    related: &mut Vec<DiagnosticRelatedInformation>,
    depth: usize,
) {
    let Some(uri) = file_uri(Path::new(&within.name)) else {
        return;
    };
    let lines = text::line_starts(&within.text);
    for problem in within.diagnostics.iter() {
        let range = Range::new(
            text::position(&within.text, &lines, problem.span.start),
            text::position(
                &within.text,
                &lines,
                problem.span.end.max(problem.span.start),
            ),
        );
        related.push(DiagnosticRelatedInformation {
            location: Location::new(uri.clone(), range),
            message: format!(
                "{}[{}]: {}",
                severity_word(problem),
                problem.code,
                problem.message
            ),
        });
        if let Some(inner) = &problem.within {
            if depth < MAX_WITHIN {
                within_locations(inner, related, depth + 1);
            }
        }
    }
}

fn severity_word(problem: &Diagnostic) -> &'static str {
    if problem.code.is_warning() {
        "warning"
    } else {
        "error"
    }
}

/// One quick fix: a title and the edits that make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fix {
    pub title: String,
    pub edits: Vec<(Span, String)>,
}

/// The fixes a diagnostic's notes suggest, when what to change is plain:
/// - "did you mean `NAME`?" under a misspelt word: the word replaced;
/// - "write `"TEXT"`" under a single- or curly-quoted string: the string requoted;
/// - "write `PATH`" under jq's leading dot: the dot removed;
/// - "write `} else {`" for an `else` that starts a line: joined to the `}` line;
/// - "to compare numbers, write `8` without quotes" under `"8"`: the quotes removed.
pub(super) fn fixes(source: &str, problem: &Diagnostic) -> Vec<Fix> {
    let span = problem.span;
    let Some(written) = source.get(span.start..span.end) else {
        return Vec::new();
    };
    let mut fixes = Vec::new();
    for note in &problem.notes {
        if let Some(name) = quoted_between(note, "did you mean `", "`?") {
            if !written.is_empty()
                && written
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-'))
            {
                fixes.push(Fix {
                    title: format!("replace `{written}` with `{name}`"),
                    edits: vec![(span, name.to_string())],
                });
            }
        } else if let Some(number) =
            quoted_between(note, "to compare numbers, write `", "` without quotes")
        {
            if written == format!("\"{number}\"") {
                fixes.push(Fix {
                    title: format!("write `{number}` without quotes"),
                    edits: vec![(span, number.to_string())],
                });
            }
        } else if note.starts_with("write `} else {`") {
            if let Some((brace, _)) = problem.context.first() {
                let between = Span::new(brace.end, span.start);
                if source
                    .get(between.start..between.end)
                    .is_some_and(|gap| gap.trim().is_empty())
                {
                    fixes.push(Fix {
                        title: "join `else` to the `}` before it".to_string(),
                        edits: vec![(between, " ".to_string())],
                    });
                }
            }
        } else if let Some(text) = quoted_between(note, "write `", "`") {
            if written == "." {
                fixes.push(Fix {
                    title: format!("write `{text}`"),
                    edits: vec![(span, String::new())],
                });
            } else if written.starts_with(['\'', '‘', '’', '“', '”']) && text.starts_with('"')
            {
                fixes.push(Fix {
                    title: format!("write `{text}`"),
                    edits: vec![(span, text.to_string())],
                });
            }
        }
    }
    fixes
}

/// The text of `note` between `open` (at its start) and the last `close`.
fn quoted_between<'a>(note: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let rest = note.strip_prefix(open)?;
    let end = rest.rfind(close)?;
    Some(&rest[..end]).filter(|text| !text.is_empty())
}

/// The quick fixes of the problems the document has now whose place meets
/// `range` (the client's diagnostics are not trusted to come back whole:
/// the document is checked again, which takes milliseconds).
pub(super) fn code_actions(
    document: &Document,
    uri: &Uri,
    options: &LoadOptions,
    range: Range,
) -> Vec<CodeActionOrCommand> {
    let (problems, _) = problems(document, options);
    let start = document.offset(range.start);
    let end = document.offset(range.end);
    problems
        .iter()
        .filter(|problem| problem.span.start <= end && start <= problem.span.end)
        .flat_map(|problem| {
            let diagnostic = to_lsp(document, uri, problem);
            fixes(&document.text, problem)
                .into_iter()
                .map(move |fix| action(document, uri, &diagnostic, fix))
        })
        .collect()
}

fn action(
    document: &Document,
    uri: &Uri,
    diagnostic: &lsp_types::Diagnostic,
    fix: Fix,
) -> CodeActionOrCommand {
    let edits = fix
        .edits
        .into_iter()
        .map(|(span, text)| TextEdit::new(document.range(span.start, span.end), text))
        .collect();
    let changes = std::iter::once((uri.clone(), edits)).collect();
    CodeActionOrCommand::CodeAction(CodeAction {
        title: fix.title,
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(vec![diagnostic.clone()]),
        edit: Some(WorkspaceEdit::new(changes)),
        is_preferred: Some(true),
        ..CodeAction::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source with a fix's edits made (they never overlap).
    fn fixed(source: &str, fix: &Fix) -> String {
        let mut text = source.to_string();
        let mut edits = fix.edits.clone();
        edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
        for (span, new) in edits {
            text.replace_range(span.start..span.end, &new);
        }
        text
    }

    fn first_fix(source: &str) -> (String, String) {
        let problems = match xf::syntax::parse(source) {
            Err(problems) => problems,
            Ok(_) => match Transform::from_source("t.xf", source, None) {
                Err(LoadError::Invalid { diagnostics, .. }) => diagnostics,
                Ok(transform) => transform.warnings().to_vec(),
                Err(other) => panic!("{other}"),
            },
        };
        let fix = problems
            .iter()
            .flat_map(|problem| fixes(source, problem))
            .next()
            .unwrap_or_else(|| panic!("no fix for {source:?}: {problems:?}"));
        (fix.title.clone(), fixed(source, &fix))
    }

    #[test]
    fn each_suggestion_fixes_what_it_is_under_and_the_result_loads() {
        let cases = [
            ("lable idx = \"Alpha\"\n", "label idx = \"Alpha\"\n"),
            ("set x = lowr(y)\n", "set x = lower(y)\n"),
            (
                "tag add x = \"{{ d | lowercase }}\"\n",
                "tag add x = \"{{ d | lower }}\"\n",
            ),
            (
                "drop when a != 'reopened'\n",
                "drop when a != \"reopened\"\n",
            ),
            (
                "drop when a != “reopened”\n",
                "drop when a != \"reopened\"\n",
            ),
            ("set n = .alert.number\n", "set n = alert.number\n"),
            (
                "when a == 1 {\n  label b = 1\n}\nelse {\n  label b = 2\n}\n",
                "when a == 1 {\n  label b = 1\n} else {\n  label b = 2\n}\n",
            ),
            ("drop when severity >= \"8\"\n", "drop when severity >= 8\n"),
        ];
        for (source, expected) in cases {
            let (title, after) = first_fix(source);
            assert_eq!(after, expected, "{title}");
            Transform::from_source("t.xf", &after, None)
                .and_then(Transform::deny_warnings)
                .unwrap_or_else(|e| panic!("{after:?} does not load: {}", e.render()));
        }
    }

    #[test]
    fn no_fix_where_the_note_does_not_say_what_to_write() {
        // A missing `=`: E0001 with no suggestion.
        let source = "label idx \"Alpha\"\n";
        let problems = xf::syntax::parse(source).unwrap_err();
        assert!(problems.iter().all(|p| fixes(source, p).is_empty()));
    }
}
