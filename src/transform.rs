//! [`Transform`]: a loaded `.xf` file, ready to apply to records.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::apply::{self, Outcome, RecordError};
use crate::compile::{self, files, Disk, Format, Load, Loader, Plan};
use crate::diagnostic::{self, Diagnostic};
use crate::limits::Limits;
use crate::syntax;

/// Why a transform did not load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The `.xf` file cannot be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// An Armor JSON config that is not a valid Detections Transform Config.
    #[error("{file} is not a valid Armor transform config ({} problem(s))", problems.len())]
    ArmorConfig {
        file: String,
        problems: Vec<crate::import::Problem>,
    },
    /// The file has problems; [`LoadError::render`] shows them rustc-style.
    #[error("{} has {} problem(s)", file, diagnostics.len())]
    Invalid {
        file: String,
        text: String,
        diagnostics: Vec<Diagnostic>,
    },
}

impl LoadError {
    /// The full report: every diagnostic with its source line and caret.
    pub fn render(&self) -> String {
        match self {
            LoadError::Read { .. } => format!("error: {self}\n"),
            LoadError::ArmorConfig { file, problems } => problems
                .iter()
                .map(|problem| format!("error: {file}: {problem}\n"))
                .collect(),
            LoadError::Invalid {
                file,
                text,
                diagnostics,
            } => diagnostic::render(file, text, diagnostics),
        }
    }
}

/// A compiled transform. Loading does all the work that does not depend on a
/// record (parsing, templates, lookup tables); [`Transform::apply`] then runs
/// on each record and never fails for reasons of the transform itself.
pub struct Transform {
    plan: Plan,
    /// What its loader read: see [`Transform::files`].
    files: Vec<PathBuf>,
    /// The file as messages name it, and its text, for rendering warnings.
    source: (String, Arc<str>),
    /// Whether record errors name the statement that failed (see
    /// [`Transform::without_statement_names`]).
    statement_names: bool,
    /// The top-level fields a run can see ([`compile::fields_seen`]): the
    /// others may be read and written as the bytes they came in.
    fields_seen: Option<crate::value::untouched::FieldSet>,
}

/// How a transform is loaded: which folders its files may come from, and the
/// per-record [`Limits`] it runs with.
///
/// A transform's files (includes, lookups, template files, schema files) are
/// read only from its own folder and below (resolved with symlinks, so `../x`,
/// absolute paths elsewhere and symlinks out of the folder are load errors),
/// and from the folders in `allowed_roots`. Only regular files are read, each
/// bounded: 16 MiB for `.xf`, template and schema files, 256 MiB for lookup
/// tables ([`crate::files`]).
#[derive(Clone, Default)]
pub struct LoadOptions {
    /// More folders (and everything below them) that files may be read from.
    pub allowed_roots: Vec<PathBuf>,
    /// What one record's work may take (defaults: [`Limits::DEFAULT`]).
    pub limits: Limits,
    /// Where the transform's files come from instead of the disk (a
    /// [`crate::files::Memory`], say): then `allowed_roots` plays no part.
    pub files: Option<Arc<dyn Loader>>,
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("allowed_roots", &self.allowed_roots)
            .field("limits", &self.limits)
            .field("files", &self.files.as_ref().map(|_| "a loader"))
            .finish()
    }
}

impl LoadOptions {
    /// The loader for a transform whose own folder is `dir`.
    fn loader(&self, dir: &Path) -> Arc<dyn Loader> {
        if let Some(files) = &self.files {
            return Arc::clone(files);
        }
        Arc::new(Disk::new(
            std::iter::once(dir.to_path_buf()).chain(self.allowed_roots.iter().cloned()),
        ))
    }
}

