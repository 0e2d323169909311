//! [`Transform`]: a loaded `.xf` file, ready to apply to records.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::apply::{self, Outcome, RecordError};
use crate::compile::{self, Format, Plan};
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
}

impl Transform {
    /// Loads a `.xf` file; lookup tables and template files are found beside it.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Transform, LoadError> {
        Transform::from_path_with_limits(path, Limits::DEFAULT)
    }

    /// [`Transform::from_path`] with other per-record [`Limits`].
    pub fn from_path_with_limits(
        path: impl AsRef<Path>,
        limits: Limits,
    ) -> Result<Transform, LoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let own = std::fs::canonicalize(path).ok();
        Transform::load(&path.display().to_string(), &text, Some(dir), own, &limits)
    }

    /// Loads an Armor Detections Transform Config (JSON) as the `.xf` that
    /// `xf import armor` prints for it. A tags table named in `options` is
    /// found relative to the current directory.
    pub fn from_armor_config(
        path: impl AsRef<Path>,
        options: &crate::import::ArmorOptions,
        limits: Limits,
    ) -> Result<Transform, LoadError> {
        let path = path.as_ref();
        let xf = crate::import::armor_file(path, options)?;
        let name = format!("{} (as imported)", path.display());
        Transform::load(&name, &xf, None, None, &limits)
    }

    /// Loads a transform from its text. `name` is used in messages; files it
    /// names (lookups, templates) are found in `base_dir`, or else relative to
    /// the current directory.
    pub fn from_source(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
    ) -> Result<Transform, LoadError> {
        Transform::load(name, text, base_dir, None, &Limits::DEFAULT)
    }

    /// [`Transform::from_source`] with other per-record [`Limits`].
    pub fn from_source_with_limits(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
        limits: Limits,
    ) -> Result<Transform, LoadError> {
        Transform::load(name, text, base_dir, None, &limits)
    }

    fn load(
        name: &str,
        text: &str,
        base_dir: Option<&Path>,
        own_path: Option<PathBuf>,
        limits: &Limits,
    ) -> Result<Transform, LoadError> {
        let invalid = |diagnostics| LoadError::Invalid {
            file: name.to_string(),
            text: text.to_string(),
            diagnostics,
        };
        let statements = syntax::parse(text).map_err(invalid)?;
        let including: Vec<PathBuf> = own_path.into_iter().collect();
        let plan = compile::compile(&statements, text, name, base_dir, &including, limits)
            .map_err(invalid)?;
        Ok(Transform { plan })
    }

    /// Fixes what `now()` gives (epoch milliseconds), for reproducible output.
    pub fn fix_clock(&mut self, millis: i64) {
        self.plan.fix_clock(millis);
    }

    /// Applies the transform to one record: zero output records when it is
    /// dropped, else one (in format `splunk`, the HEC event that wraps it).
    pub fn apply(&self, record: Value) -> Result<Vec<Value>, RecordError> {
        Ok(match self.apply_once(record)? {
            Outcome::Emit(value) => vec![value],
            Outcome::Dropped => Vec::new(),
        })
    }

    /// Like [`Transform::apply`], saying whether the record was dropped.
    pub fn apply_once(&self, record: Value) -> Result<Outcome, RecordError> {
        apply::apply(&self.plan, record)
    }

    /// Like [`Transform::apply_once`], in a [`apply::Context`] (a stop flag).
    pub fn apply_in(
        &self,
        record: Value,
        context: &apply::Context<'_>,
    ) -> Result<Outcome, RecordError> {
        apply::apply_in(&self.plan, record, context)
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
}
