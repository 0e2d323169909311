//! Stage 2, compile: syntax tree → [`Plan`].
//!
//! Everything that can be done once is done here: names are checked, templates
//! and patterns compiled, lookup tables read, links prepared. Every problem is
//! collected as a [`Diagnostic`] before the load fails, so an author sees them
//! all at once. A plan that compiles can only fail per record, on data.

mod expr;
pub mod functions;
mod include;
mod link;
mod lint;
pub(crate) mod lookup;
mod request;
mod seen;
mod template;
mod template_names;

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;

/// The loader lives before every stage (schemas read through it too); named here as before.
pub use crate::files::{self, Disk, Loader};
pub use expr::{Call, Expr, Group, TextFunction, TimeFormat};
pub use functions::{Function, FunctionKind, FUNCTIONS};
pub use include::{Nesting, MAX_INCLUDED_PLANS, MAX_INCLUDE_BYTES, MAX_INCLUDE_DEPTH};
pub use link::{Search, SEARCH_KINDS};
pub use lookup::Lookup;
pub use seen::fields_seen;
pub use template::{NameKind, TemplateId, Templates, MINIJINJA_FILTERS, MINIJINJA_TESTS};

use crate::diagnostic::{Code, Diagnostic, LineIndex, Span};
use crate::limits::Limits;
use crate::schema::{self, Schema};
use crate::splunk::{HecSlot, ENVELOPE_KEYS};
use crate::syntax::ast::{
    CompareOp, Condition, HecKey, Path, Spanned, Statement, TextOp, ValueExpr,
};

/// What a transform writes: plain records, or Splunk HEC events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Default,
    Splunk,
}

impl Format {
    /// The format as a `format` statement names it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Default => "default",
            Format::Splunk => "splunk",
        }
    }
}

/// Armor's subscription types, recognised from a record's own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `offenseType` is `"Incident"`.
    Incident,
    /// Any other `OFFENSE_*` document.
    Detection,
    /// `documentType` starts with `EVENT_`.
    Event,
}

impl EventType {
    pub const NAMES: &'static [&'static str] =
        &["security_incident", "security_detection", "security_event"];

    pub fn from_name(name: &str) -> Option<EventType> {
        match name {
            "security_incident" => Some(EventType::Incident),
            "security_detection" => Some(EventType::Detection),
            "security_event" => Some(EventType::Event),
            _ => None,
        }
    }

    /// The top-level fields [`EventType::of`] reads.
    pub const FIELDS: [&'static str; 2] = ["documentType", "offenseType"];

    /// The type of an Armor record, if it has one.
    pub fn of(record: &Value) -> Option<EventType> {
        let document_type = record.get("documentType")?.as_str()?;
        if document_type.starts_with("EVENT_") {
            Some(EventType::Event)
        } else if record.get("offenseType").and_then(Value::as_str) == Some("Incident") {
            Some(EventType::Incident)
        } else if document_type.starts_with("OFFENSE_") {
            Some(EventType::Detection)
        } else {
            None
        }
    }
}

/// A compiled transform: what [`crate::apply`] runs on each record.
pub struct Plan {
    pub name: Option<String>,
    pub format: Format,
    /// Whether a `format` statement named it: a file without one is a helper
    /// (it cannot hold `hec`) that transforms of any format may include.
    pub format_declared: bool,
    /// Armor's `event_type` filter; `None` lets every record through.
    pub events: Option<Vec<EventType>>,
    pub steps: Vec<Step>,
    /// `tag remove` paths, applied after every step (index = removal id).
    pub removals: Vec<Path>,
    pub templates: Templates,
    pub searches: Vec<Search>,
    /// Schemas of `validate` statements, compiled once.
    pub schemas: Vec<Schema>,
    /// The per-record limits it was loaded with (an included plan runs under
    /// the outermost plan's).
    pub limits: Limits,
    /// How deep its includes nest, and how many plans a record runs through it.
    pub nesting: Nesting,
    /// What loads but is probably not meant (W00xx), about this file's own
    /// statements (an included file's are its plan's).
    pub warnings: Vec<Diagnostic>,
    /// The names of its local variables (`let`, and `any`/`all` items), by slot.
    pub locals: Vec<String>,
    /// Its file's text, which [`Origin::span`]s point into (for traces).
    pub source: Arc<str>,
}

/// Where a step came from, for record errors (`tag add` at line 12) and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub statement: &'static str,
    pub line: usize,
    /// The 1-based column (in characters) where the statement starts.
    pub column: usize,
    /// The statement's text in its file's source ([`Plan::source`]).
    pub span: Span,
}

