//! Problems found in a `.xf` file, and how they are shown.
//!
//! Every problem is a [`Diagnostic`]: a code from [`Code`], a message, a primary
//! span with a label, and optional notes. Spans are byte ranges into the file's
//! source. Rendering is done in one place ([`render`]), in the style of rustc:
//! `error[E0002]: …`, then `--> file:line:column`, the source line and a caret.
//! Output is plain text (no colour) so that it is the same in a terminal, a log
//! and a snapshot test.

use std::fmt;
use std::ops::Range;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, Chars, Config};

/// A byte range in a `.xf` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// 1-based line and column of the span's start in `source`.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let before = &source[..floor_char_boundary(source, self.start)];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = before[line_start..].chars().count() + 1;
        (line, col)
    }
}

/// Where each line of a source starts, so that a span's line is a binary
/// search rather than a count from the file's start (which made compiling a
/// file of N statements O(N²)).
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of each line's first byte; the first is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', source.as_bytes()).map(|at| at + 1))
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line of byte `offset`, as [`Span::line_col`] gives it.
    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}

impl From<pest::Span<'_>> for Span {
    fn from(span: pest::Span<'_>) -> Self {
        Span::new(span.start(), span.end())
    }
}

impl From<Span> for Range<usize> {
    fn from(span: Span) -> Self {
        span.start..span.end
    }
}

/// What kind of problem a diagnostic reports. Codes are stable: never reuse one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Code {
    // E00xx: syntax
    /// The text does not follow the grammar (`label idx "Alpha"`: `=` missing).
    Syntax,
    /// A line starts with a word that is no statement (`lable idx = 1`).
    UnknownStatement,
    /// A string literal has an escape JSON does not allow (`"\q"`).
    BadEscape,
    /// Blocks or brackets nest deeper than xf allows ([`crate::limits::MAX_TRANSFORM_NESTING`]).
    TooDeep,
    // E01xx: declarations
    /// `format` names no output format (`format xml`).
    UnknownFormat,
    /// `name` or `format` given twice, or two lookups or searches with one name.
    Duplicate,
    /// `events` names a type Armor does not have (`events security_alert`).
    UnknownEventType,
    /// A declaration (`name`, `format`, `events`, `lookup`, `search`) inside a `when` block.
    DeclarationInBlock,
    // E02xx: lookups and links
    /// A lookup table cannot be read or parsed.
    LookupFile,
    /// A lookup table has no column to join on.
    LookupColumn,
    /// `search` names no kind of search (`search elastic …`).
    UnknownSearch,
    /// `url` with no `search` to build it from, or an unknown `via`.
    NoSearch,
    // E03xx: templates and patterns
    /// A template does not compile.
    Template,
    /// A template file cannot be read.
    TemplateFile,
    /// A `matches` pattern is not a valid regular expression.
    Regex,
    /// A template uses a filter that does not exist (`{{ d | lowercase }}`).
    UnknownFilter,
    /// A template uses a test that does not exist (`{% if d is emtpy %}`).
    UnknownTest,
    /// A template calls a function that does not exist, and that it does not
    /// define as a macro or variable (`{{ rnage(3) }}`).
    UnknownTemplateFunction,
    /// A template uses `~` (`{{ a ~ "/" ~ b }}`), which writes a boolean or
    /// null as minijinja spells it (`True`, `None`), not as xf renders it.
    TemplateConcat,
    // E04xx: Splunk HEC
    /// A `hec` statement in a transform whose format is not `splunk`.
    HecWithoutSplunk,
    /// `hec` names no envelope key (`hec hots = …`).
    UnknownHecKey,
    /// A `hec` value that Splunk would reject (an object as an indexed field).
    HecValue,
    // E05xx: schemas
    /// `validate` names no shipped schema.
    UnknownSchema,
    /// A schema file cannot be read, or is not JSON.
    SchemaFile,
    /// A schema file is JSON but not a valid JSON Schema.
    SchemaInvalid,
    // E06xx: expressions
    /// A call names no function (`epoch(t)`).
    UnknownFunction,
    /// A function called with the wrong number or kind of arguments.
    Arguments,
    /// A `let` variable or an `any`/`all` item named like a lookup (`let tags = …`).
    LocalName,
    /// `fan_out` inside a block or in an included file: the statements after
    /// it, to the end of the transform, are what runs once per item.
    FanOutPlace,
    /// A statement writes or removes `request` (`set request.x = 1`), names
    /// something `request`, or reads it where only the record is read (`for x in request.headers`).
    RequestWritten,
    /// A path into `request` that can never be present (`request.hedaers`,
    /// `request.headers."X-GitHub-Event"`: names are lower-cased).
    RequestField,
    // E07xx: includes
    /// An included file cannot be read.
    IncludeFile,
    /// An included file has problems of its own.
    IncludeInvalid,
    /// A file includes itself, directly or through others.
    IncludeCycle,
    /// An included file's format is not the including file's.
    IncludeFormat,
    /// Includes nest deeper than 8 levels, run over 1024 plans per record, or
    /// total over 64 MiB (`MAX_INCLUDE_DEPTH`, `MAX_INCLUDED_PLANS`, `MAX_INCLUDE_BYTES`).
    IncludeLimit,
    // E08xx: pipeline files (`xf serve`)
    /// A setting or section a pipeline file does not have (`destnation`, `uri` in a source).
    UnknownSetting,
    /// A setting's value is not of its kind (a word for a number, an unknown format).
    SettingValue,
    /// Something a pipeline needs is not there (a source's transform, a destination's uri).
    MissingSetting,
    /// A file a pipeline names (a transform, a notification config, a secret) does not load.
    PipelineFile,
    // W00xx: warnings. The transform loads and runs; what it says is probably
    // not what its author meant (`--deny-warnings` makes them fail the load).
    /// A comparison of two constants (`"detail-type" == "WebhookTest"`), which
    /// is the same for every record.
    ConstantComparison,
    /// A `label` string that looks like a template (`label x = "{{ y }}"`);
    /// label values are never rendered.
    LabelTemplate,
    /// An ordering comparison with a string that holds a number
    /// (`severity >= "8"`): a number is never ordered with a string, and
    /// strings order by their characters (`"10" < "9"`).
    OrderedNumericString,
    /// A lookup table with two rows of one key: only the last is used.
    DuplicateLookupKey,
    /// A template name that nothing can supply: the record's shape is closed
    /// by a `validate` schema, and no statement, lookup or loop sets it.
    UnsuppliedTemplateName,
}

