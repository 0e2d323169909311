//! Templates, compiled once when a transform loads: the minijinja
//! environment, every template a transform can reach (included files too,
//! named by quoted strings only), and the lookups they read. Rendering per
//! record is the apply stage's half ([`crate::apply`]'s `template` module); how
//! values look in a template, and xf's filters, are the leaf [`crate::value::template`].
//! Every template's sums and products are guarded as it is added (inline) or
//! read (a file): see `template_names::guard_sequences`.

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::lookup::Lookup;
use super::template_names::{
    guard_sequences, names_read, names_used, request_paths, Guarded, ALWAYS_CALLABLE,
};
pub use super::template_names::{NameKind, NameUse};
use crate::files::{self, Loader};
use crate::limits::Limits;

/// Name prefix of link templates, whose output is percent-encoded.
pub(crate) const LINK_PREFIX: &str = "link:";

/// All templates of one transform, with the lookups they can read.
pub struct Templates {
    pub(crate) env: Environment<'static>,
    /// The names of template functions (`range`, `dict`, …): a record field
    /// of the same name never hides one.
    pub(crate) functions: Arc<Vec<String>>,
    /// The most bytes one rendering may write ([`Limits::template_output`]).
    pub(crate) output_limit: usize,
    /// Set once the transform has loaded: from then on the loader reads no file.
    frozen: Arc<AtomicBool>,
    pub(crate) names: Vec<String>,
    /// Whether each template is inline in the `.xf` (else a file beside it).
    pub(crate) inline: Vec<bool>,
    /// For a template that is one bare name (`{{ index }}`), that name: when it
    /// names a string, the string is the output and minijinja is not entered.
    pub(crate) sole_name: Vec<Option<String>>,
    /// For such a template, whether it renders to nothing when the name is
    /// nowhere (no field, column, variable or global of that name): asked of
    /// minijinja once, here, so that a missing name need not enter it per record.
    pub(crate) missing_renders_empty: Vec<bool>,
    pub(crate) lookups: Arc<[Lookup]>,
    /// The templates whose sums and products are guarded, by name: the
    /// author's text and where the guard added to it (see [`Guarded`]), so
    /// that checks and messages speak of the text as written.
    guarded: GuardedTexts,
}

/// Guarded templates by name, shared with the loader that reads template files.
type GuardedTexts = Arc<Mutex<HashMap<String, (String, Guarded)>>>;

/// A compiled template, by its index in [`Templates`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateId(pub(crate) usize);

/// A filter, test or function a template uses that does not exist.
pub struct UnknownName {
    pub used: NameUse,
    /// The template file it is in; none for an inline template itself.
    pub file: Option<String>,
    /// That file's text, to show the name in place.
    pub source: Option<String>,
    /// The names of its kind that do exist.
    pub known: Vec<String>,
    /// For a `~`: how many more the same file holds, reported with the
    /// first (one refusal a template says enough).
    pub also: usize,
}

/// minijinja's built-in filters and tests (and xf's own `default`, `string`),
/// from which a misspelt name's "did you mean" is picked. Only those the
/// environment really has are offered (see `Templates::known`), so a newer
/// minijinja can make this list short of some, never wrong.
pub const MINIJINJA_FILTERS: &[&str] = &[
    "abs",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "chain",
    "count",
    "d",
    "default",
    "dictsort",
    "e",
    "escape",
    "first",
    "float",
    "format",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "pprint",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
    "zip",
];
/// minijinja's built-in tests, as [`MINIJINJA_FILTERS`] its filters.
pub const MINIJINJA_TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "equalto",
    "escaped",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "greaterthan",
    "gt",
    "in",
    "int",
    "integer",
    "iterable",
    "le",
    "lessthan",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Why a template failed to compile, with where in its text when known.