/// One step of a plan.
pub enum Step {
    /// `label`, `tag add`, `message` and `set`: write a value at a path.
    Set {
        target: Path,
        value: Expr,
        origin: Origin,
    },
    /// `tag remove`: mark paths (by removal id) to remove at the end.
    Remove { ids: Vec<usize>, origin: Origin },
    /// `url`: a search link for the value at `from`, when there is one.
    Url {
        target: Path,
        from: Path,
        /// `from` as the field name the search looks in, written once here.
        field: String,
        search: usize,
        origin: Origin,
    },
    /// `drop`, or with a condition, `drop when …`.
    Drop {
        condition: Option<Cond>,
        /// The condition's text in the source (empty without one), for traces.
        text: Span,
        origin: Origin,
    },
    /// `let`: a local variable (by slot) gets a value, or becomes missing.
    Let {
        slot: usize,
        value: Expr,
        origin: Origin,
    },
    When {
        condition: Cond,
        /// The condition's text in the source, for traces.
        text: Span,
        then: Vec<Step>,
        otherwise: Vec<Step>,
        origin: Origin,
    },
    /// `hec KEY = …`: an envelope value of the Splunk HEC event.
    Hec {
        slot: HecSlot,
        value: Expr,
        origin: Origin,
    },
    /// `validate`: the record as it is here must match a schema (by index in [`Plan::schemas`]).
    Validate { schema: usize, origin: Origin },
    /// `append`: add an item to the array at a path (created when missing).
    Append {
        target: Path,
        value: Expr,
        origin: Origin,
    },
    /// `rename`: move the value at `from` to `to`, when there is one.
    Rename {
        from: Path,
        to: Path,
        origin: Origin,
    },
    /// `nest`: the record becomes the value at a path of a new, empty record.
    Nest { target: Path, origin: Origin },
    /// `for`: the body once per item of the array at `over`, the item bound to `name`.
    For {
        name: String,
        over: Path,
        body: Vec<Step>,
        origin: Origin,
    },
    /// `fan_out`: the steps after it run once per item of the array at
    /// `over`, on a copy of the record, the item in local `slot`; each copy
    /// that is not dropped is one output record. Only at the top level of
    /// the loaded transform, so the steps after it are the rest of its list.
    FanOut {
        slot: usize,
        over: Path,
        origin: Origin,
    },
    /// `fail`: the record becomes a record error with this message.
    Fail { message: Expr, origin: Origin },
    /// `include`: another transform, compiled on its own, run here.
    Include {
        /// Shared by every `include` of the same file in one load.
        plan: Arc<Plan>,
        /// The file as the `include` names it, for record errors.
        file: String,
        origin: Origin,
    },
}

impl Step {
    /// Where the step's statement is written.
    pub fn origin(&self) -> Origin {
        match self {
            Step::Set { origin, .. }
            | Step::Remove { origin, .. }
            | Step::Url { origin, .. }
            | Step::Drop { origin, .. }
            | Step::Let { origin, .. }
            | Step::When { origin, .. }
            | Step::Hec { origin, .. }
            | Step::Validate { origin, .. }
            | Step::Append { origin, .. }
            | Step::Rename { origin, .. }
            | Step::Nest { origin, .. }
            | Step::For { origin, .. }
            | Step::FanOut { origin, .. }
            | Step::Fail { origin, .. }
            | Step::Include { origin, .. } => *origin,
        }
    }
}

/// A compiled condition (patterns compiled).
pub enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    Exists(Operand),
    /// `in`, or with `true`, `not in`.
    In(Operand, Vec<Value>, bool),
    Matches(Operand, Regex),
    Compare(Operand, CompareOp, Operand),
    /// `is null`, or with `true`, `is not null`.
    IsNull(Operand, bool),
    Text(Operand, TextOp, Operand),
    /// `any(…)`, or with `all`, `all(…)`: each item of `over` in local `slot`.
    Quantified {
        all: bool,
        slot: usize,
        over: Operand,
        condition: Box<Cond>,
    },
}

/// One side of a test: an expression, and the statement it stands in (for
/// the record error of a function that fails on the record's data).
pub struct Operand {
    pub expr: Expr,
    pub origin: Origin,
}

/// What the files of one load share: where files are read from, and the
/// included files compiled so far (each is compiled once per load).
pub struct Load {
    pub files: Arc<dyn Loader>,
    included: include::Included,
}

impl Load {
    pub fn new(files: Arc<dyn Loader>) -> Load {
        Load {
            files,
            included: include::Included::default(),
        }
    }
}