impl Code {
    /// The code as written in a report, `E0002`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Syntax => "E0001",
            Code::UnknownStatement => "E0002",
            Code::BadEscape => "E0003",
            Code::TooDeep => "E0004",
            Code::UnknownFormat => "E0101",
            Code::Duplicate => "E0102",
            Code::UnknownEventType => "E0103",
            Code::DeclarationInBlock => "E0104",
            Code::LookupFile => "E0201",
            Code::LookupColumn => "E0202",
            Code::UnknownSearch => "E0203",
            Code::NoSearch => "E0204",
            Code::Template => "E0301",
            Code::TemplateFile => "E0302",
            Code::Regex => "E0303",
            Code::UnknownFilter => "E0304",
            Code::UnknownTest => "E0305",
            Code::UnknownTemplateFunction => "E0306",
            Code::TemplateConcat => "E0307",
            Code::HecWithoutSplunk => "E0401",
            Code::UnknownHecKey => "E0402",
            Code::HecValue => "E0403",
            Code::UnknownSchema => "E0501",
            Code::SchemaFile => "E0502",
            Code::SchemaInvalid => "E0503",
            Code::UnknownFunction => "E0601",
            Code::Arguments => "E0602",
            Code::LocalName => "E0603",
            Code::FanOutPlace => "E0604",
            Code::RequestWritten => "E0605",
            Code::RequestField => "E0606",
            Code::IncludeFile => "E0701",
            Code::IncludeInvalid => "E0702",
            Code::IncludeCycle => "E0703",
            Code::IncludeFormat => "E0704",
            Code::IncludeLimit => "E0705",
            Code::UnknownSetting => "E0801",
            Code::SettingValue => "E0802",
            Code::MissingSetting => "E0803",
            Code::PipelineFile => "E0804",
            Code::ConstantComparison => "W0001",
            Code::LabelTemplate => "W0002",
            Code::OrderedNumericString => "W0003",
            Code::DuplicateLookupKey => "W0004",
            Code::UnsuppliedTemplateName => "W0005",
        }
    }

    /// Every code, in the order of the table above.
    pub const ALL: &'static [Code] = &[
        Code::Syntax,
        Code::UnknownStatement,
        Code::BadEscape,
        Code::TooDeep,
        Code::UnknownFormat,
        Code::Duplicate,
        Code::UnknownEventType,
        Code::DeclarationInBlock,
        Code::LookupFile,
        Code::LookupColumn,
        Code::UnknownSearch,
        Code::NoSearch,
        Code::Template,
        Code::TemplateFile,
        Code::Regex,
        Code::UnknownFilter,
        Code::UnknownTest,
        Code::UnknownTemplateFunction,
        Code::TemplateConcat,
        Code::HecWithoutSplunk,
        Code::UnknownHecKey,
        Code::HecValue,
        Code::UnknownSchema,
        Code::SchemaFile,
        Code::SchemaInvalid,
        Code::UnknownFunction,
        Code::Arguments,
        Code::LocalName,
        Code::FanOutPlace,
        Code::RequestWritten,
        Code::RequestField,
        Code::IncludeFile,
        Code::IncludeInvalid,
        Code::IncludeCycle,
        Code::IncludeFormat,
        Code::IncludeLimit,
        Code::UnknownSetting,
        Code::SettingValue,
        Code::MissingSetting,
        Code::PipelineFile,
        Code::ConstantComparison,
        Code::LabelTemplate,
        Code::OrderedNumericString,
        Code::DuplicateLookupKey,
        Code::UnsuppliedTemplateName,
    ];

    /// The code written `E0002` (or `W0001`), if there is one.
    pub fn from_code(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|code| code.as_str() == text)
    }

    /// What the code means, in a sentence or two (the documentation of its
    /// variant; `xf lsp` shows it on hover).
    pub fn explanation(self) -> &'static str {
        match self {
            Code::Syntax => "The text does not follow the grammar (`label idx \"Alpha\"`: `=` missing).",
            Code::UnknownStatement => "A line starts with a word that is no statement (`lable idx = 1`).",
            Code::BadEscape => "A string literal has an escape JSON does not allow (`\"\\q\"`).",
            Code::TooDeep => "Blocks or brackets nest deeper than xf allows.",
            Code::UnknownFormat => "`format` names no output format (`format xml`).",
            Code::Duplicate => "`name` or `format` given twice, or two lookups or searches with one name.",
            Code::UnknownEventType => "`events` names a type Armor does not have (`events security_alert`).",
            Code::DeclarationInBlock => "A declaration (`name`, `format`, `events`, `lookup`, `search`) inside a `when` block.",
            Code::LookupFile => "A lookup table cannot be read or parsed.",
            Code::LookupColumn => "A lookup table has no column to join on.",
            Code::UnknownSearch => "`search` names no kind of search (`search elastic …`).",
            Code::NoSearch => "`url` with no `search` to build it from, or an unknown `via`.",
            Code::Template => "A template does not compile.",
            Code::TemplateFile => "A template file cannot be read.",
            Code::Regex => "A `matches` pattern is not a valid regular expression.",
            Code::UnknownFilter => "A template uses a filter that does not exist (`{{ d | lowercase }}`).",
            Code::UnknownTest => "A template uses a test that does not exist (`{% if d is emtpy %}`).",
            Code::UnknownTemplateFunction => "A template calls a function that does not exist, and that it does not define as a macro or variable (`{{ rnage(3) }}`).",
            Code::TemplateConcat => "A template uses `~` (`{{ a ~ \"/\" ~ b }}`), which writes a boolean or null as minijinja spells it (`True`, `None`), not as xf renders it.",
            Code::HecWithoutSplunk => "A `hec` statement in a transform whose format is not `splunk`.",
            Code::UnknownHecKey => "`hec` names no envelope key (`hec hots = …`).",
            Code::HecValue => "A `hec` value that Splunk would reject (an object as an indexed field).",
            Code::UnknownSchema => "`validate` names no shipped schema.",
            Code::SchemaFile => "A schema file cannot be read, or is not JSON.",
            Code::SchemaInvalid => "A schema file is JSON but not a valid JSON Schema.",
            Code::UnknownFunction => "A call names no function (`epoch(t)`).",
            Code::Arguments => "A function called with the wrong number or kind of arguments.",
            Code::LocalName => "A `let` variable or an `any`/`all` item named like a lookup (`let tags = …`).",
            Code::FanOutPlace => "`fan_out` inside a block or in an included file: the statements after it, to the end of the transform, are what runs once per item.",
            Code::RequestWritten => "A statement writes or removes `request` (`set request.x = 1`), names something `request`, or reads it where only the record is read (`for x in request.headers`).",
            Code::RequestField => "A path into `request` that can never be present: a field it does not have (`request.hedaers`), a header name with capitals (names are lower-cased), or a path below a single value.",
            Code::IncludeFile => "An included file cannot be read.",
            Code::IncludeInvalid => "An included file has problems of its own.",
            Code::IncludeCycle => "A file includes itself, directly or through others.",
            Code::IncludeFormat => "An included file's format is not the including file's.",
            Code::IncludeLimit => "Includes nest deeper than 8 levels, run over 1024 plans per record, or total over 64 MiB (`MAX_INCLUDE_DEPTH`, `MAX_INCLUDED_PLANS`, `MAX_INCLUDE_BYTES`).",
            Code::UnknownSetting => "A setting or section a pipeline file does not have (`destnation`, `uri` in a source).",
            Code::SettingValue => "A setting's value is not of its kind (a word for a number, an unknown format).",
            Code::MissingSetting => "Something a pipeline needs is not there (a source's transform, a destination's uri).",
            Code::PipelineFile => "A file a pipeline names (a transform, a notification config, a secret) does not load.",
            Code::ConstantComparison => "A comparison of two constants (`\"detail-type\" == \"WebhookTest\"`), which is the same for every record.",
            Code::LabelTemplate => "A `label` string that looks like a template (`label x = \"{{ y }}\"`); label values are never rendered.",
            Code::OrderedNumericString => "An ordering comparison with a string that holds a number (`severity >= \"8\"`): a number is never ordered with a string, and strings order by their characters (`\"10\" < \"9\"`).",
            Code::DuplicateLookupKey => "A lookup table with two rows of one key: only the last is used.",
            Code::UnsuppliedTemplateName => "A template name that nothing can supply: the record's shape is closed by a `validate` schema, and no statement, lookup or loop sets it.",
        }
    }

    /// Whether it is a warning (`W…`): reported, but the transform loads.
    pub fn is_warning(self) -> bool {
        self.as_str().starts_with('W')
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a `.xf` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub span: Span,
    /// Short text under the caret.
    pub label: String,
    /// Further explanation or a hint, each shown as `= note`.
    pub notes: Vec<String>,
    /// Other places that explain the problem (where an unclosed block opens),
    /// each shown with its own line and a `-` underline.
    pub context: Vec<(Span, String)>,
    /// The problems of another file that this one stands for (an included
    /// transform that does not load), kept whole so that a program can show
    /// them at their own places; rendered as a last note.
    pub within: Option<Box<FileProblems>>,
}