pub struct CompileError {
    pub message: String,
    /// Byte range inside the template text.
    pub range: Option<std::ops::Range<usize>>,
    /// The template file (or included file) the error is in, if not inline.
    pub file: Option<String>,
    pub line: Option<usize>,
    /// The template (or one it includes) does not exist.
    pub not_found: bool,
}

impl Templates {
    /// An environment that reads no template files until [`Templates::set_files`].
    pub fn new(limits: &Limits) -> Self {
        let mut env = Environment::new();
        // Fuel bounds every rendering's work and allocations (loops, `range`,
        // `batch`, `indent`, string repetition), so that no record can stall
        // or exhaust the process through a template.
        env.set_fuel(Some(limits.template_fuel));
        // A missing name, a missing nested field (`{{ a.b }}` without `a`) and a
        // field of a null all render as empty text: payloads leave fields out
        // both ways, and a template must not fail a record for either.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_auto_escape_callback(|name| {
            if name.starts_with(LINK_PREFIX) {
                AutoEscape::Custom("url".into())
            } else {
                AutoEscape::None
            }
        });
        // How values print, xf's filters and `now()`: rules that renderings run,
        // but minijinja takes them with the environment.
        crate::value::template::install(&mut env);
        let functions = env.globals().map(|(name, _)| name.to_string()).collect();
        Templates {
            env,
            functions: Arc::new(functions),
            output_limit: limits.template_output,
            frozen: Arc::new(AtomicBool::new(false)),
            names: Vec::new(),
            inline: Vec::new(),
            sole_name: Vec::new(),
            missing_renders_empty: Vec::new(),
            lookups: Arc::from(Vec::new()),
            guarded: Arc::default(),
        }
    }

    /// The names an inline template reads from its context (the record's
    /// top-level fields, variables, lookups) that it does not bind itself;
    /// functions are left out. `None` when it does not compile.
    pub fn context_names(&self, source: &str) -> Option<std::collections::BTreeSet<String>> {
        let template = self.env.template_from_str(source).ok()?;
        let mut names: std::collections::BTreeSet<String> =
            template.undeclared_variables(false).into_iter().collect();
        names.retain(|name| !self.functions.contains(name));
        Some(names)
    }

    /// Reads template files beside `dir` through `files`, the load's loader
    /// (confined, regular files only, bounded: see [`files`]).
    pub fn set_files(&mut self, dir: &FsPath, files: Arc<dyn Loader>) {
        install_loader(
            &mut self.env,
            &self.frozen,
            &self.guarded,
            dir.to_path_buf(),
            files,
        );
    }

    /// Compiles an inline template under a unique `name`.
    pub fn add(&mut self, name: String, source: String) -> Result<TemplateId, CompileError> {
        // `{{ range }}` names a function, never a field: minijinja says so.
        let sole_name = sole_name(&source).filter(|name| !self.functions.contains(name));
        self.resolve_includes(&source, None)?;
        let guard = guard_sequences(&source, self.env.syntax().clone());
        let text = guard
            .as_ref()
            .map_or_else(|| source.clone(), |guard| guard.text.clone());
        if let Err(error) = self.env.add_template_owned(name.clone(), text) {
            let mut error = compile_error(&error, false);
            error.range = error.range.map(|range| match &guard {
                Some(guard) => guard.original(range.start)..guard.original(range.end),
                None => range,
            });
            return Err(error);
        }
        if let Some(guard) = guard {
            remember(&self.guarded, name.clone(), source, guard);
        }
        let missing_renders_empty = sole_name.is_some()
            && self
                .env
                .get_template(&name)
                .and_then(|template| template.render(minijinja::context! {}))
                .is_ok_and(|text| text.is_empty());
        self.names.push(name);
        self.inline.push(true);
        self.sole_name.push(sole_name);
        self.missing_renders_empty.push(missing_renders_empty);
        Ok(TemplateId(self.names.len() - 1))
    }

    /// Compiles a template file found beside the transform.
    pub fn add_file(&mut self, file: &str) -> Result<TemplateId, CompileError> {
        let template = self
            .env
            .get_template(file)
            .map_err(|error| self.compile_error_in_file(&error))?;
        let source = self.author_source(&template);
        self.resolve_includes(&source, Some(file))?;
        self.names.push(file.to_string());
        self.inline.push(false);
        self.sole_name.push(None);
        self.missing_renders_empty.push(false);
        Ok(TemplateId(self.names.len() - 1))
    }

    /// Loads, now, every template that `source` (and what it names, in
    /// turn) includes, imports or extends. Each must be named by a quoted
    /// string: a name computed when rendering (`{% include vendor %}`) could
    /// come from a record, and record data never chooses a file.
    fn resolve_includes(&mut self, source: &str, file: Option<&str>) -> Result<(), CompileError> {
        let mut pending = vec![(source.to_string(), file.map(str::to_string))];
        let mut seen = std::collections::HashSet::new();
        while let Some((source, file)) = pending.pop() {
            for reference in template_references(&source) {
                let names = reference.names.map_err(|range| CompileError {
                    message: format!(
                        "`{}` must name its template with a quoted string, fixed in the \
                         transform: a name computed from data could be a record's choice",
                        reference.tag
                    ),
                    line: Some(source[..range.start].matches('\n').count() + 1),
                    range: file.is_none().then_some(range),
                    file: file.clone(),
                    not_found: false,
                })?;
                for name in names {
                    if !seen.insert(name.clone()) {
                        continue;
                    }
                    match self.env.get_template(&name) {
                        Ok(template) => pending.push((self.author_source(&template), Some(name))),
                        Err(error)
                            if reference.ignore_missing
                                && error.kind() == minijinja::ErrorKind::TemplateNotFound => {}
                        Err(error) => return Err(self.compile_error_in_file(&error)),
                    }
                }
            }
        }
        Ok(())
    }

    /// The filters, tests and functions that template `id`, and every
    /// template it reaches, uses but the environment does not have. A name
    /// any of those templates binds (a macro, a `set`) counts as a function.
    /// Each `~` they hold is here too ([`NameKind::Concat`]): xf refuses it.
    pub fn unknown_names(&self, id: TemplateId) -> Vec<UnknownName> {
        let Ok(root) = self.env.get_template(&self.names[id.0]) else {
            return Vec::new();
        };
        let root_file = (!self.inline[id.0]).then(|| self.names[id.0].clone());
        let root_source = self.author_source(&root);
        let mut sources = vec![(root_file, root_source.clone())];
        for name in self.reached(&root_source) {
            if let Ok(template) = self.env.get_template(&name) {
                sources.push((Some(name), self.author_source(&template)));
            }
        }
        let mut uses = Vec::new();
        let mut bound: std::collections::HashSet<String> = ALWAYS_CALLABLE
            .iter()
            .map(|name| name.to_string())
            .collect();
        for (file, source) in &sources {
            if let Some((used, names)) = names_used(source, self.env.syntax().clone()) {
                uses.extend(used.into_iter().map(|used| (file, source, used)));
                bound.extend(names);
            }
        }
        // A file's `~`s in the order written: the first stands for them all.
        uses.sort_by_key(|(file, _, used)| {
            (used.kind != NameKind::Concat, *file, used.range.start)
        });
        let mut unknown: Vec<UnknownName> = Vec::new();
        let found = uses
            .into_iter()
            .filter(|(_, _, used)| match used.kind {
                NameKind::Concat => true,
                NameKind::Function => {
                    !bound.contains(&used.name) && !self.functions.contains(&used.name)
                }
                kind => !self.has(kind, &used.name),
            })
            .map(|(file, source, used)| UnknownName {
                known: self.known(used.kind),
                file: file.clone(),
                source: file.as_ref().map(|_| source.clone()),
                used,
                also: 0,
            });
        for name in found {
            match unknown.last_mut() {
                Some(first)
                    if name.used.kind == NameKind::Concat
                        && first.used.kind == NameKind::Concat
                        && first.file == name.file =>
                {
                    first.also += 1;
                }
                _ => unknown.push(name),
            }
        }
        unknown
    }

    /// Whether the environment has a filter or test of this name, as
    /// minijinja's own `is filter` / `is test` tell.
    fn has(&self, kind: NameKind, name: &str) -> bool {
        let probe = match kind {
            NameKind::Filter => "name is filter",
            NameKind::Test => "name is test",
            NameKind::Function => return self.functions.iter().any(|f| f == name),
            NameKind::Concat => return false,
        };
        self.env
            .compile_expression(probe)
            .and_then(|expression| expression.eval(minijinja::context! { name => name }))
            .is_ok_and(|found| found.is_true())
    }

    /// The names of one kind the environment has, for a "did you mean".
    fn known(&self, kind: NameKind) -> Vec<String> {
        let candidates = match kind {
            NameKind::Filter => MINIJINJA_FILTERS,
            NameKind::Test => MINIJINJA_TESTS,
            NameKind::Function => return self.functions.to_vec(),
            NameKind::Concat => return Vec::new(),
        };
        candidates
            .iter()
            .filter(|name| self.has(kind, name))
            .map(|name| name.to_string())
            .collect()
    }

    /// The names of every template `source` reaches by include, import or
    /// extends (all loaded by now: see `resolve_includes`).
    fn reached(&self, source: &str) -> Vec<String> {
        let mut pending = vec![source.to_string()];
        let mut seen = Vec::new();
        while let Some(source) = pending.pop() {
            for name in template_references(&source)
                .into_iter()
                .filter_map(|reference| reference.names.ok())
                .flatten()
            {
                if seen.contains(&name) {
                    continue;
                }
                if let Ok(template) = self.env.get_template(&name) {
                    pending.push(self.author_source(&template));
                }
                seen.push(name);
            }
        }
        seen
    }

    /// A template's text as its author wrote it (without the guard's marks).
    fn author_source(&self, template: &minijinja::Template<'_, '_>) -> String {
        match lock(&self.guarded).get(template.name()) {
            Some((source, _)) => source.clone(),
            None => template.source().to_string(),
        }
    }

    /// The author's text at `range` of template `name`'s compiled text.
    pub(crate) fn author_text(&self, name: &str, range: std::ops::Range<usize>) -> Option<String> {
        match lock(&self.guarded).get(name) {
            Some((source, guard)) => source
                .get(guard.original(range.start)..guard.original(range.end))
                .map(str::to_string),
            None => self
                .env
                .get_template(name)
                .ok()?
                .source()
                .get(range)
                .map(str::to_string),
        }
    }

    /// A template file's compile error, its place in the author's text.
    fn compile_error_in_file(&self, error: &minijinja::Error) -> CompileError {
        let mut compiled = compile_error(error, true);
        if let (Some(name), Some(range)) = (error.name(), compiled.range.clone()) {
            if let Some((_, guard)) = lock(&self.guarded).get(name) {
                compiled.range = Some(guard.original(range.start)..guard.original(range.end));
            }
        }
        compiled
    }

    /// Ends loading: from now on no template reads a file.
    pub fn freeze(&self) {
        self.frozen.store(true, Ordering::Relaxed);
    }

    pub fn set_lookups(&mut self, lookups: Vec<Lookup>) {
        self.lookups = Arc::from(lookups);
    }

    pub fn lookups(&self) -> &[Lookup] {
        &self.lookups
    }

    /// The paths inside `request` that template `id` (its own text, as its
    /// author wrote it) reads, and where in that text.
    pub(crate) fn request_paths(
        &self,
        id: TemplateId,
    ) -> Vec<(Vec<String>, std::ops::Range<usize>)> {
        let Ok(template) = self.env.get_template(&self.names[id.0]) else {
            return Vec::new();
        };
        request_paths(&self.author_source(&template), self.env.syntax().clone())
    }

    /// The bare names template `id` reads (see [`names_read`]); `None` when
    /// it can see more than those.
    pub(crate) fn names_read(&self, id: TemplateId) -> Option<std::collections::HashSet<String>> {
        let template = self.env.get_template(&self.names[id.0]).ok()?;
        names_read(template.source(), self.env.syntax().clone())
    }
}

