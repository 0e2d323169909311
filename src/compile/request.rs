//! `request` is read-only: no statement may write it, remove it, or take its
//! name for a variable, a loop's item or a lookup (E0605). Statements that
//! read the record itself by a path (`for … in`, `fan_out … in`, `url …
//! from`) cannot read it either: they would read a record field of that name
//! while every expression reads the request, so they are refused too.

use super::Compiler;
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::syntax::ast::{Spanned, Statement};
use crate::value::{Path, Segment, REQUEST_FIELDS, REQUEST_NAME};

/// What a statement does with a path or a name, for the message.
enum Use {
    Write,
    Remove,
    Read,
    Name,
}

impl Compiler<'_> {
    /// Pushes an E0605 for each place `statement` writes `request`, removes
    /// it, names something `request`, or reads it where only the record is
    /// read; true when there was one.
    pub(super) fn touches_request(&mut self, statement: &Statement) -> bool {
        let mut places: Vec<(Span, Use)> = Vec::new();
        let mut path = |path: &Spanned<Path>, how: Use| {
            if starts_with_request(&path.node) {
                places.push((path.span, how));
            }
        };
        match statement {
            Statement::Label { target, .. }
            | Statement::TagAdd { target, .. }
            | Statement::Message { target, .. }
            | Statement::Set { target, .. }
            | Statement::Append { target, .. }
            | Statement::Nest(target) => path(target, Use::Write),
            Statement::TagRemove(targets) => {
                for target in targets {
                    path(target, Use::Remove);
                }
            }
            Statement::Url { target, from, .. } => {
                path(target, Use::Write);
                path(from, Use::Read);
            }
            Statement::Rename { from, to } => {
                path(from, Use::Remove);
                path(to, Use::Write);
            }
            Statement::For { over, .. } | Statement::FanOut { over, .. } => path(over, Use::Read),
            Statement::Lookup { key, .. } => path(key, Use::Read),
            _ => {}
        }
        if let Statement::For { name, .. }
        | Statement::FanOut { name, .. }
        | Statement::Let { name, .. }
        | Statement::Lookup { name, .. } = statement
        {
            if name.node == REQUEST_NAME {
                places.push((name.span, Use::Name));
            }
        }
        let found = !places.is_empty();
        for (span, how) in places {
            self.errors.push(request_diagnostic(span, how));
        }
        found
    }

    /// Pushes an E0606 when `rest`, a path inside `request` read at `span`,
    /// can never be present there.
    pub(super) fn request_path_exists(&mut self, rest: &Path, span: Span) -> bool {
        let Some(problem) = request_path_problem(rest) else {
            return true;
        };
        let shown = |path: &Path| match path.to_string() {
            text if text.starts_with('[') => format!("{REQUEST_NAME}{text}"),
            text => format!("{REQUEST_NAME}.{text}"),
        };
        let mut diagnostic = Diagnostic::new(
            Code::RequestField,
            format!("`{}` is never there", shown(rest)),
            span,
        )
        .with_label(problem.why);
        if let Some(instead) = problem.instead {
            diagnostic = diagnostic.with_note(format!("did you mean `{}`?", shown(&instead)));
        }
        self.errors.push(diagnostic);
        false
    }

    /// Pushes an E0605 when an `any`/`all` item would be named `request`.
    pub(super) fn item_named_request(&mut self, name: &Spanned<String>) -> bool {
        let named = name.node == REQUEST_NAME;
        if named {
            self.errors.push(request_diagnostic(name.span, Use::Name));
        }
        named
    }
}

fn starts_with_request(path: &Path) -> bool {
    matches!(path.0.first(), Some(Segment::Key(first)) if first == REQUEST_NAME)
}

fn request_diagnostic(span: Span, how: Use) -> Diagnostic {
    let (message, label, note) = match how {
        Use::Write => (
            "`request` cannot be written",
            "writes to `request`",
            "`request` is the request that carried the record, read-only; write to another name: `set github_event = request.headers.\"x-github-event\"`",
        ),
        Use::Remove => (
            "`request` cannot be removed or moved",
            "removes from `request`",
            "`request` is the request that carried the record, read-only; a record's own field named `request` is read after `nest`, as `NAME.request`",
        ),
        Use::Read => (
            "`request` cannot be read here",
            "this statement reads the record itself",
            "`for`, `fan_out`, `url … from` and `lookup … key` read the record's own fields; copy what the request says into the record first: `set event = request.headers.\"x-github-event\"`",
        ),
        Use::Name => (
            "`request` is a name of its own",
            "a variable, loop item or lookup cannot be named `request`",
            "`request` reads the request that carried the record; give this another name",
        ),
    };
    Diagnostic::new(Code::RequestWritten, message, span)
        .with_label(label)
        .with_note(note)
}

/// Why a path inside `request` can never be present, and the whole path
/// (inside `request`) that may be meant.
struct Absent {
    why: String,
    instead: Option<Path>,
}

fn request_path_problem(rest: &Path) -> Option<Absent> {
    let segments = &rest.0;
    let absent = |why: &str, instead: Option<Vec<Segment>>| {
        Some(Absent {
            why: why.to_string(),
            instead: instead.map(Path),
        })
    };
    let field = match segments.first() {
        None => return None,
        Some(Segment::Index(_)) => {
            return absent("`request` is an object of named fields, not an array", None)
        }
        Some(Segment::Key(field)) => field,
    };
    if !REQUEST_FIELDS.contains(&field.as_str()) {
        let instead = super::closest(field, REQUEST_FIELDS).map(|known| {
            let mut path = vec![Segment::Key(known.to_string())];
            path.extend_from_slice(&segments[1..]);
            path
        });
        let why = format!("`request` holds {}", REQUEST_FIELDS.join(", "));
        return absent(&why, instead);
    }
    if field != "headers" {
        let why = format!("`request.{field}` is a single value: nothing is below it");
        return match segments.len() {
            1 => None,
            _ => absent(&why, Some(segments[..1].to_vec())),
        };
    }
    match segments.get(1) {
        None => None,
        Some(Segment::Index(_)) => absent(
            "headers are named (`request.headers.\"x-github-event\"`), not numbered",
            None,
        ),
        Some(Segment::Key(name)) if name.chars().any(|c| c.is_ascii_uppercase()) => {
            let mut path = segments.to_vec();
            path[1] = Segment::Key(name.to_ascii_lowercase());
            absent("header names are lower-cased", Some(path))
        }
        Some(Segment::Key(_)) if segments.len() > 2 => absent(
            "a header's value is text: nothing is below it",
            Some(segments[..2].to_vec()),
        ),
        Some(Segment::Key(_)) => None,
    }
}
