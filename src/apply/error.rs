//! Why one record could not be transformed, as a value: a kind, the statement
//! and its line, and the includes it was reached through, so that a caller
//! (the stream's error callback, a server's dead letters) can count, route or
//! word errors by what they are rather than by parsing text.

use std::fmt;

use crate::compile::Origin;

/// What kind of problem a record ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The record is not a JSON object.
    NotAnObject,
    /// A value is of a kind the statement cannot use, or cannot go where the
    /// statement writes it (`set a.b` through a string, `number("x")`, a HEC
    /// value Splunk refuses).
    Value,
    /// A template failed to render.
    Template,
    /// The record is not what its `validate` schema says.
    Invalid,
    /// A `fail` statement ran.
    Failed,
    /// Over a per-record limit: statements run, time, bytes built, nesting.
    Limit,
    /// A stop (a signal) ended the work on the record.
    Stopped,
    /// A bug in xf, caught: the record's work panicked.
    Internal,
}

impl ErrorKind {
    /// A stable name, for metrics and logs: `value`, `template`, …
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotAnObject => "not_an_object",
            ErrorKind::Value => "value",
            ErrorKind::Template => "template",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Failed => "failed",
            ErrorKind::Limit => "limit",
            ErrorKind::Stopped => "stopped",
            ErrorKind::Internal => "internal",
        }
    }
}

/// An `include` statement that a failing statement was reached through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The `include` statement and its line, in the file that includes.
    pub origin: Origin,
    /// The included file, as the `include` names it.
    pub file: String,
}

/// Why one record could not be transformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub kind: ErrorKind,
    /// The statement that failed (`tag add`) and its line, in [`RecordError::file`];
    /// none for a problem of the record as a whole.
    pub origin: Option<Origin>,
    /// The includes the statement was reached through, outermost first.
    pub through: Vec<Include>,
    /// What went wrong, in words.
    pub reason: String,
}

impl RecordError {
    pub fn new(kind: ErrorKind, origin: Option<Origin>, reason: impl Into<String>) -> Self {
        RecordError {
            kind,
            origin,
            through: Vec::new(),
            reason: reason.into(),
        }
    }

    /// The file the failing statement is written in, when an include was
    /// reached (else it is the transform's own file).
    pub fn file(&self) -> Option<&str> {
        self.through.last().map(|include| include.file.as_str())
    }

    /// This error, as seen from the file that included the one it happened in.
    pub(super) fn through(mut self, include: Include) -> Self {
        self.through.insert(0, include);
        self
    }
}

impl fmt::Display for RecordError {
    /// `include (line 3): team.xf: tag add (line 1): template error: …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for include in &self.through {
            write!(
                f,
                "{} (line {}): {}: ",
                include.origin.statement, include.origin.line, include.file
            )?;
        }
        match self.origin {
            Some(origin) => write!(
                f,
                "{} (line {}): {}",
                origin.statement, origin.line, self.reason
            ),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RecordError {}