/// Makes `env` read template files beside `dir` through `files` until
/// `frozen` is set: every template a transform can reach was loaded with it
/// (see `resolve_includes`); after that, no name reaches a file.
fn install_loader(
    env: &mut Environment<'static>,
    frozen: &Arc<AtomicBool>,
    guarded: &GuardedTexts,
    dir: PathBuf,
    files: Arc<dyn Loader>,
) {
    let frozen = Arc::clone(frozen);
    let syntax = env.syntax().clone();
    let guarded = Arc::clone(guarded);
    env.set_loader(move |name| {
        if frozen.load(Ordering::Relaxed) {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::TemplateNotFound,
                format!(
                    "`{name}` is no template of this transform: a template \
                     includes only files named, quoted, in its own text"
                ),
            ));
        }
        let Some(source) = files::template_source(&*files, &dir, name)? else {
            return Ok(None);
        };
        // A file's sums and products are guarded as an inline template's are.
        Ok(Some(match guard_sequences(&source, syntax.clone()) {
            Some(mut guard) => {
                let text = std::mem::take(&mut guard.text);
                remember(&guarded, name.to_string(), source, guard);
                text
            }
            None => source,
        }))
    });
}

/// Keeps a guarded template's own text and the guard's marks; the guarded
/// text itself is the environment's.
fn remember(guarded: &GuardedTexts, name: String, source: String, mut guard: Guarded) {
    guard.text = String::new();
    lock(guarded).insert(name, (source, guard));
}