/// Compiles parsed statements. `file` names the source in template names and
/// messages; `base_dir` is where lookup tables and template files are found,
/// through `load`'s loader. `including` lists the files being loaded around
/// this one (itself first, when it is a file), so that an include cycle is an
/// error, not a hang.
pub fn compile(
    statements: &[Spanned<Statement>],
    source: &str,
    file: &str,
    base_dir: Option<&FsPath>,
    including: &[PathBuf],
    limits: &Limits,
    load: &mut Load,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut templates = Templates::new(limits);
    if let Some(dir) = base_dir {
        templates.set_files(dir, Arc::clone(&load.files));
    }
    let mut compiler = Compiler {
        source,
        lines: LineIndex::new(source),
        file,
        base_dir,
        including,
        limits,
        errors: Vec::new(),
        plan: Plan {
            name: None,
            format: Format::Default,
            format_declared: false,
            events: None,
            steps: Vec::new(),
            removals: Vec::new(),
            templates,
            searches: Vec::new(),
            schemas: Vec::new(),
            limits: *limits,
            nesting: Nesting::default(),
            warnings: Vec::new(),
            locals: Vec::new(),
            source: Arc::from(source),
        },
        load,
        over_limit: false,
        seen_format: None,
        seen_name: None,
        lookups: Vec::new(),
        lookup_spans: Vec::new(),
        search_spans: Vec::new(),
        visible: Vec::new(),
    };
    for statement in statements {
        compiler.declaration(statement);
    }
    let lookups = std::mem::take(&mut compiler.lookups);
    compiler.plan.templates.set_lookups(lookups);
    compiler.plan.steps = compiler.steps(statements, false);
    compiler.plan.templates.freeze();
    if compiler.errors.is_empty() {
        compiler.plan.warnings = lint::lint(statements, source, &compiler.plan);
        Ok(compiler.plan)
    } else {
        compiler.errors.sort_by_key(|d| d.span.start);
        Err(compiler.errors)
    }
}

struct Compiler<'a> {
    source: &'a str,
    lines: LineIndex,
    file: &'a str,
    base_dir: Option<&'a FsPath>,
    including: &'a [PathBuf],
    limits: &'a Limits,
    errors: Vec<Diagnostic>,
    plan: Plan,
    load: &'a mut Load,
    /// An include limit was reported: later includes are not compiled.
    over_limit: bool,
    seen_format: Option<Span>,
    seen_name: Option<Span>,
    lookups: Vec<Lookup>,
    lookup_spans: Vec<Span>,
    search_spans: Vec<Span>,
    /// The local variables' slots that the statement being compiled sees, in
    /// the order declared: a `let` is seen by every statement after it in the
    /// file (after its block too), an `any`/`all` item only inside its test.
    visible: Vec<usize>,
}