/// A file's text and its problems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblems {
    /// The file as messages name it.
    pub name: String,
    pub text: std::sync::Arc<str>,
    pub diagnostics: std::sync::Arc<[Diagnostic]>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>, span: Span) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span,
            label: String::new(),
            notes: Vec::new(),
            context: Vec::new(),
            within: None,
        }
    }

    /// Puts another file's problems under this one (see [`Diagnostic::within`]).
    pub fn with_within(mut self, problems: FileProblems) -> Self {
        self.within = Some(Box::new(problems));
        self
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds another place, labelled, to show with the problem.
    pub fn with_context(mut self, span: Span, label: impl Into<String>) -> Self {
        self.context.push((span, label.into()));
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
}

/// Renders diagnostics rustc-style for the file `name` whose text is `source`.
pub fn render(name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let file = SimpleFile::new(name, source);
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    let mut out = String::new();
    for diagnostic in diagnostics {
        let span = clamp(diagnostic.span, source);
        let report = if diagnostic.code.is_warning() {
            Report::warning()
        } else {
            Report::error()
        };
        let report = report
            .with_code(diagnostic.code.as_str())
            .with_message(&diagnostic.message)
            .with_labels(
                std::iter::once(Label::primary((), span).with_message(&diagnostic.label))
                    .chain(diagnostic.context.iter().map(|(at, label)| {
                        Label::secondary((), clamp(*at, source)).with_message(label)
                    }))
                    .collect(),
            )
            .with_notes(notes(diagnostic));
        // Rendering into a String fails only for spans outside the file, which `clamp` rules out.
        if term::emit_to_string(&mut out, &config, &file, &report).is_err() {
            let (line, col) = diagnostic.span.line_col(source);
            let severity = if diagnostic.code.is_warning() {
                "warning"
            } else {
                "error"
            };
            out.push_str(&format!(
                "{severity}[{}]: {}\n --> {name}:{line}:{col}\n",
                diagnostic.code, diagnostic.message
            ));
        }
    }
    out
}

/// A diagnostic's notes, then the problems of the file it stands for, rendered.
fn notes(diagnostic: &Diagnostic) -> Vec<String> {
    let mut notes = diagnostic.notes.clone();
    if let Some(within) = &diagnostic.within {
        let rendered = render(&within.name, &within.text, &within.diagnostics);
        notes.push(rendered.trim_end().to_string());
    }
    notes
}

/// Keeps a span inside the source and on character boundaries.
fn clamp(span: Span, source: &str) -> Range<usize> {
    let start = floor_char_boundary(source, span.start);
    let end = floor_char_boundary(source, span.end.max(start));
    start..end
}

/// The nearest character boundary at or before `index`, within the source.
fn floor_char_boundary(source: &str, index: usize) -> usize {
    let mut index = index.min(source.len());
    while !source.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_gives_the_lines_line_col_gives() {
        let source = "a\nbé\n\n  c = \"{{ x }}\"\nlast";
        let index = LineIndex::new(source);
        for offset in 0..source.len() + 3 {
            let span = Span::new(offset, offset);
            assert_eq!(index.line(offset), span.line_col(source).0, "at {offset}");
        }
        assert_eq!(index.line(source.len()), 5);
    }
}