fn lock(guarded: &GuardedTexts) -> std::sync::MutexGuard<'_, HashMap<String, (String, Guarded)>> {
    // Nothing panics while holding it; were it poisoned, the map is still whole.
    guarded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A tag that names another template: `{% include "x.j2" %}`, `import`,
/// `from … import`, `extends`.
struct Reference {
    tag: &'static str,
    /// The quoted names, or where in the source a name is not quoted.
    names: Result<Vec<String>, std::ops::Range<usize>>,
    ignore_missing: bool,
}

/// Every tag in `source` that names another template. Comments and raw
/// blocks are skipped. A name is a string literal or a list of them, and the
/// rest of the tag may hold only the keywords of its form (`ignore missing`,
/// `with context`, `as x`, `import a, b as c`): anything else there (`~ name`,
/// `if a else name`, `(name)`) could compute the name, and is refused.
fn template_references(source: &str) -> Vec<Reference> {
    use std::sync::OnceLock;
    static TAG: OnceLock<regex::Regex> = OnceLock::new();
    static SKIP: OnceLock<regex::Regex> = OnceLock::new();
    static REST: OnceLock<[regex::Regex; 4]> = OnceLock::new();
    let tag = TAG.get_or_init(|| {
        regex::Regex::new(r"\{%[-+~]?\s*(include|import|extends|from)\b\s*")
            .expect("a valid pattern")
    });
    let skip = SKIP.get_or_init(|| {
        regex::Regex::new(
            r"(?s)\{#.*?#\}|\{%[-+~]?\s*raw\s*[-+~]?%\}.*?\{%[-+~]?\s*endraw\s*[-+~]?%\}",
        )
        .expect("a valid pattern")
    });
    let [include_rest, import_rest, from_rest, extends_rest] = REST.get_or_init(|| {
        let context = r"(?:\s+with(?:out)?\s+context)?";
        [
            format!(r"^(?:\s+ignore\s+missing)?{context}\s*$"),
            format!(r"^\s+as\s+\w+{context}\s*$"),
            format!(
                r"^\s+import\s+\w+(?:\s+as\s+\w+)?(?:\s*,\s*\w+(?:\s+as\s+\w+)?)*\s*,?{context}\s*$"
            ),
            r"^\s*$".to_string(),
        ]
        .map(|pattern| regex::Regex::new(&pattern).expect("a valid pattern"))
    });
    // Blank what is skipped, keeping every byte offset.
    let mut text = source.to_string();
    for found in skip.find_iter(source) {
        text.replace_range(found.range(), &" ".repeat(found.len()));
    }
    tag.captures_iter(&text)
        .map(|captures| {
            let keyword = captures.get(1).map_or("", |m| m.as_str());
            let (tag, rest_form) = match keyword {
                "include" => ("include", include_rest),
                "import" => ("import", import_rest),
                "extends" => ("extends", extends_rest),
                _ => ("from", from_rest),
            };
            let start = captures.get(0).map_or(0, |m| m.end());
            let refused = Err(start..start + 1);
            let Some((names, end)) = quoted_names(&text[start..]) else {
                return Reference {
                    tag,
                    names: refused,
                    ignore_missing: false,
                };
            };
            let end = start + end;
            // The rest of the tag, without its closing `-%}` or `%}`.
            let rest = text[end..].find("%}").map(|close| {
                let rest = &text[end..end + close];
                rest.strip_suffix(['-', '+', '~']).unwrap_or(rest)
            });
            let Some(rest) = rest.filter(|rest| rest_form.is_match(rest)) else {
                return Reference {
                    tag,
                    names: refused,
                    ignore_missing: false,
                };
            };
            // A list names templates to try in turn: any of them may be missing.
            let list = text[start..].starts_with('[');
            Reference {
                tag,
                names: Ok(names),
                ignore_missing: list || rest.trim_start().starts_with("ignore"),
            }
        })
        .collect()
}