impl Compiler<'_> {
    /// First pass: the declarations, wherever they stand at the top level.
    fn declaration(&mut self, statement: &Spanned<Statement>) {
        match &statement.node {
            Statement::Name(name) => {
                if self.duplicate(self.seen_name, name.span, "name") {
                    return;
                }
                self.seen_name = Some(name.span);
                self.plan.name = Some(name.node.clone());
            }
            Statement::Format(format) => {
                if self.duplicate(self.seen_format, format.span, "format") {
                    return;
                }
                self.seen_format = Some(format.span);
                self.plan.format_declared = true;
                match format.node.as_str() {
                    "default" => self.plan.format = Format::Default,
                    "splunk" => self.plan.format = Format::Splunk,
                    other => self.unknown(
                        Code::UnknownFormat,
                        "format",
                        other,
                        format.span,
                        &["default", "splunk"],
                    ),
                }
            }
            Statement::Events(names) => {
                let mut events = Vec::new();
                for name in names {
                    match EventType::from_name(&name.node) {
                        Some(event) => events.push(event),
                        None => self.unknown(
                            Code::UnknownEventType,
                            "event type",
                            &name.node,
                            name.span,
                            EventType::NAMES,
                        ),
                    }
                }
                self.plan.events.get_or_insert_with(Vec::new).extend(events);
            }
            Statement::Lookup {
                name,
                file,
                key,
                column,
            } => self.lookup(name, file, key, column.as_ref()),
            Statement::Search { kind, base } => self.search(kind, base),
            _ => {}
        }
    }

    fn duplicate(&mut self, earlier: Option<Span>, span: Span, what: &str) -> bool {
        if let Some(earlier) = earlier {
            let line = self.lines.line(earlier.start);
            self.errors.push(
                Diagnostic::new(Code::Duplicate, format!("`{what}` is given twice"), span)
                    .with_label("second one here")
                    .with_note(format!("the first is on line {line}")),
            );
        }
        earlier.is_some()
    }

    fn unknown(&mut self, code: Code, what: &str, name: &str, span: Span, known: &[&str]) {
        self.errors
            .push(unknown_diagnostic(code, what, name, span, known, 0));
    }

    fn lookup(
        &mut self,
        name: &Spanned<String>,
        file: &Spanned<String>,
        key: &Spanned<Path>,
        column: Option<&Spanned<String>>,
    ) {
        if let Some(i) = self.lookups.iter().position(|l| l.name == name.node) {
            let earlier = Some(self.lookup_spans[i]);
            self.duplicate(earlier, name.span, &format!("lookup {}", name.node));
            return;
        }
        let path = match self.base_dir {
            Some(dir) => dir.join(&file.node),
            None => FsPath::new(&file.node).to_path_buf(),
        };
        match Lookup::load_with(
            &*self.load.files,
            &name.node,
            &path,
            &file.node,
            key.node.clone(),
            column.map(|c| c.node.as_str()),
        ) {
            Ok(lookup) => {
                self.lookups.push(lookup);
                self.lookup_spans.push(name.span);
            }
            Err(lookup::LoadError::File(reason)) => self.errors.push(
                Diagnostic::new(Code::LookupFile, "lookup table cannot be loaded", file.span)
                    .with_label(reason),
            ),
            Err(lookup::LoadError::Column(reason)) => {
                let span = column.map_or(key.span, |c| c.span);
                self.errors.push(
                    Diagnostic::new(
                        Code::LookupColumn,
                        "lookup table has no such key column",
                        span,
                    )
                    .with_label(reason),
                )
            }
        }
    }

    fn search(&mut self, kind: &Spanned<String>, base: &Spanned<String>) {
        if let Some(i) = self
            .plan
            .searches
            .iter()
            .position(|s| s.kind() == kind.node)
        {
            let earlier = Some(self.search_spans[i]);
            self.duplicate(earlier, kind.span, &format!("search {}", kind.node));
            return;
        }
        let search = match kind.node.as_str() {
            "kibana" => Search::Kibana {
                base: base.node.clone(),
            },
            "splunk" => Search::Splunk {
                base: base.node.clone(),
            },
            "custom" => {
                let name = format!("{}{}", template::LINK_PREFIX, self.template_name(base.span));
                match self.plan.templates.add(name, base.node.clone()) {
                    Ok(template)
                        if self.template_names_exist(template, base.span, Some(&base.node)) =>
                    {
                        Search::Custom { template }
                    }
                    Ok(_) => return,
                    Err(error) => return self.template_error(error, base.span, &base.node),
                }
            }
            other => {
                return self.unknown(
                    Code::UnknownSearch,
                    "search",
                    other,
                    kind.span,
                    SEARCH_KINDS,
                )
            }
        };
        self.plan.searches.push(search);
        self.search_spans.push(kind.span);
    }

    /// Second pass: the steps, in order, with `when` blocks nested.
    fn steps(&mut self, statements: &[Spanned<Statement>], in_block: bool) -> Vec<Step> {
        let mut steps = Vec::new();
        for statement in statements {
            if let Some(step) = self.step(statement, in_block) {
                steps.push(step);
            }
        }
        steps
    }

    fn step(&mut self, statement: &Spanned<Statement>, in_block: bool) -> Option<Step> {
        let line = self.lines.line(statement.span.start);
        let start = statement.span.start;
        let line_start = self.source[..start].rfind('\n').map_or(0, |at| at + 1);
        let column = self.source[line_start..start].chars().count() + 1;
        let span = statement.span;
        if self.touches_request(&statement.node) {
            return None;
        }
        let origin = |statement| Origin {
            statement,
            line,
            column,
            span,
        };
        match &statement.node {
            Statement::Name(_)
            | Statement::Format(_)
            | Statement::Events(_)
            | Statement::Lookup { .. }
            | Statement::Search { .. } => {
                if in_block {
                    self.errors.push(
                        Diagnostic::new(Code::DeclarationInBlock, "declarations belong at the top level", statement.span)
                            .with_label("inside a `when` or `for` block")
                            .with_note("name, format, events, lookup and search hold for every record; move it out of the block"),
                    );
                }
                None
            }
            Statement::Label { target, value } => Some(Step::Set {
                target: target.node.clone(),
                value: Expr::Literal(value.node.clone()),
                origin: origin("label"),
            }),
            Statement::TagAdd { target, value } => Some(Step::Set {
                target: target.node.clone(),
                value: self.expr(value)?,
                origin: origin("tag add"),
            }),
            Statement::Message { target, template } => Some(Step::Set {
                target: target.node.clone(),
                value: self.expr(template)?,
                origin: origin("message"),
            }),
            Statement::TagRemove(targets) => {
                let mut ids = Vec::new();
                for target in targets {
                    let path = target.node.clone();
                    ids.push(self.plan.removals.len());
                    self.plan.removals.push(path);
                }
                Some(Step::Remove {
                    ids,
                    origin: origin("tag remove"),
                })
            }
            Statement::Url { target, from, via } => Some(Step::Url {
                target: target.node.clone(),
                from: from.node.clone(),
                field: from.node.to_string(),
                search: self.which_search(statement.span, via.as_ref())?,
                origin: origin("url"),
            }),
            Statement::Drop(condition) => Some(Step::Drop {
                condition: match condition {
                    Some(condition) => Some(self.condition(&condition.node, origin("drop"))?),
                    None => None,
                },
                text: condition
                    .as_ref()
                    .map_or(Span::new(statement.span.end, statement.span.end), |c| {
                        c.span
                    }),
                origin: origin("drop"),
            }),
            Statement::Let { name, value } => self.let_step(name, value, origin("let")),
            Statement::When {
                condition,
                then,
                otherwise,
            } => {
                let text = condition.span;
                let condition = self.condition(&condition.node, origin("when"));
                let then = self.steps(then, true);
                let otherwise = self.steps(otherwise, true);
                Some(Step::When {
                    condition: condition?,
                    text,
                    then,
                    otherwise,
                    origin: origin("when"),
                })
            }
            Statement::Hec { key, value } => self.hec(key, value, origin("hec")),
            Statement::Validate(name) => Some(Step::Validate {
                schema: self.schema(name)?,
                origin: origin("validate"),
            }),
            Statement::Set { target, value } => Some(Step::Set {
                target: target.node.clone(),
                value: self.expr(value)?,
                origin: origin("set"),
            }),
            Statement::Append { target, value } => Some(Step::Append {
                target: target.node.clone(),
                value: self.expr(value)?,
                origin: origin("append"),
            }),
            Statement::Rename { from, to } => Some(Step::Rename {
                from: from.node.clone(),
                to: to.node.clone(),
                origin: origin("rename"),
            }),
            Statement::Nest(target) => Some(Step::Nest {
                target: target.node.clone(),
                origin: origin("nest"),
            }),
            Statement::For { name, over, .. } if self.local(&name.node).is_some() => {
                self.errors.push(
                    Diagnostic::new(
                        Code::LocalName,
                        format!("`{}` is a `let` variable", name.node),
                        name.span,
                    )
                    .with_label("the loop's item would be hidden by the variable")
                    .with_note(format!(
                        "name the item otherwise, or read `{}` by another name",
                        over.node
                    )),
                );
                None
            }
            Statement::For { name, over, body } => Some(Step::For {
                name: name.node.clone(),
                over: over.node.clone(),
                body: self.steps(body, true),
                origin: origin("for"),
            }),
            Statement::FanOut { name, over } => {
                if in_block || self.load.included.compiling_included() {
                    let (label, note) = if in_block {
                        ("inside a `when` or `for` block", "put it at the top level: every statement after it, to the end of the file, runs once per item (a `when` after it can still choose)")
                    } else {
                        ("in an included file", "put the `fan_out` in the transform that includes this file: an included file's statements run inside the includer's")
                    };
                    self.errors.push(
                        Diagnostic::new(
                            Code::FanOutPlace,
                            "`fan_out` belongs at the top level of a transform",
                            statement.span,
                        )
                        .with_label(label)
                        .with_note(note),
                    );
                    return None;
                }
                let slot = self.variable(name)?;
                Some(Step::FanOut {
                    slot,
                    over: over.node.clone(),
                    origin: origin("fan_out"),
                })
            }
            Statement::Fail(message) => Some(Step::Fail {
                message: self.expr(message)?,
                origin: origin("fail"),
            }),
            Statement::Include(file) => self.include(file, origin("include")),
        }
    }

    /// The index of the schema `name` in the plan, loaded on first use.
    fn schema(&mut self, name: &Spanned<String>) -> Option<usize> {
        if let Some(i) = self.plan.schemas.iter().position(|s| s.name == name.node) {
            return Some(i);
        }
        match Schema::load_with(&name.node, self.base_dir, &*self.load.files) {
            Ok(schema) => {
                self.plan.schemas.push(schema);
                Some(self.plan.schemas.len() - 1)
            }
            Err(schema::LoadError::UnknownName) => {
                let names = schema::shipped_names();
                self.unknown(Code::UnknownSchema, "schema", &name.node, name.span, &names);
                if let Some(last) = self.errors.last_mut() {
                    last.notes
                        .push("or name a schema file beside the .xf, ending in `.json`".into());
                }
                None
            }
            Err(schema::LoadError::File(reason)) => {
                self.errors.push(
                    Diagnostic::new(Code::SchemaFile, "schema cannot be loaded", name.span)
                        .with_label(reason),
                );
                None
            }
            Err(schema::LoadError::Invalid(reason)) => {
                self.errors.push(
                    Diagnostic::new(Code::SchemaInvalid, "not a valid JSON Schema", name.span)
                        .with_label(reason),
                );
                None
            }
        }
    }

    fn which_search(&mut self, span: Span, via: Option<&Spanned<String>>) -> Option<usize> {
        let searches = &self.plan.searches;
        let found = match via {
            Some(via) => searches.iter().position(|s| s.kind() == via.node),
            None if searches.len() == 1 => Some(0),
            None => None,
        };
        if found.is_none() {
            let declared: Vec<&str> = searches.iter().map(Search::kind).collect();
            let (message, label, at) = match (via, declared.len()) {
                (Some(via), _) => (
                    format!("no `search {}` is declared", via.node),
                    "via an undeclared search",
                    via.span,
                ),
                (None, 0) => (
                    "`url` needs a `search` to build its link from".to_string(),
                    "no search declared",
                    span,
                ),
                (None, _) => (
                    "several searches are declared: say which with `via`".to_string(),
                    "which search?",
                    span,
                ),
            };
            let mut diagnostic = Diagnostic::new(Code::NoSearch, message, at).with_label(label);
            diagnostic = if declared.is_empty() {
                diagnostic
                    .with_note("declare one, e.g. `search kibana \"https://kibana.example.com\"`")
            } else {
                diagnostic.with_note(format!("declared: {}", declared.join(", ")))
            };
            self.errors.push(diagnostic);
        }
        found
    }

    fn hec(
        &mut self,
        key: &Spanned<HecKey>,
        value: &Spanned<ValueExpr>,
        origin: Origin,
    ) -> Option<Step> {
        if self.plan.format != Format::Splunk {
            self.errors.push(
                Diagnostic::new(
                    Code::HecWithoutSplunk,
                    "`hec` sets the Splunk HEC envelope, but the format is not splunk",
                    key.span,
                )
                .with_label("needs `format splunk`")
                .with_note("add `format splunk`, or set the value on the record with `tag add`"),
            );
            return None;
        }
        let slot = match &key.node {
            HecKey::Envelope(name) => match HecSlot::envelope(name) {
                Some(slot) => slot,
                None => {
                    self.unknown(
                        Code::UnknownHecKey,
                        "HEC key",
                        name,
                        key.span,
                        &[ENVELOPE_KEYS, &["fields.NAME"]].concat(),
                    );
                    return None;
                }
            },
            HecKey::Field(name) => HecSlot::Field(name.clone()),
        };
        if let ValueExpr::Literal(literal) = &value.node {
            if !slot.takes_literal(literal) {
                self.errors.push(
                    Diagnostic::new(Code::HecValue, "Splunk rejects this value here", value.span)
                        .with_label(format!("{} here", crate::value::kind_with_article(literal)))
                        .with_note("an indexed field is a string or an array of strings; envelope keys are strings (time: a number)"),
                );
                return None;
            }
        }
        Some(Step::Hec {
            slot,
            value: self.expr(value)?,
            origin,
        })
    }

    /// Inline templates are named after where they stand: `t.xf:12`.
    fn template_name(&self, span: Span) -> String {
        let line = self.lines.line(span.start);
        format!("{}:{line}", self.file)
    }

    /// Points a template's compile error at its place inside the literal when
    /// the literal's text is the template's text (no escapes in between).
    fn template_error(&mut self, error: template::CompileError, literal: Span, text: &str) {
        let span = match error.range.clone() {
            Some(range) => self.span_in_literal(literal, text, range),
            None => literal,
        };
        self.errors.push(
            Diagnostic::new(Code::Template, "template does not compile", span)
                .with_label(error.message)
                .with_note(
                    "templates are minijinja (Jinja2) syntax: {{ expression }}, {% statement %}",
                ),
        );
    }

    /// Reports each filter, test and function that template `id` (written at
    /// `literal`; `text` is an inline template's own text) or a template it
    /// reaches uses but does not exist. Whether all exist.
    fn template_names_exist(&mut self, id: TemplateId, literal: Span, text: Option<&str>) -> bool {
        let unknown = self.plan.templates.unknown_names(id);
        for name in &unknown {
            let word = name.used.kind.word();
            let code = match name.used.kind {
                NameKind::Filter => Code::UnknownFilter,
                NameKind::Test => Code::UnknownTest,
                NameKind::Function => Code::UnknownTemplateFunction,
                NameKind::Concat => Code::TemplateConcat,
            };
            let known: Vec<&str> = name.known.iter().map(String::as_str).collect();
            let range = name.used.range.clone();
            let diagnostic = match (&name.file, &name.source, text) {
                (Some(file), Some(source), _) => {
                    let inner = unknown_diagnostic(
                        code,
                        word,
                        &name.used.name,
                        Span::new(range.start, range.end),
                        &known,
                        name.also,
                    );
                    let message = if code == Code::TemplateConcat {
                        "template file uses the `~` operator, which xf refuses".to_string()
                    } else {
                        format!("template file uses an unknown {word} `{}`", name.used.name)
                    };
                    Diagnostic::new(code, message, literal)
                        .with_label(format!("{file} uses it"))
                        .with_within(crate::diagnostic::FileProblems {
                            name: file.clone(),
                            text: Arc::from(source.as_str()),
                            diagnostics: Arc::from(vec![inner]),
                        })
                }
                (_, _, Some(text)) => {
                    let span = self.span_in_literal(literal, text, range);
                    unknown_diagnostic(code, word, &name.used.name, span, &known, name.also)
                }
                _ => unknown_diagnostic(code, word, &name.used.name, literal, &known, name.also),
            };
            self.errors.push(diagnostic);
        }
        let mut request_ok = true;
        if let Some(text) = text {
            for (names, range) in self.plan.templates.request_paths(id) {
                let path = Path(names.into_iter().map(crate::value::Segment::Key).collect());
                let span = self.span_in_literal(literal, text, range);
                request_ok &= self.request_path_exists(&path, span);
            }
        }
        unknown.is_empty() && request_ok
    }

    /// Where `range` of an inline template's text is in the `.xf`: inside the
    /// literal when the literal's text is the template's (no escapes in between).
    fn span_in_literal(&self, literal: Span, text: &str, range: std::ops::Range<usize>) -> Span {
        let raw = &self.source[literal.start..literal.end];
        match raw.find(text) {
            Some(offset) if !text.is_empty() => {
                let start = literal.start + offset + range.start.min(text.len());
                Span::new(
                    start,
                    (literal.start + offset + range.end.min(text.len()))
                        .max(start + 1)
                        .min(literal.end),
                )
            }
            _ => literal,
        }
    }

    fn condition(&mut self, condition: &Condition, origin: Origin) -> Option<Cond> {
        let operand = |compiler: &mut Self, operand: &Spanned<ValueExpr>| {
            Some(Operand {
                expr: compiler.expr(operand)?,
                origin,
            })
        };
        Some(match condition {
            Condition::Or(parts) => Cond::Or(self.conditions(parts, origin)?),
            Condition::And(parts) => Cond::And(self.conditions(parts, origin)?),
            Condition::Not(inner) => Cond::Not(Box::new(self.condition(inner, origin)?)),
            Condition::Exists(path) => Cond::Exists(Operand {
                expr: self.read_path(&path.node),
                origin,
            }),
            Condition::In {
                subject,
                list,
                negated,
            } => Cond::In(operand(self, subject)?, list.clone(), *negated),
            Condition::Compare(left, op, right) => {
                let left = operand(self, left);
                Cond::Compare(left?, *op, operand(self, right)?)
            }
            Condition::IsNull { subject, negated } => {
                Cond::IsNull(operand(self, subject)?, *negated)
            }
            Condition::Text(left, op, right) => {
                let left = operand(self, left);
                Cond::Text(left?, *op, operand(self, right)?)
            }
            Condition::Matches(subject, pattern) => {
                let subject = operand(self, subject);
                let regex = self.regex(&pattern.node, pattern.span)?;
                Cond::Matches(subject?, regex)
            }
            Condition::Quantified {
                all,
                name,
                over,
                condition,
            } => {
                let over = operand(self, over);
                if self.item_named_request(name) {
                    return None;
                }
                let slot = self.declare(name)?;
                self.visible.push(slot);
                let inner = self.condition(condition, origin);
                // The item is seen inside its test only.
                self.visible.pop();
                Cond::Quantified {
                    all: *all,
                    slot,
                    over: over?,
                    condition: Box::new(inner?),
                }
            }
        })
    }

    fn conditions(&mut self, parts: &[Condition], origin: Origin) -> Option<Vec<Cond>> {
        // Compile all parts so that every error is reported.
        let compiled: Vec<Option<Cond>> = parts.iter().map(|c| self.condition(c, origin)).collect();
        compiled.into_iter().collect()
    }

    /// `let NAME = EXPR`: the value is computed first, so that it may read the
    /// name's earlier value (`let n = number(n)`); a name declared before is
    /// the same variable, given a new value.
    fn let_step(
        &mut self,
        name: &Spanned<String>,
        value: &Spanned<ValueExpr>,
        origin: Origin,
    ) -> Option<Step> {
        let value = self.expr(value);
        let slot = self.variable(name)?;
        Some(Step::Let {
            slot,
            value: value?,
            origin,
        })
    }

    /// The slot of the variable that a `let` or `fan_out` gives a value: the
    /// visible one of that name, or a new one, seen from here on.
    fn variable(&mut self, name: &Spanned<String>) -> Option<usize> {
        if let Some(slot) = self.local(&name.node) {
            return Some(slot);
        }
        let slot = self.declare(name)?;
        self.visible.push(slot);
        Some(slot)
    }

    /// The slot of the visible local variable `name`, the latest declared.
    fn local(&self, name: &str) -> Option<usize> {
        self.visible
            .iter()
            .rev()
            .find(|slot| self.plan.locals[**slot] == name)
            .copied()
    }

    /// A new local variable's slot. A lookup's name cannot be one: both are
    /// read by their names, and neither should hide the other unseen.
    fn declare(&mut self, name: &Spanned<String>) -> Option<usize> {
        if self
            .plan
            .templates
            .lookups()
            .iter()
            .any(|l| l.name == name.node)
        {
            self.errors.push(
                Diagnostic::new(
                    Code::LocalName,
                    format!("`{}` is a lookup's name", name.node),
                    name.span,
                )
                .with_label("a variable cannot have a lookup's name")
                .with_note("a lookup's name reads its matched row; give the variable another name"),
            );
            return None;
        }
        self.plan.locals.push(name.node.clone());
        Some(self.plan.locals.len() - 1)
    }
}