impl Transform {
    /// Loads a `.xf` file; lookup tables and template files are found beside it.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Transform, LoadError> {
        Transform::from_path_with(path, &LoadOptions::default())
    }

    /// [`Transform::from_path`] with options (more folders files may come from, other limits).
    pub fn from_path_with(
        path: impl AsRef<Path>,
        options: &LoadOptions,
    ) -> Result<Transform, LoadError> {
        let path = path.as_ref();
        let read_error = |error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        };
        // The file named by the caller may be anything readable (a pipe, too), but bounded.
        let file = std::fs::File::open(path).map_err(read_error)?;
        let text = files::read_bounded(file, files::TEXT_LIMIT).map_err(|error| {
            read_error(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                error.to_string(),
            ))
        })?;
        Transform::from_text_at(path, &text, options)
    }

    /// Loads `text` as [`Transform::from_path_with`] loads the file at `path`
    /// (its files found beside it, under the same confinement, and an include
    /// of `path` itself a cycle), without reading `path`: an editor's unsaved
    /// text (`xf lsp`).
    pub fn from_text_at(
        path: impl AsRef<Path>,
        text: &str,
        options: &LoadOptions,
    ) -> Result<Transform, LoadError> {
        let path = path.as_ref();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let own = std::fs::canonicalize(path).ok();
        let files = options.loader(dir);
        Transform::load(
            &path.display().to_string(),
            text,
            Some(dir),
            own,
            files,
            &options.limits,
        )
    }

    /// Loads an Armor Detections Transform Config (JSON) as the `.xf` that
    /// `xf import armor` prints for it. A tags table named in `options` is
    /// found relative to the current directory, wherever it is.
    pub fn from_armor_config(
        path: impl AsRef<Path>,
        options: &crate::import::ArmorOptions,
        load: &LoadOptions,
    ) -> Result<Transform, LoadError> {
        let path = path.as_ref();
        let xf = crate::import::armor_file(path, options)?;
        // The tags table was named by the caller, not by a transform: its folder is allowed.
        let tags_dir = options.tags.as_ref().and_then(|tags| {
            let tags = std::fs::canonicalize(tags).ok()?;
            tags.parent().map(Path::to_path_buf)
        });
        let mut load = load.clone();
        load.allowed_roots.extend(tags_dir);
        let name = format!("{} (as imported)", path.display());
        Transform::from_source_with(&name, &xf, None, &load)
    }

    /// Loads a transform from its text. `name` is used in messages; files it
    /// names (lookups, templates) are found in `base_dir`, or else relative to
    /// the current directory, and only there and below.
    pub fn from_source(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
    ) -> Result<Transform, LoadError> {
        Transform::from_source_with(name, text, base_dir, &LoadOptions::default())
    }

    /// [`Transform::from_source`] with options (more folders files may come from, other limits).
    pub fn from_source_with(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
        options: &LoadOptions,
    ) -> Result<Transform, LoadError> {
        let files = options.loader(base_dir.unwrap_or(Path::new(".")));
        Transform::load(name, text, base_dir, None, files, &options.limits)
    }

    fn load(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
        own_path: Option<PathBuf>,
        files: Arc<dyn Loader>,
        limits: &Limits,
    ) -> Result<Transform, LoadError> {
        let invalid = |diagnostics| LoadError::Invalid {
            file: name.to_string(),
            text: text.to_string(),
            diagnostics,
        };
        let statements = syntax::parse(text).map_err(invalid)?;
        let including: Vec<PathBuf> = own_path.into_iter().collect();
        let recorded = Arc::new(Recorded::new(files));
        let mut load = Load::new(Arc::clone(&recorded) as Arc<dyn Loader>);
        let plan = compile::compile(
            &statements,
            text,
            name,
            base_dir,
            &including,
            limits,
            &mut load,
        )
        .map_err(invalid)?;
        Ok(Transform {
            fields_seen: compile::fields_seen(&plan),
            plan,
            files: recorded.paths(),
            source: (name.to_string(), Arc::from(text)),
            statement_names: true,
        })
    }

    /// What loads but is probably not meant (W00xx codes): a comparison of two
    /// constants, a label that looks like a template, and the others listed in
    /// [`crate::diagnostic::Code`]. About the file's own statements.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.plan.warnings
    }

    /// [`Transform::warnings`] rendered rustc-style (`warning[W0001]: …`),
    /// empty when there are none.
    pub fn render_warnings(&self) -> String {
        let (name, text) = &self.source;
        diagnostic::render(name, text, &self.plan.warnings)
    }

    /// The transform that [`Transform::warnings`] makes a load error: the
    /// warnings as a [`LoadError::Invalid`] (`--deny-warnings`), or the
    /// transform itself when it has none.
    pub fn deny_warnings(self) -> Result<Transform, LoadError> {
        if self.plan.warnings.is_empty() {
            return Ok(self);
        }
        let (file, text) = self.source;
        Err(LoadError::Invalid {
            file,
            text: text.to_string(),
            diagnostics: self.plan.warnings,
        })
    }

    /// Applies the transform to one record: zero output records when it is
    /// dropped, else one (in format `splunk`, the HEC event that wraps it),
    /// or with `fan_out`, one per item.
    pub fn apply(&self, record: Value) -> Result<Vec<Value>, RecordError> {
        Ok(self.apply_once(record)?.into_records())
    }

    /// Like [`Transform::apply`], saying whether the record was dropped.
    pub fn apply_once(&self, record: Value) -> Result<Outcome, RecordError> {
        apply::apply(&self.plan, record).map_err(|error| self.named(error))
    }

    /// The top-level fields of a record that a run of this transform can
    /// read, write, test or print; `None` when it can see all of them (it
    /// validates, nests or fans out the record, or a template reaches
    /// another template). The fields not named pass through untouched.
    pub fn fields_seen(&self) -> Option<&crate::value::untouched::FieldSet> {
        self.fields_seen.as_ref()
    }

    /// For a transform that a command wrote rather than its user (`xf
    /// validate SCHEMA` is `validate "SCHEMA"`): its record errors name no
    /// statement or line, which would be of a file nobody sees; the reason
    /// itself (`does not match schema queryai-detection: …`) says what failed.
    pub fn without_statement_names(mut self) -> Transform {
        self.statement_names = false;
        self
    }

    fn named(&self, mut error: RecordError) -> RecordError {
        if !self.statement_names && error.through.is_empty() {
            error.origin = None;
        }
        error
    }

    /// Like [`Transform::apply_once`], in a [`apply::Context`] (a stop flag,
    /// a fixed time for `now()`).
    pub fn apply_in(
        &self,
        record: Value,
        context: &apply::Context<'_>,
    ) -> Result<Outcome, RecordError> {
        apply::apply_in(&self.plan, record, context).map_err(|error| self.named(error))
    }

    /// Like [`Transform::apply_in`], and also what the run did, statement by
    /// statement: which ran, what each changed, what decided a `drop` or a
    /// `when`, the error, the time each took ([`apply::Trace`], for `xf run
    /// --trace` and the playground). The result is the same as
    /// [`Transform::apply_in`] gives; only this call pays for the trace.
    ///
    /// ```
    /// use serde_json::json;
    /// use xf::apply::{Context, TraceEnd};
    ///
    /// let transform = xf::Transform::from_source(
    ///     "t.xf",
    ///     "label seen = true\ndrop when severity < 3\n",
    ///     None,
    /// )?;
    /// let (outcome, trace) = transform.apply_traced(json!({"severity": 1}), &Context::default());
    /// assert!(outcome?.into_records().is_empty());
    /// assert_eq!(trace.end, TraceEnd::Dropped);
    /// assert_eq!(trace.steps[0].changes[0].path, "seen");
    /// let decision = trace.steps[1].decision.as_ref().unwrap();
    /// assert_eq!(decision.condition, "severity < 3");
    /// assert_eq!(decision.reads[0].0, "severity");
    /// println!("{}", trace.render()); // or trace.to_json()
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_traced(
        &self,
        record: Value,
        context: &apply::Context<'_>,
    ) -> (Result<Outcome, RecordError>, apply::Trace) {
        let (result, mut trace) = apply::apply_traced(&self.plan, record, context);
        let result = result.map_err(|error| self.named(error));
        if let Err(error) = &result {
            trace.end = apply::TraceEnd::Failed(error.to_string());
        }
        (result, trace)
    }

    /// The transform's `name`, if it has one.
    pub fn name(&self) -> Option<&str> {
        self.plan.name.as_deref()
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.plan.format
    }

    /// The lookup tables and their sizes, for `xf check`.
    pub fn lookups(&self) -> Vec<(&str, usize)> {
        self.plan
            .templates
            .lookups()
            .iter()
            .map(|l| (l.name.as_str(), l.len()))
            .collect()
    }

    /// Loads `path` as [`Transform::from_armor_config`] does when it is an
    /// Armor transform config ([`Transform::is_armor_config`]), else as
    /// [`Transform::from_path_with`] does: the one choice that `xf run`,
    /// `xf serve --transform` and a pipeline's `transform` share. `armor` is
    /// used only for an Armor config.
    pub fn from_path_or_armor(
        path: impl AsRef<Path>,
        armor: &crate::import::ArmorOptions,
        load: &LoadOptions,
    ) -> Result<Transform, LoadError> {
        let path = path.as_ref();
        if Transform::is_armor_config(path) {
            Transform::from_armor_config(path, armor, load)
        } else {
            Transform::from_path_with(path, load)
        }
    }

    /// Whether [`Transform::from_path_or_armor`] reads `path` as an Armor
    /// transform config: it ends in `.json` (in any case).
    pub fn is_armor_config(path: &Path) -> bool {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    }

    /// The files its loading read besides the one it was loaded from (which
    /// the caller named): included `.xf` files, lookup tables, template and
    /// schema files, by canonical path, in the order first read. A server
    /// watches them to reload when one changes.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// For a transform of `drop` statements alone (a filter, such as a
    /// pipeline destination's `when`): whether it keeps `record` (emits it),
    /// judged on the record as it is, without the copy that
    /// [`Transform::apply_once`] takes. `None` for a transform that does more,
    /// or a record it would fail on (not an object, over the statement
    /// limit): [`Transform::apply_once`] then says what it comes to.
    pub fn keeps(&self, record: &Value) -> Option<bool> {
        let plan = &self.plan;
        if !record.is_object()
            || plan.events.is_some()
            || plan.steps.len() as u64 > plan.limits.statements
        {
            return None;
        }
        for step in &plan.steps {
            match step {
                compile::Step::Drop { condition, .. } => {
                    let holds = match condition {
                        Some(condition) => condition.holds_plainly(record)?,
                        None => true,
                    };
                    if holds {
                        return Some(false);
                    }
                }
                _ => return None,
            }
        }
        Some(true)
    }
}

/// A loader that remembers which files were read through it.
struct Recorded {
    inner: Arc<dyn Loader>,
    read: std::sync::Mutex<Vec<PathBuf>>,
}

impl Recorded {
    fn new(inner: Arc<dyn Loader>) -> Recorded {
        Recorded {
            inner,
            read: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.read
            .lock()
            .map(|read| read.clone())
            .unwrap_or_default()
    }
}

impl Loader for Recorded {
    fn id(&self, path: &Path) -> Result<PathBuf, files::FileError> {
        self.inner.id(path)
    }

    fn read(&self, path: &Path, kind: files::Kind) -> Result<files::Loaded, files::FileError> {
        let loaded = self.inner.read(path, kind)?;
        if let Ok(mut read) = self.read.lock() {
            if !read.contains(&loaded.id) {
                read.push(loaded.id.clone());
            }
        }
        Ok(loaded)
    }
}

/// A server holds one loaded transform across threads and requests.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Transform>();
};
