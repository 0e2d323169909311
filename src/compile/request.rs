//! `request` is read-only: no statement may write it, remove it, or take its
//! name for a variable, a loop's item or a lookup (E0605). Statements that
//! read the record itself by a path (`for … in`, `fan_out … in`, `url …
//! from`) cannot read it either: they would read a record field of that name
//! while every expression reads the request, so they are refused too.

use super::Compiler;
use crate::diagnostic::{Code, Diagnostic, Span};
use crate::syntax::ast::{Spanned, Statement};
use crate::value::{Path, Segment, REQUEST_NAME};

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