/// `unknown {what} `{name}``, with the names that exist and the closest of them.
fn unknown_diagnostic(
    code: Code,
    what: &str,
    name: &str,
    span: Span,
    known: &[&str],
    also: usize,
) -> Diagnostic {
    if code == Code::TemplateConcat {
        return concat_diagnostic(span, also);
    }
    let mut diagnostic = Diagnostic::new(code, format!("unknown {what} `{name}`"), span)
        .with_label(format!(
            "not {} {what}",
            if what.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            }
        ))
        .with_note(format!("expected one of: {}", known.join(", ")));
    if let Some(best) = closest(name, known) {
        diagnostic = diagnostic.with_note(format!("did you mean `{best}`?"));
    }
    diagnostic
}

/// A template's `~`, refused: minijinja writes a boolean or null there in
/// its own spelling (`True`, `None`) and offers no hook to change that, so
/// it would be the one place a template breaks xf's null model.
fn concat_diagnostic(span: Span, also: usize) -> Diagnostic {
    let mut diagnostic = Diagnostic::new(Code::TemplateConcat, "templates may not use `~`", span)
        .with_label("minijinja's `~` writes `True` and `None` for booleans and null")
        .with_note("everywhere else a template writes `true`/`false`, and null as empty text")
        .with_note("write `{{ a }}{{ b }}`, or `[a, b] | join(\"\")` inside an expression");
    if also > 0 {
        let more = if also == 1 {
            "1 more `~`".to_string()
        } else {
            format!("{also} more `~`s")
        };
        diagnostic = diagnostic.with_note(format!("this template holds {more} after this one"));
    }
    diagnostic
}

/// The known name closest to `name`: two edits away at most, or else one
/// that begins the other (`lowercase` → `lower`, `len` → `length`).
pub(super) fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    let by_edits = known
        .iter()
        .min_by_key(|k| strsim::damerau_levenshtein(name, k))
        .filter(|k| strsim::damerau_levenshtein(name, k) <= 2);
    let by_start = || {
        known
            .iter()
            .filter(|k| k.len().min(name.len()) >= 3)
            .filter(|k| name.starts_with(**k) || k.starts_with(name))
            .min_by_key(|k| k.len().abs_diff(name.len()))
    };
    by_edits.or_else(by_start).copied()
}