/// A string literal or a list of them at the start of `text`: the names and
/// the bytes they took.
fn quoted_names(text: &str) -> Option<(Vec<String>, usize)> {
    fn literal(text: &str) -> Option<(String, usize)> {
        let quote = text.chars().next().filter(|c| matches!(c, '"' | '\''))?;
        let mut name = String::new();
        let mut chars = text.char_indices().skip(1);
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => name.push(chars.next()?.1),
                c if c == quote => return Some((name, at + 1)),
                c => name.push(c),
            }
        }
        None
    }
    if let Some(found) = literal(text) {
        return Some((vec![found.0], found.1));
    }
    let mut at = text.strip_prefix('[').map(|_| 1)?;
    let mut names = Vec::new();
    loop {
        at += text[at..].len() - text[at..].trim_start().len();
        if text[at..].starts_with(']') {
            return Some((names, at + 1));
        }
        let (name, used) = literal(&text[at..])?;
        names.push(name);
        at += used;
        at += text[at..].len() - text[at..].trim_start().len();
        if let Some(rest) = text[at..].strip_prefix(',') {
            at = text.len() - rest.len();
        }
    }
}

/// The name in a template that is exactly `{{ name }}` (spaces allowed), unless
/// the name is one minijinja reads as a literal.
fn sole_name(source: &str) -> Option<String> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?.trim();
    let mut chars = inner.chars();
    let first = chars.next()?;
    let is_name = (first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    let literal = matches!(inner, "true" | "false" | "none" | "True" | "False" | "None");
    (is_name && !literal).then(|| inner.to_string())
}

fn compile_error(error: &minijinja::Error, from_file: bool) -> CompileError {
    let mut message = error
        .detail()
        .map_or_else(|| error.kind().to_string(), str::to_string);
    if error.kind() == minijinja::ErrorKind::TemplateNotFound {
        message = error.to_string();
    }
    CompileError {
        message,
        range: error.range(),
        file: if from_file {
            error.name().map(str::to_string)
        } else {
            None
        },
        line: error.line(),
        not_found: error.kind() == minijinja::ErrorKind::TemplateNotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a template defines or minijinja provides is callable; only
    /// names that exist nowhere are reported, each at its place.
    #[test]
    fn only_names_that_exist_nowhere_are_unknown() {
        let mut templates = Templates::new(&Limits::DEFAULT);
        let known = [
            "{% macro m(a) %}{{ caller() }}{{ a | upper }}{% endmacro %}{% call m(1) %}x{% endcall %}",
            "{% set f = namespace() %}{% for g in range(3) %}{{ g is odd }}{% endfor %}",
            "{% set h = dict %}{{ h(a=1) }}{{ [1] | map('string') | select('defined') | join }}",
            "{{ x | d('y') | default('z', true) }}{% filter upper %}t{% endfilter %}{{ x.items() }}",
        ];
        for (i, source) in known.iter().enumerate() {
            let id = templates
                .add(format!("k{i}"), source.to_string())
                .ok()
                .unwrap();
            let unknown: Vec<String> = templates
                .unknown_names(id)
                .iter()
                .map(|name| name.used.name.clone())
                .collect();
            assert!(unknown.is_empty(), "{source}: {unknown:?}");
        }
        let source =
            "{{ a | lowercase }}{% if a is emtpy %}{{ rnage(1) }}{% endif %}{{ b | map('uper') }}";
        let id = templates.add("u".into(), source.into()).ok().unwrap();
        let unknown: Vec<(NameKind, &str)> = templates
            .unknown_names(id)
            .iter()
            .map(|name| (name.used.kind, &source[name.used.range.clone()]))
            .collect();
        assert_eq!(
            unknown,
            [
                (NameKind::Filter, "lowercase"),
                (NameKind::Test, "emtpy"),
                (NameKind::Function, "rnage"),
                (NameKind::Filter, "uper"),
            ]
        );
    }

    /// Only tags whose names are fixed literals are taken; every form that
    /// could compute a name is refused, whatever spacing it uses.
    #[test]
    fn template_names_must_be_fixed_literals() {
        let names = |source: &str| -> Vec<Result<Vec<String>, ()>> {
            template_references(source)
                .into_iter()
                .map(|reference| reference.names.map_err(|_| ()))
                .collect()
        };
        let fixed = |names: &[&str]| Ok(names.iter().map(|n| n.to_string()).collect());
        for (source, want) in [
            (r#"{% include "a.j2" %}"#, fixed(&["a.j2"])),
            (
                r#"{%- include 'a.j2' ignore missing with context -%}"#,
                fixed(&["a.j2"]),
            ),
            (
                r#"{% include ["a.j2", 'b.j2'] %}"#,
                fixed(&["a.j2", "b.j2"]),
            ),
            (r#"{% import "m.j2" as m %}"#, fixed(&["m.j2"])),
            (
                r#"{% from "m.j2" import a, b as c without context %}"#,
                fixed(&["m.j2"]),
            ),
            (r#"{% extends "base.j2" %}"#, fixed(&["base.j2"])),
            ("{% include vendor %}", Err(())),
            ("{% include(vendor) %}", Err(())),
            ("{%include vendor%}", Err(())),
            (r#"{% include "a" ~ vendor %}"#, Err(())),
            (r#"{% include 'h.j2' if a else vendor %}"#, Err(())),
            (r#"{% include ["a.j2", vendor] %}"#, Err(())),
            (r#"{% import "m.j2" as m, vendor %}"#, Err(())),
            (r#"{% extends "a" if x else "b" %}"#, Err(())),
            (r#"{% include "a.j2" "#, Err(())),
        ] {
            assert_eq!(names(source), vec![want], "{source}");
        }
        // Not tags that name templates.
        for source in [
            "{% set included = 1 %}",
            "{% includes %}",
            "{# {% include x %} #}",
        ] {
            assert!(names(source).is_empty(), "{source}");
        }
    }
}
